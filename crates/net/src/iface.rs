//! Network interfaces: [`Iface`] (the configuration and protocol state the
//! stack keeps under its lock), [`IfShared`] (what the transmit and
//! receive paths need without the lock: counters and the capture file),
//! the [`Link`] an interface sends frames through, and [`SmolDev`], the
//! device through which smoltcp hands us TCP segments.
//!
//! Every interface is Ethernet-framed, loopback and `pkt` included (with
//! zero MAC addresses, as Linux's `lo` appears in captures), so capture,
//! statistics and input share one path. Neighbours: `stack.rs` owns the
//! interface table; `bus.rs`, `shmif.rs`, `virtif.rs`, `pktif.rs` and
//! `pump.rs` implement links.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::sync::atomic::{AtomicBool, Ordering};
use portable_atomic::AtomicU64;

use smoltcp::iface::{Config, Interface};
use smoltcp::phy::{ChecksumCapabilities, Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::time::Instant;
use smoltcp::wire::HardwareAddress;

use kern::sync::{Sched, SleepMutex};

use crate::addr::IfStats;
use crate::arp::ArpTable;
use crate::pcap::Pcap;
use crate::pool::FramePool;

/// Length of an Ethernet header; every frame buffer keeps this much room
/// in front of the IP packet.
pub(crate) const ETH_HDR: usize = 14;

/// The most addresses one interface holds.
pub(crate) const MAX_ADDRS: usize = 8;

/// What kind of interface, from its name's prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IfKind {
    /// `loN`: frames come straight back in.
    Loopback,
    /// `busN`: an in-process Ethernet bus shared by kernels of one process.
    Bus,
    /// `shmifN`: an Ethernet bus in a shared host file.
    Shmif,
    /// `virtN`: a host tap device.
    Virt,
    /// `pktN`: bare IP packets to and from an API (see `pktif.rs`).
    Pkt,
}

impl IfKind {
    /// The kind named by an interface name's prefix, and the unit number
    /// if the name has one (`bus3` → `(Bus, Some(3))`).
    pub fn parse(name: &str) -> Option<(IfKind, Option<u32>)> {
        let split = name
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(name.len());
        let (prefix, unit) = name.split_at(split);
        let kind = match prefix {
            "lo" => IfKind::Loopback,
            "bus" => IfKind::Bus,
            "shmif" => IfKind::Shmif,
            "virt" => IfKind::Virt,
            "pkt" => IfKind::Pkt,
            _ => return None,
        };
        if unit.is_empty() {
            return Some((kind, None));
        }
        if unit.len() > 5 || (unit.len() > 1 && unit.starts_with('0')) {
            return None;
        }
        unit.parse().ok().map(|u| (kind, Some(u)))
    }

    pub fn prefix(self) -> &'static str {
        match self {
            IfKind::Loopback => "lo",
            IfKind::Bus => "bus",
            IfKind::Shmif => "shmif",
            IfKind::Virt => "virt",
            IfKind::Pkt => "pkt",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            IfKind::Loopback => "loopback",
            IfKind::Bus => "bus",
            IfKind::Shmif => "shmif",
            IfKind::Virt => "virt",
            IfKind::Pkt => "pkt",
        }
    }

    /// Whether frames on this kind of interface have a real link layer:
    /// Ethernet addresses to filter on, ARP and neighbour discovery.
    /// Loopback and `pkt` have none (their header is only the stack's
    /// internal framing); what they send goes to the one peer there is.
    pub fn has_link_layer(self) -> bool {
        !matches!(self, IfKind::Loopback | IfKind::Pkt)
    }

    /// Whether the interface's link is part of the interface, made with
    /// it and never set with `if_set_link`.
    pub fn has_builtin_link(self) -> bool {
        matches!(self, IfKind::Loopback | IfKind::Pkt)
    }

    /// Links in memory skip checksums, as Linux's veth and loopback do
    /// (frames cannot be corrupted there: this process's memory, or the
    /// shared memory of a shmif bus, which only our kernels attach to);
    /// a tap leads to the host kernel and carries real ones, and so does
    /// `pkt`, whose packets are for test tools to check. Forwarding
    /// onto a link that needs checksums fills them in.
    pub fn offloads_checksums(self) -> bool {
        matches!(self, IfKind::Loopback | IfKind::Bus | IfKind::Shmif)
    }

    pub fn default_mtu(self) -> usize {
        match self {
            IfKind::Loopback => 65535 - ETH_HDR,
            _ => 1500,
        }
    }
}

