//! Config references: `ignition.config.replace`, 3.x `merge` and 2.x `append`.
//!
//! [`resolve`] fetches what a config references through a [`Fetcher`], parses and validates
//! each referenced config (its findings are reported under the path of the reference, e.g.
//! `$.ignition.config.merge[0]>$.storage.files[0].path`), resolves its own references depth
//! first, combines them, and validates the result again:
//!  * `replace`: the fetched config replaces the current one entirely;
//!  * 3.x `merge` ([`merge_v3`]): the child overrides the parent; list entries with the same
//!    key (path, unit name, user name, ...) are merged field by field; files, directories and
//!    links share one key space; a child HTTP header without a value deletes the parent's;
//!  * 2.x `append` ([`append_v2`]): lists are concatenated, settings the child sets win.
//!
//! Referenced configs must be of the same spec line (2.x references 2.x, 3.x references 3.x).
//! Their timeouts and CAs apply to the fetches made by the parent: the parent's timeouts,
//! proxy and CAs are used to fetch its children.

use crate::fetch::{fetch_resource, FetchOptions, Fetcher};
use crate::model::*;
use crate::parse::parse_at;
use crate::report::{JsonPath, Kind, Report, Severity};
use crate::validate::{validate, whole, ValidConfig};

const MAX_DEPTH: usize = 10;

/// Fetch options (timeouts, proxy, CAs) a config sets for its own fetches. The CAs are
/// fetched with `fetcher`; a failure is reported with the CA's path.
pub fn fetch_options(cfg: &Config, fetcher: &dyn Fetcher) -> Result<FetchOptions, Report> {
    let mut opts = FetchOptions {
        timeouts: cfg.ignition.timeouts.clone(),
        proxy: cfg.ignition.proxy.clone(),
        ..Default::default()
    };
    let mut report = Report::new();
    for ca in &cfg.ignition.certificate_authorities {
        match fetch_resource(fetcher, ca, cfg.version, &opts) {
            Ok(pem) => opts.ca_pems.push(pem),
            Err(e) => report.error_msg(
                &e.path(ca),
                Kind::SourceRequired,
                format!("fetching certificate authority: {e}"),
            ),
        }
    }
    if report.has_errors() {
        Err(report)
    } else {
        Ok(opts)
    }
}

/// Fetches, validates and combines every config `cfg` references (recursively). The result
/// has no references left and has been validated as a whole ([`whole`]).
pub fn resolve(cfg: Config, fetcher: &dyn Fetcher) -> Result<ValidConfig, Report> {
    whole(resolve_depth(cfg, fetcher, 0)?)
}

fn fetch_child(
    res: &Resource,
    parent: &Config,
    opts: &FetchOptions,
    fetcher: &dyn Fetcher,
    depth: usize,
) -> Result<Config, Report> {
    let mut report = Report::new();
    let mut opts = opts.clone();
    opts.is_config = true;
    let bytes = match fetch_resource(fetcher, res, parent.version, &opts) {
        Ok(b) => b,
        Err(e) => {
            report.error_msg(
                &e.path(res),
                Kind::SourceRequired,
                format!("fetching referenced config: {e}"),
            );
            return Err(report);
        }
    };
    let child = parse_at(&bytes, &JsonPath::nested(&res.at))?;
    if child.version.major != parent.version.major {
        report.error_msg(
            &res.at.key("source"),
            Kind::UnsupportedVersion,
            format!(
                "referenced config has spec version {}, but a {}.x config can only reference {}.x configs",
                child.version, parent.version.major, parent.version.major
            ),
        );
        return Err(report);
    }
    resolve_depth(child, fetcher, depth + 1)
}

