//! Raw spec types, exactly as the JSON spells them. No logic lives here: `since N` on a field
//! names the minor version that introduced it, so a key from a later version is reported as
//! unused, as Ignition does.
//!
//! [`v3`] holds the 3.x raw form, into which every config is decoded ([`Config`]). An object
//! both lines share is one type there: its fields say, per line, since when they exist
//! (`since [N2, N3]`, `_` where a line has no such key), so the 2.x-only keys of a shared
//! object (a file's `filesystem`, a partition's `size` in sectors) are fields of it too; a key
//! whose value has another shape in 2.x has a field per line (`append`, `replace`). [`v2`]
//! holds only the 2.x objects with no 3.x counterpart (`mount`, `create`, references without
//! `compression`, networkd); [`crate::parse::lift`] turns a 2.x config into the 3.x form.

pub mod v2;
pub mod v3;

pub use v3::Config;
