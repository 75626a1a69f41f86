//! The packet interface (`pktN`): a test drives the stack with hand-made
//! IPv4 and IPv6 packets through a [`rump::net::PacketPort`] and checks
//! every packet the stack sends back, byte by byte: a TCP handshake with
//! its acknowledgement numbers and MSS option, data both ways with the
//! right sequence numbers and checksums, out-of-order and duplicate
//! segments, resets in and out of the window, a zero window and its probe,
//! a RST from a closed port, a RST when a socket closes with unread data,
//! UDP in and out, IPv6, timeouts, bad input, a bounded queue, and a
//! blocked reader woken by `if_destroy` and by halt, and a capture of both
//! directions.
//!
//! Packets are built and parsed here by small helpers written against
//! RFC 791 (IPv4), RFC 8200 (IPv6), RFC 9293 (TCP) and RFC 768 (UDP), so
//! the test does not trust the stack's own wire code.

use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rump::net::{PacketPort, TcpListener, UdpSocket};
use rump::{sys, Errno, Kernel, Process};

const US: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
const KERNEL: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const WAIT: Option<Duration> = Some(Duration::from_secs(5));
const QUIET: Option<Duration> = Some(Duration::from_millis(100));

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

// ---------------------------------------------------------------- building

/// The Internet checksum (RFC 1071) of `parts`, concatenated.
fn csum(parts: &[&[u8]]) -> u16 {
    let mut sum = 0u64;
    let mut odd: Option<u8> = None;
    for part in parts {
        for &b in *part {
            match odd.take() {
                Some(hi) => sum += u16::from_be_bytes([hi, b]) as u64,
                None => odd = Some(b),
            }
        }
    }
    if let Some(hi) = odd {
        sum += u16::from_be_bytes([hi, 0]) as u64;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The pseudo-header of a transport checksum (RFC 9293 §3.1, RFC 8200 §8.1).
fn pseudo(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Vec<u8> {
    let mut p = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, proto]);
            p.extend_from_slice(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("mixed families"),
    }
    p
}

/// An IP packet (version from the addresses) around `l4`.
fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, l4: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = 20 + l4.len();
            let mut h = vec![0x45, 0];
            h.extend_from_slice(&(total as u16).to_be_bytes());
            h.extend_from_slice(&[0x12, 0x34, 0x40, 0, 64, proto, 0, 0]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            let c = csum(&[&h]);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(l4);
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0x60, 0, 0, 0];
            h.extend_from_slice(&(l4.len() as u16).to_be_bytes());
            h.extend_from_slice(&[proto, 64]);
            h.extend_from_slice(&s.octets());
            h.extend_from_slice(&d.octets());
            h.extend_from_slice(l4);
            h
        }
        _ => panic!("mixed families"),
    }
}

/// A TCP segment in an IP packet, with a correct checksum.
struct Seg<'a> {
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: &'a [u8],
    payload: &'a [u8],
}

impl Seg<'_> {
    fn build(&self) -> Vec<u8> {
        assert_eq!(self.options.len() % 4, 0);
        let hlen = 20 + self.options.len();
        let mut t = Vec::new();
        t.extend_from_slice(&self.src.port().to_be_bytes());
        t.extend_from_slice(&self.dst.port().to_be_bytes());
        t.extend_from_slice(&self.seq.to_be_bytes());
        t.extend_from_slice(&self.ack.to_be_bytes());
        t.push(((hlen / 4) as u8) << 4);
        t.push(self.flags);
        t.extend_from_slice(&self.window.to_be_bytes());
        t.extend_from_slice(&[0, 0, 0, 0]);
        t.extend_from_slice(self.options);
        t.extend_from_slice(self.payload);
        let ph = pseudo(self.src.ip(), self.dst.ip(), 6, t.len());
        let c = csum(&[&ph, &t]);
        t[16..18].copy_from_slice(&c.to_be_bytes());
        ip_packet(self.src.ip(), self.dst.ip(), 6, &t)
    }
}

/// A UDP datagram in an IP packet, with a correct checksum.
fn udp_packet(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend_from_slice(&src.port().to_be_bytes());
    u.extend_from_slice(&dst.port().to_be_bytes());
    u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u.extend_from_slice(&[0, 0]);
    u.extend_from_slice(payload);
    let ph = pseudo(src.ip(), dst.ip(), 17, u.len());
    let mut c = csum(&[&ph, &u]);
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
    ip_packet(src.ip(), dst.ip(), 17, &u)
}

/// MSS 1460, as a SYN from a host on Ethernet carries it.
const MSS_OPT: [u8; 4] = [2, 4, 0x05, 0xb4];

// ----------------------------------------------------------------- parsing

/// An IP packet the stack sent, checked: version, lengths, and (IPv4) the
/// header checksum.
#[derive(Debug)]
struct Ip {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    ttl: u8,
    payload: Vec<u8>,
}

