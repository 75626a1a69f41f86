//! The server: accepts connections on a unix or TCP socket and serves
//! each as one process of a kernel.
//!
//! Threads per connection work leader/follower: whichever thread holds
//! the connection's read side reads one frame; if it is a call, it lets
//! go of the read side (another thread of the connection takes it, one is
//! spawned if none is spare) and runs the call on its own stack through
//! `sys::dispatch`, then writes the reply. So a call pays no hand-off to
//! another thread, and a call that blocks (`accept`, a `read` of an empty
//! pipe) does not stop the connection's other calls. At most
//! `max_inflight` calls run per connection; beyond that the server stops
//! reading from it, which pushes back on the client through the socket.
//!
//! When a connection ends (end of file, an error, a protocol violation,
//! a timeout) its process's blocked calls are interrupted
//! (`Proc::cancel_calls`, they return `EINTR`), the server waits for its
//! calls to return, then closes the process's descriptors. A protocol
//! violation closes that connection with a log line; the server goes on.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use kern::{Cred, ForkFds, Proc};
use sys::Errno;

use crate::wire::{
    self, Attach, Control, ControlOk, Header, Hello, HelloErr, HelloOk, Kind, Packet, WireError,
    COOKIE_LEN, FLAG_NO_REPLY, HEADER_LEN, MAX_FRAME, MAX_HELLO,
};
use crate::{Stream, Url};

/// The uid and gid TCP clients without a token get on a loopback server
/// without a token (`nobody`).
pub const NOBODY: u32 = 65534;

/// How a server behaves. [`ServerConfig::default`] is the safe default.
#[derive(Clone)]
pub struct ServerConfig {
    /// Calls in flight per connection (the client may ask for fewer).
    pub max_inflight: u32,
    /// A client must complete its Hello within this.
    pub hello_timeout: Duration,
    /// Once a frame has begun, all of it must arrive within this.
    pub frame_timeout: Duration,
    /// A connection from which nothing arrives for this long is closed
    /// (clients send keepalives). `Duration::ZERO`: never.
    pub idle_timeout: Duration,
    /// Peer uids (unix sockets) that act as root in the kernel.
    pub root_uids: Vec<u32>,
    /// The token TCP clients must present. Without one the server
    /// listens only on loopback, and TCP clients act as `nobody`.
    pub token: Option<Vec<u8>>,
    /// Permissions of the socket file.
    pub socket_mode: u32,
    /// How long a fork or exec cookie stays valid.
    pub cookie_ttl: Duration,
    /// Where log lines go.
    pub log: Arc<dyn Fn(&str) + Send + Sync>,
    /// Log every connection, not only failures.
    pub verbose: bool,
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_inflight: wire::DEFAULT_MAX_INFLIGHT,
            hello_timeout: Duration::from_secs(5),
            frame_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            root_uids: vec![0],
            token: None,
            socket_mode: 0o600,
            cookie_ttl: Duration::from_secs(10),
            log: Arc::new(|m| eprintln!("{m}")),
            verbose: false,
        }
    }
}

/// A listening server. [`Server::run`] serves until stopped.
pub struct Server {
    shared: Arc<Shared>,
    listener: Listener,
}

/// Stops a running server from another thread (or a signal handler's
/// thread).
#[derive(Clone)]
pub struct ServerHandle {
    shared: Arc<Shared>,
}

enum Listener {
    Unix(UnixListener, PathBuf),
    Tcp(TcpListener),
}

