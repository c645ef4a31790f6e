//! Any bytes given as a PDF to sign: the structure image is the input's
//! length, equal to it wherever it is not zero, or an error; never a
//! panic. Seeds: fuzz/seeds/verify_pdf (signed files).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = guichet_pades::structure_image(&mut std::io::Cursor::new(data), data.len(), 0) {
        assert_eq!(image.len(), data.len());
        assert!(image.iter().zip(data).all(|(a, b)| *a == 0 || a == b));
    }
    let _ = guichet_pades::structure_image(&mut std::io::Cursor::new(data), data.len() / 2, 0);
});
