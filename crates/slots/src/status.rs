//! The per-slot view `updater status` prints: version, priority, tries left, good, failed.

use crate::layout::Slot;
use crate::state::{BootState, Phase};

/// One slot as an operator sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlotStatus {
    /// The slot.
    pub slot: Slot,
    /// Installed release version, if the slot holds one.
    pub version: Option<String>,
    /// 2 = GRUB boots it next, 1 = fallback, 0 = not chosen.
    pub priority: u8,
    /// Attempts left while on trial.
    pub tries: u8,
    /// Marked good.
    pub good: bool,
    /// Its last trial ran out of tries.
    pub failed: bool,
    /// The running system booted from it.
    pub booted: bool,
}

/// Derive each slot's status. `boots` is the slot GRUB boots at the next power-on: the state's
/// own [`BootState::boots_next`], or the good slot when GRUB cannot start a pending trial
/// ([`crate::store::Loaded::boots`]).
pub fn slot_statuses(
    state: &BootState,
    boots: Slot,
    versions: impl Fn(Slot) -> Option<String>,
    booted: Option<Slot>,
) -> Vec<SlotStatus> {
    let phase = state.phase();
    Slot::ALL
        .iter()
        .map(|&slot| {
            let boots_next = boots == slot;
            let is_fallback =
                !boots_next && matches!(phase, Phase::Trial { .. }) && slot == state.good;
            SlotStatus {
                slot,
                version: versions(slot),
                priority: if boots_next {
                    2
                } else if is_fallback {
                    1
                } else {
                    0
                },
                tries: match phase {
                    Phase::Trial { slot: s, tries } if s == slot => tries,
                    _ => 0,
                },
                good: state.good == slot,
                failed: state.failed == Some(slot)
                    || matches!(phase, Phase::Failed { slot: s } if s == slot),
                booted: booted == Some(slot),
            }
        })
        .collect()
}

/// Render the status table.
pub fn render(statuses: &[SlotStatus]) -> String {
    let mut out = format!(
        "{:<5} {:<16} {:>8} {:>10} {:<5} {:<6} {}\n",
        "SLOT", "VERSION", "PRIORITY", "TRIES-LEFT", "GOOD", "FAILED", "BOOTED"
    );
    for s in statuses {
        let yes_no = |b: bool| if b { "yes" } else { "no" };
        out.push_str(&format!(
            "{:<5} {:<16} {:>8} {:>10} {:<5} {:<6} {}\n",
            s.slot.label(),
            s.version.as_deref().unwrap_or("-"),
            s.priority,
            s.tries,
            yes_no(s.good),
            yes_no(s.failed),
            if s.booted { "*" } else { "" },
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(slot: Slot) -> Option<String> {
        (slot == Slot::A).then(|| "0.1.0".to_string())
    }

    #[test]
    fn trial_shows_next_slot_first_with_its_tries() {
        let s = BootState::factory().arm_trial(Slot::B, 3).unwrap();
        let st = slot_statuses(&s, s.boots_next(), version, Some(Slot::A));
        assert_eq!((st[1].priority, st[1].tries, st[1].good), (2, 3, false));
        assert_eq!((st[0].priority, st[0].good, st[0].booted), (1, true, true));
    }

    #[test]
    fn rolled_back_trial_shows_b_failed_and_a_good() {
        let s = BootState::factory().arm_trial(Slot::B, 3).unwrap();
        let (after, _) = BootState { tries: 0, ..s }.mark_good(Slot::A);
        let text = render(&slot_statuses(
            &after,
            after.boots_next(),
            version,
            Some(Slot::A),
        ));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "SLOT  VERSION          PRIORITY TRIES-LEFT GOOD  FAILED BOOTED"
        );
        assert_eq!(
            lines[1],
            "USR-A 0.1.0                   2          0 yes   no     *"
        );
        assert_eq!(
            lines[2],
            "USR-B -                       0          0 no    yes    "
        );
    }

    #[test]
    fn a_trial_grub_cannot_start_shows_the_good_slot_first() {
        let s = BootState::factory().arm_trial(Slot::B, 3).unwrap();
        let st = slot_statuses(&s, Slot::A, version, Some(Slot::A));
        assert_eq!((st[0].priority, st[1].priority, st[1].tries), (2, 0, 3));
    }
}
