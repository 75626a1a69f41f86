//! Helpers shared by the example unikernel applications, which run the same
//! way on both platforms: as a guest on `hyper-uk` (built for
//! `x86_64-unknown-none`, run with `rump unikernel run`) or as an ordinary
//! process on `hyper-posix` (built for the host; parameters then come from
//! the environment).
//!
//! [`app!`] declares an application's entry for either; the helpers boot a
//! kernel with the components an application needs and wrap the few system
//! calls the examples use.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hyper::{Errno, Hyper};
use kern::consts::o;
use kern::{Component, Cred, Kernel, KernelConfig, Proc};

pub mod http;
pub mod netapp;

pub use hyper;
pub use kern;
pub use sys;

/// Declares the entry `fn app(Arc<dyn Hyper>) -> i32` for the guest (via
/// `hyper_uk::main!`) and for a host process (on `hyper-posix`).
#[macro_export]
macro_rules! app {
    ($f:path) => {
        #[cfg(target_os = "none")]
        hyper_uk::main!($f);
        #[cfg(not(target_os = "none"))]
        fn main() {
            std::process::exit($f(hyper_posix::PosixHyper::shared()))
        }
    };
}

/// The console, as a `fmt::Write`.
pub struct Console(pub Arc<dyn Hyper>);

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.console_write(s.as_bytes());
        Ok(())
    }
}

/// Boot phases, reported to the runner on the guest (no-ops in a process).
pub fn mark_kernel_up() {
    #[cfg(target_os = "none")]
    hyper_uk::boot_mark(hyper_uk::BootStage::KernelUp);
}

/// See [`mark_kernel_up`].
pub fn mark_app_main() {
    #[cfg(target_os = "none")]
    hyper_uk::boot_mark(hyper_uk::BootStage::AppMain);
}

/// Boots a kernel with a tmpfs root, plus the block layer and ext2 when
/// `ext2` is set, and returns it with a root process.
pub fn boot(h: Arc<dyn Hyper>, ext2: bool) -> Result<(Kernel, Arc<Proc>), Errno> {
    boot_parts(h, ext2, false)
}

/// As [`boot`], with the network stack too when `net` is set.
pub fn boot_parts(
    h: Arc<dyn Hyper>,
    ext2: bool,
    with_net: bool,
) -> Result<(Kernel, Arc<Proc>), Errno> {
    let mut components: Vec<Arc<dyn Component>> = vec![Arc::new(fs_tmpfs::TmpfsComponent)];
    if ext2 {
        components.push(Arc::new(dev_blk::BlkComponent));
        components.push(Arc::new(fs_ext2::Ext2Component));
    }
    let mut params = Vec::new();
    if with_net {
        components.push(Arc::new(net::NetComponent::default()));
        // Socket buffers are allocated whole when a connection opens: the
        // kernel's 1 MiB default each way is too much for a guest of a few
        // MiB serving dozens of connections. The same size in a process,
        // so both platforms behave alike.
        for (name, param) in [
            ("net.inet.tcp.sendspace", "tcp_sndbuf"),
            ("net.inet.tcp.recvspace", "tcp_rcvbuf"),
        ] {
            let v = h.param(param).unwrap_or_else(|| String::from("262144"));
            params.push((String::from(name), v));
        }
    }
    let k = Kernel::boot(
        h,
        KernelConfig {
            components,
            params,
            root_fs: Some("tmpfs".into()),
        },
    )?;
    let p = k.new_process(Cred::root())?;
    Ok((k, p))
}

/// Writes a whole file, creating or truncating it.
pub fn write_file(p: &Proc, path: &str, data: &[u8]) -> Result<(), Errno> {
    let fd = sys::open(p, path.as_bytes(), o::WRONLY | o::CREAT | o::TRUNC, 0o644)?;
    let mut done = 0;
    while done < data.len() {
        done += sys::write(p, fd, &data[done..])?;
    }
    sys::close(p, fd)
}

/// Reads a whole file.
pub fn read_file(p: &Proc, path: &str) -> Result<Vec<u8>, Errno> {
    let fd = sys::open(p, path.as_bytes(), o::RDONLY, 0)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match sys::read(p, fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                let _ = sys::close(p, fd);
                return Err(e);
            }
        }
    }
    sys::close(p, fd)?;
    Ok(out)
}

/// The names in a directory (without `.` and `..`), sorted.
pub fn list_dir(p: &Proc, path: &str) -> Result<Vec<String>, Errno> {
    let fd = sys::open(p, path.as_bytes(), o::RDONLY | o::DIRECTORY, 0)?;
    let mut names = Vec::new();
    let mut buf = vec![0u8; 8192];
    loop {
        let n = match sys::getdents64(p, fd, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = sys::close(p, fd);
                return Err(e);
            }
        };
        if n == 0 {
            break;
        }
        let mut at = 0;
        while at + 19 <= n {
            let reclen = u16::from_ne_bytes([buf[at + 16], buf[at + 17]]) as usize;
            if reclen < 20 || at + reclen > n {
                break;
            }
            let name = &buf[at + 19..at + reclen];
            let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
            if name != b"." && name != b".." {
                names.push(String::from_utf8_lossy(name).into_owned());
            }
            at += reclen;
        }
    }
    sys::close(p, fd)?;
    names.sort();
    Ok(names)
}
