//! The [`OpStore`] conformance suite, written once and run against every implementation:
//! [`super::MemOpStore`] natively (`cargo test --lib store`) and `IdbOpStore` in headless
//! Chromium (`tests/store_idb.rs`).
//!
//! Each case is an `async fn(&impl StoreFactory)` that panics on failure; the
//! [`op_store_conformance_tests!`](crate::op_store_conformance_tests) macro turns the list into
//! `#[test]`s (with `futures::executor::block_on`) or `#[wasm_bindgen_test]`s. Op locations are
//! BLAKE3 hashes, so the cases search payloads until an op lands where a case needs it (a few
//! hundred hashes at most). Stores are expected to use [`Locator::default`].

use bytes::Bytes;
use futures::future::LocalBoxFuture;

use crate::api::{HeldOpsQuery, MetaOp, OpStore, OpTotals, StoreError, op_times_by_reading};
use crate::model::arc::DhtArc;
use crate::model::id::{Locator, OpId};
use crate::model::op::{MAX_OP_BYTES, Op, OpError, StoredOp};
use crate::model::time::Timestamp;

/// Opens stores for the suite.
pub trait StoreFactory {
    /// The store under test.
    type Store: OpStore;

    /// Opens the store named `name`, creating it empty the first time; opening a name again
    /// after [`OpStore::close`] must give the same data (a reopened database). Each case uses
    /// its own names, so the factory only has to keep names apart between runs.
    fn open<'a>(&'a self, name: &'a str) -> LocalBoxFuture<'a, Result<Self::Store, StoreError>>;
}

/// Generates one test per conformance case.
///
/// `op_store_conformance_tests!(native, factory_expr)` makes `#[test]`s that run each case with
/// `futures::executor::block_on`; `op_store_conformance_tests!(browser, factory_expr)` makes
/// `#[wasm_bindgen_test::wasm_bindgen_test]` async tests. `factory_expr` is evaluated once per
/// test.
#[doc(hidden)]
#[macro_export]
macro_rules! op_store_conformance_tests {
    ($kind:ident, $factory:expr) => {
        $crate::op_store_conformance_tests!(@cases $kind, $factory;
            empty_store,
            process_and_retrieve,
            duplicates_are_stored_once_and_returned_once,
            wrong_id_rejects_the_whole_batch,
            undecodable_op_rejects_the_whole_batch,
            filter_out_existing_keeps_order_and_drops_repeats,
            time_slice_bounds_and_order,
            time_slice_extreme_timestamps,
            time_slice_arcs_narrow_and_wide,
            time_slices_answer_each_range_as_alone,
            held_pages_list_every_op_once_in_order,
            op_times_match_the_ops,
            wrapping_arcs_return_both_sides,
            empty_arc_gives_nothing,
            earliest_timestamp_in_arc,
            bounded_order_limit_and_bookmark,
            bounded_skips_other_arcs_and_misses_nothing_later,
            slice_hashes,
            slice_hash_batches_are_all_or_nothing,
            sector_slice_hashes_leave_out_other_arcs,
            totals_count_distinct_ops_and_bytes,
            closed_store_refuses_every_call,
            reopen_keeps_everything,
            large_batch_in_one_call,
            large_batch_with_held_ops_stores_only_the_new,
            bulk_reads_of_dense_and_sparse_ids
        );
    };
    (@cases native, $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                futures::executor::block_on($crate::testing::store_conformance::$case(&$factory));
            }
        )*
    };
    (@cases browser, $factory:expr; $($case:ident),* $(,)?) => {
        $(
            #[wasm_bindgen_test::wasm_bindgen_test]
            async fn $case() {
                $crate::testing::store_conformance::$case(&$factory).await;
            }
        )*
    };
}

/// Reading many ids at once (stores may read runs of ids as ranges): exactly the ops asked
/// for come back, in the order asked, whether the ids are all of the store, a dense subset
/// (unrequested ops lie between them) or a sparse one; unknown ids and repeats are handled.
pub async fn bulk_reads_of_dense_and_sparse_ids<F: StoreFactory>(f: &F) {
    let s = open(f, "bulk_reads").await;
    let ops: Vec<MetaOp> = (0..400i64)
        .map(|i| op(i % 37, format!("bulk-{i}")))
        .collect();
    let refs: Vec<&MetaOp> = ops.iter().collect();
    put(&s, &refs).await;
    let unknown: Vec<MetaOp> = (0..20).map(|i| op(i, format!("never-{i}"))).collect();
    // Ids in an order unrelated to their keys: reversed, interleaved with unknown ones.
    let cases: [(&str, Vec<&MetaOp>); 4] = [
        ("all", refs.iter().rev().copied().collect()),
        ("every 3rd", refs.iter().step_by(3).copied().collect()),
        ("every 50th", refs.iter().step_by(50).copied().collect()),
        ("one", vec![refs[7]]),
    ];
    for (name, want) in cases {
        let mut asked: Vec<OpId> = Vec::new();
        for (i, m) in want.iter().enumerate() {
            asked.push(m.op_id.clone());
            if i % 4 == 0 {
                asked.push(unknown[i % unknown.len()].op_id.clone());
            }
            if i % 9 == 0 {
                asked.push(m.op_id.clone());
            }
        }
        let got = s.retrieve_ops(asked.clone()).await.unwrap();
        let expect: Vec<MetaOp> = want.iter().map(|m| (*m).clone()).collect();
        assert_eq!(got, expect, "retrieve {name}");
        let missing = s.filter_out_existing_ops(asked).await.unwrap();
        let mut expect_missing: Vec<OpId> = Vec::new();
        for (i, _) in want.iter().enumerate() {
            let id = &unknown[i % unknown.len()].op_id;
            if i % 4 == 0 && !expect_missing.contains(id) {
                expect_missing.push(id.clone());
            }
        }
        assert_eq!(missing, expect_missing, "filter_out {name}");
    }
    s.close();
}

// ---------------------------------------------------------------------------------------------
// helpers

/// An op created at `t` µs with `payload`, as a peer would send it.
pub fn op(t: i64, payload: impl Into<Vec<u8>>) -> MetaOp {
    let op = Op {
        created_at: Timestamp(t),
        payload: Bytes::from(payload.into()),
    };
    MetaOp {
        op_id: op.id(),
        op_data: op.encode(),
    }
}

/// The op's location under [`Locator::default`].
pub fn loc(m: &MetaOp) -> u32 {
    Locator::default().op_loc(&m.op_id)
}

/// An op created at `t` whose location satisfies `want`: payloads `"{tag}/0"`, `"{tag}/1"`, …
/// until one lands there.
pub fn op_where(t: i64, tag: &str, want: impl Fn(u32) -> bool) -> MetaOp {
    for n in 0..10_000_000u32 {
        let m = op(t, format!("{tag}/{n}"));
        if want(loc(&m)) {
            return m;
        }
    }
    panic!("no op for {tag} lands where the case wants it");
}

/// The sector (`loc >> 23`, 512 of them, Kitsune2 `SECTOR_SIZE`) of a location.
pub fn sector(loc: u32) -> u32 {
    crate::model::arc::sector_of(loc)
}

/// The arc of whole sectors `first..=last`.
pub fn sectors(first: u32, last: u32) -> DhtArc {
    DhtArc::of_sectors(first, last)
}

