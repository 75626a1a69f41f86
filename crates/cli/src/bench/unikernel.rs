//! `rump bench unikernel`: boots of the ext2 unikernel (`uk-ext2`, built
//! for `x86_64-unknown-none` in release mode) on KVM, each as its own
//! `rump unikernel run` process with an ext2 disk attached and mounted
//! read-only before the application's `main`: the runner's setup (start
//! to first `KVM_RUN`), the guest's time from its first instruction to
//! `main` (TSC), the runner's time from its start to `main`, and the whole
//! process from spawn to exit; median and p99. Also the runner's peak RSS,
//! the guest memory it touched and the image size.
//!
//!
//! Then one application, two platforms: the echo application (`uk-echo`)
//! as a guest and as a process on `hyper-posix`, each on a tap in a
//! network namespace made for the run, with this process as the Linux
//! peer inside that namespace: TCP bulk throughput into the application
//! (its discard service) and out of it (chargen), and the TCP round trip
//! of one byte (echo), median of many. And `uk-seqio` both ways on the
//! same ext2 image: sequential write (with fsync) and read after a
//! remount. The process is the baseline of each. The network part needs
//! root and `/dev/net/tun`, and says so when it skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use super::report::{median, p99, Metric, Unit};

/// Options of `rump bench unikernel`.
#[derive(clap::Args, Debug)]
pub struct UnikernelArgs {
    /// Boots to time.
    #[arg(long, default_value_t = 100)]
    pub boots: usize,
    /// The guest to boot (default: build `uk-ext2` from this source tree).
    #[arg(long)]
    pub app: Option<PathBuf>,
    /// Bytes of each TCP bulk transfer.
    #[arg(long, default_value_t = 512 << 20)]
    pub bulk_bytes: u64,
    /// Round trips of the TCP round-trip test.
    #[arg(long, default_value_t = 2000)]
    pub round_trips: usize,
    /// Only the boot figures.
    #[arg(long)]
    pub boot_only: bool,
}

/// One boot's figures.
struct Boot {
    setup_ms: f64,
    guest_us: f64,
    to_main_ms: f64,
    wall_ms: f64,
    rss_bytes: f64,
    touched_bytes: f64,
}

pub fn run(a: UnikernelArgs) -> Result<()> {
    if !uk_runner::kvm_available() {
        bail!("/dev/kvm cannot be opened here");
    }
    let app = match &a.app {
        Some(p) => p.clone(),
        None => build_apps(true, &["uk-ext2"])?.join("uk-ext2"),
    };
    let dir = tempfile::tempdir()?;
    let img = dir.path().join("disk.img");
    rump::ext2::newfs_image(&img, 8 << 20, &rump::ext2::MkfsOptions::default())
        .map_err(|e| anyhow!("newfs: {e:?}"))?;
    let mut boots = Vec::with_capacity(a.boots);
    for i in 0..a.boots.max(1) + 3 {
        let b = boot_once(&app, &img)?;
        // The first boots warm the page cache and KVM.
        if i >= 3 {
            boots.push(b);
        }
    }
    let stat = |f: fn(&Boot) -> f64| -> (f64, f64) {
        let mut v: Vec<f64> = boots.iter().map(f).collect();
        let m = median(&mut v);
        (m, p99(&v))
    };
    let print = |metric: &str, value: f64, unit: Unit| {
        Metric {
            bench: "unikernel",
            metric,
            value,
            unit,
            baseline: None,
        }
        .print()
    };
    let timed: [(&str, fn(&Boot) -> f64, Unit); 4] = [
        ("uk_boot_guest_us", |b| b.guest_us, Unit::Us),
        ("uk_boot_total_ms", |b| b.to_main_ms, Unit::Ms),
        ("uk_boot_setup_ms", |b| b.setup_ms, Unit::Ms),
        ("uk_run_process_ms", |b| b.wall_ms, Unit::Ms),
    ];
    for (name, field, unit) in timed {
        let (m, p) = stat(field);
        print(name, m, unit);
        print(&format!("{name}_p99"), p, unit);
    }
    print("uk_runner_rss_bytes", stat(|b| b.rss_bytes).0, Unit::Bytes);
    print(
        "uk_guest_mem_bytes",
        stat(|b| b.touched_bytes).0,
        Unit::Bytes,
    );
    let size = std::fs::metadata(&app)?.len();
    print("uk_image_unstripped_bytes", size as f64, Unit::Bytes);
    // The image as shipped: without symbols and debug information.
    let stripped = dir.path().join("app.stripped");
    let st = Command::new("strip")
        .arg("-o")
        .arg(&stripped)
        .arg(&app)
        .status();
    match st {
        Ok(s) if s.success() => print(
            "uk_image_bytes",
            std::fs::metadata(&stripped)?.len() as f64,
            Unit::Bytes,
        ),
        _ => eprintln!("rump bench unikernel: no strip(1) here: uk_image_bytes not measured"),
    }
    if a.boot_only {
        return Ok(());
    }
    let guests = build_apps(true, &["uk-echo", "uk-seqio"])?;
    let hosts = build_apps(false, &["uk-echo", "uk-seqio"])?;
    disk_pair(&guests, &hosts, dir.path())?;
    match net_skip() {
        Some(why) => eprintln!("rump bench unikernel: network figures skipped: {why}"),
        None => net_pair(&a, &guests, &hosts)?,
    }
    Ok(())
}

