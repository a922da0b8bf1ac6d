//! The DHT model gossip compares: Kitsune2's `kitsune2_dht` (`crates/dht/src`) rebuilt sans-IO.
//!
//! The ring of locations is cut into [`SECTORS`] sectors (`model::arc`), time into slices
//! ([`time`]): sealed *full slices* of `2^9` 15-minute units with absolute boundaries (the
//! *disc*) and recent *partial slices* (the *rings*). Each (sector, slice) cell has a combined
//! hash, the XOR of its op ids ([`hash`]); two peers compare [`snapshot`]s of growing detail to
//! find the cells that differ, then exchange the op ids of those cells.
//!
//! [`Dht`] holds all of it in memory and does no IO: it is told which ops were stored
//! ([`Dht::inform_ops_stored`], Kitsune2's `inform_ops_stored`) and the time
//! ([`Dht::update`]); the full-slice hashes it changes are queued for the op store
//! ([`Dht::take_writes`], persisted with [`store::persist`]); snapshots and diffs are pure.
//! The op store is read only to build the model at start ([`store::load`], a few dozen queries
//! plus one per sector for the persisted hashes) and to list the op ids of the cells a diff
//! names ([`store::collect_op_ids`]).
//!
//! Differences from Kitsune2, each for a reason:
//! - partial slices are XORed from per-unit hashes kept in memory, so the layout moving with
//!   time needs no store query (Kitsune2 queries the store per new partial slice per sector);
//! - the full-slice hashes are also kept in memory (one per non-empty sector x slice), so a
//!   snapshot reads no store (Kitsune2 reads every sector's slice hashes per snapshot);
//! - the model persists a watermark (how many full slices are sealed and written, and how
//!   many ops the written hashes reflect) so a restart knows which hashes are complete
//!   ([`store::WATERMARK_ARC`]); Kitsune2 writes a slice's hash as ops arrive instead;
//! - diffs are deterministic (sorted) and a diff never names a sector outside the compared set
//!   or a slice that does not exist; hashes of odd lengths are zero-padded, never a panic;
//! - ops created before the Unix epoch are in no slice (counted in
//!   [`Dht::ops_before_epoch`]); Kitsune2 would compute a wrapped slice index for them.

pub mod hash;
pub mod snapshot;
pub mod store;
pub mod time;

#[cfg(test)]
mod tests;

use bytes::Bytes;

use crate::hash::HashSet;
use crate::model::arc::{DhtArc, SECTORS, SectorSet, sector_of};
use crate::model::id::Locator;
use crate::model::op::StoredOp;
use crate::model::time::Timestamp;
use crate::sort::{self, SortedMap};
use hash::{SectorHashes, combine_all};
use snapshot::{DhtSnapshot, SnapshotDiff};
use time::TimeLayout;

/// Errors of the DHT model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DhtError {
    /// A time factor outside `1..=32` (µs must fit in i64; the model uses 9).
    #[error("time factor {0} is out of range: it must be 1 to 32")]
    Factor(u8),
    /// A snapshot over no sector (Kitsune2: "No arcs to snapshot").
    #[error("no sectors to snapshot: the two arcs share no sector")]
    NoSectors,
    /// A ring index beyond our partial slices (their layout differs from ours).
    #[error("ring {0} does not exist in our layout; the peers' clocks or layouts differ")]
    RingIndex(u32),
}

/// A cell whose op ids a diff asks to exchange: ops located in `arc` (one sector) with
/// `created_at` in `[start, end)`; list them with `OpStore::retrieve_op_hashes_in_time_slice`
/// (or [`store::collect_op_ids`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpRange {
    /// Sector index, `0..SECTORS`.
    pub sector: u32,
    /// The sector's arc.
    pub arc: DhtArc,
    /// First µs (included).
    pub start: Timestamp,
    /// Last µs (excluded).
    pub end: Timestamp,
}

/// What to do after [`Dht::handle_snapshot`] (Kitsune2 `DhtSnapshotNextAction`, with cells
/// instead of op ids so the model stays free of store IO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtNextAction {
    /// The models agree on the compared sectors.
    Identical,
    /// The snapshots cannot be compared (boundaries, ring counts or kinds differ).
    CannotCompare,
    /// Send this more detailed snapshot.
    NewSnapshot(DhtSnapshot),
    /// Send this snapshot and the op ids of these cells (not final: they answer with theirs).
    NewSnapshotAndRanges(DhtSnapshot, Vec<OpRange>),
    /// Final step: send the op ids of these cells.
    Ranges(Vec<OpRange>),
}

