//! IPv6 (RFC 8200), ICMPv6 (RFC 4443) and neighbour discovery (RFC 4861):
//! the IPv6 counterpart of `ip.rs`.
//!
//! Input: [`Core::ip6_input`] validates the header, accepts packets for
//! this host (its addresses, all-nodes, the solicited-node groups of its
//! addresses), walks the extension headers (hop-by-hop, destination
//! options and routing headers without segments left are skipped;
//! fragments are reassembled), and hands the upper layer a packet whose
//! IPv6 header is directly followed by the TCP, UDP or ICMPv6 header.
//! Packets for others are forwarded when `net.inet6.ip6.forwarding` is on
//! (hop limit, ICMPv6 time exceeded, destination unreachable, packet too
//! big: a router never fragments). Output: [`Core::ip6_output`] routes
//! and [`Core::send_via`] resolves the next hop by neighbour discovery.
//!
//! Addresses are configured, not autoconfigured: every Ethernet interface
//! has its EUI-64 link-local address, other addresses are added by hand
//! (no router advertisements, no duplicate address detection). Every
//! parser checks lengths first.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv6Addr};

use smoltcp::wire::{Icmpv6Packet, IpAddress, IpProtocol, Ipv6Packet, TcpPacket, UdpPacket};

use kern::Errno;

use crate::iface::{in_subnet6, solicited_node, IfKind, ALL_NODES, ETH_HDR};
use crate::pool::FramePool;
use crate::route::RouteHit;
use crate::stack::{Core, Effects};

/// Length of the fixed IPv6 header.
pub(crate) const IPV6_HDR: usize = 40;
/// An ICMPv6 error never exceeds the minimum MTU (RFC 4443 §2.4(c)).
const ICMP6_ERROR_MAX: usize = crate::frag::IPV6_MIN_MTU;
/// Hop limit of neighbour discovery messages (RFC 4861 §7.1).
const ND_HOP_LIMIT: u8 = 255;
/// Extension headers walked before giving up on a packet.
const MAX_EXT_HEADERS: usize = 8;
/// ICMPv6 errors sent: a burst of this many, refilled at this rate per
/// second (RFC 4443 §2.4(f) requires a limit).
const ICMP6_BURST: u32 = 100;
const ICMP6_PER_SEC: u64 = 1000;

const ICMP6_ECHO_REQUEST: u8 = 128;
const ICMP6_ECHO_REPLY: u8 = 129;
const ND_NEIGHBOR_SOLICIT: u8 = 135;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_SOURCE_LLADDR: u8 = 1;
const ND_OPT_TARGET_LLADDR: u8 = 2;

/// ICMPv6 errors we send (RFC 4443 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Icmp6Error {
    NoRoute,
    BeyondScope,
    AddrUnreachable,
    PortUnreachable,
    /// With the next hop's MTU.
    PacketTooBig(u32),
    HopLimitExceeded,
    /// Fragment reassembly time exceeded.
    ReassemblyTimeout,
    /// Parameter problem, unrecognized next header, at this offset.
    UnknownNextHeader(u32),
}

impl Icmp6Error {
    fn type_code(self) -> (u8, u8, u32) {
        match self {
            Icmp6Error::NoRoute => (1, 0, 0),
            Icmp6Error::BeyondScope => (1, 2, 0),
            Icmp6Error::AddrUnreachable => (1, 3, 0),
            Icmp6Error::PortUnreachable => (1, 4, 0),
            Icmp6Error::PacketTooBig(mtu) => (2, 0, mtu),
            Icmp6Error::HopLimitExceeded => (3, 0, 0),
            Icmp6Error::ReassemblyTimeout => (3, 1, 0),
            Icmp6Error::UnknownNextHeader(at) => (4, 1, at),
        }
    }
}

/// The errno an ICMPv6 error means for the socket it concerns (as Linux's
/// `icmpv6_err_convert`).
pub(crate) fn icmp6_errno(ty: u8, code: u8) -> Errno {
    match (ty, code) {
        (1, 0) => Errno::ENETUNREACH,
        (1, 1) => Errno::EACCES,
        (1, 4) => Errno::ECONNREFUSED,
        (1, _) => Errno::EHOSTUNREACH,
        (2, _) => Errno::EMSGSIZE,
        (4, _) => Errno::EPROTO,
        _ => Errno::EHOSTUNREACH,
    }
}

