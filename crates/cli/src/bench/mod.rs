//! `rump bench NAME`: benchmarks that print one JSON object per metric
//! (DESIGN.md, "Benchmarks"). Each measures the host baseline in the same
//! run where one exists and reports `speedup` (above 1: we win).

mod boot;
mod report;
mod syscall;

use clap::Subcommand;

/// The benchmarks.
#[derive(Subcommand)]
pub enum Which {
    /// Boot + halt of a tmpfs-only kernel; memory per idle kernel.
    Boot {
        /// Boot/halt cycles to time.
        #[arg(long, default_value_t = 20_000)]
        iterations: usize,
        /// Kernels kept alive at once for the memory figure.
        #[arg(long, default_value_t = 10_000)]
        kernels: usize,
    },
    /// open+fstat+close on tmpfs, in-process vs the host's tmpfs.
    Syscall {
        /// Rounds per measurement.
        #[arg(long, default_value_t = 200_000)]
        iterations: usize,
    },
}

pub fn run(which: Which) -> anyhow::Result<()> {
    match which {
        Which::Boot {
            iterations,
            kernels,
        } => boot::run(iterations, kernels),
        Which::Syscall { iterations } => syscall::run(iterations),
    }
}
