//! `planx`: run the API locally (`planx serve`, what `cargo run` runs) and manage accounts.

mod cors;
mod serve;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use shared::clock::{Clock, SystemClock};
use shared::store::Store;
use shared::store::embedded::EmbeddedStore;

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

/// Which store the command works on.
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
    /// Use the AWS backend (DynamoDB table TABLE_NAME; SNS and SES for `serve`),
    /// with the standard AWS configuration (region, credentials, AWS_ENDPOINT_URL).
    #[arg(long, global = true)]
    pub aws: bool,
}

impl StoreArgs {
    /// Opens the chosen store: the embedded file, or the DynamoDB table through `sdk`.
    pub async fn open(
        &self,
        config: &shared::Config,
        sdk: &shared::aws::Sdk,
    ) -> Result<(Arc<dyn Store>, String), String> {
        if self.aws {
            let store = shared::aws::store(sdk, config);
            Ok((
                Arc::new(store),
                format!("DynamoDB table {}", config.table_name),
            ))
        } else {
            let store = EmbeddedStore::open(&self.data).map_err(|e| e.to_string())?;
            let pruned = store.prune(SystemClock.now()).map_err(|e| e.to_string())?;
            tracing::debug!(pruned, "dropped expired sessions, codes and limiter state");
            Ok((Arc::new(store), self.data.display().to_string()))
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the whole API on one local port (the default command).
    Serve(serve::ServeArgs),
    /// Manage accounts (there is no public sign-up).
    #[command(subcommand)]
    User(users::UserCommand),
    /// Manage the DynamoDB table.
    #[command(subcommand)]
    Table(TableCommand),
    /// Print the OpenAPI 3.1 document (`cargo run -- openapi > openapi.json`).
    Openapi,
}

#[derive(Subcommand)]
enum TableCommand {
    /// Create TABLE_NAME with its key schema (pk, sk), on-demand billing and TTL on expires_at.
    Create,
}

async fn create_table() -> Result<(), String> {
    let config = shared::Config::from_env().map_err(|e| e.to_string())?;
    shared::aws::store(&shared::aws::Sdk::from_env(), &config)
        .create_table()
        .await
        .map_err(|e| e.to_string())?;
    println!("created table {} (TTL on expires_at)", config.table_name);
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        print!("{}", planx::openapi::json());
        return ExitCode::SUCCESS;
    }
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
            Some(Command::Table(TableCommand::Create)) => create_table().await,
            Some(Command::Openapi) => Ok(()),
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
