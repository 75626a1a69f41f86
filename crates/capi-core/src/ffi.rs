//! The C side of a call: errno, pointers and strings from the caller,
//! results back in the C convention.
//!
//! Every raw pointer the C caller passes is read or written here and only
//! here. The contract (the header says it too): a pointer is NULL or valid
//! for the length the call gives it; a string is NUL-terminated within
//! `PATH_MAX` bytes. NULL, lengths that cannot be real and strings with no
//! NUL in the first `PATH_MAX` bytes are reported with an errno rather than
//! followed.

use std::ffi::{c_char, c_int};

use rump::Errno;

/// The longest string a call reads, terminator included (Linux's
/// `PATH_MAX`).
pub const STRING_MAX: usize = 4096;

/// Sets the calling thread's `errno`.
pub fn set_errno(e: i32) {
    // SAFETY: __errno_location returns the calling thread's errno slot,
    // valid for the thread's lifetime.
    unsafe { *libc::__errno_location() = e }
}

/// `-1` with `errno` set from `e`, the C convention for a failed call.
pub fn fail<T: From<i8>>(e: Errno) -> T {
    set_errno(e.raw());
    T::from(-1)
}

/// Converts a result into the C convention: the value, or -1 with errno.
pub fn ret_int(r: Result<i64, Errno>) -> c_int {
    match r {
        Ok(v) => v as c_int,
        Err(e) => fail(e),
    }
}

/// `0` or `-1` with errno.
pub fn ret_unit(r: Result<(), Errno>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => fail(e),
    }
}

/// A byte count or `-1` with errno.
pub fn ret_size(r: Result<usize, Errno>) -> isize {
    match r {
        Ok(v) => v as isize,
        Err(e) => fail(e),
    }
}

/// A NUL-terminated string of at most [`STRING_MAX`] bytes (terminator
/// included), without its terminator. NULL is `EFAULT`; no terminator in
/// range is `ENAMETOOLONG`.
pub fn cstr<'a>(p: *const c_char) -> Result<&'a [u8], Errno> {
    if p.is_null() {
        return Err(Errno::EFAULT);
    }
    let base = p as *const u8;
    for i in 0..STRING_MAX {
        // SAFETY: the caller's string is valid up to and including its
        // terminator; we stop at the first NUL, so every byte read is part
        // of the string or its terminator.
        if unsafe { *base.add(i) } == 0 {
            // SAFETY: bytes 0..i were just read and belong to the string.
            return Ok(unsafe { std::slice::from_raw_parts(base, i) });
        }
    }
    Err(Errno::ENAMETOOLONG)
}

/// [`cstr`] as UTF-8 (names of interfaces, sysctl nodes, URLs):
/// `EINVAL` when it is not.
pub fn cstr_utf8<'a>(p: *const c_char) -> Result<&'a str, Errno> {
    std::str::from_utf8(cstr(p)?).map_err(|_| Errno::EINVAL)
}

/// An optional string: NULL is `None`.
pub fn cstr_opt<'a>(p: *const c_char) -> Result<Option<&'a [u8]>, Errno> {
    if p.is_null() {
        Ok(None)
    } else {
        cstr(p).map(Some)
    }
}

/// Checks a buffer length: longer than `isize::MAX` cannot be a real
/// buffer (`EINVAL`), and NULL with a non-zero length is `EFAULT`.
fn check_buf(nonnull: bool, len: usize) -> Result<(), Errno> {
    if len > isize::MAX as usize {
        return Err(Errno::EINVAL);
    }
    if !nonnull && len > 0 {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// The caller's input buffer.
pub fn slice<'a, T>(p: *const T, len: usize) -> Result<&'a [T], Errno> {
    check_buf(!p.is_null(), len.saturating_mul(std::mem::size_of::<T>()))?;
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: p is non-null and, by the contract, valid for len elements.
    Ok(unsafe { std::slice::from_raw_parts(p, len) })
}

/// The caller's output buffer.
pub fn slice_mut<'a, T>(p: *mut T, len: usize) -> Result<&'a mut [T], Errno> {
    check_buf(!p.is_null(), len.saturating_mul(std::mem::size_of::<T>()))?;
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: p is non-null and, by the contract, valid for writing len
    // elements, not aliased during the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(p, len) })
}

/// Stores `v` where the caller asked (`EFAULT` for NULL).
pub fn put<T>(p: *mut T, v: T) -> Result<(), Errno> {
    if p.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: p is non-null and, by the contract, valid for writing one T.
    unsafe { p.write_unaligned(v) };
    Ok(())
}

/// Reads one `T` the caller passed (`EFAULT` for NULL).
pub fn get<T: Copy>(p: *const T) -> Result<T, Errno> {
    if p.is_null() {
        return Err(Errno::EFAULT);
    }
    // SAFETY: p is non-null and, by the contract, valid for reading a T.
    Ok(unsafe { p.read_unaligned() })
}

/// Copies `data` into the caller's buffer `(buf, len)` as a C string,
/// truncated to fit with its terminator (`snprintf` style). Returns the
/// full length of `data`, so a caller can retry with a bigger buffer.
pub fn put_cstring(buf: *mut c_char, len: usize, data: &[u8]) -> Result<usize, Errno> {
    let out = slice_mut(buf as *mut u8, len)?;
    if let Some(room) = out.len().checked_sub(1) {
        let n = data.len().min(room);
        out[..n].copy_from_slice(&data[..n]);
        out[n] = 0;
    }
    Ok(data.len())
}
