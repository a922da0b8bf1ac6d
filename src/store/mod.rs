//! The op store: where a peer keeps the ops it holds, and the queries the DHT needs of it.
//!
//! [`OpStore`] is Kitsune2's `OpStore` (`crates/api/src/op_store.rs`) made single-threaded
//! (every method returns a [`LocalBoxFuture`], nothing is `Send`) and stricter:
//!
//! - the store itself verifies every incoming op (`op_id == BLAKE3(op_data)`, the envelope
//!   decodes; see [`crate::op::verify_op`]) instead of trusting the id from the wire;
//! - [`OpStore::process_incoming_ops`] returns only the ops *newly* stored by that call, so the
//!   caller can inform the DHT model exactly once per op (informing an op twice XORs it out of
//!   its slice hash again, Kitsune2 `crates/dht/src/combine.rs`);
//! - an op is acknowledged (the future resolves `Ok`) only after the backend committed it; for
//!   IndexedDB that is the transaction's `complete` event;
//! - the "stored at" clock is strictly increasing per store, so a bookmark from
//!   [`OpStore::retrieve_op_ids_bounded`] never skips nor repeats an op (see [`BoundedOpIds`]).
//!
//! Implementations: [`MemOpStore`] (native and wasm, no persistence; native tests and
//! simulations) and `IdbOpStore` (wasm32 only, IndexedDB; what users get). Both pass the one
//! conformance suite in [`conformance`].
//!
//! # Units
//! Timestamps are [`Timestamp`]s, µs since the Unix epoch. Sizes ("bytes") are lengths of the
//! encoded op (`op_data`, what a `FetchResponse` carries and what is stored), not of ids.
//!
//! # Batch semantics
//! A call to [`OpStore::process_incoming_ops`] is all or nothing: every op of the batch is
//! verified before anything is written, and the writes of one call are one backend transaction.
//! If any op fails verification, the call fails with that op's error and stores nothing; if the
//! transaction fails (quota, closed database), nothing of it is stored. Callers that want to keep
//! the good ops of a batch from a misbehaving peer verify them one by one first.

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use std::cell::Cell;
use std::collections::HashSet;

use crate::arc::DhtArc;
use crate::id::{Locator, OpId};
use crate::op::{OpError, StoredOp, verify_op};
use crate::time::Timestamp;

#[doc(hidden)]
pub mod conformance;
#[cfg(target_arch = "wasm32")]
pub mod idb;
mod mem;

#[cfg(target_arch = "wasm32")]
pub use idb::{Durability, IdbOpStore, IdbOptions};
pub use mem::MemOpStore;

/// An op id with its encoded data: what arrives from a peer (`FetchResponse`) and what
/// [`OpStore::retrieve_ops`] returns. Kitsune2's `MetaOp` / `IncomingOp` without metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaOp {
    /// The op id, as claimed by whoever sent the data; verified by the store.
    pub op_id: OpId,
    /// The encoded op ([`crate::op::Op::encode`]), at most [`crate::op::MAX_OP_BYTES`] bytes.
    pub op_data: Bytes,
}

/// Result of [`OpStore::retrieve_op_hashes_in_time_slice`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TimeSliceOpIds {
    /// Op ids ordered by `(created_at, op_id)` ascending (the order of [`StoredOp`]).
    pub op_ids: Vec<OpId>,
    /// Sum of the encoded sizes of those ops, bytes.
    pub total_bytes: u64,
}

/// Result of [`OpStore::retrieve_op_ids_bounded`] ("new ops since", Kitsune2 gossip §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoundedOpIds {
    /// Op ids in the order this store stored them (its `stored_at`, ascending).
    pub op_ids: Vec<OpId>,
    /// Sum of the encoded sizes of those ops, bytes; never more than the limit asked for.
    pub total_bytes: u32,
    /// Where the next query should start (inclusive), µs of this store's stored-at clock.
    ///
    /// If the byte limit cut the list, it is the stored-at of the first op in the arc that did
    /// not fit (that op comes first next time). Otherwise it is a stamp later than every op
    /// stored so far and no later than any op stored afterwards, so starting from it neither
    /// repeats nor misses an op (Kitsune2 returns "now" here, which can miss ops stored in the
    /// same µs).
    pub next_bookmark: Timestamp,
}

