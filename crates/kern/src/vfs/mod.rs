//! The virtual file system: vnodes, the mount table, path lookup and the
//! open-file object for vnodes.
//!
//! A [`Vnode`] pairs a file system's [`Node`] with the [`Mount`] it was
//! found through. Mount points are recorded in the mount table by (mount,
//! inode), so crossing them needs no per-vnode state. `namei` (path lookup)
//! lives in [`namei`]; permission helpers in [`perm`]; the vnode
//! [`crate::file::FileOps`] in [`vnfile`].
//!
//! This is a module of `kern`, not a crate of its own, because process
//! contexts hold vnodes (root and working directory) and the descriptor
//! table holds vnode files: the split would buy only type erasure.

mod devsw;
pub mod namei;
mod ncache;
mod node;
pub mod ops;
pub mod perm;
pub mod vnfile;

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use portable_atomic::AtomicU64;

use hyper::Errno;

pub use devsw::DevSwitch;
pub use node::{DirEntry, FileSystem, FsType, NewNode, Node, NodeKind, SetAttr, StatVfs, WriteAt};

use crate::consts::ms;
use crate::file::Stat;
use crate::pipe::Pipe;
use crate::sync::{SpinMutex, SpinRwLock};
use crate::Kernel;

/// A file as the VFS sees it: the node and the mount it belongs to.
#[derive(Clone)]
pub struct Vnode {
    pub mnt: Arc<Mount>,
    pub node: Arc<dyn Node>,
}

impl Vnode {
    /// Status with the mount's device number filled in.
    pub fn stat(&self) -> Result<Stat, Errno> {
        let mut st = self.node.getattr()?;
        st.dev = self.mnt.dev;
        Ok(st)
    }

    /// The file type.
    pub fn kind(&self) -> NodeKind {
        self.node.kind()
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.node.kind() == NodeKind::Directory
    }

    /// Whether this is the root of its mount.
    pub fn is_mount_root(&self) -> bool {
        self.node.ino() == self.mnt.root_ino
    }

    /// Whether two vnodes are the same file.
    pub fn same(&self, other: &Vnode) -> bool {
        self.mnt.id == other.mnt.id && self.node.ino() == other.node.ino()
    }

    /// A child vnode on the same mount.
    pub fn child(&self, node: Arc<dyn Node>) -> Vnode {
        Vnode {
            mnt: self.mnt.clone(),
            node,
        }
    }