fn parse_ip(p: &[u8]) -> Ip {
    assert!(!p.is_empty(), "empty packet");
    match p[0] >> 4 {
        4 => {
            assert!(p.len() >= 20, "short IPv4 packet");
            let ihl = (p[0] & 0xf) as usize * 4;
            let total = u16::from_be_bytes([p[2], p[3]]) as usize;
            assert_eq!(total, p.len(), "IPv4 total length");
            assert_eq!(csum(&[&p[..ihl]]), 0, "IPv4 header checksum");
            Ip {
                src: IpAddr::from(<[u8; 4]>::try_from(&p[12..16]).unwrap()),
                dst: IpAddr::from(<[u8; 4]>::try_from(&p[16..20]).unwrap()),
                proto: p[9],
                ttl: p[8],
                payload: p[ihl..].to_vec(),
            }
        }
        6 => {
            assert!(p.len() >= 40, "short IPv6 packet");
            let plen = u16::from_be_bytes([p[4], p[5]]) as usize;
            assert_eq!(40 + plen, p.len(), "IPv6 payload length");
            Ip {
                src: IpAddr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap()),
                dst: IpAddr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap()),
                proto: p[6],
                ttl: p[7],
                payload: p[40..].to_vec(),
            }
        }
        v => panic!("IP version {v} sent"),
    }
}

/// A TCP segment the stack sent, its checksum checked.
#[derive(Debug)]
struct Tcp {
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
}

impl Tcp {
    /// The MSS option's value, if present (RFC 9293 §3.2).
    fn mss(&self) -> Option<u16> {
        let o = &self.options;
        let mut i = 0;
        while i < o.len() {
            match o[i] {
                0 => return None,
                1 => i += 1,
                kind => {
                    let len = *o.get(i + 1)? as usize;
                    if len < 2 || i + len > o.len() {
                        return None;
                    }
                    if kind == 2 && len == 4 {
                        return Some(u16::from_be_bytes([o[i + 2], o[i + 3]]));
                    }
                    i += len;
                }
            }
        }
        None
    }
}

fn parse_tcp(ip: &Ip) -> Tcp {
    assert_eq!(ip.proto, 6, "not TCP: {ip:?}");
    let t = &ip.payload;
    assert!(t.len() >= 20, "short TCP header");
    let ph = pseudo(ip.src, ip.dst, 6, t.len());
    assert_eq!(csum(&[&ph, t]), 0, "TCP checksum");
    let hlen = (t[12] >> 4) as usize * 4;
    assert!((20..=t.len()).contains(&hlen), "TCP data offset");
    Tcp {
        sport: u16::from_be_bytes([t[0], t[1]]),
        dport: u16::from_be_bytes([t[2], t[3]]),
        seq: u32::from_be_bytes([t[4], t[5], t[6], t[7]]),
        ack: u32::from_be_bytes([t[8], t[9], t[10], t[11]]),
        flags: t[13],
        window: u16::from_be_bytes([t[14], t[15]]),
        options: t[20..hlen].to_vec(),
        payload: t[hlen..].to_vec(),
    }
}

/// A UDP datagram the stack sent: ports and payload, checksum checked.
fn parse_udp(ip: &Ip) -> (u16, u16, Vec<u8>) {
    assert_eq!(ip.proto, 17, "not UDP: {ip:?}");
    let u = &ip.payload;
    assert!(u.len() >= 8);
    assert_eq!(
        u16::from_be_bytes([u[4], u[5]]) as usize,
        u.len(),
        "UDP length"
    );
    assert_ne!(u16::from_be_bytes([u[6], u[7]]), 0, "UDP checksum left out");
    let ph = pseudo(ip.src, ip.dst, 17, u.len());
    assert_eq!(csum(&[&ph, u]), 0, "UDP checksum");
    (
        u16::from_be_bytes([u[0], u[1]]),
        u16::from_be_bytes([u[2], u[3]]),
        u[8..].to_vec(),
    )
}

// ------------------------------------------------------------------ set-up

fn kernel_with_pkt() -> (Kernel, Process, PacketPort) {
    let k = Kernel::builder().net().boot().expect("boot");
    let p = k.process().expect("process");
    let port = rump::net::pkt_ifup(&p, "pkt0", KERNEL, 24).expect("pkt_ifup");
    (k, p, port)
}

fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

/// The next TCP segment sent, skipping nothing: the test knows what must
/// come.
fn next_tcp(port: &PacketPort) -> Tcp {
    let pkt = port.recv_packet(WAIT).expect("a packet from the stack");
    parse_tcp(&parse_ip(&pkt))
}

/// Asserts that nothing is sent within [`QUIET`].
fn assert_quiet(port: &PacketPort, why: &str) {
    match port.recv_packet(QUIET) {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Ok(p) => panic!("{why}: the stack sent {:?}", parse_ip(&p)),
        Err(e) => panic!("{why}: {e}"),
    }
}

fn stats(p: &Process, name: &str) -> rump::net::IfStats {
    sys::if_list(p)
        .unwrap()
        .into_iter()
        .find(|i| i.name == name)
        .expect("interface listed")
        .stats
}

/// Sends a SYN from `from` to `to` with `isn`; returns the SYN-ACK
/// (checked: flags, acknowledgement, MSS option) as parsed.
fn handshake_syn(port: &PacketPort, from: SocketAddr, to: SocketAddr, isn: u32) -> Tcp {
    port.inject(
        &Seg {
            src: from,
            dst: to,
            seq: isn,
            ack: 0,
            flags: SYN,
            window: 65535,
            options: &MSS_OPT,
            payload: &[],
        }
        .build(),
    )
    .unwrap();
    let pkt = port.recv_packet(WAIT).expect("SYN-ACK");
    let ip = parse_ip(&pkt);
    assert_eq!((ip.src, ip.dst), (to.ip(), from.ip()));
    let t = parse_tcp(&ip);
    assert_eq!(t.flags, SYN | ACK, "SYN-ACK flags: {t:?}");
    assert_eq!((t.sport, t.dport), (to.port(), from.port()));
    assert_eq!(
        t.ack,
        isn.wrapping_add(1),
        "SYN-ACK acknowledges our ISN + 1"
    );
    let mss = t.mss().expect("SYN-ACK carries an MSS option");
    let mtu = if from.is_ipv4() { 1500 - 40 } else { 1500 - 60 };
    assert_eq!(mss as usize, mtu, "MSS of a 1500-byte link");
    assert!(t.window > 0, "the listener's connection offers a window");
    t
}

