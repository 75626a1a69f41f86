//! `rump netstat`: sockets, interfaces, routes and protocol statistics in
//! the layouts of NetBSD's netstat(1).
//!
//! ```text
//! rump netstat [-an] [-f inet|inet6]     active sockets (-a: listeners too)
//! rump netstat -i                        interfaces with their counters
//! rump netstat -r [-f inet|inet6]        routing tables
//! rump netstat -s                        per-protocol statistics
//! ```

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};

use clap::Args;
use rump::sys::{IfInfo, NetStats, SockInfo};

use super::ifconfig::format_mac;
use super::route::{format_table, net_name};
use super::{usage, Result, ServerArg, Sys, ToolError};

/// Arguments of `rump netstat`.
#[derive(Args, Debug, Clone)]
pub struct NetstatArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// Show listening and unconnected sockets too.
    #[arg(short = 'a')]
    pub all: bool,
    /// Numeric addresses (the only kind there is).
    #[arg(short = 'n')]
    pub numeric: bool,
    /// Interfaces with counters.
    #[arg(short = 'i')]
    pub interfaces: bool,
    /// Routing tables.
    #[arg(short = 'r')]
    pub routes: bool,
    /// Protocol statistics.
    #[arg(short = 's')]
    pub stats: bool,
    /// Address family: inet or inet6.
    #[arg(short = 'f', value_name = "FAMILY")]
    pub family: Option<String>,
}

pub fn run(s: &Sys, a: &NetstatArgs, out: &mut dyn Write) -> Result<i32> {
    let fam = match a.family.as_deref() {
        None => None,
        Some("inet") => Some(false),
        Some("inet6") => Some(true),
        Some(f) => return usage(format!("netstat: unknown family {f:?} (inet or inet6)")),
    };
    if [a.interfaces, a.routes, a.stats]
        .iter()
        .filter(|b| **b)
        .count()
        > 1
    {
        return usage("netstat: -i, -r and -s are exclusive");
    }
    let e = |what: &'static str| ToolError::sys(format!("netstat {what}"));
    if a.interfaces {
        let ifs = s.if_list().map_err(e("-i"))?;
        write!(out, "{}", format_interfaces(&ifs))?;
    } else if a.routes {
        let routes = s.route_list().map_err(e("-r"))?;
        let ifs = s.if_list().map_err(e("-r"))?;
        write!(out, "{}", format_table(&routes, &ifs, fam))?;
    } else if a.stats {
        let st = s.net_stats().map_err(e("-s"))?;
        write!(out, "{}", format_stats(&st))?;
    } else {
        let socks = s.sock_list().map_err(e("sockets"))?;
        write!(out, "{}", format_sockets(&socks, a.all, fam))?;
    }
    Ok(0)
}

/// `addr.port` as netstat prints endpoints (`*` for any).
pub fn endpoint(e: Option<(IpAddr, u16)>) -> String {
    match e {
        None => "*.*".into(),
        Some((a, p)) => {
            let a = if a.is_unspecified() {
                "*".to_string()
            } else {
                a.to_string()
            };
            let p = if p == 0 { "*".into() } else { p.to_string() };
            format!("{a}.{p}")
        }
    }
}

/// The active-connections table.
pub fn format_sockets(socks: &[SockInfo], all: bool, fam: Option<bool>) -> String {
    let mut s = format!(
        "Active Internet connections{}\n{:<6} {:>6} {:>6}  {:<39} {:<39} {}\n",
        if all { " (including servers)" } else { "" },
        "Proto",
        "Recv-Q",
        "Send-Q",
        "Local Address",
        "Foreign Address",
        "State"
    );
    for k in socks {
        let six = k.proto.ends_with('6');
        if fam.is_some_and(|f| f != six) {
            continue;
        }
        // Without -a, only sockets with a peer (netstat(1)'s rule).
        if !all && k.remote.is_none() {
            continue;
        }
        s += &format!(
            "{:<6} {:>6} {:>6}  {:<39} {:<39} {}\n",
            k.proto,
            k.recv_q,
            k.send_q,
            endpoint(k.local),
            endpoint(k.remote),
            k.state
        );
    }
    s
}

/// `netstat -i`: one `<Link>` row per interface, then one per address.
pub fn format_interfaces(ifs: &[IfInfo]) -> String {
    let mut s = format!(
        "{:<8} {:>5} {:<19} {:<27} {:>10} {:>5} {:>10} {:>5} {:>5}\n",
        "Name", "Mtu", "Network", "Address", "Ipkts", "Ierrs", "Opkts", "Oerrs", "Colls"
    );
    for i in ifs {
        let st = &i.stats;
        let row = |net: &str, addr: &str| {
            format!(
                "{:<8} {:>5} {:<19} {:<27} {:>10} {:>5} {:>10} {:>5} {:>5}\n",
                i.name,
                i.mtu,
                net,
                addr,
                st.rx_packets,
                st.rx_errors,
                st.tx_packets,
                st.tx_errors,
                0
            )
        };
        let mac = if i.kind == "loopback" {
            String::new()
        } else {
            format_mac(&i.mac)
        };
        s += &row("<Link>", &mac);
        for (a, p) in &i.addrs {
            let net = net_name(super::route::mask(*a, *p), *p);
            let addr = match a {
                IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80 => {
                    format!("{v6}%{}", i.name)
                }
                _ => a.to_string(),
            };
            s += &row(&net, &addr);
        }
    }
    s
}

