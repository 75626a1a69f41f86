//! ICMP echo sockets (Linux's "ping sockets": `socket(AF_INET,
//! SOCK_DGRAM, IPPROTO_ICMP)`): the user sends an ICMP echo request header
//! and payload; the kernel puts the socket's identifier in it and computes
//! the checksum; echo replies with that identifier come back as datagrams.
//! ICMP errors about our requests become the socket's pending error.
//! `socket(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)` is the same for ICMPv6
//! echo (types 128 and 129).

use alloc::collections::VecDeque;
use core::net::IpAddr;

use smoltcp::wire::{Icmpv4Packet, Icmpv6Packet, IpProtocol};

use kern::Errno;

use crate::iface::ETH_HDR;
use crate::ip::emit_ipv4;
use crate::ip6::{emit_ipv6, IPV6_HDR};
use crate::pool::FramePool;
use crate::stack::{Core, Effects, Proto, SockRef};
use crate::udp::Datagram;

/// Replies queued per socket.
const PING_QUEUE: usize = 64;

pub(crate) struct PingSock {
    /// The echo identifier (the socket's "port").
    pub ident: Option<u16>,
    /// The connected peer and the zone of a link-local one.
    pub peer: Option<(IpAddr, u32)>,
    pub rxq: VecDeque<Datagram>,
}

impl PingSock {
    pub fn new() -> Self {
        PingSock {
            ident: None,
            peer: None,
            rxq: VecDeque::new(),
        }
    }
}

impl Core {
    /// Gives ping socket `r` an identifier (`0`: any free one).
    pub fn ping_bind(&mut self, r: SockRef, ident: u16) -> Result<(), Errno> {
        match self.socks.get(r).map(|s| &s.proto) {
            Some(Proto::Ping(p)) if p.ident.is_none() => {}
            Some(Proto::Ping(_)) => return Err(Errno::EINVAL),
            _ => return Err(Errno::EBADF),
        }
        let ident = if ident == 0 {
            self.ephemeral_port(|c, p| c.ping_ids.contains_key(&p))?
        } else if self.ping_ids.contains_key(&ident) {
            return Err(Errno::EADDRINUSE);
        } else {
            ident
        };
        self.ping_ids.insert(ident, r);
        if let Some(Proto::Ping(p)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            p.ident = Some(ident);
        }
        Ok(())
    }

    /// Sends an echo request; `data` starts with the 8-byte ICMP header.
    pub fn ping_send(
        &mut self,
        pool: &FramePool,
        r: SockRef,
        data: &[u8],
        to: Option<(IpAddr, u32)>,
        fx: &mut Effects,
    ) -> Result<usize, Errno> {
        let s = self.socks.get_mut(r).ok_or(Errno::EBADF)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let ttl = s.opts.ttl;
        let Proto::Ping(p) = &s.proto else {
            return Err(Errno::EINVAL);
        };
        let (dst, scope) = to.or(p.peer).ok_or(Errno::EDESTADDRREQ)?;
        let request = if dst.is_ipv4() { 8 } else { 128 };
        if data.len() < 8 || data[0] != request || data[1] != 0 {
            return Err(Errno::EINVAL);
        }
        if p.ident.is_none() {
            self.ping_bind(r, 0)?;
        }
        let ident = match self.socks.get(r).map(|s| &s.proto) {
            Some(Proto::Ping(p)) => p.ident.ok_or(Errno::EINVAL)?,
            _ => return Err(Errno::EINVAL),
        };
        let rt = self.route_ip(dst, scope).ok_or(Errno::ENETUNREACH)?;
        let hdr = if dst.is_ipv4() { 20 } else { IPV6_HDR };
        if !crate::udp::fits_ip(dst, hdr + data.len()) {
            return Err(Errno::EMSGSIZE);
        }
        let mut f = pool.get(ETH_HDR + hdr + data.len());
        f[ETH_HDR + hdr..].copy_from_slice(data);
        f[ETH_HDR + hdr + 4..ETH_HDR + hdr + 6].copy_from_slice(&ident.to_be_bytes());
        match (rt.src, dst) {
            (IpAddr::V4(src), IpAddr::V4(d)) => {
                Icmpv4Packet::new_unchecked(&mut f[ETH_HDR + hdr..]).fill_checksum();
                let id = self.next_ip_id();
                emit_ipv4(&mut f, src, d, IpProtocol::Icmp, ttl, id, data.len());
                self.stats.icmp_out += 1;
                self.stats.ip_sent += 1;
            }
            (IpAddr::V6(src), IpAddr::V6(d)) => {
                Icmpv6Packet::new_unchecked(&mut f[ETH_HDR + hdr..]).fill_checksum(&src, &d);
                emit_ipv6(&mut f, src, d, IpProtocol::Icmpv6, ttl, data.len());
                self.stats.icmp6_out += 1;
                self.stats.ip6_sent += 1;
            }
            _ => {
                pool.put(f);
                return Err(Errno::ENETUNREACH);
            }
        }
        self.send_via(pool, rt.ifindex, rt.next_hop, f, true, fx);
        Ok(data.len())
    }

    /// An echo reply (ICMP or ICMPv6, by `from`'s family) arrived for
    /// identifier `ident` with TTL (hop limit) `ttl`, which `IP_RECVTTL`
    /// / `IPV6_RECVHOPLIMIT` report (ping(8) prints it).
    pub fn ping_deliver(
        &mut self,
        ident: u16,
        from: IpAddr,
        ttl: u8,
        icmp: &[u8],
        fx: &mut Effects,
    ) {
        let Some(&r) = self.ping_ids.get(&ident) else {
            return;
        };
        let Some(s) = self.socks.get_mut(r) else {
            return;
        };
        // An IPv4 socket hears IPv4 replies, an IPv6 one IPv6 replies.
        if (s.family == kern::consts::af::INET6) != from.is_ipv6() {
            return;
        }
        if let Proto::Ping(p) = &mut s.proto {
            if p.peer.is_some_and(|peer| peer.0 != from) || p.rxq.len() >= PING_QUEUE {
                return;
            }
            p.rxq.push_back(Datagram {
                from: (from, 0),
                data: icmp.to_vec(),
                meta: crate::cmsg::RxMeta {
                    ttl,
                    ..Default::default()
                },
            });
            fx.wake(&s.shared);
        }
    }

    /// An ICMP error quoting one of `ident`'s requests.
    pub fn ping_error(&mut self, ident: u16, err: Errno, fx: &mut Effects) {
        let Some(&r) = self.ping_ids.get(&ident) else {
            return;
        };
        if let Some(s) = self.socks.get_mut(r) {
            s.error = Some(err);
            fx.wake(&s.shared);
        }
    }

    /// Takes (or peeks at) the next reply of ping socket `r`.
    pub fn ping_recv(
        &mut self,
        r: SockRef,
        buf: &mut [u8],
        peek: bool,
    ) -> Result<Option<crate::udp::Received>, Errno> {
        let s = self.socks.get_mut(r).ok_or(Errno::EBADF)?;
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        let Proto::Ping(p) = &mut s.proto else {
            return Err(Errno::EINVAL);
        };
        let Some(d) = p.rxq.front() else {
            return Ok(None);
        };
        let out = d.copy_out(buf);
        if !peek {
            let _: Option<Datagram> = p.rxq.pop_front();
        }
        Ok(Some(out))
    }
}
