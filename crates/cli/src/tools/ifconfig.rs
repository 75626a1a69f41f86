//! `rump ifconfig`: interfaces as NetBSD's ifconfig(8) configures and
//! shows them.
//!
//! ```text
//! rump ifconfig [-a | -l]                 list every interface (-l: names)
//! rump ifconfig IF                        show one
//! rump ifconfig IF create | destroy
//! rump ifconfig IF [inet|inet6] ADDR[/LEN] [netmask MASK | prefixlen LEN] [alias | -alias | delete]
//!                  [up | down] [mtu N] [linkstr STR | -linkstr] [lladdr MAC] [pcap FILE | -pcap]
//! ```
//!
//! Parameters apply left to right, as ifconfig(8) applies them, so
//! `shmif0 create linkstr bus.file inet 10.0.0.1/24 up` configures a new
//! interface in one command. `pcap` is ours: it captures the interface to
//! a host file.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use clap::Args;
use rump::sys::IfInfo;

use super::{usage, Result, ServerArg, Sys, ToolError};

/// Arguments of `rump ifconfig`.
#[derive(Args, Debug, Clone)]
pub struct IfconfigArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// List every interface.
    #[arg(short = 'a')]
    pub all: bool,
    /// List the interface names only.
    #[arg(short = 'l')]
    pub names: bool,
    /// The interface.
    pub interface: Option<String>,
    /// Parameters, applied left to right.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub params: Vec<String>,
}

/// One change `ifconfig` makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfOp {
    Create,
    Destroy,
    Up,
    Down,
    Mtu(u32),
    Linkstr(String),
    NoLinkstr,
    Lladdr([u8; 6]),
    AddAddr(IpAddr, u8),
    DelAddr(IpAddr),
    Pcap(String),
    NoPcap,
}

pub const USAGE: &str = "usage: rump ifconfig [-a | -l] | IF [create | destroy] \
[[inet|inet6] ADDR[/LEN] [netmask MASK | prefixlen LEN] [alias | -alias | delete]] \
[up | down] [mtu N] [linkstr STR | -linkstr] [lladdr MAC] [pcap FILE | -pcap]";

/// Runs `ifconfig`.
pub fn run(s: &Sys, a: &IfconfigArgs, out: &mut dyn Write) -> Result<i32> {
    let Some(name) = &a.interface else {
        let ifs = s.if_list().map_err(ToolError::sys("ifconfig"))?;
        if a.names {
            let names: Vec<&str> = ifs.iter().map(|i| i.name.as_str()).collect();
            writeln!(out, "{}", names.join(" "))?;
        } else {
            for i in &ifs {
                write!(out, "{}", format_iface(i))?;
            }
        }
        return Ok(0);
    };
    if a.all || a.names {
        return usage(format!("-a and -l take no interface\n{USAGE}"));
    }
    if name.starts_with('-') {
        return usage(format!("unknown option {name}\n{USAGE}"));
    }
    let ops = parse_params(&a.params).map_err(|m| ToolError::Usage(format!("{m}\n{USAGE}")))?;
    if ops.is_empty() {
        let ifs = s.if_list().map_err(ToolError::sys("ifconfig"))?;
        return match ifs.iter().find(|i| &i.name == name) {
            Some(i) => {
                write!(out, "{}", format_iface(i))?;
                Ok(0)
            }
            None => Err(ToolError::Sys(
                format!("ifconfig {name}"),
                rump::Errno::ENXIO,
            )),
        };
    }
    apply(s, name, &ops)?;
    Ok(0)
}

