//! The network stack of rump kernels: BSD sockets over smoltcp.
//!
//! [`NetComponent`] adds the stack to a kernel at the `Net` stage: it
//! installs a [`Stack`] as the kernel's `"net"` extension, brings up `lo0`
//! with `127.0.0.1/8`, and adds the `net.*` parameters to the sysctl tree
//! (`net.inet.ip.forwarding` among them). The system-call layer reaches
//! the stack through [`stack_of`], the [`socket`] functions and the
//! configuration methods of [`Stack`] (`if_create`, `route_add`, ...).
//!
//! Interfaces (see [`iface`]): `loN` loopback; `busN`, an Ethernet bus
//! between kernels of one process (see [`bus`]); `shmifN`, an Ethernet bus
//! in a shared host file that kernels in any number of processes attach to
//! (see [`shmif`] for the file format and locking); `virtN`, a host tap
//! device (see [`virtif`]); `pktN`, whose wire is an API that test tools
//! inject bare IP packets into and read the stack's packets from (see
//! [`pktif`] and [`Stack::packet_port`]). The stack routes and forwards IPv4 and IPv6 between
//! them and can capture any of them to a pcap file.
//!
//! smoltcp is the TCP engine; IPv4, ARP, ICMP, UDP and forwarding are
//! ours (see `ip.rs`, `ip6.rs`, `udp.rs`), so that routing, ICMP errors
//! and per-datagram decisions follow BSD. IPv4 and IPv6 both run over
//! every interface; `lo0` also has `::1`, and Ethernet interfaces have
//! their link-local IPv6 address from the start.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod addr;
mod arp;
pub mod bus;
pub mod cmsg;
mod config;
mod frag;
mod hash;
pub mod iface;
mod ip;
mod ip6;
pub mod pcap;
mod ping;
pub mod pktif;
mod pool;
mod pump;
mod route;
pub mod shmif;
pub mod socket;
mod sockets;
mod stack;
mod tcp;
mod timewait;
mod udp;
pub mod virtif;

use alloc::sync::Arc;

use kern::sysctl::SysctlValue;
use kern::{Component, Errno, Kernel, Stage};

pub use addr::{ArpInfo, IfInfo, IfStats, NetStats, RouteInfo, RouteSpec, SockAddr, SockInfo};
pub use bus::BusRegistry;
pub use cmsg::Cmsg;
pub use pktif::PacketPort;
pub use socket::{socket, socket_of, RecvInfo, SockOpt, Socket};
pub use stack::Stack;

/// The kernel extension name under which the stack is installed.
pub const EXTENSION: &str = "net";

/// `net.inet.ip.forwarding`: forward packets between interfaces (0 or 1).
pub const SYSCTL_FORWARDING: &str = "net.inet.ip.forwarding";

/// `net.inet6.ip6.forwarding`: forward IPv6 packets between interfaces.
pub const SYSCTL_FORWARDING6: &str = "net.inet6.ip6.forwarding";

/// The sysctl nodes the stack adds: name, default, writable range.
const PARAMS: &[(&str, i64, (i64, i64))] = &[
    (SYSCTL_FORWARDING, 0, (0, 1)),
    ("net.inet.ip.ttl", 64, (1, 255)),
    ("net.inet.ip.portrange.first", 49152, (1024, 65535)),
    ("net.inet.ip.portrange.last", 65535, (1024, 65535)),
    ("net.inet.tcp.sendspace", 1 << 20, (4096, 16 << 20)),
    ("net.inet.tcp.recvspace", 1 << 20, (4096, 16 << 20)),
    ("net.inet.tcp.connect_timeout_ms", 75_000, (1, 3_600_000)),
    ("net.inet.tcp.timeout_ms", 300_000, (1, 86_400_000)),
    ("net.inet.tcp.keepidle_ms", 7_200_000, (1, 86_400_000)),
    ("net.inet.tcp.keepintvl_ms", 75_000, (1, 86_400_000)),
    ("net.inet.tcp.keepcnt", 9, (1, 127)),
    ("net.inet.tcp.time_wait_ms", 60_000, (0, 600_000)),
    (SYSCTL_FORWARDING6, 0, (0, 1)),
    (SYSCTL_SPIN_MAX, SPIN_MAX_DEFAULT, (0, 10_000_000)),
    // The old name of `net.socket.spin_max_ns` (it was never TCP's alone);
    // a value set here still counts.
    (SYSCTL_SPIN_OLD, SPIN_MAX_DEFAULT, (0, 10_000_000)),
];

