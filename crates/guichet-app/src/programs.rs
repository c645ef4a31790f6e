//! Published programs: loaded from the store, checked and tested before a
//! new version is published, kept compiled in memory (by id and version:
//! a dossier is always evaluated with the version it was created under).

use guichet_core::Action;
use guichet_rules::Program;
use serde::Serialize;
use std::sync::Arc;

use crate::{App, AppError, Caller, Result};

/// A published, compiled program version.
#[derive(Debug)]
pub struct Published {
    pub id: String,
    pub version: String,
    pub source: String,
    pub program: Program,
}

/// What the API shows of a program.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ProgramSummary {
    pub id: String,
    pub version: String,
    pub title: serde_json::Value,
    pub summary: Option<serde_json::Value>,
    pub organization: Option<String>,
    pub opens: String,
    pub closes: String,
    /// `human` or `automatic`.
    pub decision: String,
    pub questions: Vec<serde_json::Value>,
    pub rules: Vec<serde_json::Value>,
}

fn bilingual(b: &guichet_rules::Bilingual) -> serde_json::Value {
    serde_json::json!({"fr": b.fr, "en": b.en})
}

impl Published {
    pub fn summary(&self) -> ProgramSummary {
        let p = &self.program;
        ProgramSummary {
            id: p.id.clone(),
            version: self.version.clone(),
            title: bilingual(&p.title),
            summary: p.summary.as_ref().map(bilingual),
            organization: p.organization.clone(),
            opens: p.opens.to_string(),
            closes: p.closes.to_string(),
            decision: serde_json::to_value(p.decision)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            questions: p
                .questions
                .iter()
                .map(|q| {
                    serde_json::json!({
                        "id": q.id,
                        "type": q.kind,
                        "label": bilingual(&q.label),
                        "help": q.help.as_ref().map(bilingual),
                        "section": q.section,
                        "ask_if": q.ask_if,
                        "optional": q.optional,
                        "options": q.options,
                        "accept": q.accept,
                    })
                })
                .collect(),
            rules: p
                .rules
                .iter()
                .map(|r| serde_json::json!({"name": r.name, "label": bilingual(&r.label), "norm": r.norm}))
                .collect(),
        }
    }
}

/// Compiles a program file; errors become one `invalid_program` error with
/// every diagnostic rendered `file:line:col`.
pub(crate) fn compile(source: &str) -> Result<Program> {
    match guichet_rules::load(source) {
        Ok(l) => Ok(l.program),
        Err(diags) => {
            let rendered: Vec<String> =
                diags.iter().filter(|d| d.is_error()).map(|d| d.render("program.toml", source)).collect();
            Err(AppError::Invalid {
                code: "invalid_program",
                message: format!("the program file has {} error(s)", rendered.len()),
                field: None,
                details: Some(serde_json::json!(rendered)),
            })
        }
    }
}

impl App {
    /// Loads every current program version from the store.
    pub async fn load_programs(&self) -> Result<usize> {
        let rows = self.store.current_programs().await?;
        for (id, version, source) in &rows {
            self.cache(id, version, source)?;
        }
        Ok(rows.len())
    }

    fn cache(&self, id: &str, version: &str, source: &str) -> Result<Arc<Published>> {
        let program = compile(source)?;
        let p = Arc::new(Published { id: id.into(), version: version.into(), source: source.into(), program });
        self.programs
            .write()
            .map_err(|_| AppError::Internal("program cache poisoned".into()))?
            .insert((id.into(), version.into()), p.clone());
        Ok(p)
    }

    /// The current version of a program.
    pub async fn current_program(&self, id: &str) -> Result<Arc<Published>> {
        let version = self.store.current_version(id).await?.ok_or(AppError::NotFound)?;
        self.program_version(id, &version, None).await
    }

    /// A given version (compiled once, then from the cache).
    pub async fn program_version(&self, id: &str, version: &str, source: Option<&str>) -> Result<Arc<Published>> {
        if let Some(p) = self
            .programs
            .read()
            .map_err(|_| AppError::Internal("program cache poisoned".into()))?
            .get(&(id.to_owned(), version.to_owned()))
        {
            return Ok(p.clone());
        }
        let source = match source {
            Some(s) => s.to_owned(),
            None => self.store.program_source(id, version).await?.ok_or(AppError::NotFound)?,
        };
        self.cache(id, version, &source)
    }

