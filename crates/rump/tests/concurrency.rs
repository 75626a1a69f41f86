//! Many threads on one kernel: mixed operations finish without deadlock
//! and leave a consistent file system; halting wakes every blocked call
//! with `ESHUTDOWN`, and every call after halt fails at once. Each test
//! runs under a watchdog, so a deadlock fails the test instead of hanging
//! it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::{boot, get, list, names, put, with_watchdog};
use rump::kern::sysctl::SysctlValue;
use rump::sys::consts::{f, o, poll, s, seek};
use rump::sys::{self, PollFd, Request, TimeArg};
use rump::{Errno, ForkFds, Kernel, Process};

const WATCHDOG: Duration = Duration::from_secs(60);

/// A small deterministic generator (xorshift64*), one per thread.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// Errors that races on shared names may legitimately cause.
fn expected_race(e: Errno) -> bool {
    matches!(
        e,
        Errno::ENOENT | Errno::EEXIST | Errno::ENOTEMPTY | Errno::ENOTDIR | Errno::EISDIR
    )
}

fn tolerate<T>(what: &str, r: Result<T, Errno>) {
    if let Err(e) = r {
        assert!(expected_race(e), "{what}: unexpected {e:?}");
    }
}

/// Entries of the shared directories that no worker touches.
const ANCHORS: [&str; 4] = ["anchor0", "anchor1", "anchor2", "anchor3"];

/// The bytes thread `t` writes to its private file `i`.
fn contents(t: usize, i: u64) -> Vec<u8> {
    let len = 1 + (i as usize * 977 + t * 131) % 9000;
    (0..len).map(|j| (j as u64 ^ i ^ t as u64) as u8).collect()
}

/// One worker: mixed operations on shared names (racing with the others)
/// and on a private directory (checked exactly).
fn worker(p: Process, t: usize, iterations: u64) {
    let mut rng = Rng::new(t as u64 + 1);
    let private = format!("/priv{t}");
    sys::mkdir(&p, private.as_bytes(), 0o755).unwrap();
    let mut mine: BTreeSet<String> = BTreeSet::new();
    let shared_file =
        |rng: &mut Rng| format!("/shared/d{}/n{}", rng.below(4), rng.below(8)).into_bytes();
    let shared_dir =
        |rng: &mut Rng| format!("/shared/d{}/s{}", rng.below(4), rng.below(3)).into_bytes();
    for i in 0..iterations {
        match rng.below(12) {
            0 => {
                // Create and fill a private file, read it back.
                let name = format!("{private}/f{i}");
                let data = contents(t, i);
                put(&p, name.as_bytes(), &data);
                assert_eq!(get(&p, name.as_bytes()).unwrap(), data);
                mine.insert(name);
            }
            1 => {
                // Rename a private file, check its contents moved with it.
                if let Some(old) = mine.iter().next().cloned() {
                    let new = format!("{private}/r{i}");
                    let before = get(&p, old.as_bytes()).unwrap();
                    sys::rename(&p, old.as_bytes(), new.as_bytes()).unwrap();
                    assert_eq!(get(&p, new.as_bytes()).unwrap(), before);
                    mine.remove(&old);
                    mine.insert(new);
                }
            }
            2 => {
                if let Some(old) = mine.iter().last().cloned() {
                    sys::unlink(&p, old.as_bytes()).unwrap();
                    mine.remove(&old);
                }
            }
            3 => {
                let path = shared_file(&mut rng);
                match sys::open(&p, &path, o::RDWR | o::CREAT, 0o644) {
                    Ok(fd) => {
                        sys::write(&p, fd, &[t as u8; 100]).unwrap();
                        let mut buf = [0u8; 100];
                        sys::pread(&p, fd, &mut buf, 0).unwrap();
                        sys::close(&p, fd).unwrap();
                    }
                    Err(e) => tolerate("open shared", Err::<(), _>(e)),
                }
            }
            4 => tolerate("unlink shared", sys::unlink(&p, &shared_file(&mut rng))),
            5 => {
                let (a, b) = (shared_file(&mut rng), shared_file(&mut rng));
                tolerate("rename shared", sys::rename(&p, &a, &b));
            }
            6 => tolerate("mkdir shared", sys::mkdir(&p, &shared_dir(&mut rng), 0o755)),
            7 => tolerate("rmdir shared", sys::rmdir(&p, &shared_dir(&mut rng))),
            8 => {
                let (a, b) = (shared_dir(&mut rng), shared_dir(&mut rng));
                tolerate("rename dir", sys::rename(&p, &a, &b));
            }
            9 => {
                // A listing racing with changes never goes backwards and
                // returns the entries nobody touches exactly once. (A name
                // removed and added again may show up twice: POSIX leaves
                // that unspecified.)
                let d = format!("/shared/d{}", rng.below(4));
                let ents = list(&p, d.as_bytes()).unwrap();
                assert!(
                    ents.windows(2).all(|w| w[0].off < w[1].off),
                    "{d}: d_off went back"
                );
                for name in ANCHORS.iter().chain([&".", &".."]) {
                    let n = ents.iter().filter(|e| e.name == name.as_bytes()).count();
                    assert_eq!(n, 1, "{d}/{name} listed {n} times");
                }
            }
            10 => {
                tolerate("stat", sys::stat(&p, &shared_file(&mut rng)).map(drop));
                tolerate("lstat", sys::lstat(&p, &shared_dir(&mut rng)).map(drop));
            }
            _ => {
                // A pipe round trip of our own.
                let (r, w) = sys::pipe2(&p, o::CLOEXEC).unwrap();
                let msg = format!("thread {t} message {i}");
                sys::write(&p, w, msg.as_bytes()).unwrap();
                sys::close(&p, w).unwrap();
                let mut buf = [0u8; 64];
                let n = sys::read(&p, r, &mut buf).unwrap();
                assert_eq!(&buf[..n], msg.as_bytes());
                assert_eq!(sys::read(&p, r, &mut buf), Ok(0));
                sys::close(&p, r).unwrap();
            }
        }
    }
    // The private directory holds exactly what this thread left there.
    let expect: Vec<Vec<u8>> = mine
        .iter()
        .map(|n| n.rsplit('/').next().unwrap().as_bytes().to_vec())
        .collect();
    assert_eq!(names(&p, private.as_bytes()).unwrap(), expect);
}

