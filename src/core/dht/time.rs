//! How time is cut into slices: Kitsune2's `TimePartition` layout (`crates/dht/src/time.rs`)
//! as pure arithmetic on µs, shared by every sector of the model.
//!
//! A slice is `[start, end)`. *Full slices* are `2^factor` units long with absolute boundaries:
//! full slice `i` is `[i * F, (i + 1) * F)` µs since the Unix epoch, `F = 2^factor * UNIT`.
//! After the last full slice come the *partial slices* ("rings"), sized `2^(factor-1)` units
//! down to 1 unit, at most two of each size, larger first; less than one unit of the most
//! recent time is in no slice. At least `2^(factor-1) + ... + 1` units are always left to the
//! partial slices (the minimum recent time), so a full slice is sealed only once that much
//! time has passed after it. Every boundary is a whole number of units after the epoch, so each
//! slice is a union of whole units, which the model (`super::hash`) relies on.

use crate::model::time::Timestamp;

use super::DhtError;

/// The smallest unit of time of the model, µs: 15 minutes (Kitsune2 `UNIT_TIME`).
pub const UNIT_MICROS: i64 = 15 * 60 * 1_000_000;

/// Kitsune2's time factor (`Dht::try_from_store` uses 9): full slices are 2^9 units = 128 h,
/// the partial slices hold between 511 units (~5.3 days) and twice that.
pub const TIME_FACTOR: u8 = 9;

/// `2^0 + 2^1 + ... + 2^factor` units in µs: the time taken by one slice of each size up to
/// `2^factor` units (Kitsune2 `residual_duration_for_factor`).
///
/// # Errors
/// [`DhtError::Factor`] when the sum does not fit in i64 µs (factor 33 or more; Kitsune2,
/// counting whole seconds, allows up to 53).
pub fn residual_micros(factor: u8) -> Result<i64, DhtError> {
    if factor >= 63 {
        return Err(DhtError::Factor(factor));
    }
    let units = (1u64 << (factor + 1)) - 1;
    i64::try_from(units)
        .ok()
        .and_then(|u| u.checked_mul(UNIT_MICROS))
        .ok_or(DhtError::Factor(factor))
}

/// One partial slice ("ring"): `[start, start + 2^size units)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialSlice {
    /// First µs of the slice (included).
    pub start: Timestamp,
    /// The slice is `2^size` units long.
    pub size: u8,
}

impl PartialSlice {
    /// Length of the slice, µs.
    pub fn len_micros(&self) -> i64 {
        (1i64 << self.size) * UNIT_MICROS
    }

    /// First µs after the slice (excluded).
    pub fn end(&self) -> Timestamp {
        self.start.add_micros(self.len_micros())
    }
}

/// The slice layout at some time: how many full slices there are and where the partial slices
/// lie. Identical on every peer for the same current time (that is what lets two peers compare
/// hashes slice by slice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeLayout {
    factor: u8,
    full_slices: u64,
    partials: Vec<PartialSlice>,
    next_update_at: Timestamp,
}

impl TimeLayout {
    /// A layout with no full slice and no partial slice; call [`TimeLayout::update`] next.
    ///
    /// # Errors
    /// [`DhtError::Factor`] unless `1 <= factor <= 32` (Kitsune2 allows 53 in seconds).
    pub fn new(factor: u8) -> Result<TimeLayout, DhtError> {
        if factor == 0 {
            return Err(DhtError::Factor(factor));
        }
        residual_micros(factor)?;
        Ok(TimeLayout {
            factor,
            full_slices: 0,
            partials: Vec::new(),
            next_update_at: Timestamp::UNIX_EPOCH,
        })
    }

    /// Sets the number of sealed full slices (a model restored from the op store); partial
    /// slices are laid out by the next [`TimeLayout::update`].
    pub(crate) fn resume(&mut self, full_slices: u64) {
        self.full_slices = full_slices;
        self.partials.clear();
    }

    /// The time factor.
    pub fn factor(&self) -> u8 {
        self.factor
    }

    /// Length of a full slice, µs: `2^factor` units.
    pub fn full_slice_micros(&self) -> i64 {
        (1i64 << self.factor) * UNIT_MICROS
    }

