//! Gossip rounds: Kitsune2's k2gossip (`crates/gossip/src/{initiate,respond/*,state}.rs`,
//! report §4.2–§4.5) as a sans-IO machine, one session per peer.
//!
//! A round, initiator `I`, acceptor `A` (every message carries the session id):
//!
//! ```text
//! I: Initiate{agents, arc set, new_since, tie_breaker}      (or A: Busy)
//! A: Accept{agents, arc set, new_ops since I's bookmark, A's new_since, Minimal snapshot}
//! I: compares the Minimal snapshots, answers with accept_response (new ops since A's bookmark):
//!    identical / cannot compare -> NoDiff                          (A: Agents if asked; done)
//!    disc differs -> DiscSectorsDiff -> A: DiscSectorDetailsDiff
//!        -> I: DiscSectorDetailsDiffResponse{ids} -> A: Hashes{ids}                     done
//!    rings differ -> RingSectorDetailsDiff -> A: RingSectorDetailsDiffResponse{ids}
//!        -> I: Hashes{ids}                                                              done
//! ```
//!
//! "New ops since" (today's catch-up) is part of `Initiate`/`Accept`: each side keeps the
//! `updated_new_since` the other returned as a per-peer bookmark.
//!
//! Driving it: [`Gossip::initiate`] (whom: [`schedule::pick_peers`], when:
//! [`schedule::Scheduler`]), [`Gossip::handle`] for each decoded message, [`Gossip::poll_output`]
//! for what to send, fetch, check and report, and [`Gossip::poll_timeout`] /
//! [`Gossip::handle_timeout`]. `handle` reads the model and the op store through [`Ctx`] (async
//! like [`crate::core::dht::store`]); it never writes the store: ids to fetch are outputs.
//!
//! Validation as in Kitsune2 (`state.rs`, `respond/*.rs`): a message from a peer with no
//! session, with another session id, or for another stage is refused with a [`GossipError`]
//! and leaves the session as it was; a malformed message (unequal parallel arrays, a sector
//! out of range, too many ids, a bad id) ends the session with `Terminate`. Both are also
//! reported as [`GossipEvent::Misbehaved`]. fennec's rules beyond Kitsune2: several initiated
//! rounds at once ([`GossipConfig::max_concurrent_initiated`]), a short timeout for the first
//! answer ([`GossipConfig::initiate_timeout`], Kitsune2 #614 waited 174 s on a dead peer), and
//! a fast interval while rounds find differences.
//!
//! fennec mode ([`GossipConfig::reconcile`], negotiated by an extra field of Initiate and
//! Accept that Kitsune2 skips): once the top hashes differ, the two sides reconcile their op
//! ids of the common arc with a rateless sketch ([`reconcile`], `round_recon.rs`) instead of
//! walking sectors and slices: disc and rings in one round, bytes proportional to the
//! difference. In plain-Kitsune2 mode (or with a peer that does not offer it), disc and ring
//! mismatches found together are repaired in two rounds as in Kitsune2 (the first reports
//! [`RoundSummary::rings_pending`] so the driver starts the second at once).

pub mod reconcile;
pub mod schedule;

mod convert;
mod peers;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::api::{OpStore, StoreError};
use crate::core::config::{ConfigError, at_least_one, positive};
use crate::core::dht::snapshot::DhtSnapshot;
use crate::core::dht::{Dht, DhtNextAction, OpRange, store::collect_op_ids};
use crate::hash::{HashMap, HashSet};
use crate::model::arc::{DhtArc, SectorSet};
use crate::model::id::OpId;
use crate::model::op::OP_ID_BYTES;
use crate::model::time::{Timestamp, micros};
use crate::model::url::Url;
use crate::wire::{
    AcceptResponseMessage, ArcSetMessage, GossipMsg, K2GossipAcceptMessage, K2GossipAgentsMessage,
    K2GossipBusyMessage, K2GossipDiscSectorDetailsDiffMessage,
    K2GossipDiscSectorDetailsDiffResponseMessage, K2GossipDiscSectorsDiffMessage,
    K2GossipHashesMessage, K2GossipInitiateMessage, K2GossipNoDiffMessage,
    K2GossipRingSectorDetailsDiffMessage, K2GossipRingSectorDetailsDiffResponseMessage,
    K2GossipTerminateMessage, SnapshotMinimalMessage,
};
use schedule::Scheduler;

