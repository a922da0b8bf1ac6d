//! [`load`], [`persist`] and [`collect_op_ids`] against `MemOpStore`, counting store calls.

use std::cell::RefCell;
use std::collections::BTreeMap;

use futures::executor::block_on;
use futures::future::LocalBoxFuture;

use super::*;
use crate::api::{BoundedOpIds, HeldOpsQuery, MetaOp, OpTotals, SectorSliceHash, TimeSliceOpIds};
use crate::core::dht::snapshot::DhtSnapshot;
use crate::core::dht::time::TIME_FACTOR;
use crate::model::arc::SectorSet;
use crate::model::op::Op;
use crate::store::MemOpStore;

/// 2026-12-01T00:00:00Z plus a second (off a unit boundary, like a real clock).
const NOW: Timestamp = Timestamp(1_796_083_201_000_000);
const DAY: i64 = 24 * 3600 * 1_000_000;

/// An [`OpStore`] that counts the calls made to the one it wraps, by method.
pub(super) struct Counting<'a> {
    inner: &'a MemOpStore,
    calls: RefCell<BTreeMap<&'static str, u64>>,
    /// The number of ranges of each `retrieve_op_hashes_in_time_slices` call, in order.
    batches: RefCell<Vec<usize>>,
}

impl<'a> Counting<'a> {
    pub(super) fn new(inner: &'a MemOpStore) -> Self {
        Counting {
            inner,
            calls: RefCell::new(BTreeMap::new()),
            batches: RefCell::new(Vec::new()),
        }
    }

    fn count(&self, name: &'static str) {
        *self.calls.borrow_mut().entry(name).or_default() += 1;
    }

    pub(super) fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut self.calls.borrow_mut())
    }
}

impl OpStore for Counting<'_> {
    fn process_incoming_ops(
        &self,
        ops: Vec<MetaOp>,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        self.count("process_incoming_ops");
        self.inner.process_incoming_ops(ops)
    }
    fn retrieve_ops(
        &self,
        op_ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<MetaOp>, StoreError>> {
        self.count("retrieve_ops");
        self.inner.retrieve_ops(op_ids)
    }
    fn filter_out_existing_ops(
        &self,
        op_ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>> {
        self.count("filter_out_existing_ops");
        self.inner.filter_out_existing_ops(op_ids)
    }
    fn retrieve_op_hashes_in_time_slice(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<TimeSliceOpIds, StoreError>> {
        self.count("retrieve_op_hashes_in_time_slice");
        self.inner.retrieve_op_hashes_in_time_slice(arc, start, end)
    }
    fn retrieve_op_hashes_in_time_slices(
        &self,
        ranges: Vec<(DhtArc, Timestamp, Timestamp)>,
    ) -> LocalBoxFuture<'_, Result<Vec<TimeSliceOpIds>, StoreError>> {
        self.count("retrieve_op_hashes_in_time_slices");
        self.batches.borrow_mut().push(ranges.len());
        self.inner.retrieve_op_hashes_in_time_slices(ranges)
    }
    fn retrieve_held_op_ids(
        &self,
        q: HeldOpsQuery,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>> {
        self.count("retrieve_held_op_ids");
        self.inner.retrieve_held_op_ids(q)
    }
    fn retrieve_op_times_in_time_range(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        self.count("retrieve_op_times_in_time_range");
        self.inner.retrieve_op_times_in_time_range(arc, start, end)
    }
    fn retrieve_op_ids_bounded(
        &self,
        arc: DhtArc,
        start: Timestamp,
        limit_bytes: u32,
    ) -> LocalBoxFuture<'_, Result<BoundedOpIds, StoreError>> {
        self.count("retrieve_op_ids_bounded");
        self.inner.retrieve_op_ids_bounded(arc, start, limit_bytes)
    }
    fn earliest_timestamp_in_arc(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Option<Timestamp>, StoreError>> {
        self.count("earliest_timestamp_in_arc");
        self.inner.earliest_timestamp_in_arc(arc)
    }
    fn store_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
        slice_hash: Bytes,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        self.count("store_slice_hash");
        self.inner.store_slice_hash(arc, slice_index, slice_hash)
    }
    fn store_slice_hashes(
        &self,
        hashes: Vec<(DhtArc, u64, Bytes)>,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        self.count("store_slice_hashes");
        self.inner.store_slice_hashes(hashes)
    }
    fn slice_hash_count(&self, arc: DhtArc) -> LocalBoxFuture<'_, Result<u64, StoreError>> {
        self.count("slice_hash_count");
        self.inner.slice_hash_count(arc)
    }
    fn retrieve_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
    ) -> LocalBoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        self.count("retrieve_slice_hash");
        self.inner.retrieve_slice_hash(arc, slice_index)
    }
    fn retrieve_slice_hashes(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Vec<(u64, Bytes)>, StoreError>> {
        self.count("retrieve_slice_hashes");
        self.inner.retrieve_slice_hashes(arc)
    }
    fn retrieve_sector_slice_hashes(
        &self,
    ) -> LocalBoxFuture<'_, Result<Vec<SectorSliceHash>, StoreError>> {
        self.count("retrieve_sector_slice_hashes");
        self.inner.retrieve_sector_slice_hashes()
    }
    fn query_totals(&self) -> LocalBoxFuture<'_, Result<OpTotals, StoreError>> {
        self.count("query_totals");
        self.inner.query_totals()
    }
    fn close(&self) {
        self.inner.close()
    }
}

