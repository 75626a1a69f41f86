#!/bin/sh
# A router of three servers on two buses: forwarding on in the middle one
# (set at boot with --param for IPv4, with `rump sysctl` for IPv6), routes
# set with `rump route`, ping and TCP end to end both ways.
set -eu
. "$(dirname "$0")/lib.sh"

start h1
start r --param net.inet.ip.forwarding=1
start h3
net1=$DIR/net1
net2=$DIR/net2

on h1 ifconfig shmif0 create linkstr "$net1" inet 10.0.1.1/24 inet6 2001:db8:1::1/64 up
on r ifconfig shmif0 create linkstr "$net1" inet 10.0.1.2/24 inet6 2001:db8:1::2/64 up
on r ifconfig shmif1 create linkstr "$net2" inet 10.0.2.1/24 inet6 2001:db8:2::1/64 up
on h3 ifconfig shmif0 create linkstr "$net2" inet 10.0.2.2/24 inet6 2001:db8:2::2/64 up

[ "$(on r sysctl -n net.inet.ip.forwarding)" = 1 ] || fail "--param did not set forwarding"
on r sysctl -w net.inet6.ip6.forwarding=1

on h1 route add -net 10.0.2.0/24 10.0.1.2
on h1 route add -inet6 2001:db8:2::/64 2001:db8:1::2
on h3 route add default 10.0.2.1
on h3 route add -inet6 default 2001:db8:2::1
on h1 route get 10.0.2.2 | grep -q 'gateway: 10.0.1.2' || fail "route get on h1"

out=$(expect_ping h1 ping -c 3 -i 0.05 -W 5 10.0.2.2)
echo "$out"
echo "$out" | grep -q 'ttl=63' || fail "one hop should take one off the TTL"
expect_ping h3 ping6 -c 3 -i 0.05 -W 5 2001:db8:1::1

transfer h1 h3 10.0.2.2 6001 4194304
transfer h3 h1 2001:db8:1::1 6002 4194304

fwd=$(counter r ip "packets forwarded")
[ "${fwd:-0}" -gt 100 ] || fail "router forwarded $fwd IPv4 packets"
fwd6=$(counter r ip6 "packets forwarded")
[ "${fwd6:-0}" -gt 100 ] || fail "router forwarded $fwd6 IPv6 packets"

on h1 route delete 10.0.2.0/24
if on h1 ping -c 1 -W 0.3 10.0.2.2 >/dev/null 2>&1; then
  fail "ping after the route was deleted"
fi

stop h1
stop r
stop h3
echo "router: ok"
