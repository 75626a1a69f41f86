//! Hostile callers of the socket and network-configuration calls: random
//! `Request`s (what a remote client, the C ABI or the hijack library will
//! send) go through `dispatch` on a kernel wired to a peer on a bus. No
//! call may panic or hang, every failure is a real errno, and the kernel
//! still serves afterwards.
//!
//! Nothing here may touch the host: no `virtN` interface ever gets a link
//! (that would create a tap device in this namespace), `shmifN` links
//! and capture files only name files in each case's temporary directory.

mod net_util;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use net_util::*;
use proptest::prelude::*;
use rump::net::{Cmsg, RouteSpec, SockAddr, SockOpt};
use rump::sys::{self, consts::*, Request, Response};

fn any_fd() -> impl Strategy<Value = i32> {
    prop_oneof![12 => 0..8i32, 1 => Just(-1), 1 => any::<i32>()]
}

fn any_ip() -> impl Strategy<Value = IpAddr> {
    let v4 = prop_oneof![
        Just(Ipv4Addr::LOCALHOST),
        Just(Ipv4Addr::UNSPECIFIED),
        Just(Ipv4Addr::BROADCAST),
        Just(ip(1)),
        Just(ip(2)),
        Just(ip(9)),
        Just(Ipv4Addr::new(224, 0, 0, 1)),
        any::<[u8; 4]>().prop_map(Ipv4Addr::from),
    ];
    let v6 = prop_oneof![
        Just(Ipv6Addr::LOCALHOST),
        Just(Ipv6Addr::UNSPECIFIED),
        Just("2001:db8::1".parse::<Ipv6Addr>().unwrap()),
        Just("2001:db8::2".parse::<Ipv6Addr>().unwrap()),
        Just("fe80::1".parse::<Ipv6Addr>().unwrap()),
        Just("ff02::1".parse::<Ipv6Addr>().unwrap()),
        Just(ip(2).to_ipv6_mapped()),
        any::<[u8; 16]>().prop_map(Ipv6Addr::from),
    ];
    prop_oneof![v4.prop_map(IpAddr::V4), v6.prop_map(IpAddr::V6)]
}

fn any_port() -> impl Strategy<Value = u16> {
    prop_oneof![Just(0u16), Just(80), Just(53), 1..1024u16, any::<u16>()]
}

fn any_sockaddr() -> impl Strategy<Value = SockAddr> {
    prop_oneof![
        8 => (any_ip(), any_port(), prop_oneof![Just(0u32), 0..4u32, any::<u32>()]).prop_map(
            |(ip, port, scope_id)| match ip {
                IpAddr::V4(a) => SockAddr::inet(a, port),
                IpAddr::V6(a) => SockAddr::Inet6 {
                    addr: a.octets(),
                    port,
                    flowinfo: 0,
                    scope_id,
                },
            }
        ),
        1 => Just(SockAddr::Unspec),
    ]
}

fn any_opt() -> impl Strategy<Value = SockOpt> {
    let b = any::<bool>();
    prop_oneof![
        b.prop_map(SockOpt::ReuseAddr),
        b.prop_map(SockOpt::KeepAlive),
        b.prop_map(SockOpt::Broadcast),
        any::<u32>().prop_map(SockOpt::RcvBuf),
        any::<u32>().prop_map(SockOpt::SndBuf),
        // A lingering close may wait that long: keep it short.
        prop_oneof![Just(None), Just(Some(0)), Just(Some(1))].prop_map(SockOpt::Linger),
        proptest::option::of(0..50_000_000u64).prop_map(SockOpt::RcvTimeo),
        proptest::option::of(0..50_000_000u64).prop_map(SockOpt::SndTimeo),
        any::<i32>().prop_map(SockOpt::Error),
        b.prop_map(SockOpt::NoDelay),
        any::<u32>().prop_map(SockOpt::KeepIdle),
        any::<u32>().prop_map(SockOpt::KeepCnt),
        any::<u8>().prop_map(SockOpt::Ttl),
        any::<u8>().prop_map(SockOpt::HopLimit),
        b.prop_map(SockOpt::V6Only),
        b.prop_map(SockOpt::PktInfo),
        b.prop_map(SockOpt::RecvPktInfo6),
        b.prop_map(SockOpt::RecvTtl),
        b.prop_map(SockOpt::TimestampNs),
    ]
}

