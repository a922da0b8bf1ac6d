//! [`MemOpStore`]: the in-memory op store, for native tests and simulations (and any target).

use bytes::Bytes;
use futures::future::LocalBoxFuture;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use super::{BoundedAcc, StoredAtClock, check_slice_hash, dedup_ids, prepare_batch, slice_key};
use crate::api::{
    BoundedOpIds, HeldOpsQuery, MetaOp, OpStore, OpTotals, StoreError, TimeSliceOpIds,
    held_op_ids_by_time_slices,
};
use crate::hash::HashMap;
use crate::model::arc::DhtArc;
use crate::model::id::{Locator, OpId};
use crate::model::op::StoredOp;
use crate::model::time::Timestamp;
use crate::sort;

/// An [`OpStore`] in memory: same semantics as the IndexedDB store, no persistence.
///
/// Handles made with [`MemOpStore::reopen`] share the data, like connections to one database,
/// so tests can close a store and open it again. An optional byte quota makes writes fail with
/// [`StoreError::QuotaExceeded`] the way a full browser profile does. The stored-at clock reads
/// an injectable wall clock, so simulations on virtual time stay deterministic.
pub struct MemOpStore {
    db: Rc<RefCell<MemDb>>,
    closed: Cell<bool>,
}

struct MemDb {
    locator: Locator,
    now: Rc<dyn Fn() -> Timestamp>,
    quota_bytes: Option<u64>,
    ops: HashMap<OpId, Record>,
    /// `(created_at, op_id)`: the time-slice and earliest-timestamp index.
    by_time: BTreeSet<(Timestamp, OpId)>,
    /// `(stored_at, op_id)`: the "new ops since" index.
    by_stored: BTreeSet<(Timestamp, OpId)>,
    /// Slice hashes per arc, by slice index (a hash map: ~8 KB less wasm than a B-tree map
    /// type; the list of them is sorted when read).
    slices: HashMap<(u32, u32), HashMap<u64, Bytes>>,
    totals: OpTotals,
    clock: StoredAtClock,
}

struct Record {
    data: Bytes,
    loc: u32,
    created_at: Timestamp,
}

impl std::fmt::Debug for MemOpStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let db = self.db.borrow();
        f.debug_struct("MemOpStore")
            .field("totals", &db.totals)
            .field("closed", &self.closed.get())
            .finish()
    }
}

impl MemOpStore {
    /// An empty store with Kitsune2's default locations ([`Locator::XOR_FOLD`]) and no quota;
    /// `now` is the stored-at clock (the platform's wall clock, or a simulation's virtual one;
    /// this crate's model reads no clock itself).
    pub fn new(now: impl Fn() -> Timestamp + 'static) -> Self {
        MemOpStore {
            db: Rc::new(RefCell::new(MemDb {
                locator: Locator::default(),
                now: Rc::new(now),
                quota_bytes: None,
                ops: HashMap::default(),
                by_time: BTreeSet::new(),
                by_stored: BTreeSet::new(),
                slices: HashMap::default(),
                totals: OpTotals::default(),
                clock: StoredAtClock::default(),
            })),
            closed: Cell::new(false),
        }
    }

    /// Places op ids with `locator` instead (the network's; set it before storing ops).
    pub fn with_locator(self, locator: Locator) -> Self {
        self.db.borrow_mut().locator = locator;
        self
    }

    /// Limits the total encoded bytes held; a batch that would exceed it fails whole with
    /// [`StoreError::QuotaExceeded`].
    pub fn with_quota(self, quota_bytes: u64) -> Self {
        self.db.borrow_mut().quota_bytes = Some(quota_bytes);
        self
    }

    /// A new, open handle on the same data (as opening the same database again would give).
    pub fn reopen(&self) -> MemOpStore {
        MemOpStore {
            db: self.db.clone(),
            closed: Cell::new(false),
        }
    }

