//! ext4 extent trees, read side: the block map of an inode with the
//! `EXTENTS` flag. The tree's root is the inode's 60-byte `i_block`
//! (a 12-byte header and four 12-byte entries); deeper nodes are whole
//! blocks (header, entries, and with metadata_csum a 4-byte tail the
//! header's `max` leaves room for). Index entries point down, leaf
//! entries map a run of logical blocks to physical ones; a leaf entry
//! longer than 32768 blocks is unwritten (allocated, reads as zeros).
//!
//! Everything read from the image is checked before use: the magic, that
//! `entries <= max` and both fit the node, that depth falls by one per
//! level (at most [`MAX_DEPTH`]), that entries are in order, and that
//! every physical block lies inside the file system.

use alloc::format;

use hyper::Errno;

use crate::format::*;

use super::Ext2;

/// `eh_magic`.
pub const EXTENT_MAGIC: u16 = 0xF30A;
/// Deepest tree ext4 makes (and this reader follows).
pub const MAX_DEPTH: u16 = 5;
/// Leaf entries longer than this are unwritten extents.
const INIT_MAX_LEN: u16 = 32768;

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// A checked node header: entries and depth.
struct Header {
    entries: usize,
    depth: u16,
}

fn header(node: &[u8]) -> Result<Header, &'static str> {
    if node.len() < 12 {
        return Err("node shorter than its header");
    }
    if le16(node, 0) != EXTENT_MAGIC {
        return Err("bad extent magic");
    }
    let entries = le16(node, 2) as usize;
    let max = le16(node, 4) as usize;
    let depth = le16(node, 6);
    if entries > max || 12 + 12 * max > node.len() {
        return Err("extent node entries past its end");
    }
    if depth > MAX_DEPTH {
        return Err("extent tree too deep");
    }
    Ok(Header { entries, depth })
}

/// Where the search in one node leads.
enum Step {
    /// Down to this child block.
    Down(u64),
    /// The physical block of the logical block asked for (0: a hole or
    /// an unwritten extent).
    Found(u64),
}

/// Searches one node for logical block `lblk`.
fn search(node: &[u8], lblk: u32) -> Result<(Header, Step), &'static str> {
    let h = header(node)?;
    // The last entry whose first block is <= lblk.
    let mut pick = None;
    let mut prev = None;
    for i in 0..h.entries {
        let e = &node[12 + 12 * i..24 + 12 * i];
        let first = le32(e, 0);
        if prev.is_some_and(|p| first <= p) {
            return Err("extent entries out of order");
        }
        prev = Some(first);
        if first <= lblk {
            pick = Some(e);
        } else {
            break;
        }
    }
    let Some(e) = pick else {
        return Ok((h, Step::Found(0)));
    };
    if h.depth > 0 {
        let leaf = le32(e, 4) as u64 | (le16(e, 8) as u64) << 32;
        return Ok((h, Step::Down(leaf)));
    }
    let first = le32(e, 0);
    let raw_len = le16(e, 4);
    let (len, unwritten) = if raw_len > INIT_MAX_LEN {
        (raw_len - INIT_MAX_LEN, true)
    } else {
        (raw_len, false)
    };
    let start = (le16(e, 6) as u64) << 32 | le32(e, 8) as u64;
    let off = (lblk - first) as u64;
    if off >= len as u64 || unwritten {
        return Ok((h, Step::Found(0)));
    }
    Ok((h, Step::Found(start + off)))
}

