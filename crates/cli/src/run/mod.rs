//! `rump run`: runs an unmodified program with its calls on the rump
//! tree (paths under `/rump`, descriptors opened there) served by a rump
//! kernel: a private one, configured like `rump server`, or a running
//! server (`--server`).
//!
//! The child installs a seccomp filter with user notification before it
//! executes the program; the filter is inherited by every descendant and
//! survives exec. A receiver thread here drains notifications and hands
//! them to worker threads, which serve them through the Linux personality
//! (`linux-abi`) or let them run in the host kernel. The descriptor model
//! and what is routed are in docs/run.md.

mod seccomp;
mod supervisor;

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::sync::{mpsc, Arc, Mutex};

use anyhow::{anyhow, bail, Context, Result};

use crate::server::{boot_configured, shut_down, KernelArgs};
use supervisor::{Backend, Routing, Supervisor};

/// Options of `rump run`.
#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Routing (--hijack, as NetBSD's RUMPHIJACK): path=/rump (default) sends \
paths under /rump to the kernel with the prefix stripped (/rump/mnt/x is the kernel's /mnt/x), \
and descriptors opened there stay the kernel's; socket=inet,inet6 (default) makes AF_INET and \
AF_INET6 sockets the kernel's, socket=none leaves them on the host. Everything else runs on the \
host. Details: docs/run.md."
)]
pub struct RunArgs {
    /// Use this server instead of a private kernel (unix:///path or tcp://host:port).
    #[arg(long = "server", value_name = "URL")]
    pub server: Option<String>,
    /// What to route to the kernel: path=PREFIX,socket=inet,inet6|none.
    #[arg(
        long = "hijack",
        value_name = "SPEC",
        default_value = "path=/rump,socket=inet,inet6"
    )]
    pub hijack: String,
    /// Worker threads serving calls.
    #[arg(long = "workers", default_value_t = 8)]
    pub workers: usize,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// The program and its arguments.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    pub command: Vec<std::ffi::OsString>,
}

/// `rump run`: returns the program's exit status (128 + signal when
/// killed), which the binary exits with.
pub fn run(args: RunArgs) -> Result<i32> {
    if !seccomp::available() {
        bail!("run: this kernel has no seccomp user notification (Linux 5.0 or later with SECCOMP_FILTER)");
    }
    let routing = Routing::parse(&args.hijack).map_err(|e| anyhow!(e))?;
    let (configured, backend) = match &args.server {
        Some(url) => {
            let has_kernel_opts = !args.kernel.disks.is_empty()
                || !args.kernel.mounts.is_empty()
                || !args.kernel.ifs.is_empty()
                || !args.kernel.params.is_empty();
            if has_kernel_opts {
                bail!("run: --disk, --mount, --if and --param configure a private kernel, not --server");
            }
            let c = rump::remote::connect(url).map_err(|e| anyhow!("--server {url}: {e}"))?;
            (None, Backend::Remote(Arc::new(c)))
        }
        None => {
            let c = boot_configured(&args.kernel)?;
            let p = c
                .kernel
                .process()
                .map_err(|e| anyhow!("process: {}", rump::io_error(e)))?;
            (Some(c), Backend::Local(p))
        }
    };

    // The child hands its listener over on this socket pair.
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().context("socketpair")?;
    // A high number for the channel, which the filter lets `sendmsg`
    // through on (a program is unlikely to reuse it for a rump socket).
    // SAFETY: F_DUPFD_CLOEXEC on our open descriptor; checked below.
    let chan = unsafe { libc::fcntl(theirs.as_raw_fd(), libc::F_DUPFD_CLOEXEC, CHAN_FD) };
    if chan < 0 {
        bail!("run: {}", io::Error::last_os_error());
    }
    // SAFETY: `chan` was just made and is ours alone.
    let chan_owned = unsafe { seccomp::owned(chan) };
    let prog = seccomp::program(supervisor::ROUTED, supervisor::REFUSED, chan);
    let mut cmd = std::process::Command::new(&args.command[0]);
    cmd.args(&args.command[1..]);
    let hook = move || {
        // SAFETY: `prog` lives in this closure, so for the call.
        let listener = unsafe { seccomp::install(&prog) }?;
        send_fd(chan, listener)?;
        // SAFETY: both descriptors are this child's copies, unused after
        // this point.
        unsafe {
            libc::close(listener);
            libc::close(chan);
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec and makes
    // raw system calls only (prctl, seccomp, sendmsg, close), on memory
    // prepared before the fork (`prog`) and its own stack.
    unsafe {
        cmd.pre_exec(hook);
    }
    // Receive the listener and start serving on another thread:
    // spawn() returns only once the child has exec'd, and its execve is
    // already a routed call.
    let workers = args.workers.max(1);
    let setup = std::thread::spawn(move || -> Result<Arc<Supervisor>> {
        let lfd = recv_fd(ours.as_raw_fd()).context("run: receiving the seccomp listener")?;
        // SAFETY: `lfd` arrived by SCM_RIGHTS and is ours alone.
        let listener = seccomp::Listener::from_fd(unsafe { seccomp::owned(lfd) });
        let sup = Arc::new(Supervisor::new(listener, routing, backend)?);
        start(&sup, workers)?;
        Ok(sup)
    });
    let spawned = cmd.spawn();
    drop(theirs);
    drop(chan_owned);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => bail!("run: {}: {e}", args.command[0].to_string_lossy()),
    };
    let sup = setup
        .join()
        .map_err(|_| anyhow!("run: supervisor thread failed"))??;
    // Terminal signals are the program's to handle; we wait for it.
    // SAFETY: setting SIGINT and SIGQUIT to ignored in this process only
    // (the child already exec'd with its own dispositions).
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGQUIT, libc::SIG_IGN);
    }
    let status = child.wait().context("run: wait")?;
    sup.release();
    if let Some(c) = configured {
        shut_down(c, "rump run");
    }
    Ok(match (status.code(), status.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        _ => 1,
    })
}

