"""TCP scenarios written once against an abstract wire and socket API,
run on a rump kernel's packet interface and (as the reference) on Linux
through a TUN device. Packets are built and parsed with scapy.

A wire has inject(bytes) and recv(timeout) -> bytes | None. A stack has
listen(port) -> listener, accept(listener) -> conn, send(conn, data),
recv(conn, n) -> bytes (raising OSError), close(conn). Each scenario
returns a dict of observations that must be the same on both stacks.
"""

import errno
import time

from scapy.layers.inet import IP, TCP

LOCAL, PEER = "10.0.0.1", "10.0.0.2"


def tcp_packets(wire, timeout=2.0, want=None):
    """TCP segments from the wire until `want` matches one (returned) or
    the timeout passes (None). Other packets (IPv6 router solicitations,
    ...) are skipped."""
    deadline = time.time() + timeout
    while True:
        left = deadline - time.time()
        if left <= 0:
            return None
        raw = wire.recv(left)
        if raw is None:
            return None
        if raw[0] >> 4 != 4:
            continue
        p = IP(raw)
        if TCP not in p:
            continue
        if want is None or want(p[TCP]):
            return p


def send(wire, sport, dport, flags, seq, ack=0, data=b"", window=65535, options=None):
    seg = TCP(sport=sport, dport=dport, flags=flags, seq=seq, ack=ack, window=window,
              options=options or [])
    wire.inject(bytes(IP(src=PEER, dst=LOCAL, ttl=64) / seg / data))


def opt_names(tcp):
    return sorted({o[0] for o in tcp.options})


def handshake(wire, stack, port, sport=40000, isn=1000):
    lst = stack.listen(port)
    send(wire, sport, port, "S", isn, options=[("MSS", 1400)])
    sa = tcp_packets(wire, want=lambda t: t.flags.S and t.flags.A)
    assert sa is not None, "no SYN-ACK"
    t = sa[TCP]
    send(wire, sport, port, "A", isn + 1, t.seq + 1)
    conn = stack.accept(lst)
    return lst, conn, t.seq + 1, isn + 1, t


def syn_gets_syn_ack(wire, stack):
    lst = stack.listen(81)
    send(wire, 40001, 81, "S", 5000, options=[("MSS", 1400)])
    sa = tcp_packets(wire, want=lambda t: t.flags.S)
    t = sa[TCP]
    stack.close(lst)
    return {"flags": str(t.flags), "ack_is_isn_plus_1": t.ack == 5001,
            "mss": "MSS" in opt_names(t), "sport": t.sport, "dport": t.dport}


def data_both_ways(wire, stack):
    lst, conn, our_seq, peer_seq, _ = handshake(wire, stack, 82, 40002)
    send(wire, 40002, 82, "PA", peer_seq, our_seq, b"hello")
    ack = tcp_packets(wire, want=lambda t: t.ack == peer_seq + 5)
    got = stack.recv(conn, 100)
    stack.send(conn, b"world")
    seg = tcp_packets(wire, want=lambda t: len(bytes(t.payload)) > 0)
    out = {"acked": ack is not None, "delivered": got,
           "sent_payload": bytes(seg[TCP].payload), "sent_seq_ok": seg[TCP].seq == our_seq,
           "sent_ack_ok": seg[TCP].ack == peer_seq + 5}
    stack.close(conn)
    stack.close(lst)
    return out


def out_of_order_and_duplicates(wire, stack):
    lst, conn, our_seq, peer_seq, _ = handshake(wire, stack, 83, 40003)
    send(wire, 40003, 83, "PA", peer_seq + 5, our_seq, b"BBBB")
    dup = tcp_packets(wire, want=lambda t: t.flags.A)
    send(wire, 40003, 83, "PA", peer_seq, our_seq, b"AAAAA")
    full = tcp_packets(wire, want=lambda t: t.ack == peer_seq + 9)
    got = b""
    while len(got) < 9:
        got += stack.recv(conn, 100)
    send(wire, 40003, 83, "PA", peer_seq, our_seq, b"AAAAA")  # a duplicate
    again = tcp_packets(wire, want=lambda t: t.flags.A)
    send(wire, 40003, 83, "PA", peer_seq + 9, our_seq, b"C")
    more = stack.recv(conn, 100)
    out = {"dup_ack_for_gap": dup is not None and dup[TCP].ack == peer_seq,
           "acked_all": full is not None, "in_order": got,
           "dup_reacked": again is not None and again[TCP].ack == peer_seq + 9,
           "no_duplicate_data": more}
    stack.close(conn)
    stack.close(lst)
    return out