/// Writes an IPv6 header for a packet of `payload_len` bytes at
/// `buf[ETH_HDR..]`.
pub(crate) fn emit_ipv6(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    proto: IpProtocol,
    hop_limit: u8,
    payload_len: usize,
) {
    let mut p = Ipv6Packet::new_unchecked(&mut buf[ETH_HDR..]);
    p.set_version(6);
    p.set_traffic_class(0);
    p.set_flow_label(0);
    p.set_payload_len(payload_len as u16);
    p.set_next_header(proto);
    p.set_hop_limit(hop_limit);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
}

/// Fills in the TCP, UDP or ICMPv6 checksum of the IPv6 packet in `ip`
/// (whose upper-layer header follows the fixed header).
pub(crate) fn fill_checksums6(ip: &mut [u8]) {
    let Ok(mut p) = Ipv6Packet::new_checked(&mut *ip) else {
        return;
    };
    let (src, dst, proto) = (p.src_addr(), p.dst_addr(), p.next_header());
    let (s, d) = (IpAddress::Ipv6(src), IpAddress::Ipv6(dst));
    let payload = p.payload_mut();
    match proto {
        IpProtocol::Tcp => {
            if let Ok(mut t) = TcpPacket::new_checked(payload) {
                t.fill_checksum(&s, &d);
            }
        }
        IpProtocol::Udp => {
            if let Ok(mut u) = UdpPacket::new_checked(payload) {
                u.fill_checksum(&s, &d);
            }
        }
        IpProtocol::Icmpv6 => {
            if let Ok(mut i) = Icmpv6Packet::new_checked(payload) {
                i.fill_checksum(&src, &dst);
            }
        }
        _ => {}
    }
}

/// Fields of the packet quoted in an ICMPv6 error (which may be
/// truncated): addresses, upper-layer protocol and its first 8 bytes.
pub(crate) struct Quoted6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub proto: u8,
    pub l4: [u8; 8],
}

impl Quoted6 {
    pub fn parse(data: &[u8]) -> Option<Quoted6> {
        if data.len() < IPV6_HDR || data[0] >> 4 != 6 {
            return None;
        }
        let (proto, off) = match upper_layer(data) {
            Ok(Upper::Proto(p, off)) => (p, off),
            _ => return None,
        };
        let l4 = data.get(off..off + 8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(l4);
        let addr = |at: usize| {
            let mut a = [0u8; 16];
            a.copy_from_slice(&data[at..at + 16]);
            Ipv6Addr::from(a)
        };
        Some(Quoted6 {
            src: addr(8),
            dst: addr(24),
            proto,
            l4: b,
        })
    }

    pub fn ports(&self) -> (u16, u16) {
        (
            u16::from_be_bytes([self.l4[0], self.l4[1]]),
            u16::from_be_bytes([self.l4[2], self.l4[3]]),
        )
    }
}

/// Where an IPv6 packet's upper layer starts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Upper {
    /// Protocol number and offset of its header.
    Proto(u8, usize),
    /// A fragment header at this offset (and the offset of the next-header
    /// byte that names it).
    Fragment(usize, usize),
    /// No next header (59), or a routing header still to be processed.
    Discard,
    /// Malformed: a parameter problem at this offset.
    Bad(usize),
}

/// Walks the extension headers of `pkt` (a whole IPv6 packet).
pub(crate) fn upper_layer(pkt: &[u8]) -> Result<Upper, ()> {
    if pkt.len() < IPV6_HDR {
        return Err(());
    }
    let mut proto = pkt[6];
    let mut nh_at = 6;
    let mut off = IPV6_HDR;
    for i in 0..MAX_EXT_HEADERS {
        match proto {
            // Hop-by-hop options only directly after the header (RFC 8200 §4.1).
            0 if i > 0 => return Ok(Upper::Bad(nh_at)),
            0 | 60 | 43 => {
                let h = pkt.get(off..off + 8).ok_or(())?;
                if proto == 43 && h[3] != 0 {
                    // A routing header with segments left: we route no
                    // source-routed packets (RFC 5095 deprecated type 0).
                    return Ok(Upper::Discard);
                }
                nh_at = off;
                proto = h[0];
                off += (h[1] as usize + 1) * 8;
                if off > pkt.len() {
                    return Err(());
                }
            }
            44 => return Ok(Upper::Fragment(off, nh_at)),
            59 => return Ok(Upper::Discard),
            p => return Ok(Upper::Proto(p, off)),
        }
    }
    Ok(Upper::Discard)
}

/// `pkt` with its extension headers before `off` removed: the fixed
/// header, naming `proto` directly, followed by the upper layer.
fn without_ext_headers(pkt: &[u8], proto: u8, off: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(pkt.len() - (off - IPV6_HDR));
    v.extend_from_slice(&pkt[..IPV6_HDR]);
    v.extend_from_slice(&pkt[off..]);
    let plen = (v.len() - IPV6_HDR) as u16;
    v[4..6].copy_from_slice(&plen.to_be_bytes());
    v[6] = proto;
    v
}

