//! `rump`: one binary for everything around rump-rs kernels.
//!
//! Subcommands live in their own modules: `demo` (boots a kernel and shows
//! what it can do), `bench` (benchmarks printing JSON lines, one per
//! metric, with the host baseline measured in the same run).

mod alloc_count;
mod bench;
mod demo;
mod image;
mod newfs;

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
    #[command(flatten)]
    Image(image::ImageCmd),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Demo => demo::run(),
        Cmd::Bench { which } => bench::run(which),
        Cmd::Newfs(args) => newfs::run(args),
        Cmd::Image(cmd) => image::run(cmd),
    };
    if let Err(e) = result {
        eprintln!("rump: {e:#}");
        std::process::exit(1);
    }
}