    /// The least recent time left to partial slices, µs: `residual(factor - 1)`.
    pub fn min_recent_micros(&self) -> i64 {
        // `new` checked that the factor's residual fits, so the smaller one does too.
        residual_micros(self.factor - 1).unwrap_or(i64::MAX)
    }

    /// Number of full slices: slices `0..count` are sealed.
    pub fn full_slice_count(&self) -> u64 {
        self.full_slices
    }

    /// End of the last full slice (the *disc boundary* of a snapshot); the epoch if none.
    pub fn full_end(&self) -> Timestamp {
        self.full_slice_start(self.full_slices)
    }

    /// End of what the slices cover: the end of the last partial slice, else the disc
    /// boundary. Ops created at or after it (less than one unit at the head, and any from
    /// the future) are in no slice yet, so no snapshot compares them; Kitsune2 leaves them to
    /// "new ops since" (report §4.3).
    pub fn covered_end(&self) -> Timestamp {
        self.partials
            .last()
            .map_or(self.full_end(), PartialSlice::end)
    }

    /// The partial slices, oldest (largest) first.
    pub fn partials(&self) -> &[PartialSlice] {
        &self.partials
    }

    /// When the layout next changes: one unit after the end of the last partial slice (as
    /// Kitsune2), or one unit after the disc boundary while there are no partial slices.
    /// Calling [`TimeLayout::update`] earlier changes nothing.
    pub fn next_update_at(&self) -> Timestamp {
        self.next_update_at
    }

    /// The full slice holding `t`, `None` before the epoch.
    pub fn full_slice_of(&self, t: Timestamp) -> Option<u64> {
        u64::try_from(t.as_micros() / self.full_slice_micros())
            .ok()
            .filter(|_| t.as_micros() >= 0)
    }

    /// `[start, end)` of full slice `index`, `None` unless it is sealed (`index < count`).
    pub fn full_slice_bounds(&self, index: u64) -> Option<(Timestamp, Timestamp)> {
        (index < self.full_slices).then(|| {
            (
                self.full_slice_start(index),
                self.full_slice_start(index + 1),
            )
        })
    }

    /// `[start, end)` of partial slice `index`, `None` if there is no such slice.
    pub fn partial_bounds(&self, index: u32) -> Option<(Timestamp, Timestamp)> {
        let p = self.partials.get(index as usize)?;
        Some((p.start, p.end()))
    }

    /// Moves the layout to `now`: seals the full slices that now fit (keeping the minimum recent
    /// time free) and lays out the partial slices after them. Returns the indices of the full
    /// slices sealed by this call. The full slice count never goes down: if the clock went
    /// back before the disc boundary, there are simply no partial slices until it catches up.
    pub fn update(&mut self, now: Timestamp) -> std::ops::Range<u64> {
        let before = self.full_slices;
        let recent = now.micros_since(self.full_end());
        let min_recent = self.min_recent_micros();
        if recent > min_recent {
            let new = (recent - min_recent) / self.full_slice_micros();
            self.full_slices += new as u64;
        }
        self.partials = layout_partials(self.factor, self.full_end(), now);
        self.next_update_at = match self.partials.last() {
            Some(last) => last.end().add_micros(UNIT_MICROS),
            None => self.full_end().add_micros(UNIT_MICROS),
        };
        before..self.full_slices
    }

    fn full_slice_start(&self, index: u64) -> Timestamp {
        let micros = i128::from(self.full_slice_micros()) * i128::from(index);
        Timestamp::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }
}

/// Kitsune2's partial slice layout (`TimePartition::layout_partials`): from `start` to `now`,
/// for each size from `2^(factor-1)` units down to 1 unit, two slices of that size if the time
/// left exceeds `residual(size) + size`, else one if it exceeds the size, else none.
pub fn layout_partials(factor: u8, start: Timestamp, now: Timestamp) -> Vec<PartialSlice> {
    let mut left = now.micros_since(start);
    let mut at = start;
    let mut out = Vec::new();
    for size in (0..factor).rev() {
        let len = (1i64 << size) * UNIT_MICROS;
        let residual = residual_micros(size).unwrap_or(i64::MAX);
        let count = if left > residual.saturating_add(len) {
            2
        } else if left > len {
            1
        } else {
            0
        };
        for _ in 0..count {
            out.push(PartialSlice { start: at, size });
            at = at.add_micros(len);
            left -= len;
        }
    }
    out
}
