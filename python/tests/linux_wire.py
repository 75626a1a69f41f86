"""Runs the TCP scenarios against Linux: a TUN device (bare IP packets,
like a rump pkt interface) in the network namespace this runs in, with
10.0.0.1/24. Prints the observations as JSON. Run by test_tcp_scapy.py
under `ip netns exec`."""

import fcntl
import json
import os
import select
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import tcp_scenarios as sc  # noqa: E402

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


class TunWire:
    def __init__(self, name="tun0"):
        self.fd = os.open("/dev/net/tun", os.O_RDWR)
        fcntl.ioctl(self.fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
        for cmd in (["ip", "link", "set", "lo", "up"],
                    ["ip", "addr", "add", "10.0.0.1/24", "dev", name],
                    ["ip", "link", "set", name, "up"]):
            subprocess.run(cmd, check=True)
        # Linux's defaults that differ from ours but are not TCP semantics.
        for k, v in [("net/ipv6/conf/%s/disable_ipv6" % name, "1")]:
            try:
                with open("/proc/sys/" + k, "w") as f:
                    f.write(v)
            except OSError:
                pass

    def inject(self, pkt):
        os.write(self.fd, pkt)

    def recv(self, timeout):
        r, _, _ = select.select([self.fd], [], [], max(timeout, 0))
        if not r:
            return None
        return os.read(self.fd, 65536)


def main():
    wire = TunWire()
    stack = sc.PySocketStack()
    out = {}
    for s in sc.SCENARIOS:
        out[s.__name__] = s(wire, stack)
    print(json.dumps(out, default=lambda b: b.decode("latin-1") if isinstance(b, bytes) else str(b)))


if __name__ == "__main__":
    main()
