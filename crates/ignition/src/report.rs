//! Errors and warnings about a config, each with the JSON path of the field it is about.
//!
//! Entities:
//!  * [`JsonPath`]: a path such as `$.storage.files[0].path`, built while decoding.
//!  * [`Kind`]: what went wrong, as a closed set a caller (or a test) can match on.
//!  * [`Entry`]: one finding (severity, path, kind, human reason).
//!  * [`Report`]: every finding about one config; it is invalid when it holds an error.

use std::fmt;

/// A JSON path into the config, in the form `$.storage.files[0].path`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct JsonPath(String);

impl JsonPath {
    /// The root of a config (`$`).
    pub fn root() -> Self {
        JsonPath("$".to_string())
    }

    /// A root with a prefix naming where a referenced config came from
    /// (e.g. `$.ignition.config.merge[0]>$`).
    pub fn nested(parent: &JsonPath) -> Self {
        JsonPath(format!("{}>$", parent.0))
    }

    /// The path of the object member `key`.
    pub fn key(&self, key: &str) -> Self {
        JsonPath(format!("{}.{}", self.0, key))
    }

    /// The path of the array element `index`.
    pub fn index(&self, index: usize) -> Self {
        JsonPath(format!("{}[{}]", self.0, index))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How bad a finding is. Only errors make a config invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The config is invalid and nothing may be applied.
    Error,
    /// The config is valid, but probably not what its author meant.
    Warning,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    // --- the document and its version ---
    /// The input is not JSON (the message holds line and column).
    InvalidJson,
    /// The input is empty.
    EmptyConfig,
    /// The input is a cloud-config or a script, not an Ignition config.
    NotAConfig,
    /// `ignition.version` is missing or is not full semver.
    InvalidVersion,
    /// `ignition.version` is not a version this implementation accepts.
    UnsupportedVersion,
    /// A value has the wrong JSON type.
    TypeMismatch,
    /// A key the spec version does not define (warning).
    UnusedKey,
    /// A deprecated field (warning).
    Deprecated,
    // --- paths and nodes ---
    /// A required path is missing or empty.
    PathMissing,
    /// A path is relative.
    PathNotAbsolute,
    /// A path is not in its simplest form (`//`, `/./`, `/../`, trailing `/`).
    PathNotClean,
    /// A mode outside 0..=0o7777.
    IllegalMode,
    /// setuid/setgid/sticky bits, which are dropped (warning).
    SpecialModeBits,
    /// Spec 2.x node without `mode` (warning: Container Linux used 0000, Keel 0644/0755).
    ModeUnset,
    /// `user`/`group` with both `id` and `name`.
    IdAndName,
    /// A spec 2.x node without `filesystem`.
    NoFilesystem,
    /// A spec 2.x node on a filesystem nobody defines (a warning while referenced configs
    /// may still define it).
    UndefinedFilesystem,
    /// `append` together with `overwrite: true`.
    AppendAndOverwrite,
    /// `overwrite: true` without `contents.source` (3.x).
    OverwriteWithoutSource,
    /// The same key (path, name, device, ...) twice in one list.
    Duplicate,
    /// A node below a link the same config defines (3.x).
    PathIncludesLink,
    /// A node at a path a systemd unit or drop-in of the config also writes (3.x).
    ConflictsWithUnit,
    /// A node below a file the same config writes (`/etc/a` and `/etc/a/b`).
    PathBelowFile,
    /// A path or name no file system accepts: a NUL byte, a component longer than 255
    /// bytes, a path longer than 4095 bytes.
    UnusablePath,
    /// A link without `target`.
    LinkTargetRequired,
    /// A hard link to a directory the config defines.
    HardLinkToDirectory,
    // --- resources ---
    /// `compression` other than `""` and `gzip`.
    InvalidCompression,
    /// A hash that is not `<function>-<hex>`.
    MalformedHash,
    /// A hash function the spec version does not allow.
    UnknownHashFunction,
    /// A hash digest of the wrong length.
    HashSize,
    /// A URL that cannot be parsed (including bad data: URLs).
    InvalidUrl,
    /// A URL scheme the spec version does not allow.
    UnsupportedScheme,
    /// `verification` without `source`.
    HashWithoutSource,
    /// `source` required here.
    SourceRequired,
    /// A bad HTTP header (empty name or value, or on a non-http source).
    HttpHeader,
    /// A proxy URL that is not http(s).
    ProxyScheme,
    // --- systemd and networkd ---
    /// A unit or drop-in without `name`.
    NameMissing,
    /// A systemd unit name with an unknown extension.
    UnitExtension,
    /// A drop-in name not ending in `.conf`.
    DropinExtension,
    /// A networkd unit name not ending in `.link`, `.netdev` or `.network`.
    NetworkdExtension,
    /// Unit text that systemd cannot parse.
    UnitContents,
    /// A `WantedBy=`, `RequiredBy=` or `Alias=` name that is not a valid unit name for the
    /// unit (it would become a path when the unit is enabled).
    InstallName,
    /// An enabled unit without an `[Install]` section (warning).
    NoInstallSection,
    // --- passwd ---
    /// Spec 2.x `create` together with user-level fields.
    CreateConflict,
    /// A passwd/group/shadow field with a `:`, a newline or a NUL byte (it would break the
    /// file's lines apart).
    AccountField,
    // --- numbers ---
    /// A number outside what it stands for (an id, a byte size, a timeout).
    OutOfRange,
    // --- storage that needs disks ---
    /// A bad disk, partition, raid, filesystem or LUKS entry.
    Storage,
}

impl Kind {
    /// The reason used when a finding gives no message of its own.
    pub fn default_message(self) -> &'static str {
        match self {
            Kind::InvalidJson => "invalid JSON",
            Kind::EmptyConfig => "not a config (empty)",
            Kind::NotAConfig => "not a config",
            Kind::InvalidVersion => "invalid config version (couldn't parse)",
            Kind::UnsupportedVersion => "unsupported config version",
            Kind::TypeMismatch => "value has the wrong type",
            Kind::UnusedKey => "unused key",
            Kind::Deprecated => "deprecated field",
            Kind::PathMissing => "path not specified",
            Kind::PathNotAbsolute => "path not absolute",
            Kind::PathNotClean => "path is not fully simplified",
            Kind::IllegalMode => "illegal file mode",
            Kind::SpecialModeBits => {
                "setuid/setgid/sticky bits are not supported in this spec version and are dropped"
            }
            Kind::ModeUnset => {
                "permissions unset: Keel uses 0644 for files and 0755 for directories (as Flatcar does; Container Linux used 0000)"
            }
            Kind::IdAndName => "cannot set both id and name",
            Kind::NoFilesystem => "no filesystem specified",
            Kind::UndefinedFilesystem => "filesystem is not defined",
            Kind::AppendAndOverwrite => "cannot set both append and overwrite to true",
            Kind::OverwriteWithoutSource => "overwrite must be false if source is unspecified",
            Kind::Duplicate => "duplicate entry defined",
            Kind::PathIncludesLink => "path includes link in config",
            Kind::ConflictsWithUnit => "path conflicts with systemd unit or dropin",
            Kind::PathBelowFile => "path is below a file the config also writes",
            Kind::UnusablePath => "path cannot be used",
            Kind::LinkTargetRequired => "link target is required",
            Kind::HardLinkToDirectory => "hard link target is a directory",
            Kind::InvalidCompression => "invalid compression method",
            Kind::MalformedHash => "malformed hash specifier",
            Kind::UnknownHashFunction => "unrecognized hash function",
            Kind::HashSize => "incorrect size for hash sum",
            Kind::InvalidUrl => "unable to parse url",
            Kind::UnsupportedScheme => "invalid url scheme",
            Kind::HashWithoutSource => "source must be specified if verification is specified",
            Kind::SourceRequired => "source is required",
            Kind::HttpHeader => "invalid HTTP header",
            Kind::ProxyScheme => "proxies must be http(s)",
            Kind::NameMissing => "name is required",
            Kind::UnitExtension => "invalid systemd unit extension",
            Kind::DropinExtension => "invalid systemd drop-in extension",
            Kind::NetworkdExtension => "invalid networkd unit extension",
            Kind::UnitContents => "invalid unit content",
            Kind::InstallName => "invalid unit name in [Install]",
            Kind::NoInstallSection => {
                "unit is enabled but has no [Install] section, so enabling it does nothing"
            }
            Kind::CreateConflict => "cannot use both the create object and user-level fields",
            Kind::AccountField => "field cannot contain \":\", a newline or a NUL byte",
            Kind::OutOfRange => "value out of range",
            Kind::Storage => "invalid storage entry",
        }
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Error or warning.
    pub severity: Severity,
    /// The JSON path of the field.
    pub path: String,
    /// What kind of problem.
    pub kind: Kind,
    /// The reason, for a human.
    pub message: String,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{sev}: {}: {}", self.path, self.message)
    }
}

