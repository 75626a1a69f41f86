//! `connect`.

use kern::{Errno, Proc};
use net::SockAddr;

use super::socket::with_socket;

/// Connects a stream socket (blocking, or `EINPROGRESS` when
/// non-blocking, the outcome then in `SO_ERROR`), or sets a datagram
/// socket's peer (`SockAddr::Unspec` dissolves it).
pub fn connect(p: &Proc, fd: i32, addr: SockAddr) -> Result<(), Errno> {
    with_socket(p, fd, |s, f| s.connect(p, f, addr))
}