/// Builds example applications in release mode, for the bare-metal target
/// (`guest`) or the host; returns the directory of the binaries.
fn build_apps(guest: bool, bins: &[&str]) -> Result<PathBuf> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !ws.join("crates/uk-apps").is_dir() {
        bail!("no source tree here to build the applications from: give --app and --boot-only");
    }
    let target = ws.join("target/uk-guests-release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&ws)
        .args(["build", "--release", "-p", "rump-uk-apps"]);
    if guest {
        cmd.args(["--target", "x86_64-unknown-none"]);
    }
    for b in bins {
        cmd.args(["--bin", b]);
    }
    let out = cmd
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .context("cargo build of the applications")?;
    if !out.status.success() {
        bail!(
            "building the applications failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(if guest {
        target.join("x86_64-unknown-none/release")
    } else {
        target.join("release")
    })
}

fn print_pair(metric: &str, ours: f64, process: f64, unit: Unit) {
    Metric {
        bench: "unikernel",
        metric,
        value: ours,
        unit,
        baseline: Some(("the same application as a process on hyper-posix", process)),
    }
    .print()
}

/// `uk-seqio` as a guest and as a process on one image, three runs each
/// (alternating); medians.
fn disk_pair(guests: &Path, hosts: &Path, dir: &Path) -> Result<()> {
    let img = dir.join("seq.img");
    let opts = rump::ext2::MkfsOptions {
        block_size: 4096,
        ..Default::default()
    };
    rump::ext2::newfs_image(&img, 160 << 20, &opts).map_err(|e| anyhow!("newfs: {e:?}"))?;
    let parse = |text: &str| -> Result<(f64, f64)> {
        let line = text
            .lines()
            .find(|l| l.starts_with("seqio: write "))
            .ok_or_else(|| anyhow!("uk-seqio printed no figures:\n{text}"))?;
        let w: Vec<&str> = line.split_whitespace().collect();
        Ok((w[2].parse()?, w[5].parse()?))
    };
    let (mut gw, mut gr, mut pw, mut pr) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..3 {
        let out = Command::new(std::env::current_exe()?)
            .args(["unikernel", "run"])
            .arg(guests.join("uk-seqio"))
            .arg("--disk")
            .arg(format!("/dev/disk0={}", img.display()))
            .output()?;
        let (w, r) = parse(&String::from_utf8_lossy(&out.stdout))?;
        gw.push(w);
        gr.push(r);
        let out = Command::new(hosts.join("uk-seqio"))
            .env("disk", &img)
            .output()?;
        let (w, r) = parse(&String::from_utf8_lossy(&out.stderr))?;
        pw.push(w);
        pr.push(r);
    }
    print_pair(
        "uk_disk_write_mbps",
        median(&mut gw),
        median(&mut pw),
        Unit::MBps,
    );
    print_pair(
        "uk_disk_read_mbps",
        median(&mut gr),
        median(&mut pr),
        Unit::MBps,
    );
    Ok(())
}

