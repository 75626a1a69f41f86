import os
import subprocess
import time

import pytest

import rump
from conftest import rump_bin


def test_remote_client_against_rump_server(tmp_path):
    binary = rump_bin()
    if not os.environ.get("RUMP_CLIENT_LIBRARY"):
        pytest.skip("no $RUMP_CLIENT_LIBRARY")
    sock = tmp_path / "k.sock"
    pid = tmp_path / "pid"
    srv = subprocess.Popen([binary, "server", "--log", "quiet", "--pidfile", str(pid),
                            "unix://%s" % sock])
    try:
        for _ in range(1000):
            if pid.exists():
                break
            time.sleep(0.01)
        c = rump.Client("unix://%s" % sock)
        c.mkdir("/from-python")
        c.write_file("/from-python/f", b"over the wire" * 10000)
        assert c.read_file("/from-python/f") == b"over the wire" * 10000
        with pytest.raises(FileNotFoundError):
            c.stat("/nope")
        s = c.socket()
        s.bind(("127.0.0.1", 7777))
        s.listen()
        assert s.getsockname() == ("127.0.0.1", 7777)
        s.close()
        c.disconnect()
        with pytest.raises(OSError):
            c.getpid()
    finally:
        srv.terminate()
        assert srv.wait(20) == 0
