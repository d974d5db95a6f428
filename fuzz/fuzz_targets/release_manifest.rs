//! Release manifests, seals, inclusion proofs and archives from untrusted hands: parsing and
//! checking never panic, and an archive whose entries pass matches the manifest it came with.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // manifest ‖ 0x00 ‖ archive (or a proof / seal)
    let (manifest, rest) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let _ = treaty::release::check_archive_entries(manifest, rest);
    let _ = treaty::release::check_proof(manifest, rest);
    let _ = treaty::json::from_slice::<treaty::release::ceremony::Seal>(data);
    let _ = treaty::json::from_slice::<treaty::release::ceremony::ReleaseStatement>(data);
    let _ = treaty::json::from_slice::<treaty::release::Proof>(data);
});