fn resolve_depth(mut cfg: Config, fetcher: &dyn Fetcher, depth: usize) -> Result<Config, Report> {
    if !cfg.has_references() {
        return Ok(cfg);
    }
    if depth >= MAX_DEPTH {
        let mut r = Report::new();
        r.error_msg(
            &JsonPath::root().key("ignition").key("config"),
            Kind::SourceRequired,
            format!("config references nest deeper than {MAX_DEPTH} levels"),
        );
        return Err(r);
    }
    let opts = fetch_options(&cfg, fetcher)?;
    if let Some(replace) = cfg.ignition.replace.take() {
        let mut child = fetch_child(&replace, &cfg, &opts, fetcher, depth)?;
        let mut warnings = std::mem::take(&mut cfg.warnings);
        warnings.append(&mut child.warnings);
        child.warnings = warnings;
        return Ok(child);
    }
    let refs = std::mem::take(&mut cfg.ignition.merge);
    let mut errors = Report::new();
    let mut result = cfg;
    for r in &refs {
        match fetch_child(r, &result, &opts, fetcher, depth) {
            Ok(child) => {
                result = if result.version.is_v2() {
                    append_v2(result, child)
                } else {
                    merge_v3(result, child)
                };
            }
            Err(rep) => errors.extend(rep),
        }
    }
    if errors.has_errors() {
        return Err(errors);
    }
    let mut findings = Report::new();
    validate(&result, &mut findings);
    if findings.has_errors() {
        findings.entries.retain(|e| e.severity == Severity::Error);
        return Err(findings);
    }
    for w in findings.into_warnings() {
        if !result.warnings.contains(&w) {
            result.warnings.push(w);
        }
    }
    Ok(result)
}

fn or<T>(parent: &mut Option<T>, child: Option<T>) {
    if child.is_some() {
        *parent = child;
    }
}

fn union(parent: &mut Vec<String>, child: Vec<String>) {
    for c in child {
        if !parent.contains(&c) {
            parent.push(c);
        }
    }
}

/// Merges `child` into `parent` by key: entries whose key matches are merged with `merge`,
/// the others appended.
fn keyed<T>(
    parent: &mut Vec<T>,
    child: Vec<T>,
    key: impl Fn(&T) -> Option<String>,
    merge: impl Fn(&mut T, T),
) {
    for c in child {
        let k = key(&c);
        match k
            .as_ref()
            .and_then(|k| parent.iter().position(|p| key(p).as_ref() == Some(k)))
        {
            Some(i) => merge(&mut parent[i], c),
            None => parent.push(c),
        }
    }
}

fn merge_headers(parent: &mut Vec<HttpHeader>, child: Vec<HttpHeader>) {
    for c in child {
        let pos = parent.iter().position(|p| p.name == c.name);
        match (pos, c.value.is_some()) {
            (Some(i), true) => parent[i] = c,
            (Some(i), false) => {
                parent.remove(i);
            }
            (None, _) => parent.push(c),
        }
    }
}

fn merge_resource(p: &mut Resource, c: Resource) {
    p.at = c.at;
    or(&mut p.source, c.source);
    or(&mut p.compression, c.compression);
    or(&mut p.hash, c.hash);
    merge_headers(&mut p.http_headers, c.http_headers);
}

fn merge_opt_resource(p: &mut Option<Resource>, c: Option<Resource>) {
    match (p.as_mut(), c) {
        (Some(p), Some(c)) => merge_resource(p, c),
        (None, Some(c)) => *p = Some(c),
        (_, None) => {}
    }
}

fn merge_node(p: &mut Node, c: Node) {
    p.at = c.at;
    or(&mut p.overwrite, c.overwrite);
    if !c.user.is_unset() {
        p.user = c.user;
    }
    if !c.group.is_unset() {
        p.group = c.group;
    }
}

fn merge_dropins(p: &mut Vec<Dropin>, c: Vec<Dropin>) {
    keyed(
        p,
        c,
        |d| d.name.clone(),
        |p, c| {
            p.at = c.at;
            or(&mut p.contents, c.contents);
        },
    );
}

