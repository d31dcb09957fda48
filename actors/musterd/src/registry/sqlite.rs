//! The registry in SQLite (docs/spec.md §9.1): one file in WAL mode, or
//! one database in memory, behind one connection.
//!
//! SQLite calls block, so each runs on tokio's blocking pool
//! (`spawn_blocking`), one at a time: callers wait for the connection
//! asynchronously, and the actix thread never waits on the disk. The
//! blocking pool, rather than a thread of our own, because tokio knows its
//! tasks: a paused test clock does not jump ahead while a write is under
//! way, so tests on virtual time see the writes they made.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::FutureExt;
use futures::future::BoxFuture;
use muster::model::{Life, MachineStatus};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{
    Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface, addresses_of,
};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use tokio::sync::watch;

use super::backend::{BackendError, RegistryBackend};
use super::record::{Credential, MachineRecord, PutOutcome, Recorded, Registered, Registration};

/// The schema this build reads and writes, kept in the database's
/// `user_version`. A database at 0 (new) is set up; an older one would be
/// migrated step by step; a newer one is refused.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE machines (
    -- AUTOINCREMENT: an incarnation is never used twice, even after the
    -- machine with the highest one is removed.
    incarnation      INTEGER PRIMARY KEY AUTOINCREMENT,
    model            TEXT NOT NULL,
    machine          TEXT NOT NULL,
    instance_id      TEXT,
    life             TEXT NOT NULL,
    agent_status     TEXT NOT NULL,
    manual           INTEGER NOT NULL,
    registered_at    INTEGER NOT NULL,
    instance_status  TEXT NOT NULL DEFAULT 'pending',
    instance_message TEXT NOT NULL DEFAULT '',
    addresses        TEXT NOT NULL DEFAULT '[]',
    interfaces       TEXT NOT NULL DEFAULT '[]',
    recorded_at      INTEGER,
    UNIQUE (model, machine)
);
CREATE TABLE credentials (
    model      TEXT PRIMARY KEY,
    valid      INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    changed_at INTEGER NOT NULL
) WITHOUT ROWID;
";

const COLUMNS: &str = "incarnation, machine, instance_id, life, agent_status, manual, \
    registered_at, instance_status, instance_message, addresses, interfaces, recorded_at";

/// How the SQLite file is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long a write waits for another connection's lock on the file
    /// before it fails as locked. Default 5 s.
    pub busy_timeout: Duration,
    /// The largest the database may grow to, in bytes; a write that would
    /// grow it further fails as full. Never below the size it has already.
    /// Default: no limit but the disk's.
    pub max_size: Option<u64>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            busy_timeout: Duration::from_secs(5),
            max_size: None,
        }
    }
}

/// The registry's storage in SQLite. See the [module documentation](self).
pub struct SqliteBackend {
    conn: Arc<tokio::sync::Mutex<Connection>>,
    versions: Arc<Versions>,
    location: String,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Opens the database at `path`, creating it when it is not there, in
    /// WAL mode, and sets up or checks its schema. Blocks while it does:
    /// open it before serving. A failure names the path.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteBackend, BackendError> {
        let shown = path.display().to_string();
        let in_path = |e: BackendError| BackendError::Storage(format!("{shown}: {e}"));
        let conn = Connection::open(path).map_err(|e| in_path(e.into()))?;
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
            .map_err(|e| in_path(e.into()))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(in_path(BackendError::Storage(format!(
                "cannot use write-ahead logging (journal mode stays {mode})"
            ))));
        }
        Self::set_up(conn, options, format!("sqlite:{shown}")).map_err(in_path)
    }

    /// A database in memory, gone when the backend is dropped: for the demo
    /// and tests.
    pub fn in_memory() -> Result<SqliteBackend, BackendError> {
        let conn = Connection::open_in_memory()?;
        Self::set_up(
            conn,
            &SqliteOptions::default(),
            "sqlite::memory:".to_owned(),
        )
    }

    fn set_up(
        mut conn: Connection,
        options: &SqliteOptions,
        location: String,
    ) -> Result<SqliteBackend, BackendError> {
        // A crash loses nothing committed in WAL mode with NORMAL; a power
        // cut may lose the last commits, never the file.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(options.busy_timeout)?;
        migrate(&mut conn)?;
        if let Some(max_size) = options.max_size {
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let page_size = u64::try_from(page_size).unwrap_or(1).max(1);
            let pages = max_size.div_ceil(page_size).clamp(1, i64::MAX as u64);
            conn.pragma_update(None, "max_page_count", pages as i64)?;
        }
        Ok(SqliteBackend {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
            versions: Arc::default(),
            location,
        })
    }

    /// Runs `f` on the connection, on the blocking pool, once the
    /// connection is free.
    fn run<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, BackendError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, BackendError> + Send + 'static,
    {
        let conn = self.conn.clone();
        async move {
            let mut conn = conn.lock_owned().await;
            tokio::task::spawn_blocking(move || f(&mut conn))
                .await
                .map_err(|e| BackendError::Storage(format!("the storage task failed: {e}")))?
        }
        .boxed()
    }

    /// [`Self::run`], then a bump of the model's version when `f` says the
    /// model changed.
    fn run_changing<T, F>(
        &self,
        model: ModelUuid,
        changed: fn(&T) -> bool,
        f: F,
    ) -> BoxFuture<'static, Result<T, BackendError>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, BackendError> + Send + 'static,
    {
        let versions = self.versions.clone();
        let run = self.run(f);
        async move {
            let result = run.await?;
            if changed(&result) {
                versions.bump(model);
            }
            Ok(result)
        }
        .boxed()
    }
}