fn ids(ops: &[&MetaOp]) -> Vec<OpId> {
    ops.iter().map(|m| m.op_id.clone()).collect()
}

fn len(m: &MetaOp) -> u64 {
    m.op_data.len() as u64
}

/// Ids sorted as the time-slice query must return them: `(created_at, op_id)`.
fn by_time(ops: &[&MetaOp]) -> Vec<OpId> {
    let mut s: Vec<StoredOp> = ops
        .iter()
        .map(|m| StoredOp {
            op_id: m.op_id.clone(),
            created_at: Op::decode(&m.op_data).expect("test op decodes").created_at,
        })
        .collect();
    s.sort();
    s.into_iter().map(|s| s.op_id).collect()
}

async fn open<F: StoreFactory>(f: &F, name: &str) -> F::Store {
    match f.open(name).await {
        Ok(s) => s,
        Err(e) => panic!("opening store {name}: {e}"),
    }
}

async fn put<S: OpStore>(s: &S, ops: &[&MetaOp]) -> Vec<StoredOp> {
    let v = ops.iter().map(|m| (*m).clone()).collect();
    match s.process_incoming_ops(v).await {
        Ok(r) => r,
        Err(e) => panic!("process_incoming_ops: {e}"),
    }
}

async fn slice<S: OpStore>(s: &S, arc: DhtArc, start: i64, end: i64) -> Vec<OpId> {
    let r = s
        .retrieve_op_hashes_in_time_slice(arc, Timestamp(start), Timestamp(end))
        .await
        .expect("retrieve_op_hashes_in_time_slice");
    r.op_ids
}

const MIN: Timestamp = Timestamp(i64::MIN);

// ---------------------------------------------------------------------------------------------
// cases

/// A new store holds nothing and answers every query with nothing.
pub async fn empty_store<F: StoreFactory>(f: &F) {
    let s = open(f, "empty_store").await;
    assert_eq!(s.query_totals().await.unwrap(), OpTotals::default());
    let a = op(1, "a");
    assert!(
        s.retrieve_ops(vec![a.op_id.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.filter_out_existing_ops(vec![a.op_id.clone()])
            .await
            .unwrap(),
        vec![a.op_id.clone()]
    );
    let r = s
        .retrieve_op_hashes_in_time_slice(DhtArc::FULL, MIN, Timestamp(i64::MAX))
        .await
        .unwrap();
    assert!(r.op_ids.is_empty());
    assert_eq!(r.total_bytes, 0);
    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, u32::MAX)
        .await
        .unwrap();
    assert!(b.op_ids.is_empty());
    assert_eq!(b.total_bytes, 0);
    assert_eq!(
        s.earliest_timestamp_in_arc(DhtArc::FULL).await.unwrap(),
        None
    );
    assert_eq!(s.slice_hash_count(DhtArc::FULL).await.unwrap(), 0);
    assert!(
        s.retrieve_slice_hashes(DhtArc::FULL)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.retrieve_sector_slice_hashes().await.unwrap().is_empty());
    assert!(
        s.process_incoming_ops(Vec::new()).await.unwrap().is_empty(),
        "an empty batch is fine"
    );
    s.close();
}

/// Stored ops come back byte for byte, in the order asked, each once; unknown ids are skipped.
pub async fn process_and_retrieve<F: StoreFactory>(f: &F) {
    let s = open(f, "process_and_retrieve").await;
    let (a, b, c) = (op(30, "a"), op(10, "b"), op(20, vec![0u8; 1000]));
    let stored = put(&s, &[&a, &b, &c]).await;
    let want: Vec<StoredOp> = [(&a, 30), (&b, 10), (&c, 20)]
        .iter()
        .map(|(m, t)| StoredOp {
            op_id: m.op_id.clone(),
            created_at: Timestamp(*t),
        })
        .collect();
    assert_eq!(
        stored, want,
        "newly stored ops, input order, with created_at"
    );

    let unknown = op(40, "not stored");
    let got = s
        .retrieve_ops(vec![
            c.op_id.clone(),
            unknown.op_id.clone(),
            a.op_id.clone(),
            c.op_id.clone(),
        ])
        .await
        .unwrap();
    assert_eq!(got, vec![c.clone(), a.clone()]);
    let got = s.retrieve_ops(vec![b.op_id.clone()]).await.unwrap();
    assert_eq!(got, vec![b.clone()]);
    assert!(s.retrieve_ops(Vec::new()).await.unwrap().is_empty());
    s.close();
}

/// Repeats (within a batch and across calls) are not errors and are stored and returned once.
pub async fn duplicates_are_stored_once_and_returned_once<F: StoreFactory>(f: &F) {
    let s = open(f, "duplicates").await;
    let (a, b) = (op(1, "a"), op(2, "b"));
    let r = put(&s, &[&a, &a, &b, &a]).await;
    assert_eq!(
        r.iter().map(|s| s.op_id.clone()).collect::<Vec<_>>(),
        ids(&[&a, &b])
    );
    assert!(
        put(&s, &[&a]).await.is_empty(),
        "already held: not returned"
    );
    let c = op(3, "c");
    let r = put(&s, &[&b, &c, &a]).await;
    assert_eq!(
        r.iter().map(|s| s.op_id.clone()).collect::<Vec<_>>(),
        ids(&[&c]),
        "only the new op of a mixed batch"
    );
    let t = s.query_totals().await.unwrap();
    assert_eq!(t.op_count, 3);
    assert_eq!(t.op_bytes, len(&a) + len(&b) + len(&c));
    let all = slice(&s, DhtArc::FULL, i64::MIN, i64::MAX).await;
    assert_eq!(all, ids(&[&a, &b, &c]), "indexes hold each op once");
    let bounded = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, u32::MAX)
        .await
        .unwrap();
    assert_eq!(bounded.op_ids, ids(&[&a, &b, &c]));
    s.close();
}

