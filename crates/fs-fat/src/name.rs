//! File names on FAT: which names are allowed, how a name is stored (an
//! 8.3 short entry alone, or long-name entries in UTF-16 followed by a
//! generated short entry), how names compare (without regard to case),
//! and how stored short names read back.
//!
//! Rules (FAT specification §6.1 and §7; Linux's vfat with its defaults
//! `shortname=mixed`, `utf8`):
//!
//! - A long name is 1 to 255 UTF-16 units of any character except the
//!   controls below 0x20 and `" * / : < > ? \ |`; it may not end in a dot
//!   or a space (Windows and Linux strip those silently; we refuse them
//!   with `EINVAL`, so the name a caller asked for is the name it gets).
//! - A name that is already a valid upper-case 8.3 name is stored as a
//!   short entry alone. Any other name gets long-name entries plus a
//!   short alias: upper-cased, invalid characters replaced by `_`, base
//!   cut to 8 and extension to 3 characters; when that lost anything or
//!   the alias is taken, a numeric tail `~N` is added (`LONGFI~1.TXT`).
//! - Lookups ignore case (ASCII and the simple Unicode upper-case mapping
//!   of `char::to_uppercase`), matching the long name or the short alias.
//! - Short names read back honour the Windows NT lower-case bits; bytes
//!   of 0x80 and above are code page 437.

use alloc::string::String;
use alloc::vec::Vec;

use hyper::Errno;

use crate::format::{ntres, MAX_LFN_UNITS};

/// How a new name is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// A valid upper-case 8.3 name: the short entry alone.
    ShortOnly([u8; 11]),
    /// Long-name entries (UTF-16 units) and a short alias to be chosen:
    /// the basis (`base`, `ext`) and whether a numeric tail is needed.
    Long {
        units: Vec<u16>,
        base: Vec<u8>,
        ext: Vec<u8>,
        needs_tail: bool,
    },
}

/// Characters allowed in short names besides letters and digits
/// (spec §6.1).
const SHORT_EXTRA: &[u8] = b"$%'-_@~`!(){}^#&";

fn is_short_char(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || SHORT_EXTRA.contains(&c)
}

/// Checks a name given to create or rename and decides how to store it.
pub fn classify(name: &[u8]) -> Result<Stored, Errno> {
    let s = core::str::from_utf8(name).map_err(|_| Errno::EINVAL)?;
    if s.is_empty() || s == "." || s == ".." {
        return Err(Errno::EINVAL);
    }
    for c in s.chars() {
        if (c as u32) < 0x20 || "\"*/:<>?\\|".contains(c) {
            return Err(Errno::EINVAL);
        }
    }
    if s.ends_with('.') || s.ends_with(' ') {
        return Err(Errno::EINVAL);
    }
    let units: Vec<u16> = s.encode_utf16().collect();
    if units.len() > MAX_LFN_UNITS {
        return Err(Errno::ENAMETOOLONG);
    }
    if let Some(short) = exact_short(name) {
        return Ok(Stored::ShortOnly(short));
    }
    // The basis name (spec §7.4, our own rendering of it).
    let mut lossy = false;
    let upper: String = s.chars().flat_map(char::to_uppercase).collect();
    let mut cleaned: Vec<u8> = Vec::new();
    for c in upper.chars() {
        if c == ' ' {
            lossy = true;
            continue;
        }
        if c == '.' {
            cleaned.push(b'.');
        } else if c.is_ascii() && is_short_char(c as u8) {
            cleaned.push(c as u8);
        } else {
            lossy = true;
            cleaned.push(b'_');
        }
    }
    // Leading dots go.
    let lead = cleaned.iter().take_while(|&&c| c == b'.').count();
    if lead > 0 {
        lossy = true;
    }
    let cleaned = &cleaned[lead..];
    let (base_part, ext_part) = match cleaned.iter().rposition(|&c| c == b'.') {
        Some(i) => (&cleaned[..i], &cleaned[i + 1..]),
        None => (cleaned, &[][..]),
    };
    let mut base: Vec<u8> = base_part.iter().copied().filter(|&c| c != b'.').collect();
    if base.len() != base_part.len() {
        lossy = true;
    }
    let mut ext: Vec<u8> = ext_part.to_vec();
    if base.len() > 8 {
        base.truncate(8);
        lossy = true;
    }
    if ext.len() > 3 {
        ext.truncate(3);
        lossy = true;
    }
    if base.is_empty() {
        base.push(b'_');
        lossy = true;
    }
    Ok(Stored::Long {
        units,
        base,
        ext,
        needs_tail: lossy,
    })
}

/// The 11-byte short name of `name` when it is a valid 8.3 name in upper
/// case (digits and symbols count as either case).
pub fn exact_short(name: &[u8]) -> Option<[u8; 11]> {
    let (base, ext) = match name.iter().position(|&c| c == b'.') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, &[][..]),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || ext.contains(&b'.') {
        return None;
    }
    if name.contains(&b'.') && ext.is_empty() {
        return None;
    }
    if !base.iter().chain(ext).all(|&c| is_short_char(c)) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base);
    out[8..8 + ext.len()].copy_from_slice(ext);
    if out[0] == crate::format::DELETED {
        return None;
    }
    Some(out)
}

