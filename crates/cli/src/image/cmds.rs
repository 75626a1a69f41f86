//! The image commands other than `cp`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;

use rump::sys;
use rump::sys::consts::o;
use rump::Errno;

use super::fmt::{full_time, human, mode_string, short_time, strerror, type_name};
use super::session::{server, split, split_server, ImagePath, Session};
use super::ImageCmd;

/// Per-command state: the name for messages, the exit status, and the
/// images opened so far.
pub struct Ctx {
    pub cmd: &'static str,
    pub status: i32,
    write: bool,
    sessions: BTreeMap<PathBuf, Option<Session>>,
}

impl Ctx {
    pub fn new(cmd: &'static str, write: bool) -> Ctx {
        Ctx {
            cmd,
            status: 0,
            write,
            sessions: BTreeMap::new(),
        }
    }

    /// Reports an error; the exit status becomes 1.
    pub fn fail(&mut self, msg: impl std::fmt::Display) {
        eprintln!("rump {}: {msg}", self.cmd);
        self.status = 1;
    }

    /// Splits an `IMAGE:PATH` argument (or, with a server, a kernel
    /// path), reporting a host path as an error.
    pub fn arg(&mut self, arg: &str) -> Option<ImagePath> {
        let r = kernel_path(arg);
        if r.is_none() {
            if server().is_some() {
                self.fail(format_args!("{arg}: not of the form IMAGE:PATH or /PATH"));
            } else {
                self.fail(format_args!(
                    "{arg}: not of the form IMAGE:PATH (or set RUMP_SERVER for /PATH)"
                ));
            }
        }
        r
    }

    /// The session for an image, opened on first use.
    pub fn session(&mut self, image: &std::path::Path) -> Option<&Session> {
        if !self.sessions.contains_key(image) {
            let s = match Session::open(image, self.write) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.fail(format_args!("{e:#}"));
                    None
                }
            };
            self.sessions.insert(image.to_path_buf(), s);
        }
        self.sessions.get(image).and_then(|s| s.as_ref())
    }

    /// Takes an opened session out (the caller closes it).
    pub fn take_session(&mut self, image: &std::path::Path) -> Option<Session> {
        self.sessions.remove(image).flatten()
    }

    /// Unmounts everything; returns the exit status.
    pub fn finish(mut self) -> i32 {
        for (_, s) in std::mem::take(&mut self.sessions) {
            if let Some(s) = s {
                if let Err(e) = s.close() {
                    self.fail(format_args!("{e:#}"));
                }
            }
        }
        self.status
    }
}

/// `IMAGE:PATH`, or with a server `/PATH` and `:/PATH`.
fn kernel_path(arg: &str) -> Option<ImagePath> {
    split(arg).or_else(|| split_server(arg, true))
}

fn err(e: Errno) -> String {
    strerror(&rump::io_error(e))
}

pub fn run(cmd: ImageCmd) -> i32 {
    match cmd {
        ImageCmd::Ls {
            long,
            all,
            directory,
            recursive,
            paths,
        } => ls(paths, long, all, directory, recursive),
        ImageCmd::Cat { paths } => cat(paths),
        ImageCmd::Cp { recursive, paths } => super::cp::run(paths, recursive),
        ImageCmd::Mkdir {
            parents,
            mode,
            paths,
        } => mkdir(paths, parents, mode),
        ImageCmd::Rm {
            recursive,
            force,
            paths,
        } => rm(paths, recursive, force),
        ImageCmd::Mv { paths } => mv(paths),
        ImageCmd::Ln {
            symbolic,
            target,
            link,
        } => ln(&target, &link, symbolic),
        ImageCmd::Stat { paths } => stat(paths),
        ImageCmd::Find { path, name, kind } => find(&path, name.as_deref(), kind),
        ImageCmd::Du { summarize, paths } => du(paths, summarize),
        ImageCmd::Df { human, images, .. } => df(images, human),
        ImageCmd::Chmod { mode, paths } => chmod(&mode, paths),
        ImageCmd::Chown { owner, paths } => chown(&owner, paths),
        ImageCmd::Touch { paths } => touch(paths),
        ImageCmd::Write { append, path } => write_stdin(&path, append),
    }
}

