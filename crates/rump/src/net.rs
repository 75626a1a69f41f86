//! Networking inside rump kernels: boot kernels with the network stack
//! ([`crate::KernelBuilder::net`]), wire them together, and use std-like
//! sockets ([`TcpListener`], [`TcpStream`], [`UdpSocket`]) that go through
//! the system-call layer. Errors are `std::io::Error`s carrying the
//! kernel's errno.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use rump::net::{TcpListener, TcpStream};
//!
//! // Two kernels on one in-process bus.
//! let a = rump::Kernel::builder().net().boot()?;
//! let b = rump::Kernel::builder().net().boot()?;
//! let (pa, pb) = (a.process()?, b.process()?);
//! let bus = rump::net::unique_bus_name("doc");
//! rump::net::ifup(&pa, "bus0", &bus, Ipv4Addr::new(192, 0, 2, 1), 24)?;
//! rump::net::ifup(&pb, "bus0", &bus, Ipv4Addr::new(192, 0, 2, 2), 24)?;
//! let l = TcpListener::bind(&pb, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80))?;
//! let mut c = TcpStream::connect(&pa, SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 2), 80))?;
//! c.write_all(b"hello")?;
//! let (mut s, _) = l.accept()?;
//! let mut buf = [0u8; 5];
//! s.read_exact(&mut buf)?;
//! assert_eq!(&buf, b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub use ::net::pktif::{PKT_MAX, PKT_QUEUE_LEN};
pub use ::net::{
    ArpInfo, BusRegistry, Cmsg, IfInfo, IfStats, NetComponent, NetStats, RecvInfo, RouteInfo,
    RouteSpec, SockAddr, SockOpt, Stack,
};

use kern::consts::{af, shut, sock};

use crate::{io_error, Component, Errno, Process};

/// The bus registry of this process: every kernel booted with
/// [`crate::KernelBuilder::net`] finds `busN` links here by name.
pub fn registry() -> Arc<BusRegistry> {
    static REGISTRY: OnceLock<Arc<BusRegistry>> = OnceLock::new();
    REGISTRY.get_or_init(BusRegistry::new).clone()
}

/// The network component, sharing [`registry`].
pub fn component() -> Arc<dyn Component> {
    Arc::new(NetComponent::new(registry()))
}

/// A bus name no other caller in this process gets (tests running in
/// parallel each wire their own network).
pub fn unique_bus_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The network stack of a kernel (for what is not a system call: frame
/// injection for fuzzing, socket counts); `EAFNOSUPPORT` without one.
#[cfg(feature = "testing")]
pub fn stack(k: &crate::Kernel) -> Result<Arc<Stack>, Errno> {
    ::net::stack_of(k.raw())
}

/// `ifconfig NAME create linkstr LINK inet ADDR/PREFIX up` in one call
/// (`inet6` when `addr` is an IPv6 address).
pub fn ifup(
    p: &Process,
    name: &str,
    link: &str,
    addr: impl Into<IpAddr>,
    prefix: u8,
) -> Result<(), Errno> {
    sys::if_create(p, name)?;
    sys::if_set_link(p, name, link)?;
    sys::if_add_addr(p, name, addr.into(), prefix)?;
    sys::if_set_up(p, name, true)
}

/// Where a kernel can be found: a [`crate::Kernel`] or one of its
/// [`Process`]es (sealed).
pub trait InKernel: sealed::Sealed {}

mod sealed {
    pub trait Sealed {
        fn kernel_ref(&self) -> &kern::Kernel;
    }
}

impl sealed::Sealed for crate::Kernel {
    fn kernel_ref(&self) -> &kern::Kernel {
        &self.k
    }
}

impl sealed::Sealed for Process {
    fn kernel_ref(&self) -> &kern::Kernel {
        self.kernel()
    }
}

impl InKernel for crate::Kernel {}
impl InKernel for Process {}

/// The port of a `pktN` interface: the API end of its wire. Inject bare
/// IPv4 or IPv6 packets as if they arrived on the interface, and read the
/// packets the stack sends out of it, as a test tool does through a tun
/// device, without the device or root. Clones share one queue.
///
/// ```
/// use std::net::Ipv4Addr;
/// use std::time::Duration;
///
/// let k = rump::Kernel::builder().net().boot()?;
/// let p = k.process()?;
/// let port = rump::net::pkt_ifup(&p, "pkt0", Ipv4Addr::new(10, 0, 0, 1), 24)?;
/// // Nothing has been sent yet.
/// let mut buf = [0u8; 1500];
/// let e = port.recv(&mut buf, Some(Duration::ZERO)).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct PacketPort {
    port: Arc<::net::PacketPort>,
}

