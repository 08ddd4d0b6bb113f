use super::*;

const COREOS: &str = "/etc/coreos/update.conf";
const KEEL: &str = "/etc/keel/update.conf";

fn sources(coreos: Option<&str>, keel: Option<&str>) -> Vec<Source> {
    [(COREOS, coreos), (KEEL, keel)]
        .into_iter()
        .filter_map(|(p, t)| {
            t.map(|t| Source {
                path: PathBuf::from(p),
                text: t.to_string(),
            })
        })
        .collect()
}

fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings::default();
    f(&mut s);
    s
}

struct Case {
    name: &'static str,
    input: (Option<&'static str>, Option<&'static str>),
    want: Settings,
}

#[test]
fn settings_from_both_files() {
    let cases = [
        Case {
            name: "no files",
            input: (None, None),
            want: Settings::default(),
        },
        Case {
            name: "empty values mean unset",
            input: (None, Some("GROUP=\nREBOOT_STRATEGY=\n")),
            want: Settings::default(),
        },
        Case {
            name: "a CL config as Ignition wrote it",
            input: (
                Some("GROUP=beta\nREBOOT_STRATEGY=etcd-lock\nLOCKSMITHD_REBOOT_WINDOW_START=\"Thu 04:00\"\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n"),
                None,
            ),
            want: settings(|s| {
                s.channel = "beta".into();
                s.strategy = RebootStrategy::EtcdLock;
                s.window = Some(Window::parse("Thu 04:00", "1h").unwrap());
            }),
        },
        Case {
            name: "/etc/keel wins key by key",
            input: (
                Some("GROUP=beta\nREBOOT_STRATEGY=etcd-lock\n"),
                Some("REBOOT_STRATEGY=reboot\nSERVER=https://updates.example/keel\n"),
            ),
            want: settings(|s| {
                s.channel = "beta".into();
                s.server = Server::Url("https://updates.example/keel".into());
            }),
        },
        Case {
            name: "unquoted window start with a space, as under locksmithd",
            input: (None, Some("REBOOT_WINDOW_START=sat 22:00\nREBOOT_WINDOW_LENGTH=1h30m\n")),
            want: settings(|s| s.window = Some(Window::parse("Sat 22:00", "90m").unwrap())),
        },
        Case {
            name: "fleetlock gets a trailing slash and the default group",
            input: (None, Some("REBOOT_STRATEGY=fleetlock\nFLEETLOCK_URL=http://10.0.0.1:3333\n")),
            want: settings(|s| {
                s.strategy = RebootStrategy::FleetLock {
                    url: "http://10.0.0.1:3333/".into(),
                    group: "default".into(),
                }
            }),
        },
        Case {
            name: "fleetlock with a group",
            input: (None, Some("REBOOT_STRATEGY=fleetlock\nFLEETLOCK_URL=https://lock.example/\nFLEETLOCK_GROUP=workers\n")),
            want: settings(|s| {
                s.strategy = RebootStrategy::FleetLock {
                    url: "https://lock.example/".into(),
                    group: "workers".into(),
                }
            }),
        },
        Case {
            name: "updates off, as on CoreOS",
            input: (Some("SERVER=disabled\n"), None),
            want: settings(|s| s.server = Server::Disabled),
        },
        Case {
            name: "off",
            input: (None, Some("REBOOT_STRATEGY=off\n")),
            want: settings(|s| s.strategy = RebootStrategy::Off),
        },
        Case {
            name: "locksmith's etcd settings",
            input: (
                Some("LOCKSMITHD_ENDPOINT=http://10.0.0.1:2379, https://10.0.0.2:2379\nLOCKSMITHD_GROUP=db\nLOCKSMITHD_ETCD_CAFILE=/etc/ssl/etcd/ca.pem\nLOCKSMITHD_ETCD_USERNAME=node\n"),
                None,
            ),
            want: settings(|s| {
                s.etcd.endpoints = vec!["http://10.0.0.1:2379".into(), "https://10.0.0.2:2379".into()];
                s.etcd.group = Some("db".into());
                s.etcd.ca_file = Some("/etc/ssl/etcd/ca.pem".into());
                s.etcd.username = Some("node".into());
            }),
        },
    ];
    for c in cases {
        let loaded =
            assemble(&sources(c.input.0, c.input.1)).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        assert_eq!(loaded.settings, c.want, "{}", c.name);
        assert_eq!(loaded.warnings, [], "{}", c.name);
    }
}

