//! TIME-WAIT for connections nobody holds any more (RFC 9293 §3.6.1).
//!
//! A connection this host closed first ends in TIME-WAIT for twice the
//! maximum segment lifetime, so that a retransmitted FIN from the peer
//! (whose ACK of ours was lost) is answered with an ACK instead of a
//! reset, and old duplicates of the connection cannot be mistaken for a
//! new one with the same 4-tuple. Once the user has closed the socket, the
//! smoltcp socket and its buffers are freed and only a small record is
//! kept here, as BSD's compressed TIME-WAIT (`tcptw`) does: the 4-tuple,
//! the sequence and acknowledgement numbers of the last segment we sent,
//! and the deadline (`net.inet.tcp.time_wait_ms`, 60 s by default).
//!
//! While the record lives, a segment for its 4-tuple gets that ACK again
//! (a FIN also restarts the timer); a RST is ignored (RFC 1337); a new
//! SYN starts a new connection at once. BSD and Linux accept such a SYN
//! when its sequence number lies beyond the old connection's (RFC 6191),
//! which their clock-driven initial sequence numbers nearly always
//! satisfy; smoltcp's are random, so that test would refuse half of all
//! quick reconnections from the same port for the whole TIME-WAIT, and
//! we accept every SYN instead. The
//! record's local port is not chosen for new outgoing connections while
//! other ports are free, and `bind` to it needs `SO_REUSEADDR`, as on
//! Linux. The table holds at most [`MAX_TIME_WAIT`] records; beyond that
//! the oldest goes early, as Linux's `tcp_max_tw_buckets` does.

use alloc::collections::BTreeSet;
use core::net::IpAddr;

use crate::hash::HashMap;
use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{IpProtocol, TcpControl, TcpPacket, TcpRepr, TcpSeqNumber};

use crate::iface::ETH_HDR;
use crate::ip::emit_ipv4;
use crate::ip6::{emit_ipv6, IPV6_HDR};
use crate::pool::FramePool;
use crate::stack::{Core, Effects, Tuple4};

/// Records kept at most.
pub(crate) const MAX_TIME_WAIT: usize = 16384;

/// What a record remembers of its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TimeWait {
    /// Our next sequence number and the peer's (what our last ACK said).
    pub snd_nxt: u32,
    pub rcv_nxt: u32,
    /// The interface the connection used (the zone of link-local peers).
    pub ifindex: usize,
    pub ttl: u8,
    pub expires: u64,
}

/// The records, and their deadlines in order.
pub(crate) struct TimeWaitTable {
    pub map: HashMap<Tuple4, TimeWait>,
    order: BTreeSet<(u64, Tuple4)>,
    /// Records per local port.
    ports: HashMap<u16, u32>,
}

/// What to do with a segment for a 4-tuple in TIME-WAIT.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TwVerdict {
    /// Not in TIME-WAIT.
    None,
    /// Answered (or ignored); nothing more to do.
    Done,
    /// A new connection may start: the record is gone.
    NewSyn,
}

impl TimeWaitTable {
    /// A table with seed 0 (tests).
    #[cfg(test)]
    pub fn new() -> Self {
        Self::with_seed(0)
    }

