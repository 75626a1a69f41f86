//! `rump route`: the routing table as NetBSD's route(8) changes and shows
//! it.
//!
//! ```text
//! rump route [-n] show [-inet | -inet6]
//! rump route add [-net | -host] [-inet | -inet6] DST[/LEN] [-netmask MASK | -prefixlen LEN] GATEWAY [-ifp IF]
//! rump route add [-inet6] default GATEWAY
//! rump route add -inet6 DST/LEN -iface IF          (a network on a link, no gateway)
//! rump route delete [-inet | -inet6] DST[/LEN] [-netmask MASK | -prefixlen LEN]
//! rump route get [-inet | -inet6] DST
//! ```
//!
//! `get` reports the route the table's longest match gives (the same rule
//! the kernel's forwarding uses), computed from the listed table.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use clap::Args;
use rump::sys::{IfInfo, RouteInfo, RouteSpec};

use super::ifconfig::parse_netmask;
use super::{Result, ServerArg, Sys, ToolError};

/// Arguments of `rump route`.
#[derive(Args, Debug, Clone)]
pub struct RouteArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// Numeric output (the only kind there is; accepted for scripts).
    #[arg(short = 'n')]
    pub numeric: bool,
    /// show, add, delete or get, and their arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    pub words: Vec<String>,
}

pub const USAGE: &str = "usage: rump route [-n] show [-inet|-inet6] | \
add [-net|-host] [-inet|-inet6] DST[/LEN]|default [-netmask M|-prefixlen N] GATEWAY|-iface IF [-ifp IF] | \
delete [-inet|-inet6] DST[/LEN] | get [-inet|-inet6] DST";

/// A parsed `route` command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteCmd {
    Show(Option<bool>),
    Add(RouteSpec),
    Delete(IpAddr, u8),
    Get(IpAddr),
}

pub fn run(s: &Sys, a: &RouteArgs, out: &mut dyn Write) -> Result<i32> {
    let cmd = parse(&a.words).map_err(|m| ToolError::Usage(format!("{m}\n{USAGE}")))?;
    match cmd {
        RouteCmd::Show(fam) => {
            let routes = s.route_list().map_err(ToolError::sys("route show"))?;
            let ifs = s.if_list().map_err(ToolError::sys("route show"))?;
            write!(out, "{}", format_table(&routes, &ifs, fam))?;
        }
        RouteCmd::Add(spec) => {
            let what = format!("route add {}", net_name(spec.dst, spec.prefix));
            s.route_add(spec.clone()).map_err(ToolError::sys(what))?;
            let gw = match (&spec.gateway, &spec.ifname) {
                (Some(g), _) => g.to_string(),
                (None, Some(i)) => i.clone(),
                (None, None) => String::new(),
            };
            let kind = if is_host(spec.dst, spec.prefix) {
                "host"
            } else {
                "net"
            };
            writeln!(
                out,
                "add {kind} {}: gateway {gw}",
                net_name(spec.dst, spec.prefix)
            )?;
        }
        RouteCmd::Delete(dst, prefix) => {
            let what = format!("route delete {}", net_name(dst, prefix));
            s.route_delete(dst, prefix).map_err(ToolError::sys(what))?;
            let kind = if is_host(dst, prefix) { "host" } else { "net" };
            writeln!(out, "delete {kind} {}", net_name(dst, prefix))?;
        }
        RouteCmd::Get(dst) => {
            let routes = s.route_list().map_err(ToolError::sys("route get"))?;
            match lookup(&routes, dst) {
                Some(r) => write!(out, "{}", format_get(dst, r))?,
                None => {
                    return Err(ToolError::Sys(
                        format!("route get {dst}"),
                        rump::Errno::ESRCH,
                    ))
                }
            }
        }
    }
    Ok(0)
}

