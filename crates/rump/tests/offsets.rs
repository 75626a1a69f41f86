//! File offsets are atomic with the I/O that moves them (POSIX.1-2017,
//! XSH 2.9.7 "Thread Interactions with Regular File Operations": `read`
//! and `write` on regular files are atomic with respect to each other,
//! offset included). Threads sharing one open file description (one
//! process's descriptor, a child sharing the table, a child with a copy of
//! it, as after `fork`) each write or read whole records; afterwards every
//! record is in the file (or was read) exactly once and intact. The same
//! for `O_APPEND` writes, shared or through separate opens. On tmpfs and
//! on ext2.

mod common;
mod ext2_util;

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::with_watchdog;
use rump::sys::{self, consts::o};
use rump::{ForkFds, Kernel, Process};

const WATCHDOG: Duration = Duration::from_secs(120);
const THREADS: usize = 8;
const RECORDS_PER_THREAD: usize = 2000;
/// Every record is this long: `<tt:ssssss:fill...>\n`.
const RECORD: usize = 64;

/// Record `seq` of thread `t`: its name, then a fill that depends on
/// both, so a torn or shifted record does not parse.
fn record(t: usize, seq: usize) -> Vec<u8> {
    let head = format!("<{t:02}:{seq:06}:");
    let fill = b'a' + ((t * 7 + seq) % 26) as u8;
    let mut r = head.into_bytes();
    r.resize(RECORD - 2, fill);
    r.push(b'>');
    r.push(b'\n');
    r
}

/// The thread and sequence number of a well-formed record.
fn parse(chunk: &[u8]) -> Option<(usize, usize)> {
    let s = std::str::from_utf8(chunk).ok()?;
    let t = s.get(1..3)?.parse().ok()?;
    let seq = s.get(4..10)?.parse().ok()?;
    (t < THREADS && seq < RECORDS_PER_THREAD && chunk == record(t, seq)).then_some((t, seq))
}

