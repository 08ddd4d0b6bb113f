//! Find the firmware QEMU boots with: OVMF for UEFI, SeaBIOS for BIOS, iPXE option ROMs for
//! network boot, and the `qemu-system-x86_64` binary itself.
//!
//! Debian bookworm ships OVMF as `/usr/share/OVMF/OVMF_CODE_4M.fd` + `OVMF_VARS_4M.fd` (and the
//! older 2 MiB `OVMF_CODE.fd` + `OVMF_VARS.fd`); a CODE file must be paired with the VARS file of
//! the same size, so the pairs are looked up together. The VARS file is the machine's NVRAM: each
//! VM gets its own copy (see [`Ovmf::vars_copy`]).

use std::path::{Path, PathBuf};

/// Firmware or emulator files not found.
#[derive(Debug, thiserror::Error)]
pub enum FirmwareError {
    /// A file was looked for in every known place and not found.
    #[error("{what} not found (looked for {}): install the Debian package `{package}` (apt-get install {package})", display_paths(.looked))]
    Missing {
        /// What was looked for, in words.
        what: &'static str,
        /// Every path tried.
        looked: Vec<PathBuf>,
        /// The Debian package that provides it.
        package: &'static str,
    },
    /// Copying the OVMF variable store failed.
    #[error("copying OVMF variables {from} to {to}")]
    CopyVars {
        /// The template.
        from: PathBuf,
        /// The per-VM copy.
        to: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The QEMU binary: `qemu-system-x86_64` on `PATH`.
pub fn qemu() -> Result<PathBuf, FirmwareError> {
    crate::tools::find("qemu-system-x86_64").ok_or_else(|| FirmwareError::Missing {
        what: "qemu-system-x86_64",
        looked: vec![PathBuf::from("$PATH/qemu-system-x86_64")],
        package: "qemu-system-x86",
    })
}

/// The OVMF (UEFI) firmware: read-only code and the template of the variable store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ovmf {
    /// The firmware code, mapped read-only.
    pub code: PathBuf,
    /// The pristine variable store; never written: VMs use a copy.
    pub vars_template: PathBuf,
}

/// CODE/VARS pairs, preferred first. The 4 MiB build is bookworm's default.
const OVMF_PAIRS: &[(&str, &str)] = &[
    (
        "/usr/share/OVMF/OVMF_CODE_4M.fd",
        "/usr/share/OVMF/OVMF_VARS_4M.fd",
    ),
    (
        "/usr/share/OVMF/OVMF_CODE.fd",
        "/usr/share/OVMF/OVMF_VARS.fd",
    ),
    (
        "/usr/share/edk2/ovmf/OVMF_CODE.fd",
        "/usr/share/edk2/ovmf/OVMF_VARS.fd",
    ),
];

impl Ovmf {
    /// Find OVMF: the first CODE/VARS pair of [`OVMF_PAIRS`] whose two files exist.
    pub fn find() -> Result<Ovmf, FirmwareError> {
        find_ovmf_in(OVMF_PAIRS.iter().map(|(c, v)| (Path::new(c), Path::new(v))))
    }

    /// Copy the variable store template to `dest` (a per-VM file: UEFI writes boot entries to
    /// it, and it persists across `start_again` like a real machine's NVRAM).
    pub fn vars_copy(&self, dest: &Path) -> Result<(), FirmwareError> {
        std::fs::copy(&self.vars_template, dest).map_err(|source| FirmwareError::CopyVars {
            from: self.vars_template.clone(),
            to: dest.to_path_buf(),
            source,
        })?;
        Ok(())
    }
}

fn find_ovmf_in<'a>(
    pairs: impl Iterator<Item = (&'a Path, &'a Path)>,
) -> Result<Ovmf, FirmwareError> {
    let mut looked = Vec::new();
    for (code, vars) in pairs {
        if code.is_file() && vars.is_file() {
            return Ok(Ovmf {
                code: code.to_path_buf(),
                vars_template: vars.to_path_buf(),
            });
        }
        looked.push(code.to_path_buf());
        looked.push(vars.to_path_buf());
    }
    Err(FirmwareError::Missing {
        what: "OVMF UEFI firmware",
        looked,
        package: "ovmf",
    })
}

