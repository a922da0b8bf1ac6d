//! Sans-IO framing for peer connections: signal frames and message chunks.
//!
//! Two layers of bytes, each starting with a one-byte *kind*:
//!
//! **Signal frames** ([`SignalFrame`]) are what one peer sends another through the signal
//! server (an sbd forward, or the in-page loopback in tests). The kind byte separates
//! WebRTC signalling (offer, answer, ICE candidate) from relayed data and connection control,
//! as `docs/design.md` ("sbd relay") asks. Every frame names the connection it belongs to
//! ([`ConnId`], 8 bytes big-endian) so that signalling and data of an old or abandoned
//! attempt can never be mistaken for the current one.
//!
//! ```text
//! 0x01 Offer      conn u64 BE | SDP (UTF-8)
//! 0x02 Answer     conn u64 BE | SDP (UTF-8)
//! 0x03 Candidate  conn u64 BE | m-line index u16 BE (0xFFFF = none) | mid length u8 | mid
//!                 (UTF-8) | candidate (UTF-8; empty = end of candidates)
//! 0x04 Data       conn u64 BE | one chunk (below)
//! 0x05 Close      conn u64 BE | reason (UTF-8)
//! 0x06 NoRtc      conn u64 BE                      "no WebRTC for this connection: use relay"
//! ```
//!
//! **Chunks** carry one message (for fennec: one encoded `K2Proto`) split into pieces that fit
//! a path's message limit: the data channel's (`NetConfig::chunk_bytes`, 16 KiB by default,
//! the size every browser accepts) or the relay's (sbd: 20 000 bytes per message). Both
//! paths are ordered and reliable, and a sender finishes one message before it starts the
//! next, so a chunk needs no message id or offset:
//!
//! ```text
//! 0x10 First  total length u32 BE | the first bytes of the message
//! 0x11 More   the next bytes of the message (never empty)
//! ```
//!
//! A message of `n` bytes is one `First` carrying `min(n, piece)` bytes and then `More`
//! chunks until `n` bytes have been carried; an empty message is a lone `First` with total
//! 0. The [`Reassembler`] enforces this sequence and a size limit chosen by the receiver, and
//! never allocates more than the bytes actually received. Every violation is a
//! [`FrameError`]: the connection that produced it is closed with that reason. Nothing here
//! panics on any input.

use bytes::{Bytes, BytesMut};

/// A connection id: chosen at random by the peer that starts the connection, echoed in every
/// signal frame of that connection (8 bytes on the wire).
pub type ConnId = u64;

/// Kind byte of [`SignalFrame::Offer`].
pub const KIND_OFFER: u8 = 0x01;
/// Kind byte of [`SignalFrame::Answer`].
pub const KIND_ANSWER: u8 = 0x02;
/// Kind byte of [`SignalFrame::Candidate`].
pub const KIND_CANDIDATE: u8 = 0x03;
/// Kind byte of [`SignalFrame::Data`].
pub const KIND_DATA: u8 = 0x04;
/// Kind byte of [`SignalFrame::Close`].
pub const KIND_CLOSE: u8 = 0x05;
/// Kind byte of [`SignalFrame::NoRtc`].
pub const KIND_NO_RTC: u8 = 0x06;
/// Kind byte of a first chunk ([`Chunk::First`]).
pub const KIND_FIRST: u8 = 0x10;
/// Kind byte of a continuation chunk ([`Chunk::More`]).
pub const KIND_MORE: u8 = 0x11;

/// Bytes of a signal frame before its body: kind (1) + connection id (8).
pub const SIGNAL_HEADER_BYTES: usize = 9;
/// Bytes of a first chunk before its data: kind (1) + total length (4).
pub const FIRST_HEADER_BYTES: usize = 5;
/// Bytes of a continuation chunk before its data: kind (1).
pub const MORE_HEADER_BYTES: usize = 1;
/// Overhead of one chunk relayed in a [`SignalFrame::Data`] on top of its data: the signal
/// header plus the larger chunk header (14 bytes). A relay that carries messages of at most
/// `m` bytes carries chunks of `m - RELAY_OVERHEAD_BYTES` message bytes.
pub const RELAY_OVERHEAD_BYTES: usize = SIGNAL_HEADER_BYTES + FIRST_HEADER_BYTES;

