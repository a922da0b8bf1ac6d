//! Catch-up: the "new ops since" part of Kitsune2's gossip round, as a sans-IO state machine.
//!
//! Kitsune2 (`crates/gossip/src/{initiate,respond/*,gossip}.rs`, report §4.2–4.4): the
//! initiator sends `Initiate{new_since, max_op_data_bytes}`; the acceptor answers
//! `Accept{new_ops, updated_new_since}` with the ids of the ops *it stored* since the
//! initiator's `new_since` (its own stored-at clock, as many as fit the byte budget), plus its
//! own `new_since` and budget; the initiator answers with the same kind of list inside the
//! `accept_response` of its next message. Each side keeps the `updated_new_since` the other
//! returned as a per-peer bookmark (24 h) and sends it as `new_since` next time. Ids received
//! go to the fetch queue.
//!
//! This module runs only that part. The sector diff is not run: our `Accept` carries no DHT
//! snapshot and our reply is always `NoDiff{cannot_compare: true}`. A Kitsune2 initiator that
//! still answers with a diff message has its `accept_response` used and the round ended with
//! `Terminate`.
//!
//! fennec's rules beyond Kitsune2:
//! - with no bookmark for a peer, `new_since` is [`CatchUpConfig::default_new_since_window`]
//!   before now, or the epoch (everything, paged by the byte budget) when `None`, the default,
//!   because there is no sector diff to repair older data;
//! - one message carries at most [`CatchUpConfig::max_new_op_ids`] ids, so it stays under the
//!   frame limit; [`fit`] says when to ask the store again with a smaller budget (cutting the
//!   list would break the bookmark);
//! - a round that gets no answer within [`CatchUpConfig::round_timeout`] reports its peer
//!   ([`CatchUp::handle_timeout`]) so the caller marks it unresponsive (Kitsune2 #541 retried
//!   such peers forever);
//! - [`KnownOps`] remembers, per peer, op ids the peer is known to hold, so they are left out
//!   of what we send it.
//!
//! The store lookups in between (ids since a bookmark, filtering ids we hold) are done by the
//! caller ([`crate::core::space`]); this module keeps the round state, bookmarks and timers.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;

use crate::api::BoundedOpIds;
use crate::core::bounded::BoundedSet;
use crate::core::config::{ConfigError, at_least_one, positive};
use crate::model::arc::DhtArc;
use crate::model::id::{AgentId, OpId};
use crate::model::time::{Timestamp, micros};
use crate::model::url::Url;
use crate::wire::{
    AcceptResponseMessage, ArcSetMessage, GossipMsg, K2GossipAcceptMessage, K2GossipAgentsMessage,
    K2GossipBusyMessage, K2GossipInitiateMessage, K2GossipNoDiffMessage, K2GossipTerminateMessage,
};

/// Settings of [`CatchUp`]. Sizes in bytes of op data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUpConfig {
    /// Pause between rounds we initiate once caught up. Default 60 s (Kitsune2: 120 s).
    pub initiate_interval: Duration,
    /// Pause between rounds while catching up: while each completed round reached a peer we had
    /// not caught up with yet, until rounds with [`Self::fast_rounds`] distinct
    /// peers are done, and after any round that brought op ids we lacked
    /// ([`CatchUp::hurry`]). Default 1 s (Kitsune2 `initialInitiateIntervalMs`).
    pub initial_initiate_interval: Duration,
    /// Random extra pause in `[0, jitter)` after [`Self::initiate_interval`]. Default 5 s.
    pub initiate_jitter: Duration,
    /// Distinct peers to complete a round with before slowing down. Default 3.
    pub fast_rounds: usize,
    /// A round without an answer for this long is over. Default 15 s (Kitsune2
    /// `roundTimeoutMs`).
    pub round_timeout: Duration,
    /// The byte budget we ask peers for (`max_op_data_bytes`). Default 4 MiB.
    pub max_op_data_bytes: u32,
    /// Cap on the budget a peer asks of us. Default 4 MiB.
    pub max_request_op_data_bytes: u32,
    /// Most op ids in one message. Default 16 384 (about 560 KiB).
    pub max_new_op_ids: usize,
    /// How long a bookmark is kept. Default 24 h (Kitsune2 `gossip:new_ops_bookmark`).
    pub bookmark_expiry: Duration,
    /// Rounds accepted at once; more get `Busy`. Default 10 (Kitsune2
    /// `maxConcurrentAcceptedRounds`).
    pub max_concurrent_accepted: usize,
    /// Initiates accepted per peer per [`Self::burst_window`]; more are answered `Busy` (not
    /// dropped: a dropped Initiate times out and looks like a dead peer). Default 15
    /// (Kitsune2: burst factor 3 × window count 5).
    pub burst_count: usize,
    /// See [`Self::burst_count`]. Default 10 min.
    pub burst_window: Duration,
    /// With no bookmark, ask for ops stored this long ago and later; `None` (default): since
    /// the epoch. Kitsune2 uses 30 min (`2 × UNIT_TIME`) and leaves the rest to the diff.
    pub default_new_since_window: Option<Duration>,
}

impl Default for CatchUpConfig {
    fn default() -> Self {
        CatchUpConfig {
            initiate_interval: Duration::from_secs(60),
            initial_initiate_interval: Duration::from_secs(1),
            initiate_jitter: Duration::from_secs(5),
            fast_rounds: 3,
            round_timeout: Duration::from_secs(15),
            max_op_data_bytes: 4 * 1024 * 1024,
            max_request_op_data_bytes: 4 * 1024 * 1024,
            max_new_op_ids: 16_384,
            bookmark_expiry: Duration::from_secs(24 * 60 * 60),
            max_concurrent_accepted: 10,
            burst_count: 15,
            burst_window: Duration::from_secs(10 * 60),
            default_new_since_window: None,
        }
    }
}

