//! The seed lab: the first node of a lab, installed the way an operator does it on bare metal.
//!
//! PXE-boot the live system on a machine with a blank 20 GB disk and two NICs (NIC 0 on QEMU
//! user networking with the SSH forward, NIC 1 on a segment of its own), run `coreos-install`
//! on the serial root shell with an Ignition config, boot the disk, and check as a user would,
//! over SSH as `core`, that every part of the config took effect:
//!
//!  * the hostname and a file under /etc;
//!  * `core` logs in with the generated key and is in the `docker` group;
//!  * a networkd unit matched by MAC gives NIC 1 a static address;
//!  * a `docker.service.d` drop-in changes dockerd's options (`DOCKER_OPTS=--bip=...`, which
//!    Debian's unit expands): docker0 and the containers are on that bridge;
//!  * Ignition fetched a container image over http at first boot (no registry, no internet);
//!    `docker load` takes it, `docker run -P` publishes its port, and the page it serves comes
//!    back through the published port.
//!
//! The image is a docker-archive built here ([`docker_archive`]): one layer with the host's
//! static busybox and an index.html, served by `busybox httpd`.
//!
//! Run: `KEEL_BUILD_DIR=... cargo test -p qemu-tests --features vm --test seed_lab -- --test-threads=1`
// Boots real VMs: built only with `--features vm` (the cfg comes after the docs, which stay).
#![cfg(feature = "vm")]

mod keel;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use qemu_tests::{artifacts, Server, SshKey, Vm};
use sha2::{Digest, Sha256, Sha512};
use tracing::info;

use keel::{init_logging, nic_mac, release, ssh_ok, NODE_READY};

/// PXE boot or disk boot to node ready under TCG on a busy machine.
const BOOT: Duration = Duration::from_secs(600);
/// Download, verify and write the OS image under TCG (took 2-4 min in install_from_pxe).
const INSTALL: Duration = Duration::from_secs(1800);
/// One shell command, on the console or over SSH.
const CMD: Duration = Duration::from_secs(120);
const DISK: u64 = 20 << 30;

const HOSTNAME: &str = "seed-node";
const SEED_CONF_PATH: &str = "/etc/seed-lab.conf";
const SEED_CONF: &str = "# seed lab node, written by Ignition\nrole=seed\nlab=keel-seed-lab\n";
/// NIC 1's static address (networkd, matched by MAC).
const NIC1_ADDR: &str = "192.168.77.10/24";
/// docker0's address, set with `--bip` through the drop-in.
const BRIDGE_ADDR: &str = "172.31.7.1/24";
const DROPIN_NAME: &str = "10-bridge.conf";
const DROPIN: &str = "[Service]\nEnvironment=\"DOCKER_OPTS=--bip=172.31.7.1/24\"\n";
/// Where Ignition puts the image it fetched.
const TARBALL: &str = "/var/lib/seed/seed-web.tar";
const TARBALL_FILE: &str = "seed-web.tar";
const IMAGE_TAG: &str = "keel/seed-web:1";
const CONTAINER: &str = "seed-web";
const WEB_PORT: u16 = 8080;
/// The page the container serves; the marker is what the test looks for.
const PAGE_MARKER: &str = "keel-seed-lab-page-5d1c0e";
const PAGE: &str =
    "<html><body><p>keel-seed-lab-page-5d1c0e: busybox httpd in a container</p></body></html>\n";

/// One file of an image layer.
struct LayerFile<'a> {
    /// Absolute path in the container.
    path: &'a str,
    mode: u32,
    data: &'a [u8],
}

/// What the image runs and publishes.
struct ImageSpec<'a> {
    /// `repository:tag`.
    tag: &'a str,
    cmd: &'a [&'a str],
    /// TCP ports in `config.ExposedPorts` (what `docker run -P` publishes).
    exposed_tcp: &'a [u16],
    files: &'a [LayerFile<'a>],
}

/// A docker-archive image: the bytes and the id `docker load` gives it.
struct DockerArchive {
    bytes: Vec<u8>,
    /// `sha256:<hex of the config JSON>`.
    image_id: String,
}

/// A ustar header for a root-owned entry with time 0, so the same input gives the same bytes
/// (and the same layer digest).
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

fn append_dir(b: &mut tar::Builder<Vec<u8>>, path: &str) -> Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    b.append_data(&mut h, format!("{path}/"), std::io::empty())
        .with_context(|| format!("adding directory {path}"))
}

