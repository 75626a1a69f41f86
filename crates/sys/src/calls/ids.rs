//! `getpid`, `getppid`, `getuid`, `geteuid`, `getgid`, `getegid`,
//! `getgroups`, `setuid`, `setgid`, `setgroups`.

use alloc::vec::Vec;

use kern::{Errno, Proc};

/// Most supplementary groups (`NGROUPS_MAX` on Linux).
pub const NGROUPS_MAX: usize = 65536;

/// The process id.
pub fn getpid(p: &Proc) -> Result<i32, Errno> {
    p.kernel().check()?;
    Ok(p.pid())
}

/// The parent's process id.
pub fn getppid(p: &Proc) -> Result<i32, Errno> {
    p.kernel().check()?;
    Ok(p.ppid())
}

/// The real user id.
pub fn getuid(p: &Proc) -> Result<u32, Errno> {
    p.kernel().check()?;
    Ok(p.cred().uid)
}

/// The effective user id.
pub fn geteuid(p: &Proc) -> Result<u32, Errno> {
    p.kernel().check()?;
    Ok(p.cred().euid)
}

/// The real group id.
pub fn getgid(p: &Proc) -> Result<u32, Errno> {
    p.kernel().check()?;
    Ok(p.cred().gid)
}

/// The effective group id.
pub fn getegid(p: &Proc) -> Result<u32, Errno> {
    p.kernel().check()?;
    Ok(p.cred().egid)
}

/// The supplementary groups.
pub fn getgroups(p: &Proc) -> Result<Vec<u32>, Errno> {
    p.kernel().check()?;
    Ok(p.cred().groups.clone())
}

/// Sets the user id: root sets real and effective ids; others may only
/// set the effective id to the real one.
pub fn setuid(p: &Proc, uid: u32) -> Result<(), Errno> {
    p.kernel().check()?;
    if uid == u32::MAX {
        return Err(Errno::EINVAL);
    }
    let mut c = (*p.cred()).clone();
    if c.is_root() {
        c.uid = uid;
        c.euid = uid;
    } else if uid == c.uid {
        c.euid = uid;
    } else {
        return Err(Errno::EPERM);
    }
    p.set_cred(c);
    Ok(())
}

/// Sets the group id, with the rules of [`setuid`].
pub fn setgid(p: &Proc, gid: u32) -> Result<(), Errno> {
    p.kernel().check()?;
    if gid == u32::MAX {
        return Err(Errno::EINVAL);
    }
    let mut c = (*p.cred()).clone();
    if c.is_root() {
        c.gid = gid;
        c.egid = gid;
    } else if gid == c.gid {
        c.egid = gid;
    } else {
        return Err(Errno::EPERM);
    }
    p.set_cred(c);
    Ok(())
}

/// Replaces the supplementary groups (root only).
pub fn setgroups(p: &Proc, groups: &[u32]) -> Result<(), Errno> {
    p.kernel().check()?;
    if groups.len() > NGROUPS_MAX {
        return Err(Errno::EINVAL);
    }
    let mut c = (*p.cred()).clone();
    if !c.is_root() {
        return Err(Errno::EPERM);
    }
    c.groups = groups.to_vec();
    p.set_cred(c);
    Ok(())
}
