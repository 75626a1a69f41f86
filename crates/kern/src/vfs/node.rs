//! The contract between the VFS and a file system: [`FsType`] (mounts),
//! [`FileSystem`] (one mounted instance) and [`Node`] (one file: the vnode
//! operations).
//!
//! Division of work: the VFS walks paths, crosses mounts, checks
//! permissions, read-only mounts and the special names `.` and `..`. A
//! file system checks only what needs its own lock to be race-free:
//! whether a name exists (`EEXIST`, `ENOENT`), whether a directory is empty
//! (`ENOTEMPTY`), the type rules of rename, and space (`ENOSPC`). It keeps
//! link counts and timestamps.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use hyper::{Errno, Timespec};

use crate::consts::{dt, s};
use crate::file::Stat;
use crate::Kernel;

/// The type of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NodeKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    CharDevice,
    BlockDevice,
    Socket,
}

impl NodeKind {
    /// The kind encoded in `st_mode`.
    pub fn from_mode(mode: u32) -> Option<NodeKind> {
        Some(match mode & s::IFMT {
            s::IFREG => NodeKind::Regular,
            s::IFDIR => NodeKind::Directory,
            s::IFLNK => NodeKind::Symlink,
            s::IFIFO => NodeKind::Fifo,
            s::IFCHR => NodeKind::CharDevice,
            s::IFBLK => NodeKind::BlockDevice,
            s::IFSOCK => NodeKind::Socket,
            _ => return None,
        })
    }

    /// The `S_IF*` bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            NodeKind::Regular => s::IFREG,
            NodeKind::Directory => s::IFDIR,
            NodeKind::Symlink => s::IFLNK,
            NodeKind::Fifo => s::IFIFO,
            NodeKind::CharDevice => s::IFCHR,
            NodeKind::BlockDevice => s::IFBLK,
            NodeKind::Socket => s::IFSOCK,
        }
    }

    /// The `d_type` of `getdents64`.
    pub fn dirent_type(self) -> u8 {
        match self {
            NodeKind::Regular => dt::REG,
            NodeKind::Directory => dt::DIR,
            NodeKind::Symlink => dt::LNK,
            NodeKind::Fifo => dt::FIFO,
            NodeKind::CharDevice => dt::CHR,
            NodeKind::BlockDevice => dt::BLK,
            NodeKind::Socket => dt::SOCK,
        }
    }
}

/// A new file to create.
#[derive(Clone, Copy, Debug)]
pub struct NewNode<'a> {
    pub kind: NodeKind,
    /// Permission bits (already masked with the umask).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    /// Device number for device nodes.
    pub rdev: u64,
    /// Target of a symbolic link.
    pub target: &'a [u8],
}

/// Attribute changes (`setattr`). The file system sets `ctime` itself.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    /// Permission bits (`0o7777`).
    pub perm: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

/// Where a write goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteAt {
    Offset(u64),
    /// At the end, atomically with respect to other appends.
    End,
}

/// One directory entry, as [`Node::readdir`] reports it.
#[derive(Clone, Copy, Debug)]
pub struct DirEntry<'a> {
    pub ino: u64,
    pub kind: NodeKind,
    pub name: &'a [u8],
    /// The cookie that resumes the listing after this entry.
    pub next: u64,
}

/// File-system statistics (`statvfs(3)`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StatVfs {
    pub bsize: u64,
    pub frsize: u64,
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub favail: u64,
    pub fsid: u64,
    pub flag: u64,
    pub namemax: u64,
    /// The `f_type` magic of `statfs(2)` (TMPFS_MAGIC, EXT2_SUPER_MAGIC).
    pub fs_type: u64,
}

