//! The rump kernel base.
//!
//! [`Kernel`] instances boot from a [`KernelConfig`] of chosen
//! [`Component`]s on a [`hyper::Hyper`] platform; everything a kernel owns
//! hangs off its value. The base provides process contexts ([`Proc`]),
//! credentials ([`Cred`]), descriptor tables ([`FdTable`]), open files
//! ([`File`]), the VFS ([`vfs`]), pipes, a sysctl tree, callouts, and the
//! locks and wait queues everything else is built on ([`sync`]).
//!
//! Neighbours: below is `hyper` (the only way out); above are the file
//! systems (`fs-tmpfs`, ...), the network stack, and `sys`, the system-call
//! layer, which is the only caller of the VFS and file operations.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod callout;
pub mod consts;
pub mod cred;
pub mod fd;
pub mod file;
pub mod hostpolicy;
mod kernel;
pub mod pipe;
pub mod proc;
pub mod sync;
pub mod sysctl;
pub mod vfs;

pub use cred::{Access, Cred};
pub use fd::FdTable;
pub use file::{File, FileOps, Pos, Stat};
pub use hyper::{Errno, Timespec};
pub use kernel::{Component, Kernel, KernelConfig, Stage, WeakKernel};
pub use proc::{ForkFds, Lwp, Proc, ProcDirs};
