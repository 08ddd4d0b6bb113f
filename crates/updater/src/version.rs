//! Release versions and their order: dotted numbers (`1.2.3`, `4459.2.1`), semver-like. Missing
//! trailing numbers count as zero (`1.2` = `1.2.0`); a pre-release tag after `-` sorts before
//! the release (`1.2.0-rc.1` < `1.2.0`) and its dot-separated parts compare as semver says
//! (numbers numerically and before words); build metadata after `+` is kept in the text but
//! plays no part in the order.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A release version. Equality and order ignore trailing `.0`s and build metadata; the text
/// is kept as written for display.
#[derive(Clone, Debug)]
pub struct Version {
    text: String,
    /// The numbers with trailing zeros removed.
    core: Vec<u64>,
    pre: Vec<Ident>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Ident {
    Num(u64),
    Word(String),
}

impl Ord for Ident {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Ident::Num(a), Ident::Num(b)) => a.cmp(b),
            (Ident::Num(_), Ident::Word(_)) => Ordering::Less,
            (Ident::Word(_), Ident::Num(_)) => Ordering::Greater,
            (Ident::Word(a), Ident::Word(b)) => a.cmp(b),
        }
    }
}

impl PartialOrd for Ident {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Text that is not a version.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a version such as 1.2.3 or 1.2.3-rc.1: {why}")]
pub struct VersionError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
}

impl Version {
    /// The version as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether it carries a pre-release tag (`-rc.1`).
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }
}

impl FromStr for Version {
    type Err = VersionError;

    fn from_str(text: &str) -> Result<Self, VersionError> {
        let err = |why| VersionError {
            text: text.to_string(),
            why,
        };
        let no_build = text.split_once('+').map_or(text, |(v, _)| v);
        let (core_text, pre_text) = match no_build.split_once('-') {
            Some((c, p)) => (c, Some(p)),
            None => (no_build, None),
        };
        let mut core = core_text
            .split('.')
            .map(|n| {
                if n.is_empty() || !n.bytes().all(|c| c.is_ascii_digit()) {
                    Err(err("the release must be dot-separated numbers"))
                } else {
                    n.parse::<u64>().map_err(|_| err("a number is too large"))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        while core.last() == Some(&0) {
            core.pop();
        }
        let pre = match pre_text {
            None => Vec::new(),
            Some(p) => p
                .split('.')
                .map(|id| {
                    if id.is_empty() || !id.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
                    {
                        Err(err("a pre-release tag is dot-separated [0-9A-Za-z-] words"))
                    } else if id.bytes().all(|c| c.is_ascii_digit()) {
                        id.parse()
                            .map(Ident::Num)
                            .map_err(|_| err("a number is too large"))
                    } else {
                        Ok(Ident::Word(id.to_string()))
                    }
                })
                .collect::<Result<Vec<_>, _>>()?,
        };
        if let Some(build) = text.split_once('+').map(|(_, b)| b) {
            if build.is_empty()
                || !build
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".-".contains(&c))
            {
                return Err(err("build metadata is [0-9A-Za-z.-]"));
            }
        }
        Ok(Version {
            text: text.to_string(),
            core,
            pre,
        })
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        // Trailing zeros are already gone, so a shorter core is a prefix padded with zeros.
        self.core
            .cmp(&other.core)
            .then_with(|| match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                (false, false) => self.pre.cmp(&other.pre),
            })
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Version {}

impl Hash for Version {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.core.hash(state);
        self.pre.hash(state);
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Version {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    struct Case {
        name: &'static str,
        input: (&'static str, &'static str),
        want: Ordering,
    }

    #[test]
    fn orders_like_semver() {
        use Ordering::*;
        let cases = [
            Case {
                name: "patch",
                input: ("1.2.3", "1.2.4"),
                want: Less,
            },
            Case {
                name: "numbers, not text",
                input: ("1.10.0", "1.9.0"),
                want: Greater,
            },
            Case {
                name: "CL style",
                input: ("4459.2.1", "4487.0.0"),
                want: Less,
            },
            Case {
                name: "trailing zeros",
                input: ("1.2", "1.2.0"),
                want: Equal,
            },
            Case {
                name: "longer is newer",
                input: ("1.2", "1.2.0.1"),
                want: Less,
            },
            Case {
                name: "pre-release first",
                input: ("1.2.0-rc.1", "1.2.0"),
                want: Less,
            },
            Case {
                name: "pre-release after older",
                input: ("1.2.0-rc.1", "1.1.9"),
                want: Greater,
            },
            Case {
                name: "pre numbers",
                input: ("1.0.0-rc.2", "1.0.0-rc.10"),
                want: Less,
            },
            Case {
                name: "number before word",
                input: ("1.0.0-1", "1.0.0-alpha"),
                want: Less,
            },
            Case {
                name: "prefix shorter",
                input: ("1.0.0-alpha", "1.0.0-alpha.1"),
                want: Less,
            },
            Case {
                name: "build ignored",
                input: ("1.0.0+abc", "1.0.0+def"),
                want: Equal,
            },
        ];
        for c in cases {
            assert_eq!(v(c.input.0).cmp(&v(c.input.1)), c.want, "{}", c.name);
            assert_eq!(
                v(c.input.1).cmp(&v(c.input.0)),
                c.want.reverse(),
                "{}",
                c.name
            );
        }
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "",
            "v1.2",
            "1..2",
            "1.2.",
            "1.x",
            "1.2-",
            "1.2-rc..1",
            "1.2+",
            "1.2-r c",
            "99999999999999999999",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn keeps_its_text_in_json() {
        let json = serde_json::to_string(&v("1.2.0+build.7")).unwrap();
        assert_eq!(json, "\"1.2.0+build.7\"");
        assert_eq!(
            serde_json::from_str::<Version>(&json).unwrap().as_str(),
            "1.2.0+build.7"
        );
        assert!(serde_json::from_str::<Version>("\"next\"").is_err());
    }

    proptest! {
        #[test]
        fn order_agrees_with_numbers(a in proptest::collection::vec(0u64..50, 1..4),
                                     b in proptest::collection::vec(0u64..50, 1..4)) {
            let text = |n: &[u64]| n.iter().map(u64::to_string).collect::<Vec<_>>().join(".");
            let pad = |n: &[u64]| { let mut n = n.to_vec(); n.resize(4, 0); n };
            prop_assert_eq!(v(&text(&a)).cmp(&v(&text(&b))), pad(&a).cmp(&pad(&b)));
        }
    }
}
