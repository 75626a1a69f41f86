//! httpd: an HTTP/1.1 static file server for a tree on an ext2 (or any
//! detected) image: GET and HEAD, keep-alive and pipelining,
//! Content-Length, Last-Modified, directory listings (or the directory's
//! `index.html`). The disk is the `disk` parameter (default `/dev/disk0`),
//! mounted read-only on `/srv`; the port is `port` (default 80); the
//! interface comes from `link`, `ip` and `gw` (see `uk_apps::netapp`).
//! Prints one `httpd: ready` line when it listens, then serves until it
//! is stopped. Each connection has a thread; an idle one is closed after
//! the `idle` parameter's seconds (default 60). The block cache holds
//! `cache` bytes (default 4M).

#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt::Write;

use uk_apps::http::{self, Method, Request};
use uk_apps::hyper::{Errno, Hyper};
use uk_apps::kern::consts::{ms, o};
use uk_apps::kern::Proc;
use uk_apps::netapp::{self, NetParams};
use uk_apps::{sys, Console};

uk_apps::app!(app);

const ROOT: &str = "/srv";
const CHUNK: usize = 64 << 10;

fn app(h: Arc<dyn Hyper>) -> i32 {
    match run(&h) {
        Ok(()) => 0,
        Err(what) => {
            let _ = writeln!(Console(h.clone()), "httpd: {what}");
            1
        }
    }
}

fn run(h: &Arc<dyn Hyper>) -> Result<(), String> {
    let np = NetParams::from_params(&**h)?;
    let port = netapp::port_param(&**h, 80)?;
    let idle_s: u64 = match h.param("idle") {
        None => 60,
        Some(v) => v
            .parse()
            .map_err(|_| format!("idle={v}: not a number of seconds"))?,
    };
    let disk = h
        .param("disk")
        .unwrap_or_else(|| String::from("/dev/disk0"));
    let (_k, p) = uk_apps::boot_parts(h.clone(), true, true).map_err(|e| format!("boot: {e:?}"))?;
    uk_apps::mark_kernel_up();
    sys::etfs_register(&p, disk.as_bytes(), disk.as_bytes(), true)
        .map_err(|e| format!("register {disk}: {e:?}"))?;
    sys::mkdir(&p, ROOT.as_bytes(), 0o755).map_err(|e| format!("mkdir: {e:?}"))?;
    // The block cache sized for a small guest (`cache`, default 4M), when
    // the file system takes the option.
    let cache = format!("cache={}", h.param("cache").as_deref().unwrap_or("4M"));
    sys::mount(
        &p,
        disk.as_bytes(),
        ROOT.as_bytes(),
        b"auto",
        ms::RDONLY,
        cache.as_bytes(),
    )
    .or_else(|_| {
        sys::mount(
            &p,
            disk.as_bytes(),
            ROOT.as_bytes(),
            b"auto",
            ms::RDONLY,
            b"",
        )
    })
    .map_err(|e| format!("mount {disk}: {e:?}"))?;
    np.configure(&p)
        .map_err(|e| format!("configure {}: {e:?}", np.link))?;
    let l = netapp::tcp_listen(&p, port, 128).map_err(|e| format!("listen {port}: {e:?}"))?;
    uk_apps::mark_app_main();
    let _ = writeln!(
        Console(h.clone()),
        "httpd: ready on http://{}:{port}/ serving {disk}",
        np.addr
    );
    loop {
        let c = match sys::accept(&p, l) {
            Ok((c, _)) => c,
            Err(Errno::EINTR) | Err(Errno::ECONNABORTED) => continue,
            Err(e) => return Err(format!("accept: {e:?}")),
        };
        let _ = sys::setsockopt(&p, c, sys::SockOpt::RcvTimeo(Some(idle_s * 1_000_000_000)));
        let _ = sys::setsockopt(&p, c, sys::SockOpt::NoDelay(true));
        let p2 = p.clone();
        let spawned = h.thread_spawn(
            "http-conn",
            Box::new(move || {
                let _ = connection(&p2, c);
                let _ = sys::close(&p2, c);
            }),
        );
        if spawned.is_err() {
            let _ = sys::close(&p, c);
        }
    }
}

/// Serves one connection's requests until it closes, errs or asks to close.
fn connection(p: &Proc, c: i32) -> Result<(), Errno> {
    let mut inbuf: Vec<u8> = Vec::with_capacity(4096);
    let mut rbuf = vec![0u8; 16 << 10];
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let (req, used) = loop {
            match http::parse_request(&inbuf) {
                Ok(Some(r)) => break r,
                Ok(None) => {}
                Err(refusal) => {
                    let st = refusal.status();
                    let body = http::error_body(st);
                    let mut out = http::response_head(st, false, body.len() as u64, &[]);
                    out.push_str(&body);
                    return netapp::send_all(p, c, out.as_bytes());
                }
            }
            let n = sys::recv(p, c, &mut rbuf, 0)?;
            if n == 0 {
                return Ok(());
            }
            inbuf.extend_from_slice(&rbuf[..n]);
        };
        inbuf.drain(..used);
        // Skip a request body (we serve no method that takes one).
        let mut skip = req.body_len;
        let have = (inbuf.len() as u64).min(skip) as usize;
        inbuf.drain(..have);
        skip -= have as u64;
        while skip > 0 {
            let n = sys::recv(p, c, &mut rbuf[..(skip.min(16 << 10) as usize)], 0)?;
            if n == 0 {
                return Ok(());
            }
            skip -= n as u64;
        }
        if !respond(p, c, &req, &mut chunk)? || !req.keep_alive {
            return sys::shutdown(p, c, uk_apps::kern::consts::shut::WR);
        }
    }
}

