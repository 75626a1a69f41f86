//! UDP and ICMP echo ("ping") sockets between kernels on an in-process
//! bus: datagrams keep their boundaries and senders, truncation, connected
//! sockets and ICMP port unreachable, broadcast, and the configuration
//! calls that set the network up.

mod net_util;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use net_util::*;
use rump::net::{SockAddr, SockOpt, UdpSocket};
use rump::sys::{self, consts::*, PollFd};
use rump::Errno;

fn sa(a: impl Into<std::net::SocketAddr>) -> SockAddr {
    rump::net::sockaddr(a)
}

#[test]
fn datagrams_between_kernels() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let server = UdpSocket::bind(&pb, addr(2, 53)).unwrap();
        let client = UdpSocket::bind(&pa, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let cport = client.local_addr().unwrap().port();
        assert!(cport >= 49152);
        // Many datagrams of assorted sizes, each received whole, in order,
        // with its sender.
        let mut buf = vec![0u8; 2000];
        for batch in 0..10u64 {
            let mut sent = Vec::new();
            for i in batch * 50..batch * 50 + 50 {
                let d = pattern(i, (i as usize * 37) % 1400 + 1);
                assert_eq!(client.send_to(&d, addr(2, 53)).unwrap(), d.len());
                sent.push(d);
            }
            for d in &sent {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                assert_eq!(&buf[..n], &d[..]);
                assert_eq!(from, addr(1, cport));
            }
        }
        // Beyond SO_RCVBUF, datagrams are dropped and counted; what was
        // queued stays intact and in order.
        sys::setsockopt(&pb, server.fd(), SockOpt::RcvBuf(8192)).unwrap();
        for i in 0..100u64 {
            client.send_to(&pattern(i, 1000), addr(2, 53)).unwrap();
        }
        assert!(sys::net_stats(&pb).unwrap().udp_rcvbuf_errors > 0);
        let mut next = 0;
        while let Ok(n) = sys::recv(&pb, server.fd(), &mut buf, msg::DONTWAIT) {
            assert_eq!(&buf[..n], &pattern(next, 1000)[..]);
            next += 1;
        }
        assert!(next > 0 && next < 100, "{next} kept");
        // A reply comes back to the sender's port.
        server.send_to(b"answer", addr(1, cport)).unwrap();
        let (n, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!((&buf[..n], from), (&b"answer"[..], addr(2, 53)));
        // A datagram larger than the buffer is truncated (MSG_TRUNC says so).
        client.send_to(&[9u8; 100], addr(2, 53)).unwrap();
        let mut small = [0u8; 10];
        let info = sys::recvfrom(&pb, server.fd(), &mut small, 0).unwrap();
        assert_eq!((info.len, info.flags), (10, msg::TRUNC));
        client.send_to(&[9u8; 100], addr(2, 53)).unwrap();
        let info = sys::recvfrom(&pb, server.fd(), &mut small, msg::TRUNC).unwrap();
        assert_eq!(info.len, 100);
        // Peek leaves it queued; scatter into several buffers.
        client.send_to(b"0123456789", addr(2, 53)).unwrap();
        std::thread::sleep(Duration::from_millis(10));
        assert_eq!(
            sys::recv(&pb, server.fd(), &mut small[..4], msg::PEEK),
            Ok(4)
        );
        let (mut x, mut y) = ([0u8; 3], [0u8; 7]);
        let (info, control) =
            sys::recvmsg(&pb, server.fd(), &mut [&mut x[..], &mut y[..]], 0).unwrap();
        assert_eq!((info.len, &x, &y), (10, b"012", b"3456789"));
        assert!(control.is_empty());
        assert_eq!(
            sys::sendmsg(
                &pa,
                client.fd(),
                &[b"ab", b"cd"],
                Some(sa(addr(2, 53))),
                &[],
                0
            ),
            Ok(4)
        );
        let (n, _) = server.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"abcd");
        // Nothing queued: EAGAIN, or the receive timeout.
        assert_eq!(
            sys::recv(&pb, server.fd(), &mut buf, msg::DONTWAIT),
            Err(Errno::EAGAIN)
        );
        server
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        assert_eq!(sys::recv(&pb, server.fd(), &mut buf, 0), Err(Errno::EAGAIN));
        // Larger than the link's MTU: sent as IP fragments and reassembled,
        // up to the largest datagram IPv4 can carry.
        server
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut big = vec![0u8; 70_000];
        for len in [1473, 4000, 9000, 65_507] {
            let d = pattern(len as u64, len);
            assert_eq!(client.send_to(&d, addr(2, 53)).unwrap(), len);
            let (n, _) = server.recv_from(&mut big).unwrap();
            assert_eq!(&big[..n], &d[..], "{len} bytes");
        }
        let st = sys::net_stats(&pb).unwrap();
        assert!(st.ip_reassembled >= 4 && st.ip_reasm_pending == 0, "{st:?}");
        assert!(sys::net_stats(&pa).unwrap().ip_frags_out >= 2 + 3 + 7 + 45);
        // Beyond what IPv4 can carry.
        assert_eq!(
            client
                .send_to(&vec![0u8; 65_508], addr(2, 53))
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(Errno::EMSGSIZE.0)
        );
    });
}