impl CatchUpConfig {
    /// Checks every field (paths as inside [`crate::core::space::SpaceConfig`]).
    ///
    /// # Errors
    /// The first field that is zero where at least 1 is needed, or a zero interval.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("catch_up.initiate_interval", self.initiate_interval)?;
        positive(
            "catch_up.initial_initiate_interval",
            self.initial_initiate_interval,
        )?;
        at_least_one("catch_up.fast_rounds", self.fast_rounds as u64)?;
        positive("catch_up.round_timeout", self.round_timeout)?;
        at_least_one(
            "catch_up.max_op_data_bytes",
            u64::from(self.max_op_data_bytes),
        )?;
        at_least_one(
            "catch_up.max_request_op_data_bytes",
            u64::from(self.max_request_op_data_bytes),
        )?;
        at_least_one("catch_up.max_new_op_ids", self.max_new_op_ids as u64)?;
        positive("catch_up.bookmark_expiry", self.bookmark_expiry)?;
        at_least_one(
            "catch_up.max_concurrent_accepted",
            self.max_concurrent_accepted as u64,
        )?;
        at_least_one("catch_up.burst_count", self.burst_count as u64)?;
        positive("catch_up.burst_window", self.burst_window)
    }
}

/// A message that does not fit the round it claims to belong to: a peer behaviour error
/// (Kitsune2 counts these; so do we, and drop the message).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoundError {
    /// No round with this peer and session is waiting for this message.
    #[error("unexpected {0} message: no matching round")]
    Unexpected(&'static str),
    /// The peer initiated again while a round it initiated is still open, or too often.
    #[error("initiate too soon")]
    TooSoon,
    /// An arc set with more than 16 words.
    #[error("malformed arc set: {0} words, at most 16")]
    BadArcSet(usize),
}

/// What catch-up asks of its driver ([`CatchUp::poll_output`]), the convention of every
/// sans-IO machine here (`poll_output` / `poll_timeout` / `handle_timeout`, as quinn-proto and
/// the sbd client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchUpOutput {
    /// Send `msg` to `to` ([`crate::wire::encode_gossip`]).
    Send {
        /// Peer URL.
        to: Url,
        /// The k2gossip message (boxed: messages are large, timeouts small).
        msg: Box<GossipMsg>,
    },
    /// The round we initiated with `peer` got no answer in
    /// [`CatchUpConfig::round_timeout`]: treat the peer as unresponsive.
    RoundTimedOut {
        /// The silent peer.
        peer: Url,
    },
}

/// The acceptor's verdict on an `Initiate` ([`CatchUp::on_initiate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitiateVerdict {
    /// Accept: look up the ids the peer asked for, then call [`CatchUp::accept`].
    Accept(Request),
    /// Too many rounds: a `Busy` is queued ([`CatchUp::poll_output`]).
    Busy,
    /// Our own simultaneous initiate to this peer wins the tie-break: ignore theirs.
    Ignore,
}

/// What a peer asked of us: "ids of ops you stored in `arc` since `since`, up to
/// `limit_bytes` of op data" (`OpStore::retrieve_op_ids_bounded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The session.
    pub session_id: Bytes,
    /// The arc to query: the smallest arc covering the sectors both sides hold (ids outside
    /// the asker's own arc may come along; it filters them).
    pub arc: DhtArc,
    /// The asker's `new_since` bookmark (our stored-at clock).
    pub since: Timestamp,
    /// Byte budget, capped by [`CatchUpConfig::max_request_op_data_bytes`].
    pub limit_bytes: u32,
    /// The asker's agents (`participating_agents`).
    pub agents: Vec<AgentId>,
}

/// What an `Accept` brought the initiator ([`CatchUp::on_accept`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptIn {
    /// What the acceptor asks of us; answer with [`CatchUp::respond`].
    pub request: Request,
    /// Op ids the acceptor stored since our bookmark: filter out those we hold, fetch the
    /// rest from the acceptor.
    pub new_ops: Vec<OpId>,
    /// Our next bookmark with this peer; apply with [`CatchUp::set_bookmark`] once the ids
    /// are queued (not before, so ids refused by a full queue are asked for again).
    pub updated_new_since: Timestamp,
    /// Our bookmark before this round, for [`CatchUp::rewind`] if a fetch of these ops fails.
    pub previous_new_since: Timestamp,
    /// Agent ids of ours the acceptor lacks infos for: send them in the reply.
    pub missing_agents: Vec<AgentId>,
}

/// What the initiator's reply brought the acceptor ([`CatchUp::on_reply`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyIn {
    /// Op ids the initiator stored since our bookmark (fetch the missing ones from it).
    pub new_ops: Vec<OpId>,
    /// Our next bookmark with this peer (see [`AcceptIn::updated_new_since`]).
    pub updated_new_since: Timestamp,
    /// Our bookmark before the round (see [`AcceptIn::previous_new_since`]).
    pub previous_new_since: Timestamp,
    /// Agent infos (JSON) the initiator provided.
    pub provided_agents: Vec<Bytes>,
}

/// How a store answer fits a message: see [`fit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Use it.
    Fits,
    /// Too many ids for one message: query again with this byte limit.
    RetryWith(u32),
}

/// Whether `ids` (from a query with `limit_bytes`) fits one message of at most `max_ids` ids.
/// If not, the query is repeated with half the limit (at least 1 byte), so that the bookmark
/// the store returns stays exact.
pub fn fit(ids: &BoundedOpIds, limit_bytes: u32, max_ids: usize) -> Fit {
    if ids.op_ids.len() <= max_ids || limit_bytes <= 1 {
        Fit::Fits
    } else {
        Fit::RetryWith((limit_bytes / 2).max(1))
    }
}

/// Counters, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpStats {
    /// Rounds we initiated.
    pub initiated: u64,
    /// Rounds we initiated that completed.
    pub completed: u64,
    /// Rounds we accepted.
    pub accepted: u64,
    /// Initiates answered with `Busy` or dropped as too soon.
    pub refused: u64,
    /// Rounds that timed out.
    pub timeouts: u64,
    /// Messages that fit no round.
    pub behaviour_errors: u64,
    /// Op ids received in `new_ops`.
    pub ids_received: u64,
    /// Op ids sent in `new_ops`.
    pub ids_sent: u64,
}

