//! `rump server URL`: boots a kernel with the disks, mounts, interfaces
//! and parameters given on the command line and serves it to remote
//! clients (the protocol is in docs/protocol.md); `rump halt` asks a
//! server to shut down.
//!
//! The server runs in the foreground unless `--background`; either way a
//! script learns that it accepts connections from `--ready-fd N` (the
//! line `ready` is written to descriptor N, which is then closed) or
//! `--pidfile` (written once listening). SIGTERM, SIGINT and `rump halt`
//! shut down cleanly: connections closed, file systems synced and
//! unmounted, the kernel halted, the socket file and pid file removed.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use rump::remote::{HostAllowList, ServerConfig, Url};
use rump::sys::{self, Syscalls};

/// Options of `rump server`.
#[derive(clap::Args, Debug, Clone)]
pub struct ServerArgs {
    /// Where to listen: unix:///path or tcp://host:port.
    pub url: String,
    #[command(flatten)]
    pub kernel: KernelArgs,
    /// Peer uids (unix socket) that act as root in the kernel (default: 0).
    #[arg(long = "root-clients", value_delimiter = ',', value_name = "UID,...")]
    pub root_clients: Vec<u32>,
    /// The token TCP clients must present (created with 32 random bytes, mode 0600, if missing).
    #[arg(long = "token-file", value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Permissions of the socket file (octal).
    #[arg(long = "socket-mode", default_value = "600")]
    pub socket_mode: String,
    /// Calls in flight per connection.
    #[arg(long = "max-inflight", default_value_t = 64)]
    pub max_inflight: u32,
    /// Close connections silent for this many seconds (0: never).
    #[arg(long = "idle-timeout", default_value_t = 60)]
    pub idle_timeout: u64,
    /// A frame once begun must be complete within this many seconds.
    #[arg(long = "frame-timeout", default_value_t = 10)]
    pub frame_timeout: u64,
    /// A client must complete its handshake within this many seconds.
    #[arg(long = "hello-timeout", default_value_t = 5)]
    pub hello_timeout: u64,
    /// Log level: quiet, info (failures) or debug (every connection).
    #[arg(long = "log", default_value = "info")]
    pub log: String,
    /// Write "ready" to this descriptor once listening, then close it.
    #[arg(long = "ready-fd", value_name = "N")]
    pub ready_fd: Option<i32>,
    /// Write the server's pid here once listening (removed at exit).
    #[arg(long = "pidfile", value_name = "FILE")]
    pub pidfile: Option<PathBuf>,
    /// Detach: return once the server listens (it keeps running).
    #[arg(long = "background")]
    pub background: bool,
    /// (internal) report readiness on standard output, for --background.
    #[arg(long = "ready-stdout", hide = true)]
    pub ready_stdout: bool,
}

/// How to build a kernel: its disks, mounts, interfaces and parameters
/// (shared by `rump server` and `rump run`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct KernelArgs {
    /// A block device from a host file: /dev/disk0=image.img[,ro].
    #[arg(long = "disk", value_name = "KEY=IMAGE[,ro]")]
    pub disks: Vec<String>,
    /// A mount: TYPE:DEVICE:DIR[,ro] (TYPE may be auto), e.g. auto:/dev/disk0:/mnt.
    #[arg(long = "mount", value_name = "TYPE:DEV:DIR[,ro]")]
    pub mounts: Vec<String>,
    /// A network interface: shmifN=BUSFILE or virtN=TAPNAME.
    #[arg(long = "if", value_name = "NAME=LINK")]
    pub ifs: Vec<String>,
    /// A kernel parameter at boot: name=value (e.g. net.inet.ip.forwarding=1).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Host paths clients may have the kernel open (images, pcap files, bus
    /// files; a directory allows what is below it; tap:NAME for a tap).
    /// The devices on this command line are always allowed.
    #[arg(long = "allow-host", value_name = "PATH", num_args = 1..)]
    pub allow_host: Vec<String>,
}

/// A kernel booted from [`KernelArgs`], with the process that set it up.
pub struct Configured {
    pub kernel: rump::Kernel,
    pub proc: rump::Process,
    /// Mount points from the command line.
    pub mounted: Vec<String>,
}

