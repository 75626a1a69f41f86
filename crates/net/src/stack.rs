//! [`Stack`]: one kernel's network stack, and [`Core`], the state it keeps
//! under its lock.
//!
//! # Threads and locks
//!
//! Protocol work runs in the thread that causes it: a `send` builds and
//! routes its segments, and an in-process bus delivers them straight into
//! the receiving kernel's stack (see `pump.rs`); only timers, and frames
//! arriving from outside the process (shmif, tap), run on kernel threads.
//! One spin lock guards [`Core`]. Work done under it collects
//! [`Effects`]: frames to transmit and sockets to wake, which
//! [`Stack::run_effects`] carries out after the lock is released, so no
//! lock is ever held across a link (which may call into another kernel) or
//! a hypercall that may block.
//!
//! # Sockets
//!
//! Sockets live in a slab ([`Slab`]) named by [`SockRef`] (index and
//! generation). Received segments find their socket through hash tables
//! (connections by 4-tuple, listeners by address and port), never by
//! walking the sockets, so the cost of a segment does not grow with the
//! number of sockets. Each TCP connection has its own one-element smoltcp
//! `SocketSet`, so smoltcp's per-poll walk is over one socket.
//!
//! Neighbours: `ip.rs` (IPv4, ARP, ICMP, forwarding), `tcp.rs`, `udp.rs`,
//! `ping.rs` (protocols), `socket.rs` (the BSD socket API on top),
//! `config.rs` (interfaces and routes as system calls).

use alloc::boxed::Box;
use alloc::collections::BTreeSet;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use portable_atomic::AtomicU64;

use crate::hash::HashMap;
use hyper::{Hyper, MonoNs, Parker, ThreadHandle};
use kern::sync::{Sched, SleepMutex, SpinMutex, WaitQueue};
use kern::{Errno, Kernel, WeakKernel};

use crate::addr::NetStats;
use crate::iface::{IfShared, Iface, Link};
use crate::ping::PingSock;
use crate::pool::FramePool;
use crate::pump::Pump;
use crate::route::RouteTable;
use crate::tcp::TcpSock;
use crate::udp::UdpSock;

/// Segments of a burst a connection takes in before it answers.
const ACK_EVERY: usize = 4;

/// Names a socket in the slab. The generation makes a stale reference
/// (to a slot reused by a newer socket) miss instead of alias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct SockRef {
    pub idx: u32,
    pub gen: u32,
}

/// A slab of sockets.
pub(crate) struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    live: usize,
}

impl<T> Slab<T> {
    pub fn new() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            live: 0,
        }
    }

    pub fn insert(&mut self, v: T) -> SockRef {
        self.live += 1;
        match self.free.pop() {
            Some(i) => {
                let s = &mut self.slots[i as usize];
                s.0 = s.0.wrapping_add(1);
                s.1 = Some(v);
                SockRef { idx: i, gen: s.0 }
            }
            None => {
                self.slots.push((0, Some(v)));
                SockRef {
                    idx: (self.slots.len() - 1) as u32,
                    gen: 0,
                }
            }
        }
    }

    pub fn get(&self, r: SockRef) -> Option<&T> {
        match self.slots.get(r.idx as usize) {
            Some((g, Some(v))) if *g == r.gen => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, r: SockRef) -> Option<&mut T> {
        match self.slots.get_mut(r.idx as usize) {
            Some((g, Some(v))) if *g == r.gen => Some(v),
            _ => None,
        }
    }

    pub fn remove(&mut self, r: SockRef) -> Option<T> {
        match self.slots.get_mut(r.idx as usize) {
            Some((g, slot @ Some(_))) if *g == r.gen => {
                self.free.push(r.idx);
                self.live -= 1;
                slot.take()
            }
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.live
    }

    pub fn refs(&self) -> Vec<SockRef> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.1.is_some())
            .map(|(i, s)| SockRef {
                idx: i as u32,
                gen: s.0,
            })
            .collect()
    }
}