fn append_file(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, mode, data.len() as u64);
    b.append_data(&mut h, path, data)
        .with_context(|| format!("adding {path}"))
}

/// The layer: every file with its parent directories, paths relative to the container's root.
fn layer_tar(files: &[LayerFile]) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = BTreeSet::new();
    for f in files {
        let path = f.path.trim_start_matches('/');
        let mut parents: Vec<&Path> = Path::new(path)
            .ancestors()
            .skip(1)
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        parents.reverse();
        for dir in parents {
            let dir = dir.to_str().context("non-UTF-8 path")?;
            if dirs.insert(dir.to_string()) {
                append_dir(&mut b, dir)?;
            }
        }
        append_file(&mut b, path, f.mode, f.data)?;
    }
    b.into_inner().context("finishing the layer tar")
}

/// Build the archive `docker save` writes and `docker load -i` reads: `manifest.json`, the
/// image config `<sha256>.json` and `<layer id>/layer.tar`, for a one-layer linux/amd64 image.
/// Pure: the same spec gives the same bytes.
fn docker_archive(spec: &ImageSpec) -> Result<DockerArchive> {
    let layer = layer_tar(spec.files)?;
    let layer_hex = hex::encode(Sha256::digest(&layer));
    let exposed: serde_json::Map<String, serde_json::Value> = spec
        .exposed_tcp
        .iter()
        .map(|p| (format!("{p}/tcp"), serde_json::json!({})))
        .collect();
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Cmd": spec.cmd,
            "ExposedPorts": exposed,
            "WorkingDir": "/",
        },
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_hex}")]},
        "history": [{"created_by": "keel qemu-tests seed_lab docker_archive"}],
    });
    let config = serde_json::to_vec(&config)?;
    let config_hex = hex::encode(Sha256::digest(&config));
    let config_name = format!("{config_hex}.json");
    let layer_path = format!("{layer_hex}/layer.tar");
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": config_name,
        "RepoTags": [spec.tag],
        "Layers": [layer_path],
    }]))?;

    let mut b = tar::Builder::new(Vec::new());
    append_dir(&mut b, &layer_hex)?;
    append_file(&mut b, &layer_path, 0o644, &layer)?;
    append_file(&mut b, &config_name, 0o644, &config)?;
    append_file(&mut b, "manifest.json", 0o644, &manifest)?;
    Ok(DockerArchive {
        bytes: b.into_inner().context("finishing the archive")?,
        image_id: format!("sha256:{config_hex}"),
    })
}

/// The web image: the host's static busybox and the page, `busybox httpd` in the foreground.
fn seed_web_image(busybox: &[u8]) -> Result<DockerArchive> {
    let port = WEB_PORT.to_string();
    docker_archive(&ImageSpec {
        tag: IMAGE_TAG,
        cmd: &["/bin/busybox", "httpd", "-f", "-p", &port, "-h", "/www"],
        exposed_tcp: &[WEB_PORT],
        files: &[
            LayerFile {
                path: "/bin/busybox",
                mode: 0o755,
                data: busybox,
            },
            LayerFile {
                path: "/www/index.html",
                mode: 0o644,
                data: PAGE.as_bytes(),
            },
        ],
    })
}

/// A `data:` URL with `text` percent-encoded.
fn data_url(text: &str) -> String {
    format!("data:,{}", utf8_percent_encode(text, NON_ALPHANUMERIC))
}

/// The networkd unit for NIC 1, matched by its MAC address.
fn nic1_network(mac: &str) -> String {
    format!("[Match]\nMACAddress={mac}\n\n[Network]\nAddress={NIC1_ADDR}\n")
}

/// The seed node's Ignition config (spec 3.3.0). No single quotes: it is typed into a shell.
fn config(ssh_key: &str, nic1_mac: &str, tarball_url: &str, tarball_sha512: &str) -> String {
    serde_json::json!({
        "ignition": {"version": "3.3.0"},
        "passwd": {"users": [
            {"name": "core", "sshAuthorizedKeys": [ssh_key], "groups": ["docker"]}
        ]},
        "storage": {"files": [
            {"path": "/etc/hostname", "overwrite": true, "mode": 420,
             "contents": {"source": data_url(&format!("{HOSTNAME}\n"))}},
            {"path": SEED_CONF_PATH, "mode": 420,
             "contents": {"source": data_url(SEED_CONF)}},
            {"path": "/etc/systemd/network/10-seed-nic1.network", "mode": 420,
             "contents": {"source": data_url(&nic1_network(nic1_mac))}},
            {"path": TARBALL, "mode": 420,
             "contents": {"source": tarball_url,
                          "verification": {"hash": format!("sha512-{tarball_sha512}")}}}
        ]},
        "systemd": {"units": [
            {"name": "docker.service", "dropins": [{"name": DROPIN_NAME, "contents": DROPIN}]}
        ]}
    })
    .to_string()
}

