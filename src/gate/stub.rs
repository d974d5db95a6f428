//! The TEMP-STUB guard: markers that must not reach protected paths.
//!
//! Owns marker normalisation, built on Unicode's own data rather than a hand list (issue 13,
//! class 1e). A line is folded character by character:
//! 1. Unicode compatibility normalisation (NFKC): fullwidth, superscript and other compatibility
//!    forms become their plain letters;
//! 2. every `Default_Ignorable_Code_Point` (zero-width spaces and joiners, soft hyphens, bidi
//!    and variation selectors, Hangul fillers, tags …) is dropped;
//! 3. every character with the `Dash` property (U+2010–2015, U+2212 MINUS, U+FE63, U+30FC …),
//!    every white space, `_` and `.` is a *separator*: dropped, but remembered as a boundary;
//! 4. what is left is mapped to its UTS #39 confusable skeleton (Cyrillic `ТЕМР` → `TEMP`,
//!    Greek `Τ` → `T`) and lower-cased, then mapped again (so a look-alike of either case folds).
//!
//! A line matches when its folded text contains the folded marker, not followed by a letter or
//! digit. So `TEMP-STUB`, `temp_stub`, `TEMP STUB`, `TempStub`, `ＴＥＭＰ－ＳＴＵＢ`,
//! `TEMP‐STUB` (U+2010), `TEMP\u{200B}-STUB` and `ТЕМР-ЅТUВ` (Cyrillic) all match;
//! `TEMPLATE STUBBORN` does not. The properties come from ICU4X's compiled Unicode data and the
//! skeletons from `unicode-security`'s copy of `confusables.txt`.

use icu_properties::props::{Dash, DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_normalization::UnicodeNormalization;

/// Dropped: every `Default_Ignorable_Code_Point`, and every character of the general categories
/// that draw nothing of their own or only decorate a letter — nonspacing and enclosing marks
/// (`TE\u{301}MP`), format and control characters (U+FFF9, U+0600, DEL).
fn is_ignorable(c: char) -> bool {
    CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c)
        || matches!(
            CodePointMapData::<GeneralCategory>::new().get(c),
            GeneralCategory::NonspacingMark
                | GeneralCategory::EnclosingMark
                | GeneralCategory::Format
                | GeneralCategory::Control
        )
}

/// Separators: white space, every `Dash=Yes` character, every connector punctuation (`_`,
/// `‿`, `＿` …), `.` and the middle dots that read as one.
fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '.' | '\u{00B7}'
                | '\u{0387}'
                | '\u{2027}'
                | '\u{2219}'
                | '\u{22C5}'
                | '\u{30FB}'
                | '\u{FF65}'
        )
        || CodePointSetData::new::<Dash>().contains(c)
        || CodePointMapData::<GeneralCategory>::new().get(c)
            == GeneralCategory::ConnectorPunctuation
}

/// One character's skeleton, lower-cased, skeleton again: the letters it stands for.
fn fold_char(c: char, out: &mut Vec<char>) {
    let mut buf = [0u8; 4];
    let once: String = unicode_security::skeleton(c.encode_utf8(&mut buf))
        .flat_map(char::to_lowercase)
        .collect();
    for d in unicode_security::skeleton(&once) {
        if !is_ignorable(d) {
            out.push(d);
        }
    }
}

/// Normalises text for marker matching (see the module doc).
pub fn normalise(s: &str) -> String {
    folded(s).0.into_iter().collect()
}

/// The folded characters, and for each whether a separator followed it in the input.
fn folded(s: &str) -> (Vec<char>, Vec<bool>) {
    let mut kept = Vec::new();
    let mut sep_after = Vec::new();
    let mut buf = Vec::with_capacity(4);
    for c in s.nfkc().filter(|c| !is_ignorable(*c)) {
        if is_separator(c) {
            if let Some(last) = sep_after.last_mut() {
                *last = true;
            }
            continue;
        }
        buf.clear();
        fold_char(c, &mut buf);
        for &d in &buf {
            // A skeleton can itself contain a separator (a look-alike of a hyphen).
            if is_separator(d) {
                if let Some(last) = sep_after.last_mut() {
                    *last = true;
                }
            } else {
                kept.push(d);
                sep_after.push(false);
            }
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
            // Whole Unicode classes, not a list: every Dash=Yes character as the hyphen …
            "TEMP\u{2212}STUB",
            "TEMP\u{FE63}STUB",
            "TEMP\u{2E40}STUB",
            "TEMP\u{301C}STUB",
            "TEMP\u{058A}STUB",
            "TEMP\u{1400}STUB",
            // … every Default_Ignorable_Code_Point inside the word …
            "TE\u{2064}MP-STUB",
            "TEMP-ST\u{E0041}UB",
            "TEMP-S\u{180E}TUB",
            "T\u{115F}EMP-STUB",
            // … compatibility forms, and confusable look-alikes (Cyrillic, Greek, Cherokee).
            "\u{1D413}\u{1D404}\u{1D40C}\u{1D40F}-STUB",
            "\u{0422}\u{0415}\u{041C}\u{0420}-\u{0405}\u{0422}U\u{0412}",
            "\u{03A4}\u{0395}\u{039C}\u{03A1}_STUB",
            "TEMP-\u{13DA}TUB",
            "temp-\u{0455}tub",
            // Marks over letters, format and control characters, connector punctuation and
            // middle dots (the second red team's inputs).
            "TE\u{0301}MP-STUB",
            "TEMP-ST\u{0323}UB",
            "TEMP-S\u{0336}TUB",
            "TEMP-STUB\u{0363}",
            "TE\u{FFF9}MP-STUB",
            "TEMP\u{0600}-STUB",
            "TE\u{7f}MP-STUB",
            "TEMP\u{00B7}STUB",
            "TEMP\u{2027}STUB",
            "TEMP\u{30FB}STUB",
            "TEMP\u{203F}STUB",
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
