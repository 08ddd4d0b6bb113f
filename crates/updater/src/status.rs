//! The update half of `updater status`, below the slot table: channel, strategy and window,
//! running and newest version, the update state, the last check and the failed releases.
//! Pure: the caller reads update.conf and the state file and passes what it found, or why it
//! could not.

use crate::config::{Server, Settings, Warning};
use crate::state::StateFile;

/// What `updater status` knows about updates.
#[derive(Clone, Copy, Debug)]
pub struct UpdateStatus<'a> {
    /// The configuration, or why it could not be read.
    pub settings: Result<&'a Settings, &'a str>,
    /// What the configuration ignored.
    pub warnings: &'a [Warning],
    /// The running release, from the booted slot.
    pub running: Option<&'a str>,
    /// The state file: `Ok(None)` when there is none yet, or why it could not be read.
    pub state: Result<Option<&'a StateFile>, &'a str>,
}

/// Render the fields, one `name: value` line each.
pub fn render(s: &UpdateStatus) -> String {
    let mut lines: Vec<(&str, String)> = Vec::new();
    match s.settings {
        Ok(cfg) => {
            lines.push(("channel", cfg.channel.clone()));
            let updates = match &cfg.server {
                Server::Disabled => "off (SERVER=disabled)".to_string(),
                server => {
                    let mut u = format!("on, reboot strategy {}", cfg.strategy);
                    if let Some(w) = &cfg.window {
                        u.push_str(&format!(", window {w}"));
                    }
                    if let Server::Url(url) = server {
                        u.push_str(&format!(", from {url}"));
                    }
                    u
                }
            };
            lines.push(("updates", updates));
        }
        Err(why) => lines.push(("channel", format!("unknown: {why}"))),
    }
    for w in s.warnings {
        lines.push(("warning", w.to_string()));
    }
    lines.push(("running", s.running.unwrap_or("unknown").to_string()));
    match s.state {
        Ok(None) => {
            lines.push(("newest", "unknown".to_string()));
            lines.push(("update", "idle, never checked".to_string()));
        }
        Err(why) => lines.push(("update", format!("unknown: {why}"))),
        Ok(Some(file)) => {
            let newest = match (&file.newest, &file.last_check) {
                (None, _) => "unknown".to_string(),
                (Some(v), Some(c)) if s.settings.is_ok_and(|cfg| cfg.channel != c.channel) => {
                    format!("{v} (in {}, at the last check)", c.channel)
                }
                (Some(v), _) => v.to_string(),
            };
            lines.push(("newest", newest));
            lines.push(("update", file.state.to_string()));
            let last = match &file.last_check {
                None => "never".to_string(),
                Some(c) => match &c.error {
                    None => c.at.to_string(),
                    Some(e) => format!("{} (failed: {e})", c.at),
                },
            };
            lines.push(("last check", last));
            for (v, f) in file.failed.iter() {
                lines.push(("failed", format!("{v} at {}: {}", f.at, f.why)));
            }
        }
    }
    lines
        .into_iter()
        .map(|(k, v)| format!("{:<12}{v}\n", format!("{k}:")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{LastCheck, UpdateState};
    use crate::strategy::RebootStrategy;
    use crate::window::Window;

    fn etcd_lock() -> Settings {
        Settings {
            strategy: RebootStrategy::EtcdLock,
            window: Some(Window::parse("Thu 04:00", "1h").unwrap()),
            ..Settings::default()
        }
    }

    fn downloading() -> StateFile {
        let mut f = StateFile {
            state: UpdateState::Downloading {
                version: "0.2.0".parse().unwrap(),
                done: 300 << 20,
                total: 700 << 20,
            },
            newest: Some("0.2.0".parse().unwrap()),
            last_check: Some(LastCheck {
                at: "2024-05-02T10:00:00Z".parse().unwrap(),
                channel: "stable".into(),
                error: None,
            }),
            ..StateFile::default()
        };
        f.failed.record(
            "0.1.5".parse().unwrap(),
            "2024-04-20T10:00:00Z".parse().unwrap(),
            "failed its trial; GRUB went back to slot A",
        );
        f
    }

    /// The configuration, the running version and the state file, each as `render` gets it.
    type Input = (
        Result<Settings, &'static str>,
        Option<&'static str>,
        Result<Option<StateFile>, &'static str>,
    );

    struct Case {
        name: &'static str,
        input: Input,
        want: &'static str,
    }

    #[test]
    fn renders_the_update_fields() {
        let disabled = Settings {
            server: Server::Disabled,
            ..Settings::default()
        };
        let beta = Settings {
            channel: "beta".into(),
            server: Server::Url("https://updates.example/".into()),
            ..Settings::default()
        };
        let failed_check = StateFile {
            last_check: Some(LastCheck {
                at: "2024-05-02T10:00:00Z".parse().unwrap(),
                channel: "stable".into(),
                error: Some("repository unreachable".into()),
            }),
            ..StateFile::default()
        };
        let cases = [
            Case {
                name: "no state file yet",
                input: (Ok(Settings::default()), Some("0.1.0"), Ok(None)),
                want: "\
channel:    stable
updates:    on, reboot strategy reboot
running:    0.1.0
newest:     unknown
update:     idle, never checked
",
            },
            Case {
                name: "downloading, with a window and a failed release",
                input: (Ok(etcd_lock()), Some("0.1.0"), Ok(Some(downloading()))),
                want: "\
channel:    stable
updates:    on, reboot strategy etcd-lock, window Thu 04:00 for 1h UTC
running:    0.1.0
newest:     0.2.0
update:     downloading 0.2.0: 42% (300 of 700 MiB)
last check: 2024-05-02T10:00:00Z
failed:     0.1.5 at 2024-04-20T10:00:00Z: failed its trial; GRUB went back to slot A
",
            },
            Case {
                name: "channel switched since the last check",
                input: (Ok(beta), Some("0.1.0"), Ok(Some(downloading()))),
                want: "\
channel:    beta
updates:    on, reboot strategy reboot, from https://updates.example/
running:    0.1.0
newest:     0.2.0 (in stable, at the last check)
update:     downloading 0.2.0: 42% (300 of 700 MiB)
last check: 2024-05-02T10:00:00Z
failed:     0.1.5 at 2024-04-20T10:00:00Z: failed its trial; GRUB went back to slot A
",
            },
            Case {
                name: "updates off, a failed check",
                input: (Ok(disabled), None, Ok(Some(failed_check))),
                want: "\
channel:    stable
updates:    off (SERVER=disabled)
running:    unknown
newest:     unknown
update:     idle
last check: 2024-05-02T10:00:00Z (failed: repository unreachable)
",
            },
            Case {
                name: "unreadable config and state",
                input: (
                    Err("/etc/keel/update.conf:2: GROUP: bad"),
                    Some("0.1.0"),
                    Err("state.json: not JSON"),
                ),
                want: "\
channel:    unknown: /etc/keel/update.conf:2: GROUP: bad
running:    0.1.0
update:     unknown: state.json: not JSON
",
            },
        ];
        for c in cases {
            let (settings, running, state) = &c.input;
            let got = render(&UpdateStatus {
                settings: settings.as_ref().map_err(|e| *e),
                warnings: &[],
                running: *running,
                state: state.as_ref().map(Option::as_ref).map_err(|e| *e),
            });
            assert_eq!(got, c.want, "{}", c.name);
        }
    }
}
