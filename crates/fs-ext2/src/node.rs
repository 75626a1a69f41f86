//! The VFS face of ext2: [`Ext2Fs`] (a mounted file system) and
//! [`Ext2Node`] (the vnode operations).
//!
//! Locking. Two kinds of lock, always taken in this order:
//!
//! 1. the **data lock** of an inode (a [`SleepRwLock`], one per inode in
//!    use, shared by every node of that inode and kept in `Live`): `read`
//!    of a regular file and `fsync` take it shared; `write`, and
//!    `setattr` that changes the size, take it exclusively. So while a reader holds it,
//!    none of the file's blocks can be freed, reused or rewritten. (An
//!    inode is freed only when no node refers to it, so nobody can hold
//!    its data lock then.) No operation takes two data locks; one that
//!    ever must takes them in ascending inode order.
//! 2. the **mount lock** (`Shared::state`, a [`SleepMutex`] around
//!    [`Ext2`]: the buffer cache, bitmaps, descriptors, inodes,
//!    directories). Every device call made under it (buffer-cache misses
//!    and write-back, direct transfers, the superblock, barriers) goes
//!    through the cache's [`IoGate`], which tells contenders the holder is
//!    blocked so they sleep instead of spinning.
//!
//! Under the mount lock only the spin locks `live` and `claim` are taken,
//! for a few map operations and no hypercall; nothing is taken under them.
//!
//! A read maps the file's blocks under the mount lock, copies holes,
//! partial blocks and cached blocks (the cache may hold newer data than
//! the device), releases the mount lock and reads the remaining runs of
//! whole blocks straight from the device with only the data lock held, so
//! reads of different files (and stats, lookups, ...) overlap a read's
//! device I/O. A write likewise allocates and copies partial and cached
//! blocks under the mount lock and writes the runs of whole uncached
//! blocks with only the (exclusive) data lock held, then takes the mount
//! lock again to grow the size over what reached the device.
//!
//! Operations that only look (stat, lookup, readdir, readlink, the
//! mapping half of a read) never hold the mount lock across a device
//! read either: they run with the cache in no-miss mode, give up on the
//! first block that is not cached, fetch it with the lock released, and
//! retry (`Shared::with_ro`; the cache discards a fetch the block changed
//! under). Operations that modify hold the lock throughout, as they must
//! not stop half-way; their device calls go through the gate.
//!
//! `fsync` writes the file's own dirty blocks and the allocation metadata
//! (see [`Ext2::fsync_inode`]), not the whole file system; `sync`,
//! `syncfs` and unmount write everything.
//!
//! Nodes are made under the mount lock (once it goes, an unlink could free
//! an inode no node holds yet). Unmount first takes every live inode's
//! data lock, so reads and writes in progress finish (a write still
//! records its new size), then frees the orphans left and writes
//! everything out.
//!
//! Unlinked files that are still in use: a node counts live references per
//! inode. When the link count of an inode in use drops to zero, the inode
//! becomes an orphan and is freed when its last node goes (the drop queues
//! it, and the next operation on the file system frees it), as POSIX
//! requires for open-but-unlinked files.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::{AtomicBool, Ordering};

use dev_blk::cache::{Aborted, DirectIo, IoGate};
use dev_blk::Claim;
use hyper::{Errno, Timespec};
use kern::consts::s;
use kern::sync::{Sched, SleepMutex, SleepMutexGuard, SleepRwLock, SpinMutex};
use kern::vfs::{DirEntry, FileSystem, NewNode, Node, NodeKind, SetAttr, StatVfs, WriteAt};
use kern::Stat;

use crate::format::*;
use crate::fs::{ftype_of_mode, Ext2, StatCell};

/// `f_type` of `statfs(2)` for ext2.
pub const EXT2_SUPER_MAGIC: u64 = 0xEF53;

/// Blocks one read-only operation fetches outside the lock before it
/// holds the lock throughout (see [`Shared::with_ro`]).
const MAX_FETCHES: usize = 8;

/// An inode's data lock (see the module docs).
type DataLock = Arc<SleepRwLock<()>>;

#[derive(Default)]
struct Live {
    /// Nodes per inode in use, and the inode's data lock.
    refs: BTreeMap<u32, (u32, DataLock)>,
    orphans: BTreeSet<u32>,
    pending: Vec<u32>,
}