/// Run `cmd` on the console root shell and require exit status 0; returns the output.
fn sh(vm: &mut Vm, cmd: &str) -> Result<String> {
    let (code, out) = vm.console().run(cmd, CMD)?;
    ensure!(code == 0, "`{cmd}` exited {code}:\n{out}");
    Ok(out)
}

/// Write `text` to `path` on the console shell in pieces (a tty line holds 4 KiB at most, and readline redraws long lines), then
/// check what arrived by its SHA-256.
fn type_file(vm: &mut Vm, path: &str, text: &str) -> Result<()> {
    ensure!(
        !text.contains('\'') && text.is_ascii(),
        "cannot type {path}: it has single quotes or non-ASCII"
    );
    sh(vm, &format!(": > {path}"))?;
    let bytes = text.as_bytes();
    for chunk in bytes.chunks(256) {
        let chunk = std::str::from_utf8(chunk).expect("ASCII");
        sh(vm, &format!("printf '%s' '{chunk}' >> {path}"))?;
    }
    let want = hex::encode(Sha256::digest(bytes));
    let seen = sh(vm, &format!("sha256sum {path}"))?;
    ensure!(
        seen.split_whitespace().next() == Some(want.as_str()),
        "{path} typed on the console has sha256 {seen}, want {want}"
    );
    Ok(())
}

/// The interface whose `link/ether` is `mac` in `ip -o link` output.
fn ifname_with_mac(ip_link: &str, mac: &str) -> Option<String> {
    ip_link
        .lines()
        .find(|l| l.contains(&format!("link/ether {mac} ")))
        .and_then(|l| l.split(':').nth(1))
        .map(|n| n.trim().split('@').next().unwrap_or_default().to_string())
}

/// The host port in `docker port` output (`0.0.0.0:49153`, `:::49153`, `[::]:49153`).
fn published_port(docker_port: &str) -> Option<u16> {
    docker_port
        .lines()
        .find_map(|l| l.trim().rsplit(':').next()?.parse().ok())
}

/// A shell command that GETs / from 127.0.0.1:`port` and prints the whole response, retrying
/// for a minute until the page's marker is in it. The node has no curl or wget: bash's
/// /dev/tcp, in a subshell so a refused connection does not end the loop.
fn page_fetch_command(port: u16) -> String {
    format!(
        "for i in $(seq 30); do out=$( (exec 3<>/dev/tcp/127.0.0.1/{port} \
         && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3) 2>&1 ); \
         case \"$out\" in *{PAGE_MARKER}*) break;; esac; sleep 2; done; printf '%s\\n' \"$out\""
    )
}

/// Wait for node ready on the installed disk, failing at once (with the console's tail) if the
/// initramfs gives up, e.g. because Ignition failed.
fn wait_installed_ready(vm: &mut Vm) -> Result<String> {
    vm.console()
        .wait_for(r"keel-init: slot A is /dev/vda3 on disk vda", BOOT)?;
    let started = Instant::now();
    let pattern = format!(r"{NODE_READY}|keel-init: FATAL: ([^\r\n]*)");
    let m = vm.console().wait_for(&pattern, BOOT)?;
    if let Some(reason) = m.group(4) {
        let reason = reason.to_string();
        let lines: Vec<&str> = m.before.lines().collect();
        bail!(
            "the installed system did not come up: FATAL: {reason}\nconsole before it:\n{}",
            lines[lines.len().saturating_sub(80)..].join("\n")
        );
    }
    let slot = m.group(2).unwrap_or_default();
    ensure!(
        slot == "A",
        "the installed system booted slot {slot}, not A: {}",
        m.text
    );
    info!(elapsed = ?started.elapsed(), ready = %m.text.trim(), "seed lab: installed node ready");
    Ok(m.before)
}

