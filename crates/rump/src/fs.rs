//! std-like file-system access inside a rump kernel: [`File`] with
//! `Read`/`Write`/`Seek`, [`OpenOptions`], [`read_dir`], [`metadata`],
//! [`create_dir_all`] and the rest of `std::fs`'s shape, each taking the
//! [`Process`] to act as first. Errors are `std::io::Error`s carrying the
//! kernel's errno.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use kern::consts::{at, o, s, seek};
use kern::vfs::NodeKind;

use crate::{io_error, Errno, Process, Stat};

fn bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

fn io<T>(r: Result<T, Errno>) -> io::Result<T> {
    r.map_err(io_error)
}

/// An open file in a rump kernel. Closed on drop.
///
/// ```
/// use std::io::{Read, Seek, SeekFrom, Write};
/// use rump::fs::{File, OpenOptions};
///
/// let k = rump::Kernel::boot()?;
/// let p = k.process()?;
/// let mut f = OpenOptions::new().read(true).write(true).create(true).open(&p, "/data")?;
/// f.write_all(b"hello, kernel")?;
/// f.seek(SeekFrom::Start(7))?;
/// let mut s = String::new();
/// f.read_to_string(&mut s)?;
/// assert_eq!(s, "kernel");
/// assert_eq!(f.metadata()?.len(), 13);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct File {
    proc: Process,
    fd: i32,
}

/// Options for opening a [`File`], as `std::fs::OpenOptions`.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    read: bool,
    write: bool,
    append: bool,
    truncate: bool,
    create: bool,
    create_new: bool,
    mode: u32,
    custom_flags: i32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenOptions {
    /// All options off, mode 0o666.
    pub fn new() -> Self {
        OpenOptions {
            read: false,
            write: false,
            append: false,
            truncate: false,
            create: false,
            create_new: false,
            mode: 0o666,
            custom_flags: 0,
        }
    }
    pub fn read(&mut self, v: bool) -> &mut Self {
        self.read = v;
        self
    }
    pub fn write(&mut self, v: bool) -> &mut Self {
        self.write = v;
        self
    }
    pub fn append(&mut self, v: bool) -> &mut Self {
        self.append = v;
        self
    }
    pub fn truncate(&mut self, v: bool) -> &mut Self {
        self.truncate = v;
        self
    }
    pub fn create(&mut self, v: bool) -> &mut Self {
        self.create = v;
        self
    }
    pub fn create_new(&mut self, v: bool) -> &mut Self {
        self.create_new = v;
        self
    }
    /// Permission bits for a created file (before the umask).
    pub fn mode(&mut self, mode: u32) -> &mut Self {
        self.mode = mode;
        self
    }
    /// Extra `O_*` flags.
    pub fn custom_flags(&mut self, flags: i32) -> &mut Self {
        self.custom_flags = flags;
        self
    }

    /// The `open(2)` flags these options mean.
    pub fn flags(&self) -> io::Result<i32> {
        let acc = match (self.read, self.write || self.append) {
            (true, false) => o::RDONLY,
            (false, true) => o::WRONLY,
            (true, true) => o::RDWR,
            (false, false) => return Err(io_error(Errno::EINVAL)),
        };
        let mut f = acc | o::CLOEXEC | self.custom_flags;
        if self.append {
            f |= o::APPEND;
        }
        if self.truncate {
            f |= o::TRUNC;
        }
        if self.create_new {
            f |= o::CREAT | o::EXCL;
        } else if self.create {
            f |= o::CREAT;
        }
        Ok(f)
    }

    /// Opens `path` as process `p`.
    pub fn open<P: AsRef<Path>>(&self, p: &Process, path: P) -> io::Result<File> {
        let fd = io(sys::open(p, bytes(path.as_ref()), self.flags()?, self.mode))?;
        Ok(File {
            proc: p.clone(),
            fd,
        })
    }
}

impl File {
    /// Opens a file for reading.
    pub fn open<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<File> {
        OpenOptions::new().read(true).open(p, path)
    }

