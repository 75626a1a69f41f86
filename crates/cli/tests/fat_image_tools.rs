//! The image tools and `rump newfs -t msdos|fat12|fat16|fat32` on FAT
//! volumes, run as a user would: through the built binary, judged by
//! `fsck.fat -n` and by mtools. Partitions: an EFI system partition in a
//! GPT disk made by sgdisk, and a FAT partition of an MBR disk, reached
//! as `disk.img@pN:PATH`.

use std::path::Path;
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

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("TZ", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `fsck.fat -n` exits 0 and complains about nothing.
fn fsck_clean(img: &str) {
    let out = run("fsck.fat", &["-n", img]);
    let bad: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("fsck.fat ") && !l.contains(" files, "))
        .collect();
    assert!(bad.is_empty(), "fsck.fat -n {img}:\n{out}");
}

#[test]
fn newfs_types_are_clean_and_filled_by_mtools() {
    if !have("fsck.fat") || !have("mcopy") {
        eprintln!("skipped: dosfstools or mtools not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("Some File.txt");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(&src, &data).unwrap();
    for (ty, size, label) in [
        ("msdos", "4m", "FAT12"),
        ("fat12", "2m", "FAT12"),
        ("fat16", "20m", "FAT16"),
        ("msdos", "64m", "FAT16"),
        ("fat32", "64m", "FAT32"),
        ("msdos", "600m", "FAT32"),
    ] {
        let img = dir.path().join(format!("{ty}-{size}.img"));
        let img_s = img.to_str().unwrap();
        let out = ok(&["newfs", "-t", ty, "-s", size, "-L", "rumpvol", img_s]);
        assert!(
            out.contains(&format!("Fat{}", &label[3..])),
            "{ty} {size}: {out}"
        );
        fsck_clean(img_s);
        let info = run("minfo", &["-i", img_s, "::"]);
        assert!(info.contains(label), "{ty} {size}: minfo:\n{info}");
        // Filled by mtools, read by us.
        run("mmd", &["-i", img_s, "::/Sub Dir"]);
        run(
            "mcopy",
            &["-i", img_s, src.to_str().unwrap(), "::/Sub Dir/"],
        );
        let ls = ok(&["ls", &format!("{img_s}:/Sub Dir")]);
        assert_eq!(ls.trim(), "Some File.txt");
        let got = rump(&["cat", &format!("{img_s}:/sub dir/SOME FILE.TXT")]);
        assert!(got.status.success());
        assert!(got.stdout == data, "{ty} {size}: contents");
        // Written by us, read by mtools.
        ok(&["cp", src.to_str().unwrap(), &format!("{img_s}:/copy.bin")]);
        ok(&["mkdir", "-p", &format!("{img_s}:/a/b/c")]);
        ok(&[
            "mv",
            &format!("{img_s}:/copy.bin"),
            &format!("{img_s}:/a/b/c/Moved.bin"),
        ]);
        fsck_clean(img_s);
        let out = dir.path().join(format!("out-{ty}-{size}"));
        run(
            "mcopy",
            &["-i", img_s, "::/a/b/c/Moved.bin", out.to_str().unwrap()],
        );
        assert!(std::fs::read(&out).unwrap() == data);
        let df = ok(&["df", img_s]);
        assert!(df.lines().count() >= 2, "{df}");
    }
    // Bad type, and a size no width fits.
    assert!(!rump(&["newfs", "-t", "hpfs", "-s", "4m", "x.img"])
        .status
        .success());
    let tiny = dir.path().join("tiny.img");
    let out = rump(&["newfs", "-t", "fat32", "-s", "4m", tiny.to_str().unwrap()]);
    assert!(!out.status.success());
}

/// A GPT disk (sgdisk) with an EFI system partition formatted by
/// mkfs.fat at its offset, and a second, Linux, partition.
fn gpt_disk(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(80 << 20).unwrap();
    drop(f);
    let p = path.to_str().unwrap();
    run(
        "sgdisk",
        &[
            "-n",
            "1:2048:+40M",
            "-t",
            "1:ef00",
            "-c",
            "1:EFI system",
            "-n",
            "2:0:0",
            "-t",
            "2:8300",
            p,
        ],
    );
    // Partition 1 starts at sector 2048: 1 MiB.
    run(
        "mkfs.fat",
        &["-F", "32", "--offset", "2048", p, &(40 * 1024).to_string()],
    );
}

#[test]
fn efi_system_partition_in_a_gpt_disk() {
    if !have("sgdisk") || !have("mkfs.fat") || !have("mcopy") {
        eprintln!("skipped: gdisk, dosfstools or mtools not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    gpt_disk(&disk);
    let d = disk.to_str().unwrap();
    let part = format!("{d}@@1M");
    run("mmd", &["-i", &part, "::/EFI", "::/EFI/BOOT"]);
    let loader = dir.path().join("BOOTX64.EFI");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    std::fs::write(&loader, &data).unwrap();
    run(
        "mcopy",
        &["-i", &part, loader.to_str().unwrap(), "::/EFI/BOOT/"],
    );

    let p1 = format!("{d}@p1");
    let ls = ok(&["ls", &format!("{p1}:/EFI/BOOT")]);
    assert_eq!(ls.trim(), "BOOTX64.EFI");
    let got = rump(&["cat", &format!("{p1}:/EFI/BOOT/bootx64.efi")]);
    assert!(got.status.success() && got.stdout == data);
    // Write a new loader config through the partition, read it with mtools.
    let cfg = dir.path().join("grub.cfg");
    std::fs::write(&cfg, b"set timeout=5\n").unwrap();
    ok(&["mkdir", &format!("{p1}:/EFI/debian")]);
    ok(&[
        "cp",
        cfg.to_str().unwrap(),
        &format!("{p1}:/EFI/debian/grub.cfg"),
    ]);
    let back = run("mtype", &["-i", &part, "::/EFI/debian/grub.cfg"]);
    assert_eq!(back, "set timeout=5\n");
    // fsck.fat of the partition alone (cut out of the disk).
    let all = std::fs::read(&disk).unwrap();
    let esp = dir.path().join("esp.img");
    std::fs::write(&esp, &all[1 << 20..41 << 20]).unwrap();
    fsck_clean(esp.to_str().unwrap());
    // The GPT itself is untouched.
    let v = run("sgdisk", &["-v", d]);
    assert!(v.contains("No problems found"), "{v}");
    // Partition 2 has no file system: a clear refusal.
    let out = rump(&["ls", &format!("{d}@p2:/")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown file system type"));
}

#[test]
fn fat_partition_of_an_mbr_disk() {
    if !have("mkfs.fat") || !have("mcopy") {
        eprintln!("skipped: dosfstools or mtools not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("mbr.img");
    let mut img = vec![0u8; 24 << 20];
    // One partition entry: type 0x0C (FAT32 LBA) or 0x06 (FAT16) at
    // sector 2048, 20 MiB long.
    let e = 446;
    img[e + 4] = 0x06;
    img[e + 8..e + 12].copy_from_slice(&2048u32.to_le_bytes());
    img[e + 12..e + 16].copy_from_slice(&(40960u32).to_le_bytes());
    img[510] = 0x55;
    img[511] = 0xAA;
    std::fs::write(&disk, &img).unwrap();
    let d = disk.to_str().unwrap();
    run("mkfs.fat", &["-F", "16", "--offset", "2048", d, "20480"]);
    let part = format!("{d}@@1M");
    std::fs::write(dir.path().join("autoexec.bat"), b"@echo off\r\n").unwrap();
    run(
        "mcopy",
        &[
            "-i",
            &part,
            dir.path().join("autoexec.bat").to_str().unwrap(),
            "::/",
        ],
    );
    let p1 = format!("{d}@p1");
    assert_eq!(ok(&["ls", &format!("{p1}:/")]).trim(), "autoexec.bat");
    ok(&["touch", &format!("{p1}:/config.sys")]);
    let listing = run("mdir", &["-i", &part, "-b", "::/"]);
    assert!(listing.contains("config.sys"), "{listing}");
}
