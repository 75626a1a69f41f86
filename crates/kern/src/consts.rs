//! Constants with Linux values (x86_64 `asm-generic` numbering), shared by
//! the system-call layer, the remote protocol, the C ABI and the hijack
//! library.

/// `open(2)` flags.
pub mod o {
    pub const RDONLY: i32 = 0;
    pub const WRONLY: i32 = 1;
    pub const RDWR: i32 = 2;
    pub const ACCMODE: i32 = 3;
    pub const CREAT: i32 = 0o100;
    pub const EXCL: i32 = 0o200;
    pub const NOCTTY: i32 = 0o400;
    pub const TRUNC: i32 = 0o1000;
    pub const APPEND: i32 = 0o2000;
    pub const NONBLOCK: i32 = 0o4000;
    pub const DSYNC: i32 = 0o10000;
    pub const ASYNC: i32 = 0o20000;
    pub const DIRECT: i32 = 0o40000;
    pub const LARGEFILE: i32 = 0o100000;
    pub const DIRECTORY: i32 = 0o200000;
    pub const NOFOLLOW: i32 = 0o400000;
    pub const NOATIME: i32 = 0o1000000;
    pub const CLOEXEC: i32 = 0o2000000;
    pub const SYNC: i32 = 0o4010000;
    pub const PATH: i32 = 0o10000000;
    /// Every flag `open` accepts. Others get `EINVAL` (Linux ignores
    /// unknown bits; we refuse them so a caller's mistake shows).
    pub const KNOWN: i32 = ACCMODE
        | CREAT
        | EXCL
        | NOCTTY
        | TRUNC
        | APPEND
        | NONBLOCK
        | DSYNC
        | ASYNC
        | DIRECT
        | LARGEFILE
        | DIRECTORY
        | NOFOLLOW
        | NOATIME
        | CLOEXEC
        | SYNC;
    /// The status flags `F_SETFL` may change.
    pub const SETFL_MASK: i32 = APPEND | NONBLOCK | ASYNC | DIRECT | NOATIME;
}

/// File type and mode bits (`st_mode`).
pub mod s {
    pub const IFMT: u32 = 0o170000;
    pub const IFSOCK: u32 = 0o140000;
    pub const IFLNK: u32 = 0o120000;
    pub const IFREG: u32 = 0o100000;
    pub const IFBLK: u32 = 0o060000;
    pub const IFDIR: u32 = 0o040000;
    pub const IFCHR: u32 = 0o020000;
    pub const IFIFO: u32 = 0o010000;
    pub const ISUID: u32 = 0o4000;
    pub const ISGID: u32 = 0o2000;
    pub const ISVTX: u32 = 0o1000;
    /// Permission bits plus set-id and sticky bits.
    pub const PERM_MASK: u32 = 0o7777;
}

/// `*at` call flags and the special directory descriptor.
pub mod at {
    pub const FDCWD: i32 = -100;
    pub const SYMLINK_NOFOLLOW: i32 = 0x100;
    pub const REMOVEDIR: i32 = 0x200;
    pub const EACCESS: i32 = 0x200;
    pub const SYMLINK_FOLLOW: i32 = 0x400;
    pub const EMPTY_PATH: i32 = 0x1000;
}

/// `fcntl(2)` commands and descriptor flags.
pub mod f {
    pub const DUPFD: i32 = 0;
    pub const GETFD: i32 = 1;
    pub const SETFD: i32 = 2;
    pub const GETFL: i32 = 3;
    pub const SETFL: i32 = 4;
    pub const DUPFD_CLOEXEC: i32 = 1030;
    pub const FD_CLOEXEC: i32 = 1;
}

/// `lseek(2)` whence values.
pub mod seek {
    pub const SET: i32 = 0;
    pub const CUR: i32 = 1;
    pub const END: i32 = 2;
    pub const DATA: i32 = 3;
    pub const HOLE: i32 = 4;
}

/// `poll(2)` events.
pub mod poll {
    pub const IN: i16 = 0x1;
    pub const PRI: i16 = 0x2;
    pub const OUT: i16 = 0x4;
    pub const ERR: i16 = 0x8;
    pub const HUP: i16 = 0x10;
    pub const NVAL: i16 = 0x20;
    pub const RDNORM: i16 = 0x40;
    pub const RDBAND: i16 = 0x80;
    pub const WRNORM: i16 = 0x100;
    pub const WRBAND: i16 = 0x200;
    pub const RDHUP: i16 = 0x2000;
}

/// `access(2)` modes.
pub mod access {
    pub const F_OK: i32 = 0;
    pub const X_OK: i32 = 1;
    pub const W_OK: i32 = 2;
    pub const R_OK: i32 = 4;
}

/// `d_type` values of `getdents64`.
pub mod dt {
    pub const UNKNOWN: u8 = 0;
    pub const FIFO: u8 = 1;
    pub const CHR: u8 = 2;
    pub const DIR: u8 = 4;
    pub const BLK: u8 = 6;
    pub const REG: u8 = 8;
    pub const LNK: u8 = 10;
    pub const SOCK: u8 = 12;
}

