//! The guest<->runner ABI of rump-rs unikernels, shared by both sides.
//!
//! A unikernel guest (the `hyper-uk` platform plus an application) runs on
//! one vCPU under `uk-runner`, without interrupts or devices. It reaches the
//! runner only through *hypercalls*: an `out` instruction to port
//! [`PORT_BASE`]` + n` carrying, as a 32-bit value, the guest-physical
//! address of a 64-byte [`Block`] (the scheme of Solo5's hvt). The runner
//! reads the block, checks every field ([`Call::parse`]), serves the call
//! and writes the result back into the block's `ret` word (a value, or a
//! negated [`Error`] code) before the guest resumes.
//!
//! At entry the runner hands the guest a read-only [`BootInfo`] block at
//! [`BOOT_INFO_GPA`] (`rdi` points at it): memory size, the end of the
//! loaded image, the TSC frequency, the disks and network links attached,
//! and the `key=value` parameters.
//!
//! Formats follow smoltcp's style: a zero-copy view (`Block<T>`,
//! `BootInfo<T>`) whose `new_checked` guarantees every accessor is in
//! range, and a `Repr` ([`Call`], [`BootInfoRepr`]) with `parse`, `emit`
//! and `buffer_len`. The layout and the guest-physical memory map are
//! written down in `docs/unikernel.md`.

#![no_std]
#![forbid(unsafe_code)]

pub mod batch;
mod boot;
mod call;

pub use boot::{
    BootInfo, BootInfoRepr, DiskInfo, Name, NetInfo, Params, BOOT_INFO_LEN, BOOT_MAGIC, MAX_DISKS,
    MAX_NETS, MAX_PARAMS_LEN, NAME_LEN,
};
pub use call::{Block, BootStage, Call, ExitReason, Hypercall, BLOCK_LEN};

/// The version of this ABI, written into the boot block; a guest refuses a
/// boot block of another version (and stops with a message).
pub const ABI_VERSION: u32 = 3;

/// Hypercall `n` is an `out` of a 32-bit guest-physical address to port
/// `PORT_BASE + n`.
pub const PORT_BASE: u16 = 0x500;

// ----- the guest-physical memory map -------------------------------------

/// The GDT (null, 64-bit code at selector 8, data at selector 0x10).
pub const GDT_GPA: u64 = 0x1000;
/// The top-level page table (PML4).
pub const PML4_GPA: u64 = 0x2000;
/// The page-directory-pointer table.
pub const PDPT_GPA: u64 = 0x3000;
/// The page directory: 512 entries of 2 MiB, so guests have at most 1 GiB.
pub const PD_GPA: u64 = 0x4000;
/// The page table of the first 2 MiB, in 4 KiB pages, so that page 0 (null
/// pointers) is not mapped and the boot block is read-only.
pub const PT0_GPA: u64 = 0x5000;
/// The boot-information block, [`BOOT_INFO_LEN`] bytes, mapped read-only.
pub const BOOT_INFO_GPA: u64 = 0x8000;
/// The task-state segment, [`TSS_LEN`] bytes, mapped read-only: the guest
/// runs at privilege level 3, and the TSS's I/O permission bitmap opens
/// exactly the [`HYPERCALL_PORTS`] ports from [`PORT_BASE`] (any other
/// port, and any privileged instruction, faults and stops the guest).
pub const TSS_GPA: u64 = 0xA000;
/// The TSS: 104 bytes of fields, the 8 KiB I/O bitmap, and its end byte.
pub const TSS_LEN: u64 = 0x68 + 8192 + 1;
/// How many ports from [`PORT_BASE`] the guest may use.
pub const HYPERCALL_PORTS: u16 = 256;
/// Loadable segments of the guest image must lie at or above this address
/// (and end below the boot stack). The runner also refuses to write guest
/// memory below it on the guest's behalf (the tables and the boot block are
/// read-only to the guest).
pub const IMAGE_MIN_GPA: u64 = 0x10_0000;
/// The boot stack: the top this many bytes of guest memory; `rsp` starts at
/// the top.
pub const BOOT_STACK_LEN: u64 = 256 << 10;
/// Smallest guest memory a runner accepts.
pub const MEM_MIN: u64 = 4 << 20;
/// Largest guest memory (one page directory of 2 MiB pages).
pub const MEM_MAX: u64 = 1 << 30;
/// Largest transfer of one block or network hypercall.
pub const MAX_IO_LEN: u64 = 16 << 20;
/// Largest console write.
pub const MAX_CONSOLE_LEN: u64 = 64 << 10;

