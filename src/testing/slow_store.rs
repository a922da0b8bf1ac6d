//! [`SlowReads`]: an [`OpStore`] whose reads wait on a [`VirtualClock`] first, as a large
//! IndexedDB store's reads take seconds, so driver tests can show what happens meanwhile.

use std::cell::Cell;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::LocalBoxFuture;

use super::VirtualClock;
use crate::api::{
    BoundedOpIds, Clock, HeldOpsQuery, MetaOp, OpStore, OpTotals, SectorSliceHash, StoreError,
    TimeSliceOpIds,
};
use crate::model::arc::DhtArc;
use crate::model::id::OpId;
use crate::model::op::StoredOp;
use crate::model::time::Timestamp;
use crate::store::MemOpStore;

/// A [`MemOpStore`] whose reads of op ids and slice hashes each wait [`Self::set_delay`] of
/// virtual time before they run (zero at first). Writes and op data reads run at once.
pub struct SlowReads {
    inner: MemOpStore,
    clock: VirtualClock,
    delay: Cell<Duration>,
    delayed: Cell<u64>,
}

impl SlowReads {
    /// Wraps `inner`; reads wait on `clock`.
    pub fn new(inner: MemOpStore, clock: VirtualClock) -> Self {
        SlowReads {
            inner,
            clock,
            delay: Cell::new(Duration::ZERO),
            delayed: Cell::new(0),
        }
    }

    /// How long each later read waits.
    pub fn set_delay(&self, delay: Duration) {
        self.delay.set(delay);
    }

    /// Reads that waited so far.
    pub fn delayed_reads(&self) -> u64 {
        self.delayed.get()
    }

    /// Waits the delay, then runs `read`.
    fn slow<'a, T: 'a>(
        &'a self,
        read: LocalBoxFuture<'a, Result<T, StoreError>>,
    ) -> LocalBoxFuture<'a, Result<T, StoreError>> {
        let delay = self.delay.get();
        async move {
            if !delay.is_zero() {
                self.delayed.set(self.delayed.get() + 1);
                let at = self.clock.now().add_micros(delay.as_micros() as i64);
                self.clock.sleep_until(at).await;
            }
            read.await
        }
        .boxed_local()
    }
}

impl OpStore for SlowReads {
    fn process_incoming_ops(
        &self,
        ops: Vec<MetaOp>,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        self.inner.process_incoming_ops(ops)
    }
    fn retrieve_ops(&self, ids: Vec<OpId>) -> LocalBoxFuture<'_, Result<Vec<MetaOp>, StoreError>> {
        self.inner.retrieve_ops(ids)
    }
    fn filter_out_existing_ops(
        &self,
        ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>> {
        self.slow(self.inner.filter_out_existing_ops(ids))
    }
    fn retrieve_op_hashes_in_time_slice(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<TimeSliceOpIds, StoreError>> {
        self.slow(self.inner.retrieve_op_hashes_in_time_slice(arc, start, end))
    }
    fn retrieve_op_hashes_in_time_slices(
        &self,
        ranges: Vec<(DhtArc, Timestamp, Timestamp)>,
    ) -> LocalBoxFuture<'_, Result<Vec<TimeSliceOpIds>, StoreError>> {
        self.slow(self.inner.retrieve_op_hashes_in_time_slices(ranges))
    }
    fn retrieve_held_op_ids(
        &self,
        q: HeldOpsQuery,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>> {
        self.slow(self.inner.retrieve_held_op_ids(q))
    }
    fn retrieve_op_times_in_time_range(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        self.slow(self.inner.retrieve_op_times_in_time_range(arc, start, end))
    }
    fn retrieve_op_ids_bounded(
        &self,
        arc: DhtArc,
        start: Timestamp,
        limit_bytes: u32,
    ) -> LocalBoxFuture<'_, Result<BoundedOpIds, StoreError>> {
        self.slow(self.inner.retrieve_op_ids_bounded(arc, start, limit_bytes))
    }
    fn earliest_timestamp_in_arc(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Option<Timestamp>, StoreError>> {
        self.slow(self.inner.earliest_timestamp_in_arc(arc))
    }
    fn store_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
        slice_hash: Bytes,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        self.inner.store_slice_hash(arc, slice_index, slice_hash)
    }
    fn store_slice_hashes(
        &self,
        hashes: Vec<(DhtArc, u64, Bytes)>,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        self.inner.store_slice_hashes(hashes)
    }
    fn slice_hash_count(&self, arc: DhtArc) -> LocalBoxFuture<'_, Result<u64, StoreError>> {
        self.slow(self.inner.slice_hash_count(arc))
    }
    fn retrieve_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
    ) -> LocalBoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        self.slow(self.inner.retrieve_slice_hash(arc, slice_index))
    }
    fn retrieve_slice_hashes(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Vec<(u64, Bytes)>, StoreError>> {
        self.slow(self.inner.retrieve_slice_hashes(arc))
    }
    fn retrieve_sector_slice_hashes(
        &self,
    ) -> LocalBoxFuture<'_, Result<Vec<SectorSliceHash>, StoreError>> {
        self.slow(self.inner.retrieve_sector_slice_hashes())
    }
    fn query_totals(&self) -> LocalBoxFuture<'_, Result<OpTotals, StoreError>> {
        self.inner.query_totals()
    }
    fn close(&self) {
        self.inner.close()
    }
}
