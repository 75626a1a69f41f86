//! The runner on hand-assembled guests (no guest toolchain needed): direct
//! long-mode entry, hypercalls, error codes for bad blocks, and stops with a
//! message for what cannot be answered. Needs /dev/kvm.

use std::time::Duration;

use uk_runner::{elf, Config, DiskSpec, Stop};

macro_rules! require_kvm {
    () => {
        if !uk_runner::kvm_available() {
            eprintln!("skipped: /dev/kvm cannot be opened here");
            return;
        }
    };
}

const BASE: u64 = 0x20_0000;
const BLOCK: u32 = 0x30_0000;

/// x86-64 machine code, assembled by hand.
struct Asm(Vec<u8>);

impl Asm {
    fn new() -> Asm {
        // mov rax, BLOCK
        let mut a = Asm(vec![0x48, 0xc7, 0xc0]);
        a.0.extend_from_slice(&BLOCK.to_le_bytes());
        a
    }
    /// mov qword [rax + 8*(i+1)], imm32 (argument word i)
    fn arg(mut self, i: u8, v: u32) -> Asm {
        self.0.extend_from_slice(&[0x48, 0xc7, 0x40, 8 * (i + 1)]);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// mov eax, imm32 (a raw block address), keeping rax's role otherwise
    fn eax(mut self, v: u32) -> Asm {
        self.0.push(0xb8);
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    /// mov dx, port; out dx, eax
    fn out(mut self, port: u16) -> Asm {
        self.0.extend_from_slice(&[0x66, 0xba]);
        self.0.extend_from_slice(&port.to_le_bytes());
        self.0.push(0xef);
        self
    }
    /// Exit with code -ret of the last call: mov rcx,[rax]; neg rcx;
    /// mov [rax+8], rcx; mov qword [rax+16], 0; out to the exit port.
    fn exit_with_neg_ret(self) -> Asm {
        let mut a = self;
        a.0.extend_from_slice(&[0x48, 0x8b, 0x08, 0x48, 0xf7, 0xd9, 0x48, 0x89, 0x48, 0x08]);
        a.arg(1, 0).out(0x508)
    }
    fn exit(self, code: u32) -> Asm {
        self.arg(0, code).arg(1, 0).out(0x508)
    }
    fn spin(mut self) -> Asm {
        self.0.extend_from_slice(&[0xeb, 0xfe]);
        self
    }
    fn image(mut self, data: &[u8]) -> tempfile::NamedTempFile {
        self.0.push(0xf4);
        assert!(self.0.len() <= 0x100);
        self.0.resize(0x100, 0x90);
        self.0.extend_from_slice(data);
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), elf::build_exec(BASE, &self.0)).unwrap();
        f
    }
}

fn run(img: &tempfile::NamedTempFile, f: impl FnOnce(&mut Config)) -> uk_runner::Outcome {
    let mut cfg = Config::new(img.path());
    cfg.mem = 8 << 20;
    f(&mut cfg);
    uk_runner::run(&cfg).unwrap()
}

#[test]
fn console_and_exit_code() {
    require_kvm!();
    let img = Asm::new()
        .arg(0, BASE as u32 + 0x100)
        .arg(1, 3)
        .out(0x500)
        .exit(7)
        .image(b"hi\n");
    let out = run(&img, |_| {});
    assert_eq!(out.stop, Stop::Exit(7));
    assert_eq!(out.stop.exit_status(), 7);
    assert_eq!(out.hypercalls, 2);
}

#[test]
fn unknown_hypercall_gets_enosys() {
    require_kvm!();
    let img = Asm::new().out(0x500 + 77).exit_with_neg_ret().image(b"");
    assert_eq!(run(&img, |_| {}).stop, Stop::Exit(38));
}

#[test]
fn console_buffer_outside_memory_gets_efault() {
    require_kvm!();
    let img = Asm::new()
        .arg(0, 0x7fff_0000)
        .arg(1, 16)
        .out(0x500)
        .exit_with_neg_ret()
        .image(b"");
    assert_eq!(run(&img, |_| {}).stop, Stop::Exit(14));
}

fn disk(len: usize) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), vec![0x5a; len]).unwrap();
    f
}

