//! The boot state on the EFI system partition, saved so a power cut at any instant leaves a
//! bootable state.
//!
//! Two copies, `keel/env1/grubenv` and `keel/env2/grubenv`, in different directories so a torn
//! directory-sector write can only hurt one. GRUB reads copy 1, then copy 2, then
//! `keel/fallback.cfg` (the last committed good slot). Userspace writes copy 2 first, then copy 1,
//! each 1024 bytes in place (no truncation, same clusters) followed by `fdatasync`.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::grubenv::{self, BLOCK_SIZE};
use crate::layout::Slot;
use crate::state::BootState;

/// Errors reading or writing the boot state.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The state would not fit an environment block.
    #[error("encoding boot state: {0}")]
    Encode(#[from] grubenv::GrubenvError),
}

/// Which record the state was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Copy 1 was intact.
    Env1,
    /// Copy 1 was damaged or missing; copy 2 was intact.
    Env2,
    /// Both copies were damaged; the last committed good slot was used.
    FallbackRecord,
    /// Nothing readable: slot A, as GRUB does.
    BuiltIn,
}

/// The state and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The state.
    pub state: BootState,
    /// Where it came from.
    pub source: Source,
    /// A line for each record that could not be read, naming the file and why.
    pub problems: Vec<String>,
}

/// The boot state files under an ESP mount point.
#[derive(Clone, Debug)]
pub struct EspStore {
    esp: PathBuf,
}

impl EspStore {
    /// The store on the ESP mounted at `esp` (`/boot` on a running node).
    pub fn new(esp: impl Into<PathBuf>) -> Self {
        EspStore { esp: esp.into() }
    }

    /// Path of copy 1 or 2.
    pub fn env_path(&self, copy: u8) -> PathBuf {
        self.esp.join(format!("keel/env{copy}/grubenv"))
    }

    /// Path of the last-good record GRUB sources when both copies are damaged.
    pub fn fallback_path(&self) -> PathBuf {
        self.esp.join("keel/fallback.cfg")
    }

    /// Directory holding a slot's kernel, initramfs and release file.
    pub fn slot_dir(&self, slot: Slot) -> PathBuf {
        self.esp.join("keel").join(slot.letter())
    }

    /// The version recorded for a slot (`VERSION=` in `keel/<slot>/release`), if any.
    pub fn slot_version(&self, slot: Slot) -> Option<String> {
        let text = fs::read_to_string(self.slot_dir(slot).join("release")).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("VERSION="))
            .map(|v| v.trim_matches('"').to_string())
    }

    /// Read the state: copy 1, else copy 2, else the last-good record, else slot A.
    pub fn load(&self) -> Loaded {
        let mut problems = Vec::new();
        for (copy, source) in [(1, Source::Env1), (2, Source::Env2)] {
            let path = self.env_path(copy);
            match read_block(&path) {
                Ok(state) => {
                    return Loaded {
                        state,
                        source,
                        problems,
                    }
                }
                Err(why) => problems.push(format!("{}: {why}", path.display())),
            }
        }
        let fallback = self.fallback_path();
        match fs::read_to_string(&fallback) {
            Ok(text) => {
                let good = text
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("set keel_good="))
                    .and_then(|v| v.parse::<Slot>().ok());
                if let Some(good) = good {
                    let state = BootState {
                        good,
                        next: good,
                        tries: 0,
                        failed: None,
                    };
                    return Loaded {
                        state,
                        source: Source::FallbackRecord,
                        problems,
                    };
                }
                problems.push(format!("{}: no keel_good line", fallback.display()));
            }
            Err(e) => problems.push(format!("{}: {e}", fallback.display())),
        }
        Loaded {
            state: BootState::factory(),
            source: Source::BuiltIn,
            problems,
        }
    }

    /// Save the state: copy 2, then copy 1, each in place and synced; the last-good record
    /// follows when the good slot changed.
    pub fn save(&self, state: &BootState) -> Result<(), StoreError> {
        let vars = state.to_vars();
        let pairs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let block = grubenv::encode(&pairs)?;
        self.write_block(&self.env_path(2), &block)?;
        self.write_block(&self.env_path(1), &block)?;
        let record = format!("set keel_good={}\n", state.good);
        if fs::read_to_string(self.fallback_path()).ok().as_deref() != Some(record.as_str()) {
            write_replace(&self.fallback_path(), record.as_bytes())?;
        }
        Ok(())
    }

    fn write_block(&self, path: &Path, block: &[u8; BLOCK_SIZE]) -> Result<(), StoreError> {
        let io = |action, source| StoreError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| io("creating directory for", e))?;
        }
        // In place: no O_TRUNC, so the file keeps its clusters and GRUB's blocklist stays valid.
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| io("opening", e))?;
        file.write_all_at(block, 0).map_err(|e| io("writing", e))?;
        file.set_len(BLOCK_SIZE as u64)
            .map_err(|e| io("sizing", e))?;
        file.sync_data().map_err(|e| io("syncing", e))?;
        Ok(())
    }
}

