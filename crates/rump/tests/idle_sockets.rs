//! A blocked socket reader costs no CPU: 100 threads blocked in `recv` on
//! TCP connections and UDP sockets where nothing arrives leave the
//! process (all of it: the threads, the kernels' own threads) nearly idle,
//! and all of them wake when data comes.
//!
//! One test in this file on purpose: it measures the whole process's CPU
//! time, which other tests running alongside would add to.

mod common;
mod net_util;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::with_watchdog;
use net_util::{addr, bus_kernels};
use rump::net::sockaddr;
use rump::sys::{self, consts::af, consts::sock};

const TCP_READERS: usize = 50;
const UDP_READERS: usize = 50;
/// Time for the readers to get past any spinning and fall asleep.
const SETTLE: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(5);
/// 2% of one core over [`MEASURE`].
const BUDGET: Duration = Duration::from_millis(100);

/// User plus system CPU time of this whole process.
fn cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the rusage it is given; RUSAGE_SELF is valid.
    let r = unsafe { libc::getrusage(libc::RUSAGE_SELF, ru.as_mut_ptr()) };
    assert_eq!(r, 0, "getrusage");
    // SAFETY: getrusage succeeded and initialised it (it was zeroed anyway).
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// The meter sees other threads' CPU time: a spinning thread's 100 ms
/// show up within 10 s (wall time, as the machine may be shared).
fn check_meter() {
    let before = cpu_time();
    // Spin until the meter has seen 100 ms (a loaded machine gives the
    // spinner less than its wall time), for at most 10 s.
    std::thread::spawn(move || {
        let t = Instant::now();
        while cpu_time() - before < Duration::from_millis(100)
            && t.elapsed() < Duration::from_secs(10)
        {
            for _ in 0..10_000 {
                std::hint::spin_loop();
            }
        }
    })
    .join()
    .unwrap();
    let spun = cpu_time() - before;
    assert!(
        spun >= Duration::from_millis(100),
        "the CPU meter saw {spun:?} of a 10 s spin"
    );
}

#[test]
fn a_hundred_blocked_socket_readers_cost_no_cpu() {
    with_watchdog(Duration::from_secs(60), || {
        check_meter();
        let mut ks = bus_kernels(2);
        let (kb, pb) = ks.pop().unwrap();
        let (ka, pa) = ks.pop().unwrap();
        // TCP connections from A to B; B holds its ends and sends nothing.
        let l = sys::socket(&pb, af::INET, sock::STREAM, 0).unwrap();
        sys::bind(&pb, l, sockaddr(addr(2, 8000))).unwrap();
        sys::listen(&pb, l, 128).unwrap();
        let mut clients = Vec::new();
        let mut servers = Vec::new();
        for _ in 0..TCP_READERS {
            let c = sys::socket(&pa, af::INET, sock::STREAM, 0).unwrap();
            sys::connect(&pa, c, sockaddr(addr(2, 8000))).unwrap();
            clients.push(c);
            servers.push(sys::accept4(&pb, l, 0).unwrap().0);
        }
        // UDP sockets on A nothing is sent to (yet).
        let udp: Vec<(i32, u16)> = (0..UDP_READERS)
            .map(|i| {
                let port = 9000 + i as u16;
                let u = sys::socket(&pa, af::INET, sock::DGRAM, 0).unwrap();
                sys::bind(&pa, u, sockaddr(addr(1, port))).unwrap();
                (u, port)
            })
            .collect();
        let (ready_tx, ready) = mpsc::channel();
        let mut readers = Vec::new();
        for (i, &c) in clients.iter().enumerate() {
            let (q, ready_tx) = (pa.rfork(rump::ForkFds::Share).unwrap(), ready_tx.clone());
            readers.push(std::thread::spawn(move || {
                ready_tx.send(()).unwrap();
                let mut b = [0u8; 64];
                let r = sys::recv(&q, c, &mut b, 0).map(|n| b[..n].to_vec());
                (format!("TCP reader {i}"), r, Instant::now())
            }));
        }
        for (i, &(u, _)) in udp.iter().enumerate() {
            let (q, ready_tx) = (pa.clone(), ready_tx.clone());
            readers.push(std::thread::spawn(move || {
                ready_tx.send(()).unwrap();
                let mut b = [0u8; 64];
                let r = sys::recvfrom(&q, u, &mut b, 0).map(|info| b[..info.len].to_vec());
                (format!("UDP reader {i}"), r, Instant::now())
            }));
        }
        for _ in 0..TCP_READERS + UDP_READERS {
            ready.recv().unwrap();
        }
        std::thread::sleep(SETTLE);
        let (cpu0, t0) = (cpu_time(), Instant::now());
        std::thread::sleep(MEASURE);
        let (used, elapsed) = (cpu_time() - cpu0, t0.elapsed());
        eprintln!(
            "{} blocked readers: {used:?} CPU in {elapsed:.2?} ({:.2}% of one core)",
            TCP_READERS + UDP_READERS,
            100.0 * used.as_secs_f64() / elapsed.as_secs_f64()
        );
        // Nobody returned early (nothing was sent).
        assert!(
            readers.iter().all(|h| !h.is_finished()),
            "a reader returned with nothing sent"
        );
        // Wake them all with data, and check each got its own.
        let woken_at = Instant::now();
        for (i, &s) in servers.iter().enumerate() {
            let msg = format!("tcp {i}");
            assert_eq!(sys::send(&pb, s, msg.as_bytes(), 0), Ok(msg.len()));
        }
        let from = sys::socket(&pb, af::INET, sock::DGRAM, 0).unwrap();
        for (i, &(_, port)) in udp.iter().enumerate() {
            let msg = format!("udp {i}");
            assert_eq!(
                sys::sendto(&pb, from, msg.as_bytes(), 0, Some(sockaddr(addr(1, port)))),
                Ok(msg.len())
            );
        }
        for (i, h) in readers.into_iter().enumerate() {
            let (who, r, at) = h.join().unwrap();
            let want = if i < TCP_READERS {
                format!("tcp {i}")
            } else {
                format!("udp {}", i - TCP_READERS)
            };
            assert_eq!(r, Ok(want.into_bytes()), "{who}");
            let late = at.duration_since(woken_at);
            assert!(
                late < Duration::from_secs(5),
                "{who} woke {late:?} after its data"
            );
        }
        assert!(
            used < BUDGET,
            "{} threads blocked in recv used {used:?} of CPU in {elapsed:.2?} \
             (budget {BUDGET:?}, 2% of one core): blocked socket calls must sleep, not spin",
            TCP_READERS + UDP_READERS
        );
        ka.halt();
        kb.halt();
    });
}
