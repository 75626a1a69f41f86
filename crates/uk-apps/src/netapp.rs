//! The network side of the example applications: one interface on the
//! link the platform offers, configured from parameters, and a few socket
//! helpers.
//!
//! Parameters (boot-block `--param` on the guest, environment variables in
//! a process):
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `link` | `net0` | the tap: `net0` is the guest's first `--net`; in a process a tap name or `netns:NS:TAP` |
//! | `ip` | `192.0.2.2/24` | IPv4 address and prefix length |
//! | `gw` | none | default gateway |
//! | `port` | per application | the TCP port to listen on |

use alloc::format;
use alloc::string::{String, ToString};
use core::net::{IpAddr, Ipv4Addr};

use hyper::{Errno, Hyper};
use kern::consts::{af, sock};
use kern::Proc;
use net::{RouteSpec, SockAddr, SockOpt};

/// The interface configuration an application was given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetParams {
    pub link: String,
    pub addr: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
}

impl NetParams {
    /// Reads `link`, `ip` and `gw`; a malformed value is an error naming it.
    pub fn from_params(h: &dyn Hyper) -> Result<NetParams, String> {
        let link = h.param("link").unwrap_or_else(|| "net0".to_string());
        let ip = h.param("ip").unwrap_or_else(|| "192.0.2.2/24".to_string());
        let (a, pfx) = ip.split_once('/').unwrap_or((&ip, "24"));
        let addr: Ipv4Addr = a
            .parse()
            .map_err(|_| format!("ip={ip}: not an IPv4 address"))?;
        let prefix: u8 = match pfx.parse() {
            Ok(n) if n <= 32 => n,
            _ => return Err(format!("ip={ip}: prefix length must be 0 to 32")),
        };
        let gateway = match h.param("gw") {
            None => None,
            Some(g) => Some(
                g.parse()
                    .map_err(|_| format!("gw={g}: not an IPv4 address"))?,
            ),
        };
        Ok(NetParams {
            link,
            addr,
            prefix,
            gateway,
        })
    }

    /// Creates `virt0` on the link, gives it the address, brings it up and
    /// adds the default route. Returns the interface's name.
    pub fn configure(&self, p: &Proc) -> Result<String, Errno> {
        let ifname = sys::if_create(p, "virt0")?;
        sys::if_set_link(p, &ifname, &self.link)?;
        sys::if_add_addr(p, &ifname, self.addr, self.prefix)?;
        sys::if_set_up(p, &ifname, true)?;
        if let Some(gw) = self.gateway {
            sys::route_add(
                p,
                &RouteSpec {
                    dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    prefix: 0,
                    gateway: Some(IpAddr::V4(gw)),
                    ifname: None,
                },
            )?;
        }
        Ok(ifname)
    }
}

/// The `port` parameter, or `default`.
pub fn port_param(h: &dyn Hyper, default: u16) -> Result<u16, String> {
    match h.param("port") {
        None => Ok(default),
        Some(v) => match v.parse::<u16>() {
            Ok(n) if n != 0 => Ok(n),
            _ => Err(format!("port={v}: expected 1 to 65535")),
        },
    }
}

/// A TCP socket listening on `port` of every address.
pub fn tcp_listen(p: &Proc, port: u16, backlog: i32) -> Result<i32, Errno> {
    let fd = sys::socket(p, af::INET, sock::STREAM, 0)?;
    let r = (|| {
        sys::setsockopt(p, fd, SockOpt::ReuseAddr(true))?;
        sys::bind(p, fd, SockAddr::inet(Ipv4Addr::UNSPECIFIED, port))?;
        sys::listen(p, fd, backlog)
    })();
    match r {
        Ok(()) => Ok(fd),
        Err(e) => {
            let _ = sys::close(p, fd);
            Err(e)
        }
    }
}

/// Sends all of `data`.
pub fn send_all(p: &Proc, fd: i32, mut data: &[u8]) -> Result<(), Errno> {
    while !data.is_empty() {
        let n = sys::send(p, fd, data, 0)?;
        if n == 0 {
            return Err(Errno::EPIPE);
        }
        data = &data[n..];
    }
    Ok(())
}
