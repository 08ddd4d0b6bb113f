//! The boot state on the EFI system partition, saved so a power cut at any instant leaves a
//! bootable state, and read exactly as keel/grub.cfg reads it.
//!
//! Two copies, `keel/env1/grubenv` and `keel/env2/grubenv`, in different directories so a torn
//! directory-sector write can only hurt one. GRUB reads copy 1; when that leaves `keel_good`
//! anything but `A` or `B` it reads copy 2 over it (variables copy 2 lacks keep copy 1's
//! values), then `keel/fallback.cfg` (the last committed good slot), then takes slot A
//! ([`grub_boot`] is that script, step by step). Userspace writes copy 2 first, then copy 1, each
//! 1024 bytes in place (no truncation, same clusters) followed by `fdatasync`, and only through a
//! [`CheckedEsp`]: a directory [`EspStore::check`] found to be a mounted FAT filesystem holding
//! Keel's layout.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::grubenv::{self, BLOCK_SIZE};
use crate::layout::{esp, Slot};
use crate::state::{grub_slot, BootState, Phase};

/// The variables keel/grub.cfg loads (its `load_env` whitelist) and saves.
pub const GRUB_VARS: [&str; 3] = ["keel_good", "keel_next", "keel_tries"];
/// The variable only the updater reads: the slot whose trial failed.
pub const FAILED_VAR: &str = "keel_failed";

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

/// Which record the state was read from: where keel/grub.cfg found `keel_good`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Copy 1 gave `keel_good` A or B.
    Env1,
    /// Copy 1 did not; copy 2 did.
    Env2,
    /// Neither did; the last committed good slot was used.
    FallbackRecord,
    /// Nothing readable: slot A, as GRUB does.
    BuiltIn,
}

/// What keel/grub.cfg does at power-on with given files: the state its variables describe,
/// the slot it boots and what it writes first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrubBoot {
    /// Where `keel_good` came from.
    pub source: Source,
    /// The state the script's variables describe ([`BootState::from_grub`]), before a try is
    /// spent; `keel_failed` read by the same steps, though GRUB ignores it.
    pub state: BootState,
    /// The slot GRUB boots.
    pub boots: Slot,
    /// When GRUB spends a try: copy 1 as it rewrites it and copy 2 likewise (`None` when that
    /// save fails; the script goes on). A trial whose save to copy 1 fails (copy 1 missing,
    /// no header, no room) is not started: the good slot boots and nothing is written.
    pub saved: Option<(Vec<u8>, Option<Vec<u8>>)>,
}

#[derive(Default)]
struct Vars {
    good: Vec<u8>,
    next: Vec<u8>,
    tries: Vec<u8>,
    failed: Vec<u8>,
}

impl Vars {
    /// `load_env --file F keel_good keel_next keel_tries`: the variables the block holds are
    /// set (the last of duplicates), the others keep their values; a block GRUB cannot open
    /// sets nothing.
    fn load(&mut self, block: Option<&[u8]>) {
        let Some(block) = block else { return };
        let names = [GRUB_VARS[0], GRUB_VARS[1], GRUB_VARS[2], FAILED_VAR];
        let Ok(set) = grubenv::load_env(block, &names) else {
            return;
        };
        for (name, value) in set {
            match name.as_str() {
                "keel_good" => self.good = value,
                "keel_next" => self.next = value,
                "keel_tries" => self.tries = value,
                _ => self.failed = value,
            }
        }
    }
}

/// The slot a `keel/fallback.cfg` sets: the value of its last `set keel_good=` line (quotes
/// removed), as GRUB's `source` leaves it for the updater's own one-line record. Other
/// commands are not run; a hand-edited script may do more under GRUB.
fn fallback_good(text: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(text);
    let value = text
        .lines()
        .filter_map(|l| l.trim_matches([' ', '\t']).strip_prefix("set keel_good="))
        .next_back()?;
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    Some(unquoted.as_bytes().to_vec())
}

