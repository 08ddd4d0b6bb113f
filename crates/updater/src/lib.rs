//! Keel's updater library: what the `updater` binary does, as functions over paths so tests
//! run them on a directory standing in for the ESP.
//!
//!  * [`commands`]: `status`, `mark-good` and `set-next`.

pub mod commands;
