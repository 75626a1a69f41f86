//! `rump demo`: boots kernels and exercises what exists, printing each
//! step and how long it took.

use std::io::{Seek, SeekFrom, Write};
use std::time::{Duration, Instant};

use anyhow::Context;
use rump::fs;
use rump::sys::{self, consts::o};
use rump::{Cred, ForkFds, Kernel};

struct Steps {
    start: Instant,
    n: usize,
}

impl Steps {
    fn step<T>(&mut self, what: &str, f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
        let t = Instant::now();
        let r = f().with_context(|| format!("demo step failed: {what}"))?;
        self.n += 1;
        println!("{:>3}. {:<72} {:>10}", self.n, what, fmt(t.elapsed()));
        Ok(r)
    }
}

fn fmt(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 10_000 {
        format!("{ns} ns")
    } else if ns < 10_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

pub fn run() -> anyhow::Result<()> {
    println!("rump-rs demo: a kernel inside this process\n");
    let mut s = Steps {
        start: Instant::now(),
        n: 0,
    };
    let kernel = s.step("boot a kernel with a tmpfs root", || {
        Ok(Kernel::builder().hostname("demo").boot()?)
    })?;
    let p = s.step("create a root process (pid, creds, cwd, fd table)", || {
        Ok(kernel.process()?)
    })?;
    let u = s.step("uname", || Ok(sys::uname(&p)?))?;
    println!(
        "       {} {} {} {}",
        u.sysname, u.nodename, u.release, u.machine
    );

    s.step("mkdir -p /etc/app /var/log /tmp", || {
        fs::create_dir_all(&p, "/etc/app")?;
        fs::create_dir_all(&p, "/var/log")?;
        fs::create_dir(&p, "/tmp")?;
        Ok(())
    })?;
    s.step("write /etc/app/config, read it back", || {
        fs::write(&p, "/etc/app/config", b"answer = 42\n")?;
        anyhow::ensure!(fs::read_to_string(&p, "/etc/app/config")? == "answer = 42\n");
        Ok(())
    })?;
    s.step("sparse file: write 1 byte at 1 GiB, read a hole", || {
        let mut f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .open(&p, "/tmp/sparse")?;
        f.seek(SeekFrom::Start(1 << 30))?;
        f.write_all(b"!")?;
        let mut buf = [1u8; 4096];
        f.read_at(&mut buf, 4096)?;
        anyhow::ensure!(buf.iter().all(|&b| b == 0));
        let m = f.metadata()?;
        println!(
            "       size {} bytes, {} KiB allocated",
            m.len(),
            m.blocks() / 2
        );
        Ok(())
    })?;
    s.step("hard link, symlink, rename across directories", || {
        fs::hard_link(&p, "/etc/app/config", "/etc/app/config.bak")?;
        fs::symlink(&p, "/etc/app/config", "/etc/current")?;
        fs::rename(&p, "/etc/app/config.bak", "/var/log/config.old")?;
        let m = fs::metadata(&p, "/etc/current")?;
        anyhow::ensure!(m.nlink() == 2);
        Ok(())
    })?;
    s.step("1,000 files: create, stat, list, delete", || {
        fs::create_dir(&p, "/many")?;
        for i in 0..1000 {
            fs::write(&p, format!("/many/f{i}"), b"")?;
        }
        for i in 0..1000 {
            fs::metadata(&p, format!("/many/f{i}"))?;
        }
        let n = fs::read_dir(&p, "/many")?.count();
        anyhow::ensure!(n == 1000, "listed {n}");
        fs::remove_dir_all(&p, "/many")?;
        Ok(())
    })?;
    s.step("pipe: write and read 64 KiB", || {
        let (r, w) = sys::pipe2(&p, o::CLOEXEC)?;
        let data = vec![7u8; 65536];
        anyhow::ensure!(sys::write(&p, w, &data)? == data.len());
        let mut got = vec![0u8; 65536];
        let mut n = 0;
        while n < got.len() {
            n += sys::read(&p, r, &mut got[n..])?;
        }
        sys::close(&p, r)?;
        sys::close(&p, w)?;
        Ok(())
    })?;
    s.step("mount a second tmpfs on /mnt (size=1m), hit ENOSPC", || {
        fs::create_dir(&p, "/mnt")?;
        sys::mount(&p, b"tmpfs", b"/mnt", b"tmpfs", 0, b"size=1m")?;
        let r = fs::write(&p, "/mnt/big", vec![0u8; 2 << 20]);
        anyhow::ensure!(r.is_err());
        let e = sys::rename(&p, b"/mnt/big", b"/big").unwrap_err();
        println!("       rename across mounts: {e}");
        Ok(())
    })?;
    s.step(
        "rfork a child sharing descriptors; a user process gets EACCES",
        || {
            let child = p.rfork(ForkFds::Share)?;
            anyhow::ensure!(child.pid() != p.pid());
            let user = kernel.process_as(Cred::user(1000, 1000))?;
            sys::chmod(&p, b"/etc/app/config", 0o600)?;
            let e = sys::open(&user, b"/etc/app/config", o::RDONLY, 0).unwrap_err();
            println!("       uid 1000 opening a 0600 root file: {e}");
            Ok(())
        },
    )?;
    s.step("second kernel: isolated namespace", || {
        let other = Kernel::boot()?;
        let q = other.process()?;
        anyhow::ensure!(!fs::exists(&q, "/etc/app/config"));
        other.halt();
        Ok(())
    })?;
    s.step("ext2: newfs a 64 MiB image, mount it, write a tree, remount read-only", || {
        let dir = tempfile::tempdir()?;
        let img = dir.path().join("disk.img");
        let opts = rump::ext2::MkfsOptions::default();
        rump::ext2::newfs_image(&img, 64 << 20, &opts)?;
        let k = Kernel::builder().ext2().boot()?;
        let q = k.process()?;
        rump::ext2::mount_image(&q, &img, "/dev/disk0", "/mnt", false)?;
        fs::create_dir_all(&q, "/mnt/etc/app")?;
        fs::write(&q, "/mnt/etc/app/config", b"persisted\n")?;
        fs::symlink(&q, "app/config", "/mnt/etc/link")?;
        sys::umount2(&q, b"/mnt", 0)?;
        rump::ext2::mount(&q, "/dev/disk0", "/mnt", true)?;
        anyhow::ensure!(fs::read(&q, "/mnt/etc/link")? == b"persisted\n");
        let e = fs::write(&q, "/mnt/x", b"").unwrap_err();
        let st = sys::statvfs(&q, b"/mnt")?;
        println!(
            "       read back through a symlink; write on the read-only mount: {e}; {} of {} blocks free",
            st.bfree, st.blocks
        );
        k.halt();
        Ok(())
    })?;
    s.step(
        "network: two kernels on an in-process bus, TCP 8 MiB over IPv6, IPv4 to the same listener",
        || {
            use rump::net::{ifup, unique_bus_name, TcpListener, TcpStream};
            use std::io::Read;
            use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4};
            let a = Kernel::builder().net().boot()?;
            let b = Kernel::builder().net().boot()?;
            let (pa, pb) = (a.process()?, b.process()?);
            let bus = unique_bus_name("demo");
            ifup(&pa, "bus0", &bus, Ipv4Addr::new(10, 9, 0, 1), 24)?;
            ifup(&pb, "bus0", &bus, Ipv4Addr::new(10, 9, 0, 2), 24)?;
            let v6 = |h| Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, h);
            sys::if_add_addr(&pa, "bus0", v6(1), 64)?;
            sys::if_add_addr(&pb, "bus0", v6(2), 64)?;
            // One listener on [::] takes both families.
            let l = TcpListener::bind(&pb, SocketAddr::new(Ipv6Addr::UNSPECIFIED.into(), 7))?;
            let server = std::thread::spawn(move || -> std::io::Result<u64> {
                let (mut s, _) = l.accept()?;
                let mut buf = vec![0u8; 65536];
                let mut n = 0u64;
                loop {
                    let got = s.read(&mut buf)?;
                    if got == 0 {
                        break;
                    }
                    n += got as u64;
                }
                s.write_all(&n.to_le_bytes())?;
                let (_, peer) = l.accept()?;
                println!("       the same listener accepted IPv4 from {peer}");
                Ok(n)
            });
            let t = Instant::now();
            let mut c = TcpStream::connect(&pa, SocketAddr::new(v6(2).into(), 7))?;
            let chunk = vec![0x5au8; 1 << 20];
            for _ in 0..8 {
                c.write_all(&chunk)?;
            }
            c.shutdown(std::net::Shutdown::Write)?;
            let mut ack = [0u8; 8];
            c.read_exact(&mut ack)?;
            let secs = t.elapsed().as_secs_f64();
            let _v4 = TcpStream::connect(&pa, SocketAddrV4::new(Ipv4Addr::new(10, 9, 0, 2), 7))?;
            let n = server
                .join()
                .map_err(|_| anyhow::anyhow!("server panicked"))??;
            anyhow::ensure!(n == 8 << 20 && u64::from_le_bytes(ack) == n);
            println!(
                "       {} MiB across the bus over IPv6 at {:.1} Gbit/s",
                n >> 20,
                n as f64 * 8.0 / secs / 1e9
            );
            Ok(())
        },
    )?;
    s.step("boot + halt 1,000 kernels", || {
        for _ in 0..1000 {
            Kernel::boot()?.halt();
        }
        Ok(())
    })?;
    s.step("halt while a thread blocks reading an empty pipe", || {
        let k = Kernel::boot()?;
        let q = k.process()?;
        let (r, _w) = sys::pipe2(&q, 0)?;
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 1];
            sys::read(&q2, r, &mut b)
        });
        std::thread::sleep(Duration::from_millis(20));
        k.halt();
        let res = t.join().map_err(|_| anyhow::anyhow!("reader panicked"))?;
        println!("       blocked read returned: {:?}", res);
        anyhow::ensure!(res.is_err());
        Ok(())
    })?;
    s.step("halt the first kernel", || {
        kernel.halt();
        anyhow::ensure!(sys::getpid(&p).is_err());
        Ok(())
    })?;
    println!(
        "\n{} steps in {}. `rump bench boot|syscall|ext2|tcp` measures the numbers.",
        s.n,
        fmt(s.start.elapsed())
    );
    Ok(())
}
