//! The fetch queue: a sans-IO state machine that pulls ops we lack from the peers that
//! announced them, and the responder side that answers such requests.
//!
//! Kitsune2's `CoreFetch` (`crates/core/src/factories/core_fetch.rs`, report §5.1) sends one
//! `FetchRequest` per op id, keeps requests pending forever (no timeout, no retry), and drops
//! all pending requests to a URL on a send error. This queue keeps its wire format (Kitsune2
//! `FetchRequest` / `FetchResponse`) and improves the rest:
//!
//! - **batching**: one request carries up to [`FetchConfig::max_ids_per_request`] ids and
//!   [`FetchConfig::max_request_bytes`] bytes of ids;
//! - **per-peer parallelism**: at most [`FetchConfig::max_requests_per_peer`] requests in flight
//!   per peer and [`FetchConfig::max_requests_total`] overall; the least busy source is asked
//!   first, so ops announced by several peers are pulled from all of them in parallel;
//! - **timeouts**: a request with no progress (no response frame for any of its ids) for
//!   [`FetchConfig::request_timeout`] fails; the queue reports [`FetchOutput::Timeout`] so the
//!   caller can mark the peer unresponsive (Kitsune2 §5.3);
//! - **alternatives**: an op whose request failed goes back to the queue and is asked of another
//!   peer that announced it (a timed-out peer stays the source of an op it alone announced:
//!   slow is not gone); after [`FetchConfig::max_attempts`] requests, or when no source is
//!   left, the queue gives up and reports [`FetchOutput::Failed`];
//! - **suspension** (issue 11: membership "Down ... moves its pending fetches to other sources;
//!   alive again clears it"): a source membership declared down is suspended, not forgotten
//!   ([`FetchQueue::peer_suspended`]). It is asked nothing while suspended. Its requests in
//!   flight stay open until their connection closes ([`FetchQueue::connection_lost`]; the
//!   space closes it on a down, after the messages already received from it) or they time out;
//!   then they end without costing an attempt and their ops go to their other sources. An op
//!   whose every source is suspended is *parked*: it stays pending, is not given up, and is
//!   asked again when a source resumes ([`FetchQueue::peer_resumed`]) or a live source
//!   announces it ([`FetchQueue::add`]). A suspension lasts at most [`FetchConfig::suspend_timeout`]; then
//!   the peer fails as in [`FetchQueue::peer_failed`] (forgotten, orphans given up with
//!   [`FailReason::NoSource`]), so parked ops hold no pending slot for ever. Most downs in a
//!   bulk sync are false (the peer is alive again seconds later): forgetting the source gave
//!   up every op only it had announced. A closed connection alone forgets nothing either
//!   ([`FetchQueue::connection_lost`]): the requests are asked again;
//! - **dedup**: an op is pending once, whatever the number of announcements; callers filter out
//!   ops the store holds before [`FetchQueue::add`] (`OpStore::filter_out_existing_ops`);
//! - **verification**: [`FetchQueue::receive`] checks `op_id == BLAKE3(data)` and the envelope
//!   ([`verify_op`]) before anything is handed back for storing, and drops ops nobody asked the
//!   sender for; a wrong op is reported so the caller can disconnect the sender;
//! - **bounds**: at most [`FetchConfig::max_pending_ops`] ops pending and
//!   [`FetchConfig::max_sources_per_op`] sources per op.
//!
//! Time is an input (µs [`Timestamp`]s); nothing here reads a clock or does IO.

use std::time::Duration;

use crate::core::config::{ConfigError, at_least_one, positive};
use crate::hash::{HashMap, HashSet};
use std::collections::VecDeque;

use bytes::Bytes;
use prost::Message;

use crate::api::MetaOp;
use crate::model::id::{OpId, SpaceId};
use crate::model::op::{Op, OpError, verify_op};
use crate::model::time::Timestamp;
use crate::model::url::Url;
use crate::sort;
use crate::wire::{WireOp, encode_fetch_response};

/// Limits of a [`FetchQueue`]. Sizes in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchConfig {
    /// Most op ids in one `FetchRequest`. Default 256.
    pub max_ids_per_request: usize,
    /// Most bytes of op ids (each id plus 2 bytes of protobuf framing) in one request.
    /// Default 16 KiB.
    pub max_request_bytes: usize,
    /// Requests in flight per peer (Kitsune2's only knob, `parallelRequestCount`, is 2 for
    /// the whole space). Default 2.
    pub max_requests_per_peer: usize,
    /// Requests in flight over all peers. Default 16.
    pub max_requests_total: usize,
    /// A request fails when no response frame carrying one of its ops arrived for this long.
    /// Default 10 s.
    pub request_timeout: Duration,
    /// Requests made for one op before giving up on it. Default 4.
    pub max_attempts: u32,
    /// Most ops pending at once; further ids are refused by [`FetchQueue::add`]. Default
    /// 100 000.
    pub max_pending_ops: usize,
    /// Most sources remembered per op. Default 8.
    pub max_sources_per_op: usize,
    /// How long a suspended source ([`FetchQueue::peer_suspended`]) is kept before it is
    /// failed for good and the ops parked on it are given up. Default 60 s (a false SWIM down
    /// is back alive within seconds; a closed tab is reported `left` and fails at once).
    pub suspend_timeout: Duration,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            max_ids_per_request: 256,
            max_request_bytes: 16 * 1024,
            max_requests_per_peer: 2,
            max_requests_total: 16,
            request_timeout: Duration::from_secs(10),
            max_attempts: 4,
            max_pending_ops: 100_000,
            max_sources_per_op: 8,
            suspend_timeout: Duration::from_secs(60),
        }
    }
}

impl FetchConfig {
    /// Checks every field (paths as inside [`crate::core::space::SpaceConfig`]).
    ///
    /// # Errors
    /// The first field that is zero where at least 1 is needed, or a zero timeout.
    pub fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("fetch.max_ids_per_request", self.max_ids_per_request as u64)?;
        at_least_one("fetch.max_request_bytes", self.max_request_bytes as u64)?;
        at_least_one(
            "fetch.max_requests_per_peer",
            self.max_requests_per_peer as u64,
        )?;
        at_least_one("fetch.max_requests_total", self.max_requests_total as u64)?;
        positive("fetch.request_timeout", self.request_timeout)?;
        at_least_one("fetch.max_attempts", u64::from(self.max_attempts))?;
        at_least_one("fetch.max_pending_ops", self.max_pending_ops as u64)?;
        at_least_one("fetch.max_sources_per_op", self.max_sources_per_op as u64)?;
        positive("fetch.suspend_timeout", self.suspend_timeout)
    }
}

/// Identifies one request made by a [`FetchQueue`].
pub type RequestId = u64;