fn any_cmsg() -> impl Strategy<Value = Cmsg> {
    prop_oneof![
        (any_ip(), any::<u32>()).prop_map(|(addr, ifindex)| Cmsg::PktInfo { addr, ifindex }),
        any::<u8>().prop_map(Cmsg::Ttl),
        any::<u8>().prop_map(Cmsg::HopLimit),
        (any::<i64>(), any::<u32>()).prop_map(|(sec, nsec)| Cmsg::TimestampNs { sec, nsec }),
    ]
}

fn any_ifname() -> impl Strategy<Value = String> {
    proptest::sample::select(vec![
        "lo0", "lo1", "bus0", "bus1", "bus", "shmif0", "virt0", "pkt0", "pkt", "eth0", "",
        "bus99999", "lo",
    ])
    .prop_map(String::from)
}

fn any_data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..64),
        1 => (1000usize..70_000).prop_map(|n| vec![7u8; n]),
    ]
}

/// Random socket and configuration requests; none may block: sockets are
/// always made non-blocking and receive/send timeouts stay short.
fn any_request(bus: String, dir: String) -> impl Strategy<Value = Request> {
    let sockets = prop_oneof![
        (
            prop_oneof![
                Just(af::INET),
                Just(af::INET6),
                Just(af::UNIX),
                any::<i32>()
            ],
            prop_oneof![
                Just(sock::STREAM),
                Just(sock::DGRAM),
                Just(sock::RAW),
                any::<i32>()
            ],
            prop_oneof![
                Just(0),
                Just(ipproto::TCP),
                Just(ipproto::UDP),
                Just(ipproto::ICMP),
                Just(ipproto::ICMPV6),
                any::<i32>()
            ],
        )
            .prop_map(|(domain, ty, protocol)| Request::Socket {
                domain,
                ty: ty | sock::NONBLOCK,
                protocol
            }),
        (any_fd(), any_sockaddr()).prop_map(|(fd, addr)| Request::Bind { fd, addr }),
        (any_fd(), any::<i32>()).prop_map(|(fd, backlog)| Request::Listen { fd, backlog }),
        (
            any_fd(),
            prop_oneof![Just(0), Just(sock::NONBLOCK), any::<i32>()]
        )
            .prop_map(|(fd, flags)| Request::Accept4 { fd, flags }),
        (any_fd(), any_sockaddr()).prop_map(|(fd, addr)| Request::Connect { fd, addr }),
        (
            any_fd(),
            any_data(),
            any::<i32>(),
            proptest::option::of(any_sockaddr())
        )
            .prop_map(|(fd, data, flags, addr)| Request::Sendto {
                fd,
                data,
                flags: flags | msg::DONTWAIT,
                addr
            }),
        (any_fd(), 0..70_000usize, any::<i32>()).prop_map(|(fd, len, flags)| Request::Recvfrom {
            fd,
            len,
            flags: (flags & !msg::WAITALL) | msg::DONTWAIT
        }),
        (
            any_fd(),
            any_data(),
            proptest::option::of(any_sockaddr()),
            proptest::collection::vec(any_cmsg(), 0..3)
        )
            .prop_map(|(fd, data, addr, control)| Request::Sendmsg {
                fd,
                data,
                flags: msg::DONTWAIT,
                addr,
                control
            }),
        (any_fd(), 0..2000usize).prop_map(|(fd, len)| Request::Recvmsg {
            fd,
            len,
            flags: msg::DONTWAIT
        }),
        (any_fd(), prop_oneof![0..3i32, any::<i32>()])
            .prop_map(|(fd, how)| Request::Shutdown { fd, how }),
        any_fd().prop_map(|fd| Request::Getsockname { fd }),
        any_fd().prop_map(|fd| Request::Getpeername { fd }),
        (any_fd(), any_opt()).prop_map(|(fd, opt)| Request::Setsockopt { fd, opt }),
        (
            any_fd(),
            prop_oneof![
                Just(so::SOL_SOCKET),
                Just(ipproto::TCP),
                Just(ipproto::IP),
                Just(ipproto::IPV6),
                any::<i32>()
            ],
            0..60i32
        )
            .prop_map(|(fd, level, name)| Request::Getsockopt { fd, level, name }),
        any_fd().prop_map(|fd| Request::Close { fd }),
    ];
    let shm_dir = dir.clone();
    let links = prop_oneof![
        Just(bus),
        Just(format!("{dir}/shm")),
        Just(String::new()),
        Just("nonexistent-bus".to_string()),
    ];
    let config =
        prop_oneof![
            any_ifname().prop_map(|name| Request::IfCreate { name }),
            any_ifname().prop_map(|name| Request::IfDestroy { name }),
            (
                any_ifname().prop_filter("no tap devices on the host", |n| !n.starts_with("virt")),
                links
            )
                .prop_map(move |(name, link)| {
                    // A shmif link is a host file: only ever in the
                    // test's directory.
                    let link = if name.starts_with("shmif") && !link.is_empty() {
                        format!("{shm_dir}/shm")
                    } else {
                        link
                    };
                    Request::IfSetLink { name, link }
                }),
            (any_ifname(), any::<[u8; 6]>())
                .prop_map(|(name, mac)| Request::IfSetMac { name, mac }),
            (
                any_ifname(),
                prop_oneof![Just(1500u32), Just(1280), 0..70_000u32]
            )
                .prop_map(|(name, mtu)| Request::IfSetMtu { name, mtu }),
            (any_ifname(), any_ip(), 0..140u8)
                .prop_map(|(name, addr, prefix)| Request::IfAddAddr { name, addr, prefix }),
            (any_ifname(), any_ip()).prop_map(|(name, addr)| Request::IfDelAddr { name, addr }),
            (any_ifname(), any::<bool>()).prop_map(|(name, up)| Request::IfSetUp { name, up }),
            (any_ifname(), any::<bool>()).prop_map(move |(name, on)| Request::IfSetPcap {
                name,
                path: on.then(|| format!("{dir}/cap.pcap"))
            }),
            Just(Request::IfList),
            (
                any_ip(),
                0..140u8,
                proptest::option::of(any_ip()),
                proptest::option::of(any_ifname())
            )
                .prop_map(|(dst, prefix, gateway, ifname)| Request::RouteAdd {
                    spec: RouteSpec {
                        dst,
                        prefix,
                        gateway,
                        ifname
                    }
                }),
            (any_ip(), 0..140u8).prop_map(|(dst, prefix)| Request::RouteDelete { dst, prefix }),
            Just(Request::RouteList),
            Just(Request::ArpList),
            any_ip().prop_map(|ip| Request::ArpDelete { ip }),
            Just(Request::NetStats),
            (
                proptest::sample::select(vec![
                    "net.inet.ip.forwarding",
                    "net.inet6.ip6.forwarding",
                    "net.inet.ip.ttl",
                    "net.inet.tcp.time_wait_ms",
                    "net.inet.tcp.sendspace",
                    "net.inet.tcp.keepcnt",
                ]),
                any::<i64>()
            )
                .prop_map(|(name, v)| Request::SysctlSet {
                    name: name.to_string(),
                    value: rump::kern::sysctl::SysctlValue::Int(v)
                }),
        ];
    prop_oneof![5 => sockets, 2 => config]
}