/// Settings of [`Gossip`]. Sizes in bytes of op data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipConfig {
    /// A round with no message for this long is over. Default 15 s (Kitsune2 `roundTimeoutMs`).
    pub round_timeout: Duration,
    /// An initiated round with no answer (Accept or Busy) for this long is over and its peer
    /// reported unresponsive. Default 5 s (fennec; Kitsune2 waits the round timeout, #614).
    pub initiate_timeout: Duration,
    /// Rounds we initiate at once. Default 3 (Kitsune2: 1).
    pub max_concurrent_initiated: usize,
    /// Rounds accepted at once; more get `Busy`. Default 10 (Kitsune2
    /// `maxConcurrentAcceptedRounds`).
    pub max_concurrent_accepted: usize,
    /// Initiates accepted per peer per [`Self::burst_window`]; more get `Busy`. Default 15
    /// (Kitsune2: burst factor 3 × 5 intervals).
    pub burst_count: usize,
    /// See [`Self::burst_count`]. Default 10 min.
    pub burst_window: Duration,
    /// The byte budget we ask peers for (`max_op_data_bytes`). Default 4 MiB.
    pub max_op_data_bytes: u32,
    /// Cap on the budget a peer asks of us. Default 4 MiB.
    pub max_request_op_data_bytes: u32,
    /// Most op ids one message may carry (sent or received). Default 16 384 (~560 KiB).
    pub max_ids: usize,
    /// With no bookmark, ask for ops stored this long ago and later. Default 30 min (Kitsune2
    /// `2 × UNIT_TIME`); older ones are the diff's job.
    pub new_since_window: Duration,
    /// How long a bookmark is kept. Default 24 h (Kitsune2 `gossip:new_ops_bookmark`).
    pub bookmark_expiry: Duration,
    /// Pause between initiated rounds while rounds find differences. Default 1 s (Kitsune2
    /// `initialInitiateIntervalMs`).
    pub fast_interval: Duration,
    /// Pause once rounds find none (reached by doubling). Default 60 s (Kitsune2: 120 s).
    pub steady_interval: Duration,
    /// fennec mode: offer set reconciliation ([`reconcile`]) in Initiate and Accept and use it
    /// when the peer offers it too. `false` is plain-Kitsune2 mode: the same messages and diff
    /// as Kitsune2, for interop with native Kitsune2 peers. Default `true`.
    pub reconcile: bool,
    /// Most sketch symbols one round may exchange (about 43 B each); a round needing more
    /// ends and the next with that peer is plain. Default 16 384 (~700 KiB, ~10 000 ids).
    pub max_reconcile_symbols: usize,
}

impl Default for GossipConfig {
    fn default() -> Self {
        GossipConfig {
            round_timeout: Duration::from_secs(15),
            initiate_timeout: Duration::from_secs(5),
            max_concurrent_initiated: 3,
            max_concurrent_accepted: 10,
            burst_count: 15,
            burst_window: Duration::from_secs(600),
            max_op_data_bytes: 4 * 1024 * 1024,
            max_request_op_data_bytes: 4 * 1024 * 1024,
            max_ids: 16_384,
            new_since_window: Duration::from_secs(30 * 60),
            bookmark_expiry: Duration::from_secs(24 * 60 * 60),
            fast_interval: Duration::from_secs(1),
            steady_interval: Duration::from_secs(60),
            reconcile: true,
            max_reconcile_symbols: 16_384,
        }
    }
}

