//! `rump bench unikernel`: boots of the ext2 unikernel (`uk-ext2`, built
//! for `x86_64-unknown-none` in release mode) on KVM, each as its own
//! `rump unikernel run` process with an ext2 disk attached and mounted
//! read-only before the application's `main`: the runner's setup (start
//! to first `KVM_RUN`), the guest's time from its first instruction to
//! `main` (TSC), the runner's time from its start to `main`, and the whole
//! process from spawn to exit; median and p99. Also the runner's peak RSS,
//! the guest memory it touched and the image size.
//!
//! Not measured yet (no network application exists): TCP throughput and
//! round trip, and disk throughput against the same application as a
//! process.

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
        None => build_guest()?,
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
    Ok(())
}

/// Builds `uk-ext2` in release mode for the bare-metal target.
fn build_guest() -> Result<PathBuf> {
    let ws = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    if !ws.join("crates/uk-apps").is_dir() {
        bail!("no source tree here to build the guest from: give --app");
    }
    let target = ws.join("target/uk-guests-release");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .current_dir(&ws)
        .args([
            "build",
            "--release",
            "--target",
            "x86_64-unknown-none",
            "-p",
            "rump-uk-apps",
            "--bin",
            "uk-ext2",
        ])
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .context("cargo build of the guest")?;
    if !out.status.success() {
        bail!(
            "building the guest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(target.join("x86_64-unknown-none/release/uk-ext2"))
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
