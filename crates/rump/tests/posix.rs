//! POSIX semantics of the system-call layer, through the `rump` facade.
//!
//! One test per behaviour; error cases assert the exact errno (Linux
//! numbering). Where Linux and POSIX allow a choice, these tests pin what
//! Linux does.

mod common;

use std::time::{Duration, Instant};

use common::{boot, get, list, names, put, with_watchdog};
use rump::kern::sysctl::SysctlValue;
use rump::sys::consts::{access, at, dt, f, o, poll, s, seek};
use rump::sys::{self, PollFd, TimeArg};
use rump::{Cred, Errno, ForkFds, Kernel, Process};

const TMPFS_MAGIC: u64 = 0x0102_1994;

fn user(k: &Kernel, uid: u32) -> Process {
    k.process_as(Cred::user(uid, uid)).unwrap()
}

fn mode_of(p: &Process, path: &[u8]) -> u32 {
    sys::lstat(p, path).unwrap().mode
}

fn mount_tmpfs(p: &Process, target: &[u8], opts: &[u8]) {
    sys::mount(p, b"tmpfs", target, b"tmpfs", 0, opts).unwrap();
}

// ----- ENOENT -------------------------------------------------------------

#[test]
fn open_of_missing_file_is_enoent() {
    let (_k, p) = boot();
    assert_eq!(sys::open(&p, b"/missing", o::RDONLY, 0), Err(Errno::ENOENT));
    assert_eq!(sys::stat(&p, b"/missing"), Err(Errno::ENOENT));
}

#[test]
fn missing_directory_in_path_is_enoent() {
    let (_k, p) = boot();
    let creat = o::WRONLY | o::CREAT;
    assert_eq!(sys::open(&p, b"/nodir/f", creat, 0o644), Err(Errno::ENOENT));
    assert_eq!(sys::mkdir(&p, b"/nodir/sub", 0o755), Err(Errno::ENOENT));
    assert_eq!(sys::symlink(&p, b"x", b"/nodir/l"), Err(Errno::ENOENT));
}

#[test]
fn removing_or_renaming_a_missing_name_is_enoent() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    assert_eq!(sys::unlink(&p, b"/missing"), Err(Errno::ENOENT));
    assert_eq!(sys::rmdir(&p, b"/missing"), Err(Errno::ENOENT));
    assert_eq!(sys::rename(&p, b"/missing", b"/x"), Err(Errno::ENOENT));
    assert_eq!(sys::link(&p, b"/missing", b"/x"), Err(Errno::ENOENT));
    assert_eq!(sys::readlink(&p, b"/missing"), Err(Errno::ENOENT));
}

#[test]
fn dangling_symlink_is_enoent_but_lstat_sees_the_link() {
    let (_k, p) = boot();
    sys::symlink(&p, b"/nowhere", b"/dangling").unwrap();
    assert_eq!(sys::stat(&p, b"/dangling"), Err(Errno::ENOENT));
    assert_eq!(
        sys::open(&p, b"/dangling", o::RDONLY, 0),
        Err(Errno::ENOENT)
    );
    assert_eq!(mode_of(&p, b"/dangling") & s::IFMT, s::IFLNK);
    assert_eq!(sys::readlink(&p, b"/dangling").unwrap(), b"/nowhere");
}

#[test]
fn open_creat_through_a_dangling_symlink_creates_its_target() {
    let (_k, p) = boot();
    sys::symlink(&p, b"target", b"/link").unwrap();
    let fd = sys::open(&p, b"/link", o::WRONLY | o::CREAT, 0o644).unwrap();
    sys::write(&p, fd, b"via link").unwrap();
    sys::close(&p, fd).unwrap();
    assert_eq!(get(&p, b"/target").unwrap(), b"via link");
}

#[test]
fn empty_path_is_enoent() {
    let (_k, p) = boot();
    assert_eq!(sys::open(&p, b"", o::RDONLY, 0), Err(Errno::ENOENT));
    assert_eq!(sys::stat(&p, b""), Err(Errno::ENOENT));
    assert_eq!(sys::mkdir(&p, b"", 0o755), Err(Errno::ENOENT));
}

// ----- EEXIST -------------------------------------------------------------

#[test]
fn open_creat_excl_on_existing_name_is_eexist() {
    let (_k, p) = boot();
    put(&p, b"/f", b"x");
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    sys::symlink(&p, b"/nowhere", b"/dangling").unwrap();
    let fl = o::WRONLY | o::CREAT | o::EXCL;
    assert_eq!(sys::open(&p, b"/f", fl, 0o644), Err(Errno::EEXIST));
    assert_eq!(sys::open(&p, b"/d", fl, 0o644), Err(Errno::EEXIST));
    // O_EXCL does not follow a final symlink, not even a dangling one.
    assert_eq!(sys::open(&p, b"/dangling", fl, 0o644), Err(Errno::EEXIST));
    assert_eq!(sys::stat(&p, b"/nowhere"), Err(Errno::ENOENT));
}

#[test]
fn mkdir_on_existing_name_is_eexist() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    sys::symlink(&p, b"/d", b"/l").unwrap();
    assert_eq!(sys::mkdir(&p, b"/f", 0o755), Err(Errno::EEXIST));
    assert_eq!(sys::mkdir(&p, b"/d", 0o755), Err(Errno::EEXIST));
    assert_eq!(sys::mkdir(&p, b"/l", 0o755), Err(Errno::EEXIST));
    assert_eq!(sys::mkdir(&p, b"/", 0o755), Err(Errno::EEXIST));
    assert_eq!(sys::mkdir(&p, b"/d/.", 0o755), Err(Errno::EEXIST));
}

#[test]
fn link_and_symlink_onto_existing_name_are_eexist() {
    let (_k, p) = boot();
    put(&p, b"/a", b"");
    put(&p, b"/b", b"");
    assert_eq!(sys::link(&p, b"/a", b"/b"), Err(Errno::EEXIST));
    assert_eq!(sys::symlink(&p, b"/a", b"/b"), Err(Errno::EEXIST));
}

// ----- ENOTDIR ------------------------------------------------------------

#[test]
fn file_used_as_a_directory_is_enotdir() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    assert_eq!(sys::open(&p, b"/f/x", o::RDONLY, 0), Err(Errno::ENOTDIR));
    assert_eq!(
        sys::open(&p, b"/f/x", o::WRONLY | o::CREAT, 0o644),
        Err(Errno::ENOTDIR)
    );
    assert_eq!(sys::mkdir(&p, b"/f/x", 0o755), Err(Errno::ENOTDIR));
    assert_eq!(sys::stat(&p, b"/f/"), Err(Errno::ENOTDIR));
    assert_eq!(sys::open(&p, b"/f/", o::RDONLY, 0), Err(Errno::ENOTDIR));
}

#[test]
fn o_directory_on_a_file_is_enotdir() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    assert_eq!(
        sys::open(&p, b"/f", o::RDONLY | o::DIRECTORY, 0),
        Err(Errno::ENOTDIR)
    );
}

#[test]
fn o_directory_with_o_nofollow_on_a_symlink_is_enotdir() {
    // Linux checks O_DIRECTORY before refusing the symlink with ELOOP.
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    sys::symlink(&p, b"/d", b"/l").unwrap();
    assert_eq!(
        sys::open(&p, b"/l", o::RDONLY | o::DIRECTORY | o::NOFOLLOW, 0),
        Err(Errno::ENOTDIR)
    );
}

#[test]
fn rmdir_of_a_file_is_enotdir() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    assert_eq!(sys::rmdir(&p, b"/f"), Err(Errno::ENOTDIR));
}

#[test]
fn rename_of_a_directory_over_a_file_is_enotdir() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    put(&p, b"/f", b"");
    assert_eq!(sys::rename(&p, b"/d", b"/f"), Err(Errno::ENOTDIR));
    // A trailing slash on a file name is ENOTDIR too.
    assert_eq!(sys::rename(&p, b"/f", b"/g/"), Err(Errno::ENOTDIR));
    assert_eq!(sys::unlink(&p, b"/f/"), Err(Errno::ENOTDIR));
}

// ----- EISDIR -------------------------------------------------------------

#[test]
fn opening_a_directory_for_writing_is_eisdir() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::open(&p, b"/d", o::WRONLY, 0), Err(Errno::EISDIR));
    assert_eq!(sys::open(&p, b"/d", o::RDWR, 0), Err(Errno::EISDIR));
    assert_eq!(
        sys::open(&p, b"/d", o::RDONLY | o::TRUNC, 0),
        Err(Errno::EISDIR)
    );
    assert!(sys::open(&p, b"/d", o::RDONLY, 0).is_ok());
}

#[test]
fn open_creat_on_an_existing_directory_is_eisdir() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(
        sys::open(&p, b"/d", o::RDONLY | o::CREAT, 0o644),
        Err(Errno::EISDIR)
    );
    assert_eq!(
        sys::open(&p, b"/new/", o::WRONLY | o::CREAT, 0o644),
        Err(Errno::EISDIR)
    );
}

#[test]
fn unlink_of_a_directory_is_eisdir() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::unlink(&p, b"/d"), Err(Errno::EISDIR));
    assert!(sys::stat(&p, b"/d").is_ok());
}

#[test]
fn reading_a_directory_descriptor_is_eisdir() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    let fd = sys::open(&p, b"/d", o::RDONLY | o::DIRECTORY, 0).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sys::read(&p, fd, &mut buf), Err(Errno::EISDIR));
    assert_eq!(sys::pread(&p, fd, &mut buf, 0), Err(Errno::EISDIR));
}

#[test]
fn rename_of_a_file_over_a_directory_is_eisdir() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    put(&p, b"/f", b"");
    assert_eq!(sys::rename(&p, b"/f", b"/d"), Err(Errno::EISDIR));
}

#[test]
fn truncate_of_a_directory_is_eisdir() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::truncate(&p, b"/d", 0), Err(Errno::EISDIR));
}

// ----- ENOTEMPTY ----------------------------------------------------------

#[test]
fn rmdir_of_a_nonempty_directory_is_enotempty() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    put(&p, b"/d/f", b"");
    assert_eq!(sys::rmdir(&p, b"/d"), Err(Errno::ENOTEMPTY));
    sys::unlink(&p, b"/d/f").unwrap();
    sys::rmdir(&p, b"/d").unwrap();
    assert_eq!(sys::stat(&p, b"/d"), Err(Errno::ENOENT));
}

#[test]
fn rename_over_a_nonempty_directory_is_enotempty() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/a", 0o755).unwrap();
    sys::mkdir(&p, b"/b", 0o755).unwrap();
    put(&p, b"/b/f", b"");
    assert_eq!(sys::rename(&p, b"/a", b"/b"), Err(Errno::ENOTEMPTY));
    // Over an empty directory it replaces it.
    sys::unlink(&p, b"/b/f").unwrap();
    let ino = sys::stat(&p, b"/a").unwrap().ino;
    sys::rename(&p, b"/a", b"/b").unwrap();
    assert_eq!(sys::stat(&p, b"/b").unwrap().ino, ino);
    assert_eq!(sys::stat(&p, b"/a"), Err(Errno::ENOENT));
}

#[test]
fn rmdir_of_dot_and_dotdot() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::rmdir(&p, b"/d/."), Err(Errno::EINVAL));
    assert_eq!(sys::rmdir(&p, b"/d/.."), Err(Errno::ENOTEMPTY));
    assert_eq!(sys::rmdir(&p, b"/"), Err(Errno::EBUSY));
}

// ----- EXDEV --------------------------------------------------------------

#[test]
fn rename_across_mounts_is_exdev() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt", b"");
    put(&p, b"/f", b"data");
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::rename(&p, b"/f", b"/mnt/f"), Err(Errno::EXDEV));
    assert_eq!(sys::rename(&p, b"/d", b"/mnt/d"), Err(Errno::EXDEV));
    put(&p, b"/mnt/g", b"");
    assert_eq!(sys::rename(&p, b"/mnt/g", b"/g"), Err(Errno::EXDEV));
    assert_eq!(get(&p, b"/f").unwrap(), b"data");
}

