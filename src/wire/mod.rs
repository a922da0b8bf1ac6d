//! The wire: Kitsune2 0.5's protobuf messages and a typed layer over them.
//!
//! Every message between peers is one [`K2Proto`] frame. [`proto`] and [`gossip`] hold the
//! prost structs (hand-written derives, no protoc; field numbers from Kitsune2's `.proto`
//! files). [`WireMessage`] is what the rest of fennec handles: [`WireMessage::decode`] applies
//! the size limit and Kitsune2's receive-path rules (`crates/api/src/transport.rs`), and the
//! `encode_*` functions build outgoing frames.
//!
//! Receive rules, and where they come from:
//! - frames over [`MAX_FRAME_BYTES`] are rejected before parsing (fennec's rule; Kitsune2's
//!   iroh transport allows 100 MiB);
//! - NOTIFY or MODULE without `space_id`, MODULE without `module_id` ⇒ error (Kitsune2:
//!   protocol violation, connection closed);
//! - MODULE with a module id other than `"Fetch"`, `"Publish"`, `"k2gossip"` ⇒ error
//!   ([`WireError::UnknownModule`]). Kitsune2 silently drops these instead (no handler is
//!   registered); callers that want Kitsune2's leniency can ignore this one error;
//! - an unknown `K2WireType` value decodes as [`WireMessage::Unspecified`], to be ignored:
//!   Kitsune2 reads unknown values as `UNSPECIFIED` and `wire.proto` reserves it for future
//!   types. fennec's one extension, [`WIRE_TYPE_MEMBERSHIP`], is such a value, so Kitsune2
//!   peers ignore it;
//! - an unknown or `UNSPECIFIED` module message type (fetch, publish, gossip) ⇒ error, as
//!   Kitsune2's module handlers do;
//! - DISCONNECT data is read as UTF-8, invalid sequences replaced (as Kitsune2 does).
//!
//! Every error means "protocol violation": drop the connection. Decoding never panics.

use bytes::Bytes;
use prost::Message;

use crate::model::id::{OpId, SpaceId};

pub mod gossip;
pub mod proto;

#[cfg(test)]
mod tests;

pub use gossip::*;
pub use proto::*;

/// Module id of fetch messages (Kitsune2 `core_fetch`).
pub const MODULE_FETCH: &str = "Fetch";
/// Module id of publish messages (Kitsune2 `core_publish`).
pub const MODULE_PUBLISH: &str = "Publish";
/// Module id of gossip messages (Kitsune2 `kitsune2_gossip`).
pub const MODULE_GOSSIP: &str = "k2gossip";

/// The `K2Proto.ty` of a membership frame (fennec's SWIM, [`crate::core::membership`]): a
/// fennec extension, not a Kitsune2 type (Kitsune2 reads it as `UNSPECIFIED` and ignores
/// it). The frame is `ty` and `data` only, `data` being the membership payload as is (a
/// flags byte and a foca packet): 4 bytes of envelope where a MODULE frame would spend 51
/// (a 32-byte `space_id` and a module id). Membership is most of an idle tab's traffic, a
/// packet or two of ~25 bytes per probe period (issue 11: at most 200 B/s per peer).
///
/// Why no space: a connection belongs to one joined space (each join has its own sbd URL
/// and transport), so the space is the connection's; the receiver knows it already.
pub const WIRE_TYPE_MEMBERSHIP: i32 = 0x4D;

/// Largest frame [`WireMessage::decode`] accepts: 4 MiB (4 194 304 bytes).
///
/// A frame is one reassembled message. 4 MiB fits a fetch response with three ops of the
/// maximum size ([`crate::model::op::MAX_OP_BYTES`], 1 MiB) or about 100 000 op ids. It is kept well
/// below Kitsune2's 100 MiB because decoding can amplify memory: a frame of minimal repeated
/// entries (2 bytes each) becomes a `Vec<Bytes>` of 16 (wasm32) to 32 bytes per entry, so
/// 4 MiB of input can cost up to 64 MiB transiently in a tab. Senders must keep their own
/// frames under this (e.g. split fetch responses).
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

