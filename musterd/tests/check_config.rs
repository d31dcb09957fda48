//! `check-config` refuses what `run` refuses, and says every problem at
//! once: the values first, then the files they name (docs/spec.md
//! §7.3.6). A foreign SQLite file is refused naming its path and left as
//! it was. These start the real binary.

mod support;

use support::{ConfigFile, musterd, text};

const MODEL: &str = "4f1c6a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";

/// The standard error of `musterd ARGS`, which must exit 2.
fn refused(args: &[&str]) -> String {
    let out = musterd(args);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    err
}

#[test]
fn every_problem_run_would_meet_is_said_at_once_values_first() {
    let file = ConfigFile::new(
        "every-problem",
        format!(
            "[http]\nlisten = \"127.0.0.1:18789\"\ncolour = \"blue\"\n\
             [agents]\nlisten = \"127.0.0.1:18789\"\n\
             tls_cert = \"missing-cert.pem\"\ntls_key = \"missing-key.pem\"\n\
             [store]\npath = \"no/such/folder/registry.db\"\n\
             [[models]]\nuuid = \"{MODEL}\"\ncloud = \"sim\"\nregion = \"local\"\n"
        ),
    );
    let check = refused(&["check-config", file.path()]);
    let keys: Vec<&str> = check
        .lines()
        .map(|line| {
            let rest = line.split_once(": ").map_or(line, |(_, rest)| rest);
            rest.split([' ', ':']).next().unwrap()
        })
        .collect();
    assert_eq!(
        keys,
        [
            "http.colour",
            "agents.listen",
            "agents.tls_cert",
            "agents.tls_key",
            "store.path"
        ],
        "{check}"
    );
    assert!(
        check.contains(
            "agents.listen = \"127.0.0.1:18789\": the same port as http.listen = \
             \"127.0.0.1:18789\""
        ),
        "{check}"
    );
    assert!(check.contains("missing-cert.pem\": cannot read"), "{check}");
    assert!(check.contains("missing-key.pem\": cannot read"), "{check}");
    assert!(
        check.contains("registry.db\": the folder ") && check.contains("does not exist"),
        "{check}"
    );
    // run refuses the same, in the same words, before it starts anything.
    let run = refused(&["run", "--config", file.path()]);
    assert_eq!(run, check);
}

#[test]
fn a_foreign_sqlite_file_is_refused_naming_its_path_and_left_as_it_was() {
    let file = ConfigFile::new(
        "foreign-store",
        format!(
            "[store]\npath = \"app.db\"\n\
             [[models]]\nuuid = \"{MODEL}\"\ncloud = \"sim\"\nregion = \"local\"\n"
        ),
    );
    let db = file.0.parent().unwrap().join("app.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&db).unwrap();
    for args in [
        ["check-config", file.path()].as_slice(),
        ["run", "--config", file.path()].as_slice(),
    ] {
        let err = refused(args);
        assert!(
            err.contains(&format!(
                "store.path = {:?}: not a machine registry musterd wrote",
                db.display().to_string()
            )),
            "{err}"
        );
        assert_eq!(std::fs::read(&db).unwrap(), before, "{args:?} altered it");
        assert!(!db.with_extension("db-wal").exists());
    }
}
