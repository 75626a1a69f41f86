//! IP fragmentation and reassembly, for IPv4 (RFC 791 §2.3, §3.2; RFC 815;
//! RFC 1122 §3.3.2) and IPv6 (RFC 8200 §4.5; RFC 5722; RFC 6946).
//!
//! Pure and self-contained: the IP layers (`ip.rs`, the IPv6 layer) call
//! in with whole packets and get whole packets back. Nothing here sends a
//! frame, reads a clock or takes a lock; time comes in as `now_ns`.
//!
//! - [`fragment_v4`] and [`fragment_v6`] split a packet that does not fit
//!   a link's MTU into fragments, each in its own buffer with headroom for
//!   the link header in front (the stack's frame buffers keep `ETH_HDR`
//!   bytes there). They return every fragment or an error, never a part.
//! - [`Reassembler`] collects fragments keyed as the RFCs say (IPv4:
//!   source, destination, protocol, identification; IPv6: source,
//!   destination, identification) and hands back the whole packet with a
//!   corrected header once every byte has arrived. Overlapping fragments
//!   discard the datagram. [`ReasmLimits`] bound what a flood of hostile
//!   fragments can hold: datagrams in progress, bytes held, a lifetime.
//!   [`ReasmStats`] counts what happened to every fragment.
//!
//! Every parser checks lengths before it reads; no input panics and no
//! arithmetic on input overflows (offsets and lengths are at most 16 bits
//! wide and are computed in `usize`).

use alloc::vec::Vec;
use core::mem;

use crate::hash::HashMap;
use smoltcp::wire::Ipv4Packet;

/// The smallest MTU an IPv4 link may have: a 60-byte header and 8 bytes
/// of data (RFC 791 §3.2, "Every internet module must be able to forward
/// a datagram of 68 octets without further fragmentation").
pub(crate) const IPV4_MIN_MTU: usize = 68;
/// The smallest MTU an IPv6 link may have (RFC 8200 §5).
pub(crate) const IPV6_MIN_MTU: usize = 1280;
/// The IPv6 Next Header value of a Fragment header (RFC 8200 §4.5).
pub(crate) const NH_FRAGMENT: u8 = 44;

const IPV4_HDR: usize = 20;
use crate::ip6::IPV6_HDR;
/// The IPv6 Fragment header's size.
const FRAG_HDR: usize = 8;
/// The largest IPv4 total length and the largest IPv6 payload length.
const IP_MAX: usize = 65535;
/// IPv6 extension headers that may come before a Fragment header (the
/// unfragmentable part, RFC 8200 §4.5): Hop-by-Hop, Routing, Destination
/// Options. All three are sized in 8-octet units after their first 8.
const NH_HOP_BY_HOP: u8 = 0;
const NH_ROUTING: u8 = 43;
const NH_DEST_OPTS: u8 = 60;
/// An ICMPv6 error carries as much of the packet as fits in 1280 bytes
/// (RFC 4443 §2.4 (c)): 1280 - 40 - 8. ICMPv4 needs less; the caller trims.
const QUOTE_MAX: usize = IPV6_MIN_MTU - IPV6_HDR - 8;
/// Time Exceeded quotes kept until the caller collects them (see
/// [`Reassembler::expire`]); more are counted but not quoted.
const PENDING_MAX: usize = 16;
/// Disjoint received ranges a datagram may have (holes + 1). A legitimate
/// datagram of 64 KiB in 1280-byte fragments has at most 52; the cap stops
/// a sender of 8-byte fragments with gaps from making every insertion cost
/// a long copy of the range list.
const MAX_RANGES: usize = 512;
/// Fixed cost charged per datagram on top of its buffers: the table entry
/// and the allocator's headers, roughly.
const ENTRY_OVERHEAD: usize = mem::size_of::<Key>() + mem::size_of::<Datagram>() + 64;

/// Why a packet could not be fragmented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FragError {
    /// IPv4 with Don't Fragment set: the caller drops it and, when
    /// forwarding, sends ICMP "fragmentation needed" with the MTU
    /// (RFC 792, RFC 1191).
    DontFragment,
    /// The MTU is below [`IPV4_MIN_MTU`] or [`IPV6_MIN_MTU`].
    MtuTooSmall,
    /// Not a packet this module can fragment: a short buffer, a wrong
    /// version, malformed IPv4 options, an IPv6 jumbogram (payload length
    /// 0), an IPv6 packet with Hop-by-Hop, Routing or Fragment headers, or
    /// a fragment whose pieces would need an offset beyond 13 bits.
    Malformed,
}

/// Splits the IPv4 packet at the start of `pkt` into packets of at most
/// `mtu` bytes (RFC 791 §3.2 "Fragmentation and reassembly").
///
/// Each packet comes back in its own buffer: `headroom` zero bytes, then
/// the packet. Buffers come from `new_buf(len)`, which may return a buffer
/// of any length and contents (a frame pool's `get`); it is resized to
/// `len`. A packet that already fits comes back as one unchanged copy,
/// whatever its flags.
///
/// The packet ends where its total length says (trailing bytes, such as
/// Ethernet padding, are ignored). Its transport checksum must already be
/// final: fragments cannot be checksummed one by one. Each fragment keeps
/// the identification, gets its own total length, offset, MF flag and
/// header checksum. Fragmenting a fragment works (forwarding): offsets
/// add up and the last piece keeps the original MF flag.
///
/// Options: the first fragment carries all of them; later ones carry only
/// those whose "copied" flag is set (RFC 791 §3.1, e.g. source routes and
/// security), padded with End of Option List to a 4-byte boundary. The
/// others are left out rather than replaced with No-Operation options, so
/// later fragments carry more data.
pub(crate) fn fragment_v4(
    pkt: &[u8],
    mtu: usize,
    headroom: usize,
    mut new_buf: impl FnMut(usize) -> Vec<u8>,
) -> Result<Vec<Vec<u8>>, FragError> {
    let p = Ipv4Packet::new_checked(pkt).map_err(|_| FragError::Malformed)?;
    if p.version() != 4 {
        return Err(FragError::Malformed);
    }
    let total = usize::from(p.total_len());
    let hlen = usize::from(p.header_len());
    let (Some(header), Some(payload)) = (pkt.get(..hlen), pkt.get(hlen..total)) else {
        return Err(FragError::Malformed);
    };
    if total <= mtu {
        return Ok(alloc::vec![framed(
            &[header, payload],
            headroom,
            &mut new_buf
        )]);
    }
    if mtu < IPV4_MIN_MTU {
        return Err(FragError::MtuTooSmall);
    }
    if p.dont_frag() {
        return Err(FragError::DontFragment);
    }
    let later = later_header_v4(header)?;
    let base = usize::from(p.frag_offset());
    let last_more = p.more_frags();
    // Every piece but the last carries a multiple of 8 bytes; a 60-byte
    // header leaves at least 8 in a 68-byte MTU, so each step advances.
    let mut frags = Vec::new();
    let mut off = 0;
    while off < payload.len() {
        let hdr: &[u8] = if off == 0 { header } else { &later };
        let room = mtu.saturating_sub(hdr.len()) & !7;
        let rest = payload.get(off..).unwrap_or_default();
        let len = room.min(rest.len());
        let is_last = len == rest.len();
        let frag_off = base + off;
        if len == 0 || frag_off > 0xfff8 {
            return Err(FragError::Malformed);
        }
        let data = rest.get(..len).unwrap_or_default();
        let mut buf = framed(&[hdr, data], headroom, &mut new_buf);
        let mut f = Ipv4Packet::new_unchecked(buf.get_mut(headroom..).unwrap_or_default());
        // Both fit in 16 bits: len <= mtu - 20 and the packet was at most
        // 65535 bytes; frag_off was checked above.
        f.set_total_len((hdr.len() + len) as u16);
        f.set_more_frags(!is_last || last_more);
        f.set_frag_offset(frag_off as u16);
        f.fill_checksum();
        frags.push(buf);
        off += len;
    }
    Ok(frags)
}

