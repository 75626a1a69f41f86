//! The VM: memory, long-mode entry state, and the `KVM_RUN` loop.
//!
//! Long mode is entered directly (the recipe of the Intel SDM vol. 3A
//! §9.8.5, as Firecracker and Solo5 do it): identity page tables built by
//! the runner, a three-entry GDT whose segments are of privilege level 3
//! (the guest runs in ring 3; a TSS's I/O bitmap opens only the hypercall
//! ports), CR0.PG|PE|WP, CR4.PAE, EFER.LME|LMA, and `rip` at the ELF entry
//! with `rdi` pointing at the boot block.

use std::fmt;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::time::Instant;

use kvm_bindings::{kvm_segment, kvm_userspace_memory_region, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Kvm, VcpuExit, VcpuFd, VmFd};
use uk_abi::{
    BootInfo, BootInfoRepr, DiskInfo, Name, NetInfo, BOOT_INFO_GPA, BOOT_INFO_LEN, BOOT_STACK_LEN,
    GDT_GPA, HYPERCALL_PORTS, IMAGE_MIN_GPA, MEM_MAX, MEM_MIN, PDPT_GPA, PD_GPA, PML4_GPA,
    PORT_BASE, PT0_GPA, TSS_GPA, TSS_LEN,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

use crate::elf::Image;
use crate::serve::{Devices, Flow};
use crate::{signals, Config, Error, Outcome, Stop};

const PAGE_PRESENT: u64 = 1;
const PAGE_RW: u64 = 2;
const PAGE_HUGE: u64 = 0x80;
/// User-accessible: the guest runs at privilege level 3.
const PAGE_USER: u64 = 4;

pub struct Machine {
    _kvm: Kvm,
    _vm: VmFd,
    vcpu: VcpuFd,
    mem: GuestMemoryMmap,
    devices: Devices,
    tsc_khz: u64,
}

fn kvm_err(what: &str) -> impl Fn(kvm_ioctls::Error) -> Error + '_ {
    move |e| Error::Kvm(format!("{what}: {e}"))
}

