//! Who may call the decision point (docs/law.md § API, Authentication): bearer tokens read
//! from a file or the environment (never a flag), compared in constant time; client
//! certificates whose subject names a role (mutual TLS); and the per-caller request rate.
//!
//! Owns the token file format and its checks (no short token, no token for two roles, a file
//! others can read is refused), the role a certificate grants, and the token buckets. A
//! credential proves a role; the route decides which roles it admits ([`Route::roles`]).
//!
//! [`Route::roles`]: crate::law::api::Route::roles

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Mutex;

use sha2::Digest;
use subtle::ConstantTimeEq;

use crate::law::api::Role;

/// The shortest token accepted, in bytes (128 bits as hex).
pub const MIN_TOKEN: usize = 32;
/// The most tokens a file or the environment may list.
pub const MAX_TOKENS: usize = 1024;
/// The largest token file read.
const MAX_FILE: u64 = 256 * 1024;

/// Why the tokens could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("{origin}: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{origin}: readable by group or others (mode {mode:o}): `chmod 600` it")]
    Exposed { origin: String, mode: u32 },
    #[error("{origin}: larger than {MAX_FILE} bytes")]
    TooLarge { origin: String },
    #[error("{origin}, entry {entry}: {reason}")]
    Entry {
        origin: String,
        entry: usize,
        reason: String,
    },
    #[error("{origin}: no token")]
    Empty { origin: String },
}

/// The tokens that authenticate callers, each granting one role.
#[derive(Clone, Default)]
pub struct Tokens {
    /// SHA-256 of each token (compared in constant time, equal lengths) and its role.
    entries: Vec<([u8; 32], Role)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} entries)", self.entries.len())
    }
}

impl Tokens {
    /// Parses `ROLE:TOKEN` entries, one per line or separated by commas; blank lines and lines
    /// starting with `#` are skipped. `origin` names the file or variable in errors (never a
    /// token).
    pub fn parse(text: &str, origin: &str) -> Result<Tokens, TokenError> {
        let mut t = Tokens::default();
        let mut seen: HashMap<[u8; 32], Role> = HashMap::new();
        let entries = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .flat_map(|l| l.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty());
        for (i, e) in entries.enumerate() {
            let bad = |reason: &str| TokenError::Entry {
                origin: origin.to_owned(),
                entry: i + 1,
                reason: reason.to_owned(),
            };
            if i >= MAX_TOKENS {
                return Err(bad(&format!("more than {MAX_TOKENS} tokens")));
            }
            let (role, token) = e
                .split_once(':')
                .ok_or_else(|| bad("not ROLE:TOKEN (roles: dispatcher, provider, operator)"))?;
            let role = Role::parse(role.trim())
                .ok_or_else(|| bad("unknown role (roles: dispatcher, provider, operator)"))?;
            let token = token.trim();
            if token.len() < MIN_TOKEN {
                return Err(bad(&format!(
                    "token shorter than {MIN_TOKEN} characters (make one with `openssl rand -hex 32`)"
                )));
            }
            if !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(bad("token has spaces or control characters"));
            }
            let d: [u8; 32] = sha2::Sha256::digest(token.as_bytes()).into();
            match seen.insert(d, role) {
                Some(r) if r != role => return Err(bad("the same token is given two roles")),
                Some(_) => continue,
                None => t.entries.push((d, role)),
            }
        }
        if t.entries.is_empty() {
            return Err(TokenError::Empty {
                origin: origin.to_owned(),
            });
        }
        Ok(t)
    }

    /// Reads a token file; refused when its mode lets group or others read it.
    pub fn from_file(path: &Path) -> Result<Tokens, TokenError> {
        let origin = path.display().to_string();
        let read = |source| TokenError::Read {
            origin: origin.clone(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(read)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(TokenError::Exposed { origin, mode });
            }
        }
        if meta.len() > MAX_FILE {
            return Err(TokenError::TooLarge { origin });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        Tokens::parse(&text, &origin)
    }

    /// The role and index of the token presented, if it is one of ours. Every entry is
    /// compared, in constant time, whatever matched (no early exit, no length leak: digests are
    /// compared).
    pub fn check(&self, presented: &[u8]) -> Option<(Role, usize)> {
        let d: [u8; 32] = sha2::Sha256::digest(presented).into();
        let mut found: Option<(Role, usize)> = None;
        for (i, (e, role)) in self.entries.iter().enumerate() {
            let hit: bool = e.ct_eq(&d).into();
            if hit && found.is_none() {
                found = Some((*role, i));
            }
        }
        found
    }
}