/// An op whose id is not the hash of its data fails the whole batch; nothing of it is stored.
pub async fn wrong_id_rejects_the_whole_batch<F: StoreFactory>(f: &F) {
    let s = open(f, "wrong_id").await;
    let good = op(1, "good");
    let other = op(2, "other");
    let forged = MetaOp {
        op_id: other.op_id.clone(),
        op_data: op(2, "forged").op_data,
    };
    let err = s
        .process_incoming_ops(vec![good.clone(), forged.clone()])
        .await
        .unwrap_err();
    match &err {
        StoreError::WrongId { op_id, actual } => {
            assert_eq!(op_id, &other.op_id);
            assert_eq!(actual, &op(2, "forged").op_id);
        }
        e => panic!("expected WrongId, got {e}"),
    }
    assert!(err.to_string().contains(&other.op_id.to_b64()), "{err}");
    assert_eq!(s.query_totals().await.unwrap(), OpTotals::default());
    assert!(
        s.retrieve_ops(vec![good.op_id.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(slice(&s, DhtArc::FULL, i64::MIN, i64::MAX).await.is_empty());
    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, u32::MAX)
        .await
        .unwrap();
    assert!(b.op_ids.is_empty(), "nothing half-written");
    // The store still works, and the good op alone is accepted.
    assert_eq!(put(&s, &[&good]).await.len(), 1);
    s.close();
}

/// Data that hashes to its id but is no op envelope (short, unknown version, over
/// `MAX_OP_BYTES`) fails the whole batch with a decode error.
pub async fn undecodable_op_rejects_the_whole_batch<F: StoreFactory>(f: &F) {
    let s = open(f, "undecodable").await;
    let good = op(1, "good");
    let hashed = |data: Vec<u8>| {
        let op_data = Bytes::from(data);
        MetaOp {
            op_id: OpId::from_bytes(blake3::hash(&op_data).as_bytes().to_vec()),
            op_data,
        }
    };
    let short = hashed(vec![1, 2, 3]);
    let mut v = op(5, "x").op_data.to_vec();
    v[0] = 0xee;
    let version = hashed(v);
    let big = hashed(vec![1u8; MAX_OP_BYTES + 1]);
    for bad in [short, version, big] {
        let err = s
            .process_incoming_ops(vec![good.clone(), bad.clone()])
            .await
            .unwrap_err();
        match &err {
            StoreError::Decode { op_id, source } => {
                assert_eq!(op_id, &bad.op_id);
                assert!(!matches!(source, OpError::IdMismatch { .. }));
            }
            e => panic!("expected Decode, got {e}"),
        }
    }
    assert_eq!(s.query_totals().await.unwrap(), OpTotals::default());
    assert!(
        s.retrieve_ops(vec![good.op_id.clone()])
            .await
            .unwrap()
            .is_empty()
    );
    s.close();
}

/// `filter_out_existing_ops` returns the ids not held, in order, without repeats.
pub async fn filter_out_existing_keeps_order_and_drops_repeats<F: StoreFactory>(f: &F) {
    let s = open(f, "filter").await;
    let (a, b, c, d) = (op(1, "a"), op(2, "b"), op(3, "c"), op(4, "d"));
    put(&s, &[&b, &d]).await;
    let r = s
        .filter_out_existing_ops(ids(&[&c, &a, &b, &c, &d, &a]))
        .await
        .unwrap();
    assert_eq!(r, ids(&[&c, &a]));
    assert!(
        s.filter_out_existing_ops(Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.filter_out_existing_ops(ids(&[&b, &d]))
            .await
            .unwrap()
            .is_empty()
    );
    s.close();
}

/// `[start, end)` by `created_at`: start included, end excluded, ascending, ties by op id,
/// bytes summed; `start >= end` gives nothing.
pub async fn time_slice_bounds_and_order<F: StoreFactory>(f: &F) {
    let s = open(f, "time_slice_bounds").await;
    let (a, b, c) = (op(100, "a"), op(200, "b"), op(300, "c"));
    let (t1, t2, t3) = (op(200, "tie-1"), op(200, "tie-2"), op(200, "tie-3"));
    put(&s, &[&c, &t2, &a, &t3, &b, &t1]).await;

    let all = [&a, &b, &c, &t1, &t2, &t3];
    let r = s
        .retrieve_op_hashes_in_time_slice(DhtArc::FULL, Timestamp(100), Timestamp(301))
        .await
        .unwrap();
    assert_eq!(r.op_ids, by_time(&all));
    assert_eq!(r.total_bytes, all.iter().map(|m| len(m)).sum::<u64>());

    let mid = [&b, &t1, &t2, &t3];
    let r = s
        .retrieve_op_hashes_in_time_slice(DhtArc::FULL, Timestamp(200), Timestamp(300))
        .await
        .unwrap();
    assert_eq!(r.op_ids, by_time(&mid), "start inclusive, end exclusive");
    assert_eq!(r.total_bytes, mid.iter().map(|m| len(m)).sum::<u64>());

    assert_eq!(slice(&s, DhtArc::FULL, 101, 200).await, Vec::<OpId>::new());
    assert_eq!(slice(&s, DhtArc::FULL, 300, 301).await, ids(&[&c]));
    assert_eq!(slice(&s, DhtArc::FULL, 100, 101).await, ids(&[&a]));
    assert!(
        slice(&s, DhtArc::FULL, 200, 200).await.is_empty(),
        "start == end"
    );
    assert!(
        slice(&s, DhtArc::FULL, 300, 100).await.is_empty(),
        "start > end"
    );
    let r = s
        .retrieve_op_hashes_in_time_slice(DhtArc::FULL, Timestamp(300), Timestamp(100))
        .await
        .unwrap();
    assert_eq!(r.total_bytes, 0);
    s.close();
}

/// `retrieve_op_times_in_time_range` gives the time-slice query's ops, in its order, each with
/// its `created_at`: the same as reading every op ([`op_times_by_reading`]), through the whole
/// ring, one sector and a wrapping arc, with bounds inside a run of equal times.
pub async fn op_times_match_the_ops<F: StoreFactory>(f: &F) {
    let s = open(f, "op_times").await;
    let a = op_where(100, "times-a", |l| sector(l) == 7);
    let b = op_where(200, "times-b", |l| sector(l) == 7);
    let c = op_where(200, "times-c", |l| sector(l) == 300);
    let d = op_where(300, "times-d", |l| l >= 0xF000_0000);
    let e = op_where(i64::MAX - 1, "times-e", |l| sector(l) == 0);
    put(&s, &[&e, &d, &c, &b, &a]).await;
    let cases = [
        (DhtArc::FULL, i64::MIN, i64::MAX),
        (DhtArc::FULL, 200, 301),
        (DhtArc::FULL, 200, 200),
        (sectors(7, 7), 0, 1000),
        (DhtArc::Arc(0xF000_0000, 0x0000_FFFF), i64::MIN, i64::MAX),
    ];
    for (arc, start, end) in cases {
        let (start, end) = (Timestamp(start), Timestamp(end));
        let got = s.retrieve_op_times_in_time_range(arc, start, end).await;
        let want = op_times_by_reading(&s, arc, start, end).await;
        assert_eq!(got, want, "{arc:?} [{start:?}, {end:?})");
        let ids: Vec<OpId> = got.unwrap().into_iter().map(|o| o.op_id).collect();
        assert_eq!(
            ids,
            slice(&s, arc, start.0, end.0).await,
            "{arc:?}: the slice's ids"
        );
    }
    let all = s
        .retrieve_op_times_in_time_range(DhtArc::FULL, MIN, Timestamp(i64::MAX))
        .await
        .unwrap();
    let times: Vec<i64> = all.iter().map(|o| o.created_at.0).collect();
    assert_eq!(times, [100, 200, 200, 300, i64::MAX - 1]);
    s.close();
}

/// The whole i64 µs range orders exactly (no float rounding), also through a narrow arc.
pub async fn time_slice_extreme_timestamps<F: StoreFactory>(f: &F) {
    let s = open(f, "time_slice_extreme").await;
    let times = [
        i64::MIN,
        i64::MIN + 1,
        -(1 << 53) - 1,
        -1,
        0,
        1,
        (1 << 53) + 1,
        (1 << 53) + 2,
        i64::MAX - 1,
        i64::MAX,
    ];
    let ops: Vec<MetaOp> = times
        .iter()
        .map(|t| op_where(*t, &format!("extreme{t}"), |l| sector(l) == 7))
        .collect();
    let refs: Vec<&MetaOp> = ops.iter().rev().collect();
    put(&s, &refs).await;
    let in_order: Vec<OpId> = ops.iter().map(|m| m.op_id.clone()).collect();
    let narrow = sectors(7, 7);
    for arc in [DhtArc::FULL, narrow] {
        assert_eq!(
            slice(&s, arc, i64::MIN, i64::MAX).await,
            in_order[..9].to_vec(),
            "i64::MAX is excluded by the open end"
        );
        assert_eq!(
            slice(&s, arc, (1 << 53) + 1, (1 << 53) + 2).await,
            vec![in_order[6].clone()]
        );
        assert_eq!(
            slice(&s, arc, i64::MIN + 1, -1).await,
            in_order[1..3].to_vec()
        );
        assert_eq!(
            slice(&s, arc, i64::MAX - 1, i64::MAX).await,
            vec![in_order[8].clone()]
        );
        assert_eq!(
            s.earliest_timestamp_in_arc(arc).await.unwrap(),
            Some(Timestamp(i64::MIN))
        );
    }
    s.close();
}

/// Arcs narrow (part of one sector, whole sectors) and wide (most of the ring) select exactly
/// the ops whose location they hold.
pub async fn time_slice_arcs_narrow_and_wide<F: StoreFactory>(f: &F) {
    let s = open(f, "time_slice_arcs").await;
    let a = op_where(10, "arc-a", |l| sector(l) == 100);
    let b = op_where(20, "arc-b", |l| sector(l) == 100 && l != loc(&a));
    let c = op_where(30, "arc-c", |l| sector(l) == 101);
    let d = op_where(40, "arc-d", |l| sector(l) == 300);
    let e = op_where(50, "arc-e", |l| sector(l) == 511);
    let z = op_where(60, "arc-z", |l| sector(l) == 0);
    put(&s, &[&e, &d, &c, &b, &a, &z]).await;
    let (la, lb) = (loc(&a), loc(&b));
    let q = |arc| slice(&s, arc, i64::MIN, i64::MAX);

    assert_eq!(q(DhtArc::Arc(la, la)).await, ids(&[&a]), "one location");
    assert_eq!(
        q(DhtArc::Arc(la.min(lb), la.max(lb))).await,
        by_time(&[&a, &b]),
        "part of a sector"
    );
    assert_eq!(q(sectors(100, 101)).await, ids(&[&a, &b, &c]));
    assert_eq!(q(sectors(101, 101)).await, ids(&[&c]));
    assert_eq!(q(sectors(102, 299)).await, Vec::<OpId>::new());
    assert_eq!(q(sectors(1, 400)).await, ids(&[&a, &b, &c, &d]), "wide");
    assert_eq!(
        q(DhtArc::Arc(lb.max(la), u32::MAX)).await,
        by_time(&[if lb > la { &b } else { &a }, &c, &d, &e]),
        "wide, from inside a sector to the end of the ring"
    );
    assert_eq!(q(DhtArc::FULL).await, ids(&[&a, &b, &c, &d, &e, &z]));
    assert_eq!(q(sectors(0, 0)).await, ids(&[&z]));
    assert_eq!(q(sectors(511, 511)).await, ids(&[&e]));

    let r = s
        .retrieve_op_hashes_in_time_slice(sectors(100, 101), Timestamp(20), Timestamp(31))
        .await
        .unwrap();
    assert_eq!(r.op_ids, ids(&[&b, &c]));
    assert_eq!(r.total_bytes, len(&b) + len(&c));
    s.close();
}

/// Many ranges in one read ([`OpStore::retrieve_op_hashes_in_time_slices`]) answer each
/// range as it would be answered alone, in the order asked: ranges sharing a sector or
/// overlapping in time, one part of a sector, a wrapping arc, an empty arc, an empty time
/// window, and the same range twice; ranges holding few of the store's ops (a store may
/// read those by index) and ranges holding all of them (a store may scan).
pub async fn time_slices_answer_each_range_as_alone<F: StoreFactory>(f: &F) {
    let s = open(f, "time_slices").await;
    let a = op_where(10, "many-a", |l| sector(l) == 100);
    let b = op_where(20, "many-b", |l| sector(l) == 100 && l != loc(&a));
    let c = op_where(30, "many-c", |l| sector(l) == 101);
    let d = op_where(40, "many-d", |l| sector(l) == 511);
    let e = op_where(50, "many-e", |l| sector(l) == 0);
    put(&s, &[&e, &d, &c, &b, &a]).await;
    let filler: Vec<MetaOp> = (0..200)
        .map(|k| op_where(1_000 + k, &format!("filler-{k}"), |l| sector(l) >= 200))
        .collect();
    put(&s, &filler.iter().collect::<Vec<_>>()).await;
    let t = Timestamp;
    let few = vec![
        (sectors(100, 100), t(0), t(15)),
        (sectors(100, 100), t(15), t(100)),
        (sectors(100, 101), t(0), t(100)),
        (DhtArc::Arc(loc(&a), loc(&a)), t(0), t(100)),
        (sectors(511, 0), t(0), t(100)),
        (DhtArc::Empty, t(0), t(100)),
        (sectors(100, 101), t(30), t(30)),
        (DhtArc::FULL, t(20), t(41)),
        (sectors(100, 100), t(0), t(15)),
    ];
    let mut all = few.clone();
    all.push((DhtArc::FULL, t(i64::MIN), t(i64::MAX)));
    for ranges in [few, all] {
        let many = s
            .retrieve_op_hashes_in_time_slices(ranges.clone())
            .await
            .expect("retrieve_op_hashes_in_time_slices");
        assert_eq!(many.len(), ranges.len());
        for ((arc, start, end), got) in ranges.into_iter().zip(many) {
            let alone = s
                .retrieve_op_hashes_in_time_slice(arc, start, end)
                .await
                .unwrap();
            assert_eq!(got, alone, "{arc:?} {start:?}..{end:?}");
        }
    }
    let sizes = s
        .retrieve_op_hashes_in_time_slices(vec![(sectors(100, 101), t(0), t(100))])
        .await
        .unwrap();
    assert_eq!(sizes[0].op_ids, ids(&[&a, &b, &c]));
    assert_eq!(sizes[0].total_bytes, len(&a) + len(&b) + len(&c));
    assert!(
        s.retrieve_op_hashes_in_time_slices(Vec::new())
            .await
            .unwrap()
            .is_empty()
    );
    s.close();
}

/// Pages of held ops ([`OpStore::retrieve_held_op_ids`], `space.ops`), each after the last
/// op of the one before, list every op once in `(created_at, op_id)` order or its reverse:
/// through 40 ops of one µs spread over the ring, times either side of 0, and two ops whose
/// times differ but round to one f64 (past 2^53 µs) in one sector, the later with the
/// smaller id. A range and a cursor that is not held, or lies outside the range, bound a page
/// as they bound the whole.
/// Pages of 3 and of 50: a store may answer small pages another way (IndexedDB merges one
/// cursor per sector for the first and lists the range for the second).
pub async fn held_pages_list_every_op_once_in_order<F: StoreFactory>(f: &F) {
    let s = open(f, "held_pages").await;
    let mut ops: Vec<MetaOp> = (0..40).map(|k| op(1_000, format!("tie-{k}"))).collect();
    ops.extend((0..12).map(|k| op(-3 + k * 500, format!("spread-{k}"))));
    let far = op_where(1 << 53, "far", |l| sector(l) == 7);
    let later = (0..)
        .map(|n| op((1 << 53) + 1, format!("far-later/{n}")))
        .find(|m| sector(loc(m)) == 7 && m.op_id < far.op_id)
        .expect("an op in sector 7 with a smaller id");
    ops.extend([far, later, op(i64::MIN, "min"), op(i64::MAX - 1, "max")]);
    put(&s, &ops.iter().collect::<Vec<_>>()).await;
    let mut order: Vec<(Timestamp, OpId)> = ops
        .iter()
        .map(|m| {
            (
                Op::decode_bytes(&m.op_data).unwrap().created_at,
                m.op_id.clone(),
            )
        })
        .collect();
    order.sort();
    let want = |q: &HeldOpsQuery| {
        let mut w: Vec<OpId> = order
            .iter()
            .filter(|(t, _)| q.start <= *t && *t < q.end)
            .filter(|k| match &q.after {
                None => true,
                Some(a) if q.newest_first => *k < a,
                Some(a) => *k > a,
            })
            .map(|(_, id)| id.clone())
            .collect();
        if q.newest_first {
            w.reverse();
        }
        w
    };
    let read = |q: HeldOpsQuery| async {
        s.retrieve_held_op_ids(q)
            .await
            .expect("retrieve_held_op_ids")
    };
    let tie_id = order
        .iter()
        .find(|(t, _)| *t == Timestamp(1_000))
        .unwrap()
        .1
        .clone();
    let mut absent = tie_id.as_bytes().to_vec();
    absent[31] ^= 1;
    let ranges = [
        (HeldOpsQuery::ALL.start, HeldOpsQuery::ALL.end, None),
        (Timestamp(0), Timestamp(2_000), None),
        (
            Timestamp(500),
            Timestamp(1 << 53),
            Some((Timestamp(1_000), OpId::from_bytes(absent))),
        ),
        // A cursor before the range, then past it: all or nothing, by direction.
        (
            Timestamp(500),
            Timestamp(2_000),
            Some((Timestamp(-10), tie_id.clone())),
        ),
        (
            Timestamp(500),
            Timestamp(2_000),
            Some((Timestamp(5_000), tie_id.clone())),
        ),
    ];
    for (start, end, first_after) in ranges {
        for newest_first in [false, true] {
            for limit in [3, 50] {
                let whole = HeldOpsQuery {
                    start,
                    end,
                    newest_first,
                    after: first_after.clone(),
                    limit: None,
                };
                assert_eq!(read(whole.clone()).await, want(&whole), "{whole:?}");
                let mut q = HeldOpsQuery {
                    limit: Some(limit),
                    ..whole.clone()
                };
                let mut listed = Vec::new();
                loop {
                    let page = read(q.clone()).await;
                    assert!(page.len() <= limit);
                    assert_eq!(
                        page,
                        want(&q).into_iter().take(limit).collect::<Vec<_>>(),
                        "{q:?}"
                    );
                    let Some(last) = page.last() else { break };
                    let at = order.iter().find(|(_, id)| id == last).unwrap().0;
                    q.after = Some((at, last.clone()));
                    listed.extend(page);
                }
                assert_eq!(listed, want(&whole), "pages of {limit}: {whole:?}");
            }
        }
    }
    let none = HeldOpsQuery {
        limit: Some(0),
        ..HeldOpsQuery::ALL
    };
    assert!(read(none).await.is_empty());
    s.close();
}

/// A wrapping arc (start > end) holds both ends of the ring: every arc query returns ops on
/// both sides and nothing from the middle.
pub async fn wrapping_arcs_return_both_sides<F: StoreFactory>(f: &F) {
    let s = open(f, "wrapping").await;
    let top = op_where(300, "wrap-top", |l| l >= 0xF000_0000);
    let bottom = op_where(200, "wrap-bottom", |l| l <= 0x0FFF_FFFF);
    let middle = op_where(100, "wrap-middle", |l| {
        (0x7000_0000..=0x8FFF_FFFF).contains(&l)
    });
    put(&s, &[&top, &middle, &bottom]).await;

    let narrow = DhtArc::Arc(0xF000_0000, 0x0FFF_FFFF); // 64 sectors
    let wide = DhtArc::Arc(0xC000_0000, 0x3FFF_FFFF); // 256 sectors
    for arc in [narrow, wide] {
        assert_eq!(
            slice(&s, arc, i64::MIN, i64::MAX).await,
            ids(&[&bottom, &top]),
            "{arc:?}"
        );
        assert_eq!(slice(&s, arc, 250, 301).await, ids(&[&top]));
        assert_eq!(
            s.earliest_timestamp_in_arc(arc).await.unwrap(),
            Some(Timestamp(200))
        );
        let b = s.retrieve_op_ids_bounded(arc, MIN, u32::MAX).await.unwrap();
        assert_eq!(b.op_ids, ids(&[&top, &bottom]), "stored order");
        assert_eq!(
            b.created_at,
            vec![Timestamp(300), Timestamp(200)],
            "each op's"
        );
        assert_eq!(b.total_bytes as u64, len(&top) + len(&bottom));
    }
    // Start and end in one sector, wrapping: everything but one location.
    let lm = loc(&middle);
    let all_but_middle = DhtArc::Arc(lm + 1, lm - 1);
    assert_eq!(
        slice(&s, all_but_middle, i64::MIN, i64::MAX).await,
        ids(&[&bottom, &top])
    );
    assert_eq!(
        s.earliest_timestamp_in_arc(all_but_middle).await.unwrap(),
        Some(Timestamp(200))
    );
    let just_middle = DhtArc::Arc(lm, lm);
    assert_eq!(
        slice(&s, just_middle, i64::MIN, i64::MAX).await,
        ids(&[&middle])
    );
    s.close();
}

/// An empty arc holds nothing: every arc query returns nothing, and it names no slice.
pub async fn empty_arc_gives_nothing<F: StoreFactory>(f: &F) {
    let s = open(f, "empty_arc").await;
    let a = op(1, "a");
    put(&s, &[&a]).await;
    let e = DhtArc::Empty;
    let r = s
        .retrieve_op_hashes_in_time_slice(e, MIN, Timestamp(i64::MAX))
        .await
        .unwrap();
    assert!(r.op_ids.is_empty());
    assert_eq!(r.total_bytes, 0);
    let b = s.retrieve_op_ids_bounded(e, MIN, u32::MAX).await.unwrap();
    assert!(b.op_ids.is_empty());
    assert_eq!(b.total_bytes, 0);
    assert!(b.next_bookmark > MIN);
    assert_eq!(s.earliest_timestamp_in_arc(e).await.unwrap(), None);
    let err = s
        .store_slice_hash(e, 0, Bytes::from_static(b"h"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(s.slice_hash_count(e).await.unwrap(), 0);
    assert_eq!(s.retrieve_slice_hash(e, 0).await.unwrap(), None);
    assert!(s.retrieve_slice_hashes(e).await.unwrap().is_empty());
    s.close();
}

/// `earliest_timestamp_in_arc` is the smallest `created_at` among the ops in the arc.
pub async fn earliest_timestamp_in_arc<F: StoreFactory>(f: &F) {
    let s = open(f, "earliest").await;
    let a = op_where(500, "early-a", |l| sector(l) == 10);
    let b = op_where(-20, "early-b", |l| sector(l) == 200);
    let c = op_where(7, "early-c", |l| sector(l) == 200);
    let d = op_where(3, "early-d", |l| sector(l) == 201);
    put(&s, &[&a, &b, &c]).await;
    let e = |arc| s.earliest_timestamp_in_arc(arc);
    assert_eq!(e(DhtArc::FULL).await.unwrap(), Some(Timestamp(-20)));
    assert_eq!(e(sectors(10, 10)).await.unwrap(), Some(Timestamp(500)));
    assert_eq!(e(sectors(200, 201)).await.unwrap(), Some(Timestamp(-20)));
    assert_eq!(e(sectors(11, 199)).await.unwrap(), None);
    assert_eq!(e(sectors(201, 511)).await.unwrap(), None);
    let lc = loc(&c);
    assert_eq!(
        e(DhtArc::Arc(lc, lc)).await.unwrap(),
        Some(Timestamp(7)),
        "the earlier op b shares the sector but not the location"
    );
    put(&s, &[&d]).await;
    assert_eq!(e(sectors(201, 511)).await.unwrap(), Some(Timestamp(3)));
    assert_eq!(e(sectors(0, 199)).await.unwrap(), Some(Timestamp(500)));
    s.close();
}

/// "New ops since": stored order (calls in sequence, a batch in input order), a byte limit
/// that stops at the first op that does not fit, and bookmarks that resume exactly there.
pub async fn bounded_order_limit_and_bookmark<F: StoreFactory>(f: &F) {
    let s = open(f, "bounded").await;
    // created_at deliberately unrelated to stored order.
    let o: Vec<MetaOp> = (0..5)
        .map(|i| op(1000 - i, format!("bounded-{i}-{}", "x".repeat(i as usize))))
        .collect();
    put(&s, &[&o[0]]).await;
    put(&s, &[&o[1]]).await;
    put(&s, &[&o[2]]).await;
    put(&s, &[&o[3], &o[4]]).await;
    let all: Vec<&MetaOp> = o.iter().collect();

    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, u32::MAX)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&all));
    assert_eq!(
        b.total_bytes as u64,
        all.iter().map(|m| len(m)).sum::<u64>()
    );
    let end = b.next_bookmark;

    let limit = (len(&o[0]) + len(&o[1])) as u32;
    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, limit)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&all[..2]), "exactly fits two");
    assert_eq!(b.total_bytes, limit);
    let limit2 = (len(&o[2]) + len(&o[3])) as u32;
    let b2 = s
        .retrieve_op_ids_bounded(DhtArc::FULL, b.next_bookmark, limit2 + 1)
        .await
        .unwrap();
    assert_eq!(
        b2.op_ids,
        ids(&all[2..4]),
        "resumes at the op that did not fit"
    );
    let b3 = s
        .retrieve_op_ids_bounded(DhtArc::FULL, b2.next_bookmark, u32::MAX)
        .await
        .unwrap();
    assert_eq!(b3.op_ids, ids(&all[4..]));
    assert!(b3.next_bookmark >= end, "bookmarks never go back");

    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, (len(&o[0]) - 1) as u32)
        .await
        .unwrap();
    assert!(b.op_ids.is_empty(), "the first op does not fit");
    assert_eq!(b.total_bytes, 0);
    let again = s
        .retrieve_op_ids_bounded(DhtArc::FULL, b.next_bookmark, u32::MAX)
        .await
        .unwrap();
    assert_eq!(
        again.op_ids,
        ids(&all),
        "a cut before the first op loses nothing"
    );

    let z = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, 0)
        .await
        .unwrap();
    assert!(z.op_ids.is_empty());
    assert_eq!(z.next_bookmark, b.next_bookmark);

    let none = s
        .retrieve_op_ids_bounded(DhtArc::FULL, end, u32::MAX)
        .await
        .unwrap();
    assert!(
        none.op_ids.is_empty(),
        "nothing stored after the end bookmark"
    );
    assert!(none.next_bookmark >= end, "bookmarks never go back");
    s.close();
}