/// The alias of a basis with tail number `n` (0: none): `BASE~N.EXT`.
pub fn alias(base: &[u8], ext: &[u8], n: u32) -> [u8; 11] {
    let mut out = [b' '; 11];
    if n == 0 {
        out[..base.len()].copy_from_slice(base);
    } else {
        let mut tail = [0u8; 12];
        let mut t = 0;
        let mut v = n;
        while v > 0 {
            tail[t] = b'0' + (v % 10) as u8;
            v /= 10;
            t += 1;
        }
        let keep = base.len().min(8 - 1 - t);
        out[..keep].copy_from_slice(&base[..keep]);
        out[keep] = b'~';
        for i in 0..t {
            out[keep + 1 + i] = tail[t - 1 - i];
        }
    }
    out[8..8 + ext.len()].copy_from_slice(ext);
    out
}

/// How a stored short name reads (`FOO     TXT` -> `FOO.TXT`, with the
/// NT lower-case bits applied).
pub fn short_to_string(name: &[u8; 11], nt: u8) -> String {
    let mut s = String::new();
    let base = trim(&name[..8]);
    let ext = trim(&name[8..]);
    push_oem(&mut s, base, nt & ntres::LOWER_BASE != 0);
    if !ext.is_empty() {
        s.push('.');
        push_oem(&mut s, ext, nt & ntres::LOWER_EXT != 0);
    }
    s
}

fn trim(b: &[u8]) -> &[u8] {
    let n = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    &b[..n]
}

fn push_oem(s: &mut String, b: &[u8], lower: bool) {
    for &c in b {
        if c < 0x80 {
            let c = c as char;
            s.push(if lower { c.to_ascii_lowercase() } else { c });
        } else {
            s.push(CP437_HIGH[(c - 0x80) as usize]);
        }
    }
}

/// Decodes the UTF-16 units of a long name (up to the first NUL);
/// `None` if they are not valid UTF-16 or not a valid name.
pub fn lfn_to_string(units: &[u16]) -> Option<String> {
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    let s: String = char::decode_utf16(units[..end].iter().copied())
        .collect::<Result<String, _>>()
        .ok()?;
    if s.is_empty() || s.contains('/') || s.contains('\0') {
        return None;
    }
    Some(s)
}

/// Whether two names are the same name on FAT (case-insensitive).
pub fn same_name(a: &str, b: &str) -> bool {
    if a.len() == b.len() && a.eq_ignore_ascii_case(b) {
        return true;
    }
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}

/// Code page 437, bytes 0x80 to 0xFF.
const CP437_HIGH: [char; 128] = [
    'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
    'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
    'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
    '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
    '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
    '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
    'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
    '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_only_names() {
        assert_eq!(
            classify(b"README.TXT"),
            Ok(Stored::ShortOnly(*b"README  TXT"))
        );
        assert_eq!(classify(b"A"), Ok(Stored::ShortOnly(*b"A          ")));
        assert!(matches!(
            classify(b"readme.txt"),
            Ok(Stored::Long {
                needs_tail: false,
                ..
            })
        ));
        assert!(matches!(
            classify(b"Makefile"),
            Ok(Stored::Long {
                needs_tail: false,
                ..
            })
        ));
    }

    #[test]
    fn aliases() {
        let Ok(Stored::Long {
            base,
            ext,
            needs_tail,
            ..
        }) = classify(b"long file name.html")
        else {
            panic!()
        };
        assert!(needs_tail);
        assert_eq!(&alias(&base, &ext, 1), b"LONGFI~1HTM");
        assert_eq!(&alias(&base, &ext, 12345), b"LO~12345HTM");
        let Ok(Stored::Long { base, ext, .. }) = classify(b".profile") else {
            panic!()
        };
        assert_eq!(&alias(&base, &ext, 0), b"PROFILE    ");
        let Ok(Stored::Long {
            base,
            ext,
            needs_tail,
            ..
        }) = classify("café.tar.gz".as_bytes())
        else {
            panic!()
        };
        assert!(needs_tail);
        assert_eq!(&alias(&base, &ext, 1), b"CAF_TA~1GZ ");
    }

    #[test]
    fn invalid_names() {
        for n in [
            &b"a:b"[..],
            b"a*",
            b"x?",
            b"q\"",
            b"a\\b",
            b"a|b",
            b"<",
            b"trail.",
            b"sp ",
            b"\x01",
        ] {
            assert_eq!(classify(n), Err(Errno::EINVAL), "{n:?}");
        }
        assert_eq!(classify(&[0xFF, 0xFE]), Err(Errno::EINVAL));
        assert_eq!(classify(&[b'a'; 256]), Err(Errno::ENAMETOOLONG));
        assert!(classify(&[b'a'; 255]).is_ok());
    }

    #[test]
    fn reading_back() {
        assert_eq!(short_to_string(b"FOO     TXT", 0), "FOO.TXT");
        assert_eq!(
            short_to_string(b"FOO     TXT", ntres::LOWER_BASE),
            "foo.TXT"
        );
        assert_eq!(short_to_string(b"\x80X         ", 0), "ÇX");
        let u: Vec<u16> = "Grüße.txt".encode_utf16().chain([0, 0xFFFF]).collect();
        assert_eq!(lfn_to_string(&u).as_deref(), Some("Grüße.txt"));
        assert_eq!(lfn_to_string(&[0xD800, 0]), None);
        assert!(same_name("Grüße.TXT", "grüße.txt"));
        assert!(!same_name("a", "b"));
    }
}
