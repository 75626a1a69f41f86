//! `rump nc`: copies standard input to a TCP connection of the kernel and
//! the connection to standard output, in the manner of OpenBSD's nc(1).
//!
//! `rump nc HOST PORT` connects; `rump nc -l [ADDR] PORT` accepts one
//! connection. When standard input ends, the sending side of the
//! connection is shut down (OpenBSD's `-N`), so the peer sees the end of
//! the stream; the tool exits when the peer has closed its side. This is
//! what a scenario script needs to move a file between two kernels and
//! compare checksums.
//!
//! Standard input is read on a thread of its own that makes no kernel
//! call, so a peer that closes first ends the tool even while standard
//! input is still open.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use clap::Args;
use rump::sys::consts::{shut, sock};
use rump::sys::{Request, Response, SockAddr};

use super::{usage, Result, ServerArg, Sys, ToolError};

/// The size of one read from the connection or from standard input.
const CHUNK: usize = 64 << 10;

/// Options of `rump nc`.
#[derive(Args, Debug)]
pub struct NcArgs {
    #[command(flatten)]
    pub conn: ServerArg,
    /// Listen for one connection instead of connecting.
    #[arg(short = 'l')]
    pub listen: bool,
    /// Listen on IPv6 (the wildcard ::, which also takes IPv4 peers)
    /// when no address is given.
    #[arg(short = '6')]
    pub six: bool,
    /// Report the connection on standard error.
    #[arg(short = 'v')]
    pub verbose: bool,
    /// HOST PORT to connect to, or [ADDR] PORT to listen on.
    #[arg(value_name = "ADDR", num_args = 1..=2, required = true)]
    pub words: Vec<String>,
}

/// Where to connect or listen.
fn endpoint(a: &NcArgs) -> Result<SockAddr> {
    let (host, port) = match (a.listen, a.words.as_slice()) {
        (true, [port]) => (None, port),
        (_, [host, port]) => (Some(host.as_str()), port),
        _ => return usage("nc: HOST PORT, or -l [ADDR] PORT"),
    };
    let port: u16 = port
        .parse()
        .map_err(|_| ToolError::Usage(format!("nc: {port}: not a port number")))?;
    let ip: IpAddr = match host {
        None if a.six => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(h) => h
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse()
            .map_err(|_| ToolError::Usage(format!("nc: {h}: not an IP address")))?,
    };
    Ok(match ip {
        IpAddr::V4(v4) => SockAddr::inet(v4, port),
        IpAddr::V6(v6) => SockAddr::inet6(v6, port),
    })
}

/// Runs `rump nc` against the kernel `s`.
pub fn run(s: &Sys, a: &NcArgs, out: &mut dyn Write) -> Result<i32> {
    let addr = endpoint(a)?;
    let family = addr.family();
    let e = |what: &'static str| ToolError::sys(format!("nc: {what}"));
    let fd = s.socket(family, sock::STREAM, 0).map_err(e("socket"))?;
    let conn = if a.listen {
        let r = listen_one(s, fd, addr, a.verbose);
        let _ = s.close(fd);
        r?
    } else {
        if let Err(err) = s.call(Request::Connect { fd, addr }) {
            let _ = s.close(fd);
            return Err(ToolError::Sys(format!("nc: connect to {addr}"), err));
        }
        if a.verbose {
            eprintln!("rump nc: connected to {addr}");
        }
        fd
    };
    let r = copy(s, conn, out);
    let _ = s.close(conn);
    r.map(|()| 0)
}

/// Binds, listens and accepts one connection on `fd`.
fn listen_one(s: &Sys, fd: i32, addr: SockAddr, verbose: bool) -> Result<i32> {
    let e = |what: &'static str| ToolError::sys(format!("nc: {what}"));
    s.setsockopt(fd, rump::sys::SockOpt::ReuseAddr(true))
        .map_err(e("setsockopt"))?;
    s.call(Request::Bind { fd, addr })
        .map_err(|err| ToolError::Sys(format!("nc: bind {addr}"), err))?;
    s.call(Request::Listen { fd, backlog: 1 })
        .map_err(e("listen"))?;
    match s
        .call(Request::Accept4 { fd, flags: 0 })
        .map_err(e("accept"))?
    {
        Response::Accepted { fd, addr } => {
            if verbose {
                eprintln!("rump nc: connection from {addr}");
            }
            Ok(fd)
        }
        _ => Err(ToolError::Sys("nc: accept".into(), rump::Errno::EPROTO)),
    }
}

