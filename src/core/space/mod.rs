//! The sans-IO core of one joined space: one local agent, its peer store, publish pool, fetch
//! queue, gossip (over its DHT model) and membership, wired together.
//!
//! [`Space`] owns no socket, clock, store or task. Its driver feeds it
//! - app commands: [`Space::publish`], [`Space::leave`], [`Space::set_url`],
//!   [`Space::set_storage_arc`], [`Space::send_notify`], [`Space::get_remote`];
//! - agent infos from bootstrap or preflight: [`Space::insert_agent_infos`];
//! - inbound messages: [`Space::handle_frame`] / [`Space::handle_message`] (from a peer URL);
//! - transport outcomes: [`Space::handle_send_result`], [`Space::peer_disconnected`];
//! - visibility: [`Space::set_dozing`];
//! - store results: [`Space::handle_store_response`];
//! - time: every call takes `now` (µs); [`Space::poll_timeout`] says when to call
//!   [`Space::handle_timeout`];
//! - gossip steps that read the store: [`Space::load_model`] once before anything else, and
//!   [`Space::gossip_step`] whenever [`Space::gossip_ready`] (see [`gossip`](self#gossip));
//!
//! and drains [`Space::poll_output`]: frames to send ([`Output::Send`]), store operations to
//! perform ([`Output::Store`]), connections to close ([`Output::Close`]) and events for the app
//! ([`Output::Event`]).
//!
//! # Store operations
//! The op store is asynchronous (IndexedDB), the core is not. The core asks for a store
//! operation with a ticket ([`StoreRequest`]), the driver performs it (for any
//! [`crate::api::OpStore`]:
//! [`perform`]) and hands the result back with the same ticket. Operations may complete in any
//! order and run concurrently. The core never assumes an op is stored before the store said
//! so: a local op is announced only after its write committed ([`SpaceEvent::OpStored`]), a
//! fetched op is reported ([`SpaceEvent::OpReceived`]) only after it committed.
//!
//! # Gossip
//! The one repair path (issue 10): k2gossip rounds ([`crate::core::gossip`]) over the space's
//! DHT model ([`crate::core::dht::Dht`]). The model is told of every op the store newly stored
//! (`inform_ops_stored`, fed by the write results) and of the time; its changed full-slice
//! hashes are persisted with [`StoreRequest::PersistSliceHashes`]. Rounds start on the
//! gossip scheduler's interval (fast while rounds find differences, backing off to steady),
//! several at once, with peers picked by [`crate::core::gossip::schedule::pick_peers`] (arc
//! overlap, longest since last tried, never a peer membership declared down). Gossip reads
//! the store itself (`Gossip::handle` is async), so inbound gossip messages wait in a bounded
//! inbox ([`SpaceConfig::max_gossip_inbox`]) until the driver calls [`Space::gossip_step`];
//! ids a round finds missing go to the fetch queue. A step can wait on the store for seconds,
//! so it holds only gossip, the model and the peer store: membership frames are answered
//! meanwhile ([`GossipStep::membership`]), or peers would declare us down.
//!
//! # Admission (Kitsune2 §3.3)
//! Module messages (fetch, publish, gossip) from a peer URL for which the peer store holds no
//! unexpired, live, unblocked agent info with that URL are dropped and counted
//! ([`SpaceStats::unadmitted`]). Agent infos come from bootstrap or preflight
//! ([`Space::insert_agent_infos`]); a `PublishAgent` from an unknown URL is dropped too.
//!
//! # Liveness (membership)
//! Whether a peer is alive comes from one place: SWIM ([`crate::core::membership`]) over the
//! active set: peers that fetch or gossip with us or probe us, and peers we learn of while
//! fewer than [`MembershipConfig::max_members`] are known. A member declared down (or
//! that left) is marked unresponsive in the peer store, publish and gossip skip it, and its
//! connection is closed; its pending fetches move to other sources once that close is
//! through (the responses it had already sent are taken first); alive again, or a newer
//! agent info, clears the mark. A down peer's fetch source is suspended, not forgotten
//! ([`FetchQueue::peer_suspended`]): ops only it announced stay parked until it is alive
//! again, another source announces them, or the suspension times out; the close that
//! follows the down does not give them up either. A peer that left fails as a source at
//! once. Send failures and unanswered requests only fail those requests. Events:
//! [`SpaceEvent::MemberSuspect`], [`SpaceEvent::MemberDown`], [`SpaceEvent::MemberAlive`],
//! [`SpaceEvent::MemberLeft`].
//!
//! # Misbehaviour
//! A peer that sends op data that does not hash to its id, or a frame that does not decode,
//! is reported ([`SpaceEvent::PeerMisbehaved`]), its agents are blocked in this space and its
//! connection is closed ([`Output::Close`]).
//!
//! # Drivers
//! [`run_space`] is a complete async driver over a [`crate::api::transport::Transport`], an
//! [`crate::api::OpStore`] and a [`crate::api::Clock`] (one task, `futures` only). Simulations drive
//! the core by hand (`tests/sim.rs`).
//!
//! # Notify (Kitsune2 `Space::send_notify`)
//! [`Space::send_notify`] sends host bytes to one peer agent in a NOTIFY frame; a NOTIFY from
//! an admitted peer is reported as [`SpaceEvent::Notified`]. Best effort, as in Kitsune2: no
//! acknowledgement, no retry, no ordering across connections.
//!
//! # Remote get
//! [`Space::get_remote`] asks up to [`GET_PEERS`] peers whose arcs hold an op outside ours
//! (or any op while we are [catching up](Space::catching_up)) for it (a `FetchRequest`);
//! the first valid answer, or `None` after [`GET_TIMEOUT`], comes
//! as [`SpaceEvent::Got`]. The op is not stored.

mod driver;
mod get;
mod gossip;
mod notify;
mod serve;
mod step;
mod sync;

pub use driver::{Command, GetReply, NotifyFailed, NotifyReply, Summary, perform, run_space};
pub use get::{GET_PEERS, GET_TIMEOUT, GetToken};
pub use gossip::GossipSummary;
pub use notify::{MAX_NOTIFY_BYTES, NotifyError};
pub use step::{GossipStep, GossipStepOutcome, MembershipPart};
use sync::SyncTracker;
pub use sync::{SYNC_REPORT_INTERVAL_US, SyncProgress};

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;

use crate::api::{MetaOp, StoreError};
use crate::bounded::BoundedSet;
use crate::core::config::{ConfigError, at_least_one, positive};
use crate::core::dht::{Dht, SliceWrites};
use crate::core::fetch::{
    FailReason, FetchConfig, FetchOutput, FetchQueue, FetchStats, VerifiedOp,
};
use crate::core::gossip::{Gossip, GossipConfig};
use crate::core::known::{HeldIds, KnownOps};
use crate::core::membership::{
    Liveness, MemberEvent, Membership, MembershipConfig, MembershipStats,
};
use crate::core::op_cache::OpCache;
use crate::core::peer_store::PeerStoreSizes;
use crate::core::peer_store::{Insert, PeerStore, PeerStoreConfig};
use crate::core::publish::{
    self, BatchId, BroadcastPool, PeerTally, PublishConfig, PublishOutput, StartError,
};
use crate::hash::{HashMap, HashSet};
use crate::model::agent::{
    AgentError, AgentInfo, AgentInfoSigned, Ed25519Verifier, Signer, Verifier,
};
use crate::model::arc::DhtArc;
use crate::model::id::{AgentId, Locator, OpId, SpaceId};
use crate::model::op::{Op, OpError};
use crate::model::time::{Timestamp, micros};
use crate::model::url::Url;
use crate::wire::{
    FetchMsg, GossipMsg, MAX_FRAME_BYTES, PublishMsg, WireMessage, encode_disconnect,
    encode_fetch_request, encode_gossip, encode_introduction, encode_publish_agent,
    encode_publish_ops,
};

/// Settings of a [`Space`]. Sizes in bytes.
#[derive(Debug, Clone)]
pub struct SpaceConfig {
    /// The space.
    pub space: SpaceId,
    /// How the network places ids on the ring.
    pub locator: Locator,
    /// The local agent's storage arc: the ops it fetches and serves. Default full.
    pub storage_arc: DhtArc,
    /// Peer store limits.
    pub peer_store: PeerStoreConfig,
    /// Fetch queue limits.
    pub fetch: FetchConfig,
    /// Publish pool limits.
    pub publish: PublishConfig,
    /// Gossip settings (intervals, concurrent rounds, timeouts, limits).
    pub gossip: GossipConfig,
    /// Inbound gossip messages waiting for [`Space::gossip_step`]; more are dropped and
    /// counted ([`SpaceStats::gossip_dropped`]; their rounds time out). Default 64.
    pub max_gossip_inbox: usize,
    /// Membership (SWIM) settings: the only source of peer liveness.
    pub membership: MembershipConfig,
    /// Largest `FetchResponse` frame we send. Default 256 KiB.
    pub max_response_frame_bytes: usize,
    /// Op ids of one incoming `FetchRequest` we look up; the rest are ignored. Default 4 096.
    pub max_request_ids: usize,
    /// Store reads at once serving one peer's fetch requests (the part of a request needing
    /// one more is dropped), and that peer's requests held while its responses are over
    /// [`Self::max_unsent_response_bytes_per_peer`] (more are dropped). Default 4.
    pub max_serving_per_peer: usize,
    /// Bytes of fetch-response frames to one peer handed to the transport and not yet sent
    /// above which its further requests wait (`space/serve.rs`): a peer that asks faster
    /// than its data channel drains holds that much of our memory, not more. Default 4 MiB
    /// (16 frames of 256 KiB; an honest peer has 2 requests of 256 ids in flight,
    /// `FetchConfig`).
    pub max_unsent_response_bytes_per_peer: usize,
    /// Op ids remembered as held, per peer ([`KnownOps`]). Default 16 384.
    pub known_ops_per_peer: usize,
    /// Peers tracked in [`KnownOps`] (worst case about 32 bytes × this × the above: 16 MiB
    /// with the defaults). Default 32.
    pub known_ops_peers: usize,
    /// Recently stored op ids remembered to stop refetching races. Default 10 000.
    pub recently_stored: usize,
    /// Bytes of recently stored ops' data kept in memory to answer fetch requests without a
    /// store read ([`OpCache`]). Default 8 MiB (about 30 000 ops of the bundled dataset);
    /// zero reads every served op from the store, as Kitsune2 does.
    pub serve_cache_bytes: usize,
    /// Most bytes of op data a publish batch to one peer may carry itself: a batch of fresh
    /// local ops whose data is in [`OpCache`] and fits goes out as a `FetchResponse` frame
    /// nobody asked for (an eager push), larger ones as `PublishOps` ids that the peer
    /// fetches at its own pace. Kitsune2 only announces ids; each op then costs its id three
    /// times (announcement, request, response) plus two frames, which on small ops is more
    /// than the op: in `tests/sim.rs` (1 000 real ops of 184 B on average, trickled over 8
    /// peers) a peer received 1.56x the dataset at convergence, 1.15x with pushes. Fresh
    /// local ops are held by nobody else yet, so a push is rarely wasted. Default 64 KiB;
    /// zero announces every batch (plain Kitsune2; a native Kitsune2 peer drops the push).
    pub push_max_bytes: usize,
    /// Local ops published within this long before a peer joins (its first verified info)
    /// are announced to that peer at once, if its arc holds them: a swarm publishes right
    /// after joining, before most peers are known, and without this those peers learn of
    /// the ops only through gossip (ids offered by several peers, fetched from whoever
    /// answers). At most [`MAX_INTRODUCED_OPS`] ids are kept. Default 120 s; zero turns it
    /// off (plain Kitsune2: publish reaches the peers known at that moment).
    pub introduce_recent_ops: Duration,
    /// How long after admitting a peer we initiate no gossip round with it. On admission
    /// both sides introduce their recent ops (above) and a joiner starts fetching them; a
    /// round before they arrive finds the introduced ops missing and moves their ids a
    /// second time. Measured in the 8-tab `npm start` (3 runs each): without it the late
    /// joiner received 0.6–1.2 MB of gossip (`Hashes` of the rounds at join) in 2 of 3 runs
    /// and caught up in 3.6–3.9 s; with 1 s, 0.4–1.8 KB and 3.4–3.5 s (5 s did no better).
    /// It delays a joiner's first round, which is what brings ops older than the
    /// introductions, so it is kept short. Default 1 s; not applied while
    /// `introduce_recent_ops` is zero (then rounds are how a joiner learns anything).
    pub gossip_grace: Duration,
    /// Interval of peer store pruning. Default 10 s (Kitsune2 `prune_interval_s`).
    pub prune_interval: Duration,
}

