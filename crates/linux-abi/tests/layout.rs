//! The personality's syscall numbers, structure layouts and constants
//! against the `libc` crate's Linux x86_64 definitions: a mistake in any
//! of them fails here.

use std::mem::{offset_of, size_of};

use linux_abi::layout::*;
use linux_abi::nr;

#[test]
fn syscall_numbers_are_linux_x86_64() {
    let pairs: &[(u64, i64, &str)] = &[
        (nr::READ, libc::SYS_read, "read"),
        (nr::WRITE, libc::SYS_write, "write"),
        (nr::OPEN, libc::SYS_open, "open"),
        (nr::CLOSE, libc::SYS_close, "close"),
        (nr::STAT, libc::SYS_stat, "stat"),
        (nr::FSTAT, libc::SYS_fstat, "fstat"),
        (nr::LSTAT, libc::SYS_lstat, "lstat"),
        (nr::POLL, libc::SYS_poll, "poll"),
        (nr::LSEEK, libc::SYS_lseek, "lseek"),
        (nr::MMAP, libc::SYS_mmap, "mmap"),
        (nr::IOCTL, libc::SYS_ioctl, "ioctl"),
        (nr::PREAD64, libc::SYS_pread64, "pread64"),
        (nr::PWRITE64, libc::SYS_pwrite64, "pwrite64"),
        (nr::READV, libc::SYS_readv, "readv"),
        (nr::WRITEV, libc::SYS_writev, "writev"),
        (nr::ACCESS, libc::SYS_access, "access"),
        (nr::PIPE, libc::SYS_pipe, "pipe"),
        (nr::SELECT, libc::SYS_select, "select"),
        (nr::DUP, libc::SYS_dup, "dup"),
        (nr::DUP2, libc::SYS_dup2, "dup2"),
        (nr::GETPID, libc::SYS_getpid, "getpid"),
        (nr::SOCKET, libc::SYS_socket, "socket"),
        (nr::CONNECT, libc::SYS_connect, "connect"),
        (nr::ACCEPT, libc::SYS_accept, "accept"),
        (nr::SENDTO, libc::SYS_sendto, "sendto"),
        (nr::RECVFROM, libc::SYS_recvfrom, "recvfrom"),
        (nr::SENDMSG, libc::SYS_sendmsg, "sendmsg"),
        (nr::RECVMSG, libc::SYS_recvmsg, "recvmsg"),
        (nr::SHUTDOWN, libc::SYS_shutdown, "shutdown"),
        (nr::BIND, libc::SYS_bind, "bind"),
        (nr::LISTEN, libc::SYS_listen, "listen"),
        (nr::GETSOCKNAME, libc::SYS_getsockname, "getsockname"),
        (nr::GETPEERNAME, libc::SYS_getpeername, "getpeername"),
        (nr::SOCKETPAIR, libc::SYS_socketpair, "socketpair"),
        (nr::SETSOCKOPT, libc::SYS_setsockopt, "setsockopt"),
        (nr::GETSOCKOPT, libc::SYS_getsockopt, "getsockopt"),
        (nr::UNAME, libc::SYS_uname, "uname"),
        (nr::FCNTL, libc::SYS_fcntl, "fcntl"),
        (nr::FLOCK, libc::SYS_flock, "flock"),
        (nr::FSYNC, libc::SYS_fsync, "fsync"),
        (nr::FDATASYNC, libc::SYS_fdatasync, "fdatasync"),
        (nr::TRUNCATE, libc::SYS_truncate, "truncate"),
        (nr::FTRUNCATE, libc::SYS_ftruncate, "ftruncate"),
        (nr::GETCWD, libc::SYS_getcwd, "getcwd"),
        (nr::CHDIR, libc::SYS_chdir, "chdir"),
        (nr::FCHDIR, libc::SYS_fchdir, "fchdir"),
        (nr::RENAME, libc::SYS_rename, "rename"),
        (nr::MKDIR, libc::SYS_mkdir, "mkdir"),
        (nr::RMDIR, libc::SYS_rmdir, "rmdir"),
        (nr::CREAT, libc::SYS_creat, "creat"),
        (nr::LINK, libc::SYS_link, "link"),
        (nr::UNLINK, libc::SYS_unlink, "unlink"),
        (nr::SYMLINK, libc::SYS_symlink, "symlink"),
        (nr::READLINK, libc::SYS_readlink, "readlink"),
        (nr::CHMOD, libc::SYS_chmod, "chmod"),
        (nr::FCHMOD, libc::SYS_fchmod, "fchmod"),
        (nr::CHOWN, libc::SYS_chown, "chown"),
        (nr::FCHOWN, libc::SYS_fchown, "fchown"),
        (nr::LCHOWN, libc::SYS_lchown, "lchown"),
        (nr::UMASK, libc::SYS_umask, "umask"),
        (nr::GETUID, libc::SYS_getuid, "getuid"),
        (nr::GETGID, libc::SYS_getgid, "getgid"),
        (nr::GETEUID, libc::SYS_geteuid, "geteuid"),
        (nr::GETEGID, libc::SYS_getegid, "getegid"),
        (nr::GETPPID, libc::SYS_getppid, "getppid"),
        (nr::GETGROUPS, libc::SYS_getgroups, "getgroups"),
        (nr::MKNOD, libc::SYS_mknod, "mknod"),
        (nr::STATFS, libc::SYS_statfs, "statfs"),
        (nr::FSTATFS, libc::SYS_fstatfs, "fstatfs"),
        (nr::SYNC, libc::SYS_sync, "sync"),
        (nr::GETDENTS64, libc::SYS_getdents64, "getdents64"),
        (nr::OPENAT, libc::SYS_openat, "openat"),
        (nr::MKDIRAT, libc::SYS_mkdirat, "mkdirat"),
        (nr::MKNODAT, libc::SYS_mknodat, "mknodat"),
        (nr::FCHOWNAT, libc::SYS_fchownat, "fchownat"),
        (nr::NEWFSTATAT, libc::SYS_newfstatat, "newfstatat"),
        (nr::UNLINKAT, libc::SYS_unlinkat, "unlinkat"),
        (nr::RENAMEAT, libc::SYS_renameat, "renameat"),
        (nr::LINKAT, libc::SYS_linkat, "linkat"),
        (nr::SYMLINKAT, libc::SYS_symlinkat, "symlinkat"),
        (nr::READLINKAT, libc::SYS_readlinkat, "readlinkat"),
        (nr::FCHMODAT, libc::SYS_fchmodat, "fchmodat"),
        (nr::FACCESSAT, libc::SYS_faccessat, "faccessat"),
        (nr::PSELECT6, libc::SYS_pselect6, "pselect6"),
        (nr::PPOLL, libc::SYS_ppoll, "ppoll"),
        (nr::UTIMENSAT, libc::SYS_utimensat, "utimensat"),
        (nr::ACCEPT4, libc::SYS_accept4, "accept4"),
        (nr::DUP3, libc::SYS_dup3, "dup3"),
        (nr::PIPE2, libc::SYS_pipe2, "pipe2"),
        (nr::PREADV, libc::SYS_preadv, "preadv"),
        (nr::PWRITEV, libc::SYS_pwritev, "pwritev"),
        (nr::RENAMEAT2, libc::SYS_renameat2, "renameat2"),
        (nr::STATX, libc::SYS_statx, "statx"),
        (
            nr::IO_URING_SETUP,
            libc::SYS_io_uring_setup,
            "io_uring_setup",
        ),
        (nr::FACCESSAT2, libc::SYS_faccessat2, "faccessat2"),
    ];
    for &(ours, theirs, name) in pairs {
        assert_eq!(ours, theirs as u64, "syscall number of {name}");
    }
}

