//! DSSE envelope parsing: never panics; what parses re-serialises to an equal envelope.
#![no_main]
use libfuzzer_sys::fuzz_target;
use treaty::dsse::Envelope;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Envelope::parse(data) {
        let again = Envelope::parse(&e.to_bytes()).expect("our own output must parse");
        let mut a = e.signatures.clone();
        let mut b = again.signatures.clone();
        a.sort_by(|x, y| (&x.keyid, &x.sig).cmp(&(&y.keyid, &y.sig)));
        b.sort_by(|x, y| (&x.keyid, &x.sig).cmp(&(&y.keyid, &y.sig)));
        assert_eq!(e.payload, again.payload);
        assert_eq!(a, b);
    }
});
