//! Every byte the `treaty` command line writes for a person goes through here: [`say!`] for a
//! line on stdout, [`tell!`] for a line on stderr. Machine formats (JSON, SARIF, workflow
//! commands) go through [`json`] and [`raw`], whose own encodings escape what they carry.
//!
//! Why one sink rather than care at each `println!`: nearly everything printed interpolates
//! something an attacker may have written (a file name, a treaty id, a ref, a certificate's
//! name, an error quoting any of those), and a format string cannot tell our layout from their
//! data. So the sink escapes *every* control character of the whole line ([`treaty::text`]),
//! newlines included: one `say!` is one line on the screen, whatever its arguments contain, and
//! a fake `result: APPROVED` line or a cleared screen cannot be printed by anything but our own
//! format strings, one call per line. `clippy.toml` disallows `println!` and friends (and
//! `std::io::stdout`/`stderr`) everywhere else, so new output cannot bypass it by accident.
//!
//! Colour is the one escape sequence we write on purpose. It cannot be told apart from an
//! attacker's by looking at the text, so it is told apart by who writes it: only [`Painted`]'s
//! `Display` may, and only while the sink is formatting a line, which it announces through a
//! thread-local mode. Text inside a `Painted` is escaped like any other. A `Painted` formatted
//! anywhere else (`format!`) simply has no colour.

use std::cell::Cell;
use std::fmt;
use std::io::IsTerminal as _;

/// One line on stdout for a person: `say!("result: {}", s.good("APPROVED"))`. Every control
/// character the arguments produce is escaped ([`line()`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::stdout_line(::std::format_args!($($arg)*))
    };
}

/// One line on stderr for a person, escaped like [`say!`].
macro_rules! tell {
    ($($arg:tt)*) => {
        $crate::cli::output::stderr_line(::std::format_args!($($arg)*))
    };
}

pub(crate) use say;
pub(crate) use tell;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Not inside [`line()`]: a [`Painted`] writes no colour.
    Outside,
    /// [`line()`] is formatting: everything written is escaped.
    Escaping,
    /// A [`Painted`] is writing one of its colour codes: passed through.
    Colour,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Outside) };
}

/// Restores the mode even if a `Display` implementation panics mid-line.
struct ModeGuard(Mode);

impl ModeGuard {
    fn enter(m: Mode) -> Self {
        ModeGuard(MODE.replace(m))
    }
}

impl Drop for ModeGuard {
    fn drop(&mut self) {
        MODE.set(self.0);
    }
}

/// Formats one line of human output: every [unsafe](treaty::text::is_unsafe) character the
/// arguments produce is escaped, `\n` included, except the colour codes of a [`Painted`].
pub fn line(args: fmt::Arguments<'_>) -> String {
    struct Sink(String);
    impl fmt::Write for Sink {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            if MODE.get() == Mode::Colour {
                self.0.push_str(s);
                Ok(())
            } else {
                treaty::text::escape_into(&mut self.0, s)
            }
        }
    }
    let _mode = ModeGuard::enter(Mode::Escaping);
    let mut sink = Sink(String::new());
    // An error here comes from a Display implementation; keep what it wrote before it failed
    // (println! would panic).
    let _ = fmt::write(&mut sink, args);
    sink.0
}

/// Set once stdout's reader has gone away: later output is dropped.
static STDOUT_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Writes `text` to stdout and flushes it. A reader that went away (`treaty verify | head`) is
/// not an error and gets no message, as in ripgrep — but the command still runs to its end and
/// exits with its own verdict: a gatekeeper must never turn a closed pipe into a pass. Any other
/// failure (`> /dev/full`, an I/O error) is said once on stderr and exits 2 — the tool could not
/// deliver its answer. `println!` panics (exit 101) in both cases.
// The one place output reaches stdout.
#[allow(clippy::disallowed_methods)]
fn put_stdout(text: &str) {
    use std::io::Write as _;
    use std::sync::atomic::Ordering;
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            STDOUT_GONE.store(true, Ordering::Relaxed);
            return;
        }
        drop(out);
        let _ = writeln!(
            std::io::stderr(),
            "treaty: cannot write to standard output: {e}"
        );
        std::process::exit(2);
    }
}