/// Spec 3.x merge: `child` overrides `parent`, by key.
pub fn merge_v3(mut parent: Config, child: Config) -> Config {
    parent.version = parent.version.max(child.version);
    parent.warnings.extend(child.warnings);
    // ignition
    let (pi, ci) = (&mut parent.ignition, child.ignition);
    keyed(
        &mut pi.merge,
        ci.merge,
        |r| r.source.clone(),
        merge_resource,
    );
    merge_opt_resource(&mut pi.replace, ci.replace);
    or(
        &mut pi.timeouts.http_response_headers,
        ci.timeouts.http_response_headers,
    );
    or(&mut pi.timeouts.http_total, ci.timeouts.http_total);
    keyed(
        &mut pi.certificate_authorities,
        ci.certificate_authorities,
        |r| r.source.clone(),
        merge_resource,
    );
    or(&mut pi.proxy.http_proxy, ci.proxy.http_proxy);
    or(&mut pi.proxy.https_proxy, ci.proxy.https_proxy);
    union(&mut pi.proxy.no_proxy, ci.proxy.no_proxy);

    // storage
    let (ps, cs) = (&mut parent.storage, child.storage);
    keyed(
        &mut ps.disks,
        cs.disks,
        |d| d.device.clone(),
        |p, c| {
            p.at = c.at;
            or(&mut p.wipe_table, c.wipe_table);
            keyed(
                &mut p.partitions,
                c.partitions,
                |x| match x.number {
                    Some(n) if n > 0 => Some(format!("#{n}")),
                    _ => x.label.clone(),
                },
                |p, c| {
                    p.at = c.at;
                    or(&mut p.label, c.label);
                    or(&mut p.number, c.number);
                    or(&mut p.size_mib, c.size_mib);
                    or(&mut p.start_mib, c.start_mib);
                    or(&mut p.type_guid, c.type_guid);
                    or(&mut p.guid, c.guid);
                    or(&mut p.wipe_partition_entry, c.wipe_partition_entry);
                    or(&mut p.should_exist, c.should_exist);
                    or(&mut p.resize, c.resize);
                },
            );
        },
    );
    keyed(
        &mut ps.raid,
        cs.raid,
        |r| r.name.clone(),
        |p, c| {
            p.at = c.at;
            or(&mut p.level, c.level);
            union(&mut p.devices, c.devices);
            or(&mut p.spares, c.spares);
            p.options.extend(c.options);
        },
    );
    keyed(
        &mut ps.filesystems,
        cs.filesystems,
        |f| f.device.clone(),
        |p, c| {
            p.at = c.at;
            or(&mut p.format, c.format);
            or(&mut p.path, c.path);
            or(&mut p.wipe_filesystem, c.wipe_filesystem);
            or(&mut p.label, c.label);
            or(&mut p.uuid, c.uuid);
            p.options.extend(c.options);
            p.mount_options.extend(c.mount_options);
        },
    );
    keyed(
        &mut ps.luks,
        cs.luks,
        |l| l.name.clone(),
        |p, c| {
            p.at = c.at;
            or(&mut p.device, c.device);
            merge_opt_resource(&mut p.key_file, c.key_file);
            or(&mut p.label, c.label);
            or(&mut p.uuid, c.uuid);
            p.options.extend(c.options);
            or(&mut p.wipe_volume, c.wipe_volume);
            or(&mut p.clevis, c.clevis);
            or(&mut p.discard, c.discard);
            p.open_options.extend(c.open_options);
            or(&mut p.cex, c.cex);
        },
    );
    // Files, directories and links share one key space: a child entry of another kind
    // replaces the parent's.
    let child_paths: Vec<(String, u8)> = cs
        .files
        .iter()
        .map(|f| (f.node.path.clone(), 0))
        .chain(cs.directories.iter().map(|d| (d.node.path.clone(), 1)))
        .chain(cs.links.iter().map(|l| (l.node.path.clone(), 2)))
        .filter_map(|(p, k)| Some((p?, k)))
        .collect();
    let replaced = |path: &Option<String>, kind: u8| {
        path.as_ref()
            .is_some_and(|p| child_paths.iter().any(|(cp, ck)| cp == p && *ck != kind))
    };
    ps.files.retain(|f| !replaced(&f.node.path, 0));
    ps.directories.retain(|d| !replaced(&d.node.path, 1));
    ps.links.retain(|l| !replaced(&l.node.path, 2));
    keyed(
        &mut ps.files,
        cs.files,
        |f| f.node.path.clone(),
        |p, c| {
            merge_node(&mut p.node, c.node);
            merge_opt_resource(&mut p.contents, c.contents);
            keyed(
                &mut p.append,
                c.append,
                |r| r.source.clone(),
                merge_resource,
            );
            or(&mut p.mode, c.mode);
        },
    );
    keyed(
        &mut ps.directories,
        cs.directories,
        |d| d.node.path.clone(),
        |p, c| {
            merge_node(&mut p.node, c.node);
            or(&mut p.mode, c.mode);
        },
    );
    keyed(
        &mut ps.links,
        cs.links,
        |l| l.node.path.clone(),
        |p, c| {
            merge_node(&mut p.node, c.node);
            or(&mut p.target, c.target);
            or(&mut p.hard, c.hard);
        },
    );

    keyed(
        &mut parent.units,
        child.units,
        |u| u.name.clone(),
        |p, c| {
            p.at = c.at;
            or(&mut p.enabled, c.enabled);
            or(&mut p.mask, c.mask);
            or(&mut p.contents, c.contents);
            merge_dropins(&mut p.dropins, c.dropins);
        },
    );
    keyed(
        &mut parent.users,
        child.users,
        |u| u.name.clone(),
        |p, c| {
            p.at = c.at;
            or(&mut p.password_hash, c.password_hash);
            union(&mut p.ssh_authorized_keys, c.ssh_authorized_keys);
            or(&mut p.uid, c.uid);
            or(&mut p.gecos, c.gecos);
            or(&mut p.home_dir, c.home_dir);
            or(&mut p.no_create_home, c.no_create_home);
            or(&mut p.primary_group, c.primary_group);
            union(&mut p.groups, c.groups);
            or(&mut p.no_user_group, c.no_user_group);
            or(&mut p.no_log_init, c.no_log_init);
            or(&mut p.shell, c.shell);
            or(&mut p.system, c.system);
            or(&mut p.should_exist, c.should_exist);
        },
    );
    keyed(
        &mut parent.groups,
        child.groups,
        |g| g.name.clone(),
        |p, c| {
            p.at = c.at;
            or(&mut p.gid, c.gid);
            or(&mut p.password_hash, c.password_hash);
            or(&mut p.system, c.system);
            or(&mut p.should_exist, c.should_exist);
        },
    );
    union(
        &mut parent.kernel_arguments.should_exist,
        child.kernel_arguments.should_exist,
    );
    union(
        &mut parent.kernel_arguments.should_not_exist,
        child.kernel_arguments.should_not_exist,
    );
    parent
}

