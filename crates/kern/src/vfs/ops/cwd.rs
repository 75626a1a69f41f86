//! The working directory's path (`getcwd`) and the path of any directory.

use alloc::vec::Vec;

use hyper::Errno;

use crate::proc::Proc;
use crate::vfs::namei::LookupCtx;
use crate::vfs::Vnode;

use super::Caller;

/// The working directory as a path from the process root.
pub fn getcwd(p: &Proc) -> Result<Vec<u8>, Errno> {
    let caller = Caller::of(p)?;
    let ctx = caller.ctx(p, None);
    path_of(&ctx, &caller.dirs.cwd)
}

/// The path of directory `v` as seen from the process root, by walking
/// `..` and finding each directory's name in its parent.
pub fn path_of(ctx: &LookupCtx<'_>, v: &Vnode) -> Result<Vec<u8>, Errno> {
    let mut parts: Vec<Vec<u8>> = Vec::new();
    let mut cur = v.clone();
    let mut reachable = true;
    for _ in 0..4096 {
        if cur.same(&ctx.dirs.root) {
            break;
        }
        // Step out of mount roots to the covered directory, whose name is
        // in its own parent.
        let mut named = cur.clone();
        while named.is_mount_root() {
            match named.mnt.covered() {
                Some(c) => named = c.clone(),
                None => break,
            }
        }
        if named.is_mount_root() && named.mnt.covered().is_none() {
            // The real root, but not the process root: outside a chroot.
            reachable = false;
            break;
        }
        let parent = named.child(named.node.lookup(b"..")?);
        let ino = named.node.ino();
        let mut found = None;
        parent.node.readdir(0, &mut |e| {
            if e.ino == ino && e.name != b"." && e.name != b".." {
                found = Some(e.name.to_vec());
                false
            } else {
                true
            }
        })?;
        parts.push(found.ok_or(Errno::ENOENT)?);
        cur = parent;
    }
    let mut out = Vec::new();
    if !reachable {
        out.extend_from_slice(b"(unreachable)");
    }
    for part in parts.iter().rev() {
        out.push(b'/');
        out.extend_from_slice(part);
    }
    if out.is_empty() || !reachable && parts.is_empty() {
        out.push(b'/');
    }
    Ok(out)
}
