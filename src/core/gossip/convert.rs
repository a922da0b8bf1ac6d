//! [`DhtSnapshot`] to and from its k2gossip form, checking what Kitsune2 checks on decode
//! (`crates/gossip/src/protocol.rs`): parallel arrays of equal length and sector indices below
//! [`SECTORS`]. A bad message is a [`GossipError::Malformed`], never a panic.

use super::GossipError;
use crate::core::dht::snapshot::DhtSnapshot;
use crate::model::arc::SECTORS;
use crate::model::time::Timestamp;
use crate::wire::{
    DiscSliceHashes, RingSectorHashes, SnapshotDiscSectorDetailsMessage,
    SnapshotDiscSectorsMessage, SnapshotMinimalMessage, SnapshotRingSectorDetailsMessage,
};

fn malformed(what: &'static str) -> GossipError {
    GossipError::Malformed(what)
}

fn sector(s: u32) -> Result<u32, GossipError> {
    (s < SECTORS)
        .then_some(s)
        .ok_or(malformed("sector index out of range"))
}

/// `Minimal` as `SnapshotMinimalMessage`; `None` for another kind.
pub(crate) fn minimal_out(s: &DhtSnapshot) -> Option<SnapshotMinimalMessage> {
    match s {
        DhtSnapshot::Minimal {
            disc_top_hash,
            disc_boundary,
            ring_top_hashes,
        } => Some(SnapshotMinimalMessage {
            disc_boundary: disc_boundary.as_micros(),
            disc_top_hash: disc_top_hash.clone(),
            ring_top_hashes: ring_top_hashes.clone(),
        }),
        _ => None,
    }
}

/// The snapshot of an `Accept`.
pub(crate) fn minimal_in(m: &SnapshotMinimalMessage) -> DhtSnapshot {
    DhtSnapshot::Minimal {
        disc_top_hash: m.disc_top_hash.clone(),
        disc_boundary: Timestamp::from_micros(m.disc_boundary),
        ring_top_hashes: m.ring_top_hashes.clone(),
    }
}

/// `DiscSectors` as its message; `None` for another kind.
pub(crate) fn disc_sectors_out(s: &DhtSnapshot) -> Option<SnapshotDiscSectorsMessage> {
    match s {
        DhtSnapshot::DiscSectors {
            disc_sector_top_hashes,
            disc_boundary,
        } => Some(SnapshotDiscSectorsMessage {
            disc_boundary: disc_boundary.as_micros(),
            disc_sectors: disc_sector_top_hashes.keys().copied().collect(),
            disc_sector_hashes: disc_sector_top_hashes.values().cloned().collect(),
        }),
        _ => None,
    }
}

/// # Errors
/// [`GossipError::Malformed`] for unequal arrays or a bad sector.
pub(crate) fn disc_sectors_in(m: &SnapshotDiscSectorsMessage) -> Result<DhtSnapshot, GossipError> {
    if m.disc_sectors.len() != m.disc_sector_hashes.len() {
        return Err(malformed("disc sectors and hashes differ in length"));
    }
    let mut map = Vec::with_capacity(m.disc_sectors.len());
    for (s, h) in m.disc_sectors.iter().zip(&m.disc_sector_hashes) {
        map.push((sector(*s)?, h.clone()));
    }
    Ok(DhtSnapshot::DiscSectors {
        disc_sector_top_hashes: map.into_iter().collect(),
        disc_boundary: Timestamp::from_micros(m.disc_boundary),
    })
}

/// `DiscSectorDetails` as its message; `None` for another kind.
pub(crate) fn disc_details_out(s: &DhtSnapshot) -> Option<SnapshotDiscSectorDetailsMessage> {
    match s {
        DhtSnapshot::DiscSectorDetails {
            disc_sector_hashes,
            disc_boundary,
        } => Some(SnapshotDiscSectorDetailsMessage {
            disc_boundary: disc_boundary.as_micros(),
            sector_indices: disc_sector_hashes.keys().copied().collect(),
            disc_slice_hashes: disc_sector_hashes
                .values()
                .map(|slices| DiscSliceHashes {
                    slice_indices: slices.keys().copied().collect(),
                    hashes: slices.values().cloned().collect(),
                })
                .collect(),
        }),
        _ => None,
    }
}

/// # Errors
/// [`GossipError::Malformed`] for unequal arrays or a bad sector.
pub(crate) fn disc_details_in(
    m: &SnapshotDiscSectorDetailsMessage,
) -> Result<DhtSnapshot, GossipError> {
    if m.sector_indices.len() != m.disc_slice_hashes.len() {
        return Err(malformed("disc detail sectors and slices differ in length"));
    }
    let mut map = Vec::with_capacity(m.sector_indices.len());
    for (s, slices) in m.sector_indices.iter().zip(&m.disc_slice_hashes) {
        if slices.slice_indices.len() != slices.hashes.len() {
            return Err(malformed("slice indices and hashes differ in length"));
        }
        let indices = slices.slice_indices.iter().copied();
        map.push((
            sector(*s)?,
            indices.zip(slices.hashes.iter().cloned()).collect(),
        ));
    }
    Ok(DhtSnapshot::DiscSectorDetails {
        disc_sector_hashes: map.into_iter().collect(),
        disc_boundary: Timestamp::from_micros(m.disc_boundary),
    })
}

