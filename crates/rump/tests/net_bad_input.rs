//! Bad input: random bytes and truncated or garbled Ethernet, ARP, IPv4,
//! ICMP, TCP and UDP frames fed into interfaces never panic and leave the
//! kernel working; a flood of 10,000 SYNs keeps memory bounded and the
//! listener serving.

mod net_util;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};

use net_util::*;
use rump::net::{TcpListener, TcpStream, UdpSocket};
use rump::sys;

/// xorshift64: a deterministic source of garbage.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn mac_of(p: &rump::Process, ifname: &str) -> [u8; 6] {
    sys::if_list(p)
        .unwrap()
        .into_iter()
        .find(|i| i.name == ifname)
        .unwrap()
        .mac
}

fn csum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in data.chunks(2) {
        sum += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A well-formed Ethernet + IPv4 frame around `l4` (protocol `proto`).
fn ip_frame(dst_mac: [u8; 6], src: Ipv4Addr, dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&dst_mac);
    f.extend_from_slice(&[2, 0, 0, 0, 0, 0x42]);
    f.extend_from_slice(&[0x08, 0x00]);
    let total = 20 + l4.len();
    let mut ip = vec![
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        1,
        0x40,
        0,
        64,
        proto,
        0,
        0,
    ];
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = csum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(l4);
    f
}

/// A TCP header (no options) with a correct checksum.
fn tcp_seg(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: &[u8],
) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&sport.to_be_bytes());
    t.extend_from_slice(&dport.to_be_bytes());
    t.extend_from_slice(&seq.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    t.extend_from_slice(&[0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src.octets());
    pseudo.extend_from_slice(&dst.octets());
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(t.len() as u16).to_be_bytes());
    pseudo.extend_from_slice(&t);
    let c = csum(&pseudo);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// Frames of every kind we parse, well formed, as seeds for garbling.
fn seeds(mac: [u8; 6], me: Ipv4Addr, peer: Ipv4Addr) -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    // ARP request for us.
    let mut arp = Vec::new();
    arp.extend_from_slice(&[0xff; 6]);
    arp.extend_from_slice(&[2, 0, 0, 0, 0, 0x42, 0x08, 0x06]);
    arp.extend_from_slice(&[0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 0x42]);
    arp.extend_from_slice(&peer.octets());
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&me.octets());
    v.push(arp);
    // TCP: SYN, data, FIN, RST to a listener and to a closed port.
    for (port, flags) in [
        (80u16, 0x02u8),
        (80, 0x18),
        (80, 0x11),
        (80, 0x04),
        (81, 0x02),
    ] {
        v.push(ip_frame(
            mac,
            peer,
            me,
            6,
            &tcp_seg(peer, me, 4444, port, 1000, flags, b"data"),
        ));
    }
    // UDP to an open and a closed port.
    for port in [53u16, 54] {
        let mut u = vec![0x11, 0x5c, (port >> 8) as u8, port as u8, 0, 12, 0, 0];
        u.extend_from_slice(b"four");
        v.push(ip_frame(mac, peer, me, 17, &u));
    }
    // ICMP echo request, echo reply, unreachable quoting a TCP segment.
    v.push(ip_frame(mac, peer, me, 1, &[8, 0, 0xf7, 0xfe, 0, 1, 0, 0]));
    v.push(ip_frame(mac, peer, me, 1, &[0, 0, 0xff, 0xfe, 0, 1, 0, 0]));
    let quoted = ip_frame(mac, me, peer, 6, &tcp_seg(me, peer, 80, 4444, 1, 0x12, b""));
    let mut unreach = vec![3, 1, 0, 0, 0, 0, 0, 0];
    unreach.extend_from_slice(&quoted[14..]);
    v.push(ip_frame(mac, peer, me, 1, &unreach));
    // Unknown protocol, a fragment, and a packet to be forwarded.
    v.push(ip_frame(mac, peer, me, 99, b"????"));
    let mut frag = ip_frame(mac, peer, me, 17, &[0; 16]);
    frag[20] = 0x20;
    v.push(frag);
    v.push(ip_frame(
        mac,
        peer,
        Ipv4Addr::new(203, 0, 113, 1),
        17,
        &[0; 16],
    ));
    v
}

fn kernel_still_works(pa: &rump::Process, pb: &rump::Process, port: u16) {
    let l = TcpListener::bind(pb, addr(2, port)).unwrap();
    let mut c = TcpStream::connect(pa, addr(2, port)).unwrap();
    let (mut s, _) = l.accept().unwrap();
    c.write_all(b"still here").unwrap();
    let mut b = [0u8; 10];
    s.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"still here");
}

