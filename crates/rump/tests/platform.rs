//! What a kernel asks of its platform: a tmpfs-only kernel creates no
//! thread, and every thread a kernel does create goes through the
//! hypercall interface with a name.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rump::hyper::{self, CurrentContext, Errno, Hyper, MonoNs, Parker, ThreadHandle, Timespec};
use rump::{Kernel, PosixHyper};

/// The POSIX platform, counting the threads it is asked to start.
struct Counting {
    inner: PosixHyper,
    spawned: AtomicUsize,
    names: Mutex<Vec<String>>,
}

impl Hyper for Counting {
    fn version(&self) -> u32 {
        self.inner.version()
    }
    fn thread_spawn(
        &self,
        name: &str,
        body: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<Box<dyn ThreadHandle>, Errno> {
        self.spawned.fetch_add(1, Ordering::SeqCst);
        self.names.lock().unwrap().push(name.to_string());
        self.inner.thread_spawn(name, body)
    }
    fn current_parker(&self) -> Arc<dyn Parker> {
        self.inner.current_parker()
    }
    fn yield_now(&self) {
        self.inner.yield_now()
    }
    fn set_current(&self, ctx: Option<CurrentContext>) -> Option<CurrentContext> {
        self.inner.set_current(ctx)
    }
    fn current(&self) -> Option<CurrentContext> {
        self.inner.current()
    }
    fn clock_monotonic(&self) -> MonoNs {
        self.inner.clock_monotonic()
    }
    fn clock_wall(&self) -> Timespec {
        self.inner.clock_wall()
    }
    fn sleep_until(&self, deadline: MonoNs) {
        self.inner.sleep_until(deadline)
    }
    fn random_fill(&self, buf: &mut [u8]) {
        self.inner.random_fill(buf)
    }
    fn console_write(&self, bytes: &[u8]) {
        self.inner.console_write(bytes)
    }
    fn param(&self, name: &str) -> Option<String> {
        self.inner.param(name)
    }
    fn block_open(
        &self,
        name: &str,
        flags: hyper::BlockOpenFlags,
    ) -> Result<Box<dyn hyper::BlockIo>, Errno> {
        self.inner.block_open(name, flags)
    }
    fn panic(&self, msg: &str) -> ! {
        self.inner.panic(msg)
    }
    fn exit(&self, code: i32) -> ! {
        self.inner.exit(code)
    }
}

fn counting() -> Arc<Counting> {
    Arc::new(Counting {
        inner: PosixHyper::new(),
        spawned: AtomicUsize::new(0),
        names: Mutex::new(Vec::new()),
    })
}

#[test]
fn tmpfs_only_kernel_runs_no_thread() {
    let plat = counting();
    let k = Kernel::builder().platform(plat.clone()).boot().unwrap();
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
    assert_eq!(plat.spawned.load(Ordering::SeqCst), 0);
}

#[test]
fn kernel_threads_are_named_and_go_through_the_platform() {
    let plat = counting();
    let k = Kernel::builder().platform(plat.clone()).boot().unwrap();
    let raw = k.raw();
    raw.callouts().schedule(raw, raw.now(), || {}).unwrap();
    k.halt();
    assert_eq!(plat.spawned.load(Ordering::SeqCst), 1);
    assert_eq!(*plat.names.lock().unwrap(), ["callout"]);
}

#[test]
fn timestamps_come_from_the_platform_clock() {
    let plat = counting();
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
