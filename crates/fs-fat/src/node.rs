//! The VFS face of FAT: [`FatFs`] (a mounted volume) and [`FatNode`] (the
//! vnode operations).
//!
//! FAT has no inodes: a file is its directory entry. The mount state
//! keeps, for every file in use, a [`Meta`] record (a copy of its short
//! entry, where that entry is, its cluster chain once read, its parent
//! directory) keyed by an inode number, and a map from entry location to
//! that number, so two lookups of one name give one node. The number is
//! derived from the entry's location (`(directory's first cluster + 1)
//! << 16 | slot`), so it is stable across lookups and mounts while the
//! file stays where it is; a file renamed while in use keeps its number,
//! and should its old slot be reused meanwhile the newcomer gets a number
//! from a counter instead, so no two live files share one. The root is 1.
//!
//! Locking: one [`SleepMutex`] (the mount lock) around the whole state:
//! the buffer cache, the FAT, directories and every `Meta`. Every device
//! call made under it goes through the cache's [`IoGate`], which tells
//! contenders the holder is blocked so they sleep instead of spinning.
//! The only other lock is the spin lock of the list of nodes that went
//! away (`pending`), taken for a push or a swap, never across a call.
//! Operations on different files of one volume therefore run one at a
//! time; FAT volumes are small and mostly read through the image tools,
//! and this keeps every update of the FAT and of directories atomic.
//!
//! Files unlinked while in use keep their clusters until their last node
//! goes (its drop queues the number; the next operation frees the
//! chain), as POSIX requires.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::sync::{Arc, Weak};
use alloc::vec;
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, Ordering};

use dev_blk::cache::IoGate;
use dev_blk::Claim;
use hyper::{Errno, Timespec};
use kern::sync::{Sched, SleepMutex, SleepMutexGuard, SpinMutex};
use kern::vfs::{DirEntry, FileSystem, NewNode, Node, NodeKind, SetAttr, StatVfs, WriteAt};
use kern::Stat;

use crate::format::*;
use crate::fs::{DirRef, Fat, Found};
use crate::Options;

/// `f_type` of `statfs(2)` for FAT (`MSDOS_SUPER_MAGIC`).
pub const MSDOS_SUPER_MAGIC: u64 = 0x4d44;

const ROOT_INO: u64 = 1;
/// Inode numbers handed out when a location's number is taken.
const SPARE_INO_BASE: u64 = 1 << 48;

/// What the mount state knows of a file in use.
struct Meta {
    node: Weak<FatNode>,
    /// The parent directory (kept alive for `..`); `None` for the root.
    parent: Option<Arc<FatNode>>,
    /// Where the entry is: directory, first slot of its name, slot of
    /// its short entry. `None` for the root and for unlinked files.
    loc: Option<(DirRef, u32, u32)>,
    entry: DirEntryRepr,
    is_root: bool,
    /// The cluster chain, once read.
    chain: Option<Vec<u32>>,
    /// Directories: 2 + subdirectories.
    nlink: u32,
    /// Unlinked (or removed) while in use: the clusters go with the node.
    orphan: bool,
}

struct State {
    fat: Fat,
    nodes: BTreeMap<u64, Meta>,
    by_loc: BTreeMap<(u32, u32), u64>,
    next_spare: u64,
}

pub(crate) struct Shared {
    state: SleepMutex<State>,
    pending: SpinMutex<Vec<u64>>,
    unmounted: AtomicBool,
    claim: SpinMutex<Option<Claim>>,
    opts: Options,
}

/// The buffer cache's [`IoGate`]: device calls under the mount lock
/// announce themselves to its contenders.
struct MountGate(Weak<Shared>);

impl IoGate for MountGate {
    fn blocking(&self, f: &mut dyn FnMut()) {
        match self.0.upgrade() {
            Some(s) => s.state.holder_blocking(f),
            None => f(),
        }
    }
}

/// A mounted FAT volume.
pub struct FatFs {
    shared: Arc<Shared>,
    root: Arc<FatNode>,
}

/// One file or directory of a mounted FAT volume.
pub struct FatNode {
    fs: Arc<Shared>,
    ino: u64,
    kind: NodeKind,
}

impl Drop for FatNode {
    fn drop(&mut self) {
        self.fs.pending.lock().push(self.ino);
    }
}