#[test]
fn struct_stat_layout() {
    type T = libc::stat;
    assert_eq!(stat::SIZE, size_of::<T>());
    assert_eq!(stat::DEV, offset_of!(T, st_dev));
    assert_eq!(stat::INO, offset_of!(T, st_ino));
    assert_eq!(stat::NLINK, offset_of!(T, st_nlink));
    assert_eq!(stat::MODE, offset_of!(T, st_mode));
    assert_eq!(stat::UID, offset_of!(T, st_uid));
    assert_eq!(stat::GID, offset_of!(T, st_gid));
    assert_eq!(stat::RDEV, offset_of!(T, st_rdev));
    assert_eq!(stat::SIZE_, offset_of!(T, st_size));
    assert_eq!(stat::BLKSIZE, offset_of!(T, st_blksize));
    assert_eq!(stat::BLOCKS, offset_of!(T, st_blocks));
    assert_eq!(stat::ATIME, offset_of!(T, st_atime));
    assert_eq!(stat::ATIME_NSEC, offset_of!(T, st_atime_nsec));
    assert_eq!(stat::MTIME, offset_of!(T, st_mtime));
    assert_eq!(stat::MTIME_NSEC, offset_of!(T, st_mtime_nsec));
    assert_eq!(stat::CTIME, offset_of!(T, st_ctime));
    assert_eq!(stat::CTIME_NSEC, offset_of!(T, st_ctime_nsec));
}

