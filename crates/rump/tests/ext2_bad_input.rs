//! Hostile images: 1,000 deterministic mutations of a small ext2 image
//! (random bytes in the superblock, group descriptors, bitmaps, inodes,
//! directory and indirect blocks) are mounted, walked and written to.
//! Nothing may panic or hang, and a refused mount says EINVAL, EIO or
//! EUCLEAN.

mod ext2_util;

use std::collections::BTreeSet;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use ext2_util::*;
use rump::ext2::dev_blk::{MemDevice, Registry};
use rump::hyper_posix::observed::Observed;
use rump::sys;
use rump::sys::consts::o;
use rump::{Errno, Process};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// A small image with a bit of everything, made by our own mkfs and
/// driver so the test needs no host tools.
fn base_image() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("base.img");
    newfs(&img, 1 << 20, 1024);
    let (k, p) = mount_rw(&img);
    rump::fs::create_dir_all(&p, "/mnt/a/b/c").unwrap();
    for i in 0..30 {
        rump::fs::write(&p, format!("/mnt/a/f{i}"), vec![i as u8; i * 50]).unwrap();
    }
    rump::fs::write(&p, "/mnt/a/b/ind", vec![9u8; 40 * 1024]).unwrap();
    rump::fs::symlink(&p, "a/f1", "/mnt/fast").unwrap();
    rump::fs::symlink(&p, "s".repeat(100), "/mnt/slow").unwrap();
    rump::fs::hard_link(&p, "/mnt/a/f2", "/mnt/a/b/c/hard").unwrap();
    sys::mknod(&p, b"/mnt/fifo", 0o010644, 0).unwrap();
    unmount(k, p);
    std::fs::read(&img).unwrap()
}

const OK_ERRORS: &[Errno] = &[
    Errno::EIO,
    Errno::EINVAL,
    Errno::EUCLEAN,
    Errno::ENOENT,
    Errno::ENOTDIR,
    Errno::EISDIR,
    Errno::ENOSPC,
    Errno::EEXIST,
    Errno::EFBIG,
    Errno::ENOTEMPTY,
    Errno::ENAMETOOLONG,
    Errno::ELOOP,
    Errno::EMLINK,
    Errno::EROFS,
    Errno::EXDEV,
    Errno::EBUSY,
];

fn check(r: Result<(), Errno>, what: &str, seen: &mut BTreeSet<i32>) {
    if let Err(e) = r {
        assert!(OK_ERRORS.contains(&e), "{what}: unexpected {e:?}");
        seen.insert(e.raw());
    }
}

/// Reads every file (at most 64 KiB of each), lists every directory,
/// reads every link; guards against directory cycles.
fn walk(
    p: &Process,
    path: &str,
    depth: usize,
    seen_ino: &mut BTreeSet<u64>,
    errs: &mut BTreeSet<i32>,
) {
    if depth > 20 || seen_ino.len() > 5000 {
        return;
    }
    let st = match sys::lstat(p, path.as_bytes()) {
        Ok(st) => st,
        Err(e) => return check(Err(e), path, errs),
    };
    match st.mode & 0o170000 {
        0o040000 => {
            if !seen_ino.insert(st.ino) {
                return;
            }
            let entries = match rump::fs::read_dir(p, path) {
                Ok(d) => d,
                Err(e) => return check(Err(Errno(e.raw_os_error().unwrap())), path, errs),
            };
            let mut names = Vec::new();
            for e in entries.take(2000) {
                match e {
                    Ok(e) => names.push(String::from_utf8_lossy(e.name_bytes()).into_owned()),
                    Err(e) => {
                        check(Err(Errno(e.raw_os_error().unwrap())), path, errs);
                        break;
                    }
                }
            }
            for n in names {
                if n.contains('/') || n.is_empty() {
                    continue;
                }
                walk(p, &format!("{path}/{n}"), depth + 1, seen_ino, errs);
            }
        }
        0o100000 => {
            let r = sys::open(p, path.as_bytes(), o::RDONLY, 0).and_then(|fd| {
                let mut buf = vec![0u8; 64 * 1024];
                let r = sys::read(p, fd, &mut buf).map(|_| ());
                sys::close(p, fd)?;
                r
            });
            check(r, path, errs);
        }
        0o120000 => check(sys::readlink(p, path.as_bytes()).map(|_| ()), path, errs),
        _ => {}
    }
}

fn exercise(image: Vec<u8>, all_errs: &mut BTreeSet<i32>) {
    let mut errs = BTreeSet::new();
    exercise_into(image, &mut errs);
    all_errs.extend(errs);
}