/// Where an interface's frames go. Implementations never call back into
/// the sending stack while the caller holds a stack lock: the stack calls
/// `transmit` with no lock held.
pub(crate) trait Link: Send + Sync {
    /// Sends one Ethernet frame. Returns the buffer if the link copied the
    /// frame, so the caller can reuse it.
    fn transmit(&self, frame: Vec<u8>) -> Option<Vec<u8>>;
    /// Sends several frames in order; returns the buffers it copied. Links
    /// that can hand frames over in one go (a bus delivering a burst of
    /// segments to one stack, which then answers once) override this.
    fn transmit_batch(&self, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        frames
            .into_iter()
            .filter_map(|f| self.transmit(f))
            .collect()
    }
    /// Stops the link's threads and detaches it from its medium.
    fn detach(&self);
    /// The interface's MAC address changed (links that filter by address
    /// need to know).
    fn set_mac(&self, mac: [u8; 6]) {
        let _ = mac;
    }
}

/// Per-interface counters, updated without the stack lock.
#[derive(Default)]
pub(crate) struct IfCounters {
    pub rx_packets: AtomicU64,
    pub rx_bytes: AtomicU64,
    pub rx_errors: AtomicU64,
    pub rx_dropped: AtomicU64,
    pub tx_packets: AtomicU64,
    pub tx_bytes: AtomicU64,
    pub tx_errors: AtomicU64,
    pub tx_dropped: AtomicU64,
}

impl IfCounters {
    pub fn snapshot(&self) -> IfStats {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        IfStats {
            rx_packets: l(&self.rx_packets),
            rx_bytes: l(&self.rx_bytes),
            rx_errors: l(&self.rx_errors),
            rx_dropped: l(&self.rx_dropped),
            tx_packets: l(&self.tx_packets),
            tx_bytes: l(&self.tx_bytes),
            tx_errors: l(&self.tx_errors),
            tx_dropped: l(&self.tx_dropped),
        }
    }
}

/// The part of an interface used outside the stack lock.
pub(crate) struct IfShared {
    pub index: usize,
    pub name: String,
    pub stats: IfCounters,
    pub has_pcap: AtomicBool,
    /// The capture file. A sleeping lock: its holder writes to a host
    /// file (a hypercall that may block), and it is only ever taken with
    /// no stack lock held, except to take the file out.
    pub pcap: SleepMutex<Option<Pcap>>,
}

impl IfShared {
    pub fn new(index: usize, name: String, sched: &Arc<Sched>) -> IfShared {
        IfShared {
            index,
            name,
            stats: IfCounters::default(),
            has_pcap: AtomicBool::new(false),
            pcap: SleepMutex::new(sched, None),
        }
    }

    /// Writes `frame` to the capture file, if one is open. The capture
    /// lock is the interface's own; no stack lock is held here.
    pub fn capture(&self, now_wall: hyper::Timespec, frame: &[u8]) {
        if !self.has_pcap.load(Ordering::Relaxed) {
            return;
        }
        let mut g = self.pcap.lock();
        g.blocking(|p| {
            if let Some(p) = p.as_mut() {
                p.record(now_wall, frame);
            }
        });
    }
}

/// An interface as the stack keeps it, under the stack lock.
pub(crate) struct Iface {
    pub shared: Arc<IfShared>,
    pub kind: IfKind,
    pub link_name: String,
    pub link: Option<Arc<dyn Link>>,
    pub mac: [u8; 6],
    /// IP MTU (bytes of IP packet per frame).
    pub mtu: usize,
    pub up: bool,
    pub addrs: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses with their prefix lengths; Ethernet interfaces
    /// start with a link-local address made from their MAC (RFC 4862 §5.3).
    pub addrs6: Vec<(Ipv6Addr, u8)>,
    /// Checksums are neither computed nor verified on this link.
    pub offload: bool,
    /// smoltcp's per-interface state for the TCP connections routed here
    /// (MTU, checksum policy, ISN randomness).
    pub smol: Interface,
    pub arp: ArpTable,
    /// The packet queue of a `pkt` interface (also its `link`, typed).
    pub pkt: Option<Arc<crate::pktif::PktLink>>,
}