/// Applies `ops` to interface `name`, in order.
pub fn apply(s: &Sys, name: &str, ops: &[IfOp]) -> Result<()> {
    for op in ops {
        let what = |w: &str| ToolError::sys(format!("ifconfig {name} {w}"));
        match op {
            IfOp::Create => {
                s.if_create(name).map_err(what("create"))?;
            }
            IfOp::Destroy => s.if_destroy(name).map_err(what("destroy"))?,
            IfOp::Up => s.if_set_up(name, true).map_err(what("up"))?,
            IfOp::Down => s.if_set_up(name, false).map_err(what("down"))?,
            IfOp::Mtu(m) => s.if_set_mtu(name, *m).map_err(what("mtu"))?,
            IfOp::Linkstr(l) => s.if_set_link(name, l).map_err(what("linkstr"))?,
            IfOp::NoLinkstr => s.if_set_link(name, "").map_err(what("-linkstr"))?,
            IfOp::Lladdr(m) => s.if_set_mac(name, *m).map_err(what("lladdr"))?,
            IfOp::AddAddr(ip, p) => s
                .if_add_addr(name, *ip, *p)
                .map_err(what(&format!("{} {ip}/{p}", family(ip))))?,
            IfOp::DelAddr(ip) => s
                .if_del_addr(name, *ip)
                .map_err(what(&format!("{} {ip} delete", family(ip))))?,
            IfOp::Pcap(f) => s.if_set_pcap(name, Some(f)).map_err(what("pcap"))?,
            IfOp::NoPcap => s.if_set_pcap(name, None).map_err(what("-pcap"))?,
        }
    }
    Ok(())
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() {
        "inet"
    } else {
        "inet6"
    }
}

/// Parses ifconfig's parameter words.
pub fn parse_params(words: &[String]) -> std::result::Result<Vec<IfOp>, String> {
    let mut ops = Vec::new();
    let mut it = words.iter().map(String::as_str).peekable();
    let mut fam: Option<bool> = None; // Some(true): inet6
    while let Some(w) = it.next() {
        let mut arg = |what: &str| {
            it.next()
                .map(str::to_string)
                .ok_or_else(|| format!("{what}: missing argument"))
        };
        match w {
            "create" => ops.push(IfOp::Create),
            "destroy" => ops.push(IfOp::Destroy),
            "up" => ops.push(IfOp::Up),
            "down" => ops.push(IfOp::Down),
            "mtu" => {
                let v = arg("mtu")?;
                ops.push(IfOp::Mtu(
                    v.parse().map_err(|_| format!("mtu: bad value {v:?}"))?,
                ));
            }
            "linkstr" => ops.push(IfOp::Linkstr(arg("linkstr")?)),
            "-linkstr" => ops.push(IfOp::NoLinkstr),
            "lladdr" | "link" => {
                let v = arg(w)?;
                ops.push(IfOp::Lladdr(
                    parse_mac(&v).ok_or_else(|| format!("{w}: bad address {v:?}"))?,
                ));
            }
            "pcap" => ops.push(IfOp::Pcap(arg("pcap")?)),
            "-pcap" => ops.push(IfOp::NoPcap),
            "inet" => fam = Some(false),
            "inet6" => fam = Some(true),
            _ => {
                let (ip, mut prefix) = parse_addr(w, fam)?;
                // An address's modifiers follow it.
                let mut delete = false;
                while let Some(&m) = it.peek() {
                    match m {
                        "netmask" => {
                            it.next();
                            let v = it.next().ok_or("netmask: missing argument")?;
                            if ip.is_ipv6() {
                                return Err("netmask is for inet; use prefixlen".into());
                            }
                            prefix = Some(parse_netmask(v).ok_or(format!("bad netmask {v:?}"))?);
                        }
                        "prefixlen" => {
                            it.next();
                            let v = it.next().ok_or("prefixlen: missing argument")?;
                            let max = if ip.is_ipv4() { 32 } else { 128 };
                            let n: u8 = v
                                .parse()
                                .ok()
                                .filter(|n| *n <= max)
                                .ok_or(format!("bad prefixlen {v:?}"))?;
                            prefix = Some(n);
                        }
                        "alias" | "add" => {
                            it.next();
                        }
                        "-alias" | "delete" => {
                            it.next();
                            delete = true;
                        }
                        _ => break,
                    }
                }
                if delete {
                    ops.push(IfOp::DelAddr(ip));
                } else {
                    ops.push(IfOp::AddAddr(ip, prefix.unwrap_or(default_prefix(ip))));
                }
            }
        }
    }
    Ok(ops)
}

