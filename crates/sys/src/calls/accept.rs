//! `accept` and `accept4`.

use alloc::sync::Arc;

use kern::consts::sock;
use kern::{Errno, Proc};
use net::SockAddr;

use super::socket::with_socket;

/// Takes the oldest completed connection: its descriptor and its peer.
pub fn accept(p: &Proc, fd: i32) -> Result<(i32, SockAddr), Errno> {
    accept4(p, fd, 0)
}

/// `accept` with `SOCK_NONBLOCK` and `SOCK_CLOEXEC` for the new descriptor.
pub fn accept4(p: &Proc, fd: i32, flags: i32) -> Result<(i32, SockAddr), Errno> {
    let (file, peer) = with_socket(p, fd, |s, f| s.accept(p, f, flags))?;
    let nfd = p.install(Arc::new(file), flags & sock::CLOEXEC != 0)?;
    Ok((nfd, peer))
}
