//! The TEMP-STUB guard: markers that must not reach protected paths.
//!
//! Owns marker normalisation. A line matches when, after Unicode compatibility normalisation
//! (NFKC), case folding, removal of zero-width and format characters, and removal of
//! separators (`-`, `_`, spaces, dots and every dash-like character), it contains the marker
//! normalised the same way, not followed by a letter or digit. So `TEMP-STUB`, `temp_stub`,
//! `TEMP STUB`, `TempStub`, `ＴＥＭＰ－ＳＴＵＢ` (fullwidth), `TEMP‐STUB` (U+2010) and
//! `TEMP\u{200B}-STUB` all match; `TEMPLATE STUBBORN` does not.

use unicode_normalization::UnicodeNormalization;

fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}')
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '_' | '.' | '\u{2010}'
                ..='\u{2015}'
                    | '\u{2212}'
                    | '\u{2043}'
                    | '\u{FE58}'
                    | '\u{FE63}'
                    | '\u{FF0D}'
                    | '\u{30FC}'
                    | '\u{2E3A}'
                    | '\u{2E3B}'
        )
}

/// Normalises text for marker matching (see the module doc).
pub fn normalise(s: &str) -> String {
    folded(s).0.into_iter().collect()
}

/// The normalised characters, and for each whether a separator followed it in the input.
fn folded(s: &str) -> (Vec<char>, Vec<bool>) {
    let mut kept = Vec::new();
    let mut sep_after = Vec::new();
    for c in s
        .nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| !is_invisible(*c))
    {
        if is_separator(c) {
            if let Some(last) = sep_after.last_mut() {
                *last = true;
            }
        } else {
            kept.push(c);
            sep_after.push(false);
        }
    }
    (kept, sep_after)
}

/// Does `line` contain any of the (already normalised) `markers`, ending at a word boundary
/// (a separator, a non-alphanumeric character, or the end of the line)?
pub fn line_has_marker(line: &str, markers: &[String]) -> bool {
    let (kept, sep_after) = folded(line);
    markers.iter().any(|m| {
        let m: Vec<char> = m.chars().collect();
        !m.is_empty()
            && kept.windows(m.len()).enumerate().any(|(i, w)| {
                let end = i + m.len();
                w == m.as_slice()
                    && (sep_after[end - 1] || kept.get(end).is_none_or(|c| !c.is_alphanumeric()))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> bool {
        line_has_marker(s, &[normalise("TEMP-STUB")])
    }

    #[test]
    fn obvious_evasions_are_caught() {
        for s in [
            "// TEMP-STUB: remove before release",
            "temp_stub()",
            "TEMP STUB",
            "TempStub",
            "tempstub",
            "ＴＥＭＰ－ＳＴＵＢ",
            "TEMP\u{2010}STUB",
            "TEMP\u{2014}STUB",
            "TEMP\u{200B}-STUB",
            "T\u{200D}EMP-S\u{FEFF}TUB",
            "TEMP - STUB",
            "x = 1 # temp.stub",
            "// TEMP-STUB tracked elsewhere",
            "TEMP-STUB overdue",
        ] {
            assert!(m(s), "{s:?}");
        }
    }

    #[test]
    fn ordinary_words_are_not_markers() {
        for s in [
            "TEMPLATE STUBBORN",
            "temperature stub",
            "a stub",
            "temp-stubs2x",
            "attempts tub",
        ] {
            assert!(!m(s), "{s:?}");
        }
    }
}
