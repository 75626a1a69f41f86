//! Fuzz target: mount an arbitrary byte string as an ISO 9660 image
//! (read-only, with and without Rock Ridge and Joliet) and walk the whole
//! tree, reading every file and symlink. Any panic or hang is a bug;
//! errors are expected.
//!
//! Run: `cargo +nightly fuzz run iso9660_mount_walk` in this directory. A
//! good seed corpus is a few small images from `xorriso -as mkisofs -R -J`
//! and `genisoimage`.

#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use rump::ext2::dev_blk::{MemDevice, Registry};
use rump::sys;

fn walk(p: &rump::Process, path: &str, depth: usize, budget: &mut usize) {
    if depth > 24 || *budget == 0 {
        return;
    }
    *budget -= 1;
    let Ok(st) = sys::lstat(p, path.as_bytes()) else {
        return;
    };
    match st.mode & 0o170000 {
        0o040000 => {
            let Ok(d) = rump::fs::read_dir(p, path) else {
                return;
            };
            let names: Vec<String> = d
                .take(512)
                .filter_map(|e| e.ok())
                .map(|e| String::from_utf8_lossy(e.name_bytes()).into_owned())
                .filter(|n| !n.is_empty() && !n.contains('/'))
                .collect();
            for n in names {
                walk(p, &format!("{path}/{n}"), depth + 1, budget);
            }
        }
        0o100000 => {
            if let Ok(fd) = sys::open(p, path.as_bytes(), sys::consts::o::RDONLY, 0) {
                let mut buf = vec![0u8; 16384];
                let _ = sys::read(p, fd, &mut buf);
                let _ = sys::pread(p, fd, &mut buf, (st.size as i64).saturating_sub(100));
                let _ = sys::close(p, fd);
            }
        }
        0o120000 => {
            let _ = sys::readlink(p, path.as_bytes());
        }
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 * 2048 || data.len() > 4 << 20 {
        return;
    }
    for opts in [&b""[..], b"norock", b"norock,nojoliet"] {
        let k = rump::Kernel::builder().iso9660().boot().unwrap();
        let p = k.process().unwrap();
        Registry::of(k.raw())
            .unwrap()
            .register("/dev/f", Arc::new(MemDevice::from_bytes(data.to_vec(), true)))
            .unwrap();
        let _ = rump::fs::create_dir(&p, "/mnt");
        let ro = sys::consts::ms::RDONLY;
        if sys::mount(&p, b"/dev/f", b"/mnt", b"iso9660", ro, opts).is_ok() {
            let mut budget = 2000;
            walk(&p, "/mnt", 0, &mut budget);
            let _ = sys::umount2(&p, b"/mnt", 0);
        }
        drop(p);
        k.halt();
    }
});
