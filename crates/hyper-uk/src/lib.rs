//! The unikernel platform: [`hyper::Hyper`] for a bare x86_64 guest under
//! `uk-runner` on KVM.
//!
//! The guest is entered in 64-bit mode by the runner (identity-mapped,
//! one vCPU, no interrupts). This crate provides, for an application built
//! for `x86_64-unknown-none`:
//!
//! - the entry point `_start` (boot stack from the runner, then Rust);
//! - a heap (`linked_list_allocator`) over the memory between the image and
//!   the boot stack, as the boot block says;
//! - a cooperative round-robin scheduler (`sched`) for the kernel's threads
//!   and the application's: every park, sleep, join, frame wait and spin
//!   round ([`hyper::Hyper::relax`]) switches threads; with nothing to run
//!   it asks the runner to `POLL` until the next deadline or frame;
//! - clocks from the TSC, at the frequency the boot block gives (or
//!   calibrated against the runner's clock hypercall), wall time anchored
//!   once through that hypercall;
//! - console, parameters, disks and tap links through hypercalls (`uk-abi`);
//! - panic and exit with a message and a register dump.
//!
//! Applications write `hyper_uk::main!(app);` with `fn app(Arc<dyn Hyper>)
//! -> i32`, boot a kernel on that platform, and return an exit code.
//!
//! A platform crate, not a kernel crate (the counterpart of `hyper-posix`),
//! so it cannot forbid unsafe code: it is the only guest-side crate with
//! unsafe code; each block says why
//! it is sound. Everything that needs the bare machine is compiled only for
//! `target_os = "none"`; on a host the crate is empty apart from
//! [`main!`], so workspace builds and lints pass.
//!
//! Platform state lives in statics (the allocator must be one, and there is
//! exactly one machine); kernel state stays in the kernels' values.

#![no_std]
#![cfg_attr(target_os = "none", allow(clippy::missing_safety_doc))]

extern crate alloc;

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
mod metal;

#[cfg(all(target_arch = "x86_64", target_os = "none"))]
pub use metal::{
    boot_mark, boot_trace, hypercall, null_write, platform, raw_hypercall, raw_hypercall_block,
    UkHyper,
};

pub use uk_abi::BootStage;

/// Declares the application's entry: `hyper_uk::main!(app)` with
/// `fn app(platform: Arc<dyn hyper::Hyper>) -> i32`. The returned value is
/// the guest's exit code.
#[macro_export]
macro_rules! main {
    ($f:path) => {
        #[cfg(target_os = "none")]
        #[no_mangle]
        pub fn __uk_main(platform: ::alloc::sync::Arc<dyn ::hyper::Hyper>) -> i32 {
            $f(platform)
        }
    };
}