fn remove_tree(p: &Process, path: &[u8]) {
    for e in list(p, path).unwrap() {
        if e.name == b"." || e.name == b".." {
            continue;
        }
        let child = [path, b"/", &e.name].concat();
        if e.kind == rump::sys::consts::dt::DIR {
            remove_tree(p, &child);
        } else {
            sys::unlink(p, &child).unwrap();
        }
    }
    sys::rmdir(p, path).unwrap();
}

#[test]
fn eight_threads_of_mixed_operations_finish_and_leave_a_consistent_tree() {
    with_watchdog(WATCHDOG, || {
        let (_k, p) = boot();
        let before = sys::statvfs(&p, b"/").unwrap();
        sys::mkdir(&p, b"/shared", 0o777).unwrap();
        for d in 0..4 {
            sys::mkdir(&p, format!("/shared/d{d}").as_bytes(), 0o777).unwrap();
            for a in ANCHORS {
                put(&p, format!("/shared/d{d}/{a}").as_bytes(), b"");
            }
        }
        // A producer and a consumer on one pipe run alongside the workers.
        let (r, w) = sys::pipe2(&p, 0).unwrap();
        const STREAM: usize = 1 << 20;
        let mut threads = Vec::new();
        for t in 0..6 {
            // Half the workers share a process (and its descriptor table).
            let q = if t % 2 == 0 {
                p.clone()
            } else {
                p.rfork(ForkFds::Copy).unwrap()
            };
            threads.push(std::thread::spawn(move || worker(q, t, 400)));
        }
        let producer = p.clone();
        threads.push(std::thread::spawn(move || {
            let mut sent = 0;
            let mut i = 0u64;
            while sent < STREAM {
                let chunk: Vec<u8> = (0..1 + (i as usize * 7919) % 20000)
                    .map(|j| ((sent + j) % 251) as u8)
                    .take(STREAM - sent)
                    .collect();
                let n = sys::write(&producer, w, &chunk).unwrap();
                assert_eq!(n, chunk.len());
                sent += n;
                i += 1;
                let _ = sys::stat(&producer, b"/shared/d0");
            }
            sys::close(&producer, w).unwrap();
        }));
        let consumer = p.clone();
        threads.push(std::thread::spawn(move || {
            let mut got = 0;
            let mut buf = vec![0u8; 7000];
            loop {
                let n = sys::read(&consumer, r, &mut buf).unwrap();
                if n == 0 {
                    break;
                }
                for (j, &b) in buf[..n].iter().enumerate() {
                    assert_eq!(b, ((got + j) % 251) as u8, "pipe byte {}", got + j);
                }
                got += n;
            }
            assert_eq!(got, STREAM);
            sys::close(&consumer, r).unwrap();
        }));
        for t in threads {
            t.join().unwrap();
        }
        // Link counts agree with the directories' contents.
        for d in 0..4 {
            let dir = format!("/shared/d{d}");
            let ents = list(&p, dir.as_bytes()).unwrap();
            let subdirs = ents
                .iter()
                .filter(|e| {
                    e.kind == rump::sys::consts::dt::DIR && e.name != b"." && e.name != b".."
                })
                .count() as u64;
            assert_eq!(
                sys::stat(&p, dir.as_bytes()).unwrap().nlink,
                2 + subdirs,
                "{dir}"
            );
            for e in ents.iter().filter(|e| e.name != b"." && e.name != b"..") {
                let path = [dir.as_bytes(), b"/", &e.name].concat();
                assert_eq!(sys::lstat(&p, &path).unwrap().ino, e.ino);
            }
        }
        // Removing everything gives back every page and inode.
        remove_tree(&p, b"/shared");
        for t in 0..6 {
            remove_tree(&p, format!("/priv{t}").as_bytes());
        }
        let after = sys::statvfs(&p, b"/").unwrap();
        assert_eq!((after.bfree, after.ffree), (before.bfree, before.ffree));
    });
}

