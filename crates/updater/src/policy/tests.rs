use super::*;
use crate::wave::Wave;

const NOW: &str = "2024-05-02T12:00:00Z";

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn at(s: &str) -> UtcTime {
    s.parse().unwrap()
}

/// Open to everyone.
fn open(version: &str) -> Candidate {
    Candidate {
        version: v(version),
        plan: RolloutPlan::default(),
    }
}

fn pulled(version: &str) -> Candidate {
    Candidate {
        version: v(version),
        plan: RolloutPlan {
            waves: vec![],
            pulled: true,
        },
    }
}

/// 10 % of the fleet since yesterday, everyone from `all_from`.
fn staged_rollout(version: &str, all_from: &str) -> Candidate {
    Candidate {
        version: v(version),
        plan: RolloutPlan {
            waves: vec![
                Wave {
                    start: at("2024-05-01T00:00:00Z"),
                    share: 0.1,
                },
                Wave {
                    start: at(all_from),
                    share: 1.0,
                },
            ],
            pulled: false,
        },
    }
}

fn newest() -> Request {
    Request::AUTOMATIC
}

fn version(s: &str, allow_downgrade: bool) -> Request {
    Request::Version {
        version: v(s),
        allow_downgrade,
    }
}

struct Case {
    name: &'static str,
    input: (
        &'static str,
        Vec<Candidate>,
        &'static [&'static str],
        f64,
        Request,
    ),
    want: &'static str,
}