    /// `EROFS` when the mount is read-only.
    pub fn check_writable_mount(&self) -> Result<(), Errno> {
        if self.mnt.is_read_only() {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

/// A mounted file system.
pub struct Mount {
    pub id: u64,
    /// Device number reported in `st_dev`.
    pub dev: u64,
    pub fs: Arc<dyn FileSystem>,
    pub fstype: &'static str,
    pub source: String,
    pub flags: u64,
    root_ino: u64,
    root: Arc<dyn Node>,
    /// The vnode this mount covers (`None` for `/`).
    covered: Option<Vnode>,
    /// Whether lookups on this mount use the name cache
    /// ([`FileSystem::caches_names`]).
    cache_names: bool,
}

impl Mount {
    /// The root vnode of this mount.
    pub fn root_vnode(self: &Arc<Self>) -> Vnode {
        Vnode {
            mnt: self.clone(),
            node: self.root.clone(),
        }
    }

    /// The vnode this mount covers.
    pub fn covered(&self) -> Option<&Vnode> {
        self.covered.as_ref()
    }

    /// Whether the mount is read-only.
    pub fn is_read_only(&self) -> bool {
        self.flags & ms::RDONLY != 0
    }
}

/// A row of the mount table, for `mount` listings and `df`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MountInfo {
    pub source: String,
    pub target: String,
    pub fstype: String,
    pub flags: u64,
}

#[derive(Default)]
struct MountTable {
    root: Option<Arc<Mount>>,
    mounts: Vec<Arc<Mount>>,
    /// (mount id, inode) of covered directories.
    covering: BTreeMap<(u64, u64), Arc<Mount>>,
    targets: BTreeMap<u64, String>,
}

/// The VFS state of one kernel.
pub struct Vfs {
    fstypes: SpinMutex<BTreeMap<&'static str, Arc<dyn FsType>>>,
    table: SpinRwLock<MountTable>,
    /// How many mounts cover a directory: lookup consults the table only
    /// when this is non-zero.
    n_covering: AtomicUsize,
    next_mount_id: AtomicU64,
    /// Open fifos by (mount id, inode), alive while an end is open.
    fifos: SpinMutex<BTreeMap<(u64, u64), Weak<Pipe>>>,
    names: ncache::NameCache,
}

/// A directory's generation in the name cache (see
/// [`Vfs::name_generation`]).
#[derive(Clone, Copy, Debug)]
pub struct NameGeneration(ncache::Generation);

/// The name cache's hash seed, from the platform's randomness.
fn seed(k: &Kernel) -> u64 {
    let mut b = [0u8; 8];
    k.hyper().random_fill(&mut b);
    u64::from_le_bytes(b)
}

/// `umount2` flag: detach even when busy.
pub const MNT_FORCE: i32 = 1;
/// `umount2` flag: detach now, free when no longer used.
pub const MNT_DETACH: i32 = 2;

impl Vfs {
    pub(crate) fn new(sched: Arc<crate::sync::Sched>) -> Self {
        Vfs {
            fstypes: SpinMutex::new(BTreeMap::new()),
            table: SpinRwLock::new(MountTable::default()),
            n_covering: AtomicUsize::new(0),
            next_mount_id: AtomicU64::new(1),
            fifos: SpinMutex::new(BTreeMap::new()),
            names: ncache::NameCache::new(sched),
        }
    }

    /// Registers a file-system type (components call this at init).
    pub fn register_fstype(&self, t: Arc<dyn FsType>) {
        self.fstypes.lock().insert(t.name(), t);
    }

    /// The registered type names.
    pub fn fstype_names(&self) -> Vec<&'static str> {
        self.fstypes.lock().keys().copied().collect()
    }

    fn fstype(&self, name: &[u8]) -> Result<Arc<dyn FsType>, Errno> {
        let name = core::str::from_utf8(name).map_err(|_| Errno::ENODEV)?;
        self.fstypes.lock().get(name).cloned().ok_or(Errno::ENODEV)
    }

    /// The type of the file system on `source`: the one probe of the VFS,
    /// used by `mount -t auto`, the image tools, the remote server's
    /// mounts and the FUSE server. Types are asked in name order. If none
    /// recognises the device, the first error a type met (`ENXIO` for a
    /// device that does not exist) or else `ENODEV`.
    pub fn probe(&self, k: &Kernel, source: &[u8]) -> Result<&'static str, Errno> {
        // Copy the table out: probes read the device, which blocks.
        let types: Vec<Arc<dyn FsType>> = self.fstypes.lock().values().cloned().collect();
        let mut err = None;
        for t in &types {
            match t.probe(k, source) {
                Ok(true) => return Ok(t.name()),
                Ok(false) => {}
                Err(e) => {
                    err.get_or_insert(e);
                }
            }
        }
        Err(err.unwrap_or(Errno::ENODEV))
    }

    /// The type named `fstype`, or the probed type of `source` for `auto`.
    fn fstype_for(
        &self,
        k: &Kernel,
        fstype: &[u8],
        source: &[u8],
    ) -> Result<Arc<dyn FsType>, Errno> {
        if fstype == b"auto" {
            let name = self.probe(k, source)?;
            return self.fstype(name.as_bytes());
        }
        self.fstype(fstype)
    }

    /// The root vnode, if a root file system is mounted.
    pub fn root(&self) -> Option<Vnode> {
        self.table.read().root.as_ref().map(|m| m.root_vnode())
    }

    pub(crate) fn mount_root(&self, k: &Kernel, fstype: &str) -> Result<(), Errno> {
        let t = self.fstype(fstype.as_bytes())?;
        let fs = t.mount(k, fstype.as_bytes(), 0, b"")?;
        let m = self.new_mount(fs, t.name(), fstype.to_string(), 0, None);
        let mut table = self.table.write();
        table.targets.insert(m.id, "/".to_string());
        table.mounts.push(m.clone());
        table.root = Some(m);
        Ok(())
    }