/// What a socket shares with its file object outside the stack lock.
pub(crate) struct SockShared {
    /// Threads waiting for any change (`recv`, `send`, `connect`, `poll`).
    pub wq: WaitQueue,
    /// Threads in `accept`: each connection wakes one of them (it consumes
    /// the connection), not the whole herd.
    pub acceptq: WaitQueue,
    /// Bumped whenever something a caller may wait for changed: a
    /// spinning caller watches this word instead of taking the stack lock
    /// (which would slow down the thread doing the work), and a woken
    /// sleeper re-checks under the lock only when it moved.
    pub events: AtomicU32,
    /// `SO_RCVTIMEO` and `SO_SNDTIMEO` in nanoseconds ([`NO_TIMEOUT`]:
    /// none), mirrored from [`SockOpts`] so a call reads them without the
    /// stack lock.
    pub rcvtimeo: AtomicU64,
    pub sndtimeo: AtomicU64,
    /// [`SockOpts::wants`] as bits (see [`CmsgWants::bits`]).
    pub wants: AtomicU8,
    /// How long a blocked call of this socket spins before it sleeps.
    pub spin: SpinLearner,
}

/// No `SO_RCVTIMEO`/`SO_SNDTIMEO` in [`SockShared`].
pub(crate) const NO_TIMEOUT: u64 = u64::MAX;

impl SockShared {
    fn new(opts: &SockOpts) -> SockShared {
        let s = SockShared {
            wq: WaitQueue::new(),
            acceptq: WaitQueue::new(),
            events: AtomicU32::new(0),
            rcvtimeo: AtomicU64::new(NO_TIMEOUT),
            sndtimeo: AtomicU64::new(NO_TIMEOUT),
            wants: AtomicU8::new(0),
            spin: SpinLearner::new(),
        };
        s.mirror(opts);
        s
    }

    /// Copies the options read on the hot path (called under the stack
    /// lock whenever they change).
    pub fn mirror(&self, o: &SockOpts) {
        let t = |v: Option<u64>| v.map_or(NO_TIMEOUT, |v| v.min(NO_TIMEOUT - 1));
        self.rcvtimeo.store(t(o.rcvtimeo), Ordering::Relaxed);
        self.sndtimeo.store(t(o.sndtimeo), Ordering::Relaxed);
        self.wants.store(o.wants.bits(), Ordering::Relaxed);
    }

    pub fn rcvtimeo(&self) -> Option<u64> {
        Some(self.rcvtimeo.load(Ordering::Relaxed)).filter(|&t| t != NO_TIMEOUT)
    }

    pub fn sndtimeo(&self) -> Option<u64> {
        Some(self.sndtimeo.load(Ordering::Relaxed)).filter(|&t| t != NO_TIMEOUT)
    }

    pub fn wants(&self) -> crate::cmsg::CmsgWants {
        crate::cmsg::CmsgWants::from_bits(self.wants.load(Ordering::Relaxed))
    }
}

/// The spin length of a socket's blocked calls, learned from how long
/// their waits turned out to be (as glibc's adaptive mutexes learn theirs):
/// a wait that ended within twice the current budget grows the budget to
/// twice that wait (a spin that long would have caught it), a longer wait
/// or a timeout halves it. Bounded by the stack's maximum
/// (`net.socket.spin_max_ns`), never below a sixty-fourth of it, so a
/// socket whose peer answers in microseconds spins for about that long,
/// and one that waits for seconds spins for almost nothing.
pub(crate) struct SpinLearner(AtomicU64);

impl SpinLearner {
    /// Nanoseconds a new socket spins for at first (then learned).
    const INITIAL_NS: u64 = 20_000;

    pub const fn new() -> SpinLearner {
        SpinLearner(AtomicU64::new(Self::INITIAL_NS))
    }

    fn floor(max: u64) -> u64 {
        max / 64
    }

    /// The current budget, within `floor..=max`.
    pub fn budget(&self, max: u64) -> u64 {
        self.0.load(Ordering::Relaxed).clamp(Self::floor(max), max)
    }

    /// The call's wait ended after `waited` ns (spinning or sleeping).
    pub fn ended_after(&self, waited: u64, max: u64) {
        let b = self.budget(max);
        let next = if waited <= max {
            b.max(waited.saturating_mul(2)).min(max)
        } else {
            b / 2
        };
        self.0.store(next.max(Self::floor(max)), Ordering::Relaxed);
    }

    /// The call gave up (timeout, signal): spinning did not pay off.
    pub fn failed(&self, max: u64) {
        let b = self.budget(max);
        self.0
            .store((b / 2).max(Self::floor(max)), Ordering::Relaxed);
    }
}