/// `utimensat(2)` special nanosecond values.
pub mod utime {
    pub const NOW: i64 = (1 << 30) - 1;
    pub const OMIT: i64 = (1 << 30) - 2;
}

/// Mount flags (`MS_*`).
pub mod ms {
    pub const RDONLY: u64 = 1;
    pub const NOSUID: u64 = 2;
    pub const NODEV: u64 = 4;
    pub const NOEXEC: u64 = 8;
}

/// Limits.
pub const PATH_MAX: usize = 4096;
pub const NAME_MAX: usize = 255;
pub const SYMLOOP_MAX: usize = 40;
pub const PIPE_BUF: usize = 4096;
pub const IOV_MAX: usize = 1024;

/// Socket address families (`AF_*`).
pub mod af {
    pub const UNSPEC: i32 = 0;
    pub const UNIX: i32 = 1;
    pub const INET: i32 = 2;
    pub const INET6: i32 = 10;
}

/// Socket types (`SOCK_*`) and the flags `socket`/`accept4` take with them.
pub mod sock {
    pub const STREAM: i32 = 1;
    pub const DGRAM: i32 = 2;
    pub const RAW: i32 = 3;
    pub const SEQPACKET: i32 = 5;
    /// The bits of the `type` argument that name the type.
    pub const TYPE_MASK: i32 = 0xf;
    pub const NONBLOCK: i32 = 0o4000;
    pub const CLOEXEC: i32 = 0o2000000;
}

/// IP protocol numbers (`IPPROTO_*`), also the option levels `IPPROTO_IP`
/// and `IPPROTO_TCP`.
pub mod ipproto {
    pub const IP: i32 = 0;
    pub const ICMP: i32 = 1;
    pub const TCP: i32 = 6;
    pub const UDP: i32 = 17;
    pub const IPV6: i32 = 41;
    pub const ICMPV6: i32 = 58;
}

/// Socket-level options (`SOL_SOCKET`, `SO_*`).
pub mod so {
    pub const SOL_SOCKET: i32 = 1;
    pub const DEBUG: i32 = 1;
    pub const REUSEADDR: i32 = 2;
    pub const TYPE: i32 = 3;
    pub const ERROR: i32 = 4;
    pub const DONTROUTE: i32 = 5;
    pub const BROADCAST: i32 = 6;
    pub const SNDBUF: i32 = 7;
    pub const RCVBUF: i32 = 8;
    pub const KEEPALIVE: i32 = 9;
    pub const OOBINLINE: i32 = 10;
    pub const LINGER: i32 = 13;
    pub const REUSEPORT: i32 = 15;
    pub const RCVLOWAT: i32 = 18;
    pub const SNDLOWAT: i32 = 19;
    pub const RCVTIMEO: i32 = 20;
    pub const SNDTIMEO: i32 = 21;
    pub const TIMESTAMP: i32 = 29;
    pub const ACCEPTCONN: i32 = 30;
    pub const TIMESTAMPNS: i32 = 35;
    pub const PROTOCOL: i32 = 38;
    pub const DOMAIN: i32 = 39;
}

/// `IPPROTO_IP` options.
pub mod ip {
    pub const TOS: i32 = 1;
    pub const TTL: i32 = 2;
    pub const PKTINFO: i32 = 8;
    pub const RECVTTL: i32 = 12;
}

/// `IPPROTO_IPV6` options.
pub mod ipv6 {
    pub const UNICAST_HOPS: i32 = 16;
    pub const V6ONLY: i32 = 26;
    pub const RECVPKTINFO: i32 = 49;
    pub const PKTINFO: i32 = 50;
    pub const RECVHOPLIMIT: i32 = 51;
    pub const HOPLIMIT: i32 = 52;
}

/// `IPPROTO_TCP` options.
pub mod tcp {
    pub const NODELAY: i32 = 1;
    pub const MAXSEG: i32 = 2;
    pub const KEEPIDLE: i32 = 4;
    pub const KEEPINTVL: i32 = 5;
    pub const KEEPCNT: i32 = 6;
}

/// `send`/`recv` flags (`MSG_*`).
pub mod msg {
    pub const OOB: i32 = 0x1;
    pub const PEEK: i32 = 0x2;
    pub const DONTROUTE: i32 = 0x4;
    pub const TRUNC: i32 = 0x20;
    pub const DONTWAIT: i32 = 0x40;
    pub const EOR: i32 = 0x80;
    pub const WAITALL: i32 = 0x100;
    pub const NOSIGNAL: i32 = 0x4000;
    pub const MORE: i32 = 0x8000;
    pub const CMSG_CLOEXEC: i32 = 0x4000_0000;
}

/// `shutdown(2)` directions.
pub mod shut {
    pub const RD: i32 = 0;
    pub const WR: i32 = 1;
    pub const RDWR: i32 = 2;
}

/// The most connections a listen backlog holds (Linux's `somaxconn`).
pub const SOMAXCONN: usize = 4096;
