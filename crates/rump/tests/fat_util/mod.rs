//! Helpers for the FAT integration tests: host tools (dosfstools,
//! mtools), booting a kernel with FAT, a test tree of awkward names and
//! sizes, and tree walks on the host and in the kernel.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use rump::{Kernel, Process};

/// Whether a host tool is on the path.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Returns early from a test with one line saying what is missing.
#[macro_export]
macro_rules! require {
    ($cond:expr, $what:expr) => {
        if !$cond {
            eprintln!("skipped: {}", $what);
            return;
        }
    };
}

pub fn have_dosfstools() -> bool {
    have("mkfs.fat") && have("fsck.fat")
}

pub fn have_mtools() -> bool {
    have("mcopy") && have("mdir")
}

/// `mkfs.fat -F BITS` on a new image of `size` bytes.
pub fn mkfs_fat(image: &Path, size: u64, bits: u32, extra: &[&str]) {
    let _ = std::fs::remove_file(image);
    let f = std::fs::File::create(image).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let out = Command::new("mkfs.fat")
        .arg("-F")
        .arg(bits.to_string())
        .args(extra)
        .arg(image)
        .output()
        .expect("run mkfs.fat");
    assert!(
        out.status.success(),
        "mkfs.fat -F {bits}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `fsck.fat -n IMAGE`: exit code and output.
pub fn fsck(image: &Path) -> (i32, String) {
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(image)
        .output()
        .expect("run fsck.fat");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Asserts `fsck.fat -n` finds nothing wrong (exit 0, and no complaint:
/// fsck.fat exits 0 for some fixable findings in -n mode).
pub fn assert_clean(image: &Path) {
    let (code, out) = fsck(image);
    let lines: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("fsck.fat ") && !l.contains(" files, "))
        .collect();
    assert!(
        code == 0 && lines.is_empty(),
        "fsck.fat -n {} (exit {code}):\n{out}",
        image.display()
    );
}

/// An mtools command on `image` (UTC times, no geometry checks).
pub fn mtools(tool: &str, image: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .arg("-i")
        .arg(image)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    assert!(
        out.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A kernel with FAT and a root process.
pub fn kernel() -> (Kernel, Process) {
    let k = Kernel::builder().fat().boot().unwrap();
    let p = k.process().unwrap();
    (k, p)
}

/// Registers `image` and mounts it on `/mnt` (with `mount -t msdos`).
pub fn mount(p: &Process, image: &Path, read_only: bool) {
    rump::ext2::register_image(p, image, "/dev/disk0", read_only).unwrap();
    rump::fat::mount(p, "/dev/disk0", "/mnt", read_only, "").unwrap();
}

pub fn umount(p: &Process) {
    rump::sys::umount2(p, b"/mnt", 0).unwrap();
}

/// One file of a tree: contents (None for a directory) and modification
/// time in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub data: Option<Vec<u8>>,
    pub mtime: i64,
}

pub type Tree = BTreeMap<String, Entry>;

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 9) as u8)
        .collect()
}

/// The test tree: long and short names, mixed case, non-ASCII, names
/// needing `~N` aliases that collide, a full-ish directory spanning
/// several clusters, sizes around sector and cluster boundaries, a
/// multi-cluster file. Even mtimes (FAT keeps 2-second resolution).
pub fn sample_tree() -> Tree {
    let mut t = Tree::new();
    let base = 1_600_000_000i64;
    let file = |t: &mut Tree, path: &str, n: usize, k: i64| {
        t.insert(
            path.into(),
            Entry {
                data: Some(pattern(n, k as u8)),
                mtime: base + 2 * k * 3607,
            },
        );
    };
    let dirs = ["docs", "Deep", "Deep/er", "Deep/er/still", "many"];
    for (k, d) in dirs.iter().enumerate() {
        t.insert(
            d.to_string(),
            Entry {
                data: None,
                mtime: base + 86400 * k as i64,
            },
        );
    }
    file(&mut t, "README.TXT", 0, 1);
    file(&mut t, "readme2.md", 1, 2);
    file(&mut t, "Long File Name.txt", 511, 3);
    file(&mut t, "Long File Name 2.txt", 512, 4);
    file(&mut t, "Long File Names.txt", 513, 5);
    file(&mut t, "Grüße.txt", 4097, 6);
    file(&mut t, "日本語のファイル.dat", 100, 7);
    file(&mut t, "a.b.c.d", 3, 8);
    file(&mut t, "MiXeD.Case", 9, 9);
    file(&mut t, "docs/big.bin", 300_000, 10);
    file(&mut t, "docs/x", 2048, 11);
    file(&mut t, "Deep/er/still/leaf", 77, 12);
    let long: String = "n".repeat(200) + ".txt";
    file(&mut t, &format!("Deep/{long}"), 5, 13);
    for i in 0..150 {
        file(
            &mut t,
            &format!("many/entry number {i:03}.data"),
            i * 13,
            14 + i as i64,
        );
    }
    t
}

/// Writes `tree` under the host directory `root`, times included.
pub fn write_host(root: &Path, tree: &Tree) {
    for (path, e) in tree {
        let p = root.join(path);
        match &e.data {
            None => std::fs::create_dir_all(&p).unwrap(),
            Some(d) => {
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(&p, d).unwrap();
            }
        }
    }
    // Times last (writing files changes their directory's time).
    for (path, e) in tree.iter().rev() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(e.mtime as u64);
        let f = std::fs::File::open(root.join(path)).unwrap();
        f.set_modified(t).unwrap();
    }
}

