//! Helpers for the ext2 integration tests: host tools (mke2fs, e2fsck,
//! loop mounts), booting a kernel with ext2, and a tree walk that records
//! what a comparison between our driver and Linux's needs.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
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

/// Whether e2fsprogs is installed.
pub fn have_e2fsprogs() -> bool {
    have("mke2fs") && have("e2fsck")
}

/// Runs `mke2fs -q -F -t ext2 ARGS IMAGE [BLOCKS]`.
pub fn mke2fs(image: &Path, size: u64, args: &[&str]) {
    let f = std::fs::File::create(image).unwrap();
    f.set_len(size).unwrap();
    drop(f);
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2"])
        .args(args)
        .arg(image)
        .env("MKE2FS_CONFIG", "/etc/mke2fs.conf")
        .output()
        .expect("run mke2fs");
    assert!(
        out.status.success(),
        "mke2fs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `e2fsck -fn IMAGE`: exit code and output.
pub fn fsck(image: &Path) -> (i32, String) {
    let out = Command::new("e2fsck")
        .args(["-f", "-n"])
        .arg(image)
        .output()
        .expect("run e2fsck");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// Asserts `e2fsck -fn` finds nothing wrong.
pub fn assert_clean(image: &Path) {
    let (code, out) = fsck(image);
    assert_eq!(code, 0, "e2fsck -fn {}:\n{out}", image.display());
}

/// Repairs `image` with `e2fsck -fy`, as after a crash: the repair must
/// succeed (exit 0 or 1, "errors corrected") and leave the image clean.
pub fn repair(image: &Path) {
    let out = Command::new("e2fsck")
        .args(["-f", "-y"])
        .arg(image)
        .output()
        .expect("run e2fsck");
    let code = out.status.code().unwrap_or(8);
    assert!(
        code <= 1,
        "e2fsck -fy exit {code}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_clean(image);
}

/// A kernel with ext2 and a root process.
pub fn boot() -> (Kernel, Process) {
    let k = Kernel::builder().ext2().boot().expect("boot");
    let p = k.process().expect("process");
    (k, p)
}

/// Boots a kernel and mounts `image` read-write on `/mnt`.
pub fn mount_rw(image: &Path) -> (Kernel, Process) {
    let (k, p) = boot();
    rump::ext2::mount_image(&p, image, "/dev/disk0", "/mnt", false).expect("mount");
    (k, p)
}

/// Unmounts `/mnt` and halts.
pub fn unmount(k: Kernel, p: Process) {
    rump::sys::umount2(&p, b"/mnt", 0).expect("umount");
    drop(p);
    k.halt();
}

/// Our own mkfs on a new image file.
pub fn newfs(image: &Path, size: u64, block_size: u32) -> rump::ext2::MkfsSummary {
    rump::ext2::newfs_image(
        image,
        size,
        &rump::ext2::MkfsOptions {
            block_size,
            ..Default::default()
        },
    )
    .expect("newfs")
}

/// 64-bit FNV-1a of some bytes.
pub fn fnv(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// What the tree comparison looks at for each file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Info {
    pub mode: u32,
    pub size: u64,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u64,
    pub target: Option<Vec<u8>>,
    pub hash: Option<u64>,
    pub mtime: i64,
    pub rdev: u64,
}

/// Walks a tree in the rump kernel (skipping `lost+found`).
pub fn walk_rump(p: &Process, root: &str) -> BTreeMap<String, Info> {
    let mut out = BTreeMap::new();
    walk_rump_into(p, root, "", &mut out);
    out
}

fn walk_rump_into(p: &Process, root: &str, rel: &str, out: &mut BTreeMap<String, Info>) {
    let dir = format!("{root}{rel}");
    let mut names: Vec<Vec<u8>> = rump::fs::read_dir(p, &dir)
        .unwrap_or_else(|e| panic!("read_dir {dir}: {e}"))
        .map(|e| e.unwrap().name_bytes().to_vec())
        .collect();
    names.sort();
    for name in names {
        let name = String::from_utf8(name).unwrap();
        if rel.is_empty() && name == "lost+found" {
            continue;
        }
        let r = format!("{rel}/{name}");
        let path = format!("{root}{r}");
        let st = rump::sys::lstat(p, path.as_bytes()).unwrap();
        let kind = st.mode & 0o170000;
        let info = Info {
            mode: st.mode,
            size: if kind == 0o040000 { 0 } else { st.size },
            uid: st.uid,
            gid: st.gid,
            nlink: st.nlink,
            target: (kind == 0o120000).then(|| rump::sys::readlink(p, path.as_bytes()).unwrap()),
            hash: (kind == 0o100000).then(|| fnv(&rump::fs::read(p, &path).unwrap())),
            mtime: st.mtime.sec,
            rdev: st.rdev,
        };
        out.insert(r.clone(), info);
        if kind == 0o040000 {
            walk_rump_into(p, root, &r, out);
        }
    }
}

/// Walks a host tree (skipping `lost+found`).
pub fn walk_host(root: &Path) -> BTreeMap<String, Info> {
    let mut out = BTreeMap::new();
    walk_host_into(root, "", &mut out);
    out
}

fn walk_host_into(root: &Path, rel: &str, out: &mut BTreeMap<String, Info>) {
    let dir = root.join(rel.trim_start_matches('/'));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in names {
        if rel.is_empty() && name == "lost+found" {
            continue;
        }
        let r = format!("{rel}/{name}");
        let path: PathBuf = root.join(r.trim_start_matches('/'));
        let m = std::fs::symlink_metadata(&path).unwrap();
        let kind = m.mode() & 0o170000;
        use std::os::unix::ffi::OsStrExt;
        let info = Info {
            mode: m.mode(),
            size: if kind == 0o040000 { 0 } else { m.size() },
            uid: m.uid(),
            gid: m.gid(),
            nlink: m.nlink(),
            target: (kind == 0o120000).then(|| {
                std::fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            }),
            hash: (kind == 0o100000).then(|| fnv(&std::fs::read(&path).unwrap())),
            mtime: m.mtime(),
            rdev: m.rdev(),
        };
        out.insert(r.clone(), info);
        if kind == 0o040000 {
            walk_host_into(root, &r, out);
        }
    }
}

/// Asserts two walks agree, naming the first difference.
pub fn assert_same_tree(ours: &BTreeMap<String, Info>, theirs: &BTreeMap<String, Info>) {
    let a: Vec<_> = ours.keys().collect();
    let b: Vec<_> = theirs.keys().collect();
    assert_eq!(a, b, "the trees hold different names");
    for (k, v) in ours {
        assert_eq!(
            Some(v),
            theirs.get(k),
            "{k} differs (ours left, Linux right)"
        );
    }
}

/// Whether this process may loop-mount images (root, a loop device, and
/// a kernel that mounts ext2).
pub fn can_loop_mount() -> bool {
    if unsafe_free_geteuid() != 0 || !Path::new("/dev/loop-control").exists() {
        return false;
    }
    let Ok(fss) = std::fs::read_to_string("/proc/filesystems") else {
        return false;
    };
    fss.lines()
        .any(|l| l.trim_end().ends_with("ext2") || l.trim_end().ends_with("ext4"))
}

fn unsafe_free_geteuid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

/// A loop mount that is undone on drop.
pub struct LoopMount {
    pub dir: PathBuf,
}

impl LoopMount {
    /// `mount -t ext2 -o loop[,ro] IMAGE DIR`.
    pub fn new(image: &Path, dir: &Path, read_only: bool) -> LoopMount {
        Self::with_type(image, dir, "ext2", read_only)
    }

    /// `mount -t FSTYPE -o loop[,ro] IMAGE DIR`.
    pub fn with_type(image: &Path, dir: &Path, fstype: &str, read_only: bool) -> LoopMount {
        std::fs::create_dir_all(dir).unwrap();
        let opts = if read_only { "loop,ro" } else { "loop" };
        let out = Command::new("mount")
            .args(["-t", fstype, "-o", opts])
            .arg(image)
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount {}: {}",
            image.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        LoopMount {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}