impl SpaceConfig {
    /// Defaults for `space`.
    pub fn new(space: SpaceId) -> Self {
        SpaceConfig {
            space,
            locator: Locator::default(),
            storage_arc: DhtArc::FULL,
            peer_store: PeerStoreConfig::default(),
            fetch: FetchConfig::default(),
            publish: PublishConfig::default(),
            // Rounds come 1 s apart while they find differences: Kitsune2's 15 Initiates per
            // peer per 10 min (meant for 120 s intervals) answered a repairing peer `Busy`
            // after 15 s. One a second on average is allowed instead.
            gossip: GossipConfig {
                burst_count: 600,
                ..GossipConfig::default()
            },
            max_gossip_inbox: 64,
            membership: MembershipConfig::default(),
            max_response_frame_bytes: 256 * 1024,
            max_request_ids: 4096,
            max_serving_per_peer: 4,
            max_unsent_response_bytes_per_peer: 4 << 20,
            known_ops_per_peer: 16_384,
            known_ops_peers: 32,
            recently_stored: 10_000,
            serve_cache_bytes: 8 * 1024 * 1024,
            push_max_bytes: 64 * 1024,
            introduce_recent_ops: Duration::from_secs(120),
            gossip_grace: Duration::from_secs(1),
            prune_interval: Duration::from_secs(10),
        }
    }
}

/// Most recent local op ids kept for [`SpaceConfig::introduce_recent_ops`] (32 bytes each,
/// so at most 512 KiB of announcements to one joining peer). A joiner gets the rest of a
/// larger import from its first gossip round, which starts once fewer than
/// `GOSSIP_FETCH_BACKLOG` introduced ops wait to be fetched (they are catch-up, no bulk
/// intake). With 4 096, a tab joining 3 s after one peer imported the 11 643-op dataset
/// held 4 096 ops at ~1 s, then nothing new until ~3.4 s (all by 4.3–5.7 s); with 16 384,
/// all by 1.9–3.9 s (session 20, 5 runs, when the round also waited for the introduced
/// ops' intake to go quiet).
pub const MAX_INTRODUCED_OPS: usize = 16_384;

/// Op ids [`HeldIds`] keeps (8-byte fingerprints in a hash set, 9-18 bytes each with the
/// table's slack, at most ~4.5 MB): past it, every announced id takes a store read again.
pub const MAX_HELD_IDS: usize = 250_000;

/// Bytes of pushed op data from one peer being written to the store at once
/// ([`SpaceConfig::push_max_bytes`]); pushes past it are taken as announcements and fetched
/// at our pace, so a peer cannot queue unbounded writes. 1 MiB (16 default pushes).
pub const MAX_PUSH_WRITING_PER_PEER: usize = 1024 * 1024;

/// Writes of received (fetched or pushed) ops given to the store at once; more wait in the
/// space. IndexedDB runs read-write transactions over one object store one at a time, in the
/// order they were created (IndexedDB 3.0, "transaction scheduling"), so every received write
/// handed over early delays a local publish's write, and the reads that serve peers' fetches,
/// behind it. In the 8-tab job a local write had waited behind 8 to 10 of them (2.4 s); with
/// one at a time, against two, the publish phase took 4.9-6.1 s against 5.8-8.7 s and
/// convergence 12.2-13.5 s against 12.6-15.6 s (six interleaved runs each).
pub const MAX_RECEIVED_WRITES_IN_FLIGHT: usize = 1;

/// Most ops in one write of held received writes ([`MAX_RECEIVED_WRITES_IN_FLIGHT`]): the
/// writes held while one was with the store go as one, up to this many ops (a held write
/// larger than this goes alone).
pub const MAX_MERGED_WRITE_OPS: usize = 2048;

/// The smallest [`SpaceConfig::max_response_frame_bytes`]: room for one op id and framing.
pub const MIN_RESPONSE_FRAME_BYTES: usize = 1024;

/// How long a driver waits, after [`Space::leave`], for the results of sends still in flight
/// (the tombstone among them) before it stops anyway ([`Space::leave_finished`]); 2 s.
pub const LEAVE_GRACE: Duration = Duration::from_secs(2);

impl SpaceConfig {
    /// Checks every field, the module configs' included.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad field (e.g. `fetch.request_timeout`), such as a
    /// zero limit or timeout, or a response frame size outside
    /// [`MIN_RESPONSE_FRAME_BYTES`]`..=`[`MAX_FRAME_BYTES`].
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.peer_store.validate()?;
        self.fetch.validate()?;
        self.publish.validate()?;
        self.gossip.validate()?;
        self.membership.validate()?;
        if !(MIN_RESPONSE_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&self.max_response_frame_bytes) {
            return Err(ConfigError {
                field: "max_response_frame_bytes",
                rule: "must lie in MIN_RESPONSE_FRAME_BYTES..=wire::MAX_FRAME_BYTES",
            });
        }
        if !self.storage_arc.is_sector_aligned() {
            return Err(ConfigError {
                field: "storage_arc",
                rule: "must be whole sectors (start a multiple of 2^23, end one less than a \
                       multiple), as Kitsune2's gossip requires",
            });
        }
        at_least_one("max_request_ids", self.max_request_ids as u64)?;
        at_least_one("max_gossip_inbox", self.max_gossip_inbox as u64)?;
        at_least_one("max_serving_per_peer", self.max_serving_per_peer as u64)?;
        at_least_one(
            "max_unsent_response_bytes_per_peer",
            self.max_unsent_response_bytes_per_peer as u64,
        )?;
        positive("prune_interval", self.prune_interval)
    }
}

/// Why [`Space::new`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The config is invalid ([`SpaceConfig::validate`]).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The first agent info could not be signed.
    #[error("signing the agent info: {0}")]
    Sign(#[from] AgentError),
}

/// Why [`Space::set_storage_arc`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageArcError {
    /// The arc is not whole sectors ([`DhtArc::is_sector_aligned`], Kitsune2's rule for
    /// gossip arcs); the storage arc is unchanged.
    #[error(
        "storage arc {arc:?} is not whole sectors (start a multiple of 2^23, end one less than \
         a multiple); the smallest such arc holding it is {cover:?}"
    )]
    NotSectorAligned {
        /// The arc asked for.
        arc: DhtArc,
        /// The smallest sector-aligned arc holding it ([`DhtArc::sector_cover`]).
        cover: DhtArc,
    },
    /// The new agent info could not be signed (the arc is already set).
    #[error("signing the agent info: {0}")]
    Sign(#[from] AgentError),
}

/// Identifies one [`Space::publish`]: its outcome is reported with this token
/// ([`SpaceEvent::OpStored`] or [`SpaceEvent::PublishFailed`]), never by op id, so two
/// publishes of the same op, or a store failure elsewhere, cannot settle the wrong one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublishToken(pub u64);

/// A publish the space accepted: its token and the op's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publishing {
    /// Settles with [`SpaceEvent::OpStored`] or [`SpaceEvent::PublishFailed`].
    pub token: PublishToken,
    /// The op's id.
    pub op_id: OpId,
}

/// Why something the space did for the app failed, without a caller to return it to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpaceError {
    /// Signing a new local agent info (re-sign before expiry, URL or arc change, leave)
    /// failed; the old info stays and, for a re-sign, is retried at the next timer. If it
    /// keeps failing the info expires and peers stop admitting us.
    #[error("signing the local agent info failed: {0}")]
    Sign(AgentError),
    /// The publish pool was full ([`PublishConfig::max_broadcasts`]): the stored op was not
    /// announced; peers get it through gossip.
    #[error("op {op_id} stored but not announced: the publish pool is full")]
    PublishPoolFull {
        /// The op.
        op_id: OpId,
    },
    /// The DHT model could not be built from the store at start ([`Space::load_model`]):
    /// gossip compares only the ops stored from now on, so rounds keep finding differences
    /// for older data (fetches of ids we hold are still filtered by the store).
    #[error("{0}")]
    ModelLoad(crate::core::dht::store::DhtLoadError),
}

