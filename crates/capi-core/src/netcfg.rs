//! Network configuration in the spirit of buildrump's netconfig
//! (`rump_pub_netconfig_*`), the tables as JSON, and etfs
//! (`rump_pub_etfs_*`). All of them are requests of the system-call layer,
//! so they work the same on a local and on a remote kernel.

use std::ffi::{c_char, c_int, c_uint};
use std::net::{IpAddr, Ipv4Addr};

use rump::sys::{Request, RouteSpec};
use rump::Errno;

use crate::ffi::{cstr, cstr_opt, cstr_utf8, ret_unit, slice};
use crate::resp;

fn name(p: *const c_char) -> Result<String, Errno> {
    Ok(cstr_utf8(p)?.to_owned())
}

fn ip(p: *const c_char) -> Result<IpAddr, Errno> {
    cstr_utf8(p)?.parse().map_err(|_| Errno::EINVAL)
}

fn ipv4(p: *const c_char) -> Result<Ipv4Addr, Errno> {
    cstr_utf8(p)?.parse().map_err(|_| Errno::EINVAL)
}

fn unit(r: impl FnOnce() -> Result<Request, Errno>) -> c_int {
    ret_unit(r().and_then(resp::unit))
}

/// Creates interface `ifname` (`shmif0`, `virt0`, `pkt0`, ...).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifcreate(ifname: *const c_char) -> c_int {
    ret_unit((|| {
        let req = Request::IfCreate {
            name: name(ifname)?,
        };
        match crate::ctx::call(req)? {
            rump::sys::Response::Name(_) => Ok(()),
            _ => Err(Errno::EIO),
        }
    })())
}

/// Destroys an interface.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifdestroy(ifname: *const c_char) -> c_int {
    unit(|| {
        Ok(Request::IfDestroy {
            name: name(ifname)?,
        })
    })
}

/// Sets an interface's link: a bus file for shmif, a tap name for virt.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifsetlinkstr(
    ifname: *const c_char,
    link: *const c_char,
) -> c_int {
    unit(|| {
        Ok(Request::IfSetLink {
            name: name(ifname)?,
            link: name(link)?,
        })
    })
}

/// Brings an interface up.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifup(ifname: *const c_char) -> c_int {
    unit(|| {
        Ok(Request::IfSetUp {
            name: name(ifname)?,
            up: true,
        })
    })
}

/// Takes an interface down.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifdown(ifname: *const c_char) -> c_int {
    unit(|| {
        Ok(Request::IfSetUp {
            name: name(ifname)?,
            up: false,
        })
    })
}

/// Sets the MAC address (6 bytes).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifsetmac(ifname: *const c_char, mac: *const u8) -> c_int {
    unit(|| {
        let mut m = [0u8; 6];
        m.copy_from_slice(slice(mac, 6)?);
        Ok(Request::IfSetMac {
            name: name(ifname)?,
            mac: m,
        })
    })
}

/// Sets the MTU.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifsetmtu(ifname: *const c_char, mtu: c_uint) -> c_int {
    unit(|| {
        Ok(Request::IfSetMtu {
            name: name(ifname)?,
            mtu,
        })
    })
}

/// Captures the interface's frames to a pcap file (NULL stops).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifsetpcap(
    ifname: *const c_char,
    path: *const c_char,
) -> c_int {
    unit(|| {
        let path = match cstr_opt(path)? {
            Some(p) => Some(
                std::str::from_utf8(p)
                    .map_err(|_| Errno::EINVAL)?
                    .to_owned(),
            ),
            None => None,
        };
        Ok(Request::IfSetPcap {
            name: name(ifname)?,
            path,
        })
    })
}

fn add_addr(ifname: *const c_char, addr: IpAddr, prefix: c_int) -> c_int {
    unit(|| {
        let limit = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = u8::try_from(prefix)
            .ok()
            .filter(|p| *p <= limit)
            .ok_or(Errno::EINVAL)?;
        Ok(Request::IfAddAddr {
            name: name(ifname)?,
            addr,
            prefix,
        })
    })
}

