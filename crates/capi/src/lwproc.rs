//! Process contexts, as rump_lwproc(3): a host thread makes a new process
//! (`rfork`) or a new thread of an existing one (`newlwp`), switches
//! between them, and releases them; a process goes away with its last
//! lwp, closing its descriptors.

use std::cell::Cell;
use std::ffi::c_int;

use capi_core::ffi::{fail, ret_unit};
use capi_core::{ctx, Target};
use rump::{Errno, ForkFds, Process};

use crate::kernels::{thread_kernel, with_registry, THREAD_KERNEL, THREAD_LWP};

/// An opaque lwp handle (`struct lwp *`), never dereferenced.
#[allow(non_camel_case_types)]
pub struct lwp {
    _opaque: [u8; 0],
}

/// `rump_pub_lwproc_rfork` flags (NetBSD's values): copy the descriptor
/// table, or start with an empty one; 0 shares the parent's.
pub const RUMP_RFFDG: c_int = 0x04;
pub const RUMP_RFCFDG: c_int = 0x1000;

/// The process the calling thread's calls go to, and its kernel.
fn current_process() -> Result<(u64, Process), Errno> {
    let l = THREAD_LWP.with(Cell::get);
    let kid = thread_kernel();
    with_registry(|r| {
        if l != 0 {
            let (kid, pid, _) = r.lwps.get(&l).ok_or(Errno::EINVAL)?;
            let e = r.kernels.get(kid).ok_or(Errno::ENXIO)?;
            let p = if e.main.pid() == *pid {
                e.main.clone()
            } else {
                e.procs.get(pid).ok_or(Errno::ESRCH)?.0.clone()
            };
            return Ok((*kid, p));
        }
        let e = r.kernels.get(&kid).ok_or(Errno::ENXIO)?;
        Ok((kid, e.main.clone()))
    })
}

/// Binds the calling thread to a new lwp of `p` (in kernel `kid`).
fn enter(kid: u64, p: Process) -> u64 {
    leave_lwp();
    let l = p.bind_current_thread();
    let id = with_registry(|r| {
        let id = r.next;
        r.next += 1;
        r.lwps.insert(id, (kid, p.pid(), l));
        if let Some(e) = r.kernels.get_mut(&kid) {
            if let Some(entry) = e.procs.get_mut(&p.pid()) {
                entry.1 += 1;
            }
        }
        id
    });
    THREAD_LWP.with(|c| c.set(id));
    THREAD_KERNEL.with(|c| c.set(kid));
    ctx::bind_thread(Some(Target::Local(p)));
    id
}

/// Unbinds the calling thread from its lwp (which stays alive).
pub(crate) fn leave_lwp() {
    let l = THREAD_LWP.with(|c| c.replace(0));
    if l == 0 {
        return;
    }
    // A halted kernel's lwps are gone: nothing is left to unbind from.
    if let Some(lwp) = with_registry(|r| r.lwps.get(&l).map(|x| x.2.clone())) {
        rump::kern::Lwp::unbind_current(&**lwp.proc.kernel().hyper());
    }
    ctx::bind_thread(None);
}

/// A new process, child of the calling thread's, with the descriptor
/// table shared (0), copied (`RUMP_RFFDG`) or empty (`RUMP_RFCFDG`); the
/// calling thread switches to a new lwp of it. Returns 0, or an errno
/// value (not -1), as NetBSD's does.
#[no_mangle]
pub extern "C" fn rump_pub_lwproc_rfork(flags: c_int) -> c_int {
    let r = (|| -> Result<(), Errno> {
        let fds = match flags {
            0 => ForkFds::Share,
            RUMP_RFFDG => ForkFds::Copy,
            RUMP_RFCFDG => ForkFds::Clear,
            _ => return Err(Errno::EINVAL),
        };
        let (kid, parent) = current_process()?;
        let child = parent.rfork(fds)?;
        with_registry(|r| {
            let e = r.kernels.get_mut(&kid).ok_or(Errno::ENXIO)?;
            e.procs.insert(child.pid(), (child.clone(), 0));
            Ok::<(), Errno>(())
        })?;
        enter(kid, child);
        Ok(())
    })();
    match r {
        Ok(()) => 0,
        Err(e) => e.raw(),
    }
}

/// A new lwp of process `pid` (of the calling thread's kernel), which the
/// calling thread switches to. Returns 0 or an errno value (`ESRCH`).
#[no_mangle]
pub extern "C" fn rump_pub_lwproc_newlwp(pid: c_int) -> c_int {
    let r = (|| -> Result<(), Errno> {
        let kid = thread_kernel();
        let p = with_registry(|r| {
            let e = r.kernels.get(&kid).ok_or(Errno::ENXIO)?;
            if e.main.pid() == pid {
                return Ok(e.main.clone());
            }
            e.procs.get(&pid).map(|x| x.0.clone()).ok_or(Errno::ESRCH)
        })?;
        enter(kid, p);
        Ok(())
    })();
    match r {
        Ok(()) => 0,
        Err(e) => e.raw(),
    }
}

/// Switches the calling thread to lwp `l` (NULL: back to its kernel's
/// first process). `EINVAL` (returned as -1 with errno) for an lwp that
/// does not exist.
#[no_mangle]
pub extern "C" fn rump_pub_lwproc_switch(l: *mut lwp) -> c_int {
    let id = l as usize as u64;
    ret_unit((|| {
        if id == 0 {
            leave_lwp();
            return Ok(());
        }
        let (kid, pid, handle) =
            with_registry(|r| r.lwps.get(&id).cloned()).ok_or(Errno::EINVAL)?;
        let p = with_registry(|r| {
            let e = r.kernels.get(&kid)?;
            if e.main.pid() == pid {
                Some(e.main.clone())
            } else {
                e.procs.get(&pid).map(|x| x.0.clone())
            }
        })
        .ok_or(Errno::ESRCH)?;
        leave_lwp();
        handle.bind_current();
        THREAD_LWP.with(|c| c.set(id));
        THREAD_KERNEL.with(|c| c.set(kid));
        ctx::bind_thread(Some(Target::Local(p)));
        Ok(())
    })())
}

/// Releases the calling thread's lwp; a process made by `rfork` exits
/// with its last lwp (its descriptors are closed). The thread goes back
/// to its kernel's first process. `EINVAL` when the thread has no lwp.
#[no_mangle]
pub extern "C" fn rump_pub_lwproc_releaselwp() -> c_int {
    let id = THREAD_LWP.with(Cell::get);
    if id == 0 {
        return fail(Errno::EINVAL);
    }
    leave_lwp();
    let gone = with_registry(|r| {
        let (kid, pid, _) = r.lwps.remove(&id)?;
        let e = r.kernels.get_mut(&kid)?;
        let entry = e.procs.get_mut(&pid)?;
        entry.1 = entry.1.saturating_sub(1);
        if entry.1 == 0 {
            e.procs.remove(&pid).map(|x| x.0)
        } else {
            None
        }
    });
    if let Some(p) = gone {
        // The process's descriptors close here, outside the table lock.
        drop(p);
    }
    0
}

/// The lwp the calling thread is switched to, or NULL.
#[no_mangle]
pub extern "C" fn rump_pub_lwproc_curlwp() -> *mut lwp {
    THREAD_LWP.with(Cell::get) as usize as *mut lwp
}
