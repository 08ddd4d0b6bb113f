//! A minimal QMP (QEMU Machine Protocol) client over the VM's unix socket: connect, negotiate
//! capabilities, run one command, and return its `return` value.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

/// A QMP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// Talking to the socket failed.
    #[error("QMP: talking to {path}")]
    Io {
        /// The QMP socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// QEMU answered with an error, or something that is not QMP.
    #[error("QMP: `{command}` failed: {reply}")]
    Command {
        /// The command sent.
        command: String,
        /// QEMU's answer.
        reply: String,
    },
}

/// Run `command` with `arguments` (a JSON object, or `Value::Null` for none) and return QEMU's
/// `return` value. Asynchronous events QEMU sends meanwhile are skipped.
pub(crate) fn execute(socket: &Path, command: &str, arguments: Value) -> Result<Value, QmpError> {
    let io = |source| QmpError::Io {
        path: socket.to_path_buf(),
        source,
    };
    let stream = UnixStream::connect(socket).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io)?;
    let mut writer = stream.try_clone().map_err(io)?;
    let mut reader = BufReader::new(stream);

    read_reply(&mut reader, "greeting", socket, |v| v.get("QMP").is_some())?;
    writer
        .write_all(b"{\"execute\":\"qmp_capabilities\"}\n")
        .map_err(io)?;
    read_reply(&mut reader, "qmp_capabilities", socket, is_answer)?;

    let mut request = serde_json::json!({ "execute": command });
    if !arguments.is_null() {
        request["arguments"] = arguments;
    }
    writer
        .write_all(format!("{request}\n").as_bytes())
        .map_err(io)?;
    let reply = read_reply(&mut reader, command, socket, is_answer)?;
    Ok(reply.get("return").cloned().unwrap_or(Value::Null))
}

fn is_answer(v: &Value) -> bool {
    v.get("return").is_some() || v.get("error").is_some()
}

fn read_reply(
    reader: &mut impl BufRead,
    command: &str,
    socket: &Path,
    wanted: impl Fn(&Value) -> bool,
) -> Result<Value, QmpError> {
    loop {
        let mut line = String::new();
        let n = reader.read_line(&mut line).map_err(|source| QmpError::Io {
            path: socket.to_path_buf(),
            source,
        })?;
        let failed = |reply: &str| QmpError::Command {
            command: command.to_string(),
            reply: reply.to_string(),
        };
        if n == 0 {
            return Err(failed("connection closed"));
        }
        let value: Value = serde_json::from_str(&line).map_err(|_| failed(line.trim()))?;
        if value.get("error").is_some() {
            return Err(failed(line.trim()));
        }
        if wanted(&value) {
            return Ok(value);
        }
        // An event ({"event": ...}): not our answer.
    }
}
