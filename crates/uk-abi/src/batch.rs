//! Frame batches: many Ethernet frames in one buffer of guest memory, so
//! that one hypercall ([`crate::Call::NetSendBatch`],
//! [`crate::Call::NetRecvBatch`]) moves a burst of frames. A VM exit is
//! the expensive part of a hypercall (tens of microseconds on a nested,
//! software-virtualised host), so moving frames in bursts is what lets a
//! guest approach the tap's speed.
//!
//! A batch is a sequence of records, each 8-byte aligned from the start
//! of the buffer: a little-endian `u32` frame length, four zero bytes,
//! the frame, and zero padding up to the next multiple of 8.

use crate::{get_u32, put_u32, Error};

/// Bytes before each frame in a record.
pub const RECORD_HEADER: usize = 8;
/// Longest frame a batch carries (a 64 KiB segment and its headers).
pub const MAX_FRAME_LEN: usize = 65_536 + 64;
/// Most frames one batch hypercall moves.
pub const MAX_BATCH_FRAMES: u64 = 4096;

/// Bytes a record of a frame of `len` bytes takes.
pub const fn record_len(len: usize) -> usize {
    RECORD_HEADER + len.div_ceil(8) * 8
}

/// Writes a record header for a frame of `len` bytes at `at` (the frame
/// itself goes at `at + RECORD_HEADER`). The caller checked the room.
pub fn put_header(buf: &mut [u8], at: usize, len: usize) {
    put_u32(buf, at, len as u32);
    put_u32(buf, at + 4, 0);
}

/// Appends `frame` to the batch of `used` bytes in `buf`; returns the new
/// length, or `None` if it does not fit (or is too long for a batch).
pub fn append(buf: &mut [u8], used: usize, frame: &[u8]) -> Option<usize> {
    if frame.len() > MAX_FRAME_LEN {
        return None;
    }
    let end = used.checked_add(record_len(frame.len()))?;
    if end > buf.len() {
        return None;
    }
    put_header(buf, used, frame.len());
    let body = used + RECORD_HEADER;
    buf[body..body + frame.len()].copy_from_slice(frame);
    buf[body + frame.len()..end].fill(0);
    Some(end)
}

/// Reads the record at `at` of a batch of `len` bytes, given its 8-byte
/// header: the frame's offset and length, and where the next record
/// starts. Checks everything a hostile batch could get wrong.
pub fn parse_header(
    header: [u8; RECORD_HEADER],
    at: usize,
    len: usize,
) -> Result<(usize, usize, usize), Error> {
    let flen = get_u32(&header, 0) as usize;
    if get_u32(&header, 4) != 0 || flen == 0 || flen > MAX_FRAME_LEN {
        return Err(Error::Invalid);
    }
    let next = at.checked_add(record_len(flen)).ok_or(Error::Invalid)?;
    // The padding of the last record may be missing.
    let end = at.checked_add(RECORD_HEADER + flen).ok_or(Error::Invalid)?;
    if end > len {
        return Err(Error::Invalid);
    }
    Ok((at + RECORD_HEADER, flen, next))
}

/// The frames of a batch of `count` records in `buf`.
pub fn frames(buf: &[u8], count: usize) -> Frames<'_> {
    Frames {
        buf,
        at: 0,
        left: count,
    }
}

/// Iterator over the frames of a batch (see [`frames`]); yields an error
/// and stops at a malformed record.
pub struct Frames<'a> {
    buf: &'a [u8],
    at: usize,
    left: usize,
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<&'a [u8], Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let Some(h) = self.buf.get(self.at..self.at + RECORD_HEADER) else {
            self.left = 0;
            return Some(Err(Error::Invalid));
        };
        let mut header = [0u8; RECORD_HEADER];
        header.copy_from_slice(h);
        match parse_header(header, self.at, self.buf.len()) {
            Ok((off, flen, next)) => {
                self.at = next;
                Some(Ok(&self.buf[off..off + flen]))
            }
            Err(e) => {
                self.left = 0;
                Some(Err(e))
            }
        }
    }
}

/// Bytes of an [`IoDesc`] in guest memory.
pub const IO_DESC_LEN: usize = 64;

/// What one [`crate::Call::NetIo`] does on one link: send a batch, then
/// receive the frames waiting into another, waiting up to `timeout_ns`
/// for one when none is there yet. It lives in guest memory (eight
/// little-endian `u64` words in this order), since it needs more words
/// than a parameter block has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct IoDesc {
    pub timeout_ns: u64,
    pub net: u32,
    /// The batch to send (`tx_count` 0: nothing).
    pub tx_gpa: u64,
    pub tx_len: u64,
    pub tx_count: u64,
    /// Where to receive (`rx_len` 0: do not receive).
    pub rx_gpa: u64,
    pub rx_len: u64,
    pub max_frame: u64,
}

