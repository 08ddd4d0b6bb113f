//! GRUB for both firmwares: `keel/grub.cfg` (slot choice and boot counting), the EFI image
//! `EFI/BOOT/BOOTX64.EFI`, and for BIOS the core image in BIOS-BOOT plus the MBR boot code.
//!
//! Debian's GRUB 2.06 has no arithmetic and no GPT attribute commands, so the count goes
//! 3 → 2 → 1 → 0 by string comparison, and the try is saved (both environment copies) before
//! the slot on trial is booted. If the save fails, the good slot boots.

use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};

use slots::layout::{self, esp, partition, Content, Slot};

use crate::cmd;

/// GRUB modules in both images.
const COMMON_MODULES: &[&str] = &[
    "part_gpt",
    "fat",
    "ext2",
    "normal",
    "configfile",
    "loadenv",
    "test",
    "regexp",
    "echo",
    "linux",
    "search",
    "search_fs_file",
    "probe",
    "sleep",
    "reboot",
    "halt",
    "serial",
    "terminal",
    "cat",
    "ls",
    "minicmd",
    "true",
];

/// Embedded in both images: find the ESP and read Keel's configuration from it.
pub fn early_cfg() -> String {
    let cfg = esp::GRUB_CFG;
    format!(
        "\
if [ ! -f /{cfg} ]; then
  search --no-floppy --file --set=root /{cfg}
fi
configfile /{cfg}
"
    )
}

/// The configuration on the ESP.
pub fn grub_cfg() -> String {
    let [env1, env2] = esp::GRUBENV;
    let fallback = esp::FALLBACK_CFG;
    let usr_a = Slot::A.partition_number();
    let usr_b = Slot::B.partition_number();
    let oem = partition(Content::Oem).number;
    let oem_cfg = layout::oem::GRUB_CFG;
    let mut s = format!(
        r#"# Keel boot selection. The state lives in {env1} (copy 2: {env2}):
#   keel_good   the slot last marked good by the running OS
#   keel_next   the slot to try
#   keel_tries  tries left for keel_next (3, 2, 1, 0); one is spent, and saved, before each try
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
# No menu wait: a node boots unattended. OEM's grub.cfg may `set timeout=5` to get the menu.
set timeout=0

set keel_good=""
set keel_next=""
set keel_tries=""
load_env --file /{env1} keel_good keel_next keel_tries
if [ "$keel_good" != "A" -a "$keel_good" != "B" ]; then
  echo "keel: boot state copy 1 unreadable; reading copy 2"
  load_env --file /{env2} keel_good keel_next keel_tries
fi
if [ "$keel_good" != "A" -a "$keel_good" != "B" ]; then
  echo "keel: boot state unreadable; booting the last slot recorded good"
  set keel_next=""
  source /{fallback}
fi
if [ "$keel_good" != "A" -a "$keel_good" != "B" ]; then
  set keel_good=A
fi

set keel_slot="$keel_good"
if [ "$keel_next" != "$keel_good" ]; then
  if [ "$keel_next" = "A" -o "$keel_next" = "B" ]; then
    set keel_left=""
    if [ "$keel_tries" = "3" ]; then set keel_left=2; fi
    if [ "$keel_tries" = "2" ]; then set keel_left=1; fi
    if [ "$keel_tries" = "1" ]; then set keel_left=0; fi
    if [ -n "$keel_left" ]; then
      set keel_tries="$keel_left"
      if save_env --file /{env1} keel_good keel_next keel_tries; then
        save_env --file /{env2} keel_good keel_next keel_tries
        set keel_slot="$keel_next"
        echo "keel: trying slot $keel_next ($keel_tries tries left after this one)"
      else
        echo "keel: could not save the boot state; booting the good slot $keel_good"
      fi
    else
      echo "keel: slot $keel_next used up its tries; booting the good slot $keel_good"
    fi
  fi
fi

if [ "$keel_slot" = "B" ]; then
  set default=1
  set fallback=0
else
  set default=0
  set fallback=1
fi

regexp --set=1:keel_disk '^([^,]+),' "$root"
probe --part-uuid --set=keel_usr_A ($keel_disk,gpt{usr_a})
probe --part-uuid --set=keel_usr_B ($keel_disk,gpt{usr_b})
set linux_append=""
if [ -f ($keel_disk,gpt{oem})/{oem_cfg} ]; then
  source ($keel_disk,gpt{oem})/{oem_cfg}
fi
"#,
    );
    s.push_str(&format!("set keel_kargs=\"{}\"\n", crate::kargs::COMMON));
    for (n, slot) in Slot::ALL.iter().enumerate() {
        s.push_str(&format!(
            r#"
# entry {n}
menuentry "Keel (slot {slot})" --id keel-{lower} {{
  linux /{kernel} keel.slot={slot} keel.usr=PARTUUID=$keel_usr_{slot} $keel_kargs $linux_append
  initrd /{initrd}
}}
"#,
            lower = slot.letter().to_lowercase(),
            kernel = esp::slot_file(*slot, esp::KERNEL),
            initrd = esp::slot_file(*slot, esp::INITRD),
        ));
    }
    s
}

fn mkimage(
    format: &str,
    dir: &str,
    prefix: &str,
    extra: &[&str],
    out: &Path,
    work: &Path,
) -> Result<()> {
    let early = work.join("early.cfg");
    fs::write(&early, early_cfg())?;
    let mut args: Vec<String> = vec![
        "-O".into(),
        format.into(),
        "-d".into(),
        dir.into(),
        "-p".into(),
        prefix.into(),
        "-c".into(),
        early.display().to_string(),
        "-o".into(),
        out.display().to_string(),
    ];
    args.extend(COMMON_MODULES.iter().chain(extra).map(|m| m.to_string()));
    cmd::run_args("grub-mkimage", args)?;
    Ok(())
}

