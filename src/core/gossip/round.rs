//! [`Gossip`]'s methods: starting rounds, the steps of each role, timeouts.

use super::convert::{
    disc_details_in, disc_details_out, disc_sectors_in, disc_sectors_out, minimal_in, minimal_out,
    ring_details_in, ring_details_out,
};
use super::*;

/// Ops an initiator may hold beyond us (its `dht_op_count`) before we take its round only
/// when no other round is open (else `Busy`): 1 024. A joiner, or a tab back after long,
/// learns the same missing ids from every peer that initiates; one at a time, the first
/// round's ids are being fetched (and gossip waits for them, `Gossip::set_saturated`) when
/// the next is accepted.
pub const CATCH_UP_GAP: u64 = 1024;

/// Whose simultaneous initiate goes on: the higher tie-breaker, then the higher session id
/// (Kitsune2 `respond/initiate.rs` compares tie-breakers only). Both equal (random 32 + 128
/// bits) makes both sides accept; both rounds then time out and the next ones differ.
fn we_win(ours: &Session, their_tb: u32, their_id: &Bytes) -> bool {
    (ours.tie_breaker, &ours.id) > (their_tb, their_id)
}

/// Arc-set words, at most 16, padded.
pub(super) fn sector_set(m: &Option<ArcSetMessage>) -> Result<SectorSet, GossipError> {
    let words = m.as_ref().map(|a| a.value.as_slice()).unwrap_or(&[]);
    if words.len() > 16 {
        return Err(GossipError::Malformed("arc set has more than 16 words"));
    }
    let mut out = [0u32; 16];
    out[..words.len()].copy_from_slice(words);
    Ok(SectorSet(out))
}

/// What a step leaves of a round.
pub(super) enum Next {
    /// Still open, at this stage.
    Open(Stage),
    /// Done normally: report it.
    Completed,
    /// Ended by Busy or Terminate (either side): already reported.
    Ended,
}

impl Gossip {
    /// A machine for our `agents` (raw ids) storing `sectors`; `seed` drives session ids and
    /// tie-breakers.
    pub fn new(cfg: GossipConfig, agents: Vec<Bytes>, sectors: SectorSet, seed: u64) -> Gossip {
        let scheduler = Scheduler::new(cfg.fast_interval, cfg.steady_interval);
        Gossip {
            cfg,
            agents,
            sectors,
            rng: seed,
            sessions: HashMap::default(),
            bursts: HashMap::default(),
            bookmarks: HashMap::default(),
            last_gossip: HashMap::default(),
            scheduler,
            out: VecDeque::new(),
            stats: GossipStats::default(),
            plain_next: HashSet::default(),
            saturated: false,
        }
    }

    /// The counters.
    pub fn stats(&self) -> GossipStats {
        self.stats
    }

    /// The interval scheduler (fed by every completed initiated round).
    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// When we last completed a round with `peer`.
    pub fn last_gossip(&self, peer: &Url) -> Option<Timestamp> {
        self.last_gossip.get(peer).copied()
    }

    /// Whether a round with `peer` is open.
    pub fn in_round_with(&self, peer: &Url) -> bool {
        self.sessions.contains_key(peer)
    }

    /// Initiated rounds open now.
    pub fn initiated_open(&self) -> usize {
        self.count(Role::Initiator)
    }

    fn count(&self, role: Role) -> usize {
        self.sessions.values().filter(|s| s.role == role).count()
    }

