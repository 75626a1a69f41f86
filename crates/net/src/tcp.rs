//! TCP: smoltcp's protocol engine under BSD socket semantics.
//!
//! Each connection is a smoltcp `tcp::Socket` in a `SocketSet` of its own
//! ([`Conn`]), processed with the smoltcp `Interface` of the interface its
//! route uses. The stack finds a segment's connection by its 4-tuple in a
//! hash table, so smoltcp never walks other sockets.
//!
//! What smoltcp does not do, this module does:
//! - a listen **backlog**: a SYN for a listener makes a new smoltcp socket
//!   in LISTEN (an *embryo*) that handles the handshake; once synchronized
//!   it moves to the accept queue. SYNs beyond the backlog of completed
//!   connections are dropped, as BSD does; when the embryos alone fill the
//!   backlog, the oldest is dropped (a SYN flood cannot lock the listener);
//! - **errors**: the state a connection dies from tells `ECONNREFUSED`
//!   (RST to a SYN), `ECONNRESET` (RST later), `ETIMEDOUT` (smoltcp's
//!   timeout), or an ICMP error (`tcp_icmp_error`) during connect;
//! - **timers**: each connection's next deadline (`poll_at`) is kept in the
//!   stack's timer set, so the timer thread touches only due connections;
//! - a receive window that never **shrinks** ([`hold_back_window`]), which
//!   smoltcp's rounding to the window scale otherwise allows;
//! - no delayed ACK (`set_ack_delay(None)`): on links with no latency a
//!   delayed ACK only stalls the sender at connection start.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use smoltcp::iface::{PollResult, SocketHandle, SocketSet};
use smoltcp::socket::tcp::{self, State};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{IpEndpoint, IpListenEndpoint, Ipv4Packet, TcpPacket};

use crate::ip6::IPV6_HDR;

use kern::Errno;

use crate::iface::{SmolDev, ETH_HDR};
use crate::pool::FramePool;
use crate::stack::{Core, Effects, Params, Proto, SockOpts, SockRef, Tuple4};

/// A TCP socket.
pub(crate) struct TcpSock {
    /// Local address and port once bound (`0.0.0.0` or `::` for any
    /// address).
    pub bound: Option<(IpAddr, u16)>,
    /// Made by `accept` (shares its listener's port).
    pub accepted: bool,
    /// The port was chosen by `bind` with a port number (Linux's
    /// SOCK_BINDPORT_LOCK): a disconnect keeps it; an automatic one goes.
    pub port_locked: bool,
    /// The address was chosen by `bind` (SOCK_BINDADDR_LOCK): a
    /// disconnect keeps it.
    pub addr_locked: bool,
    /// What `getsockname` shows of a socket that was disconnected and
    /// lost its automatic port (Linux keeps the old number in the name).
    pub ghost: Option<(IpAddr, u16)>,
    /// A non-blocking connect said EINPROGRESS and no connect has seen
    /// its outcome yet (Linux's SS_CONNECTING): the next connect after
    /// the handshake returns 0, later ones EISCONN.
    pub connect_pending: bool,
    /// An accepted socket: its listener's address, which it counts as
    /// bound to for bind conflicts (Linux puts the child in the
    /// listener's bind bucket).
    pub listen_addr: Option<IpAddr>,
    /// The peer's FIN arrived on this connection (Linux's SOCK_DONE): a
    /// read of the ended connection is its end, before any error.
    pub peer_fin: bool,
    pub state: TcpState,
}

pub(crate) enum TcpState {
    /// Made, perhaps bound.
    Idle,
    Listening(Listener),
    Conn(Box<Conn>),
    /// A connection attempt died before smoltcp had a connection (an ICMP
    /// error); the error is in the socket.
    Failed,
}

pub(crate) struct Listener {
    pub backlog: usize,
    /// Handshakes in progress, oldest first.
    pub embryos: VecDeque<SockRef>,
    /// Completed connections waiting for `accept`, in order.
    pub ready: VecDeque<SockRef>,
}

/// A connection.
pub(crate) struct Conn {
    pub set: SocketSet<'static>,
    pub handle: SocketHandle,
    pub ifindex: usize,
    pub tuple: Tuple4,
    /// Whether `tuple` is in the stack's connection table.
    pub registered: bool,
    /// The listener, until `accept` takes the connection.
    pub parent: Option<SockRef>,
    /// The user closed the sending side while data was still queued: the
    /// FIN goes out once the queue has drained (see [`Conn::close_send`]).
    pub fin_pending: bool,
    /// Our next sequence number and the peer's, from the last segment we
    /// sent (what a TIME-WAIT record needs to answer for the connection).
    pub last_sent: Option<(u32, u32)>,
}

impl Conn {
    pub fn sock(&self) -> &tcp::Socket<'static> {
        self.set.get::<tcp::Socket>(self.handle)
    }

    pub fn sock_mut(&mut self) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket>(self.handle)
    }

    pub fn state(&self) -> State {
        self.sock().state()
    }

    /// Closes the sending side: FIN now if nothing is queued, else once
    /// the queue drains. smoltcp in LAST-ACK (and FIN-WAIT-1) with data
    /// still queued treats a pure window update as a duplicate ACK and
    /// drops it, so a sender that closes while its peer's window is shut
    /// would stall until its zero-window probe (a second or more); the
    /// deferred FIN never enters those states with data queued.
    pub fn close_send(&mut self) {
        let sk = self.sock_mut();
        if sk.send_queue() == 0 || !matches!(sk.state(), State::Established | State::CloseWait) {
            sk.close();
            self.fin_pending = false;
        } else {
            self.fin_pending = true;
        }
    }
}

impl TcpSock {
    pub fn new() -> Self {
        TcpSock {
            bound: None,
            accepted: false,
            port_locked: false,
            addr_locked: false,
            ghost: None,
            connect_pending: false,
            listen_addr: None,
            peer_fin: false,
            state: TcpState::Idle,
        }
    }

    /// The 4-tuple this socket holds in the connection table.
    pub fn tuple(&self) -> Option<Tuple4> {
        match &self.state {
            TcpState::Conn(c) if c.registered => Some(c.tuple),
            _ => None,
        }
    }

    pub fn conn(&self) -> Option<&Conn> {
        match &self.state {
            TcpState::Conn(c) => Some(c),
            _ => None,
        }
    }

    pub fn conn_mut(&mut self) -> Option<&mut Conn> {
        match &mut self.state {
            TcpState::Conn(c) => Some(c),
            _ => None,
        }
    }

    pub fn is_listening(&self) -> bool {
        matches!(self.state, TcpState::Listening(_))
    }
}

