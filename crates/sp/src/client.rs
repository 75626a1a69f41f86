//! The client: one connection to a server, shared by every thread of the
//! client process, implementing `sys::Syscalls`.
//!
//! Each call gets a fresh request id and writes its frame under a short
//! write lock. Replies are read leader/follower: the first waiting thread
//! becomes the reader and hands other threads' replies to them (they are
//! parked) until its own arrives, then passes the reading on to a thread
//! still waiting. There is no dedicated reader thread, so a lone caller
//! pays no extra wake-up. A counting gate keeps the calls in flight within
//! what the server granted. A small keepalive thread sends a `Ping` (no
//! reply) when the connection has been quiet, so the server's idle
//! timeout only closes connections whose client is gone.

use std::collections::HashMap;
use std::io::{self, Read};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use sys::{Errno, Request, Response, Syscalls};

use crate::wire::{
    self, Attach, Control, ControlOk, Header, Hello, HelloBody, HelloErr, HelloOk, Kind, WireError,
    COOKIE_LEN, FLAG_NO_REPLY, HEADER_LEN, MAX_FRAME,
};
use crate::{Stream, Url};

/// The environment variable naming the server (as rump_sp(7)).
pub const ENV_SERVER: &str = "RUMP_SERVER";
/// The environment variable naming a file with the server's TCP token.
pub const ENV_TOKEN_FILE: &str = "RUMP_TOKEN_FILE";
/// Set by [`Client::exec_env`] for an exec'd image: `exec:HEX-COOKIE`.
pub const ENV_ATTACH: &str = "RUMP_RS_ATTACH";

/// How to connect.
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// The token for a TCP server.
    pub token: Option<Vec<u8>>,
    /// New process, or re-attach by cookie.
    pub attach: Attach,
    /// Calls in flight this client wants (the server may grant fewer).
    pub max_inflight: u32,
    /// How long to wait for the server's answer to the Hello.
    pub timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            token: None,
            attach: Attach::New {
                comm: std::env::args().next().unwrap_or_else(|| "client".into()),
            },
            max_inflight: wire::DEFAULT_MAX_INFLIGHT,
            timeout: Duration::from_secs(10),
        }
    }
}

impl ConnectOptions {
    /// Defaults, with the token from `$RUMP_TOKEN_FILE` if set.
    pub fn from_env() -> Result<ConnectOptions, ConnectError> {
        let mut o = ConnectOptions::default();
        if let Some(path) = std::env::var_os(ENV_TOKEN_FILE) {
            o.token = Some(std::fs::read(&path).map_err(|e| {
                ConnectError::Config(format!(
                    "{ENV_TOKEN_FILE}={}: {e}",
                    std::path::Path::new(&path).display()
                ))
            })?);
        }
        Ok(o)
    }
}

/// Why a connection could not be made.
#[derive(Debug)]
pub enum ConnectError {
    /// A bad URL or environment.
    Config(String),
    /// The transport failed.
    Io(io::Error),
    /// The server answered something that is not this protocol.
    Proto(WireError),
    /// The server refused the handshake.
    Refused { errno: Errno, text: String },
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnectError::Config(m) => write!(f, "{m}"),
            ConnectError::Io(e) => write!(f, "cannot reach the server: {e}"),
            ConnectError::Proto(e) => write!(f, "server speaks another protocol: {e}"),
            ConnectError::Refused { errno, text } => {
                write!(
                    f,
                    "server refused the connection: {text} (errno {})",
                    errno.0
                )
            }
        }
    }
}

impl std::error::Error for ConnectError {}

impl ConnectError {
    /// The closest errno.
    pub fn errno(&self) -> Errno {
        match self {
            ConnectError::Config(_) => Errno::EINVAL,
            ConnectError::Io(e) => Errno(e.raw_os_error().unwrap_or(Errno::ECONNREFUSED.0)),
            ConnectError::Proto(_) => Errno::EPROTO,
            ConnectError::Refused { errno, .. } => *errno,
        }
    }
}

/// A connection to a remote kernel: one process there. Cheap to clone
/// (clones share the connection); usable from any number of threads.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    url: Url,
    stream: Stream,
    wr: Mutex<()>,
    rd: Mutex<RecvBuf>,
    st: Mutex<State>,
    next_id: AtomicU64,
    gate: Gate,
    hello: HelloOk,
    token: Option<Vec<u8>>,
    /// Milliseconds since `epoch` of the last frame sent.
    last_sent_ms: AtomicU64,
    epoch: Instant,
    keepalive_stop: Arc<(Mutex<bool>, Condvar)>,
}

