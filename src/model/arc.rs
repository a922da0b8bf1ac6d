//! `DhtArc`: a range of locations on the u32 DHT ring, as Kitsune2 defines it
//! (`crates/api/src/arc.rs`). An agent's *storage arc* is the range it claims to hold.

use serde::{Deserialize, Serialize};

/// An inclusive range of ring locations, or nothing.
///
/// `Arc(start, end)` holds `start..=end`; when `start > end` it wraps past `u32::MAX` to 0.
/// JSON (serde untagged, like Kitsune2): `[start, end]`, or `null` for [`DhtArc::Empty`]; a
/// missing `storageArc` field means `Empty` via [`Default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DhtArc {
    /// Holds no location.
    #[default]
    Empty,
    /// Holds `start..=end`, wrapping when `start > end`.
    Arc(u32, u32),
}

impl DhtArc {
    /// The whole ring, `[0, u32::MAX]`.
    pub const FULL: DhtArc = DhtArc::Arc(0, u32::MAX);

    /// Shortest ring distance from `loc` to the nearest location of the arc.
    ///
    /// 0 exactly when the arc contains `loc`; `u32::MAX` for [`DhtArc::Empty`]. Distances go
    /// both ways round the ring, so a location just "below" 0 is 1 away from an arc at 0.
    pub fn dist(&self, loc: u32) -> u32 {
        let DhtArc::Arc(s, e) = *self else {
            return u32::MAX;
        };
        if self.contains(loc) {
            return 0;
        }
        // Outside: the nearest point is either the start (walking up from loc) or the end
        // (walking down from loc). Wrapping arithmetic covers the wrapped and the plain case
        // alike; neither distance is 0 here.
        let to_start = s.wrapping_sub(loc);
        let from_end = loc.wrapping_sub(e);
        to_start.min(from_end)
    }

    /// Whether the arc holds `loc` (bounds included).
    pub fn contains(&self, loc: u32) -> bool {
        match *self {
            DhtArc::Empty => false,
            DhtArc::Arc(s, e) if s <= e => s <= loc && loc <= e,
            DhtArc::Arc(s, e) => loc >= s || loc <= e,
        }
    }

    /// Whether the two arcs share at least one location. `Empty` overlaps nothing.
    pub fn overlaps(&self, other: &DhtArc) -> bool {
        match (*self, *other) {
            // Two ring intervals share a point iff one holds the other's start (walk back
            // from a shared point: the first start met lies inside the other interval).
            (DhtArc::Arc(a, _), DhtArc::Arc(b, _)) => self.contains(b) || other.contains(a),
            _ => false,
        }
    }

    /// Length of the arc minus one (`end - start` round the ring), so [`DhtArc::FULL`] fits in
    /// a u32. Both `Empty` and a one-location arc give 0: match on the variant to tell them
    /// apart.
    pub fn arc_span(&self) -> u32 {
        match *self {
            DhtArc::Empty => 0,
            DhtArc::Arc(s, e) => e.wrapping_sub(s),
        }
    }

    /// Whether this is [`DhtArc::Empty`]. (A one-location arc is not empty.)
    pub fn is_empty(&self) -> bool {
        matches!(self, DhtArc::Empty)
    }
}

/// Number of DHT sectors on the ring (Kitsune2 `crates/dht/src/constant.rs`: 512).
pub const SECTORS: u32 = 512;
/// log2 of the width of one sector: a sector spans 2^23 ring locations.
pub const SECTOR_SHIFT: u32 = 23;
/// Width of one sector on the u32 ring: 2^23 locations.
pub const SECTOR_SIZE: u64 = 1 << SECTOR_SHIFT;

/// The sector (`0..SECTORS`) holding ring location `loc`: `loc >> 23` (Kitsune2's
/// `crates/dht`: sector `s` spans `[s * 2^23, (s + 1) * 2^23 - 1]`).
pub const fn sector_of(loc: u32) -> u32 {
    loc >> SECTOR_SHIFT
}

