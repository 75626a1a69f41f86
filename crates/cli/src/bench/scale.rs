//! `rump bench scale`: how throughput holds up as host threads are added,
//! each thread with its own rump process on one shared kernel.
//!
//! Create/unlink: for each thread count N, N threads start together (a
//! barrier) and for a fixed time repeat create (`open` with
//! `O_CREAT|O_WRONLY`), `fstat`, `close` and `unlink` of a file, one
//! operation per cycle, each thread counting its own. Two layouts: each
//! thread in its own directory (`d{t}/f{i}`), and all of them in one
//! (`shared/t{t}_{i}`). On rump tmpfs against the host's tmpfs, and on
//! rump ext2 on an image file against Linux's ext2 on a loop mount of an
//! identical image (made by `mke2fs -t ext2`, copied sparsely). Each
//! point runs ours, then the baseline, after a short warm-up of both per
//! workload. After the points of a workload one more line,
//! `..._min_over_best`: the figure at the largest N over the best figure
//! at any N (1: no collapse).
//!
//! Cold reads: N threads each read their own file (`--read-mb` MiB) of
//! the ext2 image sequentially in 1 MiB reads, after the host page cache
//! is dropped; Linux's driver reads the same files on its loop mount.
//! The files of the largest N are written once (ours through rump), and
//! the images are sized for them, sparse. Thread counts whose files would
//! pass `--read-max-mb` or not fit on the disk are left out, with a note.
//!
//! Without root or a loop device the ext2 figures have no baseline (one
//! note on stderr).

use std::ffi::CStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context};
use rump::sys;
use rump::sys::consts::o;
use rump::Kernel;

use super::common::{
    available_bytes, can_loop_mount, drop_caches, image_dir, mount_ext2, syncfs, unmount_ext2,
    HostTmpfs, LoopMount,
};
use super::report::{Metric, Unit};

/// Options of `rump bench scale`.
#[derive(clap::Args)]
pub struct ScaleArgs {
    /// Thread counts of the create/unlink workloads, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 2, 4, 8, 16, 32, 64])]
    threads: Vec<usize>,
    /// Seconds each create/unlink point runs, on each side.
    #[arg(long, default_value_t = 1.0)]
    secs: f64,
    /// Thread counts of the cold-read workload, comma-separated (the
    /// flag with no value skips it). Counts whose files would pass
    /// `--read-max-mb` (or the disk's free space) are left out.
    #[arg(long, value_delimiter = ',', num_args = 0.., default_values_t = [1, 2, 4, 8, 16, 32, 64])]
    read_threads: Vec<usize>,
    /// MiB each cold-read thread reads (one file per thread).
    #[arg(long, default_value_t = 64)]
    read_mb: u64,
    /// Largest total of cold-read files per image, in MiB: thread counts
    /// beyond it are left out. The default (2048) allows up to 32
    /// threads of 64 MiB (2 GiB written per image, and 4 GiB read over
    /// the default points); 4096 allows 64.
    #[arg(long, default_value_t = 2048)]
    read_max_mb: u64,
    /// Smallest size of each ext2 image in MiB (grown, sparse, to hold
    /// the cold-read files).
    #[arg(long, default_value_t = 256)]
    image_mb: u64,
    /// Directory for the images (default: $TMPDIR or /var/tmp).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Only this file system's workloads (for profiling one of them).
    #[arg(long, value_parser = ["tmpfs", "ext2"])]
    only: Option<String>,
}

const CHUNK: usize = 1 << 20;
const LINUX_EXT2: &str = "linux ext2 loop";

pub fn run(a: ScaleArgs) -> anyhow::Result<()> {
    let threads = counts(&a.threads, "--threads")?;
    let read_threads = counts(&a.read_threads, "--read-threads")?;
    ensure!(a.secs > 0.0, "--secs must be positive");
    ensure!(a.read_mb > 0, "--read-mb must be positive");
    let want = |fs: &str| a.only.as_deref().is_none_or(|o| o == fs);
    if !threads.is_empty() && want("tmpfs") {
        tmpfs(&threads, a.secs)?;
    }
    if want("ext2") {
        ext2(&a, &threads, &read_threads)?;
    }
    Ok(())
}

/// Sorted, without repeats; no zero.
fn counts(list: &[usize], flag: &str) -> anyhow::Result<Vec<usize>> {
    let mut v = list.to_vec();
    v.sort_unstable();
    v.dedup();
    ensure!(
        v.first() != Some(&0),
        "{flag}: thread counts must be positive"
    );
    Ok(v)
}

