//! `rump fuse` mounted for real on /dev/fuse: POSIX behaviour through
//! std::fs and unmodified host tools (compared with Linux's ext2 on a
//! loop mount of an identical image), the image checked by e2fsck and
//! read back by Linux's driver, read-only mounts, corrupt images, signals
//! and crashes, random operations against a host tmpfs directory, and 16
//! processes at once.

mod fuse_util;

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use fuse_util::*;

/// The same operations, run on any mounted ext2 directory: host tools
/// as root, then as two unprivileged users in a sticky directory.
fn workload(root: &Path, src: &Path) {
    let q = |p: &Path| p.display().to_string();
    assert!(sh(root, None, &format!("cp -a {} tree", q(src))).success());
    assert!(sh(
        root,
        None,
        "tar cf - tree | (mkdir untar && cd untar && tar xf -)"
    )
    .success());
    if have("rsync") {
        assert!(sh(root, None, "rsync -a tree/ rsynced/").success());
    }
    assert!(sh(root, None, "mv untar/tree moved && ln -s moved/fuse_util lnk && ln moved/fuse.rs hard1 && ln hard1 hard2").success());
    assert!(sh(
        root,
        None,
        "find . -name '*.rs' | sort > list.txt && du -s tree > /dev/null"
    )
    .success());
    // Rename edge cases: over a file, over an empty directory, a
    // directory into itself (refused), a name onto itself.
    assert!(sh(root, None, "echo a > ra && echo b > rb && mv ra rb && mkdir d1 d2 && mv d1 d2 2>/dev/null; mkdir -p e1 e2/x && mv e1 e2/x 2>/dev/null; true").success());
    assert!(!sh(root, None, "mv moved moved/sub 2>/dev/null").success());
    // Sparse file with a hole and data past 4 GiB.
    let big = root.join("sparse");
    let mut f = std::fs::File::create(&big).unwrap();
    f.write_all(b"head").unwrap();
    f.seek(SeekFrom::Start((5 << 30) + 123)).unwrap();
    f.write_all(b"tail past 4 GiB").unwrap();
    drop(f);
    // Permissions, owners, set-id bits.
    std::fs::create_dir(root.join("shared")).unwrap();
    std::fs::set_permissions(root.join("shared"), std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::write(root.join("suid"), b"#!/bin/sh\n").unwrap();
    std::fs::set_permissions(root.join("suid"), std::fs::Permissions::from_mode(0o4755)).unwrap();
    assert!(sh(
        root,
        None,
        "chown 1000:1000 suid && mkfifo fifo && mknod cdev c 1 3"
    )
    .success());
    // Unprivileged users: 1000 makes files in the sticky directory,
    // 1001 may not remove or rename them, 1000 may.
    assert!(sh(
        root,
        Some(1000),
        "umask 022 && cd shared && echo mine > f1000 && mkdir d1000 && echo x > gone && rm gone"
    )
    .success());
    assert!(!sh(root, Some(1001), "rm -f shared/f1000 2>/dev/null").success());
    assert!(!sh(
        root,
        Some(1001),
        "mv shared/f1000 shared/stolen 2>/dev/null"
    )
    .success());
    assert!(!sh(root, Some(1001), "echo x > moved/fuse.rs 2>/dev/null").success());
    assert!(sh(root, Some(1001), "cat moved/fuse.rs > /dev/null").success());
    assert!(!sh(root, Some(1000), "chown 1001 shared/f1000 2>/dev/null").success());
    assert!(sh(root, Some(1000), "chmod 600 shared/f1000").success());
    assert!(!sh(root, Some(1001), "cat shared/f1000 > /dev/null 2>&1").success());
}

fn source_tree() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

#[test]
fn fuse_posix_tools_match_linux_and_image_reads_back() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ours.img");
    let limg = dir.path().join("linux.img");
    mke2fs(&img, 128, &["-b", "1024", "-E", "root_owner=0:0"]);
    std::fs::copy(&img, &limg).unwrap();

    let m = mount(&img, &dir.path().join("m"), &["allow_other"]).expect("mount");
    std::fs::set_permissions(&m.mnt, std::fs::Permissions::from_mode(0o755)).unwrap();
    workload(&m.mnt, &source_tree());
    // Holes: the sparse file reads zeros in the hole, and SEEK_DATA /
    // SEEK_HOLE answer.
    let mut f = std::fs::File::open(m.mnt.join("sparse")).unwrap();
    let mut b = [1u8; 8];
    f.seek(SeekFrom::Start(1 << 20)).unwrap();
    f.read_exact(&mut b).unwrap();
    assert_eq!(b, [0; 8]);
    assert_eq!(f.metadata().unwrap().len(), (5 << 30) + 123 + 15);
    assert!(
        f.metadata().unwrap().blocks() < 100,
        "the hole takes no blocks"
    );
    drop(f);
    // Hard-link counts and times.
    assert_eq!(std::fs::metadata(m.mnt.join("hard2")).unwrap().nlink(), 3);
    assert!(sh(&m.mnt, None, "touch -d '2001-02-03 04:05:06.789' hard1").success());
    let md = std::fs::metadata(m.mnt.join("hard2")).unwrap();
    assert_eq!((md.mtime(), md.mtime_nsec()), (981_173_106, 789_000_000));
    // chown cleared the set-user-ID bit, as on Linux.
    assert_eq!(
        std::fs::metadata(m.mnt.join("suid")).unwrap().mode() & 0o7777,
        0o755
    );
    let ours = listing(&m.mnt);
    let (st, err) = m.unmount();
    assert!(st.success(), "server failed: {err}");
    assert_clean(&img);

    let l = loop_mount(&limg, &dir.path().join("l"), false);
    workload(&l.mnt, &source_tree());
    let linux = listing(&l.mnt);
    drop(l);
    assert_eq!(ours.len(), linux.len());
    for (k, v) in &linux {
        assert_eq!(ours.get(k), Some(v), "{k} differs from Linux's ext2");
    }
    // Linux's driver reads our image back the same.
    let back = loop_mount(&img, &dir.path().join("back"), true);
    assert_eq!(listing(&back.mnt), ours);
}

