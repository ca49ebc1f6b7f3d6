//! Creating accounts: there is no public sign-up, so the operator's tools
//! (`planx user add`, `planx serve --user`) and tests come through here.

use crate::clock::Timestamp;
use crate::crypto;
use crate::model::User;
use crate::password::{self, PasswordError, Passwords};
use crate::store::{Store, StoreError, Unique};
use crate::validate::{self, FieldError};

#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub password: String,
    pub name: Option<String>,
    pub phone: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("{0} is already used by another account")]
    Taken(Unique),
    #[error(transparent)]
    Hash(#[from] PasswordError),
    #[error(transparent)]
    Store(StoreError),
}

/// Validates and stores a new active account with an Argon2id hash of its password.
pub async fn create(
    store: &dyn Store,
    passwords: &Passwords,
    new: NewUser,
    now: Timestamp,
) -> Result<User, AccountError> {
    let email = validate::email("email", &new.email)?;
    if let Some(why) = password::policy_violation(&new.password) {
        return Err(FieldError::new("password", why).into());
    }
    let phone = new
        .phone
        .as_deref()
        .map(|p| validate::phone("phone", p))
        .transpose()?;
    let default_name = email.split('@').next().unwrap_or_default().to_string();
    let name = validate::text(
        "name",
        new.name.as_deref().unwrap_or(&default_name),
        validate::MAX_NAME,
        true,
    )?;
    let hash = passwords.hash(&new.password).await?;
    let user = User {
        id: crypto::new_user_id(),
        email,
        name,
        avatar: String::new(),
        phone,
        totp: None,
        lark: None,
        password: hash,
        active: true,
        sessions: 0,
        history: None,
        created_at: now,
        updated_at: now,
        cred_version: 0,
    };
    match store.insert_user(&user).await {
        Ok(()) => Ok(user),
        Err(StoreError::Taken(what)) => Err(AccountError::Taken(what)),
        Err(e) => Err(AccountError::Store(e)),
    }
}
