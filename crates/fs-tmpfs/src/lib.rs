//! tmpfs: a file system in memory, the usual root of a rump kernel.
//!
//! Files keep their data in 4 KiB pages allocated on first write, so holes
//! cost nothing and read as zeros. Directories keep entries in insertion
//! order under increasing cookies, which makes `getdents64` resumable and
//! stable while entries come and go (an entry present for the whole
//! listing is returned exactly once). Hard links, symbolic links, fifos and
//! device nodes are supported.
//!
//! Locking: each node has a sleeping lock for its data (a reader-writer
//! lock for a directory's entries, so lookups and listings share it; a
//! mutex for a file's pages) and one for its attributes
//! ([`kern::sync::RawSleepRwLock`], [`kern::sync::RawSleepMutex`],
//! scheduled by the kernel's `Sched`). Lock order, outermost first:
//!
//! 1. the file system's rename lock (`ns`), taken only by rename, so
//!    parent links (which only rename changes) stay put while it runs;
//! 2. directory data locks: a parent before its child (rmdir locks the
//!    parent, then the victim; rename locks the victim or the moving
//!    directory after both of its directories); two directories neither
//!    of which is the other's parent (only rename takes such a pair) by
//!    ascending inode number;
//! 3. attribute locks, which are leaves: nothing is locked while one is
//!    held.
//!
//! So create, link, unlink and rmdir lock only the directory they change
//! (rmdir also its victim), and threads working in different directories
//! never meet on a lock.
//!
//! Mount options (`mount -t tmpfs -o ...`): `size=BYTES[k|m|g]`,
//! `nr_inodes=N`, `mode=OCTAL`, `uid=N`, `gid=N`. The default size is
//! `RUMP_MEMLIMIT` if the platform sets it, else 4 GiB.
//!
//! Key types: [`TmpfsComponent`] (registers the type at boot),
//! [`TmpfsType`], [`Tmpfs`].

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::any::Any;
use core::sync::atomic::Ordering;
use portable_atomic::AtomicU64;

use hyper::{Errno, Hyper, Timespec};
use kern::consts::s;
use kern::sync::{RawSleepMutex, RawSleepRwLock, Sched};
use kern::vfs::{DirEntry, FileSystem, FsType, NewNode, Node, NodeKind, SetAttr, StatVfs, WriteAt};
use kern::{Component, Kernel, Stage, Stat};

/// Page size of file data.
pub const PAGE: usize = 4096;
/// `f_type` of `statfs(2)` for tmpfs (Linux's TMPFS_MAGIC).
pub const TMPFS_MAGIC: u64 = 0x0102_1994;
/// Largest file size (Linux's `MAX_LFS_FILESIZE` on 64-bit).
pub const MAX_FILE_SIZE: u64 = i64::MAX as u64;
const DEFAULT_SIZE: u64 = 4 << 30;

/// The component that registers `tmpfs` with the VFS.
#[derive(Debug, Default)]
pub struct TmpfsComponent;

impl Component for TmpfsComponent {
    fn name(&self) -> &'static str {
        "tmpfs"
    }
    fn stage(&self) -> Stage {
        Stage::Vfs
    }
    fn init(&self, kernel: &Kernel) -> Result<(), Errno> {
        kernel.vfs().register_fstype(Arc::new(TmpfsType));
        Ok(())
    }
}

/// The `tmpfs` file-system type.
#[derive(Debug, Default)]
pub struct TmpfsType;

impl FsType for TmpfsType {
    fn name(&self) -> &'static str {
        "tmpfs"
    }

    fn mount(
        &self,
        k: &Kernel,
        _source: &[u8],
        _flags: u64,
        data: &[u8],
    ) -> Result<Arc<dyn FileSystem>, Errno> {
        let mut opts = Options {
            size: k
                .hyper()
                .param("RUMP_MEMLIMIT")
                .and_then(|v| parse_size(v.as_bytes()))
                .unwrap_or(DEFAULT_SIZE),
            inodes: u64::MAX,
            mode: 0o1777,
            uid: 0,
            gid: 0,
        };
        opts.parse(data)?;
        Ok(Arc::new(Tmpfs::new(
            k.hyper().clone(),
            k.sched().clone(),
            opts,
        )))
    }
}