/// Offers the peer one window unit (2^scale bytes) less than smoltcp
/// computed, in a segment smoltcp made (`pkt` is the IP packet).
///
/// smoltcp offers its free buffer space shifted right by the window scale,
/// rounded down (RFC 7323 §2.3), so the right edge it offers (RCV.NXT +
/// RCV.WND) moves back by up to 2^scale - 1 bytes whenever a segment of
/// another length arrives: it shrinks the window, which RFC 9293 §3.8.6
/// says a receiver should not do, and trims the tail of a segment the peer
/// sent up to the earlier edge. The peer's SND.NXT then lies past our
/// RCV.NXT, and once our window is shut smoltcp finds none of the peer's
/// segments acceptable and drops their ACKs with them (RFC 9293 §3.10.7.4
/// would make an allowance for valid ACKs): what we send is never
/// acknowledged, and a connection in which both sides wait to send stalls
/// for good. Every edge smoltcp offers lies less than one unit below the
/// end of the buffer as read so far, an end that only moves forward, so an
/// edge one unit lower is never past a later one and the peer never sends
/// what we would trim. SYNs carry an unscaled window and are left alone.
fn hold_back_window(pkt: &mut [u8], csum_ok: bool) {
    let Some(seg) = segment_of_mut(pkt) else {
        return;
    };
    let Ok(mut tcp) = TcpPacket::new_checked(seg) else {
        return;
    };
    let old = tcp.window_len();
    if old == 0 || tcp.syn() || tcp.rst() {
        return;
    }
    let new = old - 1;
    tcp.set_window_len(new);
    if csum_ok {
        // RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m').
        let mut sum = u32::from(!tcp.checksum()) + u32::from(!old) + u32::from(new);
        sum = (sum & 0xffff) + (sum >> 16);
        sum = (sum & 0xffff) + (sum >> 16);
        tcp.set_checksum(!(sum as u16));
    }
}

/// The TCP segment in an IP packet of either version (smoltcp emits, and
/// `ip6.rs` delivers, IPv6 packets with no extension headers).
fn segment_of_mut(pkt: &mut [u8]) -> Option<&mut [u8]> {
    match pkt.first()? >> 4 {
        4 => {
            let hl = Ipv4Packet::new_checked(&*pkt).ok()?.header_len() as usize;
            let total = Ipv4Packet::new_checked(&*pkt).ok()?.total_len() as usize;
            pkt.get_mut(hl..total)
        }
        6 => pkt.get_mut(IPV6_HDR..),
        _ => None,
    }
}

/// The TCP segment in an IP packet of either version.
fn segment_of(pkt: &[u8]) -> Option<&[u8]> {
    match pkt.first()? >> 4 {
        4 => Some(Ipv4Packet::new_checked(pkt).ok()?.payload()),
        6 => pkt.get(IPV6_HDR..),
        _ => None,
    }
}

/// The sequence number after a segment we sent, and its acknowledgement
/// number.
fn sent_numbers(pkt: &[u8]) -> Option<(u32, u32)> {
    let t = TcpPacket::new_checked(segment_of(pkt)?).ok()?;
    let ack = t.ack().then(|| t.ack_number().0 as u32)?;
    let len = t.payload().len() as u32 + t.syn() as u32 + t.fin() as u32;
    Some(((t.seq_number().0 as u32).wrapping_add(len), ack))
}

/// The wildcard address of `ip`'s family.
pub(crate) fn unspecified_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

/// Whether sockets bound to `a` and `b` would take the same packets: the
/// same family (an IPv6 wildcard that is not `IPV6_V6ONLY` also covers
/// IPv4) and the same address, or a wildcard.
pub(crate) fn bind_overlap(a: IpAddr, a_v6only: bool, b: IpAddr, b_v6only: bool) -> bool {
    let covers_v4 = |x: IpAddr, only: bool| x.is_ipv6() && x.is_unspecified() && !only;
    if a.is_ipv4() != b.is_ipv4() {
        return (b.is_ipv4() && covers_v4(a, a_v6only)) || (a.is_ipv4() && covers_v4(b, b_v6only));
    }
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// smoltcp's clock from ours.
pub(crate) fn instant(ns: u64) -> Instant {
    Instant::from_micros((ns / 1000) as i64)
}

/// A new smoltcp socket with the socket's options applied.
pub(crate) fn new_smol_socket(opts: &SockOpts, params: &Params) -> tcp::Socket<'static> {
    let mut s = tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0u8; opts.rcvbuf]),
        tcp::SocketBuffer::new(vec![0u8; opts.sndbuf]),
    );
    s.set_ack_delay(None);
    apply_opts(&mut s, opts, params);
    s
}

/// A socket's keep-alive timing: its own options, else the sysctls.
pub(crate) struct Keepalive {
    pub idle_s: u32,
    pub intvl_s: u32,
    pub cnt: u32,
}

pub(crate) fn keepalive(opts: &SockOpts, params: &Params) -> Keepalive {
    let secs = |ms: u64| (ms.div_ceil(1000)).clamp(1, u32::MAX as u64) as u32;
    Keepalive {
        idle_s: opts.keepidle.unwrap_or_else(|| secs(params.keepidle_ms)),
        intvl_s: opts.keepintvl.unwrap_or_else(|| secs(params.keepintvl_ms)),
        cnt: opts.keepcnt.unwrap_or(params.keepcnt).max(1),
    }
}

/// Applies the options that can change on a live connection.
///
/// Keep-alive: smoltcp probes after a fixed interval of silence and drops
/// a connection that heard nothing for its timeout. The first probe goes
/// after `TCP_KEEPIDLE` and the connection is dropped once
/// `TCP_KEEPIDLE + TCP_KEEPINTVL * TCP_KEEPCNT` passed without an answer,
/// as on Linux; between those, smoltcp repeats probes every
/// `TCP_KEEPIDLE` rather than every `TCP_KEEPINTVL` (it has one interval).
pub(crate) fn apply_opts(s: &mut tcp::Socket<'static>, opts: &SockOpts, params: &Params) {
    s.set_nagle_enabled(!opts.nodelay);
    s.set_hop_limit(Some(opts.ttl.max(1)));
    if opts.keepalive {
        let k = keepalive(opts, params);
        let idle = k.idle_s as u64 * 1000;
        let dead = idle + k.intvl_s as u64 * 1000 * k.cnt as u64;
        s.set_keep_alive(Some(Duration::from_millis(idle)));
        s.set_timeout(Some(Duration::from_millis(dead)));
    } else {
        s.set_keep_alive(None);
        if !matches!(s.state(), State::SynSent) {
            s.set_timeout(Some(Duration::from_millis(params.timeout_ms.max(1))));
        }
    }
}

