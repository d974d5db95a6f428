//! RFC 3161 time-stamp protocol: requests, an HTTP client for authorities, and verification of
//! responses and tokens.
//!
//! Owns the proof that some bytes existed at a time an authority vouches for. Parsing uses
//! RustCrypto's `x509-tsp`/`cms`/`x509-cert`; the signature and certificate-chain checks are
//! never hand-rolled here: OpenSSL's CMS verification does them, with an X.509 store that holds
//! only the trusted TSA roots and requires the time-stamping purpose (RFC 3161 §2.3: the signer
//! certificate's extended key usage is exactly id-kp-timeStamping and critical). Chains are
//! judged at the token's genTime, so a token stays verifiable after its certificate expires.
//!
//! What this module checks on every token (RFC 3161 §2.4.2): status granted; content type
//! id-ct-TSTInfo; exactly one signer; the signer certificate embedded and bound by the ESS
//! signing-certificate attribute (RFC 2634 §5.4 / RFC 5035); the CMS signature and chain; the
//! message imprint against the data we expect; on receipt, the nonce we sent. It never trusts
//! a certificate the token carries unless it chains to a configured root.

use std::time::Duration;

use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{Int, OctetString};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, Sequence};
use x509_cert::Certificate;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

const ID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
const ID_AA_SIGNING_CERT: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.12");
const ID_AA_SIGNING_CERT_V2: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");
const ID_CE_EXT_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
const ID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const ID_SHA384: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.2");
const ID_SHA512: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// The largest response or token we read (1 MiB); real tokens are a few KiB.
pub const MAX_TOKEN_BYTES: usize = 1024 * 1024;

/// Why a time-stamp could not be obtained or does not verify.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TspError {
    #[error("authority unreachable: {0}")]
    Unreachable(String),
    #[error("authority answered HTTP {0}")]
    Http(u16),
    #[error("not a time-stamp response: {0}")]
    Malformed(String),
    #[error("authority refused the request (status {status}{why})")]
    Rejected { status: u64, why: String },
    #[error("the token is for other data (message imprint differs)")]
    WrongImprint,
    #[error("the token answers another request (nonce differs)")]
    WrongNonce,
    #[error(
        "the token's signer certificate is not bound by its ESS signing-certificate attribute: {0}"
    )]
    SignerBinding(String),
    #[error("the signer certificate is not a time-stamping certificate: {0}")]
    NotTimestamping(String),
    #[error("signature or certificate chain does not verify against the trusted TSA roots: {0}")]
    Untrusted(String),
    #[error("no trusted TSA roots: {0}")]
    Roots(String),
}

/// A verified time-stamp.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stamp {
    /// genTime, seconds since the Unix epoch.
    pub gen_time: i64,
    /// genTime as RFC 3339.
    pub time: String,
    /// The signer certificate's subject.
    pub tsa: String,
    /// The token's serial number, hex.
    pub serial: String,
    pub policy: String,
}

/// The trusted TSA roots (PEM certificates).
pub struct Roots {
    certs: Vec<openssl::x509::X509>,
}

impl std::fmt::Debug for Roots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Roots({} certificates)", self.certs.len())
    }
}

impl Roots {
    /// Parses every `CERTIFICATE` block in `pem` (text outside blocks is ignored, as OpenSSL
    /// does). At least one is required.
    pub fn from_pem(pem: &[u8]) -> Result<Self, TspError> {
        let certs = openssl::x509::X509::stack_from_pem(pem).map_err(|e| {
            TspError::Roots(format!(
                "a PEM block is not an X.509 certificate ({})",
                openssl_reason(&e)
            ))
        })?;
        if certs.is_empty() {
            return Err(TspError::Roots("no certificate in the file".into()));
        }
        Ok(Self { certs })
    }