/// Options common to all sockets (`SOL_SOCKET`, `IP_TTL`, `TCP_NODELAY`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SockOpts {
    pub reuse_addr: bool,
    pub keepalive: bool,
    pub broadcast: bool,
    pub nodelay: bool,
    pub rcvbuf: usize,
    pub sndbuf: usize,
    /// `SO_LINGER`: `Some(seconds)` when on.
    pub linger: Option<u32>,
    pub rcvtimeo: Option<u64>,
    pub sndtimeo: Option<u64>,
    pub ttl: u8,
    /// `IP_TTL` of an IPv6 socket (its `ttl` is the hop limit).
    pub ttl4: u8,
    /// `IPV6_V6ONLY`: an IPv6 socket bound to `::` takes no IPv4.
    pub v6only: bool,
    /// `TCP_KEEPIDLE`, `TCP_KEEPINTVL` (seconds), `TCP_KEEPCNT`; `None`
    /// follows the sysctl defaults.
    pub keepidle: Option<u32>,
    pub keepintvl: Option<u32>,
    pub keepcnt: Option<u32>,
    /// Control messages wanted with received datagrams.
    pub wants: crate::cmsg::CmsgWants,
}

/// The protocol part of a socket.
pub(crate) enum Proto {
    Tcp(TcpSock),
    Udp(UdpSock),
    Ping(PingSock),
}

/// A socket as the stack keeps it.
pub(crate) struct Sock {
    /// `AF_INET` or `AF_INET6`.
    pub family: i32,
    pub shared: Arc<SockShared>,
    pub opts: SockOpts,
    /// The pending error `SO_ERROR` reports (and the next call returns,
    /// for datagram sockets and failed connects).
    pub error: Option<Errno>,
    pub shut_rd: bool,
    pub shut_wr: bool,
    /// The user closed it; it lives on only to finish its protocol.
    pub orphan: bool,
    /// The deadline it holds in [`Core::timers`].
    pub timer_at: Option<MonoNs>,
    pub proto: Proto,
}

impl Sock {
    pub fn new(family: i32, opts: SockOpts, proto: Proto) -> Sock {
        Sock {
            family,
            shared: Arc::new(SockShared::new(&opts)),
            opts,
            error: None,
            shut_rd: false,
            shut_wr: false,
            orphan: false,
            timer_at: None,
            proto,
        }
    }

    /// The wildcard address of the socket's family.
    pub fn any_addr(&self) -> IpAddr {
        if self.family == kern::consts::af::INET6 {
            IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        }
    }
}

/// What to do once the stack lock is released.
#[derive(Default)]
pub(crate) struct Effects {
    /// Frames to send: link, interface, frame.
    pub frames: Vec<(Arc<dyn Link>, Arc<IfShared>, Vec<u8>)>,
    /// Sockets whose waiters must wake.
    pub wake: Vec<Arc<SockShared>>,
    /// The timer thread must look at an earlier deadline.
    pub kick_timer: bool,
}

impl Effects {
    pub fn wake(&mut self, s: &Arc<SockShared>) {
        s.events.fetch_add(1, Ordering::Release);
        if (s.wq.has_waiters() || s.acceptq.has_waiters())
            && !self.wake.iter().any(|w| Arc::ptr_eq(w, s))
        {
            self.wake.push(s.clone());
        }
    }
}

/// A connection's 4-tuple: local address and port, remote address and port.
pub(crate) type Tuple4 = (IpAddr, u16, IpAddr, u16);

/// Kernel parameters the stack reads (sysctl values, cached at boot and
/// refreshed when a socket is made).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Params {
    pub ttl: u8,
    pub sendspace: usize,
    pub recvspace: usize,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    pub keepidle_ms: u64,
    pub keepintvl_ms: u64,
    pub keepcnt: u32,
    pub time_wait_ms: u64,
    pub port_first: u16,
    pub port_last: u16,
    /// `net.socket.spin_max_ns`: the longest spin of a blocked call.
    pub spin_ns: u64,
}

