//! A cooperative round-robin scheduler for one vCPU without interrupts.
//!
//! Threads switch only where they wait: [`park_until`](Parker::park_until),
//! [`sleep_until`], `join`, a frame wait, [`yield_now`] (which
//! `Hyper::relax` calls, so every spin round of the kernel lets the holder
//! run). With nothing runnable, the scheduler asks the runner to `POLL`
//! until the earliest deadline or a frame on a link someone waits on; that
//! is the only place the vCPU idles. (Rumprun's scheduler and Solo5's
//! `POLL` work the same way.)
//!
//! The context switch saves the callee-saved registers on the old stack and
//! swaps stack pointers; the target is soft-float, so there is no FPU state.
//! The scheduler's lock is never held across a switch.

use alloc::boxed::Box;
use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::arch::global_asm;

use hyper::{CurrentContext, Errno, MonoNs, Parker, ThreadHandle};

use super::now_ns;

/// Stack of a spawned thread.
const STACK_LEN: usize = 256 << 10;
/// With threads runnable, look for frames at most this often.
const POLL_EVERY_NS: u64 = 200_000;
/// Longest single POLL while idle (the loop re-checks after).
const IDLE_POLL_NS: u64 = 1_000_000_000;

// uk_switch(save: *mut u64 (rdi), to: u64 (rsi)): push the callee-saved
// registers, store rsp in *save, load `to`, pop the other thread's
// registers and return into it.
global_asm!(
    ".globl uk_switch",
    "uk_switch:",
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
);

extern "C" {
    fn uk_switch(save: *mut u64, to: u64);
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Runnable,
    Blocked {
        deadline: Option<MonoNs>,
        net: Option<u32>,
        /// In `Parker::park_until` (an unpark wakes it; otherwise an
        /// unpark leaves a token for the next park).
        parked: bool,
    },
    Done,
}

struct Thread {
    #[allow(dead_code)]
    name: String,
    rsp: u64,
    _stack: Option<Box<[u8]>>,
    state: State,
    token: bool,
    current: Option<CurrentContext>,
    body: Option<Box<dyn FnOnce() + Send>>,
    joiner: Option<u64>,
    parker: Arc<UkParker>,
}

struct Sched {
    threads: BTreeMap<u64, Box<Thread>>,
    run_queue: VecDeque<u64>,
    current: u64,
    next_id: u64,
    last_poll: MonoNs,
}

// The one vCPU's scheduler: platform state (threads of the machine), not
// kernel state.
static SCHED: spin::Mutex<Option<Sched>> = spin::Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Sched) -> R) -> R {
    let mut g = SCHED.lock();
    match g.as_mut() {
        Some(s) => f(s),
        None => super::fatal("scheduler used before boot"),
    }
}

fn new_thread(id: u64, name: &str, stack: Option<Box<[u8]>>, rsp: u64) -> Box<Thread> {
    Box::new(Thread {
        name: String::from(name),
        rsp,
        _stack: stack,
        state: State::Runnable,
        token: false,
        current: None,
        body: None,
        joiner: None,
        parker: Arc::new(UkParker { id }),
    })
}

/// Makes the boot thread thread 0.
pub fn init() {
    let mut threads = BTreeMap::new();
    threads.insert(0, new_thread(0, "main", None, 0));
    *SCHED.lock() = Some(Sched {
        threads,
        run_queue: VecDeque::new(),
        current: 0,
        next_id: 1,
        last_poll: 0,
    });
}

/// The running thread's id (0 if the scheduler is busy or not up: this is
/// for panic messages).
pub fn current_id() -> u64 {
    SCHED
        .try_lock()
        .and_then(|g| g.as_ref().map(|s| s.current))
        .unwrap_or(0)
}

pub fn spawn(name: &str, body: Box<dyn FnOnce() + Send>) -> Result<UkThread, Errno> {
    let mut stack = alloc::vec![0u8; STACK_LEN].into_boxed_slice();
    // The first switch into the thread pops six registers and returns into
    // `thread_start`, with the stack aligned as right after a call.
    let top = (stack.as_mut_ptr() as u64 + STACK_LEN as u64) & !15;
    let frame = top - 16 - 6 * 8;
    // SAFETY: `frame..top` lies inside `stack` (STACK_LEN is far larger
    // than 64 bytes) and is 8-aligned; we own the fresh allocation.
    unsafe {
        let p = frame as *mut u64;
        for i in 0..6 {
            p.add(i).write(0);
        }
        p.add(6).write(thread_start as *const () as u64);
        p.add(7).write(0);
    }
    let id = with(|s| {
        let id = s.next_id;
        s.next_id += 1;
        let mut t = new_thread(id, name, Some(stack), frame);
        t.body = Some(body);
        s.threads.insert(id, t);
        s.run_queue.push_back(id);
        id
    });
    Ok(UkThread { id })
}

