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
