//! Raw spec types, one module per spec line, exactly as the JSON spells them. No logic lives
//! here: `since N` on a field names the minor version that introduced it, so a key from a later
//! version is reported as unused, as Ignition does.

pub mod v2;
pub mod v3;