#[test]
fn random_truncated_and_garbled_frames_never_panic() {
    within(240, || {
        let mut ks = bus_kernels(2);
        let (kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let _l = TcpListener::bind(&pb, addr(2, 80)).unwrap();
        let _u = UdpSocket::bind(&pb, addr(2, 53)).unwrap();
        sys::sysctl_set(
            &pb,
            "net.inet.ip.forwarding",
            rump::kern::sysctl::SysctlValue::Int(1),
        )
        .unwrap();
        let stack = rump::net::stack(&kb).unwrap();
        let mac = mac_of(&pb, "bus0");
        let mut rng = Rng(0x5eed_1234_abcd_ef01);
        // Pure noise, of every length up to a jumbo frame.
        for len in (0..2000).chain([9000, 65535, 70000]) {
            let f = rng.bytes(len);
            stack.inject("bus0", &f).unwrap();
            stack.inject("lo0", &f).unwrap();
        }
        // Noise behind a header that gets past the MAC filter.
        for _ in 0..5000 {
            let mut f = mac.to_vec();
            f.extend(rng.bytes(6));
            f.extend_from_slice(if rng.below(2) == 0 { &[8, 0] } else { &[8, 6] });
            let n = rng.below(1600);
            f.extend(rng.bytes(n));
            stack.inject("bus0", &f).unwrap();
        }
        // Every seed truncated at every length, and garbled many ways.
        let seeds = seeds(mac, ip(2), ip(1));
        for s in &seeds {
            for cut in 0..s.len() {
                stack.inject("bus0", &s[..cut]).unwrap();
            }
            for _ in 0..400 {
                let mut f = s.clone();
                for _ in 0..1 + rng.below(4) {
                    let i = 14 + rng.below(f.len() - 14);
                    f[i] ^= 1 << rng.below(8);
                }
                if rng.below(4) == 0 {
                    // Lie about lengths: total length, header length, UDP length.
                    let i = [16, 17, 14, 38, 39, 46][rng.below(6)];
                    if i < f.len() {
                        f[i] = rng.next() as u8;
                    }
                }
                if rng.below(8) == 0 {
                    let n = rng.below(64);
                    f.extend(rng.bytes(n));
                }
                stack.inject("bus0", &f).unwrap();
                stack.inject("lo0", &f).unwrap();
            }
        }
        let st = sys::net_stats(&pb).unwrap();
        assert!(st.bad_frames + st.ip_bad_header > 100, "{st:?}");
        kernel_still_works(&pa, &pb, 81);
    });
}

#[test]
fn syn_flood_keeps_memory_bounded_and_the_listener_serving() {
    within(240, || {
        let mut ks = bus_kernels(2);
        let (kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        const BACKLOG: usize = 64;
        let l = TcpListener::bind_with_backlog(&pb, addr(2, 80), BACKLOG as i32).unwrap();
        let stack = rump::net::stack(&kb).unwrap();
        let mac = mac_of(&pb, "bus0");
        let before = stack.socket_count();
        let mut rng = Rng(42);
        let mut peak = 0;
        for i in 0..10_000u32 {
            // Spoofed sources all over the subnet, random ports: none of
            // them will ever finish the handshake.
            let src = Ipv4Addr::new(192, 0, 2, 3 + rng.below(250) as u8);
            let sport = 1024 + rng.below(60000) as u16;
            let seg = tcp_seg(src, ip(2), sport, 80, i.wrapping_mul(7919), 0x02, b"");
            stack
                .inject("bus0", &ip_frame(mac, src, ip(2), 6, &seg))
                .unwrap();
            peak = peak.max(stack.socket_count());
        }
        // Embryonic connections are capped by the backlog (the oldest is
        // dropped for the newest), ARP state by its table limit.
        assert!(
            peak <= before + BACKLOG + 1,
            "peak {peak} sockets (before {before})"
        );
        assert!(sys::arp_list(&pb).unwrap().len() <= 4096);
        let st = sys::net_stats(&pb).unwrap();
        assert!(st.tcp_listen_drops >= 10_000 - BACKLOG as u64 - 1, "{st:?}");
        // A real client still gets through, and its data too.
        for n in 0..3 {
            let mut c = TcpStream::connect(&pa, addr(2, 80)).unwrap();
            let (mut s, peer) = l.accept().unwrap();
            assert_eq!(peer.ip(), ip(1));
            c.write_all(&[n; 100]).unwrap();
            let mut b = [0u8; 100];
            s.read_exact(&mut b).unwrap();
            assert_eq!(b, [n; 100]);
        }
    });
}

#[test]
fn frames_for_other_hosts_and_loops_are_harmless() {
    within(60, || {
        let mut ks = bus_kernels(2);
        let (kb, pb) = ks.pop().unwrap();
        let (_ka, pa) = ks.pop().unwrap();
        let stack = rump::net::stack(&kb).unwrap();
        let mac = mac_of(&pb, "bus0");
        // Forwarding off: a packet for elsewhere is dropped, not routed.
        let f = ip_frame(mac, ip(1), Ipv4Addr::new(203, 0, 113, 9), 17, &[0; 16]);
        stack.inject("bus0", &f).unwrap();
        assert!(sys::net_stats(&pb).unwrap().ip_not_forwarded >= 1);
        // Forwarding on, a packet that would go back out the way it came
        // with TTL 1 gets a time exceeded, never a loop.
        sys::sysctl_set(
            &pb,
            "net.inet.ip.forwarding",
            rump::kern::sysctl::SysctlValue::Int(1),
        )
        .unwrap();
        let mut f = ip_frame(mac, ip(1), ip(77), 17, &[0; 16]);
        f[22] = 1;
        stack.inject("bus0", &f).unwrap();
        assert!(sys::net_stats(&pb).unwrap().icmp_out_time_exceeded >= 1);
        // Packets from martian sources are dropped.
        let f = ip_frame(mac, Ipv4Addr::new(255, 255, 255, 255), ip(2), 17, &[0; 16]);
        stack.inject("bus0", &f).unwrap();
        let f = ip_frame(
            mac,
            Ipv4Addr::new(224, 0, 0, 1),
            ip(2),
            6,
            &tcp_seg(ip(1), ip(2), 1, 80, 0, 2, b""),
        );
        stack.inject("bus0", &f).unwrap();
        // An unknown interface name is an error, not a panic.
        assert!(stack.inject("bus9", &f).is_err());
        kernel_still_works(&pa, &pb, 82);
        let _ = SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0);
    });
}
