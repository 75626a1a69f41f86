//! Routing: a client kernel, a router kernel and a server kernel on two
//! in-process buses. Forwarding on and off, TTL expiry (ICMP time
//! exceeded), unreachable networks (ICMP net unreachable), the ARP and
//! routing tables, and packet capture that tcpdump reads.

mod net_util;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use net_util::*;
use rump::kern::sysctl::SysctlValue;
use rump::net::{RouteSpec, SockAddr, SockOpt, TcpListener, TcpStream, UdpSocket};
use rump::sys::{self, consts::*};
use rump::{Errno, Kernel, Process};

const LEFT: [u8; 3] = [192, 0, 2];
const RIGHT: [u8; 3] = [198, 51, 100];

fn left(h: u8) -> Ipv4Addr {
    Ipv4Addr::new(LEFT[0], LEFT[1], LEFT[2], h)
}

fn right(h: u8) -> Ipv4Addr {
    Ipv4Addr::new(RIGHT[0], RIGHT[1], RIGHT[2], h)
}

struct Net {
    _k: Vec<Kernel>,
    client: Process,
    router: Process,
    server: Process,
}

/// client 192.0.2.1 — [192.0.2.254 router 198.51.100.254] — 198.51.100.2 server
fn topology(forwarding: bool) -> Net {
    let (l, r) = (
        rump::net::unique_bus_name("left"),
        rump::net::unique_bus_name("right"),
    );
    let (kc, client) = net_kernel();
    let (kr, router) = net_kernel();
    let (ks, server) = net_kernel();
    rump::net::ifup(&client, "bus0", &l, left(1), 24).unwrap();
    rump::net::ifup(&router, "bus0", &l, left(254), 24).unwrap();
    rump::net::ifup(&router, "bus1", &r, right(254), 24).unwrap();
    rump::net::ifup(&server, "bus0", &r, right(2), 24).unwrap();
    let via = |gw: Ipv4Addr| RouteSpec {
        dst: [0u8; 4].into(),
        prefix: 0,
        gateway: Some(gw.into()),
        ifname: None,
    };
    sys::route_add(&client, &via(left(254))).unwrap();
    sys::route_add(&server, &via(right(254))).unwrap();
    sys::sysctl_set(
        &router,
        "net.inet.ip.forwarding",
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

fn sa(ip: Ipv4Addr, port: u16) -> SockAddr {
    SockAddr::inet(ip, port)
}

#[test]
fn tcp_and_udp_through_a_router() {
    within(120, || {
        let n = topology(true);
        let l = TcpListener::bind(&n.server, SocketAddrV4::new(right(2), 80)).unwrap();
        let data = pattern(11, 20 << 20);
        let want = fnv(&data);
        let srv = std::thread::spawn(move || {
            let (mut s, peer) = l.accept().unwrap();
            let mut v = Vec::new();
            s.read_to_end(&mut v).unwrap();
            s.write_all(&fnv(&v).to_le_bytes()).unwrap();
            (peer, v.len())
        });
        let mut c = TcpStream::connect(&n.client, SocketAddrV4::new(right(2), 80)).unwrap();
        c.write_all(&data).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        let mut sum = [0u8; 8];
        c.read_exact(&mut sum).unwrap();
        assert_eq!(u64::from_le_bytes(sum), want);
        let (peer, len) = srv.join().unwrap();
        assert_eq!(len, data.len());
        // The server sees the client's own address: a router, not a NAT.
        assert_eq!(peer.ip(), left(1));
        // UDP both ways.
        let u = UdpSocket::bind(&n.server, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53)).unwrap();
        let cu = UdpSocket::bind(&n.client, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        cu.send_to(b"query", SocketAddrV4::new(right(2), 53))
            .unwrap();
        let mut b = [0u8; 16];
        let (k, from) = u.recv_from(&mut b).unwrap();
        assert_eq!((&b[..k], from.ip()), (&b"query"[..], left(1).into()));
        u.send_to(b"reply", from).unwrap();
        let (k, _) = cu.recv_from(&mut b).unwrap();
        assert_eq!(&b[..k], b"reply");
        let st = sys::net_stats(&n.router).unwrap();
        assert!(st.ip_forwarded > 1000, "{st:?}");
        // The router knows both neighbours, one per side.
        let arp = sys::arp_list(&n.router).unwrap();
        assert!(arp
            .iter()
            .any(|e| e.ifname == "bus0" && e.ip == left(1) && e.mac.is_some()));
        assert!(arp
            .iter()
            .any(|e| e.ifname == "bus1" && e.ip == right(2) && e.mac.is_some()));
        sys::arp_delete(&n.router, left(1).octets()).unwrap();
        assert_eq!(
            sys::arp_delete(&n.router, left(1).octets()),
            Err(Errno::ENOENT)
        );
    });
}

#[test]
fn without_forwarding_the_router_drops() {
    within(60, || {
        let n = topology(false);
        let _l = TcpListener::bind(&n.server, SocketAddrV4::new(right(2), 80)).unwrap();
        sys::sysctl_set(
            &n.client,
            "net.inet.tcp.connect_timeout_ms",
            SysctlValue::Int(700),
        )
        .unwrap();
        let fd = sys::socket(&n.client, af::INET, sock::STREAM, 0).unwrap();
        assert_eq!(
            sys::connect(&n.client, fd, sa(right(2), 80)),
            Err(Errno::ETIMEDOUT)
        );
        assert!(sys::net_stats(&n.router).unwrap().ip_not_forwarded > 0);
        // Turned on at run time, it routes.
        sys::sysctl_set(&n.router, "net.inet.ip.forwarding", SysctlValue::Int(1)).unwrap();
        let fd = sys::socket(&n.client, af::INET, sock::STREAM, 0).unwrap();
        assert_eq!(sys::connect(&n.client, fd, sa(right(2), 80)), Ok(()));
        assert_eq!(
            sys::sysctl_set(&n.router, "net.inet.ip.forwarding", SysctlValue::Int(2)),
            Err(Errno::EINVAL)
        );
    });
}

#[test]
fn ttl_expiry_sends_time_exceeded() {
    within(60, || {
        let n = topology(true);
        let _l = TcpListener::bind(&n.server, SocketAddrV4::new(right(2), 80)).unwrap();
        // A ping with TTL 1 dies at the router; the error comes back.
        let fd = sys::socket(&n.client, af::INET, sock::DGRAM, ipproto::ICMP).unwrap();
        sys::setsockopt(&n.client, fd, SockOpt::Ttl(1)).unwrap();
        let req = [8u8, 0, 0, 0, 0, 0, 0, 1, b'x'];
        sys::sendto(&n.client, fd, &req, 0, Some(sa(right(2), 0))).unwrap();
        let mut b = [0u8; 32];
        assert_eq!(
            sys::recv(&n.client, fd, &mut b, 0),
            Err(Errno::EHOSTUNREACH)
        );
        // With TTL 2 it gets through.
        sys::setsockopt(&n.client, fd, SockOpt::Ttl(2)).unwrap();
        sys::sendto(&n.client, fd, &req, 0, Some(sa(right(2), 0))).unwrap();
        assert_eq!(sys::recv(&n.client, fd, &mut b, 0), Ok(9));
        // A TCP connect with TTL 1 fails the same way, at once.
        let t = sys::socket(&n.client, af::INET, sock::STREAM, 0).unwrap();
        sys::setsockopt(&n.client, t, SockOpt::Ttl(1)).unwrap();
        assert_eq!(
            sys::connect(&n.client, t, sa(right(2), 80)),
            Err(Errno::EHOSTUNREACH)
        );
        let st = sys::net_stats(&n.router).unwrap();
        assert!(
            st.icmp_out_time_exceeded >= 2 && st.ip_ttl_exceeded >= 2,
            "{st:?}"
        );
        assert!(sys::net_stats(&n.client).unwrap().icmp_in_time_exceeded >= 2);
    });
}

#[test]
fn unknown_networks_are_unreachable() {
    within(60, || {
        let n = topology(true);
        // The client routes everything to the router; the router has no
        // route to 203.0.113.0/24 and says so.
        let far = Ipv4Addr::new(203, 0, 113, 5);
        let fd = sys::socket(&n.client, af::INET, sock::STREAM, 0).unwrap();
        assert_eq!(
            sys::connect(&n.client, fd, sa(far, 80)),
            Err(Errno::ENETUNREACH)
        );
        let u = UdpSocket::bind(&n.client, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)).unwrap();
        u.connect(SocketAddrV4::new(far, 53)).unwrap();
        u.send(b"?").unwrap();
        let mut b = [0u8; 4];
        assert_eq!(
            sys::recv(&n.client, u.fd(), &mut b, 0),
            Err(Errno::ENETUNREACH)
        );
        assert!(sys::net_stats(&n.router).unwrap().icmp_out_unreachable >= 2);
        // Without a default route the client itself has no route.
        sys::route_delete(&n.client, [0; 4], 0).unwrap();
        let fd = sys::socket(&n.client, af::INET, sock::STREAM, 0).unwrap();
        assert_eq!(
            sys::connect(&n.client, fd, sa(far, 80)),
            Err(Errno::ENETUNREACH)
        );
        // A more specific static route through the router works again.
        sys::route_add(
            &n.client,
            &RouteSpec {
                dst: [198u8, 51, 100, 0].into(),
                prefix: 24,
                gateway: Some([192u8, 0, 2, 254].into()),
                ifname: Some("bus0".into()),
            },
        )
        .unwrap();
        let _l = TcpListener::bind(&n.server, SocketAddrV4::new(right(2), 81)).unwrap();
        let fd = sys::socket(&n.client, af::INET, sock::STREAM, 0).unwrap();
        assert_eq!(sys::connect(&n.client, fd, sa(right(2), 81)), Ok(()));
        // Destroying the router's interface takes its routes with it.
        sys::if_destroy(&n.router, "bus1").unwrap();
        assert!(!sys::route_list(&n.router)
            .unwrap()
            .iter()
            .any(|r| r.ifname == "bus1"));
    });
}

#[test]
fn capture_is_readable_by_tcpdump() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (_kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bus0.pcap");
        sys::if_set_pcap(&pa, "bus0", Some(path.to_str().unwrap())).unwrap();
        let l = TcpListener::bind(&pb, addr(2, 8080)).unwrap();
        let mut c = TcpStream::connect(&pa, addr(2, 8080)).unwrap();
        let (mut s, _) = l.accept().unwrap();
        c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut b = [0u8; 18];
        s.read_exact(&mut b).unwrap();
        drop((c, s));
        std::thread::sleep(Duration::from_millis(50));
        assert!(sys::if_list(&pa)
            .unwrap()
            .iter()
            .any(|i| i.name == "bus0" && i.pcap));
        sys::if_set_pcap(&pa, "bus0", None).unwrap();
        // Our own reading of the format: header, then records of frames.
        let bytes = std::fs::read(&path).unwrap();
        let h = ::net::pcap::FileHeader::parse(&bytes).unwrap();
        assert_eq!(h.linktype, ::net::pcap::LINKTYPE_ETHERNET);
        let mut off = ::net::pcap::FileHeader::LEN;
        let mut frames = 0;
        while off < bytes.len() {
            let r = ::net::pcap::RecordHeader::parse(&bytes[off..]).unwrap();
            off += ::net::pcap::RecordHeader::LEN + r.caplen as usize;
            frames += 1;
        }
        assert_eq!(off, bytes.len());
        assert!(frames >= 8, "{frames} frames");
        if !have("tcpdump") {
            eprintln!("skipped: tcpdump not installed (apt-get install tcpdump); pcap checked by our own parser only");
            return;
        }
        let out = std::process::Command::new("tcpdump")
            .args(["-n", "-r", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("ARP, Request who-has 192.0.2.2"), "{text}");
        assert!(
            text.contains("192.0.2.1.") && text.contains("> 192.0.2.2.8080: Flags [S]"),
            "{text}"
        );
        assert!(text.contains("Flags [S.]"), "{text}");
        assert!(text.contains("HTTP"), "{text}");
        assert!(text.contains("Flags [F."), "{text}");
    });
}

#[test]
fn boot_parameters_reach_component_nodes() {
    // Set after the components have added their nodes, so a network
    // parameter given at boot takes effect.
    let k = Kernel::builder()
        .net()
        .param("net.inet.ip.forwarding", "1")
        .param("kern.hostname", "router")
        .boot()
        .unwrap();
    let p = k.process().unwrap();
    assert_eq!(
        sys::sysctl_get(p.raw(), "net.inet.ip.forwarding").unwrap(),
        SysctlValue::Int(1)
    );
    assert_eq!(
        sys::sysctl_get(p.raw(), "kern.hostname").unwrap(),
        SysctlValue::Str("router".into())
    );
    // A name no component defines, or a value out of range, fails the boot.
    let e = Kernel::builder().net().param("net.inet.nope", "1").boot();
    assert_eq!(e.err(), Some(Errno::ENOENT));
    let e = Kernel::builder()
        .net()
        .param("net.inet.ip.forwarding", "x")
        .boot();
    assert_eq!(e.err(), Some(Errno::EINVAL));
}
