//! Network configuration, the typed equivalents of the `SIOC*` ioctls and
//! routing-socket messages: create and destroy interfaces, set their link
//! (bus name, bus file, tap), MAC, MTU, addresses and up/down state, start
//! and stop captures, add and delete routes, and read the ARP table and
//! the counters. The system-call layer exposes each as a call.
//!
//! Links are opened and closed without the stack lock held (opening a bus
//! file or a tap device is host I/O), then installed under it.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::IpAddr;
use core::sync::atomic::Ordering;

use hyper::BlockOpenFlags;
use kern::Errno;

use crate::addr::{ArpInfo, IfInfo, NetStats, RouteInfo, RouteSpec};
use crate::iface::{in_subnet_ip, network_of, IfKind, Iface, Link, MAX_ADDRS};
use crate::pcap::Pcap;
use crate::pump::Pump;
use crate::route::StaticRoute;
use crate::stack::Stack;

/// Interfaces per kernel.
pub const MAX_IFACES: usize = 256;
/// Smallest IP MTU (RFC 791's 68).
pub const MIN_MTU: u32 = 68;

impl Stack {
    /// Creates an interface. `name` is a kind prefix with a unit number
    /// (`bus0`, `shmif3`, `pkt0`) or without one (`bus`: the lowest free
    /// unit).
    /// Returns the name made. `EEXIST` if it exists, `EINVAL` for an
    /// unknown kind.
    pub fn if_create(&self, name: &str) -> Result<String, Errno> {
        let (kind, unit) = IfKind::parse(name).ok_or(Errno::EINVAL)?;
        let mut mac = [0u8; 6];
        self.hyper.random_fill(&mut mac[2..]);
        // NetBSD's shmif/virt prefix: locally administered, unicast.
        mac[0] = 0xb2;
        mac[1] = 0xa0;
        let name = self.with_core(|c, _| {
            let name = match unit {
                Some(_) => String::from(name),
                None => (0..)
                    .map(|u| format!("{}{}", kind.prefix(), u))
                    .find(|n| c.iface_by_name(n).is_none())
                    .unwrap_or_default(),
            };
            if c.iface_by_name(&name).is_some() {
                return Err(Errno::EEXIST);
            }
            let index = match c.ifs.iter().position(|i| i.is_none()) {
                Some(i) => i,
                None if c.ifs.len() < MAX_IFACES => {
                    c.ifs.push(None);
                    c.ifs.len() - 1
                }
                None => return Err(Errno::ENOSPC),
            };
            let seed = c.next_seed();
            let mac = if kind.has_link_layer() { mac } else { [0; 6] };
            let iface = Iface::new(
                index,
                name.clone(),
                kind,
                mac,
                seed,
                &self.pool,
                &self.sched,
            );
            let iface = c.ifs[index].insert(iface);
            // Links that are part of the interface come with it (no host
            // I/O to open them).
            match kind {
                IfKind::Loopback => {
                    iface.link = Some(Arc::new(LoopLink {
                        stack: self.this.clone(),
                        ifindex: index,
                        pump: Pump::new(),
                    }));
                }
                IfKind::Pkt => {
                    let link = Arc::new(crate::pktif::PktLink::new(iface.shared.clone()));
                    iface.link = Some(link.clone());
                    iface.pkt = Some(link);
                }
                IfKind::Bus | IfKind::Shmif | IfKind::Virt => {}
            }
            Ok(name)
        })?;
        Ok(name)
    }

    /// Destroys an interface: its link is closed, its routes, addresses and
    /// the connections using it go. `lo0` stays (`EPERM`, as on NetBSD).
    pub fn if_destroy(&self, name: &str) -> Result<(), Errno> {
        if name == "lo0" {
            return Err(Errno::EPERM);
        }
        let link = self.with_core(|c, fx| {
            let idx = c.index_of(name)?;
            let mut iface = c.ifs[idx].take().ok_or(Errno::ENXIO)?;
            c.routes.forget_iface(idx);
            // Connections routed through it are reset.
            let doomed: Vec<_> = c
                .socks
                .refs()
                .into_iter()
                .filter(|r| {
                    matches!(c.socks.get(*r).map(|s| &s.proto),
                        Some(crate::stack::Proto::Tcp(t)) if t.conn().is_some_and(|cn| cn.ifindex == idx))
                })
                .collect();
            for r in doomed {
                if let Some(s) = c.socks.get_mut(r) {
                    s.error.get_or_insert(Errno::ENETDOWN);
                    if let crate::stack::Proto::Tcp(t) = &mut s.proto {
                        if let Some(tuple) = t.tuple() {
                            c.tcp_conns.remove(&tuple);
                        }
                        t.state = crate::tcp::TcpState::Failed;
                    }
                    let orphan = s.orphan;
                    fx.wake(&s.shared.clone());
                    if orphan {
                        c.free_sock(r, fx);
                    }
                }
            }
            // The capture file is flushed (a host fdatasync) after the
            // stack lock is released.
            let pcap = iface.shared.pcap.lock().take();
            iface.shared.has_pcap.store(false, Ordering::Release);
            Ok((iface.link.take(), pcap))
        })?;
        let (link, pcap) = link;
        if let Some(p) = pcap {
            p.flush();
        }
        if let Some(l) = link {
            l.detach();
        }
        Ok(())
    }

