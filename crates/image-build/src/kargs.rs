//! The kernel arguments every Keel boot gets, disk (GRUB) and live (PXE) alike.

/// Consoles, panic behaviour and console verbosity.
///
/// * `console=tty0 console=ttyS0,115200n8`: messages on the screen and on the first serial port;
///   the serial port is the kernel's `/dev/console`, where Keel's boot messages go.
/// * `panic=10`: a kernel panic reboots after 10 s, so a slot on trial that panics spends its try.
/// * `quiet`: the kernel prints warnings and errors only, and systemd reports only failures and
///   slow units. Under emulation every console character costs a trap; a node's boot log is in
///   the journal (`journalctl -b -k`).
/// * `transparent_hugepage=never`: with transparent huge pages on (Debian's kernel: `always`),
///   khugepaged raises `vm.min_free_kbytes` so that the kernel keeps about 5 % of memory free
///   for huge-page compaction, memory no container can use (about 100 MiB of a 2 GiB node).
///   Databases commonly ship with the advice to switch THP off anyway; a node that wants it adds
///   `transparent_hugepage=madvise` through OEM's `linux_append`.
pub const COMMON: &str =
    "console=tty0 console=ttyS0,115200n8 panic=10 quiet transparent_hugepage=never";

/// A PXE boot's arguments: the live system runs the OS image from the initramfs.
pub fn live() -> String {
    format!("keel.live {COMMON}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_boots_say_so_and_keep_the_common_arguments() {
        let live = live();
        assert!(live.starts_with("keel.live "));
        assert!(live.ends_with(COMMON));
        assert!(COMMON.contains("console=ttyS0,115200n8") && COMMON.contains("panic=10"));
    }
}
