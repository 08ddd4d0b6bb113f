# shellcheck shell=sh
# ROOT on a disk boot: create it on first boot, else check that it holds its ext4 filesystem.
# Sourced by /init as /etc/keel-root.sh, after /etc/keel-layout.sh (ROOT_PART,
# ROOT_NOT_CREATED_BIT: generated from slots::layout); image-build's tests source it with stub
# tools. It uses init's log, fatal, wait_for and part_of; the real tools are in $KEEL_SBIN and
# the disks in $KEEL_DEV.
#
# Whether ROOT is created is decided by the partition table alone, never by what blkid finds (or
# fails to read) on it. The image ships ROOT's GPT entry with attribute bit ROOT_NOT_CREATED_BIT
# set (`sfdisk --part-attrs DISK 9` shows GUID:56). While it is set, ROOT holds nothing yet and
# the first boot grows it to the end of the disk and makes its filesystem; the bit is cleared only
# once that filesystem is complete and on disk, so a power cut anywhere before that makes the
# next boot do it all again (each step may be repeated). A ROOT without the bit is never
# formatted: if it does not hold ext4 (a read error, a wiped or foreign partition), the boot
# stops and says so. Disks from images older than the bit have an ext4 ROOT and no bit: they are
# mounted as ever.

: "${KEEL_SBIN:=/sbin}"
: "${KEEL_DEV:=/dev}"

fstype() { "$KEEL_SBIN/blkid" -p -o value -s TYPE "$1" 2>/dev/null; }

# attr_has_bit ATTRS BIT: whether sfdisk's attribute string ATTRS ("", "GUID:56",
# "RequiredPartition GUID:48,56") has the type-specific bit BIT (48 to 63) set.
attr_has_bit() {
    case " $1 " in
    *" GUID:"*) ;;
    *) return 1 ;;
    esac
    bits=${1##*GUID:}
    case ",${bits%% *}," in
    *",$2,"*) return 0 ;;
    esac
    return 1
}

# attrs_without_bit ATTRS BIT: ATTRS with BIT cleared and every other attribute kept.
attrs_without_bit() (
    set -f
    kept=""
    for word in $1; do
        case "$word" in
        GUID:*)
            bits=""
            IFS=,
            for b in ${word#GUID:}; do
                [ "$b" = "$2" ] || bits="${bits:+$bits,}$b"
            done
            unset IFS
            word=""
            [ -z "$bits" ] || word="GUID:$bits"
            ;;
        esac
        [ -z "$word" ] || kept="${kept:+$kept }$word"
    done
    echo "$kept"
)

# root_attrs DISKDEV: print the attribute string of ROOT's GPT entry; fail if it cannot be read.
# (Run in $(...), so it must not log or call fatal itself: its output would be captured.)
root_attrs() { "$KEEL_SBIN/sfdisk" --part-attrs "$1" "$ROOT_PART" 2>/dev/null; }

# root_attrs_unreadable DISKDEV: stop the boot, as the partition table cannot say what ROOT is.
root_attrs_unreadable() {
    fatal "cannot read the attributes of ROOT (partition $ROOT_PART) from the partition table of $1, so cannot tell whether ROOT was ever created; not touching it: $("$KEEL_SBIN/sfdisk" --part-attrs "$1" "$ROOT_PART" 2>&1)"
}