fn migrate(conn: &mut Connection) -> Result<(), BackendError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_V1)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        SCHEMA_VERSION => {}
        newer if newer > SCHEMA_VERSION => {
            return Err(BackendError::Storage(format!(
                "the registry's schema version is {newer}, newer than this musterd \
                 reads ({SCHEMA_VERSION})"
            )));
        }
        other => {
            return Err(BackendError::Storage(format!(
                "the registry's schema version {other} is not one musterd wrote"
            )));
        }
    }
    tx.commit()?;
    Ok(())
}

impl From<rusqlite::Error> for BackendError {
    fn from(e: rusqlite::Error) -> Self {
        BackendError::Storage(e.to_string())
    }
}

/// Each model's change counter.
#[derive(Default)]
struct Versions(Mutex<HashMap<ModelUuid, watch::Sender<u64>>>);

impl Versions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ModelUuid, watch::Sender<u64>>> {
        // Each entry is inserted whole; a panic elsewhere leaves the map
        // usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn subscribe(&self, model: ModelUuid) -> watch::Receiver<u64> {
        self.lock()
            .entry(model)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    fn bump(&self, model: ModelUuid) {
        // No entry: nobody watches the model; a later watcher reads the
        // registry after it subscribes.
        if let Some(sender) = self.lock().get(&model) {
            sender.send_modify(|version| *version += 1);
        }
    }
}

/// A time as stored: milliseconds since the Unix epoch.
fn to_millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}

fn corrupt(tag: &str, what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Corrupt(format!("machine {tag}: {what}: {e}"))
}

/// The tag of a stored machine id.
fn tag_of(machine: &str) -> Result<MachineTag, BackendError> {
    format!("machine-{machine}")
        .parse()
        .map_err(|e| corrupt(machine, "id", e))
}

/// The registration columns as stored, before they are checked.
struct StoredRegistration {
    instance_id: Option<String>,
    life: String,
    agent_status: String,
    manual: bool,
}

impl StoredRegistration {
    /// Reads columns `first..first + 4` of `row`.
    fn read(row: &Row<'_>, first: usize) -> rusqlite::Result<Self> {
        Ok(StoredRegistration {
            instance_id: row.get(first)?,
            life: row.get(first + 1)?,
            agent_status: row.get(first + 2)?,
            manual: row.get(first + 3)?,
        })
    }

    fn decode(self, machine: &str) -> Result<Registration, BackendError> {
        Ok(Registration {
            instance_id: self.instance_id.map(InstanceId::from),
            life: self
                .life
                .parse::<Life>()
                .map_err(|e| corrupt(machine, "life", e))?,
            agent_status: self
                .agent_status
                .parse::<MachineStatus>()
                .map_err(|e| corrupt(machine, "agent status", e))?,
            manual: self.manual,
        })
    }
}

/// A row of [`COLUMNS`] as stored.
struct StoredMachine {
    incarnation: i64,
    machine: String,
    registration: StoredRegistration,
    registered_at: i64,
    instance_status: String,
    instance_message: String,
    addresses: String,
    interfaces: String,
    recorded_at: Option<i64>,
}

impl StoredMachine {
    fn read(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(StoredMachine {
            incarnation: row.get(0)?,
            machine: row.get(1)?,
            registration: StoredRegistration::read(row, 2)?,
            registered_at: row.get(6)?,
            instance_status: row.get(7)?,
            instance_message: row.get(8)?,
            addresses: row.get(9)?,
            interfaces: row.get(10)?,
            recorded_at: row.get(11)?,
        })
    }

