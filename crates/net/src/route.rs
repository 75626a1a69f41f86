//! The routing table: routes added by hand (`route add`), next to the
//! connected routes that interface addresses imply (those are computed
//! from the interfaces at lookup time, so they follow address changes and
//! up/down without bookkeeping).
//!
//! Lookup is longest-prefix match over a short list; a kernel has a
//! handful of routes, so a linear scan beats a trie here.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr};

use kern::Errno;

use crate::iface::{in_subnet_ip, network_of};

/// A static route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StaticRoute {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub ifindex: usize,
}

/// The result of a lookup (IPv4 by default; `RouteHit<Ipv6Addr>` for
/// IPv6, `RouteHit<IpAddr>` where the family does not matter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteHit<A = Ipv4Addr> {
    pub ifindex: usize,
    /// Where to send the frame on that link: the destination itself, or
    /// the gateway.
    pub next_hop: A,
    /// The address to send from.
    pub src: A,
}

impl<A: Into<IpAddr>> RouteHit<A> {
    /// The same route with family-neutral addresses.
    pub fn any(self) -> RouteHit<IpAddr> {
        RouteHit {
            ifindex: self.ifindex,
            next_hop: self.next_hop.into(),
            src: self.src.into(),
        }
    }
}

pub(crate) struct RouteTable {
    pub statics: Vec<StaticRoute>,
}

/// Routes per kernel.
pub(crate) const MAX_ROUTES: usize = 1024;

impl RouteTable {
    pub fn new() -> Self {
        RouteTable {
            statics: Vec::new(),
        }
    }

    /// Adds a route. `EEXIST` if one for the same destination exists.
    pub fn add(&mut self, r: StaticRoute) -> Result<(), Errno> {
        let net = network_of(r.dst, r.prefix);
        if self
            .statics
            .iter()
            .any(|s| s.dst == net && s.prefix == r.prefix)
        {
            return Err(Errno::EEXIST);
        }
        if self.statics.len() >= MAX_ROUTES {
            return Err(Errno::ENOBUFS);
        }
        self.statics.push(StaticRoute { dst: net, ..r });
        Ok(())
    }

    /// Deletes the route for `dst/prefix`. `ESRCH` if there is none (as
    /// BSD's route(8) reports).
    pub fn delete(&mut self, dst: IpAddr, prefix: u8) -> Result<(), Errno> {
        let net = network_of(dst, prefix);
        let before = self.statics.len();
        self.statics
            .retain(|s| !(s.dst == net && s.prefix == prefix));
        if self.statics.len() == before {
            Err(Errno::ESRCH)
        } else {
            Ok(())
        }
    }

    /// The best static route for `dst`, with its prefix length.
    pub fn best_static(&self, dst: IpAddr) -> Option<StaticRoute> {
        self.statics
            .iter()
            .filter(|s| in_subnet_ip(dst, s.dst, s.prefix))
            .max_by_key(|s| s.prefix)
            .copied()
    }

    /// Drops routes through interface `ifindex` (it was destroyed).
    pub fn forget_iface(&mut self, ifindex: usize) {
        self.statics.retain(|s| s.ifindex != ifindex);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::new();
        t.add(StaticRoute {
            dst: v4(0, 0, 0, 0),
            prefix: 0,
            gateway: Some(v4(192, 0, 2, 1)),
            ifindex: 1,
        })
        .unwrap();
        t.add(StaticRoute {
            dst: v4(198, 51, 100, 77),
            prefix: 24,
            gateway: Some(v4(192, 0, 2, 2)),
            ifindex: 2,
        })
        .unwrap();
        assert_eq!(
            t.best_static(v4(198, 51, 100, 9))
                .map(|r| (r.ifindex, r.dst)),
            Some((2, v4(198, 51, 100, 0)))
        );
        assert_eq!(
            t.best_static(v4(203, 0, 113, 9)).map(|r| r.ifindex),
            Some(1)
        );
        assert_eq!(
            t.add(StaticRoute {
                dst: v4(198, 51, 100, 0),
                prefix: 24,
                gateway: None,
                ifindex: 3
            }),
            Err(Errno::EEXIST)
        );
        t.delete(v4(198, 51, 100, 0), 24).unwrap();
        assert_eq!(t.delete(v4(198, 51, 100, 0), 24), Err(Errno::ESRCH));
        // Families never match each other, even with a default route.
        assert_eq!(t.best_static("2001:db8::1".parse().unwrap()), None);
        t.add(StaticRoute {
            dst: "::".parse().unwrap(),
            prefix: 0,
            gateway: Some("fe80::1".parse().unwrap()),
            ifindex: 4,
        })
        .unwrap();
        assert_eq!(
            t.best_static("2001:db8::1".parse().unwrap())
                .map(|r| r.ifindex),
            Some(4)
        );
        t.forget_iface(1);
        assert_eq!(t.best_static(v4(203, 0, 113, 9)), None);
    }
}
