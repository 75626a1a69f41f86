//! Socket calls: addresses in and out of `struct sockaddr`, messages
//! through `struct msghdr`, options as Linux's bytes.

use alloc::vec::Vec;

use sys::consts::{af, sock};
use sys::{Cmsg, Errno, Request, Response, SockAddr, SockOpt, MAX_IO};

use crate::layout::{msghdr, sockaddr};
use crate::mem::{gather, read_bytes, read_iovecs, read_u32, scatter, u64_at, write_bytes};
use crate::{int, Linux};

/// `MSG_CTRUNC`: control messages were cut short.
const MSG_CTRUNC: i32 = 0x8;
/// The largest `msg_control` buffer read for `sendmsg`.
const CONTROL_MAX: usize = 64 * 1024;
/// The largest option value `setsockopt` reads.
const OPTVAL_MAX: usize = 4096;

impl Linux<'_> {
    pub(crate) fn socket(&self, domain: u64, ty: u64, protocol: u64) -> Result<u64, Errno> {
        let ty = int(ty);
        let kfd = self.int_of(Request::Socket {
            domain: int(domain),
            ty,
            protocol: int(protocol),
        })?;
        self.install(kfd, ty & sock::CLOEXEC != 0)
    }

    fn sockaddr_in(&self, addr: u64, len: u64) -> Result<SockAddr, Errno> {
        read_sockaddr(self.mem, addr, len)
    }

    /// Writes `a` to a caller's (`addr`, `*lenp`) pair: at most `*lenp`
    /// bytes, and the full length back to `*lenp` (accept(2),
    /// getsockname(2)). A NULL `addr` writes nothing.
    fn sockaddr_out(&self, a: &SockAddr, addr: u64, lenp: u64) -> Result<(), Errno> {
        if addr == 0 {
            return Ok(());
        }
        let room = read_u32(self.mem, lenp)? as i32;
        if room < 0 {
            return Err(Errno::EINVAL);
        }
        let bytes = a.to_linux();
        let n = bytes.len().min(room as usize);
        write_bytes(self.mem, addr, &bytes[..n])?;
        write_bytes(self.mem, lenp, &(bytes.len() as u32).to_ne_bytes())
    }

    pub(crate) fn bind_connect(
        &self,
        fd: u64,
        addr: u64,
        len: u64,
        is_bind: bool,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let addr = self.sockaddr_in(addr, len)?;
        self.unit(if is_bind {
            Request::Bind { fd, addr }
        } else {
            Request::Connect { fd, addr }
        })
    }

    pub(crate) fn accept4(&self, fd: u64, addr: u64, lenp: u64, flags: u64) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let flags = int(flags);
        if flags & !(sock::NONBLOCK | sock::CLOEXEC) != 0 {
            return Err(Errno::EINVAL);
        }
        if addr != 0 && (read_u32(self.mem, lenp)? as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        let (kfd, peer) = match self.req(Request::Accept4 { fd, flags })? {
            Response::Accepted { fd, addr } => (fd, addr),
            _ => return Err(Errno::EIO),
        };
        if let Err(e) = self.sockaddr_out(&peer, addr, lenp) {
            let _ = self.req(Request::Close { fd: kfd });
            return Err(e);
        }
        self.install(kfd as u64, flags & sock::CLOEXEC != 0)
    }

    pub(crate) fn sendto(
        &self,
        fd: u64,
        buf: u64,
        len: u64,
        flags: u64,
        addr: u64,
        alen: u64,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let to = if addr == 0 {
            None
        } else {
            Some(self.sockaddr_in(addr, alen)?)
        };
        let data = read_bytes(self.mem, buf, len.min(MAX_IO as u64) as usize)?;
        self.int_of(Request::Sendto {
            fd,
            data,
            flags: int(flags),
            addr: to,
        })
    }

    pub(crate) fn recvfrom(
        &self,
        fd: u64,
        buf: u64,
        len: u64,
        flags: u64,
        addr: u64,
        lenp: u64,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let (data, info) = match self.req(Request::Recvfrom {
            fd,
            len: len.min(MAX_IO as u64) as usize,
            flags: int(flags),
        })? {
            Response::Recv { data, info } => (data, info),
            _ => return Err(Errno::EIO),
        };
        write_bytes(self.mem, buf, &data)?;
        if let Some(from) = &info.from {
            self.sockaddr_out(from, addr, lenp)?;
        } else if addr != 0 {
            write_bytes(self.mem, lenp, &0u32.to_ne_bytes())?;
        }
        Ok(info.len as u64)
    }

    pub(crate) fn sendmsg(&self, fd: u64, msg: u64, flags: u64) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let h = read_bytes(self.mem, msg, msghdr::SIZE)?;
        let name = u64_at(&h, msghdr::NAME);
        let namelen = read_u32_at(&h, msghdr::NAMELEN);
        let to = if name == 0 || namelen == 0 {
            None
        } else {
            Some(self.sockaddr_in(name, namelen as u64)?)
        };
        let iovs = read_iovecs(
            self.mem,
            u64_at(&h, msghdr::IOV),
            u64_at(&h, msghdr::IOVLEN),
        )
        .map_err(|e| {
            if e == Errno::EINVAL {
                Errno::EMSGSIZE
            } else {
                e
            }
        })?;
        let data = gather(self.mem, &iovs, MAX_IO)?;
        let control = u64_at(&h, msghdr::CONTROL);
        let clen = u64_at(&h, msghdr::CONTROLLEN);
        let control = if control == 0 || clen == 0 {
            Vec::new()
        } else {
            if clen > CONTROL_MAX as u64 {
                return Err(Errno::ENOBUFS);
            }
            Cmsg::parse_linux(&read_bytes(self.mem, control, clen as usize)?)?
        };
        self.int_of(Request::Sendmsg {
            fd,
            data,
            flags: int(flags),
            addr: to,
            control,
        })
    }

    pub(crate) fn recvmsg(&self, fd: u64, msg: u64, flags: u64) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let h = read_bytes(self.mem, msg, msghdr::SIZE)?;
        let iovs = read_iovecs(
            self.mem,
            u64_at(&h, msghdr::IOV),
            u64_at(&h, msghdr::IOVLEN),
        )
        .map_err(|e| {
            if e == Errno::EINVAL {
                Errno::EMSGSIZE
            } else {
                e
            }
        })?;
        let total: u64 = iovs.iter().map(|v| v.len).sum();
        let (data, info, control) = match self.req(Request::Recvmsg {
            fd,
            len: total.min(MAX_IO as u64) as usize,
            flags: int(flags),
        })? {
            Response::RecvMsg {
                data,
                info,
                control,
            } => (data, info, control),
            _ => return Err(Errno::EIO),
        };
        scatter(self.mem, &iovs, &data)?;
        let mut out_flags = info.flags;
        // msg_name: written when there is room, msg_namelen set to the
        // address's length (0 with none).
        let name = u64_at(&h, msghdr::NAME);
        let namelen = read_u32_at(&h, msghdr::NAMELEN) as usize;
        let mut new_namelen = 0u32;
        if let (Some(from), true) = (&info.from, name != 0) {
            let b = from.to_linux();
            write_bytes(self.mem, name, &b[..b.len().min(namelen)])?;
            new_namelen = b.len() as u32;
        }
        write_bytes(
            self.mem,
            msg + msghdr::NAMELEN as u64,
            &new_namelen.to_ne_bytes(),
        )?;
        // Control messages: whole ones while they fit, MSG_CTRUNC else.
        let cptr = u64_at(&h, msghdr::CONTROL);
        let croom = if cptr == 0 {
            0
        } else {
            u64_at(&h, msghdr::CONTROLLEN) as usize
        };
        let mut cbytes = Vec::new();
        for c in &control {
            let one = Cmsg::to_linux(core::slice::from_ref(c));
            if cbytes.len() + one.len() > croom {
                out_flags |= MSG_CTRUNC;
                break;
            }
            cbytes.extend_from_slice(&one);
        }
        write_bytes(self.mem, cptr, &cbytes)?;
        write_bytes(
            self.mem,
            msg + msghdr::CONTROLLEN as u64,
            &(cbytes.len() as u64).to_ne_bytes(),
        )?;
        write_bytes(
            self.mem,
            msg + msghdr::FLAGS as u64,
            &out_flags.to_ne_bytes(),
        )?;
        Ok(info.len as u64)
    }

    pub(crate) fn sockname(&self, fd: u64, addr: u64, lenp: u64, peer: bool) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        // Linux reads *addrlen before the call (EFAULT, EINVAL first).
        if (read_u32(self.mem, lenp)? as i32) < 0 {
            return Err(Errno::EINVAL);
        }
        let a = match self.req(if peer {
            Request::Getpeername { fd }
        } else {
            Request::Getsockname { fd }
        })? {
            Response::SockAddr(a) => a,
            _ => return Err(Errno::EIO),
        };
        if addr == 0 {
            return Err(Errno::EFAULT);
        }
        self.sockaddr_out(&a, addr, lenp)?;
        Ok(0)
    }

    pub(crate) fn setsockopt(
        &self,
        fd: u64,
        level: u64,
        name: u64,
        val: u64,
        len: u64,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let len = int(len);
        if len < 0 {
            return Err(Errno::EINVAL);
        }
        let v = read_bytes(self.mem, val, (len as usize).min(OPTVAL_MAX))?;
        let opt = SockOpt::from_linux(int(level), int(name), &v)?;
        self.unit(Request::Setsockopt { fd, opt })
    }

    pub(crate) fn getsockopt(
        &self,
        fd: u64,
        level: u64,
        name: u64,
        val: u64,
        lenp: u64,
    ) -> Result<u64, Errno> {
        let fd = self.fd(fd)?;
        let room = read_u32(self.mem, lenp)? as i32;
        if room < 0 {
            return Err(Errno::EINVAL);
        }
        let opt = match self.req(Request::Getsockopt {
            fd,
            level: int(level),
            name: int(name),
        })? {
            Response::SockOpt(o) => o,
            _ => return Err(Errno::EIO),
        };
        let b = opt.to_linux();
        let n = b.len().min(room as usize);
        write_bytes(self.mem, val, &b[..n])?;
        write_bytes(self.mem, lenp, &(n as u32).to_ne_bytes())?;
        Ok(0)
    }
}

fn read_u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Reads a `struct sockaddr` of `len` bytes at `addr`, with Linux's length
/// rules: at most `sockaddr_storage`, `sockaddr_in` in full for AF_INET,
/// the RFC 2133 `sockaddr_in6` at least for AF_INET6.
pub fn read_sockaddr(mem: &dyn crate::Memory, addr: u64, len: u64) -> Result<SockAddr, Errno> {
    let len = int(len);
    if len < 0 || len as usize > sockaddr::STORAGE_SIZE {
        return Err(Errno::EINVAL);
    }
    let mut b = read_bytes(mem, addr, len as usize)?;
    if b.len() < 2 {
        return Err(Errno::EINVAL);
    }
    match u16::from_ne_bytes([b[0], b[1]]) as i32 {
        af::INET if b.len() < sockaddr::IN_SIZE => return Err(Errno::EINVAL),
        af::INET6 if b.len() < sockaddr::IN6_SIZE_RFC2133 => return Err(Errno::EINVAL),
        af::INET6 => b.resize(b.len().max(sockaddr::IN6_SIZE), 0),
        _ => {}
    }
    SockAddr::from_linux(&b)
}
