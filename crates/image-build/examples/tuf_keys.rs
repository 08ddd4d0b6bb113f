//! Make a new TUF key set for an update repository (see `image_build::tuf_keys`):
//!
//! ```text
//! cargo run -p image-build --example tuf_keys -- DIR [ROOT_EXPIRES]
//! ```
//!
//! DIR gets `root.json` and one Ed25519 secret key per role (`*.pk8`); ROOT_EXPIRES is an
//! RFC 3339 time (default: one year from now). Existing files are never overwritten. The
//! repository's public TEST set was made with `crates/release/keys/tuf/gen.sh`, which runs this.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        bail!("usage: tuf_keys DIR [ROOT_EXPIRES (RFC 3339, default one year from now)]");
    };
    let expires = match args.next() {
        Some(t) => t
            .to_str()
            .context("ROOT_EXPIRES is not UTF-8")?
            .parse::<jiff::Timestamp>()
            .context("ROOT_EXPIRES is not an RFC 3339 time such as 2030-01-01T00:00:00Z")?,
        None => jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(365 * 24))
            .and_then(|t| t.round(jiff::Unit::Second))
            .context("one year from now")?,
    };
    image_build::tuf_keys::generate(&dir, expires)?;
    println!(
        "made {}/root.json (expires {expires}) and its keys root.pk8, targets.pk8, snapshot.pk8, \
         timestamp.pk8; keep root.pk8 offline",
        dir.display()
    );
    Ok(())
}
