//! The op store: where a peer keeps the ops it holds, and the queries the DHT needs of it.
//!
//! [`OpStore`] is Kitsune2's `OpStore` (`crates/api/src/op_store.rs`) made single-threaded
//! (every method returns a [`LocalBoxFuture`], nothing is `Send`) and stricter:
//!
//! - the store itself verifies every incoming op (`op_id == BLAKE3(op_data)`, the envelope
//!   decodes; see [`crate::model::op::verify_op`]) instead of trusting the id from the wire;
//! - [`OpStore::process_incoming_ops`] returns only the ops *newly* stored by that call, so the
//!   caller can inform the DHT model exactly once per op (informing an op twice XORs it out of
//!   its slice hash again, Kitsune2 `crates/dht/src/combine.rs`);
//! - an op is acknowledged (the future resolves `Ok`) only after the backend committed it; for
//!   IndexedDB that is the transaction's `complete` event;
//! - the "stored at" clock is strictly increasing per store, so a bookmark from
//!   [`OpStore::retrieve_op_ids_bounded`] never skips nor repeats an op (see [`BoundedOpIds`]).
//!
//! Implementations: `crate::store::MemOpStore` (native and wasm, no persistence; native tests
//! and simulations) and `crate::browser::idb::IdbOpStore` (IndexedDB; what users get). Both
//! pass the one conformance suite in `crate::testing::store_conformance`.
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

use super::held::HeldOpsQuery;
use crate::model::arc::{DhtArc, SECTORS};
use crate::model::id::OpId;
use crate::model::op::{Op, OpError, StoredOp};
use crate::model::time::Timestamp;

/// `(sector, slice_index, hash)`: the combined hash of full time slice `slice_index` of the
/// sector arc `DhtArc::of_sectors(sector, sector)` ([`OpStore::retrieve_sector_slice_hashes`]).
pub type SectorSliceHash = (u32, u64, Bytes);

