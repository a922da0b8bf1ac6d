//! fennec's byte layout of foca packets ([`WireCodec`], a [`foca::Codec`]) and the
//! admission filter applied to a packet before foca sees it (`filter_packet`).
//!
//! Layout (all integers big-endian), a packet being what foca writes:
//! `header [u16 count, member × count] [custom broadcasts]`:
//! - identity: `u8 len (1..=64)`, `len` bytes of agent id, `u64 bump`;
//! - header: `src identity`, `u16 src_incarnation`, `u64 dst bump` (the destination agent is
//!   the receiver: a packet only ever reaches the agent it is for), `u8 tag`, then for
//!   `PingReq`/`IndirectPing`/`IndirectAck`/`ForwardedAck` an identity and a `u8` probe
//!   number, for `Ping`/`Ack` the `u8` probe number;
//! - member: `identity`, `u16 incarnation`, `u8 state` (0 alive, 1 suspect, 2 down, 3 down
//!   because it left: a member's own `leave_cluster` announcement).
//!
//! Dozing hints ride as foca custom broadcasts after the updates ([`DozeHandler`]).
//!
//! On the wire a packet follows one flags byte ([`to_wire`], [`from_wire`]). Flag
//! [`FLAG_IMPLICIT_SRC`] (every packet fennec sends): the header's source agent (its length
//! byte and id, 33 of a ping's 56 bytes) is left out; the receiver takes the agent at the
//! sender's URL, which it already knows from the verified agent info that admitted the
//! sender. The SWIM paper's messages name their sender because UDP datagrams do not; a
//! space's connections do, so the id is redundant there. Other flags are refused.
//!
//! Decoding never panics; every short or bad input is a [`CodecError`].

use std::cell::RefCell;
use std::rc::Rc;

use bytes::{Buf, BufMut, Bytes};
use foca::{Header, Member, Message, State};

use super::MemberId;
use crate::hash::{HashMap, HashSet};
use crate::model::id::AgentId;

/// Longest agent id the codec carries (Kitsune2 ids are 32 bytes).
pub const MAX_AGENT_ID_BYTES: usize = 64;

/// Why a packet did not decode (foca turns it into `foca::Error::Decode`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The input ended inside a field.
    #[error("membership packet truncated")]
    Truncated,
    /// An agent id of length 0 or over [`MAX_AGENT_ID_BYTES`].
    #[error("agent id of {0} bytes")]
    BadIdLength(usize),
    /// An unknown message tag or member state.
    #[error("unknown {what} value {value}")]
    BadTag {
        /// `"message"` or `"state"`.
        what: &'static str,
        /// The value read.
        value: u8,
    },
    /// Not enough room in foca's send buffer (foca then sends fewer updates).
    #[error("no room in the packet")]
    NoRoom,
}

/// State shared by the codec and broadcast handler inside foca and the
/// [`super::Membership`] around it.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Identities known to have left (not crashed): their Down is re-encoded as "left" when
    /// disseminated further. Pruned to the members foca keeps.
    pub left: HashSet<MemberId>,
    /// Dozing hints: agent → (sequence, dozing), newest sequence wins. Pruned to the members
    /// foca keeps; at most `cap` entries.
    pub dozing: HashMap<AgentId, (u64, bool)>,
    /// Bound of `dozing`.
    pub cap: usize,
    /// The local agent: the destination of every packet we decode.
    pub me: AgentId,
}

/// A dozing hint, disseminated as a foca custom broadcast: `u8 len, agent id, u64 seq,
/// u8 dozing (0/1)`.
pub(crate) fn encode_doze(agent: &AgentId, seq: u64, dozing: bool) -> Vec<u8> {
    let a = agent.as_bytes();
    let mut v = Vec::with_capacity(a.len() + 10);
    v.put_u8(a.len() as u8);
    v.put_slice(a);
    v.put_u64(seq);
    v.put_u8(u8::from(dozing));
    v
}

/// The flags byte's "source agent left out" bit (see the [module docs](self)).
pub const FLAG_IMPLICIT_SRC: u8 = 1;

