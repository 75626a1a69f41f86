//! Pipes (`pipe2(2)`).
//!
//! A bounded byte ring shared by a read end and a write end. Reads block
//! while the pipe is empty and a writer exists; writes block while it is
//! full and a reader exists, and fail with `EPIPE` once no reader is left.
//! Writes of at most `PIPE_BUF` bytes are atomic. Both ends wake one wait
//! queue, which `poll` also sleeps on.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;

use hyper::{Errno, Timespec};

use crate::consts::{o, poll, s, PIPE_BUF};
use crate::file::{File, FileOps, Pos, Stat};
use crate::sync::{Mutex, WaitQueue};
use crate::Kernel;

/// Capacity of a pipe (Linux's default is 16 pages).
pub const PIPE_CAPACITY: usize = 65536;

struct PipeState {
    buf: VecDeque<u8>,
    readers: usize,
    writers: usize,
}

struct Pipe {
    state: Mutex<PipeState>,
    wq: WaitQueue,
    ino: u64,
    ctime: Timespec,
}

struct PipeEnd {
    pipe: Arc<Pipe>,
    is_writer: bool,
}

/// Makes a pipe: returns the read end and the write end.
pub fn pipe(k: &Kernel, flags: i32) -> (File, File) {
    let mut id = [0u8; 8];
    k.hyper().random_fill(&mut id);
    let pipe = Arc::new(Pipe {
        state: Mutex::new(PipeState {
            buf: VecDeque::new(),
            readers: 1,
            writers: 1,
        }),
        wq: WaitQueue::new(),
        ino: u64::from_le_bytes(id) >> 16,
        ctime: k.hyper().clock_wall(),
    });
    let status = flags & o::NONBLOCK;
    let r = File::new(
        o::RDONLY | status,
        Box::new(PipeEnd {
            pipe: pipe.clone(),
            is_writer: false,
        }),
    );
    let w = File::new(
        o::WRONLY | status,
        Box::new(PipeEnd {
            pipe,
            is_writer: true,
        }),
    );
    (r, w)
}

impl FileOps for PipeEnd {
    fn read(&self, k: &Kernel, file: &File, buf: &mut [u8], pos: Pos) -> Result<usize, Errno> {
        if pos != Pos::Current {
            return Err(Errno::ESPIPE);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let nonblock = file.is_nonblocking();
        let n = k.wait(&[&self.pipe.wq], None, || {
            let mut st = self.pipe.state.lock();
            if st.buf.is_empty() {
                if st.writers == 0 {
                    return Ok(Some(0));
                }
                if nonblock {
                    return Err(Errno::EAGAIN);
                }
                return Ok(None);
            }
            let n = buf.len().min(st.buf.len());
            for (dst, src) in buf.iter_mut().zip(st.buf.drain(..n)) {
                *dst = src;
            }
            Ok(Some(n))
        })?;
        if n > 0 {
            self.pipe.wq.wake_all();
        }
        Ok(n)
    }

    fn write(&self, k: &Kernel, file: &File, data: &[u8], pos: Pos) -> Result<usize, Errno> {
        if pos != Pos::Current {
            return Err(Errno::ESPIPE);
        }
        let nonblock = file.is_nonblocking();
        let mut done = 0;
        while done < data.len() || data.is_empty() {
            let rest = &data[done..];
            let wrote = k.wait(&[&self.pipe.wq], None, || {
                let mut st = self.pipe.state.lock();
                if st.readers == 0 {
                    return Err(Errno::EPIPE);
                }
                let room = PIPE_CAPACITY - st.buf.len();
                // Small writes go in whole or not at all (PIPE_BUF atomicity).
                let need = if rest.len() <= PIPE_BUF {
                    rest.len()
                } else {
                    1
                };
                if room < need {
                    if nonblock {
                        return Err(Errno::EAGAIN);
                    }
                    return Ok(None);
                }
                let n = rest.len().min(room);
                st.buf.extend(&rest[..n]);
                Ok(Some(n))
            });
            match wrote {
                Ok(n) => {
                    done += n;
                    self.pipe.wq.wake_all();
                    if data.is_empty() {
                        break;
                    }
                }
                // A partial write reports what went through.
                Err(Errno::EAGAIN) if done > 0 => break,
                Err(e) => return Err(e),
            }
        }
        Ok(done)
    }

    fn stat(&self, _k: &Kernel) -> Result<Stat, Errno> {
        let st = self.pipe.state.lock();
        Ok(Stat {
            dev: 0,
            ino: self.pipe.ino,
            mode: s::IFIFO | 0o600,
            nlink: 1,
            size: st.buf.len() as u64,
            blksize: PIPE_BUF as u32,
            atime: self.pipe.ctime,
            mtime: self.pipe.ctime,
            ctime: self.pipe.ctime,
            ..Stat::default()
        })
    }

    fn poll(&self, _k: &Kernel, events: i16) -> i16 {
        let st = self.pipe.state.lock();
        let mut r = 0;
        if self.is_writer {
            if st.readers == 0 {
                r |= poll::ERR;
            } else if PIPE_CAPACITY - st.buf.len() >= PIPE_BUF {
                r |= events & (poll::OUT | poll::WRNORM);
            }
        } else {
            if !st.buf.is_empty() {
                r |= events & (poll::IN | poll::RDNORM);
            }
            if st.writers == 0 {
                r |= poll::HUP;
            }
        }
        r
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.wq)
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut st = self.pipe.state.lock();
            if self.is_writer {
                st.writers -= 1;
            } else {
                st.readers -= 1;
            }
        }
        self.pipe.wq.wake_all();
    }
}