/// Everything the stack lock guards.
pub(crate) struct Core {
    /// Monotonic time, set each time the lock is taken.
    pub now: MonoNs,
    /// The kernel, for the parameters read per packet (forwarding).
    pub kernel: WeakKernel,
    pub params: Params,
    pub ifs: Vec<Option<Iface>>,
    pub routes: RouteTable,
    pub socks: Slab<Sock>,
    pub tcp_conns: HashMap<Tuple4, SockRef>,
    pub tcp_listeners: HashMap<(IpAddr, u16), SockRef>,
    /// Sockets bound to each TCP port (for `bind`'s conflict rules).
    pub tcp_ports: HashMap<u16, Vec<SockRef>>,
    pub udp_binds: HashMap<(IpAddr, u16), SockRef>,
    pub ping_ids: HashMap<u16, SockRef>,
    /// Closed connections in TIME-WAIT.
    pub tcp_tw: crate::timewait::TimeWaitTable,
    /// Pending protocol timers by deadline.
    pub timers: BTreeSet<(MonoNs, SockRef)>,
    /// When the timer thread will next look (`MonoNs::MAX`: not at all).
    pub timer_next: MonoNs,
    pub stats: NetStats,
    /// Fragments waiting for the rest of their datagram.
    pub reasm: crate::frag::Reassembler,
    /// Identification of the next IPv6 datagram we fragment.
    pub frag_ident: u32,
    /// ICMPv6 error budget: last refill and tokens left.
    pub icmp6_bucket: (MonoNs, u32),
    pub ip_id: u16,
    pub next_port: u16,
    pub seed: u64,
    pub empty_set: smoltcp::iface::SocketSet<'static>,
    /// While a burst is processed, connections only take segments in and
    /// are listed here to answer once at the end.
    pub defer_egress: bool,
    pub deferred: Vec<SockRef>,
}

/// One kernel's network stack (the `"net"` kernel extension).
pub struct Stack {
    pub(crate) core: SleepMutex<Core>,
    pub(crate) sched: Arc<Sched>,
    /// [`Params::spin_ns`], readable without the stack lock.
    pub(crate) spin_ns: AtomicU64,
    pub(crate) pool: FramePool,
    pub(crate) hyper: Arc<dyn Hyper>,
    pub(crate) kernel: WeakKernel,
    pub(crate) registry: Option<Arc<crate::bus::BusRegistry>>,
    pub(crate) this: Weak<Stack>,
    /// Frames waiting to be transmitted, in the order the stack made
    /// them (several threads may produce; one at a time transmits).
    txq: Pump<(Arc<dyn Link>, Arc<IfShared>, Vec<u8>)>,
    halted: AtomicBool,
    /// Receive ports that threads waiting on sockets drain themselves
    /// (shmif; see `shmif::RxPort`).
    rx_ports: kern::sync::SpinRwLock<Vec<Weak<crate::shmif::RxPort>>>,
    has_rx_ports: AtomicBool,
    /// Threads spinning in socket calls (and so draining the ports).
    rx_pollers: AtomicU32,
    timer: SpinMutex<Option<TimerThread>>,
    timer_starting: AtomicBool,
}

/// See [`Stack::rx_polling`].
pub(crate) struct RxPolling<'a> {
    stack: &'a Stack,
    counted: bool,
}

impl Drop for RxPolling<'_> {
    fn drop(&mut self) {
        if self.counted && self.stack.rx_pollers.fetch_sub(1, Ordering::AcqRel) == 1 {
            for p in self
                .stack
                .rx_ports
                .read()
                .iter()
                .filter_map(|w| w.upgrade())
            {
                p.wake_reader();
            }
        }
    }
}

struct TimerThread {
    parker: Arc<dyn Parker>,
    handle: Option<Box<dyn ThreadHandle>>,
}

