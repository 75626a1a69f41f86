//! The packet interface from C: a `pktN` interface whose wire is this API.
//! Create and address it with the netconfig calls
//! (`rump_pub_netconfig_ifcreate("pkt0")`, `_ipv4_ifaddr_cidr`, `_ifup`),
//! open a port on it, inject bare IPv4/IPv6 packets and read the packets
//! the stack sends, with a timeout. For scripted protocol tests (scapy)
//! without tun devices or root.

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void};
use std::sync::Mutex;
use std::time::Duration;

use capi_core::ffi::{cstr_utf8, fail, ret_size, ret_unit, slice, slice_mut};
use rump::net::PacketPort;
use rump::Errno;

use crate::kernels::{thread_kernel, with_registry};

/// An opaque port handle (`struct rump_pktif *`), never dereferenced.
#[allow(non_camel_case_types)]
pub struct rump_pktif {
    _opaque: [u8; 0],
}

static PORTS: Mutex<Option<HashMap<u64, PacketPort>>> = Mutex::new(None);

fn ports<R>(f: impl FnOnce(&mut HashMap<u64, PacketPort>) -> R) -> R {
    let mut g = PORTS.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

fn errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(Errno::EIO.raw()))
}

fn port(h: *mut rump_pktif) -> Result<PacketPort, Errno> {
    ports(|p| p.get(&(h as usize as u64)).cloned()).ok_or(Errno::EINVAL)
}

/// Opens a port on packet interface `ifname` of the calling thread's
/// kernel. Returns NULL with errno: `ENXIO` (no such interface, or no
/// kernel), `ENODEV` (not a `pkt` interface).
#[no_mangle]
pub extern "C" fn rump_pub_pktif_open(ifname: *const c_char) -> *mut rump_pktif {
    let r = (|| -> Result<u64, Errno> {
        let name = cstr_utf8(ifname)?;
        let kid = thread_kernel();
        let main =
            with_registry(|r| r.kernels.get(&kid).map(|e| e.main.clone())).ok_or(Errno::ENXIO)?;
        let p = rump::net::packet_port(&main, name).map_err(errno)?;
        let id = with_registry(|r| {
            r.next += 1;
            r.next - 1
        });
        ports(|m| m.insert(id, p));
        Ok(id)
    })();
    match r {
        Ok(id) => id as usize as *mut rump_pktif,
        Err(e) => {
            capi_core::ffi::set_errno(e.raw());
            std::ptr::null_mut()
        }
    }
}

/// Injects one packet (bare IPv4 or IPv6) as if it had arrived on the
/// interface. Returns 0, or -1 with errno (`EINVAL`: empty or longer than
/// 65535 bytes, or a bad handle; `ENXIO`: the interface is gone). A
/// malformed packet is dropped and counted by the stack, not refused.
#[no_mangle]
pub extern "C" fn rump_pub_pktif_inject(
    h: *mut rump_pktif,
    pkt: *const c_void,
    len: usize,
) -> c_int {
    ret_unit((|| {
        let p = port(h)?;
        p.inject(slice(pkt as *const u8, len)?).map_err(errno)
    })())
}

/// The next packet the stack sent on the interface, into `buf`: its full
/// length (truncated to `len` when longer). Waits up to `timeout_ms` (0:
/// only checks; negative: forever); -1 with `EAGAIN` when none came.
#[no_mangle]
pub extern "C" fn rump_pub_pktif_recv(
    h: *mut rump_pktif,
    buf: *mut c_void,
    len: usize,
    timeout_ms: c_int,
) -> libc::ssize_t {
    ret_size((|| {
        let p = port(h)?;
        let out = slice_mut(buf as *mut u8, len)?;
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        p.recv(out, timeout).map_err(errno)
    })())
}

/// Packets waiting to be read, or -1 with errno for a bad handle.
#[no_mangle]
pub extern "C" fn rump_pub_pktif_pending(h: *mut rump_pktif) -> c_int {
    match port(h) {
        Ok(p) => p.pending().min(c_int::MAX as usize) as c_int,
        Err(e) => fail(e),
    }
}

/// Closes a port (the interface stays). `EINVAL` for a bad handle.
#[no_mangle]
pub extern "C" fn rump_pub_pktif_close(h: *mut rump_pktif) -> c_int {
    match ports(|p| p.remove(&(h as usize as u64))) {
        Some(_) => 0,
        None => fail(Errno::EINVAL),
    }
}