// ------------------------------------------------------------------- tests

#[test]
fn tcp_handshake_and_data_both_ways() {
    let (_k, p, port) = kernel_with_pkt();
    let l = TcpListener::bind(&p, sa(KERNEL, 80)).unwrap();
    let (us, them) = (sa(US, 40000), sa(KERNEL, 80));
    let isn = 0xfffffff0u32; // wraps during the exchange
    let synack = handshake_syn(&port, us, them, isn);
    let their_isn = synack.seq;
    let mut our_seq = isn.wrapping_add(1);
    let mut their_next = their_isn.wrapping_add(1);
    let seg = |seq: u32, ack: u32, flags: u8, payload: &[u8]| {
        Seg {
            src: us,
            dst: them,
            seq,
            ack,
            flags,
            window: 65535,
            options: &[],
            payload,
        }
        .build()
    };
    port.inject(&seg(our_seq, their_next, ACK, &[])).unwrap();
    let (mut s, peer) = l.accept().expect("the handshake completes");
    assert_eq!(peer, us);
    assert_eq!(s.local_addr().unwrap(), them);

    // Our data reaches the socket; the stack acknowledges it.
    port.inject(&seg(our_seq, their_next, PSH | ACK, b"hello"))
        .unwrap();
    our_seq = our_seq.wrapping_add(5);
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    let a = next_tcp(&port);
    assert_eq!(a.flags & (ACK | SYN | RST | FIN), ACK, "{a:?}");
    assert_eq!(a.ack, our_seq, "our five bytes acknowledged");
    assert_eq!(a.seq, their_next);
    assert!(a.payload.is_empty());

    // The socket's data comes out in sequence, with a valid checksum.
    s.write_all(b"world, two segments?").unwrap();
    let d = next_tcp(&port);
    assert_eq!(d.seq, their_next, "data starts right after their SYN");
    assert_eq!(d.ack, our_seq);
    assert_eq!(d.payload, b"world, two segments?");
    assert_ne!(d.flags & ACK, 0);
    their_next = their_next.wrapping_add(d.payload.len() as u32);
    port.inject(&seg(our_seq, their_next, ACK, &[])).unwrap();
    assert_quiet(&port, "everything was acknowledged");

    // A second write continues the sequence space.
    s.write_all(b"more").unwrap();
    let d = next_tcp(&port);
    assert_eq!(d.seq, their_next);
    assert_eq!(d.payload, b"more");
    their_next = their_next.wrapping_add(4);
    port.inject(&seg(our_seq, their_next, ACK, &[])).unwrap();

    // We close: FIN in, the socket reads EOF, the stack acknowledges it.
    port.inject(&seg(our_seq, their_next, FIN | ACK, &[]))
        .unwrap();
    our_seq = our_seq.wrapping_add(1);
    assert_eq!(s.read(&mut buf).unwrap(), 0, "EOF after our FIN");
    let a = next_tcp(&port);
    assert_eq!(a.ack, our_seq, "our FIN acknowledged");
    assert_eq!(a.flags & (SYN | RST), 0);
    drop(s);
    let f = next_tcp(&port);
    assert_ne!(f.flags & FIN, 0, "closing the socket sends its FIN: {f:?}");
    assert_eq!(f.seq, their_next);
    port.inject(&seg(our_seq, their_next.wrapping_add(1), ACK, &[]))
        .unwrap();
    assert_quiet(&port, "the connection is closed");
}

#[test]
fn a_segment_larger_than_the_mss_we_announced_is_never_sent() {
    let (_k, p, port) = kernel_with_pkt();
    let l = TcpListener::bind(&p, sa(KERNEL, 81)).unwrap();
    let (us, them) = (sa(US, 40001), sa(KERNEL, 81));
    // MSS 536 (RFC 9293's default), window 64 KiB.
    let opts = [2, 4, 0x02, 0x18];
    port.inject(
        &Seg {
            src: us,
            dst: them,
            seq: 1000,
            ack: 0,
            flags: SYN,
            window: 65535,
            options: &opts,
            payload: &[],
        }
        .build(),
    )
    .unwrap();
    let sa_ = next_tcp(&port);
    assert_eq!(sa_.flags, SYN | ACK);
    let next = sa_.seq.wrapping_add(1);
    port.inject(
        &Seg {
            src: us,
            dst: them,
            seq: 1001,
            ack: next,
            flags: ACK,
            window: 65535,
            options: &[],
            payload: &[],
        }
        .build(),
    )
    .unwrap();
    let (mut s, _) = l.accept().unwrap();
    let data: Vec<u8> = (0..2000u32).map(|i| (i * 7) as u8).collect();
    s.write_all(&data).unwrap();
    let mut got = Vec::new();
    let mut expect_seq = next;
    while got.len() < data.len() {
        let d = next_tcp(&port);
        assert!(d.payload.len() <= 536, "segment of {}", d.payload.len());
        assert_eq!(d.seq, expect_seq, "segments in order");
        expect_seq = expect_seq.wrapping_add(d.payload.len() as u32);
        got.extend_from_slice(&d.payload);
        // Acknowledged as it comes (the sender's window of unacknowledged
        // segments is small at first).
        port.inject(
            &Seg {
                src: us,
                dst: them,
                seq: 1001,
                ack: expect_seq,
                flags: ACK,
                window: 65535,
                options: &[],
                payload: &[],
            }
            .build(),
        )
        .unwrap();
    }
    assert_eq!(got, data);
}

