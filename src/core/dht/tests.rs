//! The model's tests. Fixture values are Kitsune2's (`holochain/kitsune2` `crates/dht/src`:
//! `time.rs`, `hash.rs`, `dht/snapshot.rs`, `dht/tests.rs` at 0.5.0-dev.6), ported as facts:
//! op ids such as `[7; 32]` and their XORs, slice counts and boundaries, sector arcs, diffs.
//! Kitsune2's fixtures put ops with made-up ids in its memory store; ours verifies ids, so the
//! model is fed the same `(op id, created_at)` pairs through `inform_ops_stored` (the model
//! reads no op from the store once built) and an in-test op list answers the ranges.

use super::hash::combine;
use super::snapshot::{DhtSnapshot, SnapshotDiff};
use super::time::{TimeLayout, UNIT_MICROS, layout_partials, residual_micros};
use super::*;
use crate::model::arc::SECTOR_SIZE;
use crate::model::id::OpId;

const U: i64 = UNIT_MICROS;
/// A fixed "now" (2026-12-01T00:00:00Z) where Kitsune2's tests read the clock.
const NOW: Timestamp = Timestamp(1_796_083_200_000_000);
const EPOCH: Timestamp = Timestamp::UNIX_EPOCH;
const SS: u32 = SECTOR_SIZE as u32;

fn secs(s: i64) -> i64 {
    s * 1_000_000
}

fn op(id: &[u8], t: Timestamp) -> StoredOp {
    StoredOp {
        op_id: OpId::from_bytes(Bytes::copy_from_slice(id)),
        created_at: t,
    }
}

fn padded(first: u8) -> Vec<u8> {
    let mut v = vec![first];
    v.resize(32, 0);
    v
}

fn min_recent(factor: u8) -> i64 {
    TimeLayout::new(factor).unwrap().min_recent_micros()
}

fn full_len(factor: u8) -> i64 {
    TimeLayout::new(factor).unwrap().full_slice_micros()
}

fn model(factor: u8, now: Timestamp) -> Dht {
    Dht::new(factor, Locator::default(), now).unwrap()
}

/// Kitsune2 `validate_partial_slices`: sizes never grow, at most two of a size, contiguous
/// from the disc boundary.
fn validate_partials(layout: &TimeLayout) {
    let p = layout.partials();
    let mut at = layout.full_end();
    for (i, s) in p.iter().enumerate() {
        if i > 0 {
            assert!(p[i - 1].size >= s.size, "sizes must not grow");
        }
        if i > 1 {
            assert!(!(p[i - 2].size == p[i - 1].size && p[i - 1].size == s.size));
        }
        assert_eq!(at, s.start);
        at = s.end();
    }
}

fn partial_hash(dht: &Dht, sector: u32, ring: usize) -> Vec<u8> {
    dht.sector(sector).unwrap().partials()[ring].clone()
}

fn full_hash(dht: &Dht, sector: u32, index: u64) -> Option<Vec<u8>> {
    dht.sector(sector).unwrap().full().get(&index).cloned()
}

// ---- time.rs fixtures ----

#[test]
fn residual_durations() {
    assert_eq!(residual_micros(0), Ok(U));
    assert_eq!(residual_micros(1), Ok(3 * U));
    assert_eq!(residual_micros(2), Ok(7 * U));
    assert_eq!(residual_micros(5), Ok(63 * U));
    // Kitsune2 allows factors up to 53 (its durations are whole seconds); in i64 µs the
    // residual fits up to factor 32, so larger factors are refused, never wrapped.
    assert_eq!(residual_micros(32), Ok(((1i64 << 33) - 1) * U));
    assert_eq!(residual_micros(33), Err(DhtError::Factor(33)));
    assert_eq!(residual_micros(53), Err(DhtError::Factor(53)));
    assert_eq!(residual_micros(54), Err(DhtError::Factor(54)));
    assert_eq!(TimeLayout::new(0), Err(DhtError::Factor(0)));
    // Factor 4: at least one of each smaller slice size is reserved.
    assert_eq!(min_recent(4), (8 + 4 + 2 + 1) * U);
}

#[test]
fn layout_at_the_epoch_is_empty() {
    let dht = model(4, EPOCH);
    assert_eq!(dht.layout().full_slice_count(), 0);
    assert!(dht.layout().partials().is_empty());
}

#[test]
fn one_partial_slice() {
    let layout = model(4, EPOCH.add_micros(U + secs(1))).layout().clone();
    assert_eq!(layout.full_slice_count(), 0);
    assert_eq!(layout.partials().len(), 1);
    assert_eq!(layout.partials()[0].size, 0);
    assert_eq!(layout.partials()[0].start, EPOCH);
    assert_eq!(layout.partials()[0].end(), EPOCH.add_micros(U));
    assert_eq!(layout.next_update_at(), EPOCH.add_micros(2 * U));
}