/// Why bytes were rejected. Each is a protocol violation by the sender.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Zero bytes: no kind.
    #[error("empty frame")]
    Empty,
    /// A kind byte this version does not know.
    #[error("unknown frame kind 0x{0:02x}")]
    UnknownKind(u8),
    /// The frame ends before a fixed-size field it must have.
    #[error("truncated {0} frame")]
    Truncated(&'static str),
    /// A text field that is not UTF-8.
    #[error("{0} is not UTF-8")]
    NotUtf8(&'static str),
    /// A message announced (or grown) beyond the receiver's limit.
    #[error("message of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Bytes announced by the first chunk.
        len: u64,
        /// The receiver's limit.
        max: usize,
    },
    /// A continuation chunk without a message in progress.
    #[error("continuation chunk without a first chunk")]
    UnexpectedMore,
    /// A first chunk while the previous message is incomplete.
    #[error("first chunk while {missing} bytes of the previous message are missing")]
    UnexpectedFirst {
        /// Bytes the previous message still lacked.
        missing: usize,
    },
    /// A chunk carrying more bytes than the message has left.
    #[error("chunk overruns the message: {got} bytes where {left} remained")]
    Overrun {
        /// Bytes in the chunk.
        got: usize,
        /// Bytes the message still lacked.
        left: usize,
    },
    /// A continuation chunk with no data (it would make no progress).
    #[error("empty continuation chunk")]
    EmptyMore,
    /// A frame longer than the signal path's limit.
    #[error("signal frame of {len} bytes exceeds the {max}-byte limit")]
    SignalTooLarge {
        /// Bytes received.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A candidate mid longer than 255 bytes cannot be encoded.
    #[error("ICE candidate mid of {0} bytes is longer than 255")]
    MidTooLong(usize),
}

/// One trickled ICE candidate, as `RTCIceCandidateInit` has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Candidate {
    /// The `candidate:` attribute line; empty means "end of candidates".
    pub candidate: String,
    /// The media stream identification tag, at most 255 bytes.
    pub sdp_mid: Option<String>,
    /// The m-line index (65 535 cannot be represented: it encodes "none").
    pub sdp_m_line_index: Option<u16>,
}

/// A message between two peers through the signal server (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalFrame {
    /// A WebRTC offer: the sender starts connection `conn` over WebRTC.
    Offer {
        /// The connection.
        conn: ConnId,
        /// The session description.
        sdp: String,
    },
    /// The answer to the offer of `conn`.
    Answer {
        /// The connection.
        conn: ConnId,
        /// The session description.
        sdp: String,
    },
    /// A trickled ICE candidate of `conn`.
    Candidate {
        /// The connection.
        conn: ConnId,
        /// The candidate.
        candidate: Candidate,
    },
    /// One chunk of a message of `conn`, relayed through the signal server.
    Data {
        /// The connection.
        conn: ConnId,
        /// The encoded chunk ([`Chunk::encode`]); checked by the [`Reassembler`].
        chunk: Bytes,
    },
    /// The sender closed `conn`.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, for logs and the peer's `Disconnected` event.
        reason: String,
    },
    /// The receiver of an offer will not use WebRTC for `conn` (disabled, or its peer
    /// connection budget is spent); the offerer should relay at once.
    NoRtc {
        /// The connection.
        conn: ConnId,
    },
}

impl SignalFrame {
    /// The connection this frame belongs to.
    pub fn conn(&self) -> ConnId {
        match self {
            SignalFrame::Offer { conn, .. }
            | SignalFrame::Answer { conn, .. }
            | SignalFrame::Candidate { conn, .. }
            | SignalFrame::Data { conn, .. }
            | SignalFrame::Close { conn, .. }
            | SignalFrame::NoRtc { conn } => *conn,
        }
    }

