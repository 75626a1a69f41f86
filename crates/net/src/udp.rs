//! UDP (RFC 768), implemented here rather than in smoltcp: datagrams are
//! routed one by one (a socket may send to destinations behind different
//! interfaces), connected sockets filter their peer and learn of ICMP port
//! unreachable (`ECONNREFUSED`), and received datagrams queue up to the
//! socket's `SO_RCVBUF` bytes; beyond that they are dropped and counted.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};

use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Packet, UdpPacket};

use crate::ip6::{emit_ipv6, Icmp6Error, IPV6_HDR};
use crate::tcp::bind_overlap;

use kern::Errno;

use crate::cmsg::RxMeta;
use crate::iface::ETH_HDR;
use crate::ip::{emit_ipv4, IcmpError};
use crate::pool::FramePool;
use crate::stack::{Core, Effects, Proto, SockRef};

const UDP_HDR: usize = 8;
/// Bookkeeping charged per queued datagram, so a flood of empty
/// datagrams is bounded too (Linux charges its skb overhead).
const DATAGRAM_OVERHEAD: usize = 256;

pub(crate) struct Datagram {
    pub from: (IpAddr, u16),
    pub data: Vec<u8>,
    /// What control messages may report about it.
    pub meta: RxMeta,
}

/// A received datagram as `recvmsg` reports it: bytes copied, the
/// datagram's full length, its sender, and its control-message facts.
pub(crate) type Received = (usize, usize, (IpAddr, u16), RxMeta);

impl Datagram {
    /// Copies as much as fits into `buf`.
    pub fn copy_out(&self, buf: &mut [u8]) -> Received {
        let n = buf.len().min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        (n, self.data.len(), self.from, self.meta)
    }
}

/// Per-datagram choices `sendmsg` control messages make.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SendCtl {
    /// The source address (`IP_PKTINFO`/`IPV6_PKTINFO`).
    pub src: Option<IpAddr>,
    /// The interface, as the zone of a link-local destination.
    pub ifindex: u32,
    /// `IP_TTL`/`IPV6_HOPLIMIT` for this datagram.
    pub ttl: Option<u8>,
}

impl SendCtl {
    /// The choices in `control`; `EINVAL` for messages of the wrong family.
    pub fn from_cmsgs(control: &[crate::Cmsg], v6: bool) -> Result<SendCtl, Errno> {
        let mut c = SendCtl::default();
        for m in control {
            match *m {
                crate::Cmsg::PktInfo { addr, ifindex } => {
                    if !addr.is_unspecified() {
                        c.src = Some(addr);
                    }
                    c.ifindex = ifindex;
                }
                crate::Cmsg::Ttl(t) if !v6 => c.ttl = Some(t),
                crate::Cmsg::HopLimit(t) if v6 => c.ttl = Some(t),
                _ => return Err(Errno::EINVAL),
            }
        }
        Ok(c)
    }
}

pub(crate) struct UdpSock {
    pub bound: Option<(IpAddr, u16)>,
    /// `bind` asked for this port (Linux's SOCK_BINDPORT_LOCK): dissolving
    /// an association keeps it. An automatic port goes.
    pub port_locked: bool,
    /// `bind` asked for this address (SOCK_BINDADDR_LOCK); otherwise a
    /// connect narrows the address to the route's source and dissolving
    /// widens it again.
    pub addr_locked: bool,
    /// The address of a socket whose automatic port a dissolve released
    /// while `bind` had chosen its address: the name shows it, and the
    /// next automatic bind takes it (Linux keeps the address).
    pub kept_addr: Option<IpAddr>,
    /// The connected peer, with the zone of a link-local one. Port 0
    /// associates with the address only (Linux): datagrams from any of
    /// its ports arrive, sends go to port 0, and `getpeername` says
    /// `ENOTCONN`.
    pub peer: Option<(IpAddr, u16, u32)>,
    pub rxq: VecDeque<Datagram>,
    pub rx_bytes: usize,
}

impl UdpSock {
    pub fn new() -> Self {
        UdpSock {
            bound: None,
            port_locked: false,
            addr_locked: false,
            kept_addr: None,
            peer: None,
            rxq: VecDeque::new(),
            rx_bytes: 0,
        }
    }

    /// Whether a datagram from `src:sport` is for this socket as far as
    /// its association goes.
    fn takes_from(&self, src: IpAddr, sport: u16) -> bool {
        self.peer
            .is_none_or(|(a, p, _)| a == src && (p == 0 || p == sport))
    }
}