/// Parses the words after `route`.
pub fn parse(words: &[String]) -> std::result::Result<RouteCmd, String> {
    let mut it = words.iter().map(String::as_str);
    let verb = it.next().ok_or("missing command")?;
    let mut fam: Option<bool> = None;
    let mut host = false;
    let mut prefix: Option<u8> = None;
    let mut ifp: Option<String> = None;
    let mut iface = false;
    let mut pos: Vec<&str> = Vec::new();
    while let Some(w) = it.next() {
        match w {
            "-inet" => fam = Some(false),
            "-inet6" => fam = Some(true),
            "-net" => host = false,
            "-host" => host = true,
            "-netmask" => {
                let v = it.next().ok_or("-netmask: missing argument")?;
                prefix = Some(parse_netmask(v).ok_or(format!("bad netmask {v:?}"))?);
            }
            "-prefixlen" => {
                let v = it.next().ok_or("-prefixlen: missing argument")?;
                prefix = Some(v.parse().map_err(|_| format!("bad prefixlen {v:?}"))?);
            }
            "-ifp" => ifp = Some(it.next().ok_or("-ifp: missing argument")?.to_string()),
            "-iface" | "-interface" => iface = true,
            w if w.starts_with('-') => return Err(format!("unknown option {w}")),
            w => pos.push(w),
        }
    }
    let dst = |w: &str| -> std::result::Result<(IpAddr, u8), String> {
        let six = fam == Some(true);
        if w == "default" {
            return Ok(if six {
                (IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0)
            } else {
                (IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
            });
        }
        let (a, l) = match w.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (w, None),
        };
        let ip: IpAddr = a.parse().map_err(|_| format!("bad address {w:?}"))?;
        if fam.is_some_and(|f| f != ip.is_ipv6()) {
            return Err(format!("{w}: not of the family asked for"));
        }
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let len = match (l, prefix) {
            (Some(l), _) => l
                .parse::<u8>()
                .map_err(|_| format!("bad prefix in {w:?}"))?,
            (None, Some(p)) => p,
            (None, None) if host => max,
            (None, None) => max,
        };
        if len > max {
            return Err(format!("prefix length {len} too long for {a}"));
        }
        Ok((mask(ip, len), len))
    };
    match verb {
        "show" => {
            if !pos.is_empty() {
                return Err(format!("show: unexpected {:?}", pos[0]));
            }
            Ok(RouteCmd::Show(fam))
        }
        "add" => {
            let (d, len) = dst(pos.first().ok_or("add: missing destination")?)?;
            let gateway = match (pos.get(1), iface) {
                (Some(g), false) => {
                    let g: IpAddr = g.parse().map_err(|_| format!("bad gateway {g:?}"))?;
                    if g.is_ipv6() != d.is_ipv6() {
                        return Err("gateway and destination of different families".into());
                    }
                    Some(g)
                }
                (Some(i), true) => {
                    ifp.get_or_insert_with(|| i.to_string());
                    None
                }
                (None, _) => {
                    if ifp.is_none() {
                        return Err("add: missing gateway".into());
                    }
                    None
                }
            };
            if pos.len() > 2 {
                return Err(format!("add: unexpected {:?}", pos[2]));
            }
            Ok(RouteCmd::Add(RouteSpec {
                dst: d,
                prefix: len,
                gateway,
                ifname: ifp,
            }))
        }
        "delete" | "del" => {
            if pos.len() > 2 {
                return Err(format!("delete: unexpected {:?}", pos[2]));
            }
            let (d, len) = dst(pos.first().ok_or("delete: missing destination")?)?;
            Ok(RouteCmd::Delete(d, len))
        }
        "get" => {
            if pos.len() != 1 {
                return Err("get: one destination".into());
            }
            let (d, _) = dst(pos[0])?;
            Ok(RouteCmd::Get(d))
        }
        v => Err(format!("unknown command {v:?}")),
    }
}

/// `ip` with the bits beyond `len` cleared.
pub fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - len as u32).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

fn is_host(ip: IpAddr, len: u8) -> bool {
    len == if ip.is_ipv4() { 32 } else { 128 }
}

/// A destination as netstat -rn prints it: `default`, a host without a
/// length, `10.0.1/24` (IPv4 networks drop the octets the mask clears).
pub fn net_name(ip: IpAddr, len: u8) -> String {
    if len == 0 && ip.is_unspecified() {
        return "default".into();
    }
    if is_host(ip, len) {
        return ip.to_string();
    }
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            let keep = (len as usize).div_ceil(8).max(1);
            let parts: Vec<String> = o[..keep].iter().map(|b| b.to_string()).collect();
            format!("{}/{len}", parts.join("."))
        }
        IpAddr::V6(a) => format!("{a}/{len}"),
    }
}

/// The route the longest match gives for `dst`.
pub fn lookup(routes: &[RouteInfo], dst: IpAddr) -> Option<&RouteInfo> {
    routes
        .iter()
        .filter(|r| r.dst.is_ipv4() == dst.is_ipv4() && mask(dst, r.prefix) == r.dst)
        .max_by_key(|r| (r.prefix, r.connected))
}

fn flags(r: &RouteInfo) -> String {
    let mut f = String::from("U");
    if r.gateway.is_some() {
        f.push('G');
    }
    if is_host(r.dst, r.prefix) {
        f.push('H');
    }
    f.push(if r.connected { 'C' } else { 'S' });
    f
}

/// The table in netstat -rn's layout, by family.
pub fn format_table(routes: &[RouteInfo], ifs: &[IfInfo], fam: Option<bool>) -> String {
    let mut s = String::from("Routing tables\n");
    for (six, title) in [(false, "Internet"), (true, "Internet6")] {
        if fam.is_some_and(|f| f != six) {
            continue;
        }
        s += &format!(
            "\n{title}:\n{:<31} {:<31} {:<6} {:>4} {:>8} {:>6} Interface\n",
            "Destination", "Gateway", "Flags", "Refs", "Use", "Mtu"
        );
        for r in routes.iter().filter(|r| r.dst.is_ipv6() == six) {
            let gw = match r.gateway {
                Some(g) => g.to_string(),
                None => match ifs.iter().find(|i| i.name == r.ifname) {
                    Some(i) => format!("link#{}", i.index),
                    None => "link".into(),
                },
            };
            s += &format!(
                "{:<31} {:<31} {:<6} {:>4} {:>8} {:>6} {}\n",
                net_name(r.dst, r.prefix),
                gw,
                flags(r),
                "-",
                "-",
                "-",
                r.ifname
            );
        }
    }
    s
}

