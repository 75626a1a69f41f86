//! Kernels in one process share nothing: files, mounts, processes,
//! descriptors, parameters and halting are per kernel. Many kernels can
//! live at once, and a kernel that is dropped or halted lets go of
//! everything.

mod common;

use common::{boot, get, names, put};
use rump::kern::sysctl::SysctlValue;
use rump::sys::{self, consts::o};
use rump::{Errno, Kernel};

#[test]
fn a_file_created_in_one_kernel_is_absent_in_another() {
    let (_k1, p1) = boot();
    let (_k2, p2) = boot();
    put(&p1, b"/only-in-one", b"1");
    assert_eq!(get(&p1, b"/only-in-one").unwrap(), b"1");
    assert_eq!(sys::stat(&p2, b"/only-in-one"), Err(Errno::ENOENT));
    assert_eq!(names(&p2, b"/").unwrap(), Vec::<Vec<u8>>::new());
    // Same name, different files.
    put(&p2, b"/only-in-one", b"2");
    assert_eq!(get(&p1, b"/only-in-one").unwrap(), b"1");
}

#[test]
fn mounts_are_per_kernel() {
    let (_k1, p1) = boot();
    let (_k2, p2) = boot();
    for p in [&p1, &p2] {
        sys::mkdir(p, b"/mnt", 0o755).unwrap();
    }
    sys::mount(&p1, b"tmpfs", b"/mnt", b"tmpfs", 0, b"").unwrap();
    assert_eq!(sys::mounts(&p1).unwrap().len(), 2);
    assert_eq!(sys::mounts(&p2).unwrap().len(), 1);
    assert_eq!(sys::umount2(&p2, b"/mnt", 0), Err(Errno::EINVAL));
    assert_ne!(
        sys::stat(&p1, b"/mnt").unwrap().dev,
        sys::stat(&p1, b"/").unwrap().dev
    );
    assert_eq!(
        sys::stat(&p2, b"/mnt").unwrap().dev,
        sys::stat(&p2, b"/").unwrap().dev
    );
}

#[test]
fn pids_and_descriptors_are_per_kernel() {
    let (k1, p1) = boot();
    let (k2, p2) = boot();
    // Each kernel numbers its own processes.
    assert_eq!(p1.pid(), p2.pid());
    let q1 = k1.process().unwrap();
    assert_eq!(k1.raw().process_count(), 2);
    assert_eq!(k2.raw().process_count(), 1);
    drop(q1);
    assert_eq!(k1.raw().process_count(), 1);
    // Descriptor 0 in one kernel is not descriptor 0 in the other.
    put(&p1, b"/f", b"");
    let fd = sys::open(&p1, b"/f", o::RDONLY, 0).unwrap();
    assert_eq!(sys::fstat(&p2, fd), Err(Errno::EBADF));
    assert_eq!(sys::close(&p2, fd), Err(Errno::EBADF));
    assert!(sys::fstat(&p1, fd).is_ok());
}

#[test]
fn parameters_and_credentials_are_per_kernel() {
    let k1 = Kernel::builder().hostname("one").boot().unwrap();
    let k2 = Kernel::builder().hostname("two").boot().unwrap();
    let (p1, p2) = (k1.process().unwrap(), k2.process().unwrap());
    sys::sethostname(&p1, b"changed").unwrap();
    assert_eq!(sys::uname(&p1).unwrap().nodename, "changed");
    assert_eq!(
        sys::sysctl_get(&p2, "kern.hostname"),
        Ok(SysctlValue::Str("two".into()))
    );
    sys::setuid(&p1, 1000).unwrap();
    sys::umask(&p1, 0o077).unwrap();
    assert_eq!(sys::getuid(&p2), Ok(0));
    assert_eq!(sys::umask(&p2, 0o022), Ok(0o022));
}

#[test]
fn halting_one_kernel_leaves_the_other_running() {
    let (k1, p1) = boot();
    let (_k2, p2) = boot();
    let (r1, w1) = sys::pipe2(&p1, 0).unwrap();
    let (r2, w2) = sys::pipe2(&p2, 0).unwrap();
    k1.halt();
    assert_eq!(sys::getpid(&p1), Err(Errno::ESHUTDOWN));
    assert_eq!(sys::write(&p1, w1, b"x"), Err(Errno::ESHUTDOWN));
    let _ = r1;
    sys::write(&p2, w2, b"x").unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(sys::read(&p2, r2, &mut buf), Ok(1));
    put(&p2, b"/still", b"alive");
    assert_eq!(get(&p2, b"/still").unwrap(), b"alive");
}

#[test]
fn a_thousand_kernels_boot_and_halt_one_after_another() {
    for i in 0..1000 {
        let (k, p) = boot();
        let name = format!("/k{i}");
        put(&p, name.as_bytes(), name.as_bytes());
        assert_eq!(get(&p, name.as_bytes()).unwrap(), name.as_bytes());
        assert_eq!(names(&p, b"/").unwrap().len(), 1);
        k.halt();
        assert_eq!(sys::stat(&p, name.as_bytes()), Err(Errno::ESHUTDOWN));
    }
}

#[test]
fn a_thousand_kernels_alive_at_once_then_halted() {
    let kernels: Vec<_> = (0..1000)
        .map(|i| {
            let (k, p) = boot();
            put(&p, format!("/k{i}").as_bytes(), b"");
            (k, p)
        })
        .collect();
    // Each sees its own file and only that.
    for (i, (_, p)) in kernels.iter().enumerate() {
        assert_eq!(
            names(p, b"/").unwrap(),
            vec![format!("k{i}").into_bytes()],
            "kernel {i}"
        );
    }
    let weak: Vec<_> = kernels.iter().map(|(k, _)| k.raw().downgrade()).collect();
    for (k, _) in &kernels {
        k.halt();
    }
    for (_, p) in &kernels {
        assert_eq!(sys::getpid(p), Err(Errno::ESHUTDOWN));
    }
    drop(kernels);
    // Nothing keeps a halted and dropped kernel alive.
    assert!(weak.iter().all(|w| w.upgrade().is_none()));
}

#[test]
fn dropping_a_kernel_halts_it() {
    let (k, p) = boot();
    put(&p, b"/f", b"");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    let weak = k.raw().downgrade();
    drop(k);
    // The process still refers to the kernel, but it is halted.
    let kernel = weak.upgrade().expect("the process keeps it allocated");
    assert!(kernel.is_halted());
    drop(kernel);
    assert_eq!(sys::getpid(&p), Err(Errno::ESHUTDOWN));
    assert_eq!(sys::fstat(&p, fd), Err(Errno::ESHUTDOWN));
    assert_eq!(sys::open(&p, b"/f", o::RDONLY, 0), Err(Errno::ESHUTDOWN));
    drop(p);
    assert!(weak.upgrade().is_none(), "the kernel was freed");
}

#[test]
fn halt_is_idempotent_and_new_processes_are_refused() {
    let (k, _p) = boot();
    k.halt();
    k.halt();
    assert!(k.raw().is_halted());
    assert_eq!(k.process().err(), Some(Errno::ESHUTDOWN));
}

#[test]
fn kernels_on_many_threads_stay_separate() {
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                for i in 0..50 {
                    let (k, p) = boot();
                    let name = format!("/t{t}-{i}");
                    put(&p, name.as_bytes(), name.as_bytes());
                    assert_eq!(names(&p, b"/").unwrap().len(), 1);
                    assert_eq!(get(&p, name.as_bytes()).unwrap(), name.as_bytes());
                    drop(k);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}
