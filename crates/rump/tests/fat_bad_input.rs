//! Hostile FAT images: random bit flips and byte writes over the boot
//! sector, FSInfo, the FATs and directories of a small FAT16 and FAT32
//! image (proptest) are mounted, walked and written to; nothing may
//! panic or hang, a refused mount says EINVAL, EIO or EUCLEAN with a log
//! line, and `fsck.fat -n` still runs on what we leave. Then the classic
//! corruptions one by one: a cluster loop, a chain past the end of the
//! volume, a directory entry pointing outside it, a bad BPB, and probes
//! that must not claim other formats.

mod fat_util;

use std::collections::BTreeSet;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use fat_util::{fsck, have_dosfstools};
use proptest::prelude::*;
use rump::ext2::dev_blk::{MemDevice, Registry};
use rump::fat::fs_fat::format::{BootSectorPacket, BootSectorRepr, FatType, Geometry};
use rump::fat::MkfsOptions;
use rump::hyper_posix::observed::Observed;
use rump::sys;
use rump::sys::consts::o;
use rump::{Errno, Process};

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
    Errno::EROFS,
    Errno::EBUSY,
    Errno::EPERM,
];

/// A kernel with FAT whose console is captured, `image` registered as
/// `/dev/m` (writable) and an empty `/mnt`.
fn kernel_with_image(
    image: Vec<u8>,
) -> (rump::Kernel, Process, Arc<Mutex<String>>, Arc<MemDevice>) {
    let lines = Arc::new(Mutex::new(String::new()));
    let sink = lines.clone();
    let log = Observed::new()
        .on_console(move |b| sink.lock().unwrap().push_str(&String::from_utf8_lossy(b)));
    let k = rump::Kernel::builder()
        .platform(Arc::new(log))
        .fat()
        .boot()
        .unwrap();
    let p = k.process().unwrap();
    let dev = Arc::new(MemDevice::from_bytes(image, false));
    Registry::of(k.raw())
        .unwrap()
        .register("/dev/m", dev.clone())
        .unwrap();
    rump::fs::create_dir(&p, "/mnt").unwrap();
    (k, p, lines, dev)
}

/// A small volume with a bit of everything, made by our own mkfs and
/// driver (no host tools needed).
fn base_image(ty: FatType, sectors: u64) -> Vec<u8> {
    let dev = MemDevice::new(sectors);
    rump::fat::fs_fat::mkfs::format(
        &dev,
        &MkfsOptions {
            fat_type: Some(ty),
            sectors_per_cluster: Some(1),
            ..Default::default()
        },
    )
    .unwrap();
    let (k, p, _, dev) = kernel_with_image(dev.to_bytes());
    sys::mount(&p, b"/dev/m", b"/mnt", b"msdos", 0, b"").unwrap();
    rump::fs::create_dir_all(&p, "/mnt/a/b/c").unwrap();
    for i in 0..30 {
        rump::fs::write(
            &p,
            format!("/mnt/a/File number {i}"),
            vec![i as u8; i * 300],
        )
        .unwrap();
    }
    rump::fs::write(&p, "/mnt/a/b/LOOP.BIN", vec![9u8; 3 * 512]).unwrap();
    rump::fs::write(&p, "/mnt/TOP.TXT", b"top").unwrap();
    sys::umount2(&p, b"/mnt", 0).unwrap();
    k.halt();
    dev.to_bytes()
}

fn check(r: Result<(), Errno>, what: &str, seen: &mut BTreeSet<i32>) {
    if let Err(e) = r {
        assert!(OK_ERRORS.contains(&e), "{what}: unexpected {e:?}");
        seen.insert(e.raw());
    }
}

fn io(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap())
}

fn walk(p: &Process, path: &str, depth: usize, seen: &mut BTreeSet<u64>, errs: &mut BTreeSet<i32>) {
    if depth > 20 || seen.len() > 3000 {
        return;
    }
    let st = match sys::lstat(p, path.as_bytes()) {
        Ok(st) => st,
        Err(e) => return check(Err(e), path, errs),
    };
    if st.mode & 0o170000 == 0o040000 {
        if !seen.insert(st.ino) {
            return;
        }
        let names: Vec<String> = match rump::fs::read_dir(p, path) {
            Ok(d) => {
                let mut v = Vec::new();
                for e in d.take(2000) {
                    match e {
                        Ok(e) => v.push(String::from_utf8_lossy(e.name_bytes()).into_owned()),
                        Err(e) => {
                            check(Err(io(e)), path, errs);
                            break;
                        }
                    }
                }
                v
            }
            Err(e) => return check(Err(io(e)), path, errs),
        };
        for n in names {
            walk(p, &format!("{path}/{n}"), depth + 1, seen, errs);
        }
    } else {
        let r = sys::open(p, path.as_bytes(), o::RDONLY, 0).and_then(|fd| {
            let mut buf = vec![0u8; 64 * 1024];
            let r = sys::read(p, fd, &mut buf).map(|_| ());
            sys::close(p, fd)?;
            r
        });
        check(r, path, errs);
    }
}