impl IoDesc {
    /// Parses and checks a descriptor (handles against the ABI's limits,
    /// lengths, address ranges for overflow; the runner checks the ranges
    /// against guest memory).
    pub fn parse(raw: &[u8; IO_DESC_LEN]) -> Result<IoDesc, Error> {
        let w = |i: usize| crate::get_u64(raw, 8 * i);
        let d = IoDesc {
            timeout_ns: w(0),
            net: u32::try_from(w(1)).map_err(|_| Error::BadHandle)?,
            tx_gpa: w(2),
            tx_len: w(3),
            tx_count: w(4),
            rx_gpa: w(5),
            rx_len: w(6),
            max_frame: w(7),
        };
        if d.net as usize >= crate::MAX_NETS {
            return Err(Error::BadHandle);
        }
        for (gpa, len) in [(d.tx_gpa, d.tx_len), (d.rx_gpa, d.rx_len)] {
            if len > crate::MAX_IO_LEN {
                return Err(Error::Invalid);
            }
            gpa.checked_add(len).ok_or(Error::Fault)?;
        }
        if d.tx_count > MAX_BATCH_FRAMES {
            return Err(Error::Invalid);
        }
        if d.rx_len > 0 && (d.max_frame == 0 || d.max_frame > MAX_FRAME_LEN as u64) {
            return Err(Error::Invalid);
        }
        Ok(d)
    }

    /// The descriptor's bytes (the guest's side).
    pub fn emit(&self) -> [u8; IO_DESC_LEN] {
        let mut raw = [0u8; IO_DESC_LEN];
        let words = [
            self.timeout_ns,
            self.net as u64,
            self.tx_gpa,
            self.tx_len,
            self.tx_count,
            self.rx_gpa,
            self.rx_len,
            self.max_frame,
        ];
        for (i, v) in words.iter().enumerate() {
            crate::put_u64(&mut raw, 8 * i, *v);
        }
        raw
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec::Vec;

    #[test]
    fn frames_round_trip() {
        let mut buf = [0xaau8; 64];
        let mut used = 0;
        for f in [&b"abc"[..], b"12345678", b"x"] {
            used = append(&mut buf, used, f).unwrap();
        }
        assert_eq!(used, 16 + 16 + 16);
        assert_eq!(append(&mut buf, used, &[1; 9]), None);
        let got: Vec<_> = frames(&buf[..used], 3)
            .map(|f| f.unwrap().to_vec())
            .collect();
        assert_eq!(got, [b"abc".to_vec(), b"12345678".to_vec(), b"x".to_vec()]);
        // Fewer records asked for than there are: fine; more: an error.
        assert_eq!(frames(&buf[..used], 1).count(), 1);
        let r: Vec<_> = frames(&buf[..used], 4).collect();
        assert_eq!(r.len(), 4);
        assert!(r[3].is_err());
    }

    #[test]
    fn hostile_records_are_refused() {
        let mut buf = [0u8; 32];
        // Zero length, nonzero reserved word, length past the buffer,
        // length over the limit.
        assert!(frames(&buf, 1).next().unwrap().is_err());
        put_u32(&mut buf, 0, 4);
        put_u32(&mut buf, 4, 1);
        assert!(frames(&buf, 1).next().unwrap().is_err());
        put_u32(&mut buf, 4, 0);
        put_u32(&mut buf, 0, 25);
        assert!(frames(&buf, 1).next().unwrap().is_err());
        put_u32(&mut buf, 0, u32::MAX);
        assert!(frames(&buf, 1).next().unwrap().is_err());
        assert!(parse_header(
            [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0],
            usize::MAX - 4,
            usize::MAX
        )
        .is_err());
        // A last record without its padding is accepted.
        put_u32(&mut buf, 0, 3);
        assert_eq!(frames(&buf[..11], 1).next().unwrap().unwrap(), &[0, 0, 0]);
    }

    #[test]
    fn io_descriptors_round_trip_and_bad_ones_are_refused() {
        let d = IoDesc {
            timeout_ns: 5,
            net: 1,
            tx_gpa: 0x20_0000,
            tx_len: 4096,
            tx_count: 3,
            rx_gpa: 0x30_0000,
            rx_len: 1 << 18,
            max_frame: 1518,
        };
        assert_eq!(IoDesc::parse(&d.emit()), Ok(d));
        let bad = |f: fn(&mut IoDesc), e: Error| {
            let mut x = d;
            f(&mut x);
            assert_eq!(IoDesc::parse(&x.emit()), Err(e));
        };
        bad(|x| x.net = crate::MAX_NETS as u32, Error::BadHandle);
        bad(|x| x.tx_len = crate::MAX_IO_LEN + 1, Error::Invalid);
        bad(|x| x.rx_gpa = u64::MAX - 10, Error::Fault);
        bad(|x| x.tx_count = MAX_BATCH_FRAMES + 1, Error::Invalid);
        bad(|x| x.max_frame = 0, Error::Invalid);
        let mut raw = d.emit();
        raw[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
        assert_eq!(IoDesc::parse(&raw), Err(Error::BadHandle));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_err_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), n in 0usize..10) {
            for f in frames(&bytes, n) {
                let _ = f;
            }
        }
    }
}
