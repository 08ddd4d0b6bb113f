//! Which partitions of a disk are in use: mounted (`/proc/self/mountinfo`), swap
//! (`/proc/swaps`) or held by another block device such as LVM, RAID or dm-crypt
//! (`/sys/class/block/X/holders`). Pure over the paths in [`Host`], so tests build a fake tree.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Where the kernel's views of the machine are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// procfs (`/proc`).
    pub proc_dir: PathBuf,
    /// sysfs (`/sys`).
    pub sys_dir: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Host {
            proc_dir: "/proc".into(),
            sys_dir: "/sys".into(),
        }
    }
}

/// A disk or partition: kernel name (`vda1`) and `MAJ:MIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockDev {
    /// Kernel name.
    pub name: String,
    /// `MAJ:MIN`.
    pub dev: String,
}

/// Why a disk or partition is busy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// Mounted.
    Mounted {
        /// Kernel name.
        name: String,
        /// Mount point.
        at: String,
    },
    /// Active swap.
    Swap {
        /// Kernel name.
        name: String,
    },
    /// Held by another block device.
    Held {
        /// Kernel name.
        name: String,
        /// The holder's kernel name (`dm-0`, `md127`).
        by: String,
    },
}

impl fmt::Display for Use {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Use::Mounted { name, at } => write!(f, "/dev/{name} mounted on {at}"),
            Use::Swap { name } => write!(f, "/dev/{name} is swap device"),
            Use::Held { name, by } => write!(f, "/dev/{name} in use by {by}"),
        }
    }
}

/// Undo mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = u32::from(b[i + 1] - b'0') * 64
                + u32::from(b[i + 2] - b'0') * 8
                + u32::from(b[i + 3] - b'0');
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Host {
    /// The kernel name of the block device `MAJ:MIN`.
    pub fn block_name(&self, dev: &str) -> Result<String> {
        let link = self.sys_dir.join("dev/block").join(dev);
        let real =
            fs::canonicalize(&link).with_context(|| format!("resolving {}", link.display()))?;
        Ok(real
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default())
    }

    fn class(&self, name: &str) -> PathBuf {
        self.sys_dir.join("class/block").join(name)
    }

    /// The partitions of disk `name`.
    pub fn partitions(&self, name: &str) -> Vec<BlockDev> {
        let mut parts: Vec<BlockDev> = fs::read_dir(self.class(name))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().join("partition").exists())
            .filter_map(|e| {
                let dev = fs::read_to_string(e.path().join("dev")).ok()?;
                Some(BlockDev {
                    name: e.file_name().to_string_lossy().into_owned(),
                    dev: dev.trim().to_string(),
                })
            })
            .collect();
        parts.sort_by(|a, b| a.name.cmp(&b.name));
        parts
    }

    /// Everything that uses `disk` or one of its partitions.
    pub fn busy(&self, disk: &BlockDev) -> Result<Vec<Use>> {
        let mut devs = vec![disk.clone()];
        devs.extend(self.partitions(&disk.name));
        let mut found = Vec::new();

        let mountinfo = self.proc_dir.join("self/mountinfo");
        let text = fs::read_to_string(&mountinfo)
            .with_context(|| format!("reading {}", mountinfo.display()))?;
        for line in text.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 5 {
                continue;
            }
            if let Some(d) = devs.iter().find(|d| d.dev == f[2]) {
                found.push(Use::Mounted {
                    name: d.name.clone(),
                    at: unescape(f[4]),
                });
            }
        }

        // /proc/swaps may be missing (no swap support); then nothing swaps.
        let swaps = fs::read_to_string(self.proc_dir.join("swaps")).unwrap_or_default();
        for line in swaps.lines().skip(1) {
            let Some(file) = line.split_whitespace().next() else {
                continue;
            };
            let file = unescape(file);
            let base = Path::new(&file)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(d) = devs
                .iter()
                .find(|d| file.starts_with("/dev/") && d.name == base)
            {
                found.push(Use::Swap {
                    name: d.name.clone(),
                });
            }
        }

        for d in &devs {
            let holders = self.class(&d.name).join("holders");
            let mut by: Vec<String> = fs::read_dir(&holders)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            by.sort();
            found.extend(by.into_iter().map(|by| Use::Held {
                name: d.name.clone(),
                by,
            }));
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /proc and /sys: disk vda (253:0) with partitions vda1..vda4.
    fn fake(mountinfo: &str, swaps: &str, holders: &[(&str, &str)]) -> (tempfile::TempDir, Host) {
        let t = tempfile::tempdir().unwrap();
        let host = Host {
            proc_dir: t.path().join("proc"),
            sys_dir: t.path().join("sys"),
        };
        fs::create_dir_all(host.proc_dir.join("self")).unwrap();
        fs::write(host.proc_dir.join("self/mountinfo"), mountinfo).unwrap();
        fs::write(host.proc_dir.join("swaps"), swaps).unwrap();
        let vda = host.sys_dir.join("class/block/vda");
        fs::create_dir_all(vda.join("holders")).unwrap();
        fs::write(vda.join("dev"), "253:0\n").unwrap();
        for i in 1..=4 {
            let p = vda.join(format!("vda{i}"));
            fs::create_dir_all(p.join("holders")).unwrap();
            fs::write(p.join("partition"), format!("{i}\n")).unwrap();
            fs::write(p.join("dev"), format!("253:{i}\n")).unwrap();
            fs::create_dir_all(host.sys_dir.join("class/block")).unwrap();
            std::os::unix::fs::symlink(&p, host.sys_dir.join(format!("class/block/vda{i}")))
                .unwrap();
        }
        for (part, by) in holders {
            fs::create_dir_all(
                host.sys_dir
                    .join("class/block")
                    .join(part)
                    .join("holders")
                    .join(by),
            )
            .unwrap();
        }
        fs::create_dir_all(host.sys_dir.join("dev/block")).unwrap();
        std::os::unix::fs::symlink(&vda, host.sys_dir.join("dev/block/253:0")).unwrap();
        (t, host)
    }

    fn vda() -> BlockDev {
        BlockDev {
            name: "vda".into(),
            dev: "253:0".into(),
        }
    }

    const SWAPS_HEADER: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    #[test]
    fn an_idle_disk_is_not_busy() {
        let (_t, host) = fake(
            "22 1 0:21 / /proc rw - proc proc rw\n25 1 8:1 / / rw - ext4 /dev/sda1 rw\n",
            SWAPS_HEADER,
            &[],
        );
        assert_eq!(host.block_name("253:0").unwrap(), "vda");
        assert_eq!(host.partitions("vda").len(), 4);
        assert_eq!(host.busy(&vda()).unwrap(), vec![]);
    }

    #[test]
    fn mounts_swap_and_holders_are_all_named() {
        let mountinfo = "25 1 253:4 / /sysroot rw - ext4 /dev/vda4 rw\n30 25 253:0 / /mnt/with\\040space rw - vfat /dev/vda rw\n";
        let swaps = format!("{SWAPS_HEADER}/dev/vda3                               partition\t1048572\t\t0\t\t-2\n/swapfile file 1 0 -3\n");
        let (_t, host) = fake(mountinfo, &swaps, &[("vda2", "dm-0")]);
        let busy: Vec<String> = host
            .busy(&vda())
            .unwrap()
            .iter()
            .map(|u| u.to_string())
            .collect();
        assert_eq!(
            busy,
            [
                "/dev/vda4 mounted on /sysroot",
                "/dev/vda mounted on /mnt/with space",
                "/dev/vda3 is swap device",
                "/dev/vda2 in use by dm-0"
            ]
        );
    }
}
