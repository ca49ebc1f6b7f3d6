//! Accounts: the profile item, its email, phone and Lark guards, the TOTP step.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, Update};

use super::guesses::Committed;
use super::items::{
    Guard, Item, email_key, from_item, lark_key, n, phone_key, s, session_key, to_item, to_value,
    user_key,
};
use super::{ConditionalResult, DynamoStore, Write, failed};
use crate::clock::Timestamp;
use crate::model::User;
use crate::store::{Accounts, Settle, StoreError, StoreResult, Unique, UserChange};

/// The condition that the item's credential version is `version` (accounts
/// from before it was kept have none: version 0), and the value it names `:cv`.
pub(super) fn at_version(version: u64) -> (&'static str, AttributeValue) {
    let condition = if version == 0 {
        "(attribute_not_exists(cred_version) OR cred_version = :cv)"
    } else {
        "cred_version = :cv"
    };
    (condition, n(version))
}

/// The update of one profile attribute for a change other than email, phone
/// or Lark; and whether it moves the credential version on.
struct ProfileWrite {
    attr: &'static str,
    value: AttributeValue,
    bump: bool,
}

impl ProfileWrite {
    fn of(change: UserChange) -> StoreResult<Self> {
        let bump = change.ends_sessions();
        let (attr, value) = match change {
            UserChange::Name(v) => ("name", s(v)),
            UserChange::Avatar(v) => ("avatar", s(v)),
            UserChange::Password { hash, .. } => ("password", s(hash.expose().clone())),
            UserChange::Active(v) => ("active", AttributeValue::Bool(v)),
            UserChange::Totp(v) => ("totp", to_value(&v)?),
            UserChange::Email(_) | UserChange::Phone(_) | UserChange::Lark(_) => {
                return Err(StoreError::corrupt(
                    "change",
                    "guarded changes move a guard",
                ));
            }
        };
        Ok(ProfileWrite { attr, value, bump })
    }

    fn expression(&self) -> &'static str {
        if self.bump {
            "SET #a = :v, updated_at = :now ADD cred_version :one"
        } else {
            "SET #a = :v, updated_at = :now"
        }
    }
}

/// Puts a [`ProfileWrite`] on an update, of an `UpdateItem` or of a
/// transaction (two builder types with the same methods).
macro_rules! set_profile {
    ($update:expr, $write:expr, $now:expr) => {{
        let write: ProfileWrite = $write;
        let update = $update
            .update_expression(write.expression())
            .expression_attribute_names("#a", write.attr)
            .expression_attribute_values(":v", write.value)
            .expression_attribute_values(":now", n($now));
        if write.bump {
            update.expression_attribute_values(":one", n(1))
        } else {
            update
        }
    }};
}

impl DynamoStore {
    async fn user_via_guard(&self, guard: Item) -> StoreResult<Option<User>> {
        match self.get::<Guard>(guard).await? {
            Some(g) => self.user(&g.user_id).await,
            None => Ok(None),
        }
    }

    /// Sets one attribute of the user, which must exist (and moves its
    /// credential version on, if the change does).
    async fn update_profile(
        &self,
        id: &str,
        write: ProfileWrite,
        now: Timestamp,
    ) -> StoreResult<()> {
        let updated = self
            .send(|t| {
                let update = t
                    .update(user_key(id))
                    .condition_expression("attribute_exists(pk)");
                set_profile!(update, write, now).send()
            })
            .await
            .conditional()?;
        updated.map(|_| ()).map_err(|_| StoreError::NoSuchUser)
    }

