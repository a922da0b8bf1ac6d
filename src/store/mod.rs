//! Op store implementations that are not browser-bound ([`MemOpStore`]) and the helpers every
//! implementation shares (batch preparation, the strictly increasing stored-at clock, bounded
//! id lists, slice-hash checks). The trait and its types are in [`crate::api::op_store`].

use std::cell::Cell;

use bytes::Bytes;

use crate::api::op_store::{BoundedOpIds, MetaOp, StoreError};
use crate::hash::HashSet;
use crate::model::arc::DhtArc;
use crate::model::id::{Locator, OpId};
use crate::model::op::{OpError, StoredOp, verify_op};
use crate::model::time::Timestamp;

mod mem;

pub use mem::MemOpStore;

/// One verified op of a batch, ready to write.
#[derive(Debug, Clone)]
pub(crate) struct PreparedOp {
    pub op_id: OpId,
    pub data: Bytes,
    pub created_at: Timestamp,
    pub loc: u32,
}

impl PreparedOp {
    /// Encoded size in bytes (at most `MAX_OP_BYTES`, so it fits a u32).
    pub fn len(&self) -> u32 {
        u32::try_from(self.data.len()).unwrap_or(u32::MAX)
    }

    pub fn stored(&self) -> StoredOp {
        StoredOp {
            op_id: self.op_id.clone(),
            created_at: self.created_at,
        }
    }
}

/// Verifies every op of a batch before anything is written and drops repeats within it
/// (keeping the first). The first invalid op fails the whole batch.
pub(crate) fn prepare_batch(
    ops: Vec<MetaOp>,
    locator: &Locator,
) -> Result<Vec<PreparedOp>, StoreError> {
    let mut seen = HashSet::with_capacity_and_hasher(ops.len(), Default::default());
    let mut out = Vec::with_capacity(ops.len());
    for MetaOp { op_id, op_data } in ops {
        if seen.contains(&op_id) {
            continue;
        }
        let op = verify_op(&op_id, &op_data).map_err(|e| match e {
            OpError::IdMismatch { claimed, actual } => StoreError::WrongId {
                op_id: claimed,
                actual,
            },
            source => StoreError::Decode {
                op_id: op_id.clone(),
                source,
            },
        })?;
        seen.insert(op_id.clone());
        out.push(PreparedOp {
            loc: locator.op_loc(&op_id),
            op_id,
            data: op_data,
            created_at: op.created_at,
        });
    }
    Ok(out)
}