/// Every finding about a config, in the order found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// The findings.
    pub entries: Vec<Entry>,
}

impl Report {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an error with the kind's default reason.
    pub fn error(&mut self, at: &JsonPath, kind: Kind) {
        self.push(
            Severity::Error,
            at,
            kind,
            kind.default_message().to_string(),
        );
    }

    /// Adds an error with its own reason.
    pub fn error_msg(&mut self, at: &JsonPath, kind: Kind, message: impl Into<String>) {
        self.push(Severity::Error, at, kind, message.into());
    }

    /// Adds a warning with the kind's default reason.
    pub fn warn(&mut self, at: &JsonPath, kind: Kind) {
        self.push(
            Severity::Warning,
            at,
            kind,
            kind.default_message().to_string(),
        );
    }

    /// Adds a warning with its own reason.
    pub fn warn_msg(&mut self, at: &JsonPath, kind: Kind, message: impl Into<String>) {
        self.push(Severity::Warning, at, kind, message.into());
    }

    fn push(&mut self, severity: Severity, at: &JsonPath, kind: Kind, message: String) {
        self.entries.push(Entry {
            severity,
            path: at.as_str().to_string(),
            kind,
            message,
        });
    }

    /// Appends every entry of `other`.
    pub fn extend(&mut self, other: Report) {
        self.entries.extend(other.entries);
    }

    /// True when any entry is an error.
    pub fn has_errors(&self) -> bool {
        self.entries.iter().any(|e| e.severity == Severity::Error)
    }

    /// The errors.
    pub fn errors(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| e.severity == Severity::Error)
    }

    /// The warnings.
    pub fn warnings(&self) -> impl Iterator<Item = &Entry> {
        self.entries
            .iter()
            .filter(|e| e.severity == Severity::Warning)
    }

    /// Keeps only the warnings (used once a config is known to be valid).
    pub fn into_warnings(self) -> Vec<Entry> {
        self.entries
            .into_iter()
            .filter(|e| e.severity == Severity::Warning)
            .collect()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.entries.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Report {}
