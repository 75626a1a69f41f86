//! `truncate`, `ftruncate`.

use kern::cred::Access;
use kern::vfs::{perm, NodeKind, SetAttr, Vnode};
use kern::{Cred, Errno, Proc};

use crate::util::{remove_privs, with_at};

/// Sets the size of the file `path`.
pub fn truncate(p: &Proc, path: &[u8], len: i64) -> Result<(), Errno> {
    let len = u64::try_from(len).map_err(|_| Errno::EINVAL)?;
    with_at(p, kern::consts::at::FDCWD, path, |env, ctx| {
        let vn = ctx.lookup(path, true)?;
        match vn.kind() {
            NodeKind::Directory => return Err(Errno::EISDIR),
            NodeKind::Regular => {}
            _ => return Err(Errno::EINVAL),
        }
        perm::check(&env.cred, &vn, Access::WRITE)?;
        resize(&env.cred, &vn, len)
    })
}

/// Sets the size of an open file, which must be open for writing.
pub fn ftruncate(p: &Proc, fd: i32, len: i64) -> Result<(), Errno> {
    p.kernel().check()?;
    let len = u64::try_from(len).map_err(|_| Errno::EINVAL)?;
    let f = p.file(fd)?;
    let vn = f.vnode().ok_or(Errno::EINVAL)?;
    if vn.kind() != NodeKind::Regular || !f.is_writable() {
        return Err(Errno::EINVAL);
    }
    resize(&p.cred(), vn, len)
}

fn resize(cred: &Cred, vn: &Vnode, len: u64) -> Result<(), Errno> {
    vn.check_writable_mount()?;
    remove_privs(cred, vn)?;
    vn.node.setattr(&SetAttr {
        size: Some(len),
        ..SetAttr::default()
    })
}
