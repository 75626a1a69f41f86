//! `rump cp`: copy files and trees into an image, out of it, or within it.
//! Sources and destination are `IMAGE:PATH` (or, with `RUMP_SERVER` set,
//! `:/PATH` in the server's kernel) or host paths; at most one image
//! takes part. With `-r`, directories are copied recursively and
//! symbolic links are copied as links (like `cp -R`); without it,
//! links are followed and directories skipped.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rump::sys::consts::o;
use rump::Errno;

use super::cmds::Ctx;
use super::fmt::strerror;
use super::session::{split, split_server, ImagePath, Session};
use rump_cli::tools::Sys;

/// One side of a copy.
#[derive(Clone)]
enum Loc {
    Host(PathBuf),
    /// A path inside the kernel (under the mount point) and how to show it.
    Image(String, String),
}

impl Loc {
    fn show(&self) -> String {
        match self {
            Loc::Host(p) => p.display().to_string(),
            Loc::Image(_, shown) => shown.clone(),
        }
    }

    fn join(&self, name: &str) -> Loc {
        match self {
            Loc::Host(p) => Loc::Host(p.join(name)),
            Loc::Image(k, s) => Loc::Image(
                format!("{k}/{name}"),
                format!("{}/{name}", s.trim_end_matches('/')),
            ),
        }
    }
}

/// What a copy needs to know of a file: type bits and permissions.
struct Meta {
    mode: u32,
    rdev: u64,
}

type R<T> = Result<T, String>;

fn ioerr(e: std::io::Error) -> String {
    strerror(&e)
}

fn kerr(e: Errno) -> String {
    strerror(&rump::io_error(e))
}

fn meta(s: Option<&Session>, l: &Loc, follow: bool) -> R<Meta> {
    match l {
        Loc::Host(p) => {
            let m = if follow {
                std::fs::metadata(p)
            } else {
                std::fs::symlink_metadata(p)
            };
            m.map(|m| Meta {
                mode: m.mode(),
                rdev: m.rdev(),
            })
            .map_err(ioerr)
        }
        Loc::Image(k, _) => {
            let s = s.ok_or("no image")?;
            let st = if follow {
                s.sys().stat(k)
            } else {
                s.sys().lstat(k)
            };
            st.map(|st| Meta {
                mode: st.mode,
                rdev: st.rdev,
            })
            .map_err(kerr)
        }
    }
}

fn is_dir(s: Option<&Session>, l: &Loc) -> bool {
    meta(s, l, true).is_ok_and(|m| m.mode & 0o170000 == 0o040000)
}

fn list(s: Option<&Session>, l: &Loc) -> R<Vec<String>> {
    let mut names: Vec<String> = match l {
        Loc::Host(p) => std::fs::read_dir(p)
            .map_err(ioerr)?
            .map(|e| {
                e.map(|e| e.file_name().to_string_lossy().into_owned())
                    .map_err(ioerr)
            })
            .collect::<R<_>>()?,
        Loc::Image(k, _) => s
            .ok_or("no image")?
            .sys()
            .read_dir(k)
            .map_err(kerr)?
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect(),
    };
    names.sort();
    Ok(names)
}

fn mkdir(s: Option<&Session>, l: &Loc, mode: u32) -> R<()> {
    match l {
        Loc::Host(p) => match std::fs::create_dir(p) {
            Ok(()) => std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(ioerr),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && p.is_dir() => Ok(()),
            Err(e) => Err(ioerr(e)),
        },
        Loc::Image(k, _) => {
            let s = s.ok_or("no image")?;
            match s.sys().mkdir(k, mode & 0o7777) {
                Ok(()) | Err(Errno::EEXIST) if is_dir(Some(s), l) => Ok(()),
                Ok(()) => Ok(()),
                Err(e) => Err(kerr(e)),
            }
        }
    }
}

