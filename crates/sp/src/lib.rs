//! Remote rump kernels: one kernel in a server process, system calls from
//! other processes (NetBSD's rump_sp(7) idea, our own protocol).
//!
//! - [`wire`]: the frame header, the handshake and the payload codec
//!   (postcard of `sys::Request`/`sys::Response`); described for
//!   implementers in `docs/protocol.md`.
//! - [`server`]: [`Server`] accepts connections on a unix or TCP socket;
//!   each connection is one process of the kernel, served by a small set
//!   of threads so many calls can be in flight.
//! - [`client`]: [`Client`] implements `sys::Syscalls` over one
//!   connection that every thread of the client process shares.
//!
//! Neighbours: below are `sys` (every call goes through
//! `sys::dispatch`) and `kern` (processes, credentials, the host-access
//! policy); above is the `rump` facade (`rump::remote`) and the `rump
//! server` command.

#![forbid(unsafe_code)]

pub mod client;
pub mod server;
pub mod wire;

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

pub use client::{Client, ConnectOptions};
pub use server::{Server, ServerConfig, ServerHandle};

/// Where a server listens or a client connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Url {
    /// `unix:///absolute/path` (or `unix://relative`).
    Unix(PathBuf),
    /// `tcp://host:port`.
    Tcp(String),
}

impl Url {
    /// Parses `unix://PATH` or `tcp://HOST:PORT`.
    pub fn parse(s: &str) -> Result<Url, String> {
        if let Some(p) = s.strip_prefix("unix://") {
            if p.is_empty() {
                return Err(format!("{s}: empty socket path"));
            }
            Ok(Url::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("tcp://") {
            let a = a.trim_end_matches('/');
            match a.rsplit_once(':') {
                Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok() => {
                    Ok(Url::Tcp(a.to_string()))
                }
                _ => Err(format!("{s}: expected tcp://HOST:PORT")),
            }
        } else {
            Err(format!(
                "{s}: unknown server URL (expected unix:///path or tcp://host:port)"
            ))
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Url::Unix(p) => write!(f, "unix://{}", p.display()),
            Url::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

/// A connected byte stream of either transport.
#[derive(Debug)]
pub(crate) enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    pub(crate) fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(t),
            Stream::Tcp(s) => s.set_read_timeout(t),
        }
    }
    pub(crate) fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(t),
            Stream::Tcp(s) => s.set_write_timeout(t),
        }
    }
    pub(crate) fn shutdown(&self) {
        let _ = match self {
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Both),
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Both),
        };
    }
    pub(crate) fn write_frame(&self, header: &[u8], payload: &[u8]) -> io::Result<()> {
        match self {
            Stream::Unix(s) => write_all2(&mut &*s, header, payload),
            Stream::Tcp(s) => write_all2(&mut &*s, header, payload),
        }
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => (&*s).read(buf),
            Stream::Tcp(s) => (&*s).read(buf),
        }
    }
}

/// Writes `a` then `b` with as few system calls as the socket allows
/// (one `writev` for a small frame).
fn write_all2(w: &mut impl Write, a: &[u8], b: &[u8]) -> io::Result<()> {
    let (mut a, mut b) = (a, b);
    while !a.is_empty() || !b.is_empty() {
        let n = w.write_vectored(&[io::IoSlice::new(a), io::IoSlice::new(b)])?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let na = n.min(a.len());
        a = &a[na..];
        b = &b[(n - na).min(b.len())..];
    }
    Ok(())
}
