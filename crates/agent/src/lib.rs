//! Keel's node agent.
//!
//!  * [`status`]: the node status model (OS version, booted slot, uptime, engine state), read
//!    from paths under a root so tests use a directory.
//!  * [`engine`]: the container engine seen through the Docker API on its unix socket.
//!  * [`notify`]: telling systemd the agent is ready (`sd_notify`).
//!  * [`api`]: the local unix-socket server that hands out the status as JSON.

pub mod api;
pub mod engine;
pub mod notify;
pub mod status;
