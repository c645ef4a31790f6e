//! Writing the bank files of a 100,000-payment batch: checking it, then
//! pain.001 and Standard 005. `cargo bench -p guichet-pay --bench payfiles`;
//! `bench/payments_compare.sh` puts it beside the peers.

use criterion::{Criterion, criterion_group, criterion_main};
use guichet_core::BankAccount;
use guichet_pay::{Batch, Direction, Originator, Payment, cpa005, pain001};
use std::hint::black_box;

fn batch(n: usize) -> (Batch, Originator) {
    let org = Originator {
        name: "Société d'habitation du Québec".into(),
        short_name: "SHQ".into(),
        id: "SHQ0000001".into(),
        data_centre: "00310".into(),
        account: BankAccount::parse("815", "30001", "7654321").expect("account"),
        credit_code: "450".into(),
        debit_code: "430".into(),
    };
    let payments = (0..n)
        .map(|i| Payment {
            reference: format!("P{i:018}"),
            name: format!("Gestion immobilière Tremblay {i}"),
            account: BankAccount::parse("006", &format!("{:05}", 10000 + i % 90000), &format!("{:07}", 1_000_000 + i))
                .expect("account"),
            amount: 50_000 + (i as i64 % 100_000),
            currency: "CAD".into(),
            remittance: format!("shq-pret-loyer-2020 d_{i:032x}"),
        })
        .collect();
    let b = Batch {
        id: "LOT-20200601-BENCH".into(),
        created: jiff::civil::date(2020, 6, 1).at(9, 0, 0, 0),
        execution: jiff::civil::date(2020, 6, 3),
        file_number: 1,
        direction: Direction::Credit,
        payments,
    };
    (b, org)
}

fn files(c: &mut Criterion) {
    let (b, org) = batch(100_000);
    let mut g = c.benchmark_group("payfiles");
    g.sample_size(10);
    g.bench_function("100k check + pain.001 + Standard 005", |x| {
        x.iter(|| {
            let xml = pain001::write(black_box(&b), &org).expect("xml");
            let aft = cpa005::write(black_box(&b), &org).expect("005");
            (xml.len(), aft.len())
        })
    });
    g.bench_function("100k pain.001", |x| x.iter(|| pain001::write(black_box(&b), &org).expect("xml").len()));
    g.bench_function("100k Standard 005", |x| x.iter(|| cpa005::write(black_box(&b), &org).expect("005").len()));
    g.finish();
}

criterion_group!(benches, files);
criterion_main!(benches);
