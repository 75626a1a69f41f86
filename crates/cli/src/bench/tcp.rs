//! `rump bench tcp`: TCP through rump kernels against the host's loopback
//! TCP (std::net), measured in the same run with the same thread
//! placement: the sender and the receiver each on their own thread (or,
//! for shmif, in their own process), as real programs have them.
//!
//! Metrics: single-stream bulk throughput between two sockets of one
//! kernel (`lo0`), between two kernels on an in-process bus, and between
//! two processes on a shmif bus file; 1-byte request/response round trips
//! between two kernels on the bus (median and p99); and bus throughput
//! with 1,000 idle connections open. Rounds alternate ours and the host's
//! so both see the same machine noise; each figure is the median round.
//!
//! The shmif peer and the cross-process host baseline run in a child
//! process: this same binary, started as `rump bench tcp --peer MODE`.
//! `RUMP_BENCH_VERBOSE=1` prints every round on stderr; `--set NAME=VALUE`
//! changes a stack parameter (`net.inet.tcp.spin_ns`, `...recvspace`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use rump::net::{TcpListener, TcpStream};
use rump::{Kernel, Process};

use super::report::{median, Metric, Unit};

/// Options of `rump bench tcp`.
#[derive(clap::Args)]
pub struct TcpArgs {
    /// MiB sent per bulk round.
    #[arg(long, default_value_t = 512)]
    mb: usize,
    /// Rounds per measurement (median reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Round trips per latency measurement.
    #[arg(long, default_value_t = 20_000)]
    round_trips: usize,
    /// Idle connections held open for the idle-connections figure.
    #[arg(long, default_value_t = 1000)]
    idle: usize,
    /// MTU of the bus and shmif interfaces. In-memory links carry frames
    /// as large as the host's loopback does (its MTU is 65536).
    #[arg(long, default_value_t = 65000)]
    mtu: u32,
    /// Overrides of the stack's sysctl parameters (`name=value`), for
    /// experiments (`net.inet.tcp.spin_ns=0`).
    #[arg(long = "set")]
    set: Vec<String>,
    /// Run only the metrics whose names contain this.
    #[arg(long)]
    only: Option<String>,
    /// Internal: run as the peer process (`shmif-sink`, `host-sink`).
    #[arg(long, hide = true)]
    peer: Option<String>,
    /// Internal: the shmif bus file of a peer.
    #[arg(long, hide = true)]
    bus: Option<String>,
}

const CHUNK: usize = 256 << 10;
const PORT: u16 = 5001;

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, last)
}

