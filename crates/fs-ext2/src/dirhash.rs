//! Directory-name hashes of hash-indexed (`dir_index`, "htree")
//! directories: the legacy hash (`dx_hack_hash`), half-MD4 and TEA, each
//! in a signed and an unsigned variant.
//!
//! The algorithms are the ones the ext2/ext3/ext4 documentation names for
//! `dx_root.info.hash_version` ("ext4 Data Structures and Algorithms",
//! section "Hash Tree Directories"): the name is cut into 32-byte
//! (half-MD4) or 16-byte (TEA) pieces, each packed into 32-bit words with
//! the name's length as padding and mixed into a four-word state that
//! starts from the superblock's `s_hash_seed` (or the MD4 initial values
//! when the seed is all zero). The "signed" variants read name bytes as
//! C `signed char`, which changes the hash of names with bytes >= 0x80;
//! which one a file system uses is recorded in the superblock's `s_flags`
//! ([`crate::format::sflags`]) and applied with
//! [`HashVersion::for_directory`].
//!
//! The result's low bit is always clear: in an index the low bit of a
//! hash marks a leaf that continues the previous one's run of equal
//! hashes (see `htree`).
//!
//! Neighbours: `htree` (the index lookup) uses [`dirhash`]; the values
//! are checked against e2fsprogs' `debugfs dx_hash` in the tests below and
//! in the `ext2_htree` integration test.

/// A directory hash algorithm (`dx_root.info.hash_version`, and the
/// superblock's `s_def_hash_version` for new directories).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashVersion {
    /// `dx_hack_hash`, bytes as signed chars (0).
    Legacy,
    /// Half-MD4, signed (1).
    HalfMd4,
    /// TEA, signed (2).
    Tea,
    /// `dx_hack_hash`, unsigned (3).
    LegacyUnsigned,
    /// Half-MD4, unsigned (4).
    HalfMd4Unsigned,
    /// TEA, unsigned (5).
    TeaUnsigned,
    /// SipHash (6), used only by encrypted case-folded directories; not
    /// implemented.
    SipHash,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for HashVersion {
    fn from(v: u8) -> HashVersion {
        match v {
            0 => HashVersion::Legacy,
            1 => HashVersion::HalfMd4,
            2 => HashVersion::Tea,
            3 => HashVersion::LegacyUnsigned,
            4 => HashVersion::HalfMd4Unsigned,
            5 => HashVersion::TeaUnsigned,
            6 => HashVersion::SipHash,
            n => HashVersion::Unknown(n),
        }
    }
}

impl From<HashVersion> for u8 {
    fn from(v: HashVersion) -> u8 {
        match v {
            HashVersion::Legacy => 0,
            HashVersion::HalfMd4 => 1,
            HashVersion::Tea => 2,
            HashVersion::LegacyUnsigned => 3,
            HashVersion::HalfMd4Unsigned => 4,
            HashVersion::TeaUnsigned => 5,
            HashVersion::SipHash => 6,
            HashVersion::Unknown(n) => n,
        }
    }
}

impl HashVersion {
    /// The algorithm a directory whose `dx_root` says `root_version`
    /// uses on a file system with superblock flags `s_flags`.
    ///
    /// An index records only the base algorithm (0, 1 or 2); whether name
    /// bytes are signed is a property of the file system: the
    /// `EXT2_FLAGS_UNSIGNED_HASH` flag selects the unsigned variant, and
    /// `EXT2_FLAGS_SIGNED_HASH` (or, as Linux and e2fsprogs do on x86 and
    /// most other hosts, neither flag) the signed one. Explicit unsigned
    /// codes (3 to 5) are taken as they are.
    pub fn for_directory(root_version: u8, s_flags: u32) -> HashVersion {
        let unsigned = s_flags & crate::format::sflags::UNSIGNED_HASH != 0;
        match HashVersion::from(root_version) {
            HashVersion::Legacy if unsigned => HashVersion::LegacyUnsigned,
            HashVersion::HalfMd4 if unsigned => HashVersion::HalfMd4Unsigned,
            HashVersion::Tea if unsigned => HashVersion::TeaUnsigned,
            v => v,
        }
    }

