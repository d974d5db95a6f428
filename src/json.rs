//! Strict JSON: the one way this crate reads JSON it did not just build in memory.
//!
//! Owns the rules docs/spec.md § 1.1 sets for every JSON text treaty reads from a repository,
//! a file a user names, or a network peer: UTF-8 without a byte order mark, exactly one
//! RFC 8259 value surrounded only by JSON whitespace, no object with two members of the same
//! name (compared after unescaping, so `"status"` and `"st\u0061tus"` collide), and at most
//! [`MAX_DEPTH`] nested arrays and objects.
//!
//! Why a module of its own: `serde_json` silently keeps the *last* of two equal keys, while
//! other readers (a reviewer's eye, a web UI, a Python verifier with a different hook) may
//! keep the first. A signed file that reads `"status": "revoked"` to one reader and
//! `"status": "active"` to another is approved for two meanings at once, so a duplicate key is
//! refused everywhere, before any typed parsing sees the value. `serde_json::from_slice` and
//! friends are disallowed by `clippy.toml` outside this module, so a new reader cannot skip it.
//!
//! Typed parsing goes through a [`serde_json::Value`] first (built by our own visitor, which is
//! where duplicates and depth are caught) and then `T::deserialize(value)`.
//!
//! Layer: base. It imports nothing from this crate.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Arrays and objects nested deeper than this are refused. Our own documents nest five or six
/// levels; the bound keeps a hostile file from costing stack or time before anything checks it.
pub const MAX_DEPTH: usize = 64;

/// Why a JSON text was refused. Every variant that comes from a position in the text carries
/// its 1-based line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    #[error("starts with a UTF-8 byte order mark; JSON here is UTF-8 without one")]
    ByteOrderMark,
    #[error(
        "line {line}, column {column}: duplicate key {key:?} (a key may appear once per object)"
    )]
    DuplicateKey {
        /// The key after unescaping.
        key: String,
        line: usize,
        column: usize,
    },
    #[error("line {line}, column {column}: nested deeper than {MAX_DEPTH} arrays and objects")]
    TooDeep { line: usize, column: usize },
    #[error("not valid JSON: {message}")]
    Syntax {
        /// serde_json's message, which already names the line and column.
        message: String,
        line: usize,
        column: usize,
    },
    /// Valid JSON of the wrong shape for the type asked for (missing field, wrong type, …).
    #[error("{0}")]
    Shape(String),
}

impl JsonError {
    /// The 1-based line of the problem, when it has one.
    pub fn line(&self) -> Option<usize> {
        match self {
            JsonError::DuplicateKey { line, .. }
            | JsonError::TooDeep { line, .. }
            | JsonError::Syntax { line, .. } => Some(*line),
            JsonError::ByteOrderMark => Some(1),
            JsonError::Shape(_) => None,
        }
    }

    /// The 1-based column of the problem, when it has one.
    pub fn column(&self) -> Option<usize> {
        match self {
            JsonError::DuplicateKey { column, .. }
            | JsonError::TooDeep { column, .. }
            | JsonError::Syntax { column, .. } => Some(*column),
            JsonError::ByteOrderMark => Some(1),
            JsonError::Shape(_) => None,
        }
    }

    /// Is this a repeated object key? Verification reports those under their own finding code,
    /// because they are the signature of an attempt to show signers one meaning and verifiers
    /// another.
    pub fn is_duplicate_key(&self) -> bool {
        matches!(self, JsonError::DuplicateKey { .. })
    }
}

/// What the visitor found wrong that serde_json's error type cannot carry: the visitor records
/// it here and returns a placeholder error, whose position serde_json then fills in.
enum Problem {
    Duplicate(String),
    TooDeep,
}

/// Parses `bytes` as one strict JSON value (see the module doc).
pub fn parse_value(bytes: &[u8]) -> Result<Value, JsonError> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(JsonError::ByteOrderMark);
    }
    let problem = Cell::new(None);
    // The one sanctioned use of serde_json's reader (clippy.toml disallows it elsewhere): the
    // visitor below is what makes it strict. serde_json's own recursion limit (128) stays on as
    // a second fence behind MAX_DEPTH.
    #[allow(clippy::disallowed_methods)]
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let seed = Strict {
        depth: 0,
        problem: &problem,
    };
    let value = seed.deserialize(&mut de).and_then(|v| {
        // Only whitespace may follow the value.
        de.end().map(|()| v)
    });
    value.map_err(|e| {
        let (line, column) = (e.line(), e.column());
        match problem.take() {
            Some(Problem::Duplicate(key)) => JsonError::DuplicateKey { key, line, column },
            Some(Problem::TooDeep) => JsonError::TooDeep { line, column },
            None => JsonError::Syntax {
                message: e.to_string(),
                line,
                column,
            },
        }
    })
}

/// Parses `bytes` strictly, then into `T`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    let v = parse_value(bytes)?;
    from_value(v)
}

/// [`from_slice`] for text.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, JsonError> {
    from_slice(text.as_bytes())
}