/// Splits the IPv6 packet at the start of `pkt` into packets of at most
/// `mtu` bytes with a Fragment header (RFC 8200 §4.5), identification
/// `ident` (the caller picks it, unpredictably, per RFC 7739).
///
/// Buffers, headroom and the packet that already fits work as in
/// [`fragment_v4`]. Everything after the 40-byte header is the
/// fragmentable part, so the packet must not start with Hop-by-Hop or
/// Routing headers (refused as [`FragError::Malformed`]); the stack
/// only fragments TCP, UDP and ICMPv6 packets that it originates, which
/// carry none. Each fragment repeats the IPv6 header with Next Header 44
/// and its own payload length; the Fragment header carries the original
/// Next Header.
pub(crate) fn fragment_v6(
    pkt: &[u8],
    mtu: usize,
    ident: u32,
    headroom: usize,
    mut new_buf: impl FnMut(usize) -> Vec<u8>,
) -> Result<Vec<Vec<u8>>, FragError> {
    let hdr = pkt.get(..IPV6_HDR).ok_or(FragError::Malformed)?;
    let plen = usize::from(be16(hdr, 4));
    if hdr.first().map(|b| b >> 4) != Some(6) || plen == 0 {
        return Err(FragError::Malformed);
    }
    let payload = pkt
        .get(IPV6_HDR..IPV6_HDR + plen)
        .ok_or(FragError::Malformed)?;
    if IPV6_HDR + plen <= mtu {
        return Ok(alloc::vec![framed(&[hdr, payload], headroom, &mut new_buf)]);
    }
    if mtu < IPV6_MIN_MTU {
        return Err(FragError::MtuTooSmall);
    }
    let next_header = hdr.get(6).copied().unwrap_or_default();
    if matches!(next_header, NH_HOP_BY_HOP | NH_ROUTING | NH_FRAGMENT) {
        return Err(FragError::Malformed);
    }
    let room = (mtu - IPV6_HDR - FRAG_HDR) & !7;
    let mut frags = Vec::new();
    let mut off = 0;
    for data in payload.chunks(room) {
        let is_last = off + data.len() == plen;
        // off < plen <= 65535 and is a multiple of 8: it fits the 13-bit
        // field in 8-octet units as is.
        let word = (off as u16) | u16::from(!is_last);
        let mut fh = [0; FRAG_HDR];
        fh[0] = next_header;
        fh[2..4].copy_from_slice(&word.to_be_bytes());
        fh[4..8].copy_from_slice(&ident.to_be_bytes());
        let mut buf = framed(&[hdr, &fh, data], headroom, &mut new_buf);
        if let Some(h) = buf.get_mut(headroom..headroom + IPV6_HDR) {
            // data.len() <= room <= 65535 - 8.
            h[4..6].copy_from_slice(&((FRAG_HDR + data.len()) as u16).to_be_bytes());
            h[6] = NH_FRAGMENT;
        }
        frags.push(buf);
        off += data.len();
    }
    Ok(frags)
}

/// The bounds of a [`Reassembler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ReasmLimits {
    /// Datagrams in progress at once; a new one evicts the oldest.
    pub max_datagrams: usize,
    /// Bytes held in total (buffer capacities plus a fixed overhead per
    /// datagram); a datagram that needs more evicts the oldest others.
    pub max_bytes: usize,
    /// Lifetime of an IPv4 datagram from its first fragment (RFC 791
    /// suggests 15 s; Linux and the BSDs use 30 s).
    pub timeout_v4_ns: u64,
    /// Lifetime of an IPv6 datagram from its first fragment (RFC 8200
    /// §4.5: 60 s).
    pub timeout_v6_ns: u64,
}

impl Default for ReasmLimits {
    fn default() -> Self {
        ReasmLimits {
            max_datagrams: 64,
            max_bytes: 4 << 20,
            timeout_v4_ns: 30_000_000_000,
            timeout_v6_ns: 60_000_000_000,
        }
    }
}

/// What became of one packet given to a [`Reassembler`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Reasm {
    /// Not a fragment (IPv4 offset 0 and MF clear): use it as it is.
    NotFragment,
    /// Kept (or an exact duplicate of what is kept); the datagram is
    /// not complete yet.
    Held,
    /// The whole packet: IPv4 with total length, MF, offset and header
    /// checksum corrected; IPv6 with the Fragment header removed, the
    /// Next Header before it and the payload length corrected. An IPv6
    /// atomic fragment (offset 0, M clear) comes back at once, alone
    /// (RFC 6946).
    Complete(Vec<u8>),
    /// Dropped: the fragment, and for [`DropReason::Overlap`],
    /// [`DropReason::Inconsistent`], [`DropReason::TooFragmented`] and
    /// [`DropReason::NoMemory`] its whole datagram. Later fragments of a
    /// discarded datagram start a new one, which times out.
    Dropped(DropReason),
}

/// Why a [`Reassembler`] dropped a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Short or wrong-version header, a Fragment header not where the
    /// caller said, or (MF set) an empty or not 8-byte-multiple payload.
    /// For the last case in IPv6, RFC 8200 §4.5 wants an ICMPv6
    /// Parameter Problem (code 0, pointing at the Payload Length field).
    Malformed,
    /// The datagram would be longer than 65535 bytes (IPv4 total
    /// length, IPv6 payload length). For IPv6, RFC 8200 §4.5 wants an
    /// ICMPv6 Parameter Problem (code 0, pointing at the Fragment Offset
    /// field).
    TooBig,
    /// The fragment overlaps data already received without being an
    /// exact duplicate of it: the datagram is discarded (RFC 5722 for
    /// IPv6; for IPv4 too, as Linux and modern practice do, since
    /// overlaps only serve to slip data past filters).
    Overlap,
    /// The fragment disagrees with the datagram's end: a second last
    /// fragment with another end, data past the end, or a last fragment
    /// repeating data that came with MF set. The datagram is discarded.
    Inconsistent,
    /// The datagram has more than [`MAX_RANGES`] separate pieces.
    TooFragmented,
    /// The limits cannot hold this datagram even with every other one
    /// evicted (or allow no datagrams at all).
    NoMemory,
}

/// Counters of a [`Reassembler`]; each fragment or datagram is counted
/// once, in the first that applies.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ReasmStats {
    /// Fragments received (every input that was a fragment).
    pub fragments: u64,
    /// Datagrams completed, atomic IPv6 fragments included.
    pub reassembled: u64,
    /// Exact duplicates ignored.
    pub duplicates: u64,
    /// Fragments dropped as [`DropReason::Malformed`] or
    /// [`DropReason::Inconsistent`].
    pub malformed: u64,
    /// Fragments dropped as [`DropReason::TooBig`].
    pub too_big: u64,
    /// Datagrams discarded for an overlap.
    pub overlaps: u64,
    /// Datagrams discarded as [`DropReason::TooFragmented`].
    pub too_fragmented: u64,
    /// Datagrams discarded as [`DropReason::NoMemory`].
    pub no_memory: u64,
    /// Datagrams evicted, oldest first, to make room for others.
    pub evicted: u64,
    /// Datagrams that timed out.
    pub timeouts: u64,
}

/// The start of a datagram that timed out after its first fragment
/// arrived, for the ICMP Time Exceeded (code 1, "fragment reassembly time
/// exceeded") the caller sends: ICMPv4 (RFC 792; RFC 1122 §3.3.2) or
/// ICMPv6 (RFC 8200 §4.5; RFC 4443 §3.3). Each holds the first fragment
/// as received, cut to 1232 bytes; the caller trims it further to its
/// quote size and applies its usual rules (rate limit, no error about a
/// multicast destination).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    V4(Vec<u8>),
    V6(Vec<u8>),
}

/// Reassembles IPv4 and IPv6 datagrams from their fragments, within
/// [`ReasmLimits`].
///
/// Each datagram keeps one buffer of its data, grown as fragments arrive
/// (to the final size once the last fragment says it), and a sorted list
/// of the byte ranges received, merged when they touch: RFC 815's hole
/// list, kept the other way round. A datagram is complete when one range
/// covers it. Costs per fragment: a hash lookup, a binary search, a copy
/// of its data; and, only when the table is full, a scan for the oldest.
pub(crate) struct Reassembler {
    limits: ReasmLimits,
    table: HashMap<Key, Datagram>,
    /// Sum of the costs of the datagrams in `table`.
    bytes: usize,
    /// No datagram expires before this (a lower bound: datagrams that
    /// completed or were evicted may have had it).
    next_deadline: u64,
    /// Creation counter: the oldest datagram has the smallest.
    seq: u64,
    /// Time Exceeded quotes not yet collected by `expire`.
    pending: Vec<Expired>,
    stats: ReasmStats,
}

impl Reassembler {
    /// A table with seed 0 (tests).
    #[cfg(test)]
    pub(crate) fn new(limits: ReasmLimits) -> Self {
        Self::with_seed(limits, 0)
    }

