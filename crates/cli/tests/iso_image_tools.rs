//! The image tools on ISO 9660 images, run as a user would: `rump ls`,
//! `cat`, `cp` (recursive, out to the host) and `find` on an image made by
//! xorriso, and a clear refusal for writes.

use std::process::{Command, Output};

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

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn iso_tools_list_and_copy_out() {
    if !have("xorriso") {
        eprintln!("skipped: xorriso not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("hello.txt"), b"hello\n").unwrap();
    std::fs::write(src.join("A Long Mixed-Case Name.txt"), b"long\n").unwrap();
    let data: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("sub/deeper/data.bin"), &data).unwrap();
    std::os::unix::fs::symlink("hello.txt", src.join("link")).unwrap();
    let img = dir.path().join("cd.iso");
    let st = Command::new("xorriso")
        .args(["-as", "mkisofs", "-quiet", "-R", "-J", "-o"])
        .arg(&img)
        .arg(&src)
        .status()
        .unwrap();
    assert!(st.success());
    let img_s = img.to_str().unwrap();
    let at = |p: &str| format!("{img_s}:{p}");

    assert_eq!(
        ok(&["ls", &at("/")]),
        "A Long Mixed-Case Name.txt\nhello.txt\nlink\nsub\n"
    );
    assert_eq!(ok(&["cat", &at("/link")]), "hello\n");
    assert!(ok(&["ls", "-l", &at("/link")]).contains("-> hello.txt"));
    let found = ok(&["find", &at("/"), "-name", "*.bin"]);
    assert!(found.contains("/sub/deeper/data.bin"), "{found}");

    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    ok(&["cp", &at("/hello.txt"), out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("hello.txt")).unwrap(), b"hello\n");
    ok(&["cp", "-r", &at("/sub"), out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(out.join("sub/deeper/data.bin")).unwrap(),
        data
    );

    // Writing is refused with a message, and the image is untouched.
    let before = std::fs::read(&img).unwrap();
    let r = rump(&["mkdir", &at("/new")]);
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.to_lowercase().contains("read-only"), "{err}");
    assert_eq!(std::fs::read(&img).unwrap(), before);
}
