//! The Python package (`python/`): installable with pip, and its pytest
//! suite (files, an ext2 image, sockets between kernels, the remote client,
//! errors, and the packet interface driven by scapy, compared with Linux
//! through a TUN device in a network namespace when root allows) passes
//! against the libraries of this build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn pytest_suite_passes() {
    if !python_has("sys") {
        eprintln!("SKIPPED: no python3");
        return;
    }
    for m in ["pytest", "scapy"] {
        if !python_has(m) {
            eprintln!("SKIPPED: python3 has no {m} (scripts/test installs it)");
            return;
        }
    }
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let prefix = tmp.join("py-prefix");
    let st = Command::new(repo().join("scripts/install-capi"))
        .arg("--test-features")
        .arg(&prefix)
        .status()
        .unwrap();
    assert!(st.success(), "scripts/install-capi");
    // pip can install the package (into a directory of its own).
    let site = tmp.join("py-site");
    let _ = std::fs::remove_dir_all(&site);
    let pip = Command::new("python3")
        .args(["-m", "pip", "install", "-q", "--no-deps", "--target"])
        .arg(&site)
        .arg(repo().join("python"))
        .output()
        .unwrap();
    assert!(
        pip.status.success(),
        "pip install ./python: {}",
        String::from_utf8_lossy(&pip.stderr)
    );
    assert!(site.join("rump/__init__.py").exists());
    // The rump binary, for the remote-client test.
    let exe = std::env::current_exe().unwrap();
    let rump_bin = exe.parent().unwrap().parent().unwrap().join("rump");
    if !rump_bin.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args(["build", "-q", "-p", "rump-cli", "--bin", "rump"])
            .current_dir(repo())
            .status()
            .unwrap();
        assert!(st.success());
    }
    let out = Command::new("python3")
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
        .current_dir(repo().join("python"))
        .env("PYTHONPATH", &site)
        .env("RUMP_LIBRARY", prefix.join("lib/librump.so"))
        .env("RUMP_CLIENT_LIBRARY", prefix.join("lib/librumpclient.so"))
        .env("RUMP_BIN", &rump_bin)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}");
    assert!(
        out.status.success(),
        "pytest failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("passed"), "{text}");
}
