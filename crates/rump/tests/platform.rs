//! What a kernel asks of its platform: a tmpfs-only kernel creates no
//! thread, and every thread a kernel does create goes through the
//! hypercall interface with a name.

use std::sync::{Arc, Mutex};

use rump::hyper::Hyper;
use rump::hyper_posix::observed::Observed;
use rump::Kernel;

/// The POSIX platform, recording the names of the threads it is asked to
/// start.
fn counting() -> (Arc<Observed>, Arc<Mutex<Vec<String>>>) {
    let names = Arc::new(Mutex::new(Vec::new()));
    let n = names.clone();
    let plat = Observed::new().on_spawn(move |name| n.lock().unwrap().push(name.to_string()));
    (Arc::new(plat), names)
}

#[test]
fn tmpfs_only_kernel_runs_no_thread() {
    let (plat, names) = counting();
    let k = Kernel::builder().platform(plat).boot().unwrap();
    let p = k.process().unwrap();
    rump::fs::create_dir_all(&p, "/a/b/c").unwrap();
    rump::fs::write(&p, "/a/b/c/f", vec![1u8; 100_000]).unwrap();
    let (r, w) = rump::sys::pipe2(&p, 0).unwrap();
    rump::sys::write(&p, w, b"x").unwrap();
    let mut b = [0u8; 1];
    rump::sys::read(&p, r, &mut b).unwrap();
    let child = p.rfork(rump::ForkFds::Copy).unwrap();
    rump::fs::remove_dir_all(&child, "/a").unwrap();
    k.halt();
    assert!(names.lock().unwrap().is_empty());
}

#[test]
fn kernel_threads_are_named_and_go_through_the_platform() {
    let (plat, names) = counting();
    let k = Kernel::builder().platform(plat).boot().unwrap();
    let raw = k.raw();
    raw.callouts().schedule(raw, raw.now(), || {}).unwrap();
    k.halt();
    assert_eq!(*names.lock().unwrap(), ["callout"]);
}

#[test]
fn timestamps_come_from_the_platform_clock() {
    let (plat, _) = counting();
    let k = Kernel::builder().platform(plat.clone()).boot().unwrap();
    let p = k.process().unwrap();
    let before = plat.clock_wall();
    rump::fs::write(&p, "/t", b"x").unwrap();
    let after = plat.clock_wall();
    let m = rump::fs::metadata(&p, "/t").unwrap().modified();
    assert!(
        before <= m && m <= after,
        "{before:?} <= {m:?} <= {after:?}"
    );
}
