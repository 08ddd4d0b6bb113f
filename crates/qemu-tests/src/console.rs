//! The VM's serial console (ttyS0): QEMU writes everything the guest prints to a log file, and
//! keys are typed through a unix socket.
//!
//! Entities:
//!  * [`Console`]: reads the log incrementally, strips ANSI escapes and `\r`, and keeps a cursor so
//!    that each wait only matches text printed after the previous match (stale lines from an
//!    earlier boot or command never satisfy a new wait).
//!  * [`Match`]: what a wait found.
//!  * [`ConsoleError`]: a failed wait carries the last lines of the console, so the test output
//!    shows what the guest was doing.
//!
//! The console is shared text: kernel and systemd messages may appear between any two lines.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use regex::Regex;
use tracing::{debug, info};

use crate::Deadline;

/// How many console lines a failed wait shows.
const TAIL_LINES: usize = 60;
/// How often the log file is polled.
const POLL: Duration = Duration::from_millis(100);

/// A console operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The pattern did not appear before the deadline.
    #[error("console: /{pattern}/ did not appear within {waited:?}; last console lines:\n{tail}")]
    Timeout {
        /// The regex waited for.
        pattern: String,
        /// How long the wait lasted.
        waited: Duration,
        /// The last lines of the console.
        tail: String,
    },
    /// QEMU exited while waiting.
    #[error("console: QEMU exited ({status}) while waiting for /{pattern}/; last console lines:\n{tail}")]
    QemuExited {
        /// The regex waited for.
        pattern: String,
        /// QEMU's exit status.
        status: ExitStatus,
        /// The last lines of the console.
        tail: String,
    },
    /// QEMU is not running (powered off), so nothing can be typed.
    #[error("console: the VM is not running, cannot type {0:?}")]
    NotRunning(String),
    /// The pattern is not a valid regex.
    #[error("console: invalid regex /{pattern}/")]
    Regex {
        /// The pattern given.
        pattern: String,
        /// The cause.
        #[source]
        source: regex::Error,
    },
    /// Reading the console log failed.
    #[error("console: reading {path}")]
    ReadLog {
        /// The log file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Connecting or writing to the serial socket failed.
    #[error("console: writing to serial socket {path}")]
    Write {
        /// The socket.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The exit-code marker of [`Console::run`] did not parse.
    #[error("console: unparsable exit code {0:?}")]
    BadExitCode(String),
}

/// Text found on the console by a wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Match {
    /// The whole match.
    pub text: String,
    /// The capture groups, `groups[0]` being the whole match.
    pub groups: Vec<Option<String>>,
    /// The console text between the cursor and the start of the match.
    pub before: String,
}

impl Match {
    /// Capture group `i` (0 is the whole match), if it took part in the match.
    pub fn group(&self, i: usize) -> Option<&str> {
        self.groups.get(i).and_then(|g| g.as_deref())
    }
}

/// The QEMU process a console belongs to, shared with its [`crate::Vm`] so a wait can stop
/// as soon as QEMU dies.
pub(crate) type SharedChild = Arc<Mutex<Option<Child>>>;

/// The serial console of one VM.
#[derive(Debug)]
pub struct Console {
    log: PathBuf,
    socket: PathBuf,
    child: SharedChild,
    /// Bytes of the log file already consumed into `text`.
    read_pos: u64,
    /// Bytes read but held back: an escape sequence or UTF-8 character cut by the end of the file.
    held: Vec<u8>,
    /// The cleaned console text (no escapes, no `\r`).
    text: String,
    /// Offset in `text` where the next wait starts.
    cursor: usize,
    writer: Option<UnixStream>,
}

impl Console {
    pub(crate) fn new(log: PathBuf, socket: PathBuf, child: SharedChild) -> Console {
        Console {
            log,
            socket,
            child,
            read_pos: 0,
            held: Vec::new(),
            text: String::new(),
            cursor: 0,
            writer: None,
        }
    }

    /// The raw log file (all boots of the VM, appended).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Wait until `pattern` appears in text printed after the cursor, and move the cursor past it.
    pub fn wait_for(
        &mut self,
        pattern: &str,
        deadline: impl Into<Deadline>,
    ) -> Result<Match, ConsoleError> {
        self.wait_from(pattern, deadline.into(), false)
    }

    /// Like [`Console::wait_for`], but search the whole log, from the first boot on.
    pub fn wait_for_from_start(
        &mut self,
        pattern: &str,
        deadline: impl Into<Deadline>,
    ) -> Result<Match, ConsoleError> {
        self.wait_from(pattern, deadline.into(), true)
    }

