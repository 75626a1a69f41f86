//! The FUSE request handlers: each request names inodes, which this
//! module maps to the kernel's vnodes, runs as the requesting user's
//! kernel process, and enters the typed file-system core
//! (`kern::vfs::ops`) with the directory vnode as the base of a
//! one-component path.
//!
//! State: the inode table (FUSE node id -> vnode and lookup count, in
//! shards so that worker threads rarely meet), open handles (id -> open
//! file), and one kernel process per distinct credential set, chrooted to
//! the mounted file system so `..` never leaves it.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{
    AccessFlags, FileAttr, FileHandle, FileType, Filesystem, FopenFlags, Generation, INodeNo,
    InitFlags, KernelConfig, LockOwner, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate, ReplyData,
    ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyLseek, ReplyOpen, ReplyStatfs,
    ReplyWrite, Request, TimeOrNow, WriteFlags,
};
use rump::kern;
use rump::kern::consts::o;
use rump::kern::vfs::ops::{self, Caller, OpenHow, TimeSet, TruncateBy};
use rump::kern::vfs::{NodeKind, Vnode};
use rump::kern::{Access, Cred, File, Pos, Proc};
use rump::{Errno, Kernel, Process, Stat, Timespec};

use crate::{fuse_errno, kproc, Error, Options, KERNEL_MOUNT};

/// How long the host kernel may keep names, negative names and
/// attributes without asking again. We are the only writer of the image
/// and every change goes through us, so the host's caches stay coherent
/// however long they live; an hour bounds the cost of a mistake.
const TTL: Duration = Duration::from_secs(3600);
/// The FUSE node id of the root directory.
const ROOT_ID: u64 = 1;
/// Shards of the inode table.
const SHARDS: usize = 16;
/// Largest read or write we negotiate (the kernel clamps it to its
/// `max_pages_limit`, 1 MiB by default).
const MAX_IO: u32 = 1 << 20;
/// Flags a FUSE open passes on to the kernel's open: the kernel handles
/// creation and truncation itself (CREATE and SETATTR requests).
const OPEN_FLAGS: i32 = o::KNOWN & !(o::CREAT | o::EXCL | o::NOCTTY | o::TRUNC);

struct Inode {
    vn: Vnode,
    nlookup: u64,
}

type CredKey = (u32, u32, Vec<u32>);

/// The file system the FUSE session serves.
pub struct RumpFs {
    kernel: Option<Kernel>,
    /// The root process (kept for the unmount at the end).
    root_proc: Process,
    root: Vnode,
    root_ino: u64,
    options: Options,
    inodes: Vec<Mutex<HashMap<u64, Inode>>>,
    handles: Mutex<HashMap<u64, Arc<File>>>,
    next_fh: AtomicU64,
    procs: Mutex<HashMap<CredKey, Arc<Proc>>>,
    root_kproc: Arc<Proc>,
}

impl RumpFs {
    pub(crate) fn new(
        kernel: Kernel,
        root_proc: Process,
        options: Options,
    ) -> Result<RumpFs, Error> {
        let kp = kproc(&root_proc).clone();
        let caller = Caller::of(&kp).map_err(|e| Error(format!("kernel process: {e}")))?;
        let root = caller
            .ctx(&kp, None)
            .lookup(KERNEL_MOUNT.as_bytes(), true)
            .map_err(|e| Error(format!("the kernel's mount point: {e}")))?;
        if !root.is_mount_root() {
            return Err(Error("nothing is mounted in the kernel".into()));
        }
        let root_ino = root.node.ino();
        let mut fs = RumpFs {
            kernel: Some(kernel),
            root_proc,
            root: root.clone(),
            root_ino,
            options,
            inodes: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            procs: Mutex::new(HashMap::new()),
            root_kproc: kp.clone(),
        };
        let rp = fs
            .new_proc(Cred::root())
            .map_err(|e| Error(format!("kernel process: {e}")))?;
        fs.root_kproc = rp;
        Ok(fs)
    }

    fn kernel(&self) -> &kern::Kernel {
        kproc(&self.root_proc).kernel()
    }