/// Sizes of every map of a [`Space`] keyed by a peer URL, agent, op or ticket, for tests that
/// check state stays bounded ([`Space::state_sizes`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateSizes {
    /// Peer store maps.
    pub peer_store: PeerStoreSizes,
    /// Per-peer entries of gossip (open rounds, bursts, bookmarks, last round) and of the
    /// space's "last tried" map.
    pub gossip_peers: usize,
    /// Inbound gossip messages waiting.
    pub gossip_inbox: usize,
    /// Peers tracked by [`KnownOps`].
    pub known_peers: usize,
    /// Peers in the publish tally ([`PeerTally::len`]).
    pub tally_peers: usize,
    /// Peers with fetch requests being served.
    pub serving: usize,
    /// Peers whose pushed ops are being written.
    pub push_writing: usize,
    /// Pushed ops being written.
    pub pushed_writing: usize,
    /// Ops being fetched.
    pub fetch_pending: usize,
    /// Peers with ops queued in the fetch queue.
    pub fetch_queued_peers: usize,
    /// Fetch sources suspended after a membership down (ended by alive, the suspend
    /// timeout, or pruning).
    pub fetch_suspended: usize,
    /// Broadcasts running.
    pub broadcasts: usize,
    /// Store operations not yet answered or waiting to be asked for.
    pub store_pending: usize,
    /// Sends without a result.
    pub sends: usize,
    /// Recently stored op ids remembered.
    pub recent: usize,
}

/// Identifies a store operation the core asked for.
pub type StoreTicket = u64;
/// Identifies a frame the core asked to send.
pub type SendTicket = u64;

/// A store operation for the driver to perform (see [`perform`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreRequest {
    /// [`crate::api::OpStore::process_incoming_ops`]; answer [`StoreResponse::Written`].
    Write(Vec<MetaOp>),
    /// [`crate::api::OpStore::retrieve_ops`]; answer [`StoreResponse::Retrieved`].
    Retrieve(Vec<OpId>),
    /// [`crate::api::OpStore::filter_out_existing_ops`]; answer [`StoreResponse::Missing`].
    FilterMissing(Vec<OpId>),
    /// [`crate::core::dht::store::persist`]: the DHT model's changed full-slice hashes;
    /// answer [`StoreResponse::SliceHashesPersisted`].
    PersistSliceHashes(SliceWrites),
}

/// The result of a [`StoreRequest`], same variant order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreResponse {
    /// Ops newly stored.
    Written(Result<Vec<crate::model::op::StoredOp>, StoreError>),
    /// Ops found.
    Retrieved(Result<Vec<MetaOp>, StoreError>),
    /// Ids not held.
    Missing(Result<Vec<OpId>, StoreError>),
    /// The slice hashes were written.
    SliceHashesPersisted(Result<(), StoreError>),
}

/// What the core asks of its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send `frame` (one encoded `K2Proto`) to `to`, connecting if needed, then report the
    /// outcome with [`Space::handle_send_result`] and this ticket.
    Send {
        /// For [`Space::handle_send_result`].
        ticket: SendTicket,
        /// Peer URL.
        to: Url,
        /// The frame.
        frame: Bytes,
        /// How it travels.
        lane: Lane,
    },
    /// Perform `request` on the op store and report with [`Space::handle_store_response`].
    Store {
        /// For [`Space::handle_store_response`].
        ticket: StoreTicket,
        /// The operation.
        request: StoreRequest,
    },
    /// Close the connection to `peer` (after sending it a DISCONNECT frame with `reason`,
    /// e.g. [`crate::wire::encode_disconnect`]).
    Close {
        /// Peer URL.
        peer: Url,
        /// Why.
        reason: String,
    },
    /// Something the app may want to know.
    Event(SpaceEvent),
}

/// How a frame of [`Output::Send`] travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Reliably and in order with the other frames to the peer
    /// ([`Transport::send`](crate::api::transport::Transport::send)).
    Reliable,
    /// As a datagram that may be lost and does not queue behind bulk traffic
    /// ([`Transport::send_datagram`](crate::api::transport::Transport::send_datagram)): SWIM
    /// packets, whose protocol tolerates loss but not delay (a probe answered late is a
    /// suspicion).
    Datagram,
}

/// Events of a space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpaceEvent {
    /// A newly signed local agent info (join, re-sign, URL or arc change, leave): put it to
    /// the bootstrap server.
    LocalAgentInfo(AgentInfoSigned),
    /// A locally published op was committed to the store (and is being announced): the
    /// publish of `token` succeeded.
    OpStored {
        /// The publish.
        token: PublishToken,
        /// The op.
        op_id: OpId,
    },
    /// The store write of a local publish failed: the publish of `token` failed (only the
    /// publishes of that write; [`SpaceEvent::StoreFailed`] is emitted too).
    PublishFailed {
        /// The publish.
        token: PublishToken,
        /// The op.
        op_id: OpId,
        /// The store's error.
        error: StoreError,
    },
    /// An op fetched from a peer was verified and committed to the store.
    OpReceived {
        /// The op.
        op_id: OpId,
        /// The op.
        op: Op,
        /// The peer it came from.
        from: Url,
        /// The agent at `from` (ops carry no author: for an op passed on by a third peer this
        /// is that peer's agent); `None` if its agent info went away before the op was stored.
        agent: Option<AgentId>,
    },
    /// Fetch progress of the current sync round (see [`SyncProgress`]), throttled.
    Sync(SyncProgress),
    /// A NOTIFY from a peer ([`Space::send_notify`] on its side).
    Notified {
        /// The agent at `from` (`None` only if several or none are: not with fennec peers).
        agent: Option<AgentId>,
        /// The peer URL it came from.
        from: Url,
        /// Its bytes.
        data: Bytes,
    },
    /// The outcome of [`Space::get_remote`]: the verified op, or `None` (not found).
    Got {
        /// As returned by [`Space::get_remote`].
        token: GetToken,
        /// The op.
        op: Option<Op>,
    },
    /// The transport's outcome for the NOTIFY of `ticket` ([`Space::send_notify`]): `Ok`
    /// when the frame was handed to the connection, not that the peer read it.
    NotifySent {
        /// As returned by [`Space::send_notify`].
        ticket: SendTicket,
        /// The transport's error, if any.
        result: Result<(), String>,
    },
    /// The announcement of a local op is over.
    Published {
        /// The op.
        op_id: OpId,
        /// Peers the announcement reached.
        reached: Vec<Url>,
        /// Peers it failed for.
        failed: Vec<Url>,
    },
    /// A peer agent appeared (or came back).
    PeerJoined {
        /// The agent.
        agent: AgentId,
        /// Its URL.
        url: Option<Url>,
    },
    /// A peer's storage arc, from each new or newer agent info of it (Kitsune2's
    /// `AgentInfo::storage_arc`): where it holds ops. Not an app event; `space.peers()`
    /// shows it.
    PeerArc {
        /// The agent.
        agent: AgentId,
        /// Its claimed arc.
        arc: DhtArc,
    },
    /// A peer agent left (tombstone) or its info expired.
    PeerLeft {
        /// The agent.
        agent: AgentId,
    },
    /// Membership: a probe of the agent failed; it is suspected until it refutes or the
    /// suspicion timeout declares it down.
    MemberSuspect {
        /// The agent.
        agent: AgentId,
        /// Its URL, if its agent info is held.
        url: Option<Url>,
    },
    /// Membership: the agent was declared down. It is marked unresponsive (publish, fetch
    /// and gossip skip it) and its connection closed until it is alive again or signs a
    /// newer agent info.
    MemberDown {
        /// The agent.
        agent: AgentId,
        /// Its URL, if its agent info is held.
        url: Option<Url>,
    },
    /// Membership: the agent became a member, refuted a suspicion or came back.
    MemberAlive {
        /// The agent.
        agent: AgentId,
        /// Its URL, if its agent info is held.
        url: Option<Url>,
    },
    /// Membership: the agent announced it left (a closed tab); treated as down.
    MemberLeft {
        /// The agent.
        agent: AgentId,
        /// Its URL, if its agent info is held.
        url: Option<Url>,
    },
    /// The fetch queue gave up on an op.
    FetchFailed {
        /// The op.
        op_id: OpId,
        /// Requests made.
        attempts: u32,
        /// Why.
        reason: FailReason,
    },
    /// A peer broke the protocol; it was blocked and disconnected.
    PeerMisbehaved {
        /// The peer URL.
        peer: Url,
        /// What it did.
        reason: String,
    },
    /// A store operation failed.
    StoreFailed {
        /// The store's error.
        error: StoreError,
    },
    /// Something failed with no caller to return the error to (see [`SpaceError`]).
    Error(SpaceError),
    /// The local agent left: its tombstone went out, the space does nothing more.
    Left,
}

/// Counters of a space, for diagnostics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpaceStats {
    /// Module messages dropped because the sender's URL is not admitted.
    pub unadmitted: u64,
    /// Messages for another space.
    pub wrong_space: u64,
    /// Frames that did not decode.
    pub bad_frames: u64,
    /// Agent infos received that failed to decode or verify.
    pub bad_agent_infos: u64,
    /// Peers reported for misbehaviour.
    pub misbehaved: u64,
    /// Incoming fetch requests (or their parts needing a store read) dropped: too many at
    /// once from one peer (`space/serve.rs`).
    pub requests_dropped: u64,
    /// Incoming fetch requests held until the peer's earlier responses were sent.
    pub requests_held: u64,
    /// Ops sent in fetch responses.
    pub ops_served: u64,
    /// Of those, ops found in [`OpCache`] (no store read).
    pub ops_served_from_memory: u64,
    /// Announced ids queued for fetch without a store read: [`HeldIds`] proved them missing.
    pub announced_fetched_unread: u64,
    /// Ops we pushed with their data instead of announcing them
    /// ([`SpaceConfig::push_max_bytes`]).
    pub ops_pushed: u64,
    /// Ops peers pushed to us, verified and handed to the store.
    pub pushed_taken: u64,
    /// Ops peers pushed to us that we fetch instead: already pending, or the peer's pushes
    /// being written were over [`MAX_PUSH_WRITING_PER_PEER`].
    pub pushed_deferred: u64,
    /// Ops peers pushed to us outside our arc, stored lately or being written: dropped.
    pub pushed_dropped: u64,
    /// Frames asked to be sent.
    pub frames_sent: u64,
    /// Bytes of those frames.
    pub bytes_sent: u64,
    /// Store operations that failed.
    pub store_errors: u64,
    /// Peers marked unresponsive (membership declared them down or they left).
    pub unresponsive_marks: u64,
    /// Membership packets dropped: malformed, spoofed source, or sent before the sender's
    /// agent info.
    pub bad_membership: u64,
    /// Membership packets not sent: no URL known for the member.
    pub membership_unroutable: u64,
    /// Ops published locally.
    pub ops_published: u64,
    /// Ops received from peers (fetched or pushed) that were new to the store.
    pub ops_received: u64,
    /// Local agent infos that could not be signed ([`SpaceError::Sign`]).
    pub sign_failures: u64,
    /// Op ids announced to peers that joined after we published them
    /// ([`SpaceConfig::introduce_recent_ops`]).
    pub ops_introduced: u64,
    /// Stored local ops not announced because the publish pool was full
    /// ([`SpaceError::PublishPoolFull`]).
    pub announce_refused: u64,
    /// Inbound gossip messages dropped: the inbox was full ([`SpaceConfig::max_gossip_inbox`]).
    pub gossip_dropped: u64,
    /// Gossip messages refused (no/another session, out of stage, malformed).
    pub gossip_refused: u64,
}

