//! Kernel-base behaviour that the facade does not reach directly:
//! callouts, components and stages, thread binding, sysctl, version check.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::{Errno, Hyper};
use hyper_posix::observed::Observed;
use hyper_posix::PosixHyper;
use kern::sysctl::SysctlValue;
use kern::{Component, Cred, Kernel, KernelConfig, Lwp, Stage};

fn platform() -> Arc<dyn Hyper> {
    Arc::new(PosixHyper::new())
}

fn boot(components: Vec<Arc<dyn Component>>) -> Kernel {
    Kernel::boot(
        platform(),
        KernelConfig {
            components,
            ..KernelConfig::default()
        },
    )
    .unwrap()
}

struct Recorder {
    name: &'static str,
    stage: Stage,
    log: Arc<Mutex<Vec<String>>>,
    fail: bool,
}

impl Component for Recorder {
    fn name(&self) -> &'static str {
        self.name
    }
    fn stage(&self) -> Stage {
        self.stage
    }
    fn init(&self, _k: &Kernel) -> Result<(), Errno> {
        self.log.lock().unwrap().push(format!("init {}", self.name));
        if self.fail {
            Err(Errno::ENODEV)
        } else {
            Ok(())
        }
    }
    fn halt(&self, _k: &Kernel) {
        self.log.lock().unwrap().push(format!("halt {}", self.name));
    }
}

fn recorder(
    name: &'static str,
    stage: Stage,
    log: &Arc<Mutex<Vec<String>>>,
    fail: bool,
) -> Arc<dyn Component> {
    Arc::new(Recorder {
        name,
        stage,
        log: log.clone(),
        fail,
    })
}

#[test]
fn components_init_in_stage_order_and_halt_in_reverse() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let k = boot(vec![
        recorder("sc", Stage::Syscall, &log, false),
        recorder("fs", Stage::Vfs, &log, false),
        recorder("dev", Stage::Dev, &log, false),
        recorder("net", Stage::Net, &log, false),
    ]);
    k.halt();
    assert_eq!(
        *log.lock().unwrap(),
        [
            "init dev", "init net", "init fs", "init sc", "halt sc", "halt fs", "halt net",
            "halt dev"
        ]
    );
}

#[test]
fn failing_component_fails_boot_and_halts_the_rest() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let r = Kernel::boot(
        platform(),
        KernelConfig {
            components: vec![
                recorder("dev", Stage::Dev, &log, false),
                recorder("bad", Stage::Net, &log, true),
            ],
            ..KernelConfig::default()
        },
    );
    assert_eq!(r.err(), Some(Errno::ENODEV));
    assert_eq!(*log.lock().unwrap(), ["init dev", "init bad", "halt dev"]);
}

#[test]
fn root_fs_of_unknown_type_fails_boot() {
    let r = Kernel::boot(
        platform(),
        KernelConfig {
            root_fs: Some("nosuchfs".into()),
            ..KernelConfig::default()
        },
    );
    assert_eq!(r.err(), Some(Errno::ENODEV));
}

#[test]
fn platform_of_another_version_is_refused() {
    let newer = Observed::new().with_version(hyper::HYPER_VERSION + 1);
    let r = Kernel::boot(Arc::new(newer), KernelConfig::default());
    assert_eq!(r.err(), Some(Errno::ENOSYS));
}

#[test]
fn callouts_fire_in_order_and_cancel() {
    let k = boot(vec![]);
    assert!(
        !k.callouts().has_thread(),
        "no thread before the first timer"
    );
    let fired = Arc::new(Mutex::new(Vec::new()));
    let now = k.now();
    let mut ids = Vec::new();
    for (i, ms) in [30u64, 10, 20].iter().enumerate() {
        let f = fired.clone();
        ids.push(
            k.callouts()
                .schedule(&k, now + ms * 1_000_000, move || f.lock().unwrap().push(i))
                .unwrap(),
        );
    }
    let f = fired.clone();
    let cancelled = k
        .callouts()
        .schedule(&k, now + 15_000_000, move || f.lock().unwrap().push(99))
        .unwrap();
    assert!(k.callouts().cancel(cancelled));
    assert!(!k.callouts().cancel(cancelled));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fired.lock().unwrap().len() < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(*fired.lock().unwrap(), [1, 2, 0]);
    assert!(k.callouts().has_thread());
    k.halt();
    assert!(!k.callouts().has_thread(), "halt joins the callout thread");
}