/// Boots a kernel as `args` say: parameters first, then the host-access
/// policy, disks, mounts and interfaces, each error naming its option.
pub fn boot_configured(args: &KernelArgs) -> Result<Configured> {
    let params = args
        .params
        .iter()
        .map(|p| {
            p.split_once('=')
                .ok_or_else(|| anyhow!("--param {p}: expected NAME=VALUE"))
        })
        .collect::<Result<Vec<_>>>()?;
    let kernel = rump::Kernel::builder()
        .ext2()
        .net()
        .boot()
        .map_err(|e| anyhow!("boot: {}", rump::io_error(e)))?;
    // Set one by one, before anything else runs, so a wrong one is named.
    for (n, v) in params {
        kernel
            .raw()
            .sysctl()
            .set_from_str(n, v)
            .map_err(|e| match e {
                rump::Errno::ENOENT => anyhow!("--param {n}: no such parameter"),
                _ => anyhow!("--param {n}={v}: {}", rump::io_error(e)),
            })?;
    }
    let p = kernel
        .process()
        .map_err(|e| anyhow!("process: {}", rump::io_error(e)))?;

    // The host-access policy: the command line's own devices, plus
    // --allow-host. Installed before anything is opened, so the command
    // line goes through it too.
    let mut policy = HostAllowList::new();
    for a in &args.allow_host {
        match a.strip_prefix("tap:") {
            Some(t) => policy.allow_tap(t),
            None => policy.allow_path(std::path::Path::new(a)),
        }
    }
    let mut disks = Vec::new();
    for d in &args.disks {
        let (key, rest) = d
            .split_once('=')
            .ok_or_else(|| anyhow!("--disk {d}: expected KEY=IMAGE[,ro]"))?;
        let (image, ro) = match rest.strip_suffix(",ro") {
            Some(i) => (i, true),
            None => (rest.strip_suffix(",rw").unwrap_or(rest), false),
        };
        policy.allow_path(std::path::Path::new(image));
        disks.push((key.to_string(), image.to_string(), ro));
    }
    let mut ifs = Vec::new();
    for i in &args.ifs {
        let (name, link) = i
            .split_once('=')
            .ok_or_else(|| anyhow!("--if {i}: expected NAME=LINK"))?;
        if name.starts_with("virt") {
            policy.allow_tap(link);
        } else {
            policy.allow_path(std::path::Path::new(link));
        }
        ifs.push((name.to_string(), link.to_string()));
    }
    rump::remote::set_host_policy(&kernel, policy);

    for (key, image, ro) in &disks {
        sys::etfs_register(&p, key.as_bytes(), image.as_bytes(), *ro)
            .map_err(|e| anyhow!("--disk {key}={image}: {}", rump::io_error(e)))?;
    }
    let mut mounted = Vec::new();
    for m in &args.mounts {
        let (spec, ro) = match m.strip_suffix(",ro") {
            Some(s) => (s, true),
            None => (m.as_str(), false),
        };
        let mut parts = spec.splitn(3, ':');
        let (Some(ty), Some(dev), Some(dir)) = (parts.next(), parts.next(), parts.next()) else {
            bail!("--mount {m}: expected TYPE:DEVICE:DIR[,ro]");
        };
        rump::fs::create_dir_all(&p, dir).with_context(|| format!("--mount {m}: {dir}"))?;
        let flags = if ro { sys::consts::ms::RDONLY } else { 0 };
        sys::mount(
            &p,
            dev.as_bytes(),
            dir.as_bytes(),
            ty.as_bytes(),
            flags,
            b"",
        )
        .map_err(|e| anyhow!("--mount {m}: {}", rump::io_error(e)))?;
        mounted.push(dir.to_string());
    }
    for (name, link) in &ifs {
        sys::if_create(&p, name).map_err(|e| anyhow!("--if {name}: {}", rump::io_error(e)))?;
        sys::if_set_link(&p, name, link)
            .map_err(|e| anyhow!("--if {name}={link}: {}", rump::io_error(e)))?;
    }
    Ok(Configured {
        kernel,
        proc: p,
        mounted,
    })
}

/// Flushes and unmounts every file system, innermost first, then halts
/// the kernel; `who` prefixes the messages.
pub fn shut_down(c: Configured, who: &str) {
    let Configured {
        kernel,
        proc: p,
        mounted,
    } = c;
    if let Err(e) = sys::sync(&p) {
        eprintln!("{who}: sync: {}", rump::io_error(e));
    }
    let mut all: Vec<String> = match p.call(sys::Request::Mounts) {
        Ok(sys::Response::Mounts(ms)) => ms
            .into_iter()
            .map(|m| m.target)
            .filter(|t| t != "/")
            .collect(),
        _ => mounted,
    };
    all.sort_by_key(|t| std::cmp::Reverse(t.len()));
    for t in all {
        if let Err(e) = sys::umount2(&p, t.as_bytes(), 0) {
            eprintln!("{who}: unmount {t}: {}", rump::io_error(e));
        }
    }
    drop(p);
    kernel.halt();
}

/// Options of `rump halt`.
#[derive(clap::Args, Debug, Clone)]
pub struct HaltArgs {
    /// The server (default: $RUMP_SERVER).
    #[arg(long = "server", value_name = "URL")]
    pub server: Option<String>,
}

/// `rump halt`: asks the server to shut down cleanly.
pub fn halt(args: HaltArgs) -> Result<()> {
    let c = match &args.server {
        Some(u) => rump::remote::connect(u),
        None => rump::remote::from_env(),
    }
    .map_err(|e| anyhow!("halt: {e}"))?;
    c.halt()
        .map_err(|e| anyhow!("halt: the server refused: {}", rump::io_error(e)))?;
    Ok(())
}

