//! Bad program files: each gets a precise error at the right line and
//! column, with a hint where one helps; nothing panics.

use guichet_rules::{Diagnostic, line_col, load};

/// A small valid program; tests replace parts of it.
const BASE: &str = r#"id = "demo"
title = { fr = "Démo", en = "Demo" }
opens = 2020-04-01
closes = 2020-07-15
decision = "human"

[parameters]
cap = { 2020-04-01 = "1500.00 $" }

[parameters.cutoff]
label = { fr = "Date limite du bail", en = "Lease cutoff" }
values = { 2020-04-01 = 2020-05-01 }

[questions.rent]
type = "money"
label = { fr = "Loyer", en = "Rent" }
min = "1.00 $"

[questions.housing]
type = "choice"
label = { fr = "Logement", en = "Housing" }
options = [
  { value = "ordinary", label = { fr = "Ordinaire", en = "Ordinary" } },
  { value = "hlm", label = { fr = "HLM", en = "Low-rental" } },
]

[questions.lease_start]
type = "date"
label = { fr = "Début du bail", en = "Lease start" }

[questions.months]
type = "integer"
label = { fr = "Mois", en = "Months" }
min = 1
max = 2

[derived.requested]
label = { fr = "Demandé", en = "Requested" }
value = "rent * months"

[rules.not_hlm]
label = { fr = "Pas un HLM", en = "Not low-rental" }
when = 'housing != "hlm"'
fails = { fr = "HLM exclus.", en = "Low-rental excluded." }

[rules.lease]
label = { fr = "Bail", en = "Lease" }
when = "lease_start <= cutoff"
fails = { fr = "Bail trop récent.", en = "Lease too recent." }

[amount]
label = { fr = "Montant", en = "Amount" }
value = "min(requested, cap)"
"#;

fn errors(src: &str) -> Vec<Diagnostic> {
    match load(src) {
        Ok(_) => panic!("expected errors, the program loaded:\n{src}"),
        Err(d) => d,
    }
}

/// Asserts one error whose message contains `msg`, at `line:col`, and
/// whose rendering shows a caret and the hint.
#[track_caller]
fn check(src: &str, msg: &str, line: usize, col: usize, hint: Option<&str>) {
    let ds = errors(src);
    let d = ds.iter().find(|d| d.message.contains(msg)).unwrap_or_else(|| {
        panic!("no error containing {msg:?}; got {:#?}", ds.iter().map(|d| &d.message).collect::<Vec<_>>())
    });
    assert_eq!(line_col(src, d.span.start), (line, col), "position of {:?}", d.message);
    if let Some(h) = hint {
        let got = d.hint.as_deref().unwrap_or("");
        assert!(got.contains(h), "hint {got:?} should contain {h:?}");
    }
    let rendered = d.render("demo.toml", src);
    assert!(rendered.contains(&format!("demo.toml:{line}:{col}")), "{rendered}");
    assert!(rendered.contains('^'), "{rendered}");
}

fn replace(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "BASE lacks {from:?}");
    BASE.replacen(from, to, 1)
}

#[test]
fn base_program_loads() {
    let l = load(BASE).expect("base loads");
    assert_eq!(l.program.rules.len(), 2);
    assert_eq!(l.program.version.len(), 64);
}

#[test]
fn malformed_toml() {
    let src = replace("decision = \"human\"", "decision = \"human");
    let d = &errors(&src)[0];
    assert_eq!(line_col(&src, d.span.start).0, 5);
}

#[test]
fn unknown_key_suggests_the_right_one() {
    let src = replace("min = \"1.00 $\"", "minimum = \"1.00 $\"");
    check(&src, "unknown field `minimum`", 17, 1, Some("min"));
}

#[test]
fn wrong_type_for_a_key() {
    let src = replace("decision = \"human\"", "decision = 3");
    check(&src, "expected text here", 5, 12, None);
}

#[test]
fn unknown_name_in_expression() {
    let src = replace("value = \"rent * months\"", "value = \"rent * month\"");
    check(&src, "unknown name `month`", 39, 17, Some("did you mean `months`?"));
}

#[test]
fn type_error_money_plus_date() {
    let src = replace("value = \"rent * months\"", "value = \"rent + lease_start\"");
    check(&src, "`+` does not apply to money and date", 39, 10, None);
}

#[test]
fn money_compared_with_integer_hints_at_units() {
    let src = replace("when = \"lease_start <= cutoff\"", "when = \"rent <= 1500\"");
    check(&src, "cannot compare money with integer", 48, 9, Some("1500 $"));
}

#[test]
fn choice_typo_is_caught_at_load() {
    let src = replace("when = 'housing != \"hlm\"'", "when = 'housing != \"hml\"'");
    check(&src, "\"hml\" is not one of the options", 43, 20, Some("did you mean \"hlm\"?"));
}

