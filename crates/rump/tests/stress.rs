//! Stress: 64 host threads on one kernel (tmpfs root, ext2 on `/mnt`,
//! the network stack), mixing file operations on both file systems
//! (shared directories raced on, private files checked exactly), pipes
//! streaming checked data between threads, and TCP echo sessions with a
//! second kernel on an in-process bus. Then the same load with the kernel
//! halted at a random (seeded) moment: every thread must come back
//! promptly with an error the halt explains, blocked calls must wake, and
//! the ext2 image must be clean after it. A third test aims at one way
//! the image was found unclean: halting while threads write to ext2 files
//! they have unlinked.
//!
//! `RUMP_STRESS_SEED=N` replays one halt round with seed `N` (each round
//! prints its seed).

mod common;
mod ext2_util;
mod net_util;

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{dirents, list, with_watchdog};
use net_util::{addr, ip, pattern};
use rump::net::SockAddr;
use rump::sys::consts::{af, dt, o, shut, sock};
use rump::sys::{self};
use rump::{Errno, ForkFds, Kernel, Process};

const WATCHDOG: Duration = Duration::from_secs(120);
/// How long after the halt every thread must have returned.
const PROMPT: Duration = Duration::from_secs(10);

/// Threads on the kernel under test.
const THREADS: usize = 64;
const TMPFS_WORKERS: usize = 16;
const EXT2_WORKERS: usize = 16;
const PIPE_PAIRS: usize = 8;
/// TCP clients in the kernel under test, talking to echo servers in the
/// other kernel.
const TCP_CLIENTS: usize = 12;
/// Echo servers in the kernel under test, serving clients in the other.
const TCP_SERVERS: usize = 4;
/// Threads that block forever (until the halt) in the halt rounds; they
/// take the places of as many TCP clients.
const SLEEPERS: usize = 4;

// The bounded run's amount of work (sized for a debug build on 2 cores).
const FS_ITERATIONS: u64 = 1500;
const PIPE_BYTES: u64 = 4 << 20;
const TCP_ROUNDS: u64 = 10;
const TCP_MESSAGES: u64 = 20;

const A_PORT: u16 = 7001;
const B_PORT: u16 = 7000;
/// First byte of a TCP session: echo until end of stream, or stop serving.
const ECHO: u8 = 1;
const STOP: u8 = 2;

/// A small deterministic generator (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Errors that races on shared names may legitimately cause.
const RACES: &[Errno] = &[
    Errno::ENOENT,
    Errno::EEXIST,
    Errno::ENOTEMPTY,
    Errno::ENOTDIR,
    Errno::EISDIR,
];

/// Errors a call that overlaps with the halt of its kernel may see:
/// `ESHUTDOWN` (the halt itself: at entry, or waking a sleeper), `EBADF`
/// (halt closes every descriptor, so a call that looks its descriptor up
/// after that finds none; a socket whose protocol state halt tore down
/// reads as closed), `ENOENT` (halt drops each process's root and working
/// directory, so a lookup that starts after that finds nothing), `EPIPE`
/// (halt closed a pipe's read end under a writer), `EIO` and `EROFS`
/// (halt unmounted ext2 under a call that had already entered it: the
/// driver answers `EIO` once unmounted, and `EROFS` to a write that waited
/// on its lock while the unmount made it read-only).
const HALT_ERRORS: &[Errno] = &[
    Errno::ESHUTDOWN,
    Errno::EBADF,
    Errno::ENOENT,
    Errno::EPIPE,
    Errno::EIO,
    Errno::EROFS,
];

/// What the other kernel's threads may see once their peer (the kernel
/// under test) is gone, besides their own kernel's halt: the errors of a
/// vanished peer.
const PEER_GONE: &[Errno] = &[
    Errno::ESHUTDOWN,
    Errno::EBADF,
    Errno::EPIPE,
    Errno::ECONNRESET,
    Errno::ETIMEDOUT,
    Errno::EHOSTUNREACH,
    Errno::ENOTCONN,
];

/// A worker stops: its kernel is being halted.
#[derive(Debug)]
struct Halted;

type Step<T> = Result<T, Halted>;

/// A thread's view of the run: its name (for messages), whether the
/// kernel it depends on is being halted, and which errors that explains.
#[derive(Clone)]
struct Ctx {
    name: String,
    halting: Arc<AtomicBool>,
    after_halt: &'static [Errno],
    tally: Arc<Tally>,
    /// Which kernel the thread runs in ("A", under test, or "B").
    kernel: &'static str,
}

/// The work done and the errors the halt explained, for the report.
#[derive(Default)]
struct Tally {
    fs_ops: AtomicU64,
    pipe_bytes: AtomicU64,
    echoed: AtomicU64,
    halt_errors: Mutex<BTreeMap<String, u64>>,
}

impl Tally {
    fn summary(&self) -> String {
        format!(
            "{} file-system operations, {} pipe bytes, {} bytes echoed over TCP",
            self.fs_ops.load(Ordering::Relaxed),
            self.pipe_bytes.load(Ordering::Relaxed),
            self.echoed.load(Ordering::Relaxed)
        )
    }
}

impl Ctx {
    fn halting(&self) -> bool {
        self.halting.load(Ordering::SeqCst)
    }

    /// An error of `what`: `Ok` if `races` explains it, `Halted` if the
    /// halt does, a panic otherwise.
    fn excuse(&self, what: &str, e: Errno, races: &[Errno]) -> Step<()> {
        if self.halting() && self.after_halt.contains(&e) {
            let mut seen = self.tally.halt_errors.lock().unwrap();
            *seen.entry(format!("{}: {e:?}", self.kernel)).or_insert(0) += 1;
            return Err(Halted);
        }
        if races.contains(&e) {
            return Ok(());
        }
        panic!(
            "{}: {what}: unexpected {e:?}{}",
            self.name,
            if self.halting() {
                " (while the kernel halts)"
            } else {
                " (no halt under way)"
            }
        );
    }

