//! The per-kernel device registry (etfs-style registration) and the
//! component that installs it.
//!
//! Names are free-form keys, conventionally `/dev/diskN`. Registering a
//! device that carries an MBR or GPT also registers its partitions as
//! `NAMEpN`. A file system [`Registry::claim`]s a device while mounted, so
//! the same device cannot be mounted twice.

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use hyper::{BlockOpenFlags, Errno};
use kern::sync::SpinMutex;
use kern::{Component, Kernel, Stage};

use crate::dev::{BlockDevice, HostDevice, Partition};
use crate::part;

/// The name of the kernel extension holding the [`Registry`].
pub const EXTENSION: &str = "dev-blk";

/// Block devices of one kernel, by name.
pub struct Registry {
    devices: SpinMutex<BTreeMap<String, Arc<dyn BlockDevice>>>,
    claimed: Arc<SpinMutex<BTreeSet<String>>>,
    /// Device numbers (`st_rdev` of the nodes in `/dev`) by name, and the
    /// next minor number to give out (never reused while the kernel runs,
    /// so a stale node cannot reach another device).
    numbers: SpinMutex<(BTreeMap<String, u64>, u32)>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry {
            devices: SpinMutex::new(BTreeMap::new()),
            claimed: Arc::new(SpinMutex::new(BTreeSet::new())),
            numbers: SpinMutex::new((BTreeMap::new(), 0)),
        }
    }

    /// The registry of `kernel`; `ENODEV` if the [`BlkComponent`] was not
    /// booted.
    pub fn of(kernel: &Kernel) -> Result<Arc<Registry>, Errno> {
        kernel
            .extension(EXTENSION)
            .and_then(|e| e.downcast::<Registry>().ok())
            .ok_or(Errno::ENODEV)
    }

    /// Adds `dev` under `name`; `EEXIST` if the name is taken.
    pub fn register(&self, name: &str, dev: Arc<dyn BlockDevice>) -> Result<(), Errno> {
        if name.is_empty() {
            return Err(Errno::EINVAL);
        }
        let mut d = self.devices.lock();
        if d.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        d.insert(name.to_string(), dev);
        let mut n = self.numbers.lock();
        let minor = n.1;
        n.1 += 1;
        n.0.insert(
            name.to_string(),
            crate::raw::makedev(crate::raw::DISK_MAJOR, minor),
        );
        Ok(())
    }

    /// The device number of `name` (what its node's `st_rdev` holds).
    pub fn rdev_of(&self, name: &str) -> Result<u64, Errno> {
        self.numbers.lock().0.get(name).copied().ok_or(Errno::ENXIO)
    }

    /// The name and device with number `rdev`; `ENXIO` if there is none
    /// (any more).
    pub fn by_rdev(&self, rdev: u64) -> Result<(String, Arc<dyn BlockDevice>), Errno> {
        let name = self
            .numbers
            .lock()
            .0
            .iter()
            .find(|(_, &r)| r == rdev)
            .map(|(n, _)| n.clone())
            .ok_or(Errno::ENXIO)?;
        let dev = self.lookup(&name)?;
        Ok((name, dev))
    }

    /// Whether `name` is claimed (mounted).
    pub fn is_claimed(&self, name: &str) -> bool {
        self.claimed.lock().contains(name)
    }

    /// Adds `dev` under `name` and each partition of its table under
    /// `NAMEpN`. Returns every name added. A broken partition table is
    /// not an error here: the whole device is still registered.
    pub fn register_with_partitions(
        &self,
        name: &str,
        dev: Arc<dyn BlockDevice>,
    ) -> Result<Vec<String>, Errno> {
        let parts = part::scan(&*dev).unwrap_or_default();
        self.register(name, dev.clone())?;
        let mut names = Vec::with_capacity(parts.len() + 1);
        names.push(name.to_string());
        for p in parts {
            let pname = format!("{name}p{}", p.index);
            let pd = Partition::new(dev.clone(), p.start, p.sectors, dev.is_read_only())?;
            if self.register(&pname, Arc::new(pd)).is_ok() {
                names.push(pname);
            }
        }
        Ok(names)
    }

    /// The device called `name`; `ENXIO` if there is none.
    pub fn lookup(&self, name: &str) -> Result<Arc<dyn BlockDevice>, Errno> {
        self.devices.lock().get(name).cloned().ok_or(Errno::ENXIO)
    }

    /// Removes `name` and its partitions; `EBUSY` while one is claimed.
    pub fn remove(&self, name: &str) -> Result<(), Errno> {
        let mut d = self.devices.lock();
        if !d.contains_key(name) {
            return Err(Errno::ENOENT);
        }
        let is_ours = |k: &str| {
            k == name
                || k.strip_prefix(name)
                    .and_then(|r| r.strip_prefix('p'))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()))
        };
        let claimed = self.claimed.lock();
        if claimed.iter().any(|k| is_ours(k)) {
            return Err(Errno::EBUSY);
        }
        d.retain(|k, _| !is_ours(k));
        self.numbers.lock().0.retain(|k, _| !is_ours(k));
        Ok(())
    }

    /// The registered names.
    pub fn names(&self) -> Vec<String> {
        self.devices.lock().keys().cloned().collect()
    }

    /// Takes exclusive use of `name` (a mount does this); `EBUSY` if it is
    /// already taken, `ENXIO` if there is no such device. Released when
    /// the [`Claim`] drops.
    pub fn claim(&self, name: &str) -> Result<(Arc<dyn BlockDevice>, Claim), Errno> {
        let dev = self.lookup(name)?;
        let mut c = self.claimed.lock();
        if !c.insert(name.to_string()) {
            return Err(Errno::EBUSY);
        }
        Ok((
            dev,
            Claim {
                name: name.to_string(),
                set: self.claimed.clone(),
            },
        ))
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// Exclusive use of a registered device; see [`Registry::claim`].
pub struct Claim {
    name: String,
    set: Arc<SpinMutex<BTreeSet<String>>>,
}

impl Claim {
    /// The device name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.set.lock().remove(&self.name);
    }
}