/// The wire form of a foca `packet` sent by `me`: the flags byte, then the packet with the
/// header's source agent left out when it is `me` ([`FLAG_IMPLICIT_SRC`]), else whole.
pub fn to_wire(me: &AgentId, packet: &[u8]) -> Vec<u8> {
    let a = me.as_bytes();
    let mut out = Vec::with_capacity(packet.len() + 1);
    match packet.split_first() {
        Some((&len, rest)) if usize::from(len) == a.len() && rest.starts_with(a) => {
            out.push(FLAG_IMPLICIT_SRC);
            out.extend_from_slice(&rest[a.len()..]);
        }
        _ => {
            out.push(0);
            out.extend_from_slice(packet);
        }
    }
    out
}

/// Why [`from_wire`] could not restore a packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireFormError {
    /// No flags byte, or flags this version does not know (a protocol violation).
    #[error("membership flags {0:?}")]
    BadFlags(Option<u8>),
    /// The source agent was left out but the sender's URL hosts not exactly one agent
    /// (count given): it cannot be told which one sent it.
    #[error("membership packet without a source agent from a URL with {0} agents")]
    Ambiguous(usize),
}

/// The foca packet inside wire `data` from a URL hosting `sender_agents`: the source agent
/// put back if it was left out ([`FLAG_IMPLICIT_SRC`]).
///
/// # Errors
/// [`WireFormError`].
pub fn from_wire(data: &[u8], sender_agents: &[AgentId]) -> Result<Vec<u8>, WireFormError> {
    match data.split_first() {
        Some((0, packet)) => Ok(packet.to_vec()),
        Some((&FLAG_IMPLICIT_SRC, rest)) => match sender_agents {
            [agent] => {
                let a = agent.as_bytes();
                let mut packet = Vec::with_capacity(rest.len() + 1 + a.len());
                // Agent ids are at most MAX_AGENT_ID_BYTES long; a longer one fails decoding.
                packet.push(u8::try_from(a.len()).unwrap_or(0));
                packet.extend_from_slice(a);
                packet.extend_from_slice(rest);
                Ok(packet)
            }
            more => Err(WireFormError::Ambiguous(more.len())),
        },
        Some((&flags, _)) => Err(WireFormError::BadFlags(Some(flags))),
        None => Err(WireFormError::BadFlags(None)),
    }
}

/// Identifies a dozing hint in foca's broadcast backlog: a newer hint of the same agent
/// replaces an older one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DozeKey {
    agent: AgentId,
    seq: u64,
}

impl foca::Invalidates for DozeKey {
    fn invalidates(&self, other: &Self) -> bool {
        self.agent == other.agent && self.seq >= other.seq
    }
}

/// foca's [`foca::BroadcastHandler`] for dozing hints (see [`super::Membership::set_dozing`]).
#[derive(Debug, Clone)]
pub struct DozeHandler {
    shared: Rc<RefCell<Shared>>,
}

impl DozeHandler {
    pub(crate) fn new(shared: Rc<RefCell<Shared>>) -> Self {
        DozeHandler { shared }
    }
}

impl foca::BroadcastHandler<MemberId> for DozeHandler {
    type Key = DozeKey;
    type Error = CodecError;

    fn receive_item(
        &mut self,
        mut data: &[u8],
        _sender: Option<&MemberId>,
    ) -> Result<Option<DozeKey>, CodecError> {
        let len = get_u8(&mut data)? as usize;
        if len == 0 || len > MAX_AGENT_ID_BYTES {
            return Err(CodecError::BadIdLength(len));
        }
        if data.len() != len + 9 {
            return Err(CodecError::Truncated);
        }
        let agent = AgentId::from_bytes(Bytes::copy_from_slice(&data[..len]));
        data.advance(len);
        let seq = data.get_u64();
        let dozing = data.get_u8() != 0;
        let mut s = self.shared.borrow_mut();
        match s.dozing.get(&agent) {
            Some((known, _)) if *known >= seq => return Ok(None),
            None if s.dozing.len() >= s.cap => return Ok(None),
            _ => {}
        }
        s.dozing.insert(agent.clone(), (seq, dozing));
        Ok(Some(DozeKey { agent, seq }))
    }
}

/// The [`foca::Codec`] for [`MemberId`] (layout in the [module docs](self)).
#[derive(Debug, Clone)]
pub struct WireCodec {
    shared: Rc<RefCell<Shared>>,
}

impl WireCodec {
    pub(crate) fn new(shared: Rc<RefCell<Shared>>) -> Self {
        WireCodec { shared }
    }
}