/// Spec 2.x append: lists concatenated, settings the child sets win.
pub fn append_v2(mut parent: Config, child: Config) -> Config {
    parent.version = parent.version.max(child.version);
    parent.warnings.extend(child.warnings);
    let (pi, ci) = (&mut parent.ignition, child.ignition);
    or(
        &mut pi.timeouts.http_response_headers,
        ci.timeouts.http_response_headers,
    );
    or(&mut pi.timeouts.http_total, ci.timeouts.http_total);
    pi.certificate_authorities
        .extend(ci.certificate_authorities);
    or(&mut pi.proxy.http_proxy, ci.proxy.http_proxy);
    or(&mut pi.proxy.https_proxy, ci.proxy.https_proxy);
    pi.proxy.no_proxy.extend(ci.proxy.no_proxy);
    let (ps, cs) = (&mut parent.storage, child.storage);
    ps.disks.extend(cs.disks);
    ps.raid.extend(cs.raid);
    ps.filesystems.extend(cs.filesystems);
    ps.luks.extend(cs.luks);
    ps.files.extend(cs.files);
    ps.directories.extend(cs.directories);
    ps.links.extend(cs.links);
    parent.units.extend(child.units);
    parent.networkd.extend(child.networkd);
    parent.users.extend(child.users);
    parent.groups.extend(child.groups);
    parent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::MapFetcher;
    use crate::parse::parse;

    fn cfg(json: &str) -> Config {
        parse(json.as_bytes()).unwrap_or_else(|r| panic!("{r}"))
    }

    #[test]
    fn v3_merge_overrides_by_key_and_keeps_unset_fields() {
        let child = r#"{"ignition":{"version":"3.1.0"},"storage":{"files":[
            {"path":"/etc/motd","contents":{"source":"data:,child"}},
            {"path":"/etc/new","contents":{"source":"data:,new"}}]},
            "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["key-b"]}]}}"#;
        let parent = cfg(
            r#"{"ignition":{"version":"3.0.0","config":{"merge":[{"source":"http://cfg/child"}]}},
            "storage":{"files":[{"path":"/etc/motd","mode":384,"contents":{"source":"data:,parent"}}]},
            "passwd":{"users":[{"name":"core","sshAuthorizedKeys":["key-a"]}]}}"#,
        );
        let f = MapFetcher::new().with("http://cfg/child", child);
        let merged = resolve(parent, &f).unwrap();
        assert_eq!(merged.version, crate::parse::version::Version::new(3, 1));
        assert_eq!(merged.storage.files.len(), 2);
        let motd = &merged.storage.files[0];
        assert_eq!(motd.mode, Some(384), "parent's mode kept");
        assert_eq!(
            motd.contents.as_ref().unwrap().source.as_deref(),
            Some("data:,child")
        );
        assert_eq!(merged.users.len(), 1);
        assert_eq!(merged.users[0].ssh_authorized_keys, ["key-a", "key-b"]);
        assert!(!merged.has_references());
        assert_eq!(*f.requests.borrow(), ["http://cfg/child"]);
    }

    #[test]
    fn v3_child_directory_replaces_parent_file() {
        let p = cfg(r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"/a"}]}}"#);
        let c =
            cfg(r#"{"ignition":{"version":"3.0.0"},"storage":{"directories":[{"path":"/a"}]}}"#);
        let m = merge_v3(p, c);
        assert!(m.storage.files.is_empty());
        assert_eq!(m.storage.directories.len(), 1);
    }

    #[test]
    fn v2_append_concatenates() {
        let child = r#"{"ignition":{"version":"2.1.0"},"systemd":{"units":[{"name":"b.service","mask":true}]}}"#;
        let parent = cfg(
            r#"{"ignition":{"version":"2.2.0","config":{"append":[{"source":"http://cfg/c"}]}},
            "systemd":{"units":[{"name":"a.service","mask":true}]}}"#,
        );
        let merged = resolve(parent, &MapFetcher::new().with("http://cfg/c", child)).unwrap();
        let names: Vec<_> = merged
            .units
            .iter()
            .map(|u| u.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a.service", "b.service"]);
    }

    #[test]
    fn replace_takes_the_fetched_config() {
        let parent = cfg(
            r#"{"ignition":{"version":"3.2.0","config":{"replace":{"source":"http://cfg/r"}}},
            "systemd":{"units":[{"name":"a.service","mask":true}]}}"#,
        );
        let child = r#"{"ignition":{"version":"3.0.0"},"systemd":{"units":[{"name":"z.service","mask":true}]}}"#;
        let merged = resolve(parent, &MapFetcher::new().with("http://cfg/r", child)).unwrap();
        assert_eq!(merged.units.len(), 1);
        assert_eq!(merged.units[0].name.as_deref(), Some("z.service"));
    }

    #[test]
    fn invalid_child_is_reported_under_the_reference() {
        let parent = cfg(
            r#"{"ignition":{"version":"3.0.0","config":{"merge":[{"source":"http://cfg/bad"}]}}}"#,
        );
        let child = r#"{"ignition":{"version":"3.0.0"},"storage":{"files":[{"path":"rel"}]}}"#;
        let err = resolve(parent, &MapFetcher::new().with("http://cfg/bad", child)).unwrap_err();
        let e = err.errors().next().unwrap();
        assert_eq!(e.path, "$.ignition.config.merge[0]>$.storage.files[0].path");
        assert_eq!(e.kind, Kind::PathNotAbsolute);
    }

    #[test]
    fn fetch_failure_and_hash_mismatch_are_errors_at_the_source_and_the_hash() {
        let parent = cfg(&format!(
            r#"{{"ignition":{{"version":"3.0.0","config":{{"merge":[
                {{"source":"http://cfg/missing"}},
                {{"source":"http://cfg/x","verification":{{"hash":"sha512-{}"}}}}]}}}}}}"#,
            "0".repeat(128)
        ));
        let f = MapFetcher::new().with("http://cfg/x", r#"{"ignition":{"version":"3.0.0"}}"#);
        let err = resolve(parent, &f).unwrap_err();
        let paths: Vec<&str> = err.errors().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "$.ignition.config.merge[0].source",
                "$.ignition.config.merge[1].verification.hash"
            ]
        );
    }

    /// A 2.x filesystem name may be defined by the config that refers to it or by one it
    /// appends; one that nobody defines fails the resolved config, at the node's path.
    #[test]
    fn v2_filesystem_names_resolve_across_appended_configs() {
        let parent = r#"{"ignition":{"version":"2.2.0","config":{"append":[{"source":"http://cfg/c"}]}},
            "storage":{"files":[{"filesystem":"data","path":"/b","mode":420}]}}"#;
        let defines = r#"{"ignition":{"version":"2.2.0"},"storage":{"filesystems":[
            {"name":"data","mount":{"device":"/dev/vdb","format":"ext4"}}]}}"#;
        let uses = r#"{"ignition":{"version":"2.2.0"},"storage":{"filesystems":[
            {"name":"data","mount":{"device":"/dev/vdb","format":"ext4"}}],
            "files":[{"filesystem":"other","path":"/c","mode":420}]}}"#;
        let merged = resolve(
            cfg(parent),
            &MapFetcher::new().with("http://cfg/c", defines),
        );
        assert!(merged.is_ok(), "{}", merged.unwrap_err());
        let err = resolve(cfg(parent), &MapFetcher::new().with("http://cfg/c", uses)).unwrap_err();
        let got: Vec<(&str, Kind)> = err.errors().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(
            got,
            [(
                "$.ignition.config.append[0]>$.storage.files[0].filesystem",
                Kind::UndefinedFilesystem
            )]
        );
    }

    /// Before 3.3 a link may lack its target while a merged config can still supply it;
    /// the resolved config must have it, so planning never finds a link without one.
    #[test]
    fn a_resolved_config_has_every_link_target() {
        let parent = r#"{"ignition":{"version":"3.0.0","config":{"merge":[{"source":"http://cfg/c"}]}},
            "storage":{"links":[{"path":"/l"}]}}"#;
        let child =
            r#"{"ignition":{"version":"3.0.0"},"storage":{"links":[{"path":"/l","target":"/x"}]}}"#;
        let merged = resolve(cfg(parent), &MapFetcher::new().with("http://cfg/c", child)).unwrap();
        assert_eq!(merged.storage.links[0].target.as_deref(), Some("/x"));
        assert!(merged.warnings.is_empty(), "{:?}", merged.warnings);

        let lone = cfg(r#"{"ignition":{"version":"3.0.0"},"storage":{"links":[{"path":"/l"}]}}"#);
        assert_eq!(lone.warnings[0].kind, Kind::LinkTargetRequired);
        let err = resolve(lone, &MapFetcher::new()).unwrap_err();
        let got: Vec<(&str, Kind)> = err.errors().map(|e| (e.path.as_str(), e.kind)).collect();
        assert_eq!(
            got,
            [("$.storage.links[0].target", Kind::LinkTargetRequired)]
        );
    }

    #[test]
    fn v2_cannot_reference_v3() {
        let parent = cfg(
            r#"{"ignition":{"version":"2.2.0","config":{"append":[{"source":"http://cfg/c"}]}}}"#,
        );
        let f = MapFetcher::new().with("http://cfg/c", r#"{"ignition":{"version":"3.0.0"}}"#);
        let err = resolve(parent, &f).unwrap_err();
        assert_eq!(err.errors().next().unwrap().kind, Kind::UnsupportedVersion);
    }
}
