//! Hypercalls: numbers, the parameter block, and the typed calls.
//!
//! Every parameter block is [`BLOCK_LEN`] bytes, 8-byte aligned, in guest
//! memory: a result word `ret` written by the runner, then five argument
//! words. [`Call::parse`] turns number and block into a typed call, checking
//! every argument; [`Call::emit`] is the guest's side.

use crate::batch::{MAX_BATCH_FRAMES, MAX_FRAME_LEN};
use crate::{
    get_u64, put_u64, Error, ParseError, MAX_CONSOLE_LEN, MAX_DISKS, MAX_IO_LEN, MAX_NETS,
};

/// Bytes in a parameter block.
pub const BLOCK_LEN: usize = 48;

mod field {
    pub const RET: usize = 0;
    pub const ARG: usize = 8;
}

/// A hypercall number (port `PORT_BASE + n`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hypercall {
    /// Write guest bytes to the console.
    ConsoleWrite,
    /// Host monotonic and wall clocks.
    Clock,
    /// Wait until a network link has a frame or a timeout passes.
    Poll,
    /// Read from a disk straight into guest memory.
    BlkRead,
    /// Write guest memory to a disk.
    BlkWrite,
    /// Make a disk's writes durable.
    BlkFlush,
    /// Send one Ethernet frame.
    NetSend,
    /// Receive one Ethernet frame, without waiting.
    NetRecv,
    /// Stop the guest with an exit code.
    Exit,
    /// Record a boot phase (with `--boot-trace`, the runner prints it).
    BootMark,
    /// Send a batch of frames (ABI 3).
    NetSendBatch,
    /// Receive the frames waiting, into a batch, without waiting (ABI 3).
    NetRecvBatch,
    /// Send a batch, then receive one, waiting for a frame (ABI 3).
    NetIo,
    /// A number this ABI does not define.
    Unknown(u16),
}

impl Hypercall {
    /// Every defined hypercall, in number order.
    pub const ALL: [Hypercall; 13] = [
        Hypercall::ConsoleWrite,
        Hypercall::Clock,
        Hypercall::Poll,
        Hypercall::BlkRead,
        Hypercall::BlkWrite,
        Hypercall::BlkFlush,
        Hypercall::NetSend,
        Hypercall::NetRecv,
        Hypercall::Exit,
        Hypercall::BootMark,
        Hypercall::NetSendBatch,
        Hypercall::NetRecvBatch,
        Hypercall::NetIo,
    ];

    /// The number.
    pub const fn number(self) -> u16 {
        match self {
            Hypercall::ConsoleWrite => 0,
            Hypercall::Clock => 1,
            Hypercall::Poll => 2,
            Hypercall::BlkRead => 3,
            Hypercall::BlkWrite => 4,
            Hypercall::BlkFlush => 5,
            Hypercall::NetSend => 6,
            Hypercall::NetRecv => 7,
            Hypercall::Exit => 8,
            Hypercall::BootMark => 9,
            Hypercall::NetSendBatch => 10,
            Hypercall::NetRecvBatch => 11,
            Hypercall::NetIo => 12,
            Hypercall::Unknown(n) => n,
        }
    }

    /// The hypercall with number `n`.
    pub const fn from_number(n: u16) -> Hypercall {
        match n {
            0 => Hypercall::ConsoleWrite,
            1 => Hypercall::Clock,
            2 => Hypercall::Poll,
            3 => Hypercall::BlkRead,
            4 => Hypercall::BlkWrite,
            5 => Hypercall::BlkFlush,
            6 => Hypercall::NetSend,
            7 => Hypercall::NetRecv,
            8 => Hypercall::Exit,
            9 => Hypercall::BootMark,
            10 => Hypercall::NetSendBatch,
            11 => Hypercall::NetRecvBatch,
            12 => Hypercall::NetIo,
            n => Hypercall::Unknown(n),
        }
    }

    /// The port the guest writes to.
    pub const fn port(self) -> u16 {
        crate::PORT_BASE.wrapping_add(self.number())
    }

    /// The hypercall a port stands for, or `None` for a port below
    /// [`crate::PORT_BASE`] (not a hypercall at all).
    pub const fn from_port(port: u16) -> Option<Hypercall> {
        match port.checked_sub(crate::PORT_BASE) {
            Some(n) => Some(Hypercall::from_number(n)),
            None => None,
        }
    }
}

/// Why the guest stopped, in an [`Call::Exit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitReason {
    /// The application returned or called exit.
    Normal,
    /// The guest panicked (it printed the message first).
    Panic,
}