struct Shared {
    kernel: kern::Kernel,
    cfg: ServerConfig,
    /// Where to connect to wake the accept loop.
    wake: Url,
    stop: AtomicBool,
    halt_requested: AtomicBool,
    next_conn: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    conns_gone: Condvar,
    cookies: Mutex<HashMap<[u8; COOKIE_LEN], Cookie>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum CookieKind {
    Fork,
    Exec,
}

struct Cookie {
    kind: CookieKind,
    proc: Arc<Proc>,
    /// The peer uid that made it (unix); only the same uid may use it.
    peer_uid: Option<u32>,
    expires: Instant,
}

impl Server {
    /// Binds `url`. A unix socket file is created with `cfg.socket_mode`
    /// (a stale file nobody listens on is replaced); TCP on a non-loopback
    /// address is refused without a token.
    pub fn bind(kernel: kern::Kernel, url: &Url, cfg: ServerConfig) -> io::Result<Server> {
        let (listener, wake) = match url {
            Url::Unix(path) => {
                if path.exists() {
                    if UnixStream::connect(path).is_ok() {
                        return Err(io::Error::new(
                            io::ErrorKind::AddrInUse,
                            format!("{}: a server already listens there", path.display()),
                        ));
                    }
                    std::fs::remove_file(path)?;
                }
                // No window in which the socket is open to others: it is
                // created under a tight umask, then given its mode.
                let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o177));
                let l = UnixListener::bind(path);
                rustix::process::umask(old);
                let l = l?;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(cfg.socket_mode))?;
                (Listener::Unix(l, path.clone()), url.clone())
            }
            Url::Tcp(addr) => {
                let addrs: Vec<_> = addr.to_socket_addrs()?.collect();
                if cfg.token.is_none() {
                    if let Some(a) = addrs.iter().find(|a| !a.ip().is_loopback()) {
                        return Err(io::Error::new(
                            io::ErrorKind::PermissionDenied,
                            format!(
                                "refusing to listen on {a} (not loopback) without a token (--token-file)"
                            ),
                        ));
                    }
                }
                let l = TcpListener::bind(&addrs[..])?;
                let local = l.local_addr()?;
                let wake = if local.ip().is_unspecified() {
                    Url::Tcp(format!("127.0.0.1:{}", local.port()))
                } else {
                    Url::Tcp(local.to_string())
                };
                (Listener::Tcp(l), wake)
            }
        };
        Ok(Server {
            shared: Arc::new(Shared {
                kernel,
                cfg,
                wake,
                stop: AtomicBool::new(false),
                halt_requested: AtomicBool::new(false),
                next_conn: AtomicU64::new(1),
                conns: Mutex::new(HashMap::new()),
                conns_gone: Condvar::new(),
                cookies: Mutex::new(HashMap::new()),
            }),
            listener,
        })
    }

    /// The address a client reaches this server at (a TCP port chosen by
    /// the system when the URL said `:0`).
    pub fn url(&self) -> Url {
        match &self.listener {
            Listener::Unix(_, p) => Url::Unix(p.clone()),
            Listener::Tcp(_) => self.shared.wake.clone(),
        }
    }

    /// A handle that stops the server.
    pub fn handle(&self) -> ServerHandle {
        ServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until [`ServerHandle::stop`] or a client's `Control::Halt`.
    /// Then closes every connection (their processes' calls interrupted,
    /// descriptors closed), drops outstanding cookies and removes the
    /// socket file. Returns whether a client asked for the halt.
    pub fn run(self) -> io::Result<bool> {
        let sh = &self.shared;
        while !sh.stop.load(Ordering::SeqCst) {
            let accepted = match &self.listener {
                Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
                Listener::Tcp(l) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Stream::Tcp(s)
                }),
            };
            if sh.stop.load(Ordering::SeqCst) {
                break;
            }
            match accepted {
                Ok(stream) => {
                    sh.sweep_cookies();
                    let id = sh.next_conn.fetch_add(1, Ordering::Relaxed);
                    let sh2 = sh.clone();
                    let r = std::thread::Builder::new()
                        .name(format!("sp-conn-{id}"))
                        .spawn(move || serve_connection(sh2, id, stream));
                    if let Err(e) = r {
                        sh.log(&format!("sp: connection {id}: cannot start a thread: {e}"));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors and the like: log, back off, go on.
                    sh.log(&format!("sp: accept: {e}"));
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
        // Close everyone and wait for their teardown.
        let conns: Vec<Arc<Conn>> = sh.conns.lock().unwrap().values().cloned().collect();
        for c in &conns {
            c.begin_close();
        }
        drop(conns);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut g = sh.conns.lock().unwrap();
        while !g.is_empty() && Instant::now() < deadline {
            g = sh
                .conns_gone
                .wait_timeout(g, Duration::from_millis(50))
                .unwrap()
                .0;
        }
        if !g.is_empty() {
            sh.log(&format!(
                "sp: {} connection(s) did not finish within 10 s of shutdown",
                g.len()
            ));
        }
        drop(g);
        sh.cookies.lock().unwrap().clear();
        if let Listener::Unix(_, p) = &self.listener {
            let _ = std::fs::remove_file(p);
        }
        Ok(sh.halt_requested.load(Ordering::SeqCst))
    }
}

impl ServerHandle {
    /// Stops accepting and makes [`Server::run`] return after closing
    /// every connection.
    pub fn stop(&self) {
        self.shared.stop_accepting();
    }

    /// Connections open now.
    pub fn connections(&self) -> usize {
        self.shared.conns.lock().unwrap().len()
    }
}

impl Shared {
    fn log(&self, m: &str) {
        (self.cfg.log)(m)
    }

    fn stop_accepting(&self) {
        if !self.stop.swap(true, Ordering::SeqCst) {
            // Wake the accept loop.
            let _ = match &self.wake {
                Url::Unix(p) => UnixStream::connect(p).map(drop),
                Url::Tcp(a) => TcpStream::connect(a).map(drop),
            };
        }
    }

    fn sweep_cookies(&self) {
        let now = Instant::now();
        self.cookies.lock().unwrap().retain(|_, c| c.expires > now);
    }

    fn new_cookie(&self, kind: CookieKind, proc: Arc<Proc>, peer_uid: Option<u32>) -> [u8; 16] {
        let mut cookie = [0u8; COOKIE_LEN];
        self.kernel.hyper().random_fill(&mut cookie);
        self.sweep_cookies();
        self.cookies.lock().unwrap().insert(
            cookie,
            Cookie {
                kind,
                proc,
                peer_uid,
                expires: Instant::now() + self.cfg.cookie_ttl,
            },
        );
        cookie
    }

    fn take_cookie(
        &self,
        kind: CookieKind,
        cookie: &[u8; COOKIE_LEN],
        peer_uid: Option<u32>,
    ) -> Result<Arc<Proc>, &'static str> {
        self.sweep_cookies();
        let mut g = self.cookies.lock().unwrap();
        match g.get(cookie) {
            Some(c) if c.kind == kind && c.peer_uid == peer_uid => {}
            _ => return Err("unknown, used or expired cookie"),
        }
        g.remove(cookie).map(|c| c.proc).ok_or("cookie vanished")
    }

    /// Whether an exec cookie keeps `p` alive.
    fn exec_pending(&self, p: &Arc<Proc>) -> bool {
        self.cookies
            .lock()
            .unwrap()
            .values()
            .any(|c| c.kind == CookieKind::Exec && Arc::ptr_eq(&c.proc, p))
    }
}

/// Who is at the other end.
struct Peer {
    /// uid from SO_PEERCRED (unix sockets).
    uid: Option<u32>,
    desc: String,
}

struct Conn {
    id: u64,
    stream: Stream,
    /// The read side; whoever holds it is the connection's reader.
    rd: Mutex<ReadBuf>,
    /// The write side: one frame at a time.
    wr: Mutex<()>,
    state: Mutex<ConnState>,
    done: Condvar,
    /// Workers waiting on `done` for the in-flight cap (changed under
    /// `state`), so a finished call wakes nobody when nobody waits.
    cap_waiters: AtomicUsize,
    closing: AtomicBool,
    /// Threads waiting for or holding the read side.
    spare: AtomicUsize,
    threads: AtomicUsize,
    max_inflight: usize,
    client_max_frame: u32,
    proc: Arc<Proc>,
    peer: Peer,
}

struct ConnState {
    inflight: HashSet<u64>,
}

struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// Set while a frame is partly read: all of it must arrive by then.
    frame_deadline: Option<Instant>,
}