#[test]
fn small_pipe_writes_from_many_threads_are_never_interleaved() {
    with_watchdog(WATCHDOG, || {
        let (_k, p) = boot();
        let (r, w) = sys::pipe2(&p, 0).unwrap();
        const RECORD: usize = 512;
        const PER_WRITER: usize = 500;
        let barrier = Arc::new(Barrier::new(4));
        let writers: Vec<_> = (0..4u8)
            .map(|id| {
                let (q, barrier) = (p.clone(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    for _ in 0..PER_WRITER {
                        assert_eq!(sys::write(&q, w, &[id; RECORD]), Ok(RECORD));
                    }
                })
            })
            .collect();
        let mut stream = Vec::new();
        let mut buf = vec![0u8; 3000];
        while stream.len() < 4 * PER_WRITER * RECORD {
            let n = sys::read(&p, r, &mut buf).unwrap();
            stream.extend_from_slice(&buf[..n]);
        }
        for h in writers {
            h.join().unwrap();
        }
        let mut counts = BTreeMap::new();
        for rec in stream.chunks(RECORD) {
            assert!(rec.iter().all(|&b| b == rec[0]), "interleaved record");
            *counts.entry(rec[0]).or_insert(0) += 1;
        }
        assert!(counts.values().all(|&c| c == PER_WRITER), "{counts:?}");
    });
}

/// Starts `f` on a thread that reports when it is about to block.
fn spawn_blocker<T: Send + 'static>(
    ready: &mpsc::Sender<()>,
    f: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<(T, Instant)> {
    let ready = ready.clone();
    std::thread::spawn(move || {
        ready.send(()).unwrap();
        let r = f();
        (r, Instant::now())
    })
}

#[test]
fn halt_wakes_blocked_calls_with_eshutdown() {
    with_watchdog(WATCHDOG, || {
        let (k, p) = boot();
        let (ready_tx, ready_rx) = mpsc::channel();
        // A read of an empty pipe.
        let (r1, _w1) = sys::pipe2(&p, 0).unwrap();
        let q = p.clone();
        let reader = spawn_blocker(&ready_tx, move || {
            let mut buf = [0u8; 8];
            sys::read(&q, r1, &mut buf)
        });
        // A write to a full pipe.
        let (_r2, w2) = sys::pipe2(&p, o::NONBLOCK).unwrap();
        while sys::write(&p, w2, &[0u8; 4096]).is_ok() {}
        sys::fcntl(&p, w2, f::SETFL, 0).unwrap();
        let q = p.clone();
        let writer = spawn_blocker(&ready_tx, move || sys::write(&q, w2, &[1u8; 10]));
        // A poll without a timeout, and one with a long timeout.
        let (r3, _w3) = sys::pipe2(&p, 0).unwrap();
        let q = p.clone();
        let poller = spawn_blocker(&ready_tx, move || {
            let mut fds = [PollFd {
                fd: r3,
                events: poll::IN,
                revents: 0,
            }];
            sys::poll(&q, &mut fds, -1)
        });
        let q = p.clone();
        let long_poll = spawn_blocker(&ready_tx, move || sys::poll(&q, &mut [], 600_000));
        // A blocking read in another process of the same kernel, through
        // the request enum.
        let other = k.process().unwrap();
        let (r4, _w4) = sys::pipe2(&other, 0).unwrap();
        let dispatched = spawn_blocker(&ready_tx, move || {
            sys::dispatch(&other, Request::Read { fd: r4, len: 16 })
        });
        // Opening a fifo for reading while nobody writes.
        sys::mknod(&p, b"/fifo", s::IFIFO | 0o600, 0).unwrap();
        let q = p.clone();
        let fifo_open = spawn_blocker(&ready_tx, move || sys::open(&q, b"/fifo", o::RDONLY, 0));
        for _ in 0..6 {
            ready_rx.recv().unwrap();
        }
        // Give them time to go to sleep.
        std::thread::sleep(Duration::from_millis(200));
        let halted_at = Instant::now();
        k.halt();
        let results = [
            reader.join().unwrap(),
            writer.join().unwrap(),
            poller.join().unwrap(),
            long_poll.join().unwrap(),
        ];
        for (i, (r, woke)) in results.iter().enumerate() {
            assert_eq!(*r, Err(Errno::ESHUTDOWN), "blocked call {i}");
            let late = woke.duration_since(halted_at);
            assert!(
                late < Duration::from_secs(5),
                "call {i} woke {late:?} after halt"
            );
        }
        let (d, _) = dispatched.join().unwrap();
        assert_eq!(d, Err(Errno::ESHUTDOWN));
        let (fifo, _) = fifo_open.join().unwrap();
        assert_eq!(fifo, Err(Errno::ESHUTDOWN));
    });
}

