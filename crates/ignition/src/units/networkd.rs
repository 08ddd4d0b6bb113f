//! Spec 2.x `networkd.units` → files under `/etc/systemd/network` (pure).
//!
//! A unit is written to `/etc/systemd/network/NAME`, each drop-in to
//! `/etc/systemd/network/NAME.d/DROPIN`, contents literal, mode 0644. Empty contents are
//! skipped, as Ignition v0.x does. (Spec 3.x has no networkd section: users write the same
//! files with `storage.files`.)

use crate::model::NetworkdUnit;

/// Where networkd units live.
pub const NETWORK_DIR: &str = "/etc/systemd/network";

/// A file to write for a networkd unit or drop-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkdFile {
    /// Config path of the unit or drop-in.
    pub at: String,
    /// Absolute path in the root.
    pub path: String,
    /// Text.
    pub contents: String,
}

/// The files `units` produce, in config order.
pub fn files(units: &[NetworkdUnit]) -> Vec<NetworkdFile> {
    let mut out = Vec::new();
    for u in units {
        let name = u.name.as_deref().unwrap_or_default();
        if let Some(c) = u.contents.as_deref().filter(|c| !c.is_empty()) {
            out.push(NetworkdFile {
                at: u.at.to_string(),
                path: format!("{NETWORK_DIR}/{name}"),
                contents: c.to_string(),
            });
        }
        for d in &u.dropins {
            if let Some(c) = d.contents.as_deref().filter(|c| !c.is_empty()) {
                out.push(NetworkdFile {
                    at: d.at.to_string(),
                    path: format!(
                        "{NETWORK_DIR}/{name}.d/{}",
                        d.name.as_deref().unwrap_or_default()
                    ),
                    contents: c.to_string(),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dropin;
    use crate::report::JsonPath;

    #[test]
    fn units_and_dropins_become_files() {
        let at = JsonPath::root().key("networkd").key("units").index(0);
        let units = [NetworkdUnit {
            at: at.clone(),
            name: Some("00-eth0.network".into()),
            contents: Some("[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n".into()),
            dropins: vec![
                Dropin {
                    at: at.key("dropins").index(0),
                    name: Some("10-mtu.conf".into()),
                    contents: Some("[Link]\nMTUBytes=9000\n".into()),
                },
                Dropin {
                    at: at.key("dropins").index(1),
                    name: Some("20-empty.conf".into()),
                    contents: Some(String::new()),
                },
            ],
        }];
        let got = files(&units);
        assert_eq!(got.len(), 2, "empty drop-in skipped");
        assert_eq!(got[0].path, "/etc/systemd/network/00-eth0.network");
        assert!(got[0].contents.contains("DHCP=yes"));
        assert_eq!(
            got[1].path,
            "/etc/systemd/network/00-eth0.network.d/10-mtu.conf"
        );
        assert_eq!(got[1].at, "$.networkd.units[0].dropins[0]");
    }
}
