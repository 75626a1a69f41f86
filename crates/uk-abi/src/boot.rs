//! The boot-information block the runner writes at `BOOT_INFO_GPA`.
//!
//! Layout (little-endian; offsets in bytes):
//!
//! | off | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `RUKB` ([`BOOT_MAGIC`]) |
//! | 4 | 4 | ABI version |
//! | 8 | 8 | guest memory size |
//! | 16 | 8 | end of the loaded image (first free byte, page aligned) |
//! | 24 | 8 | TSC frequency in kHz (0: unknown, calibrate) |
//! | 32 | 4 | disks |
//! | 36 | 4 | network links |
//! | 40 | 4 | bytes of parameters |
//! | 44 | 4 | flags (bit 0: boot trace) |
//! | 48 | 8 × 48 | disks: name (32, NUL padded), size (8), flags (4, bit 0 read-only), 0 (4) |
//! | 432 | 4 × 32 | links: name (16, NUL padded), MAC (6), MTU (2), 0 (8) |
//! | 560 | ≤ 7632 | parameters: `key=value` entries, each ended by a NUL |

use crate::{
    get_u32, get_u64, put_u32, put_u64, ParseError, ABI_VERSION, IMAGE_MIN_GPA, MEM_MAX, MEM_MIN,
};

/// `RUKB` read as a little-endian word.
pub const BOOT_MAGIC: u32 = u32::from_le_bytes(*b"RUKB");
/// Bytes of the boot block (two pages).
pub const BOOT_INFO_LEN: usize = 8192;
/// Disks a guest can be given.
pub const MAX_DISKS: usize = 8;
/// Network links a guest can be given.
pub const MAX_NETS: usize = 4;
/// Longest disk name; link names are at most 16 bytes.
pub const NAME_LEN: usize = 32;
/// Most bytes of parameters.
pub const MAX_PARAMS_LEN: usize = BOOT_INFO_LEN - field::PARAMS;

const NET_NAME_LEN: usize = 16;

mod field {
    pub const MAGIC: usize = 0;
    pub const VERSION: usize = 4;
    pub const MEM_SIZE: usize = 8;
    pub const IMAGE_END: usize = 16;
    pub const TSC_KHZ: usize = 24;
    pub const NDISKS: usize = 32;
    pub const NNETS: usize = 36;
    pub const PARAMS_LEN: usize = 40;
    pub const FLAGS: usize = 44;
    pub const DISKS: usize = 48;
    pub const DISK_LEN: usize = 48;
    pub const NETS: usize = DISKS + super::MAX_DISKS * DISK_LEN;
    pub const NET_LEN: usize = 32;
    pub const PARAMS: usize = NETS + super::MAX_NETS * NET_LEN;
}

const FLAG_BOOT_TRACE: u32 = 1;
const DISK_READ_ONLY: u32 = 1;

/// A device name: 1..=N printable ASCII bytes without spaces.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Name<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> Name<N> {
    /// A name from a string; `None` if it is empty, too long or not
    /// printable ASCII.
    pub fn new(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.is_empty() || b.len() > N || !b.iter().all(|c| c.is_ascii_graphic()) {
            return None;
        }
        let mut bytes = [0u8; N];
        bytes[..b.len()].copy_from_slice(b);
        Some(Name {
            bytes,
            len: b.len(),
        })
    }

    fn parse(raw: &[u8]) -> Option<Self> {
        let len = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        if raw[len..].iter().any(|&c| c != 0) {
            return None;
        }
        Self::new(core::str::from_utf8(&raw[..len]).ok()?)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        // Only printable ASCII gets in (see `new`).
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }
}

impl<const N: usize> core::fmt::Debug for Name<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// A disk given to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// The name the guest opens it by (`/dev/disk0`).
    pub name: Name<NAME_LEN>,
    /// Size in bytes.
    pub size: u64,
    /// Writes are refused.
    pub read_only: bool,
}

/// A network link given to the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetInfo {
    /// The name the guest opens it by (the host tap's name).
    pub name: Name<NET_NAME_LEN>,
    /// A MAC address for the guest's interface.
    pub mac: [u8; 6],
    /// The link MTU.
    pub mtu: u16,
}

/// The parameters: `key=value` entries, each ended by a NUL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Params<'a>(&'a str);

