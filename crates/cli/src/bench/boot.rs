//! `rump bench boot`: how long a tmpfs-only kernel takes to boot and halt,
//! and how much memory an idle kernel holds with many alive at once.
//!
//! Memory is measured two ways: live heap bytes (a counting allocator in
//! this binary, see `alloc_count`) and resident set growth from
//! `/proc/self/statm`, both divided by the number of kernels. Each idle
//! kernel has a tmpfs root and one process, as a test would use it.

use std::time::Instant;

use super::report::{median, Metric, Unit};
use crate::alloc_count;

pub fn run(iterations: usize, kernels: usize) -> anyhow::Result<()> {
    // Warm up the allocator and code paths.
    for _ in 0..1000 {
        let k = rump::Kernel::boot()?;
        k.halt();
    }
    let batch = 100;
    let mut samples = Vec::new();
    for _ in 0..iterations.div_ceil(batch) {
        let t = Instant::now();
        for _ in 0..batch {
            let k = rump::Kernel::boot()?;
            k.halt();
            drop(k);
        }
        samples.push(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    Metric {
        bench: "boot",
        metric: "boot_halt_ns_median",
        value: median(&mut samples),
        unit: Unit::Ns,
        baseline: None,
    }
    .print();

    let rss0 = rss_bytes();
    let heap0 = alloc_count::live_bytes();
    let mut alive = Vec::with_capacity(kernels);
    for _ in 0..kernels {
        let k = rump::Kernel::boot()?;
        let p = k.process()?;
        alive.push((k, p));
    }
    let heap = alloc_count::live_bytes().saturating_sub(heap0)
        - kernels * std::mem::size_of::<(rump::Kernel, rump::Process)>();
    let rss = rss_bytes().saturating_sub(rss0);
    Metric {
        bench: "boot",
        metric: "idle_kernel_bytes",
        value: heap as f64 / kernels as f64,
        unit: Unit::Bytes,
        baseline: None,
    }
    .print();
    Metric {
        bench: "boot",
        metric: "idle_kernel_rss_bytes",
        value: rss as f64 / kernels as f64,
        unit: Unit::Bytes,
        baseline: None,
    }
    .print();
    for (k, _) in &alive {
        k.halt();
    }
    Ok(())
}

fn rss_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(4096) as usize
}