/// Totals over every op held, from [`OpStore::query_totals`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpTotals {
    /// Number of distinct ops held.
    pub op_count: u64,
    /// Sum of their encoded sizes, bytes.
    pub op_bytes: u64,
}

/// Errors of [`OpStore`] methods. Each message says what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// An op's claimed id is not the BLAKE3 hash of its data; the whole batch was rejected.
    #[error("op {op_id} rejected: its data hashes to {actual}; nothing of this batch was stored")]
    WrongId {
        /// The id the sender claimed.
        op_id: OpId,
        /// The hash of the data received.
        actual: OpId,
    },
    /// An op's data is not a valid op envelope (too short, too large, unknown version); the
    /// whole batch was rejected.
    #[error("op {op_id} rejected: {source}; nothing of this batch was stored")]
    Decode {
        /// The id the sender claimed.
        op_id: OpId,
        /// Why the data does not decode.
        source: OpError,
    },
    /// The browser (or a configured quota) refused the write: out of storage. Nothing of the
    /// transaction was stored. Free space or ask the user to; `navigator.storage.persist()`
    /// raises the browser's limit on some engines.
    #[error("storage quota exceeded, nothing of this batch was stored: {0}")]
    QuotaExceeded(String),
    /// Opening needs a schema upgrade but another tab keeps an older version of the database
    /// open and did not close it. Close or reload the other tabs.
    #[error("database {db} is blocked: another tab holds an older version open; close it")]
    Blocked {
        /// Database name.
        db: String,
    },
    /// Another tab upgraded (or deleted) the database, so this connection was closed
    /// (`versionchange`). Reload the page to run the newer code.
    #[error("database {db} was closed because another tab upgraded or deleted it; reload")]
    VersionChange {
        /// Database name.
        db: String,
    },
    /// The store was closed with [`OpStore::close`] (or by the browser).
    #[error("op store is closed")]
    Closed,
    /// An argument the store cannot take (an empty slice hash, an empty arc as a slice key).
    #[error("invalid op store argument: {0}")]
    Invalid(String),
    /// Anything else from the storage backend (IndexedDB unavailable, a corrupt record, an
    /// unexpected DOMException), with the backend's words.
    #[error("op store backend error: {0}")]
    Backend(String),
}

