//! The no-op classifier as it was before issue 13 (class 2), kept verbatim as the benchmark's
//! baseline so that `treaty bench noop --corpus` measures before and after in the same run on
//! the same commits. Not used by the gate.

/// Comment syntax of a file, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Syntax {
    /// `//` and `/* */`
    CLike,
    /// `#`
    Hash,
    None,
}

fn syntax(path: &str) -> Syntax {
    let ext = path.rsplit('.').next().unwrap_or("");
    match ext {
        "rs" | "go" | "js" | "mjs" | "cjs" | "ts" | "tsx" | "jsx" | "c" | "h" | "cc" | "cpp"
        | "hpp" | "java" | "kt" | "swift" => Syntax::CLike,
        "py" | "sh" | "bash" | "zsh" | "toml" | "yml" | "yaml" | "rb" | "pl" => Syntax::Hash,
        _ if path.ends_with("Makefile") || path.ends_with("Dockerfile") => Syntax::Hash,
        _ => Syntax::None,
    }
}

/// Removes comments (outside string and character literals) and all whitespace. Returns
/// `None` when the text does not lex cleanly (an unterminated string or block comment): then
/// the caller must treat the change as real.
fn strip(text: &str, syn: Syntax) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    while i < n {
        let c = chars[i];
        let prev_ident = i > 0 && ident(chars[i - 1]);
        // Rust raw strings: r"…", r#"…"#, br#"…"# (the quote content is kept verbatim).
        if syn == Syntax::CLike && c == 'r' && !prev_ident {
            let mut j = i + 1;
            while j < n && chars[j] == '#' {
                j += 1;
            }
            if j < n && chars[j] == '"' {
                let hashes = j - i - 1;
                let mut k = j + 1;
                let end = loop {
                    if k >= n {
                        return None;
                    }
                    if chars[k] == '"' && (0..hashes).all(|h| chars.get(k + 1 + h) == Some(&'#')) {
                        break k + 1 + hashes;
                    }
                    k += 1;
                };
                out.extend(chars[i..end].iter().filter(|c| !c.is_whitespace()));
                i = end;
                continue;
            }
        }
        // Character literals ('x', '\n', '"'); a lone quote is a lifetime or label.
        if syn == Syntax::CLike && c == '\'' {
            let len = if chars.get(i + 1) == Some(&'\\') {
                (i + 2..n.min(i + 12))
                    .find(|&k| chars[k] == '\'')
                    .map(|k| k + 1 - i)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(3)
            } else {
                None
            };
            if let Some(len) = len {
                out.extend(&chars[i..i + len]);
                i += len;
                continue;
            }
        }
        match (syn, c, chars.get(i + 1).copied()) {
            (Syntax::CLike, '/', Some('/')) | (Syntax::Hash, '#', _) => {
                while i < n && chars[i] != '\n' {
                    i += 1;
                }
                continue;
            }
            (Syntax::CLike, '/', Some('*')) => {
                i += 2;
                while i + 1 < n && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                if i + 1 >= n {
                    return None;
                }
                i += 2;
                continue;
            }
            (_, '"', _) | (Syntax::Hash, '\'', _) | (Syntax::CLike, '`', _) => {
                // A string literal, kept verbatim (whitespace inside strings is content).
                let q = c;
                out.push(c);
                i += 1;
                loop {
                    if i >= n {
                        return None;
                    }
                    let d = chars[i];
                    out.push(d);
                    i += 1;
                    if d == '\\' && i < n {
                        out.push(chars[i]);
                        i += 1;
                    } else if d == q {
                        break;
                    }
                }
                continue;
            }
            _ => {}
        }
        if !c.is_whitespace() {
            out.push(c);
        }
        i += 1;
    }
    Some(out)
}

fn squash(b: &[u8]) -> Vec<u8> {
    b.iter()
        .copied()
        .filter(|c| !c.is_ascii_whitespace())
        .collect()
}

/// Are `old` and `new` (the same file at base and head) equivalent?
pub fn equivalent(path: &str, old: &[u8], new: &[u8]) -> bool {
    if old == new || squash(old) == squash(new) {
        return true;
    }
    let (Ok(a), Ok(b)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else {
        return false;
    };
    // The baseline is the old classifier word for word, lax JSON reader included: it is what
    // the benchmark measures the new one against.
    #[allow(clippy::disallowed_methods)]
    if path.ends_with(".json") || path.ends_with(".sig") {
        if let (Ok(x), Ok(y)) = (
            serde_json::from_str::<serde_json::Value>(a),
            serde_json::from_str::<serde_json::Value>(b),
        ) {
            return json_eq(&x, &y);
        }
    }
    if path.ends_with(".toml") {
        if let (Ok(x), Ok(y)) = (
            toml::from_str::<toml::Table>(a),
            toml::from_str::<toml::Table>(b),
        ) {
            return x == y;
        }
    }
    let syn = syntax(path);
    if syn == Syntax::None {
        return false;
    }
    match (strip(a, syn), strip(b, syn)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// JSON equality with objects compared as maps (order-insensitive), arrays in order.
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value::*;
    match (a, b) {
        (Object(x), Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| json_eq(v, w)),
        _ => a == b,
    }
}
