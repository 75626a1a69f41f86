//! A checked reader for the one kind of ELF the runner boots: a static,
//! non-relocatable x86_64 executable (`ET_EXEC`) whose loadable segments
//! sit at their physical addresses (the guest runs identity-mapped).
//!
//! Layout per the System V ABI (gABI "ELF Header" and "Program Header"
//! chapters). Every offset and size is checked against the file and the
//! guest's memory before anything is copied.

use std::fmt;

const EHDR_LEN: usize = 64;
const PHDR_LEN: usize = 56;
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
const MAX_PHDRS: usize = 64;

/// A loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical (and virtual) address.
    pub addr: u64,
    /// Byte range in the file.
    pub file_off: u64,
    /// Bytes taken from the file; the rest up to `mem_len` is zero.
    pub file_len: u64,
    /// Bytes in memory.
    pub mem_len: u64,
    /// Executable.
    pub is_exec: bool,
}

/// A parsed image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    /// The entry point.
    pub entry: u64,
    /// Loadable segments.
    pub segments: Vec<Segment>,
    /// First byte after the highest segment.
    pub end: u64,
}

/// Why an image cannot be booted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElfError(pub String);

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn err<T>(msg: impl Into<String>) -> Result<T, ElfError> {
    Err(ElfError(msg.into()))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

impl Image {
    /// Parses `file`, checking that every segment lies in
    /// `[min_addr, max_addr)` and the entry in an executable segment.
    pub fn parse(file: &[u8], min_addr: u64, max_addr: u64) -> Result<Image, ElfError> {
        Image::parse_prefix(file, file.len() as u64, min_addr, max_addr)
    }

    /// How much of the start of a file [`Image::parse_prefix`] needs: the
    /// header, then (once the header is known) the program headers.
    pub fn prefix_len(header: &[u8]) -> usize {
        if header.len() < EHDR_LEN {
            return EHDR_LEN;
        }
        let phoff = u64_at(header, 32);
        let phnum = (u16_at(header, 56) as usize).min(MAX_PHDRS);
        usize::try_from(phoff)
            .ok()
            .and_then(|o| o.checked_add(phnum * PHDR_LEN))
            .filter(|&e| e <= 1 << 20)
            .unwrap_or(EHDR_LEN)
            .max(EHDR_LEN)
    }

    /// Parses an image from the first bytes of a file of `total_len`
    /// bytes (header and program headers: [`Image::prefix_len`]), so a
    /// large file with debug information need not be read whole.
    pub fn parse_prefix(
        file: &[u8],
        total_len: u64,
        min_addr: u64,
        max_addr: u64,
    ) -> Result<Image, ElfError> {
        if file.len() < EHDR_LEN || &file[..4] != b"\x7fELF" {
            return err("not an ELF file");
        }
        if file[4] != 2 || file[5] != 1 {
            return err("not a 64-bit little-endian ELF file");
        }
        if u16_at(file, 18) != EM_X86_64 {
            return err("not an x86_64 ELF file");
        }
        match u16_at(file, 16) {
            ET_EXEC => {}
            ET_DYN => return err(
                "position-independent ELF: link the guest with --no-pie (see docs/unikernel.md)",
            ),
            t => return err(format!("ELF type {t} is not an executable")),
        }
        let entry = u64_at(file, 24);
        let phoff = u64_at(file, 32);
        let phentsize = u16_at(file, 54) as usize;
        let phnum = u16_at(file, 56) as usize;
        if phentsize != PHDR_LEN {
            return err(format!(
                "program header size {phentsize}, expected {PHDR_LEN}"
            ));
        }
        if phnum == 0 || phnum > MAX_PHDRS {
            return err(format!("{phnum} program headers"));
        }
        let table_end = usize::try_from(phoff)
            .ok()
            .and_then(|o| o.checked_add(phnum * PHDR_LEN))
            .filter(|&e| e <= file.len());
        let Some(table_end) = table_end else {
            return err("program headers beyond the end of the file");
        };
        let table = &file[table_end - phnum * PHDR_LEN..table_end];
        let mut segments = Vec::new();
        for ph in table.chunks_exact(PHDR_LEN) {
            if u32_at(ph, 0) != PT_LOAD {
                continue;
            }
            let flags = u32_at(ph, 4);
            let (file_off, vaddr, paddr) = (u64_at(ph, 8), u64_at(ph, 16), u64_at(ph, 24));
            let (file_len, mem_len) = (u64_at(ph, 32), u64_at(ph, 40));
            if mem_len == 0 {
                continue;
            }
            if vaddr != paddr {
                return err(format!(
                    "segment at {vaddr:#x} is not identity-mapped (physical {paddr:#x})"
                ));
            }
            if file_len > mem_len {
                return err(format!("segment at {paddr:#x}: file size over memory size"));
            }
            if file_off.checked_add(file_len).is_none_or(|e| e > total_len) {
                return err(format!(
                    "segment at {paddr:#x}: bytes beyond the end of the file"
                ));
            }
            let end = paddr.checked_add(mem_len);
            if paddr < min_addr || end.is_none_or(|e| e > max_addr) {
                return err(format!(
                    "segment {paddr:#x}+{mem_len:#x} outside guest memory [{min_addr:#x}, {max_addr:#x})"
                ));
            }
            segments.push(Segment {
                addr: paddr,
                file_off,
                file_len,
                mem_len,
                is_exec: flags & PF_X != 0,
            });
        }
        if segments.is_empty() {
            return err("no loadable segments");
        }
        let mut sorted: Vec<_> = segments
            .iter()
            .map(|s| (s.addr, s.addr + s.mem_len))
            .collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0].1 > w[1].0) {
            return err("overlapping segments");
        }
        if !segments
            .iter()
            .any(|s| s.is_exec && entry >= s.addr && entry < s.addr + s.mem_len)
        {
            return err(format!("entry {entry:#x} is not in an executable segment"));
        }
        let end = segments
            .iter()
            .map(|s| s.addr + s.mem_len)
            .max()
            .unwrap_or(0);
        Ok(Image {
            entry,
            segments,
            end,
        })
    }
}

