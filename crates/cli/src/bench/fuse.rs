//! `rump bench fuse`: the same workloads on three back ends, each on its
//! own identical fresh ext2 image, interleaved per workload: `rump fuse`
//! (ours), `fuse2fs` (e2fsprogs' FUSE server) and Linux's own ext2 on a
//! loop mount. Every metric is printed twice: against fuse2fs and
//! against the kernel.
//!
//! "Cold" means the back end was unmounted and mounted again (so our
//! in-process buffer cache is empty too) and the host page cache was
//! dropped. The 8-way create runs 8 threads of this process, each in its
//! own directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;

use super::common::{drop_caches, image_dir, is_root, LoopMount};
use super::report::{Metric, Unit};

/// Arguments of `rump bench fuse`.
#[derive(Args)]
pub struct FuseArgs {
    /// Size of the sequential file in MiB.
    #[arg(long, default_value_t = 512)]
    pub file_mb: usize,
    /// Number of small files in the tar tree.
    #[arg(long, default_value_t = 5_000)]
    pub small_files: usize,
    /// Files created and unlinked in one directory.
    #[arg(long, default_value_t = 10_000)]
    pub creates: usize,
    /// Size of each image in MiB.
    #[arg(long, default_value_t = 1024)]
    pub image_mb: u64,
    /// Directory for the images (default: $TMPDIR or /var/tmp).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Rump,
    Fuse2fs,
    Kernel,
}

const BACKENDS: [Backend; 3] = [Backend::Rump, Backend::Fuse2fs, Backend::Kernel];

/// One mounted back end.
enum Mounted {
    Fuse { child: Child, mnt: PathBuf },
    Loop(LoopMount),
}

impl Mounted {
    fn new(b: Backend, img: &Path, mnt: &Path) -> anyhow::Result<Mounted> {
        std::fs::create_dir_all(mnt)?;
        match b {
            Backend::Rump => {
                let exe = std::env::current_exe()?;
                let mut child = Command::new(exe)
                    .args(["fuse", "-f"])
                    .arg(img)
                    .arg(mnt)
                    .env("RUMP_FUSE_REPORT_READY", "1")
                    .stdout(Stdio::piped())
                    .spawn()
                    .context("start rump fuse")?;
                let mut line = String::new();
                BufReader::new(child.stdout.take().context("pipe")?).read_line(&mut line)?;
                if !line.contains("ready") {
                    bail!("rump fuse did not mount");
                }
                Ok(Mounted::Fuse {
                    child,
                    mnt: mnt.into(),
                })
            }
            Backend::Fuse2fs => {
                let child = Command::new("fuse2fs")
                    .arg("-f")
                    .arg(img)
                    .arg(mnt)
                    .stdout(Stdio::null())
                    .spawn()
                    .context("start fuse2fs (Debian package fuse2fs)")?;
                let start = Instant::now();
                while !is_mounted(mnt) {
                    if start.elapsed() > Duration::from_secs(30) {
                        bail!("fuse2fs did not mount");
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Ok(Mounted::Fuse {
                    child,
                    mnt: mnt.into(),
                })
            }
            Backend::Kernel => Ok(Mounted::Loop(LoopMount::new(img, mnt)?)),
        }
    }

    /// Unmounts and waits until a FUSE server has written everything
    /// back and exited.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            Mounted::Fuse { mut child, mnt } => {
                let st = Command::new("umount").arg(&mnt).status()?;
                if !st.success() {
                    bail!("umount {}", mnt.display());
                }
                child.wait()?;
                Ok(())
            }
            Mounted::Loop(l) => {
                drop(l);
                Ok(())
            }
        }
    }
}

fn is_mounted(mnt: &Path) -> bool {
    let m = mnt.display().to_string();
    std::fs::read_to_string("/proc/mounts").is_ok_and(|s| {
        s.lines()
            .any(|l| l.split_whitespace().nth(1) == Some(m.as_str()))
    })
}

fn sh(script: &str) -> anyhow::Result<f64> {
    let t = Instant::now();
    let st = Command::new("sh").arg("-c").arg(script).status()?;
    if !st.success() {
        bail!("failed: {script}");
    }
    Ok(t.elapsed().as_secs_f64())
}