/// Converts an already strictly parsed value into `T`. (A [`Value`] cannot hold a duplicate
/// key, so this adds no risk; it only maps the error.)
pub fn from_value<T: DeserializeOwned>(v: Value) -> Result<T, JsonError> {
    serde_json::from_value(v).map_err(|e| JsonError::Shape(e.to_string()))
}

/// [`from_slice`] for a type whose structs must be JSON objects (docs/spec.md § 4, § 9.2):
/// serde reads a struct from an array too, positionally (`["1.0", "ord-1", …]` as an order),
/// which no other reader of the format does. The value read is written back and compared with
/// the input: an array where the type has an object is refused, at its JSON pointer.
pub fn from_slice_objects<T: DeserializeOwned + serde::Serialize>(
    bytes: &[u8],
) -> Result<T, JsonError> {
    let v = parse_value(bytes)?;
    let t: T = from_value(v.clone())?;
    let back = serde_json::to_value(&t).map_err(|e| JsonError::Shape(e.to_string()))?;
    match array_for_object(&v, &back) {
        Some(at) => Err(JsonError::Shape(format!(
            "{}: an array where an object is expected",
            if at.is_empty() { "/" } else { &at }
        ))),
        None => Ok(t),
    }
}

/// The pointer of the first place `input` holds an array where `typed` (the same value read
/// into a type and written back) holds an object.
fn array_for_object(input: &Value, typed: &Value) -> Option<String> {
    // Iterative (a hostile value cannot overflow the stack): (input, typed, pointer).
    let mut stack = vec![(input, typed, String::new())];
    while let Some((a, b, at)) = stack.pop() {
        match (a, b) {
            (Value::Array(_), Value::Object(_)) => return Some(at),
            (Value::Object(x), Value::Object(y)) => {
                for (k, yv) in y {
                    if let Some(xv) = x.get(k) {
                        stack.push((xv, yv, format!("{at}/{k}")));
                    }
                }
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (xv, yv)) in x.iter().zip(y).enumerate() {
                    stack.push((xv, yv, format!("{at}/{i}")));
                }
            }
            _ => {}
        }
    }
    None
}

/// For an optional member that, when present, must have its type (docs/spec.md § 1.1):
/// `#[serde(default, deserialize_with = "crate::json::present")]` on an `Option<T>`.
///
/// serde reads `null` for an `Option` as `None`, so `"expires": null` would mean "no expiry"
/// to us and "malformed" to a verifier that follows the spec. Absent stays `None` (through
/// `default`); present must be a `T`.
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: de::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// The seed that builds a [`Value`] one level down, refusing repeats and excess depth.
#[derive(Clone, Copy)]
struct Strict<'p> {
    /// How many arrays and objects enclose the value being read.
    depth: usize,
    problem: &'p Cell<Option<Problem>>,
}

impl Strict<'_> {
    fn child(self) -> Self {
        Strict {
            depth: self.depth + 1,
            ..self
        }
    }

    fn refuse<E: de::Error>(self, p: Problem) -> E {
        let msg = match &p {
            Problem::Duplicate(k) => format!("duplicate key {k:?}"),
            Problem::TooDeep => format!("nested deeper than {MAX_DEPTH}"),
        };
        self.problem.set(Some(p));
        E::custom(msg)
    }

    /// Entering an array or object at this seed's level: is there room?
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        if self.depth >= MAX_DEPTH {
            Err(self.refuse(Problem::TooDeep))
        } else {
            Ok(self.child())
        }
    }
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite float from text, so `from_f64` cannot fail
        // here; Null is only a fallback that keeps this function total.
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(inner)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut out = Map::new();
        // Keys arrive unescaped, so two spellings of one name are caught as the repeat they
        // are. The check comes before the value is read, so the error points at the key.
        while let Some(k) = map.next_key::<String>()? {
            if out.contains_key(&k) {
                return Err(self.refuse(Problem::Duplicate(k)));
            }
            let v = map.next_value_seed(inner)?;
            out.insert(k, v);
        }
        Ok(Value::Object(out))
    }
}

