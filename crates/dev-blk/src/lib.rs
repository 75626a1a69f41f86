//! Block devices for rump kernels.
//!
//! A [`BlockDevice`] is an array of 512-byte sectors that can be read,
//! written and flushed. Backends: [`HostDevice`] (a host file or device
//! opened through the hypercall interface, `Hyper::block_open`) and
//! [`MemDevice`] (memory, for hermetic tests). [`part`] parses MBR and GPT
//! partition tables and exposes each partition as a [`Partition`], itself a
//! block device. The per-kernel [`Registry`] maps names such as
//! `/dev/disk0` to devices, which is how a host image becomes visible to a
//! file system (NetBSD's etfs, `rump_pub_etfs_register`); the
//! [`BlkComponent`] installs it at boot. [`cache::BufCache`] is the buffer
//! cache file systems put between themselves and a device.
//!
//! Neighbours: below are `hyper` (block I/O) and `kern` (the kernel value,
//! components, locks); above are the file systems (`fs-ext2`) and `sys`
//! (`etfs_register`).

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod cache;
mod dev;
pub mod part;
pub mod raw;
mod registry;

pub use dev::{read_bytes, BlockDevice, HostDevice, MemDevice, Partition, SECTOR_SIZE};
pub use registry::{register_host, register_host_window, BlkComponent, Claim, Registry, EXTENSION};