#[test]
fn fuse_read_only_mount_leaves_image_byte_identical() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("ro.img");
    mke2fs(&img, 32, &[]);
    {
        let m = mount(&img, &dir.path().join("w"), &[]).expect("mount");
        assert!(sh(
            &m.mnt,
            None,
            &format!("cp -a {} t && echo x > f", source_tree().display())
        )
        .success());
        assert!(m.unmount().0.success());
    }
    let before = hash(&std::fs::read(&img).unwrap());
    let m = mount(&img, &dir.path().join("m"), &["ro"]).expect("ro mount");
    let l = listing(&m.mnt);
    assert!(l.contains_key("f"));
    let e = std::fs::write(m.mnt.join("f"), b"y").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EROFS));
    assert_eq!(
        std::fs::create_dir(m.mnt.join("new"))
            .unwrap_err()
            .raw_os_error(),
        Some(libc::EROFS)
    );
    assert!(m.unmount().0.success());
    assert_eq!(
        hash(&std::fs::read(&img).unwrap()),
        before,
        "a read-only mount wrote to the image"
    );
}

#[test]
fn fuse_corrupt_images_are_refused_or_give_errors_never_wedge() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.img");
    mke2fs(&base, 4, &["-b", "1024", "-N", "64"]);
    {
        let m = mount(&base, &dir.path().join("b"), &[]).expect("mount");
        assert!(sh(&m.mnt, None, "mkdir -p a/b/c && for i in 1 2 3 4 5 6 7 8; do head -c $((i*3000)) /dev/zero > a/f$i; done && ln -s a/f1 s && ln a/f2 a/b/h").success());
        assert!(m.unmount().0.success());
    }
    let good = std::fs::read(&base).unwrap();
    // Garbage is refused at mount, with one line.
    let junk = dir.path().join("junk.img");
    std::fs::write(&junk, vec![0x5a; 1 << 20]).unwrap();
    match mount(&junk, &dir.path().join("j"), &[]) {
        Ok(_) => panic!("a junk image mounted"),
        Err((err, st)) => {
            assert!(!st.success());
            assert_eq!(err.trim().lines().count(), 1, "not one line: {err}");
            assert!(err.contains("junk.img"), "{err}");
        }
    }
    let mut rng = Rng(0x5eed_f00d);
    let (mut refused, mut mounted) = (0, 0);
    for round in 0..24 {
        let mut bad = good.clone();
        // Metadata lives in the first 64 KiB of this small image.
        for _ in 0..1 + rng.below(8) {
            let at = 1024 + rng.below(60 * 1024) as usize;
            bad[at] = rng.next() as u8;
        }
        let img = dir.path().join(format!("bad{round}.img"));
        std::fs::write(&img, &bad).unwrap();
        let mnt = dir.path().join(format!("m{round}"));
        match mount(&img, &mnt, &[]) {
            Err((err, _)) => {
                refused += 1;
                assert!(err.trim().lines().count() <= 1, "round {round}: {err}");
            }
            Ok(m) => {
                mounted += 1;
                // Every request is answered: these finish (with errors
                // where the image is damaged) within the time limit.
                let _ = sh(&m.mnt, None, "timeout 60 find . -exec stat {} + > /dev/null 2>&1; timeout 60 cat a/* a/b/* s > /dev/null 2>&1; timeout 60 sh -c 'echo x > a/new; mkdir a/nd; rm -rf a/b' 2>/dev/null; true");
                let (st, err) = m.unmount();
                assert!(
                    st.success() || !err.contains("panicked"),
                    "round {round}: {err}"
                );
            }
        }
    }
    eprintln!("corrupt images: {refused} refused at mount, {mounted} mounted and walked");
}

