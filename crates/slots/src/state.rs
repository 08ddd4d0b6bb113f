//! Boot state of the two slots and its guarded transitions (pure; no I/O).
//!
//! Three variables decide every boot, read by GRUB from the environment block:
//! `keel_good` (the slot last proven healthy), `keel_next` (the slot to try) and `keel_tries`
//! (attempts left, 0 to 3). GRUB alone spends tries, one before each attempt; the running OS alone
//! marks a slot good. From those follow three phases:
//!  * committed: next = good; GRUB boots good and writes nothing.
//!  * trial: next ≠ good and tries > 0; GRUB spends a try and boots next.
//!  * failed: next ≠ good and tries = 0; GRUB boots good again, by itself.
//!
//! `keel_failed` records a slot whose trial ran out, so nothing retries it unasked.
//!
//! GRUB's script compares strings: the state is read from the variables as it reads them
//! ([`BootState::from_grub`]), so that whatever a block holds, the updater and GRUB agree on
//! which slot boots next.

use crate::layout::Slot;

/// The most tries GRUB's countdown knows (it counts 3 → 2 → 1 → 0 by string compare).
pub const MAX_TRIES: u8 = 3;

/// The boot state as stored in the environment block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootState {
    /// The slot last marked good; GRUB falls back to it.
    pub good: Slot,
    /// The slot GRUB should try.
    pub next: Slot,
    /// Attempts left for `next` while it differs from `good`.
    pub tries: u8,
    /// A slot whose trial ran out of tries and was not retried since.
    pub failed: Option<Slot>,
}

/// Where the state stands, derived from the variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `next` = `good`: boot the good slot.
    Committed,
    /// A trial of `slot` with `tries` attempts left.
    Trial {
        /// The slot on trial.
        slot: Slot,
        /// Attempts left.
        tries: u8,
    },
    /// The trial of `slot` spent every try without being marked good.
    Failed {
        /// The slot whose trial failed.
        slot: Slot,
    },
}

/// What `mark_good` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MarkOutcome {
    /// The booted slot was already good and nothing was pending.
    AlreadyGood,
    /// The slot on trial booted and is now the good slot.
    TrialCommitted(Slot),
    /// The OS came up on the good slot while a trial was pending or spent: GRUB fell back.
    /// The other slot is recorded as failed and the trial is closed.
    RollbackRecorded(Slot),
}

/// A transition that is not allowed from the current state.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TransitionError {
    /// Trying the slot that is already good makes no sense.
    #[error("slot {0} is already the good slot; nothing to try")]
    AlreadyGood(Slot),
    /// Tries outside 1..=3.
    #[error("tries must be between 1 and {MAX_TRIES}, got {0}")]
    Tries(u8),
}

impl BootState {
    /// A fresh image: slot A good, nothing to try.
    pub fn factory() -> Self {
        BootState {
            good: Slot::A,
            next: Slot::A,
            tries: 0,
            failed: None,
        }
    }

    /// The phase the variables describe.
    pub fn phase(&self) -> Phase {
        if self.next == self.good {
            Phase::Committed
        } else if self.tries > 0 {
            Phase::Trial {
                slot: self.next,
                tries: self.tries,
            }
        } else {
            Phase::Failed { slot: self.next }
        }
    }

    /// The slot GRUB picks at the next power-on (before spending a try).
    pub fn boots_next(&self) -> Slot {
        match self.phase() {
            Phase::Trial { slot, .. } => slot,
            Phase::Committed | Phase::Failed { .. } => self.good,
        }
    }

    /// Arm a trial of `slot` with `tries` attempts: GRUB will boot it next, and fall back to
    /// the good slot by itself if it is not marked good within those attempts.
    pub fn arm_trial(&self, slot: Slot, tries: u8) -> Result<BootState, TransitionError> {
        if slot == self.good {
            return Err(TransitionError::AlreadyGood(slot));
        }
        if !(1..=MAX_TRIES).contains(&tries) {
            return Err(TransitionError::Tries(tries));
        }
        Ok(BootState {
            good: self.good,
            next: slot,
            tries,
            failed: self.failed.filter(|f| *f != slot),
        })
    }

    /// The running OS booted `booted` and is healthy: make the state say so.
    pub fn mark_good(&self, booted: Slot) -> (BootState, MarkOutcome) {
        if booted == self.good {
            if self.next == self.good {
                return (*self, MarkOutcome::AlreadyGood);
            }
            let failed = self.next;
            let state = BootState {
                good: booted,
                next: booted,
                tries: 0,
                failed: Some(failed),
            };
            return (state, MarkOutcome::RollbackRecorded(failed));
        }
        let state = BootState {
            good: booted,
            next: booted,
            tries: 0,
            failed: self.failed.filter(|f| *f != booted),
        };
        (state, MarkOutcome::TrialCommitted(booted))
    }

    /// The variables as written to the environment block.
    pub fn to_vars(&self) -> Vec<(&'static str, String)> {
        vec![
            ("keel_good", self.good.letter().to_string()),
            ("keel_next", self.next.letter().to_string()),
            ("keel_tries", self.tries.to_string()),
            (
                "keel_failed",
                self.failed
                    .map(|s| s.letter().to_string())
                    .unwrap_or_else(|| "none".into()),
            ),
        ]
    }