    /// A reassembler whose table hashes with `seed` (see `hash.rs`).
    pub(crate) fn with_seed(limits: ReasmLimits, seed: u64) -> Self {
        Reassembler {
            limits,
            table: crate::hash::map(seed),
            bytes: 0,
            next_deadline: u64::MAX,
            seq: 0,
            pending: Vec::new(),
            stats: ReasmStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> ReasmStats {
        self.stats
    }

    /// Datagrams in progress.
    pub(crate) fn in_progress(&self) -> usize {
        self.table.len()
    }

    /// Bytes held, as charged against [`ReasmLimits::max_bytes`].
    pub(crate) fn bytes_held(&self) -> usize {
        self.bytes
    }

    /// Handles an IPv4 packet (header checksum already checked by the
    /// caller, or not needed on its link). Expires old datagrams first.
    pub(crate) fn input_v4(&mut self, pkt: &[u8], now_ns: u64) -> Reasm {
        self.expire_due(now_ns);
        let Ok(p) = Ipv4Packet::new_checked(pkt) else {
            return self.drop_fragment(DropReason::Malformed);
        };
        let offset = usize::from(p.frag_offset());
        let more = p.more_frags();
        if p.version() != 4 {
            return self.drop_fragment(DropReason::Malformed);
        }
        if offset == 0 && !more {
            return Reasm::NotFragment;
        }
        self.stats.fragments += 1;
        let hlen = usize::from(p.header_len());
        let total = usize::from(p.total_len());
        let (Some(hdr), Some(data)) = (pkt.get(..hlen), pkt.get(hlen..total)) else {
            return self.drop_fragment(DropReason::Malformed);
        };
        let key = Key::V4 {
            src: p.src_addr().octets(),
            dst: p.dst_addr().octets(),
            proto: u8::from(p.next_header()),
            ident: p.ident(),
        };
        let frag = Fragment {
            offset,
            more,
            data,
            hdr,
            prefix: hlen,
            nh_pos: 0,
            next_header: 0,
        };
        self.insert(key, frag, now_ns.saturating_add(self.limits.timeout_v4_ns))
    }

    /// Handles an IPv6 packet whose Fragment header starts at
    /// `frag_hdr_offset` (40 when it follows the IPv6 header; later after
    /// Hop-by-Hop, Routing or Destination Options headers, which this
    /// function walks again to find the Next Header field to fix up).
    /// Everything before the Fragment header of the first fragment is the
    /// unfragmentable part of the result (RFC 8200 §4.5). Expires old
    /// datagrams first. It does not check that the first fragment holds
    /// the upper-layer header (RFC 7112): the caller's protocol input
    /// drops a short one.
    pub(crate) fn input_v6(&mut self, pkt: &[u8], frag_hdr_offset: usize, now_ns: u64) -> Reasm {
        self.expire_due(now_ns);
        let Some(fixed) = pkt.get(..IPV6_HDR) else {
            return self.drop_fragment(DropReason::Malformed);
        };
        let plen = usize::from(be16(fixed, 4));
        let version = fixed.first().map(|b| b >> 4);
        let Some(pkt) = pkt
            .get(..IPV6_HDR + plen)
            .filter(|_| plen != 0 && version == Some(6))
        else {
            return self.drop_fragment(DropReason::Malformed);
        };
        self.stats.fragments += 1;
        let fh_end = frag_hdr_offset.saturating_add(FRAG_HDR);
        let nh_pos = v6_next_header_pos(pkt, frag_hdr_offset);
        let (Some(nh_pos), Some(fh), Some(hdr), Some(data)) = (
            nh_pos,
            pkt.get(frag_hdr_offset..fh_end),
            pkt.get(..fh_end),
            pkt.get(fh_end..),
        ) else {
            return self.drop_fragment(DropReason::Malformed);
        };
        let word = be16(fh, 2);
        let offset = usize::from(word & 0xfff8);
        let more = word & 1 != 0;
        let next_header = fh.first().copied().unwrap_or_default();
        let frag = Fragment {
            offset,
            more,
            data,
            hdr,
            prefix: frag_hdr_offset - IPV6_HDR,
            nh_pos,
            next_header,
        };
        if offset == 0 && !more {
            // An atomic fragment stands alone, apart from any datagram
            // with its identification (RFC 6946 §4).
            return match assemble_v6(&frag) {
                Ok(whole) => {
                    self.stats.reassembled += 1;
                    Reasm::Complete(whole)
                }
                Err(why) => self.drop_fragment(why),
            };
        }
        let key = Key::V6 {
            src: array_at(fixed, 8),
            dst: array_at(fixed, 24),
            ident: u32::from_be_bytes(array_at(fh, 4)),
        };
        self.insert(key, frag, now_ns.saturating_add(self.limits.timeout_v6_ns))
    }

    /// When [`Reassembler::expire`] next has work: no later than this, or
    /// `None` when nothing is in progress or waiting to be collected.
    #[cfg(test)]
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if !self.pending.is_empty() {
            return Some(0);
        }
        (!self.table.is_empty()).then_some(self.next_deadline)
    }

    /// Discards the datagrams whose time is up and returns the quotes for
    /// the Time Exceeded messages owed for them, including those that
    /// timed out during earlier input (at most 16 wait; more are counted
    /// in `timeouts` only). Run it when the caller's timer
    /// passes, or now and then.
    pub(crate) fn expire(&mut self, now_ns: u64) -> Vec<Expired> {
        self.expire_due(now_ns);
        mem::take(&mut self.pending)
    }

    fn expire_due(&mut self, now_ns: u64) {
        if now_ns < self.next_deadline {
            return;
        }
        let mut next = u64::MAX;
        let (stats, bytes, pending) = (&mut self.stats, &mut self.bytes, &mut self.pending);
        self.table.retain(|key, d| {
            if now_ns < d.deadline {
                next = next.min(d.deadline);
                return true;
            }
            stats.timeouts += 1;
            *bytes = bytes.saturating_sub(d.cost);
            if pending.len() < PENDING_MAX {
                if let Some(q) = d.quote(key) {
                    pending.push(q);
                }
            }
            false
        });
        self.next_deadline = next;
    }

    fn drop_fragment(&mut self, why: DropReason) -> Reasm {
        let s = &mut self.stats;
        match why {
            DropReason::Malformed | DropReason::Inconsistent => s.malformed += 1,
            DropReason::TooBig => s.too_big += 1,
            DropReason::Overlap => s.overlaps += 1,
            DropReason::TooFragmented => s.too_fragmented += 1,
            DropReason::NoMemory => s.no_memory += 1,
        }
        Reasm::Dropped(why)
    }

    /// Adds a fragment to its datagram. The datagram is taken out of the
    /// table while it changes, so that evicting others cannot touch it.
    fn insert(&mut self, key: Key, frag: Fragment<'_>, deadline: u64) -> Reasm {
        let len = frag.data.len();
        let end = frag.offset + len;
        if end > IP_MAX - frag.prefix.min(IP_MAX) {
            return self.drop_fragment(DropReason::TooBig);
        }
        if frag.more && (len == 0 || !len.is_multiple_of(8)) {
            return self.drop_fragment(DropReason::Malformed);
        }
        let mut d = match self.table.remove(&key) {
            Some(d) => {
                self.bytes = self.bytes.saturating_sub(d.cost);
                d
            }
            None => {
                if self.limits.max_datagrams == 0 {
                    return self.drop_fragment(DropReason::NoMemory);
                }
                while self.table.len() >= self.limits.max_datagrams && self.evict_oldest() {}
                self.seq = self.seq.wrapping_add(1);
                self.next_deadline = self.next_deadline.min(deadline);
                Datagram::new(self.seq, deadline)
            }
        };
        match d.add(&frag) {
            Ok(Added::Duplicate) => {
                self.stats.duplicates += 1;
                return self.put_back(key, d);
            }
            Ok(Added::New) => {}
            Err(why) => return self.drop_fragment(why),
        }
        if d.is_complete() {
            return match d.assemble(&key) {
                Ok(whole) => {
                    self.stats.reassembled += 1;
                    Reasm::Complete(whole)
                }
                Err(why) => self.drop_fragment(why),
            };
        }
        d.cost = d.cost();
        if d.cost > self.limits.max_bytes {
            return self.drop_fragment(DropReason::NoMemory);
        }
        while self.bytes.saturating_add(d.cost) > self.limits.max_bytes && self.evict_oldest() {}
        self.put_back(key, d)
    }

    fn put_back(&mut self, key: Key, d: Datagram) -> Reasm {
        self.bytes += d.cost;
        self.table.insert(key, d);
        Reasm::Held
    }

    /// Evicts the oldest datagram in the table; false when it is empty.
    fn evict_oldest(&mut self) -> bool {
        let Some(key) = self
            .table
            .iter()
            .min_by_key(|(_, d)| d.seq)
            .map(|(k, _)| *k)
        else {
            return false;
        };
        if let Some(d) = self.table.remove(&key) {
            self.bytes = self.bytes.saturating_sub(d.cost);
            self.stats.evicted += 1;
        }
        true
    }
}

/// What identifies a datagram (RFC 791 §3.2; RFC 8200 §4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    V4 {
        src: [u8; 4],
        dst: [u8; 4],
        proto: u8,
        ident: u16,
    },
    V6 {
        src: [u8; 16],
        dst: [u8; 16],
        ident: u32,
    },
}