extern "C" fn thread_start() -> ! {
    let body = with(|s| {
        let cur = s.current;
        s.threads.get_mut(&cur).and_then(|t| t.body.take())
    });
    if let Some(b) = body {
        b();
    }
    with(|s| {
        let cur = s.current;
        let joiner = s.threads.get_mut(&cur).and_then(|t| {
            t.state = State::Done;
            t.current = None;
            t.joiner.take()
        });
        if let Some(j) = joiner {
            wake(s, j);
        }
    });
    schedule();
    super::fatal("a finished thread was scheduled again")
}

fn wake(s: &mut Sched, id: u64) {
    if let Some(t) = s.threads.get_mut(&id) {
        if let State::Blocked { .. } = t.state {
            t.state = State::Runnable;
            s.run_queue.push_back(id);
        }
    }
}

/// Switches to the next runnable thread; returns when the current thread
/// runs again (at once if it is runnable and alone). The caller has set
/// the current thread's state (and queued it, if runnable).
fn schedule() {
    loop {
        let mut g = SCHED.lock();
        let Some(s) = g.as_mut() else { return };
        let now = now_ns();
        // Wake expired deadlines.
        let mut nets = 0u64;
        let mut earliest: Option<MonoNs> = None;
        let mut expired = Vec::new();
        for (&id, t) in s.threads.iter() {
            if let State::Blocked { deadline, net, .. } = t.state {
                if let Some(n) = net {
                    nets |= 1 << n;
                }
                match deadline {
                    Some(d) if d <= now => expired.push(id),
                    Some(d) => earliest = Some(earliest.map_or(d, |e: u64| e.min(d))),
                    None => {}
                }
            }
        }
        for id in expired {
            wake(s, id);
        }
        // Frames: now and then while busy, always before idling.
        let must_idle = s.run_queue.is_empty();
        if nets != 0 && !must_idle && now.saturating_sub(s.last_poll) >= POLL_EVERY_NS {
            s.last_poll = now;
            drop(g);
            let ready = io_or_poll(0, nets);
            with(|s| wake_nets(s, ready));
            continue;
        }
        if let Some(next) = s.run_queue.pop_front() {
            let cur = s.current;
            if next == cur {
                drop(g);
                super::dev::flush_all();
                return;
            }
            let Some(to) = s.threads.get(&next).map(|t| t.rsp) else {
                continue;
            };
            let save: *mut u64 = match s.threads.get_mut(&cur) {
                Some(t) => &mut t.rsp,
                None => super::fatal("the current thread vanished"),
            };
            s.current = next;
            drop(g);
            // Frames queued by the thread that now waits go out before
            // another runs.
            super::dev::flush_all();
            // `save` points into the current thread's boxed control block,
            // which is not freed while the thread is not Done-and-switched-
            // away (reaping happens only on another thread, below); `to` is
            // a stack pointer saved by uk_switch or prepared by `spawn` for
            // a live thread. Interrupts are off and the lock is released,
            // so nothing runs in between.
            // SAFETY: as just said, both stack pointers are live and ours.
            unsafe { uk_switch(save, to) };
            // Back on this thread: free threads that finished.
            let dead: Vec<Box<Thread>> = with(|s| {
                let cur = s.current;
                let done: Vec<u64> = s
                    .threads
                    .iter()
                    .filter(|(&id, t)| id != cur && t.state == State::Done)
                    .map(|(&id, _)| id)
                    .collect();
                let mut v = Vec::new();
                for id in done {
                    if let Some(t) = s.threads.remove(&id) {
                        v.push(t);
                    }
                }
                v
            });
            drop(dead);
            return;
        }
        // Nothing to run: idle in the runner until a deadline or a frame.
        if nets == 0 && earliest.is_none() {
            drop(g);
            super::deadlock();
        }
        let timeout = earliest.map_or(IDLE_POLL_NS, |d| d.saturating_sub(now).min(IDLE_POLL_NS));
        s.last_poll = now;
        drop(g);
        let ready = io_or_poll(timeout, nets);
        with(|s| wake_nets(s, ready));
    }
}