#[test]
fn hard_link_across_mounts_is_exdev() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt", b"");
    put(&p, b"/f", b"");
    assert_eq!(sys::link(&p, b"/f", b"/mnt/f"), Err(Errno::EXDEV));
}

// ----- EACCES and EPERM for a non-root process ----------------------------

#[test]
fn user_cannot_open_a_private_root_file_eacces() {
    let (k, root) = boot();
    put(&root, b"/secret", b"s");
    sys::chmod(&root, b"/secret", 0o600).unwrap();
    let u = user(&k, 1000);
    assert_eq!(sys::open(&u, b"/secret", o::RDONLY, 0), Err(Errno::EACCES));
    assert_eq!(sys::open(&u, b"/secret", o::WRONLY, 0), Err(Errno::EACCES));
    assert_eq!(sys::truncate(&u, b"/secret", 0), Err(Errno::EACCES));
    // Readable by others, but still not writable.
    sys::chmod(&root, b"/secret", 0o644).unwrap();
    assert!(sys::open(&u, b"/secret", o::RDONLY, 0).is_ok());
    assert_eq!(sys::open(&u, b"/secret", o::RDWR, 0), Err(Errno::EACCES));
}

#[test]
fn user_cannot_create_or_remove_in_a_root_directory_eacces() {
    let (k, root) = boot();
    sys::mkdir(&root, b"/ro", 0o755).unwrap();
    put(&root, b"/ro/f", b"");
    let u = user(&k, 1000);
    let creat = o::WRONLY | o::CREAT;
    assert_eq!(sys::open(&u, b"/ro/new", creat, 0o644), Err(Errno::EACCES));
    assert_eq!(sys::mkdir(&u, b"/ro/sub", 0o755), Err(Errno::EACCES));
    assert_eq!(sys::symlink(&u, b"x", b"/ro/l"), Err(Errno::EACCES));
    assert_eq!(sys::unlink(&u, b"/ro/f"), Err(Errno::EACCES));
    assert_eq!(sys::rename(&u, b"/ro/f", b"/ro/g"), Err(Errno::EACCES));
}

#[test]
fn missing_search_permission_on_a_directory_is_eacces() {
    let (k, root) = boot();
    sys::mkdir(&root, b"/private", 0o700).unwrap();
    put(&root, b"/private/f", b"");
    sys::chmod(&root, b"/private/f", 0o644).unwrap();
    let u = user(&k, 1000);
    assert_eq!(sys::stat(&u, b"/private/f"), Err(Errno::EACCES));
    assert_eq!(
        sys::open(&u, b"/private/f", o::RDONLY, 0),
        Err(Errno::EACCES)
    );
    assert_eq!(sys::chdir(&u, b"/private"), Err(Errno::EACCES));
    // The directory itself can be stat'ed (search on / is enough).
    assert!(sys::stat(&u, b"/private").is_ok());
    // Read without search: listing works, lookups do not.
    sys::chmod(&root, b"/private", 0o744).unwrap();
    assert_eq!(names(&u, b"/private").unwrap(), vec![b"f".to_vec()]);
    assert_eq!(sys::stat(&u, b"/private/f"), Err(Errno::EACCES));
}

#[test]
fn the_parent_of_a_new_name_needs_search_permission_eacces() {
    // Linux checks search permission on the directory that would hold the
    // last component before anything else about that component.
    let (k, _root) = boot();
    let u = user(&k, 1000);
    sys::mkdir(&u, b"/d", 0o777).unwrap();
    sys::chmod(&u, b"/d", 0o644).unwrap();
    put(&u, b"/f", b"");
    assert_eq!(sys::rename(&u, b"/missing", b"/d/x"), Err(Errno::EACCES));
    assert_eq!(sys::rename(&u, b"/f", b"/d/x"), Err(Errno::EACCES));
    assert_eq!(sys::link(&u, b"/f", b"/d/x"), Err(Errno::EACCES));
    let long = [&b"/d/"[..], &[b'n'; 300]].concat();
    assert_eq!(sys::mkdir(&u, &long, 0o755), Err(Errno::EACCES));
}

#[test]
fn user_cannot_chmod_or_chown_files_of_others_eperm() {
    let (k, root) = boot();
    put(&root, b"/f", b"");
    let u = user(&k, 1000);
    assert_eq!(sys::chmod(&u, b"/f", 0o777), Err(Errno::EPERM));
    assert_eq!(sys::chown(&u, b"/f", 1000, 1000), Err(Errno::EPERM));
    assert_eq!(
        sys::chown(&u, b"/f", sys::NO_CHANGE, 1000),
        Err(Errno::EPERM)
    );
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o644);
}

#[test]
fn sticky_directory_protects_files_of_others_eperm() {
    let (k, root) = boot();
    sys::mkdir(&root, b"/tmp", 0o777).unwrap();
    sys::chmod(&root, b"/tmp", 0o1777).unwrap();
    let alice = user(&k, 1000);
    let bob = user(&k, 1001);
    put(&alice, b"/tmp/alice", b"");
    assert_eq!(sys::unlink(&bob, b"/tmp/alice"), Err(Errno::EPERM));
    assert_eq!(
        sys::rename(&bob, b"/tmp/alice", b"/tmp/x"),
        Err(Errno::EPERM)
    );
    put(&bob, b"/tmp/bob", b"");
    assert_eq!(
        sys::rename(&bob, b"/tmp/bob", b"/tmp/alice"),
        Err(Errno::EPERM)
    );
    sys::unlink(&alice, b"/tmp/alice").unwrap();
    sys::unlink(&root, b"/tmp/bob").unwrap();
}

#[test]
fn privileged_calls_as_user_are_eperm() {
    let (k, root) = boot();
    sys::mkdir(&root, b"/mnt", 0o755).unwrap();
    let u = user(&k, 1000);
    assert_eq!(
        sys::mount(&u, b"tmpfs", b"/mnt", b"tmpfs", 0, b""),
        Err(Errno::EPERM)
    );
    mount_tmpfs(&root, b"/mnt", b"");
    assert_eq!(sys::umount2(&u, b"/mnt", 0), Err(Errno::EPERM));
    assert_eq!(sys::chroot(&u, b"/mnt"), Err(Errno::EPERM));
    assert_eq!(sys::setgroups(&u, &[1, 2]), Err(Errno::EPERM));
    assert_eq!(
        sys::sysctl_set(&u, "kern.hostname", SysctlValue::Str("x".into())),
        Err(Errno::EPERM)
    );
    assert_eq!(
        sys::mknod(&u, b"/dev0", s::IFCHR | 0o600, 0x0101),
        Err(Errno::EPERM)
    );
}

#[test]
fn root_bypasses_read_write_bits_but_needs_an_exec_bit() {
    let (_k, p) = boot();
    put(&p, b"/f", b"x");
    sys::chmod(&p, b"/f", 0o000).unwrap();
    let fd = sys::open(&p, b"/f", o::RDWR, 0).unwrap();
    sys::close(&p, fd).unwrap();
    assert_eq!(sys::access(&p, b"/f", access::R_OK | access::W_OK), Ok(()));
    assert_eq!(sys::access(&p, b"/f", access::X_OK), Err(Errno::EACCES));
    sys::chmod(&p, b"/f", 0o001).unwrap();
    assert_eq!(sys::access(&p, b"/f", access::X_OK), Ok(()));
    // Directories are always searchable by root.
    sys::mkdir(&p, b"/d", 0o000).unwrap();
    put(&p, b"/d/inner", b"");
    assert_eq!(sys::access(&p, b"/d", access::X_OK), Ok(()));
}

#[test]
fn hard_link_to_a_directory_is_eperm() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::link(&p, b"/d", b"/d2"), Err(Errno::EPERM));
}

// ----- EBADF --------------------------------------------------------------

#[test]
fn closed_descriptor_is_ebadf() {
    let (_k, p) = boot();
    put(&p, b"/f", b"x");
    let fd = sys::open(&p, b"/f", o::RDWR, 0).unwrap();
    sys::close(&p, fd).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(sys::close(&p, fd), Err(Errno::EBADF));
    assert_eq!(sys::read(&p, fd, &mut buf), Err(Errno::EBADF));
    assert_eq!(sys::write(&p, fd, b"x"), Err(Errno::EBADF));
    assert_eq!(sys::fstat(&p, fd), Err(Errno::EBADF));
    assert_eq!(sys::lseek(&p, fd, 0, seek::SET), Err(Errno::EBADF));
    assert_eq!(sys::dup(&p, fd), Err(Errno::EBADF));
    assert_eq!(sys::fcntl(&p, fd, f::GETFD, 0), Err(Errno::EBADF));
    assert_eq!(sys::fsync(&p, fd), Err(Errno::EBADF));
    assert_eq!(sys::fchdir(&p, fd), Err(Errno::EBADF));
}

#[test]
fn writing_a_read_only_descriptor_is_ebadf() {
    let (_k, p) = boot();
    put(&p, b"/f", b"x");
    let r = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    let w = sys::open(&p, b"/f", o::WRONLY, 0).unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(sys::write(&p, r, b"y"), Err(Errno::EBADF));
    assert_eq!(sys::pwrite(&p, r, b"y", 0), Err(Errno::EBADF));
    assert_eq!(sys::read(&p, w, &mut buf), Err(Errno::EBADF));
    assert_eq!(sys::pread(&p, w, &mut buf, 0), Err(Errno::EBADF));
    assert_eq!(get(&p, b"/f").unwrap(), b"x");
}

#[test]
fn relative_path_with_a_bad_dirfd_is_ebadf() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    assert_eq!(sys::openat(&p, 42, b"f", o::RDONLY, 0), Err(Errno::EBADF));
    // An absolute path ignores the descriptor.
    assert!(sys::openat(&p, 42, b"/f", o::RDONLY, 0).is_ok());
    // A file descriptor that is not a directory is ENOTDIR.
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    assert_eq!(sys::openat(&p, fd, b"x", o::RDONLY, 0), Err(Errno::ENOTDIR));
}

// ----- EINVAL: a directory into itself ------------------------------------

#[test]
fn rename_of_a_directory_into_its_own_subdirectory_is_einval() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/a", 0o755).unwrap();
    sys::mkdir(&p, b"/a/b", 0o755).unwrap();
    assert_eq!(sys::rename(&p, b"/a", b"/a/c"), Err(Errno::EINVAL));
    assert_eq!(sys::rename(&p, b"/a", b"/a/b/c"), Err(Errno::EINVAL));
    // Onto itself is a no-op, not an error.
    assert_eq!(sys::rename(&p, b"/a", b"/a"), Ok(()));
    assert!(sys::stat(&p, b"/a/b").is_ok());
}

#[test]
fn rename_onto_an_ancestor_of_the_source_is_enotempty() {
    // Linux's rename "trap": the target may not be an ancestor of the
    // source, whatever the types.
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    sys::mkdir(&p, b"/d/sub", 0o755).unwrap();
    put(&p, b"/d/f", b"");
    put(&p, b"/d/sub/g", b"");
    assert_eq!(sys::rename(&p, b"/d/f", b"/d"), Err(Errno::ENOTEMPTY));
    assert_eq!(sys::rename(&p, b"/d/sub/g", b"/d"), Err(Errno::ENOTEMPTY));
    assert_eq!(sys::rename(&p, b"/d/sub", b"/d"), Err(Errno::ENOTEMPTY));
    assert!(sys::stat(&p, b"/d/sub/g").is_ok());
}

#[test]
fn rename_of_dot_or_dotdot_is_ebusy() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::rename(&p, b"/d/.", b"/x"), Err(Errno::EBUSY));
    assert_eq!(sys::rename(&p, b"/d/..", b"/x"), Err(Errno::EBUSY));
}

// ----- ENAMETOOLONG -------------------------------------------------------

