//! Write workloads on ext2, each judged by `e2fsck -fn` afterwards, and
//! the refusal rules for features we do not support.

mod ext2_util;

use ext2_util::*;
use rump::sys;
use rump::sys::consts::o;
use rump::{Errno, Timespec};

fn fresh(dir: &tempfile::TempDir, name: &str, size: u64, args: &[&str]) -> std::path::PathBuf {
    let img = dir.path().join(name);
    mke2fs(&img, size, args);
    img
}

#[test]
fn ext2_many_small_files_and_deep_trees() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = fresh(&dir, "small.img", 64 << 20, &["-b", "1024", "-N", "8192"]);
    let (k, p) = mount_rw(&img);
    rump::fs::create_dir(&p, "/mnt/many").unwrap();
    for i in 0..3000 {
        rump::fs::write(&p, format!("/mnt/many/file-{i:05}"), format!("{i}")).unwrap();
    }
    let mut deep = String::from("/mnt/deep");
    for i in 0..60 {
        deep.push_str(&format!("/level{i}"));
    }
    rump::fs::create_dir_all(&p, &deep).unwrap();
    rump::fs::write(&p, format!("{deep}/leaf"), b"leaf").unwrap();
    for i in (0..3000).step_by(3) {
        rump::fs::remove_file(&p, format!("/mnt/many/file-{i:05}")).unwrap();
    }
    unmount(k, p);
    assert_clean(&img);
    let (k, p) = mount_rw(&img);
    assert_eq!(rump::fs::read_dir(&p, "/mnt/many").unwrap().count(), 2000);
    assert_eq!(rump::fs::read(&p, format!("{deep}/leaf")).unwrap(), b"leaf");
    assert_eq!(rump::fs::read(&p, "/mnt/many/file-02999").unwrap(), b"2999");
    rump::fs::remove_dir_all(&p, "/mnt/deep").unwrap();
    rump::fs::remove_dir_all(&p, "/mnt/many").unwrap();
    unmount(k, p);
    assert_clean(&img);
}

#[test]
fn ext2_sparse_5gib_file() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    for bs in ["1024", "4096"] {
        let img = fresh(&dir, &format!("sparse{bs}.img"), 32 << 20, &["-b", bs]);
        let (k, p) = mount_rw(&img);
        let fd = sys::open(&p, b"/mnt/sparse", o::RDWR | o::CREAT, 0o644).unwrap();
        let off = 5i64 << 30;
        assert_eq!(sys::pwrite(&p, fd, b"tail", off), Ok(4));
        assert_eq!(sys::pwrite(&p, fd, b"head", 0), Ok(4));
        let st = sys::fstat(&p, fd).unwrap();
        assert_eq!(st.size, (5 << 30) + 4);
        assert!(st.blocks < 200, "sparse file uses {} sectors", st.blocks);
        let mut buf = [1u8; 8];
        assert_eq!(sys::pread(&p, fd, &mut buf, 1 << 30), Ok(8));
        assert_eq!(buf, [0u8; 8]);
        sys::close(&p, fd).unwrap();
        unmount(k, p);
        assert_clean(&img);
        let (k, p) = mount_rw(&img);
        let fd = sys::open(&p, b"/mnt/sparse", o::RDWR, 0).unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(sys::pread(&p, fd, &mut buf, 5 << 30), Ok(4));
        assert_eq!(&buf, b"tail");
        // Shrink below 4 GiB, then to zero.
        sys::ftruncate(&p, fd, 3 << 30).unwrap();
        sys::close(&p, fd).unwrap();
        unmount(k, p);
        assert_clean(&img);
        let (k, p) = mount_rw(&img);
        sys::truncate(&p, b"/mnt/sparse", 0).unwrap();
        unmount(k, p);
        assert_clean(&img);
    }
}

