//! `rump bench remote`: round trips to a `rump server` process over each
//! transport (getpid, 4 KiB and 1 MiB reads: median and p99; getpid calls
//! per second with 1 and 4 client threads), each against the bare floor
//! of that transport measured in the same run: a ping-pong of the same
//! sizes through the same kind of socket with an echo thread and no
//! kernel. The shared-memory transport does not exist yet, so there are
//! no `remote_shm_` metrics.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rump::remote::{Client, ConnectOptions, Url};
use rump::sys::{Request, Response, Syscalls};

use super::report::{median, p99, Metric, Unit};

/// Options of `rump bench remote`.
#[derive(clap::Args, Debug)]
pub struct RemoteArgs {
    /// getpid round trips timed (4 KiB reads: a tenth, 1 MiB: a hundredth).
    #[arg(long, default_value_t = 20_000)]
    pub iterations: usize,
    /// Seconds per calls-per-second point.
    #[arg(long, default_value_t = 1.0)]
    pub secs: f64,
}

pub fn run(args: RemoteArgs) -> Result<()> {
    let dir = tempfile::tempdir()?;
    for transport in ["unix", "tcp"] {
        let (url, token) = match transport {
            "unix" => (
                format!("unix://{}", dir.path().join("b.sock").display()),
                None,
            ),
            _ => {
                let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
                (
                    format!("tcp://127.0.0.1:{port}"),
                    Some(dir.path().join("token")),
                )
            }
        };
        let mut server = start_server(&url, token.as_deref())?;
        let r = bench_transport(transport, &url, token.as_deref(), &args);
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
        server.wait()?;
        r?;
    }
    Ok(())
}

fn start_server(url: &str, token: Option<&std::path::Path>) -> Result<Child> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["server", url, "--ready-stdout", "--log", "quiet"]);
    if let Some(t) = token {
        cmd.arg("--token-file").arg(t);
    }
    let mut child = cmd.stdout(Stdio::piped()).spawn()?;
    let mut out = child.stdout.take().ok_or_else(|| anyhow!("no pipe"))?;
    let mut buf = [0u8; 5];
    out.read_exact(&mut buf).context("server did not start")?;
    Ok(child)
}

fn connect(url: &str, token: Option<&std::path::Path>) -> Result<Client> {
    let o = ConnectOptions {
        token: token.map(std::fs::read).transpose()?,
        ..ConnectOptions::default()
    };
    Client::connect_with(&Url::parse(url).map_err(|e| anyhow!(e))?, o).map_err(|e| anyhow!("{e}"))
}

fn bench_transport(
    t: &str,
    url: &str,
    token: Option<&std::path::Path>,
    a: &RemoteArgs,
) -> Result<()> {
    let c = connect(url, token)?;
    // A 1 MiB file on the server's tmpfs to read from.
    let fd = match c.call(Request::Openat {
        dirfd: rump::sys::consts::at::FDCWD,
        path: b"/data".to_vec(),
        flags: rump::sys::consts::o::CREAT | rump::sys::consts::o::RDWR,
        mode: 0o644,
    }) {
        Ok(Response::Int(fd)) => fd as i32,
        other => return Err(anyhow!("open: {other:?}")),
    };
    c.call(Request::Write {
        fd,
        data: vec![7u8; 1 << 20],
    })
    .map_err(|e| anyhow!("write: {e:?}"))?;
    let floor = Floor::start(t)?;
    let getpid = || c.call(Request::Getpid).map(drop);
    let cr = &c;
    let read = |len: usize| move || cr.call(Request::Pread { fd, len, offset: 0 }).map(drop);
    let cases: [(&str, usize, usize); 3] = [
        ("getpid", 0, a.iterations),
        ("read4k", 4096, (a.iterations / 10).max(10)),
        ("read1m", 1 << 20, (a.iterations / 100).max(10)),
    ];
    for (name, reply, n) in cases {
        let mut ours = if reply == 0 {
            time(n, getpid)?
        } else {
            time(n, read(reply))?
        };
        let mut base = floor.pingpong(reply, n)?;
        let (om, bm) = (median(&mut ours), median(&mut base));
        let (op, bp) = (p99(&ours), p99(&base));
        let floor_name = format!("bare {t} socket ping-pong");
        Metric {
            bench: "remote",
            metric: &format!("remote_{t}_{name}_ns_median"),
            value: om,
            unit: Unit::Ns,
            baseline: Some((&floor_name, bm)),
        }
        .print();
        Metric {
            bench: "remote",
            metric: &format!("remote_{t}_{name}_ns_p99"),
            value: op,
            unit: Unit::Ns,
            baseline: Some((&floor_name, bp)),
        }
        .print();
    }
    let mut per_s = Vec::new();
    for threads in [1usize, 4] {
        let calls = throughput(&c, threads, a.secs);
        let base = floor.throughput(threads, a.secs)?;
        per_s.push(calls);
        Metric {
            bench: "remote",
            metric: &format!(
                "remote_{t}_calls_per_s_{threads}thread{}",
                if threads > 1 { "s" } else { "" }
            ),
            value: calls,
            unit: Unit::OpsPerSec,
            baseline: Some((
                &format!("bare {t} socket ping-pong, {threads} thread(s)"),
                base,
            )),
        }
        .print();
    }
    Metric {
        bench: "remote",
        metric: &format!("remote_{t}_scaling_4threads"),
        value: per_s[1] / per_s[0],
        unit: Unit::Ratio,
        baseline: None,
    }
    .print();
    Ok(())
}

