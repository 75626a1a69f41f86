//! The VFS name cache: lookups answered from it never outlive the name
//! (unlink, rmdir, rename over, rename away, unmount), on tmpfs and ext2,
//! also while other threads look the same names up.

mod ext2_util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ext2_util::*;
use rump::sys;
use rump::sys::consts::o;
use rump::Errno;

fn ino(p: &rump::Process, path: &str) -> Result<u64, Errno> {
    sys::stat(p, path.as_bytes()).map(|s| s.ino)
}

fn exercise(p: &rump::Process, root: &str) {
    let at = |s: &str| format!("{root}/{s}");
    sys::mkdir(p, at("d").as_bytes(), 0o755).unwrap();
    rump::fs::write(p, at("d/a"), b"a").unwrap();
    rump::fs::write(p, at("d/b"), b"bb").unwrap();
    let a = ino(p, &at("d/a")).unwrap();
    let b = ino(p, &at("d/b")).unwrap();
    // Looked up (and cached) again and again.
    for _ in 0..3 {
        assert_eq!(ino(p, &at("d/a")), Ok(a));
    }
    // Rename over: the target name now means the source's file.
    sys::rename(p, at("d/a").as_bytes(), at("d/b").as_bytes()).unwrap();
    assert_eq!(ino(p, &at("d/a")), Err(Errno::ENOENT));
    assert_eq!(ino(p, &at("d/b")), Ok(a));
    assert_ne!(a, b);
    // Unlink, then a new file of the same name.
    sys::unlink(p, at("d/b").as_bytes()).unwrap();
    assert_eq!(ino(p, &at("d/b")), Err(Errno::ENOENT));
    rump::fs::write(p, at("d/b"), b"new").unwrap();
    assert_eq!(rump::fs::read(p, at("d/b")).unwrap(), b"new");
    // Hard links: removing one name keeps the other.
    sys::link(p, at("d/b").as_bytes(), at("d/c").as_bytes()).unwrap();
    let c = ino(p, &at("d/c")).unwrap();
    sys::unlink(p, at("d/b").as_bytes()).unwrap();
    assert_eq!(ino(p, &at("d/c")), Ok(c));
    assert_eq!(ino(p, &at("d/b")), Err(Errno::ENOENT));
    // A directory renamed away: its old path is gone, names inside it
    // resolve through the new one.
    sys::mkdir(p, at("e").as_bytes(), 0o755).unwrap();
    sys::rename(p, at("d").as_bytes(), at("e/d2").as_bytes()).unwrap();
    assert_eq!(ino(p, &at("d/c")), Err(Errno::ENOENT));
    assert_eq!(ino(p, &at("e/d2/c")), Ok(c));
    assert_eq!(ino(p, &at("e/d2/..")), ino(p, &at("e")));
    // rmdir, then a file of that name.
    sys::unlink(p, at("e/d2/c").as_bytes()).unwrap();
    sys::rmdir(p, at("e/d2").as_bytes()).unwrap();
    assert_eq!(ino(p, &at("e/d2")), Err(Errno::ENOENT));
    rump::fs::write(p, at("e/d2"), b"file").unwrap();
    assert!(!rump::fs::metadata(p, at("e/d2")).unwrap().is_dir());
    sys::unlink(p, at("e/d2").as_bytes()).unwrap();
    sys::rmdir(p, at("e").as_bytes()).unwrap();
}

#[test]
fn tmpfs_names_follow_changes() {
    let k = rump::Kernel::boot().unwrap();
    let p = k.process().unwrap();
    exercise(&p, "");
    let before = k.raw().vfs().cached_names();
    rump::fs::write(&p, "/keep", b"k").unwrap();
    ino(&p, "/keep").unwrap();
    assert!(k.raw().vfs().cached_names() > before, "the cache is in use");
}

#[test]
fn ext2_names_follow_changes_and_unmount_purges() {
    require!(have_e2fsprogs(), "e2fsprogs (mke2fs, e2fsck) not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("nc.img");
    mke2fs(&img, 16 << 20, &["-b", "1024"]);
    let (k, p) = mount_rw(&img);
    exercise(&p, "/mnt");
    rump::fs::write(&p, "/mnt/kept", b"x").unwrap();
    ino(&p, "/mnt/kept").unwrap();
    // Cached nodes do not keep the file system busy, and unmount drops
    // them (the remount sees the file, the image is clean).
    sys::umount2(&p, b"/mnt", 0).unwrap();
    assert_eq!(ino(&p, "/mnt/kept"), Err(Errno::ENOENT));
    sys::mount(&p, b"/dev/disk0", b"/mnt", b"ext2", 0, b"").unwrap();
    assert_eq!(rump::fs::read(&p, "/mnt/kept").unwrap(), b"x");
    unmount(k, p);
    assert_clean(&img);
}

/// Threads stat names while others create, rename and unlink them: once
/// an unlink or rename returned, no thread sees the old name again.
#[test]
fn no_stale_name_after_removal_under_concurrency() {
    let k = rump::Kernel::boot().unwrap();
    let p = k.process().unwrap();
    sys::mkdir(&p, b"/race", 0o755).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let p = p.rfork(rump::ForkFds::Share).unwrap();
            let stop = stop.clone();
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    for n in 0..8 {
                        let _ = sys::stat(&p, format!("/race/f{n}").as_bytes());
                    }
                }
            })
        })
        .collect();
    for round in 0..2000 {
        let n = round % 8;
        let path = format!("/race/f{n}");
        let fd = sys::open(&p, path.as_bytes(), o::CREAT | o::WRONLY, 0o644).unwrap();
        sys::close(&p, fd).unwrap();
        if round % 2 == 0 {
            sys::unlink(&p, path.as_bytes()).unwrap();
        } else {
            sys::rename(&p, path.as_bytes(), b"/race/moved").unwrap();
        }
        assert_eq!(
            sys::stat(&p, path.as_bytes()).map(|_| ()),
            Err(Errno::ENOENT),
            "round {round}: {path} seen after it went"
        );
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
}
