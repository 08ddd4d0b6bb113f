//! Run host programs; a failure names the command and shows the end of its output.

use std::ffi::OsStr;
use std::process::{Command, Stdio};

/// A host command that failed.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// It could not be started.
    #[error("could not run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// It exited non-zero.
    #[error("`{command}` failed ({status}):\n{output}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status.
        status: std::process::ExitStatus,
        /// The last lines of its stderr and stdout.
        output: String,
    },
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Run `cmd` to completion, capturing its output; returns stdout.
pub fn run(cmd: &mut Command) -> Result<String, CmdError> {
    tracing::debug!("running {}", describe(cmd));
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| CmdError::Spawn {
            program: cmd.get_program().to_string_lossy().into_owned(),
            source,
        })?;
    if !out.status.success() {
        let mut output = tail(&out.stderr, 30);
        let so = tail(&out.stdout, 10);
        if !so.is_empty() {
            output.push_str("\n--- stdout ---\n");
            output.push_str(&so);
        }
        return Err(CmdError::Failed {
            command: describe(cmd),
            status: out.status,
            output,
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Shorthand: run `program` with `args`.
pub fn run_args<I, S>(program: &str, args: I) -> Result<String, CmdError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    run(Command::new(program).args(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_names_the_command_and_its_stderr() {
        let err = run_args("sh", ["-c", "echo broken >&2; exit 3"]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("`sh -c echo broken >&2; exit 3` failed"),
            "{msg}"
        );
        assert!(msg.contains("broken"), "{msg}");
    }

    #[test]
    fn missing_program_is_named() {
        let err = run_args("no-such-program-keel", ["x"]).unwrap_err();
        assert!(err.to_string().contains("no-such-program-keel"));
    }
}