struct Bad {
    name: &'static str,
    input: (Option<&'static str>, Option<&'static str>),
    want: &'static str,
}

#[test]
fn errors_name_file_line_and_key() {
    let cases = [
        Bad {
            name: "unknown strategy",
            input: (None, Some("GROUP=beta\nREBOOT_STRATEGY=sometimes\n")),
            want: "/etc/keel/update.conf:2: REBOOT_STRATEGY: \"sometimes\" is not a strategy: use reboot, etcd-lock, fleetlock or off",
        },
        Bad {
            name: "fleetlock without a URL",
            input: (Some("REBOOT_STRATEGY=fleetlock\n"), None),
            want: "/etc/coreos/update.conf:1: REBOOT_STRATEGY: fleetlock needs FLEETLOCK_URL=",
        },
        Bad {
            name: "fleetlock URL in the other file, not a URL",
            input: (Some("FLEETLOCK_URL=lock.example:3333\n"), Some("REBOOT_STRATEGY=fleetlock\n")),
            want: "/etc/coreos/update.conf:1: FLEETLOCK_URL: \"lock.example:3333\" is not an http(s) URL",
        },
        Bad {
            name: "bad fleetlock group",
            input: (None, Some("REBOOT_STRATEGY=fleetlock\nFLEETLOCK_URL=http://l/\nFLEETLOCK_GROUP=a b\n")),
            want: "/etc/keel/update.conf:3: FLEETLOCK_GROUP:",
        },
        Bad {
            name: "a start without a length",
            input: (None, Some("\nREBOOT_WINDOW_START=04:00\n")),
            want: "/etc/keel/update.conf:2: REBOOT_WINDOW_START: a window needs both",
        },
        Bad {
            name: "a length without a start",
            input: (Some("LOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n"), None),
            want: "/etc/coreos/update.conf:1: LOCKSMITHD_REBOOT_WINDOW_LENGTH: a window needs both",
        },
        Bad {
            name: "a bad start, reported at the start's line",
            input: (Some("REBOOT_WINDOW_LENGTH=1h\n"), Some("REBOOT_WINDOW_START=Thursday 04:00\n")),
            want: "/etc/keel/update.conf:1: REBOOT_WINDOW_START: start \"Thursday 04:00\"",
        },
        Bad {
            name: "a bad length, reported at the length's line",
            input: (Some("REBOOT_WINDOW_LENGTH=1 hour\n"), Some("REBOOT_WINDOW_START=04:00\n")),
            want: "/etc/coreos/update.conf:1: REBOOT_WINDOW_LENGTH: length \"1 hour\"",
        },
        Bad {
            name: "bad channel",
            input: (None, Some("GROUP=beta/../x\n")),
            want: "/etc/keel/update.conf:1: GROUP: channel \"beta/../x\"",
        },
        Bad {
            name: "bad etcd endpoint",
            input: (None, Some("LOCKSMITHD_ENDPOINT=10.0.0.1:2379\n")),
            want: "/etc/keel/update.conf:1: LOCKSMITHD_ENDPOINT: \"10.0.0.1:2379\" is not",
        },
        Bad {
            name: "relative cert path",
            input: (None, Some("LOCKSMITHD_ETCD_CERTFILE=etcd.pem\n")),
            want: "/etc/keel/update.conf:1: LOCKSMITHD_ETCD_CERTFILE: \"etcd.pem\" is not an absolute path",
        },
        Bad {
            name: "syntax, in the first file",
            input: (Some("GROUP=beta\nthis is not a setting\n"), Some("GROUP=stable\n")),
            want: "/etc/coreos/update.conf:2: not KEY=value",
        },
    ];
    for c in cases {
        let err = assemble(&sources(c.input.0, c.input.1))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with(c.want), "{}: {err}", c.name);
    }
}

