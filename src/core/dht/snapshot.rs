//! Snapshots of the model and how two compare (Kitsune2 `crates/dht/src/dht/snapshot.rs`).
//!
//! A gossip round exchanges snapshots of growing detail: [`DhtSnapshot::Minimal`] (disc top
//! hash + one top hash per ring), then for a disc mismatch [`DhtSnapshot::DiscSectors`] (one top
//! hash per sector) and [`DhtSnapshot::DiscSectorDetails`] (every full slice hash of the
//! mismatched sectors), or for ring mismatches [`DhtSnapshot::RingSectorDetails`] (every sector
//! hash of the mismatched rings). Maps are [`SortedMap`]s and index lists are sorted, so a
//! diff is deterministic (Kitsune2 returns them in `HashSet` order).

use bytes::Bytes;

use crate::model::time::Timestamp;
use crate::sort::{self, SortedMap};

/// A snapshot of the model over a set of sectors. Every kind carries the disc boundary (the end
/// of the last full slice): snapshots taken with different boundaries cannot be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhtSnapshot {
    /// The first snapshot of a round.
    Minimal {
        /// XOR of every full slice hash of the sectors (empty if none).
        disc_top_hash: Bytes,
        /// End of the last full slice.
        disc_boundary: Timestamp,
        /// Per partial slice (oldest first), XOR of that slice's hash over the sectors.
        ring_top_hashes: Vec<Bytes>,
    },
    /// Disc top hash per sector; sectors with no full-slice op are absent.
    DiscSectors {
        /// Sector index → XOR of its full slice hashes.
        disc_sector_top_hashes: SortedMap<u32, Bytes>,
        /// End of the last full slice.
        disc_boundary: Timestamp,
    },
    /// Full slice hashes of some sectors; sectors asked for are present even when empty.
    DiscSectorDetails {
        /// Sector index → full slice index → combined hash (non-empty slices only).
        disc_sector_hashes: SortedMap<u32, SortedMap<u64, Bytes>>,
        /// End of the last full slice.
        disc_boundary: Timestamp,
    },
    /// Sector hashes of some partial slices; rings asked for are present even when empty.
    RingSectorDetails {
        /// Ring (partial slice) index → sector index → combined hash (non-empty only).
        ring_sector_hashes: SortedMap<u32, SortedMap<u32, Bytes>>,
        /// End of the last full slice.
        disc_boundary: Timestamp,
    },
}

/// What [`DhtSnapshot::compare`] found, from our side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotDiff {
    /// Nothing differs.
    Identical,
    /// Different disc boundaries, ring counts, ring sets or snapshot kinds: try again later.
    CannotCompare,
    /// The disc top hashes differ (checked before the rings: history is repaired first).
    DiscMismatch,
    /// These sectors' disc top hashes differ (or one side has none), ascending.
    DiscSectorMismatches(Vec<u32>),
    /// Sector → the full slice indices that differ, ascending.
    DiscSectorSliceMismatches(SortedMap<u32, Vec<u64>>),
    /// These rings' top hashes differ, ascending.
    RingMismatches(Vec<u32>),
    /// Ring → the sectors whose hash in that ring differs, ascending.
    RingSectorMismatches(SortedMap<u32, Vec<u32>>),
}

impl DhtSnapshot {
    /// The disc boundary every kind carries.
    pub fn disc_boundary(&self) -> Timestamp {
        match self {
            DhtSnapshot::Minimal { disc_boundary, .. }
            | DhtSnapshot::DiscSectors { disc_boundary, .. }
            | DhtSnapshot::DiscSectorDetails { disc_boundary, .. }
            | DhtSnapshot::RingSectorDetails { disc_boundary, .. } => *disc_boundary,
        }
    }

    /// Compares our snapshot (`self`) with theirs, Kitsune2's rules: identical first; a
    /// different disc boundary cannot be compared; then by kind, keys present on one side only
    /// count as mismatches (except rings: both sides must name the same rings).
    pub fn compare(&self, other: &DhtSnapshot) -> SnapshotDiff {
        if self == other {
            return SnapshotDiff::Identical;
        }
        if self.disc_boundary() != other.disc_boundary() {
            return SnapshotDiff::CannotCompare;
        }
        use DhtSnapshot as S;
        match (self, other) {
            (
                S::Minimal {
                    disc_top_hash: a,
                    ring_top_hashes: ra,
                    ..
                },
                S::Minimal {
                    disc_top_hash: b,
                    ring_top_hashes: rb,
                    ..
                },
            ) => {
                if a != b {
                    SnapshotDiff::DiscMismatch
                } else if ra.len() != rb.len() {
                    SnapshotDiff::CannotCompare
                } else {
                    let rings = (0..ra.len() as u32)
                        .filter(|i| ra[*i as usize] != rb[*i as usize])
                        .collect();
                    SnapshotDiff::RingMismatches(rings)
                }
            }
            (
                S::DiscSectors {
                    disc_sector_top_hashes: a,
                    ..
                },
                S::DiscSectors {
                    disc_sector_top_hashes: b,
                    ..
                },
            ) => SnapshotDiff::DiscSectorMismatches(map_mismatches(a, b)),
            (
                S::DiscSectorDetails {
                    disc_sector_hashes: a,
                    ..
                },
                S::DiscSectorDetails {
                    disc_sector_hashes: b,
                    ..
                },
            ) => {
                let mut out = Vec::new();
                for sector in keys_union(a, b) {
                    let slices = match (a.get(&sector), b.get(&sector)) {
                        (Some(x), Some(y)) => map_mismatches(x, y),
                        // A sector on one side only: every slice it has differs.
                        (Some(x), None) | (None, Some(x)) => x.keys().copied().collect(),
                        (None, None) => Vec::new(),
                    };
                    let one_sided = a.contains_key(&sector) != b.contains_key(&sector);
                    if one_sided || !slices.is_empty() {
                        out.push((sector, slices));
                    }
                }
                SnapshotDiff::DiscSectorSliceMismatches(out.into_iter().collect())
            }
            (
                S::RingSectorDetails {
                    ring_sector_hashes: a,
                    ..
                },
                S::RingSectorDetails {
                    ring_sector_hashes: b,
                    ..
                },
            ) => {
                if !a.keys().eq(b.keys()) {
                    return SnapshotDiff::CannotCompare;
                }
                let out = a.iter().zip(b.values());
                let out = out.map(|((ring, x), y)| (*ring, map_mismatches(x, y)));
                SnapshotDiff::RingSectorMismatches(out.collect())
            }
            _ => SnapshotDiff::CannotCompare,
        }
    }
}

/// Keys whose values differ or that only one map has, ascending.
fn map_mismatches<K: Ord + Copy, V: PartialEq>(a: &SortedMap<K, V>, b: &SortedMap<K, V>) -> Vec<K> {
    keys_union(a, b)
        .into_iter()
        .filter(|k| a.get(k) != b.get(k))
        .collect()
}

/// The keys of `a` and `b`, ascending, each once. A sorted `Vec`, not a `BTreeSet`: no B-tree
/// type is compiled for it (docs/design.md, "Size").
fn keys_union<K: Ord + Copy, V>(a: &SortedMap<K, V>, b: &SortedMap<K, V>) -> Vec<K> {
    let mut keys: Vec<K> = a.keys().chain(b.keys()).copied().collect();
    sort::sort(&mut keys);
    keys.dedup();
    keys
}
