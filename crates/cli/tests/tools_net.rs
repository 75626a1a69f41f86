//! The configuration tools on in-process kernels: every kernel here is
//! configured only through the tools (`rump_cli::tools::run_words`, the
//! same code the binary runs against a server), then checked with the
//! tools' own output and with real traffic: ping, ping6 and TCP
//! transfers whose checksums are compared at both ends.
//!
//! Scenarios: two kernels on one shmif bus (a shared file), IPv4 and IPv6;
//! a router (three kernels, two buses, forwarding on in the middle one,
//! routes set with `route`); sysctl; mount, umount and df; wrong
//! arguments and kernel errors. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::mpsc;
use std::time::Duration;

use rump::net::{TcpListener, TcpStream};
use rump::{Kernel, Process};
use rump_cli::tools::{netstat::stat_of, ping::parse_summary, run_words};

/// Runs a tool, expecting success; returns its output.
fn ok(p: &Process, cmd: &str) -> String {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let (code, out) = run_words(p, &words);
    assert_eq!(code, 0, "`{cmd}` failed ({code}): {out}");
    out
}

/// Runs a tool, expecting exit status `want`; returns its output.
fn fails(p: &Process, cmd: &str, want: i32) -> String {
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let (code, out) = run_words(p, &words);
    assert_eq!(code, want, "`{cmd}`: status {code}, output: {out}");
    out
}

fn kernel() -> (Kernel, Process) {
    let k = Kernel::builder().net().boot().expect("boot");
    let p = k.process().expect("process");
    (k, p)
}

/// Runs `f` on a thread; fails if it takes longer than `secs`.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("hung for more than {secs} s"),
    }
}

/// Deterministic bytes (xorshift64*).
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

/// FNV-1a, 64 bits.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Sends `len` bytes from `client` to a listener on `server` at `to`; the
/// server checksums what it receives and the two checksums must match.
/// While the connection is open, `during` runs (netstat checks).
fn tcp_transfer(
    server: &Process,
    client: &Process,
    to: SocketAddr,
    len: usize,
    seed: u64,
    during: impl FnOnce(),
) {
    let bind = match to {
        SocketAddr::V4(a) => SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), a.port()),
        SocketAddr::V6(a) => SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), a.port()),
    };
    let l = TcpListener::bind(server, bind).expect("listen");
    let data = pattern(seed, len);
    let want = fnv(&data);
    let srv = std::thread::spawn(move || {
        let (mut s, _) = l.accept().expect("accept");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut got = Vec::with_capacity(len);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = s.read(&mut buf).expect("server read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(&fnv(&got).to_le_bytes()).expect("server reply");
        (got.len(), fnv(&got))
    });
    let mut c = TcpStream::connect(client, to).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(&data[..len / 2]).expect("client write");
    during();
    c.write_all(&data[len / 2..]).expect("client write");
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = [0u8; 8];
    c.read_exact(&mut reply).expect("checksum from the server");
    let (n, h) = srv.join().expect("server thread");
    assert_eq!(n, len, "bytes received");
    assert_eq!(h, want, "server's checksum");
    assert_eq!(u64::from_le_bytes(reply), want, "checksum sent back");
}

fn bus_file(dir: &tempfile::TempDir, name: &str) -> String {
    dir.path().join(name).to_str().unwrap().to_string()
}

