//! Any bytes given as a CMS signature (a PDF's /Contents): parsed or
//! refused, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = guichet_pades::inspect_cms(data);
});