#[test]
fn layout_comparisons_are_strict() {
    // Kitsune2 compares "time left > slice length": exactly one unit makes no slice, and
    // exactly the minimum recent time leaves its last unit outside the partial slices.
    assert!(model(4, EPOCH.add_micros(U)).layout().partials().is_empty());
    assert_eq!(
        model(7, EPOCH.add_micros(min_recent(7)))
            .layout()
            .partials()
            .len(),
        6
    );
    let f = 7;
    let just_before = model(f, EPOCH.add_micros(full_len(f) + min_recent(f) - 1));
    assert_eq!(just_before.layout().full_slice_count(), 0);
    let exactly = model(f, EPOCH.add_micros(full_len(f) + min_recent(f)));
    assert_eq!(exactly.layout().full_slice_count(), 1);
}

#[test]
fn partial_layouts_single_double_all_double() {
    let f = 7;
    let single = model(f, EPOCH.add_micros(min_recent(f) + secs(1)));
    assert_eq!(single.layout().full_slice_count(), 0);
    assert_eq!(single.layout().partials().len(), f as usize);
    validate_partials(single.layout());

    let one_double = model(
        f,
        EPOCH.add_micros(min_recent(f) + (1 << (f - 1)) * U + secs(1)),
    );
    let p = one_double.layout().partials();
    assert_eq!(p.len(), f as usize + 1);
    assert_eq!((p[0].size, p[1].size), (f - 1, f - 1));
    validate_partials(one_double.layout());

    let all_double = model(f, EPOCH.add_micros(2 * min_recent(f) + secs(1)));
    assert_eq!(all_double.layout().partials().len(), 2 * f as usize);
    validate_partials(all_double.layout());
    assert!(single.layout().partial_bounds(f as u32).is_none());
    assert!(single.layout().partial_bounds(0).is_some());
}

#[test]
fn hashes_are_combined_for_partial_slices() {
    let f = 7;
    let now = EPOCH.add_micros(min_recent(f) + secs(1));
    let mut dht = model(f, now);
    dht.inform_ops_stored(&[
        op(&[7; 32], now.add_micros(-U)),
        op(&[23; 32], now.add_micros(-U)),
    ]);
    assert_eq!(dht.layout().partials().len(), f as usize);
    // Both ids XOR-fold to location 0: sector 0.
    assert_eq!(partial_hash(&dht, 0, f as usize - 1), vec![7 ^ 23; 32]);
    validate_partials(dht.layout());
}

#[test]
fn full_slices_with_single_slice_partials() {
    let f = 7;
    let dht = model(
        f,
        EPOCH.add_micros(2 * full_len(f) + min_recent(f) + secs(1)),
    );
    assert_eq!(dht.layout().full_slice_count(), 2);
    assert_eq!(dht.layout().partials().len(), f as usize);
    validate_partials(dht.layout());
}

#[test]
fn missing_full_slices_combine_hashes_both_ways() {
    let f = 7;
    let now = EPOCH.add_micros(full_len(f) + min_recent(f) + secs(1));
    let ops = [op(&[7; 32], EPOCH), op(&[23; 32], EPOCH)];
    // Informed while recent, then sealed by time ...
    let mut sealed = model(f, EPOCH.add_micros(secs(1)));
    sealed.inform_ops_stored(&ops);
    sealed.update(now);
    // ... or informed into an already sealed slice (Kitsune2's historical update).
    let mut historical = model(f, now);
    historical.inform_ops_stored(&ops);
    for dht in [&mut sealed, &mut historical] {
        assert_eq!(dht.layout().full_slice_count(), 1);
        assert_eq!(dht.layout().partials().len(), f as usize);
        assert_eq!(full_hash(dht, 0, 0), Some(vec![7 ^ 23; 32]));
        let writes = dht.take_writes();
        assert_eq!(writes.hashes, vec![(0, 0, Bytes::from(vec![7 ^ 23; 32]))]);
        validate_partials(dht.layout());
    }
    assert_eq!(sealed.take_writes(), SliceWrites::default());
}

#[test]
fn compute_hashes_for_full_slices_and_partials() {
    let f = 7;
    let now = EPOCH.add_micros(full_len(f) + min_recent(f) + secs(1));
    let mut dht = model(f, now);
    dht.inform_ops_stored(&[
        op(&[7; 32], EPOCH),
        op(&[23; 32], EPOCH),
        op(&[11; 32], now.add_micros(-U)),
        op(&[29; 32], now.add_micros(-U)),
    ]);
    assert_eq!(full_hash(&dht, 0, 0), Some(vec![7 ^ 23; 32]));
    assert_eq!(partial_hash(&dht, 0, f as usize - 1), vec![11 ^ 29; 32]);
}

#[test]
fn update_is_idempotent() {
    let f = 7;
    let now = EPOCH.add_micros(full_len(f) + min_recent(f) + secs(1));
    let mut dht = model(f, now);
    dht.inform_ops_stored(&[op(&[7; 32], EPOCH), op(&[11; 32], now.add_micros(-U))]);
    dht.take_writes();
    let before = format!("{dht:?}");
    for _ in 1..10 {
        let at = now.add_micros(U / 100);
        assert!(at < dht.next_update_at());
        dht.update(at);
        assert_eq!(before, format!("{dht:?}"));
    }
}

