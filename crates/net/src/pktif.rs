//! pkt: an interface whose wire is an API, for test tools that drive the
//! stack with hand-made packets (scapy and the like) without a tap device
//! or root.
//!
//! A `pktN` interface carries bare IP packets, as a Linux tun device in
//! `IFF_TUN | IFF_NO_PI` mode does: no link header, no ARP or neighbour
//! discovery, IPv4 or IPv6 by the version nibble of the first byte. Its
//! [`PacketPort`] ([`Stack::packet_port`]) is the other end of the wire:
//! [`PacketPort::inject`] hands the stack a packet as if it had arrived on
//! the interface, and [`PacketPort::recv`] takes the oldest packet the
//! stack sent out of it. Packets leaving carry real checksums and arriving
//! ones have theirs verified (no offload, as on a tap).
//!
//! Inside the stack every interface is Ethernet-framed (see `iface.rs`):
//! the port puts a header with zero addresses in front of an injected
//! packet, and strips the one the stack wrote from a sent packet. A
//! capture of a `pktN` interface therefore shows both directions with
//! that zero-address header, as captures of `lo0` do.
//!
//! Sent packets wait in a queue of at most [`PKT_QUEUE_LEN`] packets; when
//! it is full, new ones are dropped and counted in the interface's
//! `tx_dropped` (its `tx_packets` counts every packet the stack sent,
//! dropped or not). A reader blocked in `recv` sleeps on the port's wait
//! queue through the kernel ([`kern::Kernel::wait`]), and wakes with
//! `ENXIO` when the interface is destroyed or `ESHUTDOWN` when the kernel
//! halts.
//!
//! Neighbours: `config.rs` creates the interface and its link
//! ([`PktLink`]); `stack.rs` runs the input path a packet enters.

use alloc::collections::VecDeque;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use core::time::Duration;

use kern::sync::{SpinMutex, WaitQueue};
use kern::{Errno, WeakKernel};

use crate::iface::{IfKind, IfShared, Link, ETH_HDR};
use crate::stack::Stack;

/// Packets a `pktN` interface holds for its reader before it drops new
/// ones.
pub const PKT_QUEUE_LEN: usize = 1024;

/// The largest packet [`PacketPort::inject`] takes (the IPv4 and IPv6
/// length fields' limit).
pub const PKT_MAX: usize = 65535;

/// The link of a `pktN` interface: the queue of packets the stack sent,
/// and the wait queue of its readers.
pub(crate) struct PktLink {
    shared: Arc<IfShared>,
    out: SpinMutex<OutQueue>,
    readers: WaitQueue,
}

struct OutQueue {
    packets: VecDeque<Vec<u8>>,
    /// The interface was destroyed (or the stack halted): nothing more
    /// comes, and readers fail.
    is_closed: bool,
}

impl PktLink {
    pub(crate) fn new(shared: Arc<IfShared>) -> PktLink {
        PktLink {
            shared,
            out: SpinMutex::new(OutQueue {
                packets: VecDeque::new(),
                is_closed: false,
            }),
            readers: WaitQueue::new(),
        }
    }

    /// The oldest packet, `Err(ENXIO)` once closed, `Ok(None)` if none.
    fn take(&self) -> Result<Option<Vec<u8>>, Errno> {
        let mut q = self.out.lock();
        if q.is_closed {
            return Err(Errno::ENXIO);
        }
        Ok(q.packets.pop_front())
    }

    fn is_closed(&self) -> bool {
        self.out.lock().is_closed
    }
}

impl Link for PktLink {
    fn transmit(&self, frame: Vec<u8>) -> Option<Vec<u8>> {
        // The queue keeps a packet-sized copy: the frame buffer is a
        // pooled one with room for the largest frame, and a thousand of
        // those would hold 64 MiB.
        let pkt = frame.get(ETH_HDR..).map(<[u8]>::to_vec);
        let queued = {
            let mut q = self.out.lock();
            match pkt {
                Some(p) if !q.is_closed && q.packets.len() < PKT_QUEUE_LEN => {
                    q.packets.push_back(p);
                    true
                }
                _ => false,
            }
        };
        if queued {
            self.readers.wake_one();
        } else {
            self.shared.stats.tx_dropped.fetch_add(1, Ordering::Relaxed);
        }
        Some(frame)
    }

