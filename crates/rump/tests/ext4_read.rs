//! ext4 images, read side: what `mkfs.ext4` makes by default (extents,
//! 64bit, flex_bg, metadata_csum, huge_file, dir_nlink, extra_isize) and
//! what Linux's own ext4 driver writes (deep extent trees, unwritten
//! extents), read through our driver and compared with the source; the
//! driver mounts them read-only and refuses to write.

mod ext2_util;

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use ext2_util::*;
use rump::sys;
use rump::Errno;

fn mkfs_ext4(img: &Path, size: u64, src: Option<&Path>, args: &[&str]) {
    let f = std::fs::File::create(img).unwrap();
    f.set_len(size).unwrap();
    let mut cmd = Command::new("mkfs.ext4");
    cmd.args(["-q", "-F"]).args(args);
    if let Some(src) = src {
        cmd.arg("-d").arg(src);
    }
    let out = cmd.arg(img).output().expect("run mkfs.ext4");
    assert!(
        out.status.success(),
        "mkfs.ext4: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn source_tree(root: &Path) {
    std::fs::create_dir_all(root.join("a/b/c/d/e")).unwrap();
    std::fs::write(root.join("small"), b"hello ext4").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("a/big"), &big).unwrap();
    std::fs::write(root.join("a/b/c/d/e/deep"), b"deep").unwrap();
    std::os::unix::fs::symlink("small", root.join("fast")).unwrap();
    let long = "x/".repeat(100) + "end";
    std::os::unix::fs::symlink(&long, root.join("slow")).unwrap();
    std::fs::hard_link(root.join("small"), root.join("a/hard")).unwrap();
    // Enough names for a hash-indexed directory.
    std::fs::create_dir(root.join("many")).unwrap();
    for i in 0..3000 {
        std::fs::write(
            root.join(format!("many/file-with-a-long-name-{i:05}")),
            i.to_string(),
        )
        .unwrap();
    }
}