fn exercise_into(image: Vec<u8>, errs: &mut BTreeSet<i32>) {
    let (k, p, lines) = kernel_with_image(image);
    match sys::mount(&p, b"/dev/m", b"/mnt", b"ext2", 0, b"") {
        Ok(()) => {}
        Err(e) => {
            assert!(
                [Errno::EINVAL, Errno::EIO, Errno::EUCLEAN].contains(&e),
                "mount refused with {e:?}"
            );
            assert!(
                lines.lock().unwrap().contains("ext2: /dev/m: "),
                "mount refused with {e:?} without a log line"
            );
            errs.insert(e.raw());
            return;
        }
    }
    let mut seen = BTreeSet::new();
    walk(&p, "/mnt", 0, &mut seen, errs);
    // Writes on the damaged file system.
    check(
        rump::fs::write(&p, "/mnt/new", vec![1u8; 20_000])
            .map_err(|e| Errno(e.raw_os_error().unwrap())),
        "write",
        errs,
    );
    check(sys::mkdir(&p, b"/mnt/newdir", 0o755), "mkdir", errs);
    check(
        sys::rename(&p, b"/mnt/a/f3", b"/mnt/newdir/f3"),
        "rename",
        errs,
    );
    check(sys::unlink(&p, b"/mnt/a/f4"), "unlink", errs);
    check(sys::truncate(&p, b"/mnt/a/b/ind", 100), "truncate", errs);
    check(
        rump::fs::remove_dir_all(&p, "/mnt/a/b").map_err(|e| Errno(e.raw_os_error().unwrap())),
        "rm -r",
        errs,
    );
    check(sys::umount2(&p, b"/mnt", 0), "umount", errs);
    if errs.contains(&Errno::EUCLEAN.raw()) {
        assert!(
            lines.lock().unwrap().contains("ext2: /dev/m: "),
            "EUCLEAN without a log line"
        );
    }
    drop(p);
    k.halt();
}

#[test]
fn ext2_bad_input_1000_mutations() {
    let base = base_image();
    // Blocks worth mutating: those that are not all zeros (metadata,
    // directories, indirect blocks, a little data).
    let interesting: Vec<usize> = (0..base.len() / 1024)
        .filter(|&b| b >= 1 && base[b * 1024..(b + 1) * 1024].iter().any(|&x| x != 0))
        .collect();
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        let mut errs = BTreeSet::new();
        for i in 0..1000u64 {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (i + 1).wrapping_mul(0x1234_5678_9ABC_DEF1));
            let mut img = base.clone();
            let n = 1 + rng.below(8);
            for _ in 0..n {
                let blk = if rng.below(5) == 0 {
                    1 // the superblock
                } else {
                    interesting[rng.below(interesting.len() as u64) as usize]
                };
                let off = blk * 1024 + rng.below(1024) as usize;
                img[off] = match rng.below(4) {
                    0 => 0,
                    1 => 0xFF,
                    2 => img[off] ^ (1 << rng.below(8)),
                    _ => rng.next() as u8,
                };
            }
            exercise(img, &mut errs);
            tx.send(i).unwrap();
        }
        errs
    });
    for i in 0..1000 {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(_) => {}
            Err(_) => panic!("mutation {i} hung or panicked"),
        }
    }
    let errs = worker.join().expect("a mutation panicked");
    // The corruption was noticed, not silently accepted everywhere.
    assert!(
        errs.contains(&Errno::EUCLEAN.raw()) || errs.contains(&Errno::EINVAL.raw()),
        "{errs:?}"
    );
}

/// A block bitmap that marks the inode table free: allocation refuses
/// those blocks with EUCLEAN and a log line instead of handing them out.
#[test]
fn allocation_refuses_metadata_a_bitmap_marks_free() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("meta.img");
    newfs(&img, 1 << 20, 1024);
    let mut image = std::fs::read(&img).unwrap();
    // 1 KiB blocks: descriptors in block 2; the first says where group 0's
    // block bitmap and inode table are.
    let rd = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    let gd = 2 * 1024;
    let (bbm, itab) = (rd(&image, gd) as usize, rd(&image, gd + 8) as usize);
    let ipg = rd(&image, 1024 + 40) as usize;
    let isz = u16::from_le_bytes([image[1024 + 88], image[1024 + 89]]) as usize;
    let itable_blocks = (ipg * isz).div_ceil(1024);
    // Bit n of the bitmap is block 1 + n (first data block 1).
    for blk in itab..itab + itable_blocks {
        let bit = blk - 1;
        image[bbm * 1024 + bit / 8] &= !(1 << (bit % 8));
    }
    let (_k, p, lines) = kernel_with_image(image);
    sys::mount(&p, b"/dev/m", b"/mnt", b"ext2", 0, b"").unwrap();
    let fd = sys::open(&p, b"/mnt/f", o::WRONLY | o::CREAT, 0o644).unwrap();
    assert_eq!(sys::write(&p, fd, &[7u8; 4096]), Err(Errno::EUCLEAN));
    assert!(
        lines.lock().unwrap().contains("marks metadata block"),
        "no log line: {}",
        lines.lock().unwrap()
    );
    sys::close(&p, fd).unwrap();
    let _ = sys::umount2(&p, b"/mnt", 0);
}

/// A kernel with ext2 whose console is captured (so a test can check that
/// every refusal is explained by a log line), `image` registered as
/// `/dev/m` (writable) and an empty `/mnt`.
fn kernel_with_image(image: Vec<u8>) -> (rump::Kernel, rump::Process, Arc<Mutex<String>>) {
    let lines = Arc::new(Mutex::new(String::new()));
    let sink = lines.clone();
    let log = Observed::new()
        .on_console(move |b| sink.lock().unwrap().push_str(&String::from_utf8_lossy(b)));
    let k = rump::Kernel::builder()
        .platform(Arc::new(log))
        .ext2()
        .boot()
        .unwrap();
    let p = k.process().unwrap();
    Registry::of(k.raw())
        .unwrap()
        .register("/dev/m", Arc::new(MemDevice::from_bytes(image, false)))
        .unwrap();
    rump::fs::create_dir(&p, "/mnt").unwrap();
    (k, p, lines)
}