    pub fn len(&self) -> usize {
        self.certs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    fn store_at(&self, unix: i64) -> Result<openssl::x509::store::X509Store, TspError> {
        use openssl::x509::store::X509StoreBuilder;
        use openssl::x509::verify::X509VerifyParam;
        use openssl::x509::X509PurposeId;
        let e = |e: openssl::error::ErrorStack| TspError::Roots(e.to_string());
        let mut b = X509StoreBuilder::new().map_err(e)?;
        for c in &self.certs {
            b.add_cert(c.clone()).map_err(e)?;
        }
        b.set_purpose(X509PurposeId::TIMESTAMP_SIGN).map_err(e)?;
        let mut param = X509VerifyParam::new().map_err(e)?;
        param
            .set_purpose(X509PurposeId::TIMESTAMP_SIGN)
            .map_err(e)?;
        // `time_t` is i64 here but not on every platform.
        #[allow(clippy::useless_conversion)]
        param.set_time(
            unix.try_into()
                .map_err(|_| TspError::Malformed("genTime out of range".into()))?,
        );
        b.set_param(&param).map_err(e)?;
        Ok(b.build())
    }
}

/// A request to send, with the nonce to expect back.
#[derive(Debug, Clone)]
pub struct Request {
    pub der: Vec<u8>,
    pub nonce: Vec<u8>,
}

/// Builds a SHA-256 request over `data` with a fresh random 64-bit nonce and certReq set, so
/// the token embeds the signer certificate (RFC 3161 §2.4.1).
pub fn request(data: &[u8]) -> Result<Request, TspError> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| TspError::Malformed(format!("no randomness: {e}")))?;
    // A positive INTEGER in minimal form: top bit clear, first byte non-zero.
    nonce[0] = (nonce[0] & 0x7f) | 0x01;
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: x509_cert::spki::AlgorithmIdentifier {
                oid: ID_SHA256,
                parameters: None,
            },
            hashed_message: OctetString::new(sha2_256(data))
                .map_err(|e| TspError::Malformed(e.to_string()))?,
        },
        req_policy: None,
        nonce: Some(Int::new(&nonce).map_err(|e| TspError::Malformed(e.to_string()))?),
        cert_req: true,
        extensions: None,
    };
    Ok(Request {
        der: req
            .to_der()
            .map_err(|e| TspError::Malformed(e.to_string()))?,
        nonce: nonce.to_vec(),
    })
}

fn sha2_256(data: &[u8]) -> Vec<u8> {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).to_vec()
}

/// How to reach an authority.
#[derive(Debug, Clone)]
pub struct Client {
    pub timeout: Duration,
    /// Extra attempts after a transport error or an HTTP 5xx.
    pub retries: u32,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            retries: 2,
        }
    }
}

impl Client {
    /// POSTs `req` to `url` (`application/timestamp-query`, RFC 3161 §3.4) and returns the
    /// response body. Retries transport failures and 5xx with a short backoff.
    pub fn post(&self, url: &str, req: &[u8]) -> Result<Vec<u8>, TspError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(self.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        let mut last = TspError::Unreachable("no attempt made".into());
        for attempt in 0..=self.retries {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(300 * u64::from(attempt)));
            }
            match agent
                .post(url)
                .header("Content-Type", "application/timestamp-query")
                .send(req)
            {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    if status >= 500 {
                        last = TspError::Http(status);
                        continue;
                    }
                    if status != 200 {
                        return Err(TspError::Http(status));
                    }
                    return resp
                        .body_mut()
                        .with_config()
                        .limit(MAX_TOKEN_BYTES as u64)
                        .read_to_vec()
                        .map_err(|e| TspError::Unreachable(format!("reading the answer: {e}")));
                }
                Err(e) => last = TspError::Unreachable(e.to_string()),
            }
        }
        Err(last)
    }
}

/// Asks the authorities in order for a token over `data` and returns the first answer that
/// verifies (nonce included) with its stamp; `on_error` hears each authority that failed.
pub fn stamp_first(
    urls: &[String],
    data: &[u8],
    client: &Client,
    roots: &Roots,
    mut on_error: impl FnMut(&str, &TspError),
) -> Result<(Vec<u8>, Stamp), TspError> {
    let mut last = TspError::Unreachable("no authority given".into());
    for url in urls {
        let req = request(data)?;
        match client.post(url, &req.der).and_then(|resp| {
            verify_response(&resp, data, Some(&req.nonce), roots).map(|st| (resp, st))
        }) {
            Ok(x) => return Ok(x),
            Err(e) => {
                on_error(url, &e);
                last = e;
            }
        }
    }
    Err(last)
}

/// Verifies a `TimeStampResp` (what an authority answers and what `.tsr` files hold) over
/// `data`; with `nonce`, also that it answers that request.
pub fn verify_response(
    resp: &[u8],
    data: &[u8],
    nonce: Option<&[u8]>,
    roots: &Roots,
) -> Result<Stamp, TspError> {
    let token = token_of(resp)?;
    verify_token(&token, data, nonce, roots)
}