    /// Sets the link of an Ethernet interface: the bus name (`busN`), the
    /// bus file (`shmifN`) or the tap device (`virtN`); `EINVAL` for `loN`
    /// and `pktN`, whose links come with them. `EBUSY` while the
    /// interface is up or already has a link (as NetBSD's `SIOCSLINKSTR`);
    /// an empty string removes the link of an interface that is down.
    pub fn if_set_link(&self, name: &str, link: &str) -> Result<(), Errno> {
        let (idx, kind, mac) = self.with_core(|c, _| {
            let i = c.iface_by_name(name).ok_or(Errno::ENXIO)?;
            if i.kind.has_builtin_link() {
                return Err(Errno::EINVAL);
            }
            if i.up {
                return Err(Errno::EBUSY);
            }
            if i.link.is_some() && !link.is_empty() {
                return Err(Errno::EBUSY);
            }
            Ok((i.index(), i.kind, i.mac))
        })?;
        if link.is_empty() {
            let old = self.with_core(|c, _| {
                c.iface_mut(idx).and_then(|i| {
                    i.link_name.clear();
                    i.link.take()
                })
            });
            if let Some(l) = old {
                l.detach();
            }
            return Ok(());
        }
        let made: Arc<dyn Link> = match kind {
            IfKind::Loopback | IfKind::Pkt => return Err(Errno::EINVAL),
            IfKind::Bus => {
                let reg = self.registry.as_ref().ok_or(Errno::ENXIO)?;
                crate::bus::attach(reg, link, self.this.clone(), idx, mac)?
            }
            IfKind::Shmif => crate::shmif::attach(self, link, idx, name)?,
            IfKind::Virt => crate::virtif::attach(self, link, idx, name)?,
        };
        let rejected = self.with_core(|c, _| match c.iface_mut(idx) {
            Some(i) if i.link.is_none() && i.shared.name == name => {
                i.link = Some(made.clone());
                i.link_name = String::from(link);
                None
            }
            _ => Some(made.clone()),
        });
        if let Some(l) = rejected {
            l.detach();
            return Err(Errno::EBUSY);
        }
        Ok(())
    }

    /// Sets the MAC address of an Ethernet interface (unicast only); its
    /// link-local IPv6 address follows. `EINVAL` for `loN` and `pktN`,
    /// which have none.
    pub fn if_set_mac(&self, name: &str, mac: [u8; 6]) -> Result<(), Errno> {
        if mac[0] & 1 != 0 || mac == [0; 6] {
            return Err(Errno::EINVAL);
        }
        self.with_core(|c, _| {
            let idx = c.index_of(name)?;
            let i = c.iface_mut(idx).ok_or(Errno::ENXIO)?;
            if !i.kind.has_link_layer() {
                return Err(Errno::EINVAL);
            }
            let old_ll = crate::iface::link_local(i.mac);
            for a in i.addrs6.iter_mut().filter(|a| a.0 == old_ll) {
                a.0 = crate::iface::link_local(mac);
            }
            i.mac = mac;
            i.arp.clear();
            if let Some(l) = &i.link {
                l.set_mac(mac);
            }
            Ok(())
        })
    }

    /// Sets the IP MTU.
    pub fn if_set_mtu(&self, name: &str, mtu: u32) -> Result<(), Errno> {
        if !(MIN_MTU..=65535 - 14).contains(&mtu) {
            return Err(Errno::EINVAL);
        }
        self.with_core(|c, _| {
            let idx = c.index_of(name)?;
            let seed = c.next_seed();
            let i = c.iface_mut(idx).ok_or(Errno::ENXIO)?;
            i.set_mtu(mtu as usize, seed, &self.pool);
            Ok(())
        })
    }