    fn next_u64(&mut self) -> u64 {
        // splitmix64: deterministic per seed, good enough for ids and tie-breakers.
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The `new_since` to send `peer`: its bookmark while fresh, else
    /// [`GossipConfig::new_since_window`] before `now`.
    pub fn new_since(&self, now: Timestamp, peer: &Url) -> Timestamp {
        match self.bookmarks.get(peer) {
            Some((b, set)) if now.micros_since(*set) < micros(self.cfg.bookmark_expiry) => *b,
            _ => now.minus(self.cfg.new_since_window),
        }
    }

    /// The next output, if any.
    pub fn poll_output(&mut self) -> Option<GossipOutput> {
        self.out.pop_front()
    }

    pub(super) fn send(&mut self, to: &Url, msg: GossipMsg) {
        self.out.push_back(GossipOutput::Send {
            to: to.clone(),
            msg: Box::new(msg),
        });
    }

    fn event(&mut self, e: GossipEvent) {
        self.out.push_back(GossipOutput::Event(e));
    }

    /// Opens a round with `peer`: queues `Initiate`. `op_count` is our model's op count.
    ///
    /// # Errors
    /// [`GossipError::SessionOpen`] when a round with `peer` is open;
    /// [`GossipError::TooManyRounds`] at [`GossipConfig::max_concurrent_initiated`].
    pub fn initiate(
        &mut self,
        now: Timestamp,
        peer: Url,
        op_count: u64,
    ) -> Result<(), GossipError> {
        if self.sessions.contains_key(&peer) {
            return Err(GossipError::SessionOpen);
        }
        let open = self.count(Role::Initiator);
        if open >= self.cfg.max_concurrent_initiated {
            return Err(GossipError::TooManyRounds(open));
        }
        let id =
            Bytes::from([self.next_u64().to_le_bytes(), self.next_u64().to_le_bytes()].concat());
        let tie_breaker = self.next_u64() as u32;
        let recon = self.wants_recon(&peer);
        let msg = K2GossipInitiateMessage {
            session_id: id.clone(),
            participating_agents: self.agents.clone(),
            arc_set: Some(ArcSetMessage {
                value: self.sectors.0.to_vec(),
            }),
            tie_breaker,
            new_since: self.new_since(now, &peer).as_micros(),
            max_op_data_bytes: self.cfg.max_op_data_bytes,
            dht_op_count: Some(op_count),
            fennec_reconcile: recon,
        };
        self.sessions.insert(
            peer.clone(),
            Session {
                id,
                role: Role::Initiator,
                stage: Stage::Initiated,
                deadline: now.plus(self.cfg.initiate_timeout),
                tie_breaker,
                common: SectorSet::default(),
                previous: None,
                peer_budget: 0,
                recon: match recon {
                    true => round_recon::Recon::Agreed,
                    false => round_recon::Recon::Off,
                },
                their_op_count: None,
                summary: RoundSummary {
                    role: Role::Initiator,
                    diff: DiffKind::None,
                    ids_received: 0,
                    ids_to_fetch: 0,
                    ids_sent: 0,
                    rings_pending: false,
                },
            },
        );
        self.stats.initiated += 1;
        self.send(&peer, GossipMsg::Initiate(msg));
        Ok(())
    }

    /// The earliest round deadline.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        self.sessions.values().map(|s| s.deadline).min()
    }

