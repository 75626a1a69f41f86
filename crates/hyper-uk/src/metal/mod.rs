//! The bare-metal side: entry, boot block, hypercalls, heap, clocks, the
//! `Hyper` implementation, panic.

mod dev;
mod sched;

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use core::arch::{asm, global_asm};
use core::fmt::Write;
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use hyper::{
    BlockIo, BlockOpenFlags, CurrentContext, Errno, FrameIo, Hyper, MonoNs, Parker, ThreadHandle,
    Timespec, HYPER_VERSION,
};
use linked_list_allocator::LockedHeap;
use uk_abi::{
    Block, BootInfo, BootInfoRepr, BootStage, Call, ExitReason, BLOCK_LEN, BOOT_INFO_GPA,
    BOOT_INFO_LEN, BOOT_STACK_LEN,
};

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

// Platform state of the one machine this guest is, not kernel state: the
// kernels booted on this platform keep theirs in their `Kernel` values.
static BOOT: spin::Once<BootInfoRepr<'static>> = spin::Once::new();
static PLATFORM: spin::Once<Arc<UkHyper>> = spin::Once::new();
static TSC_KHZ: AtomicU64 = AtomicU64::new(0);
static TSC_ORIGIN: AtomicU64 = AtomicU64::new(0);
static WALL_ORIGIN_NS: AtomicU64 = AtomicU64::new(0);

// The runner enters here in 64-bit mode with `rsp` at the top of memory and
// `rdi` pointing at the boot block. Align the stack as a call would and go
// to Rust; nothing returns.
global_asm!(
    ".globl _start",
    "_start:",
    "and rsp, -16",
    "xor ebp, ebp",
    "call {entry}",
    "ud2",
    entry = sym uk_entry,
);

extern "Rust" {
    fn __uk_main(platform: Arc<dyn Hyper>) -> i32;
}

extern "C" fn uk_entry(boot_gpa: u64) -> ! {
    let tsc0 = rdtsc();
    TSC_ORIGIN.store(tsc0, Ordering::Relaxed);
    // The runner wrote a boot block of BOOT_INFO_LEN bytes at
    // `BOOT_INFO_GPA` (passed in rdi) and maps it read-only for the whole
    // run; nothing writes it.
    let ptr = BOOT_INFO_GPA as *const u8;
    // SAFETY: so a shared 'static slice of it is sound.
    let raw: &'static [u8] = unsafe { core::slice::from_raw_parts(ptr, BOOT_INFO_LEN) };
    if boot_gpa != BOOT_INFO_GPA {
        fatal("boot: rdi does not point at the boot block");
    }
    let view: &'static BootInfo<&'static [u8]> = {
        static VIEW: spin::Once<BootInfo<&'static [u8]>> = spin::Once::new();
        match BootInfo::new_checked(raw) {
            Ok(v) => VIEW.call_once(|| v),
            Err(_) => fatal("boot: boot block truncated"),
        }
    };
    let info = match BootInfoRepr::parse(view) {
        Ok(i) => i,
        Err(e) => {
            let mut m = MsgBuf::new();
            let _ = write!(m, "boot: bad boot block: {e}");
            fatal(m.as_str())
        }
    };
    let info = BOOT.call_once(|| info);
    let heap_start = info.image_end;
    let heap_end = info.mem_size - BOOT_STACK_LEN;
    if heap_end <= heap_start + (1 << 20) {
        fatal("boot: less than 1 MiB of memory left for the heap");
    }
    // SAFETY: [image_end, mem_size - BOOT_STACK_LEN) is guest memory that
    // neither the image nor the boot stack uses (the runner checked the
    // image fits below the stack); it is handed to the allocator once.
    unsafe {
        HEAP.lock()
            .init(heap_start as *mut u8, (heap_end - heap_start) as usize)
    };
    init_clock(tsc0, info.tsc_khz);
    sched::init();
    send_mark(BootStage::Entry, tsc0);
    boot_mark(BootStage::Platform);
    let p = PLATFORM.call_once(|| Arc::new(UkHyper)).clone();
    // SAFETY: `__uk_main` is defined by the application with `main!`, with
    // exactly this signature.
    let code = unsafe { __uk_main(p) };
    exit(code, ExitReason::Normal)
}

/// The platform (after boot).
pub fn platform() -> Arc<dyn Hyper> {
    match PLATFORM.get() {
        Some(p) => p.clone(),
        None => fatal("platform used before boot"),
    }
}