    fn decode(self) -> Result<MachineRecord, BackendError> {
        let machine = self.machine;
        let tag = tag_of(&machine)?;
        let status = self
            .instance_status
            .parse::<InstanceStatus>()
            .map_err(|e| corrupt(&machine, "instance status", e))?;
        Ok(MachineRecord {
            tag,
            incarnation: self.incarnation as u64,
            registration: self.registration.decode(&machine)?,
            registered_at: from_millis(self.registered_at),
            recorded: Recorded {
                instance_status: InstanceStatusInfo::new(status, self.instance_message),
                addresses: serde_json::from_str(&self.addresses)
                    .map_err(|e| corrupt(&machine, "addresses", e))?,
                interfaces: serde_json::from_str(&self.interfaces)
                    .map_err(|e| corrupt(&machine, "interfaces", e))?,
                recorded_at: self.recorded_at.map(from_millis),
            },
        })
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, BackendError> {
    serde_json::to_string(value).map_err(|e| BackendError::Storage(e.to_string()))
}

fn put(
    conn: &mut Connection,
    model: &str,
    machine: &str,
    registration: &Registration,
    at: SystemTime,
) -> Result<PutOutcome, BackendError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let existing = tx
        .prepare_cached(
            "SELECT incarnation, instance_id, life, agent_status, manual FROM machines \
             WHERE model = ?1 AND machine = ?2",
        )?
        .query_row(params![model, machine], |row| {
            Ok((row.get::<_, i64>(0)?, StoredRegistration::read(row, 1)?))
        })
        .optional()?;
    let instance_id = registration.instance_id.as_ref().map(InstanceId::as_str);
    let insert = |tx: &rusqlite::Transaction<'_>| -> Result<(), BackendError> {
        tx.prepare_cached(
            "INSERT INTO machines \
             (model, machine, instance_id, life, agent_status, manual, registered_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            model,
            machine,
            instance_id,
            registration.life.as_str(),
            registration.agent_status.as_str(),
            registration.manual,
            to_millis(at),
        ])?;
        Ok(())
    };
    let outcome = match existing {
        None => {
            insert(&tx)?;
            PutOutcome::Created
        }
        Some((incarnation, stored)) => {
            let old = stored.decode(machine)?;
            if old.replaced_by(registration) {
                tx.prepare_cached("DELETE FROM machines WHERE incarnation = ?1")?
                    .execute([incarnation])?;
                insert(&tx)?;
                PutOutcome::Replaced
            } else if old == *registration {
                PutOutcome::Unchanged
            } else {
                tx.prepare_cached(
                    "UPDATE machines SET instance_id = ?2, life = ?3, agent_status = ?4 \
                     WHERE incarnation = ?1",
                )?
                .execute(params![
                    incarnation,
                    instance_id,
                    registration.life.as_str(),
                    registration.agent_status.as_str(),
                ])?;
                PutOutcome::Updated
            }
        }
    };
    tx.commit()?;
    Ok(outcome)
}

fn record_network(
    conn: &mut Connection,
    model: &str,
    machine: &str,
    incarnation: i64,
    interfaces: &[NetworkInterface],
    at: SystemTime,
) -> Result<Option<(Vec<Address>, bool)>, BackendError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let stored: Option<String> = tx
        .prepare_cached(
            "SELECT addresses FROM machines \
             WHERE incarnation = ?1 AND model = ?2 AND machine = ?3",
        )?
        .query_row(params![incarnation, model, machine], |row| row.get(0))
        .optional()?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    let before: Vec<Address> =
        serde_json::from_str(&stored).map_err(|e| corrupt(machine, "addresses", e))?;
    let addresses = addresses_of(interfaces);
    let changed = addresses != before;
    tx.prepare_cached(
        "UPDATE machines SET addresses = ?2, interfaces = ?3, recorded_at = ?4 \
         WHERE incarnation = ?1",
    )?
    .execute(params![
        incarnation,
        json(&addresses)?,
        json(&interfaces)?,
        to_millis(at)
    ])?;
    tx.commit()?;
    Ok(Some((addresses, changed)))
}

