//! Hash-tree directory indexes (`dir_index`, "htree"): the on-disk views
//! of the index blocks ([`DxRootPacket`], [`DxNodePacket`], their `Repr`s
//! and [`DxEntries`]) and the indexed name lookup (`Ext2::dx_locate`).
//!
//! Layout ("ext4 Data Structures and Algorithms", section "Hash Tree
//! Directories"): block 0 of an indexed directory is the *dx_root*: a `.`
//! entry (rec_len 12), a `..` entry whose rec_len runs to the end of the
//! block (so a reader that ignores the index sees an ordinary directory
//! block), then `dx_root_info` (reserved_zero u32, hash_version u8,
//! info_length u8 = 8, indirect_levels u8, unused_flags u8) and the entry
//! array. Interior blocks (*dx_node*) start with an empty entry whose
//! rec_len is the whole block, then the entry array. An entry array
//! starts with `dx_countlimit` (limit u16, count u16), which takes the
//! place of entry 0's hash, followed by entry 0's block and `count - 1`
//! (hash u32, block u32) pairs sorted by hash; entry `i` covers the hashes
//! from its own up to the next entry's. Block numbers are logical blocks
//! of the directory. Leaves are ordinary directory blocks.
//!
//! A lookup hashes the name ([`crate::dirhash`]), binary-searches the
//! root and at most one node level (`indirect_levels` is 0 or 1 without
//! the largedir feature, which this driver refuses), scans the leaf, and
//! follows a run of equal hashes that a split left across several leaves:
//! an index hash with its low bit set says "this leaf continues the
//! previous one's last hash", as Linux's `ext4_htree_next_block` reads it.
//!
//! Untrusted input: every field is bounds-checked and validated (see
//! [`DxRootRepr::parse`], [`DxNodeRepr::parse`]). The first lookup in a
//! directory also checks that the index reaches every block but the root
//! exactly once (as e2fsck requires), and a miss is believed only if the
//! leaves read, and the leaves on either side of them, hold no name
//! hashing outside the range the index gives them (which exposes a wrong
//! hash version, seed or signedness and a damaged boundary). On anything
//! inconsistent the lookup gives up on the index: one log line, and the
//! directory is searched linearly from then on (until its size changes).
//! A bad index never fails a lookup; `e2fsck -fD` rebuilds it.
//!
//! The driver never writes an index: `Ext2::dir_add` clears
//! `EXT2_INDEX_FL` on a directory it changes (which the `dir_index`
//! compatible feature allows), and from then on lookups there are linear.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::dirhash::{dirhash, HashVersion};
use crate::format::*;
use crate::fs::{find_in_block, DirSlot, Ext2};

/// Offset of the root's entry array (after `.`, `..` and the info).
pub const DX_ROOT_ENTRIES: usize = 32;
/// Offset of a node's entry array (after the empty entry).
pub const DX_NODE_ENTRIES: usize = 8;
/// Bytes of one index entry (and of `dx_countlimit` plus entry 0's block).
pub const DX_ENTRY_LEN: usize = 8;
/// Bytes of `dx_tail` (a checksum after the entries) with `metadata_csum`.
pub const DX_TAIL_LEN: usize = 8;
/// The deepest index without the largedir feature: a root and one level
/// of nodes.
pub const MAX_INDIRECT_LEVELS: u8 = 1;
/// `dx_root_info.unused_flags` bit that readers must not ignore.
pub const HASH_FLAG_INCOMPAT: u8 = 0x1;

mod field {
    use core::ops::Range;
    type F = Range<usize>;
    // dx_root: the `.` and `..` entries, then dx_root_info.
    pub const DOT_INODE: F = 0..4;
    pub const DOT_REC_LEN: F = 4..6;
    pub const DOT_NAME_LEN: usize = 6;
    pub const DOT_NAME: usize = 8;
    pub const DOTDOT_INODE: F = 12..16;
    pub const DOTDOT_REC_LEN: F = 16..18;
    pub const DOTDOT_NAME_LEN: usize = 18;
    pub const DOTDOT_NAME: F = 20..22;
    pub const RESERVED_ZERO: F = 24..28;
    pub const HASH_VERSION: usize = 28;
    pub const INFO_LENGTH: usize = 29;
    pub const INDIRECT_LEVELS: usize = 30;
    pub const UNUSED_FLAGS: usize = 31;
    // dx_node: an empty directory entry covering the block.
    pub const FAKE_INODE: F = 0..4;
    pub const FAKE_REC_LEN: F = 4..6;
    pub const FAKE_NAME_LEN: usize = 6;
    // An entry array.
    pub const LIMIT: F = 0..2;
    pub const COUNT: F = 2..4;
}

/// What validating an index needs to know about its directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DxGeometry {
    /// The file-system block size.
    pub block_size: usize,
    /// Whether index blocks end with a checksum tail (`metadata_csum`).
    pub has_tail: bool,
    /// Blocks in the directory: index and leaf block numbers are below.
    pub dir_blocks: u64,
}