pub(crate) struct Shared {
    state: SleepMutex<Ext2>,
    live: SpinMutex<Live>,
    unmounted: AtomicBool,
    claim: SpinMutex<Option<Claim>>,
    sched: Arc<Sched>,
    /// Reads and writes runs of blocks without the mount lock.
    reader: DirectIo,
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

impl Shared {
    /// A new node of `ino` (made under the mount lock, whose state `st`
    /// is: see `lookup`).
    fn node(self: &Arc<Self>, st: &mut Ext2, ino: u32, kind: NodeKind) -> Arc<Ext2Node> {
        let stat = st.stat_cell(ino);
        // Fill an empty cell now, while the inode is at hand under the
        // lock: the `fstat` that follows a create or lookup then takes no
        // lock at all. (A cache miss here just leaves it empty.)
        if stat.lock().is_none() {
            if let Ok(i) = st.read_inode(ino) {
                let s = st.stat_of(ino, &i);
                *stat.lock() = Some(s);
            }
        }
        let mut live = self.live.lock();
        let e = live
            .refs
            .entry(ino)
            .or_insert_with(|| (0, Arc::new(SleepRwLock::new(&self.sched, ()))));
        e.0 += 1;
        let data = e.1.clone();
        drop(live);
        Arc::new(Ext2Node {
            fs: self.clone(),
            ino,
            kind,
            data,
            stat,
        })
    }

    /// Takes the file-system lock, first freeing orphans whose last node
    /// went away.
    fn lock(&self) -> Result<SleepMutexGuard<'_, Ext2>, Errno> {
        if self.unmounted.load(Ordering::Acquire) {
            return Err(Errno::EIO);
        }
        let mut st = self.state.lock();
        if !st.read_only {
            let pending = core::mem::take(&mut self.live.lock().pending);
            for ino in pending {
                if let Err(e) = st.release_inode(ino) {
                    st.log(&alloc::format!("freeing orphan inode {ino}: {e:?}"));
                }
            }
        }
        Ok(st)
    }

    /// Runs `f` under the file-system lock, first freeing orphans whose
    /// last node went away.
    fn with<R>(&self, f: impl FnOnce(&mut Ext2) -> Result<R, Errno>) -> Result<R, Errno> {
        let mut st = self.lock()?;
        f(&mut st)
    }

    /// Like [`Shared::with`] for operations that change nothing (except
    /// in-memory memos and, as their last step, a cached inode): `f` runs
    /// with the cache in no-miss mode, and when it needs a block that is
    /// not cached it gives up; the block is read with the lock released
    /// (registered with the cache, so a change meanwhile discards it) and
    /// `f` runs again. So lookups, stats and directory reads never hold
    /// the lock across a device read. After [`MAX_FETCHES`] blocks, or
    /// when `f` needs some other device call, `f` runs with the lock held
    /// throughout.
    fn with_ro<R>(&self, mut f: impl FnMut(&mut Ext2) -> Result<R, Errno>) -> Result<R, Errno> {
        for _ in 0..MAX_FETCHES {
            let mut st = self.lock()?;
            st.cache.set_no_miss(true);
            let r = f(&mut st);
            st.cache.set_no_miss(false);
            let blk = match st.cache.take_aborted() {
                None => return r,
                Some(Aborted::Io) => return f(&mut st),
                Some(Aborted::Block(b)) => b,
            };
            if !st.cache.begin_fetch(blk) {
                return f(&mut st);
            }
            let bs = st.g.bs as usize;
            drop(st);
            let mut data = alloc::vec![0u8; bs].into_boxed_slice();
            let ok = self.reader.read(blk, &mut data).is_ok();
            let mut st = self.state.lock();
            st.cache.finish_fetch(blk, ok.then_some(data))?;
        }
        self.with(f)
    }

    /// Like [`Shared::with`] for operations that write.
    fn with_rw<R>(&self, f: impl FnOnce(&mut Ext2) -> Result<R, Errno>) -> Result<R, Errno> {
        self.with(|st| {
            st.check_writable()?;
            f(st)
        })
    }

