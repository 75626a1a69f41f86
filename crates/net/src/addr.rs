//! Socket addresses and the typed network-configuration records that the
//! system-call layer passes in and out.
//!
//! [`SockAddr`] is the typed form of a `struct sockaddr`: the C ABI maps
//! Linux's byte layout onto it at its edge ([`SockAddr::from_linux`],
//! [`SockAddr::to_linux`]); everything inside the kernel uses the enum.
//! The records ([`IfInfo`], [`RouteInfo`], [`ArpInfo`], [`NetStats`]) are
//! what `ifconfig`, `route`, `arp` and `netstat` show.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kern::consts::af;
use kern::Errno;

/// A socket address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SockAddr {
    /// `AF_UNSPEC`: used with `connect` to dissolve a datagram association.
    Unspec,
    /// `AF_INET`: an IPv4 address (network order bytes) and a port.
    Inet { addr: [u8; 4], port: u16 },
    /// `AF_INET6`: an IPv6 address, port, flow label and scope (the
    /// interface index, for link-local addresses).
    Inet6 {
        addr: [u8; 16],
        port: u16,
        flowinfo: u32,
        scope_id: u32,
    },
}

impl SockAddr {
    /// An IPv4 socket address.
    pub fn inet(addr: Ipv4Addr, port: u16) -> SockAddr {
        SockAddr::Inet {
            addr: addr.octets(),
            port,
        }
    }

    /// An IPv6 socket address with no flow label or scope.
    pub fn inet6(addr: Ipv6Addr, port: u16) -> SockAddr {
        SockAddr::Inet6 {
            addr: addr.octets(),
            port,
            flowinfo: 0,
            scope_id: 0,
        }
    }

    /// The socket address of `ip:port` as a socket of family `family`
    /// reports it: an IPv6 socket shows IPv4 peers as IPv4-mapped
    /// addresses (`::ffff:a.b.c.d`, RFC 4291 §2.5.5.2).
    pub fn from_ip(family: i32, ip: IpAddr, port: u16) -> SockAddr {
        match (family, ip) {
            (af::INET6, IpAddr::V4(a)) => SockAddr::inet6(a.to_ipv6_mapped(), port),
            (_, IpAddr::V4(a)) => SockAddr::inet(a, port),
            (_, IpAddr::V6(a)) => SockAddr::inet6(a, port),
        }
    }

    /// The address, port and scope this socket address names for a socket
    /// of family `family`: IPv4 for `AF_INET` sockets; IPv6 (or IPv4, for
    /// an IPv4-mapped address) for `AF_INET6` ones. `EAFNOSUPPORT` when the
    /// family does not fit, `EINVAL` for a short or odd address.
    pub fn to_ip(&self, family: i32) -> Result<(IpAddr, u16, u32), Errno> {
        match (*self, family) {
            (SockAddr::Inet { addr, port }, af::INET) => {
                Ok((IpAddr::V4(Ipv4Addr::from(addr)), port, 0))
            }
            (
                SockAddr::Inet6 {
                    addr,
                    port,
                    scope_id,
                    ..
                },
                af::INET6,
            ) => {
                let a = Ipv6Addr::from(addr);
                match a.to_ipv4_mapped() {
                    Some(v4) => Ok((IpAddr::V4(v4), port, 0)),
                    None => Ok((IpAddr::V6(a), port, scope_id)),
                }
            }
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// The IPv4 address and port, or `EAFNOSUPPORT`.
    pub fn as_inet(&self) -> Result<(Ipv4Addr, u16), Errno> {
        match *self {
            SockAddr::Inet { addr, port } => Ok((Ipv4Addr::from(addr), port)),
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// The address family (`AF_*`).
    pub fn family(&self) -> i32 {
        match self {
            SockAddr::Unspec => af::UNSPEC,
            SockAddr::Inet { .. } => af::INET,
            SockAddr::Inet6 { .. } => af::INET6,
        }
    }

    /// Parses Linux's `struct sockaddr` bytes (`sockaddr_in`,
    /// `sockaddr_in6`, or just the family for `AF_UNSPEC`).
    pub fn from_linux(bytes: &[u8]) -> Result<SockAddr, Errno> {
        let fam = match bytes.get(0..2) {
            Some(b) => u16::from_ne_bytes([b[0], b[1]]) as i32,
            None => return Err(Errno::EINVAL),
        };
        match fam {
            af::UNSPEC => Ok(SockAddr::Unspec),
            af::INET => {
                let b = bytes.get(0..8).ok_or(Errno::EINVAL)?;
                Ok(SockAddr::Inet {
                    port: u16::from_be_bytes([b[2], b[3]]),
                    addr: [b[4], b[5], b[6], b[7]],
                })
            }
            af::INET6 => {
                let b = bytes.get(0..28).ok_or(Errno::EINVAL)?;
                let mut addr = [0u8; 16];
                addr.copy_from_slice(&b[8..24]);
                Ok(SockAddr::Inet6 {
                    port: u16::from_be_bytes([b[2], b[3]]),
                    flowinfo: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                    addr,
                    scope_id: u32::from_ne_bytes([b[24], b[25], b[26], b[27]]),
                })
            }
            _ => Err(Errno::EAFNOSUPPORT),
        }
    }

    /// Linux's `struct sockaddr` bytes for this address.
    pub fn to_linux(&self) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(self.family() as u16).to_ne_bytes());
        match *self {
            SockAddr::Unspec => v.resize(16, 0),
            SockAddr::Inet { addr, port } => {
                v.extend_from_slice(&port.to_be_bytes());
                v.extend_from_slice(&addr);
                v.resize(16, 0);
            }
            SockAddr::Inet6 {
                addr,
                port,
                flowinfo,
                scope_id,
            } => {
                v.extend_from_slice(&port.to_be_bytes());
                v.extend_from_slice(&flowinfo.to_be_bytes());
                v.extend_from_slice(&addr);
                v.extend_from_slice(&scope_id.to_ne_bytes());
            }
        }
        v
    }
}

impl core::fmt::Display for SockAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            SockAddr::Unspec => f.write_str("(unspec)"),
            SockAddr::Inet { addr, port } => write!(f, "{}:{}", Ipv4Addr::from(addr), port),
            SockAddr::Inet6 {
                addr,
                port,
                scope_id,
                ..
            } => {
                if scope_id != 0 {
                    write!(f, "[{}%{}]:{}", Ipv6Addr::from(addr), scope_id, port)
                } else {
                    write!(f, "[{}]:{}", Ipv6Addr::from(addr), port)
                }
            }
        }
    }
}