/// keel/grub.cfg (crates/image-build/src/grub.rs) run on the contents of copy 1, copy 2 and
/// the last-good record (`None`: the file is missing or unreadable), step by step:
///  1. `load_env` copy 1; if `keel_good` is not exactly `A` or `B`, `load_env` copy 2 over it;
///     if still not, clear `keel_next` and source the record; if still not, `keel_good=A`.
///  2. If `keel_next` is exactly the other slot and `keel_tries` exactly `3`, `2` or `1`: set
///     tries one lower and `save_env` copy 1; when that succeeds, `save_env` copy 2 and boot
///     `keel_next`; when it fails, boot `keel_good`.
///  3. Otherwise boot `keel_good`.
pub fn grub_boot(env1: Option<&[u8]>, env2: Option<&[u8]>, fallback: Option<&[u8]>) -> GrubBoot {
    let mut vars = Vars::default();
    vars.load(env1);
    let mut source = Source::Env1;
    if grub_slot(&vars.good).is_none() {
        vars.load(env2);
        source = Source::Env2;
    }
    if grub_slot(&vars.good).is_none() {
        vars.next.clear();
        if let Some(good) = fallback.and_then(fallback_good) {
            vars.good = good;
        }
        source = Source::FallbackRecord;
    }
    let good = grub_slot(&vars.good).unwrap_or_else(|| {
        source = Source::BuiltIn;
        Slot::A
    });
    let state = BootState::from_grub(good, &vars.next, &vars.tries, &vars.failed);
    let mut boots = good;
    let mut saved = None;
    if let Phase::Trial { slot, tries } = state.phase() {
        let left = (tries - 1).to_string();
        let save = |block: Option<&[u8]>| {
            let mut block = block?.to_vec();
            let values = [good.letter(), slot.letter(), left.as_str()];
            GRUB_VARS
                .iter()
                .zip(values)
                .all(|(name, value)| grubenv::set(&mut block, name, value.as_bytes()))
                .then_some(block)
        };
        if let Some(one) = save(env1) {
            saved = Some((one, save(env2)));
            boots = slot;
        }
    }
    GrubBoot {
        source,
        state,
        boots,
        saved,
    }
}

/// The block [`CheckedEsp::save`] writes for a state.
pub fn encode_state(state: &BootState) -> Result<[u8; BLOCK_SIZE], grubenv::GrubenvError> {
    let vars = state.to_vars();
    let pairs: Vec<(&str, &str)> = vars.iter().map(|(n, v)| (*n, v.as_str())).collect();
    grubenv::encode(&pairs)
}

/// The last-good record [`CheckedEsp::save`] writes for a good slot.
pub fn fallback_record(good: Slot) -> String {
    format!("set keel_good={good}\n")
}

/// The state and how it was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The state, as keel/grub.cfg reads it.
    pub state: BootState,
    /// Where it came from.
    pub source: Source,
    /// The slot GRUB boots at the next power-on. This is `state.boots_next()` except when GRUB
    /// cannot save the try of a pending trial to copy 1: then it boots the good slot instead.
    pub boots: Slot,
    /// A line for each record that is not exactly what [`CheckedEsp::save`] writes for
    /// `state` (missing, unreadable to GRUB, odd values, a different state), naming the file
    /// and what is wrong; and one for a trial GRUB cannot start. Empty when all is in order.
    pub problems: Vec<String>,
}

impl Loaded {
    /// Whether writing `state` back would change any record: a copy or the last-good record
    /// is missing, damaged or out of step.
    pub fn needs_rewrite(&self) -> bool {
        !self.problems.is_empty()
    }
}

fn show(value: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(value))
}

fn summary(s: &BootState) -> String {
    format!("good {}, next {}, {} tries", s.good, s.next, s.tries)
}