    fn open(&self) -> Result<std::cell::Ref<'_, MemDb>, StoreError> {
        if self.closed.get() {
            return Err(StoreError::Closed);
        }
        Ok(self.db.borrow())
    }

    fn open_mut(&self) -> Result<std::cell::RefMut<'_, MemDb>, StoreError> {
        if self.closed.get() {
            return Err(StoreError::Closed);
        }
        Ok(self.db.borrow_mut())
    }

    fn process(&self, ops: Vec<MetaOp>) -> Result<Vec<StoredOp>, StoreError> {
        let mut db = self.open_mut()?;
        let prepared = prepare_batch(ops, &db.locator)?;
        let new: Vec<_> = prepared
            .into_iter()
            .filter(|p| !db.ops.contains_key(&p.op_id))
            .collect();
        let added: u64 = new.iter().map(|p| u64::from(p.len())).sum();
        if let Some(quota) = db.quota_bytes {
            let want = db.totals.op_bytes.saturating_add(added);
            if want > quota {
                return Err(StoreError::QuotaExceeded(format!(
                    "{want} bytes would exceed the quota of {quota} bytes"
                )));
            }
        }
        let now = (db.now)();
        let mut out = Vec::with_capacity(new.len());
        for p in new {
            let stored_at = db.clock.stamp(now);
            db.by_time.insert((p.created_at, p.op_id.clone()));
            db.by_stored.insert((stored_at, p.op_id.clone()));
            db.totals.op_count += 1;
            db.totals.op_bytes = db.totals.op_bytes.saturating_add(u64::from(p.len()));
            out.push(p.stored());
            db.ops.insert(
                p.op_id,
                Record {
                    data: p.data,
                    loc: p.loc,
                    created_at: p.created_at,
                },
            );
        }
        Ok(out)
    }

    fn time_slice(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<TimeSliceOpIds, StoreError> {
        let mut out = TimeSliceOpIds::default();
        self.each_in_time_range(arc, start, end, |_, id, data_len| {
            out.total_bytes = out.total_bytes.saturating_add(data_len as u64);
            out.op_ids.push(id.clone());
        })?;
        Ok(out)
    }

    fn op_times(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<Vec<StoredOp>, StoreError> {
        let mut out = Vec::new();
        self.each_in_time_range(arc, start, end, |created_at, id, _| {
            out.push(StoredOp {
                op_id: id.clone(),
                created_at,
            });
        })?;
        Ok(out)
    }

    /// Calls `f(created_at, id, data length)` for each op in `arc` created in `[start, end)`,
    /// in `(created_at, op_id)` order.
    fn each_in_time_range(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
        mut f: impl FnMut(Timestamp, &OpId, usize),
    ) -> Result<(), StoreError> {
        let db = self.open()?;
        if arc.is_empty() || start >= end {
            return Ok(());
        }
        let lower = (start, OpId::default());
        for (created_at, id) in db.by_time.range(lower..) {
            if *created_at >= end {
                break;
            }
            if let Some(rec) = db.ops.get(id).filter(|r| arc.contains(r.loc)) {
                f(*created_at, id, rec.data.len());
            }
        }
        Ok(())
    }

    fn bounded(
        &self,
        arc: DhtArc,
        start: Timestamp,
        limit_bytes: u32,
    ) -> Result<BoundedOpIds, StoreError> {
        let db = self.open()?;
        let bookmark = db.clock.bookmark((db.now)());
        let mut acc = BoundedAcc::new(arc, limit_bytes);
        if !arc.is_empty() {
            for (stored_at, id) in db.by_stored.range((start, OpId::default())..) {
                let Some(rec) = db.ops.get(id) else { continue };
                let len = u32::try_from(rec.data.len()).unwrap_or(u32::MAX);
                if !acc.offer((id, rec.created_at), rec.loc, len, *stored_at) {
                    break;
                }
            }
        }
        Ok(acc.finish(bookmark))
    }

    fn earliest(&self, arc: DhtArc) -> Result<Option<Timestamp>, StoreError> {
        let db = self.open()?;
        Ok(db
            .by_time
            .iter()
            .find(|(_, id)| db.ops.get(id).is_some_and(|r| arc.contains(r.loc)))
            .map(|(t, _)| *t))
    }
}

impl OpStore for MemOpStore {
    fn process_incoming_ops(
        &self,
        ops: Vec<MetaOp>,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        Box::pin(async move { self.process(ops) })
    }

    fn retrieve_ops(
        &self,
        op_ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<MetaOp>, StoreError>> {
        Box::pin(async move {
            let db = self.open()?;
            Ok(dedup_ids(op_ids)
                .into_iter()
                .filter_map(|op_id| {
                    let op_data = db.ops.get(&op_id)?.data.clone();
                    Some(MetaOp { op_id, op_data })
                })
                .collect())
        })
    }

    fn filter_out_existing_ops(
        &self,
        op_ids: Vec<OpId>,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>> {
        Box::pin(async move {
            let db = self.open()?;
            Ok(dedup_ids(op_ids)
                .into_iter()
                .filter(|id| !db.ops.contains_key(id))
                .collect())
        })
    }

    fn retrieve_op_hashes_in_time_slice(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<TimeSliceOpIds, StoreError>> {
        Box::pin(async move { self.time_slice(arc, start, end) })
    }

    fn retrieve_op_times_in_time_range(
        &self,
        arc: DhtArc,
        start: Timestamp,
        end: Timestamp,
    ) -> LocalBoxFuture<'_, Result<Vec<StoredOp>, StoreError>> {
        Box::pin(async move { self.op_times(arc, start, end) })
    }

    fn retrieve_held_op_ids(
        &self,
        q: HeldOpsQuery,
    ) -> LocalBoxFuture<'_, Result<Vec<OpId>, StoreError>> {
        Box::pin(async move { held_op_ids_by_time_slices(self, &q).await })
    }

    fn retrieve_op_ids_bounded(
        &self,
        arc: DhtArc,
        start: Timestamp,
        limit_bytes: u32,
    ) -> LocalBoxFuture<'_, Result<BoundedOpIds, StoreError>> {
        Box::pin(async move { self.bounded(arc, start, limit_bytes) })
    }

    fn earliest_timestamp_in_arc(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Option<Timestamp>, StoreError>> {
        Box::pin(async move { self.earliest(arc) })
    }

    fn store_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
        slice_hash: Bytes,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut db = self.open_mut()?;
            let key = slice_key(arc)?;
            check_slice_hash(&slice_hash)?;
            db.slices
                .entry(key)
                .or_default()
                .insert(slice_index, slice_hash);
            Ok(())
        })
    }

    /// All or nothing, like one IndexedDB transaction: every entry is checked first.
    fn store_slice_hashes(
        &self,
        hashes: Vec<(DhtArc, u64, Bytes)>,
    ) -> LocalBoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let mut db = self.open_mut()?;
            let mut keyed = Vec::with_capacity(hashes.len());
            for (arc, index, hash) in hashes {
                check_slice_hash(&hash)?;
                keyed.push((slice_key(arc)?, index, hash));
            }
            for (key, index, hash) in keyed {
                db.slices.entry(key).or_default().insert(index, hash);
            }
            Ok(())
        })
    }

    fn slice_hash_count(&self, arc: DhtArc) -> LocalBoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            let db = self.open()?;
            let Ok(key) = slice_key(arc) else {
                return Ok(0);
            };
            Ok(db
                .slices
                .get(&key)
                .and_then(|m| m.keys().max())
                .map_or(0, |i| i.saturating_add(1)))
        })
    }

    fn retrieve_slice_hash(
        &self,
        arc: DhtArc,
        slice_index: u64,
    ) -> LocalBoxFuture<'_, Result<Option<Bytes>, StoreError>> {
        Box::pin(async move {
            let db = self.open()?;
            let Ok(key) = slice_key(arc) else {
                return Ok(None);
            };
            Ok(db
                .slices
                .get(&key)
                .and_then(|m| m.get(&slice_index))
                .cloned())
        })
    }

    fn retrieve_slice_hashes(
        &self,
        arc: DhtArc,
    ) -> LocalBoxFuture<'_, Result<Vec<(u64, Bytes)>, StoreError>> {
        Box::pin(async move {
            let db = self.open()?;
            let Ok(key) = slice_key(arc) else {
                return Ok(Vec::new());
            };
            let mut v: Vec<(u64, Bytes)> = db
                .slices
                .get(&key)
                .map(|m| m.iter().map(|(i, h)| (*i, h.clone())).collect())
                .unwrap_or_default();
            sort::sort_by(&mut v, |a, b| a.0.cmp(&b.0)); // distinct indices
            Ok(v)
        })
    }

    fn query_totals(&self) -> LocalBoxFuture<'_, Result<OpTotals, StoreError>> {
        Box::pin(async move { Ok(self.open()?.totals) })
    }

    fn close(&self) {
        self.closed.set(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::op::Op;
    use futures::executor::block_on;

    struct MemFactory {
        stores: RefCell<HashMap<String, MemOpStore>>,
    }

    impl crate::testing::store_conformance::StoreFactory for MemFactory {
        type Store = MemOpStore;

        fn open<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<MemOpStore, StoreError>> {
            Box::pin(async move {
                let mut stores = self.stores.borrow_mut();
                let store = stores
                    .entry(name.to_string())
                    .or_insert_with(|| MemOpStore::new(system_now));
                Ok(store.reopen())
            })
        }
    }

    fn system_now() -> Timestamp {
        Timestamp::from_system_time(std::time::SystemTime::now())
    }

    fn factory() -> MemFactory {
        MemFactory {
            stores: RefCell::new(HashMap::default()),
        }
    }

    crate::op_store_conformance_tests!(native, factory());

    fn meta(t: i64, payload: &'static [u8]) -> MetaOp {
        let op = Op {
            created_at: Timestamp(t),
            payload: Bytes::from_static(payload),
        };
        MetaOp {
            op_id: op.id(),
            op_data: op.encode(),
        }
    }

    #[test]
    fn quota_exceeded_writes_nothing_of_the_batch() {
        block_on(async {
            let s = MemOpStore::new(system_now).with_quota(30);
            let a = meta(1, b"0123456789");
            assert_eq!(
                s.process_incoming_ops(vec![a.clone()]).await.unwrap().len(),
                1
            );
            let err = s
                .process_incoming_ops(vec![meta(2, b"x"), meta(3, b"0123456789")])
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::QuotaExceeded(_)), "{err}");
            let t = s.query_totals().await.unwrap();
            assert_eq!((t.op_count, t.op_bytes), (1, 19));
            // A repeat of a held op adds nothing, so it is not over quota.
            assert!(s.process_incoming_ops(vec![a]).await.unwrap().is_empty());
        });
    }

    #[test]
    fn virtual_clock_drives_stored_at() {
        block_on(async {
            let now = Rc::new(Cell::new(1_000));
            let n = now.clone();
            let s = MemOpStore::new(move || Timestamp(n.get()));
            s.process_incoming_ops(vec![meta(1, b"a")]).await.unwrap();
            now.set(5_000);
            let b = s
                .retrieve_op_ids_bounded(DhtArc::FULL, Timestamp(0), 0)
                .await
                .unwrap();
            assert_eq!(b.next_bookmark, Timestamp(1_000), "cut at the first op");
            let b = s
                .retrieve_op_ids_bounded(DhtArc::FULL, Timestamp(0), 100)
                .await
                .unwrap();
            assert_eq!(b.next_bookmark, Timestamp(5_000));
        });
    }
}
