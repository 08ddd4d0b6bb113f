//! Raw types of spec 2.0.0 – 2.4.0 (Container Linux / Flatcar Ignition v0.x).

use crate::raw_struct;

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
    /// `verification`.
    pub struct Verification {
        hash: Option<String> = "hash",
    }
}

raw_struct! {
    /// An HTTP header sent with a fetch (2.4).
    pub struct HttpHeader {
        name: Option<String> = "name",
        value: Option<String> = "value",
    }
}

raw_struct! {
    /// `ignition.timeouts`.
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
        certificate_authorities: Vec<ConfigReference> = "certificateAuthorities",
    }
}

raw_struct! {
    /// `ignition.proxy` (2.4).
    pub struct Proxy {
        http_proxy: Option<String> = "httpProxy",
        https_proxy: Option<String> = "httpsProxy",
        no_proxy: Vec<String> = "noProxy",
    }
}

raw_struct! {
    /// `storage`.
    pub struct Storage {
        disks: Vec<Disk> = "disks",
        raid: Vec<Raid> = "raid",
        filesystems: Vec<Filesystem> = "filesystems",
        files: Vec<File> = "files",
        directories: Vec<Directory> = "directories" since 1,
        links: Vec<Link> = "links" since 1,
    }
}

raw_struct! {
    /// A disk.
    pub struct Disk {
        device: Option<String> = "device",
        wipe_table: Option<bool> = "wipeTable",
        partitions: Vec<Partition> = "partitions",
    }
}

raw_struct! {
    /// A partition.
    pub struct Partition {
        label: Option<String> = "label",
        number: Option<i64> = "number",
        size: Option<i64> = "size",
        start: Option<i64> = "start",
        size_mib: Option<i64> = "sizeMiB" since 3,
        start_mib: Option<i64> = "startMiB" since 3,
        type_guid: Option<String> = "typeGuid",
        guid: Option<String> = "guid" since 1,
        wipe_partition_entry: Option<bool> = "wipePartitionEntry" since 3,
        should_exist: Option<bool> = "shouldExist" since 3,
    }
}

raw_struct! {
    /// A software RAID array.
    pub struct Raid {
        name: Option<String> = "name",
        level: Option<String> = "level",
        devices: Vec<String> = "devices",
        spares: Option<i64> = "spares",
        options: Vec<String> = "options" since 2,
    }
}

raw_struct! {
    /// A named filesystem.
    pub struct Filesystem {
        name: Option<String> = "name",
        mount: Option<Mount> = "mount",
        path: Option<String> = "path",
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
    /// A file.
    pub struct File {
        filesystem: Option<String> = "filesystem",
        path: Option<String> = "path",
        contents: Option<FileContents> = "contents",
        mode: Option<i64> = "mode",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
        overwrite: Option<bool> = "overwrite" since 2,
        append: Option<bool> = "append" since 2,
    }
}

raw_struct! {
    /// `files[].contents`.
    pub struct FileContents {
        source: Option<String> = "source",
        compression: Option<String> = "compression",
        verification: Option<Verification> = "verification",
        http_headers: Vec<HttpHeader> = "httpHeaders" since 4,
    }
}

raw_struct! {
    /// Owner user of a node.
    pub struct NodeUser {
        id: Option<i64> = "id",
        name: Option<String> = "name" since 1,
    }
}

raw_struct! {
    /// Owner group of a node.
    pub struct NodeGroup {
        id: Option<i64> = "id",
        name: Option<String> = "name" since 1,
    }
}

raw_struct! {
    /// A directory (2.1+).
    pub struct Directory {
        filesystem: Option<String> = "filesystem",
        path: Option<String> = "path",
        mode: Option<i64> = "mode",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
        overwrite: Option<bool> = "overwrite" since 2,
    }
}

raw_struct! {
    /// A link (2.1+).
    pub struct Link {
        filesystem: Option<String> = "filesystem",
        path: Option<String> = "path",
        target: Option<String> = "target",
        hard: Option<bool> = "hard",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
        overwrite: Option<bool> = "overwrite" since 2,
    }
}

raw_struct! {
    /// `systemd`.
    pub struct Systemd {
        units: Vec<Unit> = "units",
    }
}

raw_struct! {
    /// A systemd unit.
    pub struct Unit {
        name: Option<String> = "name",
        enable: Option<bool> = "enable",
        enabled: Option<bool> = "enabled" since 1,
        mask: Option<bool> = "mask",
        contents: Option<String> = "contents",
        dropins: Vec<Dropin> = "dropins",
    }
}

raw_struct! {
    /// A drop-in.
    pub struct Dropin {
        name: Option<String> = "name",
        contents: Option<String> = "contents",
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
    /// `passwd`.
    pub struct Passwd {
        users: Vec<User> = "users",
        groups: Vec<Group> = "groups",
    }
}

raw_struct! {
    /// A user.
    pub struct User {
        name: Option<String> = "name",
        password_hash: Option<String> = "passwordHash",
        ssh_authorized_keys: Vec<String> = "sshAuthorizedKeys",
        create: Option<UserCreate> = "create",
        uid: Option<i64> = "uid" since 1,
        gecos: Option<String> = "gecos" since 1,
        home_dir: Option<String> = "homeDir" since 1,
        no_create_home: Option<bool> = "noCreateHome" since 1,
        primary_group: Option<String> = "primaryGroup" since 1,
        groups: Vec<String> = "groups" since 1,
        no_user_group: Option<bool> = "noUserGroup" since 1,
        no_log_init: Option<bool> = "noLogInit" since 1,
        shell: Option<String> = "shell" since 1,
        system: Option<bool> = "system" since 1,
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

raw_struct! {
    /// A group.
    pub struct Group {
        name: Option<String> = "name",
        gid: Option<i64> = "gid",
        password_hash: Option<String> = "passwordHash",
        system: Option<bool> = "system",
    }
}