impl DhtArc {
    /// The arc of whole sectors `first..=last` (wrapping when `first > last`; sectors taken
    /// modulo [`SECTORS`]).
    pub fn of_sectors(first: u32, last: u32) -> DhtArc {
        let (first, last) = (first % SECTORS, last % SECTORS);
        DhtArc::Arc(
            first << SECTOR_SHIFT,
            (last << SECTOR_SHIFT) | ((1 << SECTOR_SHIFT) - 1),
        )
    }

    /// The sectors this arc touches, each once, in ring order from the arc's start. A sector
    /// only partly covered is included (nothing the arc holds is left out); an arc that wraps
    /// the ring back into its own first sector touches every sector. `Empty` touches none.
    pub fn sectors(&self) -> Vec<u32> {
        let DhtArc::Arc(s, e) = *self else {
            return Vec::new();
        };
        let (first, last) = (sector_of(s), sector_of(e));
        if s <= e {
            (first..=last).collect()
        } else if first > last {
            (first..SECTORS).chain(0..=last).collect()
        } else {
            (0..SECTORS).collect()
        }
    }

    /// The sectors this arc touches ([`DhtArc::sectors`]) as Kitsune2's arc-set bitset of 16
    /// `u32` words: sector `s` is bit `s % 32` of word `s / 32` (k2gossip `ArcSetMessage`).
    pub fn to_sector_set(&self) -> [u32; 16] {
        let mut words = [0u32; 16];
        for i in self.sectors() {
            words[(i / 32) as usize] |= 1 << (i % 32);
        }
        words
    }

