//! Raw spec types → the internal model.
//!
//! Spec 3.x maps field for field. Spec 2.x is lifted the way Flatcar's converter lifts it, with
//! the differences recorded here:
//!  * `config.append` becomes the model's `merge` list (the config's version keeps the
//!    append semantics);
//!  * a file's `append: true` becomes `append: [contents]` with `overwrite: false`;
//!  * `enable` and `enabled` fold into `enabled` (`enabled: false` wins);
//!  * the deprecated `users[].create` object moves onto the user;
//!  * files keep their `filesystem` name; `plan` decides where it lands.
//!
//! Checks that only make sense on the raw 2.x shape (`append` with `overwrite`, `create` with
//! user-level fields, `mount` vs `path`) are reported here.

use crate::model::*;
use crate::report::{JsonPath, Kind, Report};
use crate::spec::{v2, v3};
use crate::version::Version;

fn owner(at: JsonPath, id: Option<i64>, name: Option<String>) -> Owner {
    Owner { at, id, name }
}

// ---------------------------------------------------------------- spec 3.x

fn v3_resource(r: v3::Resource, at: JsonPath) -> Resource {
    Resource {
        http_headers: r
            .http_headers
            .into_iter()
            .enumerate()
            .map(|(i, h)| HttpHeader {
                at: at.key("httpHeaders").index(i),
                name: h.name,
                value: h.value,
            })
            .collect(),
        source: r.source,
        compression: r.compression,
        hash: r.verification.and_then(|v| v.hash),
        at,
    }
}

fn v3_node(
    at: &JsonPath,
    path: Option<String>,
    overwrite: Option<bool>,
    user: Option<v3::NodeUser>,
    group: Option<v3::NodeGroup>,
) -> Node {
    let user = user.unwrap_or_default();
    let group = group.unwrap_or_default();
    Node {
        at: at.clone(),
        path,
        filesystem: None,
        overwrite,
        user: owner(at.key("user"), user.id, user.name),
        group: owner(at.key("group"), group.id, group.name),
    }
}

