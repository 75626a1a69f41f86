//! Threads blocked in `accept` sleep on the listener's own queue, and
//! each connection wakes one of them (not the herd): every connection is
//! still taken. (Idle blocked sockets costing no processor time and
//! cancellation of blocked calls are in `idle_sockets.rs` and `cancel.rs`.)

mod net_util;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::Duration;

use net_util::*;
use rump::sys::{self, consts::*};
use rump::Process;

fn lo(port: u16) -> rump::net::SockAddr {
    rump::net::sockaddr(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)))
}

fn tcp_listener(p: &Process, port: u16) -> i32 {
    let l = sys::socket(p, af::INET, sock::STREAM, 0).unwrap();
    sys::bind(p, l, lo(port)).unwrap();
    sys::listen(p, l, 128).unwrap();
    l
}

/// 64 threads in accept on one listener: each connection wakes one of
/// them (all connections are accepted, by distinct threads or not, and
/// none is lost when a woken thread leaves).
#[test]
fn accept_herd_takes_every_connection() {
    within(60, || {
        let (_k, p) = net_kernel();
        let l = tcp_listener(&p, 7300);
        let threads: Vec<_> = (0..64)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || sys::accept(&p, l).map(|(fd, _)| fd))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(200));
        let mut clients = Vec::new();
        for _ in 0..64 {
            let c = sys::socket(&p, af::INET, sock::STREAM, 0).unwrap();
            sys::connect(&p, c, lo(7300)).unwrap();
            clients.push(c);
        }
        let mut got: Vec<i32> = threads
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 64);
    });
}
