//! Stages 1 and 2 of applying (fetch everything, run everything dry) and stage 3 (run it for
//! real, journaled): [`prepare_with`] turns the plan into [`Step`]s, each operation carrying
//! what was fetched for it, and [`Prepared::run`] runs them.

use std::fmt;
use std::path::Path;

use super::progress;
use super::root::Root;
use super::run::Run;
use super::staging::Staging;
use super::tree::{Part, Tree};
use super::{io_err, op_at, Applied, ApplyError, ApplyOptions, Journal};
use crate::fetch::{fetch_resource_to, Fetcher};
use crate::merge::fetch_options;
use crate::model::Resource;
use crate::plan::{plan, Op, Plan, Skipped};
use crate::validate::ValidConfig;

/// An operation of the plan with what was fetched for it: a file's contents and appended
/// data travel with their operation.
#[derive(Debug)]
pub(super) struct Step {
    /// The operation.
    pub(super) op: Op,
    /// A file's data (`None` for other operations, and for those an earlier run did).
    pub(super) fetched: Option<Fetched>,
}

/// A file's fetched data, in staging files.
#[derive(Debug)]
pub(super) struct Fetched {
    pub(super) contents: Option<Part>,
    pub(super) append: Vec<Part>,
}

/// A config whose resources are all fetched and verified, and whose operations all
/// succeeded in a dry run against the root: what is left can only fail on I/O. See
/// [`prepare`].
pub struct Prepared {
    /// The plan's operations, each with what was fetched for it.
    steps: Vec<Step>,
    /// What the plan skips, and its notes.
    skipped: Vec<Skipped>,
    notes_of_plan: Vec<String>,
    root: Root,
    /// Holds the fetched contents until the run is over.
    staging: Staging,
    journal: Journal,
    /// Operations an earlier, interrupted run did.
    done: usize,
    /// What the journal said, for the log.
    notes: Vec<String>,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("steps", &self.steps)
            .field("root", &self.root.dir())
            .finish_non_exhaustive()
    }
}

/// Stages 1 and 2 of [`apply`](super::apply): plans `cfg`, fetches every resource and runs every
/// operation dry, without writing anything. [`Prepared::run`] then writes. First boot puts
/// the disk work in between, so a config that cannot be applied never touches a disk (the
/// dry run sees the root before its filesystems are mounted).
pub fn prepare(
    cfg: &ValidConfig,
    root: &Path,
    fetcher: &dyn Fetcher,
) -> Result<Prepared, ApplyError> {
    prepare_with(cfg, root, fetcher, Journal::open(root)?)
}

/// [`prepare`] with the root's journal, opened by the caller. What an earlier run of the
/// same config left is resumed first ([`Journal::resume`]: the cut operation rolled back),
/// and only the operations it did not finish are fetched, run dry and later run; another
/// config's journal is rolled back and dropped. These are the only writes before
/// [`Prepared::run`], besides the staging files.
pub fn prepare_with(
    cfg: &ValidConfig,
    root: &Path,
    fetcher: &dyn Fetcher,
    mut journal: Journal,
) -> Result<Prepared, ApplyError> {
    let Plan {
        ops,
        skipped,
        notes: notes_of_plan,
    } = plan(cfg);
    let root = Root::new(root).map_err(|source| ApplyError::Io {
        at: "$".into(),
        path: root.to_path_buf(),
        source,
    })?;
    let resume = journal.resume(&progress::digest(cfg))?;
    let done = if resume.complete {
        ops.len()
    } else {
        resume.done.min(ops.len())
    };
    let opts = if done < ops.len() {
        fetch_options(cfg, fetcher).map_err(ApplyError::Config)?
    } else {
        Default::default()
    };

    // 1. Fetch everything first, into staging files.
    let mut staging = Staging::new(root.dir());
    staging.clear().map_err(|source| ApplyError::Io {
        at: "$".into(),
        path: staging.dir().to_path_buf(),
        source,
    })?;
    let mut fetch = |r: &Resource| {
        let (mut file, path) = staging.file().map_err(|source| ApplyError::Io {
            at: r.at.key("source").to_string(),
            path: staging.dir().to_path_buf(),
            source,
        })?;
        fetch_resource_to(fetcher, r, cfg.version, &opts, &mut file).map_err(|source| {
            ApplyError::Fetch {
                at: source.path(r).to_string(),
                source,
            }
        })?;
        Ok::<_, ApplyError>(Part::File(path))
    };
    let mut steps = Vec::with_capacity(ops.len());
    for (i, op) in ops.into_iter().enumerate() {
        let fetched = match &op {
            _ if i < done => None,
            Op::File {
                contents, append, ..
            } => {
                let contents = match contents {
                    Some(r) if r.source.is_some() => Some(fetch(r)?),
                    _ => None,
                };
                let append = append
                    .iter()
                    .map(&mut fetch)
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Fetched { contents, append })
            }
            _ => None,
        };
        steps.push(Step { op, fetched });
    }

    // 2. Everything (not done yet), dry.
    let mut dry = Run::new(
        root.clone(),
        Tree::dry(),
        &steps,
        &skipped,
        &notes_of_plan,
        0,
    );
    for step in steps.iter().skip(done) {
        dry.step(step)?;
    }
    Ok(Prepared {
        steps,
        skipped,
        notes_of_plan,
        root,
        staging,
        journal,
        done,
        notes: resume.notes,
    })
}

impl Prepared {
    /// The root's journal: first boot records its storage stage in it.
    pub fn journal(&mut self) -> &mut Journal {
        &mut self.journal
    }

    /// Stage 3 of [`apply`](super::apply): runs the operations not done yet in plan order, each recorded
    /// in the journal, which is marked complete at the end.
    pub fn run(self, options: &ApplyOptions) -> Result<Applied, ApplyError> {
        let Prepared {
            steps,
            skipped,
            notes_of_plan,
            root,
            staging,
            mut journal,
            done,
            notes,
        } = self;
        let today = options.today.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 86400)
        });
        for s in &skipped {
            tracing::warn!(at = %s.at, what = %s.what, "skipped: {}", s.reason);
        }
        if let Err(e) = journal.begin() {
            keep_after_cut(&journal, staging);
            return Err(e.into());
        }
        let dir = root.dir().to_path_buf();
        let tree = Tree::journaled(journal);
        let mut run = Run::new(root, tree, &steps, &skipped, &notes_of_plan, today);
        for n in notes {
            run.warn(n);
        }
        let mut result = Ok(());
        for (i, step) in steps.iter().enumerate().skip(done) {
            let journal = run.tree.journal().expect("journaled");
            journal.begin_op(i);
            result = run.step(step).and_then(|()| {
                let journal = run.tree.journal().expect("journaled");
                journal.end_op().map_err(io_err(op_at(&step.op), &dir))
            });
            if result.is_err() {
                break;
            }
        }
        let (outcome, tree) = run.finish();
        let mut journal = tree.into_journal().expect("journaled");
        if let Err(e) = result {
            keep_after_cut(&journal, staging);
            return Err(e);
        }
        if let Err(e) = journal.complete() {
            keep_after_cut(&journal, staging);
            return Err(e.into());
        }
        Ok(Applied { outcome, journal })
    }
}

/// After a simulated power cut nothing is cleaned up, as after a real one: the staging
/// directory stays for the next run to clear.
fn keep_after_cut(journal: &Journal, staging: Staging) {
    if journal.is_cut() {
        std::mem::forget(staging);
    }
}