# root_create DISK ATTRS: the first boot's ROOT, while its entry has ATTRS with the bit set.
# Every step may run again after a power cut: the GPT moves and the growth are no-ops the
# second time, and the filesystem is simply made again.
root_create() {
    diskdev="$KEEL_DEV/$1"
    log "first boot: ROOT ($rootdev) is marked not created yet; growing it to fill $1 and creating its filesystem"
    out=$("$KEEL_SBIN/sfdisk" --relocate gpt-bak-std "$diskdev" 2>&1) || log "moving the backup GPT to the end of $1 failed: $out"
    out=$(echo ", +" | "$KEEL_SBIN/sfdisk" --no-reread --no-tell-kernel -q -N "$ROOT_PART" "$diskdev" 2>&1) \
        || log "could not grow ROOT; keeping its current size: $out"
    blockdev --rereadpt "$diskdev" || log "the kernel did not reread the partition table of $1"
    rootdev=$(wait_for part_of "$1" "$ROOT_PART") || fatal "ROOT ($1 partition $ROOT_PART) vanished after resizing"
    # Signatures of whatever was there before (the end of the partition too) go first, so blkid
    # finds only the new ext4 below.
    out=$("$KEEL_SBIN/wipefs" -a -q "$rootdev" 2>&1) || log "wiping old signatures from $rootdev failed: $out"
    out=$("$KEEL_SBIN/mke2fs" -F -q -t ext4 -L ROOT "$rootdev" 2>&1) \
        || fatal "creating the ROOT filesystem on $rootdev failed: $out; ROOT stays marked not created, so the next boot tries again"
    sync
    type=$(fstype "$rootdev")
    [ "$type" = ext4 ] || fatal "after mke2fs, ROOT ($rootdev) shows '${type:-no filesystem}' instead of ext4; ROOT stays marked not created, so the next boot tries again"
    # The filesystem is on disk: from here on ROOT is created and never formatted again.
    new=$(attrs_without_bit "$2" "$ROOT_NOT_CREATED_BIT")
    out=$("$KEEL_SBIN/sfdisk" --no-reread --no-tell-kernel --part-attrs "$diskdev" "$ROOT_PART" "$new" 2>&1) \
        || fatal "ROOT's filesystem is made, but marking ROOT created in the partition table of $1 failed: $out; the next boot makes ROOT again"
    sync
    attrs=$(root_attrs "$diskdev") || root_attrs_unreadable "$diskdev"
    if attr_has_bit "$attrs" "$ROOT_NOT_CREATED_BIT"; then
        fatal "ROOT's filesystem is made, but the partition table of $1 still marks ROOT not created ($attrs); the next boot makes ROOT again"
    fi
    sectors=$(cat "/sys/class/block/${rootdev##*/}/size" 2>/dev/null || echo 0)
    log "ROOT ($rootdev) is $((sectors / 2048)) MiB, up to the end of $1"
}

# root_prepare DISK: set rootdev to ROOT (partition ROOT_PART of DISK, a name in /sys/class/block)
# holding its ext4 filesystem, creating ROOT if the partition table marks it not created yet.
root_prepare() {
    rootdev=$(part_of "$1" "$ROOT_PART") || fatal "disk $1 has no partition $ROOT_PART (ROOT)"
    attrs=$(root_attrs "$KEEL_DEV/$1") || root_attrs_unreadable "$KEEL_DEV/$1"
    if attr_has_bit "$attrs" "$ROOT_NOT_CREATED_BIT"; then
        root_create "$1" "$attrs"
    fi
    type=$(fstype "$rootdev")
    case "$type" in
    ext4) return 0 ;;
    "") ;;
    *) fatal "ROOT ($rootdev) holds a $type filesystem, not ext4; refusing to touch it" ;;
    esac
    # Created once, and now nothing blkid recognizes: never format it, say why as far as we can.
    if ! dd if="$rootdev" of=/dev/null bs=65536 count=1 2>/dev/null; then
        fatal "ROOT ($rootdev) cannot be read: a disk or controller error? It was created on an earlier boot, so Keel does not format it; check $1 (cabling, the disk's health) and boot again, or replace the disk and reinstall"
    fi
    out=$("$KEEL_SBIN/blkid" -p "$rootdev" 2>&1)
    case $? in
    2) why="no filesystem signature" ;;
    8) why="more than one filesystem signature (blkid -p: ambivalent result)" ;;
    *) why="no filesystem blkid recognizes (blkid -p: ${out:-no output})" ;;
    esac
    fatal "ROOT ($rootdev) holds $why, yet the partition table says ROOT was created on an earlier boot; Keel does not format it, in case it holds the node's data. To start afresh with an empty ROOT (erasing it), mark it not created from a rescue shell: sfdisk --part-attrs /dev/$1 $ROOT_PART GUID:$ROOT_NOT_CREATED_BIT, and boot again"
}
