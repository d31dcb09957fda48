//! Every SQL statement of the registry, each run on a connection the
//! caller holds, and the reading of what they answer. A statement that
//! must read before it writes runs in one `IMMEDIATE` transaction, so that
//! no other connection writes in between.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use muster::model::{Life, MachineStatus};
use muster::names::MachineTag;
use muster::provider::{
    Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface, addresses_of,
};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::super::backend::BackendError;
use super::super::record::{
    AddressesChanged, Credential, MachineRecord, PutOutcome, Recorded, Registered, Registration,
};

const COLUMNS: &str = "incarnation, machine, instance_id, life, agent_status, manual, \
    registered_at, instance_status, instance_message, addresses, interfaces, recorded_at";

/// A time as stored: milliseconds since the Unix epoch.
pub(super) fn to_millis(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub(super) fn from_millis(ms: i64) -> SystemTime {
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

pub(super) fn put(
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

pub(super) fn record_network(
    conn: &mut Connection,
    model: &str,
    machine: &str,
    incarnation: i64,
    interfaces: &[NetworkInterface],
    at: SystemTime,
) -> Result<Option<AddressesChanged>, BackendError> {
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

pub(super) fn set_credential(
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

pub(super) fn delete(
    conn: &mut Connection,
    model: &str,
    machine: &str,
) -> Result<bool, BackendError> {
    let deleted = conn
        .prepare_cached("DELETE FROM machines WHERE model = ?1 AND machine = ?2")?
        .execute(params![model, machine])?;
    Ok(deleted > 0)
}

pub(super) fn get(
    conn: &mut Connection,
    model: &str,
    machine: &str,
) -> Result<Option<MachineRecord>, BackendError> {
    conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM machines WHERE model = ?1 AND machine = ?2"
    ))?
    .query_row(params![model, machine], StoredMachine::read)
    .optional()?
    .map(StoredMachine::decode)
    .transpose()
}

pub(super) fn list(conn: &mut Connection, model: &str) -> Result<Vec<MachineRecord>, BackendError> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM machines WHERE model = ?1 ORDER BY length(machine), machine"
    ))?;
    let rows = statement.query_map([model], StoredMachine::read)?;
    rows.map(|row| {
        row.map_err(BackendError::from)
            .and_then(StoredMachine::decode)
    })
    .collect()
}

pub(super) fn registrations(
    conn: &mut Connection,
    model: &str,
) -> Result<Vec<Registered>, BackendError> {
    let mut statement = conn.prepare_cached(
        "SELECT incarnation, machine, instance_id, life, agent_status, manual \
         FROM machines WHERE model = ?1 ORDER BY length(machine), machine",
    )?;
    let rows = statement.query_map([model], |row| {
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
}

pub(super) fn record_status(
    conn: &mut Connection,
    model: &str,
    machine: &str,
    incarnation: i64,
    status: &InstanceStatusInfo,
    at: SystemTime,
) -> Result<bool, BackendError> {
    let updated = conn
        .prepare_cached(
            "UPDATE machines \
             SET instance_status = ?4, instance_message = ?5, recorded_at = ?6 \
             WHERE incarnation = ?1 AND model = ?2 AND machine = ?3",
        )?
        .execute(params![
            incarnation,
            model,
            machine,
            status.status.as_str(),
            status.message,
            to_millis(at),
        ])?;
    Ok(updated > 0)
}

pub(super) fn credential(conn: &mut Connection, model: &str) -> Result<Credential, BackendError> {
    let stored = conn
        .prepare_cached("SELECT valid, reason, changed_at FROM credentials WHERE model = ?1")?
        .query_row([model], |row| {
            Ok(Credential {
                valid: row.get(0)?,
                reason: row.get(1)?,
                changed_at: Some(from_millis(row.get(2)?)),
            })
        })
        .optional()?;
    Ok(stored.unwrap_or_default())
}

impl From<rusqlite::Error> for BackendError {
    fn from(e: rusqlite::Error) -> Self {
        BackendError::Storage(e.to_string())
    }
}
