//! The local status API: a unix socket; every connection receives the status as one JSON line.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

/// Errors serving or reading the status socket.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Socket trouble, with the path.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Socket path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Bind the status socket at `path` (replacing a stale one), readable by everyone.
pub fn bind(path: &Path) -> Result<UnixListener, ApiError> {
    let io = |action, source| ApiError::Io {
        action,
        path: path.display().to_string(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io("creating directory for", e))?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path).map_err(|e| io("binding", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .map_err(|e| io("setting permissions on", e))?;
    Ok(listener)
}

/// Answer every connection with `status()` as JSON, forever.
pub fn serve(listener: UnixListener, status: impl Fn() -> serde_json::Value) {
    for conn in listener.incoming() {
        match conn {
            Ok(mut c) => {
                let body = status().to_string();
                if let Err(e) = c
                    .write_all(body.as_bytes())
                    .and_then(|_| c.write_all(b"\n"))
                {
                    tracing::warn!("writing status to a client: {e}");
                }
            }
            Err(e) => tracing::warn!("accepting a status client: {e}"),
        }
    }
}

/// Read the status from the socket at `path`.
pub fn fetch(path: &Path) -> Result<String, ApiError> {
    let io = |action, source| ApiError::Io {
        action,
        path: path.display().to_string(),
        source,
    };
    let mut c = UnixStream::connect(path).map_err(|e| io("connecting to", e))?;
    let mut out = String::new();
    c.read_to_string(&mut out)
        .map_err(|e| io("reading from", e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_receive_the_current_status() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.sock");
        let listener = bind(&path).unwrap();
        std::thread::spawn(move || serve(listener, || serde_json::json!({"booted_slot": "A"})));
        let got = fetch(&path).unwrap();
        let v: serde_json::Value = serde_json::from_str(got.trim()).unwrap();
        assert_eq!(v["booted_slot"], "A");
    }

    #[test]
    fn a_missing_socket_error_names_it() {
        let err = fetch(Path::new("/nonexistent/agent.sock")).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/agent.sock"));
    }
}
