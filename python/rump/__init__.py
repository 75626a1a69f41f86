"""rump-rs kernels from Python, over librump (and librumpclient) with ctypes.

    import os, rump
    with rump.Kernel(hostname="box") as k:
        fd = k.open("/hello", os.O_CREAT | os.O_WRONLY, 0o644)
        k.write(fd, b"hi\\n")
        k.close(fd)
        print(k.stat("/hello").st_size)

Every failure raises OSError with the kernel's errno (Linux numbering), so
FileNotFoundError, FileExistsError, ConnectionResetError, ... come out as
they would from the os and socket modules.

Libraries: $RUMP_LIBRARY (path of librump.so) and $RUMP_CLIENT_LIBRARY
(librumpclient.so), else the system's library path (install them with
`scripts/install-capi PREFIX` from the rump-rs tree).
"""

import ctypes
import ctypes.util
import errno as _errno
import json
import os
import socket as _socket
import struct
import threading

__all__ = ["Kernel", "Client", "Socket", "PacketPort", "library"]

_libs = {}
_lock = threading.Lock()


def library(kind="rump"):
    """The loaded librump ("rump") or librumpclient ("rumpclient")."""
    with _lock:
        if kind in _libs:
            return _libs[kind]
        env = "RUMP_LIBRARY" if kind == "rump" else "RUMP_CLIENT_LIBRARY"
        path = os.environ.get(env) or ctypes.util.find_library(kind)
        if not path:
            raise OSError(
                _errno.ENOENT,
                "lib%s.so not found: set $%s or install it with "
                "`scripts/install-capi /usr/local`" % (kind, env),
            )
        lib = ctypes.CDLL(path, use_errno=True)
        _declare(lib)
        _libs[kind] = lib
        return lib


c_int, c_uint, c_long, c_ulong = ctypes.c_int, ctypes.c_uint, ctypes.c_long, ctypes.c_ulong
c_char_p, c_void_p, c_size_t, c_ssize_t = ctypes.c_char_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_ssize_t
c_int64, c_uint64 = ctypes.c_int64, ctypes.c_uint64