/// Runs `f` for each `IMAGE:PATH` argument with its session and kernel path.
fn each(
    c: &mut Ctx,
    args: &[String],
    mut f: impl FnMut(&mut Vec<String>, &Session, &str, &str, &str),
) {
    for a in args {
        let Some(ip) = c.arg(a) else { continue };
        let mut errors = Vec::new();
        if let Some(s) = c.session(&ip.image) {
            let kpath = s.k(&ip.path);
            f(&mut errors, s, &kpath, a, &ip.path);
        }
        for e in errors {
            c.fail(e);
        }
    }
}

// ----- ls ---------------------------------------------------------------------------

struct Row {
    mode: String,
    nlink: String,
    uid: String,
    gid: String,
    size: String,
    time: String,
    name: String,
}

fn long_row(s: &Session, kpath: &str, name: &str) -> Result<(Row, u64), Errno> {
    let st = s.sys().lstat(kpath)?;
    let size = match st.mode & 0o170000 {
        0o020000 | 0o060000 => {
            let (ma, mi) = (
                (st.rdev >> 8) & 0xfff,
                (st.rdev & 0xff) | ((st.rdev >> 12) & !0xff),
            );
            format!("{ma}, {mi}")
        }
        _ => st.size.to_string(),
    };
    let mut shown = name.to_string();
    if st.mode & 0o170000 == 0o120000 {
        if let Ok(t) = s.sys().readlink(kpath) {
            shown.push_str(" -> ");
            shown.push_str(&String::from_utf8_lossy(&t));
        }
    }
    Ok((
        Row {
            mode: mode_string(st.mode),
            nlink: st.nlink.to_string(),
            uid: st.uid.to_string(),
            gid: st.gid.to_string(),
            size,
            time: short_time(st.mtime.sec),
            name: shown,
        },
        st.blocks,
    ))
}

fn print_rows(rows: &[Row]) {
    let w = |f: fn(&Row) -> &String| rows.iter().map(|r| f(r).len()).max().unwrap_or(0);
    let (wn, wu, wg, ws) = (
        w(|r| &r.nlink),
        w(|r| &r.uid),
        w(|r| &r.gid),
        w(|r| &r.size),
    );
    let mut out = std::io::stdout().lock();
    for r in rows {
        let _ = writeln!(
            out,
            "{} {:>wn$} {:<wu$} {:<wg$} {:>ws$} {} {}",
            r.mode, r.nlink, r.uid, r.gid, r.size, r.time, r.name
        );
    }
}

fn list_names(s: &Session, kpath: &str, all: bool) -> Result<Vec<String>, Errno> {
    let mut names: Vec<String> = Vec::new();
    for e in s.sys().read_dir(kpath)? {
        let n = String::from_utf8_lossy(&e).into_owned();
        if all || !n.starts_with('.') {
            names.push(n);
        }
    }
    if all {
        names.push(".".into());
        names.push("..".into());
    }
    names.sort();
    Ok(names)
}