def rst_in_and_out_of_window(wire, stack):
    lst, conn, our_seq, peer_seq, _ = handshake(wire, stack, 84, 40004)
    send(wire, 40004, 84, "R", peer_seq + 100000)  # far outside the window
    time.sleep(0.2)
    send(wire, 40004, 84, "PA", peer_seq, our_seq, b"alive")
    alive = stack.recv(conn, 100)
    send(wire, 40004, 84, "R", peer_seq + 5)  # exactly the next expected
    time.sleep(0.2)
    try:
        stack.recv(conn, 100)
        err = None
    except OSError as e:
        err = errno.errorcode.get(e.errno)
    stack.close(conn)
    stack.close(lst)
    return {"out_of_window_ignored": alive, "in_window_resets": err}


def zero_window_probe(wire, stack):
    lst, conn, our_seq, peer_seq, _ = handshake(wire, stack, 85, 40005)
    stack.send(conn, b"x" * 100)
    seg = tcp_packets(wire, want=lambda t: len(bytes(t.payload)) > 0)
    n = len(bytes(seg[TCP].payload))
    send(wire, 40005, 85, "A", peer_seq, our_seq + n, window=0)  # window closes
    stack.send(conn, b"y" * 10)
    probe = tcp_packets(wire, timeout=8.0, want=lambda t: t.flags.A)
    send(wire, 40005, 85, "A", peer_seq, our_seq + n, window=65535)  # opens
    rest = tcp_packets(wire, timeout=3.0,
                       want=lambda t: bytes(t.payload).startswith(b"y"))
    out = {"probed": probe is not None, "data_after_open": rest is not None}
    stack.close(conn)
    stack.close(lst)
    return out


def fin_peer_first(wire, stack):
    lst, conn, our_seq, peer_seq, _ = handshake(wire, stack, 86, 40006)
    send(wire, 40006, 86, "FA", peer_seq, our_seq)
    ack = tcp_packets(wire, want=lambda t: t.ack == peer_seq + 1)
    eof = stack.recv(conn, 100)
    stack.close(conn)
    fin = tcp_packets(wire, want=lambda t: t.flags.F)
    stack.close(lst)
    return {"fin_acked": ack is not None, "eof": eof, "our_fin": fin is not None,
            "fin_seq_ok": fin is not None and fin[TCP].seq == our_seq}


def fin_socket_first(wire, stack):
    lst, conn, our_seq, peer_seq, _ = handshake(wire, stack, 87, 40007)
    stack.close(conn)
    fin = tcp_packets(wire, want=lambda t: t.flags.F)
    send(wire, 40007, 87, "FA", peer_seq, our_seq + 1)
    last = tcp_packets(wire, want=lambda t: t.flags.A and t.ack == peer_seq + 1)
    stack.close(lst)
    return {"fin": fin is not None and fin[TCP].seq == our_seq,
            "last_ack": last is not None and last[TCP].seq == our_seq + 1}


def syn_to_closed_port(wire, stack):
    send(wire, 40008, 88, "S", 7000)
    r = tcp_packets(wire, want=lambda t: t.flags.R)
    t = r[TCP] if r else None
    return {"rst": t is not None and t.flags.R and t.flags.A, "ack": t is not None and t.ack == 7001}


SCENARIOS = [syn_gets_syn_ack, data_both_ways, out_of_order_and_duplicates,
             rst_in_and_out_of_window, zero_window_probe, fin_peer_first,
             fin_socket_first, syn_to_closed_port]


class PySocketStack:
    """Linux's stack through Python's socket module."""

    def listen(self, port):
        import socket
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((LOCAL, port))
        s.listen()
        s.settimeout(5)
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