#[test]
fn connected_socket_learns_port_unreachable() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, _pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let s = UdpSocket::bind(&pa, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        s.connect(addr(2, 9999)).unwrap();
        assert_eq!(sys::getpeername(&pa, s.fd()), Ok(sa(addr(2, 9999))));
        s.send(b"anyone?").unwrap();
        // The ICMP port unreachable comes back: the next call fails.
        let mut pf = [PollFd {
            fd: s.fd(),
            events: poll::IN,
            revents: 0,
        }];
        assert_eq!(sys::poll(&pa, &mut pf, 2000), Ok(1));
        assert_eq!(pf[0].revents & poll::ERR, poll::ERR);
        let mut b = [0u8; 8];
        assert_eq!(sys::recv(&pa, s.fd(), &mut b, 0), Err(Errno::ECONNREFUSED));
        // Reported once.
        assert_eq!(
            sys::recv(&pa, s.fd(), &mut b, msg::DONTWAIT),
            Err(Errno::EAGAIN)
        );
        // AF_UNSPEC dissolves the association.
        sys::connect(&pa, s.fd(), SockAddr::Unspec).unwrap();
        assert_eq!(sys::getpeername(&pa, s.fd()), Err(Errno::ENOTCONN));
        assert_eq!(sys::send(&pa, s.fd(), b"x", 0), Err(Errno::EDESTADDRREQ));
        let st = sys::net_stats(&pa).unwrap();
        assert!(st.icmp_in_unreachable >= 1);
    });
}

#[test]
fn connected_socket_filters_other_senders() {
    within(60, || {
        let mut ks = bus_kernels(3);
        let (_kc, pc) = ks.pop().unwrap();
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let s = UdpSocket::bind(&pa, addr(1, 4000)).unwrap();
        s.connect(addr(2, 4000)).unwrap();
        let b = UdpSocket::bind(&pb, addr(2, 4000)).unwrap();
        let c = UdpSocket::bind(&pc, addr(3, 4000)).unwrap();
        c.send_to(b"stranger", addr(1, 4000)).unwrap();
        b.send_to(b"peer", addr(1, 4000)).unwrap();
        let mut buf = [0u8; 16];
        let n = s.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"peer");
        assert_eq!(
            sys::recv(&pa, s.fd(), &mut buf, msg::DONTWAIT),
            Err(Errno::EAGAIN)
        );
        // Binding the same address twice fails.
        assert_eq!(
            UdpSocket::bind(&pa, addr(1, 4000))
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(Errno::EADDRINUSE.0)
        );
    });
}

#[test]
fn broadcast_needs_so_broadcast() {
    within(60, || {
        let mut ks = bus_kernels(3);
        let (_kc, pc) = ks.pop().unwrap();
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let rb = UdpSocket::bind(&pb, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6000)).unwrap();
        let rc = UdpSocket::bind(&pc, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 6000)).unwrap();
        let s = UdpSocket::bind(&pa, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        let all = SocketAddrV4::new(Ipv4Addr::BROADCAST, 6000);
        assert_eq!(
            s.send_to(b"hi all", all)
                .err()
                .and_then(|e| e.raw_os_error()),
            Some(Errno::EACCES.0)
        );
        sys::setsockopt(&pa, s.fd(), SockOpt::Broadcast(true)).unwrap();
        s.send_to(b"hi all", all).unwrap();
        // The subnet's broadcast address too.
        s.send_to(
            b"hi net",
            SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 255), 6000),
        )
        .unwrap();
        let mut buf = [0u8; 16];
        for r in [&rb, &rc] {
            let (n, from) = r.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hi all");
            assert_eq!(from.ip(), ip(1));
            let (n, _) = r.recv_from(&mut buf).unwrap();
            assert_eq!(&buf[..n], b"hi net");
        }
    });
}