/// Link-layer address option of a neighbour discovery message.
fn nd_lladdr(opts: &[u8], want: u8) -> Result<Option<[u8; 6]>, ()> {
    let mut o = opts;
    while !o.is_empty() {
        if o.len() < 2 {
            return Err(());
        }
        let len = o[1] as usize * 8;
        if len == 0 || len > o.len() {
            return Err(());
        }
        if o[0] == want && len >= 8 {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&o[2..8]);
            return Ok(Some(mac));
        }
        o = &o[len..];
    }
    Ok(None)
}

/// A neighbour solicitation or advertisement about `target`, carrying our
/// link-layer address in `option` (RFC 4861 §4.3, §4.4).
struct Nd {
    ty: u8,
    flags: u8,
    target: Ipv6Addr,
    option: u8,
    mac: [u8; 6],
}

impl Nd {
    /// The message from `src` to `to` in a frame buffer.
    fn frame(&self, pool: &FramePool, src: Ipv6Addr, to: Ipv6Addr) -> Vec<u8> {
        let len = 24 + 8;
        let mut f = pool.get(ETH_HDR + IPV6_HDR + len);
        {
            let b = &mut f[ETH_HDR + IPV6_HDR..];
            b.fill(0);
            b[0] = self.ty;
            b[4] = self.flags;
            b[8..24].copy_from_slice(&self.target.octets());
            b[24] = self.option;
            b[25] = 1;
            b[26..32].copy_from_slice(&self.mac);
        }
        emit_ipv6(&mut f, src, to, IpProtocol::Icmpv6, ND_HOP_LIMIT, len);
        Icmpv6Packet::new_unchecked(&mut f[ETH_HDR + IPV6_HDR..]).fill_checksum(&src, &to);
        f
    }
}

impl Core {
    /// Whether `ip` is an IPv6 address of this host.
    pub fn is_local_addr6(&self, ip: Ipv6Addr) -> bool {
        self.ifs.iter().flatten().any(|i| i.has_addr6(ip))
    }

    fn forwarding6_enabled(&self) -> bool {
        match self.kernel.upgrade() {
            Some(k) => k.sysctl().get_int(crate::SYSCTL_FORWARDING6) != 0,
            None => false,
        }
    }

    /// Handles one IPv6 packet that arrived on `ifindex`.
    pub fn ip6_input(&mut self, pool: &FramePool, ifindex: usize, data: &[u8], fx: &mut Effects) {
        self.stats.ip6_received += 1;
        let Some(iface) = self.iface(ifindex) else {
            return;
        };
        let is_lo = iface.kind == IfKind::Loopback;
        let Ok(p) = Ipv6Packet::new_checked(data) else {
            self.stats.ip6_bad_header += 1;
            self.stats.bad_frames += 1;
            return;
        };
        if p.version() != 6 {
            self.stats.ip6_bad_header += 1;
            self.stats.bad_frames += 1;
            return;
        }
        let pkt = &data[..IPV6_HDR + p.payload_len() as usize];
        let (src, dst) = (p.src_addr(), p.dst_addr());
        // RFC 4291 §2.5.3: ::1 never arrives from a wire; a multicast
        // source is never valid.
        if src.is_multicast() || (!is_lo && (src.is_loopback() || dst.is_loopback())) {
            self.stats.ip6_bad_header += 1;
            return;
        }
        let local = iface.accepts6(dst) || (!dst.is_multicast() && self.is_local_addr6(dst));
        if !local {
            if !dst.is_multicast() {
                self.forward6(pool, ifindex, pkt, fx);
            }
            return;
        }
        self.ip6_local(pool, ifindex, pkt, fx);
    }

    /// A packet for this host: walks its extension headers, reassembles
    /// fragments, and delivers the upper layer.
    fn ip6_local(&mut self, pool: &FramePool, ifindex: usize, pkt: &[u8], fx: &mut Effects) {
        let (proto, off) = match upper_layer(pkt) {
            Ok(Upper::Proto(proto, off)) => (proto, off),
            Ok(Upper::Fragment(off, _)) => {
                let now = self.now;
                self.reasm_expire(pool, fx);
                let r = self.reasm.input_v6(pkt, off, now);
                if let Some(whole) = self.reasm_outcome(r) {
                    // The whole has no fragment header left.
                    if !matches!(upper_layer(&whole), Ok(Upper::Fragment(..))) {
                        self.ip6_local(pool, ifindex, &whole, fx);
                    }
                }
                return;
            }
            Ok(Upper::Discard) | Err(()) => {
                self.stats.ip6_bad_header += 1;
                return;
            }
            Ok(Upper::Bad(at)) => {
                self.icmp6_error(
                    pool,
                    pkt,
                    Icmp6Error::UnknownNextHeader(at as u32),
                    Some(ifindex),
                    fx,
                );
                return;
            }
        };
        if off != IPV6_HDR {
            let flat = without_ext_headers(pkt, proto, off);
            self.ip6_deliver(pool, ifindex, &flat, proto, fx);
        } else {
            self.ip6_deliver(pool, ifindex, pkt, proto, fx);
        }
    }

