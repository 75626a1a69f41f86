//! The `rump_sys_*` C entry points, shared by `librump` (a kernel in the
//! calling process) and `librumpclient` (a kernel in `rump server`).
//!
//! Each entry point follows the C convention: it returns the call's value,
//! or -1 (a null pointer where it returns one) with `errno` set to the
//! Linux error number. Arguments and structures have Linux's layouts
//! (`struct stat`, `struct sockaddr_in6`, `struct msghdr`, ...), since the
//! kernel uses Linux's numbering throughout.
//!
//! Each call becomes one [`rump::sys::Request`] of the system-call layer
//! (or, for a kernel in this process, the typed function behind it), so a
//! call there is never implemented twice. The test
//! `every_request_has_a_c_entry_point` reads the request list and fails
//! when one has no entry point here.
//!
//! Pointer contract: a pointer is NULL or valid for the length the call
//! gives; strings are NUL-terminated within 4096 bytes. NULL where a value
//! is needed is `EFAULT`, impossible lengths `EINVAL`, unterminated
//! strings `ENAMETOOLONG`; a call made with no kernel (before `rump_init`
//! or `rumpclient_init`, after `rump_kernel_halt`) is `ENXIO`.

// Every entry point takes raw pointers from C and hands them to the
// checked accessors of `ffi`, which is where the contract above is relied
// on; the functions are safe to call from C as long as it holds.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

pub mod ctx;
pub mod ffi;
pub mod fs;
pub mod net;
pub mod netcfg;
pub mod proc;
pub mod resp;

use std::ffi::c_char;

use rump::sys::{Request, Response};
use rump::Errno;

pub use ctx::{bind_thread, set_default, Target};

