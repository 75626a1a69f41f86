//! Helpers for the `rump fuse` tests: host tool checks, images, a server
//! child process with its mount, tree listings to compare mounts.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Skips the test with one line when `$cond` is false.
#[macro_export]
macro_rules! require {
    ($cond:expr, $what:expr) => {
        if !$cond {
            eprintln!("skipped: {}", $what);
            return;
        }
    };
}

pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Why FUSE tests cannot run here, if they cannot.
pub fn missing() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("no /dev/fuse".into());
    }
    if !is_root() {
        return Some("not root (the tests mount and loop-mount)".into());
    }
    for t in ["mke2fs", "e2fsck", "fusermount3", "mount", "umount"] {
        if !have(t) {
            return Some(format!("{t} not installed"));
        }
    }
    None
}

pub fn rump_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rump"))
}

/// An ext2 image made by mke2fs (1 KiB blocks unless `args` say).
pub fn mke2fs(image: &Path, size_mb: u64, args: &[&str]) {
    let f = std::fs::File::create(image).unwrap();
    f.set_len(size_mb << 20).unwrap();
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2"])
        .args(args)
        .arg(image)
        .status()
        .unwrap();
    assert!(st.success(), "mke2fs failed");
}

/// `e2fsck -fn`: exit code and output.
pub fn fsck(image: &Path) -> (i32, String) {
    let o = Command::new("e2fsck")
        .arg("-fn")
        .arg(image)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

pub fn assert_clean(image: &Path) {
    let (code, out) = fsck(image);
    assert_eq!(code, 0, "e2fsck -fn found problems:\n{out}");
}

/// A running `rump fuse -f` and its mount.
pub struct Mounted {
    pub mnt: PathBuf,
    pub child: Child,
    stderr: Option<std::thread::JoinHandle<String>>,
}

/// Starts `rump fuse -f [-o opts] image mnt` and waits until it is
/// mounted. Err(stderr, status) if the server exits first.
pub fn mount(image: &Path, mnt: &Path, opts: &[&str]) -> Result<Mounted, (String, ExitStatus)> {
    std::fs::create_dir_all(mnt).unwrap();
    let mut cmd = Command::new(rump_bin());
    cmd.arg("fuse").arg("-f");
    for o in opts {
        cmd.arg("-o").arg(o);
    }
    let mut child = cmd
        .arg(image)
        .arg(mnt)
        .env("RUMP_FUSE_REPORT_READY", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    if line.trim_end() == "rump-fuse: ready" {
        return Ok(Mounted {
            mnt: mnt.to_path_buf(),
            child,
            stderr: Some(stderr),
        });
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    Err((stderr.join().unwrap_or_default(), status))
}

impl Mounted {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the server to exit (at most `limit`); its status and
    /// standard error.
    pub fn wait_exit(mut self, limit: Duration) -> (ExitStatus, String) {
        let start = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                let err = self.stderr.take().unwrap().join().unwrap_or_default();
                return (st, err);
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                panic!("the server did not exit within {limit:?} after the unmount");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `umount`, then waits for the server to flush and exit.
    pub fn unmount(self) -> (ExitStatus, String) {
        let st = Command::new("umount").arg(&self.mnt).status().unwrap();
        assert!(st.success(), "umount failed");
        self.wait_exit(Duration::from_secs(60))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Loop-mounts `image` with Linux's ext2 driver.
pub struct LoopMount {
    pub mnt: PathBuf,
}

pub fn loop_mount(image: &Path, mnt: &Path, ro: bool) -> LoopMount {
    std::fs::create_dir_all(mnt).unwrap();
    let opts = if ro { "loop,ro" } else { "loop" };
    let st = Command::new("mount")
        .args(["-t", "ext2", "-o", opts])
        .arg(image)
        .arg(mnt)
        .status()
        .unwrap();
    assert!(st.success(), "loop mount of {} failed", image.display());
    LoopMount {
        mnt: mnt.to_path_buf(),
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
    }
}

/// Everything about a tree that two mounts of identical images with the
/// same operations applied must agree on: per path, type, mode, owner,
/// size, link count and content (a hash) or link target. Times differ
/// between runs and are left out; `lost+found` too.
pub fn listing(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if rel == "lost+found" {
            continue;
        }
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let what = if ft.is_dir() {
            "dir".to_string()
        } else if ft.is_symlink() {
            format!("link->{}", std::fs::read_link(&p).unwrap().display())
        } else if ft.is_file() {
            format!("file:{:016x}", hash(&std::fs::read(&p).unwrap()))
        } else if ft.is_fifo() {
            "fifo".into()
        } else if ft.is_socket() {
            "sock".into()
        } else {
            format!("dev:{:x}", md.rdev())
        };
        let size = if ft.is_dir() { 0 } else { md.size() };
        out.insert(
            rel,
            format!(
                "{what} mode={:o} uid={} gid={} size={size} nlink={}",
                md.mode() & 0o7777,
                md.uid(),
                md.gid(),
                md.nlink()
            ),
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// FNV-1a.
pub fn hash(b: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

/// Runs `sh -c script` in `dir` (as `user` through setpriv if given),
/// with a time limit; panics if it times out.
pub fn sh(dir: &Path, user: Option<u32>, script: &str) -> ExitStatus {
    let mut cmd = if let Some(u) = user {
        let mut c = Command::new("setpriv");
        c.args([
            &format!("--reuid={u}"),
            &format!("--regid={u}"),
            "--clear-groups",
            "sh",
            "-c",
            script,
        ]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    };
    let mut child = cmd.current_dir(dir).spawn().unwrap();
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("timed out: {script}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A deterministic generator (xorshift64*).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
