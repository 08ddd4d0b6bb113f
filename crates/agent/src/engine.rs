//! The container engine, asked through the Docker API on its unix socket.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

/// What the agent knows of the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EngineState {
    /// `running` when the API answered, else `unavailable`.
    pub state: String,
    /// Engine version from `/version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Why it is unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Something that reports the engine's state.
pub trait Engine {
    /// Ask the engine now.
    fn state(&self) -> EngineState;
}

/// dockerd's API on a unix socket.
#[derive(Clone, Debug)]
pub struct DockerApi {
    socket: PathBuf,
}

impl DockerApi {
    /// The API at `socket` (normally `/run/docker.sock`).
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        DockerApi {
            socket: socket.into(),
        }
    }

    fn get(&self, path: &str) -> std::io::Result<String> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n")?;
        let mut resp = String::new();
        s.read_to_string(&mut resp)?;
        Ok(resp)
    }
}

/// Split an HTTP/1.0 response into status code and body.
fn parse_response(resp: &str) -> Option<(u16, &str)> {
    let code = resp.split_whitespace().nth(1)?.parse().ok()?;
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Some((code, body))
}

impl Engine for DockerApi {
    fn state(&self) -> EngineState {
        let unavailable = |error: String| EngineState {
            state: "unavailable".into(),
            version: None,
            error: Some(error),
        };
        let resp = match self.get("/version") {
            Ok(r) => r,
            Err(e) => return unavailable(format!("{}: {e}", self.socket.display())),
        };
        match parse_response(&resp) {
            Some((200, body)) => {
                let version = serde_json::from_str::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v.get("Version").and_then(|v| v.as_str()).map(String::from));
                EngineState {
                    state: "running".into(),
                    version,
                    error: None,
                }
            }
            Some((code, _)) => unavailable(format!("engine API answered HTTP {code}")),
            None => unavailable("engine API answered something that is not HTTP".into()),
        }
    }
}

/// The default Docker socket path.
pub fn default_socket() -> &'static Path {
    Path::new("/run/docker.sock")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn reads_the_version_from_a_docker_style_api() {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&sock).unwrap();
        let server = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut req = [0u8; 256];
            let n = c.read(&mut req).unwrap();
            assert!(String::from_utf8_lossy(&req[..n]).starts_with("GET /version "));
            c.write_all(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"Version\":\"20.10.24+dfsg1\"}")
                .unwrap();
        });
        let state = DockerApi::new(&sock).state();
        server.join().unwrap();
        assert_eq!(state.state, "running");
        assert_eq!(state.version.as_deref(), Some("20.10.24+dfsg1"));
    }

    #[test]
    fn a_missing_socket_is_unavailable_with_the_path_named() {
        let state = DockerApi::new("/nonexistent/docker.sock").state();
        assert_eq!(state.state, "unavailable");
        assert!(state.error.unwrap().contains("/nonexistent/docker.sock"));
    }
}