    /// The state keel/grub.cfg acts on, from the raw values its script holds after loading
    /// (`good` already settled on A or B, as the script settles it). GRUB's `[ x = y ]` compares
    /// strings, so only exactly `A` and `B` are slots and only exactly `3`, `2` and `1` are tries:
    ///  * `next` that is not exactly `A` or `B`, or equals `good`: committed (GRUB boots `good`);
    ///  * `next` the other slot with tries `3`, `2` or `1`: a trial with that many;
    ///  * `next` the other slot with any other tries (`0`, `03`, `4`, empty): failed, GRUB boots
    ///    `good`, as it says "used up its tries".
    ///
    /// `failed` (which GRUB never reads) is a slot when exactly `A` or `B`, else none.
    pub fn from_grub(good: Slot, next: &[u8], tries: &[u8], failed: &[u8]) -> BootState {
        let failed = grub_slot(failed);
        match grub_slot(next) {
            Some(next) if next != good => BootState {
                good,
                next,
                tries: grub_tries(tries).unwrap_or(0),
                failed,
            },
            _ => BootState {
                good,
                next: good,
                tries: 0,
                failed,
            },
        }
    }
}

/// A slot as keel/grub.cfg recognises one: exactly `A` or `B` (`a`, ` A`, `A\r` are not slots).
pub fn grub_slot(value: &[u8]) -> Option<Slot> {
    match value {
        b"A" => Some(Slot::A),
        b"B" => Some(Slot::B),
        _ => None,
    }
}

/// Tries keel/grub.cfg will spend one of: exactly `3`, `2` or `1` (not `03`, not ` 3`).
pub fn grub_tries(value: &[u8]) -> Option<u8> {
    match value {
        b"3" => Some(3),
        b"2" => Some(2),
        b"1" => Some(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GRUB's side of the countdown, as keel/grub.cfg does it: one try spent per attempt.
    fn grub_attempt(state: &BootState) -> (Slot, BootState) {
        let mut s = *state;
        if let Phase::Trial { .. } = s.phase() {
            s.tries -= 1;
            return (s.next, s);
        }
        (s.good, s)
    }

    #[test]
    fn trial_that_never_comes_up_falls_back_after_its_tries_and_is_recorded() {
        let armed = BootState::factory().arm_trial(Slot::B, 3).unwrap();
        let mut s = armed;
        let mut booted = Vec::new();
        for _ in 0..4 {
            let (slot, after) = grub_attempt(&s);
            booted.push(slot);
            s = after;
        }
        assert_eq!(booted, vec![Slot::B, Slot::B, Slot::B, Slot::A]);
        assert_eq!(s.phase(), Phase::Failed { slot: Slot::B });
        let (after, outcome) = s.mark_good(Slot::A);
        assert_eq!(outcome, MarkOutcome::RollbackRecorded(Slot::B));
        assert_eq!(after.phase(), Phase::Committed);
        assert_eq!(after.failed, Some(Slot::B));
        assert_eq!(after.boots_next(), Slot::A);
    }

    #[test]
    fn trial_that_comes_up_is_committed() {
        let armed = BootState::factory().arm_trial(Slot::B, 3).unwrap();
        let (slot, spent) = grub_attempt(&armed);
        assert_eq!(slot, Slot::B);
        let (after, outcome) = spent.mark_good(Slot::B);
        assert_eq!(outcome, MarkOutcome::TrialCommitted(Slot::B));
        assert_eq!((after.good, after.next, after.tries), (Slot::B, Slot::B, 0));
    }

    #[test]
    fn fallback_within_the_same_power_on_is_recorded_too() {
        // GRUB failed to load B's kernel and fell back to A with tries still left.
        let armed = BootState::factory().arm_trial(Slot::B, 3).unwrap();
        let (_, spent) = grub_attempt(&armed);
        let (after, outcome) = spent.mark_good(Slot::A);
        assert_eq!(outcome, MarkOutcome::RollbackRecorded(Slot::B));
        assert_eq!(after.phase(), Phase::Committed);
    }

    #[test]
    fn guarded_arming() {
        let s = BootState::factory();
        assert_eq!(
            s.arm_trial(Slot::A, 3),
            Err(TransitionError::AlreadyGood(Slot::A))
        );
        assert_eq!(s.arm_trial(Slot::B, 0), Err(TransitionError::Tries(0)));
        assert_eq!(s.arm_trial(Slot::B, 4), Err(TransitionError::Tries(4)));
        let failed = BootState {
            failed: Some(Slot::B),
            ..s
        };
        assert_eq!(failed.arm_trial(Slot::B, 2).unwrap().failed, None);
    }

    #[test]
    fn variables_are_read_as_grub_compares_them() {
        let s = BootState::factory().arm_trial(Slot::B, 2).unwrap();
        let vars = s.to_vars();
        let get = |n: &str| vars.iter().find(|(v, _)| *v == n).unwrap().1.as_bytes();
        assert_eq!(
            BootState::from_grub(
                s.good,
                get("keel_next"),
                get("keel_tries"),
                get("keel_failed")
            ),
            s
        );
        let read = |next: &str, tries: &str| {
            BootState::from_grub(Slot::A, next.as_bytes(), tries.as_bytes(), b"")
        };
        // GRUB spends only "3", "2", "1": anything else is a spent trial, A boots.
        for tries in ["03", "4", "0", "", " 3", "3 ", "+3"] {
            let s = read("B", tries);
            assert_eq!(s.phase(), Phase::Failed { slot: Slot::B }, "{tries:?}");
            assert_eq!(s.boots_next(), Slot::A);
        }
        // A next that is not exactly A or B is nothing to try.
        for next in ["b", " B", "B ", "B\r", "", "C"] {
            assert_eq!(read(next, "3").phase(), Phase::Committed, "{next:?}");
        }
        assert_eq!(
            read("B", "1").phase(),
            Phase::Trial {
                slot: Slot::B,
                tries: 1
            }
        );
        assert_eq!(read("A", "3").phase(), Phase::Committed);
        assert_eq!(grub_slot(b"a"), None);
        assert_eq!(BootState::from_grub(Slot::B, b"B", b"0", b"a").failed, None);
    }
}