/// Sends what is queued and waits for frames: with one hypercall where the
/// links allow it (`dev::net_io`), else a flush and a `POLL`.
fn io_or_poll(timeout: u64, nets: u64) -> u64 {
    super::dev::net_io(timeout, nets).unwrap_or_else(|| {
        super::dev::flush_all();
        super::wait_frames(timeout, nets)
    })
}

fn wake_nets(s: &mut Sched, ready: u64) {
    if ready == 0 {
        return;
    }
    let ids: Vec<u64> = s
        .threads
        .iter()
        .filter(|(_, t)| matches!(t.state, State::Blocked { net: Some(n), .. } if ready & (1 << n) != 0))
        .map(|(&id, _)| id)
        .collect();
    for id in ids {
        wake(s, id);
    }
}

/// Blocks the current thread until woken, `deadline`, or (with `net`) a
/// frame on that link. A park (`parked`) returns at once on a pending
/// unpark token and consumes it.
pub fn block(deadline: Option<MonoNs>, net: Option<u32>, parked: bool) {
    let must_wait = with(|s| {
        let cur = s.current;
        match s.threads.get_mut(&cur) {
            Some(t) if parked && t.token => {
                t.token = false;
                false
            }
            Some(t) => {
                t.state = State::Blocked {
                    deadline,
                    net,
                    parked,
                };
                true
            }
            None => false,
        }
    });
    if must_wait {
        schedule();
    }
}

pub fn yield_now() {
    let others = with(|s| {
        let waits_on_time_or_frames = s.threads.values().any(|t| {
            matches!(
                t.state,
                State::Blocked { net: Some(_), .. }
                    | State::Blocked {
                        deadline: Some(_),
                        ..
                    }
            )
        });
        if s.run_queue.is_empty() && !waits_on_time_or_frames {
            return false;
        }
        let cur = s.current;
        s.run_queue.push_back(cur);
        true
    });
    if others {
        schedule();
    } else {
        // Alone and spinning: what it sent still goes out.
        super::dev::flush_all();
    }
}

pub fn sleep_until(deadline: MonoNs) {
    while now_ns() < deadline {
        block(Some(deadline), None, false);
    }
}

/// Wakes threads waiting for frames on link `net` (the link closed).
pub fn wake_net(net: u32) {
    with(|s| wake_nets(s, 1 << net));
}

pub fn current_parker() -> Arc<dyn Parker> {
    with(|s| {
        let cur = s.current;
        match s.threads.get(&cur) {
            Some(t) => t.parker.clone() as Arc<dyn Parker>,
            None => super::fatal("no current thread"),
        }
    })
}

pub fn set_current(ctx: Option<CurrentContext>) -> Option<CurrentContext> {
    let old = with(|s| {
        let cur = s.current;
        s.threads
            .get_mut(&cur)
            .map(|t| core::mem::replace(&mut t.current, ctx))
    });
    old.flatten()
}

pub fn current() -> Option<CurrentContext> {
    with(|s| {
        let cur = s.current;
        s.threads.get(&cur).and_then(|t| t.current.clone())
    })
}

struct UkParker {
    id: u64,
}

impl Parker for UkParker {
    fn park_until(&self, deadline: Option<MonoNs>) {
        if deadline.is_some_and(|d| d <= now_ns()) {
            return;
        }
        block(deadline, None, true);
    }

    fn unpark(&self) {
        with(|s| match s.threads.get_mut(&self.id) {
            Some(t) if matches!(t.state, State::Blocked { parked: true, .. }) => {
                t.state = State::Runnable;
                s.run_queue.push_back(self.id);
            }
            Some(t) => t.token = true,
            None => {}
        });
    }

    fn id(&self) -> u64 {
        self.id
    }
}

pub struct UkThread {
    id: u64,
}

impl ThreadHandle for UkThread {
    fn join(self: Box<Self>) -> Result<(), Errno> {
        loop {
            let done = with(|s| {
                let cur = s.current;
                match s.threads.get_mut(&self.id) {
                    None => true,
                    Some(t) if t.state == State::Done => true,
                    Some(t) => {
                        t.joiner = Some(cur);
                        if let Some(me) = s.threads.get_mut(&cur) {
                            me.state = State::Blocked {
                                deadline: None,
                                net: None,
                                parked: false,
                            };
                        }
                        false
                    }
                }
            });
            if done {
                return Ok(());
            }
            schedule();
        }
    }
}