impl DxGeometry {
    fn tail(&self) -> usize {
        if self.has_tail {
            DX_TAIL_LEN
        } else {
            0
        }
    }

    /// The entry limit of a root block.
    pub fn root_limit(&self) -> usize {
        self.block_size
            .saturating_sub(DX_ROOT_ENTRIES + self.tail())
            / DX_ENTRY_LEN
    }

    /// The entry limit of a node block.
    pub fn node_limit(&self) -> usize {
        self.block_size
            .saturating_sub(DX_NODE_ENTRIES + self.tail())
            / DX_ENTRY_LEN
    }
}

// ----- dx_root -----------------------------------------------------------------

/// A view of a dx_root block.
#[derive(Debug, Clone)]
pub struct DxRootPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DxRootPacket<T> {
    /// Wraps `buffer` (a whole directory block), checking that the fixed
    /// part and the count/limit header fit.
    pub fn new_checked(buffer: T) -> Result<Self, FormatError> {
        if buffer.as_ref().len() < DX_ROOT_ENTRIES + DX_ENTRY_LEN {
            return Err(FormatError::Truncated);
        }
        Ok(DxRootPacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn dot_inode(&self) -> u32 {
        get32(self.b(), field::DOT_INODE)
    }
    pub fn dot_rec_len(&self) -> u16 {
        get16(self.b(), field::DOT_REC_LEN)
    }
    pub fn dot_name_len(&self) -> u8 {
        self.b()[field::DOT_NAME_LEN]
    }
    pub fn dot_name(&self) -> u8 {
        self.b()[field::DOT_NAME]
    }
    pub fn dotdot_inode(&self) -> u32 {
        get32(self.b(), field::DOTDOT_INODE)
    }
    pub fn dotdot_rec_len(&self) -> u16 {
        get16(self.b(), field::DOTDOT_REC_LEN)
    }
    pub fn dotdot_name_len(&self) -> u8 {
        self.b()[field::DOTDOT_NAME_LEN]
    }
    pub fn dotdot_name(&self) -> &[u8] {
        &self.b()[field::DOTDOT_NAME]
    }
    pub fn reserved_zero(&self) -> u32 {
        get32(self.b(), field::RESERVED_ZERO)
    }
    pub fn hash_version(&self) -> u8 {
        self.b()[field::HASH_VERSION]
    }
    pub fn info_length(&self) -> u8 {
        self.b()[field::INFO_LENGTH]
    }
    pub fn indirect_levels(&self) -> u8 {
        self.b()[field::INDIRECT_LEVELS]
    }
    pub fn unused_flags(&self) -> u8 {
        self.b()[field::UNUSED_FLAGS]
    }
    /// The entry array and everything after it.
    pub fn entries(&self) -> &[u8] {
        &self.b()[DX_ROOT_ENTRIES..]
    }
}

/// A parsed and validated dx_root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DxRootRepr {
    /// The inode of `.`.
    pub self_ino: u32,
    /// The inode of `..`.
    pub parent_ino: u32,
    /// The hash algorithm code (see [`HashVersion::for_directory`]).
    pub hash_version: u8,
    /// Levels of dx_node blocks below the root (0 or 1).
    pub indirect_levels: u8,
    /// The root's entries.
    pub entries: DxEntries,
}

impl DxRootRepr {
    /// Parses a root block, checking the `.` and `..` entries, the info
    /// (reserved field zero, info length 8, at most
    /// [`MAX_INDIRECT_LEVELS`], no incompatible hash flag) and the entry
    /// array (see [`DxEntries::parse`]). The hash version is not judged
    /// here: the lookup says which ones it implements.
    pub fn parse<T: AsRef<[u8]>>(
        p: &DxRootPacket<T>,
        geo: &DxGeometry,
    ) -> Result<DxRootRepr, FormatError> {
        if p.b().len() < geo.block_size {
            return Err(FormatError::Truncated);
        }
        if p.dot_rec_len() != 12 || p.dot_name_len() != 1 || p.dot_name() != b'.' {
            return Err(FormatError::Malformed("dx_root: no \".\" entry"));
        }
        if p.dotdot_name_len() != 2
            || p.dotdot_name() != b".."
            || p.dotdot_rec_len() as usize != geo.block_size - 12
        {
            return Err(FormatError::Malformed(
                "dx_root: \"..\" entry does not cover the block",
            ));
        }
        if p.reserved_zero() != 0 {
            return Err(FormatError::Malformed("dx_root: reserved field not zero"));
        }
        if p.info_length() != 8 {
            return Err(FormatError::Malformed("dx_root: info length not 8"));
        }
        if p.indirect_levels() > MAX_INDIRECT_LEVELS {
            return Err(FormatError::Malformed("dx_root: too many indirect levels"));
        }
        if p.unused_flags() & HASH_FLAG_INCOMPAT != 0 {
            return Err(FormatError::Malformed(
                "dx_root: incompatible hash flag set",
            ));
        }
        let entries = DxEntries::parse(p.entries(), geo.root_limit(), geo.dir_blocks, 0, None)?;
        Ok(DxRootRepr {
            self_ino: p.dot_inode(),
            parent_ino: p.dotdot_inode(),
            hash_version: p.hash_version(),
            indirect_levels: p.indirect_levels(),
            entries,
        })
    }