/// Why a frame was rejected. Each is a protocol violation by the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The frame is larger than the limit passed to [`decode_frame`].
    #[error("frame too large: {len} bytes, limit is {max}")]
    FrameTooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Bytes that are not a valid protobuf encoding of the expected message (truncated,
    /// wrong wire type, bad length, invalid UTF-8 in a string, too deeply nested…).
    #[error("malformed {what}: {source}")]
    Decode {
        /// Which message was being decoded, e.g. `"K2Proto"`.
        what: &'static str,
        /// prost's description.
        source: prost::DecodeError,
    },
    /// NOTIFY or MODULE without the required `space_id`.
    #[error("{ty} message without space_id")]
    MissingSpaceId {
        /// `"NOTIFY"` or `"MODULE"`.
        ty: &'static str,
    },
    /// MODULE without the required `module_id`.
    #[error("MODULE message without module_id")]
    MissingModuleId,
    /// MODULE with a module id fennec does not run.
    #[error("unknown module id {0:?}")]
    UnknownModule(String),
    /// A module message whose type is `UNSPECIFIED` or a value this version does not know.
    #[error("unknown or unspecified {module} message type {ty}")]
    UnknownMessageType {
        /// The module: [`MODULE_FETCH`], [`MODULE_PUBLISH`] or [`MODULE_GOSSIP`].
        module: &'static str,
        /// The type value received.
        ty: i32,
    },
}

impl WireError {
    /// A `map_err` adapter naming the message that failed to decode.
    fn decode(what: &'static str) -> impl FnOnce(prost::DecodeError) -> WireError {
        move |source| WireError::Decode { what, source }
    }
}

/// A decoded frame.
// A transient value, decoded once and moved on at once (as `TransportEvent`); boxing the
// gossip message (the largest) would only add an allocation per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireMessage {
    /// `UNSPECIFIED` (0) or a `K2WireType` this version does not know: ignore it (count it
    /// for rate limits).
    Unspecified {
        /// The type value received.
        ty: i32,
    },
    /// Host preflight bytes, sent once per connection.
    Preflight(Bytes),
    /// A fire-and-forget message for the space's host handler.
    Notify {
        /// The space.
        space: SpaceId,
        /// Host bytes.
        data: Bytes,
    },
    /// A "Fetch" module message.
    Fetch {
        /// The space.
        space: SpaceId,
        /// The request or response.
        msg: FetchMsg,
    },
    /// A "Publish" module message.
    Publish {
        /// The space.
        space: SpaceId,
        /// Op ids or an agent info.
        msg: PublishMsg,
    },
    /// A "k2gossip" module message.
    Gossip {
        /// The space.
        space: SpaceId,
        /// The gossip round message.
        msg: GossipMsg,
    },
    /// A membership frame ([`WIRE_TYPE_MEMBERSHIP`]), for the space of the connection it
    /// came on.
    Membership {
        /// The membership payload, undecoded ([`crate::core::membership::Membership::handle_data`]).
        data: Bytes,
    },
    /// The peer is closing the connection, with a reason.
    Disconnect(String),
}

/// A fetch module message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchMsg {
    /// "Send me these ops."
    Request(Vec<OpId>),
    /// `(op id, encoded op)` pairs. Unverified: check each with [`crate::model::op::verify_op`].
    Response(Vec<(OpId, Bytes)>),
}

/// A publish module message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublishMsg {
    /// "I hold these ops; fetch them from me." Kitsune2 0.5's per-entry host metadata is
    /// accepted and discarded (fennec has none).
    Ops(Vec<OpId>),
    /// As `Ops`, flagged by a fennec sender as an introduction: ops it published before it
    /// met us (`PublishOps.fennec_introduction`), history rather than a publish under way.
    /// A Kitsune2 peer reads the same frame as `Ops`.
    Introduction(Vec<OpId>),
    /// An `AgentInfoSigned` JSON string, not yet verified.
    Agent(String),
}

impl WireMessage {
    /// Decodes a frame of at most [`MAX_FRAME_BYTES`]. See [`decode_frame`].
    ///
    /// # Errors
    /// As [`decode_frame`].
    pub fn decode(frame: Bytes) -> Result<WireMessage, WireError> {
        decode_frame(frame, MAX_FRAME_BYTES)
    }

    /// Encodes as one [`K2Proto`] frame. `Unspecified { ty }` is sent with empty data.
    pub fn encode(&self) -> Bytes {
        match self {
            WireMessage::Unspecified { ty } => k2(*ty, Bytes::new(), None, None),
            WireMessage::Preflight(data) => encode_preflight(data.clone()),
            WireMessage::Notify { space, data } => encode_notify(space, data.clone()),
            WireMessage::Fetch { space, msg } => match msg {
                FetchMsg::Request(ids) => encode_fetch_request(space, ids),
                FetchMsg::Response(ops) => encode_fetch_response(space, ops),
            },
            WireMessage::Publish { space, msg } => match msg {
                PublishMsg::Ops(ids) => encode_publish_ops(space, ids),
                PublishMsg::Introduction(ids) => encode_introduction(space, ids),
                PublishMsg::Agent(info) => encode_publish_agent(space, info),
            },
            WireMessage::Gossip { space, msg } => encode_gossip(space, msg),
            WireMessage::Membership { data } => encode_membership(data.clone()),
            WireMessage::Disconnect(reason) => encode_disconnect(reason),
        }
    }
}

