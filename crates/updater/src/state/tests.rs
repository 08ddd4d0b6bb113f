use super::*;
use UpdateState::*;

fn v(s: &str) -> Version {
    s.parse().unwrap()
}

fn at(s: &str) -> UtcTime {
    s.parse().unwrap()
}

fn dl(version: &str, done: u64, total: u64) -> UpdateState {
    Downloading {
        version: v(version),
        done,
        total,
    }
}

fn staged(version: &str) -> UpdateState {
    Staged {
        version: v(version),
    }
}

fn failed() -> UpdateState {
    Failed {
        why: "disk full".into(),
    }
}

struct Case {
    name: &'static str,
    input: (UpdateState, UpdateState),
    want: bool,
}

fn case(name: &'static str, from: UpdateState, to: UpdateState, want: bool) -> Case {
    Case {
        name,
        input: (from, to),
        want,
    }
}

#[test]
fn transitions() {
    let window = |version: &str| WaitingForWindow {
        version: v(version),
        until: at("2024-05-09T04:00:00Z"),
    };
    let lock = |version: &str| WaitingForLock {
        version: v(version),
    };
    let verifying = |version: &str| Verifying {
        version: v(version),
    };
    let rebooting = |version: &str| Rebooting {
        version: v(version),
    };
    let cases = [
        // The way through.
        case("start a check", Idle, Checking, true),
        case("nothing new", Checking, Idle, true),
        case("found one", Checking, dl("0.2.0", 0, 100), true),
        case("progress", dl("0.2.0", 0, 100), dl("0.2.0", 40, 100), true),
        case(
            "no progress is progress",
            dl("0.2.0", 40, 100),
            dl("0.2.0", 40, 100),
            true,
        ),
        case(
            "all written",
            dl("0.2.0", 40, 100),
            dl("0.2.0", 100, 100),
            true,
        ),
        case("verify", dl("0.2.0", 100, 100), verifying("0.2.0"), true),
        case("stage", verifying("0.2.0"), staged("0.2.0"), true),
        case(
            "wait for the window",
            staged("0.2.0"),
            window("0.2.0"),
            true,
        ),
        case(
            "window opens, wait for the lock",
            window("0.2.0"),
            lock("0.2.0"),
            true,
        ),
        case(
            "window shut while waiting for the lock",
            lock("0.2.0"),
            window("0.2.0"),
            true,
        ),
        case("lock granted", lock("0.2.0"), rebooting("0.2.0"), true),
        case("reboot at once", staged("0.2.0"), rebooting("0.2.0"), true),
        case("strategy now off", window("0.2.0"), staged("0.2.0"), true),
        case(
            "marked good after the reboot",
            rebooting("0.2.0"),
            Idle,
            true,
        ),
        case(
            "pulled before the reboot: unstaged",
            lock("0.2.0"),
            Idle,
            true,
        ),
        case("rolled back", rebooting("0.2.0"), failed(), true),
        case("failed download", dl("0.2.0", 40, 100), failed(), true),
        case("rollback found at boot", Idle, failed(), true),
        case("retry after a failure", failed(), Checking, true),
        case("failure cleared", failed(), Idle, true),
        // Refused.
        case("download without a check", Idle, dl("0.2.0", 0, 100), false),
        case("stage from nothing", Idle, staged("0.2.0"), false),
        case("idle to idle", Idle, Idle, false),
        case("check to verify", Checking, verifying("0.2.0"), false),
        case("check to staged", Checking, staged("0.2.0"), false),
        case(
            "a download that starts half done",
            Checking,
            dl("0.2.0", 5, 100),
            false,
        ),
        case("an empty download", Checking, dl("0.2.0", 0, 0), false),
        case(
            "progress backwards",
            dl("0.2.0", 40, 100),
            dl("0.2.0", 39, 100),
            false,
        ),
        case(
            "past the end",
            dl("0.2.0", 40, 100),
            dl("0.2.0", 101, 100),
            false,
        ),
        case(
            "total changed",
            dl("0.2.0", 40, 100),
            dl("0.2.0", 40, 200),
            false,
        ),
        case(
            "release changed mid-download",
            dl("0.2.0", 40, 100),
            dl("0.3.0", 40, 100),
            false,
        ),
        case(
            "verify a partial download",
            dl("0.2.0", 40, 100),
            verifying("0.2.0"),
            false,
        ),
        case(
            "verify another release",
            dl("0.2.0", 100, 100),
            verifying("0.3.0"),
            false,
        ),
        case(
            "stage without verifying",
            dl("0.2.0", 100, 100),
            staged("0.2.0"),
            false,
        ),
        case(
            "reboot while verifying",
            verifying("0.2.0"),
            rebooting("0.2.0"),
            false,
        ),
        case("abandon a verify silently", verifying("0.2.0"), Idle, false),
        case(
            "staged to downloading",
            staged("0.2.0"),
            dl("0.3.0", 0, 100),
            false,
        ),
        case("staged to checking", staged("0.2.0"), Checking, false),
        case(
            "wait for another release's lock",
            staged("0.2.0"),
            lock("0.3.0"),
            false,
        ),
        case(
            "reboot into another release",
            window("0.2.0"),
            rebooting("0.3.0"),
            false,
        ),
        case("un-reboot", rebooting("0.2.0"), staged("0.2.0"), false),
        case("check while rebooting", rebooting("0.2.0"), Checking, false),
        case(
            "failed straight to download",
            failed(),
            dl("0.2.0", 0, 100),
            false,
        ),
    ];
    for c in cases {
        let (from, to) = c.input;
        let got = from.transition(to.clone());
        assert_eq!(got.is_ok(), c.want, "{}: {from} → {to}", c.name);
        if let Err(e) = got {
            assert_eq!(
                e.to_string(),
                format!("the update cannot go from {from} to {to}")
            );
        }
    }
}

