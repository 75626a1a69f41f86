//! Link the unikernel binaries as static, non-relocatable executables at
//! the linker's default base (2 MiB), which the runner loads as they are
//! (docs/unikernel.md, "Building a guest").
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        println!("cargo:rustc-link-arg-bins=--no-pie");
        println!("cargo:rustc-link-arg-bins=-zmax-page-size=4096");
    }
}