#[test]
fn decisions() {
    let cases = [
        Case {
            name: "empty channel",
            input: ("1.0.0", vec![], &[], 0.5, newest()),
            want: "stay: the channel offers no release",
        },
        Case {
            name: "up to date",
            input: ("1.1.0", vec![open("1.0.0"), open("1.1.0")], &[], 0.5, newest()),
            want: "stay: up to date (the channel's newest is 1.1.0)",
        },
        Case {
            name: "ahead of the channel (switched to an older channel): no downgrade",
            input: ("2.0.0", vec![open("1.0.0"), open("1.1.0")], &[], 0.5, newest()),
            want: "stay: up to date (the channel's newest is 1.1.0)",
        },
        Case {
            name: "the newest, whatever the order offered",
            input: ("1.0.0", vec![open("1.2.0"), open("1.10.0"), open("1.1.0")], &[], 0.5, newest()),
            want: "take 1.10.0: the newest release open to this node",
        },
        Case {
            name: "a pulled release is skipped for the one before it",
            input: ("1.0.0", vec![open("1.1.0"), pulled("1.2.0")], &[], 0.5, newest()),
            want: "take 1.1.0: the newest release open to this node; skipped 1.2.0: pulled by the publisher",
        },
        Case {
            name: "a failed release is not tried again",
            input: ("1.0.0", vec![open("1.1.0"), open("1.2.0")], &["1.2.0"], 0.5, newest()),
            want: "take 1.1.0: the newest release open to this node; skipped 1.2.0: failed here before (rolled back)",
        },
        Case {
            name: "inside the first wave",
            input: ("1.0.0", vec![staged_rollout("1.1.0", "2024-05-06T00:00:00Z")], &[], 0.05, newest()),
            want: "take 1.1.0: the newest release open to this node",
        },
        Case {
            name: "outside the wave: wait, and say until when",
            input: ("1.0.0", vec![staged_rollout("1.1.0", "2024-05-06T00:00:00Z")], &[], 0.5, newest()),
            want: "stay: 1.1.0 is not open to this node yet (from 2024-05-06T00:00:00Z); skipped 1.1.0: opens to this node at 2024-05-06T00:00:00Z",
        },
        Case {
            name: "the newest is still rolling out: take the one before it meanwhile",
            input: (
                "1.0.0",
                vec![open("1.1.0"), staged_rollout("1.2.0", "2024-05-06T00:00:00Z")],
                &[],
                0.5,
                newest(),
            ),
            want: "take 1.1.0: the newest release open to this node; skipped 1.2.0: opens to this node at 2024-05-06T00:00:00Z",
        },
        Case {
            name: "waiting: the earliest opening is when to look again",
            input: (
                "1.0.0",
                vec![staged_rollout("1.1.0", "2024-05-04T00:00:00Z"), staged_rollout("1.2.0", "2024-05-06T00:00:00Z"), pulled("1.3.0")],
                &[],
                0.5,
                newest(),
            ),
            want: "stay: 1.2.0 is not open to this node yet (from 2024-05-04T00:00:00Z); skipped 1.3.0: pulled by the publisher; skipped 1.2.0: opens to this node at 2024-05-06T00:00:00Z; skipped 1.1.0: opens to this node at 2024-05-04T00:00:00Z",
        },
        Case {
            name: "all newer pulled or failed",
            input: ("1.0.0", vec![pulled("1.1.0"), open("1.2.0")], &["1.2.0"], 0.5, newest()),
            want: "stay: no newer release may be taken; skipped 1.2.0: failed here before (rolled back); skipped 1.1.0: pulled by the publisher",
        },
        Case {
            name: "by hand, now: waves ignored, pulled and failed still skipped",
            input: (
                "1.0.0",
                vec![staged_rollout("1.1.0", "2024-05-06T00:00:00Z"), pulled("1.2.0")],
                &[],
                0.5,
                Request::Newest { ignore_waves: true },
            ),
            want: "take 1.1.0: the newest release open to this node; skipped 1.2.0: pulled by the publisher",
        },
        Case {
            name: "a named version skips the waves",
            input: ("1.0.0", vec![staged_rollout("1.1.0", "2024-05-06T00:00:00Z")], &[], 0.5, version("1.1.0", false)),
            want: "take 1.1.0: requested",
        },
        Case {
            name: "a named version that failed is retried",
            input: ("1.0.0", vec![open("1.1.0")], &["1.1.0"], 0.5, version("1.1", false)),
            want: "take 1.1.0: requested (it failed here before; trying again)",
        },
        Case {
            name: "a named pulled version is refused",
            input: ("1.0.0", vec![pulled("1.1.0")], &[], 0.5, version("1.1.0", true)),
            want: "stay: that release was pulled by the publisher",
        },
        Case {
            name: "an older version needs the operator's consent",
            input: ("1.1.0", vec![open("1.0.0"), open("1.1.0")], &[], 0.5, version("1.0.0", false)),
            want: "stay: that version is older than the running one; allow a downgrade to take it",
        },
        Case {
            name: "a downgrade the operator allowed",
            input: ("1.1.0", vec![open("1.0.0"), open("1.1.0")], &[], 0.5, version("1.0.0", true)),
            want: "take 1.0.0: requested downgrade",
        },
        Case {
            name: "the running version",
            input: ("1.1.0", vec![open("1.1.0")], &[], 0.5, version("1.1.0", true)),
            want: "stay: that version is running",
        },
        Case {
            name: "a version not offered",
            input: ("1.1.0", vec![open("1.1.0")], &[], 0.5, version("1.2.0", false)),
            want: "stay: the channel does not offer that version",
        },
        Case {
            name: "a pre-release newer than the running release",
            input: ("1.1.0", vec![open("1.2.0-rc.1"), open("1.1.0")], &[], 0.5, newest()),
            want: "take 1.2.0-rc.1: the newest release open to this node",
        },
    ];
    for c in cases {
        let (running, offered, failed_versions, node, request) = c.input;
        let mut failed = FailedReleases::default();
        for f in failed_versions {
            failed.record(v(f), at("2024-04-01T00:00:00Z"), "rolled back");
        }
        let running = v(running);
        let inputs = Inputs {
            running: &running,
            offered: &offered,
            failed: &failed,
            node: NodeFraction::new(node).unwrap(),
            now: at(NOW),
        };
        assert_eq!(decide(&inputs, &request).to_string(), c.want, "{}", c.name);
    }
}

#[test]
fn waiting_carries_the_time_to_look_again() {
    let running = v("1.0.0");
    let offered = [staged_rollout("1.1.0", "2024-05-06T00:00:00Z")];
    let failed = FailedReleases::default();
    let inputs = Inputs {
        running: &running,
        offered: &offered,
        failed: &failed,
        node: NodeFraction::new(0.5).unwrap(),
        now: at(NOW),
    };
    assert_eq!(
        decide(&inputs, &Request::AUTOMATIC).action,
        Action::Stay {
            reason: StayReason::Waiting {
                version: v("1.1.0"),
                from: Some(at("2024-05-06T00:00:00Z")),
            }
        }
    );
    // The same node takes it once its wave has opened.
    let later = Inputs {
        now: at("2024-05-06T00:00:00Z"),
        ..inputs
    };
    assert_eq!(
        decide(&later, &Request::AUTOMATIC).action,
        Action::Take {
            version: v("1.1.0"),
            reason: TakeReason::Newest,
        }
    );
}