/// Adds an IPv4 address with a dotted netmask (`"255.255.255.0"`); a
/// mask that is not contiguous is `EINVAL`.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ipv4_ifaddr(
    ifname: *const c_char,
    addr: *const c_char,
    mask: *const c_char,
) -> c_int {
    let parsed = (|| {
        let a = ipv4(addr)?;
        let m = u32::from(ipv4(mask)?);
        if m.leading_ones() + m.trailing_zeros() != 32 {
            return Err(Errno::EINVAL);
        }
        Ok((a, m.leading_ones() as c_int))
    })();
    match parsed {
        Ok((a, p)) => add_addr(ifname, IpAddr::V4(a), p),
        Err(e) => crate::ffi::fail(e),
    }
}

/// Adds an IPv4 address with a prefix length (`"10.0.0.1"`, 24).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ipv4_ifaddr_cidr(
    ifname: *const c_char,
    addr: *const c_char,
    prefixlen: c_int,
) -> c_int {
    match ipv4(addr) {
        Ok(a) => add_addr(ifname, IpAddr::V4(a), prefixlen),
        Err(e) => crate::ffi::fail(e),
    }
}

/// Adds an IPv6 address with a prefix length.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ipv6_ifaddr(
    ifname: *const c_char,
    addr: *const c_char,
    prefixlen: c_int,
) -> c_int {
    match ip(addr) {
        Ok(a @ IpAddr::V6(_)) => add_addr(ifname, a, prefixlen),
        Ok(IpAddr::V4(_)) => crate::ffi::fail(Errno::EINVAL),
        Err(e) => crate::ffi::fail(e),
    }
}

/// Removes an address (IPv4 or IPv6).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ifdeladdr(
    ifname: *const c_char,
    addr: *const c_char,
) -> c_int {
    unit(|| {
        Ok(Request::IfDelAddr {
            name: name(ifname)?,
            addr: ip(addr)?,
        })
    })
}

fn default_route(gw: *const c_char, v6: bool) -> c_int {
    unit(|| {
        let gateway = ip(gw)?;
        if gateway.is_ipv6() != v6 {
            return Err(Errno::EINVAL);
        }
        let dst = if v6 {
            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        Ok(Request::RouteAdd {
            spec: RouteSpec {
                dst,
                prefix: 0,
                gateway: Some(gateway),
                ifname: None,
            },
        })
    })
}

/// Adds an IPv4 default route through `gw`.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ipv4_gw(gw: *const c_char) -> c_int {
    default_route(gw, false)
}

/// Adds an IPv6 default route through `gw`.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_ipv6_gw(gw: *const c_char) -> c_int {
    default_route(gw, true)
}

/// Adds a route to `dst/prefixlen` through `gw` (NULL: on-link) and/or
/// out of `ifname` (NULL: found from the gateway).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_route_add(
    dst: *const c_char,
    prefixlen: c_int,
    gw: *const c_char,
    ifname: *const c_char,
) -> c_int {
    unit(|| {
        let dst = ip(dst)?;
        let gateway = if gw.is_null() { None } else { Some(ip(gw)?) };
        let ifname = if ifname.is_null() {
            None
        } else {
            Some(name(ifname)?)
        };
        Ok(Request::RouteAdd {
            spec: RouteSpec {
                dst,
                prefix: u8::try_from(prefixlen).map_err(|_| Errno::EINVAL)?,
                gateway,
                ifname,
            },
        })
    })
}

/// Deletes the route to `dst/prefixlen`.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_route_delete(dst: *const c_char, prefixlen: c_int) -> c_int {
    unit(|| {
        Ok(Request::RouteDelete {
            dst: ip(dst)?,
            prefix: u8::try_from(prefixlen).map_err(|_| Errno::EINVAL)?,
        })
    })
}

/// Deletes a neighbour (ARP or NDP) entry.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_arp_delete(addr: *const c_char) -> c_int {
    unit(|| Ok(Request::ArpDelete { ip: ip(addr)? }))
}

/// The interfaces as JSON, `snprintf`-style (see `rump_sys_getmounts`).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_iflist(buf: *mut c_char, len: usize) -> libc::ssize_t {
    crate::json_list(buf, len, Request::IfList)
}