#[test]
fn fuse_sigterm_under_load_keeps_fsynced_data_and_image_clean() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("t.img");
    mke2fs(&img, 64, &[]);
    let m = mount(&img, &dir.path().join("m"), &[]).expect("mount");
    let mnt = m.mnt.clone();
    let writer = std::thread::spawn(move || {
        let mut synced = Vec::new();
        for i in 0..100_000 {
            let r = (|| -> std::io::Result<()> {
                let mut f = std::fs::File::create(mnt.join(format!("f{i}")))?;
                f.write_all(&vec![(i % 251) as u8; 1000 + i % 7000])?;
                f.sync_all()
            })();
            if r.is_err() {
                break;
            }
            synced.push(i);
        }
        synced
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(Command::new("kill")
        .args(["-TERM", &m.pid().to_string()])
        .status()
        .unwrap()
        .success());
    let (st, err) = m.wait_exit(Duration::from_secs(60));
    let synced = writer.join().unwrap();
    let _ = Command::new("umount")
        .arg("-l")
        .arg(dir.path().join("m"))
        .status();
    assert!(st.success(), "server: {err}");
    assert!(synced.len() > 10, "the writer got nowhere");
    assert_clean(&img);
    let l = loop_mount(&img, &dir.path().join("l"), true);
    for &i in &synced {
        let data = std::fs::read(l.mnt.join(format!("f{i}"))).unwrap();
        assert_eq!(
            data,
            vec![(i % 251) as u8; 1000 + i % 7000],
            "f{i} lost after fsync"
        );
    }
}

#[test]
fn fuse_sigkill_leaves_a_mount_fusermount_clears_and_fsck_repairs() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("k.img");
    mke2fs(&img, 32, &[]);
    let m = mount(&img, &dir.path().join("m"), &[]).expect("mount");
    for i in 0..50 {
        let mut f = std::fs::File::create(m.mnt.join(format!("f{i}"))).unwrap();
        f.write_all(&vec![i as u8; 3000]).unwrap();
        f.sync_all().unwrap();
    }
    let d = m.mnt.join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::File::open(&d).unwrap().sync_all().unwrap();
    std::fs::write(m.mnt.join("unsynced"), b"maybe").unwrap();
    assert!(Command::new("kill")
        .args(["-KILL", &m.pid().to_string()])
        .status()
        .unwrap()
        .success());
    let (_, _) = m.wait_exit(Duration::from_secs(30));
    let st = Command::new("fusermount3")
        .arg("-u")
        .arg(dir.path().join("m"))
        .status()
        .unwrap();
    assert!(st.success(), "fusermount3 -u failed after a crash");
    let st = Command::new("e2fsck")
        .arg("-fy")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        st.status.code().unwrap_or(8) <= 1,
        "e2fsck -fy could not repair"
    );
    assert_clean(&img);
    let l = loop_mount(&img, &dir.path().join("l"), true);
    for i in 0..50 {
        assert_eq!(
            std::fs::read(l.mnt.join(format!("f{i}"))).unwrap(),
            vec![i as u8; 3000]
        );
    }
}