struct State {
    /// A thread is reading replies.
    reading: bool,
    /// Replies read for threads still parked.
    done: HashMap<u64, Vec<u8>>,
    /// Threads waiting for their reply, by request id.
    waiting: HashMap<u64, Thread>,
    /// Set once the connection failed: every call fails with it.
    broken: Option<Errno>,
}

struct RecvBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// A counting semaphore for calls in flight.
struct Gate {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Client {
    /// Connects to `url` (`unix:///path`, `tcp://host:port`) as a new
    /// process, with the token from `$RUMP_TOKEN_FILE` if set.
    pub fn connect(url: &str) -> Result<Client, ConnectError> {
        let url = Url::parse(url).map_err(ConnectError::Config)?;
        Client::connect_with(&url, ConnectOptions::from_env()?)
    }

    /// Connects to `$RUMP_SERVER`; an exec'd image with `$RUMP_RS_ATTACH`
    /// set re-attaches to its process (and the variable is removed, so
    /// its own children start fresh).
    pub fn from_env() -> Result<Client, ConnectError> {
        let url = std::env::var(ENV_SERVER)
            .map_err(|_| ConnectError::Config(format!("{ENV_SERVER} is not set")))?;
        let url = Url::parse(&url).map_err(ConnectError::Config)?;
        let mut o = ConnectOptions::from_env()?;
        if let Ok(a) = std::env::var(ENV_ATTACH) {
            std::env::remove_var(ENV_ATTACH);
            let cookie = a
                .strip_prefix("exec:")
                .and_then(parse_cookie)
                .ok_or_else(|| ConnectError::Config(format!("{ENV_ATTACH}={a}: malformed")))?;
            o.attach = Attach::Exec { cookie };
        }
        Client::connect_with(&url, o)
    }

    /// Connects with explicit options.
    pub fn connect_with(url: &Url, o: ConnectOptions) -> Result<Client, ConnectError> {
        let stream = match url {
            Url::Unix(p) => Stream::Unix(UnixStream::connect(p).map_err(ConnectError::Io)?),
            Url::Tcp(a) => {
                let s = TcpStream::connect(a).map_err(ConnectError::Io)?;
                let _ = s.set_nodelay(true);
                Stream::Tcp(s)
            }
        };
        let hello = Hello::new(HelloBody {
            features: 0,
            max_frame: MAX_FRAME,
            max_inflight: o.max_inflight,
            token: o.token.clone(),
            attach: o.attach.clone(),
        })
        .emit();
        let h = Header {
            kind: Kind::Hello,
            flags: 0,
            id: 0,
            len: hello.len() as u32,
        };
        stream
            .write_frame(&h.to_bytes(), &hello)
            .map_err(ConnectError::Io)?;
        stream
            .set_read_timeout(Some(o.timeout))
            .map_err(ConnectError::Io)?;
        let mut hdr = [0u8; HEADER_LEN];
        (&stream).read_exact(&mut hdr).map_err(ConnectError::Io)?;
        let h = Header::parse(&wire::Packet::new_unchecked(&hdr[..]), wire::MAX_HELLO)
            .map_err(ConnectError::Proto)?;
        let mut payload = vec![0u8; h.len as usize];
        (&stream)
            .read_exact(&mut payload)
            .map_err(ConnectError::Io)?;
        stream.set_read_timeout(None).map_err(ConnectError::Io)?;
        let ok: HelloOk = match h.kind {
            Kind::HelloOk => postcard::from_bytes(&payload)
                .map_err(|_| ConnectError::Proto(WireError::Decode("hello ok")))?,
            Kind::HelloErr => {
                let e: HelloErr = postcard::from_bytes(&payload)
                    .map_err(|_| ConnectError::Proto(WireError::Decode("hello err")))?;
                return Err(ConnectError::Refused {
                    errno: e.errno,
                    text: e.text,
                });
            }
            k => {
                return Err(ConnectError::Proto(WireError::Decode(match k {
                    Kind::Unknown(_) => "unknown",
                    _ => "unexpected handshake frame",
                })))
            }
        };
        let inner = Arc::new(Inner {
            url: url.clone(),
            stream,
            wr: Mutex::new(()),
            rd: Mutex::new(RecvBuf {
                buf: vec![0u8; 64 * 1024],
                start: 0,
                end: 0,
            }),
            st: Mutex::new(State {
                reading: false,
                done: HashMap::new(),
                waiting: HashMap::new(),
                broken: None,
            }),
            next_id: AtomicU64::new(1),
            gate: Gate {
                free: Mutex::new(ok.max_inflight.max(1) as usize),
                cv: Condvar::new(),
            },
            token: o.token,
            last_sent_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            keepalive_stop: Arc::new((Mutex::new(false), Condvar::new())),
            hello: ok,
        });
        if inner.hello.idle_timeout_ms > 0 {
            start_keepalive(&inner);
        }
        Ok(Client { inner })
    }

