use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use muster::clock::ManualClock;
use muster::names::{AgentTag, ModelUuid};
use rusqlite::Connection;
use slog::{Logger, o};
use tokio::sync::broadcast::error::TryRecvError;

use crate::{PasswordChange, Registry, SqliteOptions};

fn model() -> ModelUuid {
    ModelUuid::from_u128(7)
}

fn agent(text: &str) -> AgentTag {
    text.parse().unwrap()
}

fn open(path: &Path) -> Registry {
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ));
    let log = Logger::root(slog::Discard, o!());
    Registry::open(path, &SqliteOptions::default(), clock, log).unwrap()
}

#[tokio::test]
async fn a_password_is_set_rotated_and_removed_and_each_change_is_told() {
    let registry = Registry::in_memory(
        Arc::new(ManualClock::new(UNIX_EPOCH)),
        Logger::root(slog::Discard, o!()),
    )
    .unwrap();
    let mut changes = registry.password_changes();
    let (unit, machine) = (agent("unit-mysql-0"), agent("machine-3"));
    assert_eq!(
        registry.password(model(), unit.clone()).await.unwrap(),
        None
    );

    let first = registry
        .provision_password(model(), unit.clone())
        .await
        .unwrap();
    assert!(!first.rotated);
    let hash = registry
        .password(model(), unit.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(hash.matches(&first.password));
    assert_eq!(
        changes.try_recv().unwrap(),
        PasswordChange::new(model(), unit.clone())
    );
    // Another agent, and the same agent in another model, have none.
    assert_eq!(
        registry.password(model(), machine.clone()).await.unwrap(),
        None
    );
    assert_eq!(
        registry
            .password(ModelUuid::from_u128(8), unit.clone())
            .await
            .unwrap(),
        None
    );

    let second = registry
        .provision_password(model(), unit.clone())
        .await
        .unwrap();
    assert!(second.rotated);
    assert_ne!(first.password, second.password);
    let hash = registry
        .password(model(), unit.clone())
        .await
        .unwrap()
        .unwrap();
    assert!(hash.matches(&second.password));
    assert!(!hash.matches(&first.password));
    assert_eq!(
        changes.try_recv().unwrap(),
        PasswordChange::new(model(), unit.clone())
    );

    assert!(
        registry
            .remove_password(model(), unit.clone())
            .await
            .unwrap()
    );
    assert_eq!(
        registry.password(model(), unit.clone()).await.unwrap(),
        None
    );
    assert_eq!(
        changes.try_recv().unwrap(),
        PasswordChange::new(model(), unit.clone())
    );
    // Removing what is not there changes nothing, and says so.
    assert!(
        !registry
            .remove_password(model(), unit.clone())
            .await
            .unwrap()
    );
    assert_eq!(changes.try_recv(), Err(TryRecvError::Empty));
    // The password never shows in a debug print.
    assert!(!format!("{second:?}").contains(&second.password));
}

/// Every byte of the files in `dir`.
fn bytes_of(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        all.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn passwords_survive_a_restart_and_the_file_never_holds_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    let registry = open(&path);
    let mut given = Vec::new();
    for n in 0..20 {
        let agent = agent(&format!("machine-{n}"));
        let old = registry
            .provision_password(model(), agent.clone())
            .await
            .unwrap();
        let new = registry
            .provision_password(model(), agent.clone())
            .await
            .unwrap();
        given.push((agent, old.password, new.password));
    }
    // The write-ahead log and the file, both looked at while open and
    // after.
    let open_bytes = bytes_of(dir.path());
    drop(registry);
    let closed_bytes = bytes_of(dir.path());
    for (agent, old, new) in &given {
        for bytes in [&open_bytes, &closed_bytes] {
            assert!(!contains(bytes, old), "{agent}'s old password is stored");
            assert!(!contains(bytes, new), "{agent}'s password is stored");
        }
    }
    // The hash is what is stored: found once the file is closed.
    let hash = muster::password::PasswordHash::of(&given[0].2);
    let stored = bytes_of(dir.path());
    assert!(
        stored
            .windows(32)
            .any(|window| window == hash.as_bytes().as_slice())
    );

    let registry = open(&path);
    for (agent, old, new) in &given {
        let hash = registry
            .password(model(), agent.clone())
            .await
            .unwrap()
            .unwrap();
        assert!(hash.matches(new));
        assert!(!hash.matches(old));
    }
}

#[tokio::test]
async fn a_file_of_the_first_schema_gains_the_passwords_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    drop(open(&path));
    // As a musterd before passwords left it.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DROP TABLE agent_passwords; PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let registry = open(&path);
    let unit = agent("unit-mysql-0");
    let made = registry
        .provision_password(model(), unit.clone())
        .await
        .unwrap();
    let hash = registry.password(model(), unit).await.unwrap().unwrap();
    assert!(hash.matches(&made.password));
}