/// One random operation, run on a directory; the result as text
/// (`ok:...` or the errno), so two directories can be compared.
fn random_op(root: &Path, rng: &mut Rng, names: &[&str]) -> (String, String) {
    let pick = |rng: &mut Rng| names[rng.below(names.len() as u64) as usize];
    let a = pick(rng);
    let b = pick(rng);
    let pa = root.join(a);
    let pb = root.join(b);
    let op = rng.below(12);
    let n = rng.below(20_000) as usize;
    let fill = rng.next() as u8;
    let desc = format!("op{op} {a} {b} {n}");
    let r: std::io::Result<String> = (|| {
        Ok(match op {
            0 => {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&pa)?
                    .write_all(&vec![fill; n])?;
                String::new()
            }
            1 => {
                let mut f = std::fs::OpenOptions::new().write(true).open(&pa)?;
                f.seek(SeekFrom::Start(n as u64 * 3))?;
                f.write_all(&vec![fill; n % 5000])?;
                String::new()
            }
            2 => format!("{:016x}", hash(&std::fs::read(&pa)?)),
            3 => {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&pa)?
                    .set_len(n as u64)?;
                String::new()
            }
            4 => std::fs::rename(&pa, &pb).map(|_| String::new())?,
            5 => std::fs::remove_file(&pa).map(|_| String::new())?,
            6 => std::fs::create_dir(&pa).map(|_| String::new())?,
            7 => std::fs::remove_dir(&pa).map(|_| String::new())?,
            8 => std::fs::hard_link(&pa, &pb).map(|_| String::new())?,
            9 => std::os::unix::fs::symlink(b, &pa).map(|_| String::new())?,
            10 => {
                let md = std::fs::symlink_metadata(&pa)?;
                format!(
                    "{:?} {} {} {:o}",
                    md.file_type(),
                    if md.is_dir() { 0 } else { md.len() },
                    md.nlink(),
                    md.mode() & 0o7777
                )
            }
            _ => {
                let mut v: Vec<_> = std::fs::read_dir(&pa)?
                    .map(|e| e.unwrap().file_name())
                    .collect();
                v.sort();
                format!("{v:?}")
            }
        })
    })();
    let out = match r {
        Ok(s) => format!("ok:{s}"),
        Err(e) => format!("err:{:?}", e.raw_os_error()),
    };
    (desc, out)
}

#[test]
fn fuse_random_ops_match_a_host_tmpfs_directory() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("r.img");
    mke2fs(&img, 64, &[]);
    let host = tempfile::tempdir_in("/dev/shm").unwrap();
    let m = mount(&img, &dir.path().join("m"), &[]).expect("mount");
    let work = m.mnt.join("w");
    std::fs::create_dir(&work).unwrap();
    let names = ["a", "b", "c", "d", "a/x", "b/y", "c/z", "e"];
    let (mut r1, mut r2) = (Rng(42), Rng(42));
    for i in 0..4000 {
        let (d1, o1) = random_op(&work, &mut r1, &names);
        let (d2, o2) = random_op(host.path(), &mut r2, &names);
        assert_eq!(d1, d2);
        assert_eq!(o1, o2, "step {i}: {d1} differs from the host");
    }
    assert_eq!(listing(&work).len(), listing(host.path()).len());
    assert!(m.unmount().0.success());
    assert_clean(&img);
}

#[test]
fn fuse_sixteen_processes_at_once_leave_image_clean() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("c.img");
    mke2fs(&img, 256, &[]);
    let tarball = dir.path().join("src.tar");
    assert!(sh(
        dir.path(),
        None,
        &format!(
            "tar cf {} -C {} .",
            tarball.display(),
            source_tree().parent().unwrap().display()
        )
    )
    .success());
    let m = mount(&img, &dir.path().join("m"), &[]).expect("mount");
    let mut kids = Vec::new();
    for i in 0..16 {
        let script = match i % 4 {
            0 => format!("mkdir u{i} && tar xf {} -C u{i}", tarball.display()),
            1 => "for r in 1 2 3; do find . -exec stat {} + > /dev/null 2>&1; done; true".to_string(),
            2 => format!("mkdir r{i} && tar xf {} -C r{i} && rm -rf r{i}", tarball.display()),
            _ => format!("dd if=/dev/urandom of=dd{i} bs=64k count=64 conv=fsync status=none && cmp dd{i} dd{i}"),
        };
        kids.push(
            Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(&m.mnt)
                .spawn()
                .unwrap(),
        );
    }
    for mut k in kids {
        assert!(k.wait().unwrap().success());
    }
    assert!(m.unmount().0.success());
    assert_clean(&img);
}

