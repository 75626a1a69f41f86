/*
 * Two rump kernels in one process exchanging TCP and UDP over an
 * in-process Ethernet bus, configured with the netconfig calls. Each
 * thread points its calls at one kernel with rump_kernel_set_current.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <unistd.h>

#include <rump/rump.h>

#include "check.h"

static struct rump_kernel *ka, *kb;
static char bus[64];

static void setup(struct rump_kernel *k, const char *ip4, const char *ip6) {
    OK(rump_kernel_set_current(k));
    OK(rump_pub_netconfig_ifcreate("bus0"));
    FAILS(rump_pub_netconfig_ifcreate("bus0"), EEXIST);
    FAILS(rump_pub_netconfig_ifcreate("nosuch0"), EINVAL);
    OK(rump_pub_netconfig_ifsetlinkstr("bus0", bus));
    OK(rump_pub_netconfig_ifsetmtu("bus0", 1500));
    OK(rump_pub_netconfig_ipv6_ifaddr("bus0", ip6, 64));
    OK(rump_pub_netconfig_ifup("bus0"));
    (void)ip4;
}

static void *server(void *arg) {
    (void)arg;
    OK(rump_kernel_set_current(ka));
    int s = OK(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
    int one = 1;
    OK(rump_sys_setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7000)};
    OK(rump_sys_bind(s, (struct sockaddr *)&a, sizeof a));
    OK(rump_sys_listen(s, 8));
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    int c = OK(rump_sys_accept(s, (struct sockaddr *)&peer, &len));
    CHECK(len == sizeof peer && peer.sin_addr.s_addr == inet_addr("10.9.0.2"));
    char buf[100000];
    long total = 0, n;
    while ((n = OK(rump_sys_recv(c, buf, sizeof buf, 0))) > 0) {
        for (long i = 0; i < n; i++)
            CHECK(buf[i] == (char)((total + i) % 251));
        total += n;
    }
    CHECK(total == 1000000);
    CHECK(OK(rump_sys_send(c, "done", 4, 0)) == 4);
    OK(rump_sys_shutdown(c, SHUT_WR));
    OK(rump_sys_close(c));
    /* accept4 with SOCK_NONBLOCK on an empty queue */
    int fl = OK(rump_sys_fcntl(s, F_GETFL, 0));
    OK(rump_sys_fcntl(s, F_SETFL, fl | O_NONBLOCK));
    FAILS(rump_sys_accept4(s, NULL, NULL, SOCK_CLOEXEC), EAGAIN);
    OK(rump_sys_close(s));
    return NULL;
}

