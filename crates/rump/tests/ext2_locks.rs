//! ext2's locking and per-file fsync: `fsync` of one file writes that
//! file (and the allocation metadata), not other files' dirty blocks, and
//! the file survives a crash right after it; reads of two files overlap
//! their device reads; a stat is not held up by another thread's slow
//! device read, and stats of files whose inodes are not cached overlap
//! their device reads too; writes of two files overlap their device
//! writes.

mod ext2_util;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ext2_util::*;
use rump::ext2::dev_blk::{BlockDevice, MemDevice, Registry};
use rump::sys;
use rump::sys::consts::o;
use rump::{Errno, Kernel, Process};

/// A memory device that counts writes and can make large reads slow
/// (recording how many are in flight at once).
struct TestDev {
    inner: MemDevice,
    written_bytes: AtomicU64,
    write_calls: AtomicU64,
    slow: AtomicBool,
    /// Large writes are slow too.
    slow_writes: AtomicBool,
    /// Reads at least this long are slow when `slow` is set.
    slow_min: AtomicUsize,
    delay: Duration,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    slow_reads: AtomicU64,
}

impl TestDev {
    fn new(image: Vec<u8>, delay: Duration) -> Arc<TestDev> {
        Arc::new(TestDev {
            inner: MemDevice::from_bytes(image, false),
            written_bytes: AtomicU64::new(0),
            write_calls: AtomicU64::new(0),
            slow: AtomicBool::new(false),
            slow_writes: AtomicBool::new(false),
            slow_min: AtomicUsize::new(16 << 10),
            delay,
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            slow_reads: AtomicU64::new(0),
        })
    }

    fn written(&self) -> u64 {
        self.written_bytes.load(Ordering::SeqCst)
    }

    fn contains(&self, pat: &[u8]) -> bool {
        self.inner.to_bytes().windows(pat.len()).any(|w| w == pat)
    }
}

impl BlockDevice for TestDev {
    fn sectors(&self) -> u64 {
        self.inner.sectors()
    }
    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), Errno> {
        if self.slow.load(Ordering::SeqCst) && buf.len() >= self.slow_min.load(Ordering::SeqCst) {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            self.slow_reads.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            let r = self.inner.read_blocks(lba, buf);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            return r;
        }
        self.inner.read_blocks(lba, buf)
    }
    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), Errno> {
        if self.slow_writes.load(Ordering::SeqCst)
            && buf.len() >= self.slow_min.load(Ordering::SeqCst)
        {
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        self.written_bytes
            .fetch_add(buf.len() as u64, Ordering::SeqCst);
        self.write_calls.fetch_add(1, Ordering::SeqCst);
        self.inner.write_blocks(lba, buf)
    }
    fn flush(&self) -> Result<(), Errno> {
        self.inner.flush()
    }
    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }
}

/// A fresh mke2fs image of `size` bytes with `bs`-byte blocks.
fn image(size: u64, bs: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.img");
    mke2fs(&path, size, &["-b", &bs.to_string()]);
    std::fs::read(&path).unwrap()
}

fn boot_on(dev: &Arc<TestDev>) -> (Kernel, Process) {
    let (k, p) = boot();
    Registry::of(k.raw())
        .unwrap()
        .register("/dev/t", dev.clone())
        .unwrap();
    rump::ext2::mount(&p, "/dev/t", "/mnt", false).unwrap();
    (k, p)
}

fn write_file(p: &Process, path: &[u8], data: &[u8]) -> i32 {
    let fd = sys::open(p, path, o::RDWR | o::CREAT | o::TRUNC, 0o644).unwrap();
    assert_eq!(sys::write(p, fd, data).unwrap(), data.len());
    fd
}

fn pattern(tag: &[u8], len: usize) -> Vec<u8> {
    tag.iter().copied().cycle().take(len).collect()
}

/// The image as it is on `dev` now, repaired by `e2fsck -fy` as after a
/// crash, mounted on a fresh kernel.
fn after_crash(dev: &TestDev, dir: &std::path::Path) -> (Kernel, Process, std::path::PathBuf) {
    let img = dir.join("crashed.img");
    std::fs::write(&img, dev.inner.to_bytes()).unwrap();
    repair(&img);
    let (k, p) = mount_rw(&img);
    (k, p, img)
}