impl Iface {
    pub fn new(
        index: usize,
        name: String,
        kind: IfKind,
        mac: [u8; 6],
        seed: u64,
        pool: &FramePool,
        sched: &Arc<Sched>,
    ) -> Iface {
        let mtu = kind.default_mtu();
        let offload = kind.offloads_checksums();
        let smol = new_smol(mtu, offload, seed, pool);
        let addrs6 = match kind {
            IfKind::Loopback => alloc::vec![(Ipv6Addr::LOCALHOST, 128)],
            // No MAC to derive it from: a random interface identifier,
            // fixed for the interface's life (RFC 4291 §2.5.1 asks only
            // that it be unique on the link, and the link has one end).
            IfKind::Pkt => {
                let b = seed.rotate_left(29).to_le_bytes();
                alloc::vec![(link_local([b[0] & 0xfc, b[1], b[2], b[3], b[4], b[5]]), 64)]
            }
            _ => alloc::vec![(link_local(mac), 64)],
        };
        Iface {
            shared: Arc::new(IfShared::new(index, name, sched)),
            kind,
            link_name: String::new(),
            link: None,
            mac,
            mtu,
            up: false,
            addrs: Vec::new(),
            addrs6,
            offload,
            smol,
            arp: ArpTable::with_seed(seed.rotate_left(17)),
            pkt: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    pub fn index(&self) -> usize {
        self.shared.index
    }

    /// Rebuilds smoltcp's state after an MTU change.
    pub fn set_mtu(&mut self, mtu: usize, seed: u64, pool: &FramePool) {
        self.mtu = mtu;
        self.smol = new_smol(mtu, self.offload, seed, pool);
    }

    /// The first address of the interface, the source for packets it
    /// originates.
    pub fn primary_addr(&self) -> Option<Ipv4Addr> {
        self.addrs.first().map(|a| a.0)
    }

    /// Whether `ip` is one of this interface's addresses.
    pub fn has_addr(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|a| a.0 == ip)
    }

    /// Whether `ip` is one of this interface's IPv6 addresses.
    pub fn has_addr6(&self, ip: Ipv6Addr) -> bool {
        self.addrs6.iter().any(|a| a.0 == ip)
    }

    /// Whether `ip` (either family) is one of this interface's addresses.
    pub fn has_ip(&self, ip: IpAddr) -> bool {
        match ip {
            IpAddr::V4(a) => self.has_addr(a),
            IpAddr::V6(a) => self.has_addr6(a),
        }
    }

    /// The interface's link-local IPv6 address, if it has one.
    pub fn link_local6(&self) -> Option<Ipv6Addr> {
        self.addrs6
            .iter()
            .map(|a| a.0)
            .find(|a| a.is_unicast_link_local())
    }

    /// The source address for IPv6 packets to `dst` leaving through this
    /// interface (RFC 6724, simplified): an address whose network holds
    /// `dst`, else a global address for a global destination, else the
    /// link-local one.
    pub fn source6(&self, dst: Ipv6Addr) -> Option<Ipv6Addr> {
        if let Some(a) = self
            .addrs6
            .iter()
            .filter(|&&(a, p)| in_subnet6(dst, a, p))
            .max_by_key(|a| a.1)
        {
            return Some(a.0);
        }
        let global = self
            .addrs6
            .iter()
            .map(|a| a.0)
            .find(|a| !a.is_unicast_link_local());
        if dst.is_unicast_link_local() || dst.is_multicast() {
            self.link_local6().or(global)
        } else {
            global.or_else(|| self.link_local6())
        }
    }

    /// Whether a frame for IPv6 destination `ip` concerns this interface:
    /// one of its addresses, all-nodes, or the solicited-node group of one
    /// of its addresses (RFC 4291 §2.7.1).
    pub fn accepts6(&self, ip: Ipv6Addr) -> bool {
        if self.has_addr6(ip) || ip == ALL_NODES {
            return true;
        }
        ip.is_multicast() && self.addrs6.iter().any(|&(a, _)| solicited_node(a) == ip)
    }

    /// Whether `ip` is the broadcast address of one of its networks.
    pub fn is_subnet_broadcast(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|&(a, p)| {
            p < 31 && {
                let mask = prefix_mask(p);
                (u32::from(a) | !mask) == u32::from(ip)
            }
        })
    }

