//! k2gossip messages (`kitsune2.gossip`, Kitsune2 `crates/gossip/proto/gossip.proto`) as prost
//! derives, all twelve round messages, plus [`GossipMsg`], the typed form of a decoded
//! [`K2GossipMessage`].
//!
//! Inside: agent ids and op ids are raw id bytes; `provided_agents` are UTF-8 `AgentInfoSigned`
//! JSON; timestamps (`new_since`, `disc_boundary`, …) are i64 µs. Maps are flattened into
//! parallel arrays (e.g. `sector_indices` / `hashes`); checking that their lengths match is the
//! gossip layer's job, as in Kitsune2 (`crates/gossip/src/protocol.rs`).

use bytes::Bytes;
use prost::Message;

use super::WireError;

/// The "k2gossip" module's message: a type and an encoded inner message.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipMessage {
    /// A [`GossipMessageType`] value; says what `data` decodes as.
    #[prost(enumeration = "GossipMessageType", tag = "1")]
    pub msg_type: i32,
    /// The encoded inner `K2Gossip*Message`.
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

/// `K2GossipMessage.GossipMessageType`: one value per `K2Gossip*Message`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum GossipMessageType {
    /// Default value; a protocol error if received.
    Unspecified = 0,
    /// [`K2GossipInitiateMessage`].
    Initiate = 1,
    /// [`K2GossipAcceptMessage`].
    Accept = 2,
    /// [`K2GossipNoDiffMessage`].
    NoDiff = 3,
    /// [`K2GossipDiscSectorsDiffMessage`].
    DiscSectorsDiff = 4,
    /// [`K2GossipDiscSectorDetailsDiffMessage`].
    DiscSectorDetailsDiff = 5,
    /// [`K2GossipDiscSectorDetailsDiffResponseMessage`].
    DiscSectorDetailsDiffResponse = 6,
    /// [`K2GossipRingSectorDetailsDiffMessage`].
    RingSectorDetailsDiff = 7,
    /// [`K2GossipRingSectorDetailsDiffResponseMessage`].
    RingSectorDetailsDiffResponse = 8,
    /// [`K2GossipHashesMessage`].
    Hashes = 9,
    /// [`K2GossipAgentsMessage`].
    Agents = 10,
    /// [`K2GossipBusyMessage`].
    Busy = 11,
    /// [`K2GossipTerminateMessage`].
    Terminate = 12,
}

/// A set of DHT sectors: 16 `u32` words forming a bitset over 512 sectors (sector `s` is bit
/// `s % 32` of word `s / 32`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct ArcSetMessage {
    /// The bitset words (packed).
    #[prost(uint32, repeated, tag = "1")]
    pub value: Vec<u32>,
}

/// Fields every reply to an accept carries: the initiator's answers to the acceptor's
/// `missing_agents` and `new_since`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AcceptResponseMessage {
    /// Agent ids from the acceptor's `participating_agents` that we lack.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub missing_agents: Vec<Bytes>,
    /// Agent info JSON for the ids the acceptor said it was missing.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub provided_agents: Vec<Bytes>,
    /// Ids of ops we stored since the acceptor's `new_since`.
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub new_ops: Vec<Bytes>,
    /// The acceptor's next `new_since` bookmark with us (µs).
    #[prost(int64, tag = "4")]
    pub updated_new_since: i64,
}

/// Opens a gossip round. Answered by [`K2GossipAcceptMessage`] or [`K2GossipBusyMessage`].
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipInitiateMessage {
    /// Random id of this round.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Agent ids of the initiator's local agents in this space.
    #[prost(bytes = "bytes", repeated, tag = "10")]
    pub participating_agents: Vec<Bytes>,
    /// Union of those agents' storage arcs as sectors.
    #[prost(message, optional, tag = "11")]
    pub arc_set: Option<ArcSetMessage>,
    /// Random per round; resolves simultaneous initiates between two peers.
    #[prost(uint32, tag = "12")]
    pub tie_breaker: u32,
    /// "Send me op ids you stored since" this µs timestamp.
    #[prost(int64, tag = "20")]
    pub new_since: i64,
    /// Hint: how many bytes of op data the ids sent back should amount to.
    #[prost(uint32, tag = "21")]
    pub max_op_data_bytes: u32,
    /// How many ops the initiator holds (0.4+).
    #[prost(uint64, optional, tag = "22")]
    pub dht_op_count: Option<u64>,
    /// fennec extension, not in Kitsune2 (which skips the unknown field): the sender speaks
    /// set reconciliation (`core::gossip::reconcile`) and wants it this round.
    #[prost(bool, tag = "1000")]
    pub fennec_reconcile: bool,
}