#[test]
fn fsync_writes_that_file_only_and_it_survives_a_crash() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    for bs in [1024u32, 4096] {
        let dev = TestDev::new(image(8 << 20, bs), Duration::ZERO);
        let (k, p) = boot_on(&dev);
        sys::sync(&p).unwrap();
        // Partial blocks stay dirty in the buffer cache until written back.
        let a = pattern(b"fsync-me-please/", 700);
        let b = pattern(b"leave-me-alone!/", 700);
        let fa = write_file(&p, b"/mnt/a", &a);
        // Other dirty files, one in a new directory.
        let fb = write_file(&p, b"/mnt/b", &b);
        rump::fs::create_dir_all(&p, "/mnt/d").unwrap();
        let fc = write_file(&p, b"/mnt/d/c", &b);
        let before = dev.written();
        let calls = dev.write_calls.load(Ordering::SeqCst);
        sys::fsync(&p, fa).unwrap();
        let wrote = dev.written() - before;
        let calls = dev.write_calls.load(Ordering::SeqCst) - calls;
        eprintln!("bs {bs}: fsync wrote {wrote} bytes in {calls} calls");
        assert!(
            dev.contains(&a[..64]),
            "bs {bs}: a's data not on the device"
        );
        assert!(!dev.contains(&b[..64]), "bs {bs}: fsync(a) wrote b's data");
        // Data, inode table, root directory, bitmaps, descriptors: a few
        // blocks, nowhere near everything dirty.
        assert!(
            wrote <= 8 * bs as u64,
            "bs {bs}: fsync of one small file wrote {wrote} bytes"
        );
        // A crash now: a and its name are there.
        let dir = tempfile::tempdir().unwrap();
        let (k2, p2, img) = after_crash(&dev, dir.path());
        assert_eq!(rump::fs::read(&p2, "/mnt/a").unwrap(), a, "bs {bs}");
        unmount(k2, p2);
        assert_clean(&img);
        // A read updates a's access time (relatime) and nothing else:
        // fdatasync then has nothing to write.
        let mut buf = [0u8; 16];
        assert_eq!(sys::pread(&p, fa, &mut buf, 0).unwrap(), 16);
        let before = dev.written();
        sys::fdatasync(&p, fa).unwrap();
        assert_eq!(dev.written() - before, 0, "bs {bs}: fdatasync wrote");
        // fsync writes the inode.
        sys::fsync(&p, fa).unwrap();
        assert_eq!(dev.written() - before, bs as u64, "bs {bs}: fsync");
        // sync writes the rest.
        sys::sync(&p).unwrap();
        assert!(dev.contains(&b[..64]));
        for fd in [fa, fb, fc] {
            sys::close(&p, fd).unwrap();
        }
        unmount(k, p);
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("final.img");
        std::fs::write(&img, dev.inner.to_bytes()).unwrap();
        assert_clean(&img);
    }
}

/// Two large files, written and then unmounted so nothing is cached, on a
/// device whose large reads take `delay`; mounted again.
fn two_big_files(delay: Duration) -> (Arc<TestDev>, Kernel, Process, Vec<u8>, Vec<u8>) {
    let dev = TestDev::new(image(16 << 20, 4096), delay);
    let (k, p) = boot_on(&dev);
    let x: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    let y: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 241) as u8 ^ 0x5a).collect();
    for (name, data) in [(&b"/mnt/x"[..], &x), (b"/mnt/y", &y)] {
        let fd = write_file(&p, name, data);
        sys::close(&p, fd).unwrap();
    }
    unmount(k, p);
    let (k, p) = boot_on(&dev);
    dev.slow.store(true, Ordering::SeqCst);
    (dev, k, p, x, y)
}

fn read_all(p: &Process, path: &[u8], len: usize) -> Vec<u8> {
    let fd = sys::open(p, path, o::RDONLY, 0).unwrap();
    let mut buf = vec![0u8; len];
    let mut got = 0;
    while got < len {
        let n = sys::read(p, fd, &mut buf[got..]).unwrap();
        assert!(n > 0);
        got += n;
    }
    sys::close(p, fd).unwrap();
    buf
}

#[test]
fn reads_of_two_files_overlap_their_device_reads() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let (dev, k, p, x, y) = two_big_files(Duration::from_millis(100));
    let t = {
        let (q, len) = (p.clone(), y.len());
        std::thread::spawn(move || read_all(&q, b"/mnt/y", len))
    };
    let got_x = read_all(&p, b"/mnt/x", x.len());
    let got_y = t.join().unwrap();
    assert!(got_x == x, "x read back wrong");
    assert!(got_y == y, "y read back wrong");
    let max = dev.max_in_flight.load(Ordering::SeqCst);
    eprintln!(
        "slow reads {}, at most {max} at once",
        dev.slow_reads.load(Ordering::SeqCst)
    );
    assert!(max >= 2, "reads of two files never overlapped (max {max})");
    dev.slow.store(false, Ordering::SeqCst);
    unmount(k, p);
}