impl GossipConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first zero duration or count.
    pub fn validate(&self) -> Result<(), ConfigError> {
        positive("gossip.round_timeout", self.round_timeout)?;
        positive("gossip.initiate_timeout", self.initiate_timeout)?;
        let counts = [
            (
                "gossip.max_concurrent_initiated",
                self.max_concurrent_initiated,
            ),
            (
                "gossip.max_concurrent_accepted",
                self.max_concurrent_accepted,
            ),
            ("gossip.burst_count", self.burst_count),
            ("gossip.max_ids", self.max_ids),
            ("gossip.max_reconcile_symbols", self.max_reconcile_symbols),
            ("gossip.max_op_data_bytes", self.max_op_data_bytes as usize),
            (
                "gossip.max_request_op_data_bytes",
                self.max_request_op_data_bytes as usize,
            ),
        ];
        for (name, n) in counts {
            at_least_one(name, n as u64)?;
        }
        positive("gossip.burst_window", self.burst_window)?;
        positive("gossip.new_since_window", self.new_since_window)?;
        positive("gossip.bookmark_expiry", self.bookmark_expiry)?;
        positive("gossip.fast_interval", self.fast_interval)?;
        positive("gossip.steady_interval", self.steady_interval)
    }
}

/// Why a message was refused or a round ended early.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    /// No open round with this peer (Kitsune2: "no session").
    #[error("{0} message from a peer with no open round")]
    NoSession(&'static str),
    /// The session id is not the one of the round open with this peer.
    #[error("{0} message for another session")]
    WrongSession(&'static str),
    /// The round with this peer is at another stage.
    #[error("{got} message out of stage: the round is at {stage}")]
    Stage {
        /// The message type received.
        got: &'static str,
        /// The stage the round is at.
        stage: &'static str,
    },
    /// A round with this peer is open: [`Gossip::initiate`] starts no second one.
    #[error("a round with this peer is open")]
    SessionOpen,
    /// [`GossipConfig::max_concurrent_initiated`] rounds are open already.
    #[error("{0} initiated rounds are open already")]
    TooManyRounds(usize),
    /// A malformed message; the round was ended with `Terminate`.
    #[error("malformed gossip message: {0}")]
    Malformed(&'static str),
    /// The op store failed; the round was ended with `Terminate`.
    #[error("op store: {0}")]
    Store(#[from] StoreError),
}

/// Which side of a round we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We sent the `Initiate`.
    Initiator,
    /// We answered it.
    Acceptor,
}

/// How far a round's comparison went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiffKind {
    /// Snapshots identical (or not compared yet).
    #[default]
    None,
    /// Not comparable (disc boundaries or ring counts differ, no common sector).
    CannotCompare,
    /// The disc differed: ids of mismatched full slices exchanged.
    Disc,
    /// The rings differed: ids of mismatched partial slices exchanged.
    Ring,
    /// The top hashes differed (or could not be compared) and the two sides' ids of the
    /// common arc were reconciled (fennec mode, [`reconcile`]).
    Reconciled,
}

/// What a finished round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoundSummary {
    /// Our side.
    pub role: Role,
    /// The comparison's outcome.
    pub diff: DiffKind,
    /// Op ids the peer offered (new ops since plus diff ids).
    pub ids_received: usize,
    /// Of those, ids we lacked (handed out to fetch).
    pub ids_to_fetch: usize,
    /// Op ids we offered.
    pub ids_sent: usize,
    /// Initiator only: the disc differed (and was repaired) and so did the rings, which this
    /// round did not compare. Initiate again with this peer right away rather than after the
    /// interval: Kitsune2's stage rules allow one diff path per session.
    pub rings_pending: bool,
}

impl RoundSummary {
    /// Whether the round found divergence (the scheduler's "diff").
    pub fn found_diff(&self) -> bool {
        matches!(
            self.diff,
            DiffKind::Disc | DiffKind::Ring | DiffKind::Reconciled
        ) || self.ids_to_fetch > 0
    }
}