pub fn run(a: TcpArgs) -> anyhow::Result<()> {
    if let Some(mode) = a.peer.clone() {
        return peer(&mode, &a);
    }
    let want = |m: &str| a.only.as_deref().is_none_or(|o| m.contains(o));
    let boot = || -> anyhow::Result<(Kernel, Process)> {
        let k = Kernel::builder().net().boot()?;
        let p = k.process()?;
        for kv in &a.set {
            let (name, v) = kv.split_once('=').context("--set NAME=VALUE")?;
            let v: i64 = v.parse().context("--set value")?;
            rump::sys::sysctl_set(&p, name, rump::kern::sysctl::SysctlValue::Int(v))?;
        }
        Ok((k, p))
    };
    let bytes = a.mb << 20;
    let data = Arc::new(pattern(bytes.min(CHUNK * 4)));

    // Loopback: two sockets of one kernel.
    if want("tcp_loopback_bulk_gbps") {
        let (k, p) = boot()?;
        let dst = SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT);
        let (ours, host) = alternate(a.rounds, || {
            Ok((
                rump_bulk(&p, &p, dst, bytes, &data)?,
                host_bulk(bytes, &data)?,
            ))
        })?;
        gbps("tcp_loopback_bulk_gbps", ours, host);
        k.halt();
    }

    // Two kernels on an in-process bus.
    let (ka, pa, kb, pb) = bus_pair(a.mtu, &boot)?;
    let dst = SocketAddrV4::new(ip(2), PORT);
    if want("tcp_bus_bulk_gbps") {
        let (ours, host) = alternate(a.rounds, || {
            Ok((
                rump_bulk(&pa, &pb, dst, bytes, &data)?,
                host_bulk(bytes, &data)?,
            ))
        })?;
        gbps("tcp_bus_bulk_gbps", ours, host);
    }

    // Round trips on the bus.
    if want("tcp_bus_rtt_ns") {
        let mut ours = rump_rtt(&pa, &pb, SocketAddrV4::new(ip(2), PORT + 1), a.round_trips)?;
        let mut host = host_rtt(a.round_trips)?;
        let (ours, host) = (percentiles(&mut ours), percentiles(&mut host));
        ns("tcp_bus_rtt_ns_median", ours.0, host.0);
        ns("tcp_bus_rtt_ns_p99", ours.1, host.1);
    }

    // Bulk on the bus with idle connections open (on both sides of the
    // comparison).
    if want("tcp_bus_bulk_1000_idle_gbps") {
        let _idle = rump_idle(&pa, &pb, SocketAddrV4::new(ip(2), PORT + 2), a.idle)?;
        let _host_idle = host_idle(a.idle)?;
        let (ours, host) = alternate(a.rounds, || {
            Ok((
                rump_bulk(&pa, &pb, dst, bytes, &data)?,
                host_bulk(bytes, &data)?,
            ))
        })?;
        gbps("tcp_bus_bulk_1000_idle_gbps", ours, host);
    }
    ka.halt();
    kb.halt();

    // Two processes on a shmif bus file; the host baseline between two
    // processes too.
    if want("tcp_shmif_bulk_gbps") {
        let dir = tempfile::tempdir()?;
        let bus = dir.path().join("bus");
        let bus = bus.to_str().context("bus path")?.to_string();
        let mut sink = Peer::spawn("shmif-sink", Some(&bus), a.mtu)?;
        let mut host_sink = Peer::spawn("host-sink", None, a.mtu)?;
        let (k, p) = shmif_kernel(&bus, 1, a.mtu)?;
        let shmif_dst = SocketAddrV4::new(ip(2), sink.port);
        let host_dst = SocketAddrV4::new(Ipv4Addr::LOCALHOST, host_sink.port);
        // The peer may still be resolving ARP: a short round warms up.
        rump_send(&p, shmif_dst, 1 << 20, &data)?;
        host_send(host_dst, 1 << 20, &data)?;
        let (ours, host) = alternate(a.rounds, || {
            Ok((
                rump_send(&p, shmif_dst, bytes, &data)?,
                host_send(host_dst, bytes, &data)?,
            ))
        })?;
        gbps("tcp_shmif_bulk_gbps", ours, host);
        k.halt();
        sink.stop();
        host_sink.stop();
    }
    Ok(())
}

fn gbps(metric: &str, ours: f64, host: f64) {
    Metric {
        bench: "tcp",
        metric,
        value: ours,
        unit: Unit::Gbps,
        baseline: Some(("host loopback TCP (std::net)", host)),
    }
    .print();
}

fn ns(metric: &str, ours: f64, host: f64) {
    Metric {
        bench: "tcp",
        metric,
        value: ours,
        unit: Unit::Ns,
        baseline: Some(("host loopback TCP (std::net)", host)),
    }
    .print();
}

/// Runs `round` `n` times; the medians of its two results.
fn alternate(
    n: usize,
    mut round: impl FnMut() -> anyhow::Result<(f64, f64)>,
) -> anyhow::Result<(f64, f64)> {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..n.max(1) {
        let (x, y) = round()?;
        if std::env::var_os("RUMP_BENCH_VERBOSE").is_some() {
            eprintln!("round: ours {x:.2} host {y:.2}");
        }
        a.push(x);
        b.push(y);
    }
    Ok((median(&mut a), median(&mut b)))
}

fn pattern(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn rate(bytes: usize, d: Duration) -> f64 {
    bytes as f64 * 8.0 / d.as_secs_f64() / 1e9
}

fn percentiles(s: &mut [f64]) -> (f64, f64) {
    s.sort_by(|a, b| a.total_cmp(b));
    let p99 = s[(s.len() * 99 / 100).min(s.len() - 1)];
    (median(s), p99)
}

/// Writes `bytes` from `data` repeatedly.
fn write_n(mut w: impl Write, bytes: usize, data: &[u8]) -> std::io::Result<()> {
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK).min(data.len());
        w.write_all(&data[..n])?;
        left -= n;
    }
    Ok(())
}