#[test]
fn stat_does_not_wait_for_another_threads_device_read() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let delay = Duration::from_millis(600);
    let (dev, k, p, x, _) = two_big_files(delay);
    // Warm the lookup path of y, so the stat needs no slow read.
    sys::stat(&p, b"/mnt/y").unwrap();
    let t = {
        let (q, len) = (p.clone(), x.len());
        std::thread::spawn(move || read_all(&q, b"/mnt/x", len))
    };
    let t0 = Instant::now();
    while dev.in_flight.load(Ordering::SeqCst) == 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no slow read started"
        );
        std::thread::yield_now();
    }
    let t1 = Instant::now();
    let st = sys::stat(&p, b"/mnt/y").unwrap();
    let took = t1.elapsed();
    let still_reading = dev.in_flight.load(Ordering::SeqCst) > 0;
    assert_eq!(st.size, 1 << 20);
    eprintln!("stat took {took:?} during a slow read (still reading: {still_reading})");
    assert!(
        took < delay / 3,
        "stat waited {took:?} for another thread's device read"
    );
    assert!(t.join().unwrap() == x);
    dev.slow.store(false, Ordering::SeqCst);
    unmount(k, p);
}

#[test]
fn stats_of_uncached_inodes_overlap_their_device_reads() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dev = TestDev::new(image(16 << 20, 4096), Duration::from_millis(150));
    let (k, p) = boot_on(&dev);
    for i in 0..64 {
        let fd = write_file(&p, format!("/mnt/f{i}").as_bytes(), b"x");
        sys::close(&p, fd).unwrap();
    }
    unmount(k, p);
    let (k, p) = boot_on(&dev);
    // Caches the directory and the first inode-table block; f20 and f50
    // have their inodes in two other blocks (16 inodes of 256 bytes per
    // 4 KiB block).
    sys::stat(&p, b"/mnt/f0").unwrap();
    dev.slow_min.store(0, Ordering::SeqCst);
    dev.slow.store(true, Ordering::SeqCst);
    let threads: Vec<_> = ["/mnt/f20", "/mnt/f50"]
        .into_iter()
        .map(|name| {
            let q = p.clone();
            std::thread::spawn(move || sys::stat(&q, name.as_bytes()).unwrap().ino)
        })
        .collect();
    let inos: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_ne!(inos[0] / 16, inos[1] / 16, "inodes {inos:?} share a block");
    let max = dev.max_in_flight.load(Ordering::SeqCst);
    eprintln!(
        "slow reads {}, at most {max} at once",
        dev.slow_reads.load(Ordering::SeqCst)
    );
    assert!(max >= 2, "stats of two uncached inodes never overlapped");
    dev.slow.store(false, Ordering::SeqCst);
    unmount(k, p);
}