    /// Ends the rounds whose deadline is at or before `now` ([`GossipEvent::TimedOut`]).
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let expired: Vec<Url> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.deadline <= now)
            .map(|(u, _)| u.clone())
            .collect();
        for peer in expired {
            if let Some(s) = self.sessions.remove(&peer) {
                self.stats.timed_out += 1;
                self.event(GossipEvent::TimedOut { peer, role: s.role });
            }
        }
    }

    /// Handles a decoded message from `from` at `now`.
    ///
    /// # Errors
    /// A refused message ([`GossipError`]); it is also reported as
    /// [`GossipEvent::Misbehaved`] (store errors are not the peer's fault and are only
    /// returned). Malformed messages and store errors end the round with `Terminate`.
    pub async fn handle(
        &mut self,
        ctx: Ctx<'_>,
        now: Timestamp,
        from: &Url,
        msg: GossipMsg,
    ) -> Result<(), GossipError> {
        let result = self.dispatch(ctx, now, from, msg).await;
        if let Err(e) = &result {
            self.stats.refused += 1;
            if !matches!(e, GossipError::Store(_)) {
                self.event(GossipEvent::Misbehaved {
                    peer: from.clone(),
                    error: e.clone(),
                });
            }
        }
        result
    }

    async fn dispatch(
        &mut self,
        ctx: Ctx<'_>,
        now: Timestamp,
        from: &Url,
        msg: GossipMsg,
    ) -> Result<(), GossipError> {
        if let GossipMsg::Initiate(m) = msg {
            return self.on_initiate(ctx, now, from, m).await;
        }
        let mut session = self.take_session(from, &msg)?;
        session.deadline = now.plus(self.cfg.round_timeout);
        match self.step(ctx, now, from, &mut session, msg).await {
            Ok(Next::Open(stage)) => {
                session.stage = stage;
                self.sessions.insert(from.clone(), session);
                Ok(())
            }
            Ok(Next::Completed) => {
                self.complete(now, from, &session);
                Ok(())
            }
            Ok(Next::Ended) => Ok(()),
            Err(e) => {
                if matches!(e, GossipError::Malformed(_) | GossipError::Store(_)) {
                    let reason = e.to_string();
                    self.send(
                        from,
                        GossipMsg::Terminate(K2GossipTerminateMessage {
                            session_id: session.id.clone(),
                            reason,
                        }),
                    );
                }
                Err(e)
            }
        }
    }

    /// Removes and returns the session `msg` belongs to, or refuses it leaving all as it was.
    fn take_session(&mut self, from: &Url, msg: &GossipMsg) -> Result<Session, GossipError> {
        let ty = type_name(msg);
        let s = self.sessions.get(from).ok_or(GossipError::NoSession(ty))?;
        if s.id != *msg.session_id() {
            return Err(GossipError::WrongSession(ty));
        }
        if !s.stage.expects(msg) {
            return Err(GossipError::Stage {
                got: ty,
                stage: s.stage.name(),
            });
        }
        self.sessions.remove(from).ok_or(GossipError::NoSession(ty))
    }

    /// Ends `session` normally.
    fn complete(&mut self, now: Timestamp, peer: &Url, session: &Session) {
        self.stats.completed += 1;
        self.last_gossip.insert(peer.clone(), now);
        if session.role == Role::Initiator {
            self.scheduler.on_round(session.summary.found_diff());
        }
        self.event(GossipEvent::RoundCompleted {
            peer: peer.clone(),
            summary: session.summary,
        });
    }

    /// Whether `peer` may open another round now (burst limit), recording it if so.
    fn within_burst(&mut self, now: Timestamp, peer: &Url) -> bool {
        let window = micros(self.cfg.burst_window);
        let times = self.bursts.entry(peer.clone()).or_default();
        while times
            .front()
            .is_some_and(|t| now.micros_since(*t) >= window)
        {
            times.pop_front();
        }
        if times.len() >= self.cfg.burst_count {
            return false;
        }
        times.push_back(now);
        true
    }

    async fn on_initiate(
        &mut self,
        ctx: Ctx<'_>,
        now: Timestamp,
        from: &Url,
        m: K2GossipInitiateMessage,
    ) -> Result<(), GossipError> {
        if let Some(ours) = self.sessions.get(from) {
            if ours.role == Role::Initiator && ours.stage == Stage::Initiated {
                self.stats.tie_breaks += 1;
                if we_win(ours, m.tie_breaker, &m.session_id) {
                    return Ok(()); // they drop theirs and accept ours
                }
            } else {
                // Past the first exchange: a peer initiates only when it holds no round with
                // us, so it dropped this one (it declared us down, or its timers ran while ours
                // stood still). Kitsune2 refuses the Initiate instead (`respond/initiate.rs`),
                // which leaves both sides idle until our round times out (15 s).
                self.stats.superseded += 1;
            }
            self.sessions.remove(from);
        }
        let theirs = sector_set(&m.arc_set)?;
        check_agents(&m.participating_agents, self.cfg.max_ids)?;
        // Far behind (a joiner): one catch-up round at a time; every peer would otherwise
        // send its whole list of what we lack at once.
        let gap = m
            .dht_op_count
            .unwrap_or(0)
            .saturating_sub(ctx.dht.op_count());
        let catching_up = gap >= CATCH_UP_GAP && !self.sessions.is_empty();
        if self.saturated
            || catching_up
            || self.count(Role::Acceptor) >= self.cfg.max_concurrent_accepted
            || !self.within_burst(now, from)
        {
            self.busy(from, &m.session_id);
            return Ok(());
        }
        let common = self.sectors.intersection(&theirs);
        let budget = m.max_op_data_bytes.min(self.cfg.max_request_op_data_bytes);
        let since = Timestamp::from_micros(m.new_since);
        let reconciling = self.cfg.reconcile && m.fennec_reconcile;
        let (new_ops, bookmark) = self
            .new_ops(ctx, &common, since, budget, reconciling)
            .await?;
        let snapshot = ctx.dht.snapshot_minimal(&common).ok();
        let accept = K2GossipAcceptMessage {
            session_id: m.session_id.clone(),
            participating_agents: self.agents.clone(),
            arc_set: Some(ArcSetMessage {
                value: self.sectors.0.to_vec(),
            }),
            missing_agents: missing(ctx, &m.participating_agents),
            new_since: self.new_since(now, from).as_micros(),
            max_op_data_bytes: self.cfg.max_op_data_bytes,
            new_ops: new_ops.iter().map(|i| i.0.0.clone()).collect(),
            updated_new_since: bookmark.as_micros(),
            dht_op_count: Some(ctx.dht.op_count()),
            snapshot: snapshot.as_ref().and_then(minimal_out),
            fennec_reconcile: reconciling,
        };
        let summary = RoundSummary {
            role: Role::Acceptor,
            diff: DiffKind::None,
            ids_received: 0,
            ids_to_fetch: 0,
            ids_sent: new_ops.len(),
            rings_pending: false,
        };
        self.sessions.insert(
            from.clone(),
            Session {
                id: m.session_id,
                role: Role::Acceptor,
                stage: Stage::Accepted,
                deadline: now.plus(self.cfg.round_timeout),
                tie_breaker: 0,
                common,
                previous: None,
                peer_budget: budget,
                summary,
                recon: match accept.fennec_reconcile {
                    true => round_recon::Recon::Agreed,
                    false => round_recon::Recon::Off,
                },
                their_op_count: m.dht_op_count,
            },
        );
        self.stats.accepted += 1;
        self.send(from, GossipMsg::Accept(accept));
        Ok(())
    }

    fn busy(&mut self, to: &Url, session_id: &Bytes) {
        self.stats.busy_sent += 1;
        let msg = K2GossipBusyMessage {
            session_id: session_id.clone(),
        };
        self.send(to, GossipMsg::Busy(msg));
    }

    /// Ids of ops we stored since `since` in the sectors of `common`, and the next bookmark.
    ///
    /// In a `reconciling` round the list holds only the ops too new for the DHT model
    /// ([`TimeLayout::covered_end`](crate::core::dht::time::TimeLayout::covered_end)): the
    /// minimal snapshot covers every older op of the common arc, so equal top hashes mean
    /// nothing to send there and unequal ones start reconciliation, which finds the difference
    /// at a cost proportional to it. Listed, they would be every op stored since the bookmark,
    /// mostly held by the peer already (in the 8-tab `npm start` each tab received every
    /// peer's whole list: 0.3–0.9 MB of Accept and NoDiff a tab). Plain-Kitsune2 rounds list
    /// them all. With no such op in the model ([`Dht::has_uncovered_ops`]) the store is not
    /// read: its scan walks every op stored since the bookmark (after a sync, all of them,
    /// one IndexedDB cursor step each) to keep none.
    ///
    /// [`Dht::has_uncovered_ops`]: crate::core::dht::Dht::has_uncovered_ops
    async fn new_ops(
        &self,
        ctx: Ctx<'_>,
        common: &SectorSet,
        since: Timestamp,
        budget: u32,
        reconciling: bool,
    ) -> Result<(Vec<OpId>, Timestamp), GossipError> {
        let arc = DhtArc::from_sector_set(&common.0).unwrap_or(DhtArc::Empty);
        if arc.is_empty() || (reconciling && !ctx.dht.has_uncovered_ops()) {
            // Nothing to list; the bookmark stays where the peer put it.
            return Ok((Vec::new(), since));
        }
        let mut got = ctx
            .store
            .retrieve_op_ids_bounded(arc, since, budget)
            .await?;
        if got.op_ids.len() > self.cfg.max_ids {
            // Cut at the id limit; the bookmark must then point at the first id left out,
            // which only a smaller budget query gives: halve until it fits.
            let mut limit = budget;
            while got.op_ids.len() > self.cfg.max_ids && limit > 1 {
                limit /= 2;
                got = ctx.store.retrieve_op_ids_bounded(arc, since, limit).await?;
            }
        }
        if !reconciling {
            return Ok((got.op_ids, got.next_bookmark));
        }
        let head = ctx.dht.layout().covered_end();
        let ids = got
            .op_ids
            .into_iter()
            .zip(got.created_at)
            .filter_map(|(id, t)| (t >= head).then_some(id))
            .collect();
        Ok((ids, got.next_bookmark))
    }

    /// Ids the peer offered: checked, counted, the ones we lack queued to fetch.
    pub(super) async fn offered(
        &mut self,
        ctx: Ctx<'_>,
        from: &Url,
        session: &mut Session,
        ids: Vec<Bytes>,
    ) -> Result<(), GossipError> {
        if ids.len() > self.cfg.max_ids {
            return Err(GossipError::Malformed("too many op ids"));
        }
        if ids.iter().any(|i| i.len() != OP_ID_BYTES) {
            return Err(GossipError::Malformed("op id of the wrong length"));
        }
        session.summary.ids_received += ids.len();
        if ids.is_empty() {
            return Ok(());
        }
        let ids = ids.into_iter().map(OpId::from_bytes).collect();
        let lacking = ctx.store.filter_out_existing_ops(ids).await?;
        session.summary.ids_to_fetch += lacking.len();
        self.stats.ids_to_fetch += lacking.len() as u64;
        if !lacking.is_empty() {
            self.out.push_back(GossipOutput::Fetch {
                from: from.clone(),
                ids: lacking,
            });
        }
        Ok(())
    }

    fn check(&mut self, from: &Url, infos: Vec<Bytes>) -> Result<(), GossipError> {
        check_agents(&infos, self.cfg.max_ids)?;
        if !infos.is_empty() {
            self.out.push_back(GossipOutput::CheckAgents {
                from: from.clone(),
                infos,
            });
        }
        Ok(())
    }

    /// Our ids in `ranges`, within the peer's budget.
    async fn ids_in(
        &self,
        ctx: Ctx<'_>,
        session: &mut Session,
        ranges: &[OpRange],
    ) -> Result<Vec<Bytes>, GossipError> {
        let budget = u64::from(session.peer_budget.max(1));
        let (ids, _) = collect_op_ids(ctx.store, ranges, budget).await?;
        let ids: Vec<Bytes> = ids
            .into_iter()
            .take(self.cfg.max_ids)
            .map(|i| i.0.0)
            .collect();
        session.summary.ids_sent += ids.len();
        Ok(ids)
    }

    /// One step of a round.
    async fn step(
        &mut self,
        ctx: Ctx<'_>,
        now: Timestamp,
        from: &Url,
        s: &mut Session,
        msg: GossipMsg,
    ) -> Result<Next, GossipError> {
        Ok(match msg {
            GossipMsg::Busy(_) => {
                self.stats.busy_received += 1;
                self.event(GossipEvent::Busy { peer: from.clone() });
                Next::Ended
            }
            GossipMsg::Terminate(m) => {
                if matches!(s.recon, round_recon::Recon::Sending { .. }) {
                    self.plain_next.insert(from.clone());
                }
                let peer = from.clone();
                let reason = m.reason;
                self.event(GossipEvent::Terminated { peer, reason });
                Next::Ended
            }
            GossipMsg::Agents(m) => {
                self.check(from, m.provided_agents)?;
                match s.stage {
                    Stage::AwaitAgents => Next::Completed,
                    stage => Next::Open(stage),
                }
            }
            GossipMsg::Accept(m) => self.on_accept(ctx, now, from, s, m).await?,
            GossipMsg::NoDiff(m) => {
                let provide = self.on_accept_response(ctx, now, from, s, m.accept_response);
                let provide = provide.await?;
                s.summary.diff = match m.cannot_compare {
                    true => DiffKind::CannotCompare,
                    false => DiffKind::None,
                };
                self.provide_agents(from, s, provide);
                Next::Completed
            }
            GossipMsg::DiscSectorsDiff(m) => {
                let provide = self.on_accept_response(ctx, now, from, s, m.accept_response);
                let provide = provide.await?;
                if m.fennec_reconcile.is_some() || m.snapshot.is_none() {
                    self.provide_agents(from, s, provide);
                    return self.recon_receive(ctx, from, s, m.fennec_reconcile).await;
                }
                let theirs = disc_sectors_in(&m.snapshot.unwrap_or_default())?;
                self.on_disc_sectors(ctx, from, s, &theirs, provide)
            }
            GossipMsg::RingSectorDetailsDiff(m) => {
                let provide = self.on_accept_response(ctx, now, from, s, m.accept_response);
                let provide = provide.await?;
                let theirs = ring_details_in(&m.snapshot.unwrap_or_default())?;
                self.provide_agents(from, s, provide);
                s.summary.diff = DiffKind::Ring;
                self.on_details(ctx, from, s, &theirs).await?
            }
            GossipMsg::DiscSectorDetailsDiff(m) if s.stage == Stage::AwaitRecon => {
                self.recon_more(ctx, from, s, m.fennec_reconcile).await?
            }
            GossipMsg::DiscSectorDetailsDiffResponse(m) if s.stage == Stage::AwaitReconMore => {
                self.recon_receive(ctx, from, s, m.fennec_reconcile).await?
            }
            GossipMsg::DiscSectorDetailsDiff(m) => {
                self.check(from, m.provided_agents)?;
                let theirs = disc_details_in(&m.snapshot.unwrap_or_default())?;
                self.on_details(ctx, from, s, &theirs).await?
            }
            GossipMsg::DiscSectorDetailsDiffResponse(m) => {
                self.offered(ctx, from, s, m.missing_ids).await?;
                let theirs = disc_details_in(&m.snapshot.unwrap_or_default())?;
                self.final_hashes(ctx, from, s, &theirs).await?
            }
            GossipMsg::RingSectorDetailsDiffResponse(m) => {
                self.offered(ctx, from, s, m.missing_ids).await?;
                let theirs = ring_details_in(&m.snapshot.unwrap_or_default())?;
                self.final_hashes(ctx, from, s, &theirs).await?
            }
            GossipMsg::Hashes(m) => {
                self.offered(ctx, from, s, m.missing_ids).await?;
                Next::Completed
            }
            // `dispatch` handles Initiate before looking for a session.
            GossipMsg::Initiate(_) => return Err(GossipError::SessionOpen),
        })
    }

    /// Sends the agent infos the peer asked for, if any.
    fn provide_agents(&mut self, to: &Url, s: &Session, provided_agents: Vec<Bytes>) {
        if !provided_agents.is_empty() {
            let session_id = s.id.clone();
            let msg = K2GossipAgentsMessage {
                session_id,
                provided_agents,
            };
            self.send(to, GossipMsg::Agents(msg));
        }
    }

    /// Acceptor: the initiator's disc sector hashes; answers with our details of the sectors
    /// that differ.
    fn on_disc_sectors(
        &mut self,
        ctx: Ctx<'_>,
        from: &Url,
        s: &mut Session,
        theirs: &DhtSnapshot,
        provided_agents: Vec<Bytes>,
    ) -> Next {
        s.summary.diff = DiffKind::Disc;
        match ctx.dht.handle_snapshot(theirs, None, &s.common) {
            Ok(DhtNextAction::NewSnapshot(ours)) => {
                let msg = K2GossipDiscSectorDetailsDiffMessage {
                    session_id: s.id.clone(),
                    provided_agents,
                    snapshot: disc_details_out(&ours),
                    fennec_reconcile: None,
                };
                s.previous = Some(ours);
                self.send(from, GossipMsg::DiscSectorDetailsDiff(msg));
                Next::Open(Stage::AwaitDiscResponse)
            }
            _ => self.terminate(from, s, "disc sectors: nothing to compare"),
        }
    }

    /// The peer's details (disc for the initiator, rings for the acceptor): answers with our
    /// details and our ids in the cells that differ, then awaits their ids.
    async fn on_details(
        &mut self,
        ctx: Ctx<'_>,
        from: &Url,
        s: &mut Session,
        theirs: &DhtSnapshot,
    ) -> Result<Next, GossipError> {
        let Ok(DhtNextAction::NewSnapshotAndRanges(ours, ranges)) =
            ctx.dht.handle_snapshot(theirs, None, &s.common)
        else {
            return Ok(self.terminate(from, s, "details: nothing to compare"));
        };
        let missing_ids = self.ids_in(ctx, s, &ranges).await?;
        let session_id = s.id.clone();
        let msg = match theirs {
            DhtSnapshot::RingSectorDetails { .. } => GossipMsg::RingSectorDetailsDiffResponse(
                K2GossipRingSectorDetailsDiffResponseMessage {
                    session_id,
                    missing_ids,
                    snapshot: ring_details_out(&ours),
                },
            ),
            _ => GossipMsg::DiscSectorDetailsDiffResponse(
                K2GossipDiscSectorDetailsDiffResponseMessage {
                    session_id,
                    missing_ids,
                    snapshot: disc_details_out(&ours),
                    fennec_reconcile: None,
                },
            ),
        };
        self.send(from, msg);
        Ok(Next::Open(Stage::AwaitHashes))
    }

    /// Ends the round with `Terminate` (nothing to compare: the models moved mid-round).
    pub(super) fn terminate(&mut self, to: &Url, s: &Session, reason: &str) -> Next {
        let msg = K2GossipTerminateMessage {
            session_id: s.id.clone(),
            reason: reason.to_string(),
        };
        self.send(to, GossipMsg::Terminate(msg));
        Next::Ended
    }

    /// The final comparison of a details exchange: our ids in the differing cells as `Hashes`.
    async fn final_hashes(
        &mut self,
        ctx: Ctx<'_>,
        from: &Url,
        s: &mut Session,
        theirs: &DhtSnapshot,
    ) -> Result<Next, GossipError> {
        let ranges = match ctx
            .dht
            .handle_snapshot(theirs, s.previous.as_ref(), &s.common)
        {
            Ok(DhtNextAction::Ranges(r)) => r,
            _ => Vec::new(),
        };
        let missing_ids = self.ids_in(ctx, s, &ranges).await?;
        let msg = K2GossipHashesMessage {
            session_id: s.id.clone(),
            missing_ids,
        };
        self.send(from, GossipMsg::Hashes(msg));
        Ok(Next::Completed)
    }

    /// Acceptor: the `accept_response` of the initiator's reply. Returns the agent infos the
    /// initiator asked for.
    async fn on_accept_response(
        &mut self,
        ctx: Ctx<'_>,
        now: Timestamp,
        from: &Url,
        s: &mut Session,
        r: Option<AcceptResponseMessage>,
    ) -> Result<Vec<Bytes>, GossipError> {
        let r = r.ok_or(GossipError::Malformed("reply without accept_response"))?;
        check_agents(&r.missing_agents, self.cfg.max_ids)?;
        self.check(from, r.provided_agents)?;
        self.offered(ctx, from, s, r.new_ops).await?;
        self.set_bookmark(now, from, r.updated_new_since);
        Ok(r.missing_agents
            .iter()
            .filter_map(|a| ctx.agents.info(a))
            .collect())
    }

    fn set_bookmark(&mut self, now: Timestamp, peer: &Url, at: i64) {
        self.bookmarks
            .insert(peer.clone(), (Timestamp::from_micros(at), now));
    }

    /// Initiator: the `Accept`. Answers with NoDiff or the first diff message.
    async fn on_accept(
        &mut self,
        ctx: Ctx<'_>,
        now: Timestamp,
        from: &Url,
        s: &mut Session,
        mut m: K2GossipAcceptMessage,
    ) -> Result<Next, GossipError> {
        let theirs = sector_set(&m.arc_set)?;
        check_agents(&m.participating_agents, self.cfg.max_ids)?;
        check_agents(&m.missing_agents, self.cfg.max_ids)?;
        s.common = self.sectors.intersection(&theirs);
        s.peer_budget = m.max_op_data_bytes.min(self.cfg.max_request_op_data_bytes);
        self.offered(ctx, from, s, std::mem::take(&mut m.new_ops))
            .await?;
        self.set_bookmark(now, from, m.updated_new_since);
        let since = Timestamp::from_micros(m.new_since);
        let common = s.common;
        let reconciling = self.cfg.reconcile && m.fennec_reconcile;
        let (new_ops, bookmark) = self
            .new_ops(ctx, &common, since, s.peer_budget, reconciling)
            .await?;
        s.summary.ids_sent += new_ops.len();
        let want_agents = missing(ctx, &m.participating_agents);
        let mut response = Some(AcceptResponseMessage {
            missing_agents: want_agents.clone(),
            provided_agents: m
                .missing_agents
                .iter()
                .filter_map(|a| ctx.agents.info(a))
                .collect(),
            new_ops: new_ops.into_iter().map(|i| i.0.0).collect(),
            updated_new_since: bookmark.as_micros(),
        });
        let action = match (&m.snapshot, common.is_empty()) {
            (Some(snap), false) => ctx.dht.handle_snapshot(&minimal_in(snap), None, &common),
            _ => Ok(DhtNextAction::CannotCompare),
        };
        let differs = match &action {
            Ok(DhtNextAction::Identical) => false,
            Ok(DhtNextAction::CannotCompare) | Err(_) => m.snapshot.is_some() && !common.is_empty(),
            Ok(_) => true,
        };
        if differs && let Some(msg) = self.recon_start(ctx, s, &m, &mut response).await? {
            self.send(from, msg);
            return Ok(Next::Open(Stage::AwaitRecon));
        }
        let sid = s.id.clone();
        let (msg, next) = match action {
            Ok(DhtNextAction::NewSnapshot(ours @ DhtSnapshot::DiscSectors { .. })) => {
                s.summary.diff = DiffKind::Disc;
                s.summary.rings_pending = m
                    .snapshot
                    .as_ref()
                    .is_some_and(|theirs| rings_differ(ctx.dht, &common, theirs));
                let msg = K2GossipDiscSectorsDiffMessage {
                    session_id: sid,
                    accept_response: response,
                    snapshot: disc_sectors_out(&ours),
                    fennec_reconcile: None,
                };
                (
                    GossipMsg::DiscSectorsDiff(msg),
                    Next::Open(Stage::AwaitDiscDetails),
                )
            }
            Ok(DhtNextAction::NewSnapshot(ours @ DhtSnapshot::RingSectorDetails { .. })) => {
                s.summary.diff = DiffKind::Ring;
                let msg = K2GossipRingSectorDetailsDiffMessage {
                    session_id: sid,
                    accept_response: response,
                    snapshot: ring_details_out(&ours),
                };
                s.previous = Some(ours);
                (
                    GossipMsg::RingSectorDetailsDiff(msg),
                    Next::Open(Stage::AwaitRingResponse),
                )
            }
            other => {
                let identical = matches!(other, Ok(DhtNextAction::Identical));
                if !identical {
                    s.summary.diff = DiffKind::CannotCompare;
                }
                let msg = K2GossipNoDiffMessage {
                    session_id: sid,
                    accept_response: response,
                    cannot_compare: !identical,
                };
                let next = match want_agents.is_empty() {
                    true => Next::Completed,
                    false => Next::Open(Stage::AwaitAgents),
                };
                (GossipMsg::NoDiff(msg), next)
            }
        };
        self.send(from, msg);
        Ok(next)
    }
}