impl PacketPort {
    /// The interface's name.
    pub fn ifname(&self) -> &str {
        self.port.ifname()
    }

    /// Hands `pkt` (a bare IP packet, version by its first nibble) to the
    /// stack as if it arrived on the interface; it is processed before
    /// this returns, so its answers are normally ready for
    /// [`PacketPort::recv`] (if another thread is sending through the
    /// stack at that moment, that thread hands them over instead).
    /// `EINVAL` for an empty packet or one over 65535 bytes, `ENXIO`
    /// once the interface is destroyed, `ESHUTDOWN` after halt. A
    /// malformed packet is dropped and counted by the stack, not refused.
    pub fn inject(&self, pkt: &[u8]) -> io::Result<()> {
        io(self.port.inject(pkt))
    }

    /// The oldest packet the stack sent out of the interface, into `buf`;
    /// returns the packet's whole length, which is more than `buf.len()`
    /// when the packet did not fit (the rest is lost). `timeout`: `None`
    /// waits as long as it takes, `Some(Duration::ZERO)` only looks.
    /// `WouldBlock` (`EAGAIN`) when it passes, `ENXIO` when the interface
    /// is destroyed, `ESHUTDOWN` when the kernel halts.
    pub fn recv(&self, buf: &mut [u8], timeout: Option<Duration>) -> io::Result<usize> {
        io(self.port.recv(buf, timeout))
    }

    /// The next packet as a `Vec` (see [`PacketPort::recv`]).
    pub fn recv_packet(&self, timeout: Option<Duration>) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; ::net::pktif::PKT_MAX];
        let n = self.recv(&mut buf, timeout)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Packets waiting to be read.
    pub fn pending(&self) -> usize {
        self.port.pending()
    }
}

/// The port of interface `ifname` (made with `if_create("pktN")`) of the
/// kernel `k` is in. `ENXIO` if there is no such interface, `ENODEV` if it
/// is not a `pkt` interface, `EAFNOSUPPORT` for a kernel without the
/// network stack. The port is the interface's wire, not a system call:
/// configure the interface through the system-call layer as any other.
pub fn packet_port(k: &impl InKernel, ifname: &str) -> io::Result<PacketPort> {
    let stack = io(::net::stack_of(sealed::Sealed::kernel_ref(k)))?;
    Ok(PacketPort {
        port: io(stack.packet_port(ifname))?,
    })
}

/// `ifconfig NAME create inet ADDR/PREFIX up` for a `pktN` interface
/// (`inet6` for an IPv6 address), returning its port.
pub fn pkt_ifup(
    p: &Process,
    name: &str,
    addr: impl Into<IpAddr>,
    prefix: u8,
) -> io::Result<PacketPort> {
    let name = io(sys::if_create(p, name))?;
    io(sys::if_add_addr(p, &name, addr.into(), prefix))?;
    io(sys::if_set_up(p, &name, true))?;
    packet_port(p, &name)
}