struct Options {
    size: u64,
    inodes: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Options {
    fn parse(&mut self, data: &[u8]) -> Result<(), Errno> {
        for opt in data.split(|&c| c == b',').filter(|o| !o.is_empty()) {
            let (key, val) = match opt.iter().position(|&c| c == b'=') {
                Some(i) => (&opt[..i], &opt[i + 1..]),
                None => (opt, &b""[..]),
            };
            let num = |v: &[u8]| -> Result<u64, Errno> {
                core::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .ok_or(Errno::EINVAL)
            };
            match key {
                b"size" => self.size = parse_size(val).ok_or(Errno::EINVAL)?,
                b"nr_inodes" => self.inodes = num(val)?,
                b"mode" => {
                    let s = core::str::from_utf8(val).map_err(|_| Errno::EINVAL)?;
                    self.mode = u32::from_str_radix(s, 8).map_err(|_| Errno::EINVAL)? & 0o7777;
                }
                b"uid" => self.uid = u32::try_from(num(val)?).map_err(|_| Errno::EINVAL)?,
                b"gid" => self.gid = u32::try_from(num(val)?).map_err(|_| Errno::EINVAL)?,
                _ => return Err(Errno::EINVAL),
            }
        }
        Ok(())
    }
}

/// Parses `123`, `64k`, `10m`, `2g`.
fn parse_size(v: &[u8]) -> Option<u64> {
    let (digits, mul) = match v.last()? {
        b'k' | b'K' => (&v[..v.len() - 1], 1u64 << 10),
        b'm' | b'M' => (&v[..v.len() - 1], 1 << 20),
        b'g' | b'G' => (&v[..v.len() - 1], 1 << 30),
        _ => (v, 1),
    };
    let n: u64 = core::str::from_utf8(digits).ok()?.parse().ok()?;
    n.checked_mul(mul)
}

/// A mounted tmpfs.
pub struct Tmpfs {
    shared: Arc<Shared>,
    root: Arc<TmpNode>,
}

struct Shared {
    hyper: Arc<dyn Hyper>,
    sched: Arc<Sched>,
    next_ino: AtomicU64,
    /// Held by rename, the one operation that changes two directories
    /// (and the tree's shape).
    ns: RawSleepMutex<()>,
    max_pages: u64,
    max_inodes: u64,
    pages: AtomicU64,
    inodes: AtomicU64,
}

impl Shared {
    fn now(&self) -> Timespec {
        self.hyper.clock_wall()
    }

    fn reserve_pages(&self, n: u64) -> Result<(), Errno> {
        let prev = self.pages.fetch_add(n, Ordering::Relaxed);
        if prev + n > self.max_pages {
            self.pages.fetch_sub(n, Ordering::Relaxed);
            return Err(Errno::ENOSPC);
        }
        Ok(())
    }

    fn release_pages(&self, n: u64) {
        self.pages.fetch_sub(n, Ordering::Relaxed);
    }
}

impl Tmpfs {
    fn new(hyper: Arc<dyn Hyper>, sched: Arc<Sched>, opts: Options) -> Tmpfs {
        let shared = Arc::new(Shared {
            hyper,
            sched,
            next_ino: AtomicU64::new(3),
            ns: RawSleepMutex::new(()),
            max_pages: opts.size / PAGE as u64,
            max_inodes: opts.inodes,
            pages: AtomicU64::new(0),
            inodes: AtomicU64::new(1),
        });
        let now = shared.now();
        let root = Arc::new_cyclic(|me: &Weak<TmpNode>| TmpNode {
            me: me.clone(),
            ino: 2,
            kind: NodeKind::Directory,
            fs: shared.clone(),
            meta: RawSleepMutex::new(Meta {
                perm: opts.mode,
                uid: opts.uid,
                gid: opts.gid,
                nlink: 2,
                rdev: 0,
                atime: now,
                mtime: now,
                ctime: now,
            }),
            up: RawSleepMutex::new(me.clone()),
            data: NodeData::Dir(RawSleepRwLock::new(DirData::new())),
        });
        Tmpfs { shared, root }
    }
}

impl FileSystem for Tmpfs {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    /// Names compare byte for byte and change only through the VFS.
    fn caches_names(&self) -> bool {
        true
    }