    /// A short name of the frame's kind, for logs and counters.
    pub fn kind_name(&self) -> &'static str {
        match self {
            SignalFrame::Offer { .. } => "offer",
            SignalFrame::Answer { .. } => "answer",
            SignalFrame::Candidate { .. } => "candidate",
            SignalFrame::Data { .. } => "data",
            SignalFrame::Close { .. } => "close",
            SignalFrame::NoRtc { .. } => "no-rtc",
        }
    }

    /// Encodes the frame.
    ///
    /// # Errors
    /// [`FrameError::MidTooLong`] for a candidate whose mid exceeds 255 bytes.
    pub fn encode(&self) -> Result<Bytes, FrameError> {
        let (kind, conn) = match self {
            SignalFrame::Offer { conn, .. } => (KIND_OFFER, conn),
            SignalFrame::Answer { conn, .. } => (KIND_ANSWER, conn),
            SignalFrame::Candidate { conn, .. } => (KIND_CANDIDATE, conn),
            SignalFrame::Data { conn, .. } => (KIND_DATA, conn),
            SignalFrame::Close { conn, .. } => (KIND_CLOSE, conn),
            SignalFrame::NoRtc { conn } => (KIND_NO_RTC, conn),
        };
        let mut out = Vec::with_capacity(SIGNAL_HEADER_BYTES + 64);
        out.push(kind);
        out.extend_from_slice(&conn.to_be_bytes());
        match self {
            SignalFrame::Offer { sdp, .. } | SignalFrame::Answer { sdp, .. } => {
                out.extend_from_slice(sdp.as_bytes())
            }
            SignalFrame::Candidate { candidate, .. } => {
                let mid = candidate.sdp_mid.as_deref().unwrap_or("");
                if mid.len() > 255 {
                    return Err(FrameError::MidTooLong(mid.len()));
                }
                let index = candidate.sdp_m_line_index.unwrap_or(u16::MAX);
                out.extend_from_slice(&index.to_be_bytes());
                // A mid of length 0 and "no mid" are the same on the wire; browsers never
                // produce an empty mid.
                out.push(mid.len() as u8);
                out.extend_from_slice(mid.as_bytes());
                out.extend_from_slice(candidate.candidate.as_bytes());
            }
            SignalFrame::Data { chunk, .. } => out.extend_from_slice(chunk),
            SignalFrame::Close { reason, .. } => out.extend_from_slice(reason.as_bytes()),
            SignalFrame::NoRtc { .. } => {}
        }
        Ok(out.into())
    }

    /// Decodes a frame of at most `max_len` bytes. `Data` chunks are zero-copy slices of
    /// `bytes` and are *not* checked here (the [`Reassembler`] does that).
    ///
    /// # Errors
    /// [`FrameError::SignalTooLarge`], [`FrameError::Empty`], [`FrameError::UnknownKind`],
    /// [`FrameError::Truncated`] or [`FrameError::NotUtf8`].
    pub fn decode(bytes: Bytes, max_len: usize) -> Result<SignalFrame, FrameError> {
        if bytes.len() > max_len {
            return Err(FrameError::SignalTooLarge {
                len: bytes.len(),
                max: max_len,
            });
        }
        let kind = *bytes.first().ok_or(FrameError::Empty)?;
        let name = match kind {
            KIND_OFFER => "offer",
            KIND_ANSWER => "answer",
            KIND_CANDIDATE => "candidate",
            KIND_DATA => "data",
            KIND_CLOSE => "close",
            KIND_NO_RTC => "no-rtc",
            k => return Err(FrameError::UnknownKind(k)),
        };
        if bytes.len() < SIGNAL_HEADER_BYTES {
            return Err(FrameError::Truncated(name));
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[1..SIGNAL_HEADER_BYTES]);
        let conn = u64::from_be_bytes(id);
        let body = bytes.slice(SIGNAL_HEADER_BYTES..);
        Ok(match kind {
            KIND_OFFER => SignalFrame::Offer {
                conn,
                sdp: utf8(&body, "offer SDP")?,
            },
            KIND_ANSWER => SignalFrame::Answer {
                conn,
                sdp: utf8(&body, "answer SDP")?,
            },
            KIND_CANDIDATE => {
                if body.len() < 3 {
                    return Err(FrameError::Truncated(name));
                }
                let index = u16::from_be_bytes([body[0], body[1]]);
                let mid_len = body[2] as usize;
                let rest = &body[3..];
                if rest.len() < mid_len {
                    return Err(FrameError::Truncated(name));
                }
                let mid = utf8(&rest[..mid_len], "candidate mid")?;
                SignalFrame::Candidate {
                    conn,
                    candidate: Candidate {
                        candidate: utf8(&rest[mid_len..], "candidate")?,
                        sdp_mid: (!mid.is_empty()).then_some(mid),
                        sdp_m_line_index: (index != u16::MAX).then_some(index),
                    },
                }
            }
            KIND_DATA => SignalFrame::Data { conn, chunk: body },
            KIND_CLOSE => SignalFrame::Close {
                conn,
                reason: String::from_utf8_lossy(&body).into_owned(),
            },
            _ => SignalFrame::NoRtc { conn },
        })
    }
}