    pub fn caps(&self) -> DeviceCapabilities {
        caps(self.mtu, self.offload)
    }
}

fn caps(mtu: usize, offload: bool) -> DeviceCapabilities {
    let mut c = DeviceCapabilities::default();
    c.medium = Medium::Ip;
    c.max_transmission_unit = mtu;
    c.checksum = if offload {
        ChecksumCapabilities::ignored()
    } else {
        ChecksumCapabilities::default()
    };
    c
}

fn new_smol(mtu: usize, offload: bool, seed: u64, pool: &FramePool) -> Interface {
    let mut cfg = Config::new(HardwareAddress::Ip);
    cfg.random_seed = seed;
    let mut out = Vec::new();
    let mut dev = SmolDev::new(None, &mut out, pool, caps(mtu, offload));
    let mut i = Interface::new(cfg, &mut dev, Instant::from_micros(0));
    // The stack decides which packets are ours before smoltcp sees them,
    // and gives every connection an explicit local address.
    i.set_any_ip(true);
    i
}

/// `ff02::1`, all nodes on the link.
pub(crate) const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The link-local address made from a MAC address (modified EUI-64,
/// RFC 4291 appendix A).
pub(crate) fn link_local(mac: [u8; 6]) -> Ipv6Addr {
    let mut b = [0u8; 16];
    b[0] = 0xfe;
    b[1] = 0x80;
    b[8] = mac[0] ^ 0x02;
    b[9] = mac[1];
    b[10] = mac[2];
    b[11] = 0xff;
    b[12] = 0xfe;
    b[13] = mac[3];
    b[14] = mac[4];
    b[15] = mac[5];
    Ipv6Addr::from(b)
}

/// The solicited-node multicast group of `ip` (RFC 4291 §2.7.1).
pub(crate) fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    let mut b = [0u8; 16];
    b[0] = 0xff;
    b[1] = 0x02;
    b[11] = 0x01;
    b[12] = 0xff;
    b[13..].copy_from_slice(&o[13..]);
    Ipv6Addr::from(b)
}

/// The Ethernet address an IPv6 multicast group maps to (RFC 2464 §7).
pub(crate) fn multicast_mac(ip: Ipv6Addr) -> [u8; 6] {
    let o = ip.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// Whether `ip` lies in `net/prefix` (IPv6).
pub(crate) fn in_subnet6(ip: Ipv6Addr, net: Ipv6Addr, prefix: u8) -> bool {
    let p = prefix.min(128) as u32;
    if p == 0 {
        return true;
    }
    let m = u128::MAX << (128 - p);
    u128::from(ip) & m == u128::from(net) & m
}

/// Whether `ip` lies in `net/prefix`, for addresses of either family
/// (never across families).
pub(crate) fn in_subnet_ip(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => in_subnet(a, n, prefix),
        (IpAddr::V6(a), IpAddr::V6(n)) => in_subnet6(a, n, prefix),
        _ => false,
    }
}

/// `addr/prefix` with the host bits cleared.
pub(crate) fn network_of(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & prefix_mask(prefix))),
        IpAddr::V6(a) => {
            let p = prefix.min(128) as u32;
            let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// The network mask of a prefix length.
pub(crate) fn prefix_mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32) as u32)
    }
}

/// Whether `ip` lies in `net/prefix`.
pub(crate) fn in_subnet(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let m = prefix_mask(prefix);
    u32::from(ip) & m == u32::from(net) & m
}

/// The device smoltcp sees: at most one received IP packet, and a list
/// that collects what it transmits (IP packets in frame buffers with
/// [`ETH_HDR`] bytes of headroom).
pub(crate) struct SmolDev<'a> {
    rx: Option<&'a [u8]>,
    tx: &'a mut Vec<Vec<u8>>,
    pool: &'a FramePool,
    caps: DeviceCapabilities,
}