fn ls(paths: Vec<String>, long: bool, all: bool, directory: bool, recursive: bool) -> i32 {
    let mut c = Ctx::new("ls", false);
    let many = paths.len() > 1 || recursive;
    let mut first = true;
    each(&mut c, &paths, |errs, s, kpath, arg, _| {
        let st = match s.sys().lstat(kpath) {
            Ok(st) => st,
            Err(e) => return errs.push(format!("cannot access '{arg}': {}", err(e))),
        };
        if directory || st.mode & 0o170000 != 0o040000 {
            if long {
                match long_row(s, kpath, arg) {
                    Ok((r, _)) => print_rows(&[r]),
                    Err(e) => errs.push(format!("cannot access '{arg}': {}", err(e))),
                }
            } else {
                println!("{arg}");
            }
            return;
        }
        let mut stack = vec![(kpath.to_string(), arg.to_string())];
        while let Some((kdir, shown)) = stack.pop() {
            let names = match list_names(s, &kdir, all) {
                Ok(n) => n,
                Err(e) => {
                    errs.push(format!("cannot open directory '{shown}': {}", err(e)));
                    continue;
                }
            };
            if many {
                if !first {
                    println!();
                }
                println!("{shown}:");
            }
            first = false;
            if long {
                let mut rows = Vec::new();
                let mut total = 0;
                for n in &names {
                    match long_row(s, &format!("{kdir}/{n}"), n) {
                        Ok((r, b)) => {
                            total += b;
                            rows.push(r);
                        }
                        Err(e) => errs.push(format!("cannot access '{shown}/{n}': {}", err(e))),
                    }
                }
                println!("total {}", total / 2);
                print_rows(&rows);
            } else {
                let mut out = std::io::stdout().lock();
                for n in &names {
                    let _ = writeln!(out, "{n}");
                }
            }
            if recursive {
                let mut subdirs = Vec::new();
                for n in names.iter().filter(|n| *n != "." && *n != "..") {
                    let kp = format!("{kdir}/{n}");
                    if s.sys()
                        .lstat(&kp)
                        .is_ok_and(|st| st.mode & 0o170000 == 0o040000)
                    {
                        subdirs.push((kp, format!("{}/{n}", shown.trim_end_matches('/'))));
                    }
                }
                stack.extend(subdirs.into_iter().rev());
            }
        }
    });
    c.finish()
}

// ----- cat, write -----------------------------------------------------------------

fn cat(paths: Vec<String>) -> i32 {
    let mut c = Ctx::new("cat", false);
    each(&mut c, &paths, |errs, s, kpath, arg, _| {
        let r = (|| -> Result<(), Errno> {
            let fd = s.sys().open(kpath, o::RDONLY, 0)?;
            let mut out = std::io::stdout().lock();
            let r = loop {
                match s.sys().read(fd, 1 << 20) {
                    Ok(buf) if buf.is_empty() => break Ok(()),
                    Ok(buf) => {
                        if out.write_all(&buf).is_err() {
                            break Err(Errno::EPIPE);
                        }
                    }
                    Err(e) => break Err(e),
                }
            };
            let _ = out.flush();
            s.sys().close(fd)?;
            r
        })();
        if let Err(e) = r {
            errs.push(format!("{arg}: {}", err(e)));
        }
    });
    c.finish()
}

fn write_stdin(path: &str, append: bool) -> i32 {
    let mut c = Ctx::new("write", true);
    let mut data = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut data) {
        c.fail(format_args!("standard input: {}", strerror(&e)));
        return c.finish();
    }
    each(&mut c, &[path.to_string()], |errs, s, kpath, arg, _| {
        let flags = o::WRONLY | o::CREAT | if append { o::APPEND } else { o::TRUNC };
        let r = s.sys().open(kpath, flags, 0o666).and_then(|fd| {
            let mut done = 0;
            while done < data.len() {
                done += s.sys().write(fd, &data[done..])?;
            }
            s.sys().close(fd)
        });
        if let Err(e) = r {
            errs.push(format!("{arg}: {}", err(e)));
        }
    });
    c.finish()
}

// ----- mkdir, rm, mv, ln, touch, chmod, chown -----------------------------------

fn parse_octal(c: &mut Ctx, s: &str) -> Option<u32> {
    match u32::from_str_radix(s, 8) {
        Ok(m) if m <= 0o7777 => Some(m),
        _ => {
            c.fail(format_args!("invalid mode '{s}' (octal modes only)"));
            None
        }
    }
}

fn mkdir(paths: Vec<String>, parents: bool, mode: Option<String>) -> i32 {
    let mut c = Ctx::new("mkdir", true);
    let mode = match mode {
        Some(m) => match parse_octal(&mut c, &m) {
            Some(m) => Some(m),
            None => return c.finish(),
        },
        None => None,
    };
    each(&mut c, &paths, |errs, s, kpath, arg, _| {
        let r = if parents {
            s.sys().create_dir_all(kpath)
        } else {
            s.sys().mkdir(kpath, 0o777)
        };
        let r = r.and_then(|_| match mode {
            Some(m) => s.sys().chmod(kpath, m),
            None => Ok(()),
        });
        if let Err(e) = r {
            errs.push(format!("cannot create directory '{arg}': {}", err(e)));
        }
    });
    c.finish()
}

