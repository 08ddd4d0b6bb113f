//! Spec 2.x raw → the 3.x raw form, once, as Flatcar's ign-converter lifts it. Most 2.x
//! objects already are 3.x raw types (those carry 2.x's few extra fields: filesystem names,
//! sizes in sectors); the lift converts the rest and keeps what the 3.x form cannot say in a
//! [`V2Only`] record:
//!  * `config.append` becomes `config.merge` (the config's version keeps the append
//!    semantics; the translation names them at their 2.x key);
//!  * a file's `append: true` moves its contents into `append: [contents]` with
//!    `overwrite: false` (recorded, so they keep their 2.x path);
//!  * `enable` folds into `enabled` (`enabled: false` wins);
//!  * the deprecated `users[].create` object moves onto the user;
//!  * a filesystem's `mount` object flattens into the 3.x fields (`create` into
//!    `wipeFilesystem` and `options`); whether it had `mount` (a device made at boot) or
//!    `path` (already mounted there) is recorded;
//!  * networkd units go into the record as they are (3.x has no networkd section).
//!
//! Problems that only the raw 2.x shape shows (`append` with `overwrite`, `create` with the
//! user-level fields or with `wipeFilesystem`, `mount` vs `path`, deprecated keys) are
//! reported here, at their 2.x paths. Defaults that differ between the lines (2.x files
//! overwrite, modes, last entry wins) stay with the config's version; see `plan`.

use crate::parse::spec::{v2, v3};
use crate::parse::version::Version;
use crate::report::{JsonPath, Kind, Report};

/// What a spec 2.x config says that its 3.x form cannot. Each list runs parallel to the
/// lifted config's list of the same name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct V2Only {
    /// `storage.filesystems[i]`: how it was given.
    pub filesystems: Vec<V2Filesystem>,
    /// `storage.files[i]`: `append: true` made its `contents` the 3.x `append[0]`.
    pub appended: Vec<bool>,
    /// `networkd.units`.
    pub networkd: Vec<v2::NetworkdUnit>,
}

/// How a spec 2.x filesystem was given.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct V2Filesystem {
    /// It had a `mount` object (a device to format at boot), rather than a `path` (already
    /// mounted).
    pub has_mount: bool,
    /// Its `mount` had the deprecated `create` object.
    pub has_create: bool,
}

/// A lifted config and its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifted {
    /// The config in the 3.x raw form.
    pub config: v3::Config,
    /// What only 2.x says.
    pub v2: V2Only,
}

fn resource(r: v2::ConfigReference) -> v3::Resource {
    v3::Resource {
        source: r.source,
        compression: None,
        http_headers: r.http_headers,
        verification: r.verification,
    }
}

/// Lifts a decoded spec 2.x config found at `root`, reporting 2.x-only problems.
pub fn lift(raw: v2::Config, version: Version, root: &JsonPath, report: &mut Report) -> Lifted {
    let mut l = Lift {
        version,
        report,
        only: V2Only::default(),
    };
    let storage = raw.storage.map(|mut st| {
        let at = root.key("storage");
        l.partitions(&st.disks, &at.key("disks"));
        l.filesystems(&mut st.filesystems, &at.key("filesystems"));
        l.files(&mut st.files, &at.key("files"));
        st
    });
    let systemd = raw.systemd.map(|mut s| {
        l.units(&mut s.units, &root.key("systemd").key("units"));
        s
    });
    let passwd = raw.passwd.map(|mut p| {
        l.users(&mut p.users, &root.key("passwd").key("users"));
        p
    });
    l.only.networkd = raw.networkd.unwrap_or_default().units;
    Lifted {
        config: v3::Config {
            ignition: raw.ignition.map(ignition),
            storage,
            systemd,
            passwd,
            kernel_arguments: None,
        },
        v2: l.only,
    }
}

fn ignition(ign: v2::Ignition) -> v3::Ignition {
    v3::Ignition {
        version: ign.version,
        config: ign.config.map(|c| v3::IgnitionConfig {
            merge: c.append.into_iter().map(resource).collect(),
            replace: c.replace.map(resource),
        }),
        timeouts: ign.timeouts,
        security: ign.security.map(|s| v3::Security {
            tls: s.tls.map(|t| v3::Tls {
                certificate_authorities: t
                    .certificate_authorities
                    .into_iter()
                    .map(resource)
                    .collect(),
            }),
        }),
        proxy: ign.proxy,
    }
}

struct Lift<'a> {
    version: Version,
    report: &'a mut Report,
    only: V2Only,
}

