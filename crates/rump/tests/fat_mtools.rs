//! FAT against dosfstools and mtools (this host kernel has no vfat): at
//! FAT12, FAT16 and FAT32, trees that `mcopy` writes into images made by
//! `mkfs.fat` read back identically through our driver (names long and
//! short, sizes, contents, times), and trees we write are clean for
//! `fsck.fat -n` and extracted identically by `mcopy`, with the short
//! aliases `mdir` shows.

mod fat_util;

use std::path::Path;

use fat_util::*;

const WIDTHS: [(u32, u64); 3] = [(12, 8 << 20), (16, 32 << 20), (32, 64 << 20)];

/// `mcopy -s -m` of every top-level entry of `src` into the image root.
fn mcopy_in(image: &Path, src: &Path) {
    let mut args: Vec<String> = vec!["-s".into(), "-m".into(), "-Q".into()];
    for e in std::fs::read_dir(src).unwrap() {
        args.push(e.unwrap().path().to_str().unwrap().into());
    }
    args.push("::/".into());
    let a: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    mtools("mcopy", image, &a);
}

#[test]
fn mtools_trees_read_back_by_us() {
    require!(
        have_dosfstools() && have_mtools(),
        "dosfstools or mtools not installed"
    );
    for (bits, size) in WIDTHS {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fat.img");
        mkfs_fat(&image, size, bits, &[]);
        let src = dir.path().join("src");
        let tree = sample_tree();
        write_host(&src, &tree);
        // A fragmented file: a hole left by a deleted file is filled
        // first by the next copy, which continues after the other files.
        mcopy_in(&image, &src);
        std::fs::write(dir.path().join("hole"), vec![1u8; 10_000]).unwrap();
        mtools(
            "mcopy",
            &image,
            &[dir.path().join("hole").to_str().unwrap(), "::/hole"],
        );
        mtools(
            "mcopy",
            &image,
            &[dir.path().join("hole").to_str().unwrap(), "::/after"],
        );
        mtools("mdel", &image, &["::/hole"]);
        let frag: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(src.join("fragmented.bin"), &frag).unwrap();
        mtools(
            "mcopy",
            &image,
            &["-m", src.join("fragmented.bin").to_str().unwrap(), "::/"],
        );
        mtools("mdel", &image, &["::/after"]);
        assert_clean(&image);

        let (k, p) = kernel();
        mount(&p, &image, true);
        let got = read_rump(&p, "/mnt");
        let want = read_host(&src);
        assert_same(&want, &got, false);
        // Lookups ignore case; short aliases name the same file.
        let a = rump::fs::read(&p, "/mnt/long file name.TXT").unwrap();
        assert_eq!(a, tree["Long File Name.txt"].data.clone().unwrap());
        let listing = mtools("mdir", &image, &["-a", "::/"]);
        let alias = listing
            .lines()
            .find(|l| l.ends_with(" Long File Name.txt"))
            .map(|l| format!("{}.{}", l[..8].trim(), l[9..12].trim()))
            .expect("mdir lists the long name");
        assert_eq!(
            rump::fs::read(&p, format!("/mnt/{alias}")).unwrap(),
            a,
            "FAT{bits}: alias {alias}"
        );
        let st = rump::sys::statvfs(&p, b"/mnt").unwrap();
        assert_eq!(st.fs_type, fs_fat_magic());
        umount(&p);
        k.halt();
        // A read-only mount changed nothing.
        assert_clean(&image);
    }
}

fn fs_fat_magic() -> u64 {
    0x4d44
}