/// `RingSectorDetails` as its message; `None` for another kind.
pub(crate) fn ring_details_out(s: &DhtSnapshot) -> Option<SnapshotRingSectorDetailsMessage> {
    match s {
        DhtSnapshot::RingSectorDetails {
            ring_sector_hashes,
            disc_boundary,
        } => Some(SnapshotRingSectorDetailsMessage {
            disc_boundary: disc_boundary.as_micros(),
            ring_indices: ring_sector_hashes.keys().copied().collect(),
            ring_sector_hashes: ring_sector_hashes
                .values()
                .map(|sectors| RingSectorHashes {
                    sector_indices: sectors.keys().copied().collect(),
                    hashes: sectors.values().cloned().collect(),
                })
                .collect(),
        }),
        _ => None,
    }
}

/// # Errors
/// [`GossipError::Malformed`] for unequal arrays or a bad sector.
pub(crate) fn ring_details_in(
    m: &SnapshotRingSectorDetailsMessage,
) -> Result<DhtSnapshot, GossipError> {
    if m.ring_indices.len() != m.ring_sector_hashes.len() {
        return Err(malformed("ring indices and sector hashes differ in length"));
    }
    let mut map = Vec::with_capacity(m.ring_indices.len());
    for (ring, sectors) in m.ring_indices.iter().zip(&m.ring_sector_hashes) {
        if sectors.sector_indices.len() != sectors.hashes.len() {
            return Err(malformed("ring sector indices and hashes differ in length"));
        }
        let mut inner = Vec::with_capacity(sectors.sector_indices.len());
        for (s, h) in sectors.sector_indices.iter().zip(&sectors.hashes) {
            inner.push((sector(*s)?, h.clone()));
        }
        map.push((*ring, inner.into_iter().collect()));
    }
    Ok(DhtSnapshot::RingSectorDetails {
        ring_sector_hashes: map.into_iter().collect(),
        disc_boundary: Timestamp::from_micros(m.disc_boundary),
    })
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn h(x: u8) -> Bytes {
        Bytes::from(vec![x; 32])
    }

    fn at(us: i64) -> Timestamp {
        Timestamp::from_micros(us)
    }

    /// Each detailed kind survives its message form unchanged.
    #[test]
    fn snapshots_round_trip_through_their_messages() {
        let sectors = DhtSnapshot::DiscSectors {
            disc_sector_top_hashes: [(2, h(1)), (511, h(2))].into(),
            disc_boundary: at(7),
        };
        let out = disc_sectors_out(&sectors).unwrap();
        assert_eq!(disc_sectors_in(&out).unwrap(), sectors);
        let details = DhtSnapshot::DiscSectorDetails {
            disc_sector_hashes: [(0, [(4, h(3)), (90, h(4))].into()), (3, [].into())].into(),
            disc_boundary: at(8),
        };
        let out = disc_details_out(&details).unwrap();
        assert_eq!(disc_details_in(&out).unwrap(), details);
        let rings = DhtSnapshot::RingSectorDetails {
            ring_sector_hashes: [(0, [(1, h(5))].into()), (6, [].into())].into(),
            disc_boundary: at(9),
        };
        let out = ring_details_out(&rings).unwrap();
        assert_eq!(ring_details_in(&out).unwrap(), rings);
    }

    /// A peer may list keys in any order and, being hostile or buggy, twice: the decoded map
    /// holds each key once, ascending, with the last value listed (what a Kitsune2 peer's
    /// `HashMap` keeps), so it compares with ours as the same snapshot.
    #[test]
    fn keys_out_of_order_or_repeated_decode_to_one_canonical_map() {
        let m = SnapshotDiscSectorsMessage {
            disc_boundary: 5,
            disc_sectors: vec![9, 2, 9, 4],
            disc_sector_hashes: vec![h(1), h(2), h(3), h(4)],
        };
        let want = DhtSnapshot::DiscSectors {
            disc_sector_top_hashes: [(2, h(2)), (4, h(4)), (9, h(3))].into(),
            disc_boundary: at(5),
        };
        assert_eq!(disc_sectors_in(&m).unwrap(), want);

        let m = SnapshotRingSectorDetailsMessage {
            disc_boundary: 5,
            ring_indices: vec![3, 1, 3],
            ring_sector_hashes: vec![
                RingSectorHashes {
                    sector_indices: vec![8],
                    hashes: vec![h(1)],
                },
                RingSectorHashes {
                    sector_indices: vec![7, 6, 7],
                    hashes: vec![h(2), h(3), h(4)],
                },
                RingSectorHashes {
                    sector_indices: vec![5],
                    hashes: vec![h(5)],
                },
            ],
        };
        let want = DhtSnapshot::RingSectorDetails {
            ring_sector_hashes: [(1, [(6, h(3)), (7, h(4))].into()), (3, [(5, h(5))].into())]
                .into(),
            disc_boundary: at(5),
        };
        assert_eq!(ring_details_in(&m).unwrap(), want);
    }
}
