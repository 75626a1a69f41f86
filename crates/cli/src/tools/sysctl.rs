//! `rump sysctl`: kernel parameters as NetBSD's sysctl(8) reads and
//! writes them.
//!
//! ```text
//! rump sysctl [-n] NAME...       print NAME = VALUE (-n: the value only)
//! rump sysctl [-w] NAME=VALUE    set, printing NAME: OLD -> NEW
//! rump sysctl -a                 every parameter (or those under NAME)
//! ```
//!
//! A value is written with the type the parameter has: an integer
//! parameter takes only an integer.

use std::io::Write;

use clap::Args;
use rump::SysctlValue;

use super::{usage, Result, ServerArg, Sys, ToolError};

/// Arguments of `rump sysctl`.
#[derive(Args, Debug, Clone)]
pub struct SysctlArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// List every parameter (under the names given, if any).
    #[arg(short = 'a')]
    pub all: bool,
    /// Print values only.
    #[arg(short = 'n')]
    pub values_only: bool,
    /// Write: every argument is NAME=VALUE (also accepted without -w).
    #[arg(short = 'w')]
    pub write: bool,
    /// Quiet: print nothing for writes.
    #[arg(short = 'q')]
    pub quiet: bool,
    pub names: Vec<String>,
}

pub fn run(s: &Sys, a: &SysctlArgs, out: &mut dyn Write) -> Result<i32> {
    if a.all {
        let prefixes: Vec<&str> = if a.names.is_empty() {
            vec![""]
        } else {
            a.names.iter().map(String::as_str).collect()
        };
        for p in prefixes {
            if p.contains('=') {
                return usage("sysctl: -a takes names, not NAME=VALUE");
            }
            let list = s.sysctl_list(p).map_err(ToolError::sys("sysctl -a"))?;
            for (n, v) in list {
                writeln!(out, "{}", line(&n, &v, a.values_only))?;
            }
        }
        return Ok(0);
    }
    if a.names.is_empty() {
        return usage("usage: rump sysctl [-n] NAME... | [-w] NAME=VALUE... | -a [NAME...]");
    }
    let mut code = 0;
    for arg in &a.names {
        match arg.split_once('=') {
            Some((name, value)) => {
                if name.is_empty() {
                    return usage(format!("sysctl: {arg:?}: empty name"));
                }
                let old = s
                    .sysctl_get(name)
                    .map_err(ToolError::sys(format!("sysctl: {name}")))?;
                let new = match old {
                    SysctlValue::Int(_) => {
                        SysctlValue::Int(value.trim().parse().map_err(|_| {
                            ToolError::Usage(format!("sysctl: {name}: {value:?} is not an integer"))
                        })?)
                    }
                    SysctlValue::Str(_) => SysctlValue::Str(value.into()),
                };
                s.sysctl_set(name, new.clone())
                    .map_err(ToolError::sys(format!("sysctl: {name}")))?;
                if !a.quiet {
                    if a.values_only {
                        writeln!(out, "{new}")?;
                    } else {
                        writeln!(out, "{name}: {old} -> {new}")?;
                    }
                }
            }
            None if a.write => {
                return usage(format!("sysctl -w: {arg:?}: expected NAME=VALUE"));
            }
            None => match s.sysctl_get(arg) {
                Ok(v) => writeln!(out, "{}", line(arg, &v, a.values_only))?,
                Err(e) => {
                    // sysctl(8) goes on with the other names.
                    writeln!(out, "sysctl: {arg}: {}", super::errno_text(e))?;
                    code = 1;
                }
            },
        }
    }
    Ok(code)
}

fn line(name: &str, v: &SysctlValue, values_only: bool) -> String {
    if values_only {
        v.to_string()
    } else {
        format!("{name} = {v}")
    }
}