/// One fragment, parsed.
struct Fragment<'a> {
    /// Offset of `data` in the datagram's fragmentable part, in bytes.
    offset: usize,
    more: bool,
    data: &'a [u8],
    /// What a first fragment (offset 0) leaves for the result: the IPv4
    /// header; the IPv6 unfragmentable part and Fragment header.
    hdr: &'a [u8],
    /// Bytes of the result before the data that count against the 65535
    /// limit: the IPv4 header; the IPv6 extension headers before the
    /// Fragment header.
    prefix: usize,
    /// IPv6: where in `hdr` the Next Header naming the Fragment header is,
    /// and the Next Header the Fragment header carries.
    nh_pos: usize,
    next_header: u8,
}

enum Added {
    New,
    Duplicate,
}

/// A datagram in progress.
struct Datagram {
    seq: u64,
    deadline: u64,
    /// The first fragment's `hdr`, once it has arrived, and its data
    /// length (for the Time Exceeded quote).
    first: Option<FirstFragment>,
    /// The data received so far, zeros in the holes.
    data: Vec<u8>,
    /// Received ranges `[start, end)` of `data`: sorted, disjoint, and
    /// never touching (touching ranges merge).
    ranges: Vec<(usize, usize)>,
    /// The data's length, once the last fragment has said it.
    total: Option<usize>,
    /// What this datagram is charged (see [`Datagram::cost`]), as of its
    /// last return to the table.
    cost: usize,
}

struct FirstFragment {
    hdr: Vec<u8>,
    data_len: usize,
    prefix: usize,
    nh_pos: usize,
    next_header: u8,
}

impl Datagram {
    fn new(seq: u64, deadline: u64) -> Self {
        Datagram {
            seq,
            deadline,
            first: None,
            data: Vec::new(),
            ranges: Vec::new(),
            total: None,
            cost: 0,
        }
    }

    /// Memory held: capacities, not lengths, so that what is charged is
    /// what the allocator gave.
    fn cost(&self) -> usize {
        ENTRY_OVERHEAD
            + self.data.capacity()
            + self.ranges.capacity() * mem::size_of::<(usize, usize)>()
            + self.first.as_ref().map_or(0, |f| f.hdr.capacity())
    }

    fn is_complete(&self) -> bool {
        self.total.is_some_and(|t| self.ranges == [(0, t)])
    }

    /// Adds a fragment whose length and flags have been checked.
    fn add(&mut self, frag: &Fragment<'_>) -> Result<Added, DropReason> {
        let (start, end) = (frag.offset, frag.offset + frag.data.len());
        let received_end = self.ranges.last().map_or(0, |r| r.1);
        match (frag.more, self.total) {
            (false, Some(t)) if t != end => return Err(DropReason::Inconsistent),
            (false, None) if received_end > end => return Err(DropReason::Inconsistent),
            (true, Some(t)) if end > t => return Err(DropReason::Inconsistent),
            _ => {}
        }
        // The first range that ends after `start`; those before it end
        // at or before it.
        let i = self.ranges.partition_point(|r| r.1 <= start);
        let next = self.ranges.get(i).copied();
        if let Some((s, e)) = next.filter(|r| r.0 < end) {
            // An exact duplicate lies within one received range and
            // repeats its bytes (RFC 8200 §4.5 lets it be dropped alone);
            // anything else that touches received data is an overlap.
            let same = s <= start && end <= e && self.data.get(start..end) == Some(frag.data);
            return match (same, frag.more, self.total) {
                // What came before had MF set, or the end would be known.
                (true, false, None) => Err(DropReason::Inconsistent),
                (true, _, _) => Ok(Added::Duplicate),
                (false, _, _) => Err(DropReason::Overlap),
            };
        }
        if !frag.more {
            self.total = Some(end);
        }
        if start == end {
            // An empty last fragment: it only says where the end is.
            return Ok(Added::New);
        }
        let joins_prev = i > 0 && self.ranges.get(i - 1).is_some_and(|r| r.1 == start);
        let joins_next = next.is_some_and(|r| r.0 == end);
        match (joins_prev, joins_next) {
            (true, true) => {
                let merged_end = next.map_or(end, |r| r.1);
                if let Some(r) = self.ranges.get_mut(i - 1) {
                    r.1 = merged_end;
                }
                self.ranges.remove(i);
            }
            (true, false) => {
                if let Some(r) = self.ranges.get_mut(i - 1) {
                    r.1 = end;
                }
            }
            (false, true) => {
                if let Some(r) = self.ranges.get_mut(i) {
                    r.0 = start;
                }
            }
            (false, false) => {
                if self.ranges.len() >= MAX_RANGES {
                    return Err(DropReason::TooFragmented);
                }
                self.ranges.insert(i, (start, end));
            }
        }
        self.grow(end);
        if let Some(dst) = self.data.get_mut(start..end) {
            dst.copy_from_slice(frag.data);
        }
        if start == 0 {
            self.first = Some(FirstFragment {
                hdr: frag.hdr.to_vec(),
                data_len: frag.data.len(),
                prefix: frag.prefix,
                nh_pos: frag.nh_pos,
                next_header: frag.next_header,
            });
        }
        Ok(Added::New)
    }

    /// Makes `data` at least `end` long. Capacity goes straight to the
    /// total once it is known, and otherwise doubles (in-order arrival
    /// costs few copies) without passing the largest possible datagram.
    fn grow(&mut self, end: usize) {
        if end <= self.data.len() {
            return;
        }
        if end > self.data.capacity() {
            let want = self
                .total
                .unwrap_or_else(|| self.data.capacity().saturating_mul(2).min(IP_MAX))
                .max(end);
            self.data.reserve_exact(want - self.data.len());
        }
        self.data.resize(end, 0);
    }

    /// The whole packet, from a complete datagram.
    fn assemble(&self, key: &Key) -> Result<Vec<u8>, DropReason> {
        let (Some(first), Some(data)) = (
            self.first.as_ref(),
            self.total.and_then(|t| self.data.get(..t)),
        ) else {
            return Err(DropReason::Malformed);
        };
        match key {
            Key::V4 { .. } => assemble_v4(&first.hdr, data),
            Key::V6 { .. } => {
                let frag = Fragment {
                    offset: 0,
                    more: false,
                    data,
                    hdr: &first.hdr,
                    prefix: first.prefix,
                    nh_pos: first.nh_pos,
                    next_header: first.next_header,
                };
                assemble_v6(&frag)
            }
        }
    }

    /// The first fragment as it arrived, cut to [`QUOTE_MAX`] bytes.
    fn quote(&self, key: &Key) -> Option<Expired> {
        let first = self.first.as_ref()?;
        let data = self.data.get(..first.data_len)?;
        let mut q = Vec::with_capacity(QUOTE_MAX.min(first.hdr.len() + data.len()));
        q.extend(first.hdr.iter().chain(data).take(QUOTE_MAX));
        Some(match key {
            Key::V4 { .. } => Expired::V4(q),
            Key::V6 { .. } => Expired::V6(q),
        })
    }
}

/// An IPv4 packet from its first fragment's header and all the data.
fn assemble_v4(hdr: &[u8], data: &[u8]) -> Result<Vec<u8>, DropReason> {
    let total = u16::try_from(hdr.len() + data.len()).map_err(|_| DropReason::TooBig)?;
    if hdr.len() < IPV4_HDR {
        return Err(DropReason::Malformed);
    }
    let mut whole = Vec::with_capacity(usize::from(total));
    whole.extend_from_slice(hdr);
    whole.extend_from_slice(data);
    let mut p = Ipv4Packet::new_unchecked(&mut whole[..]);
    p.set_total_len(total);
    p.set_more_frags(false);
    p.set_frag_offset(0);
    p.fill_checksum();
    Ok(whole)
}

/// An IPv6 packet from the first fragment's unfragmentable part and all
/// the data, given as one fragment at offset 0.
fn assemble_v6(frag: &Fragment<'_>) -> Result<Vec<u8>, DropReason> {
    let (hdr, data) = (frag.hdr, frag.data);
    let unfrag = hdr
        .get(..hdr.len().saturating_sub(FRAG_HDR))
        .filter(|u| u.len() >= IPV6_HDR && frag.nh_pos < u.len())
        .ok_or(DropReason::Malformed)?;
    let plen = u16::try_from(frag.prefix + data.len()).map_err(|_| DropReason::TooBig)?;
    let mut whole = Vec::with_capacity(unfrag.len() + data.len());
    whole.extend_from_slice(unfrag);
    whole.extend_from_slice(data);
    whole[4..6].copy_from_slice(&plen.to_be_bytes());
    whole[frag.nh_pos] = frag.next_header;
    Ok(whole)
}

