//! Control messages (`sendmsg`/`recvmsg` ancillary data), typed.
//!
//! [`Cmsg`] is what the kernel and its callers use; [`Cmsg::to_linux`]
//! and [`Cmsg::parse_linux`] map it to and from Linux's `struct cmsghdr`
//! layout (64-bit: an 8-byte length, level and type, data padded to 8
//! bytes) at the C ABI's edge, as [`crate::SockAddr`] does for addresses.
//!
//! Received datagrams carry what their socket asked for: `IP_PKTINFO` /
//! `IPV6_RECVPKTINFO` (the destination address and arrival interface),
//! `IP_RECVTTL` / `IPV6_RECVHOPLIMIT`, `SO_TIMESTAMP` / `SO_TIMESTAMPNS`.
//! On `sendmsg`, `IP_PKTINFO` / `IPV6_PKTINFO` choose the source address
//! (and, for IPv6 link-local destinations, the interface), and `IP_TTL` /
//! `IPV6_HOPLIMIT` the TTL of that one datagram.

use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kern::consts::{ip as ipopt, ipproto, ipv6 as ip6opt, so};
use kern::Errno;

/// One control message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Cmsg {
    /// `IP_PKTINFO` (IPv4 address) or `IPV6_PKTINFO` (IPv6): received,
    /// the datagram's destination and the interface it arrived on; sent,
    /// the source address to use (unspecified: chosen by the route) and
    /// the interface (0: any).
    PktInfo { addr: IpAddr, ifindex: u32 },
    /// `IP_TTL`: the received datagram's TTL, or the TTL to send with.
    Ttl(u8),
    /// `IPV6_HOPLIMIT`: the same for IPv6.
    HopLimit(u8),
    /// `SCM_TIMESTAMP`: when the datagram arrived (wall clock, µs).
    Timestamp { sec: i64, usec: u32 },
    /// `SCM_TIMESTAMPNS`: the same in nanoseconds.
    TimestampNs { sec: i64, nsec: u32 },
}

const HDR: usize = 16;

fn align(n: usize) -> usize {
    (n + 7) & !7
}

impl Cmsg {
    /// Linux's `(cmsg_level, cmsg_type)` for this message.
    pub fn level_type(&self) -> (i32, i32) {
        match self {
            Cmsg::PktInfo {
                addr: IpAddr::V4(_),
                ..
            } => (ipproto::IP, ipopt::PKTINFO),
            Cmsg::PktInfo { .. } => (ipproto::IPV6, ip6opt::PKTINFO),
            Cmsg::Ttl(_) => (ipproto::IP, ipopt::TTL),
            Cmsg::HopLimit(_) => (ipproto::IPV6, ip6opt::HOPLIMIT),
            Cmsg::Timestamp { .. } => (so::SOL_SOCKET, so::TIMESTAMP),
            Cmsg::TimestampNs { .. } => (so::SOL_SOCKET, so::TIMESTAMPNS),
        }
    }

    fn data(&self) -> Vec<u8> {
        let mut d = Vec::new();
        match *self {
            Cmsg::PktInfo {
                addr: IpAddr::V4(a),
                ifindex,
            } => {
                // struct in_pktinfo: ifindex, spec_dst, addr.
                d.extend_from_slice(&(ifindex as i32).to_ne_bytes());
                d.extend_from_slice(&a.octets());
                d.extend_from_slice(&a.octets());
            }
            Cmsg::PktInfo {
                addr: IpAddr::V6(a),
                ifindex,
            } => {
                // struct in6_pktinfo: addr, ifindex.
                d.extend_from_slice(&a.octets());
                d.extend_from_slice(&(ifindex as i32).to_ne_bytes());
            }
            Cmsg::Ttl(t) | Cmsg::HopLimit(t) => d.extend_from_slice(&(t as i32).to_ne_bytes()),
            Cmsg::Timestamp { sec, usec } => {
                d.extend_from_slice(&sec.to_ne_bytes());
                d.extend_from_slice(&(usec as i64).to_ne_bytes());
            }
            Cmsg::TimestampNs { sec, nsec } => {
                d.extend_from_slice(&sec.to_ne_bytes());
                d.extend_from_slice(&(nsec as i64).to_ne_bytes());
            }
        }
        d
    }

