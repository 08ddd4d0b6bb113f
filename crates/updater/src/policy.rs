//! Which release to take, if any: a pure function of the running version, the releases the
//! channel offers with their rollout plans, the failed-release record, this node's place in
//! the fleet, the time, and what the operator asked for.
//!
//! Left to itself the node takes the newest release that is newer than the one it runs, not
//! pulled, not failed here before, and open to it under its rollout plan; when the newest is
//! not open yet, an older one that is open is taken meanwhile. It never goes back to an older
//! release unless an operator asks for that version and allows the downgrade. An operator who
//! names a version skips the waves and may retry a release that failed here, but a pulled
//! release is never taken.

use std::fmt;

use crate::state::FailedReleases;
use crate::utc::UtcTime;
use crate::version::Version;
use crate::wave::{eligible, Eligibility, NodeFraction, RolloutPlan};

/// A release the channel offers.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Its version.
    pub version: Version,
    /// Its rollout plan.
    pub plan: RolloutPlan,
}

/// What is asked of the updater.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// The newest release this node may take (the daemon; `updater update`).
    Newest {
        /// Take it even if this node's wave has not opened (`updater update --now`).
        ignore_waves: bool,
    },
    /// Exactly this version (`updater update --version V`).
    Version {
        /// The version.
        version: Version,
        /// Allow a version older than the running one.
        allow_downgrade: bool,
    },
}

impl Request {
    /// The daemon's request.
    pub const AUTOMATIC: Request = Request::Newest {
        ignore_waves: false,
    };
}

/// Why a release was passed over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// The publisher pulled it.
    Pulled,
    /// It failed here before.
    Failed {
        /// The recorded reason.
        why: String,
    },
    /// Its rollout has not reached this node: it opens at `from`, or never under this plan.
    NotYet {
        /// When this node's wave opens.
        from: Option<UtcTime>,
    },
}

/// A release passed over, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skip {
    /// The release.
    pub version: Version,
    /// Why.
    pub reason: SkipReason,
}

/// Why a release is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TakeReason {
    /// The newest newer release open to this node.
    Newest,
    /// The operator asked for it (waves not consulted).
    Requested {
        /// It had failed here before; the operator retries it.
        retry: bool,
    },
    /// The operator asked for this older version and allowed the downgrade.
    Downgrade,
}

/// Why nothing is taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StayReason {
    /// Nothing newer than the running release is offered.
    UpToDate {
        /// The newest release offered, if any (older than the running one when it is ahead).
        newest: Option<Version>,
    },
    /// Newer releases exist but none is open to this node yet; check again at `from`.
    Waiting {
        /// The newest of them.
        version: Version,
        /// The earliest time one of them opens to this node.
        from: Option<UtcTime>,
    },
    /// Every newer release was pulled or failed here.
    AllSkipped,
    /// The operator asked for the running version.
    RequestedIsRunning,
    /// The operator asked for a version the channel does not offer.
    RequestedNotOffered,
    /// The operator asked for a pulled release.
    RequestedPulled,
    /// The operator asked for an older version without allowing a downgrade.
    RequestedOlder,
}

/// What to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Download and stage `version`.
    Take {
        /// The release.
        version: Version,
        /// Why.
        reason: TakeReason,
    },
    /// Take nothing.
    Stay {
        /// Why.
        reason: StayReason,
    },
}

/// The decision, with the releases passed over on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Newer releases passed over, newest first.
    pub skipped: Vec<Skip>,
}

/// What the decision is made from.
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    /// The running release.
    pub running: &'a Version,
    /// The releases the channel offers, in any order.
    pub offered: &'a [Candidate],
    /// Releases that failed here.
    pub failed: &'a FailedReleases,
    /// This node's place in the fleet.
    pub node: NodeFraction,
    /// The time.
    pub now: UtcTime,
}

/// Decide which release to take.
pub fn decide(inputs: &Inputs, request: &Request) -> Decision {
    match request {
        Request::Newest { ignore_waves } => newest(inputs, *ignore_waves),
        Request::Version {
            version,
            allow_downgrade,
        } => requested(inputs, version, *allow_downgrade),
    }
}

fn stay(reason: StayReason, skipped: Vec<Skip>) -> Decision {
    Decision {
        action: Action::Stay { reason },
        skipped,
    }
}