/// Ops outside the arc are skipped without using the budget; after an exhausted query, the
/// bookmark catches every op stored later and nothing earlier.
pub async fn bounded_skips_other_arcs_and_misses_nothing_later<F: StoreFactory>(f: &F) {
    let s = open(f, "bounded_arcs").await;
    let low = |tag: &str| op_where(1, tag, |l| l < 0x8000_0000);
    let high = |tag: &str| op_where(1, tag, |l| l >= 0x8000_0000);
    let (l1, h1, l2, h2) = (low("l1"), high("h1"), low("l2"), high("h2"));
    put(&s, &[&l1, &h1, &l2, &h2]).await;
    let lower_half = DhtArc::Arc(0, 0x7FFF_FFFF);

    let limit = (len(&l1) + len(&l2)) as u32;
    let b = s
        .retrieve_op_ids_bounded(lower_half, MIN, limit)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&[&l1, &l2]), "high ops use no budget");
    assert_eq!(b.total_bytes, limit);
    let bookmark = b.next_bookmark;
    let b = s
        .retrieve_op_ids_bounded(lower_half, bookmark, limit)
        .await
        .unwrap();
    assert!(b.op_ids.is_empty(), "exhausted: nothing repeats");

    let (l3, h3) = (low("l3"), high("h3"));
    put(&s, &[&h3]).await;
    put(&s, &[&l3]).await;
    let b = s
        .retrieve_op_ids_bounded(lower_half, bookmark, u32::MAX)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&[&l3]), "stored after the bookmark: found");
    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, bookmark, u32::MAX)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&[&h3, &l3]));

    // Cut at an op in the arc: the bookmark is that op, ops outside before it are not counted.
    let limit = len(&l1) as u32;
    let b = s
        .retrieve_op_ids_bounded(lower_half, MIN, limit)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&[&l1]));
    let b = s
        .retrieve_op_ids_bounded(lower_half, b.next_bookmark, u32::MAX)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&[&l2, &l3]));
    s.close();
}

