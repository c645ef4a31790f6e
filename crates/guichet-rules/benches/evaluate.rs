//! Speed of program files: load and check, one evaluation, a caseload.
//!
//! cargo bench -p guichet-rules --bench evaluate
//!
//! The 1,000,000-row batch is built once from the seeded generator; only
//! the evaluation is timed. Memory of the batch is printed beside it.

use criterion::{Criterion, criterion_group, criterion_main};
use guichet_rules::{Application, Batch, Mode, Program, generate, load};
use std::hint::black_box;
use std::time::Duration;

fn source(name: &str) -> String {
    let path = format!("{}/../../programs/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("program file")
}

fn rent_loan() -> Program {
    load(&source("shq-pret-loyer-2020")).expect("loads").program
}

/// An eligible application (the costliest path: every rule and the amount).
fn eligible(p: &Program) -> Application {
    let json = serde_json::json!({
        "submitted_on": "2020-05-10",
        "answers": {
            "income_support": "cerb",
            "home": { "line1": "4321, rue Saint-Denis", "city": "Montréal", "province": "QC", "postal_code": "H2J 2L4" },
            "housing_type": "ordinary", "lease_start": "2019-07-01", "lease_end": "2020-06-30",
            "lease_copy": "bail.pdf", "told_landlord": true, "monthly_rent": "800.00",
            "months_covered": "both", "portion": "all", "landlord_name": "Gestion Tremblay inc.",
            "landlord_address": { "line1": "4500, boulevard Saint-Laurent", "city": "Montréal", "province": "QC", "postal_code": "H2T 1R2" }
        }
    });
    let a = Application::from_json(&json).expect("valid");
    let inputs = p.prepare(&a).expect("encodes");
    assert!(p.evaluate(&inputs, Mode::Complete).expect("evaluates").eligible());
    a
}

fn load_and_check(c: &mut Criterion) {
    let src = source("shq-pret-loyer-2020");
    c.bench_function("load+check rent loan program", |b| b.iter(|| load(black_box(&src)).expect("loads")));
    let src2 = source("shq-menages-en-attente-2020");
    c.bench_function("load+check households program", |b| b.iter(|| load(black_box(&src2)).expect("loads")));
}

fn one_evaluation(c: &mut Criterion) {
    let p = rent_loan();
    let inputs = p.prepare(&eligible(&p)).expect("encodes");
    let mut scratch = Vec::new();
    c.bench_function("decide one rent-loan application", |b| {
        b.iter(|| p.decide(black_box(&inputs), Mode::Complete, &mut scratch).expect("ok"))
    });
    c.bench_function("evaluate one rent-loan application with trace", |b| {
        b.iter(|| p.evaluate(black_box(&inputs), Mode::Complete).expect("ok"))
    });
    let app = eligible(&p);
    c.bench_function("prepare+decide one rent-loan application", |b| {
        b.iter(|| {
            let i = p.prepare(black_box(&app)).expect("encodes");
            p.decide(&i, Mode::Complete, &mut scratch).expect("ok")
        })
    });
}

fn caseload(c: &mut Criterion) {
    let p = rent_loan();
    let n = 1_000_000;
    let mut batch = Batch::with_capacity(&p, n);
    let mut rng = generate::rng(2020);
    for i in 0..n {
        let v = generate::application(&p, &mut rng, i);
        batch.push(&p, &Application::from_json(&v).expect("valid"));
    }
    eprintln!("batch of {n} rent-loan applications: {:.1} MB of columns", batch.heap_bytes() as f64 / 1e6);
    let mut g = c.benchmark_group("caseload");
    g.sample_size(20).measurement_time(Duration::from_secs(10));
    g.bench_function("evaluate 1,000,000 rent-loan applications (all cores)", |b| {
        b.iter(|| p.evaluate_batch(black_box(&batch), Mode::Complete, 0))
    });
    g.bench_function("evaluate 1,000,000 rent-loan applications (one core)", |b| {
        b.iter(|| p.evaluate_batch(black_box(&batch), Mode::Complete, 1))
    });
    g.finish();
}

criterion_group!(benches, load_and_check, one_evaluation, caseload);
criterion_main!(benches);
