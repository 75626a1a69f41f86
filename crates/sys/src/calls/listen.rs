//! `listen`.

use kern::{Errno, Proc};

use super::socket::with_socket;

/// Makes a stream socket accept connections, holding up to `backlog`
/// completed ones (at least 1, at most `SOMAXCONN`) until `accept`.
pub fn listen(p: &Proc, fd: i32, backlog: i32) -> Result<(), Errno> {
    with_socket(p, fd, |s, _| s.listen(backlog))
}
