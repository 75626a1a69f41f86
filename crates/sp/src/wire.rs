//! The wire format: a fixed 16-byte little-endian frame header
//! ([`Packet`], [`Header`]), the handshake ([`Hello`], [`HelloOk`],
//! [`HelloErr`]), connection-level requests ([`Control`]) and the payload
//! codec (postcard 1.x of `sys::Request`, `Result<sys::Response, Errno>`).
//! `docs/protocol.md` describes the same format for implementers.
//!
//! Every length is checked against the negotiated maximum before a byte
//! of payload is allocated, and nothing here panics on any input.

use std::fmt;

use serde::{Deserialize, Serialize};
use sys::{Errno, Request, Response};

/// The protocol version this build speaks (one version so far).
pub const PROTO_VERSION: u16 = 1;
/// The first bytes of every Hello: never changes between versions.
pub const MAGIC: [u8; 8] = *b"RUMPRS\0\x01";
/// The header's size in bytes.
pub const HEADER_LEN: usize = 16;
/// The largest payload either side accepts: the largest read or write
/// (`sys::MAX_IO`) plus room for the rest of the request.
pub const MAX_FRAME: u32 = (sys::MAX_IO + 64 * 1024) as u32;
/// The largest Hello payload (the handshake is small; a peer that sends
/// more is not speaking this protocol).
pub const MAX_HELLO: u32 = 4096;
/// Calls in flight per connection unless the server lowers it.
pub const DEFAULT_MAX_INFLIGHT: u32 = 64;
/// Length of fork and exec cookies.
pub const COOKIE_LEN: usize = 16;

/// Frame flag: the sender wants no answer (a keepalive `Ping`).
pub const FLAG_NO_REPLY: u8 = 1;
const KNOWN_FLAGS: u8 = FLAG_NO_REPLY;

/// What a frame is. Total: a number this build does not know is
/// `Unknown(n)`, which a receiver treats as a protocol error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Client → server, first frame: [`Hello`].
    Hello,
    /// Server → client: [`HelloOk`].
    HelloOk,
    /// Server → client, then the server closes: [`HelloErr`].
    HelloErr,
    /// Client → server: a system call, `postcard(sys::Request)`.
    Call,
    /// Server → client: the answer to a `Call` or `Control` with the same id.
    Reply,
    /// Client → server: a connection-level request, `postcard(Control)`.
    Control,
    /// Either way: liveness; answered with `Pong` unless `FLAG_NO_REPLY`.
    Ping,
    /// The answer to a `Ping`.
    Pong,
    /// Either way: the sender is closing; the payload is a UTF-8 reason.
    Goodbye,
    /// Not a kind of this version.
    Unknown(u8),
}

impl From<u8> for Kind {
    fn from(v: u8) -> Kind {
        match v {
            1 => Kind::Hello,
            2 => Kind::HelloOk,
            3 => Kind::HelloErr,
            4 => Kind::Call,
            5 => Kind::Reply,
            6 => Kind::Control,
            7 => Kind::Ping,
            8 => Kind::Pong,
            9 => Kind::Goodbye,
            n => Kind::Unknown(n),
        }
    }
}

impl From<Kind> for u8 {
    fn from(k: Kind) -> u8 {
        match k {
            Kind::Hello => 1,
            Kind::HelloOk => 2,
            Kind::HelloErr => 3,
            Kind::Call => 4,
            Kind::Reply => 5,
            Kind::Control => 6,
            Kind::Ping => 7,
            Kind::Pong => 8,
            Kind::Goodbye => 9,
            Kind::Unknown(n) => n,
        }
    }
}

