//! `rump bench tcp`: TCP through rump kernels against the host's loopback
//! TCP (std::net), measured in the same run with the same thread
//! placement: the sender and the receiver each on their own thread (or,
//! for shmif, in their own process), as real programs have them.
//!
//! Metrics, on three paths: between two sockets of one kernel (`lo0`),
//! between two kernels on an in-process bus, and between two processes
//! on a shmif bus file: single-stream bulk throughput, and 1-byte
//! request/response round trips (median and p99). Also bus throughput
//! with 1,000 idle connections open, in runs taking turns with the plain
//! bus runs, and bus round trips (median) with two CPU-bound host
//! threads running throughout (`--no-loaded` leaves this out). Rounds
//! alternate ours and the host's so both see the same machine noise;
//! each figure is the median round (round trips: the percentiles of all
//! samples, taken in slices that take turns).
//!
//! The shmif peer and the cross-process host baseline run in a child
//! process: this same binary, started as `rump bench tcp --peer MODE`
//! (`shmif-sink`, `shmif-echo`, `host-sink`, `host-echo`).
//! `RUMP_BENCH_VERBOSE=1` prints every round on stderr; `--set NAME=VALUE`
//! changes a stack parameter (`net.socket.spin_max_ns`, `...recvspace`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
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
    /// experiments (`net.socket.spin_max_ns=0`).
    #[arg(long = "set")]
    set: Vec<String>,
    /// Leave out the bus round trips under load (two busy host threads),
    /// which run by default.
    #[arg(long = "no-loaded", action = clap::ArgAction::SetFalse)]
    loaded: bool,
    /// Run only the metrics whose names contain this.
    #[arg(long)]
    only: Option<String>,
    /// Internal: run as the peer process (`shmif-sink`, `shmif-echo`,
    /// `host-sink`, `host-echo`).
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
    // A section runs when `--only` selects any of its metrics.
    let want = |metrics: &[&str]| {
        metrics
            .iter()
            .any(|m| a.only.as_deref().is_none_or(|o| m.contains(o)))
    };
    let boot = || -> anyhow::Result<(Kernel, Process)> {
        let k = Kernel::builder().net().boot()?;
        let p = k.process()?;
        for kv in &a.set {
            let (name, v) = kv.split_once('=').context("--set NAME=VALUE")?;
            let v: i64 = v.parse().context("--set value")?;
            rump::sys::sysctl_set(&p, name, rump::SysctlValue::Int(v))?;
        }
        Ok((k, p))
    };
    let bytes = a.mb << 20;
    let data = Arc::new(pattern(bytes.min(CHUNK * 4)));

    // Loopback: two sockets of one kernel.
    if want(&["tcp_loopback_bulk_gbps"]) {
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

    // Bulk between two kernels on an in-process bus, without and with
    // idle connections open (on both sides of the comparison). The two
    // figures are meant to be compared with each other, so their runs
    // take turns (in ABBA order, against drift) and each run gets a
    // freshly booted pair: machine noise falls on both alike, and the
    // pairs differ only in the idle connections, not in what earlier
    // runs left behind. Each figure is the median of its runs.
    let is_plain_wanted = want(&["tcp_bus_bulk_gbps"]);
    let is_idle_wanted = want(&["tcp_bus_bulk_1000_idle_gbps"]);
    if is_plain_wanted || is_idle_wanted {
        let (mut plain, mut idle) = (Rounds::default(), Rounds::default());
        for round in 0..a.rounds.max(1) {
            let order = if round % 2 == 0 {
                [false, true]
            } else {
                [true, false]
            };
            for has_idle in order {
                if has_idle && is_idle_wanted {
                    idle.push("idle round", bus_bulk(&a, &boot, bytes, &data, a.idle)?);
                } else if !has_idle && is_plain_wanted {
                    plain.push("plain round", bus_bulk(&a, &boot, bytes, &data, 0)?);
                }
            }
        }
        if is_plain_wanted {
            let (ours, host) = plain.medians();
            gbps("tcp_bus_bulk_gbps", ours, host);
        }
        if is_idle_wanted {
            let (ours, host) = idle.medians();
            gbps("tcp_bus_bulk_1000_idle_gbps", ours, host);
        }
    }

    // 1-byte round trips within one kernel and between two on the bus,
    // the client on this thread and the echo on its own. The host's
    // workload is the same for both paths (two threads of this process
    // over 127.0.0.1), so it is measured once, in slices taking turns
    // with both of ours, and is the baseline of both.
    let is_lo_rtt_wanted = want(&["tcp_loopback_rtt_ns_median", "tcp_loopback_rtt_ns_p99"]);
    let is_bus_rtt_wanted = want(&["tcp_bus_rtt_ns_median", "tcp_bus_rtt_ns_p99"]);
    if is_lo_rtt_wanted || is_bus_rtt_wanted {
        let mut kernels = Vec::new();
        let mut links = Vec::new();
        let mut names = Vec::new();
        if is_lo_rtt_wanted {
            let (k, p) = boot()?;
            let dst = SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT + 1);
            links.push(rump_echo(&p, &p, dst)?);
            names.push("tcp_loopback_rtt_ns");
            kernels.push(k);
        }
        if is_bus_rtt_wanted {
            let (ka, pa, kb, pb) = bus_pair(a.mtu, &boot)?;
            links.push(rump_echo(&pa, &pb, SocketAddrV4::new(ip(2), PORT + 1))?);
            names.push("tcp_bus_rtt_ns");
            kernels.extend([ka, kb]);
        }
        links.push(host_echo()?);
        let mut samples = round_trips(&mut links, a.rounds, a.round_trips)?;
        for link in links {
            link.close()?;
        }
        for k in &kernels {
            k.halt();
        }
        let host = percentiles(samples.last_mut().context("host samples")?);
        for (name, ours) in names.iter().zip(&mut samples) {
            let ours = percentiles(ours);
            ns(&format!("{name}_median"), ours.0, host.0);
            ns(&format!("{name}_p99"), ours.1, host.1);
        }
    }

    // Bus round trips while two CPU-bound host threads run throughout
    // (this process's threads competing for the cores with their own
    // work, as in a busy application), against the host's loopback
    // round trips under the same load, in slices taking turns.
    if a.loaded && want(&["tcp_bus_rtt_ns_median_loaded"]) {
        let load = Load::start(2);
        let (ka, pa, kb, pb) = bus_pair(a.mtu, &boot)?;
        let mut links = vec![
            rump_echo(&pa, &pb, SocketAddrV4::new(ip(2), PORT + 1))?,
            host_echo()?,
        ];
        let samples = round_trips(&mut links, a.rounds, a.round_trips)?;
        for link in links {
            link.close()?;
        }
        ka.halt();
        kb.halt();
        drop(load);
        let [mut ours, mut host] = samples
            .try_into()
            .map_err(|_| anyhow!("samples of two links"))?;
        Metric {
            bench: "tcp",
            metric: "tcp_bus_rtt_ns_median_loaded",
            value: median(&mut ours),
            unit: Unit::Ns,
            baseline: Some(("host loopback (loaded)", median(&mut host))),
        }
        .print();
    }

    // Two processes on a shmif bus file; the host baseline between two
    // processes too.
    if want(&["tcp_shmif_bulk_gbps"]) {
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

    // Round trips between two processes on a shmif bus file, the echo in
    // the peer process. Here the host's echo is in a peer process as
    // well, a different workload from the in-process one above (a
    // process switch, not a thread switch, per round trip), so it is
    // measured again, taking turns with ours.
    if want(&["tcp_shmif_rtt_ns_median", "tcp_shmif_rtt_ns_p99"]) {
        let dir = tempfile::tempdir()?;
        let bus = dir.path().join("bus");
        let bus = bus.to_str().context("bus path")?.to_string();
        let mut shmif_echo = Peer::spawn("shmif-echo", Some(&bus), a.mtu)?;
        let mut host_echo = Peer::spawn("host-echo", None, a.mtu)?;
        let (k, p) = shmif_kernel(&bus, 1, a.mtu)?;
        let shmif_client = TcpStream::connect(&p, SocketAddrV4::new(ip(2), shmif_echo.port))?;
        shmif_client.set_nodelay(true)?;
        let host_client = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, host_echo.port))?;
        host_client.set_nodelay(true)?;
        let mut links = [
            EchoLink::remote(shmif_client),
            EchoLink::remote(host_client),
        ];
        let [mut ours, mut host] = round_trips(&mut links, a.rounds, a.round_trips)?
            .try_into()
            .map_err(|_| anyhow!("samples of two links"))?;
        for link in links {
            link.close()?;
        }
        k.halt();
        shmif_echo.stop();
        host_echo.stop();
        let (ours, host) = (percentiles(&mut ours), percentiles(&mut host));
        ns("tcp_shmif_rtt_ns_median", ours.0, host.0);
        ns("tcp_shmif_rtt_ns_p99", ours.1, host.1);
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

