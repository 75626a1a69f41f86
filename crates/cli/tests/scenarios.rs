//! The shell-level scenarios of `tests/scenarios/*.sh`, in the style of
//! NetBSD's `tests/net`: real `rump server` processes configured with the
//! tools from a POSIX shell script. Each script gets the binary in `RUMP`
//! and a scratch directory in `DIR`; it prints what it did and exits
//! non-zero, with a `FAIL:` line, when a step does not hold. The harness
//! also checks that nothing is left behind: no server process of the
//! scenario still running, no socket or pid file in the directory.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn run(script: &str) {
    let Some(sh) = ["/bin/sh", "/usr/bin/sh"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("SKIPPED: no /bin/sh to run {script}");
        return;
    };
    for tool in ["sha256sum", "head", "awk"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .map_or(true, |o| !o.status.success())
        {
            eprintln!("SKIPPED: {script} needs {tool}");
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(script);
    let mut child = Command::new(sh)
        .arg(&path)
        .env("RUMP", env!("CARGO_BIN_EXE_rump"))
        .env("DIR", dir.path())
        .env_remove("RUMP_SERVER")
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(300) {
            let _ = child.kill();
            panic!("{script} still running after 300 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{script} failed: {status}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sock") || n.ends_with(".pid"))
        .collect();
    assert!(left.is_empty(), "{script} left {left:?}");
}

#[test]
fn two_servers_on_one_bus() {
    run("two_servers.sh");
}

#[test]
fn router_of_three_servers() {
    run("router.sh");
}
