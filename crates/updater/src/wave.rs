//! Staged rollouts. The publisher gives each release a plan: waves, each a start time and the
//! share of the fleet that may take the release from then on, and a `pulled` flag for a release
//! marked bad. A node's place in the fleet is a fraction in [0, 1) derived from its machine-id,
//! so each wave is the same stable subset of nodes, release after release.
//!
//! ```json
//! {"waves": [{"start": "2024-05-02T00:00:00Z", "share": 0.01},
//!            {"start": "2024-05-03T00:00:00Z", "share": 0.25},
//!            {"start": "2024-05-06T00:00:00Z", "share": 1.0}],
//!  "pulled": false}
//! ```
//!
//! A plan without waves lets every node take the release at once. Unknown fields are ignored,
//! so a publisher can add fields without stranding older nodes.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::utc::UtcTime;

/// Mixed into the machine-id hash so the fraction cannot be turned back into the machine-id
/// and is unrelated to other tools' hashes of it.
const DOMAIN: &[u8] = b"keel-updater rollout wave v1\0";

/// A node's place in the fleet, in [0, 1).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct NodeFraction(f64);

impl NodeFraction {
    /// The fraction of a node from the contents of `/etc/machine-id` (surrounding whitespace
    /// ignored): the first 53 bits of SHA-256 over a fixed prefix and the id.
    pub fn of_machine_id(machine_id: &str) -> NodeFraction {
        let digest = Sha256::new()
            .chain_update(DOMAIN)
            .chain_update(machine_id.trim().as_bytes())
            .finalize();
        let top = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
        NodeFraction((top >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// A given fraction (tests, an operator's override); `None` outside [0, 1).
    pub fn new(value: f64) -> Option<NodeFraction> {
        (0.0..1.0).contains(&value).then_some(NodeFraction(value))
    }

    /// The value, in [0, 1).
    pub fn value(self) -> f64 {
        self.0
    }
}

/// One wave of a rollout: from `start` on, nodes whose fraction is below `share` may update.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    /// When the wave opens.
    pub start: UtcTime,
    /// The share of the fleet that may take the release from `start` on, 0.0 to 1.0 (the
    /// total so far, not this wave's increment).
    pub share: f64,
}

/// A release's rollout plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RolloutPlan {
    /// Waves in order of start time, with growing shares; none means everyone at once.
    #[serde(default)]
    pub waves: Vec<Wave>,
    /// Marked bad by the publisher: nodes that have not taken it skip it.
    #[serde(default)]
    pub pulled: bool,
}

/// A plan that cannot be followed.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Not JSON of the plan's shape.
    #[error("rollout plan: {0}")]
    Json(#[from] serde_json::Error),
    /// A share outside 0.0..=1.0.
    #[error("rollout plan: wave {index} has share {share}; shares are 0.0 to 1.0")]
    Share {
        /// The wave's position, from 0.
        index: usize,
        /// Its share.
        share: f64,
    },
    /// Waves out of order, or a later wave with a smaller share.
    #[error("rollout plan: wave {index} must start after wave {prev} and not shrink its share")]
    Order {
        /// The wave's position, from 0.
        index: usize,
        /// The wave before it.
        prev: usize,
    },
}

/// Whether a node may take a release now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Eligibility {
    /// It may.
    Eligible,
    /// The publisher pulled the release.
    Pulled,
    /// Not yet: its wave opens at `from`, or never under this plan (`None`).
    Waiting {
        /// The start of the first wave that includes the node.
        from: Option<UtcTime>,
    },
}

impl RolloutPlan {
    /// Parse and check a plan.
    pub fn from_json(text: &str) -> Result<RolloutPlan, PlanError> {
        let plan: RolloutPlan = serde_json::from_str(text)?;
        plan.validate()?;
        Ok(plan)
    }

    /// Shares within 0.0..=1.0; starts strictly increasing; shares never decreasing.
    pub fn validate(&self) -> Result<(), PlanError> {
        for (index, w) in self.waves.iter().enumerate() {
            if !(0.0..=1.0).contains(&w.share) {
                return Err(PlanError::Share {
                    index,
                    share: w.share,
                });
            }
            if index > 0 {
                let prev = &self.waves[index - 1];
                if w.start <= prev.start || w.share < prev.share {
                    return Err(PlanError::Order {
                        index,
                        prev: index - 1,
                    });
                }
            }
        }
        Ok(())
    }

    /// The share of the fleet allowed at `now` (1.0 for a plan without waves).
    pub fn share_at(&self, now: UtcTime) -> f64 {
        if self.waves.is_empty() {
            return 1.0;
        }
        self.waves
            .iter()
            .take_while(|w| w.start <= now)
            .map(|w| w.share)
            .fold(0.0, f64::max)
    }
}

