//! `rump mount`, `rump umount` and `rump df` against a kernel: mount(8)
//! and df(1) over the system-call layer.
//!
//! ```text
//! rump mount                                  list the mounts
//! rump mount [-r] [-t TYPE] [-o ro] SOURCE TARGET   (TYPE default: auto, the kernel probes)
//! rump umount [-f] TARGET
//! rump df [-h] [PATH...]                      (with RUMP_SERVER set)
//! ```

use std::io::Write;

use clap::Args;
use rump::sys::{MountInfo, StatVfs};

use super::{usage, Result, ServerArg, Sys, ToolError};

/// `MS_RDONLY`.
pub const MS_RDONLY: u64 = 1;
/// `MNT_FORCE` (Linux's `umount2` flag).
pub const MNT_FORCE: i32 = 1;
/// `ST_RDONLY`.
const ST_RDONLY: u64 = 1;

/// Arguments of `rump mount`.
#[derive(Args, Debug, Clone)]
pub struct MountArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// File-system type (ext2, tmpfs, or auto: let the kernel probe).
    #[arg(short = 't', value_name = "TYPE", default_value = "auto")]
    pub fstype: String,
    /// Read-only.
    #[arg(short = 'r')]
    pub read_only: bool,
    /// Options: ro, rw (comma-separated).
    #[arg(short = 'o', value_name = "OPTIONS")]
    pub options: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
}

/// Arguments of `rump umount`.
#[derive(Args, Debug, Clone)]
pub struct UmountArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// Force, even with files open.
    #[arg(short = 'f')]
    pub force: bool,
    #[arg(required = true)]
    pub targets: Vec<String>,
}

pub fn run_mount(s: &Sys, a: &MountArgs, out: &mut dyn Write) -> Result<i32> {
    let (source, target) = match (&a.source, &a.target) {
        (None, None) => {
            let m = s.mounts().map_err(ToolError::sys("mount"))?;
            write!(out, "{}", format_mounts(&m))?;
            return Ok(0);
        }
        (Some(s), Some(t)) => (s, t),
        _ => return usage("usage: rump mount [-r] [-t TYPE] [-o OPTIONS] SOURCE TARGET"),
    };
    let mut flags = if a.read_only { MS_RDONLY } else { 0 };
    for o in a.options.iter().flat_map(|o| o.split(',')) {
        match o {
            "ro" | "rdonly" => flags |= MS_RDONLY,
            "rw" => flags &= !MS_RDONLY,
            "" => {}
            o => return usage(format!("mount: unknown option {o:?}")),
        }
    }
    s.mount(source, target, &a.fstype, flags)
        .map_err(ToolError::sys(format!("mount {source} on {target}")))?;
    Ok(0)
}

pub fn run_umount(s: &Sys, a: &UmountArgs, _out: &mut dyn Write) -> Result<i32> {
    let flags = if a.force { MNT_FORCE } else { 0 };
    for t in &a.targets {
        s.umount(t, flags)
            .map_err(ToolError::sys(format!("umount {t}")))?;
    }
    Ok(0)
}

/// mount(8)'s listing: `SOURCE on TARGET type TYPE (OPTIONS)`.
pub fn format_mounts(m: &[MountInfo]) -> String {
    m.iter()
        .map(|i| {
            let ro = if i.flags & MS_RDONLY != 0 {
                "read-only, "
            } else {
                ""
            };
            let src = if i.source.is_empty() {
                i.fstype.as_str()
            } else {
                i.source.as_str()
            };
            format!("{src} on {} type {} ({ro}local)\n", i.target, i.fstype)
        })
        .collect()
}

/// `rump df` against a kernel: every mount, or those holding `paths`.
pub fn df(s: &Sys, paths: &[String], human: bool, out: &mut dyn Write) -> Result<i32> {
    let mounts = s.mounts().map_err(ToolError::sys("df"))?;
    let mut rows = Vec::new();
    if paths.is_empty() {
        for m in &mounts {
            let v = s
                .statvfs(&m.target)
                .map_err(ToolError::sys(format!("df {}", m.target)))?;
            rows.push((m.clone(), v));
        }
    } else {
        for p in paths {
            let v = s.statvfs(p).map_err(ToolError::sys(format!("df {p}")))?;
            // The mount is the longest target that is a prefix of the path.
            let m = mounts
                .iter()
                .filter(|m| {
                    m.target == "/" || p == &m.target || p.starts_with(&format!("{}/", m.target))
                })
                .max_by_key(|m| m.target.len())
                .cloned()
                .unwrap_or_else(|| MountInfo {
                    source: String::new(),
                    target: p.clone(),
                    fstype: String::new(),
                    flags: 0,
                });
            rows.push((m, v));
        }
    }
    write!(out, "{}", format_df(&rows, human))?;
    Ok(0)
}

/// df(1)'s table (NetBSD's columns: 1K-blocks, Used, Avail, %Cap).
pub fn format_df(rows: &[(MountInfo, StatVfs)], human: bool) -> String {
    let mut s = if human {
        format!(
            "{:<20} {:>6} {:>6} {:>6} {:>4} Mounted on\n",
            "Filesystem", "Size", "Used", "Avail", "%Cap"
        )
    } else {
        format!(
            "{:<20} {:>10} {:>10} {:>10} {:>4} Mounted on\n",
            "Filesystem", "1K-blocks", "Used", "Avail", "%Cap"
        )
    };
    for (m, v) in rows {
        let size = v.blocks * v.frsize;
        let used = v.blocks.saturating_sub(v.bfree) * v.frsize;
        let avail = v.bavail * v.frsize;
        let pct = if used + avail == 0 {
            0
        } else {
            (used * 100).div_ceil(used + avail)
        };
        let fs = if m.source.is_empty() {
            m.fstype.clone()
        } else {
            m.source.clone()
        };
        let _ = v.flag & ST_RDONLY;
        if human {
            s += &format!(
                "{fs:<20} {:>6} {:>6} {:>6} {:>3}% {}\n",
                human_size(size),
                human_size(used),
                human_size(avail),
                pct,
                m.target
            );
        } else {
            s += &format!(
                "{fs:<20} {:>10} {:>10} {:>10} {:>3}% {}\n",
                size / 1024,
                used / 1024,
                avail / 1024,
                pct,
                m.target
            );
        }
    }
    s
}

fn human_size(b: u64) -> String {
    let units = ["B", "K", "M", "G", "T"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < units.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b}B")
    } else if v < 10.0 {
        format!("{v:.1}{}", units[u])
    } else {
        format!("{v:.0}{}", units[u])
    }
}