impl Lift<'_> {
    fn deprecated(&mut self, since_minor: u32, at: &JsonPath, msg: &str) {
        if self.version.at_least(2, since_minor) {
            self.report.warn_msg(at, Kind::Deprecated, msg);
        }
    }

    fn partitions(&mut self, disks: &[v3::Disk], at: &JsonPath) {
        for (i, d) in disks.iter().enumerate() {
            for (j, p) in d.partitions.iter().enumerate() {
                let at = at.index(i).key("partitions").index(j);
                if p.size.is_some() {
                    let msg = "size is deprecated; use sizeMiB instead";
                    self.deprecated(3, &at.key("size"), msg);
                }
                if p.start.is_some() {
                    let msg = "start is deprecated; use startMiB instead";
                    self.deprecated(3, &at.key("start"), msg);
                }
            }
        }
    }

    fn filesystems(&mut self, fss: &mut [v3::Filesystem], at: &JsonPath) {
        for (i, f) in fss.iter_mut().enumerate() {
            let at = at.index(i);
            match (&f.mount, &f.path) {
                (None, None) => {
                    let msg = "filesystem is missing mount or path";
                    self.report.error_msg(&at, Kind::Storage, msg);
                }
                (Some(_), Some(_)) => {
                    let msg = "filesystem has both mount and path defined";
                    self.report.error_msg(&at, Kind::Storage, msg);
                }
                _ => {}
            }
            let has_mount = f.mount.is_some();
            let m = f.mount.take().unwrap_or_default();
            let create_at = at.key("mount").key("create");
            if m.create.is_some() {
                let msg = "the create object is deprecated; use wipeFilesystem and options";
                self.deprecated(1, &create_at, msg);
                if m.wipe_filesystem.is_some() || !m.options.is_empty() {
                    self.report.error_msg(
                        &create_at,
                        Kind::Storage,
                        "cannot use both create object and wipeFilesystem or options",
                    );
                }
            }
            self.only.filesystems.push(V2Filesystem {
                has_mount,
                has_create: m.create.is_some(),
            });
            (f.wipe_filesystem, f.options) = match m.create {
                Some(c) => (c.force, c.options),
                None => (m.wipe_filesystem, m.options),
            };
            (f.device, f.format, f.label, f.uuid) = (m.device, m.format, m.label, m.uuid);
        }
    }

    fn files(&mut self, files: &mut [v3::File], at: &JsonPath) {
        for (i, f) in files.iter_mut().enumerate() {
            let appended = f.append_contents.take() == Some(true);
            self.only.appended.push(appended);
            if !appended {
                continue;
            }
            if f.overwrite == Some(true) {
                let at = at.index(i).key("overwrite");
                self.report.error(&at, Kind::AppendAndOverwrite);
            }
            f.append = f.contents.take().into_iter().collect();
            f.overwrite = Some(f.overwrite.unwrap_or(false));
        }
    }

    fn units(&mut self, units: &mut [v3::Unit], at: &JsonPath) {
        for (i, u) in units.iter_mut().enumerate() {
            let Some(enable) = u.enable.take() else {
                continue;
            };
            let msg = "enable is deprecated; use enabled";
            self.deprecated(1, &at.index(i).key("enable"), msg);
            if u.enabled != Some(false) {
                u.enabled = Some(enable || u.enabled == Some(true));
            }
        }
    }

    /// Moves each user's deprecated `create` object onto the user; a field set in both
    /// places is an error.
    fn users(&mut self, users: &mut [v3::User], at: &JsonPath) {
        for (i, user) in users.iter_mut().enumerate() {
            let Some(c) = user.create.take() else {
                continue;
            };
            let at = at.index(i);
            let msg = "the create object is deprecated; use the user-level fields";
            self.deprecated(1, &at.key("create"), msg);
            let set: [(&str, bool); 10] = [
                ("uid", user.uid.is_some()),
                ("gecos", user.gecos.is_some()),
                ("homeDir", user.home_dir.is_some()),
                ("noCreateHome", user.no_create_home.is_some()),
                ("primaryGroup", user.primary_group.is_some()),
                ("groups", !user.groups.is_empty()),
                ("noUserGroup", user.no_user_group.is_some()),
                ("noLogInit", user.no_log_init.is_some()),
                ("shell", user.shell.is_some()),
                ("system", user.system.is_some()),
            ];
            for (field, _) in set.iter().filter(|(_, is_set)| *is_set) {
                self.report.error_msg(
                    &at.key(field),
                    Kind::CreateConflict,
                    format!("cannot use both the create object and the user-level {field} field"),
                );
            }
            user.uid = user.uid.or(c.uid);
            user.gecos = user.gecos.take().or(c.gecos);
            user.home_dir = user.home_dir.take().or(c.home_dir);
            user.no_create_home = user.no_create_home.or(c.no_create_home);
            user.primary_group = user.primary_group.take().or(c.primary_group);
            if user.groups.is_empty() {
                user.groups = c.groups;
            }
            user.no_user_group = user.no_user_group.or(c.no_user_group);
            user.no_log_init = user.no_log_init.or(c.no_log_init);
            user.shell = user.shell.take().or(c.shell);
            user.system = user.system.or(c.system);
        }
    }
}