#[test]
fn update_allocates_a_new_partial() {
    let f = 7;
    let now = EPOCH.add_micros(full_len(f) + min_recent(f) + secs(1));
    let mut dht = model(f, now);
    dht.inform_ops_stored(&[
        op(&[7; 32], now.add_micros(-U)),
        op(&[29; 32], now.add_micros(-U)),
    ]);
    assert_eq!(dht.layout().partials().len(), f as usize);
    assert_eq!(partial_hash(&dht, 0, f as usize - 1), vec![7 ^ 29; 32]);
    // After the last partial slice: in no slice yet.
    dht.inform_ops_stored(&[op(&[13; 32], now)]);
    dht.update(now.add_micros(U));
    assert_eq!(dht.layout().partials().len(), f as usize + 1);
    assert_eq!(partial_hash(&dht, 0, f as usize - 1), vec![7 ^ 29; 32]);
    assert_eq!(partial_hash(&dht, 0, f as usize), vec![13; 32]);
}

#[test]
fn update_allocates_new_full_slices() {
    let f = 7;
    let now = EPOCH.add_micros(full_len(f) + min_recent(f) + secs(1));
    let mut dht = model(f, now);
    dht.inform_ops_stored(&[op(&[7; 32], EPOCH), op(&[23; 32], EPOCH)]);
    assert_eq!(dht.layout().full_slice_count(), 1);
    assert_eq!(full_hash(&dht, 0, 0), Some(vec![7 ^ 23; 32]));
    // At the start of the next full slice: in the first partial slice for now.
    dht.inform_ops_stored(&[op(&[13; 32], dht.layout().full_end())]);
    dht.update(EPOCH.add_micros(2 * full_len(f) + min_recent(f) + secs(1)));
    assert_eq!(dht.layout().full_slice_count(), 2);
    assert_eq!(dht.layout().partials().len(), f as usize);
    assert_eq!(full_hash(&dht, 0, 0), Some(vec![7 ^ 23; 32]));
    assert_eq!(full_hash(&dht, 0, 1), Some(vec![13; 32]));
    let writes = dht.take_writes();
    assert_eq!(writes.watermark, Some((2, 3)));
    assert_eq!(writes.hashes.len(), 2);

    // Two full slices sealed by one update (Kitsune2 update_allocate_multiple_new_complete).
    let now = EPOCH.add_micros(min_recent(f) + secs(1));
    let mut dht = model(f, now);
    assert_eq!(dht.layout().full_slice_count(), 0);
    let next = EPOCH.add_micros(full_len(f));
    dht.inform_ops_stored(&[
        op(&[7; 32], EPOCH),
        op(&[23; 32], EPOCH),
        op(&[11; 32], next),
        op(&[37; 32], next),
    ]);
    dht.update(now.add_micros(2 * full_len(f)));
    assert_eq!(dht.layout().full_slice_count(), 2);
    assert_eq!(dht.layout().partials().len(), f as usize);
    assert_eq!(full_hash(&dht, 0, 0), Some(vec![7 ^ 23; 32]));
    assert_eq!(full_hash(&dht, 0, 1), Some(vec![11 ^ 37; 32]));
}

#[test]
fn full_slices_fill_time_up_to_the_minimum_recent_time() {
    // Kitsune2 compression_all_empty_slices_at_current_time, at a fixed "now".
    let f = 7;
    let mut dht = model(f, NOW);
    let count = dht.layout().full_slice_count();
    assert_eq!(
        count as i64,
        (NOW.as_micros() - min_recent(f)) / full_len(f)
    );
    assert!(dht.take_writes().hashes.is_empty());
    dht.inform_ops_stored(&[op(&[7; 32], dht.layout().full_end())]);
    dht.update(NOW.add_micros(full_len(f)));
    assert_eq!(dht.layout().full_slice_count(), count + 1);
    let writes = dht.take_writes();
    assert_eq!(writes.hashes, vec![(0, count, Bytes::from(vec![7; 32]))]);
    assert_eq!(writes.watermark, Some((count + 1, 1)));
}

#[test]
fn inform_ops_stored_into_full_slices() {
    let mut dht = model(14, NOW);
    dht.inform_ops_stored(&[op(&[11, 0, 0, 0], EPOCH)]);
    assert_eq!(full_hash(&dht, 0, 0), Some(vec![11, 0, 0, 0]));

    let mut dht = model(14, NOW);
    dht.inform_ops_stored(&[op(&padded(7), EPOCH)]);
    dht.inform_ops_stored(&[op(&padded(23), EPOCH)]);
    assert_eq!(full_hash(&dht, 0, 0), Some(padded(7 ^ 23)));
    assert_eq!(
        dht.take_writes().hashes,
        vec![(0, 0, Bytes::from(padded(7 ^ 23)))]
    );
}

/// `take_writes` hands out each changed full slice once, by ascending `(sector, slice)`,
/// whatever order the ops came in (the model's pending set is a hash set).
#[test]
fn slice_writes_are_each_cell_once_in_ascending_order() {
    let mut dht = model(14, NOW);
    let full = dht.layout().full_slice_micros();
    let ops: Vec<_> = (0..40u32)
        .map(|k| {
            let (sector, slice) = ((k * 7) % 9, (k * 5) % 4);
            op(
                &(sector * SS + k).to_le_bytes(),
                EPOCH.add_micros(full * i64::from(slice)),
            )
        })
        .collect();
    dht.inform_ops_stored(&ops);
    let cells: Vec<(u32, u64)> = dht
        .take_writes()
        .hashes
        .iter()
        .map(|(s, i, _)| (*s, *i))
        .collect();
    let mut want: Vec<(u32, u64)> = (0..9).flat_map(|s| (0..4).map(move |i| (s, i))).collect();
    want.sort();
    assert_eq!(cells, want);
}