fn readlink(s: Option<&Session>, l: &Loc) -> R<Vec<u8>> {
    match l {
        Loc::Host(p) => {
            use std::os::unix::ffi::OsStrExt;
            std::fs::read_link(p)
                .map(|t| t.as_os_str().as_bytes().to_vec())
                .map_err(ioerr)
        }
        Loc::Image(k, _) => s.ok_or("no image")?.sys().readlink(k).map_err(kerr),
    }
}

fn symlink(s: Option<&Session>, target: &[u8], l: &Loc) -> R<()> {
    match l {
        Loc::Host(p) => {
            use std::os::unix::ffi::OsStrExt;
            let _ = std::fs::remove_file(p);
            std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), p).map_err(ioerr)
        }
        Loc::Image(k, _) => {
            let s = s.ok_or("no image")?;
            let _ = s.sys().unlink(k);
            s.sys().symlink(target, k).map_err(kerr)
        }
    }
}

/// Makes a fifo, socket or device node like the source.
fn mknod(s: Option<&Session>, l: &Loc, mode: u32, rdev: u64) -> R<()> {
    match l {
        Loc::Host(p) => {
            use std::os::unix::ffi::OsStrExt;
            let c = std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
            // SAFETY: `c` is a NUL-terminated path that lives across the call.
            let r = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) };
            if r != 0 {
                return Err(ioerr(std::io::Error::last_os_error()));
            }
            Ok(())
        }
        Loc::Image(k, _) => s
            .ok_or("no image")?
            .sys()
            .mknod(k, mode, rdev)
            .map_err(kerr),
    }
}

/// One end of a file copy: a host file or a kernel descriptor.
enum End<'a> {
    Host(std::fs::File),
    Kernel(Sys<'a>, i32),
}

impl End<'_> {
    fn read_at(&self, buf: &mut [u8], off: u64) -> R<usize> {
        match self {
            End::Host(f) => {
                use std::os::unix::fs::FileExt;
                f.read_at(buf, off).map_err(ioerr)
            }
            End::Kernel(k, fd) => {
                let data = k.pread(*fd, buf.len(), off).map_err(kerr)?;
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                Ok(n)
            }
        }
    }

    fn write_all_at(&self, mut buf: &[u8], mut off: u64) -> R<()> {
        match self {
            End::Host(f) => {
                use std::os::unix::fs::FileExt;
                f.write_all_at(buf, off).map_err(ioerr)
            }
            End::Kernel(k, fd) => {
                while !buf.is_empty() {
                    let n = k.pwrite(*fd, buf, off).map_err(kerr)?;
                    if n == 0 || n > buf.len() {
                        return Err(kerr(Errno::EIO));
                    }
                    buf = &buf[n..];
                    off += n as u64;
                }
                Ok(())
            }
        }
    }

    fn size(&self) -> R<u64> {
        match self {
            End::Host(f) => f.metadata().map(|m| m.len()).map_err(ioerr),
            End::Kernel(k, fd) => k.fstat(*fd).map(|st| st.size).map_err(kerr),
        }
    }

    fn set_len(&self, len: u64) -> R<()> {
        match self {
            End::Host(f) => f.set_len(len).map_err(ioerr),
            End::Kernel(k, fd) => k.ftruncate(*fd, len).map_err(kerr),
        }
    }

    /// `lseek(SEEK_DATA or SEEK_HOLE)`; `None` for no more data.
    fn seek(&self, off: u64, hole: bool) -> R<Option<u64>> {
        let whence = if hole {
            libc::SEEK_HOLE
        } else {
            libc::SEEK_DATA
        };
        let r = match self {
            End::Host(f) => {
                use std::os::unix::io::AsRawFd;
                // SAFETY: lseek(2) on a descriptor `f` owns; no memory involved.
                let r = unsafe { libc::lseek(f.as_raw_fd(), off as i64, whence) };
                if r < 0 {
                    Err(std::io::Error::last_os_error())
                } else {
                    Ok(r as u64)
                }
            }
            End::Kernel(k, fd) => k.lseek(*fd, off as i64, whence).map_err(rump::io_error),
        };
        match r {
            Ok(at) => Ok(Some(at)),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            // A file system without the calls: all of it is data.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                Ok(if hole { Some(u64::MAX) } else { Some(off) })
            }
            Err(e) => Err(ioerr(e)),
        }
    }
}

