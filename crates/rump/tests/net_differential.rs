//! Differential test of the socket API against the host kernel, over
//! loopback.
//!
//! Proptest generates sequences of socket calls over a few sockets, the
//! loopback and wildcard addresses of both families and a handful of
//! ports. Each sequence runs twice: on a fresh rump kernel (whose `lo0`
//! has `127.0.0.1/8` and `::1`) and on the host through libc. Every call's
//! result, including the errno of a failure, must be the same on both
//! sides. The host side only ever binds and connects to `127.0.0.1`,
//! `::1`, `::ffff:127.0.0.1` and the wildcard addresses (which bind
//! locally; as a destination Linux reads them as the loopback address).
//!
//! The calls: `socket` (`AF_INET`/`AF_INET6`, `SOCK_STREAM`/`SOCK_DGRAM`,
//! always `SOCK_NONBLOCK`, with protocol 0, TCP or UDP), `bind`,
//! `setsockopt` and `getsockopt`, `listen`, `connect` (to a fixed address,
//! to another socket's name as it is or with its wildcard address made
//! loopback, or `AF_UNSPEC`), `accept4`, `sendto` and `recvmsg` of small
//! data with `MSG_DONTWAIT` (and `MSG_PEEK`, `MSG_TRUNC`), `shutdown`,
//! `getsockname`, `getpeername`, `poll` without waiting, `fcntl(F_GETFL)`
//! and `close`. A sequence starts with a few sockets, or with a TCP
//! listener, a client and the accepted socket, or with two UDP sockets
//! connected to each other, so that established connections are common.
//!
//! `PROPTEST_CASES` sets the number of cases (256 by default);
//! `NET_DIFF_SURVEY=1` lists every kind of divergence met (with the
//! shortest sequence for each) and how often each kind of call agreed,
//! instead of failing at the first unknown divergence.
//!
//! How the two sides are made comparable:
//!
//! - Ports: a block of [`FIXED_PORTS`] ports per case, outside the host's
//!   ephemeral range and ours, starting at a random place per run and
//!   moving on each case to a block that no host socket uses (read from
//!   `/proc/net/{tcp,udp}{,6}`), so that parallel runs, earlier cases'
//!   TIME-WAIT connections and other programs do not collide with the
//!   case. Port numbers in results are compared as "port 0", "fixed port
//!   i" or "ephemeral" (the two kernels pick different ephemeral ports).
//! - Descriptors are compared by identity, not number: the call that
//!   opened a socket names it, and later calls refer to the sockets still
//!   open by position.
//! - Timing: everything is non-blocking, so nothing waits. Whenever a
//!   call may have put packets in flight (connect, send, shutdown,
//!   close, accept, listen, options), both sides get the same settle
//!   time ([`SETTLE`]) before the next call that could observe them. What
//!   a call sees before its packets have arrived (`EALREADY` from a
//!   second connect, data sent a moment ago) is inherently racy, so it is
//!   never compared.
//! - At the end of a case the host's sockets are closed with
//!   `SO_LINGER` 0 (a reset), so that they leave no TIME-WAIT behind; the
//!   rump kernel is halted.
//!
//! Deliberate differences, kept out of the generated calls or
//! normalised before comparing:
//!
//! - Default buffer sizes: ours are `net.inet.tcp.recvspace`/`sendspace`
//!   (1 MiB), Linux's come from `tcp_rmem`/`rmem_default`. `SO_RCVBUF`
//!   and `SO_SNDBUF` are compared only after the socket set them (to
//!   values both kernels double the same way).
//! - Stream sends are at most 1400 bytes: how much of a bigger send a
//!   non-blocking socket takes depends on buffer accounting, which
//!   differs (Linux counts per-packet overhead). Datagrams may be up to
//!   the largest UDP payload and one byte more.
//! - Every TCP socket gets `TCP_NODELAY` on both sides: with Nagle's
//!   algorithm a small segment waits for the acknowledgement of the one
//!   before, which Linux may delay by 40 ms or more, so whether the bytes
//!   have arrived after the settle time is timing, not semantics.
//! - Ping sockets and raw sockets are not generated (the host's depend
//!   on `net.ipv4.ping_group_range` and privilege).
//! - A `sendto` with an `AF_UNSPEC` address from an `AF_INET6` UDP socket
//!   connected to an IPv4-mapped peer is not made: Linux reads it as "no
//!   address" but then sends an IPv6 datagram to the mapped address
//!   (under IPv6's size limit), which nobody receives; ours sends to the
//!   peer over IPv4, as a `send` does on both.
//! - An `AF_INET6` TCP socket that started a connect to an IPv4-mapped
//!   address and, after that attempt ended, connects to an IPv6 address:
//!   Linux keeps the socket's IPv4-mapped operations, so its SYN goes
//!   nowhere and the socket waits in SYN-SENT; ours connects. Recognised
//!   by [`known_divergence`] as "deliberate".
//! - A TCP socket shut for writing before it connected (`ENOTCONN`, but
//!   both kernels remember the shutdown) that then connects to itself:
//!   Linux applies the early shutdown when a connection is established
//!   through SYN-RECEIVED (its passive path, which a simultaneous open
//!   takes), so the self-connection sends itself a FIN, closes, and the
//!   next connect says `ECONNABORTED`. An ordinary active open on Linux
//!   and every connect of ours keep the early shutdown local (sends say
//!   `EPIPE`) and the connection open. Recognised by [`known_divergence`]
//!   as "deliberate".
//! - An `AF_INET6` UDP socket connected to an IPv4-mapped address and then
//!   dissolved (`AF_UNSPEC`) stays deaf to IPv6 datagrams on Linux,
//!   though its name says `::`; ours takes them again. Recognised by
//!   [`known_divergence`] as "deliberate".
//!
//! Every bug this test found in `crates/net` (the sequences labelled
//! "bug N" in [`known_divergences_reproduce`]) is fixed, and those
//! sequences now agree. A divergence reported and awaiting a fix would
//! be recognised by [`known_divergence`], by its own predicate on the
//! call, the state of the socket it acts on and the two results, with its
//! shortest sequence in [`known_divergences_reproduce`]; the deliberate
//! ones are recognised the same way. After a known divergence the case
//! goes on if both sides still share a state (see [`keeps_state`]), else
//! it ends there. When a fix lands, delete its predicate: its sequence
//! must then agree.

mod net_util;

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use rump::net::{SockAddr, SockOpt};
use rump::sys::{self, consts::*, PollFd};
use rump::{Errno, Kernel, Process};

/// `tcpi_state` of a closed TCP socket (Linux's `TCP_CLOSE`).
const TCP_CLOSE: u8 = 7;
/// `tcpi_state` of a TCP socket sending its SYN (`TCP_SYN_SENT`).
const TCP_SYN_SENT: u8 = 2;
/// Fixed ports per case (port 0 comes on top).
const FIXED_PORTS: u16 = 4;
/// How long both sides get for packets in flight to arrive.
const SETTLE: Duration = Duration::from_millis(2);
/// The largest UDP payload over IPv4 (65535 - 20 - 8) and IPv6 (65535 - 8).
const UDP_MAX4: usize = 65507;
const UDP_MAX6: usize = 65527;
/// Sizes to send; streams send at most [`STREAM_MAX_SEND`] (see the top).
const SEND_LENS: &[usize] = &[
    0,
    1,
    7,
    100,
    1400,
    UDP_MAX4,
    UDP_MAX4 + 1,
    UDP_MAX6,
    UDP_MAX6 + 1,
];
const STREAM_MAX_SEND: usize = 1400;
const RECV_LENS: &[usize] = &[0, 1, 5, 100, 2000, 70000];
const BACKLOGS: &[i32] = &[-1, 0, 1, 5, 128];
const POLL_EVENTS: i16 = poll::IN | poll::PRI | poll::OUT | poll::RDHUP;

/// Options to set: values both kernels treat alike.
const SET_OPTS: &[SockOpt] = &[
    SockOpt::ReuseAddr(true),
    SockOpt::ReuseAddr(false),
    SockOpt::V6Only(true),
    SockOpt::V6Only(false),
    SockOpt::NoDelay(true),
    SockOpt::KeepAlive(true),
    SockOpt::Broadcast(true),
    // Within Linux's rmem_max/wmem_max (212992 by default) both double.
    SockOpt::RcvBuf(65536),
    SockOpt::RcvBuf(100_000),
    SockOpt::SndBuf(65536),
    SockOpt::Linger(Some(0)),
    SockOpt::Linger(None),
    SockOpt::Ttl(32),
    SockOpt::HopLimit(32),
];

