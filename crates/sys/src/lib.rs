//! The system-call layer: the one way into a rump kernel.
//!
//! Every call is a function taking the calling process and typed
//! arguments, returning `Result<_, Errno>` with Linux errno values
//! (`open(p, path, flags, mode)`). The same calls are listed once more as
//! the [`Request`]/[`Response`] enums, which [`dispatch`] maps onto the
//! functions: the remote protocol serialises them, and the C ABI and the
//! hijack library translate their arguments into them, so a call added
//! here is available everywhere.
//!
//! Neighbours: below are `kern` (processes, descriptors, VFS) and the
//! components; above are the `rump` facade, the remote protocol, the C
//! ABI, the hijack library and the FUSE server, none of which reach the
//! VFS any other way.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod calls;
mod request;
mod util;

pub use calls::accept::{accept, accept4};
pub use calls::access::{access, faccessat};
pub use calls::bind::bind;
pub use calls::chdir::{chdir, chroot, fchdir, getcwd};
pub use calls::chmod::{chmod, fchmod, fchmodat};
pub use calls::chown::{chown, fchown, fchownat, lchown, NO_CHANGE};
pub use calls::close::close;
pub use calls::connect::connect;
pub use calls::dup::{dup, dup2, dup3};
pub use calls::etfs::{etfs_register, etfs_register_window, etfs_remove};
pub use calls::fcntl::fcntl;
pub use calls::fsync::{fdatasync, fsync, sync};
pub use calls::getdents::getdents64;
pub use calls::ids::{
    getegid, geteuid, getgid, getgroups, getpid, getppid, getuid, setgid, setgroups, setuid,
};
pub use calls::link::{link, linkat};
pub use calls::listen::listen;
pub use calls::lseek::lseek;
pub use calls::mkdir::{mkdir, mkdirat};
pub use calls::mknod::{mknod, mknodat};
pub use calls::mount::{mount, mounts, umount2};
pub use calls::netcfg::{
    arp_delete, arp_list, if_add_addr, if_create, if_del_addr, if_destroy, if_list, if_set_link,
    if_set_mac, if_set_mtu, if_set_pcap, if_set_up, net_stats, route_add, route_delete, route_list,
    sock_list,
};
pub use calls::open::{creat, open, openat};
pub use calls::pipe::pipe2;
pub use calls::poll::{poll, PollFd};
pub use calls::readlink::{readlink, readlinkat};
pub use calls::rename::{rename, renameat};
pub use calls::rmdir::rmdir;
pub use calls::rw::{pread, pwrite, read, readv, write, writev};
pub use calls::sendrecv::{recv, recvfrom, recvmsg, send, sendmsg, sendto};
pub use calls::shutdown::shutdown;
pub use calls::socket::socket;
pub use calls::sockname::{getpeername, getsockname};
pub use calls::sockopt::{getsockopt, setsockopt};
pub use calls::stat::{fstat, fstatat, lstat, stat};
pub use calls::statvfs::{fstatvfs, statvfs};
pub use calls::symlink::{symlink, symlinkat};
pub use calls::sysctl::{sethostname, sysctl_get, sysctl_list, sysctl_set};
pub use calls::truncate::{ftruncate, truncate};
pub use calls::umask::umask;
pub use calls::uname::{uname, Utsname};
pub use calls::unlink::{unlink, unlinkat};
pub use calls::utimens::{futimens, utimensat, TimeArg};
pub use kern::consts;
pub use kern::vfs::{MountInfo, StatVfs};
pub use kern::{Errno, Proc, Stat};
pub use net::{
    ArpInfo, Cmsg, IfInfo, IfStats, NetStats, RecvInfo, RouteInfo, RouteSpec, SockAddr, SockInfo,
    SockOpt,
};
pub use request::{dispatch, Request, Response, Syscalls, MAX_IO};