/// The role a client certificate grants: its subject's one organizational unit (OU) that names
/// a role (`OU=dispatcher`), on a certificate whose extended key usage includes `clientAuth`.
/// None when it names no role or more than one (a credential has one role, as a token does),
/// or lacks the usage. A certificate reaches this only after rustls verified it against the
/// client CA.
pub fn certificate_role(der: &[u8]) -> Option<Role> {
    use x509_cert::der::Decode;
    const CLIENT_AUTH: x509_cert::der::oid::ObjectIdentifier =
        x509_cert::der::oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    let eku = cert
        .tbs_certificate
        .get::<x509_cert::ext::pkix::ExtendedKeyUsage>()
        .ok()
        .flatten()?;
    if !eku.1 .0.contains(&CLIENT_AUTH) {
        return None;
    }
    match certificate_roles(der).as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// Every role an OU of the certificate's subject names.
fn certificate_roles(der: &[u8]) -> Vec<Role> {
    use x509_cert::der::Decode;
    const OU: x509_cert::der::oid::ObjectIdentifier =
        x509_cert::der::oid::ObjectIdentifier::new_unwrap("2.5.4.11");
    let Ok(cert) = x509_cert::Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut roles = Vec::new();
    for rdn in cert.tbs_certificate.subject.0.iter() {
        for atv in rdn.0.iter() {
            if atv.oid != OU {
                continue;
            }
            let value = atv
                .value
                .decode_as::<x509_cert::der::asn1::Utf8StringRef>()
                .map(|s| s.as_str().to_owned())
                .or_else(|_| {
                    atv.value
                        .decode_as::<x509_cert::der::asn1::PrintableStringRef>()
                        .map(|s| s.as_str().to_owned())
                });
            if let Some(r) = value.ok().as_deref().and_then(Role::parse) {
                if !roles.contains(&r) {
                    roles.push(r);
                }
            }
        }
    }
    roles
}

/// Whom a request's rate is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Caller {
    /// A bearer token, by its index.
    Token(usize),
    /// A client certificate, by its SHA-256.
    Certificate([u8; 32]),
    /// An unauthenticated loopback caller, by address.
    Peer(IpAddr),
}

/// The most callers tracked at once; past it, buckets idle for a second are dropped first.
const MAX_CALLERS: usize = 10_000;

/// Per-caller token buckets: `rate` requests a second, bursts of up to `rate`.
pub struct RateLimit {
    rate: f64,
    buckets: Mutex<HashMap<Caller, (f64, std::time::Instant)>>,
}

impl RateLimit {
    pub fn new(per_second: u32) -> RateLimit {
        RateLimit {
            rate: f64::from(per_second.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `who` may make a request now; `Err(seconds)` to wait otherwise.
    pub fn admit(&self, who: &Caller) -> Result<(), u64> {
        let now = std::time::Instant::now();
        let Ok(mut b) = self.buckets.lock() else {
            return Err(1);
        };
        if b.len() >= MAX_CALLERS && !b.contains_key(who) {
            b.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < 1.0);
            if b.len() >= MAX_CALLERS {
                return Err(1);
            }
        }
        let (tokens, at) = b.entry(who.clone()).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.rate).min(self.rate);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "0123456789abcdef0123456789abcdef";
    const T2: &str = "fedcba9876543210fedcba9876543210";

    #[test]
    fn tokens_parse_check_and_refuse_what_is_weak_or_ambiguous() {
        let t = Tokens::parse(
            &format!("# tokens\ndispatcher:{T1}\n\noperator:{T2}, dispatcher:{T1}\n"),
            "f",
        )
        .expect("tokens");
        assert_eq!(t.check(T1.as_bytes()), Some((Role::Dispatcher, 0)));
        assert_eq!(t.check(T2.as_bytes()), Some((Role::Operator, 1)));
        assert_eq!(t.check(b"0123456789abcdef0123456789abcdee"), None);
        assert_eq!(t.check(b""), None);
        let rows = [
            ("dispatcher:short", "shorter"),
            (&*format!("admin:{T1}"), "unknown role"),
            (&*format!("dispatcher:{T1}\noperator:{T1}"), "two roles"),
            (T1, "ROLE:TOKEN"),
            ("# nothing\n", "no token"),
        ];
        for (text, want) in rows {
            let e = Tokens::parse(text, "tokens.txt")
                .expect_err(text)
                .to_string();
            assert!(
                e.contains(want) && e.starts_with("tokens.txt"),
                "{text}: {e}"
            );
            assert!(!e.contains(T1), "a token is never printed: {e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_token_file_others_can_read_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("tokens");
        std::fs::write(&p, format!("operator:{T1}\n")).expect("write");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let e = Tokens::from_file(&p).expect_err("exposed");
        assert!(e.to_string().contains("chmod 600"), "{e}");
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        assert!(Tokens::from_file(&p).is_ok());
    }

    #[test]
    fn the_rate_admits_a_burst_then_refuses_per_caller() {
        let r = RateLimit::new(5);
        let a = Caller::Token(0);
        let b = Caller::Token(1);
        for _ in 0..5 {
            assert!(r.admit(&a).is_ok());
        }
        assert!(r.admit(&a).is_err());
        assert!(r.admit(&b).is_ok(), "another caller has its own bucket");
    }
}
