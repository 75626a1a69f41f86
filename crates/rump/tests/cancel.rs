//! Cancelling one process's blocked calls (`Process::cancel_calls`): a
//! thread blocked in `read` on an empty pipe, `accept`, `recv` (TCP and
//! UDP) or `poll` returns `EINTR`, while the same calls of another process
//! keep waiting (and complete normally when their event comes), and the
//! cancelled process's later calls block again as usual.

mod net_util;

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use net_util::{net_kernel, within};
use rump::net::sockaddr;
use rump::sys::consts::{af, o, poll, sock};
use rump::sys::{self, PollFd};
use rump::{Errno, ForkFds, Process};

/// How long a call must stay blocked to count as "still waiting".
const STILL: Duration = Duration::from_millis(300);

/// Starts `call` on its own thread and checks that it blocks.
fn blocked<T: Send + 'static>(
    what: &'static str,
    call: impl FnOnce() -> T + Send + 'static,
) -> mpsc::Receiver<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(call());
    });
    assert!(
        rx.recv_timeout(STILL).is_err(),
        "{what} returned before anything happened"
    );
    rx
}

/// Two processes of one kernel with the network stack: `victim` gets
/// cancelled, `bystander` does not.
fn pair() -> (rump::Kernel, Process, Process) {
    let (k, p) = net_kernel();
    let bystander = p.rfork(ForkFds::Clear).unwrap();
    (k, p, bystander)
}

#[test]
fn pipe_read_is_cancelled_for_its_process_only() {
    within(30, || {
        let (_k, victim, bystander) = pair();
        let (r1, w1) = sys::pipe2(&victim, 0).unwrap();
        let (r2, w2) = sys::pipe2(&bystander, 0).unwrap();
        let v = victim.clone();
        let got_v = blocked("victim's pipe read", move || {
            let mut b = [0u8; 8];
            sys::read(&v, r1, &mut b)
        });
        let b = bystander.clone();
        let got_b = blocked("bystander's pipe read", move || {
            let mut buf = [0u8; 8];
            sys::read(&b, r2, &mut buf).map(|n| buf[..n].to_vec())
        });
        victim.cancel_calls();
        assert_eq!(
            got_v.recv_timeout(Duration::from_secs(5)).unwrap(),
            Err(Errno::EINTR)
        );
        assert!(
            got_b.recv_timeout(STILL).is_err(),
            "the bystander's read was disturbed"
        );
        sys::write(&bystander, w2, b"hi").unwrap();
        assert_eq!(
            got_b.recv_timeout(Duration::from_secs(5)).unwrap(),
            Ok(b"hi".to_vec())
        );
        // Later calls of the cancelled process block and complete as usual.
        let v = victim.clone();
        let again = blocked("victim's second read", move || {
            let mut b = [0u8; 8];
            sys::read(&v, r1, &mut b)
        });
        sys::write(&victim, w1, b"x").unwrap();
        assert_eq!(again.recv_timeout(Duration::from_secs(5)).unwrap(), Ok(1));
    });
}

