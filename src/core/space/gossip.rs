//! The space's side of gossip (issue 10): feeding the DHT model, starting rounds, handing
//! inbound gossip to [`Gossip::handle`] and its outputs to the fetch queue, the peer store and
//! the wire. See the [space docs](super#gossip).
//!
//! [`Gossip::handle`]: crate::core::gossip::Gossip::handle

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use super::{Pending, Space, StoreRequest};
use crate::api::{OpStore, StoreError};
use crate::bounded::BoundedMap;
use crate::core::dht::snapshot::DhtSnapshot;
use crate::core::dht::store::{self as dht_store, DhtLoadError};
use crate::core::dht::time::TIME_FACTOR;
use crate::core::gossip::schedule::{Candidate, pick_peers};
use crate::core::gossip::{
    AgentInfos, DiffKind, GossipError, GossipEvent, GossipOutput, GossipStats, Role,
};
use crate::core::peer_store::PeerStore;
use crate::hash::HashMap;
use crate::model::arc::{DhtArc, SectorSet};
use crate::model::id::{AgentId, OpId};
use crate::model::op::StoredOp;
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::wire::GossipMsg;

/// Least pause between two writes of the model's changed full-slice hashes: a burst of
/// fetched ops into old slices becomes one store operation, not one per write.
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(2);

/// Least pause between two such writes while ops wait in the fetch queue (a sync is under
/// way): the hashes only speed up the next cold start (without them it recomputes from the
/// last watermark), while a sync of a dataset spread over years changes about one slice per
/// op, as many IndexedDB puts as the ops themselves, on the backend every tab of the browser
/// shares. So they are written when the sync is over, or at least this often.
pub const PERSIST_INTERVAL_SYNCING: Duration = Duration::from_secs(30);

/// How long after a bulk intake's quiet ([`INTAKE_QUIET`]) the model's hashes wait before
/// they are written: 30 s. A sync of a dataset spread over years changes about one slice
/// per op (about 11 300 slice hashes a tab for the bundled dataset): as many IndexedDB puts as
/// the ops themselves, on the backend every tab of the browser shares. Written during the
/// 8-tab `npm start` they slowed convergence (20.6–21.5 s, against 17.0–17.6 s without);
/// written when the intake's quiet ended they met the late joiner (3.3–3.5 s became
/// 6.7–7.0 s). The hashes only speed up the next cold start, which recomputes from the
/// last watermark without them.
pub const PERSIST_AFTER_INTAKE: Duration = Duration::from_secs(30);

/// A gossip summary of a space, like Kitsune2's `GossipStateSummary`
/// ([`Space::gossip_summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipSummary {
    /// Round counters: initiated, accepted, completed, busy, timed out, refused.
    pub stats: GossipStats,
    /// The comparison outcome of the last completed round (either role).
    pub last_diff: DiffKind,
    /// When the last round completed (`None`: none yet).
    pub last_round_at: Option<Timestamp>,
    /// Times a due round was not initiated because 1 024 ops or more
    /// (`GOSSIP_FETCH_BACKLOG`) waited in the fetch queue, or during a bulk intake
    /// (`BULK_INTAKE_OPS`).
    pub deferred: u64,
    /// The current pause between initiated rounds (fast while rounds find differences,
    /// doubling to the steady interval).
    pub interval: Duration,
    /// Ops in the DHT model.
    pub op_count: u64,
    /// Our disc top hash over our arc (XOR of every full-slice hash; empty if none).
    pub disc_top_hash: Bytes,
    /// Our ring top hashes over our arc, oldest partial slice first.
    pub ring_top_hashes: Vec<Bytes>,
}

/// Ops pending in the fetch queue (not parked on a down source) from which we start no
/// gossip round, ours or a peer's (answered `Busy`): 1 024 (a few responses' worth). Rounds
/// find what we lack; while we still fetch a large set found earlier (a joiner, a bulk
/// import), a new round finds the same ids again and moves them again: 2–5x the dataset of
/// gossip bytes per tab in the 8-tab `npm start`, a joiner receiving every peer's whole id
/// list. Rounds resume once the queue drains below this (fetches end: received, timed out,
/// or given up after the suspension limit).
pub const GOSSIP_FETCH_BACKLOG: usize = 1024;