/// Options to read, by Linux `(level, name)`.
const GET_OPTS: &[(i32, i32)] = &[
    (so::SOL_SOCKET, so::REUSEADDR),
    (so::SOL_SOCKET, so::TYPE),
    (so::SOL_SOCKET, so::ERROR),
    (so::SOL_SOCKET, so::ACCEPTCONN),
    (so::SOL_SOCKET, so::DOMAIN),
    (so::SOL_SOCKET, so::PROTOCOL),
    (so::SOL_SOCKET, so::KEEPALIVE),
    (so::SOL_SOCKET, so::BROADCAST),
    (so::SOL_SOCKET, so::RCVBUF),
    (so::SOL_SOCKET, so::SNDBUF),
    (so::SOL_SOCKET, so::LINGER),
    (ipproto::TCP, tcp::NODELAY),
    (ipproto::IP, ip::TTL),
    (ipproto::IPV6, ipv6::V6ONLY),
    (ipproto::IPV6, ipv6::UNICAST_HOPS),
];

/// Local and destination addresses: all loopback or wildcard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Addr {
    Any4,
    Lo4,
    Any6,
    Lo6,
    /// `::ffff:127.0.0.1`.
    Mapped,
}

const ADDRS: &[Addr] = &[Addr::Any4, Addr::Lo4, Addr::Any6, Addr::Lo6, Addr::Mapped];

/// Where a connect or a send goes.
#[derive(Clone, Copy, Debug)]
enum Dest {
    /// An address and port index (0: port 0, i: fixed port i-1).
    Fixed { addr: Addr, port: usize },
    /// Another socket's local address, whatever it is on each side.
    Sock(usize),
    /// The same with a wildcard address replaced by the loopback address
    /// (`127.0.0.1`, `::1`, `::ffff:127.0.0.1`).
    SockLo(usize),
    /// `AF_UNSPEC` (dissolves an association).
    Unspec,
}

#[derive(Clone, Debug)]
enum Op {
    Socket {
        v6: bool,
        stream: bool,
        protocol: i32,
    },
    Bind {
        h: usize,
        addr: Addr,
        port: usize,
    },
    SetOpt {
        h: usize,
        opt: SockOpt,
    },
    GetOpt {
        h: usize,
        opt: usize,
    },
    Listen {
        h: usize,
        backlog: i32,
    },
    Connect {
        h: usize,
        to: Dest,
    },
    Accept {
        h: usize,
    },
    Send {
        h: usize,
        len: usize,
        to: Option<Dest>,
    },
    Recv {
        h: usize,
        len: usize,
        flags: i32,
    },
    Shutdown {
        h: usize,
        how: i32,
    },
    SockName {
        h: usize,
    },
    PeerName {
        h: usize,
    },
    Poll {
        h: usize,
    },
    GetFl {
        h: usize,
    },
    Close {
        h: usize,
    },
}

impl Op {
    /// Whether the call may put packets in flight.
    fn sends_packets(&self) -> bool {
        !matches!(
            self,
            Op::Socket { .. }
                | Op::Bind { .. }
                | Op::GetOpt { .. }
                | Op::SockName { .. }
                | Op::PeerName { .. }
                | Op::Poll { .. }
                | Op::GetFl { .. }
        )
    }

    /// Whether the call's outcome may depend on packets in flight.
    fn observes_packets(&self) -> bool {
        !matches!(self, Op::Socket { .. } | Op::GetFl { .. })
    }
}

/// A port as compared: ephemeral port numbers differ between kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Port {
    Zero,
    Fixed(u16),
    Ephemeral,
}

/// A socket address as compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Name {
    Unspec,
    V4(Ipv4Addr, Port),
    V6 {
        addr: Ipv6Addr,
        port: Port,
        flowinfo: u32,
        scope_id: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Out {
    Unit,
    /// A new socket (descriptor numbers are not compared).
    Sock,
    Accepted(Name),
    Count(usize),
    Received {
        len: usize,
        data: Vec<u8>,
        from: Option<Name>,
        trunc: bool,
    },
    Name(Name),
    /// An option's value in Linux's layout.
    Opt(Vec<u8>),
    /// An option whose value is not compared (see the top).
    OptSome,
    /// A connect or send to another socket's name that differs between
    /// the sides: not made (the results could not be compared).
    Dest(Name),
    Events(i16),
    Flags(i32),
    /// No open socket to act on.
    Skipped,
}

type Res = Result<Out, i32>;

/// One socket on both sides.
#[derive(Clone, Copy, Debug)]
struct Handle {
    host: i32,
    rump: i32,
    /// `AF_INET` or `AF_INET6`, and `SOCK_STREAM` or `SOCK_DGRAM`.
    domain: i32,
    ty: i32,
    /// Whether `SO_RCVBUF` and `SO_SNDBUF` were set (values comparable).
    rcvbuf_set: bool,
    sndbuf_set: bool,
    /// A connect started here (`EINPROGRESS` on both sides).
    connect_tried: bool,
    /// A connect started here, or this socket was accepted.
    had_connection: bool,
    /// A send or connect failed here on both sides.
    send_failed: bool,
    /// A datagram socket once dissolved with `AF_UNSPEC` on both sides.
    disconnected: bool,
    /// `IPV6_V6ONLY` was set on both sides.
    v6only: bool,
    /// A datagram socket once connected to an IPv4 (or IPv4-mapped)
    /// address; once connected to a wildcard address.
    connected_v4: bool,
    connected_wildcard: bool,
    /// A stream socket of `AF_INET6` that started a connect to an
    /// IPv4-mapped address and later one to an IPv6 address (see the
    /// deliberate differences at the top).
    mapped_then_v6: bool,
    /// A stream socket shut for writing before it was connected
    /// (`ENOTCONN` on both sides, the shutdown is remembered).
    shut_wr_early: bool,
    /// A stream socket shut for writing early that started a connect to
    /// its own port (see the deliberate differences at the top).
    early_shut_self_connect: bool,
    /// A shutdown succeeded on both sides; one that included reading.
    shut: bool,
    shut_rd: bool,
    /// A stream socket disconnected (connect `AF_UNSPEC`, shutdown of a
    /// listener or of a connection being made) and not bound again since:
    /// Linux's name keeps the number of a port it released, so connecting
    /// to it reaches whoever the allocator gives that port next. It is no
    /// destination.
    released: bool,
}

/// A sequence: a start, then calls of every kind. The start is a few
/// sockets, or (so that established connections are common) a TCP
/// listener, a client connected to it and the accepted socket, or two
/// UDP sockets connected to each other.
fn ops() -> impl Strategy<Value = Vec<Op>> {
    let start = prop_oneof![
        2 => proptest::collection::vec(socket_op(), 1..=4),
        2 => (pick(ADDRS), any::<bool>(), 0..=FIXED_PORTS as usize)
            .prop_map(|(addr, other_family, port)| tcp_pair(addr, other_family, port)),
        1 => (pick(ADDRS), pick(ADDRS)).prop_map(|(a, b)| udp_pair(a, b)),
    ];
    (start, proptest::collection::vec(op(), 1..=40)).prop_map(|(mut start, ops)| {
        start.extend(ops);
        start
    })
}

fn pick<T: Copy + std::fmt::Debug + 'static>(choices: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(choices)
}

/// Whether `a` needs an `AF_INET6` socket.
fn is_v6(a: Addr) -> bool {
    !matches!(a, Addr::Any4 | Addr::Lo4)
}

/// A listener bound to `addr` (fixed port `port`, or an ephemeral one),
/// a client of the same family (or the other one) connecting to it, and
/// the accepted socket: handles 0, 1 and 2 when all goes well.
fn tcp_pair(addr: Addr, other_family: bool, port: usize) -> Vec<Op> {
    let v6 = is_v6(addr);
    vec![
        Op::Socket {
            v6,
            stream: true,
            protocol: 0,
        },
        Op::Bind { h: 0, addr, port },
        Op::Listen { h: 0, backlog: 5 },
        Op::Socket {
            v6: v6 != other_family,
            stream: true,
            protocol: 0,
        },
        Op::Connect {
            h: 1,
            to: Dest::SockLo(0),
        },
        Op::Accept { h: 0 },
    ]
}

/// Two UDP sockets bound to `a` and `b` (fixed ports 1 and 2), each
/// connected to the other.
fn udp_pair(a: Addr, b: Addr) -> Vec<Op> {
    let socket = |v6| Op::Socket {
        v6,
        stream: false,
        protocol: 0,
    };
    vec![
        socket(is_v6(a)),
        socket(is_v6(b)),
        Op::Bind {
            h: 0,
            addr: a,
            port: 1,
        },
        Op::Bind {
            h: 1,
            addr: b,
            port: 2,
        },
        Op::Connect {
            h: 0,
            to: Dest::SockLo(1),
        },
        Op::Connect {
            h: 1,
            to: Dest::SockLo(0),
        },
    ]
}

