//! `rump unikernel run` on real guests under KVM: the example applications
//! of crates/uk-apps, built here for x86_64-unknown-none. Skips with one
//! line where /dev/kvm or the target is missing.

use std::io::Read;
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
    DIR.get_or_init(|| build_apps(true)).as_deref()
}

/// Builds the example applications for the bare-metal target (`guest`)
/// or the host, in a target directory of their own (the test's own build
/// holds the workspace's lock while tests run).
fn build_apps(guest: bool) -> Option<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let target = workspace().join("target/uk-guests");
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace())
        .args(["build", "-p", "rump-uk-apps", "--bins"]);
    if guest {
        cmd.args(["--target", "x86_64-unknown-none"]);
    }
    let out = cmd.env("CARGO_TARGET_DIR", &target).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "cannot build the applications (guest: {guest}):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(if guest {
        target.join("x86_64-unknown-none/debug")
    } else {
        target.join("debug")
    })
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
fn ext2_app_reads_and_writes_mke2fs_and_newfs_images() {
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
    write_and_check(&app, &img);
    // The same on an image made by our own newfs.
    let img = tmp.path().join("newfs.img");
    let st = rump()
        .args(["newfs", "-s", "8M"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", s(&st.stderr));
    write_and_check(&app, &img);
}

/// Runs the ext2 application with `write=1` on `img`, then checks the
/// image with e2fsck and reads the file back with the image tools.
fn write_and_check(app: &Path, img: &Path) {
    let disk = format!("/dev/disk0={}", img.display());
    let out = run(&[app.to_str().unwrap(), "--disk", &disk, "--param", "write=1"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(s(&out.stdout).contains("ext2: wrote /mnt/from-guest.txt"));
    let fsck = Command::new("e2fsck").arg("-fn").arg(img).output().unwrap();
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

// ----- network applications over a tap ------------------------------------

/// The example applications built for the host (the process platform),
/// once; `None` (with the reason printed) if they cannot be built.
fn host_apps() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| build_apps(false)).as_deref()
}

const APP_IP: &str = "192.0.2.2";

/// Why the network tests cannot run here, if they cannot.
fn net_skip() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (a network namespace and a tap device need CAP_NET_ADMIN)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    for t in ["ip", "ping", "socat", "curl", "ab", "mke2fs"] {
        if !have(t) {
            return Some(format!("{t} not installed (scripts/test installs it)"));
        }
    }
    None
}

/// A network namespace with the tap `uktap0` at 192.0.2.1/24, deleted
/// (with the tap) on drop.
struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Netns {
        let ns = Netns(format!("ukn{}{tag}", std::process::id()));
        let ok = |c: &mut Command| {
            let out = c.output().unwrap();
            assert!(out.status.success(), "{c:?}: {}", s(&out.stderr));
        };
        ok(Command::new("ip").args(["netns", "add", &ns.0]));
        for args in [
            &["ip", "link", "set", "lo", "up"][..],
            &["ip", "tuntap", "add", "dev", "uktap0", "mode", "tap"],
            &["ip", "addr", "add", "192.0.2.1/24", "dev", "uktap0"],
            &["ip", "link", "set", "uktap0", "up"],
        ] {
            ok(&mut ns.cmd(args));
        }
        ns
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(args);
        c
    }

    /// The tap as `--net` and the `link` parameter name it.
    fn tap(&self) -> String {
        format!("netns:{}:uktap0", self.0)
    }

    fn ok(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}{}",
            args.join(" "),
            s(&out.stdout),
            s(&out.stderr)
        );
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A server process (a runner or an application in a process) whose
/// stdout is collected; killed on drop.
struct Server {
    child: std::process::Child,
    out: std::sync::Arc<std::sync::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `cmd` and waits (up to 120 s) for `ready` on its stdout or
    /// stderr (a guest's console is the runner's stdout; a process's is
    /// its stderr).
    fn start(mut cmd: Command, ready: &str) -> Server {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipes: [Box<dyn std::io::Read + Send>; 2] = [
            Box::new(child.stdout.take().unwrap()),
            Box::new(child.stderr.take().unwrap()),
        ];
        let readers = pipes.map(|mut pipe| {
            let out2 = out.clone();
            std::thread::spawn(move || {
                let mut b = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut b) {
                    if n == 0 {
                        break;
                    }
                    out2.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&b[..n]));
                }
            })
        });
        let mut srv = Server {
            child,
            out,
            readers: Vec::from(readers),
        };
        let t = Instant::now();
        while !srv.out.lock().unwrap().contains(ready) {
            if let Some(st) = srv.child.try_wait().unwrap() {
                panic!(
                    "server exited with {st} before it was ready: {}",
                    srv.output()
                );
            }
            assert!(
                t.elapsed() < Duration::from_secs(120),
                "server not ready: {}",
                srv.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        srv
    }

    fn output(&self) -> String {
        self.out.lock().unwrap().clone()
    }

    /// Sends SIGTERM and returns the exit status (waiting up to 10 s).
    fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                for r in self.readers.drain(..) {
                    let _ = r.join();
                }
                return st;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "server ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deterministic bytes (xorshift), different per seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Pipes `data` through `socat` to `addr` in the namespace and returns what
/// came back.
fn socat_roundtrip(ns: &Netns, addr: &str, data: &[u8]) -> Vec<u8> {
    let mut c = ns
        .cmd(&["socat", "-t", "10", "-T", "60", "STDIO", addr])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = c.stdin.take().unwrap();
    let data = data.to_vec();
    let w = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &data).unwrap());
    let mut back = Vec::new();
    c.stdout.take().unwrap().read_to_end(&mut back).unwrap();
    w.join().unwrap();
    assert!(c.wait().unwrap().success(), "socat {addr}");
    back
}

