//! The descriptor table of a process.
//!
//! Slots hold an [`Arc<File>`] and the close-on-exec flag. The lowest free
//! number is always allocated (POSIX). A table is shared by processes made
//! with `rfork` in share mode, copied in copy mode.

use alloc::sync::Arc;
use alloc::vec::Vec;

use hyper::Errno;

use crate::file::File;

/// Default limit on descriptors per table (`RLIMIT_NOFILE`).
pub const DEFAULT_MAX_FDS: usize = 65536;

#[derive(Clone)]
struct Slot {
    file: Arc<File>,
    cloexec: bool,
}

/// A descriptor table.
#[derive(Clone)]
pub struct FdTable {
    slots: Vec<Option<Slot>>,
    /// No free slot below this index (a search hint).
    low_free: usize,
    max: usize,
}

impl FdTable {
    /// An empty table.
    pub fn new() -> Self {
        FdTable {
            slots: Vec::new(),
            low_free: 0,
            max: DEFAULT_MAX_FDS,
        }
    }

    /// The most descriptors this table holds.
    pub fn limit(&self) -> usize {
        self.max
    }

    /// The file behind `fd`.
    pub fn get(&self, fd: i32) -> Result<&Arc<File>, Errno> {
        self.slot(fd).map(|s| &s.file)
    }

    fn slot(&self, fd: i32) -> Result<&Slot, Errno> {
        usize::try_from(fd)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(|s| s.as_ref())
            .ok_or(Errno::EBADF)
    }

    /// Installs `file` at the lowest free descriptor not below `min`.
    pub fn alloc(&mut self, file: Arc<File>, cloexec: bool, min: usize) -> Result<i32, Errno> {
        if min >= self.max {
            return Err(Errno::EINVAL);
        }
        let start = min.max(self.low_free);
        let idx = match self.slots[start.min(self.slots.len())..]
            .iter()
            .position(|s| s.is_none())
        {
            Some(i) => start + i,
            None => self.slots.len().max(start),
        };
        if idx >= self.max {
            return Err(Errno::EMFILE);
        }
        if idx >= self.slots.len() {
            self.slots.resize(idx + 1, None);
        }
        self.slots[idx] = Some(Slot { file, cloexec });
        if min <= self.low_free {
            self.low_free = idx + 1;
        }
        Ok(idx as i32)
    }

    /// Installs `file` at exactly `fd`, returning what was there.
    pub fn install_at(
        &mut self,
        fd: i32,
        file: Arc<File>,
        cloexec: bool,
    ) -> Result<Option<Arc<File>>, Errno> {
        let idx = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        if idx >= self.max {
            return Err(Errno::EBADF);
        }
        if idx >= self.slots.len() {
            self.slots.resize(idx + 1, None);
        }
        let old = self.slots[idx].replace(Slot { file, cloexec });
        if idx == self.low_free {
            self.low_free = idx + 1;
        }
        Ok(old.map(|s| s.file))
    }

    /// Removes `fd`, returning its file (the caller drops it outside any
    /// lock, which may close it).
    pub fn remove(&mut self, fd: i32) -> Result<Arc<File>, Errno> {
        let idx = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        let slot = self
            .slots
            .get_mut(idx)
            .and_then(|s| s.take())
            .ok_or(Errno::EBADF)?;
        if idx < self.low_free {
            self.low_free = idx;
        }
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        Ok(slot.file)
    }

    /// The close-on-exec flag of `fd`.
    pub fn cloexec(&self, fd: i32) -> Result<bool, Errno> {
        self.slot(fd).map(|s| s.cloexec)
    }

    /// Sets the close-on-exec flag of `fd`.
    pub fn set_cloexec(&mut self, fd: i32, on: bool) -> Result<(), Errno> {
        let idx = usize::try_from(fd).map_err(|_| Errno::EBADF)?;
        match self.slots.get_mut(idx).and_then(|s| s.as_mut()) {
            Some(s) => {
                s.cloexec = on;
                Ok(())
            }
            None => Err(Errno::EBADF),
        }
    }

    /// Removes every descriptor marked close-on-exec (what `exec` does).
    pub fn close_on_exec(&mut self) -> Vec<Arc<File>> {
        let mut closed = Vec::new();
        for i in 0..self.slots.len() {
            if matches!(&self.slots[i], Some(s) if s.cloexec) {
                if let Some(s) = self.slots[i].take() {
                    closed.push(s.file);
                }
                self.low_free = self.low_free.min(i);
            }
        }
        closed
    }

    /// Removes every descriptor.
    pub fn clear(&mut self) -> Vec<Arc<File>> {
        self.low_free = 0;
        core::mem::take(&mut self.slots)
            .into_iter()
            .flatten()
            .map(|s| s.file)
            .collect()
    }

    /// Number of open descriptors.
    pub fn count(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// The open descriptors, in order.
    pub fn fds(&self) -> impl Iterator<Item = i32> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_some())
            .map(|(i, _)| i as i32)
    }
}

impl Default for FdTable {
    fn default() -> Self {
        Self::new()
    }
}
