//! One sort for the whole crate. `slice::sort_unstable_by` is compiled once per element type
//! and comparator, about 2.5 KB of wasm each (quicksort, heapsort fallback, small-sort
//! networks); [`sort_by`] sorts a list of indices through a `&dyn Fn` comparator instead, so
//! the sort code is in the module once and each caller adds only a few hundred bytes
//! (docs/design.md, "Size"). Not stable: callers use it where equal elements are
//! indistinguishable or their order does not matter. O(n log n) comparisons, as the standard
//! sort; each comparison is one indirect call more.
//!
//! [`btree_map`] exists for the same reason: `collect()` into a B-tree sorts the items first
//! with the standard *stable* sort, compiled once per item type and iterator type (~2 KB of
//! wasm each; eleven of them in the DHT snapshot code until session 25).

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// Sorts `v` by `cmp`, unstably (see the module docs for why not `sort_unstable_by`).
pub(crate) fn sort_by<T>(v: &mut [T], cmp: impl Fn(&T, &T) -> Ordering) {
    let order = sorted_indices(v.len(), &|a, b| cmp(&v[a], &v[b]));
    permute(v, &order);
}

/// Sorts `v` in its own order (`Ord`), unstably.
pub(crate) fn sort<T: Ord>(v: &mut [T]) {
    sort_by(v, T::cmp);
}

/// A `BTreeMap` of `items` built by inserting them in turn; a later duplicate key replaces an
/// earlier one, as with `collect()`. O(n log n), without `collect()`'s sort (module docs).
pub(crate) fn btree_map<K: Ord, V>(items: impl IntoIterator<Item = (K, V)>) -> BTreeMap<K, V> {
    let mut map = BTreeMap::new();
    map.extend(items);
    map
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
    fn a_b_tree_map_is_built_as_collect_builds_it() {
        let pairs: Vec<(u64, u64)> = numbers(7, 500, 64).into_iter().zip(0..).collect();
        let want: BTreeMap<u64, u64> = pairs.iter().copied().collect();
        assert_eq!(
            btree_map(pairs.iter().copied()),
            want,
            "last duplicate wins"
        );
    }

    #[test]
    fn keys_move_with_their_values() {
        let mut v: Vec<(u8, String)> = [3, 1, 2, 0].iter().map(|&k| (k, format!("v{k}"))).collect();
        sort_by(&mut v, |a, b| a.0.cmp(&b.0));
        let want: Vec<(u8, String)> = (0..4).map(|k| (k, format!("v{k}"))).collect();
        assert_eq!(v, want);
    }
}
