//! The model's IO with the op store, through the [`OpStore`] trait only: building the model at
//! start ([`load`]), persisting full-slice hashes ([`persist`]) and listing the op ids of the
//! cells a diff names ([`collect_op_ids`]). Async like `core::space::driver`; the model itself
//! ([`super::Dht`]) stays pure.
//!
//! Store calls, measured on 100 000 ops over a year (`tests::cold_start_report`): a first load
//! (no watermark, so no slice hashes read) makes 5 calls and leaves 32 247 slice hashes to
//! write, which [`persist`] hands to one [`OpStore::store_slice_hashes`] (one IndexedDB
//! transaction); a warm load makes 5, one of them [`OpStore::retrieve_sector_slice_hashes`]
//! (every sector's slice hashes; it was 512 calls, one per sector). Unpersisted full slices
//! are rebuilt with [`OpStore::retrieve_op_times_in_time_range`] (ids with `created_at` from
//! the `[sector, created_at]` index), all in one query up to [`REBUILD_IN_ONE_QUERY_OPS`] ops,
//! else [`REBUILD_SLICES_PER_QUERY`] at a time: asked slice by slice, the ~660 slices of the
//! bundled dataset were 338 000 IndexedDB range reads, a 24-27 s reload.

use std::collections::BTreeMap;

use bytes::Bytes;

use super::time::TimeLayout;
use super::{Dht, DhtError, OpRange, SliceWrites};
use crate::api::{OpStore, StoreError};
use crate::model::arc::{DhtArc, SECTORS, sector_of};
use crate::model::id::{Locator, OpId};
use crate::model::op::StoredOp;
use crate::model::time::Timestamp;

/// The slice-hash key of the model's watermark: `slice_hash_count(WATERMARK_ARC)` is the
/// number of full slices whose hashes (in every sector) are all written, and that record's
/// value the op count those hashes reflect ([`persist`]). No sector has this arc (sector arcs
/// are `2^23` locations wide), so it never mixes with a sector's hashes.
pub const WATERMARK_ARC: DhtArc = DhtArc::Arc(0, 0);