/// What was wrong with bytes from the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the structure needs.
    Truncated { need: usize, have: usize },
    /// A payload length above the limit.
    Oversized { len: u32, max: u32 },
    /// The reserved header field is not zero.
    Reserved(u16),
    /// Flag bits this version does not define.
    Flags(u8),
    /// A frame kind this version does not define.
    UnknownKind(u8),
    /// A Hello without the magic.
    Magic,
    /// No protocol version in common.
    Version { min: u16, max: u16 },
    /// A payload that does not decode as what its kind says.
    Decode(&'static str),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::Truncated { need, have } => {
                write!(f, "truncated: need {need} bytes, have {have}")
            }
            WireError::Oversized { len, max } => {
                write!(f, "frame payload of {len} bytes exceeds the limit of {max}")
            }
            WireError::Reserved(v) => write!(f, "reserved header field is {v:#x}, not 0"),
            WireError::Flags(v) => write!(f, "unknown frame flags {v:#x}"),
            WireError::UnknownKind(v) => write!(f, "unknown frame kind {v}"),
            WireError::Magic => write!(f, "wrong banner (not a rump-rs client)"),
            WireError::Version { min, max } => write!(
                f,
                "no common protocol version: peer speaks {min}..={max}, we speak {PROTO_VERSION}"
            ),
            WireError::Decode(what) => write!(f, "malformed {what} payload"),
        }
    }
}

impl std::error::Error for WireError {}

/// Byte ranges of the header fields.
mod field {
    use std::ops::Range;
    pub const LEN: Range<usize> = 0..4;
    pub const KIND: usize = 4;
    pub const FLAGS: usize = 5;
    pub const RESERVED: Range<usize> = 6..8;
    pub const ID: Range<usize> = 8..16;
}

/// A zero-copy view of a frame header. After [`Packet::new_checked`] no
/// accessor can panic.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checking it.
    pub fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer`, checking that it holds a whole header.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, WireError> {
        let have = buffer.as_ref().len();
        if have < HEADER_LEN {
            return Err(WireError::Truncated {
                need: HEADER_LEN,
                have,
            });
        }
        Ok(Packet { buffer })
    }

    fn bytes<const N: usize>(&self, r: std::ops::Range<usize>) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = self.buffer.as_ref().get(r) {
            if s.len() == N {
                out.copy_from_slice(s);
            }
        }
        out
    }

    /// Payload length in bytes.
    pub fn len(&self) -> u32 {
        u32::from_le_bytes(self.bytes(field::LEN))
    }
    /// The frame kind.
    pub fn kind(&self) -> Kind {
        Kind::from(self.buffer.as_ref().get(field::KIND).copied().unwrap_or(0))
    }
    /// The flag bits.
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref().get(field::FLAGS).copied().unwrap_or(0)
    }
    /// The reserved field (must be 0).
    pub fn reserved(&self) -> u16 {
        u16::from_le_bytes(self.bytes(field::RESERVED))
    }
    /// The request id (0 for connection-level frames).
    pub fn id(&self) -> u64 {
        u64::from_le_bytes(self.bytes(field::ID))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn put(&mut self, r: std::ops::Range<usize>, v: &[u8]) {
        if let Some(s) = self.buffer.as_mut().get_mut(r) {
            s.copy_from_slice(v);
        }
    }
    /// Sets the payload length.
    pub fn set_len(&mut self, v: u32) {
        self.put(field::LEN, &v.to_le_bytes());
    }
    /// Sets the kind.
    pub fn set_kind(&mut self, k: Kind) {
        self.put(field::KIND..field::KIND + 1, &[u8::from(k)]);
    }
    /// Sets the flags.
    pub fn set_flags(&mut self, v: u8) {
        self.put(field::FLAGS..field::FLAGS + 1, &[v]);
    }
    /// Sets the reserved field.
    pub fn set_reserved(&mut self, v: u16) {
        self.put(field::RESERVED, &v.to_le_bytes());
    }
    /// Sets the request id.
    pub fn set_id(&mut self, v: u64) {
        self.put(field::ID, &v.to_le_bytes());
    }
}

/// A parsed, valid frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub kind: Kind,
    pub flags: u8,
    pub id: u64,
    pub len: u32,
}

impl Header {
    /// Parses a header, refusing unknown kinds and flags, a nonzero
    /// reserved field and a payload longer than `max_len`.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>, max_len: u32) -> Result<Header, WireError> {
        if p.reserved() != 0 {
            return Err(WireError::Reserved(p.reserved()));
        }
        if p.flags() & !KNOWN_FLAGS != 0 {
            return Err(WireError::Flags(p.flags()));
        }
        let kind = p.kind();
        if let Kind::Unknown(n) = kind {
            return Err(WireError::UnknownKind(n));
        }
        if p.len() > max_len {
            return Err(WireError::Oversized {
                len: p.len(),
                max: max_len,
            });
        }
        Ok(Header {
            kind,
            flags: p.flags(),
            id: p.id(),
            len: p.len(),
        })
    }

    /// Bytes [`Header::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the header into `p`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_len(self.len);
        p.set_kind(self.kind);
        p.set_flags(self.flags);
        p.set_reserved(0);
        p.set_id(self.id);
    }

    /// The header as bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        self.emit(&mut Packet::new_unchecked(&mut b[..]));
        b
    }
}

