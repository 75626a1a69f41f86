//! `rump run`: unmodified host programs (sh, coreutils, tar) working on
//! an ext2 image mounted in a private kernel, seen under /rump, with
//! outputs compared to the same commands on a host directory.

use std::path::Path;
use std::process::{Command, Output};

const RUMP: &str = env!("CARGO_BIN_EXE_rump");

/// Why `rump run` cannot work here, if it cannot.
fn missing() -> Option<String> {
    let actions =
        std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail").unwrap_or_default();
    if !actions.split_whitespace().any(|a| a == "user_notif") {
        return Some("seccomp user notification is unavailable".into());
    }
    for tool in ["sh", "ls", "cat", "tar", "stat", "sha256sum", "dd", "find"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
            .unwrap_or(false);
        if !found {
            return Some(format!("{tool} is not installed"));
        }
    }
    None
}

fn newfs(img: &Path) {
    let out = Command::new(RUMP)
        .args(["newfs", img.to_str().unwrap(), "--size", "64M"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "newfs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `script` with `$B` set to the rump tree's /mnt, under `rump run`.
fn run_rump(img: &Path, script: &str) -> Output {
    Command::new(RUMP)
        .args([
            "run",
            "--disk",
            &format!("/dev/disk0={}", img.display()),
            "--mount",
            "auto:/dev/disk0:/mnt",
            "--",
            "sh",
            "-c",
            script,
        ])
        .env("B", "/rump/mnt")
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

/// Runs `script` with `$B` set to a host directory.
fn run_host(dir: &Path, script: &str) -> Output {
    Command::new("sh")
        .args(["-c", script])
        .env("B", dir)
        .env("LC_ALL", "C")
        .output()
        .unwrap()
}

fn e2fsck_clean(img: &Path) {
    match Command::new("e2fsck").args(["-fn"]).arg(img).output() {
        Ok(o) => assert!(
            o.status.success(),
            "e2fsck -fn: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("(e2fsck not installed: image not checked)"),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Directory sizes differ between file systems: `ls -la` lines keep the
/// type, mode and link count, sizes of non-directories and the name.
const LS: &str =
    r#"awk '{ if ($1 ~ /^d/) print $1, $2, $NF; else if (NF > 2) print $1, $2, $5, $NF }'"#;

#[test]
fn coreutils_tar_and_sh_on_the_rump_tree_match_the_host() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    newfs(&img);
    let host = tmp.path().join("host");
    std::fs::create_dir_all(host.join("lost+found")).unwrap();
    let script = format!(
        r#"
set -e
mkdir -p $B/d/e/f
echo hi > $B/d/x
cat $B/d/x
sh -c "echo nested > $B/d/y; cat $B/d/y"
cp /etc/passwd $B/d/p
ls -la $B/d | {LS}
stat -c '%F %s %h %a' $B/d/x $B/d/p
stat -c '%F %h %a' $B/d/e
cd $B/d && for f in *; do wc -c "$f" 2>&1; done | sort
cd /
find $B | sed "s|^$B||" | sort
mv $B/d/x $B/d/z
ln -s z $B/d/l
cat $B/d/l
readlink $B/d/l
sha256sum $B/d/p | cut -c1-64
dd if=/dev/zero of=$B/big bs=1M count=8 2>/dev/null
wc -c < $B/big
tar cf - -C $B d | tar tf - | sort
mkdir $B/t && tar cf - -C /etc passwd group | tar xf - -C $B/t && cmp /etc/group $B/t/group && ls $B/t
chmod 600 $B/d/p && stat -c '%a' $B/d/p
touch -d @1000000000 $B/d/p && stat -c '%Y' $B/d/p
rm -rf $B/d $B/t
ls -a $B
test ! -e $B/d
echo done
"#
    );
    let r = run_rump(&img, &script);
    let h = run_host(&host, &script);
    assert!(h.status.success(), "host run failed: {}", text(&h.stderr));
    assert!(
        r.status.success(),
        "rump run failed ({}): {}",
        r.status,
        text(&r.stderr)
    );
    assert_eq!(text(&r.stdout), text(&h.stdout));
    assert!(text(&r.stdout).ends_with("done\n"));
    // Everything was let go of before the unmount.
    assert!(!text(&r.stderr).contains("unmount"), "{}", text(&r.stderr));
    e2fsck_clean(&img);
}

#[test]
fn working_directory_in_the_rump_tree_and_pipelines() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    newfs(&img);
    let host = tmp.path().join("host");
    std::fs::create_dir_all(host.join("lost+found")).unwrap();
    // dash with forks in a pipeline, relative names, pwd, cd .. back out.
    let script = r#"
set -e
cd $B
pwd | sed "s|^$B|B|"
for i in 1 2 3 4 5; do echo "file $i" > f$i; done
for f in *; do wc -c "$f" 2>&1; done | sort
cat f* | sort -r | head -n 2
mkdir sub && cd sub && echo deep > g && cd .. && cat sub/g
ls | tr '\n' ' '; echo
cd / && ls $B/sub
"#;
    let r = run_rump(&img, script);
    let h = run_host(&host, script);
    assert!(h.status.success(), "host run failed: {}", text(&h.stderr));
    assert!(r.status.success(), "rump run failed: {}", text(&r.stderr));
    assert_eq!(text(&r.stdout), text(&h.stdout));
    e2fsck_clean(&img);
}

#[test]
fn exit_status_refusals_and_bad_arguments() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    newfs(&img);
    // The program's exit status is ours.
    let r = run_rump(&img, "exit 7");
    assert_eq!(r.status.code(), Some(7));
    // A file that is not there, in the rump tree and on the host.
    let r = run_rump(&img, "cat $B/nothing");
    assert_eq!(r.status.code(), Some(1));
    assert!(text(&r.stderr).contains("No such file or directory"));
    // Host files stay the host's.
    let host_file = tmp.path().join("h");
    std::fs::write(&host_file, "host data\n").unwrap();
    let r = run_rump(&img, &format!("cat {}", host_file.display()));
    assert_eq!(text(&r.stdout), "host data\n");
    // A rename across the two trees is EXDEV, so mv copies.
    let r = run_rump(
        &img,
        &format!("mv {} $B/moved && cat $B/moved", host_file.display()),
    );
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(text(&r.stdout), "host data\n");
    assert!(!host_file.exists());
    // Executing from the rump tree is refused with a message.
    let r = run_rump(&img, "cp /bin/true $B/t && chmod 755 $B/t && $B/t");
    assert_ne!(r.status.code(), Some(0));
    assert!(
        text(&r.stderr).contains("not supported yet"),
        "{}",
        text(&r.stderr)
    );
    // Bad arguments: a clear error, no hang.
    let out = Command::new(RUMP)
        .args(["run", "--hijack", "path=relative", "--", "true"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--hijack"),
        "{}",
        text(&out.stderr)
    );
    let out = Command::new(RUMP)
        .args(["run", "--", "/nonexistent/program"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("/nonexistent/program"));
    e2fsck_clean(&img);
}

fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).exists()))
        .unwrap_or(false)
}

/// Both ends of an HTTP transfer under one `rump run`, on the kernel's
/// loopback: `python3 -m http.server` serving the rump tree, `curl`
/// fetching (non-blocking connect, poll, a 3 MB body), byte-identical.
#[test]
fn http_between_two_programs_on_the_kernels_sockets() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    for tool in ["python3", "curl", "sha256sum"] {
        if !have(tool) {
            eprintln!("SKIPPED: {tool} is not installed");
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    newfs(&img);
    let body: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let src = tmp.path().join("body");
    std::fs::write(&src, &body).unwrap();
    let port = 20000 + std::process::id() % 20000;
    let script = format!(
        r#"
mkdir $B/www && cp {src} $B/www/body && echo small > $B/www/s
cd $B/www && python3 -m http.server {port} --bind 127.0.0.1 > /dev/null 2>&1 &
i=0; until curl -s -o /dev/null http://127.0.0.1:{port}/s || [ $i -ge 100 ]; do i=$((i+1)); sleep 0.1; done
curl -sS -m 30 http://127.0.0.1:{port}/s
curl -sS -m 30 http://127.0.0.1:{port}/body | sha256sum | cut -c1-64
curl -sS -m 30 -o $B/www/copy http://127.0.0.1:{port}/body && cmp $B/www/copy {src} && echo same
kill $!
"#,
        src = src.display()
    );
    let r = run_rump(&img, &script);
    let want = Command::new("sha256sum").arg(&src).output().unwrap();
    let want = text(&want.stdout)[..64].to_string();
    assert!(r.status.success(), "rump run failed: {}", text(&r.stderr));
    assert_eq!(
        text(&r.stdout),
        format!("small\n{want}\nsame\n"),
        "{}",
        text(&r.stderr)
    );
    e2fsck_clean(&img);
}

/// `--hijack socket=none`: sockets stay the host's, so a server under
/// `rump run` is reachable from the host.
#[test]
fn sockets_stay_on_the_host_with_socket_none() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let port = 40000 + std::process::id() % 20000;
    let code = format!(
        "import socket\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {port}))\ns.listen(1)\nprint('ready', flush=True)\n\
         c, _ = s.accept()\nc.sendall(b'from host socket')\nc.close()\n"
    );
    let mut child = Command::new(RUMP)
        .args([
            "run",
            "--hijack",
            "path=/rump,socket=none",
            "--",
            "python3",
            "-c",
            &code,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line, "ready\n");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port as u16)).unwrap();
    let mut got = String::new();
    std::io::Read::read_to_string(&mut s, &mut got).unwrap();
    assert_eq!(got, "from host socket");
    assert!(child.wait().unwrap().success());
}

/// `--server`: the program's calls go to a running server, whose tree
/// keeps what the program wrote.
#[test]
fn programs_against_a_running_server() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("unix://{}/k.sock", tmp.path().display());
    let pidfile = tmp.path().join("k.pid");
    let st = Command::new(RUMP)
        .args(["server", &url, "--background", "--pidfile"])
        .arg(&pidfile)
        .status()
        .unwrap();
    assert!(st.success());
    let r = Command::new(RUMP)
        .args(["run", "--server", &url, "--"])
        .args([
            "sh",
            "-c",
            "mkdir -p /rump/a/b && echo kept > /rump/a/f && cat /rump/a/f && ls /rump/a",
        ])
        .output()
        .unwrap();
    let ls = Command::new(RUMP)
        .args(["ls", "/a"])
        .env("RUMP_SERVER", &url)
        .output()
        .unwrap();
    let halt = Command::new(RUMP)
        .args(["halt", "--server", &url])
        .status()
        .unwrap();
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(text(&r.stdout), "kept\nb\nf\n");
    assert_eq!(text(&ls.stdout), "b\nf\n", "{}", text(&ls.stderr));
    assert!(halt.success());
    // Kernel options belong to a private kernel.
    let out = Command::new(RUMP)
        .args([
            "run",
            "--server",
            &url,
            "--mount",
            "auto:/dev/disk0:/mnt",
            "--",
            "true",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("private kernel"));
}

/// `socat` between host pipes and rump sockets (its poll loop mixes host
/// and rump descriptors), both directions, and a file received into the
/// rump tree from a rump socket.
#[test]
fn socat_between_host_pipes_and_rump_sockets() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    if !have("socat") {
        eprintln!("SKIPPED: socat is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    newfs(&img);
    let data: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(40503) >> 7) as u8)
        .collect();
    let src = tmp.path().join("data");
    std::fs::write(&src, &data).unwrap();
    let p = 20000 + std::process::id() % 20000;
    let script = format!(
        r#"
socat TCP-LISTEN:{p},bind=127.0.0.1,reuseaddr SYSTEM:"tr a-z A-Z" &
i=0; until (echo hello; sleep 0.3; echo world) | socat -t 5 - TCP:127.0.0.1:{p} 2>/dev/null || [ $i -ge 50 ]; do i=$((i+1)); sleep 0.1; done
wait
socat -u TCP-LISTEN:{p1},bind=127.0.0.1,reuseaddr OPEN:$B/recv,creat &
i=0; until socat -u OPEN:{src} TCP:127.0.0.1:{p1} 2>/dev/null || [ $i -ge 50 ]; do i=$((i+1)); sleep 0.1; done
wait
cmp $B/recv {src} && echo same
"#,
        p1 = p + 1,
        src = src.display()
    );
    let r = run_rump(&img, &script);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert_eq!(
        text(&r.stdout),
        "HELLO\nWORLD\nsame\n",
        "{}",
        text(&r.stderr)
    );
    e2fsck_clean(&img);
}

