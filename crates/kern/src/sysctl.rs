//! A tree of named kernel parameters, like `sysctl(8)`.
//!
//! Nodes are dotted names (`kern.hostname`, `net.inet.ip.forwarding`) with
//! an integer or string value, readable by anyone and writable by root when
//! the node allows. Components add their own nodes at init.

use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use hyper::Errno;

use crate::sync::SpinMutex;

/// The value of a node.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SysctlValue {
    Int(i64),
    Str(String),
}

impl core::fmt::Display for SysctlValue {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SysctlValue::Int(i) => write!(f, "{i}"),
            SysctlValue::Str(s) => f.write_str(s),
        }
    }
}

struct Node {
    value: SysctlValue,
    writable: bool,
    /// Inclusive bounds for integers.
    range: Option<(i64, i64)>,
}

/// The parameter tree of one kernel.
pub struct Sysctl {
    nodes: SpinMutex<BTreeMap<String, Node>>,
}

/// The longest host name `kern.hostname` takes (Linux's `HOST_NAME_MAX`).
pub const HOST_NAME_MAX: usize = 64;

impl Sysctl {
    pub(crate) fn new() -> Self {
        Sysctl {
            nodes: SpinMutex::new(BTreeMap::new()),
        }
    }

    pub(crate) fn install_base(&self) {
        self.add_str("kern.ostype", "rump-rs", false);
        self.add_str("kern.osrelease", env_version(), false);
        self.add_str("kern.version", "rump-rs anykernel", false);
        self.add_str("kern.hostname", "rump", true);
        self.add_str("kern.domainname", "(none)", true);
        self.add_int(
            "kern.maxfiles",
            crate::fd::DEFAULT_MAX_FDS as i64,
            false,
            None,
        );
    }

    /// Sets the boot parameters: after every component has added its
    /// nodes, so `net.inet.ip.forwarding` exists when it is set.
    pub(crate) fn apply_params(&self, params: &[(String, String)]) -> Result<(), Errno> {
        for (name, value) in params {
            self.set_from_str(name, value)?;
        }
        Ok(())
    }

    /// Adds (or replaces) a string node.
    pub fn add_str(&self, name: &str, value: &str, writable: bool) {
        self.nodes.lock().insert(
            name.to_string(),
            Node {
                value: SysctlValue::Str(value.to_string()),
                writable,
                range: None,
            },
        );
    }

    /// Adds (or replaces) an integer node with optional inclusive bounds.
    pub fn add_int(&self, name: &str, value: i64, writable: bool, range: Option<(i64, i64)>) {
        self.nodes.lock().insert(
            name.to_string(),
            Node {
                value: SysctlValue::Int(value),
                writable,
                range,
            },
        );
    }

    /// Reads a node.
    pub fn get(&self, name: &str) -> Result<SysctlValue, Errno> {
        self.nodes
            .lock()
            .get(name)
            .map(|n| n.value.clone())
            .ok_or(Errno::ENOENT)
    }

    /// Reads an integer node (0 if absent or not an integer).
    pub fn get_int(&self, name: &str) -> i64 {
        match self.get(name) {
            Ok(SysctlValue::Int(i)) => i,
            _ => 0,
        }
    }

    /// Writes a node. `EPERM` for read-only nodes, `EINVAL` for a value of
    /// the wrong kind or out of range, `ENOENT` for unknown names.
    pub fn set(&self, name: &str, value: SysctlValue) -> Result<(), Errno> {
        let mut nodes = self.nodes.lock();
        let node = nodes.get_mut(name).ok_or(Errno::ENOENT)?;
        if !node.writable {
            return Err(Errno::EPERM);
        }
        match (&node.value, &value) {
            (SysctlValue::Int(_), SysctlValue::Int(v)) => {
                if let Some((lo, hi)) = node.range {
                    if *v < lo || *v > hi {
                        return Err(Errno::EINVAL);
                    }
                }
            }
            (SysctlValue::Str(_), SysctlValue::Str(s)) => {
                if s.len() > HOST_NAME_MAX {
                    return Err(Errno::EINVAL);
                }
            }
            _ => return Err(Errno::EINVAL),
        }
        node.value = value;
        Ok(())
    }

    /// Writes a node from text, parsing integers for integer nodes. Used
    /// for boot parameters, where read-only nodes may be set too.
    pub fn set_from_str(&self, name: &str, text: &str) -> Result<(), Errno> {
        let mut nodes = self.nodes.lock();
        let node = nodes.get_mut(name).ok_or(Errno::ENOENT)?;
        node.value = match node.value {
            SysctlValue::Int(_) => {
                let v: i64 = text.trim().parse().map_err(|_| Errno::EINVAL)?;
                if let Some((lo, hi)) = node.range {
                    if v < lo || v > hi {
                        return Err(Errno::EINVAL);
                    }
                }
                SysctlValue::Int(v)
            }
            SysctlValue::Str(_) => SysctlValue::Str(text.to_string()),
        };
        Ok(())
    }

    /// All nodes whose names start with `prefix`, in order.
    pub fn list(&self, prefix: &str) -> Vec<(String, SysctlValue)> {
        self.nodes
            .lock()
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, n)| (k.clone(), n.value.clone()))
            .collect()
    }
}

fn env_version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}