/// Boot phases a guest reports with [`Call::BootMark`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootStage {
    /// The first instruction of the guest (the TSC read at entry).
    Entry,
    /// Heap, scheduler and clocks are up.
    Platform,
    /// The rump kernel has booted.
    KernelUp,
    /// The application's `main` starts (disks and links attached).
    AppMain,
}

impl BootStage {
    const fn code(self) -> u64 {
        match self {
            BootStage::Entry => 0,
            BootStage::Platform => 1,
            BootStage::KernelUp => 2,
            BootStage::AppMain => 3,
        }
    }

    fn from_code(c: u64) -> Option<BootStage> {
        Some(match c {
            0 => BootStage::Entry,
            1 => BootStage::Platform,
            2 => BootStage::KernelUp,
            3 => BootStage::AppMain,
            _ => return None,
        })
    }

    /// A short name for traces.
    pub const fn name(self) -> &'static str {
        match self {
            BootStage::Entry => "entry",
            BootStage::Platform => "platform",
            BootStage::KernelUp => "kernel-up",
            BootStage::AppMain => "app-main",
        }
    }
}

/// A zero-copy view of a parameter block.
#[derive(Debug, Clone)]
pub struct Block<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Block<T> {
    /// Wraps a buffer of at least [`BLOCK_LEN`] bytes.
    pub fn new_checked(buffer: T) -> Result<Block<T>, ParseError> {
        if buffer.as_ref().len() < BLOCK_LEN {
            return Err(ParseError::Truncated);
        }
        Ok(Block { buffer })
    }

    /// The result word.
    pub fn ret(&self) -> i64 {
        get_u64(self.buffer.as_ref(), field::RET) as i64
    }

