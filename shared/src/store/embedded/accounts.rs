//! Accounts: `user/<id>`, with `email/` and `phone/` guards holding its id.

use async_trait::async_trait;

use super::EmbeddedStore;
use super::items::{Tx, email_key, lark_key, phone_key, session_key, user_key};
use crate::clock::Timestamp;
use crate::model::{Session, User};
use crate::store::records::live;
use crate::store::{Accounts, StoreError, StoreResult, Unique, UserChange};

#[async_trait]
impl Accounts for EmbeddedStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let user = user.clone();
        self.write(move |tx| {
            let email = email_key(&user.email);
            if tx.get::<String>(&email)?.is_some() {
                return Err(StoreError::Taken(Unique::Email));
            }
            if let Some(phone) = &user.phone {
                if tx.get::<String>(&phone_key(phone))?.is_some() {
                    return Err(StoreError::Taken(Unique::Phone));
                }
                tx.put(&phone_key(phone), &user.id)?;
            }
            tx.put(&email, &user.id)?;
            tx.put(&user_key(&user.id), &user)
        })
        .await
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        self.read(&user_key(id))
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.user_via_guard(&email_key(email))
    }

    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>> {
        self.user_via_guard(&phone_key(phone))
    }

    async fn user_id_by_lark(&self, open_id: &str) -> StoreResult<Option<String>> {
        self.read(&lark_key(open_id))
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        self.read_prefix("user/")
    }

    async fn update_user(&self, id: &str, change: UserChange, now: Timestamp) -> StoreResult<()> {
        let id = id.to_string();
        self.write(move |tx| tx.apply_change(&id, change, now))
            .await
    }
}

impl Tx<'_> {
    /// Applies one change to the account `id`, moving its guards along.
    pub fn apply_change(
        &mut self,
        id: &str,
        change: UserChange,
        now: Timestamp,
    ) -> StoreResult<()> {
        let mut user = self.user(id)?;
        let bumps = change.ends_sessions();
        match change {
            UserChange::Email(email) => {
                let (old, new) = (email_key(&user.email), email_key(&email));
                if old != new {
                    self.check_guard(&new, id, Unique::Email)?;
                    self.delete(&old)?;
                    self.put(&new, &id)?;
                }
                user.email = email;
            }
            UserChange::Phone(phone) => {
                if let Some(p) = &phone {
                    self.check_guard(&phone_key(p), id, Unique::Phone)?;
                }
                if let Some(old) = &user.phone {
                    self.delete(&phone_key(old))?;
                }
                if let Some(p) = &phone {
                    self.put(&phone_key(p), &id)?;
                }
                user.phone = phone;
            }
            UserChange::Name(name) => user.name = name,
            UserChange::Avatar(avatar) => user.avatar = avatar,
            UserChange::Password { hash, keep } => {
                if let Some(keep) = keep {
                    self.move_session_along(&user, &keep, now)?;
                }
                user.password = hash;
            }
            UserChange::Totp(totp) => user.totp = totp,
            UserChange::Lark(lark) => {
                let (old, new) = (
                    user.lark.as_ref().map(|l| lark_key(&l.open_id)),
                    lark.as_ref().map(|l| lark_key(&l.open_id)),
                );
                if let Some(new) = &new {
                    self.check_guard(new, id, Unique::Lark)?;
                }
                if let Some(old) = &old {
                    self.delete(old)?;
                }
                if let Some(new) = &new {
                    self.put(new, &id)?;
                }
                user.lark = lark;
            }
            UserChange::Active(active) => user.active = active,
        }
        if bumps {
            user.cred_version += 1;
        }
        user.updated_at = now;
        self.put(&user_key(id), &user)
    }

    /// Stamps session `id` of `user` with the credential version that
    /// `user`'s change is about to set, if it is live and valid until now.
    fn move_session_along(&mut self, user: &User, id: &str, now: Timestamp) -> StoreResult<()> {
        let key = session_key(&user.id, id);
        let Some(mut session) = live(self.get::<Session>(&key)?, now) else {
            return Err(StoreError::Changed);
        };
        if !session.is_valid_for(user) {
            return Err(StoreError::Changed);
        }
        session.cred_version = user.cred_version + 1;
        self.put(&key, &session)
    }
}

impl EmbeddedStore {
    fn user_via_guard(&self, guard: &str) -> StoreResult<Option<User>> {
        match self.read::<String>(guard)? {
            Some(id) => self.read(&user_key(&id)),
            None => Ok(None),
        }
    }
}