#[test]
fn syn_to_a_closed_port_gets_a_reset() {
    let (_k, _p, port) = kernel_with_pkt();
    port.inject(
        &Seg {
            src: sa(US, 40002),
            dst: sa(KERNEL, 9),
            seq: 777,
            ack: 0,
            flags: SYN,
            window: 1024,
            options: &MSS_OPT,
            payload: &[],
        }
        .build(),
    )
    .unwrap();
    let r = next_tcp(&port);
    // RFC 9293 §3.10.7.1: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
    assert_eq!(r.flags, RST | ACK, "{r:?}");
    assert_eq!(r.seq, 0);
    assert_eq!(r.ack, 778);
    assert_eq!((r.sport, r.dport), (9, 40002));
    // A RST is not answered.
    port.inject(
        &Seg {
            src: sa(US, 40002),
            dst: sa(KERNEL, 9),
            seq: 778,
            ack: 0,
            flags: RST,
            window: 0,
            options: &[],
            payload: &[],
        }
        .build(),
    )
    .unwrap();
    assert_quiet(&port, "a RST to a closed port");
}

#[test]
fn udp_in_and_out() {
    let (_k, p, port) = kernel_with_pkt();
    let u = UdpSocket::bind(&p, sa(KERNEL, 5353)).unwrap();
    u.set_read_timeout(WAIT).unwrap();
    port.inject(&udp_packet(sa(US, 1234), sa(KERNEL, 5353), b"question"))
        .unwrap();
    let mut buf = [0u8; 64];
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"question");
    assert_eq!(from, sa(US, 1234));
    u.send_to(b"an answer", from).unwrap();
    let ip = parse_ip(&port.recv_packet(WAIT).unwrap());
    assert_eq!((ip.src, ip.dst), (IpAddr::V4(KERNEL), IpAddr::V4(US)));
    assert_eq!(ip.ttl, 64);
    assert_eq!(parse_udp(&ip), (5353, 1234, b"an answer".to_vec()));

    // A datagram with a bad checksum never reaches the socket.
    let mut bad = udp_packet(sa(US, 1234), sa(KERNEL, 5353), b"damaged");
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    port.inject(&bad).unwrap();
    // To a closed port: ICMP port unreachable quoting our datagram.
    let probe = udp_packet(sa(US, 1234), sa(KERNEL, 5354), b"anyone?");
    port.inject(&probe).unwrap();
    let ip = parse_ip(&port.recv_packet(WAIT).unwrap());
    assert_eq!(ip.proto, 1, "ICMP: {ip:?}");
    assert_eq!(&ip.payload[..2], &[3, 3], "port unreachable");
    assert_eq!(csum(&[&ip.payload]), 0, "ICMP checksum");
    assert_eq!(&ip.payload[8..8 + 28], &probe[..28], "quotes our datagram");
    u.set_read_timeout(QUIET).unwrap();
    let e = u.recv_from(&mut buf).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock, "the damaged datagram");
}

#[test]
fn ipv6_handshake_and_udp() {
    let k = Kernel::builder().net().boot().unwrap();
    let p = k.process().unwrap();
    let ours: Ipv6Addr = "2001:db8::1".parse().unwrap();
    let theirs: Ipv6Addr = "2001:db8::2".parse().unwrap();
    let port = rump::net::pkt_ifup(&p, "pkt3", ours, 64).unwrap();
    assert_eq!(port.ifname(), "pkt3");
    let l = TcpListener::bind(&p, sa(Ipv6Addr::UNSPECIFIED, 80)).unwrap();
    let (us, them) = (sa(theirs, 50000), sa(ours, 80));
    let synack = handshake_syn(&port, us, them, 4242);
    port.inject(
        &Seg {
            src: us,
            dst: them,
            seq: 4243,
            ack: synack.seq.wrapping_add(1),
            flags: ACK,
            window: 65535,
            options: &[],
            payload: &[],
        }
        .build(),
    )
    .unwrap();
    let (mut s, peer) = l.accept().unwrap();
    assert_eq!(peer, us);
    s.write_all(b"v6").unwrap();
    let d = next_tcp(&port);
    assert_eq!(d.seq, synack.seq.wrapping_add(1));
    assert_eq!(d.payload, b"v6");

    let u = UdpSocket::bind(&p, sa(ours, 7)).unwrap();
    u.set_read_timeout(WAIT).unwrap();
    port.inject(&udp_packet(sa(theirs, 7007), sa(ours, 7), b"six"))
        .unwrap();
    let mut buf = [0u8; 16];
    let (n, from) = u.recv_from(&mut buf).unwrap();
    assert_eq!((&buf[..n], from), (&b"six"[..], sa(theirs, 7007)));
    u.send_to(b"back", from).unwrap();
    let ip = parse_ip(&port.recv_packet(WAIT).unwrap());
    assert_eq!(ip.dst, IpAddr::V6(theirs));
    assert_eq!(ip.ttl, 64, "hop limit");
    assert_eq!(parse_udp(&ip), (7, 7007, b"back".to_vec()));
}

