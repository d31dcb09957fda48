//! The agents' passwords in the registry's bucket (docs/spec.md §14.3):
//! `p.MODEL.AGENT` holds the SHA-256 hash of the agent's password, in
//! hexadecimal, never the password.

use std::time::SystemTime;

use async_nats::jetstream::kv;
use muster::names::{AgentTag, ModelUuid};
use muster::password::PasswordHash;
use muster_registry::BackendError;
use serde::{Deserialize, Serialize};

use super::stored::{ATTEMPTS, Read, contended, corrupt, read, to_millis, write};

/// The prefix of the passwords' keys, which the change feed watches.
pub(super) const PASSWORDS: &str = "p.>";

pub(super) fn password_key(model: ModelUuid, agent: &AgentTag) -> String {
    format!("p.{model}.{agent}")
}

/// The model and agent a password's key is of.
pub(super) fn agent_of_key(key: &str) -> Option<(ModelUuid, AgentTag)> {
    let mut parts = key.splitn(3, '.');
    if parts.next()? != "p" {
        return None;
    }
    let model = parts.next()?.parse().ok()?;
    let agent = parts.next()?.parse().ok()?;
    Some((model, agent))
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredPassword {
    sha256: String,
    set_at: u64,
}

/// Stores `hash` as the agent's password; answers whether it had one.
pub(super) async fn set(
    store: &kv::Store,
    model: ModelUuid,
    agent: &AgentTag,
    hash: &PasswordHash,
    at: SystemTime,
) -> Result<bool, BackendError> {
    let key = password_key(model, agent);
    let doc = StoredPassword {
        sha256: hash.to_hex(),
        set_at: to_millis(at),
    };
    for _ in 0..ATTEMPTS {
        let stored: Read<StoredPassword> = read(store, &key).await?;
        if write(store, &key, &doc, stored.revision).await? {
            return Ok(stored.value.is_some());
        }
    }
    Err(contended(&key))
}

/// Removes the agent's password; answers whether it had one.
pub(super) async fn delete(
    store: &kv::Store,
    model: ModelUuid,
    agent: &AgentTag,
) -> Result<bool, BackendError> {
    let key = password_key(model, agent);
    for _ in 0..ATTEMPTS {
        let stored: Read<StoredPassword> = read(store, &key).await?;
        if stored.value.is_none() {
            return Ok(false);
        }
        if store
            .delete_expect_revision(&key, Some(stored.revision))
            .await
            .is_ok()
        {
            return Ok(true);
        }
    }
    Err(contended(&key))
}

/// The hash of the agent's password; `None` when it has none.
pub(super) async fn get(
    store: &kv::Store,
    model: ModelUuid,
    agent: &AgentTag,
) -> Result<Option<PasswordHash>, BackendError> {
    let key = password_key(model, agent);
    let stored: Read<StoredPassword> = read(store, &key).await?;
    stored
        .value
        .map(|doc| {
            PasswordHash::from_hex(&doc.sha256)
                .ok_or_else(|| corrupt(&key, "sha256 is not 64 hexadecimal digits"))
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_its_model_and_agent() {
        let model = ModelUuid::from_u128(3);
        for agent in ["unit-mysql-0", "machine-0-lxd-1", "application-wordpress"] {
            let agent: AgentTag = agent.parse().unwrap();
            let key = password_key(model, &agent);
            assert_eq!(agent_of_key(&key), Some((model, agent)));
        }
        for other in [
            "m.x.1",
            "p",
            "p.nope.machine-1",
            "c.00000000-0000-4000-8000-000000000003",
        ] {
            assert_eq!(agent_of_key(other), None, "{other}");
        }
    }
}