/// `DhtSnapshot::Minimal`: the acceptor's top-level DHT summary.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SnapshotMinimalMessage {
    /// End of the historical ("disc") part, µs.
    #[prost(int64, tag = "1")]
    pub disc_boundary: i64,
    /// Combined hash of the whole disc.
    #[prost(bytes = "bytes", tag = "2")]
    pub disc_top_hash: Bytes,
    /// Combined hash of each recent ring.
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub ring_top_hashes: Vec<Bytes>,
}

/// Accepts a round. Answered by no-diff, disc-sectors-diff or ring-sector-details-diff.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipAcceptMessage {
    /// The initiator's session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Agent ids of the acceptor's local agents in this space.
    #[prost(bytes = "bytes", repeated, tag = "10")]
    pub participating_agents: Vec<Bytes>,
    /// Union of those agents' storage arcs as sectors.
    #[prost(message, optional, tag = "11")]
    pub arc_set: Option<ArcSetMessage>,
    /// Agent ids from the initiator's list that the acceptor lacks.
    #[prost(bytes = "bytes", repeated, tag = "12")]
    pub missing_agents: Vec<Bytes>,
    /// "Send me op ids you stored since" this µs timestamp.
    #[prost(int64, tag = "20")]
    pub new_since: i64,
    /// Hint: op data bytes the ids sent back should amount to.
    #[prost(uint32, tag = "21")]
    pub max_op_data_bytes: u32,
    /// Ids of ops stored since the initiator's `new_since`.
    #[prost(bytes = "bytes", repeated, tag = "22")]
    pub new_ops: Vec<Bytes>,
    /// The initiator's next `new_since` bookmark with us (µs).
    #[prost(int64, tag = "23")]
    pub updated_new_since: i64,
    /// How many ops the acceptor holds (0.4+).
    #[prost(uint64, optional, tag = "24")]
    pub dht_op_count: Option<u64>,
    /// The acceptor's DHT summary.
    #[prost(message, optional, tag = "30")]
    pub snapshot: Option<SnapshotMinimalMessage>,
    /// fennec extension, not in Kitsune2 (which skips the unknown field): the sender speaks
    /// set reconciliation (`core::gossip::reconcile`) and wants it this round.
    #[prost(bool, tag = "1000")]
    pub fennec_reconcile: bool,
}

/// The initiator found no difference (or could not compare). Answered by agents, if needed.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipNoDiffMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Answers to the accept.
    #[prost(message, optional, tag = "2")]
    pub accept_response: Option<AcceptResponseMessage>,
    /// Set when the snapshots could not be compared.
    #[prost(bool, tag = "10")]
    pub cannot_compare: bool,
}

/// `DhtSnapshot::DiscSectors`: per-sector hashes of the disc.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SnapshotDiscSectorsMessage {
    /// End of the disc, µs.
    #[prost(int64, tag = "1")]
    pub disc_boundary: i64,
    /// Sector indices (parallel to `disc_sector_hashes`).
    #[prost(uint32, repeated, tag = "2")]
    pub disc_sectors: Vec<u32>,
    /// Combined hash per sector.
    #[prost(bytes = "bytes", repeated, tag = "3")]
    pub disc_sector_hashes: Vec<Bytes>,
}

/// The disc differs: here are the initiator's per-sector hashes.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipDiscSectorsDiffMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Answers to the accept.
    #[prost(message, optional, tag = "2")]
    pub accept_response: Option<AcceptResponseMessage>,
    /// The initiator's disc sectors.
    #[prost(message, optional, tag = "10")]
    pub snapshot: Option<SnapshotDiscSectorsMessage>,
    /// fennec extension, sent only when both sides set `fennec_reconcile` (Kitsune2 skips the
    /// unknown field): a slice of a reconciliation sketch or a request for more.
    #[prost(message, optional, tag = "1000")]
    pub fennec_reconcile: Option<FennecReconcileMessage>,
}

/// Slice hashes of one disc sector.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct DiscSliceHashes {
    /// Time-slice indices (parallel to `hashes`).
    #[prost(uint64, repeated, tag = "1")]
    pub slice_indices: Vec<u64>,
    /// Combined hash per slice.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub hashes: Vec<Bytes>,
}

/// `DhtSnapshot::DiscSectorDetails`: slice hashes of the differing disc sectors.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SnapshotDiscSectorDetailsMessage {
    /// End of the disc, µs.
    #[prost(int64, tag = "1")]
    pub disc_boundary: i64,
    /// Sector indices (parallel to `disc_slice_hashes`).
    #[prost(uint32, repeated, tag = "2")]
    pub sector_indices: Vec<u32>,
    /// Slice hashes per sector.
    #[prost(message, repeated, tag = "3")]
    pub disc_slice_hashes: Vec<DiscSliceHashes>,
}