/// A static binary (busybox-static): no LD_PRELOAD could catch it; the
/// filter does. Files, a working directory, tar, and httpd/wget on the
/// kernel's sockets.
#[test]
fn static_busybox_on_the_rump_tree_and_sockets() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    let bb = Path::new("/bin/busybox");
    let is_static = Command::new("file")
        .arg(bb)
        .output()
        .map(|o| text(&o.stdout).contains("statically linked"))
        .unwrap_or(false);
    if !bb.exists() || !is_static {
        eprintln!("SKIPPED: a static /bin/busybox is not installed (busybox-static)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("disk.img");
    newfs(&img);
    let p = 20000 + std::process::id() % 20000 + 7;
    let script = format!(
        r#"
set -e
mkdir -p $B/d && echo static > $B/d/f && busybox cat $B/d/f
busybox cp /etc/passwd $B/d/p && busybox cmp /etc/passwd $B/d/p && echo copied
cd $B/d && busybox pwd | busybox sed "s|^$B|B|" && busybox tar cf ../t.tar . && busybox tar tf ../t.tar | busybox sort
busybox httpd -f -p 127.0.0.1:{p} -h $B/d &
i=0; until busybox wget -q -O - http://127.0.0.1:{p}/f 2>/dev/null || [ $i -ge 50 ]; do i=$((i+1)); busybox sleep 0.1; done
kill $!
"#
    );
    let r = Command::new(RUMP)
        .args([
            "run",
            "--disk",
            &format!("/dev/disk0={}", img.display()),
            "--mount",
            "auto:/dev/disk0:/mnt",
            "--",
            "/bin/busybox",
            "sh",
            "-c",
            &script,
        ])
        .env("B", "/rump/mnt")
        .output()
        .unwrap();
    assert_eq!(
        text(&r.stdout),
        "static\ncopied\nB/d\n./\n./f\n./p\nstatic\n",
        "{}",
        text(&r.stderr)
    );
    e2fsck_clean(&img);
}

/// A TCP socket whose connect failed has nothing behind its placeholder:
/// every call on it is the kernel's to answer. socat asks for the error
/// queue after a refusal (`MSG_ERRQUEUE`); that used to wait forever on
/// the placeholder. Now: EAGAIN (no error queue), ENOTCONN for data, and
/// a later connect on a fresh socket works.
#[test]
fn refused_connect_then_error_queue_and_data_calls_do_not_hang() {
    if let Some(why) = missing() {
        eprintln!("SKIPPED: {why}");
        return;
    }
    if !have("python3") {
        eprintln!("SKIPPED: python3 is not installed");
        return;
    }
    let script = r#"
import errno, socket
s = socket.socket()
try:
    s.connect(("127.0.0.1", 9))
    print("connected?")
except OSError as e:
    print("connect", errno.errorcode[e.errno])
for what, call in [
    ("errqueue", lambda: s.recvmsg(512, 512, socket.MSG_ERRQUEUE)),
    ("recv", lambda: s.recv(10)),
    ("send", lambda: s.send(b"x")),
    ("shutdown", lambda: s.shutdown(socket.SHUT_RDWR)),
]:
    try:
        call()
        print(what, "ok")
    except OSError as e:
        print(what, errno.errorcode[e.errno])
s.close()
l = socket.socket(); l.bind(("127.0.0.1", 7070)); l.listen(1)
c = socket.create_connection(("127.0.0.1", 7070))
a, _ = l.accept()
c.sendall(b"ping"); print(a.recv(4).decode())
"#;
    let out = Command::new("timeout")
        .args(["60", RUMP, "run", "--", "python3", "-c", script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let got = text(&out.stdout);
    // Linux answers the same calls on an unconnected TCP socket this way
    // (send: EPIPE, as the socket is not connected after a refusal).
    assert_eq!(
        got,
        "connect ECONNREFUSED\nerrqueue EAGAIN\nrecv ENOTCONN\nsend EPIPE\nshutdown ENOTCONN\nping\n",
        "{}",
        text(&out.stderr)
    );
}