#[test]
fn two_kernels_on_a_shmif_bus() {
    within(240, || {
        let dir = tempfile::tempdir().unwrap();
        let bus = bus_file(&dir, "bus");
        let (_ka, a) = kernel();
        let (_kb, b) = kernel();
        ok(
            &a,
            &format!(
                "ifconfig shmif0 create linkstr {bus} inet 10.0.1.1/24 inet6 2001:db8:1::1/64 up"
            ),
        );
        ok(&b, "ifconfig shmif0 create");
        ok(&b, &format!("ifconfig shmif0 linkstr {bus}"));
        ok(&b, "ifconfig shmif0 inet 10.0.1.2 netmask 255.255.255.0");
        ok(
            &b,
            "ifconfig shmif0 inet6 2001:db8:1::2 prefixlen 64 mtu 1400 up",
        );

        let shown = ok(&b, "ifconfig shmif0");
        assert!(
            shown.starts_with(
                "shmif0: flags=0x8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1400\n"
            ),
            "{shown}"
        );
        assert!(shown.contains(&format!("\tlinkstr: {bus}\n")), "{shown}");
        assert!(
            shown.contains("\tinet 10.0.1.2/24 broadcast 10.0.1.255 flags 0x0\n"),
            "{shown}"
        );
        assert!(
            shown.contains("\tinet6 2001:db8:1::2/64 flags 0x0\n"),
            "{shown}"
        );
        let all = ok(&a, "ifconfig -a");
        assert!(
            all.contains("lo0: flags=") && all.contains("shmif0: flags="),
            "{all}"
        );
        assert_eq!(ok(&a, "ifconfig -l").trim(), "lo0 shmif0");

        let out = ok(&a, "ping -c 3 -i 0.05 -W 5 10.0.1.2");
        assert!(
            out.starts_with("PING 10.0.1.2 (10.0.1.2): 56 data bytes\n"),
            "{out}"
        );
        assert!(
            out.contains("64 bytes from 10.0.1.2: icmp_seq=0 ttl=64 time="),
            "{out}"
        );
        assert_eq!(parse_summary(&out), Some((3, 3)), "{out}");
        assert!(out.contains("0.0% packet loss"), "{out}");
        let out = ok(&b, "ping6 -c 2 -i 0.05 -s 1000 -W 5 2001:db8:1::1");
        assert!(
            out.contains("1008 bytes from 2001:db8:1::1, icmp_seq=1 hlim=64"),
            "{out}"
        );
        assert_eq!(parse_summary(&out), Some((2, 2)), "{out}");
        // The link-local address of the other side, with its zone.
        let ll = ok(&a, "ifconfig shmif0")
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("inet6 fe80")
                    .map(|r| format!("fe80{}", r.split('/').next().unwrap()))
            })
            .expect("link-local address");
        let ll_b = ll.replace("%shmif0", "");
        let out = ok(&b, &format!("ping6 -c 1 -W 5 {ll_b}%shmif0"));
        assert_eq!(parse_summary(&out), Some((1, 1)), "{out}");

        // Neighbours learnt by the pings.
        let arp = ok(&a, "arp -a");
        let mac_b = ok(&b, "ifconfig shmif0")
            .lines()
            .find_map(|l| l.trim().strip_prefix("address: ").map(String::from))
            .unwrap();
        assert!(
            arp.contains(&format!("? (10.0.1.2) at {mac_b} on shmif0")),
            "{arp}"
        );
        assert_eq!(
            ok(&a, "arp 10.0.1.2"),
            format!("? (10.0.1.2) at {mac_b} on shmif0\n")
        );
        let ndp = ok(&b, "ndp -a");
        assert!(ndp.starts_with("Neighbor"), "{ndp}");
        assert!(
            ndp.lines()
                .any(|l| l.starts_with("2001:db8:1::1 ") && l.contains("shmif0")),
            "{ndp}"
        );
        ok(&a, "arp -d 10.0.1.2");
        assert!(!ok(&a, "arp -a").contains("10.0.1.2"));

        // TCP over IPv4 and IPv6, netstat looked at mid-transfer.
        let (a2, b2) = (a.clone(), b.clone());
        tcp_transfer(&b, &a, "10.0.1.2:5001".parse().unwrap(), 4 << 20, 1, || {
            let socks = ok(&a2, "netstat -n");
            let row = socks
                .lines()
                .find(|l| l.starts_with("tcp ") && l.contains("10.0.1.2.5001"))
                .unwrap_or_else(|| panic!("no connection in\n{socks}"));
            let cols: Vec<&str> = row.split_whitespace().collect();
            assert_eq!(cols.len(), 6, "{row}");
            assert!(cols[3].starts_with("10.0.1.1."), "{row}");
            assert_eq!(cols[5], "ESTABLISHED", "{row}");
            let listen = ok(&b2, "netstat -an -f inet");
            assert!(
                listen.lines().any(|l| l.starts_with("tcp ")
                    && l.contains("*.5001")
                    && l.ends_with("LISTEN")),
                "{listen}"
            );
            let v6 = ok(&b2, "netstat -an -f inet6");
            assert!(!v6.contains(".5001"), "{v6}");
            let all = ok(&b2, "netstat -a");
            assert!(
                all.lines()
                    .any(|l| l.contains("*.5001") && l.ends_with("LISTEN")),
                "{all}"
            );
        });
        tcp_transfer(
            &a,
            &b,
            "[2001:db8:1::1]:5002".parse().unwrap(),
            2 << 20,
            2,
            || {
                let socks = ok(&b2, "netstat");
                assert!(
                    socks.lines().any(|l| l.starts_with("tcp6")
                        && l.contains("2001:db8:1::1.5002")
                        && l.ends_with("ESTABLISHED")),
                    "{socks}"
                );
            },
        );

        // Counters: interfaces and protocols.
        let ifs = ok(&a, "netstat -i");
        let row = ifs
            .lines()
            .find(|l| l.starts_with("shmif0") && l.contains("<Link>"))
            .unwrap_or_else(|| panic!("{ifs}"));
        let cols: Vec<&str> = row.split_whitespace().collect();
        let (ipkts, opkts): (u64, u64) = (cols[4].parse().unwrap(), cols[6].parse().unwrap());
        assert!(ipkts > 100 && opkts > 1000, "{row}");
        assert!(
            ifs.lines().any(|l| l.starts_with("shmif0")
                && l.contains("10.0.1/24")
                && l.contains("10.0.1.1")),
            "{ifs}"
        );
        let st = ok(&a, "netstat -s");
        assert!(
            stat_of(&st, "tcp", "connection requests").unwrap() >= 1,
            "{st}"
        );
        assert!(
            stat_of(&st, "tcp", "connection accepts").unwrap() >= 1,
            "{st}"
        );
        assert!(stat_of(&st, "icmp", "messages sent").unwrap() >= 3, "{st}");
        let routes = ok(&a, "netstat -rn");
        assert!(
            routes.lines().any(|l| l.starts_with("10.0.1/24")
                && l.contains("link#")
                && l.ends_with("shmif0")),
            "{routes}"
        );

        // Down: no more replies, ping says so with status 2.
        ok(&b, "ifconfig shmif0 down");
        let out = fails(&a, "ping -c 1 -W 0.3 10.0.1.2", 2);
        assert_eq!(parse_summary(&out), Some((1, 0)), "{out}");
        ok(&b, "ifconfig shmif0 10.0.1.2 delete");
        assert!(!ok(&b, "ifconfig shmif0").contains("10.0.1.2"));
        ok(&b, "ifconfig shmif0 destroy");
        assert_eq!(ok(&b, "ifconfig -l").trim(), "lo0");
    });
}

