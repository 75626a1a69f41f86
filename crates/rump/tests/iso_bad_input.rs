//! Hostile ISO 9660 images: random byte flips over the descriptor,
//! path-table, directory and SUSP areas, truncations, and targeted
//! corruptions (record lengths past the sector, CE loops, inconsistent
//! SL components, CL loops, extents past the end of the device). Every
//! case must end in data or an errno: no panic, no hang.

mod ext2_util;
mod iso_util;

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use iso_util::*;
use proptest::prelude::*;
use rump::ext2::dev_blk::{MemDevice, Registry};
use rump::sys;
use rump::Errno;

/// A small Rock Ridge + Joliet image with every kind of entry, made once.
fn pristine() -> Option<Vec<u8>> {
    if !have("xorriso") {
        return None;
    }
    static IMG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    Some(
        IMG.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let src = dir.path().join("src");
            make_tree(&src, false);
            // Keep it small: drop the big files.
            std::fs::remove_file(src.join("binary.dat")).unwrap();
            let img = dir.path().join("a.iso");
            xorriso(&img, &src, &["-R", "-J"]);
            std::fs::read(img).unwrap()
        })
        .clone(),
    )
}

/// Mounts `bytes` and walks everything; returns the errors met. Runs in a
/// thread with a deadline: a hang fails the test.
fn exercise(bytes: Vec<u8>) -> Vec<Errno> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let k = rump::Kernel::builder().iso9660().boot().unwrap();
        let p = k.process().unwrap();
        Registry::of(k.raw())
            .unwrap()
            .register("/dev/cd0", Arc::new(MemDevice::from_bytes(bytes, true)))
            .unwrap();
        rump::fs::create_dir_all(&p, "/mnt").unwrap();
        let mut errs = Vec::new();
        match sys::mount(
            &p,
            b"/dev/cd0",
            b"/mnt",
            b"iso9660",
            sys::consts::ms::RDONLY,
            b"",
        ) {
            Ok(()) => {
                let mut budget = 3000;
                walk(&p, "/mnt", 0, &mut budget, &mut errs);
                sys::umount2(&p, b"/mnt", 0).unwrap();
            }
            Err(e) => errs.push(e),
        }
        drop(p);
        k.halt();
        let _ = tx.send(errs);
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("mount and walk did not finish within 60 s (a hang) or panicked")
}

fn walk(p: &rump::Process, path: &str, depth: usize, budget: &mut usize, errs: &mut Vec<Errno>) {
    if depth > 30 || *budget == 0 {
        return;
    }
    *budget -= 1;
    let st = match sys::lstat(p, path.as_bytes()) {
        Ok(st) => st,
        Err(e) => return errs.push(e),
    };
    match st.mode & 0o170000 {
        0o040000 => {
            let names: Vec<Vec<u8>> = match rump::fs::read_dir(p, path) {
                Ok(d) => d
                    .filter_map(|e| e.ok())
                    .map(|e| e.name_bytes().to_vec())
                    .take(1000)
                    .collect(),
                Err(e) => return errs.push(Errno(e.raw_os_error().unwrap_or(5))),
            };
            for n in names {
                let n = String::from_utf8_lossy(&n).into_owned();
                walk(p, &format!("{path}/{n}"), depth + 1, budget, errs);
            }
        }
        0o100000 => {
            if let Err(e) = rump::fs::read(p, path) {
                errs.push(Errno(e.raw_os_error().unwrap_or(5)));
            }
        }
        0o120000 => {
            if let Err(e) = sys::readlink(p, path.as_bytes()) {
                errs.push(e);
            }
        }
        _ => {}
    }
}

#[test]
fn pristine_image_walks_without_errors() {
    let Some(img) = pristine() else {
        eprintln!("skipped: xorriso not installed");
        return;
    };
    assert_eq!(exercise(img), vec![]);
}

/// Where a directory record named (by Rock Ridge `NM`) `name` starts.
fn find_record(img: &[u8], name: &[u8]) -> usize {
    let mut nm = b"NM".to_vec();
    nm.push((5 + name.len()) as u8);
    nm.extend_from_slice(&[1, 0]);
    nm.extend_from_slice(name);
    let at = img
        .windows(nm.len())
        .position(|w| w == nm)
        .expect("NM entry");
    // Walk back to the record start: records start after the previous
    // one within the 2048-byte sector; scan the sector from its start.
    let sector = at / 2048 * 2048;
    let mut pos = sector;
    loop {
        let len = img[pos] as usize;
        assert!(len > 0, "record not found");
        if pos + len > at {
            return pos;
        }
        pos += len;
    }
}

