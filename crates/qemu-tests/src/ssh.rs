//! SSH into a VM on its forwarded port with the host's `ssh` client (package `openssh-client`).
//!
//! Entities:
//!  * [`SshKey`]: an ed25519 key pair generated with `ssh-keygen` into a temp dir, for putting the
//!    public half into an Ignition config.
//!  * [`Ssh`]: runs commands as one user with that key, retrying while sshd is not up yet.
//!
//! Host keys are not checked (`StrictHostKeyChecking=no`, known hosts `/dev/null`): every VM is
//! new, and the port is on 127.0.0.1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use tempfile::TempDir;
use tracing::{debug, info};

use crate::tools::{self, ToolError};
use crate::Deadline;

/// ssh's exit code for its own failures (connection refused, auth failed, ...), as opposed to
/// the remote command's.
const SSH_FAILURE: i32 = 255;

/// An SSH operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// `ssh` or `ssh-keygen` is not installed.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// Running a host program failed.
    #[error("ssh: running {program}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// `ssh-keygen` failed.
    #[error("ssh-keygen failed: {0}")]
    Keygen(String),
    /// No connection could be made before the deadline.
    #[error(
        "ssh {user}@127.0.0.1:{port}: no connection within {waited:?}; last error: {last_error}"
    )]
    Unreachable {
        /// The user.
        user: String,
        /// The forwarded port.
        port: u16,
        /// How long it was tried.
        waited: Duration,
        /// ssh's last complaint.
        last_error: String,
    },
}

/// An ed25519 key pair in its own temp dir (removed on drop).
#[derive(Debug)]
pub struct SshKey {
    _dir: TempDir,
    private: PathBuf,
    public: String,
}

impl SshKey {
    /// Generate a new key pair with `ssh-keygen -t ed25519`.
    pub fn generate() -> Result<SshKey, SshError> {
        let keygen = tools::require("ssh-keygen", "openssh-client")?;
        let dir = tempfile::Builder::new()
            .prefix("keel-ssh-")
            .tempdir()
            .map_err(|source| SshError::Spawn {
                program: "mkdtemp".into(),
                source,
            })?;
        let private = dir.path().join("id_ed25519");
        let output = Command::new(&keygen)
            .args([
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "keel-qemu-tests",
                "-f",
            ])
            .arg(&private)
            .output()
            .map_err(|source| SshError::Spawn {
                program: keygen.display().to_string(),
                source,
            })?;
        if !output.status.success() {
            return Err(SshError::Keygen(
                String::from_utf8_lossy(&output.stderr).trim().to_string(),
            ));
        }
        let public = std::fs::read_to_string(private.with_extension("pub"))
            .map_err(|source| SshError::Spawn {
                program: "reading the public key".into(),
                source,
            })?
            .trim()
            .to_string();
        Ok(SshKey {
            _dir: dir,
            private,
            public,
        })
    }

    /// The private key file.
    pub fn private_key(&self) -> &Path {
        &self.private
    }

    /// The public key line (`ssh-ed25519 AAAA... keel-qemu-tests`), as `authorized_keys` wants it.
    pub fn public_key(&self) -> &str {
        &self.public
    }
}

/// An SSH client for one user on one forwarded port.
#[derive(Debug, Clone)]
pub struct Ssh {
    port: u16,
    user: String,
    key: PathBuf,
}

impl Ssh {
    /// A client for `user@127.0.0.1:port` with the private key file `key`.
    pub fn new(port: u16, user: &str, key: &Path) -> Ssh {
        Ssh {
            port,
            user: user.to_string(),
            key: key.to_path_buf(),
        }
    }

    /// The ssh arguments before the remote command.
    pub fn args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            "-o",
            "LogLevel=ERROR",
            "-i",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(self.key.display().to_string());
        args.push("-p".into());
        args.push(self.port.to_string());
        args.push(format!("{}@127.0.0.1", self.user));
        args
    }

    /// Run `cmd` remotely, retrying while ssh itself fails (exit 255: sshd not up yet, key not
    /// installed yet) until `deadline`. Returns the remote command's output, whatever its exit
    /// code.
    pub fn run(&self, cmd: &str, deadline: impl Into<Deadline>) -> Result<Output, SshError> {
        let deadline = deadline.into();
        let started = std::time::Instant::now();
        let ssh = tools::require("ssh", "openssh-client")?;
        loop {
            let output = Command::new(&ssh)
                .args(self.args())
                .arg("--")
                .arg(cmd)
                .output()
                .map_err(|source| SshError::Spawn {
                    program: ssh.display().to_string(),
                    source,
                })?;
            if output.status.code() != Some(SSH_FAILURE) {
                info!(cmd, status = %output.status, port = self.port, "ssh: ran");
                return Ok(output);
            }
            let last_error = String::from_utf8_lossy(&output.stderr).trim().to_string();
            debug!(%last_error, "ssh: not reachable yet");
            if deadline.passed() {
                return Err(SshError::Unreachable {
                    user: self.user.clone(),
                    port: self.port,
                    waited: started.elapsed(),
                    last_error,
                });
            }
            std::thread::sleep(Duration::from_secs(2).min(deadline.remaining()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_an_ed25519_key_pair() {
        let key = SshKey::generate().unwrap();
        assert!(
            key.public_key().starts_with("ssh-ed25519 "),
            "{}",
            key.public_key()
        );
        assert!(key.private_key().is_file());
    }

    #[test]
    fn an_unreachable_port_fails_at_the_deadline_with_ssh_s_complaint() {
        let key = SshKey::generate().unwrap();
        // A port nobody listens on: bind and drop.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let ssh = Ssh::new(port, "core", key.private_key());
        let err = ssh.run("true", Duration::from_millis(500)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("ssh core@127.0.0.1:{port}: no connection")),
            "{text}"
        );
        assert!(text.contains("refused"), "{text}");
    }
}