/// SeaBIOS, QEMU's default BIOS. QEMU finds it by itself; this checks it is installed so a
/// missing package is reported by name rather than as a QEMU start failure.
pub fn seabios() -> Result<PathBuf, FirmwareError> {
    first_existing(
        &[
            "/usr/share/seabios/bios-256k.bin",
            "/usr/share/qemu/bios-256k.bin",
        ],
        "SeaBIOS",
        "seabios",
    )
}

/// Which iPXE option ROM: the one SeaBIOS runs or the one OVMF loads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RomKind {
    /// Legacy PXE ROM for BIOS (`pxe-virtio.rom`).
    Bios,
    /// EFI driver ROM for UEFI (`efi-virtio.rom`).
    Efi,
}

/// The iPXE option ROM of the virtio-net NIC. QEMU loads it by itself; this checks it exists.
pub fn ipxe_rom(kind: RomKind) -> Result<PathBuf, FirmwareError> {
    let (paths, what): (&[&str], _) = match kind {
        RomKind::Bios => (
            &[
                "/usr/lib/ipxe/qemu/pxe-virtio.rom",
                "/usr/share/qemu/pxe-virtio.rom",
            ],
            "iPXE BIOS option ROM pxe-virtio.rom",
        ),
        RomKind::Efi => (
            &[
                "/usr/lib/ipxe/qemu/efi-virtio.rom",
                "/usr/share/qemu/efi-virtio.rom",
            ],
            "iPXE EFI option ROM efi-virtio.rom",
        ),
    };
    first_existing(paths, what, "ipxe-qemu")
}

fn first_existing(
    paths: &[&str],
    what: &'static str,
    package: &'static str,
) -> Result<PathBuf, FirmwareError> {
    paths
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| FirmwareError::Missing {
            what,
            looked: paths.iter().map(PathBuf::from).collect(),
            package,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ovmf_pairs_are_taken_together_and_a_missing_pair_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let code4 = dir.path().join("CODE_4M.fd");
        let vars4 = dir.path().join("VARS_4M.fd");
        let code2 = dir.path().join("CODE.fd");
        let vars2 = dir.path().join("VARS.fd");
        // Only the 4M code exists: that pair must not be taken.
        std::fs::write(&code4, b"c").unwrap();
        std::fs::write(&code2, b"c").unwrap();
        std::fs::write(&vars2, b"v").unwrap();
        let pairs = [
            (code4.as_path(), vars4.as_path()),
            (code2.as_path(), vars2.as_path()),
        ];
        let ovmf = find_ovmf_in(pairs.into_iter()).unwrap();
        assert_eq!(ovmf.code, code2);
        assert_eq!(ovmf.vars_template, vars2);

        std::fs::remove_file(&vars2).unwrap();
        let err = find_ovmf_in(pairs.into_iter()).unwrap_err().to_string();
        assert!(err.starts_with("OVMF UEFI firmware not found"), "{err}");
        assert!(
            err.ends_with("install the Debian package `ovmf` (apt-get install ovmf)"),
            "{err}"
        );
        assert!(err.contains("VARS_4M.fd"), "{err}");
    }

    #[test]
    fn vars_copy_leaves_the_template_alone() {
        let dir = tempfile::tempdir().unwrap();
        let template = dir.path().join("VARS.fd");
        std::fs::write(&template, b"pristine").unwrap();
        let ovmf = Ovmf {
            code: dir.path().join("CODE.fd"),
            vars_template: template.clone(),
        };
        let copy = dir.path().join("vm-vars.fd");
        ovmf.vars_copy(&copy).unwrap();
        std::fs::write(&copy, b"written by UEFI").unwrap();
        assert_eq!(std::fs::read(&template).unwrap(), b"pristine");
    }
}