fn utf8(b: &[u8], what: &'static str) -> Result<String, FrameError> {
    std::str::from_utf8(b)
        .map(str::to_owned)
        .map_err(|_| FrameError::NotUtf8(what))
}

/// One piece of a message (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// The first piece, announcing the message's total length in bytes.
    First {
        /// Total message length in bytes.
        total: u32,
        /// The first bytes.
        data: Bytes,
    },
    /// A following piece.
    More(Bytes),
}

impl Chunk {
    /// Encodes the chunk (kind byte, header, data).
    pub fn encode(&self) -> Bytes {
        match self {
            Chunk::First { total, data } => {
                let mut out = Vec::with_capacity(FIRST_HEADER_BYTES + data.len());
                out.push(KIND_FIRST);
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(data);
                out.into()
            }
            Chunk::More(data) => {
                let mut out = Vec::with_capacity(MORE_HEADER_BYTES + data.len());
                out.push(KIND_MORE);
                out.extend_from_slice(data);
                out.into()
            }
        }
    }

    /// Decodes a chunk; its data is a zero-copy slice of `bytes`.
    ///
    /// # Errors
    /// [`FrameError::Empty`], [`FrameError::UnknownKind`], [`FrameError::Truncated`].
    pub fn decode(bytes: Bytes) -> Result<Chunk, FrameError> {
        match bytes.first() {
            None => Err(FrameError::Empty),
            Some(&KIND_FIRST) => {
                if bytes.len() < FIRST_HEADER_BYTES {
                    return Err(FrameError::Truncated("first chunk"));
                }
                let total = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
                Ok(Chunk::First {
                    total,
                    data: bytes.slice(FIRST_HEADER_BYTES..),
                })
            }
            Some(&KIND_MORE) => Ok(Chunk::More(bytes.slice(MORE_HEADER_BYTES..))),
            Some(&k) => Err(FrameError::UnknownKind(k)),
        }
    }
}

/// Splits `message` into encoded chunks of at most `piece` message bytes each (so each
/// encoded chunk is at most `piece + 5` bytes). `piece` 0 is treated as 1.
///
/// # Errors
/// [`FrameError::TooLarge`] if the message is longer than `max_message` or than `u32::MAX`
/// bytes, the most a first chunk can announce.
pub fn chunks(
    message: &Bytes,
    piece: usize,
    max_message: usize,
) -> Result<impl Iterator<Item = Bytes> + use<>, FrameError> {
    let len = message.len();
    let max = max_message.min(u32::MAX as usize);
    if len > max {
        return Err(FrameError::TooLarge {
            len: len as u64,
            max,
        });
    }
    let piece = piece.max(1);
    let message = message.clone();
    let mut offset = 0usize;
    let mut first = true;
    Ok(std::iter::from_fn(move || {
        if !first && offset >= len {
            return None;
        }
        let end = (offset + piece).min(len);
        let data = message.slice(offset..end);
        offset = end;
        let chunk = if first {
            first = false;
            Chunk::First {
                total: len as u32,
                data,
            }
        } else {
            Chunk::More(data)
        };
        Some(chunk.encode())
    }))
}

/// Number of chunks [`chunks`] makes of a message of `len` bytes with pieces of `piece` bytes.
pub fn chunk_count(len: usize, piece: usize) -> usize {
    len.div_ceil(piece.max(1)).max(1)
}

/// Rebuilds messages from chunks in order, holding at most one partial message of at most
/// `max_message` bytes.
///
/// Memory: the buffer grows with the bytes received (a hostile "first" announcing the maximum
/// costs nothing until the bytes arrive), and is bounded by `max_message`.
#[derive(Debug)]
pub struct Reassembler {
    max_message: usize,
    /// The message in progress and its announced total length.
    partial: Option<(BytesMut, usize)>,
}

impl Reassembler {
    /// A reassembler accepting messages of at most `max_message` bytes.
    pub fn new(max_message: usize) -> Self {
        Reassembler {
            max_message,
            partial: None,
        }
    }

