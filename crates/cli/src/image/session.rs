//! One image opened in an in-process kernel, or the kernel of a server:
//! `IMAGE:PATH` parsing, mounting with the kernel's file-system probe
//! (`mount -t auto`) and unmounting.
//!
//! With `RUMP_SERVER` set, `:PATH` (and, for every command but `cp`, a
//! plain absolute `PATH`) names a path in the server's kernel: `rump ls
//! /mnt` lists the server's `/mnt`, `rump cp notes.txt :/mnt/` copies a
//! host file into it. The commands reach either kind of kernel through
//! the same calls ([`Sys`] over `sys::Syscalls`).

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use rump::sys::Syscalls;
use rump::Kernel;

use rump_cli::tools::Sys;

/// Where the image is mounted inside the kernel.
pub const MNT: &str = "/mnt";

/// An argument split into image and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImagePath {
    pub image: PathBuf,
    /// Absolute path inside the image.
    pub path: String,
}

/// Splits `IMAGE:PATH` at the first `:/` (or a trailing `:`); `None`
/// for a host path.
pub fn split(arg: &str) -> Option<ImagePath> {
    if let Some(i) = arg.find(":/") {
        if i > 0 {
            return Some(ImagePath {
                image: PathBuf::from(&arg[..i]),
                path: normalize(&arg[i + 1..]),
            });
        }
    }
    if let Some(img) = arg.strip_suffix(':') {
        if !img.is_empty() {
            return Some(ImagePath {
                image: PathBuf::from(img),
                path: "/".into(),
            });
        }
    }
    None
}

/// Collapses repeated slashes and drops a trailing one.
fn normalize(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// The server the commands talk to for kernel paths (`RUMP_SERVER`).
pub fn server() -> Option<String> {
    std::env::var("RUMP_SERVER").ok().filter(|s| !s.is_empty())
}

/// An argument naming a path in the server's kernel: `:PATH`, or with
/// `plain`, also `/PATH`. The image part is empty.
pub fn split_server(arg: &str, plain: bool) -> Option<ImagePath> {
    server()?;
    let path = match arg.strip_prefix(':') {
        Some(p) if p.starts_with('/') => p,
        _ if plain && arg.starts_with('/') => arg,
        _ => return None,
    };
    Some(ImagePath {
        image: PathBuf::new(),
        path: normalize(path),
    })
}

/// Splits `disk.img@pN` into the file and partition N, unless a file of
/// that very name exists.
pub fn split_partition(image: &Path) -> (PathBuf, Option<u32>) {
    let s = image.to_string_lossy();
    if !image.exists() {
        if let Some((file, n)) = s.rsplit_once("@p") {
            if let Ok(n) = n.parse::<u32>() {
                if n > 0 && !file.is_empty() {
                    return (PathBuf::from(file), Some(n));
                }
            }
        }
    }
    (image.to_path_buf(), None)
}

/// A kernel with the image mounted on [`MNT`], or a server's kernel.
pub struct Session {
    /// The in-process kernel (`None` for a server).
    kernel: Option<Kernel>,
    sc: Box<dyn Syscalls>,
    /// What the file system is shown as: the image, or the server's URL.
    pub image: PathBuf,
    /// Where image paths live in the kernel: [`MNT`], or `/` on a server.
    prefix: &'static str,
}

impl Session {
    /// The session of `image`: the server when it is empty (see
    /// [`split_server`]), else an in-process kernel with the image.
    pub fn open(image: &Path, write: bool) -> anyhow::Result<Session> {
        if image.as_os_str().is_empty() {
            Session::remote()
        } else {
            Session::local(image, write)
        }
    }

    fn remote() -> anyhow::Result<Session> {
        let url = server().ok_or_else(|| anyhow!("no server: RUMP_SERVER is not set"))?;
        let sc = rump::remote::kernel(Some(&url)).map_err(|e| anyhow!("{url}: {e}"))?;
        Ok(Session {
            kernel: None,
            sc,
            image: PathBuf::from(url),
            prefix: "",
        })
    }

    /// Boots a kernel and mounts `image`, read-write only when `write`.
    /// `disk.img@pN` names partition N of an MBR or GPT disk image.
    fn local(image: &Path, write: bool) -> anyhow::Result<Session> {
        let (file, part) = split_partition(image);
        let kernel = Kernel::builder().ext2().fat().iso9660().boot()?;
        let p = kernel.process()?;
        rump::ext2::register_image(&p, &file, "/dev/disk0", !write)
            .with_context(|| format!("{}", file.display()))?;
        let dev = match part {
            Some(n) => format!("/dev/disk0p{n}"),
            None => "/dev/disk0".to_string(),
        };
        rump::fs::create_dir_all(&p, MNT)?;
        let flags = if write {
            0
        } else {
            rump::sys::consts::ms::RDONLY
        };
        match rump::sys::mount(&p, dev.as_bytes(), MNT.as_bytes(), b"auto", flags, b"") {
            Ok(()) => {}
            Err(rump::Errno::ENXIO) if part.is_some() => {
                bail!("{}: no such partition", image.display())
            }
            Err(rump::Errno::ENODEV) => {
                bail!("{}: unknown file system type", image.display())
            }
            Err(e) => {
                return Err(anyhow::Error::new(rump::io_error(e))).with_context(|| {
                    format!(
                        "{}: cannot mount (see the kernel message above)",
                        image.display()
                    )
                })
            }
        }
        Ok(Session {
            kernel: Some(kernel),
            sc: Box::new(p),
            image: image.to_path_buf(),
            prefix: MNT,
        })
    }

    /// The kernel's calls.
    pub fn sys(&self) -> Sys<'_> {
        Sys(&*self.sc)
    }

    /// The kernel path of an image path.
    pub fn k(&self, path: &str) -> String {
        match (self.prefix, path) {
            ("", p) => p.to_string(),
            (m, "/") => m.to_string(),
            (m, p) => format!("{m}{p}"),
        }
    }

    /// Unmounts (writing everything back) and halts an in-process
    /// kernel; closes the connection to a server.
    pub fn close(self) -> anyhow::Result<()> {
        let Some(kernel) = self.kernel else {
            return Ok(());
        };
        let r = Sys(&*self.sc).umount(MNT, 0).map_err(rump::io_error);
        drop(self.sc);
        kernel.halt();
        r.with_context(|| format!("{}: unmount", self.image.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_image_paths() {
        assert_eq!(
            split("disk.img:/a//b/"),
            Some(ImagePath {
                image: "disk.img".into(),
                path: "/a/b".into()
            })
        );
        assert_eq!(split("disk.img:").unwrap().path, "/");
        assert_eq!(split("d:/").unwrap().path, "/");
        assert_eq!(split("/host/path"), None);
        assert_eq!(split(":/x"), None);
        assert_eq!(
            split_partition(Path::new("/nonexistent/disk.img@p2")),
            (PathBuf::from("/nonexistent/disk.img"), Some(2))
        );
        assert_eq!(split_partition(Path::new("/nonexistent/x@pz")).1, None);
        assert_eq!(
            split("dir/with:colon/img:/x").unwrap().image,
            PathBuf::from("dir/with:colon/img")
        );
    }
}
