//! Linux as the peer: a rump kernel attaches to a tap device inside a
//! network namespace this test creates (never the root namespace), and
//! Linux's own tools talk to it: curl downloads from a server in the rump
//! kernel, the rump kernel downloads from `python3 -m http.server`, socat
//! echoes through it, ping gets answers, all with checksums; tcpdump reads
//! the capture of that traffic. A second test does the same over IPv6
//! (neighbour discovery with Linux, link-local addresses) and sends
//! datagrams larger than the MTU both ways in both IP versions, so Linux
//! reassembles our fragments and we reassemble Linux's. Needs root,
//! iproute2 and the tools; each missing piece skips with one line.

mod net_util;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use net_util::*;
use rump::net::{SockAddr, TcpListener, TcpStream, UdpSocket};
use rump::sys::{self, consts::*};

const LINUX: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const RUMP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const LINUX6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1);
const RUMP6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2);

/// A network namespace with a tap device in it, removed on drop.
struct Netns {
    name: String,
}

impl Netns {
    /// A namespace named after this process and `tag`, with `rtap0` at
    /// 192.0.2.1/24 and 2001:db8:1::1/64 (no duplicate address detection,
    /// so the address is usable at once).
    fn create(tag: &str) -> Result<Netns, String> {
        let name = format!("rumpnet{}{tag}", std::process::id());
        let ns = Netns { name };
        ns.ip(&["netns", "add", &ns.name])?;
        ns.exec(&["ip", "link", "set", "lo", "up"])?;
        ns.exec(&["ip", "tuntap", "add", "dev", "rtap0", "mode", "tap"])?;
        ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "rtap0"])?;
        ns.exec(&[
            "ip",
            "-6",
            "addr",
            "add",
            "2001:db8:1::1/64",
            "dev",
            "rtap0",
            "nodad",
        ])?;
        ns.exec(&["ip", "link", "set", "rtap0", "up"])?;
        Ok(ns)
    }

    fn ip(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    fn exec(&self, args: &[&str]) -> Result<(), String> {
        let out = self.cmd(args).output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A child process killed on drop.
struct Bg(std::process::Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn skip_reason() -> Option<String> {
    if !is_root() {
        return Some(
            "not root (needs CAP_NET_ADMIN for a network namespace and a tap device)".into(),
        );
    }
    if !std::path::Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    for t in ["ip", "curl", "python3", "socat", "ping", "tcpdump"] {
        if !have(t) {
            return Some(format!("{t} not installed (apt-get install iproute2 curl python3 socat iputils-ping tcpdump)"));
        }
    }
    None
}

/// Serves `body` over HTTP/1.0 to every connection (a minimal server in
/// the rump kernel).
fn http_server(l: TcpListener, body: Vec<u8>) {
    std::thread::spawn(move || {
        while let Ok((mut s, _)) = l.accept() {
            let mut req = Vec::new();
            let mut b = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&b[..n]),
                }
            }
            let head = format!(
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        }
    });
}

/// Downloads `path` from an HTTP server (Linux's, waiting up to 20 s for
/// it to listen) through the rump kernel; returns the body of a 200.
fn http_get(p: &rump::Process, at: SocketAddr, path: &str) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut c = loop {
        match TcpStream::connect(p, at) {
            Ok(c) => break c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("no HTTP server at {at}: {e}"),
        }
    };
    c.write_all(format!("GET {path} HTTP/1.0\r\nHost: linux\r\n\r\n").as_bytes())
        .unwrap();
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).unwrap();
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP header")
        + 4;
    assert!(
        resp.starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&resp[..split])
    );
    resp.split_off(split)
}