    /// A call that must succeed (unless the halt explains its error).
    fn must<T>(&self, what: &str, r: Result<T, Errno>) -> Step<T> {
        r.or_else(|e| {
            self.excuse(what, e, &[])?;
            unreachable!()
        })
    }

    /// A call whose errors in `races` are legitimate: `None` then.
    fn may<T>(&self, what: &str, r: Result<T, Errno>, races: &[Errno]) -> Step<Option<T>> {
        match r {
            Ok(v) => Ok(Some(v)),
            Err(e) => self.excuse(what, e, races).map(|()| None),
        }
    }

    /// An end of stream where data was due: only a halt explains it.
    fn eof(&self, what: &str) -> Halted {
        assert!(
            self.halting(),
            "{}: {what}: unexpected end of stream (no halt under way)",
            self.name
        );
        Halted
    }

    /// A call that blocked until the halt: it must wake with `ESHUTDOWN`.
    fn woken_by_halt<T: std::fmt::Debug>(&self, what: &str, r: Result<T, Errno>) -> Step<()> {
        assert!(
            self.halting(),
            "{}: {what} returned {r:?} before the halt",
            self.name
        );
        match r {
            Err(Errno::ESHUTDOWN) => Err(Halted),
            r => panic!(
                "{}: {what}, blocked when the kernel halted, returned {r:?} (want ESHUTDOWN)",
                self.name
            ),
        }
    }
}

/// A description of where two byte strings first differ.
fn diff(got: &[u8], want: &[u8]) -> String {
    let at = got
        .iter()
        .zip(want)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(want.len()));
    format!(
        "{} bytes, want {}; first difference at byte {at}",
        got.len(),
        want.len()
    )
}

// ----- file operations --------------------------------------------------------

/// Entries of the shared directories that no worker touches.
const ANCHORS: [&str; 4] = ["anchor0", "anchor1", "anchor2", "anchor3"];

/// The bytes a worker with `seed` writes to its private file `i`.
fn contents(seed: u64, i: u64) -> Vec<u8> {
    let len = 1 + i.wrapping_mul(977).wrapping_add(seed.wrapping_mul(131)) % 9000;
    pattern((seed << 32) | i, len as usize)
}

fn close(cx: &Ctx, p: &Process, fd: i32) -> Step<()> {
    cx.must("close", sys::close(p, fd))
}

/// Writes all of `data` at the descriptor's offset.
fn write_all(cx: &Ctx, p: &Process, fd: i32, what: &str, mut data: &[u8]) -> Step<()> {
    while !data.is_empty() {
        let n = cx.must(what, sys::write(p, fd, data))?;
        assert!(
            n > 0 && (n == data.len() || cx.halting()),
            "{}: {what}: wrote {n} of {} bytes",
            cx.name,
            data.len()
        );
        data = &data[n..];
    }
    Ok(())
}

/// Creates (or truncates) `path` with `data`.
fn put(cx: &Ctx, p: &Process, path: &str, data: &[u8]) -> Step<()> {
    let fd = cx.must(
        &format!("create {path}"),
        sys::open(p, path.as_bytes(), o::WRONLY | o::CREAT | o::TRUNC, 0o644),
    )?;
    write_all(cx, p, fd, &format!("write {path}"), data)?;
    close(cx, p, fd)
}

/// The contents of `path`, which must exist.
fn get(cx: &Ctx, p: &Process, path: &str) -> Step<Vec<u8>> {
    let fd = cx.must(
        &format!("open {path}"),
        sys::open(p, path.as_bytes(), o::RDONLY, 0),
    )?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = cx.must(&format!("read {path}"), sys::read(p, fd, &mut buf))?;
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    close(cx, p, fd)?;
    Ok(out)
}

/// A listing of the shared directory `dir` (which always exists): offsets
/// only go forward, and the entries nobody touches show up exactly once.
/// (A name removed and added again may show up twice: POSIX leaves that
/// unspecified.)
fn check_listing(cx: &Ctx, p: &Process, dir: &str) -> Step<()> {
    let fd = cx.must(
        &format!("open {dir}"),
        sys::open(p, dir.as_bytes(), o::RDONLY | o::DIRECTORY, 0),
    )?;
    let mut ents = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = cx.must(&format!("getdents {dir}"), sys::getdents64(p, fd, &mut buf))?;
        if n == 0 {
            break;
        }
        ents.extend(dirents(&buf[..n]));
    }
    close(cx, p, fd)?;
    assert!(
        ents.windows(2).all(|w| w[0].off < w[1].off),
        "{}: {dir}: d_off went back",
        cx.name
    );
    for name in ANCHORS.iter().chain([&".", &".."]) {
        let n = ents.iter().filter(|e| e.name == name.as_bytes()).count();
        assert_eq!(n, 1, "{}: {dir}/{name} listed {n} times", cx.name);
    }
    Ok(())
}

/// Makes `root/shared/d0..d3`, each with the anchors.
fn make_shared(p: &Process, root: &str) {
    sys::mkdir(p, format!("{root}/shared").as_bytes(), 0o777).unwrap();
    for d in 0..4 {
        let dir = format!("{root}/shared/d{d}");
        sys::mkdir(p, dir.as_bytes(), 0o777).unwrap();
        for a in ANCHORS {
            common::put(p, format!("{dir}/{a}").as_bytes(), b"");
        }
    }
}

