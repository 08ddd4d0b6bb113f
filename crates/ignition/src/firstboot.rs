//! First boot: decide whether this boot is the first, find the config, and apply it into the
//! new root before the initramfs switches to it. Every path comes in through [`Paths`].
//!
//! Entities:
//!  * [`Paths`]: the kernel command line file, the root being provisioned, the OEM mount and
//!    the first-boot marker (`keel/first_boot` on the ESP; image-build writes it, as Flatcar's
//!    build writes `/flatcar/first_boot`).
//!  * [`decide`]: first boot when the marker exists, or when the command line says so
//!    (`ignition.firstboot`, `coreos.first_boot=1|detected`: PXE has no ESP); pure apart from
//!    reading the command line and checking two files.
//!  * [`Source`] and [`find_source`]: where the config comes from, first found wins, as
//!    Ignition v0.x: `ignition.config.url=`/`coreos.config.url=`, then `config.ign` on the
//!    OEM partition, then none (nothing to do, which is a success).
//!  * [`run`]: fetch → parse, validate, fetch and merge the referenced configs → fetch every
//!    file's contents and preflight the files against the root → disks and filesystems (each
//!    round checked in full before it writes) → files, users, units → remove the marker.
//!    On any error the marker stays, so the next boot tries again.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::apply::{prepare, ApplyError, ApplyOptions, Outcome};
use crate::cmdline::{firstboot_args, FirstbootArgs};
use crate::fetch::{FetchError, FetchOptions, Fetcher};
use crate::report::{Report, Severity};
use crate::storage::{self, Disks, Mount, StorageError, Tools};

/// The config file coreos-install puts on the OEM partition.
pub const OEM_CONFIG: &str = "config.ign";

/// Where first boot reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    /// The kernel command line (`/proc/cmdline`).
    pub cmdline: PathBuf,
    /// The root being provisioned (`/sysroot`).
    pub root: PathBuf,
    /// The mounted OEM partition (`/sysroot/oem`), if any.
    pub oem_dir: Option<PathBuf>,
    /// The first-boot marker (`/sysroot/boot/keel/first_boot`), if the boot has an ESP.
    pub marker: Option<PathBuf>,
}

/// Why this boot is a first boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    /// The marker file exists.
    Marker,
    /// The kernel command line says so.
    Cmdline,
}

/// Where the config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A URL from the kernel command line.
    Url(String),
    /// `config.ign` on the OEM partition.
    Oem(PathBuf),
    /// No config: nothing to do.
    None,
}

impl Source {
    /// Whether applying the config may need the network: the config itself comes over
    /// http(s), or it names an http(s) URL anywhere (file contents, merged configs). Erring
    /// towards yes only costs a DHCP exchange on the first boot.
    pub fn needs_network(&self) -> bool {
        let mentions_http = |t: &str| {
            t.contains("http://")
                || t.contains("https://")
                || t.contains("http%3A")
                || t.contains("https%3A")
        };
        match self {
            Source::Url(u) => mentions_http(u),
            Source::Oem(p) => fs::read_to_string(p).is_ok_and(|t| mentions_http(&t)),
            Source::None => false,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Url(u) if u.starts_with("data:") => {
                f.write_str("a data: URL (kernel command line)")
            }
            Source::Url(u) => write!(f, "{u} (kernel command line)"),
            Source::Oem(p) => write!(f, "{} (OEM partition)", p.display()),
            Source::None => f.write_str("none"),
        }
    }
}

/// What [`decide`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Not a first boot.
    AlreadyDone,
    /// A first boot.
    Run {
        /// Why.
        trigger: Trigger,
        /// The config's source.
        source: Source,
    },
}