    /// Move the cursor to the end of what has been printed so far, so that the next wait only
    /// sees what comes after this call.
    pub fn skip_to_end(&mut self) -> Result<(), ConsoleError> {
        self.refresh()?;
        self.cursor = self.text.len();
        Ok(())
    }

    /// All console text so far (cleaned).
    pub fn text(&mut self) -> Result<&str, ConsoleError> {
        self.refresh()?;
        Ok(&self.text)
    }

    /// The last `n` lines of the console.
    pub fn tail(&mut self, n: usize) -> String {
        // A read error here only makes the tail shorter; the caller is already reporting one.
        let _ = self.refresh();
        tail_lines(&self.text, n)
    }

    /// Type `line` and Enter (`\r`, as a terminal sends it).
    pub fn send_line(&mut self, line: &str) -> Result<(), ConsoleError> {
        debug!(line, "console: typing");
        self.send(format!("{line}\r").as_bytes())
    }

    /// Send raw bytes to the serial port (for example `b"\x03"` for Ctrl-C).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), ConsoleError> {
        if !self.qemu_running() {
            return Err(ConsoleError::NotRunning(
                String::from_utf8_lossy(bytes).into_owned(),
            ));
        }
        // One retry: the stream may be the previous QEMU's, broken by a power cut.
        let mut last_err = None;
        for _ in 0..2 {
            let result = self.connected().and_then(|w| w.write_all(bytes));
            match result {
                Ok(()) => return Ok(()),
                Err(err) => {
                    self.writer = None;
                    last_err = Some(err);
                }
            }
        }
        Err(ConsoleError::Write {
            path: self.socket.clone(),
            source: last_err.expect("loop ran"),
        })
    }

    /// Run `cmd` on the logged-in shell on the console and return its exit code and output.
    ///
    /// `cmd` is one shell line (`;`-separated commands are fine; a trailing `&` is not). It runs
    /// as `printf BEGIN; cmd; printf RC=$?`, with markers built by `printf` from a fresh nonce so
    /// that the shell's echo of the typed line can never match them. The output is everything
    /// printed between the markers, trailing newline removed; kernel messages printed meanwhile
    /// end up in it too.
    pub fn run(
        &mut self,
        cmd: &str,
        deadline: impl Into<Deadline>,
    ) -> Result<(i32, String), ConsoleError> {
        let (a, b) = nonce();
        let line = format!(
            "printf '@@BEGIN-%s-%s\\n' {a} {b}; {cmd}; printf '\\n@@RC-%s-%s=%d\\n' {a} {b} $?"
        );
        info!(cmd, "console: run");
        self.send_line(&line)?;
        let pattern = format!(r"(?s)@@BEGIN-{a}-{b}\n(.*?)\n@@RC-{a}-{b}=(-?\d+)\n");
        let found = self.wait_for(&pattern, deadline)?;
        let code_text = found.group(2).unwrap_or_default();
        let code = code_text
            .parse()
            .map_err(|_| ConsoleError::BadExitCode(code_text.to_string()))?;
        let output = found.group(1).unwrap_or_default();
        let output = output.strip_suffix('\n').unwrap_or(output).to_string();
        debug!(cmd, code, output, "console: run finished");
        Ok((code, output))
    }

    /// Drop the serial connection; the next [`Console::send`] reconnects. Called when QEMU is
    /// started again.
    pub(crate) fn disconnect(&mut self) {
        self.writer = None;
    }

    fn wait_from(
        &mut self,
        pattern: &str,
        deadline: Deadline,
        from_start: bool,
    ) -> Result<Match, ConsoleError> {
        let re = Regex::new(pattern).map_err(|source| ConsoleError::Regex {
            pattern: pattern.to_string(),
            source,
        })?;
        let started = std::time::Instant::now();
        debug!(pattern, from_start, "console: waiting");
        loop {
            // Check for exit before reading, so that a final read sees everything QEMU wrote.
            let exited = self.qemu_exit_status();
            self.refresh()?;
            let start = if from_start { 0 } else { self.cursor };
            if let Some(caps) = re.captures(&self.text[start..]) {
                let whole = caps.get(0).expect("group 0 always matches");
                let found = Match {
                    text: whole.as_str().to_string(),
                    groups: caps
                        .iter()
                        .map(|g| g.map(|g| g.as_str().to_string()))
                        .collect(),
                    before: self.text[start..start + whole.start()].to_string(),
                };
                self.cursor = start + whole.end();
                info!(pattern, matched = %found.text.trim_end(), "console: found");
                return Ok(found);
            }
            if let Some(status) = exited {
                return Err(ConsoleError::QemuExited {
                    pattern: pattern.to_string(),
                    status,
                    tail: tail_lines(&self.text, TAIL_LINES),
                });
            }
            if deadline.passed() {
                return Err(ConsoleError::Timeout {
                    pattern: pattern.to_string(),
                    waited: started.elapsed(),
                    tail: tail_lines(&self.text, TAIL_LINES),
                });
            }
            std::thread::sleep(POLL.min(deadline.remaining()));
        }
    }

    /// Read what QEMU appended to the log since the last call.
    fn refresh(&mut self) -> Result<(), ConsoleError> {
        let read_err = |source| ConsoleError::ReadLog {
            path: self.log.clone(),
            source,
        };
        let mut file = match std::fs::File::open(&self.log) {
            Ok(f) => f,
            // QEMU has not created it yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(read_err(e)),
        };
        file.seek(SeekFrom::Start(self.read_pos))
            .map_err(read_err)?;
        let mut fresh = Vec::new();
        file.read_to_end(&mut fresh).map_err(read_err)?;
        if fresh.is_empty() {
            return Ok(());
        }
        self.read_pos += fresh.len() as u64;
        self.held.extend_from_slice(&fresh);
        let complete = complete_prefix_len(&self.held);
        let rest = self.held.split_off(complete);
        self.text.push_str(&clean(&self.held));
        self.held = rest;
        Ok(())
    }

    fn qemu_running(&self) -> bool {
        let mut child = self.child.lock().expect("child lock");
        matches!(child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn qemu_exit_status(&self) -> Option<ExitStatus> {
        let mut child = self.child.lock().expect("child lock");
        match child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(Some(status))) => Some(status),
            _ => None,
        }
    }

    fn connected(&mut self) -> std::io::Result<&mut UnixStream> {
        if self.writer.is_none() {
            let stream = connect_with_retry(&self.socket)?;
            // QEMU also sends the console output to the connected client. Drain it: if the
            // socket buffer filled up, QEMU would stall the guest's serial port (and the log).
            let mut drain = stream.try_clone()?;
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut drain, &mut std::io::sink());
            });
            self.writer = Some(stream);
        }
        Ok(self.writer.as_mut().expect("just set"))
    }
}