/// `n` ops with 100-byte payloads, created evenly over the `days` before `NOW`.
fn ops(n: u64, days: i64) -> Vec<MetaOp> {
    let span = days * DAY;
    (0..n)
        .map(|i| {
            let at = NOW.add_micros(-span + (span / n as i64) * i as i64);
            let mut payload = vec![0u8; 100];
            payload[..8].copy_from_slice(&i.to_le_bytes());
            let op = Op::new(at, payload).unwrap();
            MetaOp {
                op_id: op.id(),
                op_data: op.encode(),
            }
        })
        .collect()
}

fn filled_store(n: u64, days: i64) -> (MemOpStore, Vec<StoredOp>) {
    let store = MemOpStore::new(|| NOW);
    let mut stored = Vec::new();
    for batch in ops(n, days).chunks(5000) {
        stored.extend(block_on(store.process_incoming_ops(batch.to_vec())).unwrap());
    }
    (store, stored)
}

/// Every snapshot kind over the whole ring: two models that agree here agree everywhere.
fn all_snapshots(dht: &Dht) -> Vec<DhtSnapshot> {
    let set = SectorSet::FULL;
    let rings: Vec<u32> = (0..dht.layout().partials().len() as u32).collect();
    let sectors: Vec<u32> = (0..SECTORS).collect();
    vec![
        dht.snapshot_minimal(&set).unwrap(),
        dht.snapshot_disc_sectors(&set).unwrap(),
        dht.snapshot_disc_sector_details(&sectors, &set).unwrap(),
        dht.snapshot_ring_sector_details(&rings, &set).unwrap(),
    ]
}

fn incremental(stored: &[StoredOp], now: Timestamp) -> Dht {
    let mut dht = Dht::new(TIME_FACTOR, Locator::default(), now).unwrap();
    dht.inform_ops_stored(stored);
    dht
}