#[test]
fn recv_times_out_with_eagain() {
    let (_k, _p, port) = kernel_with_pkt();
    let mut buf = [0u8; 64];
    let e = port.recv(&mut buf, Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(Errno::EAGAIN.raw()));
    let t = Instant::now();
    let e = port
        .recv(&mut buf, Some(Duration::from_millis(80)))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(80), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
}

#[test]
fn a_short_buffer_truncates_and_tells_the_whole_length() {
    let (_k, p, port) = kernel_with_pkt();
    let u = UdpSocket::bind(&p, sa(KERNEL, 0)).unwrap();
    u.send_to(&[0xabu8; 100], sa(US, 9)).unwrap();
    let mut small = [0u8; 20];
    let n = port.recv(&mut small, WAIT).unwrap();
    assert_eq!(n, 20 + 8 + 100, "the whole packet's length");
    assert_eq!(small[0], 0x45);
    assert_eq!(&small[16..20], &US.octets());
    assert_eq!(port.pending(), 0, "the rest of the packet is gone");
}

#[test]
fn bad_input_is_dropped_counted_and_harmless() {
    let (_k, p, port) = kernel_with_pkt();
    let _l = TcpListener::bind(&p, sa(KERNEL, 80)).unwrap();
    assert_eq!(
        port.inject(&[]).unwrap_err().raw_os_error(),
        Some(Errno::EINVAL.raw())
    );
    assert_eq!(
        port.inject(&vec![0x45; 65536]).unwrap_err().raw_os_error(),
        Some(Errno::EINVAL.raw())
    );
    let errors_before = stats(&p, "pkt0").rx_errors;
    let good_syn = |sport: u16| {
        Seg {
            src: sa(US, sport),
            dst: sa(KERNEL, 80),
            seq: 1,
            ack: 0,
            flags: SYN,
            window: 1000,
            options: &MSS_OPT,
            payload: &[],
        }
        .build()
    };
    let mut bad: Vec<Vec<u8>> = vec![
        vec![0x00],
        vec![0x45],
        vec![0x60, 0, 0],
        vec![0x55; 60], // IP version 5
        vec![0xff; 1500],
    ];
    // Every truncation of a good SYN, v4 and v6.
    let syn = good_syn(41000);
    for n in 1..syn.len() {
        bad.push(syn[..n].to_vec());
    }
    let v6 = Seg {
        src: sa("2001:db8::2".parse::<Ipv6Addr>().unwrap(), 1),
        dst: sa("2001:db8::1".parse::<Ipv6Addr>().unwrap(), 80),
        seq: 1,
        ack: 0,
        flags: SYN,
        window: 1000,
        options: &[],
        payload: &[],
    }
    .build();
    for n in 1..v6.len() {
        bad.push(v6[..n].to_vec());
    }
    // A bad IPv4 header checksum.
    let mut b = good_syn(41001);
    b[10] ^= 1;
    bad.push(b);
    // A bad TCP checksum.
    let mut b = good_syn(41002);
    b[20 + 16] ^= 1;
    bad.push(b);
    // An IPv4 total length beyond the packet, and one below the header.
    let mut b = good_syn(41003);
    b[2..4].copy_from_slice(&1000u16.to_be_bytes());
    bad.push(b);
    let mut b = good_syn(41004);
    b[2..4].copy_from_slice(&10u16.to_be_bytes());
    bad.push(b);
    // Deterministic garbage after a plausible first byte.
    let mut x = 0x9e3779b97f4a7c15u64;
    for i in 0..500 {
        let len = 1 + (i * 37) % 200;
        let mut g: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        g[0] = if i % 2 == 0 { 0x45 } else { 0x60 };
        bad.push(g);
    }
    for b in &bad {
        port.inject(b).expect("bad packets are the stack's to drop");
    }
    // Garbage may draw ICMP errors or RSTs (garbage TCP to a closed
    // port is a segment like any other), but never a SYN-ACK: none of it
    // was a valid SYN to the listener.
    while let Ok(pkt) = port.recv_packet(QUIET) {
        let ip = parse_ip(&pkt);
        if ip.proto == 6 {
            let t = parse_tcp(&ip);
            assert_eq!(t.flags & SYN, 0, "answered a damaged SYN: {t:?}");
        }
    }
    let errors_after = stats(&p, "pkt0").rx_errors;
    assert!(
        errors_after >= errors_before + 5,
        "bad frames counted: {errors_before} -> {errors_after}"
    );
    // The stack still works.
    port.inject(&good_syn(41005)).unwrap();
    let t = next_tcp(&port);
    assert_eq!(t.flags, SYN | ACK);
    assert_eq!(t.ack, 2);
}

#[test]
fn the_outgoing_queue_is_bounded_and_counts_drops() {
    let (_k, p, port) = kernel_with_pkt();
    let u = UdpSocket::bind(&p, sa(KERNEL, 0)).unwrap();
    let before = stats(&p, "pkt0");
    for i in 0..1100u32 {
        u.send_to(&i.to_be_bytes(), sa(US, 9)).unwrap();
    }
    assert_eq!(port.pending(), rump::net::PKT_QUEUE_LEN);
    let after = stats(&p, "pkt0");
    assert_eq!(
        after.tx_dropped - before.tx_dropped,
        1100 - rump::net::PKT_QUEUE_LEN as u64
    );
    // The oldest are kept, in order.
    for i in 0..3u32 {
        let ip = parse_ip(&port.recv_packet(WAIT).unwrap());
        assert_eq!(parse_udp(&ip).2, i.to_be_bytes());
    }
}