    /// Argument word `i` (0..5); out-of-range words read as 0.
    pub fn arg(&self, i: usize) -> u64 {
        if i >= 5 {
            return 0;
        }
        get_u64(self.buffer.as_ref(), field::ARG + 8 * i)
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Block<T> {
    /// Sets the result word.
    pub fn set_ret(&mut self, ret: i64) {
        put_u64(self.buffer.as_mut(), field::RET, ret as u64);
    }

    /// Sets argument word `i` (0..5); others are ignored.
    pub fn set_arg(&mut self, i: usize, v: u64) {
        if i < 5 {
            put_u64(self.buffer.as_mut(), field::ARG + 8 * i, v);
        }
    }
}

/// A hypercall with its checked arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Write `len` bytes at guest address `gpa` to the console.
    ConsoleWrite { gpa: u64, len: u64 },
    /// Read the host clocks. The runner answers in the argument words:
    /// monotonic ns in 0, wall seconds in 1, wall nanoseconds in 2.
    Clock,
    /// Wait at most `timeout_ns` for a frame on a link in `net_mask`. The
    /// result is the mask of links with frames waiting.
    Poll { timeout_ns: u64, net_mask: u64 },
    /// Read `len` bytes of disk `disk` at byte `offset` into `gpa`.
    BlkRead {
        disk: u32,
        offset: u64,
        gpa: u64,
        len: u64,
    },
    /// Write `len` bytes at `gpa` to disk `disk` at byte `offset`.
    BlkWrite {
        disk: u32,
        offset: u64,
        gpa: u64,
        len: u64,
    },
    /// Flush disk `disk`.
    BlkFlush { disk: u32 },
    /// Send the frame of `len` bytes at `gpa` on link `net`.
    NetSend { net: u32, gpa: u64, len: u64 },
    /// Receive one frame on link `net` into `len` bytes at `gpa`; `EAGAIN`
    /// if none is waiting.
    NetRecv { net: u32, gpa: u64, len: u64 },
    /// Stop the guest.
    Exit { code: i32, reason: ExitReason },
    /// Boot phase `stage` reached when the guest's TSC read `tsc`.
    BootMark { stage: BootStage, tsc: u64 },
    /// Send the `count` frames of the batch of `len` bytes at `gpa` (see
    /// [`crate::batch`]) on link `net`. The result is the number sent; a
    /// malformed record fails the call with `EINVAL` after the frames
    /// before it went out.
    NetSendBatch {
        net: u32,
        gpa: u64,
        len: u64,
        count: u64,
    },
    /// Receive the frames waiting on link `net` into a batch in the `len`
    /// bytes at `gpa`, each of at most `max_frame` bytes (a frame is read
    /// only while a record that long still fits). The result is the number
    /// of records written, 0 if none was waiting.
    NetRecvBatch {
        net: u32,
        gpa: u64,
        len: u64,
        max_frame: u64,
    },
    /// Do what the [`crate::batch::IoDesc`] of
    /// [`crate::batch::IO_DESC_LEN`] bytes at `desc` says: send its batch,
    /// then receive into its other one, waiting up to its timeout for a
    /// frame. The result is the number of records received.
    NetIo { desc: u64 },
}

impl Call {
    /// Parses hypercall `nr` with its parameter block, checking every
    /// argument (handles against the ABI's limits, lengths against
    /// [`MAX_IO_LEN`], address ranges for overflow). Addresses are checked
    /// against guest memory by the runner.
    pub fn parse<T: AsRef<[u8]>>(nr: Hypercall, b: &Block<T>) -> Result<Call, Error> {
        let range = |gpa: u64, len: u64, max: u64| -> Result<(), Error> {
            if len > max {
                return Err(Error::Invalid);
            }
            gpa.checked_add(len).map(|_| ()).ok_or(Error::Fault)
        };
        let disk = |v: u64| -> Result<u32, Error> {
            if v < MAX_DISKS as u64 {
                Ok(v as u32)
            } else {
                Err(Error::BadHandle)
            }
        };
        let net = |v: u64| -> Result<u32, Error> {
            if v < MAX_NETS as u64 {
                Ok(v as u32)
            } else {
                Err(Error::BadHandle)
            }
        };
        Ok(match nr {
            Hypercall::ConsoleWrite => {
                let (gpa, len) = (b.arg(0), b.arg(1));
                range(gpa, len, MAX_CONSOLE_LEN)?;
                Call::ConsoleWrite { gpa, len }
            }
            Hypercall::Clock => Call::Clock,
            Hypercall::Poll => {
                let net_mask = b.arg(1);
                if net_mask >> MAX_NETS != 0 {
                    return Err(Error::BadHandle);
                }
                Call::Poll {
                    timeout_ns: b.arg(0),
                    net_mask,
                }
            }
            Hypercall::BlkRead | Hypercall::BlkWrite => {
                let (d, offset, gpa, len) = (disk(b.arg(0))?, b.arg(1), b.arg(2), b.arg(3));
                range(gpa, len, MAX_IO_LEN)?;
                if offset.checked_add(len).is_none() {
                    return Err(Error::Invalid);
                }
                if nr == Hypercall::BlkRead {
                    Call::BlkRead {
                        disk: d,
                        offset,
                        gpa,
                        len,
                    }
                } else {
                    Call::BlkWrite {
                        disk: d,
                        offset,
                        gpa,
                        len,
                    }
                }
            }
            Hypercall::BlkFlush => Call::BlkFlush {
                disk: disk(b.arg(0))?,
            },
            Hypercall::NetSend | Hypercall::NetRecv => {
                let (n, gpa, len) = (net(b.arg(0))?, b.arg(1), b.arg(2));
                range(gpa, len, MAX_IO_LEN)?;
                if nr == Hypercall::NetSend {
                    Call::NetSend { net: n, gpa, len }
                } else {
                    Call::NetRecv { net: n, gpa, len }
                }
            }
            Hypercall::Exit => {
                let code = i32::try_from(b.arg(0) as i64).map_err(|_| Error::Invalid)?;
                let reason = match b.arg(1) {
                    0 => ExitReason::Normal,
                    1 => ExitReason::Panic,
                    _ => return Err(Error::Invalid),
                };
                Call::Exit { code, reason }
            }
            Hypercall::BootMark => Call::BootMark {
                stage: BootStage::from_code(b.arg(0)).ok_or(Error::Invalid)?,
                tsc: b.arg(1),
            },
            Hypercall::NetSendBatch => {
                let (n, gpa, len, count) = (net(b.arg(0))?, b.arg(1), b.arg(2), b.arg(3));
                range(gpa, len, MAX_IO_LEN)?;
                if count > MAX_BATCH_FRAMES {
                    return Err(Error::Invalid);
                }
                Call::NetSendBatch {
                    net: n,
                    gpa,
                    len,
                    count,
                }
            }
            Hypercall::NetRecvBatch => {
                let (n, gpa, len, max_frame) = (net(b.arg(0))?, b.arg(1), b.arg(2), b.arg(3));
                range(gpa, len, MAX_IO_LEN)?;
                if max_frame == 0 || max_frame > MAX_FRAME_LEN as u64 {
                    return Err(Error::Invalid);
                }
                Call::NetRecvBatch {
                    net: n,
                    gpa,
                    len,
                    max_frame,
                }
            }
            Hypercall::NetIo => {
                let desc = b.arg(0);
                range(desc, crate::batch::IO_DESC_LEN as u64, MAX_IO_LEN)?;
                Call::NetIo { desc }
            }
            Hypercall::Unknown(_) => return Err(Error::NoSys),
        })
    }

