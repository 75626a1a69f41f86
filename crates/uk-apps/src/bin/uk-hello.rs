//! Hello: boots a kernel, writes and reads back a file on tmpfs, prints
//! it, and exits with the code given as the `exit` parameter (default 0).

#![cfg_attr(target_os = "none", no_std, no_main)]

extern crate alloc;

use alloc::sync::Arc;
use core::fmt::Write;

use uk_apps::hyper::Hyper;
use uk_apps::Console;

uk_apps::app!(app);

fn app(h: Arc<dyn Hyper>) -> i32 {
    let mut out = Console(h.clone());
    let (k, p) = match uk_apps::boot(h.clone(), false) {
        Ok(kp) => kp,
        Err(e) => {
            let _ = writeln!(out, "hello: boot: {e:?}");
            return 1;
        }
    };
    uk_apps::mark_kernel_up();
    uk_apps::mark_app_main();
    let msg = b"hello from a rump kernel on tmpfs\n";
    let back = uk_apps::write_file(&p, "/hello.txt", msg)
        .and_then(|_| uk_apps::read_file(&p, "/hello.txt"));
    match back {
        Ok(data) if data == msg => {
            let _ = write!(
                out,
                "hello: read back: {}",
                core::str::from_utf8(&data).unwrap_or("?")
            );
        }
        Ok(_) => {
            let _ = writeln!(out, "hello: read back different bytes");
            return 2;
        }
        Err(e) => {
            let _ = writeln!(out, "hello: tmpfs: {e:?}");
            return 3;
        }
    }
    let code = h
        .param("exit")
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    k.halt();
    let _ = writeln!(out, "hello: exiting with {code}");
    code
}