    /// Delivers a packet for this host whose upper-layer header follows
    /// the fixed header.
    fn ip6_deliver(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        pkt: &[u8],
        proto: u8,
        fx: &mut Effects,
    ) {
        let Ok(p) = Ipv6Packet::new_checked(pkt) else {
            return;
        };
        let (src, dst) = (p.src_addr(), p.dst_addr());
        let multicast = dst.is_multicast();
        self.stats.ip6_delivered += 1;
        match proto {
            6 if !multicast && !src.is_unspecified() => {
                self.tcp_input(pool, ifindex, pkt, IpAddr::V6(src), IpAddr::V6(dst), fx);
            }
            17 if !src.is_unspecified() => {
                self.udp_input(
                    pool,
                    ifindex,
                    pkt,
                    IpAddr::V6(src),
                    IpAddr::V6(dst),
                    multicast,
                    fx,
                );
            }
            58 => self.icmp6_input(pool, ifindex, pkt, fx),
            6 | 17 => {}
            _ => {
                if !multicast {
                    self.icmp6_error(
                        pool,
                        pkt,
                        Icmp6Error::UnknownNextHeader(6),
                        Some(ifindex),
                        fx,
                    );
                }
            }
        }
    }

    /// The route for `dst`: this host's own addresses go to the loopback
    /// interface; link-local and link-scope multicast destinations go out
    /// of the interface `scope` names (their zone, RFC 4007); then the
    /// longest of the connected and static routes.
    pub fn route6(&self, dst: Ipv6Addr, scope: u32) -> Option<RouteHit<Ipv6Addr>> {
        if self.is_local_addr6(dst) || dst.is_loopback() {
            let lo =
                self.ifs.iter().flatten().find(|i| {
                    i.up && i.kind == IfKind::Loopback && i.has_addr6(Ipv6Addr::LOCALHOST)
                })?;
            return Some(RouteHit {
                ifindex: lo.index(),
                next_hop: dst,
                src: if dst.is_loopback() {
                    Ipv6Addr::LOCALHOST
                } else {
                    dst
                },
            });
        }
        let link_scope =
            dst.is_unicast_link_local() || (dst.is_multicast() && dst.segments()[0] & 0x000f <= 2);
        if link_scope {
            let i = self
                .iface(scope as usize)
                .filter(|i| i.up && i.kind != IfKind::Loopback)?;
            return Some(RouteHit {
                ifindex: i.index(),
                next_hop: dst,
                src: i.link_local6()?,
            });
        }
        let mut best: Option<(u8, RouteHit<Ipv6Addr>)> = None;
        for i in self.ifs.iter().flatten() {
            if !i.up || i.kind == IfKind::Loopback {
                continue;
            }
            for &(a, p) in &i.addrs6 {
                if a.is_unicast_link_local() || !in_subnet6(dst, a, p) {
                    continue;
                }
                if best.is_none_or(|(bp, _)| p > bp) {
                    best = Some((
                        p,
                        RouteHit {
                            ifindex: i.index(),
                            next_hop: dst,
                            src: a,
                        },
                    ));
                }
            }
        }
        if let Some(s) = self.routes.best_static(IpAddr::V6(dst)) {
            if best.is_none_or(|(bp, _)| s.prefix > bp) {
                let i = self.iface(s.ifindex).filter(|i| i.up)?;
                let next_hop = match s.gateway {
                    Some(IpAddr::V6(g)) => g,
                    _ => dst,
                };
                return Some(RouteHit {
                    ifindex: s.ifindex,
                    next_hop,
                    src: i.source6(dst)?,
                });
            }
        }
        best.map(|b| b.1)
    }