#[test]
fn packets_on_a_down_interface_are_dropped() {
    let (_k, p, port) = kernel_with_pkt();
    let u = UdpSocket::bind(&p, sa(KERNEL, 5000)).unwrap();
    u.set_read_timeout(QUIET).unwrap();
    sys::if_set_up(&p, "pkt0", false).unwrap();
    let before = stats(&p, "pkt0").rx_dropped;
    port.inject(&udp_packet(sa(US, 1), sa(KERNEL, 5000), b"x"))
        .unwrap();
    assert_eq!(stats(&p, "pkt0").rx_dropped, before + 1);
    let mut buf = [0u8; 8];
    assert_eq!(
        u.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
    sys::if_set_up(&p, "pkt0", true).unwrap();
    port.inject(&udp_packet(sa(US, 1), sa(KERNEL, 5000), b"y"))
        .unwrap();
    u.set_read_timeout(WAIT).unwrap();
    let (n, _) = u.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"y");
}

#[test]
fn ports_and_configuration() {
    let k = Kernel::builder().net().boot().unwrap();
    let p = k.process().unwrap();
    let errno = |r: std::io::Result<PacketPort>| r.unwrap_err().raw_os_error();
    assert_eq!(
        errno(rump::net::packet_port(&k, "pkt0")),
        Some(Errno::ENXIO.raw())
    );
    assert_eq!(
        errno(rump::net::packet_port(&p, "lo0")),
        Some(Errno::ENODEV.raw())
    );
    // The configuration calls make and list it like any interface; a
    // unit-less name takes the lowest free unit.
    assert_eq!(sys::if_create(&p, "pkt").unwrap(), "pkt0");
    assert_eq!(sys::if_create(&p, "pkt").unwrap(), "pkt1");
    assert_eq!(sys::if_create(&p, "pkt1"), Err(Errno::EEXIST));
    let info = sys::if_list(&p)
        .unwrap()
        .into_iter()
        .find(|i| i.name == "pkt1")
        .unwrap();
    assert_eq!(info.kind, "pkt");
    assert_eq!(info.mtu, 1500);
    assert_eq!(info.mac, [0; 6], "no link-layer address");
    assert!(
        info.addrs
            .iter()
            .any(|(a, _)| matches!(a, IpAddr::V6(v) if v.segments()[0] == 0xfe80)),
        "an IPv6 link-local address: {info:?}"
    );
    // Its link is the port: it cannot be set, nor a MAC.
    assert_eq!(sys::if_set_link(&p, "pkt1", "bus-x"), Err(Errno::EINVAL));
    assert_eq!(sys::if_set_link(&p, "pkt1", ""), Err(Errno::EINVAL));
    assert_eq!(
        sys::if_set_mac(&p, "pkt1", [2, 0, 0, 0, 0, 1]),
        Err(Errno::EINVAL)
    );
    let a = rump::net::packet_port(&k, "pkt1").unwrap();
    let b = rump::net::packet_port(&p, "pkt1").unwrap();
    // Two pkt interfaces are independent; two ports of one share it.
    sys::if_add_addr(&p, "pkt1", IpAddr::V4(KERNEL), 24).unwrap();
    sys::if_set_up(&p, "pkt1", true).unwrap();
    let u = UdpSocket::bind(&p, sa(KERNEL, 0)).unwrap();
    u.send_to(b"1", sa(US, 9)).unwrap();
    assert_eq!((a.pending(), b.pending()), (1, 1));
    b.recv_packet(WAIT).unwrap();
    assert_eq!(a.pending(), 0);
    let other = rump::net::packet_port(&p, "pkt0").unwrap();
    assert_eq!(other.pending(), 0);
    // A kernel without the network stack has no ports.
    let bare = Kernel::boot().unwrap();
    assert_eq!(
        errno(rump::net::packet_port(&bare, "pkt0")),
        Some(Errno::EAFNOSUPPORT.raw())
    );
}

#[test]
fn if_destroy_wakes_a_blocked_reader() {
    let (_k, p, port) = kernel_with_pkt();
    let reader = port.clone();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        tx.send(reader.recv(&mut buf, None)).unwrap();
    });
    // It is asleep, not finished.
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    sys::if_destroy(&p, "pkt0").unwrap();
    let r = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the reader woke");
    assert_eq!(r.unwrap_err().raw_os_error(), Some(Errno::ENXIO.raw()));
    t.join().unwrap();
    // The port is dead for good, even when the name comes back.
    let again = rump::net::pkt_ifup(&p, "pkt0", KERNEL, 24).unwrap();
    let e = port.inject(&udp_packet(sa(US, 1), sa(KERNEL, 1), b"x"));
    assert_eq!(e.unwrap_err().raw_os_error(), Some(Errno::ENXIO.raw()));
    let mut buf = [0u8; 8];
    let e = port.recv(&mut buf, Some(Duration::ZERO));
    assert_eq!(e.unwrap_err().raw_os_error(), Some(Errno::ENXIO.raw()));
    // The new interface works.
    let u = UdpSocket::bind(&p, sa(KERNEL, 0)).unwrap();
    u.send_to(b"new", sa(US, 9)).unwrap();
    let ip = parse_ip(&again.recv_packet(WAIT).unwrap());
    assert_eq!(parse_udp(&ip).2, b"new");
}