# name: (restype, argtypes)
_SIGS = {
    "rump_sys_open": (c_int, [c_char_p, c_int, c_uint]),
    "rump_sys_close": (c_int, [c_int]),
    "rump_sys_read": (c_ssize_t, [c_int, c_void_p, c_size_t]),
    "rump_sys_write": (c_ssize_t, [c_int, c_void_p, c_size_t]),
    "rump_sys_pread": (c_ssize_t, [c_int, c_void_p, c_size_t, c_int64]),
    "rump_sys_pwrite": (c_ssize_t, [c_int, c_void_p, c_size_t, c_int64]),
    "rump_sys_lseek": (c_int64, [c_int, c_int64, c_int]),
    "rump_sys_fstat": (c_int, [c_int, c_void_p]),
    "rump_sys_stat": (c_int, [c_char_p, c_void_p]),
    "rump_sys_lstat": (c_int, [c_char_p, c_void_p]),
    "rump_sys_mkdir": (c_int, [c_char_p, c_uint]),
    "rump_sys_rmdir": (c_int, [c_char_p]),
    "rump_sys_unlink": (c_int, [c_char_p]),
    "rump_sys_rename": (c_int, [c_char_p, c_char_p]),
    "rump_sys_link": (c_int, [c_char_p, c_char_p]),
    "rump_sys_symlink": (c_int, [c_char_p, c_char_p]),
    "rump_sys_readlink": (c_ssize_t, [c_char_p, c_void_p, c_size_t]),
    "rump_sys_getdents64": (c_ssize_t, [c_int, c_void_p, c_size_t]),
    "rump_sys_chmod": (c_int, [c_char_p, c_uint]),
    "rump_sys_chown": (c_int, [c_char_p, c_uint, c_uint]),
    "rump_sys_truncate": (c_int, [c_char_p, c_int64]),
    "rump_sys_ftruncate": (c_int, [c_int, c_int64]),
    "rump_sys_fsync": (c_int, [c_int]),
    "rump_sys_chdir": (c_int, [c_char_p]),
    "rump_sys_getcwd": (c_int, [c_void_p, c_size_t]),
    "rump_sys_getpid": (c_int, []),
    "rump_sys_mount": (c_int, [c_char_p, c_char_p, c_char_p, c_ulong, c_void_p]),
    "rump_sys_umount2": (c_int, [c_char_p, c_int]),
    "rump_sys_socket": (c_int, [c_int, c_int, c_int]),
    "rump_sys_bind": (c_int, [c_int, c_void_p, c_uint]),
    "rump_sys_connect": (c_int, [c_int, c_void_p, c_uint]),
    "rump_sys_listen": (c_int, [c_int, c_int]),
    "rump_sys_accept": (c_int, [c_int, c_void_p, c_void_p]),
    "rump_sys_sendto": (c_ssize_t, [c_int, c_void_p, c_size_t, c_int, c_void_p, c_uint]),
    "rump_sys_recvfrom": (c_ssize_t, [c_int, c_void_p, c_size_t, c_int, c_void_p, c_void_p]),
    "rump_sys_shutdown": (c_int, [c_int, c_int]),
    "rump_sys_getsockname": (c_int, [c_int, c_void_p, c_void_p]),
    "rump_sys_getpeername": (c_int, [c_int, c_void_p, c_void_p]),
    "rump_sys_setsockopt": (c_int, [c_int, c_int, c_int, c_void_p, c_uint]),
    "rump_sys_getsockopt": (c_int, [c_int, c_int, c_int, c_void_p, c_void_p]),
    "rump_sys_poll": (c_int, [c_void_p, c_ulong, c_int]),
    "rump_sys_sysctl_get": (c_ssize_t, [c_char_p, c_void_p, c_size_t]),
    "rump_sys_sysctl_setint": (c_int, [c_char_p, c_int64]),
    "rump_sys_sysctl_setstr": (c_int, [c_char_p, c_char_p]),
    "rump_pub_etfs_register": (c_int, [c_char_p, c_char_p, c_int]),
    "rump_pub_etfs_remove": (c_int, [c_char_p]),
    "rump_pub_netconfig_ifcreate": (c_int, [c_char_p]),
    "rump_pub_netconfig_ifdestroy": (c_int, [c_char_p]),
    "rump_pub_netconfig_ifsetlinkstr": (c_int, [c_char_p, c_char_p]),
    "rump_pub_netconfig_ifup": (c_int, [c_char_p]),
    "rump_pub_netconfig_ifdown": (c_int, [c_char_p]),
    "rump_pub_netconfig_ipv4_ifaddr_cidr": (c_int, [c_char_p, c_char_p, c_int]),
    "rump_pub_netconfig_ipv6_ifaddr": (c_int, [c_char_p, c_char_p, c_int]),
    "rump_pub_netconfig_route_add": (c_int, [c_char_p, c_int, c_char_p, c_char_p]),
    "rump_pub_netconfig_ipv4_gw": (c_int, [c_char_p]),
    "rump_pub_netconfig_ipv6_gw": (c_int, [c_char_p]),
    "rump_pub_netconfig_iflist": (c_ssize_t, [c_void_p, c_size_t]),
    "rump_pub_netconfig_routelist": (c_ssize_t, [c_void_p, c_size_t]),
    # librump only
    "rump_kernel_boot": (c_void_p, [c_char_p]),
    "rump_kernel_halt": (c_int, [c_void_p]),
    "rump_kernel_set_current": (c_int, [c_void_p]),
    "rump_pub_pktif_open": (c_void_p, [c_char_p]),
    "rump_pub_pktif_inject": (c_int, [c_void_p, c_void_p, c_size_t]),
    "rump_pub_pktif_recv": (c_ssize_t, [c_void_p, c_void_p, c_size_t, c_int]),
    "rump_pub_pktif_close": (c_int, [c_void_p]),
    # librumpclient only
    "rumpclient_init": (c_int, []),
    "rumpclient_fini": (c_int, []),
}