fn time(n: usize, mut f: impl FnMut() -> Result<(), rump::Errno>) -> Result<Vec<f64>> {
    for _ in 0..(n / 10).max(10) {
        f().map_err(|e| anyhow!("{e:?}"))?;
    }
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        f().map_err(|e| anyhow!("{e:?}"))?;
        v.push(t0.elapsed().as_nanos() as f64);
    }
    Ok(v)
}

fn throughput(c: &Client, threads: usize, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let hs: Vec<_> = (0..threads)
        .map(|_| {
            let (c, stop, count) = (c.clone(), stop.clone(), count.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if c.call(Request::Getpid).is_ok() {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(true, Ordering::Relaxed);
    for h in hs {
        let _ = h.join();
    }
    count.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64()
}

/// An echo server on the same kind of socket: reads a 16-byte request
/// holding the reply size, answers that many bytes. No kernel.
struct Floor {
    kind: &'static str,
    addr: String,
}

impl Floor {
    fn start(t: &str) -> Result<Floor> {
        let (kind, addr) = if t == "unix" {
            let d = std::env::temp_dir().join(format!("rump-floor-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&d);
            let l = UnixListener::bind(&d)?;
            std::thread::spawn(move || {
                for s in l.incoming().flatten() {
                    std::thread::spawn(move || echo(s));
                }
            });
            ("unix", d.display().to_string())
        } else {
            let l = TcpListener::bind("127.0.0.1:0")?;
            let a = l.local_addr()?.to_string();
            std::thread::spawn(move || {
                for s in l.incoming().flatten() {
                    let _ = s.set_nodelay(true);
                    std::thread::spawn(move || echo(s));
                }
            });
            ("tcp", a)
        };
        Ok(Floor { kind, addr })
    }

    fn stream(&self) -> Result<Box<dyn RW>> {
        Ok(if self.kind == "unix" {
            Box::new(UnixStream::connect(&self.addr)?)
        } else {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            Box::new(s)
        })
    }

    fn pingpong(&self, reply: usize, n: usize) -> Result<Vec<f64>> {
        let mut s = self.stream()?;
        let mut buf = vec![0u8; reply.max(16)];
        let mut req = [0u8; 16];
        req[..8].copy_from_slice(&(reply as u64).to_le_bytes());
        let mut one = |s: &mut Box<dyn RW>| -> Result<()> {
            s.write_all(&req)?;
            s.read_exact(&mut buf[..reply.max(16)])?;
            Ok(())
        };
        for _ in 0..(n / 10).max(10) {
            one(&mut s)?;
        }
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            one(&mut s)?;
            v.push(t0.elapsed().as_nanos() as f64);
        }
        Ok(v)
    }

    fn throughput(&self, threads: usize, secs: f64) -> Result<f64> {
        let stop = Arc::new(AtomicBool::new(false));
        let count = Arc::new(AtomicU64::new(0));
        let mut hs = Vec::new();
        for _ in 0..threads {
            let mut s = self.stream()?;
            let (stop, count) = (stop.clone(), count.clone());
            hs.push(std::thread::spawn(move || {
                let req = [0u8; 16];
                let mut buf = [0u8; 16];
                while !stop.load(Ordering::Relaxed) {
                    if s.write_all(&req).is_err() || s.read_exact(&mut buf).is_err() {
                        return;
                    }
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let t0 = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        for h in hs {
            let _ = h.join();
        }
        Ok(count.load(Ordering::Relaxed) as f64 / t0.elapsed().as_secs_f64())
    }
}

trait RW: Read + Write + Send {}
impl<T: Read + Write + Send> RW for T {}

fn echo<S: Read + Write>(mut s: S) {
    let mut req = [0u8; 16];
    let mut out = Vec::new();
    while s.read_exact(&mut req).is_ok() {
        let n = (u64::from_le_bytes(req[..8].try_into().unwrap_or([0; 8])) as usize).max(16);
        out.resize(n, 1);
        if s.write_all(&out).is_err() {
            return;
        }
    }
}