/// One file-system worker under `root` ("" for tmpfs, "/mnt" for ext2):
/// operations on shared names, racing with the other workers there, and
/// on a private directory, checked exactly. Returns the private files it
/// leaves, with their contents' hashes.
fn fs_worker(
    cx: &Ctx,
    p: &Process,
    root: &str,
    id: usize,
    seed: u64,
    iterations: u64,
) -> Step<BTreeMap<String, u64>> {
    let mut rng = Rng::new(seed);
    let private = format!("{root}/priv{id}");
    cx.must(
        &format!("mkdir {private}"),
        sys::mkdir(p, private.as_bytes(), 0o755),
    )?;
    let mut mine: BTreeMap<String, u64> = BTreeMap::new();
    let shared_file = |rng: &mut Rng| format!("{root}/shared/d{}/n{}", rng.below(4), rng.below(8));
    let shared_dir = |rng: &mut Rng| format!("{root}/shared/d{}/s{}", rng.below(4), rng.below(3));
    for i in 0..iterations {
        cx.tally.fs_ops.fetch_add(1, Ordering::Relaxed);
        match rng.below(13) {
            0 | 1 => {
                // Create and fill a private file, read it back.
                let name = format!("{private}/f{i}");
                let data = contents(seed, i);
                put(cx, p, &name, &data)?;
                let back = get(cx, p, &name)?;
                assert!(back == data, "{}: {name}: {}", cx.name, diff(&back, &data));
                mine.insert(name, net_util::fnv(&data));
            }
            2 => {
                // Rename a private file; its contents move with it.
                if let Some((old, hash)) = mine.pop_first() {
                    let new = format!("{private}/r{i}");
                    cx.must(
                        &format!("rename {old} {new}"),
                        sys::rename(p, old.as_bytes(), new.as_bytes()),
                    )?;
                    let back = get(cx, p, &new)?;
                    assert_eq!(
                        net_util::fnv(&back),
                        hash,
                        "{}: {new} (renamed from {old}) has other contents",
                        cx.name
                    );
                    let gone = sys::stat(p, old.as_bytes()).map(drop);
                    if gone != Err(Errno::ENOENT) {
                        cx.must(&format!("stat {old} after rename"), gone)?;
                        panic!("{}: {old} still there after its rename", cx.name);
                    }
                    mine.insert(new, hash);
                }
            }
            3 => {
                if let Some((old, _)) = mine.pop_last() {
                    cx.must(&format!("unlink {old}"), sys::unlink(p, old.as_bytes()))?;
                }
            }
            4 => {
                // Write a shared file (its blocks race with unlinks), read
                // some of it back.
                let path = shared_file(&mut rng);
                let fd = cx.may(
                    &format!("open {path}"),
                    sys::open(p, path.as_bytes(), o::RDWR | o::CREAT, 0o644),
                    RACES,
                )?;
                if let Some(fd) = fd {
                    let len = 1 + rng.below(20_000) as usize;
                    write_all(cx, p, fd, &format!("write {path}"), &vec![id as u8; len])?;
                    let mut buf = [0u8; 100];
                    cx.must(&format!("pread {path}"), sys::pread(p, fd, &mut buf, 0))?;
                    close(cx, p, fd)?;
                }
            }
            5 => {
                let path = shared_file(&mut rng);
                cx.may("unlink shared", sys::unlink(p, path.as_bytes()), RACES)?;
            }
            6 => {
                let (a, b) = (shared_file(&mut rng), shared_file(&mut rng));
                cx.may(
                    "rename shared",
                    sys::rename(p, a.as_bytes(), b.as_bytes()),
                    RACES,
                )?;
            }
            7 => {
                let d = shared_dir(&mut rng);
                cx.may("mkdir shared", sys::mkdir(p, d.as_bytes(), 0o755), RACES)?;
            }
            8 => {
                let d = shared_dir(&mut rng);
                cx.may("rmdir shared", sys::rmdir(p, d.as_bytes()), RACES)?;
            }
            9 => {
                let (a, b) = (shared_dir(&mut rng), shared_dir(&mut rng));
                cx.may(
                    "rename shared dir",
                    sys::rename(p, a.as_bytes(), b.as_bytes()),
                    RACES,
                )?;
            }
            10 => check_listing(cx, p, &format!("{root}/shared/d{}", rng.below(4)))?,
            11 => {
                let f = shared_file(&mut rng);
                cx.may("stat shared", sys::stat(p, f.as_bytes()), RACES)?;
                let d = shared_dir(&mut rng);
                cx.may("lstat shared", sys::lstat(p, d.as_bytes()), RACES)?;
            }
            _ => {
                // A pipe round trip of our own.
                let (r, w) = cx.must("pipe2", sys::pipe2(p, o::CLOEXEC))?;
                let msg = format!("{} message {i}", cx.name);
                write_all(cx, p, w, "own pipe write", msg.as_bytes())?;
                close(cx, p, w)?;
                let mut buf = [0u8; 64];
                let n = cx.must("own pipe read", sys::read(p, r, &mut buf))?;
                if n == 0 {
                    return Err(cx.eof("own pipe read"));
                }
                assert_eq!(&buf[..n], msg.as_bytes(), "{}: own pipe", cx.name);
                assert_eq!(
                    cx.must("own pipe read at end", sys::read(p, r, &mut buf))?,
                    0,
                    "{}: own pipe: data after the message",
                    cx.name
                );
                close(cx, p, r)?;
            }
        }
    }
    // The private directory holds exactly what this worker left there.
    let want: Vec<Vec<u8>> = mine
        .keys()
        .map(|n| n.rsplit('/').next().unwrap().as_bytes().to_vec())
        .collect();
    let have = common::names(p, private.as_bytes()).unwrap();
    assert_eq!(have, want, "{}: {private} holds other names", cx.name);
    Ok(mine)
}

// ----- pipes ------------------------------------------------------------------

/// Byte `j` of the stream with `seed`: depends on the position, so a lost,
/// repeated or reordered byte shows.
fn stream_byte(seed: u64, j: u64) -> u8 {
    ((j.wrapping_mul(0x9E37_79B9) >> 11) ^ j ^ seed) as u8
}