/// The C names that serve each request of the system-call layer. A test
/// checks this against the `Request` enum, so a request added there must
/// be given an entry point (and listed here) before the build is green.
pub const ENTRY_POINTS: &[(&str, &[&str])] = &[
    (
        "Openat",
        &["rump_sys_open", "rump_sys_openat", "rump_sys_creat"],
    ),
    ("Close", &["rump_sys_close"]),
    ("Read", &["rump_sys_read", "rump_sys_readv"]),
    ("Write", &["rump_sys_write", "rump_sys_writev"]),
    ("Pread", &["rump_sys_pread"]),
    ("Pwrite", &["rump_sys_pwrite"]),
    ("Lseek", &["rump_sys_lseek"]),
    ("Fstat", &["rump_sys_fstat"]),
    (
        "Fstatat",
        &["rump_sys_fstatat", "rump_sys_stat", "rump_sys_lstat"],
    ),
    ("Mkdirat", &["rump_sys_mkdir", "rump_sys_mkdirat"]),
    (
        "Unlinkat",
        &["rump_sys_unlink", "rump_sys_unlinkat", "rump_sys_rmdir"],
    ),
    ("Renameat", &["rump_sys_rename", "rump_sys_renameat"]),
    ("Linkat", &["rump_sys_link", "rump_sys_linkat"]),
    ("Symlinkat", &["rump_sys_symlink", "rump_sys_symlinkat"]),
    ("Readlinkat", &["rump_sys_readlink", "rump_sys_readlinkat"]),
    ("Mknodat", &["rump_sys_mknod", "rump_sys_mknodat"]),
    ("Getdents64", &["rump_sys_getdents64"]),
    ("Fchmod", &["rump_sys_fchmod"]),
    ("Fchmodat", &["rump_sys_chmod", "rump_sys_fchmodat"]),
    ("Fchown", &["rump_sys_fchown"]),
    (
        "Fchownat",
        &["rump_sys_chown", "rump_sys_lchown", "rump_sys_fchownat"],
    ),
    ("Utimensat", &["rump_sys_utimensat"]),
    ("Futimens", &["rump_sys_futimens"]),
    ("Truncate", &["rump_sys_truncate"]),
    ("Ftruncate", &["rump_sys_ftruncate"]),
    ("Fsync", &["rump_sys_fsync"]),
    ("Fdatasync", &["rump_sys_fdatasync"]),
    ("Sync", &["rump_sys_sync"]),
    ("Faccessat", &["rump_sys_access", "rump_sys_faccessat"]),
    ("Chdir", &["rump_sys_chdir"]),
    ("Fchdir", &["rump_sys_fchdir"]),
    ("Getcwd", &["rump_sys_getcwd"]),
    ("Chroot", &["rump_sys_chroot"]),
    ("Umask", &["rump_sys_umask"]),
    ("Statvfs", &["rump_sys_statvfs", "rump_sys_statfs"]),
    ("Fstatvfs", &["rump_sys_fstatvfs", "rump_sys_fstatfs"]),
    ("Mount", &["rump_sys_mount"]),
    ("Umount2", &["rump_sys_umount2"]),
    ("EtfsRegister", &["rump_pub_etfs_register"]),
    ("EtfsRemove", &["rump_pub_etfs_remove"]),
    ("Mounts", &["rump_sys_getmounts"]),
    ("Getpid", &["rump_sys_getpid"]),
    ("Getppid", &["rump_sys_getppid"]),
    ("Getuid", &["rump_sys_getuid"]),
    ("Geteuid", &["rump_sys_geteuid"]),
    ("Getgid", &["rump_sys_getgid"]),
    ("Getegid", &["rump_sys_getegid"]),
    ("Getgroups", &["rump_sys_getgroups"]),
    ("Setuid", &["rump_sys_setuid"]),
    ("Setgid", &["rump_sys_setgid"]),
    ("Setgroups", &["rump_sys_setgroups"]),
    ("Uname", &["rump_sys_uname"]),
    ("Pipe2", &["rump_sys_pipe", "rump_sys_pipe2"]),
    ("Dup", &["rump_sys_dup"]),
    ("Dup2", &["rump_sys_dup2"]),
    ("Dup3", &["rump_sys_dup3"]),
    ("Fcntl", &["rump_sys_fcntl"]),
    ("Poll", &["rump_sys_poll"]),
    (
        "SysctlGet",
        &["rump_sys_sysctl_get", "rump_sys_sysctl_getint"],
    ),
    (
        "SysctlSet",
        &["rump_sys_sysctl_setint", "rump_sys_sysctl_setstr"],
    ),
    ("SysctlList", &["rump_sys_sysctl_list"]),
    ("Socket", &["rump_sys_socket"]),
    ("Bind", &["rump_sys_bind"]),
    ("Listen", &["rump_sys_listen"]),
    ("Accept4", &["rump_sys_accept", "rump_sys_accept4"]),
    ("Connect", &["rump_sys_connect"]),
    ("Sendto", &["rump_sys_sendto", "rump_sys_send"]),
    ("Recvfrom", &["rump_sys_recvfrom", "rump_sys_recv"]),
    ("Sendmsg", &["rump_sys_sendmsg"]),
    ("Recvmsg", &["rump_sys_recvmsg"]),
    ("Shutdown", &["rump_sys_shutdown"]),
    ("Getsockname", &["rump_sys_getsockname"]),
    ("Getpeername", &["rump_sys_getpeername"]),
    ("Setsockopt", &["rump_sys_setsockopt"]),
    ("Getsockopt", &["rump_sys_getsockopt"]),
    ("IfCreate", &["rump_pub_netconfig_ifcreate"]),
    ("IfDestroy", &["rump_pub_netconfig_ifdestroy"]),
    ("IfSetLink", &["rump_pub_netconfig_ifsetlinkstr"]),
    ("IfSetMac", &["rump_pub_netconfig_ifsetmac"]),
    ("IfSetMtu", &["rump_pub_netconfig_ifsetmtu"]),
    (
        "IfAddAddr",
        &[
            "rump_pub_netconfig_ipv4_ifaddr",
            "rump_pub_netconfig_ipv4_ifaddr_cidr",
            "rump_pub_netconfig_ipv6_ifaddr",
        ],
    ),
    ("IfDelAddr", &["rump_pub_netconfig_ifdeladdr"]),
    (
        "IfSetUp",
        &["rump_pub_netconfig_ifup", "rump_pub_netconfig_ifdown"],
    ),
    ("IfSetPcap", &["rump_pub_netconfig_ifsetpcap"]),
    ("IfList", &["rump_pub_netconfig_iflist"]),
    (
        "RouteAdd",
        &[
            "rump_pub_netconfig_route_add",
            "rump_pub_netconfig_ipv4_gw",
            "rump_pub_netconfig_ipv6_gw",
        ],
    ),
    ("RouteDelete", &["rump_pub_netconfig_route_delete"]),
    ("RouteList", &["rump_pub_netconfig_routelist"]),
    ("ArpList", &["rump_pub_netconfig_arplist"]),
    ("ArpDelete", &["rump_pub_netconfig_arp_delete"]),
    ("NetStats", &["rump_pub_netconfig_netstats"]),
    ("SockList", &["rump_pub_netconfig_socklist"]),
    ("EtfsRegisterWindow", &["rump_pub_etfs_register_withsize"]),
];

