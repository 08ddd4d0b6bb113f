//! The updater's configuration, `/etc/keel/update.conf`, with Container Linux's
//! `/etc/coreos/update.conf` read too so configs written for CL keep working. Three stages, as
//! zincati builds its settings:
//!
//!  * fragments ([`fragment`]): each file's `KEY=value` lines, no meaning attached;
//!  * inputs: the fragments merged key by key, a later file winning (`/etc/keel` over
//!    `/etc/coreos`), each value remembering its file and line;
//!  * [`Settings`]: the inputs validated. Only this leaves the module.
//!
//! An unknown key is a [`Warning`], never an error; a bad value is a [`ConfigError`] naming the
//! file, the line and the key. The keys are described in the crate's README.md.

pub mod fragment;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::strategy::RebootStrategy;
use crate::window::{Window, WindowError};

/// The files read, lowest precedence first.
pub const PATHS: [&str; 2] = ["/etc/coreos/update.conf", "/etc/keel/update.conf"];

/// The channel when `GROUP=` is not set (the release crate's default channel).
pub const DEFAULT_CHANNEL: &str = "stable";
/// The FleetLock group when `FLEETLOCK_GROUP=` is not set (Zincati's default).
pub const DEFAULT_FLEETLOCK_GROUP: &str = "default";
/// The etcd endpoint when `LOCKSMITHD_ENDPOINT=` is not set.
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://127.0.0.1:2379";

/// Keys Container Linux's update_engine read that mean nothing to Keel.
const CL_ONLY: [&str; 5] = [
    "PCR_POLICY_SERVER",
    "DOWNLOAD_USER",
    "DOWNLOAD_PASSWORD",
    "MACHINE_ALIAS",
    "LOCKSMITHD_DEBUG",
];

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read (a missing file is not an error).
    #[error("reading {}: {source}", file.display())]
    Read {
        /// The file.
        file: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A line that is not `KEY=value`.
    #[error("{}:{line}: {why}", file.display())]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        why: String,
    },
    /// A key with a value it cannot take.
    #[error("{}:{line}: {key}: {why}", file.display())]
    Value {
        /// The file.
        file: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// Something in the configuration that is ignored or taken to mean something else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// The key.
    pub key: String,
    /// What happens to it.
    pub why: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.key,
            self.why
        )
    }
}

/// Where updates come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Server {
    /// The channel's default repository.
    Default,
    /// A repository URL from `SERVER=`.
    Url(String),
    /// Updates are switched off (`SERVER=disabled`, as on CoreOS).
    Disabled,
}

/// How to reach etcd for `etcd-lock`: locksmithd's own `LOCKSMITHD_*` settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdSettings {
    /// `LOCKSMITHD_ENDPOINT` (comma-separated), default `http://127.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// `LOCKSMITHD_GROUP`: the semaphore `coreos.com/updateengine/rebootlock/groups/<group>/semaphore`
    /// instead of the cluster-wide one.
    pub group: Option<String>,
    /// `LOCKSMITHD_ETCD_CAFILE`.
    pub ca_file: Option<PathBuf>,
    /// `LOCKSMITHD_ETCD_CERTFILE`.
    pub cert_file: Option<PathBuf>,
    /// `LOCKSMITHD_ETCD_KEYFILE`.
    pub key_file: Option<PathBuf>,
    /// `LOCKSMITHD_ETCD_USERNAME`.
    pub username: Option<String>,
    /// `LOCKSMITHD_ETCD_PASSWORD`.
    pub password: Option<String>,
}

/// The validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The release channel (`GROUP=`).
    pub channel: String,
    /// The repository (`SERVER=`), or updates off.
    pub server: Server,
    /// `REBOOT_STRATEGY=`.
    pub strategy: RebootStrategy,
    /// The reboot window, if any.
    pub window: Option<Window>,
    /// etcd access for `etcd-lock`.
    pub etcd: EtcdSettings,
}

