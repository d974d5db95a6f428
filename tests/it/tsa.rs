//! A real RFC 3161 authority for tests: `openssl ts -reply` behind a loopback HTTP server,
//! with its own CA made by the `openssl` CLI. Misbehaving modes model the failures an
//! authority can have in the field.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl CLI is installed (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
];

/// A self-signed P-256 root in `dir` (`ca.key`, `ca.crt`).
pub fn root_ca(dir: &Path, subject: &str) {
    let mut a = vec!["req", "-x509"];
    a.extend(EC);
    a.extend([
        "-keyout", "ca.key", "-out", "ca.crt", "-days", "3650", "-subj", subject,
    ]);
    openssl(dir, &a);
}

/// A P-256 leaf `NAME.key`/`NAME.crt` in `dir`, signed by its root, with the extensions in
/// `ext` (openssl -extfile syntax), valid for `days` (negative: already expired).
pub fn leaf(dir: &Path, name: &str, subject: &str, ext: &str, days: i32) {
    let (key, csr, crt, extfile) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
        format!("{name}.ext"),
    );
    let mut a = vec!["req"];
    a.extend(EC);
    a.extend(["-keyout", &key, "-out", &csr, "-subj", subject]);
    openssl(dir, &a);
    std::fs::write(dir.join(&extfile), ext).unwrap();
    let days = days.to_string();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &crt,
            "-days",
            &days,
            "-extfile",
            &extfile,
        ],
    );
}

/// A CA with one time-stamping certificate (EKU critical timeStamping).
pub struct Ca {
    pub dir: PathBuf,
}

impl Ca {
    /// `days` < 0 makes an already expired TSA certificate.
    pub fn new(dir: &Path, name: &str, days: i32) -> Ca {
        let dir = dir.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        root_ca(&dir, &format!("/O=treaty tests/CN={name} root"));
        leaf(
            &dir,
            "tsa",
            &format!("/O=treaty tests/CN={name} TSA"),
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=critical,timeStamping\n",
            days,
        );
        std::fs::write(dir.join("serial"), "01\n").unwrap();
        std::fs::write(
            dir.join("tsa.cnf"),
            format!(
                "[ tsa ]\ndefault_tsa = tsa1\n[ tsa1 ]\ndir = {}\nserial = $dir/serial\ncrypto_device = builtin\nsigner_cert = $dir/tsa.crt\ncerts = $dir/ca.crt\nsigner_key = $dir/tsa.key\nsigner_digest = sha256\ndefault_policy = 1.2.3.4.1\nother_policies = 1.2.3.4.5\ndigests = sha256, sha384, sha512\naccuracy = secs:1\nordering = yes\ntsa_name = yes\ness_cert_id_chain = no\ness_cert_id_alg = sha256\n",
                dir.display()
            ),
        )
        .unwrap();
        Ca { dir }
    }

    pub fn root_pem(&self) -> String {
        std::fs::read_to_string(self.dir.join("ca.crt")).unwrap()
    }
}

/// How the authority behaves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Honest,
    /// Answers after 4 s (clients time out first).
    Slow,
    Garbage,
    /// A valid token, over another imprint.
    OtherImprint,
    /// A valid token over the right imprint, answering another request (another nonce).
    WrongNonce,
    /// HTTP 503 every time.
    Unavailable,
}

pub struct Tsa {
    pub url: String,
    pub requests: Arc<Mutex<u32>>,
}

/// A URL where nothing listens.
pub fn down_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}/tsa")
}

impl Tsa {
    pub fn start(ca: &Ca, mode: Mode) -> Tsa {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/tsa", l.local_addr().unwrap());
        let dir = ca.dir.clone();
        let requests = Arc::new(Mutex::new(0u32));
        let count = requests.clone();
        // `openssl ts -reply` rewrites the serial file: one request at a time.
        let lock = Arc::new(Mutex::new(()));
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let Ok(mut s) = stream else { continue };
                let dir = dir.clone();
                let lock = lock.clone();
                let count = count.clone();
                std::thread::spawn(move || {
                    let body = read_request(&mut s);
                    *count.lock().unwrap() += 1;
                    let (status, reply) = {
                        let _g = lock.lock().unwrap();
                        answer(&dir, mode, &body)
                    };
                    if mode == Mode::Slow {
                        std::thread::sleep(std::time::Duration::from_secs(4));
                    }
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: application/timestamp-reply\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        reply.len()
                    );
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(&reply);
                });
            }
        });
        Tsa { url, requests }
    }
}

fn read_request(s: &mut std::net::TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let header_end = loop {
        let n = s.read(&mut tmp).unwrap_or(0);
        if n == 0 {
            return Vec::new();
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + len {
        let n = s.read(&mut tmp).unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    buf[header_end..].to_vec()
}

fn answer(dir: &Path, mode: Mode, query: &[u8]) -> (&'static str, Vec<u8>) {
    use der::Decode;
    match mode {
        Mode::Garbage => return ("200 OK", b"this is not DER".to_vec()),
        Mode::Unavailable => return ("503 Service Unavailable", Vec::new()),
        _ => {}
    }
    let q = dir.join("query.tsq");
    let r = dir.join("reply.tsr");
    let mut query = query.to_vec();
    if matches!(mode, Mode::OtherImprint | Mode::WrongNonce) {
        let req = x509_tsp::TimeStampReq::from_der(&query).unwrap();
        let digest = if mode == Mode::OtherImprint {
            "00".repeat(32)
        } else {
            hex::encode(req.message_imprint.hashed_message.as_bytes())
        };
        // A fresh query (new random nonce) for that digest.
        openssl(
            dir,
            &[
                "ts",
                "-query",
                "-digest",
                &digest,
                "-sha256",
                "-cert",
                "-out",
                "other.tsq",
            ],
        );
        query = std::fs::read(dir.join("other.tsq")).unwrap();
    }
    std::fs::write(&q, &query).unwrap();
    let out = Command::new("openssl")
        .args(["ts", "-reply", "-config"])
        .arg(dir.join("tsa.cnf"))
        .arg("-queryfile")
        .arg(&q)
        .arg("-out")
        .arg(&r)
        .output()
        .unwrap();
    if !out.status.success() {
        return ("500 Internal Server Error", out.stderr);
    }
    ("200 OK", std::fs::read(&r).unwrap())
}