impl Stack {
    pub(crate) fn new(
        k: &Kernel,
        params: Params,
        registry: Option<Arc<crate::bus::BusRegistry>>,
    ) -> Arc<Stack> {
        let mut seed = [0u8; 8];
        k.hyper().random_fill(&mut seed);
        let seed = u64::from_le_bytes(seed);
        let next_port =
            params.port_first + (seed % (params.port_last - params.port_first + 1) as u64) as u16;
        let sched = k.sched().clone();
        let spin_ns = AtomicU64::new(params.spin_ns);
        Arc::new_cyclic(|this| Stack {
            spin_ns,
            core: SleepMutex::new(
                &sched,
                Core {
                    now: 0,
                    kernel: k.downgrade(),
                    params,
                    ifs: Vec::new(),
                    routes: RouteTable::new(),
                    socks: Slab::new(),
                    tcp_conns: crate::hash::map(table_seed(seed, 1)),
                    tcp_listeners: crate::hash::map(table_seed(seed, 2)),
                    tcp_ports: crate::hash::map(table_seed(seed, 3)),
                    udp_binds: crate::hash::map(table_seed(seed, 4)),
                    ping_ids: crate::hash::map(table_seed(seed, 5)),
                    tcp_tw: crate::timewait::TimeWaitTable::with_seed(table_seed(seed, 6)),
                    timers: BTreeSet::new(),
                    timer_next: MonoNs::MAX,
                    stats: NetStats::default(),
                    reasm: crate::frag::Reassembler::with_seed(
                        crate::frag::ReasmLimits::default(),
                        table_seed(seed, 7),
                    ),
                    frag_ident: seed as u32,
                    icmp6_bucket: (0, 100),
                    ip_id: seed as u16,
                    next_port,
                    seed,
                    empty_set: smoltcp::iface::SocketSet::new(Vec::new()),
                    defer_egress: false,
                    deferred: Vec::new(),
                },
            ),
            sched,
            pool: FramePool::new(),
            hyper: k.hyper().clone(),
            kernel: k.downgrade(),
            registry,
            this: this.clone(),
            txq: Pump::new(),
            halted: AtomicBool::new(false),
            rx_ports: kern::sync::SpinRwLock::new(Vec::new()),
            has_rx_ports: AtomicBool::new(false),
            rx_pollers: AtomicU32::new(0),
            timer: SpinMutex::new(None),
            timer_starting: AtomicBool::new(false),
        })
    }

    /// Registers a receive port for [`Stack::poll_rx`].
    pub(crate) fn add_rx_port(&self, p: &Arc<crate::shmif::RxPort>) {
        let mut v = self.rx_ports.write();
        v.retain(|w| w.strong_count() > 0);
        v.push(Arc::downgrade(p));
        self.has_rx_ports.store(true, Ordering::Release);
    }

    /// Drains the receive ports no other thread is draining, in the
    /// calling thread; whether any frame was taken in. Called by threads
    /// spinning in a blocking socket call.
    pub(crate) fn poll_rx(&self) -> bool {
        if !self.has_rx_ports.load(Ordering::Acquire) {
            return false;
        }
        let mut any = false;
        for p in self.rx_ports.read().iter().filter_map(|w| w.upgrade()) {
            any |= p.drain(self, false);
        }
        any
    }

    /// Threads currently spinning in socket calls.
    pub(crate) fn rx_pollers(&self) -> u32 {
        self.rx_pollers.load(Ordering::Acquire)
    }

