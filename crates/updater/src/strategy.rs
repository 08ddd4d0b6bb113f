//! When a node with a staged update may reboot into it: a pure function of the reboot
//! strategy, the reboot window, what the node knows of its reboot lock, and the time.
//!
//!  * `reboot`: as soon as the update is staged (and the window, if any, is open).
//!  * `etcd-lock`: take locksmith's semaphore in etcd first; release it only once the new slot
//!    is marked good (or a rollback is recorded). With etcd unreachable the node waits and
//!    keeps running.
//!  * `fleetlock`: the FleetLock protocol as Zincati speaks it: `pre-reboot` before,
//!    `steady-state` once the node is healthy again.
//!  * `off`: never reboot by itself.
//!
//! The lock is only taken while the window is open, and a lock held while the window is shut
//! is given back, so one node waiting for its window never blocks the rest of the fleet
//! (flatcar/Flatcar#408). The lock services themselves sit behind [`Lock`]; [`MemorySemaphore`]
//! is an in-memory one with locksmith's and FleetLock's semantics (recursive acquire,
//! idempotent release) for tests.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::utc::UtcTime;
use crate::window::Window;

/// The `REBOOT_STRATEGY` of update.conf, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RebootStrategy {
    /// Reboot as soon as the update is staged.
    Reboot,
    /// Take locksmith's semaphore in etcd before rebooting.
    EtcdLock,
    /// Take a FleetLock slot before rebooting.
    FleetLock {
        /// The FleetLock server's base URL, ending in `/` (`v1/pre-reboot` is joined to it).
        url: String,
        /// The FleetLock group (`default` unless `FLEETLOCK_GROUP=` says otherwise).
        group: String,
    },
    /// Stage nothing automatically and never reboot; `updater update` stages by hand.
    Off,
}

impl RebootStrategy {
    /// Whether a reboot needs a lock from a coordinator.
    pub fn needs_lock(&self) -> bool {
        matches!(
            self,
            RebootStrategy::EtcdLock | RebootStrategy::FleetLock { .. }
        )
    }
}

impl fmt::Display for RebootStrategy {
    /// The update.conf spelling: `reboot`, `etcd-lock`, `fleetlock`, `off`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RebootStrategy::Reboot => "reboot",
            RebootStrategy::EtcdLock => "etcd-lock",
            RebootStrategy::FleetLock { .. } => "fleetlock",
            RebootStrategy::Off => "off",
        })
    }
}

/// What the node knows of its reboot lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockState {
    /// This node holds a slot.
    Held,
    /// Not held, not asked for yet (or given back).
    NotHeld,
    /// Asked for; every slot is taken by other nodes.
    Busy,
    /// Asked for; the lock service could not be reached or refused the request.
    Unavailable,
}

impl LockState {
    /// The state after an [`Lock::acquire`] call.
    pub fn after_acquire(result: &Result<Acquired, LockError>) -> LockState {
        match result {
            Ok(Acquired::Held) => LockState::Held,
            Ok(Acquired::Busy) => LockState::Busy,
            Err(_) => LockState::Unavailable,
        }
    }
}

/// The next step toward rebooting into a staged update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RebootStep {
    /// Reboot now.
    Reboot,
    /// The window is shut: wait for it to open at `until`. With `release_lock`, a lock this
    /// node holds is to be given back meanwhile.
    WaitForWindow {
        /// The window's next opening.
        until: UtcTime,
        /// Give back the lock held now.
        release_lock: bool,
    },
    /// The window is open but the lock is not held: ask for it (again, after a back-off when
    /// it was busy or unavailable).
    WaitForLock,
    /// Do not reboot (strategy `off`).
    Stay,
}

/// The reboot step for a node with a staged update.
pub fn reboot_step(
    strategy: &RebootStrategy,
    window: Option<&Window>,
    lock: LockState,
    now: UtcTime,
) -> RebootStep {
    if *strategy == RebootStrategy::Off {
        return RebootStep::Stay;
    }
    if let Some(w) = window {
        if !w.is_open(now) {
            return RebootStep::WaitForWindow {
                until: w.next_opening(now),
                release_lock: lock == LockState::Held,
            };
        }
    }
    if !strategy.needs_lock() || lock == LockState::Held {
        RebootStep::Reboot
    } else {
        RebootStep::WaitForLock
    }
}

/// How far the booted slot has got after a reboot into an update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootOutcome {
    /// Health checks have not finished; the slot is on trial.
    Pending,
    /// The slot was marked good.
    MarkedGood,
    /// The trial failed; GRUB came back to the old slot and the failure is recorded.
    RolledBack,
}