/// `net.socket.spin_max_ns`: the longest a blocked socket call (of any
/// protocol) spins before it sleeps. Each socket learns its own spin
/// length below this from how long its waits lasted; 0 never spins.
pub const SYSCTL_SPIN_MAX: &str = "net.socket.spin_max_ns";

/// The former name of [`SYSCTL_SPIN_MAX`], still accepted.
const SYSCTL_SPIN_OLD: &str = "net.inet.tcp.spin_ns";

const SPIN_MAX_DEFAULT: i64 = 200_000;

/// The network component. Give every kernel that should share in-process
/// buses the same [`BusRegistry`].
#[derive(Clone, Default)]
pub struct NetComponent {
    registry: Option<Arc<BusRegistry>>,
}

impl NetComponent {
    /// A network component whose `busN` interfaces attach to buses named
    /// in `registry`.
    pub fn new(registry: Arc<BusRegistry>) -> Self {
        NetComponent {
            registry: Some(registry),
        }
    }
}

impl Component for NetComponent {
    fn name(&self) -> &'static str {
        "net"
    }

    fn stage(&self) -> Stage {
        Stage::Net
    }

    fn init(&self, k: &Kernel) -> Result<(), Errno> {
        for &(name, value, range) in PARAMS {
            k.sysctl().add_int(name, value, true, Some(range));
        }
        let stack = Stack::new(k, read_params(k), self.registry.clone());
        k.set_extension(EXTENSION, stack.clone());
        stack.if_create("lo0")?;
        stack.if_add_addr("lo0", core::net::Ipv4Addr::new(127, 0, 0, 1).into(), 8)?;
        stack.if_set_up("lo0", true)?;
        Ok(())
    }

    fn halt(&self, k: &Kernel) {
        if let Some(s) = k
            .extension(EXTENSION)
            .and_then(|e| e.downcast::<Stack>().ok())
        {
            s.halt();
        }
    }
}

/// The network stack of kernel `k`; `EAFNOSUPPORT` if it was booted
/// without [`NetComponent`].
pub fn stack_of(k: &Kernel) -> Result<Arc<Stack>, Errno> {
    k.check()?;
    k.extension(EXTENSION)
        .and_then(|e| e.downcast::<Stack>().ok())
        .ok_or(Errno::EAFNOSUPPORT)
}

/// The stack's parameters, from the sysctl tree.
pub(crate) fn read_params(k: &Kernel) -> stack::Params {
    let get = |name: &str, dflt: i64| match k.sysctl().get(name) {
        Ok(SysctlValue::Int(v)) => v,
        _ => dflt,
    };
    let first = get("net.inet.ip.portrange.first", 49152) as u16;
    let last = (get("net.inet.ip.portrange.last", 65535) as u16).max(first);
    stack::Params {
        ttl: get("net.inet.ip.ttl", 64) as u8,
        sendspace: get("net.inet.tcp.sendspace", 1 << 20) as usize,
        recvspace: get("net.inet.tcp.recvspace", 1 << 20) as usize,
        connect_timeout_ms: get("net.inet.tcp.connect_timeout_ms", 75_000) as u64,
        timeout_ms: get("net.inet.tcp.timeout_ms", 300_000) as u64,
        keepidle_ms: get("net.inet.tcp.keepidle_ms", 7_200_000) as u64,
        keepintvl_ms: get("net.inet.tcp.keepintvl_ms", 75_000) as u64,
        keepcnt: get("net.inet.tcp.keepcnt", 9) as u32,
        time_wait_ms: get("net.inet.tcp.time_wait_ms", 60_000) as u64,
        port_first: first,
        port_last: last,
        spin_ns: match get(SYSCTL_SPIN_OLD, SPIN_MAX_DEFAULT) {
            SPIN_MAX_DEFAULT => get(SYSCTL_SPIN_MAX, SPIN_MAX_DEFAULT),
            old => old,
        } as u64,
    }
}
