#!/bin/sh
# Two servers on one shmif bus (one in the foreground reporting readiness
# on a descriptor, one detached), configured from the shell: addresses with
# `rump ifconfig`, reachability with `rump ping`/`ping6`, a 16 MiB TCP
# transfer each way between clients of each server (`rump nc`),
# `rump netstat`, then `rump halt` for both: nothing left running, no
# socket files left.
set -eu
. "$(dirname "$0")/lib.sh"

bus=$DIR/bus
# a in the foreground with --ready-fd, b detached with --background and
# its interface given on the command line.
start_fg a
start b --if "shmif0=$bus"

on a ifconfig shmif0 create linkstr "$bus" inet 10.0.1.1/24 inet6 2001:db8:1::1/64 up
on b ifconfig shmif0 | grep -q "linkstr: $bus" || fail "--if did not attach b to the bus"
on b ifconfig shmif0 inet 10.0.1.2 netmask 255.255.255.0
on b ifconfig shmif0 inet6 2001:db8:1::2 prefixlen 64 up
on b ifconfig shmif0 | grep -q 'inet 10.0.1.2/24' || fail "address of b not shown"
[ "$(on a ifconfig -l)" = "lo0 shmif0" ] || fail "interfaces of a: $(on a ifconfig -l)"

expect_ping a ping -c 3 -i 0.05 -W 5 10.0.1.2
expect_ping b ping6 -c 3 -i 0.05 -W 5 2001:db8:1::1

transfer a b 10.0.1.2 5001 16777216
transfer b a 2001:db8:1::1 5002 16777216

on a arp -a | grep -q '(10.0.1.2) at ' || fail "no ARP entry for b"
accepts=$(counter b tcp "connection accepts")
[ "${accepts:-0}" -ge 1 ] || fail "netstat -s of b: $accepts accepts"
opkts=$(on a netstat -i | awk '$1 == "shmif0" && /<Link>/ { print $7 }')
[ "${opkts:-0}" -gt 10000 ] || fail "netstat -i of a: $opkts packets out"
on b netstat -rn | grep -q '^10.0.1/24 ' || fail "no interface route on b"

stop a
stop b
echo "two servers: ok"