/// The token inside a granted response.
pub fn token_of(resp: &[u8]) -> Result<Vec<u8>, TspError> {
    if resp.len() > MAX_TOKEN_BYTES {
        return Err(TspError::Malformed("larger than 1 MiB".into()));
    }
    let r = TimeStampResp::from_der(resp).map_err(|e| TspError::Malformed(e.to_string()))?;
    let status = r.status.status as u64;
    // granted (0) or grantedWithMods (1), RFC 3161 §2.4.2.
    if status > 1 {
        let why = r
            .status
            .status_string
            .as_ref()
            .map(|s| {
                let texts: Vec<String> = s.iter().map(|t| t.to_string()).collect();
                format!(": {}", texts.join("; "))
            })
            .unwrap_or_default();
        return Err(TspError::Rejected { status, why });
    }
    let token = r
        .time_stamp_token
        .ok_or_else(|| TspError::Malformed("granted, but no token".into()))?;
    token
        .to_der()
        .map_err(|e| TspError::Malformed(e.to_string()))
}

/// Checks, without any root, that a token answers a request over `data` with `nonce` (its
/// imprint and nonce): what a writer checks before keeping a token whose signature its readers
/// verify against their own roots ([`verify_token`]).
pub fn check_imprint_and_nonce(token: &[u8], data: &[u8], nonce: &[u8]) -> Result<(), TspError> {
    answers(&parse_token(token)?, data, Some(nonce))
}

/// The token's imprint is over `data` (with the algorithm it names) and, given one, its
/// nonce is `nonce`.
fn answers(parsed: &Parsed, data: &[u8], nonce: Option<&[u8]>) -> Result<(), TspError> {
    let tst = &parsed.tst;
    let alg = tst.message_imprint.hash_algorithm.oid;
    let want = digest(alg, data)
        .ok_or_else(|| TspError::Malformed(format!("unsupported imprint algorithm {alg}")))?;
    if tst.message_imprint.hashed_message.as_bytes() != want.as_slice() {
        return Err(TspError::WrongImprint);
    }
    if let Some(n) = nonce {
        if tst.nonce.as_ref().map(|x| x.as_bytes()) != Some(n) {
            return Err(TspError::WrongNonce);
        }
    }
    Ok(())
}

/// Verifies a bare `TimeStampToken` (CMS SignedData over a TSTInfo) over `data`.
pub fn verify_token(
    token: &[u8],
    data: &[u8],
    nonce: Option<&[u8]>,
    roots: &Roots,
) -> Result<Stamp, TspError> {
    let parsed = parse_token(token)?;
    let tst = &parsed.tst;
    // The imprint, with the algorithm the token names, and the nonce.
    answers(&parsed, data, nonce)?;
    check_ess(&parsed)?;
    check_eku(&parsed.signer)?;
    let gen = tst.gen_time.to_unix_duration().as_secs();
    let gen = i64::try_from(gen).map_err(|_| TspError::Malformed("genTime out of range".into()))?;
    // Signature, signed attributes and chain: OpenSSL, at genTime, time-stamping purpose.
    let store = roots.store_at(gen)?;
    let mut cms = openssl::cms::CmsContentInfo::from_der(token)
        .map_err(|e| TspError::Malformed(format!("CMS: {e}")))?;
    let mut out = Vec::new();
    cms.verify(
        None,
        Some(&store),
        None,
        Some(&mut out),
        openssl::cms::CMSOptions::BINARY,
    )
    .map_err(|e| TspError::Untrusted(openssl_reason(&e)))?;
    if out != parsed.tst_der {
        return Err(TspError::Malformed(
            "the verified content is not the TSTInfo that was parsed".into(),
        ));
    }
    let time = time::OffsetDateTime::from_unix_timestamp(gen)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    Ok(Stamp {
        gen_time: gen,
        time,
        tsa: parsed.signer.tbs_certificate.subject.to_string(),
        serial: hex::encode(tst.serial_number.as_bytes()),
        policy: tst.policy.to_string(),
    })
}

