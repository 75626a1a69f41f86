//! `rump bench capi`: what the C ABI adds to a call. `rump_sys_getpid`
//! and `rump_sys_open` + `rump_sys_fstat` + `rump_sys_close` through
//! `librump.so` (loaded with `dlopen`, called through its exported
//! symbols, as a C program calls them), against the same calls through
//! the Rust API (`rump::sys::*`) on a kernel of this process, in the same
//! run. Rounds alternate between the two; figures are medians.

use std::ffi::{c_char, c_int, c_uint, CStr, CString};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use rump::sys::consts::o;

use super::report::{median, Metric, Unit};

#[derive(Args)]
pub struct CapiArgs {
    /// librump.so to load (default: next to this program, as built by
    /// `cargo build --release -p rump-capi`).
    #[arg(long)]
    lib: Option<PathBuf>,
    /// Calls per round.
    #[arg(long, default_value_t = 2_000_000)]
    iterations: usize,
    /// Rounds.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
}

type GetpidFn = unsafe extern "C" fn() -> c_int;
type InitFn = unsafe extern "C" fn() -> c_int;
type OpenFn = unsafe extern "C" fn(*const c_char, c_int, c_uint) -> c_int;
type FstatFn = unsafe extern "C" fn(c_int, *mut libc::stat) -> c_int;
type CloseFn = unsafe extern "C" fn(c_int) -> c_int;
type WriteFn = unsafe extern "C" fn(c_int, *const libc::c_void, usize) -> isize;

struct Lib {
    handle: *mut libc::c_void,
}

impl Lib {
    fn open(path: &std::path::Path) -> anyhow::Result<Lib> {
        let c = CString::new(path.as_os_str().as_encoded_bytes())?;
        // SAFETY: c is a valid path string; dlopen has no other
        // preconditions. RTLD_LOCAL keeps its symbols out of ours.
        let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        if handle.is_null() {
            // SAFETY: dlerror returns NULL or a valid C string.
            let e = unsafe { libc::dlerror() };
            let msg = if e.is_null() {
                "unknown error".into()
            } else {
                // SAFETY: checked non-null just above.
                unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned()
            };
            anyhow::bail!(
                "cannot load {}: {msg} (build it with `cargo build --release -p rump-capi`, or pass --lib)",
                path.display()
            );
        }
        Ok(Lib { handle })
    }

    /// The address of exported function `name`, as type `F`.
    fn sym<F: Copy>(&self, name: &str) -> anyhow::Result<F> {
        assert_eq!(
            std::mem::size_of::<F>(),
            std::mem::size_of::<*mut libc::c_void>()
        );
        let c = CString::new(name)?;
        // SAFETY: handle is a live dlopen handle and c a valid string.
        let p = unsafe { libc::dlsym(self.handle, c.as_ptr()) };
        anyhow::ensure!(!p.is_null(), "librump has no {name}");
        // SAFETY: p is the address of the exported function `name`, whose
        // C signature is the function-pointer type F (from rump.h); F is
        // pointer-sized (checked above).
        Ok(unsafe { std::mem::transmute_copy::<*mut libc::c_void, F>(&p) })
    }
}

pub fn run(args: CapiArgs) -> anyhow::Result<()> {
    let path = match args.lib {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("no directory for this program")?
            .join("librump.so"),
    };
    let lib = Lib::open(&path)?;
    let init: InitFn = lib.sym("rump_init")?;
    let getpid: GetpidFn = lib.sym("rump_sys_getpid")?;
    let open: OpenFn = lib.sym("rump_sys_open")?;
    let fstat: FstatFn = lib.sym("rump_sys_fstat")?;
    let close: CloseFn = lib.sym("rump_sys_close")?;
    let write: WriteFn = lib.sym("rump_sys_write")?;
    // SAFETY: the functions are called with the arguments rump.h
    // documents: valid NUL-terminated paths and a writable struct stat.
    unsafe {
        anyhow::ensure!(init() == 0, "rump_init failed");
        let fd = open(c"/file".as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
        anyhow::ensure!(fd >= 0, "rump_sys_open failed");
        anyhow::ensure!(write(fd, b"x".as_ptr().cast(), 1) == 1);
        close(fd);
    }

    let kernel = rump::Kernel::boot()?;
    let p = kernel.process()?;
    rump::fs::write(&p, "/file", b"x")?;

    let n = args.iterations.max(1);
    let (mut c_pid, mut r_pid, mut c_ofc, mut r_ofc) = (vec![], vec![], vec![], vec![]);
    let ofc_n = (n / 10).max(1);
    for _ in 0..args.rounds.max(1) {
        let t = Instant::now();
        for _ in 0..n {
            // SAFETY: rump_sys_getpid takes no arguments.
            std::hint::black_box(unsafe { getpid() });
        }
        c_pid.push(t.elapsed().as_nanos() as f64 / n as f64);

        let t = Instant::now();
        for _ in 0..n {
            std::hint::black_box(rump::sys::getpid(&p)?);
        }
        r_pid.push(t.elapsed().as_nanos() as f64 / n as f64);

        let t = Instant::now();
        for _ in 0..ofc_n {
            // SAFETY: a valid path, a writable stat, a descriptor we own.
            unsafe {
                let fd = open(c"/file".as_ptr(), libc::O_RDONLY, 0);
                let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
                fstat(fd, st.as_mut_ptr());
                std::hint::black_box(st);
                close(fd);
            }
        }
        c_ofc.push(t.elapsed().as_nanos() as f64 / ofc_n as f64);

        let t = Instant::now();
        for _ in 0..ofc_n {
            let fd = rump::sys::open(&p, b"/file", o::RDONLY, 0)?;
            std::hint::black_box(rump::sys::fstat(&p, fd)?);
            rump::sys::close(&p, fd)?;
        }
        r_ofc.push(t.elapsed().as_nanos() as f64 / ofc_n as f64);
    }
    Metric {
        bench: "capi",
        metric: "capi_getpid_ns",
        value: median(&mut c_pid),
        unit: Unit::Ns,
        baseline: Some(("Rust API", median(&mut r_pid))),
    }
    .print();
    Metric {
        bench: "capi",
        metric: "capi_open_fstat_close_ns",
        value: median(&mut c_ofc),
        unit: Unit::Ns,
        baseline: Some(("Rust API", median(&mut r_ofc))),
    }
    .print();
    kernel.halt();
    Ok(())
}
