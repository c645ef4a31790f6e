//! The `guichet` command line.

mod program_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    }
}
