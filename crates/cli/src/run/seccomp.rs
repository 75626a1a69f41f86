//! The seccomp side of `rump run`: the BPF filter installed in the child
//! before exec, and the listener the supervisor serves notifications on
//! (seccomp(2), seccomp_unotify(2)).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `AUDIT_ARCH_X86_64` (`linux/audit.h`): EM_X86_64 | 64-bit | little-endian.
const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// The x32 ABI marks its numbers with this bit.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
/// Offsets in `struct seccomp_data`.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
/// The low half of `args[0]` (x86_64 is little-endian).
const DATA_ARG0_LOW: u32 = 16;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// The filter program: other architectures and x32 are killed (their
/// numbers mean other calls), `refused` calls fail with their errno
/// without a round trip, `routed` calls go to the supervisor, the rest run
/// natively.
/// `sendmsg` on descriptor `chan` is always allowed: the child hands its
/// listener over with it after the filter is in place.
pub fn program(routed: &[u64], refused: &[(u64, i32)], chan: i32) -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_JEQ, BPF_JGE, BPF_JMP, BPF_K, BPF_LD, BPF_RET, BPF_W};
    let mut p = vec![
        stmt(BPF_LD | BPF_W | BPF_ABS, DATA_ARCH),
        jump(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
        stmt(BPF_LD | BPF_W | BPF_ABS, DATA_NR),
        jump(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_KILL_PROCESS),
        jump(BPF_JMP | BPF_JEQ | BPF_K, libc::SYS_sendmsg as u32, 0, 3),
        stmt(BPF_LD | BPF_W | BPF_ABS, DATA_ARG0_LOW),
        jump(BPF_JMP | BPF_JEQ | BPF_K, chan as u32, 0, 1),
        stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW),
        stmt(BPF_LD | BPF_W | BPF_ABS, DATA_NR),
    ];
    for &(nr, errno) in refused {
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, 0, 1));
        p.push(stmt(
            BPF_RET | BPF_K,
            libc::SECCOMP_RET_ERRNO | (errno as u32 & 0xffff),
        ));
    }
    // One comparison per routed number, each jumping to the shared
    // USER_NOTIF return at the end (the jump offsets fit in a u8 for up
    // to 255 numbers).
    assert!(
        routed.len() < 250,
        "too many routed calls for one jump table"
    );
    let n = routed.len();
    for (i, &nr) in routed.iter().enumerate() {
        let to_notify = (n - i) as u8; // past the remaining compares and ALLOW
        p.push(jump(BPF_JMP | BPF_JEQ | BPF_K, nr as u32, to_notify, 0));
    }
    p.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_ALLOW));
    p.push(stmt(BPF_RET | BPF_K, libc::SECCOMP_RET_USER_NOTIF));
    p
}

/// Installs `prog` on the calling thread with a new listener and returns
/// the listener descriptor. Called in the child between fork and exec,
/// so it makes raw system calls only and allocates nothing.
///
/// # Safety
///
/// `prog` must stay valid for the call (it is only read).
pub unsafe fn install(prog: &[libc::sock_filter]) -> io::Result<RawFd> {
    let fprog = libc::sock_fprog {
        len: prog.len() as u16,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let flags =
        libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    // SAFETY: `fprog` points at `prog`, which the caller keeps alive; the
    // kernel copies the program during the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &fprog as *const libc::sock_fprog,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd as RawFd)
}

/// Whether this kernel offers user notification with killable waits
/// (Linux 5.19), probed in a throw-away child.
pub fn available() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .map(|s| s.split_whitespace().any(|a| a == "user_notif"))
        .unwrap_or(false)
}

/// The supervisor's end of a filter.
pub struct Listener {
    fd: OwnedFd,
}

/// One notification: who called what.
pub type Notif = libc::seccomp_notif;

impl Listener {
    pub fn from_fd(fd: OwnedFd) -> Listener {
        // Synchronous wake-up (Linux 6.6): the caller is woken on the CPU
        // that answers it, which saves a context switch per call. Older
        // kernels refuse the flag; nothing else changes.
        let sync_wake_up: u64 = 1;
        // SAFETY: SET_FLAGS reads one u64 flag word.
        unsafe {
            libc::ioctl(
                fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                sync_wake_up,
            );
        }
        Listener { fd }
    }

    /// Waits for the next notification. `Ok(None)` once no process uses
    /// the filter any more.
    pub fn recv(&self) -> io::Result<Option<Notif>> {
        loop {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd on our stack.
            let r = unsafe { libc::poll(&mut pfd, 1, -1) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(e);
            }
            if pfd.revents & libc::POLLIN == 0 && pfd.revents & libc::POLLHUP != 0 {
                return Ok(None);
            }
            // SAFETY: seccomp_notif is plain data; RECV requires it zeroed.
            let mut n: Notif = unsafe { std::mem::zeroed() };
            // SAFETY: the ioctl writes one seccomp_notif into `n`.
            let r =
                unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
            if r == 0 {
                return Ok(Some(n));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                // The caller was interrupted or died before we took it.
                Some(libc::ENOENT) | Some(libc::EINTR) => continue,
                _ => return Err(e),
            }
        }
    }

    /// Whether notification `id` is still pending (its caller alive and
    /// waiting): checked after reading the caller's memory, before acting.
    pub fn id_valid(&self, id: u64) -> bool {
        // SAFETY: ID_VALID reads one u64 from the pointer.
        unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
    }

    /// Answers `id` with a value (`error == 0`) or `-error`, or lets the
    /// call run in the host kernel (`cont`). An answer to a caller that
    /// has gone away is dropped.
    pub fn send(&self, id: u64, val: i64, error: i32, cont: bool) {
        let resp = libc::seccomp_notif_resp {
            id,
            val,
            error,
            flags: if cont {
                libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32
            } else {
                0
            },
        };
        // SAFETY: SEND reads one seccomp_notif_resp; an error (ENOENT: the
        // caller was interrupted) needs no action, the call is re-issued.
        unsafe {
            libc::ioctl(self.fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp);
        }
    }

    /// Installs a copy of our descriptor `src` in the caller of `id`;
    /// returns its number there.
    pub fn add_fd(&self, id: u64, src: RawFd, cloexec: bool) -> io::Result<i32> {
        let a = libc::seccomp_notif_addfd {
            id,
            flags: 0,
            srcfd: src as u32,
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        // SAFETY: ADDFD reads one seccomp_notif_addfd.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ADDFD, &a) };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
}

/// Takes ownership of a descriptor received from the child.
///
/// # Safety
///
/// `fd` must be open and owned by nobody else.
pub unsafe fn owned(fd: RawFd) -> OwnedFd {
    // SAFETY: as the caller promises.
    unsafe { OwnedFd::from_raw_fd(fd) }
}
