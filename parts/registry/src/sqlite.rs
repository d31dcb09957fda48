//! The registry in SQLite (docs/spec.md §9.1): one file in WAL mode, or
//! one database in memory, behind one connection.
//!
//! SQLite calls block, so each runs on tokio's blocking pool
//! (`spawn_blocking`), one at a time: callers wait for the connection
//! asynchronously, and the actix thread never waits on the disk. The
//! blocking pool, rather than a thread of our own, because tokio knows its
//! tasks: a paused test clock does not jump ahead while a write is under
//! way, so tests on virtual time see the writes they made.

mod ours;
mod passwords;
mod schema;
mod statements;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::FutureExt;
use futures::future::BoxFuture;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::password::PasswordHash;
use muster::provider::{InstanceStatusInfo, NetworkInterface};
use rusqlite::Connection;
use tokio::sync::{broadcast, watch};

pub use schema::SCHEMA_VERSION;

use super::backend::{BackendError, RegistryBackend};
use super::passwords::{PasswordChange, PasswordFeed};
use super::record::{
    AddressesChanged, Credential, MachineRecord, PutOutcome, Registered, Registration,
};
use super::versions::Versions;

/// The longest busy timeout SQLite takes: `i32::MAX` milliseconds, about
/// 24.8 days.
pub const LONGEST_BUSY_TIMEOUT: Duration = Duration::from_millis(i32::MAX as u64);

/// How the SQLite file is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    /// How long a write waits for another connection's lock on the file
    /// before it fails as locked. Default 5 s; at most
    /// [`LONGEST_BUSY_TIMEOUT`], longer is taken as that.
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

/// The registry's storage in SQLite (docs/spec.md §9.1): one file in WAL
/// mode, or one database in memory, behind one connection.
///
/// Each call runs on tokio's blocking pool, one at a time: callers wait
/// for the connection asynchronously, and the actix thread never waits on
/// the disk. Call it from within a tokio runtime (actix's is one).
pub struct SqliteBackend {
    conn: Arc<tokio::sync::Mutex<Connection>>,
    versions: Arc<Versions>,
    /// Changes of passwords made through this backend: a file shared with
    /// another process does not hear that process's.
    feed: PasswordFeed,
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
        // Before the first write: another program's file is left as it is.
        ours::check(&conn).map_err(in_path)?;
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

    /// Whether [`open`](Self::open) would take `path`, asked without
    /// writing anything: a file there must be new or the registry's own
    /// (another program's database is refused), and a file not there yet
    /// must have its folder. A failure names the path.
    pub fn check(path: &Path) -> Result<(), BackendError> {
        ours::check_path(path)
            .map_err(|e| BackendError::Storage(format!("{}: {e}", path.display())))
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
        conn.busy_timeout(options.busy_timeout.min(LONGEST_BUSY_TIMEOUT))?;
        schema::migrate(&mut conn)?;
        if let Some(max_size) = options.max_size {
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            let page_size = u64::try_from(page_size).unwrap_or(1).max(1);
            let pages = max_size.div_ceil(page_size).clamp(1, i64::MAX as u64);
            conn.pragma_update(None, "max_page_count", pages as i64)?;
        }
        Ok(SqliteBackend {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
            versions: Arc::default(),
            feed: PasswordFeed::default(),
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
            statements::put(conn, &model.to_string(), &tag.id(), &registration, at)
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
            move |conn| statements::delete(conn, &model.to_string(), &tag.id()),
        )
    }

    fn get(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<Option<MachineRecord>, BackendError>> {
        self.run(move |conn| statements::get(conn, &model.to_string(), &tag.id()))
    }

    fn list(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<MachineRecord>, BackendError>> {
        self.run(move |conn| statements::list(conn, &model.to_string()))
    }

    fn registrations(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<Registered>, BackendError>> {
        self.run(move |conn| statements::registrations(conn, &model.to_string()))
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
            let incarnation = stored_incarnation(incarnation);
            statements::record_status(
                conn,
                &model.to_string(),
                &tag.id(),
                incarnation,
                &status,
                at,
            )
        })
    }

    fn record_network(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        interfaces: Vec<NetworkInterface>,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<Option<AddressesChanged>, BackendError>> {
        self.run(move |conn| {
            let incarnation = stored_incarnation(incarnation);
            statements::record_network(
                conn,
                &model.to_string(),
                &tag.id(),
                incarnation,
                &interfaces,
                at,
            )
        })
    }

    fn credential(&self, model: ModelUuid) -> BoxFuture<'static, Result<Credential, BackendError>> {
        self.run(move |conn| statements::credential(conn, &model.to_string()))
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
            move |conn| statements::set_credential(conn, &model.to_string(), valid, &reason, at),
        )
    }

    fn version(&self, model: ModelUuid) -> watch::Receiver<u64> {
        self.versions.subscribe(model)
    }

    fn set_password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
        hash: PasswordHash,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let feed = self.feed.clone();
        let tag = agent.clone();
        let set =
            self.run(move |conn| passwords::set(conn, &model.to_string(), tag.as_str(), &hash, at));
        async move {
            let had = set.await?;
            feed.changed(model, agent);
            Ok(had)
        }
        .boxed()
    }

    fn delete_password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let feed = self.feed.clone();
        let tag = agent.clone();
        let delete =
            self.run(move |conn| passwords::delete(conn, &model.to_string(), tag.as_str()));
        async move {
            let had = delete.await?;
            if had {
                feed.changed(model, agent);
            }
            Ok(had)
        }
        .boxed()
    }

    fn password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> BoxFuture<'static, Result<Option<PasswordHash>, BackendError>> {
        self.run(move |conn| passwords::get(conn, &model.to_string(), agent.as_str()))
    }

    fn password_changes(&self) -> broadcast::Receiver<PasswordChange> {
        self.feed.subscribe()
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// An incarnation as stored; one too large for the column is none that
/// was ever handed out, and matches no row.
fn stored_incarnation(incarnation: u64) -> i64 {
    i64::try_from(incarnation).unwrap_or(-1)
}

#[cfg(test)]
mod tests;
