//! Process, descriptor and kernel-parameter calls: `rump_sys_getpid`,
//! `rump_sys_dup2`, `rump_sys_poll`, `rump_sys_sysctl_get`, ...

use std::ffi::{c_char, c_int, c_long};

use rump::sys::{self, PollFd, Request, Response};
use rump::{Errno, SysctlValue};

use crate::ctx::{self, Target};
use crate::ffi::{cstr_utf8, put, put_cstring, ret_int, ret_unit, slice, slice_mut};
use crate::resp;

/// `getpid(2)`: this context's process id in the kernel.
#[no_mangle]
pub extern "C" fn rump_sys_getpid() -> c_int {
    ret_int(ctx::with(|t| match t {
        Target::Local(p) => sys::getpid(p).map(i64::from),
        Target::Remote(_) => resp::int(Request::Getpid),
    }))
}

/// `getppid(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_getppid() -> c_int {
    ret_int(resp::int(Request::Getppid))
}

/// `getuid(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_getuid() -> c_int {
    ret_int(resp::int(Request::Getuid))
}

/// `geteuid(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_geteuid() -> c_int {
    ret_int(resp::int(Request::Geteuid))
}

/// `getgid(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_getgid() -> c_int {
    ret_int(resp::int(Request::Getgid))
}

/// `getegid(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_getegid() -> c_int {
    ret_int(resp::int(Request::Getegid))
}

/// `getgroups(2)`: with `size` 0 the number of groups; `EINVAL` when
/// `size` is too small.
#[no_mangle]
pub extern "C" fn rump_sys_getgroups(size: c_int, list: *mut libc::gid_t) -> c_int {
    ret_int((|| {
        let size = usize::try_from(size).map_err(|_| Errno::EINVAL)?;
        let groups = match ctx::call(Request::Getgroups)? {
            Response::Ids(v) => v,
            _ => return Err(Errno::EIO),
        };
        if size == 0 {
            return Ok(groups.len() as i64);
        }
        if size < groups.len() {
            return Err(Errno::EINVAL);
        }
        let out = slice_mut(list, groups.len())?;
        out.copy_from_slice(&groups);
        Ok(groups.len() as i64)
    })())
}

/// `setuid(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_setuid(uid: libc::uid_t) -> c_int {
    ret_unit(resp::unit(Request::Setuid { uid }))
}

/// `setgid(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_setgid(gid: libc::gid_t) -> c_int {
    ret_unit(resp::unit(Request::Setgid { gid }))
}

/// `setgroups(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_setgroups(size: usize, list: *const libc::gid_t) -> c_int {
    ret_unit((|| {
        if size > 65536 {
            return Err(Errno::EINVAL);
        }
        let groups = slice(list, size)?.to_vec();
        resp::unit(Request::Setgroups { groups })
    })())
}

/// `uname(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_uname(buf: *mut libc::utsname) -> c_int {
    ret_unit((|| {
        if buf.is_null() {
            return Err(Errno::EFAULT);
        }
        let u = match ctx::call(Request::Uname)? {
            Response::Uname(u) => u,
            _ => return Err(Errno::EIO),
        };
        // SAFETY: a C structure of char arrays; all zeroes is valid.
        let mut c: libc::utsname = unsafe { std::mem::zeroed() };
        resp::fill_chars(&mut c.sysname, &u.sysname);
        resp::fill_chars(&mut c.nodename, &u.nodename);
        resp::fill_chars(&mut c.release, &u.release);
        resp::fill_chars(&mut c.version, &u.version);
        resp::fill_chars(&mut c.machine, &u.machine);
        resp::fill_chars(&mut c.domainname, &u.domainname);
        put(buf, c)
    })())
}

/// `pipe2(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    ret_unit((|| {
        let out = slice_mut(fds, 2)?;
        match ctx::call(Request::Pipe2 { flags })? {
            Response::Pair(r, w) => {
                out[0] = r;
                out[1] = w;
                Ok(())
            }
            _ => Err(Errno::EIO),
        }
    })())
}

/// `pipe(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_pipe(fds: *mut c_int) -> c_int {
    rump_sys_pipe2(fds, 0)
}

/// `dup(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_dup(fd: c_int) -> c_int {
    ret_int(resp::int(Request::Dup { fd }))
}

/// `dup2(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_dup2(old: c_int, new: c_int) -> c_int {
    ret_int(resp::int(Request::Dup2 { old, new }))
}

/// `dup3(2)`.
#[no_mangle]
pub extern "C" fn rump_sys_dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    ret_int(resp::int(Request::Dup3 { old, new, flags }))
}