fn rm(paths: Vec<String>, recursive: bool, force: bool) -> i32 {
    let mut c = Ctx::new("rm", true);
    each(&mut c, &paths, |errs, s, kpath, arg, ipath| {
        if ipath == "/" {
            return errs.push("refusing to remove '/'".into());
        }
        let st = match s.sys().lstat(kpath) {
            Ok(st) => st,
            Err(Errno::ENOENT) if force => return,
            Err(e) => return errs.push(format!("cannot remove '{arg}': {}", err(e))),
        };
        let r = if st.mode & 0o170000 == 0o040000 {
            if !recursive {
                return errs.push(format!("cannot remove '{arg}': Is a directory"));
            }
            s.sys().remove_dir_all(kpath)
        } else {
            s.sys().unlink(kpath)
        };
        if let Err(e) = r {
            errs.push(format!("cannot remove '{arg}': {}", err(e)));
        }
    });
    c.finish()
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

fn mv(paths: Vec<String>) -> i32 {
    let mut c = Ctx::new("mv", true);
    let Some((dst, srcs)) = paths.split_last() else {
        return c.finish();
    };
    let Some(d) = c.arg(dst) else {
        return c.finish();
    };
    let Some(s) = c.session(&d.image) else {
        return c.finish();
    };
    let kdst = s.k(&d.path);
    let dst_is_dir = s
        .sys()
        .stat(&kdst)
        .is_ok_and(|st| st.mode & 0o170000 == 0o040000);
    let mut errors = Vec::new();
    if srcs.len() > 1 && !dst_is_dir {
        errors.push(format!("target '{dst}' is not a directory"));
    } else {
        for a in srcs {
            let Some(ip) = kernel_path(a) else {
                errors.push(format!("{a}: not of the form IMAGE:PATH"));
                continue;
            };
            if ip.image != d.image {
                errors.push(format!("cannot move '{a}' to another image"));
                continue;
            }
            let target = if dst_is_dir {
                format!("{kdst}/{}", basename(&ip.path))
            } else {
                kdst.clone()
            };
            if let Err(e) = s.sys().rename(&s.k(&ip.path), &target) {
                errors.push(format!("cannot move '{a}' to '{dst}': {}", err(e)));
            }
        }
    }
    for e in errors {
        c.fail(e);
    }
    c.finish()
}

fn ln(target: &str, link: &str, symbolic: bool) -> i32 {
    let mut c = Ctx::new("ln", true);
    let Some(l) = c.arg(link) else {
        return c.finish();
    };
    let t = if symbolic {
        None
    } else {
        match c.arg(target) {
            Some(t) if t.image == l.image => Some(t),
            Some(_) => {
                c.fail("hard links must stay on one image");
                return c.finish();
            }
            None => return c.finish(),
        }
    };
    let Some(s) = c.session(&l.image) else {
        return c.finish();
    };
    let kl = s.k(&l.path);
    let r = match &t {
        None => s.sys().symlink(target.as_bytes(), &kl),
        Some(t) => s.sys().link(&s.k(&t.path), &kl),
    };
    if let Err(e) = r {
        c.fail(format_args!("failed to create link '{link}': {}", err(e)));
    }
    c.finish()
}

fn touch(paths: Vec<String>) -> i32 {
    let mut c = Ctx::new("touch", true);
    each(&mut c, &paths, |errs, s, kpath, arg, _| {
        let r = match s.sys().touch_now(kpath) {
            Err(Errno::ENOENT) => s
                .sys()
                .open(kpath, o::WRONLY | o::CREAT, 0o666)
                .and_then(|fd| s.sys().close(fd)),
            r => r,
        };
        if let Err(e) = r {
            errs.push(format!("cannot touch '{arg}': {}", err(e)));
        }
    });
    c.finish()
}

fn chmod(mode: &str, paths: Vec<String>) -> i32 {
    let mut c = Ctx::new("chmod", true);
    let octal = u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777);
    if octal.is_none() && symbolic_mode(mode, 0, false).is_none() {
        c.fail(format_args!("invalid mode: '{mode}'"));
        return c.finish();
    }
    each(&mut c, &paths, |errs, s, kpath, arg, _| {
        let new = match octal {
            Some(m) => Ok(m),
            None => s.sys().stat(kpath).map(|st| {
                let is_dir = st.mode & 0o170000 == 0o040000;
                symbolic_mode(mode, st.mode & 0o7777, is_dir).unwrap_or(st.mode & 0o7777)
            }),
        };
        if let Err(e) = new.and_then(|m| s.sys().chmod(kpath, m)) {
            errs.push(format!("changing permissions of '{arg}': {}", err(e)));
        }
    });
    c.finish()
}

