//! The unikernel runner: boots a rump-rs guest (an ELF built for
//! `x86_64-unknown-none` on `hyper-uk`) on KVM and serves its hypercalls.
//!
//! [`run`] creates a VM with one vCPU and no devices, interrupts or
//! firmware; loads the image ([`elf`]); builds identity page tables, a GDT
//! and the boot block ([`uk_abi::BootInfoRepr`]); enters the guest directly
//! in 64-bit long mode; and then serves the port-I/O hypercalls of
//! `uk-abi` until the guest exits, faults, or a signal or timeout stops it
//! ([`signals`]). Block I/O goes straight between the disk file and guest
//! memory; network frames go to and from tap devices ([`tap`]).
//!
//! Isolation: every guest address the guest hands over is checked against
//! its memory (and the runner writes nothing below
//! [`uk_abi::IMAGE_MIN_GPA`] for it), every disk range against the disk;
//! the guest names disks and links only by index into what it was given.
//! A malformed hypercall gets an error code in its block; one whose block
//! cannot be read at all stops the guest with a message. Nothing the guest
//! does makes the runner panic.
//!
//! Neighbours: `uk-abi` (the contract), `hyper-uk` (the guest side), the
//! `rump unikernel run` subcommand (the command line).

pub mod elf;
mod serve;
pub mod signals;
mod tap;
mod vm;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use serve::BootMark;

/// A disk given to the guest.
#[derive(Clone, Debug)]
pub struct DiskSpec {
    /// The name the guest opens it by (`/dev/disk0`).
    pub name: String,
    /// The host file.
    pub path: PathBuf,
    /// Refuse writes.
    pub read_only: bool,
}

impl DiskSpec {
    /// Parses `NAME=PATH[,ro]` (or a bare `PATH`, named `/dev/diskN`).
    pub fn parse(s: &str, index: usize) -> Result<DiskSpec, Error> {
        let (rest, read_only) = match s.strip_suffix(",ro") {
            Some(r) => (r, true),
            None => (s.strip_suffix(",rw").unwrap_or(s), false),
        };
        let (name, path) = match rest.split_once('=') {
            Some((n, p)) => (n.to_string(), p),
            None => (format!("/dev/disk{index}"), rest),
        };
        if path.is_empty() || uk_abi::Name::<{ uk_abi::NAME_LEN }>::new(&name).is_none() {
            return Err(Error::Config(format!(
                "--disk {s}: expected NAME=IMAGE[,ro] with a name of 1-32 printable characters"
            )));
        }
        Ok(DiskSpec {
            name,
            path: path.into(),
            read_only,
        })
    }
}

/// What to run and with what.
#[derive(Clone, Debug)]
pub struct Config {
    /// The guest ELF.
    pub image: PathBuf,
    /// Guest memory in bytes.
    pub mem: u64,
    /// Disks.
    pub disks: Vec<DiskSpec>,
    /// Tap devices (existing interfaces, opened by name).
    pub nets: Vec<String>,
    /// `key=value` parameters for the guest.
    pub params: Vec<(String, String)>,
    /// Print boot phases to stderr.
    pub boot_trace: bool,
    /// Stop the guest after this long.
    pub timeout: Option<Duration>,
    /// Take SIGINT/SIGTERM (and SIGALRM for the timeout) to stop the guest.
    /// Process-wide: only one guest per process may use it.
    pub handle_signals: bool,
}

impl Config {
    /// A configuration with 32 MiB, no devices, no parameters.
    pub fn new(image: impl Into<PathBuf>) -> Config {
        Config {
            image: image.into(),
            mem: 32 << 20,
            disks: Vec::new(),
            nets: Vec::new(),
            params: Vec::new(),
            boot_trace: false,
            timeout: None,
            handle_signals: false,
        }
    }
}