    /// The limit in bytes.
    pub fn max_message(&self) -> usize {
        self.max_message
    }

    /// Bytes of an incomplete message held now.
    pub fn buffered(&self) -> usize {
        self.partial.as_ref().map_or(0, |(b, _)| b.len())
    }

    /// Whether a message is in progress.
    pub fn in_progress(&self) -> bool {
        self.partial.is_some()
    }

    /// Feeds one encoded chunk; returns the message it completes, if any. A single-chunk
    /// message is returned without copying.
    ///
    /// # Errors
    /// Any [`Chunk::decode`] error, [`FrameError::TooLarge`], [`FrameError::UnexpectedMore`],
    /// [`FrameError::UnexpectedFirst`], [`FrameError::Overrun`] or [`FrameError::EmptyMore`].
    /// After an error the reassembler is reset (the partial message is discarded); the
    /// caller is expected to close the connection.
    pub fn push(&mut self, chunk: Bytes) -> Result<Option<Bytes>, FrameError> {
        let r = self.push_inner(chunk);
        if r.is_err() {
            self.partial = None;
        }
        r
    }

    fn push_inner(&mut self, chunk: Bytes) -> Result<Option<Bytes>, FrameError> {
        match Chunk::decode(chunk)? {
            Chunk::First { total, data } => {
                if let Some((buf, want)) = &self.partial {
                    return Err(FrameError::UnexpectedFirst {
                        missing: want - buf.len(),
                    });
                }
                let total = total as usize;
                if total > self.max_message {
                    return Err(FrameError::TooLarge {
                        len: total as u64,
                        max: self.max_message,
                    });
                }
                if data.len() > total {
                    return Err(FrameError::Overrun {
                        got: data.len(),
                        left: total,
                    });
                }
                if data.len() == total {
                    return Ok(Some(data));
                }
                let mut buf = BytesMut::with_capacity(data.len());
                buf.extend_from_slice(&data);
                self.partial = Some((buf, total));
                Ok(None)
            }
            Chunk::More(data) => {
                let Some((buf, total)) = &mut self.partial else {
                    return Err(FrameError::UnexpectedMore);
                };
                if data.is_empty() {
                    return Err(FrameError::EmptyMore);
                }
                let left = *total - buf.len();
                if data.len() > left {
                    return Err(FrameError::Overrun {
                        got: data.len(),
                        left,
                    });
                }
                buf.extend_from_slice(&data);
                if buf.len() == *total {
                    let (buf, _) = self.partial.take().expect("checked above");
                    return Ok(Some(buf.freeze()));
                }
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_frames() -> Vec<SignalFrame> {
        vec![
            SignalFrame::Offer {
                conn: 1,
                sdp: "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\n".into(),
            },
            SignalFrame::Answer {
                conn: u64::MAX,
                sdp: String::new(),
            },
            SignalFrame::Candidate {
                conn: 7,
                candidate: Candidate {
                    candidate: "candidate:1 1 udp 2122260223 x.local 5000 typ host".into(),
                    sdp_mid: Some("0".into()),
                    sdp_m_line_index: Some(0),
                },
            },
            SignalFrame::Candidate {
                conn: 7,
                candidate: Candidate::default(),
            },
            SignalFrame::Data {
                conn: 0x0102_0304_0506_0708,
                chunk: Chunk::First {
                    total: 3,
                    data: Bytes::from_static(b"abc"),
                }
                .encode(),
            },
            SignalFrame::Close {
                conn: 9,
                reason: "idle".into(),
            },
            SignalFrame::NoRtc { conn: 10 },
        ]
    }

    #[test]
    fn signal_frames_round_trip() {
        for f in all_frames() {
            let bytes = f.encode().unwrap();
            assert_eq!(SignalFrame::decode(bytes, 20_000).unwrap(), f);
        }
    }

    #[test]
    fn signal_frame_layout_is_pinned() {
        let f = SignalFrame::Data {
            conn: 0x0102_0304_0506_0708,
            chunk: Bytes::from_static(&[KIND_FIRST, 0, 0, 0, 1, 0xAA]),
        };
        assert_eq!(
            &f.encode().unwrap()[..],
            &[4, 1, 2, 3, 4, 5, 6, 7, 8, 0x10, 0, 0, 0, 1, 0xAA]
        );
        let c = SignalFrame::Candidate {
            conn: 1,
            candidate: Candidate {
                candidate: "c".into(),
                sdp_mid: Some("m".into()),
                sdp_m_line_index: None,
            },
        };
        assert_eq!(
            &c.encode().unwrap()[..],
            &[3, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF, 1, b'm', b'c']
        );
        assert_eq!(
            &SignalFrame::NoRtc { conn: 2 }.encode().unwrap()[..],
            &[6, 0, 0, 0, 0, 0, 0, 0, 2]
        );
    }

    #[test]
    fn hostile_signal_frames_are_errors() {
        let d = |b: &[u8]| SignalFrame::decode(Bytes::copy_from_slice(b), 100);
        assert_eq!(d(&[]), Err(FrameError::Empty));
        assert_eq!(d(&[0]), Err(FrameError::UnknownKind(0)));
        assert_eq!(d(&[0x10, 1]), Err(FrameError::UnknownKind(0x10)));
        assert_eq!(d(&[0xFF; 20]), Err(FrameError::UnknownKind(0xFF)));
        for kind in 1..=6u8 {
            assert!(matches!(d(&[kind, 0, 0]), Err(FrameError::Truncated(_))));
        }
        assert_eq!(
            d(&[1, 0, 0, 0, 0, 0, 0, 0, 1, 0xC3]),
            Err(FrameError::NotUtf8("offer SDP"))
        );
        // Candidate: missing index/mid length; mid longer than the rest; bad UTF-8.
        assert_eq!(
            d(&[3, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
            Err(FrameError::Truncated("candidate"))
        );
        assert_eq!(
            d(&[3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 5, b'a']),
            Err(FrameError::Truncated("candidate"))
        );
        assert_eq!(
            d(&[3, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0xFF]),
            Err(FrameError::NotUtf8("candidate mid"))
        );
        assert_eq!(
            SignalFrame::decode(Bytes::from(vec![1u8; 101]), 100),
            Err(FrameError::SignalTooLarge { len: 101, max: 100 })
        );
        // Close reasons are read leniently, like Kitsune2's DISCONNECT.
        assert_eq!(
            d(&[5, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF]),
            Ok(SignalFrame::Close {
                conn: 1,
                reason: "\u{FFFD}".into()
            })
        );
        let long_mid = SignalFrame::Candidate {
            conn: 1,
            candidate: Candidate {
                sdp_mid: Some("x".repeat(256)),
                ..Candidate::default()
            },
        };
        assert_eq!(long_mid.encode(), Err(FrameError::MidTooLong(256)));
    }

    #[test]
    fn signal_decode_never_panics_on_any_short_input() {
        // Every 1- and 2-byte input, and every kind with every length up to 12 of a fixed
        // filler: decoding returns, whatever it returns.
        for a in 0..=255u8 {
            let _ = SignalFrame::decode(Bytes::from(vec![a]), 100);
            for b in 0..=255u8 {
                let _ = SignalFrame::decode(Bytes::from(vec![a, b]), 100);
            }
            for len in 0..12 {
                let mut v = vec![a];
                v.extend(std::iter::repeat_n(0xFFu8, len));
                let _ = SignalFrame::decode(Bytes::from(v), 100);
            }
        }
    }

    fn reassemble(chunks: impl IntoIterator<Item = Bytes>, max: usize) -> Vec<Bytes> {
        let mut r = Reassembler::new(max);
        let mut out = Vec::new();
        for c in chunks {
            if let Some(m) = r.push(c).unwrap() {
                out.push(m);
            }
        }
        assert!(!r.in_progress());
        out
    }

    #[test]
    fn chunking_round_trips_at_every_boundary() {
        for len in [0usize, 1, 2, 15, 16, 17, 31, 32, 33, 100] {
            let msg: Bytes = (0..len).map(|i| i as u8).collect::<Vec<_>>().into();
            let cs: Vec<Bytes> = chunks(&msg, 16, 1000).unwrap().collect();
            assert_eq!(cs.len(), chunk_count(len, 16), "len {len}");
            assert!(cs.iter().all(|c| c.len() <= 16 + FIRST_HEADER_BYTES));
            assert_eq!(reassemble(cs, 1000), vec![msg.clone()], "len {len}");
        }
    }

    #[test]
    fn several_messages_in_a_row_and_a_large_one() {
        let a = Bytes::from(vec![1u8; 50]);
        let b = Bytes::new();
        let c: Bytes = (0..3 * 1024 * 1024 + 7)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        let all: Vec<Bytes> = [&a, &b, &c]
            .into_iter()
            .flat_map(|m| chunks(m, 16 * 1024, 4 << 20).unwrap())
            .collect();
        assert_eq!(reassemble(all, 4 << 20), vec![a, b, c]);
    }

    #[test]
    fn the_size_limit_is_enforced_on_both_sides() {
        let msg = Bytes::from(vec![0u8; 101]);
        assert!(matches!(
            chunks(&msg, 10, 100),
            Err(FrameError::TooLarge { len: 101, max: 100 })
        ));
        // A hostile first chunk announcing more than the limit is refused before any data.
        let mut r = Reassembler::new(100);
        let first = Chunk::First {
            total: u32::MAX,
            data: Bytes::new(),
        };
        assert_eq!(
            r.push(first.encode()),
            Err(FrameError::TooLarge {
                len: u32::MAX as u64,
                max: 100
            })
        );
        assert_eq!(r.buffered(), 0);
        // Exactly the limit is fine.
        let ok = Bytes::from(vec![7u8; 100]);
        assert_eq!(reassemble(chunks(&ok, 30, 100).unwrap(), 100), vec![ok]);
    }

    #[test]
    fn hostile_chunk_sequences_are_errors_and_reset() {
        let first = |total: u32, data: &[u8]| {
            Chunk::First {
                total,
                data: Bytes::copy_from_slice(data),
            }
            .encode()
        };
        let more = |data: &[u8]| Chunk::More(Bytes::copy_from_slice(data)).encode();

        let mut r = Reassembler::new(100);
        assert_eq!(r.push(more(b"x")), Err(FrameError::UnexpectedMore));
        assert_eq!(r.push(Bytes::new()), Err(FrameError::Empty));
        assert_eq!(
            r.push(Bytes::from_static(&[KIND_FIRST, 0, 0])),
            Err(FrameError::Truncated("first chunk"))
        );
        assert_eq!(
            r.push(Bytes::from_static(&[0x42, 1])),
            Err(FrameError::UnknownKind(0x42))
        );
        assert_eq!(
            r.push(first(2, b"abc")),
            Err(FrameError::Overrun { got: 3, left: 2 })
        );

        assert_eq!(r.push(first(5, b"ab")), Ok(None));
        assert_eq!(r.buffered(), 2);
        assert_eq!(
            r.push(first(1, b"z")),
            Err(FrameError::UnexpectedFirst { missing: 3 })
        );
        assert!(!r.in_progress(), "an error discards the partial message");

        assert_eq!(r.push(first(5, b"ab")), Ok(None));
        assert_eq!(r.push(more(b"")), Err(FrameError::EmptyMore));
        assert_eq!(r.push(first(5, b"ab")), Ok(None));
        assert_eq!(
            r.push(more(b"cdef")),
            Err(FrameError::Overrun { got: 4, left: 3 })
        );
        assert_eq!(r.buffered(), 0);

        // And it still works afterwards.
        assert_eq!(r.push(first(3, b"a")), Ok(None));
        assert_eq!(r.push(more(b"bc")), Ok(Some(Bytes::from_static(b"abc"))));
    }

    #[test]
    fn reassembly_never_panics_on_arbitrary_chunk_streams() {
        // A deterministic pseudo-random stream of short hostile chunks (xorshift).
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut r = Reassembler::new(64);
        let (mut ok, mut err) = (0, 0);
        for _ in 0..50_000 {
            let n = (next() % 9) as usize;
            let mut v: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            if let Some(b) = v.first_mut() {
                // Mostly valid kinds, so sequences get deep.
                *b = [KIND_FIRST, KIND_MORE, KIND_MORE, *b][(next() % 4) as usize];
            }
            if v.len() >= 5 && v[0] == KIND_FIRST {
                v[1..5].copy_from_slice(&((next() % 80) as u32).to_be_bytes());
            }
            match r.push(Bytes::from(v)) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
            assert!(r.buffered() <= 64);
        }
        assert!(ok > 1000 && err > 1000, "ok {ok} err {err}");
    }
}