#[test]
fn struct_statx_layout() {
    type T = libc::statx;
    assert_eq!(statx::SIZE, size_of::<T>());
    assert_eq!(statx::MASK, offset_of!(T, stx_mask));
    assert_eq!(statx::BLKSIZE, offset_of!(T, stx_blksize));
    assert_eq!(statx::ATTRIBUTES, offset_of!(T, stx_attributes));
    assert_eq!(statx::NLINK, offset_of!(T, stx_nlink));
    assert_eq!(statx::UID, offset_of!(T, stx_uid));
    assert_eq!(statx::GID, offset_of!(T, stx_gid));
    assert_eq!(statx::MODE, offset_of!(T, stx_mode));
    assert_eq!(statx::INO, offset_of!(T, stx_ino));
    assert_eq!(statx::SIZE_, offset_of!(T, stx_size));
    assert_eq!(statx::BLOCKS, offset_of!(T, stx_blocks));
    assert_eq!(statx::ATTRIBUTES_MASK, offset_of!(T, stx_attributes_mask));
    assert_eq!(statx::ATIME, offset_of!(T, stx_atime));
    assert_eq!(statx::BTIME, offset_of!(T, stx_btime));
    assert_eq!(statx::CTIME, offset_of!(T, stx_ctime));
    assert_eq!(statx::MTIME, offset_of!(T, stx_mtime));
    assert_eq!(statx::RDEV_MAJOR, offset_of!(T, stx_rdev_major));
    assert_eq!(statx::RDEV_MINOR, offset_of!(T, stx_rdev_minor));
    assert_eq!(statx::DEV_MAJOR, offset_of!(T, stx_dev_major));
    assert_eq!(statx::DEV_MINOR, offset_of!(T, stx_dev_minor));
    assert_eq!(statx::TS_SIZE, size_of::<libc::statx_timestamp>());
    assert_eq!(statx::TS_NSEC, offset_of!(libc::statx_timestamp, tv_nsec));
    assert_eq!(statx::BASIC_STATS, libc::STATX_BASIC_STATS);
    assert_eq!(statx::RESERVED, libc::STATX__RESERVED as u32);
    assert_eq!(statx::INO_, libc::STATX_INO);
    assert_eq!(statx::SIZE__, libc::STATX_SIZE);
}

