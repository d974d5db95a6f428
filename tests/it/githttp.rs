//! A smart-HTTP git server on loopback for the tests: each request runs the real
//! `git http-backend` (CGI), optionally behind TLS (OpenSSL) with a certificate the test makes.
//! One request per connection (`Connection: close`), request bodies plain or chunked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub struct GitHttp {
    /// `http://127.0.0.1:PORT` or `https://…`; repositories are `{url}/NAME.git`.
    pub url: String,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Drop for GitHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// A server certificate for 127.0.0.1 signed by a fresh CA: (CA file, cert file, key file).
#[cfg_attr(not(feature = "https"), allow(dead_code))]
pub fn tls_files(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    crate::tsa::root_ca(dir, "/O=treaty tests/CN=git server root");
    crate::tsa::leaf(
        dir,
        "server",
        "/O=treaty tests/CN=127.0.0.1",
        "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        30,
    );
    (
        dir.join("ca.crt"),
        dir.join("server.crt"),
        dir.join("server.key"),
    )
}

impl GitHttp {
    /// Serves the repositories under `root`; over TLS when `tls` names (cert, key).
    pub fn start(root: &Path, tls: Option<(&Path, &Path)>) -> GitHttp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor = tls.map(|(cert, key)| {
            let mut b =
                openssl::ssl::SslAcceptor::mozilla_intermediate_v5(openssl::ssl::SslMethod::tls())
                    .unwrap();
            b.set_private_key_file(key, openssl::ssl::SslFiletype::PEM)
                .unwrap();
            b.set_certificate_chain_file(cert).unwrap();
            Arc::new(b.build())
        });
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let stop = Arc::new(AtomicBool::new(false));
        let root = root.to_path_buf();
        let flag = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let root = root.clone();
                let acceptor = acceptor.clone();
                std::thread::spawn(move || match acceptor {
                    // A client that refuses our certificate ends the handshake: nothing to serve.
                    Some(a) => {
                        if let Ok(s) = a.accept(conn) {
                            serve(s, &root);
                        }
                    }
                    None => serve(conn, &root),
                });
            }
        });
        GitHttp {
            url: format!("{scheme}://127.0.0.1:{port}"),
            stop,
            port,
        }
    }
}

fn serve<S: Read + Write>(stream: S, root: &Path) {
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    if r.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return;
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    let header = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let mut body = Vec::new();
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).unwrap();
            let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .unwrap_or(0);
            if n == 0 {
                let mut end = String::new();
                let _ = r.read_line(&mut end);
                break;
            }
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.resize(n, 0);
        r.read_exact(&mut body).unwrap();
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let mut cgi = std::process::Command::new("git");
    cgi.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", &method)
        .env("PATH_INFO", path)
        .env("QUERY_STRING", query)
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    for (h, env) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(v) = header(h) {
            cgi.env(env, v);
        }
    }
    let mut child = cgi.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&body);
    });
    let out = child.wait_with_output().unwrap();
    let _ = writer.join();
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| raw.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2)));
    let Some((at, sep)) = split else { return };
    let head = String::from_utf8_lossy(&raw[..at]).into_owned();
    let payload = &raw[at + sep..];
    let mut status = "200 OK".to_owned();
    let mut response = Vec::new();
    let mut extra = String::new();
    for h in head.lines() {
        match h.split_once(':') {
            Some((k, v)) if k.eq_ignore_ascii_case("status") => status = v.trim().to_owned(),
            Some(_) => {
                extra.push_str(h.trim_end());
                extra.push_str("\r\n");
            }
            None => {}
        }
    }
    response.extend_from_slice(
        format!(
            "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
            payload.len()
        )
        .as_bytes(),
    );
    response.extend_from_slice(payload);
    let mut s = r.into_inner();
    let _ = s.write_all(&response);
    let _ = s.flush();
}