#[test]
fn inform_ops_stored_into_partial_slices() {
    let f = 14;
    let now = EPOCH.add_micros(min_recent(f) + secs(3));
    let mut dht = model(f, now);
    assert!(
        dht.sector(0)
            .unwrap()
            .partials()
            .iter()
            .all(|h| h.is_empty())
    );
    dht.inform_ops_stored(&[
        op(&[11, 0, 0, 0], EPOCH),
        op(&[29, 0, 0, 0], now.add_micros(-secs(5))),
    ]);
    let last = dht.layout().partials().len() - 1;
    assert_eq!(partial_hash(&dht, 0, 0), vec![11, 0, 0, 0]);
    assert_eq!(partial_hash(&dht, 0, last), vec![29, 0, 0, 0]);

    let mut dht = model(f, now);
    dht.inform_ops_stored(&[
        op(&padded(7), EPOCH.add_micros(secs(10))),
        op(&padded(31), now.add_micros(-secs(30))),
    ]);
    dht.inform_ops_stored(&[
        op(&padded(11), EPOCH),
        op(&padded(29), now.add_micros(-secs(5))),
    ]);
    assert_eq!(partial_hash(&dht, 0, 0), padded(7 ^ 11));
    assert_eq!(partial_hash(&dht, 0, last), padded(31 ^ 29));
}

// ---- hash.rs fixtures ----

#[test]
fn sectors_cover_the_ring() {
    assert_eq!(SECTORS, 512);
    assert_eq!(SS, u32::MAX / 512 + 1);
    assert_eq!(DhtArc::of_sectors(0, 0), DhtArc::Arc(0, SS - 1));
    assert_eq!(
        DhtArc::of_sectors(511, 511),
        DhtArc::Arc(511 * SS, u32::MAX)
    );
    let mut start: u32 = 0;
    for s in 0..SECTORS {
        let end = start.wrapping_add(SS).wrapping_sub(1);
        assert_eq!(DhtArc::of_sectors(s, s), DhtArc::Arc(start, end));
        start = start.wrapping_add(SS);
    }
}

#[test]
fn hash_partition_informs_full_and_partial_slices() {
    let mut dht = model(14, NOW);
    let full = dht.layout().full_slice_micros();
    let in_sector_1 = SS.to_le_bytes();
    dht.inform_ops_stored(&[
        op(&[7, 0, 0, 0], EPOCH),
        op(&in_sector_1, EPOCH.add_micros(full)),
    ]);
    assert_eq!(full_hash(&dht, 0, 0), Some(vec![7, 0, 0, 0]));
    assert_eq!(full_hash(&dht, 1, 1), Some(in_sector_1.to_vec()));
    assert_eq!(dht.take_writes().hashes.len(), 2);

    let mut dht = model(14, NOW);
    let end = dht.layout().full_end();
    dht.inform_ops_stored(&[
        op(&[100, 0, 0, 0], end),
        op(&in_sector_1, end.add_micros((1 << 13) * U)),
    ]);
    assert!(dht.take_writes().hashes.is_empty());
    assert_eq!(partial_hash(&dht, 0, 0), vec![100, 0, 0, 0]);
    assert_eq!(partial_hash(&dht, 1, 1), in_sector_1.to_vec());
    assert!(dht.next_update_at() >= NOW);
}

#[test]
fn update_moves_ops_after_the_last_partial_into_a_new_one() {
    // Kitsune2 update_all: one op per sector at "now", in no partial until the next update.
    // Kitsune2 reads the clock, which is never exactly on a unit boundary; on one, the last
    // unit stays outside the partial slices (the comparisons are strict).
    let now = NOW.add_micros(secs(1));
    let mut dht = model(14, now);
    let ops: Vec<StoredOp> = (0..SECTORS)
        .map(|s| op(&(s * SS + 1).to_le_bytes(), now))
        .collect();
    dht.inform_ops_stored(&ops);
    for s in 0..SECTORS {
        assert!(
            dht.sector(s)
                .unwrap()
                .partials()
                .iter()
                .all(|h| h.is_empty())
        );
    }
    dht.update(now.add_micros(U));
    for s in 0..SECTORS {
        let filled = dht
            .sector(s)
            .unwrap()
            .partials()
            .iter()
            .filter(|h| !h.is_empty());
        assert_eq!(filled.count(), 1, "sector {s}");
    }
}

#[test]
fn combine_never_panics_on_odd_lengths() {
    let mut h = vec![1, 2];
    combine(&mut h, &[1, 2, 3]);
    assert_eq!(h, vec![0, 0, 3]);
    combine(&mut h, &[]);
    assert_eq!(h, vec![0, 0, 3]);
    let mut e = Vec::new();
    combine(&mut e, &[9]);
    assert_eq!(e, vec![9]);
}