/// Whether our ring top hashes over `common` differ from the ones of their Minimal snapshot
/// (what Kitsune2's `compare` leaves unchecked once the disc differs).
fn rings_differ(dht: &Dht, common: &SectorSet, theirs: &SnapshotMinimalMessage) -> bool {
    match dht.snapshot_minimal(common) {
        Ok(DhtSnapshot::Minimal {
            ring_top_hashes, ..
        }) => ring_top_hashes != theirs.ring_top_hashes,
        _ => false,
    }
}

/// Agent ids of `theirs` we hold no info for.
fn missing(ctx: Ctx<'_>, theirs: &[Bytes]) -> Vec<Bytes> {
    theirs
        .iter()
        .filter(|a| !ctx.agents.has(a))
        .cloned()
        .collect()
}

fn check_agents(list: &[Bytes], max: usize) -> Result<(), GossipError> {
    if list.len() > max {
        return Err(GossipError::Malformed("too many agents"));
    }
    Ok(())
}

/// The message type's name, for errors.
fn type_name(msg: &GossipMsg) -> &'static str {
    match msg {
        GossipMsg::Initiate(_) => "Initiate",
        GossipMsg::Accept(_) => "Accept",
        GossipMsg::NoDiff(_) => "NoDiff",
        GossipMsg::DiscSectorsDiff(_) => "DiscSectorsDiff",
        GossipMsg::DiscSectorDetailsDiff(_) => "DiscSectorDetailsDiff",
        GossipMsg::DiscSectorDetailsDiffResponse(_) => "DiscSectorDetailsDiffResponse",
        GossipMsg::RingSectorDetailsDiff(_) => "RingSectorDetailsDiff",
        GossipMsg::RingSectorDetailsDiffResponse(_) => "RingSectorDetailsDiffResponse",
        GossipMsg::Hashes(_) => "Hashes",
        GossipMsg::Agents(_) => "Agents",
        GossipMsg::Busy(_) => "Busy",
        GossipMsg::Terminate(_) => "Terminate",
    }
}
