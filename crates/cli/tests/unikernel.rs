//! `rump unikernel run` on real guests under KVM: the example applications
//! of crates/uk-apps, built here for x86_64-unknown-none. Skips with one
//! line where /dev/kvm or the target is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Builds the guests once; `None` (with the reason printed) if it cannot.
fn guests() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        // A target directory of its own: the test's own build holds the
        // workspace's lock while tests run.
        let target = workspace().join("target/uk-guests");
        let out = Command::new(cargo)
            .current_dir(workspace())
            .args([
                "build",
                "--target",
                "x86_64-unknown-none",
                "-p",
                "rump-uk-apps",
                "--bins",
            ])
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "cannot build the guests for x86_64-unknown-none:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        Some(target.join("x86_64-unknown-none/debug"))
    })
    .as_deref()
}

macro_rules! require {
    () => {{
        if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_err()
        {
            eprintln!("skipped: /dev/kvm cannot be opened here");
            return;
        }
        match guests() {
            Some(d) => d,
            None => panic!("the guests did not build (see above)"),
        }
    }};
}

fn rump() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rump"))
}

fn run(args: &[&str]) -> Output {
    let out = rump()
        .args(["unikernel", "run"])
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn hello_exits_with_its_code_and_prints() {
    let dir = require!();
    let img = dir.join("uk-hello");
    let out = run(&[img.to_str().unwrap(), "--param", "exit=7"]);
    assert_eq!(out.status.code(), Some(7));
    let stdout = s(&out.stdout);
    assert!(stdout.contains("hello: read back: hello from a rump kernel on tmpfs"));
    assert!(stdout.contains("hello: exiting with 7"));
    let out = run(&[img.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn boot_trace_prints_the_phases() {
    let dir = require!();
    let out = run(&[dir.join("uk-hello").to_str().unwrap(), "--boot-trace"]);
    assert_eq!(out.status.code(), Some(0));
    let err = s(&out.stderr);
    let mut at = 0;
    for phase in ["entry", "platform", "kernel-up", "app-main"] {
        let p = err[at..]
            .find(&format!("uk: boot: {phase}"))
            .unwrap_or_else(|| panic!("phase {phase} missing or out of order"));
        at += p;
    }
    assert!(err.contains("guest time to app-main"));
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn mke2fs_image(dir: &Path) -> PathBuf {
    let tree = dir.join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("readme.txt"), b"an ext2 image made by mke2fs\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(tree.join("big.bin"), &big).unwrap();
    std::fs::create_dir(tree.join("sub")).unwrap();
    let img = dir.join("disk.img");
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b", "1024", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("4M")
        .status()
        .unwrap();
    assert!(st.success());
    img
}

fn sum(data: &[u8]) -> u32 {
    data.iter()
        .fold(0u32, |a, &b| a.wrapping_mul(31).wrapping_add(b as u32))
}

#[test]
fn ext2_app_reads_and_writes_an_mke2fs_image() {
    let dir = require!();
    if !have("mke2fs") || !have("e2fsck") {
        eprintln!("skipped: mke2fs/e2fsck missing (e2fsprogs)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = mke2fs_image(tmp.path());
    let app = dir.join("uk-ext2");
    // Read-only first.
    let disk = format!("/dev/disk0={},ro", img.display());
    let out = run(&[app.to_str().unwrap(), "--disk", &disk]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = s(&out.stdout);
    assert!(
        stdout.contains("ext2: ls /mnt: big.bin lost+found readme.txt sub"),
        "{stdout}"
    );
    assert!(stdout.contains(r#"readme.txt: 29 bytes"#), "{stdout}");
    assert!(
        stdout.contains(r#"text "an ext2 image made by mke2fs\n""#),
        "{stdout}"
    );
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert!(
        stdout.contains(&format!("big.bin: 300000 bytes, sum {:08x}", sum(&big))),
        "{stdout}"
    );
    // Then writable: the file it writes is there afterwards, and the image
    // is clean.
    let disk = format!("/dev/disk0={}", img.display());
    let out = run(&[app.to_str().unwrap(), "--disk", &disk, "--param", "write=1"]);
    assert_eq!(out.status.code(), Some(0));
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    assert!(fsck.status.success(), "e2fsck: {}", s(&fsck.stdout));
    let cat = rump()
        .arg("cat")
        .arg(format!("{}:/from-guest.txt", img.display()))
        .output()
        .unwrap();
    assert_eq!(
        s(&cat.stdout),
        "written by the unikernel\n",
        "{}",
        s(&cat.stderr)
    );
}

#[test]
fn garbage_hypercalls_get_errors_or_stop_the_guest() {
    let dir = require!();
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    std::fs::write(&img, vec![0u8; 64 << 10]).unwrap();
    let app = dir.join("uk-garbage");
    let disk = format!("/dev/disk0={},ro", img.display());
    let base = [
        app.to_str().unwrap(),
        "--disk",
        &disk,
        "--mem",
        "16M",
        "--param",
        "mem=16777216",
    ];
    // Every bad call answered with the right error; exit 0 = no failures.
    let out = run(&base);
    let stdout = s(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for name in [
        "unknown-number",
        "disk-not-given",
        "read-past-disk-end",
        "read-outside-memory",
        "read-into-page-tables",
        "length-over-limit",
        "console-range-overflows",
        "write-to-read-only-disk",
        "link-not-given",
    ] {
        assert!(
            stdout.contains(&format!("garbage: {name}: ok")),
            "{name}: {stdout}"
        );
    }
    assert_eq!(std::fs::read(&img).unwrap(), vec![0u8; 64 << 10]);
    // What cannot be answered stops the guest with a message; the runner
    // exits cleanly with 125 (and a register dump where the CPU faulted).
    for (fin, msg) in [
        ("block-outside", "parameter block"),
        ("port", "0x3f8"),
        ("null", "triple-faulted"),
    ] {
        let mut args = base.to_vec();
        let p = format!("final={fin}");
        args.extend(["--param", &p]);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(125), "{fin}");
        let err = s(&out.stderr);
        assert!(err.contains(msg), "{fin}: {err}");
        if fin == "null" {
            assert!(err.contains("rip=") && err.contains("cr2="), "{err}");
        }
    }
    // A panic is reported with its message and exit status 101.
    let mut args = base.to_vec();
    args.extend(["--param", "final=panic"]);
    let out = run(&args);
    assert_eq!(out.status.code(), Some(101));
    assert!(s(&out.stdout).contains("uk: panic: deliberate panic"));
    assert!(s(&out.stdout).contains("uk: registers: rsp="));
}

#[test]
fn sigterm_and_timeout_stop_a_spinning_guest() {
    let dir = require!();
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    std::fs::write(&img, vec![0u8; 4096]).unwrap();
    let disk = format!("/dev/disk0={},ro", img.display());
    let app = dir.join("uk-garbage");
    let child = rump()
        .args(["unikernel", "run", app.to_str().unwrap(), "--disk", &disk])
        .args(["--param", "final=spin"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Let it reach its loop, then SIGTERM it.
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5));
    assert_eq!(out.status.code(), Some(128 + libc::SIGTERM));
    assert!(s(&out.stdout).contains("garbage: spinning"));
    assert!(s(&out.stderr).contains("stopped by signal 15"));
    // The timeout option does the same on its own.
    let out = run(&[
        app.to_str().unwrap(),
        "--disk",
        &disk,
        "--param",
        "final=spin",
        "--timeout",
        "0.5",
    ]);
    assert_eq!(out.status.code(), Some(124));
}