    /// A kernel process with `cred`, rooted at the mounted file system,
    /// with no umask (the host kernel applies the caller's).
    fn new_proc(&self, cred: Cred) -> Result<Arc<Proc>, Errno> {
        let p = self.kernel().new_process(cred)?;
        p.set_root(self.root.clone())?;
        p.set_cwd(self.root.clone())?;
        p.set_umask(0);
        Ok(p)
    }

    /// The kernel process a request runs as: the caller's uid and gid
    /// (mapped with `uid=`/`gid=`) and, for an unprivileged caller, its
    /// supplementary groups (read from `/proc`, which the set-group-ID
    /// rules need).
    fn proc_for(&self, req: &Request) -> Result<Arc<Proc>, Errno> {
        let uid = self.uid_in(req.uid());
        let gid = self.gid_in(req.gid());
        if uid == 0 && gid == 0 {
            return Ok(self.root_kproc.clone());
        }
        let groups = if uid == 0 {
            Vec::new()
        } else {
            let mut g = host_groups(req.pid());
            for x in g.iter_mut() {
                *x = self.gid_in(*x);
            }
            g
        };
        let key = (uid, gid, groups);
        if let Some(p) = lock(&self.procs).get(&key) {
            return Ok(p.clone());
        }
        let cred = Cred {
            uid,
            gid,
            euid: uid,
            egid: gid,
            groups: key.2.clone(),
        };
        let p = self.new_proc(cred)?;
        let mut procs = lock(&self.procs);
        if procs.len() >= 1024 {
            procs.clear();
        }
        procs.insert(key, p.clone());
        Ok(p)
    }

    fn uid_in(&self, uid: u32) -> u32 {
        swap(self.options.uid, uid)
    }
    fn gid_in(&self, gid: u32) -> u32 {
        swap(self.options.gid, gid)
    }

    /// The FUSE node id of inode `ino` (the root is 1; an inode numbered
    /// 1 takes the root's number: the map is its own inverse).
    fn node_id(&self, ino: u64) -> u64 {
        if ino == self.root_ino {
            ROOT_ID
        } else if ino == ROOT_ID {
            self.root_ino
        } else {
            ino
        }
    }

