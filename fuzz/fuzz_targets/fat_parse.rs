//! Fuzz target: the FAT parsers on their own: a boot sector through
//! `BootSectorRepr::parse`, `Geometry::new` and the probe, FSInfo, and
//! every 32-byte slot as a directory entry or long-name entry (with
//! re-emission of what parsed, which must parse to the same value), and
//! long-name decoding. Any panic is a bug.
//!
//! Run: `cargo +nightly fuzz run fat_parse` in this directory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rump::fat::fs_fat::format::*;
use rump::fat::fs_fat::{name, probe_boot_sector};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = BootSectorPacket::new_checked(data) {
        if let Ok(r) = BootSectorRepr::parse(&p) {
            if let Ok(g) = Geometry::new(&r) {
                let _ = g.is_cluster(g.clusters + 1);
                let _ = g.cluster_sector(g.clusters + 1);
            }
        }
        let _ = probe_boot_sector(data, data.len() as u64);
    }
    if let Ok(p) = FsInfoPacket::new_checked(data) {
        let _ = FsInfoRepr::parse(&p);
    }
    for chunk in data.chunks_exact(DIR_ENTRY_SIZE) {
        let p = DirEntryPacket::new_checked(chunk).unwrap();
        match p.slot() {
            Ok(Slot::Short(e)) => {
                let mut b = [0u8; 32];
                e.emit(&mut b);
                let again = DirEntryPacket::new_checked(&b[..]).unwrap().slot();
                assert_eq!(again, Ok(Slot::Short(e)));
                let _ = name::short_to_string(&e.name, e.ntres);
                let _ = unix_time(e.mdate, e.mtime);
            }
            Ok(Slot::Long(l)) => {
                let mut b = [0u8; 32];
                l.emit(&mut b);
                let again = DirEntryPacket::new_checked(&b[..]).unwrap().slot();
                assert_eq!(again, Ok(Slot::Long(l)));
                let _ = name::lfn_to_string(&l.units);
            }
            _ => {}
        }
    }
    if let Ok(s) = core::str::from_utf8(data) {
        let _ = name::classify(s.as_bytes());
    }
});