#[test]
fn ping_sockets_and_echo_replies() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, _pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let fd = sys::socket(&pa, af::INET, sock::DGRAM, ipproto::ICMP).unwrap();
        for seq in 1..=3u16 {
            let mut req = vec![8u8, 0, 0, 0, 0, 0];
            req.extend_from_slice(&seq.to_be_bytes());
            req.extend_from_slice(b"payload of the ping");
            assert_eq!(
                sys::sendto(&pa, fd, &req, 0, Some(sa(addr(2, 0)))),
                Ok(req.len())
            );
            let mut buf = [0u8; 64];
            let info = sys::recvfrom(&pa, fd, &mut buf, 0).unwrap();
            assert_eq!(info.len, req.len());
            assert_eq!(buf[0], 0, "echo reply");
            assert_eq!(&buf[6..8], &seq.to_be_bytes());
            assert_eq!(&buf[8..info.len], b"payload of the ping");
            assert_eq!(info.from, Some(sa(addr(2, 0))));
        }
        // Loopback answers too.
        let mut req = vec![8u8, 0, 0, 0, 0, 0, 0, 9];
        req.extend_from_slice(b"lo");
        sys::sendto(
            &pa,
            fd,
            &req,
            0,
            Some(sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))),
        )
        .unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(sys::recv(&pa, fd, &mut buf, 0), Ok(10));
        // Not an echo request: refused.
        assert_eq!(
            sys::sendto(&pa, fd, &[0u8; 8], 0, Some(sa(addr(2, 0)))),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            sys::sendto(&pa, fd, &[8u8; 4], 0, Some(sa(addr(2, 0)))),
            Err(Errno::EINVAL)
        );
        let st = sys::net_stats(&pa).unwrap();
        assert!(st.icmp_in >= 4);
    });
}

