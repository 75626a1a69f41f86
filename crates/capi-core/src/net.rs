//! Socket calls: `rump_sys_socket` ... `rump_sys_getsockopt`, with Linux's
//! `struct sockaddr`, `struct msghdr` and option layouts.

use std::ffi::{c_int, c_void};

use rump::sys::{Cmsg, RecvInfo, Request, Response, SockAddr, SockOpt, MAX_IO};
use rump::Errno;

use crate::ctx;
use crate::ffi::{get, put, ret_int, ret_size, ret_unit, slice, slice_mut};
use crate::fs::{gather, iovecs};
use crate::resp;

/// The caller's address of `len` bytes.
fn addr_in(addr: *const libc::sockaddr, len: libc::socklen_t) -> Result<SockAddr, Errno> {
    if len as usize > 128 {
        return Err(Errno::EINVAL);
    }
    SockAddr::from_linux(slice(addr as *const u8, len as usize)?)
}

/// Stores `a` in the caller's `(addr, *len)`, truncated to the room given,
/// and the full length in `*len` (as Linux does). Both NULL: nothing.
fn addr_out(
    a: &SockAddr,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> Result<(), Errno> {
    if addr.is_null() && len.is_null() {
        return Ok(());
    }
    let room = get(len)?;
    if (room as i32) < 0 {
        return Err(Errno::EINVAL);
    }
    let bytes = a.to_linux();
    let out = slice_mut(addr as *mut u8, (room as usize).min(bytes.len()))?;
    let n = out.len();
    out.copy_from_slice(&bytes[..n]);
    put(len, bytes.len() as libc::socklen_t)
}

/// `socket(2)` (`AF_INET`, `AF_INET6`, `AF_UNIX`; `SOCK_NONBLOCK` and
/// `SOCK_CLOEXEC` in the type).
#[no_mangle]
pub extern "C" fn rump_sys_socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int {
    ret_int(resp::int(Request::Socket {
        domain,
        ty,
        protocol,
    }))
}

/// `bind(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_bind(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> c_int {
    ret_unit(addr_in(addr, len).and_then(|addr| resp::unit(Request::Bind { fd, addr })))
}

/// `connect(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_connect(
    fd: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> c_int {
    ret_unit(addr_in(addr, len).and_then(|addr| resp::unit(Request::Connect { fd, addr })))
}

/// `listen(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_listen(fd: c_int, backlog: c_int) -> c_int {
    ret_unit(resp::unit(Request::Listen { fd, backlog }))
}

/// `accept4(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_accept4(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
    flags: c_int,
) -> c_int {
    ret_int((|| {
        if !addr.is_null() {
            get(len)?;
        }
        match ctx::call(Request::Accept4 { fd, flags })? {
            Response::Accepted { fd: new, addr: a } => {
                if let Err(e) = addr_out(&a, addr, len) {
                    // The connection is taken; do not leak its descriptor.
                    let _ = resp::unit(Request::Close { fd: new });
                    return Err(e);
                }
                Ok(i64::from(new))
            }
            _ => Err(Errno::EIO),
        }
    })())
}

/// `accept(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_accept(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    rump_sys_accept4(fd, addr, len, 0)
}

/// `sendto(2)`; `addr` NULL sends on a connected socket.
#[no_mangle]
pub extern "C" fn rump_sys_sendto(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
    addr: *const libc::sockaddr,
    alen: libc::socklen_t,
) -> libc::ssize_t {
    ret_size((|| {
        let data = slice(buf as *const u8, len)?.to_vec();
        let addr = if addr.is_null() {
            None
        } else {
            Some(addr_in(addr, alen)?)
        };
        resp::size(Request::Sendto {
            fd,
            data,
            flags,
            addr,
        })
    })())
}

/// `send(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_send(
    fd: c_int,
    buf: *const c_void,
    len: usize,
    flags: c_int,
) -> libc::ssize_t {
    rump_sys_sendto(fd, buf, len, flags, std::ptr::null(), 0)
}

/// `recvfrom(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
    addr: *mut libc::sockaddr,
    alen: *mut libc::socklen_t,
) -> libc::ssize_t {
    ret_size((|| {
        let out = slice_mut(buf as *mut u8, len)?;
        if !addr.is_null() {
            get(alen)?;
        }
        let (data, info) = match ctx::call(Request::Recvfrom {
            fd,
            len: out.len().min(MAX_IO),
            flags,
        })? {
            Response::Recv { data, info } => (data, info),
            _ => return Err(Errno::EIO),
        };
        let n = data.len().min(out.len());
        out[..n].copy_from_slice(&data[..n]);
        if let Some(from) = &info.from {
            addr_out(from, addr, alen)?;
        } else if !alen.is_null() {
            put(alen, 0)?;
        }
        Ok(info.len)
    })())
}

/// `recv(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_recv(
    fd: c_int,
    buf: *mut c_void,
    len: usize,
    flags: c_int,
) -> libc::ssize_t {
    rump_sys_recvfrom(
        fd,
        buf,
        len,
        flags,
        std::ptr::null_mut(),
        std::ptr::null_mut(),
    )
}