/// Copies the contents of a regular file, keeping its holes: only the
/// data regions the source reports (`SEEK_DATA`/`SEEK_HOLE`) are read
/// and written, and the destination gets the source's size, as GNU
/// `cp --sparse=auto` does. On a terminal, copies that take more than a
/// second show their progress on standard error.
fn copy_file(s: Option<&Session>, from: &Loc, to: &Loc, mode: u32) -> R<()> {
    let mut fds = Vec::new();
    let r = copy_contents(s, from, to, mode, &mut fds);
    // The kernel descriptors opened here.
    if let Some(s) = s {
        for fd in fds {
            let _ = s.sys().close(fd);
        }
    }
    r
}

fn copy_contents(
    s: Option<&Session>,
    from: &Loc,
    to: &Loc,
    mode: u32,
    fds: &mut Vec<i32>,
) -> R<()> {
    let src = match from {
        Loc::Host(p) => End::Host(std::fs::File::open(p).map_err(ioerr)?),
        Loc::Image(path, _) => {
            let k = s.ok_or("no image")?.sys();
            let fd = k.open(path, o::RDONLY, 0).map_err(kerr)?;
            fds.push(fd);
            End::Kernel(k, fd)
        }
    };
    let dst = match to {
        Loc::Host(p) => {
            use std::os::unix::fs::OpenOptionsExt;
            End::Host(
                std::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(mode & 0o7777)
                    .open(p)
                    .map_err(ioerr)?,
            )
        }
        Loc::Image(path, _) => {
            let k = s.ok_or("no image")?.sys();
            let fd = k
                .open(path, o::WRONLY | o::CREAT | o::TRUNC, mode & 0o7777)
                .map_err(kerr)?;
            fds.push(fd);
            End::Kernel(k, fd)
        }
    };
    let size = src.size()?;
    let mut progress = Progress::new(&from.show(), size);
    let mut buf = vec![0u8; 1 << 20];
    let mut off = 0;
    while off < size {
        let Some(data) = src.seek(off, false)? else {
            break;
        };
        let hole = src.seek(data, true)?.unwrap_or(size).min(size);
        let mut at = data;
        while at < hole {
            let want = ((hole - at) as usize).min(buf.len());
            let n = src.read_at(&mut buf[..want], at)?;
            if n == 0 {
                // The source shrank under us: copy what there was.
                break;
            }
            dst.write_all_at(&buf[..n], at)?;
            at += n as u64;
            progress.at(at);
        }
        off = hole.max(at).max(off + 1);
    }
    dst.set_len(size)?;
    progress.done();
    Ok(())
}

/// Progress of one copy on a terminal: shown once it has taken a second.
struct Progress {
    name: String,
    total: u64,
    start: std::time::Instant,
    last: std::time::Instant,
    shown: bool,
    tty: bool,
}

