//! `shutdown`.

use kern::{Errno, Proc};

use super::socket::with_socket;

/// Shuts down reading (`SHUT_RD`), writing (`SHUT_WR`, sends FIN) or both.
pub fn shutdown(p: &Proc, fd: i32, how: i32) -> Result<(), Errno> {
    with_socket(p, fd, |s, _| s.shutdown(how))
}
