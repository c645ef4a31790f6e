//! The `guichet` command line.

mod pay_cmd;
mod program_cmd;
mod service_cmd;
mod sign_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

// mimalloc, not glibc's malloc: a payment batch of 100,000 spent about a
// third of its time in malloc and free (perf; README, "Payments";
// ARCHITECTURE.md on the allocator).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "guichet", version, about = "Put citizen services online: aid programs and electronic signatures")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Program files: check, test, explain, simulate, schema, generate.
    #[command(subcommand)]
    Program(program_cmd::ProgramCmd),
    /// The built-in certification authority: init, issue, revoke, crl.
    #[command(subcommand)]
    Ca(sign_cmd::CaCmd),
    /// Sign a PDF with a PAdES signature (incremental update).
    Sign(Box<sign_cmd::SignArgs>),
    /// Validate every signature of a PDF (exit 0: all TOTAL-PASSED).
    Verify(sign_cmd::VerifyArgs),
    /// The built-in RFC 3161 timestamp authority.
    #[command(subcommand)]
    Tsa(TsaCmd),
    /// Run the service (JSON API) with settings from guichet.toml and GUICHET_* variables.
    Serve(service_cmd::ServeArgs),
    /// Apply the database migrations.
    Migrate(service_cmd::DbArgs),
    /// A ready demo instance on SQLite: both SHQ programs, demo accounts, sample dossiers.
    Demo(service_cmd::DemoArgs),
    /// The audit trail: verify every hash chain and checkpoint, or sign a checkpoint.
    #[command(subcommand)]
    Audit(service_cmd::AuditCmd),
    /// Accounts: create the first administrator.
    #[command(subcommand)]
    Admin(service_cmd::AdminCmd),
    /// Payments: the ready queue, batches (create, approve, export), returns.
    #[command(subcommand)]
    Payments(pay_cmd::PaymentsCmd),
    /// Loans: what is owed and when; pre-authorized debits.
    #[command(subcommand)]
    Loans(pay_cmd::LoansCmd),
}

#[derive(Subcommand)]
enum TsaCmd {
    /// Answer timestamp requests over HTTP.
    Serve(sign_cmd::TsaServeArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Program(cmd) => program_cmd::run(cmd),
        Command::Ca(cmd) => sign_cmd::exit(sign_cmd::ca(cmd)),
        Command::Sign(a) => sign_cmd::exit(sign_cmd::sign(&a)),
        Command::Verify(a) => sign_cmd::exit(sign_cmd::verify(&a)),
        Command::Tsa(TsaCmd::Serve(a)) => sign_cmd::exit(sign_cmd::tsa_serve(&a)),
        Command::Serve(a) => service_cmd::serve(&a),
        Command::Migrate(a) => service_cmd::migrate(&a),
        Command::Demo(a) => service_cmd::demo(&a),
        Command::Audit(c) => service_cmd::audit(&c),
        Command::Admin(c) => service_cmd::admin(&c),
        Command::Payments(c) => pay_cmd::payments(&c),
        Command::Loans(c) => pay_cmd::loans(&c),
    }
}