/// A socket: TCP more often than UDP (it has more states).
fn socket_op() -> impl Strategy<Value = Op> {
    let protocol = pick(&[0, 0, 0, 0, ipproto::TCP, ipproto::UDP]);
    (any::<bool>(), proptest::bool::weighted(0.65), protocol).prop_map(|(v6, stream, protocol)| {
        Op::Socket {
            v6,
            stream,
            protocol,
        }
    })
}

fn op() -> impl Strategy<Value = Op> {
    let h = || 0..4usize;
    let addr = || pick(ADDRS);
    let port = || prop_oneof![1 => Just(0usize), 3 => 1..=FIXED_PORTS as usize];
    let dest = move || {
        prop_oneof![
            3 => (addr(), port()).prop_map(|(addr, port)| Dest::Fixed { addr, port }),
            2 => h().prop_map(Dest::Sock),
            6 => h().prop_map(Dest::SockLo),
            1 => Just(Dest::Unspec),
        ]
    };
    prop_oneof![
        3 => socket_op(),
        6 => (h(), addr(), port()).prop_map(|(h, addr, port)| Op::Bind { h, addr, port }),
        3 => (h(), pick(SET_OPTS)).prop_map(|(h, opt)| Op::SetOpt { h, opt }),
        2 => (h(), 0..GET_OPTS.len()).prop_map(|(h, opt)| Op::GetOpt { h, opt }),
        4 => (h(), pick(BACKLOGS))
            .prop_map(|(h, backlog)| Op::Listen { h, backlog }),
        6 => (h(), dest()).prop_map(|(h, to)| Op::Connect { h, to }),
        5 => h().prop_map(|h| Op::Accept { h }),
        6 => (h(), pick(SEND_LENS), proptest::option::weighted(0.4, dest()))
            .prop_map(|(h, len, to)| Op::Send { h, len, to }),
        6 => (
            h(),
            pick(RECV_LENS),
            pick(&[0, msg::PEEK, msg::TRUNC])
        )
            .prop_map(|(h, len, flags)| Op::Recv { h, len, flags }),
        2 => (h(), pick(&[shut::RD, shut::WR, shut::RDWR, 3]))
            .prop_map(|(h, how)| Op::Shutdown { h, how }),
        2 => h().prop_map(|h| Op::SockName { h }),
        2 => h().prop_map(|h| Op::PeerName { h }),
        2 => h().prop_map(|h| Op::Poll { h }),
        1 => h().prop_map(|h| Op::GetFl { h }),
        2 => h().prop_map(|h| Op::Close { h }),
    ]
}

/// `a` with a wildcard address replaced by the loopback address.
fn loopback(a: SockAddr) -> SockAddr {
    match a {
        SockAddr::Inet { addr, port } if addr == [0; 4] => {
            SockAddr::inet(Ipv4Addr::LOCALHOST, port)
        }
        SockAddr::Inet6 { addr, port, .. } if Ipv6Addr::from(addr).is_unspecified() => {
            SockAddr::inet6(Ipv6Addr::LOCALHOST, port)
        }
        SockAddr::Inet6 { addr, port, .. }
            if Ipv6Addr::from(addr) == Ipv4Addr::UNSPECIFIED.to_ipv6_mapped() =>
        {
            SockAddr::inet6(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), port)
        }
        a => a,
    }
}

/// Both sides of one case.
struct Run {
    kernel: Option<Kernel>,
    p: Process,
    /// The first fixed port of this case.
    base: u16,
    /// Open sockets in the order they opened.
    socks: Vec<Handle>,
    /// Packets may be in flight since the last settle.
    unsettled: bool,
    /// Datagrams and segments sent so far (seeds their contents).
    sent: u64,
}

impl Run {
    fn new(base: u16) -> Run {
        let (kernel, p) = net_util::net_kernel();
        Run {
            kernel: Some(kernel),
            p,
            base,
            socks: Vec::new(),
            unsettled: false,
            sent: 0,
        }
    }

    fn port(&self, i: usize) -> u16 {
        if i == 0 {
            0
        } else {
            self.base + i as u16 - 1
        }
    }

    fn sockaddr(&self, a: Addr, port: usize) -> SockAddr {
        let port = self.port(port);
        match a {
            Addr::Any4 => SockAddr::inet(Ipv4Addr::UNSPECIFIED, port),
            Addr::Lo4 => SockAddr::inet(Ipv4Addr::LOCALHOST, port),
            Addr::Any6 => SockAddr::inet6(Ipv6Addr::UNSPECIFIED, port),
            Addr::Lo6 => SockAddr::inet6(Ipv6Addr::LOCALHOST, port),
            Addr::Mapped => SockAddr::inet6(Ipv4Addr::LOCALHOST.to_ipv6_mapped(), port),
        }
    }

    fn name(&self, a: SockAddr) -> Name {
        let port = |p: u16| match p {
            0 => Port::Zero,
            p if (self.base..self.base + FIXED_PORTS).contains(&p) => Port::Fixed(p - self.base),
            _ => Port::Ephemeral,
        };
        match a {
            SockAddr::Unspec => Name::Unspec,
            SockAddr::Inet { addr, port: p } => Name::V4(addr.into(), port(p)),
            SockAddr::Inet6 {
                addr,
                port: p,
                flowinfo,
                scope_id,
            } => Name::V6 {
                addr: addr.into(),
                port: port(p),
                flowinfo,
                scope_id,
            },
        }
    }

    /// The destination on each side: (host, rump). `None` when a socket
    /// named as the destination has no local address on some side.
    fn dest(&self, d: Dest) -> Option<(SockAddr, SockAddr)> {
        match d {
            Dest::Fixed { addr, port } => {
                let a = self.sockaddr(addr, port);
                Some((a, a))
            }
            Dest::Unspec => Some((SockAddr::Unspec, SockAddr::Unspec)),
            Dest::Sock(t) | Dest::SockLo(t) => {
                let t = self.socks.get(t.checked_rem(self.socks.len())?)?;
                if t.released {
                    return None;
                }
                let host = host_sys::getsockname(t.host).ok()?;
                let rump = sys::getsockname(&self.p, t.rump).ok()?;
                if matches!(d, Dest::SockLo(_)) {
                    return Some((loopback(host), loopback(rump)));
                }
                Some((host, rump))
            }
        }
    }

    /// Gives packets in flight time to arrive, on both sides, if `op`
    /// could see them.
    fn settle_before(&mut self, op: &Op) {
        if self.unsettled && op.observes_packets() {
            std::thread::sleep(SETTLE);
            self.unsettled = false;
        }
    }

