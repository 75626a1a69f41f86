//! `poll`.

use alloc::sync::Arc;
use alloc::vec::Vec;

use kern::consts::poll;
use kern::sync::WaitQueue;
use kern::{Errno, File, Proc};

/// One entry of a `poll` set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

/// Waits until one of `fds` is ready, `timeout_ms` passes (negative:
/// forever, 0: do not wait) or the kernel halts. Returns how many entries
/// have non-zero `revents`. Negative descriptors are skipped; invalid ones
/// report `POLLNVAL`.
pub fn poll(p: &Proc, fds: &mut [PollFd], timeout_ms: i32) -> Result<usize, Errno> {
    p.kernel().check()?;
    if fds.len() > p.fds().lock().limit() {
        return Err(Errno::EINVAL);
    }
    let k = p.kernel();
    let files: Vec<Option<Arc<File>>> = {
        let table = p.fds().lock();
        fds.iter()
            .map(|pf| {
                (pf.fd >= 0)
                    .then(|| table.get(pf.fd).ok().cloned())
                    .flatten()
            })
            .collect()
    };
    let scan = |fds: &mut [PollFd]| -> usize {
        let mut n = 0;
        for (pf, f) in fds.iter_mut().zip(&files) {
            pf.revents = match f {
                _ if pf.fd < 0 => 0,
                None => poll::NVAL,
                Some(f) => f.ops().poll(k, pf.events),
            };
            if pf.revents != 0 {
                n += 1;
            }
        }
        n
    };
    let n = scan(fds);
    if n > 0 || timeout_ms == 0 {
        return Ok(n);
    }
    let queues: Vec<&WaitQueue> = files
        .iter()
        .flatten()
        .filter_map(|f| f.ops().wait_queue())
        .collect();
    let deadline = (timeout_ms > 0).then(|| k.now().saturating_add(timeout_ms as u64 * 1_000_000));
    match p.wait(&queues, deadline, || {
        let n = scan(fds);
        Ok((n > 0).then_some(n))
    }) {
        Ok(n) => Ok(n),
        Err(Errno::ETIMEDOUT) => Ok(0),
        Err(e) => Err(e),
    }
}