/// Applies a symbolic mode of chmod(1) (`u+x,go-w`, `a=rX`, `+t`) to the
/// permission bits `cur`. Without a `who`, the bits the usual umask (022)
/// would clear are left alone, as chmod(1) does. `None` if it does not
/// parse.
pub(crate) fn symbolic_mode(spec: &str, cur: u32, is_dir: bool) -> Option<u32> {
    const UMASK: u32 = 0o022;
    let mut mode = cur;
    for clause in spec.split(',') {
        let b = clause.as_bytes();
        let mut i = 0;
        let mut who = 0u32;
        while i < b.len() && b"ugoa".contains(&b[i]) {
            who |= match b[i] {
                b'u' => 0o4700,
                b'g' => 0o2070,
                b'o' => 0o1007,
                _ => 0o7777,
            };
            i += 1;
        }
        let masked = who == 0;
        if masked {
            who = 0o7777;
        }
        if i == b.len() {
            return None;
        }
        while i < b.len() {
            let op = b[i];
            if !b"+-=".contains(&op) {
                return None;
            }
            i += 1;
            let mut bits = 0u32;
            while i < b.len() && !b"+-=".contains(&b[i]) {
                bits |= match b[i] {
                    b'r' => 0o444,
                    b'w' => 0o222,
                    b'x' => 0o111,
                    b'X' if is_dir || mode & 0o111 != 0 => 0o111,
                    b'X' => 0,
                    b's' => 0o6000,
                    b't' => 0o1000,
                    // Copy another class's bits to every class.
                    b'u' => ((mode >> 6) & 7) * 0o111,
                    b'g' => ((mode >> 3) & 7) * 0o111,
                    b'o' => (mode & 7) * 0o111,
                    _ => return None,
                };
                i += 1;
            }
            let mut affected = bits & who;
            if masked {
                affected &= !UMASK;
            }
            match op {
                b'+' => mode |= affected,
                b'-' => mode &= !affected,
                _ => {
                    let clear = if masked { who & !UMASK } else { who };
                    mode = (mode & !clear) | affected;
                }
            }
        }
    }
    Some(mode & 0o7777)
}

#[cfg(test)]
mod mode_tests {
    use super::symbolic_mode;

    #[test]
    fn symbolic_modes_like_chmod() {
        assert_eq!(symbolic_mode("u+x", 0o644, false), Some(0o744));
        assert_eq!(symbolic_mode("go-w", 0o666, false), Some(0o644));
        assert_eq!(symbolic_mode("a=r", 0o755, false), Some(0o444));
        assert_eq!(symbolic_mode("+w", 0o444, false), Some(0o644));
        assert_eq!(symbolic_mode("a+X", 0o644, true), Some(0o755));
        assert_eq!(symbolic_mode("a+X", 0o644, false), Some(0o644));
        assert_eq!(symbolic_mode("u+s,+t", 0o755, false), Some(0o5755));
        assert_eq!(symbolic_mode("g=u", 0o740, false), Some(0o770));
        assert_eq!(symbolic_mode("u=rw,go=", 0o777, false), Some(0o600));
        assert_eq!(symbolic_mode("q+x", 0o644, false), None);
        assert_eq!(symbolic_mode("u", 0o644, false), None);
        assert_eq!(symbolic_mode("u+z", 0o644, false), None);
    }
}

