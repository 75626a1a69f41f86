//! Linux and us agree: Linux's driver reads what we write (loop mount,
//! whole-tree comparison including content hashes), we read what Linux
//! writes (through a loop mount, and with `mke2fs -d`), and images made
//! by mke2fs with each block size and with revision 0 survive a
//! read/write round trip judged by e2fsck.

mod ext2_util;

use std::path::Path;

use ext2_util::*;
use rump::sys;

/// A tree with every kind of file, written through our kernel.
fn populate_rump(p: &rump::Process, root: &str) {
    rump::fs::create_dir_all(p, format!("{root}/d1/d2/d3")).unwrap();
    for i in 0..50 {
        rump::fs::write(
            p,
            format!("{root}/d1/f{i}"),
            format!("file {i}\n").repeat(i + 1),
        )
        .unwrap();
    }
    rump::fs::write(p, format!("{root}/d1/d2/d3/deep"), b"deep").unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    rump::fs::write(p, format!("{root}/big"), &big).unwrap();
    rump::fs::symlink(p, "d1/f1", format!("{root}/fast")).unwrap();
    rump::fs::symlink(p, "y".repeat(200), format!("{root}/slow")).unwrap();
    rump::fs::hard_link(p, format!("{root}/d1/f2"), format!("{root}/hard")).unwrap();
    sys::mknod(p, format!("{root}/fifo").as_bytes(), 0o010640, 0).unwrap();
    sys::mknod(p, format!("{root}/blk").as_bytes(), 0o060600, (8 << 8) | 1).unwrap();
    sys::chmod(p, format!("{root}/d1/f3").as_bytes(), 0o4751).unwrap();
    sys::chown(p, format!("{root}/d1/f4").as_bytes(), 1234, 5678).unwrap();
    // A sparse file with a hole in the middle.
    let fd = sys::open(
        p,
        format!("{root}/sparse").as_bytes(),
        sys::consts::o::WRONLY | sys::consts::o::CREAT,
        0o644,
    )
    .unwrap();
    sys::pwrite(p, fd, b"end", 10 << 20).unwrap();
    sys::close(p, fd).unwrap();
    rump::fs::rename(p, format!("{root}/d1/f5"), format!("{root}/d1/d2/moved")).unwrap();
    rump::fs::remove_file(p, format!("{root}/d1/f6")).unwrap();
}

#[test]
fn ext2_linux_reads_what_we_write() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    require!(
        can_loop_mount(),
        "not root or no loop device: Linux cross-check not run"
    );
    let dir = tempfile::tempdir().unwrap();
    for bs in [1024u32, 4096] {
        let img = dir.path().join(format!("ours{bs}.img"));
        newfs(&img, 64 << 20, bs);
        let (k, p) = mount_rw(&img);
        populate_rump(&p, "/mnt");
        let ours = walk_rump(&p, "/mnt");
        unmount(k, p);
        assert_clean(&img);
        let m = LoopMount::new(&img, &dir.path().join(format!("m{bs}")), true);
        let theirs = walk_host(&m.dir);
        drop(m);
        assert!(ours.len() >= 60, "walked only {} files", ours.len());
        assert_same_tree(&ours, &theirs);
        if std::env::var_os("EXT2_KEEP").is_some() {
            std::fs::copy(&img, format!("/tmp/ext2_keep_{bs}.img")).unwrap();
        }
    }
}

#[test]
fn ext2_we_read_what_linux_writes() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    require!(
        can_loop_mount(),
        "not root or no loop device: Linux cross-check not run"
    );
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("linux.img");
    mke2fs(&img, 64 << 20, &["-b", "1024"]);
    let m = LoopMount::new(&img, &dir.path().join("m"), false);
    populate_host(&m.dir);
    let theirs = walk_host(&m.dir);
    drop(m);
    let (k, p) = boot();
    rump::ext2::mount_image(&p, &img, "/dev/disk0", "/mnt", true).unwrap();
    let ours = walk_rump(&p, "/mnt");
    drop(p);
    k.halt();
    assert!(ours.len() >= 200, "walked only {} files", ours.len());
    assert_same_tree(&ours, &theirs);
}