/// Ops newly stored (fetched or our own, but not those a round of ours found: they are on
/// the way by no publish) within one [`INTAKE_WINDOW`] that make a bulk intake: 64. While
/// one lasts, plus [`INTAKE_QUIET`], no gossip round starts, ours or a peer's (answered
/// `Busy`): the ops are flowing in by publish and fetch, the stores of the
/// peers differ by whatever is still on the way, and a round moves the ids of that
/// difference (about 100 bytes per id with the sketch; plain lists over the disc and ring
/// details) only for them to arrive anyway. Measured in the 8-tab `npm start`: 0.3–0.75 MB of
/// gossip a tab, most of it sketch symbols and detail responses of rounds run while the tabs
/// were still 1 000–4 000 ops apart and fetching.
pub const BULK_INTAKE_OPS: usize = 64;

/// The window over which [`BULK_INTAKE_OPS`] are counted: 1 s.
pub const INTAKE_WINDOW: Duration = Duration::from_secs(1);

/// How long gossip stays quiet after the last window with a bulk intake: 2 s.
pub const INTAKE_QUIET: Duration = Duration::from_secs(2);

/// Longest a bulk intake keeps gossip quiet, from its first window: 20 s. A lost
/// announcement is repaired only by gossip, so an import that never pauses must not hold
/// repair off for ever; after this, rounds run as if there were no intake.
pub const MAX_INTAKE_QUIET: Duration = Duration::from_secs(20);

/// Most op ids remembered as announced to us by publish ([`Glue::announced`]).
pub const ANNOUNCED_MEMORY: usize = 16_384;

/// How long after we admitted a peer an announcement must reach us before we assume its
/// author knew that peer too (peers introduce themselves to every peer they admit, and poll
/// bootstrap): 5 s.
pub const ANNOUNCE_MARGIN: Duration = Duration::from_secs(5);

/// Gossip state kept by the space (not by [`Gossip`](crate::core::gossip::Gossip)).
#[derive(Debug)]
pub(super) struct Glue {
    /// Inbound gossip messages waiting for [`Space::gossip_step`] (bounded).
    pub(super) inbox: VecDeque<(Url, GossipMsg)>,
    /// Peer → when we last initiated a round with it (so an unanswered peer is not picked
    /// first again); pruned with the peer store.
    pub(super) tried: HashMap<Url, Timestamp>,
    next_round: Timestamp,
    last_persist: Timestamp,
    /// The model has changes not yet handed to the store.
    dirty: bool,
    /// The slices of the [`StoreRequest::PersistSliceHashes`] in flight (one at a time, so an
    /// older write never lands after a newer one), kept to hand back to the model if it fails.
    persisting: Option<Vec<(u32, u64)>>,
    last_diff: DiffKind,
    last_round_at: Option<Timestamp>,
    /// Op ids that reached us by a publish announcement, with when: our "new ops since"
    /// lists leave them out for the peers the author surely announced them to as well (see
    /// [`Space::trim_new_ops`]).
    pub(super) announced: BoundedMap<OpId, Timestamp>,
    /// Peer → when we admitted it (its first agent info); pruned with the peer store.
    pub(super) joined: HashMap<Url, Timestamp>,
    /// Due rounds not initiated for the fetch backlog or a bulk intake
    /// ([`GossipSummary::deferred`]).
    deferred_rounds: u64,
    /// The last due round was deferred: rounds start as soon as the fetch backlog is below
    /// [`GOSSIP_FETCH_BACKLOG`] ([`Space::resume_rounds`]), not up to an interval later.
    round_waits: bool,
    /// The bulk intake ([`BULK_INTAKE_OPS`]): the current window's start and count.
    intake_window: (Timestamp, usize),
    /// When the last bulk intake began and when its quiet ends (`None`: there was none).
    bulk: Option<(Timestamp, Timestamp)>,
}

impl Glue {
    /// The first round is due at `now`.
    pub(super) fn new(now: Timestamp) -> Glue {
        Glue {
            inbox: VecDeque::new(),
            tried: HashMap::default(),
            next_round: now,
            last_persist: now,
            dirty: false,
            persisting: None,
            last_diff: DiffKind::None,
            last_round_at: None,
            announced: BoundedMap::new(ANNOUNCED_MEMORY),
            joined: HashMap::default(),
            deferred_rounds: 0,
            round_waits: false,
            intake_window: (now, 0),
            bulk: None,
        }
    }
}

/// The peer store as gossip's [`AgentInfos`] at one moment.
pub(super) struct PeerInfos<'a> {
    pub(super) peers: &'a PeerStore,
    pub(super) now: Timestamp,
}

