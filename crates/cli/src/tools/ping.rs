//! `rump ping` and `rump ping6`: ICMP and ICMPv6 echo through the
//! kernel's ping sockets (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`),
//! printing what NetBSD's ping(8) and ping6(8) print.
//!
//! ```text
//! rump ping  [-q] [-c COUNT] [-i WAIT] [-s SIZE] [-W MAXWAIT] [-w DEADLINE] HOST
//! rump ping6 [-q] [-c COUNT] [-i WAIT] [-s SIZE] [-W MAXWAIT] [-w DEADLINE] HOST[%IF]
//! ```
//!
//! Exit status as ping(8): 0 when a reply came, 2 when none did, 1 for a
//! kernel error (no route, say), 2 for wrong arguments. Times are taken
//! by the tool, so against a server they include the round trips to it.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use clap::Args;
use rump::sys::consts::{af, ipproto, sock};
use rump::sys::{Cmsg, SockAddr, SockOpt};
use rump::Errno;

use super::{usage, Result, ServerArg, Sys, ToolError};

/// Arguments of `rump ping` and `rump ping6`.
#[derive(Args, Debug, Clone)]
pub struct PingArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// Stop after COUNT replies... or requests (default: until -w or forever).
    #[arg(short = 'c', value_name = "COUNT")]
    pub count: Option<u64>,
    /// Seconds between requests (fractions allowed; at least 0.01).
    #[arg(short = 'i', value_name = "WAIT", default_value_t = 1.0)]
    pub interval: f64,
    /// Data bytes per request (after the 8-byte ICMP header).
    #[arg(short = 's', value_name = "SIZE", default_value_t = 56)]
    pub size: usize,
    /// Seconds to wait for replies after the last request.
    #[arg(short = 'W', value_name = "MAXWAIT", default_value_t = 10.0)]
    pub maxwait: f64,
    /// Stop after this many seconds whatever the count.
    #[arg(short = 'w', value_name = "DEADLINE")]
    pub deadline: Option<f64>,
    /// Print only the summary.
    #[arg(short = 'q')]
    pub quiet: bool,
    /// Numeric output (the only kind there is).
    #[arg(short = 'n')]
    pub numeric: bool,
    pub host: String,
}

/// The most data a request may carry (an IPv4 datagram of 65535 bytes).
pub const MAX_SIZE: usize = 65535 - 20 - 8;

/// What one ping run saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PingStats {
    pub transmitted: u64,
    pub received: u64,
    /// Replies whose data differed from what was sent.
    pub wrong_data: u64,
    pub duplicates: u64,
    /// Round-trip times in milliseconds, in arrival order.
    pub rtts_ms: Vec<f64>,
}

impl PingStats {
    /// `min/avg/max/stddev` in milliseconds.
    pub fn summary(&self) -> Option<(f64, f64, f64, f64)> {
        if self.rtts_ms.is_empty() {
            return None;
        }
        let n = self.rtts_ms.len() as f64;
        let min = self.rtts_ms.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = self.rtts_ms.iter().cloned().fold(0.0, f64::max);
        let avg = self.rtts_ms.iter().sum::<f64>() / n;
        let var = self
            .rtts_ms
            .iter()
            .map(|t| (t - avg) * (t - avg))
            .sum::<f64>()
            / n;
        Some((min, avg, max, var.sqrt()))
    }

    pub fn loss_percent(&self) -> f64 {
        if self.transmitted == 0 {
            return 0.0;
        }
        let lost = self.transmitted.saturating_sub(self.received);
        lost as f64 * 100.0 / self.transmitted as f64
    }
}

pub fn run(s: &Sys, a: &PingArgs, six: bool, out: &mut dyn Write) -> Result<i32> {
    let tool = if six { "ping6" } else { "ping" };
    if !(a.interval.is_finite() && a.interval >= 0.01) {
        return usage(format!("{tool}: -i {}: at least 0.01 seconds", a.interval));
    }
    if !(a.maxwait.is_finite() && a.maxwait >= 0.0)
        || a.deadline.is_some_and(|d| !(d.is_finite() && d > 0.0))
    {
        return usage(format!("{tool}: bad -W or -w"));
    }
    if a.size > MAX_SIZE {
        return usage(format!("{tool}: -s {}: at most {MAX_SIZE}", a.size));
    }
    if a.count == Some(0) {
        return usage(format!("{tool}: -c 0: nothing to send"));
    }
    let (dst, scope) = parse_host(s, &a.host, six)?;
    let stats = ping(s, a, dst, scope, out)?;
    write!(out, "{}", format_summary(&a.host, dst, &stats, six))?;
    Ok(if stats.received > 0 { 0 } else { 2 })
}