    /// A table whose maps hash with `seed` (see `hash.rs`).
    pub fn with_seed(seed: u64) -> Self {
        TimeWaitTable {
            map: crate::hash::map(seed),
            order: BTreeSet::new(),
            ports: crate::hash::map(seed ^ 1),
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether some record holds local port `port`.
    pub fn holds_port(&self, port: u16) -> bool {
        self.ports.contains_key(&port)
    }

    fn remove(&mut self, t: &Tuple4) -> Option<TimeWait> {
        let tw = self.map.remove(t)?;
        self.order.remove(&(tw.expires, *t));
        if let Some(n) = self.ports.get_mut(&t.1) {
            *n -= 1;
            if *n == 0 {
                self.ports.remove(&t.1);
            }
        }
        Some(tw)
    }

    /// Adds (or restarts) a record.
    pub fn insert(&mut self, t: Tuple4, tw: TimeWait, now: u64) {
        self.expire(now);
        match self.map.insert(t, tw) {
            Some(old) => {
                self.order.remove(&(old.expires, t));
            }
            None => *self.ports.entry(t.1).or_default() += 1,
        }
        self.order.insert((tw.expires, t));
        // Full: the record closest to its end goes first.
        while self.map.len() > MAX_TIME_WAIT {
            let Some(&(_, old)) = self.order.first() else {
                break;
            };
            self.remove(&old);
        }
    }

    /// Drops the records whose time is up.
    pub fn expire(&mut self, now: u64) {
        while let Some(&(at, t)) = self.order.first() {
            if at > now {
                break;
            }
            self.remove(&t);
        }
    }
}

impl Core {
    /// Keeps connection `tuple` in TIME-WAIT after its socket is gone.
    pub fn time_wait_add(&mut self, tuple: Tuple4, mut tw: TimeWait) {
        let now = self.now;
        tw.expires = now.saturating_add(self.params.time_wait_ms.saturating_mul(1_000_000));
        self.tcp_tw.insert(tuple, tw, now);
    }

    /// A segment for a connection that may be in TIME-WAIT (`tuple` is
    /// local address and port, remote address and port).
    pub fn time_wait_input(
        &mut self,
        pool: &FramePool,
        tuple: Tuple4,
        seg: &TcpPacket<&[u8]>,
        fx: &mut Effects,
    ) -> TwVerdict {
        let now = self.now;
        self.tcp_tw.expire(now);
        let Some(tw) = self.tcp_tw.map.get(&tuple).copied() else {
            return TwVerdict::None;
        };
        if seg.rst() {
            return TwVerdict::Done;
        }
        if seg.syn() && !seg.ack() {
            self.tcp_tw.remove(&tuple);
            return TwVerdict::NewSyn;
        }
        if seg.fin() {
            let mut again = tw;
            again.expires = 0;
            self.time_wait_add(tuple, again);
        }
        self.time_wait_ack(pool, tuple, &tw, fx);
        TwVerdict::Done
    }

    /// Sends the ACK a connection in TIME-WAIT last sent.
    fn time_wait_ack(&mut self, pool: &FramePool, t: Tuple4, tw: &TimeWait, fx: &mut Effects) {
        let (local, lport, remote, rport) = t;
        let repr = TcpRepr {
            src_port: lport,
            dst_port: rport,
            control: TcpControl::None,
            seq_number: TcpSeqNumber(tw.snd_nxt as i32),
            ack_number: Some(TcpSeqNumber(tw.rcv_nxt as i32)),
            window_len: 0,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None; 3],
            timestamp: None,
            payload: &[],
        };
        let hdr = if local.is_ipv4() { 20 } else { IPV6_HDR };
        let len = repr.buffer_len();
        let mut f = pool.get(ETH_HDR + hdr + len);
        repr.emit(
            &mut TcpPacket::new_unchecked(&mut f[ETH_HDR + hdr..]),
            &local.into(),
            &remote.into(),
            &ChecksumCapabilities::default(),
        );
        match (local, remote) {
            (IpAddr::V4(l), IpAddr::V4(r)) => {
                let id = self.next_ip_id();
                emit_ipv4(&mut f, l, r, IpProtocol::Tcp, tw.ttl, id, len);
            }
            (IpAddr::V6(l), IpAddr::V6(r)) => {
                emit_ipv6(&mut f, l, r, IpProtocol::Tcp, tw.ttl, len);
            }
            _ => {
                pool.put(f);
                return;
            }
        }
        self.ip_output_scoped(pool, f, true, tw.ifindex as u32, fx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    fn tuple(port: u16) -> Tuple4 {
        let a = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let b = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
        (a, port, b, 80)
    }

    fn tw(expires: u64) -> TimeWait {
        TimeWait {
            snd_nxt: 1,
            rcv_nxt: 2,
            ifindex: 1,
            ttl: 64,
            expires,
        }
    }

    #[test]
    fn records_expire_restart_and_stay_bounded() {
        let mut t = TimeWaitTable::new();
        t.insert(tuple(1000), tw(100), 0);
        t.insert(tuple(1001), tw(200), 0);
        assert!(t.holds_port(1000) && t.holds_port(1001));
        // Restarting 1000 moves its deadline past 1001's.
        t.insert(tuple(1000), tw(300), 50);
        t.expire(150);
        assert_eq!(t.len(), 2);
        t.expire(250);
        assert_eq!(t.len(), 1);
        assert!(!t.holds_port(1001) && t.holds_port(1000));
        t.expire(300);
        assert_eq!(t.len(), 0);
        assert!(!t.holds_port(1000));
        // The one nearest its end goes when the table is full.
        for p in 0..(MAX_TIME_WAIT as u32 + 10) {
            let port = (p % 60000) as u16;
            let mut tp = tuple(port);
            tp.3 = (p / 60000) as u16 + 1;
            t.insert(tp, tw(1_000_000 + p as u64), 0);
        }
        assert_eq!(t.len(), MAX_TIME_WAIT);
        assert!(!t.map.contains_key(&{
            let mut tp = tuple(0);
            tp.3 = 1;
            tp
        }));
    }
}