/// Whether an IP packet of `total` bytes (header included) to `dst` fits
/// in its version's length field.
pub(crate) fn fits_ip(dst: IpAddr, total: usize) -> bool {
    match dst {
        IpAddr::V4(_) => total <= u16::MAX as usize,
        IpAddr::V6(_) => total - IPV6_HDR <= u16::MAX as usize,
    }
}

impl Core {
    /// Binds UDP socket `r` (port 0: an ephemeral port).
    pub fn udp_bind(&mut self, r: SockRef, addr: IpAddr, port: u16) -> Result<(), Errno> {
        let port_asked = port;
        let s = self.socks.get(r).ok_or(Errno::EBADF)?;
        let v6only = s.opts.v6only;
        let Proto::Udp(u) = &s.proto else {
            return Err(Errno::EINVAL);
        };
        if u.bound.is_some() {
            return Err(Errno::EINVAL);
        }
        let bcast = matches!(addr, IpAddr::V4(a) if a.is_broadcast());
        if !addr.is_unspecified() && !self.is_local_ip(addr) && !bcast {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let family_v4 = s.any_addr().is_ipv4();
        let conflict = |c: &Core, a: IpAddr, p: u16| {
            c.udp_binds.iter().any(|(&(b, bp), &o)| {
                let Some(os) = c.socks.get(o).filter(|_| bp == p) else {
                    return false;
                };
                // An IPv6 address a connect chose keeps a placeholder IPv4
                // address that the IPv4 wildcard meets (Linux's
                // LOOPBACK4_IPV6 in inet_rcv_saddr).
                let narrowed = matches!(&os.proto, Proto::Udp(u) if !u.addr_locked)
                    && b.is_ipv6()
                    && !b.is_unspecified()
                    && !os.opts.v6only;
                bind_overlap(b, os.opts.v6only, a, v6only)
                    || (narrowed && family_v4 && a.is_unspecified())
            })
        };
        let port = if port == 0 {
            self.ephemeral_port(|c, p| conflict(c, addr, p))?
        } else {
            if conflict(self, addr, port) {
                return Err(Errno::EADDRINUSE);
            }
            port
        };
        self.udp_binds.insert((addr, port), r);
        let any = self.socks.get(r).map(|s| s.any_addr());
        if let Some(Proto::Udp(u)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            u.bound = Some((addr, port));
            // An automatic bind asks for neither (wildcard, port 0); any
            // address but the family's wildcard is a choice (Linux's
            // SOCK_BINDADDR_LOCK, which `::ffff:0.0.0.0` sets).
            u.port_locked = port_asked != 0;
            u.addr_locked = Some(addr) != any;
            u.kept_addr = None;
        }
        Ok(())
    }

    /// Moves the binding of `r` to `addr` (same port), as Linux's
    /// udp_lib_rehash: no conflict check, the port is the socket's
    /// already. Kept where it is if another socket holds the new key.
    fn udp_rebind(&mut self, r: SockRef, addr: IpAddr) {
        let Some(Proto::Udp(u)) = self.socks.get(r).map(|s| &s.proto) else {
            return;
        };
        let Some(old) = u.bound else {
            return;
        };
        let new = (addr, old.1);
        if old == new || self.udp_binds.get(&new).is_some_and(|&o| o != r) {
            return;
        }
        if self.udp_binds.get(&old) == Some(&r) {
            self.udp_binds.remove(&old);
        }
        self.udp_binds.insert(new, r);
        if let Some(Proto::Udp(u)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            u.bound = Some(new);
        }
    }

    /// `connect` of UDP socket `r` (bound already, as Linux's
    /// inet_dgram_connect binds first): `Some` associates it with a peer,
    /// giving a wildcard binding the route's source address (getsockname
    /// then shows the address the socket sends from); `None`
    /// (`AF_UNSPEC`) dissolves the association and undoes what connect
    /// and an automatic bind did: an address `bind` did not ask for goes
    /// back to the wildcard, a port it did not ask for is released.
    pub fn udp_connect(
        &mut self,
        r: SockRef,
        target: Option<(IpAddr, u16, u32)>,
    ) -> Result<(), Errno> {
        let s = self.socks.get(r).ok_or(Errno::EBADF)?;
        let broadcast_ok = s.opts.broadcast;
        let any = s.any_addr();
        let Proto::Udp(u) = &s.proto else {
            return Err(Errno::EINVAL);
        };
        let (bound, addr_locked, port_locked) = (u.bound, u.addr_locked, u.port_locked);
        let Some((ip, port, scope)) = target else {
            if let Some(Proto::Udp(u)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
                u.peer = None;
            }
            if !port_locked {
                if let Some(b) = bound {
                    if self.udp_binds.get(&b) == Some(&r) {
                        self.udp_binds.remove(&b);
                    }
                }
                if let Some(Proto::Udp(u)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
                    u.kept_addr = bound.map(|b| b.0).filter(|_| addr_locked);
                    u.bound = None;
                }
            } else if !addr_locked {
                self.udp_rebind(r, any);
            }
            return Ok(());
        };
        let rt = self.route_ip(ip, scope).ok_or(Errno::ENETUNREACH)?;
        if matches!(ip, IpAddr::V4(a) if a.is_broadcast()) && !broadcast_ok {
            return Err(Errno::EACCES);
        }
        let baddr = bound.map(|b| b.0);
        // An IPv4-mapped source cannot take an IPv6 route (Linux's
        // ip6_dst_lookup_tail).
        if baddr.is_some_and(|a| a.is_ipv4()) && ip.is_ipv6() {
            return Err(Errno::EAFNOSUPPORT);
        }
        if let Some(Proto::Udp(u)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            u.peer = Some((ip, port, scope));
        }
        if baddr.is_some_and(|a| a.is_unspecified()) {
            self.udp_rebind(r, rt.src);
        }
        Ok(())
    }

    /// Sends one datagram from `r` to `to`.
    /// Binds an unbound UDP socket to an ephemeral port, as Linux does
    /// before it looks at anything a send asks (inet_send_prepare): even
    /// a send that fails leaves the socket bound.
    pub fn udp_autobind(&mut self, r: SockRef) -> Result<(), Errno> {
        let s = self.socks.get(r).ok_or(Errno::EBADF)?;
        let any = s.any_addr();
        match &s.proto {
            Proto::Udp(u) if u.bound.is_none() => {
                let addr = u.kept_addr.unwrap_or(any);
                self.udp_bind(r, addr, 0).map_err(|_| Errno::EAGAIN)
            }
            _ => Ok(()),
        }
    }

    pub fn udp_send(
        &mut self,
        pool: &FramePool,
        r: SockRef,
        data: &[u8],
        to: Option<(IpAddr, u16, u32)>,
        ctl: SendCtl,
        fx: &mut Effects,
    ) -> Result<usize, Errno> {
        // In Linux's order (udp_sendmsg, then ip_append_data and the
        // buffer allocation): the length, the destination, the route,
        // the size IP can carry, and only then a pending error and a
        // shut write side. The caller has bound the socket already.
        if data.len() > 0xffff {
            return Err(Errno::EMSGSIZE);
        }
        let s = self.socks.get_mut(r).ok_or(Errno::EBADF)?;
        let (ttl, broadcast) = (ctl.ttl.unwrap_or(s.opts.ttl), s.opts.broadcast);
        let any = s.any_addr();
        let Proto::Udp(u) = &s.proto else {
            return Err(Errno::EINVAL);
        };
        let (dst, dport, mut scope) = to.or(u.peer).ok_or(Errno::EDESTADDRREQ)?;
        if ctl.ifindex != 0 {
            scope = ctl.ifindex;
        }
        // Port 0 is refused as a destination given here; an association
        // with port 0 sends there (Linux's udp_sendmsg), except from an
        // AF_INET6 socket to an IPv4-mapped peer, which Linux's
        // udpv6_sendmsg hands to IPv4 as a destination given.
        let mapped = any.is_ipv6() && dst.is_ipv4();
        if dport == 0 && (to.is_some() || mapped) {
            return Err(Errno::EINVAL);
        }
        let bcast = matches!(dst, IpAddr::V4(a) if a.is_broadcast());
        if bcast && !broadcast {
            return Err(Errno::EACCES);
        }
        if u.bound.is_none() {
            let addr = u.kept_addr.unwrap_or(any);
            self.udp_bind(r, addr, 0)?;
        }
        let ((baddr, sport), addr_locked) = match self.socks.get(r).map(|s| &s.proto) {
            Some(Proto::Udp(u)) => (u.bound.ok_or(Errno::EINVAL)?, u.addr_locked),
            _ => return Err(Errno::EINVAL),
        };
        let rt = self.route_ip(dst, scope).ok_or(Errno::ENETUNREACH)?;
        // An IPv4-mapped source cannot take an IPv6 route (Linux's
        // ip6_dst_lookup_tail).
        if baddr.is_ipv4() && dst.is_ipv6() {
            return Err(Errno::EAFNOSUPPORT);
        }
        let src = if let Some(src) = ctl.src {
            if src.is_ipv4() != dst.is_ipv4() || !self.is_local_ip(src) {
                return Err(Errno::EINVAL);
            }
            src
        } else if baddr.is_unspecified()
            || matches!(baddr, IpAddr::V4(a) if a.is_broadcast())
            || (baddr.is_ipv6() && dst.is_ipv4() && !addr_locked)
        {
            // An IPv6 address a connect chose leaves IPv4 its own source
            // (Linux narrows only the IPv6 side of the binding).
            rt.src
        } else if baddr.is_ipv4() != dst.is_ipv4() {
            return Err(Errno::ENETUNREACH);
        } else {
            baddr
        };
        let hdr = if dst.is_ipv4() { 20 } else { IPV6_HDR };
        let len = UDP_HDR + data.len();
        // Larger than the link's MTU is fragmented; larger than IP's
        // length fields is not possible (65,507 bytes of data over IPv4,
        // 65,527 over IPv6).
        if !fits_ip(dst, hdr + len) {
            return Err(Errno::EMSGSIZE);
        }
        if let Some(s) = self.socks.get_mut(r) {
            if let Some(e) = s.error.take() {
                return Err(e);
            }
            if s.shut_wr {
                return Err(Errno::EPIPE);
            }
        }
        let mut f = pool.get(ETH_HDR + hdr + len);
        {
            let mut p = UdpPacket::new_unchecked(&mut f[ETH_HDR + hdr..]);
            p.set_src_port(sport);
            p.set_dst_port(dport);
            p.set_len(len as u16);
            p.payload_mut()[..data.len()].copy_from_slice(data);
            p.fill_checksum(&src.into(), &dst.into());
        }
        match (src, dst) {
            (IpAddr::V4(s4), IpAddr::V4(d4)) => {
                let id = self.next_ip_id();
                emit_ipv4(&mut f, s4, d4, IpProtocol::Udp, ttl, id, len);
                self.stats.ip_sent += 1;
            }
            (IpAddr::V6(s6), IpAddr::V6(d6)) => {
                emit_ipv6(&mut f, s6, d6, IpProtocol::Udp, ttl, len);
                self.stats.ip6_sent += 1;
            }
            _ => {
                pool.put(f);
                return Err(Errno::ENETUNREACH);
            }
        }
        self.stats.udp_out += 1;
        self.send_via(pool, rt.ifindex, rt.next_hop, f, true, fx);
        Ok(data.len())
    }

    /// A received datagram: `pkt` is the whole IP packet (IPv6 with the
    /// UDP header right after the fixed header), from `src` to `dst`;
    /// `is_bcast` for broadcast and multicast destinations.
    #[allow(clippy::too_many_arguments)]
    pub fn udp_input(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        pkt: &[u8],
        src: IpAddr,
        dst: IpAddr,
        is_bcast: bool,
        fx: &mut Effects,
    ) {
        let offload = self.iface(ifindex).is_some_and(|i| i.offload);
        let l4 = match src {
            IpAddr::V4(_) => Ipv4Packet::new_checked(pkt).ok().map(|ip| ip.payload()),
            IpAddr::V6(_) => pkt.get(IPV6_HDR..),
        };
        let Some(Ok(u)) = l4.map(UdpPacket::new_checked) else {
            self.stats.bad_frames += 1;
            return;
        };
        // A zero checksum means the sender computed none (RFC 768); IPv6
        // makes it mandatory (RFC 8200 §8.1).
        let unchecked = u.checksum() == 0 && src.is_ipv4();
        if !offload
            && !unchecked
            && !u.verify_checksum(&IpAddress::from(src), &IpAddress::from(dst))
        {
            self.stats.bad_frames += 1;
            return;
        }
        let (sport, dport) = (u.src_port(), u.dst_port());
        let Some(r) = self.udp_lookup(dst, dport, src, sport) else {
            self.stats.udp_no_port += 1;
            if !is_bcast {
                match src {
                    IpAddr::V4(_) => self.icmp_error(pool, pkt, IcmpError::PortUnreachable, fx),
                    IpAddr::V6(_) => {
                        self.icmp6_error(pool, pkt, Icmp6Error::PortUnreachable, Some(ifindex), fx)
                    }
                }
            }
            return;
        };
        let payload = u.payload();
        let Some(s) = self.socks.get_mut(r) else {
            return;
        };
        let rcvbuf = s.opts.rcvbuf;
        let wants = s.opts.wants;
        let Proto::Udp(us) = &mut s.proto else {
            return;
        };
        let cost = payload.len() + DATAGRAM_OVERHEAD;
        // One datagram always fits, however large; beyond that, SO_RCVBUF.
        // A read side shut down still takes datagrams in, as on Linux.
        if us.rx_bytes + cost > rcvbuf && !us.rxq.is_empty() {
            self.stats.udp_rcvbuf_errors += 1;
            return;
        }
        us.rx_bytes += cost;
        let mut meta = RxMeta::default();
        if wants.any() {
            meta.to = Some(dst);
            meta.ifindex = ifindex as u32;
            meta.ttl = match src {
                IpAddr::V4(_) => pkt[8],
                IpAddr::V6(_) => pkt[7],
            };
            if wants.timestamp || wants.timestamp_ns {
                meta.stamp = self
                    .kernel
                    .upgrade()
                    .map(|k| k.hyper().clock_wall())
                    .map(|t| (t.sec, t.nsec));
            }
        }
        let Some(Proto::Udp(us)) = self.socks.get_mut(r).map(|s| &mut s.proto) else {
            return;
        };
        us.rxq.push_back(Datagram {
            from: (src, sport),
            data: payload.to_vec(),
            meta,
        });
        self.stats.udp_in += 1;
        if let Some(s) = self.socks.get(r) {
            fx.wake(&s.shared);
        }
    }

    /// The socket a datagram to `dst:dport` from `src:sport` is for: the
    /// most specific binding whose association (if any) is with the
    /// sender. A socket connected to another peer does not take it, and
    /// when no other does the sender hears of an unreachable port, as
    /// from Linux.
    fn udp_lookup(&self, dst: IpAddr, dport: u16, src: IpAddr, sport: u16) -> Option<SockRef> {
        let v6any = IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED);
        let keys = [
            Some(dst),
            Some(crate::tcp::unspecified_like(dst)),
            dst.is_ipv4().then_some(v6any),
        ];
        keys.into_iter().flatten().find_map(|a| {
            let &r = self.udp_binds.get(&(a, dport))?;
            let s = self.socks.get(r)?;
            if a == v6any && dst.is_ipv4() && s.opts.v6only {
                return None;
            }
            match &s.proto {
                Proto::Udp(u) if u.takes_from(src, sport) => Some(r),
                _ => None,
            }
        })
    }