#[test]
fn layout_partials_is_pure() {
    assert_eq!(layout_partials(9, EPOCH, EPOCH), vec![]);
    assert_eq!(layout_partials(9, NOW, EPOCH), vec![]);
}

// ---- dht/snapshot.rs fixtures ----

fn b(v: &[u8]) -> Bytes {
    Bytes::copy_from_slice(v)
}

fn minimal(disc: &[u8], at: Timestamp, rings: &[&[u8]]) -> DhtSnapshot {
    DhtSnapshot::Minimal {
        disc_top_hash: b(disc),
        disc_boundary: at,
        ring_top_hashes: rings.iter().map(|r| b(r)).collect(),
    }
}

#[test]
fn compare_minimal() {
    let s = minimal(&[1; 32], NOW, &[&[2; 32]]);
    assert_eq!(s.compare(&s), SnapshotDiff::Identical);
    let later = NOW.add_micros(secs(1));
    assert_eq!(
        minimal(&[1; 32], NOW, &[]).compare(&minimal(&[2; 32], NOW, &[])),
        SnapshotDiff::DiscMismatch
    );
    assert_eq!(
        minimal(&[1; 32], NOW, &[]).compare(&minimal(&[1; 32], later, &[])),
        SnapshotDiff::CannotCompare
    );
    assert_eq!(
        minimal(&[1; 32], NOW, &[&[1], &[2]]).compare(&minimal(&[1; 32], NOW, &[&[1], &[3]])),
        SnapshotDiff::RingMismatches(vec![1])
    );
    // The disc wins over the rings.
    assert_eq!(
        minimal(&[1; 32], NOW, &[&[1], &[7]]).compare(&minimal(&[2; 32], NOW, &[&[1], &[3]])),
        SnapshotDiff::DiscMismatch
    );
    assert_eq!(
        minimal(&[1; 32], NOW, &[&[1], &[4]]).compare(&minimal(&[1; 32], NOW, &[&[1], &[3], &[5]])),
        SnapshotDiff::CannotCompare
    );
}

fn sectors(at: Timestamp, m: &[(u32, &[u8])]) -> DhtSnapshot {
    DhtSnapshot::DiscSectors {
        disc_sector_top_hashes: m.iter().map(|(k, v)| (*k, b(v))).collect(),
        disc_boundary: at,
    }
}

#[test]
fn compare_disc_sectors() {
    assert_eq!(
        sectors(NOW, &[]).compare(&sectors(NOW.add_micros(secs(1)), &[])),
        SnapshotDiff::CannotCompare
    );
    assert_eq!(
        sectors(NOW, &[(0, &[]), (1, &[])]).compare(&sectors(NOW, &[(0, &[]), (2, &[])])),
        SnapshotDiff::DiscSectorMismatches(vec![1, 2])
    );
    assert_eq!(
        sectors(NOW, &[(0, &[]), (1, &[1])]).compare(&sectors(NOW, &[(0, &[]), (1, &[2])])),
        SnapshotDiff::DiscSectorMismatches(vec![1])
    );
}

type Details<'a> = &'a [(u32, &'a [(u64, &'a [u8])])];

fn details(at: Timestamp, m: Details) -> DhtSnapshot {
    DhtSnapshot::DiscSectorDetails {
        disc_sector_hashes: m
            .iter()
            .map(|(s, sl)| (*s, sl.iter().map(|(i, h)| (*i, b(h))).collect()))
            .collect(),
        disc_boundary: at,
    }
}

#[test]
fn compare_disc_sector_details() {
    assert_eq!(
        details(NOW, &[]).compare(&details(NOW.add_micros(secs(1)), &[])),
        SnapshotDiff::CannotCompare
    );
    assert_eq!(
        details(NOW, &[(0, &[]), (1, &[(0, &[1])])])
            .compare(&details(NOW, &[(0, &[]), (2, &[(0, &[7])])])),
        SnapshotDiff::DiscSectorSliceMismatches([(1, vec![0]), (2, vec![0])].into())
    );
    assert_eq!(
        details(NOW, &[(1, &[(10, &[1])])]).compare(&details(NOW, &[(1, &[(20, &[7])])])),
        SnapshotDiff::DiscSectorSliceMismatches([(1, vec![10, 20])].into())
    );
    assert_eq!(
        details(NOW, &[(1, &[(10, &[1])])]).compare(&details(NOW, &[(1, &[(10, &[7])])])),
        SnapshotDiff::DiscSectorSliceMismatches([(1, vec![10])].into())
    );
}

type Rings<'a> = &'a [(u32, &'a [(u32, &'a [u8])])];

fn rings(at: Timestamp, m: Rings) -> DhtSnapshot {
    DhtSnapshot::RingSectorDetails {
        ring_sector_hashes: m
            .iter()
            .map(|(r, sl)| (*r, sl.iter().map(|(s, h)| (*s, b(h))).collect()))
            .collect(),
        disc_boundary: at,
    }
}