/// Sizes of [`CatchUp`]'s per-peer maps (see [`CatchUp::sizes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUpSizes {
    /// Rounds accepted and open.
    pub accepted: usize,
    /// Per-peer bookmarks.
    pub bookmarks: usize,
    /// Per-peer time of the last round.
    pub last_round: usize,
    /// Per-peer recent initiate times (burst limit).
    pub accept_times: usize,
    /// Peers a round we initiated completed with.
    pub done_with: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum IStage {
    AwaitAccept,
    Responding,
}

#[derive(Debug, Clone)]
struct Initiated {
    peer: Url,
    session: Bytes,
    tie_breaker: u32,
    deadline: Timestamp,
    stage: IStage,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AStage {
    Looking,
    AwaitReply,
}

#[derive(Debug, Clone)]
struct Accepted {
    session: Bytes,
    deadline: Timestamp,
    stage: AStage,
    arc: DhtArc,
}

/// Catch-up state of one local agent in one space (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct CatchUp {
    cfg: CatchUpConfig,
    agent: AgentId,
    arc: DhtArc,
    initiated: Option<Initiated>,
    accepted: HashMap<Url, Accepted>,
    bookmarks: HashMap<Url, (Timestamp, Timestamp)>,
    last_round: HashMap<Url, Timestamp>,
    accept_times: HashMap<Url, VecDeque<Timestamp>>,
    done_with: HashSet<Url>,
    next_initiate: Timestamp,
    rng: u64,
    stats: CatchUpStats,
    out: VecDeque<CatchUpOutput>,
}