    fn shard(&self, id: u64) -> MutexGuard<'_, HashMap<u64, Inode>> {
        lock(&self.inodes[(id as usize) % SHARDS])
    }

    /// The vnode of a node id the host kernel holds.
    fn vnode(&self, id: INodeNo) -> Result<Vnode, Errno> {
        if id.0 == ROOT_ID {
            return Ok(self.root.clone());
        }
        self.shard(id.0)
            .get(&id.0)
            .map(|i| i.vn.clone())
            .ok_or(Errno::ESTALE)
    }

    /// Counts one more lookup of `vn` by the host kernel.
    fn remember(&self, vn: &Vnode) -> u64 {
        let id = self.node_id(vn.node.ino());
        if id == ROOT_ID {
            return id;
        }
        let mut shard = self.shard(id);
        let e = shard.entry(id).or_insert_with(|| Inode {
            vn: vn.clone(),
            nlookup: 0,
        });
        // An inode number reused after an unlink: the new file wins.
        if !Arc::ptr_eq(&e.vn.node, &vn.node) && e.nlookup == 0 {
            e.vn = vn.clone();
        }
        e.nlookup += 1;
        id
    }

    fn forget_one(&self, id: u64, n: u64) {
        if id == ROOT_ID {
            return;
        }
        let mut shard = self.shard(id);
        if let Some(e) = shard.get_mut(&id) {
            e.nlookup = e.nlookup.saturating_sub(n);
            if e.nlookup == 0 {
                shard.remove(&id);
            }
        }
    }

    fn attr(&self, st: &Stat) -> FileAttr {
        let kind = NodeKind::from_mode(st.mode).map_or(FileType::RegularFile, file_type);
        FileAttr {
            ino: INodeNo(self.node_id(st.ino)),
            size: st.size,
            blocks: st.blocks,
            atime: system_time(st.atime),
            mtime: system_time(st.mtime),
            ctime: system_time(st.ctime),
            crtime: system_time(st.ctime),
            kind,
            perm: (st.mode & 0o7777) as u16,
            nlink: u32::try_from(st.nlink).unwrap_or(u32::MAX),
            uid: swap(self.options.uid, st.uid),
            gid: swap(self.options.gid, st.gid),
            rdev: st.rdev as u32,
            blksize: if st.blksize == 0 { 4096 } else { st.blksize },
            flags: 0,
        }
    }

    /// Replies with `vn` as a new entry (one more lookup).
    fn entry(&self, vn: Vnode, reply: ReplyEntry) {
        match vn.stat() {
            Ok(st) => {
                self.remember(&vn);
                reply.entry(&TTL, &self.attr(&st), Generation(0));
            }
            Err(e) => reply.error(fuse_errno(e)),
        }
    }

    fn new_handle(&self, f: File) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        lock(&self.handles).insert(fh, Arc::new(f));
        fh
    }

    fn handle(&self, fh: FileHandle) -> Result<Arc<File>, Errno> {
        lock(&self.handles).get(&fh.0).cloned().ok_or(Errno::EBADF)
    }

    /// With `-o sync`: makes the change durable before the reply.
    fn synced(&self, vn: Option<&Vnode>) -> Result<(), Errno> {
        if !self.options.sync {
            return Ok(());
        }
        if let Some(vn) = vn {
            vn.node.fsync(false)?;
        }
        self.root.mnt.fs.sync()
    }

    fn open_handle(&self, req: &Request, ino: INodeNo, flags: i32) -> Result<u64, Errno> {
        let p = self.proc_for(req)?;
        let vn = self.vnode(ino)?;
        let f = ops::open_vnode(&p, vn, flags & OPEN_FLAGS)?;
        Ok(self.new_handle(f))
    }

    fn do_setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        set: &Change,
        fh: Option<FileHandle>,
    ) -> Result<Stat, Errno> {
        let p = self.proc_for(req)?;
        let cred = p.cred();
        let vn = self.vnode(ino)?;
        if let Some(size) = set.size {
            // Through a descriptor open for writing (ftruncate), the
            // permission was checked at open; otherwise (truncate, and
            // open with O_TRUNC) the caller needs write permission now.
            let writable = fh
                .and_then(|fh| self.handle(fh).ok())
                .is_some_and(|f| f.is_writable());
            let by = if writable {
                TruncateBy::OpenFile { writable }
            } else {
                TruncateBy::Path
            };
            ops::truncate(&cred, &vn, size, by)?;
        }
        if set.uid.is_some() || set.gid.is_some() {
            let uid = set.uid.map(|u| self.uid_in(u));
            let gid = set.gid.map(|g| self.gid_in(g));
            ops::chown(&cred, &vn, uid, gid)?;
        }
        if let Some(mode) = set.mode {
            ops::chmod(&cred, &vn, mode)?;
        }
        if set.atime != TimeSet::Omit || set.mtime != TimeSet::Omit {
            let now = self.kernel().hyper().clock_wall();
            ops::set_times(&cred, &vn, set.atime, set.mtime, now)?;
        }
        self.synced(Some(&vn))?;
        vn.stat()
    }

    fn read_dir(
        &self,
        req: &Request,
        ino: INodeNo,
        offset: u64,
        mut add: impl FnMut(&Self, u64, u64, NodeKind, &[u8], Option<&Vnode>) -> bool,
        plus: bool,
    ) -> Result<(), Errno> {
        let dir = self.vnode(ino)?;
        // Attributes of the entries only for a caller who could look
        // them up (search permission on the directory).
        let may_search = plus && {
            let p = self.proc_for(req)?;
            kern::vfs::perm::check(&p.cred(), &dir, Access::EXEC).is_ok()
        };
        ops::readdir(&dir, offset, &mut |e| {
            let dotted = e.name == b"." || e.name == b"..";
            let child = if may_search && !dotted {
                dir.node.lookup(e.name).ok().map(|n| dir.child(n))
            } else {
                None
            };
            !add(
                self,
                self.node_id(e.ino),
                e.next,
                e.kind,
                e.name,
                child.as_ref(),
            )
        })
    }

    /// Flushes and unmounts the kernel's file system and halts the
    /// kernel (at the end of the session).
    fn shut_down(&mut self) {
        lock(&self.handles).clear();
        for s in &self.inodes {
            lock(s).clear();
        }
        lock(&self.procs).clear();
        let p = kproc(&self.root_proc).clone();
        if let Err(e) = rump::sys::sync(&p) {
            log::error!("rump fuse: sync at unmount: {e}");
        }
        if let Err(e) = rump::sys::umount2(&p, KERNEL_MOUNT.as_bytes(), 0) {
            log::warn!("rump fuse: unmount in the kernel: {e}; forcing it");
            let _ = rump::sys::umount2(&p, KERNEL_MOUNT.as_bytes(), kern::vfs::MNT_FORCE);
        }
        if let Some(k) = self.kernel.take() {
            k.halt();
        }
    }
}

