//! Serving hypercalls: console, clock, poll, disks, links, exit, boot marks.
//!
//! Each hypercall arrives as a port and a 32-bit guest-physical address.
//! The parameter block must lie in guest memory, aligned, above the
//! read-only low area; otherwise the guest is stopped with a message (there
//! is nowhere to put an error). A block that is readable but wrong gets a
//! negated errno in its `ret` word ([`uk_abi::Error`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use uk_abi::{
    batch, Block, BootStage, Call, Error as AbiError, ExitReason, Hypercall, BLOCK_LEN,
    IMAGE_MIN_GPA,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::tap::Tap;
use crate::{Config, Error, Stop};

/// A boot phase the guest reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootMark {
    /// Which phase.
    pub stage: BootStage,
    /// The guest's TSC then.
    pub tsc: u64,
    /// Host time since the runner started, when the mark arrived.
    pub host: Duration,
}

pub enum Flow {
    Continue,
    Stop(Stop),
}

struct Disk {
    name: String,
    file: File,
    size: u64,
    read_only: bool,
}

pub struct Devices {
    pub mem_size: u64,
    disks: Vec<Disk>,
    nets: Vec<Tap>,
    start: Instant,
    boot_trace: bool,
    pub wake_fd: Option<libc::c_int>,
    pub marks: Vec<BootMark>,
    pub hypercalls: u64,
}

impl Devices {
    pub fn open(cfg: &Config, mem_size: u64, start: Instant) -> Result<Devices, Error> {
        let mut disks = Vec::new();
        for d in &cfg.disks {
            if disks.iter().any(|x: &Disk| x.name == d.name) {
                return Err(Error::Config(format!("--disk: {} given twice", d.name)));
            }
            let file = OpenOptions::new()
                .read(true)
                .write(!d.read_only)
                .open(&d.path)
                .map_err(|e| Error::Disk(format!("{}: {e}", d.path.display())))?;
            let size = file
                .metadata()
                .map_err(|e| Error::Disk(format!("{}: {e}", d.path.display())))?
                .len();
            disks.push(Disk {
                name: d.name.clone(),
                file,
                size,
                read_only: d.read_only,
            });
        }
        let mut nets = Vec::new();
        for n in &cfg.nets {
            nets.push(Tap::open(n).map_err(|e| Error::Tap(format!("{n}: {e}")))?);
        }
        Ok(Devices {
            mem_size,
            disks,
            nets,
            start,
            boot_trace: cfg.boot_trace,
            wake_fd: None,
            marks: Vec::new(),
            hypercalls: 0,
        })
    }