    /// A socket call starts spinning: while the guard lives, it drains
    /// the receive ports and their reader threads stay parked. When the
    /// last such guard goes, the readers take over again.
    pub(crate) fn rx_polling(&self) -> RxPolling<'_> {
        let counted = self.has_rx_ports.load(Ordering::Acquire);
        if counted {
            self.rx_pollers.fetch_add(1, Ordering::AcqRel);
        }
        RxPolling {
            stack: self,
            counted,
        }
    }

    /// Whether the stack has been shut down with its kernel.
    pub fn is_halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    /// Runs `f` with the stack lock held, then carries out its effects.
    pub(crate) fn with_core<R>(&self, f: impl FnOnce(&mut Core, &mut Effects) -> R) -> R {
        let mut fx = Effects::default();
        let r = {
            let mut c = self.core.lock();
            c.now = self.hyper.clock_monotonic();
            let r = f(&mut c, &mut fx);
            // Queued under the lock: the order of the wire is the order in
            // which the protocol made the frames.
            for item in fx.frames.drain(..) {
                self.txq.enqueue(item);
            }
            r
        };
        self.run_effects(fx);
        r
    }

    /// Carries out what work under the lock decided: wakes sockets,
    /// transmits frames (capturing them first), pokes the timer thread.
    pub(crate) fn run_effects(&self, fx: Effects) {
        for w in &fx.wake {
            w.wq.wake_all();
            // One connection (or the listener's end) per wake-up: the
            // thread that takes it wakes the next if more remain.
            w.acceptq.wake_one();
        }
        for item in fx.frames {
            self.txq.enqueue(item);
        }
        self.txq.drain_batches(|items| {
            // Consecutive frames for one link go as one batch.
            let mut run: Vec<Vec<u8>> = Vec::new();
            let mut run_link: Option<Arc<dyn Link>> = None;
            for (link, ifs, frame) in items {
                if ifs.has_pcap.load(Ordering::Relaxed) {
                    ifs.capture(self.hyper.clock_wall(), &frame);
                }
                ifs.stats.tx_packets.fetch_add(1, Ordering::Relaxed);
                ifs.stats
                    .tx_bytes
                    .fetch_add(frame.len() as u64, Ordering::Relaxed);
                if let Some(l) = &run_link {
                    if !Arc::ptr_eq(l, &link) {
                        for b in l.transmit_batch(core::mem::take(&mut run)) {
                            self.pool.put(b);
                        }
                    }
                }
                run_link = Some(link);
                run.push(frame);
            }
            if let Some(l) = run_link {
                for b in l.transmit_batch(run) {
                    self.pool.put(b);
                }
            }
        });
        if fx.kick_timer {
            self.kick_timer();
        }
    }

    /// Processes one Ethernet frame that arrived on interface `ifindex`.
    /// Called by links, in whatever thread delivers the frame.
    pub(crate) fn input(&self, ifindex: usize, frame: Vec<u8>) {
        self.input_on(ifindex, None, frame);
    }

    /// [`Stack::input`], only if the interface at `ifindex` is still
    /// `expect` (a port may outlive its interface, and the index may have
    /// gone to a new one).
    pub(crate) fn input_on(&self, ifindex: usize, expect: Option<&Arc<IfShared>>, frame: Vec<u8>) {
        if self.is_halted() {
            self.pool.put(frame);
            return;
        }
        let ifs = {
            let c = self.core.lock();
            match c.ifs.get(ifindex).and_then(|i| i.as_ref()) {
                Some(i) if expect.is_none_or(|e| Arc::ptr_eq(e, &i.shared)) => i.shared.clone(),
                _ => {
                    drop(c);
                    self.pool.put(frame);
                    return;
                }
            }
        };
        ifs.stats.rx_packets.fetch_add(1, Ordering::Relaxed);
        ifs.stats
            .rx_bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        if ifs.has_pcap.load(Ordering::Relaxed) {
            ifs.capture(self.hyper.clock_wall(), &frame);
        }
        self.with_core(|c, fx| c.ether_input(&self.pool, ifindex, &frame, fx));
        self.pool.put(frame);
    }

    /// Processes a burst of frames that arrived together on `ifindex`:
    /// one lock, and each connection answers once for the whole burst
    /// (one ACK for many segments), as interrupt coalescing does.
    pub(crate) fn input_batch(&self, ifindex: usize, frames: Vec<Vec<u8>>) {
        if frames.len() == 1 {
            for f in frames {
                self.input(ifindex, f);
            }
            return;
        }
        if self.is_halted() {
            return;
        }
        let ifs = {
            let c = self.core.lock();
            match c.ifs.get(ifindex).and_then(|i| i.as_ref()) {
                Some(i) => i.shared.clone(),
                None => return,
            }
        };
        for f in &frames {
            ifs.stats.rx_packets.fetch_add(1, Ordering::Relaxed);
            ifs.stats
                .rx_bytes
                .fetch_add(f.len() as u64, Ordering::Relaxed);
            if ifs.has_pcap.load(Ordering::Relaxed) {
                ifs.capture(self.hyper.clock_wall(), f);
            }
        }
        self.with_core(|c, fx| {
            // Answer every few segments, not once per burst: the sender
            // refills its window while the rest of the burst is processed.
            for group in frames.chunks(ACK_EVERY) {
                c.defer_egress = true;
                for f in group {
                    c.ether_input(&self.pool, ifindex, f, fx);
                }
                c.defer_egress = false;
                let touched = core::mem::take(&mut c.deferred);
                for r in touched {
                    c.tcp_output(&self.pool, r, true, fx);
                }
            }
        });
        for f in frames {
            self.pool.put(f);
        }
    }

    fn kick_timer(&self) {
        {
            let t = self.timer.lock();
            if let Some(t) = t.as_ref() {
                t.parker.unpark();
                return;
            }
        }
        if self.is_halted() || self.timer_starting.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(k) = self.kernel.upgrade() else {
            return;
        };
        let weak = self.this.clone();
        let spawned = k.spawn_thread_parked(
            "net.timer",
            Box::new(move |parker| timer_loop(&weak, &*parker)),
        );
        match spawned {
            Ok((h, parker)) => {
                parker.unpark();
                *self.timer.lock() = Some(TimerThread {
                    parker,
                    handle: Some(h),
                });
            }
            Err(_) => self.timer_starting.store(false, Ordering::Release),
        }
    }

    /// Shuts the stack down (kernel halt): stops the timer and the links'
    /// threads, aborts every socket and wakes every waiter.
    pub(crate) fn halt(&self) {
        if self.halted.swap(true, Ordering::AcqRel) {
            return;
        }
        let t = self.timer.lock().take();
        if let Some(mut t) = t {
            t.parker.unpark();
            if let Some(h) = t.handle.take() {
                let _ = h.join();
            }
        }
        let (links, socks, pcaps) = {
            let mut c = self.core.lock();
            let links: Vec<Arc<dyn Link>> = c
                .ifs
                .iter_mut()
                .flatten()
                .filter_map(|i| i.link.take())
                .collect();
            let refs = c.socks.refs();
            let mut socks = Vec::new();
            for r in refs {
                if let Some(s) = c.socks.remove(r) {
                    socks.push(s);
                }
            }
            c.tcp_conns.clear();
            c.tcp_listeners.clear();
            c.tcp_ports.clear();
            c.udp_binds.clear();
            c.ping_ids.clear();
            c.tcp_tw = crate::timewait::TimeWaitTable::with_seed(table_seed(c.seed, 6));
            c.timers.clear();
            let mut pcaps = Vec::new();
            for i in c.ifs.iter_mut().flatten() {
                i.arp.clear();
                i.shared.has_pcap.store(false, Ordering::Release);
                if let Some(p) = i.shared.pcap.lock().take() {
                    pcaps.push(p);
                }
            }
            (links, socks, pcaps)
        };
        // Host I/O after the stack lock is released.
        for p in pcaps {
            p.flush();
        }
        self.txq.clear();
        for l in links {
            l.detach();
        }
        for s in &socks {
            s.shared.wq.wake_all();
            s.shared.acceptq.wake_all();
        }
        drop(socks);
    }
}

