//! Files over 4 GiB: `-iso-level 3` records them as several directory
//! records with the multi-extent flag. A sparse host file with markers
//! around the extent boundaries, read back through our driver.

mod ext2_util;
mod iso_util;

use std::io::{Seek, SeekFrom, Write};
use std::process::{Command, Stdio};

use iso_util::*;
use rump::sys;

const SIZE: u64 = (4 << 30) + (3 << 20) + 12345;

fn marker(at: u64) -> Vec<u8> {
    (0..8192u64)
        .map(|i| ((at >> 12) as u8) ^ (i as u8).wrapping_mul(31))
        .collect()
}

#[test]
fn multi_extent_file_over_4gib() {
    require!(have("xorriso"), "xorriso not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let big = src.join("big.img");
    let mut f = std::fs::File::create(&big).unwrap();
    f.set_len(SIZE).unwrap();
    // 0xFFFFF800 is the largest extent a writer makes (4 GiB - 2 KiB).
    let spots = [0u64, 0xFFFF_F800 - 4096, (4 << 30) + 65_536, SIZE - 8192];
    for &at in &spots {
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&marker(at)).unwrap();
    }
    drop(f);
    std::fs::write(src.join("after"), b"the next file\n").unwrap();
    // Write the image through dd conv=sparse so its zeros stay holes.
    let img = dir.path().join("big.iso");
    let mut x = Command::new("xorriso")
        .args([
            "-as",
            "mkisofs",
            "-quiet",
            "-R",
            "-iso-level",
            "3",
            "-o",
            "-",
        ])
        .arg(&src)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = x.stdout.take().unwrap();
    let dd = Command::new("dd")
        .args(["bs=1M", "conv=sparse", "status=none"])
        .arg(format!("of={}", img.display()))
        .stdin(out)
        .status()
        .unwrap();
    assert!(x.wait().unwrap().success() && dd.success());
    let listing = run("isoinfo", &["-l", "-i", img.to_str().unwrap()]);
    assert!(
        listing.matches("BIG.IMG").count() >= 2,
        "not multi-extent:\n{listing}"
    );

    let (k, p) = mount(&img, "");
    let st = sys::stat(&p, b"/mnt/big.img").unwrap();
    assert_eq!(st.size, SIZE);
    let fd = sys::open(&p, b"/mnt/big.img", sys::consts::o::RDONLY, 0).unwrap();
    for &at in &spots {
        let mut buf = vec![0u8; 8192];
        assert_eq!(sys::pread(&p, fd, &mut buf, at as i64).unwrap(), 8192);
        let want = marker(at);
        let first_bad = buf.iter().zip(&want).position(|(a, b)| a != b);
        assert_eq!(
            first_bad,
            None,
            "at {at}: first difference\n{}",
            listing_of(&listing)
        );
    }
    // A read across the boundary of the first two extents, and zeros
    // between the markers.
    let mut buf = vec![0u8; 1 << 16];
    let at = 0xFFFF_F800u64 - 4096;
    assert_eq!(sys::pread(&p, fd, &mut buf, at as i64).unwrap(), 1 << 16);
    assert!(buf[..8192] == marker(at)[..]);
    assert!(buf[8192..].iter().all(|&b| b == 0));
    // Short read at the end, nothing past it.
    assert_eq!(
        sys::pread(&p, fd, &mut buf, (SIZE - 100) as i64).unwrap(),
        100
    );
    assert_eq!(sys::pread(&p, fd, &mut buf, SIZE as i64).unwrap(), 0);
    sys::close(&p, fd).unwrap();
    assert_eq!(
        rump::fs::read(&p, "/mnt/after").unwrap(),
        b"the next file\n"
    );
    drop(p);
    k.halt();
}

fn listing_of(l: &str) -> String {
    l.lines()
        .filter(|l| l.contains("BIG"))
        .collect::<Vec<_>>()
        .join("\n")
}
