//! echo: the classic internal services of inetd on one interface: TCP and
//! UDP echo (RFC 862, `echo` parameter, default port 7), TCP discard
//! (RFC 863, `discard`, default 9) and TCP chargen (RFC 864, `chargen`,
//! default 19: sends until the peer closes). A port of 0 turns a service
//! off. The interface comes from `link`, `ip` and `gw` (see
//! `uk_apps::netapp`). Prints one `echo: ready` line once every service
//! listens, then serves until it is stopped.

#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use uk_apps::hyper::{Errno, Hyper};
use uk_apps::kern::consts::{af, sock};
use uk_apps::kern::Proc;
use uk_apps::netapp::{self, NetParams};
use uk_apps::{sys, Console};

uk_apps::app!(app);

#[derive(Clone, Copy)]
enum Service {
    Echo,
    Discard,
    Chargen,
}

fn app(h: Arc<dyn Hyper>) -> i32 {
    let mut out = Console(h.clone());
    match run(&h) {
        Ok(()) => 0,
        Err(what) => {
            let _ = writeln!(out, "echo: {what}");
            1
        }
    }
}

fn port(h: &dyn Hyper, name: &str, default: u16) -> Result<u16, String> {
    match h.param(name) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| format!("{name}={v}: not a port")),
    }
}

fn run(h: &Arc<dyn Hyper>) -> Result<(), String> {
    let np = NetParams::from_params(&**h)?;
    let ports = [
        (Service::Echo, port(&**h, "echo", 7)?),
        (Service::Discard, port(&**h, "discard", 9)?),
        (Service::Chargen, port(&**h, "chargen", 19)?),
    ];
    let (_k, p) =
        uk_apps::boot_parts(h.clone(), false, true).map_err(|e| format!("boot: {e:?}"))?;
    uk_apps::mark_kernel_up();
    np.configure(&p)
        .map_err(|e| format!("configure {}: {e:?}", np.link))?;
    let mut listeners = Vec::new();
    for (svc, port) in ports {
        if port != 0 {
            let fd =
                netapp::tcp_listen(&p, port, 64).map_err(|e| format!("listen {port}: {e:?}"))?;
            listeners.push((svc, fd));
        }
    }
    let udp = match ports[0].1 {
        0 => None,
        port => {
            let fd =
                sys::socket(&p, af::INET, sock::DGRAM, 0).map_err(|e| format!("udp: {e:?}"))?;
            sys::bind(
                &p,
                fd,
                sys::SockAddr::inet(core::net::Ipv4Addr::UNSPECIFIED, port),
            )
            .map_err(|e| format!("udp bind {port}: {e:?}"))?;
            Some(fd)
        }
    };
    uk_apps::mark_app_main();
    let mut out = Console(h.clone());
    let _ = writeln!(
        out,
        "echo: ready on {} (echo {}, discard {}, chargen {})",
        np.addr, ports[0].1, ports[1].1, ports[2].1
    );
    if let Some(fd) = udp {
        let p2 = p.clone();
        h.thread_spawn("udp-echo", Box::new(move || udp_echo(&p2, fd)))
            .map_err(|e| format!("spawn: {e:?}"))?;
    }
    let last = listeners.pop();
    for (svc, fd) in listeners {
        let (p2, h2) = (p.clone(), h.clone());
        h.thread_spawn("accept", Box::new(move || accept_loop(&h2, &p2, fd, svc)))
            .map_err(|e| format!("spawn: {e:?}"))?;
    }
    match last {
        Some((svc, fd)) => accept_loop(h, &p, fd, svc),
        // Only UDP (or nothing): the main thread waits for ever.
        None => loop {
            h.sleep_until(h.clock_monotonic().saturating_add(3_600_000_000_000));
        },
    }
    Ok(())
}

fn accept_loop(h: &Arc<dyn Hyper>, p: &Arc<Proc>, fd: i32, svc: Service) {
    loop {
        let c = match sys::accept(p, fd) {
            Ok((c, _)) => c,
            Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => continue,
            Err(e) => {
                let _ = writeln!(Console(h.clone()), "echo: accept: {e:?}");
                return;
            }
        };
        let _ = sys::setsockopt(p, c, sys::SockOpt::NoDelay(true));
        let p2 = p.clone();
        let spawned = h.thread_spawn(
            "conn",
            Box::new(move || {
                let _ = serve(&p2, c, svc);
                let _ = sys::close(&p2, c);
            }),
        );
        if spawned.is_err() {
            let _ = sys::close(p, c);
        }
    }
}

fn serve(p: &Proc, fd: i32, svc: Service) -> Result<(), Errno> {
    let mut buf = vec![0u8; 64 << 10];
    match svc {
        Service::Echo | Service::Discard => loop {
            let n = sys::recv(p, fd, &mut buf, 0)?;
            if n == 0 {
                // The peer is done sending: so are we.
                return sys::shutdown(p, fd, uk_apps::kern::consts::shut::WR);
            }
            if let Service::Echo = svc {
                netapp::send_all(p, fd, &buf[..n])?;
            }
        },
        Service::Chargen => {
            // RFC 864's rotating 72-character lines of printable ASCII.
            for (at, line) in buf.chunks_exact_mut(74).enumerate() {
                for (i, b) in line[..72].iter_mut().enumerate() {
                    *b = b' ' + ((at + i) % 95) as u8;
                }
                line[72] = b'\r';
                line[73] = b'\n';
            }
            let len = buf.len() / 74 * 74;
            loop {
                netapp::send_all(p, fd, &buf[..len])?;
            }
        }
    }
}

fn udp_echo(p: &Proc, fd: i32) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sys::recvfrom(p, fd, &mut buf, 0) {
            Ok(sys::RecvInfo {
                len,
                from: Some(from),
                ..
            }) => {
                let _ = sys::sendto(p, fd, &buf[..len.min(buf.len())], 0, Some(from));
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}
