//! Helpers the benchmarks share: where their images go, ext2 mounts in a
//! rump kernel, the host's tmpfs, loop mounts of Linux's ext2 driver and
//! the host page cache.

use std::ffi::CString;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use rump::sys;

/// A temporary directory for images: in `dir` if given, else in
/// `$TMPDIR` or `/var/tmp` (a disk, where the system's temporary
/// directory may be a tmpfs), else the system's temporary directory.
pub fn image_dir(dir: Option<&Path>) -> anyhow::Result<tempfile::TempDir> {
    Ok(match dir {
        Some(d) => tempfile::tempdir_in(d)?,
        None => {
            tempfile::tempdir_in(std::env::var_os("TMPDIR").unwrap_or_else(|| "/var/tmp".into()))
                .or_else(|_| tempfile::tempdir())?
        }
    })
}

/// Bytes available to this user on the file system holding `dir`.
pub fn available_bytes(dir: &Path) -> anyhow::Result<u64> {
    let c = CString::new(dir.as_os_str().as_encoded_bytes())?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `c` is NUL-terminated and `st` has room for one statvfs.
    let r = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if r != 0 {
        bail!(
            "statvfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        );
    }
    // SAFETY: statvfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// Boots a kernel with ext2 and mounts the image `img` on `/mnt`.
pub fn mount_ext2(img: &Path) -> anyhow::Result<(rump::Kernel, rump::Process)> {
    let k = rump::Kernel::builder().ext2().boot()?;
    let p = k.process()?;
    rump::ext2::mount_image(&p, img, "/dev/disk0", "/mnt", false)?;
    Ok((k, p))
}

/// Unmounts `/mnt` (writing everything back) and halts the kernel.
pub fn unmount_ext2(k: rump::Kernel, p: rump::Process) -> anyhow::Result<()> {
    sys::umount2(&p, b"/mnt", 0)?;
    drop(p);
    k.halt();
    Ok(())
}

/// Drops the host page cache (all of it as root; else the pages of
/// `files` with `posix_fadvise`).
pub fn drop_caches(files: &[&Path]) {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    if std::fs::write("/proc/sys/vm/drop_caches", b"3\n").is_ok() {
        return;
    }
    for file in files {
        if let Ok(f) = std::fs::File::open(file) {
            // SAFETY: the descriptor is open for the duration of the call.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
}

/// syncfs(2) on the file system holding `dir`.
pub fn syncfs(dir: &Path) -> anyhow::Result<()> {
    let f = std::fs::File::open(dir)?;
    // SAFETY: the descriptor is open for the duration of the call.
    let r = unsafe { libc::syncfs(f.as_raw_fd()) };
    if r != 0 {
        bail!("syncfs: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `mount -o loop` of an ext2 image can work here: root, a loop
/// device and a kernel driver for ext2.
pub fn can_loop_mount() -> bool {
    is_root()
        && Path::new("/dev/loop-control").exists()
        && std::fs::read_to_string("/proc/filesystems").is_ok_and(|s| {
            s.lines()
                .any(|l| l.ends_with("ext2") || l.ends_with("ext4"))
        })
}

/// `mount -t ext2 -o loop`, undone on drop.
pub struct LoopMount {
    pub dir: PathBuf,
}

impl LoopMount {
    pub fn new(img: &Path, dir: &Path) -> anyhow::Result<LoopMount> {
        std::fs::create_dir_all(dir)?;
        let out = Command::new("mount")
            .args(["-t", "ext2", "-o", "loop"])
            .arg(img)
            .arg(dir)
            .output()
            .context("run mount")?;
        if !out.status.success() {
            bail!(
                "mount {}: {}",
                img.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(LoopMount {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

/// A temporary directory on a host tmpfs: under `/dev/shm` if that is a
/// tmpfs, else on a tmpfs mounted for it (as root), else (with a note on
/// stderr) the system's temporary directory.
pub struct HostTmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl HostTmpfs {
    pub fn new() -> anyhow::Result<HostTmpfs> {
        let shm = Path::new("/dev/shm");
        if is_tmpfs(shm) {
            return Ok(HostTmpfs {
                dir: tempfile::tempdir_in(shm)?,
                mounted: false,
            });
        }
        let dir = tempfile::tempdir()?;
        if is_root()
            && Command::new("mount")
                .args(["-t", "tmpfs", "-o", "mode=0700", "tmpfs"])
                .arg(dir.path())
                .output()
                .is_ok_and(|o| o.status.success())
        {
            return Ok(HostTmpfs { dir, mounted: true });
        }
        eprintln!(
            "note: /dev/shm is not tmpfs and no tmpfs could be mounted; \
             the host baseline uses {}",
            dir.path().display()
        );
        Ok(HostTmpfs {
            dir,
            mounted: false,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for HostTmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(self.dir.path()).status();
        }
    }
}

fn is_tmpfs(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is NUL-terminated and `st` has room for one statfs.
    let r = unsafe { libc::statfs(c.as_ptr(), st.as_mut_ptr()) };
    if r != 0 {
        return false;
    }
    // SAFETY: statfs returned 0, so it initialised `st`.
    let st = unsafe { st.assume_init() };
    st.f_type == 0x0102_1994
}