    fn new_mount(
        &self,
        fs: Arc<dyn FileSystem>,
        fstype: &'static str,
        source: String,
        flags: u64,
        covered: Option<Vnode>,
    ) -> Arc<Mount> {
        let id = self.next_mount_id.fetch_add(1, Ordering::Relaxed);
        let root = fs.root();
        Arc::new(Mount {
            id,
            dev: id,
            root_ino: root.ino(),
            root,
            cache_names: fs.caches_names(),
            fs,
            fstype,
            source,
            flags,
            covered,
        })
    }

    /// Mounts a file system of type `fstype` on the directory `target`.
    /// `target_path` is recorded for listings.
    pub fn mount(
        &self,
        k: &Kernel,
        target: &Vnode,
        target_path: &[u8],
        fstype: &[u8],
        source: &[u8],
        flags: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
        if !target.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        let t = self.fstype_for(k, fstype, source)?;
        let key = (target.mnt.id, target.node.ino());
        if self.table.read().covering.contains_key(&key) {
            return Err(Errno::EBUSY);
        }
        let fs = t.mount(k, source, flags, data)?;
        let m = self.new_mount(
            fs,
            t.name(),
            String::from_utf8_lossy(source).into_owned(),
            flags,
            Some(target.clone()),
        );
        let mut table = self.table.write();
        if table.covering.contains_key(&key) {
            return Err(Errno::EBUSY);
        }
        table.covering.insert(key, m.clone());
        table
            .targets
            .insert(m.id, String::from_utf8_lossy(target_path).into_owned());
        table.mounts.push(m);
        self.n_covering.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Unmounts the file system whose root is `root`. Fails with `EINVAL`
    /// if `root` is not a mount root, `EBUSY` if something is mounted
    /// inside it, files on it are in use, or it is `/`.
    pub fn unmount(&self, root: Vnode, flags: i32) -> Result<(), Errno> {
        if !root.is_mount_root() {
            return Err(Errno::EINVAL);
        }
        let m = root.mnt.clone();
        drop(root);
        let covered = m.covered.as_ref().ok_or(Errno::EBUSY)?;
        let key = (covered.mnt.id, covered.node.ino());
        let mut table = self.table.write();
        if table.covering.keys().any(|(mid, _)| *mid == m.id) {
            return Err(Errno::EBUSY);
        }
        // References: the table's list, the covering map and our `m`.
        // Anything more is an open file, a working directory or a vnode
        // in use by a call in progress.
        let busy = Arc::strong_count(&m) > 3;
        if busy && flags & (MNT_FORCE | MNT_DETACH) == 0 {
            return Err(Errno::EBUSY);
        }
        table.covering.remove(&key);
        table.mounts.retain(|x| x.id != m.id);
        table.targets.remove(&m.id);
        drop(table);
        self.n_covering.fetch_sub(1, Ordering::Release);
        self.names.purge_mount(m.id);
        m.fs.sync()?;
        m.fs.unmount()
    }

    /// `name` in the directory `dir`, from the name cache or the file
    /// system (which then fills the cache, where the mount allows it).
    /// No `.`/`..` handling and no mount crossing: see `namei`.
    pub fn lookup_name(
        &self,
        k: &Kernel,
        dir: &Vnode,
        name: &[u8],
    ) -> Result<Arc<dyn Node>, Errno> {
        if !dir.mnt.cache_names || name == b"." || name == b".." {
            return dir.node.lookup(name);
        }
        let (mnt, ino) = (dir.mnt.id, dir.node.ino());
        if let Some(n) = self.names.lookup(mnt, ino, name) {
            return Ok(n);
        }
        let gen = self.names.generation(mnt, ino, name);
        let n = dir.node.lookup(name)?;
        self.names.insert(|| seed(k), mnt, ino, name, &n, gen);
        Ok(n)
    }

    /// Whether the name cache holds `name` in `dir` (a probe: `false`
    /// says nothing about the file system).
    pub fn name_cached(&self, dir: &Vnode, name: &[u8]) -> bool {
        dir.mnt.cache_names
            && self
                .names
                .lookup(dir.mnt.id, dir.node.ino(), name)
                .is_some()
    }

    /// Notes that `node` was just created as `name` in `dir` (a create or
    /// link the caller made), so the next lookup finds it in the cache.
    /// `gen` is the directory's generation read before the file system
    /// was asked (see [`Vfs::name_generation`]).
    pub fn name_added(
        &self,
        k: &Kernel,
        dir: &Vnode,
        name: &[u8],
        node: &Arc<dyn Node>,
        gen: NameGeneration,
    ) {
        if dir.mnt.cache_names {
            self.names
                .insert(|| seed(k), dir.mnt.id, dir.node.ino(), name, node, gen.0);
        }
    }

    /// The generation of `dir` in the name cache, read before a create.
    pub fn name_generation(&self, dir: &Vnode, name: &[u8]) -> NameGeneration {
        NameGeneration(self.names.generation(dir.mnt.id, dir.node.ino(), name))
    }

    /// Runs `f`, which removes or replaces `name` in `dir` (unlink, rmdir,
    /// the two names of a rename), with the name cache's entry removed
    /// before and after.
    pub fn removing_name<R>(&self, dir: &Vnode, name: &[u8], f: impl FnOnce() -> R) -> R {
        if !dir.mnt.cache_names {
            return f();
        }
        let (mnt, ino) = (dir.mnt.id, dir.node.ino());
        self.names.invalidate(mnt, ino, name);
        let r = f();
        self.names.invalidate(mnt, ino, name);
        r
    }

    /// Entries in the name cache (a snapshot, for tests).
    pub fn cached_names(&self) -> usize {
        self.names.len()
    }

    /// If `v` is covered by a mount, the root of the topmost mount on it.
    #[inline]
    pub fn cross_mount(&self, v: Vnode) -> Vnode {
        if self.n_covering.load(Ordering::Acquire) == 0 {
            return v;
        }
        let table = self.table.read();
        let mut v = v;
        while let Some(m) = table.covering.get(&(v.mnt.id, v.node.ino())) {
            v = m.root_vnode();
        }
        v
    }

    /// The pipe behind the fifo `vn`: the one its open ends share, or a new
    /// one.
    pub fn fifo(&self, k: &Kernel, vn: &Vnode) -> Arc<Pipe> {
        let key = (vn.mnt.id, vn.node.ino());
        let mut fifos = self.fifos.lock();
        if let Some(p) = fifos.get(&key).and_then(Weak::upgrade) {
            return p;
        }
        fifos.retain(|_, w| w.strong_count() > 0);
        let p = Pipe::new(k);
        fifos.insert(key, Arc::downgrade(&p));
        p
    }

    /// Syncs every mounted file system.
    pub fn sync_all(&self) -> Result<(), Errno> {
        let mounts: Vec<_> = self.table.read().mounts.clone();
        let mut result = Ok(());
        for m in mounts {
            if let Err(e) = m.fs.sync() {
                result = Err(e);
            }
        }
        result
    }

    /// The mount table, in mount order.
    pub fn mounts(&self) -> Vec<MountInfo> {
        let table = self.table.read();
        table
            .mounts
            .iter()
            .map(|m| MountInfo {
                source: m.source.clone(),
                target: table.targets.get(&m.id).cloned().unwrap_or_default(),
                fstype: m.fstype.to_string(),
                flags: m.flags,
            })
            .collect()
    }

    /// Unmounts everything, innermost first (at halt).
    pub(crate) fn unmount_all(&self) {
        let mut table = self.table.write();
        let mounts = core::mem::take(&mut table.mounts);
        table.covering.clear();
        table.targets.clear();
        table.root = None;
        drop(table);
        self.n_covering.store(0, Ordering::Release);
        for m in mounts.iter().rev() {
            let _ = m.fs.sync();
            let _ = m.fs.unmount();
        }
    }
}
