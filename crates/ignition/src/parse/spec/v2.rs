//! Raw types of spec 2.0.0 – 2.4.0 (Container Linux / Flatcar Ignition v0.x) that have no 3.x
//! counterpart: references without `compression`, a filesystem's `mount` object, a user's
//! `create` object, networkd units. Everything else is decoded into the 3.x types
//! ([`super::v3`]), which carry 2.x's keys and versions too; [`crate::parse::lift`] turns a 2.x
//! config into the 3.x raw form.

use super::v3::{Dropin, HttpHeader, Verification};
use crate::raw_struct;

raw_struct! {
    /// A referenced config or certificate.
    pub struct ConfigReference {
        source: Option<String> = "source",
        verification: Option<Verification> = "verification",
        http_headers: Vec<HttpHeader> = "httpHeaders" since 4,
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