/// Translates a decoded spec 3.x config found at `root`.
pub fn from_v3(raw: v3::Config, version: Version, root: &JsonPath) -> Config {
    let mut cfg = Config::empty(version);
    let ign_at = root.key("ignition");
    let ign = raw.ignition.unwrap_or_default();
    if let Some(c) = ign.config {
        let at = ign_at.key("config");
        cfg.ignition.merge = c
            .merge
            .into_iter()
            .enumerate()
            .map(|(i, r)| v3_resource(r, at.key("merge").index(i)))
            .collect();
        cfg.ignition.replace = c.replace.map(|r| v3_resource(r, at.key("replace")));
    }
    if let Some(t) = ign.timeouts {
        cfg.ignition.timeouts = Timeouts {
            at: ign_at.key("timeouts"),
            http_response_headers: t.http_response_headers,
            http_total: t.http_total,
        };
    }
    if let Some(tls) = ign.security.and_then(|s| s.tls) {
        let at = ign_at
            .key("security")
            .key("tls")
            .key("certificateAuthorities");
        cfg.ignition.certificate_authorities = tls
            .certificate_authorities
            .into_iter()
            .enumerate()
            .map(|(i, r)| v3_resource(r, at.index(i)))
            .collect();
    }
    if let Some(p) = ign.proxy {
        cfg.ignition.proxy = Proxy {
            at: ign_at.key("proxy"),
            http_proxy: p.http_proxy,
            https_proxy: p.https_proxy,
            no_proxy: p.no_proxy,
        };
    }

    let st_at = root.key("storage");
    let st = raw.storage.unwrap_or_default();
    cfg.storage.disks = st
        .disks
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let at = st_at.key("disks").index(i);
            Disk {
                device: d.device,
                wipe_table: d.wipe_table,
                partitions: d
                    .partitions
                    .into_iter()
                    .enumerate()
                    .map(|(j, p)| Partition {
                        at: at.key("partitions").index(j),
                        label: p.label,
                        number: p.number,
                        size_mib: p.size_mib,
                        start_mib: p.start_mib,
                        size_sectors: None,
                        start_sectors: None,
                        type_guid: p.type_guid,
                        guid: p.guid,
                        wipe_partition_entry: p.wipe_partition_entry,
                        should_exist: p.should_exist,
                        resize: p.resize,
                    })
                    .collect(),
                at,
            }
        })
        .collect();
    cfg.storage.raid = st
        .raid
        .into_iter()
        .enumerate()
        .map(|(i, r)| Raid {
            at: st_at.key("raid").index(i),
            name: r.name,
            level: r.level,
            devices: r.devices,
            spares: r.spares,
            options: r.options,
        })
        .collect();
    cfg.storage.filesystems = st
        .filesystems
        .into_iter()
        .enumerate()
        .map(|(i, f)| Filesystem {
            at: st_at.key("filesystems").index(i),
            name: None,
            has_mount: false,
            has_create: false,
            device: f.device,
            format: f.format,
            path: f.path,
            wipe_filesystem: f.wipe_filesystem,
            label: f.label,
            uuid: f.uuid,
            options: f.options,
            mount_options: f.mount_options,
        })
        .collect();
    cfg.storage.luks = st
        .luks
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let at = st_at.key("luks").index(i);
            Luks {
                name: l.name,
                device: l.device,
                key_file: l.key_file.map(|r| v3_resource(r, at.key("keyFile"))),
                label: l.label,
                uuid: l.uuid,
                options: l.options,
                wipe_volume: l.wipe_volume,
                clevis: l.clevis,
                discard: l.discard,
                open_options: l.open_options,
                cex: l.cex,
                at,
            }
        })
        .collect();
    cfg.storage.files = st
        .files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let at = st_at.key("files").index(i);
            File {
                contents: f.contents.map(|r| v3_resource(r, at.key("contents"))),
                append: f
                    .append
                    .into_iter()
                    .enumerate()
                    .map(|(j, r)| v3_resource(r, at.key("append").index(j)))
                    .collect(),
                mode: f.mode,
                node: v3_node(&at, f.path, f.overwrite, f.user, f.group),
            }
        })
        .collect();
    cfg.storage.directories = st
        .directories
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let at = st_at.key("directories").index(i);
            Directory {
                mode: d.mode,
                node: v3_node(&at, d.path, d.overwrite, d.user, d.group),
            }
        })
        .collect();
    cfg.storage.links = st
        .links
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let at = st_at.key("links").index(i);
            Link {
                target: l.target,
                hard: l.hard,
                node: v3_node(&at, l.path, l.overwrite, l.user, l.group),
            }
        })
        .collect();

    let units_at = root.key("systemd").key("units");
    cfg.units = raw
        .systemd
        .unwrap_or_default()
        .units
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let at = units_at.index(i);
            Unit {
                name: u.name,
                enabled: u.enabled,
                mask: u.mask,
                contents: u.contents,
                dropins: u
                    .dropins
                    .into_iter()
                    .enumerate()
                    .map(|(j, d)| Dropin {
                        at: at.key("dropins").index(j),
                        name: d.name,
                        contents: d.contents,
                    })
                    .collect(),
                at,
            }
        })
        .collect();

    let pw_at = root.key("passwd");
    let pw = raw.passwd.unwrap_or_default();
    cfg.users = pw
        .users
        .into_iter()
        .enumerate()
        .map(|(i, u)| User {
            at: pw_at.key("users").index(i),
            name: u.name,
            password_hash: u.password_hash,
            ssh_authorized_keys: u.ssh_authorized_keys,
            uid: u.uid,
            gecos: u.gecos,
            home_dir: u.home_dir,
            no_create_home: u.no_create_home,
            primary_group: u.primary_group,
            groups: u.groups,
            no_user_group: u.no_user_group,
            no_log_init: u.no_log_init,
            shell: u.shell,
            system: u.system,
            should_exist: u.should_exist,
        })
        .collect();
    cfg.groups = pw
        .groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| Group {
            at: pw_at.key("groups").index(i),
            name: g.name,
            gid: g.gid,
            password_hash: g.password_hash,
            system: g.system,
            should_exist: g.should_exist,
        })
        .collect();
    if let Some(k) = raw.kernel_arguments {
        cfg.kernel_arguments = KernelArguments {
            at: root.key("kernelArguments"),
            should_exist: k.should_exist,
            should_not_exist: k.should_not_exist,
        };
    }
    cfg
}