const TAG_PING: u8 = 0;
const TAG_ACK: u8 = 1;
const TAG_PING_REQ: u8 = 2;
const TAG_INDIRECT_PING: u8 = 3;
const TAG_INDIRECT_ACK: u8 = 4;
const TAG_FORWARDED_ACK: u8 = 5;
const TAG_ANNOUNCE: u8 = 6;
const TAG_FEED: u8 = 7;
const TAG_GOSSIP: u8 = 8;
const TAG_BROADCAST: u8 = 9;
const TAG_TURN_UNDEAD: u8 = 10;

const STATE_LEFT: u8 = 3;

fn id_len(id: &MemberId) -> usize {
    1 + id.agent.as_bytes().len() + 8
}

fn put_id(id: &MemberId, buf: &mut impl BufMut) {
    let a = id.agent.as_bytes();
    buf.put_u8(a.len() as u8);
    buf.put_slice(a);
    buf.put_u64(id.bump);
}

fn get_u8(buf: &mut impl Buf) -> Result<u8, CodecError> {
    buf.try_get_u8().map_err(|_| CodecError::Truncated)
}

fn get_u16(buf: &mut impl Buf) -> Result<u16, CodecError> {
    buf.try_get_u16().map_err(|_| CodecError::Truncated)
}

fn get_id(buf: &mut impl Buf) -> Result<MemberId, CodecError> {
    let len = get_u8(buf)? as usize;
    if len == 0 || len > MAX_AGENT_ID_BYTES {
        return Err(CodecError::BadIdLength(len));
    }
    if buf.remaining() < len + 8 {
        return Err(CodecError::Truncated);
    }
    let agent = AgentId::from_bytes(buf.copy_to_bytes(len));
    let bump = buf.get_u64();
    Ok(MemberId { agent, bump })
}

fn message_parts(m: &Message<MemberId>) -> (u8, Option<&MemberId>, Option<u8>) {
    match m {
        Message::Ping(pn) => (TAG_PING, None, Some(*pn)),
        Message::Ack(pn) => (TAG_ACK, None, Some(*pn)),
        Message::PingReq {
            target,
            probe_number,
        } => (TAG_PING_REQ, Some(target), Some(*probe_number)),
        Message::IndirectPing {
            origin,
            probe_number,
        } => (TAG_INDIRECT_PING, Some(origin), Some(*probe_number)),
        Message::IndirectAck {
            target,
            probe_number,
        } => (TAG_INDIRECT_ACK, Some(target), Some(*probe_number)),
        Message::ForwardedAck {
            origin,
            probe_number,
        } => (TAG_FORWARDED_ACK, Some(origin), Some(*probe_number)),
        Message::Announce => (TAG_ANNOUNCE, None, None),
        Message::Feed => (TAG_FEED, None, None),
        Message::Gossip => (TAG_GOSSIP, None, None),
        Message::Broadcast => (TAG_BROADCAST, None, None),
        Message::TurnUndead => (TAG_TURN_UNDEAD, None, None),
    }
}

fn get_message(buf: &mut impl Buf) -> Result<Message<MemberId>, CodecError> {
    let tag = get_u8(buf)?;
    Ok(match tag {
        TAG_PING => Message::Ping(get_u8(buf)?),
        TAG_ACK => Message::Ack(get_u8(buf)?),
        TAG_PING_REQ..=TAG_FORWARDED_ACK => {
            let id = get_id(buf)?;
            let probe_number = get_u8(buf)?;
            match tag {
                TAG_PING_REQ => Message::PingReq {
                    target: id,
                    probe_number,
                },
                TAG_INDIRECT_PING => Message::IndirectPing {
                    origin: id,
                    probe_number,
                },
                TAG_INDIRECT_ACK => Message::IndirectAck {
                    target: id,
                    probe_number,
                },
                _ => Message::ForwardedAck {
                    origin: id,
                    probe_number,
                },
            }
        }
        TAG_ANNOUNCE => Message::Announce,
        TAG_FEED => Message::Feed,
        TAG_GOSSIP => Message::Gossip,
        TAG_BROADCAST => Message::Broadcast,
        TAG_TURN_UNDEAD => Message::TurnUndead,
        value => {
            return Err(CodecError::BadTag {
                what: "message",
                value,
            });
        }
    })
}

impl foca::Codec<MemberId> for WireCodec {
    type Error = CodecError;

