//! The updater's commands, each a function of the ESP store and the booted slot. The commands
//! that write (`mark-good`, `set-next`) first check, through `fs`, that the directory is Keel's
//! mounted ESP, and write nothing anywhere else.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use slots::state::MarkOutcome;
use slots::status::{render, slot_statuses};
use slots::store::{EspStore, Filesystems, Source};
use slots::{BootState, Slot};

use slots::booted::Booted;
use slots::layout::esp;

use crate::config;
use crate::state::{self, StateFile};
use crate::status::{self as update_status, UpdateStatus};

/// Where `updater status` reads the update configuration and state.
#[derive(Clone, Debug)]
pub struct UpdatePaths {
    /// update.conf files, lowest precedence first (see [`config::PATHS`]).
    pub configs: Vec<PathBuf>,
    /// The daemon's state file (see [`state::DEFAULT_PATH`]).
    pub state: PathBuf,
}

impl Default for UpdatePaths {
    fn default() -> Self {
        UpdatePaths {
            configs: config::PATHS.iter().map(PathBuf::from).collect(),
            state: PathBuf::from(state::DEFAULT_PATH),
        }
    }
}

/// Text of `updater status`: the slot table, then the update fields.
pub fn status(store: &EspStore, booted: Booted, update: &UpdatePaths) -> String {
    if booted == Booted::Live {
        return "live system: the OS runs from RAM and has no slots\n".to_string();
    }
    let loaded = store.load();
    let booted_slot = match booted {
        Booted::Slot(s) => Some(s),
        _ => None,
    };
    let mut out = render(&slot_statuses(
        &loaded.state,
        loaded.boots,
        |s| store.slot_version(s),
        booted_slot,
    ));
    if loaded.source != Source::Env1 || !loaded.problems.is_empty() {
        out.push_str(&format!("boot state read from {:?}:\n", loaded.source));
        for p in &loaded.problems {
            out.push_str(&format!("  {p}\n"));
        }
        out.push_str("  (`updater mark-good` rewrites the boot state records)\n");
    }
    let running = booted_slot.and_then(|s| store.slot_version(s));
    out.push('\n');
    out.push_str(&update_fields(update, running.as_deref()));
    out
}

/// The update half of `updater status`, read from `paths`.
fn update_fields(paths: &UpdatePaths, running: Option<&str>) -> String {
    let loaded = config::load(&paths.configs).map_err(|e| e.to_string());
    let file = StateFile::load(&paths.state).map_err(|e| e.to_string());
    update_status::render(&UpdateStatus {
        settings: loaded.as_ref().map(|l| &l.settings).map_err(String::as_str),
        warnings: loaded.as_ref().map(|l| &l.warnings[..]).unwrap_or(&[]),
        running,
        state: file.as_ref().map(Option::as_ref).map_err(String::as_str),
    })
}

/// `updater mark-good`: the booted slot is healthy. Records a rollback when GRUB fell back.
/// Also rewrites both environment copies and the last-good record when any of them is
/// missing, damaged or out of step with the state GRUB reads.
pub fn mark_good(store: &EspStore, fs: &dyn Filesystems, booted: Booted) -> Result<String> {
    let slot = match booted {
        Booted::Slot(s) => s,
        Booted::Live => return Ok("live system: no slot to mark good".to_string()),
        Booted::Unknown => {
            bail!("the kernel command line names no keel.slot; not booted from a Keel slot")
        }
    };
    let esp = store.check(fs)?;
    let loaded = esp.load();
    let (state, outcome) = loaded.state.mark_good(slot);
    let repaired = loaded.needs_rewrite();
    if outcome != MarkOutcome::AlreadyGood || repaired {
        esp.save(&state)
            .with_context(|| format!("saving boot state after marking slot {slot} good"))?;
    }
    let mut msg = match outcome {
        MarkOutcome::AlreadyGood => format!("slot {slot} is good"),
        MarkOutcome::TrialCommitted(s) => {
            format!("slot {s} passed its trial and is now the good slot")
        }
        MarkOutcome::RollbackRecorded(failed) if loaded.boots != loaded.state.boots_next() => {
            format!(
                "slot {failed} was not tried: GRUB could not save its try to {}, so it booted \
                 slot {slot}, which stays good; {failed} is recorded failed (set-next arms it again)",
                esp.env_path(1).display()
            )
        }
        MarkOutcome::RollbackRecorded(failed) => format!(
            "slot {failed} failed its trial; GRUB returned to slot {slot}, which stays good"
        ),
    };
    if repaired {
        msg.push_str(" (damaged boot state copies rewritten)");
    }
    Ok(msg)
}

