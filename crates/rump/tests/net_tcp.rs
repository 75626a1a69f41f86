//! TCP between kernels on an in-process bus and over loopback: bulk
//! transfer with a checksum, many concurrent connections, half-close,
//! resets, refusals, timeouts, the listen backlog, non-blocking calls,
//! options and the BSD error codes.

mod net_util;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4};
use std::time::{Duration, Instant};

use net_util::*;
use rump::net::{SockAddr, SockOpt, TcpListener, TcpStream};
use rump::sys::{self, consts::*, PollFd};
use rump::Errno;

fn sa(a: impl Into<std::net::SocketAddr>) -> SockAddr {
    rump::net::sockaddr(a)
}

fn tcp_socket(p: &rump::Process) -> i32 {
    sys::socket(p, af::INET, sock::STREAM, 0).unwrap()
}

#[test]
fn transfer_100_mib_with_checksum() {
    within(240, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        const LEN: usize = 100 << 20;
        let l = TcpListener::bind(&pb, addr(2, 5001)).unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut h = Fnv::new();
            let mut buf = vec![0u8; 256 << 10];
            let mut total = 0usize;
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                total += n;
            }
            // Answer with what we saw, then close.
            s.write_all(&total.to_le_bytes()).unwrap();
            s.write_all(&h.0.to_le_bytes()).unwrap();
            (total, h.0)
        });
        let data = pattern(1, LEN);
        let want = fnv(&data);
        let mut c = TcpStream::connect(&pa, addr(2, 5001)).unwrap();
        // Writes of assorted sizes, as programs make them.
        let mut off = 0;
        let mut step = 1usize;
        while off < LEN {
            let n = (step * 7919 % (1 << 20)).max(1).min(LEN - off);
            c.write_all(&data[off..off + n]).unwrap();
            off += n;
            step += 1;
        }
        c.shutdown(Shutdown::Write).unwrap();
        let mut reply = [0u8; 16];
        c.read_exact(&mut reply).unwrap();
        let mut rest = Vec::new();
        assert_eq!(c.read_to_end(&mut rest).unwrap(), 0);
        let (total, got) = server.join().unwrap();
        assert_eq!(total, LEN);
        assert_eq!(got, want, "checksum of received stream");
        assert_eq!(u64::from_le_bytes(reply[8..].try_into().unwrap()), want);
    });
}

#[test]
fn transfer_both_directions_at_once() {
    // Segments made by several threads must leave in order: when they did
    // not, retransmission timeouts stretched this to over a minute.
    within(30, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        const LEN: usize = 8 << 20;
        let l = TcpListener::bind(&pb, addr(2, 5002)).unwrap();
        let srv = std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let s = std::sync::Arc::new(s);
            let s2 = s.clone();
            let w = std::thread::spawn(move || {
                (&*s2).write_all(&pattern(3, LEN)).unwrap();
                s2.shutdown(Shutdown::Write).unwrap();
            });
            let mut got = Vec::new();
            (&*s).read_to_end(&mut got).unwrap();
            w.join().unwrap();
            fnv(&got)
        });
        let c = std::sync::Arc::new(TcpStream::connect(&pa, addr(2, 5002)).unwrap());
        let c2 = c.clone();
        let w = std::thread::spawn(move || {
            (&*c2).write_all(&pattern(2, LEN)).unwrap();
            c2.shutdown(Shutdown::Write).unwrap();
        });
        let mut got = Vec::new();
        (&*c).read_to_end(&mut got).unwrap();
        w.join().unwrap();
        assert_eq!(fnv(&got), fnv(&pattern(3, LEN)));
        assert_eq!(srv.join().unwrap(), fnv(&pattern(2, LEN)));
    });
}

#[test]
fn loopback_transfer_and_own_address() {
    within(60, || {
        let mut ks = bus_kernels(1);
        let (_k, p) = ks.pop().unwrap();
        // Both 127.0.0.1 and the bus address reach the same kernel via lo0.
        for target in [
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6000).into(),
            addr(1, 6000),
        ] {
            let l = TcpListener::bind(&p, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6000)).unwrap();
            let data = pattern(9, 3 << 20);
            let want = fnv(&data);
            let srv = std::thread::spawn(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut v = Vec::new();
                s.read_to_end(&mut v).unwrap();
                fnv(&v)
            });
            let mut c = TcpStream::connect(&p, target).unwrap();
            assert_eq!(c.peer_addr().unwrap(), target);
            assert_eq!(c.local_addr().unwrap().ip(), target.ip());
            c.write_all(&data).unwrap();
            drop(c);
            assert_eq!(srv.join().unwrap(), want);
        }
    });
}

#[test]
fn thousand_concurrent_connections_through_one_listener() {
    within(240, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        const N: usize = 1000;
        let l = TcpListener::bind_with_backlog(&pb, addr(2, 7000), 1024).unwrap();
        let srv = std::thread::spawn(move || {
            let mut conns = Vec::new();
            for _ in 0..N {
                conns.push(l.accept().unwrap().0);
            }
            // All are open at once; now serve each: echo its 8 bytes.
            for s in &mut conns {
                let mut b = [0u8; 8];
                s.read_exact(&mut b).unwrap();
                s.write_all(&b).unwrap();
            }
            conns.len()
        });
        let mut clients = Vec::new();
        for i in 0..N {
            let fd = sys::socket(&pa, af::INET, sock::STREAM | sock::NONBLOCK, 0).unwrap();
            match sys::connect(&pa, fd, sa(addr(2, 7000))) {
                Ok(()) | Err(Errno::EINPROGRESS) => {}
                Err(e) => panic!("connect {i}: {e:?}"),
            }
            clients.push(fd);
        }
        // Wait until every connection is writable (established).
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut pending: Vec<i32> = clients.clone();
        while !pending.is_empty() {
            assert!(
                Instant::now() < deadline,
                "{} connects pending",
                pending.len()
            );
            let mut pfds: Vec<PollFd> = pending
                .iter()
                .map(|&fd| PollFd {
                    fd,
                    events: poll::OUT,
                    revents: 0,
                })
                .collect();
            sys::poll(&pa, &mut pfds, 1000).unwrap();
            for pf in &pfds {
                if pf.revents & poll::ERR != 0 {
                    panic!(
                        "connect failed: {:?}",
                        sys::getsockopt(&pa, pf.fd, so::SOL_SOCKET, so::ERROR)
                    );
                }
            }
            pending = pfds
                .iter()
                .filter(|pf| pf.revents & poll::OUT == 0)
                .map(|pf| pf.fd)
                .collect();
        }
        for &fd in &clients {
            assert_eq!(
                sys::getsockopt(&pa, fd, so::SOL_SOCKET, so::ERROR),
                Ok(SockOpt::Error(0))
            );
            sys::fcntl(&pa, fd, f::SETFL, 0).unwrap();
        }
        for (i, &fd) in clients.iter().enumerate() {
            assert_eq!(sys::send(&pa, fd, &(i as u64).to_le_bytes(), 0), Ok(8));
        }
        for (i, &fd) in clients.iter().enumerate() {
            let mut b = [0u8; 8];
            assert_eq!(sys::recv(&pa, fd, &mut b, msg::WAITALL), Ok(8));
            assert_eq!(u64::from_le_bytes(b), i as u64);
        }
        assert_eq!(srv.join().unwrap(), N);
        for fd in clients {
            sys::close(&pa, fd).unwrap();
        }
    });
}