/// `part=N` mounts partition N of a GPT disk (and refuses one that does
/// not exist); `uid=N`/`gid=N` swap host id N with the image's id 0 both
/// ways: files root owns in the image show as N, host user N acts as the
/// image's root (its files are stored as 0, read back with debugfs), and
/// host root acts as image user N.
#[test]
fn fuse_partition_and_id_mapping() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    require!(have("sgdisk"), "sgdisk (gdisk) not installed");
    require!(have("debugfs"), "debugfs not installed");
    let dir = tempfile::tempdir().unwrap();
    // A GPT disk: partition 1 of 4 MiB, partition 2 of 16 MiB holding ext2.
    let disk = dir.path().join("disk.img");
    std::fs::File::create(&disk)
        .unwrap()
        .set_len(32 << 20)
        .unwrap();
    let st = Command::new("sgdisk")
        .args(["-n", "1:2048:+4M", "-n", "2:0:+16M"])
        .arg(&disk)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let out = Command::new("sgdisk")
        .args(["-i", "2"])
        .arg(&disk)
        .output()
        .unwrap();
    let info = String::from_utf8_lossy(&out.stdout).into_owned();
    let first: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("First sector: "))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no first sector in {info}"));
    let part = dir.path().join("p2.img");
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("in-partition-2"), b"second partition\n").unwrap();
    mke2fs(
        &part,
        16,
        &["-d", src.to_str().unwrap(), "-E", "root_owner=0:0"],
    );
    let bytes = std::fs::read(&part).unwrap();
    {
        use std::os::unix::fs::FileExt;
        let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
        f.write_all_at(&bytes, first * 512).unwrap();
    }

    let m = mount(
        &disk,
        &dir.path().join("m"),
        &["part=2", "uid=1234", "gid=4321", "allow_other"],
    )
    .expect("mount part=2");
    let f = m.mnt.join("in-partition-2");
    assert_eq!(std::fs::read(&f).unwrap(), b"second partition\n");
    let md = std::fs::metadata(&f).unwrap();
    assert_eq!((md.uid(), md.gid()), (1234, 4321), "image root shown as N");
    // Host user 1234 is the image's root: it may write the root directory
    // (the image's root owns it); host root, now image user 1234, may not.
    assert!(sh(&m.mnt, Some(1234), "echo x > by-user-1234").success());
    let e = std::fs::write(m.mnt.join("by-host-root"), b"x").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EACCES));
    assert_eq!(
        std::fs::metadata(m.mnt.join("by-user-1234")).unwrap().uid(),
        1234
    );
    assert!(m.unmount().0.success());

    // Partition 2 as a plain image again: the file host user 1234 made is
    // the image root's, like the original one.
    let mut p2 = vec![0u8; 16 << 20];
    {
        use std::os::unix::fs::FileExt;
        std::fs::File::open(&disk)
            .unwrap()
            .read_exact_at(&mut p2, first * 512)
            .unwrap();
    }
    std::fs::write(&part, &p2).unwrap();
    assert_clean(&part);
    let stat = |name: &str| {
        let o = Command::new("debugfs")
            .args(["-R", &format!("stat /{name}")])
            .arg(&part)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let created = stat("by-user-1234");
    assert!(created.contains("User:     0"), "{created}");
    let orig = stat("in-partition-2");
    assert!(
        orig.contains("User:     0") && orig.contains("Group:     0"),
        "{orig}"
    );

    // A partition that does not exist: a clear error, no mount.
    match mount(&disk, &dir.path().join("n"), &["part=3"]) {
        Ok(m) => {
            let _ = m.unmount();
            panic!("part=3 mounted");
        }
        Err((err, status)) => {
            assert!(!status.success());
            assert!(err.contains("partition"), "{err}");
        }
    }
}

/// Extended attributes are not served (the ext2 driver has no xattr
/// blocks yet): every call answers "not supported", the same each time,
/// and the file is untouched.
#[test]
fn fuse_xattrs_answer_not_supported_consistently() {
    use std::ffi::CString;
    if let Some(why) = missing() {
        require!(false, why);
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("x.img");
    mke2fs(&img, 16, &[]);
    let m = mount(&img, &dir.path().join("m"), &[]).expect("mount");
    let f = m.mnt.join("f");
    std::fs::write(&f, b"data").unwrap();
    let path = CString::new(f.to_str().unwrap()).unwrap();
    let name = CString::new("user.test").unwrap();
    for _ in 0..3 {
        // SAFETY: NUL-terminated strings and a buffer valid for its length.
        let set =
            unsafe { libc::setxattr(path.as_ptr(), name.as_ptr(), b"v".as_ptr().cast(), 1, 0) };
        let set_err = std::io::Error::last_os_error().raw_os_error();
        assert_eq!((set, set_err), (-1, Some(libc::EOPNOTSUPP)));
        let mut buf = [0u8; 64];
        // SAFETY: as above.
        let get = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        let get_err = std::io::Error::last_os_error().raw_os_error();
        assert_eq!((get, get_err), (-1, Some(libc::EOPNOTSUPP)));
        // SAFETY: as above.
        let list = unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        let list_err = std::io::Error::last_os_error().raw_os_error();
        assert!(
            list == 0 || (list == -1 && list_err == Some(libc::EOPNOTSUPP)),
            "listxattr: {list} {list_err:?}"
        );
    }
    assert_eq!(std::fs::read(&f).unwrap(), b"data");
    assert!(m.unmount().0.success());
    assert_clean(&img);
}