/// What the queue asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutput {
    /// Send a `FetchRequest` for `op_ids` to `peer` (e.g. [`crate::wire::encode_fetch_request`]).
    /// If the send fails, call [`FetchQueue::request_failed`].
    Request {
        /// The request, for [`FetchQueue::request_failed`].
        id: RequestId,
        /// Where to send it.
        peer: Url,
        /// The ops asked for, in queue order.
        op_ids: Vec<OpId>,
    },
    /// A request to `peer` made no progress for [`FetchConfig::request_timeout`]; its ops
    /// were re-queued or given up. Treat the peer as unresponsive.
    Timeout {
        /// The silent peer.
        peer: Url,
        /// The request that timed out.
        id: RequestId,
    },
    /// The queue gave up on an op.
    Failed {
        /// The op.
        op_id: OpId,
        /// Requests made for it.
        attempts: u32,
        /// Why it was given up.
        reason: FailReason,
    },
}

/// Why a request in flight ended unanswered, which decides what its ops keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestEnd {
    /// The source failed (send error, gone): it is dropped from the ops' sources.
    SourceFailed,
    /// The request timed out: the source is dropped from an op that has other sources and
    /// kept, with the attempt counted, as an op's only one. A tab whose main thread stalls for
    /// longer than the timeout (a bulk sync on 2 cores does this) is slow, not gone; forgetting
    /// the only peer that announced an op gave the op up at once and left it to gossip.
    TimedOut,
    /// The source is declared down (its connection closed or the request timed out after
    /// the down): kept, and the attempt is refunded (not the ops' fault).
    SourceSuspended,
    /// The connection closed: the source is kept and the attempt counts, so a peer that keeps
    /// closing on us ends the op after [`FetchConfig::max_attempts`].
    ConnectionLost,
}

/// Why the queue gave up on an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// Every peer that announced it failed or went away.
    NoSource,
    /// [`FetchConfig::max_attempts`] requests were made.
    TooManyAttempts,
}

/// An op whose data arrived and verified: hand it to the op store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedOp {
    /// The op id (= BLAKE3 of `data`).
    pub op_id: OpId,
    /// The encoded op.
    pub data: Bytes,
    /// The decoded op.
    pub op: Op,
}

/// The outcome of [`FetchQueue::receive`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// Ops to store. Call [`FetchQueue::stored`] or [`FetchQueue::store_failed`] for each.
    pub valid: Vec<VerifiedOp>,
    /// Ops we asked the sender for whose data was wrong: a protocol violation by the sender.
    pub invalid: Vec<(OpId, OpError)>,
    /// Ops that are not pending here at all, with their unverified data: the caller decides
    /// (a pushed publish, [`crate::core::space::SpaceConfig::push_max_bytes`]).
    pub unrequested: Vec<(OpId, Bytes)>,
    /// Pending ops dropped because we had not asked the sender for them (or they are being
    /// stored already).
    pub unsolicited: usize,
}

/// Counters, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FetchStats {
    /// Requests sent.
    pub requests: u64,
    /// Op ids requested (an op asked twice counts twice).
    pub ids_requested: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Ops re-queued after a failed request.
    pub retries: u64,
    /// Ops given up.
    pub failed: u64,
    /// Ops received and verified.
    pub received: u64,
    /// Ops received with wrong data.
    pub invalid: u64,
    /// Ops received for pending ids that nobody asked the sender for (ops not pending at all
    /// are handed back in [`Received::unrequested`] instead).
    pub unsolicited: u64,
    /// Ids refused by [`FetchQueue::add`] because the queue was full.
    pub refused: u64,
    /// Sources suspended ([`FetchQueue::peer_suspended`]).
    pub suspensions: u64,
    /// Ops parked by a suspension: left with suspended sources only (an op parked twice
    /// counts twice).
    pub parked: u64,
    /// Suspensions that ended with the peer failed ([`FetchConfig::suspend_timeout`]).
    pub suspensions_expired: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Queued,
    InFlight(RequestId),
    Storing,
}

#[derive(Debug, Clone)]
struct Pending {
    sources: Vec<Url>,
    asked: Vec<Url>,
    attempts: u32,
    state: State,
    /// Queued for catch-up ([`FetchQueue::add_catch_up`]), named by no announcement since.
    catch_up: bool,
}

#[derive(Debug, Clone)]
struct Request {
    peer: Url,
    ids: Vec<OpId>,
    deadline: Timestamp,
}

/// The fetch queue (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct FetchQueue {
    cfg: FetchConfig,
    pending: HashMap<OpId, Pending>,
    /// Hash maps, not B-trees (a B-tree map type is ~10 KB of wasm, a hash map type ~2 KB):
    /// request ids taken out of it are sorted, and the peer pick breaks ties by URL itself.
    requests: HashMap<RequestId, Request>,
    in_flight: HashMap<Url, usize>,
    /// Per source, ops to ask it for; stale entries are skipped when popped.
    queues: HashMap<Url, VecDeque<OpId>>,
    /// Suspended sources and when their suspension ends (µs).
    suspended: HashMap<Url, Timestamp>,
    /// The source asked last, so ties rotate.
    last_peer: Option<Url>,
    out: VecDeque<FetchOutput>,
    next_id: RequestId,
    stats: FetchStats,
}