/// Parses a memory size: bytes, or a number with `K`, `M` or `G`.
pub fn parse_size(s: &str) -> Result<u64, Error> {
    let s = s.trim();
    let (num, mult) = match s.as_bytes().last() {
        Some(b'K' | b'k') => (&s[..s.len() - 1], 1u64 << 10),
        Some(b'M' | b'm') => (&s[..s.len() - 1], 1 << 20),
        Some(b'G' | b'g') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| Error::Config(format!("bad size {s:?}: expected a number with K, M or G")))
}

/// Why the guest stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// It exited with this code.
    Exit(i32),
    /// It panicked (and printed why).
    Panic,
    /// A signal stopped it.
    Signal(i32),
    /// The timeout passed.
    Timeout,
    /// The runner stopped it: a hypercall it could not answer, a triple
    /// fault, an access to memory it does not have.
    Fault(String),
}

impl Stop {
    /// The runner's exit status for this stop (the guest's code, 101 for a
    /// panic, 128+N for signal N, 124 for a timeout, 125 for a fault).
    pub fn exit_status(&self) -> i32 {
        match self {
            Stop::Exit(c) => *c & 0xff,
            Stop::Panic => 101,
            Stop::Signal(s) => 128 + s,
            Stop::Timeout => 124,
            Stop::Fault(_) => 125,
        }
    }
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Why the guest stopped.
    pub stop: Stop,
    /// Runner start → VM ready → first `KVM_RUN`.
    pub setup: Duration,
    /// Boot marks the guest reported, in order.
    pub marks: Vec<BootMark>,
    /// The guest's TSC frequency in kHz (0 if unknown).
    pub tsc_khz: u64,
    /// Guest memory the guest touched (resident pages of its mapping).
    pub guest_touched_bytes: u64,
    /// Hypercalls served.
    pub hypercalls: u64,
}

impl Outcome {
    /// Guest time from its first instruction to `stage`, from the TSC.
    pub fn guest_time_to(&self, stage: uk_abi::BootStage) -> Option<Duration> {
        let entry = self
            .marks
            .iter()
            .find(|m| m.stage == uk_abi::BootStage::Entry)?;
        let at = self.marks.iter().find(|m| m.stage == stage)?;
        if self.tsc_khz == 0 {
            return None;
        }
        let cycles = at.tsc.checked_sub(entry.tsc)?;
        Some(Duration::from_nanos(
            (cycles as u128 * 1_000_000 / self.tsc_khz as u128) as u64,
        ))
    }

    /// Host time from the runner's start to `stage`.
    pub fn host_time_to(&self, stage: uk_abi::BootStage) -> Option<Duration> {
        self.marks.iter().find(|m| m.stage == stage).map(|m| m.host)
    }
}

/// Why a guest could not be run.
#[derive(Debug)]
pub enum Error {
    /// A bad option.
    Config(String),
    /// The image cannot be read or booted.
    Image(String),
    /// A disk cannot be opened.
    Disk(String),
    /// A tap cannot be opened.
    Tap(String),
    /// KVM refused a step.
    Kvm(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(m) => write!(f, "{m}"),
            Error::Image(m) => write!(f, "image: {m}"),
            Error::Disk(m) => write!(f, "disk: {m}"),
            Error::Tap(m) => write!(f, "tap: {m}"),
            Error::Kvm(m) => write!(f, "kvm: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Whether `/dev/kvm` can be opened here.
pub fn kvm_available() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok()
}

/// Boots the guest and serves it until it stops.
pub fn run(cfg: &Config) -> Result<Outcome, Error> {
    let start = Instant::now();
    let guard = if cfg.handle_signals {
        Some(
            signals::Guard::install(cfg.timeout)
                .map_err(|e| Error::Config(format!("signal handlers: {e}")))?,
        )
    } else {
        None
    };
    let mut machine = vm::Machine::new(cfg, start)?;
    let outcome = machine.run(guard.as_ref(), start);
    drop(guard);
    outcome
}
