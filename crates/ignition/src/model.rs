//! The one internal model that every spec version translates into.
//!
//! Every entry keeps `at`, the JSON path it came from, so validation (which runs on this
//! model) can name the exact field. Fields stay optional where the spec leaves them optional:
//! defaults differ between spec 2.x and 3.x and are resolved by `plan`, which knows
//! [`Config::version`]; and spec 3.x merging overrides a parent's field only when the child
//! sets it.
//!
//! A [`Config`] returned by [`crate::parse()`] has been validated on its own; planning takes
//! a [`crate::ValidConfig`], the whole config with its references resolved.

use crate::parse::version::Version;
use crate::report::{Entry, JsonPath};

/// A validated config.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The spec version the config was written in (after merging: the newest one involved).
    pub version: Version,
    /// `ignition` section.
    pub ignition: Ignition,
    /// `storage` section.
    pub storage: Storage,
    /// `systemd.units`.
    pub units: Vec<Unit>,
    /// `networkd.units` (spec 2.x only).
    pub networkd: Vec<NetworkdUnit>,
    /// `passwd.users`.
    pub users: Vec<User>,
    /// `passwd.groups`.
    pub groups: Vec<Group>,
    /// `kernelArguments` (3.3+).
    pub kernel_arguments: KernelArguments,
    /// Warnings found while parsing and validating (never errors).
    pub warnings: Vec<Entry>,
}

impl Config {
    /// An empty config of `version`.
    pub fn empty(version: Version) -> Self {
        Config {
            version,
            ignition: Ignition::default(),
            storage: Storage::default(),
            units: Vec::new(),
            networkd: Vec::new(),
            users: Vec::new(),
            groups: Vec::new(),
            kernel_arguments: KernelArguments::default(),
            warnings: Vec::new(),
        }
    }

    /// True when the config references other configs (merge/append or replace) that have
    /// not been fetched yet; see [`crate::merge::resolve`].
    pub fn has_references(&self) -> bool {
        !self.ignition.merge.is_empty() || self.ignition.replace.is_some()
    }
}

/// `ignition` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ignition {
    /// `config.merge` (3.x) or `config.append` (2.x): the version says which semantics apply.
    pub merge: Vec<Resource>,
    /// `config.replace`.
    pub replace: Option<Resource>,
    /// `timeouts`.
    pub timeouts: Timeouts,
    /// `security.tls.certificateAuthorities`.
    pub certificate_authorities: Vec<Resource>,
    /// `proxy`.
    pub proxy: Proxy,
}

/// `ignition.timeouts`, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeouts {
    /// Where the section is.
    pub at: JsonPath,
    /// Seconds to wait for response headers (default 10).
    pub http_response_headers: Option<i64>,
    /// Seconds for the whole fetch (default 0 = no limit).
    pub http_total: Option<i64>,
}

/// `ignition.proxy`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Proxy {
    /// Where the section is.
    pub at: JsonPath,
    /// Proxy for http URLs.
    pub http_proxy: Option<String>,
    /// Proxy for https URLs.
    pub https_proxy: Option<String>,
    /// Hosts not to proxy.
    pub no_proxy: Vec<String>,
}

/// Something fetched: a config, a CA, file contents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resource {
    /// Where the resource is.
    pub at: JsonPath,
    /// URL (`data:`, `http(s):`, ...). `Some("")` means empty contents.
    pub source: Option<String>,
    /// `""` or `gzip`.
    pub compression: Option<String>,
    /// `verification.hash`: `sha512-<hex>` or `sha256-<hex>`.
    pub hash: Option<String>,
    /// HTTP headers sent with the fetch.
    pub http_headers: Vec<HttpHeader>,
}

/// An HTTP header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HttpHeader {
    /// Where the header is.
    pub at: JsonPath,
    /// Header name.
    pub name: Option<String>,
    /// Header value (3.x merge: a child header without value deletes the parent's).
    pub value: Option<String>,
}

