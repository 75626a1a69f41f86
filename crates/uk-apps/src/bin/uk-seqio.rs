//! seqio: sequential file throughput on an ext2 disk (`disk`, default
//! `/dev/disk0`, mounted read-write with a block cache of `cache` bytes,
//! default 4M): writes `size` bytes (default 64M) to `/mnt/seq.bin` in
//! 1 MiB writes and fsyncs it, remounts (so nothing is read from the
//! cache), reads it back, removes it, and prints
//! `seqio: write W MB/s read R MB/s (N bytes)`. The benchmark runs it as a
//! guest and as a process on the same image.

#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use core::fmt::Write;

use uk_apps::hyper::Hyper;
use uk_apps::kern::consts::o;
use uk_apps::{sys, Console};

uk_apps::app!(app);

fn app(h: Arc<dyn Hyper>) -> i32 {
    match run(&h) {
        Ok(()) => 0,
        Err(what) => {
            let _ = writeln!(Console(h.clone()), "seqio: {what}");
            1
        }
    }
}

fn size_param(h: &dyn Hyper, name: &str, default: u64) -> Result<u64, String> {
    let Some(v) = h.param(name) else {
        return Ok(default);
    };
    let (digits, mul) = match v.as_bytes().last() {
        Some(b'k' | b'K') => (&v[..v.len() - 1], 1u64 << 10),
        Some(b'm' | b'M') => (&v[..v.len() - 1], 1 << 20),
        Some(b'g' | b'G') => (&v[..v.len() - 1], 1 << 30),
        _ => (&v[..], 1),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mul))
        .ok_or_else(|| format!("{name}={v}: not a size"))
}

fn run(h: &Arc<dyn Hyper>) -> Result<(), String> {
    let size = size_param(&**h, "size", 64 << 20)?;
    let cache = h.param("cache").unwrap_or_else(|| String::from("4M"));
    let disk = h
        .param("disk")
        .unwrap_or_else(|| String::from("/dev/disk0"));
    let (k, p) = uk_apps::boot(h.clone(), true).map_err(|e| format!("boot: {e:?}"))?;
    uk_apps::mark_kernel_up();
    let e = |what: &'static str| move |err| format!("{what}: {err:?}");
    sys::etfs_register(&p, disk.as_bytes(), disk.as_bytes(), false).map_err(e("register"))?;
    sys::mkdir(&p, b"/mnt", 0o755).map_err(e("mkdir"))?;
    let opts = format!("cache={cache}");
    let mount = || sys::mount(&p, disk.as_bytes(), b"/mnt", b"ext2", 0, opts.as_bytes());
    mount().map_err(e("mount"))?;
    uk_apps::mark_app_main();
    let mut buf = vec![0u8; 1 << 20];
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1];
    }
    let path = b"/mnt/seq.bin";
    let t0 = h.clock_monotonic();
    let fd = sys::open(&p, path, o::WRONLY | o::CREAT | o::TRUNC, 0o644).map_err(e("create"))?;
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        let mut done = 0;
        while done < n {
            done += sys::write(&p, fd, &buf[done..n]).map_err(e("write"))?;
        }
        left -= n as u64;
    }
    sys::fsync(&p, fd).map_err(e("fsync"))?;
    sys::close(&p, fd).map_err(e("close"))?;
    let t1 = h.clock_monotonic();
    sys::umount2(&p, b"/mnt", 0).map_err(e("umount"))?;
    mount().map_err(e("remount"))?;
    let t2 = h.clock_monotonic();
    let fd = sys::open(&p, path, o::RDONLY, 0).map_err(e("open"))?;
    let mut got = 0u64;
    loop {
        let n = sys::read(&p, fd, &mut buf).map_err(e("read"))?;
        if n == 0 {
            break;
        }
        got += n as u64;
    }
    sys::close(&p, fd).map_err(e("close"))?;
    let t3 = h.clock_monotonic();
    if got != size {
        return Err(format!("read back {got} bytes of {size}"));
    }
    sys::unlink(&p, path).map_err(e("unlink"))?;
    sys::umount2(&p, b"/mnt", 0).map_err(e("umount"))?;
    k.halt();
    let mbps = |ns: u64| size as f64 / 1e6 / (ns.max(1) as f64 / 1e9);
    let _ = writeln!(
        Console(h.clone()),
        "seqio: write {:.1} MB/s read {:.1} MB/s ({size} bytes)",
        mbps(t1 - t0),
        mbps(t3 - t2)
    );
    Ok(())
}
