//! ext2: registers the disk given to the guest (`disk` parameter, default
//! `/dev/disk0`) as a block device, mounts it on `/mnt` (type detected),
//! lists it and prints its small files, writes `/mnt/from-guest.txt` when
//! the `write` parameter is set, unmounts and exits 0.

#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::string::String;
use alloc::sync::Arc;
use core::fmt::Write;

use uk_apps::hyper::{Errno, Hyper};
use uk_apps::{sys, Console};

uk_apps::app!(app);

fn app(h: Arc<dyn Hyper>) -> i32 {
    let mut out = Console(h.clone());
    match run(&h, &mut out) {
        Ok(()) => 0,
        Err((what, e)) => {
            let _ = writeln!(out, "ext2: {what}: {e:?}");
            1
        }
    }
}

fn run(h: &Arc<dyn Hyper>, out: &mut Console) -> Result<(), (&'static str, Errno)> {
    let (k, p) = uk_apps::boot(h.clone(), true).map_err(|e| ("boot", e))?;
    uk_apps::mark_kernel_up();
    let disk = h
        .param("disk")
        .unwrap_or_else(|| String::from("/dev/disk0"));
    let write = h.param("write").is_some_and(|v| v == "1");
    sys::etfs_register(&p, disk.as_bytes(), disk.as_bytes(), !write)
        .map_err(|e| ("register disk", e))?;
    sys::mkdir(&p, b"/mnt", 0o755).map_err(|e| ("mkdir /mnt", e))?;
    let flags = if write { 0 } else { kern::consts::ms::RDONLY };
    sys::mount(&p, disk.as_bytes(), b"/mnt", b"auto", flags, b"").map_err(|e| ("mount", e))?;
    uk_apps::mark_app_main();
    let names = uk_apps::list_dir(&p, "/mnt").map_err(|e| ("list /mnt", e))?;
    let _ = writeln!(out, "ext2: ls /mnt: {}", names.join(" "));
    for n in &names {
        let path = alloc::format!("/mnt/{n}");
        let st = sys::stat(&p, path.as_bytes()).map_err(|e| ("stat", e))?;
        if st.mode & 0o170000 != 0o100000 {
            continue;
        }
        let data = uk_apps::read_file(&p, &path).map_err(|e| ("read", e))?;
        let sum = data
            .iter()
            .fold(0u32, |a, &b| a.wrapping_mul(31).wrapping_add(b as u32));
        let _ = write!(out, "ext2: {n}: {} bytes, sum {sum:08x}", data.len());
        if data.len() <= 200 {
            let _ = write!(out, ", text {:?}", String::from_utf8_lossy(&data));
        }
        let _ = writeln!(out);
    }
    if write {
        uk_apps::write_file(&p, "/mnt/from-guest.txt", b"written by the unikernel\n")
            .map_err(|e| ("write", e))?;
        let _ = writeln!(out, "ext2: wrote /mnt/from-guest.txt");
    }
    sys::umount2(&p, b"/mnt", 0).map_err(|e| ("umount", e))?;
    k.halt();
    let _ = writeln!(out, "ext2: done");
    Ok(())
}

use uk_apps::kern;