/// Pretty JSON with a trailing newline: how every governance file treaty writes is laid out,
/// so the same value always gives the same bytes.
pub fn pretty_bytes<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dup(text: &str) -> (String, usize, usize) {
        match parse_value(text.as_bytes()) {
            Err(JsonError::DuplicateKey { key, line, column }) => (key, line, column),
            other => panic!("{text}: expected a duplicate key, got {other:?}"),
        }
    }

    #[test]
    fn a_repeated_top_level_key_is_refused_naming_the_key_and_line() {
        let (key, line, _) = dup("{\n  \"status\": \"revoked\",\n  \"status\": \"active\"\n}");
        assert_eq!(key, "status");
        assert_eq!(line, 3);
    }

    #[test]
    fn the_same_key_in_different_objects_is_honest() {
        let v = parse_value(br#"{"a": {"status": 1}, "b": {"status": 2}, "status": [{"status": 3}, {"status": 4}]}"#)
            .unwrap();
        assert_eq!(v["b"]["status"], 2);
        assert_eq!(v["status"][1]["status"], 4);
    }

    #[test]
    fn a_repeated_key_nested_deep_inside_arrays_is_refused() {
        let (key, _, _) = dup(r#"{"a": [1, {"b": [{"c": 1, "c": 2}]}]}"#);
        assert_eq!(key, "c");
    }

    #[test]
    fn keys_that_differ_only_by_escape_form_are_the_same_key() {
        assert_eq!(dup(r#"{"status": 1, "st\u0061tus": 2}"#).0, "status");
        assert_eq!(dup(r#"{"a\/b": 1, "a/b": 2}"#).0, "a/b");
        assert_eq!(dup(r#"{"\u00e9": 1, "é": 2}"#).0, "é");
    }

    #[test]
    fn keys_that_are_different_strings_are_distinct_even_if_they_look_alike() {
        // NFC "é" and NFD "e\u0301" are different JSON strings: RFC 8259 compares code units.
        let v = parse_value(
            "{\"\u{e9}\": 1, \"e\u{301}\": 2, \"Status\": 3, \"status\": 4}".as_bytes(),
        )
        .unwrap();
        assert_eq!(v.as_object().unwrap().len(), 4);
    }

    #[test]
    fn a_byte_order_mark_is_refused_and_the_same_text_without_it_parses() {
        assert_eq!(
            parse_value(b"\xEF\xBB\xBF{\"a\": 1}"),
            Err(JsonError::ByteOrderMark)
        );
        assert!(parse_value(b"{\"a\": 1}").is_ok());
    }

    #[test]
    fn only_json_whitespace_may_surround_the_value() {
        assert!(parse_value(b" \t\r\n{\"a\": 1} \n").is_ok());
        for bad in [
            &b"{\"a\": 1} x"[..],
            b"{\"a\": 1}{}",
            b"\x0c{}",
            b"\xC2\xA0{}",
            b"",
        ] {
            assert!(
                matches!(parse_value(bad), Err(JsonError::Syntax { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn non_json_number_forms_and_bad_strings_are_refused() {
        for bad in [
            "NaN",
            "Infinity",
            "-Infinity",
            "01",
            "+1",
            ".5",
            "1.",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "\"\t\"",
            "'a'",
        ] {
            assert!(parse_value(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_value("\"\\ud83d\\ude00\"".as_bytes()).is_ok());
    }

    #[test]
    fn nesting_is_bounded_at_max_depth() {
        let ok = "[".repeat(MAX_DEPTH) + &"]".repeat(MAX_DEPTH);
        assert!(parse_value(ok.as_bytes()).is_ok());
        let deep = "[".repeat(MAX_DEPTH + 1) + &"]".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            parse_value(deep.as_bytes()),
            Err(JsonError::TooDeep { line: 1, .. })
        ));
        let objects = "{\"a\":".repeat(MAX_DEPTH + 1) + "1" + &"}".repeat(MAX_DEPTH + 1);
        assert!(matches!(
            parse_value(objects.as_bytes()),
            Err(JsonError::TooDeep { .. })
        ));
        // Far deeper than serde_json's own limit: still our error, never a stack overflow.
        let huge = "[".repeat(100_000);
        assert!(parse_value(huge.as_bytes()).is_err());
    }

    #[test]
    fn typed_parsing_refuses_duplicates_before_the_type_sees_them() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            status: String,
        }
        let e = from_slice::<T>(br#"{"status": "revoked", "status": "active"}"#).unwrap_err();
        assert!(e.is_duplicate_key(), "{e}");
        assert_eq!(e.line(), Some(1));
        assert!(from_slice::<T>(br#"{"status": "active"}"#).is_ok());
        assert!(matches!(
            from_slice::<T>(br#"{"status": 1}"#),
            Err(JsonError::Shape(_))
        ));
    }

    #[test]
    fn an_optional_member_may_be_absent_but_not_null() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[serde(default, deserialize_with = "present")]
            expires: Option<String>,
        }
        assert_eq!(from_slice::<T>(b"{}").unwrap().expires, None);
        assert_eq!(
            from_slice::<T>(br#"{"expires": "x"}"#)
                .unwrap()
                .expires
                .as_deref(),
            Some("x")
        );
        assert!(from_slice::<T>(br#"{"expires": null}"#).is_err());
        assert!(from_slice::<T>(br#"{"expires": 1}"#).is_err());
    }

    #[test]
    fn numbers_keep_their_json_kind() {
        let v =
            parse_value(br#"[1, -1, 1.0, 1e0, -0, 18446744073709551615, 18446744073709551616]"#)
                .unwrap();
        assert!(v[0].is_u64());
        assert!(v[1].is_i64());
        // Fractions, exponents, -0 and integers past u64 are floats: never a u64 version.
        for i in 2..=4 {
            assert!(v[i].is_f64(), "{i}");
        }
        assert_eq!(v[5].as_u64(), Some(u64::MAX));
        assert!(v[6].is_f64());
    }
}