/// An op id with its encoded data: what arrives from a peer (`FetchResponse`) and what
/// [`OpStore::retrieve_ops`] returns. Kitsune2's `MetaOp` / `IncomingOp` without metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaOp {
    /// The op id, as claimed by whoever sent the data; verified by the store.
    pub op_id: OpId,
    /// The encoded op ([`crate::model::op::Op::encode`]), at most [`crate::model::op::MAX_OP_BYTES`] bytes.
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
    /// The `created_at` of each op of `op_ids`, in the same order (a fennec addition: gossip
    /// lists in a reconciling round only the ops too new for the DHT model,
    /// `core::gossip::round`).
    pub created_at: Vec<Timestamp>,
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

    /// [`OpStore::retrieve_op_hashes_in_time_slice`] for each `(arc, start, end)` of `ranges`,
    /// answered in their order, in one read where the backend has it: a plain-Kitsune2 diff
    /// lists ids range by range, and a peer missing most of a 35 000-op space differs in
    /// thousands of (sector, slice) ranges; on IndexedDB one transaction each held the
    /// gossip step ~15 s, past the peer's round timeout. The default asks range by range.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`], for the first range that fails.
    fn retrieve_op_hashes_in_time_slices(
        &self,
        ranges: Vec<(DhtArc, Timestamp, Timestamp)>,
    ) -> LocalBoxFuture<'_, Result<Vec<TimeSliceOpIds>, StoreError>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(ranges.len());
            for (arc, start, end) in ranges {
                out.push(
                    self.retrieve_op_hashes_in_time_slice(arc, start, end)
                        .await?,
                );
            }
            Ok(out)
        })
    }

    /// The ops whose location is in `arc` and whose `created_at` is in `[start, end)` µs, as
    /// [`StoredOp`]s (id and `created_at`) ordered by `(created_at, op_id)`: the time-slice
    /// query with each op's time, so that one call can rebuild many slices (the DHT model's
    /// cold start; asking slice by slice costs 512 range reads per slice on IndexedDB, ~27 s
    /// for the ~660 slices of the bundled dataset). Not in Kitsune2. The default,
    /// [`op_times_by_reading`], reads every op to learn its time; stores whose index holds the
    /// time answer from keys alone.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`]; [`StoreError::Backend`] for a held op that does not decode.
    fn retrieve_op_times_in_time_range(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        Box::pin(op_times_by_reading(self, arc, start, end))
    }

    /// Ids of the held ops of the whole ring a page of the app's history asks for (`q`:
    /// `created_at` range, direction, cursor, limit), in its `(created_at, op_id)` order or
    /// the reverse. Not in Kitsune2 (fennec's `space.ops`). Any store can answer with
    /// [`held_op_ids_by_time_slices`](super::held_op_ids_by_time_slices), which lists every id
    /// of the rest of the range and cuts it to the limit (a page costs as much as all ops after
    /// the cursor); a store with a time-ordered index stops at the limit. No default, so a
    /// wrapper store passes it on rather than losing its inner store's answer.
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn retrieve_held_op_ids(
        &self,
        q: HeldOpsQuery,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>>;

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

    /// Stores every `(arc, slice_index, slice_hash)` of `hashes` as
    /// [`OpStore::store_slice_hash`] does, in order, and in one transaction where the backend
    /// has them (all or nothing; IndexedDB: one transaction instead of one per hash, e.g.
    /// ~1 450 per tab after the 8-tab sync of the bundled dataset). The default calls
    /// `store_slice_hash` for each, stopping at the first error.
    ///
    /// # Errors
    /// As [`OpStore::store_slice_hash`], for the first hash that fails.
    fn store_slice_hashes(
        &self,
        hashes: Vec<(DhtArc, u64, Bytes)>,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            for (arc, index, hash) in hashes {
                self.store_slice_hash(arc, index, hash).await?;
            }
            Ok(())
        })
    }

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

    /// Every [`SectorSliceHash`] stored for the sector arcs
    /// (`DhtArc::of_sectors(s, s)` for `s` in `0..SECTORS`), by sector then slice index: what
    /// the DHT model reads at start (`core::dht::store::load`). Hashes stored for other arcs
    /// are left out. Not in Kitsune2's `OpStore`, which has only the per-arc call: the default
    /// makes that call once per sector (512 calls), IndexedDB reads the store in one
    /// transaction (512 transactions were most of a warm reload).
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn retrieve_sector_slice_hashes(
        &self,
    ) -> LocalBoxFuture<'_, Result<Vec<SectorSliceHash>, StoreError>> {
        Box::pin(async move {
            let mut all = Vec::new();
            for sector in 0..SECTORS {
                let hashes = self
                    .retrieve_slice_hashes(DhtArc::of_sectors(sector, sector))
                    .await?;
                all.extend(hashes.into_iter().map(|(i, h)| (sector, i, h)));
            }
            Ok(all)
        })
    }

    /// Count and total bytes of the ops held (Kitsune2's `query_total_op_count`, plus bytes).
    ///
    /// # Errors
    /// As [`OpStore::retrieve_ops`].
    fn query_totals(&self) -> LocalBoxFuture<'_, Result<OpTotals, StoreError>>;

    /// Closes this handle. Writes already handed to the backend still commit and their futures
    /// still resolve; every call made afterwards fails with [`StoreError::Closed`]. Idempotent.
    fn close(&self);

    /// The page is going away (`pagehide` of a closing tab): aborts the op writes under way,
    /// whose results the page would not live to see, so that a write made after this call
    /// (the DHT model's, at leave) is not queued behind them. Chromium runs a database's
    /// read-write transactions one at a time and the page's end drops every one still
    /// queued: a model write issued while a sync's op write ran was lost in 6 of 6 closes;
    /// with this call, 29 of 31 closes made at any point of a sync kept the model
    /// (`npm run bench -- close`). The aborted writes' ops are in neither the store nor the
    /// model, and their futures fail (if anyone still polls them). Other calls work as
    /// before. Default: nothing (a store whose writes finish at once).
    fn abandon_writes(&self) {}
}

/// Ops read per [`OpStore::retrieve_ops`] call by [`op_times_by_reading`].
const TIME_READ_BATCH: usize = 1024;

/// [`OpStore::retrieve_op_times_in_time_range`] for any store: the ids from
/// [`OpStore::retrieve_op_hashes_in_time_slice`], then the ops themselves in batches, each
/// decoded for its `created_at`. The result keeps the query's `(created_at, op_id)` order.
///
/// # Errors
/// The store's; [`StoreError::Backend`] for a held op that does not decode.
pub async fn op_times_by_reading<S: OpStore + ?Sized>(
    store: &S,
    arc: DhtArc,
    start: Timestamp,
    end: Timestamp,
) -> Result<Vec<StoredOp>, StoreError> {
    let ids = store
        .retrieve_op_hashes_in_time_slice(arc, start, end)
        .await?
        .op_ids;
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(TIME_READ_BATCH) {
        for op in store.retrieve_ops(chunk.to_vec()).await? {
            let created_at = Op::decode_bytes(&op.op_data)
                .map_err(|e| {
                    StoreError::Backend(format!("held op {} does not decode: {e}", op.op_id))
                })?
                .created_at;
            out.push(StoredOp {
                op_id: op.op_id,
                created_at,
            });
        }
    }
    Ok(out)
}
