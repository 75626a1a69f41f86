//! `rump unikernel run APP.elf [--disk NAME=IMG[,ro]] [--net TAP] [--mem 32M]
//! [--param k=v] [--boot-trace] [--timeout SECS]`: boots a unikernel (an
//! application built on `hyper-uk` for `x86_64-unknown-none`) on KVM with
//! `uk-runner` and exits with the guest's exit code (101 if it panicked,
//! 124 on timeout, 125 if the runner stopped it, 128+N on signal N).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

#[derive(Subcommand)]
pub enum UnikernelCmd {
    /// Boot a unikernel ELF on KVM.
    Run(RunArgs),
}

#[derive(Args)]
pub struct RunArgs {
    /// The guest image (an ELF executable built for x86_64-unknown-none).
    pub image: PathBuf,
    /// A disk: NAME=IMAGE[,ro] (the guest opens NAME, e.g. /dev/disk0).
    #[arg(long = "disk", value_name = "NAME=IMAGE[,ro]")]
    pub disks: Vec<String>,
    /// A tap device (an existing interface) to attach.
    #[arg(long = "net", value_name = "TAP")]
    pub nets: Vec<String>,
    /// Guest memory (K, M or G suffix).
    #[arg(long, default_value = "32M")]
    pub mem: String,
    /// A parameter for the guest (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,
    /// Print boot phases with their times to stderr.
    #[arg(long)]
    pub boot_trace: bool,
    /// Stop the guest after this many seconds (fractions allowed).
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
}

pub fn run(cmd: UnikernelCmd) -> anyhow::Result<()> {
    match cmd {
        UnikernelCmd::Run(args) => {
            let cfg = config(&args)?;
            let out = uk_runner::run(&cfg).map_err(|e| anyhow::anyhow!("unikernel: {e}"))?;
            if cfg.boot_trace {
                eprintln!(
                    "uk: boot: setup (runner start to first KVM_RUN) {:.3} ms",
                    out.setup.as_secs_f64() * 1e3
                );
                eprintln!(
                    "uk: boot: guest memory touched {} bytes, {} hypercalls",
                    out.guest_touched_bytes, out.hypercalls
                );
                if let Some(hwm) = peak_rss_bytes() {
                    eprintln!("uk: boot: runner peak RSS {hwm} bytes");
                }
                if let Some(t) = out.guest_time_to(uk_abi::BootStage::AppMain) {
                    eprintln!(
                        "uk: boot: guest time to app-main {:.1} us",
                        t.as_secs_f64() * 1e6
                    );
                }
            }
            match &out.stop {
                uk_runner::Stop::Exit(_) => {}
                uk_runner::Stop::Panic => eprintln!("rump: unikernel: the guest panicked"),
                uk_runner::Stop::Signal(s) => eprintln!("rump: unikernel: stopped by signal {s}"),
                uk_runner::Stop::Timeout => eprintln!("rump: unikernel: timed out, stopped"),
                uk_runner::Stop::Fault(m) => eprintln!("rump: unikernel: guest stopped: {m}"),
            }
            std::process::exit(out.stop.exit_status());
        }
    }
}

/// The runner configuration for the command line.
pub fn config(args: &RunArgs) -> anyhow::Result<uk_runner::Config> {
    let mut cfg = uk_runner::Config::new(&args.image);
    cfg.mem = uk_runner::parse_size(&args.mem).map_err(|e| anyhow::anyhow!("--mem: {e}"))?;
    for (i, d) in args.disks.iter().enumerate() {
        cfg.disks
            .push(uk_runner::DiskSpec::parse(d, i).map_err(|e| anyhow::anyhow!("{e}"))?);
    }
    cfg.nets = args.nets.clone();
    for p in &args.params {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--param {p}: expected KEY=VALUE");
        };
        cfg.params.push((k.to_string(), v.to_string()));
    }
    cfg.boot_trace = args.boot_trace;
    if let Some(t) = args.timeout {
        if !(t.is_finite() && t > 0.0) {
            bail!("--timeout {t}: expected a positive number of seconds");
        }
        cfg.timeout = Some(Duration::from_secs_f64(t));
    }
    cfg.handle_signals = true;
    std::fs::metadata(&cfg.image).with_context(|| format!("{}", cfg.image.display()))?;
    Ok(cfg)
}

/// This process's peak resident set (`VmHWM` of /proc/self/status): the
/// runner's own high-water mark since its exec, whatever process started
/// it.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