impl<'a> SmolDev<'a> {
    pub fn new(
        rx: Option<&'a [u8]>,
        tx: &'a mut Vec<Vec<u8>>,
        pool: &'a FramePool,
        caps: DeviceCapabilities,
    ) -> Self {
        SmolDev { rx, tx, pool, caps }
    }
}

pub(crate) struct SmolRx<'a>(&'a [u8]);

pub(crate) struct SmolTx<'a> {
    tx: &'a mut Vec<Vec<u8>>,
    pool: &'a FramePool,
}

impl RxToken for SmolRx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.0)
    }
}

impl TxToken for SmolTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        let mut buf = self.pool.get(ETH_HDR + len);
        let r = f(&mut buf[ETH_HDR..]);
        self.tx.push(buf);
        r
    }
}

impl Device for SmolDev<'_> {
    type RxToken<'b>
        = SmolRx<'b>
    where
        Self: 'b;
    type TxToken<'b>
        = SmolTx<'b>
    where
        Self: 'b;

    fn receive(&mut self, _t: Instant) -> Option<(Self::RxToken<'_>, Self::TxToken<'_>)> {
        let rx = self.rx.take()?;
        Some((
            SmolRx(rx),
            SmolTx {
                tx: self.tx,
                pool: self.pool,
            },
        ))
    }

    fn transmit(&mut self, _t: Instant) -> Option<Self::TxToken<'_>> {
        Some(SmolTx {
            tx: self.tx,
            pool: self.pool,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        self.caps.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(IfKind::parse("lo0"), Some((IfKind::Loopback, Some(0))));
        assert_eq!(IfKind::parse("shmif12"), Some((IfKind::Shmif, Some(12))));
        assert_eq!(IfKind::parse("bus"), Some((IfKind::Bus, None)));
        assert_eq!(IfKind::parse("pkt0"), Some((IfKind::Pkt, Some(0))));
        assert_eq!(IfKind::parse("pkt"), Some((IfKind::Pkt, None)));
        assert_eq!(IfKind::parse("pkt0a"), None);
        assert!(!IfKind::Pkt.has_link_layer() && !IfKind::Pkt.offloads_checksums());
        assert_eq!(IfKind::parse("virt01"), None);
        assert_eq!(IfKind::parse("eth0"), None);
        assert_eq!(IfKind::parse("bus0x"), None);
        assert_eq!(IfKind::parse("bus999999"), None);
    }

    #[test]
    fn ipv6_helpers() {
        let ll = link_local([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
        assert_eq!(ll, "fe80::5054:ff:fe12:3456".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            solicited_node("2001:db8::1:2:3".parse().unwrap()),
            "ff02::1:ff02:3".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac("ff02::1:ff02:3".parse().unwrap()),
            [0x33, 0x33, 0xff, 0x02, 0x00, 0x03]
        );
        let net: Ipv6Addr = "2001:db8::".parse().unwrap();
        assert!(in_subnet6("2001:db8::77".parse().unwrap(), net, 64));
        assert!(!in_subnet6("2001:db9::77".parse().unwrap(), net, 64));
        assert!(in_subnet6("::1".parse().unwrap(), net, 0));
        assert_eq!(
            network_of("2001:db8::77".parse().unwrap(), 120),
            "2001:db8::".parse::<IpAddr>().unwrap()
        );
        assert!(!in_subnet_ip(
            "10.0.0.1".parse().unwrap(),
            "::".parse().unwrap(),
            0
        ));
    }

    #[test]
    fn masks() {
        assert_eq!(prefix_mask(0), 0);
        assert_eq!(prefix_mask(8), 0xff00_0000);
        assert_eq!(prefix_mask(32), u32::MAX);
        assert!(in_subnet(
            Ipv4Addr::new(10, 1, 2, 3),
            Ipv4Addr::new(10, 0, 0, 0),
            8
        ));
        assert!(!in_subnet(
            Ipv4Addr::new(11, 1, 2, 3),
            Ipv4Addr::new(10, 0, 0, 0),
            8
        ));
    }
}
