//! The 3.x raw form → the internal model: the one translation. A spec 2.x config reaches it
//! lifted ([`crate::parse::lift`]), with its [`V2Only`] record: the model keeps the 2.x fields of the
//! raw types (filesystem names, the filesystem of each node, sizes in sectors) and what the
//! record says (which filesystems are made at boot, appended contents named at their 2.x
//! path, networkd units); referenced configs are named at the 2.x key, `append`.

use crate::model::*;
use crate::parse::lift::V2Only;
use crate::parse::spec::v3;
use crate::parse::version::Version;
use crate::report::JsonPath;

/// The `i`th entry of a record list, or the default (3.x: no record).
fn nth<T: Clone + Default>(list: Option<&Vec<T>>, i: usize) -> T {
    list.and_then(|l| l.get(i)).cloned().unwrap_or_default()
}

fn resource(r: v3::Resource, at: JsonPath) -> Resource {
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

fn node(
    at: &JsonPath,
    path: Option<String>,
    filesystem: Option<String>,
    overwrite: Option<bool>,
    user: Option<v3::NodeUser>,
    group: Option<v3::NodeGroup>,
) -> Node {
    let (user, group) = (user.unwrap_or_default(), group.unwrap_or_default());
    Node {
        at: at.clone(),
        path,
        filesystem,
        overwrite,
        user: Owner {
            at: at.key("user"),
            id: user.id,
            name: user.name,
        },
        group: Owner {
            at: at.key("group"),
            id: group.id,
            name: group.name,
        },
    }
}

fn dropins(list: Vec<v3::Dropin>, at: &JsonPath) -> Vec<Dropin> {
    list.into_iter()
        .enumerate()
        .map(|(j, d)| Dropin {
            at: at.key("dropins").index(j),
            name: d.name,
            contents: d.contents,
        })
        .collect()
}

/// Translates a config in the 3.x raw form found at `root`; `v2` is the record of a lifted
/// spec 2.x config.
pub fn translate(
    raw: v3::Config,
    v2: Option<&V2Only>,
    version: Version,
    root: &JsonPath,
) -> Config {
    let mut cfg = Config::empty(version);
    let ign_at = root.key("ignition");
    let ign = raw.ignition.unwrap_or_default();
    if let Some(c) = ign.config {
        let at = ign_at.key("config");
        let refs = at.key(if v2.is_some() { "append" } else { "merge" });
        cfg.ignition.merge = c
            .merge
            .into_iter()
            .enumerate()
            .map(|(i, r)| resource(r, refs.index(i)))
            .collect();
        cfg.ignition.replace = c.replace.map(|r| resource(r, at.key("replace")));
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
            .map(|(i, r)| resource(r, at.index(i)))
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
    storage(
        &mut cfg,
        raw.storage.unwrap_or_default(),
        v2,
        &root.key("storage"),
    );

    let units_at = root.key("systemd").key("units");
    cfg.units = (raw
        .systemd
        .unwrap_or_default()
        .units
        .into_iter()
        .enumerate())
    .map(|(i, u)| {
        let at = units_at.index(i);
        Unit {
            name: u.name,
            enabled: u.enabled,
            mask: u.mask,
            contents: u.contents,
            dropins: dropins(u.dropins, &at),
            at,
        }
    })
    .collect();
    let nd_at = root.key("networkd").key("units");
    cfg.networkd = (v2.map(|v| v.networkd.clone()).unwrap_or_default())
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let at = nd_at.index(i);
            NetworkdUnit {
                name: u.name,
                contents: u.contents,
                dropins: dropins(u.dropins, &at),
                at,
            }
        })
        .collect();

    let pw_at = root.key("passwd");
    let pw = raw.passwd.unwrap_or_default();
    cfg.users = (pw.users.into_iter().enumerate())
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
    cfg.groups = (pw.groups.into_iter().enumerate())
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

fn storage(cfg: &mut Config, st: v3::Storage, v2: Option<&V2Only>, st_at: &JsonPath) {
    cfg.storage.disks = (st.disks.into_iter().enumerate())
        .map(|(i, d)| {
            let at = st_at.key("disks").index(i);
            Disk {
                device: d.device,
                wipe_table: d.wipe_table,
                partitions: (d.partitions.into_iter().enumerate())
                    .map(|(j, p)| Partition {
                        at: at.key("partitions").index(j),
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
                        resize: p.resize,
                    })
                    .collect(),
                at,
            }
        })
        .collect();
    cfg.storage.raid = (st.raid.into_iter().enumerate())
        .map(|(i, r)| Raid {
            at: st_at.key("raid").index(i),
            name: r.name,
            level: r.level,
            devices: r.devices,
            spares: r.spares,
            options: r.options,
        })
        .collect();
    let fs_record = v2.map(|v| &v.filesystems);
    cfg.storage.filesystems = (st.filesystems.into_iter().enumerate())
        .map(|(i, f)| {
            let rec = nth(fs_record, i);
            Filesystem {
                at: st_at.key("filesystems").index(i),
                name: f.name,
                has_mount: rec.has_mount,
                has_create: rec.has_create,
                device: f.device,
                format: f.format,
                path: f.path,
                wipe_filesystem: f.wipe_filesystem,
                label: f.label,
                uuid: f.uuid,
                options: f.options,
                mount_options: f.mount_options,
            }
        })
        .collect();
    cfg.storage.luks = (st.luks.into_iter().enumerate())
        .map(|(i, l)| {
            let at = st_at.key("luks").index(i);
            Luks {
                name: l.name,
                device: l.device,
                key_file: l.key_file.map(|r| resource(r, at.key("keyFile"))),
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
    let appended = v2.map(|v| &v.appended);
    cfg.storage.files = (st.files.into_iter().enumerate())
        .map(|(i, f)| {
            let at = st_at.key("files").index(i);
            // 2.x `append: true` contents stay named where they were written.
            let append_at = |j: usize| match nth(appended, i) {
                true => at.key("contents"),
                false => at.key("append").index(j),
            };
            File {
                contents: f.contents.map(|r| resource(r, at.key("contents"))),
                append: (f.append.into_iter().enumerate())
                    .map(|(j, r)| resource(r, append_at(j)))
                    .collect(),
                mode: f.mode,
                node: node(&at, f.path, f.filesystem, f.overwrite, f.user, f.group),
            }
        })
        .collect();
    cfg.storage.directories = (st.directories.into_iter().enumerate())
        .map(|(i, d)| {
            let at = st_at.key("directories").index(i);
            Directory {
                mode: d.mode,
                node: node(&at, d.path, d.filesystem, d.overwrite, d.user, d.group),
            }
        })
        .collect();
    cfg.storage.links = (st.links.into_iter().enumerate())
        .map(|(i, l)| {
            let at = st_at.key("links").index(i);
            Link {
                target: l.target,
                hard: l.hard,
                node: node(&at, l.path, l.filesystem, l.overwrite, l.user, l.group),
            }
        })
        .collect();
}
