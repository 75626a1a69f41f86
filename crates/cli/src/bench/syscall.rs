//! `rump bench syscall`: `open` + `fstat` + `close` of a file on tmpfs,
//! through an in-process rump kernel and, in the same run, through the
//! host kernel on its tmpfs (`/dev/shm`, else the temporary directory).
//! Rounds alternate between the two so both see the same machine noise;
//! the figure is the median over rounds.

use std::ffi::CString;
use std::time::Instant;

use rump::sys::consts::o;

use super::common::HostTmpfs;
use super::report::{median, Metric, Unit};

const ROUNDS: usize = 7;

pub fn run(iterations: usize) -> anyhow::Result<()> {
    let kernel = rump::Kernel::boot()?;
    let p = kernel.process()?;
    rump::fs::create_dir_all(&p, "/bench")?;
    rump::fs::write(&p, "/bench/file", b"x")?;

    let host_dir = HostTmpfs::new()?;
    let host_file = host_dir.path().join("file");
    std::fs::write(&host_file, b"x")?;
    let c_path = CString::new(host_file.as_os_str().as_encoded_bytes())?;

    let per_round = iterations / ROUNDS;
    let mut ours = Vec::new();
    let mut host = Vec::new();
    for _ in 0..ROUNDS {
        let t = Instant::now();
        for _ in 0..per_round {
            let fd = rump::sys::open(&p, b"/bench/file", o::RDONLY, 0)?;
            let st = rump::sys::fstat(&p, fd)?;
            std::hint::black_box(st);
            rump::sys::close(&p, fd)?;
        }
        ours.push(t.elapsed().as_nanos() as f64 / per_round as f64);

        let t = Instant::now();
        for _ in 0..per_round {
            host_round(&c_path)?;
        }
        host.push(t.elapsed().as_nanos() as f64 / per_round as f64);
    }
    Metric {
        bench: "syscall",
        metric: "open_fstat_close_ns",
        value: median(&mut ours),
        unit: Unit::Ns,
        baseline: Some(("host tmpfs", median(&mut host))),
    }
    .print();
    kernel.halt();
    Ok(())
}

fn host_round(path: &CString) -> anyhow::Result<()> {
    // SAFETY: `path` is a valid NUL-terminated string for the call.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY) };
    anyhow::ensure!(fd >= 0, "host open: {}", std::io::Error::last_os_error());
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `fd` is open and `st` points to writable memory of the
    // right size for one `struct stat`.
    let r = unsafe { libc::fstat(fd, st.as_mut_ptr()) };
    anyhow::ensure!(r == 0, "host fstat: {}", std::io::Error::last_os_error());
    std::hint::black_box(st);
    // SAFETY: `fd` is an open descriptor this function owns.
    unsafe { libc::close(fd) };
    Ok(())
}