/// `store_slice_hashes`: a batch over several arcs lands whole, later entries win over
/// earlier ones for the same key, and a batch with one bad entry (an empty hash, last)
/// stores nothing.
pub async fn slice_hash_batches_are_all_or_nothing<F: StoreFactory>(f: &F) {
    let s = open(f, "slice_hash_batches").await;
    let (a, b) = (sectors(3, 3), sectors(4, 4));
    let h = |x: &str| Bytes::from(x.as_bytes().to_vec());
    s.store_slice_hashes(vec![
        (a, 0, h("a0")),
        (b, 7, h("b7")),
        (a, 0, h("a0-later")),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.retrieve_slice_hashes(a).await.unwrap(),
        vec![(0, h("a0-later"))]
    );
    assert_eq!(
        s.retrieve_slice_hashes(b).await.unwrap(),
        vec![(7, h("b7"))]
    );
    let bad = s
        .store_slice_hashes(vec![(a, 1, h("a1")), (b, 8, Bytes::new())])
        .await;
    assert!(matches!(bad, Err(StoreError::Invalid(_))), "{bad:?}");
    assert_eq!(
        s.retrieve_slice_hash(a, 1).await.unwrap(),
        None,
        "nothing landed"
    );
    s.store_slice_hashes(Vec::new()).await.unwrap();
    s.close();
}

/// `retrieve_sector_slice_hashes`: every sector arc's hashes, by sector then index (over the
/// whole u64 index range), and none of the other arcs': the watermark's `Arc(0, 0)`, the full
/// ring, an arc of two sectors, a wrapping arc, an arc inside one sector.
pub async fn sector_slice_hashes_leave_out_other_arcs<F: StoreFactory>(f: &F) {
    let s = open(f, "sector_slice_hashes").await;
    let h = |x: &str| Bytes::from(x.as_bytes().to_vec());
    let high = (1u64 << 32) + 1;
    s.store_slice_hashes(vec![
        (sectors(511, 511), 0, h("s511")),
        (sectors(4, 4), high, h("s4-high")),
        (DhtArc::Arc(0, 0), 5, h("watermark")),
        (sectors(4, 4), 2, h("s4-2")),
        (DhtArc::FULL, 3, h("full")),
        (sectors(5, 6), 0, h("two")),
        (DhtArc::Arc(u32::MAX - 5, 5), 9, h("wrap")),
        (DhtArc::Arc(1 << 23, (1 << 23) + 9), 1, h("inside")),
        (sectors(0, 0), 1, h("s0")),
        (sectors(3, 3), 7, h("s3")),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.retrieve_sector_slice_hashes().await.unwrap(),
        vec![
            (0, 1, h("s0")),
            (3, 7, h("s3")),
            (4, 2, h("s4-2")),
            (4, high, h("s4-high")),
            (511, 0, h("s511")),
        ]
    );
    s.close();
}

/// Slice hashes: per arc, sparse, last write wins, listed by index, count = highest + 1,
/// exact over the whole u64 range; empty hashes refused.
pub async fn slice_hashes<F: StoreFactory>(f: &F) {
    let s = open(f, "slice_hashes").await;
    let a = sectors(3, 3);
    let b = sectors(4, 4);
    let wrap = DhtArc::Arc(u32::MAX - 5, 5);
    let unwrap = DhtArc::Arc(5, u32::MAX - 5);
    let h = |x: &str| Bytes::from(x.as_bytes().to_vec());

    assert_eq!(s.slice_hash_count(a).await.unwrap(), 0);
    assert_eq!(s.retrieve_slice_hash(a, 0).await.unwrap(), None);
    s.store_slice_hash(a, 0, h("a0")).await.unwrap();
    s.store_slice_hash(a, 5, h("a5")).await.unwrap();
    s.store_slice_hash(a, 2, h("a2")).await.unwrap();
    assert_eq!(s.slice_hash_count(a).await.unwrap(), 6, "highest index + 1");
    assert_eq!(
        s.retrieve_slice_hashes(a).await.unwrap(),
        vec![(0, h("a0")), (2, h("a2")), (5, h("a5"))]
    );
    assert_eq!(s.retrieve_slice_hash(a, 5).await.unwrap(), Some(h("a5")));
    assert_eq!(s.retrieve_slice_hash(a, 1).await.unwrap(), None);
    s.store_slice_hash(a, 2, h("a2-new")).await.unwrap();
    assert_eq!(
        s.retrieve_slice_hash(a, 2).await.unwrap(),
        Some(h("a2-new"))
    );
    assert_eq!(s.slice_hash_count(a).await.unwrap(), 6);

    assert_eq!(s.slice_hash_count(b).await.unwrap(), 0, "arcs are separate");
    assert!(s.retrieve_slice_hashes(b).await.unwrap().is_empty());
    s.store_slice_hash(b, 1, h("b1")).await.unwrap();
    assert_eq!(
        s.retrieve_slice_hashes(b).await.unwrap(),
        vec![(1, h("b1"))]
    );
    assert_eq!(s.slice_hash_count(a).await.unwrap(), 6);

    s.store_slice_hash(wrap, 9, h("w9")).await.unwrap();
    assert_eq!(s.retrieve_slice_hash(wrap, 9).await.unwrap(), Some(h("w9")));
    assert_eq!(s.retrieve_slice_hash(unwrap, 9).await.unwrap(), None);
    assert_eq!(s.slice_hash_count(unwrap).await.unwrap(), 0);

    let big = [
        1u64 << 32,
        (1 << 32) - 1,
        (1 << 53) + 1,
        (1 << 53) + 2,
        u64::MAX,
    ];
    for (i, idx) in big.iter().enumerate() {
        s.store_slice_hash(b, *idx, h(&format!("big{i}")))
            .await
            .unwrap();
    }
    for (i, idx) in big.iter().enumerate() {
        assert_eq!(
            s.retrieve_slice_hash(b, *idx).await.unwrap(),
            Some(h(&format!("big{i}"))),
            "index {idx}"
        );
    }
    assert_eq!(s.slice_hash_count(b).await.unwrap(), u64::MAX, "saturates");
    let listed: Vec<u64> = s
        .retrieve_slice_hashes(b)
        .await
        .unwrap()
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        listed,
        vec![
            1,
            (1 << 32) - 1,
            1 << 32,
            (1 << 53) + 1,
            (1 << 53) + 2,
            u64::MAX
        ]
    );

    let err = s.store_slice_hash(a, 7, Bytes::new()).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert_eq!(
        s.slice_hash_count(a).await.unwrap(),
        6,
        "refused write not stored"
    );
    s.close();
}

/// Totals count distinct ops and their encoded bytes; repeats and refused batches add nothing.
pub async fn totals_count_distinct_ops_and_bytes<F: StoreFactory>(f: &F) {
    let s = open(f, "totals").await;
    let (a, b) = (op(1, "a"), op(2, vec![7u8; 5000]));
    put(&s, &[&a]).await;
    put(&s, &[&b, &a]).await;
    put(&s, &[&b]).await;
    let bad = MetaOp {
        op_id: a.op_id.clone(),
        op_data: op(3, "c").op_data,
    };
    assert!(s.process_incoming_ops(vec![op(4, "d"), bad]).await.is_err());
    assert_eq!(
        s.query_totals().await.unwrap(),
        OpTotals {
            op_count: 2,
            op_bytes: len(&a) + len(&b),
        }
    );
    s.close();
}

/// After `close`, every call fails with [`StoreError::Closed`]; closing twice is fine.
pub async fn closed_store_refuses_every_call<F: StoreFactory>(f: &F) {
    let s = open(f, "closed").await;
    let a = op(1, "a");
    put(&s, &[&a]).await;
    s.close();
    s.close();
    let closed = |r: Result<(), StoreError>, what: &str| match r {
        Err(StoreError::Closed) => {}
        other => panic!("{what} after close: {other:?}"),
    };
    let id = vec![a.op_id.clone()];
    closed(
        s.process_incoming_ops(vec![op(2, "b")]).await.map(drop),
        "process",
    );
    closed(s.retrieve_ops(id.clone()).await.map(drop), "retrieve_ops");
    closed(s.filter_out_existing_ops(id).await.map(drop), "filter");
    closed(
        s.retrieve_op_hashes_in_time_slice(DhtArc::FULL, MIN, Timestamp(0))
            .await
            .map(drop),
        "time slice",
    );
    closed(
        s.retrieve_op_ids_bounded(DhtArc::FULL, MIN, 10)
            .await
            .map(drop),
        "bounded",
    );
    closed(
        s.earliest_timestamp_in_arc(DhtArc::FULL).await.map(drop),
        "earliest",
    );
    closed(
        s.store_slice_hash(DhtArc::FULL, 0, Bytes::from_static(b"h"))
            .await,
        "store slice",
    );
    closed(
        s.slice_hash_count(DhtArc::FULL).await.map(drop),
        "count slices",
    );
    closed(
        s.retrieve_slice_hash(DhtArc::FULL, 0).await.map(drop),
        "get slice",
    );
    closed(
        s.retrieve_slice_hashes(DhtArc::FULL).await.map(drop),
        "list slices",
    );
    closed(
        s.retrieve_sector_slice_hashes().await.map(drop),
        "list sector slices",
    );
    closed(s.query_totals().await.map(drop), "totals");
}

/// Close and open again: ops, indexes, totals, slice hashes and the stored-at order are all
/// there, and ops stored after reopening come after an old bookmark.
pub async fn reopen_keeps_everything<F: StoreFactory>(f: &F) {
    let name = "reopen";
    let s = open(f, name).await;
    let a = op_where(30, "reopen-a", |l| sector(l) == 42);
    let b = op_where(10, "reopen-b", |l| sector(l) == 43);
    let c = op(20, vec![9u8; 3000]);
    put(&s, &[&a, &b]).await;
    put(&s, &[&c]).await;
    s.store_slice_hash(sectors(42, 42), 3, Bytes::from_static(b"h3"))
        .await
        .unwrap();
    let before = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, u32::MAX)
        .await
        .unwrap();
    let totals = s.query_totals().await.unwrap();
    s.close();

    let s = open(f, name).await;
    assert_eq!(s.query_totals().await.unwrap(), totals);
    assert_eq!(
        s.retrieve_ops(ids(&[&a, &b, &c])).await.unwrap(),
        vec![a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(
        slice(&s, DhtArc::FULL, i64::MIN, i64::MAX).await,
        ids(&[&b, &c, &a])
    );
    assert_eq!(slice(&s, sectors(42, 43), 0, 100).await, ids(&[&b, &a]));
    assert_eq!(
        s.earliest_timestamp_in_arc(sectors(42, 42)).await.unwrap(),
        Some(Timestamp(30))
    );
    assert_eq!(
        s.retrieve_slice_hash(sectors(42, 42), 3).await.unwrap(),
        Some(Bytes::from_static(b"h3"))
    );
    assert_eq!(s.slice_hash_count(sectors(42, 42)).await.unwrap(), 4);
    let after = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, u32::MAX)
        .await
        .unwrap();
    assert_eq!(after.op_ids, before.op_ids, "stored-at order survives");
    assert!(
        put(&s, &[&a]).await.is_empty(),
        "still known after reopening"
    );

    let d = op(5, "reopen-d");
    put(&s, &[&d]).await;
    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, before.next_bookmark, u32::MAX)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&[&d]), "new ops sort after the old bookmark");
    s.close();

    let s = open(f, name).await;
    assert_eq!(s.query_totals().await.unwrap().op_count, 4);
    s.close();
}

