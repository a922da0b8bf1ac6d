//! [`OpCache`]: the data of recently stored ops, kept in memory so that peers' fetch requests
//! for them are answered without a store read.
//!
//! Why: in a browser swarm the op store (IndexedDB) is the bottleneck, not the network. Every
//! tab of one browser shares one IndexedDB backend, and in the 8-tab `npm start` job each tab
//! makes as many read transactions to serve fetch requests as write transactions to store
//! what it fetched (about 45 of each, ~10 000 ops read back). The ops peers ask for are almost
//! always ones stored moments before: the author's fresh publishes, or what a peer just
//! fetched itself. Kitsune2 reads every served op from its store.
//!
//! The cache holds copies (a fetched op's bytes are a slice of a whole received frame, which
//! would otherwise stay alive), bounded by total bytes, oldest out first.

use std::collections::VecDeque;

use bytes::Bytes;

use crate::hash::HashMap;
use crate::model::id::OpId;

/// Op data by id, at most `max_bytes` of it; inserting past the bound forgets the oldest
/// entries first. An op larger than the bound is not kept; `max_bytes` 0 keeps nothing.
#[derive(Debug, Clone)]
pub struct OpCache {
    max_bytes: usize,
    bytes: usize,
    map: HashMap<OpId, Bytes>,
    order: VecDeque<OpId>,
}

impl OpCache {
    /// An empty cache holding at most `max_bytes` of op data.
    pub fn new(max_bytes: usize) -> Self {
        OpCache {
            max_bytes,
            bytes: 0,
            map: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// Keeps a copy of `data` under `id` (nothing if `id` is there or `data` alone exceeds
    /// the bound).
    pub fn insert(&mut self, id: &OpId, data: &[u8]) {
        if data.len() > self.max_bytes || self.map.contains_key(id) {
            return;
        }
        while self.bytes + data.len() > self.max_bytes {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(d) = self.map.remove(&old) {
                self.bytes -= d.len();
            }
        }
        self.bytes += data.len();
        self.map.insert(id.clone(), Bytes::copy_from_slice(data));
        self.order.push_back(id.clone());
    }

    /// The data kept for `id`.
    pub fn get(&self, id: &OpId) -> Option<&Bytes> {
        self.map.get(id)
    }

    /// Ops kept.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes of op data kept.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> OpId {
        OpId::from_bytes(vec![n; 32])
    }

    #[test]
    fn keeps_at_most_the_byte_bound_forgetting_the_oldest_first() {
        let mut c = OpCache::new(10);
        c.insert(&id(1), &[1; 4]);
        c.insert(&id(2), &[2; 4]);
        assert_eq!((c.len(), c.bytes()), (2, 8));
        // 8 + 4 > 10: the oldest goes.
        c.insert(&id(3), &[3; 4]);
        assert_eq!((c.len(), c.bytes()), (2, 8));
        assert!(c.get(&id(1)).is_none());
        assert_eq!(c.get(&id(3)).unwrap(), &Bytes::from_static(&[3; 4]));
        // A repeat keeps the first data and its place.
        c.insert(&id(2), &[9; 1]);
        assert_eq!(c.get(&id(2)).unwrap(), &Bytes::from_static(&[2; 4]));
        // Room for a large one is made from as many old ones as needed.
        c.insert(&id(4), &[4; 10]);
        assert_eq!((c.len(), c.bytes()), (1, 10));
    }

    #[test]
    fn an_op_over_the_bound_or_a_zero_bound_keeps_nothing() {
        let mut c = OpCache::new(3);
        c.insert(&id(1), &[1; 2]);
        c.insert(&id(2), &[2; 4]);
        assert_eq!(c.len(), 1);
        assert!(c.get(&id(2)).is_none());
        let mut z = OpCache::new(0);
        z.insert(&id(1), &[1]);
        assert!(z.is_empty());
    }
}
