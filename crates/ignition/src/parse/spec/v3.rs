//! Raw types of spec 3.0.0 – 3.5.0 (Ignition ≥ 2.0: Fedora CoreOS, current Flatcar): the raw
//! form every config reaches, spec 2.x ones through [`crate::parse::lift`].
//!
//! The types whose JSON shape spec 2.x shares are used by [`super::v2`] too (they say so);
//! where a field came in another minor version in 2.x, or only one line has it, its `since`
//! gives both lines.

use serde_json::Value;

use crate::raw_struct;

raw_struct! {
    /// The whole config.
    pub struct Config {
        ignition: Option<Ignition> = "ignition",
        storage: Option<Storage> = "storage",
        systemd: Option<Systemd> = "systemd",
        passwd: Option<Passwd> = "passwd",
        kernel_arguments: Option<KernelArguments> = "kernelArguments" since 3,
    }
}

raw_struct! {
    /// `ignition` section.
    pub struct Ignition {
        version: Option<String> = "version",
        config: Option<IgnitionConfig> = "config",
        timeouts: Option<Timeouts> = "timeouts",
        security: Option<Security> = "security",
        proxy: Option<Proxy> = "proxy" since 1,
    }
}

raw_struct! {
    /// `ignition.config`.
    pub struct IgnitionConfig {
        merge: Vec<Resource> = "merge",
        replace: Option<Resource> = "replace",
    }
}

raw_struct! {
    /// A resource: a config reference, a CA, file contents or appended data (2.x: file
    /// contents).
    pub struct Resource {
        source: Option<String> = "source",
        compression: Option<String> = "compression",
        http_headers: Vec<HttpHeader> = "httpHeaders" since [4, 1],
        verification: Option<Verification> = "verification",
    }
}

raw_struct! {
    /// `verification` (2.x too).
    pub struct Verification {
        hash: Option<String> = "hash",
    }
}

raw_struct! {
    /// An HTTP header sent with a fetch (2.x too).
    pub struct HttpHeader {
        name: Option<String> = "name",
        value: Option<String> = "value",
    }
}

raw_struct! {
    /// `ignition.timeouts` (2.x too).
    pub struct Timeouts {
        http_response_headers: Option<i64> = "httpResponseHeaders",
        http_total: Option<i64> = "httpTotal",
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
        certificate_authorities: Vec<Resource> = "certificateAuthorities",
    }
}

raw_struct! {
    /// `ignition.proxy` (3.1+, 2.4; 2.x too).
    pub struct Proxy {
        http_proxy: Option<String> = "httpProxy",
        https_proxy: Option<String> = "httpsProxy",
        no_proxy: Vec<String> = "noProxy",
    }
}

raw_struct! {
    /// `storage` (2.x too).
    pub struct Storage {
        disks: Vec<Disk> = "disks",
        raid: Vec<Raid> = "raid",
        filesystems: Vec<Filesystem> = "filesystems",
        files: Vec<File> = "files",
        directories: Vec<Directory> = "directories" since [1, 0],
        links: Vec<Link> = "links" since [1, 0],
        luks: Vec<Luks> = "luks" since [_, 2],
    }
}

raw_struct! {
    /// A disk (2.x too).
    pub struct Disk {
        device: Option<String> = "device",
        wipe_table: Option<bool> = "wipeTable",
        partitions: Vec<Partition> = "partitions",
    }
}

raw_struct! {
    /// A partition (2.x too, with its size and start in sectors).
    pub struct Partition {
        label: Option<String> = "label",
        number: Option<i64> = "number",
        size: Option<i64> = "size" since [0, _],
        start: Option<i64> = "start" since [0, _],
        size_mib: Option<i64> = "sizeMiB" since [3, 0],
        start_mib: Option<i64> = "startMiB" since [3, 0],
        type_guid: Option<String> = "typeGuid",
        guid: Option<String> = "guid" since [1, 0],
        wipe_partition_entry: Option<bool> = "wipePartitionEntry" since [3, 0],
        should_exist: Option<bool> = "shouldExist" since [3, 0],
        resize: Option<bool> = "resize" since [_, 2],
    }
}

raw_struct! {
    /// A software RAID array (2.x too).
    pub struct Raid {
        name: Option<String> = "name",
        level: Option<String> = "level",
        devices: Vec<String> = "devices",
        spares: Option<i64> = "spares",
        options: Vec<String> = "options" since [2, 0],
    }
}

raw_struct! {
    /// A filesystem. In 2.x it has a `name` and either a `mount` object (a device to format)
    /// or a `path` (already mounted); the lift flattens `mount` into the 3.x fields.
    pub struct Filesystem {
        name: Option<String> = "name" since [0, _],
        mount: Option<super::v2::Mount> = "mount" since [0, _],
        device: Option<String> = "device" since [_, 0],
        format: Option<String> = "format" since [_, 0],
        path: Option<String> = "path",
        wipe_filesystem: Option<bool> = "wipeFilesystem" since [_, 0],
        label: Option<String> = "label" since [_, 0],
        uuid: Option<String> = "uuid" since [_, 0],
        options: Vec<String> = "options" since [_, 0],
        mount_options: Vec<String> = "mountOptions" since [_, 1],
    }
}

