//! Permission checks on vnodes (POSIX.1-2017 §4.5, plus the sticky-bit rule
//! of `unlink(2)` and `rename(2)`).

use hyper::Errno;

use crate::consts::s;
use crate::cred::{Access, Cred};
use crate::vfs::Vnode;

/// `EACCES` unless `cred` may access `v` as `want`.
pub fn check(cred: &Cred, v: &Vnode, want: Access) -> Result<(), Errno> {
    let st = v.node.getattr()?;
    if cred.may_access(st.mode, st.uid, st.gid, want) {
        Ok(())
    } else {
        Err(Errno::EACCES)
    }
}

/// Checks that `cred` may remove or rename the entry `victim` from the
/// directory `dir`: write and search permission on `dir`, and with the
/// sticky bit set, ownership of `victim` or `dir`.
pub fn check_delete(cred: &Cred, dir: &Vnode, victim: &Vnode) -> Result<(), Errno> {
    let dst = dir.node.getattr()?;
    if !cred.may_access(
        dst.mode,
        dst.uid,
        dst.gid,
        Access::WRITE.union(Access::EXEC),
    ) {
        return Err(Errno::EACCES);
    }
    if dst.mode & s::ISVTX != 0 && !cred.owns(dst.uid) {
        let vst = victim.node.getattr()?;
        if !cred.owns(vst.uid) {
            return Err(Errno::EPERM);
        }
    }
    Ok(())
}
