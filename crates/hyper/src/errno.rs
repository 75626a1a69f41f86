//! [`Errno`]: error numbers with Linux numbering.
//!
//! Every error that leaves the system-call layer is an `Errno`. The values
//! are Linux's (`asm-generic/errno-base.h`, `errno.h`), so the C ABI and the
//! hijack library hand them to programs unchanged. Platforms translate host
//! errors into `Errno` in exactly one place.

use core::fmt;

/// An error number (Linux numbering). Any `i32` is representable, so a
/// value read off the wire never needs a fallible conversion.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Errno(pub i32);

impl Errno {
    #[doc = "operation not permitted"]
    pub const EPERM: Errno = Errno(1);
    #[doc = "no such file or directory"]
    pub const ENOENT: Errno = Errno(2);
    #[doc = "no such process"]
    pub const ESRCH: Errno = Errno(3);
    #[doc = "interrupted system call"]
    pub const EINTR: Errno = Errno(4);
    #[doc = "input/output error"]
    pub const EIO: Errno = Errno(5);
    #[doc = "no such device or address"]
    pub const ENXIO: Errno = Errno(6);
    #[doc = "argument list too long"]
    pub const E2BIG: Errno = Errno(7);
    #[doc = "exec format error"]
    pub const ENOEXEC: Errno = Errno(8);
    #[doc = "bad file descriptor"]
    pub const EBADF: Errno = Errno(9);
    #[doc = "no child processes"]
    pub const ECHILD: Errno = Errno(10);
    #[doc = "resource temporarily unavailable"]
    pub const EAGAIN: Errno = Errno(11);
    #[doc = "cannot allocate memory"]
    pub const ENOMEM: Errno = Errno(12);
    #[doc = "permission denied"]
    pub const EACCES: Errno = Errno(13);
    #[doc = "bad address"]
    pub const EFAULT: Errno = Errno(14);
    #[doc = "block device required"]
    pub const ENOTBLK: Errno = Errno(15);
    #[doc = "device or resource busy"]
    pub const EBUSY: Errno = Errno(16);
    #[doc = "file exists"]
    pub const EEXIST: Errno = Errno(17);
    #[doc = "invalid cross-device link"]
    pub const EXDEV: Errno = Errno(18);
    #[doc = "no such device"]
    pub const ENODEV: Errno = Errno(19);
    #[doc = "not a directory"]
    pub const ENOTDIR: Errno = Errno(20);
    #[doc = "is a directory"]
    pub const EISDIR: Errno = Errno(21);
    #[doc = "invalid argument"]
    pub const EINVAL: Errno = Errno(22);
    #[doc = "too many open files in system"]
    pub const ENFILE: Errno = Errno(23);
    #[doc = "too many open files"]
    pub const EMFILE: Errno = Errno(24);
    #[doc = "inappropriate ioctl for device"]
    pub const ENOTTY: Errno = Errno(25);
    #[doc = "text file busy"]
    pub const ETXTBSY: Errno = Errno(26);
    #[doc = "file too large"]
    pub const EFBIG: Errno = Errno(27);
    #[doc = "no space left on device"]
    pub const ENOSPC: Errno = Errno(28);
    #[doc = "illegal seek"]
    pub const ESPIPE: Errno = Errno(29);
    #[doc = "read-only file system"]
    pub const EROFS: Errno = Errno(30);
    #[doc = "too many links"]
    pub const EMLINK: Errno = Errno(31);
    #[doc = "broken pipe"]
    pub const EPIPE: Errno = Errno(32);
    #[doc = "numerical argument out of domain"]
    pub const EDOM: Errno = Errno(33);
    #[doc = "numerical result out of range"]
    pub const ERANGE: Errno = Errno(34);
    #[doc = "resource deadlock avoided"]
    pub const EDEADLK: Errno = Errno(35);
    #[doc = "file name too long"]
    pub const ENAMETOOLONG: Errno = Errno(36);
    #[doc = "no locks available"]
    pub const ENOLCK: Errno = Errno(37);
    #[doc = "function not implemented"]
    pub const ENOSYS: Errno = Errno(38);
    #[doc = "directory not empty"]
    pub const ENOTEMPTY: Errno = Errno(39);
    #[doc = "too many levels of symbolic links"]
    pub const ELOOP: Errno = Errno(40);
    #[doc = "no message of desired type"]
    pub const ENOMSG: Errno = Errno(42);
    #[doc = "no data available"]
    pub const ENODATA: Errno = Errno(61);
    #[doc = "timer expired"]
    pub const ETIME: Errno = Errno(62);
    #[doc = "protocol error"]
    pub const EPROTO: Errno = Errno(71);
    #[doc = "bad message"]
    pub const EBADMSG: Errno = Errno(74);
    #[doc = "value too large for defined data type"]
    pub const EOVERFLOW: Errno = Errno(75);
    #[doc = "invalid or incomplete multibyte or wide character"]
    pub const EILSEQ: Errno = Errno(84);
    #[doc = "socket operation on non-socket"]
    pub const ENOTSOCK: Errno = Errno(88);
    #[doc = "destination address required"]
    pub const EDESTADDRREQ: Errno = Errno(89);
    #[doc = "message too long"]
    pub const EMSGSIZE: Errno = Errno(90);
    #[doc = "protocol wrong type for socket"]
    pub const EPROTOTYPE: Errno = Errno(91);
    #[doc = "protocol not available"]
    pub const ENOPROTOOPT: Errno = Errno(92);
    #[doc = "protocol not supported"]
    pub const EPROTONOSUPPORT: Errno = Errno(93);
    #[doc = "socket type not supported"]
    pub const ESOCKTNOSUPPORT: Errno = Errno(94);
    #[doc = "operation not supported"]
    pub const EOPNOTSUPP: Errno = Errno(95);
    #[doc = "protocol family not supported"]
    pub const EPFNOSUPPORT: Errno = Errno(96);
    #[doc = "address family not supported by protocol"]
    pub const EAFNOSUPPORT: Errno = Errno(97);
    #[doc = "address already in use"]
    pub const EADDRINUSE: Errno = Errno(98);
    #[doc = "cannot assign requested address"]
    pub const EADDRNOTAVAIL: Errno = Errno(99);
    #[doc = "network is down"]
    pub const ENETDOWN: Errno = Errno(100);
    #[doc = "network is unreachable"]
    pub const ENETUNREACH: Errno = Errno(101);
    #[doc = "network dropped connection on reset"]
    pub const ENETRESET: Errno = Errno(102);
    #[doc = "software caused connection abort"]
    pub const ECONNABORTED: Errno = Errno(103);
    #[doc = "connection reset by peer"]
    pub const ECONNRESET: Errno = Errno(104);
    #[doc = "no buffer space available"]
    pub const ENOBUFS: Errno = Errno(105);
    #[doc = "transport endpoint is already connected"]
    pub const EISCONN: Errno = Errno(106);
    #[doc = "transport endpoint is not connected"]
    pub const ENOTCONN: Errno = Errno(107);
    #[doc = "cannot send after transport endpoint shutdown"]
    pub const ESHUTDOWN: Errno = Errno(108);
    #[doc = "connection timed out"]
    pub const ETIMEDOUT: Errno = Errno(110);
    #[doc = "connection refused"]
    pub const ECONNREFUSED: Errno = Errno(111);
    #[doc = "host is down"]
    pub const EHOSTDOWN: Errno = Errno(112);
    #[doc = "no route to host"]
    pub const EHOSTUNREACH: Errno = Errno(113);
    #[doc = "operation already in progress"]
    pub const EALREADY: Errno = Errno(114);
    #[doc = "operation now in progress"]
    pub const EINPROGRESS: Errno = Errno(115);
    #[doc = "stale file handle"]
    pub const ESTALE: Errno = Errno(116);
    #[doc = "structure needs cleaning"]
    pub const EUCLEAN: Errno = Errno(117);
    #[doc = "disk quota exceeded"]
    pub const EDQUOT: Errno = Errno(122);
    #[doc = "operation canceled"]
    pub const ECANCELED: Errno = Errno(125);
    #[doc = "state not recoverable"]
    pub const ENOTRECOVERABLE: Errno = Errno(131);
    /// `EWOULDBLOCK` is `EAGAIN` on Linux.
    pub const EWOULDBLOCK: Errno = Errno::EAGAIN;
    /// `ENOTSUP` is `EOPNOTSUPP` on Linux.
    pub const ENOTSUP: Errno = Errno::EOPNOTSUPP;

