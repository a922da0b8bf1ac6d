//! The op envelope: what fennec stores, publishes and fetches, and how its id is derived.
//!
//! Kitsune2 treats op data as opaque bytes but requires two things of it
//! (`crates/api/src/op_store.rs`): the op's `created_at` must be derivable from the data and the
//! same for everyone (it picks the DHT time slice), and all op ids in a network must have one
//! length. fennec's envelope carries `created_at` in a fixed header and its id is the 32-byte
//! BLAKE3 hash of the encoded bytes.
//!
//! # Encoding (version 1)
//!
//! ```text
//! offset 0   1 byte   version = 0x01
//! offset 1   8 bytes  created_at, i64 µs since the Unix epoch, big-endian
//! offset 9   rest     payload (app bytes, may be empty)
//! ```
//!
//! Why this and not protobuf: the id is a hash of the bytes, so each op must have exactly one
//! encoding. Protobuf decoders accept many encodings of one message (field order, explicit
//! defaults, unknown fields, non-minimal varints), which would let two byte strings decode to the
//! same op under different ids. Here every byte string decodes to at most one op and re-encodes to
//! itself. The payload needs no length prefix: it is the rest of the buffer, whose length the
//! frame (`FetchResponse` entry, IndexedDB value) already carries. The version byte leaves room
//! for later envelopes (e.g. an author and signature) without guessing.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

use crate::model::id::OpId;
use crate::model::time::Timestamp;

/// Envelope version written by [`Op::encode`] and the only one [`Op::decode`] accepts.
pub const OP_VERSION: u8 = 1;

/// Length of the fixed header before the payload: version (1) + created_at (8).
pub const OP_HEADER_BYTES: usize = 9;

/// Largest encoded op accepted, header included: 1 MiB (1 048 576 bytes).
///
/// Big enough for documents and small images, small enough that one op fits in memory and in a
/// handful of WebRTC/relay chunks without stalling other traffic. Enforced by [`Op::decode`],
/// [`verify_op`] and [`Op::new`].
pub const MAX_OP_BYTES: usize = 1024 * 1024;

/// Largest payload an op may carry: [`MAX_OP_BYTES`] minus the header.
pub const MAX_OP_PAYLOAD_BYTES: usize = MAX_OP_BYTES - OP_HEADER_BYTES;

/// Length of an [`OpId`]: a BLAKE3 output, 32 bytes.
pub const OP_ID_BYTES: usize = 32;

/// An op: a creation time and opaque app bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Op {
    /// When the author created the op (µs since the epoch). Decides the op's time slice.
    pub created_at: Timestamp,
    /// The app's bytes.
    pub payload: Bytes,
}

/// Errors from decoding or verifying an op. Each means "drop the data"; from a peer it is a
/// protocol violation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// Fewer bytes than the 9-byte header.
    #[error("op too short: {len} bytes, the header alone is {OP_HEADER_BYTES}")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// More bytes than [`MAX_OP_BYTES`].
    #[error("op too large: {len} bytes, limit is {max}")]
    TooLarge {
        /// Bytes received (or that encoding would produce).
        len: usize,
        /// The limit, [`MAX_OP_BYTES`].
        max: usize,
    },
    /// The first byte is not [`OP_VERSION`].
    #[error("unknown op envelope version {0}, expected {OP_VERSION}")]
    UnknownVersion(u8),
    /// The claimed op id is not the hash of the data.
    #[error("op id mismatch: claimed {claimed}, data hashes to {actual}")]
    IdMismatch {
        /// The id the sender gave.
        claimed: OpId,
        /// BLAKE3 of the data actually received.
        actual: OpId,
    },
}

impl Op {
    /// An op, checking that it will fit in [`MAX_OP_BYTES`] once encoded.
    ///
    /// # Errors
    /// [`OpError::TooLarge`] if the payload exceeds [`MAX_OP_PAYLOAD_BYTES`].
    pub fn new(created_at: Timestamp, payload: impl Into<Bytes>) -> Result<Self, OpError> {
        let op = Op {
            created_at,
            payload: payload.into(),
        };
        if op.encoded_len() > MAX_OP_BYTES {
            return Err(OpError::TooLarge {
                len: op.encoded_len(),
                max: MAX_OP_BYTES,
            });
        }
        Ok(op)
    }

    /// Length of [`Op::encode`]'s output in bytes.
    pub fn encoded_len(&self) -> usize {
        OP_HEADER_BYTES + self.payload.len()
    }