/// Decodes one frame, applying the receive rules in the [module docs](self). Byte fields are
/// zero-copy slices of `frame`.
///
/// # Errors
/// [`WireError::FrameTooLarge`] if `frame.len() > max_frame_bytes`; [`WireError::Decode`] for
/// malformed protobuf at any level; [`WireError::MissingSpaceId`],
/// [`WireError::MissingModuleId`], [`WireError::UnknownModule`],
/// [`WireError::UnknownMessageType`] for rule violations.
pub fn decode_frame(frame: Bytes, max_frame_bytes: usize) -> Result<WireMessage, WireError> {
    if frame.len() > max_frame_bytes {
        return Err(WireError::FrameTooLarge {
            len: frame.len(),
            max: max_frame_bytes,
        });
    }
    let p = K2Proto::decode(frame).map_err(WireError::decode("K2Proto"))?;
    if p.ty == WIRE_TYPE_MEMBERSHIP {
        return Ok(WireMessage::Membership { data: p.data });
    }
    let ty = match K2WireType::try_from(p.ty) {
        Ok(t) => t,
        Err(_) => return Ok(WireMessage::Unspecified { ty: p.ty }),
    };
    Ok(match ty {
        K2WireType::Unspecified => WireMessage::Unspecified { ty: p.ty },
        K2WireType::Preflight => WireMessage::Preflight(p.data),
        K2WireType::Disconnect => {
            WireMessage::Disconnect(String::from_utf8_lossy(&p.data).into_owned())
        }
        K2WireType::Notify => WireMessage::Notify {
            space: space_of(p.space_id, "NOTIFY")?,
            data: p.data,
        },
        K2WireType::Module => {
            let space = space_of(p.space_id, "MODULE")?;
            let module = p.module_id.ok_or(WireError::MissingModuleId)?;
            match module.as_str() {
                MODULE_FETCH => WireMessage::Fetch {
                    space,
                    msg: decode_fetch(p.data)?,
                },
                MODULE_PUBLISH => WireMessage::Publish {
                    space,
                    msg: decode_publish(p.data)?,
                },
                MODULE_GOSSIP => WireMessage::Gossip {
                    space,
                    msg: GossipMsg::decode(p.data)?,
                },
                _ => return Err(WireError::UnknownModule(module)),
            }
        }
    })
}

fn space_of(space: Option<Bytes>, ty: &'static str) -> Result<SpaceId, WireError> {
    space
        .map(SpaceId::from)
        .ok_or(WireError::MissingSpaceId { ty })
}

fn decode_fetch(data: Bytes) -> Result<FetchMsg, WireError> {
    let m = K2FetchMessage::decode(data).map_err(WireError::decode("K2FetchMessage"))?;
    match FetchMessageType::try_from(m.fetch_message_type) {
        Ok(FetchMessageType::Request) => {
            let r = FetchRequest::decode(m.data).map_err(WireError::decode("FetchRequest"))?;
            Ok(FetchMsg::Request(
                r.op_ids.into_iter().map(OpId::from).collect(),
            ))
        }
        Ok(FetchMessageType::Response) => {
            let r = FetchResponse::decode(m.data).map_err(WireError::decode("FetchResponse"))?;
            Ok(FetchMsg::Response(
                r.ops
                    .into_iter()
                    .map(|o| (OpId::from(o.op_id), o.data))
                    .collect(),
            ))
        }
        _ => Err(WireError::UnknownMessageType {
            module: MODULE_FETCH,
            ty: m.fetch_message_type,
        }),
    }
}

fn decode_publish(data: Bytes) -> Result<PublishMsg, WireError> {
    let m = K2PublishMessage::decode(data).map_err(WireError::decode("K2PublishMessage"))?;
    match PublishMessageType::try_from(m.publish_message_type) {
        Ok(PublishMessageType::Ops) => {
            let r = PublishOps::decode(m.data).map_err(WireError::decode("PublishOps"))?;
            let ids = r.entries.into_iter().map(|e| OpId::from(e.op_id)).collect();
            Ok(match r.fennec_introduction {
                true => PublishMsg::Introduction(ids),
                false => PublishMsg::Ops(ids),
            })
        }
        Ok(PublishMessageType::Agent) => {
            let r = PublishAgent::decode(m.data).map_err(WireError::decode("PublishAgent"))?;
            Ok(PublishMsg::Agent(r.agent_info))
        }
        _ => Err(WireError::UnknownMessageType {
            module: MODULE_PUBLISH,
            ty: m.publish_message_type,
        }),
    }
}