/// `route get`'s report.
pub fn format_get(dst: IpAddr, r: &RouteInfo) -> String {
    let mut s = format!("   route to: {dst}\ndestination: {}\n", r.dst);
    match r.dst {
        IpAddr::V4(_) => {
            let m = u32::MAX.checked_shl(32 - r.prefix as u32).unwrap_or(0);
            s += &format!("       mask: {}\n", Ipv4Addr::from(m));
        }
        IpAddr::V6(_) => s += &format!("  prefixlen: {}\n", r.prefix),
    }
    if let Some(g) = r.gateway {
        s += &format!("    gateway: {g}\n");
    }
    let mut f = vec!["UP"];
    if r.gateway.is_some() {
        f.push("GATEWAY");
    }
    if is_host(r.dst, r.prefix) {
        f.push("HOST");
    }
    f.push("DONE");
    f.push(if r.connected { "CONNECTED" } else { "STATIC" });
    s += &format!(
        "  interface: {}\n      flags: <{}>\n",
        r.ifname,
        f.join(",")
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> std::result::Result<RouteCmd, String> {
        parse(&s.split_whitespace().map(String::from).collect::<Vec<_>>())
    }

    #[test]
    fn commands() {
        assert_eq!(
            p("add -net 10.0.2.0/24 10.0.1.2"),
            Ok(RouteCmd::Add(RouteSpec {
                dst: "10.0.2.0".parse().unwrap(),
                prefix: 24,
                gateway: Some("10.0.1.2".parse().unwrap()),
                ifname: None,
            }))
        );
        assert_eq!(
            p("add 10.0.2.7 -netmask 255.255.0.0 10.0.1.2 -ifp shmif1"),
            Ok(RouteCmd::Add(RouteSpec {
                dst: "10.0.0.0".parse().unwrap(),
                prefix: 16,
                gateway: Some("10.0.1.2".parse().unwrap()),
                ifname: Some("shmif1".into()),
            }))
        );
        assert_eq!(
            p("add -inet6 default 2001:db8:1::1"),
            Ok(RouteCmd::Add(RouteSpec {
                dst: "::".parse().unwrap(),
                prefix: 0,
                gateway: Some("2001:db8:1::1".parse().unwrap()),
                ifname: None,
            }))
        );
        assert_eq!(
            p("delete -host 10.0.2.7"),
            Ok(RouteCmd::Delete("10.0.2.7".parse().unwrap(), 32))
        );
        assert_eq!(p("show -inet6"), Ok(RouteCmd::Show(Some(true))));
        assert_eq!(
            p("get 10.0.2.9"),
            Ok(RouteCmd::Get("10.0.2.9".parse().unwrap()))
        );
        for bad in [
            "",
            "frob",
            "add",
            "add 10.0.0.0/24",
            "add 10.0.0.0/40 10.0.0.1",
            "add 10.0.0.0/8 2001:db8::1",
            "add -inet6 10.0.0.0/8 10.0.0.1",
            "add -bogus 10.0.0.0/8 10.0.0.1",
            "add 10.0.0.0/8 10.0.0.1 extra",
            "get",
            "show extra",
            "delete nonsense",
        ] {
            assert!(p(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn names_and_lookup() {
        assert_eq!(net_name("10.0.1.0".parse().unwrap(), 24), "10.0.1/24");
        assert_eq!(net_name("10.0.0.0".parse().unwrap(), 8), "10/8");
        assert_eq!(net_name("10.0.0.0".parse().unwrap(), 12), "10.0/12");
        assert_eq!(net_name("10.0.0.5".parse().unwrap(), 32), "10.0.0.5");
        assert_eq!(net_name("0.0.0.0".parse().unwrap(), 0), "default");
        assert_eq!(net_name("2001:db8::".parse().unwrap(), 64), "2001:db8::/64");
        let r = |d: &str, l: u8, gw: Option<&str>| RouteInfo {
            dst: d.parse().unwrap(),
            prefix: l,
            gateway: gw.map(|g| g.parse().unwrap()),
            ifname: "shmif0".into(),
            connected: gw.is_none(),
        };
        let table = vec![
            r("0.0.0.0", 0, Some("10.0.1.1")),
            r("10.0.1.0", 24, None),
            r("10.0.2.0", 24, Some("10.0.1.2")),
        ];
        let dst = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(lookup(&table, dst("10.0.2.9")).unwrap().prefix, 24);
        assert_eq!(lookup(&table, dst("10.0.1.9")).unwrap().gateway, None);
        assert_eq!(lookup(&table, dst("8.8.8.8")).unwrap().prefix, 0);
        assert!(lookup(&table, dst("2001:db8::1")).is_none());
    }
}