    /// The link count of `ino` reached zero: free it now, or when its
    /// last node goes.
    fn last_link_gone(&self, st: &mut Ext2, ino: u32) -> Result<(), Errno> {
        let mut live = self.live.lock();
        if live.refs.get(&ino).is_some_and(|&(n, _)| n > 0) {
            live.orphans.insert(ino);
            return Ok(());
        }
        drop(live);
        st.release_inode(ino)
    }
}

/// A mounted ext2 file system.
pub struct Ext2Fs {
    shared: Arc<Shared>,
    root: Arc<Ext2Node>,
}

impl Ext2Fs {
    pub(crate) fn new(mut st: Ext2, claim: Claim, sched: &Arc<Sched>) -> Result<Ext2Fs, Errno> {
        let root = st.read_inode(ROOT_INO)?;
        if !root.is_dir() || root.links_count == 0 {
            return Err(st.corrupt("root inode is not a directory"));
        }
        let reader = st.direct_io();
        let shared = Arc::new_cyclic(|me: &Weak<Shared>| {
            st.cache.set_gate(Arc::new(MountGate(me.clone())));
            Shared {
                state: SleepMutex::new(sched, st),
                live: SpinMutex::new(Live::default()),
                unmounted: AtomicBool::new(false),
                claim: SpinMutex::new(Some(claim)),
                sched: sched.clone(),
                reader,
            }
        });
        let root = {
            let mut st = shared.state.lock();
            shared.node(&mut st, ROOT_INO, NodeKind::Directory)
        };
        Ok(Ext2Fs { shared, root })
    }

    /// Whether the file system is mounted read-only (asked for, or forced
    /// by unknown ro_compat features or a read-only device).
    pub fn is_read_only(&self) -> bool {
        self.shared.state.lock().read_only
    }
}

impl FileSystem for Ext2Fs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    /// Names compare byte for byte and change only through the VFS.
    fn caches_names(&self) -> bool {
        true
    }

    fn statvfs(&self) -> Result<StatVfs, Errno> {
        self.shared.with(|st| {
            let blocks = (st.g.blocks_count as u64).saturating_sub(st.g.overhead);
            let bfree = st.sb.free_blocks_count as u64;
            let ffree = st.sb.free_inodes_count as u64;
            Ok(StatVfs {
                bsize: st.g.bs as u64,
                frsize: st.g.bs as u64,
                blocks,
                bfree,
                bavail: bfree.saturating_sub(st.sb.r_blocks_count as u64),
                files: st.g.inodes_count as u64,
                ffree,
                favail: ffree,
                fsid: 0,
                // ST_RDONLY also when forced read-only (unknown ro_compat
                // features, read-only device).
                flag: u64::from(st.read_only),
                namemax: 255,
                fs_type: EXT2_SUPER_MAGIC,
            })
        })
    }

    fn sync(&self) -> Result<(), Errno> {
        self.shared.with(|st| st.sync())
    }

    fn unmount(&self) -> Result<(), Errno> {
        // Let the reads and writes in progress on files in use finish
        // first (a write whose data reached the device still records the
        // new size afterwards): hold every live inode's data lock while
        // the file system is written out. Files looked up meanwhile make
        // us take the set again; a few rounds at most, since the VFS lets
        // an unmount through only when nothing new is coming.
        let snapshot = || -> Vec<(u32, DataLock)> {
            let live = self.shared.live.lock();
            live.refs
                .iter()
                .map(|(ino, (_, l))| (*ino, l.clone()))
                .collect()
        };
        let mut locks;
        let mut rounds = 0;
        let _guards = loop {
            locks = snapshot();
            let guards: Vec<_> = locks.iter().map(|(_, l)| l.write()).collect();
            rounds += 1;
            let grew = self
                .shared
                .live
                .lock()
                .refs
                .keys()
                .any(|ino| locks.binary_search_by_key(ino, |(i, _)| *i).is_err());
            if !grew || rounds >= 8 {
                break guards;
            }
        };
        let r = self.shared.with(|st| {
            // Unlinked files still open (a halt, or a forced unmount, with
            // calls in progress) are freed now: nothing can use them after
            // this, and leaving them would leave allocated inodes without
            // a name on an image marked clean.
            if !st.read_only {
                // Also those whose last node went after `with` freed the
                // pending ones: one look at both sets, under one lock.
                let orphans: Vec<u32> = {
                    let mut live = self.shared.live.lock();
                    let mut all = core::mem::take(&mut live.pending);
                    all.extend(core::mem::take(&mut live.orphans));
                    all
                };
                for ino in orphans {
                    if let Err(e) = st.release_inode(ino) {
                        st.log(&alloc::format!(
                            "freeing orphan inode {ino} at unmount: {e:?}"
                        ));
                    }
                }
            }
            st.unmount()
        });
        self.shared.unmounted.store(true, Ordering::Release);
        self.shared.claim.lock().take();
        r
    }
}