fn pipe_writer(cx: &Ctx, p: &Process, w: i32, seed: u64, total: u64) -> Step<()> {
    let mut rng = Rng::new(seed);
    let mut sent = 0u64;
    while sent < total {
        let len = (1 + rng.below(20_000)).min(total - sent);
        let chunk: Vec<u8> = (sent..sent + len).map(|j| stream_byte(seed, j)).collect();
        write_all(cx, p, w, "pipe write", &chunk)?;
        cx.tally.pipe_bytes.fetch_add(len, Ordering::Relaxed);
        sent += len;
    }
    close(cx, p, w)
}

fn pipe_reader(cx: &Ctx, p: &Process, r: i32, seed: u64, total: u64) -> Step<()> {
    let mut rng = Rng::new(seed ^ 0xff);
    let mut got = 0u64;
    let mut buf = vec![0u8; 20_000];
    loop {
        let len = 1 + rng.below(buf.len() as u64) as usize;
        let n = cx.must("pipe read", sys::read(p, r, &mut buf[..len]))?;
        if n == 0 {
            break;
        }
        for (k, &b) in buf[..n].iter().enumerate() {
            let j = got + k as u64;
            assert_eq!(b, stream_byte(seed, j), "{}: pipe byte {j}", cx.name);
        }
        got += n as u64;
    }
    if got != total {
        return Err(cx.eof(&format!("pipe read after {got} of {total} bytes")));
    }
    close(cx, p, r)
}

// ----- TCP --------------------------------------------------------------------

fn send_all(cx: &Ctx, p: &Process, fd: i32, mut data: &[u8]) -> Step<()> {
    while !data.is_empty() {
        let n = cx.must("send", sys::send(p, fd, data, 0))?;
        assert!(n > 0, "{}: send returned 0", cx.name);
        data = &data[n..];
    }
    Ok(())
}

fn recv_exact(cx: &Ctx, p: &Process, fd: i32, what: &str, buf: &mut [u8]) -> Step<()> {
    let mut got = 0;
    while got < buf.len() {
        let n = cx.must(what, sys::recv(p, fd, &mut buf[got..], 0))?;
        if n == 0 {
            return Err(cx.eof(&format!("{what} after {got} of {} bytes", buf.len())));
        }
        got += n;
    }
    Ok(())
}

/// Serves connections on the listener `lfd`: each starts with `ECHO` (then
/// everything is echoed until end of stream) or `STOP` (return).
fn echo_server(cx: &Ctx, p: &Process, lfd: i32) -> Step<()> {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let (fd, _) = cx.must("accept", sys::accept4(p, lfd, sock::CLOEXEC))?;
        let session = (|| {
            let mut hdr = [0u8];
            recv_exact(cx, p, fd, "recv session header", &mut hdr)?;
            if hdr[0] == STOP {
                return Ok(false);
            }
            assert_eq!(hdr[0], ECHO, "{}: bad session header", cx.name);
            loop {
                let n = cx.must("recv to echo", sys::recv(p, fd, &mut buf, 0))?;
                if n == 0 {
                    return Ok(true);
                }
                send_all(cx, p, fd, &buf[..n])?;
            }
        })();
        // The session's verdict first: after a halt, close fails too.
        let more = session?;
        close(cx, p, fd)?;
        if !more {
            return Ok(());
        }
    }
}

fn tcp_socket(cx: &Ctx, p: &Process) -> Step<i32> {
    cx.must(
        "socket",
        sys::socket(p, af::INET, sock::STREAM | sock::CLOEXEC, 0),
    )
}

/// `rounds` connections to `to`, each with `messages` echoed messages
/// checked byte for byte and an orderly close.
fn echo_client(
    cx: &Ctx,
    p: &Process,
    to: SockAddr,
    seed: u64,
    rounds: u64,
    messages: u64,
) -> Step<()> {
    let mut rng = Rng::new(seed);
    for round in 0..rounds {
        let fd = tcp_socket(cx, p)?;
        let r = (|| {
            cx.must("connect", sys::connect(p, fd, to))?;
            send_all(cx, p, fd, &[ECHO])?;
            for m in 0..messages {
                let len = 1 + rng.below(12_000) as usize;
                let data = pattern((seed << 24) ^ (round << 12) ^ m, len);
                send_all(cx, p, fd, &data)?;
                let mut back = vec![0u8; len];
                recv_exact(cx, p, fd, "recv echo", &mut back)?;
                assert!(
                    back == data,
                    "{}: round {round} message {m} echoed wrong: {}",
                    cx.name,
                    diff(&back, &data)
                );
                cx.tally.echoed.fetch_add(len as u64, Ordering::Relaxed);
            }
            cx.must("shutdown", sys::shutdown(p, fd, shut::WR))?;
            let mut b = [0u8; 1];
            let n = cx.must("recv end", sys::recv(p, fd, &mut b, 0))?;
            assert_eq!(n, 0, "{}: data after the echo", cx.name);
            Ok(())
        })();
        r?;
        close(cx, p, fd)?;
    }
    Ok(())
}

/// The seed of TCP client `i` in kernel `side` (0xa or 0xb).
fn client_seed(seed: u64, side: u64, i: usize) -> u64 {
    seed ^ (side << 8) ^ ((i as u64) << 44)
}

/// The bytes [`echo_client`] with `seed` echoes in `rounds` rounds.
fn echo_bytes(seed: u64, rounds: u64, messages: u64) -> u64 {
    let mut rng = Rng::new(seed);
    (0..rounds * messages).map(|_| 1 + rng.below(12_000)).sum()
}

/// Tells one echo server at `to` to stop.
fn stop_server(p: &Process, to: SockAddr) {
    let fd = sys::socket(p, af::INET, sock::STREAM | sock::CLOEXEC, 0).unwrap();
    sys::connect(p, fd, to).unwrap();
    assert_eq!(sys::send(p, fd, &[STOP], 0), Ok(1));
    sys::close(p, fd).unwrap();
}