#[test]
fn component_longer_than_name_max_is_enametoolong() {
    let (_k, p) = boot();
    let mut ok = b"/".to_vec();
    ok.extend([b'n'; 255]);
    put(&p, &ok, b"");
    assert!(sys::stat(&p, &ok).is_ok());
    let mut long = b"/".to_vec();
    long.extend([b'n'; 256]);
    let creat = o::WRONLY | o::CREAT;
    assert_eq!(sys::open(&p, &long, creat, 0o644), Err(Errno::ENAMETOOLONG));
    assert_eq!(sys::mkdir(&p, &long, 0o755), Err(Errno::ENAMETOOLONG));
    assert_eq!(sys::stat(&p, &long), Err(Errno::ENAMETOOLONG));
    assert_eq!(sys::symlink(&p, b"x", &long), Err(Errno::ENAMETOOLONG));
}

#[test]
fn path_of_path_max_bytes_is_enametoolong() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    // 4095 bytes: "//" + "./" * 2046 + "f" is fine...
    let mut path = b"//".to_vec();
    while path.len() < 4094 {
        path.extend_from_slice(b"./");
    }
    path.push(b'f');
    assert_eq!(path.len(), 4095);
    assert!(sys::stat(&p, &path).is_ok());
    // ... 4096 bytes is not.
    let mut long = b"/".to_vec();
    long.extend_from_slice(&path);
    assert_eq!(long.len(), 4096);
    assert_eq!(sys::stat(&p, &long), Err(Errno::ENAMETOOLONG));
    assert_eq!(sys::open(&p, &long, o::RDONLY, 0), Err(Errno::ENAMETOOLONG));
    let target = vec![b'x'; 4096];
    assert_eq!(sys::symlink(&p, &target, b"/l"), Err(Errno::ENAMETOOLONG));
}

#[test]
fn symlink_expansion_may_exceed_path_max_in_total() {
    // Linux limits each path and each link body to PATH_MAX - 1 bytes, not
    // the text a walk expands to.
    let (_k, p) = boot();
    let mut deep = b"/".to_vec();
    deep.extend([b'd'; 200]);
    sys::mkdir(&p, &deep, 0o755).unwrap();
    put(&p, &[&deep[..], b"/f"].concat(), b"deep");
    sys::symlink(&p, &deep, b"/l").unwrap();
    // "/l" + "/." * n + "/f": 4094 bytes, expanding to about 4290.
    let mut path = b"/l".to_vec();
    while path.len() < 4092 {
        path.extend_from_slice(b"/.");
    }
    path.extend_from_slice(b"/f");
    assert!(path.len() < 4096);
    assert_eq!(get(&p, &path).unwrap(), b"deep");
}

// ----- ELOOP --------------------------------------------------------------

#[test]
fn symlink_loop_is_eloop() {
    let (_k, p) = boot();
    sys::symlink(&p, b"/b", b"/a").unwrap();
    sys::symlink(&p, b"/a", b"/b").unwrap();
    assert_eq!(sys::open(&p, b"/a", o::RDONLY, 0), Err(Errno::ELOOP));
    assert_eq!(sys::stat(&p, b"/a"), Err(Errno::ELOOP));
    assert_eq!(sys::stat(&p, b"/a/x"), Err(Errno::ELOOP));
    assert_eq!(
        sys::open(&p, b"/a", o::WRONLY | o::CREAT, 0o644),
        Err(Errno::ELOOP)
    );
    // The links themselves are fine.
    assert_eq!(mode_of(&p, b"/a") & s::IFMT, s::IFLNK);
}

#[test]
fn forty_nested_symlinks_resolve_and_forty_one_are_eloop() {
    let (_k, p) = boot();
    put(&p, b"/l0", b"end");
    for i in 1..=41 {
        let target = format!("/l{}", i - 1);
        let name = format!("/l{i}");
        sys::symlink(&p, target.as_bytes(), name.as_bytes()).unwrap();
    }
    assert_eq!(get(&p, b"/l40").unwrap(), b"end");
    assert_eq!(get(&p, b"/l41"), Err(Errno::ELOOP));
}

#[test]
fn o_nofollow_on_a_symlink_is_eloop() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    sys::symlink(&p, b"/f", b"/l").unwrap();
    assert_eq!(
        sys::open(&p, b"/l", o::RDONLY | o::NOFOLLOW, 0),
        Err(Errno::ELOOP)
    );
    assert_eq!(
        sys::open(&p, b"/l", o::WRONLY | o::CREAT | o::NOFOLLOW, 0o644),
        Err(Errno::ELOOP)
    );
    // Only the last component is affected.
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    put(&p, b"/d/f", b"");
    sys::symlink(&p, b"/d", b"/ld").unwrap();
    assert!(sys::open(&p, b"/ld/f", o::RDONLY | o::NOFOLLOW, 0).is_ok());
    assert!(sys::open(&p, b"/f", o::RDONLY | o::NOFOLLOW, 0).is_ok());
}

// ----- O_APPEND, O_TRUNC --------------------------------------------------

#[test]
fn o_append_writes_go_to_the_end() {
    let (_k, p) = boot();
    put(&p, b"/f", b"abc");
    let fd = sys::open(&p, b"/f", o::WRONLY | o::APPEND, 0).unwrap();
    assert_eq!(sys::lseek(&p, fd, 0, seek::SET), Ok(0));
    assert_eq!(sys::write(&p, fd, b"def"), Ok(3));
    assert_eq!(sys::lseek(&p, fd, 0, seek::CUR), Ok(6));
    assert_eq!(get(&p, b"/f").unwrap(), b"abcdef");
}

#[test]
fn pwrite_on_an_o_append_file_appends() {
    // Linux ignores the offset of pwrite on O_APPEND files (pwrite(2) BUGS).
    let (_k, p) = boot();
    put(&p, b"/f", b"abc");
    let fd = sys::open(&p, b"/f", o::RDWR | o::APPEND, 0).unwrap();
    assert_eq!(sys::pwrite(&p, fd, b"X", 0), Ok(1));
    assert_eq!(get(&p, b"/f").unwrap(), b"abcX");
    assert_eq!(sys::lseek(&p, fd, 0, seek::CUR), Ok(0));
}

#[test]
fn an_empty_write_to_an_o_append_file_leaves_the_offset() {
    let (_k, p) = boot();
    put(&p, b"/f", b"abc");
    let fd = sys::open(&p, b"/f", o::RDWR | o::APPEND, 0).unwrap();
    assert_eq!(sys::write(&p, fd, b""), Ok(0));
    assert_eq!(sys::lseek(&p, fd, 0, seek::CUR), Ok(0));
    assert_eq!(sys::write(&p, fd, b"d"), Ok(1));
    assert_eq!(sys::lseek(&p, fd, 0, seek::CUR), Ok(4));
}

#[test]
fn two_append_descriptors_never_overwrite_each_other() {
    let (_k, p) = boot();
    put(&p, b"/log", b"");
    let a = sys::open(&p, b"/log", o::WRONLY | o::APPEND, 0).unwrap();
    let b = sys::open(&p, b"/log", o::WRONLY | o::APPEND, 0).unwrap();
    for _ in 0..10 {
        sys::write(&p, a, b"A").unwrap();
        sys::write(&p, b, b"BB").unwrap();
    }
    assert_eq!(get(&p, b"/log").unwrap(), b"ABB".repeat(10));
}

#[test]
fn o_trunc_empties_an_existing_file() {
    let (_k, p) = boot();
    put(&p, b"/f", b"old contents");
    let fd = sys::open(&p, b"/f", o::WRONLY | o::TRUNC, 0).unwrap();
    assert_eq!(sys::fstat(&p, fd).unwrap().size, 0);
    sys::write(&p, fd, b"new").unwrap();
    sys::close(&p, fd).unwrap();
    assert_eq!(get(&p, b"/f").unwrap(), b"new");
    // O_RDONLY|O_TRUNC truncates as well (Linux).
    let fd = sys::open(&p, b"/f", o::RDONLY | o::TRUNC, 0).unwrap();
    assert_eq!(sys::fstat(&p, fd).unwrap().size, 0);
}

#[test]
fn f_setfl_switches_o_append_on_and_off() {
    let (_k, p) = boot();
    put(&p, b"/f", b"0123456789");
    let fd = sys::open(&p, b"/f", o::RDWR, 0).unwrap();
    sys::fcntl(&p, fd, f::SETFL, o::APPEND as i64).unwrap();
    sys::write(&p, fd, b"A").unwrap();
    sys::fcntl(&p, fd, f::SETFL, 0).unwrap();
    sys::lseek(&p, fd, 0, seek::SET).unwrap();
    sys::write(&p, fd, b"B").unwrap();
    assert_eq!(get(&p, b"/f").unwrap(), b"B123456789A");
}

// ----- sparse files -------------------------------------------------------

#[test]
fn holes_read_as_zeros_and_use_no_blocks() {
    let (_k, p) = boot();
    let fd = sys::open(&p, b"/sparse", o::RDWR | o::CREAT, 0o644).unwrap();
    let off = 10 << 20;
    assert_eq!(sys::pwrite(&p, fd, b"end", off), Ok(3));
    let st = sys::fstat(&p, fd).unwrap();
    assert_eq!(st.size, (10 << 20) + 3);
    // One page of data: 8 blocks of 512 bytes.
    assert!(
        st.blocks <= 8,
        "st_blocks {} for one written page",
        st.blocks
    );
    let mut buf = vec![0xffu8; 8192];
    assert_eq!(sys::pread(&p, fd, &mut buf, 4096), Ok(8192));
    assert!(buf.iter().all(|&b| b == 0));
    let mut tail = [0xffu8; 6];
    assert_eq!(sys::pread(&p, fd, &mut tail, off - 3), Ok(6));
    assert_eq!(&tail, b"\0\0\0end");
}

#[test]
fn extending_with_ftruncate_reads_zeros_and_allocates_nothing() {
    let (_k, p) = boot();
    let fd = sys::open(&p, b"/f", o::RDWR | o::CREAT, 0o644).unwrap();
    sys::ftruncate(&p, fd, 1 << 30).unwrap();
    let st = sys::fstat(&p, fd).unwrap();
    assert_eq!((st.size, st.blocks), (1 << 30, 0));
    let mut buf = [1u8; 100];
    assert_eq!(sys::pread(&p, fd, &mut buf, 12345678), Ok(100));
    assert_eq!(buf, [0u8; 100]);
}

#[test]
fn shrinking_then_growing_a_file_zeroes_the_cut_tail() {
    let (_k, p) = boot();
    put(&p, b"/f", &[b'x'; 100]);
    sys::truncate(&p, b"/f", 10).unwrap();
    sys::truncate(&p, b"/f", 100).unwrap();
    let data = get(&p, b"/f").unwrap();
    assert_eq!(&data[..10], &[b'x'; 10]);
    assert_eq!(&data[10..], &[0u8; 90]);
}

#[test]
fn reads_at_and_past_the_end_return_zero_bytes() {
    let (_k, p) = boot();
    put(&p, b"/f", b"abc");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(sys::pread(&p, fd, &mut buf, 3), Ok(0));
    assert_eq!(sys::pread(&p, fd, &mut buf, 1 << 40), Ok(0));
    assert_eq!(sys::pread(&p, fd, &mut buf, 1), Ok(2));
    assert_eq!(&buf[..2], b"bc");
}

// ----- getdents64 ---------------------------------------------------------

#[test]
fn getdents64_lists_dots_and_entries_with_types() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    put(&p, b"/d/file", b"");
    sys::mkdir(&p, b"/d/sub", 0o755).unwrap();
    sys::symlink(&p, b"file", b"/d/link").unwrap();
    let d_ino = sys::stat(&p, b"/d").unwrap().ino;
    let root_ino = sys::stat(&p, b"/").unwrap().ino;
    let mut ents = list(&p, b"/d").unwrap();
    ents.sort_by(|a, b| a.name.cmp(&b.name));
    let got: Vec<(&[u8], u8)> = ents.iter().map(|e| (&e.name[..], e.kind)).collect();
    assert_eq!(
        got,
        vec![
            (&b"."[..], dt::DIR),
            (&b".."[..], dt::DIR),
            (&b"file"[..], dt::REG),
            (&b"link"[..], dt::LNK),
            (&b"sub"[..], dt::DIR),
        ]
    );
    assert_eq!(ents[0].ino, d_ino);
    assert_eq!(ents[1].ino, root_ino);
    for e in &ents[2..] {
        let st = sys::lstat(&p, &[&b"/d/"[..], &e.name].concat()).unwrap();
        assert_eq!(st.ino, e.ino);
    }
}

