// The no-op guard's classifier (`treaty::gate::noop`, issue 13 class 2): judging any pair of
// texts never panics, is reflexive and symmetric; and, whatever a string literal holds (comment
// openers `//`, `/*`, `*/`, `#`, heredoc markers, spaces), a change of code after it, or of the
// literal itself, is never a no-op in any language the guard lexes.
//
// Shared by the fuzz target (`fuzz/fuzz_targets/noop.rs`) and by the test that replays the
// committed corpus in CI (`tests/it/fuzz_corpus.rs`): one property, two drivers.

use treaty::gate::noop::equivalent;

const PATHS: [&str; 11] = [
    "x.rs", "x.go", "x.js", "x.c", "x.java", "x.py", "x.sh", "x.yaml", "x.json", "x.toml", "x.md",
];

/// A program in the language of `path` holding `content` in a string literal, then `n`.
fn program(path: &str, content: &str, n: u32) -> String {
    match path {
        "x.rs" => format!("let s = \"{content}\";\nlet n = {n};\n"),
        "x.go" => format!("package a\nvar s = \"{content}\"\nvar n = {n}\n"),
        "x.js" => format!("const s = '{content}';\nconst n = {n};\n"),
        "x.c" | "x.java" => format!("char *s = \"{content}\"; int n = {n};\n"),
        "x.py" => format!("s = '{content}'\nn = {n}\n"),
        "x.sh" => format!("s='{content}'\nn={n}\n"),
        "x.yaml" => format!("s: '{content}'\nn: {n}\n"),
        "x.json" => format!("{{\"s\": \"{content}\", \"n\": {n}}}"),
        "x.toml" => format!("s = '{content}'\nn = {n}\n"),
        _ => format!("{content} {n}\n"),
    }
}

/// Panics when the property does not hold for `data`.
pub fn check(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let path = PATHS[sel as usize % PATHS.len()];
    let (a, b) = match rest.iter().position(|&x| x == 0xff) {
        Some(k) => (&rest[..k], &rest[k + 1..]),
        None => (rest, rest),
    };
    assert_eq!(equivalent(path, a, b), equivalent(path, b, a), "{path}: not symmetric");
    assert!(equivalent(path, a, a), "{path}: not reflexive");
    let text = String::from_utf8_lossy(a);
    let content: String = text
        .chars()
        .filter(|c| !matches!(c, '"' | '\'' | '\\' | '\n' | '\r' | '\t') && !c.is_control())
        .take(60)
        .collect();
    let base = program(path, &content, 1);
    for other in [program(path, &content, 2), program(path, &format!("{content}x"), 1)] {
        assert!(
            !equivalent(path, base.as_bytes(), other.as_bytes()),
            "{path}: {base:?} -> {other:?} judged a no-op"
        );
    }
}
