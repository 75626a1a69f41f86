//! `setsockopt` and `getsockopt`, with typed values ([`SockOpt`]).

use kern::{Errno, Proc};
use net::SockOpt;

use super::socket::with_socket;

/// Sets an option.
pub fn setsockopt(p: &Proc, fd: i32, opt: SockOpt) -> Result<(), Errno> {
    with_socket(p, fd, |s, _| s.set_option(opt))
}

/// Reads an option by Linux `(level, name)`; `SO_ERROR` also clears the
/// pending error.
pub fn getsockopt(p: &Proc, fd: i32, level: i32, name: i32) -> Result<SockOpt, Errno> {
    with_socket(p, fd, |s, _| s.option(level, name))
}