/// Keeps ids in first-seen order without repeats.
pub(crate) fn dedup_ids(ids: Vec<OpId>) -> Vec<OpId> {
    let mut seen = HashSet::with_capacity_and_hasher(ids.len(), Default::default());
    ids.into_iter()
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

/// The store's stored-at clock: wall-clock µs, but strictly increasing, so every op gets its
/// own stamp and bookmarks are exact.
#[derive(Debug)]
pub(crate) struct StoredAtClock {
    last: Cell<i64>,
}

impl Default for StoredAtClock {
    fn default() -> Self {
        StoredAtClock {
            last: Cell::new(i64::MIN),
        }
    }
}

impl StoredAtClock {
    /// Continues after `last`, the largest stamp already in the store (if any).
    #[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
    pub fn observe(&self, last: Option<Timestamp>) {
        if let Some(t) = last {
            self.last.set(self.last.get().max(t.as_micros()));
        }
    }

    /// The next op's stamp: `max(now, last + 1)`.
    pub fn stamp(&self, now: Timestamp) -> Timestamp {
        let t = now.as_micros().max(self.last.get().saturating_add(1));
        self.last.set(t);
        Timestamp::from_micros(t)
    }

    /// A bookmark after every stamp issued so far; later stamps are not below it.
    pub fn bookmark(&self, now: Timestamp) -> Timestamp {
        let t = now.as_micros().max(self.last.get().saturating_add(1));
        self.last.set(t.saturating_sub(1).max(self.last.get()));
        Timestamp::from_micros(t)
    }
}

/// Accumulates a [`BoundedOpIds`] from ops offered in stored order.
#[derive(Debug)]
pub(crate) struct BoundedAcc {
    arc: DhtArc,
    limit: u32,
    out: Vec<OpId>,
    created_at: Vec<Timestamp>,
    total: u32,
    cut_at: Option<Timestamp>,
}

impl BoundedAcc {
    pub fn new(arc: DhtArc, limit: u32) -> Self {
        BoundedAcc {
            arc,
            limit,
            out: Vec::new(),
            created_at: Vec::new(),
            total: 0,
            cut_at: None,
        }
    }

    /// Offers the next op in stored order; `false` once the limit was hit (stop scanning).
    pub fn offer(
        &mut self,
        op: (&OpId, Timestamp),
        loc: u32,
        len: u32,
        stored_at: Timestamp,
    ) -> bool {
        let (op_id, created_at) = op;
        if !self.arc.contains(loc) {
            return true;
        }
        match self.total.checked_add(len) {
            Some(t) if t <= self.limit => {
                self.total = t;
                self.out.push(op_id.clone());
                self.created_at.push(created_at);
                true
            }
            _ => {
                self.cut_at = Some(stored_at);
                false
            }
        }
    }

    /// The result; `bookmark` is used when the limit was not hit.
    pub fn finish(self, bookmark: Timestamp) -> BoundedOpIds {
        BoundedOpIds {
            op_ids: self.out,
            created_at: self.created_at,
            total_bytes: self.total,
            next_bookmark: self.cut_at.unwrap_or(bookmark),
        }
    }
}

/// Slice hashes are keyed by an arc; an empty arc names no sector.
pub(crate) fn slice_key(arc: DhtArc) -> Result<(u32, u32), StoreError> {
    match arc {
        DhtArc::Arc(s, e) => Ok((s, e)),
        DhtArc::Empty => Err(StoreError::Invalid(
            "an empty arc names no sector; slice hashes are keyed by a sector arc".into(),
        )),
    }
}

/// Kitsune2 refuses empty combined hashes (`TimeSliceHashStore::insert`).
pub(crate) fn check_slice_hash(hash: &Bytes) -> Result<(), StoreError> {
    if hash.is_empty() {
        return Err(StoreError::Invalid(
            "empty slice hash: empty time slices are not stored".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_strictly_increase_even_if_the_clock_stands_or_goes_back() {
        let c = StoredAtClock::default();
        c.observe(Some(Timestamp(100)));
        c.observe(None);
        assert_eq!(c.stamp(Timestamp(50)), Timestamp(101));
        assert_eq!(c.stamp(Timestamp(101)), Timestamp(102));
        assert_eq!(c.stamp(Timestamp(500)), Timestamp(500));
        let b = c.bookmark(Timestamp(400));
        assert_eq!(b, Timestamp(501));
        assert!(c.stamp(Timestamp(0)) >= b);
    }

    #[test]
    fn bookmark_is_not_below_later_stamps_and_clock_saturates() {
        let c = StoredAtClock::default();
        let b = c.bookmark(Timestamp(1000));
        assert_eq!(c.stamp(Timestamp(999)), b);
        let c = StoredAtClock::default();
        c.observe(Some(Timestamp(i64::MAX)));
        assert_eq!(c.stamp(Timestamp(0)), Timestamp(i64::MAX));
        assert_eq!(c.bookmark(Timestamp(0)), Timestamp(i64::MAX));
    }

    #[test]
    fn bounded_acc_skips_other_arcs_and_cuts_at_first_misfit() {
        let id = |b: u8| OpId::from_bytes(vec![b; 4]);
        let mut acc = BoundedAcc::new(DhtArc::Arc(0, 10), 10);
        assert!(acc.offer((&id(1), Timestamp(41)), 5, 6, Timestamp(1)));
        assert!(
            acc.offer((&id(2), Timestamp(42)), 50, 100, Timestamp(2)),
            "outside arc: skipped"
        );
        assert!(!acc.offer((&id(3), Timestamp(43)), 6, 5, Timestamp(3)));
        let r = acc.finish(Timestamp(99));
        assert_eq!(r.op_ids, vec![id(1)]);
        assert_eq!(r.created_at, vec![Timestamp(41)]);
        assert_eq!(r.total_bytes, 6);
        assert_eq!(r.next_bookmark, Timestamp(3));
        let mut acc = BoundedAcc::new(DhtArc::FULL, u32::MAX);
        assert!(acc.offer((&id(1), Timestamp(0)), 5, u32::MAX, Timestamp(1)));
        assert!(
            !acc.offer((&id(2), Timestamp(0)), 5, 1, Timestamp(2)),
            "no overflow"
        );
    }
}