impl<'a> Params<'a> {
    /// Checks an encoded parameter area.
    pub fn parse(raw: &'a [u8]) -> Result<Params<'a>, ParseError> {
        let s = core::str::from_utf8(raw).map_err(|_| ParseError::BadField("params"))?;
        if !s.is_empty() && !s.ends_with('\0') {
            return Err(ParseError::BadField("params"));
        }
        let p = Params(s);
        for entry in s.split_terminator('\0') {
            match entry.split_once('=') {
                Some((k, _)) if !k.is_empty() => {}
                _ => return Err(ParseError::BadField("params")),
            }
        }
        Ok(p)
    }

    /// The entries in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.0
            .split_terminator('\0')
            .filter_map(|e| e.split_once('='))
    }

    /// The value of `key` (the last one given).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .last()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0.as_bytes()
    }
}

/// A zero-copy view of a boot block.
#[derive(Debug, Clone)]
pub struct BootInfo<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> BootInfo<T> {
    /// Wraps a buffer of at least [`BOOT_INFO_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<BootInfo<T>, ParseError> {
        if buffer.as_ref().len() < BOOT_INFO_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(BootInfo { buffer })
    }

    fn u32_at(&self, at: usize) -> u32 {
        get_u32(self.buffer.as_ref(), at)
    }

    fn u64_at(&self, at: usize) -> u64 {
        get_u64(self.buffer.as_ref(), at)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> BootInfo<T> {
    fn buf(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }
}

/// The contents of a boot block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootInfoRepr<'a> {
    /// Guest memory in bytes.
    pub mem_size: u64,
    /// First byte after the loaded image (page aligned): the heap starts here.
    pub image_end: u64,
    /// TSC frequency in kHz (0: the guest calibrates against the clock call).
    pub tsc_khz: u64,
    /// Report boot phases (`--boot-trace`).
    pub boot_trace: bool,
    disks: [Option<DiskInfo>; MAX_DISKS],
    nets: [Option<NetInfo>; MAX_NETS],
    /// The parameters.
    pub params: Params<'a>,
}

impl<'a> BootInfoRepr<'a> {
    /// A boot block without devices or parameters.
    pub fn new(mem_size: u64, image_end: u64, tsc_khz: u64) -> Self {
        BootInfoRepr {
            mem_size,
            image_end,
            tsc_khz,
            boot_trace: false,
            disks: [None; MAX_DISKS],
            nets: [None; MAX_NETS],
            params: Params::default(),
        }
    }

    /// Adds a disk; `false` when the table is full.
    pub fn add_disk(&mut self, d: DiskInfo) -> bool {
        add(&mut self.disks, d)
    }

    /// Adds a link; `false` when the table is full.
    pub fn add_net(&mut self, n: NetInfo) -> bool {
        add(&mut self.nets, n)
    }

    /// The disks; a disk's hypercall handle is its index here.
    pub fn disks(&self) -> impl Iterator<Item = &DiskInfo> {
        self.disks.iter().map_while(Option::as_ref)
    }

    /// The links; a link's hypercall handle is its index here.
    pub fn nets(&self) -> impl Iterator<Item = &NetInfo> {
        self.nets.iter().map_while(Option::as_ref)
    }