    /// Runs `op` on both sides.
    fn step(&mut self, op: &Op) -> (Res, Res) {
        self.settle_before(op);
        if op.sends_packets() {
            self.unsettled = true;
        }
        let pick = |h: usize| -> Option<(usize, Handle)> {
            let i = h.checked_rem(self.socks.len())?;
            Some((i, self.socks[i]))
        };
        macro_rules! on {
            ($h:expr) => {
                match pick($h) {
                    Some(x) => x,
                    None => return skipped(),
                }
            };
        }
        let p = &self.p;
        match *op {
            Op::Socket {
                v6,
                stream,
                protocol,
            } => {
                let domain = if v6 { af::INET6 } else { af::INET };
                let ty = if stream { sock::STREAM } else { sock::DGRAM } | sock::NONBLOCK;
                let host = host_sys::socket(domain, ty, protocol);
                let rump = sys::socket(p, domain, ty, protocol).map_err(|e| e.0);
                if let (true, Ok(h), Ok(r)) = (stream, host, rump) {
                    // No Nagle: when held-back bytes leave depends on when
                    // the peer acknowledges (see the top).
                    let on = SockOpt::NoDelay(true);
                    let (level, name) = on.level_name();
                    host_sys::setsockopt(h, level, name, &on.to_linux()).expect("TCP_NODELAY");
                    sys::setsockopt(p, r, on).expect("TCP_NODELAY");
                }
                let out = (host.map(|_| Out::Sock), rump.map(|_| Out::Sock));
                match (host, rump) {
                    (Ok(host), Ok(rump)) => self.socks.push(Handle {
                        host,
                        rump,
                        domain,
                        ty: ty & sock::TYPE_MASK,
                        rcvbuf_set: false,
                        sndbuf_set: false,
                        connect_tried: false,
                        had_connection: false,
                        send_failed: false,
                        disconnected: false,
                        v6only: false,
                        connected_v4: false,
                        connected_wildcard: false,
                        mapped_then_v6: false,
                        shut_wr_early: false,
                        early_shut_self_connect: false,
                        shut: false,
                        shut_rd: false,
                        released: false,
                    }),
                    (Ok(fd), Err(_)) => host_sys::close(fd),
                    (Err(_), Ok(fd)) => drop(sys::close(p, fd)),
                    (Err(_), Err(_)) => {}
                }
                out
            }
            Op::Bind { h, addr, port } => {
                let (i, s) = on!(h);
                let a = self.sockaddr(addr, port);
                let r = (
                    host_sys::bind(s.host, a).map(unit),
                    sys::bind(p, s.rump, a).map(unit).map_err(|e| e.0),
                );
                if r.0.is_ok() && r.1.is_ok() {
                    self.socks[i].released = false;
                }
                r
            }
            Op::SetOpt { h, opt } => {
                let (i, s) = on!(h);
                let (level, name) = opt.level_name();
                let r = (
                    host_sys::setsockopt(s.host, level, name, &opt.to_linux()).map(unit),
                    sys::setsockopt(p, s.rump, opt).map(unit).map_err(|e| e.0),
                );
                if r.0.is_ok() && r.1.is_ok() {
                    match opt {
                        SockOpt::RcvBuf(_) => self.socks[i].rcvbuf_set = true,
                        SockOpt::SndBuf(_) => self.socks[i].sndbuf_set = true,
                        SockOpt::V6Only(b) => self.socks[i].v6only = b,
                        _ => {}
                    }
                }
                r
            }
            Op::GetOpt { h, opt } => {
                let (_, s) = on!(h);
                let (level, name) = GET_OPTS[opt];
                let comparable = match (level, name) {
                    (so::SOL_SOCKET, so::RCVBUF) => s.rcvbuf_set,
                    (so::SOL_SOCKET, so::SNDBUF) => s.sndbuf_set,
                    _ => true,
                };
                let value = |v: Vec<u8>| {
                    if comparable {
                        Out::Opt(v)
                    } else {
                        Out::OptSome
                    }
                };
                (
                    host_sys::getsockopt(s.host, level, name).map(value),
                    sys::getsockopt(p, s.rump, level, name)
                        .map(|o| value(o.to_linux()))
                        .map_err(|e| e.0),
                )
            }
            Op::Listen { h, backlog } => {
                let (i, s) = on!(h);
                let r = (
                    host_sys::listen(s.host, backlog).map(unit),
                    sys::listen(p, s.rump, backlog).map(unit).map_err(|e| e.0),
                );
                if r.0.is_ok() && r.1.is_ok() {
                    self.socks[i].released = false;
                }
                r
            }
            Op::Connect { h, to } => {
                let (i, s) = on!(h);
                let Some((ht, rt)) = self.dest(to) else {
                    return skipped();
                };
                if self.name(ht) != self.name(rt) {
                    return (Ok(Out::Dest(self.name(ht))), Ok(Out::Dest(self.name(rt))));
                }
                // A connect to the socket's own port (bound to a wildcard
                // or loopback address): a self-connect.
                // Only one kind of it is told apart (see the top): one
                // shut for writing before.
                let port_of = |a: SockAddr| rump::net::std_addr(a).ok().map(|a| a.port());
                let to_self = s.ty == sock::STREAM
                    && s.shut_wr_early
                    && host_sys::getsockname(s.host)
                        .ok()
                        .and_then(port_of)
                        .is_some_and(|o| o != 0 && Some(o) == port_of(ht));
                let r = (
                    host_sys::connect(s.host, ht).map(unit),
                    sys::connect(p, s.rump, rt).map(unit).map_err(|e| e.0),
                );
                if to_self && r.0 == Err(libc::EINPROGRESS) {
                    self.socks[i].early_shut_self_connect = true;
                }
                if s.ty == sock::STREAM
                    && matches!(rt, SockAddr::Unspec)
                    && r == (Ok(Out::Unit), Ok(Out::Unit))
                {
                    // Disconnected: Linux's bookkeeping afterwards is
                    // that of a connection that ended (leftover states).
                    self.socks[i].had_connection = true;
                    self.socks[i].released = true;
                }
                if !matches!(rt, SockAddr::Unspec)
                    && ((r.0.is_ok() && r.1.is_ok())
                        || r == (Err(libc::EINPROGRESS), Err(libc::EINPROGRESS)))
                {
                    self.socks[i].released = false;
                }
                if r == (Err(libc::EINPROGRESS), Err(libc::EINPROGRESS)) {
                    let h = &mut self.socks[i];
                    if s.domain == af::INET6 {
                        match ht {
                            SockAddr::Inet6 { addr, .. }
                                if Ipv6Addr::from(addr).to_ipv4_mapped().is_none() =>
                            {
                                h.mapped_then_v6 |= h.connected_v4;
                            }
                            _ => h.connected_v4 = true,
                        }
                    }
                    self.socks[i].connect_tried = true;
                    self.socks[i].had_connection = true;
                }
                if r.0.is_err() && r.1.is_err() {
                    self.socks[i].send_failed = true;
                }
                if r.0.is_ok() && r.1.is_ok() && s.ty == sock::DGRAM {
                    let h = &mut self.socks[i];
                    h.connected_wildcard |= match ht {
                        SockAddr::Inet { addr, .. } => addr == [0; 4],
                        SockAddr::Inet6 { addr, .. } => {
                            let a = Ipv6Addr::from(addr);
                            a.is_unspecified() || a == Ipv4Addr::UNSPECIFIED.to_ipv6_mapped()
                        }
                        SockAddr::Unspec => false,
                    };
                    h.connected_v4 |= match ht {
                        SockAddr::Inet { .. } => true,
                        SockAddr::Inet6 { addr, .. } => {
                            Ipv6Addr::from(addr).to_ipv4_mapped().is_some()
                        }
                        SockAddr::Unspec => false,
                    };
                    h.disconnected |= ht == SockAddr::Unspec;
                }
                r
            }
            Op::Accept { h } => {
                let (i, s) = on!(h);
                let host = host_sys::accept4(s.host, sock::NONBLOCK);
                let rump = sys::accept4(p, s.rump, sock::NONBLOCK).map_err(|e| e.0);
                let out = (
                    host.map(|(_, a)| Out::Accepted(self.name(a))),
                    rump.map(|(_, a)| Out::Accepted(self.name(a))),
                );
                match (host, rump) {
                    (Ok((host, _)), Ok((rump, _))) => self.socks.push(Handle {
                        host,
                        rump,
                        // Accepted sockets inherit the listener's buffers.
                        connect_tried: false,
                        had_connection: true,
                        send_failed: false,
                        disconnected: false,
                        v6only: false,
                        connected_v4: false,
                        connected_wildcard: false,
                        mapped_then_v6: false,
                        shut_wr_early: false,
                        early_shut_self_connect: false,
                        shut: false,
                        shut_rd: false,
                        released: false,
                        ..self.socks[i]
                    }),
                    (Ok((fd, _)), Err(_)) => host_sys::close(fd),
                    (Err(_), Ok((fd, _))) => drop(sys::close(p, fd)),
                    (Err(_), Err(_)) => {}
                }
                out
            }
            Op::Send { h, len, to } => {
                let (i, s) = on!(h);
                if s.domain == af::INET6
                    && s.ty == sock::DGRAM
                    && s.connected_v4
                    && matches!(to, Some(Dest::Unspec))
                {
                    // Deliberate (see the top): not compared.
                    return skipped();
                }
                let to = match to {
                    None => None,
                    Some(d) => match self.dest(d) {
                        Some(d) => Some(d),
                        None => return skipped(),
                    },
                };
                if let Some((ht, rt)) = to {
                    if self.name(ht) != self.name(rt) {
                        return (Ok(Out::Dest(self.name(ht))), Ok(Out::Dest(self.name(rt))));
                    }
                }
                let len = if s.ty == sock::STREAM {
                    len.min(STREAM_MAX_SEND)
                } else {
                    len
                };
                self.sent += 1;
                let data = net_util::pattern(self.sent, len);
                let flags = msg::DONTWAIT | msg::NOSIGNAL;
                let r = (
                    host_sys::sendto(s.host, &data, flags, to.map(|t| t.0)).map(Out::Count),
                    sys::sendto(p, s.rump, &data, flags, to.map(|t| t.1))
                        .map(Out::Count)
                        .map_err(|e| e.0),
                );
                if r.0.is_err() && r.1.is_err() {
                    self.socks[i].send_failed = true;
                }
                r
            }
            Op::Recv { h, len, flags } => {
                let (_, s) = on!(h);
                let flags = flags | msg::DONTWAIT;
                let host = host_sys::recvmsg(s.host, len, flags).map(|(len, data, from, fl)| {
                    Out::Received {
                        len,
                        data,
                        from: from.map(|a| self.name(a)),
                        trunc: fl & msg::TRUNC != 0,
                    }
                });
                let mut buf = vec![0u8; len];
                let rump = sys::recvfrom(p, s.rump, &mut buf, flags)
                    .map(|info| {
                        buf.truncate(info.len.min(len));
                        Out::Received {
                            len: info.len,
                            data: buf,
                            from: info.from.map(|a| self.name(a)),
                            trunc: info.flags & msg::TRUNC != 0,
                        }
                    })
                    .map_err(|e| e.0);
                (host, rump)
            }
            Op::Shutdown { h, how } => {
                let (i, s) = on!(h);
                let r = (
                    host_sys::shutdown(s.host, how).map(unit),
                    sys::shutdown(p, s.rump, how).map(unit).map_err(|e| e.0),
                );
                if s.ty == sock::STREAM
                    && how != shut::RD
                    && r == (Err(libc::ENOTCONN), Err(libc::ENOTCONN))
                {
                    self.socks[i].shut_wr_early = true;
                }
                if r == (Ok(Out::Unit), Ok(Out::Unit)) {
                    self.socks[i].shut = true;
                    self.socks[i].shut_rd |= how != shut::WR;
                    if s.ty == sock::STREAM && how != shut::WR {
                        // A listener or a connection being made is
                        // disconnected (leftover states).
                        self.socks[i].had_connection = true;
                        self.socks[i].released = true;
                    }
                }
                r
            }
            Op::SockName { h } => {
                let (_, s) = on!(h);
                (
                    host_sys::getsockname(s.host).map(|a| Out::Name(self.name(a))),
                    sys::getsockname(p, s.rump)
                        .map(|a| Out::Name(self.name(a)))
                        .map_err(|e| e.0),
                )
            }
            Op::PeerName { h } => {
                let (_, s) = on!(h);
                (
                    host_sys::getpeername(s.host).map(|a| Out::Name(self.name(a))),
                    sys::getpeername(p, s.rump)
                        .map(|a| Out::Name(self.name(a)))
                        .map_err(|e| e.0),
                )
            }
            Op::Poll { h } => {
                let (_, s) = on!(h);
                let mut fds = [PollFd {
                    fd: s.rump,
                    events: POLL_EVENTS,
                    revents: 0,
                }];
                (
                    host_sys::poll(s.host, POLL_EVENTS).map(Out::Events),
                    sys::poll(p, &mut fds, 0)
                        .map(|_| Out::Events(fds[0].revents))
                        .map_err(|e| e.0),
                )
            }
            Op::GetFl { h } => {
                let (_, s) = on!(h);
                (
                    host_sys::getfl(s.host).map(Out::Flags),
                    sys::fcntl(p, s.rump, f::GETFL, 0)
                        .map(|v| Out::Flags(v as i32))
                        .map_err(|e| e.0),
                )
            }
            Op::Close { h } => {
                let (i, s) = on!(h);
                self.socks.remove(i);
                host_sys::close(s.host);
                (
                    Ok(Out::Unit),
                    sys::close(p, s.rump).map(unit).map_err(|e| e.0),
                )
            }
        }
    }
}