impl Machine {
    pub fn new(cfg: &Config, start: Instant) -> Result<Machine, Error> {
        let mem_size = cfg.mem;
        if !(MEM_MIN..=MEM_MAX).contains(&mem_size) || !mem_size.is_multiple_of(2 << 20) {
            return Err(Error::Config(format!(
                "--mem {mem_size}: guest memory must be a multiple of 2 MiB between {} MiB and {} MiB",
                MEM_MIN >> 20,
                MEM_MAX >> 20
            )));
        }
        // Only the headers and the loadable segments are read: the rest of
        // the file (symbols, debug information) can be many times larger.
        let img_err = |e: &dyn fmt::Display| Error::Image(format!("{}: {e}", cfg.image.display()));
        let elf = File::open(&cfg.image).map_err(|e| img_err(&e))?;
        let file_len = elf.metadata().map_err(|e| img_err(&e))?.len();
        let mut prefix = read_prefix(&elf, 64).map_err(|e| img_err(&e))?;
        let want = Image::prefix_len(&prefix);
        if want > prefix.len() {
            prefix = read_prefix(&elf, want).map_err(|e| img_err(&e))?;
        }
        let image =
            Image::parse_prefix(&prefix, file_len, IMAGE_MIN_GPA, mem_size - BOOT_STACK_LEN)
                .map_err(|e| img_err(&e))?;

        let devices = Devices::open(cfg, mem_size, start)?;

        let kvm = Kvm::new().map_err(kvm_err("open /dev/kvm"))?;
        let vm = kvm.create_vm().map_err(kvm_err("create VM"))?;
        let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), mem_size as usize)])
            .map_err(|e| Error::Kvm(format!("guest memory of {mem_size} bytes: {e}")))?;
        let host = mem
            .get_host_address(GuestAddress(0))
            .map_err(|e| Error::Kvm(format!("guest memory: {e}")))?;
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: mem_size,
            userspace_addr: host as u64,
        };
        // SAFETY: `host` is the start of a mapping of `mem_size` bytes that
        // `mem` owns; `mem` lives in the Machine as long as the VM does, and
        // the region is not mapped anywhere else in the guest.
        unsafe { vm.set_user_memory_region(region) }.map_err(kvm_err("map guest memory"))?;

        // The image.
        // Each segment is read from the file straight into guest memory,
        // with no buffer in between (the runner's peak RSS would otherwise
        // hold the image twice).
        for s in &image.segments {
            let mut f = &elf;
            f.seek(SeekFrom::Start(s.file_off))
                .map_err(|e| Error::Image(format!("read segment at {:#x}: {e}", s.addr)))?;
            mem.read_exact_volatile_from(GuestAddress(s.addr), &mut f, s.file_len as usize)
                .map_err(|e| Error::Image(format!("load segment at {:#x}: {e}", s.addr)))?;
            // Fresh anonymous memory is zero already: the rest is BSS.
        }
        let image_end = image.end.div_ceil(4096) * 4096;

        write_page_tables(&mem, mem_size)?;
        // 64-bit code and data segments of privilege level 3.
        let gdt: [u64; 3] = [0, 0x00af_fb00_0000_ffff, 0x00cf_f300_0000_ffff];
        for (i, d) in gdt.iter().enumerate() {
            mem.write_obj(*d, GuestAddress(GDT_GPA + 8 * i as u64))
                .map_err(|e| Error::Kvm(format!("GDT: {e}")))?;
        }

        let vcpu = vm.create_vcpu(0).map_err(kvm_err("create vCPU"))?;
        let tsc_khz = vcpu.get_tsc_khz().map(u64::from).unwrap_or(0);

        // The boot block.
        let mut repr = BootInfoRepr::new(mem_size, image_end, tsc_khz);
        repr.boot_trace = cfg.boot_trace;
        for d in devices.disk_infos() {
            let name =
                Name::new(&d.0).ok_or_else(|| Error::Config(format!("disk name {}", d.0)))?;
            if !repr.add_disk(DiskInfo {
                name,
                size: d.1,
                read_only: d.2,
            }) {
                return Err(Error::Config(format!(
                    "at most {} disks",
                    uk_abi::MAX_DISKS
                )));
            }
        }
        for (i, n) in cfg.nets.iter().enumerate() {
            // The guest knows a tap by its own name (`netns:NS:tap0` is
            // `tap0` to it) or as `netN`.
            let tap = n.rsplit(':').next().unwrap_or(n);
            let name =
                Name::new(tap).ok_or_else(|| Error::Config(format!("--net {n}: bad name")))?;
            if !repr.add_net(NetInfo {
                name,
                mac: [
                    0x02,
                    0x75,
                    0x6b,
                    (std::process::id() >> 8) as u8,
                    std::process::id() as u8,
                    i as u8,
                ],
                mtu: 1500,
            }) {
                return Err(Error::Config(format!("at most {} links", uk_abi::MAX_NETS)));
            }
        }
        let mut params = String::new();
        for (k, v) in &cfg.params {
            if k.is_empty() || k.contains(['=', '\0']) || v.contains('\0') {
                return Err(Error::Config(format!("--param {k}={v}: bad parameter")));
            }
            params.push_str(k);
            params.push('=');
            params.push_str(v);
            params.push('\0');
        }
        repr.set_params(&params);
        let mut block = vec![0u8; BOOT_INFO_LEN];
        repr.emit(
            &mut BootInfo::new_checked(&mut block[..]).map_err(|e| Error::Config(e.to_string()))?,
        )
        .map_err(|e| {
            Error::Config(format!(
                "parameters: {e} (at most {} bytes)",
                uk_abi::MAX_PARAMS_LEN
            ))
        })?;
        mem.write_slice(&block, GuestAddress(BOOT_INFO_GPA))
            .map_err(|e| Error::Kvm(format!("boot block: {e}")))?;

        // CPU state.
        let cpuid = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_err("supported CPUID"))?;
        vcpu.set_cpuid2(&cpuid).map_err(kvm_err("set CPUID"))?;
        let mut sregs = vcpu.get_sregs().map_err(kvm_err("get sregs"))?;
        let code = kvm_segment {
            base: 0,
            limit: 0xffff_ffff,
            selector: 0x8 | 3,
            type_: 11,
            present: 1,
            dpl: 3,
            db: 0,
            s: 1,
            l: 1,
            g: 1,
            avl: 0,
            unusable: 0,
            padding: 0,
        };
        let data = kvm_segment {
            selector: 0x10 | 3,
            type_: 3,
            l: 0,
            db: 1,
            ..code
        };
        sregs.cs = code;
        sregs.ds = data;
        sregs.es = data;
        sregs.fs = data;
        sregs.gs = data;
        sregs.ss = data;
        write_tss(&mem)?;
        sregs.tr = kvm_segment {
            selector: 0,
            type_: 11,
            s: 0,
            l: 0,
            db: 0,
            g: 0,
            dpl: 0,
            base: TSS_GPA,
            limit: (TSS_LEN - 1) as u32,
            ..code
        };
        sregs.gdt.base = GDT_GPA;
        sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
        sregs.cr3 = PML4_GPA;
        sregs.cr4 = 0x20; // PAE
        sregs.cr0 = 0x8001_0031; // PG | WP | NE | ET | PE
        sregs.efer = 0x500; // LMA | LME
        vcpu.set_sregs(&sregs).map_err(kvm_err("set sregs"))?;
        let mut regs = vcpu.get_regs().map_err(kvm_err("get regs"))?;
        regs.rip = image.entry;
        regs.rsp = mem_size;
        regs.rdi = BOOT_INFO_GPA;
        regs.rflags = 2;
        vcpu.set_regs(&regs).map_err(kvm_err("set regs"))?;

        Ok(Machine {
            _kvm: kvm,
            _vm: vm,
            vcpu,
            mem,
            devices,
            tsc_khz,
        })
    }

    pub fn run(
        &mut self,
        guard: Option<&signals::Guard>,
        start: Instant,
    ) -> Result<Outcome, Error> {
        if let Some(g) = guard {
            let run = self.vcpu.get_kvm_run();
            // SAFETY: the pointer is this vCPU's `immediate_exit`; the vCPU
            // (self) outlives the guard, which `run()` drops first, and
            // this thread runs it.
            unsafe { g.arm_immediate_exit(&mut run.immediate_exit as *mut u8) };
        }
        let setup = start.elapsed();
        self.devices.wake_fd = guard.map(|g| g.wake_fd());
        let stop = loop {
            if let Some(sig) = signals::stop_signal() {
                break if sig == libc::SIGALRM {
                    Stop::Timeout
                } else {
                    Stop::Signal(sig)
                };
            }
            let exit = match self.vcpu.run() {
                Ok(VcpuExit::IoOut(port, data)) => {
                    let mut v = [0u8; 4];
                    if data.len() == 4 {
                        v.copy_from_slice(data);
                        Exit::Hypercall(port, Some(u32::from_le_bytes(v)))
                    } else {
                        Exit::Hypercall(port, None)
                    }
                }
                Ok(VcpuExit::IoIn(_, data)) => {
                    // No devices: reads float high, like an empty bus.
                    data.fill(0xff);
                    Exit::Continue
                }
                Ok(VcpuExit::Hlt) => Exit::Stop("the guest halted (hlt) without exiting".into()),
                Ok(VcpuExit::Shutdown) => Exit::Stop(self.fault_reason()),
                Ok(VcpuExit::MmioRead(addr, _)) | Ok(VcpuExit::MmioWrite(addr, _)) => {
                    Exit::Stop(format!(
                        "the guest accessed {addr:#x}, outside its {} MiB of memory",
                        self.devices.mem_size >> 20
                    ))
                }
                Ok(other) => Exit::Stop(format!("unexpected VM exit {other:?}")),
                Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                    // A signal: the loop's head looks whether it asks to stop.
                    self.vcpu.set_kvm_immediate_exit(0);
                    Exit::Continue
                }
                Err(e) => Exit::Stop(format!("KVM_RUN failed: {e}")),
            };
            match exit {
                Exit::Continue => {}
                Exit::Hypercall(port, value) => match self.devices.serve(&self.mem, port, value) {
                    Flow::Continue => {}
                    Flow::Stop(s) => break s,
                },
                Exit::Stop(msg) => {
                    let dump = self.register_dump();
                    break Stop::Fault(format!("{msg}\n{dump}"));
                }
            }
        };
        Ok(Outcome {
            stop,
            setup,
            marks: self.devices.marks.clone(),
            tsc_khz: self.tsc_khz,
            guest_touched_bytes: touched_bytes(&self.mem, self.devices.mem_size),
            hypercalls: self.devices.hypercalls,
        })
    }

    fn register_dump(&self) -> String {
        let Ok(r) = self.vcpu.get_regs() else {
            return "registers: unavailable".into();
        };
        let s = self.vcpu.get_sregs().ok();
        let mut out = format!(
            "registers: rip={:#018x} rsp={:#018x} rbp={:#018x} rflags={:#x}\n  rax={:#018x} rbx={:#018x} rcx={:#018x} rdx={:#018x}\n  rsi={:#018x} rdi={:#018x} r8={:#018x} r9={:#018x}\n  r10={:#018x} r11={:#018x} r12={:#018x} r13={:#018x}\n  r14={:#018x} r15={:#018x}",
            r.rip, r.rsp, r.rbp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.r8, r.r9,
            r.r10, r.r11, r.r12, r.r13, r.r14, r.r15
        );
        if let Some(s) = s {
            out.push_str(&format!(
                "\n  cr0={:#x} cr2={:#x} cr3={:#x} cr4={:#x} efer={:#x}",
                s.cr0, s.cr2, s.cr3, s.cr4, s.efer
            ));
        }
        out
    }
}