/// Why a connection ended.
enum End {
    Eof,
    Io(io::Error),
    Idle,
    Slow,
    Proto(String),
    Closing,
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Eof => write!(f, "client closed the connection"),
            End::Io(e) => write!(f, "i/o error: {e}"),
            End::Idle => write!(f, "idle timeout"),
            End::Slow => write!(f, "frame not completed within the frame timeout"),
            End::Proto(m) => write!(f, "protocol error: {m}"),
            End::Closing => write!(f, "server closing"),
        }
    }
}

fn serve_connection(sh: Arc<Shared>, id: u64, stream: Stream) {
    let peer = peer_of(&stream);
    let conn = match handshake(&sh, id, stream, peer) {
        Ok(c) => c,
        Err(()) => return,
    };
    if sh.stop.load(Ordering::SeqCst) {
        conn.begin_close();
    }
    sh.conns.lock().unwrap().insert(id, conn.clone());
    if sh.cfg.verbose {
        sh.log(&format!(
            "sp: connection {id} ({}): attached as pid {}",
            conn.peer.desc,
            conn.proc.pid()
        ));
    }
    conn.threads.fetch_add(1, Ordering::SeqCst);
    worker(sh, conn);
}

fn peer_of(stream: &Stream) -> Peer {
    match stream {
        Stream::Unix(s) => match rustix::net::sockopt::socket_peercred(s) {
            Ok(c) => {
                let pid = c.pid.as_raw_nonzero().get();
                Peer {
                    uid: Some(c.uid.as_raw()),
                    desc: format!("uid {} pid {pid}", c.uid.as_raw()),
                }
            }
            Err(_) => Peer {
                uid: None,
                desc: "unix peer without credentials".into(),
            },
        },
        Stream::Tcp(s) => Peer {
            uid: None,
            desc: s
                .peer_addr()
                .map(|a| format!("tcp {a}"))
                .unwrap_or_else(|_| "tcp peer".into()),
        },
    }
}

