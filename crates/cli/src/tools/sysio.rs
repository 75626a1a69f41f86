//! [`Sys`]: the kernel calls the tools make, each one [`Request`] through
//! [`Syscalls::call`] with its [`Response`] unpacked. A response of the
//! wrong shape (a server that disagrees about the protocol) is `EPROTO`.

use std::net::IpAddr;

use rump::sys::consts::{at, o};
use rump::sys::{
    ArpInfo, IfInfo, NetStats, Request, Response, RouteInfo, RouteSpec, SockAddr, SockInfo,
    SockOpt, Stat, Syscalls,
};
use rump::{Errno, SysctlValue};

/// The calls of one kernel (local or remote).
#[derive(Clone, Copy)]
pub struct Sys<'a>(pub &'a dyn Syscalls);

type R<T> = std::result::Result<T, Errno>;

fn is_dir(mode: u32) -> bool {
    mode & 0o170000 == 0o040000
}

fn proto<T>() -> R<T> {
    Err(Errno::EPROTO)
}

impl<'a> Sys<'a> {
    /// Runs one request.
    pub fn call(&self, req: Request) -> R<Response> {
        self.0.call(req)
    }

    fn unit(&self, req: Request) -> R<()> {
        match self.call(req)? {
            Response::Unit => Ok(()),
            _ => proto(),
        }
    }

    fn int(&self, req: Request) -> R<i64> {
        match self.call(req)? {
            Response::Int(v) => Ok(v),
            _ => proto(),
        }
    }

    fn size(&self, req: Request) -> R<u64> {
        match self.call(req)? {
            Response::Size(v) => Ok(v),
            _ => proto(),
        }
    }

    fn bytes(&self, req: Request) -> R<Vec<u8>> {
        match self.call(req)? {
            Response::Bytes(v) => Ok(v),
            _ => proto(),
        }
    }

    // ----- interfaces, routes, neighbours, counters ----------------------

    pub fn if_list(&self) -> R<Vec<IfInfo>> {
        match self.call(Request::IfList)? {
            Response::Interfaces(v) => Ok(v),
            _ => proto(),
        }
    }
    pub fn if_create(&self, name: &str) -> R<String> {
        match self.call(Request::IfCreate { name: name.into() })? {
            Response::Name(n) => Ok(n),
            _ => proto(),
        }
    }
    pub fn if_destroy(&self, name: &str) -> R<()> {
        self.unit(Request::IfDestroy { name: name.into() })
    }
    pub fn if_set_link(&self, name: &str, link: &str) -> R<()> {
        self.unit(Request::IfSetLink {
            name: name.into(),
            link: link.into(),
        })
    }
    pub fn if_set_mac(&self, name: &str, mac: [u8; 6]) -> R<()> {
        self.unit(Request::IfSetMac {
            name: name.into(),
            mac,
        })
    }
    pub fn if_set_mtu(&self, name: &str, mtu: u32) -> R<()> {
        self.unit(Request::IfSetMtu {
            name: name.into(),
            mtu,
        })
    }
    pub fn if_add_addr(&self, name: &str, addr: IpAddr, prefix: u8) -> R<()> {
        self.unit(Request::IfAddAddr {
            name: name.into(),
            addr,
            prefix,
        })
    }
    pub fn if_del_addr(&self, name: &str, addr: IpAddr) -> R<()> {
        self.unit(Request::IfDelAddr {
            name: name.into(),
            addr,
        })
    }
    pub fn if_set_up(&self, name: &str, up: bool) -> R<()> {
        self.unit(Request::IfSetUp {
            name: name.into(),
            up,
        })
    }
    pub fn if_set_pcap(&self, name: &str, path: Option<&str>) -> R<()> {
        self.unit(Request::IfSetPcap {
            name: name.into(),
            path: path.map(String::from),
        })
    }
    pub fn route_add(&self, spec: RouteSpec) -> R<()> {
        self.unit(Request::RouteAdd { spec })
    }
    pub fn route_delete(&self, dst: IpAddr, prefix: u8) -> R<()> {
        self.unit(Request::RouteDelete { dst, prefix })
    }
    pub fn route_list(&self) -> R<Vec<RouteInfo>> {
        match self.call(Request::RouteList)? {
            Response::Routes(v) => Ok(v),
            _ => proto(),
        }
    }
    pub fn arp_list(&self) -> R<Vec<ArpInfo>> {
        match self.call(Request::ArpList)? {
            Response::Arp(v) => Ok(v),
            _ => proto(),
        }
    }
    pub fn arp_delete(&self, ip: IpAddr) -> R<()> {
        self.unit(Request::ArpDelete { ip })
    }
    pub fn net_stats(&self) -> R<NetStats> {
        match self.call(Request::NetStats)? {
            Response::NetStats(s) => Ok(*s),
            _ => proto(),
        }
    }
    pub fn sock_list(&self) -> R<Vec<SockInfo>> {
        match self.call(Request::SockList)? {
            Response::Sockets(v) => Ok(v),
            _ => proto(),
        }
    }