fn net_skip() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (a network namespace and a tap need CAP_NET_ADMIN)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("no ip(8) (iproute2)".into());
    }
    None
}

/// A network namespace with tap `ukb0` at 192.0.2.1/24; deleted on drop.
struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Result<Netns> {
        let ns = Netns(format!("ukbench{}{tag}", std::process::id()));
        let run = |args: &[&str]| -> Result<()> {
            let out = Command::new("ip").args(args).output()?;
            if !out.status.success() {
                bail!(
                    "ip {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            Ok(())
        };
        run(&["netns", "add", &ns.0])?;
        let n = ns.0.as_str();
        run(&["-n", n, "link", "set", "lo", "up"])?;
        run(&["-n", n, "tuntap", "add", "dev", "ukb0", "mode", "tap"])?;
        run(&["-n", n, "addr", "add", "192.0.2.1/24", "dev", "ukb0"])?;
        run(&["-n", n, "link", "set", "ukb0", "up"])?;
        Ok(ns)
    }

    fn tap(&self) -> String {
        format!("netns:{}:ukb0", self.0)
    }

    /// Runs `f` on a thread inside the namespace (its sockets are made
    /// there).
    fn within<R: Send + 'static>(&self, f: impl FnOnce() -> R + Send + 'static) -> Result<R> {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || -> Result<R> {
            let f_ns = std::fs::File::open(&path)?;
            // SAFETY: setns on this thread with an open namespace file.
            if unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f_ns), libc::CLONE_NEWNET) }
                != 0
            {
                bail!("setns: {}", std::io::Error::last_os_error());
            }
            Ok(f())
        })
        .join()
        .map_err(|_| anyhow!("the peer thread panicked"))?
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// A child process, killed on drop.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Network figures of one platform.
struct NetFigures {
    in_gbps: f64,
    out_gbps: f64,
    rtt_us: f64,
}

/// The echo application as a guest and as a process, each on its own
/// namespace and tap.
fn net_pair(a: &UnikernelArgs, guests: &Path, hosts: &Path) -> Result<()> {
    let mut figures = Vec::new();
    for guest in [true, false] {
        let ns = Netns::create(if guest { "g" } else { "p" })?;
        let mut cmd = if guest {
            let mut c = Command::new(std::env::current_exe()?);
            c.args(["unikernel", "run"])
                .arg(guests.join("uk-echo"))
                .args(["--net", &ns.tap(), "--mem", "16M"])
                .args([
                    "--param",
                    "tcp_sndbuf=1048576",
                    "--param",
                    "tcp_rcvbuf=1048576",
                ]);
            c
        } else {
            let mut c = Command::new(hosts.join("uk-echo"));
            c.env("link", ns.tap())
                .env("tcp_sndbuf", "1048576")
                .env("tcp_rcvbuf", "1048576");
            c
        };
        let child = Child(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?);
        let (bytes, trips) = (a.bulk_bytes, a.round_trips);
        let f = ns.within(move || peer(bytes, trips))??;
        drop(child);
        figures.push(f);
    }
    let (g, p) = (&figures[0], &figures[1]);
    print_pair("uk_tcp_bulk_gbps", g.in_gbps, p.in_gbps, Unit::Gbps);
    print_pair("uk_tcp_bulk_out_gbps", g.out_gbps, p.out_gbps, Unit::Gbps);
    print_pair("uk_tcp_rtt_us", g.rtt_us, p.rtt_us, Unit::Us);
    Ok(())
}