#[test]
fn echo_unikernel_answers_ping_tcp_and_udp_over_a_tap() {
    let dir = require!();
    if let Some(why) = net_skip() {
        eprintln!("skipped: {why}");
        return;
    }
    let ns = Netns::create("e");
    let mut cmd = rump();
    cmd.args(["unikernel", "run"])
        .arg(dir.join("uk-echo"))
        .args(["--net", &ns.tap(), "--mem", "16M", "--timeout", "600"]);
    let srv = Server::start(cmd, "echo: ready");
    ns.ok(&["ping", "-c", "3", "-i", "0.2", "-W", "2", APP_IP]);
    // TCP echo: 1 MiB through and back, while it is still being sent.
    let sent = pattern(1, 1 << 20);
    let back = socat_roundtrip(&ns, &format!("TCP:{APP_IP}:7"), &sent);
    assert_eq!(back.len(), sent.len());
    assert!(back == sent, "the echo differs");
    // UDP echo.
    let back = socat_roundtrip(&ns, &format!("UDP:{APP_IP}:7"), b"a datagram\n");
    assert_eq!(back, b"a datagram\n");
    // Discard takes everything and closes when we do.
    let st = ns
        .cmd(&["socat", "-u", "-", &format!("TCP:{APP_IP}:9")])
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            std::io::Write::write_all(c.stdin.as_mut().unwrap(), &pattern(2, 1 << 20))?;
            drop(c.stdin.take());
            c.wait()
        })
        .unwrap();
    assert!(st.success());
    // Chargen's first line is RFC 864's.
    let out = ns
        .cmd(&[
            "sh",
            "-c",
            &format!("socat -u TCP:{APP_IP}:19 - | head -c 148"),
        ])
        .output()
        .unwrap();
    let line0: Vec<u8> = (0..72u8).map(|i| b' ' + i).chain(*b"\r\n").collect();
    let line1: Vec<u8> = (1..73u8).map(|i| b' ' + i).chain(*b"\r\n").collect();
    assert_eq!(out.stdout, [line0, line1].concat());
    // SIGTERM stops the guest at once and the runner reports it.
    let st = srv.terminate();
    assert_eq!(st.code(), Some(128 + libc::SIGTERM));
    // Malformed frame batches on a real link get errors; the runner stays
    // well.
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    std::fs::write(&img, vec![0u8; 64 << 10]).unwrap();
    let disk = format!("/dev/disk0={},ro", img.display());
    let out = run(&[
        dir.join("uk-garbage").to_str().unwrap(),
        "--disk",
        &disk,
        "--mem",
        "16M",
        "--param",
        "mem=16777216",
        "--net",
        &ns.tap(),
        "--param",
        "net=1",
    ]);
    let stdout = s(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for name in [
        "batch-link-not-given",
        "batch-record-past-end",
        "batch-empty-record",
        "batch-reserved-word",
        "batch-too-many",
        "batch-recv-into-page-tables",
        "batch-recv-outside-memory",
        "batch-recv-wraps",
        "netio-desc-outside-memory",
        "netio-link-not-given",
        "netio-recv-into-page-tables",
        "netio-too-many-frames",
        "netio-malformed-send",
    ] {
        assert!(
            stdout.contains(&format!("garbage: {name}: ok")),
            "{name}: {stdout}"
        );
    }
}

