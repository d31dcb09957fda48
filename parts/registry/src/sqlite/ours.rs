//! Whether a database file is one the registry may use, asked before
//! anything is written to it: a file of another program (tables of its
//! own, or a schema version musterd never wrote) is refused as it is, with
//! no switch to write-ahead logging and no `user_version` written.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::super::backend::BackendError;
use super::schema::SCHEMA_VERSION;

/// The tables of the registry's schema.
const TABLES: [&str; 2] = ["credentials", "machines"];

/// Refuses the database of `conn` unless it is new (no table, schema
/// version 0) or the registry's own (its tables, at this build's version
/// of the schema or an older one).
pub(super) fn check(conn: &Connection) -> Result<(), BackendError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let mut statement = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )?;
    let tables: Vec<String> = statement
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    if version == 0 && tables.is_empty() {
        return Ok(());
    }
    if version > SCHEMA_VERSION {
        return Err(BackendError::Storage(format!(
            "the registry's schema version is {version}, newer than this musterd reads \
             ({SCHEMA_VERSION})"
        )));
    }
    // A file of an older version of the schema is ours too: it is brought
    // up to date when opened.
    let ours = (1..=SCHEMA_VERSION).contains(&version)
        && TABLES.iter().all(|t| tables.iter().any(|n| n == t));
    if ours {
        return Ok(());
    }
    let mut named = tables
        .iter()
        .filter(|t| !TABLES.contains(&t.as_str()))
        .take(5)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if named.is_empty() {
        named = "none of its own".to_owned();
    }
    Err(BackendError::Storage(format!(
        "not a machine registry musterd wrote (schema version {version}, tables: {named}); \
         left as it is: give [store] path another file"
    )))
}

/// Checks the file at `path` as [`check`] does, read-only, and that a
/// file not there yet can be made where it is to be: its folder exists.
pub(super) fn check_path(path: &Path) -> Result<(), BackendError> {
    if !path.exists() {
        let folder = match path.parent() {
            Some(folder) if !folder.as_os_str().is_empty() => folder,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(BackendError::Storage(format!(
                "the folder {} does not exist",
                folder.display()
            )));
        }
        return Ok(());
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    check(&conn)
}
