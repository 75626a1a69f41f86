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

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_or_err_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200), n in 0usize..10) {
            for f in frames(&bytes, n) {
                let _ = f;
            }
        }
    }
}