/// A typed socket address from std's (`SocketAddrV4`, `SocketAddrV6` or
/// `SocketAddr`).
pub fn sockaddr(a: impl Into<SocketAddr>) -> SockAddr {
    match a.into() {
        SocketAddr::V4(a) => SockAddr::inet(*a.ip(), a.port()),
        SocketAddr::V6(a) => SockAddr::Inet6 {
            addr: a.ip().octets(),
            port: a.port(),
            flowinfo: a.flowinfo(),
            scope_id: a.scope_id(),
        },
    }
}

/// std's socket address from a typed one (`EAFNOSUPPORT` for others).
pub fn std_addr(a: SockAddr) -> io::Result<SocketAddr> {
    match a {
        SockAddr::Inet { addr, port } => Ok(SocketAddr::new(IpAddr::from(addr), port)),
        SockAddr::Inet6 {
            addr,
            port,
            flowinfo,
            scope_id,
        } => Ok(SocketAddr::V6(SocketAddrV6::new(
            addr.into(),
            port,
            flowinfo,
            scope_id,
        ))),
        SockAddr::Unspec => Err(io_error(Errno::EAFNOSUPPORT)),
    }
}

/// The socket family for `a`.
fn family(a: &SocketAddr) -> i32 {
    if a.is_ipv4() {
        af::INET
    } else {
        af::INET6
    }
}

fn io<T>(r: Result<T, Errno>) -> io::Result<T> {
    r.map_err(io_error)
}

/// A descriptor closed on drop.
struct Fd {
    proc: Process,
    fd: i32,
}

impl Drop for Fd {
    fn drop(&mut self) {
        let _ = sys::close(&self.proc, self.fd);
    }
}

/// A listening TCP socket.
pub struct TcpListener {
    fd: Fd,
}

impl TcpListener {
    /// Binds (with `SO_REUSEADDR`) and listens with a backlog of 128. An
    /// IPv6 listener on `[::]` takes IPv4 connections too, as on Linux.
    pub fn bind(p: &Process, addr: impl Into<SocketAddr>) -> io::Result<TcpListener> {
        Self::bind_with_backlog(p, addr, 128)
    }

    /// Binds and listens with `backlog`.
    pub fn bind_with_backlog(
        p: &Process,
        addr: impl Into<SocketAddr>,
        backlog: i32,
    ) -> io::Result<TcpListener> {
        let addr = addr.into();
        let fd = Fd {
            proc: p.clone(),
            fd: io(sys::socket(
                p,
                family(&addr),
                sock::STREAM | sock::CLOEXEC,
                0,
            ))?,
        };
        io(sys::setsockopt(p, fd.fd, SockOpt::ReuseAddr(true)))?;
        io(sys::bind(p, fd.fd, sockaddr(addr)))?;
        io(sys::listen(p, fd.fd, backlog))?;
        Ok(TcpListener { fd })
    }

    /// Waits for a connection.
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (fd, peer) = io(sys::accept4(&self.fd.proc, self.fd.fd, sock::CLOEXEC))?;
        let s = TcpStream {
            fd: Fd {
                proc: self.fd.proc.clone(),
                fd,
            },
        };
        Ok((s, std_addr(peer)?))
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        std_addr(io(sys::getsockname(&self.fd.proc, self.fd.fd))?)
    }

    /// The descriptor, for raw calls.
    pub fn fd(&self) -> i32 {
        self.fd.fd
    }
}

/// A TCP connection. `Read` and `Write` are implemented for `&TcpStream`
/// too, so one thread may read while another writes.
pub struct TcpStream {
    fd: Fd,
}

impl TcpStream {
    /// Connects (blocking).
    pub fn connect(p: &Process, addr: impl Into<SocketAddr>) -> io::Result<TcpStream> {
        let addr = addr.into();
        let fd = Fd {
            proc: p.clone(),
            fd: io(sys::socket(
                p,
                family(&addr),
                sock::STREAM | sock::CLOEXEC,
                0,
            ))?,
        };
        io(sys::connect(p, fd.fd, sockaddr(addr)))?;
        Ok(TcpStream { fd })
    }

