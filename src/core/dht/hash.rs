//! Combined hashes and the hash state of one sector (Kitsune2 `crates/dht/src/combine.rs` and
//! the per-sector `TimePartition` state).
//!
//! A *combined hash* is the XOR of the op ids in an area of the model; a *top hash* the XOR of
//! combined hashes. An empty area has the empty hash (zero bytes), never 32 zero bytes.

use std::collections::BTreeMap;

use super::time::{TimeLayout, UNIT_MICROS};
use crate::model::time::Timestamp;

/// XORs `other` into `into` (Kitsune2 `combine_hashes`): an empty `into` becomes a copy of
/// `other`. Kitsune2 panics on hashes of different lengths; here the shorter is taken as
/// zero-padded, so a hostile peer's odd-length hash can never crash us (every op id we store
/// is 32 bytes, so our own hashes never differ in length).
pub fn combine(into: &mut Vec<u8>, other: &[u8]) {
    if into.len() < other.len() {
        into.resize(other.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(other) {
        *a ^= b;
    }
}

/// The combined hash of `hashes` (Kitsune2 `combine_op_hashes`); empty for no input.
pub fn combine_all<'a>(hashes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for h in hashes {
        combine(&mut out, h);
    }
    out
}

/// The hashes of one sector: the sealed full slices (the disc) and, for everything after the
/// disc boundary, one combined hash per unit of time, from which the partial slices are XORed
/// together whenever the layout moves (Kitsune2 asks its op store for every new partial slice
/// instead; units make a layout change a pure computation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SectorHashes {
    /// Non-empty full slice hashes by slice index (what the op store persists).
    full: BTreeMap<u64, Vec<u8>>,
    /// Non-empty unit hashes by unit index (`created_at / UNIT`) for units after the disc
    /// boundary, including those after the last partial slice.
    units: BTreeMap<i64, Vec<u8>>,
    /// Combined hash of each partial slice of the current layout (empty when no op).
    partials: Vec<Vec<u8>>,
    /// XOR of every full slice hash, kept up to date (the sector's disc top hash).
    full_top: Vec<u8>,
}

impl SectorHashes {
    /// The disc top hash of the sector: XOR of its full slice hashes; empty if none.
    pub fn full_top(&self) -> &[u8] {
        &self.full_top
    }

    /// The full slice hashes by slice index (non-empty ones only).
    pub fn full(&self) -> &BTreeMap<u64, Vec<u8>> {
        &self.full
    }

    /// The combined hash of each partial slice of the current layout.
    pub fn partials(&self) -> &[Vec<u8>] {
        &self.partials
    }

    /// Replaces the full slice hashes (loaded from the op store) and recomputes the top hash.
    pub fn set_full(&mut self, full: BTreeMap<u64, Vec<u8>>) {
        self.full = full;
        self.full.retain(|_, h| !h.is_empty());
        self.full_top = combine_all(self.full.values().map(Vec::as_slice));
    }

    /// XORs `id` into full slice `index`.
    pub fn add_to_full(&mut self, index: u64, id: &[u8]) {
        combine(self.full.entry(index).or_default(), id);
        combine(&mut self.full_top, id);
    }

    /// XORs `id` of an op created at `t` (after the disc boundary) into its unit and, if the
    /// unit lies in a partial slice of `layout`, into that slice.
    pub fn add_recent(&mut self, layout: &TimeLayout, t: Timestamp, id: &[u8]) {
        combine(self.units.entry(unit_of(t)).or_default(), id);
        let found = layout
            .partials()
            .iter()
            .rposition(|p| t >= p.start && t < p.end());
        if let Some(i) = found {
            combine(&mut self.partials[i], id);
        }
    }

    /// Whether an op was added in unit `unit` or later (units past the disc boundary only).
    pub fn has_units_from(&self, unit: i64) -> bool {
        self.units.range(unit..).next().is_some()
    }

    /// Seals full slice `index` = `[start, end)`: XORs its units into a full slice hash and
    /// drops them. Returns whether the slice holds any op (its hash is then to be persisted).
    pub fn seal(&mut self, index: u64, start: Timestamp, end: Timestamp) -> bool {
        let units: Vec<i64> = self
            .units
            .range(unit_of(start)..unit_of(end))
            .map(|(u, _)| *u)
            .collect();
        let mut hash = Vec::new();
        for u in units {
            if let Some(h) = self.units.remove(&u) {
                combine(&mut hash, &h);
            }
        }
        if hash.is_empty() {
            return false;
        }
        combine(&mut self.full_top, &hash);
        combine(self.full.entry(index).or_default(), &hash);
        true
    }

    /// Recomputes the partial slice hashes for `layout` from the unit hashes.
    pub fn relayout(&mut self, layout: &TimeLayout) {
        self.partials = layout
            .partials()
            .iter()
            .map(|p| {
                combine_all(
                    self.units
                        .range(unit_of(p.start)..unit_of(p.end()))
                        .map(|(_, h)| h.as_slice()),
                )
            })
            .collect();
    }

    /// Number of unit hashes held (memory accounting).
    pub fn unit_count(&self) -> usize {
        self.units.len()
    }
}

/// The unit of time holding `t` (floor division, so times before the epoch get negative units).
pub fn unit_of(t: Timestamp) -> i64 {
    t.as_micros().div_euclid(UNIT_MICROS)
}