/// How a new connection attaches to a process in the kernel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attach {
    /// A fresh process (clean descriptor table, `/` as cwd).
    New { comm: String },
    /// The process a `Control::Prefork` made (descriptors copied).
    Fork { cookie: [u8; COOKIE_LEN] },
    /// The process of a `Control::ExecPrepare`, after the client exec'd:
    /// its close-on-exec descriptors are closed.
    Exec { cookie: [u8; COOKIE_LEN] },
}

/// The handshake's variable part (after magic and version range).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloBody {
    /// Feature bits the client would use (none are defined yet).
    pub features: u64,
    /// The largest payload the client accepts.
    pub max_frame: u32,
    /// Calls the client wants to have in flight at once.
    pub max_inflight: u32,
    /// The server's token (TCP), if the client has one.
    pub token: Option<Vec<u8>>,
    pub attach: Attach,
}

/// The first frame's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hello {
    pub proto_min: u16,
    pub proto_max: u16,
    pub body: HelloBody,
}

impl Hello {
    /// A Hello for this build's version.
    pub fn new(body: HelloBody) -> Hello {
        Hello {
            proto_min: PROTO_VERSION,
            proto_max: PROTO_VERSION,
            body,
        }
    }

    /// Parses a Hello payload: magic, version range, then postcard.
    pub fn parse(b: &[u8]) -> Result<Hello, WireError> {
        if b.len() < 12 {
            return Err(WireError::Truncated {
                need: 12,
                have: b.len(),
            });
        }
        if b[..8] != MAGIC {
            return Err(WireError::Magic);
        }
        let proto_min = u16::from_le_bytes([b[8], b[9]]);
        let proto_max = u16::from_le_bytes([b[10], b[11]]);
        let body = postcard::from_bytes(&b[12..]).map_err(|_| WireError::Decode("hello"))?;
        Ok(Hello {
            proto_min,
            proto_max,
            body,
        })
    }

    /// The version both sides speak, if any.
    pub fn common_version(&self) -> Result<u16, WireError> {
        if self.proto_min <= PROTO_VERSION && PROTO_VERSION <= self.proto_max {
            Ok(PROTO_VERSION)
        } else {
            Err(WireError::Version {
                min: self.proto_min,
                max: self.proto_max,
            })
        }
    }

    /// The payload bytes.
    pub fn emit(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64);
        v.extend_from_slice(&MAGIC);
        v.extend_from_slice(&self.proto_min.to_le_bytes());
        v.extend_from_slice(&self.proto_max.to_le_bytes());
        v.extend_from_slice(&encode(&self.body));
        v
    }
}

/// The server's acceptance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloOk {
    pub proto: u16,
    pub features: u64,
    pub max_frame: u32,
    pub max_inflight: u32,
    /// The server closes a connection from which no frame arrived for
    /// this long; a client sends `Ping` with `FLAG_NO_REPLY` more often.
    /// 0: no idle timeout.
    pub idle_timeout_ms: u32,
    /// The kernel process this connection is.
    pub pid: i32,
}

/// The server's refusal (it closes the connection after sending it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloErr {
    pub errno: Errno,
    pub text: String,
}

