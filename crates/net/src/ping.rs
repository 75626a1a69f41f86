//! ICMP echo sockets (Linux's "ping sockets": `socket(AF_INET,
//! SOCK_DGRAM, IPPROTO_ICMP)`): the user sends an ICMP echo request header
//! and payload; the kernel puts the socket's identifier in it and computes
//! the checksum; echo replies with that identifier come back as datagrams.
//! ICMP errors about our requests become the socket's pending error.

use alloc::collections::VecDeque;
use core::net::Ipv4Addr;

use smoltcp::wire::{Icmpv4Packet, IpProtocol};

use kern::Errno;

use crate::iface::ETH_HDR;
use crate::ip::emit_ipv4;
use crate::pool::FramePool;
use crate::stack::{Core, Effects, Proto, SockRef};
use crate::udp::Datagram;

/// Replies queued per socket.
const PING_QUEUE: usize = 64;

pub(crate) struct PingSock {
    /// The echo identifier (the socket's "port").
    pub ident: Option<u16>,
    pub peer: Option<Ipv4Addr>,
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
        to: Option<Ipv4Addr>,
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
        let dst = to.or(p.peer).ok_or(Errno::EDESTADDRREQ)?;
        if data.len() < 8 || data[0] != 8 || data[1] != 0 {
            return Err(Errno::EINVAL);
        }
        if p.ident.is_none() {
            self.ping_bind(r, 0)?;
        }
        let ident = match self.socks.get(r).map(|s| &s.proto) {
            Some(Proto::Ping(p)) => p.ident.ok_or(Errno::EINVAL)?,
            _ => return Err(Errno::EINVAL),
        };
        let rt = self.route(dst).ok_or(Errno::ENETUNREACH)?;
        let mtu = self.iface(rt.ifindex).map(|i| i.mtu).unwrap_or(0);
        if 20 + data.len() > mtu {
            return Err(Errno::EMSGSIZE);
        }
        let mut f = pool.get(ETH_HDR + 20 + data.len());
        f[ETH_HDR + 20..].copy_from_slice(data);
        {
            let mut icmp = Icmpv4Packet::new_unchecked(&mut f[ETH_HDR + 20..]);
            icmp.set_echo_ident(ident);
            icmp.fill_checksum();
        }
        let id = self.next_ip_id();
        emit_ipv4(&mut f, rt.src, dst, IpProtocol::Icmp, ttl, id, data.len());
        self.stats.icmp_out += 1;
        self.stats.ip_sent += 1;
        self.send_via(pool, rt.ifindex, rt.next_hop, f, true, fx);
        Ok(data.len())
    }

    /// An echo reply arrived for identifier `ident`.
    pub fn ping_deliver(&mut self, ident: u16, from: Ipv4Addr, icmp: &[u8], fx: &mut Effects) {
        let Some(&r) = self.ping_ids.get(&ident) else {
            return;
        };
        let Some(s) = self.socks.get_mut(r) else {
            return;
        };
        if let Proto::Ping(p) = &mut s.proto {
            if p.peer.is_some_and(|peer| peer != from) || p.rxq.len() >= PING_QUEUE {
                return;
            }
            p.rxq.push_back(Datagram {
                from: (from, 0),
                data: icmp.to_vec(),
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
    ) -> Result<Option<(usize, usize, (Ipv4Addr, u16))>, Errno> {
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