/// `netstat -s`, grouped by protocol as netstat(1) groups it.
pub fn format_stats(st: &NetStats) -> String {
    let mut s = String::new();
    let mut group = |name: &str, rows: &[(u64, &str)]| {
        s += &format!("{name}:\n");
        for (n, what) in rows {
            s += &format!("\t{n} {what}\n");
        }
    };
    group(
        "ip",
        &[
            (st.ip_received, "total packets received"),
            (st.ip_bad_header, "with bad headers"),
            (st.ip_frags_in, "fragments received"),
            (st.ip_fragments_dropped, "fragments dropped"),
            (st.ip_reasm_timeouts, "fragments dropped after timeout"),
            (st.ip_reassembled, "packets reassembled ok"),
            (st.ip_delivered, "packets for this host"),
            (st.ip_forwarded, "packets forwarded"),
            (st.ip_not_forwarded, "packets not forwardable"),
            (st.ip_no_route, "packets no route"),
            (st.ip_ttl_exceeded, "packets with ttl exceeded"),
            (st.ip_sent, "packets sent from this host"),
            (st.ip_frags_out, "fragments created"),
        ],
    );
    group(
        "icmp",
        &[
            (st.icmp_in, "messages received"),
            (st.icmp_in_echo, "echo requests received"),
            (st.icmp_in_unreachable, "destination unreachable received"),
            (st.icmp_in_time_exceeded, "time exceeded received"),
            (st.icmp_out, "messages sent"),
            (st.icmp_out_echo_reply, "echo replies sent"),
            (st.icmp_out_unreachable, "destination unreachable sent"),
            (st.icmp_out_time_exceeded, "time exceeded sent"),
        ],
    );
    group(
        "tcp",
        &[
            (st.tcp_segments_in, "packets received"),
            (st.tcp_active_opens, "connection requests"),
            (st.tcp_passive_opens, "connection accepts"),
            (st.tcp_listen_drops, "listen queue overflows"),
            (st.tcp_resets_sent, "resets sent"),
            (st.tcp_conns, "connections established or closing"),
            (st.tcp_time_wait, "connections in TIME_WAIT"),
        ],
    );
    group(
        "udp",
        &[
            (st.udp_in, "datagrams received"),
            (st.udp_no_port, "dropped due to no socket"),
            (st.udp_rcvbuf_errors, "dropped due to full socket buffers"),
            (st.udp_out, "datagrams output"),
        ],
    );
    group(
        "arp",
        &[
            (st.arp_in, "packets received"),
            (st.arp_requests_sent, "requests sent"),
            (st.arp_replies_sent, "replies sent"),
        ],
    );
    group(
        "ip6",
        &[
            (st.ip6_received, "total packets received"),
            (st.ip6_bad_header, "with bad headers"),
            (st.ip6_delivered, "packets for this host"),
            (st.ip6_forwarded, "packets forwarded"),
            (st.ip6_no_route, "packets no route"),
            (st.ip6_sent, "packets sent from this host"),
        ],
    );
    group(
        "icmp6",
        &[
            (st.icmp6_in, "messages received"),
            (st.icmp6_out, "messages sent"),
            (st.nd_in, "neighbor discovery messages received"),
            (st.nd_solicits_sent, "neighbor solicitations sent"),
            (st.nd_adverts_sent, "neighbor advertisements sent"),
        ],
    );
    group("link", &[(st.bad_frames, "bad frames dropped")]);
    s
}

/// Reads one counter back out of [`format_stats`]'s text (tests and
/// scripts that check a number).
pub fn stat_of(text: &str, group: &str, what: &str) -> Option<u64> {
    let mut in_group = false;
    for line in text.lines() {
        if let Some(g) = line.strip_suffix(':') {
            in_group = g == group;
            continue;
        }
        if in_group {
            let (n, rest) = line.trim().split_once(' ')?;
            if rest == what {
                return n.parse().ok();
            }
        }
    }
    None
}

#[allow(dead_code)]
fn unspecified() -> IpAddr {
    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(endpoint(None), "*.*");
        assert_eq!(endpoint(Some((unspecified(), 7))), "*.7");
        assert_eq!(
            endpoint(Some(("10.0.0.1".parse().unwrap(), 80))),
            "10.0.0.1.80"
        );
        assert_eq!(
            endpoint(Some(("2001:db8::1".parse().unwrap(), 0))),
            "2001:db8::1.*"
        );
    }

    #[test]
    fn stats_round_trip() {
        let st = NetStats {
            ip_forwarded: 17,
            tcp_active_opens: 3,
            ..Default::default()
        };
        let t = format_stats(&st);
        assert_eq!(stat_of(&t, "ip", "packets forwarded"), Some(17));
        assert_eq!(stat_of(&t, "tcp", "connection requests"), Some(3));
        assert_eq!(stat_of(&t, "udp", "connection requests"), None);
    }
}