    /// Routes and sends the IPv6 packet in `frame[ETH_HDR..]`; `scope`
    /// names the interface for link-local destinations.
    pub fn ip6_output_scoped(
        &mut self,
        pool: &FramePool,
        frame: Vec<u8>,
        csum_ok: bool,
        scope: u32,
        fx: &mut Effects,
    ) {
        let Ok(p) = Ipv6Packet::new_checked(&frame[ETH_HDR..]) else {
            pool.put(frame);
            return;
        };
        match self.route6(p.dst_addr(), scope) {
            Some(rt) => {
                self.stats.ip6_sent += 1;
                self.send_via(
                    pool,
                    rt.ifindex,
                    IpAddr::V6(rt.next_hop),
                    frame,
                    csum_ok,
                    fx,
                );
            }
            None => {
                self.stats.ip6_no_route += 1;
                pool.put(frame);
            }
        }
    }

    /// Forwards a packet not addressed to us (RFC 8200 §3, RFC 4443).
    fn forward6(&mut self, pool: &FramePool, in_if: usize, pkt: &[u8], fx: &mut Effects) {
        let Ok(p) = Ipv6Packet::new_checked(pkt) else {
            return;
        };
        let (src, dst) = (p.src_addr(), p.dst_addr());
        if dst.is_unspecified() || dst.is_unicast_link_local() {
            return;
        }
        if !self.forwarding6_enabled() {
            self.stats.ip_not_forwarded += 1;
            return;
        }
        if src.is_unicast_link_local() || src.is_unspecified() {
            self.icmp6_error(pool, pkt, Icmp6Error::BeyondScope, Some(in_if), fx);
            return;
        }
        if p.hop_limit() <= 1 {
            self.stats.ip_ttl_exceeded += 1;
            self.icmp6_error(pool, pkt, Icmp6Error::HopLimitExceeded, Some(in_if), fx);
            return;
        }
        let Some(rt) = self.route6(dst, 0) else {
            self.stats.ip6_no_route += 1;
            self.icmp6_error(pool, pkt, Icmp6Error::NoRoute, Some(in_if), fx);
            return;
        };
        let Some(out) = self.iface(rt.ifindex) else {
            return;
        };
        if out.kind == IfKind::Loopback {
            return;
        }
        if pkt.len() > out.mtu {
            let mtu = out.mtu as u32;
            self.stats.ip_not_forwarded += 1;
            self.icmp6_error(pool, pkt, Icmp6Error::PacketTooBig(mtu), Some(in_if), fx);
            return;
        }
        let csum_ok = self.iface(in_if).is_some_and(|i| !i.offload);
        let mut frame = pool.get(ETH_HDR + pkt.len());
        frame[ETH_HDR..].copy_from_slice(pkt);
        Ipv6Packet::new_unchecked(&mut frame[ETH_HDR..]).set_hop_limit(p.hop_limit() - 1);
        self.stats.ip6_forwarded += 1;
        self.send_via(
            pool,
            rt.ifindex,
            IpAddr::V6(rt.next_hop),
            frame,
            csum_ok,
            fx,
        );
    }