/// What gossip reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipEvent {
    /// A round ended normally.
    RoundCompleted {
        /// The peer.
        peer: Url,
        /// What it did.
        summary: RoundSummary,
    },
    /// The peer answered our `Initiate` with `Busy`: try another.
    Busy {
        /// The peer.
        peer: Url,
    },
    /// A round got no message in time; for [`Role::Initiator`], mark the peer unresponsive.
    TimedOut {
        /// The silent peer.
        peer: Url,
        /// Our side.
        role: Role,
    },
    /// The peer ended the round with `Terminate`.
    Terminated {
        /// The peer.
        peer: Url,
        /// Its reason.
        reason: String,
    },
    /// A message was refused (see [`GossipError`]).
    Misbehaved {
        /// The sender.
        peer: Url,
        /// Why.
        error: GossipError,
    },
}

/// What [`Gossip`] asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipOutput {
    /// Send `msg` to `to`.
    Send {
        /// Peer URL.
        to: Url,
        /// The message (boxed: messages are large).
        msg: Box<GossipMsg>,
    },
    /// Fetch these ops (ids we do not hold, checked against the store) from `from`.
    Fetch {
        /// The peer that holds them.
        from: Url,
        /// Op ids.
        ids: Vec<OpId>,
    },
    /// Verify and store these signed agent infos (UTF-8 JSON, unverified).
    CheckAgents {
        /// The sender.
        from: Url,
        /// Agent info JSON.
        infos: Vec<Bytes>,
    },
    /// Something to report.
    Event(GossipEvent),
}

/// Agent infos as the peer store knows them; ids are raw agent id bytes.
pub trait AgentInfos {
    /// Whether we hold a current info for `agent`.
    fn has(&self, agent: &[u8]) -> bool;
    /// The signed info JSON of `agent`, if held.
    fn info(&self, agent: &[u8]) -> Option<Bytes>;
}

/// What [`Gossip::handle`] reads: the model (updated to now by the caller), the op store and
/// the agent infos.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    /// The DHT model.
    pub dht: &'a Dht,
    /// The op store.
    pub store: &'a dyn OpStore,
    /// The agent infos.
    pub agents: &'a dyn AgentInfos,
}