    /// Applies `change` to `user` (as read) with what `settle` gives back, in
    /// one transaction; `false` when `settle`'s code was spent meanwhile.
    pub(super) async fn change_user(
        &self,
        user: &User,
        change: UserChange,
        settle: &Settle,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (write, keep) = match change {
            UserChange::Email(email) => {
                let old = Some(user.email.clone());
                return self
                    .move_guard(user, Unique::Email, old, Some(email), now, settle)
                    .await;
            }
            UserChange::Phone(phone) => {
                let old = user.phone.clone();
                return self
                    .move_guard(user, Unique::Phone, old, phone, now, settle)
                    .await;
            }
            UserChange::Lark(lark) => {
                let moved = GuardMove {
                    what: Unique::Lark,
                    old: user.lark.as_ref().map(|l| l.open_id.clone()),
                    new: lark.as_ref().map(|l| l.open_id.clone()),
                    value: to_value(&lark)?,
                };
                return self.move_guard_with(user, moved, now, settle).await;
            }
            UserChange::Password { hash, keep } => (
                ProfileWrite::of(UserChange::Password { hash, keep: None })?,
                keep,
            ),
            other => (ProfileWrite::of(other)?, None),
        };
        let update = Update::builder().set_key(Some(user_key(&user.id)));
        let mut writes = vec![];
        match &keep {
            // The version moves on from the one read, and the session kept
            // moves with it if it was at that version: a change racing a
            // reset or another change cannot keep a session alive.
            Some(id) => {
                let (condition, at) = at_version(user.cred_version);
                let update = update
                    .condition_expression(format!("attribute_exists(pk) AND {condition}"))
                    .expression_attribute_values(":cv", at.clone());
                writes.push(Write::Update(set_profile!(update, write, now)));
                writes.push(Write::Update(
                    Update::builder()
                        .set_key(Some(session_key(&user.id, id)))
                        .update_expression("SET cred_version = :next")
                        .condition_expression(format!(
                            "attribute_exists(pk) AND expires_at > :now AND {condition}"
                        ))
                        .expression_attribute_values(":cv", at)
                        .expression_attribute_values(":next", n(user.cred_version + 1))
                        .expression_attribute_values(":now", n(now)),
                ));
            }
            // Nothing to settle: one plain UpdateItem (a transaction costs twice as much).
            None if settle.is_empty() => {
                self.update_profile(&user.id, write, now).await?;
                return Ok(true);
            }
            None => {
                let update = update.condition_expression("attribute_exists(pk)");
                writes.push(Write::Update(set_profile!(update, write, now)));
            }
        }
        match self.commit(writes, settle).await? {
            Committed::Done => Ok(true),
            Committed::Lost => Ok(false),
            Committed::Refused(_) if keep.is_some() => Err(StoreError::Changed),
            Committed::Refused(_) => Err(StoreError::NoSuchUser),
        }
    }

    /// Moves the email or phone guard with the attribute it guards (the value itself).
    async fn move_guard(
        &self,
        user: &User,
        what: Unique,
        old: Option<String>,
        new: Option<String>,
        now: Timestamp,
        settle: &Settle,
    ) -> StoreResult<bool> {
        let value = new.clone().map_or(AttributeValue::Null(true), s);
        let moved = GuardMove {
            what,
            old,
            new,
            value,
        };
        self.move_guard_with(user, moved, now, settle).await
    }

    /// Moves a uniqueness guard with the attribute it guards, in one transaction
    /// conditioned on the user still holding `old` (another change raced us otherwise).
    async fn move_guard_with(
        &self,
        user: &User,
        moved: GuardMove,
        now: Timestamp,
        settle: &Settle,
    ) -> StoreResult<bool> {
        let GuardMove {
            what,
            old,
            new,
            value,
        } = moved;
        // The attribute, the path its guarded value is at, and the guard's key.
        let (attr, path, guard_key): (&str, &str, fn(&str) -> Item) = match what {
            Unique::Email => ("email", "#a", email_key),
            Unique::Phone => ("phone", "#a", phone_key),
            Unique::Lark => ("lark", "#a.open_id", lark_key),
        };
        let same_guard = match (&old, &new) {
            (Some(o), Some(n)) => guard_key(o) == guard_key(n),
            _ => false,
        };
        let update = Update::builder()
            .set_key(Some(user_key(&user.id)))
            .update_expression("SET #a = :new, updated_at = :now")
            .expression_attribute_names("#a", attr)
            .expression_attribute_values(":new", value)
            .expression_attribute_values(":now", n(now));
        let update = match &old {
            Some(o) => update
                .condition_expression(format!("{path} = :old"))
                .expression_attribute_values(":old", s(o.clone())),
            None => update
                .condition_expression(
                    "attribute_exists(pk) AND (attribute_not_exists(#a) OR attribute_type(#a, :null))",
                )
                .expression_attribute_values(":null", s("NULL")),
        };
        let mut writes = vec![Write::Update(update)];
        let mut new_guard_at = None;
        if !same_guard {
            if let Some(n) = &new {
                new_guard_at = Some(writes.len());
                let guard = Guard {
                    user_id: user.id.clone(),
                };
                writes.push(Write::Put(
                    Put::builder()
                        .set_item(Some(to_item(guard_key(n), &guard)?))
                        .condition_expression("attribute_not_exists(pk) OR user_id = :me")
                        .expression_attribute_values(":me", s(user.id.clone())),
                ));
            }
            if let Some(o) = &old {
                writes.push(Write::Delete(Delete::builder().set_key(Some(guard_key(o)))));
            }
        }
        match self.commit(writes, settle).await? {
            Committed::Done => Ok(true),
            Committed::Lost => Ok(false),
            Committed::Refused(c) if new_guard_at.is_some_and(|at| failed(&c, at)) => {
                Err(StoreError::Taken(what))
            }
            Committed::Refused(c) if failed(&c, 0) => Err(StoreError::unavailable(
                "the account changed meanwhile; try again",
            )),
            Committed::Refused(c) => Err(StoreError::unavailable(c)),
        }
    }
}