/// What is wrong with a copy that is not the block `expected`, in GRUB's terms.
fn copy_problem(
    read: &Result<Vec<u8>, String>,
    expected: &[u8],
    in_use: &BootState,
) -> Option<String> {
    let block = match read {
        Err(e) => return Some(e.clone()),
        Ok(b) if b.as_slice() == expected => return None,
        Ok(b) => b,
    };
    let vars = match grubenv::decode_bytes(block) {
        Ok(vars) => vars,
        Err(e) => return Some(format!("{e}; GRUB cannot read it")),
    };
    let mut notes = Vec::new();
    for name in GRUB_VARS.iter().chain([&FAILED_VAR]) {
        let n = vars.iter().filter(|(v, _)| v == name.as_bytes()).count();
        if n > 1 {
            notes.push(format!("{name} appears {n} times (GRUB keeps the last)"));
        }
    }
    let set = grubenv::load_env(
        block,
        &[GRUB_VARS[0], GRUB_VARS[1], GRUB_VARS[2], FAILED_VAR],
    )
    .unwrap_or_default();
    let get = |name: &str| set.get(name).map(Vec::as_slice);
    match get("keel_good") {
        None => notes.push("no keel_good (GRUB cannot use it)".into()),
        Some(v) if grub_slot(v).is_none() => notes.push(format!(
            "keel_good is {}, not A or B (GRUB cannot use it)",
            show(v)
        )),
        Some(_) => {}
    }
    match get("keel_next") {
        None => notes.push("no keel_next".into()),
        Some(v) if grub_slot(v).is_none() => notes.push(format!(
            "keel_next is {}, not A or B (GRUB tries nothing)",
            show(v)
        )),
        Some(_) => {}
    }
    match get("keel_tries") {
        None => notes.push("no keel_tries".into()),
        Some(b"0" | b"1" | b"2" | b"3") => {}
        Some(v) => notes.push(format!(
            "keel_tries is {} (GRUB spends only 3, 2 or 1)",
            show(v)
        )),
    }
    match get(FAILED_VAR) {
        None | Some(b"A" | b"B" | b"none") => {}
        Some(v) => notes.push(format!("keel_failed is {}, not A, B or none", show(v))),
    }
    if notes.is_empty() {
        let good = get("keel_good").and_then(grub_slot).unwrap_or(in_use.good);
        let says = BootState::from_grub(
            good,
            get("keel_next").unwrap_or_default(),
            get("keel_tries").unwrap_or_default(),
            get(FAILED_VAR).unwrap_or_default(),
        );
        notes.push(if says == *in_use {
            "not laid out as the updater writes it".to_string()
        } else {
            format!(
                "holds {}; the state in use is {}",
                summary(&says),
                summary(in_use)
            )
        });
    }
    Some(notes.join("; "))
}

/// The boot state files under an ESP mount point.
#[derive(Clone, Debug)]
pub struct EspStore {
    esp: PathBuf,
}

impl EspStore {
    /// The store on the ESP mounted at `esp` (`/boot` on a running node). Reading only; writing
    /// goes through [`EspStore::check`].
    pub fn new(esp: impl Into<PathBuf>) -> Self {
        EspStore { esp: esp.into() }
    }

    /// The directory the store stands for.
    pub fn dir(&self) -> &Path {
        &self.esp
    }

    /// Path of copy 1 or 2 (any other copy number panics).
    pub fn env_path(&self, copy: u8) -> PathBuf {
        self.esp.join(esp::grubenv(copy))
    }

    /// Path of the last-good record GRUB sources when both copies are damaged.
    pub fn fallback_path(&self) -> PathBuf {
        self.esp.join(esp::FALLBACK_CFG)
    }

    /// Path of the GRUB configuration that chooses the slot.
    pub fn grub_cfg_path(&self) -> PathBuf {
        self.esp.join(esp::GRUB_CFG)
    }

    /// Directory holding a slot's kernel, initramfs and release file.
    pub fn slot_dir(&self, slot: Slot) -> PathBuf {
        self.esp.join(esp::slot_dir(slot))
    }

