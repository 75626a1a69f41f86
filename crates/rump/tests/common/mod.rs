//! Helpers shared by the integration tests: booting, small file
//! operations through the system-call layer, `getdents64` parsing and a
//! watchdog that turns a hang into a test failure.

#![allow(dead_code)]

use std::sync::mpsc;
use std::time::Duration;

use rump::sys::{self, consts::o};
use rump::{Errno, Kernel, Process};

/// A fresh kernel and a root process in it.
pub fn boot() -> (Kernel, Process) {
    let k = Kernel::boot().expect("boot");
    let p = k.process().expect("process");
    (k, p)
}

/// Creates or truncates `path` (mode 0o644) and writes `data` to it.
pub fn put(p: &Process, path: &[u8], data: &[u8]) {
    let fd = sys::open(p, path, o::WRONLY | o::CREAT | o::TRUNC, 0o644)
        .unwrap_or_else(|e| panic!("create {}: {e:?}", show(path)));
    assert_eq!(sys::write(p, fd, data), Ok(data.len()));
    sys::close(p, fd).unwrap();
}

/// The whole contents of `path`.
pub fn get(p: &Process, path: &[u8]) -> Result<Vec<u8>, Errno> {
    let fd = sys::open(p, path, o::RDONLY, 0)?;
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match sys::read(p, fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => {
                sys::close(p, fd).unwrap();
                return Err(e);
            }
        }
    }
    sys::close(p, fd).unwrap();
    Ok(out)
}

/// One `linux_dirent64` record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dirent {
    pub ino: u64,
    pub off: i64,
    pub kind: u8,
    pub name: Vec<u8>,
}

/// Parses the records `getdents64` put in `buf`.
pub fn dirents(buf: &[u8]) -> Vec<Dirent> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rec = &buf[pos..];
        let ino = u64::from_ne_bytes(rec[0..8].try_into().unwrap());
        let off = i64::from_ne_bytes(rec[8..16].try_into().unwrap());
        let reclen = u16::from_ne_bytes(rec[16..18].try_into().unwrap()) as usize;
        assert!(reclen >= 20 && reclen & 7 == 0, "bad d_reclen {reclen}");
        let kind = rec[18];
        let name_area = &rec[19..reclen];
        let nul = name_area
            .iter()
            .position(|&c| c == 0)
            .expect("name is NUL-terminated");
        out.push(Dirent {
            ino,
            off,
            kind,
            name: name_area[..nul].to_vec(),
        });
        pos += reclen;
    }
    out
}

/// Every entry of the directory `path` (with `.` and `..`), in listing
/// order.
pub fn list(p: &Process, path: &[u8]) -> Result<Vec<Dirent>, Errno> {
    let fd = sys::open(p, path, o::RDONLY | o::DIRECTORY, 0)?;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = sys::getdents64(p, fd, &mut buf)?;
        if n == 0 {
            break;
        }
        out.extend(dirents(&buf[..n]));
    }
    sys::close(p, fd).unwrap();
    Ok(out)
}

/// The names in directory `path`, without `.` and `..`, sorted.
pub fn names(p: &Process, path: &[u8]) -> Result<Vec<Vec<u8>>, Errno> {
    let mut v: Vec<Vec<u8>> = list(p, path)?
        .into_iter()
        .map(|d| d.name)
        .filter(|n| n != b"." && n != b"..")
        .collect();
    v.sort();
    Ok(v)
}

/// Runs `f` on its own thread and fails the test if it does not finish
/// within `limit` (the stuck thread is left behind; the test binary exits
/// anyway when the harness is done).
pub fn with_watchdog<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(limit) {
        Ok(()) => h.join().unwrap(),
        // The body panicked: re-raise its panic.
        Err(mpsc::RecvTimeoutError::Disconnected) => match h.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: no progress within {limit:?} (deadlock or hang)")
        }
    }
}

/// A path for messages.
pub fn show(path: &[u8]) -> String {
    String::from_utf8_lossy(path).into_owned()
}