/// Runs a listing request and writes its result as JSON into the caller's
/// buffer, NUL-terminated and truncated to fit; returns the full length.
pub(crate) fn json_list(buf: *mut c_char, len: usize, req: Request) -> isize {
    ffi::ret_size((|| {
        let text = match ctx::call(req)? {
            Response::Mounts(v) => serde_json::to_vec(&v),
            Response::Interfaces(v) => serde_json::to_vec(&v),
            Response::Routes(v) => serde_json::to_vec(&v),
            Response::Arp(v) => serde_json::to_vec(&v),
            Response::NetStats(v) => serde_json::to_vec(&v),
            Response::Sockets(v) => serde_json::to_vec(&v),
            _ => return Err(Errno::EIO),
        }
        .map_err(|_| Errno::EIO)?;
        ffi::put_cstring(buf, len, &text)
    })())
}

#[cfg(test)]
mod tests {
    use super::ENTRY_POINTS;

    /// The variants of `pub enum Request` in the system-call layer's
    /// source, the single list of calls.
    fn request_variants() -> Vec<String> {
        let src = include_str!("../../sys/src/request.rs");
        let start = src.find("pub enum Request {").expect("Request enum");
        let body = &src[start..];
        let end = body.find("\n}\n").expect("end of Request");
        body[..end]
            .lines()
            .skip(1)
            .filter_map(|l| {
                let rest = l.strip_prefix("    ")?;
                let first = rest.chars().next()?;
                if !first.is_ascii_uppercase() {
                    return None;
                }
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric())
                    .collect();
                Some(name)
            })
            .collect()
    }

    #[test]
    fn every_request_has_a_c_entry_point() {
        let variants = request_variants();
        assert!(variants.len() > 80, "parsed only {variants:?}");
        let listed: Vec<&str> = ENTRY_POINTS.iter().map(|(v, _)| *v).collect();
        let missing: Vec<&String> = variants
            .iter()
            .filter(|v| !listed.contains(&v.as_str()))
            .collect();
        assert!(
            missing.is_empty(),
            "requests with no C entry point: {missing:?}"
        );
        let stale: Vec<&&str> = listed
            .iter()
            .filter(|l| !variants.iter().any(|v| v == *l))
            .collect();
        assert!(stale.is_empty(), "listed but not requests: {stale:?}");
    }

    #[test]
    fn every_listed_entry_point_is_defined() {
        let sources = [
            include_str!("fs.rs"),
            include_str!("proc.rs"),
            include_str!("net.rs"),
            include_str!("netcfg.rs"),
        ]
        .concat();
        for (req, names) in ENTRY_POINTS {
            assert!(!names.is_empty(), "{req} has no names");
            for n in *names {
                let def = format!("pub extern \"C\" fn {n}(");
                assert!(sources.contains(&def), "{n} (for {req}) is not defined");
                let built = format!("Request::{req}");
                assert!(
                    sources.contains(&built),
                    "no entry point builds Request::{req}"
                );
            }
        }
    }
}