/// `ADDR` or `ADDR/LEN`, of family `fam` when one was named.
fn parse_addr(w: &str, fam: Option<bool>) -> std::result::Result<(IpAddr, Option<u8>), String> {
    let (a, len) = match w.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (w, None),
    };
    let ip: IpAddr = match fam {
        Some(true) => a.parse::<Ipv6Addr>().map(IpAddr::V6),
        Some(false) => a.parse::<Ipv4Addr>().map(IpAddr::V4),
        None => a.parse(),
    }
    .map_err(|_| format!("unknown parameter or bad address {w:?}"))?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        Some(l) => Some(
            l.parse::<u8>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or(format!("bad prefix length in {w:?}"))?,
        ),
        None => None,
    };
    Ok((ip, prefix))
}

/// The prefix an address gets without one: the class of an IPv4 address
/// (as ifconfig(8) does), 64 for IPv6.
pub fn default_prefix(ip: IpAddr) -> u8 {
    match ip {
        IpAddr::V4(a) => match a.octets()[0] {
            0..=127 => 8,
            128..=191 => 16,
            _ => 24,
        },
        IpAddr::V6(_) => 64,
    }
}

/// `255.255.255.0` or `0xffffff00`: contiguous masks only.
pub fn parse_netmask(s: &str) -> Option<u8> {
    let m = match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).ok()?,
        None => u32::from(s.parse::<Ipv4Addr>().ok()?),
    };
    let n = m.leading_ones();
    (m.checked_shl(n).unwrap_or(0) == 0).then_some(n as u8)
}

/// `b2:a0:00:00:00:01`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut n = 0;
    for (i, part) in s.split(':').enumerate() {
        if i >= 6 || part.is_empty() || part.len() > 2 {
            return None;
        }
        mac[i] = u8::from_str_radix(part, 16).ok()?;
        n += 1;
    }
    (n == 6).then_some(mac)
}

pub fn format_mac(m: &[u8; 6]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Interface flags as NetBSD's `<net/if.h>` numbers them.
pub fn if_flags(i: &IfInfo) -> (u32, Vec<&'static str>) {
    let mut bits = 0u32;
    let mut names = Vec::new();
    let mut set = |b: u32, n: &'static str| {
        bits |= b;
        names.push(n);
    };
    let lo = i.kind == "loopback";
    // A packet interface is point-to-point (the test tool at the other
    // end of its API), like a tun device; its link is always there.
    let p2p = i.kind == "pkt";
    let ether = !lo && !p2p;
    if i.up {
        set(0x1, "UP");
    }
    if ether {
        set(0x2, "BROADCAST");
    }
    if lo {
        set(0x8, "LOOPBACK");
    }
    if p2p {
        set(0x10, "POINTOPOINT");
    }
    if i.up && (lo || p2p || !i.link.is_empty()) {
        set(0x40, "RUNNING");
    }
    if ether {
        set(0x800, "SIMPLEX");
    }
    set(0x8000, "MULTICAST");
    (bits, names)
}