/// Builds a minimal ELF executable with one executable segment holding
/// `code` at `addr` (for tests and hand-written probe guests).
pub fn build_exec(addr: u64, code: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; EHDR_LEN + PHDR_LEN];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    f[16..18].copy_from_slice(&ET_EXEC.to_le_bytes());
    f[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
    f[20..24].copy_from_slice(&1u32.to_le_bytes());
    f[24..32].copy_from_slice(&addr.to_le_bytes());
    f[32..40].copy_from_slice(&(EHDR_LEN as u64).to_le_bytes());
    f[52..54].copy_from_slice(&(EHDR_LEN as u16).to_le_bytes());
    f[54..56].copy_from_slice(&(PHDR_LEN as u16).to_le_bytes());
    f[56..58].copy_from_slice(&1u16.to_le_bytes());
    let ph = EHDR_LEN;
    let off = (EHDR_LEN + PHDR_LEN) as u64;
    f[ph..ph + 4].copy_from_slice(&PT_LOAD.to_le_bytes());
    f[ph + 4..ph + 8].copy_from_slice(&(PF_X | 4).to_le_bytes());
    f[ph + 8..ph + 16].copy_from_slice(&off.to_le_bytes());
    f[ph + 16..ph + 24].copy_from_slice(&addr.to_le_bytes());
    f[ph + 24..ph + 32].copy_from_slice(&addr.to_le_bytes());
    f[ph + 32..ph + 40].copy_from_slice(&(code.len() as u64).to_le_bytes());
    f[ph + 40..ph + 48].copy_from_slice(&(code.len() as u64).to_le_bytes());
    f[ph + 48..ph + 56].copy_from_slice(&4096u64.to_le_bytes());
    f.extend_from_slice(code);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 0x10_0000;
    const MAX: u64 = 32 << 20;

    #[test]
    fn a_built_image_parses() {
        let f = build_exec(0x20_0000, &[0xf4]);
        let img = Image::parse(&f, MIN, MAX).unwrap();
        assert_eq!(img.entry, 0x20_0000);
        assert_eq!(img.end, 0x20_0001);
        assert_eq!(img.segments.len(), 1);
    }

    #[test]
    fn the_headers_alone_parse() {
        let f = build_exec(0x20_0000, &[0xf4; 100]);
        let n = Image::prefix_len(&f[..EHDR_LEN]);
        assert!(n > EHDR_LEN && n < f.len(), "{n}");
        let whole = Image::parse(&f, MIN, MAX).unwrap();
        assert_eq!(
            Image::parse_prefix(&f[..n], f.len() as u64, MIN, MAX).unwrap(),
            whole
        );
        // Segment bytes past the file's real end, or program headers past
        // the prefix, are refused.
        assert!(Image::parse_prefix(&f[..n], f.len() as u64 - 1, MIN, MAX).is_err());
        assert!(Image::parse_prefix(&f[..n - 1], f.len() as u64, MIN, MAX).is_err());
        assert_eq!(Image::prefix_len(&f[..10]), EHDR_LEN);
    }

    #[test]
    fn bad_images_are_refused() {
        let good = build_exec(0x20_0000, &[0xf4]);
        assert!(Image::parse(&good[..10], MIN, MAX).is_err());
        let mut f = good.clone();
        f[16] = ET_DYN as u8;
        assert!(Image::parse(&f, MIN, MAX)
            .unwrap_err()
            .0
            .contains("--no-pie"));
        // Below the image floor, past guest memory.
        assert!(Image::parse(&build_exec(0x1000, &[0xf4]), MIN, MAX).is_err());
        assert!(Image::parse(&build_exec(MAX - 1, &[0xf4, 0xf4]), MIN, MAX).is_err());
        // File bytes beyond the end of the file.
        let mut f = good.clone();
        f[EHDR_LEN + 32] = 0xff;
        f[EHDR_LEN + 40] = 0xff;
        assert!(Image::parse(&f, MIN, MAX).is_err());
        // Entry outside the segment.
        let mut f = good.clone();
        f[24..32].copy_from_slice(&0x30_0000u64.to_le_bytes());
        assert!(Image::parse(&f, MIN, MAX).is_err());
        // Program header table past the end.
        let mut f = good;
        f[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(Image::parse(&f, MIN, MAX).is_err());
    }

    #[test]
    fn truncated_and_mutated_images_never_panic() {
        let good = build_exec(0x20_0000, &[0x90; 32]);
        for n in 0..good.len() {
            let _ = Image::parse(&good[..n], MIN, MAX);
        }
        for at in 0..EHDR_LEN + PHDR_LEN {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut f = good.clone();
                f[at] = v;
                let _ = Image::parse(&f, MIN, MAX);
            }
        }
    }
}
