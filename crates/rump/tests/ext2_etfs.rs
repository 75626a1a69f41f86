//! etfs registration through the system-call layer, partitioned images,
//! and concurrent use of one ext2 mount.

mod ext2_util;

use std::sync::Arc;

use ext2_util::*;
use rump::ext2::dev_blk::part::{write_gpt, GptEntryRepr, MbrEntry, MbrPacket, MbrRepr};
use rump::ext2::dev_blk::{BlockDevice, MemDevice, Partition};
use rump::sys;
use rump::{Cred, Errno};

#[test]
fn ext2_etfs_register_rules() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("e.img");
    newfs(&img, 4 << 20, 1024);
    let path = img.to_str().unwrap().as_bytes();
    let (k, p) = boot();
    let user = k.process_as(Cred::user(1000, 1000)).unwrap();
    assert_eq!(
        sys::etfs_register(&user, b"/dev/disk0", path, true),
        Err(Errno::EPERM)
    );
    assert_eq!(
        sys::etfs_register(&p, b"/dev/disk0", b"/nonexistent/image", true),
        Err(Errno::ENOENT)
    );
    assert_eq!(sys::etfs_register(&p, b"", path, true), Err(Errno::EINVAL));
    // Through the request enum, as remote clients and the C ABI do.
    let req = sys::Request::EtfsRegister {
        key: b"/dev/disk0".to_vec(),
        host_path: path.to_vec(),
        read_only: false,
    };
    assert_eq!(sys::dispatch(&p, req), Ok(sys::Response::Unit));
    assert_eq!(
        sys::etfs_register(&p, b"/dev/disk0", path, true),
        Err(Errno::EEXIST)
    );
    rump::ext2::mount(&p, "/dev/disk0", "/mnt", false).unwrap();
    // The same device cannot be mounted twice or removed while mounted.
    rump::fs::create_dir(&p, "/mnt2").unwrap();
    assert_eq!(
        sys::mount(&p, b"/dev/disk0", b"/mnt2", b"ext2", 0, b""),
        Err(Errno::EBUSY)
    );
    assert_eq!(sys::etfs_remove(&p, b"/dev/disk0"), Err(Errno::EBUSY));
    assert_eq!(
        sys::mount(&p, b"/dev/nothing", b"/mnt2", b"ext2", 0, b""),
        Err(Errno::ENXIO)
    );
    sys::umount2(&p, b"/mnt", 0).unwrap();
    assert_eq!(sys::etfs_remove(&user, b"/dev/disk0"), Err(Errno::EPERM));
    sys::etfs_remove(&p, b"/dev/disk0").unwrap();
    assert_eq!(sys::etfs_remove(&p, b"/dev/disk0"), Err(Errno::ENOENT));
    // Kernels without the block layer say so.
    let plain = rump::Kernel::boot().unwrap();
    let pp = plain.process().unwrap();
    assert_eq!(
        sys::etfs_register(&pp, b"/dev/disk0", path, true),
        Err(Errno::ENODEV)
    );
    drop(pp);
    plain.halt();
    drop(user);
    drop(p);
    k.halt();
}

/// Builds a disk image with a partition table and an ext2 file system
/// in its first partition; returns the bytes and the partition's range.
fn partitioned(gpt: bool) -> (Vec<u8>, u64, u64) {
    let disk = Arc::new(MemDevice::new(40 * 2048)); // 40 MiB
    let (start, sectors) = (2048u64, 30 * 2048u64);
    if gpt {
        write_gpt(
            &*disk,
            [3; 16],
            &[GptEntryRepr {
                type_guid: [0xAF; 16],
                unique_guid: [1; 16],
                first_lba: start,
                last_lba: start + sectors - 1,
                attributes: 0,
            }],
        )
        .unwrap();
    } else {
        let mut mbr = [0u8; 512];
        let mut entries = [None; 4];
        entries[0] = Some(MbrEntry {
            bootable: false,
            kind: 0x83,
            lba: start as u32,
            sectors: sectors as u32,
        });
        MbrRepr { entries }.emit(&mut MbrPacket::new_unchecked(&mut mbr[..]));
        disk.write_blocks(0, &mbr).unwrap();
    }
    let part = Partition::new(disk.clone(), start, sectors, false).unwrap();
    rump::ext2::fs_ext2::mkfs::format(
        &part,
        &rump::ext2::MkfsOptions {
            block_size: 1024,
            now: 1_700_000_000,
            ..Default::default()
        },
    )
    .unwrap();
    (disk.to_bytes(), start, sectors)
}

