//! Differential test: the same seeded sequence of file operations on our
//! ext2 driver and on a host directory must give the same results, errors
//! and final tree; e2fsck then judges the image.

mod ext2_util;

use std::os::unix::fs::FileExt;
use std::path::Path;

use ext2_util::*;
use rump::sys;
use rump::sys::consts::o;
use rump::Errno;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn host_errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(-1))
}

/// One operation on both sides; returns (ours, host) outcomes.
fn step(
    rng: &mut Rng,
    p: &rump::Process,
    host: &Path,
) -> (String, Result<(), Errno>, Result<(), Errno>) {
    let names = ["a", "b", "c", "d/e", "d/f", "d/g/h", "d", "d/g", "x"];
    let pick = |rng: &mut Rng| names[rng.below(names.len() as u64) as usize];
    let r = |s: &str| format!("/mnt/{s}");
    let h = |s: &str| host.join(s);
    match rng.below(10) {
        0..=2 => {
            let n = pick(rng);
            let off = match rng.below(4) {
                0 => 0,
                1 => rng.below(13 * 1024),
                2 => 268 * 1024 - 10 + rng.below(20),
                _ => rng.below(400 * 1024),
            };
            let max = if rng.below(5) == 0 { 70_000 } else { 3000 };
            let len = 1 + rng.below(max) as usize;
            let byte = rng.below(255) as u8 + 1;
            let data = vec![byte; len];
            let ours = sys::open(p, r(n).as_bytes(), o::WRONLY | o::CREAT, 0o644).and_then(|fd| {
                let w = sys::pwrite(p, fd, &data, off as i64).map(|_| ());
                sys::close(p, fd)?;
                w
            });
            let theirs = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(h(n))
                .and_then(|f| f.write_all_at(&data, off))
                .map_err(host_errno);
            (format!("write {n} @{off}+{len}"), ours, theirs)
        }
        3 => {
            let n = pick(rng);
            let len = match rng.below(3) {
                0 => 0,
                1 => rng.below(20 * 1024),
                _ => rng.below(300 * 1024),
            };
            let ours = sys::truncate(p, r(n).as_bytes(), len as i64);
            let theirs = std::fs::OpenOptions::new()
                .write(true)
                .open(h(n))
                .and_then(|f| f.set_len(len))
                .map_err(host_errno);
            (format!("truncate {n} {len}"), ours, theirs)
        }
        4 => {
            let n = pick(rng);
            (
                format!("mkdir {n}"),
                sys::mkdir(p, r(n).as_bytes(), 0o755),
                std::fs::create_dir(h(n)).map_err(host_errno),
            )
        }
        5 => {
            let n = pick(rng);
            (
                format!("unlink {n}"),
                sys::unlink(p, r(n).as_bytes()),
                std::fs::remove_file(h(n)).map_err(host_errno),
            )
        }
        6 => {
            let n = pick(rng);
            (
                format!("rmdir {n}"),
                sys::rmdir(p, r(n).as_bytes()),
                std::fs::remove_dir(h(n)).map_err(host_errno),
            )
        }
        7 => {
            let (a, b) = (pick(rng), pick(rng));
            (
                format!("rename {a} {b}"),
                sys::rename(p, r(a).as_bytes(), r(b).as_bytes()),
                std::fs::rename(h(a), h(b)).map_err(host_errno),
            )
        }
        8 => {
            let (a, b) = (pick(rng), pick(rng));
            (
                format!("link {a} {b}"),
                sys::link(p, r(a).as_bytes(), r(b).as_bytes()),
                std::fs::hard_link(h(a), h(b)).map_err(host_errno),
            )
        }
        _ => {
            let n = pick(rng);
            let target = if rng.below(2) == 0 {
                "t".to_string()
            } else {
                "long/".repeat(30)
            };
            (
                format!("symlink {n}"),
                sys::symlink(p, target.as_bytes(), r(n).as_bytes()),
                std::os::unix::fs::symlink(&target, h(n)).map_err(host_errno),
            )
        }
    }
}

#[test]
fn ext2_random_ops_match_the_host() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    for seed in 1..=4u64 {
        let img = dir.path().join(format!("r{seed}.img"));
        mke2fs(
            &img,
            32 << 20,
            &["-b", if seed % 2 == 0 { "4096" } else { "1024" }],
        );
        let host = dir.path().join(format!("h{seed}"));
        std::fs::create_dir(&host).unwrap();
        let (mut k, mut p) = mount_rw(&img);
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut oks = 0;
        for i in 0..1500 {
            let (what, ours, theirs) = step(&mut rng, &p, &host);
            assert_eq!(ours, theirs, "seed {seed} step {i}: {what}");
            oks += usize::from(ours.is_ok());
            if i % 500 == 499 {
                // Everything must survive a remount, and e2fsck agree.
                unmount(k, p);
                assert_clean(&img);
                (k, p) = mount_rw(&img);
            }
        }
        assert!(oks > 250, "seed {seed}: only {oks} operations succeeded");
        let mut a = walk_rump(&p, "/mnt");
        let mut b = walk_host(&host);
        for v in a.values_mut().chain(b.values_mut()) {
            v.mtime = 0;
            v.uid = 0;
            v.gid = 0;
            // Directory sizes differ by design (block-granular on ext2).
            v.size = if v.mode & 0o170000 == 0o040000 {
                0
            } else {
                v.size
            };
        }
        eprintln!(
            "seed {seed}: {oks} of 1500 operations succeeded; {} files at the end",
            a.len()
        );
        assert_same_tree(&a, &b);
        unmount(k, p);
        assert_clean(&img);
    }
}