impl FetchQueue {
    /// An empty queue.
    pub fn new(cfg: FetchConfig) -> Self {
        FetchQueue {
            cfg,
            pending: HashMap::default(),
            requests: HashMap::default(),
            in_flight: HashMap::default(),
            queues: HashMap::default(),
            suspended: HashMap::default(),
            last_peer: None,
            out: VecDeque::new(),
            next_id: 1,
            stats: FetchStats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &FetchConfig {
        &self.cfg
    }

    /// Counters so far.
    pub fn stats(&self) -> FetchStats {
        self.stats
    }

    /// Number of ops pending (queued, in flight or being stored).
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether `op_id` is pending.
    pub fn is_pending(&self, op_id: &OpId) -> bool {
        self.pending.contains_key(op_id)
    }

    /// Peers with ops queued for them (per-peer state; empty queues are dropped).
    pub fn queued_peers(&self) -> usize {
        self.queues.len()
    }

    /// Requests in flight.
    pub fn requests_in_flight(&self) -> usize {
        self.requests.len()
    }

    /// `source` announced `op_ids` (publish or catch-up). Ids already pending gain `source`
    /// as another place to fetch from (a parked op is asked of it at once unless it is
    /// suspended too). Returns how many ids were refused because
    /// [`FetchConfig::max_pending_ops`] ops are pending; those were not queued.
    pub fn add(&mut self, now: Timestamp, op_ids: Vec<OpId>, source: &Url) -> usize {
        self.insert(now, op_ids, source, false)
    }

    /// As [`add`](Self::add), for catch-up: ids of `source` that a gossip round found we
    /// lack (no part of a publish flow). Such an op [`is_catch_up`](Self::is_catch_up)
    /// until an announcement names it too.
    pub fn add_catch_up(&mut self, now: Timestamp, op_ids: Vec<OpId>, source: &Url) -> usize {
        self.insert(now, op_ids, source, true)
    }

    /// Whether pending op `id` was queued for catch-up only
    /// ([`add_catch_up`](Self::add_catch_up)); `false` once it is stored or given up. A space
    /// counts such ops outside its bulk intake: they are not on the way by publish.
    pub fn is_catch_up(&self, id: &OpId) -> bool {
        self.pending.get(id).is_some_and(|p| p.catch_up)
    }

    fn insert(&mut self, now: Timestamp, op_ids: Vec<OpId>, source: &Url, catch_up: bool) -> usize {
        let mut refused = 0;
        // Queued for `source`, in order; its queue is looked up once (a bulk announcement
        // names hundreds of ids of one source).
        let mut queued = Vec::new();
        for id in op_ids {
            if let Some(p) = self.pending.get_mut(&id) {
                p.catch_up &= catch_up;
                if p.state == State::Storing || p.sources.contains(source) {
                    continue;
                }
                if p.sources.len() < self.cfg.max_sources_per_op {
                    p.sources.push(source.clone());
                    if p.state == State::Queued {
                        queued.push(id);
                    }
                }
                continue;
            }
            if self.pending.len() >= self.cfg.max_pending_ops {
                refused += 1;
                continue;
            }
            self.pending.insert(
                id.clone(),
                Pending {
                    sources: vec![source.clone()],
                    asked: Vec::new(),
                    attempts: 0,
                    state: State::Queued,
                    catch_up,
                },
            );
            queued.push(id);
        }
        if !queued.is_empty() {
            let queue = self.queues.entry(source.clone()).or_default();
            for id in queued {
                queue.push_back(id);
            }
        }
        self.stats.refused += refused as u64;
        self.fill(now);
        refused
    }

    /// Op data from `from` (a `FetchResponse`), checked as described in the
    /// [module docs](self). Each valid op is now "storing": report the store's verdict with
    /// [`stored`](Self::stored) or [`store_failed`](Self::store_failed). Each invalid op is
    /// re-queued without `from` as a source.
    pub fn receive(&mut self, now: Timestamp, from: &Url, ops: Vec<(OpId, Bytes)>) -> Received {
        let mut r = Received::default();
        let mut answered = Vec::new();
        for (id, data) in ops {
            let Some(p) = self.pending.get(&id) else {
                r.unrequested.push((id, data));
                continue;
            };
            if p.state == State::Storing || !p.asked.contains(from) {
                r.unsolicited += 1;
                continue;
            }
            let state = p.state;
            if let State::InFlight(rid) = state {
                answered.push((rid, id.clone()));
            }
            match verify_op(&id, &data) {
                Ok(op) => {
                    if let Some(p) = self.pending.get_mut(&id) {
                        p.state = State::Storing;
                    }
                    r.valid.push(VerifiedOp {
                        op_id: id,
                        data,
                        op,
                    });
                }
                Err(e) => {
                    let mut orphan = false;
                    if let Some(p) = self.pending.get_mut(&id) {
                        p.sources.retain(|s| s != from);
                        orphan = p.sources.is_empty();
                    }
                    if state != State::Queued {
                        self.requeue(id.clone());
                    } else if orphan {
                        self.give_up(&id, FailReason::NoSource);
                    }
                    r.invalid.push((id, e));
                }
            }
        }
        self.take_answered(now, answered);
        self.stats.received += r.valid.len() as u64;
        self.stats.invalid += r.invalid.len() as u64;
        self.stats.unsolicited += r.unsolicited as u64;
        self.fill(now);
        r
    }

    /// The store committed these ops: they are done.
    pub fn stored(&mut self, now: Timestamp, op_ids: &[OpId]) {
        for id in op_ids {
            if self
                .pending
                .get(id)
                .is_some_and(|p| p.state == State::Storing)
            {
                self.pending.remove(id);
            }
        }
        self.fill(now);
    }

    /// The store refused or failed to write these ops: ask for them again (each request
    /// already counted as an attempt, so this cannot loop forever).
    pub fn store_failed(&mut self, now: Timestamp, op_ids: &[OpId]) {
        for id in op_ids {
            if self
                .pending
                .get(id)
                .is_some_and(|p| p.state == State::Storing)
            {
                self.requeue(id.clone());
            }
        }
        self.fill(now);
    }

    /// The request could not be sent: its ops go to other sources, and `peer` is dropped as a
    /// source of every pending op (as [`peer_failed`](Self::peer_failed)).
    pub fn request_failed(&mut self, now: Timestamp, id: RequestId) {
        if let Some(peer) = self.requests.get(&id).map(|r| r.peer.clone()) {
            self.peer_failed(now, &peer);
        }
    }

    /// `peer` left, disconnected, misbehaved or its suspension expired: fail its requests and
    /// forget it as a source (ending any suspension). Ops left without a source are given up
    /// ([`FailReason::NoSource`]).
    pub fn peer_failed(&mut self, now: Timestamp, peer: &Url) {
        self.suspended.remove(peer);
        let rids = self.request_ids(|r| &r.peer == peer);
        for rid in rids {
            self.fail_request(rid, RequestEnd::SourceFailed);
        }
        self.queues.remove(peer);
        let mut orphaned = Vec::new();
        for (id, p) in self.pending.iter_mut() {
            p.sources.retain(|s| s != peer);
            if p.sources.is_empty() && p.state == State::Queued {
                orphaned.push(id.clone());
            }
        }
        sort::sort(&mut orphaned); // distinct map keys
        for id in orphaned {
            self.give_up(&id, FailReason::NoSource);
        }
        self.fill(now);
    }

    /// The connection to `peer` closed (it may have closed because *it* declared us down,
    /// because we declared it down, or the path broke): its requests in flight fail and their
    /// ops go back to the queues of all their sources, `peer` included, which the next
    /// request reconnects to unless `peer` is suspended. Each costs an attempt, unless `peer`
    /// is suspended (then the down is to blame, not the ops). Forgetting the peer instead
    /// gave up every op only it had announced (issue 10 swarm: 1 456–5 367 ops a tab, one
    /// tab's whole publish, given up with [`FailReason::NoSource`] after a one-sided false
    /// down). Whether the peer is gone is membership's call
    /// ([`peer_suspended`](Self::peer_suspended), [`peer_failed`](Self::peer_failed)); a peer
    /// that cannot be reached again fails its send and then
    /// [`request_failed`](Self::request_failed).
    pub fn connection_lost(&mut self, now: Timestamp, peer: &Url) {
        let why = self.unanswered(peer, RequestEnd::ConnectionLost);
        for rid in self.request_ids(|r| &r.peer == peer) {
            self.fail_request(rid, why);
        }
        self.fill(now);
    }

    /// Membership declared `peer` down (see the [module docs](self)): `peer` stays a source
    /// but is asked nothing until [`peer_resumed`](Self::peer_resumed), or for at most
    /// [`FetchConfig::suspend_timeout`] from now, after which it fails as in
    /// [`peer_failed`](Self::peer_failed). Its requests in flight stay open: most downs in a
    /// bulk sync are false, and the responses already received from the peer, queued behind
    /// the down, would otherwise arrive after their ops were asked of another source and
    /// cross the network twice (issue 10 swarm: up to 2 024 ops, 0.7 MB, a tab). They end
    /// at [`connection_lost`](Self::connection_lost) or their timeout, without costing an
    /// attempt. Suspending a suspended peer keeps its deadline.
    pub fn peer_suspended(&mut self, now: Timestamp, peer: &Url) {
        if self.suspended.contains_key(peer) {
            return;
        }
        self.suspended
            .insert(peer.clone(), now.plus(self.cfg.suspend_timeout));
        self.stats.suspensions += 1;
        self.stats.parked += self.parked_on(peer) as u64;
        self.fill(now);
    }

    /// How a request of `peer` that got no answer ends: as a suspension while `peer` is
    /// suspended, else as `otherwise`.
    fn unanswered(&self, peer: &Url, otherwise: RequestEnd) -> RequestEnd {
        if self.suspended.contains_key(peer) {
            RequestEnd::SourceSuspended
        } else {
            otherwise
        }
    }

    /// Membership says `peer` is alive again (or a newer agent info cleared its mark): it
    /// may be asked again, first of all for the ops parked on it. No-op if not suspended.
    pub fn peer_resumed(&mut self, now: Timestamp, peer: &Url) {
        if self.suspended.remove(peer).is_some() {
            self.fill(now);
        }
    }

    /// Whether `peer` is suspended.
    pub fn is_suspended(&self, peer: &Url) -> bool {
        self.suspended.contains_key(peer)
    }

    /// Number of suspended sources.
    pub fn suspended_count(&self) -> usize {
        self.suspended.len()
    }

    /// The suspended sources, sorted.
    pub fn suspended_peers(&self) -> Vec<Url> {
        sorted_urls(self.suspended.keys())
    }

    /// Pending ops that are not parked (some source of theirs is not suspended): what the
    /// queue is working on.
    pub fn fetchable(&self) -> usize {
        if self.suspended.is_empty() {
            return self.pending.len();
        }
        let parked = self.pending.values().filter(|p| self.is_parked(p)).count();
        self.pending.len() - parked
    }

    /// The peers with requests in flight, sorted.
    pub fn peers_in_flight(&self) -> Vec<Url> {
        sorted_urls(self.in_flight.keys())
    }

    /// Whether `p` is parked: queued, with every source suspended.
    fn is_parked(&self, p: &Pending) -> bool {
        p.state == State::Queued && p.sources.iter().all(|s| self.suspended.contains_key(s))
    }

    /// Parked ops sourced at `peer`.
    fn parked_on(&self, peer: &Url) -> usize {
        self.pending
            .values()
            .filter(|p| p.sources.contains(peer) && self.is_parked(p))
            .count()
    }

    /// The ids of the requests matching `keep`, oldest first.
    fn request_ids(&self, keep: impl Fn(&Request) -> bool) -> Vec<RequestId> {
        let mut ids: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| keep(r))
            .map(|(id, _)| *id)
            .collect();
        sort::sort(&mut ids);
        ids
    }

    /// When [`handle_timeout`](Self::handle_timeout) wants to run next: the earliest request
    /// deadline or suspension end.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let requests = self.requests.values().map(|r| r.deadline);
        requests.chain(self.suspended.values().copied()).min()
    }

