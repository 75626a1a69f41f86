//! The neighbour table of one Ethernet interface: IP address to MAC
//! address, with packets held while a resolution is pending. IPv4
//! entries are resolved by ARP (RFC 826), IPv6 entries by neighbour
//! discovery (RFC 4861); the table is the same for both.
//!
//! There is no timer: a pending entry sends another request when a packet
//! for it arrives at least [`RETRY_NS`] after the last one, and gives up
//! after [`MAX_TRIES`] requests (its held packets are dropped; TCP
//! retransmits, forwarded packets get an ICMP host unreachable). Resolved
//! entries expire after [`TTL_NS`].

use alloc::vec::Vec;
use core::net::IpAddr;

use crate::hash::HashMap;

/// Between two requests for the same address.
pub(crate) const RETRY_NS: u64 = 1_000_000_000;
/// Requests before an address is declared unreachable.
pub(crate) const MAX_TRIES: u32 = 3;
/// How long a resolved entry lives (BSD uses 20 minutes).
pub(crate) const TTL_NS: u64 = 20 * 60 * 1_000_000_000;
/// Packets held per pending entry (BSD holds one; a few help TCP's
/// initial burst).
pub(crate) const HOLD_MAX: usize = 16;
/// Entries per table; beyond this, expired and failed entries are purged
/// and then the request is refused.
pub(crate) const TABLE_MAX: usize = 4096;

/// A held frame keeps only its own bytes: pool buffers are sized for the
/// largest frame, and thousands of entries (a flood from made-up
/// addresses) must not pin thousands of them.
fn compact(mut frame: Vec<u8>) -> Vec<u8> {
    frame.shrink_to_fit();
    frame
}

pub(crate) struct ArpEntry {
    pub mac: Option<[u8; 6]>,
    pub expires: u64,
    pub last_request: u64,
    pub tries: u32,
    /// Frames (with room for the Ethernet header) waiting for the address.
    pub held: Vec<Vec<u8>>,
}

/// What to do with a packet for a next hop.
pub(crate) enum Resolve {
    /// Send it to this MAC address now.
    Known([u8; 6]),
    /// Held; send a request now.
    Request,
    /// Held; a request is already out.
    Held,
    /// The address did not answer; the packet comes back.
    Failed(Vec<u8>),
}

pub(crate) struct ArpTable {
    entries: HashMap<IpAddr, ArpEntry>,
}

impl ArpTable {
    /// A table with seed 0 (tests).
    #[cfg(test)]
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A table hashing with `seed` (see `hash.rs`).
    pub fn with_seed(seed: u64) -> Self {
        ArpTable {
            entries: crate::hash::map(seed),
        }
    }

    /// Finds the MAC address for `ip`, holding `frame` if it is not known.
    pub fn resolve(&mut self, ip: IpAddr, now: u64, frame: Vec<u8>) -> (Resolve, Option<Vec<u8>>) {
        if let Some(e) = self.entries.get_mut(&ip) {
            match e.mac {
                Some(mac) if e.expires > now => return (Resolve::Known(mac), Some(frame)),
                _ => {}
            }
            if e.mac.is_some() {
                // Expired: resolve again.
                e.mac = None;
                e.tries = 0;
                e.last_request = 0;
            }
            if e.tries >= MAX_TRIES && now < e.last_request + RETRY_NS * 20 {
                return (Resolve::Failed(frame), None);
            }
            if e.tries >= MAX_TRIES {
                e.tries = 0;
            }
            if e.held.len() < HOLD_MAX {
                e.held.push(compact(frame));
            }
            if e.last_request == 0 || now >= e.last_request + RETRY_NS {
                e.last_request = now;
                e.tries += 1;
                return (Resolve::Request, None);
            }
            return (Resolve::Held, None);
        }
        if self.entries.len() >= TABLE_MAX {
            self.purge(now);
            if self.entries.len() >= TABLE_MAX {
                return (Resolve::Failed(frame), None);
            }
        }
        let held = alloc::vec![compact(frame)];
        self.entries.insert(
            ip,
            ArpEntry {
                mac: None,
                expires: 0,
                last_request: now,
                tries: 1,
                held,
            },
        );
        (Resolve::Request, None)
    }

    /// Records `ip` at `mac` (from a reply, or a request addressed to us)
    /// and returns the frames that were waiting for it.
    pub fn learn(&mut self, ip: IpAddr, mac: [u8; 6], now: u64, create: bool) -> Vec<Vec<u8>> {
        match self.entries.get_mut(&ip) {
            Some(e) => {
                e.mac = Some(mac);
                e.expires = now + TTL_NS;
                e.tries = 0;
                core::mem::take(&mut e.held)
            }
            None if create => {
                if self.entries.len() >= TABLE_MAX {
                    self.purge(now);
                    if self.entries.len() >= TABLE_MAX {
                        return Vec::new();
                    }
                }
                self.entries.insert(
                    ip,
                    ArpEntry {
                        mac: Some(mac),
                        expires: now + TTL_NS,
                        last_request: 0,
                        tries: 0,
                        held: Vec::new(),
                    },
                );
                Vec::new()
            }
            None => Vec::new(),
        }
    }

    /// Whether `ip` has an entry.
    #[cfg(test)]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.entries.contains_key(&ip)
    }

    /// Every entry: address and MAC (`None` while pending).
    pub fn list(&self) -> Vec<(IpAddr, Option<[u8; 6]>)> {
        let mut v: Vec<_> = self.entries.iter().map(|(ip, e)| (*ip, e.mac)).collect();
        v.sort_by_key(|e| e.0);
        v
    }

    /// Removes an entry; returns whether it existed.
    pub fn remove(&mut self, ip: IpAddr) -> bool {
        self.entries.remove(&ip).is_some()
    }

    /// Drops everything (interface down or address change).
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    fn purge(&mut self, now: u64) {
        self.entries.retain(|_, e| match e.mac {
            Some(_) => e.expires > now,
            None => e.tries < MAX_TRIES,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use core::net::Ipv4Addr;

    #[test]
    fn hold_resolve_release() {
        let mut t = ArpTable::new();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        assert!(matches!(
            t.resolve(ip, 1, vec![1]),
            (Resolve::Request, None)
        ));
        assert!(matches!(t.resolve(ip, 2, vec![2]), (Resolve::Held, None)));
        let held = t.learn(ip, [2; 6], 3, false);
        assert_eq!(held, vec![vec![1], vec![2]]);
        assert!(matches!(
            t.resolve(ip, 4, vec![3]),
            (Resolve::Known([2, 2, 2, 2, 2, 2]), Some(_))
        ));
        assert_eq!(t.list(), vec![(ip, Some([2; 6]))]);
    }

    #[test]
    fn gives_up_after_retries() {
        let mut t = ArpTable::new();
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 8));
        let mut now = 1;
        assert!(matches!(t.resolve(ip, now, vec![0]).0, Resolve::Request));
        for _ in 1..MAX_TRIES {
            now += RETRY_NS;
            assert!(matches!(t.resolve(ip, now, vec![0]).0, Resolve::Request));
        }
        now += RETRY_NS;
        assert!(matches!(t.resolve(ip, now, vec![9]).0, Resolve::Failed(_)));
        // Unsolicited information is not cached unless asked to.
        let other = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9));
        assert!(t.learn(other, [1; 6], now, false).is_empty());
        assert!(!t.contains(other));
    }
}