#[test]
fn compare_ring_sector_details() {
    assert_eq!(
        rings(NOW, &[]).compare(&rings(NOW.add_micros(secs(1)), &[])),
        SnapshotDiff::CannotCompare
    );
    assert_eq!(
        rings(NOW, &[(0, &[]), (1, &[])]).compare(&rings(NOW, &[(0, &[])])),
        SnapshotDiff::CannotCompare
    );
    assert_eq!(
        rings(NOW, &[(0, &[])]).compare(&rings(NOW, &[(1, &[])])),
        SnapshotDiff::CannotCompare
    );
    assert_eq!(
        rings(NOW, &[(0, &[(0, &[1])])]).compare(&rings(NOW, &[(0, &[(0, &[5])])])),
        SnapshotDiff::RingSectorMismatches([(0, vec![0])].into())
    );
    // Different kinds cannot be compared.
    assert_eq!(
        rings(NOW, &[]).compare(&details(NOW, &[])),
        SnapshotDiff::CannotCompare
    );
}

// ---- dht/tests.rs scenarios (Kitsune2's DhtSyncHarness, rebuilt on the pure model) ----

struct Peer {
    dht: Dht,
    ops: Vec<StoredOp>,
    arc: DhtArc,
    discovered: Vec<OpId>,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    InSync,
    CannotCompare,
    SyncedDisc,
    SyncedRings,
    DiscoveredInSync,
}

impl Peer {
    fn new(arc: DhtArc) -> Peer {
        Peer {
            dht: model(time::TIME_FACTOR, NOW),
            ops: Vec::new(),
            arc,
            discovered: Vec::new(),
        }
    }

    fn inject(&mut self, ops: &[StoredOp]) {
        self.ops.extend_from_slice(ops);
        self.dht.inform_ops_stored(ops);
    }

    /// What `collect_op_ids` asks the store, answered from the op list.
    fn ids(&self, ranges: &[OpRange]) -> Vec<OpId> {
        let mut out = Vec::new();
        for r in ranges {
            let mut cell: Vec<&StoredOp> = self
                .ops
                .iter()
                .filter(|o| {
                    r.arc.contains(o.op_id.loc()) && o.created_at >= r.start && o.created_at < r.end
                })
                .collect();
            cell.sort();
            out.extend(cell.into_iter().map(|o| o.op_id.clone()));
        }
        out
    }

    fn shared(&self, other: &Peer) -> SectorSet {
        SectorSet::from_arcs(&[self.arc]).intersection(&SectorSet::from_arcs(&[other.arc]))
    }

    fn in_sync_with(&self, other: &Peer) -> bool {
        let set = self.shared(other);
        let mine = self.dht.snapshot_minimal(&set).unwrap();
        other.dht.handle_snapshot(&mine, None, &set).unwrap() == DhtNextAction::Identical
    }

    fn sync_with(&mut self, other: &mut Peer) -> Outcome {
        let set = self.shared(other);
        let mine = self.dht.snapshot_minimal(&set).unwrap();
        match other.dht.handle_snapshot(&mine, None, &set).unwrap() {
            DhtNextAction::Identical => Outcome::InSync,
            DhtNextAction::CannotCompare => Outcome::CannotCompare,
            DhtNextAction::NewSnapshot(s @ DhtSnapshot::DiscSectors { .. }) => {
                self.sync_disc(other, &set, s)
            }
            DhtNextAction::NewSnapshot(s @ DhtSnapshot::RingSectorDetails { .. }) => {
                self.sync_rings(other, &set, s)
            }
            a => panic!("unexpected answer to a minimal snapshot: {a:?}"),
        }
    }

    fn sync_disc(&mut self, other: &mut Peer, set: &SectorSet, theirs: DhtSnapshot) -> Outcome {
        let my_details = match self.dht.handle_snapshot(&theirs, None, set).unwrap() {
            DhtNextAction::NewSnapshot(s @ DhtSnapshot::DiscSectorDetails { .. }) => s,
            DhtNextAction::Identical => return Outcome::DiscoveredInSync,
            a => panic!("unexpected {a:?}"),
        };
        let (their_details, their_ranges) =
            match other.dht.handle_snapshot(&my_details, None, set).unwrap() {
                DhtNextAction::NewSnapshotAndRanges(s, r) => (s, r),
                DhtNextAction::Identical => return Outcome::InSync,
                a => panic!("unexpected {a:?}"),
            };
        let my_ranges = match self
            .dht
            .handle_snapshot(&their_details, Some(&my_details), set)
            .unwrap()
        {
            DhtNextAction::Ranges(r) => r,
            a => panic!("unexpected {a:?}"),
        };
        self.discovered.extend(other.ids(&their_ranges));
        other.discovered.extend(self.ids(&my_ranges));
        Outcome::SyncedDisc
    }

    fn sync_rings(&mut self, other: &mut Peer, set: &SectorSet, theirs: DhtSnapshot) -> Outcome {
        let (mine, my_ranges) = match self.dht.handle_snapshot(&theirs, None, set).unwrap() {
            DhtNextAction::NewSnapshotAndRanges(s, r) => (s, r),
            DhtNextAction::Identical => return Outcome::InSync,
            a => panic!("unexpected {a:?}"),
        };
        let their_ranges = match other
            .dht
            .handle_snapshot(&mine, Some(&theirs), set)
            .unwrap()
        {
            DhtNextAction::Ranges(r) => r,
            a => panic!("unexpected {a:?}"),
        };
        self.discovered.extend(other.ids(&their_ranges));
        other.discovered.extend(self.ids(&my_ranges));
        Outcome::SyncedRings
    }