/// The changes of one SETATTR.
struct Change {
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
    atime: TimeSet,
    mtime: TimeSet,
}

impl Drop for RumpFs {
    fn drop(&mut self) {
        if self.kernel.is_some() {
            self.shut_down();
        }
    }
}

/// Runs a handler so that a panic in the kernel (a bug, never the
/// image's fault) answers the request with EIO instead of killing the
/// worker thread: the reply is dropped while unwinding, and fuser answers
/// an unsent reply with EIO. The mount never wedges.
fn guarded(f: impl FnOnce()) {
    if std::panic::catch_unwind(AssertUnwindSafe(f)).is_err() {
        log::error!("rump fuse: a request handler panicked; answered EIO");
    }
}

impl Filesystem for RumpFs {
    fn init(&mut self, _req: &Request, cfg: &mut KernelConfig) -> std::io::Result<()> {
        let mut want = InitFlags::FUSE_DO_READDIRPLUS
            | InitFlags::FUSE_READDIRPLUS_AUTO
            | InitFlags::FUSE_PARALLEL_DIROPS
            | InitFlags::FUSE_HANDLE_KILLPRIV
            | InitFlags::FUSE_CACHE_SYMLINKS;
        if self.options.writeback {
            want |= InitFlags::FUSE_WRITEBACK_CACHE;
        }
        let _ = cfg.add_capabilities(want & cfg.capabilities());
        if let Err(max) = cfg.set_max_write(MAX_IO) {
            let _ = cfg.set_max_write(max);
        }
        if let Err(max) = cfg.set_max_readahead(MAX_IO) {
            let _ = cfg.set_max_readahead(max);
        }
        let _ = cfg.set_max_background(64);
        Ok(())
    }

    fn destroy(&mut self) {
        self.shut_down();
    }