/// One interface in ifconfig(8)'s layout.
pub fn format_iface(i: &IfInfo) -> String {
    let (bits, names) = if_flags(i);
    let mut s = format!(
        "{}: flags=0x{bits:x}<{}> mtu {}\n",
        i.name,
        names.join(","),
        i.mtu
    );
    let has_mac = i.kind != "loopback" && i.kind != "pkt";
    if has_mac {
        s += &format!("\taddress: {}\n", format_mac(&i.mac));
    }
    if !i.link.is_empty() {
        s += &format!("\tlinkstr: {}\n", i.link);
    }
    if i.pcap {
        s += "\tpcap: on\n";
    }
    for (a, p) in &i.addrs {
        match a {
            IpAddr::V4(v4) => {
                let bcast = if *p < 31 && has_mac {
                    let host = u32::MAX.checked_shr(*p as u32).unwrap_or(0);
                    format!(" broadcast {}", Ipv4Addr::from(u32::from(*v4) | host))
                } else {
                    String::new()
                };
                s += &format!("\tinet {v4}/{p}{bcast} flags 0x0\n");
            }
            IpAddr::V6(v6) => {
                if v6.segments()[0] & 0xffc0 == 0xfe80 {
                    s += &format!(
                        "\tinet6 {v6}%{}/{p} flags 0x0 scopeid 0x{:x}\n",
                        i.name, i.index
                    );
                } else {
                    s += &format!("\tinet6 {v6}/{p} flags 0x0\n");
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parameters_in_order() {
        let ops = parse_params(&words(
            "create linkstr bus.file inet 10.0.0.1 netmask 255.255.255.0 inet6 2001:db8::1 prefixlen 48 mtu 1400 up",
        ))
        .unwrap();
        assert_eq!(
            ops,
            vec![
                IfOp::Create,
                IfOp::Linkstr("bus.file".into()),
                IfOp::AddAddr("10.0.0.1".parse().unwrap(), 24),
                IfOp::AddAddr("2001:db8::1".parse().unwrap(), 48),
                IfOp::Mtu(1400),
                IfOp::Up,
            ]
        );
        assert_eq!(
            parse_params(&words("10.1.2.3/16 10.0.0.1 -alias 172.16.0.1")).unwrap(),
            vec![
                IfOp::AddAddr("10.1.2.3".parse().unwrap(), 16),
                IfOp::DelAddr("10.0.0.1".parse().unwrap()),
                IfOp::AddAddr("172.16.0.1".parse().unwrap(), 16),
            ]
        );
    }

    #[test]
    fn bad_parameters() {
        for bad in [
            "mtu",
            "mtu big",
            "inet 2001:db8::1",
            "inet6 10.0.0.1",
            "10.0.0.1/33",
            "2001:db8::1/129",
            "10.0.0.1 netmask 255.0.255.0",
            "2001:db8::1 netmask 255.0.0.0",
            "frobnicate",
            "lladdr 1:2:3",
            "lladdr 01:02:03:04:05:06:07",
            "linkstr",
        ] {
            assert!(parse_params(&words(bad)).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn masks_and_macs() {
        assert_eq!(parse_netmask("255.255.255.0"), Some(24));
        assert_eq!(parse_netmask("0xffff0000"), Some(16));
        assert_eq!(parse_netmask("0.0.0.0"), Some(0));
        assert_eq!(parse_netmask("255.255.255.255"), Some(32));
        assert_eq!(parse_netmask("255.0.255.0"), None);
        assert_eq!(
            parse_mac("b2:a0:0:1:2:ff"),
            Some([0xb2, 0xa0, 0, 1, 2, 0xff])
        );
        assert_eq!(
            format_mac(&[0xb2, 0xa0, 0, 1, 2, 0xff]),
            "b2:a0:00:01:02:ff"
        );
    }

    #[test]
    fn layout() {
        let i = IfInfo {
            index: 2,
            name: "shmif0".into(),
            kind: "shmif".into(),
            link: "bus".into(),
            mac: [0xb2, 0xa0, 1, 2, 3, 4],
            mtu: 1500,
            up: true,
            addrs: vec![
                ("10.0.0.1".parse().unwrap(), 24),
                ("fe80::1".parse().unwrap(), 64),
            ],
            pcap: false,
            stats: Default::default(),
        };
        assert_eq!(
            format_iface(&i),
            "shmif0: flags=0x8843<UP,BROADCAST,RUNNING,SIMPLEX,MULTICAST> mtu 1500\n\
             \taddress: b2:a0:01:02:03:04\n\
             \tlinkstr: bus\n\
             \tinet 10.0.0.1/24 broadcast 10.0.0.255 flags 0x0\n\
             \tinet6 fe80::1%shmif0/64 flags 0x0 scopeid 0x2\n"
        );
        let p = IfInfo {
            index: 3,
            name: "pkt0".into(),
            kind: "pkt".into(),
            link: String::new(),
            mac: [0; 6],
            mtu: 1500,
            up: true,
            addrs: vec![("10.0.0.1".parse().unwrap(), 24)],
            pcap: false,
            stats: Default::default(),
        };
        assert_eq!(
            format_iface(&p),
            "pkt0: flags=0x8051<UP,POINTOPOINT,RUNNING,MULTICAST> mtu 1500\n\
             \tinet 10.0.0.1/24 flags 0x0\n"
        );
    }
}