    fn detach(&self) {
        {
            let mut q = self.out.lock();
            q.is_closed = true;
            q.packets.clear();
        }
        self.readers.wake_all();
    }
}

/// The API end of a `pktN` interface's wire; see the module docs. Ports of
/// one interface share its queue: each sent packet goes to one reader.
pub struct PacketPort {
    stack: Weak<Stack>,
    kernel: WeakKernel,
    ifindex: usize,
    link: Arc<PktLink>,
}

impl core::fmt::Debug for PacketPort {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PacketPort")
            .field("ifname", &self.link.shared.name)
            .finish_non_exhaustive()
    }
}

impl PacketPort {
    /// The interface's name.
    pub fn ifname(&self) -> &str {
        &self.link.shared.name
    }

    /// Hands `pkt`, a bare IPv4 or IPv6 packet, to the stack as if it had
    /// arrived on the interface, and processes it in the calling thread
    /// (answers it may cause are queued for [`PacketPort::recv`] before
    /// this returns, unless another thread is transmitting for the stack
    /// at that moment: that thread then hands them over, and `recv` waits
    /// for them). `EINVAL` if `pkt` is empty or longer than
    /// [`PKT_MAX`]; `ENXIO` once the interface is destroyed; `ESHUTDOWN`
    /// after halt. A malformed packet (a version other than 4 or 6, a bad
    /// header, length or checksum) is not an error here: the stack drops
    /// it as it would from a wire and counts it (`rx_errors` of the
    /// interface, or the protocol's counters). So is a packet arriving
    /// while the interface is down (`rx_dropped`).
    pub fn inject(&self, pkt: &[u8]) -> Result<(), Errno> {
        if pkt.is_empty() || pkt.len() > PKT_MAX {
            return Err(Errno::EINVAL);
        }
        let stack = self.stack.upgrade().ok_or(Errno::ESHUTDOWN)?;
        if stack.is_halted() {
            return Err(Errno::ESHUTDOWN);
        }
        if self.link.is_closed() {
            return Err(Errno::ENXIO);
        }
        let ethertype: u16 = match pkt[0] >> 4 {
            4 => 0x0800,
            6 => 0x86dd,
            // Neither: the input path counts it as a bad frame.
            _ => 0,
        };
        let mut frame = stack.pool.get(ETH_HDR + pkt.len());
        frame[..12].fill(0);
        frame[12..ETH_HDR].copy_from_slice(&ethertype.to_be_bytes());
        frame[ETH_HDR..].copy_from_slice(pkt);
        stack.input_on(self.ifindex, Some(&self.link.shared), frame);
        Ok(())
    }

    /// Takes the oldest packet the stack sent out of the interface into
    /// `buf` and returns its length. A packet longer than `buf` fills it
    /// and the rest is discarded; the length returned is still the whole
    /// packet's (as `recv` with `MSG_TRUNC` on a datagram socket), so a
    /// caller sees that it lost bytes. `timeout`: `None` waits as long as
    /// it takes, `Some(Duration::ZERO)` only looks; `EAGAIN` when it
    /// passes with nothing to take. `ENXIO` once the interface is
    /// destroyed, `ESHUTDOWN` once the kernel halts (a blocked call wakes
    /// with these).
    pub fn recv(&self, buf: &mut [u8], timeout: Option<Duration>) -> Result<usize, Errno> {
        let k = self.kernel.upgrade().ok_or(Errno::ESHUTDOWN)?;
        k.check()?;
        let pkt = match timeout {
            Some(t) if t.is_zero() => self.link.take()?.ok_or(Errno::EAGAIN)?,
            _ => {
                let deadline = timeout.map(|t| {
                    let ns = u64::try_from(t.as_nanos()).unwrap_or(u64::MAX);
                    k.now().saturating_add(ns)
                });
                match k.wait(&[&self.link.readers], deadline, || self.link.take()) {
                    Err(Errno::ETIMEDOUT) => return Err(Errno::EAGAIN),
                    r => r?,
                }
            }
        };
        // Another reader may be waiting for the next packet: a transmit
        // woke only one (this) thread.
        if self.link.out.lock().packets.front().is_some() {
            self.link.readers.wake_one();
        }
        let n = pkt.len().min(buf.len());
        buf[..n].copy_from_slice(&pkt[..n]);
        Ok(pkt.len())
    }