def _declare(lib):
    for name, (res, args) in _SIGS.items():
        try:
            f = getattr(lib, name)
        except AttributeError:
            continue
        f.restype = res
        f.argtypes = args


def _raise(e=None):
    e = ctypes.get_errno() if e is None else e
    raise OSError(e, os.strerror(e))


def _check(r):
    if r is None or r < 0:
        _raise()
    return r


def _b(s):
    if isinstance(s, bytes):
        return s
    return os.fsencode(s)


class _Stat(ctypes.Structure):
    """struct stat of Linux x86_64."""

    _fields_ = [
        ("st_dev", ctypes.c_uint64),
        ("st_ino", ctypes.c_uint64),
        ("st_nlink", ctypes.c_uint64),
        ("st_mode", ctypes.c_uint32),
        ("st_uid", ctypes.c_uint32),
        ("st_gid", ctypes.c_uint32),
        ("_pad0", ctypes.c_int32),
        ("st_rdev", ctypes.c_uint64),
        ("st_size", ctypes.c_int64),
        ("st_blksize", ctypes.c_int64),
        ("st_blocks", ctypes.c_int64),
        ("st_atime", ctypes.c_int64),
        ("st_atime_nsec", ctypes.c_int64),
        ("st_mtime", ctypes.c_int64),
        ("st_mtime_nsec", ctypes.c_int64),
        ("st_ctime", ctypes.c_int64),
        ("st_ctime_nsec", ctypes.c_int64),
        ("_unused", ctypes.c_int64 * 3),
    ]


def _stat_result(s):
    ns = lambda sec, nsec: sec * 10**9 + nsec
    a, m, c = (
        ns(s.st_atime, s.st_atime_nsec),
        ns(s.st_mtime, s.st_mtime_nsec),
        ns(s.st_ctime, s.st_ctime_nsec),
    )
    seq = (s.st_mode, s.st_ino, s.st_dev, s.st_nlink, s.st_uid, s.st_gid,
           s.st_size, s.st_atime, s.st_mtime, s.st_ctime)
    extra = {
        "st_atime": a / 1e9, "st_mtime": m / 1e9, "st_ctime": c / 1e9,
        "st_atime_ns": a, "st_mtime_ns": m, "st_ctime_ns": c,
        "st_blksize": s.st_blksize, "st_blocks": s.st_blocks, "st_rdev": s.st_rdev,
    }
    return os.stat_result(seq, extra)


def _sockaddr(family, addr):
    """Linux struct sockaddr bytes for a socket-module style address."""
    if family == _socket.AF_INET:
        host, port = addr
        return struct.pack("=H", family) + struct.pack("!H4s8x", port, _socket.inet_aton(host or "0.0.0.0"))
    if family == _socket.AF_INET6:
        host, port = addr[0], addr[1]
        flow = addr[2] if len(addr) > 2 else 0
        scope = addr[3] if len(addr) > 3 else 0
        return (struct.pack("=H", family)
                + struct.pack("!HI", port, flow)
                + _socket.inet_pton(_socket.AF_INET6, host or "::")
                + struct.pack("=I", scope))
    raise OSError(_errno.EAFNOSUPPORT, os.strerror(_errno.EAFNOSUPPORT))


def _from_sockaddr(b):
    if len(b) < 2:
        return None
    (family,) = struct.unpack("=H", b[:2])
    if family == _socket.AF_INET and len(b) >= 8:
        port, a = struct.unpack("!H4s", b[2:8])
        return (_socket.inet_ntoa(a), port)
    if family == _socket.AF_INET6 and len(b) >= 28:
        port, flow = struct.unpack("!HI", b[2:8])
        (scope,) = struct.unpack("=I", b[24:28])
        return (_socket.inet_ntop(_socket.AF_INET6, b[8:24]), port, flow, scope)
    return None


