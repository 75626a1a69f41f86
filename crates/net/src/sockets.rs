//! The socket table as `netstat` shows it: every TCP, UDP and ping socket
//! with its addresses, queue lengths and (for TCP) its state, plus the
//! closed connections the stack still holds in TIME-WAIT.
//!
//! Only a snapshot under the stack lock; nothing here changes a socket.

use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

use smoltcp::socket::tcp::State;

use crate::addr::SockInfo;
use crate::stack::{Proto, Stack};
use crate::tcp::TcpState;

impl Stack {
    /// Every socket, then the TIME-WAIT records.
    pub fn sock_list(&self) -> Vec<SockInfo> {
        self.with_core(|c, _| {
            let mut v = Vec::new();
            for r in c.socks.refs() {
                let Some(s) = c.socks.get(r) else { continue };
                let v6 = s.family == kern::consts::af::INET6;
                let info = match &s.proto {
                    Proto::Tcp(t) => {
                        let (local, remote, state, rq, sq) = match &t.state {
                            TcpState::Idle => (t.bound, None, "CLOSED", 0, 0),
                            TcpState::Failed => (t.bound, None, "CLOSED", 0, 0),
                            TcpState::Listening(_) => (t.bound, None, "LISTEN", 0, 0),
                            TcpState::Conn(cn) => {
                                let sk = cn.sock();
                                let (la, lp, ra, rp) = cn.tuple;
                                (
                                    Some((la, lp)),
                                    Some((ra, rp)),
                                    state_name(cn.state()),
                                    sk.recv_queue(),
                                    sk.send_queue(),
                                )
                            }
                        };
                        SockInfo {
                            proto: String::from(if v6 { "tcp6" } else { "tcp" }),
                            local,
                            remote,
                            state: String::from(state),
                            recv_q: rq as u64,
                            send_q: sq as u64,
                        }
                    }
                    Proto::Udp(u) => SockInfo {
                        proto: String::from(if v6 { "udp6" } else { "udp" }),
                        local: u.bound,
                        remote: u.peer.map(|(a, p, _)| (a, p)),
                        state: String::new(),
                        recv_q: u.rx_bytes as u64,
                        send_q: 0,
                    },
                    Proto::Ping(p) => SockInfo {
                        proto: String::from(if v6 { "icmp6" } else { "icmp" }),
                        local: p.ident.map(|i| (unspecified(v6), i)),
                        remote: p.peer.map(|(a, _)| (a, 0)),
                        state: String::new(),
                        recv_q: p.rxq.iter().map(|d| d.data.len() as u64).sum(),
                        send_q: 0,
                    },
                };
                v.push(info);
            }
            let now = c.now;
            c.tcp_tw.expire(now);
            for &(la, lp, ra, rp) in c.tcp_tw.map.keys() {
                v.push(SockInfo {
                    proto: String::from(if la.is_ipv6() { "tcp6" } else { "tcp" }),
                    local: Some((la, lp)),
                    remote: Some((ra, rp)),
                    state: String::from("TIME_WAIT"),
                    recv_q: 0,
                    send_q: 0,
                });
            }
            v
        })
    }
}

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(core::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)
    }
}

/// The names netstat(1) prints (NetBSD's `tcpstates[]`).
fn state_name(s: State) -> &'static str {
    match s {
        State::Closed => "CLOSED",
        State::Listen => "LISTEN",
        State::SynSent => "SYN_SENT",
        State::SynReceived => "SYN_RCVD",
        State::Established => "ESTABLISHED",
        State::FinWait1 => "FIN_WAIT_1",
        State::FinWait2 => "FIN_WAIT_2",
        State::CloseWait => "CLOSE_WAIT",
        State::Closing => "CLOSING",
        State::LastAck => "LAST_ACK",
        State::TimeWait => "TIME_WAIT",
    }
}