fn listen(p: &Process, port: u16, at: u8) -> i32 {
    let fd = sys::socket(p, af::INET, sock::STREAM | sock::CLOEXEC, 0).unwrap();
    sys::bind(p, fd, rump::net::sockaddr(addr(at, port))).unwrap();
    sys::listen(p, fd, 128).unwrap();
    fd
}

// ----- the crew ---------------------------------------------------------------

/// Threads of one kernel, spawned with their context. A panicking thread
/// halts both kernels (so the others come back instead of waiting for it
/// forever) and its message is kept to be reported first.
struct Crew {
    kernel: &'static str,
    halting: Arc<AtomicBool>,
    after_halt: &'static [Errno],
    tally: Arc<Tally>,
    /// Whether a thread that stopped for the halt then waits for its
    /// kernel to refuse every call (`ESHUTDOWN`).
    await_shutdown: bool,
    kernels: Vec<rump::kern::Kernel>,
    first_panic: Arc<Mutex<Option<String>>>,
    start: Option<Arc<Barrier>>,
    handles: Vec<(String, JoinHandle<Option<Instant>>)>,
}

impl Crew {
    fn spawn(
        &mut self,
        name: String,
        p: &Process,
        f: impl FnOnce(&Ctx, &Process) -> Step<()> + Send + 'static,
    ) {
        let cx = Ctx {
            name: name.clone(),
            halting: self.halting.clone(),
            after_halt: self.after_halt,
            tally: self.tally.clone(),
            kernel: self.kernel,
        };
        let (p, kernels, first_panic, start, wait) = (
            p.clone(),
            self.kernels.clone(),
            self.first_panic.clone(),
            self.start.clone(),
            self.await_shutdown,
        );
        let h = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                if let Some(b) = start {
                    b.wait();
                }
                let r = catch_unwind(AssertUnwindSafe(|| match f(&cx, &p) {
                    Ok(()) => None,
                    Err(Halted) => {
                        if wait {
                            await_shutdown(&cx, &p);
                        }
                        Some(Instant::now())
                    }
                }));
                match r {
                    Ok(t) => t,
                    Err(e) => {
                        let msg = panic_message(&*e);
                        first_panic
                            .lock()
                            .unwrap()
                            .get_or_insert_with(|| format!("{}: {msg}", cx.name));
                        cx.halting.store(true, Ordering::SeqCst);
                        for k in &kernels {
                            k.halt();
                        }
                        resume_unwind(e)
                    }
                }
            })
            .unwrap();
        self.handles.push((name, h));
    }

    /// Joins every thread; fails with the first panic. Returns, per
    /// thread that stopped for a halt, when it came back.
    fn join(self) -> Vec<(String, Instant)> {
        let mut stopped = Vec::new();
        let mut failed = false;
        for (name, h) in self.handles {
            match h.join() {
                Ok(Some(t)) => stopped.push((name, t)),
                Ok(None) => {}
                Err(_) => failed = true,
            }
        }
        if failed {
            let msg = self.first_panic.lock().unwrap().clone();
            panic!(
                "a thread failed: {}",
                msg.unwrap_or_else(|| "(no message)".into())
            );
        }
        stopped
    }
}

fn panic_message(e: &(dyn std::any::Any + Send)) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(not a string)".into())
}

/// Once its kernel halts, a process refuses every call with `ESHUTDOWN`
/// (the thread may notice the halt just before the kernel marks itself
/// halted, so this waits a little for it).
fn await_shutdown(cx: &Ctx, p: &Process) {
    let start = Instant::now();
    loop {
        match sys::getpid(p) {
            Err(Errno::ESHUTDOWN) => return,
            Ok(_) if start.elapsed() < PROMPT => std::thread::sleep(Duration::from_millis(1)),
            r => panic!("{}: after the halt, getpid gave {r:?}", cx.name),
        }
    }
}

// ----- the load ---------------------------------------------------------------

/// The two kernels, the image and the shared state of one run.
struct Rig {
    a: Kernel,
    pa: Process,
    b: Kernel,
    pb: Process,
    _dir: tempfile::TempDir,
    image: std::path::PathBuf,
}

/// Kernel A (under test: tmpfs root, ext2 image on `/mnt`, net at
/// 192.0.2.1) and kernel B (net at 192.0.2.2) on one bus.
fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("stress.img");
    ext2_util::newfs(&image, 64 << 20, 1024);
    let a = Kernel::builder().ext2().net().boot().expect("boot A");
    let pa = a.process().unwrap();
    rump::ext2::mount_image(&pa, &image, "/dev/disk0", "/mnt", false).expect("mount ext2");
    let (b, pb) = net_util::net_kernel();
    let bus = rump::net::unique_bus_name("stress");
    rump::net::ifup(&pa, "bus0", &bus, ip(1), 24).unwrap();
    rump::net::ifup(&pb, "bus0", &bus, ip(2), 24).unwrap();
    make_shared(&pa, "");
    make_shared(&pa, "/mnt");
    Rig {
        a,
        pa,
        b,
        pb,
        _dir: dir,
        image,
    }
}

/// The process thread `t` uses: the root process itself, a child sharing
/// its descriptors, a child with a copy, or a process of its own.
fn process_for(k: &Kernel, p: &Process, t: usize) -> Process {
    match t % 4 {
        0 => p.clone(),
        1 => p.rfork(ForkFds::Share).unwrap(),
        2 => p.rfork(ForkFds::Copy).unwrap(),
        _ => k.process().unwrap(),
    }
}