/// `storage` section.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Storage {
    /// Disks to partition.
    pub disks: Vec<Disk>,
    /// RAID arrays.
    pub raid: Vec<Raid>,
    /// Filesystems.
    pub filesystems: Vec<Filesystem>,
    /// LUKS volumes.
    pub luks: Vec<Luks>,
    /// Files.
    pub files: Vec<File>,
    /// Directories.
    pub directories: Vec<Directory>,
    /// Links.
    pub links: Vec<Link>,
}

/// A disk.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Disk {
    /// Where the disk is.
    pub at: JsonPath,
    /// Device path.
    pub device: Option<String>,
    /// Wipe the partition table first.
    pub wipe_table: Option<bool>,
    /// Partitions.
    pub partitions: Vec<Partition>,
}

/// A partition.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partition {
    /// Where the partition is.
    pub at: JsonPath,
    /// GPT label.
    pub label: Option<String>,
    /// Number (0 = next free).
    pub number: Option<i64>,
    /// Size in MiB (0 = fill).
    pub size_mib: Option<i64>,
    /// Start in MiB (0 = start of the largest free block).
    pub start_mib: Option<i64>,
    /// Size in sectors (spec 2.x, deprecated in 2.3).
    pub size_sectors: Option<i64>,
    /// Start in sectors (spec 2.x, deprecated in 2.3).
    pub start_sectors: Option<i64>,
    /// Partition type GUID.
    pub type_guid: Option<String>,
    /// Partition GUID.
    pub guid: Option<String>,
    /// Wipe a mismatching entry instead of failing.
    pub wipe_partition_entry: Option<bool>,
    /// Whether the partition should exist.
    pub should_exist: Option<bool>,
    /// Grow an existing partition (3.2+).
    pub resize: Option<bool>,
}

/// A RAID array.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Raid {
    /// Where the array is.
    pub at: JsonPath,
    /// md name.
    pub name: Option<String>,
    /// RAID level.
    pub level: Option<String>,
    /// Member devices.
    pub devices: Vec<String>,
    /// Spare count.
    pub spares: Option<i64>,
    /// mdadm options.
    pub options: Vec<String>,
}

/// A filesystem.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filesystem {
    /// Where the filesystem is.
    pub at: JsonPath,
    /// Spec 2.x name that files refer to.
    pub name: Option<String>,
    /// Spec 2.x: whether a `mount` object was given.
    pub has_mount: bool,
    /// Spec 2.x: the deprecated `mount.create` object was given.
    pub has_create: bool,
    /// Block device.
    pub device: Option<String>,
    /// ext4, btrfs, xfs, vfat, swap, none.
    pub format: Option<String>,
    /// Mount point (3.x) or already-mounted path (2.x `path`).
    pub path: Option<String>,
    /// Wipe an existing filesystem.
    pub wipe_filesystem: Option<bool>,
    /// Filesystem label.
    pub label: Option<String>,
    /// Filesystem UUID.
    pub uuid: Option<String>,
    /// mkfs options.
    pub options: Vec<String>,
    /// Mount options (3.1+).
    pub mount_options: Vec<String>,
}

/// A LUKS volume.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Luks {
    /// Where the volume is.
    pub at: JsonPath,
    /// Mapper name.
    pub name: Option<String>,
    /// Backing device.
    pub device: Option<String>,
    /// Key file.
    pub key_file: Option<Resource>,
    /// LUKS label.
    pub label: Option<String>,
    /// LUKS UUID.
    pub uuid: Option<String>,
    /// cryptsetup options.
    pub options: Vec<String>,
    /// Wipe an existing volume.
    pub wipe_volume: Option<bool>,
    /// Clevis settings, kept as JSON.
    pub clevis: Option<serde_json::Value>,
    /// Discard (3.4+).
    pub discard: Option<bool>,
    /// Open options (3.4+).
    pub open_options: Vec<String>,
    /// IBM CEX settings (3.5+), kept as JSON.
    pub cex: Option<serde_json::Value>,
}

/// The owner of a node, by id or by name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Owner {
    /// Where the owner is.
    pub at: JsonPath,
    /// Numeric id.
    pub id: Option<i64>,
    /// Name, resolved against the root's /etc/passwd or /etc/group.
    pub name: Option<String>,
}