/// The peer's credentials as the kernel process's: SO_PEERCRED's uid and
/// gid, supplementary groups from /proc (the kernel gives them for the
/// peer's pid), root if the uid is in `root_uids`.
fn unix_cred(sh: &Shared, stream: &UnixStream) -> Option<Cred> {
    let c = rustix::net::sockopt::socket_peercred(stream).ok()?;
    let (uid, gid) = (c.uid.as_raw(), c.gid.as_raw());
    if sh.cfg.root_uids.contains(&uid) {
        return Some(Cred::root());
    }
    let mut cred = Cred::user(uid, gid);
    let pid = c.pid.as_raw_nonzero().get();
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
        if let Some(line) = status.lines().find(|l| l.starts_with("Groups:")) {
            cred.groups = line[7..]
                .split_whitespace()
                .filter_map(|g| g.parse().ok())
                .collect();
        }
    }
    Some(cred)
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn handshake(sh: &Arc<Shared>, id: u64, stream: Stream, peer: Peer) -> Result<Arc<Conn>, ()> {
    let fail = |stream: &Stream, errno: Errno, text: String| {
        sh.log(&format!(
            "sp: connection {id} ({}): refused: {text}",
            peer.desc
        ));
        let payload = wire::encode(&HelloErr {
            errno,
            text: text.clone(),
        });
        let h = Header {
            kind: Kind::HelloErr,
            flags: 0,
            id: 0,
            len: payload.len() as u32,
        };
        let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
        let _ = stream.write_frame(&h.to_bytes(), &payload);
        stream.shutdown();
    };
    let deadline = Instant::now() + sh.cfg.hello_timeout;
    let _ = stream.set_read_timeout(Some(sh.cfg.hello_timeout));
    let mut hdr = [0u8; HEADER_LEN];
    if let Err(e) = read_by(&stream, &mut hdr, deadline) {
        sh.log(&format!(
            "sp: connection {id} ({}): no hello: {e}",
            peer.desc
        ));
        return Err(());
    }
    let h = match Header::parse(&Packet::new_unchecked(&hdr[..]), MAX_HELLO) {
        Ok(h) if h.kind == Kind::Hello => h,
        Ok(h) => {
            fail(
                &stream,
                Errno::EPROTO,
                format!("expected a hello frame, got {:?}", h.kind),
            );
            return Err(());
        }
        Err(e) => {
            fail(&stream, Errno::EPROTO, format!("bad hello header: {e}"));
            return Err(());
        }
    };
    let mut payload = vec![0u8; h.len as usize];
    if let Err(e) = read_by(&stream, &mut payload, deadline) {
        sh.log(&format!(
            "sp: connection {id} ({}): truncated hello: {e}",
            peer.desc
        ));
        return Err(());
    }
    let hello = match Hello::parse(&payload) {
        Ok(h) => h,
        Err(e) => {
            fail(&stream, Errno::EPROTO, e.to_string());
            return Err(());
        }
    };
    let proto = match hello.common_version() {
        Ok(v) => v,
        Err(e) => {
            fail(&stream, Errno::EPROTONOSUPPORT, e.to_string());
            return Err(());
        }
    };
    let cred = match &stream {
        Stream::Unix(s) => match unix_cred(sh, s) {
            Some(c) => c,
            None => {
                fail(&stream, Errno::EACCES, "no peer credentials".into());
                return Err(());
            }
        },
        Stream::Tcp(_) => match (&sh.cfg.token, &hello.body.token) {
            (Some(want), Some(got)) if ct_eq(want, got) => Cred::root(),
            (Some(_), Some(_)) => {
                // Slow down guessing.
                std::thread::sleep(Duration::from_millis(100));
                fail(&stream, Errno::EACCES, "wrong token".into());
                return Err(());
            }
            (Some(_), None) => {
                fail(&stream, Errno::EACCES, "token required".into());
                return Err(());
            }
            (None, _) => Cred::user(NOBODY, NOBODY),
        },
    };
    let proc = match &hello.body.attach {
        Attach::New { .. } => match sh.kernel.new_process(cred) {
            Ok(p) => p,
            Err(e) => {
                fail(&stream, e, format!("cannot make a process: {e:?}"));
                return Err(());
            }
        },
        Attach::Fork { cookie } => match sh.take_cookie(CookieKind::Fork, cookie, peer.uid) {
            Ok(p) => p,
            Err(m) => {
                fail(&stream, Errno::EACCES, format!("fork attach: {m}"));
                return Err(());
            }
        },
        Attach::Exec { cookie } => match sh.take_cookie(CookieKind::Exec, cookie, peer.uid) {
            Ok(p) => {
                p.exec_close();
                p
            }
            Err(m) => {
                fail(&stream, Errno::EACCES, format!("exec attach: {m}"));
                return Err(());
            }
        },
    };
    let max_inflight = hello.body.max_inflight.clamp(1, sh.cfg.max_inflight.max(1));
    let ok = HelloOk {
        proto,
        features: 0,
        max_frame: MAX_FRAME,
        max_inflight,
        idle_timeout_ms: sh.cfg.idle_timeout.as_millis().min(u32::MAX as u128) as u32,
        pid: proc.pid(),
    };
    let payload = wire::encode(&ok);
    let h = Header {
        kind: Kind::HelloOk,
        flags: 0,
        id: 0,
        len: payload.len() as u32,
    };
    // A client that stops reading cannot hold a worker forever.
    let _ = stream.set_write_timeout(Some(sh.cfg.frame_timeout));
    if stream.write_frame(&h.to_bytes(), &payload).is_err() {
        release(sh, &proc);
        return Err(());
    }
    let idle = (!sh.cfg.idle_timeout.is_zero()).then_some(sh.cfg.idle_timeout);
    let _ = stream.set_read_timeout(idle);
    Ok(Arc::new(Conn {
        id,
        stream,
        rd: Mutex::new(ReadBuf {
            buf: vec![0u8; 64 * 1024],
            start: 0,
            end: 0,
            frame_deadline: None,
        }),
        wr: Mutex::new(()),
        state: Mutex::new(ConnState {
            inflight: HashSet::new(),
        }),
        done: Condvar::new(),
        cap_waiters: AtomicUsize::new(0),
        closing: AtomicBool::new(false),
        spare: AtomicUsize::new(0),
        threads: AtomicUsize::new(0),
        max_inflight: max_inflight as usize,
        client_max_frame: hello.body.max_frame,
        proc,
        peer,
    }))
}

