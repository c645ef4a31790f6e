//! `guichet program …`: check, test, explain, simulate, schema, generate.
//!
//! Exit codes: 0 ok, 1 failures (tests failed), 2 usage or file errors.

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use guichet_rules::{Application, Lang, Loaded, Mode, RowStatus};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum ProgramCmd {
    /// Read program files and report every problem with file:line:column.
    Check { files: Vec<PathBuf> },
    /// Run the test cases written inside program files.
    Test { files: Vec<PathBuf> },
    /// Evaluate one application and explain the result.
    Explain(ExplainArgs),
    /// Compare two versions of a program on a caseload (JSON Lines).
    Simulate(SimulateArgs),
    /// Print the JSON Schema of the program file format.
    Schema,
    /// Write realistic applications for a program (JSON Lines), from a seed.
    Generate(GenerateArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LangArg {
    Fr,
    En,
}

#[derive(Args)]
pub struct ExplainArgs {
    file: PathBuf,
    /// The application: {"submitted_on": "2020-05-10", "answers": {…}}.
    #[arg(long)]
    answers: PathBuf,
    #[arg(long, value_enum, default_value = "fr")]
    lang: LangArg,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Treat the application as a draft: missing answers make rules undetermined.
    #[arg(long)]
    draft: bool,
}

#[derive(Args)]
pub struct SimulateArgs {
    /// The new version of the program.
    new: PathBuf,
    /// The version in force.
    #[arg(long)]
    baseline: PathBuf,
    /// Applications, one JSON object per line.
    #[arg(long)]
    applications: PathBuf,
    /// Write every application whose outcome changes to this CSV file.
    #[arg(long)]
    changes: Option<PathBuf>,
    /// Worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct GenerateArgs {
    file: PathBuf,
    #[arg(long, default_value_t = 1000)]
    count: usize,
    #[arg(long, default_value_t = 2020)]
    seed: u64,
    /// Output file (standard output if absent).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// A failure with its exit code: 1 for failed tests, 2 for bad files/usage.
struct Fail(u8);

pub fn run(cmd: ProgramCmd) -> ExitCode {
    let r = match cmd {
        ProgramCmd::Check { files } => check(&files),
        ProgramCmd::Test { files } => test(&files),
        ProgramCmd::Explain(a) => explain(&a),
        ProgramCmd::Simulate(a) => simulate(&a),
        ProgramCmd::Schema => schema(),
        ProgramCmd::Generate(a) => generate(&a),
    };
    match r {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(Fail(code))) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Loads a program, printing its diagnostics; `None` when it has errors.
fn load(path: &Path, quiet_warnings: bool) -> Result<Option<Loaded>> {
    let src = read(path)?;
    let name = path.display().to_string();
    match guichet_rules::load(&src) {
        Ok(loaded) => {
            if !quiet_warnings {
                for w in &loaded.warnings {
                    eprint!("{}", w.render(&name, &src));
                }
            }
            Ok(Some(loaded))
        }
        Err(diags) => {
            for d in &diags {
                eprint!("{}", d.render(&name, &src));
            }
            eprintln!("{name}: {} error{}", diags.len(), if diags.len() == 1 { "" } else { "s" });
            Ok(None)
        }
    }
}

fn need_files(files: &[PathBuf]) -> Result<()> {
    if files.is_empty() {
        anyhow::bail!("give at least one program file");
    }
    Ok(())
}

fn check(files: &[PathBuf]) -> Result<Result<(), Fail>> {
    need_files(files)?;
    let mut bad = false;
    for f in files {
        match load(f, false)? {
            Some(l) => {
                let p = &l.program;
                println!(
                    "{}: ok — {} ({} questions, {} parameters, {} rules, {} tests), version {}",
                    f.display(),
                    p.id,
                    p.questions.len(),
                    p.parameters.len(),
                    p.rules.len(),
                    p.tests.len(),
                    &p.version[..16]
                );
            }
            None => bad = true,
        }
    }
    Ok(if bad { Err(Fail(2)) } else { Ok(()) })
}

fn test(files: &[PathBuf]) -> Result<Result<(), Fail>> {
    need_files(files)?;
    let (mut passed, mut failed, mut bad_files) = (0, 0, false);
    for f in files {
        let Some(l) = load(f, true)? else {
            bad_files = true;
            continue;
        };
        let src = read(f)?;
        let report = l.program.run_tests();
        println!("{} ({} tests)", f.display(), report.outcomes.len());
        for o in &report.outcomes {
            let (line, _) = guichet_rules::line_col(&src, o.span.start);
            if o.passed() {
                println!("  ok    {}", o.name);
            } else {
                println!("  FAIL  {}  ({}:{line})", o.name, f.display());
                for (what, want, got) in &o.mismatches {
                    println!("          {what}:");
                    println!("            - expected: {want}");
                    println!("            + actual:   {got}");
                }
            }
        }
        passed += report.passed();
        failed += report.failed();
    }
    println!("{passed} passed, {failed} failed");
    Ok(if bad_files {
        Err(Fail(2))
    } else if failed > 0 {
        Err(Fail(1))
    } else {
        Ok(())
    })
}

fn explain(a: &ExplainArgs) -> Result<Result<(), Fail>> {
    let Some(l) = load(&a.file, true)? else {
        return Ok(Err(Fail(2)));
    };
    let p = &l.program;
    let text = read(&a.answers)?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", a.answers.display()))?;
    let lang = match a.lang {
        LangArg::Fr => Lang::Fr,
        LangArg::En => Lang::En,
    };
    let mode = if a.draft { Mode::Draft } else { Mode::Complete };
    let result = Application::from_json(&json).and_then(|app| p.prepare(&app)).and_then(|i| p.evaluate(&i, mode));
    match result {
        Ok(ev) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&p.evaluation_json(&ev, lang))?);
            } else {
                print!("{}", p.explain(&ev, lang));
            }
            Ok(Ok(()))
        }
        Err(e) => {
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&serde_json::json!({
                        "error": e.code, "message": e.message, "field": e.field
                    }))?
                );
            }
            let src = read(&a.file)?;
            match &e.span {
                Some(span) => {
                    let d =
                        guichet_rules::Diagnostic::error(format!("{}: {}", e.code.as_str(), e.message), span.clone());
                    eprint!("{}", d.render(&a.file.display().to_string(), &src));
                }
                None => eprintln!("error[{}]: {}", e.code.as_str(), e.message),
            }
            Ok(Err(Fail(1)))
        }
    }
}

