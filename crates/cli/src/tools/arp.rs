//! `rump arp` and `rump ndp`: the neighbour tables (ARP for IPv4,
//! neighbour discovery for IPv6) in the layouts of NetBSD's arp(8) and
//! ndp(8).
//!
//! ```text
//! rump arp -a [-n]         every IPv4 entry: ? (10.0.1.2) at b2:a0:..:.. on shmif0
//! rump arp [-n] HOST       one entry
//! rump arp -d HOST         delete an entry
//! rump ndp -a [-n]         every IPv6 entry, in ndp's columns
//! rump ndp -d HOST         delete an entry
//! ```

use std::io::Write;
use std::net::IpAddr;

use clap::Args;
use rump::sys::ArpInfo;

use super::ifconfig::format_mac;
use super::{usage, Result, ServerArg, Sys, ToolError};

/// Arguments of `rump arp`.
#[derive(Args, Debug, Clone)]
pub struct ArpArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// Show every entry.
    #[arg(short = 'a')]
    pub all: bool,
    /// Numeric output (the only kind there is).
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Delete the entry for HOST.
    #[arg(short = 'd')]
    pub delete: bool,
    pub host: Option<String>,
}

/// Arguments of `rump ndp` (the same options).
pub type NdpArgs = ArpArgs;

pub fn run_arp(s: &Sys, a: &ArpArgs, out: &mut dyn Write) -> Result<i32> {
    run_table(s, a, false, out)
}

pub fn run_ndp(s: &Sys, a: &ArpArgs, out: &mut dyn Write) -> Result<i32> {
    run_table(s, a, true, out)
}

fn run_table(s: &Sys, a: &ArpArgs, six: bool, out: &mut dyn Write) -> Result<i32> {
    let tool = if six { "ndp" } else { "arp" };
    let host = match &a.host {
        Some(h) => match h.parse::<IpAddr>() {
            Ok(ip) if ip.is_ipv6() == six => Some(ip),
            _ => {
                return usage(format!(
                    "{tool}: {h}: not an IPv{} address",
                    if six { 6 } else { 4 }
                ))
            }
        },
        None => None,
    };
    match (a.all, a.delete, host) {
        (true, false, None) | (false, false, Some(_)) => {
            let list = s.arp_list().map_err(ToolError::sys(tool))?;
            let list: Vec<&ArpInfo> = list
                .iter()
                .filter(|e| e.ip.is_ipv6() == six && host.is_none_or(|h| h == e.ip))
                .collect();
            if let (Some(h), true) = (host, list.is_empty()) {
                writeln!(out, "{h} ({h}) -- no entry")?;
                return Ok(1);
            }
            let text = if six {
                format_ndp(&list)
            } else {
                format_arp(&list)
            };
            write!(out, "{text}")?;
            Ok(0)
        }
        (false, true, Some(h)) => {
            s.arp_delete(h)
                .map_err(ToolError::sys(format!("{tool} -d {h}")))?;
            writeln!(out, "{h} ({h}) deleted")?;
            Ok(0)
        }
        _ => usage(format!("usage: rump {tool} -a [-n] | [-n] HOST | -d HOST")),
    }
}

/// arp(8)'s lines.
pub fn format_arp(list: &[&ArpInfo]) -> String {
    list.iter()
        .map(|e| {
            let mac = match e.mac {
                Some(m) => format_mac(&m),
                None => "(incomplete)".into(),
            };
            format!("? ({}) at {mac} on {}\n", e.ip, e.ifname)
        })
        .collect()
}

/// ndp(8)'s columns. We keep no expiry times or router flags, so those
/// columns say so (`-` and no flags).
pub fn format_ndp(list: &[&ArpInfo]) -> String {
    let mut s = format!(
        "{:<40} {:<18} {:<8} {:<9} {} {}\n",
        "Neighbor", "Linklayer Address", "Netif", "Expire", "S", "Flags"
    );
    for e in list {
        let ip = match e.ip {
            IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                format!("{v6}%{}", e.ifname)
            }
            ip => ip.to_string(),
        };
        let (mac, st) = match e.mac {
            Some(m) => (format_mac(&m), "R"),
            None => ("(incomplete)".into(), "I"),
        };
        s += &format!("{ip:<40} {mac:<18} {:<8} {:<9} {st} \n", e.ifname, "-");
    }
    s
}