enum Exit {
    Continue,
    Hypercall(u16, Option<u32>),
    Stop(String),
}

impl Machine {
    /// What a triple fault was about: a port outside the hypercall range
    /// or a privileged instruction (the guest runs at privilege level 3,
    /// where both fault), else an exception the guest could not handle.
    fn fault_reason(&self) -> String {
        let generic = "the guest triple-faulted (an exception it could not handle)".to_string();
        let Ok(regs) = self.vcpu.get_regs() else {
            return generic;
        };
        let mut op = [0u8; 2];
        if self
            .mem
            .read_slice(&mut op, GuestAddress(regs.rip))
            .is_err()
        {
            return generic;
        }
        let port = match op[0] {
            0xe4..=0xe7 => Some(op[1] as u64),
            0xec..=0xef => Some(regs.rdx & 0xffff),
            _ => None,
        };
        match (port, op[0]) {
            (Some(p), _) => format!(
                "the guest used I/O port {p:#x}, not a hypercall port ({:#x}-{:#x}); it triple-faulted",
                PORT_BASE,
                PORT_BASE + (HYPERCALL_PORTS - 1)
            ),
            (None, 0xf4) => "the guest executed hlt (privileged here); it triple-faulted".into(),
            (None, 0xfa | 0xfb) => {
                "the guest executed cli/sti (privileged here); it triple-faulted".into()
            }
            _ => generic,
        }
    }
}

