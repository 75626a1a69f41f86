//! `rump bench ext2`: our in-process ext2 driver against Linux's driver on
//! a loop mount of an identical image, in the same run.
//!
//! Two 1 GiB images are made with the same `rump newfs` options (4 KiB
//! blocks). On each: sequential write of a 512 MiB file in 1 MiB writes
//! followed by `fsync`; sequential read of it on a fresh mount after the
//! host page cache is dropped (`/proc/sys/vm/drop_caches`); and 10,000
//! small files created (64 bytes each), stat'ed and unlinked, then a
//! sync. The small-file figure counts create, stat and unlink as three
//! operations per file. Linux's side needs root and a loop device; without
//! them the metrics are printed with no baseline.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Instant;

use rump::sys;
use rump::sys::consts::o;

use super::common::{
    can_loop_mount, drop_caches, image_dir, mount_ext2, syncfs, unmount_ext2, LoopMount,
};
use super::report::{Metric, Unit};

const CHUNK: usize = 1 << 20;

pub fn run(
    file_mb: usize,
    small_files: usize,
    image_mb: u64,
    dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let tmp = image_dir(dir.as_deref())?;
    let ours_img = tmp.path().join("ours.img");
    let linux_img = tmp.path().join("linux.img");
    let opts = rump::ext2::MkfsOptions {
        block_size: 4096,
        now: 1,
        uuid: [7; 16],
        ..Default::default()
    };
    rump::ext2::newfs_image(&ours_img, image_mb << 20, &opts)?;
    rump::ext2::newfs_image(&linux_img, image_mb << 20, &opts)?;
    let linux = can_loop_mount();
    if !linux {
        eprintln!("note: not root or no loop device; Linux baseline not measured");
    }
    let mut chunk = vec![0u8; CHUNK];
    for (i, b) in chunk.iter_mut().enumerate() {
        *b = (i * 31 % 251) as u8;
    }
    let bytes = (file_mb * CHUNK) as f64;

    // Sequential write.
    let ours_w = {
        let (k, p) = mount_ext2(&ours_img)?;
        let t = Instant::now();
        let fd = sys::open(&p, b"/mnt/big", o::WRONLY | o::CREAT | o::TRUNC, 0o644)?;
        for _ in 0..file_mb {
            let n = sys::write(&p, fd, &chunk)?;
            anyhow::ensure!(n == CHUNK, "short write");
        }
        sys::fsync(&p, fd)?;
        let secs = t.elapsed().as_secs_f64();
        sys::close(&p, fd)?;
        unmount_ext2(k, p)?;
        bytes / secs / 1e6
    };
    let linux_w = if linux {
        let m = LoopMount::new(&linux_img, &tmp.path().join("m"))?;
        let t = Instant::now();
        let mut f = std::fs::File::create(m.dir.join("big"))?;
        for _ in 0..file_mb {
            f.write_all(&chunk)?;
        }
        f.sync_all()?;
        let secs = t.elapsed().as_secs_f64();
        drop(f);
        drop(m);
        Some(bytes / secs / 1e6)
    } else {
        None
    };

    // Sequential read, cold.
    drop_caches(&[&ours_img, &linux_img]);
    let ours_r = {
        let (k, p) = mount_ext2(&ours_img)?;
        let t = Instant::now();
        let fd = sys::open(&p, b"/mnt/big", o::RDONLY, 0)?;
        let mut total = 0usize;
        loop {
            let n = sys::read(&p, fd, &mut chunk)?;
            if n == 0 {
                break;
            }
            total += n;
        }
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(total == file_mb * CHUNK, "read {total} bytes");
        sys::close(&p, fd)?;
        unmount_ext2(k, p)?;
        bytes / secs / 1e6
    };
    drop_caches(&[&ours_img, &linux_img]);
    let linux_r = if linux {
        let m = LoopMount::new(&linux_img, &tmp.path().join("m"))?;
        let t = Instant::now();
        let mut f = std::fs::File::open(m.dir.join("big"))?;
        let mut total = 0usize;
        loop {
            let n = f.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            total += n;
        }
        let secs = t.elapsed().as_secs_f64();
        anyhow::ensure!(total == file_mb * CHUNK, "read {total} bytes");
        drop(f);
        drop(m);
        Some(bytes / secs / 1e6)
    } else {
        None
    };

    // Small files.
    let ops = (3 * small_files) as f64;
    let payload = [b's'; 64];
    let ours_s = {
        let (k, p) = mount_ext2(&ours_img)?;
        sys::mkdir(&p, b"/mnt/small", 0o755)?;
        let names: Vec<Vec<u8>> = (0..small_files)
            .map(|i| format!("/mnt/small/file{i:06}").into_bytes())
            .collect();
        let t = Instant::now();
        for n in &names {
            let fd = sys::open(&p, n, o::WRONLY | o::CREAT | o::EXCL, 0o644)?;
            sys::write(&p, fd, &payload)?;
            sys::close(&p, fd)?;
        }
        for n in &names {
            std::hint::black_box(sys::stat(&p, n)?);
        }
        for n in &names {
            sys::unlink(&p, n)?;
        }
        sys::sync(&p)?;
        let secs = t.elapsed().as_secs_f64();
        unmount_ext2(k, p)?;
        ops / secs
    };
    let linux_s = if linux {
        let m = LoopMount::new(&linux_img, &tmp.path().join("m"))?;
        let dir = m.dir.join("small");
        std::fs::create_dir(&dir)?;
        let names: Vec<PathBuf> = (0..small_files)
            .map(|i| dir.join(format!("file{i:06}")))
            .collect();
        let t = Instant::now();
        for n in &names {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(n)?;
            f.write_all(&payload)?;
        }
        for n in &names {
            std::hint::black_box(std::fs::metadata(n)?);
        }
        for n in &names {
            std::fs::remove_file(n)?;
        }
        syncfs(&m.dir)?;
        let secs = t.elapsed().as_secs_f64();
        drop(m);
        Some(ops / secs)
    } else {
        None
    };

    let base = "linux ext2 (loop mount)";
    for (metric, value, unit, baseline) in [
        ("ext2_seq_write_mbps", ours_w, Unit::MBps, linux_w),
        ("ext2_seq_read_mbps", ours_r, Unit::MBps, linux_r),
        (
            "ext2_small_files_ops_per_s",
            ours_s,
            Unit::OpsPerSec,
            linux_s,
        ),
    ] {
        Metric {
            bench: "ext2",
            metric,
            value,
            unit,
            baseline: baseline.map(|b| (base, b)),
        }
        .print();
    }
    Ok(())
}