/// Where the Next Header field naming the Fragment header at `frag_off`
/// is: the IPv6 header's, or that of the extension header just before,
/// found by walking the unfragmentable part. `None` when the walk does
/// not land on `frag_off` or that field does not say 44.
fn v6_next_header_pos(pkt: &[u8], frag_off: usize) -> Option<usize> {
    let mut nh_pos = 6;
    let mut pos = IPV6_HDR;
    while pos < frag_off {
        let nh = *pkt.get(nh_pos)?;
        if !matches!(nh, NH_HOP_BY_HOP | NH_ROUTING | NH_DEST_OPTS) {
            return None;
        }
        let units = usize::from(*pkt.get(pos + 1)?);
        nh_pos = pos;
        pos += (units + 1) * 8;
    }
    (pos == frag_off && pkt.get(nh_pos) == Some(&NH_FRAGMENT)).then_some(nh_pos)
}

/// A buffer from `new_buf` holding `headroom` zero bytes and then `parts`.
fn framed(parts: &[&[u8]], headroom: usize, new_buf: &mut impl FnMut(usize) -> Vec<u8>) -> Vec<u8> {
    let len = headroom + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut buf = new_buf(len);
    buf.clear();
    buf.resize(headroom, 0);
    for p in parts {
        buf.extend_from_slice(p);
    }
    buf
}

/// The header of IPv4 fragments after the first: the fixed part and the
/// options with the "copied" flag (RFC 791 §3.1), padded with End of
/// Option List, with its header length set.
fn later_header_v4(header: &[u8]) -> Result<Vec<u8>, FragError> {
    let (fixed, opts) = header
        .split_at_checked(IPV4_HDR)
        .ok_or(FragError::Malformed)?;
    let mut out = Vec::with_capacity(header.len());
    out.extend_from_slice(fixed);
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let len = usize::from(*opts.get(i + 1).ok_or(FragError::Malformed)?);
                let opt = opts
                    .get(i..i + len)
                    .filter(|_| len >= 2)
                    .ok_or(FragError::Malformed)?;
                if kind & 0x80 != 0 {
                    out.extend_from_slice(opt);
                }
                i += len;
            }
        }
    }
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    // At most 60 bytes: a subset of a valid header's options.
    let ihl = (out.len() / 4) as u8 & 0xf;
    if let Some(b) = out.first_mut() {
        *b = 0x40 | ihl;
    }
    Ok(out)
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(array_at(b, at))
}