fn read_block(path: &Path) -> Result<BootState, String> {
    let mut block = Vec::with_capacity(BLOCK_SIZE);
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut block))
        .map_err(|e| e.to_string())?;
    let vars = grubenv::decode(&block).map_err(|e| e.to_string())?;
    BootState::from_vars(&vars).map_err(|e| e.to_string())
}

/// Write a small file through a temporary name and rename it over the old one, syncing both
/// the file and its directory.
fn write_replace(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let io = |action, source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("new");
    let mut f = File::create(&tmp).map_err(|e| io("creating", e))?;
    f.write_all(bytes).map_err(|e| io("writing", e))?;
    f.sync_all().map_err(|e| io("syncing", e))?;
    fs::rename(&tmp, path).map_err(|e| io("renaming onto", e))?;
    if let Some(dir) = path.parent() {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io("syncing directory of", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, EspStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EspStore::new(dir.path());
        (dir, store)
    }

    #[test]
    fn saves_both_copies_and_reads_copy_one() {
        let (_d, store) = store();
        let armed = BootState::factory().arm_trial(Slot::B, 3).unwrap();
        store.save(&armed).unwrap();
        assert_eq!(fs::read(store.env_path(1)).unwrap().len(), 1024);
        assert_eq!(
            fs::read(store.env_path(1)).unwrap(),
            fs::read(store.env_path(2)).unwrap()
        );
        let loaded = store.load();
        assert_eq!((loaded.state, loaded.source), (armed, Source::Env1));
        assert_eq!(
            fs::read_to_string(store.fallback_path()).unwrap(),
            "set keel_good=A\n"
        );
    }

    #[test]
    fn damaged_copy_one_falls_to_copy_two_then_to_the_last_good_record() {
        let (_d, store) = store();
        let committed_b = BootState {
            good: Slot::B,
            next: Slot::B,
            tries: 0,
            failed: None,
        };
        store.save(&committed_b).unwrap();
        fs::write(store.env_path(1), b"garbage").unwrap();
        let loaded = store.load();
        assert_eq!((loaded.state.good, loaded.source), (Slot::B, Source::Env2));
        assert!(loaded.problems[0].contains("env1"), "{:?}", loaded.problems);

        fs::remove_file(store.env_path(2)).unwrap();
        let loaded = store.load();
        assert_eq!(
            (loaded.state.good, loaded.source),
            (Slot::B, Source::FallbackRecord)
        );

        fs::remove_file(store.fallback_path()).unwrap();
        let loaded = store.load();
        assert_eq!(
            (loaded.state, loaded.source),
            (BootState::factory(), Source::BuiltIn)
        );
        assert_eq!(loaded.problems.len(), 3);
    }

    #[test]
    fn save_rewrites_in_place_without_changing_size() {
        let (_d, store) = store();
        store.save(&BootState::factory()).unwrap();
        let before = fs::metadata(store.env_path(1)).unwrap().len();
        store
            .save(&BootState::factory().arm_trial(Slot::B, 1).unwrap())
            .unwrap();
        assert_eq!(fs::metadata(store.env_path(1)).unwrap().len(), before);
        assert_eq!(store.load().state.tries, 1);
    }

    #[test]
    fn reads_slot_versions_from_release_files() {
        let (_d, store) = store();
        fs::create_dir_all(store.slot_dir(Slot::A)).unwrap();
        fs::write(
            store.slot_dir(Slot::A).join("release"),
            "VERSION=\"1.2.3\"\nSLOT=A\n",
        )
        .unwrap();
        assert_eq!(store.slot_version(Slot::A).as_deref(), Some("1.2.3"));
        assert_eq!(store.slot_version(Slot::B), None);
    }
}
