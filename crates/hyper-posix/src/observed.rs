//! [`Observed`]: the POSIX platform with hooks that watch what a kernel
//! asks of its host, for tests of the kernel's use of the hypercall
//! interface (which threads it starts, what it logs) and of its version
//! check. Every call is forwarded to [`PosixHyper`].

use std::sync::Arc;

use hyper::{
    BlockIo, BlockOpenFlags, CurrentContext, Errno, FrameIo, Hyper, MonoNs, Parker, SharedMem,
    ThreadHandle, Timespec,
};

use crate::PosixHyper;

/// The POSIX platform, observed. Build it with [`Observed::new`] and the
/// `on_*` methods, then hand it to a kernel as an `Arc<dyn Hyper>`.
pub struct Observed {
    inner: PosixHyper,
    version: u32,
    on_spawn: Option<Box<dyn Fn(&str) + Send + Sync>>,
    on_console: Option<Box<dyn Fn(&[u8]) + Send + Sync>>,
    params: Vec<(String, String)>,
}

impl Observed {
    /// Forwards everything, observes nothing yet.
    pub fn new() -> Self {
        Observed {
            inner: PosixHyper::new(),
            version: PosixHyper::new().version(),
            on_spawn: None,
            on_console: None,
            params: Vec::new(),
        }
    }

    /// Reports `version` instead of the real interface version.
    pub fn with_version(mut self, version: u32) -> Self {
        self.version = version;
        self
    }

    /// Calls `f` with the name of every thread the kernel starts.
    pub fn on_spawn(mut self, f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.on_spawn = Some(Box::new(f));
        self
    }

    /// Answers `param(name)` with `value` instead of the environment's
    /// (`RUMP_SPIN`, `RUMP_NCPU`, ...).
    pub fn with_param(mut self, name: &str, value: &str) -> Self {
        self.params.push((name.to_string(), value.to_string()));
        self
    }

    /// Calls `f` with every console write instead of printing it.
    pub fn on_console(mut self, f: impl Fn(&[u8]) + Send + Sync + 'static) -> Self {
        self.on_console = Some(Box::new(f));
        self
    }
}

impl Default for Observed {
    fn default() -> Self {
        Self::new()
    }
}

impl Hyper for Observed {
    fn version(&self) -> u32 {
        self.version
    }
    fn thread_spawn(
        &self,
        name: &str,
        body: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<Box<dyn ThreadHandle>, Errno> {
        if let Some(f) = &self.on_spawn {
            f(name);
        }
        self.inner.thread_spawn(name, body)
    }
    fn current_parker(&self) -> Arc<dyn Parker> {
        self.inner.current_parker()
    }
    fn yield_now(&self) {
        self.inner.yield_now()
    }
    fn relax(&self) {
        self.inner.relax()
    }
    fn ncpu(&self) -> u32 {
        self.inner.ncpu()
    }
    fn set_current(&self, ctx: Option<CurrentContext>) -> Option<CurrentContext> {
        self.inner.set_current(ctx)
    }
    fn current(&self) -> Option<CurrentContext> {
        self.inner.current()
    }
    fn clock_monotonic(&self) -> MonoNs {
        self.inner.clock_monotonic()
    }
    fn clock_wall(&self) -> Timespec {
        self.inner.clock_wall()
    }
    fn sleep_until(&self, deadline: MonoNs) {
        self.inner.sleep_until(deadline)
    }
    fn random_fill(&self, buf: &mut [u8]) {
        self.inner.random_fill(buf)
    }
    fn console_write(&self, bytes: &[u8]) {
        match &self.on_console {
            Some(f) => f(bytes),
            None => self.inner.console_write(bytes),
        }
    }
    fn param(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.params.iter().rev().find(|(n, _)| n == name) {
            return Some(v.clone());
        }
        self.inner.param(name)
    }
    fn block_open(&self, name: &str, flags: BlockOpenFlags) -> Result<Box<dyn BlockIo>, Errno> {
        self.inner.block_open(name, flags)
    }
    fn shm_map(&self, name: &str, size: usize) -> Result<Box<dyn SharedMem>, Errno> {
        self.inner.shm_map(name, size)
    }
    fn tap_open(&self, name: &str) -> Result<Box<dyn FrameIo>, Errno> {
        self.inner.tap_open(name)
    }
    fn process_id(&self) -> u32 {
        self.inner.process_id()
    }
    fn process_alive(&self, id: u32) -> bool {
        self.inner.process_alive(id)
    }
    fn panic(&self, msg: &str) -> ! {
        self.inner.panic(msg)
    }
    fn exit(&self, code: i32) -> ! {
        self.inner.exit(code)
    }
}
