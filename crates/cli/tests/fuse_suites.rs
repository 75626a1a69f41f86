//! Conformance suites over a real `rump fuse` mount: pjdfstest (the Rust
//! rewrite) against Linux's ext2 on a loop mount of an identical image in
//! the same run, and fsx (random reads, writes, truncates and mapped I/O
//! checked against a model of the file). Both tools are built once with
//! `cargo install` into `target/fuse-tools` and reused.

mod fuse_util;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use fuse_util::*;

const PJDFSTEST: (&str, &str) = ("pjdfstest", "0.2.2");
const FSX: (&str, &str) = ("fsx", "0.3.2");

/// pjdfstest cases that pass on Linux's ext2 but cannot pass over any
/// FUSE mount, with the reason.
const EXCEPTIONS: &[(&str, &str)] = &[(
    "link::link_count_max",
    "pathconf(_PC_LINK_MAX) is unknown for fuse in glibc (it maps f_type to a limit), so the case skips itself",
)];

/// The tool, installed with `cargo install --locked` at the pinned
/// version under target/fuse-tools if it is not there yet.
fn tool((name, version): (&str, &str)) -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../fuse-tools");
    let bin = root.join("bin").join(name);
    if bin.exists() {
        return Some(bin);
    }
    eprintln!("installing {name} {version} into {} (once)", root.display());
    let st = Command::new(env!("CARGO"))
        .args(["install", name, "--version", version, "--locked", "--root"])
        .arg(&root)
        .status()
        .ok()?;
    (st.success() && bin.exists()).then_some(bin)
}

/// Runs pjdfstest on `dir`: case name -> "ok", "FAILED" or "skipped".
fn pjdfstest(bin: &Path, conf: &Path, dir: &Path) -> BTreeMap<String, String> {
    let out = Command::new(bin)
        .arg("-c")
        .arg(conf)
        .arg("-p")
        .arg(dir)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let mut res = BTreeMap::new();
    for line in text.lines() {
        let mut w = line.split_whitespace();
        if let (Some(name), Some(r), None) = (w.next(), w.next(), w.next()) {
            if name.contains("::") && matches!(r, "ok" | "FAILED" | "skipped") {
                res.insert(name.to_string(), r.to_string());
            }
        }
    }
    res
}

#[test]
fn fuse_pjdfstest_passes_what_linux_ext2_passes() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    require!(have("useradd") || have("id"), "no useradd");
    let Some(bin) = tool(PJDFSTEST) else {
        require!(
            false,
            "pjdfstest could not be installed (cargo install pjdfstest needs libacl1-dev)"
        );
        return;
    };
    // Its default second user.
    if !Command::new("id")
        .arg("tests")
        .output()
        .unwrap()
        .status
        .success()
    {
        let _ = Command::new("useradd")
            .args(["-M", "-s", "/usr/sbin/nologin", "tests"])
            .status();
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("pjdfstest.toml");
    std::fs::write(
        &conf,
        "[features]\nposix_fallocate = {}\nutime_now = {}\nutimensat = {}\n[settings]\nnaptime = 0.01\nallow_remount = false\n",
    )
    .unwrap();
    let img = dir.path().join("ours.img");
    let limg = dir.path().join("linux.img");
    mke2fs(&img, 256, &[]);
    std::fs::copy(&img, &limg).unwrap();
    let l = loop_mount(&limg, &dir.path().join("l"), false);
    let linux = pjdfstest(&bin, &conf, &l.mnt);
    drop(l);
    let m = mount(&img, &dir.path().join("m"), &["allow_other"]).expect("mount");
    let ours = pjdfstest(&bin, &conf, &m.mnt);
    assert!(m.unmount().0.success());
    assert_clean(&img);
    let count =
        |r: &BTreeMap<String, String>, what: &str| r.values().filter(|v| *v == what).count();
    eprintln!(
        "pjdfstest on rump fuse: {} passed, {} failed, {} skipped (Linux ext2: {} passed, {} failed, {} skipped)",
        count(&ours, "ok"),
        count(&ours, "FAILED"),
        count(&ours, "skipped"),
        count(&linux, "ok"),
        count(&linux, "FAILED"),
        count(&linux, "skipped"),
    );
    assert!(count(&linux, "ok") > 300, "the reference run did not work");
    let mut missing = Vec::new();
    for (case, r) in &linux {
        if r == "ok" && ours.get(case).map(String::as_str) != Some("ok") {
            if EXCEPTIONS.iter().any(|(c, _)| c == case) {
                continue;
            }
            missing.push(format!("{case}: {:?}", ours.get(case)));
        }
    }
    assert!(
        missing.is_empty(),
        "pass on Linux's ext2, not on ours:\n{}",
        missing.join("\n")
    );
}

#[test]
fn fuse_fsx_random_io_with_mapped_reads_and_writes() {
    if let Some(why) = missing() {
        require!(false, why);
    }
    let Some(bin) = tool(FSX) else {
        require!(false, "fsx could not be installed");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("fsx.img");
    mke2fs(&img, 128, &[]);
    let m = mount(&img, &dir.path().join("m"), &[]).expect("mount");
    // The default weights include mapread and mapwrite. 30,000
    // operations take about a minute here.
    let out = Command::new(&bin)
        .args(["-N", "30000", "-S", "20261202", "-P"])
        .arg(dir.path())
        .arg(m.mnt.join("fsxfile"))
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("A-OK"),
        "fsx failed:\n{text}"
    );
    assert!(m.unmount().0.success());
    assert_clean(&img);
}