impl CatchUp {
    /// Catch-up for `agent` holding `arc`, starting at `now`; `seed` feeds session ids,
    /// tie-breakers and jitter. The first round is due at once.
    pub fn new(cfg: CatchUpConfig, agent: AgentId, arc: DhtArc, now: Timestamp, seed: u64) -> Self {
        CatchUp {
            cfg,
            agent,
            arc,
            initiated: None,
            accepted: HashMap::new(),
            bookmarks: HashMap::new(),
            last_round: HashMap::new(),
            accept_times: HashMap::new(),
            done_with: HashSet::new(),
            next_initiate: now,
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
            stats: CatchUpStats::default(),
            out: VecDeque::new(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> CatchUpStats {
        self.stats
    }

    /// Sizes of the per-peer maps.
    pub fn sizes(&self) -> CatchUpSizes {
        CatchUpSizes {
            accepted: self.accepted.len(),
            bookmarks: self.bookmarks.len(),
            last_round: self.last_round.len(),
            accept_times: self.accept_times.len(),
            done_with: self.done_with.len(),
        }
    }

    /// Forgets every peer for which `keep` is false (it left, expired or changed its URL):
    /// its bookmark, round times, burst window and open rounds. Expired bookmarks and burst
    /// windows of kept peers are dropped too. A forgotten peer that comes back is treated as
    /// new (no bookmark: it is offered ops since [`CatchUpConfig::default_new_since_window`]).
    pub fn retain_peers(&mut self, now: Timestamp, mut keep: impl FnMut(&Url) -> bool) {
        let expiry = micros(self.cfg.bookmark_expiry);
        let window = micros(self.cfg.burst_window);
        self.bookmarks
            .retain(|u, (_, set_at)| now.micros_since(*set_at) < expiry && keep(u));
        self.accept_times.retain(|u, times| {
            times.back().is_some_and(|t| now.micros_since(*t) < window) && keep(u)
        });
        self.last_round.retain(|u, _| keep(u));
        self.done_with.retain(|u| keep(u));
        self.accepted.retain(|u, _| keep(u));
        if self.initiated.as_ref().is_some_and(|i| !keep(&i.peer)) {
            self.initiated = None;
            self.schedule_next(now, true);
        }
    }

    /// Changes the storage arc we gossip for.
    pub fn set_arc(&mut self, arc: DhtArc) {
        self.arc = arc;
    }

    /// Whether a round we initiate is open.
    pub fn is_initiating(&self) -> bool {
        self.initiated.is_some()
    }

    /// The `new_since` we send `peer`: its bookmark, or the default.
    pub fn new_since(&self, now: Timestamp, peer: &Url) -> Timestamp {
        match self.bookmarks.get(peer) {
            Some((b, set_at)) if now.micros_since(*set_at) < micros(self.cfg.bookmark_expiry) => *b,
            _ => match self.cfg.default_new_since_window {
                Some(w) => now.minus(w),
                None => Timestamp::UNIX_EPOCH,
            },
        }
    }

    /// Stores `peer`'s `updated_new_since` for us.
    pub fn set_bookmark(&mut self, now: Timestamp, peer: Url, bookmark: Timestamp) {
        self.bookmarks.insert(peer, (bookmark, now));
    }

    /// Moves `peer`'s bookmark back to `to` if it is later, so the ops since then are
    /// offered again (after a fetch of ids learned from it failed).
    pub fn rewind(&mut self, now: Timestamp, peer: &Url, to: Timestamp) {
        let cur = self.new_since(now, peer);
        if to < cur {
            self.bookmarks.insert(peer.clone(), (to, now));
        }
    }

    /// Whether it is time to initiate a round (none is open and the pause is over).
    pub fn due(&self, now: Timestamp) -> bool {
        self.initiated.is_none() && self.next_initiate <= now
    }

    /// Among `peers` (reachable, overlapping our arc), the one gossiped with least recently,
    /// never-gossiped first, ties by URL (Kitsune2 `initiate.rs`).
    pub fn pick_target(&self, peers: &[Url]) -> Option<Url> {
        peers
            .iter()
            .min_by(|a, b| {
                let ta = self.last_round.get(*a);
                let tb = self.last_round.get(*b);
                ta.cmp(&tb).then_with(|| a.cmp(b))
            })
            .cloned()
    }

    /// The next thing to do, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<CatchUpOutput> {
        self.out.pop_front()
    }

    fn send(&mut self, to: &Url, msg: GossipMsg) {
        self.out.push_back(CatchUpOutput::Send {
            to: to.clone(),
            msg: Box::new(msg),
        });
    }

    /// Opens a round with `peer`: queues the `Initiate`. If nobody is there to gossip with,
    /// call [`idle`](Self::idle) instead.
    pub fn initiate(&mut self, now: Timestamp, peer: Url) {
        let session = Bytes::copy_from_slice(&self.next_u64().to_le_bytes());
        let tie_breaker = self.next_u64() as u32;
        let msg = K2GossipInitiateMessage {
            session_id: session.clone(),
            participating_agents: vec![self.agent.0.0.clone()],
            arc_set: Some(arc_set_message(self.arc)),
            tie_breaker,
            new_since: self.new_since(now, &peer).as_micros(),
            max_op_data_bytes: self.cfg.max_op_data_bytes,
            dht_op_count: None,
            fennec_reconcile: false,
        };
        self.last_round.insert(peer.clone(), now);
        self.send(&peer, GossipMsg::Initiate(msg));
        self.initiated = Some(Initiated {
            peer,
            session,
            tie_breaker,
            deadline: now.plus(self.cfg.round_timeout),
            stage: IStage::AwaitAccept,
        });
        self.stats.initiated += 1;
    }

    /// Nobody to gossip with now: try again after the short interval.
    pub fn idle(&mut self, now: Timestamp) {
        self.next_initiate = now.plus(self.cfg.initial_initiate_interval);
    }

    /// Handles an `Initiate` from `from` (see [`InitiateVerdict`]).
    ///
    /// # Errors
    /// [`RoundError::TooSoon`] if `from` has a round with us open already;
    /// [`RoundError::BadArcSet`]. Over its [`CatchUpConfig::burst_count`] the verdict is
    /// [`InitiateVerdict::Busy`].
    pub fn on_initiate(
        &mut self,
        now: Timestamp,
        from: &Url,
        msg: K2GossipInitiateMessage,
    ) -> Result<InitiateVerdict, RoundError> {
        let theirs = self.their_arc(msg.arc_set.as_ref())?;
        if let Some(i) = &self.initiated
            && &i.peer == from
            && i.stage == IStage::AwaitAccept
        {
            // Simultaneous initiates: the higher tie-breaker wins (Kitsune2
            // `respond/initiate.rs`); the loser drops its own round and accepts.
            if i.tie_breaker > msg.tie_breaker {
                return Ok(InitiateVerdict::Ignore);
            }
            self.initiated = None;
            self.next_initiate = now.plus(self.cfg.initial_initiate_interval);
        }
        if self.accepted.contains_key(from) {
            self.stats.behaviour_errors += 1;
            self.stats.refused += 1;
            return Err(RoundError::TooSoon);
        }
        let times = self.accept_times.entry(from.clone()).or_default();
        while times
            .front()
            .is_some_and(|t| now.micros_since(*t) >= micros(self.cfg.burst_window))
        {
            times.pop_front();
        }
        // Over its burst, or with too many rounds open, the peer hears `Busy` at once: a
        // dropped Initiate would only time out and make a live peer look unresponsive.
        let over_burst = times.len() >= self.cfg.burst_count;
        if over_burst || self.accepted.len() >= self.cfg.max_concurrent_accepted {
            self.stats.refused += 1;
            let busy = K2GossipBusyMessage {
                session_id: msg.session_id,
            };
            self.send(from, GossipMsg::Busy(busy));
            return Ok(InitiateVerdict::Busy);
        }
        times.push_back(now);
        let arc = self.arc.sector_intersection(&theirs);
        self.accepted.insert(
            from.clone(),
            Accepted {
                session: msg.session_id.clone(),
                deadline: now.plus(self.cfg.round_timeout),
                stage: AStage::Looking,
                arc,
            },
        );
        self.last_round.insert(from.clone(), now);
        self.stats.accepted += 1;
        Ok(InitiateVerdict::Accept(self.request(
            msg.session_id,
            arc,
            msg.new_since,
            msg.max_op_data_bytes,
            msg.participating_agents,
        )))
    }

    /// The acceptor's answer, once the ids for [`InitiateVerdict::Accept`] were looked up:
    /// `found` are those ids (ones `from` is known to hold already removed), `bookmark` the
    /// store's `next_bookmark`, `missing_agents` the initiator's agents we lack infos for.
    /// Queues the `Accept`; nothing if the round is gone (timed out).
    pub fn accept(
        &mut self,
        now: Timestamp,
        from: &Url,
        found: Vec<OpId>,
        bookmark: Timestamp,
        missing_agents: Vec<AgentId>,
    ) {
        let Some(a) = self.accepted.get_mut(from) else {
            return;
        };
        if a.stage != AStage::Looking {
            return;
        }
        a.stage = AStage::AwaitReply;
        a.deadline = now.plus(self.cfg.round_timeout);
        let session = a.session.clone();
        self.stats.ids_sent += found.len() as u64;
        let accept = K2GossipAcceptMessage {
            session_id: session,
            participating_agents: vec![self.agent.0.0.clone()],
            arc_set: Some(arc_set_message(self.arc)),
            missing_agents: missing_agents.into_iter().map(|a| a.0.0).collect(),
            new_since: self.new_since(now, from).as_micros(),
            max_op_data_bytes: self.cfg.max_op_data_bytes,
            new_ops: found.into_iter().map(|id| id.0.0).collect(),
            updated_new_since: bookmark.as_micros(),
            dht_op_count: None,
            snapshot: None,
            fennec_reconcile: false,
        };
        self.send(from, GossipMsg::Accept(accept));
    }

    /// Handles an `Accept` for the round we initiated with `from`.
    ///
    /// # Errors
    /// [`RoundError::Unexpected`] if we have no such round waiting; [`RoundError::BadArcSet`].
    pub fn on_accept(
        &mut self,
        now: Timestamp,
        from: &Url,
        msg: K2GossipAcceptMessage,
    ) -> Result<AcceptIn, RoundError> {
        let ok = self.initiated.as_ref().is_some_and(|i| {
            &i.peer == from && i.session == msg.session_id && i.stage == IStage::AwaitAccept
        });
        if !ok {
            self.stats.behaviour_errors += 1;
            return Err(RoundError::Unexpected("Accept"));
        }
        let theirs = self.their_arc(msg.arc_set.as_ref())?;
        if let Some(i) = self.initiated.as_mut() {
            i.stage = IStage::Responding;
            i.deadline = now.plus(self.cfg.round_timeout);
        }
        let previous = self.new_since(now, from);
        self.stats.ids_received += msg.new_ops.len() as u64;
        Ok(AcceptIn {
            request: self.request(
                msg.session_id,
                self.arc.sector_intersection(&theirs),
                msg.new_since,
                msg.max_op_data_bytes,
                msg.participating_agents,
            ),
            new_ops: msg.new_ops.into_iter().map(OpId::from).collect(),
            updated_new_since: Timestamp(msg.updated_new_since),
            previous_new_since: previous,
            missing_agents: msg.missing_agents.into_iter().map(AgentId::from).collect(),
        })
    }

    /// The initiator's reply, once the ids for [`AcceptIn::request`] were looked up: queues
    /// the `NoDiff` and ends the round; nothing if the round is gone.
    pub fn respond(
        &mut self,
        now: Timestamp,
        to: &Url,
        found: Vec<OpId>,
        bookmark: Timestamp,
        missing_agents: Vec<AgentId>,
        provided_agents: Vec<Bytes>,
    ) {
        let Some(i) = self.initiated.as_ref() else {
            return;
        };
        if &i.peer != to || i.stage != IStage::Responding {
            return;
        }
        let session = i.session.clone();
        self.initiated = None;
        self.stats.completed += 1;
        self.stats.ids_sent += found.len() as u64;
        // Fast only while rounds still reach peers we have not caught up with. Counting distinct
        // peers alone kept a space with fewer than `fast_rounds` peers in 1 s rounds for ever:
        // its peer's burst limit then refused the 16th Initiate, the round timed out, and an
        // idle, healthy peer was marked unresponsive ~31.7 s after joining (issue 9).
        let new_peer = self.done_with.insert(to.clone());
        let fast = new_peer && self.done_with.len() < self.cfg.fast_rounds;
        self.schedule_next(now, fast);
        let reply = K2GossipNoDiffMessage {
            session_id: session,
            accept_response: Some(AcceptResponseMessage {
                missing_agents: missing_agents.into_iter().map(|a| a.0.0).collect(),
                provided_agents,
                new_ops: found.into_iter().map(|id| id.0.0).collect(),
                updated_new_since: bookmark.as_micros(),
            }),
            cannot_compare: true,
        };
        self.send(to, GossipMsg::NoDiff(reply));
    }

    /// A round brought op ids we lacked: we are behind, so the next round we initiate comes
    /// after the short interval (Kitsune2 initiates fast while below its target arc).
    pub fn hurry(&mut self, now: Timestamp) {
        let soon = now.plus(self.cfg.initial_initiate_interval);
        if soon < self.next_initiate {
            self.next_initiate = soon;
        }
    }

    /// Handles the initiator's reply to our `Accept`: `NoDiff`, or a Kitsune2 diff message
    /// (`session_id` and `accept_response` given by the caller), ending the accepted round.
    /// `diff` says it was a diff message, which gets a `Terminate` back. The initiator's
    /// `missing_agents` are answered first, with an `Agents` message of the infos `provide`
    /// returns for them (if any). Both are queued ([`CatchUp::poll_output`]).
    ///
    /// # Errors
    /// [`RoundError::Unexpected`] if no accepted round with `from` awaits a reply.
    pub fn on_reply(
        &mut self,
        now: Timestamp,
        from: &Url,
        session_id: &Bytes,
        response: Option<AcceptResponseMessage>,
        diff: bool,
        provide: impl FnOnce(&[AgentId]) -> Vec<Bytes>,
    ) -> Result<ReplyIn, RoundError> {
        let ok = self
            .accepted
            .get(from)
            .is_some_and(|a| a.session == *session_id && a.stage == AStage::AwaitReply);
        if !ok {
            self.stats.behaviour_errors += 1;
            return Err(RoundError::Unexpected("NoDiff"));
        }
        self.accepted.remove(from);
        let previous = self.new_since(now, from);
        let r = response.unwrap_or_default();
        self.stats.ids_received += r.new_ops.len() as u64;
        let updated = if r.updated_new_since == 0 && r.new_ops.is_empty() {
            previous
        } else {
            Timestamp(r.updated_new_since)
        };
        let missing: Vec<AgentId> = r.missing_agents.into_iter().map(AgentId::from).collect();
        if !missing.is_empty() {
            let provided = provide(&missing);
            if !provided.is_empty() {
                self.provide_agents(from, session_id.clone(), provided);
            }
        }
        if diff {
            let terminate = K2GossipTerminateMessage {
                session_id: session_id.clone(),
                reason: "fennec runs no sector diff".into(),
            };
            self.send(from, GossipMsg::Terminate(terminate));
        }
        Ok(ReplyIn {
            new_ops: r.new_ops.into_iter().map(OpId::from).collect(),
            updated_new_since: updated,
            previous_new_since: previous,
            provided_agents: r.provided_agents,
        })
    }

    /// Queues an `Agents` message to `to` answering the `missing_agents` of a round
    /// (Kitsune2 `K2GossipAgentsMessage`).
    fn provide_agents(&mut self, to: &Url, session_id: Bytes, provided_agents: Vec<Bytes>) {
        let agents = K2GossipAgentsMessage {
            session_id,
            provided_agents,
        };
        self.send(to, GossipMsg::Agents(agents));
    }

    /// `Busy` or `Terminate` from `from` for `session_id`: the round with it is over.
    /// Returns whether a round was closed.
    pub fn on_end(&mut self, now: Timestamp, from: &Url, session_id: &Bytes) -> bool {
        if self
            .initiated
            .as_ref()
            .is_some_and(|i| &i.peer == from && i.session == *session_id)
        {
            self.initiated = None;
            self.schedule_next(now, true);
            return true;
        }
        if self
            .accepted
            .get(from)
            .is_some_and(|a| a.session == *session_id)
        {
            self.accepted.remove(from);
            return true;
        }
        false
    }

    /// `peer` is gone (unresponsive, disconnected): close our rounds with it. Returns whether
    /// the round we initiated was with it.
    pub fn peer_gone(&mut self, now: Timestamp, peer: &Url) -> bool {
        self.accepted.remove(peer);
        if self.initiated.as_ref().is_some_and(|i| &i.peer == peer) {
            self.initiated = None;
            self.schedule_next(now, true);
            return true;
        }
        false
    }

    /// The arc of the round accepted from `from`, if one is open.
    pub fn accepted_arc(&self, from: &Url) -> Option<DhtArc> {
        self.accepted.get(from).map(|a| a.arc)
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run: the next initiation or
    /// round deadline.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut t = self
            .accepted
            .values()
            .map(|a| a.deadline)
            .min()
            .unwrap_or(Timestamp(i64::MAX));
        match &self.initiated {
            Some(i) => t = t.min(i.deadline),
            None => t = t.min(self.next_initiate),
        }
        Some(t)
    }

    /// Closes rounds past their deadline. Our initiated round timing out queues
    /// [`CatchUpOutput::RoundTimedOut`] (mark its peer unresponsive); accepted rounds just end.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let before = self.accepted.len();
        self.accepted.retain(|_, a| a.deadline > now);
        self.stats.timeouts += (before - self.accepted.len()) as u64;
        if self.initiated.as_ref().is_some_and(|i| i.deadline <= now)
            && let Some(i) = self.initiated.take()
        {
            self.stats.timeouts += 1;
            self.schedule_next(now, true);
            self.out
                .push_back(CatchUpOutput::RoundTimedOut { peer: i.peer });
        }
    }

    /// The peer's arc set as the smallest arc covering it; a malformed set is a behaviour
    /// error.
    fn their_arc(&mut self, set: Option<&ArcSetMessage>) -> Result<DhtArc, RoundError> {
        DhtArc::from_sector_set(set.map_or(&[][..], |a| &a.value)).map_err(|e| {
            self.stats.behaviour_errors += 1;
            RoundError::BadArcSet(e.0)
        })
    }

    /// What a peer's Initiate or Accept asks of our store: its `new_since` (µs, our stored-at
    /// clock) and byte budget (capped by [`CatchUpConfig::max_request_op_data_bytes`]).
    fn request(
        &self,
        session_id: Bytes,
        arc: DhtArc,
        new_since: i64,
        max_op_data_bytes: u32,
        agents: Vec<Bytes>,
    ) -> Request {
        Request {
            session_id,
            arc,
            since: Timestamp(new_since),
            limit_bytes: max_op_data_bytes.min(self.cfg.max_request_op_data_bytes),
            agents: agents.into_iter().map(AgentId::from).collect(),
        }
    }

    fn schedule_next(&mut self, now: Timestamp, fast: bool) {
        let pause = if fast {
            self.cfg.initial_initiate_interval
        } else {
            // A jitter of zero is a valid setting (no jitter), not a division by zero.
            let jitter = match micros(self.cfg.initiate_jitter) as u64 {
                0 => 0,
                j => self.next_u64() % j,
            };
            self.cfg.initiate_interval + Duration::from_micros(jitter)
        };
        self.next_initiate = now.plus(pause);
    }

    /// splitmix64.
    fn next_u64(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn arc_set_message(arc: DhtArc) -> ArcSetMessage {
    ArcSetMessage {
        value: arc.to_sector_set().to_vec(),
    }
}

/// Per peer, op ids it is known to hold, so catch-up and publish do not offer them again:
/// ids it announced to us, ids we fetched from it, ids we served it, ids whose publish
/// announcement we delivered to it.
///
/// Memory is bounded: each peer's set is a FIFO of at most `per_peer` ids, at most
/// `max_peers` peers are tracked (the least recently updated is dropped), and ids are kept as
/// 64-bit fingerprints (8 bytes of the id; op ids are hashes), about 32 bytes per entry. A
/// fingerprint collision only means an op is not offered to one peer by catch-up; other peers
/// and later rounds still offer it.
#[derive(Debug, Clone)]
pub struct KnownOps {
    per_peer: usize,
    max_peers: usize,
    peers: HashMap<Url, (BoundedSet<u64>, u64)>,
    tick: u64,
}

fn fingerprint(id: &OpId) -> u64 {
    let mut b = [0u8; 8];
    let src = id.as_bytes();
    let n = src.len().min(8);
    b[..n].copy_from_slice(&src[..n]);
    u64::from_le_bytes(b)
}

impl KnownOps {
    /// Empty, with the given bounds.
    pub fn new(per_peer: usize, max_peers: usize) -> Self {
        KnownOps {
            per_peer,
            max_peers,
            peers: HashMap::new(),
            tick: 0,
        }
    }

    /// Records that `peer` holds `ids`.
    pub fn add<'a>(&mut self, peer: &Url, ids: impl IntoIterator<Item = &'a OpId>) {
        if self.per_peer == 0 || self.max_peers == 0 {
            return;
        }
        self.tick += 1;
        if !self.peers.contains_key(peer) && self.peers.len() >= self.max_peers {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(u, (_, t))| (*t, (*u).clone()))
                .map(|(u, _)| u.clone());
            if let Some(u) = oldest {
                self.peers.remove(&u);
            }
        }
        let per_peer = self.per_peer;
        let (set, t) = self
            .peers
            .entry(peer.clone())
            .or_insert_with(|| (BoundedSet::new(per_peer), 0));
        *t = self.tick;
        for id in ids {
            set.insert(fingerprint(id));
        }
    }

    /// Whether `peer` is known to hold `id`.
    pub fn holds(&self, peer: &Url, id: &OpId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|(s, _)| s.contains(&fingerprint(id)))
    }