impl AgentInfos for PeerInfos<'_> {
    fn has(&self, agent: &[u8]) -> bool {
        let id = AgentId::from_bytes(Bytes::copy_from_slice(agent));
        self.peers.get(self.now, &id).is_some()
    }

    fn info(&self, agent: &[u8]) -> Option<Bytes> {
        let id = AgentId::from_bytes(Bytes::copy_from_slice(agent));
        let info = self.peers.get(self.now, &id)?;
        Some(Bytes::copy_from_slice(info.encode().as_bytes()))
    }
}

impl Space {
    /// Builds the DHT model from `store` ([`crate::core::dht::store::load`]). Call it once,
    /// before carrying out any output, on a store that already holds ops (a reload); a space
    /// starts with an empty model, right for an empty store. Until it is called the space
    /// also takes its store for empty when deciding which announced ids need no store
    /// lookup ([`crate::core::known::HeldIds`]); on a store that does hold ops, skipping it
    /// costs redundant fetches (the store dedups them).
    ///
    /// # Errors
    /// [`DhtLoadError`]; the space keeps the model it had.
    pub async fn load_model(
        &mut self,
        store: &dyn OpStore,
        now: Timestamp,
    ) -> Result<(), DhtLoadError> {
        self.dht = dht_store::load(store, TIME_FACTOR, self.cfg.locator, now).await?;
        if self.dht.op_count() > 0 {
            self.held.give_up();
        }
        self.glue.dirty = true;
        Ok(())
    }

    /// Whether inbound gossip waits for [`Space::gossip_step`]. Check after draining outputs.
    pub fn gossip_ready(&self) -> bool {
        !self.glue.inbox.is_empty()
    }

    /// The gossip summary: counters, last diff, our top hashes.
    pub fn gossip_summary(&self) -> GossipSummary {
        let ours = SectorSet::from_arcs(&[self.arc]);
        let (disc_top_hash, ring_top_hashes) = match self.dht.snapshot_minimal(&ours) {
            Ok(DhtSnapshot::Minimal {
                disc_top_hash,
                ring_top_hashes,
                ..
            }) => (disc_top_hash, ring_top_hashes),
            _ => (Bytes::new(), Vec::new()),
        };
        GossipSummary {
            stats: self.gossip.stats(),
            last_diff: self.glue.last_diff,
            last_round_at: self.glue.last_round_at,
            deferred: self.glue.deferred_rounds,
            interval: self.gossip.scheduler().interval(),
            op_count: self.dht.op_count(),
            disc_top_hash,
            ring_top_hashes,
        }
    }

    /// Starts rounds at once and at the fast pace (divergence is likely).
    pub(super) fn hurry_gossip(&mut self, now: Timestamp) {
        self.gossip.hurry();
        self.glue.next_round = now;
    }

    /// A gossip message from an admitted peer: queued for [`Space::gossip_step`], or dropped
    /// and counted when the inbox is full.
    pub(super) fn queue_gossip(&mut self, from: Url, msg: GossipMsg) {
        if self.glue.inbox.len() >= self.cfg.max_gossip_inbox {
            self.stats.gossip_dropped += 1;
            return;
        }
        self.glue.inbox.push_back((from, msg));
    }

