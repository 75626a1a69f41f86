//! Hash-indexed directories (`dir_index`, htree): images whose big
//! directories e2fsck (`-fD`) or Linux's own driver indexed are mounted
//! through rump on a device that counts reads. Every name is found with
//! the inode debugfs reports, absent names give ENOENT, and one lookup
//! reads a handful of blocks of a directory of hundreds. The name hashes
//! agree with `debugfs dx_hash`; a collision run split across leaves is
//! followed; a damaged index (chosen damage to every field, and random
//! bytes of the root and nodes) still gives right answers (a linear
//! search, one log line); and directories we modify pass `e2fsck -fn`.
//!
//! Timings of a full pass of lookups (index, and the linear fallback that
//! is the old behaviour) are printed, not asserted: run with
//! `--nocapture` to see them.

mod ext2_util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use ext2_util::*;
use rump::ext2::dev_blk::{BlockDevice, MemDevice, Registry};
use rump::ext2::fs_ext2::dirhash::{dirhash, HashVersion};
use rump::hyper_posix::observed::Observed;
use rump::{sys, Errno, Process};

/// What the log says when a lookup gives up on an index.
const FALLBACK_LINE: &str = "hash index unusable";

// ----- fixtures ------------------------------------------------------------------

/// An image holding `/big`, an indexed directory, and what the host tools
/// say about it.
struct Fixture {
    /// Keeps the image file for debugfs.
    _dir: tempfile::TempDir,
    path: PathBuf,
    image: Vec<u8>,
    bs: usize,
    names: Vec<String>,
    /// Inode of each name in `/big`, from `debugfs ls -p`.
    inos: BTreeMap<String, u64>,
    /// Physical block of `/big`'s logical block 0 (the dx_root).
    root_pblk: u64,
    /// Blocks in `/big`.
    dir_blocks: u64,
    /// `dx_root_info.indirect_levels`.
    levels: u8,
}

/// How to build one.
struct Spec {
    bs: u32,
    /// `s_def_hash_version` before e2fsck indexes (None: mke2fs's).
    hash: Option<&'static str>,
    /// `s_flags`: 1 signed, 2 unsigned hashes.
    flags: u32,
    files: usize,
    names: fn(usize) -> String,
    /// Indexed by Linux through a loop mount instead of `e2fsck -fD`.
    linux: bool,
}

fn plain_name(i: usize) -> String {
    format!("f{i:05}_{}", "x".repeat(i % 40))
}

fn fancy_name(i: usize) -> String {
    if i.is_multiple_of(2) {
        format!("\u{e9}{i:05}\u{fc}{}", "\u{20ac}".repeat(i % 5))
    } else {
        format!("plain-{i}")
    }
}

/// 1 KiB blocks, half-MD4 (mke2fs's default), signed: two index levels.
fn fixture_md4() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        build(&Spec {
            bs: 1024,
            hash: None,
            flags: 1,
            files: 20_000,
            names: plain_name,
            linux: false,
        })
    })
    .as_ref()
}

/// 4 KiB blocks, TEA, unsigned, names with bytes >= 0x80: one level.
fn fixture_tea() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        build(&Spec {
            bs: 4096,
            hash: Some("tea"),
            flags: 2,
            files: 20_000,
            names: fancy_name,
            linux: false,
        })
    })
    .as_ref()
}

/// 2 KiB blocks, the legacy hash, signed.
fn fixture_legacy() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        build(&Spec {
            bs: 2048,
            hash: Some("legacy"),
            flags: 1,
            files: 5_000,
            names: fancy_name,
            linux: false,
        })
    })
    .as_ref()
}

/// Indexed by Linux's driver as it created the files (root only).
fn fixture_linux() -> Option<&'static Fixture> {
    static F: OnceLock<Option<Fixture>> = OnceLock::new();
    F.get_or_init(|| {
        if !can_loop_mount() {
            return None;
        }
        build(&Spec {
            bs: 1024,
            hash: None,
            flags: 1,
            files: 20_000,
            names: plain_name,
            linux: true,
        })
    })
    .as_ref()
}