impl Settings {
    /// Whether the node looks for updates at all.
    pub fn updates_enabled(&self) -> bool {
        self.server != Server::Disabled
    }
}

impl Default for Settings {
    /// What a node with no update.conf does.
    fn default() -> Self {
        Settings {
            channel: DEFAULT_CHANNEL.to_string(),
            server: Server::Default,
            strategy: RebootStrategy::Reboot,
            window: None,
            etcd: EtcdSettings {
                endpoints: vec![DEFAULT_ETCD_ENDPOINT.to_string()],
                group: None,
                ca_file: None,
                cert_file: None,
                key_file: None,
                username: None,
                password: None,
            },
        }
    }
}

/// Settings and what was ignored on the way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// The settings.
    pub settings: Settings,
    /// Warnings, in file and line order.
    pub warnings: Vec<Warning>,
}

/// A file's path and text (a file read, or a test's string).
#[derive(Clone, Debug)]
pub struct Source {
    /// The path, for messages.
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
}

/// Read the files that exist among `paths` (lowest precedence first).
pub fn read_sources(paths: &[PathBuf]) -> Result<Vec<Source>, ConfigError> {
    let mut out = Vec::new();
    for path in paths {
        match std::fs::read_to_string(path) {
            Ok(text) => out.push(Source {
                path: path.clone(),
                text,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(ConfigError::Read {
                    file: path.clone(),
                    source,
                })
            }
        }
    }
    Ok(out)
}

/// Read and assemble the configuration from `paths` (lowest precedence first; see [`PATHS`]).
pub fn load(paths: &[PathBuf]) -> Result<Loaded, ConfigError> {
    assemble(&read_sources(paths)?)
}

/// A value with where it was written.
#[derive(Clone, Debug)]
struct Input<'a> {
    value: &'a str,
    file: &'a Path,
    line: usize,
    /// The file's position in the precedence order.
    rank: usize,
}

/// Parse, merge and validate `sources` (lowest precedence first).
pub fn assemble(sources: &[Source]) -> Result<Loaded, ConfigError> {
    let fragments = sources
        .iter()
        .map(|s| fragment::parse(&s.path, &s.text))
        .collect::<Result<Vec<_>, _>>()?;
    let mut warnings = Vec::new();
    let mut inputs: BTreeMap<&str, Input> = BTreeMap::new();
    for (rank, frag) in fragments.iter().enumerate() {
        for e in &frag.entries {
            let input = Input {
                value: &e.value,
                file: &frag.path,
                line: e.line,
                rank,
            };
            if let Some(old) = inputs.insert(&e.key, input) {
                if old.file == frag.path.as_path() && old.value != e.value {
                    warnings.push(warning(
                        &old,
                        &e.key,
                        format!("set again on line {}, which wins", e.line),
                    ));
                }
            }
        }
    }
    let settings = validate(&inputs, &mut warnings)?;
    warnings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    Ok(Loaded { settings, warnings })
}

fn warning(at: &Input, key: &str, why: String) -> Warning {
    Warning {
        file: at.file.to_path_buf(),
        line: at.line,
        key: key.to_string(),
        why,
    }
}

fn bad(at: &Input, key: &str, why: impl Into<String>) -> ConfigError {
    ConfigError::Value {
        file: at.file.to_path_buf(),
        line: at.line,
        key: key.to_string(),
        why: why.into(),
    }
}

const KNOWN: [&str; 16] = [
    "GROUP",
    "SERVER",
    "REBOOT_STRATEGY",
    "FLEETLOCK_URL",
    "FLEETLOCK_GROUP",
    "REBOOT_WINDOW_START",
    "REBOOT_WINDOW_LENGTH",
    "LOCKSMITHD_REBOOT_WINDOW_START",
    "LOCKSMITHD_REBOOT_WINDOW_LENGTH",
    "LOCKSMITHD_ENDPOINT",
    "LOCKSMITHD_GROUP",
    "LOCKSMITHD_ETCD_CAFILE",
    "LOCKSMITHD_ETCD_CERTFILE",
    "LOCKSMITHD_ETCD_KEYFILE",
    "LOCKSMITHD_ETCD_USERNAME",
    "LOCKSMITHD_ETCD_PASSWORD",
];

