//! IPv6: TCP, UDP and ping between kernels on an in-process bus with
//! neighbour discovery; `::1`; link-local addresses with their zone;
//! IPv4-mapped addresses on dual-stack sockets and `IPV6_V6ONLY`; routing
//! and forwarding with hop limits and ICMPv6 errors; bad IPv6 input.

mod net_util;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

use net_util::*;
use rump::kern::sysctl::SysctlValue;
use rump::net::{RouteSpec, SockAddr, SockOpt, TcpListener, TcpStream, UdpSocket};
use rump::sys::{self, consts::*};
use rump::{Errno, Kernel, Process};

/// Addresses from the documentation prefix (RFC 3849).
fn ip6(net: u16, host: u16) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, net, 0, 0, 0, 0, host)
}

fn sa6(ip: Ipv6Addr, port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V6(ip), port)
}

/// `n` kernels on one new bus, kernel `i` at 2001:db8::(i+1)/64 (and
/// 192.0.2.(i+1)/24) on `bus0`.
fn v6_kernels(n: usize) -> Vec<(Kernel, Process)> {
    let ks = bus_kernels(n);
    for (i, (_, p)) in ks.iter().enumerate() {
        sys::if_add_addr(p, "bus0", ip6(0, i as u16 + 1), 64).unwrap();
    }
    ks
}

fn ifindex(p: &Process, name: &str) -> u32 {
    sys::if_list(p)
        .unwrap()
        .into_iter()
        .find(|i| i.name == name)
        .unwrap()
        .index
}

fn link_local(p: &Process, name: &str) -> Ipv6Addr {
    sys::if_list(p)
        .unwrap()
        .into_iter()
        .find(|i| i.name == name)
        .unwrap()
        .addrs
        .into_iter()
        .find_map(|(a, _)| match a {
            IpAddr::V6(a) if a.is_unicast_link_local() => Some(a),
            _ => None,
        })
        .expect("a link-local address")
}

#[test]
fn tcp_transfer_between_two_kernels() {
    within(60, || {
        let mut ks = v6_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let l = TcpListener::bind(&pb, sa6(Ipv6Addr::UNSPECIFIED, 8080)).unwrap();
        let data = pattern(6, 16 << 20);
        let want = fnv(&data);
        let h = std::thread::spawn(move || {
            let (mut s, peer) = l.accept().unwrap();
            assert_eq!(peer.ip(), IpAddr::V6(ip6(0, 1)));
            let mut got = Fnv::new();
            let mut buf = vec![0u8; 65536];
            let mut total = 0;
            loop {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.update(&buf[..n]);
                total += n;
            }
            s.write_all(b"done").unwrap();
            (total, got.0)
        });
        let mut c = TcpStream::connect(&pa, sa6(ip6(0, 2), 8080)).unwrap();
        assert_eq!(c.peer_addr().unwrap(), sa6(ip6(0, 2), 8080));
        assert_eq!(c.local_addr().unwrap().ip(), IpAddr::V6(ip6(0, 1)));
        c.write_all(&data).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut end = Vec::new();
        c.read_to_end(&mut end).unwrap();
        assert_eq!(end, b"done");
        assert_eq!(h.join().unwrap(), (data.len(), want));
        // Neighbour discovery filled the table with the peer's MAC.
        let peer_mac = sys::if_list(&pb)
            .unwrap()
            .into_iter()
            .find(|i| i.name == "bus0")
            .unwrap()
            .mac;
        let n = sys::arp_list(&pa).unwrap();
        assert!(
            n.iter()
                .any(|e| e.ip == IpAddr::V6(ip6(0, 2)) && e.mac == Some(peer_mac)),
            "{n:?}"
        );
        let st = sys::net_stats(&pa).unwrap();
        assert!(st.nd_solicits_sent >= 1 && st.ip6_sent > 0, "{st:?}");
        assert!(sys::net_stats(&pb).unwrap().nd_adverts_sent >= 1);
    });
}