#[test]
fn router_between_two_buses() {
    within(240, || {
        let dir = tempfile::tempdir().unwrap();
        let (bus1, bus2) = (bus_file(&dir, "net1"), bus_file(&dir, "net2"));
        let (_k1, h1) = kernel();
        let (_k2, r) = kernel();
        let (_k3, h3) = kernel();
        ok(
            &h1,
            &format!(
                "ifconfig shmif0 create linkstr {bus1} inet 10.0.1.1/24 inet6 2001:db8:1::1/64 up"
            ),
        );
        ok(
            &r,
            &format!(
                "ifconfig shmif0 create linkstr {bus1} inet 10.0.1.2/24 inet6 2001:db8:1::2/64 up"
            ),
        );
        ok(
            &r,
            &format!(
                "ifconfig shmif1 create linkstr {bus2} inet 10.0.2.1/24 inet6 2001:db8:2::1/64 up"
            ),
        );
        ok(
            &h3,
            &format!(
                "ifconfig shmif0 create linkstr {bus2} inet 10.0.2.2/24 inet6 2001:db8:2::2/64 up"
            ),
        );

        // No route yet: the kernel says so.
        let out = fails(&h1, "ping -c 1 -W 0.3 10.0.2.2", 1);
        assert!(out.contains("Network is unreachable"), "{out}");

        ok(&h1, "route add -net 10.0.2.0/24 10.0.1.2");
        ok(&h1, "route add -inet6 2001:db8:2::/64 2001:db8:1::2");
        assert_eq!(
            ok(&h3, "route add default 10.0.2.1"),
            "add net default: gateway 10.0.2.1\n"
        );
        ok(&h3, "route add -inet6 default 2001:db8:2::1");
        let table = ok(&h1, "route show");
        assert!(
            table.lines().any(|l| l.starts_with("10.0.2/24 ")
                && l.contains("10.0.1.2")
                && l.contains("UGS")
                && l.ends_with("shmif0")),
            "{table}"
        );
        assert!(
            table.contains("Internet6:")
                && table.lines().any(|l| l.starts_with("2001:db8:2::/64 ")),
            "{table}"
        );
        let got = ok(&h1, "route get 10.0.2.2");
        assert!(
            got.contains("    gateway: 10.0.1.2\n") && got.contains("  interface: shmif0\n"),
            "{got}"
        );
        assert!(got.contains("       mask: 255.255.255.0\n"), "{got}");

        // Forwarding is off: the router drops.
        assert_eq!(ok(&r, "sysctl -n net.inet.ip.forwarding").trim(), "0");
        let out = fails(&h1, "ping -c 1 -W 0.3 10.0.2.2", 2);
        assert_eq!(parse_summary(&out), Some((1, 0)), "{out}");
        assert_eq!(
            ok(&r, "sysctl -w net.inet.ip.forwarding=1"),
            "net.inet.ip.forwarding: 0 -> 1\n"
        );
        ok(&r, "sysctl net.inet6.ip6.forwarding=1");

        let out = ok(&h1, "ping -c 3 -i 0.05 -W 5 10.0.2.2");
        assert_eq!(parse_summary(&out), Some((3, 3)), "{out}");
        // One hop: the TTL is one less than the sender's.
        assert!(out.contains("ttl=63"), "{out}");
        let out = ok(&h3, "ping6 -c 3 -i 0.05 -W 5 2001:db8:1::1");
        assert_eq!(parse_summary(&out), Some((3, 3)), "{out}");
        tcp_transfer(
            &h3,
            &h1,
            "10.0.2.2:6001".parse().unwrap(),
            2 << 20,
            3,
            || {},
        );
        tcp_transfer(
            &h1,
            &h3,
            "[2001:db8:1::1]:6002".parse().unwrap(),
            1 << 20,
            4,
            || {},
        );
        let st = ok(&r, "netstat -s");
        assert!(
            stat_of(&st, "ip", "packets forwarded").unwrap() > 100,
            "{st}"
        );
        assert!(
            stat_of(&st, "ip6", "packets forwarded").unwrap() > 50,
            "{st}"
        );

        // Deleting the route cuts the path again.
        assert_eq!(
            ok(&h1, "route delete 10.0.2.0/24"),
            "delete net 10.0.2/24\n"
        );
        fails(&h1, "ping -c 1 -W 0.3 10.0.2.2", 1);
        let out = fails(&h1, "route delete 10.0.2.0/24", 1);
        assert!(out.starts_with("route delete 10.0.2/24: "), "{out}");
    });
}