#[test]
fn half_close_keeps_the_other_direction() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let l = TcpListener::bind(&pb, addr(2, 5003)).unwrap();
        let mut c = TcpStream::connect(&pa, addr(2, 5003)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"request").unwrap();
        c.shutdown(Shutdown::Write).unwrap();
        // The server sees the data, then end of stream...
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"request");
        // ...and can still answer at length.
        let reply = pattern(5, 4 << 20);
        let w = std::thread::spawn(move || {
            s.write_all(&pattern(5, 4 << 20)).unwrap();
        });
        let mut back = Vec::new();
        c.read_to_end(&mut back).unwrap();
        w.join().unwrap();
        assert_eq!(fnv(&back), fnv(&reply));
        // Writing after SHUT_WR is EPIPE.
        assert_eq!(sys::send(c.process(), c.fd(), b"x", 0), Err(Errno::EPIPE));
    });
}

#[test]
fn close_with_queued_data_and_a_shut_window_does_not_stall() {
    // The sender closes while its data waits for the receiver's window:
    // smoltcp in LAST-ACK with data queued ignored the window update and
    // waited for its zero-window probe (1 s and more).
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let l = TcpListener::bind(&pb, addr(2, 5011)).unwrap();
        let data = pattern(12, 6 << 20);
        let want = fnv(&data);
        let w = std::thread::spawn(move || {
            let mut c = TcpStream::connect(&pa, addr(2, 5011)).unwrap();
            c.write_all(&data).unwrap();
            drop(c);
        });
        let (mut s, _) = l.accept().unwrap();
        // The receiver closes its side first, so the sender's close takes
        // it to LAST-ACK; then the window closes with data queued.
        s.shutdown(Shutdown::Write).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let t = Instant::now();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        let took = t.elapsed();
        w.join().unwrap();
        assert_eq!(fnv(&got), want);
        assert!(took < Duration::from_millis(900), "draining took {took:?}");
    });
}

#[test]
fn a_receiver_with_a_shut_window_still_takes_acks() {
    // With window scaling, smoltcp offers its window rounded down to the
    // scale unit (32 bytes for a 1 MiB buffer), so the right edge it offers
    // can move back a few bytes as segments arrive, and it trims a segment
    // sent up to the earlier edge. The sender's next sequence number then
    // lies past the receiver's, and once the receiver's window is shut
    // smoltcp drops every segment of that sender, ACKs included: what the
    // receiver sends goes unacknowledged until a retransmission timeout
    // happens to rewind the sender, or for good while the sender only
    // probes the shut window (the shmif echo test hung this way).
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let l = TcpListener::bind(&pb, addr(2, 5012)).unwrap();
        let c = std::sync::Arc::new(TcpStream::connect(&pa, addr(2, 5012)).unwrap());
        let (s, _) = l.accept().unwrap();
        // The server does not read. The client leaves a gap of eight
        // segments (1460 bytes each), a whole number of scale units, in its
        // receive buffer (1 MiB by default), so the edge on offer is the
        // end of the buffer...
        const RCVBUF: usize = 1 << 20;
        const GAP: usize = 8 * 1460;
        let up = pattern(13, RCVBUF + (256 << 10));
        (&*c).write_all(&up[..RCVBUF - GAP]).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // ...then fills it in one burst. The server answers the first four
        // segments offering an edge 16 bytes short of the end.
        let c2 = c.clone();
        let rest = up[RCVBUF - GAP..].to_vec();
        let w = std::thread::spawn(move || (&*c2).write_all(&rest).unwrap());
        std::thread::sleep(Duration::from_millis(100));
        // The server sends more than its send buffer holds, which goes
        // through only as the client's ACKs do: it stalled until a
        // retransmission timeout (a second at least, then doubling) sent
        // the client back to the server's RCV.NXT.
        let down = pattern(14, 2 << 20);
        let c3 = c.clone();
        let r = std::thread::spawn(move || {
            let mut got = vec![0u8; 2 << 20];
            (&*c3).read_exact(&mut got).map(|_| fnv(&got))
        });
        let t = Instant::now();
        (&s).write_all(&down).unwrap();
        assert_eq!(r.join().unwrap().unwrap(), fnv(&down));
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(900),
            "the answer took {took:?}"
        );
        // And the server still gets all the client sent.
        let mut got = vec![0u8; up.len()];
        (&s).read_exact(&mut got).unwrap();
        w.join().unwrap();
        assert_eq!(fnv(&got), fnv(&up));
    });
}

#[test]
fn refused_reset_and_broken_pipe() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        // Nobody listens: RST, ECONNREFUSED (through the bus and on loopback).
        let fd = tcp_socket(&pa);
        assert_eq!(
            sys::connect(&pa, fd, sa(addr(2, 9))),
            Err(Errno::ECONNREFUSED)
        );
        let fd2 = tcp_socket(&pa);
        assert_eq!(
            sys::connect(&pa, fd2, sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9))),
            Err(Errno::ECONNREFUSED)
        );
        // A refused socket is unconnected again, as on Linux: no end of
        // file to read, a broken pipe to write, nothing to shut down.
        for f in [fd, fd2] {
            let mut b = [0u8; 4];
            assert_eq!(sys::recv(&pa, f, &mut b, 0), Err(Errno::ENOTCONN));
            assert_eq!(sys::send(&pa, f, b"x", 0), Err(Errno::EPIPE));
            assert_eq!(sys::shutdown(&pa, f, shut::RDWR), Err(Errno::ENOTCONN));
        }
        // Close with unread data sends RST: the peer's read fails with
        // ECONNRESET, then reports end of stream; its writes get EPIPE.
        let l = TcpListener::bind(&pb, addr(2, 5004)).unwrap();
        let c = TcpStream::connect(&pa, addr(2, 5004)).unwrap();
        let (s, _) = l.accept().unwrap();
        (&c).write_all(b"unread").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(s);
        let mut b = [0u8; 8];
        let deadline = Instant::now() + Duration::from_secs(5);
        let err = loop {
            match sys::recv(&pa, c.fd(), &mut b, 0) {
                Err(e) => break e,
                Ok(n) => {
                    assert!(Instant::now() < deadline, "no reset seen (read {n})");
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
        };
        assert_eq!(err, Errno::ECONNRESET);
        assert_eq!(sys::recv(&pa, c.fd(), &mut b, 0), Ok(0));
        assert_eq!(sys::send(&pa, c.fd(), b"x", 0), Err(Errno::EPIPE));
    });
}

