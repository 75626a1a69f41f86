//! The name cache: (mount, directory, name) to node, so that a lookup of
//! a name looked up before does not enter the file system (and, for ext2,
//! does not take its mount lock). NetBSD's `namecache` and Linux's dcache
//! play this part.
//!
//! Only positive entries are kept, and only for file systems that opt in
//! ([`super::FileSystem::caches_names`]: names compare byte for byte and
//! a name changes only through the VFS's own operations). `.` and `..`
//! are never cached. Entries are removed by every operation that removes
//! or replaces a name (unlink, rmdir, rename), before and after the file
//! system changes, and a generation per name (hashed) closes the race with a
//! lookup in progress: a lookup reads the generation before it asks the
//! file system and inserts only if no removal in that directory began
//! since. A removal bumps the generation and removes the entry in one
//! critical section, after the file system changed, so an insert either
//! fails or is removed again. Unmount drops the mount's entries.
//!
//! The table is sharded by name; each shard's lock (adaptive: with more
//! threads than processors, a preempted holder must not make the others
//! spin out their time slices, which cost two thirds of the throughput of
//! 64 threads on two cores) is held for a hash-table probe and never
//! across a call into a file system (values
//! removed are dropped after the lock is released: dropping a node may
//! take the file system's own locks). Each shard holds at most
//! [`MAX_PER_SHARD`] entries and is emptied when full.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::hash::{Hash, Hasher};
use core::sync::atomic::Ordering;
use portable_atomic::AtomicU64;

use hashbrown::{Equivalent, HashMap};

use super::Node;
use crate::sync::{RawSleepMutex, Sched};

const SHARDS: usize = 64;
/// Generation counters per shard (directories share them by hash: a
/// collision only costs an insert now and then).
const GENS: usize = 16;
/// Entries per shard before it is emptied.
pub(crate) const MAX_PER_SHARD: usize = 256;

type Seeded = foldhash::fast::FixedState;

#[derive(PartialEq, Eq)]
struct Key {
    mnt: u64,
    dir: u64,
    name: Box<[u8]>,
}

struct KeyRef<'a> {
    mnt: u64,
    dir: u64,
    name: &'a [u8],
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        KeyRef {
            mnt: self.mnt,
            dir: self.dir,
            name: &self.name,
        }
        .hash(h)
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, h: &mut H) {
        h.write_u64(self.mnt);
        h.write_u64(self.dir);
        h.write(self.name);
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, k: &Key) -> bool {
        self.mnt == k.mnt && self.dir == k.dir && self.name == &*k.name
    }
}

struct Shard {
    map: Option<HashMap<Key, Arc<dyn Node>, Seeded>>,
    gens: [u32; GENS],
}

/// A directory's generation, read before a lookup asks the file system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Generation(u32);

/// See the module docs.
pub(crate) struct NameCache {
    /// Made at the first insert: a kernel that never looks a name up
    /// twice (most test kernels) neither pays for nor carries them.
    shards: spin::Once<Box<[RawSleepMutex<Shard>; SHARDS]>>,
    /// The kernel's scheduling context: the shard locks are adaptive, so
    /// a holder preempted among more threads than processors makes the
    /// others sleep, not spin out their time slices.
    sched: Arc<Sched>,
    /// Seed of the tables' hasher, drawn from the platform's randomness
    /// at the first insert (not at boot: booting stays cheap). 0: not yet.
    seed: AtomicU64,
}

impl NameCache {
    pub(crate) fn new(sched: Arc<Sched>) -> NameCache {
        NameCache {
            sched,
            shards: spin::Once::new(),
            seed: AtomicU64::new(0),
        }
    }

    fn shards(&self) -> &[RawSleepMutex<Shard>; SHARDS] {
        self.shards.call_once(|| {
            Box::new(
                [const {
                    RawSleepMutex::new(Shard {
                        map: None,
                        gens: [0; GENS],
                    })
                }; SHARDS],
            )
        })
    }

    fn slot(mnt: u64, dir: u64, name: &[u8]) -> (usize, usize) {
        // Fixed mixing (not the seeded hasher): only spreads names over
        // shards and generation slots. By name, not only by directory,
        // so that threads working in one directory do not all meet on one
        // shard's lock. A lookup and a removal of the same name always
        // meet on the same generation counter, which is all the race
        // argument above needs.
        let mut h = mnt.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ dir;
        for &c in name {
            h = (h ^ c as u64).wrapping_mul(0x0100_0000_01B3);
        }
        let h = h.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        let h = h ^ (h >> 29);
        ((h as usize) % SHARDS, ((h >> 32) as usize) % GENS)
    }

