//! Decoding a `serde_json::Value` into the raw spec types, the way Ignition's Go decoder does.
//!
//! Go's `encoding/json` matches object keys to fields case-insensitively, lets the last of
//! duplicate keys win and ignores unknown keys; Ignition then warns about every key it did not
//! use. This decoder does the same, and records each problem in a [`Report`] with its exact
//! JSON path instead of stopping at the first one:
//!  * a key the spec version does not define → warning `unused key`;
//!  * a key that only matches a field case-insensitively → decoded, with a warning;
//!  * a value of the wrong JSON type → error (the field is left unset).
//!
//! The raw types themselves are declared with [`raw_struct!`](crate::raw_struct) in
//! `spec/v2.rs` and `spec/v3.rs`.

use serde_json::Value;

use crate::parse::version::Version;
use crate::report::{JsonPath, Kind, Report};

/// Decoding state: the spec version being decoded (fields carry the version that introduced
/// them) and the report findings go to.
pub struct Cx<'a> {
    /// The config's spec version.
    pub version: Version,
    /// Where findings go.
    pub report: &'a mut Report,
}

/// A type that can be decoded from JSON. `None` means the value was rejected and an error
/// was recorded.
pub trait Decode: Sized {
    /// Decodes `v`, found at `at`.
    fn decode(v: &Value, at: &JsonPath, cx: &mut Cx) -> Option<Self>;
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Records a type mismatch.
pub fn mismatch(v: &Value, expected: &str, at: &JsonPath, cx: &mut Cx) {
    cx.report.error_msg(
        at,
        Kind::TypeMismatch,
        format!("expected {expected}, found {}", type_name(v)),
    );
}

impl Decode for String {
    fn decode(v: &Value, at: &JsonPath, cx: &mut Cx) -> Option<Self> {
        match v {
            Value::String(s) => Some(s.clone()),
            _ => {
                mismatch(v, "a string", at, cx);
                None
            }
        }
    }
}

impl Decode for bool {
    fn decode(v: &Value, at: &JsonPath, cx: &mut Cx) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(*b),
            _ => {
                mismatch(v, "a boolean", at, cx);
                None
            }
        }
    }
}

impl Decode for i64 {
    fn decode(v: &Value, at: &JsonPath, cx: &mut Cx) -> Option<Self> {
        match v.as_i64() {
            Some(n) => Some(n),
            None => {
                if v.is_number() {
                    cx.report.error_msg(
                        at,
                        Kind::TypeMismatch,
                        format!("expected an integer, found {v}"),
                    );
                } else {
                    mismatch(v, "an integer", at, cx);
                }
                None
            }
        }
    }
}

/// Kept as JSON, for parts the model does not interpret (e.g. clevis settings).
impl Decode for Value {
    fn decode(v: &Value, _at: &JsonPath, _cx: &mut Cx) -> Option<Self> {
        Some(v.clone())
    }
}

/// `null` decodes to `None`, as in Go.
impl<T: Decode> Decode for Option<T> {
    fn decode(v: &Value, at: &JsonPath, cx: &mut Cx) -> Option<Self> {
        if v.is_null() {
            return Some(None);
        }
        T::decode(v, at, cx).map(Some)
    }
}

/// An element that fails to decode is kept as its default value, so that later elements keep
/// their index (and their JSON path); its error is recorded.
impl<T: Decode + Default> Decode for Vec<T> {
    fn decode(v: &Value, at: &JsonPath, cx: &mut Cx) -> Option<Self> {
        match v {
            Value::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| T::decode(item, &at.index(i), cx).unwrap_or_default())
                    .collect(),
            ),
            Value::Null => Some(Vec::new()),
            _ => {
                mismatch(v, "an array", at, cx);
                None
            }
        }
    }
}

/// A field of a raw struct: its JSON key and the versions that have it.
pub struct Field {
    /// The Rust field's name.
    pub name: &'static str,
    /// JSON key as the spec spells it.
    pub key: &'static str,
    /// The first minor version that has the field, in spec 2.x and in 3.x (`None`: not in
    /// that line). A struct used by one line only gives the same minor for both.
    pub since: [Option<u32>; 2],
}