#[test]
fn halt_while_threads_are_busy_stops_all_of_them() {
    with_watchdog(WATCHDOG, || {
        let (k, p) = boot();
        sys::mkdir(&p, b"/d", 0o777).unwrap();
        let barrier = Arc::new(Barrier::new(9));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (q, barrier) = (p.rfork(ForkFds::Share).unwrap(), barrier.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    let mut i = 0u64;
                    loop {
                        let name = format!("/d/t{t}-{}", i % 16);
                        let r = match i % 4 {
                            0 => sys::open(&q, name.as_bytes(), o::RDWR | o::CREAT, 0o644)
                                .and_then(|fd| sys::close(&q, fd)),
                            1 => sys::unlink(&q, name.as_bytes()),
                            2 => sys::pipe2(&q, 0).and_then(|(r, w)| {
                                sys::write(&q, w, b"x")?;
                                let mut b = [0u8; 1];
                                sys::read(&q, r, &mut b)?;
                                sys::close(&q, r)?;
                                sys::close(&q, w)
                            }),
                            _ => sys::stat(&q, b"/d").map(drop),
                        };
                        match r {
                            Err(Errno::ESHUTDOWN) => break,
                            // A call that overlaps with halt may also see
                            // the descriptors halt closes under it.
                            Err(e) => assert!(
                                matches!(e, Errno::ENOENT | Errno::EBADF | Errno::EPIPE),
                                "unexpected {e:?}"
                            ),
                            Ok(()) => {}
                        }
                        i += 1;
                    }
                    // Once halted, always halted.
                    assert_eq!(sys::getpid(&q), Err(Errno::ESHUTDOWN));
                    i
                })
            })
            .collect();
        barrier.wait();
        std::thread::sleep(Duration::from_millis(50));
        // Several threads halting at once is fine.
        let halters: Vec<_> = (0..3)
            .map(|_| {
                let k = k.raw().clone();
                std::thread::spawn(move || k.halt())
            })
            .collect();
        for h in halters {
            h.join().unwrap();
        }
        for t in threads {
            t.join().unwrap();
        }
    });
}

