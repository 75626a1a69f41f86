//! `bind`.

use kern::{Errno, Proc};
use net::SockAddr;

use super::socket::with_socket;

/// Binds a socket to a local address. Ports below 1024 need root
/// (`EACCES`), as on BSD and Linux.
pub fn bind(p: &Proc, fd: i32, addr: SockAddr) -> Result<(), Errno> {
    with_socket(p, fd, |s, _| {
        if let SockAddr::Inet { port, .. } | SockAddr::Inet6 { port, .. } = addr {
            if (1..1024).contains(&port) && !p.cred().is_root() {
                return Err(Errno::EACCES);
            }
        }
        s.bind(addr)
    })
}
