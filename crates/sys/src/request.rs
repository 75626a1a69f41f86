//! Every system call as data: [`Request`] and [`Response`], and
//! [`dispatch`], which runs a request through the typed functions.
//!
//! Calls with an `*at` form appear only in that form (`open` is `Openat`
//! with `AT_FDCWD`, `stat` is `Fstatat`); `readv`/`writev` are sequences of
//! `Read`/`Write` for a remote caller, and `dup2`-style aliases map onto
//! their general call. Paths and buffers are owned byte vectors so the enums serialise (the
//! remote protocol uses postcard; the byte vectors go through
//! `serde_bytes`, one length and one copy instead of one call per byte,
//! with the same bytes on the wire). Reads carry a length, not a buffer, and
//! are capped at [`MAX_IO`] so a remote client cannot make the server
//! allocate without bound.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use kern::sysctl::SysctlValue;
use kern::vfs::{MountInfo, StatVfs};
use kern::{Errno, Proc, Stat};

use crate::calls::utimens::TimeArg;
use crate::{
    ArpInfo, Cmsg, IfInfo, NetStats, PollFd, RecvInfo, RouteInfo, RouteSpec, SockAddr, SockInfo,
    SockOpt, Utsname,
};

/// The largest read a request may ask for (longer reads are short).
pub const MAX_IO: usize = 1 << 20;