/// `rump server`.
pub fn run(args: ServerArgs) -> Result<()> {
    if args.background {
        return background(&args);
    }
    let url = Url::parse(&args.url).map_err(|e| anyhow!(e))?;
    let (verbose, quiet) = match args.log.as_str() {
        "quiet" => (false, true),
        "info" => (false, false),
        "debug" => (true, false),
        other => bail!("--log {other}: expected quiet, info or debug"),
    };
    let socket_mode = u32::from_str_radix(&args.socket_mode, 8)
        .with_context(|| format!("--socket-mode {}: not an octal mode", args.socket_mode))?;
    // Signals go to one thread that waits for them: blocked here, before
    // any thread exists, so every thread inherits the mask.
    let signals = block_shutdown_signals();

    let configured = boot_configured(&args.kernel)?;

    let token = match &args.token_file {
        Some(f) => Some(read_or_make_token(f)?),
        None => None,
    };
    let log: Arc<dyn Fn(&str) + Send + Sync> = if quiet {
        Arc::new(|_| {})
    } else {
        Arc::new(|m| eprintln!("rump server: {m}"))
    };
    let cfg = ServerConfig {
        max_inflight: args.max_inflight.max(1),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        frame_timeout: Duration::from_secs(args.frame_timeout.max(1)),
        hello_timeout: Duration::from_secs(args.hello_timeout.max(1)),
        root_uids: if args.root_clients.is_empty() {
            vec![0]
        } else {
            args.root_clients.clone()
        },
        token,
        socket_mode,
        log,
        verbose,
        ..ServerConfig::default()
    };
    let server = rump::remote::serve(&configured.kernel, &url, cfg)
        .with_context(|| format!("listen on {url}"))?;
    let handle = server.handle();
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            wait_signal(&signals);
            handle.stop();
        })?;

    if let Some(f) = &args.pidfile {
        std::fs::write(f, format!("{}\n", std::process::id()))
            .with_context(|| format!("--pidfile {}", f.display()))?;
    }
    if let Some(fd) = args.ready_fd {
        signal_ready_fd(fd)?;
    }
    if args.ready_stdout {
        println!("ready {}", std::process::id());
        std::io::stdout().flush()?;
    }
    if verbose {
        eprintln!("rump server: listening on {}", server.url());
    }

    let halted_by_client = server.run()?;
    if verbose {
        eprintln!(
            "rump server: shutting down ({})",
            if halted_by_client { "halt" } else { "signal" }
        );
    }
    shut_down(configured, "rump server");
    if let Some(f) = &args.pidfile {
        let _ = std::fs::remove_file(f);
    }
    Ok(())
}

/// `--background`: runs the server as a child in its own session and
/// returns once it listens (the child reports on a pipe).
fn background(args: &ServerArgs) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut argv: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--background")
        .collect();
    argv.push("--ready-stdout".into());
    let mut child = std::process::Command::new(exe)
        .args(&argv)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .process_group(0)
        .spawn()?;
    let out = child.stdout.take().ok_or_else(|| anyhow!("no pipe"))?;
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    if line.starts_with("ready") {
        if let Some(fd) = args.ready_fd {
            signal_ready_fd(fd)?;
        }
        return Ok(());
    }
    let status = child.wait()?;
    bail!("server did not start ({status})")
}

fn read_or_make_token(f: &std::path::Path) -> Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::read(f) {
        Ok(t) if t.is_empty() => bail!("--token-file {}: empty", f.display()),
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut t = [0u8; 32];
            std::fs::File::open("/dev/urandom")
                .and_then(|mut r| std::io::Read::read_exact(&mut r, &mut t))
                .context("random token")?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(f)
                .with_context(|| format!("--token-file {}", f.display()))?;
            file.write_all(&t)?;
            Ok(t.to_vec())
        }
        Err(e) => Err(e).with_context(|| format!("--token-file {}", f.display())),
    }
}

fn signal_ready_fd(fd: i32) -> Result<()> {
    use std::os::fd::FromRawFd;
    if fd < 0 || rustix_fd_valid(fd).is_err() {
        bail!("--ready-fd {fd}: not an open descriptor");
    }
    // SAFETY: `fd` is open (checked just above with fcntl) and was handed
    // to us by our parent for this one purpose: nothing else in this
    // process uses it, so taking ownership (and closing it) is sound.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all(b"ready\n")
        .with_context(|| format!("--ready-fd {fd}"))?;
    Ok(())
}

fn rustix_fd_valid(fd: i32) -> std::io::Result<()> {
    // SAFETY: F_GETFD only queries the descriptor table; any integer is
    // acceptable (an invalid one yields EBADF).
    let r = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The set of signals that shut the server down, blocked in this thread
/// (and so in every thread started after).
fn block_shutdown_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before
    // sigaddset and pthread_sigmask read it, all on our own stack value.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits until one of `set`'s signals arrives.
fn wait_signal(set: &libc::sigset_t) {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` was initialised by block_shutdown_signals and those
    // signals are blocked in every thread, so sigwait is the only taker.
    unsafe {
        libc::sigwait(set, &mut sig);
    }
}