    /// Moves the discovered ops both ways (Kitsune2 `apply_op_sync`).
    fn apply_sync(&mut self, other: &mut Peer) {
        let take = |from: &Peer, ids: &[OpId]| -> Vec<StoredOp> {
            ids.iter()
                .filter_map(|id| from.ops.iter().find(|o| &o.op_id == id).cloned())
                .collect()
        };
        let to_me = take(other, &std::mem::take(&mut self.discovered));
        let to_them = take(self, &std::mem::take(&mut other.discovered));
        self.inject(&to_me);
        other.inject(&to_them);
    }
}

fn pair() -> (Peer, Peer) {
    (Peer::new(DhtArc::FULL), Peer::new(DhtArc::FULL))
}

#[test]
fn minimal_snapshot_of_one_historical_op() {
    let mut p = Peer::new(DhtArc::FULL);
    p.inject(&[op(&[7; 32], EPOCH)]);
    let DhtSnapshot::Minimal {
        disc_top_hash,
        disc_boundary,
        ring_top_hashes,
    } = p.dht.snapshot_minimal(&SectorSet::FULL).unwrap()
    else {
        panic!("not minimal")
    };
    assert_eq!(disc_boundary, p.dht.layout().full_end());
    assert_eq!(disc_top_hash, Bytes::from(vec![7; 32]));
    assert!(!ring_top_hashes.is_empty());
}

#[test]
fn empty_sector_sets_are_refused() {
    let p = Peer::new(DhtArc::Empty);
    let none = SectorSet::from_arcs(&[p.arc]);
    assert_eq!(p.dht.snapshot_minimal(&none), Err(DhtError::NoSectors));
    let theirs = p.dht.snapshot_minimal(&SectorSet::FULL).unwrap();
    assert_eq!(
        p.dht.handle_snapshot(&theirs, None, &none),
        Err(DhtError::NoSectors)
    );
}

#[test]
fn empty_models_are_in_sync() {
    let (a, b) = pair();
    assert!(a.in_sync_with(&b) && b.in_sync_with(&a));
}

#[test]
fn one_way_disc_sync_either_side() {
    for initiator_has_it in [true, false] {
        let (mut a, mut b) = pair();
        let o = op(&[41; 32], EPOCH);
        if initiator_has_it {
            a.inject(std::slice::from_ref(&o))
        } else {
            b.inject(std::slice::from_ref(&o))
        }
        assert_eq!(a.sync_with(&mut b), Outcome::SyncedDisc);
        let (holder, learner) = if initiator_has_it { (&a, &b) } else { (&b, &a) };
        assert!(holder.discovered.is_empty());
        assert_eq!(learner.discovered, vec![o.op_id.clone()]);
        assert!(!a.in_sync_with(&b));
        a.apply_sync(&mut b);
        assert!(a.in_sync_with(&b));
    }
}

#[test]
fn two_way_disc_sync() {
    let (mut a, mut b) = pair();
    a.inject(&[op(&[7; 32], EPOCH)]);
    b.inject(&[op(&[43; 32], EPOCH.add_micros(secs(14 * 24 * 60 * 60)))]);
    assert_eq!(a.sync_with(&mut b), Outcome::SyncedDisc);
    assert_eq!((a.discovered.len(), b.discovered.len()), (1, 1));
    a.apply_sync(&mut b);
    assert!(a.in_sync_with(&b));
}

#[test]
fn one_way_ring_sync_either_side() {
    for initiator_has_it in [true, false] {
        let (mut a, mut b) = pair();
        let o = op(&[41; 32], a.dht.layout().full_end());
        if initiator_has_it {
            a.inject(std::slice::from_ref(&o))
        } else {
            b.inject(std::slice::from_ref(&o))
        }
        assert_eq!(a.sync_with(&mut b), Outcome::SyncedRings);
        let (holder, learner) = if initiator_has_it { (&a, &b) } else { (&b, &a) };
        assert!(holder.discovered.is_empty());
        assert_eq!(learner.discovered, vec![o.op_id.clone()]);
        a.apply_sync(&mut b);
        assert!(a.in_sync_with(&b));
    }
}

#[test]
fn two_way_ring_sync() {
    let (mut a, mut b) = pair();
    let at = a.dht.layout().full_end();
    a.inject(&[op(&[7; 32], at)]);
    b.inject(&[op(&[43; 32], at)]);
    assert_eq!(a.sync_with(&mut b), Outcome::SyncedRings);
    assert_eq!((a.discovered.len(), b.discovered.len()), (1, 1));
    a.apply_sync(&mut b);
    assert!(a.in_sync_with(&b));
}

#[test]
fn ring_sync_with_matching_disc() {
    let (mut a, mut b) = pair();
    let history = [
        op(&[7; 4], EPOCH),
        op(
            &(u32::MAX / 2).to_le_bytes(),
            EPOCH.add_micros(secs(14 * 24 * 60 * 60)),
        ),
    ];
    a.inject(&history);
    b.inject(&history);
    let at = a.dht.layout().full_end();
    a.inject(&[op(&[17; 4], at)]);
    b.inject(&[op(&[13; 4], at)]);
    assert_eq!(a.sync_with(&mut b), Outcome::SyncedRings);
    assert_eq!((a.discovered.len(), b.discovered.len()), (1, 1));
    a.apply_sync(&mut b);
    assert!(a.in_sync_with(&b));
}

