//! The embedded store: one redb table of JSON items keyed like the DynamoDB design
//! (`user/<id>`, `email/<email>`, `session/<user>/<id>`, `code/<purpose>/<subject>`...).
//!
//! redb because it is a real embedded database: ACID transactions that survive a
//! crash, one writer at a time (so every read-check-write below is atomic, which
//! is what makes codes single-use and counters exact under races), and a
//! multi-process mode so `planx user add` works while `planx serve` runs.
//! `in_memory` uses the same code on redb's in-memory backend.

mod accounts;
mod codes;
mod flows;
mod guesses;
mod items;
mod limits;
mod sessions;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::sync::Arc;

use redb::{Database, ReadableDatabase};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::{Store, StoreError, StoreResult};
use crate::clock::Timestamp;
use items::{ITEMS, Tx, get, keys_with_prefix};

#[derive(Clone)]
pub struct EmbeddedStore {
    db: Arc<Database>,
}

/// The default login read: one snapshot read after another is already cheap here.
impl Store for EmbeddedStore {}

impl EmbeddedStore {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(StoreError::unavailable)?;
        }
        let db = Database::builder()
            .set_concurrency_mode(redb::ConcurrencyMode::MultiWriter)
            .create(path)
            .map_err(StoreError::unavailable)?;
        Self::init(db)
    }

    /// A store that lives only as long as the process.
    pub fn in_memory() -> Self {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .expect("an in-memory database always opens");
        Self::init(db).expect("an in-memory database always initialises")
    }

    /// Creates the table if needed and brings older items up to date.
    fn init(db: Database) -> StoreResult<Self> {
        let store = Self { db: Arc::new(db) };
        store.transact(upgrade)?;
        Ok(store)
    }

    /// Deletes expired sessions, codes, Lark flows and limiter state (TTL for the embedded store).
    pub fn prune(&self, now: Timestamp) -> StoreResult<usize> {
        self.transact(move |tx| {
            let mut dropped = 0;
            for prefix in ["session/", "code/", "flow/", "rate/", "limit/", "limit-ip/"] {
                for key in keys_with_prefix(&tx.table, prefix)? {
                    let expires_at = tx
                        .get::<Value>(&key)?
                        .and_then(|v| v.get("expires_at").and_then(|e| e.as_i64()))
                        .unwrap_or(0);
                    if expires_at <= now {
                        tx.delete(&key)?;
                        dropped += 1;
                    }
                }
            }
            Ok(dropped)
        })
    }

    /// Runs `f` in one write transaction; committed only if it returns `Ok`.
    fn transact<T>(&self, f: impl FnOnce(&mut Tx) -> StoreResult<T>) -> StoreResult<T> {
        let txn = self.db.begin_write().map_err(StoreError::unavailable)?;
        let out = {
            let table = txn.open_table(ITEMS).map_err(StoreError::unavailable)?;
            let mut tx = Tx { table };
            f(&mut tx)?
        };
        txn.commit().map_err(StoreError::unavailable)?;
        Ok(out)
    }

    /// [`Self::transact`] on the blocking pool: a commit waits for the disk.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx) -> StoreResult<T> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.transact(f))
            .await
            .map_err(StoreError::unavailable)?
    }

    /// A consistent snapshot read; never waits for writers.
    fn read<T: DeserializeOwned>(&self, key: &str) -> StoreResult<Option<T>> {
        let txn = self.db.begin_read().map_err(StoreError::unavailable)?;
        let table = txn.open_table(ITEMS).map_err(StoreError::unavailable)?;
        get(&table, key)
    }

    /// Two records from one consistent snapshot.
    fn read_two<A: DeserializeOwned, B: DeserializeOwned>(
        &self,
        a: &str,
        b: &str,
    ) -> StoreResult<(Option<A>, Option<B>)> {
        let txn = self.db.begin_read().map_err(StoreError::unavailable)?;
        let table = txn.open_table(ITEMS).map_err(StoreError::unavailable)?;
        Ok((get(&table, a)?, get(&table, b)?))
    }

    /// The records of the last `n` keys with `prefix`, last key first.
    fn read_prefix_newest<T: DeserializeOwned>(
        &self,
        prefix: &str,
        n: usize,
    ) -> StoreResult<Vec<T>> {
        let txn = self.db.begin_read().map_err(StoreError::unavailable)?;
        let table = txn.open_table(ITEMS).map_err(StoreError::unavailable)?;
        // Every key with the prefix sorts before the prefix with its last byte raised.
        let mut end = prefix.as_bytes().to_vec();
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let end = String::from_utf8(end).map_err(StoreError::unavailable)?;
        let mut records = vec![];
        for entry in table
            .range(prefix..end.as_str())
            .map_err(StoreError::unavailable)?
            .rev()
            .take(n)
        {
            let (k, _) = entry.map_err(StoreError::unavailable)?;
            records.extend(get(&table, k.value())?);
        }
        Ok(records)
    }

    fn read_prefix<T: DeserializeOwned>(&self, prefix: &str) -> StoreResult<Vec<T>> {
        let txn = self.db.begin_read().map_err(StoreError::unavailable)?;
        let table = txn.open_table(ITEMS).map_err(StoreError::unavailable)?;
        keys_with_prefix(&table, prefix)?
            .iter()
            .filter_map(|k| get(&table, k).transpose())
            .collect()
    }
}

/// Brings items of older files up to date. Until the backends shared their
/// records, this store nested a limiter's window (`{"state": {..}, "expires_at": ..}`):
/// flattened, so a limiter in force keeps holding across the upgrade. Login
/// failures were kept at `fail/<identifier>` (and on the account) before the
/// guessing buckets replaced them: dropped, as nothing reads them.
fn upgrade(tx: &mut Tx) -> StoreResult<()> {
    for key in keys_with_prefix(&tx.table, "rate/")? {
        let Some(mut item) = tx.get::<Map<String, Value>>(&key)? else {
            continue;
        };
        if let Some(Value::Object(nested)) = item.remove("state") {
            item.extend(nested);
            tx.put(&key, &item)?;
        }
    }
    for key in keys_with_prefix(&tx.table, "fail/")? {
        tx.delete(&key)?;
    }
    Ok(())
}