/// A system call and its arguments.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Request {
    Openat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        flags: i32,
        mode: u32,
    },
    Close {
        fd: i32,
    },
    Read {
        fd: i32,
        len: usize,
    },
    Write {
        fd: i32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Pread {
        fd: i32,
        len: usize,
        offset: i64,
    },
    Pwrite {
        fd: i32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        offset: i64,
    },
    Lseek {
        fd: i32,
        offset: i64,
        whence: i32,
    },
    Fstat {
        fd: i32,
    },
    Fstatat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        flags: i32,
    },
    Mkdirat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        mode: u32,
    },
    Unlinkat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        flags: i32,
    },
    Renameat {
        olddirfd: i32,
        #[serde(with = "serde_bytes")]
        old: Vec<u8>,
        newdirfd: i32,
        #[serde(with = "serde_bytes")]
        new: Vec<u8>,
    },
    Linkat {
        olddirfd: i32,
        #[serde(with = "serde_bytes")]
        old: Vec<u8>,
        newdirfd: i32,
        #[serde(with = "serde_bytes")]
        new: Vec<u8>,
        flags: i32,
    },
    Symlinkat {
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
    },
    Readlinkat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
    },
    Mknodat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        mode: u32,
        dev: u64,
    },
    Getdents64 {
        fd: i32,
        len: usize,
    },
    Fchmod {
        fd: i32,
        mode: u32,
    },
    Fchmodat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        mode: u32,
        flags: i32,
    },
    Fchown {
        fd: i32,
        uid: u32,
        gid: u32,
    },
    Fchownat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        uid: u32,
        gid: u32,
        flags: i32,
    },
    Utimensat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        times: Option<[TimeArg; 2]>,
        flags: i32,
    },
    Futimens {
        fd: i32,
        times: Option<[TimeArg; 2]>,
    },
    Truncate {
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        len: i64,
    },
    Ftruncate {
        fd: i32,
        len: i64,
    },
    Fsync {
        fd: i32,
    },
    Fdatasync {
        fd: i32,
    },
    Sync,
    Faccessat {
        dirfd: i32,
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
        mode: i32,
        flags: i32,
    },
    Chdir {
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
    },
    Fchdir {
        fd: i32,
    },
    Getcwd,
    Chroot {
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
    },
    Umask {
        mask: u32,
    },
    Statvfs {
        #[serde(with = "serde_bytes")]
        path: Vec<u8>,
    },
    Fstatvfs {
        fd: i32,
    },
    Mount {
        #[serde(with = "serde_bytes")]
        source: Vec<u8>,
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
        #[serde(with = "serde_bytes")]
        fstype: Vec<u8>,
        flags: u64,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    },
    Umount2 {
        #[serde(with = "serde_bytes")]
        target: Vec<u8>,
        flags: i32,
    },
    EtfsRegister {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        host_path: Vec<u8>,
        read_only: bool,
    },
    EtfsRemove {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
    },
    Mounts,
    Getpid,
    Getppid,
    Getuid,
    Geteuid,
    Getgid,
    Getegid,
    Getgroups,
    Setuid {
        uid: u32,
    },
    Setgid {
        gid: u32,
    },
    Setgroups {
        groups: Vec<u32>,
    },
    Uname,
    Pipe2 {
        flags: i32,
    },
    Dup {
        fd: i32,
    },
    Dup2 {
        old: i32,
        new: i32,
    },
    Dup3 {
        old: i32,
        new: i32,
        flags: i32,
    },
    Fcntl {
        fd: i32,
        cmd: i32,
        arg: i64,
    },
    Poll {
        fds: Vec<PollFd>,
        timeout_ms: i32,
    },
    SysctlGet {
        name: String,
    },
    SysctlSet {
        name: String,
        value: SysctlValue,
    },
    SysctlList {
        prefix: String,
    },
    // ----- sockets (net) ---------------------------------------------------
    Socket {
        domain: i32,
        ty: i32,
        protocol: i32,
    },
    Bind {
        fd: i32,
        addr: SockAddr,
    },
    Listen {
        fd: i32,
        backlog: i32,
    },
    Accept4 {
        fd: i32,
        flags: i32,
    },
    Connect {
        fd: i32,
        addr: SockAddr,
    },
    Sendto {
        fd: i32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        flags: i32,
        addr: Option<SockAddr>,
    },
    Recvfrom {
        fd: i32,
        len: usize,
        flags: i32,
    },
    Sendmsg {
        fd: i32,
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        flags: i32,
        addr: Option<SockAddr>,
        control: Vec<Cmsg>,
    },
    Recvmsg {
        fd: i32,
        len: usize,
        flags: i32,
    },
    Shutdown {
        fd: i32,
        how: i32,
    },
    Getsockname {
        fd: i32,
    },
    Getpeername {
        fd: i32,
    },
    Setsockopt {
        fd: i32,
        opt: SockOpt,
    },
    Getsockopt {
        fd: i32,
        level: i32,
        name: i32,
    },
    // ----- network configuration (net) -------------------------------------
    IfCreate {
        name: String,
    },
    IfDestroy {
        name: String,
    },
    IfSetLink {
        name: String,
        link: String,
    },
    IfSetMac {
        name: String,
        mac: [u8; 6],
    },
    IfSetMtu {
        name: String,
        mtu: u32,
    },
    IfAddAddr {
        name: String,
        addr: core::net::IpAddr,
        prefix: u8,
    },
    IfDelAddr {
        name: String,
        addr: core::net::IpAddr,
    },
    IfSetUp {
        name: String,
        up: bool,
    },
    IfSetPcap {
        name: String,
        path: Option<String>,
    },
    IfList,
    RouteAdd {
        spec: RouteSpec,
    },
    RouteDelete {
        dst: core::net::IpAddr,
        prefix: u8,
    },
    RouteList,
    ArpList,
    ArpDelete {
        ip: core::net::IpAddr,
    },
    NetStats,
    /// The socket table (`netstat`).
    SockList,
    /// `etfs_register` of a byte window of the host file. Last in the
    /// enum so the wire numbers of the others stay as they were.
    EtfsRegisterWindow {
        #[serde(with = "serde_bytes")]
        key: Vec<u8>,
        #[serde(with = "serde_bytes")]
        host_path: Vec<u8>,
        read_only: bool,
        offset: u64,
        size: u64,
    },
}