fn populate_host(root: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    for i in 0..300 {
        std::fs::write(
            root.join(format!("a/file-with-a-long-name-{i}")),
            vec![i as u8; i * 37],
        )
        .unwrap();
    }
    std::fs::write(root.join("a/b/c/x"), b"x").unwrap();
    let big: Vec<u8> = (0..20_000_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(root.join("big"), &big).unwrap();
    std::os::unix::fs::symlink("a/b/c/x", root.join("fast")).unwrap();
    std::os::unix::fs::symlink("z".repeat(300), root.join("slow")).unwrap();
    std::fs::hard_link(root.join("a/b/c/x"), root.join("hard")).unwrap();
    std::fs::set_permissions(
        root.join("a/file-with-a-long-name-3"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    for i in 0..100 {
        std::fs::remove_file(root.join(format!("a/file-with-a-long-name-{}", i * 3))).unwrap();
    }
}

#[test]
fn ext2_mke2fs_d_tree_reads_identically() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir_all(src.join("x/y")).unwrap();
    for i in 0..40 {
        std::fs::write(
            src.join(format!("x/y/n{i}")),
            format!("{i}").repeat(i * 100),
        )
        .unwrap();
    }
    std::os::unix::fs::symlink("x/y/n3", src.join("link")).unwrap();
    std::fs::write(src.join("empty"), b"").unwrap();
    let img = dir.path().join("d.img");
    mke2fs(&img, 16 << 20, &["-b", "2048", "-d", src.to_str().unwrap()]);
    let theirs = walk_host(&src);
    let (k, p) = boot();
    rump::ext2::mount_image(&p, &img, "/dev/disk0", "/mnt", true).unwrap();
    let mut ours = walk_rump(&p, "/mnt");
    drop(p);
    k.halt();
    // mke2fs -d copies names, types, modes, sizes, contents and mtimes;
    // the root of the copy is the image root, whose mode is not compared.
    let mut theirs = theirs;
    for v in ours.values_mut().chain(theirs.values_mut()) {
        v.uid = 0;
        v.gid = 0;
    }
    assert_same_tree(&ours, &theirs);
}

#[test]
fn ext2_mke2fs_images_round_trip() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        ("b1k", &["-b", "1024"]),
        ("b2k", &["-b", "2048"]),
        ("b4k", &["-b", "4096"]),
        ("rev0", &["-b", "1024", "-r", "0"]),
        ("i128", &["-b", "4096", "-I", "128"]),
        (
            "nofeat",
            &[
                "-b",
                "1024",
                "-O",
                "^dir_index,^resize_inode,^ext_attr,^filetype,^sparse_super",
            ],
        ),
    ];
    for (name, args) in cases {
        let img = dir.path().join(format!("{name}.img"));
        mke2fs(&img, 48 << 20, args);
        let (k, p) = mount_rw(&img);
        populate_rump(&p, "/mnt");
        let before = walk_rump(&p, "/mnt");
        unmount(k, p);
        let (code, out) = fsck(&img);
        assert_eq!(code, 0, "{name}: e2fsck -fn:\n{out}");
        let (k, p) = mount_rw(&img);
        let after = walk_rump(&p, "/mnt");
        assert_same_tree(&after, &before);
        rump::fs::remove_dir_all(&p, "/mnt/d1").unwrap();
        unmount(k, p);
        let (code, out) = fsck(&img);
        assert_eq!(code, 0, "{name} after delete: e2fsck -fn:\n{out}");
    }
}

#[test]
fn ext2_linux_reads_our_sparse_5gib_file() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    require!(
        can_loop_mount(),
        "not root or no loop device: Linux cross-check not run"
    );
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    for bs in [1024u32, 4096] {
        let img = dir.path().join(format!("sparse{bs}.img"));
        newfs(&img, 32 << 20, bs);
        let offsets: [u64; 5] = [0, 70_000, 300 << 20, (4 << 30) + 12345, 5 << 30];
        let (k, p) = mount_rw(&img);
        let fd = sys::open(
            &p,
            b"/mnt/sparse",
            sys::consts::o::WRONLY | sys::consts::o::CREAT,
            0o644,
        )
        .unwrap();
        for (i, &off) in offsets.iter().enumerate() {
            let data = format!("piece {i} at {off}");
            sys::pwrite(&p, fd, data.as_bytes(), off as i64).unwrap();
        }
        sys::close(&p, fd).unwrap();
        unmount(k, p);
        assert_clean(&img);
        let m = LoopMount::new(&img, &dir.path().join(format!("m{bs}")), true);
        let f = std::fs::File::open(m.dir.join("sparse")).unwrap();
        let last = format!("piece 4 at {}", 5u64 << 30);
        assert_eq!(f.metadata().unwrap().len(), (5 << 30) + last.len() as u64);
        for (i, &off) in offsets.iter().enumerate() {
            let want = format!("piece {i} at {off}");
            let mut got = vec![0u8; want.len()];
            f.read_exact_at(&mut got, off).unwrap();
            assert_eq!(got, want.as_bytes(), "block size {bs}, piece {i}");
        }
        let mut hole = [1u8; 64];
        f.read_exact_at(&mut hole, 2 << 30).unwrap();
        assert_eq!(hole, [0u8; 64]);
        drop(f);
        drop(m);
        // And the other way: Linux writes far out, we read it back.
        let m = LoopMount::new(&img, &dir.path().join(format!("w{bs}")), false);
        let f = std::fs::File::create(m.dir.join("linux-sparse")).unwrap();
        f.write_all_at(b"linux far", 6 << 30).unwrap();
        f.write_all_at(b"linux near", 1000).unwrap();
        drop(f);
        drop(m);
        assert_clean(&img);
        let (k, p) = boot();
        rump::ext2::mount_image(&p, &img, "/dev/disk0", "/mnt", true).unwrap();
        let fd = sys::open(&p, b"/mnt/linux-sparse", sys::consts::o::RDONLY, 0).unwrap();
        assert_eq!(sys::fstat(&p, fd).unwrap().size, (6 << 30) + 9);
        let mut buf = [0u8; 10];
        assert_eq!(sys::pread(&p, fd, &mut buf[..9], 6 << 30), Ok(9));
        assert_eq!(&buf[..9], b"linux far");
        assert_eq!(sys::pread(&p, fd, &mut buf, 1000), Ok(10));
        assert_eq!(&buf, b"linux near");
        assert_eq!(sys::pread(&p, fd, &mut buf, 3 << 30), Ok(10));
        assert_eq!(buf, [0u8; 10]);
        sys::close(&p, fd).unwrap();
        drop(p);
        k.halt();
    }
}
