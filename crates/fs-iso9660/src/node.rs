//! The VFS operations of a mounted ISO 9660 volume: [`IsoFileSystem`]
//! (the mount) and [`IsoNode`] (one file). Everything that would modify
//! the volume fails with `EROFS`. Nodes are made afresh on each lookup
//! from the cached parsed directory; the VFS identifies files by inode
//! number, so two nodes for one file are the same file.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::any::Any;

use hyper::Errno;
use kern::file::Stat;
use kern::vfs::{DirEntry, FileSystem, NewNode, Node, NodeKind, SetAttr, StatVfs, WriteAt};

use crate::fs::{Attr, Entry, Extent, IsoFs, Target};

/// The `f_type` of `statfs(2)` for ISO 9660 (Linux's `ISOFS_SUPER_MAGIC`).
pub const ISOFS_SUPER_MAGIC: u64 = 0x9660;

/// Largest single device read for file data: big reads are split so that
/// one call does not allocate or pin more than this.
const MAX_READ_CHUNK: usize = 1 << 20;

/// One mounted ISO 9660 volume.
pub struct IsoFileSystem {
    fs: Arc<IsoFs>,
    root: Arc<IsoNode>,
}

impl IsoFileSystem {
    pub(crate) fn new(fs: IsoFs) -> IsoFileSystem {
        let fs = Arc::new(fs);
        let (extent, size) = fs.root;
        // `IsoFs::open` parsed the root already; it is in the cache.
        let attr = fs
            .dir(extent, size)
            .map(|d| d.attr.clone())
            .unwrap_or_else(|_| Attr {
                ino: fs.dir_ino(extent),
                kind: NodeKind::Directory,
                perm: fs.opts.dmode,
                nlink: 1,
                uid: fs.opts.uid,
                gid: fs.opts.gid,
                rdev: 0,
                size: size as u64,
                atime: hyper::Timespec { sec: 0, nsec: 0 },
                mtime: hyper::Timespec { sec: 0, nsec: 0 },
                ctime: hyper::Timespec { sec: 0, nsec: 0 },
            });
        let root = Arc::new(IsoNode {
            fs: fs.clone(),
            attr,
            data: Target::Dir { extent, size },
        });
        IsoFileSystem { fs, root }
    }

    /// Which names the volume is read with: `"rock ridge"`, `"joliet"` or
    /// `"iso9660"`.
    pub fn naming(&self) -> &'static str {
        match self.fs.naming {
            crate::fs::Naming::RockRidge { .. } => "rock ridge",
            crate::fs::Naming::Joliet => "joliet",
            crate::fs::Naming::Plain => "iso9660",
        }
    }
}

impl FileSystem for IsoFileSystem {
    fn root(&self) -> Arc<dyn Node> {
        self.root.clone()
    }

    fn statvfs(&self) -> Result<StatVfs, Errno> {
        Ok(StatVfs {
            bsize: self.fs.bs,
            frsize: self.fs.bs,
            blocks: self.fs.space_size as u64,
            bfree: 0,
            bavail: 0,
            files: 0,
            ffree: 0,
            favail: 0,
            fsid: 0,
            // ST_RDONLY
            flag: 1,
            namemax: 255,
            fs_type: ISOFS_SUPER_MAGIC,
        })
    }
}

/// One file of a mounted volume.
pub struct IsoNode {
    fs: Arc<IsoFs>,
    attr: Attr,
    data: Target,
}

impl IsoNode {
    fn from_entry(fs: &Arc<IsoFs>, e: &Entry) -> Result<Arc<IsoNode>, Errno> {
        match e.target {
            Target::Dir { extent, size } => Self::dir(fs, extent, size),
            _ => Ok(Arc::new(IsoNode {
                fs: fs.clone(),
                attr: e.attr.clone(),
                data: e.target.clone(),
            })),
        }
    }

    /// A directory node: its attributes come from its own "." record.
    fn dir(fs: &Arc<IsoFs>, extent: u32, size: u32) -> Result<Arc<IsoNode>, Errno> {
        let d = fs.dir(extent, size)?;
        Ok(Arc::new(IsoNode {
            fs: fs.clone(),
            attr: d.attr.clone(),
            data: Target::Dir { extent, size },
        }))
    }

    fn dir_extent(&self) -> Result<(u32, u32), Errno> {
        match self.data {
            Target::Dir { extent, size } => Ok((extent, size)),
            _ => Err(Errno::ENOTDIR),
        }
    }

