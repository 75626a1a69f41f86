//! BSD sockets: [`Socket`], the open-file kind behind a socket descriptor,
//! and its operations (`bind`, `listen`, `accept`, `connect`, `send`,
//! `recv`, `shutdown`, names and options) with Linux's semantics and
//! errors. The system-call layer (`sys`) finds a `Socket` behind a
//! descriptor with [`socket_of`] and calls these; nothing else does.
//!
//! Blocking calls do their protocol work in the calling thread, then wait
//! in two phases: a short spin, when a processor is free for it and this
//! socket's recent waits were short (each socket learns its spin length,
//! at most `net.socket.spin_max_ns`; a reply that is microseconds away then
//! costs no sleep and wake-up through the host), then a sleep on the
//! socket's wait queue, which `poll` uses too (`accept` sleeps on its own
//! queue, one thread woken per connection). `O_NONBLOCK`
//! and `MSG_DONTWAIT` return `EAGAIN` instead; `SO_RCVTIMEO` and
//! `SO_SNDTIMEO` bound the sleep.

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::IpAddr;
use core::sync::atomic::Ordering;

use kern::consts::{
    af, ip as ipopt, ipproto, ipv6 as ip6opt, msg, o, poll, s as mode, shut, so, sock,
    tcp as tcpopt,
};
use kern::{Errno, File, FileOps, Kernel, Pos, Proc, Stat};
use smoltcp::socket::tcp::State;

use crate::addr::SockAddr;
use crate::ping::PingSock;
use crate::stack::{Core, Effects, Proto, Sock, SockOpts, SockRef, SockShared, Stack};
use crate::tcp::{apply_opts, TcpSock, TcpState};
use crate::udp::UdpSock;

/// Largest `SO_RCVBUF`/`SO_SNDBUF` (after doubling).
pub const MAX_SOCKBUF: usize = 16 << 20;
/// Smallest.
pub const MIN_SOCKBUF: usize = 4096;

/// A socket option with its value, typed. The C ABI maps Linux's
/// `(level, name, bytes)` onto it with [`SockOpt::from_linux`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SockOpt {
    ReuseAddr(bool),
    KeepAlive(bool),
    Broadcast(bool),
    /// Bytes. Setting asks for this much; as on Linux the kernel doubles
    /// it (bookkeeping allowance) and reports the doubled value.
    RcvBuf(u32),
    SndBuf(u32),
    /// `SO_LINGER`: `Some(seconds)` when on.
    Linger(Option<u32>),
    /// Nanoseconds; `None` waits forever.
    RcvTimeo(Option<u64>),
    SndTimeo(Option<u64>),
    /// `SO_ERROR` (read and clear); read-only.
    Error(i32),
    /// `SO_TYPE`; read-only.
    Type(i32),
    /// `SO_ACCEPTCONN`; read-only.
    AcceptConn(bool),
    /// `SO_DOMAIN`; read-only.
    Domain(i32),
    /// `SO_PROTOCOL`; read-only.
    Protocol(i32),
    /// `TCP_NODELAY`.
    NoDelay(bool),
    /// `TCP_KEEPIDLE`: seconds of silence before the first keep-alive probe.
    KeepIdle(u32),
    /// `TCP_KEEPINTVL`: seconds between probes.
    KeepIntvl(u32),
    /// `TCP_KEEPCNT`: unanswered probes before the connection is dropped.
    KeepCnt(u32),
    /// `IP_TTL`.
    Ttl(u8),
    /// `IPV6_UNICAST_HOPS`: the hop limit of an IPv6 socket.
    HopLimit(u8),
    /// `IPV6_V6ONLY`: an IPv6 socket takes no IPv4 (settable before bind).
    V6Only(bool),
    /// `IP_PKTINFO` (IPv4 sockets) and `IPV6_RECVPKTINFO` (IPv6): report
    /// each datagram's destination and interface.
    PktInfo(bool),
    RecvPktInfo6(bool),
    /// `IP_RECVTTL` and `IPV6_RECVHOPLIMIT`: report each datagram's TTL.
    RecvTtl(bool),
    RecvHopLimit(bool),
    /// `SO_TIMESTAMP` and `SO_TIMESTAMPNS`: report arrival times.
    Timestamp(bool),
    TimestampNs(bool),
}

impl SockOpt {
    /// Linux's `(level, optname)` for this option.
    pub fn level_name(&self) -> (i32, i32) {
        match self {
            SockOpt::ReuseAddr(_) => (so::SOL_SOCKET, so::REUSEADDR),
            SockOpt::KeepAlive(_) => (so::SOL_SOCKET, so::KEEPALIVE),
            SockOpt::Broadcast(_) => (so::SOL_SOCKET, so::BROADCAST),
            SockOpt::RcvBuf(_) => (so::SOL_SOCKET, so::RCVBUF),
            SockOpt::SndBuf(_) => (so::SOL_SOCKET, so::SNDBUF),
            SockOpt::Linger(_) => (so::SOL_SOCKET, so::LINGER),
            SockOpt::RcvTimeo(_) => (so::SOL_SOCKET, so::RCVTIMEO),
            SockOpt::SndTimeo(_) => (so::SOL_SOCKET, so::SNDTIMEO),
            SockOpt::Error(_) => (so::SOL_SOCKET, so::ERROR),
            SockOpt::Type(_) => (so::SOL_SOCKET, so::TYPE),
            SockOpt::AcceptConn(_) => (so::SOL_SOCKET, so::ACCEPTCONN),
            SockOpt::Domain(_) => (so::SOL_SOCKET, so::DOMAIN),
            SockOpt::Protocol(_) => (so::SOL_SOCKET, so::PROTOCOL),
            SockOpt::NoDelay(_) => (ipproto::TCP, tcpopt::NODELAY),
            SockOpt::KeepIdle(_) => (ipproto::TCP, tcpopt::KEEPIDLE),
            SockOpt::KeepIntvl(_) => (ipproto::TCP, tcpopt::KEEPINTVL),
            SockOpt::KeepCnt(_) => (ipproto::TCP, tcpopt::KEEPCNT),
            SockOpt::Ttl(_) => (ipproto::IP, ipopt::TTL),
            SockOpt::HopLimit(_) => (ipproto::IPV6, ip6opt::UNICAST_HOPS),
            SockOpt::V6Only(_) => (ipproto::IPV6, ip6opt::V6ONLY),
            SockOpt::PktInfo(_) => (ipproto::IP, ipopt::PKTINFO),
            SockOpt::RecvPktInfo6(_) => (ipproto::IPV6, ip6opt::RECVPKTINFO),
            SockOpt::RecvTtl(_) => (ipproto::IP, ipopt::RECVTTL),
            SockOpt::RecvHopLimit(_) => (ipproto::IPV6, ip6opt::RECVHOPLIMIT),
            SockOpt::Timestamp(_) => (so::SOL_SOCKET, so::TIMESTAMP),
            SockOpt::TimestampNs(_) => (so::SOL_SOCKET, so::TIMESTAMPNS),
        }
    }