/// What both seed-lab tests serve and hold: the release tree and the container tarball on a
/// loopback HTTP server, and the SSH key the config gives core.
struct Lab {
    version: String,
    image: DockerArchive,
    served: tempfile::TempDir,
    server: Server,
    key: SshKey,
}

impl Lab {
    fn serve() -> Result<Lab> {
        let (release, version) = release()?;
        let busybox = std::fs::read("/bin/busybox")
            .context("reading the host's /bin/busybox (Debian package busybox-static)")?;
        let image = seed_web_image(&busybox)?;
        let served = tempfile::tempdir()?;
        std::os::unix::fs::symlink(&release, served.path().join("release"))?;
        std::fs::write(served.path().join(TARBALL_FILE), &image.bytes)?;
        let server = Server::serve_dir(served.path())?;
        let key = SshKey::generate()?;
        Ok(Lab {
            version,
            image,
            served,
            server,
            key,
        })
    }
}

#[test]
fn seed_node_installed_from_pxe_serves_a_container_on_its_configured_bridge() -> Result<()> {
    init_logging();
    let started = Instant::now();
    let Lab {
        version,
        image,
        served: _served, // kept alive: the server serves files from it
        server,
        key,
    } = Lab::serve()?;

    let mut vm = Vm::builder()
        .name("seed-lab")
        .bios()
        .pxe(artifacts::pxe_dir()?)
        .kernel_append("keel.live keel.autologin")
        .memory_mib(3072)
        .extra_disk(DISK)
        .nics(2)
        .ssh_forward()
        .start()?;
    let nic1_mac = nic_mac(&vm, 1)?;

    // The live system.
    let live = vm.console().wait_for(NODE_READY, BOOT)?;
    ensure!(
        live.group(2) == Some("live"),
        "PXE boot is the live system: {}",
        live.text
    );
    std::thread::sleep(Duration::from_secs(3));
    let links = sh(&mut vm, "ip -o link")?;
    info!(%links, nic1_mac, "seed lab: NICs on the live system");
    ensure!(
        ifname_with_mac(&links, &nic1_mac).is_some(),
        "NIC 1 ({nic1_mac}) is not in the live system's `ip -o link`:\n{links}"
    );
    // The drop-in sets DOCKER_OPTS: that works only while the unit expands it.
    let unit = sh(&mut vm, "systemctl cat --no-pager docker.service")?;
    let exec_start = unit
        .lines()
        .find(|l| l.starts_with("ExecStart="))
        .unwrap_or_default()
        .to_string();
    info!(%exec_start, "seed lab: docker.service");
    ensure!(
        exec_start.contains("$DOCKER_OPTS"),
        "docker.service does not expand $DOCKER_OPTS, so the drop-in would not change dockerd:\n{unit}"
    );

    // Install with the config.
    let tarball_url = server.guest_url(TARBALL_FILE);
    let cfg = config(
        key.public_key(),
        &nic1_mac,
        &tarball_url,
        &hex::encode(Sha512::digest(&image.bytes)),
    );
    type_file(&mut vm, "/tmp/cfg.json", &cfg)?;
    let cmd = format!(
        "coreos-install -d /dev/vda -b {} -V {version} -i /tmp/cfg.json",
        server.guest_url("release")
    );
    let install_started = Instant::now();
    let (code, out) = vm.console().run(&cmd, INSTALL)?;
    let success = format!("Success! Keel {version} is installed on /dev/vda");
    ensure!(
        code == 0 && out.lines().any(|l| l.trim_end() == success),
        "`{cmd}` exited {code}:\n{out}"
    );
    info!(took = ?install_started.elapsed(), "seed lab: installed");
    // A root shell on the installed system's console too, for looking around after a failure.
    sh(
        &mut vm,
        "mkdir -p /run/seed-oem && mount -t vfat /dev/vda6 /run/seed-oem \
         && printf 'set linux_append=\"keel.autologin\"\\n' > /run/seed-oem/grub.cfg \
         && umount /run/seed-oem",
    )?;

    // First boot from the disk: Ignition applies the config, fetching the image over http.
    vm.boot_from_disk_next()?;
    vm.console().send_line("systemctl reboot")?;
    let boot_log = wait_installed_ready(&mut vm)?;
    check_seed_node(
        &mut vm,
        &key,
        &nic1_mac,
        &image,
        &server,
        &tarball_url,
        &boot_log,
    )?;
    info!(took = ?started.elapsed(), "seed lab: done");
    Ok(())
}