/// A tree for the HTTP server: small files, a 64 MiB one, a name that
/// needs escaping, a directory with an `index.html`; and an ext2 image of
/// it made by mke2fs.
fn http_tree(dir: &Path) -> (PathBuf, PathBuf) {
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(tree.join("dir with space")).unwrap();
    std::fs::write(tree.join("hello.txt"), b"hello over http\n").unwrap();
    std::fs::write(tree.join("big.bin"), pattern(3, 64 << 20)).unwrap();
    std::fs::write(tree.join("sub/index.html"), b"<h1>sub</h1>\n").unwrap();
    std::fs::write(tree.join("sub/deeper/x.bin"), pattern(4, 100_001)).unwrap();
    std::fs::write(tree.join("dir with space/a&b.txt"), b"escaped\n").unwrap();
    std::fs::write(tree.join("empty"), b"").unwrap();
    let img = dir.join("www.img");
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-b", "4096", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("96M")
        .status()
        .unwrap();
    assert!(st.success());
    (tree, img)
}

/// What the HTTP server must do, the same on either platform.
fn check_http_server(ns: &Netns, tree: &Path, tmp: &Path) {
    let url = |p: &str| format!("http://{APP_IP}{p}");
    let fetch = |p: &str| -> Vec<u8> {
        let dest = tmp.join("fetched");
        ns.ok(&[
            "curl",
            "-sS",
            "--fail",
            "--max-time",
            "300",
            "-o",
            dest.to_str().unwrap(),
            &url(p),
        ]);
        std::fs::read(&dest).unwrap()
    };
    // Every file of the tree, byte for byte.
    for (path, file) in [
        ("/hello.txt", "hello.txt"),
        ("/big.bin", "big.bin"),
        ("/sub/deeper/x.bin", "sub/deeper/x.bin"),
        ("/dir%20with%20space/a%26b.txt", "dir with space/a&b.txt"),
        ("/empty", "empty"),
        ("/sub/", "sub/index.html"),
    ] {
        let want = std::fs::read(tree.join(file)).unwrap();
        let got = fetch(path);
        assert_eq!(got.len(), want.len(), "{path}");
        assert!(got == want, "{path}: different bytes");
    }
    // A directory listing with escaped links.
    let root = s(&fetch("/"));
    for link in [
        "href=\"big.bin\"",
        "href=\"dir%20with%20space/\"",
        "href=\"sub/\"",
    ] {
        assert!(root.contains(link), "{link} missing from {root}");
    }
    let sub = s(&fetch("/dir%20with%20space/"));
    assert!(
        sub.contains("a&amp;b.txt") && sub.contains("href=\"../\""),
        "{sub}"
    );
    // HEAD, status codes, redirects.
    let head = s(&ns.ok(&["curl", "-sS", "-I", &url("/big.bin")]).stdout);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: 67108864"), "{head}");
    assert!(head.contains("Last-Modified: "), "{head}");
    let code = |args: &[&str]| -> String {
        let mut a = vec!["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}"];
        a.extend_from_slice(args);
        s(&ns.ok(&a).stdout)
    };
    assert_eq!(code(&[&url("/missing")]), "404");
    assert_eq!(code(&[&url("/hello.txt/x")]), "404");
    assert_eq!(code(&[&url("/sub")]), "301");
    assert_eq!(code(&["-X", "POST", &url("/hello.txt")]), "405");
    assert_eq!(code(&[&url("/../../hello.txt")]), "200");
    // Keep-alive: two requests on one connection.
    let out = ns.ok(&[
        "curl",
        "-sv",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &url("/hello.txt"),
        &url("/sub/deeper/x.bin"),
    ]);
    let err = s(&out.stderr);
    assert!(err.contains("existing connection"), "no reuse: {err}");
    // Hostile requests get an error status, not a hang or a crash.
    let bad = socat_roundtrip(
        ns,
        &format!("TCP:{APP_IP}:80"),
        b"\x01\x02 nonsense\r\n\r\n",
    );
    assert!(s(&bad).starts_with("HTTP/1.1 400"), "{}", s(&bad));
    let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 20 << 10));
    let bad = socat_roundtrip(ns, &format!("TCP:{APP_IP}:80"), &huge);
    assert!(s(&bad).starts_with("HTTP/1.1 431"), "{}", s(&bad));
    // ab: 10,000 requests, 16 at a time, a new connection each.
    let out = ns.ok(&["ab", "-q", "-n", "10000", "-c", "16", &url("/hello.txt")]);
    let ab = s(&out.stdout);
    assert!(ab.contains("Complete requests:      10000"), "{ab}");
    assert!(ab.contains("Failed requests:        0"), "{ab}");
    assert!(!ab.contains("Non-2xx"), "{ab}");
    // And with keep-alive.
    let out = ns.ok(&[
        "ab",
        "-q",
        "-k",
        "-n",
        "10000",
        "-c",
        "16",
        &url("/hello.txt"),
    ]);
    let ab = s(&out.stdout);
    assert!(ab.contains("Failed requests:        0"), "{ab}");
    assert!(ab.contains("Keep-Alive requests:    10000"), "{ab}");
}