#[test]
fn udp_and_ping_and_port_unreachable() {
    within(60, || {
        let mut ks = v6_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let server = UdpSocket::bind(&pb, sa6(Ipv6Addr::UNSPECIFIED, 53)).unwrap();
        let client = UdpSocket::bind(&pa, sa6(Ipv6Addr::UNSPECIFIED, 0)).unwrap();
        let cport = client.local_addr().unwrap().port();
        for i in 0..20u64 {
            let d = pattern(i, 100 + i as usize * 50);
            client.send_to(&d, sa6(ip6(0, 2), 53)).unwrap();
            let mut buf = [0u8; 2000];
            let (n, from) = server.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], &d[..]);
            assert_eq!(from, sa6(ip6(0, 1), cport));
        }
        // Datagrams larger than the MTU go as IPv6 fragments.
        let mut big = vec![0u8; 70_000];
        for len in [1500, 20_000, 65_527] {
            let d = pattern(len as u64, len);
            assert_eq!(client.send_to(&d, sa6(ip6(0, 2), 53)).unwrap(), len);
            let (n, _) = server.recv_from(&mut big).unwrap();
            assert_eq!(&big[..n], &d[..], "{len} bytes");
        }
        assert!(sys::net_stats(&pb).unwrap().ip_reassembled >= 3);
        assert_eq!(
            client
                .send_to(&vec![0u8; 65_528], sa6(ip6(0, 2), 53))
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(Errno::EMSGSIZE.0)
        );
        // As on Linux, an IPv6 UDP socket also sends to a plain IPv4
        // address (unless IPV6_V6ONLY); a TCP one does not connect to one.
        let v4srv = UdpSocket::bind(&pb, addr(2, 54)).unwrap();
        let fd = client.fd();
        assert_eq!(
            sys::sendto(&pa, fd, b"x", 0, Some(SockAddr::inet(ip(2), 54))),
            Ok(1)
        );
        let mut one = [0u8; 4];
        let (n, from) = v4srv.recv_from(&mut one).unwrap();
        assert_eq!((n, from), (1, addr(1, cport)));
        let only = sys::socket(&pa, af::INET6, sock::DGRAM, 0).unwrap();
        sys::setsockopt(&pa, only, SockOpt::V6Only(true)).unwrap();
        assert_eq!(
            sys::sendto(&pa, only, b"x", 0, Some(SockAddr::inet(ip(2), 54))),
            Err(Errno::ENETUNREACH)
        );
        // A sockaddr_in is too short for an AF_INET6 socket's bind or TCP
        // connect (Linux checks the length first: EINVAL).
        let tcp6 = sys::socket(&pa, af::INET6, sock::STREAM, 0).unwrap();
        assert_eq!(
            sys::connect(&pa, tcp6, SockAddr::inet(ip(2), 54)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            sys::bind(&pa, only, SockAddr::inet(ip(1), 0)),
            Err(Errno::EINVAL)
        );
        // An IPv4 socket given a sockaddr_in6: the family is wrong.
        let tcp4 = sys::socket(&pa, af::INET, sock::STREAM, 0).unwrap();
        assert_eq!(
            sys::connect(&pa, tcp4, SockAddr::inet6(ip6(0, 2), 54)),
            Err(Errno::EAFNOSUPPORT)
        );
        // A connected socket hears ICMPv6 port unreachable.
        let c2 = UdpSocket::bind(&pa, sa6(Ipv6Addr::UNSPECIFIED, 0)).unwrap();
        c2.connect(sa6(ip6(0, 2), 9999)).unwrap();
        c2.send(b"anyone?").unwrap();
        c2.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 16];
        assert_eq!(
            c2.recv(&mut b).unwrap_err().raw_os_error(),
            Some(Errno::ECONNREFUSED.0)
        );
        // Ping sockets for ICMPv6 echo.
        let ping = sys::socket(&pa, af::INET6, sock::DGRAM, ipproto::ICMPV6).unwrap();
        let mut req = vec![128u8, 0, 0, 0, 0, 0, 0, 7];
        req.extend_from_slice(b"payload");
        let to = rump::net::sockaddr(sa6(ip6(0, 2), 0));
        assert_eq!(sys::sendto(&pa, ping, &req, 0, Some(to)), Ok(req.len()));
        let mut reply = [0u8; 64];
        let info = sys::recvfrom(&pa, ping, &mut reply, 0).unwrap();
        assert_eq!(reply[0], 129);
        assert_eq!(&reply[6..8], &[0, 7]);
        assert_eq!(&reply[8..info.len], b"payload");
        assert_eq!(info.from, Some(to));
        // An ICMPv4 echo request on an ICMPv6 socket is refused.
        let mut v4req = req.clone();
        v4req[0] = 8;
        assert_eq!(
            sys::sendto(&pa, ping, &v4req, 0, Some(to)),
            Err(Errno::EINVAL)
        );
    });
}