/// Reads exactly `buf.len()` bytes by `deadline`.
fn read_by(stream: &Stream, buf: &mut [u8], deadline: Instant) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(deadline - now))?;
        match (&*stream).read(&mut buf[got..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => return Err(io::ErrorKind::TimedOut.into()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// A frame taken off the connection.
struct Frame {
    h: Header,
    payload: Vec<u8>,
}

impl Conn {
    fn begin_close(&self) {
        self.closing.store(true, Ordering::SeqCst);
        self.stream.shutdown();
    }

    /// Reads the next frame (the caller holds the read side).
    fn read_frame(
        &self,
        rb: &mut ReadBuf,
        idle: Duration,
        frame_timeout: Duration,
    ) -> Result<Frame, End> {
        loop {
            if self.closing.load(Ordering::SeqCst) {
                return Err(End::Closing);
            }
            let avail = &rb.buf[rb.start..rb.end];
            match wire::split_frame(avail, MAX_FRAME) {
                Err(e) => return Err(End::Proto(e.to_string())),
                Ok(Some((h, p, used))) => {
                    let payload = p.to_vec();
                    rb.start += used;
                    if rb.start == rb.end {
                        rb.start = 0;
                        rb.end = 0;
                    }
                    if rb.frame_deadline.take().is_some() {
                        let idle = (!idle.is_zero()).then_some(idle);
                        let _ = self.stream.set_read_timeout(idle);
                    }
                    return Ok(Frame { h, payload });
                }
                Ok(None) => {}
            }
            // Need more bytes: make room for the whole frame if its
            // header is here (the length was checked by split_frame's
            // parse only once the header is complete).
            let have = rb.end - rb.start;
            let need = if have >= HEADER_LEN {
                let p = Packet::new_unchecked(&rb.buf[rb.start..rb.end]);
                HEADER_LEN + p.len() as usize
            } else {
                HEADER_LEN
            };
            if rb.start > 0 && rb.start + need > rb.buf.len() {
                rb.buf.copy_within(rb.start..rb.end, 0);
                rb.end = have;
                rb.start = 0;
            }
            if need > rb.buf.len() {
                rb.buf.resize(need, 0);
            }
            if have > 0 && rb.frame_deadline.is_none() {
                rb.frame_deadline = Some(Instant::now() + frame_timeout);
                let _ = self.stream.set_read_timeout(Some(frame_timeout));
            }
            let end = rb.end;
            match (&self.stream).read(&mut rb.buf[end..]) {
                Ok(0) if have == 0 => return Err(End::Eof),
                Ok(0) => {
                    return Err(End::Proto(format!(
                        "truncated frame: {have} of {need} bytes, then end of file"
                    )))
                }
                Ok(n) => rb.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_timeout(&e) => {
                    return Err(if rb.frame_deadline.is_some() {
                        End::Slow
                    } else {
                        End::Idle
                    })
                }
                Err(e) => return Err(End::Io(e)),
            }
            if let Some(d) = rb.frame_deadline {
                if Instant::now() >= d {
                    return Err(End::Slow);
                }
            }
        }
    }

    fn send(&self, kind: Kind, id: u64, payload: &[u8]) -> io::Result<()> {
        let h = Header {
            kind,
            flags: 0,
            id,
            len: payload.len() as u32,
        };
        let _g = self.wr.lock().unwrap();
        self.stream.write_frame(&h.to_bytes(), payload)
    }
}

fn worker(sh: Arc<Shared>, conn: Arc<Conn>) {
    loop {
        conn.spare.fetch_add(1, Ordering::SeqCst);
        let next = {
            let mut rb = conn.rd.lock().unwrap();
            // Calls that cannot block are served right here, by the
            // reader, without handing the read side to another worker
            // (a wake-up and a context switch per call): the reader keeps
            // reading until a frame that may take long comes.
            loop {
                // Keep at most max_inflight calls running.
                let mut st = conn.state.lock().unwrap();
                while st.inflight.len() >= conn.max_inflight && !conn.closing.load(Ordering::SeqCst)
                {
                    conn.cap_waiters.fetch_add(1, Ordering::SeqCst);
                    st = conn.done.wait(st).unwrap();
                    conn.cap_waiters.fetch_sub(1, Ordering::SeqCst);
                }
                drop(st);
                let r = conn.read_frame(&mut rb, sh.cfg.idle_timeout, sh.cfg.frame_timeout);
                // More bytes already read: other calls are waiting, so hand
                // the read side on and let them run in parallel. (Asking
                // the socket too, FIONREAD, cost more in hand-offs than it
                // gained with four client threads on two cores.)
                let more = rb.end > rb.start;
                let quick = match &r {
                    Ok(f) if f.h.kind == Kind::Call && !more => wire::decode_call(&f.payload)
                        .ok()
                        .filter(|r| never_blocks(&conn.proc, r)),
                    _ => None,
                };
                match (quick, r) {
                    (Some(req), Ok(frame)) => {
                        if let Err(end) = serve_call(&conn, frame.h.id, Ok(req)) {
                            drop(rb);
                            conn.spare.fetch_sub(1, Ordering::SeqCst);
                            close_connection(&sh, &conn, &end);
                            return exit_worker(&sh, &conn);
                        }
                    }
                    (_, r) => {
                        conn.spare.fetch_sub(1, Ordering::SeqCst);
                        break r;
                    }
                }
            }
        };
        let frame = match next {
            Ok(f) => f,
            Err(End::Closing) => return exit_worker(&sh, &conn),
            Err(end) => {
                close_connection(&sh, &conn, &end);
                return exit_worker(&sh, &conn);
            }
        };
        match frame.h.kind {
            Kind::Call => {
                if conn.spare.load(Ordering::SeqCst) == 0
                    && conn.threads.load(Ordering::SeqCst) <= conn.max_inflight
                {
                    spawn_worker(&sh, &conn);
                }
                // A call that does not decode in an intact frame gets an
                // error for that call; the connection goes on.
                let req = wire::decode_call(&frame.payload).map_err(|_| Errno::ENOSYS);
                if let Err(end) = serve_call(&conn, frame.h.id, req) {
                    close_connection(&sh, &conn, &end);
                    return exit_worker(&sh, &conn);
                }
            }
            Kind::Control => {
                let reply = match wire::decode_control(&frame.payload) {
                    Err(_) => Err(Errno::ENOSYS),
                    Ok(c) => control(&sh, &conn, c),
                };
                let halt = matches!(wire::decode_control(&frame.payload), Ok(Control::Halt))
                    && reply.is_ok();
                let _ = conn.send(Kind::Reply, frame.h.id, &wire::encode(&reply));
                if halt {
                    sh.log(&format!(
                        "sp: connection {} ({}): halt requested",
                        conn.id, conn.peer.desc
                    ));
                    sh.halt_requested.store(true, Ordering::SeqCst);
                    sh.stop_accepting();
                }
            }
            Kind::Ping => {
                if frame.h.flags & FLAG_NO_REPLY == 0 {
                    let _ = conn.send(Kind::Pong, frame.h.id, &[]);
                }
            }
            Kind::Goodbye => {
                close_connection(&sh, &conn, &End::Eof);
                return exit_worker(&sh, &conn);
            }
            k => {
                let end = End::Proto(format!("unexpected {k:?} frame from a client"));
                close_connection(&sh, &conn, &end);
                return exit_worker(&sh, &conn);
            }
        }
    }
}

/// Runs one call and sends its reply, with the in-flight bookkeeping
/// (an id reused while in flight ends the connection).
fn serve_call(conn: &Conn, id: u64, req: Result<sys::Request, Errno>) -> Result<(), End> {
    if !conn.state.lock().unwrap().inflight.insert(id) {
        return Err(End::Proto(format!(
            "request id {id} reused while in flight"
        )));
    }
    let reply = req.and_then(|r| sys::dispatch(&conn.proc, r));
    let mut bytes = wire::encode(&reply);
    if bytes.len() > conn.client_max_frame as usize {
        bytes = wire::encode(&Err::<sys::Response, Errno>(Errno::EMSGSIZE));
    }
    if !conn.closing.load(Ordering::SeqCst) {
        let _ = conn.send(Kind::Reply, id, &bytes);
    }
    let mut st = conn.state.lock().unwrap();
    st.inflight.remove(&id);
    let waiters = conn.cap_waiters.load(Ordering::SeqCst);
    drop(st);
    if waiters > 0 {
        conn.done.notify_all();
    }
    Ok(())
}

/// Calls that finish without waiting for anything outside the kernel's
/// own memory and disks: process and credential queries, attributes,
/// configuration listings, and I/O on regular files (not pipes, sockets
/// or devices, which may wait for a peer). The connection's reader serves
/// these itself.
fn never_blocks(p: &Proc, r: &sys::Request) -> bool {
    use sys::Request as Q;
    let regular = |fd: i32| {
        p.file(fd).is_ok_and(|f| {
            f.vnode()
                .is_some_and(|v| v.kind() == kern::vfs::NodeKind::Regular)
        })
    };
    match r {
        Q::Read { fd, .. }
        | Q::Write { fd, .. }
        | Q::Pread { fd, .. }
        | Q::Pwrite { fd, .. }
        | Q::Fsync { fd }
        | Q::Fdatasync { fd }
        | Q::Ftruncate { fd, .. } => return regular(*fd),
        _ => {}
    }
    matches!(
        r,
        Q::Getpid
            | Q::Getppid
            | Q::Getuid
            | Q::Geteuid
            | Q::Getgid
            | Q::Getegid
            | Q::Getgroups
            | Q::Uname
            | Q::Umask { .. }
            | Q::Getcwd
            | Q::Fstat { .. }
            | Q::Fstatat { .. }
            | Q::Faccessat { .. }
            | Q::Readlinkat { .. }
            | Q::Lseek { .. }
            | Q::Statvfs { .. }
            | Q::Fstatvfs { .. }
            | Q::SysctlGet { .. }
            | Q::SysctlList { .. }
            | Q::Mounts
            | Q::Getsockname { .. }
            | Q::Getpeername { .. }
            | Q::IfList
            | Q::RouteList
            | Q::ArpList
            | Q::NetStats
            | Q::SockList
    )
}

fn control(sh: &Shared, conn: &Conn, c: Control) -> Result<ControlOk, Errno> {
    match c {
        Control::Prefork => {
            let child = conn.proc.rfork(ForkFds::Copy)?;
            Ok(ControlOk::Cookie(sh.new_cookie(
                CookieKind::Fork,
                child,
                conn.peer.uid,
            )))
        }
        Control::ForkCancel { cookie } => {
            let p = sh
                .take_cookie(CookieKind::Fork, &cookie, conn.peer.uid)
                .map_err(|_| Errno::ENOENT)?;
            release(sh, &p);
            Ok(ControlOk::Unit)
        }
        Control::ExecPrepare => Ok(ControlOk::Cookie(sh.new_cookie(
            CookieKind::Exec,
            conn.proc.clone(),
            conn.peer.uid,
        ))),
        Control::Halt => {
            if conn.proc.cred().is_root() {
                Ok(ControlOk::Unit)
            } else {
                Err(Errno::EPERM)
            }
        }
    }
}

fn spawn_worker(sh: &Arc<Shared>, conn: &Arc<Conn>) {
    conn.threads.fetch_add(1, Ordering::SeqCst);
    let (sh2, c2) = (sh.clone(), conn.clone());
    let r = std::thread::Builder::new()
        .name(format!("sp-conn-{}", conn.id))
        .spawn(move || worker(sh2, c2));
    if r.is_err() {
        conn.threads.fetch_sub(1, Ordering::SeqCst);
        sh.log(&format!(
            "sp: connection {}: cannot start a worker thread",
            conn.id
        ));
    }
}

fn exit_worker(sh: &Shared, conn: &Arc<Conn>) {
    if conn.threads.fetch_sub(1, Ordering::SeqCst) == 1 {
        // The last thread of the connection: unregister it.
        sh.conns.lock().unwrap().remove(&conn.id);
        sh.conns_gone.notify_all();
    }
}

/// Ends a connection: no more frames are read or written, the calls its
/// process is blocked in are interrupted, and once they have returned
/// its descriptors are closed (unless an exec cookie keeps it).
fn close_connection(sh: &Shared, conn: &Conn, end: &End) {
    let quiet = matches!(end, End::Eof | End::Closing);
    if !quiet || sh.cfg.verbose {
        sh.log(&format!(
            "sp: connection {} ({}, pid {}): closed: {end}",
            conn.id,
            conn.peer.desc,
            conn.proc.pid()
        ));
    }
    conn.begin_close();
    // A call may be between its check and its sleep when the first
    // cancellation comes: cancel until every call has returned.
    let started = Instant::now();
    let mut st = conn.state.lock().unwrap();
    while !st.inflight.is_empty() {
        conn.proc.cancel_calls();
        st = conn
            .done
            .wait_timeout(st, Duration::from_millis(10))
            .unwrap()
            .0;
        if started.elapsed() > Duration::from_secs(30) {
            sh.log(&format!(
                "sp: connection {}: {} call(s) still running 30 s after close; descriptors closed anyway",
                conn.id,
                st.inflight.len()
            ));
            break;
        }
    }
    drop(st);
    conn.done.notify_all();
    if !sh.exec_pending(&conn.proc) {
        release(sh, &conn.proc);
    }
}

/// Closes a process's descriptors (outside the table's lock).
fn release(_sh: &Shared, p: &Arc<Proc>) {
    let files = p.fds().lock().clear();
    drop(files);
}

impl From<WireError> for End {
    fn from(e: WireError) -> End {
        End::Proto(e.to_string())
    }
}

/// A host-access policy from a list: host paths (a directory allows
/// everything below it) and tap names. `rump server` builds one from
/// `--allow-host` plus its own command-line devices.
#[derive(Clone, Debug, Default)]
pub struct HostAllowList {
    paths: Vec<PathBuf>,
    taps: Vec<String>,
}

impl HostAllowList {
    /// An empty list: nothing may be opened.
    pub fn new() -> HostAllowList {
        HostAllowList::default()
    }

    /// Allows host path `p` (a file, or a directory and everything
    /// below it). Resolved now, so a symbolic link swapped in later does
    /// not widen the list.
    pub fn allow_path(&mut self, p: &std::path::Path) {
        self.paths.push(resolve(p));
    }

    /// Allows tap device `name`.
    pub fn allow_tap(&mut self, name: &str) {
        self.taps.push(name.to_string());
    }
}

/// The absolute path with symbolic links resolved, as far as it exists
/// (a capture file may not exist yet: its directory is resolved).
fn resolve(p: &std::path::Path) -> PathBuf {
    if let Ok(c) = std::fs::canonicalize(p) {
        return c;
    }
    match (p.parent(), p.file_name()) {
        (Some(dir), Some(name)) => {
            let dir = if dir.as_os_str().is_empty() {
                std::path::Path::new(".")
            } else {
                dir
            };
            match std::fs::canonicalize(dir) {
                Ok(d) => d.join(name),
                Err(_) => p.to_path_buf(),
            }
        }
        _ => p.to_path_buf(),
    }
}

impl kern::hostpolicy::HostPolicy for HostAllowList {
    fn check(&self, what: kern::hostpolicy::HostAccess, name: &str) -> Result<(), Errno> {
        use kern::hostpolicy::HostAccess;
        let ok = match what {
            HostAccess::Tap => self.taps.iter().any(|t| t == name),
            _ => {
                let p = resolve(std::path::Path::new(name));
                self.paths.iter().any(|a| p.starts_with(a))
            }
        };
        if ok {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }
}