/// Hundreds of ops in one call are stored, indexed and ordered.
pub async fn large_batch_in_one_call<F: StoreFactory>(f: &F) {
    let s = open(f, "large_batch").await;
    let ops: Vec<MetaOp> = (0..500i64)
        .map(|i| op((i * 7919) % 1000 - 500, format!("large-{i}")))
        .collect();
    let refs: Vec<&MetaOp> = ops.iter().collect();
    let stored = put(&s, &refs).await;
    assert_eq!(stored.len(), 500);
    assert_eq!(
        stored.iter().map(|s| s.op_id.clone()).collect::<Vec<_>>(),
        ids(&refs)
    );
    let t = s.query_totals().await.unwrap();
    assert_eq!(t.op_count, 500);
    assert_eq!(t.op_bytes, refs.iter().map(|m| len(m)).sum::<u64>());
    assert_eq!(
        slice(&s, DhtArc::FULL, i64::MIN, i64::MAX).await,
        by_time(&refs)
    );
    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, u32::MAX)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&refs));
    let narrow = sectors(0, 63);
    let want: Vec<&MetaOp> = refs
        .iter()
        .copied()
        .filter(|m| narrow.contains(loc(m)))
        .collect();
    assert_eq!(slice(&s, narrow, i64::MIN, i64::MAX).await, by_time(&want));
    let narrow = sectors(0, 15);
    let want: Vec<&MetaOp> = refs
        .iter()
        .copied()
        .filter(|m| narrow.contains(loc(m)))
        .collect();
    assert_eq!(slice(&s, narrow, i64::MIN, i64::MAX).await, by_time(&want));
    s.close();
}