fn tmpfs(threads: &[usize], secs: f64) -> anyhow::Result<()> {
    let kernel = Kernel::builder().boot()?;
    let host = HostTmpfs::new()?;
    let ours = Target::Rump {
        kernel: &kernel,
        root: "",
    };
    let base = Target::Host { root: host.path() };
    for layout in [Layout::PerThreadDir, Layout::SharedDir] {
        workload(
            "tmpfs",
            layout,
            &ours,
            Some((&base, "host tmpfs")),
            threads,
            secs,
        )?;
    }
    kernel.halt();
    Ok(())
}

fn ext2(a: &ScaleArgs, threads: &[usize], read_threads: &[usize]) -> anyhow::Result<()> {
    let tmp = image_dir(a.dir.as_deref())?;
    let linux = can_loop_mount();
    if !linux {
        eprintln!(
            "note: not root or no loop device: the Linux ext2 loop-mount baseline is skipped \
             (ext2 lines have baseline \"none\")"
        );
    }
    let reads = plan_reads(a, read_threads, if linux { 2 } else { 1 }, tmp.path())?;
    let files = reads.last().copied().unwrap_or(0);
    let ours_img = tmp.path().join("ours.img");
    let linux_img = tmp.path().join("linux.img");
    make_image(&ours_img, image_mb(a, files) << 20)?;
    if linux {
        let st = Command::new("cp")
            .arg("--sparse=always")
            .arg(&ours_img)
            .arg(&linux_img)
            .status()
            .context("run cp")?;
        ensure!(st.success(), "cp of the image failed");
    }

    let (k, p) = mount_ext2(&ours_img)?;
    let loop_mount = match linux {
        true => Some(LoopMount::new(&linux_img, &tmp.path().join("m"))?),
        false => None,
    };
    let ours = Target::Rump {
        kernel: &k,
        root: "/mnt",
    };
    let base = loop_mount.as_ref().map(|m| Target::Host { root: &m.dir });
    for layout in [Layout::PerThreadDir, Layout::SharedDir] {
        let base = base.as_ref().map(|b| (b, LINUX_EXT2));
        workload("ext2", layout, &ours, base, threads, a.secs)?;
    }

    if files > 0 {
        let mut chunk = vec![0u8; CHUNK];
        for (i, b) in chunk.iter_mut().enumerate() {
            *b = (i * 31 % 251) as u8;
        }
        write_rump_files(&p, files, a.read_mb, &chunk)?;
        let linux_files = match &loop_mount {
            Some(m) => write_host_files(&m.dir, files, a.read_mb, &chunk)?,
            None => Vec::new(),
        };
        let expect = |n: usize| n as u64 * a.read_mb * CHUNK as u64;
        for &n in &reads {
            drop_caches(&[&ours_img]);
            let (bytes, secs) = rump_cold_read(&k, n)?;
            ensure!(bytes == expect(n), "read {bytes} of {} bytes", expect(n));
            let value = bytes as f64 / secs / 1e6;
            let baseline = match &loop_mount {
                Some(m) => {
                    let mut paths: Vec<&Path> = linux_files.iter().map(PathBuf::as_path).collect();
                    paths.push(&linux_img);
                    drop_caches(&paths);
                    let (bytes, secs) = host_cold_read(&m.dir, n)?;
                    ensure!(bytes == expect(n), "read {bytes} of {} bytes", expect(n));
                    Some((LINUX_EXT2, bytes as f64 / secs / 1e6))
                }
                None => None,
            };
            Metric {
                bench: "scale",
                metric: &format!("scale_ext2_cold_read_mbps_{n}t"),
                value,
                unit: Unit::MBps,
                baseline,
            }
            .print();
        }
    }

    unmount_ext2(k, p)?;
    drop(loop_mount);
    Ok(())
}

/// The cold-read thread counts that fit under `--read-max-mb` and on the
/// disk holding `dir` (`images` images of them), with a note on stderr
/// for any left out.
fn plan_reads(
    a: &ScaleArgs,
    read_threads: &[usize],
    images: u64,
    dir: &Path,
) -> anyhow::Result<Vec<usize>> {
    let Some(&want) = read_threads.last() else {
        return Ok(Vec::new());
    };
    let by_flag = (a.read_max_mb / a.read_mb) as usize;
    let free_mb = available_bytes(dir)? >> 20;
    // Files, file-system metadata, and some room left for everyone else.
    let fits = |n: usize| images * image_mb(a, n) + 512 <= free_mb;
    let by_disk = read_threads
        .iter()
        .copied()
        .filter(|&n| fits(n))
        .max()
        .unwrap_or(0);
    let cap = by_flag.min(by_disk);
    if want > cap {
        let why = if by_disk < by_flag {
            format!(
                "{free_mb} MiB free in {} for {images} image(s)",
                dir.display()
            )
        } else {
            format!("--read-max-mb {}", a.read_max_mb)
        };
        eprintln!(
            "note: cold reads capped at {cap} threads of {} MiB ({why}); asked for up to {want}",
            a.read_mb
        );
    }
    Ok(read_threads.iter().copied().filter(|&n| n <= cap).collect())
}