#[test]
fn interface_configuration_calls() {
    let (k, p) = net_kernel();
    let ifs = sys::if_list(&p).unwrap();
    assert_eq!(ifs.len(), 1);
    assert_eq!(ifs[0].name, "lo0");
    assert!(ifs[0].up);
    assert_eq!(
        ifs[0].addrs,
        vec![
            ("127.0.0.1".parse().unwrap(), 8),
            ("::1".parse().unwrap(), 128)
        ]
    );
    assert_eq!(
        sys::sysctl_get(&p, "net.inet.ip.forwarding"),
        Ok(rump::kern::sysctl::SysctlValue::Int(0))
    );
    // Cloning: a bare kind picks the next unit.
    assert_eq!(sys::if_create(&p, "bus"), Ok("bus0".into()));
    assert_eq!(sys::if_create(&p, "bus"), Ok("bus1".into()));
    assert_eq!(sys::if_create(&p, "bus1"), Err(Errno::EEXIST));
    assert_eq!(sys::if_create(&p, "eth0"), Err(Errno::EINVAL));
    assert_eq!(sys::if_destroy(&p, "bus1"), Ok(()));
    assert_eq!(sys::if_destroy(&p, "bus1"), Err(Errno::ENXIO));
    let bus = rump::net::unique_bus_name("cfg");
    sys::if_set_link(&p, "bus0", &bus).unwrap();
    // The link is fixed while set, and while the interface is up.
    assert_eq!(sys::if_set_link(&p, "bus0", "other"), Err(Errno::EBUSY));
    sys::if_set_mac(&p, "bus0", [2, 0, 0, 0, 0, 1]).unwrap();
    assert_eq!(
        sys::if_set_mac(&p, "bus0", [1, 0, 0, 0, 0, 1]),
        Err(Errno::EINVAL)
    );
    sys::if_set_mtu(&p, "bus0", 9000).unwrap();
    assert_eq!(sys::if_set_mtu(&p, "bus0", 20), Err(Errno::EINVAL));
    sys::if_add_addr(&p, "bus0", [192, 0, 2, 1], 24).unwrap();
    assert_eq!(
        sys::if_add_addr(&p, "bus0", [192, 0, 2, 1], 24),
        Err(Errno::EEXIST)
    );
    sys::if_add_addr(&p, "bus0", [198, 51, 100, 1], 24).unwrap();
    sys::if_del_addr(&p, "bus0", [198, 51, 100, 1]).unwrap();
    assert_eq!(
        sys::if_del_addr(&p, "bus0", [198, 51, 100, 1]),
        Err(Errno::EADDRNOTAVAIL)
    );
    sys::if_set_up(&p, "bus0", true).unwrap();
    assert_eq!(sys::if_set_link(&p, "bus0", ""), Err(Errno::EBUSY));
    let i = sys::if_list(&p)
        .unwrap()
        .into_iter()
        .find(|i| i.name == "bus0")
        .unwrap();
    assert_eq!(
        (i.kind.as_str(), i.link.as_str(), i.mac, i.mtu, i.up),
        ("bus", bus.as_str(), [2, 0, 0, 0, 0, 1], 9000, true)
    );
    // Routes: connected ones follow addresses; static ones by hand.
    let routes = sys::route_list(&p).unwrap();
    assert!(routes.iter().any(
        |r| r.dst == "192.0.2.0".parse::<std::net::IpAddr>().unwrap()
            && r.prefix == 24
            && r.connected
    ));
    let default = rump::net::RouteSpec {
        dst: [0u8; 4].into(),
        prefix: 0,
        gateway: Some([192u8, 0, 2, 254].into()),
        ifname: None,
    };
    sys::route_add(&p, &default).unwrap();
    assert_eq!(sys::route_add(&p, &default), Err(Errno::EEXIST));
    let far = rump::net::RouteSpec {
        dst: [203u8, 0, 113, 0].into(),
        prefix: 24,
        gateway: Some([10u8, 9, 9, 9].into()),
        ifname: None,
    };
    assert_eq!(sys::route_add(&p, &far), Err(Errno::ENETUNREACH));
    assert!(sys::route_list(&p).unwrap().iter().any(|r| r.prefix == 0
        && r.gateway == Some([192u8, 0, 2, 254].into())
        && r.ifname == "bus0"));
    sys::route_delete(&p, [0u8; 4], 0).unwrap();
    assert_eq!(sys::route_delete(&p, [0u8; 4], 0), Err(Errno::ESRCH));
    // Only root configures; anyone reads.
    let user = k.process_as(rump::Cred::user(1000, 1000)).unwrap();
    assert_eq!(sys::if_create(&user, "bus5"), Err(Errno::EPERM));
    assert_eq!(sys::if_set_up(&user, "bus0", false), Err(Errno::EPERM));
    assert!(sys::if_list(&user).is_ok());
    // The same through the request enum, as remote clients call it.
    use rump::sys::{dispatch, Request, Response};
    match dispatch(&p, Request::IfCreate { name: "bus".into() }) {
        Ok(Response::Name(n)) => assert_eq!(n, "bus1"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(dispatch(&p, Request::IfList), Ok(Response::Interfaces(v)) if v.len() == 3));
    let s = match dispatch(
        &p,
        Request::Socket {
            domain: af::INET,
            ty: sock::DGRAM,
            protocol: 0,
        },
    ) {
        Ok(Response::Int(fd)) => fd as i32,
        other => panic!("{other:?}"),
    };
    dispatch(
        &p,
        Request::Bind {
            fd: s,
            addr: sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7777)),
        },
    )
    .unwrap();
    dispatch(
        &p,
        Request::Sendto {
            fd: s,
            data: b"self".to_vec(),
            flags: 0,
            addr: Some(sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7777))),
        },
    )
    .unwrap();
    match dispatch(
        &p,
        Request::Recvfrom {
            fd: s,
            len: 100,
            flags: 0,
        },
    ) {
        Ok(Response::Recv { data, info }) => {
            assert_eq!(data, b"self");
            assert_eq!(
                info.from,
                Some(sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 7777)))
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        matches!(dispatch(&p, Request::NetStats), Ok(Response::NetStats(st)) if st.udp_in >= 1)
    );
}