/// Halts the kernel if a case takes too long, so that a blocked call
/// returns and the case fails instead of hanging.
struct HangGuard {
    done: Arc<(Mutex<bool>, Condvar)>,
    fired: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl HangGuard {
    fn new(k: &rump::Kernel, limit: Duration) -> HangGuard {
        let done = Arc::new((Mutex::new(false), Condvar::new()));
        let fired = Arc::new(AtomicBool::new(false));
        let (d, f, kernel) = (done.clone(), fired.clone(), k.raw().clone());
        let thread = std::thread::spawn(move || {
            let (lock, cv) = &*d;
            let guard = lock.lock().unwrap();
            let (guard, _) = cv.wait_timeout_while(guard, limit, |done| !*done).unwrap();
            if !*guard {
                f.store(true, Ordering::SeqCst);
                kernel.halt();
            }
        });
        HangGuard {
            done,
            fired,
            thread: Some(thread),
        }
    }
}

impl Drop for HangGuard {
    fn drop(&mut self) {
        *self.done.0.lock().unwrap() = true;
        self.done.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Stands for the case's temporary directory in generated requests.
const DIR: &str = "@DIR@";

/// `req` with [`DIR`] replaced by `dir`.
fn in_dir(req: Request, dir: &str) -> Request {
    match req {
        Request::IfSetLink { name, link } => Request::IfSetLink {
            name,
            link: link.replace(DIR, dir),
        },
        Request::IfSetPcap { name, path } => Request::IfSetPcap {
            name,
            path: path.map(|p| p.replace(DIR, dir)),
        },
        r => r,
    }
}

fn case() -> impl Strategy<Value = (String, Vec<Request>)> {
    let bus = rump::net::unique_bus_name("req");
    // Each case puts its files in a temporary directory of its own.
    let dir = DIR.to_string();
    (
        Just(bus.clone()),
        proptest::collection::vec(any_request(bus, dir), 1..40),
    )
}

proptest! {
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(128),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_network_requests_never_panic((bus, reqs) in case()) {
        // A peer on the bus serves TCP and UDP, so some requests reach it.
        let (kp, pp) = net_kernel();
        rump::net::ifup(&pp, "bus0", &bus, ip(2), 24).unwrap();
        sys::if_add_addr(&pp, "bus0", "2001:db8::2".parse::<Ipv6Addr>().unwrap(), 64).unwrap();
        let _l = rump::net::TcpListener::bind(&pp, std::net::SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 80)).unwrap();
        let _u = rump::net::UdpSocket::bind(&pp, std::net::SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 53)).unwrap();
        let (k, p) = net_kernel();
        rump::net::ifup(&p, "bus0", &bus, ip(1), 24).unwrap();
        sys::if_add_addr(&p, "bus0", "2001:db8::1".parse::<Ipv6Addr>().unwrap(), 64).unwrap();
        sys::sysctl_set(&p, "net.inet.tcp.connect_timeout_ms", rump::kern::sysctl::SysctlValue::Int(300)).unwrap();
        // Sockets of every kind at the low descriptors the requests use.
        let nb = sock::NONBLOCK;
        let t4 = sys::socket(&p, af::INET, sock::STREAM | nb, 0).unwrap();
        let _ = sys::connect(&p, t4, SockAddr::inet(ip(2), 80));
        let t6 = sys::socket(&p, af::INET6, sock::STREAM | nb, 0).unwrap();
        sys::bind(&p, t6, SockAddr::inet6(Ipv6Addr::UNSPECIFIED, 8080)).unwrap();
        sys::listen(&p, t6, 4).unwrap();
        let u4 = sys::socket(&p, af::INET, sock::DGRAM | nb, 0).unwrap();
        sys::bind(&p, u4, SockAddr::inet(Ipv4Addr::UNSPECIFIED, 5353)).unwrap();
        let u6 = sys::socket(&p, af::INET6, sock::DGRAM | nb, 0).unwrap();
        sys::connect(&p, u6, SockAddr::inet6("2001:db8::2".parse().unwrap(), 53)).unwrap();
        sys::socket(&p, af::INET, sock::DGRAM | nb, ipproto::ICMP).unwrap();
        sys::socket(&p, af::INET6, sock::DGRAM | nb, ipproto::ICMPV6).unwrap();
        let guard = HangGuard::new(&k, Duration::from_secs(20));
        let tmp = tempfile::tempdir().unwrap();
        for req in reqs {
            let req = in_dir(req, tmp.path().to_str().unwrap());
            let shown = format!("{req:?}");
            let shown = &shown[..shown.len().min(300)];
            let r = sys::dispatch(&p, req);
            if std::env::var("NETREQ_TRACE").is_ok() { eprintln!("{shown} -> {:?}", r.as_ref().map(|_| ()).map_err(|e| e.name())); }
            prop_assert!(!guard.fired.load(Ordering::SeqCst), "blocked: {shown}");
            if let Err(e) = r {
                prop_assert!(e.raw() > 0 && e.name().is_some(), "{shown}: {e:?}");
            }
        }
        // Both kernels still serve.
        prop_assert!(matches!(sys::dispatch(&p, Request::IfList), Ok(Response::Interfaces(_))));
        prop_assert!(sys::dispatch(&p, Request::NetStats).is_ok());
        let fd = sys::socket(&p, af::INET, sock::DGRAM, 0).unwrap();
        prop_assert!(sys::bind(&p, fd, SockAddr::inet(Ipv4Addr::UNSPECIFIED, 0)).is_ok());
        prop_assert_eq!(sys::if_destroy(&p, "lo0"), Err(rump::Errno::EPERM));
        drop(guard);
        drop((k, kp));
    }
}