#[test]
fn after_halt_every_call_fails_at_once() {
    with_watchdog(WATCHDOG, || {
        let (k, p) = boot();
        put(&p, b"/f", b"data");
        sys::mkdir(&p, b"/mnt", 0o755).unwrap();
        let fd = sys::open(&p, b"/f", o::RDWR, 0).unwrap();
        let (r, w) = sys::pipe2(&p, 0).unwrap();
        k.halt();
        let start = Instant::now();
        macro_rules! down {
            ($call:expr) => {
                assert_eq!($call.err(), Some(Errno::ESHUTDOWN), stringify!($call))
            };
        }
        let mut buf = [0u8; 8];
        down!(sys::open(&p, b"/f", o::RDONLY, 0));
        down!(sys::read(&p, fd, &mut buf));
        down!(sys::read(&p, r, &mut buf));
        down!(sys::write(&p, w, b"x"));
        down!(sys::pread(&p, fd, &mut buf, 0));
        down!(sys::pwrite(&p, fd, b"x", 0));
        down!(sys::readv(&p, fd, &mut [&mut buf[..]]));
        down!(sys::writev(&p, fd, &[&b"x"[..]]));
        down!(sys::lseek(&p, fd, 0, seek::SET));
        down!(sys::close(&p, fd));
        down!(sys::fstat(&p, fd));
        down!(sys::stat(&p, b"/f"));
        down!(sys::lstat(&p, b"/f"));
        down!(sys::mkdir(&p, b"/d", 0o755));
        down!(sys::rmdir(&p, b"/mnt"));
        down!(sys::unlink(&p, b"/f"));
        down!(sys::rename(&p, b"/f", b"/g"));
        down!(sys::link(&p, b"/f", b"/g"));
        down!(sys::symlink(&p, b"/f", b"/g"));
        down!(sys::readlink(&p, b"/f"));
        down!(sys::chmod(&p, b"/f", 0o600));
        down!(sys::fchmod(&p, fd, 0o600));
        down!(sys::chown(&p, b"/f", 1, 1));
        down!(sys::fchown(&p, fd, 1, 1));
        down!(sys::utimensat(&p, -100, b"/f", None, 0));
        down!(sys::futimens(&p, fd, Some([TimeArg::NOW; 2])));
        down!(sys::truncate(&p, b"/f", 0));
        down!(sys::ftruncate(&p, fd, 0));
        down!(sys::fsync(&p, fd));
        down!(sys::fdatasync(&p, fd));
        down!(sys::sync(&p));
        down!(sys::access(&p, b"/f", 0));
        down!(sys::chdir(&p, b"/"));
        down!(sys::fchdir(&p, fd));
        down!(sys::getcwd(&p));
        down!(sys::chroot(&p, b"/"));
        down!(sys::umask(&p, 0));
        down!(sys::statvfs(&p, b"/"));
        down!(sys::fstatvfs(&p, fd));
        down!(sys::mount(&p, b"tmpfs", b"/mnt", b"tmpfs", 0, b""));
        down!(sys::umount2(&p, b"/mnt", 0));
        down!(sys::mounts(&p));
        down!(sys::getpid(&p));
        down!(sys::getuid(&p));
        down!(sys::setuid(&p, 0));
        down!(sys::setgroups(&p, &[]));
        down!(sys::uname(&p));
        down!(sys::pipe2(&p, 0));
        down!(sys::dup(&p, fd));
        down!(sys::dup2(&p, fd, 9));
        down!(sys::dup3(&p, fd, 9, 0));
        down!(sys::fcntl(&p, fd, f::GETFL, 0));
        down!(sys::getdents64(&p, fd, &mut [0u8; 256]));
        down!(sys::poll(&p, &mut [], -1));
        down!(sys::sysctl_get(&p, "kern.hostname"));
        down!(sys::sysctl_set(
            &p,
            "kern.hostname",
            SysctlValue::Str("x".into())
        ));
        down!(sys::sysctl_list(&p, ""));
        assert_eq!(p.rfork(ForkFds::Share).err(), Some(Errno::ESHUTDOWN));
        assert_eq!(k.process().err(), Some(Errno::ESHUTDOWN));
        // The facade reports the same error.
        let e = rump::fs::File::open(&p, "/f").err().unwrap();
        assert_eq!(e.raw_os_error(), Some(Errno::ESHUTDOWN.raw()));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "calls after halt took {:?}",
            start.elapsed()
        );
    });
}

#[test]
fn concurrent_kernels_with_threads_each() {
    with_watchdog(WATCHDOG, || {
        let kernels: Vec<Kernel> = (0..4).map(|_| Kernel::boot().unwrap()).collect();
        let mut threads = Vec::new();
        for (ki, k) in kernels.iter().enumerate() {
            for t in 0..2 {
                let p = k.process().unwrap();
                threads.push(std::thread::spawn(move || {
                    let dir = format!("/k{ki}t{t}");
                    sys::mkdir(&p, dir.as_bytes(), 0o755).unwrap();
                    for i in 0..200 {
                        let f = format!("{dir}/{i}");
                        put(&p, f.as_bytes(), f.as_bytes());
                    }
                    assert_eq!(names(&p, dir.as_bytes()).unwrap().len(), 200);
                }));
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        for k in &kernels {
            let p = k.process().unwrap();
            assert_eq!(names(&p, b"/").unwrap().len(), 2);
        }
    });
}