    /// Parses and checks a boot block.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(b: &'a BootInfo<&'a T>) -> Result<Self, ParseError> {
        if b.u32_at(field::MAGIC) != BOOT_MAGIC {
            return Err(ParseError::BadMagic);
        }
        let version = b.u32_at(field::VERSION);
        if version != ABI_VERSION {
            return Err(ParseError::BadVersion(version));
        }
        let mem_size = b.u64_at(field::MEM_SIZE);
        if !(MEM_MIN..=MEM_MAX).contains(&mem_size) || !mem_size.is_multiple_of(4096) {
            return Err(ParseError::BadField("mem_size"));
        }
        let image_end = b.u64_at(field::IMAGE_END);
        if image_end < IMAGE_MIN_GPA || image_end > mem_size || !image_end.is_multiple_of(4096) {
            return Err(ParseError::BadField("image_end"));
        }
        let flags = b.u32_at(field::FLAGS);
        if flags & !FLAG_BOOT_TRACE != 0 {
            return Err(ParseError::BadField("flags"));
        }
        let mut r = BootInfoRepr::new(mem_size, image_end, b.u64_at(field::TSC_KHZ));
        r.boot_trace = flags & FLAG_BOOT_TRACE != 0;
        let raw = b.buffer.as_ref();
        let ndisks = b.u32_at(field::NDISKS) as usize;
        if ndisks > MAX_DISKS {
            return Err(ParseError::BadField("ndisks"));
        }
        for i in 0..ndisks {
            let at = field::DISKS + i * field::DISK_LEN;
            let name = Name::parse(&raw[at..at + NAME_LEN]).ok_or(ParseError::BadField("disk"))?;
            let dflags = get_u32(raw, at + 40);
            if dflags & !DISK_READ_ONLY != 0 || get_u32(raw, at + 44) != 0 {
                return Err(ParseError::BadField("disk flags"));
            }
            r.disks[i] = Some(DiskInfo {
                name,
                size: get_u64(raw, at + 32),
                read_only: dflags & DISK_READ_ONLY != 0,
            });
        }
        let nnets = b.u32_at(field::NNETS) as usize;
        if nnets > MAX_NETS {
            return Err(ParseError::BadField("nnets"));
        }
        for i in 0..nnets {
            let at = field::NETS + i * field::NET_LEN;
            let name =
                Name::parse(&raw[at..at + NET_NAME_LEN]).ok_or(ParseError::BadField("net"))?;
            let mut mac = [0u8; 6];
            mac.copy_from_slice(&raw[at + 16..at + 22]);
            let mtu = u16::from_le_bytes([raw[at + 22], raw[at + 23]]);
            if !(576..=65535).contains(&mtu) {
                return Err(ParseError::BadField("mtu"));
            }
            r.nets[i] = Some(NetInfo { name, mac, mtu });
        }
        let plen = b.u32_at(field::PARAMS_LEN) as usize;
        if plen > MAX_PARAMS_LEN {
            return Err(ParseError::BadField("params_len"));
        }
        r.params = Params::parse(&raw[field::PARAMS..field::PARAMS + plen])?;
        Ok(r)
    }

    /// Bytes of the encoded block.
    pub const fn buffer_len(&self) -> usize {
        BOOT_INFO_LEN
    }

    /// Writes the block (the runner's side). The buffer is cleared first.
    /// Fails if the parameters do not fit or are malformed.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        b: &mut BootInfo<T>,
    ) -> Result<(), ParseError> {
        let params = self.params.as_bytes();
        if params.len() > MAX_PARAMS_LEN {
            return Err(ParseError::BadField("params_len"));
        }
        Params::parse(params)?;
        let buf = &mut b.buf()[..BOOT_INFO_LEN];
        buf.fill(0);
        put_u32(buf, field::MAGIC, BOOT_MAGIC);
        put_u32(buf, field::VERSION, ABI_VERSION);
        put_u64(buf, field::MEM_SIZE, self.mem_size);
        put_u64(buf, field::IMAGE_END, self.image_end);
        put_u64(buf, field::TSC_KHZ, self.tsc_khz);
        put_u32(buf, field::NDISKS, self.disks().count() as u32);
        put_u32(buf, field::NNETS, self.nets().count() as u32);
        put_u32(buf, field::PARAMS_LEN, params.len() as u32);
        put_u32(
            buf,
            field::FLAGS,
            if self.boot_trace { FLAG_BOOT_TRACE } else { 0 },
        );
        for (i, d) in self.disks().enumerate() {
            let at = field::DISKS + i * field::DISK_LEN;
            buf[at..at + d.name.len].copy_from_slice(d.name.as_str().as_bytes());
            put_u64(buf, at + 32, d.size);
            put_u32(buf, at + 40, if d.read_only { DISK_READ_ONLY } else { 0 });
        }
        for (i, n) in self.nets().enumerate() {
            let at = field::NETS + i * field::NET_LEN;
            buf[at..at + n.name.len].copy_from_slice(n.name.as_str().as_bytes());
            buf[at + 16..at + 22].copy_from_slice(&n.mac);
            buf[at + 22..at + 24].copy_from_slice(&n.mtu.to_le_bytes());
        }
        buf[field::PARAMS..field::PARAMS + params.len()].copy_from_slice(params);
        Ok(())
    }
}

impl<'a> BootInfoRepr<'a> {
    /// Sets the encoded parameters (see [`Params`]); they are checked by
    /// [`BootInfoRepr::emit`].
    pub fn set_params(&mut self, encoded: &'a str) {
        self.params = Params(encoded);
    }
}

