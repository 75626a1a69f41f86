//! The routing table: routes added by hand (`route add`), next to the
//! connected routes that interface addresses imply (those are computed
//! from the interfaces at lookup time, so they follow address changes and
//! up/down without bookkeeping).
//!
//! Lookup is longest-prefix match over a short list; a kernel has a
//! handful of routes, so a linear scan beats a trie here.

use alloc::vec::Vec;
use core::net::Ipv4Addr;

use kern::Errno;

use crate::iface::in_subnet;

/// A static route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StaticRoute {
    pub dst: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    pub ifindex: usize,
}

/// The result of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RouteHit {
    pub ifindex: usize,
    /// Where to send the frame on that link: the destination itself, or
    /// the gateway.
    pub next_hop: Ipv4Addr,
    /// The address to send from.
    pub src: Ipv4Addr,
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
        let net = Ipv4Addr::from(u32::from(r.dst) & crate::iface::prefix_mask(r.prefix));
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
    pub fn delete(&mut self, dst: Ipv4Addr, prefix: u8) -> Result<(), Errno> {
        let net = Ipv4Addr::from(u32::from(dst) & crate::iface::prefix_mask(prefix));
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
    pub fn best_static(&self, dst: Ipv4Addr) -> Option<StaticRoute> {
        self.statics
            .iter()
            .filter(|s| in_subnet(dst, s.dst, s.prefix))
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

    #[test]
    fn longest_prefix_wins() {
        let mut t = RouteTable::new();
        t.add(StaticRoute {
            dst: Ipv4Addr::new(0, 0, 0, 0),
            prefix: 0,
            gateway: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ifindex: 1,
        })
        .unwrap();
        t.add(StaticRoute {
            dst: Ipv4Addr::new(198, 51, 100, 77),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(192, 0, 2, 2)),
            ifindex: 2,
        })
        .unwrap();
        assert_eq!(
            t.best_static(Ipv4Addr::new(198, 51, 100, 9))
                .map(|r| (r.ifindex, r.dst)),
            Some((2, Ipv4Addr::new(198, 51, 100, 0)))
        );
        assert_eq!(
            t.best_static(Ipv4Addr::new(203, 0, 113, 9))
                .map(|r| r.ifindex),
            Some(1)
        );
        assert_eq!(
            t.add(StaticRoute {
                dst: Ipv4Addr::new(198, 51, 100, 0),
                prefix: 24,
                gateway: None,
                ifindex: 3
            }),
            Err(Errno::EEXIST)
        );
        t.delete(Ipv4Addr::new(198, 51, 100, 0), 24).unwrap();
        assert_eq!(
            t.delete(Ipv4Addr::new(198, 51, 100, 0), 24),
            Err(Errno::ESRCH)
        );
        t.forget_iface(1);
        assert_eq!(t.best_static(Ipv4Addr::new(203, 0, 113, 9)), None);
    }
}