/// Everything the seed-lab config promised, checked on the installed node: Ignition fetched the
/// container tarball, then over SSH as core: groups, hostname, the /etc file, the static address
/// on NIC 1, the bridge from the dockerd drop-in, and a container serving a page on its
/// published port.
fn check_seed_node(
    vm: &mut Vm,
    key: &SshKey,
    nic1_mac: &str,
    image: &DockerArchive,
    server: &Server,
    tarball_url: &str,
    boot_log: &str,
) -> Result<()> {
    let fetched: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/{TARBALL_FILE}"))
        .collect();
    ensure!(
        fetched.iter().any(|r| r.method == "GET" && r.status == 200),
        "Ignition did not fetch {tarball_url}: requests {fetched:?}\nboot console:\n{boot_log}"
    );

    // Everything else as the user core, over SSH with the key from the config.
    let ssh = vm.ssh("core", key)?;
    let run = |cmd: &str| ssh_ok(&ssh, cmd, CMD);
    let who = run("id -un; id -nG")?;
    ensure!(
        who.lines().next() == Some("core")
            && who
                .lines()
                .nth(1)
                .is_some_and(|g| g.split_whitespace().any(|g| g == "docker")),
        "core and its groups: {who}"
    );
    let hostname = run("hostname")?;
    ensure!(hostname == HOSTNAME, "hostname: {hostname}");
    let conf = run(&format!(
        "cat {SEED_CONF_PATH}; stat -c %a {SEED_CONF_PATH}"
    ))?;
    ensure!(
        conf == format!("{}\n644", SEED_CONF.trim_end()),
        "{SEED_CONF_PATH} and its mode: {conf}"
    );

    // NIC 1 has its static address (networkd may still be at it right after node ready).
    let links = run("ip -o link")?;
    let nic1 = ifname_with_mac(&links, nic1_mac)
        .with_context(|| format!("NIC 1 ({nic1_mac}) not in `ip -o link`:\n{links}"))?;
    let addrs = run(&format!(
        "for i in $(seq 60); do ip -4 -o addr show dev {nic1} | grep -q 'inet {NIC1_ADDR} ' && break; sleep 1; done; ip -4 -o addr show"
    ))?;
    info!(nic1, %addrs, "seed lab: addresses");
    ensure!(
        addrs
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some(nic1.as_str())
                && l.contains(&format!("inet {NIC1_ADDR} "))),
        "NIC 1 ({nic1}, {nic1_mac}) does not have {NIC1_ADDR}; `ip -4 -o addr show`:\n{addrs}\n\
         networkctl: {}",
        run("networkctl --no-pager list").unwrap_or_else(|e| e.to_string())
    );

    // The drop-in changed dockerd's options: docker0 is on the configured bridge.
    let docker0 = run("ip -4 -o addr show docker0")?;
    if !docker0.contains(&format!("inet {BRIDGE_ADDR} ")) {
        let unit = run(
            "systemctl show docker.service -p Environment -p ExecStart -p DropInPaths --no-pager",
        )
        .unwrap_or_else(|e| e.to_string());
        bail!("docker0 is not {BRIDGE_ADDR}: {docker0}\ndocker.service:\n{unit}");
    }

    // The image Ignition fetched: load it, run it with its port published, fetch the page.
    let loaded = run(&format!("docker load -i {TARBALL}"))?;
    ensure!(
        loaded.contains(&format!("Loaded image: {IMAGE_TAG}")),
        "docker load: {loaded}"
    );
    let id = run(&format!(
        "docker image inspect -f '{{{{.Id}}}}' {IMAGE_TAG}"
    ))?;
    ensure!(
        id == image.image_id,
        "image id after docker load: {id}, built as {}",
        image.image_id
    );
    run(&format!("docker run -d -P --name {CONTAINER} {IMAGE_TAG}"))?;
    let ip = run(&format!(
        "docker inspect -f '{{{{.NetworkSettings.IPAddress}}}}' {CONTAINER}"
    ))?;
    ensure!(
        ip.starts_with("172.31.7."),
        "the container's address {ip} is not on the drop-in's bridge {BRIDGE_ADDR}"
    );
    let ports = run(&format!("docker port {CONTAINER} {WEB_PORT}/tcp"))?;
    let port = published_port(&ports)
        .with_context(|| format!("no published port in `docker port`: {ports}"))?;
    let response = run(&page_fetch_command(port))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .unwrap_or_default();
    if !(response.contains(" 200 ") && body.trim_end() == PAGE.trim_end()) {
        let logs = run(&format!("docker ps -a; docker logs {CONTAINER}"))
            .unwrap_or_else(|e| e.to_string());
        bail!("GET / on the published port {port} ({ports}):\n{response}\ncontainer:\n{logs}");
    }
    info!(port, "seed lab: the container's page came back");
    Ok(())
}