#[test]
fn sysctl_reads_and_writes() {
    let k = Kernel::builder().net().hostname("one").boot().unwrap();
    let p = k.process().unwrap();
    assert_eq!(ok(&p, "sysctl kern.hostname"), "kern.hostname = one\n");
    assert_eq!(ok(&p, "sysctl -n kern.hostname"), "one\n");
    assert_eq!(
        ok(&p, "sysctl -w kern.hostname=two"),
        "kern.hostname: one -> two\n"
    );
    assert_eq!(rump::sys::uname(&p).unwrap().nodename, "two");
    let all = ok(&p, "sysctl -a");
    assert!(all.lines().any(|l| l == "kern.hostname = two"), "{all}");
    assert!(
        all.lines()
            .any(|l| l.starts_with("net.inet.ip.forwarding = ")),
        "{all}"
    );
    let net = ok(&p, "sysctl -a net.inet");
    assert!(net.lines().all(|l| l.starts_with("net.inet")), "{net}");
    // An integer parameter takes only an integer: a usage error, nothing changed.
    let out = fails(&p, "sysctl net.inet.ip.forwarding=yes", 2);
    assert!(out.contains("not an integer"), "{out}");
    assert_eq!(ok(&p, "sysctl -n net.inet.ip.forwarding").trim(), "0");
    let out = fails(&p, "sysctl no.such.name", 1);
    assert!(out.contains("no.such.name"), "{out}");
    fails(&p, "sysctl -w kern.hostname", 2);
    fails(&p, "sysctl", 2);
    // Writing needs root.
    let user = k.process_as(rump::Cred::user(1000, 1000)).unwrap();
    assert_eq!(ok(&user, "sysctl kern.hostname"), "kern.hostname = two\n");
    let out = fails(&user, "sysctl -w kern.hostname=three", 1);
    assert!(out.contains("Operation not permitted"), "{out}");
    let out = fails(&user, "ifconfig bus0 create", 1);
    assert_eq!(out, "ifconfig bus0 create: Operation not permitted");
}

