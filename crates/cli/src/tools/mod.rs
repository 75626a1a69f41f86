//! The configuration tools: `rump ifconfig`, `route`, `netstat`, `arp`,
//! `ndp`, `ping`, `ping6`, `sysctl`, `mount`, `umount`, `df` and `nc`, in the
//! manner of NetBSD's `rump.ifconfig` and friends.
//!
//! Every tool is a function of a `&dyn Syscalls` (a local
//! `rump::Process`, or a connection to `rump server`), its parsed
//! arguments and an output sink, so the same code configures a kernel in
//! a test process and a kernel in a server. Every kernel call is a
//! [`Request`] through [`Syscalls::call`] ([`Sys`] wraps the ones the
//! tools use); argument grammar is clap plus, where the BSD tool has a
//! keyword grammar (`ifconfig shmif0 inet 10.0.0.1/24 up`), a parser of
//! our own; output formatting is separate from the calls (pure functions
//! of the records, tested on their own).
//!
//! Exit status: 0 on success, 1 when a kernel call fails (its errno text
//! is printed), 2 for wrong arguments (with a usage line), and what the
//! BSD tool uses otherwise (`ping`: 2 when no reply came).
//!
//! Modules: [`ifconfig`], [`route`], [`netstat`] (also `arp` and `ndp`
//! listings in [`arp`]), [`ping`], [`sysctl`], [`mount`] (`mount`,
//! `umount`, `df`), [`sysio`] (the call wrappers).

pub mod arp;
pub mod ifconfig;
pub mod mount;
pub mod nc;
pub mod netstat;
pub mod ping;
pub mod route;
pub mod sysctl;
pub mod sysio;

use std::fmt;
use std::io::Write;

use clap::{Args, Subcommand};
use rump::sys::Syscalls;
use rump::Errno;

pub use sysio::Sys;

/// How a tool failed.
#[derive(Debug)]
pub enum ToolError {
    /// Wrong arguments: the message and the tool's usage line.
    Usage(String),
    /// A kernel call failed: what was being done, and the errno.
    Sys(String, Errno),
    /// Anything else (a host error, no server).
    Other(String),
}

impl ToolError {
    /// The exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ToolError::Usage(_) => 2,
            _ => 1,
        }
    }

    /// A kernel error while doing `what`.
    pub fn sys(what: impl Into<String>) -> impl FnOnce(Errno) -> ToolError {
        let what = what.into();
        move |e| ToolError::Sys(what, e)
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(m) => write!(f, "{m}"),
            ToolError::Sys(what, e) => write!(f, "{what}: {}", errno_text(*e)),
            ToolError::Other(m) => write!(f, "{m}"),
        }
    }
}

impl From<std::io::Error> for ToolError {
    fn from(e: std::io::Error) -> ToolError {
        ToolError::Other(format!("output: {e}"))
    }
}

