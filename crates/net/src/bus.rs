//! The in-process bus: an Ethernet segment between kernels of one
//! process, for tests and benchmarks that wire many kernels together.
//!
//! A frame sent on the bus is handed, in the sending thread, to the stack
//! of the port whose MAC address it is for (or to every other port, for
//! broadcasts and unknown addresses) — no copy for unicast, no thread
//! hand-off. A [`Pump`] per bus serialises deliveries without recursion:
//! the answer a delivery provokes is queued and delivered by the same loop.
//! Frames cannot be corrupted in memory, so bus interfaces skip checksums
//! (see `IfKind::offloads_checksums`).
//!
//! Buses are found by name in a [`BusRegistry`], which the kernels that
//! should share buses share (the `rump` facade keeps one per process; the
//! kernel crates hold no global state).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use portable_atomic::AtomicU64;

use kern::sync::{SpinMutex, SpinRwLock};
use kern::Errno;

use crate::iface::Link;
use crate::pump::Pump;
use crate::stack::Stack;

/// Named in-process buses.
#[derive(Default)]
pub struct BusRegistry {
    buses: SpinMutex<BTreeMap<String, Weak<Bus>>>,
}

impl BusRegistry {
    /// An empty registry.
    pub fn new() -> Arc<BusRegistry> {
        Arc::new(BusRegistry::default())
    }

    fn get(&self, name: &str) -> Arc<Bus> {
        let mut m = self.buses.lock();
        if let Some(b) = m.get(name).and_then(|w| w.upgrade()) {
            return b;
        }
        m.retain(|_, w| w.strong_count() > 0);
        let b = Arc::new(Bus {
            ports: SpinRwLock::new(Vec::new()),
            pump: Pump::new(),
            next_id: AtomicU64::new(1),
        });
        m.insert(String::from(name), Arc::downgrade(&b));
        b
    }

    /// Number of ports attached to bus `name` (0 if there is no such bus).
    pub fn ports(&self, name: &str) -> usize {
        self.buses
            .lock()
            .get(name)
            .and_then(|w| w.upgrade())
            .map_or(0, |b| b.ports.read().len())
    }
}

/// One bus.
pub(crate) struct Bus {
    ports: SpinRwLock<Vec<Port>>,
    pump: Pump<(u64, Vec<Vec<u8>>)>,
    next_id: AtomicU64,
}

struct Port {
    id: u64,
    stack: Weak<Stack>,
    ifindex: usize,
    mac: [u8; 6],
}

/// An interface's attachment to a bus.
pub(crate) struct BusPort {
    bus: Arc<Bus>,
    id: u64,
}

/// Attaches interface `ifindex` of `stack` to the bus `name`.
pub(crate) fn attach(
    reg: &BusRegistry,
    name: &str,
    stack: Weak<Stack>,
    ifindex: usize,
    mac: [u8; 6],
) -> Result<Arc<dyn Link>, Errno> {
    if name.is_empty() || name.len() > 255 {
        return Err(Errno::EINVAL);
    }
    let bus = reg.get(name);
    let id = bus.next_id.fetch_add(1, Ordering::Relaxed);
    bus.ports.write().push(Port {
        id,
        stack,
        ifindex,
        mac,
    });
    Ok(Arc::new(BusPort { bus, id }))
}

impl Bus {
    /// Delivers a burst from port `from`: each frame to the port its
    /// destination MAC names, or to every other port (broadcast, unknown);
    /// the frames for one port go to its stack as one batch, in order.
    fn deliver(&self, from: u64, frames: Vec<Vec<u8>>) {
        // Targets are looked up first: no bus lock is held while a stack
        // processes frames.
        let mut batches: Vec<(Weak<Stack>, usize, Vec<Vec<u8>>)> = Vec::new();
        {
            let ports = self.ports.read();
            for frame in frames {
                let Some(dst) = frame.get(0..6) else {
                    continue;
                };
                let unicast = dst[0] & 1 == 0;
                let exact = if unicast {
                    ports.iter().position(|p| p.id != from && p.mac == dst)
                } else {
                    None
                };
                let targets: Vec<usize> = match exact {
                    Some(i) => alloc::vec![i],
                    None => (0..ports.len()).filter(|&i| ports[i].id != from).collect(),
                };
                let n = targets.len();
                let mut frame = Some(frame);
                for (k, i) in targets.into_iter().enumerate() {
                    let p = &ports[i];
                    let f = if k + 1 == n {
                        match frame.take() {
                            Some(f) => f,
                            None => continue,
                        }
                    } else {
                        frame.as_deref().unwrap_or(&[]).to_vec()
                    };
                    match batches
                        .iter_mut()
                        .find(|b| b.1 == p.ifindex && Weak::ptr_eq(&b.0, &p.stack))
                    {
                        Some(b) => b.2.push(f),
                        None => batches.push((p.stack.clone(), p.ifindex, alloc::vec![f])),
                    }
                }
            }
        }
        for (stack, ifindex, frames) in batches {
            if let Some(s) = stack.upgrade() {
                s.input_batch(ifindex, frames);
            }
        }
    }
}

impl Drop for BusPort {
    fn drop(&mut self) {
        self.detach();
    }
}

impl Link for BusPort {
    fn transmit(&self, frame: Vec<u8>) -> Option<Vec<u8>> {
        self.transmit_batch(alloc::vec![frame]);
        None
    }

    fn transmit_batch(&self, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let bus = &self.bus;
        bus.pump
            .push((self.id, frames), |(from, f)| bus.deliver(from, f));
        Vec::new()
    }

    fn detach(&self) {
        self.bus.ports.write().retain(|p| p.id != self.id);
    }

    fn set_mac(&self, mac: [u8; 6]) {
        for p in self.bus.ports.write().iter_mut() {
            if p.id == self.id {
                p.mac = mac;
            }
        }
    }
}