#[test]
fn load_equals_the_model_built_op_by_op_and_persists_once() {
    let (mem, stored) = filled_store(3000, 60);
    let store = Counting::new(&mem);
    let mut loaded = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    let mut reference = incremental(&stored, NOW);
    assert_eq!(all_snapshots(&loaded), all_snapshots(&reference));
    assert_eq!(loaded.op_count(), 3000);
    let first = store.take();
    // Nothing persisted yet (no watermark): no sector's hashes are read.
    assert!(!first.contains_key("retrieve_sector_slice_hashes"));
    // The 60 days of sealed slices in one query (not one per slice), the recent ops in one,
    // and no op read for its time.
    assert!(loaded.layout().full_slice_count() > 1);
    assert_eq!(first["retrieve_op_times_in_time_range"], 2);
    assert!(!first.contains_key("retrieve_op_hashes_in_time_slice"));
    assert!(!first.contains_key("retrieve_ops"));

    // Persist what the first load computed; a second load reads it back without recomputing.
    let writes = loaded.take_writes();
    let count = loaded.layout().full_slice_count();
    assert_eq!(writes.watermark, Some((count, 3000)));
    assert!(!writes.hashes.is_empty());
    block_on(persist(&store, writes)).unwrap();
    assert_eq!(block_on(mem.slice_hash_count(WATERMARK_ARC)), Ok(count));
    let persisted = store.take();
    assert_eq!(persisted.values().sum::<u64>(), 1, "{persisted:?}");
    assert_eq!(
        persisted["store_slice_hashes"], 1,
        "hashes and watermark in one call"
    );
    let mut again = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    assert_eq!(all_snapshots(&again), all_snapshots(&reference));
    assert_eq!(again.take_writes(), SliceWrites::default());
    let second = store.take();
    // Only the recent ops are listed: no full slice is recomputed.
    assert_eq!(second["retrieve_op_times_in_time_range"], 1);
    // The watermark with its op count in one call (no per-sector `retrieve_slice_hashes`),
    // then every sector's hashes in one call: a warm load is 4 store calls.
    assert_eq!(second["retrieve_slice_hashes"], 1);
    assert_eq!(second["retrieve_sector_slice_hashes"], 1);
    assert!(!second.contains_key("retrieve_slice_hash"));
    assert!(!second.contains_key("slice_hash_count"));
    assert_eq!(second.values().sum::<u64>(), 4, "{second:?}");
    assert!(!second.contains_key("earliest_timestamp_in_arc"));

    // Twenty days on: a load from the old watermark equals the model that lived through them.
    let later = NOW.add_micros(20 * DAY);
    reference.update(later);
    let moved = block_on(load(&store, TIME_FACTOR, Locator::default(), later)).unwrap();
    assert_eq!(all_snapshots(&moved), all_snapshots(&reference));
}

/// Over [`REBUILD_IN_ONE_QUERY_OPS`] ops the sealed slices are rebuilt 64 at a time (here
/// forced: 400 days of 128 h slices are 2 chunks); the model is the same.
#[test]
fn a_large_store_is_rebuilt_in_chunks_of_slices() {
    let (mem, stored) = filled_store(3000, 400);
    let store = Counting::new(&mem);
    let loaded = block_on(load_with(&store, TIME_FACTOR, Locator::default(), NOW, 0)).unwrap();
    assert_eq!(
        all_snapshots(&loaded),
        all_snapshots(&incremental(&stored, NOW))
    );
    // 2 chunks of sealed slices and the recent ops.
    assert_eq!(store.take()["retrieve_op_times_in_time_range"], 3);
    let whole = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    assert_eq!(all_snapshots(&whole), all_snapshots(&loaded));
    assert_eq!(store.take()["retrieve_op_times_in_time_range"], 2);
}

/// Stores `ops(n, days)` in `mem` and tells `dht`, as the space does, without persisting.
fn store_and_inform(mem: &MemOpStore, dht: &mut Dht, n: u64, days: i64) -> Vec<StoredOp> {
    let stored = block_on(mem.process_incoming_ops(ops(n, days))).unwrap();
    dht.inform_ops_stored(&stored);
    stored
}

/// A tab that closes (or reloads) after ops arrived into sealed slices but before its model's
/// hashes were written: the watermark written earlier (here by the empty space's first
/// persist) names fewer ops than the store holds, so the load rebuilds instead of trusting
/// hashes that leave those ops out (it trusted them, and the model stayed without them).
#[test]
fn ops_stored_after_the_last_persist_make_the_next_load_rebuild() {
    let mem = MemOpStore::new(|| NOW);
    let store = Counting::new(&mem);
    let mut live = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    block_on(persist(&store, live.take_writes())).unwrap();
    assert!(block_on(mem.slice_hash_count(WATERMARK_ARC)).unwrap() > 0);
    let stored = store_and_inform(&mem, &mut live, 3000, 60);
    store.take();

    let reloaded = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    assert_eq!(
        all_snapshots(&reloaded),
        all_snapshots(&incremental(&stored, NOW))
    );
    let calls = store.take();
    assert!(
        !calls.contains_key("retrieve_sector_slice_hashes"),
        "{calls:?}"
    );
    assert_eq!(
        calls["earliest_timestamp_in_arc"], 1,
        "rebuilt from the earliest op"
    );
}