#[derive(Debug, Clone)]
enum Pending {
    LocalWrite {
        ops: Vec<(PublishToken, MetaOp)>,
    },
    /// Received writes that went to the store together, oldest first.
    FetchedWrite(Vec<ReceivedWrite>),
    Announced {
        from: Url,
        /// An introduction ([`PublishMsg::Introduction`]): fetched as catch-up.
        introduced: bool,
    },
    Serve {
        to: Url,
    },
    /// A [`StoreRequest::PersistSliceHashes`].
    Persist,
}

/// Verified ops received from `from`, to be written.
#[derive(Debug, Clone)]
struct ReceivedWrite {
    ops: Vec<VerifiedOp>,
    from: Url,
    /// Bytes of pushed data (0: fetched ops, asked for by the fetch queue).
    pushed: usize,
}

#[derive(Debug, Clone)]
enum SendKind {
    Publish(BatchId),
    FetchRequest(crate::core::fetch::RequestId),
    /// A SWIM datagram: nobody waits for it.
    Membership,
    /// A NOTIFY: its outcome is reported ([`SpaceEvent::NotifySent`]).
    Notify,
    /// A fetch-response frame of this many bytes (`space/serve.rs` counts them until sent).
    Response(usize),
    Other,
}

/// The core of one joined space (see the [module docs](self)).
pub struct Space {
    cfg: SpaceConfig,
    signer: Box<dyn Signer>,
    verifier: Box<dyn Verifier>,
    agent: AgentId,
    url: Option<Url>,
    arc: DhtArc,
    info: AgentInfoSigned,
    left: bool,
    /// When [`leave`](Self::leave) ran (the start of [`LEAVE_GRACE`]).
    left_at: Option<Timestamp>,
    /// A timer woke us once the leave was finished ([`Self::leave_finished`]):
    /// [`poll_timeout`](Self::poll_timeout) no longer asks for the grace's wake-up (the
    /// deadline, once past, would wake a driver at once forever).
    grace_woken: bool,
    peers: PeerStore,
    fetch: FetchQueue,
    pool: BroadcastPool,
    members: Membership,
    known: KnownOps,
    /// The DHT model gossip compares (every op the store newly stored).
    dht: Dht,
    gossip: Gossip,
    /// Gossip state kept by the space (see `space/gossip.rs`).
    glue: gossip::Glue,
    tally: PeerTally,
    pending: HashMap<StoreTicket, Pending>,
    sends: HashMap<SendTicket, (Url, SendKind)>,
    /// Per peer, its fetch requests being served (`space/serve.rs`).
    serving: HashMap<Url, serve::Serving>,
    /// Per peer, bytes of its pushed ops being written ([`MAX_PUSH_WRITING_PER_PEER`]).
    push_writing: HashMap<Url, usize>,
    /// Ids of pushed ops being written: not fetched again meanwhile when a gossip round or
    /// an announcement offers them (the fetch queue knows only the ops it asked for).
    pushed_writing: HashSet<OpId>,
    /// Received writes given to the store and not yet answered
    /// ([`MAX_RECEIVED_WRITES_IN_FLIGHT`]).
    received_writing: usize,
    /// Received writes waiting for the store, oldest first.
    held_writes: VecDeque<ReceivedWrite>,
    recent: BoundedSet<OpId>,
    /// Every op id the store holds, while known in full: announced ids it surely lacks are
    /// fetched without a store read.
    held: HeldIds,
    op_cache: OpCache,
    /// Local ops published lately, oldest first ([`SpaceConfig::introduce_recent_ops`]).
    published_lately: VecDeque<(Timestamp, OpId)>,
    next_ticket: u64,
    next_prune: Timestamp,
    out: VecDeque<Output>,
    /// Remote gets waiting for an answer ([`Space::get_remote`]).
    gets: Vec<get::RemoteGet>,
    /// Senders of malformed membership packets, for [`Self::misbehaved`] at the next pump
    /// (a [`GossipStep`] may hold the parts it touches).
    misbehaving: Vec<(Url, String)>,
    /// Local ops waiting to be written as one batch at the next [`Space::poll_output`].
    local_batch: Vec<(PublishToken, MetaOp)>,
    next_publish: u64,
    stats: SpaceStats,
    sync: SyncTracker,
}