#[test]
fn getdents64_with_a_buffer_too_small_for_one_entry_is_einval() {
    let (_k, p) = boot();
    let fd = sys::open(&p, b"/", o::RDONLY | o::DIRECTORY, 0).unwrap();
    let mut buf = [0u8; 10];
    assert_eq!(sys::getdents64(&p, fd, &mut buf), Err(Errno::EINVAL));
}

#[test]
fn getdents64_on_a_file_is_enotdir() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    let mut buf = [0u8; 1024];
    assert_eq!(sys::getdents64(&p, fd, &mut buf), Err(Errno::ENOTDIR));
}

#[test]
fn getdents64_resumes_at_d_off_and_restarts_at_zero() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    for i in 0..50 {
        put(&p, format!("/d/f{i:02}").as_bytes(), b"");
    }
    let all = list(&p, b"/d").unwrap();
    assert_eq!(all.len(), 52);
    let fd = sys::open(&p, b"/d", o::RDONLY | o::DIRECTORY, 0).unwrap();
    let mut buf = [0u8; 4096];
    let n = sys::getdents64(&p, fd, &mut buf).unwrap();
    let first = common::dirents(&buf[..n]);
    // Seeking to an entry's d_off continues right after it.
    sys::lseek(&p, fd, first[9].off, seek::SET).unwrap();
    let n = sys::getdents64(&p, fd, &mut buf).unwrap();
    assert_eq!(common::dirents(&buf[..n])[0].name, all[10].name);
    // Rewinding lists everything again.
    sys::lseek(&p, fd, 0, seek::SET).unwrap();
    let n = sys::getdents64(&p, fd, &mut buf).unwrap();
    assert_eq!(common::dirents(&buf[..n]), all);
}

#[test]
fn getdents64_is_stable_while_entries_are_added_and_removed() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    // Interleave entries that stay with entries that come and go.
    for i in 0..100 {
        put(&p, format!("/d/keep{i:03}").as_bytes(), b"");
        put(&p, format!("/d/churn{i:03}").as_bytes(), b"");
    }
    let fd = sys::open(&p, b"/d", o::RDONLY | o::DIRECTORY, 0).unwrap();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    // Room for about three entries per call.
    let mut buf = [0u8; 96];
    let mut round = 0;
    loop {
        let n = sys::getdents64(&p, fd, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.extend(common::dirents(&buf[..n]).into_iter().map(|d| d.name));
        // Between calls: remove churn entries from both ends of the
        // listing, add new ones, and rename some churn entries (for a
        // while: new entries land at the end, where the listing would
        // keep finding them).
        if round < 60 {
            for j in [round, 99 - round] {
                let _ = sys::unlink(&p, format!("/d/churn{j:03}").as_bytes());
            }
            put(&p, format!("/d/new{round:03}").as_bytes(), b"");
            let _ = sys::rename(
                &p,
                format!("/d/churn{:03}", (round + 50) % 100).as_bytes(),
                format!("/d/moved{round:03}").as_bytes(),
            );
        }
        round += 1;
    }
    for i in 0..100 {
        let name = format!("keep{i:03}").into_bytes();
        let count = seen.iter().filter(|n| **n == name).count();
        assert_eq!(count, 1, "{} seen {count} times", common::show(&name));
    }
    assert_eq!(seen.iter().filter(|n| *n == b".").count(), 1);
    assert_eq!(seen.iter().filter(|n| *n == b"..").count(), 1);
}

// ----- link counts --------------------------------------------------------

#[test]
fn hard_link_counts_follow_links_and_unlinks() {
    let (_k, p) = boot();
    put(&p, b"/a", b"shared");
    assert_eq!(sys::stat(&p, b"/a").unwrap().nlink, 1);
    sys::link(&p, b"/a", b"/b").unwrap();
    sys::link(&p, b"/b", b"/c").unwrap();
    let st = sys::stat(&p, b"/a").unwrap();
    assert_eq!(st.nlink, 3);
    assert_eq!(sys::stat(&p, b"/c").unwrap().ino, st.ino);
    put(&p, b"/c", b"changed");
    assert_eq!(get(&p, b"/a").unwrap(), b"changed");
    sys::unlink(&p, b"/a").unwrap();
    assert_eq!(sys::stat(&p, b"/b").unwrap().nlink, 2);
    // An open file outlives its last name.
    let fd = sys::open(&p, b"/b", o::RDONLY, 0).unwrap();
    sys::unlink(&p, b"/b").unwrap();
    sys::unlink(&p, b"/c").unwrap();
    assert_eq!(sys::fstat(&p, fd).unwrap().nlink, 0);
    let mut buf = [0u8; 16];
    assert_eq!(sys::read(&p, fd, &mut buf), Ok(7));
    assert_eq!(&buf[..7], b"changed");
}

#[test]
fn linking_a_symlink_links_the_symlink_itself() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    sys::symlink(&p, b"/f", b"/l").unwrap();
    sys::link(&p, b"/l", b"/l2").unwrap();
    assert_eq!(mode_of(&p, b"/l2") & s::IFMT, s::IFLNK);
    assert_eq!(sys::lstat(&p, b"/l").unwrap().nlink, 2);
    assert_eq!(sys::stat(&p, b"/f").unwrap().nlink, 1);
    sys::linkat(&p, at::FDCWD, b"/l", at::FDCWD, b"/f2", at::SYMLINK_FOLLOW).unwrap();
    assert_eq!(sys::stat(&p, b"/f").unwrap().nlink, 2);
}

#[test]
fn directory_link_count_is_two_plus_subdirectories() {
    let (_k, p) = boot();
    let root_links = sys::stat(&p, b"/").unwrap().nlink;
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::stat(&p, b"/").unwrap().nlink, root_links + 1);
    assert_eq!(sys::stat(&p, b"/d").unwrap().nlink, 2);
    for s in [&b"/d/s1"[..], b"/d/s2", b"/d/s3"] {
        sys::mkdir(&p, s, 0o755).unwrap();
    }
    put(&p, b"/d/file", b"");
    assert_eq!(sys::stat(&p, b"/d").unwrap().nlink, 5);
    sys::rmdir(&p, b"/d/s3").unwrap();
    assert_eq!(sys::stat(&p, b"/d").unwrap().nlink, 4);
    sys::mkdir(&p, b"/e", 0o755).unwrap();
    sys::rename(&p, b"/d/s2", b"/e/s2").unwrap();
    assert_eq!(sys::stat(&p, b"/d").unwrap().nlink, 3);
    assert_eq!(sys::stat(&p, b"/e").unwrap().nlink, 3);
    // Renaming over an empty directory drops the victim's link.
    sys::rename(&p, b"/d/s1", b"/e/s2").unwrap();
    assert_eq!(sys::stat(&p, b"/d").unwrap().nlink, 2);
    assert_eq!(sys::stat(&p, b"/e").unwrap().nlink, 3);
    // The moved directory's ".." follows it.
    let e_ino = sys::stat(&p, b"/e").unwrap().ino;
    assert_eq!(sys::stat(&p, b"/e/s2/..").unwrap().ino, e_ino);
}

#[test]
fn removed_directory_has_no_links_and_cannot_gain_entries() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    let fd = sys::open(&p, b"/d", o::RDONLY | o::DIRECTORY, 0).unwrap();
    sys::chdir(&p, b"/d").unwrap();
    sys::rmdir(&p, b"/d").unwrap();
    assert_eq!(sys::fstat(&p, fd).unwrap().nlink, 0);
    assert_eq!(
        sys::open(&p, b"new", o::WRONLY | o::CREAT, 0o644),
        Err(Errno::ENOENT)
    );
    assert_eq!(sys::mkdir(&p, b"sub", 0o755), Err(Errno::ENOENT));
    let mut buf = [0u8; 1024];
    assert_eq!(sys::getdents64(&p, fd, &mut buf), Ok(0));
}

// ----- mounts and ".." ----------------------------------------------------

#[test]
fn dotdot_of_a_mount_root_is_the_parent_of_the_mount_point() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/a", 0o755).unwrap();
    sys::mkdir(&p, b"/a/mnt", 0o755).unwrap();
    put(&p, b"/a/marker", b"outside");
    mount_tmpfs(&p, b"/a/mnt", b"");
    let a = sys::stat(&p, b"/a").unwrap();
    let up = sys::stat(&p, b"/a/mnt/..").unwrap();
    assert_eq!((up.dev, up.ino), (a.dev, a.ino));
    assert_ne!(sys::stat(&p, b"/a/mnt").unwrap().dev, a.dev);
    assert_eq!(get(&p, b"/a/mnt/../marker").unwrap(), b"outside");
    // Also from inside, relative to the working directory.
    sys::chdir(&p, b"/a/mnt").unwrap();
    let up = sys::stat(&p, b"..").unwrap();
    assert_eq!((up.dev, up.ino), (a.dev, a.ino));
    sys::mkdir(&p, b"sub", 0o755).unwrap();
    assert_eq!(get(&p, b"sub/../../marker").unwrap(), b"outside");
}

#[test]
fn mount_hides_and_unmount_reveals_the_covered_directory() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    put(&p, b"/mnt/under", b"");
    mount_tmpfs(&p, b"/mnt", b"");
    assert_eq!(names(&p, b"/mnt").unwrap(), Vec::<Vec<u8>>::new());
    put(&p, b"/mnt/over", b"");
    sys::umount2(&p, b"/mnt", 0).unwrap();
    assert_eq!(names(&p, b"/mnt").unwrap(), vec![b"under".to_vec()]);
}

#[test]
fn mount_points_cannot_be_removed_or_renamed_ebusy() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt", b"");
    assert_eq!(sys::rmdir(&p, b"/mnt"), Err(Errno::EBUSY));
    assert_eq!(sys::rename(&p, b"/mnt", b"/other"), Err(Errno::EBUSY));
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::rename(&p, b"/d", b"/mnt"), Err(Errno::EBUSY));
}

#[test]
fn mount_errors() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    assert_eq!(
        sys::mount(&p, b"x", b"/f", b"tmpfs", 0, b""),
        Err(Errno::ENOTDIR)
    );
    assert_eq!(
        sys::mount(&p, b"x", b"/mnt", b"nosuchfs", 0, b""),
        Err(Errno::ENODEV)
    );
    assert_eq!(
        sys::mount(&p, b"x", b"/missing", b"tmpfs", 0, b""),
        Err(Errno::ENOENT)
    );
    assert_eq!(
        sys::mount(&p, b"x", b"/mnt", b"tmpfs", 0, b"bogus=1"),
        Err(Errno::EINVAL)
    );
}

#[test]
fn unmount_of_a_busy_file_system_is_ebusy_then_succeeds() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt", b"");
    put(&p, b"/mnt/f", b"");
    let fd = sys::open(&p, b"/mnt/f", o::RDONLY, 0).unwrap();
    assert_eq!(sys::umount2(&p, b"/mnt", 0), Err(Errno::EBUSY));
    sys::close(&p, fd).unwrap();
    // A working directory inside keeps it busy too.
    let q = p.rfork(ForkFds::Clear).unwrap();
    sys::chdir(&q, b"/mnt").unwrap();
    assert_eq!(sys::umount2(&p, b"/mnt", 0), Err(Errno::EBUSY));
    sys::chdir(&q, b"/").unwrap();
    assert_eq!(sys::umount2(&p, b"/mnt", 0), Ok(()));
    assert_eq!(sys::stat(&p, b"/mnt/f"), Err(Errno::ENOENT));
    assert!(sys::mounts(&p).unwrap().iter().all(|m| m.target != "/mnt"));
}