    /// The node cached for `name` in directory `dir` of mount `mnt`.
    pub(crate) fn lookup(&self, mnt: u64, dir: u64, name: &[u8]) -> Option<Arc<dyn Node>> {
        let (s, _) = Self::slot(mnt, dir, name);
        let shard = self.shards.get()?[s].lock(&self.sched);
        shard.map.as_ref()?.get(&KeyRef { mnt, dir, name }).cloned()
    }

    /// The generation of `dir`, to pass to [`NameCache::insert`].
    pub(crate) fn generation(&self, mnt: u64, dir: u64, name: &[u8]) -> Generation {
        let (s, g) = Self::slot(mnt, dir, name);
        Generation(self.shards()[s].lock(&self.sched).gens[g])
    }

    /// Caches `node` as `name` in `dir`, unless a removal in `dir` began
    /// since `gen` was read.
    pub(crate) fn insert(
        &self,
        seed: impl FnOnce() -> u64,
        mnt: u64,
        dir: u64,
        name: &[u8],
        node: &Arc<dyn Node>,
        gen: Generation,
    ) {
        let (s, g) = Self::slot(mnt, dir, name);
        let hasher_seed = self.seed(seed);
        let key = Key {
            mnt,
            dir,
            name: name.into(),
        };
        let mut shard = self.shards()[s].lock(&self.sched);
        if shard.gens[g] != gen.0 {
            return;
        }
        let full = shard.map.as_ref().is_some_and(|m| m.len() >= MAX_PER_SHARD);
        let evicted = if full { shard.map.take() } else { None };
        let old = shard
            .map
            .get_or_insert_with(|| HashMap::with_hasher(Seeded::with_seed(hasher_seed)))
            .insert(key, node.clone());
        drop(shard);
        drop(old);
        drop(evicted);
    }

    /// Removes `name` in `dir` and starts a new generation of `dir` (call
    /// before and after the file system removes or replaces the name).
    pub(crate) fn invalidate(&self, mnt: u64, dir: u64, name: &[u8]) {
        let (s, g) = Self::slot(mnt, dir, name);
        let Some(shards) = self.shards.get() else {
            // Nothing cached yet, and no generation read yet either: a
            // lookup that reads one later makes the shards, with
            // generations that cannot be older than this removal.
            return;
        };
        let mut shard = shards[s].lock(&self.sched);
        shard.gens[g] = shard.gens[g].wrapping_add(1);
        let old = shard
            .map
            .as_mut()
            .and_then(|m| m.remove(&KeyRef { mnt, dir, name }));
        drop(shard);
        drop(old);
    }

    /// Drops every entry of mount `mnt` (at unmount).
    pub(crate) fn purge_mount(&self, mnt: u64) {
        let Some(shards) = self.shards.get() else {
            return;
        };
        for s in shards.iter() {
            let mut gone = Vec::new();
            let mut shard = s.lock(&self.sched);
            for g in shard.gens.iter_mut() {
                *g = g.wrapping_add(1);
            }
            if let Some(m) = shard.map.as_mut() {
                m.retain(|k, v| {
                    if k.mnt == mnt {
                        gone.push(v.clone());
                        false
                    } else {
                        true
                    }
                });
            }
            drop(shard);
            drop(gone);
        }
    }

    /// Entries cached (a snapshot, for tests).
    pub(crate) fn len(&self) -> usize {
        self.shards.get().map_or(0, |sh| {
            sh.iter()
                .map(|s| s.lock(&self.sched).map.as_ref().map_or(0, |m| m.len()))
                .sum()
        })
    }

    fn seed(&self, draw: impl FnOnce() -> u64) -> u64 {
        let s = self.seed.load(Ordering::Relaxed);
        if s != 0 {
            return s;
        }
        let new = draw() | 1;
        match self
            .seed
            .compare_exchange(0, new, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => new,
            Err(cur) => cur,
        }
    }
}

/// The hash a table built with `seed` gives `name` in (`mnt`, `dir`); for
/// the tests of this module.
#[cfg(test)]
fn hash_of(seed: u64, mnt: u64, dir: u64, name: &[u8]) -> u64 {
    use core::hash::BuildHasher;
    Seeded::with_seed(seed).hash_one(KeyRef { mnt, dir, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_key_ref_hash_alike() {
        let k = Key {
            mnt: 3,
            dir: 9,
            name: (*b"name").into(),
        };
        use core::hash::BuildHasher;
        let st = Seeded::with_seed(42);
        assert_eq!(st.hash_one(&k), hash_of(42, 3, 9, b"name"));
        assert_ne!(hash_of(42, 3, 9, b"name"), hash_of(42, 3, 9, b"namf"));
    }
}
