//! `librump`: the C ABI of rump-rs for a kernel in the calling process.
//!
//! - `rump_init()` boots the classic default kernel (tmpfs root, ext2,
//!   FAT, ISO 9660, the network stack); every thread's calls go to its
//!   first process unless the thread chose otherwise.
//! - `rump_kernel_boot(config)` boots more kernels, `rump_kernel_halt(k)`
//!   halts one, `rump_kernel_set_current(k)` points the calling thread's
//!   calls at one.
//! - `rump_pub_lwproc_*` are the process contexts of rump_lwproc(3).
//! - `rump_init_server(url)` serves the current kernel to remote clients.
//! - `rump_pub_pktif_*` drive a packet interface (see `pktif`).
//! - The `rump_sys_*` calls, netconfig and etfs come from
//!   `rump-capi-core`, shared with `librumpclient`.
//!
//! The header `rump/rump.h` is generated from these sources at build time
//! (cbindgen) into `target/<profile>/include`; `scripts/install-capi`
//! installs library, headers and a pkg-config file.
//!
//! Handles (`struct rump_kernel *`, `struct lwp *`) are opaque numbers,
//! never dereferenced: a stale or made-up handle is `EINVAL` (or `ESRCH`),
//! not a crash.

#![allow(clippy::not_unsafe_ptr_arg_deref)]

mod kernels;
mod lwproc;
mod pktif;

pub use capi_core;
pub use kernels::*;
pub use lwproc::*;
pub use pktif::*;