raw_struct! {
    /// A LUKS volume (3.2+).
    pub struct Luks {
        name: Option<String> = "name",
        device: Option<String> = "device",
        key_file: Option<Resource> = "keyFile",
        label: Option<String> = "label",
        uuid: Option<String> = "uuid",
        options: Vec<String> = "options",
        wipe_volume: Option<bool> = "wipeVolume",
        clevis: Option<Value> = "clevis",
        discard: Option<bool> = "discard" since 4,
        open_options: Vec<String> = "openOptions" since 4,
        cex: Option<Value> = "cex" since 5,
    }
}

raw_struct! {
    /// A file. In 2.x it names its `filesystem`, and `append` is a flag that appends
    /// `contents` (the lift turns it into the 3.x list).
    pub struct File {
        filesystem: Option<String> = "filesystem" since [0, _],
        path: Option<String> = "path",
        overwrite: Option<bool> = "overwrite" since [2, 0],
        contents: Option<Resource> = "contents",
        append: Vec<Resource> = "append" since [_, 0],
        append_contents: Option<bool> = "append" since [2, _],
        mode: Option<i64> = "mode",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
    }
}

raw_struct! {
    /// Owner user of a node (2.x too).
    pub struct NodeUser {
        id: Option<i64> = "id",
        name: Option<String> = "name" since [1, 0],
    }
}

raw_struct! {
    /// Owner group of a node (2.x too).
    pub struct NodeGroup {
        id: Option<i64> = "id",
        name: Option<String> = "name" since [1, 0],
    }
}

raw_struct! {
    /// A directory (2.1+ too, on a named `filesystem`).
    pub struct Directory {
        filesystem: Option<String> = "filesystem" since [0, _],
        path: Option<String> = "path",
        overwrite: Option<bool> = "overwrite" since [2, 0],
        mode: Option<i64> = "mode",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
    }
}

raw_struct! {
    /// A link (2.1+ too, on a named `filesystem`).
    pub struct Link {
        filesystem: Option<String> = "filesystem" since [0, _],
        path: Option<String> = "path",
        overwrite: Option<bool> = "overwrite" since [2, 0],
        target: Option<String> = "target",
        hard: Option<bool> = "hard",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
    }
}

raw_struct! {
    /// `systemd` (2.x too).
    pub struct Systemd {
        units: Vec<Unit> = "units",
    }
}

raw_struct! {
    /// A systemd unit (2.x too, where `enable` is the deprecated `enabled`; the lift folds
    /// it in).
    pub struct Unit {
        name: Option<String> = "name",
        enable: Option<bool> = "enable" since [0, _],
        enabled: Option<bool> = "enabled" since [1, 0],
        mask: Option<bool> = "mask",
        contents: Option<String> = "contents",
        dropins: Vec<Dropin> = "dropins",
    }
}

raw_struct! {
    /// A drop-in (2.x too, of systemd and networkd units).
    pub struct Dropin {
        name: Option<String> = "name",
        contents: Option<String> = "contents",
    }
}

raw_struct! {
    /// `passwd` (2.x too).
    pub struct Passwd {
        users: Vec<User> = "users",
        groups: Vec<Group> = "groups",
    }
}

raw_struct! {
    /// A user (2.x too, where most fields came in 2.1 and 2.0 put them in a `create` object;
    /// the lift moves them onto the user).
    pub struct User {
        name: Option<String> = "name",
        password_hash: Option<String> = "passwordHash",
        ssh_authorized_keys: Vec<String> = "sshAuthorizedKeys",
        create: Option<super::v2::UserCreate> = "create" since [0, _],
        uid: Option<i64> = "uid" since [1, 0],
        gecos: Option<String> = "gecos" since [1, 0],
        home_dir: Option<String> = "homeDir" since [1, 0],
        no_create_home: Option<bool> = "noCreateHome" since [1, 0],
        primary_group: Option<String> = "primaryGroup" since [1, 0],
        groups: Vec<String> = "groups" since [1, 0],
        no_user_group: Option<bool> = "noUserGroup" since [1, 0],
        no_log_init: Option<bool> = "noLogInit" since [1, 0],
        shell: Option<String> = "shell" since [1, 0],
        system: Option<bool> = "system" since [1, 0],
        should_exist: Option<bool> = "shouldExist" since [_, 2],
    }
}

raw_struct! {
    /// A group (2.x too).
    pub struct Group {
        name: Option<String> = "name",
        gid: Option<i64> = "gid",
        password_hash: Option<String> = "passwordHash",
        system: Option<bool> = "system",
        should_exist: Option<bool> = "shouldExist" since [_, 2],
    }
}

raw_struct! {
    /// `kernelArguments` (3.3+).
    pub struct KernelArguments {
        should_exist: Vec<String> = "shouldExist",
        should_not_exist: Vec<String> = "shouldNotExist",
    }
}
