//! Helpers shared by the network tests (`net_*.rs`): kernels wired on an
//! in-process bus, deterministic data with a checksum, and a watchdog that
//! turns a hang into a failure.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::mpsc;
use std::time::Duration;

use rump::{Kernel, Process};

/// Addresses from TEST-NET-1 (RFC 5737): never routed anywhere real.
pub fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

pub fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip(last), port))
}

/// A kernel with the network stack and a root process.
pub fn net_kernel() -> (Kernel, Process) {
    let k = Kernel::builder().net().boot().expect("boot");
    let p = k.process().expect("process");
    (k, p)
}

/// `n` kernels on one new bus, kernel `i` at 192.0.2.(i+1)/24 on `bus0`.
pub fn bus_kernels(n: usize) -> Vec<(Kernel, Process)> {
    let bus = rump::net::unique_bus_name("t");
    (0..n)
        .map(|i| {
            let (k, p) = net_kernel();
            rump::net::ifup(&p, "bus0", &bus, ip(i as u8 + 1), 24).expect("ifup");
            (k, p)
        })
        .collect()
}

/// Deterministic pseudo-random bytes (xorshift64*), different per seed.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
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

/// A streaming 64-bit FNV-1a over bytes (order-sensitive).
#[derive(Clone, Copy)]
pub struct Fnv(pub u64);

impl Fnv {
    pub fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub fn update(&mut self, data: &[u8]) {
        for &b in data {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

pub fn fnv(data: &[u8]) -> u64 {
    let mut h = Fnv::new();
    h.update(data);
    h.0
}

/// Runs `f` on a thread; fails the test if it takes longer than `secs`.
pub fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => h.join().expect("test thread panicked"),
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung for more than {secs} s"),
    }
}

/// Whether we run as root (network namespaces, tap devices).
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `tool` is on the PATH.
pub fn have(tool: &str) -> bool {
    std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null 2>&1")])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