#[test]
fn control_messages_report_and_choose() {
    use rump::net::Cmsg;
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        // A second address on the sender, to choose as the source.
        sys::if_add_addr(&pa, "bus0", ip(101), 24).unwrap();
        let any = |port| std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, port);
        let server = UdpSocket::bind(&pb, any(5353)).unwrap();
        for opt in [
            SockOpt::PktInfo(true),
            SockOpt::RecvTtl(true),
            SockOpt::TimestampNs(true),
        ] {
            sys::setsockopt(&pb, server.fd(), opt).unwrap();
            let (level, name) = opt.level_name();
            assert_eq!(sys::getsockopt(&pb, server.fd(), level, name), Ok(opt));
        }
        // IPv6-only options on an IPv4 socket.
        assert_eq!(
            sys::setsockopt(&pb, server.fd(), SockOpt::RecvHopLimit(true)),
            Err(Errno::ENOPROTOOPT)
        );
        let client = UdpSocket::bind(&pa, any(0)).unwrap();
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        // Source address and TTL chosen per datagram.
        let ctl = [
            Cmsg::PktInfo {
                addr: ip(101).into(),
                ifindex: 0,
            },
            Cmsg::Ttl(7),
        ];
        assert_eq!(
            sys::sendmsg(&pa, client.fd(), &[b"hi"], Some(sa(addr(2, 5353))), &ctl, 0),
            Ok(2)
        );
        let mut b = [0u8; 16];
        let (info, control) = sys::recvmsg(&pb, server.fd(), &mut [&mut b[..]], 0).unwrap();
        assert_eq!(info.len, 2);
        assert_eq!(
            info.from,
            Some(sa(std::net::SocketAddrV4::new(
                ip(101),
                client.local_addr().unwrap().port()
            )))
        );
        let bus0 = sys::if_list(&pb)
            .unwrap()
            .into_iter()
            .find(|i| i.name == "bus0")
            .unwrap()
            .index;
        assert_eq!(control.len(), 3, "{control:?}");
        let Cmsg::TimestampNs { sec, nsec } = control[0] else {
            panic!("{control:?}")
        };
        let stamp = Duration::new(sec as u64, nsec);
        assert!(stamp >= before && stamp < before + Duration::from_secs(10));
        assert_eq!(
            control[1..],
            [
                Cmsg::PktInfo {
                    addr: ip(2).into(),
                    ifindex: bus0
                },
                Cmsg::Ttl(7)
            ]
        );
        // Without a control message the socket's own TTL applies.
        client.send_to(b"again", addr(2, 5353)).unwrap();
        let (_, control) = sys::recvmsg(&pb, server.fd(), &mut [&mut b[..]], 0).unwrap();
        assert_eq!(control.last(), Some(&Cmsg::Ttl(64)));
        // What cannot be sent: a source that is not ours, the other
        // family's hop limit, receive-only kinds.
        for bad in [
            Cmsg::PktInfo {
                addr: ip(77).into(),
                ifindex: 0,
            },
            Cmsg::HopLimit(3),
            Cmsg::Timestamp { sec: 0, usec: 0 },
        ] {
            assert_eq!(
                sys::sendmsg(
                    &pa,
                    client.fd(),
                    &[b"x"],
                    Some(sa(addr(2, 5353))),
                    &[bad],
                    0
                ),
                Err(Errno::EINVAL),
                "{bad:?}"
            );
        }
        // Through the request layer, as a remote client would send it.
        use rump::sys::{dispatch, Request, Response};
        let r = dispatch(
            &pa,
            Request::Sendmsg {
                fd: client.fd(),
                data: b"req".to_vec(),
                flags: 0,
                addr: Some(sa(addr(2, 5353))),
                control: vec![Cmsg::Ttl(9)],
            },
        );
        assert!(matches!(r, Ok(Response::Size(3))), "{r:?}");
        let r = dispatch(
            &pb,
            Request::Recvmsg {
                fd: server.fd(),
                len: 16,
                flags: 0,
            },
        );
        match r {
            Ok(Response::RecvMsg { data, control, .. }) => {
                assert_eq!(data, b"req");
                assert_eq!(control.last(), Some(&Cmsg::Ttl(9)));
            }
            other => panic!("{other:?}"),
        }
    });
}