#[test]
fn ext2_indirect_boundaries() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    // With 1 KiB blocks: 12 direct, 256 single, 65536 double indirect.
    let img = fresh(&dir, "ind.img", 96 << 20, &["-b", "1024"]);
    let (k, p) = mount_rw(&img);
    let sizes: [u64; 6] = [
        12 * 1024,
        12 * 1024 + 1,
        268 * 1024,
        268 * 1024 + 1,
        268 * 1024 + 4096,
        20 << 20,
    ];
    for (i, &n) in sizes.iter().enumerate() {
        let data: Vec<u8> = (0..n).map(|x| (x % 253) as u8 ^ i as u8).collect();
        rump::fs::write(&p, format!("/mnt/f{i}"), &data).unwrap();
    }
    // Punch through the boundaries by truncation and regrowth.
    sys::truncate(&p, b"/mnt/f5", 268 * 1024 + 10).unwrap();
    sys::truncate(&p, b"/mnt/f4", 12 * 1024).unwrap();
    sys::truncate(&p, b"/mnt/f3", 100).unwrap();
    sys::truncate(&p, b"/mnt/f3", 300 * 1024).unwrap();
    unmount(k, p);
    assert_clean(&img);
    let (k, p) = mount_rw(&img);
    for (i, &n) in sizes.iter().enumerate().take(3) {
        let data: Vec<u8> = (0..n).map(|x| (x % 253) as u8 ^ i as u8).collect();
        assert_eq!(rump::fs::read(&p, format!("/mnt/f{i}")).unwrap(), data);
    }
    let f3 = rump::fs::read(&p, "/mnt/f3").unwrap();
    assert_eq!(f3.len(), 300 * 1024);
    assert!(
        f3[100..].iter().all(|&b| b == 0),
        "regrown file must read zeros"
    );
    let f5 = rump::fs::read(&p, "/mnt/f5").unwrap();
    let want: Vec<u8> = (0..268 * 1024 + 10u64)
        .map(|x| (x % 253) as u8 ^ 5)
        .collect();
    assert_eq!(f5, want);
    unmount(k, p);
    assert_clean(&img);
}

#[test]
fn ext2_fill_to_enospc_and_delete() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    for bs in ["1024", "4096"] {
        let img = fresh(&dir, &format!("full{bs}.img"), 8 << 20, &["-b", bs]);
        let (k, p) = mount_rw(&img);
        let before = sys::statvfs(&p, b"/mnt").unwrap();
        let chunk = vec![0xA5u8; 100_000];
        let mut files = 0;
        let mut files_tiny = Vec::new();
        'fill: for i in 0.. {
            let path = format!("/mnt/fill{i}");
            let fd = match sys::open(&p, path.as_bytes(), o::WRONLY | o::CREAT, 0o644) {
                Ok(fd) => fd,
                Err(Errno::ENOSPC) => break,
                Err(e) => panic!("open: {e:?}"),
            };
            files += 1;
            loop {
                match sys::write(&p, fd, &chunk) {
                    Ok(n) if n == chunk.len() => {}
                    Ok(_) | Err(Errno::ENOSPC) => {
                        sys::close(&p, fd).unwrap();
                        break 'fill;
                    }
                    Err(e) => panic!("write: {e:?}"),
                }
                if sys::fstat(&p, fd).unwrap().size >= 1 << 20 {
                    break;
                }
            }
            sys::close(&p, fd).unwrap();
        }
        assert!(files > 3);
        // The last few blocks may be unusable for a large file (it needs an
        // indirect block too); small files take them.
        for i in 0.. {
            let path = format!("/mnt/tiny{i}");
            match sys::open(&p, path.as_bytes(), o::WRONLY | o::CREAT, 0o644) {
                Ok(fd) => {
                    let r = sys::write(&p, fd, b"t");
                    sys::close(&p, fd).unwrap();
                    if r.is_err() {
                        rump::fs::remove_file(&p, &path).unwrap();
                        break;
                    }
                }
                Err(Errno::ENOSPC) => break,
                Err(e) => panic!("open: {e:?}"),
            }
            files_tiny.push(path);
        }
        assert_eq!(sys::statvfs(&p, b"/mnt").unwrap().bfree, 0);
        assert_eq!(sys::mkdir(&p, b"/mnt/nospace", 0o755), Err(Errno::ENOSPC));
        unmount(k, p);
        assert_clean(&img);
        let (k, p) = mount_rw(&img);
        for i in 0..files {
            rump::fs::remove_file(&p, format!("/mnt/fill{i}")).unwrap();
        }
        for f in &files_tiny {
            rump::fs::remove_file(&p, f).unwrap();
        }
        assert_eq!(sys::statvfs(&p, b"/mnt").unwrap().bfree, before.bfree);
        unmount(k, p);
        assert_clean(&img);
    }
}

#[test]
fn ext2_inode_exhaustion() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = fresh(&dir, "inodes.img", 4 << 20, &["-b", "1024", "-N", "64"]);
    let (k, p) = mount_rw(&img);
    let mut n = 0;
    loop {
        match sys::open(
            &p,
            format!("/mnt/i{n}").as_bytes(),
            o::WRONLY | o::CREAT,
            0o644,
        ) {
            Ok(fd) => sys::close(&p, fd).unwrap(),
            Err(Errno::ENOSPC) => break,
            Err(e) => panic!("{e:?}"),
        }
        n += 1;
    }
    assert_eq!(sys::statvfs(&p, b"/mnt").unwrap().ffree, 0);
    unmount(k, p);
    assert_clean(&img);
}