impl Ext2 {
    /// The physical block of logical block `lblk` of extent-mapped inode
    /// `ino` (0 for a hole or an unwritten extent).
    pub(super) fn extent_bmap(
        &mut self,
        ino: u32,
        inode: &InodeRepr,
        lblk: u64,
    ) -> Result<u32, Errno> {
        let Ok(lblk) = u32::try_from(lblk) else {
            return Ok(0);
        };
        let mut root = [0u8; 60];
        for (i, w) in inode.block.iter().enumerate() {
            root[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        let corrupt =
            |fs: &Ext2, why: &str| fs.corrupt(&format!("inode {ino}: extent tree: {why}"));
        let (h, mut step) = search(&root, lblk).map_err(|w| corrupt(self, w))?;
        let mut depth = h.depth;
        loop {
            match step {
                Step::Found(0) => return Ok(0),
                Step::Found(b) => {
                    let b = u32::try_from(b).map_err(|_| corrupt(self, "block above 2^32"))?;
                    return self.check_data_block(b, ino).map(|b| b as u32);
                }
                Step::Down(b) => {
                    let b = u32::try_from(b).map_err(|_| corrupt(self, "block above 2^32"))?;
                    let b = self.check_data_block(b, ino)?;
                    let node = self.cache.read(b)?;
                    let (h, next) = search(node, lblk).map_err(|w| corrupt(self, w))?;
                    if h.depth + 1 != depth {
                        return Err(corrupt(self, "depth does not fall by one"));
                    }
                    depth = h.depth;
                    step = next;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(depth: u16, max: u16, entries: &[(u32, u16, u64)]) -> alloc::vec::Vec<u8> {
        let mut n = alloc::vec![0u8; 12 + 12 * max as usize];
        n[0..2].copy_from_slice(&EXTENT_MAGIC.to_le_bytes());
        n[2..4].copy_from_slice(&(entries.len() as u16).to_le_bytes());
        n[4..6].copy_from_slice(&max.to_le_bytes());
        n[6..8].copy_from_slice(&depth.to_le_bytes());
        for (i, &(first, len, start)) in entries.iter().enumerate() {
            let e = &mut n[12 + 12 * i..24 + 12 * i];
            e[0..4].copy_from_slice(&first.to_le_bytes());
            if depth == 0 {
                e[4..6].copy_from_slice(&len.to_le_bytes());
                e[6..8].copy_from_slice(&((start >> 32) as u16).to_le_bytes());
                e[8..12].copy_from_slice(&(start as u32).to_le_bytes());
            } else {
                e[4..8].copy_from_slice(&(start as u32).to_le_bytes());
                e[8..10].copy_from_slice(&((start >> 32) as u16).to_le_bytes());
            }
        }
        n
    }

    fn found(n: &[u8], l: u32) -> u64 {
        match search(n, l).unwrap().1 {
            Step::Found(b) => b,
            Step::Down(_) => panic!("leaf expected"),
        }
    }

    #[test]
    fn leaf_lookups() {
        let n = node(
            0,
            4,
            &[(0, 4, 100), (10, 2, 200), (20, INIT_MAX_LEN + 3, 300)],
        );
        assert_eq!(found(&n, 0), 100);
        assert_eq!(found(&n, 3), 103);
        assert_eq!(found(&n, 4), 0, "hole after the first extent");
        assert_eq!(found(&n, 11), 201);
        assert_eq!(found(&n, 21), 0, "unwritten reads as a hole");
        assert_eq!(found(&n, 1000), 0);
    }

    #[test]
    fn index_leads_down() {
        let n = node(1, 4, &[(0, 0, 50), (100, 0, 60)]);
        assert!(matches!(search(&n, 99).unwrap().1, Step::Down(50)));
        assert!(matches!(search(&n, 100).unwrap().1, Step::Down(60)));
    }

    #[test]
    fn malformed_nodes_are_errors() {
        let mut n = node(0, 4, &[(0, 1, 1)]);
        n[0] = 0;
        assert!(search(&n, 0).is_err(), "magic");
        let mut n = node(0, 4, &[(0, 1, 1)]);
        n[2..4].copy_from_slice(&5u16.to_le_bytes());
        assert!(search(&n, 0).is_err(), "entries above max");
        let mut n = node(0, 4, &[(0, 1, 1)]);
        n[4..6].copy_from_slice(&9u16.to_le_bytes());
        assert!(search(&n, 0).is_err(), "max past the node");
        let n = node(0, 4, &[(5, 1, 1), (5, 1, 2)]);
        assert!(search(&n, 6).is_err(), "order");
        let n = node(9, 4, &[]);
        assert!(search(&n, 0).is_err(), "depth");
    }
}