// ---------------------------------------------------------------- spec 2.x

fn v2_headers(headers: Vec<v2::HttpHeader>, at: &JsonPath) -> Vec<HttpHeader> {
    headers
        .into_iter()
        .enumerate()
        .map(|(i, h)| HttpHeader {
            at: at.key("httpHeaders").index(i),
            name: h.name,
            value: h.value,
        })
        .collect()
}

fn v2_reference(r: v2::ConfigReference, at: JsonPath) -> Resource {
    Resource {
        http_headers: v2_headers(r.http_headers, &at),
        source: r.source,
        compression: None,
        hash: r.verification.and_then(|v| v.hash),
        at,
    }
}

fn v2_contents(c: v2::FileContents, at: JsonPath) -> Resource {
    Resource {
        http_headers: v2_headers(c.http_headers, &at),
        source: c.source,
        compression: c.compression,
        hash: c.verification.and_then(|v| v.hash),
        at,
    }
}

fn v2_node(
    at: &JsonPath,
    filesystem: Option<String>,
    path: Option<String>,
    overwrite: Option<bool>,
    user: Option<v2::NodeUser>,
    group: Option<v2::NodeGroup>,
) -> Node {
    let user = user.unwrap_or_default();
    let group = group.unwrap_or_default();
    Node {
        at: at.clone(),
        path,
        filesystem,
        overwrite,
        user: owner(at.key("user"), user.id, user.name),
        group: owner(at.key("group"), group.id, group.name),
    }
}

