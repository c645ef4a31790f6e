//! `guichet payments …` and `guichet loans …`: the finance screens for
//! scripts and operators. Each command acts as a named account (`--as`),
//! whose roles are checked as on the screens: the two-person rule holds
//! here too.

use anyhow::{Context, Result, anyhow};
use clap::{Args, Subcommand};
use guichet_app::{App, Caller, PayFormat};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::service_cmd::{DbArgs, app_for, report, runtime};

#[derive(Args, Debug)]
pub struct Who {
    #[command(flatten)]
    db: DbArgs,
    /// The finance officer's account (email) the command acts as.
    #[arg(long = "as", value_name = "EMAIL")]
    who: String,
}

#[derive(Subcommand, Debug)]
pub enum PaymentsCmd {
    /// Approved dossiers whose payment may go out, and those held back (why).
    Ready {
        #[command(flatten)]
        who: Who,
        #[arg(long)]
        json: bool,
    },
    /// Payment batches: create, approve (a second officer), export.
    #[command(subcommand)]
    Batch(BatchCmd),
    /// Apply the bank's returns (a pain.002 status report, or a CSV: reference, status, reason).
    ImportReturns {
        #[command(flatten)]
        who: Who,
        file: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum BatchCmd {
    /// Build a batch from every ready dossier, or from those named.
    Create {
        #[command(flatten)]
        who: Who,
        /// Only these dossiers (repeat the option).
        #[arg(long = "dossier")]
        dossiers: Vec<String>,
        /// When the money should reach the payees (YYYY-MM-DD; default today).
        #[arg(long)]
        execution_date: Option<String>,
    },
    /// Approve a batch another officer built.
    Approve {
        #[command(flatten)]
        who: Who,
        id: String,
    },
    /// Write an approved batch's bank file.
    Export {
        #[command(flatten)]
        who: Who,
        id: String,
        /// pain001 (ISO 20022 XML) or cpa005 (Payments Canada Standard 005).
        #[arg(long)]
        format: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// The latest batches.
    List {
        #[command(flatten)]
        who: Who,
    },
}

#[derive(Subcommand, Debug)]
pub enum LoansCmd {
    /// Loans not fully repaid, soonest due first.
    Due {
        #[command(flatten)]
        who: Who,
        /// Only those due within this many days (overdue included).
        #[arg(long)]
        within: Option<i64>,
        #[arg(long)]
        json: bool,
    },
    /// A batch of pre-authorized debits for the loans due whose borrowers
    /// agreed to them (Standard 005 D records once approved and exported).
    Debits {
        #[command(flatten)]
        who: Who,
        #[arg(long, default_value_t = 30)]
        within: i64,
        #[arg(long)]
        execution_date: String,
    },
}

fn with_app<T>(who: &Who, f: impl AsyncFnOnce(&App, &Caller) -> Result<T>) -> Result<T> {
    runtime()?.block_on(async {
        let (app, store) = app_for(&who.db).await?;
        let caller = app.caller_as_operator(&who.who).await.map_err(|e| anyhow!("{e}"))?;
        let r = f(&app, &caller).await;
        store.close().await;
        r
    })
}

fn money(cents: i64) -> String {
    format!("{}.{:02} $", cents / 100, cents % 100)
}

pub fn payments(cmd: &PaymentsCmd) -> ExitCode {
    report(match cmd {
        PaymentsCmd::Ready { who, json } => with_app(who, async |app, by| {
            let list = app.payments_ready(by).await.map_err(|e| anyhow!("{e}"))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            let ready = list.iter().filter(|l| l.blocked.is_none()).count();
            println!("{ready} ready, {} held back", list.len() - ready);
            for l in &list {
                let status = l.blocked.as_deref().unwrap_or("ready");
                println!(
                    "{}  {:>12}  {}  {}  {status}",
                    l.dossier,
                    money(l.amount),
                    l.payee,
                    l.bank.as_deref().unwrap_or("-")
                );
            }
            Ok(())
        }),
        PaymentsCmd::Batch(b) => batch(b),
        PaymentsCmd::ImportReturns { who, file } => with_app(who, async |app, by| {
            let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let r = app.import_returns(by, &data).await.map_err(|e| anyhow!("{}: {e}", file.display()))?;
            let pending =
                if r.pending > 0 { format!("; {} still pending at the bank", r.pending) } else { String::new() };
            println!("{} paid, {} returned, {} repayments recorded{pending}", r.paid, r.returned, r.repayments);
            Ok(())
        }),
    })
}

fn batch(cmd: &BatchCmd) -> Result<()> {
    match cmd {
        BatchCmd::Create { who, dossiers, execution_date } => with_app(who, async |app, by| {
            let only = (!dossiers.is_empty()).then_some(dossiers.as_slice());
            let b = app.create_batch(by, only, execution_date.as_deref()).await.map_err(|e| anyhow!("{e}"))?;
            println!(
                "batch {} created: {} payments, {} ({}); a second finance officer approves it",
                b.id,
                b.count,
                money(b.total),
                b.currency
            );
            Ok(())
        }),
        BatchCmd::Approve { who, id } => with_app(who, async |app, by| {
            let b = app.approve_batch(by, id).await.map_err(|e| anyhow!("{e}"))?;
            println!("batch {} approved by {}", b.id, b.approved_by.unwrap_or_default());
            Ok(())
        }),
        BatchCmd::Export { who, id, format, out } => with_app(who, async |app, by| {
            let format = PayFormat::parse(format).map_err(|e| anyhow!("{e}"))?;
            let (bytes, _, _) = app.export_batch(by, id, format).await.map_err(|e| anyhow!("{e}"))?;
            // Whole or nothing: a temporary file renamed into place.
            let tmp = out.with_extension("partial");
            std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
            println!("{}: {} bytes", out.display(), bytes.len());
            let n = app.notify_exported_batches().await.map_err(|e| anyhow!("{e}"))?;
            if n > 0 {
                println!("payment notices queued for {n} batch(es)");
            }
            Ok(())
        }),
        BatchCmd::List { who } => with_app(who, async |app, by| {
            for b in app.batches(by).await.map_err(|e| anyhow!("{e}"))? {
                println!(
                    "{}  {}  {}  {} payments  {}  built by {}{}",
                    b.id,
                    b.direction,
                    b.state,
                    b.count,
                    money(b.total),
                    b.created_by,
                    b.approved_by.map(|a| format!(", approved by {a}")).unwrap_or_default()
                );
            }
            Ok(())
        }),
    }
}

pub fn loans(cmd: &LoansCmd) -> ExitCode {
    report(match cmd {
        LoansCmd::Due { who, within, json } => with_app(who, async |app, by| {
            let list = app.loans_due(by, *within).await.map_err(|e| anyhow!("{e}"))?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(());
            }
            for l in &list {
                println!(
                    "{}  {}  balance {}  due {} ({} days){}",
                    l.dossier,
                    l.borrower,
                    money(l.balance),
                    l.due,
                    l.days_left,
                    if l.debit_authorized { "  debit authorized" } else { "" }
                );
            }
            println!("{} loans, {} owed", list.len(), money(list.iter().map(|l| l.balance).sum()));
            Ok(())
        }),
        LoansCmd::Debits { who, within, execution_date } => with_app(who, async |app, by| {
            let b = app.create_debit_batch(by, *within, execution_date).await.map_err(|e| anyhow!("{e}"))?;
            println!("debit batch {} created: {} debits, {}", b.id, b.count, money(b.total));
            Ok(())
        }),
    })
}
