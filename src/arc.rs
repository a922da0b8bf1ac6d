//! STAND-IN for the `types` branch's `arc.rs` (deleted when that lands on main).

/// Inclusive ring range, may wrap; stand-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DhtArc {
    /// Holds nothing.
    #[default]
    Empty,
    /// Holds `start..=end`, wrapping when `start > end`.
    Arc(u32, u32),
}

impl DhtArc {
    /// The whole ring.
    pub const FULL: DhtArc = DhtArc::Arc(0, u32::MAX);

    /// Whether the arc holds `loc`.
    pub fn contains(&self, loc: u32) -> bool {
        match *self {
            DhtArc::Empty => false,
            DhtArc::Arc(s, e) if s <= e => s <= loc && loc <= e,
            DhtArc::Arc(s, e) => loc >= s || loc <= e,
        }
    }

    /// Whether this is `Empty`.
    pub fn is_empty(&self) -> bool {
        matches!(self, DhtArc::Empty)
    }

    /// Whether the arcs share a location.
    pub fn overlaps(&self, other: &DhtArc) -> bool {
        match (*self, *other) {
            (DhtArc::Arc(a, _), DhtArc::Arc(b, _)) => self.contains(b) || other.contains(a),
            _ => false,
        }
    }
}
