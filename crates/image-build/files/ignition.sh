# shellcheck shell=sh
# Ignition's first boot, sourced by /init as /etc/keel-init.d/50-ignition.sh with ROOT on
# /sysroot, the OS on /sysroot/usr, the ESP on /sysroot/boot and OEM on /sysroot/oem.
#
# A disk boot is a first boot while keel/first_boot exists on the ESP (image-build writes it;
# `ignition firstboot` removes it only after success). A live (PXE) boot is one when the kernel
# command line has ignition.firstboot or coreos.first_boot=1|detected. The config comes from
# ignition.config.url= / coreos.config.url=, else config.ign on OEM, else there is none.
# The network is brought up (DHCP on every Ethernet interface) only for an http(s) URL, and
# taken down again before switch_root so systemd-networkd starts clean.
# Any failure stops the boot through `fatal`, with Ignition's errors printed above it.

IGN_IFACES=""

ign_net_up() {
    while read -r m; do
        /sbin/modprobe -q "$m" 2>/dev/null || true
    done < /etc/keel-net-modules
    i=0
    while [ $i -lt 100 ]; do
        for d in /sys/class/net/*; do
            n=${d##*/}
            [ "$n" = lo ] && continue
            [ "$(cat "$d/type" 2>/dev/null)" = 1 ] || continue
            IGN_IFACES="$IGN_IFACES $n"
        done
        [ -n "$IGN_IFACES" ] && break
        sleep 0.2
        i=$((i + 1))
    done
    [ -n "$IGN_IFACES" ] || { log "Ignition: no Ethernet interface appeared within 20s"; return 1; }
    ign_up=""
    for n in $IGN_IFACES; do
        ip link set "$n" up
        if udhcpc -i "$n" -s /etc/keel-udhcpc.script -n -q -t 6 -T 3 2>&1 | sed 's/^/keel-init: udhcpc: /'; then
            grep -q . "/run/keel/dhcp-$n" 2>/dev/null && ign_up=1
        fi
        [ -n "$ign_up" ] && break
    done
    [ -n "$ign_up" ] || { log "Ignition: no DHCP lease on:$IGN_IFACES"; return 1; }
}

ign_net_down() {
    for n in $IGN_IFACES; do
        ip addr flush dev "$n" 2>/dev/null
        ip link set "$n" down 2>/dev/null
    done
    rm -f /run/keel/dhcp-*
    log "Ignition: network interfaces taken down again:$IGN_IFACES"
}

ign_args="--cmdline /proc/cmdline --root /sysroot"
grep -q " /sysroot/oem " /proc/mounts && ign_args="$ign_args --oem-dir /sysroot/oem"
# The marker's path on the ESP comes from /etc/keel-layout.sh (slots::layout::esp).
[ -z "$LIVE" ] && ign_args="$ign_args --marker /sysroot/boot/${ESP_FIRST_BOOT:?is not set by /etc/keel-layout.sh}"

# shellcheck disable=SC2086 # the arguments are words on purpose
ign_probe=$(/bin/ignition firstboot $ign_args --probe) || fatal "Ignition could not tell whether this is a first boot (see above)"
case "$ign_probe" in
skip)
    log "first boot already done; Ignition does not run"
    ;;
"run local" | "run network")
    log "first boot: running Ignition"
    if [ "$ign_probe" = "run network" ]; then
        ign_net_up || { ign_net_down; fatal "Ignition needs the network for its config URL, and it did not come up"; }
    fi
    # shellcheck disable=SC2086
    /bin/ignition firstboot $ign_args
    ign_rc=$?
    [ -n "$IGN_IFACES" ] && ign_net_down
    sync
    [ $ign_rc -eq 0 ] || fatal "Ignition failed (errors above); nothing more was applied and the first-boot marker is kept, so the next boot tries again"
    ;;
*)
    fatal "unexpected answer from ignition firstboot --probe: $ign_probe"
    ;;
esac
