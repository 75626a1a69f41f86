//! Journal recovery (jbd2, the journal of ext3 and ext4): at mount, a file
//! system whose `needs_recovery` flag is set has committed transactions in
//! its journal that may not have reached their home blocks. They are
//! replayed, as Linux and e2fsck do, in three passes over the log: find
//! the last complete transaction, collect the revoke records, and write
//! every journaled block of the complete transactions home unless a
//! revoke of the same or a later transaction covers it. Then the journal
//! is marked empty and the flag cleared.
//!
//! The journal is the file of inode `s_journal_inum` (internal journals
//! only). Its blocks are big-endian: a superblock (v1 or v2) in block 0,
//! then a circular log of descriptor blocks (each followed by the data
//! blocks its tags describe), commit blocks and revoke blocks, each with
//! a 12-byte header (magic, type, transaction sequence). Tag sizes follow
//! the journal's features (64bit, checksum v2 or v3). Checksums are not
//! verified yet; a log that ends in a torn block ends where its sequence
//! or magic stop matching, as for journals without checksums.
//!
//! Everything read from the journal is checked: block types, tag counts
//! that fit their block, journal positions inside the journal, home block
//! numbers inside the file system, and a bound on the number of log
//! blocks walked (the journal's length), so a corrupt journal gives
//! `EUCLEAN` and a log line, never a hang.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::vec;
use alloc::vec::Vec;

use hyper::Errno;

use crate::format::*;

use super::Ext2;

const JBD2_MAGIC: u32 = 0xC03B_3998;
const BT_DESCRIPTOR: u32 = 1;
const BT_COMMIT: u32 = 2;
const BT_SB_V1: u32 = 3;
const BT_SB_V2: u32 = 4;
const BT_REVOKE: u32 = 5;

const INCOMPAT_REVOKE: u32 = 0x1;
const INCOMPAT_64BIT: u32 = 0x2;
const INCOMPAT_ASYNC_COMMIT: u32 = 0x4;
const INCOMPAT_CSUM_V2: u32 = 0x8;
const INCOMPAT_CSUM_V3: u32 = 0x10;
/// Journal features recovery understands (not fast commits: their area
/// is not replayed, so such a journal is refused).
const INCOMPAT_KNOWN: u32 =
    INCOMPAT_REVOKE | INCOMPAT_64BIT | INCOMPAT_ASYNC_COMMIT | INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3;

const TAG_ESCAPE: u32 = 1;
const TAG_SAME_UUID: u32 = 2;
const TAG_LAST: u32 = 8;

/// `s_journal_inum` in the ext2/3/4 superblock.
const SB_JOURNAL_INUM: usize = 0xE0;
/// `s_journal_dev`: non-zero for an external journal.
const SB_JOURNAL_DEV: usize = 0xE4;

