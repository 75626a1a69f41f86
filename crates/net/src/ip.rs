//! The IPv4 layer, ARP and ICMP: what happens to a frame between its link
//! and its socket, and to a packet between its socket and its link.
//!
//! Input: [`Core::ether_input`] checks the Ethernet header and passes ARP
//! to [`Core::arp_input`] and IPv4 to [`Core::ip_input`], which validates
//! the header (RFC 791, RFC 1122 §3.2.1), delivers packets for this host
//! by protocol, and forwards the others when `net.inet.ip.forwarding` is
//! on (RFC 1812 §5: TTL decrement, ICMP time exceeded, net and host
//! unreachable, fragmentation needed). Output: [`Core::ip_output`] routes
//! a packet, fills in checksums the link needs, resolves the next hop and
//! queues the frame. Every parser checks lengths first; a malformed frame
//! is counted and dropped, never trusted.
//!
//! smoltcp is used here for its wire formats only; its `Interface` sees
//! TCP segments (see `tcp.rs`).

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    Icmpv4Message, Icmpv4Packet, IpAddress, IpProtocol, Ipv4Packet, TcpPacket, UdpPacket,
};

use crate::iface::{in_subnet, IfKind, ETH_HDR};
use crate::pool::FramePool;
use crate::route::RouteHit;
use crate::stack::{Core, Effects};

/// Default TTL for packets we originate (RFC 1700's recommendation, as
/// every BSD and Linux uses).
pub(crate) const DEFAULT_TTL: u8 = 64;
/// An ICMP error quotes as much of the offending packet as fits in 576
/// bytes (RFC 1812 §4.3.2.3).
const ICMP_QUOTE_MAX: usize = 576 - 20 - 8;
const IPV4_HDR: usize = 20;
const BROADCAST: Ipv4Addr = Ipv4Addr::BROADCAST;

/// ICMP types and codes we send (RFC 792).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IcmpError {
    NetUnreachable,
    HostUnreachable,
    ProtocolUnreachable,
    PortUnreachable,
    /// Fragmentation needed and DF set, with the next hop's MTU (RFC 1191).
    FragNeeded(u16),
    TimeExceeded,
    /// Fragment reassembly time exceeded.
    ReassemblyTimeout,
}

impl IcmpError {
    fn type_code(self) -> (u8, u8, u32) {
        match self {
            IcmpError::NetUnreachable => (3, 0, 0),
            IcmpError::HostUnreachable => (3, 1, 0),
            IcmpError::ProtocolUnreachable => (3, 2, 0),
            IcmpError::PortUnreachable => (3, 3, 0),
            IcmpError::FragNeeded(mtu) => (3, 4, mtu as u32),
            IcmpError::TimeExceeded => (11, 0, 0),
            IcmpError::ReassemblyTimeout => (11, 1, 0),
        }
    }
}

/// The errno an ICMP error means for the socket it concerns (as Linux's
/// `icmp_err_convert`).
pub(crate) fn icmp_errno(ty: u8, code: u8) -> kern::Errno {
    use kern::Errno;
    match (ty, code) {
        (3, 0) | (3, 6) | (3, 9) | (3, 11) => Errno::ENETUNREACH,
        (3, 2) => Errno::ENOPROTOOPT,
        (3, 3) => Errno::ECONNREFUSED,
        (3, 4) => Errno::EMSGSIZE,
        (3, 5) => Errno::EOPNOTSUPP,
        (3, 13) => Errno::EHOSTUNREACH,
        _ => Errno::EHOSTUNREACH,
    }
}

/// Fields of a quoted IPv4 header and the 8 bytes after it, from an ICMP
/// error (which may be truncated, so `Ipv4Packet::new_checked` does not
/// apply).
pub(crate) struct Quoted {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    /// First 8 bytes of the transport header.
    pub l4: [u8; 8],
}