/// The results of one back end, by metric.
type Results = Vec<(&'static str, f64, Unit)>;

pub fn run(a: FuseArgs) -> anyhow::Result<()> {
    if !is_root() || !Path::new("/dev/fuse").exists() {
        bail!("rump bench fuse needs root and /dev/fuse (it mounts)");
    }
    for t in ["fuse2fs", "mke2fs", "tar"] {
        if Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {t}"))
            .output()?
            .stdout
            .is_empty()
        {
            bail!("{t} is not installed");
        }
    }
    let dir = image_dir(a.dir.as_deref())?;
    let d = dir.path();
    // The small-file tree, as a tarball.
    let tree = d.join("tree");
    for i in 0..a.small_files {
        let sub = tree.join(format!("d{}", i / 100));
        if i % 100 == 0 {
            std::fs::create_dir_all(&sub)?;
        }
        std::fs::write(sub.join(format!("f{i}")), vec![b'x'; 512 + (i * 37) % 3500])?;
    }
    let tarball = d.join("tree.tar");
    sh(&format!(
        "tar cf {} -C {} .",
        tarball.display(),
        tree.display()
    ))?;
    std::fs::remove_dir_all(&tree)?;

    let mut results: Vec<Results> = vec![Vec::new(); 3];
    for (i, &b) in BACKENDS.iter().enumerate() {
        let img = d.join(format!("img{i}"));
        let f = std::fs::File::create(&img)?;
        f.set_len(a.image_mb << 20)?;
        drop(f);
        sh(&format!("mke2fs -q -F -t ext2 {}", img.display()))?;
        let mnt = d.join(format!("m{i}"));
        results[i] = one_backend(b, &img, &mnt, &tarball, &a)?;
        std::fs::remove_file(&img)?;
    }
    for (k, (metric, ours, unit)) in results[0].iter().enumerate() {
        for (base, name) in [(1, "fuse2fs"), (2, "kernel")] {
            Metric {
                bench: "fuse",
                metric,
                value: *ours,
                unit: *unit,
                baseline: Some((name, results[base][k].1)),
            }
            .print();
        }
    }
    Ok(())
}

fn one_backend(
    b: Backend,
    img: &Path,
    mnt: &Path,
    tarball: &Path,
    a: &FuseArgs,
) -> anyhow::Result<Results> {
    let mut r: Results = Vec::new();
    let m = mnt.display();
    let mut mounted = Mounted::new(b, img, mnt)?;
    let secs = sh(&format!(
        "dd if=/dev/zero of={m}/big bs=1M count={} conv=fsync status=none",
        a.file_mb
    ))?;
    r.push(("fuse_seq_write_mbps", a.file_mb as f64 / secs, Unit::MBps));
    mounted.finish()?;
    drop_caches(&[img]);
    mounted = Mounted::new(b, img, mnt)?;
    let secs = sh(&format!("dd if={m}/big of=/dev/null bs=1M status=none"))?;
    r.push(("fuse_seq_read_mbps", a.file_mb as f64 / secs, Unit::MBps));
    std::fs::remove_file(mnt.join("big"))?;
    let secs = sh(&format!(
        "mkdir {m}/t && tar xf {} -C {m}/t && sync -f {m}/t",
        tarball.display()
    ))?;
    r.push(("fuse_small_files_tar_x_s", secs, Unit::Secs));
    mounted.finish()?;
    drop_caches(&[img]);
    mounted = Mounted::new(b, img, mnt)?;
    let stat = format!("find {m}/t | xargs stat > /dev/null");
    r.push(("fuse_small_files_stat_cold_s", sh(&stat)?, Unit::Secs));
    r.push(("fuse_small_files_stat_warm_s", sh(&stat)?, Unit::Secs));
    let secs = sh(&format!("rm -rf {m}/t && sync -f {m}"))?;
    r.push(("fuse_small_files_rm_s", secs, Unit::Secs));
    // create + fstat + close, then unlink, in one directory.
    let cd = mnt.join("c");
    std::fs::create_dir(&cd)?;
    let t = Instant::now();
    for i in 0..a.creates {
        let f = std::fs::File::create(cd.join(format!("f{i}")))?;
        f.metadata()?;
    }
    r.push((
        "fuse_create_per_s",
        a.creates as f64 / t.elapsed().as_secs_f64(),
        Unit::OpsPerSec,
    ));
    let t = Instant::now();
    for i in 0..a.creates {
        std::fs::remove_file(cd.join(format!("f{i}")))?;
    }
    r.push((
        "fuse_unlink_per_s",
        a.creates as f64 / t.elapsed().as_secs_f64(),
        Unit::OpsPerSec,
    ));
    let per = a.creates / 8;
    let t = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|j| {
            let d = mnt.join(format!("p{j}"));
            std::thread::spawn(move || -> std::io::Result<()> {
                std::fs::create_dir(&d)?;
                for i in 0..per {
                    std::fs::File::create(d.join(format!("f{i}")))?.metadata()?;
                }
                Ok(())
            })
        })
        .collect();
    for th in threads {
        th.join()
            .map_err(|_| anyhow::anyhow!("a create thread panicked"))??;
    }
    r.push((
        "fuse_create_per_s_8proc",
        (per * 8) as f64 / t.elapsed().as_secs_f64(),
        Unit::OpsPerSec,
    ));
    mounted.finish()?;
    Ok(r)
}