    /// Bytes [`DxRootRepr::emit`] writes: a whole block.
    pub fn buffer_len(&self, geo: &DxGeometry) -> usize {
        geo.block_size
    }

    /// Writes the root block into `buf` (a zeroed block; the bytes after
    /// the entries are left alone). `Truncated` if `buf` is shorter than
    /// a block or the entries exceed the root's limit.
    pub fn emit(
        &self,
        buf: &mut [u8],
        geo: &DxGeometry,
        has_filetype: bool,
    ) -> Result<(), FormatError> {
        if buf.len() < geo.block_size || geo.block_size < DX_ROOT_ENTRIES + DX_ENTRY_LEN {
            return Err(FormatError::Truncated);
        }
        let t = if has_filetype { ftype::DIR } else { 0 };
        DirEntryRepr {
            inode: self.self_ino,
            rec_len: 12,
            file_type: t,
            name: b".",
        }
        .emit(buf, has_filetype)?;
        DirEntryRepr {
            inode: self.parent_ino,
            rec_len: (geo.block_size - 12) as u16,
            file_type: t,
            name: b"..",
        }
        .emit(&mut buf[12..], has_filetype)?;
        put32(buf, field::RESERVED_ZERO, 0);
        buf[field::HASH_VERSION] = self.hash_version;
        buf[field::INFO_LENGTH] = 8;
        buf[field::INDIRECT_LEVELS] = self.indirect_levels;
        buf[field::UNUSED_FLAGS] = 0;
        self.entries
            .emit(&mut buf[DX_ROOT_ENTRIES..], geo.root_limit())
    }
}

// ----- dx_node -----------------------------------------------------------------

/// A view of a dx_node block.
#[derive(Debug, Clone)]
pub struct DxNodePacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DxNodePacket<T> {
    /// Wraps `buffer` (a whole directory block), checking that the empty
    /// entry and the count/limit header fit.
    pub fn new_checked(buffer: T) -> Result<Self, FormatError> {
        if buffer.as_ref().len() < DX_NODE_ENTRIES + DX_ENTRY_LEN {
            return Err(FormatError::Truncated);
        }
        Ok(DxNodePacket { buffer })
    }

    fn b(&self) -> &[u8] {
        self.buffer.as_ref()
    }
    pub fn fake_inode(&self) -> u32 {
        get32(self.b(), field::FAKE_INODE)
    }
    pub fn fake_rec_len(&self) -> u16 {
        get16(self.b(), field::FAKE_REC_LEN)
    }
    pub fn fake_name_len(&self) -> u8 {
        self.b()[field::FAKE_NAME_LEN]
    }
    /// The entry array and everything after it.
    pub fn entries(&self) -> &[u8] {
        &self.b()[DX_NODE_ENTRIES..]
    }
}

/// A parsed and validated dx_node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DxNodeRepr {
    pub entries: DxEntries,
}

impl DxNodeRepr {
    /// Parses a node block reached through a parent entry covering the
    /// hashes `lower..upper` (`upper` inclusive, `None`: unbounded):
    /// checks the empty entry and the entry array (see
    /// [`DxEntries::parse`]).
    pub fn parse<T: AsRef<[u8]>>(
        p: &DxNodePacket<T>,
        geo: &DxGeometry,
        lower: u32,
        upper: Option<u32>,
    ) -> Result<DxNodeRepr, FormatError> {
        if p.b().len() < geo.block_size {
            return Err(FormatError::Truncated);
        }
        if p.fake_inode() != 0
            || p.fake_name_len() != 0
            || p.fake_rec_len() as usize != geo.block_size
        {
            return Err(FormatError::Malformed(
                "dx_node: block does not start with an empty entry",
            ));
        }
        let entries =
            DxEntries::parse(p.entries(), geo.node_limit(), geo.dir_blocks, lower, upper)?;
        Ok(DxNodeRepr { entries })
    }

    /// Writes the node block into `buf` (see [`DxRootRepr::emit`]).
    pub fn emit(&self, buf: &mut [u8], geo: &DxGeometry) -> Result<(), FormatError> {
        if buf.len() < geo.block_size || geo.block_size < DX_NODE_ENTRIES + DX_ENTRY_LEN {
            return Err(FormatError::Truncated);
        }
        put32(buf, field::FAKE_INODE, 0);
        put16(buf, field::FAKE_REC_LEN, geo.block_size as u16);
        buf[field::FAKE_NAME_LEN] = 0;
        buf[field::FAKE_NAME_LEN + 1] = 0;
        self.entries
            .emit(&mut buf[DX_NODE_ENTRIES..], geo.node_limit())
    }
}

// ----- entry arrays ------------------------------------------------------------

/// One index entry: the hashes from `hash` on live in logical block
/// `block` (or below it, for a root entry above a node level).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DxEntry {
    pub hash: u32,
    pub block: u32,
}

