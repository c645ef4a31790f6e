//! Any text given as a program file: diagnostics, never a panic. When it
//! loads, its own tests run without panicking too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data)
        && let Ok(loaded) = guichet_rules::load(src)
    {
        let _ = loaded.program.run_tests();
    }
});