/// A batch of 40 whose held ops are spread over it (stores may write ops in groups: some
/// groups then hold a few held ops, one is all held) stores exactly the new ones, once each;
/// "new ops since" cut inside such a group resumes without a gap.
pub async fn large_batch_with_held_ops_stores_only_the_new<F: StoreFactory>(f: &F) {
    let s = open(f, "held_in_batch").await;
    let ops: Vec<MetaOp> = (0..40i64)
        .map(|i| op(2000 - i, format!("held-{i}")))
        .collect();
    let held = |i: usize| i == 0 || i == 5 || (16..32).contains(&i) || i == 39;
    let first: Vec<&MetaOp> = (0..40).filter(|i| held(*i)).map(|i| &ops[i]).collect();
    assert_eq!(put(&s, &first).await.len(), first.len());
    let all: Vec<&MetaOp> = ops.iter().collect();
    let fresh: Vec<&MetaOp> = (0..40).filter(|i| !held(*i)).map(|i| &ops[i]).collect();
    let r = put(&s, &all).await;
    assert_eq!(
        r.iter().map(|s| s.op_id.clone()).collect::<Vec<_>>(),
        ids(&fresh)
    );
    let t = s.query_totals().await.unwrap();
    assert_eq!(t.op_count, 40);
    assert_eq!(t.op_bytes, all.iter().map(|m| len(m)).sum::<u64>());
    assert_eq!(
        slice(&s, DhtArc::FULL, i64::MIN, i64::MAX).await,
        by_time(&all)
    );
    let got = s.retrieve_ops(ids(&all)).await.unwrap();
    assert_eq!(got, ops);

    // Stored order: the held ops, then the new ones as given.
    let stored: Vec<&MetaOp> = first.iter().chain(fresh.iter()).copied().collect();
    let half = stored[..20].iter().map(|m| len(m)).sum::<u64>() as u32;
    let b = s
        .retrieve_op_ids_bounded(DhtArc::FULL, MIN, half)
        .await
        .unwrap();
    assert_eq!(b.op_ids, ids(&stored[..20]));
    let rest = s
        .retrieve_op_ids_bounded(DhtArc::FULL, b.next_bookmark, u32::MAX)
        .await
        .unwrap();
    assert_eq!(rest.op_ids, ids(&stored[20..]));
    s.close();
}