/// A write of the model's hashes that fails is carried by the next one: its slices and a
/// watermark with the op count, so the load after it is warm and right.
#[test]
fn a_failed_persist_is_written_again() {
    let mem = MemOpStore::new(|| NOW);
    let mut live = Dht::new(TIME_FACTOR, Locator::default(), NOW).unwrap();
    let mut stored = store_and_inform(&mem, &mut live, 1000, 30);
    block_on(persist(&mem, live.take_writes())).unwrap();
    stored.extend(store_and_inform(&mem, &mut live, 2000, 60));
    let lost = live.take_writes();
    assert!(!lost.hashes.is_empty());
    live.writes_failed(&lost.slices());
    let retry = live.take_writes();
    let slices = |w: &SliceWrites| {
        w.hashes
            .iter()
            .map(|(s, i, _)| (*s, *i))
            .collect::<Vec<_>>()
    };
    assert_eq!(slices(&retry), slices(&lost));
    assert_eq!(
        retry.watermark.map(|(_, ops)| ops),
        Some(stored.len() as u64)
    );
    block_on(persist(&mem, retry)).unwrap();

    let store = Counting::new(&mem);
    let reloaded = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    assert_eq!(
        all_snapshots(&reloaded),
        all_snapshots(&incremental(&stored, NOW))
    );
    assert_eq!(
        store.take()["retrieve_sector_slice_hashes"],
        1,
        "a warm load"
    );
}

#[test]
fn an_empty_store_loads_as_a_new_model_from_two_reads() {
    let mem = MemOpStore::new(|| NOW);
    let store = Counting::new(&mem);
    let mut loaded = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    let reference = incremental(&[], NOW);
    assert_eq!(all_snapshots(&loaded), all_snapshots(&reference));
    assert_eq!(loaded.op_count(), 0);
    let calls = store.take();
    assert_eq!(calls.values().sum::<u64>(), 2, "{calls:?}");
    assert_eq!(calls["retrieve_slice_hashes"], 1);
    assert_eq!(calls["query_totals"], 1);
    // Still marks every sealed slice persisted-to-be: the next load skips them.
    let writes = loaded.take_writes();
    assert_eq!(
        writes.watermark,
        Some((loaded.layout().full_slice_count(), 0))
    );
    block_on(persist(&store, writes)).unwrap();
    store.take();

    // A reload of the empty space: the watermark is there, still no sector read.
    let later = NOW.add_micros(20 * DAY);
    let mut again = block_on(load(&store, TIME_FACTOR, Locator::default(), later)).unwrap();
    assert_eq!(store.take().values().sum::<u64>(), 2);
    assert_eq!(
        all_snapshots(&again),
        all_snapshots(&incremental(&[], later))
    );
    let (sealed, ops) = again.take_writes().watermark.unwrap();
    assert!(sealed > loaded.layout().full_slice_count());
    assert_eq!(ops, 0);
}