    /// Every published program (current versions). Public.
    pub async fn programs(&self) -> Result<Vec<ProgramSummary>> {
        // Sources are read only for a version not compiled yet: this runs
        // on every home and queue page.
        let mut out = Vec::new();
        for (id, version) in self.store.current_program_versions().await? {
            out.push(self.program_version(&id, &version, None).await?.summary());
        }
        Ok(out)
    }

    /// Publishes a new version: it must load without error and pass its own
    /// tests. `by` is a program manager (`None`: the CLI, at setup).
    pub async fn publish_program(&self, by: Option<&Caller>, source: &str) -> Result<ProgramSummary> {
        if let Some(c) = by {
            c.may(Action::ManagePrograms, None)?;
        }
        let program = compile(source)?;
        let report = program.run_tests();
        let failed: Vec<String> = report.outcomes.iter().filter(|o| !o.passed()).map(|o| o.name.clone()).collect();
        if !failed.is_empty() {
            return Err(AppError::Invalid {
                code: "program_tests_failed",
                message: format!("{} of the program's tests fail", failed.len()),
                field: None,
                details: Some(serde_json::json!(failed)),
            });
        }
        let version = program.version.to_string();
        let by_id = by.map(|c| c.id().to_owned()).unwrap_or_else(|| "system".into());
        self.store.publish_program(&program.id, &version, source, &by_id, self.now()).await?;
        Ok(self.cache(&program.id, &version, source)?.summary())
    }
}

/// What a program manager sees before publishing a version.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProgramCheck {
    pub id: Option<String>,
    pub version: Option<String>,
    /// Every error and warning, rendered `file:line:col` with a caret.
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
    pub tests_passed: usize,
    pub tests_failed: Vec<String>,
    /// Whether it may be published (no error, every test passes).
    pub publishable: bool,
    /// The version in force now, if the program exists.
    pub current_version: Option<String>,
}

/// A dossier whose result changes: (dossier, status before, status after,
/// amount before, amount after).
pub type ChangedOutcome = (String, String, String, Option<i64>, Option<i64>);

/// A new version against the live caseload: each submitted dossier of the
/// program evaluated with the version in force and with the new one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CaseloadSimulation {
    pub dossiers: usize,
    pub eligible_before: usize,
    pub eligible_after: usize,
    /// Cents.
    pub amount_before: i64,
    pub amount_after: i64,
    pub changed: Vec<ChangedOutcome>,
}

impl App {
    /// Checks a program file and runs its tests, without publishing.
    pub async fn check_program(&self, by: &Caller, source: &str) -> Result<ProgramCheck> {
        by.may(Action::ManagePrograms, None)?;
        let mut out = ProgramCheck::default();
        match guichet_rules::load(source) {
            Err(diags) => {
                for d in diags {
                    let r = d.render("program.toml", source);
                    if d.is_error() { out.errors.push(r) } else { out.warnings.push(r) }
                }
            }
            Ok(l) => {
                out.warnings = l.warnings.iter().map(|d| d.render("program.toml", source)).collect();
                let report = l.program.run_tests();
                out.tests_passed = report.passed();
                out.tests_failed = report.outcomes.iter().filter(|o| !o.passed()).map(|o| o.name.clone()).collect();
                out.current_version = self.store.current_version(&l.program.id).await?;
                out.id = Some(l.program.id.clone());
                out.version = Some(l.program.version.to_string());
                out.publishable = out.tests_failed.is_empty();
            }
        }
        Ok(out)
    }