/// `sendmsg(2)`: the iovecs gathered into one message, `msg_name` as the
/// destination, `msg_control` parsed (`IP_PKTINFO`, `IP_TTL`, ...).
#[no_mangle]
pub extern "C" fn rump_sys_sendmsg(
    fd: c_int,
    msg: *const libc::msghdr,
    flags: c_int,
) -> libc::ssize_t {
    ret_size((|| {
        let m = get(msg)?;
        let n = c_int::try_from(m.msg_iovlen).map_err(|_| Errno::EINVAL)?;
        let data = gather(m.msg_iov, n)?;
        let addr = if m.msg_name.is_null() {
            None
        } else {
            Some(addr_in(m.msg_name as *const libc::sockaddr, m.msg_namelen)?)
        };
        let control = if m.msg_controllen == 0 {
            Vec::new()
        } else {
            Cmsg::parse_linux(slice(m.msg_control as *const u8, m.msg_controllen)?)?
        };
        resp::size(Request::Sendmsg {
            fd,
            data,
            flags,
            addr,
            control,
        })
    })())
}

/// `recvmsg(2)`: data scattered over the iovecs, `msg_name`,
/// `msg_control` (`MSG_CTRUNC` when it does not fit) and `msg_flags`
/// filled in.
#[no_mangle]
pub extern "C" fn rump_sys_recvmsg(
    fd: c_int,
    msg: *mut libc::msghdr,
    flags: c_int,
) -> libc::ssize_t {
    ret_size((|| {
        let mut m = get(msg as *const libc::msghdr)?;
        let n = c_int::try_from(m.msg_iovlen).map_err(|_| Errno::EINVAL)?;
        let iov = iovecs(m.msg_iov, n)?;
        let total: usize = iov.iter().map(|v| v.iov_len).sum();
        let (data, info, control): (Vec<u8>, RecvInfo, Vec<Cmsg>) =
            match ctx::call(Request::Recvmsg {
                fd,
                len: total.min(MAX_IO),
                flags,
            })? {
                Response::RecvMsg {
                    data,
                    info,
                    control,
                } => (data, info, control),
                _ => return Err(Errno::EIO),
            };
        let mut rest = &data[..];
        for v in iov {
            if rest.is_empty() {
                break;
            }
            let k = rest.len().min(v.iov_len);
            slice_mut(v.iov_base as *mut u8, k)?.copy_from_slice(&rest[..k]);
            rest = &rest[k..];
        }
        let mut out_flags = info.flags;
        if !m.msg_name.is_null() {
            match &info.from {
                Some(from) => {
                    let mut l = m.msg_namelen;
                    addr_out(from, m.msg_name as *mut libc::sockaddr, &mut l)?;
                    m.msg_namelen = l;
                }
                None => m.msg_namelen = 0,
            }
        }
        let cbytes = Cmsg::to_linux(&control);
        if m.msg_control.is_null() || m.msg_controllen == 0 {
            if !cbytes.is_empty() {
                out_flags |= libc::MSG_CTRUNC;
            }
            m.msg_controllen = 0;
        } else {
            let room = m.msg_controllen;
            let k = cbytes.len().min(room);
            if k < cbytes.len() {
                out_flags |= libc::MSG_CTRUNC;
            }
            slice_mut(m.msg_control as *mut u8, k)?.copy_from_slice(&cbytes[..k]);
            m.msg_controllen = k;
        }
        m.msg_flags = out_flags;
        put(msg, m)?;
        Ok(info.len)
    })())
}

/// `shutdown(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_shutdown(fd: c_int, how: c_int) -> c_int {
    ret_unit(resp::unit(Request::Shutdown { fd, how }))
}

fn name_call(req: Request, addr: *mut libc::sockaddr, len: *mut libc::socklen_t) -> c_int {
    ret_unit((|| {
        get(len)?;
        match ctx::call(req)? {
            Response::SockAddr(a) => addr_out(&a, addr, len),
            _ => Err(Errno::EIO),
        }
    })())
}

/// `getsockname(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_getsockname(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    name_call(Request::Getsockname { fd }, addr, len)
}

/// `getpeername(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_getpeername(
    fd: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    name_call(Request::Getpeername { fd }, addr, len)
}

/// `setsockopt(2)` with Linux's option layouts (`int`, `struct linger`,
/// `struct timeval`).
#[no_mangle]
pub extern "C" fn rump_sys_setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: libc::socklen_t,
) -> c_int {
    ret_unit((|| {
        if len as usize > 4096 {
            return Err(Errno::EINVAL);
        }
        let opt = SockOpt::from_linux(level, name, slice(val as *const u8, len as usize)?)?;
        resp::unit(Request::Setsockopt { fd, opt })
    })())
}

/// `getsockopt(2)`: the value truncated to `*len`, `*len` set to the
/// length stored.
#[no_mangle]
pub extern "C" fn rump_sys_getsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *mut c_void,
    len: *mut libc::socklen_t,
) -> c_int {
    ret_unit((|| {
        let room = get(len)?;
        if (room as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        let opt = match ctx::call(Request::Getsockopt { fd, level, name })? {
            Response::SockOpt(o) => o,
            _ => return Err(Errno::EIO),
        };
        let bytes = opt.to_linux();
        let k = bytes.len().min(room as usize);
        slice_mut(val as *mut u8, k)?.copy_from_slice(&bytes[..k]);
        put(len, k as libc::socklen_t)
    })())
}
