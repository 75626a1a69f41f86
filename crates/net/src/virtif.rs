//! virt: an interface on a host tap device (after NetBSD's virt(4)), so a
//! rump kernel and the host kernel exchange Ethernet frames. Frames go out
//! with `FrameIo::send` in the sending thread and come in on a kernel
//! thread blocked in `FrameIo::recv`. The tap's name is the link string:
//! `tap0`, or `netns:NAME:tap0` for a tap in another network namespace
//! (see `Hyper::tap_open`). Frames leaving the process carry real
//! checksums.

use alloc::boxed::Box;
use alloc::format;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use hyper::{FrameIo, ThreadHandle};
use kern::sync::SpinMutex;
use kern::Errno;

use crate::iface::Link;
use crate::stack::Stack;

struct VirtLink {
    io: Arc<dyn FrameIo>,
    thread: SpinMutex<Option<Box<dyn ThreadHandle>>>,
}

/// Opens tap `spec` for interface `ifindex` and starts its reader.
pub(crate) fn attach(
    stack: &Stack,
    spec: &str,
    ifindex: usize,
    ifname: &str,
) -> Result<Arc<dyn Link>, Errno> {
    let k = stack.kernel.upgrade().ok_or(Errno::ESHUTDOWN)?;
    kern::hostpolicy::check(&k, kern::hostpolicy::HostAccess::Tap, spec)?;
    let io: Arc<dyn FrameIo> = Arc::from(stack.hyper.tap_open(spec)?);
    let weak = stack.this.clone();
    let io2 = io.clone();
    let handle = k.spawn_thread(
        &format!("{ifname}.rx"),
        Box::new(move || reader(&*io2, &weak, ifindex)),
    )?;
    Ok(Arc::new(VirtLink {
        io,
        thread: SpinMutex::new(Some(handle)),
    }))
}

fn reader(io: &dyn FrameIo, stack: &Weak<Stack>, ifindex: usize) {
    let mut buf = alloc::vec![0u8; 65536 + 64];
    loop {
        match io.recv(&mut buf, None) {
            Ok(n) => {
                let Some(s) = stack.upgrade() else {
                    return;
                };
                let mut f = s.pool.get(n);
                f.copy_from_slice(&buf[..n]);
                s.input(ifindex, f);
            }
            Err(Errno::ESHUTDOWN) => return,
            Err(Errno::EINTR) | Err(Errno::EAGAIN) => {}
            Err(_) => return,
        }
    }
}

impl Link for VirtLink {
    fn transmit(&self, frame: Vec<u8>) -> Option<Vec<u8>> {
        let _ = self.io.send(&frame);
        Some(frame)
    }

    fn detach(&self) {
        self.io.close();
        let t = self.thread.lock().take();
        if let Some(t) = t {
            let _ = t.join();
        }
    }
}

impl Drop for VirtLink {
    fn drop(&mut self) {
        self.detach();
    }
}