/// Whether the node at `node` may take the release planned by `plan` at `now`.
pub fn eligible(plan: &RolloutPlan, node: NodeFraction, now: UtcTime) -> Eligibility {
    if plan.pulled {
        return Eligibility::Pulled;
    }
    if node.value() < plan.share_at(now) {
        return Eligibility::Eligible;
    }
    Eligibility::Waiting {
        from: plan
            .waves
            .iter()
            .find(|w| w.start > now && node.value() < w.share)
            .map(|w| w.start),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(s: &str) -> UtcTime {
        s.parse().unwrap()
    }

    fn plan() -> RolloutPlan {
        RolloutPlan::from_json(
            r#"{"waves": [{"start": "2024-05-02T00:00:00Z", "share": 0.01},
                          {"start": "2024-05-03T00:00:00Z", "share": 0.25},
                          {"start": "2024-05-06T00:00:00Z", "share": 1.0}]}"#,
        )
        .unwrap()
    }

    struct Case {
        name: &'static str,
        input: (RolloutPlan, f64, &'static str),
        want: Eligibility,
    }

    #[test]
    fn waves_open_in_turn() {
        let pulled = RolloutPlan {
            pulled: true,
            ..plan()
        };
        let cases = [
            Case {
                name: "before the first wave",
                input: (plan(), 0.001, "2024-05-01T23:59:59Z"),
                want: Eligibility::Waiting {
                    from: Some(at("2024-05-02T00:00:00Z")),
                },
            },
            Case {
                name: "first wave, inside",
                input: (plan(), 0.001, "2024-05-02T00:00:00Z"),
                want: Eligibility::Eligible,
            },
            Case {
                name: "first wave, outside: waits for the second",
                input: (plan(), 0.1, "2024-05-02T12:00:00Z"),
                want: Eligibility::Waiting {
                    from: Some(at("2024-05-03T00:00:00Z")),
                },
            },
            Case {
                name: "the share's edge is outside",
                input: (plan(), 0.25, "2024-05-04T00:00:00Z"),
                want: Eligibility::Waiting {
                    from: Some(at("2024-05-06T00:00:00Z")),
                },
            },
            Case {
                name: "everyone in the last wave",
                input: (plan(), 0.999, "2024-05-06T00:00:00Z"),
                want: Eligibility::Eligible,
            },
            Case {
                name: "pulled beats the wave",
                input: (pulled, 0.001, "2024-05-06T00:00:00Z"),
                want: Eligibility::Pulled,
            },
            Case {
                name: "no waves: everyone now",
                input: (RolloutPlan::default(), 0.999, "2024-05-01T00:00:00Z"),
                want: Eligibility::Eligible,
            },
            Case {
                name: "a plan that stops at half",
                input: (
                    RolloutPlan::from_json(
                        r#"{"waves":[{"start":"2024-05-02T00:00:00Z","share":0.5}]}"#,
                    )
                    .unwrap(),
                    0.7,
                    "2024-06-01T00:00:00Z",
                ),
                want: Eligibility::Waiting { from: None },
            },
        ];
        for c in cases {
            let (plan, node, now) = c.input;
            let node = NodeFraction::new(node).unwrap();
            assert_eq!(eligible(&plan, node, at(now)), c.want, "{}", c.name);
        }
    }

    #[test]
    fn refuses_plans_that_cannot_be_followed() {
        let cases = [
            (
                r#"{"waves":[{"start":"2024-05-02T00:00:00Z","share":1.5}]}"#,
                "shares are 0.0 to 1.0",
            ),
            (
                r#"{"waves":[{"start":"2024-05-02T00:00:00Z","share":-0.1}]}"#,
                "shares are 0.0 to 1.0",
            ),
            (
                r#"{"waves":[{"start":"2024-05-03T00:00:00Z","share":0.1},{"start":"2024-05-02T00:00:00Z","share":0.2}]}"#,
                "wave 1 must start after wave 0",
            ),
            (
                r#"{"waves":[{"start":"2024-05-02T00:00:00Z","share":0.5},{"start":"2024-05-03T00:00:00Z","share":0.2}]}"#,
                "not shrink",
            ),
            (
                r#"{"waves":[{"start":1714608000,"share":0.5}]}"#,
                "expected a string",
            ),
            (r#"{"pulled":"yes"}"#, "invalid type"),
        ];
        for (json, want) in cases {
            let err = RolloutPlan::from_json(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        // Fields a later publisher adds do not break this node.
        let later = RolloutPlan::from_json(r#"{"pulled":true,"reason":"bad kernel"}"#).unwrap();
        assert!(later.pulled);
    }

    #[test]
    fn fraction_is_fixed_for_a_machine_id() {
        // A pinned value: changing the hash would reshuffle every fleet's waves.
        let f = NodeFraction::of_machine_id("0123456789abcdef0123456789abcdef\n");
        assert_eq!(
            f,
            NodeFraction::of_machine_id("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(format!("{:.6}", f.value()), PINNED);
    }
    /// Computed independently: SHA-256 of the domain prefix and the id, top 53 bits / 2^53.
    const PINNED: &str = "0.598477";

    #[test]
    fn fractions_spread_evenly() {
        let n = 20_000;
        let mut buckets = [0u32; 10];
        for i in 0..n {
            let id = format!("{:032x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15));
            buckets[(NodeFraction::of_machine_id(&id).value() * 10.0) as usize] += 1;
        }
        // Expected 2000 each, standard deviation about 42: allow 5 of them.
        for (i, b) in buckets.iter().enumerate() {
            assert!(
                (1790..=2210).contains(b),
                "bucket {i}: {b} of {n}: {buckets:?}"
            );
        }
    }

    proptest! {
        #[test]
        fn fraction_in_range_and_stable(id in "[0-9a-f]{32}", pad in "[ \t\n]{0,3}") {
            let f = NodeFraction::of_machine_id(&id);
            prop_assert!((0.0..1.0).contains(&f.value()));
            prop_assert_eq!(f, NodeFraction::of_machine_id(&format!("{pad}{id}{pad}")));
        }

        #[test]
        fn a_wave_keeps_its_nodes(id in "[0-9a-f]{32}", secs in 0i64..30 * 86_400) {
            // Once eligible, a node stays eligible as time passes.
            let node = NodeFraction::of_machine_id(&id);
            let p = plan();
            let now = at("2024-05-01T00:00:00Z").plus(secs);
            if eligible(&p, node, now) == Eligibility::Eligible {
                prop_assert_eq!(eligible(&p, node, now.plus(86_400)), Eligibility::Eligible);
            }
        }
    }
}