/// What a successful call returns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum Response {
    Unit,
    Int(i64),
    Size(u64),
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    Stat(Stat),
    StatVfs(StatVfs),
    Pair(i32, i32),
    Ids(Vec<u32>),
    Uname(Utsname),
    Poll {
        n: usize,
        fds: Vec<PollFd>,
    },
    Mounts(Vec<MountInfo>),
    Sysctl(SysctlValue),
    SysctlList(Vec<(String, SysctlValue)>),
    /// A new descriptor and a peer address (`accept`).
    Accepted {
        fd: i32,
        addr: SockAddr,
    },
    SockAddr(SockAddr),
    Recv {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        info: RecvInfo,
    },
    RecvMsg {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        info: RecvInfo,
        control: Vec<Cmsg>,
    },
    SockOpt(SockOpt),
    Name(String),
    Interfaces(Vec<IfInfo>),
    Routes(Vec<RouteInfo>),
    Arp(Vec<ArpInfo>),
    NetStats(alloc::boxed::Box<NetStats>),
    Sockets(Vec<SockInfo>),
}

/// Whatever runs system calls given as data: a local process (through
/// [`dispatch`]) or, in the remote client, a kernel in another process.
/// Tools written against `&dyn Syscalls` work with either.
pub trait Syscalls: Send + Sync {
    /// Runs `req` and returns its result.
    fn call(&self, req: Request) -> Result<Response, Errno>;
}

impl Syscalls for Proc {
    fn call(&self, req: Request) -> Result<Response, Errno> {
        dispatch(self, req)
    }
}