    /// Name, size and read-only flag of each disk, in handle order.
    pub fn disk_infos(&self) -> impl Iterator<Item = (String, u64, bool)> + '_ {
        self.disks
            .iter()
            .map(|d| (d.name.clone(), d.size, d.read_only))
    }

    pub fn serve(&mut self, mem: &GuestMemoryMmap, port: u16, value: Option<u32>) -> Flow {
        self.hypercalls += 1;
        let Some(nr) = Hypercall::from_port(port) else {
            return Flow::Stop(Stop::Fault(format!(
                "the guest wrote to I/O port {port:#x}, which is no hypercall"
            )));
        };
        let Some(gpa) = value else {
            return Flow::Stop(Stop::Fault(format!(
                "hypercall {nr:?}: not a 32-bit write of a parameter block address"
            )));
        };
        let gpa = gpa as u64;
        if !gpa.is_multiple_of(8) || gpa < IMAGE_MIN_GPA || gpa + BLOCK_LEN as u64 > self.mem_size {
            return Flow::Stop(Stop::Fault(format!(
                "hypercall {nr:?}: parameter block at {gpa:#x} is not an aligned block in guest memory [{IMAGE_MIN_GPA:#x}, {:#x})",
                self.mem_size
            )));
        }
        let mut raw = [0u8; BLOCK_LEN];
        if mem.read_slice(&mut raw, GuestAddress(gpa)).is_err() {
            return Flow::Stop(Stop::Fault(format!(
                "hypercall {nr:?}: parameter block at {gpa:#x} unreadable"
            )));
        }
        let Ok(mut block) = Block::new_checked(raw) else {
            return Flow::Stop(Stop::Fault("parameter block too short".into()));
        };
        let (ret, flow) = match Call::parse(nr, &block) {
            Err(e) => (e.to_ret(), Flow::Continue),
            Ok(call) => self.call(mem, call, &mut block),
        };
        block.set_ret(ret);
        let raw = block.into_inner();
        if mem.write_slice(&raw, GuestAddress(gpa)).is_err() {
            return Flow::Stop(Stop::Fault(format!(
                "hypercall {nr:?}: parameter block at {gpa:#x} unwritable"
            )));
        }
        flow
    }

    fn call(
        &mut self,
        mem: &GuestMemoryMmap,
        call: Call,
        block: &mut Block<[u8; BLOCK_LEN]>,
    ) -> (i64, Flow) {
        let r = |res: Result<u64, AbiError>| match res {
            Ok(v) => (v as i64, Flow::Continue),
            Err(e) => (e.to_ret(), Flow::Continue),
        };
        match call {
            Call::ConsoleWrite { gpa, len } => {
                let mut buf = vec![0u8; len as usize];
                if !self.readable(gpa, len) || mem.read_slice(&mut buf, GuestAddress(gpa)).is_err()
                {
                    return r(Err(AbiError::Fault));
                }
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(&buf);
                let _ = out.flush();
                r(Ok(len))
            }
            Call::Clock => {
                block.set_arg(0, mono_ns());
                let wall = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                block.set_arg(1, wall.as_secs());
                block.set_arg(2, wall.subsec_nanos() as u64);
                r(Ok(0))
            }
            Call::Poll {
                timeout_ns,
                net_mask,
            } => r(self.poll(timeout_ns, net_mask)),
            Call::BlkRead {
                disk,
                offset,
                gpa,
                len,
            } => r(self.blk_io(mem, disk, offset, gpa, len, false)),
            Call::BlkWrite {
                disk,
                offset,
                gpa,
                len,
            } => r(self.blk_io(mem, disk, offset, gpa, len, true)),
            Call::BlkFlush { disk } => {
                let Some(d) = self.disks.get(disk as usize) else {
                    return r(Err(AbiError::BadHandle));
                };
                r(d.file.sync_data().map(|_| 0).map_err(|_| AbiError::Io))
            }
            Call::NetSend { net, gpa, len } => {
                let Some(t) = self.nets.get(net as usize) else {
                    return r(Err(AbiError::BadHandle));
                };
                if !self.readable(gpa, len) {
                    return r(Err(AbiError::Fault));
                }
                r(with_slice(mem, gpa, len, |p| t.send(p, len as usize)))
            }
            Call::NetRecv { net, gpa, len } => {
                let Some(t) = self.nets.get(net as usize) else {
                    return r(Err(AbiError::BadHandle));
                };
                if !self.writable(gpa, len) {
                    return r(Err(AbiError::Fault));
                }
                r(with_slice(mem, gpa, len, |p| t.recv(p, len as usize)))
            }
            Call::NetSendBatch {
                net,
                gpa,
                len,
                count,
            } => {
                let Some(t) = self.nets.get(net as usize) else {
                    return r(Err(AbiError::BadHandle));
                };
                if !self.readable(gpa, len) {
                    return r(Err(AbiError::Fault));
                }
                r(with_slice(mem, gpa, len, |p| {
                    send_batch(t, p, len as usize, count)
                }))
            }
            Call::NetRecvBatch {
                net,
                gpa,
                len,
                max_frame,
            } => {
                let Some(t) = self.nets.get(net as usize) else {
                    return r(Err(AbiError::BadHandle));
                };
                if !self.writable(gpa, len) {
                    return r(Err(AbiError::Fault));
                }
                r(with_slice(mem, gpa, len, |p| {
                    recv_batch(t, p, len as usize, max_frame as usize)
                }))
            }
            Call::NetIo { desc } => r(self.net_io(mem, desc)),
            Call::Exit { code, reason } => (
                0,
                Flow::Stop(match reason {
                    ExitReason::Normal => Stop::Exit(code),
                    ExitReason::Panic => Stop::Panic,
                }),
            ),
            Call::BootMark { stage, tsc } => {
                let host = self.start.elapsed();
                if self.boot_trace {
                    let guest = self
                        .marks
                        .first()
                        .map(|e| format!(" (guest tsc +{})", tsc.wrapping_sub(e.tsc)))
                        .unwrap_or_default();
                    eprintln!(
                        "uk: boot: {:<10} at {:>8.3} ms{guest}",
                        stage.name(),
                        host.as_secs_f64() * 1e3
                    );
                }
                self.marks.push(BootMark { stage, tsc, host });
                r(Ok(0))
            }
        }
    }

    fn readable(&self, gpa: u64, len: u64) -> bool {
        gpa.checked_add(len).is_some_and(|e| e <= self.mem_size)
    }

    fn writable(&self, gpa: u64, len: u64) -> bool {
        gpa >= IMAGE_MIN_GPA && self.readable(gpa, len)
    }

    fn blk_io(
        &self,
        mem: &GuestMemoryMmap,
        disk: u32,
        offset: u64,
        gpa: u64,
        len: u64,
        is_write: bool,
    ) -> Result<u64, AbiError> {
        let d = self.disks.get(disk as usize).ok_or(AbiError::BadHandle)?;
        if is_write && d.read_only {
            return Err(AbiError::ReadOnly);
        }
        if offset.checked_add(len).is_none_or(|e| e > d.size) {
            return Err(AbiError::PastEnd);
        }
        let ok = if is_write {
            self.readable(gpa, len)
        } else {
            self.writable(gpa, len)
        };
        if !ok {
            return Err(AbiError::Fault);
        }
        let fd = d.file.as_raw_fd();
        with_slice(mem, gpa, len, |p| {
            let mut done = 0usize;
            while done < len as usize {
                let at = (offset + done as u64) as libc::off_t;
                // SAFETY: `p` points at `len` bytes of guest memory (checked
                // by `get_slice`), alive for this closure; we touch
                // `p[done..len]` only.
                let n = unsafe {
                    if is_write {
                        libc::pwrite(fd, p.add(done).cast(), len as usize - done, at)
                    } else {
                        libc::pread(fd, p.add(done).cast(), len as usize - done, at)
                    }
                };
                if n < 0 {
                    if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                        continue;
                    }
                    return Err(AbiError::Io);
                }
                if n == 0 {
                    // The file shrank under us.
                    return Err(AbiError::Io);
                }
                done += n as usize;
            }
            Ok(len)
        })
    }

    /// Serves a [`Call::NetIo`]: send, receive, and if nothing came, wait
    /// for a frame and receive again.
    fn net_io(&self, mem: &GuestMemoryMmap, desc: u64) -> Result<u64, AbiError> {
        let mut raw = [0u8; batch::IO_DESC_LEN];
        if !self.readable(desc, raw.len() as u64)
            || mem.read_slice(&mut raw, GuestAddress(desc)).is_err()
        {
            return Err(AbiError::Fault);
        }
        let d = batch::IoDesc::parse(&raw)?;
        let t = self.nets.get(d.net as usize).ok_or(AbiError::BadHandle)?;
        if d.tx_count > 0 {
            if !self.readable(d.tx_gpa, d.tx_len) {
                return Err(AbiError::Fault);
            }
            with_slice(mem, d.tx_gpa, d.tx_len, |p| {
                send_batch(t, p, d.tx_len as usize, d.tx_count)
            })?;
        }
        if d.rx_len == 0 {
            return Ok(0);
        }
        if !self.writable(d.rx_gpa, d.rx_len) {
            return Err(AbiError::Fault);
        }
        let recv = || {
            with_slice(mem, d.rx_gpa, d.rx_len, |p| {
                recv_batch(t, p, d.rx_len as usize, d.max_frame as usize)
            })
        };
        let n = recv()?;
        if n > 0 || d.timeout_ns == 0 {
            return Ok(n);
        }
        if self.poll(d.timeout_ns, 1 << d.net)? == 0 {
            return Ok(0);
        }
        recv()
    }

    fn poll(&self, timeout_ns: u64, net_mask: u64) -> Result<u64, AbiError> {
        let mut fds = Vec::new();
        let mut which = Vec::new();
        for (i, t) in self.nets.iter().enumerate() {
            if net_mask & (1 << i) != 0 {
                fds.push(libc::pollfd {
                    fd: t.fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                which.push(i);
            }
        }
        if let Some(w) = self.wake_fd {
            fds.push(libc::pollfd {
                fd: w,
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let t = timeout_ns.min(10_000_000_000);
        let ts = libc::timespec {
            tv_sec: (t / 1_000_000_000) as libc::time_t,
            tv_nsec: (t % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: `fds` is a valid array of `fds.len()` pollfds; `ts` a
        // valid timespec; no signal mask is passed.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if n <= 0 {
            // Timeout, or a signal (the run loop looks at it next).
            return Ok(0);
        }
        let mut ready = 0u64;
        for (k, i) in which.iter().enumerate() {
            if fds[k].revents & libc::POLLIN != 0 {
                ready |= 1 << i;
            }
        }
        Ok(ready)
    }
}

/// Sends the `count` frames of the batch in the `len` bytes at `p`.
fn send_batch(t: &Tap, p: *mut u8, len: usize, count: u64) -> Result<u64, AbiError> {
    let mut at = 0usize;
    for sent in 0..count {
        let mut header = [0u8; batch::RECORD_HEADER];
        if at + batch::RECORD_HEADER > len {
            return if sent == 0 {
                Err(AbiError::Invalid)
            } else {
                Ok(sent)
            };
        }
        // SAFETY: `p` points at `len` bytes of guest memory (the caller
        // checked the range); `at + RECORD_HEADER <= len`. The guest is
        // stopped while we serve it, so nothing writes them meanwhile.
        unsafe { std::ptr::copy_nonoverlapping(p.add(at), header.as_mut_ptr(), header.len()) };
        let (off, flen, next) = match batch::parse_header(header, at, len) {
            Ok(v) => v,
            Err(e) => return if sent == 0 { Err(e) } else { Ok(sent) },
        };
        // SAFETY: `parse_header` checked `off + flen <= len`.
        match t.send(unsafe { p.add(off) }, flen) {
            // A frame the tap refuses (longer than its MTU) is dropped, as
            // on a wire; the rest of the batch still goes.
            Ok(_) | Err(AbiError::Invalid) => {}
            Err(e) => return if sent == 0 { Err(e) } else { Ok(sent) },
        }
        at = next;
    }
    Ok(count)
}

/// Reads the frames waiting on `t` into a batch in the `len` bytes at `p`.
fn recv_batch(t: &Tap, p: *mut u8, len: usize, max_frame: usize) -> Result<u64, AbiError> {
    let mut at = 0usize;
    let mut n = 0u64;
    while n < batch::MAX_BATCH_FRAMES && at + batch::record_len(max_frame) <= len {
        // SAFETY: `at + RECORD_HEADER + max_frame <= len`, inside the
        // guest memory the caller checked.
        let got = match t.recv(unsafe { p.add(at + batch::RECORD_HEADER) }, max_frame) {
            Ok(0) => break,
            Ok(k) => k as usize,
            Err(AbiError::Again) => break,
            Err(e) => return if n == 0 { Err(e) } else { Ok(n) },
        };
        let mut header = [0u8; batch::RECORD_HEADER];
        batch::put_header(&mut header, 0, got);
        // SAFETY: the header's 8 bytes at `at` lie inside the range too.
        unsafe { std::ptr::copy_nonoverlapping(header.as_ptr(), p.add(at), header.len()) };
        at += batch::record_len(got);
        n += 1;
    }
    Ok(n)
}

/// Runs `f` on the host pointer of `len` bytes of guest memory at `gpa`.
fn with_slice(
    mem: &GuestMemoryMmap,
    gpa: u64,
    len: u64,
    f: impl FnOnce(*mut u8) -> Result<u64, AbiError>,
) -> Result<u64, AbiError> {
    if len == 0 {
        return Ok(0);
    }
    let slice = mem
        .get_slice(GuestAddress(gpa), len as usize)
        .map_err(|_| AbiError::Fault)?;
    let guard = slice.ptr_guard_mut();
    f(guard.as_ptr())
}

fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}
