//! `rump newfs`: create an ext2 file system (or, with `-t msdos`,
//! `fat12`, `fat16` or `fat32`, a FAT volume) on an image file (created
//! or resized to `--size`) or on an existing file or block device,
//! through the kernel's own mkfs (`fs_ext2::mkfs`, `fs_fat::mkfs`).
//! Check the result with `e2fsck -fn IMAGE` or `fsck.fat -n IMAGE`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use rump::ext2::MkfsOptions;

/// Arguments of `rump newfs`.
#[derive(Args)]
pub struct NewfsArgs {
    /// Image file (created if missing) or block device.
    pub image: PathBuf,
    /// File-system type: ext2; msdos (or vfat: FAT12, 16 or 32 by size),
    /// fat12, fat16 or fat32.
    #[arg(short = 't', long = "type", default_value = "ext2")]
    pub fstype: String,
    /// FAT: sectors per cluster (1, 2, 4 ... 128; default by size).
    #[arg(short = 'c', long = "sectors-per-cluster")]
    pub sectors_per_cluster: Option<u8>,
    /// Size of the image (bytes, or with a k, m, g or t suffix); creates or
    /// resizes the file. Without it, the whole existing file is used.
    #[arg(short = 's', long)]
    pub size: Option<String>,
    /// Block size: 1024, 2048 or 4096 (default: 1024 below 512 MiB, else 4096).
    #[arg(short = 'b', long = "block-size")]
    pub block_size: Option<u32>,
    /// Number of inodes (default: one per --bytes-per-inode).
    #[arg(short = 'N', long)]
    pub inodes: Option<u32>,
    /// Bytes of space per inode.
    #[arg(short = 'i', long = "bytes-per-inode", default_value_t = 16384)]
    pub bytes_per_inode: u32,
    /// Inode size in bytes (128 or 256).
    #[arg(short = 'I', long = "inode-size", default_value_t = 256)]
    pub inode_size: u16,
    /// Revision: 0 (original ext2) or 1 (filetype, sparse_super, large_file).
    #[arg(short = 'r', long, default_value_t = 1)]
    pub revision: u32,
    /// Percentage of blocks reserved for root.
    #[arg(short = 'm', long = "reserved-percent", default_value_t = 5)]
    pub reserved_percent: u32,
    /// Volume label (up to 16 bytes; 11 for FAT).
    #[arg(short = 'L', long)]
    pub label: Option<String>,
    /// Say nothing on success.
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// With a server (--server URL or $RUMP_SERVER), IMAGE is a device
    /// node in that kernel (`/dev/disk0`), written through its system calls.
    #[command(flatten)]
    pub conn: rump_cli::tools::ServerArg,
}

/// Parses `123`, `64k`, `10m`, `2g`, `1t`.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    let (digits, mul) = match s.chars().last() {
        Some('k' | 'K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&s[..s.len() - 1], 1 << 20),
        Some('g' | 'G') => (&s[..s.len() - 1], 1 << 30),
        Some('t' | 'T') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: u64 = digits.parse().with_context(|| format!("bad size {s:?}"))?;
    n.checked_mul(mul)
        .with_context(|| format!("size {s:?} too large"))
}

pub fn run(a: NewfsArgs) -> anyhow::Result<()> {
    let fat_type = match a.fstype.as_str() {
        "ext2" => None,
        "msdos" | "vfat" | "fat" => Some(None),
        "fat12" => Some(Some(rump::fat::FatType::Fat12)),
        "fat16" => Some(Some(rump::fat::FatType::Fat16)),
        "fat32" => Some(Some(rump::fat::FatType::Fat32)),
        t => bail!("unknown file-system type {t:?} (ext2, msdos, fat12, fat16, fat32)"),
    };
    if let Some(url) = a.conn.url() {
        if fat_type.is_some() {
            bail!("newfs through a server makes ext2 only (for now)");
        }
        return run_remote(&a, url);
    }
    if let Some(ty) = fat_type {
        return run_fat(&a, ty);
    }
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let known = match size {
        Some(s) => s,
        None => std::fs::metadata(&a.image)
            .with_context(|| {
                format!(
                    "{}: no such image (give --size to create it)",
                    a.image.display()
                )
            })?
            .len(),
    };
    let block_size = a.block_size.unwrap_or(if known != 0 && known < 512 << 20 {
        1024
    } else {
        4096
    });
    let opts = options(&a, block_size)?;
    let summary = match size {
        Some(s) => rump::ext2::newfs_image(&a.image, s, &opts),
        None => rump::ext2::newfs_existing(&a.image, &opts),
    }
    .with_context(|| format!("newfs {}", a.image.display()))?;
    report(&a, &summary);
    Ok(())
}

