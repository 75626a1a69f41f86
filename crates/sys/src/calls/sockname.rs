//! `getsockname` and `getpeername`.

use kern::{Errno, Proc};
use net::SockAddr;

use super::socket::with_socket;

/// The socket's local address.
pub fn getsockname(p: &Proc, fd: i32) -> Result<SockAddr, Errno> {
    with_socket(p, fd, |s, _| s.local_addr())
}

/// The connected peer's address; `ENOTCONN` if there is none.
pub fn getpeername(p: &Proc, fd: i32) -> Result<SockAddr, Errno> {
    with_socket(p, fd, |s, _| s.peer_addr())
}