impl FatFs {
    pub(crate) fn new(
        mut fat: Fat,
        claim: Claim,
        sched: &Arc<Sched>,
        opts: Options,
    ) -> Result<FatFs, Errno> {
        let root_dir = match fat.g.fat_type {
            FatType::Fat32 => DirRef::Chain(fat.g.root_cluster),
            _ => DirRef::Root16,
        };
        // The root must be readable: its chain checked now.
        fat.dir_sectors(root_dir)?;
        let subdirs = fat.count_subdirs(root_dir)?;
        let shared = Arc::new_cyclic(|me: &Weak<Shared>| {
            fat.cache.set_gate(Arc::new(MountGate(me.clone())));
            Shared {
                state: SleepMutex::new(
                    sched,
                    State {
                        fat,
                        nodes: BTreeMap::new(),
                        by_loc: BTreeMap::new(),
                        next_spare: SPARE_INO_BASE,
                    },
                ),
                pending: SpinMutex::new(Vec::new()),
                unmounted: AtomicBool::new(false),
                claim: SpinMutex::new(Some(claim)),
                opts,
            }
        });
        let root = Arc::new(FatNode {
            fs: shared.clone(),
            ino: ROOT_INO,
            kind: NodeKind::Directory,
        });
        {
            let mut st = shared.state.lock();
            let entry = DirEntryRepr {
                name: *b"           ",
                attr: attr::DIRECTORY,
                first_cluster: root_dir.key(),
                ..Default::default()
            };
            st.nodes.insert(
                ROOT_INO,
                Meta {
                    node: Arc::downgrade(&root),
                    parent: None,
                    loc: None,
                    entry,
                    is_root: true,
                    chain: None,
                    nlink: 2 + subdirs,
                    orphan: false,
                },
            );
        }
        Ok(FatFs { shared, root })
    }

    /// Whether the volume is mounted read-only.
    pub fn is_read_only(&self) -> bool {
        self.shared.state.lock().fat.read_only
    }
}

impl FileSystem for FatFs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn statvfs(&self) -> Result<StatVfs, Errno> {
        let st = self.shared.lock()?;
        let g = &st.fat.g;
        Ok(StatVfs {
            bsize: g.cluster_bytes as u64,
            frsize: g.cluster_bytes as u64,
            blocks: g.clusters as u64,
            bfree: st.fat.free as u64,
            bavail: st.fat.free as u64,
            files: 0,
            ffree: 0,
            favail: 0,
            fsid: g.volume_id as u64,
            flag: u64::from(st.fat.read_only),
            namemax: 255,
            fs_type: MSDOS_SUPER_MAGIC,
        })
    }

    fn sync(&self) -> Result<(), Errno> {
        self.shared.lock()?.fat.sync()
    }

    fn unmount(&self) -> Result<(), Errno> {
        let mut st = self.shared.lock()?;
        // Files unlinked but still open lose their clusters now: nothing
        // can use them after this.
        if !st.fat.read_only {
            let orphans: Vec<u32> = st
                .nodes
                .values()
                .filter(|m| m.orphan)
                .map(|m| m.entry.first_cluster)
                .collect();
            for c in orphans {
                if c != 0 {
                    if let Err(e) = st.fat.free_chain(c) {
                        st.fat
                            .log(&format!("freeing the clusters of an unlinked file: {e:?}"));
                    }
                }
            }
        }
        let r = st.fat.unmount();
        // Break the node -> mount state -> parent node cycle.
        let nodes = core::mem::take(&mut st.nodes);
        st.by_loc.clear();
        self.shared.unmounted.store(true, Ordering::Release);
        drop(st);
        drop(nodes);
        self.shared.claim.lock().take();
        r
    }
}