impl Progress {
    fn new(name: &str, total: u64) -> Progress {
        use std::io::IsTerminal;
        let now = std::time::Instant::now();
        Progress {
            name: name.to_string(),
            total,
            start: now,
            last: now,
            shown: false,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn at(&mut self, done: u64) {
        let now = std::time::Instant::now();
        if !self.tty
            || now.duration_since(self.start).as_secs_f64() < 1.0
            || (self.shown && now.duration_since(self.last).as_millis() < 200)
        {
            return;
        }
        self.last = now;
        self.shown = true;
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let pct = (done * 100).checked_div(self.total).unwrap_or(100);
        eprint!(
            "\r{}: {:.1} of {:.1} MiB ({pct}%)",
            self.name,
            mib(done),
            mib(self.total)
        );
    }

    fn done(&self) {
        if self.shown {
            eprintln!();
        }
    }
}

fn copy(c: &mut Ctx, s: Option<&Session>, from: &Loc, to: &Loc, recursive: bool, depth: usize) {
    let m = match meta(s, from, !recursive) {
        Ok(m) => m,
        Err(e) => return c.fail(format_args!("cannot stat '{}': {e}", from.show())),
    };
    let r = match m.mode & 0o170000 {
        0o040000 => {
            if !recursive {
                return c.fail(format_args!(
                    "-r not specified; omitting directory '{}'",
                    from.show()
                ));
            }
            if depth > 256 {
                return c.fail(format_args!("'{}': tree too deep", from.show()));
            }
            if let Err(e) = mkdir(s, to, m.mode | 0o700) {
                return c.fail(format_args!("cannot create directory '{}': {e}", to.show()));
            }
            match list(s, from) {
                Ok(names) => {
                    for n in names {
                        copy(c, s, &from.join(&n), &to.join(&n), recursive, depth + 1);
                    }
                    // Restore the mode once the contents are in.
                    match to {
                        Loc::Host(p) => std::fs::set_permissions(
                            p,
                            std::fs::Permissions::from_mode(m.mode & 0o7777),
                        )
                        .map_err(ioerr),
                        Loc::Image(k, _) => match s {
                            Some(s) => s.sys().chmod(k, m.mode & 0o7777).map_err(kerr),
                            None => Ok(()),
                        },
                    }
                }
                Err(e) => Err(e),
            }
        }
        0o120000 => readlink(s, from).and_then(|t| symlink(s, &t, to)),
        0o100000 => copy_file(s, from, to, m.mode),
        _ => mknod(s, to, m.mode, m.rdev),
    };
    if let Err(e) = r {
        c.fail(format_args!(
            "cannot copy '{}' to '{}': {e}",
            from.show(),
            to.show()
        ));
    }
}

/// `IMAGE:PATH`, or with a server `:/PATH`; anything else is a host path.
fn kernel_path(arg: &str) -> Option<ImagePath> {
    split(arg).or_else(|| split_server(arg, false))
}

pub fn run(paths: Vec<String>, recursive: bool) -> i32 {
    let Some((dst, srcs)) = paths.split_last() else {
        return 1;
    };
    let parsed: Vec<(String, Option<ImagePath>)> =
        paths.iter().map(|a| (a.clone(), kernel_path(a))).collect();
    let images: std::collections::BTreeSet<&Path> = parsed
        .iter()
        .filter_map(|(_, ip)| ip.as_ref().map(|i| i.image.as_path()))
        .collect();
    let writes_image = kernel_path(dst).is_some();
    let mut c = Ctx::new("cp", writes_image);
    if images.len() > 1 {
        c.fail("copying between two images (or an image and the server) is not supported");
        return c.finish();
    }
    let image = images.into_iter().next().map(Path::to_path_buf);
    if let Some(img) = &image {
        if c.session(img).is_none() {
            return c.finish();
        }
    }
    // Work with the session borrowed out of the context.
    let loc = |c: &mut Ctx, a: &str| -> Loc {
        match kernel_path(a) {
            Some(ip) => {
                let k = c
                    .session(&ip.image)
                    .map(|s| s.k(&ip.path))
                    .unwrap_or_default();
                Loc::Image(k, a.to_string())
            }
            None => Loc::Host(PathBuf::from(a)),
        }
    };
    let to = loc(&mut c, dst);
    let src_locs: Vec<Loc> = srcs.iter().map(|a| loc(&mut c, a)).collect();
    let session = image.as_ref().and_then(|img| c.take_session(img));
    let s = session.as_ref();
    let dst_is_dir = is_dir(s, &to);
    if srcs.len() > 1 && !dst_is_dir {
        c.fail(format_args!("target '{dst}' is not a directory"));
    } else {
        for (a, from) in srcs.iter().zip(&src_locs) {
            let target = if dst_is_dir {
                let name = a
                    .trim_end_matches('/')
                    .rsplit(['/', ':'])
                    .next()
                    .unwrap_or(a);
                to.join(name)
            } else {
                to.clone()
            };
            copy(&mut c, s, from, &target, recursive, 0);
        }
    }
    if let Some(s) = session {
        if let Err(e) = s.close() {
            c.fail(format_args!("{e:#}"));
        }
    }
    c.finish()
}
