//! FAT semantics through the system-call layer: names FAT refuses, no
//! links or special files, chmod as the read-only attribute, chown, the
//! mount options that set owners and modes, open-but-unlinked files, the
//! clean/dirty markers, and `mattrib`'s view of what chmod did.

mod fat_util;

use std::sync::Arc;

use fat_util::*;
use rump::ext2::dev_blk::{MemDevice, Registry};
use rump::fat::{FatType, MkfsOptions};
use rump::sys;
use rump::sys::consts::o;
use rump::Errno;

/// A kernel with a fresh FAT volume of `ty` in memory on `/dev/m`.
fn fresh(ty: FatType, sectors: u64) -> (rump::Kernel, rump::Process, Arc<MemDevice>) {
    let dev = Arc::new(MemDevice::new(sectors));
    rump::fat::fs_fat::mkfs::format(
        &*dev,
        &MkfsOptions {
            fat_type: Some(ty),
            ..Default::default()
        },
    )
    .unwrap();
    let (k, p) = kernel();
    Registry::of(k.raw())
        .unwrap()
        .register("/dev/m", dev.clone())
        .unwrap();
    (k, p, dev)
}

#[test]
fn names_links_and_special_files() {
    let (k, p, _) = fresh(FatType::Fat16, 20_000);
    rump::fat::mount(&p, "/dev/m", "/mnt", false, "").unwrap();
    for bad in [
        "/mnt/a:b",
        "/mnt/q?",
        "/mnt/star*",
        "/mnt/pipe|",
        "/mnt/lt<",
        "/mnt/quote\"",
        "/mnt/back\\slash",
        "/mnt/trailing.",
        "/mnt/trailing ",
    ] {
        assert_eq!(
            sys::open(&p, bad.as_bytes(), o::CREAT | o::WRONLY, 0o644),
            Err(Errno::EINVAL),
            "{bad}"
        );
        assert_eq!(
            sys::mkdir(&p, bad.as_bytes(), 0o755),
            Err(Errno::EINVAL),
            "{bad}"
        );
    }
    let long = format!("/mnt/{}", "x".repeat(256));
    assert_eq!(
        sys::open(&p, long.as_bytes(), o::CREAT | o::WRONLY, 0o644),
        Err(Errno::ENAMETOOLONG)
    );
    rump::fs::write(&p, "/mnt/file", b"x").unwrap();
    assert_eq!(sys::link(&p, b"/mnt/file", b"/mnt/hard"), Err(Errno::EPERM));
    assert_eq!(sys::symlink(&p, b"file", b"/mnt/sym"), Err(Errno::EPERM));
    assert_eq!(sys::mknod(&p, b"/mnt/fifo", 0o010644, 0), Err(Errno::EPERM));
    // Names differing only in case are one name.
    assert_eq!(
        sys::open(&p, b"/mnt/FILE", o::CREAT | o::EXCL | o::WRONLY, 0o644),
        Err(Errno::EEXIST)
    );
    assert_eq!(rump::fs::read(&p, "/mnt/File").unwrap(), b"x");
    // Renaming into the place of another name, across directories.
    rump::fs::create_dir_all(&p, "/mnt/d1/d2").unwrap();
    rump::fs::rename(&p, "/mnt/file", "/mnt/d1/d2/Renamed File").unwrap();
    rump::fs::rename(&p, "/mnt/d1/d2", "/mnt/top").unwrap();
    assert_eq!(rump::fs::read(&p, "/mnt/top/renamed file").unwrap(), b"x");
    assert_eq!(
        rump::fs::metadata(&p, "/mnt/top/..").unwrap().ino(),
        rump::fs::metadata(&p, "/mnt").unwrap().ino()
    );
    assert_eq!(rump::fs::metadata(&p, "/mnt/d1").unwrap().nlink(), 2);
    assert_eq!(rump::fs::metadata(&p, "/mnt").unwrap().nlink(), 4);
    sys::umount2(&p, b"/mnt", 0).unwrap();
    // And after a remount, ".." of the moved directory is the root.
    rump::fat::mount(&p, "/dev/m", "/mnt", true, "").unwrap();
    assert_eq!(
        rump::fs::read(&p, "/mnt/top/../top/renamed file").unwrap(),
        b"x"
    );
    sys::umount2(&p, b"/mnt", 0).unwrap();
    k.halt();
}