/// Full-slice hashes to persist, from [`Dht::take_writes`]. Write `hashes` and the watermark
/// (if any) in one transaction, so the watermark never names a slice whose hash was not
/// written, nor an op count the hashes do not reflect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SliceWrites {
    /// `(sector, slice index, hash)` by ascending `(sector, slice index)`, each slice once with
    /// its latest hash; the hash is never empty.
    pub hashes: Vec<(u32, u64, Bytes)>,
    /// The watermark record to write, when the sealed full slices grew or ops were informed
    /// since the last one: `(sealed full slices, ops the model holds)`. A load trusts the
    /// stored hashes only while the store holds exactly that many ops ([`store::load`]).
    pub watermark: Option<(u64, u64)>,
}

impl SliceWrites {
    /// The `(sector, slice index)` of every hash: what [`Dht::writes_failed`] needs back if
    /// the write fails, without holding the hashes while it is in flight.
    pub fn slices(&self) -> Vec<(u32, u64)> {
        self.hashes.iter().map(|(s, i, _)| (*s, *i)).collect()
    }
}

/// The DHT model of one agent in one space. See the module docs.
#[derive(Debug, Clone)]
pub struct Dht {
    layout: TimeLayout,
    locator: Locator,
    sectors: Vec<SectorHashes>,
    /// `(sector, full slice)` whose hash changed since the last `take_writes` (a hash set:
    /// only inserted and drained, and sorted when drained).
    pending: HashSet<(u32, u64)>,
    /// Full slices were sealed since the last `take_writes`.
    sealed_since_write: bool,
    /// The op count of the last watermark handed out by `take_writes` (or read at load);
    /// `None`: unknown, so the next `take_writes` hands one out.
    written_op_count: Option<u64>,
    op_count: u64,
    before_epoch: u64,
}

impl Dht {
    /// An empty model at `now` with time factor `factor` (Kitsune2 uses
    /// [`time::TIME_FACTOR`]) placing op ids with `locator`.
    ///
    /// # Errors
    /// [`DhtError::Factor`].
    pub fn new(factor: u8, locator: Locator, now: Timestamp) -> Result<Dht, DhtError> {
        let mut dht = Dht::resume(factor, locator, 0)?;
        dht.update(now);
        Ok(dht)
    }

    /// A model whose first `full_slices` full slices are sealed, with no hash yet; the state
    /// [`store::load`] fills in.
    fn resume(factor: u8, locator: Locator, full_slices: u64) -> Result<Dht, DhtError> {
        let mut layout = TimeLayout::new(factor)?;
        layout.resume(full_slices);
        Ok(Dht {
            layout,
            locator,
            sectors: vec![SectorHashes::default(); SECTORS as usize],
            pending: HashSet::default(),
            sealed_since_write: false,
            written_op_count: None,
            op_count: 0,
            before_epoch: 0,
        })
    }

    /// The slice layout (disc boundary, partial slices).
    pub fn layout(&self) -> &TimeLayout {
        &self.layout
    }

    /// When [`Dht::update`] should next be called.
    pub fn next_update_at(&self) -> Timestamp {
        self.layout.next_update_at()
    }

    /// Ops informed so far (plus those counted at load), like Kitsune2's `op_count`.
    pub fn op_count(&self) -> u64 {
        self.op_count
    }

    /// Whether some op informed was created at or after [`TimeLayout::covered_end`]: too new
    /// for any slice, so only "new ops since" lists carry it. Read from the sectors' unit
    /// hashes (kept for every unit past the disc boundary; `covered_end` is a unit
    /// boundary); after [`store::load`] they hold the store's ops past the full slices.
    /// Lets a round skip the store scan for such ops when there are none: after a sync of
    /// old ops every op is recently *stored*, and the scan walks them all to keep none.
    pub fn has_uncovered_ops(&self) -> bool {
        let from = hash::unit_of(self.layout.covered_end());
        self.sectors.iter().any(|s| s.has_units_from(from))
    }