    /// Fails every request whose deadline passed (reporting [`FetchOutput::Timeout`]) and every
    /// suspended peer whose [`FetchConfig::suspend_timeout`] passed
    /// ([`peer_failed`](Self::peer_failed)), then sends new requests.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let expired = self.request_ids(|r| r.deadline <= now);
        for rid in expired {
            if let Some(peer) = self.requests.get(&rid).map(|r| r.peer.clone()) {
                self.stats.timeouts += 1;
                let why = self.unanswered(&peer, RequestEnd::TimedOut);
                self.out.push_back(FetchOutput::Timeout { peer, id: rid });
                self.fail_request(rid, why);
            }
        }
        let mut over: Vec<Url> = self
            .suspended
            .iter()
            .filter(|(_, end)| **end <= now)
            .map(|(u, _)| u.clone())
            .collect();
        sort::sort(&mut over); // distinct map keys
        for peer in over {
            self.stats.suspensions_expired += 1;
            self.peer_failed(now, &peer);
        }
        self.fill(now);
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<FetchOutput> {
        self.out.pop_front()
    }

    /// Takes the `(request, op id)` pairs a response answered out of their requests, which
    /// made progress (their timeout starts again); a request with no id left is finished.
    /// One pass over a request's ids (up to 256) per response, not one per answered id:
    /// that was quadratic, 0.15 s of a tab's CPU in the 8-tab job.
    fn take_answered(&mut self, now: Timestamp, mut answered: Vec<(RequestId, OpId)>) {
        while let Some(&(rid, _)) = answered.first() {
            let (mine, rest): (Vec<_>, Vec<_>) = answered.into_iter().partition(|(r, _)| *r == rid);
            answered = rest;
            let Some(r) = self.requests.get_mut(&rid) else {
                continue;
            };
            let ids: HashSet<OpId> = mine.into_iter().map(|(_, id)| id).collect();
            r.ids.retain(|x| !ids.contains(x));
            r.deadline = now.plus(self.cfg.request_timeout);
            if r.ids.is_empty() {
                self.finish_request(rid);
            }
        }
    }