/// `HOST` (an address; `fe80::1%shmif0` names the interface of a
/// link-local one).
fn parse_host(s: &Sys, host: &str, six: bool) -> Result<(IpAddr, u32)> {
    let tool = if six { "ping6" } else { "ping" };
    let (addr, zone) = match host.split_once('%') {
        Some((a, z)) if six => (a, Some(z)),
        _ => (host, None),
    };
    let ip: IpAddr = if six {
        addr.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        addr.parse::<Ipv4Addr>().map(IpAddr::V4)
    }
    .map_err(|_| {
        ToolError::Usage(format!(
            "{tool}: {host}: not an IPv{} address",
            if six { 6 } else { 4 }
        ))
    })?;
    let scope = match zone {
        None => 0,
        Some(z) => match z.parse::<u32>() {
            Ok(n) => n,
            Err(_) => s
                .if_list()
                .map_err(ToolError::sys(tool))?
                .iter()
                .find(|i| i.name == z)
                .map(|i| i.index)
                .ok_or_else(|| ToolError::Sys(format!("{tool}: {z}"), Errno::ENXIO))?,
        },
    };
    Ok((ip, scope))
}

/// The request for sequence number `seq`: ICMP header (the kernel fills
/// in the identifier and checksum) and `size` bytes of pattern.
pub fn echo_request(six: bool, seq: u16, size: usize) -> Vec<u8> {
    let mut v = vec![if six { 128 } else { 8 }, 0, 0, 0, 0, 0];
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend((0..size).map(|i| (i as u8).wrapping_add(8)));
    v
}

/// Sends the requests and gathers the replies, printing one line per reply.
pub fn ping(
    s: &Sys,
    a: &PingArgs,
    dst: IpAddr,
    scope: u32,
    out: &mut dyn Write,
) -> Result<PingStats> {
    let six = dst.is_ipv6();
    let tool = if six { "ping6" } else { "ping" };
    let e = |what: &str| ToolError::sys(format!("{tool}: {what}"));
    let fd = if six {
        s.socket(af::INET6, sock::DGRAM, ipproto::ICMPV6)
    } else {
        s.socket(af::INET, sock::DGRAM, ipproto::ICMP)
    }
    .map_err(e("socket"))?;
    let r = ping_on(s, a, fd, dst, scope, out);
    let _ = s.close(fd);
    r
}

fn ping_on(
    s: &Sys,
    a: &PingArgs,
    fd: i32,
    dst: IpAddr,
    scope: u32,
    out: &mut dyn Write,
) -> Result<PingStats> {
    let six = dst.is_ipv6();
    let tool = if six { "ping6" } else { "ping" };
    let e = |what: &str| ToolError::sys(format!("{tool}: {what}"));
    s.setsockopt(
        fd,
        if six {
            SockOpt::RecvHopLimit(true)
        } else {
            SockOpt::RecvTtl(true)
        },
    )
    .map_err(e("setsockopt"))?;
    let to = match dst {
        IpAddr::V4(v4) => SockAddr::inet(v4, 0),
        IpAddr::V6(v6) => SockAddr::Inet6 {
            addr: v6.octets(),
            port: 0,
            flowinfo: 0,
            scope_id: scope,
        },
    };
    if six {
        writeln!(
            out,
            "PING6({}=40+8+{} bytes) --> {}",
            48 + a.size,
            a.size,
            a.host
        )?;
    } else {
        writeln!(out, "PING {} ({dst}): {} data bytes", a.host, a.size)?;
    }
    let start = Instant::now();
    let interval = Duration::from_secs_f64(a.interval);
    let deadline = a.deadline.map(|d| start + Duration::from_secs_f64(d));
    let mut st = PingStats::default();
    let mut sent_at: Vec<Option<Instant>> = Vec::new();
    let mut seen: Vec<bool> = Vec::new();
    let mut next_send = start;
    let mut last_sent: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            break;
        }
        let more = a.count.is_none_or(|c| st.transmitted < c);
        if more && now >= next_send {
            let seq = (st.transmitted & 0xffff) as u16;
            let req = echo_request(six, seq, a.size);
            match s.sendto(fd, &req, Some(to)) {
                Ok(_) => {}
                // A lost request is counted, as ping(8) counts it.
                Err(Errno::EAGAIN | Errno::ENOBUFS | Errno::EHOSTUNREACH) => {}
                Err(err) => return Err(ToolError::Sys(format!("{tool}: sendto"), err)),
            }
            let i = st.transmitted as usize;
            if sent_at.len() <= i {
                sent_at.resize(i + 1, None);
                seen.resize(i + 1, false);
            }
            sent_at[i] = Some(Instant::now());
            st.transmitted += 1;
            last_sent = Some(Instant::now());
            next_send += interval;
            continue;
        }
        // Wait for a reply until the next request is due, or (after the
        // last one) for MAXWAIT, or until the deadline.
        let mut until = if more {
            next_send
        } else {
            if a.count.is_some_and(|c| st.received >= c) {
                break;
            }
            last_sent.unwrap_or(start) + Duration::from_secs_f64(a.maxwait)
        };
        if let Some(d) = deadline {
            until = until.min(d);
        }
        let now = Instant::now();
        if now >= until {
            if more {
                continue;
            }
            break;
        }
        let wait = (until - now).max(Duration::from_millis(1));
        s.setsockopt(fd, SockOpt::RcvTimeo(Some(wait.as_nanos() as u64)))
            .map_err(e("setsockopt"))?;
        let (data, from, control) = match s.recvmsg(fd, a.size + 8 + 64) {
            Ok(r) => r,
            Err(Errno::EAGAIN | Errno::EINTR) => continue,
            // An ICMP error about a request (unreachable, time exceeded).
            Err(err @ (Errno::EHOSTUNREACH | Errno::ENETUNREACH | Errno::ECONNREFUSED)) => {
                if !a.quiet {
                    writeln!(out, "From {dst}: {}", super::errno_text(err))?;
                }
                continue;
            }
            Err(err) => return Err(ToolError::Sys(format!("{tool}: recvmsg"), err)),
        };
        let now = Instant::now();
        let reply = if six { 129 } else { 0 };
        if data.len() < 8 || data[0] != reply {
            continue;
        }
        let seq = u16::from_be_bytes([data[6], data[7]]);
        // Which request: the newest one with this sequence number.
        let Some(i) = (0..sent_at.len())
            .rev()
            .find(|&i| (i & 0xffff) as u16 == seq && sent_at[i].is_some())
        else {
            continue;
        };
        let rtt = (now - sent_at[i].unwrap_or(now)).as_secs_f64() * 1000.0;
        let dup = seen[i];
        seen[i] = true;
        let expect = echo_request(six, seq, a.size);
        let wrong = data.len() != expect.len() || data[8..] != expect[8..];
        if dup {
            st.duplicates += 1;
        } else {
            st.received += 1;
            st.rtts_ms.push(rtt);
        }
        if wrong {
            st.wrong_data += 1;
        }
        if !a.quiet {
            let ttl = control.iter().find_map(|c| match c {
                Cmsg::Ttl(t) | Cmsg::HopLimit(t) => Some(*t),
                _ => None,
            });
            let from = from
                .and_then(|f| f.to_ip(if six { af::INET6 } else { af::INET }).ok())
                .map(|f| f.0)
                .unwrap_or(dst);
            writeln!(
                out,
                "{}",
                format_reply(six, data.len(), from, seq, ttl, rtt, dup, wrong)
            )?;
        }
    }
    Ok(st)
}

