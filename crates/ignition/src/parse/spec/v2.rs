//! Raw types of spec 2.0.0 – 2.4.0 (Container Linux / Flatcar Ignition v0.x): only those whose
//! JSON shape has no 3.x counterpart. The rest are the 3.x types ([`super::v3`], re-exported
//! here), which carry 2.x's fields and versions too; [`crate::parse::lift`] turns a 2.x config into the
//! 3.x raw form.

use crate::raw_struct;

pub use super::v3::{
    Disk, Dropin, Filesystem, Group, HttpHeader, NodeGroup, NodeUser, Partition, Passwd, Proxy,
    Raid, Resource, Storage, Systemd, Timeouts, User, Verification,
};

raw_struct! {
    /// The whole config.
    pub struct Config {
        ignition: Option<Ignition> = "ignition",
        storage: Option<Storage> = "storage",
        systemd: Option<Systemd> = "systemd",
        networkd: Option<Networkd> = "networkd",
        passwd: Option<Passwd> = "passwd",
    }
}

raw_struct! {
    /// `ignition` section.
    pub struct Ignition {
        version: Option<String> = "version",
        config: Option<IgnitionConfig> = "config",
        timeouts: Option<Timeouts> = "timeouts" since 1,
        security: Option<Security> = "security" since 2,
        proxy: Option<Proxy> = "proxy" since 4,
    }
}

raw_struct! {
    /// `ignition.config`.
    pub struct IgnitionConfig {
        append: Vec<ConfigReference> = "append",
        replace: Option<ConfigReference> = "replace",
    }
}

raw_struct! {
    /// A referenced config or certificate.
    pub struct ConfigReference {
        source: Option<String> = "source",
        verification: Option<Verification> = "verification",
        http_headers: Vec<HttpHeader> = "httpHeaders" since 4,
    }
}

raw_struct! {
    /// `ignition.security`.
    pub struct Security {
        tls: Option<Tls> = "tls",
    }
}

raw_struct! {
    /// `ignition.security.tls`.
    pub struct Tls {
        certificate_authorities: Vec<ConfigReference> = "certificateAuthorities",
    }
}

raw_struct! {
    /// `filesystems[].mount`.
    pub struct Mount {
        device: Option<String> = "device",
        format: Option<String> = "format",
        create: Option<Create> = "create",
        wipe_filesystem: Option<bool> = "wipeFilesystem" since 1,
        label: Option<String> = "label" since 1,
        uuid: Option<String> = "uuid" since 1,
        options: Vec<String> = "options" since 1,
    }
}

raw_struct! {
    /// `mount.create` (2.0; deprecated from 2.1).
    pub struct Create {
        force: Option<bool> = "force",
        options: Vec<String> = "options",
    }
}

raw_struct! {
    /// `networkd`.
    pub struct Networkd {
        units: Vec<NetworkdUnit> = "units",
    }
}

raw_struct! {
    /// A networkd unit.
    pub struct NetworkdUnit {
        name: Option<String> = "name",
        contents: Option<String> = "contents",
        dropins: Vec<Dropin> = "dropins" since 2,
    }
}

raw_struct! {
    /// `users[].create` (2.0; deprecated from 2.1).
    pub struct UserCreate {
        uid: Option<i64> = "uid",
        gecos: Option<String> = "gecos",
        home_dir: Option<String> = "homeDir",
        no_create_home: Option<bool> = "noCreateHome",
        primary_group: Option<String> = "primaryGroup",
        groups: Vec<String> = "groups",
        no_user_group: Option<bool> = "noUserGroup",
        system: Option<bool> = "system",
        no_log_init: Option<bool> = "noLogInit",
        shell: Option<String> = "shell",
    }
}
