//! `rump bench NAME`: benchmarks that print one JSON object per metric
//! (DESIGN.md, "Benchmarks"). Each measures the host baseline in the same
//! run where one exists and reports `speedup` (above 1: we win).

mod boot;
mod capi;
mod common;
mod ext2;
mod fuse;
mod remote;
mod report;
mod scale;
mod syscall;
mod tcp;
mod unikernel;

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
    /// ext2 sequential I/O and small files, in-process vs Linux's driver
    /// on a loop mount of an identical image.
    Ext2 {
        /// Size of the sequential file in MiB.
        #[arg(long, default_value_t = 512)]
        file_mb: usize,
        /// Number of small files.
        #[arg(long, default_value_t = 10_000)]
        small_files: usize,
        /// Size of each image in MiB.
        #[arg(long, default_value_t = 1024)]
        image_mb: u64,
        /// Directory for the images (default: $TMPDIR or /var/tmp).
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Image mounted on the host: `rump fuse` vs fuse2fs vs Linux's ext2
    /// on a loop mount (sequential I/O, small files, creates).
    Fuse(fuse::FuseArgs),
    /// TCP through rump kernels (loopback, in-process bus, shmif) vs the
    /// host's loopback TCP.
    Tcp(tcp::TcpArgs),
    /// Create/unlink throughput with 1..64 threads (one rump process
    /// each, one kernel) on tmpfs and ext2, and cold ext2 reads, vs the
    /// host's tmpfs and Linux's ext2 on a loop mount.
    Scale(scale::ScaleArgs),
    /// Remote calls to a `rump server` (unix socket, TCP) vs the bare
    /// socket ping-pong of each transport.
    Remote(remote::RemoteArgs),
    /// Boots of the ext2 unikernel on KVM: setup, guest time and total
    /// to the application's main, runner RSS, guest memory, image size.
    Unikernel(unikernel::UnikernelArgs),
    /// What the C ABI adds: rump_sys_getpid and open+fstat+close through
    /// librump.so vs the Rust API, in one run.
    Capi(capi::CapiArgs),
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
        Which::Tcp(args) => tcp::run(args),
        Which::Fuse(args) => fuse::run(args),
        Which::Scale(args) => scale::run(args),
        Which::Remote(args) => remote::run(args),
        Which::Unikernel(args) => unikernel::run(args),
        Which::Capi(args) => capi::run(args),
        Which::Ext2 {
            file_mb,
            small_files,
            image_mb,
            dir,
        } => ext2::run(file_mb, small_files, image_mb, dir),
    }
}