impl Core {
    /// A received TCP segment: `pkt` is the whole IP packet (IPv6 with the
    /// TCP header right after the fixed header), from `src` to `dst`.
    pub fn tcp_input(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        pkt: &[u8],
        src: IpAddr,
        dst: IpAddr,
        fx: &mut Effects,
    ) {
        let Some(Ok(tcp)) = segment_of(pkt).map(TcpPacket::new_checked) else {
            self.stats.bad_frames += 1;
            return;
        };
        self.stats.tcp_segments_in += 1;
        let (sport, dport) = (tcp.src_port(), tcp.dst_port());
        if sport == 0 || dport == 0 || src.is_unspecified() {
            return;
        }
        let tuple = (dst, dport, src, sport);
        if let Some(&r) = self.tcp_conns.get(&tuple) {
            self.tcp_deliver(pool, r, Some(pkt), true, fx);
            return;
        }
        if !self.tcp_tw.map.is_empty()
            && self.time_wait_input(pool, tuple, &tcp, fx) == crate::timewait::TwVerdict::Done
        {
            return;
        }
        let listener = self.lookup_bound(&self.tcp_listeners, dst, dport);
        if let Some(l) = listener {
            if tcp.syn() && !tcp.ack() && !tcp.rst() {
                // A SYN makes state before smoltcp looks at it (which
                // would drop a damaged one): check it first on links
                // with real checksums.
                let offload = self.iface(ifindex).is_none_or(|i| i.offload);
                if !offload && !tcp.verify_checksum(&src.into(), &dst.into()) {
                    self.stats.bad_frames += 1;
                    return;
                }
                self.tcp_syn(pool, ifindex, l, tuple, pkt, fx);
                return;
            }
        }
        self.tcp_reset_reply(pool, ifindex, pkt, fx);
    }

    /// No socket wants the segment: smoltcp answers with a RST (RFC 793
    /// "reset generation"), unless it is one.
    fn tcp_reset_reply(&mut self, pool: &FramePool, ifindex: usize, pkt: &[u8], fx: &mut Effects) {
        let now = instant(self.now);
        let Core { ifs, empty_set, .. } = self;
        let Some(iface) = ifs.get_mut(ifindex).and_then(|i| i.as_mut()) else {
            return;
        };
        let csum_ok = !iface.offload;
        let mut out = Vec::new();
        {
            let mut dev = SmolDev::new(Some(pkt), &mut out, pool, iface.caps());
            iface.smol.poll_ingress_single(now, &mut dev, empty_set);
        }
        for f in out {
            self.stats.tcp_resets_sent += 1;
            self.ip_output(pool, f, csum_ok, fx);
        }
    }

    /// A SYN for listener `l`: a new embryo takes it, if the backlog has room.
    fn tcp_syn(
        &mut self,
        pool: &FramePool,
        ifindex: usize,
        l: SockRef,
        tuple: Tuple4,
        pkt: &[u8],
        fx: &mut Effects,
    ) {
        let Some(ls) = self.socks.get(l) else {
            return;
        };
        let opts = ls.opts;
        let family = ls.family;
        let Proto::Tcp(TcpSock {
            state: TcpState::Listening(lst),
            addr_locked,
            bound: lbound,
            ..
        }) = &ls.proto
        else {
            return;
        };
        let listen_addr = lbound.map(|b| b.0);
        // The child inherits the listener's address lock (sk_userlocks
        // without the port lock: inet_csk_clone_lock) and shutdown flags
        // (Linux clones the listening sock).
        let (port_locked, addr_locked) = (false, *addr_locked);
        let (shut_rd, shut_wr) = (ls.shut_rd, ls.shut_wr);
        if lst.ready.len() >= lst.backlog {
            self.stats.tcp_listen_drops += 1;
            return;
        }
        let evict = if lst.embryos.len() >= lst.backlog {
            lst.embryos.front().copied()
        } else {
            None
        };
        if let Some(old) = evict {
            self.stats.tcp_listen_drops += 1;
            self.unlink_embryo(l, old);
            self.free_sock(old, fx);
        }
        let (dst, dport, _, _) = tuple;
        let mut s = new_smol_socket(&opts, &self.params);
        if s.listen(IpListenEndpoint {
            addr: Some(dst.into()),
            port: dport,
        })
        .is_err()
        {
            return;
        }
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(s);
        let conn = Conn {
            set,
            handle,
            ifindex,
            tuple,
            registered: true,
            parent: Some(l),
            fin_pending: false,
            last_sent: None,
        };
        let r = self.socks.insert(crate::stack::Sock::new(
            family,
            opts,
            Proto::Tcp(TcpSock {
                bound: Some((dst, dport)),
                accepted: true,
                port_locked,
                addr_locked,
                ghost: None,
                connect_pending: false,
                listen_addr,
                peer_fin: false,
                state: TcpState::Conn(Box::new(conn)),
            }),
        ));
        if let Some(s) = self.socks.get_mut(r) {
            s.shut_rd = shut_rd;
            s.shut_wr = shut_wr;
        }
        self.tcp_conns.insert(tuple, r);
        self.tcp_ports.entry(dport).or_default().push(r);
        if let Some(Proto::Tcp(TcpSock {
            state: TcpState::Listening(lst),
            ..
        })) = self.socks.get_mut(l).map(|s| &mut s.proto)
        {
            lst.embryos.push_back(r);
        }
        self.tcp_deliver(pool, r, Some(pkt), true, fx);
    }

    fn is_embryo(&self, l: SockRef, r: SockRef) -> bool {
        matches!(
            self.socks.get(l).map(|s| &s.proto),
            Some(Proto::Tcp(TcpSock {
                state: TcpState::Listening(lst),
                ..
            })) if lst.embryos.contains(&r)
        )
    }

    fn unlink_embryo(&mut self, l: SockRef, r: SockRef) {
        if let Some(Proto::Tcp(TcpSock {
            state: TcpState::Listening(lst),
            ..
        })) = self.socks.get_mut(l).map(|s| &mut s.proto)
        {
            lst.embryos.retain(|x| *x != r);
            lst.ready.retain(|x| *x != r);
        }
    }

