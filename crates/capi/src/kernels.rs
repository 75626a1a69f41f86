//! Kernels for C callers: `rump_init`, `rump_kernel_boot`/`_halt`/
//! `_set_current`, `rump_init_server`.

use std::cell::Cell;
use std::collections::HashMap;
use std::ffi::{c_char, c_int};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use capi_core::ffi::{cstr_opt, cstr_utf8, fail, ret_unit};
use capi_core::{ctx, Target};
use rump::remote::{ServerConfig, ServerHandle, Url};
use rump::{Errno, Kernel, Process};

/// An opaque kernel handle (`struct rump_kernel *`). Never dereferenced:
/// its value names an entry of the library's kernel table.
#[allow(non_camel_case_types)]
pub struct rump_kernel {
    _opaque: [u8; 0],
}

pub(crate) struct KEntry {
    pub kernel: Arc<Kernel>,
    /// The process calls go to when a thread has chosen no other.
    pub main: Process,
    /// Processes made by `rump_pub_lwproc_rfork`, with their lwp counts.
    pub procs: HashMap<i32, (Process, usize)>,
    pub servers: Vec<ServerHandle>,
}

pub(crate) struct Registry {
    pub next: u64,
    pub kernels: HashMap<u64, KEntry>,
    /// Live lwps: handle -> (kernel, pid, the kernel's lwp).
    pub lwps: HashMap<u64, (u64, i32, Arc<rump::kern::Lwp>)>,
}

static REGISTRY: Mutex<Option<Registry>> = Mutex::new(None);
/// The kernel `rump_init` booted (0: none).
static DEFAULT_KERNEL: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The kernel `rump_kernel_set_current` chose for this thread (0:
    /// the default).
    pub(crate) static THREAD_KERNEL: Cell<u64> = const { Cell::new(0) };
    /// The lwp this thread is switched to (0: none).
    pub(crate) static THREAD_LWP: Cell<u64> = const { Cell::new(0) };
}

/// The kernel table, locked.
pub(crate) fn registry() -> MutexGuard<'static, Option<Registry>> {
    let mut g = REGISTRY.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        *g = Some(Registry {
            next: 1,
            kernels: HashMap::new(),
            lwps: HashMap::new(),
        });
    }
    g
}

/// Runs `f` with the table.
pub(crate) fn with_registry<R>(f: impl FnOnce(&mut Registry) -> R) -> R {
    let mut g = registry();
    f(g.as_mut().expect("initialised above"))
}

fn handle(id: u64) -> *mut rump_kernel {
    id as usize as *mut rump_kernel
}

fn id_of(k: *mut rump_kernel) -> u64 {
    k as usize as u64
}

/// The kernel the calling thread's calls go to (0: none).
pub(crate) fn thread_kernel() -> u64 {
    match THREAD_KERNEL.with(Cell::get) {
        0 => DEFAULT_KERNEL.load(Ordering::Acquire),
        k => k,
    }
}

/// Boots a kernel from a configuration string: `key=value` items
/// separated by commas or newlines. `hostname=NAME`; `root=tmpfs` (the
/// default) or `root=none`; `net=0` leaves the network stack out;
/// any other key containing a dot is a kernel parameter
/// (`net.inet.ip.forwarding=1`). Unknown keys are `EINVAL`.
fn boot(config: Option<&str>) -> Result<Kernel, Errno> {
    let mut b = Kernel::builder().ext2().fat().iso9660();
    let mut net = true;
    for item in config.unwrap_or("").split([',', '\n']) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (k, v) = item.split_once('=').ok_or(Errno::EINVAL)?;
        match k.trim() {
            "hostname" => b = b.hostname(v.trim()),
            "root" => match v.trim() {
                "tmpfs" => b = b.root_fs(Some("tmpfs")),
                "none" => b = b.root_fs(None),
                _ => return Err(Errno::EINVAL),
            },
            "net" => match v.trim() {
                "0" | "no" | "off" => net = false,
                "1" | "yes" | "on" => net = true,
                _ => return Err(Errno::EINVAL),
            },
            k if k.contains('.') => b = b.param(k, v.trim()),
            _ => return Err(Errno::EINVAL),
        }
    }
    if net {
        b = b.net();
    }
    b.boot()
}

fn register(kernel: Kernel) -> Result<u64, Errno> {
    let main = kernel.process()?;
    Ok(with_registry(|r| {
        let id = r.next;
        r.next += 1;
        r.kernels.insert(
            id,
            KEntry {
                kernel: Arc::new(kernel),
                main,
                procs: HashMap::new(),
                servers: Vec::new(),
            },
        );
        id
    }))
}

/// Boots the default kernel (the classic `rump_init(3)`): tmpfs root,
/// ext2, FAT, ISO 9660 and the network stack. Calls of every thread go to
/// its first process. A second call does nothing and returns 0. Returns 0,
/// or an errno value (not -1) as NetBSD's does.
#[no_mangle]
pub extern "C" fn rump_init() -> c_int {
    let mut g = registry();
    let r = g.as_mut().expect("initialised");
    let cur = DEFAULT_KERNEL.load(Ordering::Acquire);
    if r.kernels.contains_key(&cur) {
        return 0;
    }
    drop(g);
    match boot(None).and_then(register) {
        Ok(id) => {
            let main = with_registry(|r| r.kernels[&id].main.clone());
            DEFAULT_KERNEL.store(id, Ordering::Release);
            ctx::set_default(Some(Target::Local(main)));
            0
        }
        Err(e) => e.raw(),
    }
}

