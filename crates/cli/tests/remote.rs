//! Remote kernels end to end: a real `rump server` process and real
//! clients (threads of this test, and child processes of it for the
//! cases that kill a client or run it as another user).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rump::remote::{Attach, Client, ConnectOptions, Url};
use rump::sys::consts::o;
use rump::sys::{Errno, Request, Response, Syscalls};

const RUMP: &str = env!("CARGO_BIN_EXE_rump");

struct Server {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    sock: PathBuf,
}

impl Server {
    fn start(extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("s.sock");
        let url = format!("unix://{}", sock.display());
        Server::start_url(dir, &url, sock, extra)
    }

    fn start_url(dir: tempfile::TempDir, url: &str, sock: PathBuf, extra: &[&str]) -> Server {
        let mut child = Command::new(RUMP)
            .arg("server")
            .arg(url)
            .arg("--ready-stdout")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        if !line.starts_with("ready") {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("server did not start: {err}");
        }
        Server {
            child,
            dir,
            url: url.to_string(),
            sock,
        }
    }

    fn connect(&self) -> Client {
        rump::remote::connect(&self.url).unwrap()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Open descriptors of the server process.
    fn fds(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .unwrap()
            .count()
    }

    /// Resident memory of the server in KiB.
    fn rss_kib(&self) -> u64 {
        let s = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        s.lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap()
            .parse()
            .unwrap()
    }

    /// SIGTERM, then checks a clean exit and the socket file gone.
    fn stop(mut self) -> String {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = wait_timeout(&mut self.child, Duration::from_secs(20));
        let mut err = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert!(status.success(), "server exit {status}: {err}");
        assert!(!self.sock.exists(), "socket file left behind");
        err
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_timeout(c: &mut Child, t: Duration) -> std::process::ExitStatus {
    let end = Instant::now() + t;
    loop {
        if let Some(s) = c.try_wait().unwrap() {
            return s;
        }
        assert!(Instant::now() < end, "process {} did not exit", c.id());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn int(r: Result<Response, Errno>) -> Result<i64, Errno> {
    match r? {
        Response::Int(v) => Ok(v),
        Response::Size(v) => Ok(v as i64),
        other => panic!("unexpected {other:?}"),
    }
}

fn open(c: &dyn Syscalls, path: &str, flags: i32) -> Result<i32, Errno> {
    int(c.call(Request::Openat {
        dirfd: rump::sys::consts::at::FDCWD,
        path: path.as_bytes().to_vec(),
        flags,
        mode: 0o644,
    }))
    .map(|v| v as i32)
}

fn write(c: &dyn Syscalls, fd: i32, data: &[u8]) -> Result<i64, Errno> {
    int(c.call(Request::Write {
        fd,
        data: data.to_vec(),
    }))
}

fn pread(c: &dyn Syscalls, fd: i32, len: usize, offset: i64) -> Result<Vec<u8>, Errno> {
    match c.call(Request::Pread { fd, len, offset })? {
        Response::Bytes(b) => Ok(b),
        other => panic!("unexpected {other:?}"),
    }
}

fn close(c: &dyn Syscalls, fd: i32) -> Result<(), Errno> {
    c.call(Request::Close { fd }).map(drop)
}

/// Does a mix of calls in directory `dir` and checks every result.
fn mixed_calls(c: &dyn Syscalls, dir: &str, n: usize, shared_table: bool) {
    c.call(Request::Mkdirat {
        dirfd: rump::sys::consts::at::FDCWD,
        path: dir.as_bytes().to_vec(),
        mode: 0o755,
    })
    .unwrap();
    let pid = int(c.call(Request::Getpid)).unwrap();
    let mut i = 0;
    while i < n {
        let path = format!("{dir}/f{}", i % 7);
        let fd = open(c, &path, o::CREAT | o::RDWR | o::TRUNC).unwrap();
        let data = format!("{dir}:{i}").into_bytes();
        assert_eq!(write(c, fd, &data).unwrap(), data.len() as i64);
        assert_eq!(pread(c, fd, 100, 0).unwrap(), data);
        match c.call(Request::Fstat { fd }).unwrap() {
            Response::Stat(st) => assert_eq!(st.size, data.len() as u64),
            other => panic!("{other:?}"),
        }
        assert_eq!(int(c.call(Request::Getpid)).unwrap(), pid);
        close(c, fd).unwrap();
        if !shared_table {
            // (Threads sharing a table could reuse the number meanwhile.)
            assert_eq!(close(c, fd), Err(Errno::EBADF));
        }
        i += 6;
    }
}

#[test]
fn many_clients_each_1000_mixed_calls() {
    let s = Server::start(&[]);
    let threads: Vec<_> = (0..64)
        .map(|i| {
            let url = s.url.clone();
            std::thread::spawn(move || {
                let c = rump::remote::connect(&url).unwrap();
                mixed_calls(&c, &format!("/c{i}"), 1000, false);
                c.pid()
            })
        })
        .collect();
    let mut pids: Vec<i32> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), 64, "each connection is its own process");
    s.stop();
}

#[test]
fn one_client_64_threads_at_once() {
    let s = Server::start(&[]);
    let c = Arc::new(s.connect());
    // A pipe whose reader blocks proves calls are truly concurrent: 63
    // threads make progress while one is blocked in the server.
    let (r, w) = match c.call(Request::Pipe2 { flags: 0 }).unwrap() {
        Response::Pair(r, w) => (r, w),
        other => panic!("{other:?}"),
    };
    let blocked = {
        let c = c.clone();
        std::thread::spawn(move || c.call(Request::Read { fd: r, len: 10 }))
    };
    let barrier = Arc::new(std::sync::Barrier::new(63));
    let threads: Vec<_> = (0..63)
        .map(|i| {
            let (c, b) = (c.clone(), barrier.clone());
            std::thread::spawn(move || {
                b.wait();
                mixed_calls(&*c, &format!("/t{i}"), 300, true);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    write(&*c, w, b"wake").unwrap();
    assert_eq!(
        blocked.join().unwrap().unwrap(),
        Response::Bytes(b"wake".to_vec())
    );
    s.stop();
}

#[test]
fn fork_with_cookie_both_halves_work() {
    let s = Server::start(&[]);
    let parent = s.connect();
    let fd = open(&parent, "/shared", o::CREAT | o::RDWR).unwrap();
    write(&parent, fd, b"before ").unwrap();
    let cookie = parent.prefork().unwrap();
    let child = parent.attach_fork(cookie).unwrap();
    assert_ne!(child.pid(), parent.pid());
    // The child has a copy of the descriptor (same open file, so the
    // offset is shared, as after fork(2)).
    write(&child, fd, b"child ").unwrap();
    write(&parent, fd, b"parent").unwrap();
    assert_eq!(pread(&child, fd, 100, 0).unwrap(), b"before child parent");
    // Descriptor tables are separate after the fork.
    close(&child, fd).unwrap();
    assert_eq!(pread(&parent, fd, 6, 0).unwrap(), b"before");
    // Single use, and a forged cookie is refused.
    assert!(parent.attach_fork(cookie).is_err());
    assert!(parent.attach_fork([0x55; 16]).is_err());
    // Expiry: a cookie unused for longer than its lifetime is gone.
    // (The server's default is 10 s; fork_cancel covers the other end.)
    let c2 = parent.prefork().unwrap();
    parent.fork_cancel(c2).unwrap();
    assert!(parent.attach_fork(c2).is_err());
    // Exec re-attaches to the same process and closes close-on-exec fds.
    let keep = open(&parent, "/keep", o::CREAT | o::RDWR).unwrap();
    let gone = open(&parent, "/gone", o::CREAT | o::RDWR | o::CLOEXEC).unwrap();
    let (var, val) = parent.exec_env().unwrap();
    assert_eq!(var, "RUMP_RS_ATTACH");
    let cookie: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&val[5 + 2 * i..7 + 2 * i], 16).unwrap())
        .collect();
    let pid = parent.pid();
    drop(parent); // the old image goes away; its process stays for the exec
    let url = Url::parse(&s.url).unwrap();
    let exec = Client::connect_with(
        &url,
        ConnectOptions {
            attach: Attach::Exec {
                cookie: cookie.try_into().unwrap(),
            },
            ..ConnectOptions::default()
        },
    )
    .unwrap();
    assert_eq!(exec.pid(), pid);
    assert!(c_fstat_ok(&exec, keep));
    assert!(!c_fstat_ok(&exec, gone));
    drop(child);
    s.stop();
}

fn c_fstat_ok(c: &dyn Syscalls, fd: i32) -> bool {
    c.call(Request::Fstat { fd }).is_ok()
}

/// Child-process role for the tests below (does nothing in a normal run).
#[test]
fn child_role() {
    let Ok(role) = std::env::var("RUMP_TEST_ROLE") else {
        return;
    };
    let c = rump::remote::from_env().unwrap();
    match role.as_str() {
        "block" => {
            // A listener on a known port, a thread blocked in accept,
            // another blocked reading an empty pipe; then report.
            let fd = int(c.call(Request::Socket {
                domain: 2,
                ty: 1,
                protocol: 0,
            }))
            .unwrap() as i32;
            c.call(Request::Bind {
                fd,
                addr: rump::net::sockaddr(([127, 0, 0, 1], 7777)),
            })
            .unwrap();
            c.call(Request::Listen { fd, backlog: 4 }).unwrap();
            let (r, _w) = match c.call(Request::Pipe2 { flags: 0 }).unwrap() {
                Response::Pair(r, w) => (r, w),
                other => panic!("{other:?}"),
            };
            let c2 = c.clone();
            std::thread::spawn(move || c2.call(Request::Accept4 { fd, flags: 0 }));
            let c3 = c.clone();
            std::thread::spawn(move || c3.call(Request::Read { fd: r, len: 1 }));
            std::thread::sleep(Duration::from_millis(300));
            println!("BLOCKED");
            std::io::stdout().flush().unwrap();
            std::thread::sleep(Duration::from_secs(600));
        }
        "user" => {
            let r = c.call(Request::Mkdirat {
                dirfd: rump::sys::consts::at::FDCWD,
                path: b"/private/sub".to_vec(),
                mode: 0o755,
            });
            let uid = int(c.call(Request::Getuid)).unwrap();
            println!("uid={uid} mkdir={r:?}");
        }
        _ => panic!("unknown role {role}"),
    }
}

fn spawn_role(s: &Server, role: &str, uid: Option<u32>) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env("RUMP_TEST_ROLE", role)
        .env("RUMP_SERVER", &s.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(u) = uid {
        cmd.uid(u).gid(u);
    }
    cmd.spawn().unwrap()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn client_killed_mid_call_leaves_server_healthy() {
    let s = Server::start(&[]);
    let other = s.connect();
    let ofd = open(&other, "/other", o::CREAT | o::RDWR).unwrap();
    let base_fds = s.fds();
    let mut child = spawn_role(&s, "block", None);
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("BLOCKED") {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "child died early");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Its listener is closed (the port is free again) once the server has
    // interrupted its calls and closed its descriptors.
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let fd = int(other.call(Request::Socket {
            domain: 2,
            ty: 1,
            protocol: 0,
        }))
        .unwrap() as i32;
        let r = other.call(Request::Bind {
            fd,
            addr: rump::net::sockaddr(([127, 0, 0, 1], 7777)),
        });
        close(&other, fd).unwrap();
        if r.is_ok() {
            break;
        }
        assert_eq!(r, Err(Errno::EADDRINUSE));
        assert!(Instant::now() < end, "killed client's listener still open");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Others are intact, and the server's own descriptors are back.
    write(&other, ofd, b"still here").unwrap();
    assert_eq!(pread(&other, ofd, 100, 0).unwrap(), b"still here");
    let end = Instant::now() + Duration::from_secs(5);
    while s.fds() > base_fds && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(s.fds() <= base_fds, "{} fds, was {base_fds}", s.fds());
    drop(other);
    s.stop();
}

#[test]
fn connect_disconnect_cycles_stay_flat() {
    let s = Server::start(&[]);
    let cycle = |n: usize| {
        for i in 0..n {
            let c = s.connect();
            let fd = open(&c, &format!("/x{}", i % 3), o::CREAT | o::RDWR).unwrap();
            write(&c, fd, b"x").unwrap();
        }
    };
    cycle(100);
    std::thread::sleep(Duration::from_millis(200));
    let (fds0, rss0) = (s.fds(), s.rss_kib());
    cycle(1000);
    // Teardown of the last connections finishes asynchronously.
    let end = Instant::now() + Duration::from_secs(5);
    while s.fds() > fds0 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (fds1, rss1) = (s.fds(), s.rss_kib());
    eprintln!("server fds {fds0} -> {fds1}, rss {rss0} -> {rss1} KiB over 1000 cycles");
    assert!(fds1 <= fds0, "descriptors grew: {fds0} -> {fds1}");
    assert!(
        rss1 < rss0 + 8 * 1024,
        "memory grew by more than 8 MiB: {rss0} -> {rss1} KiB"
    );
    s.stop();
}

#[test]
fn non_root_client_gets_its_own_credentials() {
    if !is_root() {
        eprintln!("SKIPPED: needs root to run a client as another uid");
        return;
    }
    let s = Server::start(&["--socket-mode", "666"]);
    let root = s.connect();
    root.call(Request::Mkdirat {
        dirfd: rump::sys::consts::at::FDCWD,
        path: b"/private".to_vec(),
        mode: 0o700,
    })
    .unwrap();
    let mut child = spawn_role(&s, "user", Some(65534));
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!("{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("uid=65534 mkdir=Err(EACCES)"),
        "child said: {text}"
    );
    // The same call as root works.
    assert!(root
        .call(Request::Mkdirat {
            dirfd: rump::sys::consts::at::FDCWD,
            path: b"/private/sub".to_vec(),
            mode: 0o755
        })
        .is_ok());
    s.stop();
}

#[test]
fn socket_file_is_private_by_default() {
    let s = Server::start(&[]);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&s.sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    s.stop();
}

#[test]
fn tcp_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    let port = free_port();
    let url = format!("tcp://127.0.0.1:{port}");
    let s = Server::start_url(
        dir,
        &url,
        PathBuf::from("/nonexistent-socket"),
        &["--token-file", token.to_str().unwrap()],
    );
    let t = std::fs::read(&token).unwrap();
    assert_eq!(t.len(), 32, "server made a 32-byte token");
    let u = Url::parse(&url).unwrap();
    // Without the token: refused.
    let e = Client::connect_with(&u, ConnectOptions::default())
        .err()
        .unwrap();
    assert_eq!(e.errno(), Errno::EACCES, "{e}");
    // A wrong token: refused.
    let bad = ConnectOptions {
        token: Some(vec![0; 32]),
        ..ConnectOptions::default()
    };
    assert_eq!(
        Client::connect_with(&u, bad).err().unwrap().errno(),
        Errno::EACCES
    );
    // The right token: works.
    let good = ConnectOptions {
        token: Some(t),
        ..ConnectOptions::default()
    };
    let c = Client::connect_with(&u, good).unwrap();
    mixed_calls(&c, "/tcp", 50, false);
    drop(c);
    s.stop();
    // Listening beyond loopback without a token is refused.
    let out = Command::new(RUMP)
        .args(["server", &format!("tcp://0.0.0.0:{}", free_port())])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without a token"));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn root_client_cannot_open_host_files_outside_the_allowed_set() {
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    std::fs::create_dir(&allowed).unwrap();
    let img = allowed.join("ok.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"host secret").unwrap();
    let s = Server::start(&["--allow-host", allowed.to_str().unwrap()]);
    let c = s.connect();
    let reg = |path: &Path, key: &str| {
        c.call(Request::EtfsRegister {
            key: key.as_bytes().to_vec(),
            host_path: path.as_os_str().as_encoded_bytes().to_vec(),
            read_only: true,
        })
    };
    if is_root() {
        assert_eq!(reg(&secret, "/dev/s"), Err(Errno::EACCES));
        assert_eq!(reg(Path::new("/etc/shadow"), "/dev/sh"), Err(Errno::EACCES));
        // A path that climbs out of the allowed directory is refused too.
        assert_eq!(
            reg(&allowed.join("../secret"), "/dev/s2"),
            Err(Errno::EACCES)
        );
        assert_eq!(reg(&img, "/dev/ok"), Ok(Response::Unit));
    }
    drop(c);
    s.stop();
}

// ----- bad input ----------------------------------------------------------

fn raw(s: &Server) -> UnixStream {
    let r = UnixStream::connect(&s.sock).unwrap();
    r.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    r
}

fn hello_frame(proto_min: u16, proto_max: u16) -> Vec<u8> {
    use rump::remote::wire;
    let hello = wire::Hello {
        proto_min,
        proto_max,
        body: wire::HelloBody {
            features: 0,
            max_frame: wire::MAX_FRAME,
            max_inflight: 8,
            token: None,
            attach: Attach::New { comm: "raw".into() },
        },
    }
    .emit();
    let mut f = header(1, 0, 0, hello.len() as u32);
    f.extend_from_slice(&hello);
    f
}

fn header(kind: u8, flags: u8, id: u64, len: u32) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&len.to_le_bytes());
    b.push(kind);
    b.push(flags);
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&id.to_le_bytes());
    b
}

/// Reads until the server closes the connection (returns the bytes).
fn until_closed(mut r: UnixStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            // Closed with our bytes unread: a reset, also a close.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return out,
            Err(e) => panic!("server closes, not times out: {e}"),
        }
    }
}

/// A connection after a good hello, with the HelloOk consumed.
fn attached(s: &Server) -> UnixStream {
    let mut r = raw(s);
    r.write_all(&hello_frame(1, 1)).unwrap();
    let mut h = [0u8; 16];
    r.read_exact(&mut h).unwrap();
    assert_eq!(h[4], 2, "hello ok");
    let len = u32::from_le_bytes(h[..4].try_into().unwrap()) as usize;
    let mut p = vec![0u8; len];
    r.read_exact(&mut p).unwrap();
    r
}

fn assert_serving(s: &Server) {
    let c = s.connect();
    assert!(int(c.call(Request::Getpid)).unwrap() > 0);
}

#[test]
fn bad_input_closes_only_that_connection() {
    let s = Server::start(&["--frame-timeout", "1", "--hello-timeout", "1"]);
    let bystander = s.connect();
    let bfd = open(&bystander, "/b", o::CREAT | o::RDWR).unwrap();

    // Garbage instead of a hello.
    let mut r = raw(&s);
    r.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    until_closed(r);
    // A wrong banner in a well-formed frame: HelloErr, then closed.
    let mut r = raw(&s);
    let mut f = hello_frame(1, 1);
    f[16] = b'X';
    r.write_all(&f).unwrap();
    let got = until_closed(r);
    assert_eq!(got.get(4), Some(&3), "hello err");
    // Wrong versions.
    let mut r = raw(&s);
    r.write_all(&hello_frame(5, 9)).unwrap();
    let got = until_closed(r);
    assert_eq!(got.get(4), Some(&3), "hello err for versions 5..9");
    // Truncated frame, then the client goes away.
    let mut r = attached(&s);
    r.write_all(&header(4, 0, 1, 100)).unwrap();
    r.write_all(&[0u8; 10]).unwrap();
    r.shutdown(std::net::Shutdown::Write).unwrap();
    until_closed(r);
    // Oversized length: closed before anything is allocated.
    let mut r = attached(&s);
    r.write_all(&header(4, 0, 1, u32::MAX)).unwrap();
    until_closed(r);
    // Unknown kind, unknown flags, reserved bits.
    for h in [header(77, 0, 1, 0), header(4, 0x40, 1, 0)] {
        let mut r = attached(&s);
        r.write_all(&h).unwrap();
        until_closed(r);
    }
    // A call that does not decode in an intact frame: ENOSYS for it, the
    // connection goes on.
    let mut r = attached(&s);
    r.write_all(&header(4, 0, 9, 3)).unwrap();
    r.write_all(&[0xff, 0xff, 0xff]).unwrap();
    let mut h = [0u8; 16];
    r.read_exact(&mut h).unwrap();
    assert_eq!((h[4], h[8]), (5, 9), "reply to id 9");
    // A request id reused while in flight: a read of an empty pipe stays
    // in flight, the same id again closes the connection.
    let mut r = attached(&s);
    let pipe = postcard_call(&Request::Pipe2 { flags: 0 });
    r.write_all(&header(4, 0, 1, pipe.len() as u32)).unwrap();
    r.write_all(&pipe).unwrap();
    let mut h = [0u8; 16];
    r.read_exact(&mut h).unwrap();
    let mut p = vec![0u8; u32::from_le_bytes(h[..4].try_into().unwrap()) as usize];
    r.read_exact(&mut p).unwrap();
    let Ok(Ok(Response::Pair(rfd, _))) = rump::remote::wire::decode_reply(&p) else {
        panic!("pipe reply {p:?}");
    };
    let read = postcard_call(&Request::Read { fd: rfd, len: 1 });
    for _ in 0..2 {
        r.write_all(&header(4, 0, 2, read.len() as u32)).unwrap();
        r.write_all(&read).unwrap();
    }
    until_closed(r);
    // Slowloris: a header sent one byte at a time, too slowly.
    let mut r = attached(&s);
    let t0 = Instant::now();
    let mut closed = false;
    for b in header(4, 0, 1, 4) {
        if r.write_all(&[b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(400));
        if t0.elapsed() > Duration::from_secs(3) {
            break;
        }
    }
    if !closed {
        until_closed(r);
    }
    assert!(t0.elapsed() < Duration::from_secs(10));
    // A client that never says hello is dropped after the hello timeout.
    let r = raw(&s);
    let t0 = Instant::now();
    until_closed(r);
    assert!(t0.elapsed() < Duration::from_secs(5));

    // Everyone else was served throughout.
    write(&bystander, bfd, b"fine").unwrap();
    assert_eq!(pread(&bystander, bfd, 10, 0).unwrap(), b"fine");
    assert_serving(&s);
    drop(bystander);
    let log = s.stop();
    assert!(log.contains("reused while in flight"), "log: {log}");
    assert!(log.contains("exceeds the limit"), "log: {log}");
}

fn postcard_call(r: &Request) -> Vec<u8> {
    rump::remote::wire::encode(r)
}

#[test]
fn halt_request_shuts_down_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("d.img");
    let st = Command::new(RUMP)
        .args(["newfs", "-s", "8m"])
        .arg(&img)
        .status()
        .unwrap();
    assert!(st.success());
    let disk = format!("/dev/disk0={}", img.display());
    let mut s = Server::start(&["--disk", &disk, "--mount", "auto:/dev/disk0:/mnt"]);
    let c = s.connect();
    let fd = open(&c, "/mnt/hello", o::CREAT | o::RDWR).unwrap();
    write(&c, fd, b"persisted").unwrap();
    drop(c);
    let out = Command::new(RUMP)
        .args(["halt", "--server", &s.url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = wait_timeout(&mut s.child, Duration::from_secs(20));
    assert!(status.success());
    assert!(!s.sock.exists(), "socket file removed");
    // The image was left consistent and holds the file.
    let out = Command::new(RUMP)
        .args(["cat", &format!("{}:/hello", img.display())])
        .output()
        .unwrap();
    assert_eq!(
        out.stdout,
        b"persisted",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = &s.dir;
}

/// Random frames after a good hello, against one live server: it answers
/// or closes, and goes on serving a normal client.
#[test]
fn random_frames_never_hurt_the_server() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};
    let s = Server::start(&["--log", "quiet", "--frame-timeout", "1"]);
    let strategy = (
        proptest::collection::vec(
            (
                0u8..12,
                0u8..3,
                0u64..4,
                proptest::collection::vec(any::<u8>(), 0..64),
            ),
            1..6,
        ),
        proptest::collection::vec(any::<u8>(), 0..32),
    );
    let mut runner = TestRunner::new(Config {
        cases: 48,
        ..Config::default()
    });
    runner
        .run(&strategy, |(frames, tail)| {
            let mut r = attached(&s);
            for (kind, flags, id, payload) in &frames {
                let mut f = header(*kind, *flags, *id, payload.len() as u32);
                f.extend_from_slice(payload);
                if r.write_all(&f).is_err() {
                    break;
                }
            }
            let _ = r.write_all(&tail);
            drop(r);
            assert_serving(&s);
            Ok(())
        })
        .unwrap();
    s.stop();
}