/// Answers `req`; `Ok(false)` when the connection must close after it.
fn respond(p: &Proc, c: i32, req: &Request, chunk: &mut [u8]) -> Result<bool, Errno> {
    let ka = req.keep_alive;
    let head_only = req.method == Method::Head;
    if req.method == Method::Other {
        return simple(
            p,
            c,
            (405, "Method Not Allowed"),
            ka,
            head_only,
            &[("Allow", "GET, HEAD")],
        );
    }
    let fs_path = format!("{ROOT}{}", req.path);
    let st = match sys::stat(p, fs_path.as_bytes()) {
        Ok(st) => st,
        Err(e) => return simple(p, c, errno_status(e), ka, head_only, &[]),
    };
    match st.mode & 0o170000 {
        0o040000 => {
            if !req.path.ends_with('/') {
                let loc = format!("{}/", req.path);
                return simple(
                    p,
                    c,
                    (301, "Moved Permanently"),
                    ka,
                    head_only,
                    &[("Location", &loc)],
                );
            }
            let index = format!("{fs_path}index.html");
            if let Ok(ist) = sys::stat(p, index.as_bytes()) {
                if ist.mode & 0o170000 == 0o100000 {
                    return file(p, c, &index, &ist, ka, head_only, chunk);
                }
            }
            let page = match dir_listing(p, &fs_path, &req.path) {
                Ok(page) => page,
                Err(e) => return simple(p, c, errno_status(e), ka, head_only, &[]),
            };
            let mut out = http::response_head(
                (200, "OK"),
                ka,
                page.len() as u64,
                &[("Content-Type", "text/html; charset=utf-8")],
            );
            if !head_only {
                out.push_str(&page);
            }
            netapp::send_all(p, c, out.as_bytes())?;
            Ok(true)
        }
        0o100000 => file(p, c, &fs_path, &st, ka, head_only, chunk),
        _ => simple(p, c, (403, "Forbidden"), ka, head_only, &[]),
    }
}

fn errno_status(e: Errno) -> (u16, &'static str) {
    match e {
        Errno::ENOENT | Errno::ENOTDIR | Errno::ENAMETOOLONG | Errno::ELOOP => (404, "Not Found"),
        Errno::EACCES | Errno::EPERM => (403, "Forbidden"),
        _ => (500, "Internal Server Error"),
    }
}

/// A response whose body is a one-line text.
fn simple(
    p: &Proc,
    c: i32,
    st: (u16, &str),
    ka: bool,
    head_only: bool,
    extra: &[(&str, &str)],
) -> Result<bool, Errno> {
    let body = http::error_body(st);
    let mut hdrs: Vec<(&str, &str)> = vec![("Content-Type", "text/plain; charset=utf-8")];
    hdrs.extend_from_slice(extra);
    let mut out = http::response_head(st, ka, body.len() as u64, &hdrs);
    if !head_only {
        out.push_str(&body);
    }
    netapp::send_all(p, c, out.as_bytes())?;
    Ok(true)
}

fn file(
    p: &Proc,
    c: i32,
    path: &str,
    st: &sys::Stat,
    ka: bool,
    head_only: bool,
    chunk: &mut [u8],
) -> Result<bool, Errno> {
    let fd = match sys::open(p, path.as_bytes(), o::RDONLY, 0) {
        Ok(fd) => fd,
        Err(e) => return simple(p, c, errno_status(e), ka, head_only, &[]),
    };
    let r = send_file(p, c, fd, path, st, ka, head_only, chunk);
    let _ = sys::close(p, fd);
    r
}

fn send_file(
    p: &Proc,
    c: i32,
    fd: i32,
    path: &str,
    st: &sys::Stat,
    ka: bool,
    head_only: bool,
    chunk: &mut [u8],
) -> Result<bool, Errno> {
    let date = http::http_date(st.mtime.sec);
    let head = http::response_head(
        (200, "OK"),
        ka,
        st.size,
        &[
            ("Content-Type", http::content_type(path)),
            ("Last-Modified", &date),
        ],
    );
    if head_only {
        netapp::send_all(p, c, head.as_bytes())?;
        return Ok(true);
    }
    // The head goes out with the first chunk of the body.
    let hl = head.len();
    chunk[..hl].copy_from_slice(head.as_bytes());
    let mut fill = hl;
    let mut left = st.size;
    loop {
        let want = ((chunk.len() - fill) as u64).min(left) as usize;
        let mut n = 0;
        while n < want {
            match sys::read(p, fd, &mut chunk[fill + n..fill + want]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(_) => {
                    if fill + n > 0 {
                        netapp::send_all(p, c, &chunk[..fill + n])?;
                    }
                    // The length is promised: all we can do is close.
                    return Ok(false);
                }
            }
        }
        netapp::send_all(p, c, &chunk[..fill + n])?;
        left -= n as u64;
        if left == 0 {
            return Ok(true);
        }
        if n < want {
            // The file shrank: the promised length cannot be kept.
            return Ok(false);
        }
        fill = 0;
    }
}

fn dir_listing(p: &Proc, fs_path: &str, url_path: &str) -> Result<String, Errno> {
    let names = uk_apps::list_dir(p, fs_path)?;
    let mut entries = Vec::with_capacity(names.len());
    for n in names {
        let full = format!("{fs_path}{n}");
        let dir = sys::stat(p, full.as_bytes()).is_ok_and(|s| s.mode & 0o170000 == 0o040000);
        entries.push((n, dir));
    }
    Ok(http::listing(url_path, &entries))
}