/// Runs one request as process `p`.
pub fn dispatch(p: &Proc, req: Request) -> Result<Response, Errno> {
    use crate as s;
    use Response as R;
    let unit = |r: Result<(), Errno>| r.map(|_| R::Unit);
    let int = |r: Result<i32, Errno>| r.map(|v| R::Int(v as i64));
    Ok(match req {
        Request::Openat {
            dirfd,
            path,
            flags,
            mode,
        } => int(s::openat(p, dirfd, &path, flags, mode))?,
        Request::Close { fd } => unit(s::close(p, fd))?,
        Request::Read { fd, len } => {
            let mut buf = vec![0u8; len.min(MAX_IO)];
            let n = s::read(p, fd, &mut buf)?;
            buf.truncate(n);
            R::Bytes(buf)
        }
        Request::Write { fd, data } => R::Size(s::write(p, fd, &data)? as u64),
        Request::Pread { fd, len, offset } => {
            let mut buf = vec![0u8; len.min(MAX_IO)];
            let n = s::pread(p, fd, &mut buf, offset)?;
            buf.truncate(n);
            R::Bytes(buf)
        }
        Request::Pwrite { fd, data, offset } => R::Size(s::pwrite(p, fd, &data, offset)? as u64),
        Request::Lseek { fd, offset, whence } => R::Size(s::lseek(p, fd, offset, whence)?),
        Request::Fstat { fd } => R::Stat(s::fstat(p, fd)?),
        Request::Fstatat { dirfd, path, flags } => R::Stat(s::fstatat(p, dirfd, &path, flags)?),
        Request::Mkdirat { dirfd, path, mode } => unit(s::mkdirat(p, dirfd, &path, mode))?,
        Request::Unlinkat { dirfd, path, flags } => unit(s::unlinkat(p, dirfd, &path, flags))?,
        Request::Renameat {
            olddirfd,
            old,
            newdirfd,
            new,
        } => unit(s::renameat(p, olddirfd, &old, newdirfd, &new))?,
        Request::Linkat {
            olddirfd,
            old,
            newdirfd,
            new,
            flags,
        } => unit(s::linkat(p, olddirfd, &old, newdirfd, &new, flags))?,
        Request::Symlinkat {
            target,
            dirfd,
            path,
        } => unit(s::symlinkat(p, &target, dirfd, &path))?,
        Request::Readlinkat { dirfd, path } => R::Bytes(s::readlinkat(p, dirfd, &path)?),
        Request::Mknodat {
            dirfd,
            path,
            mode,
            dev,
        } => unit(s::mknodat(p, dirfd, &path, mode, dev))?,
        Request::Getdents64 { fd, len } => {
            let mut buf = vec![0u8; len.min(MAX_IO)];
            let n = s::getdents64(p, fd, &mut buf)?;
            buf.truncate(n);
            R::Bytes(buf)
        }
        Request::Fchmod { fd, mode } => unit(s::fchmod(p, fd, mode))?,
        Request::Fchmodat {
            dirfd,
            path,
            mode,
            flags,
        } => unit(s::fchmodat(p, dirfd, &path, mode, flags))?,
        Request::Fchown { fd, uid, gid } => unit(s::fchown(p, fd, uid, gid))?,
        Request::Fchownat {
            dirfd,
            path,
            uid,
            gid,
            flags,
        } => unit(s::fchownat(p, dirfd, &path, uid, gid, flags))?,
        Request::Utimensat {
            dirfd,
            path,
            times,
            flags,
        } => unit(s::utimensat(p, dirfd, &path, times, flags))?,
        Request::Futimens { fd, times } => unit(s::futimens(p, fd, times))?,
        Request::Truncate { path, len } => unit(s::truncate(p, &path, len))?,
        Request::Ftruncate { fd, len } => unit(s::ftruncate(p, fd, len))?,
        Request::Fsync { fd } => unit(s::fsync(p, fd))?,
        Request::Fdatasync { fd } => unit(s::fdatasync(p, fd))?,
        Request::Sync => unit(s::sync(p))?,
        Request::Faccessat {
            dirfd,
            path,
            mode,
            flags,
        } => unit(s::faccessat(p, dirfd, &path, mode, flags))?,
        Request::Chdir { path } => unit(s::chdir(p, &path))?,
        Request::Fchdir { fd } => unit(s::fchdir(p, fd))?,
        Request::Getcwd => R::Bytes(s::getcwd(p)?),
        Request::Chroot { path } => unit(s::chroot(p, &path))?,
        Request::Umask { mask } => R::Int(s::umask(p, mask)? as i64),
        Request::Statvfs { path } => R::StatVfs(s::statvfs(p, &path)?),
        Request::Fstatvfs { fd } => R::StatVfs(s::fstatvfs(p, fd)?),
        Request::Mount {
            source,
            target,
            fstype,
            flags,
            data,
        } => unit(s::mount(p, &source, &target, &fstype, flags, &data))?,
        Request::Umount2 { target, flags } => unit(s::umount2(p, &target, flags))?,
        Request::EtfsRegister {
            key,
            host_path,
            read_only,
        } => unit(s::etfs_register(p, &key, &host_path, read_only))?,
        Request::EtfsRemove { key } => unit(s::etfs_remove(p, &key))?,
        Request::Mounts => R::Mounts(s::mounts(p)?),
        Request::Getpid => int(s::getpid(p))?,
        Request::Getppid => int(s::getppid(p))?,
        Request::Getuid => R::Int(s::getuid(p)? as i64),
        Request::Geteuid => R::Int(s::geteuid(p)? as i64),
        Request::Getgid => R::Int(s::getgid(p)? as i64),
        Request::Getegid => R::Int(s::getegid(p)? as i64),
        Request::Getgroups => R::Ids(s::getgroups(p)?),
        Request::Setuid { uid } => unit(s::setuid(p, uid))?,
        Request::Setgid { gid } => unit(s::setgid(p, gid))?,
        Request::Setgroups { groups } => unit(s::setgroups(p, &groups))?,
        Request::Uname => R::Uname(s::uname(p)?),
        Request::Pipe2 { flags } => {
            let (r, w) = s::pipe2(p, flags)?;
            R::Pair(r, w)
        }
        Request::Dup { fd } => int(s::dup(p, fd))?,
        Request::Dup2 { old, new } => int(s::dup2(p, old, new))?,
        Request::Dup3 { old, new, flags } => int(s::dup3(p, old, new, flags))?,
        Request::Fcntl { fd, cmd, arg } => R::Int(s::fcntl(p, fd, cmd, arg)?),
        Request::Poll {
            mut fds,
            timeout_ms,
        } => {
            let n = s::poll(p, &mut fds, timeout_ms)?;
            R::Poll { n, fds }
        }
        Request::SysctlGet { name } => R::Sysctl(s::sysctl_get(p, &name)?),
        Request::SysctlSet { name, value } => unit(s::sysctl_set(p, &name, value))?,
        Request::SysctlList { prefix } => R::SysctlList(s::sysctl_list(p, &prefix)?),
        Request::Socket {
            domain,
            ty,
            protocol,
        } => int(s::socket(p, domain, ty, protocol))?,
        Request::Bind { fd, addr } => unit(s::bind(p, fd, addr))?,
        Request::Listen { fd, backlog } => unit(s::listen(p, fd, backlog))?,
        Request::Accept4 { fd, flags } => {
            let (fd, addr) = s::accept4(p, fd, flags)?;
            R::Accepted { fd, addr }
        }
        Request::Connect { fd, addr } => unit(s::connect(p, fd, addr))?,
        Request::Sendto {
            fd,
            data,
            flags,
            addr,
        } => R::Size(s::sendto(p, fd, &data, flags, addr)? as u64),
        Request::Recvfrom { fd, len, flags } => {
            let mut data = vec![0u8; len.min(MAX_IO)];
            let info = s::recvfrom(p, fd, &mut data, flags)?;
            data.truncate(info.len.min(data.len()));
            R::Recv { data, info }
        }
        Request::Sendmsg {
            fd,
            data,
            flags,
            addr,
            control,
        } => R::Size(s::sendmsg(p, fd, &[&data], addr, &control, flags)? as u64),
        Request::Recvmsg { fd, len, flags } => {
            let mut data = vec![0u8; len.min(MAX_IO)];
            let (info, control) = s::recvmsg(p, fd, &mut [&mut data[..]], flags)?;
            data.truncate(info.len.min(data.len()));
            R::RecvMsg {
                data,
                info,
                control,
            }
        }
        Request::Shutdown { fd, how } => unit(s::shutdown(p, fd, how))?,
        Request::Getsockname { fd } => R::SockAddr(s::getsockname(p, fd)?),
        Request::Getpeername { fd } => R::SockAddr(s::getpeername(p, fd)?),
        Request::Setsockopt { fd, opt } => unit(s::setsockopt(p, fd, opt))?,
        Request::Getsockopt { fd, level, name } => R::SockOpt(s::getsockopt(p, fd, level, name)?),
        Request::IfCreate { name } => R::Name(s::if_create(p, &name)?),
        Request::IfDestroy { name } => unit(s::if_destroy(p, &name))?,
        Request::IfSetLink { name, link } => unit(s::if_set_link(p, &name, &link))?,
        Request::IfSetMac { name, mac } => unit(s::if_set_mac(p, &name, mac))?,
        Request::IfSetMtu { name, mtu } => unit(s::if_set_mtu(p, &name, mtu))?,
        Request::IfAddAddr { name, addr, prefix } => unit(s::if_add_addr(p, &name, addr, prefix))?,
        Request::IfDelAddr { name, addr } => unit(s::if_del_addr(p, &name, addr))?,
        Request::IfSetUp { name, up } => unit(s::if_set_up(p, &name, up))?,
        Request::IfSetPcap { name, path } => unit(s::if_set_pcap(p, &name, path.as_deref()))?,
        Request::IfList => R::Interfaces(s::if_list(p)?),
        Request::RouteAdd { spec } => unit(s::route_add(p, &spec))?,
        Request::RouteDelete { dst, prefix } => unit(s::route_delete(p, dst, prefix))?,
        Request::RouteList => R::Routes(s::route_list(p)?),
        Request::ArpList => R::Arp(s::arp_list(p)?),
        Request::ArpDelete { ip } => unit(s::arp_delete(p, ip))?,
        Request::NetStats => R::NetStats(alloc::boxed::Box::new(s::net_stats(p)?)),
        Request::SockList => R::Sockets(s::sock_list(p)?),
        Request::EtfsRegisterWindow {
            key,
            host_path,
            read_only,
            offset,
            size,
        } => unit(s::etfs_register_window(
            p,
            &key,
            &host_path,
            read_only,
            Some((offset, size)),
        ))?,
    })
}