fn openssl_reason(e: &openssl::error::ErrorStack) -> String {
    let parts: Vec<String> = e
        .errors()
        .iter()
        .map(|x| {
            let reason = x.reason().map_or_else(|| x.to_string(), str::to_owned);
            // The X.509 verdict ("Verify error:certificate has expired") rides in the data.
            match x.data() {
                Some(d) if !d.is_empty() => format!("{reason} ({d})"),
                _ => reason,
            }
        })
        .collect();
    if parts.is_empty() {
        "verification failed".into()
    } else {
        parts.join("; ")
    }
}

fn digest(alg: ObjectIdentifier, data: &[u8]) -> Option<Vec<u8>> {
    use sha2::Digest as _;
    Some(match alg {
        a if a == ID_SHA256 => sha2::Sha256::digest(data).to_vec(),
        a if a == ID_SHA384 => sha2::Sha384::digest(data).to_vec(),
        a if a == ID_SHA512 => sha2::Sha512::digest(data).to_vec(),
        _ => return None,
    })
}

/// What was read out of a token before any check.
struct Parsed {
    sd: SignedData,
    tst: TstInfo,
    tst_der: Vec<u8>,
    signer: Certificate,
}

/// Parses a token's structure (no signature check); public for fuzzing.
pub fn parse_token_info(token: &[u8]) -> Result<(i64, String), TspError> {
    let p = parse_token(token)?;
    let gen = p.tst.gen_time.to_unix_duration().as_secs();
    Ok((
        i64::try_from(gen).unwrap_or(i64::MAX),
        hex::encode(p.tst.serial_number.as_bytes()),
    ))
}

