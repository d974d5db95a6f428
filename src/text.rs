//! Untrusted text made safe to show a person: the one rule for which characters may not reach
//! a terminal (or a log, or a rendered summary) as themselves.
//!
//! Almost every string treaty prints came from someone who is not the person reading it: file
//! names and contents in a governance repository (unsigned until proven otherwise), ref names
//! and commit messages, files a user passes, answers from time-stamping authorities and git
//! remotes. A control character in such a string is not text but an instruction to the
//! terminal: `\x1b[2J` clears the screen, `\r` returns to the start of the line, `\n` starts a
//! line the attacker writes (`result: APPROVED`), a bidi override reorders what is shown. So
//! every such character is shown as a visible escape instead (`\n`, `\u{1b}`, `\u{202e}`), and
//! every other character, printable Unicode included, is left alone.
//!
//! Backslashes are left alone too, so escaping is idempotent: text escaped once (a finding's
//! Display) and again at the terminal (the CLI's output sink) reads the same. The price is that
//! a literal backslash-n in a name looks like an escaped newline; it still cannot act as one.

use std::borrow::Cow;
use std::fmt;

/// Whether `c` must not reach a terminal as itself: every control character (C0 with `\n`,
/// `\r`, `\t` and ESC, DEL, C1 `U+0080`–`U+009F`: Unicode category Cc), every format character
/// (category Cf: the `Bidi_Control` marks, embeddings, overrides and isolates of "Trojan
/// Source", CVE-2021-42574, and the zero-width and tag characters), every other
/// `Default_Ignorable_Code_Point` (soft hyphen, variation selectors, fillers: characters that
/// draw nothing, so two different strings look alike), and the line and paragraph separators
/// `U+2028`/`U+2029`, which some terminals and viewers break lines at.
pub fn is_unsafe(c: char) -> bool {
    use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
    use icu_properties::{CodePointMapData, CodePointSetData};
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    // Variation selectors only pick a glyph for the character before them (the emoji form of
    // ⚠️): they cannot make two different names look alike, and escaping them would mangle
    // ordinary text.
    if matches!(c, '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}') {
        return false;
    }
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}')
        || CodePointMapData::<GeneralCategory>::new().get(c) == GeneralCategory::Format
        || CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
}

/// `s` with every [unsafe](is_unsafe) character replaced by its Rust escape (`\n`, `\t`,
/// `\u{1b}`); borrowed when there is none, which is almost always.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    // Writing to a String cannot fail.
    let _ = escape_into(&mut out, s);
    Cow::Owned(out)
}

/// Writes `s` to `w` with every [unsafe](is_unsafe) character escaped.
pub fn escape_into<W: fmt::Write + ?Sized>(w: &mut W, s: &str) -> fmt::Result {
    let mut rest = s;
    while let Some(i) = rest.find(is_unsafe) {
        w.write_str(&rest[..i])?;
        let c = rest[i..].chars().next().unwrap_or_default();
        for e in c.escape_default() {
            w.write_char(e)?;
        }
        rest = &rest[i + c.len_utf8()..];
    }
    w.write_str(rest)
}

/// Displays `T` with every [unsafe](is_unsafe) character of its output escaped, without
/// building the unescaped string first: `format!("{}", Escaped(&path.display()))`.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<T>(pub T);

impl<T: fmt::Display> fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct W<'a, 'b>(&'a mut fmt::Formatter<'b>);
        impl fmt::Write for W<'_, '_> {
            fn write_str(&mut self, s: &str) -> fmt::Result {
                escape_into(self.0, s)
            }
        }
        fmt::write(&mut W(f), format_args!("{}", self.0))
    }
}

/// The longest prefix of `s` of at most `max_bytes` bytes that ends on a character boundary:
/// text from a peer is bounded before it is echoed in an answer or a record.
pub fn clip(s: &str, max_bytes: usize) -> &str {
    if s.len() <= max_bytes {
        return s;
    }
    let end = (0..=max_bytes)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0);
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_bidi_and_separators_become_visible_escapes() {
        assert_eq!(
            escape("a\x1b[2J\nresult: APPROVED\r\t\0\x7f\u{9b}b"),
            r"a\u{1b}[2J\nresult: APPROVED\r\t\u{0}\u{7f}\u{9b}b"
        );
        assert_eq!(
            escape("x\u{202e}y\u{2066}z\u{2069}\u{200f}\u{061c}\u{2028}\u{2029}"),
            r"x\u{202e}y\u{2066}z\u{2069}\u{200f}\u{61c}\u{2028}\u{2029}"
        );
        // Characters that draw nothing: two names that differ only by them look identical.
        assert_eq!(
            escape("did:web:a\u{200b}b\u{2060}c\u{feff}d\u{ad}e\u{e0041}f\u{200d}g"),
            r"did:web:a\u{200b}b\u{2060}c\u{feff}d\u{ad}e\u{e0041}f\u{200d}g"
        );
    }

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        for s in [
            "",
            "treaties/AURORA-AKASH-001.json",
            "é€😀 ✅ ⚠️ → ß",
            r"a\nb \u{1b}",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s), "{s}");
        }
    }

    #[test]
    fn escaping_is_idempotent() {
        let once = escape("\x1b]0;title\x07\n\u{202e}").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn every_unsafe_character_is_escaped_and_nothing_unsafe_survives() {
        for c in (0u32..0x3000).filter_map(char::from_u32) {
            let s = c.to_string();
            let e = escape(&s);
            assert!(!e.chars().any(is_unsafe), "{c:?} -> {e:?}");
            assert_eq!(is_unsafe(c), e != s, "{c:?}");
        }
    }

    #[test]
    fn escaped_wraps_any_display() {
        let p = std::path::PathBuf::from("dir/\x1b[31mred\n");
        assert_eq!(format!("{}", Escaped(p.display())), r"dir/\u{1b}[31mred\n");
    }
}