#[test]
fn mount_umount_df() {
    let k = Kernel::builder().boot().unwrap();
    let p = k.process().unwrap();
    rump::fs::create_dir_all(&p, "/mnt/scratch").unwrap();
    let before = ok(&p, "mount");
    assert!(
        before.lines().any(|l| l.contains(" on / type tmpfs")),
        "{before}"
    );
    ok(&p, "mount -t tmpfs tmpfs /mnt/scratch");
    rump::fs::write(&p, "/mnt/scratch/f", vec![7u8; 300 << 10]).unwrap();
    let list = ok(&p, "mount");
    assert!(
        list.lines()
            .any(|l| l.ends_with("on /mnt/scratch type tmpfs (local)")),
        "{list}"
    );
    let sys = rump_cli::tools::Sys(&p);
    let mut out = Vec::new();
    rump_cli::tools::mount::df(&sys, &[], false, &mut out).unwrap();
    let df = String::from_utf8(out).unwrap();
    let row = df
        .lines()
        .find(|l| l.ends_with(" /mnt/scratch"))
        .unwrap_or_else(|| panic!("{df}"));
    let used: u64 = row.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!(used >= 300, "{row}");
    // Busy with an open file: refused, forced works.
    let f = rump::fs::File::open(&p, "/mnt/scratch/f").unwrap();
    let out = fails(&p, "umount /mnt/scratch", 1);
    assert_eq!(out, "umount /mnt/scratch: Device or resource busy");
    drop(f);
    ok(&p, "umount /mnt/scratch");
    assert!(!ok(&p, "mount").contains("/mnt/scratch"));
    ok(&p, "mount -r -t tmpfs tmpfs /mnt/scratch");
    assert!(ok(&p, "mount").contains("on /mnt/scratch type tmpfs (read-only, local)"));
    let e = rump::fs::write(&p, "/mnt/scratch/g", b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(rump::Errno::EROFS.raw()));
    ok(&p, "umount -f /mnt/scratch");
    let out = fails(&p, "mount -t nosuchfs x /mnt/scratch", 1);
    assert!(out.starts_with("mount x on /mnt/scratch: "), "{out}");
    fails(&p, "mount /only-one", 2);
    fails(&p, "mount -o frob tmpfs /mnt/scratch", 2);
    fails(&p, "umount", 2);
}