#[test]
fn halt_drops_pending_callouts_without_running_them() {
    let k = boot(vec![]);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    k.callouts()
        .schedule(&k, k.now() + 3_600_000_000_000, move || {
            r.fetch_add(1, Ordering::SeqCst);
        })
        .unwrap();
    k.halt();
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    assert_eq!(k.callouts().pending(), 0);
    assert_eq!(
        k.callouts().schedule(&k, 0, || {}).err(),
        Some(Errno::ESHUTDOWN)
    );
}

#[test]
fn sleep_is_cut_short_by_halt() {
    let k = boot(vec![]);
    let k2 = k.clone();
    let t = std::thread::spawn(move || k2.sleep_ns(3_600_000_000_000));
    std::thread::sleep(Duration::from_millis(20));
    k.halt();
    assert_eq!(t.join().unwrap(), Err(Errno::ESHUTDOWN));
}

#[test]
fn threads_bind_to_lwps() {
    let k = boot(vec![]);
    let p = k.new_process(Cred::root());
    // A kernel without a root file system still has processes.
    let p = p.unwrap();
    let l1 = p.new_lwp();
    let l2 = p.new_lwp();
    assert_ne!(l1.lid, l2.lid);
    let hyper = k.hyper().clone();
    assert!(Lwp::current(&*hyper).is_none());
    l1.bind_current();
    assert_eq!(Lwp::current(&*hyper).unwrap().lid, l1.lid);
    let h2 = hyper.clone();
    let l2c = l2.clone();
    std::thread::spawn(move || {
        assert!(Lwp::current(&*h2).is_none(), "binding is per host thread");
        l2c.bind_current();
        assert_eq!(Lwp::current(&*h2).unwrap().lid, l2c.lid);
    })
    .join()
    .unwrap();
    assert_eq!(Lwp::unbind_current(&*hyper).unwrap().lid, l1.lid);
    assert!(Lwp::current(&*hyper).is_none());
    assert_eq!(p.dirs().err(), Some(Errno::ENOENT));
}

#[test]
fn sysctl_nodes_and_boot_params() {
    let k = Kernel::boot(
        platform(),
        KernelConfig {
            params: vec![("kern.hostname".into(), "box".into())],
            ..KernelConfig::default()
        },
    )
    .unwrap();
    let sc = k.sysctl();
    assert_eq!(sc.get("kern.hostname"), Ok(SysctlValue::Str("box".into())));
    assert_eq!(
        sc.get("kern.ostype"),
        Ok(SysctlValue::Str("rump-rs".into()))
    );
    assert_eq!(
        sc.set("kern.ostype", SysctlValue::Str("x".into())),
        Err(Errno::EPERM)
    );
    assert_eq!(
        sc.set("kern.hostname", SysctlValue::Int(3)),
        Err(Errno::EINVAL)
    );
    assert_eq!(sc.get("no.such"), Err(Errno::ENOENT));
    sc.add_int("net.inet.ip.forwarding", 0, true, Some((0, 1)));
    assert_eq!(
        sc.set("net.inet.ip.forwarding", SysctlValue::Int(2)),
        Err(Errno::EINVAL)
    );
    sc.set("net.inet.ip.forwarding", SysctlValue::Int(1))
        .unwrap();
    assert_eq!(sc.get_int("net.inet.ip.forwarding"), 1);
    assert_eq!(sc.list("kern.").len(), 6);
    let bad = Kernel::boot(
        platform(),
        KernelConfig {
            params: vec![("kern.maxfiles".into(), "lots".into())],
            ..KernelConfig::default()
        },
    );
    assert_eq!(bad.err(), Some(Errno::EINVAL));
}