/// Host threads in a CPU-bound loop until dropped.
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 1u64;
                    while !stop.load(Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Runs `round` `n` times; the medians of its two results.
fn alternate(
    n: usize,
    mut round: impl FnMut() -> anyhow::Result<(f64, f64)>,
) -> anyhow::Result<(f64, f64)> {
    let mut rounds = Rounds::default();
    for _ in 0..n.max(1) {
        rounds.push("round", round()?);
    }
    Ok(rounds.medians())
}

/// Results of rounds: ours and the host's.
#[derive(Default)]
struct Rounds {
    ours: Vec<f64>,
    host: Vec<f64>,
}

impl Rounds {
    fn push(&mut self, label: &str, (ours, host): (f64, f64)) {
        if std::env::var_os("RUMP_BENCH_VERBOSE").is_some() {
            eprintln!("{label}: ours {ours:.2} host {host:.2}");
        }
        self.ours.push(ours);
        self.host.push(host);
    }

    fn medians(&mut self) -> (f64, f64) {
        (median(&mut self.ours), median(&mut self.host))
    }
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

/// One bulk run on a freshly booted pair of kernels on a bus, with
/// `idle` connections established and left idle on it and on the host
/// (`idle` may be 0): ours and the host's throughput.
fn bus_bulk(
    a: &TcpArgs,
    boot: &dyn Fn() -> anyhow::Result<(Kernel, Process)>,
    bytes: usize,
    data: &Arc<Vec<u8>>,
    idle: usize,
) -> anyhow::Result<(f64, f64)> {
    let (ka, pa, kb, pb) = bus_pair(a.mtu, boot)?;
    let dst = SocketAddrV4::new(ip(2), PORT);
    let (_idle, _host_idle) = if idle > 0 {
        let at = SocketAddrV4::new(ip(2), PORT + 2);
        (rump_idle(&pa, &pb, at, idle)?, host_idle(idle)?)
    } else {
        (Vec::new(), Vec::new())
    };
    // A short round resolves ARP and warms the new kernels up.
    rump_bulk(&pa, &pb, dst, 1 << 20, data)?;
    let ours = rump_bulk(&pa, &pb, dst, bytes, data)?;
    let host = host_bulk(bytes, data)?;
    // Halted first, the kernels need no close handshake for each idle
    // connection when `_idle` drops.
    ka.halt();
    kb.halt();
    Ok((ours, host))
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

/// The client end of a 1-byte echo, and the echo's thread when it runs
/// in this process.
struct EchoLink {
    client: Box<dyn Duplex>,
    server: Option<JoinHandle<std::io::Result<()>>>,
}

/// A connected stream, for the client end of an echo.
trait Duplex: Read + Write {}

impl<T: Read + Write> Duplex for T {}

impl EchoLink {
    /// A client of an echo in another process.
    fn remote(client: impl Duplex + 'static) -> EchoLink {
        EchoLink {
            client: Box::new(client),
            server: None,
        }
    }

    /// Closes the client end, which ends the echo, and waits for its
    /// thread.
    fn close(self) -> anyhow::Result<()> {
        drop(self.client);
        if let Some(server) = self.server {
            server.join().map_err(|_| anyhow!("echo panicked"))??;
        }
        Ok(())
    }
}

/// An echo on a socket of `pb` on its own thread, and a client of it
/// from `pa`.
fn rump_echo(pa: &Process, pb: &Process, dst: SocketAddrV4) -> anyhow::Result<EchoLink> {
    let l = TcpListener::bind(pb, dst)?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (s, _) = l.accept()?;
        s.set_nodelay(true)?;
        echo(s)
    });
    let c = TcpStream::connect(pa, dst)?;
    c.set_nodelay(true)?;
    Ok(EchoLink {
        client: Box::new(c),
        server: Some(server),
    })
}

/// The same over the host's loopback.
fn host_echo() -> anyhow::Result<EchoLink> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let dst = l.local_addr()?;
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let (s, _) = l.accept()?;
        s.set_nodelay(true)?;
        echo(s)
    });
    let c = std::net::TcpStream::connect(dst)?;
    c.set_nodelay(true)?;
    Ok(EchoLink {
        client: Box::new(c),
        server: Some(server),
    })
}