#[test]
fn unmount_with_a_nested_mount_is_ebusy() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt", b"");
    sys::mkdir(&p, b"/mnt/inner", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt/inner", b"");
    assert_eq!(sys::umount2(&p, b"/mnt", 0), Err(Errno::EBUSY));
    sys::umount2(&p, b"/mnt/inner", 0).unwrap();
    sys::umount2(&p, b"/mnt", 0).unwrap();
}

#[test]
fn unmount_of_a_non_mount_point_is_einval_and_of_root_is_ebusy() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    assert_eq!(sys::umount2(&p, b"/d", 0), Err(Errno::EINVAL));
    assert_eq!(sys::umount2(&p, b"/", 0), Err(Errno::EBUSY));
    assert_eq!(sys::umount2(&p, b"/missing", 0), Err(Errno::ENOENT));
}

#[test]
fn mount_table_lists_mounts_with_their_paths() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/a", 0o755).unwrap();
    sys::mkdir(&p, b"/a/b", 0o755).unwrap();
    sys::chdir(&p, b"/a").unwrap();
    sys::mount(&p, b"scratch", b"b", b"tmpfs", 0, b"").unwrap();
    let m = sys::mounts(&p).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].target, "/");
    assert_eq!(
        (m[1].target.as_str(), m[1].source.as_str()),
        ("/a/b", "scratch")
    );
    assert_eq!(m[1].fstype, "tmpfs");
}

// ----- dup, dup2, dup3, fcntl ---------------------------------------------

#[test]
fn dup_takes_the_lowest_free_number_and_shares_the_offset() {
    let (_k, p) = boot();
    put(&p, b"/f", b"abcdef");
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    let other = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    assert_eq!((fd, other), (0, 1));
    sys::close(&p, other).unwrap();
    let d = sys::dup(&p, fd).unwrap();
    assert_eq!(d, 1);
    let mut buf = [0u8; 2];
    sys::read(&p, fd, &mut buf).unwrap();
    sys::read(&p, d, &mut buf).unwrap();
    assert_eq!(&buf, b"cd");
    // Closing one leaves the other working.
    sys::close(&p, fd).unwrap();
    sys::read(&p, d, &mut buf).unwrap();
    assert_eq!(&buf, b"ef");
}

#[test]
fn dup2_replaces_the_target_and_accepts_equal_numbers() {
    let (_k, p) = boot();
    put(&p, b"/a", b"A");
    put(&p, b"/b", b"B");
    let a = sys::open(&p, b"/a", o::RDONLY, 0).unwrap();
    let b = sys::open(&p, b"/b", o::RDONLY, 0).unwrap();
    assert_eq!(sys::dup2(&p, a, b), Ok(b));
    let mut buf = [0u8; 1];
    sys::read(&p, b, &mut buf).unwrap();
    assert_eq!(&buf, b"A");
    assert_eq!(sys::dup2(&p, a, a), Ok(a));
    assert_eq!(sys::dup2(&p, 77, 77), Err(Errno::EBADF));
    assert_eq!(sys::dup2(&p, a, 100), Ok(100));
    assert_eq!(sys::dup2(&p, a, -1), Err(Errno::EBADF));
    assert_eq!(sys::dup2(&p, 55, b), Err(Errno::EBADF));
    // dup2 clears close-on-exec on the new descriptor.
    sys::fcntl(&p, 100, f::SETFD, f::FD_CLOEXEC as i64).unwrap();
    sys::dup2(&p, a, 100).unwrap();
    assert_eq!(sys::fcntl(&p, 100, f::GETFD, 0), Ok(0));
}

#[test]
fn dup3_rejects_equal_numbers_and_sets_cloexec() {
    let (_k, p) = boot();
    put(&p, b"/a", b"");
    let a = sys::open(&p, b"/a", o::RDONLY, 0).unwrap();
    assert_eq!(sys::dup3(&p, a, a, 0), Err(Errno::EINVAL));
    assert_eq!(sys::dup3(&p, a, 5, o::NONBLOCK), Err(Errno::EINVAL));
    assert_eq!(sys::dup3(&p, a, 5, o::CLOEXEC), Ok(5));
    assert_eq!(sys::fcntl(&p, 5, f::GETFD, 0), Ok(f::FD_CLOEXEC as i64));
    assert_eq!(sys::dup3(&p, a, 6, 0), Ok(6));
    assert_eq!(sys::fcntl(&p, 6, f::GETFD, 0), Ok(0));
}

#[test]
fn fcntl_dupfd_allocates_at_or_above_the_minimum() {
    let (_k, p) = boot();
    put(&p, b"/a", b"");
    let a = sys::open(&p, b"/a", o::RDONLY, 0).unwrap();
    assert_eq!(sys::fcntl(&p, a, f::DUPFD, 10), Ok(10));
    assert_eq!(sys::fcntl(&p, a, f::DUPFD, 10), Ok(11));
    assert_eq!(sys::fcntl(&p, a, f::DUPFD, 0), Ok(1));
    assert_eq!(sys::fcntl(&p, 10, f::GETFD, 0), Ok(0));
    assert_eq!(sys::fcntl(&p, a, f::DUPFD_CLOEXEC, 20), Ok(20));
    assert_eq!(sys::fcntl(&p, 20, f::GETFD, 0), Ok(f::FD_CLOEXEC as i64));
    assert_eq!(sys::fcntl(&p, a, f::DUPFD, -1), Err(Errno::EINVAL));
    assert_eq!(sys::fcntl(&p, a, f::DUPFD, 1 << 40), Err(Errno::EINVAL));
}

#[test]
fn fcntl_getfd_and_setfd_control_close_on_exec() {
    let (_k, p) = boot();
    put(&p, b"/a", b"");
    let a = sys::open(&p, b"/a", o::RDONLY | o::CLOEXEC, 0).unwrap();
    assert_eq!(sys::fcntl(&p, a, f::GETFD, 0), Ok(f::FD_CLOEXEC as i64));
    sys::fcntl(&p, a, f::SETFD, 0).unwrap();
    assert_eq!(sys::fcntl(&p, a, f::GETFD, 0), Ok(0));
    sys::fcntl(&p, a, f::SETFD, f::FD_CLOEXEC as i64).unwrap();
    assert_eq!(sys::fcntl(&p, a, f::GETFD, 0), Ok(f::FD_CLOEXEC as i64));
    // The flag is per descriptor, not per open file.
    let d = sys::dup(&p, a).unwrap();
    assert_eq!(sys::fcntl(&p, d, f::GETFD, 0), Ok(0));
}

#[test]
fn fcntl_getfl_and_setfl_change_only_status_flags() {
    let (_k, p) = boot();
    put(&p, b"/a", b"");
    let a = sys::open(&p, b"/a", o::WRONLY | o::CREAT | o::TRUNC | o::CLOEXEC, 0).unwrap();
    // Creation flags and O_CLOEXEC are not status flags.
    assert_eq!(sys::fcntl(&p, a, f::GETFL, 0), Ok(o::WRONLY as i64));
    sys::fcntl(&p, a, f::SETFL, (o::RDWR | o::APPEND | o::NONBLOCK) as i64).unwrap();
    assert_eq!(
        sys::fcntl(&p, a, f::GETFL, 0),
        Ok((o::WRONLY | o::APPEND | o::NONBLOCK) as i64)
    );
    // Status flags belong to the open file, shared by duplicates.
    let d = sys::dup(&p, a).unwrap();
    sys::fcntl(&p, d, f::SETFL, 0).unwrap();
    assert_eq!(sys::fcntl(&p, a, f::GETFL, 0), Ok(o::WRONLY as i64));
    assert_eq!(sys::fcntl(&p, a, 9999, 0), Err(Errno::EINVAL));
}

#[test]
fn exec_close_closes_only_close_on_exec_descriptors() {
    let (_k, p) = boot();
    put(&p, b"/a", b"");
    let keep = sys::open(&p, b"/a", o::RDONLY, 0).unwrap();
    let drop1 = sys::open(&p, b"/a", o::RDONLY | o::CLOEXEC, 0).unwrap();
    let drop2 = sys::fcntl(&p, keep, f::DUPFD_CLOEXEC, 0).unwrap() as i32;
    let (r, w) = sys::pipe2(&p, o::CLOEXEC).unwrap();
    p.exec_close();
    assert!(sys::fstat(&p, keep).is_ok());
    for fd in [drop1, drop2, r, w] {
        assert_eq!(sys::fstat(&p, fd), Err(Errno::EBADF), "fd {fd}");
    }
    // Freed numbers are reused lowest first.
    assert_eq!(sys::dup(&p, keep), Ok(drop1.min(drop2)));
}

// ----- rfork --------------------------------------------------------------

#[test]
fn rfork_share_shares_the_descriptor_table() {
    let (_k, p) = boot();
    put(&p, b"/a", b"");
    let fd = sys::open(&p, b"/a", o::RDONLY, 0).unwrap();
    let child = p.rfork(ForkFds::Share).unwrap();
    assert_eq!(sys::getppid(&child), Ok(p.pid()));
    assert_ne!(child.pid(), p.pid());
    let cfd = sys::open(&child, b"/a", o::RDONLY, 0).unwrap();
    assert!(sys::fstat(&p, cfd).is_ok());
    sys::close(&child, fd).unwrap();
    assert_eq!(sys::fstat(&p, fd), Err(Errno::EBADF));
}

#[test]
fn rfork_copy_copies_descriptors_that_share_open_files() {
    let (_k, p) = boot();
    put(&p, b"/a", b"abcd");
    let fd = sys::open(&p, b"/a", o::RDONLY, 0).unwrap();
    let child = p.rfork(ForkFds::Copy).unwrap();
    let mut buf = [0u8; 2];
    sys::read(&child, fd, &mut buf).unwrap();
    // Same open file: the offset moved for the parent too.
    sys::read(&p, fd, &mut buf).unwrap();
    assert_eq!(&buf, b"cd");
    // Separate tables.
    sys::close(&child, fd).unwrap();
    assert!(sys::fstat(&p, fd).is_ok());
    let cfd = sys::open(&child, b"/a", o::RDONLY, 0).unwrap();
    assert_eq!(cfd, fd);
    let pfd = sys::open(&p, b"/a", o::RDONLY, 0).unwrap();
    assert_ne!(pfd, fd);
    assert_eq!(sys::fstat(&child, pfd), Err(Errno::EBADF));
}

#[test]
fn rfork_clear_starts_with_no_descriptors_but_inherits_the_rest() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    put(&p, b"/d/f", b"");
    let fd = sys::open(&p, b"/d/f", o::RDONLY, 0).unwrap();
    sys::chdir(&p, b"/d").unwrap();
    sys::umask(&p, 0o077).unwrap();
    let child = p.rfork(ForkFds::Clear).unwrap();
    assert_eq!(sys::fstat(&child, fd), Err(Errno::EBADF));
    assert_eq!(sys::getcwd(&child).unwrap(), b"/d");
    assert_eq!(sys::umask(&child, 0), Ok(0o077));
    assert!(sys::stat(&child, b"f").is_ok());
    assert_eq!(sys::open(&child, b"f", o::RDONLY, 0), Ok(0));
}

// ----- umask, chmod, chown ------------------------------------------------

#[test]
fn umask_masks_creation_modes_and_returns_the_old_mask() {
    let (_k, p) = boot();
    assert_eq!(sys::umask(&p, 0o077), Ok(0o022));
    let fd = sys::open(&p, b"/f", o::WRONLY | o::CREAT, 0o666).unwrap();
    assert_eq!(sys::fstat(&p, fd).unwrap().mode, s::IFREG | 0o600);
    sys::mkdir(&p, b"/d", 0o777).unwrap();
    assert_eq!(mode_of(&p, b"/d"), s::IFDIR | 0o700);
    assert_eq!(sys::umask(&p, 0o7777), Ok(0o077));
    // Only the permission bits are kept.
    assert_eq!(sys::umask(&p, 0o022), Ok(0o777));
    // chmod ignores the umask.
    sys::chmod(&p, b"/f", 0o666).unwrap();
    assert_eq!(mode_of(&p, b"/f"), s::IFREG | 0o666);
}