impl Shared {
    /// Takes the mount lock, first forgetting nodes that went away (and
    /// freeing the clusters of unlinked ones).
    fn lock(&self) -> Result<SleepMutexGuard<'_, State>, Errno> {
        if self.unmounted.load(Ordering::Acquire) {
            return Err(Errno::EIO);
        }
        let mut st = self.state.lock();
        if self.unmounted.load(Ordering::Acquire) {
            return Err(Errno::EIO);
        }
        loop {
            let batch = core::mem::take(&mut *self.pending.lock());
            if batch.is_empty() {
                break;
            }
            for ino in batch {
                let dead = st
                    .nodes
                    .get(&ino)
                    .is_some_and(|m| m.node.strong_count() == 0 && !m.is_root);
                if !dead {
                    continue;
                }
                let Some(m) = st.nodes.remove(&ino) else {
                    continue;
                };
                if let Some((d, _, idx)) = m.loc {
                    st.by_loc.remove(&(d.key(), idx));
                }
                if m.orphan && m.entry.first_cluster != 0 && !st.fat.read_only {
                    if let Err(e) = st.fat.free_chain(m.entry.first_cluster) {
                        st.fat
                            .log(&format!("freeing the clusters of an unlinked file: {e:?}"));
                    }
                }
                // `m.parent` drops here, which may queue the parent.
            }
        }
        Ok(st)
    }

    fn lock_rw(&self) -> Result<SleepMutexGuard<'_, State>, Errno> {
        let st = self.lock()?;
        st.fat.check_writable()?;
        Ok(st)
    }

    fn perm_of(&self, e: &DirEntryRepr) -> u32 {
        if e.is_dir() {
            0o777 & !self.opts.dmask
        } else {
            let p = 0o666 & !self.opts.fmask;
            if e.attr & attr::READ_ONLY != 0 {
                p & !0o222
            } else {
                p
            }
        }
    }
}

impl State {
    fn meta(&self, ino: u64) -> Result<&Meta, Errno> {
        self.nodes.get(&ino).ok_or(Errno::EIO)
    }

    fn meta_mut(&mut self, ino: u64) -> Result<&mut Meta, Errno> {
        self.nodes.get_mut(&ino).ok_or(Errno::EIO)
    }

    /// The directory a directory node lists.
    fn dir_of(&self, ino: u64) -> Result<DirRef, Errno> {
        let m = self.meta(ino)?;
        if m.orphan {
            // Removed: nothing may be looked up or created in it.
            return Err(Errno::ENOENT);
        }
        Ok(if m.is_root && self.fat.g.fat_type != FatType::Fat32 {
            DirRef::Root16
        } else {
            DirRef::Chain(m.entry.first_cluster)
        })
    }

    /// The node of `ino` (which is live: its caller holds it).
    fn arc_of(&self, ino: u64) -> Result<Arc<FatNode>, Errno> {
        self.meta(ino)?.node.upgrade().ok_or(Errno::EIO)
    }

    /// The node of a found entry of directory `d` (whose node is
    /// `parent`).
    fn node_for(
        &mut self,
        shared: &Arc<Shared>,
        d: DirRef,
        f: &Found,
        parent: Arc<FatNode>,
    ) -> Result<Arc<FatNode>, Errno> {
        let key = (d.key(), f.idx);
        if let Some(&ino) = self.by_loc.get(&key) {
            let m = self.meta_mut(ino)?;
            if let Some(n) = m.node.upgrade() {
                return Ok(n);
            }
            // It went away and is not forgotten yet: revive it.
            let kind = if m.entry.is_dir() {
                NodeKind::Directory
            } else {
                NodeKind::Regular
            };
            let n = Arc::new(FatNode {
                fs: shared.clone(),
                ino,
                kind,
            });
            m.node = Arc::downgrade(&n);
            return Ok(n);
        }
        let e = f.entry;
        let c = e.first_cluster;
        if c != 0 && !self.fat.g.is_cluster(c) {
            return Err(self.fat.corrupt(&format!(
                "{:?}: first cluster {c} beyond the volume",
                f.name
            )));
        }
        let (kind, nlink) = if e.is_dir() {
            if c == 0 {
                return Err(self
                    .fat
                    .corrupt(&format!("directory {:?} has no clusters", f.name)));
            }
            (
                NodeKind::Directory,
                2 + self.fat.count_subdirs(DirRef::Chain(c))?,
            )
        } else {
            (NodeKind::Regular, 1)
        };
        let mut ino = ((d.key() as u64 + 1) << 16) | f.idx as u64;
        if self.nodes.contains_key(&ino) {
            ino = self.next_spare;
            self.next_spare += 1;
        }
        let n = Arc::new(FatNode {
            fs: shared.clone(),
            ino,
            kind,
        });
        self.nodes.insert(
            ino,
            Meta {
                node: Arc::downgrade(&n),
                parent: Some(parent),
                loc: Some((d, f.first, f.idx)),
                entry: e,
                is_root: false,
                chain: None,
                nlink,
                orphan: false,
            },
        );
        self.by_loc.insert(key, ino);
        Ok(n)
    }

