//! Block devices as nodes in the kernel's namespace: `/dev/disk0` after
//! registering an image is a block-special file that `stat` and `open`
//! find and that reads, writes and fsyncs raw, sector-aligned, through
//! the system-call layer; `newfs` formats it through `Syscalls` (as it
//! would a server's disk) and the tools mount it. e2fsck judges the
//! result.

use std::process::Command;

use rump::sys::{
    self,
    consts::{o, s, seek},
};
use rump::{Errno, Kernel};
use rump_cli::tools::run_words;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null 2>&1")])
        .status()
        .is_ok_and(|s| s.success())
}

fn image(dir: &tempfile::TempDir, mib: u64) -> std::path::PathBuf {
    let path = dir.path().join("disk.img");
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(mib << 20).unwrap();
    path
}

#[test]
fn device_node_reads_and_writes_raw() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir, 4);
    let k = Kernel::builder().ext2().boot().unwrap();
    let p = k.process().unwrap();
    rump::ext2::register_image(&p, &img, "/dev/disk0", false).unwrap();

    let st = sys::stat(&p, b"/dev/disk0").unwrap();
    assert_eq!(st.mode & s::IFMT, s::IFBLK);
    assert_ne!(st.rdev, 0);
    let fd = sys::open(&p, b"/dev/disk0", o::RDWR, 0).unwrap();
    assert_eq!(sys::fstat(&p, fd).unwrap().rdev, st.rdev);
    assert_eq!(sys::lseek(&p, fd, 0, seek::END), Ok(4 << 20));
    // Raw: sector-aligned offsets and lengths only.
    let sector: Vec<u8> = (0..512u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(sys::pwrite(&p, fd, &sector[..100], 0), Err(Errno::EINVAL));
    assert_eq!(sys::pwrite(&p, fd, &sector, 3), Err(Errno::EINVAL));
    assert_eq!(sys::pwrite(&p, fd, &sector, 1 << 20), Ok(512));
    assert_eq!(sys::fsync(&p, fd), Ok(()));
    let mut back = vec![0u8; 1024];
    assert_eq!(sys::pread(&p, fd, &mut back, (1 << 20) - 512), Ok(1024));
    assert_eq!(&back[512..], &sector[..]);
    assert!(back[..512].iter().all(|&b| b == 0));
    // At the end: reads are short or empty, writes ENOSPC.
    assert_eq!(sys::pread(&p, fd, &mut back, (4 << 20) - 512), Ok(512));
    assert_eq!(sys::pread(&p, fd, &mut back, 4 << 20), Ok(0));
    assert_eq!(sys::pwrite(&p, fd, &sector, 4 << 20), Err(Errno::ENOSPC));
    // Sequential read/write at the offset.
    assert_eq!(sys::lseek(&p, fd, 1 << 20, seek::SET), Ok(1 << 20));
    let mut one = vec![0u8; 512];
    assert_eq!(sys::read(&p, fd, &mut one), Ok(512));
    assert_eq!(one, sector);
    sys::close(&p, fd).unwrap();
    // The host file holds what was written.
    let host = std::fs::read(&img).unwrap();
    assert_eq!(&host[1 << 20..(1 << 20) + 512], &sector[..]);

    // Only root opens it (the node is 0600).
    let user = k.process_as(rump::Cred::user(1000, 1000)).unwrap();
    assert_eq!(
        sys::open(&user, b"/dev/disk0", o::RDONLY, 0),
        Err(Errno::EACCES)
    );
    // Removing the device removes its node.
    sys::etfs_remove(&p, b"/dev/disk0").unwrap();
    assert_eq!(sys::stat(&p, b"/dev/disk0").map(|_| ()), Err(Errno::ENOENT));
}

#[test]
fn newfs_through_syscalls_then_mount_with_the_tools() {
    let dir = tempfile::tempdir().unwrap();
    let img = image(&dir, 16);
    let k = Kernel::builder().ext2().boot().unwrap();
    let p = k.process().unwrap();
    rump::ext2::register_image(&p, &img, "/dev/disk0", false).unwrap();
    let opts = rump::ext2::MkfsOptions {
        block_size: 1024,
        blocks: None,
        inodes: None,
        bytes_per_inode: 16384,
        inode_size: 256,
        revision: 1,
        reserved_percent: 5,
        label: *b"through-syscalls",
        uuid: [0; 16],
        now: 0,
    };
    let sum = rump::ext2::newfs_device(&p, "/dev/disk0", &opts).unwrap();
    assert_eq!(sum.blocks, 16 << 10);
    rump::fs::create_dir_all(&p, "/mnt").unwrap();
    let (code, out) = run_words(&p, &["mount", "/dev/disk0", "/mnt"]);
    assert_eq!(code, 0, "{out}");
    let (_, list) = run_words(&p, &["mount"]);
    assert!(
        list.contains("/dev/disk0 on /mnt type ext2 (local)"),
        "{list}"
    );
    rump::fs::write(&p, "/mnt/hello", b"hello from raw newfs\n").unwrap();
    // Mounted: no raw writer may open it.
    assert_eq!(
        sys::open(&p, b"/dev/disk0", o::WRONLY, 0),
        Err(Errno::EBUSY)
    );
    let mut out = Vec::new();
    rump_cli::tools::mount::df(&rump_cli::tools::Sys(&p), &["/mnt".into()], false, &mut out)
        .unwrap();
    let df = String::from_utf8(out).unwrap();
    assert!(
        df.lines()
            .any(|l| l.starts_with("/dev/disk0") && l.ends_with(" /mnt")),
        "{df}"
    );
    let (code, out) = run_words(&p, &["umount", "/mnt"]);
    assert_eq!(code, 0, "{out}");
    // Not a device: refused with a clear error.
    rump::fs::write(&p, "/plain", vec![0u8; 4096]).unwrap();
    let e = rump::ext2::newfs_device(&p, "/plain", &opts).unwrap_err();
    assert!(e.to_string().contains("not a block device"), "{e}");
    sys::etfs_remove(&p, b"/dev/disk0").unwrap();
    drop(p);
    k.halt();
    if !have("e2fsck") {
        eprintln!("SKIPPED e2fsck check: e2fsck not installed");
        return;
    }
    let out = Command::new("e2fsck")
        .args(["-f", "-n"])
        .arg(&img)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "e2fsck: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // And the image tools read what was written.
    let cat = Command::new(env!("CARGO_BIN_EXE_rump"))
        .arg("cat")
        .arg(format!("{}:/hello", img.display()))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&cat.stdout),
        "hello from raw newfs\n"
    );
}