impl Owner {
    /// True when neither id nor name is set.
    pub fn is_unset(&self) -> bool {
        self.id.is_none() && self.name.is_none()
    }
}

/// What files, directories and links have in common.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Where the entry is.
    pub at: JsonPath,
    /// Absolute path in the root.
    pub path: Option<String>,
    /// Spec 2.x filesystem name (`root` is the root being provisioned).
    pub filesystem: Option<String>,
    /// Replace whatever is at the path.
    pub overwrite: Option<bool>,
    /// Owner user.
    pub user: Owner,
    /// Owner group.
    pub group: Owner,
}

/// A file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct File {
    /// Path, owner, overwrite.
    pub node: Node,
    /// Contents.
    pub contents: Option<Resource>,
    /// Data appended after the contents.
    pub append: Vec<Resource>,
    /// Permission bits (decimal in JSON).
    pub mode: Option<i64>,
}

/// A directory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Directory {
    /// Path, owner, overwrite.
    pub node: Node,
    /// Permission bits.
    pub mode: Option<i64>,
}

/// A hard or symbolic link.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Link {
    /// Path, owner, overwrite.
    pub node: Node,
    /// Link target (stored verbatim for symlinks).
    pub target: Option<String>,
    /// Hard link instead of a symlink.
    pub hard: Option<bool>,
}

/// A systemd unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unit {
    /// Where the unit is.
    pub at: JsonPath,
    /// Unit name (`foo.service`).
    pub name: Option<String>,
    /// Enable (true) or disable (false).
    pub enabled: Option<bool>,
    /// Mask the unit.
    pub mask: Option<bool>,
    /// Unit file text.
    pub contents: Option<String>,
    /// Drop-ins.
    pub dropins: Vec<Dropin>,
}

/// A drop-in of a systemd or networkd unit.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dropin {
    /// Where the drop-in is.
    pub at: JsonPath,
    /// Drop-in name (`*.conf`).
    pub name: Option<String>,
    /// Drop-in text.
    pub contents: Option<String>,
}

/// A networkd unit (spec 2.x).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkdUnit {
    /// Where the unit is.
    pub at: JsonPath,
    /// Unit name (`*.network`, `*.netdev`, `*.link`).
    pub name: Option<String>,
    /// Unit text.
    pub contents: Option<String>,
    /// Drop-ins.
    pub dropins: Vec<Dropin>,
}

/// A user.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct User {
    /// Where the user is.
    pub at: JsonPath,
    /// Login name.
    pub name: Option<String>,
    /// crypt(3) hash for /etc/shadow.
    pub password_hash: Option<String>,
    /// SSH public keys.
    pub ssh_authorized_keys: Vec<String>,
    /// uid.
    pub uid: Option<i64>,
    /// GECOS field.
    pub gecos: Option<String>,
    /// Home directory.
    pub home_dir: Option<String>,
    /// Do not create the home directory.
    pub no_create_home: Option<bool>,
    /// Primary group (name or gid).
    pub primary_group: Option<String>,
    /// Supplementary groups.
    pub groups: Vec<String>,
    /// Do not create a group named after the user.
    pub no_user_group: Option<bool>,
    /// Do not add to lastlog/faillog.
    pub no_log_init: Option<bool>,
    /// Login shell.
    pub shell: Option<String>,
    /// System account.
    pub system: Option<bool>,
    /// `false` deletes the user (3.2+).
    pub should_exist: Option<bool>,
}

/// A group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Where the group is.
    pub at: JsonPath,
    /// Group name.
    pub name: Option<String>,
    /// gid.
    pub gid: Option<i64>,
    /// Group password hash.
    pub password_hash: Option<String>,
    /// System group.
    pub system: Option<bool>,
    /// `false` deletes the group (3.2+).
    pub should_exist: Option<bool>,
}

/// `kernelArguments` (3.3+).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KernelArguments {
    /// Where the section is.
    pub at: JsonPath,
    /// Arguments that must be present.
    pub should_exist: Vec<String>,
    /// Arguments that must be absent.
    pub should_not_exist: Vec<String>,
}