/// Disc sector details from the acceptor.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipDiscSectorDetailsDiffMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Agent info JSON for the initiator's `missing_agents`.
    #[prost(bytes = "bytes", repeated, tag = "10")]
    pub provided_agents: Vec<Bytes>,
    /// The acceptor's sector details.
    #[prost(message, optional, tag = "20")]
    pub snapshot: Option<SnapshotDiscSectorDetailsMessage>,
    /// fennec extension, sent only when both sides set `fennec_reconcile` (Kitsune2 skips the
    /// unknown field): a slice of a reconciliation sketch or a request for more.
    #[prost(message, optional, tag = "1000")]
    pub fennec_reconcile: Option<FennecReconcileMessage>,
}

/// The initiator's disc sector details and the op ids it lacks.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipDiscSectorDetailsDiffResponseMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Op ids the sender lacks.
    #[prost(bytes = "bytes", repeated, tag = "10")]
    pub missing_ids: Vec<Bytes>,
    /// The sender's sector details.
    #[prost(message, optional, tag = "20")]
    pub snapshot: Option<SnapshotDiscSectorDetailsMessage>,
    /// fennec extension, sent only when both sides set `fennec_reconcile` (Kitsune2 skips the
    /// unknown field): a slice of a reconciliation sketch or a request for more.
    #[prost(message, optional, tag = "1000")]
    pub fennec_reconcile: Option<FennecReconcileMessage>,
}

/// Hashes of one ring's sectors.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RingSectorHashes {
    /// Sector indices (parallel to `hashes`).
    #[prost(uint32, repeated, tag = "1")]
    pub sector_indices: Vec<u32>,
    /// Combined hash per sector.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub hashes: Vec<Bytes>,
}

/// `DhtSnapshot::RingSectorDetails`: sector hashes of the differing rings.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct SnapshotRingSectorDetailsMessage {
    /// End of the disc, µs.
    #[prost(int64, tag = "1")]
    pub disc_boundary: i64,
    /// Ring indices (parallel to `ring_sector_hashes`).
    #[prost(uint32, repeated, tag = "2")]
    pub ring_indices: Vec<u32>,
    /// Sector hashes per ring.
    #[prost(message, repeated, tag = "3")]
    pub ring_sector_hashes: Vec<RingSectorHashes>,
}

/// The rings differ: here are the initiator's ring sector details.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipRingSectorDetailsDiffMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Answers to the accept (tag 10 here, unlike the other diffs).
    #[prost(message, optional, tag = "10")]
    pub accept_response: Option<AcceptResponseMessage>,
    /// The initiator's ring details.
    #[prost(message, optional, tag = "20")]
    pub snapshot: Option<SnapshotRingSectorDetailsMessage>,
}

/// The acceptor's ring sector details and the op ids it lacks.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipRingSectorDetailsDiffResponseMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Op ids the sender lacks.
    #[prost(bytes = "bytes", repeated, tag = "10")]
    pub missing_ids: Vec<Bytes>,
    /// The sender's ring details.
    #[prost(message, optional, tag = "20")]
    pub snapshot: Option<SnapshotRingSectorDetailsMessage>,
}

/// Final message of a diff: the op ids the sender lacks.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipHashesMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Op ids the sender lacks.
    #[prost(bytes = "bytes", repeated, tag = "10")]
    pub missing_ids: Vec<Bytes>,
}

/// Final message: agent infos the other side said it was missing.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipAgentsMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Agent info JSON.
    #[prost(bytes = "bytes", repeated, tag = "10")]
    pub provided_agents: Vec<Bytes>,
}

/// Reply to an initiate: "busy, try later" (saves the initiator a timeout).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipBusyMessage {
    /// The initiator's session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
}

/// Ends a round early, with a reason.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2GossipTerminateMessage {
    /// The session id.
    #[prost(bytes = "bytes", tag = "1")]
    pub session_id: Bytes,
    /// Human-readable reason.
    #[prost(string, tag = "2")]
    pub reason: String,
}