#[test]
fn loopback_and_link_local_addresses() {
    within(60, || {
        let mut ks = v6_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        // ::1 within one kernel.
        let l = TcpListener::bind(&pa, sa6(Ipv6Addr::LOCALHOST, 7000)).unwrap();
        let mut c = TcpStream::connect(&pa, sa6(Ipv6Addr::LOCALHOST, 7000)).unwrap();
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        c.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"ping");
        // The wildcard address as a destination means this host, in both
        // families (as on Linux and BSD).
        let l4 = TcpListener::bind(&pa, addr(1, 7002)).unwrap();
        let _c6 = TcpStream::connect(&pa, sa6(Ipv6Addr::UNSPECIFIED, 7000)).unwrap();
        assert_eq!(l.accept().unwrap().1.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
        let l4b =
            TcpListener::bind(&pa, SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 7003)).unwrap();
        let _c4 =
            TcpStream::connect(&pa, SocketAddr::new(Ipv4Addr::UNSPECIFIED.into(), 7003)).unwrap();
        assert_eq!(
            l4b.accept().unwrap().1.ip(),
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        );
        drop(l4);
        // Link-local: every Ethernet interface has one from its MAC; a
        // connection to one needs its zone (the interface index).
        let ll_b = link_local(&pb, "bus0");
        let lb = TcpListener::bind(&pb, sa6(Ipv6Addr::UNSPECIFIED, 7001)).unwrap();
        let no_zone = SocketAddrV6::new(ll_b, 7001, 0, 0);
        assert_eq!(
            TcpStream::connect(&pa, no_zone)
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(Errno::EINVAL.0)
        );
        let zone = ifindex(&pa, "bus0");
        let mut c = TcpStream::connect(&pa, SocketAddrV6::new(ll_b, 7001, 0, zone)).unwrap();
        let (mut s, peer) = lb.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V6(link_local(&pa, "bus0")));
        s.write_all(b"link").unwrap();
        c.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"link");
        // Changing the MAC changes the link-local address.
        sys::if_set_up(&pb, "bus0", false).unwrap();
        sys::if_set_mac(&pb, "bus0", [2, 0, 0, 0, 0, 0x42]).unwrap();
        assert_eq!(
            link_local(&pb, "bus0"),
            "fe80::ff:fe00:42".parse::<Ipv6Addr>().unwrap()
        );
        // The routing table lists the IPv6 networks.
        let routes = sys::route_list(&pa).unwrap();
        assert!(routes
            .iter()
            .any(|r| r.dst == IpAddr::V6(ip6(0, 0)) && r.prefix == 64 && r.connected));
    });
}

#[test]
fn dual_stack_sockets_and_v6only() {
    within(60, || {
        let mut ks = v6_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        // An IPv6 listener on [::] takes IPv4 connections too; the peer
        // shows as an IPv4-mapped address.
        let l = TcpListener::bind(&pb, sa6(Ipv6Addr::UNSPECIFIED, 8000)).unwrap();
        let mut c = TcpStream::connect(&pa, addr(2, 8000)).unwrap();
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V6(ip(1).to_ipv6_mapped()));
        c.write_all(b"v4").unwrap();
        let mut b = [0u8; 2];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"v4");
        // An IPv4 wildcard bind on the same port conflicts with it.
        let v4 = sys::socket(&pb, af::INET, sock::STREAM, 0).unwrap();
        assert_eq!(
            sys::bind(&pb, v4, SockAddr::inet(Ipv4Addr::UNSPECIFIED, 8000)),
            Err(Errno::EADDRINUSE)
        );
        // An IPv6 socket connects to an IPv4 peer through a mapped address.
        let fd = sys::socket(&pa, af::INET6, sock::STREAM, 0).unwrap();
        let mapped = SockAddr::inet6(ip(2).to_ipv6_mapped(), 8000);
        sys::connect(&pa, fd, mapped).unwrap();
        assert_eq!(sys::getpeername(&pa, fd), Ok(mapped));
        // With IPV6_V6ONLY the listener is IPv6 only: IPv4 is refused, and
        // an IPv4 listener may share the port.
        let only = sys::socket(&pb, af::INET6, sock::STREAM, 0).unwrap();
        sys::setsockopt(&pb, only, SockOpt::V6Only(true)).unwrap();
        sys::bind(&pb, only, SockAddr::inet6(Ipv6Addr::UNSPECIFIED, 8001)).unwrap();
        assert_eq!(
            sys::setsockopt(&pb, only, SockOpt::V6Only(false)),
            Err(Errno::EINVAL)
        );
        sys::listen(&pb, only, 4).unwrap();
        assert_eq!(
            TcpStream::connect(&pa, addr(2, 8001))
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(Errno::ECONNREFUSED.0)
        );
        TcpStream::connect(&pa, sa6(ip6(0, 2), 8001)).unwrap();
        let v4b = sys::socket(&pb, af::INET, sock::STREAM, 0).unwrap();
        sys::bind(&pb, v4b, SockAddr::inet(Ipv4Addr::UNSPECIFIED, 8001)).unwrap();
        // Options of the family.
        assert_eq!(
            sys::getsockopt(&pb, only, so::SOL_SOCKET, so::DOMAIN),
            Ok(SockOpt::Domain(af::INET6))
        );
        sys::setsockopt(&pa, fd, SockOpt::HopLimit(9)).unwrap();
        assert_eq!(
            sys::getsockopt(&pa, fd, ipproto::IPV6, 16),
            Ok(SockOpt::HopLimit(9))
        );
        // IP_TTL is an AF_INET6 socket's option too (as on Linux), apart
        // from its hop limit.
        sys::setsockopt(&pa, fd, SockOpt::Ttl(20)).unwrap();
        assert_eq!(
            sys::getsockopt(&pa, fd, ipproto::IP, ip::TTL),
            Ok(SockOpt::Ttl(20))
        );
        assert_eq!(
            sys::getsockopt(&pa, fd, ipproto::IPV6, 16),
            Ok(SockOpt::HopLimit(9))
        );
    });
}