    /// Parses Linux's option bytes (`int`, `struct linger`,
    /// `struct timeval`) for `setsockopt`.
    pub fn from_linux(level: i32, name: i32, val: &[u8]) -> Result<SockOpt, Errno> {
        let int = || -> Result<i32, Errno> {
            let b = val.get(..4).ok_or(Errno::EINVAL)?;
            Ok(i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        };
        let i64_at = |i: usize| -> Result<i64, Errno> {
            let b = val.get(i..i + 8).ok_or(Errno::EINVAL)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(i64::from_ne_bytes(a))
        };
        let timeval = || -> Result<Option<u64>, Errno> {
            let (sec, usec) = (i64_at(0)?, i64_at(8)?);
            if sec < 0 || !(0..1_000_000).contains(&usec) {
                return Err(Errno::EDOM);
            }
            let ns = (sec as u64)
                .saturating_mul(1_000_000_000)
                .saturating_add(usec as u64 * 1000);
            Ok((ns != 0).then_some(ns))
        };
        Ok(match (level, name) {
            (so::SOL_SOCKET, so::REUSEADDR) => SockOpt::ReuseAddr(int()? != 0),
            (so::SOL_SOCKET, so::KEEPALIVE) => SockOpt::KeepAlive(int()? != 0),
            (so::SOL_SOCKET, so::BROADCAST) => SockOpt::Broadcast(int()? != 0),
            (so::SOL_SOCKET, so::RCVBUF) => SockOpt::RcvBuf(int()?.max(0) as u32),
            (so::SOL_SOCKET, so::SNDBUF) => SockOpt::SndBuf(int()?.max(0) as u32),
            (so::SOL_SOCKET, so::LINGER) => {
                let on = int()? != 0;
                let b = val.get(4..8).ok_or(Errno::EINVAL)?;
                let secs = i32::from_ne_bytes([b[0], b[1], b[2], b[3]]).max(0) as u32;
                SockOpt::Linger(on.then_some(secs))
            }
            (so::SOL_SOCKET, so::RCVTIMEO) => SockOpt::RcvTimeo(timeval()?),
            (so::SOL_SOCKET, so::SNDTIMEO) => SockOpt::SndTimeo(timeval()?),
            (ipproto::TCP, tcpopt::NODELAY) => SockOpt::NoDelay(int()? != 0),
            // Linux's bounds: 1..=32767 seconds, 1..=127 probes.
            (ipproto::TCP, tcpopt::KEEPIDLE) => SockOpt::KeepIdle(ranged(int()?, 1, 32767)?),
            (ipproto::TCP, tcpopt::KEEPINTVL) => SockOpt::KeepIntvl(ranged(int()?, 1, 32767)?),
            (ipproto::TCP, tcpopt::KEEPCNT) => SockOpt::KeepCnt(ranged(int()?, 1, 127)?),
            (ipproto::IP, ipopt::TTL) => SockOpt::Ttl(hops(int()?, 1)?),
            (ipproto::IPV6, ip6opt::UNICAST_HOPS) => SockOpt::HopLimit(hops(int()?, 0)?),
            (ipproto::IPV6, ip6opt::V6ONLY) => SockOpt::V6Only(int()? != 0),
            (ipproto::IP, ipopt::PKTINFO) => SockOpt::PktInfo(int()? != 0),
            (ipproto::IPV6, ip6opt::RECVPKTINFO) => SockOpt::RecvPktInfo6(int()? != 0),
            (ipproto::IP, ipopt::RECVTTL) => SockOpt::RecvTtl(int()? != 0),
            (ipproto::IPV6, ip6opt::RECVHOPLIMIT) => SockOpt::RecvHopLimit(int()? != 0),
            (so::SOL_SOCKET, so::TIMESTAMP) => SockOpt::Timestamp(int()? != 0),
            (so::SOL_SOCKET, so::TIMESTAMPNS) => SockOpt::TimestampNs(int()? != 0),
            _ => return Err(Errno::ENOPROTOOPT),
        })
    }

    /// Linux's option bytes for `getsockopt`.
    pub fn to_linux(&self) -> Vec<u8> {
        let int = |v: i32| v.to_ne_bytes().to_vec();
        let timeval = |ns: Option<u64>| {
            let ns = ns.unwrap_or(0);
            let mut v = ((ns / 1_000_000_000) as i64).to_ne_bytes().to_vec();
            v.extend_from_slice(&(((ns % 1_000_000_000) / 1000) as i64).to_ne_bytes());
            v
        };
        match *self {
            SockOpt::ReuseAddr(b)
            | SockOpt::KeepAlive(b)
            | SockOpt::Broadcast(b)
            | SockOpt::AcceptConn(b)
            | SockOpt::V6Only(b)
            | SockOpt::PktInfo(b)
            | SockOpt::RecvPktInfo6(b)
            | SockOpt::RecvTtl(b)
            | SockOpt::RecvHopLimit(b)
            | SockOpt::Timestamp(b)
            | SockOpt::TimestampNs(b)
            | SockOpt::NoDelay(b) => int(b as i32),
            SockOpt::KeepIdle(n) | SockOpt::KeepIntvl(n) | SockOpt::KeepCnt(n) => int(n as i32),
            SockOpt::RcvBuf(n) | SockOpt::SndBuf(n) => int(n as i32),
            SockOpt::Linger(l) => {
                let mut v = int(l.is_some() as i32);
                v.extend_from_slice(&(l.unwrap_or(0) as i32).to_ne_bytes());
                v
            }
            SockOpt::RcvTimeo(t) | SockOpt::SndTimeo(t) => timeval(t),
            SockOpt::Error(e) | SockOpt::Type(e) | SockOpt::Domain(e) | SockOpt::Protocol(e) => {
                int(e)
            }
            SockOpt::Ttl(t) | SockOpt::HopLimit(t) => int(t as i32),
        }
    }
}

/// `v` if it lies in `lo..=hi`, else `EINVAL`.
fn ranged(v: i32, lo: i32, hi: i32) -> Result<u32, Errno> {
    if (lo..=hi).contains(&v) {
        Ok(v as u32)
    } else {
        Err(Errno::EINVAL)
    }
}

/// A TTL or hop limit: `-1` means the default, else `min..=255`.
fn hops(v: i32, min: i32) -> Result<u8, Errno> {
    let v = if v == -1 {
        crate::ip::DEFAULT_TTL as i32
    } else {
        v
    };
    ranged(v, min, 255).map(|v| v as u8)
}

/// What `recv` returns besides the bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecvInfo {
    /// Bytes placed in the buffer (or, with `MSG_TRUNC` on a datagram
    /// socket, the datagram's real length).
    pub len: usize,
    /// The sender (datagram sockets; the peer for stream sockets).
    pub from: Option<SockAddr>,
    /// `MSG_TRUNC` when a datagram did not fit.
    pub flags: i32,
}

/// The open-file kind of a socket.
pub struct Socket {
    stack: Arc<Stack>,
    id: SockRef,
    shared: Arc<SockShared>,
    /// `AF_INET` or `AF_INET6`.
    family: i32,
    ty: i32,
    protocol: i32,
}

/// The socket behind an open file, or `ENOTSOCK`.
pub fn socket_of(file: &File) -> Result<&Socket, Errno> {
    file.ops()
        .as_any()
        .downcast_ref::<Socket>()
        .ok_or(Errno::ENOTSOCK)
}