    /// The numeric value.
    pub const fn raw(self) -> i32 {
        self.0
    }

    /// The symbolic name (`"ENOENT"`), if this is a known number.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            1 => "EPERM",
            2 => "ENOENT",
            3 => "ESRCH",
            4 => "EINTR",
            5 => "EIO",
            6 => "ENXIO",
            7 => "E2BIG",
            8 => "ENOEXEC",
            9 => "EBADF",
            10 => "ECHILD",
            11 => "EAGAIN",
            12 => "ENOMEM",
            13 => "EACCES",
            14 => "EFAULT",
            15 => "ENOTBLK",
            16 => "EBUSY",
            17 => "EEXIST",
            18 => "EXDEV",
            19 => "ENODEV",
            20 => "ENOTDIR",
            21 => "EISDIR",
            22 => "EINVAL",
            23 => "ENFILE",
            24 => "EMFILE",
            25 => "ENOTTY",
            26 => "ETXTBSY",
            27 => "EFBIG",
            28 => "ENOSPC",
            29 => "ESPIPE",
            30 => "EROFS",
            31 => "EMLINK",
            32 => "EPIPE",
            33 => "EDOM",
            34 => "ERANGE",
            35 => "EDEADLK",
            36 => "ENAMETOOLONG",
            37 => "ENOLCK",
            38 => "ENOSYS",
            39 => "ENOTEMPTY",
            40 => "ELOOP",
            42 => "ENOMSG",
            61 => "ENODATA",
            62 => "ETIME",
            71 => "EPROTO",
            74 => "EBADMSG",
            75 => "EOVERFLOW",
            84 => "EILSEQ",
            88 => "ENOTSOCK",
            89 => "EDESTADDRREQ",
            90 => "EMSGSIZE",
            91 => "EPROTOTYPE",
            92 => "ENOPROTOOPT",
            93 => "EPROTONOSUPPORT",
            94 => "ESOCKTNOSUPPORT",
            95 => "EOPNOTSUPP",
            96 => "EPFNOSUPPORT",
            97 => "EAFNOSUPPORT",
            98 => "EADDRINUSE",
            99 => "EADDRNOTAVAIL",
            100 => "ENETDOWN",
            101 => "ENETUNREACH",
            102 => "ENETRESET",
            103 => "ECONNABORTED",
            104 => "ECONNRESET",
            105 => "ENOBUFS",
            106 => "EISCONN",
            107 => "ENOTCONN",
            108 => "ESHUTDOWN",
            110 => "ETIMEDOUT",
            111 => "ECONNREFUSED",
            112 => "EHOSTDOWN",
            113 => "EHOSTUNREACH",
            114 => "EALREADY",
            115 => "EINPROGRESS",
            116 => "ESTALE",
            117 => "EUCLEAN",
            122 => "EDQUOT",
            125 => "ECANCELED",
            131 => "ENOTRECOVERABLE",
            _ => return None,
        })
    }

    /// A lowercase description (`"no such file or directory"`).
    pub fn description(self) -> &'static str {
        match self.0 {
            1 => "operation not permitted",
            2 => "no such file or directory",
            3 => "no such process",
            4 => "interrupted system call",
            5 => "input/output error",
            6 => "no such device or address",
            7 => "argument list too long",
            8 => "exec format error",
            9 => "bad file descriptor",
            10 => "no child processes",
            11 => "resource temporarily unavailable",
            12 => "cannot allocate memory",
            13 => "permission denied",
            14 => "bad address",
            15 => "block device required",
            16 => "device or resource busy",
            17 => "file exists",
            18 => "invalid cross-device link",
            19 => "no such device",
            20 => "not a directory",
            21 => "is a directory",
            22 => "invalid argument",
            23 => "too many open files in system",
            24 => "too many open files",
            25 => "inappropriate ioctl for device",
            26 => "text file busy",
            27 => "file too large",
            28 => "no space left on device",
            29 => "illegal seek",
            30 => "read-only file system",
            31 => "too many links",
            32 => "broken pipe",
            33 => "numerical argument out of domain",
            34 => "numerical result out of range",
            35 => "resource deadlock avoided",
            36 => "file name too long",
            37 => "no locks available",
            38 => "function not implemented",
            39 => "directory not empty",
            40 => "too many levels of symbolic links",
            42 => "no message of desired type",
            61 => "no data available",
            62 => "timer expired",
            71 => "protocol error",
            74 => "bad message",
            75 => "value too large for defined data type",
            84 => "invalid or incomplete multibyte or wide character",
            88 => "socket operation on non-socket",
            89 => "destination address required",
            90 => "message too long",
            91 => "protocol wrong type for socket",
            92 => "protocol not available",
            93 => "protocol not supported",
            94 => "socket type not supported",
            95 => "operation not supported",
            96 => "protocol family not supported",
            97 => "address family not supported by protocol",
            98 => "address already in use",
            99 => "cannot assign requested address",
            100 => "network is down",
            101 => "network is unreachable",
            102 => "network dropped connection on reset",
            103 => "software caused connection abort",
            104 => "connection reset by peer",
            105 => "no buffer space available",
            106 => "transport endpoint is already connected",
            107 => "transport endpoint is not connected",
            108 => "cannot send after transport endpoint shutdown",
            110 => "connection timed out",
            111 => "connection refused",
            112 => "host is down",
            113 => "no route to host",
            114 => "operation already in progress",
            115 => "operation now in progress",
            116 => "stale file handle",
            117 => "structure needs cleaning",
            122 => "disk quota exceeded",
            125 => "operation canceled",
            131 => "state not recoverable",
            _ => "unknown error",
        }
    }
}

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Errno({})", self.0),
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{} ({})", self.description(), n),
            None => write!(f, "unknown error {}", self.0),
        }
    }
}

impl core::error::Error for Errno {}

#[cfg(test)]
mod tests {
    use super::Errno;

    #[test]
    fn names_round_trip() {
        assert_eq!(Errno::ENOENT.raw(), 2);
        assert_eq!(Errno::ENOENT.name(), Some("ENOENT"));
        assert_eq!(Errno(9999).name(), None);
        assert_eq!(
            alloc::format!("{}", Errno::EXDEV),
            "invalid cross-device link (EXDEV)"
        );
    }
}