#[test]
fn connect_and_read_timeouts() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        // A host that does not exist on the bus: ARP goes unanswered, the
        // SYN retransmits, connect fails after net.inet.tcp.connect_timeout_ms.
        sys::sysctl_set(
            &pa,
            "net.inet.tcp.connect_timeout_ms",
            rump::kern::sysctl::SysctlValue::Int(1500),
        )
        .unwrap();
        let fd = tcp_socket(&pa);
        let t = Instant::now();
        assert_eq!(
            sys::connect(&pa, fd, sa(addr(99, 80))),
            Err(Errno::ETIMEDOUT)
        );
        let took = t.elapsed();
        assert!(
            took >= Duration::from_millis(1400) && took < Duration::from_secs(10),
            "{took:?}"
        );
        // SO_SNDTIMEO bounds a blocking connect (Linux reports EINPROGRESS).
        let fd = tcp_socket(&pa);
        sys::setsockopt(&pa, fd, SockOpt::SndTimeo(Some(200_000_000))).unwrap();
        let t = Instant::now();
        assert_eq!(
            sys::connect(&pa, fd, sa(addr(98, 80))),
            Err(Errno::EINPROGRESS)
        );
        assert!(t.elapsed() < Duration::from_secs(1));
        // SO_RCVTIMEO: a read with nothing to read fails with EAGAIN.
        let l = TcpListener::bind(&pb, addr(2, 5005)).unwrap();
        let c = TcpStream::connect(&pa, addr(2, 5005)).unwrap();
        let (_s, _) = l.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_millis(150)))
            .unwrap();
        let t = Instant::now();
        let mut b = [0u8; 4];
        assert_eq!(sys::recv(&pa, c.fd(), &mut b, 0), Err(Errno::EAGAIN));
        assert!(t.elapsed() >= Duration::from_millis(140));
        assert_eq!(
            sys::getsockopt(&pa, c.fd(), so::SOL_SOCKET, so::RCVTIMEO),
            Ok(SockOpt::RcvTimeo(Some(150_000_000)))
        );
        // The same on accept.
        sys::setsockopt(&pb, l.fd(), SockOpt::RcvTimeo(Some(100_000_000))).unwrap();
        assert_eq!(sys::accept(&pb, l.fd()).err(), Some(Errno::EAGAIN));
    });
}

#[test]
fn peer_that_vanishes_times_out() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        sys::sysctl_set(
            &pa,
            "net.inet.tcp.timeout_ms",
            rump::kern::sysctl::SysctlValue::Int(1000),
        )
        .unwrap();
        let l = TcpListener::bind(&pb, addr(2, 5006)).unwrap();
        let c = TcpStream::connect(&pa, addr(2, 5006)).unwrap();
        let _s = l.accept().unwrap();
        kb.halt();
        // Data now goes unacknowledged; the connection times out.
        (&c).write_all(b"into the void").unwrap();
        let mut b = [0u8; 4];
        let t = Instant::now();
        assert_eq!(sys::recv(&pa, c.fd(), &mut b, 0), Err(Errno::ETIMEDOUT));
        assert!(t.elapsed() < Duration::from_secs(10));
    });
}

#[test]
fn backlog_holds_connections_in_order_and_drops_the_rest() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let l = TcpListener::bind_with_backlog(&pb, addr(2, 5007), 2).unwrap();
        let mut fds = Vec::new();
        for _ in 0..3 {
            let fd = sys::socket(&pa, af::INET, sock::STREAM | sock::NONBLOCK, 0).unwrap();
            let _ = sys::connect(&pa, fd, sa(addr(2, 5007)));
            fds.push(fd);
        }
        std::thread::sleep(Duration::from_millis(50));
        let connected = |fd| {
            let mut pf = [PollFd {
                fd,
                events: poll::OUT,
                revents: 0,
            }];
            sys::poll(&pa, &mut pf, 0).unwrap();
            pf[0].revents & poll::OUT != 0
        };
        // Two fit the backlog; the third's SYN was dropped, not refused.
        assert!(connected(fds[0]) && connected(fds[1]));
        assert!(!connected(fds[2]));
        assert_eq!(
            sys::getsockopt(&pa, fds[2], so::SOL_SOCKET, so::ERROR),
            Ok(SockOpt::Error(0))
        );
        // Accepted in order of arrival.
        let local = |fd| sys::getsockname(&pa, fd).unwrap();
        let (s1, p1) = sys::accept(&pb, l.fd()).unwrap();
        assert_eq!(p1, local(fds[0]));
        let (_s2, p2) = sys::accept(&pb, l.fd()).unwrap();
        assert_eq!(p2, local(fds[1]));
        sys::close(&pb, s1).unwrap();
        // The SYN retransmission (after about a second) now finds room.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !connected(fds[2]) {
            assert!(
                Instant::now() < deadline,
                "third connection never completed"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (_s3, p3) = sys::accept(&pb, l.fd()).unwrap();
        assert_eq!(p3, local(fds[2]));
    });
}

#[test]
fn nonblocking_connect_reports_through_so_error() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let _l = TcpListener::bind(&pb, addr(2, 5008)).unwrap();
        for (port, want) in [(5008u16, 0), (5009, Errno::ECONNREFUSED.0)] {
            let fd = sys::socket(&pa, af::INET, sock::STREAM | sock::NONBLOCK, 0).unwrap();
            assert_eq!(
                sys::connect(&pa, fd, sa(addr(2, port))),
                Err(Errno::EINPROGRESS)
            );
            let mut pf = [PollFd {
                fd,
                events: poll::OUT,
                revents: 0,
            }];
            assert_eq!(sys::poll(&pa, &mut pf, 5000), Ok(1));
            assert_eq!(
                sys::getsockopt(&pa, fd, so::SOL_SOCKET, so::ERROR),
                Ok(SockOpt::Error(want))
            );
            // SO_ERROR reads and clears.
            assert_eq!(
                sys::getsockopt(&pa, fd, so::SOL_SOCKET, so::ERROR),
                Ok(SockOpt::Error(0))
            );
            if want == 0 {
                // As on Linux: the first connect to see the handshake done
                // succeeds, later ones say EISCONN.
                assert_eq!(sys::connect(&pa, fd, sa(addr(2, port))), Ok(()));
                assert_eq!(
                    sys::connect(&pa, fd, sa(addr(2, port))),
                    Err(Errno::EISCONN)
                );
                assert!(sys::getpeername(&pa, fd).is_ok());
            }
        }
        // EALREADY while a connect is in progress (to a silent host).
        let fd = sys::socket(&pa, af::INET, sock::STREAM | sock::NONBLOCK, 0).unwrap();
        assert_eq!(
            sys::connect(&pa, fd, sa(addr(77, 1))),
            Err(Errno::EINPROGRESS)
        );
        assert_eq!(sys::connect(&pa, fd, sa(addr(77, 1))), Err(Errno::EALREADY));
        assert_eq!(sys::getpeername(&pa, fd), Err(Errno::ENOTCONN));
    });
}