    /// Ops informed with a `created_at` before the Unix epoch: in no slice, never compared.
    pub fn ops_before_epoch(&self) -> u64 {
        self.before_epoch
    }

    /// The hashes of `sector` (`None` for `sector >= SECTORS`).
    pub fn sector(&self, sector: u32) -> Option<&SectorHashes> {
        self.sectors.get(sector as usize)
    }

    /// Adds newly stored ops to the model. Feed each op exactly once (what
    /// `OpStore::process_incoming_ops` returns): informing an op twice XORs it out again.
    /// An op in a sealed full slice changes that slice's hash, queued for the store.
    pub fn inform_ops_stored(&mut self, ops: &[StoredOp]) {
        let full_end = self.layout.full_end();
        for op in ops {
            self.op_count += 1;
            let sector = sector_of(self.locator.op_loc(&op.op_id)) as usize;
            let id = op.op_id.as_bytes();
            if op.created_at < Timestamp::UNIX_EPOCH {
                self.before_epoch += 1;
            } else if op.created_at < full_end {
                let Some(index) = self.layout.full_slice_of(op.created_at) else {
                    continue;
                };
                self.sectors[sector].add_to_full(index, id);
                self.pending.insert((sector as u32, index));
            } else {
                self.sectors[sector].add_recent(&self.layout, op.created_at, id);
            }
        }
    }

    /// Moves the model to `now`: seals the full slices that now fit (their hashes are queued
    /// for the store) and re-lays the partial slices. Cheap when nothing changes.
    pub fn update(&mut self, now: Timestamp) {
        let old = self.layout.clone();
        let sealed = self.layout.update(now);
        let bounds: Vec<(u64, Timestamp, Timestamp)> = sealed
            .clone()
            .filter_map(|i| self.layout.full_slice_bounds(i).map(|(s, e)| (i, s, e)))
            .collect();
        for (sector, hashes) in self.sectors.iter_mut().enumerate() {
            // A sector without unit hashes has nothing to seal: a new model's first update
            // seals ~3 800 slices since the epoch (factor 9) in each of 512 sectors.
            if hashes.unit_count() == 0 {
                continue;
            }
            for &(index, start, end) in &bounds {
                if hashes.seal(index, start, end) {
                    self.pending.insert((sector as u32, index));
                }
            }
        }
        if !sealed.is_empty() {
            self.sealed_since_write = true;
        }
        if old.partials() != self.layout.partials() {
            for hashes in &mut self.sectors {
                hashes.relayout(&self.layout);
            }
        }
    }

    /// Takes the full-slice hashes changed since the last call (see [`SliceWrites`]), and the
    /// watermark when the sealed slices grew or the op count changed since the last one.
    pub fn take_writes(&mut self) -> SliceWrites {
        let mut cells: Vec<(u32, u64)> = self.pending.drain().collect();
        sort::sort(&mut cells);
        let hashes = cells
            .into_iter()
            .filter_map(|(sector, index)| {
                let hash = self.sectors[sector as usize].full().get(&index)?;
                Some((sector, index, Bytes::copy_from_slice(hash)))
            })
            .collect();
        let sealed = std::mem::take(&mut self.sealed_since_write);
        let watermark = (sealed || self.written_op_count != Some(self.op_count))
            .then(|| (self.layout.full_slice_count(), self.op_count));
        if watermark.is_some() {
            self.written_op_count = Some(self.op_count);
        }
        SliceWrites { hashes, watermark }
    }

    /// A write from [`Dht::take_writes`] did not reach the store: its `slices`
    /// ([`SliceWrites::slices`]) and its watermark are handed out again by the next
    /// `take_writes`, with the hashes then current.
    pub fn writes_failed(&mut self, slices: &[(u32, u64)]) {
        self.pending.extend(slices.iter().copied());
        self.written_op_count = None;
    }