/// Translates a decoded spec 2.x config found at `root`, reporting 2.x-only problems.
pub fn from_v2(raw: v2::Config, version: Version, root: &JsonPath, report: &mut Report) -> Config {
    let mut cfg = Config::empty(version);
    let ign_at = root.key("ignition");
    let ign = raw.ignition.unwrap_or_default();
    if let Some(c) = ign.config {
        let at = ign_at.key("config");
        cfg.ignition.merge = c
            .append
            .into_iter()
            .enumerate()
            .map(|(i, r)| v2_reference(r, at.key("append").index(i)))
            .collect();
        cfg.ignition.replace = c.replace.map(|r| v2_reference(r, at.key("replace")));
    }
    if let Some(t) = ign.timeouts {
        cfg.ignition.timeouts = Timeouts {
            at: ign_at.key("timeouts"),
            http_response_headers: t.http_response_headers,
            http_total: t.http_total,
        };
    }
    if let Some(tls) = ign.security.and_then(|s| s.tls) {
        let at = ign_at
            .key("security")
            .key("tls")
            .key("certificateAuthorities");
        cfg.ignition.certificate_authorities = tls
            .certificate_authorities
            .into_iter()
            .enumerate()
            .map(|(i, r)| v2_reference(r, at.index(i)))
            .collect();
    }
    if let Some(p) = ign.proxy {
        cfg.ignition.proxy = Proxy {
            at: ign_at.key("proxy"),
            http_proxy: p.http_proxy,
            https_proxy: p.https_proxy,
            no_proxy: p.no_proxy,
        };
    }

    let st_at = root.key("storage");
    let st = raw.storage.unwrap_or_default();
    cfg.storage.disks = st
        .disks
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let at = st_at.key("disks").index(i);
            Disk {
                device: d.device,
                wipe_table: d.wipe_table,
                partitions: d
                    .partitions
                    .into_iter()
                    .enumerate()
                    .map(|(j, p)| {
                        let pat = at.key("partitions").index(j);
                        if version.at_least(2, 3) {
                            if p.size.is_some() {
                                report.warn_msg(
                                    &pat.key("size"),
                                    Kind::Deprecated,
                                    "size is deprecated; use sizeMiB instead",
                                );
                            }
                            if p.start.is_some() {
                                report.warn_msg(
                                    &pat.key("start"),
                                    Kind::Deprecated,
                                    "start is deprecated; use startMiB instead",
                                );
                            }
                        }
                        Partition {
                            at: pat,
                            label: p.label,
                            number: p.number,
                            size_mib: p.size_mib,
                            start_mib: p.start_mib,
                            size_sectors: p.size,
                            start_sectors: p.start,
                            type_guid: p.type_guid,
                            guid: p.guid,
                            wipe_partition_entry: p.wipe_partition_entry,
                            should_exist: p.should_exist,
                            resize: None,
                        }
                    })
                    .collect(),
                at,
            }
        })
        .collect();
    cfg.storage.raid = st
        .raid
        .into_iter()
        .enumerate()
        .map(|(i, r)| Raid {
            at: st_at.key("raid").index(i),
            name: r.name,
            level: r.level,
            devices: r.devices,
            spares: r.spares,
            options: r.options,
        })
        .collect();
    cfg.storage.filesystems = st
        .filesystems
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let at = st_at.key("filesystems").index(i);
            match (&f.mount, &f.path) {
                (None, None) => {
                    report.error_msg(&at, Kind::Storage, "filesystem is missing mount or path")
                }
                (Some(_), Some(_)) => report.error_msg(
                    &at,
                    Kind::Storage,
                    "filesystem has both mount and path defined",
                ),
                _ => {}
            }
            let has_mount = f.mount.is_some();
            let m = f.mount.unwrap_or_default();
            if m.create.is_some() {
                let mat = at.key("mount");
                if version.at_least(2, 1) {
                    report.warn_msg(
                        &mat.key("create"),
                        Kind::Deprecated,
                        "the create object is deprecated; use wipeFilesystem and options",
                    );
                }
                if m.wipe_filesystem.is_some() || !m.options.is_empty() {
                    report.error_msg(
                        &mat.key("create"),
                        Kind::Storage,
                        "cannot use both create object and wipeFilesystem or options",
                    );
                }
            }
            let (wipe, options, has_create) = match m.create {
                Some(c) => (c.force, c.options, true),
                None => (m.wipe_filesystem, m.options, false),
            };
            Filesystem {
                at,
                name: f.name,
                has_mount,
                has_create,
                device: m.device,
                format: m.format,
                path: f.path,
                wipe_filesystem: wipe,
                label: m.label,
                uuid: m.uuid,
                options,
                mount_options: Vec::new(),
            }
        })
        .collect();
    cfg.storage.files = st
        .files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let at = st_at.key("files").index(i);
            let append = f.append == Some(true);
            if append && f.overwrite == Some(true) {
                report.error(&at.key("overwrite"), Kind::AppendAndOverwrite);
            }
            let contents = f.contents.map(|c| v2_contents(c, at.key("contents")));
            let (contents, appended, overwrite) = if append {
                (
                    None,
                    contents.into_iter().collect(),
                    Some(f.overwrite.unwrap_or(false)),
                )
            } else {
                (contents, Vec::new(), f.overwrite)
            };
            File {
                contents,
                append: appended,
                mode: f.mode,
                node: v2_node(&at, f.filesystem, f.path, overwrite, f.user, f.group),
            }
        })
        .collect();
    cfg.storage.directories = st
        .directories
        .into_iter()
        .enumerate()
        .map(|(i, d)| {
            let at = st_at.key("directories").index(i);
            Directory {
                mode: d.mode,
                node: v2_node(&at, d.filesystem, d.path, d.overwrite, d.user, d.group),
            }
        })
        .collect();
    cfg.storage.links = st
        .links
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let at = st_at.key("links").index(i);
            Link {
                target: l.target,
                hard: l.hard,
                node: v2_node(&at, l.filesystem, l.path, l.overwrite, l.user, l.group),
            }
        })
        .collect();

    let units_at = root.key("systemd").key("units");
    cfg.units = raw
        .systemd
        .unwrap_or_default()
        .units
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let at = units_at.index(i);
            if u.enable.is_some() && version.at_least(2, 1) {
                report.warn_msg(
                    &at.key("enable"),
                    Kind::Deprecated,
                    "enable is deprecated; use enabled",
                );
            }
            let enabled = match (u.enable, u.enabled) {
                (_, Some(false)) => Some(false),
                (Some(true), _) | (_, Some(true)) => Some(true),
                (e, None) => e,
            };
            Unit {
                name: u.name,
                enabled,
                mask: u.mask,
                contents: u.contents,
                dropins: u
                    .dropins
                    .into_iter()
                    .enumerate()
                    .map(|(j, d)| Dropin {
                        at: at.key("dropins").index(j),
                        name: d.name,
                        contents: d.contents,
                    })
                    .collect(),
                at,
            }
        })
        .collect();

    let nd_at = root.key("networkd").key("units");
    cfg.networkd = raw
        .networkd
        .unwrap_or_default()
        .units
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let at = nd_at.index(i);
            NetworkdUnit {
                name: u.name,
                contents: u.contents,
                dropins: u
                    .dropins
                    .into_iter()
                    .enumerate()
                    .map(|(j, d)| Dropin {
                        at: at.key("dropins").index(j),
                        name: d.name,
                        contents: d.contents,
                    })
                    .collect(),
                at,
            }
        })
        .collect();

    let pw_at = root.key("passwd");
    let pw = raw.passwd.unwrap_or_default();
    cfg.users = pw
        .users
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let at = pw_at.key("users").index(i);
            let mut user = User {
                at: at.clone(),
                name: u.name,
                password_hash: u.password_hash,
                ssh_authorized_keys: u.ssh_authorized_keys,
                uid: u.uid,
                gecos: u.gecos,
                home_dir: u.home_dir,
                no_create_home: u.no_create_home,
                primary_group: u.primary_group,
                groups: u.groups,
                no_user_group: u.no_user_group,
                no_log_init: u.no_log_init,
                shell: u.shell,
                system: u.system,
                should_exist: None,
            };
            if let Some(c) = u.create {
                let cat = at.key("create");
                if version.at_least(2, 1) {
                    report.warn_msg(
                        &cat,
                        Kind::Deprecated,
                        "the create object is deprecated; use the user-level fields",
                    );
                }
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
                for (field, is_set) in set {
                    if is_set {
                        report.error_msg(
                            &at.key(field),
                            Kind::CreateConflict,
                            format!(
                                "cannot use both the create object and the user-level {field} field"
                            ),
                        );
                    }
                }
                user.uid = user.uid.or(c.uid);
                user.gecos = user.gecos.or(c.gecos);
                user.home_dir = user.home_dir.or(c.home_dir);
                user.no_create_home = user.no_create_home.or(c.no_create_home);
                user.primary_group = user.primary_group.or(c.primary_group);
                if user.groups.is_empty() {
                    user.groups = c.groups;
                }
                user.no_user_group = user.no_user_group.or(c.no_user_group);
                user.no_log_init = user.no_log_init.or(c.no_log_init);
                user.shell = user.shell.or(c.shell);
                user.system = user.system.or(c.system);
            }
            user
        })
        .collect();
    cfg.groups = pw
        .groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| Group {
            at: pw_at.key("groups").index(i),
            name: g.name,
            gid: g.gid,
            password_hash: g.password_hash,
            system: g.system,
            should_exist: None,
        })
        .collect();
    cfg
}
