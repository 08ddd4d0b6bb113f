//! The updater's commands, each a function of the ESP store and the booted slot.

use anyhow::{bail, Context, Result};
use slots::state::MarkOutcome;
use slots::status::{render, slot_statuses};
use slots::store::{EspStore, Source};
use slots::{BootState, Slot};

use slots::booted::Booted;

/// Text of `updater status`.
pub fn status(store: &EspStore, booted: Booted) -> String {
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
        |s| store.slot_version(s),
        booted_slot,
    ));
    if loaded.source != Source::Env1 {
        out.push_str(&format!("boot state read from {:?}:\n", loaded.source));
        for p in &loaded.problems {
            out.push_str(&format!("  {p}\n"));
        }
    }
    out
}

/// `updater mark-good`: the booted slot is healthy. Records a rollback when GRUB fell back.
/// Also rewrites both environment copies when one of them was damaged.
pub fn mark_good(store: &EspStore, booted: Booted) -> Result<String> {
    let slot = match booted {
        Booted::Slot(s) => s,
        Booted::Live => return Ok("live system: no slot to mark good".to_string()),
        Booted::Unknown => {
            bail!("the kernel command line names no keel.slot; not booted from a Keel slot")
        }
    };
    let loaded = store.load();
    let (state, outcome) = loaded.state.mark_good(slot);
    let repaired = loaded.source != Source::Env1;
    if outcome != MarkOutcome::AlreadyGood || repaired {
        store
            .save(&state)
            .with_context(|| format!("saving boot state after marking slot {slot} good"))?;
    }
    let mut msg = match outcome {
        MarkOutcome::AlreadyGood => format!("slot {slot} is good"),
        MarkOutcome::TrialCommitted(s) => {
            format!("slot {s} passed its trial and is now the good slot")
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
pub fn set_next(store: &EspStore, booted: Booted, slot: Slot, tries: u8) -> Result<String> {
    if booted == Booted::Live {
        bail!("live system: no slots to switch");
    }
    let current = store.load().state;
    if let Booted::Slot(b) = booted {
        if b != current.good {
            bail!("booted slot {b} is not marked good yet; run `updater mark-good` first");
        }
    }
    for file in ["vmlinuz", "initrd.img"] {
        let path = store.slot_dir(slot).join(file);
        if !path.is_file() {
            bail!("slot {slot} has no {} ; nothing to boot", path.display());
        }
    }
    let state: BootState = current.arm_trial(slot, tries)?;
    store.save(&state).context("saving boot state")?;
    Ok(format!(
        "slot {slot} will be tried at the next boot ({tries} tries); slot {} stays the fallback",
        state.good
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn esp_with_slots() -> (tempfile::TempDir, EspStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = EspStore::new(dir.path());
        for slot in Slot::ALL {
            let d = store.slot_dir(slot);
            fs::create_dir_all(&d).unwrap();
            fs::write(d.join("vmlinuz"), b"k").unwrap();
            fs::write(d.join("initrd.img"), b"i").unwrap();
        }
        fs::write(store.slot_dir(Slot::A).join("release"), "VERSION=0.1.0\n").unwrap();
        store.save(&BootState::factory()).unwrap();
        (dir, store)
    }

    #[test]
    fn set_next_then_fallback_then_mark_good_reports_b_failed() {
        let (_d, store) = esp_with_slots();
        let a = Booted::Slot(Slot::A);
        set_next(&store, a, Slot::B, 3).unwrap();
        assert!(status(&store, a).contains("USR-B -                       2          3 no"));
        // GRUB spends the tries; the node comes back up on A.
        let mut spent = store.load().state;
        spent.tries = 0;
        store.save(&spent).unwrap();
        let msg = mark_good(&store, a).unwrap();
        assert!(msg.contains("slot B failed its trial"), "{msg}");
        let text = status(&store, a);
        assert!(
            text.contains("USR-A 0.1.0                   2          0 yes   no     *"),
            "{text}"
        );
        assert!(
            text.contains("USR-B -                       0          0 no    yes"),
            "{text}"
        );
    }

    #[test]
    fn set_next_refuses_an_empty_slot_and_the_good_slot() {
        let (_d, store) = esp_with_slots();
        fs::remove_file(store.slot_dir(Slot::B).join("vmlinuz")).unwrap();
        let err = set_next(&store, Booted::Slot(Slot::A), Slot::B, 3).unwrap_err();
        assert!(err.to_string().contains("slot B has no"), "{err}");
        let err = set_next(&store, Booted::Slot(Slot::A), Slot::A, 3).unwrap_err();
        assert!(err.to_string().contains("already the good slot"), "{err}");
    }

    #[test]
    fn mark_good_repairs_a_damaged_copy() {
        let (_d, store) = esp_with_slots();
        fs::write(store.env_path(1), b"junk").unwrap();
        let msg = mark_good(&store, Booted::Slot(Slot::A)).unwrap();
        assert!(msg.contains("rewritten"), "{msg}");
        assert_eq!(store.load().source, Source::Env1);
    }
}
