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
//!
//! A power cut does the same: the marker stays, and the next boot runs the same config
//! again. The progress journal on ROOT (`/.ignition-progress`, see [`crate::apply::progress`])
//! makes that run finish the job rather than repeat it: disks and filesystems an earlier
//! boot finished are only mounted (formatting them again would lose the files already on
//! them), done operations are skipped, the cut one is rolled back and done again. The
//! journal is marked complete before the marker is removed; a boot cut between the two only
//! removes the marker. The completed journal stays on ROOT as the record of the config
//! applied (its digest). A different config (the OEM `config.ign` edited in between) does
//! not resume the old journal: the log says so, and the config is applied afresh.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::apply::progress::{self, Verdict};
use crate::apply::{prepare_with, Applied, ApplyError, ApplyOptions, Journal, Outcome};
use crate::cmdline::{firstboot_args, FirstbootArgs};
use crate::fetch::{FetchError, FetchOptions, Fetcher};
use crate::report::{Report, Severity};
use crate::storage::{self, Disks, Mount, StorageError, Tools};
use crate::validate::ValidConfig;

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
    run_with(paths, fetcher, disks, tools, &ApplyOptions::default())
}

/// [`run`] with apply options; tests simulate power cuts through
/// [`ApplyOptions::cut_after`] (the marker's removal counts as a change too).
pub fn run_with(
    paths: &Paths,
    fetcher: &dyn Fetcher,
    disks: &dyn Disks,
    tools: &Tools,
    options: &ApplyOptions,
) -> Result<Summary, FirstbootError> {
    let source = match decide(paths)? {
        Decision::AlreadyDone => return Ok(Summary::default()),
        Decision::Run { source, .. } => source,
    };
    let mut summary = Summary {
        source: Some(source.clone()),
        ..Default::default()
    };
    let mut journal = None;
    if let Some(bytes) = fetch_config(&source, fetcher)? {
        let mut cfg = crate::load(&bytes, fetcher).map_err(|report| FirstbootError::Invalid {
            from: source.clone(),
            report,
        })?;
        summary.warnings = cfg.warnings.iter().map(|w| w.to_string()).collect();
        let units = storage::mount_units(&cfg);
        cfg.config_mut().units.extend(units);
        let opened = Journal::open(&paths.root)
            .map_err(ApplyError::from)?
            .cut_after(options.cut_after);
        journal = Some(apply_config(
            &cfg,
            paths,
            fetcher,
            disks,
            tools,
            options,
            opened,
            &mut summary,
        )?);
    }
    if let Some(marker) = paths.marker.as_ref().filter(|m| m.exists()) {
        let io = |source| FirstbootError::Io {
            what: "removing the first-boot marker",
            path: marker.clone(),
            source,
        };
        if let Some(j) = journal.as_mut() {
            j.tick().map_err(io)?;
        }
        fs::remove_file(marker).map_err(io)?;
        if let Some(dir) = marker.parent() {
            // The ESP is FAT: make the removal durable before systemd starts.
            let _ = fs::File::open(dir).and_then(|d| d.sync_all());
        }
        summary.marker_removed = Some(marker.clone());
    }
    Ok(summary)
}

/// Storage, then the files stage, resuming what an earlier boot of the same config did;
/// returns the journal, marked complete.
#[allow(clippy::too_many_arguments)]
fn apply_config(
    cfg: &ValidConfig,
    paths: &Paths,
    fetcher: &dyn Fetcher,
    disks: &dyn Disks,
    tools: &Tools,
    options: &ApplyOptions,
    journal: Journal,
    summary: &mut Summary,
) -> Result<Journal, FirstbootError> {
    let verdict = journal.verdict(&progress::digest(cfg));
    let applied = if !storage::has_work(cfg) || verdict == Verdict::Complete {
        prepare_with(cfg, &paths.root, fetcher, journal)?.run(options)?
    } else if let Verdict::Resume { storage: true, .. } = verdict {
        // An earlier boot made the disks and filesystems and may have written files onto
        // them: mount them first, so the rollback and the dry run see those files.
        let mounts = storage::mounts(cfg, disks)?;
        summary
            .storage
            .push("disks and filesystems were made by an earlier boot; mounted them".into());
        let mounted = mount_all(&mounts, &paths.root, disks, tools)?;
        let result = prepare_with(cfg, &paths.root, fetcher, journal)
            .and_then(|prepared| prepared.run(options));
        unmount_all(&mounted, disks, tools);
        result?
    } else {
        // Everything fetched and checked before the first write.
        let mut prepared = prepare_with(cfg, &paths.root, fetcher, journal)?;
        prepared.journal().begin().map_err(ApplyError::from)?;
        let done = storage::apply(cfg, disks, tools)?;
        summary.storage = done.done;
        prepared
            .journal()
            .storage_done()
            .map_err(ApplyError::from)?;
        let mounted = mount_all(&done.mounts, &paths.root, disks, tools)?;
        let result = prepared.run(options);
        unmount_all(&mounted, disks, tools);
        result?
    };
    let Applied {
        mut outcome,
        journal,
    } = applied;
    if storage::has_work(cfg) {
        // The plan skips disks and filesystems (it is shared with `apply --root`); here
        // they were done for real, so those notes would mislead.
        outcome.skipped.retain(|s| {
            !(s.at.starts_with("$.storage.disks") || s.at.starts_with("$.storage.filesystems"))
        });
        outcome
            .warnings
            .retain(|w| !w.starts_with("entries below "));
    }
    summary.outcome = outcome;
    Ok(journal)
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
mod tests;
