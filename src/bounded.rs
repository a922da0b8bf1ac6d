//! [`BoundedSet`]: a set that remembers at most a fixed number of entries, forgetting the
//! oldest insert first (FIFO). fennec's rule for every set fed from the network ("bounded
//! sizes", docs/design.md principle 5): recently stored op ids, ops a peer is known to hold,
//! blocked agents, peers whose page closed. [`BoundedMap`]: the same for a map (op ids
//! announced to us, with when).

use crate::hash::{HashMap, HashSet};
use std::collections::VecDeque;
use std::hash::Hash;

/// A set of at most `capacity` entries; inserting into a full set forgets the oldest entry.
/// Capacity 0 holds nothing. Memory: about two copies of each entry plus hash overhead.
#[derive(Debug, Clone)]
pub struct BoundedSet<T> {
    capacity: usize,
    set: HashSet<T>,
    order: VecDeque<T>,
}

impl<T: Hash + Eq + Clone> BoundedSet<T> {
    /// An empty set holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        BoundedSet {
            capacity,
            set: HashSet::default(),
            order: VecDeque::new(),
        }
    }

    /// Adds `value`; returns whether it was new. A full set forgets its oldest entry first.
    pub fn insert(&mut self, value: T) -> bool {
        if self.capacity == 0 || self.set.contains(&value) {
            return false;
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        self.set.insert(value.clone());
        self.order.push_back(value);
        true
    }

    /// Whether `value` is remembered.
    pub fn contains(&self, value: &T) -> bool {
        self.set.contains(value)
    }

    /// Forgets `value`; returns whether it was there.
    pub fn remove(&mut self, value: &T) -> bool {
        if !self.set.remove(value) {
            return false;
        }
        self.order.retain(|v| v != value);
        true
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The most entries it holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A map of at most `capacity` entries; inserting a new key into a full map forgets the
/// oldest key first. Inserting a key already there keeps its first value. Capacity 0 holds
/// nothing.
#[derive(Debug, Clone)]
pub struct BoundedMap<K, V> {
    capacity: usize,
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V> BoundedMap<K, V> {
    /// An empty map holding at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        BoundedMap {
            capacity,
            map: HashMap::default(),
            order: VecDeque::new(),
        }
    }

    /// Adds `key` with `value` unless `key` is there; returns whether it was new.
    pub fn insert(&mut self, key: K, value: V) -> bool {
        if self.capacity == 0 || self.map.contains_key(&key) {
            return false;
        }
        while self.order.len() >= self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        self.map.insert(key.clone(), value);
        self.order.push_back(key);
        true
    }

    /// The value remembered for `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key)
    }

    /// Entries remembered.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_first_and_never_exceeds_capacity() {
        let mut s = BoundedSet::new(3);
        for n in 0..5 {
            assert!(s.insert(n));
            assert!(s.len() <= 3);
        }
        assert!(!s.insert(4), "already there");
        assert!(!s.contains(&0) && !s.contains(&1));
        assert!(s.contains(&2) && s.contains(&4));
        assert!(s.remove(&3));
        assert!(s.insert(9));
        assert!(s.contains(&2), "room was made by the removal");
        assert!(!BoundedSet::new(0).insert(1));
    }

    #[test]
    fn a_map_keeps_first_values_and_forgets_the_oldest_key() {
        let mut m = BoundedMap::new(2);
        assert!(m.insert("a", 1));
        assert!(!m.insert("a", 2), "already there");
        assert_eq!(m.get(&"a"), Some(&1), "the first value stays");
        assert!(m.insert("b", 3) && m.insert("c", 4));
        assert_eq!((m.get(&"a"), m.len()), (None, 2), "the oldest went");
        assert!(!BoundedMap::new(0).insert(1, 1));
    }
}