/// client (2001:db8:1::2) — router (:1::1 | :2::1) — server (2001:db8:2::2).
struct Net {
    _k: Vec<Kernel>,
    client: Process,
    router: Process,
    server: Process,
}

fn topology(forwarding: bool) -> Net {
    let (left, right) = (
        rump::net::unique_bus_name("l6"),
        rump::net::unique_bus_name("r6"),
    );
    let (kc, client) = net_kernel();
    let (kr, router) = net_kernel();
    let (ks, server) = net_kernel();
    rump::net::ifup(&client, "bus0", &left, ip6(1, 2), 64).unwrap();
    rump::net::ifup(&router, "bus0", &left, ip6(1, 1), 64).unwrap();
    rump::net::ifup(&router, "bus1", &right, ip6(2, 1), 64).unwrap();
    rump::net::ifup(&server, "bus0", &right, ip6(2, 2), 64).unwrap();
    let via = |gw: Ipv6Addr| RouteSpec {
        dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        prefix: 0,
        gateway: Some(IpAddr::V6(gw)),
        ifname: None,
    };
    sys::route_add(&client, &via(ip6(1, 1))).unwrap();
    sys::route_add(&server, &via(ip6(2, 1))).unwrap();
    sys::sysctl_set(
        &router,
        "net.inet6.ip6.forwarding",
        SysctlValue::Int(forwarding as i64),
    )
    .unwrap();
    Net {
        _k: vec![kc, kr, ks],
        client,
        router,
        server,
    }
}

#[test]
fn routing_hop_limits_and_unreachables() {
    within(60, || {
        let n = topology(true);
        let l = TcpListener::bind(&n.server, sa6(Ipv6Addr::UNSPECIFIED, 80)).unwrap();
        let mut c = TcpStream::connect(&n.client, sa6(ip6(2, 2), 80)).unwrap();
        let (mut s, peer) = l.accept().unwrap();
        assert_eq!(peer.ip(), IpAddr::V6(ip6(1, 2)));
        let data = pattern(9, 1 << 20);
        let h = std::thread::spawn(move || {
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            fnv(&v)
        });
        c.write_all(&data).unwrap();
        drop(c);
        assert_eq!(h.join().unwrap(), fnv(&data));
        assert!(sys::net_stats(&n.router).unwrap().ip6_forwarded > 0);
        // Hop limit 1: the router answers time exceeded, which a
        // connected UDP socket hears as EHOSTUNREACH.
        let u = UdpSocket::bind(&n.client, sa6(Ipv6Addr::UNSPECIFIED, 0)).unwrap();
        sys::setsockopt(&n.client, u.fd(), SockOpt::HopLimit(1)).unwrap();
        u.connect(sa6(ip6(2, 2), 7)).unwrap();
        u.send(b"short-lived").unwrap();
        u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut b = [0u8; 16];
        assert_eq!(
            u.recv(&mut b).unwrap_err().raw_os_error(),
            Some(Errno::EHOSTUNREACH.0)
        );
        assert!(sys::net_stats(&n.router).unwrap().icmp_out_time_exceeded >= 1);
        // A network the router has no route to: ICMPv6 no route, which
        // ends a connection attempt with ENETUNREACH.
        let fd = sys::socket(&n.client, af::INET6, sock::STREAM, 0).unwrap();
        assert_eq!(
            sys::connect(&n.client, fd, SockAddr::inet6(ip6(99, 1), 80)),
            Err(Errno::ENETUNREACH)
        );
        // Without a route at all, the client itself refuses.
        sys::route_delete(&n.client, Ipv6Addr::UNSPECIFIED, 0).unwrap();
        let fd = sys::socket(&n.client, af::INET6, sock::STREAM, 0).unwrap();
        assert_eq!(
            sys::connect(&n.client, fd, SockAddr::inet6(ip6(2, 2), 80)),
            Err(Errno::ENETUNREACH)
        );
    });
}

