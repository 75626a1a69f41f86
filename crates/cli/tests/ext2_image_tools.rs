//! The image tools and `rump newfs`, run as a user would: through the
//! built binary, on image files, judged by e2fsck and by the host's view
//! of what they copy out.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn rump(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rump"))
        .args(args)
        .output()
        .expect("run rump")
}

fn ok(args: &[&str]) -> String {
    let out = rump(args);
    assert!(
        out.status.success(),
        "rump {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn have_e2fsck() -> bool {
    Command::new("e2fsck").arg("-V").output().is_ok()
}

fn fsck_clean(img: &Path) {
    let out = Command::new("e2fsck")
        .args(["-f", "-n"])
        .arg(img)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "e2fsck -fn: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn ext2_tools_round_trip() {
    if !have_e2fsck() {
        eprintln!("skipped: e2fsprogs not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("t.img");
    let img_s = img.to_str().unwrap();
    let at = |p: &str| format!("{img_s}:{p}");
    for (bs, inodes) in [("1024", "2000"), ("4096", "500")] {
        ok(&["newfs", "-q", "-s", "32m", "-b", bs, "-N", inodes, img_s]);
        fsck_clean(&img);
        assert!(ok(&["df", img_s]).contains("1K-blocks"));
    }
    // Host tree in, with a symlink and a larger file.
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello\n").unwrap();
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 241) as u8).collect();
    std::fs::write(src.join("sub/big.bin"), &big).unwrap();
    std::fs::write(src.join("sub/deeper/.hidden"), b"h").unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    let fifo = std::ffi::CString::new(src.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    ok(&["cp", "-r", src.to_str().unwrap(), &at("/")]);
    assert_eq!(ok(&["cat", &at("/src/hello.txt")]), "hello\n");
    assert_eq!(ok(&["cat", &at("/src/link")]), "hello\n");
    assert_eq!(ok(&["ls", &at("/src")]), "fifo\nhello.txt\nlink\nsub\n");
    assert!(ok(&["ls", "-l", &at("/src/fifo")]).starts_with("prw-r-----"));
    assert!(ok(&["ls", "-a", &at("/src/sub/deeper")]).contains(".hidden"));
    let long = ok(&["ls", "-l", &at("/src")]);
    assert!(long.contains("link -> hello.txt"), "{long}");
    assert!(long.starts_with("total "), "{long}");
    // Changes.
    ok(&["mkdir", "-p", &at("/a/b/c")]);
    ok(&["mv", &at("/src/hello.txt"), &at("/a/b")]);
    ok(&["ln", &at("/a/b/hello.txt"), &at("/a/hard")]);
    ok(&["ln", "-s", "b/hello.txt", &at("/a/soft")]);
    ok(&["chmod", "640", &at("/a/hard")]);
    ok(&["chown", "7:8", &at("/a/hard")]);
    ok(&["touch", &at("/a/new")]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rump"))
        .args(["write", &at("/a/from-stdin")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"via stdin").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(ok(&["cat", &at("/a/from-stdin")]), "via stdin");
    let st = ok(&["stat", &at("/a/hard")]);
    assert!(st.contains("Links: 2"), "{st}");
    assert!(st.contains("(0640/-rw-r-----)"), "{st}");
    assert!(st.contains("Uid: (    7)"), "{st}");
    let found = ok(&["find", &at("/a"), "--type", "f"]);
    assert_eq!(found, "/a/b/hello.txt\n/a/from-stdin\n/a/hard\n/a/new\n");
    assert_eq!(
        ok(&["find", &at("/"), "--name", "*.bin"]),
        "/src/sub/big.bin\n"
    );
    let du = ok(&["du", "-s", &at("/src")]);
    let kib: u64 = du.split('\t').next().unwrap().parse().unwrap();
    assert!(kib >= 1_500_000 / 1024, "{du}");
    fsck_clean(&img);
    // And out again.
    let out_dir = dir.path().join("out");
    ok(&["cp", "-r", &at("/src"), out_dir.to_str().unwrap()]);
    assert_eq!(std::fs::read(out_dir.join("sub/big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read_link(out_dir.join("link")).unwrap(),
        Path::new("hello.txt")
    );
    assert_eq!(
        std::fs::read(out_dir.join("sub/deeper/.hidden")).unwrap(),
        b"h"
    );
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(out_dir.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    // Errors: messages and exit codes a shell user expects.
    let out = rump(&["cat", &at("/missing")]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("rump cat: {}: No such file or directory\n", at("/missing"))
    );
    let out = rump(&["rm", &at("/a")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Is a directory"));
    let out = rump(&["ls", "/not/an/image/path"]);
    assert_eq!(out.status.code(), Some(1));
    // Read-only commands leave the image untouched.
    let before = std::fs::read(&img).unwrap();
    ok(&["ls", "-lR", &at("/")]);
    ok(&["cat", &at("/src/sub/big.bin")]);
    assert!(
        std::fs::read(&img).unwrap() == before,
        "a read-only command wrote to the image"
    );
    ok(&["rm", "-r", &at("/src"), &at("/a")]);
    assert_eq!(ok(&["ls", &at("/")]), "lost+found\n");
    fsck_clean(&img);
}

#[test]
fn ext2_tools_on_a_partition() {
    use rump::ext2::dev_blk::part::{write_gpt, GptEntryRepr};
    use rump::ext2::dev_blk::{MemDevice, Partition};
    use std::sync::Arc;
    let disk = Arc::new(MemDevice::new(24 * 2048));
    write_gpt(
        &*disk,
        [1; 16],
        &[GptEntryRepr {
            type_guid: [0xAF; 16],
            unique_guid: [2; 16],
            first_lba: 2048,
            last_lba: 2048 + 16 * 2048 - 1,
            attributes: 0,
        }],
    )
    .unwrap();
    let part = Partition::new(disk.clone(), 2048, 16 * 2048, false).unwrap();
    rump::ext2::fs_ext2::mkfs::format(
        &part,
        &rump::ext2::MkfsOptions {
            block_size: 1024,
            now: 1_700_000_000,
            ..Default::default()
        },
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    std::fs::write(&img, disk.to_bytes()).unwrap();
    let p1 = format!("{}@p1", img.display());
    let at = |p: &str| format!("{p1}:{p}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rump"))
        .args(["write", &at("/note")])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"in p1").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(ok(&["cat", &at("/note")]), "in p1");
    assert_eq!(ok(&["ls", &at("/")]), "lost+found\nnote\n");
    let out = rump(&["ls", &format!("{}@p2:/", img.display())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such partition"));
    // The whole disk is not a file system.
    let out = rump(&["ls", &format!("{}:/", img.display())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown file system type"));
}

/// Runs `rump ARGS` with `RUMP_SERVER` set and `input` on standard input.
fn on_server(url: &str, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rump"))
        .args(args)
        .env("RUMP_SERVER", url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn ok_on(url: &str, args: &[&str]) -> String {
    let out = on_server(url, args, b"");
    assert!(
        out.status.success(),
        "rump {args:?} against the server failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn image_tools_against_a_server() {
    use std::io::Read;
    if !have_e2fsck() {
        eprintln!("skipped: e2fsprogs not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("s.img");
    let img_s = img.to_str().unwrap();
    ok(&["newfs", "-q", "-s", "16m", img_s]);
    let sock = dir.path().join("s.sock");
    let url = format!("unix://{}", sock.display());
    let mut server = Command::new(env!("CARGO_BIN_EXE_rump"))
        .args(["server", "--ready-stdout", "--log", "quiet"])
        .arg(format!("--disk=/dev/disk0={img_s}"))
        .args(["--mount", "ext2:/dev/disk0:/mnt", &url])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = [0u8; 5];
    server
        .stdout
        .take()
        .unwrap()
        .read_exact(&mut ready)
        .expect("server ready");

    // Plain absolute paths name the server's tree.
    let w = on_server(&url, &["write", "/mnt/a.txt"], b"hello server\n");
    assert!(w.status.success(), "{}", String::from_utf8_lossy(&w.stderr));
    assert_eq!(ok_on(&url, &["cat", "/mnt/a.txt"]), "hello server\n");
    ok_on(&url, &["mkdir", "-p", "/mnt/d/e"]);
    ok_on(&url, &["ln", "-s", "a.txt", "/mnt/d/link"]);
    ok_on(&url, &["touch", "/mnt/d/e/empty"]);
    ok_on(&url, &["chmod", "600", "/mnt/a.txt"]);
    let ls = ok_on(&url, &["ls", "-l", "/mnt"]);
    assert!(
        ls.lines()
            .any(|l| l.starts_with("-rw------- ") && l.ends_with(" a.txt")),
        "{ls}"
    );
    assert!(ls.lines().any(|l| l.ends_with(" d")), "{ls}");
    assert_eq!(
        ok_on(&url, &["find", "/mnt/d"]),
        "/mnt/d\n/mnt/d/e\n/mnt/d/e/empty\n/mnt/d/link\n"
    );
    let st = ok_on(&url, &["stat", "/mnt/d/link"]);
    assert!(st.contains("File: /mnt/d/link -> a.txt"), "{st}");
    assert!(st.contains(&format!("Device: {url}")), "{st}");
    assert!(ok_on(&url, &["df", "/mnt"]).contains(&url));

    // cp: `:/PATH` is the server's, anything else the host's.
    let host = dir.path().join("host.bin");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&host, &data).unwrap();
    ok_on(&url, &["cp", host.to_str().unwrap(), ":/mnt/d/"]);
    let out = dir.path().join("out");
    ok_on(&url, &["cp", "-r", ":/mnt/d", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("host.bin")).unwrap(), data);
    assert_eq!(
        std::fs::read_link(out.join("link")).unwrap(),
        Path::new("a.txt")
    );
    assert!(out.join("e/empty").is_file());
    ok_on(&url, &["mv", "/mnt/d/host.bin", "/mnt/moved.bin"]);
    let du = ok_on(&url, &["du", "-s", "/mnt/moved.bin"]);
    assert!(du.starts_with("296\t") || du.starts_with("300\t"), "{du}");
    ok_on(&url, &["rm", "-r", "/mnt/d"]);
    let missing = on_server(&url, &["cat", "/mnt/d/link"], b"");
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("No such file or directory"));
    // A relative path is neither an image path nor a kernel path.
    let bad = on_server(&url, &["ls", "mnt"], b"");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("not of the form IMAGE:PATH or /PATH"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );

    // Halting the server leaves the image consistent with what was done.
    ok_on(&url, &["halt"]);
    assert!(server.wait().unwrap().success());
    fsck_clean(&img);
    assert_eq!(ok(&["cat", &format!("{img_s}:/a.txt")]), "hello server\n");
    assert_eq!(rump(&["cat", &format!("{img_s}:/moved.bin")]).stdout, data);
    assert_eq!(
        ok(&["ls", &format!("{img_s}:/")]),
        "a.txt\nlost+found\nmoved.bin\n"
    );
}

#[test]
fn cp_keeps_holes_both_ways() {
    use std::os::unix::fs::{FileExt, MetadataExt};
    if !have_e2fsck() {
        eprintln!("skipped: e2fsprogs not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("h.img");
    let img_s = img.to_str().unwrap();
    ok(&["newfs", "-q", "-s", "32m", "-b", "4096", img_s]);
    // 64 MiB with 8 KiB of data: more than the image holds if the holes
    // were filled.
    let src = dir.path().join("sparse");
    let f = std::fs::File::create(&src).unwrap();
    f.set_len(64 << 20).unwrap();
    f.write_all_at(&[1u8; 4096], 0).unwrap();
    f.write_all_at(&[2u8; 4096], 40 << 20).unwrap();
    drop(f);
    ok(&["cp", src.to_str().unwrap(), &format!("{img_s}:/sparse")]);
    let st = ok(&["stat", &format!("{img_s}:/sparse")]);
    assert!(st.contains("Size: 67108864"), "{st}");
    let blocks: u64 = st
        .split("Blocks:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|b| b.parse().ok())
        .unwrap();
    // 8 KiB of data plus an indirect block or two, in 512-byte units.
    assert!(blocks <= 64, "holes filled in the image: {blocks} blocks");
    fsck_clean(&img);
    let back = dir.path().join("back");
    ok(&["cp", &format!("{img_s}:/sparse"), back.to_str().unwrap()]);
    let m = std::fs::metadata(&back).unwrap();
    assert_eq!(m.len(), 64 << 20);
    assert!(
        m.blocks() <= 64,
        "holes filled on the host: {} blocks",
        m.blocks()
    );
    let (a, b) = (std::fs::read(&src).unwrap(), std::fs::read(&back).unwrap());
    assert!(a == b, "contents differ");
}