#[test]
fn single_equals_gets_a_hint() {
    let src = replace("when = 'housing != \"hlm\"'", "when = 'housing = \"hlm\"'");
    check(&src, "`=` alone is not a comparison", 43, 17, Some("=="));
}

#[test]
fn cycle_among_derived_values() {
    let src = replace(
        "value = \"rent * months\"",
        "value = \"other + rent\"\n\n[derived.other]\nlabel = { fr = \"A\", en = \"B\" }\nvalue = \"requested - rent\"",
    );
    check(&src, "cycle: ", 43, 10, Some("break the cycle"));
}

#[test]
fn condition_on_a_later_question() {
    let src = replace("type = \"date\"\n", "type = \"date\"\nask_if = \"months > 1\"\n");
    check(&src, "`months` is asked after this question", 29, 11, Some("before it"));
}

#[test]
fn unreachable_question() {
    let src =
        replace("type = \"date\"\n", "type = \"date\"\nask_if = 'housing == \"hlm\" and housing == \"ordinary\"'\n");
    check(&src, "can never be asked", 29, 11, None);
}

#[test]
fn rule_must_be_a_condition() {
    let src = replace("when = \"lease_start <= cutoff\"", "when = \"rent\"");
    check(&src, "must be yes/no", 48, 9, None);
}

#[test]
fn decimal_without_unit() {
    let src = replace("value = \"min(requested, cap)\"", "value = \"min(requested, 12.5)\"");
    check(&src, "has decimals but no unit", 53, 25, Some("12.5 $"));
}

#[test]
fn unknown_function() {
    let src = replace("value = \"min(requested, cap)\"", "value = \"minimum(requested, cap)\"");
    check(&src, "unknown function `minimum`", 53, 10, Some("`min`"));
}

#[test]
fn parameter_with_float_value() {
    let src = replace("cap = { 2020-04-01 = \"1500.00 $\" }", "cap = { 2020-04-01 = 1500.0 }");
    check(&src, "without a unit", 8, 7, None);
}

#[test]
fn duplicate_names_across_kinds() {
    let src = replace("[derived.requested]", "[derived.rent]");
    check(&src, "`rent` is already defined as a question", 37, 1, None);
}

#[test]
fn reserved_word_as_name() {
    let src = replace("[questions.months]", "[questions.if]");
    check(&src, "reserved word", 31, 1, None);
}

#[test]
fn escaped_strings_still_point_at_the_expression() {
    // A basic string with escapes cannot map columns exactly: the error
    // points at the whole string instead of a wrong column.
    let src = replace("when = 'housing != \"hlm\"'", "when = \"housing != \\\"hxx\\\"\"");
    check(&src, "\"hxx\" is not one of the options", 43, 8, None);
}

#[test]
fn test_case_with_unknown_question() {
    let src = format!(
        "{BASE}\n[[tests]]\nname = \"t\"\nsubmitted_on = 2020-05-01\nanswers = {{ rnt = \"1.00 $\" }}\nexpect = {{ eligible = true }}\n"
    );
    check(&src, "there is no question `rnt`", 58, 19, Some("rent"));
}

#[test]
fn test_case_with_badly_typed_answer() {
    let src = format!(
        "{BASE}\n[[tests]]\nname = \"t\"\nsubmitted_on = 2020-05-01\nanswers = {{ months = \"two\" }}\nexpect = {{ eligible = true }}\n"
    );
    check(&src, "expected a whole number", 58, 22, None);
}

#[test]
fn test_case_expecting_an_unknown_rule() {
    let src =
        format!("{BASE}\n[[tests]]\nname = \"t\"\nsubmitted_on = 2020-05-01\nexpect = {{ failed = [\"leas\"] }}\n");
    check(&src, "there is no rule `leas`", 58, 10, Some("lease"));
}

#[test]
fn many_errors_are_reported_at_once() {
    let src = replace("value = \"rent * months\"", "value = \"rent * month\"")
        .replace("when = \"lease_start <= cutoff\"", "when = \"lease_start <= cutof\"");
    assert!(errors(&src).len() >= 2);
}

#[test]
fn garbage_never_panics() {
    for src in ["", "\0", "id = 1", "[[[", "x = \"\u{202e}\"", &"a".repeat(10_000), &BASE[..BASE.len() / 2]] {
        let _ = load(src);
    }
}

#[test]
fn unused_questions_are_warned_about_unless_informational() {
    let src = replace(
        "[derived.requested]",
        "[questions.pets]\ntype = \"yes_no\"\nlabel = { fr = \"Animaux\", en = \"Pets\" }\n\n[derived.requested]",
    );
    let l = load(&src).expect("loads");
    let w = l.warnings.iter().find(|w| w.message.contains("`pets`")).expect("a warning");
    assert!(w.hint.as_deref().is_some_and(|h| h.contains("informational = true")));
    let src = src.replace("type = \"yes_no\"", "type = \"yes_no\"\ninformational = true");
    assert!(load(&src).expect("loads").warnings.iter().all(|w| !w.message.contains("`pets`")));
}