/// The descriptor number of the listener channel in the child.
const CHAN_FD: i32 = 900;

/// Threads receiving notifications (and serving those that cannot wait).
const RECEIVERS: usize = 3;

/// Starts the reaper, the receivers and `workers` worker threads.
fn start(sup: &Arc<Supervisor>, workers: usize) -> io::Result<()> {
    {
        let sup = sup.clone();
        std::thread::Builder::new()
            .name("rump-run-reaper".into())
            .spawn(move || sup.reap())?;
    }
    let (tx, rx) = mpsc::channel::<seccomp::Notif>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..workers {
        let sup = sup.clone();
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("rump-run-{i}"))
            .spawn(move || loop {
                let n = match rx.lock().unwrap().recv() {
                    Ok(n) => n,
                    Err(_) => return,
                };
                sup.handle(&n);
            })?;
    }
    // Several receivers: a signal that reaches the program before its
    // notification is received interrupts the call (EINTR where the host
    // would not have been interruptible, for programs whose handlers lack
    // SA_RESTART); once received, the filter's WAIT_KILLABLE_RECV holds
    // signals off. So a notification must never wait for a receiver that
    // is busy serving another one.
    for i in 0..RECEIVERS {
        let sup = sup.clone();
        let tx = tx.clone();
        std::thread::Builder::new()
            .name(format!("rump-run-recv{i}"))
            .spawn(move || {
                while let Ok(Some(n)) = sup.listener.recv() {
                    sup.trace_received(&n);
                    if !sup.may_block(&n) {
                        sup.handle(&n);
                    } else if tx.send(n).is_err() {
                        return;
                    }
                }
            })?;
    }
    Ok(())
}

/// Sends descriptor `fd` on the unix socket `chan` (SCM_RIGHTS). Safe to
/// call between fork and exec: no allocation.
fn send_fd(chan: RawFd, fd: RawFd) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // Room for one cmsghdr with one int, 8-aligned.
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr is plain data; zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE computes a size from a constant.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as usize;
    // SAFETY: the control buffer is large enough for one cmsghdr with an
    // int (CMSG_SPACE(4) = 24 <= 32 bytes), so CMSG_FIRSTHDR and
    // CMSG_DATA point inside it.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<i32>(), fd);
    }
    // SAFETY: `msg` and everything it points to live on this stack.
    if unsafe { libc::sendmsg(chan, &msg, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Receives one descriptor sent by [`send_fd`].
fn recv_fd(chan: RawFd) -> io::Result<RawFd> {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut cbuf = [0u64; 4];
    // SAFETY: msghdr is plain data; zero is a valid empty header.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: `msg` and its buffers live on this stack.
    let n = unsafe { libc::recvmsg(chan, &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n <= 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the child exited before handing over its filter",
        ));
    }
    // SAFETY: recvmsg filled `msg`; CMSG_FIRSTHDR checks controllen.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err(io::Error::other("no descriptor received"));
        }
        Ok(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>()))
    }
}
