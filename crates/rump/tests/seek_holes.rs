//! `SEEK_DATA` and `SEEK_HOLE`: files with holes made by the same writes
//! and truncations on our tmpfs, our ext2 (1 KiB and 4 KiB blocks) and
//! the host's tmpfs (`/dev/shm`, which tracks holes by page), probed at
//! many offsets; every answer (offset or errno) must match the host's.
//! The host's page is 4 KiB and every write here is 4 KiB-aligned, so
//! both ext2 block sizes draw the same map.

mod ext2_util;

use std::os::unix::io::AsRawFd;
use std::path::Path;

use rump::sys::{self, consts::o};
use rump::{Errno, Process};

const K4: u64 = 4096;

/// Regions (offset, length) written with non-zero bytes, then the final
/// size: several layouts, including a hole at the start and one at the
/// end.
fn layouts() -> Vec<(Vec<(u64, u64)>, u64)> {
    vec![
        (vec![(0, K4), (256 * K4, K4)], 768 * K4),
        (vec![(8 * K4, 3 * K4)], 11 * K4),
        (vec![(0, 20 * K4)], 20 * K4),
        (vec![(K4, K4), (3 * K4, K4), (5 * K4, 2 * K4)], 40 * K4),
        (vec![], 64 * K4),
        (vec![(2048 * K4, K4)], 4096 * K4),
    ]
}

fn probes(size: u64) -> Vec<i64> {
    let mut v = vec![0, 1, K4 as i64 - 1, size as i64, size as i64 + 1, -1];
    let mut off = 0;
    while off < size {
        v.push(off as i64);
        v.push(off as i64 + 100);
        off += K4 * 3 / 2;
    }
    v
}

type Answers = Vec<(i64, i32, Result<u64, i32>)>;

fn host_answers(path: &Path, regions: &[(u64, u64)], size: u64) -> Answers {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    for &(off, len) in regions {
        f.write_all_at(&vec![0xa5u8; len as usize], off).unwrap();
    }
    f.set_len(size).unwrap();
    let mut out = Vec::new();
    for off in probes(size) {
        for whence in [libc::SEEK_DATA, libc::SEEK_HOLE] {
            // SAFETY: lseek(2) on a descriptor we own; no memory involved.
            let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
            let r = if r < 0 {
                Err(std::io::Error::last_os_error().raw_os_error().unwrap())
            } else {
                Ok(r as u64)
            };
            out.push((off, whence, r));
        }
    }
    out
}

fn our_answers(p: &Process, path: &str, regions: &[(u64, u64)], size: u64) -> Answers {
    let fd = sys::open(p, path.as_bytes(), o::RDWR | o::CREAT | o::TRUNC, 0o644).unwrap();
    for &(off, len) in regions {
        sys::pwrite(p, fd, &vec![0xa5u8; len as usize], off as i64).unwrap();
    }
    sys::ftruncate(p, fd, size as i64).unwrap();
    let mut out = Vec::new();
    for off in probes(size) {
        for whence in [libc::SEEK_DATA, libc::SEEK_HOLE] {
            let r = sys::lseek(p, fd, off, whence).map_err(|e: Errno| e.raw());
            out.push((off, whence, r));
        }
    }
    sys::close(p, fd).unwrap();
    out
}

fn host_dir() -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("SKIPPED: no /dev/shm (host tmpfs) to compare with");
        return None;
    }
    Some(tempfile::tempdir_in(shm).unwrap())
}

fn compare(p: &Process, prefix: &str) {
    let Some(host) = host_dir() else { return };
    for (i, (regions, size)) in layouts().into_iter().enumerate() {
        let theirs = host_answers(&host.path().join(format!("f{i}")), &regions, size);
        let ours = our_answers(p, &format!("{prefix}/f{i}"), &regions, size);
        if i == 0 {
            // The host does track holes here, so the comparison has teeth.
            assert_eq!(theirs[1], (0, libc::SEEK_HOLE, Ok(K4)), "host tmpfs");
        }
        assert_eq!(ours.len(), theirs.len());
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a, b, "layout {i} {regions:?} size {size}: ours vs host");
        }
    }
}

#[test]
fn tmpfs_holes_like_the_host() {
    let k = rump::Kernel::boot().unwrap();
    let p = k.process().unwrap();
    compare(&p, "");
}

#[test]
fn ext2_holes_like_the_host() {
    let dir = tempfile::tempdir().unwrap();
    for bs in [1024, 4096] {
        let img = dir.path().join(format!("h{bs}.img"));
        ext2_util::newfs(&img, 64 << 20, bs);
        let (k, p) = ext2_util::mount_rw(&img);
        compare(&p, "/mnt");
        // And again after a remount: the map comes from the image.
        let before: Vec<Answers> = layouts()
            .iter()
            .enumerate()
            .map(|(i, (_, size))| {
                let fd = sys::open(&p, format!("/mnt/f{i}").as_bytes(), o::RDONLY, 0).unwrap();
                let a = probes(*size)
                    .into_iter()
                    .map(|off| {
                        let r = sys::lseek(&p, fd, off, libc::SEEK_HOLE).map_err(|e| e.raw());
                        (off, libc::SEEK_HOLE, r)
                    })
                    .collect();
                sys::close(&p, fd).unwrap();
                a
            })
            .collect();
        ext2_util::unmount(k, p);
        let (k, p) = ext2_util::mount_rw(&img);
        for (i, (_, size)) in layouts().iter().enumerate() {
            let fd = sys::open(&p, format!("/mnt/f{i}").as_bytes(), o::RDONLY, 0).unwrap();
            for (j, off) in probes(*size).into_iter().enumerate() {
                let r = sys::lseek(&p, fd, off, libc::SEEK_HOLE).map_err(|e| e.raw());
                assert_eq!((off, libc::SEEK_HOLE, r), before[i][j], "after remount");
            }
            sys::close(&p, fd).unwrap();
        }
        ext2_util::unmount(k, p);
        if ext2_util::have_e2fsprogs() {
            ext2_util::assert_clean(&img);
        }
    }
}
