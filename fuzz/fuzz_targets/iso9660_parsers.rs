//! Fuzz target: the ISO 9660 format parsers on their own (volume
//! descriptor, directory record, path table, SUSP entries and the Rock
//! Ridge summary, names and dates). Any panic is a bug.
//!
//! Run: `cargo +nightly fuzz run iso9660_parsers` in this directory.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rump::iso9660::fs_iso9660::format::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = DescriptorPacket::new_checked(data) {
        let _ = p.is_joliet();
        let _ = VolumeRepr::parse(&p);
    }
    if let Ok(p) = DirRecordPacket::new_checked(data) {
        let _ = DirRecordRepr::parse(&p);
        let _ = p.name();
        let mut rr = RockRidge::default();
        for e in SuspIter::new(p.system_use()).take(1000) {
            match e {
                Ok(e) => {
                    let _ = parse_sp(&e);
                    let _ = parse_ce(&e);
                    let _ = rr.add(&e);
                }
                Err(_) => break,
            }
        }
        let _ = rr.finish();
    }
    for r in PathTable::new(data).take(10_000) {
        if r.is_err() {
            break;
        }
    }
    let mut out = Vec::new();
    iso_name(data, true, &mut out);
    joliet_name(data, &mut out);
    if let Ok(b) = <[u8; 7]>::try_from(data.get(..7).unwrap_or(&[])) {
        let _ = short_date(&b);
    }
    if let Ok(b) = <[u8; 17]>::try_from(data.get(..17).unwrap_or(&[])) {
        let _ = long_date(&b);
    }
});