#[test]
fn ext2_renames_links_symlinks_attrs() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = fresh(&dir, "ren.img", 16 << 20, &["-b", "2048"]);
    let (k, p) = mount_rw(&img);
    rump::fs::create_dir_all(&p, "/mnt/a/sub/inner").unwrap();
    rump::fs::create_dir_all(&p, "/mnt/b").unwrap();
    rump::fs::write(&p, "/mnt/a/f", b"f").unwrap();
    rump::fs::write(&p, "/mnt/b/victim", b"v").unwrap();
    rump::fs::create_dir(&p, "/mnt/b/emptydir").unwrap();
    // File across directories, over an existing file.
    rump::fs::rename(&p, "/mnt/a/f", "/mnt/b/victim").unwrap();
    assert_eq!(rump::fs::read(&p, "/mnt/b/victim").unwrap(), b"f");
    // Directory across directories, over an empty directory.
    rump::fs::rename(&p, "/mnt/a/sub", "/mnt/b/emptydir").unwrap();
    assert_eq!(sys::stat(&p, b"/mnt/a").unwrap().nlink, 2);
    assert_eq!(sys::stat(&p, b"/mnt/b").unwrap().nlink, 3);
    assert!(rump::fs::metadata(&p, "/mnt/b/emptydir/inner")
        .unwrap()
        .is_dir());
    assert_eq!(
        rump::fs::rename(&p, "/mnt/b", "/mnt/b/emptydir/inner/x")
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::EINVAL.raw())
    );
    rump::fs::rename(&p, "/mnt/b/emptydir", "/mnt/moved").unwrap();
    assert!(rump::fs::metadata(&p, "/mnt/moved/inner").unwrap().is_dir());
    // Hard links: many names, remove some.
    rump::fs::write(&p, "/mnt/linked", b"L").unwrap();
    for i in 0..20 {
        rump::fs::hard_link(&p, "/mnt/linked", format!("/mnt/moved/l{i}")).unwrap();
    }
    for i in 0..10 {
        rump::fs::remove_file(&p, format!("/mnt/moved/l{i}")).unwrap();
    }
    assert_eq!(sys::stat(&p, b"/mnt/linked").unwrap().nlink, 11);
    // Symlinks of both kinds, replaced by rename.
    rump::fs::symlink(&p, "short", "/mnt/s1").unwrap();
    rump::fs::symlink(&p, "L".repeat(1000), "/mnt/s2").unwrap();
    rump::fs::rename(&p, "/mnt/s2", "/mnt/s1").unwrap();
    assert_eq!(
        rump::fs::read_link(&p, "/mnt/s1")
            .unwrap()
            .as_os_str()
            .len(),
        1000
    );
    // chmod, chown, utimes.
    sys::chown(&p, b"/mnt/linked", 100_000, 200_000).unwrap();
    sys::chmod(&p, b"/mnt/linked", 0o2711).unwrap();
    let t = Timespec {
        sec: 1_000_000_000,
        nsec: 5,
    };
    sys::utimensat(
        &p,
        sys::consts::at::FDCWD,
        b"/mnt/linked",
        Some(
            [sys::TimeArg {
                sec: t.sec,
                nsec: t.nsec as i64,
            }; 2],
        ),
        0,
    )
    .unwrap();
    unmount(k, p);
    assert_clean(&img);
    let (k, p) = mount_rw(&img);
    let st = sys::stat(&p, b"/mnt/linked").unwrap();
    assert_eq!(st.mode & 0o7777, 0o2711);
    assert_eq!((st.uid, st.gid), (100_000, 200_000));
    assert_eq!(st.mtime, t);
    assert_eq!(st.atime, t);
    assert_eq!(st.nlink, 11);
    rump::fs::remove_dir_all(&p, "/mnt/moved").unwrap();
    rump::fs::remove_file(&p, "/mnt/linked").unwrap();
    unmount(k, p);
    assert_clean(&img);
}

