//! ext2 through the facade: our mkfs, basic operations, persistence
//! across remounts, and e2fsck's verdict after each write workload.

mod ext2_util;

use ext2_util::*;
use rump::sys;
use rump::sys::consts::o;

#[test]
fn ext2_newfs_is_clean_and_mountable() {
    require!(have_e2fsprogs(), "e2fsprogs (mke2fs, e2fsck) not installed");
    let dir = tempfile::tempdir().unwrap();
    for bs in [1024, 2048, 4096] {
        let img = dir.path().join(format!("new{bs}.img"));
        let s = newfs(&img, 64 << 20, bs);
        assert_eq!(s.block_size, bs);
        assert_clean(&img);
        let (k, p) = mount_rw(&img);
        let names: Vec<_> = rump::fs::read_dir(&p, "/mnt")
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["lost+found"]);
        let st = sys::statvfs(&p, b"/mnt").unwrap();
        assert_eq!(st.bsize, bs as u64);
        assert_eq!(st.fs_type, 0xEF53);
        assert_eq!(st.bfree, s.free_blocks as u64);
        unmount(k, p);
        assert_clean(&img);
    }
}

#[test]
fn ext2_files_dirs_links_persist() {
    require!(have_e2fsprogs(), "e2fsprogs (mke2fs, e2fsck) not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("a.img");
    mke2fs(&img, 32 << 20, &["-b", "1024"]);
    let (k, p) = mount_rw(&img);
    rump::fs::create_dir_all(&p, "/mnt/a/b/c").unwrap();
    rump::fs::write(&p, "/mnt/a/b/c/file", b"hello ext2").unwrap();
    rump::fs::write(&p, "/mnt/a/big", vec![7u8; 300_000]).unwrap();
    rump::fs::symlink(&p, "b/c/file", "/mnt/a/fast").unwrap();
    let long = "x/".repeat(100);
    rump::fs::symlink(&p, &long, "/mnt/a/slow").unwrap();
    rump::fs::hard_link(&p, "/mnt/a/b/c/file", "/mnt/a/hard").unwrap();
    sys::mknod(&p, b"/mnt/a/fifo", 0o010644, 0).unwrap();
    sys::mknod(&p, b"/mnt/a/chr", 0o020600, (1 << 8) | 3).unwrap();
    assert_eq!(sys::mkdir(&p, b"/mnt/a/b", 0o755), Err(rump::Errno::EEXIST));
    assert_eq!(sys::rmdir(&p, b"/mnt/a/b"), Err(rump::Errno::ENOTEMPTY));
    unmount(k, p);
    assert_clean(&img);

    let (k, p) = mount_rw(&img);
    assert_eq!(rump::fs::read(&p, "/mnt/a/fast").unwrap(), b"hello ext2");
    assert_eq!(rump::fs::read(&p, "/mnt/a/hard").unwrap(), b"hello ext2");
    assert_eq!(
        rump::fs::read_link(&p, "/mnt/a/slow")
            .unwrap()
            .to_str()
            .unwrap(),
        long
    );
    assert_eq!(
        rump::fs::read(&p, "/mnt/a/big").unwrap(),
        vec![7u8; 300_000]
    );
    let st = sys::stat(&p, b"/mnt/a/hard").unwrap();
    assert_eq!(st.nlink, 2);
    let st = sys::lstat(&p, b"/mnt/a/chr").unwrap();
    assert_eq!(st.rdev, (1 << 8) | 3);
    assert_eq!(sys::stat(&p, b"/mnt/a").unwrap().nlink, 3);
    rump::fs::remove_file(&p, "/mnt/a/hard").unwrap();
    rump::fs::remove_dir_all(&p, "/mnt/a").unwrap();
    let fd = sys::open(&p, b"/mnt/gone", o::RDWR | o::CREAT, 0o600).unwrap();
    sys::unlink(&p, b"/mnt/gone").unwrap();
    assert_eq!(sys::write(&p, fd, b"still here"), Ok(10));
    assert_eq!(sys::pread(&p, fd, &mut [0u8; 5], 0), Ok(5));
    sys::close(&p, fd).unwrap();
    unmount(k, p);
    assert_clean(&img);
}

#[test]
fn mount_auto_probes_the_type() {
    require!(have_e2fsprogs(), "e2fsprogs (mke2fs, e2fsck) not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("auto.img");
    mke2fs(&img, 8 << 20, &["-b", "1024"]);
    let zero = dir.path().join("zero.img");
    std::fs::write(&zero, vec![0u8; 1 << 20]).unwrap();
    let k = rump::Kernel::builder().ext2().boot().unwrap();
    let p = k.process().unwrap();
    rump::ext2::register_image(&p, &img, "/dev/disk0", false).unwrap();
    rump::ext2::register_image(&p, &zero, "/dev/disk1", false).unwrap();
    rump::fs::create_dir_all(&p, "/mnt").unwrap();
    rump::fs::create_dir_all(&p, "/other").unwrap();
    // Nothing recognises zeros; a device that does not exist is ENXIO.
    assert_eq!(
        sys::mount(&p, b"/dev/disk1", b"/other", b"auto", 0, b""),
        Err(rump::Errno::ENODEV)
    );
    assert_eq!(
        sys::mount(&p, b"/dev/nosuch", b"/other", b"auto", 0, b""),
        Err(rump::Errno::ENXIO)
    );
    sys::mount(&p, b"/dev/disk0", b"/mnt", b"auto", 0, b"").unwrap();
    let m = sys::mounts(&p).unwrap();
    assert!(m.iter().any(|m| m.fstype == "ext2"), "{m:?}");
    rump::fs::write(&p, "/mnt/f", b"x").unwrap();
    sys::umount2(&p, b"/mnt", 0).unwrap();
    drop(p);
    k.halt();
    assert_clean(&img);
}

/// Attributes read without the mount lock (the nodes' attribute cells)
/// follow every change made through any name or descriptor, and a
/// recycled inode number shows its new file.
#[test]
fn ext2_attributes_follow_changes() {
    require!(have_e2fsprogs(), "e2fsprogs (mke2fs, e2fsck) not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("attr.img");
    mke2fs(&img, 8 << 20, &["-b", "1024"]);
    let (k, p) = mount_rw(&img);
    let fd = sys::open(&p, b"/mnt/f", o::CREAT | o::RDWR, 0o600).unwrap();
    let fd2 = sys::open(&p, b"/mnt/f", o::WRONLY, 0).unwrap();
    let st = sys::fstat(&p, fd).unwrap();
    assert_eq!((st.size, st.nlink, st.mode & 0o7777), (0, 1, 0o600));
    sys::write(&p, fd2, &[1u8; 5000]).unwrap();
    assert_eq!(sys::fstat(&p, fd).unwrap().size, 5000);
    sys::chmod(&p, b"/mnt/f", 0o640).unwrap();
    sys::link(&p, b"/mnt/f", b"/mnt/g").unwrap();
    let st = sys::fstat(&p, fd).unwrap();
    assert_eq!((st.nlink, st.mode & 0o7777), (2, 0o640));
    assert!(st.blocks > 0);
    sys::ftruncate(&p, fd2, 10).unwrap();
    assert_eq!(sys::stat(&p, b"/mnt/g").unwrap().size, 10);
    let dst = sys::stat(&p, b"/mnt").unwrap();
    sys::mkdir(&p, b"/mnt/d", 0o755).unwrap();
    assert_eq!(sys::stat(&p, b"/mnt").unwrap().nlink, dst.nlink + 1);
    // Free an inode while nothing holds it, then reuse its number.
    let ino = st.ino;
    sys::close(&p, fd).unwrap();
    sys::close(&p, fd2).unwrap();
    sys::unlink(&p, b"/mnt/f").unwrap();
    sys::unlink(&p, b"/mnt/g").unwrap();
    let fd = sys::open(&p, b"/mnt/h", o::CREAT | o::RDWR, 0o604).unwrap();
    let st = sys::fstat(&p, fd).unwrap();
    assert_eq!(st.ino, ino, "the freed inode number is reused");
    assert_eq!((st.size, st.nlink, st.mode & 0o7777), (0, 1, 0o604));
    sys::close(&p, fd).unwrap();
    unmount(k, p);
    assert_clean(&img);
}