fn is_http_url(v: &str) -> bool {
    let rest = v
        .strip_prefix("http://")
        .or_else(|| v.strip_prefix("https://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or("");
        !host.is_empty() && !r.contains(char::is_whitespace)
    })
}

fn validate(
    inputs: &BTreeMap<&str, Input>,
    warnings: &mut Vec<Warning>,
) -> Result<Settings, ConfigError> {
    let mut s = Settings::default();
    // An empty value means "not set", as it does for locksmithd's environment.
    let get = |key: &str| inputs.get(key).filter(|i| !i.value.is_empty());

    for (key, at) in inputs {
        if CL_ONLY.contains(key) {
            warnings.push(warning(
                at,
                key,
                "used by Container Linux's update tools, not by Keel; ignored".to_string(),
            ));
        } else if !KNOWN.contains(key) {
            warnings.push(warning(at, key, "unknown key, ignored".to_string()));
        }
    }

    if let Some(at) = get("GROUP") {
        if !at
            .value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(bad(
                at,
                "GROUP",
                format!(
                    "channel {:?} may hold only letters, digits, '.', '_' and '-'",
                    at.value
                ),
            ));
        }
        s.channel = at.value.to_string();
    }

    if let Some(at) = get("SERVER") {
        s.server = if at.value.eq_ignore_ascii_case("disabled") {
            Server::Disabled
        } else if is_http_url(at.value) {
            Server::Url(at.value.to_string())
        } else {
            warnings.push(warning(
                at,
                "SERVER",
                format!("{:?} is not an http(s) URL, so updates are off, as on Container Linux (write SERVER=disabled to say so)", at.value),
            ));
            Server::Disabled
        };
    }

    let fleetlock_url = get("FLEETLOCK_URL");
    if let Some(at) = get("REBOOT_STRATEGY") {
        s.strategy = match at.value {
            "reboot" => RebootStrategy::Reboot,
            "etcd-lock" => RebootStrategy::EtcdLock,
            "best-effort" => {
                warnings.push(warning(
                    at,
                    "REBOOT_STRATEGY",
                    "best-effort is gone from locksmith since 0.6.0; taken as etcd-lock (write etcd-lock or reboot)".to_string(),
                ));
                RebootStrategy::EtcdLock
            }
            "off" => RebootStrategy::Off,
            "fleetlock" | "fleet-lock" | "fleet_lock" => {
                let url = fleetlock_url.ok_or_else(|| {
                    bad(
                        at,
                        "REBOOT_STRATEGY",
                        "fleetlock needs FLEETLOCK_URL= (the FleetLock server's base URL)",
                    )
                })?;
                if !is_http_url(url.value) {
                    return Err(bad(
                        url,
                        "FLEETLOCK_URL",
                        format!("{:?} is not an http(s) URL", url.value),
                    ));
                }
                let mut base = url.value.to_string();
                if !base.ends_with('/') {
                    base.push('/');
                }
                let group = match get("FLEETLOCK_GROUP") {
                    Some(g)
                        if g.value
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c)) =>
                    {
                        g.value.to_string()
                    }
                    Some(g) => {
                        return Err(bad(
                            g,
                            "FLEETLOCK_GROUP",
                            format!("{:?} may hold only letters, digits, '.' and '-'", g.value),
                        ))
                    }
                    None => DEFAULT_FLEETLOCK_GROUP.to_string(),
                };
                RebootStrategy::FleetLock { url: base, group }
            }
            other => {
                return Err(bad(
                    at,
                    "REBOOT_STRATEGY",
                    format!("{other:?} is not a strategy: use reboot, etcd-lock, fleetlock or off"),
                ));
            }
        };
    }
    if !matches!(s.strategy, RebootStrategy::FleetLock { .. }) {
        for key in ["FLEETLOCK_URL", "FLEETLOCK_GROUP"] {
            if let Some(at) = get(key) {
                warnings.push(warning(
                    at,
                    key,
                    format!("ignored: REBOOT_STRATEGY is {}", s.strategy),
                ));
            }
        }
    }

    s.window = window(inputs, warnings)?;

    if let Some(at) = get("LOCKSMITHD_ENDPOINT") {
        let endpoints: Vec<String> = at
            .value
            .split(',')
            .map(|e| e.trim().to_string())
            .filter(|e| !e.is_empty())
            .collect();
        if let Some(e) = endpoints.iter().find(|e| !is_http_url(e)) {
            return Err(bad(
                at,
                "LOCKSMITHD_ENDPOINT",
                format!("{e:?} is not an http(s) URL"),
            ));
        }
        s.etcd.endpoints = endpoints;
    }
    s.etcd.group = get("LOCKSMITHD_GROUP").map(|at| at.value.to_string());
    for (key, slot) in [
        ("LOCKSMITHD_ETCD_CAFILE", &mut s.etcd.ca_file),
        ("LOCKSMITHD_ETCD_CERTFILE", &mut s.etcd.cert_file),
        ("LOCKSMITHD_ETCD_KEYFILE", &mut s.etcd.key_file),
    ] {
        if let Some(at) = get(key) {
            if !at.value.starts_with('/') {
                return Err(bad(
                    at,
                    key,
                    format!("{:?} is not an absolute path", at.value),
                ));
            }
            *slot = Some(PathBuf::from(at.value));
        }
    }
    s.etcd.username = get("LOCKSMITHD_ETCD_USERNAME").map(|at| at.value.to_string());
    s.etcd.password = get("LOCKSMITHD_ETCD_PASSWORD").map(|at| at.value.to_string());
    Ok(s)
}