fn chown(owner: &str, paths: Vec<String>) -> i32 {
    let mut c = Ctx::new("chown", true);
    let (u, g) = owner.split_once(':').unwrap_or((owner, ""));
    let id = |s: &str| -> Result<u32, ()> {
        if s.is_empty() {
            Ok(sys::NO_CHANGE)
        } else {
            s.parse().map_err(|_| ())
        }
    };
    let (Ok(uid), Ok(gid)) = (id(u), id(g)) else {
        c.fail(format_args!(
            "invalid owner '{owner}' (numeric UID[:GID] only)"
        ));
        return c.finish();
    };
    each(&mut c, &paths, |errs, s, kpath, arg, _| {
        if let Err(e) = s.sys().lchown(kpath, uid, gid) {
            errs.push(format!("changing ownership of '{arg}': {}", err(e)));
        }
    });
    c.finish()
}

// ----- stat, find, du, df -----------------------------------------------------------

fn stat(paths: Vec<String>) -> i32 {
    let mut c = Ctx::new("stat", false);
    each(&mut c, &paths, |errs, s, kpath, arg, ipath| {
        let st = match s.sys().lstat(kpath) {
            Ok(st) => st,
            Err(e) => return errs.push(format!("cannot statx '{arg}': {}", err(e))),
        };
        let mut name = ipath.to_string();
        if st.mode & 0o170000 == 0o120000 {
            if let Ok(t) = s.sys().readlink(kpath) {
                name = format!("{name} -> {}", String::from_utf8_lossy(&t));
            }
        }
        println!("  File: {name}");
        println!(
            "  Size: {:<15} Blocks: {:<10} IO Block: {:<6} {}",
            st.size,
            st.blocks,
            st.blksize,
            type_name(st.mode)
        );
        println!(
            "Device: {:<15} Inode: {:<11} Links: {}",
            s.image.display(),
            st.ino,
            st.nlink
        );
        println!(
            "Access: ({:04o}/{})  Uid: ({:>5})   Gid: ({:>5})",
            st.mode & 0o7777,
            mode_string(st.mode),
            st.uid,
            st.gid
        );
        println!("Access: {}", full_time(st.atime.sec, st.atime.nsec));
        println!("Modify: {}", full_time(st.mtime.sec, st.mtime.nsec));
        println!("Change: {}", full_time(st.ctime.sec, st.ctime.nsec));
    });
    c.finish()
}

/// Shell-pattern match with `*` and `?`.
fn glob(pat: &[u8], s: &[u8]) -> bool {
    match (pat.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => glob(&pat[1..], s) || (!s.is_empty() && glob(pat, &s[1..])),
        (Some(b'?'), Some(_)) => glob(&pat[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&pat[1..], &s[1..]),
        _ => false,
    }
}

fn type_char(mode: u32) -> char {
    match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o010000 => 'p',
        0o020000 => 'c',
        0o060000 => 'b',
        0o140000 => 's',
        _ => 'f',
    }
}

fn find(path: &str, name: Option<&str>, kind: Option<char>) -> i32 {
    let mut c = Ctx::new("find", false);
    each(&mut c, &[path.to_string()], |errs, s, kpath, _, ipath| {
        let mut stack = vec![(kpath.to_string(), ipath.to_string())];
        let mut out = std::io::stdout().lock();
        while let Some((kp, shown)) = stack.pop() {
            let st = match s.sys().lstat(&kp) {
                Ok(st) => st,
                Err(e) => {
                    errs.push(format!("'{shown}': {}", err(e)));
                    continue;
                }
            };
            let base = basename(&shown);
            let name_ok = name.is_none_or(|n| {
                glob(
                    n.as_bytes(),
                    if shown == "/" { b"/" } else { base.as_bytes() },
                )
            });
            let kind_ok = kind.is_none_or(|k| k == type_char(st.mode));
            if name_ok && kind_ok {
                let _ = writeln!(out, "{shown}");
            }
            if st.mode & 0o170000 == 0o040000 {
                match list_names(s, &kp, false) {
                    Ok(mut names) => {
                        // Include dot files: find shows everything.
                        if let Ok(all) = list_names(s, &kp, true) {
                            names = all.into_iter().filter(|n| n != "." && n != "..").collect();
                        }
                        for n in names.iter().rev() {
                            let child = if shown == "/" {
                                format!("/{n}")
                            } else {
                                format!("{shown}/{n}")
                            };
                            stack.push((format!("{kp}/{n}"), child));
                        }
                    }
                    Err(e) => errs.push(format!("'{shown}': {}", err(e))),
                }
            }
        }
    });
    c.finish()
}

