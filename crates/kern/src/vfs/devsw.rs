//! The device switch: how opening a block-special file (`/dev/disk0`)
//! reaches the driver that owns its device number, like NetBSD's
//! `bdevsw`. The VFS below cannot name the block-device layer above it,
//! so that layer registers a [`DevSwitch`] as a kernel extension at boot
//! and the VFS calls through it. Without one, opening a device node is
//! `ENXIO`, as it was before devices had drivers.

use alloc::boxed::Box;
use alloc::sync::Arc;

use hyper::Errno;

use crate::file::FileOps;
use crate::Kernel;

/// The name of the kernel extension holding the [`DevSwitch`].
pub const EXTENSION: &str = "devsw";

/// Opens a block device by number, with `open`'s flags, returning the
/// open file's operations.
pub type OpenBlock = dyn Fn(&Kernel, u64, i32) -> Result<Box<dyn FileOps>, Errno> + Send + Sync;

/// The kernel's device switch.
pub struct DevSwitch {
    pub open_block: Box<OpenBlock>,
}

impl DevSwitch {
    /// Installs `sw` in `kernel`.
    pub fn install(kernel: &Kernel, sw: DevSwitch) {
        kernel.set_extension(EXTENSION, Arc::new(sw));
    }

    /// The switch of `kernel`, if a driver layer installed one.
    pub fn of(kernel: &Kernel) -> Option<Arc<DevSwitch>> {
        kernel
            .extension(EXTENSION)
            .and_then(|e| e.downcast::<DevSwitch>().ok())
    }
}