    /// The hypercall number of this call.
    pub fn hypercall(&self) -> Hypercall {
        match self {
            Call::ConsoleWrite { .. } => Hypercall::ConsoleWrite,
            Call::Clock => Hypercall::Clock,
            Call::Poll { .. } => Hypercall::Poll,
            Call::BlkRead { .. } => Hypercall::BlkRead,
            Call::BlkWrite { .. } => Hypercall::BlkWrite,
            Call::BlkFlush { .. } => Hypercall::BlkFlush,
            Call::NetSend { .. } => Hypercall::NetSend,
            Call::NetRecv { .. } => Hypercall::NetRecv,
            Call::Exit { .. } => Hypercall::Exit,
            Call::BootMark { .. } => Hypercall::BootMark,
            Call::NetSendBatch { .. } => Hypercall::NetSendBatch,
            Call::NetRecvBatch { .. } => Hypercall::NetRecvBatch,
            Call::NetIo { .. } => Hypercall::NetIo,
        }
    }

    /// Bytes a block for this call needs.
    pub const fn buffer_len(&self) -> usize {
        BLOCK_LEN
    }

    /// Writes the arguments into a block (the guest's side); `ret` is
    /// cleared.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, b: &mut Block<T>) {
        let args: [u64; 5] = match *self {
            Call::ConsoleWrite { gpa, len } => [gpa, len, 0, 0, 0],
            Call::Clock => [0; 5],
            Call::Poll {
                timeout_ns,
                net_mask,
            } => [timeout_ns, net_mask, 0, 0, 0],
            Call::BlkRead {
                disk,
                offset,
                gpa,
                len,
            }
            | Call::BlkWrite {
                disk,
                offset,
                gpa,
                len,
            } => [disk as u64, offset, gpa, len, 0],
            Call::BlkFlush { disk } => [disk as u64, 0, 0, 0, 0],
            Call::NetSend { net, gpa, len } | Call::NetRecv { net, gpa, len } => {
                [net as u64, gpa, len, 0, 0]
            }
            Call::Exit { code, reason } => [
                code as i64 as u64,
                match reason {
                    ExitReason::Normal => 0,
                    ExitReason::Panic => 1,
                },
                0,
                0,
                0,
            ],
            Call::BootMark { stage, tsc } => [stage.code(), tsc, 0, 0, 0],
            Call::NetSendBatch {
                net,
                gpa,
                len,
                count,
            } => [net as u64, gpa, len, count, 0],
            Call::NetRecvBatch {
                net,
                gpa,
                len,
                max_frame,
            } => [net as u64, gpa, len, max_frame, 0],
            Call::NetIo { desc } => [desc, 0, 0, 0, 0],
        };
        b.set_ret(0);
        for (i, a) in args.iter().enumerate() {
            b.set_arg(i, *a);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(c: Call) {
        let mut b = Block::new_checked([0u8; BLOCK_LEN]).unwrap();
        c.emit(&mut b);
        assert_eq!(Call::parse(c.hypercall(), &b), Ok(c));
    }

    #[test]
    fn every_call_round_trips() {
        round_trip(Call::ConsoleWrite {
            gpa: 0x1000,
            len: 5,
        });
        round_trip(Call::Clock);
        round_trip(Call::Poll {
            timeout_ns: 1_000_000,
            net_mask: 0b11,
        });
        round_trip(Call::BlkRead {
            disk: 1,
            offset: 512,
            gpa: 0x20_0000,
            len: 4096,
        });
        round_trip(Call::BlkWrite {
            disk: 7,
            offset: 0,
            gpa: 0x20_0000,
            len: 1,
        });
        round_trip(Call::BlkFlush { disk: 0 });
        round_trip(Call::NetSend {
            net: 0,
            gpa: 0x30_0000,
            len: 1514,
        });
        round_trip(Call::NetRecv {
            net: 3,
            gpa: 0x30_0000,
            len: 2048,
        });
        round_trip(Call::Exit {
            code: -3,
            reason: ExitReason::Panic,
        });
        round_trip(Call::BootMark {
            stage: BootStage::KernelUp,
            tsc: 12345,
        });
        round_trip(Call::NetSendBatch {
            net: 1,
            gpa: 0x30_0000,
            len: 65536,
            count: 40,
        });
        round_trip(Call::NetIo { desc: 0x40_0000 });
        round_trip(Call::NetRecvBatch {
            net: 0,
            gpa: 0x30_0000,
            len: 1 << 18,
            max_frame: 1518,
        });
    }

    #[test]
    fn ports_map_to_numbers() {
        for h in Hypercall::ALL {
            assert_eq!(Hypercall::from_port(h.port()), Some(h));
        }
        assert_eq!(Hypercall::from_port(0x3f8), None);
        assert_eq!(
            Hypercall::from_port(crate::PORT_BASE + 200),
            Some(Hypercall::Unknown(200))
        );
    }

    #[test]
    fn bad_blocks_are_refused() {
        assert_eq!(
            Block::new_checked([0u8; BLOCK_LEN - 1]).err(),
            Some(ParseError::Truncated)
        );
        let mut b = Block::new_checked([0u8; BLOCK_LEN]).unwrap();
        assert_eq!(Call::parse(Hypercall::Unknown(77), &b), Err(Error::NoSys));
        // Disk handle out of range.
        b.set_arg(0, MAX_DISKS as u64);
        assert_eq!(Call::parse(Hypercall::BlkRead, &b), Err(Error::BadHandle));
        // Length over the limit, address range that wraps.
        b.set_arg(0, 0);
        b.set_arg(3, MAX_IO_LEN + 1);
        assert_eq!(Call::parse(Hypercall::BlkRead, &b), Err(Error::Invalid));
        b.set_arg(2, u64::MAX - 10);
        b.set_arg(3, 100);
        assert_eq!(Call::parse(Hypercall::BlkWrite, &b), Err(Error::Fault));
        // Offset + length that wraps.
        b.set_arg(1, u64::MAX);
        b.set_arg(2, 0);
        assert_eq!(Call::parse(Hypercall::BlkRead, &b), Err(Error::Invalid));
        // Exit code that is no i32, unknown exit reason, unknown stage.
        b.set_arg(0, 1 << 40);
        assert_eq!(Call::parse(Hypercall::Exit, &b), Err(Error::Invalid));
        b.set_arg(0, 0);
        b.set_arg(1, 9);
        assert_eq!(Call::parse(Hypercall::Exit, &b), Err(Error::Invalid));
        b.set_arg(0, 99);
        assert_eq!(Call::parse(Hypercall::BootMark, &b), Err(Error::Invalid));
        // Poll on links that cannot exist.
        b.set_arg(1, 1 << MAX_NETS);
        assert_eq!(Call::parse(Hypercall::Poll, &b), Err(Error::BadHandle));
        // Batches: too many frames, a frame limit of 0 or over the maximum.
        b.set_arg(0, 0);
        b.set_arg(1, 0);
        b.set_arg(2, 4096);
        b.set_arg(3, MAX_BATCH_FRAMES + 1);
        assert_eq!(
            Call::parse(Hypercall::NetSendBatch, &b),
            Err(Error::Invalid)
        );
        b.set_arg(3, 0);
        assert_eq!(
            Call::parse(Hypercall::NetRecvBatch, &b),
            Err(Error::Invalid)
        );
        b.set_arg(3, MAX_FRAME_LEN as u64 + 1);
        assert_eq!(
            Call::parse(Hypercall::NetRecvBatch, &b),
            Err(Error::Invalid)
        );
        // Console writes are bounded.
        b.set_arg(0, 0);
        b.set_arg(1, MAX_CONSOLE_LEN + 1);
        assert_eq!(
            Call::parse(Hypercall::ConsoleWrite, &b),
            Err(Error::Invalid)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_block_parses_or_errs_without_panicking(n in 0u16..16, words in proptest::array::uniform5(proptest::num::u64::ANY)) {
            let mut b = Block::new_checked([0u8; BLOCK_LEN]).unwrap();
            for (i, w) in words.iter().enumerate() {
                b.set_arg(i, *w);
            }
            if let Ok(c) = Call::parse(Hypercall::from_number(n), &b) {
                // A parsed call re-emits to a block that parses the same.
                let mut again = Block::new_checked([0u8; BLOCK_LEN]).unwrap();
                c.emit(&mut again);
                proptest::prop_assert_eq!(Call::parse(c.hypercall(), &again), Ok(c));
            }
        }
    }
}