    /// Forgets `peer`.
    pub fn forget(&mut self, peer: &Url) {
        self.peers.remove(peer);
    }

    /// Keeps only the peers for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Url) -> bool) {
        self.peers.retain(|u, _| keep(u));
    }

    /// Peers tracked.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(n: u8) -> Url {
        Url::parse(&format!("ws://peer.test:80/p{n}")).unwrap()
    }
    fn agent(n: u8) -> AgentId {
        AgentId::from_bytes(vec![n; 32])
    }
    fn oid(n: u8) -> OpId {
        OpId::from_bytes(vec![n; 32])
    }
    const T: Timestamp = Timestamp(1_000_000_000);

    fn pair() -> (CatchUp, CatchUp) {
        let cfg = CatchUpConfig::default();
        (
            CatchUp::new(cfg.clone(), agent(1), DhtArc::FULL, T, 1),
            CatchUp::new(cfg, agent(2), DhtArc::FULL, T, 2),
        )
    }

    /// The message `c` queued for `to` (the only output).
    fn sent(c: &mut CatchUp, to: u8) -> GossipMsg {
        match c.poll_output() {
            Some(CatchUpOutput::Send { to: u, msg }) if u == url(to) => *msg,
            o => panic!("expected a message to peer {to}, got {o:?}"),
        }
    }
    fn nothing_sent(c: &mut CatchUp) -> bool {
        c.poll_output().is_none()
    }

    #[test]
    fn a_full_round_exchanges_ids_and_bookmarks() {
        let (mut i, mut a) = pair();
        assert!(i.due(T));
        i.initiate(T, url(2));
        let GossipMsg::Initiate(init) = sent(&mut i, 2) else {
            panic!()
        };
        assert_eq!(init.new_since, 0, "no bookmark: since the epoch");
        assert!(!i.due(T));
        let InitiateVerdict::Accept(req) = a.on_initiate(T, &url(1), init).unwrap() else {
            panic!()
        };
        assert_eq!(
            (req.arc, req.since, req.agents.clone()),
            (DhtArc::FULL, T0, vec![agent(1)])
        );
        a.accept(T, &url(1), vec![oid(1), oid(2)], Timestamp(500), vec![]);
        let GossipMsg::Accept(acc) = sent(&mut a, 1) else {
            panic!()
        };
        let got = i.on_accept(T, &url(2), acc).unwrap();
        assert_eq!(got.new_ops, vec![oid(1), oid(2)]);
        assert_eq!(got.updated_new_since, Timestamp(500));
        assert_eq!(got.previous_new_since, T0);
        i.set_bookmark(T, url(2), got.updated_new_since);
        assert_eq!(i.new_since(T, &url(2)), Timestamp(500));
        i.respond(T, &url(2), vec![oid(3)], Timestamp(700), vec![], vec![]);
        i.hurry(T);
        assert!(!i.is_initiating());
        let GossipMsg::NoDiff(nd) = sent(&mut i, 2) else {
            panic!()
        };
        let r = a
            .on_reply(
                T,
                &url(1),
                &nd.session_id,
                nd.accept_response,
                false,
                |_| unreachable!("nothing missing"),
            )
            .unwrap();
        assert_eq!(r.new_ops, vec![oid(3)]);
        assert_eq!(r.updated_new_since, Timestamp(700));
        assert!(nothing_sent(&mut a), "a NoDiff gets no reply");
        // A round that brought news: the next one comes after the short interval.
        assert_eq!(i.poll_timeout(), Some(T.add_micros(1_000_000)));
        // A second reply is a behaviour error.
        let again = a.on_reply(T, &url(1), &nd.session_id, None, false, |_| vec![]);
        assert!(again.is_err());
        assert_eq!(a.stats().behaviour_errors, 1);
        // The bookmark expires after 24 h; rewind only goes back.
        i.rewind(T, &url(2), Timestamp(600));
        assert_eq!(i.new_since(T, &url(2)), Timestamp(500));
        i.rewind(T, &url(2), Timestamp(400));
        assert_eq!(i.new_since(T, &url(2)), Timestamp(400));
        assert_eq!(
            i.new_since(T.add_micros(24 * 3600 * 1_000_000), &url(2)),
            T0
        );
    }
    const T0: Timestamp = Timestamp::UNIX_EPOCH;

    #[test]
    fn a_diff_reply_gets_the_missing_agents_then_terminate() {
        let (mut i, mut a) = pair();
        i.initiate(T, url(2));
        let GossipMsg::Initiate(init) = sent(&mut i, 2) else {
            panic!()
        };
        a.on_initiate(T, &url(1), init).unwrap();
        a.accept(T, &url(1), vec![], T, vec![]);
        let GossipMsg::Accept(acc) = sent(&mut a, 1) else {
            panic!()
        };
        let resp = AcceptResponseMessage {
            missing_agents: vec![agent(2).0.0.clone()],
            ..Default::default()
        };
        let provide = |w: &[AgentId]| {
            assert_eq!(w, &[agent(2)]);
            vec![Bytes::from_static(b"{}")]
        };
        a.on_reply(T, &url(1), &acc.session_id, Some(resp), true, provide)
            .unwrap();
        assert!(matches!(sent(&mut a, 1), GossipMsg::Agents(_)));
        assert!(matches!(sent(&mut a, 1), GossipMsg::Terminate(_)));
        assert!(nothing_sent(&mut a));
    }

    #[test]
    fn stray_and_mismatched_messages_are_behaviour_errors() {
        let (mut i, mut a) = pair();
        i.initiate(T, url(2));
        let GossipMsg::Initiate(init) = sent(&mut i, 2) else {
            panic!()
        };
        let InitiateVerdict::Accept(_) = a.on_initiate(T, &url(1), init.clone()).unwrap() else {
            panic!()
        };
        assert_eq!(
            a.on_initiate(T, &url(1), init.clone()),
            Err(RoundError::TooSoon)
        );
        a.accept(T, &url(1), vec![], T, vec![]);
        let GossipMsg::Accept(mut acc) = sent(&mut a, 1) else {
            panic!()
        };
        assert!(i.on_accept(T, &url(3), acc.clone()).is_err(), "wrong peer");
        acc.session_id = Bytes::from_static(b"other");
        assert!(i.on_accept(T, &url(2), acc).is_err(), "wrong session");
        assert_eq!(i.stats().behaviour_errors, 2);
    }

    /// Issue 9's idle bug: with a single peer, rounds stayed 1 s apart for ever, so the peer's
    /// burst limit (15 per 10 min) refused the 16th Initiate and the round timed out.
    #[test]
    fn a_lone_peer_is_not_rounded_past_its_burst_limit() {
        let (mut i, mut a) = pair();
        let mut t = T;
        for _ in 0..40 {
            t = i.poll_timeout().unwrap().max(t);
            assert!(i.due(t), "a round is due at {t}");
            i.initiate(t, url(2));
            let GossipMsg::Initiate(init) = sent(&mut i, 2) else {
                panic!()
            };
            let InitiateVerdict::Accept(_) = a.on_initiate(t, &url(1), init).unwrap() else {
                panic!("refused at {t}: rounds came faster than the burst limit allows")
            };
            a.accept(t, &url(1), vec![], t, vec![]);
            let GossipMsg::Accept(acc) = sent(&mut a, 1) else {
                panic!()
            };
            i.on_accept(t, &url(2), acc).unwrap();
            i.respond(t, &url(2), vec![], t, vec![], vec![]);
            let GossipMsg::NoDiff(nd) = sent(&mut i, 2) else {
                panic!()
            };
            a.on_reply(
                t,
                &url(1),
                &nd.session_id,
                nd.accept_response,
                false,
                |_| vec![],
            )
            .unwrap();
        }
        assert!(
            i.poll_timeout().unwrap().micros_since(t) >= 60_000_000,
            "caught up with the only peer: the next round is a minute away"
        );
        assert_eq!(i.stats().timeouts + a.stats().refused, 0);
    }

    #[test]
    fn busy_burst_tie_break_and_timeouts() {
        let cfg = CatchUpConfig {
            max_concurrent_accepted: 1,
            burst_count: 2,
            ..Default::default()
        };
        let mut a = CatchUp::new(cfg, agent(9), DhtArc::FULL, T, 9);
        let init = |n: u8, tb: u32| K2GossipInitiateMessage {
            session_id: Bytes::from(vec![n]),
            tie_breaker: tb,
            arc_set: Some(arc_set_message(DhtArc::FULL)),
            ..Default::default()
        };
        assert!(matches!(
            a.on_initiate(T, &url(1), init(1, 0)),
            Ok(InitiateVerdict::Accept(_))
        ));
        assert!(matches!(
            a.on_initiate(T, &url(2), init(2, 0)),
            Ok(InitiateVerdict::Busy)
        ));
        assert!(matches!(sent(&mut a, 2), GossipMsg::Busy(_)));
        // The accepted round times out; the peer may initiate again, until its burst is used.
        a.handle_timeout(T.add_micros(15_000_000));
        assert!(nothing_sent(&mut a), "an accepted round just ends");
        let t = T.add_micros(15_000_000);
        assert!(matches!(
            a.on_initiate(t, &url(1), init(3, 0)),
            Ok(InitiateVerdict::Accept(_))
        ));
        a.on_end(t, &url(1), &Bytes::from(vec![3]));
        // Over its burst the peer hears Busy at once (a dropped Initiate would time out).
        assert!(matches!(
            a.on_initiate(t, &url(1), init(4, 0)),
            Ok(InitiateVerdict::Busy)
        ));
        assert!(matches!(sent(&mut a, 1), GossipMsg::Busy(_)));
        // Simultaneous initiates: the higher tie-breaker wins.
        a.initiate(t, url(5));
        let GossipMsg::Initiate(mine) = sent(&mut a, 5) else {
            panic!()
        };
        if mine.tie_breaker < u32::MAX {
            assert!(matches!(
                a.on_initiate(t, &url(5), init(6, mine.tie_breaker + 1)),
                Ok(InitiateVerdict::Accept(_))
            ));
            assert!(!a.is_initiating(), "the loser drops its round");
        }
        // Our initiated round times out and reports the peer.
        let mut i = CatchUp::new(CatchUpConfig::default(), agent(1), DhtArc::FULL, T, 1);
        i.initiate(T, url(7));
        assert_eq!(i.poll_timeout(), Some(T.add_micros(15_000_000)));
        i.handle_timeout(T.add_micros(15_000_000));
        assert!(matches!(sent(&mut i, 7), GossipMsg::Initiate(_)));
        assert_eq!(
            i.poll_output(),
            Some(CatchUpOutput::RoundTimedOut { peer: url(7) })
        );
        assert!(i.due(T.add_micros(16_000_000)));
    }

    #[test]
    fn target_choice_fit_and_known_ops() {
        let (mut i, _) = pair();
        assert_eq!(i.pick_target(&[url(3), url(2)]), Some(url(2)));
        i.initiate(T, url(2));
        i.peer_gone(T, &url(2));
        assert_eq!(
            i.pick_target(&[url(3), url(2)]),
            Some(url(3)),
            "never gossiped first"
        );
        let ids = BoundedOpIds {
            op_ids: vec![oid(1), oid(2), oid(3)],
            total_bytes: 30,
            next_bookmark: T,
        };
        assert_eq!(fit(&ids, 100, 3), Fit::Fits);
        assert_eq!(fit(&ids, 100, 2), Fit::RetryWith(50));
        let mut k = KnownOps::new(2, 2);
        k.add(&url(1), [&oid(1), &oid(2), &oid(3)]);
        assert!(!k.holds(&url(1), &oid(1)), "FIFO bound");
        assert!(k.holds(&url(1), &oid(3)));
        k.add(&url(2), [&oid(1)]);
        k.add(&url(3), [&oid(1)]);
        assert!(!k.holds(&url(1), &oid(3)), "least recent peer dropped");
        assert!(k.holds(&url(3), &oid(1)));
    }
}
