//! Any text given as an expression: a syntax tree or a syntax error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        let _ = guichet_rules::syntax::parse(src);
    }
});
