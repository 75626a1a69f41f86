//! The C example programs (`examples/c/`), installed and compiled the way
//! a C user would: `scripts/install-capi PREFIX`, then the system `cc`
//! with `pkg-config --cflags --libs rump` (or `rumpclient`), then run.
//! Each program checks its own results and prints `NAME: ok`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The install prefix, once per test run; `None` (the test skips) when
/// `cc` or `pkg-config` is missing.
fn prefix() -> Option<&'static Path> {
    static PREFIX: OnceLock<Option<PathBuf>> = OnceLock::new();
    PREFIX
        .get_or_init(|| {
            for t in ["cc", "pkg-config"] {
                if !have(t) {
                    eprintln!("SKIPPED: no {t} on this machine");
                    return None;
                }
            }
            let prefix = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capi-prefix");
            let _ = std::fs::remove_dir_all(&prefix);
            let st = Command::new(repo().join("scripts/install-capi"))
                .arg("--test-features")
                .arg(&prefix)
                .status()
                .expect("run scripts/install-capi");
            assert!(st.success(), "scripts/install-capi failed");
            Some(prefix)
        })
        .as_deref()
}

/// Compiles `examples/c/SRC.c` against library `lib` into `OUT`.
fn compile(prefix: &Path, src: &str, out: &str, lib: &str, defines: &[&str]) -> PathBuf {
    let pc = Command::new("pkg-config")
        .args(["--cflags", "--libs", lib])
        .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig"))
        .output()
        .expect("pkg-config");
    assert!(pc.status.success(), "pkg-config {lib}: {pc:?}");
    let flags = String::from_utf8(pc.stdout).unwrap();
    let exe = prefix.join(out);
    let examples = repo().join("examples/c");
    let o = Command::new("cc")
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-O1", "-o"])
        .arg(&exe)
        .arg(examples.join(format!("{src}.c")))
        .args(defines)
        .args(flags.split_whitespace())
        .arg("-lpthread")
        .arg(format!("-Wl,-rpath,{}", prefix.join("lib").display()))
        .output()
        .expect("cc");
    assert!(
        o.status.success(),
        "cc {src}.c: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    exe
}

fn check_ok(name: &str, o: &Output) {
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success() && out.contains(&format!("{name}: ok")),
        "{name}: status {:?}\nstdout: {out}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

fn run(exe: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new("timeout")
        .arg("120")
        .arg(exe)
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("run example")
}

#[test]
fn files_on_tmpfs() {
    let Some(p) = prefix() else { return };
    let exe = compile(p, "files", "files", "rump", &[]);
    check_ok("files", &run(&exe, &[], &[]));
}

/// The same program linked with the static library: no librump.so at
/// run time.
#[test]
fn files_on_tmpfs_with_the_static_library() {
    let Some(p) = prefix() else { return };
    let exe = p.join("files-static");
    let o = Command::new("cc")
        .args(["-std=gnu11", "-Wall", "-O1", "-o"])
        .arg(&exe)
        .arg(repo().join("examples/c/files.c"))
        .arg(format!("-I{}", p.join("include").display()))
        .arg(p.join("lib/librump.a"))
        .args(["-lpthread", "-ldl", "-lm"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let ldd = Command::new("ldd").arg(&exe).output();
    if let Ok(l) = ldd {
        assert!(!String::from_utf8_lossy(&l.stdout).contains("librump"));
    }
    check_ok("files", &run(&exe, &[], &[]));
}

#[test]
fn ext2_image_registered_with_etfs_and_mounted() {
    let Some(p) = prefix() else { return };
    for t in ["mke2fs", "e2fsck", "debugfs"] {
        if !have(t) {
            eprintln!("SKIPPED: no {t}");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("hello.txt"), "hello ext2!\n").unwrap();
    let img = dir.path().join("disk.img");
    let st = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext2", "-d"])
        .arg(&tree)
        .arg(&img)
        .arg("8M")
        .status()
        .unwrap();
    assert!(st.success());
    // A copy of the image after 1 MiB of other bytes, for a window.
    let wrapped = dir.path().join("wrapped.img");
    let mut bytes = vec![0xa5u8; 1 << 20];
    bytes.extend(std::fs::read(&img).unwrap());
    std::fs::write(&wrapped, &bytes).unwrap();
    let exe = compile(p, "ext2", "ext2", "rump", &[]);
    check_ok(
        "ext2",
        &run(
            &exe,
            &[img.to_str().unwrap(), wrapped.to_str().unwrap()],
            &[],
        ),
    );
    assert_eq!(
        std::fs::read(&wrapped).unwrap(),
        bytes,
        "read-only window written"
    );
    let fsck = Command::new("e2fsck")
        .arg("-fn")
        .arg(&img)
        .output()
        .unwrap();
    assert!(fsck.status.success(), "e2fsck: {fsck:?}");
    let cat = |path: &str| {
        let o = Command::new("debugfs")
            .args(["-R", &format!("cat {path}")])
            .arg(&img)
            .output()
            .unwrap();
        String::from_utf8(o.stdout).unwrap()
    };
    assert_eq!(cat("/dir/nested"), "nested\n");
    assert_eq!(cat("/from-c.txt"), "written through librump\n".repeat(1000));
}

#[test]
fn two_kernels_exchange_tcp_and_udp_over_a_bus() {
    let Some(p) = prefix() else { return };
    let exe = compile(p, "net", "net", "rump", &[]);
    check_ok("net", &run(&exe, &[], &[]));
}

#[test]
fn lwproc_and_kernel_handles() {
    let Some(p) = prefix() else { return };
    let exe = compile(p, "lwproc", "lwproc", "rump", &[]);
    check_ok("lwproc", &run(&exe, &[], &[]));
}

#[test]
fn packet_interface_from_c() {
    let Some(p) = prefix() else { return };
    let exe = compile(p, "pktif", "pktif", "rump", &[]);
    check_ok("pktif", &run(&exe, &[], &[]));
}

/// Waits until `path` exists.
fn wait_for(path: &Path) {
    let start = Instant::now();
    while !path.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `rump` binary of this build (built if this test runs alone).
fn rump_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("rump");
    if !bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "rump-cli", "--bin", "rump"])
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(st.success(), "cargo build rump");
    }
    bin
}

#[test]
fn the_same_program_through_librumpclient_against_rump_server() {
    let Some(p) = prefix() else { return };
    let client = compile(p, "files", "files-client", "rumpclient", &["-DRUMP_CLIENT"]);
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("rump.sock");
    let pidfile = dir.path().join("pid");
    let url = format!("unix://{}", sock.display());
    let mut server = Command::new(rump_binary())
        .args(["server", "--log", "quiet", "--pidfile"])
        .arg(&pidfile)
        .arg(&url)
        .spawn()
        .unwrap();
    wait_for(&pidfile);
    let o = run(&client, &[], &[("RUMP_SERVER", &url)]);
    // Twice: the first run left the server as it found it.
    let o2 = run(&client, &[], &[("RUMP_SERVER", &url)]);
    // SAFETY: kill has no memory preconditions; the pid is our child's.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let st = server.wait().unwrap();
    check_ok("files", &o);
    check_ok("files", &o2);
    assert!(st.success(), "rump server exit: {st:?}");
    assert!(!sock.exists(), "socket file left behind");

    // Without $RUMP_SERVER, rumpclient_init fails cleanly.
    let o = run(&client, &[], &[("RUMP_SERVER", "")]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rumpclient_init"),
        "{o:?}"
    );
}

#[test]
fn librumpclient_against_a_kernel_served_by_rump_init_server() {
    let Some(p) = prefix() else { return };
    let server = compile(p, "server", "server", "rump", &[]);
    let client = compile(
        p,
        "files",
        "files-client2",
        "rumpclient",
        &["-DRUMP_CLIENT"],
    );
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("s.sock");
    let url = format!("unix://{}", sock.display());
    let mut child = Command::new(&server)
        .arg(&url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    let o = run(&client, &[], &[("RUMP_SERVER", &url)]);
    drop(child.stdin.take());
    let st = child.wait().unwrap();
    check_ok("files", &o);
    assert!(st.success());
}

/// Every function the installed headers declare is called by one of the
/// example programs, so none goes untested from C.
#[test]
fn every_header_function_is_called_from_c() {
    let Some(p) = prefix() else { return };
    let mut declared = Vec::new();
    for h in ["rump.h", "rump_syscalls.h", "rumpclient.h"] {
        let text = std::fs::read_to_string(p.join("include/rump").join(h)).unwrap();
        for (i, _) in text.match_indices('(') {
            let before = &text[..i];
            let start = before
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .map_or(0, |j| j + 1);
            let name = &before[start..];
            if name.starts_with("rump_") || name.starts_with("rumpclient_") {
                declared.push(name.to_string());
            }
        }
    }
    declared.sort();
    declared.dedup();
    assert!(declared.len() > 120, "parsed only {}", declared.len());
    let mut sources = String::new();
    for e in std::fs::read_dir(repo().join("examples/c")).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "c") {
            sources.push_str(&std::fs::read_to_string(path).unwrap());
        }
    }
    let untested: Vec<&String> = declared
        .iter()
        .filter(|n| !sources.contains(&format!("{n}(")))
        .collect();
    assert!(untested.is_empty(), "never called from C: {untested:?}");
}