    /// Adds an IPv4 or IPv6 address with its prefix length. `EEXIST` if
    /// the address is already on some interface; `EINVAL` for a prefix
    /// too long, or an unspecified, broadcast or multicast address.
    pub fn if_add_addr(&self, name: &str, addr: IpAddr, prefix: u8) -> Result<(), Errno> {
        let bad = match addr {
            IpAddr::V4(a) => prefix > 32 || a.is_broadcast(),
            IpAddr::V6(_) => prefix > 128,
        };
        if bad || addr.is_unspecified() || addr.is_multicast() {
            return Err(Errno::EINVAL);
        }
        self.with_core(|c, _| {
            let idx = c.index_of(name)?;
            if c.ifs.iter().flatten().any(|i| i.has_ip(addr)) {
                return Err(Errno::EEXIST);
            }
            let i = c.iface_mut(idx).ok_or(Errno::ENXIO)?;
            if i.addrs.len() + i.addrs6.len() >= MAX_ADDRS {
                return Err(Errno::ENOSPC);
            }
            match addr {
                IpAddr::V4(a) => i.addrs.push((a, prefix)),
                IpAddr::V6(a) => i.addrs6.push((a, prefix)),
            }
            Ok(())
        })
    }

    /// Removes an address. `EADDRNOTAVAIL` if the interface lacks it.
    pub fn if_del_addr(&self, name: &str, addr: IpAddr) -> Result<(), Errno> {
        self.with_core(|c, _| {
            let idx = c.index_of(name)?;
            let i = c.iface_mut(idx).ok_or(Errno::ENXIO)?;
            let before = i.addrs.len() + i.addrs6.len();
            i.addrs.retain(|a| IpAddr::V4(a.0) != addr);
            i.addrs6.retain(|a| IpAddr::V6(a.0) != addr);
            if i.addrs.len() + i.addrs6.len() == before {
                return Err(Errno::EADDRNOTAVAIL);
            }
            i.arp.clear();
            Ok(())
        })
    }

    /// Brings an interface up or down. Down drops its ARP table.
    pub fn if_set_up(&self, name: &str, up: bool) -> Result<(), Errno> {
        self.with_core(|c, _| {
            let idx = c.index_of(name)?;
            let i = c.iface_mut(idx).ok_or(Errno::ENXIO)?;
            i.up = up;
            if !up {
                i.arp.clear();
            }
            Ok(())
        })
    }

    /// Starts (`Some(path)`, a host file, truncated) or stops (`None`)
    /// capturing an interface's frames, both directions, in pcap format.
    pub fn if_set_pcap(&self, name: &str, path: Option<&str>) -> Result<(), Errno> {
        let shared = self.with_core(|c, _| {
            c.iface_by_name(name)
                .map(|i| i.shared.clone())
                .ok_or(Errno::ENXIO)
        })?;
        let new = match path {
            Some(p) => {
                let k = self.kernel.upgrade().ok_or(Errno::ESHUTDOWN)?;
                kern::hostpolicy::check(&k, kern::hostpolicy::HostAccess::Pcap, p)?;
                let f = self.hyper.block_open(
                    p,
                    BlockOpenFlags {
                        writable: true,
                        create: true,
                    },
                )?;
                Some(Pcap::start(f)?)
            }
            None => None,
        };
        let on = new.is_some();
        let old = core::mem::replace(&mut *shared.pcap.lock(), new);
        shared.has_pcap.store(on, Ordering::Release);
        if let Some(p) = old {
            p.flush();
        }
        Ok(())
    }

    /// Every interface.
    pub fn if_list(&self) -> Vec<IfInfo> {
        self.with_core(|c, _| {
            c.ifs
                .iter()
                .flatten()
                .map(|i| IfInfo {
                    index: i.index() as u32,
                    name: i.name().into(),
                    kind: i.kind.describe().into(),
                    link: i.link_name.clone(),
                    mac: i.mac,
                    mtu: i.mtu as u32,
                    up: i.up,
                    addrs: i
                        .addrs
                        .iter()
                        .map(|&(a, p)| (IpAddr::V4(a), p))
                        .chain(i.addrs6.iter().map(|&(a, p)| (IpAddr::V6(a), p)))
                        .collect(),
                    pcap: i.shared.has_pcap.load(Ordering::Relaxed),
                    stats: i.shared.stats.snapshot(),
                })
                .collect()
        })
    }

    /// Adds a route. The interface is the named one, or the one whose
    /// network holds the gateway (`ENETUNREACH` if none does).
    pub fn route_add(&self, spec: &RouteSpec) -> Result<(), Errno> {
        let (dst, gw) = (spec.dst, spec.gateway);
        if spec.prefix > max_prefix(dst) || gw.is_some_and(|g| g.is_ipv4() != dst.is_ipv4()) {
            return Err(Errno::EINVAL);
        }
        self.with_core(|c, _| {
            let ifindex = match (&spec.ifname, gw) {
                (Some(n), _) => c.index_of(n)?,
                (None, Some(g)) => c
                    .ifs
                    .iter()
                    .flatten()
                    .find(|i| {
                        i.kind != IfKind::Loopback
                            && (i.addrs.iter().any(|&(a, p)| in_subnet_ip(g, a.into(), p))
                                || i.addrs6.iter().any(|&(a, p)| in_subnet_ip(g, a.into(), p)))
                    })
                    .map(|i| i.index())
                    .ok_or(Errno::ENETUNREACH)?,
                (None, None) => return Err(Errno::EINVAL),
            };
            c.routes.add(StaticRoute {
                dst,
                prefix: spec.prefix,
                gateway: gw,
                ifindex,
            })
        })
    }