    /// The name e2fsprogs uses for the algorithm, for messages.
    pub fn name(self) -> &'static str {
        match self {
            HashVersion::Legacy => "legacy",
            HashVersion::HalfMd4 => "half_md4",
            HashVersion::Tea => "tea",
            HashVersion::LegacyUnsigned => "legacy_unsigned",
            HashVersion::HalfMd4Unsigned => "half_md4_unsigned",
            HashVersion::TeaUnsigned => "tea_unsigned",
            HashVersion::SipHash => "siphash",
            HashVersion::Unknown(_) => "unknown",
        }
    }

    fn is_signed(self) -> bool {
        matches!(
            self,
            HashVersion::Legacy | HashVersion::HalfMd4 | HashVersion::Tea
        )
    }
}

/// A name's hash: `major` orders the index (low bit clear), `minor` is
/// the second word some algorithms produce (used by readdir cookies on
/// Linux, not by lookups).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirHash {
    pub major: u32,
    pub minor: u32,
}

/// Hashes `name` with `version` and the superblock's `s_hash_seed`
/// (16 bytes, four little-endian words; all zero means "no seed").
/// `None` for algorithms not implemented ([`HashVersion::SipHash`],
/// unknown codes).
pub fn dirhash(version: HashVersion, seed: &[u8; 16], name: &[u8]) -> Option<DirHash> {
    let mut state = MD4_INIT;
    if seed.iter().any(|&b| b != 0) {
        for (i, w) in state.iter_mut().enumerate() {
            *w = u32::from_le_bytes([
                seed[4 * i],
                seed[4 * i + 1],
                seed[4 * i + 2],
                seed[4 * i + 3],
            ]);
        }
    }
    let signed = version.is_signed();
    let (major, minor) = match version {
        HashVersion::Legacy | HashVersion::LegacyUnsigned => (legacy(name, signed), 0),
        HashVersion::HalfMd4 | HashVersion::HalfMd4Unsigned => {
            for chunk in pieces(name, 32) {
                let words = pack(chunk, 8, signed);
                half_md4_transform(&mut state, &words);
            }
            (state[1], state[2])
        }
        HashVersion::Tea | HashVersion::TeaUnsigned => {
            for chunk in pieces(name, 16) {
                let words = pack(chunk, 4, signed);
                tea_transform(&mut state, &words);
            }
            (state[0], state[1])
        }
        HashVersion::SipHash | HashVersion::Unknown(_) => return None,
    };
    let mut major = major & !1;
    // The largest hash is reserved as the end-of-directory marker of
    // 32-bit readdir cookies.
    if major == HTREE_EOF_32 << 1 {
        major = (HTREE_EOF_32 - 1) << 1;
    }
    Some(DirHash { major, minor })
}

// ----- helpers -----------------------------------------------------------------

/// The MD4 initial state, the default seed.
const MD4_INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
/// End-of-directory marker of 32-bit hash cookies.
const HTREE_EOF_32: u32 = 0x7fff_ffff;

/// The successive tails of `name`, each cut to at most `size` bytes: the
/// packing below pads with the length of the whole remaining tail, not
/// of the piece, so each piece is handed over with everything after it.
fn pieces(name: &[u8], size: usize) -> impl Iterator<Item = &[u8]> {
    (0..name.len()).step_by(size).map(move |at| &name[at..])
}

/// Packs up to `4 * words` bytes of `msg` big-end-first into `words`
/// 32-bit words; the unused part is filled with a pad made of
/// `msg.len()` repeated in every byte.
fn pack(msg: &[u8], words: usize, signed: bool) -> [u32; 8] {
    let len = msg.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut out = [pad; 8];
    let mut val = pad;
    let mut w = 0;
    for (i, &b) in msg.iter().take(words * 4).enumerate() {
        let c = if signed {
            b as i8 as i32 as u32
        } else {
            b as u32
        };
        val = c.wrapping_add(val << 8);
        if i % 4 == 3 {
            out[w] = val;
            w += 1;
            val = pad;
        }
    }
    if w < words {
        out[w] = val;
    }
    out
}