    fn finish_request(&mut self, rid: RequestId) -> Option<Request> {
        let r = self.requests.remove(&rid)?;
        if let Some(n) = self.in_flight.get_mut(&r.peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.in_flight.remove(&r.peer);
            }
        }
        Some(r)
    }

    /// Ends a request without its ops: they are re-queued, keeping or losing its peer as a
    /// source and counting or refunding the attempt as [`RequestEnd`] says.
    fn fail_request(&mut self, rid: RequestId, why: RequestEnd) {
        let Some(r) = self.finish_request(rid) else {
            return;
        };
        for id in r.ids {
            let Some(p) = self.pending.get_mut(&id) else {
                continue;
            };
            if p.state != State::InFlight(rid) {
                continue;
            }
            match why {
                RequestEnd::SourceFailed => p.sources.retain(|s| s != &r.peer),
                RequestEnd::TimedOut if p.sources.len() > 1 => p.sources.retain(|s| s != &r.peer),
                RequestEnd::TimedOut => {}
                RequestEnd::SourceSuspended => p.attempts = p.attempts.saturating_sub(1),
                RequestEnd::ConnectionLost => {}
            }
            self.stats.retries += 1;
            self.requeue(id.clone());
            if why == RequestEnd::SourceSuspended
                && self.pending.get(&id).is_some_and(|p| self.is_parked(p))
            {
                self.stats.parked += 1;
            }
        }
    }

    /// Back to the queue of each remaining source, or given up.
    fn requeue(&mut self, id: OpId) {
        let Some(p) = self.pending.get_mut(&id) else {
            return;
        };
        if p.attempts >= self.cfg.max_attempts {
            self.give_up(&id, FailReason::TooManyAttempts);
            return;
        }
        if p.sources.is_empty() {
            self.give_up(&id, FailReason::NoSource);
            return;
        }
        p.state = State::Queued;
        for s in p.sources.clone() {
            self.queues.entry(s).or_default().push_back(id.clone());
        }
    }

    fn give_up(&mut self, id: &OpId, reason: FailReason) {
        if let Some(p) = self.pending.remove(id) {
            self.stats.failed += 1;
            self.out.push_back(FetchOutput::Failed {
                op_id: id.clone(),
                attempts: p.attempts,
                reason,
            });
        }
    }

    /// Sends requests while there is queued work and capacity.
    fn fill(&mut self, now: Timestamp) {
        while self.requests.len() < self.cfg.max_requests_total {
            let Some(peer) = self.pick_peer() else {
                break;
            };
            let ids = self.take_batch(&peer);
            if ids.is_empty() {
                continue;
            }
            let rid = self.next_id;
            self.next_id += 1;
            for id in &ids {
                if let Some(p) = self.pending.get_mut(id) {
                    p.state = State::InFlight(rid);
                    p.attempts += 1;
                    if !p.asked.contains(&peer) {
                        p.asked.push(peer.clone());
                    }
                }
            }
            *self.in_flight.entry(peer.clone()).or_default() += 1;
            self.requests.insert(
                rid,
                Request {
                    peer: peer.clone(),
                    ids: ids.clone(),
                    deadline: now.plus(self.cfg.request_timeout),
                },
            );
            self.stats.requests += 1;
            self.stats.ids_requested += ids.len() as u64;
            self.last_peer = Some(peer.clone());
            self.out.push_back(FetchOutput::Request {
                id: rid,
                peer,
                op_ids: ids,
            });
        }
    }

    /// The unsuspended source with queued work and spare capacity that has the fewest
    /// requests in flight; ties go to the first after the one asked last (round robin by URL).
    fn pick_peer(&mut self) -> Option<Url> {
        let cap = self.cfg.max_requests_per_peer;
        let mut best: Option<(usize, bool, &Url)> = None;
        for (url, q) in &self.queues {
            let n = self.in_flight.get(url).copied().unwrap_or(0);
            if q.is_empty() || n >= cap || self.suspended.contains_key(url) {
                continue;
            }
            // Prefer URLs after the last one asked, to rotate among equals.
            let wrapped = self.last_peer.as_ref().is_some_and(|l| url <= l);
            // The URL decides ties: the queues are in no particular order.
            let key = (n, wrapped, url);
            if best.is_none_or(|b| key < b) {
                best = Some(key);
            }
        }
        let url = best.map(|(_, _, u)| u.clone());
        // Drop empty queues so the loop above stays short.
        self.queues.retain(|_, q| !q.is_empty());
        url
    }

    /// Pops up to one request's worth of ids that are still queued and sourced at `peer`.
    fn take_batch(&mut self, peer: &Url) -> Vec<OpId> {
        let mut ids = Vec::new();
        // A queue may list an id twice (re-queued after a failure); the set keeps the
        // duplicate check O(1) per id where `ids.contains` was O(batch).
        let mut taken = HashSet::default();
        let mut bytes = 0usize;
        let Some(q) = self.queues.get_mut(peer) else {
            return ids;
        };
        while let Some(id) = q.front() {
            let ok = self
                .pending
                .get(id)
                .is_some_and(|p| p.state == State::Queued && p.sources.contains(peer));
            if !ok || taken.contains(id) {
                q.pop_front();
                continue;
            }
            let cost = id.as_bytes().len() + 2;
            if ids.len() >= self.cfg.max_ids_per_request
                || (!ids.is_empty() && bytes + cost > self.cfg.max_request_bytes)
            {
                break;
            }
            bytes += cost;
            if let Some(id) = q.pop_front() {
                taken.insert(id.clone());
                ids.push(id);
            }
        }
        if q.is_empty() {
            self.queues.remove(peer);
        }
        ids
    }
}

/// `urls` (map keys, distinct), sorted.
fn sorted_urls<'a>(urls: impl Iterator<Item = &'a Url>) -> Vec<Url> {
    let mut v: Vec<Url> = urls.cloned().collect();
    sort::sort(&mut v);
    v
}

/// Bytes of a `FetchResponse`-and-envelope frame beyond its op entries, reserved by
/// [`split_response`]: K2Proto and K2FetchMessage framing, module id, and a space id of up to
/// 64 bytes.
pub const RESPONSE_FRAME_OVERHEAD: usize = 128;

/// Bytes of op entries ([`response_entry_len`]) one `FetchResponse` frame of at most
/// `max_frame_bytes` for `space` holds.
pub fn response_budget(space: &SpaceId, max_frame_bytes: usize) -> usize {
    max_frame_bytes.saturating_sub(RESPONSE_FRAME_OVERHEAD + space.as_bytes().len())
}