/// A validated entry array: at least one entry, hashes sorted, every
/// block inside the directory. Entry 0's hash is the lower bound the
/// array was parsed with (it has none on disk).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DxEntries {
    entries: Vec<DxEntry>,
    upper: Option<u32>,
}

/// The block field's high four bits are reserved (Linux masks them off,
/// `dx_get_block`).
const BLOCK_MASK: u32 = 0x0fff_ffff;

impl DxEntries {
    /// Builds an array from entries (entry 0's hash is its lower bound).
    /// For emitting; lookups use [`DxEntries::parse`].
    pub fn new(entries: Vec<DxEntry>, upper: Option<u32>) -> DxEntries {
        DxEntries { entries, upper }
    }

    /// Parses the array at the start of `buf`: the limit must be `limit`
    /// (what the block size gives), the count between 1 and the limit,
    /// hashes non-decreasing and within `lower..=upper`, and every block
    /// between 1 and `dir_blocks - 1` (block 0 is the root).
    pub fn parse(
        buf: &[u8],
        limit: usize,
        dir_blocks: u64,
        lower: u32,
        upper: Option<u32>,
    ) -> Result<DxEntries, FormatError> {
        if buf.len() < DX_ENTRY_LEN {
            return Err(FormatError::Truncated);
        }
        let on_disk_limit = get16(buf, field::LIMIT) as usize;
        let count = get16(buf, field::COUNT) as usize;
        if on_disk_limit != limit {
            return Err(FormatError::Malformed(
                "index limit does not match the block size",
            ));
        }
        if count == 0 || count > limit {
            return Err(FormatError::Malformed(
                "index count is zero or above the limit",
            ));
        }
        if buf.len() < count * DX_ENTRY_LEN {
            return Err(FormatError::Truncated);
        }
        let mut entries = Vec::with_capacity(count);
        let mut prev = lower & !1;
        for i in 0..count {
            let at = i * DX_ENTRY_LEN;
            let hash = if i == 0 {
                lower
            } else {
                get32(buf, at..at + 4)
            };
            let block = get32(buf, at + 4..at + 8) & BLOCK_MASK;
            if block == 0 || block as u64 >= dir_blocks {
                return Err(FormatError::Malformed(
                    "index entry block outside the directory",
                ));
            }
            if hash < prev || upper.is_some_and(|u| hash > u) {
                return Err(FormatError::Malformed("index hashes out of order"));
            }
            prev = hash;
            entries.push(DxEntry { hash, block });
        }
        Ok(DxEntries { entries, upper })
    }

    /// Number of entries (at least 1 once parsed).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries (never, once parsed).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entry `i`.
    pub fn get(&self, i: usize) -> Option<DxEntry> {
        self.entries.get(i).copied()
    }

    /// The entry whose range holds `hash`: the last one whose hash is at
    /// most `hash` (entry 0 when none of the others is).
    pub fn search(&self, hash: u32) -> usize {
        match self.entries.get(1..) {
            Some(rest) => rest.partition_point(|e| e.hash <= hash),
            None => 0,
        }
    }

    /// The hashes entry `i` covers: from its own hash up to (not
    /// including) the next entry's, or the array's upper bound after the
    /// last (`None`: unbounded).
    pub fn hash_range(&self, i: usize) -> (u32, Option<u32>) {
        let lo = self.entries.get(i).map_or(0, |e| e.hash);
        let hi = match self.entries.get(i + 1) {
            Some(e) => Some(e.hash),
            None => self.upper,
        };
        (lo, hi)
    }

    /// Writes the array (count, `limit`, entries) at the start of `buf`.
    pub fn emit(&self, buf: &mut [u8], limit: usize) -> Result<(), FormatError> {
        let n = self.entries.len();
        if n == 0 || n > limit || buf.len() < n * DX_ENTRY_LEN || limit > u16::MAX as usize {
            return Err(FormatError::Truncated);
        }
        put16(buf, field::LIMIT, limit as u16);
        put16(buf, field::COUNT, n as u16);
        for (i, e) in self.entries.iter().enumerate() {
            let at = i * DX_ENTRY_LEN;
            if i > 0 {
                put32(buf, at..at + 4, e.hash);
            }
            put32(buf, at + 4..at + 8, e.block);
        }
        Ok(())
    }
}

// ----- the lookup --------------------------------------------------------------

/// Directories whose index has been judged are remembered, up to this
/// many (then forgotten all at once and judged again).
const JUDGED_MAX: usize = 4096;

/// What a lookup needs to hash names and read leaves.
struct HashCtx {
    version: HashVersion,
    seed: [u8; 16],
    hash: u32,
    bs: usize,
    ft: bool,
}

/// A position in an index: an entry of the root and, with a node level,
/// an entry of the node it points to.
#[derive(Clone)]
struct Cursor {
    root_at: usize,
    node: Option<(DxEntries, usize)>,
}

