//! `librumpclient`: the `rump_sys_*` calls of `librump`, served by a
//! remote kernel (`rump server`). A C program written against
//! `rump/rump_syscalls.h` links against either library unchanged; with
//! this one it calls `rumpclient_init()` where it would call `rump_init()`.
//!
//! One connection is shared by every thread of the process (calls carry
//! their own request ids), and is one process in the remote kernel.

use std::ffi::c_int;
use std::sync::Arc;

use capi_core::ffi::{fail, set_errno};
use capi_core::{ctx, Target};
use rump::remote::ConnectError;
use rump::Errno;

pub use capi_core;

/// Connects to the kernel `$RUMP_SERVER` names (`unix:///path`,
/// `tcp://host:port`); the process's calls go there from then on. Returns
/// 0, or -1 with errno (`ENOENT` when `$RUMP_SERVER` is unset, the
/// connection's error otherwise). A second call replaces the connection.
#[no_mangle]
pub extern "C" fn rumpclient_init() -> c_int {
    match rump::remote::from_env() {
        Ok(client) => {
            ctx::set_default(Some(Target::Remote(Arc::new(client))));
            0
        }
        Err(e) => {
            eprintln!("rumpclient_init: {e}");
            fail(connect_errno(&e))
        }
    }
}

fn connect_errno(e: &ConnectError) -> Errno {
    e.errno()
}

/// Drops the connection (the remote process exits, its descriptors
/// close); later calls fail with `ENXIO`. Returns 0.
#[no_mangle]
pub extern "C" fn rumpclient_fini() -> c_int {
    ctx::set_default(None);
    set_errno(0);
    0
}
