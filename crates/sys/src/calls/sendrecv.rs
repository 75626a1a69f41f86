//! `send`, `sendto`, `sendmsg`, `recv`, `recvfrom`, `recvmsg`.

use alloc::vec::Vec;

use kern::consts::{msg, IOV_MAX};
use kern::{Errno, Proc};
use net::{Cmsg, RecvInfo, SockAddr};

use super::socket::with_socket;

const SEND_FLAGS: i32 = msg::DONTWAIT | msg::NOSIGNAL | msg::MORE | msg::EOR;
const RECV_FLAGS: i32 = msg::DONTWAIT | msg::PEEK | msg::WAITALL | msg::TRUNC | msg::CMSG_CLOEXEC;

/// Sends on a connected socket. Flags: `MSG_DONTWAIT` (and
/// `MSG_NOSIGNAL`, `MSG_MORE`, `MSG_EOR`, accepted; there are no signals).
pub fn send(p: &Proc, fd: i32, data: &[u8], flags: i32) -> Result<usize, Errno> {
    sendto(p, fd, data, flags, None)
}

/// Sends to `to` (datagram sockets; ignored by connected stream sockets).
pub fn sendto(
    p: &Proc,
    fd: i32,
    data: &[u8],
    flags: i32,
    to: Option<SockAddr>,
) -> Result<usize, Errno> {
    if flags & !SEND_FLAGS != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    with_socket(p, fd, |s, f| s.send(p, f, data, flags, to))
}

/// Sends the concatenation of `bufs` (one datagram on a datagram socket)
/// with control messages: `Cmsg::PktInfo` (source address, interface) and
/// `Cmsg::Ttl`/`Cmsg::HopLimit` on UDP sockets; `EINVAL` for others there.
/// Stream and ping sockets ignore them.
pub fn sendmsg(
    p: &Proc,
    fd: i32,
    bufs: &[&[u8]],
    to: Option<SockAddr>,
    control: &[Cmsg],
    flags: i32,
) -> Result<usize, Errno> {
    if bufs.len() > IOV_MAX {
        return Err(Errno::EMSGSIZE);
    }
    if flags & !SEND_FLAGS != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let joined;
    let data: &[u8] = match bufs {
        [] => &[],
        [one] => one,
        _ => {
            joined = bufs.concat();
            &joined
        }
    };
    with_socket(p, fd, |s, f| s.send_msg(p, f, data, flags, to, control))
}

/// Receives. Flags: `MSG_PEEK`, `MSG_DONTWAIT`, `MSG_WAITALL`,
/// `MSG_TRUNC`.
pub fn recv(p: &Proc, fd: i32, buf: &mut [u8], flags: i32) -> Result<usize, Errno> {
    recvfrom(p, fd, buf, flags).map(|i| i.len)
}

/// Receives, with the sender's address and `MSG_TRUNC` in the result.
pub fn recvfrom(p: &Proc, fd: i32, buf: &mut [u8], flags: i32) -> Result<RecvInfo, Errno> {
    if flags & !RECV_FLAGS != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    with_socket(p, fd, |s, f| s.recv(p, f, buf, flags))
}

/// Receives into several buffers in order (one datagram on a datagram
/// socket, scattered), with the control messages the socket asked for
/// (`SO_TIMESTAMP`, `IP_PKTINFO`, `IP_RECVTTL` and their IPv6 kin).
pub fn recvmsg(
    p: &Proc,
    fd: i32,
    bufs: &mut [&mut [u8]],
    flags: i32,
) -> Result<(RecvInfo, Vec<Cmsg>), Errno> {
    if bufs.len() > IOV_MAX {
        return Err(Errno::EMSGSIZE);
    }
    if flags & !RECV_FLAGS != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if let [one] = bufs {
        return with_socket(p, fd, |s, f| s.recv_msg(p, f, one, flags));
    }
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    let mut tmp = alloc::vec![0u8; total];
    let got = with_socket(p, fd, |s, f| s.recv_msg(p, f, &mut tmp, flags))?;
    let mut at = 0;
    let n = got.0.len.min(total);
    for b in bufs.iter_mut() {
        if at >= n {
            break;
        }
        let k = b.len().min(n - at);
        b[..k].copy_from_slice(&tmp[at..at + k]);
        at += k;
    }
    Ok(got)
}