/// Why first boot failed. The marker is kept in every case.
#[derive(Debug, thiserror::Error)]
pub enum FirstbootError {
    /// A local file could not be read or changed.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
    /// The config could not be fetched.
    #[error("fetching the config from {from}: {source}")]
    Fetch {
        /// The source.
        from: Source,
        /// Cause.
        source: FetchError,
    },
    /// The config (or one it references) is invalid or could not be resolved.
    #[error("the config from {from} is invalid ({} errors)", report.errors().count())]
    Invalid {
        /// The source.
        from: Source,
        /// Every finding.
        report: Report,
    },
    /// Disks or filesystems could not be set up.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// Writing into the root failed.
    #[error("applying: {0}")]
    Apply(#[from] ApplyError),
    /// A filesystem could not be mounted for the files stage.
    #[error("mounting {node} on {path}: {reason}")]
    Mount {
        /// Device node.
        node: String,
        /// Mount point on the host.
        path: PathBuf,
        /// Cause.
        reason: String,
    },
}

impl FirstbootError {
    /// Every line to show: each finding of an invalid config with its JSON path, or the one
    /// error.
    pub fn lines(&self) -> Vec<String> {
        match self {
            FirstbootError::Invalid { report, .. } => report
                .entries
                .iter()
                .filter(|e| e.severity == Severity::Error)
                .map(|e| e.to_string())
                .collect(),
            other => vec![format!("error: {other}")],
        }
    }
}

/// What a successful [`run`] did.
#[derive(Debug, Default)]
pub struct Summary {
    /// The config's source (`None` when not a first boot).
    pub source: Option<Source>,
    /// Warnings about the config.
    pub warnings: Vec<String>,
    /// Disk and filesystem work, in order.
    pub storage: Vec<String>,
    /// What was written into the root.
    pub outcome: Outcome,
    /// The marker removed, if any.
    pub marker_removed: Option<PathBuf>,
}

/// Where the config comes from: the command line URL, else the OEM `config.ign`, else none.
pub fn find_source(args: &FirstbootArgs, oem_dir: Option<&Path>) -> Source {
    if let Some(u) = &args.config_url {
        return Source::Url(u.clone());
    }
    if let Some(dir) = oem_dir {
        let p = dir.join(OEM_CONFIG);
        if p.is_file() {
            return Source::Oem(p);
        }
    }
    Source::None
}

/// Decides whether this is a first boot and where its config comes from.
pub fn decide(paths: &Paths) -> Result<Decision, FirstbootError> {
    let text = fs::read_to_string(&paths.cmdline).map_err(|source| FirstbootError::Io {
        what: "reading",
        path: paths.cmdline.clone(),
        source,
    })?;
    let args = firstboot_args(&text);
    let trigger = if paths.marker.as_deref().is_some_and(Path::exists) {
        Trigger::Marker
    } else if args.firstboot {
        Trigger::Cmdline
    } else {
        return Ok(Decision::AlreadyDone);
    };
    Ok(Decision::Run {
        trigger,
        source: find_source(&args, paths.oem_dir.as_deref()),
    })
}

fn fetch_config(source: &Source, fetcher: &dyn Fetcher) -> Result<Option<Vec<u8>>, FirstbootError> {
    match source {
        Source::None => Ok(None),
        Source::Oem(p) => fs::read(p).map(Some).map_err(|e| FirstbootError::Io {
            what: "reading",
            path: p.clone(),
            source: e,
        }),
        Source::Url(u) => {
            let opts = FetchOptions {
                is_config: true,
                ..Default::default()
            };
            fetcher
                .fetch(u, &opts)
                .map(Some)
                .map_err(|e| FirstbootError::Fetch {
                    from: source.clone(),
                    source: e,
                })
        }
    }
}

/// Runs first boot; see the module doc. `Ok` with `source: None` means it was not a first boot.
pub fn run(
    paths: &Paths,
    fetcher: &dyn Fetcher,
    disks: &dyn Disks,
    tools: &Tools,
) -> Result<Summary, FirstbootError> {
    let source = match decide(paths)? {
        Decision::AlreadyDone => return Ok(Summary::default()),
        Decision::Run { source, .. } => source,
    };
    let mut summary = Summary {
        source: Some(source.clone()),
        ..Default::default()
    };
    if let Some(bytes) = fetch_config(&source, fetcher)? {
        let mut cfg = crate::load(&bytes, fetcher).map_err(|report| FirstbootError::Invalid {
            from: source.clone(),
            report,
        })?;
        summary.warnings = cfg.warnings.iter().map(|w| w.to_string()).collect();
        let units = storage::mount_units(&cfg);
        cfg.units.extend(units);
        // Everything fetched and checked before the first write.
        let prepared = prepare(&cfg, &paths.root, fetcher)?;
        if storage::has_work(&cfg) {
            let done = storage::apply(&cfg, disks, tools)?;
            summary.storage = done.done;
            let mounted = mount_all(&done.mounts, &paths.root, disks, tools)?;
            let result = prepared.run(&ApplyOptions::default());
            unmount_all(&mounted, disks, tools);
            summary.outcome = result?;
            // The plan skips disks and filesystems (it is shared with `apply --root`); here
            // they were done for real, so those notes would mislead.
            summary.outcome.skipped.retain(|s| {
                !(s.at.starts_with("$.storage.disks") || s.at.starts_with("$.storage.filesystems"))
            });
            summary
                .outcome
                .warnings
                .retain(|w| !w.starts_with("entries below "));
        } else {
            summary.outcome = prepared.run(&ApplyOptions::default())?;
        }
    }
    if let Some(marker) = paths.marker.as_ref().filter(|m| m.exists()) {
        fs::remove_file(marker).map_err(|source| FirstbootError::Io {
            what: "removing the first-boot marker",
            path: marker.clone(),
            source,
        })?;
        if let Some(dir) = marker.parent() {
            // The ESP is FAT: make the removal durable before systemd starts.
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        summary.marker_removed = Some(marker.clone());
    }
    Ok(summary)
}

fn mount_all(
    mounts: &[Mount],
    root: &Path,
    disks: &dyn Disks,
    tools: &Tools,
) -> Result<Vec<PathBuf>, FirstbootError> {
    let mut done = Vec::new();
    for m in mounts {
        let host = storage::host_path(root, &m.path);
        let attempt = fs::create_dir_all(&host)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                let args = vec![
                    "-t".to_string(),
                    m.format.clone(),
                    m.node.clone(),
                    host.display().to_string(),
                ];
                disks.run(&tools.mount, &args, None).map(|_| ())
            });
        if let Err(reason) = attempt {
            unmount_all(&done, disks, tools);
            return Err(FirstbootError::Mount {
                node: m.node.clone(),
                path: host,
                reason,
            });
        }
        done.push(host);
    }
    Ok(done)
}