#[test]
fn ext4_made_by_mkfs_reads_like_its_source() {
    require!(have("mkfs.ext4"), "mkfs.ext4 (e2fsprogs) not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    source_tree(&src);
    let img = dir.path().join("e4.img");
    mkfs_ext4(&img, 64 << 20, Some(&src), &[]);
    let before = std::fs::read(&img).unwrap();
    // Asked for read-write: mounted read-only (the kernel log says why).
    let (k, p) = mount_rw(&img);
    assert_same_tree(&walk_rump(&p, "/mnt"), &walk_host(&src));
    assert_eq!(
        rump::fs::write(&p, "/mnt/new", b"x")
            .unwrap_err()
            .raw_os_error(),
        Some(Errno::EROFS.raw())
    );
    assert_eq!(sys::unlink(&p, b"/mnt/small"), Err(Errno::EROFS));
    assert_eq!(sys::statvfs(&p, b"/mnt").unwrap().flag & 1, 1);
    assert_eq!(
        rump::fs::read(&p, "/mnt/many/file-with-a-long-name-02999").unwrap(),
        b"2999"
    );
    unmount(k, p);
    assert!(
        std::fs::read(&img).unwrap() == before,
        "a read-only mount wrote to the image"
    );
}

#[test]
fn ext4_written_by_linux_reads_back() {
    require!(have("mkfs.ext4"), "mkfs.ext4 (e2fsprogs) not installed");
    require!(
        can_loop_mount(),
        "not root or no loop device/ext4 in the host kernel"
    );
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("linux.img");
    mkfs_ext4(&img, 128 << 20, None, &["-b", "4096"]);
    let mnt = dir.path().join("mnt");
    {
        let m = LoopMount::with_type(&img, &mnt, "ext4", false);
        // Every other 4 KiB block written: one extent per block, far more
        // than the inode holds, so the tree grows index levels.
        let f = std::fs::File::create(m.dir.join("holes")).unwrap();
        for i in 0..3000u64 {
            f.write_all_at(&[(i % 250) as u8 + 1; 4096], i * 8192)
                .unwrap();
        }
        f.sync_all().unwrap();
        // Allocated but unwritten space reads as zeros.
        let pre = m.dir.join("prealloc");
        std::fs::write(&pre, b"head").unwrap();
        let ok = Command::new("fallocate")
            .args(["-o", "4096", "-l", "1048576"])
            .arg(&pre)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "fallocate");
        let g = std::fs::OpenOptions::new().write(true).open(&pre).unwrap();
        g.write_all_at(b"tail", (1 << 20) + 4096).unwrap();
        g.sync_all().unwrap();
        std::fs::create_dir(m.dir.join("d")).unwrap();
        std::fs::write(m.dir.join("d/f"), b"in d").unwrap();
    }
    let out = Command::new("debugfs")
        .args(["-R", "stat /holes"])
        .arg(&img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("EXTENTS:") && text.contains("(ETB"),
        "an extent tree with index blocks:\n{}",
        &text[..text.len().min(800)]
    );

    let (k, p) = boot();
    rump::ext2::mount_image(&p, &img, "/dev/disk0", "/mnt", true).unwrap();
    let holes = rump::fs::read(&p, "/mnt/holes").unwrap();
    assert_eq!(holes.len() as u64, 2999 * 8192 + 4096);
    for i in 0..3000usize {
        let blk = &holes[i * 8192..i * 8192 + 4096];
        assert!(blk.iter().all(|&b| b == (i % 250) as u8 + 1), "block {i}");
        if i < 2999 {
            assert!(
                holes[i * 8192 + 4096..(i + 1) * 8192]
                    .iter()
                    .all(|&b| b == 0),
                "hole {i}"
            );
        }
    }
    let pre = rump::fs::read(&p, "/mnt/prealloc").unwrap();
    assert_eq!(&pre[..4], b"head");
    assert!(
        pre[4..(1 << 20) + 4096].iter().all(|&b| b == 0),
        "unwritten reads as zeros"
    );
    assert_eq!(&pre[(1 << 20) + 4096..], b"tail");
    assert_eq!(rump::fs::read(&p, "/mnt/d/f").unwrap(), b"in d");
    sys::umount2(&p, b"/mnt", 0).unwrap();
    drop(p);
    k.halt();
}

/// A corrupted extent tree is an error, not a panic or a wrong read.
#[test]
fn ext4_corrupt_extent_tree_is_an_error() {
    require!(
        have("mkfs.ext4") && have("debugfs"),
        "e2fsprogs not installed"
    );
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), vec![5u8; 100_000]).unwrap();
    let img = dir.path().join("bad.img");
    mkfs_ext4(&img, 16 << 20, Some(&src), &["-b", "4096"]);
    // Find the inode's table slot with debugfs and break the extent magic.
    let out = Command::new("debugfs")
        .args(["-R", "imap /f"])
        .arg(&img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let nums: Vec<u64> = text
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter_map(|w| {
            w.strip_prefix("0x")
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .or_else(|| w.parse().ok())
        })
        .collect();
    // "Inode N is part of block group G\n\tlocated at block B, offset 0xOFF"
    let (block, offset) = (nums[nums.len() - 2], nums[nums.len() - 1]);
    let mut raw = std::fs::read(&img).unwrap();
    let at = (block * 4096 + offset + 40) as usize; // i_block
    assert_eq!(u16::from_le_bytes([raw[at], raw[at + 1]]), 0xF30A, "{text}");
    raw[at] = 0;
    std::fs::write(&img, &raw).unwrap();
    let (k, p) = boot();
    rump::ext2::mount_image(&p, &img, "/dev/disk0", "/mnt", true).unwrap();
    assert_eq!(
        rump::fs::read(&p, "/mnt/f").unwrap_err().raw_os_error(),
        Some(Errno::EUCLEAN.raw())
    );
    sys::umount2(&p, b"/mnt", 0).unwrap();
    drop(p);
    k.halt();
}
