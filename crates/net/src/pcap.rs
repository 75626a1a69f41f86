//! Packet capture to a pcap file (the classic libpcap format that
//! `tcpdump -r` reads; see pcap-savefile(5)): a 24-byte file header, then
//! per frame a 16-byte record header and the frame. Link type 1
//! (Ethernet), microsecond timestamps, host byte order (the magic number
//! tells readers which).
//!
//! [`FileHeader`] and [`RecordHeader`] are the wire formats as `Repr`s
//! with `emit` and `parse`; [`Pcap`] writes through a `hyper::BlockIo`.
//! Writes happen with only the interface's capture lock held, never the
//! stack lock (the blocking contract in `hyper`).

use alloc::boxed::Box;

use hyper::{BlockIo, Errno, Timespec};

/// pcap magic for microsecond timestamps.
pub const MAGIC_USEC: u32 = 0xa1b2_c3d4;
/// `LINKTYPE_ETHERNET`.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Longest frame recorded whole.
pub const SNAPLEN: u32 = 65535;

/// The file header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileHeader {
    pub snaplen: u32,
    pub linktype: u32,
}

impl FileHeader {
    pub const LEN: usize = 24;

    pub fn emit(&self, buf: &mut [u8; Self::LEN]) {
        buf[0..4].copy_from_slice(&MAGIC_USEC.to_ne_bytes());
        buf[4..6].copy_from_slice(&2u16.to_ne_bytes());
        buf[6..8].copy_from_slice(&4u16.to_ne_bytes());
        buf[8..16].fill(0);
        buf[16..20].copy_from_slice(&self.snaplen.to_ne_bytes());
        buf[20..24].copy_from_slice(&self.linktype.to_ne_bytes());
    }

    /// Parses a header written in this host's byte order.
    pub fn parse(buf: &[u8]) -> Result<FileHeader, Errno> {
        let b = buf.get(..Self::LEN).ok_or(Errno::EINVAL)?;
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if word(0) != MAGIC_USEC {
            return Err(Errno::EINVAL);
        }
        Ok(FileHeader {
            snaplen: word(16),
            linktype: word(20),
        })
    }
}

/// The header before each frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    pub sec: u32,
    pub usec: u32,
    pub caplen: u32,
    pub len: u32,
}

impl RecordHeader {
    pub const LEN: usize = 16;

    pub fn emit(&self, buf: &mut [u8; Self::LEN]) {
        buf[0..4].copy_from_slice(&self.sec.to_ne_bytes());
        buf[4..8].copy_from_slice(&self.usec.to_ne_bytes());
        buf[8..12].copy_from_slice(&self.caplen.to_ne_bytes());
        buf[12..16].copy_from_slice(&self.len.to_ne_bytes());
    }

    pub fn parse(buf: &[u8]) -> Result<RecordHeader, Errno> {
        let b = buf.get(..Self::LEN).ok_or(Errno::EINVAL)?;
        let word = |i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let r = RecordHeader {
            sec: word(0),
            usec: word(4),
            caplen: word(8),
            len: word(12),
        };
        if r.caplen > r.len || r.usec >= 1_000_000 {
            return Err(Errno::EINVAL);
        }
        Ok(r)
    }
}

/// An open capture file.
pub(crate) struct Pcap {
    file: Box<dyn BlockIo>,
    offset: u64,
    failed: bool,
}

impl Pcap {
    /// Starts a capture in `file` (truncated).
    pub fn start(file: Box<dyn BlockIo>) -> Result<Pcap, Errno> {
        let _ = file.set_size(0);
        let mut h = [0u8; FileHeader::LEN];
        FileHeader {
            snaplen: SNAPLEN,
            linktype: LINKTYPE_ETHERNET,
        }
        .emit(&mut h);
        file.write_vectored_at(0, &[&h])?;
        Ok(Pcap {
            file,
            offset: FileHeader::LEN as u64,
            failed: false,
        })
    }

    /// Appends one frame. A write error stops the capture (and is not the
    /// sender's problem).
    pub fn record(&mut self, at: Timespec, frame: &[u8]) {
        if self.failed {
            return;
        }
        let cap = frame.len().min(SNAPLEN as usize);
        let mut h = [0u8; RecordHeader::LEN];
        RecordHeader {
            sec: at.sec.max(0) as u32,
            usec: at.nsec / 1000,
            caplen: cap as u32,
            len: frame.len() as u32,
        }
        .emit(&mut h);
        match self
            .file
            .write_vectored_at(self.offset, &[&h, &frame[..cap]])
        {
            Ok(n) => self.offset += n as u64,
            Err(_) => self.failed = true,
        }
    }

    /// Makes what was written durable.
    pub fn flush(&self) {
        let _ = self.file.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip() {
        let mut b = [0u8; FileHeader::LEN];
        let h = FileHeader {
            snaplen: SNAPLEN,
            linktype: LINKTYPE_ETHERNET,
        };
        h.emit(&mut b);
        assert_eq!(FileHeader::parse(&b), Ok(h));
        assert_eq!(FileHeader::parse(&b[..10]), Err(Errno::EINVAL));
        let mut r = [0u8; RecordHeader::LEN];
        let rh = RecordHeader {
            sec: 5,
            usec: 999_999,
            caplen: 60,
            len: 60,
        };
        rh.emit(&mut r);
        assert_eq!(RecordHeader::parse(&r), Ok(rh));
        assert_eq!(RecordHeader::parse(&r[..15]), Err(Errno::EINVAL));
        let bad = RecordHeader { caplen: 61, ..rh };
        bad.emit(&mut r);
        assert_eq!(RecordHeader::parse(&r), Err(Errno::EINVAL));
    }
}