/// `N` bytes of `b` from `at`, zeros where `b` is too short (callers
/// check lengths first; this only keeps a slip from panicking).
fn array_at<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut a = [0; N];
    if let Some(s) = b.get(at..at + N) {
        a.copy_from_slice(s);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    const SEC: u64 = 1_000_000_000;

    /// A fixed-seed xorshift64 generator (no dependency, reproducible).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }

        fn shuffle<T>(&mut self, v: &mut [T]) {
            for i in (1..v.len()).rev() {
                let j = self.below(i + 1);
                v.swap(i, j);
            }
        }
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ seed).collect()
    }

    fn v4_packet(payload_len: usize, options: &[u8], ident: u16, seed: u8) -> Vec<u8> {
        assert!(options.len().is_multiple_of(4) && options.len() <= 40);
        let hlen = IPV4_HDR + options.len();
        let mut b = vec![0u8; hlen + payload_len];
        b[IPV4_HDR..hlen].copy_from_slice(options);
        b[hlen..].copy_from_slice(&pattern(payload_len, seed));
        let mut p = Ipv4Packet::new_unchecked(&mut b[..]);
        p.set_version(4);
        p.set_header_len(hlen as u8);
        p.set_total_len((hlen + payload_len) as u16);
        p.set_ident(ident);
        p.set_hop_limit(64);
        p.set_next_header(smoltcp::wire::IpProtocol::Udp);
        p.set_src_addr(core::net::Ipv4Addr::new(192, 0, 2, 1));
        p.set_dst_addr(core::net::Ipv4Addr::new(192, 0, 2, 2));
        p.fill_checksum();
        b
    }

    /// An IPv6 packet: header, `ext` (extension headers, whose first
    /// byte chain the caller sets), payload; Next Header `nh`.
    fn v6_packet(payload_len: usize, nh: u8, seed: u8) -> Vec<u8> {
        let mut b = vec![0u8; IPV6_HDR + payload_len];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&(payload_len as u16).to_be_bytes());
        b[6] = nh;
        b[7] = 64;
        b[8] = 0x20;
        b[9] = 0x01;
        b[23] = 1;
        b[24] = 0x20;
        b[25] = 0x01;
        b[39] = 2;
        b[IPV6_HDR..].copy_from_slice(&pattern(payload_len, seed));
        b
    }

    fn new_vec(n: usize) -> Vec<u8> {
        vec![0; n]
    }

    fn frag4(pkt: &[u8], mtu: usize) -> Vec<Vec<u8>> {
        fragment_v4(pkt, mtu, 0, new_vec).expect("fragments")
    }

    fn frag6(pkt: &[u8], mtu: usize, ident: u32) -> Vec<Vec<u8>> {
        fragment_v6(pkt, mtu, ident, 0, new_vec).expect("fragments")
    }

    /// Feeds fragments; returns the one Complete result, checking that
    /// all other results are Held.
    fn feed(r: &mut Reassembler, frags: &[Vec<u8>], v6: bool, now: u64) -> Option<Vec<u8>> {
        let mut done = None;
        for f in frags {
            let res = if v6 {
                r.input_v6(f, IPV6_HDR, now)
            } else {
                r.input_v4(f, now)
            };
            match res {
                Reasm::Complete(w) => {
                    assert!(done.is_none(), "completed twice");
                    done = Some(w);
                }
                Reasm::Held => {}
                other => panic!("unexpected {other:?}"),
            }
            check_accounting(r);
        }
        done
    }

    fn check_accounting(r: &Reassembler) {
        let sum: usize = r.table.values().map(|d| d.cost).sum();
        assert_eq!(sum, r.bytes, "bytes charged");
        for d in r.table.values() {
            assert_eq!(d.cost, d.cost(), "stale cost");
            assert!(d.ranges.windows(2).all(|w| w[0].1 < w[1].0));
        }
        assert!(r.bytes <= r.limits.max_bytes);
        assert!(r.table.len() <= r.limits.max_datagrams);
    }

    /// Fragments in order, reversed, shuffled, and all twice shuffled.
    fn orders(frags: &[Vec<u8>], seed: u64) -> Vec<Vec<Vec<u8>>> {
        let mut rng = Rng(seed);
        let fwd = frags.to_vec();
        let mut rev = fwd.clone();
        rev.reverse();
        let mut shuf = fwd.clone();
        rng.shuffle(&mut shuf);
        let mut dup: Vec<Vec<u8>> = fwd.iter().chain(fwd.iter()).cloned().collect();
        rng.shuffle(&mut dup);
        vec![fwd, rev, shuf, dup]
    }

    /// Reassembles `frags` in each of [`orders`]: the packet comes back,
    /// once per full set (the repeats in the duplicated order may make a
    /// second set after the first completes).
    fn round_trip(pkt: &[u8], frags: &[Vec<u8>], v6: bool) {
        for (n, order) in orders(frags, 7).into_iter().enumerate() {
            let mut r = Reassembler::new(ReasmLimits::default());
            let mut done = 0;
            for f in &order {
                let res = if v6 {
                    r.input_v6(f, IPV6_HDR, 0)
                } else {
                    r.input_v4(f, 0)
                };
                check_accounting(&r);
                match res {
                    Reasm::Complete(w) => {
                        assert_eq!(w, pkt, "order {n}");
                        done += 1;
                    }
                    Reasm::Held => {}
                    other => panic!("order {n}: unexpected {other:?}"),
                }
            }
            assert!(done >= 1, "order {n}: incomplete");
            assert_eq!(r.stats().reassembled, done);
            if n < 3 {
                assert_eq!(done, 1);
                assert_eq!(r.in_progress(), 0);
                assert_eq!(r.bytes_held(), 0);
            } else {
                assert!(r.stats().duplicates > 0 || done == 2, "order {n}");
                assert!(r.in_progress() <= 1);
            }
        }
    }

    fn check_v4_fragments(pkt: &[u8], frags: &[Vec<u8>], mtu: usize) {
        let orig = Ipv4Packet::new_checked(pkt).unwrap();
        let mut expect_off = 0;
        for (i, f) in frags.iter().enumerate() {
            assert!(f.len() <= mtu);
            let p = Ipv4Packet::new_checked(&f[..]).unwrap();
            assert!(p.verify_checksum());
            assert_eq!(usize::from(p.total_len()), f.len());
            assert_eq!(p.ident(), orig.ident());
            assert_eq!(usize::from(p.frag_offset()), expect_off);
            let last = i + 1 == frags.len();
            assert_eq!(p.more_frags(), !last);
            if !last {
                assert_eq!(p.payload().len() % 8, 0);
            }
            expect_off += p.payload().len();
        }
        assert_eq!(expect_off, orig.payload().len());
    }

    #[test]
    fn v4_round_trip() {
        for (len, mtu) in [
            (3000, 1500),
            (3000, 576),
            (1000, 68),
            (65515, 1500),
            (1481, 1500),
        ] {
            let pkt = v4_packet(len, &[], 0x1234, 3);
            let frags = frag4(&pkt, mtu);
            assert!(frags.len() >= 2);
            check_v4_fragments(&pkt, &frags, mtu);
            round_trip(&pkt, &frags, false);
        }
    }

    #[test]
    fn v4_options_copied_or_dropped() {
        // Loose source route (131, copied), record route (7, not copied),
        // a No-Operation and End of Option List: 16 bytes.
        let opts = [131, 7, 4, 10, 0, 0, 1, 7, 7, 4, 0, 0, 0, 0, 1, 0];
        let pkt = v4_packet(2000, &opts, 9, 5);
        let frags = frag4(&pkt, 576);
        check_v4_fragments(&pkt, &frags, 576);
        assert_eq!(
            Ipv4Packet::new_checked(&frags[0][..]).unwrap().header_len(),
            36
        );
        for f in &frags[1..] {
            let p = Ipv4Packet::new_checked(&f[..]).unwrap();
            assert_eq!(p.header_len(), 28);
            assert_eq!(&f[20..28], &[131, 7, 4, 10, 0, 0, 1, 0]);
        }
        round_trip(&pkt, &frags, false);
        // Only non-copied options: later fragments have a bare header.
        let pkt = v4_packet(2000, &[7, 7, 4, 0, 0, 0, 0, 0], 10, 5);
        let frags = frag4(&pkt, 576);
        assert!(frags[1..].iter().all(|f| f[0] == 0x45));
        round_trip(&pkt, &frags, false);
    }

    #[test]
    fn v4_bad_options_refused() {
        let mut pkt = v4_packet(2000, &[131, 9, 4, 0], 1, 0);
        assert_eq!(
            fragment_v4(&pkt, 576, 0, new_vec),
            Err(FragError::Malformed)
        );
        pkt[21] = 1;
        let mut p = Ipv4Packet::new_unchecked(&mut pkt[..]);
        p.fill_checksum();
        assert_eq!(
            fragment_v4(&pkt, 576, 0, new_vec),
            Err(FragError::Malformed)
        );
    }

    #[test]
    fn v4_refragment_a_fragment() {
        let pkt = v4_packet(4000, &[], 77, 1);
        let big = frag4(&pkt, 1500);
        let mut small = Vec::new();
        for f in &big {
            small.extend(frag4(f, 576));
        }
        assert!(small.len() > big.len());
        check_v4_fragments(&pkt, &small, 576);
        round_trip(&pkt, &small, false);
    }

    #[test]
    fn v4_df_mtu_and_fits() {
        let mut pkt = v4_packet(3000, &[], 1, 0);
        Ipv4Packet::new_unchecked(&mut pkt[..]).set_dont_frag(true);
        assert_eq!(
            fragment_v4(&pkt, 1500, 0, new_vec),
            Err(FragError::DontFragment)
        );
        let pkt = v4_packet(3000, &[], 1, 0);
        assert_eq!(
            fragment_v4(&pkt, 67, 0, new_vec),
            Err(FragError::MtuTooSmall)
        );
        // A packet that fits comes back whole, DF or not, MTU or not.
        let mut small = v4_packet(40, &[], 1, 0);
        Ipv4Packet::new_unchecked(&mut small[..]).set_dont_frag(true);
        let out = fragment_v4(&small, 60, 0, new_vec).unwrap();
        assert_eq!(out, vec![small.clone()]);
        // Padding past the total length is ignored.
        let mut padded = small.clone();
        padded.extend([0xee; 6]);
        assert_eq!(fragment_v4(&padded, 1500, 0, new_vec).unwrap(), vec![small]);
        assert_eq!(
            fragment_v4(&[0x45; 10], 1500, 0, new_vec),
            Err(FragError::Malformed)
        );
        let mut v6 = v4_packet(40, &[], 1, 0);
        v6[0] = 0x65;
        assert_eq!(
            fragment_v4(&v6, 1500, 0, new_vec),
            Err(FragError::Malformed)
        );
    }

    #[test]
    fn headroom_and_reused_buffers() {
        let pkt = v4_packet(3000, &[], 2, 0);
        let frags = fragment_v4(&pkt, 1500, 14, |_| vec![0xaa; 9000]).unwrap();
        let bare = frag4(&pkt, 1500);
        assert_eq!(frags.len(), bare.len());
        for (f, b) in frags.iter().zip(&bare) {
            assert_eq!(&f[..14], &[0; 14]);
            assert_eq!(&f[14..], &b[..]);
        }
        let pkt = v6_packet(3000, 17, 0);
        let frags = fragment_v6(&pkt, 1280, 5, 14, |_| vec![0xaa; 3]).unwrap();
        for (f, b) in frags.iter().zip(&frag6(&pkt, 1280, 5)) {
            assert_eq!(&f[..14], &[0; 14]);
            assert_eq!(&f[14..], &b[..]);
        }
    }

    #[test]
    fn v6_round_trip() {
        for (len, mtu) in [(3000, 1280), (1241, 1280), (65535, 1500), (5000, 9000 / 2)] {
            let pkt = v6_packet(len, 17, 9);
            let frags = frag6(&pkt, mtu, 0xdead_beef);
            assert!(frags.len() >= 2);
            let mut off = 0;
            for (i, f) in frags.iter().enumerate() {
                assert!(f.len() <= mtu);
                assert_eq!(f[6], NH_FRAGMENT);
                assert_eq!(usize::from(be16(f, 4)), f.len() - IPV6_HDR);
                assert_eq!(f[40], 17);
                assert_eq!(&f[44..48], &0xdead_beef_u32.to_be_bytes());
                let word = be16(f, 42);
                assert_eq!(usize::from(word & 0xfff8), off);
                assert_eq!(word & 1 == 1, i + 1 < frags.len());
                off += f.len() - 48;
            }
            assert_eq!(off, len);
            round_trip(&pkt, &frags, true);
        }
    }

    #[test]
    fn v6_refusals() {
        let pkt = v6_packet(3000, 17, 0);
        assert_eq!(
            fragment_v6(&pkt, 1279, 1, 0, new_vec),
            Err(FragError::MtuTooSmall)
        );
        for nh in [NH_HOP_BY_HOP, NH_ROUTING, NH_FRAGMENT] {
            let pkt = v6_packet(3000, nh, 0);
            assert_eq!(
                fragment_v6(&pkt, 1280, 1, 0, new_vec),
                Err(FragError::Malformed)
            );
        }
        assert_eq!(
            fragment_v6(&pkt[..2000], 1280, 1, 0, new_vec),
            Err(FragError::Malformed)
        );
        let jumbo = v6_packet(0, 17, 0);
        assert_eq!(
            fragment_v6(&jumbo, 1280, 1, 0, new_vec),
            Err(FragError::Malformed)
        );
        let small = v6_packet(100, 17, 0);
        assert_eq!(
            fragment_v6(&small, 1000, 1, 0, new_vec).unwrap(),
            vec![small]
        );
    }

    /// Fragments with a Hop-by-Hop header in the unfragmentable part,
    /// built by hand: the result restores the Hop-by-Hop header's Next
    /// Header and the payload length.
    #[test]
    fn v6_with_extension_header() {
        let payload = pattern(2000, 4);
        let mut whole = v6_packet(8 + payload.len(), NH_HOP_BY_HOP, 0);
        whole[40..48].copy_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]);
        whole[48..].copy_from_slice(&payload);
        let mut frags = Vec::new();
        for (k, chunk) in payload.chunks(1232).enumerate() {
            let mut f = whole[..48].to_vec();
            f[40] = NH_FRAGMENT;
            let more = (k + 1) * 1232 < payload.len();
            let word = ((k * 1232) as u16) | u16::from(more);
            f.extend([58, 0]);
            f.extend(word.to_be_bytes());
            f.extend(7u32.to_be_bytes());
            f.extend(chunk);
            let plen = (f.len() - 40) as u16;
            f[4..6].copy_from_slice(&plen.to_be_bytes());
            frags.push(f);
        }
        let mut r = Reassembler::new(ReasmLimits::default());
        assert_eq!(r.input_v6(&frags[1], 48, 0), Reasm::Held);
        assert_eq!(r.input_v6(&frags[0], 48, 0), Reasm::Complete(whole.clone()));
        // The offset must be where the chain says.
        assert_eq!(
            r.input_v6(&frags[0], 40, 0),
            Reasm::Dropped(DropReason::Malformed)
        );
        assert_eq!(
            r.input_v6(&frags[0], 56, 0),
            Reasm::Dropped(DropReason::Malformed)
        );
    }

    #[test]
    fn v6_atomic_fragment_stands_alone() {
        let pkt = v6_packet(100, 6, 2);
        let mut atomic = pkt[..40].to_vec();
        atomic[6] = NH_FRAGMENT;
        atomic.extend([6, 0, 0, 0, 0, 0, 0, 9]);
        atomic.extend(&pkt[40..]);
        atomic[4..6].copy_from_slice(&108u16.to_be_bytes());
        let mut r = Reassembler::new(ReasmLimits::default());
        // A datagram in progress with the same identification is left be.
        let other = frag6(&v6_packet(3000, 6, 1), 1280, 9);
        assert_eq!(r.input_v6(&other[0], 40, 0), Reasm::Held);
        assert_eq!(r.input_v6(&atomic, 40, 0), Reasm::Complete(pkt));
        assert_eq!(r.in_progress(), 1);
    }

    #[test]
    fn not_fragments_and_malformed() {
        let mut r = Reassembler::new(ReasmLimits::default());
        let pkt = v4_packet(100, &[], 1, 0);
        assert_eq!(r.input_v4(&pkt, 0), Reasm::NotFragment);
        assert_eq!(
            r.input_v4(&pkt[..10], 0),
            Reasm::Dropped(DropReason::Malformed)
        );
        assert_eq!(
            r.input_v4(&pkt[..50], 0),
            Reasm::Dropped(DropReason::Malformed)
        );
        // MF with a length that is not a multiple of 8.
        let mut f = v4_packet(13, &[], 1, 0);
        Ipv4Packet::new_unchecked(&mut f[..]).set_more_frags(true);
        assert_eq!(r.input_v4(&f, 0), Reasm::Dropped(DropReason::Malformed));
        let frags = frag6(&v6_packet(3000, 17, 0), 1280, 1);
        assert_eq!(
            r.input_v6(&frags[0][..100], 40, 0),
            Reasm::Dropped(DropReason::Malformed)
        );
        assert_eq!(
            r.input_v6(&frags[0][..30], 40, 0),
            Reasm::Dropped(DropReason::Malformed)
        );
        assert_eq!(
            r.input_v6(&frags[0], 1000, 0),
            Reasm::Dropped(DropReason::Malformed)
        );
        assert_eq!(
            r.input_v6(&frags[0], usize::MAX, 0),
            Reasm::Dropped(DropReason::Malformed)
        );
        let mut odd = frags[0].clone();
        odd.truncate(odd.len() - 3);
        let plen = (odd.len() - 40) as u16;
        odd[4..6].copy_from_slice(&plen.to_be_bytes());
        assert_eq!(
            r.input_v6(&odd, 40, 0),
            Reasm::Dropped(DropReason::Malformed)
        );
        assert_eq!(r.in_progress(), 0);
        assert_eq!(r.stats().malformed, 8);
    }

    /// An IPv4 fragment of `pkt`'s payload `[off, off+len)`, built by
    /// hand (to make overlaps).
    fn v4_piece(pkt: &[u8], off: usize, len: usize, more: bool) -> Vec<u8> {
        let data = &pkt[20 + off..20 + off + len];
        let mut f = pkt[..20].to_vec();
        f.extend(data);
        let mut p = Ipv4Packet::new_unchecked(&mut f[..]);
        p.set_total_len((20 + len) as u16);
        p.set_more_frags(more);
        p.set_frag_offset(off as u16);
        p.fill_checksum();
        f
    }

    #[test]
    fn v4_overlap_discards_datagram() {
        let pkt = v4_packet(48, &[], 3, 0);
        let mut r = Reassembler::new(ReasmLimits::default());
        assert_eq!(r.input_v4(&v4_piece(&pkt, 0, 16, true), 0), Reasm::Held);
        // Same bytes, but straddling the end of what is held: an overlap.
        let res = r.input_v4(&v4_piece(&pkt, 8, 16, true), 0);
        assert_eq!(res, Reasm::Dropped(DropReason::Overlap));
        assert_eq!(r.in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
        // The rest no longer completes: it starts over.
        assert_eq!(r.input_v4(&v4_piece(&pkt, 16, 32, false), 0), Reasm::Held);
        // Different bytes inside what is held: an overlap too.
        let mut evil = v4_piece(&pkt, 16, 8, true);
        evil[25] ^= 1;
        assert_eq!(r.input_v4(&evil, 0), Reasm::Dropped(DropReason::Overlap));
        assert_eq!(r.stats().overlaps, 2);
        // An exact duplicate, or a subset with the same bytes, is not.
        let mut r = Reassembler::new(ReasmLimits::default());
        assert_eq!(r.input_v4(&v4_piece(&pkt, 0, 24, true), 0), Reasm::Held);
        assert_eq!(r.input_v4(&v4_piece(&pkt, 0, 24, true), 0), Reasm::Held);
        assert_eq!(r.input_v4(&v4_piece(&pkt, 8, 8, true), 0), Reasm::Held);
        assert_eq!(r.stats().duplicates, 2);
        assert_eq!(
            r.input_v4(&v4_piece(&pkt, 24, 24, false), 0),
            Reasm::Complete(pkt)
        );
    }

    #[test]
    fn v4_inconsistent_end() {
        let pkt = v4_packet(64, &[], 3, 0);
        let mut r = Reassembler::new(ReasmLimits::default());
        assert_eq!(r.input_v4(&v4_piece(&pkt, 32, 32, false), 0), Reasm::Held);
        let res = r.input_v4(&v4_piece(&pkt, 32, 16, false), 0);
        assert_eq!(res, Reasm::Dropped(DropReason::Inconsistent));
        assert_eq!(r.in_progress(), 0);
        assert_eq!(r.input_v4(&v4_piece(&pkt, 48, 16, true), 0), Reasm::Held);
        let res = r.input_v4(&v4_piece(&pkt, 8, 16, false), 0);
        assert_eq!(res, Reasm::Dropped(DropReason::Inconsistent));
        assert_eq!(r.input_v4(&v4_piece(&pkt, 16, 16, false), 0), Reasm::Held);
        let res = r.input_v4(&v4_piece(&pkt, 32, 8, true), 0);
        assert_eq!(res, Reasm::Dropped(DropReason::Inconsistent));
        // A last fragment repeating data that came with MF set.
        assert_eq!(r.input_v4(&v4_piece(&pkt, 8, 16, true), 0), Reasm::Held);
        let res = r.input_v4(&v4_piece(&pkt, 16, 8, false), 0);
        assert_eq!(res, Reasm::Dropped(DropReason::Inconsistent));
        assert_eq!(r.stats().malformed, 4);
        assert_eq!(r.in_progress(), 0);
    }

    #[test]
    fn v6_overlap_discards_datagram() {
        let pkt = v6_packet(4000, 17, 0);
        let frags = frag6(&pkt, 1280, 4);
        let mut r = Reassembler::new(ReasmLimits::default());
        assert_eq!(r.input_v6(&frags[0], 40, 0), Reasm::Held);
        // A fragment at offset 8 with new bytes overlaps the first.
        let mut evil = frags[1].clone();
        evil[42..44].copy_from_slice(&(8u16 | 1).to_be_bytes());
        assert_eq!(
            r.input_v6(&evil, 40, 0),
            Reasm::Dropped(DropReason::Overlap)
        );
        assert_eq!(r.in_progress(), 0);
        // An exact duplicate is dropped alone (RFC 8200 §4.5).
        assert_eq!(r.input_v6(&frags[1], 40, 0), Reasm::Held);
        assert_eq!(r.input_v6(&frags[1], 40, 0), Reasm::Held);
        assert_eq!(r.stats().duplicates, 1);
    }

    #[test]
    fn too_big() {
        let pkt = v4_packet(64, &[], 3, 0);
        let mut f = v4_piece(&pkt, 0, 16, true);
        Ipv4Packet::new_unchecked(&mut f[..]).set_frag_offset(65512);
        let mut r = Reassembler::new(ReasmLimits::default());
        assert_eq!(r.input_v4(&f, 0), Reasm::Dropped(DropReason::TooBig));
        // Offset 65512 + 8 bytes + 20 of header is 65540.
        let mut f = v4_piece(&pkt, 0, 8, false);
        Ipv4Packet::new_unchecked(&mut f[..]).set_frag_offset(65512);
        assert_eq!(r.input_v4(&f, 0), Reasm::Dropped(DropReason::TooBig));
        let frags = frag6(&v6_packet(3000, 17, 0), 1280, 1);
        let mut f = frags[1].clone();
        f[42..44].copy_from_slice(&(65528u16 | 1).to_be_bytes());
        assert_eq!(r.input_v6(&f, 40, 0), Reasm::Dropped(DropReason::TooBig));
        assert_eq!(r.stats().too_big, 3);
        assert_eq!(r.in_progress(), 0);
    }

    #[test]
    fn too_fragmented() {
        let pkt = v4_packet(16 * (MAX_RANGES + 1), &[], 3, 0);
        let mut r = Reassembler::new(ReasmLimits::default());
        for k in 0..MAX_RANGES {
            assert_eq!(r.input_v4(&v4_piece(&pkt, 16 * k, 8, true), 0), Reasm::Held);
        }
        let res = r.input_v4(&v4_piece(&pkt, 16 * MAX_RANGES, 8, true), 0);
        assert_eq!(res, Reasm::Dropped(DropReason::TooFragmented));
        assert_eq!(r.in_progress(), 0);
        assert_eq!(r.bytes_held(), 0);
    }

    #[test]
    fn timeouts_and_time_exceeded_quotes() {
        let mut r = Reassembler::new(ReasmLimits::default());
        let v4 = frag4(&v4_packet(3000, &[], 5, 0), 1000);
        let v6 = frag6(&v6_packet(3000, 17, 0), 1280, 5);
        assert_eq!(r.input_v4(&v4[0], 0), Reasm::Held);
        assert_eq!(r.input_v6(&v6[0], 40, SEC), Reasm::Held);
        // Only a later fragment: times out without a quote.
        let later = frag4(&v4_packet(3000, &[], 6, 0), 1500);
        assert_eq!(r.input_v4(&later[1], 0), Reasm::Held);
        assert_eq!(r.next_deadline(), Some(30 * SEC));
        assert!(r.expire(30 * SEC - 1).is_empty());
        assert_eq!(r.expire(30 * SEC), vec![Expired::V4(v4[0].clone())]);
        assert_eq!(r.stats().timeouts, 2);
        assert_eq!(r.in_progress(), 1);
        assert_eq!(r.next_deadline(), Some(61 * SEC));
        // The rest of the v4 datagram now starts over.
        assert_eq!(r.input_v4(&v4[1], 31 * SEC), Reasm::Held);
        // Input expires too; the quote waits for `expire`, cut to 1232.
        let fresh = frag6(&v6_packet(3000, 17, 0), 1280, 6);
        assert_eq!(r.input_v6(&fresh[1], 40, 61 * SEC), Reasm::Held);
        assert_eq!(r.stats().timeouts, 4);
        assert_eq!(r.next_deadline(), Some(0));
        assert_eq!(
            r.expire(61 * SEC),
            vec![Expired::V6(v6[0][..QUOTE_MAX].to_vec())]
        );
        assert_eq!(r.in_progress(), 1);
        check_accounting(&r);
    }

    #[test]
    fn eviction_by_count_and_bytes() {
        let limits = ReasmLimits {
            max_datagrams: 4,
            ..ReasmLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let pkts: Vec<Vec<u8>> = (0..5).map(|i| v4_packet(3000, &[], i, 0)).collect();
        let frags: Vec<Vec<Vec<u8>>> = pkts.iter().map(|p| frag4(p, 1500)).collect();
        for (i, f) in frags.iter().enumerate() {
            assert_eq!(r.input_v4(&f[0], i as u64), Reasm::Held);
            check_accounting(&r);
        }
        assert_eq!(r.stats().evicted, 1);
        assert_eq!(r.in_progress(), 4);
        // The oldest (ident 0) went: its rest starts over (evicting 1).
        assert_eq!(feed(&mut r, &frags[0][1..], false, 9), None);
        assert_eq!(
            feed(&mut r, &frags[4][1..], false, 9),
            Some(pkts[4].clone())
        );

        // Bytes: 100 KiB holds a few 64 KiB-bounded datagrams at most.
        let limits = ReasmLimits {
            max_bytes: 100 << 10,
            ..ReasmLimits::default()
        };
        let mut r = Reassembler::new(limits);
        for i in 0..20u16 {
            let pkt = v4_packet(60000, &[], i, 0);
            let frags = frag4(&pkt, 1500);
            // Last fragment first: the buffer goes to its full size.
            assert_eq!(r.input_v4(frags.last().unwrap(), 0), Reasm::Held);
            check_accounting(&r);
        }
        assert!(r.stats().evicted >= 18);
        assert_eq!(r.in_progress(), 1);
        // A datagram alone over the limit is refused.
        let limits = ReasmLimits {
            max_bytes: 10_000,
            ..ReasmLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let frags = frag4(&v4_packet(60000, &[], 1, 0), 1500);
        let res = r.input_v4(frags.last().unwrap(), 0);
        assert_eq!(res, Reasm::Dropped(DropReason::NoMemory));
        assert_eq!(r.bytes_held(), 0);
        let zero = ReasmLimits {
            max_datagrams: 0,
            ..ReasmLimits::default()
        };
        let res = Reassembler::new(zero).input_v4(&frags[0], 0);
        assert_eq!(res, Reasm::Dropped(DropReason::NoMemory));
    }

    #[test]
    fn flood_of_random_fragments_stays_bounded() {
        for limits in [
            ReasmLimits::default(),
            ReasmLimits {
                max_bytes: 256 << 10,
                ..ReasmLimits::default()
            },
        ] {
            let mut r = Reassembler::new(limits);
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
            let base = v4_packet(1480, &[], 0, 0);
            let base6 = frag6(&v6_packet(3000, 17, 0), 1280, 0);
            for i in 0..10_000u32 {
                let now = u64::from(i) * 1_000_000;
                let off = rng.below(8192) * 8;
                let len = (1 + rng.below(185)) * 8;
                if i % 2 == 0 {
                    let mut f = v4_piece(&base, 0, len.min(1480), !rng.next().is_multiple_of(4));
                    let mut p = Ipv4Packet::new_unchecked(&mut f[..]);
                    p.set_ident(i as u16);
                    p.set_frag_offset(off as u16);
                    p.fill_checksum();
                    let _ = r.input_v4(&f, now);
                } else {
                    let mut f = base6[0].clone();
                    f[42..44].copy_from_slice(&((off as u16) | 1).to_be_bytes());
                    f[44..48].copy_from_slice(&i.to_be_bytes());
                    let _ = r.input_v6(&f, 40, now);
                }
                check_accounting(&r);
            }
            assert!(r.stats().evicted > 9_000, "{:?}", r.stats());
            // Legitimate traffic still gets through afterwards.
            let pkt = v4_packet(5000, &[], 0xffff, 1);
            assert_eq!(feed(&mut r, &frag4(&pkt, 1500), false, SEC * 11), Some(pkt));
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Rng(0x0123_4567_89ab_cdef);
        let limits = ReasmLimits {
            max_datagrams: 8,
            max_bytes: 200 << 10,
            ..ReasmLimits::default()
        };
        let mut r = Reassembler::new(limits);
        let seeds4 = frag4(&v4_packet(3000, &[131, 7, 4, 10, 0, 0, 1, 0], 1, 0), 576);
        let seeds6 = frag6(&v6_packet(3000, 17, 0), 1280, 1);
        for i in 0..20_000u64 {
            let mut b = match rng.below(3) {
                0 => (0..rng.below(120)).map(|_| rng.next() as u8).collect(),
                1 => seeds4[rng.below(seeds4.len())].clone(),
                _ => seeds6[rng.below(seeds6.len())].clone(),
            };
            for _ in 0..rng.below(6) {
                if !b.is_empty() {
                    let at = rng.below(b.len().min(64));
                    b[at] = rng.next() as u8;
                }
            }
            if rng.below(4) == 0 {
                b.truncate(rng.below(b.len() + 1));
            }
            // Short timestamps now and then move backwards.
            let now = (i * 3_000_000).saturating_sub(rng.below(2) as u64 * SEC);
            let _ = r.input_v4(&b, now);
            let at = match rng.below(4) {
                0 => rng.below(b.len() + 16),
                1 => usize::MAX - rng.below(8),
                _ => 40,
            };
            let _ = r.input_v6(&b, at, now);
            let _ = r.expire(now);
            let mtu = rng.below(2000);
            let _ = fragment_v4(&b, mtu, rng.below(20), new_vec);
            let _ = fragment_v6(&b, mtu, 1, rng.below(20), new_vec);
            check_accounting(&r);
        }
        // The mutations reach every path, not just the first length check.
        let s = r.stats();
        assert!(s.fragments > 1000 && s.reassembled > 0, "{s:?}");
        assert!(s.duplicates > 0 && s.overlaps > 0 && s.evicted > 0, "{s:?}");
    }
}
