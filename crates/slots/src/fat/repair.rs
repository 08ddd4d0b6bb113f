//! A repair for the directories `fatfs` 0.3 creates, run when a [`super::Fat`] that created
//! directories is closed.
//!
//! fatfs 0.3.6 (the newest release) writes a long-name entry before each of a new directory's
//! `.` and `..` entries, and points `..` of a directory in the root at the root's cluster. FAT
//! wants `.` in the first slot, `..` in the second, and cluster 0 for the root: Linux and GRUB
//! read such directories anyway, but `fsck.fat` moves and renames their entries (rafalh/rust-fatfs
//! issues 100 and 117, fixed only after 0.3.6). So every directory whose first four slots are
//! that pattern (long name, `.`, long name, `..`: never a valid directory's start) gets `.`
//! and `..` moved into their slots, `..`'s cluster set to 0 under the root, and the two slots
//! after them freed. Nothing else is touched.
//!
//! This reads just enough FAT for that: the boot sector's geometry, cluster chains (FAT12, 16
//! and 32), directory entries.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

const ENTRY: usize = 32;
const ATTR_VOLUME: u8 = 0x08;
const ATTR_DIR: u8 = 0x10;
const ATTR_LFN: u8 = 0x0F;
const DELETED: u8 = 0xE5;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Fat12,
    Fat16,
    Fat32,
}

/// Where a directory's entries are.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// The fixed root directory of FAT12 and FAT16: offset and length.
    FixedRoot(u64, u64),
    /// A cluster chain starting here.
    Chain(u32),
}

/// The geometry from the boot sector; offsets are absolute in the file.
struct Geometry {
    kind: Kind,
    fat: u64,
    data: u64,
    cluster_bytes: u64,
    /// The highest valid cluster number.
    max_cluster: u32,
    root: Place,
}

fn bad(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("FAT boot sector: {what}"),
    )
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

impl Geometry {
    fn read(file: &File, start: u64) -> io::Result<Geometry> {
        let mut b = [0u8; 512];
        file.read_exact_at(&mut b, start)?;
        let bps = u64::from(u16_at(&b, 11));
        let spc = u64::from(b[13]);
        let reserved = u64::from(u16_at(&b, 14));
        let fats = u64::from(b[16]);
        let root_entries = u64::from(u16_at(&b, 17));
        let total = match u16_at(&b, 19) {
            0 => u64::from(u32_at(&b, 32)),
            n => u64::from(n),
        };
        let fat_sectors = match u16_at(&b, 22) {
            0 => u64::from(u32_at(&b, 36)),
            n => u64::from(n),
        };
        if bps == 0 || spc == 0 || fats == 0 || fat_sectors == 0 {
            return Err(bad("zero sector size, cluster size, FAT count or FAT size"));
        }
        let root_sectors = (root_entries * ENTRY as u64).div_ceil(bps);
        let first_data = reserved + fats * fat_sectors + root_sectors;
        let clusters = total
            .checked_sub(first_data)
            .ok_or_else(|| bad("no data region"))?
            / spc;
        let kind = match clusters {
            c if c < 4085 => Kind::Fat12,
            c if c < 65525 => Kind::Fat16,
            _ => Kind::Fat32,
        };
        let root = match kind {
            Kind::Fat32 => Place::Chain(u32_at(&b, 44)),
            _ => Place::FixedRoot(
                start + (reserved + fats * fat_sectors) * bps,
                root_entries * ENTRY as u64,
            ),
        };
        Ok(Geometry {
            kind,
            fat: start + reserved * bps,
            data: start + first_data * bps,
            cluster_bytes: spc * bps,
            max_cluster: u32::try_from(clusters + 1).map_err(|_| bad("too many clusters"))?,
            root,
        })
    }

    /// The cluster after `c` in its chain, or `None` at the chain's end (or a bad link).
    fn next(&self, file: &File, c: u32) -> io::Result<Option<u32>> {
        let n = u64::from(c);
        let next = match self.kind {
            Kind::Fat12 => {
                let mut b = [0u8; 2];
                file.read_exact_at(&mut b, self.fat + n + n / 2)?;
                let v = u16::from_le_bytes(b);
                u32::from(if c % 2 == 1 { v >> 4 } else { v & 0xFFF })
            }
            Kind::Fat16 => {
                let mut b = [0u8; 2];
                file.read_exact_at(&mut b, self.fat + 2 * n)?;
                u32::from(u16::from_le_bytes(b))
            }
            Kind::Fat32 => {
                let mut b = [0u8; 4];
                file.read_exact_at(&mut b, self.fat + 4 * n)?;
                u32::from_le_bytes(b) & 0x0FFF_FFFF
            }
        };
        Ok((2..=self.max_cluster).contains(&next).then_some(next))
    }

    /// The entries of the directory at `place`: (absolute offset, bytes), up to the end mark.
    fn entries(&self, file: &File, place: Place) -> io::Result<Vec<(u64, [u8; ENTRY])>> {
        let mut spans = Vec::new();
        match place {
            Place::FixedRoot(offset, len) => spans.push((offset, len)),
            Place::Chain(first) => {
                let mut c = Some(first).filter(|c| (2..=self.max_cluster).contains(c));
                let mut seen = BTreeSet::new();
                while let Some(cl) = c {
                    if !seen.insert(cl) {
                        break;
                    }
                    spans.push((
                        self.data + u64::from(cl - 2) * self.cluster_bytes,
                        self.cluster_bytes,
                    ));
                    c = self.next(file, cl)?;
                }
            }
        }
        let mut out = Vec::new();
        for (offset, len) in spans {
            let mut buf = vec![0u8; len as usize];
            file.read_exact_at(&mut buf, offset)?;
            for (i, e) in buf.chunks_exact(ENTRY).enumerate() {
                if e[0] == 0 {
                    return Ok(out);
                }
                let mut entry = [0u8; ENTRY];
                entry.copy_from_slice(e);
                out.push((offset + (i * ENTRY) as u64, entry));
            }
        }
        Ok(out)
    }