fn echo_server(l: TcpListener) {
    std::thread::spawn(move || {
        while let Ok((s, _)) = l.accept() {
            std::thread::spawn(move || {
                let mut b = vec![0u8; 65536];
                loop {
                    match (&s).read(&mut b) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if (&s).write_all(&b[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
        }
    });
}

#[test]
fn linux_is_a_peer_through_a_tap_in_a_namespace() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    within(240, || {
        let ns = Netns::create("a").expect("network namespace");
        let dir = tempfile::tempdir().unwrap();
        let (_k, p) = net_kernel();
        sys::if_create(&p, "virt0").unwrap();
        sys::if_set_link(&p, "virt0", &format!("netns:{}:rtap0", ns.name)).unwrap();
        sys::if_add_addr(&p, "virt0", RUMP.octets(), 24).unwrap();
        let pcap = dir.path().join("virt0.pcap");
        sys::if_set_pcap(&p, "virt0", Some(pcap.to_str().unwrap())).unwrap();
        sys::if_set_up(&p, "virt0", true).unwrap();

        // Linux pings the rump kernel.
        let out = ns
            .cmd(&["ping", "-c", "3", "-i", "0.2", "-W", "2", &RUMP.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ping: {}",
            String::from_utf8_lossy(&out.stdout)
        );

        // curl downloads from a server in the rump kernel.
        let body = pattern(77, 3 << 20);
        http_server(
            TcpListener::bind(&p, SocketAddrV4::new(RUMP, 8080)).unwrap(),
            body.clone(),
        );
        let got = dir.path().join("got");
        let out = ns
            .cmd(&[
                "curl",
                "-sS",
                "--max-time",
                "60",
                "-o",
                got.to_str().unwrap(),
                &format!("http://{RUMP}:8080/file"),
            ])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "curl: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = std::fs::read(&got).unwrap();
        assert_eq!(got.len(), body.len());
        assert_eq!(fnv(&got), fnv(&body), "curl's download checksum");

        // The rump kernel downloads from Linux's python3 http.server.
        let served = pattern(78, 2 << 20);
        std::fs::write(dir.path().join("served.bin"), &served).unwrap();
        let _py = Bg(ns
            .cmd(&[
                "python3",
                "-m",
                "http.server",
                "8000",
                "--bind",
                &LINUX.to_string(),
                "--directory",
                dir.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap());
        let got = http_get(&p, SocketAddrV4::new(LINUX, 8000).into(), "/served.bin");
        assert_eq!(fnv(&got), fnv(&served), "download from Linux checksum");

        // socat pipes a file through an echo server in the rump kernel.
        echo_server(TcpListener::bind(&p, SocketAddrV4::new(RUMP, 9000)).unwrap());
        let sent = pattern(79, 1 << 20);
        let mut sock = ns
            .cmd(&[
                "socat",
                "-t",
                "10",
                "-T",
                "30",
                "STDIO",
                &format!("TCP:{RUMP}:9000"),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = sock.stdin.take().unwrap();
        let to_send = sent.clone();
        let w = std::thread::spawn(move || {
            stdin.write_all(&to_send).unwrap();
        });
        let mut echoed = Vec::new();
        sock.stdout
            .take()
            .unwrap()
            .read_to_end(&mut echoed)
            .unwrap();
        w.join().unwrap();
        assert!(sock.wait().unwrap().success());
        assert_eq!(
            fnv(&echoed),
            fnv(&sent),
            "socat echo checksum ({} bytes back)",
            echoed.len()
        );

        // The rump kernel pings Linux.
        let fd = sys::socket(&p, af::INET, sock::DGRAM, ipproto::ICMP).unwrap();
        sys::sendto(
            &p,
            fd,
            &[8, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3],
            0,
            Some(SockAddr::inet(LINUX, 0)),
        )
        .unwrap();
        sys::setsockopt(&p, fd, rump::net::SockOpt::RcvTimeo(Some(5_000_000_000))).unwrap();
        let mut b = [0u8; 64];
        assert_eq!(sys::recv(&p, fd, &mut b, 0), Ok(11));
        assert_eq!(b[0], 0);

        // tcpdump reads the capture of all that.
        sys::if_set_pcap(&p, "virt0", None).unwrap();
        let out = Command::new("tcpdump")
            .args(["-n", "-r", pcap.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tcpdump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "ICMP echo request",
            "192.0.2.1.8000: Flags [S]",
            "> 192.0.2.2.8080: Flags [S]",
            "> 192.0.2.2.9000: Flags [S]",
            "192.0.2.2.8080 > 192.0.2.1.",
            "ARP, Reply 192.0.2.2 is-at",
        ] {
            assert!(
                text.contains(needle),
                "tcpdump output lacks {needle:?}:\n{}",
                &text[..text.len().min(4000)]
            );
        }
        // No checksum errors in what we sent (tcpdump -vv verifies them).
        let out = Command::new("tcpdump")
            .args([
                "-n",
                "-vv",
                "-r",
                pcap.to_str().unwrap(),
                "src",
                "192.0.2.2",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!text.contains("incorrect"), "bad checksums in our frames");
        let st = sys::if_list(&p).unwrap();
        let v = st.iter().find(|i| i.name == "virt0").unwrap();
        assert!(v.stats.rx_packets > 100 && v.stats.tx_packets > 100);
    });
}

/// Runs a command in the namespace; panics with its output if it fails.
fn must(ns: &Netns, args: &[&str]) -> String {
    let out = ns.cmd(args).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn linux_is_a_peer_over_ipv6_and_fragments() {
    if let Some(why) = skip_reason() {
        eprintln!("skipped: {why}");
        return;
    }
    within(240, || {
        let ns = Netns::create("b").expect("network namespace");
        let dir = tempfile::tempdir().unwrap();
        let (_k, p) = net_kernel();
        sys::if_create(&p, "virt0").unwrap();
        sys::if_set_link(&p, "virt0", &format!("netns:{}:rtap0", ns.name)).unwrap();
        sys::if_add_addr(&p, "virt0", RUMP, 24).unwrap();
        sys::if_add_addr(&p, "virt0", RUMP6, 64).unwrap();
        let pcap = dir.path().join("virt0.pcap");
        sys::if_set_pcap(&p, "virt0", Some(pcap.to_str().unwrap())).unwrap();
        sys::if_set_up(&p, "virt0", true).unwrap();
        let virt = sys::if_list(&p)
            .unwrap()
            .into_iter()
            .find(|i| i.name == "virt0")
            .unwrap();
        let ll = virt
            .addrs
            .iter()
            .find_map(|(a, _)| match a {
                IpAddr::V6(a) if a.is_unicast_link_local() => Some(*a),
                _ => None,
            })
            .unwrap();

        // Linux pings us over IPv6: global and link-local addresses, and
        // with 3000 bytes, which Linux fragments, we reassemble, and our
        // fragmented reply Linux reassembles.
        must(
            &ns,
            &[
                "ping",
                "-6",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                &RUMP6.to_string(),
            ],
        );
        must(
            &ns,
            &["ping", "-6", "-c", "1", "-W", "2", &format!("{ll}%rtap0")],
        );
        must(
            &ns,
            &[
                "ping",
                "-6",
                "-c",
                "2",
                "-s",
                "3000",
                "-W",
                "2",
                &RUMP6.to_string(),
            ],
        );
        must(
            &ns,
            &[
                "ping",
                "-4",
                "-c",
                "2",
                "-s",
                "5000",
                "-W",
                "2",
                &RUMP.to_string(),
            ],
        );

        // curl downloads over IPv6 from a server on [::] in the rump kernel.
        let body = pattern(80, 2 << 20);
        http_server(
            TcpListener::bind(&p, SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, 8080, 0, 0)).unwrap(),
            body.clone(),
        );
        let got = dir.path().join("got6");
        must(
            &ns,
            &[
                "curl",
                "-sS",
                "-g",
                "--max-time",
                "60",
                "-o",
                got.to_str().unwrap(),
                &format!("http://[{RUMP6}]:8080/file"),
            ],
        );
        assert_eq!(
            fnv(&std::fs::read(&got).unwrap()),
            fnv(&body),
            "curl -6 checksum"
        );
        // The same listener takes IPv4 (a dual-stack socket).
        must(
            &ns,
            &[
                "curl",
                "-sS",
                "--max-time",
                "60",
                "-o",
                got.to_str().unwrap(),
                &format!("http://{RUMP}:8080/file"),
            ],
        );
        assert_eq!(
            fnv(&std::fs::read(&got).unwrap()),
            fnv(&body),
            "curl -4 checksum"
        );

        // The rump kernel downloads from python3's http.server on IPv6.
        let served = pattern(81, 1 << 20);
        std::fs::write(dir.path().join("served.bin"), &served).unwrap();
        let _py = Bg(ns
            .cmd(&[
                "python3",
                "-m",
                "http.server",
                "8000",
                "--bind",
                &LINUX6.to_string(),
                "--directory",
                dir.path().to_str().unwrap(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap());
        let got = http_get(&p, SocketAddr::new(IpAddr::V6(LINUX6), 8000), "/served.bin");
        assert_eq!(fnv(&got), fnv(&served), "download over IPv6 checksum");

        // Large UDP datagrams both ways through socat's echo, in both IP
        // versions: we fragment, Linux reassembles and echoes, Linux
        // fragments, we reassemble.
        let _e6 = Bg(ns
            .cmd(&["socat", "-b", "65536", "UDP6-RECVFROM:7006,fork", "PIPE"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap());
        let _e4 = Bg(ns
            .cmd(&["socat", "-b", "65536", "UDP4-RECVFROM:7004,fork", "PIPE"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap());
        for (to, bind) in [
            (
                SocketAddr::new(IpAddr::V6(LINUX6), 7006),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
            ),
            (
                SocketAddr::new(IpAddr::V4(LINUX), 7004),
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            ),
        ] {
            let u = UdpSocket::bind(&p, bind).unwrap();
            u.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = vec![0u8; 70_000];
            for len in [100, 4000, 9000, 30_000] {
                let d = pattern(len as u64, len);
                // socat may not be listening yet, and UDP may be lost:
                // retry a few times.
                let mut echoed = None;
                for _ in 0..20 {
                    u.send_to(&d, to).unwrap();
                    if let Ok((n, from)) = u.recv_from(&mut buf) {
                        assert_eq!(from, to);
                        echoed = Some(buf[..n].to_vec());
                        break;
                    }
                }
                let echoed = echoed.unwrap_or_else(|| panic!("no echo of {len} bytes from {to}"));
                assert_eq!(fnv(&echoed), fnv(&d), "{len}-byte echo from {to}");
            }
        }
        let st = sys::net_stats(&p).unwrap();
        assert!(st.ip_reassembled >= 6 && st.ip_frags_out > 20, "{st:?}");
        assert!(st.nd_adverts_sent >= 1 && st.nd_in >= 1, "{st:?}");

        // The rump kernel pings Linux over IPv6.
        let fd = sys::socket(&p, af::INET6, sock::DGRAM, ipproto::ICMPV6).unwrap();
        sys::sendto(
            &p,
            fd,
            &[128, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3],
            0,
            Some(SockAddr::inet6(LINUX6, 0)),
        )
        .unwrap();
        sys::setsockopt(&p, fd, rump::net::SockOpt::RcvTimeo(Some(5_000_000_000))).unwrap();
        let mut b = [0u8; 64];
        assert_eq!(sys::recv(&p, fd, &mut b, 0), Ok(11));
        assert_eq!(b[0], 129);
        // Linux learned our link-layer address by neighbour discovery.
        let neigh = must(&ns, &["ip", "-6", "neigh", "show", "dev", "rtap0"]);
        assert!(neigh.contains(&RUMP6.to_string()), "{neigh}");

        // tcpdump reads it all, with correct checksums.
        sys::if_set_pcap(&p, "virt0", None).unwrap();
        let out = Command::new("tcpdump")
            .args(["-n", "-vv", "-r", pcap.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tcpdump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        for needle in [
            "ICMP6, echo request",
            "ICMP6, echo reply",
            "neighbor solicitation",
            "neighbor advertisement",
            "frag (",
            "2001:db8:1::2.8080",
        ] {
            assert!(
                text.contains(needle),
                "tcpdump output lacks {needle:?}:\n{}",
                &text[..text.len().min(4000)]
            );
        }
        assert!(!text.contains("incorrect"), "bad checksums in the capture");
    });
}