/// The task-state segment: no stacks (the guest never changes privilege
/// level: it has no interrupt handlers), and an I/O permission bitmap in
/// which only the hypercall ports are open.
fn write_tss(mem: &GuestMemoryMmap) -> Result<(), Error> {
    let mut tss = vec![0u8; TSS_LEN as usize];
    // The bitmap starts right after the 104 bytes of fields.
    tss[0x66..0x68].copy_from_slice(&0x68u16.to_le_bytes());
    let bitmap = &mut tss[0x68..];
    bitmap.fill(0xff);
    for port in PORT_BASE..PORT_BASE + HYPERCALL_PORTS {
        bitmap[port as usize / 8] &= !(1 << (port % 8));
    }
    mem.write_slice(&tss, GuestAddress(TSS_GPA))
        .map_err(|e| Error::Kvm(format!("TSS: {e}")))
}

/// Identity page tables: 2 MiB pages for all of guest memory except the
/// first 2 MiB, which are mapped in 4 KiB pages with page 0 absent (null
/// pointers fault) and the tables and boot block read-only.
fn write_page_tables(mem: &GuestMemoryMmap, mem_size: u64) -> Result<(), Error> {
    let w = |v: u64, at: u64| {
        mem.write_obj(v, GuestAddress(at))
            .map_err(|e| Error::Kvm(format!("page tables: {e}")))
    };
    let rw = PAGE_PRESENT | PAGE_RW | PAGE_USER;
    w(PDPT_GPA | rw, PML4_GPA)?;
    w(PD_GPA | rw, PDPT_GPA)?;
    w(PT0_GPA | rw, PD_GPA)?;
    for j in 1..mem_size >> 21 {
        w((j << 21) | rw | PAGE_HUGE, PD_GPA + 8 * j)?;
    }
    let boot_pages = BOOT_INFO_GPA..BOOT_INFO_GPA + BOOT_INFO_LEN as u64;
    let tss_pages = TSS_GPA & !0xfff..TSS_GPA + TSS_LEN;
    for i in 1..512u64 {
        let addr = i << 12;
        let read_only =
            addr < PT0_GPA + 0x1000 || boot_pages.contains(&addr) || tss_pages.contains(&addr);
        let flags = if read_only {
            PAGE_PRESENT | PAGE_USER
        } else {
            rw
        };
        w(addr | flags, PT0_GPA + 8 * i)?;
    }
    Ok(())
}

/// Bytes of guest memory that are resident (pages the guest or the runner
/// touched), from mincore(2).
fn touched_bytes(mem: &GuestMemoryMmap, mem_size: u64) -> u64 {
    let Ok(host) = mem.get_host_address(GuestAddress(0)) else {
        return 0;
    };
    let pages = mem_size.div_ceil(4096) as usize;
    let mut vec = vec![0u8; pages];
    // SAFETY: `host` is the page-aligned start of the guest mapping of
    // `mem_size` bytes, alive while `mem` is; `vec` has one byte per page.
    let rc = unsafe { libc::mincore(host.cast(), mem_size as usize, vec.as_mut_ptr()) };
    if rc != 0 {
        return 0;
    }
    vec.iter().filter(|&&b| b & 1 != 0).count() as u64 * 4096
}

/// The first `len` bytes of `f` (fewer if it is shorter).
fn read_prefix(f: &File, len: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    let mut got = 0;
    while got < len {
        match f.read_at(&mut v[got..], got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    v.truncate(got);
    Ok(v)
}