#[test]
fn a_refused_transition_changes_nothing() {
    let mut file = StateFile::default();
    let err = file.transition(staged("0.2.0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the update cannot go from idle to staged 0.2.0"
    );
    assert_eq!(file.state, Idle);
    file.transition(Checking).unwrap();
    assert_eq!(file.state, Checking);
}

#[test]
fn status_words() {
    let cases = [
        (Idle, "idle"),
        (Checking, "checking"),
        (dl("0.2.0", 0, 0), "downloading 0.2.0: 0% (0 of 0 MiB)"),
        (
            dl("0.2.0", 300 << 20, 700 << 20),
            "downloading 0.2.0: 42% (300 of 700 MiB)",
        ),
        (
            WaitingForWindow {
                version: v("0.2.0"),
                until: at("2024-05-09T04:00:00Z"),
            },
            "staged 0.2.0, waiting for the reboot window at 2024-05-09T04:00:00Z",
        ),
        (failed(), "failed: disk full"),
    ];
    for (state, want) in cases {
        assert_eq!(state.to_string(), want);
    }
}

fn sample() -> StateFile {
    let mut failed = FailedReleases::default();
    failed.record(
        v("0.1.5"),
        at("2024-04-20T10:00:00Z"),
        "failed its trial: GRUB returned to slot A",
    );
    StateFile {
        state: dl("0.2.0", 1 << 20, 4 << 20),
        newest: Some(v("0.2.0")),
        last_check: Some(LastCheck {
            at: at("2024-05-02T10:00:00Z"),
            channel: "stable".into(),
            error: None,
        }),
        failed,
    }
}

#[test]
fn the_file_is_small_json() {
    let json = sample().to_json();
    assert_eq!(
        json,
        r#"{
  "state": {
    "phase": "downloading",
    "version": "0.2.0",
    "done": 1048576,
    "total": 4194304
  },
  "newest": "0.2.0",
  "last_check": {
    "at": "2024-05-02T10:00:00Z",
    "channel": "stable"
  },
  "failed": {
    "0.1.5": {
      "at": "2024-04-20T10:00:00Z",
      "why": "failed its trial: GRUB returned to slot A"
    }
  }
}
"#
    );
    assert_eq!(serde_json::from_str::<StateFile>(&json).unwrap(), sample());
    assert_eq!(
        serde_json::from_str::<StateFile>(r#"{"state":{"phase":"idle"}}"#).unwrap(),
        StateFile::default()
    );
}

#[test]
fn failed_releases_are_remembered_by_version() {
    let mut f = sample().failed;
    assert!(f.get(&v("0.1.5.0")).is_some(), "1.5 = 1.5.0");
    assert!(f.get(&v("0.1.6")).is_none());
    assert!(f.forget(&v("0.1.5")));
    assert!(f.is_empty());
}

#[test]
fn load_and_save() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("updater/state.json");
    assert_eq!(
        StateFile::load(&path).unwrap(),
        None,
        "absent: never checked"
    );
    sample().save(&path).unwrap();
    assert_eq!(StateFile::load(&path).unwrap(), Some(sample()));
    assert!(!path.with_extension("json.tmp").exists());

    std::fs::write(&path, "{\"state\":{\"phase\":\"napping\"}}").unwrap();
    let err = StateFile::load(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "{}: not an updater state file: unknown variant `napping`",
            path.display()
        )),
        "{err}"
    );
}
