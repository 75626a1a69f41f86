//! `rump`: one binary for everything around rump-rs kernels.
//!
//! Subcommands live in their own modules: `demo` (boots a kernel and shows
//! what it can do), `bench` (benchmarks printing JSON lines, one per
//! metric, with the host baseline measured in the same run).

mod alloc_count;
mod bench;
mod demo;
mod fuse;
mod image;
mod newfs;
mod run;
mod server;
mod unikernel;

#[global_allocator]
static ALLOC: alloc_count::Counting = alloc_count::Counting;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "rump", version, about = "rump-rs: a rump kernel in Rust")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Boot a kernel, exercise what exists, and report what it did and how long it took.
    Demo,
    /// Run a benchmark and print one JSON object per metric.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// Create an ext2 file system on an image file or block device.
    Newfs(newfs::NewfsArgs),
    /// Mount a disk image on the host through the kernel's own driver (FUSE).
    Fuse(fuse::FuseArgs),
    #[command(flatten)]
    Image(image::ImageCmd),
    /// Serve a kernel to remote clients (unix:///path or tcp://host:port).
    Server(server::ServerArgs),
    /// Run an unmodified program with its calls under /rump served by a rump kernel.
    Run(run::RunArgs),
    /// Ask a server ($RUMP_SERVER or --server) to shut down cleanly.
    Halt(server::HaltArgs),
    #[command(flatten)]
    Tools(rump_cli::tools::ToolCmd),
    /// Boot unikernels (an application and its kernel) on KVM.
    Unikernel {
        #[command(subcommand)]
        cmd: unikernel::UnikernelCmd,
    },
}

fn main() {
    keep_large_buffers();
    let cli = Cli::parse_from(find_compat(std::env::args_os()));
    let result = match cli.cmd {
        Cmd::Demo => demo::run(),
        Cmd::Bench { which } => bench::run(which),
        Cmd::Newfs(args) => newfs::run(args),
        Cmd::Fuse(args) => fuse::run(args),
        Cmd::Image(cmd) => image::run(cmd),
        Cmd::Server(args) => server::run(args),
        Cmd::Halt(args) => server::halt(args),
        Cmd::Run(args) => match run::run(args) {
            Ok(code) => std::process::exit(code),
            Err(e) => Err(e),
        },
        Cmd::Tools(cmd) => std::process::exit(rump_cli::tools::main(cmd)),
        Cmd::Unikernel { cmd } => unikernel::run(cmd),
    };
    if let Err(e) = result {
        eprintln!("rump: {e:#}");
        std::process::exit(1);
    }
}

/// `find` takes its predicates with one dash (`-name`, `-type`), which
/// clap reads as short-option clusters: spell them the long way.
fn find_compat(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.collect();
    if args.get(1).is_some_and(|a| a == "find") {
        for a in args.iter_mut().skip(2) {
            if a == "-name" || a == "-type" {
                let mut long = std::ffi::OsString::from("-");
                long.push(&*a);
                *a = long;
            }
        }
    }
    args
}

/// The tools allocate and free buffers of a MiB and more per call (remote
/// reads and writes, image copies). glibc would hand each back to the
/// system and fault it in again next time, which costs more than the copy
/// (three times the whole 1 MiB remote read under shadow paging): keep
/// them in the heap for reuse instead.
fn keep_large_buffers() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt(3) only changes allocator parameters; called first
    // thing, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 128 << 20);
    }
}