/// Errors of [`load`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhtLoadError {
    /// The op store failed; nothing was built.
    #[error("building the DHT model: {0}")]
    Store(#[from] StoreError),
    /// A bad time factor.
    #[error("building the DHT model: {0}")]
    Model(#[from] DhtError),
}

/// Builds the model from the op store at `now`, with few store queries:
///
/// 1. the watermark `W` with the op count the persisted hashes reflect (1 call: the
///    watermark's records) and the store's op count (1 call; with no op, nothing more is
///    read) and, when the two counts agree and `W > 0`, every sector's persisted full-slice
///    hashes (one `retrieve_sector_slice_hashes`; hashes of slices `>= W` are ignored: they
///    may be incomplete). When the counts differ, ops arrived after the last [`persist`] (a tab
///    closed or reloaded before its model's hashes were written), in slices nobody knows, so
///    `W` is taken as 0;
/// 2. each full slice not yet persisted that `now` seals, from `W` (or the slice of the
///    earliest op, 1 call, when nothing usable was persisted): one
///    `retrieve_op_times_in_time_range` over the whole ring (per
///    [`REBUILD_SLICES_PER_QUERY`] slices over [`REBUILD_IN_ONE_QUERY_OPS`] ops), sorted into
///    slices by time and sectors by location;
/// 3. the ops after the disc boundary, with their `created_at`: one
///    `retrieve_op_times_in_time_range`;
///
/// The slices computed in step 2 are queued as writes: call [`persist`] with
/// [`Dht::take_writes`] next.
///
/// # Errors
/// [`DhtLoadError`]; the store is left as it was.
pub async fn load(
    store: &dyn OpStore,
    factor: u8,
    locator: Locator,
    now: Timestamp,
) -> Result<Dht, DhtLoadError> {
    load_with(store, factor, locator, now, REBUILD_IN_ONE_QUERY_OPS).await
}

/// [`load`], rebuilding in one query up to `in_one_query_ops` ops (tests lower it to cover
/// the rebuild in [`REBUILD_SLICES_PER_QUERY`] chunks without a quarter million ops).
pub(super) async fn load_with(
    store: &dyn OpStore,
    factor: u8,
    locator: Locator,
    now: Timestamp,
    in_one_query_ops: u64,
) -> Result<Dht, DhtLoadError> {
    let mut target = TimeLayout::new(factor)?;
    target.update(now);
    let (stored_watermark, reflected) = watermark_record(store).await?;
    let full_count = target.full_slice_count().max(stored_watermark);
    let op_count = store.query_totals().await?.op_count;
    let mut dht = Dht::resume(factor, locator, full_count)?;
    dht.sealed_since_write = full_count > stored_watermark;
    // No op: every hash, slice and recent op is empty (ops are never deleted), so nothing
    // more is read. A new space's every join, when 8 tabs' reads queue in one IndexedDB
    // backend and hold up the first publish.
    if op_count == 0 {
        dht.update(now);
        return Ok(dht);
    }
    let watermark = if stored_watermark > 0 && reflected == Some(op_count) {
        dht.written_op_count = Some(op_count);
        stored_watermark
    } else {
        0
    };

    let mut full: Vec<BTreeMap<u64, Vec<u8>>> = vec![BTreeMap::new(); SECTORS as usize];
    // No watermark, no usable hash: skip the read.
    if watermark > 0 {
        for (sector, index, hash) in store.retrieve_sector_slice_hashes().await? {
            if index < watermark
                && let Some(slot) = full.get_mut(sector as usize)
            {
                slot.insert(index, hash.to_vec());
            }
        }
    }

    let first_missing = if watermark > 0 {
        watermark
    } else {
        match store.earliest_timestamp_in_arc(DhtArc::FULL).await? {
            Some(t) => target.full_slice_of(t).unwrap_or(0),
            None => full_count,
        }
    };
    let sealed = first_missing..full_count.min(target.full_slice_count());
    let per_query = if op_count <= in_one_query_ops {
        u64::MAX
    } else {
        REBUILD_SLICES_PER_QUERY
    };
    rebuild_full_slices(
        store, &target, locator, sealed, per_query, &mut full, &mut dht,
    )
    .await?;
    for (hashes, slices) in dht.sectors.iter_mut().zip(full) {
        hashes.set_full(slices);
    }

    let recent = recent_ops(store, dht.layout.full_end()).await?;
    dht.inform_ops_stored(&recent);
    dht.update(now);
    dht.op_count = op_count;
    Ok(dht)
}

/// The watermark `W` ([`WATERMARK_ARC`]'s highest slice index plus one, 0 if none) and the
/// op count its record says the persisted hashes reflect (8 bytes big-endian; `None` for a
/// record of another shape, as written before the count was kept). One read: IndexedDB joins
/// every `slice_batches` record for each slice-hash query, and `slice_hash_count` then
/// `retrieve_slice_hash` were two such reads for the same few records.
async fn watermark_record(store: &dyn OpStore) -> Result<(u64, Option<u64>), StoreError> {
    let records = store.retrieve_slice_hashes(WATERMARK_ARC).await?;
    let Some((index, value)) = records.last() else {
        return Ok((0, None));
    };
    let reflected = <[u8; 8]>::try_from(&value[..]).ok().map(u64::from_be_bytes);
    Ok((index.saturating_add(1), reflected))
}

/// Full slices rebuilt per store query by [`load`] when the store holds more than
/// [`REBUILD_IN_ONE_QUERY_OPS`]: 64 slices of 128 h (~341 days) in one
/// [`OpStore::retrieve_op_times_in_time_range`] (512 range reads on IndexedDB, like one slice
/// alone), which bounds what one query holds in memory.
pub const REBUILD_SLICES_PER_QUERY: u64 = 64;

/// Up to this many ops in the store, [`load`] rebuilds every sealed slice with one query
/// (its answer is ~48 B per op: at most ~12 MB). The bundled dataset spans ~660 slices
/// since 2017: 11 queries of 64 slices, each 512 counts and 512 key cursors on IndexedDB,
/// made a reload of the 8-tab job's tab 3.9–4.2 s.
pub const REBUILD_IN_ONE_QUERY_OPS: u64 = 1 << 18;

/// Combines the ops of full slices `slices` into `full` (per sector: slice index -> hash),
/// `per_query` slices per store query, and marks them pending for [`persist`].
async fn rebuild_full_slices(
    store: &dyn OpStore,
    layout: &TimeLayout,
    locator: Locator,
    slices: std::ops::Range<u64>,
    per_query: u64,
    full: &mut [BTreeMap<u64, Vec<u8>>],
    dht: &mut Dht,
) -> Result<(), DhtLoadError> {
    let mut first = slices.start;
    while first < slices.end {
        let last = first.saturating_add(per_query).min(slices.end) - 1;
        let (Some((start, _)), Some((_, end))) = (
            layout.full_slice_bounds(first),
            layout.full_slice_bounds(last),
        ) else {
            break;
        };
        let ops = store
            .retrieve_op_times_in_time_range(DhtArc::FULL, start, end)
            .await?;
        for op in ops {
            let Some(index) = layout.full_slice_of(op.created_at) else {
                continue;
            };
            let sector = sector_of(locator.op_loc(&op.op_id));
            let hash = full[sector as usize].entry(index).or_default();
            super::hash::combine(hash, op.op_id.as_bytes());
            dht.pending.insert((sector, index));
        }
        first = last + 1;
    }
    Ok(())
}

/// The ops created at or after `from`, with their `created_at`.
async fn recent_ops(store: &dyn OpStore, from: Timestamp) -> Result<Vec<StoredOp>, DhtLoadError> {
    let all_after = Timestamp::from_micros(i64::MAX);
    Ok(store
        .retrieve_op_times_in_time_range(DhtArc::FULL, from, all_after)
        .await?)
}

/// Writes `writes` to the store with one [`OpStore::store_slice_hashes`]: every hash, then
/// the watermark record (under [`WATERMARK_ARC`], slice `sealed - 1`, value the op count
/// the hashes reflect, 8 bytes big-endian), in one transaction on IndexedDB, so the record
/// never lands without its hashes. On an error nothing is written; hand `writes` to
/// [`Dht::writes_failed`] so the next write carries them again.
///
/// # Errors
/// The store's.
pub async fn persist(store: &dyn OpStore, writes: SliceWrites) -> Result<(), StoreError> {
    let mut batch: Vec<(DhtArc, u64, Bytes)> = writes
        .hashes
        .into_iter()
        .map(|(sector, index, hash)| (DhtArc::of_sectors(sector, sector), index, hash))
        .collect();
    if let Some((sealed, op_count)) = writes.watermark.filter(|(sealed, _)| *sealed > 0) {
        let reflects = Bytes::copy_from_slice(&op_count.to_be_bytes());
        batch.push((WATERMARK_ARC, sealed - 1, reflects));
    }
    if batch.is_empty() {
        return Ok(());
    }
    store.store_slice_hashes(batch).await
}

/// Ranges [`collect_op_ids`] asks the store for in its first read
/// ([`OpStore::retrieve_op_hashes_in_time_slices`]): 256, so a diff of a few ranges reads
/// no more than it lists. Each further read asks for 4x as many as the one before, so one of
/// thousands takes a few reads: an IndexedDB read that holds a good part of the store scans
/// all of it (op data included), and 16 such reads of 256 ranges each over a 35 000-op store
/// held a plain round for 7.4 s, its space answering no frame meanwhile.
pub const RANGES_PER_READ: usize = 256;

/// The op ids of `ranges`, in order, as many whole ranges as fit in `max_bytes` of op data
/// (Kitsune2's `max_op_data_bytes` rule: a range that does not fit is skipped, later smaller
/// ones may still fit; listing stops once the limit is reached). Returns the ids and the bytes
/// of data they stand for. Reads [`RANGES_PER_READ`] ranges first, then 4x more each time.
///
/// # Errors
/// The store's.
pub async fn collect_op_ids(
    store: &dyn OpStore,
    ranges: &[OpRange],
    max_bytes: u64,
) -> Result<(Vec<OpId>, u64), StoreError> {
    let mut out = Vec::new();
    let mut used = 0u64;
    let (mut rest, mut per_read) = (ranges, RANGES_PER_READ);
    while !rest.is_empty() && used < max_bytes {
        let (chunk, after) = rest.split_at(per_read.min(rest.len()));
        (rest, per_read) = (after, per_read.saturating_mul(4));
        let wanted = chunk.iter().map(|r| (r.arc, r.start, r.end)).collect();
        for slice in store.retrieve_op_hashes_in_time_slices(wanted).await? {
            if used + slice.total_bytes <= max_bytes {
                used += slice.total_bytes;
                out.extend(slice.op_ids);
            }
        }
    }
    Ok((out, used))
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
