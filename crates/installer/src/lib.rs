//! `coreos-install`: put a signed Keel release image onto a disk, as Container Linux's
//! `coreos-install` did, with coreos-installer's safety.
//!
//! Entities, in the order an install uses them:
//!  * [`cli`]: the command line (`-d -i -b -V -C -f -k -y`, as CL's tool) and [`cli::Plan`],
//!    the validated settings.
//!  * [`kargs`]: the same settings from `coreos.inst.*` kernel arguments (unattended install
//!    on a live PXE boot).
//!  * [`live`]: where the release comes from on a live system when no source is given:
//!    `keel.release_url=` on the kernel command line, else the image the live system carries.
//!  * [`http`]: GET with retries and backoff on transport errors and 5xx, and a stall timeout.
//!  * [`resume`]: the image download as one reader that resumes a cut or stalled body with
//!    `Range` requests.
//!  * [`device`]: the target: a block device (ioctls) or a plain file (tests, images); size,
//!    sector size, exclusive-access check ([`busy`]), write, wipe, partition table reread.
//!  * [`busy`]: which partitions of a disk are mounted, swap or held (pure over /proc and /sys
//!    paths, so tests use a fake tree).
//!  * [`stream`]: download → hash (SHA-256 + Ed25519ph) → gunzip → device in one pass, the first
//!    MiB (the partition table) held back until the digest and signature check out.
//!  * [`progress`]: a bar on a terminal, plain periodic lines otherwise.
//!  * [`oem`]: write `config.ign` into the OEM partition's FAT directly (no mount, no mtools).
//!  * [`install`]: the whole install, top to bottom; any failure after the first write wipes
//!    the partition tables so a half-written disk never looks bootable.

pub mod busy;
pub mod cli;
pub mod device;
pub mod http;
pub mod install;
pub mod kargs;
pub mod live;
pub mod oem;
pub mod progress;
pub mod resume;
pub mod stream;

/// One MiB: the region at the start of the disk that holds the MBR and primary GPT.
pub const MIB: u64 = 1 << 20;
