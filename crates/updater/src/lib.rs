//! Keel's updater library: what the `updater` binary does, as functions over paths so tests
//! run them on a directory standing in for the ESP.
//!
//!  * [`config`]: update.conf (`/etc/keel`, and CL's `/etc/coreos`): fragments → merged →
//!    validated [`config::Settings`].
//!  * [`commands`]: `status`, `mark-good` and `set-next`.
//!  * [`esp`]: the kernel's answer to "is this directory the mounted ESP" (the commands that
//!    write refuse any other directory).
//!  * [`version`]: release versions and their order (dotted numbers, semver-like).
//!  * [`wave`]: rollout plans (waves, pulled) and a node's stable place in the fleet.
//!  * [`window`]: locksmith's reboot windows (`Thu 04:00` + `1h30m`): open, next opening.
//!  * [`policy`]: which release to take (waves, pulled and failed releases, no silent
//!    downgrade), with the reason.
//!  * [`state`]: the update state machine, its JSON state file and the failed-release record.
//!  * [`status`]: the update fields of `updater status` (channel, versions, state, last check).
//!  * [`strategy`]: reboot strategies (`reboot`, `etcd-lock`, `fleetlock`, `off`), the next
//!    reboot step, and the [`strategy::Lock`] seam for locksmith and FleetLock.
//!  * [`repo`]: the channel's TUF update repository (tough): its releases, each file with its
//!    URL, size and SHA-256, or a refusal that names the cause (expired, rolled back, untrusted
//!    keys, tampered).
//!  * [`payload`]: a release onto the node: the slot payload streamed into the inactive USR
//!    partition (resumable, verified), the kernel and initramfs onto the ESP, then the trial
//!    armed; never the active slot.
//!  * [`utc`]: UTC instants as seconds, weekdays and RFC 3339 text (time is always an argument).

pub mod commands;
pub mod config;
pub mod esp;
pub mod payload;
pub mod policy;
pub mod repo;
pub mod state;
pub mod status;
pub mod strategy;
pub mod utc;
pub mod version;
pub mod wave;
pub mod window;

#[cfg(test)]
mod test_server;