/// One ext2 file, as the VFS holds it.
pub struct Ext2Node {
    fs: Arc<Shared>,
    ino: u32,
    kind: NodeKind,
    /// The inode's data lock (see the module docs).
    data: DataLock,
    /// The inode's attributes, shared with the mount state.
    stat: Arc<StatCell>,
}

impl Drop for Ext2Node {
    fn drop(&mut self) {
        let mut live = self.fs.live.lock();
        let gone = match live.refs.get_mut(&self.ino) {
            Some((n, _)) => {
                *n -= 1;
                *n == 0
            }
            None => false,
        };
        if gone {
            live.refs.remove(&self.ino);
            if live.orphans.remove(&self.ino) {
                live.pending.push(self.ino);
            }
        }
    }
}

fn time_of(t: Timespec) -> Time {
    Time {
        sec: t.sec,
        nsec: t.nsec,
    }
}

fn kind_of(st: &Ext2, ino: u32, mode: u16) -> Result<NodeKind, Errno> {
    NodeKind::from_mode(mode as u32).ok_or_else(|| {
        st.corrupt(&alloc::format!(
            "inode {ino}: bad file type in mode {mode:#o}"
        ))
    })
}

/// Linux's `new_encode_dev`/`old_encode_dev` for `i_block[0..2]` from a
/// user-space `dev_t` (glibc's `makedev` layout).
fn encode_rdev(rdev: u64) -> (u32, u32) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    if major < 256 && minor < 256 {
        (((major << 8) | minor) as u32, 0)
    } else {
        let v = (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12);
        (0, v as u32)
    }
}

impl Ext2Node {
    fn other<'a>(&self, n: &'a Arc<dyn Node>) -> Result<&'a Ext2Node, Errno> {
        let o = n.as_any().downcast_ref::<Ext2Node>().ok_or(Errno::EXDEV)?;
        if !Arc::ptr_eq(&o.fs, &self.fs) {
            return Err(Errno::EXDEV);
        }
        Ok(o)
    }

    /// Reads this directory's inode, checking it is a live directory.
    fn dir_inode(&self, st: &mut Ext2) -> Result<InodeRepr, Errno> {
        let d = st.read_inode(self.ino)?;
        if !d.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if d.links_count == 0 {
            return Err(Errno::ENOENT);
        }
        Ok(d)
    }

    /// Looks `name` up and reads the inode it names.
    fn find(&self, st: &mut Ext2, dir: &InodeRepr, name: &[u8]) -> Result<(u32, InodeRepr), Errno> {
        let (ino, _) = st.dir_find(self.ino, dir, name)?.ok_or(Errno::ENOENT)?;
        st.check_entry_ino(self.ino, ino)?;
        let i = st.read_inode(ino)?;
        if i.links_count == 0 || i.mode & S_IFMT == 0 {
            return Err(st.corrupt(&alloc::format!(
                "directory inode {}: entry {:?} names deleted inode {ino}",
                self.ino,
                core::str::from_utf8(name).unwrap_or("?")
            )));
        }
        Ok((ino, i))
    }

    fn touch_dir(st: &mut Ext2, ino: u32, dir: &mut InodeRepr) -> Result<(), Errno> {
        let now = st.now();
        dir.mtime = now;
        dir.ctime = now;
        st.write_inode(ino, dir)
    }
}

impl Node for Ext2Node {
    fn ino(&self) -> u64 {
        self.ino as u64
    }

    fn kind(&self) -> NodeKind {
        self.kind
    }

    fn getattr(&self) -> Result<Stat, Errno> {
        // Without the mount lock when the attributes are known: every
        // write of the inode refreshes the cell (under the lock).
        if let Some(s) = *self.stat.lock() {
            if self.fs.unmounted.load(Ordering::Acquire) {
                return Err(Errno::EIO);
            }
            return Ok(s);
        }
        self.fs.with_ro(|st| {
            let i = st.read_inode(self.ino)?;
            let s = st.stat_of(self.ino, &i);
            *self.stat.lock() = Some(s);
            Ok(s)
        })
    }

