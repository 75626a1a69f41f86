//! The image tools (fs-utils style): `rump ls|cat|cp|mkdir|rm|mv|ln|stat|
//! find|du|df|chmod|chown|touch|write IMAGE:PATH ...`.
//!
//! Each command boots an in-process kernel with the ext2 and FAT drivers,
//! registers the image as a block device (read-only unless the command
//! writes), detects the file-system type, mounts it on `/mnt` and works
//! through the system-call layer. `IMAGE@pN` names partition N of a disk
//! image with an MBR or GPT. No root and no host kernel driver are
//! involved. Output follows the coreutils counterparts; errors are
//! reported per argument as `rump CMD: MESSAGE` and make the exit status 1.
//!
//! Modules: [`session`] (image, kernel, mount), `cmds` (the commands),
//! `cp` (copying within and across the image boundary), `fmt` (modes,
//! dates, sizes).

mod cmds;
mod cp;
mod fmt;
mod session;

use clap::Subcommand;

/// The image tools.
#[derive(Subcommand)]
pub enum ImageCmd {
    /// List directory contents (IMAGE:PATH).
    Ls {
        /// Long listing.
        #[arg(short = 'l')]
        long: bool,
        /// Include entries starting with `.`.
        #[arg(short = 'a')]
        all: bool,
        /// List directories themselves, not their contents.
        #[arg(short = 'd')]
        directory: bool,
        /// List subdirectories recursively.
        #[arg(short = 'R')]
        recursive: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Print files (IMAGE:PATH) to standard output.
    Cat {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Copy files into, out of or within an image (IMAGE:PATH or host paths).
    Cp {
        /// Copy directories recursively.
        #[arg(short = 'r', short_alias = 'R', long = "recursive")]
        recursive: bool,
        /// Sources, then the destination.
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
    },
    /// Make directories (IMAGE:PATH).
    Mkdir {
        /// Make parents as needed; no error if existing.
        #[arg(short = 'p')]
        parents: bool,
        /// Permission bits (octal).
        #[arg(short = 'm', long = "mode")]
        mode: Option<String>,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove files or directories (IMAGE:PATH).
    Rm {
        /// Remove directories and their contents.
        #[arg(short = 'r', short_alias = 'R', long = "recursive")]
        recursive: bool,
        /// Ignore missing files.
        #[arg(short = 'f', long = "force")]
        force: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Rename or move within an image (IMAGE:SRC IMAGE:DST).
    Mv {
        #[arg(required = true, num_args = 2..)]
        paths: Vec<String>,
    },
    /// Make a hard link (IMAGE:TARGET IMAGE:LINK) or, with -s, a symbolic
    /// link (TEXT IMAGE:LINK).
    Ln {
        /// Make a symbolic link.
        #[arg(short = 's')]
        symbolic: bool,
        target: String,
        link: String,
    },
    /// Display file status (IMAGE:PATH).
    Stat {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Walk a tree (IMAGE:PATH) printing paths.
    Find {
        path: String,
        /// Only names matching this shell pattern (`*`, `?`).
        #[arg(long = "name")]
        name: Option<String>,
        /// Only this type: f, d, l, p, c, b, s.
        #[arg(long = "type")]
        kind: Option<char>,
    },
    /// Disk usage in KiB (IMAGE:PATH).
    Du {
        /// Only a total for each argument.
        #[arg(short = 's')]
        summarize: bool,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// File-system space (IMAGE or IMAGE:PATH).
    #[command(disable_help_flag = true)]
    Df {
        /// Sizes in powers of 1024 (K, M, G).
        #[arg(short = 'h', long = "human-readable")]
        human: bool,
        /// Print help.
        #[arg(long = "help", action = clap::ArgAction::Help)]
        help: Option<bool>,
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Change permission bits (MODE, IMAGE:PATH).
    Chmod {
        /// Octal (`644`) or symbolic (`u+x,go-w`) mode.
        mode: String,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Change owner (numeric UID[:GID], IMAGE:PATH).
    Chown {
        owner: String,
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Update timestamps, creating missing files (IMAGE:PATH).
    Touch {
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Write standard input to a file (IMAGE:PATH), replacing it.
    Write {
        /// Append instead of replacing.
        #[arg(short = 'a')]
        append: bool,
        path: String,
    },
}

pub fn run(cmd: ImageCmd) -> anyhow::Result<()> {
    let code = cmds::run(cmd);
    if code != 0 {
        std::process::exit(code);
    }
    Ok(())
}
