//! The disk image: a sparse file, the Keel GPT, each partition's file copied to its offset,
//! and GRUB's BIOS boot code.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use slots::layout::{Content, Placed};

use crate::grub;

/// What fills each partition.
#[derive(Clone, Debug, Default)]
pub struct Contents {
    /// EFI-SYSTEM filesystem image.
    pub esp: Option<PathBuf>,
    /// Unpatched GRUB i386-pc core.img.
    pub bios_core: Option<PathBuf>,
    /// USR-A filesystem image.
    pub usr_a: Option<PathBuf>,
    /// OEM filesystem image.
    pub oem: Option<PathBuf>,
}

/// Copy `src` into `dest` at `offset`, skipping all-zero blocks so the image stays sparse.
fn place_file(dest: &mut File, src: &Path, offset: u64, room: u64) -> Result<()> {
    let len = fs::metadata(src)
        .with_context(|| format!("reading {}", src.display()))?
        .len();
    if len > room {
        bail!(
            "{} is {} MiB, larger than its {} MiB partition",
            src.display(),
            len.div_ceil(1 << 20),
            room >> 20
        );
    }
    let mut input = File::open(src)?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = offset;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|b| *b != 0) {
            dest.seek(SeekFrom::Start(pos))?;
            dest.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
    Ok(())
}

/// Build the disk image at `out`.
pub fn assemble(out: &Path, placed: &[Placed], size: u64, contents: &Contents) -> Result<()> {
    let _ = fs::remove_file(out);
    File::create(out)
        .and_then(|f| f.set_len(size))
        .with_context(|| format!("creating {}", out.display()))?;
    slots::table::write_table(out, placed, uuid::Uuid::new_v4())?;
    let mut disk = OpenOptions::new().read(true).write(true).open(out)?;
    for p in placed {
        let src = match p.spec.content {
            Content::EfiSystem => contents.esp.as_ref(),
            Content::Usr(slots::Slot::A) => contents.usr_a.as_ref(),
            Content::Oem => contents.oem.as_ref(),
            _ => None,
        };
        if let Some(src) = src {
            place_file(&mut disk, src, p.offset, p.len)
                .with_context(|| format!("placing {} into {}", src.display(), p.spec.label))?;
        }
        if p.spec.content == Content::BiosBoot {
            if let Some(core_path) = &contents.bios_core {
                let mut core = fs::read(core_path)?;
                let lba = p.offset / 512;
                grub::patch_core_image(&mut core, lba)?;
                if core.len() as u64 > p.len {
                    bail!(
                        "GRUB core.img ({} bytes) does not fit BIOS-BOOT",
                        core.len()
                    );
                }
                disk.seek(SeekFrom::Start(p.offset))?;
                disk.write_all(&core)?;
                let code = grub::mbr_boot_code(&grub::boot_img()?, lba)?;
                gpt::mbr::write_bootcode(&mut disk, &code).context("writing the MBR boot code")?;
            }
        }
    }
    disk.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slots::layout::{partitions, place, Sizes};

    #[test]
    fn partitions_land_at_their_offsets_and_oversize_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let sizes = Sizes {
            esp_mib: 4,
            usr_mib: 4,
            oem_mib: 2,
            root_mib: 2,
        };
        let (placed, size) = place(&partitions(sizes));
        let usr = d.path().join("usr.img");
        fs::write(&usr, b"hsqs-payload").unwrap();
        let img = d.path().join("disk.img");
        let contents = Contents {
            usr_a: Some(usr.clone()),
            ..Default::default()
        };
        assemble(&img, &placed, size, &contents).unwrap();
        let data = fs::read(&img).unwrap();
        let usr_a = placed.iter().find(|p| p.spec.label == "USR-A").unwrap();
        assert_eq!(
            &data[usr_a.offset as usize..usr_a.offset as usize + 12],
            b"hsqs-payload"
        );
        let found = slots::table::read_partitions(&img).unwrap();
        assert_eq!(found.len(), 9);
        // Only ROOT ships marked "not created yet": the initramfs creates it from that bit.
        for f in &found {
            let want = if f.label == "ROOT" {
                1 << slots::layout::ROOT_NOT_CREATED_BIT
            } else {
                0
            };
            assert_eq!(f.attrs, want, "{}", f.label);
        }

        fs::write(&usr, vec![1u8; 5 << 20]).unwrap();
        let err = assemble(&img, &placed, size, &contents).unwrap_err();
        assert!(
            format!("{err:#}").contains("larger than its 4 MiB partition"),
            "{err:#}"
        );
    }
}