    /// Creates (or truncates) a file for writing.
    pub fn create<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(p, path)
    }

    /// Takes ownership of a descriptor of process `p`.
    pub fn from_fd(p: &Process, fd: i32) -> File {
        File {
            proc: p.clone(),
            fd,
        }
    }

    /// The descriptor.
    pub fn fd(&self) -> i32 {
        self.fd
    }

    /// Gives up ownership of the descriptor (it is not closed on drop).
    pub fn into_fd(self) -> i32 {
        let fd = self.fd;
        std::mem::forget(self);
        fd
    }

    /// Status.
    pub fn metadata(&self) -> io::Result<Metadata> {
        io(sys::fstat(&self.proc, self.fd)).map(Metadata)
    }

    /// Truncates or extends.
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        let len = i64::try_from(len).map_err(|_| io_error(Errno::EFBIG))?;
        io(sys::ftruncate(&self.proc, self.fd, len))
    }

    /// `fsync`.
    pub fn sync_all(&self) -> io::Result<()> {
        io(sys::fsync(&self.proc, self.fd))
    }

    /// `fdatasync`.
    pub fn sync_data(&self) -> io::Result<()> {
        io(sys::fdatasync(&self.proc, self.fd))
    }

    /// Reads at an offset without moving the file offset.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        io(sys::pread(&self.proc, self.fd, buf, offset as i64))
    }

    /// Writes at an offset without moving the file offset.
    pub fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        io(sys::pwrite(&self.proc, self.fd, buf, offset as i64))
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = sys::close(&self.proc, self.fd);
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io(sys::read(&self.proc, self.fd, buf))
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io(sys::write(&self.proc, self.fd, buf))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let (off, whence) = match pos {
            SeekFrom::Start(n) => (
                i64::try_from(n).map_err(|_| io_error(Errno::EINVAL))?,
                seek::SET,
            ),
            SeekFrom::Current(n) => (n, seek::CUR),
            SeekFrom::End(n) => (n, seek::END),
        };
        io(sys::lseek(&self.proc, self.fd, off, whence))
    }
}

/// File status, as `std::fs::Metadata`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metadata(pub Stat);

/// The type of a file.
pub type FileType = NodeKind;

impl Metadata {
    pub fn len(&self) -> u64 {
        self.0.size
    }
    pub fn file_type(&self) -> FileType {
        NodeKind::from_mode(self.0.mode).unwrap_or(NodeKind::Regular)
    }
    pub fn is_dir(&self) -> bool {
        self.0.mode & s::IFMT == s::IFDIR
    }
    pub fn is_file(&self) -> bool {
        self.0.mode & s::IFMT == s::IFREG
    }
    pub fn is_symlink(&self) -> bool {
        self.0.mode & s::IFMT == s::IFLNK
    }
    /// `st_mode`, type and permission bits.
    pub fn mode(&self) -> u32 {
        self.0.mode
    }
    /// Permission bits.
    pub fn permissions(&self) -> u32 {
        self.0.mode & s::PERM_MASK
    }
    pub fn uid(&self) -> u32 {
        self.0.uid
    }
    pub fn gid(&self) -> u32 {
        self.0.gid
    }
    pub fn nlink(&self) -> u64 {
        self.0.nlink
    }
    pub fn ino(&self) -> u64 {
        self.0.ino
    }
    pub fn dev(&self) -> u64 {
        self.0.dev
    }
    /// Modification time as seconds and nanoseconds since the epoch.
    pub fn modified(&self) -> crate::Timespec {
        self.0.mtime
    }
    /// 512-byte blocks allocated.
    pub fn blocks(&self) -> u64 {
        self.0.blocks
    }
}

/// Status of `path`, following symlinks.
pub fn metadata<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<Metadata> {
    io(sys::stat(p, bytes(path.as_ref()))).map(Metadata)
}

/// Status of `path` itself.
pub fn symlink_metadata<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<Metadata> {
    io(sys::lstat(p, bytes(path.as_ref()))).map(Metadata)
}

/// Whether `path` exists (following symlinks).
pub fn exists<P: AsRef<Path>>(p: &Process, path: P) -> bool {
    metadata(p, path).is_ok()
}

/// The whole contents of a file.
pub fn read<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<Vec<u8>> {
    let mut f = File::open(p, path)?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)?;
    Ok(v)
}

