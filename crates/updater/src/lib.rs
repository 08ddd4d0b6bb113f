//! Keel's updater library: what the `updater` binary does, as functions over paths so tests
//! run them on a directory standing in for the ESP.
//!
//!  * [`booted`]: which slot the running system came from (`keel.slot=` on the kernel command line).
//!  * [`commands`]: `status`, `mark-good` and `set-next`.

pub mod booted;
pub mod commands;