#[test]
fn halt_wakes_a_blocked_reader() {
    let (k, _p, port) = kernel_with_pkt();
    let reader = port.clone();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        tx.send(reader.recv(&mut buf, None)).unwrap();
    });
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    k.halt();
    let r = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the reader woke");
    assert_eq!(r.unwrap_err().raw_os_error(), Some(Errno::ESHUTDOWN.raw()));
    t.join().unwrap();
    let e = port.inject(&[0x45; 20]);
    assert_eq!(e.unwrap_err().raw_os_error(), Some(Errno::ESHUTDOWN.raw()));
}

/// An established connection from us to a listener on the kernel: the
/// accepted stream and both sides' next sequence numbers.
struct Est {
    s: rump::net::TcpStream,
    us: SocketAddr,
    them: SocketAddr,
    our_seq: u32,
    their_next: u32,
}

impl Est {
    fn open(port: &PacketPort, l: &TcpListener, sport: u16, isn: u32) -> Est {
        let them = l.local_addr().unwrap();
        let us = sa(US, sport);
        let synack = handshake_syn(port, us, them, isn);
        let e = Est {
            s: {
                port.inject(
                    &Seg {
                        src: us,
                        dst: them,
                        seq: isn.wrapping_add(1),
                        ack: synack.seq.wrapping_add(1),
                        flags: ACK,
                        window: 65535,
                        options: &[],
                        payload: &[],
                    }
                    .build(),
                )
                .unwrap();
                l.accept().unwrap().0
            },
            us,
            them,
            our_seq: isn.wrapping_add(1),
            their_next: synack.seq.wrapping_add(1),
        };
        e.s.set_read_timeout(WAIT).unwrap();
        e
    }

    fn seg(&self, seq_off: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        Seg {
            src: self.us,
            dst: self.them,
            seq: self.our_seq.wrapping_add(seq_off),
            ack: self.their_next,
            flags,
            window: 65535,
            options: &[],
            payload,
        }
        .build()
    }
}

#[test]
fn out_of_order_and_duplicate_segments() {
    let (_k, p, port) = kernel_with_pkt();
    let l = TcpListener::bind(&p, sa(KERNEL, 82)).unwrap();
    let mut e = Est::open(&port, &l, 40010, 5000);
    // The second segment first: a duplicate ACK for what is missing.
    port.inject(&e.seg(5, PSH | ACK, b"world")).unwrap();
    let a = next_tcp(&port);
    assert_eq!(a.flags & (SYN | RST | FIN), 0);
    assert_eq!(a.ack, e.our_seq, "still waiting for the first five bytes");
    // The gap filled: everything is acknowledged and read in order.
    port.inject(&e.seg(0, PSH | ACK, b"hello")).unwrap();
    let a = next_tcp(&port);
    assert_eq!(a.ack, e.our_seq.wrapping_add(10));
    let mut got = Vec::new();
    let mut buf = [0u8; 32];
    while got.len() < 10 {
        let n = e.s.read(&mut buf).unwrap();
        assert_ne!(n, 0);
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"helloworld");
    // A duplicate of old data is acknowledged again (RFC 9293 §3.10.7.4)
    // and not delivered twice.
    port.inject(&e.seg(0, PSH | ACK, b"hello")).unwrap();
    let a = next_tcp(&port);
    assert_eq!(a.ack, e.our_seq.wrapping_add(10));
    e.our_seq = e.our_seq.wrapping_add(10);
    port.inject(&e.seg(0, PSH | ACK, b"!")).unwrap();
    let n = e.s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"!");
}

#[test]
fn resets_in_and_out_of_the_window() {
    let (_k, p, port) = kernel_with_pkt();
    let l = TcpListener::bind(&p, sa(KERNEL, 83)).unwrap();
    let e = Est::open(&port, &l, 40020, 9000);
    // Far outside the window: dropped (RFC 9293 §3.10.7.4), the
    // connection lives on.
    port.inject(&e.seg(0x4000_0000, RST, &[])).unwrap();
    port.inject(&e.seg(0, PSH | ACK, b"alive")).unwrap();
    let mut buf = [0u8; 16];
    let n = (&e.s).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"alive");
    // At the next expected sequence number: the connection is reset.
    let a = next_tcp(&port);
    assert_eq!(a.ack, e.our_seq.wrapping_add(5));
    port.inject(&e.seg(5, RST, &[])).unwrap();
    let err = (&e.s).read(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset, "{err}");
    assert_quiet(&port, "a RST is not answered");
}

#[test]
fn the_kernel_resets_when_its_socket_closes_with_unread_data() {
    let (_k, p, port) = kernel_with_pkt();
    let l = TcpListener::bind(&p, sa(KERNEL, 84)).unwrap();
    let e = Est::open(&port, &l, 40030, 100);
    port.inject(&e.seg(0, PSH | ACK, b"unread")).unwrap();
    let a = next_tcp(&port);
    assert_eq!(a.ack, e.our_seq.wrapping_add(6));
    let their_next = e.their_next;
    drop(e.s);
    // RFC 9293 §3.10.4 (RFC 2525 §2.17): closing with data unread sends a
    // RST, not a FIN.
    let r = next_tcp(&port);
    assert_ne!(r.flags & RST, 0, "{r:?}");
    assert_eq!(r.seq, their_next);
}