#[test]
fn wrong_arguments_get_usage_and_status_2() {
    let (_k, p) = kernel();
    for bad in [
        "ifconfig shmif0 inet 300.1.1.1",
        "ifconfig shmif0 mtu",
        "ifconfig shmif0 mtu lots",
        "ifconfig shmif0 frobnicate",
        "ifconfig -a shmif0",
        "ifconfig shmif0 inet6 10.0.0.1",
        "route",
        "route add",
        "route add 10.0.0.0/24",
        "route add 10.0.0.0/99 10.0.0.1",
        "route frob",
        "route get",
        "netstat -f ipx",
        "netstat -i -r",
        "arp",
        "arp -d",
        "arp 2001:db8::1",
        "ndp 10.0.0.1",
        "ping",
        "ping -c 0 10.0.0.1",
        "ping -i 0 10.0.0.1",
        "ping -s 70000 10.0.0.1",
        "ping 2001:db8::1",
        "ping6 10.0.0.1",
        "ping -c x 10.0.0.1",
        "sysctl",
        "umount",
        "nosuchtool",
    ] {
        let words: Vec<&str> = bad.split_whitespace().collect();
        let (code, out) = run_words(&p, &words);
        assert_eq!(code, 2, "`{bad}` gave {code}: {out}");
        assert!(!out.is_empty(), "`{bad}` said nothing");
    }
    // Kernel errors: status 1 and the errno's text.
    let out = fails(&p, "ifconfig nosuch0 up", 1);
    assert_eq!(out, "ifconfig nosuch0 up: No such device or address");
    let out = fails(&p, "ifconfig nosuch0", 1);
    assert!(out.ends_with("No such device or address"), "{out}");
    let out = fails(&p, "ifconfig lo0 destroy", 1);
    assert_eq!(out, "ifconfig lo0 destroy: Operation not permitted");
    let out = fails(&p, "ifconfig frob0 create", 1);
    assert_eq!(out, "ifconfig frob0 create: Invalid argument");
    let out = fails(&p, "route add -net 10.9.0.0/16 10.8.0.1", 1);
    assert_eq!(out, "route add 10.9/16: Network is unreachable");
    let out = fails(&p, "ping -c 1 10.77.0.1", 1);
    assert!(out.ends_with("Network is unreachable"), "{out}");
    ok(&p, "ifconfig bus0 create");
    let out = fails(&p, "ifconfig bus0 inet 127.0.0.1/8", 1);
    assert!(out.ends_with("File exists"), "{out}");
}

mod random {
    use super::*;
    use proptest::prelude::*;

    const WORDS: &[&str] = &[
        "ifconfig",
        "route",
        "netstat",
        "arp",
        "ndp",
        "ping",
        "ping6",
        "sysctl",
        "mount",
        "umount",
        "bus0",
        "shmif0",
        "lo0",
        "create",
        "destroy",
        "up",
        "down",
        "inet",
        "inet6",
        "mtu",
        "0",
        "65535",
        "9999999999",
        "linkstr",
        "-linkstr",
        "lladdr",
        "ff:ff:ff:ff:ff:ff",
        "10.0.0.1/24",
        "10.0.0.1",
        "::1",
        "fe80::1%lo0",
        "2001:db8::1/64",
        "alias",
        "-alias",
        "delete",
        "netmask",
        "prefixlen",
        "add",
        "get",
        "show",
        "default",
        "-inet6",
        "-net",
        "-host",
        "-ifp",
        "-iface",
        "-a",
        "-n",
        "-i",
        "-r",
        "-s",
        "-d",
        "-c",
        "1",
        "-W",
        "0.01",
        "-w",
        "-f",
        "kern.hostname",
        "kern.hostname=x",
        "net.inet.ip.forwarding=2",
        "=",
        "-t",
        "tmpfs",
        "/",
        "/mnt",
        "-o",
        "ro",
        "%",
        "",
        "-",
        "--",
        "-q",
    ];

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Random word salads never panic or hang; they succeed, or fail
        /// with status 1 (a kernel error) or 2 (bad arguments) and a message.
        #[test]
        fn random_commands(idx in proptest::collection::vec(0..WORDS.len(), 1..8)) {
            let (_k, p) = kernel();
            let words: Vec<&str> = idx.iter().map(|&i| WORDS[i]).collect();
            let (code, out) = run_words(&p, &words);
            prop_assert!(code == 0 || ((code == 1 || code == 2) && !out.is_empty()), "{words:?}: {code} {out}");
        }
    }
}
