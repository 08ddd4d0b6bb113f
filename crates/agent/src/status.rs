//! The node's status: OS version, how it booted, uptime, engine state.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::engine::{Engine, EngineState};

/// Where the status is read from; `/` on a node, a directory in tests.
#[derive(Clone, Debug)]
pub struct Sources {
    /// `/etc/os-release` (falls back to `/usr/lib/os-release`).
    pub os_release: Vec<PathBuf>,
    /// `/proc/cmdline`.
    pub cmdline: PathBuf,
    /// `/proc/uptime`.
    pub uptime: PathBuf,
    /// `/etc/hostname`-like source; `/proc/sys/kernel/hostname` on a node.
    pub hostname: PathBuf,
}

impl Sources {
    /// The real files under `root`.
    pub fn under(root: &Path) -> Self {
        Sources {
            os_release: vec![root.join("etc/os-release"), root.join("usr/lib/os-release")],
            cmdline: root.join("proc/cmdline"),
            uptime: root.join("proc/uptime"),
            hostname: root.join("proc/sys/kernel/hostname"),
        }
    }
}

/// The status the agent serves.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NodeStatus {
    /// Host name.
    pub hostname: String,
    /// OS name and version from os-release.
    pub os: String,
    /// OS version (`VERSION_ID`).
    pub os_version: String,
    /// `A`, `B`, or `live`.
    pub booted_slot: String,
    /// Seconds since the kernel started.
    pub uptime_seconds: u64,
    /// The container engine.
    pub engine: EngineState,
}

fn os_release_value(text: &str, key: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_string())
}

/// Read the booted slot from kernel command-line text: `A`, `B`, `live` or `unknown`.
pub fn booted_slot(cmdline: &str) -> String {
    slots::booted::from_cmdline(cmdline).to_string()
}

/// Collect the status now.
pub fn collect(src: &Sources, engine: &dyn Engine) -> NodeStatus {
    let release = src
        .os_release
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .unwrap_or_default();
    let cmdline = fs::read_to_string(&src.cmdline).unwrap_or_default();
    let uptime = fs::read_to_string(&src.uptime)
        .ok()
        .and_then(|t| t.split('.').next().and_then(|s| s.trim().parse().ok()))
        .unwrap_or(0);
    NodeStatus {
        hostname: fs::read_to_string(&src.hostname)
            .unwrap_or_default()
            .trim()
            .to_string(),
        os: os_release_value(&release, "PRETTY_NAME").unwrap_or_else(|| "unknown".into()),
        os_version: os_release_value(&release, "VERSION_ID").unwrap_or_else(|| "unknown".into()),
        booted_slot: booted_slot(&cmdline),
        uptime_seconds: uptime,
        engine: engine.state(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FakeEngine;
    impl Engine for FakeEngine {
        fn state(&self) -> EngineState {
            EngineState {
                state: "running".into(),
                version: Some("20.10".into()),
                error: None,
            }
        }
    }

    #[test]
    fn collects_from_the_files_under_a_root() {
        let root = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let path = root.path().join(p);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, t).unwrap();
        };
        w(
            "usr/lib/os-release",
            "NAME=Keel\nPRETTY_NAME=\"Keel 0.1.0\"\nVERSION_ID=0.1.0\n",
        );
        w(
            "proc/cmdline",
            "BOOT_IMAGE=/keel/B/vmlinuz keel.slot=B console=ttyS0\n",
        );
        w("proc/uptime", "42.17 80.00\n");
        w("proc/sys/kernel/hostname", "node1\n");
        let s = collect(&Sources::under(root.path()), &FakeEngine);
        assert_eq!(s.os, "Keel 0.1.0");
        assert_eq!(s.os_version, "0.1.0");
        assert_eq!(s.booted_slot, "B");
        assert_eq!(s.uptime_seconds, 42);
        assert_eq!(s.hostname, "node1");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["engine"]["state"], "running");
    }

    #[test]
    fn live_systems_say_so() {
        assert_eq!(booted_slot("console=ttyS0 keel.live"), "live");
        assert_eq!(booted_slot("root=/dev/sda"), "unknown");
    }
}