    /// Runs connection `r`: feeds it `pkt` if there is one, sends whatever
    /// it has to send, then updates tables, timers and waiters.
    pub fn tcp_deliver(
        &mut self,
        pool: &FramePool,
        r: SockRef,
        pkt: Option<&[u8]>,
        ingress: bool,
        fx: &mut Effects,
    ) {
        let now = instant(self.now);
        let Core { socks, ifs, .. } = self;
        let Some(sock) = socks.get_mut(r) else {
            return;
        };
        let (shut_wr, shut_rd, orphan) = (sock.shut_wr, sock.shut_rd, sock.orphan);
        let Proto::Tcp(t) = &mut sock.proto else {
            return;
        };
        let Some(c) = t.conn_mut() else {
            return;
        };
        let Some(iface) = ifs.get_mut(c.ifindex).and_then(|i| i.as_mut()) else {
            return;
        };
        let mut lost = false;
        let csum_ok = !iface.offload;
        let prev = c.state();
        let mut out = Vec::new();
        let poll_at: Option<Option<Instant>>;
        let defer = self.defer_egress && pkt.is_some();
        {
            let mut dev = SmolDev::new(pkt, &mut out, pool, iface.caps());
            if pkt.is_some() {
                // New data after both sides of ours were shut is lost,
                // which a reset says (RFC 1122 §4.2.2.13); Linux's
                // tcp_rcv_state_process resets in FIN-WAIT and drops the
                // segment, so data queued before stays readable and the
                // reset is reported after it.
                let fin_wait = matches!(prev, State::FinWait1 | State::FinWait2);
                let data = pkt
                    .and_then(segment_of)
                    .and_then(|b| TcpPacket::new_checked(b).ok())
                    .is_some_and(|t| !t.payload().is_empty() && !t.rst());
                if shut_rd && fin_wait && data {
                    c.sock_mut().abort();
                    c.fin_pending = false;
                    lost = true;
                } else {
                    iface.smol.poll_ingress_single(now, &mut dev, &mut c.set);
                }
                if prev == State::SynReceived && c.state() == State::Established && shut_wr {
                    // Accepted from a listener whose write side was shut
                    // before it listened: the child inherited that and
                    // sends its FIN at once (Linux).
                    c.close_send();
                }
                if orphan && c.sock().recv_queue() > 0 {
                    // Data for a socket nobody holds is lost: say so with
                    // a reset (RFC 1122 §4.2.2.13, as Linux does).
                    c.sock_mut().abort();
                    c.fin_pending = false;
                    lost = true;
                }
            }
            // A second round sends a FIN deferred until the queue drained.
            for round in 0..if defer { 0 } else { 2 } {
                // Each call sends at most one segment; a window's worth is
                // bounded, the cap guards against an engine that never settles.
                for _ in 0..65536 {
                    if iface.smol.poll_egress(now, &mut dev, &mut c.set) == PollResult::None {
                        break;
                    }
                }
                if round == 0 && c.fin_pending && c.sock().send_queue() == 0 {
                    c.close_send();
                } else {
                    break;
                }
            }
            // A deferred answer comes with its own deadline; until then the
            // connection is due at once, which is no time to wake the timer
            // thread.
            poll_at = (!defer).then(|| iface.smol.poll_at(now, &c.set));
        }
        if let Some(seen) = out.last().and_then(|f| sent_numbers(&f[ETH_HDR..])) {
            c.last_sent = Some(seen);
        }
        if lost {
            self.stats.tcp_resets_sent += 1;
        }
        let scope = c.ifindex as u32;
        for mut f in out {
            hold_back_window(&mut f[ETH_HDR..], csum_ok);
            self.ip_output_scoped(pool, f, csum_ok, scope, fx);
        }
        if defer && !self.deferred.contains(&r) {
            self.deferred.push(r);
        }
        self.tcp_after(r, prev, ingress, poll_at, fx);
    }

    /// Sends what connection `r` has to send (after a user call or a timer).
    pub fn tcp_output(&mut self, pool: &FramePool, r: SockRef, ingress: bool, fx: &mut Effects) {
        self.tcp_deliver(pool, r, None, ingress, fx);
    }

    /// Bookkeeping after smoltcp ran connection `r`; `poll_at` is its
    /// next deadline, `None` to leave its timer as it is.
    fn tcp_after(
        &mut self,
        r: SockRef,
        prev: State,
        ingress: bool,
        poll_at: Option<Option<Instant>>,
        fx: &mut Effects,
    ) {
        let now = self.now;
        if let Some(poll_at) = poll_at {
            let at = poll_at.map(|i| {
                let t = i.total_micros().max(0) as u64 * 1000;
                // Work that is due now was done above; what remains waits.
                if t <= now {
                    now + 200_000
                } else {
                    t
                }
            });
            self.set_timer(r, at, fx);
        }
        let params = self.params;
        let Some(sock) = self.socks.get_mut(r) else {
            return;
        };
        fx.wake(&sock.shared);
        let orphan = sock.orphan;
        let Proto::Tcp(t) = &mut sock.proto else {
            return;
        };
        let Some(c) = t.conn_mut() else {
            return;
        };
        let st = c.state();
        let parent = c.parent;
        let tuple = c.tuple;
        if matches!(
            st,
            State::CloseWait | State::LastAck | State::Closing | State::TimeWait
        ) {
            t.peer_fin = true;
        }
        if st != prev && prev == State::SynSent && st != State::Closed {
            // Connected: from the connect timeout to the idle timeout.
            let opts = sock.opts;
            if let Proto::Tcp(t) = &mut sock.proto {
                if let Some(c) = t.conn_mut() {
                    apply_opts(c.sock_mut(), &opts, &params);
                }
            }
        }
        if let Some(l) = parent {
            match st {
                State::Listen | State::Closed if self.is_embryo(l, r) => {
                    // The handshake failed (a RST in SYN-RECEIVED returns
                    // smoltcp to LISTEN): forget the embryo.
                    self.unlink_embryo(l, r);
                    self.free_sock(r, fx);
                    return;
                }
                // A completed connection reset before accept stays in the
                // queue, as on Linux: accept returns it, and its first
                // call reports the reset.
                State::Listen | State::Closed => {}
                State::SynReceived => {}
                _ => {
                    if let Some(ls) = self.socks.get_mut(l) {
                        let shared = ls.shared.clone();
                        if let Proto::Tcp(TcpSock {
                            state: TcpState::Listening(lst),
                            ..
                        }) = &mut ls.proto
                        {
                            if let Some(pos) = lst.embryos.iter().position(|x| *x == r) {
                                lst.embryos.remove(pos);
                                lst.ready.push_back(r);
                                self.stats.tcp_passive_opens += 1;
                                fx.wake(&shared);
                            }
                        }
                    }
                }
            }
        }
        if st == State::TimeWait && orphan && poll_at.is_some() {
            // Nobody will read; our final ACK went out. A small record
            // keeps TIME-WAIT from here (see `timewait.rs`), so the
            // buffers go now.
            if let Some(sock) = self.socks.get(r) {
                let ttl = sock.opts.ttl;
                if let Some(c) = match &sock.proto {
                    Proto::Tcp(t) => t.conn(),
                    _ => None,
                } {
                    if let Some((snd_nxt, rcv_nxt)) = c.last_sent {
                        let tw = crate::timewait::TimeWait {
                            snd_nxt,
                            rcv_nxt,
                            ifindex: c.ifindex,
                            ttl,
                            expires: 0,
                        };
                        self.time_wait_add(tuple, tw);
                    }
                }
            }
            self.free_sock(r, fx);
            return;
        }
        if st == prev {
            return;
        }
        if st == State::Closed {
            if self.tcp_conns.get(&tuple) == Some(&r) {
                self.tcp_conns.remove(&tuple);
            }
            let Some(sock) = self.socks.get_mut(r) else {
                return;
            };
            if let Proto::Tcp(t) = &mut sock.proto {
                if let Some(c) = t.conn_mut() {
                    c.registered = false;
                }
            }
            if orphan {
                self.free_sock(r, fx);
                return;
            }
            self.tcp_ended_port(r);
            let Some(sock) = self.socks.get_mut(r) else {
                return;
            };
            let err = match prev {
                State::SynSent if ingress => Some(Errno::ECONNREFUSED),
                State::SynSent => Some(Errno::ETIMEDOUT),
                State::LastAck | State::TimeWait | State::Closing => None,
                // Reset after the peer's FIN (Linux's tcp_reset).
                State::CloseWait if ingress => Some(Errno::EPIPE),
                _ if ingress => Some(Errno::ECONNRESET),
                _ => Some(Errno::ETIMEDOUT),
            };
            if sock.error.is_none() {
                sock.error = err;
            }
        }
    }