#[test]
fn accept_recv_and_poll_are_cancelled() {
    within(60, || {
        let (_k, victim, bystander) = pair();
        let lo = |port| sockaddr(([127, 0, 0, 1], port));
        // A listener each, and a connected TCP pair plus a UDP socket each.
        let listen = |p: &Process, port| {
            let fd = sys::socket(p, af::INET, sock::STREAM, 0).unwrap();
            sys::bind(p, fd, lo(port)).unwrap();
            sys::listen(p, fd, 8).unwrap();
            fd
        };
        let l_v = listen(&victim, 7001);
        let l_b = listen(&bystander, 7002);
        let connected = |p: &Process, port| {
            let l = listen(p, port);
            let c = sys::socket(p, af::INET, sock::STREAM, 0).unwrap();
            sys::connect(p, c, lo(port)).unwrap();
            let (s, _) = sys::accept(p, l).unwrap();
            (c, s)
        };
        let (tcp_v, _keep_v) = connected(&victim, 7003);
        let (tcp_b, peer_b) = connected(&bystander, 7004);
        let udp = |p: &Process, port| {
            let fd = sys::socket(p, af::INET, sock::DGRAM, 0).unwrap();
            sys::bind(p, fd, lo(port)).unwrap();
            fd
        };
        let udp_v = udp(&victim, 7005);
        let udp_b = udp(&bystander, 7006);
        let (pr_v, _pw_v) = sys::pipe2(&victim, o::CLOEXEC).unwrap();

        let p = victim.clone();
        let acc_v = blocked("victim's accept", move || sys::accept(&p, l_v).map(drop));
        let p = victim.clone();
        let tcp_rv = blocked("victim's TCP recv", move || {
            sys::recv(&p, tcp_v, &mut [0u8; 16], 0)
        });
        let p = victim.clone();
        let udp_rv = blocked("victim's UDP recv", move || {
            sys::recvfrom(&p, udp_v, &mut [0u8; 16], 0).map(|i| i.len)
        });
        let p = victim.clone();
        let poll_v = blocked("victim's poll", move || {
            let mut fds = [PollFd {
                fd: pr_v,
                events: poll::IN,
                revents: 0,
            }];
            sys::poll(&p, &mut fds, -1)
        });
        let p = bystander.clone();
        let acc_b = blocked("bystander's accept", move || sys::accept(&p, l_b).map(drop));
        let p = bystander.clone();
        let tcp_rb = blocked("bystander's TCP recv", move || {
            let mut b = [0u8; 16];
            sys::recv(&p, tcp_b, &mut b, 0).map(|n| b[..n].to_vec())
        });
        let p = bystander.clone();
        let udp_rb = blocked("bystander's UDP recv", move || {
            sys::recvfrom(&p, udp_b, &mut [0u8; 16], 0).map(|i| i.len)
        });

        victim.cancel_calls();
        let wait = Duration::from_secs(5);
        assert_eq!(
            acc_v.recv_timeout(wait).unwrap(),
            Err(Errno::EINTR),
            "accept"
        );
        assert_eq!(
            tcp_rv.recv_timeout(wait).unwrap(),
            Err(Errno::EINTR),
            "TCP recv"
        );
        assert_eq!(
            udp_rv.recv_timeout(wait).unwrap(),
            Err(Errno::EINTR),
            "UDP recv"
        );
        assert_eq!(
            poll_v.recv_timeout(wait).unwrap(),
            Err(Errno::EINTR),
            "poll"
        );

        for (what, still) in [
            ("accept", acc_b.recv_timeout(STILL).is_err()),
            ("TCP recv", tcp_rb.recv_timeout(Duration::ZERO).is_err()),
            ("UDP recv", udp_rb.recv_timeout(Duration::ZERO).is_err()),
        ] {
            assert!(still, "the bystander's {what} was disturbed");
        }
        // The bystander's calls complete when their events come.
        let c = sys::socket(&bystander, af::INET, sock::STREAM, 0).unwrap();
        sys::connect(&bystander, c, lo(7002)).unwrap();
        assert_eq!(acc_b.recv_timeout(wait).unwrap(), Ok(()));
        sys::send(&bystander, peer_b, b"data", 0).unwrap();
        assert_eq!(tcp_rb.recv_timeout(wait).unwrap(), Ok(b"data".to_vec()));
        let s = sys::socket(&bystander, af::INET, sock::DGRAM, 0).unwrap();
        sys::sendto(&bystander, s, b"dgram", 0, Some(lo(7006))).unwrap();
        assert_eq!(udp_rb.recv_timeout(wait).unwrap(), Ok(5));
    });
}

#[test]
fn opening_a_fifo_without_a_writer_is_cancelled() {
    within(30, || {
        let (_k, victim, _bystander) = pair();
        sys::mknod(&victim, b"/fifo", rump::sys::consts::s::IFIFO | 0o644, 0).unwrap();
        let v = victim.clone();
        let got = blocked("open of a fifo without a writer", move || {
            sys::open(&v, b"/fifo", o::RDONLY, 0).map(drop)
        });
        victim.cancel_calls();
        assert_eq!(
            got.recv_timeout(Duration::from_secs(5)).unwrap(),
            Err(Errno::EINTR)
        );
    });
}
