//! Terminal styling: colour only on a terminal and only when `NO_COLOR` is unset.

use std::io::IsTerminal;

pub struct Style {
    on: bool,
}

impl Style {
    pub fn stdout() -> Self {
        Self {
            on: std::io::stdout().is_terminal()
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    }
    pub fn good(&self, s: &str) -> String {
        self.paint("32", s)
    }
    pub fn bad(&self, s: &str) -> String {
        self.paint("31;1", s)
    }
    pub fn warn(&self, s: &str) -> String {
        self.paint("33", s)
    }
    pub fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }

    /// Prints a finding, indented, red for errors and yellow for warnings.
    pub fn finding(&self, indent: &str, f: &crate::diag::Finding) {
        let line = format!("{indent}{f}").replace('\n', &format!("\n{indent}"));
        println!(
            "{}",
            if f.is_error() {
                self.bad(&line)
            } else {
                self.warn(&line)
            }
        );
    }
}
