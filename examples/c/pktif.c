/*
 * The packet interface: a ping injected as a bare IPv4 packet gets its
 * echo reply back through rump_pub_pktif_recv; a UDP datagram injected
 * reaches a socket; a datagram the socket sends comes out.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>

#include <rump/rump.h>

#include "check.h"

static uint16_t csum(const void *p, size_t n, uint32_t sum) {
    const uint8_t *b = p;
    for (size_t i = 0; i + 1 < n; i += 2)
        sum += (uint32_t)(b[i] << 8 | b[i + 1]);
    if (n & 1)
        sum += (uint32_t)(b[n - 1] << 8);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static size_t ipv4(uint8_t *p, uint8_t proto, size_t payload) {
    size_t len = 20 + payload;
    p[0] = 0x45, p[1] = 0, p[2] = (uint8_t)(len >> 8), p[3] = (uint8_t)len;
    p[4] = 0, p[5] = 1, p[6] = 0, p[7] = 0, p[8] = 64, p[9] = proto;
    p[10] = p[11] = 0;
    uint8_t src[4] = {10, 7, 0, 2}, dst[4] = {10, 7, 0, 1};
    memcpy(p + 12, src, 4), memcpy(p + 16, dst, 4);
    uint16_t c = csum(p, 20, 0);
    p[10] = (uint8_t)(c >> 8), p[11] = (uint8_t)c;
    return len;
}

int main(void) {
    CHECK(rump_init() == 0);
    FAILS(rump_pub_pktif_open("pkt0") == NULL ? -1 : 0, ENXIO);
    OK(rump_pub_netconfig_ifcreate("pkt0"));
    OK(rump_pub_netconfig_ipv4_ifaddr_cidr("pkt0", "10.7.0.1", 24));
    OK(rump_pub_netconfig_ifup("pkt0"));
    FAILS(rump_pub_pktif_open("lo0") == NULL ? -1 : 0, ENODEV);
    struct rump_pktif *port = rump_pub_pktif_open("pkt0");
    CHECK(port != NULL);
    uint8_t pkt[1500], out[1500];

    /* ICMP echo request -> reply */
    uint8_t *icmp = pkt + 20;
    memset(icmp, 0, 16);
    icmp[0] = 8, icmp[4] = 0x12, icmp[5] = 0x34, icmp[7] = 1;
    memcpy(icmp + 8, "pingdata", 8);
    uint16_t c = csum(icmp, 16, 0);
    icmp[2] = (uint8_t)(c >> 8), icmp[3] = (uint8_t)c;
    size_t n = ipv4(pkt, 1, 16);
    OK(rump_pub_pktif_inject(port, pkt, n));
    long got = OK(rump_pub_pktif_recv(port, out, sizeof out, 5000));
    CHECK(got == 36 && out[9] == 1 && out[20] == 0); /* echo reply */
    CHECK(memcmp(out + 12, "\x0a\x07\x00\x01", 4) == 0 && memcmp(out + 28, "pingdata", 8) == 0);
    CHECK(csum(out, 20, 0) == 0 && csum(out + 20, 16, 0) == 0);

    /* UDP in, to a socket */
    int s = OK(rump_sys_socket(AF_INET, SOCK_DGRAM, 0));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9000)};
    OK(rump_sys_bind(s, (struct sockaddr *)&a, sizeof a));
    uint8_t *udp = pkt + 20;
    udp[0] = 0x30, udp[1] = 0x39, udp[2] = 0x23, udp[3] = 0x28; /* 12345 -> 9000 */
    udp[4] = 0, udp[5] = 13, udp[6] = udp[7] = 0;
    memcpy(udp + 8, "hello", 5);
    n = ipv4(pkt, 17, 13);
    OK(rump_pub_pktif_inject(port, pkt, n));
    char buf[16] = {0};
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    CHECK(OK(rump_sys_recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl)) == 5);
    CHECK(strcmp(buf, "hello") == 0 && from.sin_port == htons(12345));

    /* UDP out, from the socket */
    CHECK(OK(rump_sys_sendto(s, "back", 4, 0, (struct sockaddr *)&from, fl)) == 4);
    got = OK(rump_pub_pktif_recv(port, out, sizeof out, 5000));
    CHECK(got == 32 && out[9] == 17 && memcmp(out + 28, "back", 4) == 0);
    CHECK(rump_pub_pktif_pending(port) == 0);

    /* nothing more: a timeout; garbage: dropped, not fatal */
    FAILS(rump_pub_pktif_recv(port, out, sizeof out, 10), EAGAIN);
    OK(rump_pub_pktif_inject(port, "\x45garbage", 8));
    FAILS(rump_pub_pktif_inject(port, pkt, 0), EINVAL);
    FAILS(rump_pub_pktif_inject(port, NULL, 10), EFAULT);
    FAILS(rump_pub_pktif_recv((struct rump_pktif *)0x999, out, 10, 0), EINVAL);

    OK(rump_sys_close(s));
    OK(rump_pub_pktif_close(port));
    FAILS(rump_pub_pktif_close(port), EINVAL);
    printf("pktif: ok\n");
    return 0;
}