fn build(spec: &Spec) -> Option<Fixture> {
    if !have_e2fsprogs() || !have("debugfs") || !have("dumpe2fs") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("htree.img");
    let names: Vec<String> = (0..spec.files).map(spec.names).collect();
    let bs = spec.bs.to_string();
    let mut args = vec!["-b", &bs, "-O", "dir_index", "-N", "30000"];
    if spec.linux {
        mke2fs(&path, 32 << 20, &args);
        let m = LoopMount::new(&path, &dir.path().join("m"), false);
        std::fs::create_dir(m.dir.join("big")).unwrap();
        for n in &names {
            std::fs::File::create(m.dir.join("big").join(n)).unwrap();
        }
        drop(m);
    } else {
        let src = dir.path().join("src");
        std::fs::create_dir_all(src.join("big")).unwrap();
        for n in &names {
            std::fs::File::create(src.join("big").join(n)).unwrap();
        }
        let src = src.to_str().unwrap().to_owned();
        args.extend(["-d", &src]);
        mke2fs(&path, 32 << 20, &args);
        // mke2fs -d (1.47) leaves directories linear; e2fsck -D indexes
        // them with the default hash and signedness.
        let mut cmds = vec![format!("ssv flags {}", spec.flags)];
        if let Some(h) = spec.hash {
            cmds.push(format!("ssv def_hash_version {h}"));
        }
        debugfs_w(&path, &cmds);
        let out = Command::new("e2fsck")
            .args(["-f", "-y", "-D"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.code().unwrap_or(8) <= 1,
            "e2fsck -fyD: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let sb = Command::new("dumpe2fs")
        .arg("-h")
        .arg(&path)
        .output()
        .unwrap();
    let sb = String::from_utf8_lossy(&sb.stdout);
    assert!(
        sb.lines()
            .any(|l| l.starts_with("Filesystem features:") && l.contains("dir_index")),
        "dumpe2fs -h shows no dir_index:\n{sb}"
    );
    let htree = debugfs(&path, &["htree /big".into()]);
    assert!(
        htree.contains("Root node dump"),
        "/big is not indexed:\n{}",
        &htree[..htree.len().min(2000)]
    );
    let levels: u8 = field(&htree, "Indirect levels:").parse().unwrap();
    let mut inos = BTreeMap::new();
    for line in debugfs(&path, &["ls -p /big".into()]).lines() {
        let parts: Vec<&str> = line.split('/').collect();
        // Skip ".", ".." and the empty entries of index blocks.
        if parts.len() >= 7 && !matches!(parts[5], "" | "." | "..") {
            inos.insert(parts[5].to_owned(), parts[1].parse::<u64>().unwrap());
        }
    }
    let extra: Vec<_> = inos.keys().filter(|k| !names.contains(k)).collect();
    assert!(
        inos.len() == names.len() && extra.is_empty(),
        "debugfs ls -p /big: {} names, extra {extra:?}",
        inos.len()
    );
    let root_pblk: u64 = debugfs(&path, &["bmap /big 0".into()])
        .lines()
        .find_map(|l| l.trim().parse().ok())
        .expect("bmap /big 0");
    let size: u64 = field(&debugfs(&path, &["stat /big".into()]), "Size:")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let image = std::fs::read(&path).unwrap();
    Some(Fixture {
        _dir: dir,
        path,
        image,
        bs: spec.bs as usize,
        names,
        inos,
        root_pblk,
        dir_blocks: size / spec.bs as u64,
        levels,
    })
}

/// The text after `key` on the first line holding it.
fn field(text: &str, key: &str) -> String {
    let line = text
        .lines()
        .find(|l| l.contains(key))
        .unwrap_or_else(|| panic!("no {key:?} in:\n{text}"));
    line[line.find(key).unwrap() + key.len()..]
        .trim()
        .to_owned()
}

/// Runs debugfs commands (from a file, one per line) on `image`.
fn debugfs(image: &Path, cmds: &[String]) -> String {
    debugfs_run(image, cmds, false)
}

fn debugfs_w(image: &Path, cmds: &[String]) -> String {
    debugfs_run(image, cmds, true)
}

fn debugfs_run(image: &Path, cmds: &[String], write: bool) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cmds");
    std::fs::write(&file, cmds.join("\n") + "\n").unwrap();
    let mut c = Command::new("debugfs");
    if write {
        c.arg("-w");
    }
    let out = c.arg("-f").arg(&file).arg(image).output().unwrap();
    assert!(out.status.success(), "debugfs {cmds:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ----- a device that counts reads, and a mount on it -----------------------------

struct Counting {
    inner: MemDevice,
    read_bytes: AtomicU64,
}

impl BlockDevice for Counting {
    fn sectors(&self) -> u64 {
        self.inner.sectors()
    }
    fn read_blocks(&self, lba: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.read_bytes
            .fetch_add(buf.len() as u64, Ordering::Relaxed);
        self.inner.read_blocks(lba, buf)
    }
    fn write_blocks(&self, lba: u64, buf: &[u8]) -> Result<(), Errno> {
        self.inner.write_blocks(lba, buf)
    }
    fn flush(&self) -> Result<(), Errno> {
        self.inner.flush()
    }
    fn is_read_only(&self) -> bool {
        self.inner.is_read_only()
    }
}

/// An image mounted on `/mnt` of a fresh kernel whose console is kept.
struct Mounted {
    k: rump::Kernel,
    p: Process,
    dev: Arc<Counting>,
    log: Arc<Mutex<String>>,
    bs: u64,
}

impl Mounted {
    fn new(image: Vec<u8>, bs: usize, read_only: bool) -> Mounted {
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let platform = Observed::new()
            .on_console(move |b| sink.lock().unwrap().push_str(&String::from_utf8_lossy(b)));
        let k = rump::Kernel::builder()
            .platform(Arc::new(platform))
            .ext2()
            .boot()
            .unwrap();
        let p = k.process().unwrap();
        let dev = Arc::new(Counting {
            inner: MemDevice::from_bytes(image, false),
            read_bytes: AtomicU64::new(0),
        });
        Registry::of(k.raw())
            .unwrap()
            .register("/dev/htree", dev.clone())
            .unwrap();
        rump::ext2::mount(&p, "/dev/htree", "/mnt", read_only).unwrap();
        Mounted {
            k,
            p,
            dev,
            log,
            bs: bs as u64,
        }
    }

    /// File-system blocks read from the device so far.
    fn blocks_read(&self) -> u64 {
        self.dev.read_bytes.load(Ordering::Relaxed) / self.bs
    }

    fn fallbacks(&self) -> usize {
        self.log.lock().unwrap().matches(FALLBACK_LINE).count()
    }

    fn ino(&self, name: &str) -> Result<u64, Errno> {
        sys::lstat(&self.p, format!("/mnt/big/{name}").as_bytes()).map(|st| st.ino)
    }

    /// Unmounts and returns the image.
    fn finish(self) -> Vec<u8> {
        sys::umount2(&self.p, b"/mnt", 0).unwrap();
        drop(self.p);
        self.k.halt();
        self.dev.inner.to_bytes()
    }
}

/// Every name is found with its inode; returns the time the pass took.
fn check_all(m: &Mounted, fx: &Fixture) -> std::time::Duration {
    let t = Instant::now();
    for n in &fx.names {
        assert_eq!(m.ino(n), Ok(fx.inos[n]), "lookup of {n:?}");
    }
    t.elapsed()
}

/// Names that are not there, some a byte away from ones that are.
fn check_missing(m: &Mounted, fx: &Fixture) {
    for i in (0..fx.names.len()).step_by(97) {
        for n in [
            format!("{}~", fx.names[i]),
            fx.names[i].to_uppercase(),
            format!("missing-{i}"),
        ] {
            if !fx.inos.contains_key(&n) {
                assert_eq!(m.ino(&n), Err(Errno::ENOENT), "lookup of {n:?}");
            }
        }
    }
}

// ----- dx_root bytes, for the tests that damage or bend an index ----------------

fn rd16(img: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(img[at..at + 2].try_into().unwrap())
}

fn rd32(img: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(img[at..at + 4].try_into().unwrap())
}

/// The (hash, logical block) entries of the entry array at byte `at`.
fn entries(img: &[u8], at: usize) -> Vec<(u32, u32)> {
    let count = rd16(img, at + 2) as usize;
    (0..count)
        .map(|i| {
            let e = at + 8 * i;
            (if i == 0 { 0 } else { rd32(img, e) }, rd32(img, e + 4))
        })
        .collect()
}

impl Fixture {
    fn root_at(&self) -> usize {
        self.root_pblk as usize * self.bs
    }

    /// Superblock hash seed and flags, and the root's hash version.
    fn hash_of(&self, image: &[u8], name: &str) -> u32 {
        let seed: [u8; 16] = image[1024 + 236..1024 + 252].try_into().unwrap();
        let flags = rd32(image, 1024 + 352);
        let v = HashVersion::for_directory(image[self.root_at() + 28], flags);
        dirhash(v, &seed, name.as_bytes()).unwrap().major
    }

    /// Physical blocks of `/big`'s logical blocks `lblks`.
    fn pblks(&self, lblks: &[u32]) -> Vec<u64> {
        let cmds: Vec<String> = lblks.iter().map(|l| format!("bmap /big {l}")).collect();
        debugfs(&self.path, &cmds)
            .lines()
            .filter(|l| !l.starts_with("debugfs"))
            .map(|l| l.trim().parse().unwrap())
            .collect()
    }
}

/// Writes `image` to a file under `dir` and asserts e2fsck -fn is clean.
fn assert_image_clean(dir: &Path, name: &str, image: &[u8]) {
    let path = dir.join(name);
    std::fs::write(&path, image).unwrap();
    assert_clean(&path);
}

// ----- tests -------------------------------------------------------------------------

#[test]
fn htree_hashes_match_debugfs() {
    require!(
        have_e2fsprogs() && have("debugfs"),
        "e2fsprogs (mke2fs, e2fsck, debugfs) not installed"
    );
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("tiny.img");
    mke2fs(&img, 1 << 20, &[]);
    // Random names from bytes debugfs's command parser passes through
    // (no spaces, quotes or backslashes), with multi-byte UTF-8.
    let alphabet: Vec<char> =
        "abcXYZ019._-+=%,:;@!~^()[]{}\u{e9}\u{fc}\u{ff}\u{20ac}\u{65e5}\u{1f600}"
            .chars()
            .collect();
    let seed0 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut rng = seed0;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut cases = Vec::new();
    for i in 0..40u32 {
        let len = 1 + (next() % 90) as usize;
        let name: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let mut seed = [0u8; 16];
        if !i.is_multiple_of(4) {
            for b in &mut seed {
                *b = next() as u8;
            }
        }
        cases.push((name, seed, (next() % 6) as u8));
    }
    let uuid = |s: &[u8; 16]| {
        let h: String = s.iter().map(|b| format!("{b:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    };
    let cmds: Vec<String> = cases
        .iter()
        .map(|(n, s, v)| format!("dx_hash -h {v} -s {} -- {n}", uuid(s)))
        .collect();
    let out = debugfs(&img, &cmds);
    let theirs: Vec<(u32, u32)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Hash of "))
        .map(|l| {
            let hex = |s: &str| u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            let rest = &l[l.rfind(" is ").unwrap() + 4..];
            let (major, minor) = rest.split_once(" (minor ").unwrap();
            (hex(major), hex(minor.trim_end_matches(')')))
        })
        .collect();
    assert_eq!(theirs.len(), cases.len(), "debugfs said:\n{out}");
    for ((name, seed, v), (major, minor)) in cases.iter().zip(theirs) {
        let ours = dirhash(HashVersion::from(*v), seed, name.as_bytes()).unwrap();
        assert_eq!(
            (ours.major, ours.minor),
            (major, minor),
            "hash version {v}, seed {}, name {name:?} (rng seed {seed0})",
            uuid(seed)
        );
    }
}

/// Every name, absent names, reads per lookup, and the time of a pass.
fn lookups_through_the_index(fx: &Fixture, what: &str) {
    assert!(
        fx.dir_blocks >= 60,
        "{what}: /big has {} blocks",
        fx.dir_blocks
    );
    // The first lookup reads the index's interior (the root, and each
    // node once, to check the index reaches every block, with the
    // indirect blocks mapping them), a leaf and the inode; later ones a
    // leaf or three (a miss checks the neighbours).
    let nodes = match fx.levels {
        0 => 0,
        _ => rd16(&fx.image, fx.root_at() + 34) as u64,
    };
    let m = Mounted::new(fx.image.clone(), fx.bs, true);
    sys::lstat(&m.p, b"/mnt/big").unwrap();
    let before = m.blocks_read();
    assert_eq!(m.ino(&fx.names[0]), Ok(fx.inos[&fx.names[0]]));
    let first = m.blocks_read() - before;
    // Indirect blocks mapping the directory (1 KiB blocks map 256 each).
    let map = fx.dir_blocks.div_ceil(fx.bs as u64 / 4) + 1;
    assert!(
        first <= 6 + nodes + map && first * 10 < fx.dir_blocks,
        "{what}: the first lookup read {first} blocks ({nodes} nodes, {} blocks)",
        fx.dir_blocks
    );
    let mut worst = 0;
    for (i, n) in fx.names.iter().enumerate().step_by(fx.names.len() / 7) {
        let before = m.blocks_read();
        assert_eq!(m.ino(n), Ok(fx.inos[n]));
        worst = worst.max(m.blocks_read() - before);
        let before = m.blocks_read();
        assert_eq!(m.ino(&format!("absent-{i}")), Err(Errno::ENOENT));
        worst = worst.max(m.blocks_read() - before);
    }
    assert!(
        worst <= 8 && worst * 10 < fx.dir_blocks,
        "{what}: a lookup read {worst} blocks of a {}-block directory",
        fx.dir_blocks
    );
    assert_eq!(m.fallbacks(), 0, "{what}: {}", m.log.lock().unwrap());
    drop(m.finish());
    // All names, from a cold cache.
    let m = Mounted::new(fx.image.clone(), fx.bs, true);
    let took = check_all(&m, fx);
    check_missing(&m, fx);
    assert_eq!(m.fallbacks(), 0, "{what}: {}", m.log.lock().unwrap());
    eprintln!(
        "{what}: {} lookups through the index ({} levels, {} blocks): {:?}; \
         the first lookup read {first} blocks, later ones at most {worst}",
        fx.names.len(),
        fx.levels + 1,
        fx.dir_blocks,
        took
    );
    drop(m.finish());
}

#[test]
fn htree_lookups_half_md4_two_levels() {
    let fx = fixture_md4();
    require!(
        fx.is_some(),
        "e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed"
    );
    let fx = fx.unwrap();
    assert_eq!(
        fx.levels, 1,
        "20,000 names in 1 KiB blocks need a node level"
    );
    lookups_through_the_index(fx, "half_md4 signed, 1 KiB");
}

#[test]
fn htree_lookups_tea_unsigned() {
    let fx = fixture_tea();
    require!(
        fx.is_some(),
        "e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed"
    );
    let fx = fx.unwrap();
    assert_eq!(fx.image[fx.root_at() + 28], 2, "hash version tea");
    lookups_through_the_index(fx, "tea unsigned, 4 KiB");
}

#[test]
fn htree_lookups_legacy() {
    let fx = fixture_legacy();
    require!(
        fx.is_some(),
        "e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed"
    );
    let fx = fx.unwrap();
    assert_eq!(fx.image[fx.root_at() + 28], 0, "hash version legacy");
    lookups_through_the_index(fx, "legacy signed, 2 KiB");
}

#[test]
fn htree_lookups_linux_built() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let fx = fixture_linux();
    require!(
        fx.is_some(),
        "not root or no loop device: directory indexed by Linux not tested"
    );
    lookups_through_the_index(fx.unwrap(), "indexed by Linux, 1 KiB");
}

/// A run of equal hashes split across leaves: an index hash with its low
/// bit set sends a lookup that misses in one leaf on to the next, within
/// a node and across nodes. The runs are made by setting that bit on an
/// index entry whose leaf starts with the entry's own hash: the name
/// with that hash is then looked for first in the leaf before.
#[test]
fn htree_collision_runs_continue_into_the_next_leaf() {
    let fx = fixture_md4();
    require!(
        fx.is_some(),
        "e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed"
    );
    let fx = fx.unwrap();
    let mut img = fx.image.clone();
    let root = fx.root_at();
    let by_hash: BTreeMap<u32, &String> =
        fx.names.iter().map(|n| (fx.hash_of(&img, n), n)).collect();
    let root_entries = entries(&img, root + 32);
    let nodes = fx.pblks(&root_entries.iter().map(|e| e.1).collect::<Vec<_>>());
    let mut bent = Vec::new();
    // Across nodes: a root entry; within a node: an entry of another node.
    for (i, &(hash, _)) in root_entries.iter().enumerate().skip(1) {
        if let Some(n) = by_hash.get(&hash) {
            img[root + 32 + 8 * i] |= 1;
            bent.push(n.to_string());
            break;
        }
    }
    'nodes: for &node in nodes.iter().rev() {
        let at = node as usize * fx.bs + 8;
        for (j, &(hash, _)) in entries(&img, at).iter().enumerate().skip(1) {
            if let Some(n) = by_hash.get(&hash) {
                img[at + 8 * j] |= 1;
                bent.push(n.to_string());
                break 'nodes;
            }
        }
    }
    assert_eq!(bent.len(), 2, "no index entry starts with a name's hash");
    let m = Mounted::new(img, fx.bs, true);
    for n in &bent {
        assert_eq!(m.ino(n), Ok(fx.inos[n]), "lookup of {n:?}");
    }
    check_all(&m, fx);
    check_missing(&m, fx);
    assert_eq!(m.fallbacks(), 0, "{}", m.log.lock().unwrap());
    drop(m.finish());
}

/// Damaged indexes: lookups stay right (linear search, one log line per
/// directory), and a directory we then modify passes e2fsck.
#[test]
fn htree_damaged_index_falls_back_to_a_linear_search() {
    let fx = fixture_md4();
    require!(
        fx.is_some(),
        "e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed"
    );
    let fx = fx.unwrap();
    let root = fx.root_at();
    let first_node = fx.pblks(&[entries(&fx.image, root + 32)[0].1])[0] as usize * fx.bs;
    let limit = rd16(&fx.image, root + 32);
    let damage: Vec<(&str, Box<dyn Fn(&mut Vec<u8>)>)> = vec![
        (
            "count above limit",
            Box::new(move |i| i[root + 34..root + 36].copy_from_slice(&(limit + 1).to_le_bytes())),
        ),
        ("limit", Box::new(move |i| i[root + 32] ^= 0x5a)),
        (
            "unknown hash version",
            Box::new(move |i| i[root + 28] = 0x55),
        ),
        // A valid but wrong algorithm: only the leaves can tell.
        ("hash version tea", Box::new(move |i| i[root + 28] = 2)),
        ("incompatible flag", Box::new(move |i| i[root + 31] = 1)),
        ("indirect levels", Box::new(move |i| i[root + 30] = 3)),
        ("info length", Box::new(move |i| i[root + 29] = 0)),
        (
            "node count zero",
            Box::new(move |i| i[first_node + 10..first_node + 12].fill(0)),
        ),
        ("node limit", Box::new(move |i| i[first_node + 8] ^= 0xff)),
        // Consistent-looking entries that lose a leaf or point twice at
        // one: only the whole index tells.
        (
            "node count one less",
            Box::new(move |i| {
                let c = rd16(i, first_node + 10) - 1;
                i[first_node + 10..first_node + 12].copy_from_slice(&c.to_le_bytes());
            }),
        ),
        (
            "leaf referenced twice",
            Box::new(move |i| {
                let b = rd32(i, first_node + 8 + 4);
                i[first_node + 16 + 4..first_node + 16 + 8].copy_from_slice(&b.to_le_bytes());
            }),
        ),
        // A boundary between two leaves moved: only a leaf tells.
        (
            "hash boundary moved",
            Box::new(move |i| {
                let at = first_node + 8 + 8 * 3;
                let (lo, hi) = (rd32(i, at - 8), rd32(i, at + 8));
                let mid = lo / 2 + hi / 2;
                let h = rd32(i, at);
                let moved = if h > mid {
                    lo / 2 + mid / 2
                } else {
                    mid / 2 + hi / 2
                } & !1;
                i[at..at + 4].copy_from_slice(&moved.to_le_bytes());
            }),
        ),
    ];
    // Every 13th name, and every name of the first node's leaves 1 to 5,
    // where the damage to the node is.
    let node_entries = entries(&fx.image, first_node + 8);
    let near = node_entries[1].0..node_entries[5].0;
    let sample: Vec<&String> = fx
        .names
        .iter()
        .enumerate()
        .filter(|(i, n)| i % 13 == 0 || near.contains(&fx.hash_of(&fx.image, n)))
        .map(|(_, n)| n)
        .collect();
    for (what, f) in &damage {
        let mut img = fx.image.clone();
        f(&mut img);
        let m = Mounted::new(img, fx.bs, true);
        for n in &sample {
            assert_eq!(m.ino(n), Ok(fx.inos[*n]), "{what}: lookup of {n:?}");
        }
        check_missing(&m, fx);
        assert_eq!(
            m.fallbacks(),
            1,
            "{what}: one log line wanted:\n{}",
            m.log.lock().unwrap()
        );
        drop(m.finish());
    }

    // The linear search (what the driver did before it used indexes):
    // a full pass, and a miss that reads the whole directory.
    let mut img = fx.image.clone();
    damage[0].1(&mut img);
    let m = Mounted::new(img.clone(), fx.bs, true);
    let took = check_all(&m, fx);
    eprintln!(
        "damaged index: {} lookups by linear search: {took:?}",
        fx.names.len()
    );
    drop(m.finish());
    let m = Mounted::new(img, fx.bs, true);
    sys::lstat(&m.p, b"/mnt/big").unwrap();
    let before = m.blocks_read();
    assert_eq!(m.ino("absent"), Err(Errno::ENOENT));
    let read = m.blocks_read() - before;
    assert!(
        read + 1 >= fx.dir_blocks,
        "a linear miss read {read} of {} blocks",
        fx.dir_blocks
    );
    drop(m.finish());

    // A damaged index in a directory we write to: create, unlink and
    // rename there, then e2fsck (which must not see an index any more).
    let mut img = fx.image.clone();
    damage[0].1(&mut img);
    let m = Mounted::new(img, fx.bs, false);
    modify_big(&m, fx);
    let img = m.finish();
    let dir = tempfile::tempdir().unwrap();
    assert_image_clean(dir.path(), "damaged.img", &img);
}

/// Random damage to the index blocks (root and nodes; the leaves are
/// intact): every lookup still gives the right answer, through the index
/// or, once the damage shows, the linear search.
#[test]
fn htree_random_index_damage_never_misleads() {
    let fx = fixture_md4();
    require!(
        fx.is_some(),
        "e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed"
    );
    let fx = fx.unwrap();
    let root = fx.root_at();
    let root_entries = entries(&fx.image, root + 32);
    // Byte ranges of the index: the root's info and entries, and each
    // node's entries.
    let mut regions = Vec::new();
    regions.push(root + 24..root + 32 + 8 * root_entries.len());
    for pblk in fx.pblks(&root_entries.iter().map(|e| e.1).collect::<Vec<_>>()) {
        let at = pblk as usize * fx.bs + 8;
        regions.push(at..at + 8 * rd16(&fx.image, at + 2) as usize);
    }
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: usize| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let mut fell_back = 0;
    for trial in 0..60 {
        let mut img = fx.image.clone();
        let mut flips = Vec::new();
        for _ in 0..1 + next(3) {
            // The root is hit as often as all nodes together.
            let r = if next(2) == 0 {
                &regions[0]
            } else {
                &regions[next(regions.len())]
            };
            let at = r.start + next(r.len());
            img[at] ^= 1 + next(255) as u8;
            flips.push(at);
        }
        let m = Mounted::new(img, fx.bs, true);
        for _ in 0..40 {
            let n = &fx.names[next(fx.names.len())];
            assert_eq!(
                m.ino(n),
                Ok(fx.inos[n]),
                "trial {trial} (bytes {flips:?} changed): lookup of {n:?}"
            );
        }
        for i in 0..5 {
            assert_eq!(m.ino(&format!("absent-{trial}-{i}")), Err(Errno::ENOENT));
        }
        assert!(m.fallbacks() <= 1, "{}", m.log.lock().unwrap());
        fell_back += m.fallbacks();
        drop(m.finish());
    }
    eprintln!("random index damage: 60 trials, {fell_back} fell back to a linear search");
    assert!(fell_back > 0);
}

/// The signedness flag of the superblock decides the hash of names with
/// bytes >= 0x80: flipping it sends their lookups to wrong leaves, which
/// the leaves give away.
#[test]
fn htree_wrong_signedness_falls_back() {
    let fx = fixture_tea();
    require!(
        fx.is_some(),
        "e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed"
    );
    let fx = fx.unwrap();
    let mut img = fx.image.clone();
    assert_eq!(rd32(&img, 1024 + 352) & 3, 2);
    img[1024 + 352] = 1;
    let m = Mounted::new(img, fx.bs, true);
    for n in fx.names.iter().step_by(7) {
        assert_eq!(m.ino(n), Ok(fx.inos[n]), "lookup of {n:?}");
    }
    check_missing(&m, fx);
    assert_eq!(m.fallbacks(), 1, "{}", m.log.lock().unwrap());
    drop(m.finish());
}

/// Creates, unlinks and renames in `/big`, checking lookups after each.
fn modify_big(m: &Mounted, fx: &Fixture) {
    rump::fs::write(&m.p, "/mnt/big/new-file", b"x").unwrap();
    let new = m.ino("new-file").unwrap();
    let gone = &fx.names[fx.names.len() / 2];
    rump::fs::remove_file(&m.p, format!("/mnt/big/{gone}")).unwrap();
    assert_eq!(m.ino(gone), Err(Errno::ENOENT));
    let moved = &fx.names[fx.names.len() / 3];
    rump::fs::rename(&m.p, format!("/mnt/big/{moved}"), "/mnt/big/renamed").unwrap();
    assert_eq!(m.ino("renamed"), Ok(fx.inos[moved]));
    assert_eq!(m.ino(moved), Err(Errno::ENOENT));
    assert_eq!(m.ino("new-file"), Ok(new));
    for n in fx.names.iter().step_by(101) {
        if n != gone && n != moved {
            assert_eq!(m.ino(n), Ok(fx.inos[n]), "lookup of {n:?}");
        }
    }
}

/// Our changes to an indexed directory leave a valid (now linear)
/// directory: e2fsck -fn is clean, and a later mount finds everything.
#[test]
fn htree_modified_directory_stays_valid() {
    let fx = fixture_md4();
    require!(
        fx.is_some(),
        "e2fsprogs (mke2fs, e2fsck, debugfs, dumpe2fs) not installed"
    );
    let fx = fx.unwrap();
    let m = Mounted::new(fx.image.clone(), fx.bs, false);
    modify_big(&m, fx);
    assert_eq!(m.fallbacks(), 0);
    let img = m.finish();
    let dir = tempfile::tempdir().unwrap();
    assert_image_clean(dir.path(), "modified.img", &img);
    let path = dir.path().join("modified.img");
    let flags = field(&debugfs(&path, &["stat /big".into()]), "Flags:");
    assert_eq!(
        u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap() & 0x1000,
        0
    );
    let m = Mounted::new(img, fx.bs, true);
    assert!(m.ino("new-file").is_ok());
    assert_eq!(m.ino("renamed"), Ok(fx.inos[&fx.names[fx.names.len() / 3]]));
    for n in fx.names.iter().step_by(53) {
        if n != &fx.names[fx.names.len() / 2] && n != &fx.names[fx.names.len() / 3] {
            assert_eq!(m.ino(n), Ok(fx.inos[n]), "lookup of {n:?}");
        }
    }
    drop(m.finish());
}
