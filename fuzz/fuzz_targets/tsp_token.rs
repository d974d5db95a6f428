//! RFC 3161 responses and tokens from untrusted authorities or files: parsing and verification
//! never panic, and nothing verifies against a root that signed nothing.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn roots() -> &'static treaty::tsp::Roots {
    static R: OnceLock<treaty::tsp::Roots> = OnceLock::new();
    R.get_or_init(|| {
        use openssl::{asn1::Asn1Time, ec, nid::Nid, pkey::PKey, x509};
        let group = ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(ec::EcKey::generate(&group).unwrap()).unwrap();
        let mut name = x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "fuzz root").unwrap();
        let name = name.build();
        let mut b = x509::X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap()).unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap()).unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256()).unwrap();
        treaty::tsp::Roots::from_pem(&b.build().to_pem().unwrap()).unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = treaty::tsp::parse_token_info(data);
    if let Ok(token) = treaty::tsp::token_of(data) {
        let _ = treaty::tsp::parse_token_info(&token);
    }
    assert!(treaty::tsp::verify_response(data, b"hello", None, roots()).is_err());
    assert!(treaty::tsp::verify_token(data, b"hello", Some(&[1]), roots()).is_err());
    let _ = treaty::tsp::Roots::from_pem(data);
});
