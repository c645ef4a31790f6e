//! Any bytes given as a signed PDF: a report or an error, never a panic.
//! The seed corpus (fuzz/seeds/verify_pdf) holds signed files, so the
//! fuzzer reaches the CMS parser and the revision comparison.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = guichet_pades::verify_pdf(data, &[], time::OffsetDateTime::UNIX_EPOCH);
});
