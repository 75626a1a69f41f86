//! Hash tables seeded from the platform's randomness.
//!
//! hashbrown's default hasher seeds itself from addresses and a global
//! counter, so iteration order (which fragments expire first, for one)
//! changed from run to run whatever the platform did. The kernel's tables
//! use foldhash with a fixed shared seed and a per-table seed that the
//! stack draws from [`hyper::Hyper::random_fill`]: a platform that replays
//! its randomness (a deterministic simulator) replays the order too, and
//! an attacker still cannot predict the buckets.

/// The hasher of the kernel's tables.
pub(crate) type Seeded = foldhash::fast::FixedState;

/// A hash map with a [`Seeded`] hasher. `HashMap::default()` uses seed 0
/// (for tests); the stack makes its tables with [`map`].
pub(crate) type HashMap<K, V> = hashbrown::HashMap<K, V, Seeded>;

/// An empty map hashing with `seed`.
pub(crate) fn map<K, V>(seed: u64) -> HashMap<K, V> {
    hashbrown::HashMap::with_hasher(Seeded::with_seed(seed))
}