    /// The canonical bytes (see the module docs). Does not check [`MAX_OP_BYTES`]; build ops
    /// with [`Op::new`] to get that check up front.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.encoded_len());
        b.put_u8(OP_VERSION);
        b.put_i64(self.created_at.as_micros());
        b.put_slice(&self.payload);
        b.freeze()
    }

    /// Parses canonical bytes. The payload is copied out of `data`; use [`Op::decode_bytes`] to
    /// share a `Bytes` buffer instead.
    ///
    /// # Errors
    /// [`OpError::TooLarge`], [`OpError::TooShort`], [`OpError::UnknownVersion`].
    pub fn decode(data: &[u8]) -> Result<Op, OpError> {
        let created_at = decode_header(data)?;
        Ok(Op {
            created_at,
            payload: Bytes::copy_from_slice(&data[OP_HEADER_BYTES..]),
        })
    }

    /// As [`Op::decode`], but the payload is a zero-copy slice of `data`.
    ///
    /// # Errors
    /// As [`Op::decode`].
    pub fn decode_bytes(data: &Bytes) -> Result<Op, OpError> {
        let created_at = decode_header(data)?;
        Ok(Op {
            created_at,
            payload: data.slice(OP_HEADER_BYTES..),
        })
    }

    /// The op id: BLAKE3 of [`Op::encode`], 32 bytes.
    ///
    /// Why BLAKE3: a cryptographic hash, so nobody can make two ops share an id; 32 bytes like
    /// Kitsune2's and Holochain's hashes; fast, synchronous pure Rust on wasm32 (the browser's
    /// SubtleCrypto digest is async only, which would force every id computation through a
    /// promise).
    pub fn id(&self) -> OpId {
        op_id_of(&self.encode())
    }

    /// The `(op_id, created_at)` pair the op store indexes by.
    pub fn stored(&self) -> StoredOp {
        StoredOp {
            op_id: self.id(),
            created_at: self.created_at,
        }
    }
}

/// BLAKE3 of already-encoded op bytes; equals [`Op::id`] of the decoded op.
pub fn op_id_of(encoded: &[u8]) -> OpId {
    OpId::from_bytes(Bytes::copy_from_slice(blake3::hash(encoded).as_bytes()))
}

/// Checks op data received from a peer (a `FetchResponse` entry) against the id we asked for:
/// size limit first (cheap, before hashing), then `id == BLAKE3(data)`, then the envelope.
///
/// # Errors
/// [`OpError::TooLarge`], [`OpError::IdMismatch`], or a decode error of [`Op::decode`].
pub fn verify_op(id: &OpId, data: &[u8]) -> Result<Op, OpError> {
    check_len(data)?;
    let actual = op_id_of(data);
    if actual != *id {
        return Err(OpError::IdMismatch {
            claimed: id.clone(),
            actual,
        });
    }
    Op::decode(data)
}

fn check_len(data: &[u8]) -> Result<(), OpError> {
    if data.len() > MAX_OP_BYTES {
        return Err(OpError::TooLarge {
            len: data.len(),
            max: MAX_OP_BYTES,
        });
    }
    if data.len() < OP_HEADER_BYTES {
        return Err(OpError::TooShort { len: data.len() });
    }
    Ok(())
}

fn decode_header(data: &[u8]) -> Result<Timestamp, OpError> {
    check_len(data)?;
    if data[0] != OP_VERSION {
        return Err(OpError::UnknownVersion(data[0]));
    }
    let mut t = [0u8; 8];
    t.copy_from_slice(&data[1..OP_HEADER_BYTES]);
    Ok(Timestamp::from_micros(i64::from_be_bytes(t)))
}

/// An op as the op store indexes it: its id and creation time (Kitsune2 `StoredOp`,
/// `crates/api/src/op_store.rs`). Ordered by `(created_at, op_id)`, as Kitsune2 orders it, so
/// sorting gives time order with a deterministic tie-break.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StoredOp {
    /// The op id.
    pub op_id: OpId,
    /// The op's `created_at`, identical for every peer.
    pub created_at: Timestamp,
}

impl Ord for StoredOp {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.created_at, &self.op_id).cmp(&(other.created_at, &other.op_id))
    }
}

impl PartialOrd for StoredOp {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(t: i64, p: &'static [u8]) -> Op {
        Op::new(Timestamp(t), Bytes::from_static(p)).unwrap()
    }