/// Whether the runner was started with `--boot-trace`.
pub fn boot_trace() -> bool {
    BOOT.get().is_some_and(|b| b.boot_trace)
}

/// Reports boot phase `stage` to the runner (it prints it with
/// `--boot-trace` and the boot benchmark reads it).
pub fn boot_mark(stage: BootStage) {
    send_mark(stage, rdtsc());
}

fn send_mark(stage: BootStage, tsc: u64) {
    let _ = hypercall(&Call::BootMark { stage, tsc });
}

/// Makes one hypercall: the block lives on the caller's stack (guest
/// memory above 1 MiB, identity-mapped), the runner fills in the result.
/// Returns the result word as a value or an error, and the argument words
/// as the runner left them.
pub fn hypercall(call: &Call) -> (Result<u64, uk_abi::Error>, [u64; 5]) {
    #[repr(C, align(8))]
    struct Raw([u8; BLOCK_LEN]);
    let mut raw = Raw([0; BLOCK_LEN]);
    let port = call.hypercall().port();
    {
        let Ok(mut b) = Block::new_checked(&mut raw.0[..]) else {
            unreachable!()
        };
        call.emit(&mut b);
    }
    let gpa = raw.0.as_mut_ptr() as u64 as u32;
    // SAFETY: `out` to a hypercall port only exits to the runner, which
    // reads and writes the BLOCK_LEN bytes at `gpa` (our live `raw`) and
    // nothing else of ours; the asm does not touch the stack.
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") gpa, options(nostack, preserves_flags));
    }
    let b = match Block::new_checked(&raw.0[..]) {
        Ok(b) => b,
        Err(_) => unreachable!(),
    };
    let args = [b.arg(0), b.arg(1), b.arg(2), b.arg(3), b.arg(4)];
    (uk_abi::Error::from_ret(b.ret()), args)
}

/// Issues a raw hypercall with an arbitrary port and block address (for
/// tests of the runner's checks).
pub fn raw_hypercall(port: u16, gpa: u32) {
    // SAFETY: as in `hypercall`; whatever the runner writes goes to `gpa`,
    // which the caller chose (the runner refuses addresses outside guest
    // memory and below the image).
    unsafe {
        asm!("out dx, eax", in("dx") port, in("eax") gpa, options(nostack, preserves_flags));
    }
}

/// Issues hypercall port `port` with a zeroed parameter block and returns
/// the runner's answer (for tests of the runner's checks).
pub fn raw_hypercall_block(port: u16) -> Result<u64, uk_abi::Error> {
    #[repr(C, align(8))]
    struct Raw([u8; BLOCK_LEN]);
    let raw = Raw([0; BLOCK_LEN]);
    raw_hypercall(port, raw.0.as_ptr() as u64 as u32);
    // SAFETY: the runner may have written `raw` behind the compiler's back
    // during the `out`; read it back volatile.
    let raw = unsafe { core::ptr::read_volatile(&raw) };
    match Block::new_checked(&raw.0[..]) {
        Ok(b) => uk_abi::Error::from_ret(b.ret()),
        Err(_) => Err(uk_abi::Error::Fault),
    }
}

/// Writes through a null pointer (for tests: page 0 is not mapped, so the
/// guest faults and, without an IDT, the runner reports a triple fault with
/// the registers).
pub fn null_write() -> ! {
    // SAFETY: deliberately not sound to continue: the write faults and the
    // vCPU stops; nothing after it runs.
    unsafe {
        asm!("mov qword ptr [0], 1", options(nostack));
    }
    fatal("a null-pointer write did not fault")
}

fn errno(e: uk_abi::Error) -> Errno {
    Errno(e.errno() as i32)
}

pub(crate) fn console(bytes: &[u8]) {
    for chunk in bytes.chunks(uk_abi::MAX_CONSOLE_LEN as usize) {
        let _ = hypercall(&Call::ConsoleWrite {
            gpa: chunk.as_ptr() as u64,
            len: chunk.len() as u64,
        });
    }
}

fn exit(code: i32, reason: ExitReason) -> ! {
    let _ = hypercall(&Call::Exit { code, reason });
    loop {
        // The runner stops the guest at the exit hypercall. (`hlt` is
        // privileged: the guest runs at privilege level 3.)
        // SAFETY: `ud2` touches no memory; with no handler it stops the vCPU.
        unsafe { asm!("ud2", options(nomem, nostack)) };
    }
}