    /// Linux's bytes for a list of control messages (what `recvmsg`
    /// writes to `msg_control`).
    pub fn to_linux(list: &[Cmsg]) -> Vec<u8> {
        let mut v = Vec::new();
        for c in list {
            let data = c.data();
            let (level, ty) = c.level_type();
            v.extend_from_slice(&((HDR + data.len()) as u64).to_ne_bytes());
            v.extend_from_slice(&level.to_ne_bytes());
            v.extend_from_slice(&ty.to_ne_bytes());
            v.extend_from_slice(&data);
            v.resize(align(v.len()), 0);
        }
        v
    }

    /// Parses `msg_control` bytes given to `sendmsg`. `EINVAL` for a
    /// malformed buffer or a message that cannot be sent.
    pub fn parse_linux(mut b: &[u8]) -> Result<Vec<Cmsg>, Errno> {
        let mut out = Vec::new();
        while b.len() >= HDR {
            let mut l = [0u8; 8];
            l.copy_from_slice(&b[..8]);
            let len = usize::try_from(u64::from_ne_bytes(l)).map_err(|_| Errno::EINVAL)?;
            if len < HDR || len > b.len() {
                return Err(Errno::EINVAL);
            }
            let int_at = |i: usize| i32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            let (level, ty) = (int_at(8), int_at(12));
            let data = &b[HDR..len];
            let int = || -> Result<i32, Errno> {
                let d = data.get(..4).ok_or(Errno::EINVAL)?;
                Ok(i32::from_ne_bytes([d[0], d[1], d[2], d[3]]))
            };
            let hops = || -> Result<u8, Errno> {
                match int()? {
                    -1 => Ok(crate::ip::DEFAULT_TTL),
                    t @ 0..=255 => Ok(t as u8),
                    _ => Err(Errno::EINVAL),
                }
            };
            out.push(match (level, ty) {
                (ipproto::IP, ipopt::PKTINFO) => {
                    let d = data.get(..12).ok_or(Errno::EINVAL)?;
                    Cmsg::PktInfo {
                        ifindex: int()?.max(0) as u32,
                        addr: IpAddr::V4(Ipv4Addr::new(d[4], d[5], d[6], d[7])),
                    }
                }
                (ipproto::IPV6, ip6opt::PKTINFO) => {
                    let d = data.get(..20).ok_or(Errno::EINVAL)?;
                    let mut a = [0u8; 16];
                    a.copy_from_slice(&d[..16]);
                    Cmsg::PktInfo {
                        addr: IpAddr::V6(Ipv6Addr::from(a)),
                        ifindex: i32::from_ne_bytes([d[16], d[17], d[18], d[19]]).max(0) as u32,
                    }
                }
                (ipproto::IP, ipopt::TTL) => match hops()? {
                    0 => return Err(Errno::EINVAL),
                    t => Cmsg::Ttl(t),
                },
                (ipproto::IPV6, ip6opt::HOPLIMIT) => Cmsg::HopLimit(hops()?),
                _ => return Err(Errno::EINVAL),
            });
            b = &b[align(len).min(b.len())..];
        }
        Ok(out)
    }
}

/// Which control messages a socket wants with received datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct CmsgWants {
    pub pktinfo: bool,
    pub ttl: bool,
    pub timestamp: bool,
    pub timestamp_ns: bool,
}

impl CmsgWants {
    /// The flags as bits (for an atomic copy).
    pub fn bits(&self) -> u8 {
        self.pktinfo as u8
            | (self.ttl as u8) << 1
            | (self.timestamp as u8) << 2
            | (self.timestamp_ns as u8) << 3
    }

    /// The flags from [`CmsgWants::bits`].
    pub fn from_bits(b: u8) -> CmsgWants {
        CmsgWants {
            pktinfo: b & 1 != 0,
            ttl: b & 2 != 0,
            timestamp: b & 4 != 0,
            timestamp_ns: b & 8 != 0,
        }
    }