    fn read_extents(
        &self,
        extents: &[Extent],
        interleaved: bool,
        off: u64,
        buf: &mut [u8],
    ) -> Result<usize, Errno> {
        if interleaved {
            self.fs.log(&alloc::format!(
                "inode {}: interleaved files are not supported",
                self.attr.ino
            ));
            return Err(Errno::EIO);
        }
        let size = self.attr.size;
        if off >= size || buf.is_empty() {
            return Ok(0);
        }
        let want = ((size - off).min(buf.len() as u64)) as usize;
        let mut done = 0usize;
        let mut ext_start = 0u64; // file offset where the extent begins
        for ext in extents {
            let ext_end = ext_start + ext.len;
            let pos = off + done as u64;
            if done < want && pos < ext_end {
                let within = pos - ext_start;
                let n = ((ext_end - pos) as usize).min(want - done);
                let mut at = 0;
                while at < n {
                    let c = (n - at).min(MAX_READ_CHUNK);
                    let dev_off = ext.start + within + at as u64;
                    self.fs
                        .read_at(dev_off, &mut buf[done + at..done + at + c])?;
                    at += c;
                }
                done += n;
            }
            ext_start = ext_end;
            if done == want {
                break;
            }
        }
        Ok(done)
    }
}

impl Node for IsoNode {
    fn ino(&self) -> u64 {
        self.attr.ino
    }

    fn kind(&self) -> NodeKind {
        self.attr.kind
    }

    fn getattr(&self) -> Result<Stat, Errno> {
        let a = &self.attr;
        Ok(Stat {
            dev: 0,
            ino: a.ino,
            mode: a.kind.mode_bits() | a.perm,
            nlink: a.nlink,
            uid: a.uid,
            gid: a.gid,
            rdev: a.rdev,
            size: a.size,
            blksize: self.fs.bs as u32,
            blocks: match a.kind {
                NodeKind::Regular | NodeKind::Directory => a.size.div_ceil(512),
                _ => 0,
            },
            atime: a.atime,
            mtime: a.mtime,
            ctime: a.ctime,
        })
    }

    fn setattr(&self, _set: &SetAttr) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Node>, Errno> {
        let (extent, size) = self.dir_extent()?;
        let d = self.fs.dir(extent, size)?;
        if name == b"." {
            return Ok(IsoNode::dir(&self.fs, extent, size)?);
        }
        if name == b".." {
            let (pe, ps) = d.parent;
            return Ok(IsoNode::dir(&self.fs, pe, ps)?);
        }
        let e = d
            .entries
            .iter()
            .find(|e| e.name == name)
            .ok_or(Errno::ENOENT)?;
        Ok(IsoNode::from_entry(&self.fs, e)?)
    }

    fn create(&self, _name: &[u8], _new: &NewNode<'_>) -> Result<Arc<dyn Node>, Errno> {
        Err(Errno::EROFS)
    }

    fn link(&self, _name: &[u8], _target: &Arc<dyn Node>) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn unlink(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn rmdir(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn rename(&self, _old: &[u8], _new_dir: &Arc<dyn Node>, _new: &[u8]) -> Result<(), Errno> {
        Err(Errno::EROFS)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        match &self.data {
            Target::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match &self.data {
            Target::File {
                extents,
                interleaved,
            } => self.read_extents(extents, *interleaved, off, buf),
            Target::Dir { .. } => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn write(&self, _at: WriteAt, _buf: &[u8]) -> Result<(usize, u64), Errno> {
        Err(Errno::EROFS)
    }

    /// Cookies: 0 is ".", 1 is "..", 2 + i is entry i of the parsed
    /// directory (stable: the volume never changes).
    fn readdir(
        &self,
        cookie: u64,
        sink: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> Result<(), Errno> {
        let (extent, size) = self.dir_extent()?;
        let d = self.fs.dir(extent, size)?;
        if cookie == 0
            && !sink(DirEntry {
                ino: self.attr.ino,
                kind: NodeKind::Directory,
                name: b".",
                next: 1,
            })
        {
            return Ok(());
        }
        if cookie <= 1
            && !sink(DirEntry {
                ino: self.fs.dir_ino(d.parent.0),
                kind: NodeKind::Directory,
                name: b"..",
                next: 2,
            })
        {
            return Ok(());
        }
        let first = cookie.saturating_sub(2) as usize;
        for (i, e) in d.entries.iter().enumerate().skip(first) {
            if !sink(DirEntry {
                ino: e.ino,
                kind: e.kind,
                name: &e.name,
                next: i as u64 + 3,
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
