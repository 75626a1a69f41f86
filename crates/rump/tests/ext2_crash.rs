//! Crash consistency: a child process writes and fsyncs through our
//! driver and is killed with SIGKILL at fixed and at random points. Every record the
//! child reported as fsync'd must be on the image, `e2fsck -fy` must
//! repair the rest, and our driver must mount the result.
//!
//! The child is this test binary run again with `EXT2_CRASH_CHILD` set
//! to the image path.

mod ext2_util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use ext2_util::*;
use rump::sys;
use rump::sys::consts::o;

const RECORD: usize = 3000;

fn record(i: u64) -> Vec<u8> {
    let mut r = format!("record {i:08} ").into_bytes();
    r.resize(RECORD, b'a' + (i % 26) as u8);
    r
}

/// The child: appends records to /mnt/log, fsyncs, reports, and also
/// churns other files without syncing them. Runs until killed.
fn child(image: &str) {
    let (_k, p) = boot();
    rump::ext2::mount_image(&p, image, "/dev/disk0", "/mnt", false).unwrap();
    let fd = sys::open(&p, b"/mnt/log", o::WRONLY | o::CREAT | o::APPEND, 0o644).unwrap();
    rump::fs::create_dir_all(&p, "/mnt/churn").unwrap();
    let mut out = std::io::stdout().lock();
    use std::io::Write;
    for i in 0u64.. {
        sys::write(&p, fd, &record(i)).unwrap();
        let name = format!("/mnt/churn/f{}", i % 50);
        let _ = rump::fs::write(&p, &name, vec![i as u8; (i as usize * 997) % 20000]);
        if i % 7 == 0 {
            let _ = rump::fs::remove_file(&p, format!("/mnt/churn/f{}", (i + 25) % 50));
        }
        sys::fsync(&p, fd).unwrap();
        writeln!(out, "synced {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn ext2_crash_keeps_fsynced_data() {
    if let Ok(image) = std::env::var("EXT2_CRASH_CHILD") {
        child(&image);
        return;
    }
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    // Four fixed kill points, then four random ones: the seed is printed
    // and EXT2_CRASH_SEED replays it.
    let seed = std::env::var("EXT2_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed {seed} (EXT2_CRASH_SEED={seed} replays it)");
    let mut rng = seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut plan: Vec<(u64, u64)> = [3u64, 20, 57, 130].iter().map(|&k| (k, 0)).collect();
    for _ in 0..4 {
        plan.push((1 + next() % 200, next() % 5000));
    }
    for (round, (kill_after, extra_us)) in plan.into_iter().enumerate() {
        let img = dir.path().join(format!("crash{round}.img"));
        mke2fs(
            &img,
            16 << 20,
            &["-b", if round % 2 == 0 { "1024" } else { "4096" }],
        );
        let mut c = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "ext2_crash_keeps_fsynced_data",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("EXT2_CRASH_CHILD", &img)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(c.stdout.take().unwrap()).lines();
        let mut last = None;
        while let Some(Ok(line)) = lines.next() {
            if let Some(n) = line.strip_prefix("synced ") {
                let n: u64 = n.parse().unwrap();
                last = Some(n);
                if n >= kill_after {
                    break;
                }
            }
        }
        // Let it run a little past the last report, then SIGKILL.
        std::thread::sleep(std::time::Duration::from_millis(round as u64 * 3));
        std::thread::sleep(std::time::Duration::from_micros(extra_us));
        c.kill().unwrap();
        c.wait().unwrap();
        // Anything printed after we stopped reading was synced too.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("synced ") {
                last = Some(n.parse().unwrap());
            }
        }
        let last = last.expect("the child synced nothing");
        eprintln!(
            "round {round}: killed after {} fsync'd records (kill point {kill_after}, +{extra_us} µs)",
            last + 1
        );
        repair(&img);
        let (k, p) = mount_rw(&img);
        let log = rump::fs::read(&p, "/mnt/log").unwrap();
        assert!(
            log.len() as u64 >= (last + 1) * RECORD as u64,
            "round {round}: {} bytes on disk, {} records fsync'd",
            log.len(),
            last + 1
        );
        for i in 0..=last {
            let at = i as usize * RECORD;
            assert_eq!(&log[at..at + RECORD], &record(i)[..], "record {i}");
        }
        rump::fs::write(&p, "/mnt/after", b"usable").unwrap();
        unmount(k, p);
        assert_clean(&img);
    }
}