/// Mounts, walks, writes and unmounts a (damaged) image; returns what
/// is left on the device.
fn exercise(image: Vec<u8>) -> Vec<u8> {
    let (k, p, lines, dev) = kernel_with_image(image);
    let mut errs = BTreeSet::new();
    match sys::mount(&p, b"/dev/m", b"/mnt", b"auto", 0, b"") {
        Ok(()) => {}
        Err(e) => {
            assert!(
                [Errno::EINVAL, Errno::EIO, Errno::EUCLEAN, Errno::ENODEV].contains(&e),
                "mount refused with {e:?}"
            );
            if e != Errno::ENODEV {
                assert!(
                    lines.lock().unwrap().contains("fat: /dev/m: "),
                    "mount refused with {e:?} without a log line"
                );
            }
            k.halt();
            return dev.to_bytes();
        }
    }
    let mut seen = BTreeSet::new();
    walk(&p, "/mnt", 0, &mut seen, &mut errs);
    check(
        rump::fs::write(&p, "/mnt/new file", vec![1u8; 20_000]).map_err(io),
        "write",
        &mut errs,
    );
    check(sys::mkdir(&p, b"/mnt/newdir", 0o755), "mkdir", &mut errs);
    check(
        sys::rename(&p, b"/mnt/a/File number 3", b"/mnt/newdir/f3"),
        "rename",
        &mut errs,
    );
    check(
        sys::unlink(&p, b"/mnt/a/File number 4"),
        "unlink",
        &mut errs,
    );
    check(
        sys::truncate(&p, b"/mnt/a/b/LOOP.BIN", 100),
        "truncate",
        &mut errs,
    );
    check(
        rump::fs::remove_dir_all(&p, "/mnt/a/b").map_err(io),
        "rm -r",
        &mut errs,
    );
    check(sys::umount2(&p, b"/mnt", 0), "umount", &mut errs);
    if errs.contains(&Errno::EUCLEAN.raw()) {
        assert!(
            lines.lock().unwrap().contains("fat: /dev/m: "),
            "EUCLEAN without a log line"
        );
    }
    drop(p);
    k.halt();
    dev.to_bytes()
}

/// Runs `exercise` on another thread: a hang fails the test.
fn exercise_bounded(image: Vec<u8>) -> Vec<u8> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(exercise(image));
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang on a damaged image"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("panic on a damaged image"),
    }
}

fn geometry(img: &[u8]) -> Geometry {
    let r = BootSectorRepr::parse(&BootSectorPacket::new_checked(&img[..512]).unwrap()).unwrap();
    Geometry::new(&r).unwrap()
}

/// Byte ranges worth damaging: boot sector and FSInfo, the start of
/// each FAT, the root directory and the first directory clusters.
fn interesting(img: &[u8]) -> Vec<std::ops::Range<usize>> {
    let g = geometry(img);
    let bps = g.bytes_per_sector as usize;
    let fat0 = g.fat_start as usize * bps;
    let fat1 = (g.fat_start + g.fat_sectors) as usize * bps;
    let data = g.data_start as usize * bps;
    vec![
        0..1024,
        fat0..fat0 + 1024,
        fat1..fat1 + 256,
        g.root_start as usize * bps..data + 8 * bps,
    ]
}

static BASES: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();

