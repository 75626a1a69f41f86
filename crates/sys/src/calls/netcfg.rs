//! Network configuration calls: the typed equivalents of `ifconfig`'s and
//! `route`'s ioctls (`SIOCIFCREATE`, `SIOCSLINKSTR`, `SIOCAIFADDR`, ...)
//! and of the routing socket. Changes need root (`EPERM`); reading does
//! not.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

use kern::{Errno, Proc};
use net::{ArpInfo, IfInfo, NetStats, RouteInfo, RouteSpec, SockInfo, Stack};

fn stack(p: &Proc) -> Result<alloc::sync::Arc<Stack>, Errno> {
    p.kernel().check()?;
    net::stack_of(p.kernel())
}

fn admin(p: &Proc) -> Result<alloc::sync::Arc<Stack>, Errno> {
    let s = stack(p)?;
    if !p.cred().is_root() {
        return Err(Errno::EPERM);
    }
    Ok(s)
}

/// Creates an interface (`bus0`, `shmif1`, `virt0`, or a bare kind for the
/// next free unit); returns its name.
pub fn if_create(p: &Proc, name: &str) -> Result<String, Errno> {
    admin(p)?.if_create(name)
}

/// Destroys an interface.
pub fn if_destroy(p: &Proc, name: &str) -> Result<(), Errno> {
    admin(p)?.if_destroy(name)
}

/// Sets an interface's link: a bus name, a bus file, a tap device.
pub fn if_set_link(p: &Proc, name: &str, link: &str) -> Result<(), Errno> {
    admin(p)?.if_set_link(name, link)
}

/// Sets an interface's MAC address.
pub fn if_set_mac(p: &Proc, name: &str, mac: [u8; 6]) -> Result<(), Errno> {
    admin(p)?.if_set_mac(name, mac)
}

/// Sets an interface's MTU.
pub fn if_set_mtu(p: &Proc, name: &str, mtu: u32) -> Result<(), Errno> {
    admin(p)?.if_set_mtu(name, mtu)
}

/// Adds an IPv4 or IPv6 address with its prefix length (`[u8; 4]`,
/// `[u8; 16]`, `Ipv4Addr`, `Ipv6Addr` and `IpAddr` all do).
pub fn if_add_addr(p: &Proc, name: &str, addr: impl Into<IpAddr>, prefix: u8) -> Result<(), Errno> {
    admin(p)?.if_add_addr(name, addr.into(), prefix)
}

/// Removes an address.
pub fn if_del_addr(p: &Proc, name: &str, addr: impl Into<IpAddr>) -> Result<(), Errno> {
    admin(p)?.if_del_addr(name, addr.into())
}

/// Brings an interface up or down.
pub fn if_set_up(p: &Proc, name: &str, up: bool) -> Result<(), Errno> {
    admin(p)?.if_set_up(name, up)
}

/// Starts capturing an interface to a pcap file on the host, or stops.
pub fn if_set_pcap(p: &Proc, name: &str, path: Option<&str>) -> Result<(), Errno> {
    admin(p)?.if_set_pcap(name, path)
}

/// Every interface with its configuration and counters.
pub fn if_list(p: &Proc) -> Result<Vec<IfInfo>, Errno> {
    Ok(stack(p)?.if_list())
}

/// Adds a route (`0.0.0.0/0` and `::/0` are the default routes).
pub fn route_add(p: &Proc, spec: &RouteSpec) -> Result<(), Errno> {
    admin(p)?.route_add(spec)
}

/// Deletes a route.
pub fn route_delete(p: &Proc, dst: impl Into<IpAddr>, prefix: u8) -> Result<(), Errno> {
    admin(p)?.route_delete(dst.into(), prefix)
}

/// The routing table.
pub fn route_list(p: &Proc) -> Result<Vec<RouteInfo>, Errno> {
    Ok(stack(p)?.route_list())
}

/// The neighbour table (ARP and IPv6 neighbour discovery).
pub fn arp_list(p: &Proc) -> Result<Vec<ArpInfo>, Errno> {
    Ok(stack(p)?.arp_list())
}

/// Deletes a neighbour entry.
pub fn arp_delete(p: &Proc, ip: impl Into<IpAddr>) -> Result<(), Errno> {
    admin(p)?.arp_delete(ip.into())
}

/// Protocol counters.
pub fn net_stats(p: &Proc) -> Result<NetStats, Errno> {
    Ok(stack(p)?.stats())
}

/// The socket table (`netstat`): every socket of every process, and the
/// connections in TIME-WAIT.
pub fn sock_list(p: &Proc) -> Result<Vec<SockInfo>, Errno> {
    Ok(stack(p)?.sock_list())
}
