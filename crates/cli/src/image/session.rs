//! One image opened in an in-process kernel: `IMAGE:PATH` parsing,
//! mounting with the kernel's file-system probe (`mount -t auto`) and unmounting.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use rump::{Kernel, Process};

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

/// A kernel with the image mounted on [`MNT`].
pub struct Session {
    pub kernel: Kernel,
    pub p: Process,
    pub image: PathBuf,
}

impl Session {
    /// Boots a kernel and mounts `image`, read-write only when `write`.
    /// `disk.img@pN` names partition N of an MBR or GPT disk image.
    pub fn open(image: &Path, write: bool) -> anyhow::Result<Session> {
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
            kernel,
            p,
            image: image.to_path_buf(),
        })
    }

    /// The kernel path of an image path.
    pub fn k(&self, path: &str) -> String {
        if path == "/" {
            MNT.to_string()
        } else {
            format!("{MNT}{path}")
        }
    }

    /// Unmounts (writing everything back) and halts.
    pub fn close(self) -> anyhow::Result<()> {
        let r = rump::sys::umount2(&self.p, MNT.as_bytes(), 0).map_err(rump::io_error);
        drop(self.p);
        self.kernel.halt();
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