    // ----- sysctl ---------------------------------------------------------

    pub fn sysctl_get(&self, name: &str) -> R<SysctlValue> {
        match self.call(Request::SysctlGet { name: name.into() })? {
            Response::Sysctl(v) => Ok(v),
            _ => proto(),
        }
    }
    pub fn sysctl_set(&self, name: &str, value: SysctlValue) -> R<()> {
        self.unit(Request::SysctlSet {
            name: name.into(),
            value,
        })
    }
    pub fn sysctl_list(&self, prefix: &str) -> R<Vec<(String, SysctlValue)>> {
        match self.call(Request::SysctlList {
            prefix: prefix.into(),
        })? {
            Response::SysctlList(v) => Ok(v),
            _ => proto(),
        }
    }

    // ----- files and mounts -----------------------------------------------

    pub fn mounts(&self) -> R<Vec<rump::sys::MountInfo>> {
        match self.call(Request::Mounts)? {
            Response::Mounts(v) => Ok(v),
            _ => proto(),
        }
    }
    pub fn mount(&self, source: &str, target: &str, fstype: &str, flags: u64) -> R<()> {
        self.unit(Request::Mount {
            source: source.into(),
            target: target.into(),
            fstype: fstype.into(),
            flags,
            data: Vec::new(),
        })
    }
    pub fn umount(&self, target: &str, flags: i32) -> R<()> {
        self.unit(Request::Umount2 {
            target: target.into(),
            flags,
        })
    }
    pub fn statvfs(&self, path: &str) -> R<rump::sys::StatVfs> {
        match self.call(Request::Statvfs { path: path.into() })? {
            Response::StatVfs(v) => Ok(v),
            _ => proto(),
        }
    }
    pub fn open(&self, path: &str, flags: i32, mode: u32) -> R<i32> {
        self.int(Request::Openat {
            dirfd: rump::sys::consts::at::FDCWD,
            path: path.into(),
            flags,
            mode,
        })
        .map(|v| v as i32)
    }
    pub fn close(&self, fd: i32) -> R<()> {
        self.unit(Request::Close { fd })
    }
    pub fn fstat(&self, fd: i32) -> R<Stat> {
        match self.call(Request::Fstat { fd })? {
            Response::Stat(s) => Ok(s),
            _ => proto(),
        }
    }
    pub fn stat(&self, path: &str) -> R<Stat> {
        match self.call(Request::Fstatat {
            dirfd: rump::sys::consts::at::FDCWD,
            path: path.into(),
            flags: 0,
        })? {
            Response::Stat(s) => Ok(s),
            _ => proto(),
        }
    }
    pub fn pread(&self, fd: i32, len: usize, offset: u64) -> R<Vec<u8>> {
        self.bytes(Request::Pread {
            fd,
            len,
            offset: offset as i64,
        })
    }
    pub fn pwrite(&self, fd: i32, data: &[u8], offset: u64) -> R<usize> {
        self.size(Request::Pwrite {
            fd,
            data: data.to_vec(),
            offset: offset as i64,
        })
        .map(|n| n as usize)
    }
    pub fn fsync(&self, fd: i32) -> R<()> {
        self.unit(Request::Fsync { fd })
    }