/// CRC-32C (Castagnoli) continued from `crc`, without the final
/// inversion: what ext4 and jbd2 store (`crc32c(~0, ...)` in Linux).
pub(crate) fn crc32c(mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    crc
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn put_be32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// The journal's geometry, from its superblock.
struct Journal {
    ino: u32,
    inode: InodeRepr,
    /// Blocks in the journal (`s_maxlen`).
    len: u32,
    /// First log block (`s_first`).
    first: u32,
    incompat: u32,
    tag_bytes: usize,
    /// Bytes at the end of a descriptor or revoke block that hold its
    /// checksum (v2/v3), not tags.
    tail: usize,
}

/// What the scan found.
struct Log {
    /// Sequence of the first transaction after the last complete one.
    end: u32,
    /// Block revoked, and the newest transaction that revoked it.
    revoked: BTreeMap<u64, u32>,
}

impl Ext2 {
    /// Replays the journal into the device (see the module docs). The
    /// caller re-opens the file system afterwards: replay may have
    /// rewritten the superblock and the group descriptors.
    pub(super) fn recover_journal(&mut self, raw_sb: &[u8]) -> Result<(), Errno> {
        if u32::from_le_bytes(
            raw_sb[SB_JOURNAL_DEV..SB_JOURNAL_DEV + 4]
                .try_into()
                .unwrap(),
        ) != 0
        {
            self.log("the journal is on another device; cannot recover it");
            return Err(Errno::EINVAL);
        }
        let ino = u32::from_le_bytes(
            raw_sb[SB_JOURNAL_INUM..SB_JOURNAL_INUM + 4]
                .try_into()
                .unwrap(),
        );
        let j = self.open_journal(ino)?;
        let bs = self.g.bs as usize;
        let jsb = self.journal_block(&j, 0)?;
        let start = be32(&jsb, 0x1C);
        let seq = be32(&jsb, 0x18);
        if start == 0 {
            // Nothing logged: only the flag is left to clear.
            return self.finish_recovery(&j, jsb, seq);
        }
        if start < j.first || start >= j.len {
            return Err(self.corrupt(&format!("journal: log start {start} outside the log")));
        }
        let log = self.scan_log(&j, start, seq)?;
        let mut replayed = 0u64;
        self.walk_log(&j, start, seq, log.end, |fs, tseq, home, data| {
            if log
                .revoked
                .get(&home)
                .is_some_and(|&r| r.wrapping_sub(tseq) as i32 >= 0)
            {
                return Ok(());
            }
            let home = fs.check_home(home)?;
            let sectors = (bs / 512) as u64;
            fs.cache
                .device_io(|d| d.write_blocks(home * sectors, data))?;
            replayed += 1;
            Ok(())
        })?;
        self.cache.device_io(|d| d.flush())?;
        self.log(&format!(
            "journal recovered: {} transactions, {replayed} blocks replayed",
            log.end.wrapping_sub(seq)
        ));
        self.finish_recovery(&j, jsb, log.end)
    }

    fn open_journal(&mut self, ino: u32) -> Result<Journal, Errno> {
        if ino == 0 || ino > self.g.inodes_count {
            return Err(self.corrupt(&format!("journal: bad journal inode {ino}")));
        }
        let inode = self.read_inode(ino)?;
        let bs = self.g.bs as u64;
        let blocks = inode.size / bs;
        if inode.file_type() != S_IFREG || blocks < 2 || blocks > u32::MAX as u64 {
            return Err(self.corrupt("journal: the journal inode is not a journal"));
        }
        let mut j = Journal {
            ino,
            inode,
            len: blocks as u32,
            first: 1,
            incompat: 0,
            tag_bytes: 8,
            tail: 0,
        };
        let sb = self.journal_block(&j, 0)?;
        let bt = be32(&sb, 4);
        if be32(&sb, 0) != JBD2_MAGIC || (bt != BT_SB_V1 && bt != BT_SB_V2) {
            return Err(self.corrupt("journal: bad journal superblock"));
        }
        if be32(&sb, 0xC) as u64 != bs {
            return Err(self.corrupt("journal: block size differs from the file system's"));
        }
        let maxlen = be32(&sb, 0x10);
        let first = be32(&sb, 0x14);
        if maxlen as u64 > blocks || maxlen < 2 || first == 0 || first >= maxlen {
            return Err(self.corrupt("journal: bad journal length or first block"));
        }
        j.len = maxlen;
        j.first = first;
        if bt == BT_SB_V2 {
            j.incompat = be32(&sb, 0x28);
        }
        if j.incompat & !INCOMPAT_KNOWN != 0 {
            self.log(&format!(
                "journal: unknown journal features {:#x}; cannot recover",
                j.incompat & !INCOMPAT_KNOWN
            ));
            return Err(Errno::EINVAL);
        }
        let is64 = j.incompat & INCOMPAT_64BIT != 0;
        j.tag_bytes = if j.incompat & INCOMPAT_CSUM_V3 != 0 {
            16
        } else {
            let base = if j.incompat & INCOMPAT_CSUM_V2 != 0 {
                14
            } else {
                12
            };
            if is64 {
                base
            } else {
                base - 4
            }
        };
        j.tail = if j.incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0 {
            4
        } else {
            0
        };
        Ok(j)
    }

    /// Block `n` of the journal file.
    fn journal_block(&mut self, j: &Journal, n: u32) -> Result<Vec<u8>, Errno> {
        let p = self.bmap(j.ino, &j.inode, n as u64)?;
        if p == 0 {
            return Err(self.corrupt(&format!("journal: hole at journal block {n}")));
        }
        Ok(self.cache.read(p as u64)?.to_vec())
    }

    /// The log block after `n`, wrapping to the first.
    fn next(j: &Journal, n: u32) -> u32 {
        if n + 1 >= j.len {
            j.first
        } else {
            n + 1
        }
    }

    fn check_home(&self, home: u64) -> Result<u64, Errno> {
        if home >= self.g.blocks_count as u64 {
            return Err(self.corrupt(&format!("journal: home block {home} past the end")));
        }
        Ok(home)
    }

    /// The tags of descriptor block `d`: (home block, flags).
    fn tags(&self, j: &Journal, d: &[u8]) -> Result<Vec<(u64, u32)>, Errno> {
        let end = d.len() - j.tail;
        let mut at = 12;
        let mut out = Vec::new();
        loop {
            if at + j.tag_bytes > end {
                return Err(self.corrupt("journal: descriptor tags run past their block"));
            }
            let t = &d[at..at + j.tag_bytes];
            let lo = be32(t, 0) as u64;
            let (flags, hi) = if j.incompat & INCOMPAT_CSUM_V3 != 0 {
                (be32(t, 4), be32(t, 8) as u64)
            } else {
                let f = u16::from_be_bytes([t[6], t[7]]) as u32;
                let hi = if j.incompat & INCOMPAT_64BIT != 0 {
                    be32(t, 8) as u64
                } else {
                    0
                };
                (f, hi)
            };
            let home = if j.incompat & INCOMPAT_64BIT != 0 {
                lo | hi << 32
            } else {
                lo
            };
            out.push((home, flags));
            at += j.tag_bytes;
            if flags & TAG_SAME_UUID == 0 {
                at += 16;
            }
            if flags & TAG_LAST != 0 {
                return Ok(out);
            }
        }
    }

    /// Pass one and two: the end of the complete transactions from
    /// `start`/`seq`, and the revoke records in them.
    fn scan_log(&mut self, j: &Journal, start: u32, seq: u32) -> Result<Log, Errno> {
        let mut pos = start;
        let mut expect = seq;
        let mut revoked = BTreeMap::new();
        let mut pending = Vec::new();
        let mut walked = 0u64;
        loop {
            walked += 1;
            if walked > j.len as u64 + 1 {
                return Err(self.corrupt("journal: the log does not end"));
            }
            let b = self.journal_block(j, pos)?;
            if be32(&b, 0) != JBD2_MAGIC || be32(&b, 8) != expect {
                break;
            }
            match be32(&b, 4) {
                BT_DESCRIPTOR => {
                    let n = self.tags(j, &b)?.len() as u32;
                    if n >= j.len {
                        return Err(self.corrupt("journal: descriptor longer than the log"));
                    }
                    for _ in 0..=n {
                        pos = Self::next(j, pos);
                    }
                    continue;
                }
                BT_COMMIT => {
                    // The transaction is complete: its revokes count.
                    for r in pending.drain(..) {
                        let e = revoked.entry(r).or_insert(expect);
                        if expect.wrapping_sub(*e) as i32 > 0 {
                            *e = expect;
                        }
                    }
                    expect = expect.wrapping_add(1);
                }
                BT_REVOKE => {
                    let count = be32(&b, 12) as usize;
                    let rsz = if j.incompat & INCOMPAT_64BIT != 0 {
                        8
                    } else {
                        4
                    };
                    if count < 16 || count > b.len() - j.tail {
                        return Err(self.corrupt("journal: bad revoke block"));
                    }
                    let mut at = 16;
                    while at + rsz <= count {
                        let blk = if rsz == 8 {
                            (be32(&b, at) as u64) << 32 | be32(&b, at + 4) as u64
                        } else {
                            be32(&b, at) as u64
                        };
                        pending.push(blk);
                        at += rsz;
                    }
                }
                _ => break,
            }
            pos = Self::next(j, pos);
        }
        Ok(Log {
            end: expect,
            revoked,
        })
    }

    /// Pass three: calls `f(fs, transaction, home block, data)` for every
    /// journaled block of the transactions from `seq` up to `end`.
    fn walk_log(
        &mut self,
        j: &Journal,
        start: u32,
        seq: u32,
        end: u32,
        mut f: impl FnMut(&mut Ext2, u32, u64, &[u8]) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        let mut pos = start;
        let mut cur = seq;
        let mut walked = 0u64;
        while cur != end {
            walked += 1;
            if walked > j.len as u64 + 1 {
                return Err(self.corrupt("journal: the log does not end"));
            }
            let b = self.journal_block(j, pos)?;
            match be32(&b, 4) {
                BT_DESCRIPTOR => {
                    for (home, flags) in self.tags(j, &b)? {
                        pos = Self::next(j, pos);
                        let mut data = self.journal_block(j, pos)?;
                        if flags & TAG_ESCAPE != 0 {
                            put_be32(&mut data, 0, JBD2_MAGIC);
                        }
                        f(self, cur, home, &data)?;
                    }
                }
                BT_COMMIT => cur = cur.wrapping_add(1),
                _ => {}
            }
            pos = Self::next(j, pos);
        }
        Ok(())
    }

    /// Marks the journal empty (`s_start` 0, the next sequence) and clears
    /// `needs_recovery` in the file system's superblock.
    fn finish_recovery(
        &mut self,
        j: &Journal,
        mut jsb: Vec<u8>,
        next_seq: u32,
    ) -> Result<(), Errno> {
        let bs = self.g.bs as usize;
        put_be32(&mut jsb, 0x18, next_seq);
        put_be32(&mut jsb, 0x1C, 0);
        if j.incompat & (INCOMPAT_CSUM_V2 | INCOMPAT_CSUM_V3) != 0 {
            put_be32(&mut jsb, 0xFC, 0);
            let c = crc32c(!0, &jsb[..1024]);
            put_be32(&mut jsb, 0xFC, c);
        }
        let p = self.bmap(j.ino, &j.inode, 0)? as u64;
        let sectors = (bs / 512) as u64;
        self.cache
            .device_io(|d| d.write_blocks(p * sectors, &jsb))?;
        let mut raw = vec![0u8; SUPERBLOCK_SIZE];
        self.cache
            .device_io(|d| d.read_blocks(SUPERBLOCK_OFFSET / 512, &mut raw))?;
        let at = 96; // s_feature_incompat
        let v =
            u32::from_le_bytes(raw[at..at + 4].try_into().unwrap()) & !feature::INCOMPAT_RECOVER;
        raw[at..at + 4].copy_from_slice(&v.to_le_bytes());
        if self.sb.feature_ro_compat & feature::RO_COMPAT_METADATA_CSUM != 0 {
            let c = crc32c(!0, &raw[..0x3FC]);
            raw[0x3FC..0x400].copy_from_slice(&c.to_le_bytes());
        }
        self.cache
            .device_io(|d| d.write_blocks(SUPERBLOCK_OFFSET / 512, &raw))?;
        self.cache.device_io(|d| d.flush())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn crc32c_check_value() {
        // The standard check value of CRC-32C over "123456789".
        assert_eq!(!super::crc32c(!0, b"123456789"), 0xE306_9283);
    }
}