class _Calls:
    """The system calls, shared by Kernel (librump) and Client (librumpclient)."""

    _lib = None

    def _enter(self):
        pass

    def _call(self, name, *args):
        self._enter()
        return getattr(self._lib, name)(*args)

    def _int(self, name, *args):
        return _check(self._call(name, *args))

    # ---- files
    def open(self, path, flags=os.O_RDONLY, mode=0o644):
        return self._int("rump_sys_open", _b(path), flags, mode)

    def close(self, fd):
        self._int("rump_sys_close", fd)

    def read(self, fd, n):
        buf = ctypes.create_string_buffer(n)
        got = self._int("rump_sys_read", fd, buf, n)
        return buf.raw[:got]

    def pread(self, fd, n, offset):
        buf = ctypes.create_string_buffer(n)
        got = self._int("rump_sys_pread", fd, buf, n, offset)
        return buf.raw[:got]

    def write(self, fd, data):
        data = bytes(data)
        return self._int("rump_sys_write", fd, data, len(data))

    def pwrite(self, fd, data, offset):
        data = bytes(data)
        return self._int("rump_sys_pwrite", fd, data, len(data), offset)

    def lseek(self, fd, offset, whence=os.SEEK_SET):
        return self._int("rump_sys_lseek", fd, offset, whence)

    def fstat(self, fd):
        st = _Stat()
        self._int("rump_sys_fstat", fd, ctypes.byref(st))
        return _stat_result(st)

    def stat(self, path):
        st = _Stat()
        self._int("rump_sys_stat", _b(path), ctypes.byref(st))
        return _stat_result(st)

    def lstat(self, path):
        st = _Stat()
        self._int("rump_sys_lstat", _b(path), ctypes.byref(st))
        return _stat_result(st)

    def exists(self, path):
        try:
            self.stat(path)
            return True
        except FileNotFoundError:
            return False

    def mkdir(self, path, mode=0o755):
        self._int("rump_sys_mkdir", _b(path), mode)

    def rmdir(self, path):
        self._int("rump_sys_rmdir", _b(path))

    def unlink(self, path):
        self._int("rump_sys_unlink", _b(path))

    def rename(self, old, new):
        self._int("rump_sys_rename", _b(old), _b(new))

    def link(self, old, new):
        self._int("rump_sys_link", _b(old), _b(new))

    def symlink(self, target, path):
        self._int("rump_sys_symlink", _b(target), _b(path))

    def readlink(self, path):
        buf = ctypes.create_string_buffer(4096)
        n = self._int("rump_sys_readlink", _b(path), buf, 4096)
        return os.fsdecode(buf.raw[:n])

    def chmod(self, path, mode):
        self._int("rump_sys_chmod", _b(path), mode)

    def chown(self, path, uid, gid):
        self._int("rump_sys_chown", _b(path), uid, gid)

    def truncate(self, path, length):
        self._int("rump_sys_truncate", _b(path), length)

    def ftruncate(self, fd, length):
        self._int("rump_sys_ftruncate", fd, length)

    def fsync(self, fd):
        self._int("rump_sys_fsync", fd)

    def chdir(self, path):
        self._int("rump_sys_chdir", _b(path))

    def getcwd(self):
        buf = ctypes.create_string_buffer(4096)
        self._int("rump_sys_getcwd", buf, 4096)
        return os.fsdecode(buf.value)

    def getpid(self):
        return self._int("rump_sys_getpid")

    def listdir(self, path="."):
        """Names in a directory, without "." and ".." (as os.listdir)."""
        fd = self.open(path, os.O_RDONLY | os.O_DIRECTORY)
        names = []
        try:
            buf = ctypes.create_string_buffer(65536)
            while True:
                n = self._int("rump_sys_getdents64", fd, buf, 65536)
                if n == 0:
                    break
                raw, off = buf.raw[:n], 0
                while off < n:
                    _ino, _doff, reclen, _type = struct.unpack_from("=QqHB", raw, off)
                    name = raw[off + 19:off + reclen].split(b"\0", 1)[0]
                    if name not in (b".", b".."):
                        names.append(os.fsdecode(name))
                    off += reclen
        finally:
            self.close(fd)
        return names

    def file(self, path, mode="rb"):
        """A file object for `path` ("rb", "wb", "ab", "r+b")."""
        return _File(self, path, mode)

    def write_file(self, path, data, mode=0o644):
        with self.file(path, "wb") as f:
            f.write(data)

    def read_file(self, path):
        with self.file(path, "rb") as f:
            return f.read()

    def etfs_register(self, key, hostpath, readonly=False):
        """Registers host file `hostpath` as block device `key`."""
        self._int("rump_pub_etfs_register", _b(key), _b(hostpath), 1 | (0x100 if readonly else 0))

    def etfs_remove(self, key):
        self._int("rump_pub_etfs_remove", _b(key))

    def mount(self, source, target, fstype, flags=0, data=None):
        self._int("rump_sys_mount", _b(source) if source else None, _b(target), _b(fstype), flags,
                  _b(data) if data else None)

    def umount(self, target, flags=0):
        self._int("rump_sys_umount2", _b(target), flags)

    # ---- sockets
    def socket(self, family=_socket.AF_INET, type=_socket.SOCK_STREAM, proto=0):
        return Socket(self, self._int("rump_sys_socket", family, type, proto), family)

    # ---- network configuration and parameters
    def ifcreate(self, name):
        self._int("rump_pub_netconfig_ifcreate", _b(name))

    def ifdestroy(self, name):
        self._int("rump_pub_netconfig_ifdestroy", _b(name))

    def ifsetlink(self, name, link):
        self._int("rump_pub_netconfig_ifsetlinkstr", _b(name), _b(link))

    def ifup(self, name):
        self._int("rump_pub_netconfig_ifup", _b(name))

    def ifdown(self, name):
        self._int("rump_pub_netconfig_ifdown", _b(name))

    def ifaddr(self, name, cidr):
        """Adds an address: "10.0.0.1/24" or "fd00::1/64"."""
        addr, _, prefix = cidr.partition("/")
        if ":" in addr:
            self._int("rump_pub_netconfig_ipv6_ifaddr", _b(name), _b(addr), int(prefix or 128))
        else:
            self._int("rump_pub_netconfig_ipv4_ifaddr_cidr", _b(name), _b(addr), int(prefix or 32))

    def gateway(self, addr):
        fn = "rump_pub_netconfig_ipv6_gw" if ":" in addr else "rump_pub_netconfig_ipv4_gw"
        self._int(fn, _b(addr))

    def route_add(self, cidr, gateway=None, ifname=None):
        dst, _, prefix = cidr.partition("/")
        self._int("rump_pub_netconfig_route_add", _b(dst), int(prefix or 32),
                  _b(gateway) if gateway else None, _b(ifname) if ifname else None)

    def _json(self, name):
        size = 65536
        while True:
            buf = ctypes.create_string_buffer(size)
            n = self._int(name, buf, size)
            if n < size:
                return json.loads(buf.value.decode())
            size = n + 1

    def interfaces(self):
        return self._json("rump_pub_netconfig_iflist")

    def routes(self):
        return self._json("rump_pub_netconfig_routelist")

    def sysctl_get(self, name):
        buf = ctypes.create_string_buffer(4096)
        self._int("rump_sys_sysctl_get", _b(name), buf, 4096)
        v = buf.value.decode()
        try:
            return int(v)
        except ValueError:
            return v

    def sysctl_set(self, name, value):
        if isinstance(value, int):
            self._int("rump_sys_sysctl_setint", _b(name), value)
        else:
            self._int("rump_sys_sysctl_setstr", _b(name), _b(value))