    /// The first snapshot of a round over `sectors` (Kitsune2 `snapshot_minimal`).
    ///
    /// # Errors
    /// [`DhtError::NoSectors`] for an empty set.
    pub fn snapshot_minimal(&self, sectors: &SectorSet) -> Result<DhtSnapshot, DhtError> {
        let chosen = self.chosen(sectors)?;
        let disc_top_hash = combine_all(chosen.iter().map(|(_, h)| h.full_top()));
        let mut rings = vec![Vec::new(); self.layout.partials().len()];
        for (_, h) in &chosen {
            for (ring, p) in rings.iter_mut().zip(h.partials()) {
                hash::combine(ring, p);
            }
        }
        Ok(DhtSnapshot::Minimal {
            disc_top_hash: disc_top_hash.into(),
            disc_boundary: self.layout.full_end(),
            ring_top_hashes: rings.into_iter().map(Bytes::from).collect(),
        })
    }

    /// Disc top hash per sector of `sectors` (sectors with no full-slice op are absent).
    ///
    /// # Errors
    /// [`DhtError::NoSectors`].
    pub fn snapshot_disc_sectors(&self, sectors: &SectorSet) -> Result<DhtSnapshot, DhtError> {
        let disc_sector_top_hashes = self
            .chosen(sectors)?
            .into_iter()
            .filter(|(_, h)| !h.full_top().is_empty())
            .map(|(s, h)| (s, Bytes::copy_from_slice(h.full_top())));
        Ok(DhtSnapshot::DiscSectors {
            disc_sector_top_hashes: disc_sector_top_hashes.collect(),
            disc_boundary: self.layout.full_end(),
        })
    }

    /// Full slice hashes of the sectors `wanted` that are in `sectors`.
    ///
    /// # Errors
    /// [`DhtError::NoSectors`].
    pub fn snapshot_disc_sector_details(
        &self,
        wanted: &[u32],
        sectors: &SectorSet,
    ) -> Result<DhtSnapshot, DhtError> {
        self.chosen(sectors)?;
        let disc_sector_hashes = wanted.iter().filter(|s| sectors.contains(**s)).map(|&s| {
            let slices = self.sectors[s as usize].full();
            (
                s,
                slices
                    .iter()
                    .map(|(i, h)| (*i, Bytes::copy_from_slice(h)))
                    .collect(),
            )
        });
        Ok(DhtSnapshot::DiscSectorDetails {
            disc_sector_hashes: disc_sector_hashes.collect(),
            disc_boundary: self.layout.full_end(),
        })
    }

    /// Per ring in `rings`, the hash of each sector of `sectors` in that ring (non-empty only).
    ///
    /// # Errors
    /// [`DhtError::NoSectors`]; [`DhtError::RingIndex`] for a ring we do not have.
    pub fn snapshot_ring_sector_details(
        &self,
        rings: &[u32],
        sectors: &SectorSet,
    ) -> Result<DhtSnapshot, DhtError> {
        let chosen = self.chosen(sectors)?;
        let mut ring_sector_hashes = Vec::new();
        for &ring in rings {
            if ring as usize >= self.layout.partials().len() {
                return Err(DhtError::RingIndex(ring));
            }
            let hashes = chosen.iter().filter_map(|(s, h)| {
                let p = &h.partials()[ring as usize];
                (!p.is_empty()).then(|| (*s, Bytes::copy_from_slice(p)))
            });
            ring_sector_hashes.push((ring, hashes.collect()));
        }
        Ok(DhtSnapshot::RingSectorDetails {
            ring_sector_hashes: ring_sector_hashes.into_iter().collect(),
            disc_boundary: self.layout.full_end(),
        })
    }