impl Cursor {
    /// The leaf here and the hashes the index gives it.
    fn leaf(&self, root: &DxRootRepr) -> Result<(u32, u32, Option<u32>), String> {
        let (entries, at) = match &self.node {
            Some((n, at)) => (n, *at),
            None => (&root.entries, self.root_at),
        };
        let e = entries
            .get(at)
            .ok_or_else(|| String::from("index position out of range"))?;
        let (lo, hi) = entries.hash_range(at);
        Ok((e.block, lo, hi))
    }
}

impl Ext2 {
    /// Whether lookups in `dir` may use its hash index: the inode says it
    /// is indexed, the file system has the `dir_index` feature (Linux
    /// ignores the flag without it, and so do we), and the index has not
    /// been found bad at this directory size.
    pub(crate) fn is_indexed(&self, ino: u32, dir: &InodeRepr) -> bool {
        dir.flags & iflags::INDEX != 0
            && self.sb.feature_compat & feature::COMPAT_DIR_INDEX != 0
            && self.dx_judged.get(&ino) != Some(&(dir.size, false))
    }

    /// Records that the index of `ino` is bad (logging why, once) so
    /// that later lookups go straight to the linear search.
    pub(crate) fn dx_unusable(&mut self, ino: u32, dir: &InodeRepr, why: &str) {
        if self.cache.has_aborted() {
            // A block was not cached (a no-miss attempt, see `node.rs`):
            // the lookup is retried, and the index is not to blame.
            return;
        }
        self.log(&format!(
            "directory inode {ino}: hash index unusable ({why}); searching it linearly (e2fsck -fD rebuilds it)"
        ));
        self.dx_judge(ino, dir.size, false);
    }

    fn dx_judge(&mut self, ino: u32, size: u64, usable: bool) {
        if self.dx_judged.len() >= JUDGED_MAX {
            self.dx_judged.clear();
        }
        self.dx_judged.insert(ino, (size, usable));
    }

    /// Looks `name` up through the index of directory `ino`: the slot of
    /// its entry, or `None` when the index says it is absent. `Err`
    /// explains why the index cannot be trusted (the caller then scans
    /// linearly); an I/O error reading an index block is one such reason.
    ///
    /// A miss is believed only when the leaves read agree with the index
    /// about the hashes they hold, and so do the leaves just before and
    /// after them (a damaged boundary between two leaves shows in one of
    /// the two); the first lookup in a directory also checks that the
    /// index reaches every block exactly once, as e2fsck requires, which
    /// catches entries lost or pointed elsewhere.
    pub(crate) fn dx_locate(
        &mut self,
        ino: u32,
        dir: &InodeRepr,
        name: &[u8],
    ) -> Result<Option<DirSlot>, String> {
        let geo = DxGeometry {
            block_size: self.g.bs as usize,
            has_tail: self.sb.feature_ro_compat & feature::RO_COMPAT_METADATA_CSUM != 0,
            dir_blocks: self.dir_blocks(dir),
        };
        if geo.dir_blocks < 2 {
            return Err("an indexed directory needs at least two blocks".into());
        }
        let root = {
            let (_, data) = self.dx_block(ino, dir, 0)?;
            DxRootPacket::new_checked(data)
                .and_then(|p| DxRootRepr::parse(&p, &geo))
                .map_err(|e| format!("root block: {}", why(e)))?
        };
        let version = HashVersion::for_directory(root.hash_version, self.sb.flags);
        let seed = self.sb.hash_seed;
        let hash = dirhash(version, &seed, name)
            .ok_or_else(|| {
                format!(
                    "hash version {} ({}) not supported",
                    root.hash_version,
                    version.name()
                )
            })?
            .major;
        if self.dx_judged.get(&ino) != Some(&(dir.size, true)) {
            self.dx_check_tree(ino, dir, &geo, &root)?;
            self.dx_judge(ino, dir.size, true);
        }
        let ctx = HashCtx {
            version,
            seed,
            hash,
            bs: geo.block_size,
            ft: self.g.has_filetype,
        };
        let mut cur = Cursor {
            root_at: root.entries.search(hash),
            node: None,
        };
        if root.indirect_levels > 0 {
            let n = self.dx_node(ino, dir, &root.entries, cur.root_at, &geo)?;
            let at = n.search(hash);
            cur.node = Some((n, at));
        }
        let first = cur.clone();
        // Each round reads one leaf; a run of equal hashes cannot span
        // more leaves than the directory has.
        for _ in 0..geo.dir_blocks {
            if let Some(slot) = self.dx_leaf(ino, dir, &root, &cur, &ctx, Some(name))? {
                return Ok(Some(slot));
            }
            // The next leaf continues this run only if its hash, without
            // the collision bit, is ours (Linux's ext4_htree_next_block).
            match self.dx_step(ino, dir, &geo, &root, &mut cur, true)? {
                Some(next) if next & !1 == hash => continue,
                Some(_) => {
                    self.dx_leaf(ino, dir, &root, &cur, &ctx, None)?;
                }
                None => {}
            }
            let mut before = first;
            if self
                .dx_step(ino, dir, &geo, &root, &mut before, false)?
                .is_some()
            {
                self.dx_leaf(ino, dir, &root, &before, &ctx, None)?;
            }
            return Ok(None);
        }
        Err("hash run longer than the directory".into())
    }

