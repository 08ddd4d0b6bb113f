//! Keel's own files on top of the Debian tree: binaries, units, os-release; the boot graph
//! itself is [`crate::units`].

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};

/// Keel's identity for os-release.
#[derive(Clone, Debug)]
pub struct Release {
    /// `VERSION_ID`.
    pub version: String,
}

/// A unit or config file shipped in /usr.
struct Shipped {
    path: &'static str,
    text: &'static str,
    mode: u32,
}

const SHIPPED: &[Shipped] = &[
    Shipped {
        path: "usr/lib/systemd/system/keel-agent.service",
        text: include_str!("../files/keel-agent.service"),
        mode: 0o644,
    },
    Shipped {
        path: "usr/lib/systemd/system/keel-mark-good.service",
        text: include_str!("../files/keel-mark-good.service"),
        mode: 0o644,
    },
    Shipped {
        path: "usr/lib/systemd/system/keel-ssh-keygen.service",
        text: include_str!("../files/keel-ssh-keygen.service"),
        mode: 0o644,
    },
    Shipped {
        path: "usr/lib/systemd/system-generators/keel-autologin-generator",
        text: include_str!("../files/keel-autologin-generator"),
        mode: 0o755,
    },
    Shipped {
        path: "usr/lib/systemd/system/keel-install.service",
        text: include_str!("../files/keel-install.service"),
        mode: 0o644,
    },
    Shipped {
        path: "usr/lib/systemd/system-generators/keel-install-generator",
        text: include_str!("../files/keel-install-generator"),
        mode: 0o755,
    },
    Shipped {
        path: "usr/lib/systemd/network/zz-default.network",
        text: include_str!("../files/zz-default.network"),
        mode: 0o644,
    },
    Shipped {
        path: "usr/lib/systemd/journald.conf.d/50-keel.conf",
        text: include_str!("../files/journald-keel.conf"),
        mode: 0o644,
    },
    Shipped {
        path: "usr/lib/systemd/system-preset/80-keel.preset",
        text: include_str!("../files/keel.preset"),
        mode: 0o644,
    },
    Shipped {
        path: "usr/lib/systemd/system/ssh.service.d/50-keel.conf",
        text: include_str!("../files/ssh-keel.conf"),
        mode: 0o644,
    },
    Shipped {
        path: "etc/containerd/config.toml",
        text: include_str!("../files/containerd-config.toml"),
        mode: 0o644,
    },
    Shipped {
        path: "usr/lib/systemd/network/50-docker.network",
        text: include_str!("../files/50-docker.network"),
        mode: 0o644,
    },
    Shipped {
        path: "etc/sudoers.d/keel",
        text: include_str!("../files/sudoers-keel"),
        mode: 0o440,
    },
    Shipped {
        path: "etc/ssh/sshd_config.d/50-keel.conf",
        text: include_str!("../files/sshd-keel.conf"),
        mode: 0o644,
    },
];

/// Our programs installed into /usr/bin.
pub const BINARIES: &[&str] = &["agent", "updater", "ignition", "coreos-install"];

/// The cargo package that builds binary `name`.
fn package_of(name: &str) -> &str {
    match name {
        "coreos-install" => "installer",
        other => other,
    }
}

fn write(tree: &Path, rel: &str, text: &str, mode: u32) -> Result<()> {
    let path = tree.join(rel);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// Put Keel's files into `tree`; binaries come from `bin_dir`.
pub fn install(tree: &Path, bin_dir: &Path, release: &Release) -> Result<()> {
    for name in BINARIES {
        let src = bin_dir.join(name);
        let dest = tree.join("usr/bin").join(name);
        fs::copy(&src, &dest).with_context(|| {
            format!(
                "copying {} (build it first: cargo build --release -p {})",
                src.display(),
                package_of(name)
            )
        })?;
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o755))?;
    }
    for s in SHIPPED {
        write(tree, s.path, s.text, s.mode)?;
    }
    crate::units::apply(tree)?;
    crate::accounts::add(tree)?;
    let v = &release.version;
    write(
        tree,
        "usr/lib/os-release",
        &format!(
            "NAME=\"Keel\"\nID=keel\nID_LIKE=debian\nVERSION={v}\nVERSION_ID={v}\nPRETTY_NAME=\"Keel {v} (bookworm)\"\nHOME_URL=\"https://keel.invalid/\"\n"
        ),
        0o644,
    )?;
    let etc_release = tree.join("etc/os-release");
    let _ = fs::remove_file(&etc_release);
    symlink("../usr/lib/os-release", &etc_release)?;
    write(tree, "etc/hostname", "keel\n", 0o644)?;
    // Every node gets its own identity on first boot.
    write(tree, "etc/machine-id", "uninitialized\n", 0o444)?;
    let _ = fs::remove_file(tree.join("var/lib/dbus/machine-id"));
    for e in fs::read_dir(tree.join("etc/ssh"))?.flatten() {
        if e.file_name().to_string_lossy().starts_with("ssh_host_") {
            fs::remove_file(e.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `karg_on` function of a shell script: from its definition to the closing brace.
    fn karg_on(script: &str) -> &str {
        let start = script.find("karg_on() {").expect("karg_on defined");
        let end = start + script[start..].find("\n}\n").expect("karg_on ends") + 3;
        &script[start..end]
    }

    /// The shell scripts that read the kernel command line (init in the initramfs, the two
    /// generators in the OS) spell the flag rule alike, and it is slots::kargs::flag's.
    #[test]
    fn shell_scripts_read_kernel_flags_by_the_slots_kargs_rule() {
        let generator = |name: &str| {
            SHIPPED
                .iter()
                .find(|s| s.path.ends_with(name))
                .unwrap_or_else(|| panic!("{name} shipped"))
                .text
        };
        let init = crate::initramfs::INIT;
        let function = karg_on(init);
        for name in ["keel-install-generator", "keel-autologin-generator"] {
            assert_eq!(karg_on(generator(name)), function, "{name}");
        }
        let values: Vec<Option<&str>> = [None, Some(""), Some("1"), Some("0"), Some("yes")]
            .into_iter()
            .chain(
                [
                    "n", "N", "no", "No", "f", "F", "false", "FALSE", "off", "Off",
                ]
                .map(Some),
            )
            .chain(["detected", "on", "true", "y", "nope", "offf", "00", "0n"].map(Some))
            .collect();
        let mut script = format!("{function}\n");
        for v in &values {
            let arg = match v {
                None => "k".to_string(),
                Some(v) => format!("k={v}"),
            };
            script.push_str(&format!(
                "if karg_on '{arg}'; then echo on; else echo off; fi\n"
            ));
        }
        let out = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let got: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        let want: Vec<String> = values
            .iter()
            .map(|v| if slots::kargs::flag(*v) { "on" } else { "off" }.to_string())
            .collect();
        assert_eq!(got, want, "{values:?}");
    }
}