#[test]
fn ext2_partitions_mount_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for gpt in [false, true] {
        let (bytes, start, sectors) = partitioned(gpt);
        let img = dir.path().join(format!("disk-{gpt}.img"));
        std::fs::write(&img, &bytes).unwrap();
        let (k, p) = boot();
        rump::ext2::register_image(&p, &img, "/dev/disk0", false).unwrap();
        // The whole disk is not ext2; its first partition is.
        rump::fs::create_dir(&p, "/mnt").unwrap();
        assert_eq!(
            sys::mount(&p, b"/dev/disk0", b"/mnt", b"ext2", 0, b""),
            Err(Errno::EINVAL)
        );
        rump::ext2::mount(&p, "/dev/disk0p1", "/mnt", false).unwrap();
        rump::fs::write(&p, "/mnt/in-partition", b"p1").unwrap();
        unmount(k, p);
        let after = std::fs::read(&img).unwrap();
        // Nothing outside the partition changed.
        let (a, b) = ((start * 512) as usize, ((start + sectors) * 512) as usize);
        assert_eq!(after[..a], bytes[..a]);
        assert_eq!(after[b..], bytes[b..]);
        if have_e2fsprogs() {
            let part_img = dir.path().join(format!("part-{gpt}.img"));
            std::fs::write(&part_img, &after[a..b]).unwrap();
            assert_clean(&part_img);
        }
        let (k, p) = boot();
        rump::ext2::register_image(&p, &img, "/dev/disk0", true).unwrap();
        rump::ext2::mount(&p, "/dev/disk0p1", "/mnt", true).unwrap();
        assert_eq!(rump::fs::read(&p, "/mnt/in-partition").unwrap(), b"p1");
        unmount(k, p);
    }
}

#[test]
fn ext2_memory_device_without_host_tools() {
    let k = rump::Kernel::builder().ext2().boot().unwrap();
    let p = k.process().unwrap();
    let dev = Arc::new(MemDevice::new(8 * 2048));
    let s = rump::ext2::fs_ext2::mkfs::format(
        &*dev,
        &rump::ext2::MkfsOptions {
            block_size: 2048,
            revision: 0,
            now: 1,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(s.block_size, 2048);
    rump::ext2::dev_blk::Registry::of(k.raw())
        .unwrap()
        .register("/dev/mem0", dev.clone())
        .unwrap();
    rump::ext2::mount(&p, "/dev/mem0", "/mnt", false).unwrap();
    rump::fs::create_dir_all(&p, "/mnt/x/y").unwrap();
    rump::fs::write(&p, "/mnt/x/y/z", b"rev0").unwrap();
    let names: Vec<_> = rump::fs::read_dir(&p, "/mnt/x")
        .unwrap()
        .map(|e| e.unwrap())
        .collect();
    assert_eq!(names.len(), 1);
    // Revision 0 has no file type in entries: the driver reads the inode.
    assert_eq!(names[0].file_type(), rump::kern::vfs::NodeKind::Directory);
    let v = sys::statvfs(&p, b"/mnt").unwrap();
    assert_eq!(v.bsize, 2048);
    sys::umount2(&p, b"/mnt", 0).unwrap();
    rump::ext2::mount(&p, "/dev/mem0", "/mnt", true).unwrap();
    assert_eq!(rump::fs::read(&p, "/mnt/x/y/z").unwrap(), b"rev0");
    sys::umount2(&p, b"/mnt", 0).unwrap();
    drop(p);
    k.halt();
}

#[test]
fn ext2_concurrent_writers() {
    require!(have_e2fsprogs(), "e2fsprogs not installed");
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("conc.img");
    mke2fs(&img, 64 << 20, &["-b", "1024"]);
    let (k, p) = mount_rw(&img);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let p = p.clone();
            std::thread::spawn(move || {
                let d = format!("/mnt/t{t}");
                rump::fs::create_dir(&p, &d).unwrap();
                for i in 0..300 {
                    let f = format!("{d}/f{i}");
                    rump::fs::write(&p, &f, vec![t as u8; (i * 131) % 9000]).unwrap();
                    if i % 3 == 0 {
                        rump::fs::rename(&p, &f, format!("/mnt/t{t}/r{i}")).unwrap();
                    }
                    if i % 5 == 0 {
                        let _ = rump::fs::remove_file(&p, format!("{d}/f{}", i / 2));
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    unmount(k, p);
    assert_clean(&img);
}