#[test]
fn two_stage_sync_with_symmetry() {
    let (mut a, mut b) = pair();
    a.inject(&[op(&[7; 32], EPOCH)]);
    b.inject(&[op(&[13; 32], EPOCH)]);
    let at = a.dht.layout().full_end();
    a.inject(&[op(&[11; 32], at)]);
    b.inject(&[op(&[17; 32], at)]);
    for expected in [Outcome::SyncedDisc, Outcome::SyncedRings] {
        assert_eq!(a.sync_with(&mut b), expected);
        let learned = (
            std::mem::take(&mut a.discovered),
            std::mem::take(&mut b.discovered),
        );
        // The same, whoever initiates.
        assert_eq!(b.sync_with(&mut a), expected);
        assert_eq!(learned, (a.discovered.clone(), b.discovered.clone()));
        a.apply_sync(&mut b);
    }
    assert!(a.in_sync_with(&b));
}

#[test]
fn syncs_respect_the_shared_sectors() {
    for recent in [false, true] {
        let mut a = Peer::new(DhtArc::Arc(0, 3 * SS - 1));
        let mut b = Peer::new(DhtArc::Arc(2 * SS, 4 * SS - 1));
        let at = if recent {
            a.dht.layout().full_end()
        } else {
            EPOCH
        };
        // Different ops, but in sectors only one side holds.
        a.inject(&[op(&SS.to_le_bytes(), at)]);
        b.inject(&[op(&(3 * SS).to_le_bytes(), at)]);
        assert!(a.in_sync_with(&b));
        // Now in the shared sector 2.
        a.inject(&[op(&(2 * SS).to_le_bytes(), at)]);
        b.inject(&[op(&(2 * SS + 1).to_le_bytes(), at)]);
        let expected = if recent {
            Outcome::SyncedRings
        } else {
            Outcome::SyncedDisc
        };
        assert_eq!(a.sync_with(&mut b), expected);
        assert_eq!((a.discovered.len(), b.discovered.len()), (1, 1));
        a.apply_sync(&mut b);
        assert!(a.in_sync_with(&b));
    }
}

#[test]
fn op_count_counts_informed_ops() {
    let mut p = Peer::new(DhtArc::FULL);
    assert_eq!(p.dht.op_count(), 0);
    p.inject(&[op(&[7; 32], EPOCH), op(&[8; 32], EPOCH)]);
    assert_eq!(p.dht.op_count(), 2);
    p.inject(&[op(&[9; 32], EPOCH)]);
    assert_eq!(p.dht.op_count(), 3);
}

#[test]
fn hostile_diffs_name_only_shared_existing_cells() {
    let mut a = Peer::new(DhtArc::Arc(0, SS - 1));
    a.inject(&[op(&[7, 0, 0, 0], EPOCH)]);
    let set = SectorSet::from_arcs(&[a.arc]);
    let boundary = a.dht.layout().full_end();
    // They claim sectors we do not share and a slice that is not sealed.
    let theirs = details(
        boundary,
        &[(0, &[(0, &[1]), (u64::MAX, &[1])]), (9, &[(0, &[1])])],
    );
    let mine = a.dht.snapshot_disc_sector_details(&[0, 9], &set).unwrap();
    let DhtNextAction::Ranges(ranges) = a.dht.handle_snapshot(&theirs, Some(&mine), &set).unwrap()
    else {
        panic!("expected ranges")
    };
    assert_eq!(ranges.len(), 1);
    assert_eq!((ranges[0].sector, ranges[0].start), (0, EPOCH));
    // A ring we do not have is an error, not a panic.
    let bad = rings(boundary, &[(10_000, &[])]);
    assert_eq!(
        a.dht.handle_snapshot(&bad, None, &set),
        Err(DhtError::RingIndex(10_000))
    );
}

#[test]
fn ops_before_the_epoch_are_in_no_slice() {
    let mut p = Peer::new(DhtArc::FULL);
    p.inject(&[op(&[7; 32], Timestamp(-1))]);
    assert_eq!(p.dht.ops_before_epoch(), 1);
    assert!(p.in_sync_with(&Peer::new(DhtArc::FULL)));
}

/// `has_uncovered_ops`: only an op created at or after the slices' end counts, and it stops
/// counting once time seals it into a slice.
#[test]
fn uncovered_ops_are_those_past_the_slices() {
    let mut dht = model(time::TIME_FACTOR, NOW);
    assert!(!dht.has_uncovered_ops(), "empty");
    dht.inform_ops_stored(&[op(&padded(1), EPOCH.add_micros(secs(60)))]);
    assert!(!dht.has_uncovered_ops(), "an old op is in a full slice");
    let head = dht.layout().covered_end();
    dht.inform_ops_stored(&[op(&padded(2), head)]);
    assert!(dht.has_uncovered_ops(), "created at the slices' end");
    dht.update(head.add_micros(2 * U));
    assert!(
        !dht.has_uncovered_ops(),
        "sealed into a partial slice since"
    );
}
