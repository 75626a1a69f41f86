//! shmif: kernels in several processes on one Ethernet bus in a shared
//! file. The cross-process test starts copies of this test binary as the
//! other members (the `shmif_member` entry, told its role through the
//! environment): an echo server, clients that check what comes back, and a
//! sender that is SIGKILLed mid-transfer, after which the others carry on.
//! The server listens on `[::]`; some clients come over IPv4, some over
//! IPv6 (neighbour discovery across processes).
//! Every wait is bounded, so a wedged bus fails the test instead of hanging
//! it, and a member ends when the test process does (its stdin closes), so
//! a failed run leaves no process behind.

mod net_util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use net_util::*;
use rump::net::{SockOpt, TcpListener, TcpStream};
use rump::sys;

const PORT: u16 = 7;
/// The longest an exchange may stall before it counts as failed.
const STALL: Duration = Duration::from_secs(60);

fn shmif_kernel(bus: &str, host: u8) -> (rump::Kernel, rump::Process) {
    let (k, p) = net_kernel();
    sys::if_create(&p, "shmif0").unwrap();
    sys::if_set_link(&p, "shmif0", bus).unwrap();
    sys::if_add_addr(&p, "shmif0", ip(host).octets(), 24).unwrap();
    sys::if_add_addr(&p, "shmif0", ip6(host), 64).unwrap();
    sys::if_set_up(&p, "shmif0", true).unwrap();
    (k, p)
}

/// Member `host`'s IPv6 address on the bus.
fn ip6(host: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, host as u16)
}

/// Echoes every connection back, a thread each, until the process ends.
/// One dual-stack listener takes IPv4 and IPv6 clients.
fn echo_server(p: &rump::Process) -> ! {
    let l = TcpListener::bind(p, SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), PORT)).unwrap();
    println!("ROLE: READY");
    loop {
        let (s, _) = l.accept().unwrap();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 64 << 10];
            loop {
                match (&s).read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if (&s).write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                }
            }
        });
    }
}

/// Sends `len` bytes to the echo server (member 2, over IPv6 if `v6`) and
/// checks what comes back.
fn echo_client(p: &rump::Process, seed: u64, len: usize, v6: bool) -> Result<(), String> {
    let to = if v6 {
        SocketAddr::new(IpAddr::V6(ip6(2)), PORT)
    } else {
        addr(2, PORT)
    };
    let c = TcpStream::connect(p, to).map_err(|e| format!("connect: {e}"))?;
    c.set_read_timeout(Some(STALL))
        .map_err(|e| format!("SO_RCVTIMEO: {e}"))?;
    sys::setsockopt(p, c.fd(), SockOpt::SndTimeo(Some(STALL.as_nanos() as u64)))
        .map_err(|e| format!("SO_SNDTIMEO: {e}"))?;
    let data = pattern(seed, len);
    let c = std::sync::Arc::new(c);
    let c2 = c.clone();
    let w = std::thread::spawn(move || {
        (&*c2)
            .write_all(&data)
            .map(|_| c2.shutdown(std::net::Shutdown::Write))
    });
    let mut back = Vec::new();
    (&*c)
        .read_to_end(&mut back)
        .map_err(|e| format!("read: {e}"))?;
    w.join()
        .unwrap()
        .map_err(|e| format!("write: {e}"))?
        .map_err(|e| format!("shutdown: {e}"))?;
    if fnv(&back) != fnv(&pattern(seed, len)) || back.len() != len {
        return Err(format!("echo mismatch: {} bytes back", back.len()));
    }
    Ok(())
}