/// Prints a message and a register dump, then stops the guest as a panic.
fn fatal(msg: &str) -> ! {
    let mut m = MsgBuf::new();
    let _ = writeln!(m, "uk: panic: {msg}");
    register_dump(&mut m);
    console(m.as_str().as_bytes());
    exit(101, ExitReason::Panic)
}

fn register_dump(m: &mut MsgBuf) {
    // (Control registers cannot be read at privilege level 3; the runner
    // prints them when the guest stops.)
    let (rsp, rbp): (u64, u64);
    // SAFETY: reading registers has no side effects.
    unsafe {
        asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack));
        asm!("mov {}, rbp", out(reg) rbp, options(nomem, nostack));
    }
    let _ = writeln!(
        m,
        "uk: registers: rsp={rsp:#x} rbp={rbp:#x} thread={} tsc={}",
        sched::current_id(),
        rdtsc()
    );
    // The return addresses of the frames above (frame pointers permitting).
    let mut fp = rbp;
    let _ = write!(m, "uk: backtrace:");
    for _ in 0..16 {
        let mem = BOOT.get().map_or(0, |b| b.mem_size);
        if fp < uk_abi::IMAGE_MIN_GPA || !fp.is_multiple_of(8) || fp + 16 > mem {
            break;
        }
        // SAFETY: `fp` is an aligned address inside mapped guest memory
        // (checked just above); reading two words there cannot fault.
        let (next, ret) = unsafe { (*(fp as *const u64), *((fp + 8) as *const u64)) };
        let _ = write!(m, " {ret:#x}");
        if next <= fp {
            break;
        }
        fp = next;
    }
    let _ = writeln!(m);
}

#[panic_handler]
fn on_panic(info: &core::panic::PanicInfo) -> ! {
    let mut m = MsgBuf::new();
    let _ = write!(m, "{}", info.message());
    if let Some(l) = info.location() {
        let _ = write!(m, " at {}:{}", l.file(), l.line());
    }
    fatal(m.as_str())
}

/// A fixed buffer for messages written where allocating may not work.
struct MsgBuf {
    buf: [u8; 1024],
    len: usize,
}

impl MsgBuf {
    fn new() -> Self {
        MsgBuf {
            buf: [0; 1024],
            len: 0,
        }
    }
    fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("(message not UTF-8)")
    }
}

impl Write for MsgBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let mut n = s.len().min(self.buf.len() - self.len);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

// ----- clocks ----------------------------------------------------------------

pub(crate) fn rdtsc() -> u64 {
    // SAFETY: rdtsc only reads the time-stamp counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn host_clock() -> (u64, u64) {
    let (r, a) = hypercall(&Call::Clock);
    if r.is_err() {
        fatal("clock hypercall failed");
    }
    (
        a[0],
        a[1].saturating_mul(1_000_000_000).saturating_add(a[2]),
    )
}

fn init_clock(tsc0: u64, khz: u64) {
    let (mono0, wall0) = host_clock();
    let khz = if khz != 0 {
        khz
    } else {
        // Calibrate: count TSC ticks across 2 ms of the host's clock.
        let t0 = rdtsc();
        loop {
            let (m, _) = host_clock();
            if m >= mono0 + 2_000_000 {
                let ticks = rdtsc() - t0;
                break (ticks as u128 * 1_000_000 / (m - mono0) as u128 / 1000).max(1) as u64;
            }
        }
    };
    TSC_KHZ.store(khz, Ordering::Relaxed);
    // The wall clock at the TSC origin (the hypercall came shortly after).
    let since = ticks_to_ns(rdtsc().saturating_sub(tsc0));
    WALL_ORIGIN_NS.store(wall0.saturating_sub(since), Ordering::Relaxed);
}

fn ticks_to_ns(ticks: u64) -> u64 {
    let khz = TSC_KHZ.load(Ordering::Relaxed).max(1);
    (ticks as u128 * 1_000_000 / khz as u128) as u64
}

pub(crate) fn now_ns() -> u64 {
    ticks_to_ns(rdtsc().saturating_sub(TSC_ORIGIN.load(Ordering::Relaxed)))
}

// ----- randomness --------------------------------------------------------------

/// Whether RDRAND exists: 0 not asked yet, 1 yes, 2 no. CPUID is asked
/// once: it always exits to the hypervisor, which costs microseconds
/// (tens of them under nested virtualisation) per call.
static HAVE_RDRAND: AtomicU8 = AtomicU8::new(0);

