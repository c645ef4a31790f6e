//! The two SHQ 2020 programs: they load, their in-file tests pass, and
//! evaluation explains itself; bad applications get precise errors.

use guichet_rules::{Application, ErrorCode, Lang, Loaded, Mode, Outcome, Status, load};

fn program(name: &str) -> Loaded {
    let path = format!("{}/../../programs/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(&path).expect("program file");
    match load(&src) {
        Ok(l) => l,
        Err(ds) => panic!("{}", ds.iter().map(|d| d.render(&path, &src)).collect::<String>()),
    }
}

fn app(json: serde_json::Value) -> Application {
    Application::from_json(&json).expect("valid application")
}

fn rent_loan_answers() -> serde_json::Value {
    serde_json::json!({
        "income_support": "cerb",
        "home": { "line1": "4321, rue Saint-Denis", "city": "Montréal", "province": "QC", "postal_code": "H2J 2L4" },
        "housing_type": "ordinary",
        "lease_start": "2019-07-01",
        "lease_end": "2020-06-30",
        "lease_copy": "bail.pdf",
        "told_landlord": true,
        "monthly_rent": "800.00",
        "months_covered": "both",
        "portion": "all",
        "landlord_name": "Gestion Tremblay inc.",
        "landlord_address": { "line1": "4500, boulevard Saint-Laurent", "city": "Montréal", "province": "QC", "postal_code": "H2T 1R2" }
    })
}

#[test]
fn both_programs_pass_their_own_tests() {
    for name in ["shq-pret-loyer-2020", "shq-menages-en-attente-2020"] {
        let l = program(name);
        let report = l.program.run_tests();
        assert!(report.outcomes.len() >= 15, "{name}: only {} tests", report.outcomes.len());
        let failed: Vec<_> = report.outcomes.iter().filter(|o| !o.passed()).collect();
        assert!(failed.is_empty(), "{name}: {failed:#?}");
    }
}

#[test]
fn every_rule_is_exercised_failing_by_some_test() {
    for name in ["shq-pret-loyer-2020", "shq-menages-en-attente-2020"] {
        let p = program(name).program;
        for r in &p.rules {
            let covered = p.tests.iter().any(|t| t.expect.failed.as_ref().is_some_and(|f| f.contains(&r.name)));
            assert!(covered, "{name}: no test expects rule `{}` to fail", r.name);
        }
    }
}

#[test]
fn eligible_rent_loan_is_capped_and_explained() {
    let p = program("shq-pret-loyer-2020").program;
    let a = app(serde_json::json!({ "submitted_on": "2020-05-10", "answers": rent_loan_answers() }));
    let ev = p.evaluate(&p.prepare(&a).expect("encodes"), Mode::Complete).expect("evaluates");
    assert_eq!(ev.status, Status::Eligible);
    assert_eq!(ev.amount.map(|m| m.cents()), Some(150_000));
    assert_eq!(&*ev.version, &*p.version);
    let fr = p.explain(&ev, Lang::Fr);
    assert!(fr.contains("admissible") && fr.contains("1\u{a0}500,00 $"), "{fr}");
    let en = p.explain(&ev, Lang::En);
    assert!(en.contains("eligible") && en.contains("$1,500.00"), "{en}");
    // The amount line shows the formula with values.
    assert!(fr.contains("800,00 $"), "{fr}");
}

#[test]
fn a_late_lease_fails_with_its_reason_values_and_what_would_have_passed() {
    let p = program("shq-pret-loyer-2020").program;
    let mut answers = rent_loan_answers();
    answers["lease_start"] = "2020-05-02".into();
    let a = app(serde_json::json!({ "submitted_on": "2020-05-10", "answers": answers }));
    let ev = p.evaluate(&p.prepare(&a).expect("encodes"), Mode::Complete).expect("evaluates");
    assert_eq!(ev.status, Status::NotEligible);
    assert_eq!(ev.amount, None);
    let failed: Vec<&str> = ev.failed().map(|r| p.rules[r.rule].name.as_str()).collect();
    assert_eq!(failed, ["lease_in_force"]);
    let r = ev.failed().next().expect("one failure");
    assert!(r.used.iter().any(|u| p.ref_name(&u.name) == "lease_start"));
    assert!(!r.would_pass.is_empty(), "a threshold failure states what would have passed");
    let fr = p.explain(&ev, Lang::Fr);
    assert!(fr.contains("au plus tard le 1er mai 2020"), "{fr}");
    let en = p.explain(&ev, Lang::En);
    assert!(en.contains("on or before May 1, 2020"), "{en}");
    let json = p.evaluation_json(&ev, Lang::En);
    assert_eq!(json["status"], "not_eligible");
    assert_eq!(json["version"], &*p.version);
}

#[test]
fn missing_answers_are_named_in_complete_mode_and_undetermined_in_draft_mode() {
    let p = program("shq-pret-loyer-2020").program;
    let mut answers = rent_loan_answers();
    answers.as_object_mut().expect("object").remove("told_landlord");
    let a = app(serde_json::json!({ "submitted_on": "2020-05-10", "answers": answers }));
    let inputs = p.prepare(&a).expect("encodes");
    let err = p.evaluate(&inputs, Mode::Complete).expect_err("missing");
    assert_eq!(err.code, ErrorCode::MissingAnswer);
    assert_eq!(err.field.as_deref(), Some("told_landlord"));
    let ev = p.evaluate(&inputs, Mode::Draft).expect("draft evaluates");
    assert_eq!(ev.status, Status::Undetermined);
    let r = ev.rules.iter().find(|r| r.outcome == Outcome::Unknown).expect("one unknown");
    assert_eq!(p.questions[r.missing[0]].id, "told_landlord");
}

#[test]
fn wrong_answers_get_precise_errors() {
    let p = program("shq-pret-loyer-2020").program;
    let cases = [
        ("monthly_rent", serde_json::json!("huit cents"), "monthly_rent"),
        ("monthly_rent", serde_json::json!(true), "expected an amount"),
        ("monthly_rent", serde_json::json!("0.00"), "below the minimum"),
        ("lease_start", serde_json::json!("2020-02-30"), "not a date"),
        ("housing_type", serde_json::json!("hml"), "not one of the options"),
        (
            "home",
            serde_json::json!({ "line1": "1 rue A", "city": "X", "province": "QQ", "postal_code": "H2J 2L4" }),
            "province",
        ),
        (
            "home",
            serde_json::json!({ "line1": "1 rue A", "city": "X", "province": "QC", "postal_code": "12345" }),
            "postal code",
        ),
        (
            "landlord_bank",
            serde_json::json!({ "institution": "81", "transit": "12345", "account": "1234567" }),
            "institution",
        ),
        ("monthly_rnt", serde_json::json!("800.00"), "did you mean `monthly_rent`"),
    ];
    for (q, v, expect) in cases {
        let mut answers = rent_loan_answers();
        answers[q] = v;
        let a = app(serde_json::json!({ "submitted_on": "2020-05-10", "answers": answers }));
        let err = p.prepare(&a).expect_err(q);
        assert_eq!(err.code, ErrorCode::InvalidAnswer);
        assert!(err.message.contains(expect), "{q}: {}", err.message);
        assert_eq!(err.field.as_deref(), Some(q));
    }
}

#[test]
fn the_window_is_enforced() {
    let p = program("shq-pret-loyer-2020").program;
    for (date, ok) in [("2020-07-15", true), ("2020-07-16", false), ("2019-01-01", false)] {
        let a = app(serde_json::json!({ "submitted_on": date, "answers": rent_loan_answers() }));
        let r = p.evaluate(&p.prepare(&a).expect("encodes"), Mode::Complete);
        match r {
            Ok(_) => assert!(ok, "{date} should be refused"),
            Err(e) => {
                assert!(!ok, "{date}: {e}");
                assert_eq!(e.code, ErrorCode::OutsideWindow);
                assert!(e.message.contains("15 juillet 2020") || e.message.contains("2020-07-15"), "{}", e.message);
            }
        }
    }
}

#[test]
fn malformed_applications_are_rejected_with_a_message() {
    for bad in [
        serde_json::json!([]),
        serde_json::json!({ "answers": {} }),
        serde_json::json!({ "submitted_on": "10/05/2020", "answers": {} }),
        serde_json::json!({ "submitted_on": "2020-05-10", "answers": [] }),
        serde_json::json!({ "submitted_on": "2020-05-10", "answer": {} }),
    ] {
        let e = Application::from_json(&bad).expect_err("rejected");
        assert_eq!(e.code, ErrorCode::InvalidAnswer);
        assert!(!e.message.is_empty());
    }
}

#[test]
fn division_by_zero_names_the_expression() {
    let src = r#"
id = "div"
title = { fr = "D", en = "D" }
opens = 2020-01-01
closes = 2020-12-31
decision = "automatic"
[questions.total]
type = "money"
label = { fr = "Total", en = "Total" }
[questions.people]
type = "integer"
label = { fr = "Personnes", en = "People" }
[rules.some]
label = { fr = "Part", en = "Share" }
when = "total / people > 100 $"
fails = { fr = "Trop peu.", en = "Too little." }
"#;
    let p = load(src).expect("loads").program;
    let a = app(serde_json::json!({ "submitted_on": "2020-05-10", "answers": { "total": "1000", "people": 0 } }));
    let e = p.evaluate(&p.prepare(&a).expect("encodes"), Mode::Complete).expect_err("division by zero");
    assert_eq!(e.code, ErrorCode::DivisionByZero);
    let span = e.span.expect("span");
    assert_eq!(&src[span], "total / people");
    // A branch not taken does not fail.
    let src2 = src.replace("total / people > 100 $", "if people > 0 then total / people > 100 $ else false");
    let p2 = load(&src2).expect("loads").program;
    let ev = p2.evaluate(&p2.prepare(&a).expect("encodes"), Mode::Complete).expect("no error");
    assert_eq!(ev.status, Status::NotEligible);
}

#[test]
fn parameters_follow_their_effective_dates() {
    let src = r#"
id = "dated"
title = { fr = "D", en = "D" }
opens = 2020-01-01
closes = 2020-12-31
decision = "automatic"
[parameters]
cap = { 2020-01-01 = "1000.00 $", 2020-06-01 = "2000.00 $" }
[questions.asked]
type = "money"
label = { fr = "Demandé", en = "Asked" }
[amount]
label = { fr = "Montant", en = "Amount" }
value = "min(asked, cap)"
"#;
    let p = load(src).expect("loads").program;
    let amount = |date: &str| {
        let a = app(serde_json::json!({ "submitted_on": date, "answers": { "asked": "5000" } }));
        p.evaluate(&p.prepare(&a).expect("encodes"), Mode::Complete).expect("evaluates").amount.map(|m| m.cents())
    };
    assert_eq!(amount("2020-05-31"), Some(100_000));
    assert_eq!(amount("2020-06-01"), Some(200_000));
}

#[test]
fn version_ignores_comments_but_not_meaning() {
    let path = format!("{}/../../programs/shq-pret-loyer-2020.toml", env!("CARGO_MANIFEST_DIR"));
    let src = std::fs::read_to_string(path).expect("file");
    let a = load(&src).expect("loads").program.version;
    let b = load(&format!("# a new comment\n{src}\n# another\n")).expect("loads").program.version;
    assert_eq!(a, b);
    let c = load(&src.replacen("1500.00 $", "2000.00 $", 1)).expect("loads").program.version;
    assert_ne!(a, c);
}