/// One interface, as `ifconfig` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IfInfo {
    pub index: u32,
    pub name: String,
    /// `loopback`, `bus`, `shmif` or `virt`.
    pub kind: String,
    /// The link string (bus name, bus file, tap name); empty if unset.
    pub link: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    pub up: bool,
    /// Addresses with their prefix lengths: IPv4 first, then IPv6 (the
    /// link-local one first).
    pub addrs: Vec<(IpAddr, u8)>,
    /// Whether a capture file is being written.
    pub pcap: bool,
    pub stats: IfStats,
}

/// Per-interface counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IfStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub rx_errors: u64,
    pub rx_dropped: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_errors: u64,
    pub tx_dropped: u64,
}

/// One route, as `route show` / `netstat -r` list it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteInfo {
    /// Destination network and prefix length (`0.0.0.0/0` and `::/0` are
    /// the defaults).
    pub dst: IpAddr,
    pub prefix: u8,
    /// Next hop; `None` for directly connected networks.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface name.
    pub ifname: String,
    /// Made from an interface address (not added by hand).
    pub connected: bool,
}

/// A route to add with `route add`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RouteSpec {
    pub dst: IpAddr,
    pub prefix: u8,
    /// Of the same family as `dst`.
    pub gateway: Option<IpAddr>,
    /// Outgoing interface; found from the gateway when `None`.
    pub ifname: Option<String>,
}

/// One entry of the neighbour table (ARP for IPv4, neighbour discovery
/// for IPv6).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ArpInfo {
    pub ifname: String,
    pub ip: IpAddr,
    /// `None` while the address is being resolved.
    pub mac: Option<[u8; 6]>,
}

/// One socket, as `netstat` lists it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SockInfo {
    /// `tcp`, `tcp6`, `udp`, `udp6`, `icmp` or `icmp6` (ping sockets).
    pub proto: String,
    /// Local address and port (the echo identifier for ping sockets);
    /// `None` while unbound.
    pub local: Option<(IpAddr, u16)>,
    /// The peer, for connected sockets.
    pub remote: Option<(IpAddr, u16)>,
    /// TCP state in netstat(1)'s spelling (`LISTEN`, `ESTABLISHED`,
    /// `TIME_WAIT`, ...); empty for other protocols.
    pub state: String,
    /// Bytes received and not yet read, and sent and not yet acknowledged.
    pub recv_q: u64,
    pub send_q: u64,
}

