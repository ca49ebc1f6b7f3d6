//! `planx user ...`: the operator's account management.

use clap::Subcommand;
use shared::accounts::{self, NewUser};
use shared::clock::{Clock, SystemClock, rfc3339};
use shared::config::Config;
use shared::password::Passwords;
use shared::store::{Store, UserChange};
use shared::validate;

use crate::StoreArgs;

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create an account.
    Add {
        #[arg(long)]
        email: String,
        /// The password (or set PLANX_PASSWORD, which keeps it out of shell history).
        #[arg(long, env = "PLANX_PASSWORD", hide_env_values = true)]
        password: String,
        #[arg(long)]
        name: Option<String>,
        /// E.164 phone number, for SMS sign-in.
        #[arg(long)]
        phone: Option<String>,
    },
    /// List every account.
    List,
    /// Stop an account from signing in and end its sessions.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Let a disabled account sign in again.
    Enable {
        #[arg(long)]
        email: String,
    },
}

pub async fn run(cmd: UserCommand, store_args: &StoreArgs) -> Result<(), String> {
    let config = Config::from_env().map_err(|e| e.to_string())?;
    let (store, _) = store_args
        .open(&config, &shared::aws::Sdk::from_env())
        .await?;
    let now = SystemClock.now();
    match cmd {
        UserCommand::Add {
            email,
            password,
            name,
            phone,
        } => {
            let passwords = Passwords::new(&config.argon2).map_err(|e| e.to_string())?;
            let new = NewUser {
                email,
                password,
                name,
                phone,
            };
            let user = accounts::create(store.as_ref(), &passwords, new, now)
                .await
                .map_err(|e| e.to_string())?;
            println!("created {} ({})", user.email, user.id);
        }
        UserCommand::List => {
            let mut users = store.users().await.map_err(|e| e.to_string())?;
            users.sort_by(|a, b| a.email.cmp(&b.email));
            println!(
                "{:<24}  {:<32}  {:<16}  {:<8}  {:>8}  created",
                "id", "email", "phone", "status", "logins"
            );
            for u in users {
                println!(
                    "{:<24}  {:<32}  {:<16}  {:<8}  {:>8}  {}",
                    u.id,
                    u.email,
                    u.phone
                        .as_deref()
                        .map(|p| validate::mask(p, 4))
                        .unwrap_or_default(),
                    if u.active { "active" } else { "disabled" },
                    u.sessions,
                    rfc3339(u.created_at)
                );
            }
        }
        UserCommand::Disable { email } => set_active(store.as_ref(), &email, false, now).await?,
        UserCommand::Enable { email } => set_active(store.as_ref(), &email, true, now).await?,
    }
    Ok(())
}

async fn set_active(store: &dyn Store, email: &str, active: bool, now: i64) -> Result<(), String> {
    let user = store
        .user_by_email(email)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no account has the email {email}"))?;
    store
        .update_user(&user.id, UserChange::Active(active), now)
        .await
        .map_err(|e| e.to_string())?;
    if !active {
        // The disable moved the credential version on: every session is
        // refused already. Deleting them tidies up.
        match store.end_sessions(&user.id, None, now).await {
            Ok(ended) => println!("disabled {} and ended {ended} session(s)", user.email),
            Err(e) => println!(
                "disabled {}; its sessions are refused, but deleting them failed ({e}): run it again to tidy up",
                user.email
            ),
        }
    } else {
        println!("enabled {}", user.email);
    }
    Ok(())
}