#[test]
fn errors_of_unconnected_and_misused_sockets() {
    let (k, p) = net_kernel();
    let fd = tcp_socket(&p);
    let mut b = [0u8; 4];
    assert_eq!(sys::recv(&p, fd, &mut b, 0), Err(Errno::ENOTCONN));
    assert_eq!(sys::send(&p, fd, b"x", 0), Err(Errno::EPIPE));
    assert_eq!(sys::shutdown(&p, fd, shut::WR), Err(Errno::ENOTCONN));
    assert_eq!(sys::getpeername(&p, fd), Err(Errno::ENOTCONN));
    assert_eq!(sys::accept(&p, fd).err(), Some(Errno::EINVAL));
    assert_eq!(sys::shutdown(&p, fd, 7), Err(Errno::EINVAL));
    // Listening without bind picks an ephemeral port in the BSD range.
    sys::listen(&p, fd, 5).unwrap();
    let SockAddr::Inet { port, .. } = sys::getsockname(&p, fd).unwrap() else {
        panic!()
    };
    assert!((49152..=65535).contains(&port));
    assert_eq!(sys::connect(&p, fd, sa(addr(1, 1))), Err(Errno::EISCONN));
    assert_eq!(
        sys::getsockopt(&p, fd, so::SOL_SOCKET, so::ACCEPTCONN),
        Ok(SockOpt::AcceptConn(true))
    );
    // Not a socket; unsupported families and types.
    let (r, _w) = sys::pipe2(&p, 0).unwrap();
    assert_eq!(sys::listen(&p, r, 1), Err(Errno::ENOTSOCK));
    assert_eq!(
        sys::socket(&p, af::INET6, sock::DGRAM, ipproto::ICMP),
        Err(Errno::EPROTONOSUPPORT)
    );
    assert_eq!(
        sys::socket(&p, af::INET, sock::DGRAM, ipproto::ICMPV6),
        Err(Errno::EPROTONOSUPPORT)
    );
    assert_eq!(
        sys::socket(&p, 99, sock::STREAM, 0),
        Err(Errno::EAFNOSUPPORT)
    );
    assert_eq!(
        sys::socket(&p, af::INET, sock::STREAM, ipproto::UDP),
        Err(Errno::EPROTONOSUPPORT)
    );
    assert_eq!(
        sys::socket(&p, af::INET, sock::SEQPACKET, 0),
        Err(Errno::ESOCKTNOSUPPORT)
    );
    // Binding: in use, not ours, privileged.
    let a = tcp_socket(&p);
    sys::bind(&p, a, sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4000))).unwrap();
    let b2 = tcp_socket(&p);
    assert_eq!(
        sys::bind(&p, b2, sa(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4000))),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(
        sys::bind(&p, b2, sa(addr(200, 4000))),
        Err(Errno::EADDRNOTAVAIL)
    );
    let user = k.process_as(rump::Cred::user(1000, 1000)).unwrap();
    let u = tcp_socket(&user);
    assert_eq!(
        sys::bind(&user, u, sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 80))),
        Err(Errno::EACCES)
    );
    // A kernel without the network stack has no sockets.
    let plain = rump::Kernel::boot().unwrap();
    let pp = plain.process().unwrap();
    assert_eq!(
        sys::socket(&pp, af::INET, sock::STREAM, 0),
        Err(Errno::EAFNOSUPPORT)
    );
}

#[test]
fn reuseaddr_rebinds_while_connections_linger() {
    within(60, || {
        let (_k, p) = net_kernel();
        let at = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4100);
        let l = TcpListener::bind(&p, at).unwrap();
        let c = TcpStream::connect(&p, at).unwrap();
        let (s, _) = l.accept().unwrap();
        drop(l);
        // Without SO_REUSEADDR the port is busy (the accepted connection
        // holds it); with it, a new listener binds while it lives.
        let fd = tcp_socket(&p);
        assert_eq!(sys::bind(&p, fd, sa(at)), Err(Errno::EADDRINUSE));
        let l2 = TcpListener::bind(&p, at).unwrap();
        // Two listeners on one port never.
        let fd2 = tcp_socket(&p);
        sys::setsockopt(&p, fd2, SockOpt::ReuseAddr(true)).unwrap();
        assert_eq!(sys::bind(&p, fd2, sa(at)), Err(Errno::EADDRINUSE));
        drop((c, s, l2));
    });
}

#[test]
fn peek_waitall_dontwait_and_nonblock() {
    within(60, || {
        let (_k, p) = net_kernel();
        let at = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4200);
        let l = TcpListener::bind(&p, at).unwrap();
        let c = TcpStream::connect(&p, at).unwrap();
        let (s, _) = l.accept().unwrap();
        let mut b = [0u8; 16];
        assert_eq!(
            sys::recv(&p, s.fd(), &mut b, msg::DONTWAIT),
            Err(Errno::EAGAIN)
        );
        (&c).write_all(b"hello").unwrap();
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(sys::recv(&p, s.fd(), &mut b, msg::PEEK), Ok(5));
        assert_eq!(sys::recv(&p, s.fd(), &mut b[..3], msg::PEEK), Ok(3));
        assert_eq!(sys::recv(&p, s.fd(), &mut b, 0), Ok(5));
        assert_eq!(&b[..5], b"hello");
        // MSG_WAITALL gathers a message written in pieces.
        let (p2, cfd) = (p.clone(), c.fd());
        let w = std::thread::spawn(move || {
            for chunk in [&b"abc"[..], b"defg", b"hijklmnop"] {
                std::thread::sleep(Duration::from_millis(20));
                sys::send(&p2, cfd, chunk, 0).unwrap();
            }
        });
        assert_eq!(sys::recv(&p, s.fd(), &mut b, msg::WAITALL), Ok(16));
        assert_eq!(&b, b"abcdefghijklmnop");
        w.join().unwrap();
        // O_NONBLOCK through fcntl; a full send buffer gives a short
        // write, then EAGAIN.
        sys::fcntl(&p, c.fd(), f::SETFL, o::NONBLOCK as i64).unwrap();
        let big = vec![1u8; 64 << 20];
        let n = sys::send(&p, c.fd(), &big, 0).unwrap();
        assert!(n > 0 && n < big.len(), "short write: {n}");
        assert_eq!(sys::send(&p, c.fd(), &big, 0), Err(Errno::EAGAIN));
        let mut pf = [PollFd {
            fd: c.fd(),
            events: poll::OUT,
            revents: 0,
        }];
        assert_eq!(sys::poll(&p, &mut pf, 0), Ok(0));
    });
}