/// A connection-level request (`Kind::Control`), answered by a `Reply`
/// carrying `postcard(Result<ControlOk, Errno>)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Control {
    /// Copy this process (descriptors copied) for a forked client; the
    /// answer is a single-use cookie for `Attach::Fork`.
    Prefork,
    /// Drop an unused fork cookie (the host fork failed).
    ForkCancel { cookie: [u8; COOKIE_LEN] },
    /// Keep this process alive for an exec'd image to re-attach with
    /// `Attach::Exec`; the answer is the cookie.
    ExecPrepare,
    /// Halt the server (root only).
    Halt,
}

/// A successful `Control`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ControlOk {
    Unit,
    Cookie([u8; COOKIE_LEN]),
}

/// postcard bytes of `v` (encoding into a vector cannot fail for the
/// types of this protocol; an error would be a bug, reported as empty).
pub fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Sized first (cheap: byte vectors count their length), so a 1 MiB
    // payload is written once into a buffer of the right size instead of
    // through a series of doubling reallocations.
    let n = postcard::serialize_with_flavor(v, postcard::ser_flavors::Size::default()).unwrap_or(0);
    postcard::to_extend(v, Vec::with_capacity(n)).unwrap_or_default()
}

/// Decodes a `Call` payload.
pub fn decode_call(b: &[u8]) -> Result<Request, WireError> {
    postcard::from_bytes(b).map_err(|_| WireError::Decode("call"))
}

/// Decodes a `Reply` payload to a system call.
pub fn decode_reply(b: &[u8]) -> Result<Result<Response, Errno>, WireError> {
    postcard::from_bytes(b).map_err(|_| WireError::Decode("reply"))
}

/// Decodes a `Control` payload.
pub fn decode_control(b: &[u8]) -> Result<Control, WireError> {
    postcard::from_bytes(b).map_err(|_| WireError::Decode("control"))
}

/// Decodes a `Reply` payload to a `Control`.
pub fn decode_control_reply(b: &[u8]) -> Result<Result<ControlOk, Errno>, WireError> {
    postcard::from_bytes(b).map_err(|_| WireError::Decode("control reply"))
}