#[test]
fn struct_statfs_layout() {
    type T = libc::statfs;
    assert_eq!(statfs::SIZE, size_of::<T>());
    assert_eq!(statfs::TYPE, offset_of!(T, f_type));
    assert_eq!(statfs::BSIZE, offset_of!(T, f_bsize));
    assert_eq!(statfs::BLOCKS, offset_of!(T, f_blocks));
    assert_eq!(statfs::BFREE, offset_of!(T, f_bfree));
    assert_eq!(statfs::BAVAIL, offset_of!(T, f_bavail));
    assert_eq!(statfs::FILES, offset_of!(T, f_files));
    assert_eq!(statfs::FFREE, offset_of!(T, f_ffree));
    assert_eq!(statfs::FSID, offset_of!(T, f_fsid));
    assert_eq!(statfs::NAMELEN, offset_of!(T, f_namelen));
    assert_eq!(statfs::FRSIZE, offset_of!(T, f_frsize));
    // libc names what follows f_frsize `f_spare`; the kernel's first word
    // of it is f_flags.
    assert_eq!(statfs::FLAGS, offset_of!(T, f_frsize) + 8);
    assert_eq!(statfs::ST_VALID, 0x20);
}

#[test]
fn socket_structure_layouts() {
    type In = libc::sockaddr_in;
    assert_eq!(sockaddr::IN_SIZE, size_of::<In>());
    assert_eq!(sockaddr::IN_PORT, offset_of!(In, sin_port));
    assert_eq!(sockaddr::IN_ADDR, offset_of!(In, sin_addr));
    type In6 = libc::sockaddr_in6;
    assert_eq!(sockaddr::IN6_SIZE, size_of::<In6>());
    assert_eq!(sockaddr::IN6_PORT, offset_of!(In6, sin6_port));
    assert_eq!(sockaddr::IN6_FLOWINFO, offset_of!(In6, sin6_flowinfo));
    assert_eq!(sockaddr::IN6_ADDR, offset_of!(In6, sin6_addr));
    assert_eq!(sockaddr::IN6_SCOPE_ID, offset_of!(In6, sin6_scope_id));
    assert_eq!(sockaddr::IN6_SIZE_RFC2133, offset_of!(In6, sin6_scope_id));
    type Un = libc::sockaddr_un;
    assert_eq!(sockaddr::UN_SIZE, size_of::<Un>());
    assert_eq!(sockaddr::UN_PATH, offset_of!(Un, sun_path));
    assert_eq!(sockaddr::STORAGE_SIZE, size_of::<libc::sockaddr_storage>());

    type M = libc::msghdr;
    assert_eq!(msghdr::SIZE, size_of::<M>());
    assert_eq!(msghdr::NAME, offset_of!(M, msg_name));
    assert_eq!(msghdr::NAMELEN, offset_of!(M, msg_namelen));
    assert_eq!(msghdr::IOV, offset_of!(M, msg_iov));
    assert_eq!(msghdr::IOVLEN, offset_of!(M, msg_iovlen));
    assert_eq!(msghdr::CONTROL, offset_of!(M, msg_control));
    assert_eq!(msghdr::CONTROLLEN, offset_of!(M, msg_controllen));
    assert_eq!(msghdr::FLAGS, offset_of!(M, msg_flags));

    type V = libc::iovec;
    assert_eq!(iovec::SIZE, size_of::<V>());
    assert_eq!(iovec::BASE, offset_of!(V, iov_base));
    assert_eq!(iovec::LEN, offset_of!(V, iov_len));

    type P = libc::pollfd;
    assert_eq!(pollfd::SIZE, size_of::<P>());
    assert_eq!(pollfd::FD, offset_of!(P, fd));
    assert_eq!(pollfd::EVENTS, offset_of!(P, events));
    assert_eq!(pollfd::REVENTS, offset_of!(P, revents));
}

#[test]
fn other_layouts() {
    type Ts = libc::timespec;
    assert_eq!(timespec::SIZE, size_of::<Ts>());
    assert_eq!(timespec::SEC, offset_of!(Ts, tv_sec));
    assert_eq!(timespec::NSEC, offset_of!(Ts, tv_nsec));
    type Tv = libc::timeval;
    assert_eq!(timespec::SIZE, size_of::<Tv>());
    assert_eq!(timespec::NSEC, offset_of!(Tv, tv_usec));
    assert_eq!(utsname::SIZE, size_of::<libc::utsname>());
    assert_eq!(utsname::FIELD, offset_of!(libc::utsname, nodename));
    type D = libc::dirent64;
    assert_eq!(dirent64::INO, offset_of!(D, d_ino));
    assert_eq!(dirent64::OFF, offset_of!(D, d_off));
    assert_eq!(dirent64::RECLEN, offset_of!(D, d_reclen));
    assert_eq!(dirent64::TYPE, offset_of!(D, d_type));
    assert_eq!(dirent64::NAME, offset_of!(D, d_name));
}

