//! `uname`.

use alloc::string::{String, ToString};

use kern::{Errno, Proc};

/// What `uname(2)` reports.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Utsname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

/// System identification, from the sysctl tree (`kern.ostype`,
/// `kern.hostname`, `kern.osrelease`, `kern.version`, `kern.domainname`).
pub fn uname(p: &Proc) -> Result<Utsname, Errno> {
    p.kernel().check()?;
    let sc = p.kernel().sysctl();
    let get = |n: &str| sc.get(n).map(|v| v.to_string()).unwrap_or_default();
    Ok(Utsname {
        sysname: get("kern.ostype"),
        nodename: get("kern.hostname"),
        release: get("kern.osrelease"),
        version: get("kern.version"),
        machine: machine().to_string(),
        domainname: get("kern.domainname"),
    })
}

fn machine() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "x86_64"
    } else if cfg!(target_arch = "aarch64") {
        "aarch64"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64"
    } else {
        "unknown"
    }
}
