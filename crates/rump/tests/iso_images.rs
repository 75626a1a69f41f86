//! ISO 9660 images made by real tools (xorriso, genisoimage) from a host
//! tree, read through our driver and compared with the tree: Rock Ridge
//! (names, types, modes, owners, sizes, contents, symlink targets, hard
//! links, device numbers, mtimes), relocated deep directories, Joliet-only
//! and plain ISO 9660 images, mount options, and `isoinfo` as a second
//! opinion on names.

mod ext2_util;
mod iso_util;

use std::collections::BTreeSet;

use iso_util::*;
use rump::sys;
use rump::Errno;

fn tools() -> bool {
    have("xorriso") && have("genisoimage") && have("isoinfo")
}

#[test]
fn rock_ridge_tree_matches_the_host() {
    require!(tools(), "xorriso, genisoimage or isoinfo not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    make_tree(&src, true);
    let img = dir.path().join("rr.iso");
    xorriso(&img, &src, &["-R", "-J"]);
    let (k, p) = mount(&img, "");
    let ours = normalize(walk_rump(&p, "/mnt"));
    let host = normalize(walk_host(&src));
    assert_same(&ours, &host);

    // Hard links are one file.
    let a = sys::lstat(&p, b"/mnt/hello.txt").unwrap();
    let b = sys::lstat(&p, b"/mnt/hard-link").unwrap();
    assert_eq!(a.ino, b.ino);
    assert_eq!(a.nlink, 2);
    // Distinct files have distinct inode numbers.
    let inos: BTreeSet<u64> = [
        "/mnt/empty",
        "/mnt/binary.dat",
        "/mnt/rel-link",
        "/mnt/full",
        "/mnt/deep",
    ]
    .iter()
    .map(|f| sys::lstat(&p, f.as_bytes()).unwrap().ino)
    .collect();
    assert_eq!(inos.len(), 5);
    // "." and ".." and the deepest directory.
    let deep: String = (0..DEPTH).map(|i| format!("/level{i}")).collect();
    let bottom = format!("/mnt/deep{deep}");
    let up = sys::stat(&p, format!("{bottom}/..").as_bytes()).unwrap();
    let parent = bottom.rsplit_once('/').unwrap().0;
    assert_eq!(up.ino, sys::stat(&p, parent.as_bytes()).unwrap().ino);
    assert_eq!(
        rump::fs::read(&p, format!("{bottom}/../level{}/bottom.txt", DEPTH - 1)).unwrap(),
        b"at the bottom\n"
    );
    // Through a symlink.
    assert_eq!(
        rump::fs::read(&p, "/mnt/rel-link").unwrap(),
        b"hello, world\n"
    );
    let vfs = sys::statvfs(&p, b"/mnt").unwrap();
    assert_eq!(vfs.fs_type, fs_iso9660_magic());
    assert_eq!(vfs.flag & 1, 1, "ST_RDONLY");

    // isoinfo's view of the Rock Ridge names is ours.
    let theirs: BTreeSet<String> = run("isoinfo", &["-R", "-f", "-i", img.to_str().unwrap()])
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    let mine: BTreeSet<String> = ours.keys().cloned().collect();
    assert_eq!(mine, theirs);
    drop(p);
    k.halt();

    // With RRIP 1.12 serial numbers (xorriso --hardlinks) too.
    let img2 = dir.path().join("rr-ino.iso");
    xorriso(&img2, &src, &["-R", "--hardlinks"]);
    let (k, p) = mount(&img2, "");
    let a = sys::lstat(&p, b"/mnt/hello.txt").unwrap();
    let b = sys::lstat(&p, b"/mnt/hard-link").unwrap();
    assert_eq!((a.ino, a.nlink), (b.ino, 2));
    assert_ne!(a.ino, sys::lstat(&p, b"/mnt/empty").unwrap().ino);
    assert_same(&normalize(walk_rump(&p, "/mnt")), &host);
    drop(p);
    k.halt();
}

fn fs_iso9660_magic() -> u64 {
    rump::iso9660::fs_iso9660::ISOFS_SUPER_MAGIC
}

#[test]
fn relocated_deep_directories_read_in_place() {
    require!(tools(), "xorriso, genisoimage or isoinfo not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    // genisoimage relocates directories deeper than 8 levels into
    // rr_moved (RRIP CL/PL/RE).
    let deepest = make_tree(&src, false);
    // genisoimage spins forever on symlink targets that need a
    // continuation area (xorriso covers those above).
    std::fs::remove_file(src.join("long-link")).unwrap();
    let img = dir.path().join("reloc.iso");
    genisoimage(&img, &src, &["-R"]);
    let raw = run("isoinfo", &["-l", "-i", img.to_str().unwrap()]);
    assert!(
        raw.contains("RR_MOVED"),
        "genisoimage did not relocate:\n{raw}"
    );
    let (k, p) = mount(&img, "");
    let mut ours = normalize(walk_rump(&p, "/mnt"));
    // The relocation directory is visible, as on Linux; it holds nothing
    // but the hidden originals.
    assert!(ours.contains_key("/rr_moved"));
    assert_eq!(rump::fs::read_dir(&p, "/mnt/rr_moved").unwrap().count(), 0);
    ours.remove("/rr_moved");
    let host = normalize(walk_host(&src));
    assert_same(&ours, &host);
    // ".." of a relocated directory is its logical parent.
    let rel = deepest.strip_prefix(&src).unwrap().to_str().unwrap();
    let bottom = format!("/mnt/{rel}");
    for depth in [DEPTH - 1, DEPTH - 3] {
        let comps: Vec<&str> = rel.split('/').collect();
        let d = format!("/mnt/{}", comps[..=depth].join("/"));
        let up = sys::stat(&p, format!("{d}/..").as_bytes()).unwrap().ino;
        let parent = sys::stat(&p, d.rsplit_once('/').unwrap().0.as_bytes())
            .unwrap()
            .ino;
        assert_eq!(up, parent, "{d}/..");
    }
    assert_eq!(
        rump::fs::read(&p, format!("{bottom}/bottom.txt")).unwrap(),
        b"at the bottom\n"
    );
    drop(p);
    k.halt();
}

/// Names of a walk below the root.
fn names(p: &rump::Process, path: &str) -> BTreeSet<String> {
    rump::fs::read_dir(p, path)
        .unwrap()
        .map(|e| String::from_utf8(e.unwrap().name_bytes().to_vec()).unwrap())
        .collect()
}

#[test]
fn joliet_only_images_use_joliet_names_and_options() {
    require!(tools(), "xorriso, genisoimage or isoinfo not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("Sub Dir/Inner")).unwrap();
    std::fs::write(src.join("Mixed Case File.txt"), b"joliet\n").unwrap();
    std::fs::write(src.join("Sub Dir/Inner/naïve café.txt"), b"utf-16\n").unwrap();
    std::fs::write(src.join("Sub Dir/data.bin"), vec![7u8; 10_000]).unwrap();
    let img = dir.path().join("joliet.iso");
    // genisoimage: xorriso writes Rock Ridge even without -R.
    genisoimage(&img, &src, &["-J"]);

    let (k, p) = mount(&img, "");
    assert_eq!(
        names(&p, "/mnt"),
        BTreeSet::from(["Mixed Case File.txt".to_string(), "Sub Dir".to_string()])
    );
    assert_eq!(
        rump::fs::read(&p, "/mnt/Sub Dir/Inner/naïve café.txt").unwrap(),
        b"utf-16\n"
    );
    assert_eq!(
        rump::fs::read(&p, "/mnt/Sub Dir/data.bin").unwrap(),
        vec![7u8; 10_000]
    );
    // No Rock Ridge: Linux's defaults, r-x for all, owned by root.
    let st = sys::stat(&p, b"/mnt/Mixed Case File.txt").unwrap();
    assert_eq!((st.mode, st.uid, st.gid, st.nlink), (0o100555, 0, 0, 1));
    let st = sys::stat(&p, b"/mnt/Sub Dir").unwrap();
    assert_eq!(st.mode, 0o040555);
    // The recording date is the host file's mtime (to the second).
    let host_mtime = std::fs::metadata(src.join("Mixed Case File.txt"))
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(
        sys::stat(&p, b"/mnt/Mixed Case File.txt")
            .unwrap()
            .mtime
            .sec,
        host_mtime
    );
    // isoinfo -J agrees on every path.
    // (isoinfo prints non-ASCII Joliet names in Latin-1: ASCII ones only.)
    let theirs: BTreeSet<String> = run("isoinfo", &["-J", "-f", "-i", img.to_str().unwrap()])
        .lines()
        .filter(|l| !l.is_empty() && l.is_ascii())
        .map(String::from)
        .collect();
    let ours: BTreeSet<String> = walk_rump(&p, "/mnt")
        .keys()
        .filter(|l| l.is_ascii())
        .cloned()
        .collect();
    assert_eq!(ours.len(), 4);
    assert_eq!(ours, theirs);
    sys::umount2(&p, b"/mnt", 0).unwrap();

    // uid=, gid=, mode=, dmode=.
    rump::iso9660::mount(
        &p,
        "/dev/cd0",
        "/mnt",
        "uid=1000,gid=100,mode=0444,dmode=0750",
    )
    .unwrap();
    let st = sys::stat(&p, b"/mnt/Mixed Case File.txt").unwrap();
    assert_eq!((st.mode, st.uid, st.gid), (0o100444, 1000, 100));
    assert_eq!(sys::stat(&p, b"/mnt/Sub Dir").unwrap().mode, 0o040750);
    sys::umount2(&p, b"/mnt", 0).unwrap();

    // nojoliet: the primary tree's 8.3-ish names, lower-cased.
    rump::iso9660::mount(&p, "/dev/cd0", "/mnt", "nojoliet").unwrap();
    let plain = names(&p, "/mnt");
    assert!(!plain.contains("Mixed Case File.txt"), "{plain:?}");
    assert!(
        plain
            .iter()
            .all(|n| n.chars().all(|c| !c.is_ascii_uppercase())),
        "{plain:?}"
    );
    assert_eq!(plain.len(), 2);
    sys::umount2(&p, b"/mnt", 0).unwrap();
    // Unknown options are refused.
    assert!(rump::iso9660::mount(&p, "/dev/cd0", "/mnt", "bogus").is_err());
    drop(p);
    k.halt();
}

#[test]
fn plain_level1_images_match_isoinfo() {
    require!(tools(), "xorriso, genisoimage or isoinfo not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("docs/old")).unwrap();
    std::fs::write(src.join("readme.txt"), b"plain iso\n").unwrap();
    std::fs::write(src.join("makefile"), b"all:\n").unwrap();
    std::fs::write(src.join("docs/guide.doc"), vec![1u8; 5000]).unwrap();
    std::fs::write(src.join("docs/old/v1.txt"), b"v1\n").unwrap();
    let img = dir.path().join("plain.iso");
    genisoimage(&img, &src, &[]);

    // map=normal (the default): lower case, no version.
    let (k, p) = mount(&img, "");
    let ours: BTreeSet<String> = walk_rump(&p, "/mnt").keys().cloned().collect();
    let want: BTreeSet<String> = [
        "/docs",
        "/docs/guide.doc",
        "/docs/old",
        "/docs/old/v1.txt",
        "/makefile",
        "/readme.txt",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(ours, want);
    assert_eq!(
        rump::fs::read(&p, "/mnt/docs/guide.doc").unwrap(),
        vec![1u8; 5000]
    );
    assert_eq!(
        rump::fs::read(&p, "/mnt/readme.txt").unwrap(),
        b"plain iso\n"
    );
    sys::umount2(&p, b"/mnt", 0).unwrap();

    // map=off: the identifiers as recorded, which is what isoinfo -f prints.
    rump::iso9660::mount(&p, "/dev/cd0", "/mnt", "map=off").unwrap();
    let ours: BTreeSet<String> = walk_rump(&p, "/mnt").keys().cloned().collect();
    let theirs: BTreeSet<String> = run("isoinfo", &["-f", "-i", img.to_str().unwrap()])
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    assert_eq!(ours, theirs);
    drop(p);
    k.halt();
}

#[test]
fn norock_falls_back_to_joliet_then_plain() {
    require!(tools(), "xorriso, genisoimage or isoinfo not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("Some File Name.txt"), b"x").unwrap();
    let link = src.join("link");
    std::os::unix::fs::symlink("Some File Name.txt", &link).unwrap();
    let img = dir.path().join("both.iso");
    xorriso(&img, &src, &["-R", "-J"]);
    let (k, p) = mount(&img, "norock");
    let n = names(&p, "/mnt");
    assert!(n.contains("Some File Name.txt"), "{n:?}");
    // Without Rock Ridge there are no symlinks: the link is not one.
    if let Ok(st) = sys::lstat(&p, b"/mnt/link") {
        assert_ne!(st.mode & 0o170000, 0o120000);
    }
    sys::umount2(&p, b"/mnt", 0).unwrap();
    rump::iso9660::mount(&p, "/dev/cd0", "/mnt", "norock,nojoliet").unwrap();
    let n = names(&p, "/mnt");
    assert!(!n.contains("Some File Name.txt"), "{n:?}");
    drop(p);
    k.halt();
}

#[test]
fn read_only_everywhere() {
    require!(tools(), "xorriso, genisoimage or isoinfo not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("d")).unwrap();
    std::fs::write(src.join("f"), b"data").unwrap();
    let img = dir.path().join("ro.iso");
    xorriso(&img, &src, &["-R"]);
    let (k, p) = boot();
    rump::ext2::register_image(&p, &img, "/dev/cd0", false).unwrap();
    rump::fs::create_dir_all(&p, "/mnt").unwrap();
    // A read-write mount is refused, with the type given or probed.
    for t in [&b"iso9660"[..], b"auto"] {
        assert_eq!(
            sys::mount(&p, b"/dev/cd0", b"/mnt", t, 0, b""),
            Err(Errno::EROFS)
        );
    }
    sys::mount(
        &p,
        b"/dev/cd0",
        b"/mnt",
        b"auto",
        sys::consts::ms::RDONLY,
        b"",
    )
    .unwrap();
    let m = sys::mounts(&p).unwrap();
    assert!(
        m.iter()
            .any(|m| m.target == "/mnt" && m.fstype == "iso9660"),
        "{m:?}"
    );
    use sys::consts::o;
    assert_eq!(sys::open(&p, b"/mnt/f", o::WRONLY, 0), Err(Errno::EROFS));
    assert_eq!(
        sys::open(&p, b"/mnt/new", o::CREAT | o::WRONLY, 0o644),
        Err(Errno::EROFS)
    );
    assert_eq!(sys::mkdir(&p, b"/mnt/x", 0o755), Err(Errno::EROFS));
    assert_eq!(sys::unlink(&p, b"/mnt/f"), Err(Errno::EROFS));
    assert_eq!(sys::rmdir(&p, b"/mnt/d"), Err(Errno::EROFS));
    assert_eq!(sys::chmod(&p, b"/mnt/f", 0o777), Err(Errno::EROFS));
    assert_eq!(sys::rename(&p, b"/mnt/f", b"/mnt/g"), Err(Errno::EROFS));
    assert_eq!(rump::fs::read(&p, "/mnt/f").unwrap(), b"data");
    let fd = sys::open(&p, b"/mnt/f", o::RDONLY, 0).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(sys::pread(&p, fd, &mut buf, 2).unwrap(), 2);
    assert_eq!(&buf[..2], b"ta");
    assert_eq!(sys::pread(&p, fd, &mut buf, 100).unwrap(), 0);
    sys::close(&p, fd).unwrap();
    assert_eq!(
        sys::open(&p, b"/mnt/d", o::RDONLY, 0)
            .map(|fd| sys::read(&p, fd, &mut buf))
            .unwrap(),
        Err(Errno::EISDIR)
    );
    drop(p);
    k.halt();
}

#[test]
fn probe_tells_iso_from_ext2() {
    require!(tools() && have("mke2fs"), "xorriso or mke2fs not installed");
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("f"), b"x").unwrap();
    let iso = dir.path().join("a.iso");
    xorriso(&iso, &src, &["-R"]);
    let ext2 = dir.path().join("b.img");
    ext2_util::mke2fs(&ext2, 8 << 20, &[]);
    let (k, p) = boot();
    rump::ext2::register_image(&p, &iso, "/dev/cd0", true).unwrap();
    rump::ext2::register_image(&p, &ext2, "/dev/disk0", true).unwrap();
    rump::fs::create_dir_all(&p, "/a").unwrap();
    rump::fs::create_dir_all(&p, "/b").unwrap();
    let ro = sys::consts::ms::RDONLY;
    sys::mount(&p, b"/dev/cd0", b"/a", b"auto", ro, b"").unwrap();
    sys::mount(&p, b"/dev/disk0", b"/b", b"auto", ro, b"").unwrap();
    let m = sys::mounts(&p).unwrap();
    let t = |target: &str| {
        m.iter()
            .find(|m| m.target == target)
            .unwrap()
            .fstype
            .clone()
    };
    assert_eq!((t("/a").as_str(), t("/b").as_str()), ("iso9660", "ext2"));
    // Naming the wrong type fails cleanly both ways.
    rump::fs::create_dir_all(&p, "/c").unwrap();
    sys::umount2(&p, b"/b", 0).unwrap();
    assert!(sys::mount(&p, b"/dev/disk0", b"/c", b"iso9660", ro, b"").is_err());
    sys::umount2(&p, b"/a", 0).unwrap();
    assert!(sys::mount(&p, b"/dev/cd0", b"/c", b"ext2", ro, b"").is_err());
    drop(p);
    k.halt();
}