/// `updater set-next SLOT`: arm a trial of SLOT; GRUB boots it next and falls back by itself
/// if it is not marked good within `tries` attempts.
pub fn set_next(
    store: &EspStore,
    fs: &dyn Filesystems,
    booted: Booted,
    slot: Slot,
    tries: u8,
) -> Result<String> {
    if booted == Booted::Live {
        bail!("live system: no slots to switch");
    }
    let esp = store.check(fs)?;
    let current = esp.load().state;
    if let Booted::Slot(b) = booted {
        if b != current.good {
            bail!("booted slot {b} is not marked good yet; run `updater mark-good` first");
        }
    }
    for file in [esp::KERNEL, esp::INITRD] {
        let path = esp.slot_dir(slot).join(file);
        if !path.is_file() {
            bail!("slot {slot} has no {} ; nothing to boot", path.display());
        }
    }
    let state: BootState = current.arm_trial(slot, tries)?;
    esp.save(&state).context("saving boot state")?;
    Ok(format!(
        "slot {slot} will be tried at the next boot ({tries} tries); slot {} stays the fallback",
        state.good
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use slots::store::{encode_state, MountFacts, MSDOS_SUPER_MAGIC};
    use std::fs;
    use std::path::Path;
    use std::time::{Duration, SystemTime};

    /// Stands in for the ESP's mounted FAT filesystem.
    struct Fat;
    impl Filesystems for Fat {
        fn mount(&self, _: &Path) -> std::io::Result<MountFacts> {
            Ok(MountFacts {
                mount_point: true,
                fs_type: MSDOS_SUPER_MAGIC,
            })
        }
    }

    /// No update.conf and no state file: a node that never checked.
    fn no_update_files() -> UpdatePaths {
        UpdatePaths {
            configs: vec![],
            state: "/nonexistent/keel/updater/state.json".into(),
        }
    }

    /// A fresh image's ESP: grub.cfg, both slots with a kernel and initramfs, A's release,
    /// both copies and the last-good record of the factory state.
    fn esp_with_slots() -> (tempfile::TempDir, EspStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EspStore::new(dir.path());
        for slot in Slot::ALL {
            let d = store.slot_dir(slot);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("vmlinuz"), b"k").unwrap();
            fs::write(d.join("initrd.img"), b"i").unwrap();
        }
        fs::write(store.grub_cfg_path(), "# keel\n").unwrap();
        fs::write(store.slot_dir(Slot::A).join("release"), "VERSION=0.1.0\n").unwrap();
        fs::write(store.fallback_path(), "set keel_good=A\n").unwrap();
        store
            .check(&Fat)
            .unwrap()
            .save(&BootState::factory())
            .unwrap();
        (dir, store)
    }

    #[test]
    fn set_next_then_fallback_then_mark_good_reports_b_failed() {
        let (_d, store) = esp_with_slots();
        let a = Booted::Slot(Slot::A);
        set_next(&store, &Fat, a, Slot::B, 3).unwrap();
        assert!(status(&store, a, &no_update_files())
            .contains("USR-B -                       2          3 no"));
        // GRUB spends the tries; the node comes back up on A.
        let mut spent = store.load().state;
        spent.tries = 0;
        store.check(&Fat).unwrap().save(&spent).unwrap();
        let msg = mark_good(&store, &Fat, a).unwrap();
        assert!(msg.contains("slot B failed its trial"), "{msg}");
        let text = status(&store, a, &no_update_files());
        assert!(
            text.contains("USR-A 0.1.0                   2          0 yes   no     *"),
            "{text}"
        );
        assert!(
            text.contains("USR-B -                       0          0 no    yes"),
            "{text}"
        );
        assert!(!text.contains("boot state read from"), "{text}");
    }

    #[test]
    fn set_next_refuses_an_empty_slot_and_the_good_slot() {
        let (_d, store) = esp_with_slots();
        fs::remove_file(store.slot_dir(Slot::B).join("vmlinuz")).unwrap();
        let err = set_next(&store, &Fat, Booted::Slot(Slot::A), Slot::B, 3).unwrap_err();
        assert!(err.to_string().contains("slot B has no"), "{err}");
        let err = set_next(&store, &Fat, Booted::Slot(Slot::A), Slot::A, 3).unwrap_err();
        assert!(err.to_string().contains("already the good slot"), "{err}");
    }

    #[test]
    fn mark_good_repairs_a_damaged_copy() {
        let (_d, store) = esp_with_slots();
        fs::write(store.env_path(1), b"junk").unwrap();
        let msg = mark_good(&store, &Fat, Booted::Slot(Slot::A)).unwrap();
        assert!(msg.contains("rewritten"), "{msg}");
        let loaded = store.load();
        assert_eq!((loaded.source, loaded.problems.len()), (Source::Env1, 0));
    }

    #[test]
    fn mark_good_repairs_a_damaged_second_copy_from_the_first() {
        let armed = BootState::factory().arm_trial(Slot::B, 2).unwrap();
        type Damage<'a> = (&'a str, &'a dyn Fn(&Path));
        let damage: [Damage; 5] = [
            ("missing", &|p| fs::remove_file(p).unwrap()),
            ("no header", &|p| fs::write(p, [0u8; 1024]).unwrap()),
            ("truncated", &|p| fs::write(p, b"# GRUB Env").unwrap()),
            ("odd values", &|p| {
                fs::write(
                    p,
                    slots::grubenv::encode(&[("keel_good", "a"), ("keel_tries", "03")]).unwrap(),
                )
                .unwrap()
            }),
            ("an older state", &|p| {
                fs::write(p, encode_state(&armed).unwrap()).unwrap()
            }),
        ];
        for (what, damage) in damage {
            let (_d, store) = esp_with_slots();
            let good = fs::read(store.env_path(1)).unwrap();
            damage(&store.env_path(2));
            let text = status(&store, Booted::Slot(Slot::A), &no_update_files());
            assert!(text.contains("env2/grubenv: "), "{what}: {text}");
            let msg = mark_good(&store, &Fat, Booted::Slot(Slot::A)).unwrap();
            assert_eq!(
                msg, "slot A is good (damaged boot state copies rewritten)",
                "{what}"
            );
            assert_eq!(fs::read(store.env_path(2)).unwrap(), good, "{what}");
            assert_eq!(fs::read(store.env_path(1)).unwrap(), good, "{what}");
            assert!(store.load().problems.is_empty(), "{what}");
        }
    }

    #[test]
    fn mark_good_writes_nothing_when_all_is_in_order() {
        let (_d, store) = esp_with_slots();
        let long_ago = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let paths = [store.env_path(1), store.env_path(2), store.fallback_path()];
        for p in &paths {
            fs::File::options()
                .write(true)
                .open(p)
                .unwrap()
                .set_modified(long_ago)
                .unwrap();
        }
        let msg = mark_good(&store, &Fat, Booted::Slot(Slot::A)).unwrap();
        assert_eq!(msg, "slot A is good");
        for p in &paths {
            assert_eq!(
                fs::metadata(p).unwrap().modified().unwrap(),
                long_ago,
                "{p:?}"
            );
        }
    }

    #[test]
    fn a_trial_grub_could_not_save_is_shown_and_reported_as_not_tried() {
        let (_d, store) = esp_with_slots();
        let a = Booted::Slot(Slot::A);
        set_next(&store, &Fat, a, Slot::B, 3).unwrap();
        // A power cut tore copy 1 after copy 2 was written: GRUB reads the trial from copy 2,
        // cannot save its try to copy 1 and boots A.
        fs::write(store.env_path(1), [0u8; 1024]).unwrap();
        let text = status(&store, a, &no_update_files());
        assert!(text.contains("USR-A 0.1.0                   2"), "{text}");
        assert!(
            text.contains("USR-B -                       0          3"),
            "{text}"
        );
        assert!(text.contains("GRUB cannot save a try of slot B"), "{text}");
        let msg = mark_good(&store, &Fat, a).unwrap();
        assert!(msg.starts_with("slot B was not tried"), "{msg}");
        let loaded = store.load();
        assert_eq!(
            (loaded.state.boots_next(), loaded.state.failed),
            (Slot::A, Some(Slot::B))
        );
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    }

    #[test]
    fn the_state_is_read_as_grub_reads_it() {
        let (_d, store) = esp_with_slots();
        let a = Booted::Slot(Slot::A);
        // "03" is not "3" to GRUB: B's trial is spent, A boots; lower-case b is no slot.
        for (next, tries, b_row) in [
            (
                "B",
                "03",
                "USR-B -                       0          0 no    yes",
            ),
            (
                "b",
                "3",
                "USR-B -                       0          0 no    no",
            ),
            (
                "B",
                "3",
                "USR-B -                       2          3 no    no",
            ),
        ] {
            let block = slots::grubenv::encode(&[
                ("keel_good", "A"),
                ("keel_next", next),
                ("keel_tries", tries),
            ])
            .unwrap();
            fs::write(store.env_path(1), block).unwrap();
            fs::write(store.env_path(2), block).unwrap();
            let text = status(&store, a, &no_update_files());
            assert!(text.contains(b_row), "{next} {tries}: {text}");
        }
    }

    #[test]
    fn status_shows_the_update_fields_below_the_slot_table() {
        let (dir, store) = esp_with_slots();
        let a = Booted::Slot(Slot::A);
        let text = status(&store, a, &no_update_files());
        assert!(
            text.ends_with(
                "\nchannel:    stable\nupdates:    on, reboot strategy reboot\nrunning:    0.1.0\n\
                 newest:     unknown\nupdate:     idle, never checked\n"
            ),
            "{text}"
        );

        let coreos = dir.path().join("coreos-update.conf");
        let keel = dir.path().join("keel-update.conf");
        fs::write(&coreos, "GROUP=beta\nREBOOT_STRATEGY=etcd-lock\n").unwrap();
        fs::write(&keel, "REBOOT_STRATEGY=off\nGRUOP=alpha\n").unwrap();
        let paths = UpdatePaths {
            configs: vec![coreos, keel.clone()],
            state: dir.path().join("state.json"),
        };
        let mut file = StateFile {
            newest: Some("0.2.0".parse().unwrap()),
            ..StateFile::default()
        };
        file.transition(crate::state::UpdateState::Checking)
            .unwrap();
        file.save(&paths.state).unwrap();
        let text = status(&store, a, &paths);
        let fields = text.split_once("\n\n").unwrap().1;
        assert_eq!(
            fields,
            format!(
                "channel:    beta\nupdates:    on, reboot strategy off\n\
                 warning:    {}:2: GRUOP: unknown key, ignored\nrunning:    0.1.0\n\
                 newest:     0.2.0\nupdate:     checking\nlast check: never\n",
                keel.display()
            )
        );

        fs::write(&paths.state, "{").unwrap();
        let text = status(&store, a, &paths);
        assert!(text.contains("update:     unknown: "), "{text}");
        assert!(text.contains("not an updater state file"), "{text}");
    }
}
