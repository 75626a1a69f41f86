//! Pipes (`pipe2(2)`) and named pipes (fifos, `fifo(7)`).
//!
//! A bounded byte ring shared by read ends and write ends. Reads block
//! while the pipe is empty and a writer exists; writes block while it is
//! full and a reader exists, and fail with `EPIPE` once no reader is left.
//! Writes of at most `PIPE_BUF` bytes are atomic. All ends wake one wait
//! queue, which `poll` also sleeps on.
//!
//! A fifo is the same object found through a file: [`open_fifo`] blocks a
//! reader until a writer opens and a writer until a reader opens (unless
//! `O_NONBLOCK`: a reader then opens at once, a writer fails with `ENXIO`),
//! and `O_RDWR` never blocks, as on Linux.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::sync::Arc;

use hyper::{Errno, Timespec};

use crate::consts::{o, poll, s, PIPE_BUF};
use crate::file::{File, FileOps, Pos, Stat};
use crate::sync::{SpinMutex, WaitQueue};
use crate::vfs::Vnode;
use crate::{Kernel, Proc};

/// Capacity of a pipe (Linux's default is 16 pages).
pub const PIPE_CAPACITY: usize = 65536;

struct PipeState {
    buf: VecDeque<u8>,
    readers: usize,
    writers: usize,
    /// How many read and write ends were ever opened: a fifo opener waits
    /// for the other count to move, so a peer that opens and closes at
    /// once still releases it.
    reader_opens: u64,
    writer_opens: u64,
}

/// The shared state of a pipe or fifo.
pub struct Pipe {
    state: SpinMutex<PipeState>,
    wq: WaitQueue,
    ino: u64,
    ctime: Timespec,
}

struct PipeEnd {
    pipe: Arc<Pipe>,
    reads: bool,
    writes: bool,
    /// For a fifo: the file it was opened through, which `fstat` reports.
    vnode: Option<Vnode>,
}

impl Pipe {
    /// A pipe with no ends open yet.
    pub fn new(k: &Kernel) -> Arc<Pipe> {
        let mut id = [0u8; 8];
        k.hyper().random_fill(&mut id);
        Arc::new(Pipe {
            state: SpinMutex::new(PipeState {
                buf: VecDeque::new(),
                readers: 0,
                writers: 0,
                reader_opens: 0,
                writer_opens: 0,
            }),
            wq: WaitQueue::new(),
            ino: u64::from_le_bytes(id) >> 16,
            ctime: k.hyper().clock_wall(),
        })
    }

    fn end(self: &Arc<Self>, reads: bool, writes: bool, vnode: Option<Vnode>) -> PipeEnd {
        let mut st = self.state.lock();
        if reads {
            st.readers += 1;
            st.reader_opens += 1;
        }
        if writes {
            st.writers += 1;
            st.writer_opens += 1;
        }
        drop(st);
        self.wq.wake_all();
        PipeEnd {
            pipe: self.clone(),
            reads,
            writes,
            vnode,
        }
    }
}

/// Makes a pipe: returns the read end and the write end.
pub fn pipe(k: &Kernel, flags: i32) -> (File, File) {
    let pipe = Pipe::new(k);
    let status = flags & o::NONBLOCK;
    let r = File::new(o::RDONLY | status, Box::new(pipe.end(true, false, None)));
    let w = File::new(o::WRONLY | status, Box::new(pipe.end(false, true, None)));
    (r, w)
}

/// Opens an end of the fifo `pipe`, found through the file `vn`, with the
/// access mode and `O_NONBLOCK` of `flags` (see the module docs).
pub fn open_fifo(p: &Proc, pipe: &Arc<Pipe>, vn: Vnode, flags: i32) -> Result<File, Errno> {
    let nonblock = flags & o::NONBLOCK != 0;
    let (reads, writes) = match flags & o::ACCMODE {
        o::RDONLY => (true, false),
        o::WRONLY => (false, true),
        _ => (true, true),
    };
    if writes && !reads && nonblock && pipe.state.lock().readers == 0 {
        return Err(Errno::ENXIO);
    }
    let (seen_r, seen_w) = {
        let st = pipe.state.lock();
        (st.reader_opens, st.writer_opens)
    };
    let end = pipe.end(reads, writes, Some(vn));
    let blocks = !nonblock && reads != writes;
    if blocks {
        // `end` is dropped on error, which undoes its count.
        p.wait(&[&pipe.wq], None, || {
            let st = pipe.state.lock();
            let ok = if reads {
                st.writers > 0 || st.writer_opens != seen_w
            } else {
                st.readers > 0 || st.reader_opens != seen_r
            };
            Ok(ok.then_some(()))
        })?;
    }
    Ok(File::new(flags, Box::new(end)))
}

impl FileOps for PipeEnd {
    fn read(&self, p: &Proc, file: &File, buf: &mut [u8], pos: Pos) -> Result<usize, Errno> {
        if pos != Pos::Current {
            return Err(Errno::ESPIPE);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let nonblock = file.is_nonblocking();
        let n = p.wait(&[&self.pipe.wq], None, || {
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

    fn write(&self, p: &Proc, file: &File, data: &[u8], pos: Pos) -> Result<usize, Errno> {
        if pos != Pos::Current {
            return Err(Errno::ESPIPE);
        }
        let nonblock = file.is_nonblocking();
        let mut done = 0;
        while done < data.len() || data.is_empty() {
            let rest = &data[done..];
            let wrote = p.wait(&[&self.pipe.wq], None, || {
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
        if let Some(vn) = &self.vnode {
            return vn.stat();
        }
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
        if self.writes {
            if PIPE_CAPACITY - st.buf.len() >= PIPE_BUF {
                r |= events & (poll::OUT | poll::WRNORM);
            }
            // Linux reports a write end without readers as writable too,
            // so a writer wakes and meets EPIPE.
            if st.readers == 0 {
                r |= poll::ERR;
            }
        }
        if self.reads {
            if !st.buf.is_empty() {
                r |= events & (poll::IN | poll::RDNORM);
            }
            // A fifo nobody has written to yet is not hung up.
            if st.writers == 0 && st.writer_opens > 0 {
                r |= poll::HUP;
            }
        }
        r
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.wq)
    }

    fn vnode(&self) -> Option<&Vnode> {
        self.vnode.as_ref()
    }

    fn as_any(&self) -> &dyn core::any::Any {
        self
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        {
            let mut st = self.pipe.state.lock();
            if self.writes {
                st.writers -= 1;
            }
            if self.reads {
                st.readers -= 1;
            }
        }
        self.pipe.wq.wake_all();
    }
}