#[test]
fn poll_across_sockets_pipes_and_files() {
    within(60, || {
        let (_k, p) = net_kernel();
        let at = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4300);
        let l = TcpListener::bind(&p, at).unwrap();
        let c = TcpStream::connect(&p, at).unwrap();
        let (s, _) = l.accept().unwrap();
        let (r, w) = sys::pipe2(&p, 0).unwrap();
        let file = sys::open(&p, b"/f", o::RDWR | o::CREAT, 0o644).unwrap();
        let mut set = [
            PollFd {
                fd: s.fd(),
                events: poll::IN,
                revents: 0,
            },
            PollFd {
                fd: r,
                events: poll::IN,
                revents: 0,
            },
            PollFd {
                fd: l.fd(),
                events: poll::IN,
                revents: 0,
            },
        ];
        // Nothing ready: the timeout expires.
        let t = Instant::now();
        assert_eq!(sys::poll(&p, &mut set, 100), Ok(0));
        assert!(t.elapsed() >= Duration::from_millis(90));
        // A byte from another thread wakes the poll.
        let (p2, cfd) = (p.clone(), c.fd());
        let h = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            sys::send(&p2, cfd, b"!", 0).unwrap();
        });
        assert_eq!(sys::poll(&p, &mut set, 5000), Ok(1));
        assert_eq!(set[0].revents, poll::IN);
        h.join().unwrap();
        sys::write(&p, w, b"x").unwrap();
        let mut all = [
            PollFd {
                fd: s.fd(),
                events: poll::IN | poll::OUT,
                revents: 0,
            },
            PollFd {
                fd: r,
                events: poll::IN,
                revents: 0,
            },
            PollFd {
                fd: file,
                events: poll::IN | poll::OUT,
                revents: 0,
            },
        ];
        assert_eq!(sys::poll(&p, &mut all, 0), Ok(3));
        assert_eq!(all[0].revents, poll::IN | poll::OUT);
        // A pending connection makes the listener readable; the peer's FIN
        // makes the socket readable with RDHUP.
        let _c2 = TcpStream::connect(&p, at).unwrap();
        let mut lp = [PollFd {
            fd: l.fd(),
            events: poll::IN,
            revents: 0,
        }];
        assert_eq!(sys::poll(&p, &mut lp, 1000), Ok(1));
        drop(c);
        let mut b = [0u8; 4];
        assert_eq!(sys::recv(&p, s.fd(), &mut b, 0), Ok(1));
        let mut hp = [PollFd {
            fd: s.fd(),
            events: poll::IN | poll::RDHUP,
            revents: 0,
        }];
        assert_eq!(sys::poll(&p, &mut hp, 1000), Ok(1));
        assert_eq!(
            hp[0].revents & (poll::IN | poll::RDHUP),
            poll::IN | poll::RDHUP
        );
        assert_eq!(sys::recv(&p, s.fd(), &mut b, 0), Ok(0));
    });
}

#[test]
fn options_round_trip_and_linger_zero_resets() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let fd = tcp_socket(&pa);
        for opt in [
            SockOpt::ReuseAddr(true),
            SockOpt::KeepAlive(true),
            SockOpt::NoDelay(true),
            SockOpt::Linger(Some(3)),
            SockOpt::SndTimeo(Some(1_500_000_000)),
            SockOpt::Ttl(17),
            SockOpt::KeepIdle(30),
            SockOpt::KeepIntvl(7),
            SockOpt::KeepCnt(4),
        ] {
            sys::setsockopt(&pa, fd, opt).unwrap();
            let (level, name) = opt.level_name();
            assert_eq!(sys::getsockopt(&pa, fd, level, name), Ok(opt));
            // And through Linux's byte layout, as the C ABI will pass it.
            assert_eq!(SockOpt::from_linux(level, name, &opt.to_linux()), Ok(opt));
        }
        sys::setsockopt(&pa, fd, SockOpt::RcvBuf(100_000)).unwrap();
        assert_eq!(
            sys::getsockopt(&pa, fd, so::SOL_SOCKET, so::RCVBUF),
            Ok(SockOpt::RcvBuf(200_000))
        );
        assert_eq!(
            sys::getsockopt(&pa, fd, so::SOL_SOCKET, so::TYPE),
            Ok(SockOpt::Type(sock::STREAM))
        );
        assert_eq!(
            sys::getsockopt(&pa, fd, so::SOL_SOCKET, 999),
            Err(Errno::ENOPROTOOPT)
        );
        assert_eq!(
            sys::setsockopt(&pa, fd, SockOpt::Error(1)),
            Err(Errno::ENOPROTOOPT)
        );
        // Linux's bounds on the keep-alive options, and IPv6 options on an
        // IPv4 socket.
        for (name, bad) in [
            (tcp::KEEPIDLE, 0i32),
            (tcp::KEEPINTVL, 40000),
            (tcp::KEEPCNT, 128),
        ] {
            assert_eq!(
                SockOpt::from_linux(ipproto::TCP, name, &bad.to_ne_bytes()),
                Err(Errno::EINVAL)
            );
        }
        assert_eq!(
            sys::setsockopt(&pa, fd, SockOpt::V6Only(true)),
            Err(Errno::ENOPROTOOPT)
        );
        // Unset keep-alive timing follows the sysctls (Linux's defaults).
        let fresh = tcp_socket(&pa);
        assert_eq!(
            sys::getsockopt(&pa, fresh, ipproto::TCP, tcp::KEEPIDLE),
            Ok(SockOpt::KeepIdle(7200))
        );
        assert_eq!(
            sys::getsockopt(&pa, fresh, ipproto::TCP, tcp::KEEPCNT),
            Ok(SockOpt::KeepCnt(9))
        );
        // SO_LINGER with zero time: close resets instead of FIN.
        let l = TcpListener::bind(&pb, addr(2, 5010)).unwrap();
        let c = TcpStream::connect(&pa, addr(2, 5010)).unwrap();
        let (s, _) = l.accept().unwrap();
        sys::setsockopt(&pa, c.fd(), SockOpt::Linger(Some(0))).unwrap();
        drop(c);
        let mut b = [0u8; 4];
        assert_eq!(sys::recv(&pb, s.fd(), &mut b, 0), Err(Errno::ECONNRESET));
        // Keep-alive finds a vanished peer: first probe after 100 ms of
        // silence, dropped after three more unanswered intervals.
        for (name, v) in [
            ("net.inet.tcp.keepidle_ms", 100),
            ("net.inet.tcp.keepintvl_ms", 100),
            ("net.inet.tcp.keepcnt", 3),
        ] {
            sys::sysctl_set(&pa, name, rump::kern::sysctl::SysctlValue::Int(v)).unwrap();
        }
        let ka = tcp_socket(&pa);
        sys::setsockopt(&pa, ka, SockOpt::KeepAlive(true)).unwrap();
        sys::connect(&pa, ka, sa(addr(2, 5010))).unwrap();
        let (s2, _) = l.accept().unwrap();
        // Keep-alives are answered while the peer lives.
        std::thread::sleep(Duration::from_millis(500));
        let mut pf = [PollFd {
            fd: ka,
            events: poll::IN,
            revents: 0,
        }];
        assert_eq!(sys::poll(&pa, &mut pf, 0), Ok(0));
        // The peer kernel goes away without a word: keep-alives go
        // unanswered and the connection times out.
        _kb.halt();
        let t = Instant::now();
        assert_eq!(sys::recv(&pa, ka, &mut b, 0), Err(Errno::ETIMEDOUT));
        assert!(t.elapsed() < Duration::from_secs(5));
        drop((s2, l));
    });
}