/// Reads to end of stream, then acknowledges with one byte.
fn sink(mut s: impl Read + Write) -> std::io::Result<usize> {
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    s.write_all(&[1])?;
    Ok(total)
}

fn bus_pair(
    mtu: u32,
    boot: &dyn Fn() -> anyhow::Result<(Kernel, Process)>,
) -> anyhow::Result<(Kernel, Process, Kernel, Process)> {
    let bus = rump::net::unique_bus_name("bench");
    let (ka, pa) = boot()?;
    let (kb, pb) = boot()?;
    for (p, host) in [(&pa, 1), (&pb, 2)] {
        rump::sys::if_create(p, "bus0")?;
        rump::sys::if_set_link(p, "bus0", &bus)?;
        rump::sys::if_set_mtu(p, "bus0", mtu)?;
        rump::sys::if_add_addr(p, "bus0", ip(host).octets(), 24)?;
        rump::sys::if_set_up(p, "bus0", true)?;
    }
    Ok((ka, pa, kb, pb))
}

fn shmif_kernel(bus: &str, host: u8, mtu: u32) -> anyhow::Result<(Kernel, Process)> {
    let k = Kernel::builder().net().boot()?;
    let p = k.process()?;
    rump::sys::if_create(&p, "shmif0")?;
    rump::sys::if_set_link(&p, "shmif0", bus)?;
    rump::sys::if_set_mtu(&p, "shmif0", mtu)?;
    rump::sys::if_add_addr(&p, "shmif0", ip(host).octets(), 24)?;
    rump::sys::if_set_up(&p, "shmif0", true)?;
    Ok((k, p))
}

/// Bulk from a socket of `pa` to one of `pb`, each on its own thread.
fn rump_bulk(
    pa: &Process,
    pb: &Process,
    dst: SocketAddrV4,
    bytes: usize,
    data: &Arc<Vec<u8>>,
) -> anyhow::Result<f64> {
    let l = TcpListener::bind(pb, dst)?;
    let receiver = std::thread::spawn(move || -> std::io::Result<usize> {
        let (s, _) = l.accept()?;
        sink(s)
    });
    let r = rump_send(pa, dst, bytes, data)?;
    let got = receiver
        .join()
        .map_err(|_| anyhow!("receiver panicked"))??;
    if got != bytes {
        bail!("received {got} of {bytes} bytes");
    }
    Ok(r)
}

/// Sends `bytes` to a sink at `dst` on a new thread; throughput until
/// the sink's acknowledgement.
fn rump_send(
    p: &Process,
    dst: SocketAddrV4,
    bytes: usize,
    data: &Arc<Vec<u8>>,
) -> anyhow::Result<f64> {
    let p = p.clone();
    let data = data.clone();
    std::thread::spawn(move || -> anyhow::Result<f64> {
        let mut c = TcpStream::connect(&p, dst)?;
        let t = Instant::now();
        write_n(&c, bytes, &data)?;
        c.shutdown(std::net::Shutdown::Write)?;
        let mut ack = [0u8; 1];
        c.read_exact(&mut ack)?;
        Ok(rate(bytes, t.elapsed()))
    })
    .join()
    .map_err(|_| anyhow!("sender panicked"))?
}

fn host_bulk(bytes: usize, data: &Arc<Vec<u8>>) -> anyhow::Result<f64> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let dst = match l.local_addr()? {
        std::net::SocketAddr::V4(a) => a,
        _ => bail!("not IPv4"),
    };
    let receiver = std::thread::spawn(move || -> std::io::Result<usize> {
        let (s, _) = l.accept()?;
        sink(s)
    });
    let r = host_send(dst, bytes, data)?;
    receiver
        .join()
        .map_err(|_| anyhow!("receiver panicked"))??;
    Ok(r)
}

fn host_send(dst: SocketAddrV4, bytes: usize, data: &Arc<Vec<u8>>) -> anyhow::Result<f64> {
    let data = data.clone();
    std::thread::spawn(move || -> anyhow::Result<f64> {
        let mut c = std::net::TcpStream::connect(dst)?;
        let t = Instant::now();
        write_n(&c, bytes, &data)?;
        c.shutdown(std::net::Shutdown::Write)?;
        let mut ack = [0u8; 1];
        c.read_exact(&mut ack)?;
        Ok(rate(bytes, t.elapsed()))
    })
    .join()
    .map_err(|_| anyhow!("sender panicked"))?
}

