//! Kitsune2 0.5 protobuf messages for the envelope, fetch, publish and op store, written as
//! prost derives. Field numbers and types follow `crates/api/proto/{wire,fetch,publish,
//! op_store}.proto` exactly; the byte-level fixtures in `wire::tests` pin them. Enum-typed
//! fields are `i32` as prost stores them (unknown values survive decoding; the typed layer in
//! [`crate::wire`] decides what they mean).

use bytes::Bytes;

/// The envelope of every message between peers (`kitsune2.wire.K2Proto`, `wire.proto`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2Proto {
    /// A [`K2WireType`] value.
    #[prost(enumeration = "K2WireType", tag = "1")]
    pub ty: i32,
    /// The payload: preflight bytes, a module message, a notify, or a UTF-8 disconnect reason.
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
    /// The space (raw id bytes). Required for NOTIFY and MODULE.
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub space_id: Option<Bytes>,
    /// The module routing key. Required for MODULE: `"Fetch"`, `"Publish"` or `"k2gossip"`.
    #[prost(string, optional, tag = "4")]
    pub module_id: Option<String>,
}

/// What a [`K2Proto`] carries (`K2Proto.K2WireType`, `wire.proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum K2WireType {
    /// Reserved for future types; receivers ignore it (but may rate-limit it).
    Unspecified = 0,
    /// Host preflight data, exchanged once when a connection opens.
    Preflight = 1,
    /// A fire-and-forget message to a space's host handler. Needs `space_id`.
    Notify = 2,
    /// A module message. Needs `space_id` and `module_id`.
    Module = 3,
    /// The sender is closing the connection; `data` is a UTF-8 reason.
    Disconnect = 15,
}

/// An op on the wire: id and data (`kitsune2.op_store.Op`, `op_store.proto`, 0.5+; 0.4 had
/// only `data = 1`). Named `WireOp` so it does not clash with [`crate::model::op::Op`].
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct WireOp {
    /// The op id bytes.
    #[prost(bytes = "bytes", tag = "1")]
    pub op_id: Bytes,
    /// The encoded op (for fennec: [`crate::model::op::Op::encode`]).
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

/// Asks a peer for ops by id (`kitsune2.fetch.FetchRequest`, `fetch.proto`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct FetchRequest {
    /// The op ids wanted.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub op_ids: Vec<Bytes>,
}

/// Ops sent back for a [`FetchRequest`] (`kitsune2.fetch.FetchResponse`, `fetch.proto`).
/// Kitsune2 sends only the ops it has, and nothing at all if it has none.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct FetchResponse {
    /// The ops found.
    #[prost(message, repeated, tag = "1")]
    pub ops: Vec<WireOp>,
}

/// The "Fetch" module's message (`kitsune2.fetch.K2FetchMessage`, `fetch.proto`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2FetchMessage {
    /// A [`FetchMessageType`] value; says what `data` decodes as.
    #[prost(enumeration = "FetchMessageType", tag = "1")]
    pub fetch_message_type: i32,
    /// An encoded [`FetchRequest`] or [`FetchResponse`].
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

/// `K2FetchMessage.FetchMessageType` (`fetch.proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum FetchMessageType {
    /// Default value; a protocol error if received.
    Unspecified = 0,
    /// `data` is a [`FetchRequest`].
    Request = 1,
    /// `data` is a [`FetchResponse`].
    Response = 2,
}

/// One published op id (`kitsune2.publish.PublishOpEntry`, `publish.proto`, 0.5+).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct PublishOpEntry {
    /// The op id.
    #[prost(bytes = "bytes", tag = "1")]
    pub op_id: Bytes,
    /// Host metadata (Holochain's); Kitsune2 caps it at 1 024 bytes. fennec sends none.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub metadata: Option<Bytes>,
}

/// "I have these ops, fetch them from me" (`kitsune2.publish.PublishOps`, `publish.proto`,
/// 0.5+; the 0.4 layout `repeated bytes op_ids = 1` is incompatible).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct PublishOps {
    /// The published entries.
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<PublishOpEntry>,
    /// fennec extension, not in Kitsune2 (which skips the unknown field): these are ops the
    /// sender published before it met us (`SpaceConfig::introduce_recent_ops`), not a
    /// publish under way.
    #[prost(bool, tag = "1000")]
    pub fennec_introduction: bool,
}

/// A signed agent info pushed to a peer (`kitsune2.publish.PublishAgent`, `publish.proto`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct PublishAgent {
    /// The `AgentInfoSigned` JSON (outer object with `agentInfo` and `signature`).
    #[prost(string, tag = "1")]
    pub agent_info: String,
}

/// The "Publish" module's message (`kitsune2.publish.K2PublishMessage`, `publish.proto`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct K2PublishMessage {
    /// A [`PublishMessageType`] value; says what `data` decodes as.
    #[prost(enumeration = "PublishMessageType", tag = "1")]
    pub publish_message_type: i32,
    /// An encoded [`PublishOps`] or [`PublishAgent`].
    #[prost(bytes = "bytes", tag = "2")]
    pub data: Bytes,
}

/// `K2PublishMessage.PublishMessageType` (`publish.proto`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PublishMessageType {
    /// Default value; a protocol error if received.
    Unspecified = 0,
    /// `data` is a [`PublishOps`].
    Ops = 1,
    /// `data` is a [`PublishAgent`].
    Agent = 2,
}