    /// The cluster chain of `ino`, taken out of its record (put it back
    /// with [`State::put_chain`]). Checks that it holds the file's size.
    fn take_chain(&mut self, ino: u64) -> Result<Vec<u32>, Errno> {
        let m = self.meta_mut(ino)?;
        if let Some(c) = m.chain.take() {
            return Ok(c);
        }
        let (first, size, is_dir) = (m.entry.first_cluster, m.entry.size, m.entry.is_dir());
        let chain = self.fat.chain(first)?;
        if !is_dir && (chain.len() as u64) * (self.fat.g.cluster_bytes as u64) < size as u64 {
            return Err(self.fat.corrupt(&format!(
                "file at cluster {first}: size {size} needs more than its {} clusters",
                chain.len()
            )));
        }
        Ok(chain)
    }

    fn put_chain(&mut self, ino: u64, chain: Vec<u32>) {
        if let Some(m) = self.nodes.get_mut(&ino) {
            m.chain = Some(chain);
        }
    }

    /// Writes `ino`'s short entry back to its directory (if it has one).
    fn store(&mut self, ino: u64) -> Result<(), Errno> {
        let m = self.meta(ino)?;
        let (Some((d, _, idx)), e) = (m.loc, m.entry) else {
            return Ok(());
        };
        self.fat.write_entry(d, idx, &e)
    }

    /// Sets the modification time of `ino` to now (and the archive bit
    /// of files), and stores it.
    fn touch(&mut self, ino: u64) -> Result<(), Errno> {
        let (date, time) = dos_datetime(self.fat.now());
        let m = self.meta_mut(ino)?;
        if m.is_root {
            return Ok(());
        }
        m.entry.mdate = date;
        m.entry.mtime = time;
        m.entry.adate = date;
        if !m.entry.is_dir() {
            m.entry.attr |= attr::ARCHIVE;
        }
        self.store(ino)
    }

    /// Grows or shrinks the chain of `ino` to hold `size` bytes; new
    /// clusters are not zeroed.
    fn resize_chain(&mut self, ino: u64, chain: &mut Vec<u32>, size: u64) -> Result<(), Errno> {
        let cb = self.fat.g.cluster_bytes as u64;
        let need = size.div_ceil(cb) as usize;
        if need > chain.len() {
            let last = chain.last().copied().unwrap_or(0);
            let new = self.fat.alloc(last, (need - chain.len()) as u32)?;
            if chain.is_empty() {
                self.meta_mut(ino)?.entry.first_cluster = new[0];
            }
            chain.extend(new);
        } else if need < chain.len() {
            let gone = chain.split_off(need);
            match chain.last() {
                Some(&l) => self.fat.set_eoc(l)?,
                None => self.meta_mut(ino)?.entry.first_cluster = 0,
            }
            self.fat.free_clusters(&gone)?;
        }
        Ok(())
    }

    /// Writes `buf` at `off` of `ino`, growing it (the gap between the
    /// old end and `off` is zeroed, as FAT has no holes).
    fn write_at(&mut self, ino: u64, off: u64, buf: &[u8]) -> Result<u64, Errno> {
        let end = off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut chain = self.take_chain(ino)?;
        let r = self.write_chain(ino, &mut chain, off, buf, end);
        self.put_chain(ino, chain);
        r?;
        Ok(end)
    }

    fn write_chain(
        &mut self,
        ino: u64,
        chain: &mut Vec<u32>,
        off: u64,
        buf: &[u8],
        end: u64,
    ) -> Result<(), Errno> {
        let size = self.meta(ino)?.entry.size as u64;
        let new_size = size.max(end);
        if buf.is_empty() && end <= size {
            return Ok(());
        }
        self.resize_chain(ino, chain, new_size)?;
        if off > size {
            let zeros = vec![0u8; 64 * 1024];
            let mut p = size;
            while p < off {
                let n = ((off - p) as usize).min(zeros.len());
                self.fat.write_data(chain, p, &zeros[..n])?;
                p += n as u64;
            }
        }
        self.fat.write_data(chain, off, buf)?;
        self.meta_mut(ino)?.entry.size = new_size as u32;
        self.touch(ino)
    }

