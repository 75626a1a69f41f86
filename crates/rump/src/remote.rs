//! Remote kernels: talk to a kernel in another process (`rump server`),
//! or serve this process's kernel to others.
//!
//! ```no_run
//! use rump::sys::{Request, Response, Syscalls};
//!
//! let k = rump::remote::connect("unix:///tmp/rump.sock")?;   // or rump::remote::from_env()
//! assert!(matches!(k.call(Request::Getpid)?, Response::Int(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A [`Client`] implements [`sys::Syscalls`], like a local
//! [`crate::Process`], so code written against `&dyn Syscalls` works with
//! either; [`kernel`] gives tools "a kernel to talk to" from a
//! `--server URL` option or `$RUMP_SERVER`. One client is shared by all
//! threads of a process (each call has its own request id), and is one
//! process in the remote kernel (its own descriptors, cwd, credentials).
//! The protocol is described in `docs/protocol.md`.

use std::io;

pub use sp::client::{ConnectError, ENV_ATTACH, ENV_SERVER, ENV_TOKEN_FILE};
pub use sp::server::{HostAllowList, NOBODY};
pub use sp::wire;
pub use sp::wire::{Attach, COOKIE_LEN, PROTO_VERSION};
pub use sp::{Client, ConnectOptions, Server, ServerConfig, ServerHandle, Url};

use crate::Kernel;

/// Connects to `url` (`unix:///path` or `tcp://host:port`) as a new
/// process; a TCP token comes from `$RUMP_TOKEN_FILE`.
pub fn connect(url: &str) -> Result<Client, ConnectError> {
    Client::connect(url)
}

/// Connects to `$RUMP_SERVER` (re-attaching an exec'd image's process
/// when `$RUMP_RS_ATTACH` says so).
pub fn from_env() -> Result<Client, ConnectError> {
    Client::from_env()
}

/// A kernel to talk to for a tool: the server `server` names (a
/// `--server URL` option), else `$RUMP_SERVER`.
pub fn kernel(server: Option<&str>) -> Result<Box<dyn sys::Syscalls>, ConnectError> {
    Ok(Box::new(match server {
        Some(url) => connect(url)?,
        None => from_env()?,
    }))
}

/// Listens on `url` to serve `kernel` to remote clients; run the result
/// with [`Server::run`] (on a thread of its own if the caller goes on).
pub fn serve(kernel: &Kernel, url: &Url, config: ServerConfig) -> io::Result<Server> {
    Server::bind(kernel.k.clone(), url, config)
}

/// Installs a host-access policy in `kernel`: which host files it may open
/// (etfs images, pcap files, shmif bus files, tap devices).
pub fn set_host_policy(kernel: &Kernel, policy: HostAllowList) {
    kern::hostpolicy::set(&kernel.k, Some(std::sync::Arc::new(policy)));
}