/// Opens the host file `host_path` through the platform and registers it
/// (and its partitions) under `key`, read-only or read-write
/// (`rump_pub_etfs_register` with `RUMP_ETFS_BLK`). Returns the names
/// added.
pub fn register_host(
    kernel: &Kernel,
    key: &str,
    host_path: &str,
    read_only: bool,
) -> Result<Vec<String>, Errno> {
    register_host_window(kernel, key, host_path, read_only, None)
}

/// [`register_host`] of the byte window `offset .. offset + size` of the
/// host file (`rump_pub_etfs_register_withsize`); `size` `u64::MAX` runs
/// to the end. Both must be multiples of 512.
pub fn register_host_window(
    kernel: &Kernel,
    key: &str,
    host_path: &str,
    read_only: bool,
    window: Option<(u64, u64)>,
) -> Result<Vec<String>, Errno> {
    kernel.check()?;
    let reg = Registry::of(kernel)?;
    if reg.lookup(key).is_ok() {
        return Err(Errno::EEXIST);
    }
    kern::hostpolicy::check(
        kernel,
        kern::hostpolicy::HostAccess::BlockDevice {
            writable: !read_only,
        },
        host_path,
    )?;
    let io = kernel.hyper().block_open(
        host_path,
        BlockOpenFlags {
            writable: !read_only,
            create: false,
        },
    )?;
    let dev = HostDevice::new(io, read_only)?;
    match window {
        None => reg.register_with_partitions(key, Arc::new(dev)),
        Some((offset, size)) => {
            let sectors = window_sectors(dev.sectors(), offset, size)?;
            let part = Partition::new(Arc::new(dev), offset / 512, sectors, read_only)?;
            reg.register_with_partitions(key, Arc::new(part))
        }
    }
}

/// The size in sectors of the window `offset .. offset + size` (bytes;
/// `size` `u64::MAX`: to the end) of a device of `total` sectors.
/// `EINVAL` unless both are whole sectors and the window is non-empty and
/// inside the device.
fn window_sectors(total: u64, offset: u64, size: u64) -> Result<u64, Errno> {
    if !offset.is_multiple_of(512) || (size != u64::MAX && !size.is_multiple_of(512)) {
        return Err(Errno::EINVAL);
    }
    let start = offset / 512;
    let sectors = if size == u64::MAX {
        total.checked_sub(start).ok_or(Errno::EINVAL)?
    } else {
        size / 512
    };
    match start.checked_add(sectors) {
        Some(end) if end <= total && sectors > 0 => Ok(sectors),
        _ => Err(Errno::EINVAL),
    }
}

/// The component that gives a kernel its block-device registry.
#[derive(Debug, Default)]
pub struct BlkComponent;

impl Component for BlkComponent {
    fn name(&self) -> &'static str {
        "dev-blk"
    }
    fn stage(&self) -> Stage {
        Stage::Dev
    }
    fn init(&self, kernel: &Kernel) -> Result<(), Errno> {
        kernel.set_extension(EXTENSION, Arc::new(Registry::new()));
        crate::raw::install(kernel);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dev::MemDevice;

    #[test]
    fn register_lookup_claim_remove() {
        let r = Registry::new();
        r.register("/dev/disk0", Arc::new(MemDevice::new(8)))
            .unwrap();
        assert_eq!(
            r.register("/dev/disk0", Arc::new(MemDevice::new(8))).err(),
            Some(Errno::EEXIST)
        );
        assert!(r.lookup("/dev/disk1").is_err());
        let (_d, c) = r.claim("/dev/disk0").unwrap();
        assert_eq!(r.claim("/dev/disk0").err(), Some(Errno::EBUSY));
        assert_eq!(r.remove("/dev/disk0"), Err(Errno::EBUSY));
        drop(c);
        r.remove("/dev/disk0").unwrap();
        assert!(r.names().is_empty());
    }

    #[test]
    fn partitions_are_registered() {
        let d = MemDevice::new(8192);
        crate::part::write_gpt(
            &d,
            [1; 16],
            &[crate::part::GptEntryRepr {
                type_guid: [3; 16],
                unique_guid: [4; 16],
                first_lba: 2048,
                last_lba: 4095,
                attributes: 0,
            }],
        )
        .unwrap();
        let r = Registry::new();
        let names = r
            .register_with_partitions("/dev/disk0", Arc::new(d))
            .unwrap();
        assert_eq!(names, ["/dev/disk0", "/dev/disk0p1"]);
        assert_eq!(r.lookup("/dev/disk0p1").unwrap().sectors(), 2048);
        r.remove("/dev/disk0").unwrap();
        assert!(r.names().is_empty());
    }
}
