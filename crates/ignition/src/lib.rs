//! Keel's Ignition: parse, validate and apply Ignition configs of spec 2.0–2.4 (Container
//! Linux / Flatcar) and 3.0–3.5 (Fedora CoreOS / Flatcar).
//!
//! By stage, one folder each:
//!  * [`parse`](mod@parse): [`parse::version`] reads `ignition.version` and picks the raw types
//!    ([`parse::spec`]), decoded by [`parse::decode`] (unknown keys are warnings, never
//!    errors); [`parse::lift`] turns a 2.x config into the 3.x raw form, keeping what only
//!    2.x says in a record, and [`parse::translate`] maps the 3.x raw form into the one
//!    internal [`model`];
//!  * [`validate`] finds every problem at once, each with its JSON path ([`report`]);
//!  * [`merge`] fetches and combines referenced configs (merge/append/replace); the whole
//!    config checked once more ([`validate::whole`]) becomes a [`ValidConfig`], the only
//!    input of what follows;
//!  * [`plan`](mod@plan) turns a [`ValidConfig`] into ordered operations, without I/O or checks;
//!  * [`fetch`] gets the bytes behind a URL, decompressed and verified;
//!  * [`apply`](mod@apply) fetches what each operation needs and runs them inside a root directory
//!    ([`apply::root`]), by area: files, accounts, units; its progress journal
//!    ([`apply::progress`]) lets a run cut by a power failure be finished by the next one as
//!    if it had never been cut.
//!
//! By area, what several stages share: [`units`] (systemd unit text, names, `[Install]`,
//! presets, networkd files), [`passwd`] (the account files), [`resource`] (URLs, `data:`,
//! hashes), and [`storage`] (partition tables, probing, mkfs, the [`storage::Disks`] seam
//! and its fake).
//!
//! The first-boot path ([`firstboot`]) reads the kernel command line ([`cmdline`]), finds
//! and fetches the config, calls [`load`], sets up disks and filesystems ([`storage`]) and
//! then applies the rest into the new root.

pub mod apply;
pub mod cmdline;
pub mod fetch;
pub mod firstboot;
pub mod merge;
pub mod model;
pub mod parse;
pub mod passwd;
pub mod plan;
pub mod report;
pub mod resource;
pub mod storage;
pub mod units;
pub mod validate;

pub use apply::{
    apply, apply_with, prepare, prepare_with, Action, ActionKind, Applied, ApplyError,
    ApplyOptions, Journal, JournalError, Outcome, Prepared,
};
pub use fetch::{FetchError, FetchOptions, Fetcher, MapFetcher, StdFetcher};
pub use merge::resolve;
pub use model::Config;
pub use parse::parse;
pub use parse::version::Version;
pub use plan::{plan, Plan};
pub use report::{Entry, JsonPath, Kind, Report, Severity};
pub use validate::ValidConfig;

/// Parses and validates `bytes`, then fetches and merges every config it references.
/// The result is ready for [`plan()`] and [`apply()`].
pub fn load(bytes: &[u8], fetcher: &dyn Fetcher) -> Result<ValidConfig, Report> {
    resolve(parse(bytes)?, fetcher)
}
