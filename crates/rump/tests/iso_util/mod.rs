//! Helpers for the ISO 9660 tests: a host tree with every kind of file,
//! image makers (xorriso, genisoimage), a kernel with the ISO driver, and
//! the tree walks of the ext2 tests.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use rump::{Kernel, Process};

#[allow(unused_imports)]
pub use crate::ext2_util::{have, walk_host, walk_rump, Info};

/// Whether we run as root (chown, mknod).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Runs a host tool; panics with its output if it fails.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn set_mtime(path: &Path, secs: u64) {
    // futimens on a read-only descriptor: we own the file.
    let f = std::fs::File::open(path).unwrap();
    f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap();
}

/// How deep `make_tree` nests directories (more than 8, so mkisofs-style
/// writers relocate with Rock Ridge).
pub const DEPTH: usize = 11;

/// Builds a tree under `root`: long names, deep directories, symlinks
/// (relative, absolute, long, dangling), hard links, modes, a full
/// directory, binary contents, set mtimes; with `specials`, a fifo and
/// device nodes, and owners (as root). Returns the deepest directory.
pub fn make_tree(root: &Path, specials: bool) -> PathBuf {
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("hello.txt"), b"hello, world\n").unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    std::fs::write(root.join("binary.dat"), &big).unwrap();
    let long = format!("a long name with spaces and {}", "x".repeat(180));
    std::fs::write(root.join(&long), b"long name\n").unwrap();
    std::fs::write(root.join("Mixed.Case.Name.tar.gz"), b"mixed").unwrap();
    std::fs::hard_link(root.join("hello.txt"), root.join("hard-link")).unwrap();
    symlink("hello.txt", root.join("rel-link")).unwrap();
    symlink("/etc/passwd", root.join("abs-link")).unwrap();
    symlink("../nowhere/./x", root.join("dangling")).unwrap();
    let long_target: Vec<String> = (0..40).map(|i| format!("component{i:02}")).collect();
    symlink(long_target.join("/"), root.join("long-link")).unwrap();
    // A directory of many entries: several sectors of records.
    let full = root.join("full");
    std::fs::create_dir(&full).unwrap();
    for i in 0..300 {
        std::fs::write(
            full.join(format!("entry-{i:04}-with-a-longish-name")),
            i.to_string(),
        )
        .unwrap();
    }
    // Modes.
    let modes = root.join("modes");
    std::fs::create_dir(&modes).unwrap();
    for (name, mode) in [
        ("r600", 0o600),
        ("x755", 0o755),
        ("suid", 0o4755),
        ("g2750", 0o2750),
    ] {
        let f = modes.join(name);
        std::fs::write(&f, name).unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let private = modes.join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::write(private.join("secret"), b"s").unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let sticky = modes.join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    // Deep directories.
    let mut deep = root.join("deep");
    for i in 0..DEPTH {
        deep = deep.join(format!("level{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("bottom.txt"), b"at the bottom\n").unwrap();
    std::fs::write(root.join("deep/level0/level1/mid.txt"), b"mid\n").unwrap();
    // Times.
    set_mtime(&root.join("hello.txt"), 981_173_106); // 2001-02-03
    set_mtime(&root.join("binary.dat"), 1_234_567_890);
    // (Before 2032: genisoimage's date arithmetic is off after it.)
    set_mtime(&deep.join("bottom.txt"), 1_900_000_000);
    if specials && is_root() {
        let c = |p: &Path| std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: plain system calls on NUL-terminated paths we own.
        unsafe {
            assert_eq!(libc::mkfifo(c(&root.join("fifo")).as_ptr(), 0o644), 0);
            let dev = libc::makedev(1, 3);
            assert_eq!(
                libc::mknod(c(&root.join("null")).as_ptr(), libc::S_IFCHR | 0o666, dev),
                0
            );
            let dev = libc::makedev(7, 200);
            assert_eq!(
                libc::mknod(
                    c(&root.join("loopdev")).as_ptr(),
                    libc::S_IFBLK | 0o660,
                    dev
                ),
                0
            );
            let owned = c(&root.join("hello.txt"));
            assert_eq!(libc::chown(owned.as_ptr(), 1234, 5678), 0);
            let owned = c(&modes);
            assert_eq!(libc::chown(owned.as_ptr(), 1000, 100), 0);
            let owned = c(&root.join("rel-link"));
            assert_eq!(libc::lchown(owned.as_ptr(), 42, 43), 0);
        }
    }
    // Directory mtimes last: creating entries changes them.
    set_mtime(&root.join("deep"), 1_500_000_000);
    deep
}

/// `xorriso -as mkisofs ARGS -o IMAGE SRC` (quiet).
pub fn xorriso(image: &Path, src: &Path, args: &[&str]) {
    let mut a = vec!["-as", "mkisofs", "-quiet"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", image.to_str().unwrap(), src.to_str().unwrap()]);
    run("xorriso", &a);
}

/// `genisoimage ARGS -o IMAGE SRC` (quiet).
pub fn genisoimage(image: &Path, src: &Path, args: &[&str]) {
    let mut a = vec!["-quiet", "-input-charset", "utf-8"];
    a.extend_from_slice(args);
    a.extend_from_slice(&["-o", image.to_str().unwrap(), src.to_str().unwrap()]);
    run("genisoimage", &a);
}

/// A kernel with the ISO 9660 and ext2 drivers.
pub fn boot() -> (Kernel, Process) {
    let k = Kernel::builder().ext2().iso9660().boot().expect("boot");
    let p = k.process().expect("process");
    (k, p)
}

/// Boots a kernel and mounts `image` on `/mnt` with `options`.
pub fn mount(image: &Path, options: &str) -> (Kernel, Process) {
    let (k, p) = boot();
    rump::iso9660::mount_image(&p, image, "/dev/cd0", "/mnt", options).expect("mount");
    (k, p)
}

/// The comparable view of a walk: directory link counts and sizes left
/// out (ISO writers count them their own way).
pub fn normalize(mut m: BTreeMap<String, Info>) -> BTreeMap<String, Info> {
    for i in m.values_mut() {
        if i.mode & 0o170000 == 0o040000 {
            i.nlink = 0;
        }
        if i.mode & 0o170000 != 0o020000 && i.mode & 0o170000 != 0o060000 {
            i.rdev = 0;
        }
    }
    m
}

/// Asserts two walks agree, naming the first difference.
pub fn assert_same(ours: &BTreeMap<String, Info>, host: &BTreeMap<String, Info>) {
    let a: Vec<_> = ours.keys().collect();
    let b: Vec<_> = host.keys().collect();
    let only_ours: Vec<_> = a.iter().filter(|k| !host.contains_key(**k)).collect();
    let only_host: Vec<_> = b.iter().filter(|k| !ours.contains_key(**k)).collect();
    assert!(
        only_ours.is_empty() && only_host.is_empty(),
        "names differ: only ours {only_ours:?}, only on the host {only_host:?}"
    );
    for (k, v) in ours {
        assert_eq!(v, &host[k], "{k}: ours (left) vs host (right)");
    }
}
