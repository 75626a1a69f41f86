//! `socket`, and the lookup every socket call starts with.

use alloc::sync::Arc;

use kern::consts::sock;
use kern::{Errno, File, Proc};
use net::Socket;

/// Makes a socket: `AF_INET` with `SOCK_STREAM` (TCP), `SOCK_DGRAM` (UDP)
/// or `SOCK_DGRAM` and `IPPROTO_ICMP` (ping). `ty` may carry
/// `SOCK_NONBLOCK` and `SOCK_CLOEXEC`. `EAFNOSUPPORT` in a kernel without
/// the network component.
pub fn socket(p: &Proc, domain: i32, ty: i32, protocol: i32) -> Result<i32, Errno> {
    p.kernel().check()?;
    let f = net::socket(p.kernel(), domain, ty, protocol)?;
    p.install(Arc::new(f), ty & sock::CLOEXEC != 0)
}

/// The open file behind `fd`, which must be a socket (`ENOTSOCK`).
pub(crate) fn sock_file(p: &Proc, fd: i32) -> Result<Arc<File>, Errno> {
    p.kernel().check()?;
    let f = p.file(fd)?;
    net::socket_of(&f)?;
    Ok(f)
}

/// Runs `op` on the socket behind `fd`.
pub(crate) fn with_socket<R>(
    p: &Proc,
    fd: i32,
    op: impl FnOnce(&Socket, &File) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let f = sock_file(p, fd)?;
    let s = net::socket_of(&f)?;
    op(s, &f)
}