fn simulate(a: &SimulateArgs) -> Result<Result<(), Fail>> {
    let (Some(new), Some(old)) = (load(&a.new, true)?, load(&a.baseline, true)?) else {
        return Ok(Err(Fail(2)));
    };
    let file =
        std::fs::File::open(&a.applications).with_context(|| format!("cannot read {}", a.applications.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = if size > 8 << 20 && !a.json {
        let b = indicatif::ProgressBar::new(size);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {bytes}/{total_bytes} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    } else {
        indicatif::ProgressBar::hidden()
    };
    let progress = |n: usize| bar.inc(n as u64);
    // The workers read the file chunk by chunk as they become free;
    // evaluated buffers come back through `pool` to be filled again.
    let pool = std::sync::Mutex::new(Vec::<Vec<u8>>::new());
    let chunks = Chunks { file, carry: Vec::new(), pool: &pool, done: false };
    let recycle = |buf: Vec<u8>| pool.lock().unwrap_or_else(|p| p.into_inner()).push(buf);
    let sim =
        guichet_rules::simulate::simulate_stream(&old.program, &new.program, a.threads, chunks, &progress, &recycle)
            .with_context(|| format!("cannot read {}", a.applications.display()))?;
    bar.finish_and_clear();
    if let Some(path) = &a.changes {
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?,
        );
        writeln!(out, "line,id,status_before,amount_before,status_after,amount_after")?;
        for c in &sim.changes {
            writeln!(
                out,
                "{},{},{},{},{},{}",
                c.line,
                c.id.as_deref().unwrap_or("").replace([',', '"', '\n'], " "),
                c.before.0.as_str(),
                c.before.1.to_string().trim_end_matches(" $"),
                c.after.0.as_str(),
                c.after.1.to_string().trim_end_matches(" $"),
            )?;
        }
        out.flush()?;
    }
    if a.json {
        let totals = |t: &guichet_rules::simulate::Totals| {
            serde_json::json!({
                "eligible": t.count(RowStatus::Eligible),
                "not_eligible": t.count(RowStatus::NotEligible),
                "undetermined": t.count(RowStatus::Undetermined),
                "error": t.count(RowStatus::Error),
                "cost": t.cost_money().to_string(),
            })
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "applications": sim.rows,
                "baseline": { "version": &*old.program.version, "totals": totals(&sim.baseline) },
                "candidate": { "version": &*new.program.version, "totals": totals(&sim.candidate) },
                "changed": sim.changes.len(),
                "transitions": sim.transitions,
                "unreadable": sim.unreadable_count,
            }))?
        );
        return Ok(Ok(()));
    }
    println!("{} applications", sim.rows);
    println!();
    println!("{:<14} {:>12} {:>12} {:>12}", "", "baseline", "new", "change");
    for s in RowStatus::ALL {
        let (b, n) = (sim.baseline.count(s), sim.candidate.count(s));
        println!("{:<14} {:>12} {:>12} {:>+12}", s.as_str(), b, n, n as i64 - b as i64);
    }
    let (cb, cn) = (sim.baseline.cost_money(), sim.candidate.cost_money());
    println!(
        "{:<14} {:>12} {:>12} {:>12}",
        "cost",
        cb.to_string().trim_end_matches(" $"),
        cn.to_string().trim_end_matches(" $"),
        guichet_rules::Money(cn.0 - cb.0).to_string().trim_end_matches(" $")
    );
    println!();
    println!("{} applications change outcome", sim.changes.len());
    for (i, from) in RowStatus::ALL.iter().enumerate() {
        for (j, to) in RowStatus::ALL.iter().enumerate() {
            let n = sim.transitions[i][j];
            if i != j && n > 0 {
                println!("  {:>10}  {} → {}", n, from.as_str(), to.as_str());
            }
        }
    }
    for c in sim.changes.iter().take(10) {
        println!(
            "  line {:>8} {:<14} {} {} → {} {}",
            c.line,
            c.id.as_deref().unwrap_or(""),
            c.before.0.as_str(),
            c.before.1,
            c.after.0.as_str(),
            c.after.1
        );
    }
    if sim.changes.len() > 10 {
        println!("  … (use --changes FILE.csv for all of them)");
    }
    if sim.unreadable_count > 0 {
        println!();
        println!("{} unreadable lines, for example:", sim.unreadable_count);
        for (line, msg) in sim.unreadable.iter().take(5) {
            println!("  {}:{line}: {msg}", a.applications.display());
        }
    }
    Ok(Ok(()))
}