    /// The earliest gossip deadline: a round timeout, the next round, the model's next
    /// update, the next write of its hashes.
    pub(super) fn gossip_timeout(&self) -> Option<Timestamp> {
        let persist =
            (self.glue.dirty && self.glue.persisting.is_none()).then(|| self.persist_due());
        [
            self.gossip.poll_timeout(),
            Some(self.glue.next_round),
            // Just after: the layout changes once time is past its update moment (a slice
            // fits only when the time left exceeds it), so waking at it exactly would spin.
            Some(self.dht.next_update_at().add_micros(1)),
            persist,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Gossip's timers: round timeouts, the model's time, writing its hashes, new rounds.
    pub(super) fn gossip_timers(&mut self, now: Timestamp) {
        self.gossip.handle_timeout(now);
        if self.dht.next_update_at() < now {
            self.dht.update(now);
            self.glue.dirty = true;
        }
        if self.glue.dirty && self.glue.persisting.is_none() && self.persist_due() <= now {
            self.persist_model(now);
        }
        if self.glue.next_round <= now {
            self.start_rounds(now);
            let next = now.plus(self.gossip.scheduler().interval());
            self.glue.next_round = self.grace_ends(now).map_or(next, |g| g.min(next));
        }
    }

    /// When the earliest gossip grace still running ends ([`Self::in_grace`]): rounds are
    /// due then too, or a joiner admitted just after a tick waits a whole interval more
    /// for its first round (seen in `bench joiner`: at ~2.1 s instead of ~1.05 s).
    fn grace_ends(&self, now: Timestamp) -> Option<Timestamp> {
        self.glue
            .joined
            .values()
            .filter_map(|t| self.grace_end(*t))
            .filter(|end| *end > now)
            .min()
    }

    /// Fetched ops were stored: if the last due round was deferred and nothing holds rounds
    /// off any more, rounds start now. A joiner's next round, which finds the rest of a
    /// difference larger than one message lists, starts once fewer than
    /// [`GOSSIP_FETCH_BACKLOG`] of the last one's ops wait, not up to an interval later.
    pub(super) fn resume_rounds(&mut self, now: Timestamp) {
        if self.glue.round_waits && !self.gossip_waits(now) {
            self.glue.next_round = self.glue.next_round.min(now);
        }
    }

    /// Ops the store newly stored: into the model (exactly once each); `intake` of them
    /// count for the bulk intake ([`BULK_INTAKE_OPS`]): all but those a round of ours found
    /// ([`crate::core::fetch::FetchQueue::is_catch_up`]), which are on the way by no
    /// publish, so the next round, which finds the rest of a large difference, need not
    /// wait for a quiet.
    pub(super) fn inform_stored(&mut self, now: Timestamp, stored: &[StoredOp], intake: usize) {
        if stored.is_empty() {
            return;
        }
        self.dht.inform_ops_stored(stored);
        self.held.add(stored.iter().map(|s| &s.op_id));
        self.glue.dirty = true;
        let (start, count) = &mut self.glue.intake_window;
        if now >= start.plus(INTAKE_WINDOW) {
            (*start, *count) = (now, 0);
        }
        *count += intake;
        if *count >= BULK_INTAKE_OPS {
            let began = match self.glue.bulk {
                Some((began, end)) if end > now => began,
                _ => now,
            };
            self.glue.bulk = Some((began, now.plus(INTAKE_QUIET)));
        }
    }

    /// Whether gossip starts no round now, ours or a peer's: [`GOSSIP_FETCH_BACKLOG`] ops
    /// wait in the fetch queue, or a bulk intake ([`BULK_INTAKE_OPS`]) is under way and
    /// began less than [`MAX_INTAKE_QUIET`] ago.
    pub(super) fn gossip_waits(&self, now: Timestamp) -> bool {
        let intake = self.intake_quiet_end().is_some_and(|end| now < end);
        intake || self.fetch.fetchable() >= GOSSIP_FETCH_BACKLOG
    }

    /// When the quiet of the last bulk intake ends (or ended): [`INTAKE_QUIET`] after its
    /// last window, at most [`MAX_INTAKE_QUIET`] after its first. `None`: there was none.
    fn intake_quiet_end(&self) -> Option<Timestamp> {
        let (began, end) = self.glue.bulk?;
        Some(end.min(began.plus(MAX_INTAKE_QUIET)))
    }

    /// The write of slice hashes is over. A failed one is handed back to the model, so the
    /// next write carries its slices and a watermark again (the stored watermark record
    /// still names the op count of the last write that landed).
    pub(super) fn on_persisted(&mut self, r: Result<(), StoreError>) {
        let slices = self.glue.persisting.take();
        if let Err(e) = r {
            if let Some(slices) = slices {
                self.dht.writes_failed(&slices);
                self.glue.dirty = true;
            }
            self.store_failed(e);
        }
    }

    /// When the model's changed hashes are next written: [`PERSIST_INTERVAL`] after the last
    /// write, [`PERSIST_INTERVAL_SYNCING`] while ops wait in the fetch queue, and not before
    /// [`PERSIST_AFTER_INTAKE`] after a bulk intake's quiet.
    fn persist_due(&self) -> Timestamp {
        let pause = if self.fetch.is_empty() {
            PERSIST_INTERVAL
        } else {
            PERSIST_INTERVAL_SYNCING
        };
        let due = self.glue.last_persist.plus(pause);
        match self.intake_quiet_end() {
            Some(end) => due.max(end.plus(PERSIST_AFTER_INTAKE)),
            None => due,
        }
    }

    /// Writes the model's changed hashes now, whatever [`Self::persist_due`] says (unless a
    /// write is under way): the tab is hidden or the space left, the usual last moments
    /// before a page goes away. Unwritten hashes cost the next load a rebuild from the ops
    /// (`dht::store::load`; 1.7–2.1 s for 100 000 ops in the coldstart bench), and a tab
    /// closed within [`PERSIST_AFTER_INTAKE`] of a sync left them unwritten. A write cut
    /// short by the page's end is one aborted transaction (the watermark is in it), so the
    /// store keeps the last complete one.
    pub(super) fn persist_now(&mut self, now: Timestamp) {
        if self.glue.dirty && self.glue.persisting.is_none() {
            self.persist_model(now);
        }
    }

    fn persist_model(&mut self, now: Timestamp) {
        self.glue.dirty = false;
        self.glue.last_persist = now;
        let writes = self.dht.take_writes();
        if !writes.hashes.is_empty() || writes.watermark.is_some() {
            self.glue.persisting = Some(writes.slices());
            self.store(StoreRequest::PersistSliceHashes(writes), Pending::Persist);
        }
    }

    /// Initiates rounds with as many peers as free slots allow: reachable (membership did
    /// not declare them down), admitted at least
    /// [`SpaceConfig::gossip_grace`](super::SpaceConfig::gossip_grace) ago, sharing a sector
    /// with us, the longest since we last tried. None while [`Space::gossip_waits`].
    fn start_rounds(&mut self, now: Timestamp) {
        self.glue.round_waits = self.gossip_waits(now);
        if self.glue.round_waits {
            self.glue.deferred_rounds += 1;
            return;
        }
        let free = self
            .cfg
            .gossip
            .max_concurrent_initiated
            .saturating_sub(self.gossip.initiated_open());
        if free == 0 {
            return;
        }
        let candidates: Vec<Candidate> = self
            .peers
            .reachable(now, &self.agent)
            .into_iter()
            .filter_map(|a| {
                let url = a.url.clone()?;
                if self.in_grace(now, &url) {
                    return None;
                }
                let tried = self.glue.tried.get(&url).copied();
                Some(Candidate {
                    sectors: SectorSet::from_arcs(&[a.storage_arc]),
                    responsive: true,
                    last_gossip: tried.max(self.gossip.last_gossip(&url)),
                    url,
                })
            })
            .collect();
        let ours = SectorSet::from_arcs(&[self.arc]);
        let gossip = &self.gossip;
        let picked = pick_peers(&candidates, &ours, |u| gossip.in_round_with(u), free);
        for url in picked {
            self.initiate_with(now, url);
        }
    }

    /// Whether `url` was admitted less than
    /// [`SpaceConfig::gossip_grace`](super::SpaceConfig::gossip_grace) ago, with
    /// introductions on.
    fn in_grace(&self, now: Timestamp, url: &Url) -> bool {
        self.glue
            .joined
            .get(url)
            .is_some_and(|t| self.grace_end(*t).is_some_and(|e| e > now))
    }

    /// When the gossip grace of a peer admitted at `joined` ends; `None` with introductions
    /// off (no grace: rounds are how a joiner learns anything).
    fn grace_end(&self, joined: Timestamp) -> Option<Timestamp> {
        (!self.cfg.introduce_recent_ops.is_zero()).then(|| joined.plus(self.cfg.gossip_grace))
    }

    /// A peer membership had declared down is alive again (a healed partition, a woken
    /// tab): a round with it at once rather than at the scheduled interval (up to
    /// [`GossipConfig::steady_interval`](crate::core::gossip::GossipConfig::steady_interval)),
    /// since announcements either way were lost meanwhile. Skipped when a round with it is
    /// open or every initiated slot is taken (the scheduled rounds then find it).
    pub(super) fn gossip_after_heal(&mut self, now: Timestamp, peer: Url) {
        if !self.left {
            self.initiate_with(now, peer);
        }
    }

    pub(super) fn initiate_with(&mut self, now: Timestamp, url: Url) {
        if self
            .gossip
            .initiate(now, url.clone(), self.dht.op_count())
            .is_ok()
        {
            self.glue.tried.insert(url, now);
        }
    }

    /// Moves gossip's outputs: messages to send, ids to fetch, agent infos to check, events.
    pub(super) fn pump_gossip(&mut self, now: Timestamp) -> bool {
        let mut progressed = false;
        while let Some(o) = self.gossip.poll_output() {
            progressed = true;
            match o {
                GossipOutput::Send { to, mut msg } => {
                    self.trim_new_ops(now, &to, &mut msg);
                    self.send_gossip(&to, &msg);
                }
                GossipOutput::Fetch { from, ids } => {
                    let ids: Vec<_> = ids.into_iter().filter(|id| self.wants(id)).collect();
                    self.known.add(&from, ids.iter());
                    self.fetch.add_catch_up(now, ids, &from);
                }
                GossipOutput::CheckAgents { infos, .. } => {
                    for json in infos {
                        self.on_agent_json(now, &json);
                    }
                }
                GossipOutput::Event(e) => self.on_gossip_event(now, e),
            }
        }
        progressed
    }

    /// Leaves out of the "new ops since" list of an outgoing `Accept` or reply the ids `to`
    /// surely or very likely holds: ids it is known to hold ([`crate::core::known::KnownOps`])
    /// and ids whose author surely announced them to `to` too ([`Space::author_told`]).
    /// Kitsune2 lists every op stored since the bookmark, ops fetched from third peers
    /// included: after an 8-peer import each round re-sent all 1 000 ids (2.9x the dataset
    /// received per peer in `tests/sim.rs`). A lost announcement is still repaired: by the
    /// author's own list, or by the DHT diff. Same messages, fewer ids; the bookmark is
    /// unchanged.
    fn trim_new_ops(&self, now: Timestamp, to: &Url, msg: &mut GossipMsg) {
        let ids = match msg {
            GossipMsg::Accept(m) => &mut m.new_ops,
            GossipMsg::NoDiff(m) => match &mut m.accept_response {
                Some(r) => &mut r.new_ops,
                None => return,
            },
            GossipMsg::DiscSectorsDiff(m) => match &mut m.accept_response {
                Some(r) => &mut r.new_ops,
                None => return,
            },
            GossipMsg::RingSectorDetailsDiff(m) => match &mut m.accept_response {
                Some(r) => &mut r.new_ops,
                None => return,
            },
            _ => return,
        };
        let arcs: Vec<_> = self
            .peers
            .reachable(now, &self.agent)
            .iter()
            .map(|a| a.storage_arc)
            .collect();
        ids.retain(|b| {
            let id = OpId::from_bytes(b.clone());
            !self.known.holds(to, &id) && !self.author_told(&arcs, to, &id)
        });
    }

    /// Whether the author of `id`, which announced it to us, surely announced it to `to` as
    /// well: `to` was admitted here at least [`ANNOUNCE_MARGIN`] before the announcement
    /// reached us (so the author knew it too), and no more reachable peers (`arcs`, as we
    /// see them) hold the op's location than the author announces to
    /// ([`crate::core::publish::PublishConfig::target_count`]), so `to` was a target. A
    /// late joiner, or one peer of many, was not told and keeps the id in its list.
    fn author_told(&self, arcs: &[DhtArc], to: &Url, id: &OpId) -> bool {
        let (Some(told_at), Some(joined)) = (self.glue.announced.get(id), self.glue.joined.get(to))
        else {
            return false;
        };
        if joined.plus(ANNOUNCE_MARGIN) > *told_at {
            return false;
        }
        let loc = self.cfg.locator.op_loc(id);
        arcs.iter().filter(|a| a.contains(loc)).count() <= self.cfg.publish.target_count
    }

    /// A finished round feeds the pace (a diff brings the next round forward; disc and ring
    /// both differing starts the ring round at once); a malformed message is misbehaviour.
    /// A timed-out round only ends: whether the peer is alive is membership's call.
    fn on_gossip_event(&mut self, now: Timestamp, e: GossipEvent) {
        match e {
            GossipEvent::RoundCompleted { peer, summary } => {
                self.glue.last_diff = summary.diff;
                self.glue.last_round_at = Some(now);
                if summary.role == Role::Initiator {
                    let next = now.plus(self.gossip.scheduler().interval());
                    self.glue.next_round = self.glue.next_round.min(next);
                    if summary.rings_pending {
                        self.initiate_with(now, peer);
                    }
                }
            }
            GossipEvent::Misbehaved { peer, error } => {
                self.stats.gossip_refused += 1;
                if matches!(error, GossipError::Malformed(_)) {
                    self.misbehaved(now, &peer, format!("gossip: {error}"));
                }
            }
            GossipEvent::Busy { .. }
            | GossipEvent::TimedOut { .. }
            | GossipEvent::Terminated { .. } => {}
        }
    }
}