impl Drop for Run {
    /// Resets the host's connections (no TIME-WAIT left on the case's
    /// ports) and halts the kernel.
    fn drop(&mut self) {
        for s in self.socks.drain(..) {
            let _ = host_sys::setsockopt(
                s.host,
                so::SOL_SOCKET,
                so::LINGER,
                &[1, 0, 0, 0, 0, 0, 0, 0],
            );
            host_sys::close(s.host);
        }
        if let Some(k) = self.kernel.take() {
            k.halt();
        }
    }
}

fn unit<T>(_: T) -> Out {
    Out::Unit
}

fn skipped() -> (Res, Res) {
    (Ok(Out::Skipped), Ok(Out::Skipped))
}

/// What a call acts on, seen (on the host) before it runs: its socket,
/// that socket's TCP state, and the destination of a connect or send.
#[derive(Clone, Copy, Debug, Default)]
struct Ctx {
    sock: Option<Handle>,
    /// A TCP socket in the CLOSE state on the host (`TCP_INFO`); in
    /// SYN-SENT.
    host_closed: bool,
    host_syn_sent: bool,
    to: Option<SockAddr>,
    /// The socket the destination names, if any.
    dest_sock: Option<Handle>,
}

impl Run {
    fn ctx(&self, op: &Op) -> Ctx {
        let h = match *op {
            Op::Socket { .. } => return Ctx::default(),
            Op::Bind { h, .. }
            | Op::SetOpt { h, .. }
            | Op::GetOpt { h, .. }
            | Op::Listen { h, .. }
            | Op::Connect { h, .. }
            | Op::Accept { h }
            | Op::Send { h, .. }
            | Op::Recv { h, .. }
            | Op::Shutdown { h, .. }
            | Op::SockName { h }
            | Op::PeerName { h }
            | Op::Poll { h }
            | Op::GetFl { h }
            | Op::Close { h } => h,
        };
        let Some(s) = h.checked_rem(self.socks.len()).map(|i| self.socks[i]) else {
            return Ctx::default();
        };
        let dest = match *op {
            Op::Connect { to, .. } | Op::Send { to: Some(to), .. } => Some(to),
            _ => None,
        };
        let to = dest.and_then(|d| self.dest(d));
        let dest_sock = match dest {
            Some(Dest::Sock(t) | Dest::SockLo(t)) => Some(self.socks[t % self.socks.len()]),
            _ => None,
        };
        Ctx {
            sock: Some(s),
            host_closed: host_sys::getsockopt(s.host, libc::IPPROTO_TCP, libc::TCP_INFO)
                .is_ok_and(|v| v.first() == Some(&TCP_CLOSE)),
            host_syn_sent: host_sys::getsockopt(s.host, libc::IPPROTO_TCP, libc::TCP_INFO)
                .is_ok_and(|v| v.first() == Some(&TCP_SYN_SENT)),
            to: to.map(|t| t.0),
            dest_sock,
        }
    }
}

/// A divergence reported to be fixed in `crates/net` (each names its
/// report) or a deliberate one, recognised by what the call was, what it
/// acted on and what each side returned; `None` for anything else.
fn known_divergence(op: &Op, ctx: &Ctx, host: &Res, ours: &Res) -> Option<&'static str> {
    use Errno as E;
    let s = ctx.sock?;
    let stream = s.ty == sock::STREAM;
    let v6 = s.domain == af::INET6;
    let err = |r: &Res, e: Errno| *r == Err(e.0);

    // Deliberate: an AF_INET6 UDP socket that was connected to an IPv4
    // (or IPv4-mapped) address and then dissolved stays deaf to IPv6
    // datagrams on Linux (its name says `::`, but it still acts as an
    // IPv4 socket). We do not copy that; ours takes them again.
    if v6 && !stream && s.connected_v4 && s.disconnected {
        let ipv6_from = |r: &Res| match r {
            Ok(Out::Received {
                from: Some(Name::V6 { addr, .. }),
                ..
            }) => addr.to_ipv4_mapped().is_none(),
            _ => false,
        };
        // Once ours took an IPv6 datagram that Linux did not, the queues
        // differ: any receive may tell.
        let deaf = match (op, host, ours) {
            (Op::Recv { .. }, h, r) => (err(h, E::EAGAIN) && ipv6_from(r)) || h.is_ok(),
            (Op::Poll { .. }, Ok(Out::Events(h)), Ok(Out::Events(r))) => *r == h | poll::IN,
            _ => false,
        };
        if deaf {
            return Some("deliberate: dissolved UDP association keeps IPv4-only");
        }
    }
    // Deliberate: a TCP socket shut for writing before it connected
    // and then connected to itself (see the top).
    if stream && s.early_shut_self_connect {
        return Some("deliberate: self-connect after an early SHUT_WR");
    }
    // Deliberate: Linux's connect to an IPv6 address from a socket
    // that once connected to an IPv4-mapped one sends its SYN with the
    // mapped operations and waits in SYN-SENT; ours connects.
    if stream && s.mapped_then_v6 && ctx.host_syn_sent {
        return Some("deliberate: IPv6 connect after an IPv4-mapped one");
    }
    // Deliberate: Linux keeps two states for a TCP socket (the socket's
    // SS_* and the connection's), and once a connection ended (refused,
    // reset, closed both ways) or was taken apart (connect AF_UNSPEC,
    // shutdown while connecting) their leftovers decide what the socket
    // may still do. Ours follows what a program relies on, and what is
    // compared: the error is reported once, reads then see the end,
    // writes EPIPE, poll HUP, connect EISCONN once connected, the
    // automatic port goes back. What we do not copy: a socket shut down
    // while connecting is "disconnecting" for good (listen and connect
    // say EINVAL), listen after an attempt ended says EINVAL, and the
    // name, the peer name and whether bind or an option is allowed follow
    // those leftovers. Only those calls are excused here.
    if stream && s.had_connection && ctx.host_closed {
        let leftover = match (op, host, ours) {
            (Op::Listen { .. } | Op::Connect { .. }, h, _) => err(h, E::EINVAL),
            (Op::Bind { .. } | Op::SetOpt { .. }, h, r) => err(h, E::EINVAL) || err(r, E::EINVAL),
            (Op::SockName { .. } | Op::PeerName { .. }, _, _) => true,
            (Op::Send { .. }, h, _) => err(h, E::EPIPE),
            _ => false,
        };
        if leftover {
            return Some("deliberate: Linux's leftover states of an ended connection");
        }
    }
    // A destination named by a socket whose name differs between the
    // sides (the call was not made, see `Out::Dest`): a socket whose
    // connection ended (see the leftover states above).
    if let (Some(d), Ok(Out::Dest(_)), Ok(Out::Dest(_))) = (ctx.dest_sock, host, ours) {
        if d.ty == sock::STREAM && d.had_connection {
            return Some("deliberate: Linux's leftover states of an ended connection");
        }
    }
    None
}