#[test]
fn unknown_and_foreign_keys_are_warned_not_fatal() {
    let loaded = assemble(&sources(
        Some("GROUP=beta\nPCR_POLICY_SERVER=http://x/\nREBOOT_STRATEGY=best-effort\nSERVER=nope\n"),
        Some("GRUOP=alpha\nFLEETLOCK_URL=http://lock/\nGROUP=beta\nGROUP=alpha\n"),
    ))
    .unwrap();
    let got: Vec<String> = loaded.warnings.iter().map(Warning::to_string).collect();
    assert_eq!(
        got,
        [
            "/etc/coreos/update.conf:2: PCR_POLICY_SERVER: used by Container Linux's update tools, not by Keel; ignored",
            "/etc/coreos/update.conf:3: REBOOT_STRATEGY: best-effort is gone from locksmith since 0.6.0; taken as etcd-lock (write etcd-lock or reboot)",
            "/etc/coreos/update.conf:4: SERVER: \"nope\" is not an http(s) URL, so updates are off, as on Container Linux (write SERVER=disabled to say so)",
            "/etc/keel/update.conf:1: GRUOP: unknown key, ignored",
            "/etc/keel/update.conf:2: FLEETLOCK_URL: ignored: REBOOT_STRATEGY is etcd-lock",
            "/etc/keel/update.conf:3: GROUP: set again on line 4, which wins",
        ]
    );
    assert_eq!(loaded.settings.channel, "alpha");
    assert_eq!(loaded.settings.strategy, RebootStrategy::EtcdLock);
    assert!(!loaded.settings.updates_enabled());
}

#[test]
fn of_two_window_spellings_the_later_file_wins() {
    // Same file: locksmith's LOCKSMITHD_ spelling wins.
    let loaded = assemble(&sources(
        None,
        Some("REBOOT_WINDOW_START=Mon 01:00\nLOCKSMITHD_REBOOT_WINDOW_START=Tue 02:00\nREBOOT_WINDOW_LENGTH=1h\n"),
    ))
    .unwrap();
    assert_eq!(loaded.settings.window.unwrap().start_text(), "Tue 02:00");
    assert_eq!(
        loaded.warnings[0].to_string(),
        "/etc/keel/update.conf:1: REBOOT_WINDOW_START: ignored: LOCKSMITHD_REBOOT_WINDOW_START (/etc/keel/update.conf:2) takes precedence"
    );
    // /etc/keel's plain spelling beats /etc/coreos's LOCKSMITHD_ one.
    let loaded = assemble(&sources(
        Some("LOCKSMITHD_REBOOT_WINDOW_START=Tue 02:00\nLOCKSMITHD_REBOOT_WINDOW_LENGTH=1h\n"),
        Some("REBOOT_WINDOW_START=Wed 03:00\n"),
    ))
    .unwrap();
    assert_eq!(loaded.settings.window.unwrap().start_text(), "Wed 03:00");
    assert_eq!(loaded.warnings.len(), 1);
}

#[test]
fn reads_the_files_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let keel = dir.path().join("keel.conf");
    std::fs::write(&keel, "GROUP=edge\n").unwrap();
    let loaded = load(&[dir.path().join("absent.conf"), keel.clone()]).unwrap();
    assert_eq!(loaded.settings.channel, "edge");
    let err = load(&[dir.path().to_path_buf()]).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("reading {}", dir.path().display())),
        "{err}"
    );
}