fn k2(ty: i32, data: Bytes, space: Option<&SpaceId>, module: Option<&str>) -> Bytes {
    K2Proto {
        ty,
        data,
        space_id: space.map(|s| s.0.0.clone()),
        module_id: module.map(str::to_owned),
    }
    .encode_to_vec()
    .into()
}

/// A PREFLIGHT frame carrying host bytes (fennec's preflight content is defined by the peer
/// layer; Kitsune2's default is empty).
pub fn encode_preflight(data: impl Into<Bytes>) -> Bytes {
    k2(K2WireType::Preflight as i32, data.into(), None, None)
}

/// A NOTIFY frame for `space`.
pub fn encode_notify(space: &SpaceId, data: impl Into<Bytes>) -> Bytes {
    k2(K2WireType::Notify as i32, data.into(), Some(space), None)
}

/// A DISCONNECT frame with a UTF-8 reason.
pub fn encode_disconnect(reason: &str) -> Bytes {
    k2(
        K2WireType::Disconnect as i32,
        Bytes::copy_from_slice(reason.as_bytes()),
        None,
        None,
    )
}

/// A MODULE frame: `data` is the module's own encoded message.
pub fn encode_module(space: &SpaceId, module_id: &str, data: impl Into<Bytes>) -> Bytes {
    k2(
        K2WireType::Module as i32,
        data.into(),
        Some(space),
        Some(module_id),
    )
}

/// A membership frame ([`WIRE_TYPE_MEMBERSHIP`]) carrying `data`.
pub fn encode_membership(data: impl Into<Bytes>) -> Bytes {
    k2(WIRE_TYPE_MEMBERSHIP, data.into(), None, None)
}

/// A "Fetch" REQUEST frame asking for `ids`.
pub fn encode_fetch_request(space: &SpaceId, ids: &[OpId]) -> Bytes {
    let req = FetchRequest {
        op_ids: ids.iter().map(|i| i.0.0.clone()).collect(),
    };
    encode_module(
        space,
        MODULE_FETCH,
        K2FetchMessage {
            fetch_message_type: FetchMessageType::Request as i32,
            data: req.encode_to_vec().into(),
        }
        .encode_to_vec(),
    )
}

/// A "Fetch" RESPONSE frame with `(op id, encoded op)` pairs. The caller keeps the total
/// under [`MAX_FRAME_BYTES`].
pub fn encode_fetch_response(space: &SpaceId, ops: &[(OpId, Bytes)]) -> Bytes {
    let resp = FetchResponse {
        ops: ops
            .iter()
            .map(|(id, data)| WireOp {
                op_id: id.0.0.clone(),
                data: data.clone(),
            })
            .collect(),
    };
    encode_module(
        space,
        MODULE_FETCH,
        K2FetchMessage {
            fetch_message_type: FetchMessageType::Response as i32,
            data: resp.encode_to_vec().into(),
        }
        .encode_to_vec(),
    )
}

/// A "Publish" OPS frame announcing `ids` (no metadata).
pub fn encode_publish_ops(space: &SpaceId, ids: &[OpId]) -> Bytes {
    publish_ids(space, ids, false)
}

/// A "Publish" OPS frame announcing `ids` as an introduction ([`PublishMsg::Introduction`]).
pub fn encode_introduction(space: &SpaceId, ids: &[OpId]) -> Bytes {
    publish_ids(space, ids, true)
}

fn publish_ids(space: &SpaceId, ids: &[OpId], fennec_introduction: bool) -> Bytes {
    let ops = PublishOps {
        entries: ids
            .iter()
            .map(|i| PublishOpEntry {
                op_id: i.0.0.clone(),
                metadata: None,
            })
            .collect(),
        fennec_introduction,
    };
    encode_module(
        space,
        MODULE_PUBLISH,
        K2PublishMessage {
            publish_message_type: PublishMessageType::Ops as i32,
            data: ops.encode_to_vec().into(),
        }
        .encode_to_vec(),
    )
}

/// A "Publish" AGENT frame carrying signed agent info JSON.
pub fn encode_publish_agent(space: &SpaceId, agent_info_json: &str) -> Bytes {
    let agent = PublishAgent {
        agent_info: agent_info_json.to_owned(),
    };
    encode_module(
        space,
        MODULE_PUBLISH,
        K2PublishMessage {
            publish_message_type: PublishMessageType::Agent as i32,
            data: agent.encode_to_vec().into(),
        }
        .encode_to_vec(),
    )
}

/// A "k2gossip" frame carrying `msg`.
pub fn encode_gossip(space: &SpaceId, msg: &GossipMsg) -> Bytes {
    encode_module(space, MODULE_GOSSIP, msg.encode())
}