/// Image size in MiB for `files` cold-read files: the files, about 12%
/// for metadata and reserved blocks, and room for the other workloads.
fn image_mb(a: &ScaleArgs, files: usize) -> u64 {
    a.image_mb.max(files as u64 * a.read_mb * 112 / 100 + 64)
}

/// A sparse `size`-byte image with an ext2 file system: `mke2fs -t ext2`
/// with 4 KiB blocks, or our newfs with the same geometry if mke2fs is
/// missing.
fn make_image(img: &Path, size: u64) -> anyhow::Result<()> {
    std::fs::File::create(img)?.set_len(size)?;
    let out = Command::new("mke2fs")
        .args([
            "-q", "-F", "-t", "ext2", "-b", "4096", "-I", "256", "-i", "16384",
        ])
        .args(["-U", "07070707-0707-4707-8707-070707070707"])
        .arg(img)
        .output();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => bail!(
            "mke2fs {}: {}",
            img.display(),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            eprintln!("note: mke2fs not found; the ext2 images are made by rump newfs");
            let opts = rump::ext2::MkfsOptions {
                block_size: 4096,
                now: 1,
                uuid: [7; 16],
                ..Default::default()
            };
            rump::ext2::newfs_image(img, size, &opts)?;
            Ok(())
        }
    }
}

/// Where files are made and removed.
#[derive(Clone, Copy)]
enum Layout {
    /// Each thread in its own directory: `d{t}/f{i}`.
    PerThreadDir,
    /// All threads in one directory: `shared/t{t}_{i}`.
    SharedDir,
}

impl Layout {
    /// The part of the metric name after the file system's.
    fn infix(self) -> &'static str {
        match self {
            Layout::PerThreadDir => "",
            Layout::SharedDir => "_shared_dir",
        }
    }

    /// The directories `threads` threads need.
    fn dirs(self, threads: usize) -> Vec<String> {
        match self {
            Layout::PerThreadDir => (0..threads).map(|t| format!("d{t}")).collect(),
            Layout::SharedDir => vec!["shared".into()],
        }
    }

    /// Thread `t`'s file names are this followed by a counter.
    fn prefix(self, t: usize) -> String {
        match self {
            Layout::PerThreadDir => format!("d{t}/f"),
            Layout::SharedDir => format!("shared/t{t}_"),
        }
    }
}

/// Where a workload runs.
enum Target<'a> {
    /// Processes of a rump kernel, in its tree under `root` (`""`: its
    /// root file system).
    Rump { kernel: &'a Kernel, root: &'a str },
    /// Host threads with the host's system calls, under `root`.
    Host { root: &'a Path },
}