/// The same node, installed with no login at all: the live system installs itself from the
/// coreos.inst.* kernel arguments, reboots into the disk, and Ignition applies the same config.
#[test]
fn unattended_install_from_kernel_arguments_reaches_the_same_seed_state() -> Result<()> {
    init_logging();
    let Lab {
        version,
        image,
        served,
        server,
        key,
    } = Lab::serve()?;
    // The config names NIC 1 by MAC, which the harness derives from the VM: build the VM
    // settings first, then write the config before QEMU starts fetching anything.
    let tarball_url = server.guest_url(TARBALL_FILE);
    let args = format!(
        "keel.live coreos.inst.install_dev=/dev/vda coreos.inst.ignition_url={} coreos.inst.base_url={} coreos.inst.version={version}",
        server.guest_url("cfg.ign"),
        server.guest_url("release"),
    );
    let mut vm = Vm::builder()
        .name("seed-unattended")
        .bios()
        .pxe(artifacts::pxe_dir()?)
        .kernel_append(args)
        .memory_mib(3072)
        .extra_disk(DISK)
        .nics(2)
        .ssh_forward()
        .start()?;
    let nic1_mac = nic_mac(&vm, 1)?;
    let cfg = config(
        key.public_key(),
        &nic1_mac,
        &tarball_url,
        &hex::encode(Sha512::digest(&image.bytes)),
    );
    std::fs::write(served.path().join("cfg.ign"), &cfg)?;
    // The guest reboots by itself after the install: the disk must boot then.
    vm.boot_from_disk_next()?;
    vm.console().wait_for(
        &format!(
            r"Success! Keel {} is installed on /dev/vda",
            regex::escape(&version)
        ),
        BOOT + INSTALL,
    )?;
    let boot_log = wait_installed_ready(&mut vm)?;
    let fetched: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path == "/cfg.ign")
        .collect();
    ensure!(
        fetched.iter().any(|r| r.status == 200),
        "the installer fetched the config from coreos.inst.ignition_url: {fetched:?}"
    );
    check_seed_node(
        &mut vm,
        &key,
        &nic1_mac,
        &image,
        &server,
        &tarball_url,
        &boot_log,
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io::Read;

    use super::*;

    /// Every entry of a tar: path → (mode, bytes); directories end in `/`.
    fn entries(bytes: &[u8]) -> BTreeMap<String, (u32, Vec<u8>)> {
        let mut out = BTreeMap::new();
        let mut archive = tar::Archive::new(bytes);
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let mut path = e.path().unwrap().to_str().unwrap().to_string();
            if e.header().entry_type().is_dir() && !path.ends_with('/') {
                path.push('/');
            }
            let mode = e.header().mode().unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.insert(path, (mode, data));
        }
        out
    }

    fn sha256(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    #[test]
    fn docker_archive_manifest_config_and_layer_agree() {
        let archive = seed_web_image(b"not really busybox").unwrap();
        let outer = entries(&archive.bytes);
        let manifest: serde_json::Value =
            serde_json::from_slice(&outer["manifest.json"].1).unwrap();
        let manifest = manifest.as_array().unwrap();
        assert_eq!(manifest.len(), 1);
        assert_eq!(manifest[0]["RepoTags"], serde_json::json!([IMAGE_TAG]));

        // The config is named by its digest, which is the image id docker reports.
        let config_name = manifest[0]["Config"].as_str().unwrap();
        let config_bytes = &outer[config_name].1;
        assert_eq!(config_name, format!("{}.json", sha256(config_bytes)));
        assert_eq!(archive.image_id, format!("sha256:{}", sha256(config_bytes)));
        let config: serde_json::Value = serde_json::from_slice(config_bytes).unwrap();
        assert_eq!(config["architecture"], "amd64");
        assert_eq!(config["os"], "linux");
        assert_eq!(
            config["config"]["Cmd"],
            serde_json::json!(["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"])
        );
        assert_eq!(
            config["config"]["ExposedPorts"],
            serde_json::json!({"8080/tcp": {}})
        );
        assert_eq!(config["rootfs"]["type"], "layers");

        // The one layer is where the manifest says, and its digest is the config's diff_id.
        let layers = manifest[0]["Layers"].as_array().unwrap();
        assert_eq!(layers.len(), 1);
        let layer = &outer[layers[0].as_str().unwrap()].1;
        assert_eq!(
            config["rootfs"]["diff_ids"],
            serde_json::json!([format!("sha256:{}", sha256(layer))])
        );

        // The layer holds the program and the page, with their parent directories.
        let files = entries(layer);
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["bin/", "bin/busybox", "www/", "www/index.html"]
        );
        assert_eq!(
            files["bin/busybox"],
            (0o755, b"not really busybox".to_vec())
        );
        assert_eq!(files["www/index.html"], (0o644, PAGE.as_bytes().to_vec()));
        assert_eq!(files["bin/"].0, 0o755);
    }

    #[test]
    fn docker_archive_is_reproducible() {
        let a = seed_web_image(b"x").unwrap();
        let b = seed_web_image(b"x").unwrap();
        assert_eq!(a.bytes, b.bytes);
        assert_ne!(a.image_id, seed_web_image(b"y").unwrap().image_id);
    }

    #[test]
    fn the_config_can_be_typed_and_names_every_effect() {
        let cfg = config(
            "ssh-ed25519 AAAA k",
            "52:54:00:12:34:01",
            "http://10.0.2.2:8000/seed-web.tar",
            "ab",
        );
        assert!(!cfg.contains('\''), "{cfg}");
        let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(
            v["passwd"]["users"][0]["groups"],
            serde_json::json!(["docker"])
        );
        let unit = &v["storage"]["files"][2]["contents"]["source"];
        assert_eq!(
            unit.as_str().unwrap(),
            "data:,%5BMatch%5D%0AMACAddress%3D52%3A54%3A00%3A12%3A34%3A01%0A%0A%5BNetwork%5D%0AAddress%3D192%2E168%2E77%2E10%2F24%0A"
        );
        assert_eq!(
            v["systemd"]["units"][0]["dropins"][0]["contents"],
            "[Service]\nEnvironment=\"DOCKER_OPTS=--bip=172.31.7.1/24\"\n"
        );
    }

    #[test]
    fn published_port_from_docker_port_output() {
        assert_eq!(published_port("0.0.0.0:49153\n:::49153"), Some(49153));
        assert_eq!(published_port("[::]:32768"), Some(32768));
        assert_eq!(published_port("Error: No public port"), None);
    }

    /// The fetch command, run by the host's bash against a one-shot server that answers like
    /// busybox httpd: the request arrives as typed, the response comes back whole.
    #[test]
    fn page_fetch_command_speaks_http_over_dev_tcp() {
        use std::io::{BufRead, BufReader, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = String::new();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            while reader.read_line(&mut request).unwrap() > 2 {}
            write!(stream, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{PAGE}").unwrap();
            request
        });
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(page_fetch_command(port))
            .output()
            .unwrap();
        assert_eq!(server.join().unwrap(), "GET / HTTP/1.0\r\n\r\n");
        let out = String::from_utf8(out.stdout).unwrap();
        assert_eq!(
            out,
            format!("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{PAGE}")
        );
    }

    #[test]
    fn finds_the_interface_by_mac() {
        let links = "1: lo: <LOOPBACK,UP> mtu 65536 qdisc noop state DOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\n\
                     2: enp0s2: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc fq_codel state UP\\    link/ether 52:54:00:ab:cd:00 brd ff:ff:ff:ff:ff:ff\n\
                     3: enp0s3: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc fq_codel state UP\\    link/ether 52:54:00:ab:cd:01 brd ff:ff:ff:ff:ff:ff";
        assert_eq!(
            ifname_with_mac(links, "52:54:00:ab:cd:01").as_deref(),
            Some("enp0s3")
        );
        assert_eq!(ifname_with_mac(links, "52:54:00:ab:cd:02"), None);
    }
}