fn bases() -> &'static [Vec<u8>; 2] {
    BASES.get_or_init(|| {
        [
            base_image(FatType::Fat16, 9000),
            base_image(FatType::Fat32, 70_000),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 150, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutations_give_errors_not_panics(
        which in 0usize..2,
        flips in proptest::collection::vec((0usize..4, any::<u16>(), any::<u8>(), any::<bool>()), 1..12),
    ) {
        let mut img = bases()[which].clone();
        let ranges = interesting(&img);
        for (r, off, val, is_bit) in flips {
            let range = &ranges[r];
            let at = range.start + off as usize % range.len();
            if is_bit {
                img[at] ^= 1 << (val % 8);
            } else {
                img[at] = val;
            }
        }
        let left = exercise_bounded(img);
        if have_dosfstools() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("left.img");
            std::fs::write(&path, left).unwrap();
            // fsck.fat must still be able to look at what we left.
            let (code, out) = fsck(&path);
            prop_assert!(code >= 0, "fsck.fat died: {}", out);
        }
    }
}

/// The slot offset of the short entry `name` (11 bytes) anywhere in the
/// directory areas of `img`.
fn find_entry(img: &[u8], name: &[u8; 11]) -> usize {
    let g = geometry(img);
    let start = g.root_start as usize * g.bytes_per_sector as usize;
    (start..img.len() - 32)
        .step_by(32)
        .find(|&o| &img[o..o + 11] == name && img[o + 11] & 0x0F != 0x0F)
        .expect("entry in the image")
}

fn fat16_set(img: &mut [u8], c: u32, v: u16) {
    let g = geometry(img);
    for copy in 0..g.num_fats {
        let off = (g.fat_start + copy * g.fat_sectors) as usize * 512 + c as usize * 2;
        img[off..off + 2].copy_from_slice(&v.to_le_bytes());
    }
}

fn first_cluster(img: &[u8], entry: usize) -> u32 {
    (u16::from_le_bytes([img[entry + 20], img[entry + 21]]) as u32) << 16
        | u16::from_le_bytes([img[entry + 26], img[entry + 27]]) as u32
}

/// Reads `/mnt/a/b/LOOP.BIN` of a damaged image: the errno and the log.
fn read_loop_file(img: Vec<u8>) -> (Result<Vec<u8>, Errno>, String) {
    let (k, p, lines, _) = kernel_with_image(img);
    sys::mount(
        &p,
        b"/dev/m",
        b"/mnt",
        b"msdos",
        sys::consts::ms::RDONLY,
        b"",
    )
    .unwrap();
    let r = rump::fs::read(&p, "/mnt/a/b/LOOP.BIN").map_err(io);
    let _ = sys::umount2(&p, b"/mnt", 0);
    k.halt();
    let l = lines.lock().unwrap().clone();
    (r, l)
}

#[test]
fn cluster_loop_and_chain_past_the_end() {
    let base = bases()[0].clone();
    let e = find_entry(&base, b"LOOP    BIN");
    let c = first_cluster(&base, e);
    assert_eq!(read_loop_file(base.clone()).0.unwrap(), vec![9u8; 1536]);

    let mut img = base.clone();
    fat16_set(&mut img, c + 2, c as u16); // last -> first
    let (r, log) = read_loop_file(img);
    assert_eq!(r, Err(Errno::EUCLEAN));
    assert!(log.contains("loops"), "{log}");

    let mut img = base.clone();
    fat16_set(&mut img, c + 1, 0xFFF0); // beyond the volume
    let (r, log) = read_loop_file(img);
    assert_eq!(r, Err(Errno::EUCLEAN));
    assert!(log.contains("beyond the end"), "{log}");

    let mut img = base.clone();
    fat16_set(&mut img, c + 1, 0); // free inside the chain
    let (r, log) = read_loop_file(img);
    assert_eq!(r, Err(Errno::EUCLEAN));
    assert!(log.contains("free inside a chain"), "{log}");

    let mut img = base;
    img[e + 26..e + 28].copy_from_slice(&0xFFF0u16.to_le_bytes()); // entry points outside
    let (r, log) = read_loop_file(img);
    assert_eq!(r, Err(Errno::EUCLEAN));
    assert!(log.contains("beyond the volume"), "{log}");
}

#[test]
fn bad_boot_sectors_are_refused_with_a_reason() {
    let base = bases()[1].clone();
    for (off, val, why) in [
        (11usize, 0x03u8, "bytes per sector"),
        (13, 0x03, "sectors per cluster"),
        (16, 0, "number of FATs"),
        (14, 0, "reserved sectors"),
        (21, 0x12, "media descriptor"),
    ] {
        let mut img = base.clone();
        img[off] = val;
        if off == 14 {
            img[15] = 0;
        }
        let (k, p, lines, _) = kernel_with_image(img);
        let r = sys::mount(&p, b"/dev/m", b"/mnt", b"msdos", 0, b"");
        assert_eq!(r, Err(Errno::EINVAL), "{why}");
        assert!(
            lines.lock().unwrap().contains(why),
            "{why}: {}",
            lines.lock().unwrap()
        );
        // Nor does the probe claim it.
        assert_eq!(
            sys::mount(&p, b"/dev/m", b"/mnt", b"auto", 0, b""),
            Err(Errno::ENODEV)
        );
        k.halt();
    }
}

#[test]
fn probe_claims_fat_and_nothing_else() {
    // FAT is found by mount -t auto.
    let (k, p, _, _) = kernel_with_image(bases()[0].clone());
    sys::mount(
        &p,
        b"/dev/m",
        b"/mnt",
        b"auto",
        sys::consts::ms::RDONLY,
        b"",
    )
    .unwrap();
    assert_eq!(rump::fs::read(&p, "/mnt/top.txt").unwrap(), b"top");
    sys::umount2(&p, b"/mnt", 0).unwrap();
    k.halt();
    // An ISO 9660-like image (zero system area, a volume descriptor at
    // 32 KiB) and an ext2-like one (zero boot block) are not FAT.
    let mut iso = vec![0u8; 1 << 20];
    iso[32768..32774].copy_from_slice(b"\x01CD001");
    let mut ext2 = vec![0u8; 1 << 20];
    ext2[1024 + 56..1024 + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
    // A boot sector signature on random-looking data is not enough.
    let mut junk: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    junk[510] = 0x55;
    junk[511] = 0xAA;
    junk[0] = 0xEB;
    junk[2] = 0x90;
    for img in [iso, ext2, junk] {
        assert!(!rump::fat::fs_fat::probe_boot_sector(
            &img[..512],
            img.len() as u64
        ));
    }
}