/// Encoded size of one op entry inside a `FetchResponse` (field tag, length, `WireOp`).
pub fn response_entry_len(op_id: &OpId, data: &Bytes) -> usize {
    let op = WireOp {
        op_id: op_id.0.0.clone(),
        data: data.clone(),
    };
    let len = op.encoded_len();
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

/// The responder side: splits the ops found for a `FetchRequest` into `FetchResponse` frames
/// for `space`, each at most `max_frame_bytes` long (use at most
/// [`crate::wire::MAX_FRAME_BYTES`]), keeping the order. An op that alone exceeds the budget
/// still goes alone in its own frame (ops are at most [`crate::model::op::MAX_OP_BYTES`], well under
/// the wire frame limit). No ops, no frames: like Kitsune2, nothing is sent when nothing was
/// found.
pub fn split_response(space: &SpaceId, ops: Vec<MetaOp>, max_frame_bytes: usize) -> Vec<Bytes> {
    let budget = response_budget(space, max_frame_bytes);
    let mut frames = Vec::new();
    let mut batch: Vec<(OpId, Bytes)> = Vec::new();
    let mut size = 0usize;
    for MetaOp { op_id, op_data } in ops {
        let len = response_entry_len(&op_id, &op_data);
        if !batch.is_empty() && size + len > budget {
            frames.push(encode_fetch_response(space, &std::mem::take(&mut batch)));
            size = 0;
        }
        size += len;
        batch.push((op_id, op_data));
    }
    if !batch.is_empty() {
        frames.push(encode_fetch_response(space, &batch));
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{FetchMsg, WireMessage};

    fn url(n: u8) -> Url {
        Url::parse(&format!("ws://peer.test:80/p{n}")).unwrap()
    }
    fn op(n: u32) -> (OpId, Bytes) {
        let o = Op::new(Timestamp(1_000 + n as i64), n.to_le_bytes().to_vec()).unwrap();
        (o.id(), o.encode())
    }
    fn ids(range: std::ops::Range<u32>) -> Vec<OpId> {
        range.map(|n| op(n).0).collect()
    }
    fn drain(q: &mut FetchQueue) -> Vec<FetchOutput> {
        std::iter::from_fn(|| q.poll_output()).collect()
    }
    fn requests(out: &[FetchOutput]) -> Vec<(RequestId, Url, Vec<OpId>)> {
        out.iter()
            .filter_map(|o| match o {
                FetchOutput::Request { id, peer, op_ids } => {
                    Some((*id, peer.clone(), op_ids.clone()))
                }
                _ => None,
            })
            .collect()
    }
    const T: Timestamp = Timestamp(1_000_000);

    #[test]
    fn batches_by_count_and_bytes_and_limits_per_peer() {
        let mut q = FetchQueue::new(FetchConfig {
            max_ids_per_request: 3,
            max_requests_per_peer: 2,
            ..Default::default()
        });
        q.add(T, ids(0..10), &url(1));
        let r = requests(&drain(&mut q));
        assert_eq!(r.len(), 2, "two in flight per peer");
        assert_eq!(r[0].2, ids(0..3));
        assert_eq!(r[1].2, ids(3..6));
        // Byte bound: 34 bytes per 32-byte id, 100 bytes fit 2 ids.
        let mut q = FetchQueue::new(FetchConfig {
            max_request_bytes: 100,
            ..Default::default()
        });
        q.add(T, ids(0..5), &url(1));
        let r = requests(&drain(&mut q));
        assert!(r.iter().all(|(_, _, v)| v.len() <= 2));
        assert_eq!(r[0].2.len(), 2);
    }

    /// An op queued for catch-up alone stays so while in flight and storing, and not once an
    /// announcement names it or it is stored; an announced op never is.
    #[test]
    fn catch_up_ops_are_told_from_announced_ones() {
        let mut q = FetchQueue::new(FetchConfig::default());
        q.add_catch_up(T, ids(0..3), &url(1));
        q.add(T, ids(3..4), &url(1));
        q.add_catch_up(T, ids(3..4), &url(2));
        q.add(T, ids(2..3), &url(2));
        fn catch_up(q: &FetchQueue) -> Vec<bool> {
            (0..4).map(|n| q.is_catch_up(&op(n).0)).collect()
        }
        assert_eq!(catch_up(&q), [true, true, false, false]);
        drain(&mut q);
        let rec = q.receive(T, &url(1), vec![op(0), op(1)]);
        assert_eq!(rec.valid.len(), 2);
        assert_eq!(catch_up(&q), [true, true, false, false], "storing");
        q.stored(T, &ids(0..1));
        assert_eq!(
            catch_up(&q),
            [false, true, false, false],
            "stored: not pending"
        );
    }

    #[test]
    fn dedups_and_spreads_over_sources() {
        let mut q = FetchQueue::new(FetchConfig {
            max_ids_per_request: 4,
            max_requests_per_peer: 1,
            ..Default::default()
        });
        q.add(T, ids(0..8), &url(1));
        q.add(T, ids(0..8), &url(2));
        q.add(T, ids(0..8), &url(1));
        assert_eq!(q.len(), 8);
        let r = requests(&drain(&mut q));
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].1.clone(), r[0].2.clone()), (url(1), ids(0..4)));
        assert_eq!(
            (r[1].1.clone(), r[1].2.clone()),
            (url(2), ids(4..8)),
            "the second source serves the rest in parallel"
        );
    }

    #[test]
    fn verified_ops_are_stored_and_wrong_ones_reported_and_retried_elsewhere() {
        let mut q = FetchQueue::new(FetchConfig::default());
        q.add(T, ids(0..3), &url(1));
        q.add(T, ids(0..3), &url(2));
        let r = requests(&drain(&mut q));
        assert_eq!(r.len(), 1);
        let (a, b, c) = (op(0), op(1), op(2));
        let wrong = (b.0.clone(), op(9).1);
        let rec = q.receive(T, &url(1), vec![a.clone(), wrong, (op(7).0, op(7).1)]);
        assert_eq!(rec.valid.len(), 1);
        assert_eq!(rec.valid[0].op_id, a.0);
        assert_eq!(rec.invalid.len(), 1);
        assert!(matches!(rec.invalid[0].1, OpError::IdMismatch { .. }));
        assert_eq!(
            rec.unrequested,
            vec![(op(7).0, op(7).1)],
            "not pending: handed back"
        );
        assert_eq!(rec.unsolicited, 0);
        q.stored(T, std::slice::from_ref(&a.0));
        // The wrong op goes to peer 2, the other source; c is still in flight with peer 1.
        let r = requests(&drain(&mut q));
        assert_eq!(r.len(), 1);
        assert_eq!(
            (r[0].1.clone(), r[0].2.clone()),
            (url(2), vec![b.0.clone()])
        );
        // Peer 2 cannot answer for c: it was not asked for c.
        assert_eq!(q.receive(T, &url(2), vec![c.clone()]).unsolicited, 1);
        assert_eq!(q.receive(T, &url(1), vec![c.clone()]).valid.len(), 1);
        assert_eq!(q.receive(T, &url(2), vec![b.clone()]).valid.len(), 1);
        q.stored(T, &[b.0, c.0]);
        assert!(q.is_empty());
        assert_eq!(q.requests_in_flight(), 0);
    }

    #[test]
    fn timeout_moves_ops_to_another_source_and_gives_up_eventually() {
        let cfg = FetchConfig {
            request_timeout: Duration::from_micros(100),
            max_attempts: 2,
            ..Default::default()
        };
        let mut q = FetchQueue::new(cfg);
        q.add(T, ids(0..2), &url(1));
        q.add(T, ids(0..1), &url(2));
        let r = requests(&drain(&mut q));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, url(1));
        assert_eq!(q.poll_timeout(), Some(T.add_micros(100)));
        q.handle_timeout(T.add_micros(99));
        assert!(drain(&mut q).is_empty());
        q.handle_timeout(T.add_micros(100));
        let out = drain(&mut q);
        assert!(out.contains(&FetchOutput::Timeout {
            peer: url(1),
            id: r[0].0
        }));
        // Op 0 goes to peer 2 and forgets peer 1. Op 1 has only peer 1: asked of it again
        // (a slow peer is not a gone one), not given up.
        assert!(!out.iter().any(|o| matches!(o, FetchOutput::Failed { .. })));
        let mut r2 = requests(&out);
        sort::sort_by(&mut r2, |a, b| a.1.cmp(&b.1));
        let asked: Vec<_> = r2.iter().map(|r| (r.1.clone(), r.2.clone())).collect();
        assert_eq!(asked, vec![(url(1), ids(1..2)), (url(2), ids(0..1))]);
        // A late answer from peer 1 is still welcome (it was asked).
        assert_eq!(q.receive(T, &url(1), vec![op(0), op(1)]).valid.len(), 2);
        q.stored(T, &[op(0).0, op(1).0]);
        assert!(q.is_empty());
        assert_eq!(q.requests_in_flight(), 0, "both requests emptied");
        // An only source that keeps timing out ends the op after max_attempts.
        let mut q = FetchQueue::new(FetchConfig {
            request_timeout: Duration::from_micros(100),
            max_attempts: 2,
            ..Default::default()
        });
        q.add(T, ids(0..1), &url(1));
        drain(&mut q);
        q.handle_timeout(T.add_micros(100));
        assert_eq!(requests(&drain(&mut q)).len(), 1, "asked again");
        q.handle_timeout(T.add_micros(200));
        assert!(drain(&mut q).contains(&FetchOutput::Failed {
            op_id: op(0).0,
            attempts: 2,
            reason: FailReason::TooManyAttempts
        }));
        // max_attempts: re-announced by peer 1 again after failures, the op stops at 2 tries.
        let mut q = FetchQueue::new(FetchConfig {
            request_timeout: Duration::from_micros(100),
            max_attempts: 2,
            ..Default::default()
        });
        q.add(T, ids(0..1), &url(1));
        q.add(T, ids(0..1), &url(2));
        q.add(T, ids(0..1), &url(3));
        drain(&mut q);
        q.handle_timeout(T.add_micros(100));
        q.handle_timeout(T.add_micros(200));
        let out = drain(&mut q);
        assert!(out.contains(&FetchOutput::Failed {
            op_id: op(0).0,
            attempts: 2,
            reason: FailReason::TooManyAttempts
        }));
        assert!(q.is_empty());
    }

    #[test]
    fn progress_extends_the_deadline() {
        let mut q = FetchQueue::new(FetchConfig {
            request_timeout: Duration::from_micros(100),
            ..Default::default()
        });
        q.add(T, ids(0..2), &url(1));
        drain(&mut q);
        q.receive(T.add_micros(90), &url(1), vec![op(0)]);
        assert_eq!(q.poll_timeout(), Some(T.add_micros(190)));
        q.handle_timeout(T.add_micros(150));
        assert!(drain(&mut q).is_empty());
    }

    /// A peer may answer two of our requests in one response: a request it completed is
    /// finished (its slot asks for the next ids), one it answered in part keeps only its
    /// unanswered ids, and both made progress (their timeouts start again).
    #[test]
    fn one_response_may_answer_two_requests() {
        let mut q = FetchQueue::new(FetchConfig {
            max_ids_per_request: 3,
            max_requests_per_peer: 2,
            request_timeout: Duration::from_micros(100),
            ..Default::default()
        });
        q.add(T, ids(0..12), &url(1));
        assert_eq!(requests(&drain(&mut q)).len(), 2);
        let answer = vec![op(0), op(1), op(2), op(3), op(4)];
        assert_eq!(q.receive(T.add_micros(50), &url(1), answer).valid.len(), 5);
        let next = requests(&drain(&mut q));
        assert_eq!(next.len(), 1, "the finished request's slot is used again");
        assert_eq!(next[0].2, ids(6..9));
        assert_eq!(q.poll_timeout(), Some(T.add_micros(150)));
        // Op 5 finishes the second request, ops 6 to 8 the third: both slots are free.
        let answer = vec![op(5), op(6), op(7), op(8)];
        assert_eq!(q.receive(T.add_micros(60), &url(1), answer).valid.len(), 4);
        let last = requests(&drain(&mut q));
        assert_eq!(last.len(), 1, "{last:?}");
        assert_eq!(last[0].2, ids(9..12));
        assert_eq!(q.requests_in_flight(), 1);
    }

    #[test]
    fn peer_failure_fails_its_requests_and_forgets_it() {
        let mut q = FetchQueue::new(FetchConfig::default());
        q.add(T, ids(0..2), &url(1));
        q.add(T, ids(1..3), &url(2));
        drain(&mut q);
        q.peer_failed(T, &url(1));
        let out = drain(&mut q);
        assert!(out.contains(&FetchOutput::Failed {
            op_id: op(0).0,
            attempts: 1,
            reason: FailReason::NoSource
        }));
        // Op 1 was in flight with peer 1 and is now asked of peer 2.
        let r = requests(&out);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].1.clone(), r[0].2.clone()), (url(2), ids(1..2)));
        assert_eq!(q.len(), 2);
        assert!(q.receive(T, &url(1), vec![op(2)]).unsolicited == 1);
    }

    /// A lost connection forgets no source: the op is asked of the same peer again, each
    /// time costing an attempt, until `max_attempts`.
    #[test]
    fn a_lost_connection_asks_the_same_peer_again_until_max_attempts() {
        let mut q = FetchQueue::new(FetchConfig {
            max_attempts: 2,
            ..Default::default()
        });
        q.add(T, ids(0..1), &url(1));
        assert_eq!(requests(&drain(&mut q)).len(), 1);
        q.connection_lost(T, &url(1));
        let out = drain(&mut q);
        assert_eq!(failed(&out), vec![]);
        let r = requests(&out);
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].1.clone(), r[0].2.clone()), (url(1), ids(0..1)));
        q.connection_lost(T, &url(1));
        assert_eq!(
            failed(&drain(&mut q)),
            vec![(op(0).0, 2, FailReason::TooManyAttempts)]
        );
        assert!(q.is_empty());
    }

    fn failed(out: &[FetchOutput]) -> Vec<(OpId, u32, FailReason)> {
        out.iter()
            .filter_map(|o| match o {
                FetchOutput::Failed {
                    op_id,
                    attempts,
                    reason,
                } => Some((op_id.clone(), *attempts, *reason)),
                _ => None,
            })
            .collect()
    }

    /// A suspension parks the ops only the suspended peer has, moves the others to their
    /// other sources, costs no attempt, and resuming asks the same peer again.
    #[test]
    fn a_suspended_source_parks_its_ops_and_resume_asks_it_again() {
        let mut q = FetchQueue::new(FetchConfig {
            max_attempts: 1,
            ..Default::default()
        });
        q.add(T, ids(0..3), &url(1));
        q.add(T, ids(2..3), &url(2));
        assert_eq!(requests(&drain(&mut q)).len(), 1);
        q.peer_suspended(T, &url(1));
        assert!(q.is_suspended(&url(1)));
        assert!(
            drain(&mut q).is_empty(),
            "its request stays open until the connection closes: nothing asked twice"
        );
        assert_eq!(q.peers_in_flight(), vec![url(1)]);
        // A response it sent before the down arrives before the close: taken.
        assert_eq!(q.receive(T, &url(1), vec![op(0)]).valid.len(), 1);
        q.stored(T, &[op(0).0]);
        q.connection_lost(T, &url(1));
        let out = drain(&mut q);
        assert_eq!(
            failed(&out),
            vec![],
            "nothing given up, not even by max_attempts"
        );
        let r = requests(&out);
        assert_eq!(r.len(), 1, "only op 2 has a live source");
        assert_eq!((r[0].1.clone(), r[0].2.clone()), (url(2), ids(2..3)));
        assert_eq!(q.len(), 2);
        assert_eq!(q.fetchable(), 1, "op 1 is parked");
        assert_eq!(q.peers_in_flight(), vec![url(2)]);
        assert_eq!(q.stats().parked, 1);
        assert_eq!(q.stats().suspensions, 1);
        // More work for the suspended peer is not sent to it.
        q.add(T, ids(3..4), &url(1));
        assert!(requests(&drain(&mut q)).is_empty());
        q.peer_resumed(T, &url(1));
        assert!(!q.is_suspended(&url(1)));
        let r = requests(&drain(&mut q));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, url(1));
        let mut asked = r[0].2.clone();
        asked.sort();
        let mut want = vec![op(1).0, op(3).0];
        want.sort();
        assert_eq!(asked, want, "the parked ops, from the same peer");
    }

    #[test]
    fn a_suspended_source_whose_request_times_out_keeps_its_ops_parked() {
        let mut q = FetchQueue::new(FetchConfig {
            max_attempts: 1,
            ..Default::default()
        });
        q.add(T, ids(0..1), &url(1));
        drain(&mut q);
        q.peer_suspended(T, &url(1));
        let deadline = T.plus(q.config().request_timeout);
        assert_eq!(
            q.poll_timeout(),
            Some(deadline),
            "the open request's deadline"
        );
        q.handle_timeout(deadline);
        let out = drain(&mut q);
        assert_eq!(
            failed(&out),
            vec![],
            "the attempt is refunded: the down is to blame"
        );
        assert!(matches!(out.as_slice(), [FetchOutput::Timeout { .. }]));
        assert_eq!(
            (q.len(), q.fetchable()),
            (1, 0),
            "parked on its suspended source"
        );
        q.peer_resumed(deadline, &url(1));
        let r = requests(&drain(&mut q));
        assert_eq!((r[0].1.clone(), r[0].2.clone()), (url(1), ids(0..1)));
    }

    #[test]
    fn a_live_source_unparks_an_op_at_once() {
        let mut q = FetchQueue::new(FetchConfig::default());
        q.add(T, ids(0..1), &url(1));
        drain(&mut q);
        q.peer_suspended(T, &url(1));
        q.connection_lost(T, &url(1));
        assert!(drain(&mut q).is_empty());
        q.add(T, ids(0..1), &url(3));
        let r = requests(&drain(&mut q));
        assert_eq!(r.len(), 1);
        assert_eq!((r[0].1.clone(), r[0].2.clone()), (url(3), ids(0..1)));
    }

    #[test]
    fn a_suspension_expires_into_a_failure() {
        let mut q = FetchQueue::new(FetchConfig {
            suspend_timeout: Duration::from_micros(100),
            ..Default::default()
        });
        q.add(T, ids(0..2), &url(1));
        q.add(T, ids(1..2), &url(2));
        drain(&mut q);
        q.peer_suspended(T.add_micros(10), &url(1));
        q.connection_lost(T.add_micros(10), &url(1));
        q.peer_suspended(T.add_micros(50), &url(1));
        assert_eq!(q.stats().suspensions, 1);
        drain(&mut q);
        assert_eq!(
            q.poll_timeout(),
            Some(T.add_micros(110)),
            "the suspension end, before the request deadline; a repeat keeps it"
        );
        q.handle_timeout(T.add_micros(109));
        assert!(drain(&mut q).is_empty());
        q.handle_timeout(T.add_micros(110));
        let out = drain(&mut q);
        assert_eq!(failed(&out), vec![(op(0).0, 0, FailReason::NoSource)]);
        assert!(!q.is_suspended(&url(1)));
        assert_eq!(q.stats().suspensions_expired, 1);
        assert_eq!(q.len(), 1, "op 1 is still asked of peer 2");
    }

    #[test]
    fn a_failure_after_a_suspension_gives_up_its_parked_ops() {
        let mut q = FetchQueue::new(FetchConfig::default());
        q.add(T, ids(0..1), &url(1));
        drain(&mut q);
        q.peer_suspended(T, &url(1));
        q.connection_lost(T, &url(1));
        assert!(drain(&mut q).is_empty());
        q.peer_failed(T, &url(1));
        let out = drain(&mut q);
        assert_eq!(failed(&out), vec![(op(0).0, 0, FailReason::NoSource)]);
        assert!(!q.is_suspended(&url(1)));
        assert_eq!(q.poll_timeout(), None, "no suspension end left");
        assert!(q.is_empty());
    }

    #[test]
    fn store_failure_requeues_and_queue_bound_refuses() {
        let mut q = FetchQueue::new(FetchConfig {
            max_pending_ops: 2,
            ..Default::default()
        });
        assert_eq!(q.add(T, ids(0..3), &url(1)), 1);
        drain(&mut q);
        let rec = q.receive(T, &url(1), vec![op(0)]);
        assert_eq!(rec.valid.len(), 1);
        q.store_failed(T, &[op(0).0]);
        let r = requests(&drain(&mut q));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].2, ids(0..1));
        assert_eq!(q.stats().refused, 1);
    }

    #[test]
    fn responses_are_split_under_the_frame_limit() {
        let space = SpaceId::from_bytes(vec![3u8; 32]);
        let ops: Vec<MetaOp> = (0..50)
            .map(|n| {
                let o = Op::new(Timestamp(n), vec![n as u8; 1000]).unwrap();
                MetaOp {
                    op_id: o.id(),
                    op_data: o.encode(),
                }
            })
            .collect();
        let frames = split_response(&space, ops.clone(), 10_000);
        assert!(frames.len() >= 5);
        let mut back = Vec::new();
        for f in &frames {
            assert!(f.len() <= 10_000, "{}", f.len());
            match WireMessage::decode(f.clone()).unwrap() {
                WireMessage::Fetch {
                    msg: FetchMsg::Response(v),
                    ..
                } => back.extend(v),
                m => panic!("{m:?}"),
            }
        }
        let want: Vec<_> = ops.into_iter().map(|m| (m.op_id, m.op_data)).collect();
        assert_eq!(back, want);
        assert!(split_response(&space, vec![], 10_000).is_empty());
        // One op bigger than the budget goes alone.
        let big = Op::new(Timestamp(1), vec![7u8; 20_000]).unwrap();
        let frames = split_response(
            &space,
            vec![MetaOp {
                op_id: big.id(),
                op_data: big.encode(),
            }],
            10_000,
        );
        assert_eq!(frames.len(), 1);
    }
}