/// One reply line.
#[allow(clippy::too_many_arguments)]
pub fn format_reply(
    six: bool,
    len: usize,
    from: IpAddr,
    seq: u16,
    ttl: Option<u8>,
    rtt_ms: f64,
    dup: bool,
    wrong: bool,
) -> String {
    let mut s = if six {
        format!("{len} bytes from {from}, icmp_seq={seq}")
    } else {
        format!("{len} bytes from {from}: icmp_seq={seq}")
    };
    if let Some(t) = ttl {
        s += &format!(" {}={t}", if six { "hlim" } else { "ttl" });
    }
    s += &format!(" time={rtt_ms:.3} ms");
    if dup {
        s += " (DUP!)";
    }
    if wrong {
        s += " (wrong data)";
    }
    s
}

/// The statistics at the end.
pub fn format_summary(host: &str, dst: IpAddr, st: &PingStats, six: bool) -> String {
    let mut s = if six {
        format!("\n--- {dst} ping6 statistics ---\n")
    } else {
        format!("\n----{host} PING Statistics----\n")
    };
    s += &format!(
        "{} packets transmitted, {} packets received, ",
        st.transmitted, st.received
    );
    if st.duplicates > 0 {
        s += &format!("+{} duplicates, ", st.duplicates);
    }
    s += &format!("{:.1}% packet loss\n", st.loss_percent());
    if let Some((min, avg, max, sd)) = st.summary() {
        s += &format!(
            "round-trip min/avg/max/{} = {min:.3}/{avg:.3}/{max:.3}/{sd:.3} ms\n",
            if six { "std-dev" } else { "stddev" }
        );
    }
    s
}

/// Reads `transmitted, received` back out of a summary (tests and
/// scripts).
pub fn parse_summary(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let mut nums = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse::<u64>().ok());
    Some((nums.next()??, nums.next()??))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        let st = PingStats {
            transmitted: 4,
            received: 3,
            rtts_ms: vec![1.0, 2.0, 3.0],
            ..Default::default()
        };
        let t = format_summary("10.0.0.2", "10.0.0.2".parse().unwrap(), &st, false);
        assert!(t.contains("----10.0.0.2 PING Statistics----"), "{t}");
        assert!(
            t.contains("4 packets transmitted, 3 packets received, 25.0% packet loss"),
            "{t}"
        );
        assert!(
            t.contains("round-trip min/avg/max/stddev = 1.000/2.000/3.000/0.816 ms"),
            "{t}"
        );
        assert_eq!(parse_summary(&t), Some((4, 3)));
        let none = PingStats {
            transmitted: 2,
            ..Default::default()
        };
        let t = format_summary("h", "2001:db8::1".parse().unwrap(), &none, true);
        assert!(t.contains("2 packets transmitted, 0 packets received, 100.0% packet loss"));
        assert!(!t.contains("round-trip"));
    }

    #[test]
    fn request_layout() {
        let r = echo_request(false, 0x0102, 4);
        assert_eq!(r, vec![8, 0, 0, 0, 0, 0, 1, 2, 8, 9, 10, 11]);
        assert_eq!(echo_request(true, 0, 0)[0], 128);
    }
}
