//! Which host files a kernel may open: a per-kernel policy that every
//! path opening a host object by name consults (etfs block devices, pcap
//! capture files, shmif bus files, tap devices).
//!
//! Kernel root is not host root: a server that lets remote clients act as
//! root in its kernel still decides which host files that kernel may
//! touch, so a client cannot have the server open `/etc/shadow` as a disk.
//! A kernel without a policy (the default, for in-process use) may open
//! whatever its platform allows. The policy lives in the kernel's
//! extension table, so each kernel has its own.

use alloc::sync::Arc;

use crate::{Errno, Kernel};

const EXTENSION: &str = "kern.host-policy";

/// What kind of host object is being opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostAccess {
    /// A file or device registered as a block device (etfs).
    BlockDevice { writable: bool },
    /// A packet-capture file (created or truncated).
    Pcap,
    /// A shared-memory bus file (shmif).
    ShmBus,
    /// A tap device, by interface name.
    Tap,
}

/// Decides whether a kernel may open a host object.
pub trait HostPolicy: Send + Sync {
    /// `Ok` to allow; an error (normally `EACCES`) to refuse.
    fn check(&self, what: HostAccess, name: &str) -> Result<(), Errno>;
}

struct Installed(Arc<dyn HostPolicy>);

/// Installs (or, with `None`, removes) `kernel`'s policy.
pub fn set(kernel: &Kernel, policy: Option<Arc<dyn HostPolicy>>) {
    match policy {
        Some(p) => kernel.set_extension(EXTENSION, Arc::new(Installed(p))),
        None => kernel.set_extension(EXTENSION, Arc::new(())),
    }
}

/// Asks `kernel`'s policy whether `name` may be opened as `what`
/// (allowed when there is none). Refusals are logged on the console.
pub fn check(kernel: &Kernel, what: HostAccess, name: &str) -> Result<(), Errno> {
    let Some(ext) = kernel.extension(EXTENSION) else {
        return Ok(());
    };
    let Ok(p) = ext.downcast::<Installed>() else {
        return Ok(());
    };
    let r = p.0.check(what, name);
    if r.is_err() {
        kernel.log(&alloc::format!(
            "host policy: refused to open {name} ({what:?})"
        ));
    }
    r
}