#[test]
fn halt_wakes_blocked_calls() {
    within(60, || {
        let (k, p) = net_kernel();
        let at = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4400);
        let l = TcpListener::bind(&p, at).unwrap();
        let p2 = p.clone();
        let lfd = l.fd();
        let h = std::thread::spawn(move || sys::accept(&p2, lfd).err());
        std::thread::sleep(Duration::from_millis(50));
        k.halt();
        assert_eq!(h.join().unwrap(), Some(Errno::ESHUTDOWN));
        assert_eq!(
            sys::socket(&p, af::INET, sock::STREAM, 0),
            Err(Errno::ESHUTDOWN)
        );
    });
}

/// An Ethernet frame with a TCP segment (flags FIN|ACK) from
/// `from:sport` to `to:dport`.
fn fin_frame(dst_mac: [u8; 6], from: Ipv4Addr, sport: u16, to: Ipv4Addr, dport: u16) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x77]);
    f.extend_from_slice(&[0x08, 0x00]);
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&from.octets());
    ip.extend_from_slice(&to.octets());
    let mut tcp = Vec::new();
    tcp.extend_from_slice(&sport.to_be_bytes());
    tcp.extend_from_slice(&dport.to_be_bytes());
    tcp.extend_from_slice(&1000u32.to_be_bytes());
    tcp.extend_from_slice(&2000u32.to_be_bytes());
    tcp.extend_from_slice(&[0x50, 0x11, 0x10, 0x00, 0, 0, 0, 0]);
    f.extend_from_slice(&ip);
    f.extend_from_slice(&tcp);
    f
}

#[test]
fn the_side_that_closes_first_keeps_time_wait() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (ka, pa) = ks.pop().unwrap();
        let l = TcpListener::bind(&pb, addr(2, 7100)).unwrap();
        let fd = tcp_socket(&pa);
        sys::bind(&pa, fd, sa(addr(1, 41000))).unwrap();
        sys::connect(&pa, fd, sa(addr(2, 7100))).unwrap();
        let (s, _) = l.accept().unwrap();
        let stack = rump::net::stack(&ka).unwrap();
        let before = stack.socket_count();
        // The client closes first, then the server: the client's side of
        // the connection ends in TIME-WAIT, as a small record.
        sys::close(&pa, fd).unwrap();
        let mut b = [0u8; 1];
        assert_eq!((&s).read(&mut b).unwrap(), 0);
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(5);
        while sys::net_stats(&pa).unwrap().tcp_time_wait == 0 {
            assert!(Instant::now() < deadline, "no TIME-WAIT record");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(stack.socket_count(), before - 1, "its socket is freed");
        // The port stays taken for bind without SO_REUSEADDR (Linux's rule).
        let again = tcp_socket(&pa);
        assert_eq!(
            sys::bind(&pa, again, sa(addr(1, 41000))),
            Err(Errno::EADDRINUSE)
        );
        sys::setsockopt(&pa, again, SockOpt::ReuseAddr(true)).unwrap();
        sys::bind(&pa, again, sa(addr(1, 41000))).unwrap();
        // ... and the very 4-tuple cannot be reused yet.
        assert_eq!(
            sys::connect(&pa, again, sa(addr(2, 7100))),
            Err(Errno::EADDRNOTAVAIL)
        );
        // A retransmitted FIN from the peer is answered with an ACK, not
        // a reset.
        let mac = sys::if_list(&pa)
            .unwrap()
            .into_iter()
            .find(|i| i.name == "bus0")
            .unwrap()
            .mac;
        let tx = |p: &rump::Process| {
            sys::if_list(p)
                .unwrap()
                .into_iter()
                .find(|i| i.name == "bus0")
                .unwrap()
                .stats
                .tx_packets
        };
        let (sent0, resets0) = (tx(&pa), sys::net_stats(&pa).unwrap().tcp_resets_sent);
        stack
            .inject("bus0", &fin_frame(mac, ip(2), 7100, ip(1), 41000))
            .unwrap();
        assert_eq!(tx(&pa), sent0 + 1);
        assert_eq!(sys::net_stats(&pa).unwrap().tcp_resets_sent, resets0);
        // A segment for a connection that never existed still gets a reset.
        stack
            .inject("bus0", &fin_frame(mac, ip(2), 7100, ip(1), 41001))
            .unwrap();
        assert_eq!(sys::net_stats(&pa).unwrap().tcp_resets_sent, resets0 + 1);
        // With a zero TIME-WAIT the record goes at once.
        sys::sysctl_set(
            &pa,
            "net.inet.tcp.time_wait_ms",
            rump::kern::sysctl::SysctlValue::Int(0),
        )
        .unwrap();
        let c = TcpStream::connect(&pa, addr(2, 7100)).unwrap();
        let (s2, _) = l.accept().unwrap();
        drop(c);
        assert_eq!((&s2).read(&mut b).unwrap(), 0);
        drop(s2);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(sys::net_stats(&pa).unwrap().tcp_time_wait, 1);
    });
}

/// Calls on a TCP socket that is not connected answer as Linux does: poll
/// says writable and hung up, a zero-length recv checks the state
/// (ENOTCONN, then EAGAIN once connected with nothing queued), and an
/// AF_INET6 socket keeps IP_TTL apart from its hop limit.
#[test]
fn unconnected_tcp_socket_like_linux() {
    within(30, || {
        let (_k, p) = net_kernel();
        let fd = sys::socket(&p, af::INET, sock::STREAM | sock::NONBLOCK, 0).unwrap();
        let mut pfd = [PollFd {
            fd,
            events: poll::IN | poll::OUT | poll::RDHUP,
            revents: 0,
        }];
        sys::poll(&p, &mut pfd, 0).unwrap();
        assert_eq!(pfd[0].revents, poll::OUT | poll::HUP);
        assert_eq!(sys::recv(&p, fd, &mut [], 0), Err(Errno::ENOTCONN));

        // Connected, nothing queued: a zero-length recv would block.
        let l = sys::socket(&p, af::INET, sock::STREAM, 0).unwrap();
        let to = sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5301));
        sys::bind(&p, l, to).unwrap();
        sys::listen(&p, l, 1).unwrap();
        let c = sys::socket(&p, af::INET, sock::STREAM, 0).unwrap();
        sys::connect(&p, c, to).unwrap();
        assert_eq!(sys::recv(&p, c, &mut [], msg::DONTWAIT), Err(Errno::EAGAIN));

        let v6 = sys::socket(&p, af::INET6, sock::STREAM, 0).unwrap();
        sys::setsockopt(&p, v6, SockOpt::Ttl(32)).unwrap();
        assert_eq!(
            sys::getsockopt(&p, v6, ipproto::IP, ip::TTL),
            Ok(SockOpt::Ttl(32))
        );
        assert_ne!(
            sys::getsockopt(&p, v6, ipproto::IPV6, ipv6::UNICAST_HOPS),
            Ok(SockOpt::HopLimit(32))
        );
    });
}