/// Errors a hypercall returns, as negated Linux errno values in the
/// block's `ret` word (so the guest's kernel can pass them on unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// A buffer or the block itself lies outside guest memory (`EFAULT`).
    Fault,
    /// A field is out of range (`EINVAL`).
    Invalid,
    /// No such disk or network link (`EBADF`).
    BadHandle,
    /// The host failed the I/O (`EIO`).
    Io,
    /// No such hypercall (`ENOSYS`).
    NoSys,
    /// Nothing to receive now (`EAGAIN`).
    Again,
    /// Write to a read-only disk (`EROFS`).
    ReadOnly,
    /// A range past the end of a disk (`ENXIO`).
    PastEnd,
    /// A code this ABI version does not know.
    Unknown(u32),
}

impl Error {
    /// The Linux errno number.
    pub const fn errno(self) -> u32 {
        match self {
            Error::Fault => 14,
            Error::Invalid => 22,
            Error::BadHandle => 9,
            Error::Io => 5,
            Error::NoSys => 38,
            Error::Again => 11,
            Error::ReadOnly => 30,
            Error::PastEnd => 6,
            Error::Unknown(n) => n,
        }
    }

    /// The error with Linux errno `n`.
    pub const fn from_errno(n: u32) -> Error {
        match n {
            14 => Error::Fault,
            22 => Error::Invalid,
            9 => Error::BadHandle,
            5 => Error::Io,
            38 => Error::NoSys,
            11 => Error::Again,
            30 => Error::ReadOnly,
            6 => Error::PastEnd,
            n => Error::Unknown(n),
        }
    }

    /// The `ret` word for this error.
    pub const fn to_ret(self) -> i64 {
        -(self.errno() as i64)
    }

    /// Splits a `ret` word into a value or an error.
    pub fn from_ret(ret: i64) -> Result<u64, Error> {
        if ret >= 0 {
            Ok(ret as u64)
        } else {
            Err(Error::from_errno(
                ret.unsigned_abs().min(u32::MAX as u64) as u32
            ))
        }
    }
}

/// Why a parameter block or boot block could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The buffer is shorter than the layout.
    Truncated,
    /// The boot block does not start with [`BOOT_MAGIC`].
    BadMagic,
    /// The boot block is of another ABI version.
    BadVersion(u32),
    /// A field holds a value the ABI does not allow.
    BadField(&'static str),
}

impl ParseError {
    /// The hypercall error a runner answers a bad block with.
    pub fn to_error(self) -> Error {
        match self {
            ParseError::Truncated => Error::Fault,
            _ => Error::Invalid,
        }
    }
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::Truncated => write!(f, "block truncated"),
            ParseError::BadMagic => write!(f, "bad magic"),
            ParseError::BadVersion(v) => write!(f, "ABI version {v}, expected {ABI_VERSION}"),
            ParseError::BadField(name) => write!(f, "bad field {name}"),
        }
    }
}

pub(crate) fn get_u64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

pub(crate) fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_through_ret() {
        for e in [
            Error::Fault,
            Error::Invalid,
            Error::BadHandle,
            Error::Io,
            Error::NoSys,
            Error::Again,
            Error::ReadOnly,
            Error::PastEnd,
            Error::Unknown(99),
        ] {
            assert!(e.to_ret() < 0);
            assert_eq!(Error::from_ret(e.to_ret()), Err(e));
        }
        assert_eq!(Error::from_ret(7), Ok(7));
        assert_eq!(Error::from_ret(i64::MIN), Err(Error::Unknown(u32::MAX)));
    }

    #[test]
    fn memory_map_does_not_overlap() {
        let pages = [GDT_GPA, PML4_GPA, PDPT_GPA, PD_GPA, PT0_GPA];
        for w in pages.windows(2) {
            assert!(w[0] + 0x1000 <= w[1]);
        }
        const { assert!(PT0_GPA + 0x1000 <= BOOT_INFO_GPA) };
        const { assert!(BOOT_INFO_GPA + BOOT_INFO_LEN as u64 <= TSS_GPA) };
        const { assert!(TSS_GPA + TSS_LEN <= IMAGE_MIN_GPA) };
    }
}
