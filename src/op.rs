//! STAND-IN for the `wire` branch's `op.rs` (deleted when that lands on main).

use crate::id::OpId;
use crate::time::Timestamp;
use bytes::{BufMut, Bytes, BytesMut};
use std::cmp::Ordering;

/// Largest encoded op; stand-in.
pub const MAX_OP_BYTES: usize = 1024 * 1024;

/// An op; stand-in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Op {
    /// Creation time, µs.
    pub created_at: Timestamp,
    /// App bytes.
    pub payload: Bytes,
}

/// Op errors; stand-in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// Too short.
    #[error("op too short: {len} bytes")]
    TooShort {
        /// Bytes.
        len: usize,
    },
    /// Too large.
    #[error("op too large: {len} bytes, limit is {max}")]
    TooLarge {
        /// Bytes.
        len: usize,
        /// Limit.
        max: usize,
    },
    /// Bad version.
    #[error("unknown op envelope version {0}")]
    UnknownVersion(u8),
    /// Id mismatch.
    #[error("op id mismatch: claimed {claimed}, data hashes to {actual}")]
    IdMismatch {
        /// Claimed.
        claimed: OpId,
        /// Actual.
        actual: OpId,
    },
}

impl Op {
    /// Encodes.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(9 + self.payload.len());
        b.put_u8(1);
        b.put_i64(self.created_at.as_micros());
        b.put_slice(&self.payload);
        b.freeze()
    }

    /// Decodes.
    pub fn decode(data: &[u8]) -> Result<Op, OpError> {
        if data.len() > MAX_OP_BYTES {
            return Err(OpError::TooLarge {
                len: data.len(),
                max: MAX_OP_BYTES,
            });
        }
        if data.len() < 9 {
            return Err(OpError::TooShort { len: data.len() });
        }
        if data[0] != 1 {
            return Err(OpError::UnknownVersion(data[0]));
        }
        let mut t = [0u8; 8];
        t.copy_from_slice(&data[1..9]);
        Ok(Op {
            created_at: Timestamp(i64::from_be_bytes(t)),
            payload: Bytes::copy_from_slice(&data[9..]),
        })
    }

    /// The id.
    pub fn id(&self) -> OpId {
        OpId::from_bytes(blake3::hash(&self.encode()).as_bytes().to_vec())
    }
}

/// Verifies.
pub fn verify_op(id: &OpId, data: &[u8]) -> Result<Op, OpError> {
    if data.len() > MAX_OP_BYTES {
        return Err(OpError::TooLarge {
            len: data.len(),
            max: MAX_OP_BYTES,
        });
    }
    let actual = OpId::from_bytes(blake3::hash(data).as_bytes().to_vec());
    if actual != *id {
        return Err(OpError::IdMismatch {
            claimed: id.clone(),
            actual,
        });
    }
    Op::decode(data)
}

/// Stored op; stand-in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoredOp {
    /// Id.
    pub op_id: OpId,
    /// Created at.
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