/// An option of a level an AF_INET socket's protocol lacks (TCP or IPv6
/// on UDP, IPv6 on TCP) is EOPNOTSUPP as on Linux (the IPv4 layer's
/// answer); an unknown name at a known level, and any unknown level on
/// an AF_INET6 socket, ENOPROTOOPT.
#[test]
fn getsockopt_of_a_foreign_level() {
    let (_k, p) = net_kernel();
    let udp4 = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
    let tcp4 = sys::socket(&p, af::INET, sock::STREAM, 0).unwrap();
    let udp6 = sys::socket(&p, af::INET6, sock::DGRAM, 0).unwrap();
    let get = |fd, level, name| sys::getsockopt(&p, fd, level, name).map(drop);
    assert_eq!(
        get(udp4, ipproto::TCP, tcp::NODELAY),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        get(udp4, ipproto::IPV6, ipv6::V6ONLY),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(
        get(tcp4, ipproto::IPV6, ipv6::V6ONLY),
        Err(Errno::EOPNOTSUPP)
    );
    assert_eq!(get(tcp4, ipproto::TCP, tcp::NODELAY), Ok(()));
    assert_eq!(get(tcp4, so::SOL_SOCKET, 9999), Err(Errno::ENOPROTOOPT));
    assert_eq!(get(udp4, ipproto::IP, 9999), Err(Errno::ENOPROTOOPT));
    assert_eq!(
        get(udp6, ipproto::TCP, tcp::NODELAY),
        Err(Errno::ENOPROTOOPT)
    );
}

/// A UDP socket shut down for reading still takes datagrams in (Linux);
/// with none queued a non-blocking receive says EAGAIN and a blocking one
/// returns 0; poll shows POLLIN and POLLRDHUP.
#[test]
fn udp_shutdown_read_keeps_receiving() {
    within(30, || {
        let (_k, p) = net_kernel();
        let lo = |port| sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        let a = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        let b = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        sys::bind(&p, a, lo(7001)).unwrap();
        sys::bind(&p, b, lo(7002)).unwrap();
        sys::connect(&p, a, lo(7002)).unwrap();
        sys::shutdown(&p, a, shut::RD).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(
            sys::recv(&p, a, &mut buf, msg::DONTWAIT),
            Err(Errno::EAGAIN)
        );
        assert_eq!(sys::recv(&p, a, &mut buf, 0), Ok(0));
        let mut pf = [PollFd {
            fd: a,
            events: poll::IN | poll::OUT | poll::RDHUP,
            revents: 0,
        }];
        sys::poll(&p, &mut pf, 0).unwrap();
        assert_eq!(pf[0].revents, poll::IN | poll::OUT | poll::RDHUP);
        sys::sendto(&p, b, b"hi", 0, Some(lo(7001))).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(sys::recv(&p, a, &mut buf, msg::DONTWAIT), Ok(2));
        assert_eq!(&buf[..2], b"hi");
    });
}

/// A UDP send in Linux's order: the socket is bound first, whatever
/// happens next; then the destination (AF_UNSPEC: no address on
/// AF_INET6, port 0 on AF_INET), the size, and only then a shut write
/// side or a pending error.
#[test]
fn udp_send_checks_in_linux_order() {
    within(30, || {
        let (_k, p) = net_kernel();
        let lo = |port| sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        let u4 = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        let u6 = sys::socket(&p, af::INET6, sock::DGRAM, 0).unwrap();
        assert_eq!(
            sys::sendto(&p, u4, b"x", 0, Some(SockAddr::Unspec)),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            sys::sendto(&p, u6, b"x", 0, Some(SockAddr::Unspec)),
            Err(Errno::EDESTADDRREQ)
        );
        // Both failed sends bound their sockets.
        for fd in [u4, u6] {
            let name = rump::net::std_addr(sys::getsockname(&p, fd).unwrap()).unwrap();
            assert_ne!(name.port(), 0);
        }
        // A connect that fails binds too (Linux binds before it looks).
        let u = sys::socket(&p, af::INET6, sock::DGRAM, 0).unwrap();
        sys::setsockopt(&p, u, SockOpt::V6Only(true)).unwrap();
        assert!(sys::connect(&p, u, lo(9)).is_err());
        let name = rump::net::std_addr(sys::getsockname(&p, u).unwrap()).unwrap();
        assert_ne!(name.port(), 0);
        // Shut for writing: a missing destination and an oversized
        // datagram are reported before EPIPE.
        let w = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        sys::connect(&p, w, lo(9)).unwrap();
        sys::shutdown(&p, w, shut::WR).unwrap();
        let big = vec![0u8; 70_000];
        assert_eq!(sys::sendto(&p, w, &big, 0, None), Err(Errno::EMSGSIZE));
        assert_eq!(sys::sendto(&p, w, b"x", 0, Some(lo(0))), Err(Errno::EINVAL));
        assert_eq!(sys::sendto(&p, w, b"x", 0, None), Err(Errno::EPIPE));
    });
}

#[test]
fn udp_connect_narrows_the_name_and_dissolve_undoes_it() {
    within(30, || {
        let (_k, p) = net_kernel();
        let name = |fd| rump::net::std_addr(sys::getsockname(&p, fd).unwrap()).unwrap();
        let lo = |port| sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        // An automatic bind: connect shows the source address; dissolving
        // gives back both the address and the port.
        let u = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        sys::connect(&p, u, lo(9)).unwrap();
        let n = name(u);
        assert_eq!(n.ip(), std::net::IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_ne!(n.port(), 0);
        sys::connect(&p, u, SockAddr::Unspec).unwrap();
        assert_eq!(name(u), "0.0.0.0:0".parse().unwrap());
        // Unbound again: bind works.
        sys::bind(&p, u, sa(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4000))).unwrap();
        // An explicit port stays, the address a connect chose goes.
        sys::connect(&p, u, lo(9)).unwrap();
        assert_eq!(name(u), "127.0.0.1:4000".parse().unwrap());
        sys::connect(&p, u, SockAddr::Unspec).unwrap();
        assert_eq!(name(u), "0.0.0.0:4000".parse().unwrap());
        // An explicit address stays while an automatic port goes.
        let v = sys::socket(&p, af::INET6, sock::DGRAM, 0).unwrap();
        let lo6 = |port| {
            sa(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::LOCALHOST,
                port,
                0,
                0,
            ))
        };
        sys::bind(&p, v, lo6(0)).unwrap();
        // Bound to an IPv6 address, the socket is IPv6-only (Linux).
        assert_eq!(
            sys::getsockopt(&p, v, ipproto::IPV6, ipv6::V6ONLY).unwrap(),
            SockOpt::V6Only(true)
        );
        sys::connect(&p, v, lo6(9)).unwrap();
        sys::connect(&p, v, SockAddr::Unspec).unwrap();
        assert_eq!(name(v), "[::1]:0".parse().unwrap());
        // While connected, a narrowed IPv4 binding leaves the port free
        // for other addresses of the family only where Linux does: the
        // IPv4 wildcard still meets an IPv6 socket that a connect
        // narrowed to ::1.
        let w = sys::socket(&p, af::INET6, sock::DGRAM, 0).unwrap();
        sys::bind(
            &p,
            w,
            sa("[::]:4001".parse::<std::net::SocketAddr>().unwrap()),
        )
        .unwrap();
        sys::connect(&p, w, lo6(9)).unwrap();
        assert_eq!(name(w), "[::1]:4001".parse().unwrap());
        let x = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        assert_eq!(
            sys::bind(&p, x, sa(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 4001))),
            Err(Errno::EADDRINUSE)
        );
        sys::bind(&p, x, lo(4001)).unwrap();
    });
}