/// Copies both ways until the peer closes its side.
fn copy(s: &Sys, fd: i32, out: &mut dyn Write) -> Result<()> {
    let (tx, rx) = mpsc::sync_channel::<std::io::Result<Vec<u8>>>(4);
    // Reads standard input; makes no kernel call. Left running (blocked in
    // read) if the peer closes first: the process ends without it.
    std::thread::Builder::new()
        .name("nc-stdin".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            loop {
                let mut buf = vec![0u8; CHUNK];
                match stdin.read(&mut buf) {
                    Ok(0) => return,
                    Ok(n) => {
                        buf.truncate(n);
                        if tx.send(Ok(buf)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        })
        .map_err(|e| ToolError::Other(format!("nc: thread: {e}")))?;
    let done = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let sender = scope.spawn(|| send_input(s, fd, rx, &done));
        let received = receive(s, fd, out);
        done.store(true, Ordering::Relaxed);
        let sent = sender
            .join()
            .unwrap_or_else(|_| Err(ToolError::Other("nc: sender panicked".into())));
        received.and(sent)
    })
}

/// Sends what standard input gives; shuts the sending side down at its
/// end. Stops early when `done` says the receiving side has ended.
fn send_input(
    s: &Sys,
    fd: i32,
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
    done: &AtomicBool,
) -> Result<()> {
    loop {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(data)) => {
                let mut off = 0;
                while off < data.len() {
                    let n = s
                        .sendto(fd, &data[off..], None)
                        .map_err(ToolError::sys("nc: send"))?;
                    off += n;
                }
            }
            Ok(Err(e)) => return Err(ToolError::Other(format!("nc: standard input: {e}"))),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if done.load(Ordering::Relaxed) {
                    return Ok(());
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return match s.call(Request::Shutdown { fd, how: shut::WR }) {
                    // The peer may have gone already: nothing left to tell it.
                    Ok(_) | Err(rump::Errno::ENOTCONN) => Ok(()),
                    Err(e) => Err(ToolError::Sys("nc: shutdown".into(), e)),
                };
            }
        }
    }
}

/// Writes what the connection gives to `out` until its end.
fn receive(s: &Sys, fd: i32, out: &mut dyn Write) -> Result<()> {
    loop {
        let data = match s.call(Request::Recvfrom {
            fd,
            len: CHUNK,
            flags: 0,
        }) {
            Ok(Response::Recv { data, .. }) => data,
            Ok(_) => return Err(ToolError::Sys("nc: recv".into(), rump::Errno::EPROTO)),
            // A reset after the data ended is the peer's business.
            Err(rump::Errno::ECONNRESET) => return Ok(()),
            Err(e) => return Err(ToolError::Sys("nc: recv".into(), e)),
        };
        if data.is_empty() {
            out.flush()?;
            return Ok(());
        }
        out.write_all(&data)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: NcArgs,
    }

    fn args(w: &[&str]) -> NcArgs {
        T::try_parse_from(std::iter::once("nc").chain(w.iter().copied()))
            .unwrap()
            .a
    }

    #[test]
    fn endpoints() {
        assert_eq!(
            endpoint(&args(&["10.0.0.2", "80"])).unwrap(),
            SockAddr::inet(Ipv4Addr::new(10, 0, 0, 2), 80)
        );
        assert_eq!(
            endpoint(&args(&["-l", "5001"])).unwrap(),
            SockAddr::inet(Ipv4Addr::UNSPECIFIED, 5001)
        );
        assert_eq!(
            endpoint(&args(&["-l", "-6", "5001"])).unwrap(),
            SockAddr::inet6(Ipv6Addr::UNSPECIFIED, 5001)
        );
        assert_eq!(
            endpoint(&args(&["[2001:db8::1]", "7"])).unwrap(),
            SockAddr::inet6("2001:db8::1".parse().unwrap(), 7)
        );
        assert!(matches!(
            endpoint(&args(&["5001"])),
            Err(ToolError::Usage(_))
        ));
        assert!(matches!(
            endpoint(&args(&["host", "99999"])),
            Err(ToolError::Usage(_))
        ));
        assert!(matches!(
            endpoint(&args(&["example.org", "80"])),
            Err(ToolError::Usage(_))
        ));
    }
}