fn name_port(n: &Name) -> Option<Port> {
    match *n {
        Name::V4(_, p) | Name::V6 { port: p, .. } => Some(p),
        Name::Unspec => None,
    }
}

/// Thin wrappers over the host's socket calls, returning `Err(errno)` on
/// failure; each unsafe block says why it is sound.
mod host_sys {
    use rump::net::SockAddr;

    fn check(r: isize) -> Result<usize, i32> {
        if r < 0 {
            Err(std::io::Error::last_os_error().raw_os_error().unwrap())
        } else {
            Ok(r as usize)
        }
    }

    /// Room for any socket address (`struct sockaddr_storage`).
    const ADDR_MAX: usize = 128;

    fn parse(buf: &[u8], len: libc::socklen_t) -> Option<SockAddr> {
        let len = (len as usize).min(buf.len());
        (len > 0).then(|| SockAddr::from_linux(&buf[..len]).expect("host gave an odd address"))
    }

    pub fn socket(domain: i32, ty: i32, protocol: i32) -> Result<i32, i32> {
        // SAFETY: no pointers involved.
        let fd = check(unsafe { libc::socket(domain, ty, protocol) } as isize)? as i32;
        if domain == libc::AF_INET6 && super::host_bindv6only() {
            // Ours, like Linux's default, is dual-stack until told.
            setsockopt(
                fd,
                libc::IPPROTO_IPV6,
                libc::IPV6_V6ONLY,
                &0i32.to_ne_bytes(),
            )?;
        }
        Ok(fd)
    }

    pub fn close(fd: i32) {
        // SAFETY: closing a descriptor this test opened.
        unsafe { libc::close(fd) };
    }

    pub fn bind(fd: i32, a: SockAddr) -> Result<usize, i32> {
        let b = a.to_linux();
        // SAFETY: `b` holds `b.len()` bytes of a Linux socket address; the
        // kernel copies them and does not care about alignment.
        check(unsafe { libc::bind(fd, b.as_ptr().cast(), b.len() as libc::socklen_t) } as isize)
    }

    pub fn connect(fd: i32, a: SockAddr) -> Result<usize, i32> {
        let b = a.to_linux();
        // SAFETY: as in `bind`.
        check(unsafe { libc::connect(fd, b.as_ptr().cast(), b.len() as libc::socklen_t) } as isize)
    }

    pub fn listen(fd: i32, backlog: i32) -> Result<usize, i32> {
        // SAFETY: no pointers involved.
        check(unsafe { libc::listen(fd, backlog) } as isize)
    }

    pub fn accept4(fd: i32, flags: i32) -> Result<(i32, SockAddr), i32> {
        let mut buf = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        // SAFETY: `buf` has room for `len` bytes; `len` is a valid in/out
        // pointer.
        let nfd =
            check(unsafe { libc::accept4(fd, buf.as_mut_ptr().cast(), &mut len, flags) } as isize)?
                as i32;
        Ok((nfd, parse(&buf, len).unwrap_or(SockAddr::Unspec)))
    }

    pub fn sendto(fd: i32, data: &[u8], flags: i32, to: Option<SockAddr>) -> Result<usize, i32> {
        let b = to.map(|a| a.to_linux());
        let (ptr, len) = match &b {
            Some(b) => (b.as_ptr().cast(), b.len() as libc::socklen_t),
            None => (std::ptr::null(), 0),
        };
        // SAFETY: `data` is valid for its length; the address as in `bind`
        // (or null with length 0).
        check(unsafe { libc::sendto(fd, data.as_ptr().cast(), data.len(), flags, ptr, len) })
    }

    /// `recvmsg` into one buffer of `len` bytes: the return value, the
    /// bytes placed in the buffer, the source and `msg_flags`.
    pub fn recvmsg(
        fd: i32,
        len: usize,
        flags: i32,
    ) -> Result<(usize, Vec<u8>, Option<SockAddr>, i32), i32> {
        let mut data = vec![0u8; len];
        let mut name = [0u8; ADDR_MAX];
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: len,
        };
        // SAFETY: all-zero is a valid `struct msghdr`.
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        m.msg_name = name.as_mut_ptr().cast();
        m.msg_namelen = ADDR_MAX as libc::socklen_t;
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        // SAFETY: `m` points at `name` and `iov`, which points at `data`,
        // all alive and of the sizes given.
        let n = check(unsafe { libc::recvmsg(fd, &mut m, flags) })?;
        data.truncate(n.min(len));
        Ok((n, data, parse(&name, m.msg_namelen), m.msg_flags))
    }

    pub fn shutdown(fd: i32, how: i32) -> Result<usize, i32> {
        // SAFETY: no pointers involved.
        check(unsafe { libc::shutdown(fd, how) } as isize)
    }

    fn name_of(
        fd: i32,
        call: unsafe extern "C" fn(i32, *mut libc::sockaddr, *mut libc::socklen_t) -> i32,
    ) -> Result<SockAddr, i32> {
        let mut buf = [0u8; ADDR_MAX];
        let mut len = ADDR_MAX as libc::socklen_t;
        // SAFETY: `call` is getsockname or getpeername; `buf` has room for
        // `len` bytes.
        check(unsafe { call(fd, buf.as_mut_ptr().cast(), &mut len) } as isize)?;
        Ok(parse(&buf, len).unwrap_or(SockAddr::Unspec))
    }

    pub fn getsockname(fd: i32) -> Result<SockAddr, i32> {
        name_of(fd, libc::getsockname)
    }

    pub fn getpeername(fd: i32) -> Result<SockAddr, i32> {
        name_of(fd, libc::getpeername)
    }

    pub fn setsockopt(fd: i32, level: i32, name: i32, val: &[u8]) -> Result<usize, i32> {
        // SAFETY: `val` is valid for its length.
        check(unsafe {
            libc::setsockopt(
                fd,
                level,
                name,
                val.as_ptr().cast(),
                val.len() as libc::socklen_t,
            )
        } as isize)
    }

    pub fn getsockopt(fd: i32, level: i32, name: i32) -> Result<Vec<u8>, i32> {
        let mut buf = [0u8; 64];
        let mut len = buf.len() as libc::socklen_t;
        // SAFETY: `buf` has room for `len` bytes (the kernel truncates a
        // longer value, e.g. `TCP_INFO`, to them).
        let r = unsafe { libc::getsockopt(fd, level, name, buf.as_mut_ptr().cast(), &mut len) };
        check(r as isize)?;
        Ok(buf[..len as usize].to_vec())
    }

    pub fn poll(fd: i32, events: i16) -> Result<i16, i32> {
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid `pollfd`; no waiting.
        check(unsafe { libc::poll(&mut p, 1, 0) } as isize)?;
        Ok(p.revents)
    }

    pub fn getfl(fd: i32) -> Result<i32, i32> {
        // SAFETY: F_GETFL takes no argument.
        check(unsafe { libc::fcntl(fd, libc::F_GETFL) } as isize).map(|f| f as i32)
    }
}