#[test]
fn modes_owners_and_chmod() {
    let (k, p, dev) = fresh(FatType::Fat32, 80_000);
    rump::fat::mount(&p, "/dev/m", "/mnt", false, "").unwrap();
    rump::fs::write(&p, "/mnt/f", b"data").unwrap();
    rump::fs::create_dir(&p, "/mnt/d").unwrap();
    let m = |path: &str| rump::fs::metadata(&p, path).unwrap();
    assert_eq!(m("/mnt/f").mode(), 0o100644);
    assert_eq!(m("/mnt/d").mode(), 0o040755);
    assert_eq!((m("/mnt/f").uid(), m("/mnt/f").gid()), (0, 0));
    // chmod: only the write bits, as the read-only attribute.
    sys::chmod(&p, b"/mnt/f", 0o444).unwrap();
    assert_eq!(m("/mnt/f").mode(), 0o100444);
    assert_eq!(sys::chmod(&p, b"/mnt/f", 0o755), Err(Errno::EPERM));
    assert_eq!(sys::chmod(&p, b"/mnt/f", 0o600), Err(Errno::EPERM));
    assert_eq!(sys::chown(&p, b"/mnt/f", 1000, 1000), Err(Errno::EPERM));
    sys::chown(&p, b"/mnt/f", 0, 0).unwrap();
    sys::umount2(&p, b"/mnt", 0).unwrap();
    // The attribute is on the disk: mattrib sees it.
    if have_mtools() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("f.img");
        std::fs::write(&img, dev.to_bytes()).unwrap();
        let attrs = mtools("mattrib", &img, &["::/F"]);
        assert!(attrs.contains('R'), "{attrs}");
    } else {
        eprintln!("skipped the mattrib check: mtools not installed");
    }
    // Owners and masks from mount options.
    rump::fat::mount(
        &p,
        "/dev/m",
        "/mnt",
        false,
        "uid=1000,gid=100,fmask=137,dmask=027",
    )
    .unwrap();
    assert_eq!(m("/mnt/f").mode(), 0o100440);
    assert_eq!(m("/mnt/d").mode(), 0o040750);
    assert_eq!((m("/mnt/f").uid(), m("/mnt/f").gid()), (1000, 100));
    sys::chmod(&p, b"/mnt/f", 0o640).unwrap();
    assert_eq!(m("/mnt/f").mode(), 0o100640);
    sys::umount2(&p, b"/mnt", 0).unwrap();
    rump::fat::mount(&p, "/dev/m", "/mnt", true, "umask=077").unwrap();
    assert_eq!(m("/mnt/f").mode(), 0o100600);
    assert_eq!(m("/mnt/d").mode(), 0o040700);
    sys::umount2(&p, b"/mnt", 0).unwrap();
    assert_eq!(
        sys::mount(&p, b"/dev/m", b"/mnt", b"msdos", 0, b"umask=999"),
        Err(Errno::EINVAL)
    );
    k.halt();
}

#[test]
fn unlinked_open_file_and_clean_markers() {
    for ty in [FatType::Fat16, FatType::Fat32] {
        let (k, p, dev) = fresh(ty, 80_000);
        let clean = |dev: &MemDevice| {
            let img = dev.to_bytes();
            let (fat1, boot_state) = match ty {
                FatType::Fat32 => {
                    let fat = u16::from_le_bytes([img[14], img[15]]) as usize * 512;
                    let v = u32::from_le_bytes(img[fat + 4..fat + 8].try_into().unwrap());
                    (v & 0x0800_0000 != 0, img[65] & 1 == 0)
                }
                _ => {
                    let fat = u16::from_le_bytes([img[14], img[15]]) as usize * 512;
                    let v = u16::from_le_bytes([img[fat + 2], img[fat + 3]]);
                    (v & 0x8000 != 0, img[37] & 1 == 0)
                }
            };
            assert_eq!(fat1, boot_state, "{ty:?}: the two markers agree");
            fat1
        };
        assert!(clean(&dev));
        rump::fat::mount(&p, "/dev/m", "/mnt", false, "").unwrap();
        assert!(!clean(&dev), "{ty:?}: dirty while mounted read-write");
        let free0 = sys::statvfs(&p, b"/mnt").unwrap().bfree;
        rump::fs::write(&p, "/mnt/victim", vec![3u8; 100_000]).unwrap();
        let fd = sys::open(&p, b"/mnt/victim", o::RDONLY, 0).unwrap();
        sys::unlink(&p, b"/mnt/victim").unwrap();
        assert!(!rump::fs::exists(&p, "/mnt/victim"));
        let mut buf = vec![0u8; 100_000];
        assert_eq!(sys::pread(&p, fd, &mut buf, 0).unwrap(), 100_000);
        assert!(buf.iter().all(|&b| b == 3));
        // The clusters are still held, and new files do not get them.
        rump::fs::write(&p, "/mnt/other", vec![4u8; 50_000]).unwrap();
        assert_eq!(sys::pread(&p, fd, &mut buf, 0).unwrap(), 100_000);
        assert!(buf.iter().all(|&b| b == 3));
        sys::close(&p, fd).unwrap();
        rump::fs::remove_file(&p, "/mnt/other").unwrap();
        assert_eq!(sys::statvfs(&p, b"/mnt").unwrap().bfree, free0);
        sys::umount2(&p, b"/mnt", 0).unwrap();
        assert!(clean(&dev), "{ty:?}: clean after unmount");
        // A read-only mount leaves the markers alone.
        rump::fat::mount(&p, "/dev/m", "/mnt", true, "").unwrap();
        assert!(clean(&dev));
        sys::umount2(&p, b"/mnt", 0).unwrap();
        if have_dosfstools() {
            let dir = tempfile::tempdir().unwrap();
            let img = dir.path().join("f.img");
            std::fs::write(&img, dev.to_bytes()).unwrap();
            assert_clean(&img);
        }
        k.halt();
    }
}