#[test]
fn our_trees_read_back_by_mtools() {
    require!(
        have_dosfstools() && have_mtools(),
        "dosfstools or mtools not installed"
    );
    for (bits, size) in WIDTHS {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fat.img");
        mkfs_fat(&image, size, bits, &[]);
        let tree = sample_tree();
        let (k, p) = kernel();
        mount(&p, &image, false);
        write_rump(&p, "/mnt", &tree);
        // Renames across directories (".." follows), truncation, growth.
        rump::fs::rename(&p, "/mnt/Deep/er/still", "/mnt/docs/still").unwrap();
        rump::fs::rename(&p, "/mnt/MiXeD.Case", "/mnt/Deep/Moved Here.txt").unwrap();
        let f = rump::fs::OpenOptions::new()
            .write(true)
            .open(&p, "/mnt/docs/big.bin")
            .unwrap();
        f.set_len(5000).unwrap();
        drop(f);
        let f = rump::fs::OpenOptions::new()
            .write(true)
            .open(&p, "/mnt/docs/x")
            .unwrap();
        f.set_len(70_000).unwrap();
        drop(f);
        for path in [
            "/mnt/docs/big.bin",
            "/mnt/docs/x",
            "/mnt/Deep/Moved Here.txt",
        ] {
            set_mtime(&p, path, 1_500_000_000);
        }
        umount(&p);
        k.halt();
        assert_clean(&image);

        let mut want = tree.clone();
        let still: Vec<String> = want
            .keys()
            .filter(|k| k.starts_with("Deep/er/still"))
            .cloned()
            .collect();
        for k in still {
            let v = want.remove(&k).unwrap();
            want.insert(k.replacen("Deep/er/still", "docs/still", 1), v);
        }
        let mut moved = want.remove("MiXeD.Case").unwrap();
        moved.mtime = 1_500_000_000;
        want.insert("Deep/Moved Here.txt".into(), moved);
        let big = want.get_mut("docs/big.bin").unwrap();
        big.data.as_mut().unwrap().truncate(5000);
        big.mtime = 1_500_000_000;
        let x = want.get_mut("docs/x").unwrap();
        x.data.as_mut().unwrap().resize(70_000, 0);
        x.mtime = 1_500_000_000;

        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        mtools(
            "mcopy",
            &image,
            &["-s", "-m", "-n", "::/*", out.to_str().unwrap()],
        );
        let got = read_host(&out);
        assert_same(&want, &got, false);

        // The aliases mdir shows are the ones the FAT rules give.
        let listing = mtools("mdir", &image, &["-a", "::/"]);
        for (alias, long) in [
            // Created in this (sorted) order.
            ("LONGFI~1 TXT", "Long File Name 2.txt"),
            ("LONGFI~2 TXT", "Long File Name.txt"),
            ("LONGFI~3 TXT", "Long File Names.txt"),
            ("README2  MD ", "readme2.md"),
        ] {
            assert!(
                listing
                    .lines()
                    .any(|l| l.starts_with(alias) && l.ends_with(long)),
                "FAT{bits}: {alias} for {long} in\n{listing}"
            );
        }
        assert!(listing
            .lines()
            .any(|l| l.starts_with("README   TXT") && !l.contains("readme")));
        // The moved directory's ".." names its new parent.
        let deep = mtools("mdir", &image, &["-a", "::/docs/still/.."]);
        assert!(deep.contains("big"), "{deep}");
    }
}

#[test]
fn full_disk_and_free_count() {
    require!(have_dosfstools(), "dosfstools not installed");
    for (bits, size) in WIDTHS {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fat.img");
        mkfs_fat(&image, size, bits, &[]);
        let (k, p) = kernel();
        mount(&p, &image, false);
        let chunk = vec![0x5Au8; 1 << 20];
        let mut n = 0;
        let err = loop {
            let mut f = rump::fs::File::create(&p, format!("/mnt/fill{n}")).unwrap();
            let r = (|| -> std::io::Result<()> {
                for _ in 0..4 {
                    std::io::Write::write_all(&mut f, &chunk)?;
                }
                Ok(())
            })();
            if let Err(e) = r {
                break e;
            }
            n += 1;
        };
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "FAT{bits}");
        let st = rump::sys::statvfs(&p, b"/mnt").unwrap();
        assert!(
            st.bfree * st.bsize < 4 << 20,
            "FAT{bits}: {} free",
            st.bfree
        );
        umount(&p);
        k.halt();
        assert_clean(&image);
        // Free some and check the count again.
        let (k, p) = kernel();
        mount(&p, &image, false);
        let before = rump::sys::statvfs(&p, b"/mnt").unwrap().bfree;
        rump::fs::remove_file(&p, "/mnt/fill0").unwrap();
        let after = rump::sys::statvfs(&p, b"/mnt").unwrap();
        assert_eq!((after.bfree - before) * after.bsize, 4 << 20, "FAT{bits}");
        umount(&p);
        k.halt();
        assert_clean(&image);
    }
}
