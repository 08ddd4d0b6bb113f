//! Raw spec types, exactly as the JSON spells them. No logic lives here: `since N` on a field
//! names the minor version that introduced it, so a key from a later version is reported as
//! unused, as Ignition does.
//!
//! [`v3`] holds the 3.x raw form. An object both lines share is one type there: its fields
//! say, per line, since when they exist (`since [N2, N3]`, `_` where a line has no such key),
//! so the 2.x-only keys of a shared object (a file's `filesystem`, a partition's `size` in
//! sectors) are fields of it too. [`v2`] holds only what 2.x shapes differently (`mount`,
//! `create`, config references without `compression`, networkd); [`crate::parse::lift`] turns those
//! into the 3.x form.

pub mod v2;
pub mod v3;
