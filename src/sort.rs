//! One sort for the whole crate. `slice::sort_unstable_by` is compiled once per element type
//! and comparator, about 2.5 KB of wasm each (quicksort, heapsort fallback, small-sort
//! networks); `sort_by` sorts a list of indices through a `&dyn Fn` comparator instead, so
//! the sort code is in the module once and each caller adds only a few hundred bytes
//! (docs/design.md, "Size"). Not stable: callers use it where equal elements are
//! indistinguishable or their order does not matter. O(n log n) comparisons, as the standard
//! sort; each comparison is one indirect call more.
//!
//! [`SortedMap`] exists for the same reason: a map built once and then only read needs no
//! B-tree, whose code is compiled per key/value type (and `collect()` into one sorts the items
//! first with the standard *stable* sort, compiled per item and iterator type: eleven copies
//! in the DHT snapshot code until session 25).

use std::cmp::Ordering;

/// Sorts `v` by `cmp`, unstably (see the module docs for why not `sort_unstable_by`).
pub(crate) fn sort_by<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_indices(v.len(), &|a, b| cmp(&v[a], &v[b]));
    permute(v, &order);
}

/// Sorts `v` in its own order (`Ord`), unstably.
pub(crate) fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// A map as a `Vec` of `(key, value)` sorted by key, each key once: for maps built once and
/// then only read, such as the DHT snapshots (`core::dht::snapshot`). Built from any list in
/// O(n log n) with the crate's one sort, a later duplicate key replacing an earlier one as with
/// `collect()` into a `BTreeMap`; looked up by binary search. A B-tree map type costs several
/// KB of wasm per key/value type (insert, split, merge, clone, compare and drop code), this a
/// few hundred bytes (docs/design.md, "Size").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedMap<K, V>(Vec<(K, V)>);

impl<K: Ord, V> SortedMap<K, V> {
    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        let at = self.0.binary_search_by(|(k, _)| k.cmp(key)).ok()?;
        Some(&self.0[at].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &K) -> bool {
        self.get(key).is_some()
    }

    /// The keys, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.iter().map(|(k, _)| k)
    }

    /// The values, by ascending key.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().map(|(_, v)| v)
    }

    /// The entries, by ascending key.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }

    /// How many keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there is no key.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Ord, V> FromIterator<(K, V)> for SortedMap<K, V> {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(items: I) -> Self {
        let mut v: Vec<(K, V)> = items.into_iter().collect();
        // Equal keys stay in input order, so the last of each run is the last given.
        let order = sorted_indices(v.len(), &|a, b| v[a].0.cmp(&v[b].0).then(a.cmp(&b)));
        permute(&mut v, &order);
        v.dedup_by(|next, kept| {
            let same = next.0 == kept.0;
            if same {
                std::mem::swap(next, kept);
            }
            same
        });
        SortedMap(v)
    }
}

impl<K: Ord, V, const N: usize> From<[(K, V); N]> for SortedMap<K, V> {
    fn from(items: [(K, V); N]) -> Self {
        items.into_iter().collect()
    }
}

/// `0..n` sorted by `cmp` over indices: the one monomorphic copy of the sort code.
#[inline(never)]
fn sorted_indices(n: usize, cmp: &dyn Fn(usize, usize) -> Ordering) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_unstable_by(|&a, &b| cmp(a, b));
    order
}

/// Moves `v[order[k]]` to position `k` for every `k` (`order` a permutation of `0..v.len()`),
/// in place: each swap puts one element where it belongs.
fn permute<T>(v: &mut [T], order: &[usize]) {
    // dest[i]: where the element now at i goes.
    let mut dest = vec![0; order.len()];
    for (k, &i) in order.iter().enumerate() {
        dest[i] = k;
    }
    for i in 0..v.len() {
        while dest[i] != i {
            let j = dest[i];
            v.swap(i, j);
            dest.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// A small deterministic generator (xorshift), so the test needs no rand seed plumbing.
    fn numbers(seed: u64, n: usize, modulo: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x % modulo
            })
            .collect()
    }

    #[test]
    fn sorts_like_the_standard_sort() {
        for (seed, n, modulo) in [
            (1, 0, 5),
            (2, 1, 5),
            (3, 2, 5),
            (4, 17, 3),
            (5, 1000, 1 << 40),
            (6, 1000, 7),
        ] {
            let v = numbers(seed, n, modulo);
            let mut want = v.clone();
            want.sort_unstable();
            let mut got = v.clone();
            sort(&mut got);
            assert_eq!(got, want, "seed {seed}, n {n}");
            let mut desc = v;
            sort_by(&mut desc, |a, b| b.cmp(a));
            want.reverse();
            assert_eq!(desc, want, "descending, seed {seed}");
        }
    }

    #[test]
    fn a_sorted_map_holds_what_a_b_tree_map_built_from_the_same_list_holds() {
        for (seed, n, modulo) in [(8, 0, 5), (9, 1, 5), (10, 500, 64), (11, 300, 1 << 40)] {
            let pairs: Vec<(u64, u64)> = numbers(seed, n, modulo).into_iter().zip(0..).collect();
            let want: BTreeMap<u64, u64> = pairs.iter().copied().collect();
            let got: SortedMap<u64, u64> = pairs.iter().copied().collect();
            assert_eq!(got.len(), want.len(), "seed {seed}");
            assert!(
                got.iter().eq(want.iter()),
                "last duplicate wins, keys ascending"
            );
            for k in 0..modulo.min(70) {
                assert_eq!(got.get(&k), want.get(&k), "seed {seed}, key {k}");
                assert_eq!(got.contains_key(&k), want.contains_key(&k));
            }
        }
    }

    #[test]
    fn keys_move_with_their_values() {
        let mut v: Vec<(u8, String)> = [3, 1, 2, 0].iter().map(|&k| (k, format!("v{k}"))).collect();
        sort_by(&mut v, |a, b| a.0.cmp(&b.0));
        let want: Vec<(u8, String)> = (0..4).map(|k| (k, format!("v{k}"))).collect();
        assert_eq!(v, want);
    }
}
