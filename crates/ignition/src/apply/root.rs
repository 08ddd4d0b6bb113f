//! The directory a config is applied into, and the only way `apply` turns a config path into
//! a host path.
//!
//! [`Root::resolve`] treats the root like a chroot: the config path is simplified lexically
//! (a `..` that would climb above `/` is refused), then each parent component is looked up
//! inside the root, following symlinks the way the booted system would (an absolute target
//! starts again at the root; a relative one continues from the link's directory). A symlink
//! whose target climbs above the root is refused rather than clamped, and so is a loop. The
//! last component is never followed, so writers replace a symlink instead of writing through
//! it.
//!
//! The walk asks a [`Lookup`] what is at each host path: [`RealFs`] asks the file system;
//! `apply`'s dry run passes its own view of the tree as it will be, so every path is checked
//! against what earlier steps would have created before anything is written.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Why a path cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// The path climbs above the root.
    #[error("{path}: path escapes the root directory")]
    Escape {
        /// Config path.
        path: String,
    },
    /// A symlink on the way leads outside the root.
    #[error("{path}: symlink {link} leads outside the root directory")]
    SymlinkEscape {
        /// Config path.
        path: String,
        /// The offending link (host path).
        link: PathBuf,
    },
    /// Too many symlinks.
    #[error("{path}: too many levels of symbolic links")]
    Loop {
        /// Config path.
        path: String,
    },
    /// A parent component is not a directory.
    #[error("{path}: {host} is not a directory")]
    NotADirectory {
        /// Config path.
        path: String,
        /// Host path.
        host: PathBuf,
    },
    /// The path is not absolute or names the root itself where a file is needed.
    #[error("{path}: not a usable absolute path")]
    Invalid {
        /// Config path.
        path: String,
    },
    /// I/O while looking up or creating parents.
    #[error("{path}: {source}")]
    Io {
        /// Host path.
        path: PathBuf,
        /// Cause.
        source: io::Error,
    },
}

/// What is at a host path, as far as a walk cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeType {
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (a regular file, a device, ...).
    Other,
}

/// The tree a walk looks at.
pub trait Lookup {
    /// What is at `host` (not following a symlink there), or `None` when nothing is.
    fn node_type(&self, host: &Path) -> io::Result<Option<NodeType>>;
    /// The target of the symlink at `host`.
    fn link_target(&self, host: &Path) -> io::Result<PathBuf>;
    /// Creates the directory `host` with mode 0755 (its parent exists).
    fn make_dir(&mut self, host: &Path) -> io::Result<()>;
}

/// The file system itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

impl Lookup for RealFs {
    fn node_type(&self, host: &Path) -> io::Result<Option<NodeType>> {
        match std::fs::symlink_metadata(host) {
            Ok(m) if m.file_type().is_symlink() => Ok(Some(NodeType::Symlink)),
            Ok(m) if m.is_dir() => Ok(Some(NodeType::Dir)),
            Ok(_) => Ok(Some(NodeType::Other)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn link_target(&self, host: &Path) -> io::Result<PathBuf> {
        std::fs::read_link(host)
    }

    fn make_dir(&mut self, host: &Path) -> io::Result<()> {
        std::fs::DirBuilder::new().mode(0o755).create(host)?;
        std::fs::set_permissions(host, std::fs::Permissions::from_mode(0o755))
    }
}

/// A directory that plays `/`.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

/// Splits an absolute config path into simplified components.
pub fn components(path: &str) -> Result<Vec<OsString>, RootError> {
    if !path.starts_with('/') {
        return Err(RootError::Invalid { path: path.into() });
    }
    let mut out: Vec<OsString> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                if out.pop().is_none() {
                    return Err(RootError::Escape { path: path.into() });
                }
            }
            Component::Normal(n) => out.push(n.to_os_string()),
            Component::Prefix(_) => return Err(RootError::Invalid { path: path.into() }),
        }
    }
    Ok(out)
}

impl Root {
    /// Opens `dir` as the root (it must exist and be a directory).
    pub fn new(dir: &Path) -> io::Result<Root> {
        let dir = dir.canonicalize()?;
        if !dir.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(Root { dir })
    }

