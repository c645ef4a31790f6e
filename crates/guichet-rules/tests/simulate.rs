//! What-if simulation: totals and changes agree with evaluating every
//! application one by one; bad lines are reported with their number;
//! feeding in chunks gives the same result as feeding at once.

use guichet_rules::simulate::{simulate, simulate_stream};
use guichet_rules::{Application, Mode, Program, RowStatus, Status, generate, load};

fn rent_loan(cap: &str) -> Program {
    let path = format!("{}/../../programs/shq-pret-loyer-2020.toml", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(path).expect("file");
    let src =
        src.replacen("values = { 2020-04-01 = \"1500.00 $\" }", &format!("values = {{ 2020-04-01 = \"{cap}\" }}"), 1);
    load(&src).expect("loads").program
}

fn jsonl(p: &Program, n: usize) -> String {
    let mut rng = generate::rng(7);
    let mut out = String::new();
    for i in 0..n {
        out.push_str(&generate::application(p, &mut rng, i).to_string());
        out.push('\n');
    }
    out
}

fn one_by_one(p: &Program, line: &str) -> (RowStatus, i64) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
        return (RowStatus::Error, 0);
    };
    let Ok(a) = Application::from_json(&v) else {
        return (RowStatus::Error, 0);
    };
    match p.prepare(&a).and_then(|i| p.evaluate(&i, Mode::Complete)) {
        Err(_) => (RowStatus::Error, 0),
        Ok(ev) => (
            match ev.status {
                Status::Eligible => RowStatus::Eligible,
                Status::NotEligible => RowStatus::NotEligible,
                Status::Undetermined => RowStatus::Undetermined,
            },
            ev.amount.map(|m| m.cents()).unwrap_or(0),
        ),
    }
}

#[test]
fn totals_and_changes_match_row_by_row_evaluation() {
    let (old, new) = (rent_loan("1500.00 $"), rent_loan("2000.00 $"));
    assert!(old.same_inputs(&new));
    let data = jsonl(&old, 3000);
    let sim = simulate(&old, &new, data.as_bytes(), 2, &|_| {});
    assert_eq!(sim.rows, 3000);
    let mut counts = [[0usize; 4]; 2];
    let mut cost = [0i128; 2];
    let mut changes = Vec::new();
    for (i, line) in data.lines().enumerate() {
        let (a, b) = (one_by_one(&old, line), one_by_one(&new, line));
        counts[0][a.0 as usize] += 1;
        counts[1][b.0 as usize] += 1;
        cost[0] += i128::from(a.1);
        cost[1] += i128::from(b.1);
        if a != b {
            changes.push(i + 1);
        }
    }
    assert_eq!(sim.baseline.counts, counts[0]);
    assert_eq!(sim.candidate.counts, counts[1]);
    assert_eq!((sim.baseline.cost, sim.candidate.cost), (cost[0], cost[1]));
    assert_eq!(sim.changes.iter().map(|c| c.line).collect::<Vec<_>>(), changes);
    assert!(!changes.is_empty(), "raising the cap changes some amounts");
    // Raising the cap never lowers an amount nor changes eligibility.
    for c in &sim.changes {
        assert_eq!(c.before.0, c.after.0);
        assert!(c.after.1 > c.before.1);
    }
}

#[test]
fn unreadable_lines_are_counted_with_their_number() {
    let p = rent_loan("1500.00 $");
    let mut data = jsonl(&p, 5);
    data.push_str("{not json\n\n{\"submitted_on\": \"2020-05-10\", \"answers\": [] }\n");
    data.push_str(&jsonl(&p, 2));
    let sim = simulate(&p, &p, data.as_bytes(), 1, &|_| {});
    assert_eq!(sim.rows, 9);
    assert_eq!(sim.unreadable_count, 2);
    assert_eq!(sim.unreadable.iter().map(|u| u.0).collect::<Vec<_>>(), [6, 8]);
    assert!(sim.unreadable[1].1.contains("answers"), "{}", sim.unreadable[1].1);
    assert!(sim.changes.is_empty());
}

#[test]
fn chunked_feeding_equals_one_feed() {
    let (old, new) = (rent_loan("1500.00 $"), rent_loan("1200.00 $"));
    let data = jsonl(&old, 2000);
    let whole = simulate(&old, &new, data.as_bytes(), 2, &|_| {});
    let lines: Vec<&str> = data.split_inclusive('\n').collect();
    let chunks = lines.chunks(333).map(|c| Ok::<_, ()>(c.concat().into_bytes()));
    let recycled = std::sync::atomic::AtomicUsize::new(0);
    let streamed = simulate_stream(&old, &new, 2, chunks, &|_| {}, &|_| {
        recycled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(streamed, Ok(whole));
    assert_eq!(recycled.into_inner(), 2000usize.div_ceil(333));
}

#[test]
fn a_read_error_stops_the_simulation() {
    let p = rent_loan("1500.00 $");
    let data = jsonl(&p, 10);
    let chunks = vec![Ok(data.clone().into_bytes()), Err("disk on fire"), Ok(data.into_bytes())];
    let r = simulate_stream(&p, &p, 1, chunks.into_iter(), &|_| {}, &|_| {});
    assert_eq!(r, Err("disk on fire"));
}

#[test]
fn versions_with_different_questions_are_encoded_separately() {
    let old = rent_loan("1500.00 $");
    let path = format!("{}/../../programs/shq-pret-loyer-2020.toml", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(path).expect("file");
    // A new version whose rent question has a higher minimum.
    let new = load(&src.replacen("min = \"1.00 $\"", "min = \"500.00 $\"", 1)).expect("loads").program;
    assert!(!old.same_inputs(&new));
    let data = jsonl(&old, 1500);
    let sim = simulate(&old, &new, data.as_bytes(), 2, &|_| {});
    let expected_errors = data.lines().filter(|l| one_by_one(&new, l).0 == RowStatus::Error).count();
    assert_eq!(sim.candidate.count(RowStatus::Error), expected_errors);
    assert!(sim.candidate.count(RowStatus::Error) > sim.baseline.count(RowStatus::Error));
}