/// connect on a listener is EISCONN whatever the destination (Linux checks
/// the state before the address).
#[test]
fn connect_on_a_listener_is_eisconn() {
    within(30, || {
        let (_k, p) = net_kernel();
        let l = sys::socket(&p, af::INET, sock::STREAM, 0).unwrap();
        let at = sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 5302));
        sys::bind(&p, l, at).unwrap();
        sys::listen(&p, l, 1).unwrap();
        assert_eq!(sys::connect(&p, l, at), Err(Errno::EISCONN));
        // An address of the wrong family would be EAFNOSUPPORT elsewhere.
        let v6 = SockAddr::inet6(std::net::Ipv6Addr::LOCALHOST, 5302);
        assert_eq!(sys::connect(&p, l, v6), Err(Errno::EISCONN));
    });
}

/// `connect(AF_UNSPEC)` disconnects, as on Linux: an accepted socket is
/// reset (its peer reads ECONNRESET), reports ECONNRESET once itself,
/// and may connect again, from a new port, to the same listener.
#[test]
fn connect_unspec_disconnects_and_the_socket_connects_again() {
    within(30, || {
        let (_k, p) = net_kernel();
        let lo = |port| sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        let l = tcp_socket(&p);
        sys::bind(&p, l, lo(0)).unwrap();
        sys::listen(&p, l, 5).unwrap();
        let laddr = sys::getsockname(&p, l).unwrap();
        let c = tcp_socket(&p);
        sys::connect(&p, c, laddr).unwrap();
        let (s, _) = sys::accept(&p, l).unwrap();
        assert_eq!(sys::connect(&p, s, SockAddr::Unspec), Ok(()));
        let mut b = [0u8; 4];
        assert_eq!(sys::recv(&p, c, &mut b, 0), Err(Errno::ECONNRESET));
        assert_eq!(sys::recv(&p, s, &mut b, 0), Err(Errno::ECONNRESET));
        assert_eq!(sys::recv(&p, s, &mut b, 0), Err(Errno::ENOTCONN));
        sys::connect(&p, s, laddr).unwrap();
        let (s2, _) = sys::accept(&p, l).unwrap();
        let name = sys::getsockname(&p, s).unwrap();
        assert_ne!(name, laddr, "a new port, not the listener's");
        sys::send(&p, s, b"ping", 0).unwrap();
        assert_eq!(sys::recv(&p, s2, &mut b, 0), Ok(4));
        assert_eq!(&b, b"ping");
        // A listener disconnected stops listening: accept is EINVAL.
        assert_eq!(sys::connect(&p, l, SockAddr::Unspec), Ok(()));
        assert_eq!(sys::accept(&p, l).map(|_| ()), Err(Errno::EINVAL));
    });
}

fn revents(p: &rump::Process, fd: i32) -> i16 {
    let mut pf = [PollFd {
        fd,
        events: poll::IN | poll::OUT | poll::RDHUP,
        revents: 0,
    }];
    sys::poll(p, &mut pf, 0).unwrap();
    pf[0].revents
}

/// Shutdown, poll and receive as Linux has them (found by the
/// differential test against the host): the read side shut keeps
/// returning what arrives; poll shows each shut side; the peer's FIN
/// shows as POLLRDHUP before its bytes are read; MSG_TRUNC takes bytes
/// without copying them; an unconnected socket is shut down all the same
/// (ENOTCONN said); a listener stops listening on SHUT_RD, not SHUT_WR.
#[test]
fn shutdown_poll_and_recv_follow_linux() {
    within(30, || {
        let (_k, p) = net_kernel();
        let lo = |port| sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        let l = tcp_socket(&p);
        sys::bind(&p, l, lo(0)).unwrap();
        sys::listen(&p, l, 5).unwrap();
        let laddr = sys::getsockname(&p, l).unwrap();
        let c = tcp_socket(&p);
        sys::connect(&p, c, laddr).unwrap();
        let (s, _) = sys::accept(&p, l).unwrap();
        assert_eq!(revents(&p, s), poll::OUT);
        // SHUT_RD: readable and RDHUP at once, yet bytes still arrive.
        sys::shutdown(&p, s, shut::RD).unwrap();
        assert_eq!(revents(&p, s), poll::IN | poll::OUT | poll::RDHUP);
        sys::send(&p, c, b"late", 0).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut b = [0u8; 8];
        assert_eq!(sys::recv(&p, s, &mut b, 0), Ok(4));
        assert_eq!(&b[..4], b"late");
        assert_eq!(sys::recv(&p, s, &mut b, msg::DONTWAIT), Ok(0));
        // MSG_TRUNC: taken, not copied.
        sys::send(&p, s, b"abcdef", 0).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let mut z = [0u8; 4];
        assert_eq!(sys::recv(&p, c, &mut z, msg::TRUNC), Ok(4));
        assert_eq!(z, [0; 4], "MSG_TRUNC copies nothing");
        assert_eq!(sys::recv(&p, c, &mut z, 0), Ok(2));
        assert_eq!(&z[..2], b"ef");
        // The peer's FIN with bytes unread: RDHUP already.
        sys::send(&p, s, b"xy", 0).unwrap();
        sys::shutdown(&p, s, shut::WR).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(revents(&p, c), poll::IN | poll::OUT | poll::RDHUP);
        // Both sides of `s` shut: HUP.
        assert_ne!(revents(&p, s) & poll::HUP, 0);
        // An unconnected socket: ENOTCONN, but shut all the same.
        let u = tcp_socket(&p);
        assert_eq!(sys::shutdown(&p, u, shut::RDWR), Err(Errno::ENOTCONN));
        assert_eq!(
            revents(&p, u),
            poll::IN | poll::OUT | poll::RDHUP | poll::HUP
        );
        assert_eq!(sys::recv(&p, u, &mut b, 0), Ok(0));
        assert_eq!(sys::send(&p, u, b"x", 0), Err(Errno::EPIPE));
        // A listener: SHUT_WR changes nothing, SHUT_RD stops it.
        assert_eq!(sys::shutdown(&p, l, shut::WR), Ok(()));
        let c2 = tcp_socket(&p);
        sys::connect(&p, c2, laddr).unwrap();
        assert!(sys::accept(&p, l).is_ok());
        assert_eq!(sys::shutdown(&p, l, shut::RD), Ok(()));
        assert_eq!(sys::accept(&p, l).map(|_| ()), Err(Errno::EINVAL));
        let c3 = tcp_socket(&p);
        assert_eq!(sys::connect(&p, c3, laddr), Err(Errno::ECONNREFUSED));
    });
}

