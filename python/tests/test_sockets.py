import socket
import threading

import rump


def two_kernels(bus):
    a, b = rump.Kernel(hostname="a"), rump.Kernel(hostname="b")
    for k, ip in [(a, "10.3.0.1/24"), (b, "10.3.0.2/24")]:
        k.ifcreate("bus0")
        k.ifsetlink("bus0", bus)
        k.ifaddr("bus0", ip)
        k.ifaddr("bus0", "fd03::%s/64" % ip.split(".")[3].split("/")[0])
        k.ifup("bus0")
    return a, b


def test_tcp_and_udp_between_two_kernels(bus_name):
    a, b = two_kernels(bus_name)
    try:
        assert any(i.get("name") == "bus0" for i in a.interfaces())
        srv = a.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", 8080))
        srv.listen()
        data = bytes(range(256)) * 4000
        got = []

        def serve():
            c, peer = srv.accept()
            assert peer[0] == "10.3.0.2"
            buf = []
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf.append(chunk)
            got.append(b"".join(buf))
            c.sendall(b"thanks")
            c.close()

        t = threading.Thread(target=serve)
        t.start()
        cl = b.socket()
        cl.settimeout(10)
        cl.connect(("10.3.0.1", 8080))
        assert cl.getpeername() == ("10.3.0.1", 8080)
        assert cl.getsockname()[0] == "10.3.0.2"
        cl.sendall(data)
        cl.shutdown(socket.SHUT_WR)
        assert cl.recv(100) == b"thanks"
        cl.close()
        t.join(20)
        assert got == [data]
        srv.close()

        # UDP over IPv6
        ub = b.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        ub.bind(("::", 9999))
        ua = a.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        ua.sendto(b"dgram", ("fd03::2", 9999))
        assert ub.poll(0x1, 5000) & 0x1
        msg, frm = ub.recvfrom(100)
        assert msg == b"dgram" and frm[0] == "fd03::1"
    finally:
        a.halt()
        b.halt()