    /// Reads the leaf at `cur`: the slot of `name` if it is there, and
    /// `Err` if the leaf holds a name outside the hashes the index gives
    /// it (checked on a miss, or always when `name` is `None`).
    fn dx_leaf(
        &mut self,
        ino: u32,
        dir: &InodeRepr,
        root: &DxRootRepr,
        cur: &Cursor,
        ctx: &HashCtx,
        name: Option<&[u8]>,
    ) -> Result<Option<DirSlot>, String> {
        let (leaf, lo, hi) = cur.leaf(root)?;
        let (pblk, data) = self.dx_block(ino, dir, leaf as u64)?;
        if let Some(name) = name {
            match find_in_block(data, ctx.bs, ctx.ft, name) {
                Ok(Some(hit)) => return Ok(Some(hit.at(pblk))),
                Ok(None) => {}
                Err(off) => return Err(format!("leaf block {leaf}: bad entry at offset {off}")),
            }
        }
        match stray_hash(data, ctx.bs, ctx.ft, ctx.version, &ctx.seed, lo, hi) {
            Some(stray) => Err(format!(
                "leaf block {leaf} holds a name with hash {stray:#010x}, outside {lo:#010x}..{} (looking up hash {:#010x})",
                hi.map_or(String::from("end"), |h| format!("{h:#010x}")),
                ctx.hash
            )),
            None => Ok(None),
        }
    }

    /// Moves `cur` to the next (`forward`) or previous leaf in hash
    /// order, crossing into the neighbouring node when needed: the index
    /// hash of the leaf it lands on, or `None` at either end.
    fn dx_step(
        &mut self,
        ino: u32,
        dir: &InodeRepr,
        geo: &DxGeometry,
        root: &DxRootRepr,
        cur: &mut Cursor,
        forward: bool,
    ) -> Result<Option<u32>, String> {
        if let Some((n, at)) = &mut cur.node {
            let inside = if forward {
                (*at + 1 < n.len()).then(|| *at + 1)
            } else {
                at.checked_sub(1)
            };
            if let Some(to) = inside {
                *at = to;
                return Ok(n.get(to).map(|e| e.hash));
            }
        }
        let to = if forward {
            (cur.root_at + 1 < root.entries.len()).then(|| cur.root_at + 1)
        } else {
            cur.root_at.checked_sub(1)
        };
        let Some(to) = to else {
            return Ok(None);
        };
        cur.root_at = to;
        if cur.node.is_some() {
            let n = self.dx_node(ino, dir, &root.entries, to, geo)?;
            let at = if forward {
                0
            } else {
                n.len().saturating_sub(1)
            };
            let hash = n.hash_range(at).0;
            cur.node = Some((n, at));
            return Ok(Some(hash));
        }
        Ok(root.entries.get(to).map(|e| e.hash))
    }

    /// Checks that the root and its nodes reach every block of the
    /// directory but the root exactly once (e2fsck's "block not
    /// referenced" and "referenced twice" checks). Memory grows with the
    /// index read, not with the size the inode claims.
    fn dx_check_tree(
        &mut self,
        ino: u32,
        dir: &InodeRepr,
        geo: &DxGeometry,
        root: &DxRootRepr,
    ) -> Result<(), String> {
        let mut blocks = Vec::new();
        for i in 0..root.entries.len() {
            let Some(e) = root.entries.get(i) else { break };
            blocks.push(e.block);
            if root.indirect_levels > 0 {
                let node = self.dx_node(ino, dir, &root.entries, i, geo)?;
                blocks.extend((0..node.len()).filter_map(|j| node.get(j)).map(|e| e.block));
            }
        }
        blocks.sort_unstable();
        // Parsing kept every block in 1..dir_blocks, so the blocks are
        // exactly those when sorted they count up from 1.
        for (i, &b) in blocks.iter().enumerate() {
            let want = i as u64 + 1;
            if b as u64 > want {
                return Err(format!("block {want} not referenced by the index"));
            }
            if (b as u64) < want {
                return Err(format!("block {b} referenced twice by the index"));
            }
        }
        if (blocks.len() as u64) + 1 < geo.dir_blocks {
            return Err(format!(
                "block {} not referenced by the index",
                blocks.len() + 1
            ));
        }
        Ok(())
    }

    /// Reads logical block `lblk` of a directory for the index: its
    /// physical block and data. Holes and I/O errors are reasons to give
    /// up on the index.
    fn dx_block(&mut self, ino: u32, dir: &InodeRepr, lblk: u64) -> Result<(u64, &[u8]), String> {
        let pblk = self
            .bmap(ino, dir, lblk)
            .map_err(|e| format!("block {lblk}: {e}"))?;
        if pblk == 0 {
            return Err(format!("block {lblk} is a hole"));
        }
        let data = self
            .cache
            .read(pblk as u64)
            .map_err(|e| format!("block {lblk}: {e}"))?;
        Ok((pblk as u64, data))
    }

