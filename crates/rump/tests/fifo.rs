//! Named pipes: `mknod(S_IFIFO)` and the open/read/write rules of fifo(7).

use std::thread;
use std::time::Duration;

use rump::sys::{self, consts::o, consts::s};
use rump::{Errno, Kernel};

fn setup() -> (Kernel, rump::Process) {
    let k = Kernel::boot().unwrap();
    let p = k.process().unwrap();
    sys::mknod(&p, b"/fifo", s::IFIFO | 0o644, 0).unwrap();
    (k, p)
}

#[test]
fn fifo_is_a_fifo_in_stat_and_getdents() {
    let (_k, p) = setup();
    let st = sys::lstat(&p, b"/fifo").unwrap();
    assert_eq!(st.mode & s::IFMT, s::IFIFO);
    assert_eq!(st.mode & 0o777, 0o644 & !0o022);
    let kinds: Vec<_> = rump::fs::read_dir(&p, "/")
        .unwrap()
        .map(|e| e.unwrap().file_type())
        .collect();
    assert_eq!(kinds, [rump::kern::vfs::NodeKind::Fifo]);
}

#[test]
fn reader_blocks_until_writer_opens_then_data_flows() {
    let (_k, p) = setup();
    let q = p.clone();
    let reader = thread::spawn(move || {
        let fd = sys::open(&q, b"/fifo", o::RDONLY, 0).unwrap();
        let mut buf = [0u8; 16];
        let n = sys::read(&q, fd, &mut buf).unwrap();
        let eof = sys::read(&q, fd, &mut buf).unwrap();
        let st = sys::fstat(&q, fd).unwrap();
        (buf[..n].to_vec(), eof, st)
    });
    thread::sleep(Duration::from_millis(20));
    assert!(
        !reader.is_finished(),
        "open(O_RDONLY) must wait for a writer"
    );
    let w = sys::open(&p, b"/fifo", o::WRONLY, 0).unwrap();
    assert_eq!(sys::write(&p, w, b"through").unwrap(), 7);
    sys::close(&p, w).unwrap();
    let (data, eof, st) = reader.join().unwrap();
    assert_eq!(data, b"through");
    assert_eq!(eof, 0, "EOF once the writer closed");
    assert_eq!(st.ino, sys::stat(&p, b"/fifo").unwrap().ino);
}

#[test]
fn nonblocking_opens() {
    let (_k, p) = setup();
    assert_eq!(
        sys::open(&p, b"/fifo", o::WRONLY | o::NONBLOCK, 0),
        Err(Errno::ENXIO)
    );
    let r = sys::open(&p, b"/fifo", o::RDONLY | o::NONBLOCK, 0).unwrap();
    let mut b = [0u8; 4];
    assert_eq!(sys::read(&p, r, &mut b), Ok(0));
    let w = sys::open(&p, b"/fifo", o::WRONLY | o::NONBLOCK, 0).unwrap();
    assert_eq!(sys::read(&p, r, &mut b), Err(Errno::EAGAIN));
    sys::write(&p, w, b"ab").unwrap();
    assert_eq!(sys::read(&p, r, &mut b), Ok(2));
}

#[test]
fn read_write_open_does_not_block() {
    let (_k, p) = setup();
    let fd = sys::open(&p, b"/fifo", o::RDWR, 0).unwrap();
    sys::write(&p, fd, b"self").unwrap();
    let mut b = [0u8; 4];
    assert_eq!(sys::read(&p, fd, &mut b), Ok(4));
    assert_eq!(&b, b"self");
    assert_eq!(sys::lseek(&p, fd, 0, 0), Err(Errno::ESPIPE));
}

#[test]
fn halt_wakes_a_blocked_fifo_open() {
    let (k, p) = setup();
    let q = p.clone();
    let t = thread::spawn(move || sys::open(&q, b"/fifo", o::WRONLY, 0));
    thread::sleep(Duration::from_millis(20));
    k.halt();
    assert_eq!(t.join().unwrap(), Err(Errno::ESHUTDOWN));
}