    /// Evaluates every submitted dossier of the program with the version in
    /// force and with `source`, and reports what changes.
    pub async fn simulate_program(&self, by: &Caller, source: &str) -> Result<CaseloadSimulation> {
        by.may(Action::ManagePrograms, None)?;
        let new = compile(source)?;
        let current = self.current_program(&new.id).await?;
        let date = self.today()?;
        let mut out = CaseloadSimulation::default();
        let mut after: Option<String> = None;
        loop {
            let q = guichet_store::Queue {
                program: Some(new.id.clone()),
                after: after.clone(),
                limit: 500,
                ..Default::default()
            };
            let (page, next) = self.store.queue(&q).await?;
            for s in page {
                let Some(row) = self.store.dossier(&s.id).await? else { continue };
                let app = guichet_rules::Application::from_json(
                    &serde_json::json!({"submitted_on": date.to_string(), "answers": row.dossier.answers}),
                );
                let run = |p: &guichet_rules::Program| -> (String, Option<i64>) {
                    match app
                        .clone()
                        .and_then(|a| p.prepare(&a))
                        .and_then(|i| p.evaluate(&i, guichet_rules::Mode::Complete))
                    {
                        Ok(e) => (
                            serde_json::to_value(e.status)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            e.amount.map(|m| m.0),
                        ),
                        Err(e) => (e.code.as_str().to_owned(), None),
                    }
                };
                let (b, ba) = run(&current.program);
                let (a, aa) = run(&new);
                out.dossiers += 1;
                out.eligible_before += usize::from(b == "eligible");
                out.eligible_after += usize::from(a == "eligible");
                out.amount_before += ba.unwrap_or(0);
                out.amount_after += aa.unwrap_or(0);
                if (&b, ba) != (&a, aa) {
                    out.changed.push((s.id.clone(), b, a, ba, aa));
                }
            }
            match next {
                Some(c) => after = Some(c),
                None => break,
            }
        }
        Ok(out)
    }
}

impl App {
    /// A program's figures, for its dashboard (program managers).
    pub async fn program_stats(&self, by: &Caller, id: &str) -> Result<guichet_store::ProgramStats> {
        by.may(Action::ManagePrograms, None)?;
        Ok(self.store.program_stats(id).await?)
    }

    /// Every dossier of a program, without personal data, as CSV (program
    /// managers): id, state, created, submitted, amount in dollars, flags.
    pub async fn program_csv(&self, by: &Caller, id: &str) -> Result<String> {
        by.may(Action::ManagePrograms, None)?;
        let mut out = String::from("dossier,state,created_at,submitted_at,amount,flags\n");
        let mut after = None;
        loop {
            let q = guichet_store::Queue {
                program: Some(id.to_owned()),
                order: guichet_store::QueueOrder::NewestCreated,
                after: after.clone(),
                limit: 500,
                ..Default::default()
            };
            let (page, next) = self.store.queue(&q).await?;
            for d in page {
                let state =
                    serde_json::to_value(d.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                let amount = d
                    .amount
                    .map(|a| guichet_rules::Money(a).to_string().trim_end_matches(" $").to_owned())
                    .unwrap_or_default();
                let iso = |t: i64| jiff::Timestamp::from_second(t).map(|x| x.to_string()).unwrap_or_default();
                out.push_str(&format!(
                    "{},{},{},{},{},\"{}\"\n",
                    d.id,
                    state,
                    iso(d.created_at),
                    d.submitted_at.map(iso).unwrap_or_default(),
                    amount,
                    d.flags.join(" ").replace('"', "")
                ));
            }
            match next {
                Some(c) => after = Some(c),
                None => return Ok(out),
            }
        }
    }
}

impl App {
    /// A program's budget in cents, if a program manager set one.
    pub async fn program_budget(&self, id: &str) -> Result<Option<i64>> {
        Ok(self.store.settings().await?.get(&format!("budget:{id}")).and_then(|v| v.as_i64()))
    }

    /// Sets a program's budget (cents, positive).
    pub async fn set_program_budget(&self, by: &Caller, id: &str, cents: i64) -> Result<()> {
        by.may(Action::ManagePrograms, None)?;
        if cents <= 0 {
            return Err(AppError::Invalid {
                code: "invalid_request",
                message: "the budget is a positive amount".into(),
                field: Some("budget".into()),
                details: None,
            });
        }
        self.current_program(id).await?;
        Ok(self.store.set_settings(&[(format!("budget:{id}"), cents.into())], by.id(), self.now()).await?)
    }
}
