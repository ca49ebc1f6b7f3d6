//! `planx`: run the API locally (`planx serve`, what `cargo run` runs) and manage accounts.

mod serve;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "planx",
    version,
    about = "The planx account API, locally, and its admin commands"
)]
struct Cli {
    #[command(flatten)]
    store: StoreArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Where the embedded store lives.
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// The embedded database file.
    #[arg(
        long,
        env = "PLANX_DATA",
        default_value = ".planx/planx.redb",
        global = true
    )]
    pub data: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the whole API on one local port (the default command).
    Serve(serve::ServeArgs),
    /// Manage accounts (there is no public sign-up).
    #[command(subcommand)]
    User(users::UserCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None => serve::run(serve::ServeArgs::default(), &cli.store).await,
            Some(Command::Serve(args)) => serve::run(args, &cli.store).await,
            Some(Command::User(cmd)) => users::run(cmd, &cli.store).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
