import errno
import os
import threading

import pytest

import rump


def test_files_on_tmpfs(kernel):
    k = kernel
    k.mkdir("/d")
    fd = k.open("/d/f", os.O_CREAT | os.O_RDWR, 0o600)
    assert k.write(fd, b"hello rump") == 10
    assert k.pread(fd, 4, 6) == b"rump"
    assert k.lseek(fd, 0) == 0
    assert k.read(fd, 100) == b"hello rump"
    st = k.fstat(fd)
    assert st.st_size == 10 and (st.st_mode & 0o777) == 0o600
    k.ftruncate(fd, 5)
    k.fsync(fd)
    k.close(fd)
    assert k.stat("/d/f").st_size == 5
    k.rename("/d/f", "/d/g")
    k.link("/d/g", "/d/h")
    k.symlink("g", "/d/s")
    assert k.readlink("/d/s") == "g"
    assert sorted(k.listdir("/d")) == ["g", "h", "s"]
    assert k.stat("/d/g").st_nlink == 2
    assert os.path.stat.S_ISLNK(k.lstat("/d/s").st_mode)
    k.chmod("/d/g", 0o644)
    k.chown("/d/g", 5, 6)
    st = k.stat("/d/g")
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (5, 6, 0o644)
    k.truncate("/d/g", 100000)
    assert k.stat("/d/g").st_size == 100000
    k.chdir("/d")
    assert k.getcwd() == "/d"
    k.write_file("big", b"x" * (3 << 20))
    assert k.read_file("/d/big") == b"x" * (3 << 20)
    with k.file("/d/big", "ab") as f:
        f.write(b"tail")
    assert k.stat("big").st_size == (3 << 20) + 4
    for n in ["g", "h", "s", "big"]:
        k.unlink(n)
    k.chdir("/")
    k.rmdir("/d")
    assert not k.exists("/d")
    assert k.getpid() > 0


def test_kernels_are_separate_and_threads_work():
    a, b = rump.Kernel(hostname="a"), rump.Kernel(hostname="b")
    try:
        a.write_file("/only-a", b"1")
        assert a.exists("/only-a") and not b.exists("/only-a")
        assert a.sysctl_get("kern.hostname") == "a"
        assert b.sysctl_get("kern.hostname") == "b"
        errors = []

        def work(k, name):
            try:
                for i in range(200):
                    k.write_file("/%s-%d" % (name, i), b"x")
                assert len(k.listdir("/")) >= 200
            except Exception as e:  # reported below
                errors.append(e)

        ts = [threading.Thread(target=work, args=(k, n)) for k, n in [(a, "a"), (b, "b")] * 2]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert not errors, errors
        assert not any(n.startswith("b-") for n in a.listdir("/"))
    finally:
        a.halt()
        b.halt()


def test_errors_are_oserror_with_the_right_errno(kernel):
    k = kernel
    with pytest.raises(FileNotFoundError):
        k.open("/nope")
    k.mkdir("/x")
    with pytest.raises(FileExistsError):
        k.mkdir("/x")
    with pytest.raises(OSError) as e:
        k.close(12345)
    assert e.value.errno == errno.EBADF
    with pytest.raises(NotADirectoryError):
        k.write_file("/file", b"")
        k.listdir("/file")
    with pytest.raises(OSError) as e:
        k.rmdir("/")
    assert e.value.errno in (errno.EBUSY, errno.EPERM, errno.EINVAL)
    with pytest.raises(OSError) as e:
        k.socket(12345)
    assert e.value.errno == errno.EAFNOSUPPORT
    with pytest.raises(OSError) as e:
        rump.Kernel(params={"no.such.param": "1"})
    assert e.value.errno in (errno.ENOENT, errno.EINVAL)
    k.halt()
    with pytest.raises(OSError) as e:
        k.stat("/x")
    assert e.value.errno == errno.ENXIO