#[test]
fn http_server_serves_an_ext2_tree_as_a_unikernel_and_as_a_process() {
    let dir = require!();
    if let Some(why) = net_skip() {
        eprintln!("skipped: {why}");
        return;
    }
    let host = host_apps().expect("the applications did not build for the host (see above)");
    let tmp = tempfile::tempdir().unwrap();
    let (tree, img) = http_tree(tmp.path());
    let before = std::fs::read(&img).unwrap();
    // On KVM.
    {
        let ns = Netns::create("u");
        let mut cmd = rump();
        cmd.args(["unikernel", "run"])
            .arg(dir.join("uk-httpd"))
            .arg("--disk")
            .arg(format!("/dev/disk0={},ro", img.display()))
            .args(["--net", &ns.tap(), "--timeout", "900"]);
        let srv = Server::start(cmd, "httpd: ready");
        check_http_server(&ns, &tree, tmp.path());
        assert_eq!(srv.terminate().code(), Some(128 + libc::SIGTERM));
    }
    // The same application as a process on hyper-posix.
    {
        let ns = Netns::create("p");
        let mut cmd = Command::new(host.join("uk-httpd"));
        cmd.env("disk", &img)
            .env("link", ns.tap())
            .env("ip", format!("{APP_IP}/24"));
        let srv = Server::start(cmd, "httpd: ready");
        check_http_server(&ns, &tree, tmp.path());
        drop(srv);
    }
    assert!(
        std::fs::read(&img).unwrap() == before,
        "a read-only server changed the image"
    );
}