/// The text of an errno, as strerror(3) gives it ("No such device").
pub fn errno_text(e: Errno) -> String {
    let s = std::io::Error::from_raw_os_error(e.raw()).to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

pub type Result<T> = std::result::Result<T, ToolError>;

/// A usage error.
pub fn usage<T>(msg: impl Into<String>) -> Result<T> {
    Err(ToolError::Usage(msg.into()))
}

/// Where a tool sends its kernel calls: `--server URL`, else the
/// `RUMP_SERVER` environment variable (rump_sp(7)'s name).
#[derive(Args, Clone, Debug, Default)]
pub struct ServerArg {
    /// The kernel to talk to: unix:///path or tcp://host:port (default:
    /// $RUMP_SERVER).
    #[arg(long = "server", value_name = "URL")]
    pub server: Option<String>,
}

impl ServerArg {
    /// The URL to use, if any.
    pub fn url(&self) -> Option<String> {
        self.server
            .clone()
            .or_else(|| std::env::var("RUMP_SERVER").ok().filter(|s| !s.is_empty()))
    }
}

/// Opens the connection to the server named by `url`.
pub fn connect(url: Option<String>) -> Result<Box<dyn Syscalls>> {
    let Some(url) = url else {
        return Err(ToolError::Other(
            "no kernel to talk to: set RUMP_SERVER or give --server URL".into(),
        ));
    };
    remote(&url)
}

/// The remote client of `url`.
fn remote(url: &str) -> Result<Box<dyn Syscalls>> {
    rump::remote::kernel(Some(url)).map_err(|e| ToolError::Other(format!("{url}: {e}")))
}

/// The configuration tools as subcommands of `rump`.
#[derive(Subcommand)]
pub enum ToolCmd {
    /// Configure network interfaces (ifconfig(8)).
    #[command(allow_hyphen_values = true)]
    Ifconfig(ifconfig::IfconfigArgs),
    /// Show and change the routing table (route(8)).
    Route(route::RouteArgs),
    /// Show interfaces, routes, sockets and protocol statistics (netstat(1)).
    Netstat(netstat::NetstatArgs),
    /// Show the ARP table (arp(8)).
    Arp(arp::ArpArgs),
    /// Show the IPv6 neighbour cache (ndp(8)).
    Ndp(arp::NdpArgs),
    /// Send ICMP echo requests (ping(8)).
    Ping(ping::PingArgs),
    /// Send ICMPv6 echo requests (ping6(8)).
    Ping6(ping::PingArgs),
    /// Read and write kernel parameters (sysctl(8)).
    Sysctl(sysctl::SysctlArgs),
    /// Mount a file system or list the mounts (mount(8)).
    Mount(mount::MountArgs),
    /// Unmount a file system (umount(8)).
    Umount(mount::UmountArgs),
    /// Copy standard input to a TCP connection and the connection to
    /// standard output (nc(1)).
    Nc(nc::NcArgs),
}

impl ToolCmd {
    /// The subcommand's name.
    pub fn name(&self) -> &'static str {
        match self {
            ToolCmd::Ifconfig(_) => "ifconfig",
            ToolCmd::Route(_) => "route",
            ToolCmd::Netstat(_) => "netstat",
            ToolCmd::Arp(_) => "arp",
            ToolCmd::Ndp(_) => "ndp",
            ToolCmd::Ping(_) => "ping",
            ToolCmd::Ping6(_) => "ping6",
            ToolCmd::Sysctl(_) => "sysctl",
            ToolCmd::Mount(_) => "mount",
            ToolCmd::Umount(_) => "umount",
            ToolCmd::Nc(_) => "nc",
        }
    }

    fn server(&self) -> &ServerArg {
        match self {
            ToolCmd::Ifconfig(a) => &a.conn,
            ToolCmd::Route(a) => &a.conn,
            ToolCmd::Netstat(a) => &a.conn,
            ToolCmd::Arp(a) => &a.conn,
            ToolCmd::Ndp(a) => &a.conn,
            ToolCmd::Ping(a) | ToolCmd::Ping6(a) => &a.conn,
            ToolCmd::Sysctl(a) => &a.conn,
            ToolCmd::Mount(a) => &a.conn,
            ToolCmd::Umount(a) => &a.conn,
            ToolCmd::Nc(a) => &a.conn,
        }
    }

    /// Runs the tool against `sc`, printing to `out`; returns the exit
    /// status.
    pub fn run_on(&self, sc: &dyn Syscalls, out: &mut dyn Write) -> Result<i32> {
        let s = Sys(sc);
        match self {
            ToolCmd::Ifconfig(a) => ifconfig::run(&s, a, out),
            ToolCmd::Route(a) => route::run(&s, a, out),
            ToolCmd::Netstat(a) => netstat::run(&s, a, out),
            ToolCmd::Arp(a) => arp::run_arp(&s, a, out),
            ToolCmd::Ndp(a) => arp::run_ndp(&s, a, out),
            ToolCmd::Ping(a) => ping::run(&s, a, false, out),
            ToolCmd::Ping6(a) => ping::run(&s, a, true, out),
            ToolCmd::Sysctl(a) => sysctl::run(&s, a, out),
            ToolCmd::Mount(a) => mount::run_mount(&s, a, out),
            ToolCmd::Umount(a) => mount::run_umount(&s, a, out),
            ToolCmd::Nc(a) => nc::run(&s, a, out),
        }
    }
}

/// Runs a tool subcommand of the binary: connects, runs, prints errors as
/// `rump TOOL: MESSAGE`; returns the exit status.
pub fn main(cmd: ToolCmd) -> i32 {
    let name = cmd.name();
    let run = || -> Result<i32> {
        let sc = connect(cmd.server().url())?;
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        let code = cmd.run_on(&*sc, &mut out)?;
        out.flush()?;
        Ok(code)
    };
    match run() {
        Ok(code) => code,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("rump {name}: {e}");
            e.exit_code()
        }
    }
}

/// Runs a tool given as words (`["ifconfig", "shmif0", "up"]`) against
/// `sc`, collecting its output: what the tests and the scenario helpers
/// use. Returns the exit status and the output, or the error text for a
/// failure (a usage error also gives status 2).
pub fn run_words(sc: &dyn Syscalls, words: &[&str]) -> (i32, String) {
    use clap::Parser;
    #[derive(Parser)]
    #[command(name = "rump", no_binary_name = true)]
    struct Words {
        #[command(subcommand)]
        cmd: ToolCmd,
    }
    let parsed = match Words::try_parse_from(words) {
        Ok(w) => w,
        Err(e) => return (2, e.to_string()),
    };
    let mut out = Vec::new();
    match parsed.cmd.run_on(sc, &mut out) {
        Ok(code) => (code, String::from_utf8_lossy(&out).into_owned()),
        Err(e) => {
            let mut s = String::from_utf8_lossy(&out).into_owned();
            s.push_str(&e.to_string());
            (e.exit_code(), s)
        }
    }
}