#[test]
fn owner_may_chmod_and_set_special_bits() {
    let (k, _root) = boot();
    let u = user(&k, 1000);
    put(&u, b"/mine", b"");
    sys::chmod(&u, b"/mine", 0o4751).unwrap();
    assert_eq!(mode_of(&u, b"/mine"), s::IFREG | 0o4751);
    let fd = sys::open(&u, b"/mine", o::RDONLY, 0).unwrap();
    sys::fchmod(&u, fd, 0o600).unwrap();
    assert_eq!(mode_of(&u, b"/mine"), s::IFREG | 0o600);
    // chmod on a symlink path changes the target.
    sys::symlink(&u, b"/mine", b"/link").unwrap();
    sys::chmod(&u, b"/link", 0o640).unwrap();
    assert_eq!(mode_of(&u, b"/mine"), s::IFREG | 0o640);
    assert_eq!(
        sys::fchmodat(&u, at::FDCWD, b"/link", 0o600, at::SYMLINK_NOFOLLOW),
        Err(Errno::EOPNOTSUPP)
    );
}

#[test]
fn chmod_by_a_non_member_clears_the_setgid_bit() {
    let (k, root) = boot();
    let u = user(&k, 1000);
    put(&u, b"/mine", b"");
    sys::chown(&root, b"/mine", 1000, 500).unwrap();
    sys::chmod(&u, b"/mine", 0o2755).unwrap();
    assert_eq!(mode_of(&u, b"/mine") & 0o7777, 0o755);
    // A member keeps it.
    sys::chown(&root, b"/mine", 1000, 1000).unwrap();
    sys::chmod(&u, b"/mine", 0o2755).unwrap();
    assert_eq!(mode_of(&u, b"/mine") & 0o7777, 0o2755);
}

#[test]
fn an_unprivileged_write_or_truncate_clears_set_id_bits() {
    let (k, root) = boot();
    let u = user(&k, 1000);
    put(&root, b"/f", b"");
    sys::chmod(&root, b"/f", 0o6777).unwrap();
    // Root keeps them.
    put(&root, b"/f", b"root");
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o6777);
    // A user's write clears set-user-ID and the group-executable
    // set-group-ID.
    let fd = sys::open(&u, b"/f", o::WRONLY, 0).unwrap();
    assert_eq!(sys::write(&u, fd, b""), Ok(0));
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o6777);
    sys::write(&u, fd, b"user").unwrap();
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o0777);
    // So do truncate, ftruncate and O_TRUNC.
    sys::chmod(&root, b"/f", 0o4777).unwrap();
    sys::truncate(&u, b"/f", 1).unwrap();
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o777);
    sys::chmod(&root, b"/f", 0o4777).unwrap();
    sys::ftruncate(&u, fd, 0).unwrap();
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o777);
    sys::chmod(&root, b"/f", 0o4777).unwrap();
    sys::open(&u, b"/f", o::WRONLY | o::TRUNC, 0).unwrap();
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o777);
    // Set-group-ID without group execute stays for a member of the group
    // and goes for anyone else.
    sys::chmod(&root, b"/f", 0o2666).unwrap();
    sys::chown(&root, b"/f", 0, 1000).unwrap();
    sys::pwrite(&u, fd, b"x", 0).unwrap();
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o2666);
    sys::chown(&root, b"/f", 0, 0).unwrap();
    sys::pwrite(&u, fd, b"x", 0).unwrap();
    assert_eq!(mode_of(&root, b"/f") & 0o7777, 0o666);
}

#[test]
fn chown_rules_for_an_ordinary_user() {
    let (k, _root) = boot();
    let u = k
        .process_as(Cred {
            groups: vec![2000],
            ..Cred::user(1000, 1000)
        })
        .unwrap();
    put(&u, b"/mine", b"");
    assert_eq!(
        sys::chown(&u, b"/mine", 1001, sys::NO_CHANGE),
        Err(Errno::EPERM)
    );
    // Giving it to oneself or leaving both unchanged is fine.
    assert_eq!(sys::chown(&u, b"/mine", 1000, sys::NO_CHANGE), Ok(()));
    assert_eq!(
        sys::chown(&u, b"/mine", sys::NO_CHANGE, sys::NO_CHANGE),
        Ok(())
    );
    assert_eq!(sys::chown(&u, b"/mine", sys::NO_CHANGE, 2000), Ok(()));
    assert_eq!(sys::stat(&u, b"/mine").unwrap().gid, 2000);
    assert_eq!(
        sys::chown(&u, b"/mine", sys::NO_CHANGE, 3000),
        Err(Errno::EPERM)
    );
}

#[test]
fn chown_clears_setuid_and_group_executable_setgid() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    sys::chmod(&p, b"/f", 0o6755).unwrap();
    sys::chown(&p, b"/f", 1000, 1000).unwrap();
    let st = sys::stat(&p, b"/f").unwrap();
    assert_eq!((st.uid, st.gid, st.mode & 0o7777), (1000, 1000, 0o755));
    // A setgid bit without group execute marks mandatory locking: kept.
    sys::chmod(&p, b"/f", 0o2644).unwrap();
    sys::chown(&p, b"/f", 0, 0).unwrap();
    assert_eq!(mode_of(&p, b"/f") & 0o7777, 0o2644);
}

#[test]
fn lchown_changes_the_link_and_chown_the_target() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    sys::symlink(&p, b"/f", b"/l").unwrap();
    sys::lchown(&p, b"/l", 7, 8).unwrap();
    let (l, t) = (
        sys::lstat(&p, b"/l").unwrap(),
        sys::stat(&p, b"/f").unwrap(),
    );
    assert_eq!((l.uid, l.gid, t.uid, t.gid), (7, 8, 0, 0));
    sys::chown(&p, b"/l", 9, 10).unwrap();
    let t = sys::stat(&p, b"/f").unwrap();
    assert_eq!((t.uid, t.gid), (9, 10));
}

#[test]
fn files_created_in_a_setgid_directory_take_its_group() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/shared", 0o775).unwrap();
    sys::chown(&p, b"/shared", 0, 500).unwrap();
    sys::chmod(&p, b"/shared", 0o2775).unwrap();
    put(&p, b"/shared/f", b"");
    sys::mkdir(&p, b"/shared/sub", 0o755).unwrap();
    assert_eq!(sys::stat(&p, b"/shared/f").unwrap().gid, 500);
    let sub = sys::stat(&p, b"/shared/sub").unwrap();
    assert_eq!((sub.gid, sub.mode & s::ISGID), (500, s::ISGID));
}

// ----- utimensat ----------------------------------------------------------

#[test]
fn utimensat_sets_explicit_times() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let times = [
        TimeArg { sec: 1000, nsec: 5 },
        TimeArg { sec: 2000, nsec: 6 },
    ];
    sys::utimensat(&p, at::FDCWD, b"/f", Some(times), 0).unwrap();
    let st = sys::stat(&p, b"/f").unwrap();
    assert_eq!((st.atime.sec, st.atime.nsec), (1000, 5));
    assert_eq!((st.mtime.sec, st.mtime.nsec), (2000, 6));
}

#[test]
fn utime_omit_leaves_a_time_alone_and_utime_now_sets_the_clock() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let old = [TimeArg { sec: 10, nsec: 0 }, TimeArg { sec: 20, nsec: 0 }];
    sys::utimensat(&p, at::FDCWD, b"/f", Some(old), 0).unwrap();
    sys::utimensat(&p, at::FDCWD, b"/f", Some([TimeArg::OMIT, TimeArg::NOW]), 0).unwrap();
    let st = sys::stat(&p, b"/f").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(st.atime.sec, 10);
    assert!(
        (st.mtime.sec - now).abs() <= 5,
        "mtime {} now {now}",
        st.mtime.sec
    );
    // None means both now.
    sys::utimensat(&p, at::FDCWD, b"/f", None, 0).unwrap();
    assert!((sys::stat(&p, b"/f").unwrap().atime.sec - now).abs() <= 5);
    // Both omitted changes nothing.
    sys::utimensat(&p, at::FDCWD, b"/f", Some(old), 0).unwrap();
    sys::utimensat(&p, at::FDCWD, b"/f", Some([TimeArg::OMIT; 2]), 0).unwrap();
    let st = sys::stat(&p, b"/f").unwrap();
    assert_eq!((st.atime.sec, st.mtime.sec), (10, 20));
}

#[test]
fn utimensat_with_both_times_omitted_checks_nothing() {
    // utimensat(2): Linux succeeds without looking at the file at all.
    let (_k, p) = boot();
    let omit = Some([TimeArg::OMIT; 2]);
    assert_eq!(sys::utimensat(&p, at::FDCWD, b"/missing", omit, 0), Ok(()));
    assert_eq!(sys::utimensat(&p, 99, b"rel", omit, 0x8000), Ok(()));
    assert_eq!(sys::futimens(&p, 99, omit), Ok(()));
    assert_eq!(
        sys::utimensat(&p, at::FDCWD, b"/missing", None, 0),
        Err(Errno::ENOENT)
    );
}

#[test]
fn utimensat_permission_rules() {
    let (k, root) = boot();
    put(&root, b"/f", b"");
    sys::chmod(&root, b"/f", 0o666).unwrap();
    let u = user(&k, 1000);
    let explicit = Some([TimeArg { sec: 1, nsec: 0 }; 2]);
    // Explicit times need ownership...
    assert_eq!(
        sys::utimensat(&u, at::FDCWD, b"/f", explicit, 0),
        Err(Errno::EPERM)
    );
    // ... "now" needs only write access.
    assert_eq!(sys::utimensat(&u, at::FDCWD, b"/f", None, 0), Ok(()));
    sys::chmod(&root, b"/f", 0o644).unwrap();
    assert_eq!(
        sys::utimensat(&u, at::FDCWD, b"/f", None, 0),
        Err(Errno::EACCES)
    );
}

#[test]
fn utimensat_with_invalid_nanoseconds_is_einval() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    for nsec in [-1, 1_000_000_000] {
        let t = Some([TimeArg { sec: 0, nsec }, TimeArg::OMIT]);
        assert_eq!(
            sys::utimensat(&p, at::FDCWD, b"/f", t, 0),
            Err(Errno::EINVAL)
        );
    }
    assert_eq!(
        sys::utimensat(&p, at::FDCWD, b"/f", None, 0x8000),
        Err(Errno::EINVAL)
    );
}

#[test]
fn futimens_and_symlink_nofollow() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    sys::symlink(&p, b"/f", b"/l").unwrap();
    let fd = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    sys::futimens(&p, fd, Some([TimeArg { sec: 3, nsec: 0 }; 2])).unwrap();
    assert_eq!(sys::stat(&p, b"/f").unwrap().mtime.sec, 3);
    let t = Some([TimeArg { sec: 4, nsec: 0 }; 2]);
    sys::utimensat(&p, at::FDCWD, b"/l", t, at::SYMLINK_NOFOLLOW).unwrap();
    assert_eq!(sys::lstat(&p, b"/l").unwrap().mtime.sec, 4);
    assert_eq!(sys::stat(&p, b"/f").unwrap().mtime.sec, 3);
}

#[test]
fn writing_updates_mtime_and_ctime() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let old = [TimeArg { sec: 100, nsec: 0 }; 2];
    sys::utimensat(&p, at::FDCWD, b"/f", Some(old), 0).unwrap();
    put(&p, b"/f", b"more");
    let st = sys::stat(&p, b"/f").unwrap();
    assert!(st.mtime.sec > 100 && st.ctime.sec > 100);
}

// ----- truncate, ftruncate ------------------------------------------------