#[test]
fn block_io_past_the_disk_and_bad_handles_get_errors() {
    require_kvm!();
    let d = disk(4096);
    let with_disk = |cfg: &mut Config, ro: bool| {
        cfg.disks.push(DiskSpec {
            name: "/dev/disk0".into(),
            path: d.path().into(),
            read_only: ro,
        });
    };
    // Read 512 bytes at 4000: past the end of a 4096-byte disk.
    let past = Asm::new()
        .arg(0, 0)
        .arg(1, 4000)
        .arg(2, 0x40_0000)
        .arg(3, 512)
        .out(0x503)
        .exit_with_neg_ret()
        .image(b"");
    assert_eq!(run(&past, |c| with_disk(c, false)).stop, Stop::Exit(6));
    // A disk handle the guest was not given.
    let handle = Asm::new()
        .arg(0, 1)
        .arg(1, 0)
        .arg(2, 0x40_0000)
        .arg(3, 512)
        .out(0x503)
        .exit_with_neg_ret()
        .image(b"");
    assert_eq!(run(&handle, |c| with_disk(c, false)).stop, Stop::Exit(9));
    // Into guest memory that does not exist, and into the read-only tables.
    for gpa in [0x7f_ff00u32, 0x2000] {
        let outside = Asm::new()
            .arg(0, 0)
            .arg(1, 0)
            .arg(2, gpa)
            .arg(3, 512)
            .out(0x503)
            .exit_with_neg_ret()
            .image(b"");
        assert_eq!(run(&outside, |c| with_disk(c, false)).stop, Stop::Exit(14));
    }
    // A write to a read-only disk.
    let ro = Asm::new()
        .arg(0, 0)
        .arg(1, 0)
        .arg(2, 0x40_0000)
        .arg(3, 512)
        .out(0x504)
        .exit_with_neg_ret()
        .image(b"");
    assert_eq!(run(&ro, |c| with_disk(c, true)).stop, Stop::Exit(30));
    assert_eq!(std::fs::read(d.path()).unwrap(), vec![0x5a; 4096]);
    // A good read lands in guest memory: read 4 bytes, write them to the
    // console... and exit with the count.
    let good = Asm::new()
        .arg(0, 0)
        .arg(1, 8)
        .arg(2, 0x40_0000)
        .arg(3, 100)
        .out(0x503)
        .eax(BLOCK)
        .exit_with_neg_ret()
        .image(b"");
    // ret = 100 → exit code -100 & 0xff = 156.
    assert_eq!(run(&good, |c| with_disk(c, false)).stop, Stop::Exit(-100));
}

#[test]
fn unanswerable_hypercalls_stop_the_guest_with_a_message() {
    require_kvm!();
    // A parameter block outside guest memory.
    let img = Asm::new().eax(0x7fff_0000).out(0x500).image(b"");
    match run(&img, |_| {}).stop {
        Stop::Fault(m) => assert!(m.contains("parameter block"), "{m}"),
        s => panic!("{s:?}"),
    }
    // A port that is no hypercall.
    let img = Asm::new().out(0x3f8).image(b"");
    match run(&img, |_| {}).stop {
        Stop::Fault(m) => assert!(m.contains("0x3f8"), "{m}"),
        s => panic!("{s:?}"),
    }
    // A null-pointer write: page 0 is not mapped, the guest has no IDT, so
    // it triple-faults; the runner reports it with a register dump.
    let mut a = Asm::new();
    a.0.extend_from_slice(&[0x48, 0x31, 0xdb, 0x48, 0x89, 0x03]); // xor rbx,rbx; mov [rbx],rax
    match run(&a.image(b""), |_| {}).stop {
        Stop::Fault(m) => assert!(m.contains("triple-fault") && m.contains("rip="), "{m}"),
        s => panic!("{s:?}"),
    }
}

#[test]
fn bad_images_and_options_are_refused() {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), b"not an elf").unwrap();
    let err = uk_runner::run(&Config::new(f.path())).unwrap_err();
    assert!(err.to_string().contains("not an ELF"), "{err}");
    let img = Asm::new().exit(0).image(b"");
    let mut cfg = Config::new(img.path());
    cfg.mem = 3 << 20;
    assert!(uk_runner::run(&cfg)
        .unwrap_err()
        .to_string()
        .contains("--mem"));
    assert!(DiskSpec::parse("/dev/disk0=", 0).is_err());
    assert!(DiskSpec::parse("a b=x", 0).is_err());
    let d = DiskSpec::parse("/dev/disk1=img.raw,ro", 0).unwrap();
    assert_eq!((d.name.as_str(), d.read_only), ("/dev/disk1", true));
    assert_eq!(uk_runner::parse_size("32M").unwrap(), 32 << 20);
    assert!(uk_runner::parse_size("lots").is_err());
}

#[test]
fn a_spinning_guest_is_stopped_by_the_timeout() {
    require_kvm!();
    let img = Asm::new().spin().image(b"");
    let out = run(&img, |c| {
        c.timeout = Some(Duration::from_millis(200));
        c.handle_signals = true;
    });
    assert_eq!(out.stop, Stop::Timeout);
    assert_eq!(out.stop.exit_status(), 124);
}
