//! Evaluates a 200,000-row caseload many times on one core: a target for
//! `perf record` when tuning the columnar evaluator.
//!
//! cargo run --release -p guichet-rules --example batch_profile

use guichet_rules::{Application, Batch, Mode, generate, load};
use std::time::Instant;

fn main() {
    let path = format!("{}/../../programs/shq-pret-loyer-2020.toml", env!("CARGO_MANIFEST_DIR"));
    let Ok(src) = std::fs::read_to_string(path) else { return };
    let Ok(p) = load(&src).map(|l| l.program) else { return };
    let n = 200_000;
    let mut batch = Batch::with_capacity(&p, n);
    let mut rng = generate::rng(2020);
    for i in 0..n {
        if let Ok(a) = Application::from_json(&generate::application(&p, &mut rng, i)) {
            batch.push(&p, &a);
        }
    }
    let mut best = f64::MAX;
    for _ in 0..400 {
        let t = Instant::now();
        let out = p.evaluate_batch(&batch, Mode::Complete, 1);
        best = best.min(t.elapsed().as_secs_f64());
        std::hint::black_box(out);
    }
    println!("best of 400: {:.2} ns per row (one core)", best * 1e9 / n as f64);
}