fn newest(inputs: &Inputs, ignore_waves: bool) -> Decision {
    let mut newer: Vec<&Candidate> = inputs
        .offered
        .iter()
        .filter(|c| c.version > *inputs.running)
        .collect();
    newer.sort_by(|a, b| b.version.cmp(&a.version));
    newer.dedup_by(|a, b| a.version == b.version);
    let mut skipped = Vec::new();
    for c in &newer {
        let reason = if c.plan.pulled {
            SkipReason::Pulled
        } else if let Some(f) = inputs.failed.get(&c.version) {
            SkipReason::Failed { why: f.why.clone() }
        } else if ignore_waves {
            return take(c, TakeReason::Newest, skipped);
        } else {
            match eligible(&c.plan, inputs.node, inputs.now) {
                Eligibility::Eligible => return take(c, TakeReason::Newest, skipped),
                Eligibility::Pulled => SkipReason::Pulled,
                Eligibility::Waiting { from } => SkipReason::NotYet { from },
            }
        };
        skipped.push(Skip {
            version: c.version.clone(),
            reason,
        });
    }
    if newer.is_empty() {
        let newest = inputs.offered.iter().map(|c| &c.version).max().cloned();
        return stay(StayReason::UpToDate { newest }, skipped);
    }
    let waiting = skipped.iter().filter_map(|s| match s.reason {
        SkipReason::NotYet { from } => Some((&s.version, from)),
        _ => None,
    });
    let version = waiting.clone().map(|(v, _)| v).next().cloned();
    let from = waiting.filter_map(|(_, from)| from).min();
    match version {
        Some(version) => stay(StayReason::Waiting { version, from }, skipped),
        None => stay(StayReason::AllSkipped, skipped),
    }
}

fn take(c: &Candidate, reason: TakeReason, skipped: Vec<Skip>) -> Decision {
    Decision {
        action: Action::Take {
            version: c.version.clone(),
            reason,
        },
        skipped,
    }
}

fn requested(inputs: &Inputs, version: &Version, allow_downgrade: bool) -> Decision {
    let Some(c) = inputs.offered.iter().find(|c| c.version == *version) else {
        return stay(StayReason::RequestedNotOffered, vec![]);
    };
    if c.version == *inputs.running {
        return stay(StayReason::RequestedIsRunning, vec![]);
    }
    if c.plan.pulled {
        return stay(StayReason::RequestedPulled, vec![]);
    }
    if c.version < *inputs.running {
        return if allow_downgrade {
            take(c, TakeReason::Downgrade, vec![])
        } else {
            stay(StayReason::RequestedOlder, vec![])
        };
    }
    let retry = inputs.failed.get(&c.version).is_some();
    take(c, TakeReason::Requested { retry }, vec![])
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Pulled => write!(f, "pulled by the publisher"),
            SkipReason::Failed { why } => write!(f, "failed here before ({why})"),
            SkipReason::NotYet { from: Some(t) } => write!(f, "opens to this node at {t}"),
            SkipReason::NotYet { from: None } => write!(f, "its rollout does not reach this node"),
        }
    }
}

impl fmt::Display for Decision {
    /// One line for a log or `updater update`: what, why, and what was passed over.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.action {
            Action::Take { version, reason } => {
                write!(f, "take {version}: ")?;
                match reason {
                    TakeReason::Newest => write!(f, "the newest release open to this node")?,
                    TakeReason::Requested { retry: false } => write!(f, "requested")?,
                    TakeReason::Requested { retry: true } => {
                        write!(f, "requested (it failed here before; trying again)")?
                    }
                    TakeReason::Downgrade => write!(f, "requested downgrade")?,
                }
            }
            Action::Stay { reason } => {
                write!(f, "stay: ")?;
                match reason {
                    StayReason::UpToDate { newest: None } => {
                        write!(f, "the channel offers no release")?
                    }
                    StayReason::UpToDate { newest: Some(v) } => {
                        write!(f, "up to date (the channel's newest is {v})")?
                    }
                    StayReason::Waiting { version, from } => {
                        write!(f, "{version} is not open to this node yet")?;
                        if let Some(t) = from {
                            write!(f, " (from {t})")?;
                        }
                    }
                    StayReason::AllSkipped => write!(f, "no newer release may be taken")?,
                    StayReason::RequestedIsRunning => write!(f, "that version is running")?,
                    StayReason::RequestedNotOffered => {
                        write!(f, "the channel does not offer that version")?
                    }
                    StayReason::RequestedPulled => {
                        write!(f, "that release was pulled by the publisher")?
                    }
                    StayReason::RequestedOlder => write!(
                        f,
                        "that version is older than the running one; allow a downgrade to take it"
                    )?,
                }
            }
        }
        for s in &self.skipped {
            write!(f, "; skipped {}: {}", s.version, s.reason)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