/// One file of a mounted file system: the vnode operations.
///
/// Directory operations are called on the directory; names are single
/// components (no `/`, not `.` or `..` except in `lookup`), at most
/// `NAME_MAX` bytes. Reads and writes on non-regular files are not routed
/// here (the VFS refuses them or hands them to a device).
pub trait Node: Send + Sync + Any {
    /// The inode number; stable for the life of the file.
    fn ino(&self) -> u64;
    /// The file type (never changes).
    fn kind(&self) -> NodeKind;
    /// Status (`dev` is filled in by the VFS).
    fn getattr(&self) -> Result<Stat, Errno>;
    /// Changes attributes; truncates or extends with `size`.
    fn setattr(&self, set: &SetAttr) -> Result<(), Errno>;
    /// Finds `name` in this directory (`..` included).
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Node>, Errno>;
    /// Creates `name` in this directory. `EEXIST` if it exists.
    fn create(&self, name: &[u8], new: &NewNode<'_>) -> Result<Arc<dyn Node>, Errno>;
    /// Adds a hard link `name` to `target` (same file system).
    fn link(&self, name: &[u8], target: &Arc<dyn Node>) -> Result<(), Errno>;
    /// Removes the non-directory `name`.
    fn unlink(&self, name: &[u8]) -> Result<(), Errno>;
    /// Removes the empty directory `name`.
    fn rmdir(&self, name: &[u8]) -> Result<(), Errno>;
    /// Moves `old` in this directory to `new` in `new_dir` (same file
    /// system), replacing what is there when the types allow.
    fn rename(&self, old: &[u8], new_dir: &Arc<dyn Node>, new: &[u8]) -> Result<(), Errno>;
    /// The target of a symbolic link.
    fn readlink(&self) -> Result<Vec<u8>, Errno>;
    /// Reads at `off`; holes read as zeros; 0 at or past the end.
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes; returns bytes written and the offset after the write.
    fn write(&self, at: WriteAt, buf: &[u8]) -> Result<(usize, u64), Errno>;
    /// Lists entries from `cookie` (0 = start). `sink` returns `false` when
    /// it wants no more; the entry it refused is offered again next time.
    fn readdir(&self, cookie: u64, sink: &mut dyn FnMut(DirEntry<'_>) -> bool)
        -> Result<(), Errno>;
    /// `SEEK_DATA` (`hole` false) or `SEEK_HOLE` (`hole` true) from
    /// `off`, which is below the file's `size`: the first offset at or
    /// after `off` where data (a hole) begins; the end of the file counts
    /// as a hole; `ENXIO` when no data follows. The default sees the
    /// whole file as data, which POSIX allows; a file system that knows
    /// its holes says where they are. Either answer may err towards data
    /// (a hole read as data is zeros), never towards holes.
    fn seek_data(&self, off: u64, size: u64, hole: bool) -> Result<u64, Errno> {
        Ok(if hole { size } else { off })
    }
    /// Makes the file's data (and with `!datasync`, its metadata) durable.
    fn fsync(&self, datasync: bool) -> Result<(), Errno> {
        let _ = datasync;
        Ok(())
    }
    /// For downcasting to the file system's own node type.
    fn as_any(&self) -> &dyn Any;
}

/// A mounted file system.
pub trait FileSystem: Send + Sync {
    /// The root directory.
    fn root(&self) -> Arc<dyn Node>;
    /// Statistics.
    fn statvfs(&self) -> Result<StatVfs, Errno>;
    /// Writes everything dirty back.
    fn sync(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// Called once when the file system is unmounted (after a sync).
    fn unmount(&self) -> Result<(), Errno> {
        Ok(())
    }
    /// Whether the VFS may cache this file system's names (positive
    /// lookups): names compare byte for byte, and a name appears or goes
    /// only through the VFS's own operations (`create`, `link`, `unlink`,
    /// `rmdir`, `rename`), never behind its back. A case-insensitive file
    /// system (FAT) or one changed by another party must say `false`.
    fn caches_names(&self) -> bool {
        false
    }
}

/// A kind of file system that can be mounted (`tmpfs`, `ext2`).
pub trait FsType: Send + Sync {
    /// Its name in `mount -t`.
    fn name(&self) -> &'static str;
    /// Mounts an instance. `source` is the device or a name; `data` the
    /// option string (`size=1m,mode=755`).
    fn mount(
        &self,
        k: &Kernel,
        source: &[u8],
        flags: u64,
        data: &[u8],
    ) -> Result<Arc<dyn FileSystem>, Errno>;

    /// Whether `source` holds a file system of this type (`mount -t auto`
    /// asks every registered type). Reads only what identifies the format
    /// (a superblock magic, a volume descriptor) and claims nothing; types
    /// that need no device (tmpfs) answer `Ok(false)`. An error (`ENXIO`:
    /// no such device, `EIO`) is reported if no other type recognises it.
    fn probe(&self, k: &Kernel, source: &[u8]) -> Result<bool, Errno> {
        let _ = (k, source);
        Ok(false)
    }
}