    /// ICMPv6 input: echo, errors for our sockets, neighbour discovery.
    fn icmp6_input(&mut self, pool: &FramePool, ifindex: usize, pkt: &[u8], fx: &mut Effects) {
        let offload = self.iface(ifindex).is_some_and(|i| i.offload);
        let Ok(ip) = Ipv6Packet::new_checked(pkt) else {
            return;
        };
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        let Ok(icmp) = Icmpv6Packet::new_checked(ip.payload()) else {
            self.stats.bad_frames += 1;
            return;
        };
        if !offload && !icmp.verify_checksum(&src, &dst) {
            self.stats.bad_frames += 1;
            return;
        }
        self.stats.icmp6_in += 1;
        let body = ip.payload();
        let ty = body[0];
        let code = body[1];
        match ty {
            ICMP6_ECHO_REQUEST => {
                if src.is_unspecified() {
                    return;
                }
                self.stats.icmp_in_echo += 1;
                let reply_src = if dst.is_multicast() {
                    match self.iface(ifindex).and_then(|i| i.source6(src)) {
                        Some(a) => a,
                        None => return,
                    }
                } else {
                    dst
                };
                let mut f = pool.get(ETH_HDR + IPV6_HDR + body.len());
                f[ETH_HDR + IPV6_HDR..].copy_from_slice(body);
                f[ETH_HDR + IPV6_HDR] = ICMP6_ECHO_REPLY;
                emit_ipv6(
                    &mut f,
                    reply_src,
                    src,
                    IpProtocol::Icmpv6,
                    crate::ip::DEFAULT_TTL,
                    body.len(),
                );
                Icmpv6Packet::new_unchecked(&mut f[ETH_HDR + IPV6_HDR..])
                    .fill_checksum(&reply_src, &src);
                self.stats.icmp6_out += 1;
                self.stats.icmp_out_echo_reply += 1;
                self.ip6_output_scoped(pool, f, true, ifindex as u32, fx);
            }
            ICMP6_ECHO_REPLY if body.len() >= 8 => {
                let ident = u16::from_be_bytes([body[4], body[5]]);
                self.ping_deliver(ident, IpAddr::V6(src), ip.hop_limit(), body, fx);
            }
            1..=4 => {
                if ty == 1 {
                    self.stats.icmp_in_unreachable += 1;
                } else if ty == 3 {
                    self.stats.icmp_in_time_exceeded += 1;
                }
                let Some(q) = body.get(8..).and_then(Quoted6::parse) else {
                    return;
                };
                if !self.is_local_addr6(q.src) {
                    return;
                }
                let err = icmp6_errno(ty, code);
                let (sport, dport) = q.ports();
                match q.proto {
                    6 => {
                        let key = (IpAddr::V6(q.src), sport, IpAddr::V6(q.dst), dport);
                        if let Some(&r) = self.tcp_conns.get(&key) {
                            self.tcp_icmp_error(pool, r, err, fx);
                        }
                    }
                    17 => self.udp_icmp_error(
                        IpAddr::V6(q.src),
                        sport,
                        IpAddr::V6(q.dst),
                        dport,
                        err,
                        fx,
                    ),
                    58 if q.l4[0] == ICMP6_ECHO_REQUEST => {
                        let ident = u16::from_be_bytes([q.l4[4], q.l4[5]]);
                        self.ping_error(ident, err, fx);
                    }
                    _ => {}
                }
            }
            ND_NEIGHBOR_SOLICIT | ND_NEIGHBOR_ADVERT => {
                // RFC 4861 §7.1: only from the link itself.
                if ip.hop_limit() != ND_HOP_LIMIT || code != 0 || body.len() < 24 {
                    self.stats.bad_frames += 1;
                    return;
                }
                self.stats.nd_in += 1;
                let mut t = [0u8; 16];
                t.copy_from_slice(&body[8..24]);
                let target = Ipv6Addr::from(t);
                if target.is_multicast() {
                    return;
                }
                if ty == ND_NEIGHBOR_SOLICIT {
                    self.nd_solicited(pool, ifindex, src, dst, target, &body[24..], fx);
                } else {
                    self.nd_advertised(ifindex, target, &body[24..], fx);
                }
            }
            _ => {}
        }
    }

    /// A neighbour solicitation (RFC 4861 §7.2.3): learn the sender, and
    /// answer if the target is ours.
    #[allow(clippy::too_many_arguments)]
    fn nd_solicited(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        target: Ipv6Addr,
        opts: &[u8],
        fx: &mut Effects,
    ) {
        let Ok(slla) = nd_lladdr(opts, ND_OPT_SOURCE_LLADDR) else {
            self.stats.bad_frames += 1;
            return;
        };
        // Duplicate address detection probes carry no source option and
        // go to the solicited-node group (§7.1.1).
        if src.is_unspecified() && (slla.is_some() || dst != solicited_node(target)) {
            return;
        }
        let now = self.now;
        let Some(iface) = self.iface_mut(ifindex) else {
            return;
        };
        if !iface.kind.has_link_layer() || !iface.has_addr6(target) {
            return;
        }
        let my_mac = iface.mac;
        if let Some(mac) = slla.filter(|m| m[0] & 1 == 0) {
            let held = iface.arp.learn(IpAddr::V6(src), mac, now, true);
            self.send_held(ifindex, mac, held, fx);
        }
        // The advertisement: solicited (S) and override (O), to the
        // sender, or to all nodes for a DAD probe.
        let (to, flags) = if src.is_unspecified() {
            (ALL_NODES, 0x20)
        } else {
            (src, 0x60)
        };
        let nd = Nd {
            ty: ND_NEIGHBOR_ADVERT,
            flags,
            target,
            option: ND_OPT_TARGET_LLADDR,
            mac: my_mac,
        };
        let f = nd.frame(pool, target, to);
        self.stats.icmp6_out += 1;
        self.stats.nd_adverts_sent += 1;
        self.send_via(pool, ifindex, IpAddr::V6(to), f, true, fx);
    }

    /// A neighbour advertisement: completes a pending resolution (and
    /// updates a known entry); unsolicited news of strangers is ignored.
    fn nd_advertised(&mut self, ifindex: usize, target: Ipv6Addr, opts: &[u8], fx: &mut Effects) {
        let Ok(Some(mac)) = nd_lladdr(opts, ND_OPT_TARGET_LLADDR) else {
            return;
        };
        if mac[0] & 1 != 0 {
            return;
        }
        let now = self.now;
        let Some(iface) = self.iface_mut(ifindex) else {
            return;
        };
        let held = iface.arp.learn(IpAddr::V6(target), mac, now, false);
        self.send_held(ifindex, mac, held, fx);
    }