/// Makes a socket (`socket(2)`): `AF_INET` or `AF_INET6` with
/// `SOCK_STREAM` (TCP), `SOCK_DGRAM` (UDP), or `SOCK_DGRAM` +
/// `IPPROTO_ICMP` / `IPPROTO_ICMPV6` (ping). The type may carry
/// `SOCK_NONBLOCK` (and `SOCK_CLOEXEC`, which the caller handles). An
/// `AF_INET6` socket also reaches IPv4 peers through IPv4-mapped
/// addresses unless `IPV6_V6ONLY` is set, as on Linux.
pub fn socket(k: &Kernel, domain: i32, ty: i32, protocol: i32) -> Result<File, Errno> {
    let stack = crate::stack_of(k)?;
    if domain != af::INET && domain != af::INET6 {
        return Err(Errno::EAFNOSUPPORT);
    }
    if ty & !(sock::TYPE_MASK | sock::NONBLOCK | sock::CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let base = ty & sock::TYPE_MASK;
    let (proto, protocol) = match (base, protocol) {
        (sock::STREAM, 0) | (sock::STREAM, ipproto::TCP) => {
            (Proto::Tcp(TcpSock::new()), ipproto::TCP)
        }
        (sock::DGRAM, 0) | (sock::DGRAM, ipproto::UDP) => {
            (Proto::Udp(UdpSock::new()), ipproto::UDP)
        }
        (sock::DGRAM, ipproto::ICMP) if domain == af::INET => {
            (Proto::Ping(PingSock::new()), ipproto::ICMP)
        }
        (sock::DGRAM, ipproto::ICMPV6) if domain == af::INET6 => {
            (Proto::Ping(PingSock::new()), ipproto::ICMPV6)
        }
        (sock::STREAM, _) | (sock::DGRAM, _) => return Err(Errno::EPROTONOSUPPORT),
        (sock::RAW, _) => return Err(Errno::EPERM),
        _ => return Err(Errno::ESOCKTNOSUPPORT),
    };
    let params = crate::read_params(k);
    let (id, shared) = stack.with_core(|c, _| {
        c.params = params;
        let opts = SockOpts {
            reuse_addr: false,
            keepalive: false,
            broadcast: false,
            nodelay: false,
            rcvbuf: params.recvspace,
            sndbuf: params.sendspace,
            linger: None,
            rcvtimeo: None,
            sndtimeo: None,
            ttl: params.ttl,
            ttl4: params.ttl,
            v6only: false,
            keepidle: None,
            keepintvl: None,
            keepcnt: None,
            wants: Default::default(),
        };
        let s = Sock::new(domain, opts, proto);
        let shared = s.shared.clone();
        (c.socks.insert(s), shared)
    });
    let flags = o::RDWR
        | if ty & sock::NONBLOCK != 0 {
            o::NONBLOCK
        } else {
            0
        };
    Ok(File::new(
        flags,
        Box::new(Socket {
            stack,
            id,
            shared,
            family: domain,
            ty: base,
            protocol,
        }),
    ))
}

enum Kind {
    Tcp,
    Udp,
    Ping,
}

impl Socket {
    fn any_addr(&self) -> IpAddr {
        if self.family == af::INET6 {
            IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)
        }
    }

    fn kind(&self) -> Kind {
        match self.protocol {
            ipproto::TCP => Kind::Tcp,
            ipproto::UDP => Kind::Udp,
            _ => Kind::Ping,
        }
    }

    /// `SOCK_STREAM` or `SOCK_DGRAM`.
    pub fn socket_type(&self) -> i32 {
        self.ty
    }

    fn pool(&self) -> &crate::pool::FramePool {
        &self.stack.pool
    }

    fn check(&self) -> Result<(), Errno> {
        if self.stack.is_halted() {
            Err(Errno::ESHUTDOWN)
        } else {
            Ok(())
        }
    }

    /// Runs `attempt` until it yields a value: at once, then (when a
    /// processor is free for it, see [`kern::sync::Sched::try_spin`])
    /// spinning for as long as this socket's waits have recently lasted
    /// (see [`crate::stack::SpinLearner`]), then sleeping on `queue` (the
    /// socket's queue, or its accept queue). Errors of `attempt` pass
    /// through; `EAGAIN` when non-blocking, `on_timeout` when `timeout_ns`
    /// passes first, `ESHUTDOWN` at halt, `EINTR` when the process's calls
    /// are cancelled.
    fn block<R>(
        &self,
        p: &Proc,
        nonblock: bool,
        timeout_ns: Option<u64>,
        on_timeout: Errno,
        accept: bool,
        mut attempt: impl FnMut(&mut Core, &mut Effects) -> Result<Option<R>, Errno>,
    ) -> Result<R, Errno> {
        // Protocol errors travel inside `Some` so that `Kernel::wait`'s own
        // ETIMEDOUT (the deadline) cannot be confused with a connection's.
        let mut once = || {
            self.stack.with_core(|c, fx| match attempt(c, fx) {
                Ok(Some(r)) => Some(Ok(r)),
                Ok(None) => None,
                Err(e) => Some(Err(e)),
            })
        };
        let sh = &*self.shared;
        // Read before the attempt: an event between the two is not missed.
        let mut seen = sh.events.load(Ordering::Acquire);
        if let Some(r) = once() {
            return r;
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        let k = p.kernel();
        k.check()?;
        let start = k.now();
        let deadline = timeout_ns.map(|t| start.saturating_add(t));
        let max = self.stack.spin_ns.load(Ordering::Relaxed);
        let sched = k.sched();
        // Spin on the socket's event word, not on the stack lock, and
        // only with a spin slot: more spinners than processors would take
        // them from the threads we wait for.
        if max > 0 {
            if let Some(_slot) = sched.try_spin() {
                let spin_end = start
                    .saturating_add(sh.spin.budget(max))
                    .min(deadline.unwrap_or(u64::MAX));
                let _polling = self.stack.rx_polling();
                let mut rounds = 0u32;
                loop {
                    sched.relax();
                    // Frames from other processes may be waiting in a
                    // shared ring: take them in here rather than wait for
                    // the reader thread.
                    self.stack.poll_rx();
                    let now = sh.events.load(Ordering::Acquire);
                    if now != seen {
                        seen = now;
                        if let Some(r) = once() {
                            sh.spin.ended_after(k.now().saturating_sub(start), max);
                            return r;
                        }
                    }
                    rounds = rounds.wrapping_add(1);
                    if rounds.is_multiple_of(8) && k.now() >= spin_end {
                        break;
                    }
                }
            }
        }
        let queue = if accept { &sh.acceptq } else { &sh.wq };
        // The spin above (or its refusal) stands for the wait's own: a
        // second spin would take the stack lock on every round.
        let res = p.wait_without_spin(&[queue], deadline, || Ok(once()));
        match res {
            Ok(r) => {
                sh.spin.ended_after(k.now().saturating_sub(start), max);
                r
            }
            Err(e) => {
                sh.spin.failed(max);
                if accept {
                    // We may have been woken for a connection we now leave
                    // behind: pass the wake-up on.
                    sh.acceptq.wake_one();
                }
                match e {
                    Errno::ETIMEDOUT => Err(on_timeout),
                    e => Err(e),
                }
            }
        }
    }

    /// The address family, `AF_INET` or `AF_INET6`.
    pub fn family(&self) -> i32 {
        self.family
    }

    /// `addr` as this socket's family reads it; an IPv4-mapped address on
    /// an `IPV6_V6ONLY` socket is refused. As on Linux, a UDP socket of
    /// `AF_INET6` also takes a plain `AF_INET` address to send to or
    /// connect to (`peer`), unless it is `IPV6_V6ONLY`.
    fn target_of(&self, c: &Core, addr: SockAddr, peer: bool) -> Result<(IpAddr, u16, u32), Errno> {
        let plain_v4 = matches!(addr, SockAddr::Inet { .. });
        let mut t = match addr.to_ip(self.family) {
            Err(Errno::EAFNOSUPPORT)
                if peer
                    && plain_v4
                    && self.family == af::INET6
                    && matches!(self.kind(), Kind::Udp) =>
            {
                addr.to_ip(af::INET)?
            }
            // A `sockaddr_in` is too short for an `AF_INET6` socket: Linux
            // checks the length before the family.
            Err(Errno::EAFNOSUPPORT) if plain_v4 && self.family == af::INET6 => {
                return Err(Errno::EINVAL)
            }
            t => t?,
        };
        // As a destination the wildcard address means this host (Linux
        // and BSD: "connect() to INADDR_ANY means loopback").
        // An AF_INET6 socket whose own address is IPv4-mapped (bound to
        // one, or a UDP socket connected to an IPv4 peer) takes `::` as
        // 127.0.0.1 (Linux's tcp_v6_connect and udpv6_sendmsg).
        if peer && t.0.is_unspecified() {
            let acts_v4 = c.socks.get(self.id).is_some_and(|s| match &s.proto {
                Proto::Tcp(t) => t
                    .bound
                    .or(t.ghost.filter(|_| t.addr_locked))
                    .is_some_and(|(a, _)| a.is_ipv4()),
                Proto::Udp(u) => u
                    .bound
                    .map(|b| b.0)
                    .or(u.kept_addr)
                    .is_some_and(|a| a.is_ipv4()),
                Proto::Ping(_) => false,
            });
            t.0 = match t.0 {
                IpAddr::V4(_) => IpAddr::V4(core::net::Ipv4Addr::LOCALHOST),
                IpAddr::V6(_) if self.family == af::INET6 && acts_v4 => {
                    IpAddr::V4(core::net::Ipv4Addr::LOCALHOST)
                }
                IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::LOCALHOST),
            };
        }
        if self.family == af::INET6 && t.0.is_ipv4() {
            let v6only = c.socks.get(self.id).is_some_and(|s| s.opts.v6only);
            if v6only || !matches!(self.kind(), Kind::Tcp | Kind::Udp) {
                return Err(Errno::ENETUNREACH);
            }
        }
        Ok(t)
    }

    /// [`Socket::target_of`] for an address to send to or connect to.
    fn target(&self, c: &Core, addr: SockAddr) -> Result<(IpAddr, u16, u32), Errno> {
        self.target_of(c, addr, true)
    }

    /// `bind`.
    pub fn bind(&self, addr: SockAddr) -> Result<(), Errno> {
        self.check()?;
        let r = self.id;
        self.stack.with_core(|c, _| {
            let (ip, port, _) = self.target_of(c, addr, false).map_err(|e| match e {
                Errno::ENETUNREACH => Errno::EINVAL,
                e => e,
            })?;
            let bound = match self.kind() {
                Kind::Tcp => c.tcp_bind(r, ip, port),
                Kind::Udp => c.udp_bind(r, ip, port),
                Kind::Ping => {
                    if !ip.is_unspecified() && !c.is_local_ip(ip) {
                        return Err(Errno::EADDRNOTAVAIL);
                    }
                    c.ping_bind(r, port)
                }
            };
            // Linux (inet6_bind): an AF_INET6 socket bound to an IPv6
            // address that is not IPv4-mapped cannot carry IPv4, and says
            // so in IPV6_V6ONLY.
            let tcp_udp = matches!(self.kind(), Kind::Tcp | Kind::Udp);
            if bound.is_ok() && tcp_udp && matches!(ip, IpAddr::V6(a) if !a.is_unspecified()) {
                if let Some(s) = c.socks.get_mut(r) {
                    s.opts.v6only = true;
                }
            }
            bound
        })
    }

    /// `listen`, with a backlog of at least one connection and at most
    /// `SOMAXCONN`.
    pub fn listen(&self, backlog: i32) -> Result<(), Errno> {
        self.check()?;
        if !matches!(self.kind(), Kind::Tcp) {
            return Err(Errno::EOPNOTSUPP);
        }
        // Linux casts the backlog to unsigned before capping it, so a
        // negative one is the largest.
        let backlog = if backlog < 0 {
            kern::consts::SOMAXCONN
        } else {
            (backlog.max(1) as usize).min(kern::consts::SOMAXCONN)
        };
        self.stack.with_core(|c, _| c.tcp_listen(self.id, backlog))
    }

    /// `accept4`: the next completed connection and its peer's address.
    /// `flags` may hold `SOCK_NONBLOCK` (and `SOCK_CLOEXEC`, for the caller).
    pub fn accept(&self, p: &Proc, file: &File, flags: i32) -> Result<(File, SockAddr), Errno> {
        self.check()?;
        if !matches!(self.kind(), Kind::Tcp) {
            return Err(Errno::EOPNOTSUPP);
        }
        if flags & !(sock::NONBLOCK | sock::CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        let timeout = self.shared.rcvtimeo();
        let got = self.block(
            p,
            file.is_nonblocking(),
            timeout,
            Errno::EAGAIN,
            true,
            |c, _| {
                let Some((child, more)) = c.tcp_accept(self.id)? else {
                    return Ok(None);
                };
                let s = c.socks.get(child).ok_or(Errno::ECONNABORTED)?;
                let peer = match &s.proto {
                    Proto::Tcp(t) => t
                        .conn()
                        .map(|cn| SockAddr::from_ip(self.family, cn.tuple.2, cn.tuple.3)),
                    _ => None,
                };
                Ok(Some((child, s.shared.clone(), peer, more)))
            },
        );
        let (child, shared, peer, more) = got?;
        if more {
            // Connections remain: the next thread in accept takes one.
            self.shared.acceptq.wake_one();
        }
        let flags = o::RDWR
            | if flags & sock::NONBLOCK != 0 {
                o::NONBLOCK
            } else {
                0
            };
        let f = File::new(
            flags,
            Box::new(Socket {
                stack: self.stack.clone(),
                id: child,
                shared,
                family: self.family,
                ty: self.ty,
                protocol: self.protocol,
            }),
        );
        let none = SockAddr::from_ip(self.family, self.any_addr(), 0);
        Ok((f, peer.unwrap_or(none)))
    }

    /// `connect`. A stream socket waits for the handshake (or, when
    /// non-blocking, returns `EINPROGRESS`; the outcome is then in
    /// `SO_ERROR`). A datagram socket records its peer; `AF_UNSPEC`
    /// dissolves the association.
    pub fn connect(&self, p: &Proc, file: &File, addr: SockAddr) -> Result<(), Errno> {
        self.check()?;
        let r = self.id;
        match self.kind() {
            Kind::Udp | Kind::Ping => self.stack.with_core(|c, _| {
                if !matches!(addr, SockAddr::Unspec) && matches!(self.kind(), Kind::Udp) {
                    // Linux's inet_dgram_connect binds before it looks.
                    c.udp_autobind(r)?;
                }
                // An AF_INET address cannot name a peer of an
                // IPV6_V6ONLY socket (Linux's ip6_datagram_connect).
                let v6only = c.socks.get(r).is_some_and(|s| s.opts.v6only);
                if self.family == af::INET6 && v6only && matches!(addr, SockAddr::Inet { .. }) {
                    return Err(Errno::EAFNOSUPPORT);
                }
                let target = match addr {
                    SockAddr::Unspec => None,
                    a => Some(self.target(c, a)?),
                };
                if matches!(self.kind(), Kind::Udp) {
                    return c.udp_connect(r, target);
                }
                let bound = match c.socks.get(r).map(|s| &s.proto) {
                    Some(Proto::Ping(p)) => p.ident.is_some(),
                    _ => return Err(Errno::EBADF),
                };
                if let Some((ip, _, scope)) = target {
                    if c.route_ip(ip, scope).is_none() {
                        return Err(Errno::ENETUNREACH);
                    }
                    if !bound {
                        c.ping_bind(r, 0)?;
                    }
                }
                if let Some(Proto::Ping(p)) = c.socks.get_mut(r).map(|s| &mut s.proto) {
                    p.peer = target.map(|t| (t.0, t.2));
                }
                Ok(())
            }),
            Kind::Tcp if matches!(addr, SockAddr::Unspec) => {
                // Linux: AF_UNSPEC disconnects, whatever the state.
                let pool = self.pool();
                self.stack.with_core(|c, fx| {
                    c.tcp_disconnect(pool, r, fx);
                    Ok(())
                })
            }
            Kind::Tcp => {
                let nonblock = file.is_nonblocking();
                let pool = self.pool();
                let timeout = self.stack.with_core(|c, fx| {
                    let s = c.socks.get_mut(r).ok_or(Errno::EBADF)?;
                    let timeout = s.opts.sndtimeo;
                    if let Proto::Tcp(t) = &mut s.proto {
                        let pending = core::mem::take(&mut t.connect_pending);
                        let failed = match t.conn() {
                            Some(cn) => cn.state() == State::Closed,
                            None => matches!(t.state, TcpState::Failed),
                        };
                        if failed && !pending {
                            // Connected once (accepted, or a connect said
                            // so): Linux's SS_CONNECTED, whatever became
                            // of the connection.
                            return Err(Errno::EISCONN);
                        }
                        if failed {
                            // Reporting how the attempt ended leaves the
                            // socket unconnected (Linux's sock_error path
                            // in __inet_stream_connect disconnects it).
                            let e = s.error.take().unwrap_or(Errno::ECONNABORTED);
                            c.tcp_disconnect(pool, r, fx);
                            return Err(e);
                        }
                        if let Some(cn) = t.conn() {
                            if matches!(cn.state(), State::SynSent | State::SynReceived) {
                                t.connect_pending = pending;
                                return if nonblock {
                                    Err(Errno::EALREADY)
                                } else {
                                    Ok(Some(timeout))
                                };
                            }
                            // The first connect to see a non-blocking
                            // one's handshake done succeeds.
                            return if pending {
                                Ok(None)
                            } else {
                                Err(Errno::EISCONN)
                            };
                        }
                        // Linux checks the state before the address: a
                        // listener is EISCONN whatever the destination.
                        if t.is_listening() && !matches!(addr, SockAddr::Unspec) {
                            return Err(Errno::EISCONN);
                        }
                    }
                    let target = self.target(c, addr)?;
                    c.tcp_connect(pool, r, target, fx)?;
                    if nonblock {
                        if let Some(Proto::Tcp(t)) = c.socks.get_mut(r).map(|s| &mut s.proto) {
                            t.connect_pending = true;
                        }
                    }
                    Ok(Some(timeout))
                })?;
                let Some(timeout) = timeout else {
                    return Ok(());
                };
                if nonblock {
                    // As on Linux, even when the handshake already finished
                    // (it may have, in this very thread, on an in-process
                    // link): the outcome is in SO_ERROR and poll.
                    return Err(Errno::EINPROGRESS);
                }
                // SO_SNDTIMEO expiring leaves the attempt going (Linux).
                self.block(p, false, timeout, Errno::EINPROGRESS, false, |c, fx| {
                    let out = connect_outcome(c, r);
                    if matches!(out, Err(e) if e != Errno::EINPROGRESS) {
                        // A failed attempt leaves the socket unconnected.
                        c.tcp_disconnect(pool, r, fx);
                    }
                    out
                })
            }
        }
    }

    /// `sendto`/`send`: returns the bytes taken. A stream socket takes all
    /// of `data` unless non-blocking or interrupted by an error after
    /// taking some.
    pub fn send(
        &self,
        p: &Proc,
        file: &File,
        data: &[u8],
        flags: i32,
        to: Option<SockAddr>,
    ) -> Result<usize, Errno> {
        self.send_msg(p, file, data, flags, to, &[])
    }

    /// `sendmsg`: [`Socket::send`] with control messages. UDP sockets take
    /// `PktInfo` (source address, interface) and `Ttl`/`HopLimit` (of
    /// their family); stream and ping sockets ignore them, as Linux's TCP
    /// does.
    pub fn send_msg(
        &self,
        p: &Proc,
        file: &File,
        data: &[u8],
        flags: i32,
        to: Option<SockAddr>,
        control: &[crate::Cmsg],
    ) -> Result<usize, Errno> {
        self.check()?;
        let nonblock = file.is_nonblocking() || flags & msg::DONTWAIT != 0;
        let r = self.id;
        let pool = self.pool();
        match self.kind() {
            Kind::Udp => self.stack.with_core(|c, fx| {
                c.udp_autobind(r)?;
                let ctl = crate::udp::SendCtl::from_cmsgs(control, self.family == af::INET6)?;
                let to = match to {
                    // Linux: AF_INET6 reads AF_UNSPEC as no address, AF_INET
                    // as an IPv4 one with port 0.
                    Some(SockAddr::Unspec) if self.family == af::INET6 => None,
                    Some(SockAddr::Unspec) => return Err(Errno::EINVAL),
                    to => to.map(|a| self.target(c, a)).transpose()?,
                };
                c.udp_send(pool, r, data, to, ctl, fx)
            }),
            Kind::Ping => self.stack.with_core(|c, fx| {
                let to = to.map(|a| self.target(c, a)).transpose()?;
                c.ping_send(pool, r, data, to.map(|t| (t.0, t.2)), fx)
            }),
            Kind::Tcp => {
                let timeout = self.shared.sndtimeo();
                let mut done = 0;
                loop {
                    let res = self.block(p, nonblock, timeout, Errno::EAGAIN, false, |c, fx| {
                        match tcp_send_step(c, pool, r, &data[done..], fx)? {
                            Some(0) if done < data.len() => Ok(None),
                            other => Ok(other),
                        }
                    });
                    match res {
                        Ok(n) => {
                            done += n;
                            if done >= data.len() {
                                return Ok(done);
                            }
                        }
                        Err(Errno::EAGAIN) if done > 0 => return Ok(done),
                        Err(e) if done > 0 => {
                            // Report the error on the next call.
                            self.stack.with_core(|c, _| {
                                if let Some(s) = c.socks.get_mut(r) {
                                    if e != Errno::EPIPE {
                                        s.error.get_or_insert(e);
                                    }
                                }
                            });
                            return Ok(done);
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
    }

    /// `recvfrom`/`recv`, with `MSG_PEEK`, `MSG_DONTWAIT`, `MSG_WAITALL`
    /// and `MSG_TRUNC`.
    pub fn recv(
        &self,
        p: &Proc,
        file: &File,
        buf: &mut [u8],
        flags: i32,
    ) -> Result<RecvInfo, Errno> {
        self.recv_msg(p, file, buf, flags).map(|r| r.0)
    }

    /// `recvmsg`: [`Socket::recv`] with the control messages the socket
    /// asked for (datagram sockets; stream sockets have none).
    pub fn recv_msg(
        &self,
        p: &Proc,
        file: &File,
        buf: &mut [u8],
        flags: i32,
    ) -> Result<(RecvInfo, Vec<crate::Cmsg>), Errno> {
        self.check()?;
        let nonblock = file.is_nonblocking() || flags & msg::DONTWAIT != 0;
        let peek = flags & msg::PEEK != 0;
        let r = self.id;
        let pool = self.pool();
        let timeout = self.shared.rcvtimeo();
        match self.kind() {
            Kind::Udp | Kind::Ping => {
                let is_udp = matches!(self.kind(), Kind::Udp);
                let got = self.block(p, nonblock, timeout, Errno::EAGAIN, false, |c, _| {
                    if is_udp {
                        c.udp_recv(r, buf, peek, nonblock)
                    } else {
                        c.ping_recv(r, buf, peek)
                    }
                });
                let (n, full, from, meta) = got?;
                let wants = self.shared.wants();
                let truncated = full > n;
                let info = RecvInfo {
                    len: if truncated && flags & msg::TRUNC != 0 {
                        full
                    } else {
                        n
                    },
                    from: Some(SockAddr::from_ip(self.family, from.0, from.1)),
                    flags: if truncated { msg::TRUNC } else { 0 },
                };
                Ok((info, meta.cmsgs(wants)))
            }
            Kind::Tcp => {
                // A zero-length recv checks the state like any other
                // (ENOTCONN, EAGAIN, a pending error), as on Linux.
                let waitall = flags & msg::WAITALL != 0 && !peek;
                let discard = flags & msg::TRUNC != 0;
                let mut done = 0;
                loop {
                    let res = self.block(p, nonblock, timeout, Errno::EAGAIN, false, |c, fx| {
                        tcp_recv_step(c, pool, r, &mut buf[done..], peek, discard, fx)
                    });
                    match res {
                        Ok(0) => break,
                        Ok(n) => {
                            done += n;
                            if !waitall || done == buf.len() {
                                break;
                            }
                        }
                        Err(Errno::EAGAIN) if done > 0 => break,
                        Err(e) if done > 0 => {
                            self.stack.with_core(|c, _| {
                                if let Some(s) = c.socks.get_mut(r) {
                                    s.error.get_or_insert(e);
                                }
                            });
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok((
                    RecvInfo {
                        len: done,
                        from: None,
                        flags: 0,
                    },
                    Vec::new(),
                ))
            }
        }
    }

    /// `shutdown`.
    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        self.check()?;
        if !matches!(how, shut::RD | shut::WR | shut::RDWR) {
            return Err(Errno::EINVAL);
        }
        let r = self.id;
        let pool = self.pool();
        self.stack.with_core(|c, fx| {
            let s = c.socks.get_mut(r).ok_or(Errno::EBADF)?;
            // Linux's inet_shutdown, by the socket's state.
            enum At {
                /// Not connected (CLOSE): the flags are set all the same
                /// (poll, recv and send show them), and ENOTCONN said.
                Unconnected,
                Listening,
                Connecting,
                Connected,
            }
            let at = match &s.proto {
                Proto::Tcp(t) => match &t.state {
                    TcpState::Idle | TcpState::Failed => At::Unconnected,
                    TcpState::Listening(_) => At::Listening,
                    TcpState::Conn(cn) => match cn.state() {
                        State::Closed | State::TimeWait => At::Unconnected,
                        State::SynSent => At::Connecting,
                        _ => At::Connected,
                    },
                },
                Proto::Udp(u) if u.peer.is_some() => At::Connected,
                Proto::Ping(p) if p.peer.is_some() => At::Connected,
                _ => At::Unconnected,
            };
            match at {
                // SHUT_WR leaves a listener alone; reading shut stops it.
                At::Listening if how == shut::WR => return Ok(()),
                At::Listening | At::Connecting => {
                    c.tcp_disconnect(pool, r, fx);
                    return Ok(());
                }
                At::Unconnected | At::Connected => {}
            }
            if let Proto::Tcp(t) = &mut s.proto {
                // Linux's inet_shutdown settles SS_CONNECTING.
                t.connect_pending = false;
            }
            if how != shut::WR {
                s.shut_rd = true;
            }
            let mut fin = false;
            if how != shut::RD && !s.shut_wr {
                s.shut_wr = true;
                if let (At::Connected, Proto::Tcp(t)) = (&at, &mut s.proto) {
                    if let Some(cn) = t.conn_mut() {
                        cn.close_send();
                        fin = true;
                    }
                }
            }
            let shared = s.shared.clone();
            fx.wake(&shared);
            if fin {
                c.tcp_output(pool, r, false, fx);
            }
            match at {
                At::Unconnected => Err(Errno::ENOTCONN),
                _ => Ok(()),
            }
        })
    }

    /// `getsockname`.
    pub fn local_addr(&self) -> Result<SockAddr, Errno> {
        self.check()?;
        self.stack.with_core(|c, _| {
            let s = c.socks.get(self.id).ok_or(Errno::EBADF)?;
            let any = s.any_addr();
            let (a, p) = match &s.proto {
                Proto::Tcp(t) => match t.conn() {
                    // An ended connection bound again shows its new name.
                    Some(cn) if cn.state() == State::Closed && t.bound.is_some() => {
                        t.bound.unwrap_or((any, 0))
                    }
                    Some(cn) => (cn.tuple.0, cn.tuple.1),
                    None => t.bound.or(t.ghost).unwrap_or((any, 0)),
                },
                Proto::Udp(u) => u.bound.unwrap_or((u.kept_addr.unwrap_or(any), 0)),
                Proto::Ping(p) => (any, p.ident.unwrap_or(0)),
            };
            Ok(SockAddr::from_ip(self.family, a, p))
        })
    }

    /// `getpeername`.
    pub fn peer_addr(&self) -> Result<SockAddr, Errno> {
        self.check()?;
        self.stack.with_core(|c, _| {
            let s = c.socks.get(self.id).ok_or(Errno::EBADF)?;
            let (a, p) = match &s.proto {
                Proto::Tcp(t) => match t.conn() {
                    Some(cn) if !matches!(cn.state(), State::SynSent | State::Closed) => {
                        (cn.tuple.2, cn.tuple.3)
                    }
                    _ => return Err(Errno::ENOTCONN),
                },
                // An association with port 0 has no peer to name (Linux).
                Proto::Udp(u) => u
                    .peer
                    .filter(|p| p.1 != 0)
                    .map(|p| (p.0, p.1))
                    .ok_or(Errno::ENOTCONN)?,
                Proto::Ping(p) => (p.peer.ok_or(Errno::ENOTCONN)?.0, 0),
            };
            Ok(SockAddr::from_ip(self.family, a, p))
        })
    }

    /// `setsockopt`.
    pub fn set_option(&self, opt: SockOpt) -> Result<(), Errno> {
        self.check()?;
        let is_tcp = matches!(self.kind(), Kind::Tcp);
        let is_v6 = self.family == af::INET6;
        self.stack.with_core(|c, _| {
            let params = c.params;
            let s = c.socks.get_mut(self.id).ok_or(Errno::EBADF)?;
            let bound = match &s.proto {
                Proto::Tcp(t) => t.bound.is_some(),
                Proto::Udp(u) => u.bound.is_some(),
                Proto::Ping(p) => p.ident.is_some(),
            };
            let buf = |n: u32| {
                (n as usize)
                    .saturating_mul(2)
                    .clamp(MIN_SOCKBUF, MAX_SOCKBUF)
            };
            match opt {
                SockOpt::ReuseAddr(b) => s.opts.reuse_addr = b,
                SockOpt::KeepAlive(b) => s.opts.keepalive = b,
                SockOpt::Broadcast(b) => s.opts.broadcast = b,
                SockOpt::RcvBuf(n) => s.opts.rcvbuf = buf(n),
                SockOpt::SndBuf(n) => s.opts.sndbuf = buf(n),
                SockOpt::Linger(l) => s.opts.linger = l,
                SockOpt::RcvTimeo(t) => s.opts.rcvtimeo = t,
                SockOpt::SndTimeo(t) => s.opts.sndtimeo = t,
                SockOpt::NoDelay(b) if is_tcp => s.opts.nodelay = b,
                SockOpt::KeepIdle(n) if is_tcp => s.opts.keepidle = Some(n),
                SockOpt::KeepIntvl(n) if is_tcp => s.opts.keepintvl = Some(n),
                SockOpt::KeepCnt(n) if is_tcp => s.opts.keepcnt = Some(n),
                SockOpt::NoDelay(_)
                | SockOpt::KeepIdle(_)
                | SockOpt::KeepIntvl(_)
                | SockOpt::KeepCnt(_) => return Err(Errno::ENOPROTOOPT),
                SockOpt::Ttl(t) if !is_v6 => s.opts.ttl = t.max(1),
                // As on Linux, an IPv6 socket keeps IP_TTL apart from its
                // hop limit (for the IPv4 traffic it carries).
                SockOpt::Ttl(t) => s.opts.ttl4 = t.max(1),
                // Hop limit 0 is legal in IPv6; our TCP engine wants at least 1.
                SockOpt::HopLimit(t) if is_v6 => s.opts.ttl = t,
                SockOpt::V6Only(_) if is_v6 && bound => return Err(Errno::EINVAL),
                SockOpt::V6Only(b) if is_v6 => s.opts.v6only = b,
                // As on Linux, an IPv6 socket also takes the IPv4 options
                // (for the IPv4 traffic a dual-stack socket carries).
                SockOpt::PktInfo(b) => s.opts.wants.pktinfo = b,
                SockOpt::RecvTtl(b) => s.opts.wants.ttl = b,
                SockOpt::RecvPktInfo6(b) if is_v6 => s.opts.wants.pktinfo = b,
                SockOpt::RecvHopLimit(b) if is_v6 => s.opts.wants.ttl = b,
                SockOpt::Timestamp(b) => s.opts.wants.timestamp = b,
                SockOpt::TimestampNs(b) => s.opts.wants.timestamp_ns = b,
                SockOpt::HopLimit(_)
                | SockOpt::V6Only(_)
                | SockOpt::RecvPktInfo6(_)
                | SockOpt::RecvHopLimit(_) => return Err(Errno::ENOPROTOOPT),
                SockOpt::Error(_)
                | SockOpt::Type(_)
                | SockOpt::AcceptConn(_)
                | SockOpt::Domain(_)
                | SockOpt::Protocol(_) => return Err(Errno::ENOPROTOOPT),
            }
            let opts = s.opts;
            s.shared.mirror(&opts);
            if let Proto::Tcp(t) = &mut s.proto {
                if let Some(cn) = t.conn_mut() {
                    if cn.state() != State::Closed {
                        apply_opts(cn.sock_mut(), &opts, &params);
                    }
                }
            }
            Ok(())
        })
    }

    /// `getsockopt` by Linux `(level, name)`.
    pub fn option(&self, level: i32, name: i32) -> Result<SockOpt, Errno> {
        self.check()?;
        let is_tcp = matches!(self.kind(), Kind::Tcp);
        let is_v6 = self.family == af::INET6;
        let own_level = level == so::SOL_SOCKET
            || level == ipproto::IP
            || match self.kind() {
                Kind::Tcp => level == ipproto::TCP,
                Kind::Udp => level == ipproto::UDP,
                Kind::Ping => false,
            };
        self.stack.with_core(|c, _| {
            let params = c.params;
            let s = c.socks.get_mut(self.id).ok_or(Errno::EBADF)?;
            let o = &s.opts;
            let keep = crate::tcp::keepalive(o, &params);
            Ok(match (level, name) {
                (so::SOL_SOCKET, so::REUSEADDR) => SockOpt::ReuseAddr(o.reuse_addr),
                (so::SOL_SOCKET, so::KEEPALIVE) => SockOpt::KeepAlive(o.keepalive),
                (so::SOL_SOCKET, so::BROADCAST) => SockOpt::Broadcast(o.broadcast),
                (so::SOL_SOCKET, so::RCVBUF) => SockOpt::RcvBuf(o.rcvbuf as u32),
                (so::SOL_SOCKET, so::SNDBUF) => SockOpt::SndBuf(o.sndbuf as u32),
                (so::SOL_SOCKET, so::LINGER) => SockOpt::Linger(o.linger),
                (so::SOL_SOCKET, so::RCVTIMEO) => SockOpt::RcvTimeo(o.rcvtimeo),
                (so::SOL_SOCKET, so::SNDTIMEO) => SockOpt::SndTimeo(o.sndtimeo),
                (so::SOL_SOCKET, so::ERROR) => SockOpt::Error(s.error.take().map_or(0, |e| e.0)),
                (so::SOL_SOCKET, so::TYPE) => SockOpt::Type(self.ty),
                (so::SOL_SOCKET, so::DOMAIN) => SockOpt::Domain(self.family),
                (so::SOL_SOCKET, so::PROTOCOL) => SockOpt::Protocol(self.protocol),
                (so::SOL_SOCKET, so::ACCEPTCONN) => {
                    SockOpt::AcceptConn(matches!(&s.proto, Proto::Tcp(t) if t.is_listening()))
                }
                (ipproto::TCP, tcpopt::NODELAY) if is_tcp => SockOpt::NoDelay(o.nodelay),
                (ipproto::TCP, tcpopt::KEEPIDLE) if is_tcp => SockOpt::KeepIdle(keep.idle_s),
                (ipproto::TCP, tcpopt::KEEPINTVL) if is_tcp => SockOpt::KeepIntvl(keep.intvl_s),
                (ipproto::TCP, tcpopt::KEEPCNT) if is_tcp => SockOpt::KeepCnt(keep.cnt),
                (ipproto::IP, ipopt::TTL) if !is_v6 => SockOpt::Ttl(o.ttl),
                (ipproto::IP, ipopt::TTL) => SockOpt::Ttl(o.ttl4),
                (ipproto::IPV6, ip6opt::UNICAST_HOPS) if is_v6 => SockOpt::HopLimit(o.ttl),
                (ipproto::IPV6, ip6opt::V6ONLY) if is_v6 => SockOpt::V6Only(o.v6only),
                (ipproto::IP, ipopt::PKTINFO) => SockOpt::PktInfo(o.wants.pktinfo),
                (ipproto::IP, ipopt::RECVTTL) => SockOpt::RecvTtl(o.wants.ttl),
                (ipproto::IPV6, ip6opt::RECVPKTINFO) if is_v6 => {
                    SockOpt::RecvPktInfo6(o.wants.pktinfo)
                }
                (ipproto::IPV6, ip6opt::RECVHOPLIMIT) if is_v6 => {
                    SockOpt::RecvHopLimit(o.wants.ttl)
                }
                (so::SOL_SOCKET, so::TIMESTAMP) => SockOpt::Timestamp(o.wants.timestamp),
                (so::SOL_SOCKET, so::TIMESTAMPNS) => SockOpt::TimestampNs(o.wants.timestamp_ns),
                // Linux passes a level an AF_INET socket's protocol does
                // not know to the IPv4 layer, which answers EOPNOTSUPP
                // for any level but its own; AF_INET6 says ENOPROTOOPT.
                _ if !is_v6 && !own_level => return Err(Errno::EOPNOTSUPP),
                _ => return Err(Errno::ENOPROTOOPT),
            })
        })
    }

    fn poll_events(&self, events: i16) -> i16 {
        if self.stack.is_halted() {
            return poll::HUP | poll::ERR;
        }
        let mut c = self.stack.core.lock();
        let Some(s) = c.socks.get_mut(self.id) else {
            return poll::HUP;
        };
        let mut r = 0;
        if s.error.is_some() {
            r |= poll::ERR;
        }
        let inb = poll::IN | poll::RDNORM;
        let out = poll::OUT | poll::WRNORM;
        match &s.proto {
            // As Linux's tcp_poll, from its two shutdown bits: the read
            // side is shut by SHUT_RD or the peer's FIN, the write side by
            // SHUT_WR; a connection that ended (CLOSE, which TIME-WAIT is
            // for a socket still held) has both.
            Proto::Tcp(t) => {
                let (closed, connecting, fin, readable, writable) = match &t.state {
                    TcpState::Idle => (true, false, false, false, true),
                    // Ended both ways (Linux's tcp_done).
                    TcpState::Failed => (true, false, true, false, true),
                    TcpState::Listening(l) => {
                        if !l.ready.is_empty() {
                            r |= inb;
                        }
                        return r & (events | poll::ERR | poll::HUP | poll::NVAL);
                    }
                    TcpState::Conn(cn) => {
                        let sk = cn.sock();
                        let st = sk.state();
                        let closed = matches!(st, State::Closed | State::TimeWait);
                        let connecting = matches!(st, State::SynSent | State::SynReceived);
                        let fin = closed
                            || matches!(st, State::CloseWait | State::LastAck | State::Closing);
                        let writable = sk.send_queue() < sk.send_capacity();
                        (closed, connecting, fin, sk.can_recv(), writable)
                    }
                };
                let rd_shut = s.shut_rd || fin;
                let wr_shut = s.shut_wr || closed;
                if (rd_shut && wr_shut) || closed {
                    r |= poll::HUP;
                }
                if rd_shut {
                    r |= inb | poll::RDHUP;
                }
                if !connecting {
                    if readable {
                        r |= inb;
                    }
                    if wr_shut || writable {
                        r |= out;
                    }
                }
            }
            // Linux's datagram_poll: a read side shut down is readable
            // and RDHUP, both sides HUP; always writable.
            Proto::Udp(u) => {
                if !u.rxq.is_empty() || s.shut_rd {
                    r |= inb;
                }
                if s.shut_rd {
                    r |= poll::RDHUP;
                }
                if s.shut_rd && s.shut_wr {
                    r |= poll::HUP;
                }
                r |= out;
            }
            Proto::Ping(p) => {
                if !p.rxq.is_empty() {
                    r |= inb;
                }
                r |= out;
            }
        }
        r & (events | poll::ERR | poll::HUP | poll::NVAL)
    }
}

/// Whether connect of `r` finished: `Some(())` connected, an error if it
/// failed, `None` still going.
fn connect_outcome(c: &mut Core, r: SockRef) -> Result<Option<()>, Errno> {
    let s = c.socks.get_mut(r).ok_or(Errno::EBADF)?;
    match &s.proto {
        Proto::Tcp(t) => match &t.state {
            TcpState::Conn(cn) => match cn.state() {
                State::SynSent | State::SynReceived => Ok(None),
                State::Closed => Err(s.error.take().unwrap_or(Errno::ECONNREFUSED)),
                _ => Ok(Some(())),
            },
            TcpState::Failed => Err(s.error.take().unwrap_or(Errno::ECONNREFUSED)),
            _ => Err(Errno::ENOTCONN),
        },
        _ => Err(Errno::EINVAL),
    }
}

/// One step of a stream send: `Some(n)` bytes queued (0: buffer full),
/// `None` while connecting.
fn tcp_send_step(
    c: &mut Core,
    pool: &crate::pool::FramePool,
    r: SockRef,
    data: &[u8],
    fx: &mut Effects,
) -> Result<Option<usize>, Errno> {
    let s = c.socks.get_mut(r).ok_or(Errno::EBADF)?;
    if let Some(e) = s.error.take() {
        return Err(e);
    }
    if s.shut_wr {
        return Err(Errno::EPIPE);
    }
    let Proto::Tcp(t) = &mut s.proto else {
        return Err(Errno::EINVAL);
    };
    let Some(cn) = t.conn_mut() else {
        return Err(Errno::EPIPE);
    };
    let sk = cn.sock_mut();
    match sk.state() {
        State::SynSent | State::SynReceived => return Ok(None),
        _ if !sk.may_send() => return Err(Errno::EPIPE),
        _ => {}
    }
    if data.is_empty() {
        return Ok(Some(0));
    }
    let n = sk.send_slice(data).map_err(|_| Errno::EPIPE)?;
    if n > 0 {
        c.tcp_output(pool, r, false, fx);
    }
    Ok(Some(n))
}

/// One step of a stream receive: `Some(n)` bytes (0: end of stream),
/// `None` when nothing is there yet. In Linux's order (tcp_recvmsg):
/// queued bytes first, then the end of the stream, a pending error, a
/// read side shut down (bytes still arrive after `SHUT_RD` and are
/// returned), and `ENOTCONN` for a socket with no connection. With
/// `discard` (`MSG_TRUNC`) the bytes are taken but not copied.
fn tcp_recv_step(
    c: &mut Core,
    pool: &crate::pool::FramePool,
    r: SockRef,
    buf: &mut [u8],
    peek: bool,
    discard: bool,
    fx: &mut Effects,
) -> Result<Option<usize>, Errno> {
    let s = c.socks.get_mut(r).ok_or(Errno::EBADF)?;
    let Proto::Tcp(t) = &mut s.proto else {
        return Err(Errno::EINVAL);
    };
    if t.is_listening() {
        return Err(Errno::ENOTCONN);
    }
    let failed = matches!(t.state, TcpState::Failed);
    let Some(cn) = t.conn_mut() else {
        if let Some(e) = s.error.take() {
            return Err(e);
        }
        // A failed attempt ended the connection both ways, as Linux's
        // tcp_done: its end, until a disconnect.
        return if s.shut_rd || failed {
            Ok(Some(0))
        } else {
            Err(Errno::ENOTCONN)
        };
    };
    let sk = cn.sock_mut();
    let connecting = matches!(sk.state(), State::SynSent | State::SynReceived);
    if !connecting && sk.can_recv() {
        let max = buf.len();
        let n = match (peek, discard) {
            (true, false) => sk.peek_slice(buf).unwrap_or(0),
            (false, false) => sk.recv_slice(buf).unwrap_or(0),
            (true, true) => sk.peek(max).map(|d| d.len()).unwrap_or(0),
            (false, true) => sk
                .recv(|d| {
                    let n = d.len().min(max);
                    (n, n)
                })
                .unwrap_or(0),
        };
        if !peek && n > 0 {
            // The window opened: smoltcp may owe the peer an update.
            c.tcp_output(pool, r, false, fx);
        }
        return Ok(Some(n));
    }
    let closed = sk.state() == State::Closed;
    if !connecting && !sk.may_recv() && (!closed || t.peer_fin) {
        // The peer's FIN.
        return Ok(Some(0));
    }
    if let Some(e) = s.error.take() {
        return Err(e);
    }
    if s.shut_rd || closed {
        // A connection that ended (reset, timed out, closed both ways)
        // reads as its end once the error has been reported.
        return Ok(Some(0));
    }
    Ok(None)
}

impl FileOps for Socket {
    fn read(&self, p: &Proc, file: &File, buf: &mut [u8], pos: Pos) -> Result<usize, Errno> {
        if pos != Pos::Current {
            return Err(Errno::ESPIPE);
        }
        self.recv(p, file, buf, 0).map(|i| i.len)
    }

    fn write(&self, p: &Proc, file: &File, buf: &[u8], pos: Pos) -> Result<usize, Errno> {
        if pos != Pos::Current {
            return Err(Errno::ESPIPE);
        }
        self.send(p, file, buf, 0, None)
    }

    fn stat(&self, _k: &Kernel) -> Result<Stat, Errno> {
        Ok(Stat {
            ino: ((self.id.gen as u64) << 32) | self.id.idx as u64,
            mode: mode::IFSOCK | 0o777,
            nlink: 1,
            blksize: 4096,
            ..Stat::default()
        })
    }

    fn poll(&self, _k: &Kernel, events: i16) -> i16 {
        self.poll_events(events)
    }

    fn wait_queue(&self) -> Option<&kern::sync::WaitQueue> {
        Some(&self.shared.wq)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let r = self.id;
        let pool = &self.stack.pool;
        let linger = self.stack.with_core(|c, fx| {
            let linger = c.socks.get(r).and_then(|s| s.opts.linger);
            match c.socks.get(r).map(|s| &s.proto) {
                Some(Proto::Tcp(_)) => c.tcp_close(pool, r, fx),
                Some(_) => c.free_sock(r, fx),
                None => {}
            }
            linger
        });
        // SO_LINGER with a time: wait (bounded) until the data went out.
        if let (Some(secs), Some(k)) = (linger.filter(|s| *s > 0), self.stack.kernel.upgrade()) {
            let deadline = k.now().saturating_add(secs as u64 * 1_000_000_000);
            let _ = k.wait(&[&self.shared.wq], Some(deadline), || {
                let c = self.stack.core.lock();
                let done = match c.socks.get(r).map(|s| &s.proto) {
                    Some(Proto::Tcp(t)) => t.conn().is_none_or(|cn| cn.sock().send_queue() == 0),
                    _ => true,
                };
                Ok(done.then_some(()))
            });
        }
    }
}
