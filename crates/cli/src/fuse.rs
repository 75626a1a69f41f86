//! `rump fuse [-o OPTIONS] [-t TYPE] [-f] IMAGE MOUNTPOINT`: mounts a disk
//! image on the host through the kernel's own file-system driver (the
//! `rump-fuse` crate; options and caching in docs/fuse.md).
//!
//! Without `-f` (and without `-o debug`) the server goes to the
//! background once the mount is ready, as fuse2fs does: the command runs
//! itself again in the foreground in a new process group, passes its
//! error messages through, and exits 0 when the child reports the mount
//! up, or with the child's status if it fails first. No fork of a
//! running process is needed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context};
use clap::Args;

/// The line a foreground child prints on standard output when mounted.
const READY: &str = "rump-fuse: ready";
/// Set in the child's environment: report readiness on stdout.
const CHILD_ENV: &str = "RUMP_FUSE_REPORT_READY";

/// Arguments of `rump fuse`.
#[derive(Args)]
pub struct FuseArgs {
    /// Mount options, comma-separated: ro, rw, allow_other,
    /// default_permissions, uid=N, gid=N, part=N, sync, debug,
    /// threads=N, writeback.
    #[arg(short = 'o', action = clap::ArgAction::Append)]
    pub options: Vec<String>,
    /// File-system type (default: probed from the image).
    #[arg(short = 't')]
    pub fstype: Option<String>,
    /// Stay in the foreground.
    #[arg(short = 'f')]
    pub foreground: bool,
    /// Disk image (a file system, or an MBR/GPT disk with part=N).
    pub image: PathBuf,
    /// Host directory to mount on.
    pub mountpoint: PathBuf,
}

pub fn run(args: FuseArgs) -> anyhow::Result<()> {
    let mut opts = rump_fuse::Options::default();
    for o in &args.options {
        opts.apply(o).context("rump fuse")?;
    }
    opts.fstype = args.fstype.clone();
    if !args.mountpoint.is_dir() {
        bail!("{}: not a directory", args.mountpoint.display());
    }
    if args.foreground || opts.debug {
        let report = std::env::var_os(CHILD_ENV).is_some();
        return rump_fuse::serve(&args.image, &args.mountpoint, &opts, || {
            if report {
                // The parent stops reading after this line; later writes
                // to stdout are never made.
                let mut out = std::io::stdout();
                let _ = writeln!(out, "{READY}");
                let _ = out.flush();
            }
        })
        .map_err(|e| anyhow::anyhow!("{e}"));
    }
    background(&args)
}

/// Runs the server in the foreground in a child process and returns once
/// it is mounted.
fn background(args: &FuseArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the rump binary")?;
    let mut cmd = Command::new(exe);
    cmd.arg("fuse").arg("-f");
    for o in &args.options {
        cmd.arg("-o").arg(o);
    }
    if let Some(t) = &args.fstype {
        cmd.arg("-t").arg(t);
    }
    cmd.arg(&args.image).arg(&args.mountpoint);
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot start the server")?;
    let stdout = child.stdout.take().context("no pipe")?;
    let mut stderr = child.stderr.take().context("no pipe")?;
    // Pass the child's messages on until it is ready or gone.
    let relay = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut err = std::io::stderr();
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            let _ = err.write_all(&buf[..n]);
        }
    });
    let mut line = String::new();
    let _ = BufReader::new(stdout).read_line(&mut line);
    if line.trim_end() == READY {
        // The child keeps the write ends; do not wait for them.
        drop(relay);
        return Ok(());
    }
    // It failed before the mount was up and said why on stderr.
    let status = child.wait().context("waiting for the server")?;
    let _ = relay.join();
    std::process::exit(status.code().unwrap_or(1))
}