    fn truncate(&mut self, ino: u64, new: u64) -> Result<(), Errno> {
        if new > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let size = self.meta(ino)?.entry.size as u64;
        if new > size {
            self.write_at(ino, new, &[])?;
            // write_at with an empty buffer zero-fills up to `new`.
            return Ok(());
        }
        let mut chain = self.take_chain(ino)?;
        let r = self.resize_chain(ino, &mut chain, new);
        self.put_chain(ino, chain);
        r?;
        self.meta_mut(ino)?.entry.size = new as u32;
        self.touch(ino)
    }

    /// Makes the entry `f` of `d` go: its node (if in use) becomes an
    /// orphan that frees its clusters when it goes; otherwise they are
    /// freed now.
    fn drop_entry(&mut self, d: DirRef, f: &Found) -> Result<(), Errno> {
        self.fat.remove_slots(d, f.first, f.idx)?;
        let live = self.by_loc.remove(&(d.key(), f.idx));
        if let Some(ino) = live {
            if let Some(m) = self.nodes.get_mut(&ino) {
                m.loc = None;
                m.orphan = true;
                if m.node.strong_count() > 0 {
                    return Ok(());
                }
                self.nodes.remove(&ino);
            }
        }
        if f.entry.first_cluster != 0 {
            self.fat.free_chain(f.entry.first_cluster)?;
        }
        Ok(())
    }
}

impl FatNode {
    fn shared(&self) -> &Arc<Shared> {
        &self.fs
    }

    fn name_str(name: &[u8]) -> Result<&str, Errno> {
        core::str::from_utf8(name).map_err(|_| Errno::ENOENT)
    }

    fn now_entry(st: &State, a: u8) -> DirEntryRepr {
        let now = st.fat.hyper.clock_wall();
        let (date, time) = dos_datetime(now.sec);
        DirEntryRepr {
            attr: a,
            ctime_tenth: ((now.sec.rem_euclid(2) as u32) * 100 + now.nsec / 10_000_000).min(199)
                as u8,
            ctime: time,
            cdate: date,
            adate: date,
            mtime: time,
            mdate: date,
            ..Default::default()
        }
    }
}

fn ts(sec: i64) -> Timespec {
    Timespec { sec, nsec: 0 }
}

impl Node for FatNode {
    fn ino(&self) -> u64 {
        self.ino
    }

    fn kind(&self) -> NodeKind {
        self.kind
    }

    fn getattr(&self) -> Result<Stat, Errno> {
        let mut st = self.fs.lock()?;
        let cb = st.fat.g.cluster_bytes as u64;
        let m = st.meta(self.ino)?;
        let e = m.entry;
        let (size, clusters) = if self.kind == NodeKind::Directory {
            let n = match &m.chain {
                Some(c) => c.len() as u64,
                None => {
                    let d = st.dir_of(self.ino).unwrap_or(DirRef::Root16);
                    match d {
                        DirRef::Root16 => (st.fat.g.root_sectors as u64
                            * st.fat.g.bytes_per_sector as u64)
                            .div_ceil(cb),
                        DirRef::Chain(c) => st.fat.chain(c)?.len() as u64,
                    }
                }
            };
            (n * cb, n)
        } else {
            (e.size as u64, (e.size as u64).div_ceil(cb))
        };
        let m = st.meta(self.ino)?;
        let (mtime, atime) = if m.is_root {
            (0, 0)
        } else {
            (unix_time(e.mdate, e.mtime), unix_time(e.adate, 0))
        };
        Ok(Stat {
            dev: 0,
            ino: self.ino,
            mode: self.kind.mode_bits() | self.fs.perm_of(&e),
            nlink: if self.kind == NodeKind::Directory {
                m.nlink as u64
            } else {
                u64::from(!m.orphan)
            },
            uid: self.fs.opts.uid,
            gid: self.fs.opts.gid,
            rdev: 0,
            size,
            blksize: cb as u32,
            blocks: clusters * cb / 512,
            atime: ts(atime),
            mtime: ts(mtime),
            ctime: ts(mtime),
        })
    }