/// The SUSP entry `sig` of the record at `rec`.
fn find_entry(img: &[u8], rec: usize, sig: &[u8; 2]) -> Option<usize> {
    let len = img[rec] as usize;
    (rec..rec + len - 1).find(|&i| &img[i..i + 2] == sig && img[i + 2] >= 4 && img[i + 3] == 1)
}

fn put_both32(b: &mut [u8], v: u32) {
    b[..4].copy_from_slice(&v.to_le_bytes());
    b[4..8].copy_from_slice(&v.to_be_bytes());
}

fn errors_with(img: Vec<u8>) -> Vec<Errno> {
    let errs = exercise(img);
    for e in &errs {
        assert!(
            [
                Errno::EIO,
                Errno::EUCLEAN,
                Errno::ENOENT,
                Errno::ELOOP,
                Errno::ENAMETOOLONG,
                Errno::ENOTDIR,
                Errno::EINVAL
            ]
            .contains(e),
            "unexpected errno {e:?}"
        );
    }
    errs
}

#[test]
fn targeted_corruptions_fail_cleanly() {
    let Some(img) = pristine() else {
        eprintln!("skipped: xorriso not installed");
        return;
    };
    // A record length that runs past its sector.
    let mut bad = img.clone();
    let rec = find_record(&bad, b"hello.txt");
    bad[rec] = 255;
    let sector_end = rec / 2048 * 2048 + 2048;
    if rec + 255 > sector_end {
        assert!(errors_with(bad).contains(&Errno::EUCLEAN));
    }
    // A record length below the minimum.
    let mut bad = img.clone();
    bad[rec] = 20;
    assert!(errors_with(bad).contains(&Errno::EUCLEAN));
    // An extent past the end of the device: listed, reading fails.
    let mut bad = img.clone();
    put_both32(&mut bad[rec + 2..], 0x00ff_ffff);
    assert!(errors_with(bad).contains(&Errno::EIO));
    // An SL component flagged CURRENT with content.
    let mut bad = img.clone();
    let rec = find_record(&bad, b"rel-link");
    let sl = find_entry(&bad, rec, b"SL").expect("SL");
    bad[sl + 5] = 0x02; // first component: CURRENT, length stays 9
    assert!(errors_with(bad).contains(&Errno::EUCLEAN));
    // A CE loop: the long symlink's continuation area continues into
    // itself.
    let mut bad = img.clone();
    let rec = find_record(&bad, b"long-link");
    let ce = find_entry(&bad, rec, b"CE").expect("long-link has a CE");
    let block = u32::from_le_bytes(bad[ce + 4..ce + 8].try_into().unwrap());
    let off = u32::from_le_bytes(bad[ce + 12..ce + 16].try_into().unwrap());
    let area = block as usize * 2048 + off as usize;
    let mut entry = b"CE\x1c\x01".to_vec();
    entry.extend_from_slice(&[0; 24]);
    put_both32(&mut entry[4..], block);
    put_both32(&mut entry[12..], off);
    put_both32(&mut entry[20..], 28);
    bad[area..area + 28].copy_from_slice(&entry);
    put_both32(&mut bad[ce + 20..], 28);
    assert!(errors_with(bad).contains(&Errno::EUCLEAN));
    // A directory that names its own parent: a loop.
    let mut bad = img.clone();
    let rec = find_record(&bad, b"full");
    let root_extent = u32::from_le_bytes(
        bad[16 * 2048 + 156 + 2..16 * 2048 + 156 + 6]
            .try_into()
            .unwrap(),
    );
    put_both32(&mut bad[rec + 2..], root_extent);
    assert!(errors_with(bad).contains(&Errno::EUCLEAN));
    // Truncated in the middle of the metadata and of the data.
    for cut in [16 * 2048 + 100, img.len() / 2, img.len() - 4096] {
        errors_with(img[..cut].to_vec());
    }
    // No descriptors at all.
    assert_eq!(errors_with(vec![0u8; 64 * 2048]), vec![Errno::EUCLEAN]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Byte flips in the first 40 sectors after the system area, where
    /// xorriso puts descriptors, path tables, directories and SUSP areas.
    #[test]
    fn byte_flips_fail_cleanly(flips in proptest::collection::vec((0usize..40 * 2048, any::<u8>()), 1..24)) {
        let Some(mut img) = pristine() else { return Ok(()); };
        for (at, v) in flips {
            let i = 16 * 2048 + at;
            if i < img.len() {
                img[i] ^= v | 1;
            }
        }
        errors_with(img);
    }

    #[test]
    fn truncations_fail_cleanly(keep in 0usize..200_000) {
        let Some(img) = pristine() else { return Ok(()); };
        let keep = keep.min(img.len());
        errors_with(img[..keep].to_vec());
    }
}
