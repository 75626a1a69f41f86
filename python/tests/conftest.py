import os
import shutil
import uuid

import pytest

import rump


def pytest_configure(config):
    # Every test needs librump; say clearly what is missing.
    try:
        rump.library("rump")
    except OSError as e:
        raise pytest.UsageError(str(e))


@pytest.fixture
def kernel():
    k = rump.Kernel(hostname="py")
    yield k
    k.halt()


@pytest.fixture
def bus_name():
    return "py-bus-%s" % uuid.uuid4().hex[:12]


def need(tool):
    if shutil.which(tool) is None:
        pytest.skip("no %s on this machine" % tool)


def rump_bin():
    b = os.environ.get("RUMP_BIN")
    if not b or not os.path.exists(b):
        pytest.skip("no rump binary ($RUMP_BIN)")
    return b