/// A guard to move: from the value `old` to `new`, the attribute becoming `value`.
struct GuardMove {
    what: Unique,
    old: Option<String>,
    new: Option<String>,
    value: AttributeValue,
}

#[async_trait]
impl Accounts for DynamoStore {
    async fn insert_user(&self, user: &User) -> StoreResult<()> {
        let new = |item: Item| {
            Write::Put(
                Put::builder()
                    .set_item(Some(item))
                    .condition_expression("attribute_not_exists(pk)"),
            )
        };
        let guard = || Guard {
            user_id: user.id.clone(),
        };
        let mut writes = vec![
            new(to_item(user_key(&user.id), user)?),
            new(to_item(email_key(&user.email), &guard())?),
        ];
        if let Some(phone) = &user.phone {
            writes.push(new(to_item(phone_key(phone), &guard())?));
        }
        match self.transact(writes).await? {
            Ok(()) => Ok(()),
            Err(c) if failed(&c, 1) => Err(StoreError::Taken(Unique::Email)),
            Err(c) if failed(&c, 2) => Err(StoreError::Taken(Unique::Phone)),
            Err(c) => Err(StoreError::unavailable(c)),
        }
    }

    async fn user(&self, id: &str) -> StoreResult<Option<User>> {
        self.get(user_key(id)).await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<User>> {
        self.user_via_guard(email_key(email)).await
    }

    async fn user_by_phone(&self, phone: &str) -> StoreResult<Option<User>> {
        self.user_via_guard(phone_key(phone)).await
    }

    async fn user_id_by_lark(&self, open_id: &str) -> StoreResult<Option<String>> {
        Ok(self
            .get::<Guard>(lark_key(open_id))
            .await?
            .map(|g| g.user_id))
    }

    async fn users(&self) -> StoreResult<Vec<User>> {
        let mut users = vec![];
        let mut start = None;
        loop {
            let out = self
                .send(|t| {
                    t.client
                        .scan()
                        .table_name(t.name)
                        .filter_expression("sk = :p")
                        .expression_attribute_values(":p", s("PROFILE"))
                        .set_exclusive_start_key(start)
                        .send()
                })
                .await?;
            for item in out.items.unwrap_or_default() {
                users.push(from_item(item)?);
            }
            start = out.last_evaluated_key;
            if start.is_none() {
                return Ok(users);
            }
        }
    }

    async fn update_user(&self, id: &str, change: UserChange, now: Timestamp) -> StoreResult<()> {
        let reads_first = match &change {
            UserChange::Email(_) | UserChange::Phone(_) | UserChange::Lark(_) => true,
            UserChange::Password { keep, .. } => keep.is_some(),
            _ => false,
        };
        if !reads_first {
            return self
                .update_profile(id, ProfileWrite::of(change)?, now)
                .await;
        }
        let user = self.user(id).await?.ok_or(StoreError::NoSuchUser)?;
        if matches!(&change, UserChange::Phone(p) if *p == user.phone) {
            return Ok(());
        }
        self.change_user(&user, change, &Settle::default(), now)
            .await?;
        Ok(())
    }
}