    fn encode_header(
        &mut self,
        h: &Header<MemberId>,
        mut buf: impl BufMut,
    ) -> Result<(), CodecError> {
        let (tag, id, pn) = message_parts(&h.message);
        let len = id_len(&h.src) + 2 + 8 + 1 + id.map_or(0, id_len) + 1;
        if buf.remaining_mut() < len {
            return Err(CodecError::NoRoom);
        }
        put_id(&h.src, &mut buf);
        buf.put_u16(h.src_incarnation);
        buf.put_u64(h.dst.bump);
        buf.put_u8(tag);
        if let Some(id) = id {
            put_id(id, &mut buf);
        }
        if let Some(pn) = pn {
            buf.put_u8(pn);
        }
        Ok(())
    }

    fn decode_header(&mut self, mut buf: impl Buf) -> Result<Header<MemberId>, CodecError> {
        let src = get_id(&mut buf)?;
        let src_incarnation = get_u16(&mut buf)?;
        let bump = buf.try_get_u64().map_err(|_| CodecError::Truncated)?;
        let dst = MemberId {
            agent: self.shared.borrow().me.clone(),
            bump,
        };
        let message = get_message(&mut buf)?;
        Ok(Header {
            src,
            src_incarnation,
            dst,
            message,
        })
    }

    fn encode_member(
        &mut self,
        m: &Member<MemberId>,
        mut buf: impl BufMut,
    ) -> Result<(), CodecError> {
        // foca: "MUST NOT leave buf dirty if no room".
        if buf.remaining_mut() < id_len(m.id()) + 3 {
            return Err(CodecError::NoRoom);
        }
        let state = match m.state() {
            State::Alive => 0,
            State::Suspect => 1,
            State::Down if self.shared.borrow().left.contains(m.id()) => STATE_LEFT,
            State::Down => 2,
        };
        put_id(m.id(), &mut buf);
        buf.put_u16(m.incarnation());
        buf.put_u8(state);
        Ok(())
    }

    fn decode_member(&mut self, mut buf: impl Buf) -> Result<Member<MemberId>, CodecError> {
        let id = get_id(&mut buf)?;
        let incarnation = get_u16(&mut buf)?;
        let state = match get_u8(&mut buf)? {
            0 => State::Alive,
            1 => State::Suspect,
            2 => State::Down,
            STATE_LEFT => {
                self.shared.borrow_mut().left.insert(id.clone());
                State::Down
            }
            value => {
                return Err(CodecError::BadTag {
                    what: "state",
                    value,
                });
            }
        };
        Ok(Member::new(id, incarnation, state))
    }
}

/// A packet after [`filter_packet`]: who sent it and the bytes to hand to foca.
#[derive(Debug)]
pub(crate) struct Filtered {
    /// The header's source.
    pub src: MemberId,
    /// The packet with updates about unadmitted agents removed.
    pub packet: Bytes,
    /// Updates removed.
    pub dropped: usize,
}

/// Decodes the header and the updates of `packet`, keeps the updates whose agent `keep`
/// accepts, and re-encodes. The rest of the packet (custom broadcasts) is kept as is.
///
/// # Errors
/// [`CodecError`] for a packet that does not decode.
pub(crate) fn filter_packet(
    codec: &mut WireCodec,
    packet: &[u8],
    mut keep: impl FnMut(&Member<MemberId>) -> bool,
) -> Result<Filtered, CodecError> {
    use foca::Codec;
    let mut rest = packet;
    let header = codec.decode_header(&mut rest)?;
    let header_len = packet.len() - rest.len();
    let src = header.src.clone();
    if rest.len() < 2 || header.message == Message::Broadcast {
        return Ok(Filtered {
            src,
            packet: Bytes::copy_from_slice(packet),
            dropped: 0,
        });
    }
    let count = get_u16(&mut rest)?;
    let mut kept = Vec::with_capacity(usize::from(count).min(256));
    let mut dropped = 0;
    for _ in 0..count {
        let m = codec.decode_member(&mut rest)?;
        if keep(&m) {
            kept.push(m);
        } else {
            dropped += 1;
        }
    }
    let mut out = Vec::with_capacity(packet.len());
    out.extend_from_slice(&packet[..header_len]);
    if !kept.is_empty() || !rest.is_empty() {
        out.put_u16(kept.len() as u16);
        for m in &kept {
            codec.encode_member(m, &mut out)?;
        }
    }
    out.extend_from_slice(rest);
    Ok(Filtered {
        src,
        packet: out.into(),
        dropped,
    })
}
