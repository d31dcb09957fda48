//! The statements of the agents' passwords (docs/spec.md §14.3): one row
//! per agent with a password, holding its SHA-256 hash and never the
//! password.

use std::time::SystemTime;

use muster::password::PasswordHash;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::super::backend::BackendError;
use super::statements::to_millis;

/// Stores `hash` as the agent's password; answers whether it had one.
pub(super) fn set(
    conn: &mut Connection,
    model: &str,
    agent: &str,
    hash: &PasswordHash,
    at: SystemTime,
) -> Result<bool, BackendError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let had = tx
        .prepare_cached("SELECT 1 FROM agent_passwords WHERE model = ?1 AND agent = ?2")?
        .query_row(params![model, agent], |_| Ok(()))
        .optional()?
        .is_some();
    tx.prepare_cached(
        "INSERT INTO agent_passwords (model, agent, sha256, set_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (model, agent) DO UPDATE SET sha256 = ?3, set_at = ?4",
    )?
    .execute(params![model, agent, &hash.as_bytes()[..], to_millis(at)])?;
    tx.commit()?;
    Ok(had)
}

/// Removes the agent's password; answers whether it had one.
pub(super) fn delete(
    conn: &mut Connection,
    model: &str,
    agent: &str,
) -> Result<bool, BackendError> {
    let deleted = conn
        .prepare_cached("DELETE FROM agent_passwords WHERE model = ?1 AND agent = ?2")?
        .execute(params![model, agent])?;
    Ok(deleted > 0)
}

/// The hash of the agent's password; `None` when it has none.
pub(super) fn get(
    conn: &mut Connection,
    model: &str,
    agent: &str,
) -> Result<Option<PasswordHash>, BackendError> {
    let stored: Option<Vec<u8>> = conn
        .prepare_cached("SELECT sha256 FROM agent_passwords WHERE model = ?1 AND agent = ?2")?
        .query_row(params![model, agent], |row| row.get(0))
        .optional()?;
    stored
        .map(|bytes| {
            <[u8; 32]>::try_from(bytes.as_slice())
                .map(PasswordHash::from_bytes)
                .map_err(|_| {
                    BackendError::Corrupt(format!(
                        "the password hash of agent {agent} of model {model} is {} bytes, not 32",
                        bytes.len()
                    ))
                })
        })
        .transpose()
}