/// fennec's set-reconciliation step (not in Kitsune2): symbols of a rateless sketch of the
/// sender's op ids in the common arc (`core::gossip::reconcile`), or the receiver's request for
/// more; or, when that is cheaper than the sketch, the sender's whole id list
/// (`whole_list`). Rides in field 1000 of `DiscSectorsDiff` (first symbols), `DiscSectorDetailsDiff`
/// (request) and `DiscSectorDetailsDiffResponse` (more symbols).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct FennecReconcileMessage {
    /// Stream index of the first symbol in `symbols`.
    #[prost(uint32, tag = "1")]
    pub from: u32,
    /// Encoded symbols (`reconcile::encode_symbols`); empty in a request.
    #[prost(bytes = "bytes", tag = "2")]
    pub symbols: Bytes,
    /// In a request: send symbols up to this stream index (excluded). 0 otherwise.
    #[prost(uint32, tag = "3")]
    pub want: u32,
    /// With `whole_list`: every op id of the sender in the common arc, 32 bytes each,
    /// concatenated. Empty otherwise.
    #[prost(bytes = "bytes", tag = "4")]
    pub ids: Bytes,
    /// In a batch: `ids` is the sender's whole list (no symbols). In a request: send the
    /// whole list instead of more symbols; a request with `ids` (or `gives_list`) gives the
    /// requester's own whole list instead (the initiator's is too long), and the initiator
    /// ends the round with `Hashes`.
    #[prost(bool, tag = "5")]
    pub whole_list: bool,
    /// In a request with `whole_list`: `ids` is the requester's whole list even when empty
    /// (an acceptor holding nothing of the common arc), not a request for the initiator's.
    /// A peer without this field reads an empty given list as that request, whose answer
    /// (a list over `max_ids`) ends the round, as before the field.
    #[prost(bool, tag = "6")]
    pub gives_list: bool,
}

/// A decoded k2gossip message: one variant per [`GossipMessageType`] except `Unspecified`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GossipMsg {
    /// See [`K2GossipInitiateMessage`].
    Initiate(K2GossipInitiateMessage),
    /// See [`K2GossipAcceptMessage`].
    Accept(K2GossipAcceptMessage),
    /// See [`K2GossipNoDiffMessage`].
    NoDiff(K2GossipNoDiffMessage),
    /// See [`K2GossipDiscSectorsDiffMessage`].
    DiscSectorsDiff(K2GossipDiscSectorsDiffMessage),
    /// See [`K2GossipDiscSectorDetailsDiffMessage`].
    DiscSectorDetailsDiff(K2GossipDiscSectorDetailsDiffMessage),
    /// See [`K2GossipDiscSectorDetailsDiffResponseMessage`].
    DiscSectorDetailsDiffResponse(K2GossipDiscSectorDetailsDiffResponseMessage),
    /// See [`K2GossipRingSectorDetailsDiffMessage`].
    RingSectorDetailsDiff(K2GossipRingSectorDetailsDiffMessage),
    /// See [`K2GossipRingSectorDetailsDiffResponseMessage`].
    RingSectorDetailsDiffResponse(K2GossipRingSectorDetailsDiffResponseMessage),
    /// See [`K2GossipHashesMessage`].
    Hashes(K2GossipHashesMessage),
    /// See [`K2GossipAgentsMessage`].
    Agents(K2GossipAgentsMessage),
    /// See [`K2GossipBusyMessage`].
    Busy(K2GossipBusyMessage),
    /// See [`K2GossipTerminateMessage`].
    Terminate(K2GossipTerminateMessage),
}

impl GossipMsg {
    /// The type tag this variant travels under.
    pub fn msg_type(&self) -> GossipMessageType {
        use GossipMessageType as T;
        match self {
            GossipMsg::Initiate(_) => T::Initiate,
            GossipMsg::Accept(_) => T::Accept,
            GossipMsg::NoDiff(_) => T::NoDiff,
            GossipMsg::DiscSectorsDiff(_) => T::DiscSectorsDiff,
            GossipMsg::DiscSectorDetailsDiff(_) => T::DiscSectorDetailsDiff,
            GossipMsg::DiscSectorDetailsDiffResponse(_) => T::DiscSectorDetailsDiffResponse,
            GossipMsg::RingSectorDetailsDiff(_) => T::RingSectorDetailsDiff,
            GossipMsg::RingSectorDetailsDiffResponse(_) => T::RingSectorDetailsDiffResponse,
            GossipMsg::Hashes(_) => T::Hashes,
            GossipMsg::Agents(_) => T::Agents,
            GossipMsg::Busy(_) => T::Busy,
            GossipMsg::Terminate(_) => T::Terminate,
        }
    }