    /// Deletes the route to `dst/prefix`.
    pub fn route_delete(&self, dst: IpAddr, prefix: u8) -> Result<(), Errno> {
        if prefix > max_prefix(dst) {
            return Err(Errno::EINVAL);
        }
        self.with_core(|c, _| c.routes.delete(dst, prefix))
    }

    /// The routing table: connected routes of interfaces that are up, then
    /// the static routes.
    pub fn route_list(&self) -> Vec<RouteInfo> {
        self.with_core(|c, _| {
            let mut v = Vec::new();
            for i in c.ifs.iter().flatten().filter(|i| i.up) {
                let all = i
                    .addrs
                    .iter()
                    .map(|&(a, p)| (IpAddr::V4(a), p))
                    .chain(i.addrs6.iter().map(|&(a, p)| (IpAddr::V6(a), p)));
                for (a, p) in all {
                    v.push(RouteInfo {
                        dst: network_of(a, p),
                        prefix: p,
                        gateway: None,
                        ifname: i.name().into(),
                        connected: true,
                    });
                }
            }
            for s in &c.routes.statics {
                v.push(RouteInfo {
                    dst: s.dst,
                    prefix: s.prefix,
                    gateway: s.gateway,
                    ifname: c
                        .iface(s.ifindex)
                        .map(|i| i.name().into())
                        .unwrap_or_default(),
                    connected: false,
                });
            }
            v
        })
    }

    /// The neighbour tables (ARP and NDP) of all interfaces.
    pub fn arp_list(&self) -> Vec<ArpInfo> {
        self.with_core(|c, _| {
            let mut v = Vec::new();
            for i in c.ifs.iter().flatten() {
                for (ip, mac) in i.arp.list() {
                    v.push(ArpInfo {
                        ifname: i.name().into(),
                        ip,
                        mac,
                    });
                }
            }
            v
        })
    }

    /// Removes a neighbour (ARP or NDP) entry. `ENOENT` if there is none.
    pub fn arp_delete(&self, ip: IpAddr) -> Result<(), Errno> {
        self.with_core(|c, _| {
            let mut found = false;
            for i in c.ifs.iter_mut().flatten() {
                found |= i.arp.remove(ip);
            }
            if found {
                Ok(())
            } else {
                Err(Errno::ENOENT)
            }
        })
    }

    /// Protocol counters.
    pub fn stats(&self) -> NetStats {
        self.with_core(|c, _| {
            let mut s = c.stats;
            s.tcp_conns = c.tcp_conns.len() as u64;
            let now = c.now;
            c.tcp_tw.expire(now);
            s.tcp_time_wait = c.tcp_tw.len() as u64;
            let r = c.reasm.stats();
            s.ip_reasm_timeouts = r.timeouts;
            s.ip_reasm_pending = c.reasm.in_progress() as u64;
            s.ip_reasm_bytes = c.reasm.bytes_held() as u64;
            s
        })
    }

    /// Number of sockets the stack holds (including connections that are
    /// closing and handshakes in progress).
    pub fn socket_count(&self) -> usize {
        self.core.lock().socks.len()
    }

    /// Feeds a raw Ethernet frame into interface `name` as if it had
    /// arrived on its link (fuzzing and bad-input tests).
    pub fn inject(&self, name: &str, frame: &[u8]) -> Result<(), Errno> {
        let idx = self.with_core(|c, _| c.index_of(name))?;
        let mut buf = self.pool.get(frame.len());
        buf.copy_from_slice(frame);
        self.input(idx, buf);
        Ok(())
    }
}

/// The longest prefix of `addr`'s family.
fn max_prefix(addr: IpAddr) -> u8 {
    if addr.is_ipv4() {
        32
    } else {
        128
    }
}

/// The loopback link: frames come back in through the stack's own input,
/// delivered by a [`Pump`] so a reply to a looped frame does not recurse.
struct LoopLink {
    stack: alloc::sync::Weak<Stack>,
    ifindex: usize,
    pump: Pump<Vec<Vec<u8>>>,
}

impl Link for LoopLink {
    fn transmit(&self, frame: Vec<u8>) -> Option<Vec<u8>> {
        self.transmit_batch(alloc::vec![frame]);
        None
    }

    fn transmit_batch(&self, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        self.pump.push(frames, |f| {
            if let Some(s) = self.stack.upgrade() {
                s.input_batch(self.ifindex, f);
            }
        });
        Vec::new()
    }

    fn detach(&self) {
        self.pump.clear();
    }
}