    /// Packets waiting to be read.
    pub fn pending(&self) -> usize {
        self.link.out.lock().packets.len()
    }
}

impl Stack {
    /// The port of `pktN` interface `ifname`. `ENXIO` if there is no such
    /// interface, `ENODEV` if it is not a `pkt` interface, `ESHUTDOWN`
    /// after halt.
    pub fn packet_port(&self, ifname: &str) -> Result<Arc<PacketPort>, Errno> {
        if self.is_halted() {
            return Err(Errno::ESHUTDOWN);
        }
        let (ifindex, link) = self.with_core(|c, _| {
            let i = c.iface_by_name(ifname).ok_or(Errno::ENXIO)?;
            if i.kind != IfKind::Pkt {
                return Err(Errno::ENODEV);
            }
            let link = i.pkt.clone().ok_or(Errno::ENXIO)?;
            Ok((i.index(), link))
        })?;
        Ok(Arc::new(PacketPort {
            stack: self.this.clone(),
            kernel: self.kernel.clone(),
            ifindex,
            link,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kern::sync::Sched;

    fn link() -> PktLink {
        let hyper: Arc<dyn hyper::Hyper> = Arc::new(hyper_posix::PosixHyper::new());
        let sched = Sched::new(hyper);
        PktLink::new(Arc::new(IfShared::new(1, "pkt0".into(), &sched)))
    }

    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = alloc::vec![0u8; ETH_HDR];
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn queue_strips_the_header_keeps_order_and_bounds() {
        let l = link();
        assert_eq!(l.take(), Ok(None));
        let back = l.transmit(frame(&[0x45, 1])).unwrap();
        assert_eq!(back.len(), ETH_HDR + 2, "the frame buffer comes back");
        l.transmit(frame(&[0x45, 2]));
        assert_eq!(l.take(), Ok(Some(alloc::vec![0x45, 1])));
        assert_eq!(l.take(), Ok(Some(alloc::vec![0x45, 2])));
        for i in 0..PKT_QUEUE_LEN + 10 {
            l.transmit(frame(&[0x45, i as u8]));
        }
        assert_eq!(l.out.lock().packets.len(), PKT_QUEUE_LEN);
        assert_eq!(l.shared.stats.tx_dropped.load(Ordering::Relaxed), 10);
        // The oldest stay; the newest were dropped.
        assert_eq!(l.take(), Ok(Some(alloc::vec![0x45, 0])));
        // A frame shorter than a header is dropped, not a panic.
        l.transmit(alloc::vec![1, 2, 3]);
        assert_eq!(l.shared.stats.tx_dropped.load(Ordering::Relaxed), 11);
    }

    fn stack() -> (kern::Kernel, Arc<Stack>) {
        let hyper: Arc<dyn hyper::Hyper> = Arc::new(hyper_posix::PosixHyper::new());
        let config = kern::KernelConfig {
            components: alloc::vec![
                Arc::new(crate::NetComponent::default()) as Arc<dyn kern::Component>
            ],
            ..Default::default()
        };
        let k = kern::Kernel::boot(hyper, config).unwrap();
        let s = crate::stack_of(&k).unwrap();
        (k, s)
    }

    /// An ICMP echo request from 10.9.0.2 to 10.9.0.1 (RFC 792).
    fn echo_request() -> Vec<u8> {
        use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr};
        let data = b"pkt echo";
        let icmp = Icmpv4Repr::EchoRequest {
            ident: 0x77,
            seq_no: 3,
            data,
        };
        let ip = Ipv4Repr {
            src_addr: core::net::Ipv4Addr::new(10, 9, 0, 2),
            dst_addr: core::net::Ipv4Addr::new(10, 9, 0, 1),
            next_header: IpProtocol::Icmp,
            payload_len: icmp.buffer_len(),
            hop_limit: 64,
        };
        let mut b = alloc::vec![0u8; ip.buffer_len() + icmp.buffer_len()];
        let caps = smoltcp::phy::ChecksumCapabilities::default();
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        ip.emit(&mut p, &caps);
        icmp.emit(&mut Icmpv4Packet::new_unchecked(p.payload_mut()), &caps);
        b
    }

    #[test]
    fn echo_through_a_port() {
        use smoltcp::wire::{Icmpv4Packet, Icmpv4Repr, Ipv4Packet};
        let (k, s) = stack();
        assert_eq!(s.packet_port("pkt0").unwrap_err(), Errno::ENXIO);
        assert_eq!(s.packet_port("lo0").unwrap_err(), Errno::ENODEV);
        assert_eq!(s.if_create("pkt0").unwrap(), "pkt0");
        let ip = core::net::Ipv4Addr::new(10, 9, 0, 1);
        s.if_add_addr("pkt0", ip.into(), 24).unwrap();
        s.if_set_up("pkt0", true).unwrap();
        let port = s.packet_port("pkt0").unwrap();
        assert_eq!(port.ifname(), "pkt0");
        port.inject(&echo_request()).unwrap();
        let mut buf = [0u8; 256];
        let n = port.recv(&mut buf, Some(Duration::ZERO)).unwrap();
        let p = Ipv4Packet::new_checked(&buf[..n]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.src_addr(), ip);
        let icmp = Icmpv4Packet::new_checked(p.payload()).unwrap();
        assert!(icmp.verify_checksum());
        let caps = smoltcp::phy::ChecksumCapabilities::default();
        assert_eq!(
            Icmpv4Repr::parse(&icmp, &caps).unwrap(),
            Icmpv4Repr::EchoReply {
                ident: 0x77,
                seq_no: 3,
                data: b"pkt echo"
            }
        );
        // Neither IPv4 nor IPv6: dropped and counted.
        let errors = |s: &Stack| {
            s.if_list()
                .into_iter()
                .find(|i| i.name == "pkt0")
                .unwrap()
                .stats
                .rx_errors
        };
        let before = errors(&s);
        port.inject(&[0x70, 1, 2, 3]).unwrap();
        assert_eq!(errors(&s), before + 1);
        assert_eq!(
            port.recv(&mut buf, Some(Duration::ZERO)),
            Err(Errno::EAGAIN)
        );
        assert_eq!(port.inject(&[]), Err(Errno::EINVAL));
        assert_eq!(port.inject(&[0x45; PKT_MAX + 1]), Err(Errno::EINVAL));
        // The index of a destroyed interface goes to the next one made;
        // the old port does not reach it.
        s.if_destroy("pkt0").unwrap();
        assert_eq!(s.if_create("pkt1").unwrap(), "pkt1");
        s.if_add_addr("pkt1", ip.into(), 24).unwrap();
        s.if_set_up("pkt1", true).unwrap();
        assert_eq!(port.inject(&echo_request()), Err(Errno::ENXIO));
        let new = s.packet_port("pkt1").unwrap();
        assert_eq!(new.pending(), 0);
        k.halt();
        assert_eq!(new.recv(&mut buf, None), Err(Errno::ESHUTDOWN));
        assert_eq!(s.packet_port("pkt1").unwrap_err(), Errno::ESHUTDOWN);
    }

    #[test]
    fn detach_closes() {
        let l = link();
        l.transmit(frame(&[0x60]));
        l.detach();
        assert_eq!(l.take(), Err(Errno::ENXIO));
        l.transmit(frame(&[0x60]));
        assert_eq!(l.take(), Err(Errno::ENXIO));
    }
}