/// Whether the host's IPv6 sockets start as `IPV6_V6ONLY`.
fn host_bindv6only() -> bool {
    static V: OnceLock<bool> = OnceLock::new();
    *V.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/ipv6/bindv6only").is_ok_and(|s| s.trim() == "1")
    })
}

/// Whether the host has an IPv6 loopback address to bind.
fn host_has_ipv6_loopback() -> bool {
    let Ok(fd) = host_sys::socket(libc::AF_INET6, libc::SOCK_DGRAM, 0) else {
        return false;
    };
    let ok = host_sys::bind(fd, SockAddr::inet6(Ipv6Addr::LOCALHOST, 0)).is_ok();
    host_sys::close(fd);
    ok
}

/// Where this run's fixed ports may lie: below the host's ephemeral range
/// (`ip_local_port_range`) and ours (49152 and up).
fn port_range() -> (u16, u16) {
    let host_first = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let hi = host_first.min(49152);
    let lo = 10000.min(hi.saturating_sub(4096)).max(1024);
    (lo, hi)
}

/// Local ports of every host TCP and UDP socket (any state).
fn host_ports_in_use() -> HashSet<u16> {
    let mut ports = HashSet::new();
    for f in ["tcp", "tcp6", "udp", "udp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/net/{f}")) else {
            continue;
        };
        for line in text.lines().skip(1) {
            // "  sl  local_address rem_address ...": "0100007F:B798".
            let port = line
                .split_whitespace()
                .nth(1)
                .and_then(|l| l.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            ports.extend(port);
        }
    }
    ports
}

/// The first port of a block of [`FIXED_PORTS`] that no host socket
/// uses, moving on from the last one handed out (from a random start).
fn fresh_ports() -> u16 {
    static NEXT: OnceLock<AtomicUsize> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let (lo, hi) = port_range();
    let blocks = ((hi - lo) / FIXED_PORTS) as usize;
    let next = NEXT.get_or_init(|| {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() as usize)
            ^ (std::process::id() as usize).wrapping_mul(2654435761);
        AtomicUsize::new(seed % blocks)
    });
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let used = host_ports_in_use();
        for _ in 0..blocks {
            let b = next.fetch_add(1, Ordering::Relaxed) % blocks;
            let base = lo + b as u16 * FIXED_PORTS;
            if (base..base + FIXED_PORTS).all(|p| !used.contains(&p)) {
                return base;
            }
        }
        // Every block busy (TIME-WAIT lasts a minute): wait a little.
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Runs `ops` on both sides; the first divergence that
/// [`known_divergence`] does not name fails the case. With a survey, every
/// divergence is recorded there instead and ends the case.
fn run(ops: &[Op], survey: Option<&Survey>) -> Result<(), TestCaseError> {
    compare(ops, survey).map(drop)
}

/// [`run`], returning the known divergences met on the way.
fn compare(ops: &[Op], survey: Option<&Survey>) -> Result<Vec<&'static str>, TestCaseError> {
    let mut run = Run::new(fresh_ports());
    let mut history = Vec::new();
    let mut met = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        run.settle_before(op);
        let ctx = run.ctx(op);
        let (host, ours) = run.step(op);
        if host == ours {
            if let Some(survey) = survey {
                let key = format!("{} [{}] {}", op.name(), ctx.describe(), outline(&host));
                *survey.lock().unwrap().agreed.entry(key).or_default() += 1;
            }
            history.push(format!("  {i:2}: {op:?} -> {}", show(&host)));
            continue;
        }
        let known = known_divergence(op, &ctx, &host, &ours);
        history.push(format!(
            "  {i:2}: {op:?} -> host {} / rump {}{}",
            show(&host),
            show(&ours),
            known.map(|k| format!(" ({k})")).unwrap_or_default()
        ));
        let report = format!(
            "step {i}: {op:?}\n  on {}\n  host: {}\n  rump: {}\nsequence:\n{}",
            ctx.describe(),
            show(&host),
            show(&ours),
            history.join("\n")
        );
        if let Some(survey) = survey {
            let key = format!(
                "{} [{}] host {} / rump {}{}",
                op.name(),
                ctx.describe(),
                outline(&host),
                outline(&ours),
                known.map(|k| format!(" (known: {k})")).unwrap_or_default()
            );
            let mut m = survey.lock().unwrap();
            let e = m.diverged.entry(key).or_insert((0, report.clone()));
            e.0 += 1;
            if report.len() < e.1.len() {
                e.1 = report;
            }
        } else if known.is_none() {
            return Err(TestCaseError::fail(report));
        }
        met.extend(known);
        if known.is_none() || !keeps_state(op, &host, &ours) {
            return Ok(met);
        }
    }
    Ok(met)
}

/// Whether both sides still share a state after a call whose results
/// differ: both failed (side effects of failed calls are told apart by
/// [`known_divergence`] where they matter), the call only asks, or a
/// receive took the same bytes (or nothing, where one side failed).
fn keeps_state(op: &Op, host: &Res, ours: &Res) -> bool {
    // Errors that report (and clear) what happened to a connection; a
    // connect reporting one also resets the socket on Linux.
    let reports = |e: &i32| {
        [
            libc::EINPROGRESS,
            libc::EALREADY,
            libc::ECONNREFUSED,
            libc::ECONNRESET,
            libc::ECONNABORTED,
            libc::ETIMEDOUT,
            libc::EHOSTUNREACH,
        ]
        .contains(e)
    };
    match (op, host, ours) {
        (_, Err(h), Err(r)) => !reports(h) && !reports(r),
        (_, Ok(Out::Dest(_)), Ok(Out::Dest(_))) => true,
        (
            Op::Poll { .. }
            | Op::GetOpt { .. }
            | Op::SockName { .. }
            | Op::PeerName { .. }
            | Op::GetFl { .. },
            _,
            _,
        ) => true,
        (Op::Recv { .. }, Ok(Out::Received { len: a, .. }), Ok(Out::Received { len: b, .. })) => {
            a == b
        }
        // A zero-length datagram is a datagram taken; a stream's 0 (or
        // ours after SHUT_RD on UDP, bug 16) takes nothing.
        (Op::Recv { flags, .. }, Err(_), Ok(Out::Received { len: 0, from, .. }))
        | (Op::Recv { flags, .. }, Ok(Out::Received { len: 0, from, .. }), Err(_)) => {
            flags & msg::PEEK != 0
                || from.is_none()
                || from.is_some_and(|f| name_port(&f) == Some(Port::Zero))
        }
        _ => false,
    }
}

/// Divergences by kind (how many cases, and the shortest report), and
/// how often each kind of call agreed.
type Survey = Mutex<SurveyData>;

#[derive(Default)]
struct SurveyData {
    diverged: std::collections::BTreeMap<String, (usize, String)>,
    agreed: std::collections::BTreeMap<String, usize>,
}

impl Op {
    fn name(&self) -> String {
        let s = format!("{self:?}");
        s.split([' ', '{']).next().unwrap_or_default().to_string()
    }
}

impl Ctx {
    fn describe(&self) -> String {
        let Some(s) = self.sock else {
            return "-".into();
        };
        let mut d = format!(
            "{}/{}",
            if s.domain == af::INET6 {
                "inet6"
            } else {
                "inet"
            },
            if s.ty == sock::STREAM {
                "stream"
            } else {
                "dgram"
            }
        );
        if let Some(to) = self.to {
            d += match to {
                SockAddr::Unspec => " -> unspec",
                SockAddr::Inet { .. } => " -> inet",
                SockAddr::Inet6 { .. } => " -> inet6",
            };
        }
        d
    }
}

/// A result's kind: the errno or the variant.
fn outline(r: &Res) -> String {
    match r {
        Err(e) => format!("{:?}", Errno(*e)),
        Ok(v) => {
            let s = format!("{v:?}");
            s.split([' ', '(', '{'])
                .next()
                .unwrap_or_default()
                .to_string()
        }
    }
}