    /// The version recorded for a slot (`VERSION=` in `keel/<slot>/release`), if any.
    pub fn slot_version(&self, slot: Slot) -> Option<String> {
        let text = fs::read_to_string(self.slot_dir(slot).join(esp::RELEASE)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("VERSION="))
            .map(|v| v.trim_matches('"').to_string())
    }

    /// Read the state as keel/grub.cfg does ([`grub_boot`]), and check every record against
    /// what [`CheckedEsp::save`] would write for it.
    pub fn load(&self) -> Loaded {
        let read = |path: &Path| fs::read(path).map_err(|e| e.to_string());
        let env = [read(&self.env_path(1)), read(&self.env_path(2))];
        let fallback = read(&self.fallback_path());
        let grub = grub_boot(
            env[0].as_deref().ok(),
            env[1].as_deref().ok(),
            fallback.as_deref().ok(),
        );
        let state = grub.state;
        let mut problems = Vec::new();
        match encode_state(&state) {
            Ok(expected) => {
                for (copy, read) in (1..).zip(&env) {
                    if let Some(p) = copy_problem(read, &expected, &state) {
                        problems.push(format!("{}: {p}", self.env_path(copy).display()));
                    }
                }
            }
            Err(e) => problems.push(format!("encoding the boot state: {e}")),
        }
        match &fallback {
            Err(e) => problems.push(format!("{}: {e}", self.fallback_path().display())),
            Ok(text) if *text != fallback_record(state.good).as_bytes() => problems.push(format!(
                "{}: not the record of good slot {} (`{}`)",
                self.fallback_path().display(),
                state.good,
                fallback_record(state.good).trim_end()
            )),
            Ok(_) => {}
        }
        if let Phase::Trial { slot, .. } = state.phase() {
            if grub.boots != slot {
                problems.push(format!(
                    "GRUB cannot save a try of slot {slot} to {}, so it boots slot {} instead",
                    self.env_path(1).display(),
                    grub.boots
                ));
            }
        }
        Loaded {
            state,
            source: grub.source,
            boots: grub.boots,
            problems,
        }
    }

    /// Check that the directory is Keel's ESP before anything is written there: the root of a
    /// mounted FAT filesystem (as `fs` reports it) holding `keel/grub.cfg`, the slot
    /// directories `keel/A` and `keel/B`, and a boot state record (a copy or the last-good
    /// record). Refuses, naming the directory and everything missing, otherwise.
    pub fn check(&self, fs: &dyn Filesystems) -> Result<CheckedEsp, NotEsp> {
        let mut reasons = Vec::new();
        match fs.mount(&self.esp) {
            Err(e) => reasons.push(format!("cannot look at it ({e})")),
            Ok(facts) => {
                if !facts.mount_point {
                    reasons.push("it is not a mount point".to_string());
                }
                if facts.fs_type != MSDOS_SUPER_MAGIC {
                    reasons.push(format!(
                        "it is on {} (statfs type {:#x}), not FAT ({MSDOS_SUPER_MAGIC:#x})",
                        fs_name(facts.fs_type),
                        facts.fs_type
                    ));
                }
            }
        }
        let mut missing = Vec::new();
        if !self.grub_cfg_path().is_file() {
            missing.push(esp::GRUB_CFG.to_string());
        }
        for slot in Slot::ALL {
            if !self.slot_dir(slot).is_dir() {
                missing.push(format!("{}/", esp::slot_dir(slot)));
            }
        }
        if ![self.env_path(1), self.env_path(2), self.fallback_path()]
            .iter()
            .any(|p| p.is_file())
        {
            missing.push(format!(
                "a boot state record ({}, {} or {})",
                esp::GRUBENV[0],
                esp::GRUBENV[1],
                esp::FALLBACK_CFG
            ));
        }
        if !missing.is_empty() {
            reasons.push(format!(
                "missing from Keel's layout: {}",
                missing.join(", ")
            ));
        }
        if reasons.is_empty() {
            Ok(CheckedEsp {
                store: self.clone(),
            })
        } else {
            Err(NotEsp {
                dir: self.esp.clone(),
                reasons,
            })
        }
    }
}