fn rdrand() -> Option<u64> {
    let have = match HAVE_RDRAND.load(Ordering::Relaxed) {
        0 => {
            // CPUID.01H:ECX.RDRAND[bit 30].
            let yes = core::arch::x86_64::__cpuid(1).ecx & (1 << 30) != 0;
            HAVE_RDRAND.store(if yes { 1 } else { 2 }, Ordering::Relaxed);
            yes
        }
        v => v == 1,
    };
    if !have {
        return None;
    }
    for _ in 0..10 {
        let (v, ok): (u64, u8);
        // SAFETY: rdrand is present (checked above); it writes a register
        // and the carry flag only.
        unsafe {
            asm!("rdrand {}", "setc {}", out(reg) v, out(reg_byte) ok, options(nomem, nostack))
        };
        if ok != 0 {
            return Some(v);
        }
    }
    None
}

static XORSHIFT: AtomicU64 = AtomicU64::new(0);

fn random_u64() -> u64 {
    if let Some(v) = rdrand() {
        return v;
    }
    // No RDRAND: xorshift seeded by the TSC (not cryptographic; said so in
    // docs/unikernel.md).
    let mut x = XORSHIFT.load(Ordering::Relaxed);
    if x == 0 {
        x = rdtsc() | 1;
    }
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    XORSHIFT.store(x, Ordering::Relaxed);
    x
}

// ----- the platform --------------------------------------------------------------

/// The unikernel platform. One per guest ([`platform`]).
pub struct UkHyper;

impl Hyper for UkHyper {
    fn version(&self) -> u32 {
        HYPER_VERSION
    }

    fn thread_spawn(
        &self,
        name: &str,
        body: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<Box<dyn ThreadHandle>, Errno> {
        sched::spawn(name, body).map(|h| Box::new(h) as Box<dyn ThreadHandle>)
    }

    fn current_parker(&self) -> Arc<dyn Parker> {
        sched::current_parker()
    }

    fn yield_now(&self) {
        sched::yield_now();
    }

    fn relax(&self) {
        // With one vCPU a spinning thread waits for a thread that is not
        // running: let it run.
        sched::yield_now();
    }

    fn ncpu(&self) -> u32 {
        1
    }

    fn set_current(&self, ctx: Option<CurrentContext>) -> Option<CurrentContext> {
        sched::set_current(ctx)
    }

    fn current(&self) -> Option<CurrentContext> {
        sched::current()
    }

    fn clock_monotonic(&self) -> MonoNs {
        now_ns()
    }

    fn clock_wall(&self) -> Timespec {
        let ns = WALL_ORIGIN_NS
            .load(Ordering::Relaxed)
            .saturating_add(now_ns());
        Timespec {
            sec: (ns / 1_000_000_000) as i64,
            nsec: (ns % 1_000_000_000) as u32,
        }
    }

    fn sleep_until(&self, deadline: MonoNs) {
        sched::sleep_until(deadline);
    }

    fn random_fill(&self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = random_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    fn console_write(&self, bytes: &[u8]) {
        console(bytes);
    }

    fn param(&self, name: &str) -> Option<String> {
        BOOT.get()?.params.get(name).map(String::from)
    }

    fn block_open(&self, name: &str, flags: BlockOpenFlags) -> Result<Box<dyn BlockIo>, Errno> {
        let boot = BOOT.get().ok_or(Errno::ENODEV)?;
        dev::open_disk(boot, name, flags)
    }

    fn tap_open(&self, name: &str) -> Result<Box<dyn FrameIo>, Errno> {
        let boot = BOOT.get().ok_or(Errno::ENODEV)?;
        dev::open_tap(boot, name)
    }

    fn panic(&self, msg: &str) -> ! {
        fatal(msg)
    }

    fn exit(&self, code: i32) -> ! {
        exit(code, ExitReason::Normal)
    }
}

pub(crate) fn wait_frames(timeout_ns: u64, net_mask: u64) -> u64 {
    hypercall(&Call::Poll {
        timeout_ns,
        net_mask,
    })
    .0
    .unwrap_or(0)
}

pub(crate) fn hyper_errno(e: uk_abi::Error) -> Errno {
    errno(e)
}

pub(crate) fn deadlock() -> ! {
    fatal("deadlock: every thread waits and nothing can wake one (no deadline, no link)")
}