    /// Sends frames that waited for a neighbour's link address.
    fn send_held(&mut self, ifindex: usize, mac: [u8; 6], held: Vec<Vec<u8>>, fx: &mut Effects) {
        if held.is_empty() {
            return;
        }
        let Some(iface) = self.iface(ifindex) else {
            return;
        };
        let (Some(link), my_mac) = (iface.link.clone(), iface.mac) else {
            return;
        };
        let shared = iface.shared.clone();
        for mut f in held {
            let ty = match f.get(ETH_HDR).map(|b| b >> 4) {
                Some(6) => smoltcp::wire::EthernetProtocol::Ipv6,
                _ => smoltcp::wire::EthernetProtocol::Ipv4,
            };
            crate::ip::write_eth(&mut f, mac, my_mac, ty);
            fx.frames.push((link.clone(), shared.clone(), f));
        }
    }

    /// Sends a neighbour solicitation for `target` out of `ifindex`.
    pub fn nd_solicit(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        target: Ipv6Addr,
        fx: &mut Effects,
    ) {
        let Some(iface) = self.iface(ifindex) else {
            return;
        };
        let Some(src) = iface.source6(target) else {
            return;
        };
        let my_mac = iface.mac;
        let to = solicited_node(target);
        let nd = Nd {
            ty: ND_NEIGHBOR_SOLICIT,
            flags: 0,
            target,
            option: ND_OPT_SOURCE_LLADDR,
            mac: my_mac,
        };
        let f = nd.frame(pool, src, to);
        self.stats.icmp6_out += 1;
        self.stats.nd_solicits_sent += 1;
        self.send_via(pool, ifindex, IpAddr::V6(to), f, true, fx);
    }

    /// Takes a token from the ICMPv6 error budget.
    fn icmp6_rate_ok(&mut self) -> bool {
        let now = self.now;
        let (last, tokens) = self.icmp6_bucket;
        let earned = now.saturating_sub(last) / (1_000_000_000 / ICMP6_PER_SEC);
        let tokens = (tokens as u64 + earned).min(ICMP6_BURST as u64) as u32;
        let last = if earned > 0 { now } else { last };
        if tokens == 0 {
            self.icmp6_bucket = (last, 0);
            return false;
        }
        self.icmp6_bucket = (last, tokens - 1);
        true
    }