    /// The process id of this connection's process in the kernel.
    pub fn pid(&self) -> i32 {
        self.inner.hello.pid
    }

    /// The server's URL.
    pub fn url(&self) -> &Url {
        &self.inner.url
    }

    /// Calls in flight the server granted.
    pub fn max_inflight(&self) -> u32 {
        self.inner.hello.max_inflight
    }

    /// Copies this process in the kernel (descriptors copied) for a
    /// forked client and returns the cookie the child attaches with
    /// ([`Client::attach_fork`]). The cookie is single-use and expires.
    pub fn prefork(&self) -> Result<[u8; COOKIE_LEN], Errno> {
        match self.control(Control::Prefork)? {
            ControlOk::Cookie(c) => Ok(c),
            ControlOk::Unit => Err(Errno::EPROTO),
        }
    }

    /// Drops an unused fork cookie.
    pub fn fork_cancel(&self, cookie: [u8; COOKIE_LEN]) -> Result<(), Errno> {
        self.control(Control::ForkCancel { cookie }).map(drop)
    }

    /// Connects to the same server as the process `cookie` names (in a
    /// forked child: a new connection, never the parent's socket).
    pub fn attach_fork(&self, cookie: [u8; COOKIE_LEN]) -> Result<Client, ConnectError> {
        self.reattach(Attach::Fork { cookie })
    }

    /// Keeps this process alive for an exec'd image and returns the
    /// environment entry (`RUMP_RS_ATTACH`, value) the image needs for
    /// [`Client::from_env`] to re-attach.
    pub fn exec_env(&self) -> Result<(&'static str, String), Errno> {
        match self.control(Control::ExecPrepare)? {
            ControlOk::Cookie(c) => Ok((ENV_ATTACH, format!("exec:{}", hex(&c)))),
            ControlOk::Unit => Err(Errno::EPROTO),
        }
    }

    /// Attaches by exec cookie (what [`Client::from_env`] does with
    /// `RUMP_RS_ATTACH`).
    pub fn attach_exec(&self, cookie: [u8; COOKIE_LEN]) -> Result<Client, ConnectError> {
        self.reattach(Attach::Exec { cookie })
    }

    /// Asks the server to halt (needs root in the kernel).
    pub fn halt(&self) -> Result<(), Errno> {
        self.control(Control::Halt).map(drop)
    }

    fn reattach(&self, attach: Attach) -> Result<Client, ConnectError> {
        let o = ConnectOptions {
            token: self.inner.token.clone(),
            attach,
            ..ConnectOptions::default()
        };
        Client::connect_with(&self.inner.url, o)
    }

    fn control(&self, c: Control) -> Result<ControlOk, Errno> {
        let reply = self.inner.roundtrip(Kind::Control, &wire::encode(&c))?;
        wire::decode_control_reply(&reply).map_err(|_| Errno::EPROTO)?
    }
}

impl Syscalls for Client {
    fn call(&self, req: Request) -> Result<Response, Errno> {
        let payload = wire::encode(&req);
        if payload.len() > MAX_FRAME as usize {
            return Err(Errno::EMSGSIZE);
        }
        let reply = self.inner.roundtrip(Kind::Call, &payload)?;
        wire::decode_reply(&reply).map_err(|_| Errno::EPROTO)?
    }
}

/// The error every call gets once the connection is gone.
const GONE: Errno = Errno::ENOTCONN;

impl Inner {
    fn roundtrip(&self, kind: Kind, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        self.gate.acquire();
        let r = self.roundtrip_gated(kind, payload);
        self.gate.release();
        r
    }