/// The whole contents of a file as UTF-8.
pub fn read_to_string<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<String> {
    String::from_utf8(read(p, path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Creates or truncates a file and writes `contents`.
pub fn write<P: AsRef<Path>, C: AsRef<[u8]>>(p: &Process, path: P, contents: C) -> io::Result<()> {
    File::create(p, path)?.write_all(contents.as_ref())
}

/// Makes a directory (mode 0o777 before the umask).
pub fn create_dir<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<()> {
    io(sys::mkdir(p, bytes(path.as_ref()), 0o777))
}

/// Makes a directory and any missing parents.
pub fn create_dir_all<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<()> {
    let path = path.as_ref();
    match sys::mkdir(p, bytes(path), 0o777) {
        Ok(()) => return Ok(()),
        Err(Errno::EEXIST) if metadata(p, path).is_ok_and(|m| m.is_dir()) => return Ok(()),
        Err(Errno::ENOENT) => {}
        Err(e) => return Err(io_error(e)),
    }
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => create_dir_all(p, parent)?,
        _ => return Err(io_error(Errno::ENOENT)),
    }
    match sys::mkdir(p, bytes(path), 0o777) {
        Ok(()) => Ok(()),
        Err(Errno::EEXIST) if metadata(p, path).is_ok_and(|m| m.is_dir()) => Ok(()),
        Err(e) => Err(io_error(e)),
    }
}

/// Removes a file.
pub fn remove_file<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<()> {
    io(sys::unlink(p, bytes(path.as_ref())))
}

/// Removes an empty directory.
pub fn remove_dir<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<()> {
    io(sys::rmdir(p, bytes(path.as_ref())))
}

/// Removes a directory and everything in it.
pub fn remove_dir_all<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<()> {
    let path = path.as_ref();
    for entry in read_dir(p, path)? {
        let entry = entry?;
        let child = path.join(entry.file_name());
        if entry.file_type() == NodeKind::Directory {
            remove_dir_all(p, &child)?;
        } else {
            remove_file(p, &child)?;
        }
    }
    remove_dir(p, path)
}

/// Renames.
pub fn rename<P: AsRef<Path>, Q: AsRef<Path>>(p: &Process, from: P, to: Q) -> io::Result<()> {
    io(sys::rename(p, bytes(from.as_ref()), bytes(to.as_ref())))
}

/// Makes a hard link `link` to `original`.
pub fn hard_link<P: AsRef<Path>, Q: AsRef<Path>>(
    p: &Process,
    original: P,
    link: Q,
) -> io::Result<()> {
    io(sys::link(p, bytes(original.as_ref()), bytes(link.as_ref())))
}

/// Makes a symbolic link `link` pointing at `target`.
pub fn symlink<P: AsRef<Path>, Q: AsRef<Path>>(p: &Process, target: P, link: Q) -> io::Result<()> {
    io(sys::symlink(
        p,
        bytes(target.as_ref()),
        bytes(link.as_ref()),
    ))
}

/// The target of a symbolic link.
pub fn read_link<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<PathBuf> {
    use std::os::unix::ffi::OsStringExt;
    let t = io(sys::readlink(p, bytes(path.as_ref())))?;
    Ok(PathBuf::from(std::ffi::OsString::from_vec(t)))
}

/// Sets permission bits.
pub fn set_permissions<P: AsRef<Path>>(p: &Process, path: P, mode: u32) -> io::Result<()> {
    io(sys::chmod(p, bytes(path.as_ref()), mode))
}

/// Copies a file's contents; returns the bytes copied.
pub fn copy<P: AsRef<Path>, Q: AsRef<Path>>(p: &Process, from: P, to: Q) -> io::Result<u64> {
    let mut src = File::open(p, from)?;
    let mode = src.metadata()?.permissions();
    let mut dst = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(p, to)?;
    io::copy(&mut src, &mut dst)
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    name: Vec<u8>,
    ino: u64,
    kind: NodeKind,
}

impl DirEntry {
    /// The entry's name.
    pub fn file_name(&self) -> std::ffi::OsString {
        use std::os::unix::ffi::OsStringExt;
        std::ffi::OsString::from_vec(self.name.clone())
    }
    /// The name as bytes.
    pub fn name_bytes(&self) -> &[u8] {
        &self.name
    }
    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }
    /// The type, from the directory entry (no `stat` needed).
    pub fn file_type(&self) -> NodeKind {
        self.kind
    }
}

/// An iterator over a directory, reading with `getdents64` in batches.
/// `.` and `..` are skipped, as `std::fs::read_dir` does.
pub struct ReadDir {
    dir: File,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    done: bool,
}

/// Lists a directory.
pub fn read_dir<P: AsRef<Path>>(p: &Process, path: P) -> io::Result<ReadDir> {
    let fd = io(sys::openat(
        p,
        at::FDCWD,
        bytes(path.as_ref()),
        o::RDONLY | o::DIRECTORY | o::CLOEXEC,
        0,
    ))?;
    Ok(ReadDir {
        dir: File::from_fd(p, fd),
        buf: vec![0; 8192],
        pos: 0,
        len: 0,
        done: false,
    })
}

impl Iterator for ReadDir {
    type Item = io::Result<DirEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.pos >= self.len {
                if self.done {
                    return None;
                }
                match sys::getdents64(&self.dir.proc, self.dir.fd, &mut self.buf) {
                    Ok(0) => {
                        self.done = true;
                        return None;
                    }
                    Ok(n) => {
                        self.len = n;
                        self.pos = 0;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(io_error(e)));
                    }
                }
            }
            let rec = &self.buf[self.pos..self.len];
            let ino = u64::from_ne_bytes(rec[0..8].try_into().ok()?);
            let reclen = u16::from_ne_bytes(rec[16..18].try_into().ok()?) as usize;
            let dtype = rec[18];
            let name_area = &rec[19..reclen];
            let nul = name_area
                .iter()
                .position(|&c| c == 0)
                .unwrap_or(name_area.len());
            let name = name_area[..nul].to_vec();
            self.pos += reclen;
            if name == b"." || name == b".." {
                continue;
            }
            let kind = kind_from_dtype(dtype);
            return Some(Ok(DirEntry { name, ino, kind }));
        }
    }
}

fn kind_from_dtype(t: u8) -> NodeKind {
    use kern::consts::dt;
    match t {
        dt::DIR => NodeKind::Directory,
        dt::LNK => NodeKind::Symlink,
        dt::FIFO => NodeKind::Fifo,
        dt::CHR => NodeKind::CharDevice,
        dt::BLK => NodeKind::BlockDevice,
        dt::SOCK => NodeKind::Socket,
        _ => NodeKind::Regular,
    }
}
