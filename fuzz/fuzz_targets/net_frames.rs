//! Fuzz target: feed arbitrary bytes to a rump kernel's network stack as a
//! sequence of Ethernet frames arriving on an interface. Any panic or hang
//! is a bug; malformed frames must only be counted and dropped.
//!
//! Input: a byte stream cut into frames by 2-byte big-endian lengths. The
//! first byte chooses the interface (`bus0` or `lo0`), whether each frame
//! gets the interface's MAC address as its destination (so garbage reaches
//! the ARP, IPv4 and IPv6 parsers instead of the MAC filter), and whether
//! its ethertype is forced to IPv6 (so IPv6 extension headers, ICMPv6,
//! neighbour discovery and fragment reassembly see most of the input).
//! The kernel has IPv4 and IPv6 addresses, forwarding on in both, and
//! TCP and UDP sockets in both families.
//!
//! Run: `cargo +nightly fuzz run net_frames` in this directory. A good
//! seed corpus is frames from a capture (`rump` interfaces write pcap).

#![no_main]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

struct Target {
    _kernel: rump::Kernel,
    stack: std::sync::Arc<rump::net::Stack>,
    mac: [u8; 6],
    _listener: rump::net::TcpListener,
    _udp: rump::net::UdpSocket,
}

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let k = rump::Kernel::builder().net().boot().expect("boot");
        let p = k.process().expect("process");
        let bus = rump::net::unique_bus_name("fuzz");
        rump::net::ifup(&p, "bus0", &bus, Ipv4Addr::new(192, 0, 2, 2), 24).expect("ifup");
        rump::sys::if_add_addr(&p, "bus0", "2001:db8::2".parse::<std::net::Ipv6Addr>().unwrap(), 64)
            .expect("inet6");
        for f in ["net.inet.ip.forwarding", "net.inet6.ip6.forwarding"] {
            rump::sys::sysctl_set(&p, f, rump::kern::sysctl::SysctlValue::Int(1))
                .expect("forwarding");
        }
        let listener =
            rump::net::TcpListener::bind(&p, SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 80))
                .expect("listen");
        let udp = rump::net::UdpSocket::bind(
            &p,
            std::net::SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 53),
        )
        .expect("udp (dual-stack)");
        let mac = rump::sys::if_list(&p)
            .expect("if_list")
            .into_iter()
            .find(|i| i.name == "bus0")
            .expect("bus0")
            .mac;
        let stack = rump::net::stack(&k).expect("stack");
        Target {
            _kernel: k,
            stack,
            mac,
            _listener: listener,
            _udp: udp,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let t = target();
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let ifname = if sel & 1 == 0 { "bus0" } else { "lo0" };
    let with_mac = sel & 2 != 0;
    let mut frames = 0;
    while rest.len() >= 2 && frames < 64 {
        let len = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest = &rest[2..];
        let body = &rest[..len.min(rest.len())];
        rest = &rest[body.len()..];
        if with_mac {
            let mut f = t.mac.to_vec();
            f.extend_from_slice(body);
            if sel & 4 != 0 && f.len() >= 14 {
                f[12] = 0x86;
                f[13] = 0xdd;
            }
            let _ = t.stack.inject(ifname, &f);
        } else {
            let _ = t.stack.inject(ifname, body);
        }
        frames += 1;
    }
});