impl std::fmt::Debug for Space {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Space")
            .field("space", &self.cfg.space)
            .field("agent", &self.agent)
            .field("url", &self.url)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Space {
    /// Joins: signs the local agent's first info with `signer` (agent id `agent`, URL `url`,
    /// arc from the config) and emits it as [`SpaceEvent::LocalAgentInfo`]. Infos from peers
    /// are checked with ed25519 ([`Ed25519Verifier`]); see [`Space::with_verifier`]. `seed`
    /// feeds session ids and jitter (use random bytes; fixed in tests).
    ///
    /// # Errors
    /// [`JoinError::Config`] for an invalid config ([`SpaceConfig::validate`]);
    /// [`JoinError::Sign`]: the signer's error, or [`AgentError::TooLarge`] for a very long
    /// URL.
    pub fn new(
        cfg: SpaceConfig,
        signer: Box<dyn Signer>,
        agent: AgentId,
        url: Option<Url>,
        now: Timestamp,
        seed: u64,
    ) -> Result<Self, JoinError> {
        cfg.validate()?;
        let arc = cfg.storage_arc;
        let info = AgentInfoSigned::sign(
            &DynSigner(&*signer),
            AgentInfo::new(agent.clone(), cfg.space.clone(), now, url.clone(), arc),
        )?;
        let mut s = Space {
            peers: PeerStore::new(cfg.space.clone(), cfg.peer_store.clone()),
            fetch: FetchQueue::new(cfg.fetch.clone()),
            pool: BroadcastPool::new(cfg.publish.clone()),
            dht: Dht::new(crate::core::dht::time::TIME_FACTOR, cfg.locator, now).map_err(|_| {
                ConfigError {
                    field: "gossip",
                    rule: "the DHT model's time factor",
                }
            })?,
            gossip: Gossip::new(
                cfg.gossip.clone(),
                vec![Bytes::copy_from_slice(agent.as_bytes())],
                crate::model::arc::SectorSet::from_arcs(&[arc]),
                seed,
            ),
            glue: gossip::Glue::new(now),
            // A different stream than gossip's.
            members: Membership::new(cfg.membership.clone(), agent.clone(), now, !seed)?,
            known: KnownOps::new(cfg.known_ops_per_peer, cfg.known_ops_peers),
            tally: PeerTally::default(),
            next_prune: now.plus(cfg.prune_interval),
            recent: BoundedSet::new(cfg.recently_stored),
            // A new space's store is empty until `load_model` says otherwise.
            held: HeldIds::empty(MAX_HELD_IDS),
            op_cache: OpCache::new(cfg.serve_cache_bytes),
            published_lately: VecDeque::new(),
            cfg,
            signer,
            verifier: Box::new(Ed25519Verifier),
            agent,
            url,
            arc,
            info: info.clone(),
            left: false,
            left_at: None,
            grace_woken: false,
            pending: HashMap::default(),
            sends: HashMap::default(),
            serving: HashMap::default(),
            push_writing: HashMap::default(),
            pushed_writing: HashSet::default(),
            received_writing: 0,
            held_writes: VecDeque::new(),
            next_ticket: 1,
            out: VecDeque::new(),
            gets: Vec::new(),
            misbehaving: Vec::new(),
            local_batch: Vec::new(),
            next_publish: 1,
            stats: SpaceStats::default(),
            sync: SyncTracker::default(),
        };
        s.peers.insert(now, info.clone());
        s.emit(SpaceEvent::LocalAgentInfo(info));
        Ok(s)
    }

    /// Uses `verifier` for peers' agent infos instead of ed25519.
    pub fn with_verifier(mut self, verifier: Box<dyn Verifier>) -> Self {
        self.verifier = verifier;
        self
    }

    /// The space id.
    pub fn space_id(&self) -> &SpaceId {
        &self.cfg.space
    }

    /// The local agent.
    pub fn agent(&self) -> &AgentId {
        &self.agent
    }

    /// The local agent's current signed info (send it in preflight).
    pub fn local_agent_info(&self) -> &AgentInfoSigned {
        &self.info
    }

    /// The peer store (read only).
    pub fn peer_store(&self) -> &PeerStore {
        &self.peers
    }

    /// Counters of the space.
    pub fn stats(&self) -> SpaceStats {
        self.stats
    }

    /// Per-peer counts of announcements delivered and failed.
    pub fn publish_tally(&self) -> &PeerTally {
        &self.tally
    }

    /// Counters of the fetch queue.
    pub fn fetch_stats(&self) -> FetchStats {
        self.fetch.stats()
    }

    /// The peers we have fetch requests in flight to, sorted (diagnostics and tests).
    pub fn fetching_from(&self) -> Vec<Url> {
        self.fetch.peers_in_flight()
    }

    /// Counters of membership.
    pub fn membership_stats(&self) -> MembershipStats {
        self.members.stats()
    }

    /// How membership sees `agent` (`None`: not a member of our active set).
    pub fn liveness(&self, agent: &AgentId) -> Option<Liveness> {
        self.members.liveness(agent)
    }

    /// The membership state (read only).
    pub fn membership(&self) -> &Membership {
        &self.members
    }

    /// Ops waiting to be fetched or stored.
    pub fn fetch_pending(&self) -> usize {
        self.fetch.len()
    }

    /// Sizes of every map keyed by a peer URL, agent, op or ticket. Per-peer state is
    /// pruned every [`SpaceConfig::prune_interval`] to the peers with a live agent info
    /// ([`Space::handle_timeout`]); the rest is bounded by the config.
    pub fn state_sizes(&self) -> StateSizes {
        StateSizes {
            peer_store: self.peers.sizes(),
            gossip_peers: self.gossip.peer_entries() + self.glue.tried.len(),
            gossip_inbox: self.glue.inbox.len(),
            known_peers: self.known.peer_count(),
            tally_peers: self.tally.len(),
            serving: self.serving.len(),
            push_writing: self.push_writing.len(),
            pushed_writing: self.pushed_writing.len(),
            fetch_pending: self.fetch.len(),
            fetch_queued_peers: self.fetch.queued_peers(),
            fetch_suspended: self.fetch.suspended_count(),
            broadcasts: self.pool.len(),
            store_pending: self.store_pending(),
            sends: self.sends.len(),
            recent: self.recent.len(),
        }
    }

    /// Store operations asked for and not yet answered, or waiting to be asked for.
    pub fn store_pending(&self) -> usize {
        self.pending.len() + self.held_writes.len()
    }

    /// Whether the local agent left.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// Whether a send the space waits for (everything but membership datagrams, which may
    /// be headed for a dead peer and are lost without harm) has no result yet.
    pub fn awaits_sends(&self) -> bool {
        self.sends
            .values()
            .any(|(_, k)| !matches!(k, SendKind::Membership))
    }

    /// Whether a driver of this space may stop: it left, and either every send it waits for
    /// has its result ([`awaits_sends`](Self::awaits_sends)) or [`LEAVE_GRACE`] passed since
    /// [`leave`](Self::leave). The grace bounds the wait: a send to a peer that vanished
    /// without a leave has no result until its connection attempt times out
    /// ([`crate::net::conn::NetConfig::webrtc_connect_timeout`], 15 s), and the tombstone is best
    /// effort anyway (peers also learn of the departure from membership and bootstrap).
    pub fn leave_finished(&self, now: Timestamp) -> bool {
        match self.left_at {
            Some(at) => !self.awaits_sends() || now >= at.plus(LEAVE_GRACE),
            None => false,
        }
    }

    /// The next output, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.flush_local_writes();
        self.out.pop_front()
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.left {
            let grace_over = self
                .left_at
                .map(|at| at.plus(LEAVE_GRACE))
                .filter(|_| !self.grace_woken);
            return [
                self.fetch.poll_timeout(),
                self.pool.poll_timeout(),
                self.gets_timeout(),
                grace_over,
            ]
            .into_iter()
            .flatten()
            .min();
        }
        let resign = self
            .info
            .expires_at
            .add_micros(-crate::model::agent::RE_SIGN_MARGIN_US);
        [
            self.fetch.poll_timeout(),
            self.pool.poll_timeout(),
            self.gossip_timeout(),
            self.members.poll_timeout(),
            self.gets_timeout(),
            Some(self.next_prune),
            Some(resign),
            self.sync.due(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---------------------------------------------------------------- app commands

    /// Publishes an op with `payload`, created now: stores it (an [`Output::Store`] write),
    /// then, once committed, emits [`SpaceEvent::OpStored`] with the returned token and
    /// announces it to the peers whose arc holds its location; if the write fails,
    /// [`SpaceEvent::PublishFailed`] with the token.
    ///
    /// # Errors
    /// [`OpError::TooLarge`] if the payload exceeds [`crate::model::op::MAX_OP_PAYLOAD_BYTES`].
    pub fn publish(
        &mut self,
        now: Timestamp,
        payload: impl Into<Bytes>,
    ) -> Result<Publishing, OpError> {
        let op = Op::new(now, payload)?;
        Ok(self.publish_op(op))
    }

    /// As [`publish`](Self::publish), for an op built by the caller (e.g. with the
    /// `created_at` of imported data). Build it with [`Op::new`] so its size is checked.
    pub fn publish_op(&mut self, op: Op) -> Publishing {
        let data = op.encode();
        let op_id = crate::model::op::op_id_of(&data);
        let token = PublishToken(self.next_publish);
        self.next_publish += 1;
        self.stats.ops_published += 1;
        // Ops published between two output drains go to the store as one write (one
        // IndexedDB transaction per burst).
        let meta = MetaOp {
            op_id: op_id.clone(),
            op_data: data,
        };
        self.local_batch.push((token, meta));
        Publishing { token, op_id }
    }

    fn flush_local_writes(&mut self) {
        if self.local_batch.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.local_batch);
        let batch = ops.iter().map(|(_, m)| m.clone()).collect();
        self.store(StoreRequest::Write(batch), Pending::LocalWrite { ops });
    }

    /// Leaves the space: signs a tombstone, sends it to every reachable peer, emits it as
    /// [`SpaceEvent::LocalAgentInfo`] (put it to bootstrap) and [`SpaceEvent::Left`], and
    /// writes the model's changed hashes (`Space::persist_now`; `run_space` ends once that
    /// write is done, as every store operation). Module messages are dropped from now on.
    ///
    /// # Errors
    /// The signer's error.
    pub fn leave(&mut self, now: Timestamp) -> Result<(), AgentError> {
        if self.left {
            return Ok(());
        }
        let tomb = AgentInfo::tombstone(self.agent.clone(), self.cfg.space.clone(), now);
        self.adopt_info(now, tomb)?;
        self.members.leave(now);
        self.pump_members(now);
        self.left = true;
        self.left_at = Some(now);
        self.pool.stop_all();
        self.persist_now(now);
        self.emit(SpaceEvent::Left);
        self.pump(now);
        Ok(())
    }

    /// The tab is hidden (`true`) or visible again: members are told to wait
    /// [`MembershipConfig::dozing_suspect_to_down_after`] before declaring us down while it
    /// is hidden (its timers are throttled). Hiding also writes the model's changed hashes
    /// at once (`Space::persist_now`): a hidden tab is often about to be closed.
    pub fn set_dozing(&mut self, now: Timestamp, dozing: bool) {
        self.members.set_dozing(now, dozing);
        if dozing && !self.left {
            self.persist_now(now);
        }
        self.pump(now);
    }

    /// Our membership identity (agent and bump; the bump grows with each renewal).
    pub fn membership_identity(&self) -> &crate::core::membership::MemberId {
        self.members.identity()
    }

    /// The tab runs again after it was frozen or kept in the back/forward cache (Page
    /// Lifecycle `resume`, `pageshow` with `persisted`): members may have declared us down
    /// meanwhile, so membership comes back at once as a renewed identity announced to every
    /// member it knew ([`Membership::rejoin`]) instead of waiting to be told. Nothing happens
    /// after [`leave`](Self::leave).
    pub fn resume(&mut self, now: Timestamp) {
        if self.left {
            return;
        }
        self.members.rejoin(now);
        self.pump(now);
    }

    /// Our signal connection is back after an outage (issue 9): membership re-probes the
    /// members it declared down meanwhile ([`Membership::reconnected`]; SWIM alone clears
    /// their unresponsive marks, when they answer), `ops` (local ops whose
    /// announcement failed, see [`SpaceEvent::Published`]) are announced again to the peers
    /// responsible for them (they must be ops this agent published), and gossip rounds
    /// start at once, at the fast pace, to pull what peers published while we were away.
    /// Of two peers that come back one after the other, the announcement of the first may
    /// find the second still away; the second's gossip round then finds the first.
    pub fn reconnected(&mut self, now: Timestamp, ops: Vec<OpId>) {
        self.members.reconnected(now);
        self.hurry_gossip(now);
        if !self.left {
            let peers = publish::reachable_arcs(&self.peers, now, &self.agent);
            for op_id in ops {
                self.announce(now, op_id, &peers);
            }
        }
        self.pump(now);
    }

    /// The local agent's URL changed (new transport address): signs and spreads a new info.
    ///
    /// # Errors
    /// The signer's error.
    pub fn set_url(&mut self, now: Timestamp, url: Option<Url>) -> Result<(), AgentError> {
        self.url = url;
        self.re_sign(now)
    }

    /// The local agent's storage arc changed: signs and spreads a new info; gossip compares
    /// the new arc's sectors from the next round.
    ///
    /// # Errors
    /// [`StorageArcError::NotSectorAligned`] for an arc that is not whole sectors (nothing
    /// changes), or the signer's error.
    pub fn set_storage_arc(&mut self, now: Timestamp, arc: DhtArc) -> Result<(), StorageArcError> {
        if !arc.is_sector_aligned() {
            return Err(StorageArcError::NotSectorAligned {
                arc,
                cover: arc.sector_cover(),
            });
        }
        self.arc = arc;
        self.gossip
            .set_sectors(crate::model::arc::SectorSet::from_arcs(&[arc]));
        Ok(self.re_sign(now)?)
    }

    /// Verified agent infos from bootstrap or a peer's preflight.
    pub fn insert_agent_infos(&mut self, now: Timestamp, infos: Vec<AgentInfoSigned>) {
        for i in infos {
            self.insert_info(now, i);
        }
        self.pump(now);
    }

    // ---------------------------------------------------------------- inbound

    /// An encoded frame from `from`, for simulations that carry raw frames: decoded
    /// ([`WireMessage::decode`]) and handed to [`handle_message`](Self::handle_message). A
    /// frame that does not decode is misbehaviour. Real transports decode once themselves
    /// and deliver [`crate::api::transport::TransportEvent::Message`].
    pub fn handle_frame(&mut self, now: Timestamp, from: Url, frame: Bytes) {
        match WireMessage::decode(frame) {
            Ok(m) => self.handle_message(now, from, m),
            Err(e) => {
                self.stats.bad_frames += 1;
                self.misbehaved(now, &from, format!("bad frame: {e}"));
                self.pump(now);
            }
        }
    }

    /// A decoded message from `from` (the transport's
    /// [`crate::api::transport::TransportEvent::Message`]), applying THE admission rule,
    /// [`PeerStore::admits`], to every message, also on connections opened before the sender
    /// was blocked.
    pub fn handle_message(&mut self, now: Timestamp, from: Url, msg: WireMessage) {
        let space = match &msg {
            WireMessage::Fetch { space, .. }
            | WireMessage::Publish { space, .. }
            | WireMessage::Gossip { space, .. }
            | WireMessage::Notify { space, .. } => space,
            WireMessage::Disconnect(_) => {
                self.peer_disconnected(now, &from);
                return;
            }
            // A connection belongs to one space (`WIRE_TYPE_MEMBERSHIP`): ours.
            WireMessage::Membership { .. } => {
                let _taken = self.membership_part().membership(now, from, msg);
                self.pump(now);
                return;
            }
            WireMessage::Preflight(_) | WireMessage::Unspecified { .. } => return,
        };
        if space != &self.cfg.space {
            self.stats.wrong_space += 1;
            return;
        }
        if self.left || !self.peers.admits(now, &from) {
            self.stats.unadmitted += 1;
            return;
        }
        let agents = self.peers.agents_at(now, &from);
        // Any message proves its sender runs: a suspected member that keeps sending is
        // not declared down while its acks are lost in a congested connection.
        self.members.heard_from(now, &agents);
        // Fetching or gossiping with us: in the active set (an agent-info introduction,
        // which every new peer sends to everyone, is not).
        if matches!(msg, WireMessage::Fetch { .. } | WireMessage::Gossip { .. }) {
            for a in &agents {
                self.members.add_peer(now, a);
            }
        }
        match msg {
            WireMessage::Publish { msg, .. } => match msg {
                PublishMsg::Ops(ids) => self.on_announced(now, &from, ids, false),
                PublishMsg::Introduction(ids) => self.on_announced(now, &from, ids, true),
                PublishMsg::Agent(json) => self.on_agent_json(now, json.as_bytes()),
            },
            WireMessage::Fetch { msg, .. } => match msg {
                FetchMsg::Request(ids) => self.on_fetch_request(&from, ids),
                FetchMsg::Response(ops) => self.on_fetch_response(now, &from, ops),
            },
            WireMessage::Gossip { msg, .. } => self.queue_gossip(from.clone(), msg),
            WireMessage::Notify { data, .. } => self.on_notify(&from, &agents, data),
            _ => {}
        }
        self.pump(now);
    }

    /// Part of a message from `from` arrived (the transport's
    /// [`crate::api::transport::TransportEvent::Receiving`]): membership hears from its
    /// agents, as from a whole message ([`Membership::heard_from`]).
    pub fn receiving(&mut self, now: Timestamp, from: &Url) {
        self.membership_part().heard(now, from);
    }

    /// The outcome of sending the frame of `ticket`. An error fails that send only (fetch
    /// requests move to other sources); liveness is membership's to decide.
    pub fn handle_send_result(
        &mut self,
        now: Timestamp,
        ticket: SendTicket,
        result: Result<(), String>,
    ) {
        let Some((to, kind)) = self.sends.remove(&ticket) else {
            return;
        };
        let ok = result.is_ok();
        match kind {
            SendKind::Publish(b) => self.pool.send_result(now, b, ok),
            SendKind::Response(len) => self.response_sent(&to, len),
            SendKind::FetchRequest(r) if !ok => self.fetch.request_failed(now, r),
            SendKind::Notify => self.emit(SpaceEvent::NotifySent { ticket, result }),
            _ => {}
        }
        self.pump(now);
    }

    /// The connection to `peer` closed: requests in flight to it are asked again, of it (over
    /// a new connection) or of other sources ([`FetchQueue::connection_lost`]). It is not
    /// marked unresponsive and stays a source: whether it is gone is membership's call. For a
    /// peer membership declared down (suspended) this is when its requests fail over: the
    /// close is the down's own doing, and the messages received from it before it are in.
    pub fn peer_disconnected(&mut self, now: Timestamp, peer: &Url) {
        self.fetch.connection_lost(now, peer);
        self.serving_disconnected(peer);
        self.pump(now);
    }

    /// The result of the store operation of `ticket`: handed to the handler of the step that
    /// asked for it (one handler per kind of pending step).
    pub fn handle_store_response(
        &mut self,
        now: Timestamp,
        ticket: StoreTicket,
        response: StoreResponse,
    ) {
        let Some(p) = self.pending.remove(&ticket) else {
            return;
        };
        if matches!(p, Pending::FetchedWrite(_)) {
            self.received_written();
        }
        match (p, response) {
            (Pending::LocalWrite { ops }, StoreResponse::Written(r)) => {
                self.on_local_written(now, ops, r)
            }
            (Pending::FetchedWrite(ws), StoreResponse::Written(r)) => {
                self.on_fetched_written(now, ws, r)
            }
            (Pending::Announced { from, introduced }, StoreResponse::Missing(r)) => {
                self.on_missing(now, from, introduced, r)
            }
            (Pending::Serve { to }, StoreResponse::Retrieved(r)) => self.on_retrieved(to, r),
            (Pending::Persist, StoreResponse::SliceHashesPersisted(r)) => self.on_persisted(r),
            (_, _) => {
                // A response of the wrong kind for its ticket: a driver bug. Counted.
                self.stats.store_errors += 1;
            }
        }
        self.pump(now);
    }

    /// A local write committed or failed: each of its publishes settles by its token.
    fn on_local_written(
        &mut self,
        now: Timestamp,
        ops: Vec<(PublishToken, MetaOp)>,
        r: Result<Vec<crate::model::op::StoredOp>, StoreError>,
    ) {
        match r {
            Ok(stored) => {
                self.inform_stored(now, &stored, stored.len());
                let peers = publish::reachable_arcs(&self.peers, now, &self.agent);
                for (token, m) in ops {
                    self.op_cache.insert(&m.op_id, &m.op_data);
                    self.local_stored(now, token, m.op_id, &peers);
                }
            }
            Err(error) => {
                for (token, m) in ops {
                    self.emit(SpaceEvent::PublishFailed {
                        token,
                        op_id: m.op_id,
                        error: error.clone(),
                    });
                }
                self.store_failed(error);
            }
        }
    }

    /// Fetched ops committed (reported as received) or failed (back to the fetch queue).
    /// Pushed ops (`pushed` bytes of them) count as received like fetched ones but are no
    /// part of a sync round; if their write fails they are fetched from `from` instead.
    fn on_fetched_written(
        &mut self,
        now: Timestamp,
        ws: Vec<ReceivedWrite>,
        r: Result<Vec<crate::model::op::StoredOp>, StoreError>,
    ) {
        let stored = match r {
            Ok(stored) => stored,
            Err(e) => {
                for w in ws {
                    self.received_write_failed(now, w);
                }
                return self.store_failed(e);
            }
        };
        let catch_up = stored
            .iter()
            .filter(|s| self.fetch.is_catch_up(&s.op_id))
            .count();
        self.inform_stored(now, &stored, stored.len() - catch_up);
        // Each new op is reported once, by the first write that held it.
        let mut new: HashSet<OpId> = stored.into_iter().map(|s| s.op_id).collect();
        let fetched = ws.iter().any(|w| w.pushed == 0);
        for ReceivedWrite { ops, from, pushed } in ws {
            let ids: Vec<OpId> = ops.iter().map(|o| o.op_id.clone()).collect();
            if pushed > 0 {
                self.pushed_written(&from, pushed, &ids);
            } else {
                self.fetch.stored(now, &ids);
                self.sync.stored(ids.len());
            }
            let agent = self.agent_at(now, &from);
            self.known.add(&from, ids.iter());
            for o in ops {
                self.recent.insert(o.op_id.clone());
                self.op_cache.insert(&o.op_id, &o.data);
                if new.remove(&o.op_id) {
                    self.stats.ops_received += 1;
                    self.emit(SpaceEvent::OpReceived {
                        op_id: o.op_id,
                        op: o.op,
                        from: from.clone(),
                        agent: agent.clone(),
                    });
                }
            }
        }
        if fetched {
            self.resume_rounds(now);
        }
    }

    /// A received write failed: fetched ops go back to the fetch queue, pushed ones are
    /// fetched from the peer that pushed them.
    fn received_write_failed(&mut self, now: Timestamp, w: ReceivedWrite) {
        let ids: Vec<OpId> = w.ops.iter().map(|o| o.op_id.clone()).collect();
        if w.pushed > 0 {
            self.pushed_written(&w.from, w.pushed, &ids);
            self.fetch.add(now, ids, &w.from);
        } else {
            self.fetch.store_failed(now, &ids);
        }
    }

    /// Pushed ops `ids` from `from` (`bytes` of them) are no longer being written.
    fn pushed_written(&mut self, from: &Url, bytes: usize, ids: &[OpId]) {
        if let Some(n) = self.push_writing.get_mut(from) {
            *n = n.saturating_sub(bytes);
            if *n == 0 {
                self.push_writing.remove(from);
            }
        }
        for id in ids {
            self.pushed_writing.remove(id);
        }
    }

    /// Announced ids we lack go to the fetch queue.
    fn on_missing(
        &mut self,
        now: Timestamp,
        from: Url,
        introduced: bool,
        r: Result<Vec<OpId>, StoreError>,
    ) {
        match r {
            Ok(m) => {
                let missing: Vec<OpId> = m
                    .into_iter()
                    .filter(|id| !self.stored_or_storing(id))
                    .collect();
                self.fetch_announced(now, missing, &from, introduced);
            }
            Err(e) => self.store_failed(e),
        }
    }

    /// Runs timers: fetch and publish deadlines, gossip rounds and the model's time, pruning,
    /// re-signing.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        self.grace_woken |= self.leave_finished(now);
        self.fetch.handle_timeout(now);
        self.pool.handle_timeout(now);
        self.members.handle_timeout(now);
        self.expire_gets(now);
        if !self.left {
            if self.next_prune <= now {
                self.next_prune = now.plus(self.cfg.prune_interval);
                self.prune(now);
            }
            if self.info.needs_re_sign(now)
                && let Err(e) = self.re_sign(now)
            {
                // Keep going with the old info; it is retried on the next timer.
                self.emit(SpaceEvent::Error(SpaceError::Sign(e)));
            }
            self.gossip_timers(now);
        }
        self.pump(now);
    }

    // ---------------------------------------------------------------- internals

    fn emit(&mut self, e: SpaceEvent) {
        self.out.push_back(Output::Event(e));
    }

    fn ticket(&mut self) -> u64 {
        let t = self.next_ticket;
        self.next_ticket += 1;
        t
    }

    fn store(&mut self, request: StoreRequest, p: Pending) {
        let ticket = self.ticket();
        self.pending.insert(ticket, p);
        self.out.push_back(Output::Store { ticket, request });
    }

    fn send(&mut self, to: Url, frame: Bytes, kind: SendKind) {
        self.outbox().send(to, frame, kind);
    }

    fn send_gossip(&mut self, to: &Url, msg: &GossipMsg) {
        let f = encode_gossip(&self.cfg.space, msg);
        self.send(to.clone(), f, SendKind::Other);
    }

    /// A locally published op is committed: report it and announce it to the peers of
    /// `peers` ([`publish::reachable_arcs`], one list for the whole write) whose arc holds its
    /// location.
    fn local_stored(
        &mut self,
        now: Timestamp,
        token: PublishToken,
        op_id: OpId,
        peers: &[(Url, DhtArc)],
    ) {
        self.recent.insert(op_id.clone());
        if !self.cfg.introduce_recent_ops.is_zero() {
            if self.published_lately.len() == MAX_INTRODUCED_OPS {
                self.published_lately.pop_front();
            }
            self.published_lately.push_back((now, op_id.clone()));
        }
        self.emit(SpaceEvent::OpStored {
            token,
            op_id: op_id.clone(),
        });
        if !self.left {
            self.announce(now, op_id, peers);
        }
    }

    /// Announces local op `op_id` to the peers of `peers` ([`publish::reachable_arcs`]) whose
    /// arc holds its location.
    fn announce(&mut self, now: Timestamp, op_id: OpId, peers: &[(Url, DhtArc)]) {
        let loc = self.cfg.locator.op_loc(&op_id);
        let known = &self.known;
        let targets = publish::candidates(peers, op_id.as_bytes(), loc, |u| known.holds(u, &op_id));
        match self.pool.start(now, op_id.clone(), targets) {
            // Published twice: the running broadcast announces it.
            Ok(()) | Err(StartError::AlreadyRunning) => {}
            Err(StartError::PoolFull) => {
                self.stats.announce_refused += 1;
                self.emit(SpaceEvent::Error(SpaceError::PublishPoolFull { op_id }));
            }
        }
    }

    /// Announces to `to`, a peer that just joined with storage arc `arc`, the local ops
    /// published within [`SpaceConfig::introduce_recent_ops`] that its arc holds, in
    /// `PublishOps` messages of at most `publish.max_ids_per_message` ids. Best effort, like
    /// any announcement: gossip repairs what is lost.
    fn introduce_recent_ops(&mut self, now: Timestamp, to: &Url, arc: DhtArc) {
        let since = now.add_micros(-micros(self.cfg.introduce_recent_ops));
        while self
            .published_lately
            .front()
            .is_some_and(|(at, _)| *at < since)
        {
            self.published_lately.pop_front();
        }
        let locator = &self.cfg.locator;
        let ids: Vec<OpId> = self
            .published_lately
            .iter()
            .map(|(_, id)| id)
            .filter(|id| arc.contains(locator.op_loc(id)))
            .cloned()
            .collect();
        self.stats.ops_introduced += ids.len() as u64;
        for chunk in ids.chunks(self.cfg.publish.max_ids_per_message.max(1)) {
            let f = encode_introduction(&self.cfg.space, chunk);
            self.send(to.clone(), f, SendKind::Other);
        }
    }

    /// Drops expired agent infos (reporting the live ones as [`SpaceEvent::PeerLeft`]), then
    /// every per-peer entry whose URL no live info carries any more: the peer left, expired
    /// or moved to a new URL (every join and page reload gets one).
    fn prune(&mut self, now: Timestamp) {
        for gone in self.peers.prune(now) {
            if gone.agent != self.agent {
                self.members.forget(now, &gone.agent);
                self.emit(SpaceEvent::PeerLeft {
                    agent: gone.agent.clone(),
                });
            }
        }
        let live = self.peers.live_urls(now);
        // A suspended fetch source whose info is gone will not come back alive.
        for u in self.fetch.suspended_peers() {
            if !live.contains(&u) {
                self.fetch.peer_failed(now, &u);
            }
        }
        self.gossip.retain_peers(|u| live.contains(u));
        self.glue.tried.retain(|u, _| live.contains(u));
        self.glue.joined.retain(|u, _| live.contains(u));
        self.known.retain(|u| live.contains(u));
        self.tally.retain(|u| live.contains(u));
        self.serving.retain(|u, _| live.contains(u));
        self.push_writing.retain(|u, _| live.contains(u));
    }

    fn store_failed(&mut self, error: StoreError) {
        self.stats.store_errors += 1;
        self.emit(SpaceEvent::StoreFailed { error });
    }

    fn re_sign(&mut self, now: Timestamp) -> Result<(), AgentError> {
        if self.left {
            return Ok(());
        }
        // created_at must grow even if the clock stands still.
        let at = Timestamp(now.0.max(self.info.created_at.0.saturating_add(1)));
        let info = AgentInfo::new(
            self.agent.clone(),
            self.cfg.space.clone(),
            at,
            self.url.clone(),
            self.arc,
        );
        self.adopt_info(now, info)?;
        self.pump(now);
        Ok(())
    }

    /// Signs `info`, makes it ours, stores it, spreads it.
    fn adopt_info(&mut self, now: Timestamp, mut info: AgentInfo) -> Result<(), AgentError> {
        if info.created_at <= self.info.created_at {
            let at = Timestamp(self.info.created_at.0.saturating_add(1));
            info.expires_at = at.add_micros(info.expires_at.micros_since(info.created_at));
            info.created_at = at;
        }
        let signed = AgentInfoSigned::sign(&DynSigner(&*self.signer), info)
            .inspect_err(|_| self.stats.sign_failures += 1)?;
        self.info = signed.clone();
        self.peers.insert(now, signed.clone());
        let json = signed.encode().to_owned();
        for to in publish::agent_targets(&self.peers, now, &self.agent) {
            let f = encode_publish_agent(&self.cfg.space, &json);
            self.send(to, f, SendKind::Other);
        }
        self.emit(SpaceEvent::LocalAgentInfo(signed));
        Ok(())
    }

    fn insert_info(&mut self, now: Timestamp, info: AgentInfoSigned) {
        if info.agent == self.agent {
            return;
        }
        let agent = info.agent.clone();
        let url = info.url.clone();
        let arc = info.storage_arc;
        let inserted = self.peers.insert(now, info);
        if matches!(inserted, Insert::Joined | Insert::Updated) {
            self.emit(SpaceEvent::PeerArc {
                agent: agent.clone(),
                arc,
            });
        }
        match inserted {
            Insert::Joined => {
                if let Some(u) = &url {
                    self.glue.joined.entry(u.clone()).or_insert(now);
                }
                // Introduce ourselves at once: the peer may not poll bootstrap for a minute,
                // and until it holds our info it drops our module messages.
                if let Some(to) = url.clone() {
                    let f = encode_publish_agent(&self.cfg.space, self.info.encode());
                    self.send(to.clone(), f, SendKind::Other);
                    if self.members.has_room() {
                        self.members.add_peer(now, &agent);
                    }
                    self.introduce_recent_ops(now, &to, arc);
                }
                self.emit(SpaceEvent::PeerJoined { agent, url })
            }
            // A newer info: whatever made it look dead is over (a reloaded tab).
            Insert::Updated => {
                if let Some(u) = &url {
                    self.clear_unresponsive(now, u);
                }
            }
            Insert::Left => {
                self.members.forget(now, &agent);
                self.emit(SpaceEvent::PeerLeft { agent })
            }
            _ => {}
        }
    }

    fn on_agent_json(&mut self, now: Timestamp, json: &[u8]) {
        match AgentInfoSigned::decode(&DynVerifier(&*self.verifier), json) {
            Ok(i) => self.insert_info(now, i),
            Err(_) => self.stats.bad_agent_infos += 1,
        }
    }

    /// Announced ids to fetch from `from`. Those of an introduction (`introduced`) are
    /// catch-up ([`FetchQueue::add_catch_up`](crate::core::fetch::FetchQueue::add_catch_up)):
    /// ops published before `from` met us, on the way by no publish, so their intake holds
    /// no gossip round off (`INTAKE_QUIET`). A joiner's first round, which finds the rest of
    /// a space larger than one introduction, starts once they are fetched.
    fn fetch_announced(&mut self, now: Timestamp, ids: Vec<OpId>, from: &Url, introduced: bool) {
        if introduced {
            self.fetch.add_catch_up(now, ids, from);
        } else {
            self.fetch.add(now, ids, from);
        }
    }

    /// Ids announced by `from`: a publish, or an introduction (`introduced`).
    fn on_announced(&mut self, now: Timestamp, from: &Url, ids: Vec<OpId>, introduced: bool) {
        self.known.add(from, ids.iter());
        for id in &ids {
            self.glue.announced.insert(id.clone(), now);
        }
        let (pending, ids): (Vec<OpId>, Vec<OpId>) = ids
            .into_iter()
            .filter(|id| self.wants(id))
            .partition(|id| self.fetch.is_pending(id));
        // Already being fetched: one more source, no store lookup needed.
        if !pending.is_empty() {
            self.fetch_announced(now, pending, from, introduced);
        }
        let (missing, ids): (Vec<OpId>, Vec<OpId>) =
            ids.into_iter().partition(|id| self.held.surely_missing(id));
        if !missing.is_empty() {
            self.stats.announced_fetched_unread += missing.len() as u64;
            self.fetch_announced(now, missing, from, introduced);
        }
        if ids.is_empty() {
            return;
        }
        let from = from.clone();
        self.store(
            StoreRequest::FilterMissing(ids),
            Pending::Announced { from, introduced },
        );
    }

    /// Ops `from` pushed with their data ([`SpaceConfig::push_max_bytes`]): an announcement
    /// that carries the ops. Those in our arc are verified and written as fetched ones, up to
    /// [`MAX_PUSH_WRITING_PER_PEER`] bytes being written per peer; the rest, and ops already
    /// being fetched, go the announcement way. Ops outside the arc, stored lately or being
    /// written are dropped; while written, a pushed op offered again (an announcement, a
    /// gossip round) is not fetched. Wrong data (id not the hash of the op) is misbehaviour
    /// and nothing of the frame is kept.
    fn on_pushed(&mut self, now: Timestamp, from: &Url, ops: Vec<(OpId, Bytes)>) {
        self.known.add(from, ops.iter().map(|(id, _)| id));
        let mut writing = self.push_writing.get(from).copied().unwrap_or(0);
        let (mut take, mut defer) = (Vec::new(), Vec::new());
        for (id, data) in ops {
            self.glue.announced.insert(id.clone(), now);
            if !self.wants(&id) {
                self.stats.pushed_dropped += 1;
            } else if self.fetch.is_pending(&id) || writing + data.len() > MAX_PUSH_WRITING_PER_PEER
            {
                defer.push(id);
            } else {
                match crate::model::op::verify_op(&id, &data) {
                    Ok(op) => {
                        writing += data.len();
                        take.push(VerifiedOp {
                            op_id: id,
                            data,
                            op,
                        });
                    }
                    Err(e) => {
                        let reason = format!("pushed wrong data for op {id}: {e}");
                        return self.misbehaved(now, from, reason);
                    }
                }
            }
        }
        if !defer.is_empty() {
            self.stats.pushed_deferred += defer.len() as u64;
            self.on_announced(now, from, defer, false);
        }
        if take.is_empty() {
            return;
        }
        self.stats.pushed_taken += take.len() as u64;
        self.pushed_writing
            .extend(take.iter().map(|o| o.op_id.clone()));
        let bytes: usize = take.iter().map(|o| o.data.len()).sum();
        *self.push_writing.entry(from.clone()).or_default() += bytes;
        self.write_received(take, from, bytes);
    }

    /// Hands verified ops from `from` to the store (`pushed`: bytes of pushed data, 0 for
    /// fetched ops); [`Space::on_fetched_written`] takes the result.
    fn write_received(&mut self, ops: Vec<VerifiedOp>, from: &Url, pushed: usize) {
        let w = ReceivedWrite {
            ops,
            from: from.clone(),
            pushed,
        };
        if self.received_writing < MAX_RECEIVED_WRITES_IN_FLIGHT {
            self.issue_received_writes(vec![w]);
        } else {
            self.held_writes.push_back(w);
        }
    }

    /// A received write was answered: the held ones go to the store, oldest first, as one
    /// write of up to [`MAX_MERGED_WRITE_OPS`] ops (one IndexedDB transaction instead of
    /// one per fetch response).
    fn received_written(&mut self) {
        self.received_writing = self.received_writing.saturating_sub(1);
        let mut next = Vec::new();
        let mut ops = 0;
        while let Some(w) = self.held_writes.front() {
            if !next.is_empty() && ops + w.ops.len() > MAX_MERGED_WRITE_OPS {
                break;
            }
            ops += w.ops.len();
            next.extend(self.held_writes.pop_front());
        }
        if !next.is_empty() {
            self.issue_received_writes(next);
        }
    }

    /// One store write of `ws`'s ops, not deduplicated: a repeat rarely gets here (a pushed
    /// op is dropped while it is written and goes the announcement way while it is being
    /// fetched), stores keep repeats once
    /// (`store_conformance::duplicates_are_stored_once_and_returned_once`), and
    /// [`Space::on_fetched_written`] reports each new op once.
    fn issue_received_writes(&mut self, ws: Vec<ReceivedWrite>) {
        let metas = ws
            .iter()
            .flat_map(|w| &w.ops)
            .map(|o| MetaOp {
                op_id: o.op_id.clone(),
                op_data: o.data.clone(),
            })
            .collect();
        self.received_writing += 1;
        self.store(StoreRequest::Write(metas), Pending::FetchedWrite(ws));
    }

    /// Whether `id` was stored lately or is a pushed op being written: not to be fetched.
    fn stored_or_storing(&self, id: &OpId) -> bool {
        self.recent.contains(id) || self.pushed_writing.contains(id)
    }

    /// Whether an op `id` a peer offers (announced, pushed, or found by gossip) is for us:
    /// its location is in our arc, and it is not [stored or being
    /// stored](Self::stored_or_storing).
    fn wants(&self, id: &OpId) -> bool {
        self.arc.contains(self.cfg.locator.op_loc(id)) && !self.stored_or_storing(id)
    }

    /// The frame telling `peer`'s batch of fresh local ops: the ops themselves when each is
    /// in [`OpCache`] and their entries fit [`SpaceConfig::push_max_bytes`] (and one response
    /// frame), else their ids (`PublishOps`, Kitsune2's announcement).
    fn publish_frame(&mut self, op_ids: &[OpId]) -> Bytes {
        let frame_room =
            crate::core::fetch::response_budget(&self.cfg.space, self.cfg.max_response_frame_bytes);
        let room = self.cfg.push_max_bytes.min(frame_room);
        let mut ops = Vec::with_capacity(op_ids.len());
        let mut size = 0;
        for id in op_ids {
            let Some(data) = self.op_cache.get(id) else {
                break;
            };
            size += crate::core::fetch::response_entry_len(id, data);
            if size > room {
                break;
            }
            ops.push((id.clone(), data.clone()));
        }
        if ops.len() < op_ids.len() || op_ids.is_empty() {
            return encode_publish_ops(&self.cfg.space, op_ids);
        }
        self.stats.ops_pushed += ops.len() as u64;
        crate::wire::encode_fetch_response(&self.cfg.space, &ops)
    }

    /// A `FetchResponse`: ops we asked `from` for are stored (wrong data is misbehaviour);
    /// ops we did not ask anyone for are a push ([`Space::on_pushed`]), unless the frame
    /// already carried wrong data.
    fn on_fetch_response(&mut self, now: Timestamp, from: &Url, ops: Vec<(OpId, Bytes)>) {
        let ops = self.answer_gets(now, from, ops);
        let r = self.fetch.receive(now, from, ops);
        if !r.valid.is_empty() {
            self.write_received(r.valid, from, 0);
        }
        if let Some((id, e)) = r.invalid.first() {
            let reason = format!("sent wrong data for op {id}: {e}");
            self.misbehaved(now, from, reason);
        } else if !r.unrequested.is_empty() {
            self.on_pushed(now, from, r.unrequested);
        }
    }

    /// Moves membership outputs: packets to send (to the member's URL from the peer
    /// store), malformed packets' senders and liveness changes applied and reported.
    fn pump_members(&mut self, now: Timestamp) -> bool {
        let mut progressed = self.membership_part().send_packets(now);
        for (peer, reason) in std::mem::take(&mut self.misbehaving) {
            progressed = true;
            self.misbehaved(now, &peer, reason);
        }
        while let Some(e) = self.members.poll_event() {
            progressed = true;
            self.on_member_event(now, e);
        }
        progressed
    }

    /// THE liveness rule: down or left marks the peer unresponsive (fetches move to other
    /// sources, publish and gossip skip it, a round open with it ends, its connection
    /// closes); alive clears it, and a
    /// peer back from down gets a gossip round at once (it missed announcements). A down
    /// peer's fetch source is suspended, a left one's failed (issue 11: "Down ... moves its
    /// pending fetches to other sources; alive again clears it").
    fn on_member_event(&mut self, now: Timestamp, e: MemberEvent) {
        let agent = e.agent().clone();
        let url = self.peers.get(now, &agent).and_then(|i| i.url.clone());
        match &e {
            MemberEvent::Down(_) | MemberEvent::Left(_) => {
                if let Some(peer) = &url {
                    let left = matches!(e, MemberEvent::Left(_));
                    self.mark_unresponsive(now, peer, left);
                }
            }
            MemberEvent::Alive(_) => {
                if let Some(peer) = &url {
                    let was_down = self.peers.is_unresponsive(now, peer);
                    self.clear_unresponsive(now, peer);
                    if was_down {
                        self.gossip_after_heal(now, peer.clone());
                    }
                }
            }
            MemberEvent::Suspect(_) => {}
        }
        self.emit(match e {
            MemberEvent::Alive(_) => SpaceEvent::MemberAlive { agent, url },
            MemberEvent::Suspect(_) => SpaceEvent::MemberSuspect { agent, url },
            MemberEvent::Down(_) => SpaceEvent::MemberDown { agent, url },
            MemberEvent::Left(_) => SpaceEvent::MemberLeft { agent, url },
        });
    }

    /// Clears `peer`'s unresponsive mark (alive again, or a newer info): it is a fetch source
    /// again, asked first for the ops parked on it.
    fn clear_unresponsive(&mut self, now: Timestamp, peer: &Url) {
        self.peers.clear_unresponsive(peer);
        self.fetch.peer_resumed(now, peer);
    }

    /// Marks `peer` unresponsive until alive or a newer info. Its fetch source is suspended
    /// (a down is often false under load), or failed if it `left`.
    fn mark_unresponsive(&mut self, now: Timestamp, peer: &Url, left: bool) {
        if !self.peers.is_unresponsive(now, peer) {
            self.stats.unresponsive_marks += 1;
        }
        // Until membership says alive or a newer info arrives; pruned with the info.
        self.peers
            .set_unresponsive(peer.clone(), Timestamp(i64::MAX));
        if left {
            self.fetch.peer_failed(now, peer);
        } else {
            self.fetch.peer_suspended(now, peer);
        }
        self.pool.peer_failed(now, peer);
        self.gossip.end_round_with(peer);
        self.out.push_back(Output::Close {
            peer: peer.clone(),
            reason: "membership: down".into(),
        });
    }

    fn misbehaved(&mut self, now: Timestamp, peer: &Url, reason: String) {
        self.stats.misbehaved += 1;
        let agents = self.peers.agents_at(now, peer);
        for a in agents {
            self.peers.block(a);
        }
        self.fetch.peer_failed(now, peer);
        self.pool.peer_failed(now, peer);
        self.known.forget(peer);
        self.emit(SpaceEvent::PeerMisbehaved {
            peer: peer.clone(),
            reason: reason.clone(),
        });
        self.out.push_back(Output::Close {
            peer: peer.clone(),
            reason,
        });
    }

    /// Moves sub-machine outputs to ours until all are drained.
    fn pump(&mut self, now: Timestamp) {
        loop {
            let mut progressed = false;
            while let Some(o) = self.fetch.poll_output() {
                progressed = true;
                match o {
                    FetchOutput::Request { id, peer, op_ids } => {
                        let f = encode_fetch_request(&self.cfg.space, &op_ids);
                        self.send(peer, f, SendKind::FetchRequest(id));
                    }
                    // Its requests moved to other sources; liveness is membership's call.
                    FetchOutput::Timeout { .. } => {}
                    FetchOutput::Failed {
                        op_id,
                        attempts,
                        reason,
                    } => {
                        // Gossip finds the op again in a later round.
                        self.emit(SpaceEvent::FetchFailed {
                            op_id,
                            attempts,
                            reason,
                        });
                    }
                }
            }
            progressed |= self.pump_gossip(now);
            while let Some(o) = self.pool.poll_output() {
                progressed = true;
                match o {
                    PublishOutput::SendOps {
                        batch,
                        peer,
                        op_ids,
                    } => {
                        let f = self.publish_frame(&op_ids);
                        self.send(peer, f, SendKind::Publish(batch));
                    }
                    PublishOutput::Timeout { .. } => {}
                    PublishOutput::Finished {
                        op_id,
                        reached,
                        failed,
                    } => {
                        self.tally.record(&reached, &failed);
                        // An announcement that reached a peer is not proof it holds the op: if
                        // its fetch gives up, gossip must still offer the op to it.
                        self.emit(SpaceEvent::Published {
                            op_id,
                            reached,
                            failed,
                        })
                    }
                }
            }
            progressed |= self.pump_members(now);
            if !progressed {
                break;
            }
        }
        self.report_sync(now);
    }

    /// Emits the sync progress report due now, if any ([`sync`]).
    fn report_sync(&mut self, now: Timestamp) {
        let failed = self.fetch.stats().failed;
        if let Some(p) = self.sync.update(now, self.fetch.len(), failed) {
            self.emit(SpaceEvent::Sync(p));
        }
    }
}

/// `&dyn Signer` as a sized [`Signer`] (the agent API takes `&impl Signer`).
struct DynSigner<'a>(&'a dyn Signer);

impl Signer for DynSigner<'_> {
    fn sign(&self, info: &AgentInfo, message: &[u8]) -> Result<Bytes, AgentError> {
        self.0.sign(info, message)
    }
}

/// `&dyn Verifier` as a sized [`Verifier`].
struct DynVerifier<'a>(&'a dyn Verifier);

impl Verifier for DynVerifier<'_> {
    fn verify(&self, info: &AgentInfo, message: &[u8], signature: &[u8]) -> Result<(), AgentError> {
        self.0.verify(info, message, signature)
    }
}

/// Encodes the DISCONNECT frame for an [`Output::Close`] reason.
pub fn close_frame(reason: &str) -> Bytes {
    encode_disconnect(reason)
}

#[cfg(test)]
mod api_tests;
#[cfg(test)]
mod state_tests;
#[cfg(test)]
mod tests;