    /// Reads the node that entry `at` of the root points to.
    fn dx_node(
        &mut self,
        ino: u32,
        dir: &InodeRepr,
        root: &DxEntries,
        at: usize,
        geo: &DxGeometry,
    ) -> Result<DxEntries, String> {
        let e = root
            .get(at)
            .ok_or_else(|| String::from("index position out of range"))?;
        let (lo, hi) = root.hash_range(at);
        let (_, data) = self.dx_block(ino, dir, e.block as u64)?;
        DxNodePacket::new_checked(data)
            .and_then(|p| DxNodeRepr::parse(&p, geo, lo, hi))
            .map(|n| n.entries)
            .map_err(|err| format!("node block {}: {}", e.block, why(err)))
    }
}

/// The hash of the first live entry of a leaf block outside the range
/// `lo..hi` that the index gives the leaf (`lo` without its collision
/// bit; `hi` exclusive: names hash to even values, so a next entry
/// `h | 1` admits `h` here), if any.
fn stray_hash(
    data: &[u8],
    bs: usize,
    ft: bool,
    version: HashVersion,
    seed: &[u8; 16],
    lo: u32,
    hi: Option<u32>,
) -> Option<u32> {
    let mut off = 0;
    while off < bs {
        let p = DirEntryPacket::new_checked(data.get(off..)?, ft).ok()?;
        if p.inode() != 0 {
            let h = dirhash(version, seed, p.name())?.major;
            if h < lo & !1 || hi.is_some_and(|hi| h >= hi) {
                return Some(h);
            }
        }
        off += p.rec_len() as usize;
    }
    None
}