#[test]
fn writes_of_two_files_overlap_their_device_writes() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dev = TestDev::new(image(16 << 20, 4096), Duration::from_millis(100));
    let (k, p) = boot_on(&dev);
    dev.slow_writes.store(true, Ordering::SeqCst);
    let data = |seed: u32| -> Vec<u8> {
        (0..1 << 20)
            .map(|i: u32| (i % 249) as u8 ^ seed as u8)
            .collect()
    };
    let threads: Vec<_> = [1u32, 2]
        .into_iter()
        .map(|seed| {
            let (q, d) = (p.clone(), data(seed));
            std::thread::spawn(move || {
                let name = format!("/mnt/w{seed}");
                let fd = write_file(&q, name.as_bytes(), &d);
                sys::close(&q, fd).unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    dev.slow_writes.store(false, Ordering::SeqCst);
    let max = dev.max_in_flight.load(Ordering::SeqCst);
    eprintln!("at most {max} large writes at once");
    assert!(max >= 2, "writes of two files never overlapped");
    unmount(k, p);
    let (k, p) = boot_on(&dev);
    for seed in [1u32, 2] {
        let got = read_all(&p, format!("/mnt/w{seed}").as_bytes(), 1 << 20);
        assert!(got == data(seed), "w{seed} read back wrong");
        assert_eq!(
            sys::stat(&p, format!("/mnt/w{seed}").as_bytes())
                .unwrap()
                .size,
            1 << 20
        );
    }
    unmount(k, p);
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("w.img");
    std::fs::write(&img, dev.inner.to_bytes()).unwrap();
    assert_clean(&img);
}

/// xorshift64*, one per thread.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

/// Threads writing, reading back, truncating and fsyncing their own
/// files (checked against a model), reading each other's, and creating,
/// stat'ing, listing and unlinking in a shared directory, on a mount with
/// a tiny buffer cache (so misses, fetches outside the lock, evictions
/// and write-back happen all the time). Every read of an own file matches
/// the model, and the image is e2fsck-clean afterwards.
#[test]
fn mixed_threads_on_a_tiny_cache_stay_consistent() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    for bs in [1024u32, 4096] {
        let dev = TestDev::new(image(32 << 20, bs), Duration::ZERO);
        let (k, p) = boot();
        Registry::of(k.raw())
            .unwrap()
            .register("/dev/t", dev.clone())
            .unwrap();
        rump::fs::create_dir_all(&p, "/mnt").unwrap();
        sys::mount(&p, b"/dev/t", b"/mnt", b"ext2", 0, b"cache=64k").unwrap();
        rump::fs::create_dir_all(&p, "/mnt/shared").unwrap();
        const THREADS: u64 = 4;
        const MAX: u64 = 300 << 10;
        let workers: Vec<_> = (0..THREADS)
            .map(|t| {
                let q = p.clone();
                std::thread::spawn(move || {
                    let mut rng = Rng((t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ bs as u64);
                    let own = format!("/mnt/own{t}");
                    let fd = sys::open(&q, own.as_bytes(), o::RDWR | o::CREAT, 0o644).unwrap();
                    let mut model: Vec<u8> = Vec::new();
                    for i in 0..800u64 {
                        match rng.below(10) {
                            0..=3 => {
                                let off = rng.below(MAX) as usize;
                                let len = 1 + rng.below(70_000) as usize;
                                let byte = (i as u8) ^ (t as u8 * 17);
                                let data: Vec<u8> =
                                    (0..len).map(|j| byte.wrapping_add(j as u8)).collect();
                                assert_eq!(sys::pwrite(&q, fd, &data, off as i64).unwrap(), len);
                                if model.len() < off + len {
                                    model.resize(off + len, 0);
                                }
                                model[off..off + len].copy_from_slice(&data);
                            }
                            4..=5 => {
                                let off = rng.below(model.len() as u64 + 1) as usize;
                                let mut buf = vec![0u8; 1 + rng.below(90_000) as usize];
                                let n = sys::pread(&q, fd, &mut buf, off as i64).unwrap();
                                let want = &model[off..(off + buf.len()).min(model.len())];
                                assert_eq!(n, want.len(), "t{t} i{i} bs {bs}");
                                assert!(&buf[..n] == want, "t{t} i{i} bs {bs}: data differs");
                            }
                            6 => {
                                let len = rng.below(model.len() as u64 + 4096) as usize;
                                sys::ftruncate(&q, fd, len as i64).unwrap();
                                model.resize(len, 0);
                            }
                            7 => {
                                if rng.below(4) == 0 {
                                    sys::fsync(&q, fd).unwrap();
                                }
                                let other = format!("/mnt/own{}", rng.below(THREADS));
                                if let Ok(ofd) = sys::open(&q, other.as_bytes(), o::RDONLY, 0) {
                                    let mut buf = vec![0u8; 64 << 10];
                                    sys::pread(&q, ofd, &mut buf, rng.below(MAX) as i64).unwrap();
                                    sys::close(&q, ofd).unwrap();
                                }
                            }
                            _ => {
                                let name = format!("/mnt/shared/f{}", rng.below(40));
                                match rng.below(3) {
                                    0 => {
                                        if let Ok(sfd) = sys::open(
                                            &q,
                                            name.as_bytes(),
                                            o::WRONLY | o::CREAT,
                                            0o644,
                                        ) {
                                            let _ = sys::write(&q, sfd, &vec![t as u8; 3000]);
                                            sys::close(&q, sfd).unwrap();
                                        }
                                    }
                                    1 => {
                                        let _ = sys::unlink(&q, name.as_bytes());
                                    }
                                    _ => {
                                        let _ = sys::stat(&q, name.as_bytes());
                                        let n =
                                            rump::fs::read_dir(&q, "/mnt/shared").unwrap().count();
                                        assert!(n <= 40);
                                    }
                                }
                            }
                        }
                    }
                    let st = sys::fstat(&q, fd).unwrap();
                    assert_eq!(st.size, model.len() as u64, "t{t} bs {bs}");
                    sys::close(&q, fd).unwrap();
                    model
                })
            })
            .collect();
        let models: Vec<Vec<u8>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        eprintln!(
            "bs {bs}: file sizes {:?}, {} bytes written",
            models.iter().map(Vec::len).collect::<Vec<_>>(),
            dev.written()
        );
        unmount(k, p);
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("mixed.img");
        std::fs::write(&img, dev.inner.to_bytes()).unwrap();
        assert_clean(&img);
        let (k, p) = mount_rw(&img);
        for (t, model) in models.iter().enumerate() {
            let got = rump::fs::read(&p, format!("/mnt/own{t}")).unwrap();
            assert!(&got == model, "own{t} after remount, bs {bs}");
        }
        unmount(k, p);
    }
}