#[test]
fn without_forwarding_the_router_drops() {
    within(60, || {
        let n = topology(false);
        let fd = sys::socket(&n.client, af::INET6, sock::STREAM, 0).unwrap();
        sys::setsockopt(&n.client, fd, SockOpt::SndTimeo(Some(300_000_000))).unwrap();
        assert_eq!(
            sys::connect(&n.client, fd, SockAddr::inet6(ip6(2, 2), 80)),
            Err(Errno::EINPROGRESS)
        );
        assert_eq!(sys::net_stats(&n.router).unwrap().ip6_forwarded, 0);
        assert!(sys::net_stats(&n.router).unwrap().ip_not_forwarded > 0);
        drop(n.server);
    });
}

/// A raw Ethernet frame carrying an IPv6 packet from `src` to `dst`.
fn frame6(
    dst_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    hops: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 9]);
    f.extend_from_slice(&[0x86, 0xdd]);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    f.push(next);
    f.push(hops);
    f.extend_from_slice(&src.octets());
    f.extend_from_slice(&dst.octets());
    f.extend_from_slice(payload);
    f
}

#[test]
fn bad_ipv6_input_is_dropped_without_harm() {
    within(120, || {
        let mut ks = v6_kernels(2);
        let (kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let stack = rump::net::stack(&kb).unwrap();
        let mac = sys::if_list(&pb)
            .unwrap()
            .into_iter()
            .find(|i| i.name == "bus0")
            .unwrap()
            .mac;
        let me = ip6(0, 2);
        let peer = ip6(0, 9);
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let kinds: [(u8, &[u8]); 8] = [
            // Neighbour solicitation with a hop limit that is not 255.
            (58, &[135, 0, 0, 0, 0, 0, 0, 0]),
            // ICMPv6 errors quoting garbage.
            (58, &[1, 4, 0, 0, 0, 0, 0, 0, 0x60, 0, 0]),
            (58, &[2, 0, 0, 0, 0, 0, 5, 0]),
            // Extension headers that run past the end.
            (0, &[6, 200, 0, 0]),
            (60, &[17, 1, 0, 0, 0, 0, 0, 0]),
            (43, &[6, 0, 0, 5, 0, 0, 0, 0]),
            (44, &[6, 0, 0, 1, 0, 0, 0, 1, 9, 9]),
            (6, &[0, 80, 0, 80, 0]),
        ];
        for i in 0..3000 {
            let (next, body) = kinds[i % kinds.len()];
            let mut body = body.to_vec();
            for _ in 0..(rnd() % 64) {
                body.push(rnd() as u8);
            }
            let hops = if i % 3 == 0 { 255 } else { (rnd() % 256) as u8 };
            let dst = match i % 4 {
                0 => me,
                1 => "ff02::1".parse().unwrap(),
                2 => ip6(7, 7),
                _ => "ff02::1:ff00:2".parse().unwrap(),
            };
            let mut f = frame6(mac, peer, dst, next, hops, &body);
            // Sometimes lie about the payload length or truncate.
            match i % 5 {
                0 => {
                    let n = rnd() as usize % f.len();
                    f.truncate(n);
                }
                1 => {
                    f[18] = rnd() as u8;
                    f[19] = rnd() as u8;
                }
                _ => {}
            }
            let _ = stack.inject("bus0", &f);
        }
        // Random bytes with the IPv6 ethertype.
        for _ in 0..2000 {
            let mut f = vec![0u8; (rnd() % 200) as usize + 14];
            for b in f.iter_mut() {
                *b = rnd() as u8;
            }
            f[..6].copy_from_slice(&mac);
            f[12] = 0x86;
            f[13] = 0xdd;
            let _ = stack.inject("bus0", &f);
        }
        assert!(sys::net_stats(&pb).unwrap().bad_frames > 0);
        // The neighbour table stays bounded and the stack still serves.
        assert!(sys::arp_list(&pb).unwrap().len() < 100);
        let l = TcpListener::bind(&pb, sa6(Ipv6Addr::UNSPECIFIED, 9000)).unwrap();
        let mut c = TcpStream::connect(&pa, sa6(me, 9000)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"still here").unwrap();
        let mut b = [0u8; 10];
        s.read_exact(&mut b).unwrap();
        assert_eq!(&b, b"still here");
    });
}