fn parse_token(token: &[u8]) -> Result<Parsed, TspError> {
    let m = |e: der::Error| TspError::Malformed(e.to_string());
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TspError::Malformed("larger than 1 MiB".into()));
    }
    let ci = ContentInfo::from_der(token).map_err(m)?;
    if ci.content_type != ID_SIGNED_DATA {
        return Err(TspError::Malformed(format!(
            "content type {} is not signed data",
            ci.content_type
        )));
    }
    let sd: SignedData = ci.content.decode_as().map_err(m)?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(TspError::Malformed(format!(
            "encapsulated content {} is not a TSTInfo",
            sd.encap_content_info.econtent_type
        )));
    }
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .ok_or_else(|| TspError::Malformed("no TSTInfo".into()))?;
    let tst_der = OctetString::from_der(&econtent.to_der().map_err(m)?)
        .map_err(m)?
        .into_bytes();
    let tst = TstInfo::from_der(&tst_der).map_err(m)?;
    if sd.signer_infos.0.len() != 1 {
        return Err(TspError::Malformed(format!(
            "{} signers; a time-stamp token has exactly one",
            sd.signer_infos.0.len()
        )));
    }
    let si = sd
        .signer_infos
        .0
        .get(0)
        .ok_or_else(|| TspError::Malformed("no signer".into()))?;
    let certs: Vec<Certificate> = sd
        .certificates
        .as_ref()
        .map(|set| {
            set.0
                .iter()
                .filter_map(|c| match c {
                    cms::cert::CertificateChoices::Certificate(c) => Some(c.clone()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let signer = certs
        .into_iter()
        .find(|c| match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                c.tbs_certificate.issuer == ias.issuer
                    && c.tbs_certificate.serial_number == ias.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => c
                .tbs_certificate
                .extensions
                .as_ref()
                .and_then(|exts| {
                    exts.iter()
                        .find(|e| e.extn_id == ObjectIdentifier::new_unwrap("2.5.29.14"))
                })
                .and_then(|e| OctetString::from_der(e.extn_value.as_bytes()).ok())
                .is_some_and(|v| v.as_bytes() == ski.0.as_bytes()),
        })
        .ok_or_else(|| {
            TspError::SignerBinding(
                "the token does not embed its signer certificate (request certReq)".into(),
            )
        })?;
    Ok(Parsed {
        sd,
        tst,
        tst_der,
        signer,
    })
}

/// ESSCertIDv2 (RFC 5035 §3).
#[derive(Clone, Debug, Sequence)]
struct EssCertIdV2 {
    #[asn1(optional = "true")]
    hash_algorithm: Option<x509_cert::spki::AlgorithmIdentifierOwned>,
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<der::Any>,
}

#[derive(Clone, Debug, Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    policies: Option<der::Any>,
}

/// ESSCertID (RFC 2634 §5.4.1): SHA-1 only.
#[derive(Clone, Debug, Sequence)]
struct EssCertId {
    cert_hash: OctetString,
    #[asn1(optional = "true")]
    issuer_serial: Option<der::Any>,
}

#[derive(Clone, Debug, Sequence)]
struct SigningCertificate {
    certs: Vec<EssCertId>,
    #[asn1(optional = "true")]
    policies: Option<der::Any>,
}

/// The signed attributes must bind the signer certificate by hash (RFC 3161 §2.4.1 requires
/// the signingCertificate attribute), so a certificate swapped into the token is caught.
fn check_ess(p: &Parsed) -> Result<(), TspError> {
    let bad = |s: &str| TspError::SignerBinding(s.to_owned());
    let si = p.sd.signer_infos.0.get(0).ok_or_else(|| bad("no signer"))?;
    let attrs = si
        .signed_attrs
        .as_ref()
        .ok_or_else(|| bad("no signed attributes"))?;
    let cert_der = p
        .signer
        .to_der()
        .map_err(|e| TspError::Malformed(e.to_string()))?;
    for a in attrs.iter() {
        let Some(v) = a.values.get(0) else { continue };
        let v = v.to_der().map_err(|e| TspError::Malformed(e.to_string()))?;
        if a.oid == ID_AA_SIGNING_CERT_V2 {
            let sc = SigningCertificateV2::from_der(&v)
                .map_err(|e| bad(&format!("unreadable signingCertificateV2: {e}")))?;
            let first = sc
                .certs
                .first()
                .ok_or_else(|| bad("empty signingCertificateV2"))?;
            let alg = first.hash_algorithm.as_ref().map_or(ID_SHA256, |a| a.oid);
            let h = digest(alg, &cert_der)
                .ok_or_else(|| bad(&format!("unsupported ESS hash {alg}")))?;
            return if first.cert_hash.as_bytes() == h.as_slice() {
                Ok(())
            } else {
                Err(bad("certificate hash differs"))
            };
        }
        if a.oid == ID_AA_SIGNING_CERT {
            let sc = SigningCertificate::from_der(&v)
                .map_err(|e| bad(&format!("unreadable signingCertificate: {e}")))?;
            let first = sc
                .certs
                .first()
                .ok_or_else(|| bad("empty signingCertificate"))?;
            let h = openssl::hash::hash(openssl::hash::MessageDigest::sha1(), &cert_der)
                .map_err(|e| TspError::Malformed(e.to_string()))?;
            let _ = ID_SHA1;
            return if first.cert_hash.as_bytes() == &h[..] {
                Ok(())
            } else {
                Err(bad("certificate hash differs"))
            };
        }
    }
    Err(bad("no signingCertificate attribute"))
}

/// RFC 3161 §2.3: the extended key usage is present, critical, and only id-kp-timeStamping.
fn check_eku(cert: &Certificate) -> Result<(), TspError> {
    let ext = cert
        .tbs_certificate
        .extensions
        .as_ref()
        .and_then(|exts| exts.iter().find(|e| e.extn_id == ID_CE_EXT_KEY_USAGE))
        .ok_or_else(|| TspError::NotTimestamping("no extended key usage".into()))?;
    if !ext.critical {
        return Err(TspError::NotTimestamping(
            "the extended key usage is not critical".into(),
        ));
    }
    let eku = x509_cert::ext::pkix::ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
        .map_err(|e| TspError::NotTimestamping(format!("unreadable extended key usage: {e}")))?;
    if eku.0 != [ID_KP_TIME_STAMPING] {
        return Err(TspError::NotTimestamping(
            "the extended key usage is not exactly timeStamping".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_a_positive_nonce_and_a_sha256_imprint() {
        let r = request(b"hello").unwrap();
        let back = TimeStampReq::from_der(&r.der).unwrap();
        assert_eq!(back.message_imprint.hash_algorithm.oid, ID_SHA256);
        assert_eq!(
            back.message_imprint.hashed_message.as_bytes(),
            sha2_256(b"hello")
        );
        assert!(back.cert_req);
        assert_eq!(back.nonce.unwrap().as_bytes(), r.nonce.as_slice());
        assert!(r.nonce[0] & 0x80 == 0 && r.nonce[0] != 0);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for bad in [
            &b""[..],
            b"\x30\x03\x02\x01\x00",
            b"garbage",
            &[0x30, 0x80, 0, 0],
        ] {
            assert!(token_of(bad).is_err());
            assert!(parse_token_info(bad).is_err());
        }
    }
}