/// Reads the host directory `root` into a tree.
pub fn read_host(root: &Path) -> Tree {
    fn walk(root: &Path, rel: &str, t: &mut Tree) {
        for e in std::fs::read_dir(root.join(rel)).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let md = e.metadata().unwrap();
            let mtime = md
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            if md.is_dir() {
                t.insert(path.clone(), Entry { data: None, mtime });
                walk(root, &path, t);
            } else {
                let data = std::fs::read(root.join(&path)).unwrap();
                t.insert(
                    path,
                    Entry {
                        data: Some(data),
                        mtime,
                    },
                );
            }
        }
    }
    let mut t = Tree::new();
    walk(root, "", &mut t);
    t
}

/// Writes `tree` under `root` in the kernel, times included.
pub fn write_rump(p: &Process, root: &str, tree: &Tree) {
    for (path, e) in tree {
        let full = format!("{root}/{path}");
        match &e.data {
            None => rump::fs::create_dir_all(p, &full).unwrap(),
            Some(d) => rump::fs::write(p, &full, d).unwrap(),
        }
    }
    for (path, e) in tree.iter().rev() {
        set_mtime(p, &format!("{root}/{path}"), e.mtime);
    }
}

pub fn set_mtime(p: &Process, path: &str, sec: i64) {
    let t = rump::sys::TimeArg { sec, nsec: 0 };
    rump::sys::utimensat(
        p,
        rump::sys::consts::at::FDCWD,
        path.as_bytes(),
        Some([t, t]),
        0,
    )
    .unwrap();
}

/// Reads the kernel directory `root` into a tree.
pub fn read_rump(p: &Process, root: &str) -> Tree {
    fn walk(p: &Process, root: &str, rel: &str, t: &mut Tree) {
        let dir = if rel.is_empty() {
            root.to_string()
        } else {
            format!("{root}/{rel}")
        };
        for e in rump::fs::read_dir(p, &dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let path = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let full = format!("{root}/{path}");
            let md = rump::fs::metadata(p, &full).unwrap();
            let mtime = md.modified().sec;
            if md.is_dir() {
                t.insert(path.clone(), Entry { data: None, mtime });
                walk(p, root, &path, t);
            } else {
                let data = rump::fs::read(p, &full).unwrap();
                assert_eq!(data.len() as u64, md.len(), "{full}: size");
                t.insert(
                    path,
                    Entry {
                        data: Some(data),
                        mtime,
                    },
                );
            }
        }
    }
    let mut t = Tree::new();
    walk(p, root, "", &mut t);
    t
}

/// Asserts two trees hold the same names, contents and (for files, and
/// for directories with `dir_times`) modification times.
pub fn assert_same(want: &Tree, got: &Tree, dir_times: bool) {
    let wn: Vec<_> = want.keys().collect();
    let gn: Vec<_> = got.keys().collect();
    assert_eq!(wn, gn, "names differ");
    for (k, w) in want {
        let g = &got[k];
        assert_eq!(
            w.data.as_ref().map(|d| d.len()),
            g.data.as_ref().map(|d| d.len()),
            "{k}: size"
        );
        assert!(w.data == g.data, "{k}: contents differ");
        if w.data.is_some() || dir_times {
            // FAT keeps even seconds (odd ones round down).
            assert_eq!(w.mtime.div_euclid(2) * 2, g.mtime, "{k}: mtime");
        }
    }
}