int main(void) {
    snprintf(bus, sizeof bus, "capi-net-%d", (int)getpid());
    ka = rump_kernel_boot("hostname=a");
    kb = rump_kernel_boot("hostname=b,net.inet.ip.forwarding=0");
    CHECK(ka && kb && ka != kb);
    CHECK(rump_kernel_boot("nonsense") == NULL && errno == EINVAL);
    setup(ka, "10.9.0.1", "fd00::1");
    OK(rump_pub_netconfig_ipv4_ifaddr_cidr("bus0", "10.9.0.1", 24));
    FAILS(rump_pub_netconfig_ipv4_ifaddr_cidr("bus0", "10.9.0.300", 24), EINVAL);
    FAILS(rump_pub_netconfig_ipv4_ifaddr_cidr("bus0", "10.9.0.1", 33), EINVAL);
    setup(kb, "10.9.0.2", "fd00::2");
    FAILS(rump_pub_netconfig_ipv4_ifaddr("bus0", "10.9.0.2", "255.0.255.0"), EINVAL);
    OK(rump_pub_netconfig_ipv4_ifaddr("bus0", "10.9.0.2", "255.255.255.0"));
    OK(rump_pub_netconfig_ipv4_gw("10.9.0.1"));
    OK(rump_pub_netconfig_ipv6_gw("fd00::1"));
    FAILS(rump_pub_netconfig_ipv4_gw("fd00::1"), EINVAL);
    OK(rump_pub_netconfig_route_add("192.168.77.0", 24, "10.9.0.1", NULL));
    OK(rump_pub_netconfig_route_add("192.168.78.0", 24, NULL, "bus0"));
    char text[16384];
    long n = OK(rump_pub_netconfig_routelist(text, sizeof text));
    CHECK(n < (long)sizeof text && strstr(text, "192.168.77.0") && strstr(text, "192.168.78.0"));
    OK(rump_pub_netconfig_route_delete("192.168.77.0", 24));
    OK(rump_pub_netconfig_route_delete("192.168.78.0", 24));
    FAILS(rump_pub_netconfig_route_delete("192.168.77.0", 24), ESRCH);
    n = OK(rump_pub_netconfig_iflist(text, sizeof text));
    CHECK(strstr(text, "\"bus0\"") && strstr(text, "10.9.0.2"));

    /* kernel parameters */
    char host[64];
    OK(rump_sys_sysctl_get("kern.hostname", host, sizeof host));
    CHECK(strcmp(host, "b") == 0);
    OK(rump_sys_sysctl_setstr("kern.hostname", "bee"));
    struct utsname u;
    OK(rump_sys_uname(&u));
    CHECK(strcmp(u.nodename, "bee") == 0);
    int64_t fwd = -1;
    OK(rump_sys_sysctl_getint("net.inet.ip.forwarding", &fwd));
    CHECK(fwd == 0);
    OK(rump_sys_sysctl_setint("net.inet.ip.forwarding", 1));
    OK(rump_sys_sysctl_getint("net.inet.ip.forwarding", &fwd));
    CHECK(fwd == 1);
    FAILS(rump_sys_sysctl_getint("kern.hostname", &fwd), EINVAL);
    FAILS(rump_sys_sysctl_get("no.such.node", host, sizeof host), ENOENT);
    n = OK(rump_sys_sysctl_list("net.inet", text, sizeof text));
    CHECK(strstr(text, "\"net.inet.ip.forwarding\":1") != NULL);

    /* TCP from b to a */
    pthread_t t;
    CHECK(pthread_create(&t, NULL, server, NULL) == 0);
    int s = OK(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(7000)};
    a.sin_addr.s_addr = inet_addr("10.9.0.1");
    int tries = 0;
    while (rump_sys_connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
        CHECK(errno == ECONNREFUSED && ++tries < 500);
        OK(rump_sys_close(s));
        s = OK(rump_sys_socket(AF_INET, SOCK_STREAM, 0));
        usleep(10000);
    }
    int one = 1;
    OK(rump_sys_setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
    int v = 0;
    socklen_t vl = sizeof v;
    OK(rump_sys_getsockopt(s, IPPROTO_TCP, TCP_NODELAY, &v, &vl));
    CHECK(v == 1 && vl == sizeof v);
    vl = sizeof v;
    OK(rump_sys_getsockopt(s, SOL_SOCKET, SO_TYPE, &v, &vl));
    CHECK(v == SOCK_STREAM);
    struct sockaddr_in me, peer;
    socklen_t ml = sizeof me, pl = sizeof peer;
    OK(rump_sys_getsockname(s, (struct sockaddr *)&me, &ml));
    OK(rump_sys_getpeername(s, (struct sockaddr *)&peer, &pl));
    CHECK(me.sin_addr.s_addr == inet_addr("10.9.0.2") && peer.sin_port == htons(7000));
    static char data[1000000];
    for (long i = 0; i < (long)sizeof data; i++)
        data[i] = (char)(i % 251);
    long sent = 0;
    while (sent < (long)sizeof data) {
        struct iovec iov[2] = {{data + sent, 1000}, {data + sent + 1000, 9000}};
        long left = (long)sizeof data - sent;
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = left >= 10000 ? 2 : 1};
        if (left < 10000)
            iov[0].iov_len = left;
        sent += OK(rump_sys_sendmsg(s, &m, 0));
    }
    OK(rump_sys_shutdown(s, SHUT_WR));
    char reply[16] = {0};
    CHECK(OK(rump_sys_recv(s, reply, sizeof reply, 0)) == 4 && strcmp(reply, "done") == 0);
    CHECK(OK(rump_sys_recv(s, reply, sizeof reply, 0)) == 0);
    OK(rump_sys_close(s));
    CHECK(pthread_join(t, NULL) == 0);
    n = OK(rump_pub_netconfig_netstats(text, sizeof text));
    CHECK(n > 10);
    n = OK(rump_pub_netconfig_socklist(text, sizeof text));
    CHECK(n >= 2);
    n = OK(rump_pub_netconfig_arplist(text, sizeof text));
    CHECK(strstr(text, "10.9.0.1") != NULL);
    OK(rump_pub_netconfig_arp_delete("10.9.0.1"));

    /* UDP over IPv6, a to b, with recvmsg */
    OK(rump_kernel_set_current(kb));
    int ub = OK(rump_sys_socket(AF_INET6, SOCK_DGRAM, 0));
    struct sockaddr_in6 b6 = {.sin6_family = AF_INET6, .sin6_port = htons(7001)};
    OK(rump_sys_bind(ub, (struct sockaddr *)&b6, sizeof b6));
    OK(rump_kernel_set_current(ka));
    int ua = OK(rump_sys_socket(AF_INET6, SOCK_DGRAM, 0));
    inet_pton(AF_INET6, "fd00::2", &b6.sin6_addr);
    CHECK(OK(rump_sys_sendto(ua, "datagram", 8, 0, (struct sockaddr *)&b6, sizeof b6)) == 8);
    OK(rump_kernel_set_current(kb));
    struct pollfd pf = {ub, POLLIN, 0};
    CHECK(OK(rump_sys_poll(&pf, 1, 5000)) == 1);
    char dg[4];
    struct sockaddr_in6 from;
    struct iovec iov = {dg, sizeof dg};
    char ctl[64];
    struct msghdr m = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
                       .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    CHECK(OK(rump_sys_recvmsg(ub, &m, 0)) == 4); /* truncated: no MSG_TRUNC asked */
    CHECK(memcmp(dg, "data", 4) == 0 && (m.msg_flags & MSG_TRUNC));
    CHECK(m.msg_namelen == sizeof from && from.sin6_family == AF_INET6);
    /* again, with recvfrom */
    OK(rump_kernel_set_current(ka));
    CHECK(OK(rump_sys_sendto(ua, "two", 3, 0, (struct sockaddr *)&b6, sizeof b6)) == 3);
    OK(rump_kernel_set_current(kb));
    CHECK(OK(rump_sys_poll(&pf, 1, 5000)) == 1);
    socklen_t fl = sizeof from;
    CHECK(OK(rump_sys_recvfrom(ub, dg, sizeof dg, 0, (struct sockaddr *)&from, &fl)) == 3);
    OK(rump_sys_close(ub));
    OK(rump_kernel_set_current(ka));
    OK(rump_sys_close(ua));

    /* bad input */
    FAILS(rump_sys_bind(0, NULL, 16), EFAULT);
    FAILS(rump_sys_connect(0, (struct sockaddr *)&a, 1000), EINVAL);
    FAILS(rump_sys_sendmsg(0, NULL, 0), EFAULT);
    FAILS(rump_pub_netconfig_ifup(NULL), EFAULT);
    FAILS(rump_pub_netconfig_ifsetmac("bus0", NULL), EFAULT);

    /* interfaces go away; the kernels halt */
    unsigned char mac[6] = {0x02, 0, 0, 0, 0, 0x42};
    OK(rump_pub_netconfig_ifdown("bus0"));
    OK(rump_pub_netconfig_ifsetmac("bus0", mac));
    OK(rump_pub_netconfig_ifdeladdr("bus0", "10.9.0.1"));
    OK(rump_pub_netconfig_ifsetpcap("bus0", NULL));
    OK(rump_pub_netconfig_ifdestroy("bus0"));
    FAILS(rump_pub_netconfig_ifdestroy("bus0"), ENXIO);
    OK(rump_kernel_halt(ka));
    FAILS(rump_kernel_halt(ka), EINVAL);
    FAILS(rump_kernel_set_current(ka), EINVAL);
    /* this thread was on ka: its calls now have no kernel */
    FAILS(rump_sys_getpid(), ENXIO);
    OK(rump_kernel_halt(kb));
    printf("net: ok\n");
    return 0;
}
