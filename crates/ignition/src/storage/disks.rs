//! The seam to the machine ([`Disks`]): the real one ([`SystemDisks`]) runs programs and
//! finds device nodes; the fake ([`Recorder`]) records every call and answers from canned
//! outputs. [`Tools`] names the programs.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The seam to the machine.
pub trait Disks {
    /// Runs `program` (a full path) with `args`, feeding `stdin` if given. Returns standard
    /// output, or the exit status with standard error.
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> Result<String, String>;
    /// Whether `program` (a full path) is there.
    fn has_program(&self, program: &str) -> bool;
    /// The device node behind `device` (which may be a `/dev/disk/by-*` path that nothing
    /// creates in the initramfs), waiting for it to appear.
    fn resolve(&self, device: &str) -> Result<String, String>;
}

/// Full paths of the programs used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tools {
    /// util-linux sfdisk.
    pub sfdisk: String,
    /// util-linux blkid.
    pub blkid: String,
    /// util-linux wipefs.
    pub wipefs: String,
    /// e2fsprogs mke2fs.
    pub mke2fs: String,
    /// util-linux mkswap.
    pub mkswap: String,
    /// mount.
    pub mount: String,
    /// umount.
    pub umount: String,
}

impl Default for Tools {
    /// Where Keel's initramfs has them (busybox prefers its own applets, so full paths).
    fn default() -> Self {
        Tools {
            sfdisk: "/sbin/sfdisk".into(),
            blkid: "/sbin/blkid".into(),
            wipefs: "/sbin/wipefs".into(),
            mke2fs: "/sbin/mke2fs".into(),
            mkswap: "/sbin/mkswap".into(),
            mount: "/bin/mount".into(),
            umount: "/bin/umount".into(),
        }
    }
}

/// The real machine.
#[derive(Debug, Clone)]
pub struct SystemDisks {
    /// blkid, for resolving `/dev/disk/by-*` paths by scanning.
    pub blkid: String,
    /// How long to wait for a device to appear.
    pub wait: Duration,
}

impl Default for SystemDisks {
    fn default() -> Self {
        SystemDisks {
            blkid: Tools::default().blkid,
            wait: Duration::from_secs(30),
        }
    }
}

impl SystemDisks {
    fn scan(&self, key: &str, want: &str) -> Option<String> {
        let entries = std::fs::read_dir("/sys/class/block").ok()?;
        for e in entries.flatten() {
            let node = format!("/dev/{}", e.file_name().to_string_lossy());
            let args = ["-p".to_string(), "-o".into(), "export".into(), node.clone()];
            let Ok(text) = self.run(&self.blkid, &args, None) else {
                continue;
            };
            let hit = text.lines().any(|l| {
                l.split_once('=')
                    .is_some_and(|(k, v)| k == key && v.eq_ignore_ascii_case(want))
            });
            if hit {
                return Some(node);
            }
        }
        None
    }

    fn find(&self, device: &str) -> Option<String> {
        if Path::new(device).exists() {
            return std::fs::canonicalize(device)
                .ok()
                .map(|p| p.display().to_string());
        }
        let by = [
            ("/dev/disk/by-partlabel/", "PART_ENTRY_NAME"),
            ("/dev/disk/by-partuuid/", "PART_ENTRY_UUID"),
            ("/dev/disk/by-label/", "LABEL"),
            ("/dev/disk/by-uuid/", "UUID"),
        ];
        by.iter().find_map(|(prefix, key)| {
            device
                .strip_prefix(prefix)
                .and_then(|want| self.scan(key, want))
        })
    }
}

impl Disks for SystemDisks {
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> Result<String, String> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run: {e}"))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            use std::io::Write;
            pipe.write_all(text.as_bytes())
                .map_err(|e| format!("writing its input: {e}"))?;
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn has_program(&self, program: &str) -> bool {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(program).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    fn resolve(&self, device: &str) -> Result<String, String> {
        let start = Instant::now();
        loop {
            if let Some(node) = self.find(device) {
                return Ok(node);
            }
            if start.elapsed() >= self.wait {
                return Err(format!(
                    "device {device} did not appear within {}s",
                    self.wait.as_secs()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// A fake machine: records every call; answers `run` from canned outputs keyed by the
/// command line (`program arg arg ...`), `Ok("")` otherwise.
#[derive(Debug, Default)]
pub struct Recorder {
    /// Command line → answer.
    pub answers: BTreeMap<String, Result<String, String>>,
    /// Programs that exist (empty: all do).
    pub programs: Vec<String>,
    /// Device → node (absent: the device is its own node).
    pub nodes: BTreeMap<String, String>,
    /// Every call, in order: command lines, with `<<script` when input was fed.
    pub calls: std::cell::RefCell<Vec<String>>,
}

impl Recorder {
    /// Answers `cmdline` with `answer`.
    pub fn answer(mut self, cmdline: &str, answer: Result<&str, &str>) -> Self {
        self.answers.insert(
            cmdline.to_string(),
            answer.map(str::to_string).map_err(str::to_string),
        );
        self
    }

    /// The recorded calls.
    pub fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }
}

impl Disks for Recorder {
    fn run(&self, program: &str, args: &[String], stdin: Option<&str>) -> Result<String, String> {
        let cmdline = std::iter::once(program.to_string())
            .chain(args.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let mut rec = cmdline.clone();
        if let Some(s) = stdin {
            rec.push_str(" <<");
            rec.push_str(s);
        }
        self.calls.borrow_mut().push(rec);
        self.answers
            .get(&cmdline)
            .cloned()
            .unwrap_or_else(|| Ok(String::new()))
    }

    fn has_program(&self, program: &str) -> bool {
        self.programs.is_empty() || self.programs.iter().any(|p| p == program)
    }

    fn resolve(&self, device: &str) -> Result<String, String> {
        Ok(self
            .nodes
            .get(device)
            .cloned()
            .unwrap_or_else(|| device.to_string()))
    }
}