/// Build `BOOTX64.EFI`.
pub fn efi_image(out: &Path, work: &Path) -> Result<()> {
    mkimage(
        "x86_64-efi",
        "/usr/lib/grub/x86_64-efi",
        &format!("/{}", esp::DIR),
        &["efi_gop", "all_video"],
        out,
        work,
    )
}

/// Build the BIOS core image (diskboot + kernel + modules), unpatched.
pub fn bios_core_image(out: &Path, work: &Path) -> Result<()> {
    mkimage(
        "i386-pc",
        "/usr/lib/grub/i386-pc",
        &format!(
            "(,gpt{})/{}",
            partition(Content::EfiSystem).number,
            esp::DIR
        ),
        &["biosdisk"],
        out,
        work,
    )
}

const SECTOR: u64 = 512;
/// Offset in boot.img of the 64-bit LBA where core.img starts.
const KERNEL_SECTOR: usize = 0x5c;
/// Offset in boot.img of the 2-byte jump that trusts only drive 0x80; made two NOPs, as grub-install does for hard disks.
const DRIVE_CHECK: usize = 0x66;

/// Point core.img's first-sector blocklist at where it lands on the disk: the rest of the
/// image starts at `core_lba + 1`. Returns the image's length in sectors.
pub fn patch_core_image(core: &mut [u8], core_lba: u64) -> Result<u64> {
    if core.len() < SECTOR as usize {
        bail!("core.img is only {} bytes", core.len());
    }
    let sectors = (core.len() as u64).div_ceil(SECTOR);
    let list = SECTOR as usize - 12;
    let len = u16::from_le_bytes([core[list + 8], core[list + 9]]) as u64;
    if len != sectors - 1 {
        bail!("core.img blocklist says {len} sectors follow, the image has {}: not an i386-pc core image?", sectors - 1);
    }
    core[list..list + 8].copy_from_slice(&(core_lba + 1).to_le_bytes());
    Ok(sectors)
}

/// The 440 bytes of MBR boot code: GRUB's boot.img told where core.img is.
pub fn mbr_boot_code(boot_img: &[u8], core_lba: u64) -> Result<[u8; 440]> {
    if boot_img.len() != SECTOR as usize {
        bail!("boot.img is {} bytes, expected 512", boot_img.len());
    }
    let mut code = [0u8; 440];
    code.copy_from_slice(&boot_img[..440]);
    code[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
    code[DRIVE_CHECK] = 0x90;
    code[DRIVE_CHECK + 1] = 0x90;
    Ok(code)
}

/// Read GRUB's boot.img.
pub fn boot_img() -> Result<Vec<u8>> {
    fs::read("/usr/lib/grub/i386-pc/boot.img")
        .context("reading /usr/lib/grub/i386-pc/boot.img (apt-get install grub-pc-bin)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grub_cfg_has_two_entries_a_first_and_saves_before_trying() {
        let cfg = grub_cfg();
        let a = cfg.find("menuentry \"Keel (slot A)\"").unwrap();
        let b = cfg.find("menuentry \"Keel (slot B)\"").unwrap();
        assert!(
            a < b,
            "entry 0 must be A: default/fallback numbers depend on it"
        );
        let save = cfg.find("if save_env --file /keel/env1/grubenv").unwrap();
        for line in [
            "load_env --file /keel/env2/grubenv keel_good keel_next keel_tries",
            "  source /keel/fallback.cfg",
            "probe --part-uuid --set=keel_usr_B ($keel_disk,gpt4)",
            "  source ($keel_disk,gpt6)/grub.cfg",
            "  linux /keel/B/vmlinuz keel.slot=B keel.usr=PARTUUID=$keel_usr_B $keel_kargs $linux_append",
            "  initrd /keel/A/initrd.img",
        ] {
            assert!(cfg.contains(line), "{line}");
        }
        let pick = cfg.find("set keel_slot=\"$keel_next\"").unwrap();
        assert!(
            save < pick,
            "the try is saved before the slot on trial is chosen"
        );
        assert!(cfg.contains("keel.usr=PARTUUID=$keel_usr_B"));
    }

    #[test]
    fn grub_parses_the_config() {
        // grub-script-check is GRUB's own parser.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("grub.cfg");
        fs::write(&p, grub_cfg()).unwrap();
        cmd::run_args("grub-script-check", [p.as_os_str()]).unwrap();
        fs::write(&p, early_cfg()).unwrap();
        cmd::run_args("grub-script-check", [p.as_os_str()]).unwrap();
    }

    #[test]
    fn core_image_blocklist_and_mbr_point_at_the_bios_boot_partition() {
        let mut core = vec![0u8; 3 * 512 + 100];
        core[512 - 12..512 - 4].copy_from_slice(&2u64.to_le_bytes());
        core[512 - 4..512 - 2].copy_from_slice(&3u16.to_le_bytes());
        assert_eq!(patch_core_image(&mut core, 526336).unwrap(), 4);
        assert_eq!(
            u64::from_le_bytes(core[500..508].try_into().unwrap()),
            526337
        );

        let mut wrong = vec![0u8; 2048];
        assert!(patch_core_image(&mut wrong, 1).is_err());

        let boot = vec![0xEBu8; 512];
        let code = mbr_boot_code(&boot, 526336).unwrap();
        assert_eq!(
            u64::from_le_bytes(code[0x5c..0x64].try_into().unwrap()),
            526336
        );
        assert_eq!(&code[0x66..0x68], &[0x90, 0x90]);
    }
}
