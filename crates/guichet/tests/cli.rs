//! The `guichet program` commands, run as a user runs them: output and exit
//! codes (0 ok, 1 failures, 2 usage or file errors).

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn guichet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_guichet")).args(args).current_dir(root()).output().expect("runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("guichet-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

const RENT: &str = "programs/shq-pret-loyer-2020.toml";
const WAIT: &str = "programs/shq-menages-en-attente-2020.toml";

#[test]
fn check_accepts_the_programs() {
    let o = guichet(&["program", "check", RENT, WAIT]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("shq-pret-loyer-2020: ok") || out.contains("ok — shq-pret-loyer-2020"), "{out}");
}

#[test]
fn check_reports_file_line_column_and_exits_2() {
    let src = std::fs::read_to_string(root().join(RENT)).expect("file");
    let bad = tmp("bad.toml");
    std::fs::write(&bad, src.replacen("lease_start <=", "lease_strat <=", 1)).expect("write");
    let o = guichet(&["program", "check", bad.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("unknown name `lease_strat`"), "{err}");
    assert!(err.contains("bad.toml:"), "{err}");
    assert!(err.contains("did you mean `lease_start`?"), "{err}");
    assert!(err.contains('^'), "{err}");
}

#[test]
fn test_runs_every_case_and_passes() {
    let o = guichet(&["program", "test", RENT, WAIT]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    let out = text(&o.stdout);
    let last = out.lines().last().unwrap_or("");
    let passed: usize = last.split(' ').next().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(passed >= 30, "{last}");
    assert!(last.ends_with("0 failed"), "{last}");
}

#[test]
fn a_failing_test_shows_a_diff_and_exits_1() {
    let src = std::fs::read_to_string(root().join(RENT)).expect("file");
    let changed = src.replacen("values = { 2020-04-01 = \"1500.00 $\" }", "values = { 2020-04-01 = \"1400.00 $\" }", 1);
    assert_ne!(src, changed);
    let f = tmp("cap1400.toml");
    std::fs::write(&f, changed).expect("write");
    let o = guichet(&["program", "test", f.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains("- expected: 1500.00 $") && out.contains("+ actual:   1400.00 $"), "{out}");
}

#[test]
fn explain_in_french_english_and_json() {
    let a = "examples/pret-loyer-refuse.json";
    let fr = guichet(&["program", "explain", RENT, "--answers", a]);
    assert_eq!(fr.status.code(), Some(0), "{}", text(&fr.stderr));
    assert!(text(&fr.stdout).contains("non admissible"));
    let en = guichet(&["program", "explain", RENT, "--answers", a, "--lang", "en"]);
    assert!(text(&en.stdout).contains("not eligible"));
    let js = guichet(&["program", "explain", RENT, "--answers", a, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&js.stdout).expect("json");
    assert_eq!(v["status"], "not_eligible");
    let failed: Vec<&str> = v["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .filter(|r| r["outcome"] == "fail")
        .filter_map(|r| r["rule"].as_str())
        .collect();
    assert_eq!(failed, ["lease_in_force", "landlord_informed_first"]);
}

#[test]
fn explain_reports_missing_answers_with_exit_1() {
    let f = tmp("incomplete.json");
    std::fs::write(&f, r#"{"submitted_on": "2020-05-10", "answers": {"monthly_rent": "800.00"}}"#).expect("write");
    let o = guichet(&["program", "explain", RENT, "--answers", f.to_str().expect("utf8")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stderr).contains("missing_answer"), "{}", text(&o.stderr));
}

#[test]
fn simulate_summarizes_and_writes_changes() {
    let apps = tmp("apps.jsonl");
    let g = guichet(&[
        "program",
        "generate",
        RENT,
        "--count",
        "2000",
        "--seed",
        "1",
        "--out",
        apps.to_str().expect("utf8"),
    ]);
    assert_eq!(g.status.code(), Some(0), "{}", text(&g.stderr));
    let src = std::fs::read_to_string(root().join(RENT)).expect("file");
    let new = tmp("cap2000.toml");
    std::fs::write(
        &new,
        src.replacen("values = { 2020-04-01 = \"1500.00 $\" }", "values = { 2020-04-01 = \"2000.00 $\" }", 1),
    )
    .expect("write");
    let changes = tmp("changes.csv");
    let o = guichet(&[
        "program",
        "simulate",
        new.to_str().expect("utf8"),
        "--baseline",
        RENT,
        "--applications",
        apps.to_str().expect("utf8"),
        "--changes",
        changes.to_str().expect("utf8"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.starts_with("2000 applications"), "{out}");
    let n: usize = out
        .lines()
        .find(|l| l.contains("change outcome"))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("count");
    let csv = std::fs::read_to_string(&changes).expect("csv");
    assert_eq!(csv.lines().count(), n + 1);
    assert!(n > 0);
    let js = guichet(&[
        "program",
        "simulate",
        new.to_str().expect("utf8"),
        "--baseline",
        RENT,
        "--applications",
        apps.to_str().expect("utf8"),
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&js.stdout).expect("json");
    assert_eq!(v["applications"], 2000);
    assert_eq!(v["changed"], n);
}

#[test]
fn schema_is_json_schema_of_the_format() {
    let o = guichet(&["program", "schema"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["properties"]["questions"].is_object(), "{v}");
    assert!(v["properties"]["rules"].is_object());
}

#[test]
fn usage_and_missing_files_exit_2() {
    assert_eq!(guichet(&["program", "frobnicate"]).status.code(), Some(2));
    assert_eq!(guichet(&["program", "check"]).status.code(), Some(2));
    let o = guichet(&["program", "check", "no/such/file.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("cannot read no/such/file.toml"));
}