    /// The peer.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        std_addr(io(sys::getpeername(&self.fd.proc, self.fd.fd))?)
    }

    /// The local end.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        std_addr(io(sys::getsockname(&self.fd.proc, self.fd.fd))?)
    }

    /// Shuts down writing (sends FIN), reading, or both.
    pub fn shutdown(&self, how: std::net::Shutdown) -> io::Result<()> {
        let how = match how {
            std::net::Shutdown::Read => shut::RD,
            std::net::Shutdown::Write => shut::WR,
            std::net::Shutdown::Both => shut::RDWR,
        };
        io(sys::shutdown(&self.fd.proc, self.fd.fd, how))
    }

    /// `TCP_NODELAY`.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        io(sys::setsockopt(
            &self.fd.proc,
            self.fd.fd,
            SockOpt::NoDelay(on),
        ))
    }

    /// `SO_RCVTIMEO` (`None`: wait forever). A read that times out fails
    /// with `WouldBlock`, as on Linux.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        let ns = t.map(|d| d.as_nanos().min(u64::MAX as u128) as u64);
        io(sys::setsockopt(
            &self.fd.proc,
            self.fd.fd,
            SockOpt::RcvTimeo(ns),
        ))
    }

    /// The descriptor, for raw calls.
    pub fn fd(&self) -> i32 {
        self.fd.fd
    }

    /// The process the descriptor belongs to.
    pub fn process(&self) -> &Process {
        &self.fd.proc
    }
}

impl Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        io(sys::recv(&self.fd.proc, self.fd.fd, buf, 0))
    }
}

impl Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        io(sys::send(&self.fd.proc, self.fd.fd, buf, 0))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A UDP socket.
pub struct UdpSocket {
    fd: Fd,
}

impl UdpSocket {
    /// Binds to `addr` (port 0: an ephemeral port).
    pub fn bind(p: &Process, addr: impl Into<SocketAddr>) -> io::Result<UdpSocket> {
        let addr = addr.into();
        let fd = Fd {
            proc: p.clone(),
            fd: io(sys::socket(
                p,
                family(&addr),
                sock::DGRAM | sock::CLOEXEC,
                0,
            ))?,
        };
        io(sys::bind(p, fd.fd, sockaddr(addr)))?;
        Ok(UdpSocket { fd })
    }

    /// Sends one datagram to `to`.
    pub fn send_to(&self, data: &[u8], to: impl Into<SocketAddr>) -> io::Result<usize> {
        io(sys::sendto(
            &self.fd.proc,
            self.fd.fd,
            data,
            0,
            Some(sockaddr(to)),
        ))
    }

    /// Receives one datagram.
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let info = io(sys::recvfrom(&self.fd.proc, self.fd.fd, buf, 0))?;
        let from = info.from.ok_or_else(|| io_error(Errno::EINVAL))?;
        Ok((info.len, std_addr(from)?))
    }

    /// Sets the peer.
    pub fn connect(&self, to: impl Into<SocketAddr>) -> io::Result<()> {
        io(sys::connect(&self.fd.proc, self.fd.fd, sockaddr(to)))
    }

    /// Sends to the peer.
    pub fn send(&self, data: &[u8]) -> io::Result<usize> {
        io(sys::send(&self.fd.proc, self.fd.fd, data, 0))
    }

    /// Receives from the peer.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        io(sys::recv(&self.fd.proc, self.fd.fd, buf, 0))
    }

    /// `SO_RCVTIMEO`.
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        let ns = t.map(|d| d.as_nanos().min(u64::MAX as u128) as u64);
        io(sys::setsockopt(
            &self.fd.proc,
            self.fd.fd,
            SockOpt::RcvTimeo(ns),
        ))
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        std_addr(io(sys::getsockname(&self.fd.proc, self.fd.fd))?)
    }

    /// The descriptor.
    pub fn fd(&self) -> i32 {
        self.fd.fd
    }
}