/// Checks that `bytes` (what a file held, or the union of what was read
/// from it) is every record exactly once, each intact. `Err` describes
/// what went wrong.
fn check_records(bytes: &[u8], in_order_per_thread: bool) -> Result<(), String> {
    let want = THREADS * RECORDS_PER_THREAD * RECORD;
    let mut seen: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut torn = Vec::new();
    let mut last = [None::<usize>; THREADS];
    let mut out_of_order = 0;
    for (i, chunk) in bytes.chunks(RECORD).enumerate() {
        match parse(chunk) {
            Some((t, seq)) => {
                *seen.entry((t, seq)).or_insert(0) += 1;
                if last[t].is_some_and(|l| l >= seq) {
                    out_of_order += 1;
                }
                last[t] = Some(seq);
            }
            None => torn.push(i * RECORD),
        }
    }
    let missing = THREADS * RECORDS_PER_THREAD - seen.len();
    let repeated: usize = seen.values().filter(|&&n| n > 1).map(|n| n - 1).sum();
    let mut problems = Vec::new();
    if bytes.len() != want {
        problems.push(format!(
            "{} bytes, want {want} ({} bytes {})",
            bytes.len(),
            bytes.len().abs_diff(want),
            if bytes.len() < want {
                "lost"
            } else {
                "too many"
            }
        ));
    }
    if missing > 0 {
        problems.push(format!("{missing} records missing"));
    }
    if repeated > 0 {
        problems.push(format!("{repeated} records more than once"));
    }
    if !torn.is_empty() {
        problems.push(format!(
            "{} chunks are not whole records (first at byte {}: {:?})",
            torn.len(),
            torn[0],
            String::from_utf8_lossy(&bytes[torn[0]..(torn[0] + RECORD).min(bytes.len())])
        ));
    }
    if in_order_per_thread && out_of_order > 0 {
        problems.push(format!(
            "{out_of_order} records before an earlier one of the same thread"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// How the threads get at the one open file.
#[derive(Clone, Copy, Debug)]
enum Sharing {
    /// One process, one descriptor.
    SameProcess,
    /// Children sharing the descriptor table (`rfork(ForkFds::Share)`).
    SharedTable,
    /// Children with a copy of the table (`rfork(ForkFds::Copy)`, as after
    /// `fork`): its own table entries, the same open file description.
    CopiedTable,
}

const SHARINGS: [Sharing; 3] = [
    Sharing::SameProcess,
    Sharing::SharedTable,
    Sharing::CopiedTable,
];

/// The process thread `t` uses to reach `fd` of `p`.
fn process_for(p: &Process, sharing: Sharing) -> Process {
    match sharing {
        Sharing::SameProcess => p.clone(),
        Sharing::SharedTable => p.rfork(ForkFds::Share).unwrap(),
        Sharing::CopiedTable => p.rfork(ForkFds::Copy).unwrap(),
    }
}

/// Runs `body(t, process)` on [`THREADS`] threads started together.
fn run_threads<T: Send + 'static>(
    procs: Vec<Process>,
    body: impl Fn(usize, &Process) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let body = Arc::new(body);
    let barrier = Arc::new(Barrier::new(procs.len()));
    let handles: Vec<_> = procs
        .into_iter()
        .enumerate()
        .map(|(t, q)| {
            let (body, barrier) = (body.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                body(t, &q)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

/// The whole file at `path`, read with `pread` (no offset involved).
fn contents(p: &Process, path: &[u8]) -> Vec<u8> {
    let fd = sys::open(p, path, o::RDONLY, 0).unwrap();
    let size = sys::fstat(p, fd).unwrap().size as usize;
    let mut out = vec![0u8; size];
    let mut got = 0;
    while got < size {
        let n = sys::pread(p, fd, &mut out[got..], got as i64).unwrap();
        assert!(n > 0, "pread at {got} of {size}: end of file");
        got += n;
    }
    sys::close(p, fd).unwrap();
    out
}

/// Threads write their records with `write` through one file description
/// opened without `O_APPEND` (flags: extra open flags). Returns the
/// file's contents and size.
fn shared_writes(p: &Process, path: &[u8], sharing: Sharing, extra: i32) -> (Vec<u8>, u64) {
    let fd = sys::open(p, path, o::WRONLY | o::CREAT | o::TRUNC | extra, 0o644).unwrap();
    let procs = (0..THREADS).map(|_| process_for(p, sharing)).collect();
    run_threads(procs, move |t, q| {
        for seq in 0..RECORDS_PER_THREAD {
            assert_eq!(sys::write(q, fd, &record(t, seq)), Ok(RECORD));
        }
    });
    let size = sys::fstat(p, fd).unwrap().size;
    sys::close(p, fd).unwrap();
    (contents(p, path), size)
}

fn writes_through_a_shared_offset(p: &Process, dir: &str) {
    let mut failures = Vec::new();
    for sharing in SHARINGS {
        let path = format!("{dir}/shared-writes-{sharing:?}");
        let (bytes, size) = shared_writes(p, path.as_bytes(), sharing, 0);
        assert_eq!(size as usize, bytes.len());
        if let Err(e) = check_records(&bytes, true) {
            failures.push(format!("{sharing:?}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{THREADS} threads each wrote {RECORDS_PER_THREAD} records of {RECORD} bytes with \
         write() through one shared file offset (no O_APPEND); the file must hold every \
         record exactly once, intact (POSIX 2.9.7: the offset update is atomic with the \
         write):\n  {}",
        failures.join("\n  ")
    );
}

/// Writes the records (thread by thread, in order) to `path`.
fn write_known_file(p: &Process, path: &[u8]) -> Vec<u8> {
    let all: Vec<u8> = (0..THREADS)
        .flat_map(|t| (0..RECORDS_PER_THREAD).flat_map(move |s| record(t, s)))
        .collect();
    common::put(p, path, &all);
    all
}

fn reads_through_a_shared_offset(p: &Process, dir: &str) {
    let path = format!("{dir}/known");
    let all = write_known_file(p, path.as_bytes());
    let mut failures = Vec::new();
    for sharing in SHARINGS {
        let fd = sys::open(p, path.as_bytes(), o::RDONLY, 0).unwrap();
        let procs = (0..THREADS).map(|_| process_for(p, sharing)).collect();
        // Each thread reads one record at a time until the end of file.
        let parts = run_threads(procs, move |_, q| {
            let mut mine = Vec::new();
            let mut buf = [0u8; RECORD];
            loop {
                let n = sys::read(q, fd, &mut buf).unwrap();
                if n == 0 {
                    break;
                }
                // A regular file reads in full until its end.
                assert_eq!(n, RECORD, "short read");
                mine.extend_from_slice(&buf);
            }
            mine
        });
        sys::close(p, fd).unwrap();
        let union: Vec<u8> = parts.concat();
        // The union, sorted back into file order, is the file.
        let mut recs: Vec<&[u8]> = union.chunks(RECORD).collect();
        recs.sort_by_key(|r| parse(r).unwrap_or((usize::MAX, 0)));
        let sorted = recs.concat();
        let r = check_records(&sorted, false).and_then(|()| {
            if sorted == all {
                Ok(())
            } else {
                Err("the records read differ from the file's".into())
            }
        });
        if let Err(e) = r {
            failures.push(format!("{sharing:?}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{THREADS} threads read a file of {} records of {RECORD} bytes with read() through \
         one shared file offset; together they must read every byte exactly once (POSIX \
         2.9.7: the offset update is atomic with the read):\n  {}",
        THREADS * RECORDS_PER_THREAD,
        failures.join("\n  ")
    );
}

fn appends(p: &Process, dir: &str) {
    let mut failures = Vec::new();
    for sharing in SHARINGS {
        let path = format!("{dir}/append-{sharing:?}");
        let (bytes, size) = shared_writes(p, path.as_bytes(), sharing, o::APPEND);
        assert_eq!(size as usize, bytes.len());
        if let Err(e) = check_records(&bytes, true) {
            failures.push(format!("one O_APPEND description, {sharing:?}: {e}"));
        }
    }
    // Separate opens (separate descriptions) in separate processes.
    let path = format!("{dir}/append-separate");
    common::put(p, path.as_bytes(), b"");
    let procs = (0..THREADS)
        .map(|_| p.rfork(ForkFds::Clear).unwrap())
        .collect();
    let pth = path.clone();
    run_threads(procs, move |t, q| {
        let fd = sys::open(q, pth.as_bytes(), o::WRONLY | o::APPEND, 0).unwrap();
        for seq in 0..RECORDS_PER_THREAD {
            assert_eq!(sys::write(q, fd, &record(t, seq)), Ok(RECORD));
        }
        sys::close(q, fd).unwrap();
    });
    if let Err(e) = check_records(&contents(p, path.as_bytes()), true) {
        failures.push(format!("separate O_APPEND opens: {e}"));
    }
    assert!(
        failures.is_empty(),
        "{THREADS} threads each appended {RECORDS_PER_THREAD} records of {RECORD} bytes \
         with O_APPEND; the file must hold every record exactly once, intact (POSIX: \
         each write goes to the end of file, atomically):\n  {}",
        failures.join("\n  ")
    );
}

/// A kernel with an ext2 image mounted on `/mnt` (in a temporary
/// directory that lives as long as the returned guard).
fn ext2() -> (Kernel, Process, tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("offsets.img");
    ext2_util::newfs(&image, 32 << 20, 4096);
    let (k, p) = ext2_util::mount_rw(&image);
    (k, p, dir, image)
}

/// Unmounts the ext2 image and checks it with e2fsck when installed.
fn ext2_done(k: Kernel, p: Process, image: &std::path::Path) {
    ext2_util::unmount(k, p);
    if ext2_util::have("e2fsck") {
        ext2_util::assert_clean(image);
    } else {
        eprintln!("skipped the e2fsck check: e2fsck not installed");
    }
}

#[test]
fn writes_through_a_shared_offset_on_tmpfs_land_once_each() {
    with_watchdog(WATCHDOG, || {
        let (_k, p) = common::boot();
        writes_through_a_shared_offset(&p, "");
    });
}

#[test]
fn writes_through_a_shared_offset_on_ext2_land_once_each() {
    with_watchdog(WATCHDOG, || {
        let (k, p, _dir, image) = ext2();
        writes_through_a_shared_offset(&p, "/mnt");
        ext2_done(k, p, &image);
    });
}

#[test]
fn reads_through_a_shared_offset_on_tmpfs_read_every_byte_once() {
    with_watchdog(WATCHDOG, || {
        let (_k, p) = common::boot();
        reads_through_a_shared_offset(&p, "");
    });
}

#[test]
fn reads_through_a_shared_offset_on_ext2_read_every_byte_once() {
    with_watchdog(WATCHDOG, || {
        let (k, p, _dir, image) = ext2();
        reads_through_a_shared_offset(&p, "/mnt");
        ext2_done(k, p, &image);
    });
}

#[test]
fn append_writes_on_tmpfs_all_land() {
    with_watchdog(WATCHDOG, || {
        let (_k, p) = common::boot();
        appends(&p, "");
    });
}

#[test]
fn append_writes_on_ext2_all_land() {
    with_watchdog(WATCHDOG, || {
        let (k, p, _dir, image) = ext2();
        appends(&p, "/mnt");
        ext2_done(k, p, &image);
    });
}
