"""The packet interface driven by scapy: TCP behaviour as RFC 9293 says,
on a rump kernel, compared with Linux's through a TUN device in a network
namespace (when root and `ip netns` are available)."""

import json
import os
import shutil
import subprocess
import sys
import uuid

import pytest

import rump
import tcp_scenarios as sc


class RumpStack:
    def __init__(self, k):
        self.k = k

    def listen(self, port):
        s = self.k.socket()
        s.setsockopt(6, 1, 1)  # TCP_NODELAY
        s.bind((sc.LOCAL, port))
        s.listen()
        return s

    def accept(self, s):
        c, _ = s.accept()
        c.settimeout(5)
        return c

    def send(self, c, data):
        c.sendall(data)

    def recv(self, c, n):
        return c.recv(n)

    def close(self, c):
        c.close()


def rump_run(scenario):
    with rump.Kernel() as k:
        k.ifcreate("pkt0")
        k.ifaddr("pkt0", sc.LOCAL + "/24")
        k.ifup("pkt0")
        port = k.packet_port("pkt0")
        try:
            return scenario(port, RumpStack(k))
        finally:
            port.close()


def normal(obs):
    return json.loads(json.dumps(obs, default=lambda b: b.decode("latin-1") if isinstance(b, bytes) else str(b)))


EXPECTED = {
    "syn_gets_syn_ack": {"flags": "SA", "ack_is_isn_plus_1": True, "mss": True, "sport": 81, "dport": 40001},
    "data_both_ways": {"acked": True, "delivered": b"hello", "sent_payload": b"world",
                       "sent_seq_ok": True, "sent_ack_ok": True},
    "out_of_order_and_duplicates": {"dup_ack_for_gap": True, "acked_all": True,
                                    "in_order": b"AAAAABBBB", "dup_reacked": True,
                                    "no_duplicate_data": b"C"},
    "rst_in_and_out_of_window": {"out_of_window_ignored": b"alive", "in_window_resets": "ECONNRESET"},
    "zero_window_probe": {"probed": True, "data_after_open": True},
    "fin_peer_first": {"fin_acked": True, "eof": b"", "our_fin": True, "fin_seq_ok": True},
    "fin_socket_first": {"fin": True, "last_ack": True},
    "syn_to_closed_port": {"rst": True, "ack": True},
}


@pytest.mark.parametrize("scenario", sc.SCENARIOS, ids=lambda s: s.__name__)
def test_rump_behaves_as_rfc_9293_says(scenario):
    assert normal(rump_run(scenario)) == normal(EXPECTED[scenario.__name__])


@pytest.fixture(scope="module")
def linux_results():
    if os.geteuid() != 0 or shutil.which("ip") is None or not os.path.exists("/dev/net/tun"):
        pytest.skip("Linux reference needs root, ip and /dev/net/tun")
    ns = "rumpscapy%s" % uuid.uuid4().hex[:8]
    if subprocess.run(["ip", "netns", "add", ns]).returncode != 0:
        pytest.skip("cannot create a network namespace")
    try:
        here = os.path.dirname(__file__)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        out = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.join(here, "linux_wire.py")],
                             capture_output=True, env=env, timeout=300)
        assert out.returncode == 0, out.stderr.decode()
        return json.loads(out.stdout)
    finally:
        subprocess.run(["ip", "netns", "del", ns])


@pytest.mark.parametrize("scenario", sc.SCENARIOS, ids=lambda s: s.__name__)
def test_rump_and_linux_agree(scenario, linux_results):
    linux = linux_results[scenario.__name__]
    assert linux == normal(EXPECTED[scenario.__name__]), "Linux itself: %s" % linux
    assert normal(rump_run(scenario)) == linux