/// The other members of the bus (and, run on its own, the same exchange
/// between two kernels of this process on one bus file).
#[test]
fn shmif_member() {
    let role = std::env::var("RUMP_NET_SHMIF_ROLE").unwrap_or_default();
    let bus = std::env::var("RUMP_NET_SHMIF_BUS").unwrap_or_default();
    let host: u8 = std::env::var("RUMP_NET_SHMIF_HOST")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(0);
    if !role.is_empty() {
        exit_with_parent();
    }
    match role.as_str() {
        "server" => {
            let (_k, p) = shmif_kernel(&bus, host);
            echo_server(&p);
        }
        "client" => {
            let (_k, p) = shmif_kernel(&bus, host);
            // Members 3, 7, ... speak IPv6, the others IPv4.
            match echo_client(&p, host as u64, 4 << 20, host % 4 == 3) {
                Ok(()) => println!("ROLE: OK"),
                Err(e) => println!("ROLE: FAIL {e}"),
            }
        }
        "streamer" => {
            let (_k, p) = shmif_kernel(&bus, host);
            let c = TcpStream::connect(&p, addr(2, PORT)).unwrap();
            let c2 = std::sync::Arc::new(c);
            let r = c2.clone();
            std::thread::spawn(move || {
                let mut b = vec![0u8; 1 << 16];
                while (&*r).read(&mut b).map(|n| n > 0).unwrap_or(false) {}
            });
            let chunk = pattern(9, 1 << 16);
            let mut sent = 0usize;
            loop {
                (&*c2).write_all(&chunk).unwrap();
                sent += chunk.len();
                if sent == 4 << 20 {
                    println!("ROLE: STREAMING");
                }
            }
        }
        _ => {
            // Standalone: two kernels of this process share a bus file.
            within(60, || {
                let dir = tempfile::tempdir().unwrap();
                let bus = dir.path().join("bus");
                let bus = bus.to_str().unwrap();
                let (_ks, ps) = shmif_kernel(bus, 2);
                let (_kc, pc) = shmif_kernel(bus, 3);
                std::thread::spawn(move || echo_server(&ps));
                let deadline = Instant::now() + Duration::from_secs(10);
                for v6 in [false, true] {
                    loop {
                        match echo_client(&pc, 3, 2 << 20, v6) {
                            Ok(()) => break,
                            Err(e) if Instant::now() < deadline => {
                                let _ = e;
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            Err(e) => panic!("{e} (IPv6: {v6})"),
                        }
                    }
                }
                let st = sys::if_list(&pc).unwrap();
                let i = st.iter().find(|i| i.name == "shmif0").unwrap();
                assert_eq!((i.kind.as_str(), i.link.as_str()), ("shmif", bus));
                assert!(i.stats.rx_packets > 100 && i.stats.tx_packets > 100);
            });
        }
    }
}

/// Ends this member process when the test process that started it goes
/// away (its end of our stdin closes), whether it finished, failed or was
/// killed.
fn exit_with_parent() {
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(2);
    });
}

struct Member {
    child: Child,
    lines: std::sync::mpsc::Receiver<String>,
    /// Held open for the member's lifetime (see [`exit_with_parent`]).
    _stdin: ChildStdin,
}

impl Member {
    fn spawn(role: &str, bus: &str, host: u8) -> Member {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "shmif_member", "--nocapture", "--test-threads=1"])
            .env("RUMP_NET_SHMIF_ROLE", role)
            .env("RUMP_NET_SHMIF_BUS", bus)
            .env("RUMP_NET_SHMIF_HOST", host.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn member");
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                // libtest may have printed "test shmif_member ... " first.
                if let Some(i) = line.find("ROLE: ") {
                    let _ = tx.send(line[i + 6..].to_string());
                }
            }
        });
        Member {
            child,
            lines: rx,
            _stdin: stdin,
        }
    }

    fn expect(&self, what: &str, secs: u64) -> String {
        let l = self
            .lines
            .recv_timeout(Duration::from_secs(secs))
            .unwrap_or_else(|_| panic!("member did not say {what} in {secs} s"));
        assert!(l.starts_with(what), "member said {l:?}, expected {what}");
        l
    }

    /// Waits for the member to exit, at most `secs` seconds.
    fn wait(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().expect("wait for member") {
                return st;
            }
            assert!(Instant::now() < deadline, "member did not exit in {secs} s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.kill();
    }
}

#[test]
fn shmif_across_processes_survives_a_sigkill() {
    within(240, || {
        let dir = tempfile::tempdir().unwrap();
        let bus = dir.path().join("bus");
        let bus = bus.to_str().unwrap().to_string();
        let server = Member::spawn("server", &bus, 2);
        server.expect("READY", 60);
        // A second process: echo with checksum.
        let mut c1 = Member::spawn("client", &bus, 3);
        c1.expect("OK", 120);
        assert!(c1.wait(60).success());
        // A third process joins and streams; it is SIGKILLed mid-transfer.
        let mut streamer = Member::spawn("streamer", &bus, 4);
        streamer.expect("STREAMING", 120);
        streamer.kill();
        // The bus carries on: a fourth process, and this process too.
        let mut c2 = Member::spawn("client", &bus, 5);
        c2.expect("OK", 120);
        assert!(c2.wait(60).success());
        let (_k, p) = shmif_kernel(&bus, 6);
        echo_client(&p, 6, 1 << 20, false).unwrap();
        drop(server);
    });
}
