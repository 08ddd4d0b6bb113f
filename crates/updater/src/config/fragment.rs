//! One update.conf file as written: `KEY=value` lines, no meaning attached yet.
//!
//! The syntax is what Container Linux users already write, which systemd's `EnvironmentFile=`
//! (locksmithd) and update_engine both read:
//!
//!  * blank lines and lines starting with `#` or `;` are comments;
//!  * `KEY=value`, spaces around the key and after `=` ignored; a key is `[A-Za-z_][A-Za-z0-9_]*`;
//!  * an unquoted value runs to the end of the line (so `REBOOT_WINDOW_START=Thu 04:00` works
//!    as it did under locksmithd), trailing spaces dropped, and a ` #` starts a comment;
//!  * `"double"` quotes keep spaces and `#`, and take `\"`, `\\`, `` \` `` and `\$` escapes;
//!    `'single'` quotes keep everything literally; quoted and unquoted parts may be joined
//!    (`A="x y"z`); outside quotes `\c` is `c`;
//!  * no variable expansion, no `export`, no continuation lines.

use std::path::{Path, PathBuf};

use super::ConfigError;

/// One `KEY=value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// The value, quotes and escapes resolved.
    pub value: String,
    /// 1-based line number.
    pub line: usize,
}

/// A file's entries in order (a key may repeat; the later line wins).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its entries.
    pub entries: Vec<Entry>,
}

/// Parse one file's text.
pub fn parse(path: &Path, text: &str) -> Result<Fragment, ConfigError> {
    let mut entries = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let syntax = |why: String| ConfigError::Syntax {
            file: path.to_path_buf(),
            line,
            why,
        };
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let (key, value) = trimmed
            .split_once('=')
            .ok_or_else(|| syntax("not KEY=value".to_string()))?;
        let key = key.trim_end();
        if !valid_key(key) {
            return Err(syntax(format!(
                "{key:?} is not a key (letters, digits and _, not starting with a digit)"
            )));
        }
        let value = parse_value(value).map_err(|why| ConfigError::Value {
            file: path.to_path_buf(),
            line,
            key: key.to_string(),
            why,
        })?;
        entries.push(Entry {
            key: key.to_string(),
            value,
            line,
        });
    }
    Ok(Fragment {
        path: path.to_path_buf(),
        entries,
    })
}

fn valid_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn parse_value(raw: &str) -> Result<String, String> {
    let mut out = String::new();
    // Length of `out` up to its last character that is not unquoted whitespace.
    let mut keep = 0;
    // `KEY=#x` is the value `#x`; `KEY= # note` is empty.
    let mut after_space = raw.starts_with(char::is_whitespace);
    let mut chars = raw.trim_start().chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if after_space => break,
            '"' => {
                loop {
                    match chars.next() {
                        None => return Err("unterminated \"quote\"".to_string()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '`' | '$')) => out.push(e),
                            Some(e) => {
                                out.push('\\');
                                out.push(e);
                            }
                            None => return Err("unterminated \"quote\"".to_string()),
                        },
                        Some(q) => out.push(q),
                    }
                }
                keep = out.len();
            }
            '\'' => {
                loop {
                    match chars.next() {
                        None => return Err("unterminated 'quote'".to_string()),
                        Some('\'') => break,
                        Some(q) => out.push(q),
                    }
                }
                keep = out.len();
            }
            '\\' => match chars.next() {
                Some(e) => {
                    out.push(e);
                    keep = out.len();
                }
                None => return Err("a line cannot end in \\ (no continuation lines)".to_string()),
            },
            c if c.is_whitespace() => out.push(c),
            c => {
                out.push(c);
                keep = out.len();
            }
        }
        after_space = c.is_whitespace();
    }
    out.truncate(keep);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Case {
        name: &'static str,
        input: &'static str,
        want: Result<&'static str, &'static str>,
    }

    #[test]
    fn values_as_cl_files_write_them() {
        let cases = [
            Case {
                name: "plain",
                input: "reboot",
                want: Ok("reboot"),
            },
            Case {
                name: "spaces kept inside, dropped at the ends",
                input: "  Thu 04:00   ",
                want: Ok("Thu 04:00"),
            },
            Case {
                name: "double quotes",
                input: "\"Thu 04:00\"",
                want: Ok("Thu 04:00"),
            },
            Case {
                name: "single quotes",
                input: "'a \"b\" $c'",
                want: Ok("a \"b\" $c"),
            },
            Case {
                name: "trailing comment",
                input: "etcd-lock   # the cluster's lock",
                want: Ok("etcd-lock"),
            },
            Case {
                name: "hash inside a word",
                input: "http://h/x#frag",
                want: Ok("http://h/x#frag"),
            },
            Case {
                name: "hash in quotes",
                input: "\"a # b\"",
                want: Ok("a # b"),
            },
            Case {
                name: "comment after quotes",
                input: "\"beta\" # channel",
                want: Ok("beta"),
            },
            Case {
                name: "joined parts",
                input: "\"x y\"z'w'",
                want: Ok("x yzw"),
            },
            Case {
                name: "escapes in double quotes",
                input: r#""a\"b\\c\$d\e""#,
                want: Ok(r#"a"b\c$d\e"#),
            },
            Case {
                name: "escape outside quotes",
                input: r"a\ b\#c",
                want: Ok("a b#c"),
            },
            Case {
                name: "quoted trailing space kept",
                input: "\"a \"  ",
                want: Ok("a "),
            },
            Case {
                name: "empty",
                input: "",
                want: Ok(""),
            },
            Case {
                name: "only a comment",
                input: " # nothing",
                want: Ok(""),
            },
            Case {
                name: "a hash first is a value",
                input: "#x",
                want: Ok("#x"),
            },
            Case {
                name: "empty quotes",
                input: "\"\"",
                want: Ok(""),
            },
            Case {
                name: "unterminated double",
                input: "\"beta",
                want: Err("unterminated \"quote\""),
            },
            Case {
                name: "unterminated single",
                input: "'beta",
                want: Err("unterminated 'quote'"),
            },
            Case {
                name: "continuation",
                input: "beta\\",
                want: Err("cannot end in \\"),
            },
        ];
        for c in cases {
            let got = parse_value(c.input);
            match (&got, c.want) {
                (Ok(g), Ok(w)) => assert_eq!(g, w, "{}", c.name),
                (Err(e), Err(w)) => assert!(e.contains(w), "{}: {e}", c.name),
                _ => panic!("{}: got {got:?}, want {:?}", c.name, c.want),
            }
        }
    }

    #[test]
    fn lines_keys_and_comments() {
        let text = "# written by Ignition\n\n; also a comment\n  GROUP=beta\nSERVER = https://u.example/ \nGROUP=stable\n";
        let f = parse(Path::new("/etc/keel/update.conf"), text).unwrap();
        let got: Vec<_> = f
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            [
                ("GROUP", "beta", 4),
                ("SERVER", "https://u.example/", 5),
                ("GROUP", "stable", 6)
            ]
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let cases = [
            (
                "GROUP=beta\nno equals here\n",
                "/etc/keel/update.conf:2: not KEY=value",
            ),
            (
                "export GROUP=beta\n",
                "/etc/keel/update.conf:1: \"export GROUP\" is not a key",
            ),
            ("1GROUP=beta\n", ":1: \"1GROUP\" is not a key"),
            (
                "\n\nGROUP=\"beta\n",
                "/etc/keel/update.conf:3: GROUP: unterminated \"quote\"",
            ),
        ];
        for (text, want) in cases {
            let err = parse(Path::new("/etc/keel/update.conf"), text)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }
}