/// Protocol counters, as `netstat -s` shows them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetStats {
    pub ip_received: u64,
    pub ip_bad_header: u64,
    pub ip_delivered: u64,
    pub ip_forwarded: u64,
    pub ip_no_route: u64,
    pub ip_ttl_exceeded: u64,
    pub ip_not_forwarded: u64,
    pub ip_fragments_dropped: u64,
    /// Fragments received (IPv4 and IPv6), datagrams reassembled from
    /// them, and fragments sent.
    pub ip_frags_in: u64,
    pub ip_reassembled: u64,
    pub ip_frags_out: u64,
    /// Reassemblies that timed out, are in progress, and the memory they
    /// hold.
    pub ip_reasm_timeouts: u64,
    pub ip_reasm_pending: u64,
    pub ip_reasm_bytes: u64,
    pub ip_sent: u64,
    pub icmp_in: u64,
    pub icmp_out: u64,
    pub icmp_in_echo: u64,
    pub icmp_out_echo_reply: u64,
    pub icmp_in_unreachable: u64,
    pub icmp_out_unreachable: u64,
    pub icmp_in_time_exceeded: u64,
    pub icmp_out_time_exceeded: u64,
    pub tcp_segments_in: u64,
    pub tcp_active_opens: u64,
    pub tcp_passive_opens: u64,
    pub tcp_listen_drops: u64,
    pub tcp_resets_sent: u64,
    pub tcp_conns: u64,
    /// Closed connections held in TIME-WAIT.
    pub tcp_time_wait: u64,
    pub udp_in: u64,
    pub udp_out: u64,
    pub udp_no_port: u64,
    pub udp_rcvbuf_errors: u64,
    pub arp_requests_sent: u64,
    pub arp_replies_sent: u64,
    pub arp_in: u64,
    pub ip6_received: u64,
    pub ip6_bad_header: u64,
    pub ip6_delivered: u64,
    pub ip6_forwarded: u64,
    pub ip6_no_route: u64,
    pub ip6_sent: u64,
    pub icmp6_in: u64,
    pub icmp6_out: u64,
    pub nd_in: u64,
    pub nd_solicits_sent: u64,
    pub nd_adverts_sent: u64,
    pub bad_frames: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_layout_round_trip() {
        let a = SockAddr::inet(Ipv4Addr::new(192, 0, 2, 1), 8080);
        let b = a.to_linux();
        assert_eq!(b.len(), 16);
        assert_eq!(&b[2..4], &[0x1f, 0x90]);
        assert_eq!(&b[4..8], &[192, 0, 2, 1]);
        assert_eq!(SockAddr::from_linux(&b), Ok(a));
        assert_eq!(SockAddr::from_linux(&b[..5]), Err(Errno::EINVAL));
        assert_eq!(SockAddr::from_linux(&[]), Err(Errno::EINVAL));
        let mut bad = b.clone();
        bad[0] = 99;
        bad[1] = 0;
        assert_eq!(SockAddr::from_linux(&bad), Err(Errno::EAFNOSUPPORT));
        let six = SockAddr::Inet6 {
            addr: [1; 16],
            port: 1,
            flowinfo: 2,
            scope_id: 3,
        };
        assert_eq!(SockAddr::from_linux(&six.to_linux()), Ok(six));
    }

    #[test]
    fn families_and_mapped_addresses() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mapped = SockAddr::from_ip(af::INET6, v4, 80);
        assert_eq!(
            mapped,
            SockAddr::inet6("::ffff:192.0.2.1".parse().unwrap(), 80)
        );
        assert_eq!(mapped.to_ip(af::INET6), Ok((v4, 80, 0)));
        assert_eq!(mapped.to_ip(af::INET), Err(Errno::EAFNOSUPPORT));
        let plain = SockAddr::from_ip(af::INET, v4, 80);
        assert_eq!(plain.to_ip(af::INET), Ok((v4, 80, 0)));
        assert_eq!(plain.to_ip(af::INET6), Err(Errno::EAFNOSUPPORT));
        let ll = SockAddr::Inet6 {
            addr: "fe80::1".parse::<Ipv6Addr>().unwrap().octets(),
            port: 7,
            flowinfo: 0,
            scope_id: 3,
        };
        assert_eq!(ll.to_ip(af::INET6), Ok(("fe80::1".parse().unwrap(), 7, 3)));
        assert_eq!(alloc::format!("{ll}"), "[fe80::1%3]:7");
    }
}