impl Target<'_> {
    fn make_dirs(&self, layout: Layout, threads: usize) -> anyhow::Result<()> {
        match *self {
            Target::Rump { kernel, root } => {
                let p = kernel.process()?;
                for d in layout.dirs(threads) {
                    rump::fs::create_dir_all(&p, format!("{root}/{d}"))?;
                }
            }
            Target::Host { root } => {
                for d in layout.dirs(threads) {
                    std::fs::create_dir_all(root.join(d))?;
                }
            }
        }
        Ok(())
    }

    /// Create/fstat/close/unlink cycles per second of `threads` threads
    /// running for `secs`.
    fn ops_per_s(&self, layout: Layout, threads: usize, secs: f64) -> anyhow::Result<f64> {
        let (ops, wall) = match *self {
            Target::Rump { kernel, root } => {
                let workers = (0..threads)
                    .map(|t| {
                        let p = kernel.process()?;
                        let prefix = format!("{root}/{}", layout.prefix(t)).into_bytes();
                        Ok(move |stop: &AtomicBool| rump_cycles(&p, &prefix, stop))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                together(workers, Some(secs))?
            }
            Target::Host { root } => {
                let workers = (0..threads)
                    .map(|t| {
                        let prefix = root.join(layout.prefix(t));
                        let prefix = prefix.into_os_string().into_encoded_bytes();
                        move |stop: &AtomicBool| host_cycles(&prefix, stop)
                    })
                    .collect::<Vec<_>>();
                together(workers, Some(secs))?
            }
        };
        Ok(ops as f64 / wall)
    }
}

/// All points of one create/unlink workload, then the collapse ratio.
fn workload(
    fs: &str,
    layout: Layout,
    ours: &Target,
    base: Option<(&Target, &str)>,
    threads: &[usize],
    secs: f64,
) -> anyhow::Result<()> {
    let Some(&max) = threads.last() else {
        return Ok(());
    };
    ours.make_dirs(layout, max)?;
    if let Some((b, _)) = base {
        b.make_dirs(layout, max)?;
    }
    // An untimed warm-up on each side: caches, allocators, first-use
    // paths.
    let warm_up = secs.min(0.1);
    ours.ops_per_s(layout, 1, warm_up)?;
    if let Some((b, _)) = base {
        b.ops_per_s(layout, 1, warm_up)?;
    }
    let name = format!("scale_{fs}{}_ops_per_s", layout.infix());
    let mut values = Vec::new();
    for &n in threads {
        let value = ours.ops_per_s(layout, n, secs)?;
        let baseline = match base {
            Some((b, desc)) => Some((desc, b.ops_per_s(layout, n, secs)?)),
            None => None,
        };
        Metric {
            bench: "scale",
            metric: &format!("{name}_{n}t"),
            value,
            unit: Unit::OpsPerSec,
            baseline,
        }
        .print();
        values.push(value);
    }
    let best = values.iter().copied().fold(f64::MIN, f64::max);
    Metric {
        bench: "scale",
        metric: &format!("{name}_min_over_best"),
        value: values.last().copied().unwrap_or(f64::NAN) / best,
        unit: Unit::Ratio,
        baseline: None,
    }
    .print();
    Ok(())
}

/// Runs `workers` on threads of their own, started together; with `secs`
/// they are told to stop (the flag they get) after that long. The sum of
/// their results and the wall time in seconds from the start until the
/// last one finished.
fn together<W>(workers: Vec<W>, secs: Option<f64>) -> anyhow::Result<(u64, f64)>
where
    W: FnOnce(&AtomicBool) -> anyhow::Result<u64> + Send,
{
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(workers.len() + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = workers
            .into_iter()
            .map(|w| {
                let (stop, barrier) = (&stop, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let r = w(stop);
                    if r.is_err() {
                        stop.store(true, Ordering::Relaxed);
                    }
                    r
                })
            })
            .collect();
        barrier.wait();
        let t = Instant::now();
        if let Some(secs) = secs {
            let end = t + Duration::from_secs_f64(secs);
            while !stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                std::thread::sleep((end - now).min(Duration::from_millis(20)));
            }
            stop.store(true, Ordering::Relaxed);
        }
        let mut total = 0;
        let mut first_err = None;
        for h in handles {
            match h.join() {
                Ok(Ok(n)) => total += n,
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err.get_or_insert(anyhow!("a worker panicked"));
                }
            }
        }
        let wall = t.elapsed().as_secs_f64();
        match first_err {
            Some(e) => Err(e),
            None => Ok((total, wall)),
        }
    })
}

/// Create/fstat/close/unlink through `p` of `prefix` and a counter, until
/// `stop`: the number of cycles.
fn rump_cycles(p: &rump::Process, prefix: &[u8], stop: &AtomicBool) -> anyhow::Result<u64> {
    let mut path = prefix.to_vec();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        path.truncate(prefix.len());
        write!(path, "{i}")?;
        let fd = sys::open(p, &path, o::CREAT | o::WRONLY, 0o644)?;
        std::hint::black_box(sys::fstat(p, fd)?);
        sys::close(p, fd)?;
        sys::unlink(p, &path)?;
        i += 1;
    }
    Ok(i)
}

/// The same through the host kernel.
fn host_cycles(prefix: &[u8], stop: &AtomicBool) -> anyhow::Result<u64> {
    let mut path = prefix.to_vec();
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        path.truncate(prefix.len());
        write!(path, "{i}\0")?;
        host_cycle(CStr::from_bytes_with_nul(&path)?)?;
        i += 1;
    }
    Ok(i)
}

fn host_cycle(path: &CStr) -> anyhow::Result<()> {
    let err = |call| anyhow!("host {call}: {}", std::io::Error::last_os_error());
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY,
            0o644 as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(err("open"));
    }
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open and `st` points to writable memory of the
    // right size for one `struct stat`.
    let r = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    if r != 0 {
        return Err(err("fstat"));
    }
    std::hint::black_box(st);
    // SAFETY: `fd` is an open descriptor this function owns.
    if unsafe { libc::close(fd) } != 0 {
        return Err(err("close"));
    }
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    if unsafe { libc::unlink(path.as_ptr()) } != 0 {
        return Err(err("unlink"));
    }
    Ok(())
}