/// `fcntl(2)` with an integer argument (`F_GETFL`, `F_SETFL`, `F_GETFD`,
/// `F_SETFD`, `F_DUPFD`, `F_DUPFD_CLOEXEC`); pass 0 when the command takes
/// none.
#[no_mangle]
pub extern "C" fn rump_sys_fcntl(fd: c_int, cmd: c_int, arg: c_long) -> c_int {
    ret_int(resp::int(Request::Fcntl { fd, cmd, arg }))
}

/// `poll(2)` over rump descriptors.
#[no_mangle]
pub extern "C" fn rump_sys_poll(
    fds: *mut libc::pollfd,
    nfds: libc::nfds_t,
    timeout_ms: c_int,
) -> c_int {
    ret_int((|| {
        let n = usize::try_from(nfds).map_err(|_| Errno::EINVAL)?;
        if n > 65536 {
            return Err(Errno::EINVAL);
        }
        let c = slice_mut(fds, n)?;
        let req = c
            .iter()
            .map(|f| PollFd {
                fd: f.fd,
                events: f.events,
                revents: 0,
            })
            .collect();
        match ctx::call(Request::Poll {
            fds: req,
            timeout_ms,
        })? {
            Response::Poll { n: ready, fds } if fds.len() == c.len() => {
                for (c, f) in c.iter_mut().zip(fds) {
                    c.revents = f.revents;
                }
                Ok(ready as i64)
            }
            _ => Err(Errno::EIO),
        }
    })())
}

/// The value of a kernel parameter as text (an integer in decimal),
/// NUL-terminated and truncated to fit `buf`; returns its full length.
#[no_mangle]
pub extern "C" fn rump_sys_sysctl_get(
    name: *const c_char,
    buf: *mut c_char,
    len: usize,
) -> libc::ssize_t {
    crate::ffi::ret_size((|| {
        let name = cstr_utf8(name)?.to_owned();
        match ctx::call(Request::SysctlGet { name })? {
            Response::Sysctl(v) => put_cstring(buf, len, v.to_string().as_bytes()),
            _ => Err(Errno::EIO),
        }
    })())
}

/// An integer kernel parameter (`EINVAL` when it is a string).
#[no_mangle]
pub extern "C" fn rump_sys_sysctl_getint(name: *const c_char, out: *mut i64) -> c_int {
    ret_unit((|| {
        let name = cstr_utf8(name)?.to_owned();
        match ctx::call(Request::SysctlGet { name })? {
            Response::Sysctl(SysctlValue::Int(v)) => put(out, v),
            Response::Sysctl(SysctlValue::Str(_)) => Err(Errno::EINVAL),
            _ => Err(Errno::EIO),
        }
    })())
}

/// Sets an integer kernel parameter.
#[no_mangle]
pub extern "C" fn rump_sys_sysctl_setint(name: *const c_char, value: i64) -> c_int {
    ret_unit(cstr_utf8(name).and_then(|n| {
        resp::unit(Request::SysctlSet {
            name: n.to_owned(),
            value: SysctlValue::Int(value),
        })
    }))
}

/// Sets a string kernel parameter (`kern.hostname`).
#[no_mangle]
pub extern "C" fn rump_sys_sysctl_setstr(name: *const c_char, value: *const c_char) -> c_int {
    ret_unit((|| {
        resp::unit(Request::SysctlSet {
            name: cstr_utf8(name)?.to_owned(),
            value: SysctlValue::Str(cstr_utf8(value)?.to_owned()),
        })
    })())
}

/// The parameters under `prefix` ("" for all) as a JSON object of name
/// to value, `snprintf`-style into `buf`.
#[no_mangle]
pub extern "C" fn rump_sys_sysctl_list(
    prefix: *const c_char,
    buf: *mut c_char,
    len: usize,
) -> libc::ssize_t {
    crate::ffi::ret_size((|| {
        let prefix = cstr_utf8(prefix)?.to_owned();
        match ctx::call(Request::SysctlList { prefix })? {
            Response::SysctlList(v) => {
                let map: serde_json::Map<String, serde_json::Value> = v
                    .into_iter()
                    .map(|(k, v)| {
                        let v = match v {
                            SysctlValue::Int(i) => serde_json::Value::from(i),
                            SysctlValue::Str(s) => serde_json::Value::from(s),
                        };
                        (k, v)
                    })
                    .collect();
                let text = serde_json::to_vec(&map).map_err(|_| Errno::EIO)?;
                put_cstring(buf, len, &text)
            }
            _ => Err(Errno::EIO),
        }
    })())
}