/// Writes `text` to stderr; a failure there has nowhere left to be reported, and is ignored.
#[allow(clippy::disallowed_methods)]
fn put_stderr(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// `--quiet`: [`say!`] lines are dropped; findings ([`Style::finding`]), errors ([`tell!`]) and
/// machine formats still reach their stream.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// `--color`: 0 auto, 1 always, 2 never.
static COLOR: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// `--color auto|always|never`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour on a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it).
    Auto,
    Always,
    Never,
}

pub fn set_quiet(q: bool) {
    QUIET.store(q, std::sync::atomic::Ordering::Relaxed);
}

/// Whether `--quiet` was given (progress bars and "ok" lines stay silent).
pub fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn set_color(c: ColorChoice) {
    let v = match c {
        ColorChoice::Auto => 0,
        ColorChoice::Always => 1,
        ColorChoice::Never => 2,
    };
    COLOR.store(v, std::sync::atomic::Ordering::Relaxed);
}

/// [`say!`]: one escaped line on stdout (none with `--quiet`).
pub fn stdout_line(args: fmt::Arguments<'_>) {
    if !quiet() {
        put_stdout(&(line(args) + "\n"));
    }
}

/// One escaped line on stdout even with `--quiet`: a finding, or the answer the command exists
/// to give.
pub fn finding_line(args: fmt::Arguments<'_>) {
    put_stdout(&(line(args) + "\n"));
}

/// [`tell!`]: one escaped line on stderr.
pub fn stderr_line(args: fmt::Arguments<'_>) {
    put_stderr(&(line(args) + "\n"));
}

/// A question for a person on stderr, without a newline (the answer follows on the same line);
/// escaped like [`tell!`].
pub fn prompt(text: &str) {
    put_stderr(&line(format_args!("{text}")));
}

/// Machine output: `v` as pretty JSON and a newline on stdout. serde_json escapes every C0
/// control character inside strings, so nothing in `v` can act on a terminal's layout.
pub fn json<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Result<()> {
    put_stdout(&(serde_json::to_string_pretty(v)? + "\n"));
    Ok(())
}

/// Machine output of a command that judges: `v` (a JSON object) with `"ok"` added — one success
/// field with one name across every judging command. The fields each command already had
/// (`approved`, `valid`, `passed`, …) stay, so scripts that read them keep working.
pub fn json_ok<T: serde::Serialize + ?Sized>(v: &T, ok: bool) -> serde_json::Result<()> {
    let mut value = serde_json::to_value(v)?;
    if let serde_json::Value::Object(m) = &mut value {
        m.entry("ok").or_insert(serde_json::Value::Bool(ok));
    }
    json(&value)
}

/// Machine output: `v` as one line of compact JSON on stdout (JSON lines), escaped as [`json`].
pub fn json_line<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Result<()> {
    put_stdout(&(serde_json::to_string(v)? + "\n"));
    Ok(())
}

/// Machine output written exactly as given, for formats that escape their own contents (JSON
/// lines, GitHub workflow commands). Never for text a person reads.
pub fn raw(text: &str) {
    put_stdout(text);
}

/// Whether to colour a stream: as `--color always|never` says; else never with `NO_COLOR` set (no-color.org); always with
/// `CLICOLOR_FORCE` set to anything but `0`; otherwise only on a terminal.
pub fn colour(is_terminal: bool) -> bool {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    match COLOR.load(std::sync::atomic::Ordering::Relaxed) {
        1 => return true,
        2 => return false,
        _ => {}
    }
    if set("NO_COLOR") {
        false
    } else if set("CLICOLOR_FORCE") {
        std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0")
    } else {
        is_terminal
    }
}

/// Terminal styling for stdout.
pub struct Style {
    on: bool,
}

/// Text in a colour; see the module doc for why only this type may write a colour code.
pub struct Painted<'a> {
    sgr: Option<&'static str>,
    text: &'a str,
}