    pub fn any(&self) -> bool {
        self.pktinfo || self.ttl || self.timestamp || self.timestamp_ns
    }
}

/// What the stack records about a received datagram for control
/// messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RxMeta {
    pub to: Option<IpAddr>,
    pub ifindex: u32,
    pub ttl: u8,
    /// Wall-clock arrival time, when the socket asked for timestamps.
    pub stamp: Option<(i64, u32)>,
}

impl RxMeta {
    /// The control messages `wants` asks for, in Linux's order.
    pub fn cmsgs(&self, wants: CmsgWants) -> Vec<Cmsg> {
        let mut v = Vec::new();
        if let (true, Some((sec, nsec))) = (wants.timestamp, self.stamp) {
            v.push(Cmsg::Timestamp {
                sec,
                usec: nsec / 1000,
            });
        }
        if let (true, Some((sec, nsec))) = (wants.timestamp_ns, self.stamp) {
            v.push(Cmsg::TimestampNs { sec, nsec });
        }
        if let (true, Some(to)) = (wants.pktinfo, self.to) {
            v.push(Cmsg::PktInfo {
                addr: to,
                ifindex: self.ifindex,
            });
        }
        if wants.ttl {
            v.push(match self.to {
                Some(IpAddr::V6(_)) => Cmsg::HopLimit(self.ttl),
                _ => Cmsg::Ttl(self.ttl),
            });
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_layout_round_trip() {
        let sent = [
            Cmsg::PktInfo {
                addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                ifindex: 3,
            },
            Cmsg::PktInfo {
                addr: "2001:db8::1".parse().unwrap(),
                ifindex: 4,
            },
            Cmsg::Ttl(9),
            Cmsg::HopLimit(0),
        ];
        let b = Cmsg::to_linux(&sent);
        // in_pktinfo is 12 bytes: 16 + 12 = 28, padded to 32.
        assert_eq!(&b[..8], &28u64.to_ne_bytes());
        assert_eq!(b.len(), 32 + 40 + 24 + 24);
        assert_eq!(Cmsg::parse_linux(&b).unwrap(), sent);
        // Receive-only kinds encode but are not accepted by sendmsg.
        let ts = Cmsg::to_linux(&[Cmsg::TimestampNs { sec: 5, nsec: 6 }]);
        assert_eq!(ts.len(), 32);
        assert_eq!(Cmsg::parse_linux(&ts), Err(Errno::EINVAL));
        // Malformed buffers are errors, never panics.
        assert_eq!(Cmsg::parse_linux(&b[..20]), Err(Errno::EINVAL));
        let mut bad = b.clone();
        bad[..8].copy_from_slice(&u64::MAX.to_ne_bytes());
        assert_eq!(Cmsg::parse_linux(&bad), Err(Errno::EINVAL));
        bad[..8].copy_from_slice(&3u64.to_ne_bytes());
        assert_eq!(Cmsg::parse_linux(&bad), Err(Errno::EINVAL));
        assert_eq!(Cmsg::parse_linux(&[]), Ok(Vec::new()));
        let ttl0 = Cmsg::to_linux(&[Cmsg::Ttl(0)]);
        assert_eq!(Cmsg::parse_linux(&ttl0), Err(Errno::EINVAL));
    }

    #[test]
    fn wants_select_messages() {
        let m = RxMeta {
            to: Some("2001:db8::1".parse().unwrap()),
            ifindex: 2,
            ttl: 63,
            stamp: Some((10, 1_500_000)),
        };
        assert!(m.cmsgs(CmsgWants::default()).is_empty());
        let all = CmsgWants {
            pktinfo: true,
            ttl: true,
            timestamp: true,
            timestamp_ns: true,
        };
        assert_eq!(
            m.cmsgs(all),
            alloc::vec![
                Cmsg::Timestamp {
                    sec: 10,
                    usec: 1500
                },
                Cmsg::TimestampNs {
                    sec: 10,
                    nsec: 1_500_000
                },
                Cmsg::PktInfo {
                    addr: "2001:db8::1".parse().unwrap(),
                    ifindex: 2
                },
                Cmsg::HopLimit(63),
            ]
        );
    }
}