/// Splits a byte stream into frames: the decoder the server and client
/// run on what they read, and the fuzz target's entry point. Returns the
/// header and payload of the first frame and the bytes it used, `Ok(None)`
/// when more bytes are needed.
pub fn split_frame(buf: &[u8], max_len: u32) -> Result<Option<(Header, &[u8], usize)>, WireError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let h = Header::parse(&Packet::new_checked(buf)?, max_len)?;
    let end = HEADER_LEN + h.len as usize;
    match buf.get(HEADER_LEN..end) {
        Some(p) => Ok(Some((h, p, end))),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_roundtrip_and_layout() {
        let h = Header {
            kind: Kind::Call,
            flags: 0,
            id: 0x0102_0304_0506_0708,
            len: 0x1234,
        };
        let b = h.to_bytes();
        assert_eq!(
            b,
            [0x34, 0x12, 0, 0, 4, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1],
            "little-endian layout: len, kind, flags, reserved, id"
        );
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(Header::parse(&p, MAX_FRAME).unwrap(), h);
    }

    #[test]
    fn header_bad_inputs() {
        assert_eq!(
            Packet::new_checked(&[0u8; 15][..]).unwrap_err(),
            WireError::Truncated { need: 16, have: 15 }
        );
        let mut b = Header {
            kind: Kind::Call,
            flags: 0,
            id: 1,
            len: 10,
        }
        .to_bytes();
        let p = Packet::new_checked(b).unwrap();
        assert_eq!(
            Header::parse(&p, 9).unwrap_err(),
            WireError::Oversized { len: 10, max: 9 }
        );
        b[4] = 200;
        let p = Packet::new_checked(b).unwrap();
        assert_eq!(
            Header::parse(&p, MAX_FRAME).unwrap_err(),
            WireError::UnknownKind(200)
        );
        b[4] = 4;
        b[5] = 0x80;
        assert_eq!(
            Header::parse(&Packet::new_checked(b).unwrap(), MAX_FRAME).unwrap_err(),
            WireError::Flags(0x80)
        );
        b[5] = 0;
        b[6] = 1;
        assert_eq!(
            Header::parse(&Packet::new_checked(b).unwrap(), MAX_FRAME).unwrap_err(),
            WireError::Reserved(1)
        );
    }

    #[test]
    fn kinds_are_total() {
        for n in 0..=255u8 {
            assert_eq!(u8::from(Kind::from(n)), n);
        }
    }

    #[test]
    fn hello_roundtrip_and_bad() {
        let h = Hello::new(HelloBody {
            features: 0,
            max_frame: MAX_FRAME,
            max_inflight: 64,
            token: Some(vec![1, 2, 3]),
            attach: Attach::New { comm: "t".into() },
        });
        let b = h.emit();
        assert_eq!(Hello::parse(&b).unwrap(), h);
        assert_eq!(h.common_version(), Ok(PROTO_VERSION));
        let mut bad = b.clone();
        bad[0] = b'X';
        assert_eq!(Hello::parse(&bad).unwrap_err(), WireError::Magic);
        for n in 0..b.len() {
            // Every truncation is an error, never a panic.
            assert!(Hello::parse(&b[..n]).is_err(), "truncated at {n}");
        }
        let old = Hello {
            proto_min: 7,
            proto_max: 9,
            body: h.body.clone(),
        };
        assert!(matches!(
            Hello::parse(&old.emit()).unwrap().common_version(),
            Err(WireError::Version { min: 7, max: 9 })
        ));
    }

    /// Pins the encoding: a reordered `Request`/`Response` enum, a changed
    /// field order or another postcard would change these bytes, which
    /// would break every deployed client silently. If this fails on
    /// purpose, bump `PROTO_VERSION` and update docs/protocol.md.
    #[test]
    fn golden_bytes() {
        let cases: Vec<(Vec<u8>, &[u8])> = vec![
            (
                encode(&Request::Openat {
                    dirfd: -100,
                    path: b"/a".to_vec(),
                    flags: 0o102,
                    mode: 0o644,
                }),
                &[0, 199, 1, 2, b'/', b'a', 132, 1, 164, 3],
            ),
            (encode(&Request::Close { fd: 3 }), &[1, 6]),
            (
                encode(&Request::Read { fd: 3, len: 4096 }),
                &[2, 6, 128, 32],
            ),
            (
                encode(&Request::Write {
                    fd: 1,
                    data: b"hi".to_vec(),
                }),
                &[3, 2, 2, b'h', b'i'],
            ),
            (encode(&Request::Getpid), &[41]),
            (encode(&Request::NetStats), &[90]),
            (
                encode(&Ok::<Response, Errno>(Response::Int(42))),
                &[0, 1, 84],
            ),
            (
                encode(&Ok::<Response, Errno>(Response::Bytes(vec![9]))),
                &[0, 3, 1, 9],
            ),
            (encode(&Err::<Response, Errno>(Errno::ENOENT)), &[1, 4]),
            (encode(&Control::Prefork), &[0]),
            (encode(&Control::Halt), &[3]),
        ];
        for (i, (got, want)) in cases.iter().enumerate() {
            assert_eq!(&got[..], *want, "case {i}");
        }
        let hello = Hello::new(HelloBody {
            features: 0,
            max_frame: 0x1234,
            max_inflight: 64,
            token: None,
            attach: Attach::Fork { cookie: [7; 16] },
        })
        .emit();
        let mut want = b"RUMPRS\0\x01\x01\0\x01\0".to_vec();
        want.extend_from_slice(&[0, 0xb4, 0x24, 64, 0, 1]);
        want.extend_from_slice(&[7; 16]);
        assert_eq!(hello, want);
    }

    #[test]
    fn split_frame_needs_whole_frames() {
        let h = Header {
            kind: Kind::Ping,
            flags: 0,
            id: 0,
            len: 3,
        };
        let mut b = h.to_bytes().to_vec();
        b.extend_from_slice(b"abc");
        for n in 0..b.len() {
            assert_eq!(split_frame(&b[..n], MAX_FRAME), Ok(None));
        }
        let (h2, p, used) = split_frame(&b, MAX_FRAME).unwrap().unwrap();
        assert_eq!((h2, p, used), (h, &b"abc"[..], 19));
    }
}
