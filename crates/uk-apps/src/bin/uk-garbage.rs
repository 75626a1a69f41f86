//! A hostile guest for the runner's tests: issues hypercalls with wrong
//! numbers, handles it was not given, ranges past its disk or outside its
//! memory, and lengths that overflow, and prints `garbage: NAME: ok` for
//! each error the runner answers with the right code (with `net=1` and a
//! `--net`, malformed frame batches too). The `final`
//! parameter picks how it ends: `block-outside` (a parameter block outside
//! guest memory), `port` (a write to a port that is no hypercall), `null`
//! (a null-pointer write), `panic`, `spin` (loops until stopped), or by
//! default an exit with the number of checks that failed.
//!
//! Guest-only: as a process it says so and exits 2.

#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::sync::Arc;

use uk_apps::hyper::Hyper;

uk_apps::app!(app);

#[cfg(not(target_os = "none"))]
fn app(_h: Arc<dyn Hyper>) -> i32 {
    eprintln!("uk-garbage only makes sense as a guest (rump unikernel run)");
    2
}

#[cfg(target_os = "none")]
fn app(h: Arc<dyn Hyper>) -> i32 {
    use core::fmt::Write;
    use uk_abi::{Call, Error};
    let mut out = uk_apps::Console(h.clone());
    let mut failed = 0;
    let mut check = |name: &str, got: Result<u64, Error>, want: Error| {
        if got == Err(want) {
            let _ = writeln!(out, "garbage: {name}: ok");
        } else {
            let _ = writeln!(out, "garbage: {name}: got {got:?}, want {want:?}");
            failed += 1;
        }
    };
    let mem = h
        .param("mem")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(32 << 20);
    let mut buf = alloc::vec![0u8; 4096];
    let gpa = buf.as_mut_ptr() as u64;
    let blk = |disk, offset, gpa, len| Call::BlkRead {
        disk,
        offset,
        gpa,
        len,
    };
    // An unknown hypercall number, with a good block.
    let (r, _) = hyper_uk::hypercall(&Call::Clock);
    check("clock-works", r.and(Err(Error::NoSys)), Error::NoSys);
    check("unknown-number", raw_with_block(99), Error::NoSys);
    check(
        "disk-not-given",
        hyper_uk::hypercall(&blk(5, 0, gpa, 512)).0,
        Error::BadHandle,
    );
    check(
        "disk-handle-out-of-range",
        hyper_uk::hypercall(&blk(1000, 0, gpa, 512)).0,
        Error::BadHandle,
    );
    check(
        "read-past-disk-end",
        hyper_uk::hypercall(&blk(0, u64::MAX - 100, gpa, 512)).0,
        Error::Invalid,
    );
    check(
        "read-after-disk-end",
        hyper_uk::hypercall(&blk(0, 1 << 40, gpa, 512)).0,
        Error::PastEnd,
    );
    check(
        "read-outside-memory",
        hyper_uk::hypercall(&blk(0, 0, mem + 4096, 512)).0,
        Error::Fault,
    );
    check(
        "read-straddling-memory-end",
        hyper_uk::hypercall(&blk(0, 0, mem - 256, 512)).0,
        Error::Fault,
    );
    check(
        "read-into-page-tables",
        hyper_uk::hypercall(&blk(0, 0, uk_abi::PML4_GPA, 512)).0,
        Error::Fault,
    );
    check(
        "length-over-limit",
        hyper_uk::hypercall(&blk(0, 0, gpa, uk_abi::MAX_IO_LEN + 1)).0,
        Error::Invalid,
    );
    check(
        "console-range-overflows",
        hyper_uk::hypercall(&Call::ConsoleWrite {
            gpa: u64::MAX - 4,
            len: 10,
        })
        .0,
        Error::Fault,
    );
    check(
        "write-to-read-only-disk",
        hyper_uk::hypercall(&Call::BlkWrite {
            disk: 0,
            offset: 0,
            gpa,
            len: 512,
        })
        .0,
        Error::ReadOnly,
    );
    check(
        "link-not-given",
        hyper_uk::hypercall(&Call::NetSend {
            net: 2,
            gpa,
            len: 60,
        })
        .0,
        Error::BadHandle,
    );
    check(
        "batch-link-not-given",
        hyper_uk::hypercall(&Call::NetRecvBatch {
            net: 2,
            gpa,
            len: 4096,
            max_frame: 1518,
        })
        .0,
        Error::BadHandle,
    );
    // A NetIo descriptor outside memory, or naming a link not given.
    check(
        "netio-desc-outside-memory",
        hyper_uk::hypercall(&Call::NetIo { desc: mem }).0,
        Error::Fault,
    );
    let io = |d: uk_abi::batch::IoDesc| {
        let raw = d.emit();
        hyper_uk::hypercall(&Call::NetIo {
            desc: raw.as_ptr() as u64,
        })
        .0
    };
    let good = uk_abi::batch::IoDesc {
        rx_gpa: gpa,
        rx_len: 4096,
        max_frame: 1518,
        ..Default::default()
    };
    check(
        "netio-link-not-given",
        io(uk_abi::batch::IoDesc { net: 3, ..good }),
        Error::BadHandle,
    );
    // With a link (`--net`, parameter `net=1`): malformed batches.
    if h.param("net").as_deref() == Some("1") {
        // A record whose length runs past the batch.
        buf[..8].copy_from_slice(&[0xff, 0x0f, 0, 0, 0, 0, 0, 0]);
        let send = |len: u64, count: u64| Call::NetSendBatch {
            net: 0,
            gpa,
            len,
            count,
        };
        check(
            "batch-record-past-end",
            hyper_uk::hypercall(&send(64, 1)).0,
            Error::Invalid,
        );
        // A zero-length record; a nonzero reserved word.
        buf[..8].copy_from_slice(&[0; 8]);
        check(
            "batch-empty-record",
            hyper_uk::hypercall(&send(64, 1)).0,
            Error::Invalid,
        );
        buf[..8].copy_from_slice(&[60, 0, 0, 0, 1, 0, 0, 0]);
        check(
            "batch-reserved-word",
            hyper_uk::hypercall(&send(128, 1)).0,
            Error::Invalid,
        );
        // More records than the batch holds.
        check(
            "batch-too-many",
            hyper_uk::hypercall(&send(64, 1 << 20)).0,
            Error::Invalid,
        );
        // A receive into the page tables, or a range that wraps.
        let recv = |gpa: u64, len: u64| Call::NetRecvBatch {
            net: 0,
            gpa,
            len,
            max_frame: 1518,
        };
        check(
            "batch-recv-into-page-tables",
            hyper_uk::hypercall(&recv(0x2000, 8192)).0,
            Error::Fault,
        );
        check(
            "batch-recv-outside-memory",
            hyper_uk::hypercall(&recv(mem, 8192)).0,
            Error::Fault,
        );
        check(
            "batch-recv-wraps",
            hyper_uk::hypercall(&recv(u64::MAX - 100, 4096)).0,
            Error::Fault,
        );
        check(
            "netio-recv-into-page-tables",
            io(uk_abi::batch::IoDesc {
                rx_gpa: 0x2000,
                ..good
            }),
            Error::Fault,
        );
        check(
            "netio-too-many-frames",
            io(uk_abi::batch::IoDesc {
                tx_count: 1 << 20,
                ..good
            }),
            Error::Invalid,
        );
        buf[..8].copy_from_slice(&[0; 8]);
        check(
            "netio-malformed-send",
            io(uk_abi::batch::IoDesc {
                tx_gpa: gpa,
                tx_len: 64,
                tx_count: 1,
                rx_len: 0,
                ..good
            }),
            Error::Invalid,
        );
    }
    drop(buf);
    match h.param("final").as_deref() {
        Some("block-outside") => hyper_uk::raw_hypercall(uk_abi::PORT_BASE, 0xfff0_0000),
        Some("port") => hyper_uk::raw_hypercall(0x3f8, 0),
        Some("null") => {
            // A write through a null pointer: page 0 is not mapped.
            hyper_uk::null_write();
        }
        Some("panic") => panic!("deliberate panic"),
        Some("spin") => {
            let _ = writeln!(out, "garbage: spinning");
            #[allow(clippy::empty_loop)]
            loop {}
        }
        _ => {}
    }
    failed
}

/// Hypercall `nr` with a zeroed block; the runner's answer.
#[cfg(target_os = "none")]
fn raw_with_block(nr: u16) -> Result<u64, uk_abi::Error> {
    hyper_uk::raw_hypercall_block(uk_abi::PORT_BASE + nr)
}
