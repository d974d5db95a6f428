//! Where commands go: JSON lines on stdout, a spool directory (one file per command, named by
//! its idempotency key, written atomically, so a repeated delivery lands once), or an exec hook
//! (the JSON on stdin, killed on timeout). A sink delivers one command or fails; it never
//! records what was delivered ([`super::step`] does, through the store).

use std::io::Write;
use std::path::PathBuf;

use super::store::write_durably;

/// Why a command was not delivered (the step stops; the command is retried at the next pull).
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing the command: {0}")]
    Write(#[source] std::io::Error),
    #[error("command without a valid idempotency key")]
    NoIdempotencyKey,
    #[error("{dir}: {source}")]
    Spool {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} exited with {status}")]
    Exited {
        program: String,
        status: std::process::ExitStatus,
    },
    #[error("{program} did not finish within {timeout:?}; killed")]
    Timeout {
        program: String,
        timeout: std::time::Duration,
    },
}

/// Where commands go.
pub trait Sink {
    /// Delivers one command; an error stops the step (it is retried later).
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), SinkError>;
}

/// JSON lines on stdout (or any writer).
pub struct LinesSink<W: Write>(pub W);

impl<W: Write> Sink for LinesSink<W> {
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), SinkError> {
        writeln!(self.0, "{cmd}")
            .and_then(|()| self.0.flush())
            .map_err(SinkError::Write)
    }
}

/// One file per command in a directory, written atomically, named by idempotency key so a
/// command delivered twice lands once.
pub struct SpoolSink {
    pub dir: PathBuf,
}

impl Sink for SpoolSink {
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), SinkError> {
        let key = cmd["idempotency_key"]
            .as_str()
            .filter(|k| k.len() == 64 && k.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or(SinkError::NoIdempotencyKey)?;
        let name = format!("{key}.json");
        if self.dir.join(&name).exists() {
            return Ok(());
        }
        let spool = |source| SinkError::Spool {
            dir: self.dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(spool)?;
        let mut b = cmd.to_string().into_bytes();
        b.push(b'\n');
        write_durably(&self.dir, &name, &b).map_err(spool)
    }
}

/// Runs a program per command with the JSON on stdin (and `TREATY_OP`,
/// `TREATY_IDEMPOTENCY_KEY` in its environment). A non-zero exit or a timeout stops the step;
/// the command is retried at the next pull (the hook must be idempotent by key).
pub struct ExecSink {
    pub program: String,
    pub args: Vec<String>,
    pub timeout: std::time::Duration,
}

impl Sink for ExecSink {
    fn deliver(&mut self, cmd: &serde_json::Value) -> Result<(), SinkError> {
        use std::process::{Command, Stdio};
        let mut child = Command::new(&self.program)
            .args(&self.args)
            .env("TREATY_OP", cmd["op"].as_str().unwrap_or(""))
            .env(
                "TREATY_IDEMPOTENCY_KEY",
                cmd["idempotency_key"].as_str().unwrap_or(""),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|source| SinkError::Spawn {
                program: self.program.clone(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            let mut b = cmd.to_string().into_bytes();
            b.push(b'\n');
            // A hook that does not read its input is its own business.
            let _ = stdin.write_all(&b);
        }
        let start = std::time::Instant::now();
        loop {
            match child.try_wait() {
                Ok(Some(st)) if st.success() => return Ok(()),
                Ok(Some(status)) => {
                    return Err(SinkError::Exited {
                        program: self.program.clone(),
                        status,
                    })
                }
                Ok(None) if start.elapsed() > self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(SinkError::Timeout {
                        program: self.program.clone(),
                        timeout: self.timeout,
                    });
                }
                Ok(None) => std::thread::sleep(std::time::Duration::from_millis(10)),
                Err(source) => {
                    return Err(SinkError::Spawn {
                        program: self.program.clone(),
                        source,
                    })
                }
            }
        }
    }
}