    /// Answers their snapshot (Kitsune2 `handle_snapshot`): builds ours of the same kind (or
    /// reuses `our_previous`, the details snapshot we sent them, which makes this the final
    /// step), compares, and says what to send next.
    ///
    /// # Errors
    /// [`DhtError::NoSectors`]; [`DhtError::RingIndex`] when they name a ring we lack.
    pub fn handle_snapshot(
        &self,
        theirs: &DhtSnapshot,
        our_previous: Option<&DhtSnapshot>,
        sectors: &SectorSet,
    ) -> Result<DhtNextAction, DhtError> {
        self.chosen(sectors)?;
        let previous_details = our_previous.filter(|p| {
            matches!(
                (p, theirs),
                (
                    DhtSnapshot::DiscSectorDetails { .. },
                    DhtSnapshot::DiscSectorDetails { .. }
                ) | (
                    DhtSnapshot::RingSectorDetails { .. },
                    DhtSnapshot::RingSectorDetails { .. }
                )
            )
        });
        let is_final = matches!(
            our_previous,
            Some(DhtSnapshot::DiscSectorDetails { .. } | DhtSnapshot::RingSectorDetails { .. })
        );
        let ours = match (previous_details, theirs) {
            (Some(p), _) => p.clone(),
            (None, DhtSnapshot::Minimal { .. }) => self.snapshot_minimal(sectors)?,
            (None, DhtSnapshot::DiscSectors { .. }) => self.snapshot_disc_sectors(sectors)?,
            (
                None,
                DhtSnapshot::DiscSectorDetails {
                    disc_sector_hashes, ..
                },
            ) => {
                let wanted: Vec<u32> = disc_sector_hashes.keys().copied().collect();
                self.snapshot_disc_sector_details(&wanted, sectors)?
            }
            (
                None,
                DhtSnapshot::RingSectorDetails {
                    ring_sector_hashes, ..
                },
            ) => {
                let rings: Vec<u32> = ring_sector_hashes.keys().copied().collect();
                self.snapshot_ring_sector_details(&rings, sectors)?
            }
        };
        let with_ranges = |ours: DhtSnapshot, ranges: Vec<OpRange>| {
            if is_final {
                DhtNextAction::Ranges(ranges)
            } else {
                DhtNextAction::NewSnapshotAndRanges(ours, ranges)
            }
        };
        Ok(match ours.compare(theirs) {
            SnapshotDiff::Identical => DhtNextAction::Identical,
            SnapshotDiff::CannotCompare => DhtNextAction::CannotCompare,
            SnapshotDiff::DiscMismatch => {
                DhtNextAction::NewSnapshot(self.snapshot_disc_sectors(sectors)?)
            }
            SnapshotDiff::DiscSectorMismatches(wanted) => {
                DhtNextAction::NewSnapshot(self.snapshot_disc_sector_details(&wanted, sectors)?)
            }
            SnapshotDiff::RingMismatches(rings) => {
                DhtNextAction::NewSnapshot(self.snapshot_ring_sector_details(&rings, sectors)?)
            }
            SnapshotDiff::DiscSectorSliceMismatches(cells) => {
                with_ranges(ours, self.disc_ranges(&cells, sectors))
            }
            SnapshotDiff::RingSectorMismatches(cells) => {
                with_ranges(ours, self.ring_ranges(&cells, sectors))
            }
        })
    }

    /// Cells of mismatched full slices: sectors ascending, slices ascending; sectors outside
    /// `sectors` and slices not sealed are skipped.
    fn disc_ranges(&self, cells: &SortedMap<u32, Vec<u64>>, sectors: &SectorSet) -> Vec<OpRange> {
        let mut out = Vec::new();
        for (sector, slices) in cells.iter().filter(|(s, _)| sectors.contains(**s)) {
            let mut slices = slices.clone();
            sort::sort(&mut slices);
            slices.dedup();
            for index in slices {
                if let Some((start, end)) = self.layout.full_slice_bounds(index) {
                    out.push(range(*sector, start, end));
                }
            }
        }
        out
    }

    /// Cells of mismatched partial slices: rings ascending, sectors ascending.
    fn ring_ranges(&self, cells: &SortedMap<u32, Vec<u32>>, sectors: &SectorSet) -> Vec<OpRange> {
        let mut out = Vec::new();
        for (ring, list) in cells.iter() {
            let Some((start, end)) = self.layout.partial_bounds(*ring) else {
                continue;
            };
            let mut list = list.clone();
            sort::sort(&mut list);
            list.dedup();
            for sector in list.into_iter().filter(|s| sectors.contains(*s)) {
                out.push(range(sector, start, end));
            }
        }
        out
    }

    /// The sectors of `sectors` with their hashes; an error if there are none.
    fn chosen(&self, sectors: &SectorSet) -> Result<Vec<(u32, &SectorHashes)>, DhtError> {
        if sectors.is_empty() {
            return Err(DhtError::NoSectors);
        }
        Ok(sectors
            .iter()
            .map(|s| (s, &self.sectors[s as usize]))
            .collect())
    }
}

fn range(sector: u32, start: Timestamp, end: Timestamp) -> OpRange {
    OpRange {
        sector,
        arc: DhtArc::of_sectors(sector, sector),
        start,
        end,
    }
}