    /// Takes (or peeks at) the next datagram of `r`: bytes copied, the
    /// datagram's full length, and its sender. `None` when the queue is empty.
    pub fn udp_recv(
        &mut self,
        r: SockRef,
        buf: &mut [u8],
        peek: bool,
        nonblock: bool,
    ) -> Result<Option<Received>, Errno> {
        let s = self.socks.get_mut(r).ok_or(Errno::EBADF)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let shut_rd = s.shut_rd;
        let Proto::Udp(u) = &mut s.proto else {
            return Err(Errno::EINVAL);
        };
        let Some(d) = u.rxq.front() else {
            // Linux: a read side shut down ends only a receive that would
            // wait; a non-blocking one says EAGAIN.
            if shut_rd && !nonblock {
                return Ok(Some((
                    0,
                    0,
                    (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
                    RxMeta::default(),
                )));
            }
            return Ok(None);
        };
        let out = d.copy_out(buf);
        if !peek {
            if let Some(d) = u.rxq.pop_front() {
                u.rx_bytes -= d.data.len() + DATAGRAM_OVERHEAD;
            }
        }
        Ok(Some(out))
    }

    /// An ICMP error about a datagram we sent from `src:sport` to
    /// `dst:dport`: a connected socket hears of it (as on Linux without
    /// `IP_RECVERR`).
    pub fn udp_icmp_error(
        &mut self,
        src: IpAddr,
        sport: u16,
        dst: IpAddr,
        dport: u16,
        err: Errno,
        fx: &mut Effects,
    ) {
        let r = self.lookup_bound(&self.udp_binds, src, sport);
        let Some(s) = r.and_then(|r| self.socks.get_mut(r)) else {
            return;
        };
        if let Proto::Udp(u) = &s.proto {
            if u.peer.is_some() && u.takes_from(dst, dport) {
                s.error = Some(err);
                fx.wake(&s.shared);
            }
        }
    }
}