/// A file read in chunks of whole lines (about 16 MB each), reusing the
/// buffers the simulation gives back.
struct Chunks<'a> {
    file: std::fs::File,
    /// The unfinished last line of the previous chunk.
    carry: Vec<u8>,
    pool: &'a std::sync::Mutex<Vec<Vec<u8>>>,
    done: bool,
}

impl Iterator for Chunks<'_> {
    type Item = std::io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::io::Read;
        const CHUNK: u64 = 16 << 20;
        while !self.done {
            let mut buf = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop().unwrap_or_default();
            buf.clear();
            buf.append(&mut self.carry);
            let before = buf.len();
            if let Err(e) = (&mut self.file).take(CHUNK).read_to_end(&mut buf) {
                self.done = true;
                return Some(Err(e));
            }
            if buf.len() - before < CHUNK as usize {
                self.done = true;
            } else {
                // Keep the unfinished last line for the next chunk.
                match buf.iter().rposition(|b| *b == b'\n') {
                    Some(nl) => {
                        self.carry.extend_from_slice(&buf[nl + 1..]);
                        buf.truncate(nl + 1);
                    }
                    None => {
                        self.carry = buf;
                        continue;
                    }
                }
            }
            if !buf.is_empty() {
                return Some(Ok(buf));
            }
        }
        None
    }
}

fn schema() -> Result<Result<(), Fail>> {
    println!("{}", serde_json::to_string_pretty(&guichet_rules::schema())?);
    Ok(Ok(()))
}

fn generate(a: &GenerateArgs) -> Result<Result<(), Fail>> {
    let Some(l) = load(&a.file, true)? else {
        return Ok(Err(Fail(2)));
    };
    let mut out: Box<dyn Write> = match &a.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot write {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut rng = guichet_rules::generate::rng(a.seed);
    for i in 0..a.count {
        let v = guichet_rules::generate::application(&l.program, &mut rng, i);
        serde_json::to_writer(&mut out, &v)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(Ok(()))
}