fn why(e: FormatError) -> &'static str {
    match e {
        FormatError::Truncated => "truncated",
        FormatError::BadMagic => "bad magic",
        FormatError::Malformed(m) => m,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const GEO: DxGeometry = DxGeometry {
        block_size: 1024,
        has_tail: false,
        dir_blocks: 100,
    };

    fn root(levels: u8, entries: &[(u32, u32)]) -> DxRootRepr {
        DxRootRepr {
            self_ino: 12,
            parent_ino: 2,
            hash_version: 1,
            indirect_levels: levels,
            entries: DxEntries::new(
                entries
                    .iter()
                    .map(|&(hash, block)| DxEntry { hash, block })
                    .collect(),
                None,
            ),
        }
    }

    fn root_block(r: &DxRootRepr) -> Vec<u8> {
        let mut buf = vec![0u8; GEO.block_size];
        r.emit(&mut buf, &GEO, true).unwrap();
        buf
    }

    fn parse_root(buf: &[u8]) -> Result<DxRootRepr, FormatError> {
        DxRootPacket::new_checked(buf).and_then(|p| DxRootRepr::parse(&p, &GEO))
    }

    #[test]
    fn limits_follow_the_block_size() {
        assert_eq!(GEO.root_limit(), 124);
        assert_eq!(GEO.node_limit(), 127);
        let g4 = DxGeometry {
            block_size: 4096,
            ..GEO
        };
        assert_eq!(g4.root_limit(), 508);
        assert_eq!(g4.node_limit(), 511);
        let csum = DxGeometry {
            has_tail: true,
            ..g4
        };
        assert_eq!(csum.root_limit(), 507);
        assert_eq!(csum.node_limit(), 510);
    }

    #[test]
    fn root_round_trip_and_layout() {
        let r = root(1, &[(0, 1), (0x1000, 2), (0x2001, 3), (0x2001, 4)]);
        let buf = root_block(&r);
        // The fake "..": rec_len covers the rest of the block.
        assert_eq!(&buf[16..18], &(1024u16 - 12).to_le_bytes());
        assert_eq!(&buf[24..32], &[0, 0, 0, 0, 1, 8, 1, 0]);
        // dx_countlimit: limit 124, count 4, then entry 0's block.
        assert_eq!(&buf[32..40], &[124, 0, 4, 0, 1, 0, 0, 0]);
        assert_eq!(parse_root(&buf).unwrap(), r);
    }

    #[test]
    fn root_bad_length() {
        let buf = root_block(&root(0, &[(0, 1)]));
        assert_eq!(
            DxRootPacket::new_checked(&buf[..39]).err(),
            Some(FormatError::Truncated)
        );
        // The packet fits but the block is shorter than the geometry says.
        assert_eq!(parse_root(&buf[..512]), Err(FormatError::Truncated));
    }

    #[test]
    fn root_bad_fields() {
        let good = root_block(&root(0, &[(0, 1), (10, 2)]));
        assert!(parse_root(&good).is_ok());
        let bad = |at: usize, v: u8| {
            let mut b = good.clone();
            b[at] = v;
            parse_root(&b)
        };
        // "." rec_len, ".." rec_len, reserved_zero, info length,
        // indirect levels, incompatible hash flag.
        for (at, v) in [(4, 16), (16, 0), (24, 1), (29, 12), (30, 2), (31, 1)] {
            assert!(
                matches!(bad(at, v), Err(FormatError::Malformed(_))),
                "byte {at} = {v} accepted"
            );
        }
        // Other unused flags and hash versions are not the parser's call.
        assert!(bad(31, 2).is_ok());
        assert_eq!(bad(28, 0x55).unwrap().hash_version, 0x55);
        // Limit wrong, count zero or above the limit.
        for (at, v) in [(32, 123), (34, 0), (34, 125)] {
            assert!(matches!(bad(at, v), Err(FormatError::Malformed(_))));
        }
        let mut b = good.clone();
        b[34..36].copy_from_slice(&200u16.to_le_bytes());
        assert!(parse_root(&b).is_err());
    }

    #[test]
    fn entries_sorted_and_inside_the_directory() {
        let ok = root_block(&root(0, &[(0, 1), (8, 2), (8, 3), (9, 4)]));
        assert!(parse_root(&ok).is_ok());
        let unsorted = root_block(&root(0, &[(0, 1), (8, 2), (6, 3)]));
        assert!(parse_root(&unsorted).is_err());
        let outside = root_block(&root(0, &[(0, 1), (8, 100)]));
        assert!(parse_root(&outside).is_err());
        let to_root = root_block(&root(0, &[(0, 0)]));
        assert!(parse_root(&to_root).is_err());
        // The top four bits of a block number are masked off.
        let mut high = root_block(&root(0, &[(0, 1), (8, 2)]));
        high[47] = 0xF0;
        assert_eq!(parse_root(&high).unwrap().entries.get(1).unwrap().block, 2);
    }

    #[test]
    fn node_round_trip_and_bounds() {
        let n = DxNodeRepr {
            entries: DxEntries::new(
                vec![
                    DxEntry {
                        hash: 0x100,
                        block: 5,
                    },
                    DxEntry {
                        hash: 0x180,
                        block: 6,
                    },
                ],
                Some(0x200),
            ),
        };
        let mut buf = vec![0u8; 1024];
        n.emit(&mut buf, &GEO).unwrap();
        assert_eq!(&buf[..12], &[0, 0, 0, 0, 0, 4, 0, 0, 127, 0, 2, 0]);
        let parse = |b: &[u8], lo, hi| {
            DxNodePacket::new_checked(b).and_then(|p| DxNodeRepr::parse(&p, &GEO, lo, hi))
        };
        assert_eq!(parse(&buf, 0x100, Some(0x200)).unwrap(), n);
        // A hash beyond the parent's range, or below it.
        assert!(parse(&buf, 0x100, Some(0x17f)).is_err());
        assert!(parse(&buf, 0x190, Some(0x200)).is_err());
        assert_eq!(
            DxNodePacket::new_checked(&buf[..15]).err(),
            Some(FormatError::Truncated)
        );
        assert_eq!(parse(&buf[..1000], 0, None), Err(FormatError::Truncated));
        // Not an empty entry first: a leaf, say.
        let mut leaf = buf.clone();
        leaf[0] = 7;
        assert!(parse(&leaf, 0x100, None).is_err());
        // Node limit differs from the root's.
        let mut lim = buf.clone();
        lim[8] = 124;
        assert!(parse(&lim, 0x100, None).is_err());
    }

    #[test]
    fn search_picks_the_last_entry_at_or_below() {
        let e = root(0, &[(0, 1), (100, 2), (201, 3), (201, 4), (300, 5)]).entries;
        assert_eq!(e.search(0), 0);
        assert_eq!(e.search(98), 0);
        assert_eq!(e.search(100), 1);
        // 200 is below its continuation entry 201: the run starts in the
        // leaf before.
        assert_eq!(e.search(200), 1);
        assert_eq!(e.search(202), 3);
        assert_eq!(e.search(u32::MAX), 4);
        assert_eq!(e.hash_range(1), (100, Some(201)));
        assert_eq!(e.hash_range(4), (300, None));
    }

    #[test]
    fn stray_names_are_found() {
        // A leaf holding "a" and "b"; their legacy hashes bound the range.
        let v = HashVersion::Legacy;
        let seed = [0u8; 16];
        let ha = dirhash(v, &seed, b"a").unwrap().major;
        let hb = dirhash(v, &seed, b"b").unwrap().major;
        let mut leaf = vec![0u8; 1024];
        DirEntryRepr {
            inode: 20,
            rec_len: 12,
            file_type: 1,
            name: b"a",
        }
        .emit(&mut leaf, true)
        .unwrap();
        DirEntryRepr {
            inode: 21,
            rec_len: 1012,
            file_type: 1,
            name: b"b",
        }
        .emit(&mut leaf[12..], true)
        .unwrap();
        let (lo, hi) = (ha.min(hb), ha.max(hb));
        assert_eq!(
            stray_hash(&leaf, 1024, true, v, &seed, lo, Some(hi + 2)),
            None
        );
        assert_eq!(stray_hash(&leaf, 1024, true, v, &seed, lo | 1, None), None);
        assert_eq!(
            stray_hash(&leaf, 1024, true, v, &seed, lo, Some(hi)),
            Some(hi)
        );
        assert_eq!(
            stray_hash(&leaf, 1024, true, v, &seed, lo + 2, None),
            Some(lo)
        );
    }
}