/// Whether to give back the reboot lock now, after a boot. The lock is released once the boot
/// has an outcome, never while the new slot is still on trial, and whatever the window says.
/// Releasing is idempotent in both protocols, so a node that holds nothing may release too
/// (Zincati reports `steady-state` at every start).
pub fn release_after_boot(strategy: &RebootStrategy, boot: BootOutcome) -> bool {
    strategy.needs_lock() && boot != BootOutcome::Pending
}

/// An acquired lock, or the reason it was not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acquired {
    /// This node holds a slot (also when it already did).
    Held,
    /// All slots are taken by other nodes.
    Busy,
}

/// A lock service's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockError {
    /// The service could not be reached (etcd down, network, timeout).
    #[error("lock service unreachable: {0}")]
    Unreachable(String),
    /// The service answered with an error (FleetLock `{kind, value}`, an etcd refusal).
    #[error("lock service refused: {kind}: {value}")]
    Refused {
        /// A short, fixed label (`invalid_client_identity`, `unknown_group`, …).
        kind: String,
        /// The human-readable detail.
        value: String,
    },
}

/// The reboot lock seam: locksmith's etcd semaphore or a FleetLock server. Both calls are
/// idempotent: acquiring a held lock succeeds, releasing a free one succeeds.
pub trait Lock {
    /// Take a slot for this node (`pre-reboot`).
    fn acquire(&mut self) -> Result<Acquired, LockError>;
    /// Give this node's slot back (`steady-state`).
    fn release(&mut self) -> Result<(), LockError>;
}

#[derive(Debug)]
struct Semaphore {
    max: usize,
    holders: BTreeSet<String>,
    reachable: bool,
}

/// An in-memory counting semaphore shared by several nodes' [`MemoryLock`]s, for tests.
#[derive(Clone, Debug)]
pub struct MemorySemaphore(Arc<Mutex<Semaphore>>);

impl MemorySemaphore {
    /// A semaphore with `max` slots, reachable.
    pub fn new(max: usize) -> Self {
        MemorySemaphore(Arc::new(Mutex::new(Semaphore {
            max,
            holders: BTreeSet::new(),
            reachable: true,
        })))
    }

    /// The lock as node `id` sees it.
    pub fn lock_for(&self, id: &str) -> MemoryLock {
        MemoryLock {
            sem: self.clone(),
            id: id.to_string(),
        }
    }

    /// Make the service reachable or not (etcd down, a partition).
    pub fn set_reachable(&self, reachable: bool) {
        self.0.lock().expect("semaphore").reachable = reachable;
    }

    /// The nodes holding a slot, sorted.
    pub fn holders(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("semaphore")
            .holders
            .iter()
            .cloned()
            .collect()
    }
}

/// One node's handle on a [`MemorySemaphore`].
#[derive(Clone, Debug)]
pub struct MemoryLock {
    sem: MemorySemaphore,
    id: String,
}

impl Lock for MemoryLock {
    fn acquire(&mut self) -> Result<Acquired, LockError> {
        let mut s = self.sem.0.lock().expect("semaphore");
        if !s.reachable {
            return Err(LockError::Unreachable("connection refused".to_string()));
        }
        if s.holders.contains(&self.id) {
            return Ok(Acquired::Held);
        }
        if s.holders.len() >= s.max {
            return Ok(Acquired::Busy);
        }
        s.holders.insert(self.id.clone());
        Ok(Acquired::Held)
    }

