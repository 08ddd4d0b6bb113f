//! Keel's updater library: what the `updater` binary does, as functions over paths so tests
//! run them on a directory standing in for the ESP.
//!
//!  * [`commands`]: `status`, `mark-good` and `set-next`.
//!  * [`esp`]: the kernel's answer to "is this directory the mounted ESP" (the commands that
//!    write refuse any other directory).

pub mod commands;
pub mod esp;