/// The op store of one agent in one space. Single-threaded: futures are `!Send` and borrow the
/// store; call it from one task or from several on one thread.
///
/// Dropping a returned future does not undo writes already handed to the backend: they may
/// still commit without being acknowledged (storing them again later is harmless).
pub trait OpStore {
    /// Verifies and stores ops from a peer or from the local author.
    ///
    /// Each op must satisfy `op_id == BLAKE3(op_data)` and decode as an op envelope; its
    /// `created_at` is read from the data. All ops of the call are written in one transaction.
    ///
    /// Returns the ops *newly* stored by this call, in input order: an op already held, or
    /// repeated within `ops`, is not an error and is returned at most once (only if this call
    /// stored it). Feed exactly these to the DHT model. Resolves only after the write committed.
    ///
    /// # Errors
    /// [`StoreError::WrongId`] / [`StoreError::Decode`] for the first invalid op (nothing
    /// stored); [`StoreError::QuotaExceeded`]; [`StoreError::Closed`],
    /// [`StoreError::VersionChange`]; [`StoreError::Backend`].
    fn process_incoming_ops(
        &self,
        ops: Vec<MetaOp>,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>>;

    /// The ops held among `op_ids`, in the order asked, each at most once; ids not held are
    /// skipped.
    ///
    /// # Errors
    /// [`StoreError::Closed`], [`StoreError::VersionChange`], [`StoreError::Backend`].
    fn retrieve_ops(
        &self,
        op_ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<MetaOp>, StoreError>>;

    /// The ids among `op_ids` that are *not* held, in the order given, each at most once.
    /// What the fetch queue asks before requesting ops from peers.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn filter_out_existing_ops(
        &self,
        op_ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>>;

    /// Ids of the ops whose location is in `arc` (inclusive, may wrap) and whose `created_at`
    /// is in `[start, end)` µs, ordered by `(created_at, op_id)` ascending, with their total
    /// size in bytes. An empty arc or `start >= end` gives nothing. Kitsune2's
    /// `retrieve_op_hashes_in_time_slice`; the DHT model hashes time slices from it.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn retrieve_op_hashes_in_time_slice(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<TimeSliceOpIds, StoreError>>;

    /// Ids of the ops in `arc` stored by this store at or after `start` (a bookmark, µs of the
    /// store's stored-at clock), in stored order, as many as fit in `limit_bytes` of op data.
    /// Stops at the first op in the arc that does not fit (it is never skipped: a single op
    /// larger than the limit is returned by no call with that limit). See [`BoundedOpIds`]
    /// for the bookmark. Kitsune2's `retrieve_op_ids_bounded`, for gossip's "new ops since".
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn retrieve_op_ids_bounded(
        &self,
        arc: DhtArc,
        start: Timestamp,
        limit_bytes: u32,
    ) -> LocalBoxFuture<'_, Result<BoundedOpIds, StoreError>>;

    /// The smallest `created_at` (µs) of the ops in `arc`, `None` if there are none (or the
    /// arc is empty). Lower bound of the DHT model's work.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn earliest_timestamp_in_arc(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Option<Timestamp>, StoreError>>;

    /// Stores the combined hash of full time slice `slice_index` of the sector `arc`,
    /// replacing any earlier one. Resolves after the write committed.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an empty `slice_hash` (empty slices are not stored, as in
    /// Kitsune2's `TimeSliceHashStore`) or an empty `arc`; [`StoreError::QuotaExceeded`];
    /// as [`OpStore::retrieve_ops`].
    fn store_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
        slice_hash: Bytes,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>>;

    /// The highest slice index stored for `arc` plus one (saturating at `u64::MAX`), 0 if none:
    /// Kitsune2's `slice_hash_count`, which counts from slice 0 rather than the slices held.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn slice_hash_count(&self, arc: DhtArc) -> LocalBoxFuture<'_, Result<u64, StoreError>>;

    /// The hash last stored for `(arc, slice_index)`, `None` if never stored.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn retrieve_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
    ) -> LocalBoxFuture<'_, Result<Option<Bytes>, StoreError>>;

    /// Every `(slice_index, hash)` stored for `arc`, by slice index ascending.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn retrieve_slice_hashes(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Vec<(u64, Bytes)>, StoreError>>;

    /// Count and total bytes of the ops held (Kitsune2's `query_total_op_count`, plus bytes).
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn query_totals(&self) -> LocalBoxFuture<'_, Result<OpTotals, StoreError>>;

    /// Closes this handle. Writes already handed to the backend still commit and their futures
    /// still resolve; every call made afterwards fails with [`StoreError::Closed`]. Idempotent.
    fn close(&self);
}

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
    let mut seen = HashSet::with_capacity(ops.len());
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
    let mut seen = HashSet::with_capacity(ids.len());
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
    total: u32,
    cut_at: Option<Timestamp>,
}

impl BoundedAcc {
    pub fn new(arc: DhtArc, limit: u32) -> Self {
        BoundedAcc {
            arc,
            limit,
            out: Vec::new(),
            total: 0,
            cut_at: None,
        }
    }

    /// Offers the next op in stored order; `false` once the limit was hit (stop scanning).
    pub fn offer(&mut self, op_id: &OpId, loc: u32, len: u32, stored_at: Timestamp) -> bool {
        if !self.arc.contains(loc) {
            return true;
        }
        match self.total.checked_add(len) {
            Some(t) if t <= self.limit => {
                self.total = t;
                self.out.push(op_id.clone());
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
        assert!(acc.offer(&id(1), 5, 6, Timestamp(1)));
        assert!(
            acc.offer(&id(2), 50, 100, Timestamp(2)),
            "outside arc: skipped"
        );
        assert!(!acc.offer(&id(3), 6, 5, Timestamp(3)));
        let r = acc.finish(Timestamp(99));
        assert_eq!(r.op_ids, vec![id(1)]);
        assert_eq!(r.total_bytes, 6);
        assert_eq!(r.next_bookmark, Timestamp(3));
        let mut acc = BoundedAcc::new(DhtArc::FULL, u32::MAX);
        assert!(acc.offer(&id(1), 5, u32::MAX, Timestamp(1)));
        assert!(!acc.offer(&id(2), 5, 1, Timestamp(2)), "no overflow");
    }
}