impl Quoted {
    pub fn parse(data: &[u8]) -> Option<Quoted> {
        if data.len() < IPV4_HDR || data[0] >> 4 != 4 {
            return None;
        }
        let hl = ((data[0] & 0xf) as usize) * 4;
        if hl < IPV4_HDR {
            return None;
        }
        let l4 = data.get(hl..hl + 8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(l4);
        Some(Quoted {
            src: Ipv4Addr::new(data[12], data[13], data[14], data[15]),
            dst: Ipv4Addr::new(data[16], data[17], data[18], data[19]),
            proto: data[9],
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

/// Writes an IPv4 header for a packet of `payload_len` bytes at
/// `buf[ETH_HDR..]`, with its checksum.
pub(crate) fn emit_ipv4(
    buf: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    ttl: u8,
    ident: u16,
    payload_len: usize,
) {
    let mut p = Ipv4Packet::new_unchecked(&mut buf[ETH_HDR..]);
    p.set_version(4);
    p.set_header_len(IPV4_HDR as u8);
    p.set_dscp(0);
    p.set_ecn(0);
    p.set_total_len((IPV4_HDR + payload_len) as u16);
    p.set_ident(ident);
    p.clear_flags();
    p.set_frag_offset(0);
    p.set_hop_limit(ttl);
    p.set_next_header(proto);
    p.set_src_addr(src);
    p.set_dst_addr(dst);
    p.fill_checksum();
}

/// Fills in the IPv4 header checksum and the TCP, UDP or ICMP checksum of
/// the packet in `ip` (for links that need them, when the packet was made
/// for one that did not).
pub(crate) fn fill_checksums(ip: &mut [u8]) {
    if ip.first().is_some_and(|b| b >> 4 == 6) {
        crate::ip6::fill_checksums6(ip);
        return;
    }
    let Ok(mut p) = Ipv4Packet::new_checked(&mut *ip) else {
        return;
    };
    p.fill_checksum();
    let (src, dst, proto) = (p.src_addr(), p.dst_addr(), p.next_header());
    if p.more_frags() || p.frag_offset() != 0 {
        return;
    }
    let (s, d) = (IpAddress::Ipv4(src), IpAddress::Ipv4(dst));
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
        IpProtocol::Icmp => {
            if let Ok(mut i) = Icmpv4Packet::new_checked(payload) {
                i.fill_checksum();
            }
        }
        _ => {}
    }
}

fn is_martian_src(ip: Ipv4Addr) -> bool {
    ip.is_broadcast() || ip.is_multicast() || ip.octets()[0] == 0
}

impl Core {
    /// Handles one Ethernet frame from interface `ifindex`.
    pub fn ether_input(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        frame: &[u8],
        fx: &mut Effects,
    ) {
        let Some(iface) = self.iface(ifindex) else {
            return;
        };
        if !iface.up {
            iface
                .shared
                .stats
                .rx_dropped
                .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            return;
        }
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            self.bad_frame(ifindex);
            return;
        };
        let no_link = !iface.kind.has_link_layer();
        if !no_link {
            let dst = eth.dst_addr();
            // IPv6 multicast (33:33:...) is taken in; the IPv6 layer
            // keeps only the groups the interface belongs to.
            let v6_group = dst.0[0] == 0x33 && dst.0[1] == 0x33;
            if dst.0 != iface.mac && !dst.is_broadcast() && !v6_group {
                return;
            }
        }
        match eth.ethertype() {
            EthernetProtocol::Arp if !no_link => self.arp_input(pool, ifindex, eth.payload(), fx),
            EthernetProtocol::Ipv4 => self.ip_input(pool, ifindex, eth.payload(), fx),
            EthernetProtocol::Ipv6 => self.ip6_input(pool, ifindex, eth.payload(), fx),
            // Without a link layer nothing else can come (a `pkt` packet
            // of another IP version).
            _ if no_link => self.bad_frame(ifindex),
            _ => {}
        }
    }

    fn bad_frame(&mut self, ifindex: usize) {
        self.stats.bad_frames += 1;
        if let Some(i) = self.iface(ifindex) {
            i.shared
                .stats
                .rx_errors
                .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
    }

    /// ARP (RFC 826): learn the sender if the request is for us or we
    /// already know it, send what waited for it, and answer requests for
    /// our addresses.
    fn arp_input(&mut self, pool: &FramePool, ifindex: usize, payload: &[u8], fx: &mut Effects) {
        let Ok(pkt) = ArpPacket::new_checked(payload) else {
            self.bad_frame(ifindex);
            return;
        };
        let Ok(ArpRepr::EthernetIpv4 {
            operation,
            source_hardware_addr,
            source_protocol_addr,
            target_protocol_addr,
            ..
        }) = ArpRepr::parse(&pkt)
        else {
            self.stats.bad_frames += 1;
            return;
        };
        self.stats.arp_in += 1;
        if !source_hardware_addr.is_unicast() || is_martian_src(source_protocol_addr) {
            return;
        }
        let now = self.now;
        let Some(iface) = self.iface_mut(ifindex) else {
            return;
        };
        let for_us = iface.has_addr(target_protocol_addr);
        let mac = source_hardware_addr.0;
        let held = iface
            .arp
            .learn(IpAddr::V4(source_protocol_addr), mac, now, for_us);
        let my_mac = iface.mac;
        let (link, shared) = match &iface.link {
            Some(l) => (l.clone(), iface.shared.clone()),
            None => {
                for f in held {
                    pool.put(f);
                }
                return;
            }
        };
        for mut f in held {
            write_eth(&mut f, mac, my_mac, EthernetProtocol::Ipv4);
            fx.frames.push((link.clone(), shared.clone(), f));
        }
        if for_us && operation == ArpOperation::Request {
            let reply = ArpRepr::EthernetIpv4 {
                operation: ArpOperation::Reply,
                source_hardware_addr: EthernetAddress(my_mac),
                source_protocol_addr: target_protocol_addr,
                target_hardware_addr: source_hardware_addr,
                target_protocol_addr: source_protocol_addr,
            };
            let mut f = pool.get(ETH_HDR + reply.buffer_len());
            reply.emit(&mut ArpPacket::new_unchecked(&mut f[ETH_HDR..]));
            write_eth(&mut f, mac, my_mac, EthernetProtocol::Arp);
            fx.frames.push((link, shared, f));
            self.stats.arp_replies_sent += 1;
        }
    }

    /// Handles one IPv4 packet that arrived on `ifindex`.
    pub fn ip_input(&mut self, pool: &FramePool, ifindex: usize, data: &[u8], fx: &mut Effects) {
        self.stats.ip_received += 1;
        let Some(iface) = self.iface(ifindex) else {
            return;
        };
        let offload = iface.offload;
        let Ok(p) = Ipv4Packet::new_checked(data) else {
            self.stats.ip_bad_header += 1;
            self.bad_frame(ifindex);
            return;
        };
        if p.version() != 4 || (!offload && !p.verify_checksum()) {
            self.stats.ip_bad_header += 1;
            self.bad_frame(ifindex);
            return;
        }
        // Ethernet pads short frames: the packet ends where it says.
        let pkt = &data[..p.total_len() as usize];
        let (src, dst) = (p.src_addr(), p.dst_addr());
        if is_martian_src(src) && !(src.is_unspecified() && dst == BROADCAST) {
            self.stats.ip_bad_header += 1;
            return;
        }
        let is_bcast = dst == BROADCAST || iface.is_subnet_broadcast(dst);
        let local = is_bcast || self.is_local_addr(dst);
        if !local {
            self.forward(pool, ifindex, pkt, fx);
            return;
        }
        if p.more_frags() || p.frag_offset() != 0 {
            let now = self.now;
            self.reasm_expire(pool, fx);
            let r = self.reasm.input_v4(pkt, now);
            if let Some(whole) = self.reasm_outcome(r) {
                self.ip_deliver(pool, ifindex, &whole, is_bcast, fx);
            }
            return;
        }
        self.ip_deliver(pool, ifindex, pkt, is_bcast, fx);
    }

    /// Hands a whole packet for this host to its protocol.
    fn ip_deliver(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        pkt: &[u8],
        is_bcast: bool,
        fx: &mut Effects,
    ) {
        let Ok(p) = Ipv4Packet::new_checked(pkt) else {
            return;
        };
        let (src, dst) = (p.src_addr(), p.dst_addr());
        self.stats.ip_delivered += 1;
        let (s, d) = (IpAddr::V4(src), IpAddr::V4(dst));
        match p.next_header() {
            IpProtocol::Tcp if !is_bcast => self.tcp_input(pool, ifindex, pkt, s, d, fx),
            IpProtocol::Udp => self.udp_input(pool, ifindex, pkt, s, d, is_bcast, fx),
            IpProtocol::Icmp => self.icmp_input(pool, ifindex, pkt, is_bcast, fx),
            IpProtocol::Tcp => {}
            _ => {
                if !is_bcast {
                    self.icmp_error(pool, pkt, IcmpError::ProtocolUnreachable, fx);
                }
            }
        }
    }

    /// The route for `dst`: this host's own addresses go to the loopback
    /// interface (as on BSD); then the longest of the connected and static
    /// routes.
    pub fn route(&self, dst: Ipv4Addr) -> Option<RouteHit> {
        let mut best: Option<(u8, RouteHit)> = None;
        for i in self.ifs.iter().flatten() {
            if !i.up {
                continue;
            }
            if i.kind == IfKind::Loopback {
                if self.is_local_addr(dst) {
                    return Some(RouteHit {
                        ifindex: i.index(),
                        next_hop: dst,
                        src: dst,
                    });
                }
                continue;
            }
            for &(a, p) in &i.addrs {
                let hit = in_subnet(dst, a, p) || (dst == BROADCAST && best.is_none());
                if hit && best.is_none_or(|(bp, _)| p > bp) {
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
        if let Some(s) = self.routes.best_static(IpAddr::V4(dst)) {
            if best.is_none_or(|(bp, _)| s.prefix > bp) {
                let i = self.iface(s.ifindex).filter(|i| i.up)?;
                let next_hop = match s.gateway {
                    Some(IpAddr::V4(g)) => g,
                    _ => dst,
                };
                let src = i
                    .addrs
                    .iter()
                    .find(|&&(a, p)| in_subnet(next_hop, a, p))
                    .map(|a| a.0)
                    .or_else(|| i.primary_addr())?;
                return Some(RouteHit {
                    ifindex: s.ifindex,
                    next_hop,
                    src,
                });
            }
        }
        best.map(|b| b.1)
    }

    /// The route for `dst` of either family; `scope` names the interface
    /// for IPv6 link-local destinations.
    pub fn route_ip(&self, dst: IpAddr, scope: u32) -> Option<RouteHit<IpAddr>> {
        match dst {
            IpAddr::V4(d) => self.route(d).map(RouteHit::any),
            IpAddr::V6(d) => self.route6(d, scope).map(RouteHit::any),
        }
    }

    /// Routes and sends an IP packet (either version) sitting in
    /// `frame[ETH_HDR..]`. `csum_ok` says its checksums are already
    /// filled in.
    pub fn ip_output(&mut self, pool: &FramePool, frame: Vec<u8>, csum_ok: bool, fx: &mut Effects) {
        self.ip_output_scoped(pool, frame, csum_ok, 0, fx);
    }

    /// [`Core::ip_output`] with the zone (interface) for IPv6 link-local
    /// destinations.
    pub fn ip_output_scoped(
        &mut self,
        pool: &FramePool,
        frame: Vec<u8>,
        csum_ok: bool,
        scope: u32,
        fx: &mut Effects,
    ) {
        if frame.get(ETH_HDR).is_some_and(|b| b >> 4 == 6) {
            self.ip6_output_scoped(pool, frame, csum_ok, scope, fx);
            return;
        }
        let Ok(p) = Ipv4Packet::new_checked(&frame[ETH_HDR..]) else {
            pool.put(frame);
            return;
        };
        let dst = p.dst_addr();
        match self.route(dst) {
            Some(rt) => {
                self.stats.ip_sent += 1;
                self.send_via(pool, rt.ifindex, rt.next_hop.into(), frame, csum_ok, fx)
            }
            None => {
                self.stats.ip_no_route += 1;
                pool.put(frame);
            }
        }
    }

    /// Sends the IP packet (either version) in `frame[ETH_HDR..]` out of
    /// `ifindex` towards `next_hop`, resolving its link address by ARP or
    /// neighbour discovery.
    pub fn send_via(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        next_hop: IpAddr,
        mut frame: Vec<u8>,
        csum_ok: bool,
        fx: &mut Effects,
    ) {
        let now = self.now;
        let Some(iface) = self.iface_mut(ifindex) else {
            pool.put(frame);
            return;
        };
        let drop_frame = |iface: &crate::iface::Iface, frame: Vec<u8>| {
            iface
                .shared
                .stats
                .tx_dropped
                .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            pool.put(frame);
        };
        let link = match (&iface.link, iface.up) {
            (Some(l), true) => l.clone(),
            _ => return drop_frame(iface, frame),
        };
        if !iface.offload && !csum_ok {
            fill_checksums(&mut frame[ETH_HDR..]);
        }
        if frame.len() - ETH_HDR > iface.mtu {
            let mtu = iface.mtu;
            return self.send_fragments(pool, ifindex, next_hop, frame, mtu, fx);
        }
        let ethertype = match next_hop {
            IpAddr::V4(_) => EthernetProtocol::Ipv4,
            IpAddr::V6(_) => EthernetProtocol::Ipv6,
        };
        let shared = iface.shared.clone();
        if !iface.kind.has_link_layer() {
            write_eth(&mut frame, [0; 6], [0; 6], ethertype);
            fx.frames.push((link, shared, frame));
            return;
        }
        let my_mac = iface.mac;
        let group = match next_hop {
            IpAddr::V4(h) if h == BROADCAST || iface.is_subnet_broadcast(h) => Some([0xff; 6]),
            IpAddr::V6(h) if h.is_multicast() => Some(crate::iface::multicast_mac(h)),
            _ => None,
        };
        if let Some(mac) = group {
            write_eth(&mut frame, mac, my_mac, ethertype);
            fx.frames.push((link, shared, frame));
            return;
        }
        let src = iface.primary_addr().unwrap_or(Ipv4Addr::UNSPECIFIED);
        match iface.arp.resolve(next_hop, now, frame) {
            (crate::arp::Resolve::Known(mac), Some(mut f)) => {
                write_eth(&mut f, mac, my_mac, ethertype);
                fx.frames.push((link, shared, f));
            }
            (crate::arp::Resolve::Request, _) => match next_hop {
                IpAddr::V4(target) => {
                    let req = ArpRepr::EthernetIpv4 {
                        operation: ArpOperation::Request,
                        source_hardware_addr: EthernetAddress(my_mac),
                        source_protocol_addr: src,
                        target_hardware_addr: EthernetAddress([0; 6]),
                        target_protocol_addr: target,
                    };
                    let mut f = pool.get(ETH_HDR + req.buffer_len());
                    req.emit(&mut ArpPacket::new_unchecked(&mut f[ETH_HDR..]));
                    write_eth(&mut f, [0xff; 6], my_mac, EthernetProtocol::Arp);
                    fx.frames.push((link, shared, f));
                    self.stats.arp_requests_sent += 1;
                }
                IpAddr::V6(target) => self.nd_solicit(pool, ifindex, target, fx),
            },
            (crate::arp::Resolve::Failed(f), _) => {
                shared
                    .stats
                    .tx_dropped
                    .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                // A forwarded packet's sender hears that the host is gone.
                self.unreachable_host(pool, &f[ETH_HDR..], fx);
                pool.put(f);
            }
            (_, Some(f)) => pool.put(f),
            (_, None) => {}
        }
    }

    /// Sends a packet too big for the link as fragments (RFC 791 §2.3;
    /// RFC 8200 §4.5 for packets this host originates), or drops it when
    /// it may not be fragmented.
    fn send_fragments(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        next_hop: IpAddr,
        frame: Vec<u8>,
        mtu: usize,
        fx: &mut Effects,
    ) {
        let frags = match next_hop {
            IpAddr::V4(_) => {
                crate::frag::fragment_v4(&frame[ETH_HDR..], mtu, ETH_HDR, |n| pool.get(n))
            }
            IpAddr::V6(_) => {
                self.frag_ident = self.frag_ident.wrapping_add(1);
                let id = self.frag_ident;
                crate::frag::fragment_v6(&frame[ETH_HDR..], mtu, id, ETH_HDR, |n| pool.get(n))
            }
        };
        pool.put(frame);
        match frags {
            Ok(frags) => {
                for f in frags {
                    self.stats.ip_frags_out += 1;
                    self.send_via(pool, ifindex, next_hop, f, true, fx);
                }
            }
            Err(_) => {
                if let Some(i) = self.iface(ifindex) {
                    i.shared
                        .stats
                        .tx_dropped
                        .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
                }
            }
        }
    }

    /// Counts what a fragment did; the whole datagram once complete.
    pub(crate) fn reasm_outcome(&mut self, r: crate::frag::Reasm) -> Option<Vec<u8>> {
        self.stats.ip_frags_in += 1;
        match r {
            crate::frag::Reasm::Complete(whole) => {
                self.stats.ip_reassembled += 1;
                Some(whole)
            }
            crate::frag::Reasm::Held | crate::frag::Reasm::NotFragment => None,
            crate::frag::Reasm::Dropped(_) => {
                self.stats.ip_fragments_dropped += 1;
                None
            }
        }
    }

    /// Drops reassemblies that ran out of time; their senders hear of it
    /// (ICMP time exceeded, code 1) when the first fragment had arrived.
    pub(crate) fn reasm_expire(&mut self, pool: &FramePool, fx: &mut Effects) {
        let now = self.now;
        for e in self.reasm.expire(now) {
            match e {
                crate::frag::Expired::V4(p) => {
                    self.icmp_error(pool, &p, IcmpError::ReassemblyTimeout, fx)
                }
                crate::frag::Expired::V6(p) => self.icmp6_error(
                    pool,
                    &p,
                    crate::ip6::Icmp6Error::ReassemblyTimeout,
                    None,
                    fx,
                ),
            }
        }
    }

    /// A packet we could not deliver to its next hop: if it came from
    /// elsewhere, its sender gets an ICMP (or ICMPv6) host unreachable.
    fn unreachable_host(&mut self, pool: &FramePool, pkt: &[u8], fx: &mut Effects) {
        match pkt.first().map(|b| b >> 4) {
            Some(4) => {
                let from_elsewhere = Ipv4Packet::new_checked(pkt)
                    .map(|p| !self.is_local_addr(p.src_addr()))
                    .unwrap_or(false);
                if from_elsewhere {
                    let pkt = pkt.to_vec();
                    self.icmp_error(pool, &pkt, IcmpError::HostUnreachable, fx);
                }
            }
            Some(6) => {
                let from_elsewhere = smoltcp::wire::Ipv6Packet::new_checked(pkt)
                    .map(|p| !self.is_local_addr6(p.src_addr()))
                    .unwrap_or(false);
                if from_elsewhere {
                    let pkt = pkt.to_vec();
                    self.icmp6_error(
                        pool,
                        &pkt,
                        crate::ip6::Icmp6Error::AddrUnreachable,
                        None,
                        fx,
                    );
                }
            }
            _ => {}
        }
    }

    /// Forwards a packet not addressed to us (RFC 1812 §5.2–5.3).
    fn forward(&mut self, pool: &FramePool, in_if: usize, pkt: &[u8], fx: &mut Effects) {
        let Ok(p) = Ipv4Packet::new_checked(pkt) else {
            return;
        };
        let dst = p.dst_addr();
        if dst.is_multicast() || dst.is_unspecified() || dst.is_broadcast() {
            return;
        }
        if !self.forwarding_enabled() {
            self.stats.ip_not_forwarded += 1;
            return;
        }
        if p.hop_limit() <= 1 {
            self.stats.ip_ttl_exceeded += 1;
            self.icmp_error(pool, pkt, IcmpError::TimeExceeded, fx);
            return;
        }
        let Some(rt) = self.route(dst) else {
            self.stats.ip_no_route += 1;
            self.icmp_error(pool, pkt, IcmpError::NetUnreachable, fx);
            return;
        };
        let Some(out) = self.iface(rt.ifindex) else {
            return;
        };
        if out.kind == IfKind::Loopback {
            return;
        }
        if pkt.len() > out.mtu && p.dont_frag() {
            let mtu = out.mtu.min(u16::MAX as usize) as u16;
            self.icmp_error(pool, pkt, IcmpError::FragNeeded(mtu), fx);
            self.stats.ip_not_forwarded += 1;
            return;
        }
        let csum_ok = self.iface(in_if).is_some_and(|i| !i.offload);
        let mut frame = pool.get(ETH_HDR + pkt.len());
        frame[ETH_HDR..].copy_from_slice(pkt);
        {
            let mut q = Ipv4Packet::new_unchecked(&mut frame[ETH_HDR..]);
            q.set_hop_limit(p.hop_limit() - 1);
            q.fill_checksum();
        }
        self.stats.ip_forwarded += 1;
        self.send_via(pool, rt.ifindex, rt.next_hop.into(), frame, csum_ok, fx);
    }

    fn forwarding_enabled(&self) -> bool {
        match self.kernel.upgrade() {
            Some(k) => k.sysctl().get_int(crate::SYSCTL_FORWARDING) != 0,
            None => false,
        }
    }

    /// ICMP input (RFC 792): answer echo requests, hand echo replies to
    /// ping sockets and errors to the socket they concern.
    fn icmp_input(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        pkt: &[u8],
        is_bcast: bool,
        fx: &mut Effects,
    ) {
        let offload = self.iface(ifindex).is_some_and(|i| i.offload);
        let Ok(ip) = Ipv4Packet::new_checked(pkt) else {
            return;
        };
        let Ok(icmp) = Icmpv4Packet::new_checked(ip.payload()) else {
            self.stats.bad_frames += 1;
            return;
        };
        if !offload && !icmp.verify_checksum() {
            self.stats.bad_frames += 1;
            return;
        }
        self.stats.icmp_in += 1;
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        match icmp.msg_type() {
            Icmpv4Message::EchoRequest => {
                self.stats.icmp_in_echo += 1;
                if is_bcast || src.is_unspecified() {
                    return;
                }
                let body = ip.payload();
                let mut f = pool.get(ETH_HDR + IPV4_HDR + body.len());
                f[ETH_HDR + IPV4_HDR..].copy_from_slice(body);
                {
                    let mut r = Icmpv4Packet::new_unchecked(&mut f[ETH_HDR + IPV4_HDR..]);
                    r.set_msg_type(Icmpv4Message::EchoReply);
                    r.set_msg_code(0);
                    r.fill_checksum();
                }
                let id = self.next_ip_id();
                emit_ipv4(
                    &mut f,
                    dst,
                    src,
                    IpProtocol::Icmp,
                    DEFAULT_TTL,
                    id,
                    body.len(),
                );
                self.stats.icmp_out += 1;
                self.stats.icmp_out_echo_reply += 1;
                self.ip_output(pool, f, true, fx);
            }
            Icmpv4Message::EchoReply => {
                let ident = icmp.echo_ident();
                self.ping_deliver(ident, IpAddr::V4(src), ip.hop_limit(), ip.payload(), fx);
            }
            Icmpv4Message::DstUnreachable | Icmpv4Message::TimeExceeded => {
                let ty: u8 = icmp.msg_type().into();
                if ty == 3 {
                    self.stats.icmp_in_unreachable += 1;
                } else {
                    self.stats.icmp_in_time_exceeded += 1;
                }
                if let Some(q) = Quoted::parse(icmp.data()) {
                    if self.is_local_addr(q.src) {
                        let err = icmp_errno(ty, icmp.msg_code());
                        self.icmp_notify(pool, &q, err, fx);
                    }
                }
            }
            _ => {}
        }
    }

    /// Tells the socket an ICMP error is about.
    fn icmp_notify(&mut self, pool: &FramePool, q: &Quoted, err: kern::Errno, fx: &mut Effects) {
        match q.proto {
            6 => {
                let (sport, dport) = q.ports();
                let key = (IpAddr::V4(q.src), sport, IpAddr::V4(q.dst), dport);
                if let Some(&r) = self.tcp_conns.get(&key) {
                    self.tcp_icmp_error(pool, r, err, fx);
                }
            }
            17 => {
                let (sport, dport) = q.ports();
                self.udp_icmp_error(IpAddr::V4(q.src), sport, IpAddr::V4(q.dst), dport, err, fx);
            }
            // The quoted echo request: type, code, checksum, ident.
            1 if q.l4[0] == 8 => {
                let ident = u16::from_be_bytes([q.l4[4], q.l4[5]]);
                self.ping_error(ident, err, fx);
            }
            _ => {}
        }
    }

    /// Sends an ICMP error about `orig` (an IP packet) to its source,
    /// following RFC 1812 §4.3.2.7: never about ICMP errors, broadcasts,
    /// multicasts, non-first fragments or unspecified sources.
    pub fn icmp_error(&mut self, pool: &FramePool, orig: &[u8], kind: IcmpError, fx: &mut Effects) {
        let Ok(p) = Ipv4Packet::new_checked(orig) else {
            return;
        };
        let (osrc, odst) = (p.src_addr(), p.dst_addr());
        if is_martian_src(osrc) || odst.is_broadcast() || odst.is_multicast() {
            return;
        }
        if p.frag_offset() != 0 {
            return;
        }
        if p.next_header() == IpProtocol::Icmp {
            match p.payload().first() {
                Some(0) | Some(8) | Some(13) | Some(14) | Some(17) | Some(18) => {}
                _ => return,
            }
        }
        let Some(rt) = self.route(osrc) else {
            return;
        };
        let (ty, code, rest) = kind.type_code();
        let quote = &orig[..orig.len().min(ICMP_QUOTE_MAX)];
        let icmp_len = 8 + quote.len();
        let mut f = pool.get(ETH_HDR + IPV4_HDR + icmp_len);
        {
            let b = &mut f[ETH_HDR + IPV4_HDR..];
            b[0] = ty;
            b[1] = code;
            b[2..4].fill(0);
            b[4..8].copy_from_slice(&rest.to_be_bytes());
            b[8..].copy_from_slice(quote);
            Icmpv4Packet::new_unchecked(&mut *b).fill_checksum();
        }
        let id = self.next_ip_id();
        emit_ipv4(
            &mut f,
            rt.src,
            osrc,
            IpProtocol::Icmp,
            DEFAULT_TTL,
            id,
            icmp_len,
        );
        self.stats.icmp_out += 1;
        match kind {
            IcmpError::TimeExceeded | IcmpError::ReassemblyTimeout => {
                self.stats.icmp_out_time_exceeded += 1
            }
            _ => self.stats.icmp_out_unreachable += 1,
        }
        self.ip_output(pool, f, true, fx);
    }
}

/// Writes the Ethernet header at the start of `frame`.
pub(crate) fn write_eth(frame: &mut [u8], dst: [u8; 6], src: [u8; 6], ty: EthernetProtocol) {
    let mut e = EthernetFrame::new_unchecked(frame);
    e.set_dst_addr(EthernetAddress(dst));
    e.set_src_addr(EthernetAddress(src));
    e.set_ethertype(ty);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_headers() {
        let mut b = [0u8; 28];
        b[0] = 0x45;
        b[9] = 17;
        b[12..16].copy_from_slice(&[192, 0, 2, 1]);
        b[16..20].copy_from_slice(&[198, 51, 100, 2]);
        b[20..22].copy_from_slice(&1234u16.to_be_bytes());
        b[22..24].copy_from_slice(&53u16.to_be_bytes());
        let q = Quoted::parse(&b).unwrap();
        assert_eq!(q.src, Ipv4Addr::new(192, 0, 2, 1));
        assert_eq!(q.ports(), (1234, 53));
        assert!(Quoted::parse(&b[..27]).is_none());
        b[0] = 0x44;
        assert!(Quoted::parse(&b).is_none());
        b[0] = 0x65;
        assert!(Quoted::parse(&b).is_none());
    }

    #[test]
    fn checksums_are_filled() {
        let mut f = alloc::vec![0u8; ETH_HDR + 20 + 8 + 4];
        emit_ipv4(
            &mut f,
            Ipv4Addr::new(192, 0, 2, 1),
            Ipv4Addr::new(192, 0, 2, 2),
            IpProtocol::Udp,
            64,
            1,
            12,
        );
        {
            let mut u = UdpPacket::new_unchecked(&mut f[ETH_HDR + 20..]);
            u.set_src_port(1);
            u.set_dst_port(2);
            u.set_len(12);
        }
        fill_checksums(&mut f[ETH_HDR..]);
        let p = Ipv4Packet::new_checked(&f[ETH_HDR..]).unwrap();
        assert!(p.verify_checksum());
        let u = UdpPacket::new_checked(p.payload()).unwrap();
        assert!(u.verify_checksum(
            &IpAddress::Ipv4(p.src_addr()),
            &IpAddress::Ipv4(p.dst_addr())
        ));
        // Garbage does not panic.
        fill_checksums(&mut [0xffu8; 7]);
        fill_checksums(&mut [0x45u8; 40]);
    }
}
