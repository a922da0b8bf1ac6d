//! The crate's hash maps and sets: foldhash seeded from the platform's CSPRNG.
//!
//! Keys of most maps come from the network (op ids, peer URLs, agents), so their hasher must
//! be seeded with secrets a peer cannot guess, or a peer could send keys that all collide.
//! `std`'s `RandomState` does not do that on wasm32-unknown-unknown: it seeds SipHash with
//! two allocation addresses (`library/std/src/sys/random/unsupported.rs`), the same in every
//! tab running one build. Here one [`SharedSeed`] per thread comes from `getrandom`
//! (`crypto.getRandomValues` in browsers, the OS elsewhere) and each map also gets a fresh
//! per-map seed. foldhash (hashbrown's default: multiply-and-fold, "minimally DoS-resistant"
//! with secret seeds) rather than a keyed SipHash: it is faster; on size it is not a gain
//! (+0.9 KB gzip on the module, measured with `npm run bench -- size`).

use std::cell::Cell;
use std::hash::BuildHasher;

use foldhash::SharedSeed;
use foldhash::fast::{FoldHasher, SeedableRandomState};

/// `std`'s `HashMap` with a [`Seeded`] hasher; make one with `HashMap::default()`.
pub type HashMap<K, V> = std::collections::HashMap<K, V, Seeded>;

/// `std`'s `HashSet` with a [`Seeded`] hasher; make one with `HashSet::default()`.
pub type HashSet<T> = std::collections::HashSet<T, Seeded>;

/// A foldhash builder whose seeds come from `getrandom` (see the module docs).
#[derive(Clone, Debug)]
pub struct Seeded(SeedableRandomState);

thread_local! {
    /// The thread's shared seed (made once: foldhash says it is costly) and the next
    /// per-map seed.
    static SEEDS: (&'static SharedSeed, Cell<u64>) = {
        let [a, b] = random_words();
        (Box::leak(Box::new(SharedSeed::from_u64(a))), Cell::new(b))
    };
}

/// Two random words from `getrandom`. If the platform has no CSPRNG (never seen: browsers,
/// Node and every OS we build for have one), the words are taken from addresses, as `std`
/// does on wasm32-unknown-unknown: collisions get guessable, nothing breaks.
fn random_words() -> [u64; 2] {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        let here = 0u8;
        let heap = Box::new(0u8);
        b[..8].copy_from_slice(&(std::ptr::from_ref(&here) as u64).to_le_bytes());
        b[8..].copy_from_slice(&(std::ptr::from_ref(&*heap) as u64).to_le_bytes());
    }
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    [word(0), word(8)]
}

impl Default for Seeded {
    fn default() -> Self {
        SEEDS.with(|(shared, next)| {
            // Distinct per map (an odd step walks all 2^64 values), secret like its start.
            let seed = next.get();
            next.set(seed.wrapping_add(0x9E37_79B9_7F4A_7C15));
            Seeded(SeedableRandomState::with_seed(seed, shared))
        })
    }
}

impl BuildHasher for Seeded {
    type Hasher = FoldHasher<'static>;

    fn build_hasher(&self) -> Self::Hasher {
        self.0.build_hasher()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two maps hash one key differently (each has its own seed), and one map the same way
    /// every time: lookups work, and a collision found against one map says nothing about
    /// another.
    #[test]
    fn each_map_has_its_own_seed() {
        let (a, b) = (Seeded::default(), Seeded::default());
        let key = [7u8; 32];
        assert_eq!(a.hash_one(key), a.hash_one(key));
        assert_ne!(a.hash_one(key), b.hash_one(key));
        let mut m: HashMap<[u8; 32], u8> = HashMap::default();
        m.insert(key, 1);
        assert_eq!(m.get(&key), Some(&1));
    }
}