/// `statfs` `f_type` of FAT filesystems (vfat, msdos), Linux's `MSDOS_SUPER_MAGIC`.
pub const MSDOS_SUPER_MAGIC: u64 = 0x4d44;

/// A few other `f_type`s by name, for the refusal message.
fn fs_name(fs_type: u64) -> &'static str {
    match fs_type {
        0xef53 => "ext2/3/4",
        0x0102_1994 => "tmpfs",
        0x9123_683e => "btrfs",
        0x5846_5342 => "xfs",
        0x794c_7630 => "overlayfs",
        0x6969 => "NFS",
        0x6573_5546 => "FUSE",
        _ => "another filesystem",
    }
}

/// What the ESP check asks the operating system about a directory. The updater's
/// implementation asks the kernel (`statfs`, `stat`); tests stand in for a mounted FAT
/// filesystem with one of their own.
pub trait Filesystems {
    /// The facts about `dir`.
    fn mount(&self, dir: &Path) -> std::io::Result<MountFacts>;
}

/// Whether a directory is the root of a mount, and the filesystem it is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountFacts {
    /// The directory is where a filesystem is mounted (its device differs from its parent's).
    pub mount_point: bool,
    /// `statfs` `f_type` of the filesystem the directory is on.
    pub fs_type: u64,
}

/// A directory that is not Keel's ESP: the updater writes nothing there.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{} is not Keel's EFI system partition, so nothing was written there: {}", dir.display(), reasons.join("; "))]
pub struct NotEsp {
    /// The directory.
    pub dir: PathBuf,
    /// Each thing that is wrong with it.
    pub reasons: Vec<String>,
}

/// A store whose directory passed [`EspStore::check`]: the only way to write the boot state.
#[derive(Clone, Debug)]
pub struct CheckedEsp {
    store: EspStore,
}

impl std::ops::Deref for CheckedEsp {
    type Target = EspStore;
    fn deref(&self) -> &EspStore {
        &self.store
    }
}