#[test]
fn ext2_dir_index_directory_is_read_and_unindexed_on_write() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("big")).unwrap();
    for i in 0..2000 {
        std::fs::write(src.join(format!("big/entry-{i:04}")), b"").unwrap();
    }
    let img = dir.path().join("htree.img");
    mke2fs(
        &img,
        32 << 20,
        &["-b", "1024", "-O", "dir_index", "-d", src.to_str().unwrap()],
    );
    // Make sure the directory really is indexed.
    let out = std::process::Command::new("e2fsck")
        .args(["-fyD"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.code().unwrap_or(8) <= 1);
    let (k, p) = mount_rw(&img);
    assert_eq!(rump::fs::read_dir(&p, "/mnt/big").unwrap().count(), 2000);
    assert!(rump::fs::metadata(&p, "/mnt/big/entry-1999").is_ok());
    rump::fs::write(&p, "/mnt/big/new", b"n").unwrap();
    rump::fs::remove_file(&p, "/mnt/big/entry-0005").unwrap();
    unmount(k, p);
    assert_clean(&img);
}

#[test]
fn ext2_read_only_mounts() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = fresh(&dir, "ro.img", 8 << 20, &["-b", "1024"]);
    let before = std::fs::read(&img).unwrap();
    let (k, p) = boot();
    rump::ext2::mount_image(&p, &img, "/dev/disk0", "/mnt", true).unwrap();
    assert_eq!(
        rump::fs::write(&p, "/mnt/x", b"x")
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::EROFS.raw())
    );
    assert!(rump::fs::read_dir(&p, "/mnt").unwrap().count() == 1);
    unmount(k, p);
    assert_eq!(
        std::fs::read(&img).unwrap(),
        before,
        "a read-only mount wrote to the image"
    );
    // A read-only device cannot be mounted read-write.
    let (k, p) = boot();
    rump::ext2::register_image(&p, &img, "/dev/disk0", true).unwrap();
    assert_eq!(
        rump::ext2::mount(&p, "/dev/disk0", "/mnt", false)
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::EROFS.raw())
    );
    drop(p);
    k.halt();
}

#[test]
fn ext2_unsupported_features_are_refused() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    // ext4's extents, 64bit and flex_bg are read, not written: the file
    // system mounts read-only.
    for (name, args) in [
        ("extents", &["-O", "extents"][..]),
        ("bit64", &["-O", "64bit,extents"][..]),
        ("flexbg", &["-O", "flex_bg"][..]),
    ] {
        let img = fresh(&dir, &format!("{name}.img"), 8 << 20, args);
        let (k, p) = mount_rw(&img);
        assert_eq!(rump::fs::read_dir(&p, "/mnt").unwrap().count(), 1, "{name}");
        assert_eq!(
            rump::fs::write(&p, "/mnt/x", b"x")
                .unwrap_err()
                .raw_os_error(),
            Some(Errno::EROFS.raw()),
            "{name}"
        );
        unmount(k, p);
        assert_clean(&img);
    }
    // Incompatible features it cannot read: refused.
    let img = fresh(&dir, "inline.img", 8 << 20, &["-O", "inline_data"]);
    let (k, p) = boot();
    rump::ext2::register_image(&p, &img, "/dev/disk0", false).unwrap();
    let err = rump::ext2::mount(&p, "/dev/disk0", "/mnt", true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::EINVAL.raw()), "inline_data");
    drop(p);
    k.halt();
    // A journal that needs recovery: refused too.
    let img = fresh(&dir, "recover.img", 8 << 20, &["-b", "1024"]);
    let mut raw = std::fs::read(&img).unwrap();
    raw[1024 + 96] |= 0x4; // INCOMPAT_RECOVER
    std::fs::write(&img, &raw).unwrap();
    let (k, p) = boot();
    rump::ext2::register_image(&p, &img, "/dev/disk0", false).unwrap();
    let err = rump::ext2::mount(&p, "/dev/disk0", "/mnt", true).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(Errno::EINVAL.raw()),
        "needs_recovery"
    );
    drop(p);
    k.halt();
    // Unknown read-only-compatible features: mounted read-only.
    let img = fresh(&dir, "csum.img", 8 << 20, &["-O", "metadata_csum"]);
    let (k, p) = mount_rw(&img);
    assert_eq!(rump::fs::read_dir(&p, "/mnt").unwrap().count(), 1);
    assert_eq!(
        rump::fs::write(&p, "/mnt/x", b"x")
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::EROFS.raw())
    );
    assert_eq!(
        sys::statvfs(&p, b"/mnt").unwrap().flag & 1,
        1,
        "statvfs says read-only"
    );
    unmount(k, p);
    assert_clean(&img);
    // Not ext2 at all.
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0u8; 1 << 20]).unwrap();
    let (k, p) = boot();
    rump::ext2::register_image(&p, &junk, "/dev/disk0", true).unwrap();
    assert_eq!(
        rump::ext2::mount(&p, "/dev/disk0", "/mnt", true)
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::EINVAL.raw())
    );
    drop(p);
    k.halt();
}