    fn statvfs(&self) -> Result<StatVfs, Errno> {
        let sh = &self.shared;
        let used = sh.pages.load(Ordering::Relaxed);
        let free = sh.max_pages.saturating_sub(used);
        let files = if sh.max_inodes == u64::MAX {
            // Unlimited: report what the page budget could hold.
            sh.max_pages.max(1024)
        } else {
            sh.max_inodes
        };
        let ffree = files.saturating_sub(sh.inodes.load(Ordering::Relaxed));
        Ok(StatVfs {
            bsize: PAGE as u64,
            frsize: PAGE as u64,
            blocks: sh.max_pages,
            bfree: free,
            bavail: free,
            files,
            ffree,
            favail: ffree,
            fsid: 0,
            flag: 0,
            namemax: kern::consts::NAME_MAX as u64,
            fs_type: TMPFS_MAGIC,
        })
    }
}

struct Meta {
    perm: u32,
    uid: u32,
    gid: u32,
    nlink: u64,
    rdev: u64,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
}

struct FileData {
    size: u64,
    pages: BTreeMap<u64, Box<[u8; PAGE]>>,
}

struct DirData {
    /// Entries by cookie (insertion order).
    entries: BTreeMap<u64, (Vec<u8>, Arc<TmpNode>)>,
    by_name: BTreeMap<Vec<u8>, u64>,
    next_cookie: u64,
    removed: bool,
}

/// First cookie of a real entry: 0 is ".", 1 is "..".
const FIRST_COOKIE: u64 = 2;

impl DirData {
    fn new() -> Self {
        DirData {
            entries: BTreeMap::new(),
            by_name: BTreeMap::new(),
            next_cookie: FIRST_COOKIE,
            removed: false,
        }
    }

    fn get(&self, name: &[u8]) -> Option<&Arc<TmpNode>> {
        let c = self.by_name.get(name)?;
        self.entries.get(c).map(|(_, n)| n)
    }

    fn insert(&mut self, name: &[u8], node: Arc<TmpNode>) {
        let c = self.next_cookie;
        self.next_cookie += 1;
        self.entries.insert(c, (name.to_vec(), node));
        self.by_name.insert(name.to_vec(), c);
    }