fn add<T: Copy, const N: usize>(table: &mut [Option<T>; N], v: T) -> bool {
    match table.iter_mut().find(|s| s.is_none()) {
        Some(slot) => {
            *slot = Some(v);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> BootInfoRepr<'static> {
        let mut r = BootInfoRepr::new(32 << 20, 0x40_0000, 2_596_140);
        r.boot_trace = true;
        assert!(r.add_disk(DiskInfo {
            name: Name::new("/dev/disk0").unwrap(),
            size: 8 << 20,
            read_only: true,
        }));
        assert!(r.add_net(NetInfo {
            name: Name::new("tap0").unwrap(),
            mac: [2, 0, 0, 0, 0, 1],
            mtu: 1500,
        }));
        r.set_params("RUMP_VERBOSE=1\0app.mode=x=y\0");
        r
    }

    #[test]
    fn boot_block_round_trips() {
        let r = sample();
        let mut buf = [0xaau8; BOOT_INFO_LEN];
        r.emit(&mut BootInfo::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        let view = BootInfo::new_checked(&buf[..]).unwrap();
        let back = BootInfoRepr::parse(&view).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.params.get("app.mode"), Some("x=y"));
        assert_eq!(back.params.get("missing"), None);
        assert_eq!(back.disks().count(), 1);
        assert_eq!(back.nets().next().unwrap().name.as_str(), "tap0");
    }

    fn emitted() -> [u8; BOOT_INFO_LEN] {
        let mut buf = [0u8; BOOT_INFO_LEN];
        sample()
            .emit(&mut BootInfo::new_checked(&mut buf[..]).unwrap())
            .unwrap();
        buf
    }

    fn parse_err(buf: &[u8]) -> ParseError {
        let view = BootInfo::new_checked(buf).unwrap();
        BootInfoRepr::parse(&view).unwrap_err()
    }

    #[test]
    fn bad_boot_blocks_are_refused() {
        assert_eq!(
            BootInfo::new_checked(&[0u8; 100][..]).err(),
            Some(ParseError::Truncated)
        );
        let mut b = emitted();
        b[0] ^= 1;
        assert_eq!(parse_err(&b), ParseError::BadMagic);
        let mut b = emitted();
        b[4] = 9;
        assert_eq!(parse_err(&b), ParseError::BadVersion(9));
        let mut b = emitted();
        put_u64(&mut b, field::MEM_SIZE, 1);
        assert_eq!(parse_err(&b), ParseError::BadField("mem_size"));
        let mut b = emitted();
        put_u64(&mut b, field::IMAGE_END, 64 << 20);
        assert_eq!(parse_err(&b), ParseError::BadField("image_end"));
        let mut b = emitted();
        put_u32(&mut b, field::NDISKS, 9);
        assert_eq!(parse_err(&b), ParseError::BadField("ndisks"));
        let mut b = emitted();
        put_u32(&mut b, field::NDISKS, 2); // the second entry is empty
        assert_eq!(parse_err(&b), ParseError::BadField("disk"));
        let mut b = emitted();
        b[field::DISKS + 3] = b' ';
        assert_eq!(parse_err(&b), ParseError::BadField("disk"));
        let mut b = emitted();
        put_u32(&mut b, field::PARAMS_LEN, MAX_PARAMS_LEN as u32 + 1);
        assert_eq!(parse_err(&b), ParseError::BadField("params_len"));
        let mut b = emitted();
        b[field::PARAMS] = b'=';
        assert_eq!(parse_err(&b), ParseError::BadField("params"));
        let mut b = emitted();
        b[field::NETS + 22] = 0;
        b[field::NETS + 23] = 0;
        assert_eq!(parse_err(&b), ParseError::BadField("mtu"));
    }

    proptest::proptest! {
        #[test]
        fn mutated_boot_blocks_never_panic(muts in proptest::collection::vec((0usize..700, 0u8..=255), 1..16)) {
            let mut b = emitted();
            for (at, v) in muts {
                b[at] = v;
            }
            let view = BootInfo::new_checked(&b[..]).unwrap();
            if let Ok(r) = BootInfoRepr::parse(&view) {
                // Whatever parses re-encodes to a block that parses the same.
                let mut again = [0u8; BOOT_INFO_LEN];
                r.emit(&mut BootInfo::new_checked(&mut again[..]).unwrap()).unwrap();
                let view2 = BootInfo::new_checked(&again[..]).unwrap();
                proptest::prop_assert_eq!(BootInfoRepr::parse(&view2).unwrap(), r);
            }
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(Name::<4>::new("").is_none());
        assert!(Name::<4>::new("abcde").is_none());
        assert!(Name::<4>::new("a b").is_none());
        assert_eq!(Name::<4>::new("abcd").unwrap().as_str(), "abcd");
        assert!(Name::<4>::parse(b"a\0b\0").is_none());
    }
}