fn read_file_name(t: usize) -> String {
    format!("read/r{t}")
}

/// `files` files of `mb` MiB under `/mnt/read`, through `p`, then a sync.
fn write_rump_files(p: &rump::Process, files: usize, mb: u64, chunk: &[u8]) -> anyhow::Result<()> {
    rump::fs::create_dir_all(p, "/mnt/read")?;
    for t in 0..files {
        let path = format!("/mnt/{}", read_file_name(t));
        let fd = sys::open(p, path.as_bytes(), o::WRONLY | o::CREAT | o::TRUNC, 0o644)?;
        for _ in 0..mb {
            ensure!(sys::write(p, fd, chunk)? == chunk.len(), "short write");
        }
        sys::close(p, fd)?;
    }
    sys::sync(p)?;
    Ok(())
}

/// The same files under `dir` through the host, then a syncfs: their
/// paths.
fn write_host_files(
    dir: &Path,
    files: usize,
    mb: u64,
    chunk: &[u8],
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir.join("read"))?;
    let mut paths = Vec::new();
    for t in 0..files {
        let path = dir.join(read_file_name(t));
        let mut f = std::fs::File::create(&path)?;
        for _ in 0..mb {
            f.write_all(chunk)?;
        }
        paths.push(path);
    }
    syncfs(dir)?;
    Ok(paths)
}

/// `threads` threads each reading its file to the end through its own
/// process: bytes read and seconds.
fn rump_cold_read(kernel: &Kernel, threads: usize) -> anyhow::Result<(u64, f64)> {
    let workers = (0..threads)
        .map(|t| {
            let p = kernel.process()?;
            let path = format!("/mnt/{}", read_file_name(t)).into_bytes();
            let mut buf = vec![0u8; CHUNK];
            Ok(move |_: &AtomicBool| -> anyhow::Result<u64> {
                let fd = sys::open(&p, &path, o::RDONLY, 0)?;
                let mut total = 0u64;
                loop {
                    let n = sys::read(&p, fd, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                sys::close(&p, fd)?;
                Ok(total)
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    together(workers, None)
}

/// The same through the host, under `dir`.
fn host_cold_read(dir: &Path, threads: usize) -> anyhow::Result<(u64, f64)> {
    let workers = (0..threads)
        .map(|t| {
            let path = dir.join(read_file_name(t));
            let mut buf = vec![0u8; CHUNK];
            move |_: &AtomicBool| -> anyhow::Result<u64> {
                use std::io::Read;
                let mut f = std::fs::File::open(&path)?;
                let mut total = 0u64;
                loop {
                    let n = f.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    total += n as u64;
                }
                Ok(total)
            }
        })
        .collect::<Vec<_>>();
    together(workers, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_counts_are_sorted_and_positive() {
        assert_eq!(counts(&[8, 1, 2, 8], "--threads").unwrap(), [1, 2, 8]);
        assert!(counts(&[0, 1], "--threads").is_err());
        assert!(counts(&[], "--threads").unwrap().is_empty());
    }

    #[test]
    fn names_per_layout() {
        assert_eq!(Layout::PerThreadDir.prefix(3), "d3/f");
        assert_eq!(Layout::SharedDir.prefix(3), "shared/t3_");
        assert_eq!(Layout::PerThreadDir.dirs(2), ["d0", "d1"]);
        assert_eq!(Layout::SharedDir.dirs(2), ["shared"]);
    }

    #[test]
    fn together_sums_and_stops() {
        let workers: Vec<_> = (0..3)
            .map(|_| {
                |stop: &AtomicBool| {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::yield_now();
                        n += 1;
                    }
                    Ok(n.max(1))
                }
            })
            .collect();
        let (total, wall) = together(workers, Some(0.05)).unwrap();
        assert!(total >= 3 && wall >= 0.05);
        let failing = vec![|_: &AtomicBool| -> anyhow::Result<u64> { bail!("no") }];
        assert!(together(failing, None).is_err());
    }

    #[test]
    fn cycles_on_rump_tmpfs() {
        let k = Kernel::boot().unwrap();
        let ours = Target::Rump {
            kernel: &k,
            root: "",
        };
        ours.make_dirs(Layout::SharedDir, 2).unwrap();
        assert!(ours.ops_per_s(Layout::SharedDir, 2, 0.02).unwrap() > 0.0);
        let p = k.process().unwrap();
        let left = rump::fs::read_dir(&p, "/shared").unwrap().count();
        assert_eq!(left, 0, "every file unlinked");
        k.halt();
    }
}