impl fmt::Display for Painted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn code(f: &mut fmt::Formatter<'_>, sgr: &'static str) -> fmt::Result {
            if MODE.get() != Mode::Escaping {
                return Ok(());
            }
            let _mode = ModeGuard::enter(Mode::Colour);
            f.write_str(sgr)
        }
        match self.sgr {
            Some(sgr) => {
                code(f, sgr)?;
                f.write_str(self.text)?;
                code(f, "\x1b[0m")
            }
            None => f.write_str(self.text),
        }
    }
}

impl Style {
    // The terminal test is the point of this function.
    #[allow(clippy::disallowed_methods)]
    pub fn stdout() -> Self {
        Self {
            on: colour(std::io::stdout().is_terminal()),
        }
    }
    fn paint<'a>(&self, sgr: &'static str, text: &'a str) -> Painted<'a> {
        Painted {
            sgr: self.on.then_some(sgr),
            text,
        }
    }
    pub fn good<'a>(&self, s: &'a str) -> Painted<'a> {
        self.paint("\x1b[32m", s)
    }
    pub fn bad<'a>(&self, s: &'a str) -> Painted<'a> {
        self.paint("\x1b[31;1m", s)
    }
    pub fn warn<'a>(&self, s: &'a str) -> Painted<'a> {
        self.paint("\x1b[33m", s)
    }
    pub fn dim<'a>(&self, s: &'a str) -> Painted<'a> {
        self.paint("\x1b[2m", s)
    }

    /// Prints a finding, indented, red for errors and yellow for warnings: its headline, then
    /// its help on a line of its own.
    pub fn finding(&self, indent: &str, f: &treaty::diag::Finding) {
        let head = f.headline().to_string();
        let help = f.help.as_ref().map(|h| format!("  help: {h}"));
        for text in std::iter::once(&head).chain(help.as_ref()) {
            let p = if f.is_error() {
                self.bad(text)
            } else {
                self.warn(text)
            };
            finding_line(format_args!("{indent}{p}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "\x1b[2J\x1b[H\r\nresult: APPROVED\u{202e}\u{9b}31m";

    #[test]
    fn a_line_escapes_every_control_character_its_arguments_carry() {
        let l = line(format_args!("{}: {HOSTILE}", "treaties/\nx"));
        assert_eq!(
            l,
            r"treaties/\nx: \u{1b}[2J\u{1b}[H\r\nresult: APPROVED\u{202e}\u{9b}31m"
        );
    }

    #[test]
    fn colour_survives_and_what_it_paints_is_escaped() {
        let s = Style { on: true };
        let l = line(format_args!(
            "result: {} {}",
            s.good("APPROVED"),
            s.dim(HOSTILE)
        ));
        assert_eq!(
            l,
            "result: \x1b[32mAPPROVED\x1b[0m \x1b[2m\\u{1b}[2J\\u{1b}[H\\r\\nresult: APPROVED\\u{202e}\\u{9b}31m\x1b[0m"
        );
        let off = Style { on: false };
        assert_eq!(
            line(format_args!("{}", off.bad("FAIL"))),
            "FAIL",
            "no colour when off"
        );
    }

    #[test]
    fn painted_text_outside_the_sink_has_no_colour() {
        let s = Style { on: true };
        assert_eq!(format!("{}", s.good("ok")), "ok");
        // …and an escape smuggled in as text is escaped once it reaches the sink.
        let smuggled = format!("\x1b[32m{}\x1b[0m", s.good("ok"));
        assert_eq!(line(format_args!("{smuggled}")), r"\u{1b}[32mok\u{1b}[0m");
    }

    #[test]
    fn a_display_that_panics_mid_line_leaves_the_sink_escaping() {
        struct Boom;
        impl fmt::Display for Boom {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let s = Style { on: true };
                write!(f, "{}", s.good("x"))?;
                panic!("boom")
            }
        }
        assert!(std::panic::catch_unwind(|| line(format_args!("{Boom}"))).is_err());
        assert_eq!(MODE.get(), Mode::Outside);
        assert_eq!(line(format_args!("\x1b")), r"\u{1b}");
    }
}