fn unmount_all(mounted: &[PathBuf], disks: &dyn Disks, tools: &Tools) {
    for host in mounted.iter().rev() {
        let args = vec![host.display().to_string()];
        if let Err(e) = disks.run(&tools.umount, &args, None) {
            tracing::warn!(path = %host.display(), "unmounting failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::MapFetcher;
    use crate::storage::Recorder;

    struct Env {
        dir: tempfile::TempDir,
        paths: Paths,
    }

    /// A root with an /etc, an OEM dir, an ESP dir with the marker, and a command line.
    fn env(cmdline: &str, marker: bool) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("root/etc")).unwrap();
        fs::write(d.join("root/etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
        fs::write(d.join("root/etc/group"), "root:x:0:\n").unwrap();
        fs::write(d.join("root/etc/shadow"), "root:*:19000:0:99999:7:::\n").unwrap();
        fs::create_dir_all(d.join("oem")).unwrap();
        fs::create_dir_all(d.join("boot/keel")).unwrap();
        if marker {
            fs::write(d.join("boot/keel/first_boot"), "").unwrap();
        }
        fs::write(d.join("cmdline"), cmdline).unwrap();
        let paths = Paths {
            cmdline: d.join("cmdline"),
            root: d.join("root"),
            oem_dir: Some(d.join("oem")),
            marker: Some(d.join("boot/keel/first_boot")),
        };
        Env { dir, paths }
    }

    const HOSTNAME: &str = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/etc/hostname","overwrite":true,"contents":{"source":"data:,node-1%0A"}}]}}"#;

    fn run_fake(e: &Env, fetcher: &MapFetcher) -> Result<Summary, FirstbootError> {
        run(&e.paths, fetcher, &Recorder::default(), &Tools::default())
    }

    #[test]
    fn the_marker_or_the_command_line_makes_a_first_boot() {
        let e = env("keel.slot=A", false);
        assert_eq!(decide(&e.paths).unwrap(), Decision::AlreadyDone);
        let e = env("keel.slot=A", true);
        assert_eq!(
            decide(&e.paths).unwrap(),
            Decision::Run {
                trigger: Trigger::Marker,
                source: Source::None
            }
        );
        let e = env("keel.live coreos.first_boot=1", false);
        assert!(matches!(
            decide(&e.paths).unwrap(),
            Decision::Run {
                trigger: Trigger::Cmdline,
                ..
            }
        ));
    }

    #[test]
    fn sources_in_order_url_then_oem_then_none() {
        let e = env(
            "ignition.firstboot coreos.config.url=http://10.0.2.2/c.ign",
            false,
        );
        fs::write(e.dir.path().join("oem/config.ign"), HOSTNAME).unwrap();
        let Decision::Run { source, .. } = decide(&e.paths).unwrap() else {
            panic!()
        };
        assert_eq!(source, Source::Url("http://10.0.2.2/c.ign".into()));
        assert!(source.needs_network());

        let e = env("ignition.firstboot", false);
        fs::write(e.dir.path().join("oem/config.ign"), HOSTNAME).unwrap();
        let Decision::Run { source, .. } = decide(&e.paths).unwrap() else {
            panic!()
        };
        assert_eq!(source, Source::Oem(e.dir.path().join("oem/config.ign")));
        assert!(!source.needs_network());
    }

    #[test]
    fn an_oem_config_that_fetches_over_http_needs_the_network() {
        let dir = tempfile::tempdir().unwrap();
        let with_http = dir.path().join("http.ign");
        fs::write(&with_http, r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/x","contents":{"source":"http://10.0.2.2:8080/x"}}]}}"#).unwrap();
        let local = dir.path().join("local.ign");
        fs::write(&local, r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/x","contents":{"source":"data:,x"}}]}}"#).unwrap();
        assert!(Source::Oem(with_http).needs_network());
        assert!(!Source::Oem(local).needs_network());
        assert!(!Source::None.needs_network());

        let e = env("ignition.firstboot", false);
        let Decision::Run { source, .. } = decide(&e.paths).unwrap() else {
            panic!()
        };
        assert_eq!(source, Source::None);
    }

    #[test]
    fn success_applies_and_removes_the_marker_once() {
        let e = env("keel.slot=A", true);
        fs::write(e.dir.path().join("oem/config.ign"), HOSTNAME).unwrap();
        let s = run_fake(&e, &MapFetcher::new()).unwrap();
        assert_eq!(
            fs::read_to_string(e.paths.root.join("etc/hostname")).unwrap(),
            "node-1\n"
        );
        assert_eq!(s.marker_removed.as_ref(), e.paths.marker.as_ref());
        assert!(!e.paths.marker.as_ref().unwrap().exists());

        // Second boot: nothing runs, a deleted file stays deleted.
        fs::remove_file(e.paths.root.join("etc/hostname")).unwrap();
        let s = run_fake(&e, &MapFetcher::new()).unwrap();
        assert!(s.source.is_none());
        assert!(!e.paths.root.join("etc/hostname").exists());
    }

    #[test]
    fn a_url_config_is_fetched_and_no_config_is_a_success() {
        let e = env(
            "ignition.firstboot ignition.config.url=http://h/c.ign",
            true,
        );
        let f = MapFetcher::new().with("http://h/c.ign", HOSTNAME);
        run_fake(&e, &f).unwrap();
        assert_eq!(f.requests.borrow()[0], "http://h/c.ign");
        assert!(e.paths.root.join("etc/hostname").exists());

        let e = env("keel.slot=A", true);
        let s = run_fake(&e, &MapFetcher::new()).unwrap();
        assert_eq!(s.source, Some(Source::None));
        assert!(s.marker_removed.is_some());
    }

    #[test]
    fn failures_keep_the_marker_and_write_nothing() {
        // Invalid: every error with its JSON path.
        let e = env("keel.slot=A", true);
        let bad = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[
            {"path":"etc/relative","contents":{"source":"data:,x"}},
            {"path":"/etc/ok","mode":99999,"contents":{"source":"data:,y"}}]}}"#;
        fs::write(e.dir.path().join("oem/config.ign"), bad).unwrap();
        let err = run_fake(&e, &MapFetcher::new()).unwrap_err();
        let lines = err.lines();
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("error: $.storage.files[0].path:")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("error: $.storage.files[1].mode:")),
            "{lines:?}"
        );
        assert!(e.paths.marker.as_ref().unwrap().exists());
        assert!(!e.paths.root.join("etc/ok").exists());

        // A file whose contents cannot be fetched: nothing written, not even the first file.
        let e = env("keel.slot=A", true);
        let cfg = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[
            {"path":"/etc/a","contents":{"source":"data:,a"}},
            {"path":"/etc/b","contents":{"source":"http://h/missing"}}]}}"#;
        fs::write(e.dir.path().join("oem/config.ign"), cfg).unwrap();
        let err = run_fake(&e, &MapFetcher::new()).unwrap_err();
        assert!(
            err.to_string()
                .contains("$.storage.files[1].contents.source"),
            "{err}"
        );
        assert!(!e.paths.root.join("etc/a").exists());
        assert!(e.paths.marker.as_ref().unwrap().exists());

        // The URL cannot be fetched.
        let e = env("ignition.config.url=http://h/gone.ign", true);
        let err = run_fake(&e, &MapFetcher::new()).unwrap_err();
        assert!(matches!(err, FirstbootError::Fetch { .. }), "{err}");
        assert!(e.paths.marker.as_ref().unwrap().exists());
    }

    #[test]
    fn storage_runs_between_the_fetch_and_the_files_with_mounts_around_the_files() {
        let e = env("keel.slot=A", true);
        let cfg = r#"{"ignition":{"version":"3.3.0"},"storage":{
            "filesystems":[{"device":"/dev/vdb","format":"ext4","path":"/var/lib/docker","wipeFilesystem":true}],
            "files":[{"path":"/var/lib/docker/keep","contents":{"source":"data:,k"}}]}}"#;
        fs::write(e.dir.path().join("oem/config.ign"), cfg).unwrap();
        let fake = Recorder::default();
        let s = run(&e.paths, &MapFetcher::new(), &fake, &Tools::default()).unwrap();
        let host = e.paths.root.join("var/lib/docker").display().to_string();
        assert_eq!(
            fake.calls(),
            [
                "/sbin/blkid -p -o export /dev/vdb".to_string(),
                "/sbin/mke2fs -F -q -t ext4 /dev/vdb".to_string(),
                format!("/bin/mount -t ext4 /dev/vdb {host}"),
                format!("/bin/umount {host}"),
            ]
        );
        assert_eq!(s.storage, ["created ext4 filesystem on /dev/vdb"]);
        assert!(s.outcome.skipped.is_empty(), "{:?}", s.outcome.skipped);
        assert!(s.outcome.warnings.is_empty(), "{:?}", s.outcome.warnings);
        let unit = e.paths.root.join("etc/systemd/system/var-lib-docker.mount");
        assert!(fs::read_to_string(unit)
            .unwrap()
            .contains("Where=/var/lib/docker"));
        let link = e
            .paths
            .root
            .join("etc/systemd/system/local-fs.target.wants/var-lib-docker.mount");
        assert_eq!(
            fs::read_link(link).unwrap(),
            Path::new("/etc/systemd/system/var-lib-docker.mount")
        );
    }
}