    fn roundtrip_gated(&self, kind: Kind, payload: &[u8]) -> Result<Vec<u8>, Errno> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut st = self.st.lock().unwrap();
            if let Some(e) = st.broken {
                return Err(e);
            }
            st.waiting.insert(id, std::thread::current());
        }
        let h = Header {
            kind,
            flags: 0,
            id,
            len: payload.len() as u32,
        };
        let sent = {
            let _g = self.wr.lock().unwrap();
            self.stream.write_frame(&h.to_bytes(), payload)
        };
        self.last_sent_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        if sent.is_err() {
            self.fail(GONE);
        }
        loop {
            let mut st = self.st.lock().unwrap();
            if let Some(p) = st.done.remove(&id) {
                st.waiting.remove(&id);
                return Ok(p);
            }
            if let Some(e) = st.broken {
                st.waiting.remove(&id);
                return Err(e);
            }
            if st.reading {
                drop(st);
                std::thread::park();
                continue;
            }
            st.reading = true;
            drop(st);
            return self.lead(id);
        }
    }

    /// Reads replies, handing others' to their threads, until `id`'s.
    fn lead(&self, id: u64) -> Result<Vec<u8>, Errno> {
        let mut rb = self.rd.lock().unwrap();
        loop {
            match read_frame(&self.stream, &mut rb) {
                Err(_) => {
                    drop(rb);
                    self.fail(GONE);
                    self.st.lock().unwrap().waiting.remove(&id);
                    return Err(GONE);
                }
                Ok((h, p)) => match h.kind {
                    Kind::Reply if h.id == id => {
                        let mut st = self.st.lock().unwrap();
                        st.waiting.remove(&id);
                        st.reading = false;
                        // Pass the reading on to a thread still waiting.
                        if let Some(t) = st
                            .waiting
                            .iter()
                            .find(|(i, _)| !st.done.contains_key(i))
                            .map(|(_, t)| t.clone())
                        {
                            t.unpark();
                        }
                        return Ok(p);
                    }
                    Kind::Reply => {
                        let mut st = self.st.lock().unwrap();
                        if let Some(t) = st.waiting.get(&h.id).cloned() {
                            st.done.insert(h.id, p);
                            t.unpark();
                        }
                    }
                    Kind::Pong | Kind::Ping => {}
                    _ => {
                        drop(rb);
                        self.fail(Errno::EPROTO);
                        self.st.lock().unwrap().waiting.remove(&id);
                        return Err(Errno::EPROTO);
                    }
                },
            }
        }
    }

    fn fail(&self, e: Errno) {
        let mut st = self.st.lock().unwrap();
        if st.broken.is_none() {
            st.broken = Some(e);
        }
        st.reading = false;
        for t in st.waiting.values() {
            t.unpark();
        }
        drop(st);
        self.stream.shutdown();
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let (m, cv) = &*self.keepalive_stop;
        *m.lock().unwrap() = true;
        cv.notify_all();
        self.stream.shutdown();
    }
}

impl Gate {
    fn acquire(&self) {
        let mut f = self.free.lock().unwrap();
        while *f == 0 {
            f = self.cv.wait(f).unwrap();
        }
        *f -= 1;
    }
    fn release(&self) {
        *self.free.lock().unwrap() += 1;
        self.cv.notify_one();
    }
}

fn read_frame(stream: &Stream, rb: &mut RecvBuf) -> io::Result<(Header, Vec<u8>)> {
    loop {
        match wire::split_frame(&rb.buf[rb.start..rb.end], MAX_FRAME) {
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
            Ok(Some((h, p, used))) => {
                let p = p.to_vec();
                rb.start += used;
                if rb.start == rb.end {
                    rb.start = 0;
                    rb.end = 0;
                }
                return Ok((h, p));
            }
            Ok(None) => {}
        }
        let have = rb.end - rb.start;
        let need = if have >= HEADER_LEN {
            HEADER_LEN + wire::Packet::new_unchecked(&rb.buf[rb.start..rb.end]).len() as usize
        } else {
            HEADER_LEN
        };
        if rb.start > 0 && rb.start + need > rb.buf.len() {
            rb.buf.copy_within(rb.start..rb.end, 0);
            rb.start = 0;
            rb.end = have;
        }
        if need > rb.buf.len() {
            rb.buf.resize(need, 0);
        }
        let end = rb.end;
        match (&*stream).read(&mut rb.buf[end..]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => rb.end += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn start_keepalive(inner: &Arc<Inner>) {
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let stop = inner.keepalive_stop.clone();
    let every = Duration::from_millis((inner.hello.idle_timeout_ms / 3).max(100) as u64);
    let _ = std::thread::Builder::new()
        .name("sp-keepalive".into())
        .spawn(move || loop {
            {
                let (m, cv) = &*stop;
                let g = m.lock().unwrap();
                let (g, _) = cv.wait_timeout(g, every).unwrap();
                if *g {
                    return;
                }
            }
            let Some(inner) = weak.upgrade() else { return };
            let quiet = inner.epoch.elapsed().as_millis() as u64
                - inner.last_sent_ms.load(Ordering::Relaxed);
            if quiet >= every.as_millis() as u64 / 2 {
                let h = Header {
                    kind: Kind::Ping,
                    flags: FLAG_NO_REPLY,
                    id: 0,
                    len: 0,
                };
                let _g = inner.wr.lock().unwrap();
                if inner.stream.write_frame(&h.to_bytes(), &[]).is_err() {
                    return;
                }
            }
        });
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_cookie(s: &str) -> Option<[u8; COOKIE_LEN]> {
    if s.len() != COOKIE_LEN * 2 || !s.is_ascii() {
        return None;
    }
    let mut c = [0u8; COOKIE_LEN];
    for (i, b) in c.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(c)
}