#[test]
fn a_partly_persisted_slice_above_the_watermark_is_recomputed() {
    let (mem, stored) = filled_store(500, 30);
    let mut dht = block_on(load(&mem, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    let mut writes = dht.take_writes();
    // A crash after one hash of the last slice was written and before the watermark.
    let (sector, index, _) = writes.hashes.pop().unwrap();
    let arc = DhtArc::of_sectors(sector, sector);
    block_on(mem.store_slice_hash(arc, index, Bytes::from_static(&[0xff; 32]))).unwrap();
    let loaded = block_on(load(&mem, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    assert_eq!(
        all_snapshots(&loaded),
        all_snapshots(&incremental(&stored, NOW))
    );
}

#[test]
fn collect_op_ids_keeps_to_the_byte_limit() {
    let (mem, _) = filled_store(200, 2);
    let dht = block_on(load(&mem, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    let (start, end) = dht.layout().partial_bounds(0).unwrap();
    let ranges: Vec<OpRange> = (0..SECTORS)
        .map(|s| OpRange {
            sector: s,
            arc: DhtArc::of_sectors(s, s),
            start,
            end: end.max(NOW),
        })
        .collect();
    let (all, bytes) = block_on(collect_op_ids(&mem, &ranges, u64::MAX)).unwrap();
    assert_eq!(all.len(), 200);
    assert_eq!(bytes, 200 * 109);
    let (some, used) = block_on(collect_op_ids(&mem, &ranges, 109 * 10)).unwrap();
    assert!(
        !some.is_empty() && some.len() <= 10 && used <= 1090,
        "{} {used}",
        some.len()
    );
}

/// A diff of thousands of ranges is read in a few store reads, 256 ranges first and 4x
/// more each time; the ids are those of reading each range alone.
#[test]
fn collect_op_ids_reads_ever_larger_batches() {
    let (mem, _) = filled_store(200, 2);
    let dht = block_on(load(&mem, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    let (start, end) = dht.layout().partial_bounds(0).unwrap();
    let mid = Timestamp::from_micros((start.as_micros() + end.max(NOW).as_micros()) / 2);
    // Each sector in three time ranges: 1 536 ranges.
    let ranges: Vec<OpRange> = [
        (start, mid),
        (mid, end.max(NOW)),
        (end.max(NOW), NOW.add_micros(DAY)),
    ]
    .into_iter()
    .flat_map(|(start, end)| {
        (0..SECTORS).map(move |s| OpRange {
            sector: s,
            arc: DhtArc::of_sectors(s, s),
            start,
            end,
        })
    })
    .collect();
    let store = Counting::new(&mem);
    let (ids, bytes) = block_on(collect_op_ids(&store, &ranges, u64::MAX)).unwrap();
    assert_eq!(*store.batches.borrow(), [256, 1024, 256]);
    let mut alone = Vec::new();
    for r in &ranges {
        let got = block_on(mem.retrieve_op_hashes_in_time_slice(r.arc, r.start, r.end)).unwrap();
        alone.extend(got.op_ids);
    }
    assert_eq!(ids, alone);
    assert_eq!((ids.len(), bytes), (200, 200 * 109));
}

/// Cold start on 100 000 ops over one year: run with
/// `cargo test --release --lib core::dht::store::tests::cold_start_report -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark: prints one JSON line"]
fn cold_start_report() {
    let n = 100_000;
    let (mem, stored) = filled_store(n, 365);
    let store = Counting::new(&mem);
    let t = std::time::Instant::now();
    let mut first = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    let first_ms = t.elapsed().as_secs_f64() * 1e3;
    let first_calls = store.take();
    let writes = first.take_writes();
    let hashes_written = writes.hashes.len();
    let t = std::time::Instant::now();
    block_on(persist(&store, writes)).unwrap();
    let persist_ms = t.elapsed().as_secs_f64() * 1e3;
    let persist_calls = store.take();
    let t = std::time::Instant::now();
    let second = block_on(load(&store, TIME_FACTOR, Locator::default(), NOW)).unwrap();
    let second_ms = t.elapsed().as_secs_f64() * 1e3;
    let second_calls = store.take();
    let t = std::time::Instant::now();
    let reference = incremental(&stored, NOW);
    let incremental_ms = t.elapsed().as_secs_f64() * 1e3;
    assert_eq!(all_snapshots(&second), all_snapshots(&reference));
    let total = |m: &BTreeMap<&str, u64>| m.values().sum::<u64>();
    let recent = stored
        .iter()
        .filter(|o| o.created_at >= second.layout().full_end())
        .count();
    println!(
        "{}",
        serde_json::json!({
            "bench": "dht_cold_start",
            "ops": n,
            "days": 365,
            "full_slices": second.layout().full_slice_count(),
            "partial_slices": second.layout().partials().len(),
            "recent_ops": recent,
            "first_load_ms": first_ms,
            "first_load_store_calls": total(&first_calls),
            "first_load_calls": first_calls,
            "slice_hashes_written": hashes_written,
            "persist_ms": persist_ms,
            "persist_store_calls": total(&persist_calls),
            "warm_load_ms": second_ms,
            "warm_load_store_calls": total(&second_calls),
            "warm_load_calls": second_calls,
            "inform_all_ops_ms": incremental_ms,
        })
    );
}
