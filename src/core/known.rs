//! [`KnownOps`]: per peer, op ids the peer is known to hold, so publish does not announce them
//! to it again. [`HeldIds`]: the op ids our own store holds, while that set is known in full,
//! so an announcement needs no store lookup.

use crate::bounded::BoundedSet;
use crate::hash::{HashMap, HashSet};
use crate::model::id::OpId;
use crate::model::url::Url;

/// Per peer, op ids it is known to hold, so publish does not announce them again:
/// ids it announced to us, ids we fetched from it, ids we served it, ids whose publish
/// announcement we delivered to it.
///
/// Memory is bounded: each peer's set is a FIFO of at most `per_peer` ids, at most
/// `max_peers` peers are tracked (the least recently updated is dropped), and ids are kept as
/// 64-bit fingerprints (8 bytes of the id; op ids are hashes), about 32 bytes per entry. A
/// fingerprint collision only means an op is not announced to one peer; gossip
/// rounds still offer it.
#[derive(Debug, Clone)]
pub struct KnownOps {
    per_peer: usize,
    max_peers: usize,
    peers: HashMap<Url, (BoundedSet<u64>, u64)>,
    tick: u64,
}

fn fingerprint(id: &OpId) -> u64 {
    let mut b = [0u8; 8];
    let src = id.as_bytes();
    let n = src.len().min(8);
    b[..n].copy_from_slice(&src[..n]);
    u64::from_le_bytes(b)
}

impl KnownOps {
    /// Empty, with the given bounds.
    pub fn new(per_peer: usize, max_peers: usize) -> Self {
        KnownOps {
            per_peer,
            max_peers,
            peers: HashMap::default(),
            tick: 0,
        }
    }

    /// Records that `peer` holds `ids`.
    pub fn add<'a>(&mut self, peer: &Url, ids: impl IntoIterator<Item = &'a OpId>) {
        if self.per_peer == 0 || self.max_peers == 0 {
            return;
        }
        self.tick += 1;
        if !self.peers.contains_key(peer) && self.peers.len() >= self.max_peers {
            let oldest = self
                .peers
                .iter()
                .min_by_key(|(u, (_, t))| (*t, (*u).clone()))
                .map(|(u, _)| u.clone());
            if let Some(u) = oldest {
                self.peers.remove(&u);
            }
        }
        let per_peer = self.per_peer;
        let (set, t) = self
            .peers
            .entry(peer.clone())
            .or_insert_with(|| (BoundedSet::new(per_peer), 0));
        *t = self.tick;
        for id in ids {
            set.insert(fingerprint(id));
        }
    }

    /// Whether `peer` is known to hold `id`.
    pub fn holds(&self, peer: &Url, id: &OpId) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|(s, _)| s.contains(&fingerprint(id)))
    }

    /// Forgets `peer`.
    pub fn forget(&mut self, peer: &Url) {
        self.peers.remove(peer);
    }

    /// Keeps only the peers for which `keep` is true.
    pub fn retain(&mut self, mut keep: impl FnMut(&Url) -> bool) {
        self.peers.retain(|u, _| keep(u));
    }

    /// Peers tracked.
    pub fn peer_count(&self) -> usize {
        self.peers.len()
    }
}

/// Fingerprints of every op id our store holds, kept while that set is known in full: the
/// store was empty when the space loaded it and every write since went through the space. An
/// id whose fingerprint is absent is then surely missing, so announced ids go to the fetch
/// queue without an [`crate::api::OpStore::filter_out_existing_ops`] read. That read is
/// ordered behind every write already queued (IndexedDB runs transactions over one object
/// store in creation order), which held a syncing tab's fetches up by seconds.
///
/// A fingerprint hit is only probable (8 bytes of the id), so those ids still take the read.
/// Another writer of the same database (a second handle) can make a "surely missing" id a
/// held one; fetching it again costs bytes, not correctness (the store dedups by id).
/// Bounded: past `max` ids the set is dropped for good ([`Self::knows_all`] is false).
#[derive(Debug, Clone)]
pub struct HeldIds {
    max: usize,
    ids: Option<HashSet<u64>>,
}

impl HeldIds {
    /// The set of an empty store, given up past `max` ids (9-18 bytes each).
    pub fn empty(max: usize) -> Self {
        HeldIds {
            max,
            ids: Some(HashSet::default()),
        }
    }

    /// The store holds ops this space did not see written: the set is given up.
    pub fn give_up(&mut self) {
        self.ids = None;
    }

    /// Whether the set still holds every stored id.
    pub fn knows_all(&self) -> bool {
        self.ids.is_some()
    }

    /// Records ids the store newly holds.
    pub fn add<'a>(&mut self, ids: impl IntoIterator<Item = &'a OpId>) {
        if let Some(set) = &mut self.ids {
            set.extend(ids.into_iter().map(fingerprint));
            if set.len() > self.max {
                self.ids = None;
            }
        }
    }

    /// `true` only if the store surely lacks `id`; `false` if it may hold it or the set was
    /// given up.
    pub fn surely_missing(&self, id: &OpId) -> bool {
        self.ids
            .as_ref()
            .is_some_and(|s| !s.contains(&fingerprint(id)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(n: u8) -> Url {
        Url::parse(&format!("ws://peer.test:80/p{n}")).unwrap()
    }
    fn oid(n: u8) -> OpId {
        OpId::from_bytes(vec![n; 32])
    }

    #[test]
    fn known_ops_are_bounded_per_peer_and_in_peers() {
        let mut k = KnownOps::new(2, 2);
        k.add(&url(1), [&oid(1), &oid(2), &oid(3)]);
        assert!(!k.holds(&url(1), &oid(1)), "FIFO bound");
        assert!(k.holds(&url(1), &oid(3)));
        k.add(&url(2), [&oid(1)]);
        k.add(&url(3), [&oid(1)]);
        assert!(!k.holds(&url(1), &oid(3)), "least recent peer dropped");
        assert!(k.holds(&url(3), &oid(1)));
    }

    #[test]
    fn held_ids_prove_absence_until_given_up_or_full() {
        let mut h = HeldIds::empty(3);
        assert!(h.surely_missing(&oid(1)));
        h.add([&oid(1), &oid(2)]);
        assert!(!h.surely_missing(&oid(1)));
        assert!(h.surely_missing(&oid(3)));
        h.add([&oid(3), &oid(4)]);
        assert!(!h.knows_all(), "past its bound the set is dropped");
        assert!(!h.surely_missing(&oid(5)));
        let mut g = HeldIds::empty(10);
        g.give_up();
        assert!(!g.surely_missing(&oid(1)));
        g.add([&oid(1)]);
        assert!(!g.knows_all(), "a given-up set stays given up");
    }
}