    fn lookup(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let dir = self.vnode(parent)?;
                let caller = Caller::of(&p)?;
                let ctx = caller.ctx(&p, Some(&dir));
                ctx.step(&dir, name.as_bytes())
            })();
            match r {
                Ok(vn) => self.entry(vn, reply),
                // A negative entry: the host caches the absence too.
                Err(Errno::ENOENT) => reply.entry(&TTL, &negative_attr(), Generation(0)),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.forget_one(ino.0, nlookup);
    }

    // batch_forget: fuser's default hands each node to `forget`.

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        guarded(|| match self.vnode(ino).and_then(|v| v.stat()) {
            Ok(st) => reply.attr(&TTL, &self.attr(&st)),
            Err(e) => reply.error(fuse_errno(e)),
        })
    }

    fn setattr(
        &self,
        req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        guarded(|| {
            let set = Change {
                mode,
                uid,
                gid,
                size,
                atime: time_set(atime),
                mtime: time_set(mtime),
            };
            match self.do_setattr(req, ino, &set, fh) {
                Ok(st) => reply.attr(&TTL, &self.attr(&st)),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        guarded(|| {
            let r = self.vnode(ino).and_then(|vn| {
                if vn.kind() != NodeKind::Symlink {
                    return Err(Errno::EINVAL);
                }
                vn.node.readlink()
            });
            match r {
                Ok(t) => reply.data(&t),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let dir = self.vnode(parent)?;
                let vn = ops::mknod(&p, Some(&dir), name.as_bytes(), mode, u64::from(rdev))?;
                self.synced(Some(&vn))?;
                Ok(vn)
            })();
            match r {
                Ok(vn) => self.entry(vn, reply),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let dir = self.vnode(parent)?;
                let vn = ops::mkdir(&p, Some(&dir), name.as_bytes(), mode)?;
                self.synced(Some(&vn))?;
                Ok(vn)
            })();
            match r {
                Ok(vn) => self.entry(vn, reply),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn unlink(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let dir = self.vnode(parent)?;
                ops::unlink(&p, Some(&dir), name.as_bytes())?;
                self.synced(None)
            })();
            empty(reply, r)
        })
    }

    fn rmdir(&self, req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let dir = self.vnode(parent)?;
                ops::rmdir(&p, Some(&dir), name.as_bytes())?;
                self.synced(None)
            })();
            empty(reply, r)
        })
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let dir = self.vnode(parent)?;
                let t = target.as_os_str().as_bytes();
                let vn = ops::symlink(&p, t, Some(&dir), link_name.as_bytes())?;
                self.synced(Some(&vn))?;
                Ok(vn)
            })();
            match r {
                Ok(vn) => self.entry(vn, reply),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn rename(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        guarded(|| {
            let r = (|| {
                // Linux's ext2 knows RENAME_NOREPLACE only; exchange and
                // whiteout are EINVAL there too.
                if !(flags - RenameFlags::RENAME_NOREPLACE).is_empty() {
                    return Err(Errno::EINVAL);
                }
                let p = self.proc_for(req)?;
                let od = self.vnode(parent)?;
                let nd = self.vnode(newparent)?;
                if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                    // The host kernel holds both directories locked
                    // across a rename and every change of either goes
                    // through it, so this check cannot race.
                    let caller = Caller::of(&p)?;
                    match caller.ctx(&p, Some(&nd)).step(&nd, newname.as_bytes()) {
                        Ok(_) => return Err(Errno::EEXIST),
                        Err(Errno::ENOENT) => {}
                        Err(e) => return Err(e),
                    }
                }
                ops::rename(
                    &p,
                    Some(&od),
                    name.as_bytes(),
                    Some(&nd),
                    newname.as_bytes(),
                )?;
                self.synced(None)
            })();
            empty(reply, r)
        })
    }

    fn link(
        &self,
        req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let vn = self.vnode(ino)?;
                let nd = self.vnode(newparent)?;
                ops::link_vnode(&p, &vn, Some(&nd), newname.as_bytes())?;
                self.synced(Some(&vn))?;
                Ok(vn)
            })();
            match r {
                Ok(vn) => self.entry(vn, reply),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn open(&self, req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        guarded(|| match self.open_handle(req, ino, flags.0) {
            // Only we change the file, so its pages stay valid across
            // opens.
            Ok(fh) => reply.opened(FileHandle(fh), FopenFlags::FOPEN_KEEP_CACHE),
            Err(e) => reply.error(fuse_errno(e)),
        })
    }

    fn read(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        guarded(|| {
            let r = (|| {
                let f = self.handle(fh)?;
                let p = self.proc_for_io(req);
                let mut buf = vec![0u8; size as usize];
                let mut done = 0;
                // FUSE wants the whole range except at the end of file.
                while done < buf.len() {
                    let n = f.read(&p, &mut buf[done..], Pos::At(offset + done as u64))?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                buf.truncate(done);
                Ok(buf)
            })();
            match r {
                Ok(b) => reply.data(&b),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn write(
        &self,
        req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        guarded(|| {
            let r = (|| {
                let f = self.handle(fh)?;
                let p = self.proc_for_io(req);
                let mut done = 0;
                while done < data.len() {
                    let n = f.write(&p, &data[done..], Pos::At(offset + done as u64))?;
                    if n == 0 {
                        break;
                    }
                    done += n;
                }
                if let Some(vn) = f.vnode() {
                    if done > 0 {
                        // We asked for FUSE_HANDLE_KILLPRIV: a write by
                        // an unprivileged caller clears set-id bits here.
                        ops::remove_privs(&p.cred(), vn)?;
                    }
                    self.synced(Some(vn))?;
                }
                Ok(done)
            })();
            match r {
                Ok(n) => reply.written(n as u32),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        lock(&self.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsync(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        guarded(|| {
            let r = self.handle(fh).and_then(|f| match f.vnode() {
                Some(vn) => vn.node.fsync(datasync),
                None => Err(Errno::EINVAL),
            });
            empty(reply, r)
        })
    }

    fn opendir(&self, req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        guarded(
            || match self.open_handle(req, ino, o::RDONLY | o::DIRECTORY) {
                // The host may cache the listing: every change to the
                // directory goes through it and invalidates that cache.
                Ok(fh) => reply.opened(
                    FileHandle(fh),
                    FopenFlags::FOPEN_KEEP_CACHE | FopenFlags::FOPEN_CACHE_DIR,
                ),
                Err(e) => reply.error(fuse_errno(e)),
            },
        )
    }

    fn readdir(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        guarded(|| {
            let r = self.read_dir(
                req,
                ino,
                offset,
                |_, id, next, kind, name, _| {
                    reply.add(INodeNo(id), next, file_type(kind), OsStr::from_bytes(name))
                },
                false,
            );
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn readdirplus(
        &self,
        req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        guarded(|| {
            let r = self.read_dir(
                req,
                ino,
                offset,
                |fs, id, next, kind, name, child| {
                    let name = OsStr::from_bytes(name);
                    // Entries without attributes (".", "..", or when the
                    // caller may not search) carry node id 0: the host
                    // makes no dentry for them and counts no lookup.
                    let st = child.and_then(|c| c.stat().ok());
                    match (child, st) {
                        (Some(c), Some(st)) => {
                            let attr = fs.attr(&st);
                            let full =
                                reply.add(INodeNo(id), next, name, &TTL, &attr, Generation(0));
                            if !full {
                                fs.remember(c);
                            }
                            full
                        }
                        _ => {
                            let mut attr = negative_attr();
                            attr.kind = file_type(kind);
                            reply.add(INodeNo(id), next, name, &TTL, &attr, Generation(0))
                        }
                    }
                },
                true,
            );
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        lock(&self.handles).remove(&fh.0);
        reply.ok();
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        guarded(|| {
            let r = self.vnode(ino).and_then(|vn| vn.node.fsync(datasync));
            empty(reply, r)
        })
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        guarded(|| match self.root.mnt.fs.statvfs() {
            Ok(s) => reply.statfs(
                s.blocks,
                s.bfree,
                s.bavail,
                s.files,
                s.ffree,
                s.bsize as u32,
                s.namemax as u32,
                s.frsize as u32,
            ),
            Err(e) => reply.error(fuse_errno(e)),
        })
    }

    fn access(&self, req: &Request, ino: INodeNo, mask: AccessFlags, reply: ReplyEmpty) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let vn = self.vnode(ino)?;
                let want = Access((mask.bits() & 7) as u8);
                ops::access(&p.cred(), &vn, want, true)
            })();
            empty(reply, r)
        })
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        guarded(|| {
            let r = (|| {
                let p = self.proc_for(req)?;
                let dir = self.vnode(parent)?;
                let how = OpenHow {
                    flags: (flags & (OPEN_FLAGS | o::EXCL | o::TRUNC)) | o::CREAT,
                    mode,
                };
                let f = ops::open(&p, Some(&dir), name.as_bytes(), how)?;
                let vn = f.vnode().cloned().ok_or(Errno::EIO)?;
                let st = vn.stat()?;
                self.synced(Some(&vn))?;
                Ok((vn, st, f))
            })();
            match r {
                Ok((vn, st, f)) => {
                    self.remember(&vn);
                    let fh = self.new_handle(f);
                    reply.created(
                        &TTL,
                        &self.attr(&st),
                        Generation(0),
                        FileHandle(fh),
                        FopenFlags::FOPEN_KEEP_CACHE,
                    );
                }
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }

    fn fallocate(
        &self,
        _req: &Request,
        _ino: INodeNo,
        _fh: FileHandle,
        _offset: u64,
        _length: u64,
        _mode: i32,
        reply: ReplyEmpty,
    ) {
        // The driver cannot reserve blocks without writing them (nor can
        // Linux's ext2): posix_fallocate(3) falls back to writing zeros.
        reply.error(fuser::Errno::EOPNOTSUPP);
    }

    fn lseek(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        guarded(|| {
            let r = self
                .handle(fh)
                .and_then(|f| f.ops().seek(self.kernel(), &f, offset, whence));
            match r {
                Ok(off) => reply.offset(off as i64),
                Err(e) => reply.error(fuse_errno(e)),
            }
        })
    }
}

impl RumpFs {
    /// The process a read or write runs as: the file was opened with the
    /// caller's rights already, so only the set-id rule of a write needs
    /// the caller; a request we cannot attribute runs as root.
    fn proc_for_io(&self, req: &Request) -> Arc<Proc> {
        self.proc_for(req)
            .unwrap_or_else(|_| self.root_kproc.clone())
    }
}

fn empty(reply: ReplyEmpty, r: Result<(), Errno>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(fuse_errno(e)),
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `uid=N` swaps host id N with the image's id 0 (both ways).
fn swap(map: Option<u32>, id: u32) -> u32 {
    match map {
        Some(n) if id == n => 0,
        Some(n) if id == 0 => n,
        _ => id,
    }
}

/// The supplementary groups of host process `pid` (`Groups:` of
/// `/proc/PID/status`); none if it cannot be read.
fn host_groups(pid: u32) -> Vec<u32> {
    let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Vec::new();
    };
    s.lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn negative_attr() -> FileAttr {
    FileAttr {
        ino: INodeNo(0),
        size: 0,
        blocks: 0,
        atime: UNIX_EPOCH,
        mtime: UNIX_EPOCH,
        ctime: UNIX_EPOCH,
        crtime: UNIX_EPOCH,
        kind: FileType::RegularFile,
        perm: 0,
        nlink: 0,
        uid: 0,
        gid: 0,
        rdev: 0,
        blksize: 4096,
        flags: 0,
    }
}

fn file_type(k: NodeKind) -> FileType {
    match k {
        NodeKind::Regular => FileType::RegularFile,
        NodeKind::Directory => FileType::Directory,
        NodeKind::Symlink => FileType::Symlink,
        NodeKind::Fifo => FileType::NamedPipe,
        NodeKind::CharDevice => FileType::CharDevice,
        NodeKind::BlockDevice => FileType::BlockDevice,
        NodeKind::Socket => FileType::Socket,
    }
}

fn system_time(t: Timespec) -> SystemTime {
    if t.sec >= 0 {
        UNIX_EPOCH + Duration::new(t.sec as u64, t.nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(t.sec.unsigned_abs())
            + Duration::from_nanos(u64::from(t.nsec))
    }
}

fn timespec(t: SystemTime) -> Timespec {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => Timespec {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        },
        Err(e) => {
            let d = e.duration();
            let mut sec = -(d.as_secs() as i64);
            let mut nsec = d.subsec_nanos();
            if nsec > 0 {
                sec -= 1;
                nsec = 1_000_000_000 - nsec;
            }
            Timespec { sec, nsec }
        }
    }
}

fn time_set(t: Option<TimeOrNow>) -> TimeSet {
    match t {
        None => TimeSet::Omit,
        Some(TimeOrNow::Now) => TimeSet::Now,
        Some(TimeOrNow::SpecificTime(t)) => TimeSet::At(timespec(t)),
    }
}