    fn release(&mut self) -> Result<(), LockError> {
        let mut s = self.sem.0.lock().expect("semaphore");
        if !s.reachable {
            return Err(LockError::Unreachable("connection refused".to_string()));
        }
        s.holders.remove(&self.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> UtcTime {
        s.parse().unwrap()
    }

    fn fleetlock() -> RebootStrategy {
        RebootStrategy::FleetLock {
            url: "http://lock.example/".to_string(),
            group: "default".to_string(),
        }
    }

    struct Case {
        name: &'static str,
        input: (
            RebootStrategy,
            Option<(&'static str, &'static str)>,
            LockState,
            &'static str,
        ),
        want: RebootStep,
    }

    #[test]
    fn reboot_steps() {
        use LockState::*;
        use RebootStrategy::*;
        // 2024-05-02 is a Thursday.
        let thu = Some(("Thu 04:00", "1h"));
        let next_thu = RebootStep::WaitForWindow {
            until: at("2024-05-09T04:00:00Z"),
            release_lock: false,
        };
        let cases = [
            Case {
                name: "reboot, no window",
                input: (Reboot, None, NotHeld, "2024-05-02T12:00:00Z"),
                want: RebootStep::Reboot,
            },
            Case {
                name: "reboot, window open",
                input: (Reboot, thu, NotHeld, "2024-05-02T04:30:00Z"),
                want: RebootStep::Reboot,
            },
            Case {
                name: "reboot, window shut",
                input: (Reboot, thu, NotHeld, "2024-05-02T12:00:00Z"),
                want: next_thu,
            },
            Case {
                name: "off stays, even in the window",
                input: (Off, thu, Held, "2024-05-02T04:30:00Z"),
                want: RebootStep::Stay,
            },
            Case {
                name: "etcd-lock, not asked yet",
                input: (EtcdLock, None, NotHeld, "2024-05-02T12:00:00Z"),
                want: RebootStep::WaitForLock,
            },
            Case {
                name: "etcd-lock, busy",
                input: (EtcdLock, None, Busy, "2024-05-02T12:00:00Z"),
                want: RebootStep::WaitForLock,
            },
            Case {
                name: "etcd-lock, etcd unreachable: wait, keep running",
                input: (EtcdLock, thu, Unavailable, "2024-05-02T04:30:00Z"),
                want: RebootStep::WaitForLock,
            },
            Case {
                name: "etcd-lock, held, window open",
                input: (EtcdLock, thu, Held, "2024-05-02T04:59:59Z"),
                want: RebootStep::Reboot,
            },
            Case {
                name: "etcd-lock, window shut: no lock asked for",
                input: (EtcdLock, thu, NotHeld, "2024-05-02T05:00:00Z"),
                want: next_thu,
            },
            Case {
                name: "fleetlock, held but window shut: give it back",
                input: (fleetlock(), thu, Held, "2024-05-02T05:00:00Z"),
                want: RebootStep::WaitForWindow {
                    until: at("2024-05-09T04:00:00Z"),
                    release_lock: true,
                },
            },
            Case {
                name: "fleetlock, held",
                input: (fleetlock(), None, Held, "2024-05-02T05:00:00Z"),
                want: RebootStep::Reboot,
            },
        ];
        for c in cases {
            let (strategy, window, lock, now) = c.input;
            let window = window.map(|(s, l)| Window::parse(s, l).unwrap());
            assert_eq!(
                reboot_step(&strategy, window.as_ref(), lock, at(now)),
                c.want,
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn lock_released_only_once_the_boot_has_an_outcome() {
        use BootOutcome::*;
        for (strategy, boot, want) in [
            (RebootStrategy::EtcdLock, Pending, false),
            (RebootStrategy::EtcdLock, MarkedGood, true),
            (RebootStrategy::EtcdLock, RolledBack, true),
            (fleetlock(), MarkedGood, true),
            (RebootStrategy::Reboot, MarkedGood, false),
            (RebootStrategy::Off, RolledBack, false),
        ] {
            assert_eq!(
                release_after_boot(&strategy, boot),
                want,
                "{strategy} {boot:?}"
            );
        }
    }

    #[test]
    fn two_nodes_take_turns_through_one_slot() {
        let sem = MemorySemaphore::new(1);
        let (mut a, mut b) = (sem.lock_for("node-a"), sem.lock_for("node-b"));
        let now = at("2024-05-02T12:00:00Z");
        let step = |lock| reboot_step(&RebootStrategy::EtcdLock, None, lock, now);

        assert_eq!(step(LockState::NotHeld), RebootStep::WaitForLock);
        let a_state = LockState::after_acquire(&a.acquire());
        assert_eq!(step(a_state), RebootStep::Reboot);
        let b_state = LockState::after_acquire(&b.acquire());
        assert_eq!(
            (b_state, step(b_state)),
            (LockState::Busy, RebootStep::WaitForLock)
        );
        // Recursive: asking again while holding is fine.
        assert_eq!(a.acquire(), Ok(Acquired::Held));
        assert_eq!(sem.holders(), ["node-a"]);

        // A reboots; etcd is down when it comes back, so the release must wait.
        sem.set_reachable(false);
        assert!(release_after_boot(
            &RebootStrategy::EtcdLock,
            BootOutcome::MarkedGood
        ));
        assert!(matches!(a.release(), Err(LockError::Unreachable(_))));
        assert_eq!(
            LockState::after_acquire(&b.acquire()),
            LockState::Unavailable
        );
        sem.set_reachable(true);
        assert_eq!(a.release(), Ok(()));
        assert_eq!(a.release(), Ok(()), "releasing twice is fine");
        assert_eq!(LockState::after_acquire(&b.acquire()), LockState::Held);
        assert_eq!(sem.holders(), ["node-b"]);
    }
}