/// 1-byte ping-pong: the client on this thread, the echo on another.
fn rump_rtt(pa: &Process, pb: &Process, dst: SocketAddrV4, n: usize) -> anyhow::Result<Vec<f64>> {
    let l = TcpListener::bind(pb, dst)?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = l.accept()?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 1];
        while s.read(&mut b)? == 1 {
            s.write_all(&b)?;
        }
        Ok(())
    });
    let mut c = TcpStream::connect(pa, dst)?;
    c.set_nodelay(true)?;
    let samples = ping_pong(&mut c, n)?;
    drop(c);
    echo.join().map_err(|_| anyhow!("echo panicked"))??;
    Ok(samples)
}

fn host_rtt(n: usize) -> anyhow::Result<Vec<f64>> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let dst = l.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = l.accept()?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 1];
        while s.read(&mut b)? == 1 {
            s.write_all(&b)?;
        }
        Ok(())
    });
    let mut c = std::net::TcpStream::connect(dst)?;
    c.set_nodelay(true)?;
    let samples = ping_pong(&mut c, n)?;
    drop(c);
    echo.join().map_err(|_| anyhow!("echo panicked"))??;
    Ok(samples)
}

fn ping_pong(mut c: impl Read + Write, n: usize) -> anyhow::Result<Vec<f64>> {
    let mut b = [7u8; 1];
    for _ in 0..n / 10 + 100 {
        c.write_all(&b)?;
        c.read_exact(&mut b)?;
    }
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.write_all(&b)?;
        c.read_exact(&mut b)?;
        samples.push(t.elapsed().as_nanos() as f64);
    }
    Ok(samples)
}

/// `n` connections from `pa` to `pb`, established and left idle.
fn rump_idle(
    pa: &Process,
    pb: &Process,
    at: SocketAddrV4,
    n: usize,
) -> anyhow::Result<Vec<TcpStream>> {
    let l = TcpListener::bind_with_backlog(pb, at, n as i32 + 16)?;
    let mut v = Vec::with_capacity(2 * n);
    for _ in 0..n {
        v.push(TcpStream::connect(pa, at)?);
        v.push(l.accept()?.0);
    }
    Ok(v)
}

fn host_idle(n: usize) -> anyhow::Result<Vec<std::net::TcpStream>> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let at = l.local_addr()?;
    let mut v = Vec::with_capacity(2 * n);
    for _ in 0..n {
        v.push(std::net::TcpStream::connect(at)?);
        v.push(l.accept()?.0);
    }
    Ok(v)
}

/// A peer process: this binary as `rump bench tcp --peer MODE`.
struct Peer {
    child: Child,
    port: u16,
}

impl Peer {
    fn spawn(mode: &str, bus: Option<&str>, mtu: u32) -> anyhow::Result<Peer> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["bench", "tcp", "--peer", mode, "--mtu", &mtu.to_string()]);
        if let Some(b) = bus {
            cmd.args(["--bus", b]);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let out = child.stdout.take().context("peer stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line)?;
        let port = line
            .trim()
            .strip_prefix("READY ")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| anyhow!("peer said {line:?}"))?;
        Ok(Peer { child, port })
    }

    fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer side: sinks connections until its standard input closes.
fn peer(mode: &str, a: &TcpArgs) -> anyhow::Result<()> {
    std::thread::spawn(|| {
        let mut b = [0u8; 1];
        while std::io::stdin()
            .read(&mut b)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        std::process::exit(0);
    });
    match mode {
        "shmif-sink" => {
            let bus = a.bus.as_deref().context("--bus")?;
            let (_k, p) = shmif_kernel(bus, 2, a.mtu)?;
            let l = TcpListener::bind(&p, SocketAddrV4::new(ip(2), PORT))?;
            println!("READY {PORT}");
            loop {
                let (s, _) = l.accept()?;
                std::thread::spawn(move || sink(s));
            }
        }
        "host-sink" => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("READY {}", l.local_addr()?.port());
            loop {
                let (s, _) = l.accept()?;
                std::thread::spawn(move || sink(s));
            }
        }
        other => bail!("unknown peer mode {other}"),
    }
}