class _File:
    def __init__(self, calls, path, mode):
        flags = {
            "rb": os.O_RDONLY, "r": os.O_RDONLY,
            "wb": os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
            "ab": os.O_WRONLY | os.O_CREAT | os.O_APPEND, "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
            "r+b": os.O_RDWR, "r+": os.O_RDWR,
        }.get(mode)
        if flags is None:
            raise ValueError("mode %r" % mode)
        self._k, self.fd = calls, calls.open(path, flags, 0o644)

    def read(self, n=-1):
        if n >= 0:
            return self._k.read(self.fd, n)
        out = []
        while True:
            b = self._k.read(self.fd, 1 << 20)
            if not b:
                return b"".join(out)
            out.append(b)

    def write(self, data):
        data, done = memoryview(bytes(data)), 0
        while done < len(data):
            done += self._k.write(self.fd, data[done:done + (1 << 20)])
        return done

    def seek(self, offset, whence=os.SEEK_SET):
        return self._k.lseek(self.fd, offset, whence)

    def close(self):
        if self.fd is not None:
            self._k.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Socket:
    """A socket of a rump kernel, shaped like the socket module's."""

    def __init__(self, calls, fd, family):
        self._k, self.fd, self.family = calls, fd, family

    def _int(self, name, *args):
        return self._k._int(name, *args)

    def fileno(self):
        return self.fd

    def bind(self, addr):
        sa = _sockaddr(self.family, addr)
        self._int("rump_sys_bind", self.fd, sa, len(sa))

    def connect(self, addr):
        sa = _sockaddr(self.family, addr)
        self._int("rump_sys_connect", self.fd, sa, len(sa))

    def listen(self, backlog=128):
        self._int("rump_sys_listen", self.fd, backlog)

    def accept(self):
        buf = ctypes.create_string_buffer(128)
        ln = ctypes.c_uint(128)
        fd = self._int("rump_sys_accept", self.fd, buf, ctypes.byref(ln))
        return Socket(self._k, fd, self.family), _from_sockaddr(buf.raw[:ln.value])

    def send(self, data, flags=0):
        data = bytes(data)
        return self._int("rump_sys_sendto", self.fd, data, len(data), flags, None, 0)

    def sendall(self, data):
        data, done = memoryview(bytes(data)), 0
        while done < len(data):
            done += self.send(data[done:done + 65536])

    def sendto(self, data, addr, flags=0):
        data, sa = bytes(data), _sockaddr(self.family, addr)
        return self._int("rump_sys_sendto", self.fd, data, len(data), flags, sa, len(sa))

    def recv(self, n, flags=0):
        buf = ctypes.create_string_buffer(n)
        got = self._int("rump_sys_recvfrom", self.fd, buf, n, flags, None, None)
        return buf.raw[:min(got, n)]

    def recvfrom(self, n, flags=0):
        buf = ctypes.create_string_buffer(n)
        sa = ctypes.create_string_buffer(128)
        ln = ctypes.c_uint(128)
        got = self._int("rump_sys_recvfrom", self.fd, buf, n, flags, sa, ctypes.byref(ln))
        return buf.raw[:min(got, n)], _from_sockaddr(sa.raw[:ln.value])

    def shutdown(self, how):
        self._int("rump_sys_shutdown", self.fd, how)

    def _name(self, fn):
        sa = ctypes.create_string_buffer(128)
        ln = ctypes.c_uint(128)
        self._int(fn, self.fd, sa, ctypes.byref(ln))
        return _from_sockaddr(sa.raw[:ln.value])

    def getsockname(self):
        return self._name("rump_sys_getsockname")

    def getpeername(self):
        return self._name("rump_sys_getpeername")

    def setsockopt(self, level, name, value):
        v = struct.pack("=i", value) if isinstance(value, int) else bytes(value)
        self._int("rump_sys_setsockopt", self.fd, level, name, v, len(v))

    def getsockopt(self, level, name, buflen=0):
        buf = ctypes.create_string_buffer(max(buflen, 4))
        ln = ctypes.c_uint(max(buflen, 4))
        self._int("rump_sys_getsockopt", self.fd, level, name, buf, ctypes.byref(ln))
        if buflen == 0:
            return struct.unpack("=i", buf.raw[:4])[0]
        return buf.raw[:ln.value]

    def settimeout(self, seconds):
        """Receive and send timeouts (None: block forever)."""
        s = seconds or 0
        tv = struct.pack("=qq", int(s), int((s - int(s)) * 1e6))
        self.setsockopt(_socket.SOL_SOCKET, _socket.SO_RCVTIMEO, tv)
        self.setsockopt(_socket.SOL_SOCKET, _socket.SO_SNDTIMEO, tv)

    def poll(self, events=0x1, timeout_ms=0):
        """poll(2) on this socket alone: the revents."""
        pfd = struct.pack("=ihh", self.fd, events, 0)
        buf = ctypes.create_string_buffer(pfd, 8)
        self._int("rump_sys_poll", buf, 1, timeout_ms)
        return struct.unpack("=ihh", buf.raw[:8])[2]

    def close(self):
        if self.fd is not None:
            self._k.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PacketPort:
    """A port on a `pktN` interface: inject bare IP packets, read the stack's."""

    def __init__(self, kernel, ifname):
        self._k = kernel
        kernel._enter()
        h = kernel._lib.rump_pub_pktif_open(_b(ifname))
        if not h:
            _raise()
        self._h = h

    def inject(self, packet):
        packet = bytes(packet)
        self._k._int("rump_pub_pktif_inject", self._h, packet, len(packet))

    def recv(self, timeout=1.0):
        """The next packet the stack sent, or None after `timeout` seconds
        (None: wait forever)."""
        ms = -1 if timeout is None else int(timeout * 1000)
        buf = ctypes.create_string_buffer(65536)
        self._k._enter()
        n = self._k._lib.rump_pub_pktif_recv(self._h, buf, 65536, ms)
        if n < 0:
            e = ctypes.get_errno()
            if e == _errno.EAGAIN:
                return None
            _raise(e)
        return buf.raw[:n]

    def close(self):
        if self._h:
            self._k._int("rump_pub_pktif_close", self._h)
            self._h = None