/// Boots another kernel; see the configuration syntax above (NULL or ""
/// for the defaults of `rump_init`). Returns its handle, or NULL with
/// errno set. The calling thread's calls do not move to it until
/// `rump_kernel_set_current`.
#[no_mangle]
pub extern "C" fn rump_kernel_boot(config: *const c_char) -> *mut rump_kernel {
    let r = (|| {
        let config = match cstr_opt(config)? {
            Some(c) => Some(std::str::from_utf8(c).map_err(|_| Errno::EINVAL)?),
            None => None,
        };
        register(boot(config)?)
    })();
    match r {
        Ok(id) => handle(id),
        Err(e) => {
            capi_core::ffi::set_errno(e.raw());
            std::ptr::null_mut()
        }
    }
}

/// Halts a kernel: blocked calls wake with `ESHUTDOWN`, file systems are
/// unmounted and written back, servers stop. The handle is invalid
/// afterwards; threads still pointed at it get `ESHUTDOWN` (or `ENXIO`
/// for the default kernel). `EINVAL` for an unknown handle.
#[no_mangle]
pub extern "C" fn rump_kernel_halt(k: *mut rump_kernel) -> c_int {
    let id = id_of(k);
    let entry = with_registry(|r| {
        let e = r.kernels.remove(&id)?;
        r.lwps.retain(|_, (kid, _, _)| *kid != id);
        Some(e)
    });
    let Some(entry) = entry else {
        return fail(Errno::EINVAL);
    };
    for s in &entry.servers {
        s.stop();
    }
    entry.kernel.halt();
    let mut procs: Vec<Arc<rump::kern::Proc>> = vec![entry.main.raw().clone()];
    procs.extend(entry.procs.values().map(|(p, _)| p.raw().clone()));
    ctx::forget(|t| match t {
        Target::Local(p) => procs.iter().any(|q| Arc::ptr_eq(q, p.raw())),
        Target::Remote(_) => false,
    });
    if DEFAULT_KERNEL.load(Ordering::Acquire) == id {
        DEFAULT_KERNEL.store(0, Ordering::Release);
    }
    if THREAD_KERNEL.with(Cell::get) == id {
        THREAD_KERNEL.with(|c| c.set(0));
    }
    if THREAD_LWP.with(Cell::get) != 0
        && !with_registry(|r| r.lwps.contains_key(&THREAD_LWP.with(Cell::get)))
    {
        THREAD_LWP.with(|c| c.set(0));
    }
    0
}

/// Points the calling thread's calls at kernel `k` (its first process);
/// NULL goes back to the default kernel. Leaves any lwp the thread was
/// switched to.
#[no_mangle]
pub extern "C" fn rump_kernel_set_current(k: *mut rump_kernel) -> c_int {
    let id = id_of(k);
    ret_unit((|| {
        let target = if id == 0 {
            None
        } else {
            let main = with_registry(|r| r.kernels.get(&id).map(|e| e.main.clone()))
                .ok_or(Errno::EINVAL)?;
            Some(Target::Local(main))
        };
        crate::lwproc::leave_lwp();
        THREAD_KERNEL.with(|c| c.set(id));
        ctx::bind_thread(target);
        Ok(())
    })())
}

/// The kernel the calling thread's calls go to, or NULL when there is
/// none.
#[no_mangle]
pub extern "C" fn rump_kernel_current() -> *mut rump_kernel {
    let id = thread_kernel();
    if with_registry(|r| r.kernels.contains_key(&id)) {
        handle(id)
    } else {
        std::ptr::null_mut()
    }
}

/// Serves the calling thread's kernel to remote clients at `url`
/// (`unix:///path` or `tcp://127.0.0.1:PORT`) from a thread of its own,
/// until the kernel is halted. Clients connecting with the uid of this
/// process (or root) act as root. Returns 0, or an errno value as
/// NetBSD's `rump_init_server` does.
#[no_mangle]
pub extern "C" fn rump_init_server(url: *const c_char) -> c_int {
    let r = (|| -> Result<(), Errno> {
        let url = Url::parse(cstr_utf8(url)?).map_err(|_| Errno::EINVAL)?;
        let id = thread_kernel();
        let kernel =
            with_registry(|r| r.kernels.get(&id).map(|e| e.kernel.clone())).ok_or(Errno::ENXIO)?;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let cfg = ServerConfig {
            root_uids: vec![0, uid],
            ..ServerConfig::default()
        };
        let server = rump::remote::serve(&kernel, &url, cfg)
            .map_err(|e| Errno(e.raw_os_error().unwrap_or(Errno::EIO.raw())))?;
        let h = server.handle();
        std::thread::Builder::new()
            .name("rump-server".into())
            .spawn(move || {
                let _ = server.run();
            })
            .map_err(|_| Errno::EAGAIN)?;
        with_registry(|r| {
            if let Some(e) = r.kernels.get_mut(&id) {
                e.servers.push(h);
            }
        });
        Ok(())
    })();
    match r {
        Ok(()) => 0,
        Err(e) => e.raw(),
    }
}