#[test]
fn truncate_and_ftruncate_set_the_size() {
    let (_k, p) = boot();
    put(&p, b"/f", b"0123456789");
    sys::truncate(&p, b"/f", 4).unwrap();
    assert_eq!(get(&p, b"/f").unwrap(), b"0123");
    let fd = sys::open(&p, b"/f", o::WRONLY, 0).unwrap();
    sys::ftruncate(&p, fd, 6).unwrap();
    assert_eq!(get(&p, b"/f").unwrap(), b"0123\0\0");
    // Truncation does not move the offset.
    assert_eq!(sys::lseek(&p, fd, 0, seek::CUR), Ok(0));
    // truncate follows symlinks.
    sys::symlink(&p, b"/f", b"/l").unwrap();
    sys::truncate(&p, b"/l", 1).unwrap();
    assert_eq!(get(&p, b"/f").unwrap(), b"0");
}

#[test]
fn ftruncate_needs_a_writable_descriptor_and_a_valid_length() {
    let (_k, p) = boot();
    put(&p, b"/f", b"abc");
    let r = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    assert_eq!(sys::ftruncate(&p, r, 0), Err(Errno::EINVAL));
    let w = sys::open(&p, b"/f", o::WRONLY, 0).unwrap();
    assert_eq!(sys::ftruncate(&p, w, -1), Err(Errno::EINVAL));
    assert_eq!(sys::truncate(&p, b"/f", -1), Err(Errno::EINVAL));
    let (pr, pw) = sys::pipe2(&p, 0).unwrap();
    assert_eq!(sys::ftruncate(&p, pw, 0), Err(Errno::EINVAL));
    let _ = pr;
    assert_eq!(get(&p, b"/f").unwrap(), b"abc");
}

// ----- access, faccessat --------------------------------------------------

#[test]
fn access_reports_existence_and_permissions() {
    let (k, root) = boot();
    put(&root, b"/f", b"");
    sys::chmod(&root, b"/f", 0o640).unwrap();
    sys::chown(&root, b"/f", 0, 1000).unwrap();
    let u = user(&k, 1000);
    let other = user(&k, 1001);
    assert_eq!(sys::access(&u, b"/f", access::F_OK), Ok(()));
    assert_eq!(
        sys::access(&u, b"/missing", access::F_OK),
        Err(Errno::ENOENT)
    );
    assert_eq!(sys::access(&u, b"/f", access::R_OK), Ok(()));
    assert_eq!(sys::access(&u, b"/f", access::W_OK), Err(Errno::EACCES));
    assert_eq!(sys::access(&other, b"/f", access::R_OK), Err(Errno::EACCES));
    assert_eq!(sys::access(&u, b"/f", 8), Err(Errno::EINVAL));
}

#[test]
fn faccessat_checks_real_ids_unless_at_eaccess() {
    let (k, root) = boot();
    put(&root, b"/f", b"");
    sys::chmod(&root, b"/f", 0o600).unwrap();
    // A set-user-ID-root program run by uid 1000.
    let suid = k
        .process_as(Cred {
            euid: 0,
            ..Cred::user(1000, 1000)
        })
        .unwrap();
    assert_eq!(sys::access(&suid, b"/f", access::R_OK), Err(Errno::EACCES));
    assert_eq!(
        sys::faccessat(&suid, at::FDCWD, b"/f", access::R_OK, at::EACCESS),
        Ok(())
    );
    assert!(sys::open(&suid, b"/f", o::RDONLY, 0).is_ok());
}

// ----- chdir, fchdir, getcwd, chroot --------------------------------------

#[test]
fn chdir_changes_where_relative_paths_start() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    put(&p, b"/d/f", b"in d");
    assert_eq!(sys::getcwd(&p).unwrap(), b"/");
    sys::chdir(&p, b"/d").unwrap();
    assert_eq!(get(&p, b"f").unwrap(), b"in d");
    assert_eq!(get(&p, b"./f").unwrap(), b"in d");
    assert_eq!(sys::getcwd(&p).unwrap(), b"/d");
    sys::chdir(&p, b"..").unwrap();
    assert_eq!(sys::getcwd(&p).unwrap(), b"/");
    assert_eq!(sys::chdir(&p, b"/d/f"), Err(Errno::ENOTDIR));
    assert_eq!(sys::chdir(&p, b"/nope"), Err(Errno::ENOENT));
}

#[test]
fn fchdir_moves_to_an_open_directory() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/a", 0o755).unwrap();
    sys::mkdir(&p, b"/a/b", 0o755).unwrap();
    let fd = sys::open(&p, b"/a/b", o::RDONLY | o::DIRECTORY, 0).unwrap();
    sys::fchdir(&p, fd).unwrap();
    assert_eq!(sys::getcwd(&p).unwrap(), b"/a/b");
    put(&p, b"/f", b"");
    let file = sys::open(&p, b"/f", o::RDONLY, 0).unwrap();
    assert_eq!(sys::fchdir(&p, file), Err(Errno::ENOTDIR));
}

#[test]
fn getcwd_follows_renames_and_works_inside_mounts() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt", b"");
    sys::mkdir(&p, b"/mnt/x", 0o755).unwrap();
    sys::mkdir(&p, b"/mnt/x/y", 0o755).unwrap();
    sys::chdir(&p, b"/mnt").unwrap();
    assert_eq!(sys::getcwd(&p).unwrap(), b"/mnt");
    sys::chdir(&p, b"x/y").unwrap();
    assert_eq!(sys::getcwd(&p).unwrap(), b"/mnt/x/y");
    sys::rename(&p, b"/mnt/x", b"/mnt/z").unwrap();
    assert_eq!(sys::getcwd(&p).unwrap(), b"/mnt/z/y");
    sys::chdir(&p, b"../../..").unwrap();
    assert_eq!(sys::getcwd(&p).unwrap(), b"/");
}

#[test]
fn chroot_confines_absolute_paths_and_dotdot() {
    let (_k, p) = boot();
    put(&p, b"/outside", b"");
    sys::mkdir(&p, b"/jail", 0o755).unwrap();
    sys::mkdir(&p, b"/jail/sub", 0o755).unwrap();
    put(&p, b"/jail/inside", b"jailed");
    sys::chroot(&p, b"/jail").unwrap();
    sys::chdir(&p, b"/").unwrap();
    assert_eq!(sys::getcwd(&p).unwrap(), b"/");
    assert_eq!(get(&p, b"/inside").unwrap(), b"jailed");
    assert_eq!(sys::stat(&p, b"/outside"), Err(Errno::ENOENT));
    assert_eq!(sys::stat(&p, b"/../outside"), Err(Errno::ENOENT));
    assert_eq!(sys::stat(&p, b"/sub/../../../outside"), Err(Errno::ENOENT));
    let root = sys::stat(&p, b"/").unwrap().ino;
    assert_eq!(sys::stat(&p, b"/..").unwrap().ino, root);
    // Absolute symlinks resolve inside the jail too.
    sys::symlink(&p, b"/inside", b"/sub/l").unwrap();
    assert_eq!(get(&p, b"/sub/l").unwrap(), b"jailed");
    sys::chdir(&p, b"sub").unwrap();
    assert_eq!(sys::getcwd(&p).unwrap(), b"/sub");
}

// ----- statvfs ------------------------------------------------------------

#[test]
fn statvfs_describes_tmpfs_and_counts_usage() {
    let (_k, p) = boot();
    let before = sys::statvfs(&p, b"/").unwrap();
    assert_eq!(before.fs_type, TMPFS_MAGIC);
    assert_eq!((before.bsize, before.namemax), (4096, 255));
    put(&p, b"/big", &vec![7u8; 1 << 20]);
    let during = sys::statvfs(&p, b"/big").unwrap();
    assert_eq!(before.bfree - during.bfree, 256);
    assert!(during.ffree < before.ffree);
    sys::unlink(&p, b"/big").unwrap();
    assert_eq!(sys::statvfs(&p, b"/").unwrap().bfree, before.bfree);
}

#[test]
fn statvfs_of_a_mount_reports_its_own_size_and_fsid() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt", b"size=1m,nr_inodes=100");
    let root = sys::statvfs(&p, b"/").unwrap();
    let m = sys::statvfs(&p, b"/mnt").unwrap();
    assert_eq!((m.blocks, m.files), (256, 100));
    assert_ne!(m.fsid, root.fsid);
    let fd = sys::open(&p, b"/mnt", o::RDONLY, 0).unwrap();
    assert_eq!(sys::fstatvfs(&p, fd), Ok(m));
}

#[test]
fn a_full_tmpfs_gives_short_writes_then_enospc() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/mnt", 0o755).unwrap();
    mount_tmpfs(&p, b"/mnt", b"size=64k");
    let fd = sys::open(&p, b"/mnt/f", o::WRONLY | o::CREAT, 0o644).unwrap();
    assert_eq!(sys::write(&p, fd, &[1u8; 100_000]), Ok(65536));
    assert_eq!(sys::write(&p, fd, b"x"), Err(Errno::ENOSPC));
    sys::ftruncate(&p, fd, 0).unwrap();
    assert_eq!(sys::write(&p, fd, b"x"), Ok(1));
}

// ----- pipes --------------------------------------------------------------

#[test]
fn pipe_carries_bytes_in_order() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, 0).unwrap();
    sys::write(&p, w, b"hello ").unwrap();
    sys::write(&p, w, b"world").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(sys::read(&p, r, &mut buf), Ok(11));
    assert_eq!(&buf[..11], b"hello world");
    assert_eq!(sys::fstat(&p, r).unwrap().mode & s::IFMT, s::IFIFO);
    assert_eq!(sys::fcntl(&p, r, f::GETFL, 0), Ok(o::RDONLY as i64));
    assert_eq!(sys::fcntl(&p, w, f::GETFL, 0), Ok(o::WRONLY as i64));
}

#[test]
fn pipe_read_returns_eof_after_the_writer_closes() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, 0).unwrap();
    sys::write(&p, w, b"last").unwrap();
    sys::close(&p, w).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sys::read(&p, r, &mut buf), Ok(4));
    assert_eq!(sys::read(&p, r, &mut buf), Ok(0));
}

#[test]
fn pipe_write_without_readers_is_epipe() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, 0).unwrap();
    sys::close(&p, r).unwrap();
    assert_eq!(sys::write(&p, w, b"x"), Err(Errno::EPIPE));
}

#[test]
fn nonblocking_pipe_is_eagain_when_empty_or_full() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, o::NONBLOCK).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sys::read(&p, r, &mut buf), Err(Errno::EAGAIN));
    // Fill it: a large write is partial, then EAGAIN.
    let chunk = vec![0u8; 100_000];
    let n = sys::write(&p, w, &chunk).unwrap();
    assert!(n > 0 && n < chunk.len(), "wrote {n}");
    assert_eq!(sys::write(&p, w, b"x"), Err(Errno::EAGAIN));
    // Draining makes room again.
    let mut big = vec![0u8; n];
    assert_eq!(sys::read(&p, r, &mut big), Ok(n));
    assert_eq!(sys::write(&p, w, b"x"), Ok(1));
    // F_SETFL can switch it off.
    sys::fcntl(&p, r, f::SETFL, 0).unwrap();
    assert_eq!(sys::fcntl(&p, r, f::GETFL, 0), Ok(o::RDONLY as i64));
}

#[test]
fn blocking_pipe_read_waits_for_a_writer_on_another_thread() {
    with_watchdog(Duration::from_secs(30), || {
        let (_k, p) = boot();
        let (r, w) = sys::pipe2(&p, 0).unwrap();
        let q = p.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            sys::write(&q, w, b"late").unwrap();
        });
        let mut buf = [0u8; 8];
        assert_eq!(sys::read(&p, r, &mut buf), Ok(4));
        assert_eq!(&buf[..4], b"late");
        writer.join().unwrap();
    });
}

#[test]
fn pipe_small_writes_are_atomic_when_the_pipe_is_nearly_full() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, o::NONBLOCK).unwrap();
    let room = 65536 - 100;
    assert_eq!(sys::write(&p, w, &vec![0u8; room]), Ok(room));
    // 200 bytes <= PIPE_BUF do not fit: all or nothing.
    assert_eq!(sys::write(&p, w, &[1u8; 200]), Err(Errno::EAGAIN));
    assert_eq!(sys::write(&p, w, &[1u8; 100]), Ok(100));
    let _ = r;
}