    /// The session id every gossip message carries.
    pub fn session_id(&self) -> &Bytes {
        match self {
            GossipMsg::Initiate(m) => &m.session_id,
            GossipMsg::Accept(m) => &m.session_id,
            GossipMsg::NoDiff(m) => &m.session_id,
            GossipMsg::DiscSectorsDiff(m) => &m.session_id,
            GossipMsg::DiscSectorDetailsDiff(m) => &m.session_id,
            GossipMsg::DiscSectorDetailsDiffResponse(m) => &m.session_id,
            GossipMsg::RingSectorDetailsDiff(m) => &m.session_id,
            GossipMsg::RingSectorDetailsDiffResponse(m) => &m.session_id,
            GossipMsg::Hashes(m) => &m.session_id,
            GossipMsg::Agents(m) => &m.session_id,
            GossipMsg::Busy(m) => &m.session_id,
            GossipMsg::Terminate(m) => &m.session_id,
        }
    }

    /// Encodes as a [`K2GossipMessage`] (the `data` of a "k2gossip" MODULE frame).
    pub fn encode(&self) -> Bytes {
        let data = match self {
            GossipMsg::Initiate(m) => m.encode_to_vec(),
            GossipMsg::Accept(m) => m.encode_to_vec(),
            GossipMsg::NoDiff(m) => m.encode_to_vec(),
            GossipMsg::DiscSectorsDiff(m) => m.encode_to_vec(),
            GossipMsg::DiscSectorDetailsDiff(m) => m.encode_to_vec(),
            GossipMsg::DiscSectorDetailsDiffResponse(m) => m.encode_to_vec(),
            GossipMsg::RingSectorDetailsDiff(m) => m.encode_to_vec(),
            GossipMsg::RingSectorDetailsDiffResponse(m) => m.encode_to_vec(),
            GossipMsg::Hashes(m) => m.encode_to_vec(),
            GossipMsg::Agents(m) => m.encode_to_vec(),
            GossipMsg::Busy(m) => m.encode_to_vec(),
            GossipMsg::Terminate(m) => m.encode_to_vec(),
        };
        K2GossipMessage {
            msg_type: self.msg_type() as i32,
            data: data.into(),
        }
        .encode_to_vec()
        .into()
    }

    /// Decodes a [`K2GossipMessage`] and its inner message.
    ///
    /// # Errors
    /// [`WireError::Decode`] for malformed bytes; [`WireError::UnknownMessageType`] for
    /// `UNSPECIFIED` or a type this version does not know (Kitsune2 errors too, which closes the
    /// connection: `crates/gossip/src/protocol.rs`).
    pub fn decode(data: Bytes) -> Result<GossipMsg, WireError> {
        use GossipMessageType as T;
        let outer = K2GossipMessage::decode(data).map_err(WireError::decode("K2GossipMessage"))?;
        let d = outer.data;
        let ty = T::try_from(outer.msg_type).unwrap_or(T::Unspecified);
        Ok(match ty {
            T::Initiate => GossipMsg::Initiate(dec(d, "K2GossipInitiateMessage")?),
            T::Accept => GossipMsg::Accept(dec(d, "K2GossipAcceptMessage")?),
            T::NoDiff => GossipMsg::NoDiff(dec(d, "K2GossipNoDiffMessage")?),
            T::DiscSectorsDiff => {
                GossipMsg::DiscSectorsDiff(dec(d, "K2GossipDiscSectorsDiffMessage")?)
            }
            T::DiscSectorDetailsDiff => {
                GossipMsg::DiscSectorDetailsDiff(dec(d, "K2GossipDiscSectorDetailsDiffMessage")?)
            }
            T::DiscSectorDetailsDiffResponse => GossipMsg::DiscSectorDetailsDiffResponse(dec(
                d,
                "K2GossipDiscSectorDetailsDiffResponseMessage",
            )?),
            T::RingSectorDetailsDiff => {
                GossipMsg::RingSectorDetailsDiff(dec(d, "K2GossipRingSectorDetailsDiffMessage")?)
            }
            T::RingSectorDetailsDiffResponse => GossipMsg::RingSectorDetailsDiffResponse(dec(
                d,
                "K2GossipRingSectorDetailsDiffResponseMessage",
            )?),
            T::Hashes => GossipMsg::Hashes(dec(d, "K2GossipHashesMessage")?),
            T::Agents => GossipMsg::Agents(dec(d, "K2GossipAgentsMessage")?),
            T::Busy => GossipMsg::Busy(dec(d, "K2GossipBusyMessage")?),
            T::Terminate => GossipMsg::Terminate(dec(d, "K2GossipTerminateMessage")?),
            T::Unspecified => {
                return Err(WireError::UnknownMessageType {
                    module: super::MODULE_GOSSIP,
                    ty: outer.msg_type,
                });
            }
        })
    }
}

fn dec<M: Message + Default>(data: Bytes, what: &'static str) -> Result<M, WireError> {
    M::decode(data).map_err(WireError::decode(what))
}