    fn setattr(&self, set: &SetAttr) -> Result<(), Errno> {
        let mut st = self.fs.lock_rw()?;
        let opts = &self.fs.opts;
        if set.uid.is_some_and(|u| u != opts.uid) || set.gid.is_some_and(|g| g != opts.gid) {
            return Err(Errno::EPERM);
        }
        let is_root = st.meta(self.ino)?.is_root;
        if let Some(p) = set.perm {
            let e = st.meta(self.ino)?.entry;
            let base = self.fs.perm_of(&DirEntryRepr {
                attr: e.attr & !attr::READ_ONLY,
                ..e
            });
            // Only the write bits can change: they are the read-only
            // attribute (all cleared sets it, any set clears it).
            if p & !0o222 != base & !0o222 || p & 0o222 & !base != 0 {
                return Err(Errno::EPERM);
            }
            if !e.is_dir() {
                let m = st.meta_mut(self.ino)?;
                if p & 0o222 == 0 {
                    m.entry.attr |= attr::READ_ONLY;
                } else {
                    m.entry.attr &= !attr::READ_ONLY;
                }
            }
        }
        if let Some(size) = set.size {
            if self.kind == NodeKind::Directory {
                return Err(Errno::EISDIR);
            }
            st.truncate(self.ino, size)?;
        }
        if !is_root {
            let m = st.meta_mut(self.ino)?;
            if let Some(t) = set.atime {
                m.entry.adate = dos_datetime(t.sec).0;
            }
            if let Some(t) = set.mtime {
                let (d, tm) = dos_datetime(t.sec);
                m.entry.mdate = d;
                m.entry.mtime = tm;
            }
        }
        st.store(self.ino)
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Node>, Errno> {
        let mut st = self.fs.lock()?;
        if name == b"." {
            return Ok(st.arc_of(self.ino)?);
        }
        if name == b".." {
            let m = st.meta(self.ino)?;
            return Ok(match &m.parent {
                Some(p) => p.clone(),
                None => st.arc_of(self.ino)?,
            });
        }
        if self.kind != NodeKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        let d = st.dir_of(self.ino)?;
        let wanted = Self::name_str(name)?;
        let Some(f) = st.fat.find(d, wanted)? else {
            return Err(Errno::ENOENT);
        };
        let me = st.arc_of(self.ino)?;
        let shared = self.shared().clone();
        Ok(st.node_for(&shared, d, &f, me)?)
    }

    fn create(&self, name: &[u8], new: &NewNode<'_>) -> Result<Arc<dyn Node>, Errno> {
        let mut st = self.fs.lock_rw()?;
        let d = st.dir_of(self.ino)?;
        if !matches!(new.kind, NodeKind::Regular | NodeKind::Directory) {
            // FAT has no symbolic links, device nodes, fifos or sockets.
            return Err(Errno::EPERM);
        }
        crate::name::classify(name)?;
        let wanted = Self::name_str(name)?;
        if st.fat.find(d, wanted)?.is_some() {
            return Err(Errno::EEXIST);
        }
        let is_dir = new.kind == NodeKind::Directory;
        let mut e = Self::now_entry(
            &st,
            if is_dir {
                attr::DIRECTORY
            } else {
                attr::ARCHIVE
            },
        );
        if !is_dir && new.perm & 0o222 == 0 {
            e.attr |= attr::READ_ONLY;
        }
        if is_dir {
            let c = st.fat.alloc(0, 1)?[0];
            let made = (|| -> Result<(), Errno> {
                st.fat.zero_cluster(c)?;
                let mut dot = e;
                dot.name = *b".          ";
                dot.first_cluster = c;
                let mut dotdot = e;
                dotdot.name = *b"..         ";
                dotdot.first_cluster = if st.meta(self.ino)?.is_root {
                    0
                } else {
                    d.key()
                };
                let sectors = st.fat.dir_sectors(DirRef::Chain(c))?;
                let mut b = [0u8; 32];
                dot.emit(&mut b);
                st.fat.set_slot(&sectors, 0, &b)?;
                dotdot.emit(&mut b);
                st.fat.set_slot(&sectors, 1, &b)?;
                Ok(())
            })();
            if let Err(err) = made {
                let _ = st.fat.free_clusters(&[c]);
                return Err(err);
            }
            e.first_cluster = c;
        }
        let (idx, short) = match st.fat.add_entry(d, name, e) {
            Ok(v) => v,
            Err(err) => {
                if is_dir {
                    let _ = st.fat.free_clusters(&[e.first_cluster]);
                }
                return Err(err);
            }
        };
        e.name = short;
        let first = idx + 1 - slots_for(name);
        st.touch(self.ino)?;
        if is_dir {
            st.meta_mut(self.ino)?.nlink += 1;
        }
        let f = Found {
            name: wanted.into(),
            entry: e,
            idx,
            first,
        };
        let me = st.arc_of(self.ino)?;
        let shared = self.shared().clone();
        Ok(st.node_for(&shared, d, &f, me)?)
    }

    fn link(&self, _name: &[u8], _target: &Arc<dyn Node>) -> Result<(), Errno> {
        // FAT has no hard links.
        Err(Errno::EPERM)
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        let mut st = self.fs.lock_rw()?;
        let d = st.dir_of(self.ino)?;
        let f = st
            .fat
            .find(d, Self::name_str(name)?)?
            .ok_or(Errno::ENOENT)?;
        if f.entry.is_dir() {
            return Err(Errno::EISDIR);
        }
        st.drop_entry(d, &f)?;
        st.touch(self.ino)
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        let mut st = self.fs.lock_rw()?;
        let d = st.dir_of(self.ino)?;
        let f = st
            .fat
            .find(d, Self::name_str(name)?)?
            .ok_or(Errno::ENOENT)?;
        if !f.entry.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !st.fat.is_empty_dir(DirRef::Chain(f.entry.first_cluster))? {
            return Err(Errno::ENOTEMPTY);
        }
        st.drop_entry(d, &f)?;
        let m = st.meta_mut(self.ino)?;
        m.nlink = m.nlink.saturating_sub(1).max(2);
        st.touch(self.ino)
    }

    fn rename(&self, old: &[u8], new_dir: &Arc<dyn Node>, new: &[u8]) -> Result<(), Errno> {
        let nd = new_dir
            .as_any()
            .downcast_ref::<FatNode>()
            .filter(|n| Arc::ptr_eq(&n.fs, &self.fs))
            .ok_or(Errno::EXDEV)?;
        let mut st = self.fs.lock_rw()?;
        let from = st.dir_of(self.ino)?;
        let to = st.dir_of(nd.ino)?;
        crate::name::classify(new)?;
        let src = st
            .fat
            .find(from, Self::name_str(old)?)?
            .ok_or(Errno::ENOENT)?;
        let dst = st.fat.find(to, Self::name_str(new)?)?;
        let is_dir = src.entry.is_dir();
        if let Some(t) = &dst {
            let same = from == to && t.idx == src.idx;
            if !same {
                match (is_dir, t.entry.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true)
                        if !st.fat.is_empty_dir(DirRef::Chain(t.entry.first_cluster))? =>
                    {
                        return Err(Errno::ENOTEMPTY)
                    }
                    _ => {}
                }
                st.drop_entry(to, t)?;
                if t.entry.is_dir() {
                    let m = st.meta_mut(nd.ino)?;
                    m.nlink = m.nlink.saturating_sub(1).max(2);
                }
            }
        }
        // The moved entry: from its live record if it has one (which may
        // be newer than the directory's copy).
        let live = st.by_loc.get(&(from.key(), src.idx)).copied();
        let mut e = match live.and_then(|ino| st.nodes.get(&ino)) {
            Some(m) => m.entry,
            None => src.entry,
        };
        st.fat.remove_slots(from, src.first, src.idx)?;
        let (idx, short) = match st.fat.add_entry(to, new, e) {
            Ok(v) => v,
            Err(err) => {
                // Put the old name back.
                if let Err(e2) = st.fat.add_entry(from, old, e) {
                    st.fat.log(&format!(
                        "rename: lost the entry of cluster {} ({e2:?})",
                        e.first_cluster
                    ));
                }
                return Err(err);
            }
        };
        e.name = short;
        let first = idx + 1 - slots_for(new);
        if is_dir && from != to {
            // Its ".." now names the new parent (0 for the root).
            let dir = DirRef::Chain(e.first_cluster);
            let mut dd = st.fat.read_entry(dir, 1)?;
            dd.first_cluster = if st.meta(nd.ino)?.is_root {
                0
            } else {
                to.key()
            };
            st.fat.write_entry(dir, 1, &dd)?;
            let m = st.meta_mut(self.ino)?;
            m.nlink = m.nlink.saturating_sub(1).max(2);
            st.meta_mut(nd.ino)?.nlink += 1;
        }
        if let Some(ino) = live {
            st.by_loc.remove(&(from.key(), src.idx));
            st.by_loc.insert((to.key(), idx), ino);
            let parent = st.arc_of(nd.ino)?;
            let m = st.meta_mut(ino)?;
            m.loc = Some((to, first, idx));
            m.entry.name = short;
            m.parent = Some(parent);
        }
        st.touch(self.ino)?;
        if nd.ino != self.ino {
            st.touch(nd.ino)?;
        }
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(Errno::EINVAL)
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.kind == NodeKind::Directory {
            return Err(Errno::EISDIR);
        }
        let mut st = self.fs.lock()?;
        let size = st.meta(self.ino)?.entry.size as u64;
        if off >= size || buf.is_empty() {
            return Ok(0);
        }
        let n = ((size - off) as usize).min(buf.len());
        let chain = st.take_chain(self.ino)?;
        let r = st.fat.read_data(&chain, off, &mut buf[..n]);
        st.put_chain(self.ino, chain);
        r.map(|()| n)
    }

