//! Properties: the columnar evaluator agrees with the scalar one on any
//! application; the parser never panics; money survives a round trip;
//! the programs keep their caps whatever the answers.

use guichet_rules::{Application, Batch, Mode, Money, Program, RowStatus, Status, generate, load};
use proptest::prelude::*;
use std::sync::OnceLock;

fn programs() -> &'static [Program] {
    static P: OnceLock<Vec<Program>> = OnceLock::new();
    P.get_or_init(|| {
        ["shq-pret-loyer-2020", "shq-menages-en-attente-2020"]
            .iter()
            .map(|n| {
                let path = format!("{}/../../programs/{n}.toml", env!("CARGO_MANIFEST_DIR"));
                load(&std::fs::read_to_string(path).expect("file")).expect("loads").program
            })
            .collect()
    })
}

/// Applications from the generator, then perturbed: answers dropped,
/// dates moved, amounts changed, so that every branch gets exercised.
fn perturbed(p: &Program, seed: u64, n: usize) -> Vec<Application> {
    let mut rng = generate::rng(seed);
    let mut out = Vec::new();
    for i in 0..n {
        let mut v = generate::application(p, &mut rng, i);
        if let Some(answers) = v["answers"].as_object_mut() {
            let keys: Vec<String> = answers.keys().cloned().collect();
            for k in keys {
                match rng.u8(..20) {
                    0 => {
                        answers.remove(&k);
                    }
                    1 => {
                        if let Some(s) = answers[&k].as_str().map(str::to_owned)
                            && s.len() == 10
                            && s.as_bytes()[4] == b'-'
                            && let Ok(d) = guichet_rules::Date::parse(&s)
                            && let Some(moved) = d.add_days(rng.i64(-60..=60))
                        {
                            answers[&k] = moved.to_string().into();
                        }
                    }
                    2 if answers[&k].as_str().is_some_and(|s| s.contains('.')) => {
                        answers[&k] = format!("{}.{:02}", rng.u32(0..4000), rng.u32(0..100)).into();
                    }
                    _ => {}
                }
            }
        }
        if rng.u8(..10) == 0 {
            let d = guichet_rules::Date(p.opens.0 + rng.i32(-5..=(p.closes.0 - p.opens.0 + 5)));
            v["submitted_on"] = d.to_string().into();
        }
        out.push(Application::from_json(&v).expect("generator output is well formed"));
    }
    out
}

fn scalar(p: &Program, a: &Application, mode: Mode) -> (RowStatus, i64) {
    match p.prepare(a) {
        Err(_) => (RowStatus::Error, 0),
        Ok(inputs) => match p.evaluate(&inputs, mode) {
            Err(_) => (RowStatus::Error, 0),
            Ok(ev) => {
                let s = match ev.status {
                    Status::Eligible => RowStatus::Eligible,
                    Status::NotEligible => RowStatus::NotEligible,
                    Status::Undetermined => RowStatus::Undetermined,
                };
                (s, ev.amount.map(|m| m.cents()).unwrap_or(0))
            }
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn columnar_agrees_with_scalar(seed in any::<u64>(), draft in any::<bool>(), threads in 1usize..3) {
        let mode = if draft { Mode::Draft } else { Mode::Complete };
        for p in programs() {
            let apps = perturbed(p, seed, 700);
            let batch = Batch::new(p, &apps);
            let out = p.evaluate_batch(&batch, mode, threads);
            prop_assert_eq!(out.status.len(), apps.len());
            let mut seen = [0usize; 4];
            for (i, a) in apps.iter().enumerate() {
                let (s, m) = scalar(p, a, mode);
                prop_assert_eq!((out.status[i], out.amount[i]), (s, m), "program {} row {}", p.id, i);
                seen[s as usize] += 1;
            }
            // The rows reach several outcomes, so the comparison means something.
            prop_assert!(seen.iter().filter(|c| **c > 0).count() >= 2, "{:?}", seen);
            prop_assert!(seen[RowStatus::NotEligible as usize] > 0, "{:?}", seen);
        }
    }

    #[test]
    fn rent_loan_never_exceeds_its_cap(seed in any::<u64>()) {
        let p = &programs()[0];
        for a in perturbed(p, seed, 300) {
            let (_, m) = scalar(p, &a, Mode::Complete);
            prop_assert!((0..=150_000).contains(&m), "amount {}", m);
        }
    }

    #[test]
    fn parser_never_panics(s in "\\PC{0,80}") {
        let _ = guichet_rules::syntax::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_token_soup(toks in proptest::collection::vec(prop_oneof![
        Just("a"), Just("1"), Just("1.50 $"), Just("5 %"), Just("2020-05-01"), Just("\"x\""), Just("("), Just(")"),
        Just("and"), Just("or"), Just("not"), Just("if"), Just("then"), Just("else"), Just("is"), Just("none"),
        Just("in"), Just("["), Just("]"), Just(","), Just("+"), Just("-"), Just("*"), Just("/"), Just("<="), Just("=="),
        Just("min"), Just("."), Just("="),
    ], 0..40)) {
        let _ = guichet_rules::syntax::parse(&toks.join(" "));
    }

    #[test]
    fn program_loader_never_panics(s in "\\PC{0,200}") {
        let _ = load(&s);
    }

    #[test]
    fn money_round_trips(c in -1_000_000_000_000i64..1_000_000_000_000) {
        let m = Money(c);
        prop_assert_eq!(Money::parse(&m.to_string()), Ok(m));
    }
}