#[test]
fn kernel_constants_are_linux() {
    use sys_consts::*;
    assert_eq!(o::CREAT, libc::O_CREAT);
    assert_eq!(o::EXCL, libc::O_EXCL);
    assert_eq!(o::TRUNC, libc::O_TRUNC);
    assert_eq!(o::APPEND, libc::O_APPEND);
    assert_eq!(o::NONBLOCK, libc::O_NONBLOCK);
    assert_eq!(o::DIRECTORY, libc::O_DIRECTORY);
    assert_eq!(o::NOFOLLOW, libc::O_NOFOLLOW);
    assert_eq!(o::CLOEXEC, libc::O_CLOEXEC);
    assert_eq!(o::SYNC, libc::O_SYNC);
    assert_eq!(o::PATH, libc::O_PATH);
    assert_eq!(at::FDCWD, libc::AT_FDCWD);
    assert_eq!(at::SYMLINK_NOFOLLOW, libc::AT_SYMLINK_NOFOLLOW);
    assert_eq!(at::REMOVEDIR, libc::AT_REMOVEDIR);
    assert_eq!(at::SYMLINK_FOLLOW, libc::AT_SYMLINK_FOLLOW);
    assert_eq!(at::EMPTY_PATH, libc::AT_EMPTY_PATH);
    assert_eq!(at::EACCESS, libc::AT_EACCESS);
    assert_eq!(f::DUPFD_CLOEXEC, libc::F_DUPFD_CLOEXEC);
    assert_eq!(f::SETFL, libc::F_SETFL);
    assert_eq!(sock::CLOEXEC, libc::SOCK_CLOEXEC);
    assert_eq!(sock::NONBLOCK, libc::SOCK_NONBLOCK);
    assert_eq!(af::INET6, libc::AF_INET6);
    assert_eq!(poll::RDHUP, libc::POLLRDHUP);
    assert_eq!(msg::NOSIGNAL, libc::MSG_NOSIGNAL);
    assert_eq!(msg::CMSG_CLOEXEC, libc::MSG_CMSG_CLOEXEC);
    assert_eq!(utime::NOW, libc::UTIME_NOW);
    assert_eq!(utime::OMIT, libc::UTIME_OMIT);
    for (ours, theirs) in [
        (rump::Errno::ENAMETOOLONG, libc::ENAMETOOLONG),
        (rump::Errno::EFAULT, libc::EFAULT),
        (rump::Errno::ENOSYS, libc::ENOSYS),
        (rump::Errno::ENOTSOCK, libc::ENOTSOCK),
        (rump::Errno::EAFNOSUPPORT, libc::EAFNOSUPPORT),
        (rump::Errno::EOPNOTSUPP, libc::EOPNOTSUPP),
        (rump::Errno::ENOLCK, libc::ENOLCK),
        (rump::Errno::ENOTTY, libc::ENOTTY),
        (rump::Errno::ERANGE, libc::ERANGE),
        (rump::Errno::EXDEV, libc::EXDEV),
    ] {
        assert_eq!(ours.0, theirs, "{ours:?}");
    }
}

mod sys_consts {
    pub use rump::sys::consts::*;
}

#[test]
fn dev_split_matches_glibc() {
    for (maj, min) in [
        (0u32, 0u32),
        (8, 1),
        (259, 7),
        (4095, 255),
        (4096, 256),
        (0x1234, 0xabcde),
    ] {
        let dev = libc::makedev(maj, min);
        assert_eq!(dev_split(dev), (maj, min));
    }
}
