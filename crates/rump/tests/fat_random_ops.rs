//! Differential test: random sequences of file operations (proptest) on
//! our FAT driver and on a host tmpfs directory must give the same
//! results, errors and final tree; `fsck.fat -n` then judges the image.
//! Names are ones FAT allows, none differing only in case; lookups by
//! another case of a name are checked against the host's exact name.

mod fat_util;

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::Path;

use fat_util::*;
use proptest::prelude::*;
use rump::sys;
use rump::sys::consts::o;
use rump::Errno;

const NAMES: [&str; 9] = [
    "alpha.txt",
    "Long name one",
    "b",
    "dir1",
    "dir1/inner file",
    "dir1/sub",
    "dir1/sub/x.y.z",
    "café",
    "dir1/sub/Ünïcödé name.dat",
];

#[derive(Clone, Debug)]
enum Op {
    Write {
        n: usize,
        off: u64,
        len: usize,
        byte: u8,
    },
    Truncate {
        n: usize,
        len: u64,
    },
    Mkdir {
        n: usize,
    },
    Unlink {
        n: usize,
    },
    Rmdir {
        n: usize,
    },
    Rename {
        from: usize,
        to: usize,
    },
    Read {
        n: usize,
        upper: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let n = 0..NAMES.len();
    prop_oneof![
        3 => (n.clone(), prop_oneof![Just(0u64), 0..20_000u64, 60_000..70_000u64], 1..12_000usize, 1..=255u8)
            .prop_map(|(n, off, len, byte)| Op::Write { n, off, len, byte }),
        1 => (n.clone(), 0..40_000u64).prop_map(|(n, len)| Op::Truncate { n, len }),
        2 => n.clone().prop_map(|n| Op::Mkdir { n }),
        1 => n.clone().prop_map(|n| Op::Unlink { n }),
        1 => n.clone().prop_map(|n| Op::Rmdir { n }),
        2 => (n.clone(), n.clone()).prop_map(|(from, to)| Op::Rename { from, to }),
        2 => (n, any::<bool>()).prop_map(|(n, upper)| Op::Read { n, upper }),
    ]
}

fn host_errno(e: std::io::Error) -> Errno {
    Errno(e.raw_os_error().unwrap_or(-1))
}

/// Runs `op` on both sides: (ours, host).
fn apply(
    op: &Op,
    p: &rump::Process,
    host: &Path,
) -> (Result<Vec<u8>, Errno>, Result<Vec<u8>, Errno>) {
    let r = |i: usize| format!("/mnt/{}", NAMES[i]);
    let h = |i: usize| host.join(NAMES[i]);
    let none = |x: Result<(), Errno>| x.map(|()| Vec::new());
    match *op {
        Op::Write { n, off, len, byte } => {
            let data = vec![byte; len];
            let ours = sys::open(p, r(n).as_bytes(), o::WRONLY | o::CREAT, 0o644).and_then(|fd| {
                let w = sys::pwrite(p, fd, &data, off as i64).map(|_| ());
                sys::close(p, fd)?;
                w
            });
            let theirs = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(h(n))
                .and_then(|f| f.write_all_at(&data, off))
                .map_err(host_errno);
            (none(ours), none(theirs))
        }
        Op::Truncate { n, len } => (
            none(sys::truncate(p, r(n).as_bytes(), len as i64)),
            none(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(h(n))
                    .and_then(|f| f.set_len(len))
                    .map_err(host_errno),
            ),
        ),
        Op::Mkdir { n } => (
            none(sys::mkdir(p, r(n).as_bytes(), 0o755)),
            none(std::fs::create_dir(h(n)).map_err(host_errno)),
        ),
        Op::Unlink { n } => (
            none(sys::unlink(p, r(n).as_bytes())),
            none(std::fs::remove_file(h(n)).map_err(host_errno)),
        ),
        Op::Rmdir { n } => (
            none(sys::rmdir(p, r(n).as_bytes())),
            none(std::fs::remove_dir(h(n)).map_err(host_errno)),
        ),
        Op::Rename { from, to } => (
            none(sys::rename(p, r(from).as_bytes(), r(to).as_bytes())),
            none(std::fs::rename(h(from), h(to)).map_err(host_errno)),
        ),
        Op::Read { n, upper } => {
            // FAT finds a name in any case; the host needs the exact one.
            let path = if upper {
                format!("/mnt/{}", NAMES[n].to_uppercase())
            } else {
                r(n)
            };
            (
                rump::fs::read(p, path).map_err(host_errno),
                std::fs::read(h(n)).map_err(host_errno),
            )
        }
    }
}

/// Path -> contents (None for directories).
fn host_tree(root: &Path) -> BTreeMap<String, Option<Vec<u8>>> {
    read_host(root)
        .into_iter()
        .map(|(k, v)| (k, v.data))
        .collect()
}

fn our_tree(p: &rump::Process) -> BTreeMap<String, Option<Vec<u8>>> {
    read_rump(p, "/mnt")
        .into_iter()
        .map(|(k, v)| (k, v.data))
        .collect()
}

fn host_scratch() -> tempfile::TempDir {
    if Path::new("/dev/shm").is_dir() {
        if let Ok(d) = tempfile::tempdir_in("/dev/shm") {
            return d;
        }
    }
    tempfile::tempdir().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn fat_random_ops_match_the_host(
        fat32 in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fat.img");
        let (size, ty) = if fat32 {
            (40u64 << 20, rump::fat::FatType::Fat32)
        } else {
            (8 << 20, rump::fat::FatType::Fat16)
        };
        rump::fat::newfs_image(&image, size, &rump::fat::MkfsOptions {
            fat_type: Some(ty),
            sectors_per_cluster: Some(1),
            ..Default::default()
        }).unwrap();
        let host = host_scratch();
        let (k, p) = kernel();
        mount(&p, &image, false);
        for (i, op) in ops.iter().enumerate() {
            let (ours, theirs) = apply(op, &p, host.path());
            prop_assert_eq!(&ours, &theirs, "step {}: {:?}", i, op);
        }
        prop_assert_eq!(our_tree(&p), host_tree(host.path()));
        umount(&p);
        // The same tree after a fresh mount.
        mount_again(&p, &image);
        prop_assert_eq!(our_tree(&p), host_tree(host.path()));
        umount(&p);
        k.halt();
        if have_dosfstools() {
            let (code, out) = fsck(&image);
            prop_assert_eq!(code, 0, "fsck.fat -n:\n{}", out);
        }
    }
}

fn mount_again(p: &rump::Process, _image: &Path) {
    rump::fat::mount(p, "/dev/disk0", "/mnt", false, "").unwrap();
}
