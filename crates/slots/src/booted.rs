//! Which slot the running system booted, from the kernel command line GRUB wrote.

use crate::layout::Slot;

/// How the running system was booted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Booted {
    /// From a disk slot.
    Slot(Slot),
    /// The live system (PXE): the OS runs from RAM and has no slots.
    Live,
    /// No Keel argument on the command line.
    Unknown,
}

/// Read `keel.slot=A|B` or `keel.live` from kernel command-line text.
pub fn from_cmdline(cmdline: &str) -> Booted {
    let mut booted = Booted::Unknown;
    for arg in cmdline.split_whitespace() {
        if arg == "keel.live" {
            return Booted::Live;
        }
        if let Some(slot) = arg.strip_prefix("keel.slot=").and_then(|v| v.parse().ok()) {
            booted = Booted::Slot(slot);
        }
    }
    booted
}

impl std::fmt::Display for Booted {
    /// `A`, `B`, `live` or `unknown`, as status output spells it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Booted::Slot(s) => write!(f, "{s}"),
            Booted::Live => f.write_str("live"),
            Booted::Unknown => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_slot_and_live_markers() {
        assert_eq!(
            from_cmdline("BOOT_IMAGE=/keel/B/vmlinuz keel.slot=B keel.usr=PARTUUID=x quiet"),
            Booted::Slot(Slot::B)
        );
        assert_eq!(from_cmdline("console=ttyS0 keel.live"), Booted::Live);
        assert_eq!(from_cmdline("root=/dev/sda1 keel.slot=C"), Booted::Unknown);
    }
}