fn du(paths: Vec<String>, summarize: bool) -> i32 {
    let mut c = Ctx::new("du", false);
    each(&mut c, &paths, |errs, s, kpath, arg, _| {
        let mut seen = std::collections::BTreeSet::new();
        let total = du_walk(s, kpath, arg, summarize, true, &mut seen, errs);
        if summarize {
            println!("{}\t{arg}", total / 2);
        }
    });
    c.finish()
}

/// Returns 512-byte blocks under `kpath`, printing directories (and the
/// top) unless summarizing. Hard-linked files count once.
fn du_walk(
    s: &Session,
    kpath: &str,
    shown: &str,
    summarize: bool,
    top: bool,
    seen: &mut std::collections::BTreeSet<u64>,
    errs: &mut Vec<String>,
) -> u64 {
    let st = match s.sys().lstat(kpath) {
        Ok(st) => st,
        Err(e) => {
            errs.push(format!("cannot access '{shown}': {}", err(e)));
            return 0;
        }
    };
    if st.nlink > 1 && st.mode & 0o170000 != 0o040000 && !seen.insert(st.ino) {
        return 0;
    }
    let mut total = st.blocks;
    if st.mode & 0o170000 == 0o040000 {
        match list_names(s, kpath, true) {
            Ok(names) => {
                for n in names.iter().filter(|n| *n != "." && *n != "..") {
                    total += du_walk(
                        s,
                        &format!("{kpath}/{n}"),
                        &format!("{}/{n}", shown.trim_end_matches('/')),
                        summarize,
                        false,
                        seen,
                        errs,
                    );
                }
            }
            Err(e) => errs.push(format!("cannot read directory '{shown}': {}", err(e))),
        }
        if !summarize {
            println!("{}\t{shown}", total / 2);
        }
    } else if top && !summarize {
        println!("{}\t{shown}", total / 2);
    }
    total
}

fn df(images: Vec<String>, human_sizes: bool) -> i32 {
    let mut c = Ctx::new("df", false);
    let args: Vec<String> = images
        .into_iter()
        .map(|a| {
            if kernel_path(&a).is_some() {
                a
            } else {
                format!("{a}:/")
            }
        })
        .collect();
    if human_sizes {
        println!(
            "{:<20} {:>6} {:>6} {:>6} {:>4} Mounted on",
            "Filesystem", "Size", "Used", "Avail", "Use%"
        );
    } else {
        println!(
            "{:<20} {:>10} {:>10} {:>10} {:>4} Mounted on",
            "Filesystem", "1K-blocks", "Used", "Available", "Use%"
        );
    }
    each(&mut c, &args, |errs, s, kpath, arg, _| {
        let v = match s.sys().statvfs(kpath) {
            Ok(v) => v,
            Err(e) => return errs.push(format!("{arg}: {}", err(e))),
        };
        let size = v.blocks * v.frsize;
        let used = (v.blocks - v.bfree.min(v.blocks)) * v.frsize;
        let avail = v.bavail * v.frsize;
        let pct = if used + avail == 0 {
            0
        } else {
            (used * 100).div_ceil(used + avail)
        };
        let fs = s.image.display().to_string();
        if human_sizes {
            println!(
                "{fs:<20} {:>6} {:>6} {:>6} {:>3}% /",
                human(size),
                human(used),
                human(avail),
                pct
            );
        } else {
            println!(
                "{fs:<20} {:>10} {:>10} {:>10} {:>3}% /",
                size / 1024,
                used / 1024,
                avail / 1024,
                pct
            );
        }
    });
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn glob_patterns() {
        assert!(glob(b"*.txt", b"a.txt"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"ac"));
        assert!(glob(b"*", b""));
        assert!(!glob(b"*.rs", b"a.txt"));
    }
}