    /// The host directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn host(&self, stack: &[OsString]) -> PathBuf {
        let mut p = self.dir.clone();
        p.extend(stack);
        p
    }

    /// Resolves a directory path (all components followed). With `create`, missing
    /// directories are made with mode 0755.
    pub fn resolve_dir(&self, path: &str, create: bool) -> Result<PathBuf, RootError> {
        self.resolve_dir_in(path, create, &mut RealFs)
    }

    /// [`Root::resolve_dir`] against `tree`.
    pub fn resolve_dir_in(
        &self,
        path: &str,
        create: bool,
        tree: &mut dyn Lookup,
    ) -> Result<PathBuf, RootError> {
        let comps = components(path)?;
        self.walk(path, comps, create, false, tree)
    }

    /// Resolves `path` for reading: every component followed, the last one too, which may
    /// be a file. Nothing is created.
    pub fn resolve_followed_in(
        &self,
        path: &str,
        tree: &mut dyn Lookup,
    ) -> Result<PathBuf, RootError> {
        let comps = components(path)?;
        self.walk(path, comps, false, true, tree)
    }

    /// Resolves `path` for writing: parents followed (and created when `create_parents`),
    /// the last component not followed. Returns the host path.
    pub fn resolve(&self, path: &str, create_parents: bool) -> Result<PathBuf, RootError> {
        self.resolve_in(path, create_parents, &mut RealFs)
    }

    /// [`Root::resolve`] against `tree`.
    pub fn resolve_in(
        &self,
        path: &str,
        create_parents: bool,
        tree: &mut dyn Lookup,
    ) -> Result<PathBuf, RootError> {
        let mut comps = components(path)?;
        let Some(last) = comps.pop() else {
            return Err(RootError::Invalid { path: path.into() });
        };
        let parent = self.walk(path, comps, create_parents, false, tree)?;
        Ok(parent.join(last))
    }

    fn walk(
        &self,
        path: &str,
        comps: Vec<OsString>,
        create: bool,
        last_may_be_file: bool,
        tree: &mut dyn Lookup,
    ) -> Result<PathBuf, RootError> {
        let mut stack: Vec<OsString> = Vec::new();
        let mut pending: VecDeque<OsString> = comps.into();
        let mut hops = 0;
        let mut missing = false;
        while let Some(c) = pending.pop_front() {
            if c == "." {
                continue;
            }
            if c == ".." {
                if stack.pop().is_none() {
                    return Err(RootError::SymlinkEscape {
                        path: path.into(),
                        link: self.dir.clone(),
                    });
                }
                continue;
            }
            let host = self.host(&stack).join(&c);
            if missing {
                stack.push(c);
                continue;
            }
            match tree.node_type(&host) {
                Ok(Some(NodeType::Symlink)) => {
                    hops += 1;
                    if hops > 40 {
                        return Err(RootError::Loop { path: path.into() });
                    }
                    let target = tree.link_target(&host).map_err(|source| RootError::Io {
                        path: host.clone(),
                        source,
                    })?;
                    if target.is_absolute() {
                        stack.clear();
                    }
                    let mut depth = stack.len() as isize;
                    let mut new: Vec<OsString> = Vec::new();
                    for tc in target.components() {
                        match tc {
                            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
                            Component::ParentDir => {
                                depth -= 1;
                                if depth < 0 {
                                    return Err(RootError::SymlinkEscape {
                                        path: path.into(),
                                        link: host,
                                    });
                                }
                                new.push("..".into());
                            }
                            Component::Normal(n) => {
                                depth += 1;
                                new.push(n.to_os_string());
                            }
                        }
                    }
                    for n in new.into_iter().rev() {
                        pending.push_front(n);
                    }
                }
                Ok(Some(NodeType::Dir)) => stack.push(c),
                Ok(Some(NodeType::Other)) if last_may_be_file && pending.is_empty() => {
                    stack.push(c)
                }
                Ok(Some(NodeType::Other)) => {
                    return Err(RootError::NotADirectory {
                        path: path.into(),
                        host,
                    })
                }
                Ok(None) => {
                    if create {
                        tree.make_dir(&host).map_err(|source| RootError::Io {
                            path: host.clone(),
                            source,
                        })?;
                    } else {
                        missing = true;
                    }
                    stack.push(c);
                }
                Err(source) => return Err(RootError::Io { path: host, source }),
            }
        }
        Ok(self.host(&stack))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, Root) {
        let t = tempfile::tempdir().unwrap();
        let root = Root::new(t.path()).unwrap();
        (t, root)
    }

    #[test]
    fn plain_paths_and_parent_creation() {
        let (_t, root) = setup();
        let p = root.resolve("/etc/a/b/file", true).unwrap();
        assert_eq!(p, root.dir().join("etc/a/b/file"));
        assert!(root.dir().join("etc/a/b").is_dir());
        let p = root.resolve("/x/./y/../z", false).unwrap();
        assert_eq!(p, root.dir().join("x/z"));
    }

    #[test]
    fn dotdot_above_root_is_refused() {
        let (_t, root) = setup();
        assert!(matches!(
            root.resolve("/../etc/passwd", true),
            Err(RootError::Escape { .. })
        ));
        assert!(matches!(
            root.resolve("/a/../../b", true),
            Err(RootError::Escape { .. })
        ));
        assert!(matches!(
            root.resolve("relative", true),
            Err(RootError::Invalid { .. })
        ));
    }

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        let (_t, root) = setup();
        std::fs::create_dir_all(root.dir().join("usr/lib/real")).unwrap();
        symlink("/usr/lib/real", root.dir().join("lnk")).unwrap();
        let p = root.resolve("/lnk/file", true).unwrap();
        assert_eq!(p, root.dir().join("usr/lib/real/file"));
    }

    #[test]
    fn relative_symlinks_that_climb_out_are_refused() {
        let (_t, root) = setup();
        std::fs::create_dir(root.dir().join("etc")).unwrap();
        symlink("../../../../tmp", root.dir().join("etc/out")).unwrap();
        assert!(matches!(
            root.resolve("/etc/out/file", true),
            Err(RootError::SymlinkEscape { .. })
        ));
        symlink("../var", root.dir().join("etc/ok")).unwrap();
        assert_eq!(
            root.resolve("/etc/ok/file", true).unwrap(),
            root.dir().join("var/file")
        );
    }

    #[test]
    fn reading_follows_the_last_symlink_inside_the_root() {
        let (_t, root) = setup();
        std::fs::create_dir_all(root.dir().join("usr/share")).unwrap();
        std::fs::write(root.dir().join("usr/share/passwd"), b"").unwrap();
        std::fs::create_dir(root.dir().join("etc")).unwrap();
        symlink("../usr/share/passwd", root.dir().join("etc/passwd")).unwrap();
        symlink("/../../outside", root.dir().join("etc/shadow")).unwrap();
        let mut fs = RealFs;
        assert_eq!(
            root.resolve_followed_in("/etc/passwd", &mut fs).unwrap(),
            root.dir().join("usr/share/passwd")
        );
        assert!(root.resolve_followed_in("/etc/shadow", &mut fs).is_err());
        assert!(matches!(
            root.resolve_followed_in("/etc/passwd/x", &mut fs),
            Err(RootError::NotADirectory { .. })
        ));
    }

    #[test]
    fn the_last_component_is_not_followed_and_loops_stop() {
        let (_t, root) = setup();
        symlink("/elsewhere", root.dir().join("last")).unwrap();
        assert_eq!(
            root.resolve("/last", true).unwrap(),
            root.dir().join("last")
        );
        symlink("/loop", root.dir().join("loop")).unwrap();
        assert!(matches!(
            root.resolve("/loop/x", true),
            Err(RootError::Loop { .. })
        ));
        std::fs::write(root.dir().join("file"), b"").unwrap();
        assert!(matches!(
            root.resolve("/file/x", true),
            Err(RootError::NotADirectory { .. })
        ));
    }
}
