//! The library half of the `rump` binary: the configuration tools
//! ([`tools`]), written against `&dyn sys::Syscalls` so that tests run
//! them on in-process kernels and the binary runs them against a server.

pub mod tools;