/// A negative listen backlog is the largest one (Linux casts it to
/// unsigned and caps it at somaxconn): every client waiting is taken in.
#[test]
fn negative_backlog_is_the_largest() {
    within(30, || {
        let (_k, p) = net_kernel();
        let l = tcp_socket(&p);
        sys::bind(&p, l, sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))).unwrap();
        sys::listen(&p, l, -1).unwrap();
        let laddr = sys::getsockname(&p, l).unwrap();
        let clients: Vec<i32> = (0..8)
            .map(|_| {
                let c = tcp_socket(&p);
                sys::connect(&p, c, laddr).unwrap();
                c
            })
            .collect();
        for _ in &clients {
            assert!(sys::accept4(&p, l, sock::NONBLOCK).is_ok());
        }
    });
}

#[test]
fn connect_to_port_zero_is_refused_later() {
    within(30, || {
        let (_k, p) = net_kernel();
        let lo0 = sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0));
        // Non-blocking: the attempt starts, its refusal comes through
        // SO_ERROR and the next connect (as Linux's reset from port 0).
        let c = sys::socket(&p, af::INET, sock::STREAM | sock::NONBLOCK, 0).unwrap();
        assert_eq!(sys::connect(&p, c, lo0), Err(Errno::EINPROGRESS));
        let mut fds = [PollFd {
            fd: c,
            events: poll::OUT,
            revents: 0,
        }];
        sys::poll(&p, &mut fds, 1000).unwrap();
        assert_ne!(fds[0].revents & poll::ERR, 0);
        assert_eq!(
            sys::getsockopt(&p, c, so::SOL_SOCKET, so::ERROR).unwrap(),
            SockOpt::Error(Errno::ECONNREFUSED.0)
        );
        // Blocking: refused.
        let b = tcp_socket(&p);
        assert_eq!(sys::connect(&p, b, lo0), Err(Errno::ECONNREFUSED));
    });
}

#[test]
fn ipv6_bindings_follow_linux() {
    within(30, || {
        let (_k, p) = net_kernel();
        let v6 = |s: &str| sa(s.parse::<std::net::SocketAddr>().unwrap());
        let l = tcp_socket(&p);
        sys::bind(&p, l, sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))).unwrap();
        sys::listen(&p, l, 5).unwrap();
        let lport = rump::net::std_addr(sys::getsockname(&p, l).unwrap())
            .unwrap()
            .port();
        let l6 = sys::socket(&p, af::INET6, sock::STREAM, 0).unwrap();
        sys::bind(&p, l6, v6("[::1]:0")).unwrap();
        // Bound to an IPv6 address: IPv6-only, so an IPv4-mapped peer is
        // unreachable.
        assert_eq!(
            sys::getsockopt(&p, l6, ipproto::IPV6, ipv6::V6ONLY).unwrap(),
            SockOpt::V6Only(true)
        );
        let mapped = v6(&format!("[::ffff:127.0.0.1]:{lport}"));
        assert_eq!(sys::connect(&p, l6, mapped), Err(Errno::ENETUNREACH));
        sys::listen(&p, l6, 5).unwrap();
        let l6port = rump::net::std_addr(sys::getsockname(&p, l6).unwrap())
            .unwrap()
            .port();
        // Bound to an IPv4-mapped address: no IPv6 peer.
        let m = sys::socket(&p, af::INET6, sock::STREAM, 0).unwrap();
        sys::bind(&p, m, v6("[::ffff:127.0.0.1]:0")).unwrap();
        assert_eq!(
            sys::connect(&p, m, v6(&format!("[::1]:{l6port}"))),
            Err(Errno::EAFNOSUPPORT)
        );
        // A wildcard binding narrows to the connection's address: the
        // port is free for IPv4's 127.0.0.1 but not its wildcard (Linux
        // keeps an IPv4 placeholder for the IPv6 socket).
        let w = sys::socket(&p, af::INET6, sock::STREAM, 0).unwrap();
        sys::bind(&p, w, v6("[::]:4100")).unwrap();
        sys::connect(&p, w, v6(&format!("[::1]:{l6port}"))).unwrap();
        let x = tcp_socket(&p);
        assert_eq!(
            sys::bind(&p, x, sa(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4100))),
            Err(Errno::EADDRINUSE)
        );
        sys::bind(&p, x, sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4100))).unwrap();
    });
}

#[test]
fn an_accepted_connection_that_ended_frees_the_listeners_port() {
    within(30, || {
        let (_k, p) = net_kernel();
        let any = sa(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4200));
        let l = tcp_socket(&p);
        sys::bind(&p, l, any).unwrap();
        sys::listen(&p, l, 5).unwrap();
        let c = tcp_socket(&p);
        sys::connect(&p, c, sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 4200))).unwrap();
        let (a, _) = sys::accept4(&p, l, 0).unwrap();
        sys::close(&p, l).unwrap();
        // While the accepted connection lives it holds the port.
        let n = tcp_socket(&p);
        assert_eq!(sys::bind(&p, n, any), Err(Errno::EADDRINUSE));
        // The client goes; data to it is answered with a reset, which
        // ends the accepted connection.
        sys::close(&p, c).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        sys::send(&p, a, b"x", msg::NOSIGNAL).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while sys::bind(&p, n, any) == Err(Errno::EADDRINUSE) {
            assert!(Instant::now() < deadline, "the port stayed taken");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(sys::getsockname(&p, a).is_ok());
    });
}

/// A connect to the socket's own address and port meets its own SYN (a
/// simultaneous open, RFC 9293 §3.5): it connects, as on Linux, and what
/// it sends it reads back, its FIN included.
#[test]
fn a_socket_connected_to_itself_talks_to_itself() {
    within(30, || {
        let (_k, p) = net_kernel();
        let s = tcp_socket(&p);
        let me = sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 6100));
        sys::bind(&p, s, me).unwrap();
        sys::connect(&p, s, me).unwrap();
        assert_eq!(sys::getpeername(&p, s).unwrap(), me);
        assert_eq!(sys::write(&p, s, b"hello").unwrap(), 5);
        let mut buf = [0u8; 16];
        assert_eq!(sys::read(&p, s, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        sys::shutdown(&p, s, shut::WR).unwrap();
        assert_eq!(sys::read(&p, s, &mut buf).unwrap(), 0);
        sys::close(&p, s).unwrap();
    });
}