/// The Linux side: waits for the echo application, then measures.
fn peer(bytes: u64, trips: usize) -> Result<NetFigures> {
    use std::io::{Read, Write};
    use std::net::{Shutdown, TcpStream};
    use std::time::Duration;
    let at = |port: u16| std::net::SocketAddr::from(([192, 0, 2, 2], port));
    let t = Instant::now();
    let connect = |port: u16| -> Result<TcpStream> {
        loop {
            match TcpStream::connect_timeout(&at(port), Duration::from_millis(500)) {
                Ok(s) => return Ok(s),
                Err(_) if t.elapsed() < Duration::from_secs(60) => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => bail!("the echo application does not answer: {e}"),
            }
        }
    };
    // Into the application: discard.
    let mut s = connect(9)?;
    let buf = vec![0x5au8; 1 << 20];
    let t0 = Instant::now();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        s.write_all(&buf[..n])?;
        left -= n as u64;
    }
    s.shutdown(Shutdown::Write)?;
    // Discard closes once it has read everything.
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    let in_gbps = bytes as f64 * 8.0 / 1e9 / t0.elapsed().as_secs_f64();
    // Out of it: chargen.
    let mut s = connect(19)?;
    let mut rbuf = vec![0u8; 1 << 20];
    let t0 = Instant::now();
    let mut got = 0u64;
    while got < bytes {
        let n = s.read(&mut rbuf)?;
        if n == 0 {
            bail!("chargen closed early");
        }
        got += n as u64;
    }
    let out_gbps = got as f64 * 8.0 / 1e9 / t0.elapsed().as_secs_f64();
    drop(s);
    // Round trips of one byte: echo.
    let mut s = connect(7)?;
    s.set_nodelay(true)?;
    let mut rtts = Vec::with_capacity(trips);
    let mut b = [0u8; 1];
    for i in 0..trips + 50 {
        let t = Instant::now();
        s.write_all(&[i as u8])?;
        s.read_exact(&mut b)?;
        if i >= 50 {
            rtts.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    Ok(NetFigures {
        in_gbps,
        out_gbps,
        rtt_us: median(&mut rtts),
    })
}

fn boot_once(app: &Path, img: &Path) -> Result<Boot> {
    let t = Instant::now();
    let child = Command::new(std::env::current_exe()?)
        .args(["unikernel", "run", "--boot-trace"])
        .arg(app)
        .arg("--disk")
        .arg(format!("/dev/disk0={},ro", img.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id() as i32;
    let mut stderr = child.stderr.ok_or_else(|| anyhow!("no pipe"))?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut text)?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4(2) on our own child; `status` and `ru` are valid for
    // writes for the duration of the call.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    let wall_ms = t.elapsed().as_secs_f64() * 1e3;
    if r != pid || !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        bail!("the guest run failed (status {status:#x}):\n{text}");
    }
    let num = |key: &str, unit: &str| -> Result<f64> {
        text.lines()
            .find_map(|l| {
                let rest = l.split(key).nth(1)?;
                rest.split_whitespace()
                    .next()
                    .filter(|_| rest.contains(unit))?
                    .parse()
                    .ok()
            })
            .ok_or_else(|| anyhow!("no {key:?} in the boot trace:\n{text}"))
    };
    Ok(Boot {
        setup_ms: num("to first KVM_RUN) ", "ms")?,
        guest_us: num("guest time to app-main ", "us")?,
        to_main_ms: num("app-main   at ", "ms")?,
        wall_ms,
        // The runner's own high-water mark (VmHWM), not `ru.ru_maxrss`:
        // a child spawned from this process shares its memory until the
        // exec (vfork), and Linux carries that memory's high-water mark
        // into the child's `ru_maxrss`, which would report this
        // benchmark's size instead of the runner's.
        rss_bytes: num("runner peak RSS ", "bytes")?,
        touched_bytes: num("guest memory touched ", "bytes")?,
    })
}
