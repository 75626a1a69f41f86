import os
import subprocess

import rump
from conftest import need


def test_ext2_image_through_etfs(tmp_path):
    for t in ["mke2fs", "e2fsck", "debugfs"]:
        need(t)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "hello.txt").write_bytes(b"from mke2fs\n")
    img = tmp_path / "disk.img"
    subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-d", str(tree), str(img), "8M"], check=True)
    with rump.Kernel() as k:
        k.etfs_register("/dev/disk0", str(img))
        k.mkdir("/mnt")
        k.mount("/dev/disk0", "/mnt", "ext2")
        assert k.read_file("/mnt/hello.txt") == b"from mke2fs\n"
        k.mkdir("/mnt/py")
        data = os.urandom(300000)
        k.write_file("/mnt/py/data.bin", data)
        assert k.read_file("/mnt/py/data.bin") == data
        k.umount("/mnt")
        k.etfs_remove("/dev/disk0")
    fsck = subprocess.run(["e2fsck", "-fn", str(img)], capture_output=True)
    assert fsck.returncode == 0, fsck.stdout
    out = subprocess.run(["debugfs", "-R", "dump /py/data.bin %s" % (tmp_path / "out"), str(img)],
                         capture_output=True)
    assert out.returncode == 0
    assert (tmp_path / "out").read_bytes() == data