impl Field {
    /// The minor version of `version`'s line that introduced the field, if the line has it.
    fn since(&self, version: Version) -> Option<u32> {
        self.since[usize::from(!version.is_v2())]
    }
}

/// Finds which field `key` names, warning about unknown keys and case-only matches.
/// Returns the index into `fields`.
pub fn match_key(key: &str, fields: &[Field], at: &JsonPath, cx: &mut Cx) -> Option<usize> {
    let here = at.key(key);
    let in_line = |f: &Field| f.since(cx.version).is_some();
    let found = fields
        .iter()
        .position(|f| in_line(f) && f.key == key)
        .map(|i| (i, true))
        .or_else(|| {
            fields
                .iter()
                .position(|f| in_line(f) && f.key.eq_ignore_ascii_case(key))
                .map(|i| (i, false))
        });
    let since = |i: usize| fields[i].since(cx.version).unwrap_or(0);
    match found {
        Some((i, _)) if since(i) > cx.version.minor => {
            cx.report.warn_msg(
                &here,
                Kind::UnusedKey,
                format!(
                    "unused key {key}: it is not part of this spec version (added in minor version {})",
                    since(i)
                ),
            );
            None
        }
        Some((i, true)) => Some(i),
        Some((i, false)) => {
            cx.report.warn_msg(
                &here,
                Kind::UnusedKey,
                format!(
                    "key {key} is matched case-insensitively; did you mean {}?",
                    fields[i].key
                ),
            );
            Some(i)
        }
        None => {
            cx.report
                .warn_msg(&here, Kind::UnusedKey, format!("unused key {key}"));
            None
        }
    }
}

/// Declares a raw spec struct (all fields optional or lists) and its [`Decode`] impl.
///
/// `since N` names the minor version that introduced a field; a struct that both spec lines
/// use gives it per line, `since [N2, N3]`, with `_` for a line that does not have the field.
///
/// ```text
/// raw_struct! {
///     /// A file.
///     pub struct File {
///         path: Option<String> = "path",
///         overwrite: Option<bool> = "overwrite" since 2,
///         resize: Option<bool> = "resize" since [_, 2],
///     }
/// }
/// ```
#[macro_export]
#[doc(hidden)]
macro_rules! raw_struct {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $field:ident : $ty:ty = $key:literal $(since $since:tt)? ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, PartialEq)]
        #[allow(missing_docs)]
        pub struct $name {
            $( pub $field: $ty, )*
        }

        impl $crate::parse::decode::Decode for $name {
            fn decode(
                v: &serde_json::Value,
                at: &$crate::report::JsonPath,
                cx: &mut $crate::parse::decode::Cx,
            ) -> Option<Self> {
                let obj = match v {
                    serde_json::Value::Object(o) => o,
                    _ => {
                        $crate::parse::decode::mismatch(v, "an object", at, cx);
                        return None;
                    }
                };
                const FIELDS: &[$crate::parse::decode::Field] = &[
                    $( $crate::parse::decode::Field {
                        name: stringify!($field),
                        key: $key,
                        since: $crate::raw_struct!(@since $($since)?),
                    }, )*
                ];
                let mut out = Self::default();
                for (k, val) in obj {
                    let Some(i) = $crate::parse::decode::match_key(k, FIELDS, at, cx) else { continue };
                    let here = at.key(k);
                    let name = FIELDS[i].name;
                    $(
                        if name == stringify!($field) {
                            if let Some(x) = $crate::parse::decode::Decode::decode(val, &here, cx) {
                                out.$field = x;
                            }
                            continue;
                        }
                    )*
                }
                Some(out)
            }
        }
    };
    (@since) => { [Some(0), Some(0)] };
    (@since [$v2:tt, $v3:tt]) => {
        [$crate::raw_struct!(@minor $v2), $crate::raw_struct!(@minor $v3)]
    };
    (@since $s:literal) => { [Some($s), Some($s)] };
    (@minor _) => { None };
    (@minor $m:literal) => { Some($m) };
}