    fn remove(&mut self, name: &[u8]) -> Option<Arc<TmpNode>> {
        let c = self.by_name.remove(name)?;
        self.entries.remove(&c).map(|(_, n)| n)
    }
}

enum NodeData {
    File(RawSleepMutex<FileData>),
    Dir(RawSleepRwLock<DirData>),
    Symlink(Vec<u8>),
    Special,
}

/// A tmpfs file.
pub struct TmpNode {
    /// This node itself, for handing out strong references (hard links,
    /// the parent link of new subdirectories).
    me: Weak<TmpNode>,
    ino: u64,
    kind: NodeKind,
    fs: Arc<Shared>,
    meta: RawSleepMutex<Meta>,
    /// A directory's parent (the root's is itself; unused for other
    /// kinds). A leaf lock of its own, so rename can walk up the tree
    /// while it holds directory locks.
    up: RawSleepMutex<Weak<TmpNode>>,
    data: NodeData,
}

impl Drop for TmpNode {
    fn drop(&mut self) {
        if let NodeData::File(f) = &self.data {
            self.fs
                .release_pages(f.lock(&self.fs.sched).pages.len() as u64);
        }
        self.fs.inodes.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Whether `anc` is `dir` or one of its ancestors, following the parent
/// links (leaf locks only, so callers may hold directory locks).
fn is_ancestor_or_self(anc: &TmpNode, dir: &TmpNode, sched: &Sched) -> bool {
    let mut cur = match dir.me.upgrade() {
        Some(c) => c,
        None => return false,
    };
    // Bounded: a tree deeper than this cannot be walked by namei anyway.
    for _ in 0..1 << 20 {
        if cur.is_same(anc) {
            return true;
        }
        let up = match cur.up.lock(sched).upgrade() {
            Some(u) => u,
            None => return false,
        };
        if up.is_same(&cur) {
            return false;
        }
        cur = up;
    }
    false
}

fn downcast(n: &Arc<dyn Node>) -> Result<&TmpNode, Errno> {
    n.as_any().downcast_ref::<TmpNode>().ok_or(Errno::EXDEV)
}

impl TmpNode {
    fn dir(&self) -> Result<&RawSleepRwLock<DirData>, Errno> {
        match &self.data {
            NodeData::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn file(&self) -> Result<&RawSleepMutex<FileData>, Errno> {
        match &self.data {
            NodeData::File(f) => Ok(f),
            NodeData::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn touch_mc(&self) {
        let now = self.fs.now();
        let mut m = self.meta.lock(&self.fs.sched);
        m.mtime = now;
        m.ctime = now;
    }

    fn touch_c(&self) {
        let now = self.fs.now();
        self.meta.lock(&self.fs.sched).ctime = now;
    }

    fn add_nlink(&self, delta: i64) {
        let mut m = self.meta.lock(&self.fs.sched);
        m.nlink = m.nlink.saturating_add_signed(delta);
    }

    fn is_same(&self, other: &TmpNode) -> bool {
        core::ptr::eq(self, other)
    }

    fn new_node(&self, new: &NewNode<'_>, parent: Weak<TmpNode>) -> Result<Arc<TmpNode>, Errno> {
        let fs = &self.fs;
        if fs.inodes.fetch_add(1, Ordering::Relaxed) >= fs.max_inodes {
            fs.inodes.fetch_sub(1, Ordering::Relaxed);
            return Err(Errno::ENOSPC);
        }
        let now = fs.now();
        let data = match new.kind {
            NodeKind::Regular => NodeData::File(RawSleepMutex::new(FileData {
                size: 0,
                pages: BTreeMap::new(),
            })),
            NodeKind::Directory => NodeData::Dir(RawSleepRwLock::new(DirData::new())),
            NodeKind::Symlink => NodeData::Symlink(new.target.to_vec()),
            _ => NodeData::Special,
        };
        Ok(Arc::new_cyclic(|me| TmpNode {
            me: me.clone(),
            up: RawSleepMutex::new(if new.kind == NodeKind::Directory {
                parent.clone()
            } else {
                Weak::new()
            }),
            ino: fs.next_ino.fetch_add(1, Ordering::Relaxed),
            kind: new.kind,
            fs: fs.clone(),
            meta: RawSleepMutex::new(Meta {
                perm: new.perm & s::PERM_MASK,
                uid: new.uid,
                gid: new.gid,
                nlink: if new.kind == NodeKind::Directory {
                    2
                } else {
                    1
                },
                rdev: new.rdev,
                atime: now,
                mtime: now,
                ctime: now,
            }),
            data,
        }))
    }

    /// Resizes file data, zeroing what a shrink cuts off inside a page.
    fn resize(&self, fd: &mut FileData, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        if size < fd.size {
            let keep = size.div_ceil(PAGE as u64);
            let dropped = fd.pages.split_off(&keep);
            self.fs.release_pages(dropped.len() as u64);
            let tail = (size % PAGE as u64) as usize;
            if tail != 0 {
                if let Some(p) = fd.pages.get_mut(&(size / PAGE as u64)) {
                    p[tail..].fill(0);
                }
            }
        }
        fd.size = size;
        Ok(())
    }
}

impl Node for TmpNode {
    fn ino(&self) -> u64 {
        self.ino
    }

    fn kind(&self) -> NodeKind {
        self.kind
    }

    fn getattr(&self) -> Result<Stat, Errno> {
        let (size, pages) = match &self.data {
            NodeData::File(f) => {
                let f = f.lock(&self.fs.sched);
                (f.size, f.pages.len() as u64)
            }
            NodeData::Dir(d) => {
                // Linux tmpfs reports 20 bytes per entry plus the two dots.
                let n = d.read(&self.fs.sched).entries.len() as u64;
                ((n + 2) * 20, 0)
            }
            NodeData::Symlink(t) => (t.len() as u64, 0),
            NodeData::Special => (0, 0),
        };
        let m = self.meta.lock(&self.fs.sched);
        Ok(Stat {
            dev: 0,
            ino: self.ino,
            mode: self.kind.mode_bits() | m.perm,
            nlink: m.nlink,
            uid: m.uid,
            gid: m.gid,
            rdev: m.rdev,
            size,
            blksize: PAGE as u32,
            blocks: pages * (PAGE as u64 / 512),
            atime: m.atime,
            mtime: m.mtime,
            ctime: m.ctime,
        })
    }

    fn setattr(&self, set: &SetAttr) -> Result<(), Errno> {
        if let Some(size) = set.size {
            let f = self.file()?;
            let mut fd = f.lock(&self.fs.sched);
            if size != fd.size {
                self.resize(&mut fd, size)?;
                drop(fd);
                self.touch_mc();
            }
        }
        let now = self.fs.now();
        let mut m = self.meta.lock(&self.fs.sched);
        if let Some(p) = set.perm {
            m.perm = p & s::PERM_MASK;
        }
        if let Some(u) = set.uid {
            m.uid = u;
        }
        if let Some(g) = set.gid {
            m.gid = g;
        }
        if let Some(t) = set.atime {
            m.atime = t;
        }
        if let Some(t) = set.mtime {
            m.mtime = t;
        }
        m.ctime = now;
        Ok(())
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Node>, Errno> {
        let d = self.dir()?.read(&self.fs.sched);
        if d.removed {
            return Err(Errno::ENOENT);
        }
        if name == b".." {
            return self
                .up
                .lock(&self.fs.sched)
                .upgrade()
                .map(|p| p as Arc<dyn Node>)
                .ok_or(Errno::ENOENT);
        }
        if name == b"." {
            drop(d);
            return Err(Errno::EINVAL);
        }
        d.get(name)
            .cloned()
            .map(|n| n as Arc<dyn Node>)
            .ok_or(Errno::ENOENT)
    }

    fn create(&self, name: &[u8], new: &NewNode<'_>) -> Result<Arc<dyn Node>, Errno> {
        let dir = self.dir()?;
        let mut d = dir.write(&self.fs.sched);
        if d.removed {
            return Err(Errno::ENOENT);
        }
        if d.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        let node = self.new_node(new, self.me.clone())?;
        d.insert(name, node.clone());
        drop(d);
        if new.kind == NodeKind::Directory {
            self.add_nlink(1);
        }
        self.touch_mc();
        Ok(node)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Node>) -> Result<(), Errno> {
        let t = downcast(target)?;
        if t.kind == NodeKind::Directory {
            return Err(Errno::EPERM);
        }
        let dir = self.dir()?;
        let mut d = dir.write(&self.fs.sched);
        if d.removed {
            return Err(Errno::ENOENT);
        }
        if d.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        if t.meta.lock(&self.fs.sched).nlink == 0 {
            return Err(Errno::ENOENT);
        }
        d.insert(name, t.me.upgrade().ok_or(Errno::ENOENT)?);
        drop(d);
        t.add_nlink(1);
        t.touch_c();
        self.touch_mc();
        Ok(())
    }

    fn unlink(&self, name: &[u8]) -> Result<(), Errno> {
        let dir = self.dir()?;
        let mut d = dir.write(&self.fs.sched);
        let victim = d.get(name).ok_or(Errno::ENOENT)?;
        if victim.kind == NodeKind::Directory {
            return Err(Errno::EISDIR);
        }
        let victim = d.remove(name).ok_or(Errno::ENOENT)?;
        drop(d);
        victim.add_nlink(-1);
        victim.touch_c();
        self.touch_mc();
        Ok(())
    }

    fn rmdir(&self, name: &[u8]) -> Result<(), Errno> {
        let dir = self.dir()?;
        let mut d = dir.write(&self.fs.sched);
        let victim = d.get(name).ok_or(Errno::ENOENT)?.clone();
        let vd = victim.dir()?;
        {
            let mut vd = vd.write(&self.fs.sched);
            if !vd.entries.is_empty() {
                return Err(Errno::ENOTEMPTY);
            }
            vd.removed = true;
        }
        d.remove(name);
        drop(d);
        victim.meta.lock(&self.fs.sched).nlink = 0;
        self.add_nlink(-1);
        self.touch_mc();
        Ok(())
    }

    fn rename(&self, old: &[u8], new_dir: &Arc<dyn Node>, new: &[u8]) -> Result<(), Errno> {
        let sched = &self.fs.sched;
        // One rename at a time: renames are what change the tree's shape,
        // so while this is held no parent link moves.
        let _ns = self.fs.ns.lock(sched);
        let nd = downcast(new_dir)?;
        let src_dir = self.dir()?;
        let dst_dir = nd.dir()?;
        let same_dir = self.is_same(nd);
        // Both directories stay locked for the whole change. Order: a
        // parent before its child (as rmdir locks), otherwise by inode
        // number; see the module docs.
        let (mut sd, mut dd) = if same_dir {
            (src_dir.write(sched), None)
        } else {
            let dst_parent = nd.up.lock(sched).clone();
            let src_parent = self.up.lock(sched).clone();
            let src_first = if dst_parent.ptr_eq(&self.me) {
                true
            } else if src_parent.ptr_eq(&nd.me) {
                false
            } else {
                self.ino < nd.ino
            };
            if src_first {
                let a = src_dir.write(sched);
                let b = dst_dir.write(sched);
                (a, Some(b))
            } else {
                let b = dst_dir.write(sched);
                let a = src_dir.write(sched);
                (a, Some(b))
            }
        };
        let moving = sd.get(old).cloned().ok_or(Errno::ENOENT)?;
        let dst = dd.as_deref_mut().unwrap_or(&mut *sd);
        if dst.removed {
            return Err(Errno::ENOENT);
        }
        if moving.kind == NodeKind::Directory && is_ancestor_or_self(&moving, nd, sched) {
            // A directory into itself or its own subtree (the system-call
            // layer checks too, but a concurrent rename may have moved
            // things since; parent links are stable now).
            return Err(Errno::EINVAL);
        }
        let existing = dst.get(new).cloned();
        if let Some(e) = &existing {
            if e.is_same(&moving) {
                // Same file (also hard links to it): nothing to do.
                return Ok(());
            }
            match (
                moving.kind == NodeKind::Directory,
                e.kind == NodeKind::Directory,
            ) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) => {
                    // Replacing the source directory itself (an ancestor
                    // of what moves): it is not empty.
                    if e.is_same(self) {
                        return Err(Errno::ENOTEMPTY);
                    }
                    let mut ed = e.dir()?.write(sched);
                    if !ed.entries.is_empty() {
                        return Err(Errno::ENOTEMPTY);
                    }
                    ed.removed = true;
                }
                (false, false) => {}
            }
        }
        let is_dir = moving.kind == NodeKind::Directory;
        sd.remove(old);
        let dst = dd.as_deref_mut().unwrap_or(&mut *sd);
        let replaced = dst.remove(new);
        dst.insert(new, moving.clone());
        if is_dir && !same_dir {
            *moving.up.lock(sched) = nd.me.clone();
        }
        drop(dd);
        drop(sd);
        if let Some(e) = replaced {
            if e.kind == NodeKind::Directory {
                e.meta.lock(sched).nlink = 0;
                nd.add_nlink(-1);
            } else {
                e.add_nlink(-1);
            }
            e.touch_c();
        }
        if is_dir && !same_dir {
            self.add_nlink(-1);
            nd.add_nlink(1);
        }
        moving.touch_c();
        self.touch_mc();
        if !same_dir {
            nd.touch_mc();
        }
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.data {
            NodeData::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let fd = self.file()?.lock(&self.fs.sched);
        if off >= fd.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (buf.len() as u64).min(fd.size - off) as usize;
        let mut done = 0;
        while done < n {
            let pos = off + done as u64;
            let page = pos / PAGE as u64;
            let in_page = (pos % PAGE as u64) as usize;
            let chunk = (PAGE - in_page).min(n - done);
            let dst = &mut buf[done..done + chunk];
            match fd.pages.get(&page) {
                Some(p) => dst.copy_from_slice(&p[in_page..in_page + chunk]),
                None => dst.fill(0),
            }
            done += chunk;
        }
        Ok(n)
    }

    fn seek_data(&self, off: u64, size: u64, hole: bool) -> Result<u64, Errno> {
        let fd = self.file()?.lock(&self.fs.sched);
        let size = size.min(fd.size);
        let first = off / PAGE as u64;
        let start = |page: u64| (page * PAGE as u64).max(off);
        if hole {
            // The first page at or after `first` that is not stored.
            let mut want = first;
            for (&p, _) in fd.pages.range(first..) {
                if p != want {
                    break;
                }
                want += 1;
            }
            Ok(start(want).min(size))
        } else {
            match fd.pages.range(first..).next() {
                Some((&p, _)) if start(p) < size => Ok(start(p)),
                _ => Err(Errno::ENXIO),
            }
        }
    }

    fn write(&self, at: WriteAt, buf: &[u8]) -> Result<(usize, u64), Errno> {
        let mut fd = self.file()?.lock(&self.fs.sched);
        let off = match at {
            WriteAt::Offset(o) => o,
            WriteAt::End => fd.size,
        };
        if buf.is_empty() {
            return Ok((0, off));
        }
        let end = off.checked_add(buf.len() as u64).ok_or(Errno::EFBIG)?;
        if end > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        let mut done = 0;
        while done < buf.len() {
            let pos = off + done as u64;
            let page = pos / PAGE as u64;
            let in_page = (pos % PAGE as u64) as usize;
            let chunk = (PAGE - in_page).min(buf.len() - done);
            let src = &buf[done..done + chunk];
            let p = match fd.pages.get_mut(&page) {
                Some(p) => p,
                None => {
                    if let Err(e) = self.fs.reserve_pages(1) {
                        if done > 0 {
                            break;
                        }
                        return Err(e);
                    }
                    fd.pages
                        .entry(page)
                        .or_insert_with(|| Box::new([0u8; PAGE]))
                }
            };
            p[in_page..in_page + chunk].copy_from_slice(src);
            done += chunk;
        }
        let new_end = off + done as u64;
        if new_end > fd.size {
            fd.size = new_end;
        }
        drop(fd);
        self.touch_mc();
        Ok((done, new_end))
    }

    fn readdir(
        &self,
        cookie: u64,
        sink: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let d = self.dir()?.read(&self.fs.sched);
        if d.removed {
            return Ok(());
        }
        if cookie == 0
            && !sink(DirEntry {
                ino: self.ino,
                kind: NodeKind::Directory,
                name: b".",
                next: 1,
            })
        {
            return Ok(());
        }
        if cookie <= 1 {
            let pino = self
                .up
                .lock(&self.fs.sched)
                .upgrade()
                .map_or(self.ino, |p| p.ino);
            if !sink(DirEntry {
                ino: pino,
                kind: NodeKind::Directory,
                name: b"..",
                next: FIRST_COOKIE,
            }) {
                return Ok(());
            }
        }
        for (&c, (name, node)) in d.entries.range(cookie.max(FIRST_COOKIE)..) {
            if !sink(DirEntry {
                ino: node.ino,
                kind: node.kind,
                name,
                next: c + 1,
            }) {
                break;
            }
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
