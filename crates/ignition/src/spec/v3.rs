//! Raw types of spec 3.0.0 – 3.5.0 (Ignition ≥ 2.0: Fedora CoreOS, current Flatcar).

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
    /// A resource: a config reference, a CA, file contents or appended data.
    pub struct Resource {
        source: Option<String> = "source",
        compression: Option<String> = "compression",
        http_headers: Vec<HttpHeader> = "httpHeaders" since 1,
        verification: Option<Verification> = "verification",
    }
}

raw_struct! {
    /// `verification`.
    pub struct Verification {
        hash: Option<String> = "hash",
    }
}

raw_struct! {
    /// An HTTP header sent with a fetch.
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
        certificate_authorities: Vec<Resource> = "certificateAuthorities",
    }
}

raw_struct! {
    /// `ignition.proxy` (3.1+).
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
        directories: Vec<Directory> = "directories",
        links: Vec<Link> = "links",
        luks: Vec<Luks> = "luks" since 2,
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
        size_mib: Option<i64> = "sizeMiB",
        start_mib: Option<i64> = "startMiB",
        type_guid: Option<String> = "typeGuid",
        guid: Option<String> = "guid",
        wipe_partition_entry: Option<bool> = "wipePartitionEntry",
        should_exist: Option<bool> = "shouldExist",
        resize: Option<bool> = "resize" since 2,
    }
}

raw_struct! {
    /// A software RAID array.
    pub struct Raid {
        name: Option<String> = "name",
        level: Option<String> = "level",
        devices: Vec<String> = "devices",
        spares: Option<i64> = "spares",
        options: Vec<String> = "options",
    }
}

raw_struct! {
    /// A filesystem.
    pub struct Filesystem {
        device: Option<String> = "device",
        format: Option<String> = "format",
        path: Option<String> = "path",
        wipe_filesystem: Option<bool> = "wipeFilesystem",
        label: Option<String> = "label",
        uuid: Option<String> = "uuid",
        options: Vec<String> = "options",
        mount_options: Vec<String> = "mountOptions" since 1,
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
    /// A file.
    pub struct File {
        path: Option<String> = "path",
        overwrite: Option<bool> = "overwrite",
        contents: Option<Resource> = "contents",
        append: Vec<Resource> = "append",
        mode: Option<i64> = "mode",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
    }
}

raw_struct! {
    /// Owner user of a node.
    pub struct NodeUser {
        id: Option<i64> = "id",
        name: Option<String> = "name",
    }
}

raw_struct! {
    /// Owner group of a node.
    pub struct NodeGroup {
        id: Option<i64> = "id",
        name: Option<String> = "name",
    }
}

raw_struct! {
    /// A directory.
    pub struct Directory {
        path: Option<String> = "path",
        overwrite: Option<bool> = "overwrite",
        mode: Option<i64> = "mode",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
    }
}

raw_struct! {
    /// A link.
    pub struct Link {
        path: Option<String> = "path",
        overwrite: Option<bool> = "overwrite",
        target: Option<String> = "target",
        hard: Option<bool> = "hard",
        user: Option<NodeUser> = "user",
        group: Option<NodeGroup> = "group",
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
        enabled: Option<bool> = "enabled",
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
        uid: Option<i64> = "uid",
        gecos: Option<String> = "gecos",
        home_dir: Option<String> = "homeDir",
        no_create_home: Option<bool> = "noCreateHome",
        primary_group: Option<String> = "primaryGroup",
        groups: Vec<String> = "groups",
        no_user_group: Option<bool> = "noUserGroup",
        no_log_init: Option<bool> = "noLogInit",
        shell: Option<String> = "shell",
        system: Option<bool> = "system",
        should_exist: Option<bool> = "shouldExist" since 2,
    }
}

raw_struct! {
    /// A group.
    pub struct Group {
        name: Option<String> = "name",
        gid: Option<i64> = "gid",
        password_hash: Option<String> = "passwordHash",
        system: Option<bool> = "system",
        should_exist: Option<bool> = "shouldExist" since 2,
    }
}

raw_struct! {
    /// `kernelArguments` (3.3+).
    pub struct KernelArguments {
        should_exist: Vec<String> = "shouldExist",
        should_not_exist: Vec<String> = "shouldNotExist",
    }
}