    /// A connection of `r` that ended gives back a port bind did not ask
    /// for (Linux's tcp_set_state(TCP_CLOSE)), and an accepted one its
    /// share of the listener's port; the name keeps both, and the socket
    /// may be bound again.
    fn tcp_ended_port(&mut self, r: SockRef) {
        let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) else {
            return;
        };
        if !t.accepted && t.port_locked {
            return;
        }
        let Some((_, port)) = t.bound else {
            return;
        };
        t.ghost = t.bound.take();
        t.listen_addr = None;
        if let Some(v) = self.tcp_ports.get_mut(&port) {
            v.retain(|x| *x != r);
            if v.is_empty() {
                self.tcp_ports.remove(&port);
            }
        }
    }

    /// An ICMP error about connection `r` (RFC 1122 §4.2.3.9): during the
    /// handshake it ends the attempt with `err`; later it is only advice.
    pub fn tcp_icmp_error(&mut self, _pool: &FramePool, r: SockRef, err: Errno, fx: &mut Effects) {
        let Some(sock) = self.socks.get_mut(r) else {
            return;
        };
        let orphan = sock.orphan;
        let Proto::Tcp(t) = &mut sock.proto else {
            return;
        };
        let Some(c) = t.conn() else {
            return;
        };
        if c.state() != State::SynSent {
            return;
        }
        let tuple = c.tuple;
        t.state = TcpState::Failed;
        sock.error = Some(err);
        fx.wake(&sock.shared);
        if self.tcp_conns.get(&tuple) == Some(&r) {
            self.tcp_conns.remove(&tuple);
        }
        self.set_timer(r, None, fx);
        if orphan {
            self.free_sock(r, fx);
        } else {
            self.tcp_ended_port(r);
        }
    }

    /// Whether binding `(addr, port)` with `reuse` conflicts with a socket
    /// already bound (Linux's rules: overlapping addresses conflict unless
    /// the new socket sets `SO_REUSEADDR` and the old one is not listening
    /// and either set it too, was accepted, or is closing).
    /// `listening`: the check `listen` makes again, where accepted and
    /// closing sockets count with their own SO_REUSEADDR (an accepted one
    /// inherited its listener's), not as tolerant.
    pub fn tcp_bind_conflict(&self, addr: IpAddr, port: u16, me: SockRef, listening: bool) -> bool {
        let Some(mine) = self.socks.get(me) else {
            return false;
        };
        let (reuse, v6only) = (mine.opts.reuse_addr, mine.opts.v6only);
        let family_v4 = mine.any_addr().is_ipv4();
        let Some(v) = self.tcp_ports.get(&port) else {
            return false;
        };
        v.iter().any(|&o| {
            if o == me {
                return false;
            }
            let Some(s) = self.socks.get(o) else {
                return false;
            };
            let Proto::Tcp(t) = &s.proto else {
                return false;
            };
            let Some((mut oaddr, _)) = t.bound else {
                return false;
            };
            if let (true, Some(la)) = (t.accepted, t.listen_addr) {
                // Linux's bhash2: a child sits in its listener's bucket,
                // which a bind to a specific IPv4 address does not look
                // at when the listener's address is IPv6.
                if la.is_ipv6() && addr.is_ipv4() && !addr.is_unspecified() {
                    return false;
                }
                oaddr = la;
            }
            // An IPv6 address a connect chose keeps a placeholder IPv4
            // address that the IPv4 wildcard meets (Linux's
            // LOOPBACK4_IPV6 in inet_rcv_saddr).
            let narrowed = !t.addr_locked
                && !t.accepted
                && oaddr.is_ipv6()
                && !oaddr.is_unspecified()
                && !s.opts.v6only;
            let placeholder = narrowed && family_v4 && addr.is_unspecified();
            if !bind_overlap(oaddr, s.opts.v6only, addr, v6only) && !placeholder {
                return false;
            }
            let tolerant = s.opts.reuse_addr || (!listening && (t.accepted || s.orphan));
            !(reuse && tolerant && !t.is_listening())
        })
    }

    /// Whether a TIME-WAIT record holds `port` on an address that
    /// binding `addr` from `me` would overlap. An IPv6 connection's
    /// record also meets the IPv4 wildcard (Linux's LOOPBACK4_IPV6
    /// placeholder address).
    fn tcp_tw_conflict(&self, addr: IpAddr, port: u16, me: SockRef) -> bool {
        if !self.tcp_tw.holds_port(port) {
            return false;
        }
        let Some(mine) = self.socks.get(me) else {
            return true;
        };
        let (v6only, family_v4) = (mine.opts.v6only, mine.any_addr().is_ipv4());
        self.tcp_tw.map.keys().any(|t| {
            t.1 == port
                && (bind_overlap(t.0, false, addr, v6only)
                    || (t.0.is_ipv6() && family_v4 && addr.is_unspecified()))
        })
    }

    /// Binds TCP socket `r`; port 0 picks an ephemeral port.
    pub fn tcp_bind(&mut self, r: SockRef, addr: IpAddr, port: u16) -> Result<(), Errno> {
        let s = self.socks.get(r).ok_or(Errno::EBADF)?;
        let Proto::Tcp(t) = &s.proto else {
            return Err(Errno::EINVAL);
        };
        // An ended connection whose port went back may bind again (Linux
        // checks only for TCP_CLOSE and no port).
        let ended = match &t.state {
            TcpState::Idle | TcpState::Failed => true,
            TcpState::Conn(c) => c.state() == State::Closed,
            TcpState::Listening(_) => false,
        };
        if t.bound.is_some() || !ended {
            return Err(Errno::EINVAL);
        }
        if !addr.is_unspecified() && !self.is_local_ip(addr) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        let locked = port != 0;
        let port = if port == 0 {
            self.ephemeral_port(|c, p| c.tcp_ports.contains_key(&p) || c.tcp_tw.holds_port(p))?
        } else {
            let reuse = self.socks.get(r).is_some_and(|s| s.opts.reuse_addr);
            if self.tcp_bind_conflict(addr, port, r, false)
                || (!reuse && self.tcp_tw_conflict(addr, port, r))
            {
                return Err(Errno::EADDRINUSE);
            }
            port
        };
        let any = self.socks.get(r).map(|s| s.any_addr());
        if let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            t.bound = Some((addr, port));
            t.port_locked = locked;
            // As Linux's SOCK_BINDADDR_LOCK: any address but the family's
            // wildcard (`::ffff:0.0.0.0` on AF_INET6 counts).
            t.addr_locked = Some(addr) != any;
            t.ghost = None;
        }
        self.tcp_ports.entry(port).or_default().push(r);
        Ok(())
    }

    /// Returns TCP socket `r` to the unconnected state, as Linux's
    /// tcp_disconnect (`shutdown` of a listener or of a connection being
    /// made, `connect(AF_UNSPEC)`): a listener resets its pending
    /// connections and stops listening; a connection is reset (RST when
    /// it was synchronized) and the socket gets `ECONNRESET` to report; the
    /// shutdown flags are cleared; an automatic port is released.
    pub fn tcp_disconnect(&mut self, pool: &FramePool, r: SockRef, fx: &mut Effects) {
        let Some(s) = self.socks.get_mut(r) else {
            return;
        };
        s.shut_rd = false;
        s.shut_wr = false;
        let shared = s.shared.clone();
        let Proto::Tcp(t) = &mut s.proto else {
            return;
        };
        match &mut t.state {
            TcpState::Listening(l) => {
                let children: Vec<SockRef> = l.embryos.drain(..).chain(l.ready.drain(..)).collect();
                if let Some(b) = t.bound {
                    if self.tcp_listeners.get(&b) == Some(&r) {
                        self.tcp_listeners.remove(&b);
                    }
                }
                if let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
                    t.state = TcpState::Idle;
                }
                for c in children {
                    self.tcp_abort(pool, c, fx);
                }
            }
            TcpState::Conn(c) => {
                let st = c.state();
                let tuple = c.tuple;
                let synchronized = !matches!(
                    st,
                    State::Closed | State::TimeWait | State::SynSent | State::Listen
                );
                if !matches!(st, State::Closed | State::TimeWait) {
                    s.error = Some(Errno::ECONNRESET);
                }
                if synchronized {
                    c.sock_mut().abort();
                    c.fin_pending = false;
                    self.stats.tcp_resets_sent += 1;
                    self.tcp_output(pool, r, false, fx);
                }
                if self.tcp_conns.get(&tuple) == Some(&r) {
                    self.tcp_conns.remove(&tuple);
                }
                self.set_timer(r, None, fx);
                if let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
                    t.state = TcpState::Idle;
                }
            }
            TcpState::Idle | TcpState::Failed => t.state = TcpState::Idle,
        }
        // An automatic port goes back (a bound one stays).
        let any = self.socks.get(r).map(|s| s.any_addr());
        if let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            t.accepted = false;
            t.listen_addr = None;
            t.connect_pending = false;
            if !t.addr_locked {
                if let Some(any) = any {
                    for (a, _) in t.bound.iter_mut().chain(t.ghost.iter_mut()) {
                        *a = any;
                    }
                }
            }
            if !t.port_locked {
                if t.bound.is_some() {
                    t.ghost = t.bound;
                }
                if let Some((_, port)) = t.bound.take() {
                    if let Some(v) = self.tcp_ports.get_mut(&port) {
                        v.retain(|x| *x != r);
                        if v.is_empty() {
                            self.tcp_ports.remove(&port);
                        }
                    }
                }
            }
        }
        fx.wake(&shared);
    }

    /// `listen`: binds to an ephemeral port if needed, and enters the
    /// listener table. Calling it again changes the backlog.
    pub fn tcp_listen(&mut self, r: SockRef, backlog: usize) -> Result<(), Errno> {
        let bound = match self.socks.get(r).map(|s| &s.proto) {
            Some(Proto::Tcp(t)) => {
                if let TcpState::Listening(_) = t.state {
                    if let Some(Proto::Tcp(TcpSock {
                        state: TcpState::Listening(l),
                        ..
                    })) = self.socks.get_mut(r).map(|s| &mut s.proto)
                    {
                        l.backlog = backlog;
                    }
                    return Ok(());
                }
                if !matches!(t.state, TcpState::Idle) {
                    return Err(Errno::EINVAL);
                }
                t.bound
            }
            _ => return Err(Errno::EOPNOTSUPP),
        };
        let (addr, port) = match bound {
            Some(b) => b,
            None => {
                let any = self
                    .socks
                    .get(r)
                    .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |s| s.any_addr());
                // A disconnected socket keeps an address it was bound to.
                let addr = match self.socks.get(r).map(|s| &s.proto) {
                    Some(Proto::Tcp(t)) if t.addr_locked => t.ghost.map_or(any, |g| g.0),
                    _ => any,
                };
                self.tcp_bind(r, addr, 0)?;
                match self.socks.get(r).map(|s| &s.proto) {
                    Some(Proto::Tcp(t)) => t.bound.ok_or(Errno::EINVAL)?,
                    _ => return Err(Errno::EINVAL),
                }
            }
        };
        // Listening checks the port again (Linux's inet_csk_listen_start):
        // a socket that shares it without both asking for SO_REUSEADDR
        // (an accepted connection of an earlier listen, say) conflicts.
        let reuse = self.socks.get(r).is_some_and(|s| s.opts.reuse_addr);
        if self.tcp_listeners.contains_key(&(addr, port))
            || self.tcp_bind_conflict(addr, port, r, true)
            || (!reuse && self.tcp_tw_conflict(addr, port, r))
        {
            return Err(Errno::EADDRINUSE);
        }
        // Another listener on an overlapping address also conflicts.
        let v6only = self.socks.get(r).is_some_and(|s| s.opts.v6only);
        let overlapping = self.tcp_ports.get(&port).is_some_and(|v| {
            v.iter().any(|&o| {
                o != r
                    && matches!(self.socks.get(o),
                        Some(s) if matches!(&s.proto, Proto::Tcp(t) if t.is_listening()
                            && t.bound.is_some_and(|(a, _)| bind_overlap(a, s.opts.v6only, addr, v6only))))
            })
        });
        if overlapping {
            return Err(Errno::EADDRINUSE);
        }
        if let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            t.state = TcpState::Listening(Listener {
                backlog,
                embryos: VecDeque::new(),
                ready: VecDeque::new(),
            });
        }
        self.tcp_listeners.insert((addr, port), r);
        Ok(())
    }

    /// Starts connecting `r` to `dst:port` (sends the SYN); `scope` is the
    /// zone of a link-local destination.
    pub fn tcp_connect(
        &mut self,
        pool: &FramePool,
        r: SockRef,
        (dst, port, scope): (IpAddr, u16, u32),
        fx: &mut Effects,
    ) -> Result<(), Errno> {
        let s = self.socks.get(r).ok_or(Errno::EBADF)?;
        let opts = s.opts;
        let Proto::Tcp(t) = &s.proto else {
            return Err(Errno::EINVAL);
        };
        match &t.state {
            TcpState::Idle => {}
            TcpState::Listening(_) => return Err(Errno::EISCONN),
            TcpState::Conn(c) => {
                return Err(match c.state() {
                    State::SynSent | State::SynReceived => Errno::EALREADY,
                    _ => Errno::EISCONN,
                })
            }
            TcpState::Failed => return Err(Errno::ECONNABORTED),
        }
        let bcast = matches!(dst, IpAddr::V4(a) if a.is_broadcast());
        if dst.is_unspecified() || bcast || dst.is_multicast() {
            return Err(Errno::ENETUNREACH);
        }
        if matches!(dst, IpAddr::V6(a) if a.is_unicast_link_local()) && scope == 0 {
            return Err(Errno::EINVAL);
        }
        let rt = self.route_ip(dst, scope).ok_or(Errno::ENETUNREACH)?;
        let bound = t.bound;
        let kept = t.ghost.filter(|_| t.addr_locked).map(|g| g.0);
        let own = bound.or(kept.map(|a| (a, 0)));
        // An AF_INET6 socket bound to an IPv4-mapped address (`::ffff:0.0.0.0`
        // too) has an IPv4 source, which an IPv6 route cannot take
        // (Linux's ip6_dst_lookup_tail).
        if own.is_some_and(|(a, _)| a.is_ipv4()) && dst.is_ipv6() {
            return Err(Errno::EAFNOSUPPORT);
        }
        let local_addr = match own {
            Some((a, _)) if !a.is_unspecified() => {
                if a.is_ipv4() != dst.is_ipv4() {
                    return Err(Errno::ENETUNREACH);
                }
                a
            }
            _ => rt.src,
        };
        let local_port = match bound {
            Some((_, p)) => p,
            None => {
                // Ports of TIME-WAIT records only when no other is free,
                // and then not the very 4-tuple.
                let p = self
                    .ephemeral_port(|c, p| c.tcp_ports.contains_key(&p) || c.tcp_tw.holds_port(p))
                    .or_else(|_| {
                        self.ephemeral_port(|c, p| {
                            c.tcp_ports.contains_key(&p)
                                || c.tcp_tw.map.contains_key(&(local_addr, p, dst, port))
                        })
                    })?;
                if let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
                    t.bound = Some((kept.unwrap_or(unspecified_like(dst)), p));
                    t.ghost = None;
                }
                self.tcp_ports.entry(p).or_default().push(r);
                p
            }
        };
        let tuple = (local_addr, local_port, dst, port);
        if self.tcp_conns.contains_key(&tuple) || self.tcp_tw.map.contains_key(&tuple) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        // A wildcard binding narrows to the connection's source address
        // (Linux's inet_bhash2_update_saddr), so a later bind of the same
        // port to another address does not conflict with it; a
        // disconnect widens it again.
        if let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            if let Some((a, _)) = &mut t.bound {
                if a.is_unspecified() {
                    *a = local_addr;
                }
            }
        }
        if port == 0 {
            // Linux sends the SYN to port 0 as to any other; no host can
            // listen there, so the answer is a reset. smoltcp will not
            // address port 0: the attempt fails as a refused one does,
            // reported by SO_ERROR, poll and the next connect.
            if let Some(s) = self.socks.get_mut(r) {
                s.error = Some(Errno::ECONNREFUSED);
                if let Proto::Tcp(t) = &mut s.proto {
                    t.state = TcpState::Failed;
                }
                fx.wake(&s.shared);
            }
            self.tcp_ended_port(r);
            self.stats.tcp_active_opens += 1;
            return Ok(());
        }
        let params = self.params;
        let iface = self.iface_mut(rt.ifindex).ok_or(Errno::ENETUNREACH)?;
        let mut s = new_smol_socket(&opts, &params);
        s.set_timeout(Some(Duration::from_millis(
            params.connect_timeout_ms.max(1),
        )));
        s.connect(
            iface.smol.context(),
            IpEndpoint::new(dst.into(), port),
            IpListenEndpoint {
                addr: Some(local_addr.into()),
                port: local_port,
            },
        )
        .map_err(|_| Errno::EADDRNOTAVAIL)?;
        let mut set = SocketSet::new(Vec::with_capacity(1));
        let handle = set.add(s);
        if let Some(Proto::Tcp(t)) = self.socks.get_mut(r).map(|s| &mut s.proto) {
            t.state = TcpState::Conn(Box::new(Conn {
                set,
                handle,
                ifindex: rt.ifindex,
                tuple,
                registered: true,
                parent: None,
                fin_pending: false,
                last_sent: None,
            }));
        }
        if let Some(s) = self.socks.get_mut(r) {
            // A new attempt starts with no error (Linux's tcp_connect_init).
            s.error = None;
        }
        self.tcp_conns.insert(tuple, r);
        self.stats.tcp_active_opens += 1;
        self.tcp_output(pool, r, false, fx);
        Ok(())
    }

    /// Closes TCP socket `r` for its last user: a listener resets its
    /// pending connections; a connection sends FIN, or RST when unread data
    /// would be lost or `SO_LINGER` is on with a zero time (RFC 2525 §2.17).
    pub fn tcp_close(&mut self, pool: &FramePool, r: SockRef, fx: &mut Effects) {
        let Some(s) = self.socks.get_mut(r) else {
            return;
        };
        s.orphan = true;
        let linger_zero = s.opts.linger == Some(0);
        let Proto::Tcp(t) = &mut s.proto else {
            return;
        };
        match &mut t.state {
            TcpState::Listening(l) => {
                let children: Vec<SockRef> = l.embryos.drain(..).chain(l.ready.drain(..)).collect();
                for c in children {
                    self.tcp_abort(pool, c, fx);
                }
                self.free_sock(r, fx);
            }
            TcpState::Conn(c) => {
                let st = c.state();
                if st == State::Closed {
                    self.free_sock(r, fx);
                    return;
                }
                if linger_zero || c.sock().recv_queue() > 0 {
                    c.sock_mut().abort();
                    c.fin_pending = false;
                    self.stats.tcp_resets_sent += 1;
                } else {
                    c.close_send();
                }
                self.tcp_output(pool, r, false, fx);
                // Still waiting for its FIN handshake: tcp_after frees it
                // when smoltcp reaches CLOSED (or TIME-WAIT).
                if let Some(Proto::Tcp(t)) = self.socks.get(r).map(|s| &s.proto) {
                    if t.conn().is_some_and(|c| c.state() == State::Closed) {
                        self.free_sock(r, fx);
                    }
                }
            }
            TcpState::Idle | TcpState::Failed => self.free_sock(r, fx),
        }
    }

    /// Resets connection `r` and frees it.
    pub fn tcp_abort(&mut self, pool: &FramePool, r: SockRef, fx: &mut Effects) {
        if let Some(s) = self.socks.get_mut(r) {
            s.orphan = true;
            if let Proto::Tcp(t) = &mut s.proto {
                if let Some(c) = t.conn_mut() {
                    c.parent = None;
                    if c.state() != State::Closed {
                        c.sock_mut().abort();
                        self.stats.tcp_resets_sent += 1;
                    }
                }
            }
        }
        self.tcp_output(pool, r, false, fx);
        if self.socks.get(r).is_some() {
            self.free_sock(r, fx);
        }
    }

    /// Takes the oldest completed connection of listener `r`.
    /// Takes the next completed connection of listener `r`, and says
    /// whether more remain.
    pub fn tcp_accept(&mut self, r: SockRef) -> Result<Option<(SockRef, bool)>, Errno> {
        let s = self.socks.get_mut(r).ok_or(Errno::EBADF)?;
        let Proto::Tcp(t) = &mut s.proto else {
            return Err(Errno::EOPNOTSUPP);
        };
        let TcpState::Listening(l) = &mut t.state else {
            return Err(Errno::EINVAL);
        };
        let Some(c) = l.ready.pop_front() else {
            return Ok(None);
        };
        let more = !l.ready.is_empty();
        if let Some(Proto::Tcp(t)) = self.socks.get_mut(c).map(|s| &mut s.proto) {
            if let Some(conn) = t.conn_mut() {
                conn.parent = None;
            }
        }
        Ok(Some((c, more)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smoltcp::phy::ChecksumCapabilities;
    use smoltcp::wire::{IpAddress, IpProtocol, Ipv4Repr, TcpControl, TcpRepr, TcpSeqNumber};

    const SRC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// An IPv4 packet holding a TCP segment, with valid checksums.
    fn segment(control: TcpControl, window: u16) -> Vec<u8> {
        let tcp = TcpRepr {
            src_port: 7,
            dst_port: 40000,
            control,
            seq_number: TcpSeqNumber(1000),
            ack_number: Some(TcpSeqNumber(2000)),
            window_len: window,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: b"some data",
        };
        let ip = Ipv4Repr {
            src_addr: SRC,
            dst_addr: DST,
            next_header: IpProtocol::Tcp,
            payload_len: tcp.buffer_len(),
            hop_limit: 64,
        };
        let caps = ChecksumCapabilities::default();
        let mut buf = vec![0u8; ip.buffer_len() + tcp.buffer_len()];
        let mut p = Ipv4Packet::new_unchecked(&mut buf[..]);
        ip.emit(&mut p, &caps);
        let (s, d) = (IpAddress::Ipv4(SRC), IpAddress::Ipv4(DST));
        tcp.emit(
            &mut TcpPacket::new_unchecked(p.payload_mut()),
            &s,
            &d,
            &caps,
        );
        buf
    }

    /// The window field, and whether the TCP checksum holds.
    fn window(pkt: &[u8]) -> (u16, bool) {
        let ip = Ipv4Packet::new_checked(pkt).unwrap();
        let tcp = TcpPacket::new_checked(ip.payload()).unwrap();
        let ok = tcp.verify_checksum(&IpAddress::Ipv4(SRC), &IpAddress::Ipv4(DST));
        (tcp.window_len(), ok)
    }

    #[test]
    fn the_window_offered_is_held_back_one_unit() {
        for w in [1, 2, 0x00ff, 0x0100, 0x8000, 0xffff] {
            let mut p = segment(TcpControl::None, w);
            hold_back_window(&mut p, true);
            assert_eq!(window(&p), (w - 1, true), "window {w}");
            let mut p = segment(TcpControl::Psh, w);
            hold_back_window(&mut p, false);
            assert_eq!(window(&p).0, w - 1, "window {w}, no checksum");
        }
        // A shut window stays shut; a SYN's window is not scaled and a
        // RST's means nothing: all left as they are.
        for (c, w) in [
            (TcpControl::None, 0),
            (TcpControl::Syn, 4096),
            (TcpControl::Rst, 4096),
        ] {
            let mut p = segment(c, w);
            let before = p.clone();
            hold_back_window(&mut p, true);
            assert_eq!(p, before);
        }
        // Truncated packets are left alone, not misread.
        let full = segment(TcpControl::None, 100);
        for len in [0, 19, 20, 39] {
            let mut p = full[..len].to_vec();
            hold_back_window(&mut p, true);
            assert_eq!(p, full[..len]);
        }
    }
}