    /// Sends an ICMPv6 error about `orig` (an IPv6 packet) to its source,
    /// following RFC 4443 §2.4: never about ICMPv6 errors, packets from
    /// unspecified or multicast sources, or (except "packet too big")
    /// packets to multicast destinations; quoted up to the minimum MTU;
    /// rate-limited. `in_if` is the zone of a link-local source.
    pub fn icmp6_error(
        &mut self,
        pool: &FramePool,
        orig: &[u8],
        kind: Icmp6Error,
        in_if: Option<usize>,
        fx: &mut Effects,
    ) {
        let Ok(p) = Ipv6Packet::new_checked(orig) else {
            return;
        };
        let (osrc, odst) = (p.src_addr(), p.dst_addr());
        if osrc.is_unspecified() || osrc.is_multicast() {
            return;
        }
        if odst.is_multicast() && !matches!(kind, Icmp6Error::PacketTooBig(_)) {
            return;
        }
        if let Ok(Upper::Proto(58, off)) = upper_layer(orig) {
            match orig.get(off) {
                Some(t) if *t >= 128 => {}
                _ => return,
            }
        }
        let Some(rt) = self.route6(osrc, in_if.unwrap_or(0) as u32) else {
            return;
        };
        if !self.icmp6_rate_ok() {
            return;
        }
        let src = if self.is_local_addr6(odst) {
            odst
        } else {
            rt.src
        };
        let (ty, code, rest) = kind.type_code();
        let quote = &orig[..orig.len().min(ICMP6_ERROR_MAX - IPV6_HDR - 8)];
        let len = 8 + quote.len();
        let mut f = pool.get(ETH_HDR + IPV6_HDR + len);
        {
            let b = &mut f[ETH_HDR + IPV6_HDR..];
            b[0] = ty;
            b[1] = code;
            b[2..4].fill(0);
            b[4..8].copy_from_slice(&rest.to_be_bytes());
            b[8..].copy_from_slice(quote);
        }
        emit_ipv6(
            &mut f,
            src,
            osrc,
            IpProtocol::Icmpv6,
            crate::ip::DEFAULT_TTL,
            len,
        );
        Icmpv6Packet::new_unchecked(&mut f[ETH_HDR + IPV6_HDR..]).fill_checksum(&src, &osrc);
        self.stats.icmp6_out += 1;
        match kind {
            Icmp6Error::HopLimitExceeded | Icmp6Error::ReassemblyTimeout => {
                self.stats.icmp_out_time_exceeded += 1
            }
            _ => self.stats.icmp_out_unreachable += 1,
        }
        self.stats.ip6_sent += 1;
        self.send_via(pool, rt.ifindex, IpAddr::V6(rt.next_hop), f, true, fx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = alloc::vec![0u8; IPV6_HDR];
        v[0] = 0x60;
        v[4..6].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        v[6] = next;
        v[7] = 64;
        v[8..24].copy_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v[24..40].copy_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn extension_headers_are_walked() {
        // Destination options (8 bytes) then UDP.
        let mut ext = alloc::vec![17u8, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[0u8; 8]);
        let pkt = header(60, &ext);
        assert_eq!(upper_layer(&pkt), Ok(Upper::Proto(17, 48)));
        let flat = without_ext_headers(&pkt, 17, 48);
        assert_eq!(flat.len(), 48);
        assert_eq!(flat[6], 17);
        assert_eq!(u16::from_be_bytes([flat[4], flat[5]]), 8);
        // A fragment header is reported with where it is.
        let pkt = header(44, &[17, 0, 0, 1, 0, 0, 0, 7]);
        assert_eq!(upper_layer(&pkt), Ok(Upper::Fragment(40, 6)));
        // Hop-by-hop not first is a parameter problem.
        let pkt = header(60, &[0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(upper_layer(&pkt), Ok(Upper::Bad(40)));
        // A routing header with segments left is not followed.
        let pkt = header(43, &[17, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(upper_layer(&pkt), Ok(Upper::Discard));
        // Truncated extension headers are errors, not panics.
        let pkt = header(60, &[17, 5, 0]);
        assert_eq!(upper_layer(&pkt), Err(()));
        assert_eq!(upper_layer(&pkt[..39]), Err(()));
    }

    #[test]
    fn quoted_packets() {
        let mut udp = alloc::vec![0u8; 8];
        udp[0..2].copy_from_slice(&5353u16.to_be_bytes());
        udp[2..4].copy_from_slice(&53u16.to_be_bytes());
        let pkt = header(17, &udp);
        let q = Quoted6::parse(&pkt).unwrap();
        assert_eq!(q.proto, 17);
        assert_eq!(q.ports(), (5353, 53));
        assert_eq!(q.src, "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert!(Quoted6::parse(&pkt[..47]).is_none());
        let mut v4 = pkt.clone();
        v4[0] = 0x45;
        assert!(Quoted6::parse(&v4).is_none());
    }

    #[test]
    fn nd_options() {
        let opts = [1u8, 1, 1, 2, 3, 4, 5, 6, 2, 1, 9, 9, 9, 9, 9, 9];
        assert_eq!(nd_lladdr(&opts, 1), Ok(Some([1, 2, 3, 4, 5, 6])));
        assert_eq!(nd_lladdr(&opts, 2), Ok(Some([9; 6])));
        assert_eq!(nd_lladdr(&opts, 3), Ok(None));
        assert_eq!(nd_lladdr(&[1, 0, 0, 0], 1), Err(()));
        assert_eq!(nd_lladdr(&[1, 2, 0, 0, 0, 0, 0, 0], 1), Err(()));
        assert_eq!(nd_lladdr(&[1], 1), Err(()));
        assert_eq!(nd_lladdr(&[], 1), Ok(None));
    }

    #[test]
    fn checksums_are_filled() {
        let mut f = alloc::vec![0u8; ETH_HDR + IPV6_HDR + 8 + 4];
        let (s, d): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8::1".parse().unwrap(),
            "2001:db8::2".parse().unwrap(),
        );
        emit_ipv6(&mut f, s, d, IpProtocol::Udp, 64, 12);
        {
            let mut u = UdpPacket::new_unchecked(&mut f[ETH_HDR + IPV6_HDR..]);
            u.set_src_port(1);
            u.set_dst_port(2);
            u.set_len(12);
        }
        crate::ip::fill_checksums(&mut f[ETH_HDR..]);
        let p = Ipv6Packet::new_checked(&f[ETH_HDR..]).unwrap();
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        assert!(u.verify_checksum(&IpAddress::Ipv6(s), &IpAddress::Ipv6(d)));
        fill_checksums6(&mut [0x60u8; 41]);
    }
}