#[test]
fn pipes_are_not_seekable() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, 0).unwrap();
    let mut buf = [0u8; 1];
    assert_eq!(sys::lseek(&p, r, 0, seek::SET), Err(Errno::ESPIPE));
    assert_eq!(sys::pread(&p, r, &mut buf, 0), Err(Errno::ESPIPE));
    assert_eq!(sys::pwrite(&p, w, b"x", 0), Err(Errno::ESPIPE));
}

#[test]
fn pipe2_flags() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, o::CLOEXEC).unwrap();
    assert_eq!(sys::fcntl(&p, r, f::GETFD, 0), Ok(f::FD_CLOEXEC as i64));
    assert_eq!(sys::fcntl(&p, w, f::GETFD, 0), Ok(f::FD_CLOEXEC as i64));
    assert_eq!(sys::pipe2(&p, o::APPEND), Err(Errno::EINVAL));
    assert_eq!(sys::pipe2(&p, 1 << 30), Err(Errno::EINVAL));
}

// ----- poll ---------------------------------------------------------------

fn pfd(fd: i32, events: i16) -> PollFd {
    PollFd {
        fd,
        events,
        revents: 0,
    }
}

#[test]
fn poll_reports_a_pipe_readable_after_a_write() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, 0).unwrap();
    let mut fds = [pfd(r, poll::IN), pfd(w, poll::OUT)];
    assert_eq!(sys::poll(&p, &mut fds, 0), Ok(1));
    assert_eq!((fds[0].revents, fds[1].revents), (0, poll::OUT));
    sys::write(&p, w, b"x").unwrap();
    assert_eq!(sys::poll(&p, &mut fds, 0), Ok(2));
    assert_eq!(fds[0].revents, poll::IN);
}

#[test]
fn poll_times_out_with_nothing_ready() {
    let (_k, p) = boot();
    let (r, _w) = sys::pipe2(&p, 0).unwrap();
    let mut fds = [pfd(r, poll::IN)];
    let start = Instant::now();
    assert_eq!(sys::poll(&p, &mut fds, 100), Ok(0));
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(90), "returned after {took:?}");
    assert!(took < Duration::from_secs(5), "returned after {took:?}");
    assert_eq!(fds[0].revents, 0);
}

#[test]
fn poll_reports_regular_files_always_ready() {
    let (_k, p) = boot();
    put(&p, b"/f", b"");
    let fd = sys::open(&p, b"/f", o::RDWR, 0).unwrap();
    let mut fds = [pfd(fd, poll::IN | poll::OUT)];
    assert_eq!(sys::poll(&p, &mut fds, -1), Ok(1));
    assert_eq!(fds[0].revents, poll::IN | poll::OUT);
}

#[test]
fn poll_reports_hangup_errors_and_invalid_descriptors() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, 0).unwrap();
    let (r2, w2) = sys::pipe2(&p, 0).unwrap();
    sys::close(&p, w).unwrap();
    sys::close(&p, r2).unwrap();
    let mut fds = [
        pfd(r, poll::IN),
        pfd(w2, poll::OUT),
        pfd(w, poll::IN),
        pfd(-1, poll::IN),
    ];
    assert_eq!(sys::poll(&p, &mut fds, 1000), Ok(3));
    assert_eq!(fds[0].revents, poll::HUP);
    // Linux: a write end without readers is writable and in error.
    assert_eq!(fds[1].revents, poll::OUT | poll::ERR);
    assert_eq!(fds[2].revents, poll::NVAL);
    assert_eq!(fds[3].revents, 0);
}

#[test]
fn poll_without_timeout_wakes_when_another_thread_writes() {
    with_watchdog(Duration::from_secs(30), || {
        let (_k, p) = boot();
        let (r, w) = sys::pipe2(&p, 0).unwrap();
        let q = p.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            sys::write(&q, w, b"x").unwrap();
        });
        let mut fds = [pfd(r, poll::IN)];
        assert_eq!(sys::poll(&p, &mut fds, -1), Ok(1));
        assert_eq!(fds[0].revents, poll::IN);
        writer.join().unwrap();
    });
}

#[test]
fn poll_write_end_is_not_ready_when_the_pipe_is_full() {
    let (_k, p) = boot();
    let (r, w) = sys::pipe2(&p, o::NONBLOCK).unwrap();
    while sys::write(&p, w, &[0u8; 4096]).is_ok() {}
    let mut fds = [pfd(w, poll::OUT)];
    assert_eq!(sys::poll(&p, &mut fds, 10), Ok(0));
    let mut buf = [0u8; 8192];
    sys::read(&p, r, &mut buf).unwrap();
    assert_eq!(sys::poll(&p, &mut fds, 0), Ok(1));
    assert_eq!(fds[0].revents, poll::OUT);
}

// ----- sysctl, uname ------------------------------------------------------

#[test]
fn sysctl_hostname_defaults_and_takes_a_boot_parameter() {
    let (_k, p) = boot();
    assert_eq!(
        sys::sysctl_get(&p, "kern.hostname"),
        Ok(SysctlValue::Str("rump".into()))
    );
    let k2 = Kernel::builder().hostname("box").boot().unwrap();
    let p2 = k2.process().unwrap();
    assert_eq!(
        sys::sysctl_get(&p2, "kern.hostname"),
        Ok(SysctlValue::Str("box".into()))
    );
    assert_eq!(
        sys::sysctl_get(&p2, "kern.ostype"),
        Ok(SysctlValue::Str("rump-rs".into()))
    );
}

#[test]
fn sysctl_set_hostname_as_root() {
    let (_k, p) = boot();
    sys::sysctl_set(&p, "kern.hostname", SysctlValue::Str("renamed".into())).unwrap();
    assert_eq!(
        sys::sysctl_get(&p, "kern.hostname"),
        Ok(SysctlValue::Str("renamed".into()))
    );
    sys::sethostname(&p, b"again").unwrap();
    assert_eq!(sys::uname(&p).unwrap().nodename, "again");
    let long = "x".repeat(65);
    assert_eq!(
        sys::sysctl_set(&p, "kern.hostname", SysctlValue::Str(long)),
        Err(Errno::EINVAL)
    );
}

#[test]
fn sysctl_errors() {
    let (_k, p) = boot();
    assert_eq!(
        sys::sysctl_set(&p, "kern.ostype", SysctlValue::Str("x".into())),
        Err(Errno::EPERM)
    );
    assert_eq!(sys::sysctl_get(&p, "kern.nonexistent"), Err(Errno::ENOENT));
    assert_eq!(
        sys::sysctl_set(&p, "kern.hostname", SysctlValue::Int(3)),
        Err(Errno::EINVAL)
    );
    let kern = sys::sysctl_list(&p, "kern.").unwrap();
    assert!(kern.iter().any(|(n, _)| n == "kern.hostname"));
    assert!(kern.iter().all(|(n, _)| n.starts_with("kern.")));
}

#[test]
fn uname_reports_the_sysctl_values() {
    let k = Kernel::builder().hostname("node1").boot().unwrap();
    let p = k.process().unwrap();
    let u = sys::uname(&p).unwrap();
    assert_eq!(u.sysname, "rump-rs");
    assert_eq!(u.nodename, "node1");
    assert!(!u.release.is_empty());
    assert_eq!(u.machine, std::env::consts::ARCH);
}

// ----- credentials --------------------------------------------------------

#[test]
fn root_setuid_drops_privilege_for_good() {
    let (_k, p) = boot();
    put(&p, b"/secret", b"");
    sys::chmod(&p, b"/secret", 0o600).unwrap();
    sys::setgid(&p, 1000).unwrap();
    sys::setuid(&p, 1000).unwrap();
    assert_eq!(
        (
            sys::getuid(&p),
            sys::geteuid(&p),
            sys::getgid(&p),
            sys::getegid(&p)
        ),
        (Ok(1000), Ok(1000), Ok(1000), Ok(1000))
    );
    assert_eq!(sys::setuid(&p, 0), Err(Errno::EPERM));
    assert_eq!(sys::open(&p, b"/secret", o::RDONLY, 0), Err(Errno::EACCES));
    // New files belong to the new identity.
    put(&p, b"/mine", b"");
    let st = sys::stat(&p, b"/mine").unwrap();
    assert_eq!((st.uid, st.gid), (1000, 1000));
}

#[test]
fn user_setuid_and_setgid_rules() {
    let (k, _root) = boot();
    let u = user(&k, 1000);
    assert_eq!(sys::setuid(&u, 1000), Ok(()));
    assert_eq!(sys::setuid(&u, 1001), Err(Errno::EPERM));
    assert_eq!(sys::setgid(&u, 1000), Ok(()));
    assert_eq!(sys::setgid(&u, 0), Err(Errno::EPERM));
    assert_eq!(sys::setuid(&u, u32::MAX), Err(Errno::EINVAL));
    // A set-user-ID program may return to its real id, not come back.
    let suid = k
        .process_as(Cred {
            euid: 0,
            ..Cred::user(1000, 1000)
        })
        .unwrap();
    sys::setuid(&suid, 0).unwrap();
    assert_eq!((sys::getuid(&suid), sys::geteuid(&suid)), (Ok(0), Ok(0)));
}

#[test]
fn setgroups_is_for_root_and_getgroups_reports_it() {
    let (k, p) = boot();
    assert_eq!(sys::getgroups(&p), Ok(vec![]));
    sys::setgroups(&p, &[10, 20]).unwrap();
    assert_eq!(sys::getgroups(&p), Ok(vec![10, 20]));
    let u = user(&k, 1000);
    assert_eq!(sys::setgroups(&u, &[]), Err(Errno::EPERM));
    // Supplementary groups grant group access.
    put(&p, b"/g", b"");
    sys::chown(&p, b"/g", 0, 20).unwrap();
    sys::chmod(&p, b"/g", 0o640).unwrap();
    sys::setuid(&p, 1000).unwrap();
    assert!(sys::open(&p, b"/g", o::RDONLY, 0).is_ok());
}

#[test]
fn every_process_has_its_own_pid() {
    let (k, p) = boot();
    let q = k.process().unwrap();
    assert_ne!(sys::getpid(&p), sys::getpid(&q));
    assert_eq!(sys::getpid(&p), Ok(p.pid()));
    assert_eq!(sys::getppid(&p), Ok(0));
}

// ----- *at calls ----------------------------------------------------------

#[test]
fn at_calls_resolve_relative_to_the_directory_descriptor() {
    let (_k, p) = boot();
    sys::mkdir(&p, b"/d", 0o755).unwrap();
    let d = sys::open(&p, b"/d", o::RDONLY | o::DIRECTORY, 0).unwrap();
    let fd = sys::openat(&p, d, b"f", o::WRONLY | o::CREAT, 0o644).unwrap();
    sys::write(&p, fd, b"at").unwrap();
    sys::mkdirat(&p, d, b"sub", 0o755).unwrap();
    sys::symlinkat(&p, b"f", d, b"l").unwrap();
    assert_eq!(sys::readlinkat(&p, d, b"l").unwrap(), b"f");
    sys::renameat(&p, d, b"f", d, b"g").unwrap();
    sys::linkat(&p, d, b"g", d, b"h", 0).unwrap();
    assert_eq!(sys::fstatat(&p, d, b"h", 0).unwrap().nlink, 2);
    assert_eq!(get(&p, b"/d/g").unwrap(), b"at");
    sys::unlinkat(&p, d, b"h", 0).unwrap();
    assert_eq!(sys::unlinkat(&p, d, b"sub", 0), Err(Errno::EISDIR));
    sys::unlinkat(&p, d, b"sub", at::REMOVEDIR).unwrap();
    assert_eq!(
        names(&p, b"/d").unwrap(),
        vec![b"g".to_vec(), b"l".to_vec()]
    );
    // AT_EMPTY_PATH stats the descriptor itself.
    let st = sys::fstatat(&p, d, b"", at::EMPTY_PATH).unwrap();
    assert_eq!(st.ino, sys::stat(&p, b"/d").unwrap().ino);
}
