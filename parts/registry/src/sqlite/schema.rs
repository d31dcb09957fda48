//! The registry's tables, and the setting up or checking of them when a
//! database is opened (docs/spec.md §9.1.2).

use rusqlite::{Connection, TransactionBehavior};

use super::super::backend::BackendError;

/// The schema this build reads and writes, kept in the database's
/// `user_version`. A database at 0 (new) is set up; an older one would be
/// migrated step by step; a newer one is refused.
pub const SCHEMA_VERSION: i64 = 2;

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

/// Version 2: each agent's password, as its SHA-256 hash only.
const SCHEMA_V2: &str = "
CREATE TABLE agent_passwords (
    model  TEXT NOT NULL,
    agent  TEXT NOT NULL,
    sha256 BLOB NOT NULL,
    set_at INTEGER NOT NULL,
    PRIMARY KEY (model, agent)
) WITHOUT ROWID;
";

/// Sets up a new database, or checks that an existing one is at a schema
/// this build reads.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), BackendError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    match version {
        0 => {
            tx.execute_batch(SCHEMA_V1)?;
            tx.execute_batch(SCHEMA_V2)?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        }
        1 => {
            tx.execute_batch(SCHEMA_V2)?;
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