    #[test]
    fn encoding_is_the_documented_layout() {
        let e = op(0x0102_0304_0506_0708, b"hi").encode();
        assert_eq!(&e[..], &[1, 1, 2, 3, 4, 5, 6, 7, 8, b'h', b'i']);
        let e = op(-1, b"").encode();
        assert_eq!(&e[..], &[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }

    #[test]
    fn round_trip_and_reencode_is_identity() {
        for o in [
            op(0, b""),
            op(i64::MIN, b"x"),
            op(i64::MAX, b"payload"),
            op(1_731_690_797_907_204, &[0; 300]),
        ] {
            let e = o.encode();
            assert_eq!(e.len(), o.encoded_len());
            assert_eq!(Op::decode(&e).unwrap(), o);
            assert_eq!(Op::decode_bytes(&e).unwrap(), o);
            assert_eq!(Op::decode(&e).unwrap().encode(), e);
        }
    }

    #[test]
    fn id_is_blake3_of_encoding_and_32_bytes() {
        let o = op(42, b"hello");
        let id = o.id();
        assert_eq!(id.as_bytes().len(), OP_ID_BYTES);
        assert_eq!(id.as_bytes(), blake3::hash(&o.encode()).as_bytes());
        // Regression fixture: pins envelope + hash, so a format change fails here.
        assert_eq!(id.to_b64(), "hDe4JW3rAfox13kUgCaYIZQN-_5CAm_MqedLOtcZTTQ");
        // Plain (unkeyed) BLAKE3: the official test vector for empty input.
        assert_eq!(
            op_id_of(b"").as_bytes(),
            [
                0xaf, 0x13, 0x49, 0xb9, 0xf5, 0xf9, 0xa1, 0xa6, 0xa0, 0x40, 0x4d, 0xea, 0x36, 0xdc,
                0xc9, 0x49, 0x9b, 0xcb, 0x25, 0xc9, 0xad, 0xc1, 0x12, 0xb7, 0xcc, 0x9a, 0x93, 0xca,
                0xe4, 0x1f, 0x32, 0x62
            ]
        );
        assert_ne!(op(43, b"hello").id(), id, "created_at is part of the id");
        assert_ne!(op(42, b"hellO").id(), id);
    }

    #[test]
    fn verify_accepts_matching_and_rejects_tampered() {
        let o = op(7, b"data");
        let e = o.encode();
        assert_eq!(verify_op(&o.id(), &e).unwrap(), o);

        let mut bad = e.to_vec();
        bad[9] ^= 1;
        assert!(matches!(
            verify_op(&o.id(), &bad),
            Err(OpError::IdMismatch { .. })
        ));
        let short = OpId::from_bytes(vec![1, 2, 3]);
        assert!(matches!(
            verify_op(&short, &e),
            Err(OpError::IdMismatch { .. })
        ));
        // Right hash, wrong version: still rejected.
        let mut v2 = e.to_vec();
        v2[0] = 2;
        assert_eq!(
            verify_op(&op_id_of(&v2), &v2),
            Err(OpError::UnknownVersion(2))
        );
    }

    #[test]
    fn decode_rejects_bad_input() {
        for len in 0..OP_HEADER_BYTES {
            assert_eq!(
                Op::decode(&vec![1; len]),
                Err(OpError::TooShort { len }),
                "{len}"
            );
        }
        assert_eq!(Op::decode(&[0; 9]), Err(OpError::UnknownVersion(0)));
        let big = vec![1u8; MAX_OP_BYTES + 1];
        assert!(matches!(Op::decode(&big), Err(OpError::TooLarge { .. })));
        assert!(matches!(
            verify_op(&op_id_of(&big), &big),
            Err(OpError::TooLarge { .. })
        ));
        let max = vec![1u8; MAX_OP_BYTES];
        assert_eq!(
            Op::decode(&max).unwrap().payload.len(),
            MAX_OP_PAYLOAD_BYTES
        );
    }

    #[test]
    fn new_enforces_the_limit() {
        assert!(Op::new(Timestamp(0), vec![0; MAX_OP_PAYLOAD_BYTES]).is_ok());
        assert_eq!(
            Op::new(Timestamp(0), vec![0; MAX_OP_PAYLOAD_BYTES + 1]),
            Err(OpError::TooLarge {
                len: MAX_OP_BYTES + 1,
                max: MAX_OP_BYTES
            })
        );
    }

    #[test]
    fn stored_op_orders_by_created_at_then_id() {
        let a = StoredOp {
            op_id: OpId::from_bytes(vec![9]),
            created_at: Timestamp(1),
        };
        let b = StoredOp {
            op_id: OpId::from_bytes(vec![1]),
            created_at: Timestamp(2),
        };
        let c = StoredOp {
            op_id: OpId::from_bytes(vec![2]),
            created_at: Timestamp(2),
        };
        let mut v = vec![c.clone(), b.clone(), a.clone()];
        v.sort();
        assert_eq!(v, vec![a, b, c]);
        let o = op(5, b"s");
        assert_eq!(
            o.stored(),
            StoredOp {
                op_id: o.id(),
                created_at: Timestamp(5)
            }
        );
    }
}