/// The legacy hash (`dx_hack_hash`).
fn legacy(name: &[u8], signed: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2du32, 0x37ab_e8f9u32);
    for &b in name {
        let c = if signed { b as i8 as i32 } else { b as i32 };
        let mut h = h1.wrapping_add(h0 ^ (c.wrapping_mul(7_152_373) as u32));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// Sixteen rounds of TEA, keyed by four words of the name, added into
/// the first two words of the state.
fn tea_transform(state: &mut [u32; 4], k: &[u32; 8]) {
    const DELTA: u32 = 0x9E37_79B9;
    let (mut b0, mut b1) = (state[0], state[1]);
    let mut sum = 0u32;
    for _ in 0..16 {
        sum = sum.wrapping_add(DELTA);
        b0 = b0.wrapping_add(
            (b1 << 4).wrapping_add(k[0]) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(k[1]),
        );
        b1 = b1.wrapping_add(
            (b0 << 4).wrapping_add(k[2]) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(k[3]),
        );
    }
    state[0] = state[0].wrapping_add(b0);
    state[1] = state[1].wrapping_add(b1);
}

/// The three rounds of MD4 over eight words (half an MD4 block), added
/// into the state.
fn half_md4_transform(state: &mut [u32; 4], x: &[u32; 8]) {
    // MD4's round constants (RFC 1320): sqrt(2) and sqrt(3) scaled by 2^30.
    const K2: u32 = 0x5A82_7999;
    const K3: u32 = 0x6ED9_EBA1;
    fn f(x: u32, y: u32, z: u32) -> u32 {
        z ^ (x & (y ^ z))
    }
    fn g(x: u32, y: u32, z: u32) -> u32 {
        (x & y).wrapping_add((x ^ y) & z)
    }
    fn h(x: u32, y: u32, z: u32) -> u32 {
        x ^ y ^ z
    }
    let [mut a, mut b, mut c, mut d] = *state;
    // One step: a = rotl(a + fun(b, c, d) + word, s).
    macro_rules! step {
        ($fun:ident, $a:ident, $b:ident, $c:ident, $d:ident, $w:expr, $s:expr) => {
            $a = $a
                .wrapping_add($fun($b, $c, $d))
                .wrapping_add($w)
                .rotate_left($s)
        };
    }
    // Round 1.
    step!(f, a, b, c, d, x[0], 3);
    step!(f, d, a, b, c, x[1], 7);
    step!(f, c, d, a, b, x[2], 11);
    step!(f, b, c, d, a, x[3], 19);
    step!(f, a, b, c, d, x[4], 3);
    step!(f, d, a, b, c, x[5], 7);
    step!(f, c, d, a, b, x[6], 11);
    step!(f, b, c, d, a, x[7], 19);
    // Round 2.
    step!(g, a, b, c, d, x[1].wrapping_add(K2), 3);
    step!(g, d, a, b, c, x[3].wrapping_add(K2), 5);
    step!(g, c, d, a, b, x[5].wrapping_add(K2), 9);
    step!(g, b, c, d, a, x[7].wrapping_add(K2), 13);
    step!(g, a, b, c, d, x[0].wrapping_add(K2), 3);
    step!(g, d, a, b, c, x[2].wrapping_add(K2), 5);
    step!(g, c, d, a, b, x[4].wrapping_add(K2), 9);
    step!(g, b, c, d, a, x[6].wrapping_add(K2), 13);
    // Round 3.
    step!(h, a, b, c, d, x[3].wrapping_add(K3), 3);
    step!(h, d, a, b, c, x[7].wrapping_add(K3), 9);
    step!(h, c, d, a, b, x[2].wrapping_add(K3), 11);
    step!(h, b, c, d, a, x[6].wrapping_add(K3), 15);
    step!(h, a, b, c, d, x[1].wrapping_add(K3), 3);
    step!(h, d, a, b, c, x[5].wrapping_add(K3), 9);
    step!(h, c, d, a, b, x[0].wrapping_add(K3), 11);
    step!(h, b, c, d, a, x[4].wrapping_add(K3), 15);
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::sflags;

    /// `s_hash_seed` bytes of the UUID fa00a6d0-de7d-4b0e-8c08-8cd5f92496e7
    /// (in UUID byte order, as e2fsprogs stores and parses it).
    const SEED: [u8; 16] = [
        0xfa, 0x00, 0xa6, 0xd0, 0xde, 0x7d, 0x4b, 0x0e, 0x8c, 0x08, 0x8c, 0xd5, 0xf9, 0x24, 0x96,
        0xe7,
    ];

    /// (hash version, seed: 0 none / 1 [`SEED`], name, hash, minor hash),
    /// produced with e2fsprogs 1.47.0 by
    /// `debugfs -R "dx_hash -h VERSION -s SEED-UUID NAME" IMAGE`, the zero
    /// seed written as 00000000-0000-0000-0000-000000000000. Names with
    /// bytes >= 0x80 (UTF-8 here) tell the signed variants from the
    /// unsigned ones; the long names take several half-MD4 (32-byte) and
    /// TEA (16-byte) pieces, and two sit exactly on those boundaries.
    const DEBUGFS: &[(u8, u8, &str, u32, u32)] = &[
        (0, 0, "a", 0xe74b53e2, 0x0),
        (0, 0, "hello", 0x32252546, 0x0),
        (0, 0, "héllo", 0x239928cc, 0x0),
        (0, 0, "abcd", 0xfafa23ca, 0x0),
        (0, 0, "0123456789abcdef", 0x415c16fe, 0x0),
        (0, 0, "0123456789abcdef0123456789abcdef", 0x6d4a15ee, 0x0),
        (0, 0, "file_000123", 0xd224c16c, 0x0),
        (0, 0, "ÿ€ü", 0x84f1f16a, 0x0),
        (
            0,
            0,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x2a4c75da,
            0x0,
        ),
        (
            0,
            0,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0xaa867b06,
            0x0,
        ),
        (1, 0, "a", 0xd5fa7d7a, 0xacb48187),
        (1, 0, "hello", 0x1746da32, 0x420013b5),
        (1, 0, "héllo", 0x98e030c8, 0xe189ee6e),
        (1, 0, "abcd", 0xad7557a8, 0xb1da437c),
        (1, 0, "0123456789abcdef", 0x8cb502b6, 0x5acf4f33),
        (
            1,
            0,
            "0123456789abcdef0123456789abcdef",
            0x36184620,
            0xc959df59,
        ),
        (1, 0, "file_000123", 0xa34837d6, 0x33b8834e),
        (1, 0, "ÿ€ü", 0x393b5262, 0x7de8b995),
        (
            1,
            0,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0xb368562,
            0xa50f8459,
        ),
        (
            1,
            0,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0x8432cb94,
            0x4cee4899,
        ),
        (2, 0, "a", 0x6d0ea4c0, 0xc18922df),
        (2, 0, "hello", 0x6f5bb1a8, 0x231917c2),
        (2, 0, "héllo", 0x313ecf7e, 0xedbe6b7e),
        (2, 0, "abcd", 0x5a24112e, 0x95442076),
        (2, 0, "0123456789abcdef", 0x5a0788b2, 0xefa4e711),
        (
            2,
            0,
            "0123456789abcdef0123456789abcdef",
            0xcbe95e3c,
            0x17627589,
        ),
        (2, 0, "file_000123", 0x7e843b7e, 0xf35f6f3c),
        (2, 0, "ÿ€ü", 0x454ce54, 0xc75b42c4),
        (
            2,
            0,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x79bf56b6,
            0xfccc79ed,
        ),
        (
            2,
            0,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0x1727cd9e,
            0x7f560677,
        ),
        (3, 0, "a", 0xe74b53e2, 0x0),
        (3, 0, "hello", 0x32252546, 0x0),
        (3, 0, "héllo", 0x7798acd8, 0x0),
        (3, 0, "abcd", 0xfafa23ca, 0x0),
        (3, 0, "0123456789abcdef", 0x415c16fe, 0x0),
        (3, 0, "0123456789abcdef0123456789abcdef", 0x6d4a15ee, 0x0),
        (3, 0, "file_000123", 0xd224c16c, 0x0),
        (3, 0, "ÿ€ü", 0xe4fc1bc6, 0x0),
        (
            3,
            0,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x2a4c75da,
            0x0,
        ),
        (
            3,
            0,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0x20ef39f2,
            0x0,
        ),
        (4, 0, "a", 0xd5fa7d7a, 0xacb48187),
        (4, 0, "hello", 0x1746da32, 0x420013b5),
        (4, 0, "héllo", 0xa5c67250, 0x6cd261bb),
        (4, 0, "abcd", 0xad7557a8, 0xb1da437c),
        (4, 0, "0123456789abcdef", 0x8cb502b6, 0x5acf4f33),
        (
            4,
            0,
            "0123456789abcdef0123456789abcdef",
            0x36184620,
            0xc959df59,
        ),
        (4, 0, "file_000123", 0xa34837d6, 0x33b8834e),
        (4, 0, "ÿ€ü", 0x92460920, 0xf34a9293),
        (
            4,
            0,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0xb368562,
            0xa50f8459,
        ),
        (
            4,
            0,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0x99f43acc,
            0xc2cbf4fb,
        ),
        (5, 0, "a", 0x6d0ea4c0, 0xc18922df),
        (5, 0, "hello", 0x6f5bb1a8, 0x231917c2),
        (5, 0, "héllo", 0x7472d1be, 0x99e4e95b),
        (5, 0, "abcd", 0x5a24112e, 0x95442076),
        (5, 0, "0123456789abcdef", 0x5a0788b2, 0xefa4e711),
        (
            5,
            0,
            "0123456789abcdef0123456789abcdef",
            0xcbe95e3c,
            0x17627589,
        ),
        (5, 0, "file_000123", 0x7e843b7e, 0xf35f6f3c),
        (5, 0, "ÿ€ü", 0x4d98def2, 0x8859aca8),
        (
            5,
            0,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x79bf56b6,
            0xfccc79ed,
        ),
        (
            5,
            0,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0xd20c78c,
            0x1ac3eb4,
        ),
        (0, 1, "a", 0xe74b53e2, 0x0),
        (0, 1, "hello", 0x32252546, 0x0),
        (0, 1, "héllo", 0x239928cc, 0x0),
        (0, 1, "abcd", 0xfafa23ca, 0x0),
        (0, 1, "0123456789abcdef", 0x415c16fe, 0x0),
        (0, 1, "0123456789abcdef0123456789abcdef", 0x6d4a15ee, 0x0),
        (0, 1, "file_000123", 0xd224c16c, 0x0),
        (0, 1, "ÿ€ü", 0x84f1f16a, 0x0),
        (
            0,
            1,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x2a4c75da,
            0x0,
        ),
        (
            0,
            1,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0xaa867b06,
            0x0,
        ),
        (1, 1, "a", 0x3366b1bc, 0x1d847f63),
        (1, 1, "hello", 0x6d53a418, 0xd1b52781),
        (1, 1, "héllo", 0xf0df7b70, 0x14e58151),
        (1, 1, "abcd", 0x8abb4ee, 0x5a322445),
        (1, 1, "0123456789abcdef", 0xc5196384, 0x92e82df5),
        (
            1,
            1,
            "0123456789abcdef0123456789abcdef",
            0xe693a6d8,
            0x73ed0adb,
        ),
        (1, 1, "file_000123", 0xa41c93e6, 0x15c243fb),
        (1, 1, "ÿ€ü", 0xa3ed6ee4, 0x1f552aff),
        (
            1,
            1,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x13c39f9c,
            0x3ea67549,
        ),
        (
            1,
            1,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0x8c34adbe,
            0xb26682f3,
        ),
        (2, 1, "a", 0xcc04c45e, 0x5babc2c6),
        (2, 1, "hello", 0xc711400, 0xeb325959),
        (2, 1, "héllo", 0xc9ddfaf8, 0x880b29a7),
        (2, 1, "abcd", 0x8ecda81c, 0x27451f5),
        (2, 1, "0123456789abcdef", 0xda863a92, 0xbf981cb9),
        (
            2,
            1,
            "0123456789abcdef0123456789abcdef",
            0x8f5fde20,
            0x2569025f,
        ),
        (2, 1, "file_000123", 0x9de0c18c, 0xba7dcb7e),
        (2, 1, "ÿ€ü", 0x7fb61264, 0x4a90cc17),
        (
            2,
            1,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x930fe972,
            0x13d79b8,
        ),
        (
            2,
            1,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0xdd4fcb72,
            0xf4380691,
        ),
        (3, 1, "a", 0xe74b53e2, 0x0),
        (3, 1, "hello", 0x32252546, 0x0),
        (3, 1, "héllo", 0x7798acd8, 0x0),
        (3, 1, "abcd", 0xfafa23ca, 0x0),
        (3, 1, "0123456789abcdef", 0x415c16fe, 0x0),
        (3, 1, "0123456789abcdef0123456789abcdef", 0x6d4a15ee, 0x0),
        (3, 1, "file_000123", 0xd224c16c, 0x0),
        (3, 1, "ÿ€ü", 0xe4fc1bc6, 0x0),
        (
            3,
            1,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x2a4c75da,
            0x0,
        ),
        (
            3,
            1,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0x20ef39f2,
            0x0,
        ),
        (4, 1, "a", 0x3366b1bc, 0x1d847f63),
        (4, 1, "hello", 0x6d53a418, 0xd1b52781),
        (4, 1, "héllo", 0x3535786c, 0xfe251535),
        (4, 1, "abcd", 0x8abb4ee, 0x5a322445),
        (4, 1, "0123456789abcdef", 0xc5196384, 0x92e82df5),
        (
            4,
            1,
            "0123456789abcdef0123456789abcdef",
            0xe693a6d8,
            0x73ed0adb,
        ),
        (4, 1, "file_000123", 0xa41c93e6, 0x15c243fb),
        (4, 1, "ÿ€ü", 0x9737d76e, 0x4c01467),
        (
            4,
            1,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x13c39f9c,
            0x3ea67549,
        ),
        (
            4,
            1,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0xac4e494,
            0x8bfc63d0,
        ),
        (5, 1, "a", 0xcc04c45e, 0x5babc2c6),
        (5, 1, "hello", 0xc711400, 0xeb325959),
        (5, 1, "héllo", 0x7c6debca, 0x8e2f3761),
        (5, 1, "abcd", 0x8ecda81c, 0x27451f5),
        (5, 1, "0123456789abcdef", 0xda863a92, 0xbf981cb9),
        (
            5,
            1,
            "0123456789abcdef0123456789abcdef",
            0x8f5fde20,
            0x2569025f,
        ),
        (5, 1, "file_000123", 0x9de0c18c, 0xba7dcb7e),
        (5, 1, "ÿ€ü", 0xbc71641c, 0x18709c9),
        (
            5,
            1,
            "a_rather_long_file_name_that_spans_several_md4_pieces.txt",
            0x930fe972,
            0x13d79b8,
        ),
        (
            5,
            1,
            "üüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüüü",
            0x59eda9f6,
            0x46ce7f7e,
        ),
    ];

    #[test]
    fn hashes_match_debugfs() {
        for &(v, seed, name, hash, minor) in DEBUGFS {
            let seed = if seed == 0 { [0u8; 16] } else { SEED };
            let got = dirhash(HashVersion::from(v), &seed, name.as_bytes()).unwrap();
            assert_eq!(
                got,
                DirHash { major: hash, minor },
                "version {v}, name {name:?}: got {:#010x} (minor {:#010x})",
                got.major,
                got.minor
            );
        }
    }

    #[test]
    fn signed_and_unsigned_differ_only_for_high_bytes() {
        for (s, u) in [
            (HashVersion::Legacy, HashVersion::LegacyUnsigned),
            (HashVersion::HalfMd4, HashVersion::HalfMd4Unsigned),
            (HashVersion::Tea, HashVersion::TeaUnsigned),
        ] {
            let h = |v, n: &str| dirhash(v, &SEED, n.as_bytes()).unwrap();
            assert_eq!(h(s, "plain"), h(u, "plain"));
            assert_ne!(h(s, "h\u{e9}llo"), h(u, "h\u{e9}llo"));
        }
    }

    #[test]
    fn version_codes_and_superblock_flags() {
        for code in 0..=255u8 {
            assert_eq!(u8::from(HashVersion::from(code)), code);
        }
        let none = 0;
        let signed = sflags::SIGNED_HASH;
        let unsigned = sflags::UNSIGNED_HASH;
        assert_eq!(HashVersion::for_directory(1, none), HashVersion::HalfMd4);
        assert_eq!(HashVersion::for_directory(1, signed), HashVersion::HalfMd4);
        assert_eq!(
            HashVersion::for_directory(1, unsigned),
            HashVersion::HalfMd4Unsigned
        );
        assert_eq!(
            HashVersion::for_directory(0, unsigned),
            HashVersion::LegacyUnsigned
        );
        assert_eq!(
            HashVersion::for_directory(2, unsigned),
            HashVersion::TeaUnsigned
        );
        assert_eq!(
            HashVersion::for_directory(5, signed),
            HashVersion::TeaUnsigned
        );
        assert_eq!(
            HashVersion::for_directory(6, unsigned),
            HashVersion::SipHash
        );
        assert_eq!(HashVersion::for_directory(9, none), HashVersion::Unknown(9));
        assert_eq!(dirhash(HashVersion::SipHash, &SEED, b"x"), None);
        assert_eq!(dirhash(HashVersion::Unknown(9), &SEED, b"x"), None);
    }

    #[test]
    fn low_bit_clear_and_eof_reserved() {
        for n in 0..2000u32 {
            let name = alloc::format!("n{n}");
            for v in 0..6u8 {
                let h = dirhash(HashVersion::from(v), &SEED, name.as_bytes()).unwrap();
                assert_eq!(h.major & 1, 0);
                assert_ne!(h.major, 0xffff_fffe);
            }
        }
    }
}