#[test]
fn ext2_clean_state_tracks_mounts() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = fresh(&dir, "state.img", 8 << 20, &["-b", "1024"]);
    let state = |img: &std::path::Path| {
        let b = std::fs::read(img).unwrap();
        u16::from_le_bytes([b[1024 + 58], b[1024 + 59]])
    };
    assert_eq!(state(&img) & 1, 1);
    let (k, p) = mount_rw(&img);
    assert_eq!(
        state(&img) & 1,
        0,
        "a mounted file system is marked not clean"
    );
    rump::fs::write(&p, "/mnt/x", b"x").unwrap();
    sys::sync(&p).unwrap();
    assert_eq!(state(&img) & 1, 0);
    unmount(k, p);
    assert_eq!(state(&img) & 1, 1, "unmount marks the file system clean");
}

#[test]
fn ext2_sync_and_fsync_reach_the_image() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = fresh(&dir, "sync.img", 8 << 20, &["-b", "4096"]);
    let (k, p) = mount_rw(&img);
    let fd = sys::open(&p, b"/mnt/data", o::WRONLY | o::CREAT, 0o644).unwrap();
    sys::write(&p, fd, b"durable bytes").unwrap();
    sys::fsync(&p, fd).unwrap();
    // While still mounted, the on-disk image holds the file: e2fsck
    // (which does not mind the not-clean flag with -n) finds it.
    let out = std::process::Command::new("debugfs")
        .args(["-R", "cat /data"])
        .arg(&img)
        .output();
    if let Ok(out) = out {
        assert_eq!(String::from_utf8_lossy(&out.stdout), "durable bytes");
    }
    let (code, text) = fsck(&img);
    assert_eq!(code, 0, "{text}");
    sys::close(&p, fd).unwrap();
    unmount(k, p);
}

#[test]
fn ext2_clean_ext3_journal_is_left_alone() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ext3.img");
    let f = std::fs::File::create(&img).unwrap();
    f.set_len(32 << 20).unwrap();
    drop(f);
    let out = std::process::Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext3", "-b", "1024"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(out.status.success());
    // A clean journal: mountable read-write as ext2, as Linux allows.
    let (k, p) = mount_rw(&img);
    rump::fs::create_dir_all(&p, "/mnt/d").unwrap();
    rump::fs::write(&p, "/mnt/d/f", vec![3u8; 50_000]).unwrap();
    unmount(k, p);
    assert_clean(&img);
}

#[test]
fn ext2_tiny_buffer_cache_writes_back_under_pressure() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = fresh(&dir, "tiny.img", 32 << 20, &["-b", "1024"]);
    let (k, p) = boot();
    rump::ext2::register_image(&p, &img, "/dev/disk0", false).unwrap();
    rump::fs::create_dir(&p, "/mnt").unwrap();
    assert_eq!(
        sys::mount(&p, b"/dev/disk0", b"/mnt", b"ext2", 0, b"cache=lots"),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        sys::mount(&p, b"/dev/disk0", b"/mnt", b"ext2", 0, b"nosuchoption"),
        Err(Errno::EINVAL)
    );
    // 16 KiB of cache: metadata is evicted and written back constantly.
    sys::mount(&p, b"/dev/disk0", b"/mnt", b"ext2", 0, b"cache=16k").unwrap();
    for d in 0..20 {
        rump::fs::create_dir(&p, format!("/mnt/d{d}")).unwrap();
        for f in 0..40 {
            rump::fs::write(
                &p,
                format!("/mnt/d{d}/f{f}"),
                vec![(d * f) as u8; 100 + f * 700],
            )
            .unwrap();
        }
    }
    for d in 0..20 {
        for f in (0..40).step_by(2) {
            rump::fs::remove_file(&p, format!("/mnt/d{d}/f{f}")).unwrap();
        }
    }
    for d in 0..20 {
        for f in (1..40).step_by(2) {
            assert_eq!(
                rump::fs::read(&p, format!("/mnt/d{d}/f{f}")).unwrap(),
                vec![(d * f) as u8; 100 + f * 700]
            );
        }
    }
    unmount(k, p);
    assert_clean(&img);
}