#[test]
fn a_zero_window_is_probed_then_data_flows() {
    let (_k, p, port) = kernel_with_pkt();
    let l = TcpListener::bind(&p, sa(KERNEL, 85)).unwrap();
    let e = Est::open(&port, &l, 40040, 7);
    let ack_with_window = |ack: u32, window: u16| {
        Seg {
            src: e.us,
            dst: e.them,
            seq: e.our_seq,
            ack,
            flags: ACK,
            window,
            options: &[],
            payload: &[],
        }
        .build()
    };
    port.inject(&ack_with_window(e.their_next, 0)).unwrap();
    (&e.s).write_all(b"waiting data").unwrap();
    // Nothing beyond the window goes out; after a while the sender
    // probes it (RFC 9293 §3.8.6.1).
    let t = Instant::now();
    let probe = loop {
        let d = next_tcp(&port);
        assert_eq!(d.flags & (SYN | RST), 0);
        if !d.payload.is_empty() || d.seq != e.their_next {
            break d;
        }
        assert!(t.elapsed() < Duration::from_secs(30), "no probe");
    };
    assert!(
        probe.payload.len() <= 1,
        "a probe, not data into a zero window: {probe:?}"
    );
    // The window opens: the data follows in sequence.
    let acked = e.their_next.wrapping_add(probe.payload.len() as u32);
    port.inject(&ack_with_window(acked, 65535)).unwrap();
    let mut got = probe.payload.clone();
    let mut next = acked;
    while got.len() < 12 {
        let d = next_tcp(&port);
        if d.payload.is_empty() {
            continue;
        }
        assert_eq!(d.seq, next);
        next = next.wrapping_add(d.payload.len() as u32);
        got.extend_from_slice(&d.payload);
    }
    assert_eq!(got, b"waiting data");
}

#[test]
fn the_kernel_closes_first() {
    let (_k, p, port) = kernel_with_pkt();
    let l = TcpListener::bind(&p, sa(KERNEL, 86)).unwrap();
    let mut e = Est::open(&port, &l, 40050, 31337);
    e.s.shutdown(std::net::Shutdown::Write).unwrap();
    let f = next_tcp(&port);
    assert_eq!(f.flags & (FIN | ACK | SYN | RST), FIN | ACK, "{f:?}");
    assert_eq!(f.seq, e.their_next);
    e.their_next = e.their_next.wrapping_add(1);
    // We acknowledge their FIN and may still send: half-close.
    port.inject(&e.seg(0, PSH | ACK, b"late")).unwrap();
    let a = next_tcp(&port);
    assert_eq!((a.seq, a.ack), (e.their_next, e.our_seq.wrapping_add(4)));
    let mut buf = [0u8; 8];
    let n = (&e.s).read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"late");
    e.our_seq = e.our_seq.wrapping_add(4);
    // Our FIN: acknowledged, and the socket reads EOF.
    port.inject(&e.seg(0, FIN | ACK, &[])).unwrap();
    let a = next_tcp(&port);
    assert_eq!(a.ack, e.our_seq.wrapping_add(1), "our FIN acknowledged");
    assert_eq!(a.flags & (FIN | SYN | RST), 0, "{a:?}");
    assert_eq!((&e.s).read(&mut buf).unwrap(), 0);
    assert_quiet(&port, "both sides closed");
}

#[test]
fn a_blocked_reader_wakes_for_a_packet() {
    let (_k, p, port) = kernel_with_pkt();
    let _l = TcpListener::bind(&p, sa(KERNEL, 87)).unwrap();
    let reader = port.clone();
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        tx.send(reader.recv_packet(None)).unwrap();
    });
    assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
    // A SYN injected from this thread makes the stack answer; the
    // answer wakes the reader.
    port.inject(
        &Seg {
            src: sa(US, 40060),
            dst: sa(KERNEL, 87),
            seq: 1,
            ack: 0,
            flags: SYN,
            window: 1000,
            options: &[],
            payload: &[],
        }
        .build(),
    )
    .unwrap();
    let pkt = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the reader woke")
        .unwrap();
    let t2 = parse_tcp(&parse_ip(&pkt));
    assert_eq!((t2.flags, t2.ack), (SYN | ACK, 2));
    t.join().unwrap();
}

#[test]
fn a_capture_holds_both_directions() {
    let (_k, p, port) = kernel_with_pkt();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pkt0.pcap");
    sys::if_set_pcap(&p, "pkt0", Some(path.to_str().unwrap())).unwrap();
    let syn = Seg {
        src: sa(US, 40070),
        dst: sa(KERNEL, 9),
        seq: 1,
        ack: 0,
        flags: SYN,
        window: 1000,
        options: &[],
        payload: &[],
    }
    .build();
    port.inject(&syn).unwrap();
    let rst = port.recv_packet(WAIT).unwrap();
    sys::if_set_pcap(&p, "pkt0", None).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let h = ::net::pcap::FileHeader::parse(&bytes).unwrap();
    assert_eq!(h.linktype, ::net::pcap::LINKTYPE_ETHERNET);
    let mut off = ::net::pcap::FileHeader::LEN;
    let mut frames = Vec::new();
    while off < bytes.len() {
        let r = ::net::pcap::RecordHeader::parse(&bytes[off..]).unwrap();
        off += ::net::pcap::RecordHeader::LEN;
        frames.push(bytes[off..off + r.caplen as usize].to_vec());
        off += r.caplen as usize;
    }
    // Each packet behind a zero-address Ethernet header.
    let framed = |pkt: &[u8]| {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(pkt);
        f
    };
    assert_eq!(frames, vec![framed(&syn), framed(&rst)]);
}