impl CheckedEsp {
    /// Save the state: copy 2, then copy 1, each in place and synced; the last-good record
    /// follows when it does not already name the good slot.
    pub fn save(&self, state: &BootState) -> Result<(), StoreError> {
        let block = encode_state(state)?;
        self.write_block(&self.env_path(2), &block)?;
        self.write_block(&self.env_path(1), &block)?;
        let record = fallback_record(state.good);
        if fs::read(self.fallback_path()).ok().as_deref() != Some(record.as_bytes()) {
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

    /// Stands in for a mounted FAT filesystem.
    struct Fat;
    impl Filesystems for Fat {
        fn mount(&self, _: &Path) -> std::io::Result<MountFacts> {
            Ok(MountFacts {
                mount_point: true,
                fs_type: MSDOS_SUPER_MAGIC,
            })
        }
    }

    /// A directory laid out as a fresh image's ESP, checked.
    fn esp() -> (tempfile::TempDir, CheckedEsp) {
        let dir = tempfile::tempdir().unwrap();
        let store = EspStore::new(dir.path());
        fs::create_dir_all(dir.path().join("keel/env1")).unwrap();
        fs::write(store.grub_cfg_path(), "# keel\n").unwrap();
        for slot in Slot::ALL {
            fs::create_dir_all(store.slot_dir(slot)).unwrap();
        }
        fs::write(
            store.env_path(1),
            encode_state(&BootState::factory()).unwrap(),
        )
        .unwrap();
        let checked = store.check(&Fat).unwrap();
        checked.save(&BootState::factory()).unwrap();
        (dir, checked)
    }

    #[test]
    fn saves_both_copies_and_reads_copy_one() {
        let (_d, store) = esp();
        let armed = BootState::factory().arm_trial(Slot::B, 3).unwrap();
        store.save(&armed).unwrap();
        assert_eq!(fs::read(store.env_path(1)).unwrap().len(), 1024);
        assert_eq!(
            fs::read(store.env_path(1)).unwrap(),
            fs::read(store.env_path(2)).unwrap()
        );
        let loaded = store.load();
        assert_eq!((loaded.state, loaded.source), (armed, Source::Env1));
        assert_eq!((loaded.boots, loaded.needs_rewrite()), (Slot::B, false));
        assert_eq!(
            fs::read_to_string(store.fallback_path()).unwrap(),
            "set keel_good=A\n"
        );
    }

    #[test]
    fn damaged_copy_one_falls_to_copy_two_then_to_the_last_good_record() {
        let (_d, store) = esp();
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
        assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
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
    fn a_damaged_copy_two_is_reported_while_copy_one_is_in_use() {
        let (_d, store) = esp();
        assert!(store.load().problems.is_empty());
        let mut torn = fs::read(store.env_path(2)).unwrap();
        torn[3] = b'X';
        fs::write(store.env_path(2), &torn).unwrap();
        let loaded = store.load();
        assert_eq!(loaded.source, Source::Env1);
        assert!(loaded.needs_rewrite());
        assert!(
            loaded.problems[0].contains("env2/grubenv: environment block has no GRUB header"),
            "{:?}",
            loaded.problems
        );
        store.save(&loaded.state).unwrap();
        assert!(!store.load().needs_rewrite());
    }

    #[test]
    fn odd_values_are_named() {
        let (_d, store) = esp();
        let mut block = grubenv::encode(&[
            ("keel_good", "A"),
            ("keel_next", "b"),
            ("keel_tries", "03"),
            ("keel_good", "A"),
        ])
        .unwrap();
        fs::write(store.env_path(2), block).unwrap();
        let text = store.load().problems.join("\n");
        for want in [
            "keel_good appears 2 times",
            "keel_next is \"b\", not A or B",
            "keel_tries is \"03\"",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
        block = encode_state(&BootState::factory().arm_trial(Slot::B, 2).unwrap()).unwrap();
        fs::write(store.env_path(2), block).unwrap();
        let text = store.load().problems.join("\n");
        assert!(
            text.contains(
                "holds good A, next B, 2 tries; the state in use is good A, next A, 0 tries"
            ),
            "{text}"
        );
    }

    #[test]
    fn save_rewrites_in_place_without_changing_size() {
        let (_d, store) = esp();
        let before = fs::metadata(store.env_path(1)).unwrap().len();
        store
            .save(&BootState::factory().arm_trial(Slot::B, 1).unwrap())
            .unwrap();
        assert_eq!(fs::metadata(store.env_path(1)).unwrap().len(), before);
        assert_eq!(store.load().state.tries, 1);
    }

    #[test]
    fn reads_slot_versions_from_release_files() {
        let (_d, store) = esp();
        fs::write(
            store.slot_dir(Slot::A).join("release"),
            "VERSION=\"1.2.3\"\nSLOT=A\n",
        )
        .unwrap();
        assert_eq!(store.slot_version(Slot::A).as_deref(), Some("1.2.3"));
        assert_eq!(store.slot_version(Slot::B), None);
    }

    /// Reports what the test says.
    struct Says(MountFacts);
    impl Filesystems for Says {
        fn mount(&self, _: &Path) -> std::io::Result<MountFacts> {
            Ok(self.0)
        }
    }

    #[test]
    fn check_names_the_directory_and_everything_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store = EspStore::new(dir.path());
        let ext4 = Says(MountFacts {
            mount_point: false,
            fs_type: 0xef53,
        });
        let err = store.check(&ext4).unwrap_err();
        assert_eq!(err.dir, dir.path());
        let text = err.to_string();
        for want in [
            dir.path().display().to_string().as_str(),
            "not a mount point",
            "on ext2/3/4 (statfs type 0xef53), not FAT (0x4d44)",
            "missing from Keel's layout: keel/grub.cfg, keel/A/, keel/B/, a boot state record",
            "so nothing was written there: ",
        ] {
            assert!(text.contains(want), "{want:?} in {text}");
        }
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);

        // FAT and mounted, but only part of the layout.
        fs::create_dir_all(store.slot_dir(Slot::A)).unwrap();
        fs::write(store.fallback_path(), fallback_record(Slot::A)).unwrap();
        let err = store.check(&Fat).unwrap_err();
        assert_eq!(
            err.reasons,
            vec!["missing from Keel's layout: keel/grub.cfg, keel/B/"]
        );

        // The whole layout on a filesystem that is not FAT.
        fs::write(store.grub_cfg_path(), "").unwrap();
        fs::create_dir_all(store.slot_dir(Slot::B)).unwrap();
        let mounted_ext4 = Says(MountFacts {
            mount_point: true,
            fs_type: 0xef53,
        });
        assert_eq!(store.check(&mounted_ext4).unwrap_err().reasons.len(), 1);
        assert!(store.check(&Fat).is_ok());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Values near the ones GRUB accepts: the right ones, case, padding, leading zeros.
        fn value() -> impl Strategy<Value = &'static str> {
            prop::sample::select(vec![
                "A", "B", "a", "b", " A", "B ", "A\r", "C", "", "3", "2", "1", "0", "03", "4",
                "none",
            ])
        }

        /// A copy: missing, without header, or some keel variables (repeated or not).
        fn copy() -> impl Strategy<Value = Option<Vec<u8>>> {
            let names =
                prop::sample::select(vec!["keel_good", "keel_next", "keel_tries", "keel_failed"]);
            prop_oneof![
                1 => Just(None),
                1 => Just(Some(b"not a grubenv".to_vec())),
                6 => prop::collection::vec((names, value()), 0..7).prop_map(|vars| {
                    let mut text = grubenv::HEADER.as_bytes().to_vec();
                    for (n, v) in vars {
                        text.extend_from_slice(format!("{n}={v}\n").as_bytes());
                    }
                    text.resize(BLOCK_SIZE, b'#');
                    Some(text)
                }),
            ]
        }

        fn fallback() -> impl Strategy<Value = Option<Vec<u8>>> {
            prop_oneof![
                Just(None),
                value().prop_map(|v| Some(format!("set keel_good={v}\n").into_bytes())),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Whatever the records hold, the state read from them boots, under GRUB, the
            /// slot GRUB picks from them (unless GRUB cannot save the try), and writing that
            /// state back as the updater writes it keeps GRUB's choice.
            #[test]
            fn the_state_read_and_its_rewrite_boot_what_grub_boots(
                env1 in copy(),
                env2 in copy(),
                fallback in fallback(),
            ) {
                let grub = grub_boot(env1.as_deref(), env2.as_deref(), fallback.as_deref());
                let canon = encode_state(&grub.state).unwrap();
                let record = fallback_record(grub.state.good);
                let again = grub_boot(Some(&canon), Some(&canon), Some(record.as_bytes()));
                prop_assert_eq!(again.state, grub.state);
                prop_assert_eq!(again.boots, grub.state.boots_next());
                if grub.saved.is_some() || !matches!(grub.state.phase(), Phase::Trial { .. }) {
                    prop_assert_eq!(grub.boots, grub.state.boots_next());
                }
                if let Some((one, two)) = &grub.saved {
                    // What GRUB saves keeps the good slot.
                    let next = grub_boot(Some(one), two.as_deref(), fallback.as_deref());
                    prop_assert_eq!(next.state.good, grub.state.good);
                }
            }
        }
    }
}