/// Sends back each byte until end of stream.
fn echo(mut s: impl Read + Write) -> std::io::Result<()> {
    let mut b = [0u8; 1];
    while s.read(&mut b)? == 1 {
        s.write_all(&b)?;
    }
    Ok(())
}

/// `n` timed 1-byte round trips on each link, in `rounds` slices that
/// take turns across the links so that machine noise falls on all of
/// them alike: the samples (ns) of each link.
fn round_trips(links: &mut [EchoLink], rounds: usize, n: usize) -> anyhow::Result<Vec<Vec<f64>>> {
    let rounds = rounds.max(1);
    for link in links.iter_mut() {
        ping_pong(&mut *link.client, n / 10 + 100, None)?;
    }
    let mut samples = vec![Vec::with_capacity(n); links.len()];
    for round in 0..rounds {
        let slice = n / rounds + usize::from(round < n % rounds);
        for (link, samples) in links.iter_mut().zip(&mut samples) {
            // Untimed trips first: while the other links had their turn,
            // this one's threads went to sleep and its caches went cold,
            // which a continuous run does not see.
            ping_pong(&mut *link.client, 100, None)?;
            ping_pong(&mut *link.client, slice, Some(samples))?;
        }
    }
    Ok(samples)
}

/// `n` 1-byte round trips; their times (ns) go to `samples` if given.
fn ping_pong(
    c: &mut dyn Duplex,
    n: usize,
    mut samples: Option<&mut Vec<f64>>,
) -> std::io::Result<()> {
    let mut b = [7u8; 1];
    for _ in 0..n {
        let t = Instant::now();
        c.write_all(&b)?;
        c.read_exact(&mut b)?;
        if let Some(s) = samples.as_deref_mut() {
            s.push(t.elapsed().as_nanos() as f64);
        }
    }
    Ok(())
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

/// The peer side: serves connections until its standard input closes.
/// A mode is `STACK-SERVICE`: `shmif` (a kernel on the bus file, at
/// 192.0.2.2) or `host` (std::net on 127.0.0.1), `sink` or `echo`.
fn peer(mode: &str, a: &TcpArgs) -> anyhow::Result<()> {
    let (stack, service) = match mode.split_once('-') {
        Some((stack, "sink")) => (stack, Service::Sink),
        Some((stack, "echo")) => (stack, Service::Echo),
        _ => bail!("unknown peer mode {mode}"),
    };
    std::thread::spawn(|| {
        let mut b = [0u8; 1];
        while std::io::stdin()
            .read(&mut b)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        std::process::exit(0);
    });
    match stack {
        "shmif" => {
            let bus = a.bus.as_deref().context("--bus")?;
            let (_k, p) = shmif_kernel(bus, 2, a.mtu)?;
            let l = TcpListener::bind(&p, SocketAddrV4::new(ip(2), PORT))?;
            println!("READY {PORT}");
            loop {
                let (s, _) = l.accept()?;
                s.set_nodelay(service == Service::Echo)?;
                std::thread::spawn(move || service.serve(s));
            }
        }
        "host" => {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            println!("READY {}", l.local_addr()?.port());
            loop {
                let (s, _) = l.accept()?;
                s.set_nodelay(service == Service::Echo)?;
                std::thread::spawn(move || service.serve(s));
            }
        }
        other => bail!("unknown peer stack {other} in mode {mode}"),
    }
}

/// What a peer does with each connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Service {
    /// Reads to end of stream, then acknowledges (bulk).
    Sink,
    /// Sends back each byte (round trips).
    Echo,
}

impl Service {
    fn serve(self, s: impl Read + Write) -> std::io::Result<()> {
        match self {
            Service::Sink => sink(s).map(drop),
            Service::Echo => echo(s),
        }
    }
}
