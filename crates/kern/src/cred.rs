//! Credentials and the POSIX permission rules.
//!
//! [`Cred`] is what a process acts as: user, group, supplementary groups.
//! [`Cred::may_access`] applies the owner/group/other classes of
//! POSIX.1-2017 §4.5 with the superuser's bypass: root may read and write
//! anything, and execute (search) anything that is a directory or has at
//! least one execute bit.

use alloc::vec::Vec;

use crate::consts::s;

/// Permission being asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access(pub u8);

impl Access {
    pub const READ: Access = Access(4);
    pub const WRITE: Access = Access(2);
    pub const EXEC: Access = Access(1);
    pub const NONE: Access = Access(0);

    /// Both sets of permissions.
    pub const fn union(self, other: Access) -> Access {
        Access(self.0 | other.0)
    }
}

/// The identity a process acts as.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cred {
    pub uid: u32,
    pub gid: u32,
    pub euid: u32,
    pub egid: u32,
    pub groups: Vec<u32>,
}

impl Cred {
    /// The superuser.
    pub fn root() -> Cred {
        Cred::user(0, 0)
    }

    /// An ordinary user with no supplementary groups.
    pub fn user(uid: u32, gid: u32) -> Cred {
        Cred {
            uid,
            gid,
            euid: uid,
            egid: gid,
            groups: Vec::new(),
        }
    }

    /// Whether the effective user is the superuser.
    pub fn is_root(&self) -> bool {
        self.euid == 0
    }

    /// Whether `gid` is the effective group or a supplementary group.
    pub fn in_group(&self, gid: u32) -> bool {
        self.egid == gid || self.groups.contains(&gid)
    }

    /// Whether these credentials may access a file of the given mode and
    /// ownership in the way `want` says.
    pub fn may_access(&self, mode: u32, uid: u32, gid: u32, want: Access) -> bool {
        self.may_access_as(self.euid, mode, uid, gid, want, true)
    }

    /// Like [`Cred::may_access`] but with the real ids, as `access(2)`
    /// checks without `AT_EACCESS`.
    pub fn may_access_real(&self, mode: u32, uid: u32, gid: u32, want: Access) -> bool {
        self.may_access_as(self.uid, mode, uid, gid, want, false)
    }

    fn may_access_as(
        &self,
        who: u32,
        mode: u32,
        uid: u32,
        gid: u32,
        want: Access,
        effective: bool,
    ) -> bool {
        if who == 0 {
            if want.0 & Access::EXEC.0 == 0 {
                return true;
            }
            return mode & s::IFMT == s::IFDIR || mode & 0o111 != 0;
        }
        let bits = if who == uid {
            (mode >> 6) & 7
        } else if (effective && self.in_group(gid))
            || (!effective && (self.gid == gid || self.groups.contains(&gid)))
        {
            (mode >> 3) & 7
        } else {
            mode & 7
        };
        (bits as u8) & want.0 == want.0
    }

    /// Whether these credentials own a file with owner `uid` (or are root):
    /// the test for chmod, utimes with explicit times, and the sticky bit.
    pub fn owns(&self, uid: u32) -> bool {
        self.euid == 0 || self.euid == uid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let u = Cred {
            groups: alloc::vec![20],
            ..Cred::user(1000, 100)
        };
        assert!(u.may_access(0o600, 1000, 0, Access::READ));
        assert!(!u.may_access(0o060, 1000, 100, Access::READ)); // owner class wins
        assert!(u.may_access(0o040, 1, 20, Access::READ)); // supplementary group
        assert!(!u.may_access(0o004, 1, 20, Access::READ));
        assert!(u.may_access(0o004, 1, 1, Access::READ));
    }

    #[test]
    fn root_bypass() {
        let r = Cred::root();
        assert!(r.may_access(0o000, 5, 5, Access::READ.union(Access::WRITE)));
        assert!(!r.may_access(s::IFREG, 5, 5, Access::EXEC));
        assert!(r.may_access(s::IFREG | 0o001, 5, 5, Access::EXEC));
        assert!(r.may_access(s::IFDIR, 5, 5, Access::EXEC));
    }
}