/// Spawns the 64 threads of kernel A and the helpers of kernel B, with
/// the bounded amounts of work or (`!bounded`) to work until the halt,
/// four of A's threads then blocking in calls nothing completes. Returns
/// the crews and the ext2 workers' surviving private files.
fn spawn_load(
    rig: &Rig,
    seed: u64,
    bounded: bool,
    halting: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
) -> (Crew, Crew, Arc<Mutex<BTreeMap<String, u64>>>) {
    let forever = u64::MAX;
    let (fs_iters, pipe_bytes, tcp_rounds) = if bounded {
        (FS_ITERATIONS, PIPE_BYTES, TCP_ROUNDS)
    } else {
        (forever, forever, forever)
    };
    let first_panic = Arc::new(Mutex::new(None));
    let kernels = vec![rig.a.raw().clone(), rig.b.raw().clone()];
    let sleepers = if bounded { 0 } else { SLEEPERS };
    let start = Arc::new(Barrier::new(THREADS - sleepers + 1));
    let mut crew_a = Crew {
        kernel: "A",
        halting: halting.clone(),
        after_halt: HALT_ERRORS,
        tally: tally.clone(),
        await_shutdown: true,
        kernels: kernels.clone(),
        first_panic: first_panic.clone(),
        start: Some(start.clone()),
        handles: Vec::new(),
    };
    let mut crew_b = Crew {
        kernel: "B",
        halting: halting.clone(),
        after_halt: PEER_GONE,
        tally: tally.clone(),
        await_shutdown: false,
        kernels,
        first_panic,
        start: None,
        handles: Vec::new(),
    };
    let (ka, pa, pb) = (&rig.a, &rig.pa, &rig.pb);
    let survivors = Arc::new(Mutex::new(BTreeMap::new()));
    let mut t = 0;
    if !bounded {
        // Calls that block until the halt: a read of a pipe nobody writes,
        // an accept nobody connects to, a recv on a TCP connection (over
        // lo0) and on a UDP socket where nothing arrives. They start
        // before the load, so that they are surely asleep when the halt
        // comes (under the load a thread may wait long for a processor).
        crew_a.start = None;
        let (ready, is_ready) = std::sync::mpsc::channel();
        let (r, _w) = sys::pipe2(pa, o::CLOEXEC).unwrap();
        let tx = ready.clone();
        crew_a.spawn(format!("t{t}-sleep-pipe"), pa, move |cx, p| {
            let mut b = [0u8; 1];
            tx.send(()).unwrap();
            cx.woken_by_halt("pipe read", sys::read(p, r, &mut b))
        });
        t += 1;
        let idle = listen(pa, 7002, 1);
        let tx = ready.clone();
        crew_a.spawn(format!("t{t}-sleep-accept"), pa, move |cx, p| {
            tx.send(()).unwrap();
            cx.woken_by_halt("accept", sys::accept4(p, idle, 0))
        });
        t += 1;
        let lo = sys::socket(pa, af::INET, sock::STREAM, 0).unwrap();
        let l3 = listen(pa, 7003, 1);
        sys::connect(pa, lo, rump::net::sockaddr(addr(1, 7003))).unwrap();
        let _accepted = sys::accept4(pa, l3, 0).unwrap();
        let tx = ready.clone();
        crew_a.spawn(format!("t{t}-sleep-tcp-recv"), pa, move |cx, p| {
            let mut b = [0u8; 16];
            tx.send(()).unwrap();
            cx.woken_by_halt("TCP recv", sys::recv(p, lo, &mut b, 0))
        });
        t += 1;
        let ufd = sys::socket(pa, af::INET, sock::DGRAM, 0).unwrap();
        sys::bind(pa, ufd, rump::net::sockaddr(addr(1, 7004))).unwrap();
        crew_a.spawn(format!("t{t}-sleep-udp-recv"), pa, move |cx, p| {
            let mut b = [0u8; 16];
            ready.send(()).unwrap();
            cx.woken_by_halt("UDP recvfrom", sys::recvfrom(p, ufd, &mut b, 0))
        });
        t += 1;
        for _ in 0..SLEEPERS {
            is_ready.recv().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
        crew_a.start = Some(start.clone());
    }
    // File-system workers: tmpfs, then ext2.
    for (root, n) in [("", TMPFS_WORKERS), ("/mnt", EXT2_WORKERS)] {
        for _ in 0..n {
            let (id, wseed) = (t, seed ^ ((t as u64) << 40));
            let survivors = survivors.clone();
            let fs = if root.is_empty() { "tmpfs" } else { "ext2" };
            crew_a.spawn(
                format!("t{t}-{fs}"),
                &process_for(ka, pa, t),
                move |cx, p| {
                    let left = fs_worker(cx, p, root, id, wseed, fs_iters)?;
                    if root == "/mnt" {
                        survivors.lock().unwrap().extend(left);
                    }
                    Ok(())
                },
            );
            t += 1;
        }
    }
    // Pipe pairs: in one process, across processes sharing a descriptor
    // table, and across processes with copied tables.
    for i in 0..PIPE_PAIRS {
        let pseed = seed ^ 0x5151 ^ ((i as u64) << 48);
        let (writer, reader, w, r) = match i % 3 {
            0 => {
                let (r, w) = sys::pipe2(pa, o::CLOEXEC).unwrap();
                (pa.clone(), pa.clone(), w, r)
            }
            1 => {
                let q = pa.rfork(ForkFds::Share).unwrap();
                let (r, w) = sys::pipe2(&q, o::CLOEXEC).unwrap();
                (q, pa.clone(), w, r)
            }
            _ => {
                let (r, w) = sys::pipe2(pa, o::CLOEXEC).unwrap();
                let c = pa.rfork(ForkFds::Copy).unwrap();
                // Each side keeps only its end.
                sys::close(&c, w).unwrap();
                sys::close(pa, r).unwrap();
                (pa.clone(), c, w, r)
            }
        };
        crew_a.spawn(format!("t{t}-pipe{i}-writer"), &writer, move |cx, p| {
            pipe_writer(cx, p, w, pseed, pipe_bytes)
        });
        t += 1;
        crew_a.spawn(format!("t{t}-pipe{i}-reader"), &reader, move |cx, p| {
            pipe_reader(cx, p, r, pseed, pipe_bytes)
        });
        t += 1;
    }
    // TCP: A's clients talk to B's echo servers; B's clients to A's.
    let la = listen(pa, A_PORT, 1);
    let lb = listen(pb, B_PORT, 2);
    for i in 0..TCP_CLIENTS - sleepers {
        let cseed = client_seed(seed, 0xa, i);
        crew_a.spawn(
            format!("t{t}-tcp-client{i}"),
            &process_for(ka, pa, i),
            move |cx, p| {
                let to = rump::net::sockaddr(addr(2, B_PORT));
                echo_client(cx, p, to, cseed, tcp_rounds, TCP_MESSAGES)
            },
        );
        t += 1;
        crew_b.spawn(format!("b-echo-server{i}"), pb, move |cx, p| {
            echo_server(cx, p, lb)
        });
    }
    for i in 0..TCP_SERVERS {
        let q = if i % 2 == 0 {
            pa.clone()
        } else {
            pa.rfork(ForkFds::Share).unwrap()
        };
        crew_a.spawn(format!("t{t}-tcp-server{i}"), &q, move |cx, p| {
            echo_server(cx, p, la)
        });
        t += 1;
        let cseed = client_seed(seed, 0xb, i);
        crew_b.spawn(format!("b-tcp-client{i}"), pb, move |cx, p| {
            let to = rump::net::sockaddr(addr(1, A_PORT));
            echo_client(cx, p, to, cseed, tcp_rounds, TCP_MESSAGES)
        });
    }
    assert_eq!(t, THREADS);
    start.wait();
    (crew_a, crew_b, survivors)
}

/// Link counts of the shared directories under `root` agree with their
/// contents, and every entry names the inode it lists.
fn check_shared(p: &Process, root: &str) {
    for d in 0..4 {
        let dir = format!("{root}/shared/d{d}");
        let ents = list(p, dir.as_bytes()).unwrap();
        let subdirs = ents
            .iter()
            .filter(|e| e.kind == dt::DIR && e.name != b"." && e.name != b"..")
            .count() as u64;
        assert_eq!(
            sys::stat(p, dir.as_bytes()).unwrap().nlink,
            2 + subdirs,
            "{dir}: link count"
        );
        for e in ents.iter().filter(|e| e.name != b"." && e.name != b"..") {
            let path = [dir.as_bytes(), b"/", &e.name].concat();
            assert_eq!(sys::lstat(p, &path).unwrap().ino, e.ino, "{dir}: inode");
        }
    }
}

/// `e2fsck -fn` finds nothing wrong with `image` (skipped with one line
/// when e2fsck is missing).
fn fsck_clean(image: &Path, when: &str) {
    if !ext2_util::have("e2fsck") {
        eprintln!("skipped the e2fsck check {when}: e2fsck not installed");
        return;
    }
    let (code, out) = ext2_util::fsck(image);
    let hint = if out.contains("has zero dtime") {
        "\n(an inode whose last link was gone was still allocated: an orphan \
         a call still held when the file system was unmounted was never freed)"
    } else {
        ""
    };
    assert_eq!(code, 0, "e2fsck -fn {when}:\n{out}{hint}");
}

#[test]
fn sixty_four_threads_mixed_load_on_tmpfs_ext2_pipes_and_tcp() {
    with_watchdog(WATCHDOG, || {
        let started = Instant::now();
        let rig = rig();
        let halting = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        const SEED: u64 = 1;
        let (crew_a, crew_b, survivors) = spawn_load(&rig, SEED, true, &halting, &tally);
        // B's clients finish, then A's servers are told to stop; A's
        // clients finish, then B's servers are told to stop.
        let (b_servers, b_clients): (Vec<_>, Vec<_>) = crew_b
            .handles
            .into_iter()
            .partition(|(n, _)| n.starts_with("b-echo-server"));
        let join_b = |hs: Vec<(String, JoinHandle<Option<Instant>>)>, first: &Mutex<_>| {
            let mut failed = false;
            for (_, h) in hs {
                failed |= h.join().is_err();
            }
            if failed {
                let msg: Option<String> = Option::clone(&first.lock().unwrap());
                panic!("a thread failed: {}", msg.unwrap_or_default());
            }
        };
        let first_panic = crew_a.first_panic.clone();
        join_b(b_clients, &first_panic);
        for _ in 0..TCP_SERVERS {
            stop_server(&rig.pb, rump::net::sockaddr(addr(1, A_PORT)));
        }
        let stopped = crew_a.join();
        assert!(stopped.is_empty(), "stopped for a halt: {stopped:?}");
        for _ in 0..TCP_CLIENTS {
            stop_server(&rig.pa, rump::net::sockaddr(addr(2, B_PORT)));
        }
        join_b(b_servers, &first_panic);
        let worked = started.elapsed();
        eprintln!("64 threads: {} in {worked:.1?}", tally.summary());
        // Everybody did all of their work.
        assert_eq!(
            tally.fs_ops.load(Ordering::Relaxed),
            (TMPFS_WORKERS + EXT2_WORKERS) as u64 * FS_ITERATIONS
        );
        assert_eq!(
            tally.pipe_bytes.load(Ordering::Relaxed),
            PIPE_PAIRS as u64 * PIPE_BYTES
        );
        let want_echo: u64 = (0..TCP_CLIENTS)
            .map(|i| client_seed(SEED, 0xa, i))
            .chain((0..TCP_SERVERS).map(|i| client_seed(SEED, 0xb, i)))
            .map(|s| echo_bytes(s, TCP_ROUNDS, TCP_MESSAGES))
            .sum();
        assert_eq!(tally.echoed.load(Ordering::Relaxed), want_echo);
        check_shared(&rig.pa, "");
        check_shared(&rig.pa, "/mnt");
        sys::umount2(&rig.pa, b"/mnt", 0).expect("unmount ext2 after the load");
        fsck_clean(&rig.image, "after the load");
        // The ext2 workers' private files are all there after a remount,
        // with their contents, and nothing else is.
        let (k2, p2) = ext2_util::mount_rw(&rig.image);
        let survivors = survivors.lock().unwrap().clone();
        let mut found = BTreeSet::new();
        for id in TMPFS_WORKERS..TMPFS_WORKERS + EXT2_WORKERS {
            let dir = format!("/mnt/priv{id}");
            for name in common::names(&p2, dir.as_bytes()).unwrap() {
                found.insert(format!("{dir}/{}", String::from_utf8(name).unwrap()));
            }
        }
        let want: BTreeSet<String> = survivors.keys().cloned().collect();
        assert_eq!(found, want, "private ext2 files after a remount");
        for (path, hash) in &survivors {
            let data = common::get(&p2, path.as_bytes()).unwrap();
            assert_eq!(net_util::fnv(&data), *hash, "{path} after a remount");
        }
        ext2_util::unmount(k2, p2);
        fsck_clean(&rig.image, "after the remount");
        rig.a.halt();
        rig.b.halt();
        eprintln!("total {:.1?}", started.elapsed());
    });
}

/// One halt round: the load runs until kernel A is halted `delay` after
/// the start; every thread of A must come back within [`PROMPT`] of the
/// halt with errors the halt explains, the blocked ones with
/// `ESHUTDOWN`; the image halt unmounted must be clean.
fn halt_round(seed: u64) {
    let mut rng = Rng::new(seed);
    let delay = Duration::from_millis(100 + rng.below(2400));
    eprintln!("halt round: RUMP_STRESS_SEED={seed} (halt after {delay:?})");
    let rig = rig();
    let halting = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let (crew_a, crew_b, _) = spawn_load(&rig, seed, false, &halting, &tally);
    std::thread::sleep(delay);
    let ka = rig.a.raw().clone();
    let flag = halting.clone();
    let halter = std::thread::spawn(move || {
        flag.store(true, Ordering::SeqCst);
        let at = Instant::now();
        ka.halt();
        (at, at.elapsed())
    });
    let (halted_at, halt_took) = halter.join().unwrap();
    let stopped = crew_a.join();
    assert_eq!(
        stopped.len(),
        THREADS,
        "every thread of the halted kernel stops for the halt"
    );
    let (slowest, last) = stopped
        .iter()
        .map(|(n, t)| (n, t.saturating_duration_since(halted_at)))
        .max_by_key(|(_, d)| *d)
        .unwrap();
    assert!(
        last <= PROMPT,
        "{slowest} came back {last:?} after the halt"
    );
    // B's threads wait on a peer that is gone; halting B wakes them.
    rig.b.halt();
    crew_b.join();
    eprintln!(
        "  work done: {}; halt took {halt_took:.1?}; the last thread ({slowest}) came back {last:.1?} after it",
        tally.summary()
    );
    eprintln!(
        "  errors the halt explained: {:?}",
        tally.halt_errors.lock().unwrap()
    );
    // Halt syncs and unmounts ext2 (marking it clean): it must be.
    fsck_clean(&rig.image, &format!("after the halt (seed {seed})"));
}

#[test]
fn sixty_four_threads_mixed_load_halted_at_a_random_moment() {
    with_watchdog(WATCHDOG, || {
        let seeds: Vec<u64> = match std::env::var("RUMP_STRESS_SEED") {
            Ok(s) => vec![s.trim().parse().expect("RUMP_STRESS_SEED: a number")],
            Err(_) => {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                let mut rng = Rng::new(t);
                (0..3).map(|_| rng.next() >> 16).collect()
            }
        };
        for seed in seeds {
            halt_round(seed);
        }
    });
}

const ORPHAN_WRITERS: usize = 32;
const ORPHAN_ROUNDS: u64 = 20;

/// The halt round's ext2 failure, made likely: threads keep writing to
/// ext2 files they have unlinked (orphans, freed when the last user goes)
/// when halt unmounts; the image must be clean anyway.
#[test]
fn halt_while_threads_write_unlinked_ext2_files_leaves_a_clean_image() {
    with_watchdog(WATCHDOG, || {
        for round in 0..ORPHAN_ROUNDS {
            let dir = tempfile::tempdir().unwrap();
            let image = dir.path().join("orphans.img");
            ext2_util::newfs(&image, 16 << 20, 1024);
            let (k, p) = ext2_util::mount_rw(&image);
            let halting = Arc::new(AtomicBool::new(false));
            let threads: Vec<_> = (0..ORPHAN_WRITERS)
                .map(|t| {
                    let (p, halting) = (p.clone(), halting.clone());
                    std::thread::spawn(move || {
                        let cx = Ctx {
                            name: format!("orphan writer {t}"),
                            halting,
                            after_halt: HALT_ERRORS,
                            tally: Arc::default(),
                            kernel: "A",
                        };
                        let path = format!("/mnt/f{t}");
                        let data = vec![t as u8; 64 << 10];
                        let work = || -> Step<()> {
                            loop {
                                let fd = cx.must(
                                    "create",
                                    sys::open(&p, path.as_bytes(), o::RDWR | o::CREAT, 0o644),
                                )?;
                                cx.must("unlink", sys::unlink(&p, path.as_bytes()))?;
                                write_all(&cx, &p, fd, "write unlinked", &data)?;
                                close(&cx, &p, fd)?;
                            }
                        };
                        // The loop ends only when the halt stops it.
                        assert!(work().is_err());
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(100 + 50 * (round % 4)));
            halting.store(true, Ordering::SeqCst);
            k.halt();
            for t in threads {
                t.join().unwrap();
            }
            fsck_clean(
                &image,
                &format!("after halting writers of unlinked files (round {round})"),
            );
        }
    });
}
