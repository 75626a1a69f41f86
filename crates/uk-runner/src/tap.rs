//! Tap devices: an existing interface opened through `/dev/net/tun`
//! (`IFF_TAP | IFF_NO_PI`, non-blocking), one Ethernet frame per read and
//! write (tuntap(4) in the Linux kernel's Documentation/networking/tuntap).
//! `netns:NAME:TAP` names a tap inside the network namespace `NAME` (as
//! made by `ip netns add`), the same spelling as the process platform's.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use uk_abi::Error as AbiError;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TAP: libc::c_short = 0x0002;
const IFF_NO_PI: libc::c_short = 0x1000;

pub struct Tap {
    file: File,
}

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl Tap {
    /// Opens `spec`: `tap0`, or `netns:NAME:tap0`.
    pub fn open(spec: &str) -> io::Result<Tap> {
        let Some(rest) = spec.strip_prefix("netns:") else {
            return Tap::attach(spec);
        };
        let Some((ns, name)) = rest.split_once(':') else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "expected netns:NAMESPACE:TAP",
            ));
        };
        if ns.is_empty() || ns.contains('/') || ns.starts_with('.') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad namespace name",
            ));
        }
        let (path, name) = (format!("/run/netns/{ns}"), name.to_string());
        // setns changes the calling thread's namespace only: a short-lived
        // thread enters it and opens the device; the descriptor stays
        // bound to the tap in that namespace.
        std::thread::spawn(move || -> io::Result<Tap> {
            let nsf = File::open(&path)?;
            // SAFETY: setns on this thread with an open namespace file.
            if unsafe { libc::setns(nsf.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Tap::attach(&name)
        })
        .join()
        .map_err(|_| io::Error::other("the tap-opening thread panicked"))?
    }

    fn attach(name: &str) -> io::Result<Tap> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "bad interface name",
            ));
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: IFF_TAP | IFF_NO_PI,
            _pad: [0; 22],
        };
        req.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads and writes one `struct ifreq`, which
        // `IfReq` lays out (name, flags, padding to 40 bytes).
        if unsafe { libc::ioctl(file.as_raw_fd(), TUNSETIFF, &mut req) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Tap { file })
    }

    pub fn fd(&self) -> libc::c_int {
        self.file.as_raw_fd()
    }

    /// Sends the frame at `p` (`len` bytes of guest memory).
    pub fn send(&self, p: *mut u8, len: usize) -> Result<u64, AbiError> {
        // SAFETY: the caller passes `len` readable bytes at `p`.
        let n = unsafe { libc::write(self.fd(), p.cast(), len) };
        if n < 0 {
            return match io::Error::last_os_error().raw_os_error() {
                // A full queue drops the frame, as a wire would.
                Some(libc::EAGAIN) | Some(libc::ENOBUFS) => Ok(len as u64),
                Some(libc::EINVAL) => Err(AbiError::Invalid),
                _ => Err(AbiError::Io),
            };
        }
        Ok(n as u64)
    }

    /// Receives one frame into `len` bytes at `p`; `Again` if none waits.
    pub fn recv(&self, p: *mut u8, len: usize) -> Result<u64, AbiError> {
        // SAFETY: the caller passes `len` writable bytes at `p`.
        let n = unsafe { libc::read(self.fd(), p.cast(), len) };
        if n < 0 {
            return match io::Error::last_os_error().raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Err(AbiError::Again),
                _ => Err(AbiError::Io),
            };
        }
        Ok(n as u64)
    }
}