#[test]
fn udp_association_with_port_zero_and_unreachable_ports() {
    within(30, || {
        let (_k, p) = net_kernel();
        let lo = |port| sa(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port));
        let mut buf = [0u8; 16];
        // Connected to port 0: no peer name, datagrams from any port of
        // the address arrive.
        let a = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        sys::bind(&p, a, lo(5000)).unwrap();
        sys::connect(&p, a, lo(0)).unwrap();
        assert_eq!(sys::getpeername(&p, a), Err(Errno::ENOTCONN));
        for port in [5001, 5002] {
            let b = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
            sys::bind(&p, b, lo(port)).unwrap();
            sys::sendto(&p, b, b"hi", 0, Some(lo(5000))).unwrap();
            let got = sys::recvfrom(&p, a, &mut buf, 0).unwrap();
            assert_eq!(got.len, 2);
            assert_eq!(got.from, Some(lo(port)));
        }
        // A port whose only socket is connected elsewhere is unreachable
        // for anyone else: a connected sender hears ECONNREFUSED.
        let c = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        sys::bind(&p, c, lo(5003)).unwrap();
        sys::connect(&p, c, lo(5004)).unwrap();
        let d = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        sys::connect(&p, d, lo(5003)).unwrap();
        sys::send(&p, d, b"x", 0).unwrap();
        assert_eq!(
            sys::recvfrom(&p, d, &mut buf, msg::DONTWAIT).map(|r| r.len),
            Err(Errno::ECONNREFUSED)
        );
        assert_eq!(
            sys::recvfrom(&p, c, &mut buf, msg::DONTWAIT).map(|r| r.len),
            Err(Errno::EAGAIN)
        );
    });
}