fn connect_with_retry(socket: &Path) -> std::io::Result<UnixStream> {
    let deadline = Deadline::after(Duration::from_secs(10));
    loop {
        match UnixStream::connect(socket) {
            Ok(s) => return Ok(s),
            Err(e) if deadline.passed() => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Two hex words unique to this call: nobody else prints them.
fn nonce() -> (String, String) {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    (
        format!("{:x}{:x}", std::process::id(), n),
        format!("{nanos:08x}"),
    )
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The length of the prefix of `buf` that ends neither inside an escape sequence nor inside a
/// UTF-8 character; the rest waits for more bytes. Cleaning in such pieces gives the same text
/// as cleaning the whole log at once.
fn complete_prefix_len(buf: &[u8]) -> usize {
    let mut len = buf.len();
    if let Some(esc) = buf.iter().rposition(|&b| b == 0x1b) {
        if escape_len(&buf[esc..]).is_none() {
            len = esc;
        }
    }
    // A UTF-8 lead byte within the last 3 bytes whose character is not complete yet.
    for back in 1..=3.min(len) {
        let i = len - back;
        let b = buf[i];
        let needed = match b {
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => continue,
        };
        if back < needed {
            len = i;
        }
        break;
    }
    len
}

/// The length of the escape sequence at the start of `seq` (which starts with ESC), or `None`
/// if it is not complete yet. A sequence still open after 64 bytes counts as ended: it is
/// garbage, and holding it back would hide all further output.
fn escape_len(seq: &[u8]) -> Option<usize> {
    const GIVE_UP: usize = 64;
    let end = match seq.get(1) {
        None => None,
        // CSI: parameters and intermediates, then a final byte 0x40..=0x7e.
        Some(b'[') => seq
            .iter()
            .skip(2)
            .position(|b| (0x40..=0x7e).contains(b))
            .map(|p| p + 3),
        // OSC: ends with BEL or ESC \.
        Some(b']') => (2..seq.len()).find_map(|i| match seq[i] {
            0x07 => Some(i + 1),
            0x1b if seq.get(i + 1) == Some(&b'\\') => Some(i + 2),
            _ => None,
        }),
        // Character set selection and similar: ESC x y.
        Some(b'(' | b')' | b'*' | b'+' | b'#' | b'%') => (seq.len() >= 3).then_some(3),
        Some(_) => Some(2),
    };
    match end {
        Some(n) => Some(n),
        None if seq.len() > GIVE_UP => Some(seq.len()),
        None => None,
    }
}

/// Console bytes to text: escape sequences, `\r` and other control characters removed (`\n`
/// and `\t` kept), invalid UTF-8 replaced.
fn clean(bytes: &[u8]) -> String {
    let mut plain = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b {
            i += escape_len(&bytes[i..]).unwrap_or(bytes.len() - i);
            continue;
        }
        plain.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&plain)
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console_on(log: &Path) -> Console {
        Console::new(
            log.to_path_buf(),
            log.with_extension("sock"),
            Arc::new(Mutex::new(None)),
        )
    }

    fn append(path: &Path, bytes: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn clean_strips_escapes_carriage_returns_and_controls() {
        let raw = b"\x1b[0;32m  OK  \x1b[0m] Started\r\n\x1b]0;title\x07$ \x1b(Bls\x08\x07\tx\r\n";
        assert_eq!(clean(raw), "  OK  ] Started\n$ ls\tx\n");
    }

    #[test]
    fn pieces_cut_inside_escapes_or_characters_clean_like_the_whole() {
        let raw = "é\x1b[1;31mred\x1b[0m ✓ done\r\n\x1b]0;t\x1b\\end".as_bytes();
        let whole = clean(raw);
        for cut in 0..raw.len() {
            let mut held = raw[..cut].to_vec();
            let n = complete_prefix_len(&held);
            let rest = held.split_off(n);
            let mut text = clean(&held);
            let mut tail = rest;
            tail.extend_from_slice(&raw[cut..]);
            text.push_str(&clean(&tail));
            assert_eq!(text, whole, "cut at {cut}");
        }
    }

    #[test]
    fn waits_only_match_text_after_the_cursor() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        append(&log, b"boot 1\r\nlogin: \r\n");
        let mut console = console_on(&log);
        let m = console
            .wait_for(r"login: ", Duration::from_secs(1))
            .unwrap();
        assert_eq!(m.before, "boot 1\n");
        // The same prompt again is stale: a second wait must time out ...
        let err = console
            .wait_for(r"login: ", Duration::from_millis(300))
            .unwrap_err();
        match &err {
            ConsoleError::Timeout { tail, .. } => assert!(tail.ends_with("login: "), "{tail}"),
            other => panic!("unexpected {other}"),
        }
        assert!(err
            .to_string()
            .contains("last console lines:\nboot 1\nlogin: "));
        // ... until a new one is printed, even by halves.
        append(&log, b"boot 2\r\nlog");
        append(&log, b"in: ");
        let m = console
            .wait_for(r"boot (\d)\nlogin: ", Duration::from_secs(1))
            .unwrap();
        assert_eq!(m.group(1), Some("2"));
        // From the start, the first prompt still matches.
        let m = console
            .wait_for_from_start(r"boot \d", Duration::from_secs(1))
            .unwrap();
        assert_eq!(m.text, "boot 1");
    }

    #[test]
    fn run_markers_cannot_match_the_echoed_command() {
        // What a shell echoes for the typed line of `run`, and what it then prints.
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("console.log");
        let (a, b) = ("ab1", "cd2");
        let echo = format!(
            "# printf '@@BEGIN-%s-%s\\n' {a} {b}; echo hi; false; printf '\\n@@RC-%s-%s=%d\\n' {a} {b} $?\r\n"
        );
        append(&log, echo.as_bytes());
        let mut console = console_on(&log);
        let pattern = format!(r"(?s)@@BEGIN-{a}-{b}\n(.*?)\n@@RC-{a}-{b}=(-?\d+)\n");
        assert!(console
            .wait_for(&pattern, Duration::from_millis(200))
            .is_err());
        append(
            &log,
            format!("@@BEGIN-{a}-{b}\r\nhi\r\n\r\n@@RC-{a}-{b}=1\r\n# ").as_bytes(),
        );
        let m = console.wait_for(&pattern, Duration::from_secs(1)).unwrap();
        assert_eq!(m.group(1), Some("hi\n"));
        assert_eq!(m.group(2), Some("1"));
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = tail_lines(&text, 60);
        assert!(tail.starts_with("line 40\n"));
        assert!(tail.ends_with("line 99"));
    }
}