/// Counters, Kitsune2 `GossipStateSummary`-like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GossipStats {
    /// Rounds we initiated.
    pub initiated: u64,
    /// Rounds we accepted.
    pub accepted: u64,
    /// Rounds completed (both roles).
    pub completed: u64,
    /// `Busy` received.
    pub busy_received: u64,
    /// `Busy` sent.
    pub busy_sent: u64,
    /// Rounds timed out.
    pub timed_out: u64,
    /// Messages refused.
    pub refused: u64,
    /// Simultaneous initiates resolved.
    pub tie_breaks: u64,
    /// Open rounds ended because their peer initiated a new one (it had dropped ours).
    pub superseded: u64,
    /// Op ids peers offered that we lacked, handed out to fetch (an id offered by two peers
    /// at once may count twice).
    pub ids_to_fetch: u64,
    /// Reconciling rounds we settled from decoded sketch symbols. Each of the three
    /// reconciliation counters is counted by the side that settles or ends the round
    /// (`round_recon.rs`), so a round counts once over both peers.
    pub reconciled_by_sketch: u64,
    /// Reconciling rounds we settled from a whole id list (the initiator's, or the acceptor's
    /// own when the initiator's is over `max_ids`).
    pub reconciled_by_list: u64,
    /// Reconciling rounds we ended with no difference found: more than
    /// `max_reconcile_symbols` differences and no list within `max_ids`. The initiator's
    /// next round with that peer is plain Kitsune2, which moves the ids of every differing
    /// range.
    pub reconcile_gave_up: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// I: sent Initiate, awaiting Accept or Busy.
    Initiated,
    /// A: sent Accept, awaiting NoDiff / DiscSectorsDiff / RingSectorDetailsDiff.
    Accepted,
    /// I: sent NoDiff asking for agents, awaiting Agents.
    AwaitAgents,
    /// I: sent DiscSectorsDiff, awaiting DiscSectorDetailsDiff.
    AwaitDiscDetails,
    /// A: sent DiscSectorDetailsDiff, awaiting its response.
    AwaitDiscResponse,
    /// I: sent RingSectorDetailsDiff, awaiting its response.
    AwaitRingResponse,
    /// Either: sent the last ids, awaiting Hashes.
    AwaitHashes,
    /// I (fennec mode): sent sketch symbols, awaiting Hashes or a request for more.
    AwaitRecon,
    /// A (fennec mode): asked for more symbols or the whole list, awaiting them; or gave our
    /// own whole list, awaiting Hashes (an older peer may send its list instead).
    AwaitReconMore,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Initiated => "initiated",
            Stage::Accepted => "accepted",
            Stage::AwaitAgents => "awaiting agents",
            Stage::AwaitDiscDetails => "awaiting disc sector details",
            Stage::AwaitDiscResponse => "awaiting disc sector details response",
            Stage::AwaitRingResponse => "awaiting ring sector details response",
            Stage::AwaitHashes => "awaiting hashes",
            Stage::AwaitRecon => "awaiting reconciliation",
            Stage::AwaitReconMore => "awaiting more sketch symbols",
        }
    }

    /// Whether `msg` may come at this stage (`Agents` and `Terminate` may come at any).
    fn expects(self, msg: &GossipMsg) -> bool {
        use GossipMsg as M;
        matches!(
            (self, msg),
            (_, M::Agents(_) | M::Terminate(_))
                | (Stage::Initiated, M::Accept(_) | M::Busy(_))
                | (
                    Stage::Accepted,
                    M::NoDiff(_) | M::DiscSectorsDiff(_) | M::RingSectorDetailsDiff(_)
                )
                | (Stage::AwaitDiscDetails, M::DiscSectorDetailsDiff(_))
                | (
                    Stage::AwaitDiscResponse,
                    M::DiscSectorDetailsDiffResponse(_)
                )
                | (
                    Stage::AwaitRingResponse,
                    M::RingSectorDetailsDiffResponse(_)
                )
                | (Stage::AwaitHashes, M::Hashes(_))
                | (
                    Stage::AwaitRecon,
                    M::Hashes(_) | M::DiscSectorDetailsDiff(_)
                )
                | (
                    Stage::AwaitReconMore,
                    M::DiscSectorDetailsDiffResponse(_) | M::Hashes(_)
                )
        )
    }
}

#[derive(Debug, Clone)]
struct Session {
    id: Bytes,
    role: Role,
    stage: Stage,
    deadline: Timestamp,
    tie_breaker: u32,
    common: SectorSet,
    /// The details snapshot we sent (makes the peer's answer the final comparison).
    previous: Option<DhtSnapshot>,
    /// Op data budget the peer asked for, capped.
    peer_budget: u32,
    summary: RoundSummary,
    /// fennec's reconciliation step, if negotiated.
    recon: round_recon::Recon,
    /// Acceptor: the op count the initiator sent (`dht_op_count`): the length of its id
    /// list, at most, when deciding between more symbols and that list.
    their_op_count: Option<u64>,
}

/// The gossip machine of one agent in one space. See the module docs.
#[derive(Debug, Clone)]
pub struct Gossip {
    cfg: GossipConfig,
    agents: Vec<Bytes>,
    sectors: SectorSet,
    rng: u64,
    sessions: HashMap<Url, Session>,
    bursts: HashMap<Url, VecDeque<Timestamp>>,
    /// Peer → (its bookmark for us to send as `new_since`, when it was set).
    bookmarks: HashMap<Url, (Timestamp, Timestamp)>,
    last_gossip: HashMap<Url, Timestamp>,
    scheduler: Scheduler,
    out: VecDeque<GossipOutput>,
    stats: GossipStats,
    /// Peers whose last reconciliation failed: our next Initiate to them is plain.
    plain_next: HashSet<Url>,
    /// Accept no new round (answer `Busy`): set by the driver ([`Gossip::set_saturated`]).
    saturated: bool,
}

mod round;
mod round_recon;