    /// The smallest arc covering every sector of a Kitsune2 arc-set bitset: the ring minus its
    /// longest run of unset sectors. All set gives [`DhtArc::FULL`], none [`DhtArc::Empty`];
    /// missing words are empty.
    ///
    /// # Errors
    /// [`SectorSetError`] for more than 16 words (a malformed k2gossip `ArcSetMessage`).
    pub fn from_sector_set(words: &[u32]) -> Result<DhtArc, SectorSetError> {
        if words.len() > 16 {
            return Err(SectorSetError(words.len()));
        }
        let set = |i: u32| {
            words
                .get((i / 32) as usize)
                .is_some_and(|w| w & (1 << (i % 32)) != 0)
        };
        let count = (0..SECTORS).filter(|i| set(*i)).count();
        if count == 0 {
            return Ok(DhtArc::Empty);
        }
        if count == SECTORS as usize {
            return Ok(DhtArc::FULL);
        }
        // Longest cyclic gap of unset sectors: start at a set sector, walk the ring once.
        let start = (0..SECTORS).find(|i| set(*i)).unwrap_or(0);
        let (mut best_len, mut best_end) = (0u32, start);
        let mut run = 0u32;
        for k in 1..=SECTORS {
            let i = (start + k) % SECTORS;
            if set(i) {
                if run > best_len {
                    best_len = run;
                    best_end = i;
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        // The arc starts at the set sector ending the gap and ends just before the gap.
        let first = best_end;
        let last = (best_end + SECTORS - best_len - 1) % SECTORS;
        let lo = (first as u64 * SECTOR_SIZE) as u32;
        let hi = ((last as u64 + 1) * SECTOR_SIZE - 1) as u32;
        Ok(DhtArc::Arc(lo, hi))
    }

    /// The smallest arc covering the sectors both arcs touch (what two gossip partners
    /// compare, Kitsune2 `ArcSet::intersection`).
    pub fn sector_intersection(&self, other: &DhtArc) -> DhtArc {
        let (a, b) = (self.to_sector_set(), other.to_sector_set());
        let mut w = [0u32; 16];
        for i in 0..16 {
            w[i] = a[i] & b[i];
        }
        DhtArc::from_sector_set(&w).unwrap_or(DhtArc::Empty)
    }

    /// Whether the arc holds whole sectors only: start a multiple of 2^23, end one less than
    /// a multiple (`Empty` too). Kitsune2's gossip refuses other arcs (`ArcSet::new`,
    /// `crates/dht/src/arc_set.rs`): gossip compares whole sectors, so two peers holding
    /// different parts of a sector differ there for good. In a simulation of 16 peers with
    /// unaligned quarter arcs, each found a difference in nearly every round of ten idle
    /// minutes (~2 KB/s of gossip a peer against 24 B/s with aligned arcs).
    pub fn is_sector_aligned(&self) -> bool {
        match *self {
            DhtArc::Empty => true,
            DhtArc::Arc(s, e) => {
                u64::from(s) % SECTOR_SIZE == 0 && (u64::from(e) + 1) % SECTOR_SIZE == 0
            }
        }
    }

    /// The smallest sector-aligned arc ([`Self::is_sector_aligned`]) holding this one.
    pub fn sector_cover(&self) -> DhtArc {
        // 16 words never fail.
        DhtArc::from_sector_set(&self.to_sector_set()).unwrap_or(DhtArc::FULL)
    }
}

/// An arc-set bitset with more than 16 words (the count it had).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed arc set: {0} words, at most 16")]
pub struct SectorSetError(pub usize);

/// A set of sectors: which sectors two gossip partners compare (Kitsune2's `ArcSet`,
/// `crates/dht/src/arc_set.rs`), kept as its wire form, 16 `u32` words with sector `s` at bit
/// `s % 32` of word `s / 32` (k2gossip `ArcSetMessage`).
///
/// Built from arcs with [`DhtArc::to_sector_set`], so an arc that covers a sector only partly
/// includes it (Kitsune2 refuses arcs not on sector boundaries; a local storage arc must be
/// whole sectors, [`DhtArc::is_sector_aligned`], but a peer's info may claim any arc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SectorSet(pub [u32; 16]);

impl SectorSet {
    /// Every sector.
    pub const FULL: SectorSet = SectorSet([u32::MAX; 16]);

    /// The union of the sectors the arcs touch.
    pub fn from_arcs(arcs: &[DhtArc]) -> SectorSet {
        let mut words = [0u32; 16];
        for arc in arcs {
            for (w, a) in words.iter_mut().zip(arc.to_sector_set()) {
                *w |= a;
            }
        }
        SectorSet(words)
    }

    /// The sectors in both sets (Kitsune2 `ArcSet::intersection`).
    pub fn intersection(&self, other: &SectorSet) -> SectorSet {
        let mut words = self.0;
        for (w, o) in words.iter_mut().zip(other.0) {
            *w &= o;
        }
        SectorSet(words)
    }

    /// Whether `sector` is in the set; sectors `>= SECTORS` never are.
    pub fn contains(&self, sector: u32) -> bool {
        sector < SECTORS && self.0[(sector / 32) as usize] & (1 << (sector % 32)) != 0
    }

    /// Number of sectors in the set (Kitsune2 `covered_sector_count`).
    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether the set holds no sector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sectors of the set, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        (0..SECTORS).filter(|s| self.contains(*s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    const M: u32 = u32::MAX;

    #[test]
    fn sector_sets_round_trip() {
        assert_eq!(sector_of(0), 0);
        assert_eq!(sector_of(M), SECTORS - 1);
        assert_eq!(DhtArc::FULL.to_sector_set(), [u32::MAX; 16]);
        assert_eq!(DhtArc::Empty.to_sector_set(), [0; 16]);
        assert_eq!(DhtArc::from_sector_set(&[u32::MAX; 16]), Ok(DhtArc::FULL));
        assert_eq!(DhtArc::from_sector_set(&[]), Ok(DhtArc::Empty));
        let aligned = DhtArc::of_sectors(0, 2);
        assert_eq!(aligned, DhtArc::Arc(0, (SECTOR_SIZE * 3 - 1) as u32));
        let w = aligned.to_sector_set();
        assert_eq!(w[0], 0b111);
        assert_eq!(DhtArc::from_sector_set(&w), Ok(aligned));
        // Unaligned: partly covered sectors are included.
        assert_eq!(
            DhtArc::Arc(42, SECTOR_SIZE as u32 + 5).sectors(),
            vec![0, 1]
        );
        // Wrapping: the last and first sectors, covered by one wrapping arc.
        let wrap = DhtArc::Arc(M - 10, 10);
        assert_eq!(wrap.sectors(), vec![SECTORS - 1, 0]);
        let w = wrap.to_sector_set();
        assert_eq!((w[0], w[15]), (1, 1 << 31));
        assert_eq!(DhtArc::from_sector_set(&w), Ok(DhtArc::of_sectors(511, 0)));
        // A wrapping arc starting and ending in one sector covers the ring.
        assert_eq!(DhtArc::Arc(10, 5).to_sector_set(), [u32::MAX; 16]);
        assert_eq!(DhtArc::from_sector_set(&[0; 17]), Err(SectorSetError(17)));
        assert_eq!(DhtArc::FULL.sector_intersection(&aligned), aligned);
        assert_eq!(
            DhtArc::of_sectors(0, 5).sector_intersection(&DhtArc::of_sectors(3, 9)),
            DhtArc::of_sectors(3, 5)
        );
    }

    #[test]
    fn sector_sets_kitsune2_arc_set_fixtures() {
        // Kitsune2 crates/dht/src/arc_set.rs tests, with its SECTOR_SIZE = 2^23.
        let ss = SECTOR_SIZE as u32;
        let set = |arcs: &[DhtArc]| SectorSet::from_arcs(arcs);
        assert!(set(&[]).is_empty());
        assert!(set(&[DhtArc::Empty]).is_empty());
        assert_eq!(set(&[DhtArc::FULL]).len(), 512);
        assert_eq!(set(&[DhtArc::FULL]).iter().max(), Some(511));
        let halves = set(&[DhtArc::Arc(0, 255 * ss - 1), DhtArc::Arc(255 * ss, M)]);
        assert_eq!(halves, SectorSet::FULL);
        let overlap = set(&[DhtArc::Arc(0, 3 * ss - 1), DhtArc::Arc(2 * ss, 4 * ss - 1)]);
        assert_eq!(overlap.iter().collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        let wrap = set(&[DhtArc::Arc(510 * ss, 3 * ss - 1)]);
        assert_eq!(wrap.iter().collect::<Vec<_>>(), vec![0, 1, 2, 510, 511]);
        let wraps = set(&[
            DhtArc::Arc(510 * ss, 3 * ss - 1),
            DhtArc::Arc(2 * ss, 4 * ss - 1),
        ]);
        assert_eq!(wraps.len(), 6);
        let one = |a: u32, b: u32| set(&[DhtArc::Arc(a * ss, b * ss - 1)]);
        assert!(one(0, 1).intersection(&one(2, 3)).is_empty());
        assert_eq!(
            one(0, 2)
                .intersection(&one(1, 3))
                .iter()
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(one(0, 10).intersection(&one(1, 3)).len(), 2);
        assert_eq!(
            SectorSet::FULL.intersection(&SectorSet::FULL),
            SectorSet::FULL
        );
        assert!(
            set(&[DhtArc::Empty])
                .intersection(&SectorSet::FULL)
                .is_empty()
        );
        assert!(!one(0, 1).contains(1) && one(0, 1).contains(0) && !one(0, 1).contains(512));
    }

    /// Kitsune2's rule for gossip arcs (`arc_set.rs`): start `k * 2^23`, end `j * 2^23 - 1`.
    #[test]
    fn sector_alignment_and_cover() {
        const S: u32 = 1 << SECTOR_SHIFT;
        for arc in [
            DhtArc::Empty,
            DhtArc::FULL,
            DhtArc::of_sectors(3, 7),
            DhtArc::of_sectors(500, 2),
            DhtArc::Arc(0, M / 2),
        ] {
            assert!(arc.is_sector_aligned(), "{arc:?}");
            assert_eq!(arc.sector_cover(), arc, "{arc:?}");
        }
        for (arc, cover) in [
            (DhtArc::Arc(1, 2 * S - 1), DhtArc::Arc(0, 2 * S - 1)),
            (DhtArc::Arc(S, 2 * S), DhtArc::Arc(S, 3 * S - 1)),
            (DhtArc::Arc(0, M / 3), DhtArc::of_sectors(0, 170)),
            (DhtArc::Arc(M - 5, 5), DhtArc::of_sectors(511, 0)),
            (DhtArc::Arc(10, 5), DhtArc::FULL),
            (DhtArc::Arc(7, 7), DhtArc::of_sectors(0, 0)),
        ] {
            assert!(!arc.is_sector_aligned(), "{arc:?}");
            assert_eq!(arc.sector_cover(), cover, "{arc:?}");
            assert!(cover.is_sector_aligned(), "{arc:?}");
        }
    }

    #[test]
    fn arc_span_kitsune2_fixtures() {
        for (expected, arc) in [
            (0, DhtArc::Empty),
            (0, DhtArc::Arc(0, 0)),
            (1, DhtArc::Arc(0, 1)),
            (1, DhtArc::Arc(M, 0)),
            (2, DhtArc::Arc(42, 44)),
            (M, DhtArc::Arc(42, 41)),
            (M, DhtArc::Arc(0, M)),
            (M, DhtArc::Arc(M, M - 1)),
        ] {
            assert_eq!(expected, arc.arc_span(), "{arc:?}");
        }
    }

    #[test]
    fn contains_kitsune2_fixtures() {
        // Full arc: bounds and middle.
        for loc in [0, M, M / 2] {
            assert!(DhtArc::FULL.contains(loc));
        }
        // Bounds are inclusive.
        assert!(DhtArc::Arc(32, 64).contains(32));
        assert!(DhtArc::Arc(32, 64).contains(64));
        // Wrapping.
        let arc = DhtArc::Arc(M - 32, 32);
        for (inside, loc) in [
            (false, M - 33),
            (true, M - 32),
            (true, M - 1),
            (true, M),
            (true, 0),
            (true, 20),
            (true, 32),
            (false, 33),
        ] {
            assert_eq!(inside, arc.contains(loc), "{loc}");
        }
        // Empty holds nothing.
        for loc in [0, M, M / 2] {
            assert!(!DhtArc::Empty.contains(loc));
        }
    }

    #[test]
    fn dist_kitsune2_edge_cases() {
        // (dist, loc, arc), from `arc_dist_edge_cases`.
        const F: &[(u32, u32, DhtArc)] = &[
            (M, 0, DhtArc::Empty),
            (M, M / 2, DhtArc::Empty),
            (M, M, DhtArc::Empty),
            (1, 0, DhtArc::Arc(M, M)),
            (M / 2 + 1, M / 2, DhtArc::Arc(M, M)),
            (1, M, DhtArc::Arc(0, 0)),
            (M / 2, M / 2, DhtArc::Arc(0, 0)),
            (0, 0, DhtArc::Arc(0, 1)),
            (0, M - 1, DhtArc::Arc(M - 1, M)),
            (1, 0, DhtArc::Arc(1, 2)),
            (1, M, DhtArc::Arc(0, 1)),
            (1, 0, DhtArc::Arc(M - 1, M)),
            (0, 0, DhtArc::Arc(M, 0)),
            (1, 1, DhtArc::Arc(M, 0)),
            (1, M - 1, DhtArc::Arc(M, 0)),
            (1, M - 1, DhtArc::Arc(M, 1)),
            (0, 0, DhtArc::Arc(M, 1)),
        ];
        for (dist, loc, arc) in F {
            assert_eq!(*dist, arc.dist(*loc), "dist from {loc} to {arc:?}");
        }
    }

    #[test]
    fn overlaps_kitsune2_edge_cases() {
        const F: &[(bool, DhtArc, DhtArc)] = &[
            (false, DhtArc::Arc(0, 0), DhtArc::Arc(1, 1)),
            (false, DhtArc::Arc(0, 0), DhtArc::Arc(M, M)),
            (true, DhtArc::Arc(0, 0), DhtArc::Arc(0, 0)),
            (true, DhtArc::Arc(M, M), DhtArc::Arc(M, M)),
            (true, DhtArc::Arc(M, 0), DhtArc::Arc(0, 0)),
            (true, DhtArc::Arc(M, 0), DhtArc::Arc(M, M)),
            (true, DhtArc::Arc(0, 3), DhtArc::Arc(1, 2)),
            (true, DhtArc::Arc(1, 2), DhtArc::Arc(0, 3)),
            (true, DhtArc::Arc(1, 3), DhtArc::Arc(2, 4)),
            (true, DhtArc::Arc(2, 4), DhtArc::Arc(1, 3)),
            (true, DhtArc::Arc(M - 1, 1), DhtArc::Arc(M, 0)),
            (true, DhtArc::Arc(M, 0), DhtArc::Arc(M - 1, 1)),
            (true, DhtArc::Arc(M - 1, 0), DhtArc::Arc(M, 1)),
            (true, DhtArc::Arc(M, 1), DhtArc::Arc(M - 1, 0)),
        ];
        for (overlap, a, b) in F {
            assert_eq!(*overlap, a.overlaps(b), "{a:?} overlaps {b:?}");
        }
    }

    #[test]
    fn empty_overlaps_nothing() {
        for a in [
            DhtArc::Empty,
            DhtArc::FULL,
            DhtArc::Arc(5, 5),
            DhtArc::Arc(9, 3),
        ] {
            assert!(!a.overlaps(&DhtArc::Empty));
            assert!(!DhtArc::Empty.overlaps(&a));
        }
        assert!(DhtArc::Empty.is_empty());
        assert!(!DhtArc::Arc(0, 0).is_empty());
    }

    /// The closed forms above agree with Kitsune2's case-by-case definitions on a grid of
    /// edge values (both wrapped and plain arcs, bounds, neighbours of bounds).
    #[test]
    fn agrees_with_kitsune2_reference_definitions() {
        fn k2_dist(arc: DhtArc, loc: u32) -> u32 {
            let DhtArc::Arc(s, e) = arc else {
                return u32::MAX;
            };
            let (d1, d2) = if s > e {
                if loc >= s || loc <= e {
                    return 0;
                }
                (s - loc, loc - e)
            } else if loc >= s && loc <= e {
                return 0;
            } else if loc < s {
                (s - loc, u32::MAX - e + loc + 1)
            } else {
                (u32::MAX - loc + s + 1, loc - e)
            };
            d1.min(d2)
        }
        fn k2_overlaps(a: DhtArc, b: DhtArc) -> bool {
            match (a, b) {
                (DhtArc::Arc(a0, a1), DhtArc::Arc(b0, b1)) => {
                    k2_dist(a, b0) == 0
                        || k2_dist(a, b1) == 0
                        || k2_dist(b, a0) == 0
                        || k2_dist(b, a1) == 0
                }
                _ => false,
            }
        }
        let pts = [
            0,
            1,
            2,
            100,
            M / 2 - 1,
            M / 2,
            M / 2 + 1,
            M - 100,
            M - 2,
            M - 1,
            M,
        ];
        let mut arcs = vec![DhtArc::Empty];
        for s in pts {
            for e in pts {
                arcs.push(DhtArc::Arc(s, e));
            }
        }
        for a in &arcs {
            for loc in pts {
                assert_eq!(k2_dist(*a, loc), a.dist(loc), "dist {loc} {a:?}");
                assert_eq!(k2_dist(*a, loc) == 0, a.contains(loc));
            }
            for b in &arcs {
                assert_eq!(k2_overlaps(*a, *b), a.overlaps(b), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn json_is_pair_or_null() {
        assert_eq!(
            serde_json::to_string(&DhtArc::Arc(42, 330382099)).unwrap(),
            "[42,330382099]"
        );
        assert_eq!(serde_json::to_string(&DhtArc::Empty).unwrap(), "null");
        assert_eq!(
            serde_json::from_str::<DhtArc>("null").unwrap(),
            DhtArc::Empty
        );
        assert_eq!(
            serde_json::from_str::<DhtArc>("[7, 3]").unwrap(),
            DhtArc::Arc(7, 3)
        );
        for bad in [
            "[1]",
            "[1,2,3]",
            "[-1,2]",
            "[1,4294967296]",
            "\"x\"",
            "{}",
            "[1.5,2]",
        ] {
            assert!(serde_json::from_str::<DhtArc>(bad).is_err(), "{bad}");
        }
    }
}