class Kernel(_Calls):
    """A rump kernel in this process (librump). Several may live at once;
    calls from any thread go to this one."""

    def __init__(self, hostname=None, params=None, net=True):
        self._lib = library("rump")
        items = []
        if hostname:
            items.append("hostname=%s" % hostname)
        if not net:
            items.append("net=0")
        for k, v in (params or {}).items():
            items.append("%s=%s" % (k, v))
        h = self._lib.rump_kernel_boot(",".join(items).encode())
        if not h:
            _raise()
        self._h = h

    def _enter(self):
        if self._h is None:
            raise OSError(_errno.ENXIO, "the kernel was halted")
        self._lib.rump_kernel_set_current(self._h)

    def packet_port(self, ifname):
        return PacketPort(self, ifname)

    def halt(self):
        if self._h is not None:
            self._lib.rump_kernel_halt(self._h)
            self._h = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.halt()


class Client(_Calls):
    """A kernel in another process (`rump server`), over librumpclient.
    One connection per Python process."""

    def __init__(self, url=None):
        if url:
            os.environ["RUMP_SERVER"] = url
        self._lib = library("rumpclient")
        _check(self._lib.rumpclient_init())

    def disconnect(self):
        """Drops the connection (the remote process exits); later calls
        raise ENXIO."""
        self._lib.rumpclient_fini()