    fn write(&self, at: WriteAt, buf: &[u8]) -> Result<(usize, u64), Errno> {
        if self.kind == NodeKind::Directory {
            return Err(Errno::EISDIR);
        }
        let mut st = self.fs.lock_rw()?;
        let off = match at {
            WriteAt::Offset(o) => o,
            WriteAt::End => st.meta(self.ino)?.entry.size as u64,
        };
        let end = st.write_at(self.ino, off, buf)?;
        Ok((buf.len(), end))
    }

    fn readdir(
        &self,
        cookie: u64,
        sink: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        if self.kind != NodeKind::Directory {
            return Err(Errno::ENOTDIR);
        }
        let mut st = self.fs.lock()?;
        let d = st.dir_of(self.ino)?;
        if cookie == 0 {
            let e = DirEntry {
                ino: self.ino,
                kind: NodeKind::Directory,
                name: b".",
                next: 1,
            };
            if !sink(e) {
                return Ok(());
            }
        }
        if cookie <= 1 {
            let m = st.meta(self.ino)?;
            let pino = m.parent.as_ref().map_or(self.ino, |p| p.ino);
            let e = DirEntry {
                ino: pino,
                kind: NodeKind::Directory,
                name: b"..",
                next: 2,
            };
            if !sink(e) {
                return Ok(());
            }
        }
        let start = cookie.saturating_sub(2).min(u32::MAX as u64) as u32;
        let State { fat, by_loc, .. } = &mut *st;
        fat.scan(d, start, |f| {
            if f.name == "." || f.name == ".." {
                return true;
            }
            let ino = by_loc
                .get(&(d.key(), f.idx))
                .copied()
                .unwrap_or(((d.key() as u64 + 1) << 16) | f.idx as u64);
            sink(DirEntry {
                ino,
                kind: if f.entry.is_dir() {
                    NodeKind::Directory
                } else {
                    NodeKind::Regular
                },
                name: f.name.as_bytes(),
                next: 2 + f.idx as u64 + 1,
            })
        })
    }

    fn fsync(&self, _datasync: bool) -> Result<(), Errno> {
        // One cache for the volume: fsync writes it all (FAT volumes are
        // small, and the FAT and directory entries a file needs are
        // shared with every other file anyway).
        let mut st = self.fs.lock()?;
        if st.fat.read_only {
            return Ok(());
        }
        st.fat.sync()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Slots a name takes: its long-name entries and the short entry.
fn slots_for(name: &[u8]) -> u32 {
    match crate::name::classify(name) {
        Ok(crate::name::Stored::Long { units, .. }) => units.len().div_ceil(13) as u32 + 1,
        _ => 1,
    }
}