fn set_credential(
    conn: &mut Connection,
    model: &str,
    valid: bool,
    reason: &str,
    at: SystemTime,
) -> Result<bool, BackendError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let before: Option<bool> = tx
        .prepare_cached("SELECT valid FROM credentials WHERE model = ?1")?
        .query_row([model], |row| row.get(0))
        .optional()?;
    let changed = before.unwrap_or(true) != valid;
    if changed {
        let reason = if valid { "" } else { reason };
        tx.prepare_cached(
            "INSERT INTO credentials (model, valid, reason, changed_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (model) DO UPDATE SET valid = ?2, reason = ?3, changed_at = ?4",
        )?
        .execute(params![model, valid, reason, to_millis(at)])?;
    }
    tx.commit()?;
    Ok(changed)
}

impl RegistryBackend for SqliteBackend {
    fn put(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        registration: Registration,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<PutOutcome, BackendError>> {
        let changed: fn(&PutOutcome) -> bool = |outcome| outcome.changed();
        self.run_changing(model, changed, move |conn| {
            put(conn, &model.to_string(), &tag.id(), &registration, at)
        })
    }

    fn delete(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        self.run_changing(
            model,
            |deleted| *deleted,
            move |conn| {
                let deleted = conn
                    .prepare_cached("DELETE FROM machines WHERE model = ?1 AND machine = ?2")?
                    .execute(params![model.to_string(), tag.id()])?;
                Ok(deleted > 0)
            },
        )
    }

    fn get(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<Option<MachineRecord>, BackendError>> {
        self.run(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM machines WHERE model = ?1 AND machine = ?2"
            ))?
            .query_row(params![model.to_string(), tag.id()], StoredMachine::read)
            .optional()?
            .map(StoredMachine::decode)
            .transpose()
        })
    }

    fn list(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<MachineRecord>, BackendError>> {
        self.run(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM machines WHERE model = ?1 \
                 ORDER BY length(machine), machine"
            ))?;
            let rows = statement.query_map([model.to_string()], StoredMachine::read)?;
            rows.map(|row| {
                row.map_err(BackendError::from)
                    .and_then(StoredMachine::decode)
            })
            .collect()
        })
    }

    fn registrations(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<Registered>, BackendError>> {
        self.run(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT incarnation, machine, instance_id, life, agent_status, manual \
                 FROM machines WHERE model = ?1 ORDER BY length(machine), machine",
            )?;
            let rows = statement.query_map([model.to_string()], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    StoredRegistration::read(row, 2)?,
                ))
            })?;
            rows.map(|row| {
                let (incarnation, machine, stored) = row?;
                Ok(Registered {
                    tag: tag_of(&machine)?,
                    incarnation: incarnation as u64,
                    registration: stored.decode(&machine)?,
                })
            })
            .collect()
        })
    }

    fn record_status(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        status: InstanceStatusInfo,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        self.run(move |conn| {
            let updated = conn
                .prepare_cached(
                    "UPDATE machines \
                     SET instance_status = ?4, instance_message = ?5, recorded_at = ?6 \
                     WHERE incarnation = ?1 AND model = ?2 AND machine = ?3",
                )?
                .execute(params![
                    incarnation as i64,
                    model.to_string(),
                    tag.id(),
                    status.status.as_str(),
                    status.message,
                    to_millis(at),
                ])?;
            Ok(updated > 0)
        })
    }

    fn record_network(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        interfaces: Vec<NetworkInterface>,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<Option<(Vec<Address>, bool)>, BackendError>> {
        self.run(move |conn| {
            record_network(
                conn,
                &model.to_string(),
                &tag.id(),
                incarnation as i64,
                &interfaces,
                at,
            )
        })
    }

    fn credential(&self, model: ModelUuid) -> BoxFuture<'static, Result<Credential, BackendError>> {
        self.run(move |conn| {
            let stored = conn
                .prepare_cached(
                    "SELECT valid, reason, changed_at FROM credentials WHERE model = ?1",
                )?
                .query_row([model.to_string()], |row| {
                    Ok(Credential {
                        valid: row.get(0)?,
                        reason: row.get(1)?,
                        changed_at: Some(from_millis(row.get(2)?)),
                    })
                })
                .optional()?;
            Ok(stored.unwrap_or_default())
        })
    }

    fn set_credential(
        &self,
        model: ModelUuid,
        valid: bool,
        reason: String,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        self.run_changing(
            model,
            |changed| *changed,
            move |conn| set_credential(conn, &model.to_string(), valid, &reason, at),
        )
    }

    fn version(&self, model: ModelUuid) -> watch::Receiver<u64> {
        self.versions.subscribe(model)
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

#[cfg(test)]
mod tests;
