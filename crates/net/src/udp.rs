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
    /// The connected peer, with the zone of a link-local one.
    pub peer: Option<(IpAddr, u16, u32)>,
    pub rxq: VecDeque<Datagram>,
    pub rx_bytes: usize,
}

impl UdpSock {
    pub fn new() -> Self {
        UdpSock {
            bound: None,
            peer: None,
            rxq: VecDeque::new(),
            rx_bytes: 0,
        }
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
        let conflict = |c: &Core, a: IpAddr, p: u16| {
            c.udp_binds.iter().any(|(&(b, bp), &o)| {
                bp == p && bind_overlap(b, c.socks.get(o).is_some_and(|s| s.opts.v6only), a, v6only)
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
        if let Some(Proto::Udp(u)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            u.bound = Some((addr, port));
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
                self.udp_bind(r, any, 0).map_err(|_| Errno::EAGAIN)
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
        if dport == 0 {
            return Err(Errno::EINVAL);
        }
        let bcast = matches!(dst, IpAddr::V4(a) if a.is_broadcast());
        if bcast && !broadcast {
            return Err(Errno::EACCES);
        }
        if u.bound.is_none() {
            self.udp_bind(r, any, 0)?;
        }
        let (baddr, sport) = match self.socks.get(r).map(|s| &s.proto) {
            Some(Proto::Udp(u)) => u.bound.ok_or(Errno::EINVAL)?,
            _ => return Err(Errno::EINVAL),
        };
        let rt = self.route_ip(dst, scope).ok_or(Errno::ENETUNREACH)?;
        let src = if let Some(src) = ctl.src {
            if src.is_ipv4() != dst.is_ipv4() || !self.is_local_ip(src) {
                return Err(Errno::EINVAL);
            }
            src
        } else if baddr.is_unspecified() || matches!(baddr, IpAddr::V4(a) if a.is_broadcast()) {
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
        let Some(r) = self.lookup_bound(&self.udp_binds, dst, dport) else {
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
        if let Some(peer) = us.peer {
            if (peer.0, peer.1) != (src, sport) {
                return;
            }
        }
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
            if u.peer.is_some_and(|p| (p.0, p.1) == (dst, dport)) {
                s.error = Some(err);
                fx.wake(&s.shared);
            }
        }
    }
}