/// The seed of table `n` of a stack whose random seed is `seed`
/// (splitmix64 of the two: distinct and well mixed).
fn table_seed(seed: u64, n: u64) -> u64 {
    let mut z = seed.wrapping_add(n.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn timer_loop(weak: &Weak<Stack>, parker: &dyn Parker) {
    loop {
        let next = {
            let Some(stack) = weak.upgrade() else {
                return;
            };
            if stack.is_halted() {
                return;
            }
            stack.with_core(|c, fx| {
                c.run_timers(&stack.pool, fx);
                let next = c.timers.first().map(|t| t.0);
                c.timer_next = next.unwrap_or(MonoNs::MAX);
                next
            })
        };
        parker.park_until(next);
    }
}

impl Core {
    /// The interface at `index`.
    pub fn iface(&self, index: usize) -> Option<&Iface> {
        self.ifs.get(index).and_then(|i| i.as_ref())
    }

    pub fn iface_mut(&mut self, index: usize) -> Option<&mut Iface> {
        self.ifs.get_mut(index).and_then(|i| i.as_mut())
    }

    /// The interface named `name`.
    pub fn iface_by_name(&self, name: &str) -> Option<&Iface> {
        self.ifs.iter().flatten().find(|i| i.name() == name)
    }

    pub fn index_of(&self, name: &str) -> Result<usize, Errno> {
        self.iface_by_name(name)
            .map(|i| i.index())
            .ok_or(Errno::ENXIO)
    }

    /// Whether `ip` is an address of this host: one of an interface's
    /// addresses, or anything in a loopback interface's network.
    pub fn is_local_addr(&self, ip: Ipv4Addr) -> bool {
        self.ifs.iter().flatten().any(|i| {
            i.has_addr(ip)
                || (i.kind == crate::iface::IfKind::Loopback
                    && i.addrs
                        .iter()
                        .any(|&(a, p)| crate::iface::in_subnet(ip, a, p)))
        })
    }

    /// Whether `ip` (either family) is an address of this host.
    pub fn is_local_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.is_local_addr(a),
            IpAddr::V6(a) => self.is_local_addr6(a),
        }
    }

    /// The listener or bound socket for `(dst, port)` in `table`: an
    /// exact binding, else the family's wildcard, else (for IPv4) an IPv6
    /// wildcard socket that also takes IPv4 (not `IPV6_V6ONLY`).
    pub fn lookup_bound(
        &self,
        table: &HashMap<(IpAddr, u16), SockRef>,
        dst: IpAddr,
        port: u16,
    ) -> Option<SockRef> {
        if let Some(&r) = table.get(&(dst, port)) {
            return Some(r);
        }
        let any = match dst {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED),
        };
        if let Some(&r) = table.get(&(any, port)) {
            return Some(r);
        }
        if dst.is_ipv4() {
            let r = *table.get(&(IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED), port))?;
            if self.socks.get(r).is_some_and(|s| !s.opts.v6only) {
                return Some(r);
            }
        }
        None
    }

    /// (Re)arms the protocol timer of `r` at `at`.
    pub fn set_timer(&mut self, r: SockRef, at: Option<MonoNs>, fx: &mut Effects) {
        let Some(s) = self.socks.get_mut(r) else {
            return;
        };
        if s.timer_at == at {
            return;
        }
        if let Some(old) = s.timer_at.take() {
            self.timers.remove(&(old, r));
        }
        if let Some(t) = at {
            s.timer_at = Some(t);
            self.timers.insert((t, r));
            if t < self.timer_next {
                self.timer_next = t;
                fx.kick_timer = true;
            }
        }
    }

    /// Runs the protocol timers that are due.
    pub fn run_timers(&mut self, pool: &FramePool, fx: &mut Effects) {
        let now = self.now;
        let mut due = Vec::new();
        while let Some(&(t, r)) = self.timers.first() {
            if t > now {
                break;
            }
            self.timers.pop_first();
            if let Some(s) = self.socks.get_mut(r) {
                s.timer_at = None;
            }
            due.push(r);
        }
        for r in due {
            self.tcp_output(pool, r, false, fx);
        }
    }

    /// A fresh IPv4 identification.
    pub fn next_ip_id(&mut self) -> u16 {
        self.ip_id = self.ip_id.wrapping_add(1);
        self.ip_id
    }

    /// A seed for a new smoltcp interface.
    pub fn next_seed(&mut self) -> u64 {
        // splitmix64: distinct, well-mixed seeds from one random start.
        self.seed = self.seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Frees a socket and every table entry naming it.
    pub fn free_sock(&mut self, r: SockRef, fx: &mut Effects) {
        self.set_timer(r, None, fx);
        let Some(s) = self.socks.remove(r) else {
            return;
        };
        match &s.proto {
            Proto::Tcp(t) => {
                if let Some(tuple) = t.tuple() {
                    if self.tcp_conns.get(&tuple) == Some(&r) {
                        self.tcp_conns.remove(&tuple);
                    }
                }
                if let Some((addr, port)) = t.bound {
                    if self.tcp_listeners.get(&(addr, port)) == Some(&r) {
                        self.tcp_listeners.remove(&(addr, port));
                    }
                    if let Some(v) = self.tcp_ports.get_mut(&port) {
                        v.retain(|x| *x != r);
                        if v.is_empty() {
                            self.tcp_ports.remove(&port);
                        }
                    }
                }
            }
            Proto::Udp(u) => {
                if let Some(b) = u.bound {
                    if self.udp_binds.get(&b) == Some(&r) {
                        self.udp_binds.remove(&b);
                    }
                }
            }
            Proto::Ping(p) => {
                if let Some(id) = p.ident {
                    if self.ping_ids.get(&id) == Some(&r) {
                        self.ping_ids.remove(&id);
                    }
                }
            }
        }
        fx.wake(&s.shared);
    }

    /// Finds a free ephemeral port for which `in_use` is false.
    pub fn ephemeral_port(&mut self, in_use: impl Fn(&Core, u16) -> bool) -> Result<u16, Errno> {
        let (first, last) = (self.params.port_first, self.params.port_last);
        let span = (last - first) as u32 + 1;
        for _ in 0..span {
            let p = self.next_port;
            self.next_port = if p >= last { first } else { p + 1 };
            if !in_use(self, p) {
                return Ok(p);
            }
        }
        Err(Errno::EADDRNOTAVAIL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_generations() {
        let mut s = Slab::new();
        let a = s.insert(1);
        let b = s.insert(2);
        assert_eq!(s.get(a), Some(&1));
        assert_eq!(s.remove(a), Some(1));
        assert_eq!(s.get(a), None);
        let c = s.insert(3);
        assert_eq!(c.idx, a.idx);
        assert_ne!(c.gen, a.gen);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(c), Some(&3));
        assert_eq!(s.len(), 2);
        assert_eq!(s.refs(), alloc::vec![c, b]);
    }
}