    // ----- the file tree (the image tools) ---------------------------------

    pub fn lstat(&self, path: &str) -> R<Stat> {
        match self.call(Request::Fstatat {
            dirfd: at::FDCWD,
            path: path.into(),
            flags: at::SYMLINK_NOFOLLOW,
        })? {
            Response::Stat(s) => Ok(s),
            _ => proto(),
        }
    }
    pub fn readlink(&self, path: &str) -> R<Vec<u8>> {
        self.bytes(Request::Readlinkat {
            dirfd: at::FDCWD,
            path: path.into(),
        })
    }
    /// One `read` of at most `len` bytes.
    pub fn read(&self, fd: i32, len: usize) -> R<Vec<u8>> {
        self.bytes(Request::Read { fd, len })
    }
    /// One `write`; returns how much was taken.
    pub fn write(&self, fd: i32, data: &[u8]) -> R<usize> {
        self.size(Request::Write {
            fd,
            data: data.to_vec(),
        })
        .map(|n| n as usize)
    }
    /// Writes all of `data`.
    pub fn write_all(&self, fd: i32, mut data: &[u8]) -> R<()> {
        while !data.is_empty() {
            match self.write(fd, data)? {
                0 => return Err(Errno::EIO),
                n => data = data.get(n..).ok_or(Errno::EPROTO)?,
            }
        }
        Ok(())
    }
    pub fn mkdir(&self, path: &str, mode: u32) -> R<()> {
        self.unit(Request::Mkdirat {
            dirfd: at::FDCWD,
            path: path.into(),
            mode,
        })
    }
    pub fn chmod(&self, path: &str, mode: u32) -> R<()> {
        self.unit(Request::Fchmodat {
            dirfd: at::FDCWD,
            path: path.into(),
            mode,
            flags: 0,
        })
    }
    pub fn lchown(&self, path: &str, uid: u32, gid: u32) -> R<()> {
        self.unit(Request::Fchownat {
            dirfd: at::FDCWD,
            path: path.into(),
            uid,
            gid,
            flags: at::SYMLINK_NOFOLLOW,
        })
    }
    pub fn unlink(&self, path: &str) -> R<()> {
        self.unit(Request::Unlinkat {
            dirfd: at::FDCWD,
            path: path.into(),
            flags: 0,
        })
    }
    pub fn rmdir(&self, path: &str) -> R<()> {
        self.unit(Request::Unlinkat {
            dirfd: at::FDCWD,
            path: path.into(),
            flags: at::REMOVEDIR,
        })
    }
    pub fn rename(&self, old: &str, new: &str) -> R<()> {
        self.unit(Request::Renameat {
            olddirfd: at::FDCWD,
            old: old.into(),
            newdirfd: at::FDCWD,
            new: new.into(),
        })
    }
    pub fn symlink(&self, target: &[u8], path: &str) -> R<()> {
        self.unit(Request::Symlinkat {
            target: target.to_vec(),
            dirfd: at::FDCWD,
            path: path.into(),
        })
    }
    pub fn link(&self, old: &str, new: &str) -> R<()> {
        self.unit(Request::Linkat {
            olddirfd: at::FDCWD,
            old: old.into(),
            newdirfd: at::FDCWD,
            new: new.into(),
            flags: 0,
        })
    }
    pub fn mknod(&self, path: &str, mode: u32, dev: u64) -> R<()> {
        self.unit(Request::Mknodat {
            dirfd: at::FDCWD,
            path: path.into(),
            mode,
            dev,
        })
    }
    pub fn lseek(&self, fd: i32, offset: i64, whence: i32) -> R<u64> {
        self.size(Request::Lseek { fd, offset, whence })
    }
    pub fn ftruncate(&self, fd: i32, len: u64) -> R<()> {
        self.unit(Request::Ftruncate {
            fd,
            len: len as i64,
        })
    }
    /// Sets the access and modification times to now.
    pub fn touch_now(&self, path: &str) -> R<()> {
        self.unit(Request::Utimensat {
            dirfd: at::FDCWD,
            path: path.into(),
            times: None,
            flags: 0,
        })
    }
    /// The names in a directory, without `.` and `..`, unsorted. The
    /// records are checked as they are read: a server that sends a
    /// malformed one gets `EPROTO`, not a panic.
    pub fn read_dir(&self, path: &str) -> R<Vec<Vec<u8>>> {
        let fd = self.open(path, o::RDONLY | o::DIRECTORY | o::CLOEXEC, 0)?;
        let r = self.read_dir_fd(fd);
        let _ = self.close(fd);
        r
    }
    fn read_dir_fd(&self, fd: i32) -> R<Vec<Vec<u8>>> {
        let mut names = Vec::new();
        loop {
            let buf = self.bytes(Request::Getdents64 { fd, len: 32 << 10 })?;
            if buf.is_empty() {
                return Ok(names);
            }
            let mut rec = buf.as_slice();
            while !rec.is_empty() {
                // linux_dirent64: ino u64, off i64, reclen u16, type u8, name.
                let reclen = rec
                    .get(16..18)
                    .map(|b| u16::from_ne_bytes([b[0], b[1]]) as usize)
                    .filter(|&n| n > 19 && n <= rec.len())
                    .ok_or(Errno::EPROTO)?;
                let area = &rec[19..reclen];
                let name = &area[..area.iter().position(|&c| c == 0).unwrap_or(area.len())];
                if name != b"." && name != b".." {
                    names.push(name.to_vec());
                }
                rec = &rec[reclen..];
            }
        }
    }
    /// `mkdir -p`.
    pub fn create_dir_all(&self, path: &str) -> R<()> {
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            match self.mkdir(&cur, 0o777) {
                Ok(()) => {}
                Err(Errno::EEXIST) if self.stat(&cur).is_ok_and(|s| is_dir(s.mode)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    /// `rm -r` of a directory tree (links are removed, not followed).
    pub fn remove_dir_all(&self, path: &str) -> R<()> {
        for name in self.read_dir(path)? {
            let child = format!("{path}/{}", String::from_utf8_lossy(&name));
            if is_dir(self.lstat(&child)?.mode) {
                self.remove_dir_all(&child)?;
            } else {
                self.unlink(&child)?;
            }
        }
        self.rmdir(path)
    }

    // ----- sockets --------------------------------------------------------

    pub fn socket(&self, domain: i32, ty: i32, protocol: i32) -> R<i32> {
        self.int(Request::Socket {
            domain,
            ty,
            protocol,
        })
        .map(|v| v as i32)
    }
    pub fn setsockopt(&self, fd: i32, opt: SockOpt) -> R<()> {
        self.unit(Request::Setsockopt { fd, opt })
    }
    pub fn sendto(&self, fd: i32, data: &[u8], addr: Option<SockAddr>) -> R<usize> {
        self.size(Request::Sendto {
            fd,
            data: data.to_vec(),
            flags: 0,
            addr,
        })
        .map(|n| n as usize)
    }
    /// `recvmsg`: the data, the sender and the control messages.
    pub fn recvmsg(
        &self,
        fd: i32,
        len: usize,
    ) -> R<(Vec<u8>, Option<SockAddr>, Vec<rump::sys::Cmsg>)> {
        match self.call(Request::Recvmsg { fd, len, flags: 0 })? {
            Response::RecvMsg {
                data,
                info,
                control,
            } => Ok((data, info.from, control)),
            _ => proto(),
        }
    }
}
