//! `sysctl`: read and write kernel parameters by name.

use alloc::string::String;
use alloc::vec::Vec;

use kern::sysctl::SysctlValue;
use kern::{Errno, Proc};

/// Reads a parameter.
pub fn sysctl_get(p: &Proc, name: &str) -> Result<SysctlValue, Errno> {
    p.kernel().check()?;
    p.kernel().sysctl().get(name)
}

/// Writes a parameter (root only).
pub fn sysctl_set(p: &Proc, name: &str, value: SysctlValue) -> Result<(), Errno> {
    p.kernel().check()?;
    if !p.cred().is_root() {
        return Err(Errno::EPERM);
    }
    p.kernel().sysctl().set(name, value)
}

/// Lists the parameters under `prefix`.
pub fn sysctl_list(p: &Proc, prefix: &str) -> Result<Vec<(String, SysctlValue)>, Errno> {
    p.kernel().check()?;
    Ok(p.kernel().sysctl().list(prefix))
}

/// Sets the host name (`kern.hostname`), root only.
pub fn sethostname(p: &Proc, name: &[u8]) -> Result<(), Errno> {
    let name = core::str::from_utf8(name).map_err(|_| Errno::EINVAL)?;
    sysctl_set(p, "kern.hostname", SysctlValue::Str(name.into()))
}