/// The routing table as JSON.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_routelist(buf: *mut c_char, len: usize) -> libc::ssize_t {
    crate::json_list(buf, len, Request::RouteList)
}

/// The neighbour table as JSON.
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_arplist(buf: *mut c_char, len: usize) -> libc::ssize_t {
    crate::json_list(buf, len, Request::ArpList)
}

/// The protocol counters as JSON (`netstat -s`).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_netstats(buf: *mut c_char, len: usize) -> libc::ssize_t {
    crate::json_list(buf, len, Request::NetStats)
}

/// The socket table as JSON (`netstat`).
#[no_mangle]
pub extern "C" fn rump_pub_netconfig_socklist(buf: *mut c_char, len: usize) -> libc::ssize_t {
    crate::json_list(buf, len, Request::SockList)
}

/// etfs types (`RUMP_ETFS_*`, NetBSD's numbering). This kernel's etfs
/// makes block devices: `RUMP_ETFS_BLK` and `RUMP_ETFS_CHR` both give a
/// device node (block I/O on a host file); regular files and directories
/// are not supported (`EOPNOTSUPP`).
pub const RUMP_ETFS_REG: c_int = 0;
pub const RUMP_ETFS_BLK: c_int = 1;
pub const RUMP_ETFS_CHR: c_int = 2;
pub const RUMP_ETFS_DIR: c_int = 3;
pub const RUMP_ETFS_DIR_SUBDIRS: c_int = 4;
/// Or'ed into the type: the host file is opened read-only, and the device
/// refuses writes (an extension of ours).
pub const RUMP_ETFS_RDONLY: c_int = 0x100;

/// Checks an etfs type; returns whether it asks for read-only.
fn etfs_type(ftype: c_int) -> Result<bool, Errno> {
    match ftype & !RUMP_ETFS_RDONLY {
        RUMP_ETFS_BLK | RUMP_ETFS_CHR => Ok(ftype & RUMP_ETFS_RDONLY != 0),
        RUMP_ETFS_REG | RUMP_ETFS_DIR | RUMP_ETFS_DIR_SUBDIRS => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

/// Registers host file `hostpath` as device `key` (`/dev/disk0`, or a bare
/// name for `/dev/NAME`); its MBR or GPT partitions appear as `keyp1`, ...
#[no_mangle]
pub extern "C" fn rump_pub_etfs_register(
    key: *const c_char,
    hostpath: *const c_char,
    ftype: c_int,
) -> c_int {
    unit(|| {
        let read_only = etfs_type(ftype)?;
        Ok(Request::EtfsRegister {
            key: cstr(key)?.to_vec(),
            host_path: cstr(hostpath)?.to_vec(),
            read_only,
        })
    })
}

/// `size` for "to the end of the file" (NetBSD's `RUMP_ETFS_SIZE_ENDOFF`).
pub const RUMP_ETFS_SIZE_ENDOFF: u64 = u64::MAX;

/// Registers the byte window `begin .. begin + size` of `hostpath` as
/// device `key` (`size` `RUMP_ETFS_SIZE_ENDOFF`: to the end). Both must be
/// multiples of 512 and inside the file (`EINVAL`).
#[no_mangle]
pub extern "C" fn rump_pub_etfs_register_withsize(
    key: *const c_char,
    hostpath: *const c_char,
    ftype: c_int,
    begin: u64,
    size: u64,
) -> c_int {
    unit(|| {
        let read_only = etfs_type(ftype)?;
        Ok(Request::EtfsRegisterWindow {
            key: cstr(key)?.to_vec(),
            host_path: cstr(hostpath)?.to_vec(),
            read_only,
            offset: begin,
            size,
        })
    })
}

/// Removes a registration (`EBUSY` while a file system on it is mounted).
#[no_mangle]
pub extern "C" fn rump_pub_etfs_remove(key: *const c_char) -> c_int {
    unit(|| {
        Ok(Request::EtfsRemove {
            key: cstr(key)?.to_vec(),
        })
    })
}