    fn setattr(&self, set: &SetAttr) -> Result<(), Errno> {
        let _data = set.size.map(|_| self.data.write());
        self.fs.with_rw(|st| {
            let mut i = st.read_inode(self.ino)?;
            let now = st.now();
            if let Some(size) = set.size {
                match self.kind {
                    NodeKind::Regular => {}
                    NodeKind::Directory => return Err(Errno::EISDIR),
                    _ => return Err(Errno::EINVAL),
                }
                if size != i.size {
                    st.set_size(self.ino, &mut i, size)?;
                    st.note_meta(self.ino);
                    i.mtime = now;
                }
            }
            if let Some(p) = set.perm {
                i.mode = (i.mode & S_IFMT) | (p & s::PERM_MASK) as u16;
            }
            if let Some(u) = set.uid {
                i.uid = u;
            }
            if let Some(g) = set.gid {
                i.gid = g;
            }
            if let Some(t) = set.atime {
                i.atime = time_of(t);
            }
            if let Some(t) = set.mtime {
                i.mtime = time_of(t);
            }
            i.ctime = now;
            st.write_inode(self.ino, &i)
        })
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Node>, Errno> {
        // The node is made under the mount lock: once the lock goes, an
        // unlink of the name frees the inode unless a node holds it.
        let node = self.fs.with_ro(|st| {
            let dir = self.dir_inode(st)?;
            let (ino, i) = self.find(st, &dir, name)?;
            let kind = kind_of(st, ino, i.mode)?;
            Ok(self.fs.node(st, ino, kind))
        })?;
        Ok(node)
    }

    fn create(&self, name: &[u8], new: &NewNode<'_>) -> Result<Arc<dyn Node>, Errno> {
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let node = self.fs.with_rw(|st| {
            let mut dir = self.dir_inode(st)?;
            if st.dir_find(self.ino, &dir, name)?.is_some() {
                return Err(Errno::EEXIST);
            }
            let is_dir = new.kind == NodeKind::Directory;
            if is_dir && dir.links_count >= LINK_MAX {
                return Err(Errno::EMLINK);
            }
            let mode = (new.kind.mode_bits() | (new.perm & s::PERM_MASK)) as u16;
            let mut inode = st.new_inode_repr(mode, new.uid, new.gid);
            match new.kind {
                NodeKind::Symlink => {
                    if new.target.len() >= st.g.bs as usize {
                        return Err(Errno::ENAMETOOLONG);
                    }
                    if new.target.len() <= FAST_SYMLINK_MAX {
                        inode.set_block_bytes(new.target);
                        inode.size = new.target.len() as u64;
                    }
                }
                NodeKind::CharDevice | NodeKind::BlockDevice => {
                    let (b0, b1) = encode_rdev(new.rdev);
                    inode.block[0] = b0;
                    inode.block[1] = b1;
                }
                _ => {}
            }
            let ino = st.create_inode(self.ino, &inode)?;
            let filled = (|| {
                match new.kind {
                    NodeKind::Directory => {
                        inode.links_count = 2;
                        st.dir_init(ino, &mut inode, self.ino)?;
                    }
                    NodeKind::Symlink if new.target.len() > FAST_SYMLINK_MAX => {
                        st.write_data(ino, &mut inode, 0, new.target)?;
                    }
                    _ => {}
                }
                st.write_inode(ino, &inode)?;
                st.dir_add(self.ino, &mut dir, name, ino, ftype_of_mode(mode))
            })();
            if let Err(e) = filled {
                st.abandon_inode(ino, inode);
                // The directory may have grown before failing.
                let _ = st.write_inode(self.ino, &dir);
                return Err(e);
            }
            if is_dir {
                dir.links_count = dir.links_count.saturating_add(1);
            }
            Self::touch_dir(st, self.ino, &mut dir)?;
            st.note_meta(ino);
            st.note_entry(ino, self.ino);
            // Under the lock, as in `lookup`.
            Ok(self.fs.node(st, ino, new.kind))
        })?;
        Ok(node)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Node>) -> Result<(), Errno> {
        let t = self.other(target)?;
        if t.kind == NodeKind::Directory {
            return Err(Errno::EPERM);
        }
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        self.fs.with_rw(|st| {
            let mut dir = self.dir_inode(st)?;
            if st.dir_find(self.ino, &dir, name)?.is_some() {
                return Err(Errno::EEXIST);
            }
            let mut ti = st.read_inode(t.ino)?;
            if ti.links_count == 0 {
                return Err(Errno::ENOENT);
            }
            if ti.links_count >= LINK_MAX {
                return Err(Errno::EMLINK);
            }
            st.dir_add(self.ino, &mut dir, name, t.ino, ftype_of_mode(ti.mode))?;
            ti.links_count = ti.links_count.saturating_add(1);
            ti.ctime = st.now();
            st.write_inode(t.ino, &ti)?;
            st.note_entry(t.ino, self.ino);
            Self::touch_dir(st, self.ino, &mut dir)
        })
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        self.fs.with_rw(|st| {
            let mut dir = self.dir_inode(st)?;
            let (ino, mut vi) = self.find(st, &dir, name)?;
            if vi.is_dir() {
                return Err(Errno::EISDIR);
            }
            st.dir_remove(self.ino, &mut dir, name)?;
            Self::touch_dir(st, self.ino, &mut dir)?;
            vi.links_count = vi.links_count.saturating_sub(1);
            vi.ctime = st.now();
            st.write_inode(ino, &vi)?;
            if vi.links_count == 0 {
                self.fs.last_link_gone(st, ino)?;
            }
            Ok(())
        })
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        self.fs.with_rw(|st| {
            let mut dir = self.dir_inode(st)?;
            let (ino, mut vi) = self.find(st, &dir, name)?;
            if !vi.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if !st.dir_is_empty(ino, &vi)? {
                return Err(Errno::ENOTEMPTY);
            }
            st.dir_remove(self.ino, &mut dir, name)?;
            dir.links_count = dir.links_count.saturating_sub(1);
            Self::touch_dir(st, self.ino, &mut dir)?;
            vi.links_count = 0;
            vi.ctime = st.now();
            st.write_inode(ino, &vi)?;
            self.fs.last_link_gone(st, ino)
        })
    }

    fn rename(&self, old: &[u8], new_dir: &Arc<dyn Node>, new: &[u8]) -> Result<(), Errno> {
        let nd = self.other(new_dir)?;
        if new.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        let (src, dst) = (self.ino, nd.ino);
        self.fs.with_rw(|st| {
            let sdir = self.dir_inode(st)?;
            let (mino, mi) = self.find(st, &sdir, old)?;
            let ddir = nd.dir_inode(st)?;
            let existing = match nd.find(st, &ddir, new) {
                Ok(x) => Some(x),
                Err(Errno::ENOENT) => None,
                Err(e) => return Err(e),
            };
            if let Some((eino, ei)) = &existing {
                if *eino == mino {
                    return Ok(());
                }
                match (mi.is_dir(), ei.is_dir()) {
                    (true, false) => return Err(Errno::ENOTDIR),
                    (false, true) => return Err(Errno::EISDIR),
                    (true, true) => {
                        if !st.dir_is_empty(*eino, ei)? {
                            return Err(Errno::ENOTEMPTY);
                        }
                    }
                    (false, false) => {}
                }
            }
            let moving_dir_across = mi.is_dir() && src != dst;
            if moving_dir_across && existing.is_none() && ddir.links_count >= LINK_MAX {
                return Err(Errno::EMLINK);
            }
            let ft = ftype_of_mode(mi.mode);
            // The new name first: if the directory cannot grow, nothing
            // has changed yet.
            let mut ddir = st.read_inode(dst)?;
            match &existing {
                Some(_) => st.dir_retarget(dst, &mut ddir, new, mino, ft)?,
                None => st.dir_add(dst, &mut ddir, new, mino, ft)?,
            }
            Self::touch_dir(st, dst, &mut ddir)?;
            let mut sdir = st.read_inode(src)?;
            st.dir_remove(src, &mut sdir, old)?;
            Self::touch_dir(st, src, &mut sdir)?;
            let now = st.now();
            if moving_dir_across {
                let mut m = st.read_inode(mino)?;
                st.dir_retarget(mino, &mut m, b"..", dst, ftype::DIR)?;
                st.write_inode(mino, &m)?;
                let mut sdir = st.read_inode(src)?;
                sdir.links_count = sdir.links_count.saturating_sub(1);
                st.write_inode(src, &sdir)?;
                let mut ddir = st.read_inode(dst)?;
                ddir.links_count = ddir.links_count.saturating_add(1);
                st.write_inode(dst, &ddir)?;
            }
            if let Some((eino, _)) = existing {
                let mut ei = st.read_inode(eino)?;
                if ei.is_dir() {
                    ei.links_count = 0;
                    let mut ddir = st.read_inode(dst)?;
                    ddir.links_count = ddir.links_count.saturating_sub(1);
                    st.write_inode(dst, &ddir)?;
                } else {
                    ei.links_count = ei.links_count.saturating_sub(1);
                }
                ei.ctime = now;
                st.write_inode(eino, &ei)?;
                if ei.links_count == 0 {
                    self.fs.last_link_gone(st, eino)?;
                }
            }
            let mut m = st.read_inode(mino)?;
            m.ctime = now;
            st.note_entry(mino, dst);
            st.write_inode(mino, &m)
        })
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.fs.with_ro(|st| {
            let i = st.read_inode(self.ino)?;
            if i.file_type() != S_IFLNK {
                return Err(Errno::EINVAL);
            }
            if i.is_fast_symlink(st.g.bs) {
                let bytes = i.block_bytes();
                let n = i.size as usize;
                return match bytes.get(..n) {
                    Some(t) => Ok(t.to_vec()),
                    None => Err(st.corrupt(&alloc::format!(
                        "inode {}: fast symlink of {} bytes",
                        self.ino,
                        i.size
                    ))),
                };
            }
            if i.size >= st.g.bs as u64 {
                return Err(st.corrupt(&alloc::format!(
                    "inode {}: symlink of {} bytes",
                    self.ino,
                    i.size
                )));
            }
            let mut buf = alloc::vec![0u8; i.size as usize];
            let n = st.read_data(self.ino, &i, 0, &mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
    }

    fn seek_data(&self, off: u64, size: u64, hole: bool) -> Result<u64, Errno> {
        let _data = self.data.read();
        self.fs.with_ro(|st| {
            let i = st.read_inode(self.ino)?;
            if i.is_dir() {
                return Err(Errno::EISDIR);
            }
            st.seek_data(self.ino, &i, off, size.min(i.size), hole)
        })
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let _data = self.data.read();
        let (n, runs) = self.fs.with_ro(|st| {
            let mut i = st.read_inode(self.ino)?;
            if i.is_dir() {
                return Err(Errno::EISDIR);
            }
            let planned = st.plan_read(self.ino, &i, off, buf)?;
            // relatime: update the access time when it is older than the
            // last change or a day old.
            if !st.read_only && planned.0 > 0 {
                let now = st.now();
                if i.atime <= i.mtime || i.atime <= i.ctime || now.sec - i.atime.sec >= 86400 {
                    i.atime = now;
                    st.write_inode(self.ino, &i)?;
                }
            }
            Ok(planned)
        })?;
        // Whole uncached blocks, with only the data lock held: nobody can
        // free or rewrite them until we are done.
        for (first, start, len) in runs {
            let dst = buf.get_mut(start..start + len).ok_or(Errno::EIO)?;
            self.fs.reader.read(first, dst)?;
        }
        Ok(n)
    }

    fn write(&self, at: WriteAt, buf: &[u8]) -> Result<(usize, u64), Errno> {
        let _data = self.data.write();
        // Under the mount lock: allocate, copy partial and cached blocks;
        // a write with nothing else to do finishes here.
        let (off, planned, runs, err) = self.fs.with_rw(|st| {
            let mut i = st.read_inode(self.ino)?;
            if !i.is_reg() {
                return Err(Errno::EINVAL);
            }
            let off = match at {
                WriteAt::Offset(o) => o,
                WriteAt::End => i.size,
            };
            if buf.is_empty() {
                return Ok((off, 0, Vec::new(), None));
            }
            let (size, blocks) = (i.size, i.blocks);
            let r = st.plan_write(self.ino, &mut i, off, buf);
            let finished = matches!(&r, Ok((_, runs, _)) if runs.is_empty());
            if let Ok((n, _, _)) = &r {
                if finished {
                    st.extend_size(&mut i, off + *n as u64);
                }
            }
            if (i.size, i.blocks) != (size, blocks) {
                st.note_meta(self.ino);
            }
            let now = st.now();
            i.mtime = now;
            i.ctime = now;
            // Blocks may have been allocated even if the write failed.
            st.write_inode(self.ino, &i)?;
            let (n, runs, err) = r?;
            Ok((off, n, runs, err))
        })?;
        if runs.is_empty() {
            if planned == 0 && !buf.is_empty() {
                return Err(err.unwrap_or(Errno::ENOSPC));
            }
            return Ok((planned, off + planned as u64));
        }
        // The runs of whole uncached blocks, with only the data lock held:
        // nobody else reads, writes or frees this file's blocks meanwhile.
        let mut done = planned;
        let mut io_err = None;
        for &(first, start, len) in &runs {
            let r = match buf.get(start..start + len) {
                Some(src) => self.fs.reader.write(first, src),
                None => Err(Errno::EIO),
            };
            if let Err(e) = r {
                done = done.min(start);
                io_err = Some(e);
                break;
            }
        }
        // The size grows only over data that reached the device.
        if done > 0 {
            self.fs.with_rw(|st| {
                let mut i = st.read_inode(self.ino)?;
                let size = i.size;
                st.extend_size(&mut i, off + done as u64);
                if i.size != size {
                    st.note_meta(self.ino);
                    st.write_inode(self.ino, &i)?;
                }
                Ok(())
            })?;
        }
        if done == 0 {
            return Err(io_err.or(err).unwrap_or(Errno::ENOSPC));
        }
        Ok((done, off + done as u64))
    }

    fn readdir(
        &self,
        cookie: u64,
        sink: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let (nblocks, bs) = self.fs.with_ro(|st| {
            let d = st.read_inode(self.ino)?;
            if !d.is_dir() {
                return Err(Errno::ENOTDIR);
            }
            if d.links_count == 0 {
                return Ok((0, st.g.bs as u64));
            }
            Ok((d.size / st.g.bs as u64, st.g.bs as u64))
        })?;
        for lblk in cookie / bs..nblocks {
            let entries = self.fs.with_ro(|st| {
                let d = st.read_inode(self.ino)?;
                let mut out = Vec::new();
                for e in st.dir_block_entries(self.ino, &d, lblk)? {
                    if e.pos < cookie {
                        continue;
                    }
                    let kind = match e.ftype {
                        ftype::REG => NodeKind::Regular,
                        ftype::DIR => NodeKind::Directory,
                        ftype::CHRDEV => NodeKind::CharDevice,
                        ftype::BLKDEV => NodeKind::BlockDevice,
                        ftype::FIFO => NodeKind::Fifo,
                        ftype::SOCK => NodeKind::Socket,
                        ftype::SYMLINK => NodeKind::Symlink,
                        _ => {
                            st.check_entry_ino(self.ino, e.ino)?;
                            let i = st.read_inode(e.ino)?;
                            kind_of(st, e.ino, i.mode)?
                        }
                    };
                    out.push((e, kind));
                }
                Ok(out)
            })?;
            for (e, kind) in &entries {
                if !sink(DirEntry {
                    ino: e.ino as u64,
                    kind: *kind,
                    name: &e.name,
                    next: e.next,
                }) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    fn fsync(&self, datasync: bool) -> Result<(), Errno> {
        // Waits for a write in progress, so its block map and its size
        // reach the device together.
        let _data = self.data.read();
        self.fs
            .with(|st| st.fsync_inode(self.ino, datasync).map(|_| ()))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::decode_rdev;

    #[test]
    fn rdev_round_trip() {
        for (major, minor) in [(1u64, 3u64), (8, 1), (259, 7), (4095, 300), (5, 70000)] {
            let dev = ((major & 0xfff) << 8)
                | ((major & !0xfff) << 32)
                | (minor & 0xff)
                | ((minor & !0xff) << 12);
            let (b0, b1) = encode_rdev(dev);
            assert_eq!(decode_rdev(b0, b1), dev, "{major}:{minor}");
            if major < 256 && minor < 256 {
                assert_eq!(b0 as u64, (major << 8) | minor);
            } else {
                assert_eq!(b0, 0);
            }
        }
    }
}