fn show(r: &Res) -> String {
    match r {
        Ok(Out::Received { len, data, from, trunc }) if data.len() > 16 => format!(
            "Ok(Received {{ len: {len}, data: {} bytes (fnv {:x}), from: {from:?}, trunc: {trunc} }})",
            data.len(),
            net_util::fnv(data)
        ),
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({:?})", Errno(*e)),
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

#[test]
fn same_results_as_the_host_kernel() {
    if !host_has_ipv6_loopback() {
        eprintln!("skipped: the host cannot bind ::1 (no IPv6 loopback)");
        return;
    }
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let ops = ops();
    if std::env::var_os("NET_DIFF_SURVEY").is_some() {
        // List every kind of divergence rather than stop at the first.
        let survey = Survey::default();
        runner.run(&ops, |ops| run(&ops, Some(&survey))).unwrap();
        let data = survey.into_inner().unwrap();
        for (key, n) in data.agreed {
            eprintln!("agreed {n:6} x {key}");
        }
        for (key, (n, report)) in data.diverged {
            eprintln!("== {n:5} x {key}\n{report}\n");
        }
        return;
    }
    if let Err(e) = runner.run(&ops, |ops| run(&ops, None)) {
        panic!("{e}");
    }
}

/// The shortest sequences showing each known divergence. Each must agree
/// with the host all through (once the bug is fixed: then remove its
/// predicate from [`known_divergence`]) or meet that divergence first.
#[test]
fn known_divergences_reproduce() {
    use Addr::*;
    use Op::*;
    if !host_has_ipv6_loopback() {
        eprintln!("skipped: the host cannot bind ::1 (no IPv6 loopback)");
        return;
    }
    let socket = |v6, stream| Socket {
        v6,
        stream,
        protocol: 0,
    };
    let (tcp4, tcp6, udp4, udp6) = (
        socket(false, true),
        socket(true, true),
        socket(false, false),
        socket(true, false),
    );
    let to = |addr, port| Dest::Fixed { addr, port };
    let bind = |h, addr, port| Bind { h, addr, port };
    let connect = |h, to| Connect { h, to };
    let send = |h, len, to| Send { h, len, to };
    let recv = |h, len, flags| Recv { h, len, flags };
    let get = |h, level_name| Op::GetOpt {
        h,
        opt: GET_OPTS.iter().position(|&o| o == level_name).unwrap(),
    };
    // A listener on 127.0.0.1 (handle 0), a client (1), the accepted
    // socket (2).
    let pair = |mut more: Vec<Op>| {
        let mut ops = tcp_pair(Lo4, false, 1);
        ops.append(&mut more);
        ops
    };
    let cases: Vec<(&str, Vec<Op>)> = vec![
        (
            "bug 1:",
            vec![
                udp6.clone(),
                bind(0, Mapped, 1),
                send(0, 7, Some(to(Any6, 1))),
            ],
        ),
        ("bug 2:", vec![tcp6.clone(), bind(0, Lo4, 1)]),
        (
            "deliberate:",
            vec![
                tcp6.clone(),
                bind(0, Any6, 1),
                Shutdown { h: 0, how: 1 },
                connect(0, Dest::SockLo(0)),
                connect(0, Dest::SockLo(0)),
            ],
        ),
        (
            "deliberate:",
            vec![
                tcp4.clone(),
                connect(0, to(Lo4, 1)),
                connect(0, to(Lo4, 1)),
                bind(0, Lo4, 2),
            ],
        ),
        ("bug 4:", vec![tcp4.clone(), connect(0, to(Lo4, 0))]),
        (
            "bug 5:",
            vec![udp4.clone(), connect(0, to(Lo4, 0)), send(0, 1, None)],
        ),
        (
            "bug 6:",
            vec![
                udp6.clone(),
                bind(0, Lo6, 1),
                get(0, (ipproto::IPV6, ipv6::V6ONLY)),
            ],
        ),
        (
            "bug 7:",
            vec![tcp6.clone(), bind(0, Mapped, 1), connect(0, to(Lo6, 2))],
        ),
        (
            "bug 8:",
            vec![
                udp4.clone(),
                Shutdown {
                    h: 0,
                    how: shut::RDWR,
                },
                send(0, 1, Some(to(Lo4, 1))),
            ],
        ),
        (
            "bug 9:",
            vec![
                tcp4.clone(),
                bind(0, Lo4, 1),
                Listen { h: 0, backlog: 1 },
                Shutdown {
                    h: 0,
                    how: shut::RD,
                },
            ],
        ),
        ("bug 10:", vec![tcp4.clone(), connect(0, Dest::Unspec)]),
        (
            "bug 11:",
            vec![
                tcp4.clone(),
                bind(0, Lo4, 1),
                Listen { h: 0, backlog: 1 },
                connect(0, to(Lo6, 1)),
            ],
        ),
        // Bug 12 (getsockopt of a level AF_INET lacks) is fixed.
        (
            "fixed 12:",
            vec![udp4.clone(), get(0, (ipproto::TCP, tcp::NODELAY))],
        ),
        (
            "bug 13:",
            vec![
                tcp6.clone(),
                SetOpt {
                    h: 0,
                    opt: SockOpt::Ttl(32),
                },
            ],
        ),
        ("bug 14:", vec![tcp4.clone(), Poll { h: 0 }]),
        ("bug 15:", vec![tcp4.clone(), recv(0, 0, 0)]),
        (
            "bug 16:",
            vec![
                udp4.clone(),
                connect(0, to(Lo4, 1)),
                Shutdown {
                    h: 0,
                    how: shut::RD,
                },
                recv(0, 5, 0),
            ],
        ),
        (
            "bug 17:",
            vec![udp6.clone(), send(0, 1, Some(Dest::Unspec))],
        ),
        (
            "bug 18:",
            vec![
                udp4.clone(),
                connect(0, to(Lo4, 1)),
                Shutdown {
                    h: 0,
                    how: shut::WR,
                },
                send(0, UDP_MAX4 + 1, None),
            ],
        ),
        (
            "bug 19:",
            vec![udp4.clone(), send(0, 1, None), SockName { h: 0 }],
        ),
        ("bug 20:", pair(vec![connect(1, Dest::SockLo(0))])),
        (
            "bug 21:",
            pair(vec![send(1, 7, None), recv(2, 5, msg::TRUNC)]),
        ),
        (
            "bug 22:",
            vec![udp4.clone(), connect(0, to(Lo4, 1)), SockName { h: 0 }],
        ),
        (
            "bug 23:",
            vec![
                udp4.clone(),
                connect(0, to(Lo4, 1)),
                connect(0, Dest::Unspec),
                SockName { h: 0 },
            ],
        ),
        (
            "bug 24:",
            pair(vec![
                Shutdown {
                    h: 1,
                    how: shut::RD,
                },
                Poll { h: 1 },
            ]),
        ),
        (
            "bug 25:",
            pair(vec![
                send(1, 7, None),
                Shutdown {
                    h: 2,
                    how: shut::RD,
                },
                recv(2, 100, 0),
            ]),
        ),
        (
            "bug 26:",
            vec![
                udp4.clone(),
                bind(0, Lo4, 1),
                connect(0, to(Lo4, 2)),
                udp4.clone(),
                bind(1, Lo4, 3),
                connect(1, to(Lo4, 1)),
                send(1, 7, None),
                recv(1, 5, 0),
            ],
        ),
        (
            "bug 27:",
            pair(vec![send(2, 7, None), Close { h: 2 }, Poll { h: 1 }]),
        ),
        (
            "bug 28:",
            vec![
                tcp6.clone(),
                bind(0, Any6, 1),
                connect(0, to(Lo6, 2)),
                tcp6.clone(),
                bind(1, Mapped, 1),
            ],
        ),
        (
            "bug 29:",
            vec![
                tcp4.clone(),
                bind(0, Lo4, 1),
                Listen { h: 0, backlog: -1 },
                tcp4.clone(),
                connect(1, to(Lo4, 1)),
                tcp4.clone(),
                connect(2, to(Lo4, 1)),
                Accept { h: 0 },
                Accept { h: 0 },
            ],
        ),
        (
            "deliberate:",
            vec![
                udp6.clone(),
                bind(0, Any6, 1),
                connect(0, to(Mapped, 2)),
                connect(0, Dest::Unspec),
                udp6.clone(),
                send(1, 3, Some(to(Lo6, 1))),
                recv(0, 10, 0),
            ],
        ),
        (
            "deliberate:",
            vec![
                tcp6.clone(),
                connect(0, to(Mapped, 1)),
                connect(0, to(Mapped, 1)),
                connect(0, to(Lo6, 1)),
                connect(0, to(Lo6, 1)),
            ],
        ),
    ];
    for (bug, ops) in cases {
        let met = compare(&ops, None).unwrap_or_else(|e| panic!("{bug} {e}"));
        if let Some(first) = met.first() {
            assert!(
                first.starts_with(bug),
                "{bug} expected, {first} met: {ops:?}"
            );
        }
    }
}