/// `rump newfs /dev/diskN` on a server's kernel: the device node, raw,
/// through the system-call interface.
fn run_remote(a: &NewfsArgs, url: String) -> anyhow::Result<()> {
    if a.size.is_some() {
        bail!("--size is for image files; a device has its size");
    }
    let sc = rump_cli::tools::connect(Some(url)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = a.image.to_string_lossy();
    let opts = options(a, a.block_size.unwrap_or(4096))?;
    let summary =
        rump::ext2::newfs_device(&*sc, &path, &opts).with_context(|| format!("newfs {path}"))?;
    report(a, &summary);
    Ok(())
}

fn options(a: &NewfsArgs, block_size: u32) -> anyhow::Result<MkfsOptions> {
    if ![1024, 2048, 4096].contains(&block_size) {
        bail!("block size must be 1024, 2048 or 4096");
    }
    let mut label = [0u8; 16];
    if let Some(l) = &a.label {
        if l.len() > 16 {
            bail!("label longer than 16 bytes");
        }
        label[..l.len()].copy_from_slice(l.as_bytes());
    }
    Ok(MkfsOptions {
        block_size,
        blocks: None,
        inodes: a.inodes,
        bytes_per_inode: a.bytes_per_inode,
        inode_size: a.inode_size,
        revision: a.revision,
        reserved_percent: a.reserved_percent,
        label,
        uuid: [0; 16],
        now: 0,
    })
}

fn report(a: &NewfsArgs, summary: &rump::ext2::MkfsSummary) {
    if !a.quiet {
        println!(
            "{}: ext2 rev {}, {} blocks of {} bytes, {} inodes, {} groups; {} blocks and {} inodes free",
            a.image.display(),
            a.revision,
            summary.blocks,
            summary.block_size,
            summary.inodes,
            summary.groups,
            summary.free_blocks,
            summary.free_inodes
        );
    }
}

/// `newfs -t msdos|fat12|fat16|fat32`.
fn run_fat(a: &NewfsArgs, ty: Option<rump::fat::FatType>) -> anyhow::Result<()> {
    let size = a.size.as_deref().map(parse_size).transpose()?;
    let mut label = *b"NO NAME    ";
    if let Some(l) = &a.label {
        if l.len() > 11 || !l.is_ascii() {
            bail!("a FAT label is at most 11 ASCII characters");
        }
        label = [b' '; 11];
        label[..l.len()].copy_from_slice(l.to_ascii_uppercase().as_bytes());
    }
    let opts = rump::fat::MkfsOptions {
        fat_type: ty,
        sectors_per_cluster: a.sectors_per_cluster,
        label,
        ..Default::default()
    };
    let s = match size {
        Some(s) => rump::fat::newfs_image(&a.image, s, &opts),
        None => rump::fat::newfs_existing(&a.image, &opts),
    }
    .with_context(|| {
        format!(
            "newfs {} (does the size suit the FAT type and cluster size?)",
            a.image.display()
        )
    })?;
    if !a.quiet {
        println!(
            "{}: {:?}, {} clusters of {} bytes, {} free",
            a.image.display(),
            s.fat_type,
            s.clusters,
            s.cluster_bytes,
            s.free_clusters
        );
    }
    Ok(())
}