/// The window from `[LOCKSMITHD_]REBOOT_WINDOW_{START,LENGTH}`. Of the two spellings, the one
/// in the later file wins; within one file locksmith's preferred `LOCKSMITHD_` one does.
fn window(
    inputs: &BTreeMap<&str, Input>,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Window>, ConfigError> {
    let mut pick = |what: &str| -> Option<(String, Input)> {
        let plain = format!("REBOOT_WINDOW_{what}");
        let long = format!("LOCKSMITHD_{plain}");
        let found = |k: &str| {
            inputs
                .get(k)
                .filter(|i| !i.value.is_empty())
                .map(|i| (k.to_string(), i.clone()))
        };
        match (found(&long), found(&plain)) {
            (Some(l), Some(p)) => {
                let (win, lose) = if p.1.rank > l.1.rank { (p, l) } else { (l, p) };
                if win.1.value != lose.1.value {
                    warnings.push(warning(
                        &lose.1,
                        &lose.0,
                        format!(
                            "ignored: {} ({}:{}) takes precedence",
                            win.0,
                            win.1.file.display(),
                            win.1.line
                        ),
                    ));
                }
                Some(win)
            }
            (l, p) => l.or(p),
        }
    };
    match (pick("START"), pick("LENGTH")) {
        (None, None) => Ok(None),
        (Some((k, at)), None) => Err(bad(
            &at,
            &k,
            "a window needs both a start and a length (REBOOT_WINDOW_LENGTH=)",
        )),
        (None, Some((k, at))) => Err(bad(
            &at,
            &k,
            "a window needs both a start and a length (REBOOT_WINDOW_START=)",
        )),
        (Some((sk, start)), Some((lk, length))) => match Window::parse(start.value, length.value) {
            Ok(w) => Ok(Some(w)),
            Err(e @ WindowError::Start { .. }) => Err(bad(&start, &sk, e.to_string())),
            Err(e) => Err(bad(&length, &lk, e.to_string())),
        },
    }
}

#[cfg(test)]
mod tests;