    fn cluster_of(&self, e: &[u8; ENTRY]) -> u32 {
        let hi = if self.kind == Kind::Fat32 {
            u32::from(u16_at(e, 20)) << 16
        } else {
            0
        };
        hi | u32::from(u16_at(e, 26))
    }
}

fn is_lfn(e: &[u8; ENTRY]) -> bool {
    e[0] != DELETED && e[11] == ATTR_LFN
}

fn is_dot(e: &[u8; ENTRY]) -> bool {
    &e[..11] == b".          "
}

fn is_dotdot(e: &[u8; ENTRY]) -> bool {
    &e[..11] == b"..         "
}

/// Repair every directory of the FAT filesystem at `start` in `file` that fatfs created (see
/// the module doc); returns how many were repaired.
pub(super) fn repair(file: &File, start: u64) -> io::Result<usize> {
    let geo = Geometry::read(file, start)?;
    let mut repaired = 0;
    let mut seen = BTreeSet::new();
    // (where the directory is, whether its parent is the root)
    let mut todo = vec![(geo.root, None)];
    while let Some((place, parent_is_root)) = todo.pop() {
        let entries = geo.entries(file, place)?;
        if let Some(under_root) = parent_is_root {
            if let [(p0, e0), (p1, dot), (p2, e2), (p3, dotdot), rest @ ..] = entries.as_slice() {
                if is_lfn(e0) && is_dot(dot) && is_lfn(e2) && is_dotdot(dotdot) {
                    let mut dotdot = *dotdot;
                    if under_root {
                        dotdot[20..22].fill(0);
                        dotdot[26..28].fill(0);
                    }
                    file.write_all_at(dot, *p0)?;
                    file.write_all_at(&dotdot, *p1)?;
                    let mut free = [0u8; ENTRY];
                    if !rest.is_empty() {
                        free[0] = DELETED;
                    }
                    file.write_all_at(&free, *p2)?;
                    file.write_all_at(&free, *p3)?;
                    repaired += 1;
                }
            }
        }
        let is_root = parent_is_root.is_none();
        for (_, e) in &entries {
            let sub = e[0] != DELETED
                && e[11] != ATTR_LFN
                && e[11] & ATTR_VOLUME == 0
                && e[11] & ATTR_DIR != 0
                && !is_dot(e)
                && !is_dotdot(e);
            let c = geo.cluster_of(e);
            if sub && (2..=geo.max_cluster).contains(&c) && seen.insert(c) {
                todo.push((Place::Chain(c), Some(is_root)));
            }
        }
    }
    file.sync_data()?;
    Ok(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fat::{format, Fat};

    /// The first entries of the directory named `name` (short name, padded) in the root.
    fn first_entries(file: &File, name: &[u8; 11]) -> Vec<[u8; ENTRY]> {
        let geo = Geometry::read(file, 0).unwrap();
        let root = geo.entries(file, geo.root).unwrap();
        let (_, dir) = root
            .iter()
            .find(|(_, e)| &e[..11] == name && e[11] & ATTR_DIR != 0)
            .expect("the directory is in the root");
        let entries = geo
            .entries(file, Place::Chain(geo.cluster_of(dir)))
            .unwrap();
        entries.into_iter().map(|(_, e)| e).collect()
    }

    #[test]
    fn new_directories_start_with_dot_and_dotdot_and_nothing_is_left_to_repair() {
        let d = tempfile::tempdir().unwrap();
        let img = d.path().join("fat.img");
        let f = File::create(&img).unwrap();
        f.set_len(8 << 20).unwrap();
        format(f, 0, 8 << 20, "T").unwrap();

        // What fatfs alone writes: the pattern the repair looks for.
        let fat = Fat::open_image(&img).unwrap();
        fat.fs().root_dir().create_dir("RAW").unwrap();
        fat.made_dirs.set(false);
        fat.close().unwrap();
        let file = File::open(&img).unwrap();
        let raw = first_entries(&file, b"RAW        ");
        assert!(is_lfn(&raw[0]) && is_dot(&raw[1]) && is_lfn(&raw[2]) && is_dotdot(&raw[3]));

        let fat = Fat::open_image(&img).unwrap();
        fat.write("keel/A/vmlinuz", b"k").unwrap();
        fat.close().unwrap();
        for name in [b"RAW        ", b"KEEL       "] {
            let e = first_entries(&file, name);
            assert!(is_dot(&e[0]) && is_dotdot(&e[1]), "{name:?}");
            // `..` of a directory in the root names cluster 0.
            assert_eq!(Geometry::read(&file, 0).unwrap().cluster_of(&e[1]), 0);
        }
        let rw = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&img)
            .unwrap();
        assert_eq!(repair(&rw, 0).unwrap(), 0);
        let fat = Fat::open_image(&img).unwrap();
        assert_eq!(fat.read("keel/a/VMLINUZ").unwrap(), b"k");
        assert!(fat.list("RAW").unwrap().is_empty());
    }
}
