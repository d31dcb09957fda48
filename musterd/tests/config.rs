//! The config file as `musterd run` and `check-config` read it
//! (docs/spec.md §7.3, §7.4): every key, its range, and every problem named.

use muster::config::Validate;
use muster_actors::host::MusterConfig;
use muster_cluster::ClusterConfig;
use musterd::config::*;

fn problems(text: &str) -> Vec<String> {
    DaemonConfig::from_toml(text).unwrap_err().lines()
}

#[test]
fn the_example_file_holds_every_default() {
    let text = include_str!("../muster.example.toml");
    let config = DaemonConfig::from_toml(text).unwrap();
    assert_eq!(config, DaemonConfig::default());
    assert_eq!(config.muster(), MusterConfig::default());
    // Every key the defaults serialize to is in the file, so the file
    // cannot fall behind a new setting.
    let defaults = toml::Table::try_from(DaemonConfig::default()).unwrap();
    let file: toml::Table = toml::from_str(text).unwrap();
    fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
        for (k, v) in table {
            let key = format!("{prefix}{k}");
            match v.as_table() {
                Some(inner) => keys(inner, &format!("{key}."), out),
                None => out.push(key),
            }
        }
    }
    let (mut want, mut have) = (Vec::new(), Vec::new());
    keys(&defaults, "", &mut want);
    keys(&file, "", &mut have);
    for key in want {
        assert!(
            have.contains(&key) || text.contains(&format!("# {}", key.rsplit('.').next().unwrap())),
            "{key} is missing from the example file"
        );
    }
}

#[test]
fn an_empty_file_is_the_default() {
    assert_eq!(
        DaemonConfig::from_toml("").unwrap(),
        DaemonConfig::default()
    );
}

#[test]
fn bad_values_name_key_and_value() {
    for (text, want) in [
        (
            "[machines.poll]\nshort_poll = \"10\"\n",
            "machines.poll.short_poll = \"10\": invalid duration \"10\" (expected e.g. \"3s\" or \"15m\"): time unit needed",
        ),
        (
            "[machines.poll]\nshort_poll = \"-3s\"\n",
            "machines.poll.short_poll = \"-3s\": invalid duration",
        ),
        (
            "[machines.poll]\nlong_poll = \"0s\"\n",
            "machines.poll.long_poll = \"0s\": must be a positive duration of at most 1year",
        ),
        (
            "[machines.poll]\nshort_poll = \"10s\"\nshort_poll_cap = \"5s\"\n",
            "machines.poll.short_poll = \"10s\": must not be longer than short_poll_cap (10s > 5s)",
        ),
        (
            "machines.poll.short_poll = \"10\"\n",
            "machines.poll.short_poll = \"10\": invalid duration",
        ),
        (
            "[machines.poll]\nbogus = 1\n",
            "machines.poll.bogus = 1: unknown field `bogus`",
        ),
        ("speed = 3\n", "speed = 3: unknown field `speed`"),
        (
            "[supervision]\nerror_delay = \"-1s\"\n",
            "supervision.error_delay = \"-1s\": invalid duration \"-1s\"",
        ),
        (
            "[supervision]\nerror_delay = \"0s\"\n",
            "supervision.error_delay = \"0s\": must be a positive duration of at most 1year",
        ),
        (
            "[gateway]\ncall_timeout = \"0s\"\n",
            "gateway.call_timeout = \"0s\": must be a positive duration",
        ),
        (
            "[gateway]\ncalls_per_second = 5e-324\n",
            "gateway.calls_per_second = 5e-324: must be a number from 0.001 to 1000000",
        ),
        (
            "[gateway]\nwindow = \"18446744073709551615s\"\n",
            "gateway.window = \"18446744073709551615s\": must be at most 1year",
        ),
        (
            "[backend]\nkind = \"aws\"\n",
            "backend.kind = \"aws\": unknown variant `aws`, expected `sim`",
        ),
        (
            "[backend]\nmachines = 100000000\n",
            "backend.machines = 100000000: must be at most 1000000",
        ),
        (
            "[backend.sim.faults]\nerror_rate = 2.0\n",
            "backend.sim.faults.error_rate = 2.0: must be a rate from 0 to 1",
        ),
        (
            "[backend.sim.faults]\nretry_after = \"5\"\n",
            "backend.sim.faults.retry_after = \"5\": invalid duration \"5\" (expected e.g. \"3s\" or \"15m\", or \"none\")",
        ),
        (
            "[backend.sim.faults]\nretry_after = 5\n",
            "backend.sim.faults.retry_after = 5: invalid type: integer `5`, expected a duration or \"none\", such as \"3s\", \"1m\" or \"250ms\"",
        ),
        (
            "[http]\nlisten = \"nope\"\n",
            "http.listen = \"nope\": invalid socket address syntax",
        ),
        (
            "[http]\ntoken = \"\"\n",
            "http.token: must not be empty (leave it out for no token)",
        ),
        (
            "[http]\ntoken = \"s3cret \"\n",
            "http.token: must not begin or end with whitespace",
        ),
        (
            "[machines.poll]\nshort_poll = 10\n",
            "machines.poll.short_poll = 10: invalid type: integer `10`, expected a duration such as \"3s\", \"1m\" or \"250ms\"",
        ),
        (
            "[machines]\npoll = 3\n",
            "machines.poll = 3: invalid type: integer `3`, expected a table",
        ),
        (
            "[machines.bogus]\nshort_poll = 3\n",
            "machines.bogus: unknown field `bogus`",
        ),
        (
            "this is not toml\n",
            "not a TOML file at line 1, column 6: key with no value",
        ),
    ] {
        let got = problems(text);
        assert_eq!(got.len(), 1, "{text}: {got:?}");
        assert!(got[0].starts_with(want), "{text}: {got:?}");
    }
}

#[test]
fn every_problem_is_reported_once() {
    let got = problems(
        "bogus = 1\n[machines]\npoller_mailbox = 0\n[machines.poll]\nshort_poll = \"10\"\n\
         [gateway]\nwindow = \"soon\"\nburst = 0\ncalls_per_second = nan\n\
         [supervision]\nmax_delay = \"1s\"\nbackoff_factor = inf\n",
    );
    let mut keys: Vec<&str> = got.iter().map(|p| p.split(' ').next().unwrap()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bogus",
            "gateway.burst",
            "gateway.calls_per_second",
            "gateway.window",
            "machines.poll.short_poll",
            "machines.poller_mailbox",
            "supervision.backoff_factor",
            "supervision.max_delay",
        ],
        "{got:#?}"
    );
}

#[test]
fn a_value_the_file_did_not_write_is_shown_as_it_stands() {
    // The cap is at its default, which the new long poll is shorter than.
    assert_eq!(
        problems("[machines.poll]\nlong_poll = \"30s\"\n"),
        ["machines.poll.short_poll_cap = \"1m\": must not be longer than long_poll (1m > 30s)"]
    );
}

#[test]
fn many_problems_are_counted_past_the_hundredth() {
    let text: String = (0..250).map(|n| format!("key{n} = {n}\n")).collect();
    let error = DaemonConfig::from_toml(&text).unwrap_err();
    assert_eq!(error.problems.len(), muster::config::MAX_PROBLEMS);
    assert_eq!(error.more, 150);
    assert_eq!(error.lines().last().unwrap(), "... and 150 more");
    // In the order of the file.
    assert!(error.problems[0].to_string().starts_with("key0 = 0: "));
    assert!(error.problems[99].to_string().starts_with("key99 = 99: "));
}

#[test]
fn a_huge_key_or_value_makes_a_short_message() {
    let key = "k".repeat(1 << 20);
    let value = "v".repeat(1 << 20);
    for text in [
        format!("{key} = 1\n"),
        format!("[machines.poll]\nshort_poll = \"{value}\"\n"),
        format!("\"a b.{key}\" = \"{value}\"\n"),
    ] {
        let got = problems(&text);
        assert_eq!(got.len(), 1);
        assert!(got[0].len() < 1000, "{} bytes", got[0].len());
    }
    // A key that is not bare is quoted.
    assert!(problems("\"a b\" = 1\n")[0].starts_with("\"a b\" = 1: unknown field"));
}

#[test]
fn bytes_past_the_limit_or_not_utf8_are_refused() {
    let big = vec![b'#'; MAX_FILE_BYTES + 1];
    let error = DaemonConfig::from_bytes(&big).unwrap_err();
    assert_eq!(
        error.lines(),
        ["larger than 4 MiB, the most a config file may be"]
    );
    let at_limit = vec![b'#'; MAX_FILE_BYTES];
    assert_eq!(
        DaemonConfig::from_bytes(&at_limit).unwrap(),
        DaemonConfig::default()
    );
    let error = DaemonConfig::from_bytes(b"[gateway]\nwindow = \"1s\xff\"\n").unwrap_err();
    assert_eq!(
        error.lines(),
        ["not UTF-8 text: a bad byte at line 2, column 13"]
    );
}

#[test]
fn a_config_built_in_code_is_checked_as_a_file_is() {
    let mut config = DaemonConfig::default();
    config.gateway.calls_per_second = 5e-324;
    config.presence.restart.shutdown_timeout = std::time::Duration::MAX;
    config.backend.sim.faults.retry_after = Some(std::time::Duration::MAX);
    let error = config.validate().unwrap_err();
    assert_eq!(
        error.keys(),
        [
            "presence.restart.shutdown_timeout",
            "gateway.calls_per_second",
            "backend.sim.faults.retry_after",
        ]
    );
    // The tree refuses what is its own, with the same keys.
    let error = config.muster().validate().unwrap_err();
    assert_eq!(
        error.keys(),
        [
            "presence.restart.shutdown_timeout",
            "gateway.calls_per_second"
        ]
    );
}

#[test]
fn the_example_cluster_section_reads_as_its_defaults() {
    let text = include_str!("../muster.example.toml");
    let section: String = text
        .lines()
        .skip_while(|line| *line != "# [cluster]")
        .map_while(|line| line.strip_prefix("# "))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(section.starts_with("[cluster]\n"), "{section}");
    let config = DaemonConfig::from_toml(&section).unwrap();
    let cluster = config.cluster.expect("a [cluster] section");
    // `replicas` has no value of its own by default: the example writes
    // the one its single server gives.
    assert_eq!(cluster.replicas(), ClusterConfig::default().replicas());
    let mut cluster = cluster;
    cluster.replicas = None;
    let mut expected = ClusterConfig::default();
    expected.credentials = Some("nats.creds".into());
    assert_eq!(cluster, expected);
    // An empty section is a cluster with every default.
    assert_eq!(
        DaemonConfig::from_toml("[cluster]\n").unwrap().cluster,
        Some(ClusterConfig::default())
    );
}

#[test]
fn cluster_problems_name_their_key_with_the_value_written() {
    assert_eq!(
        problems("[cluster]\nheartbeat = \"2s\"\ndown_after = \"3s\"\nname = \"a.b\"\n"),
        [
            "cluster.name = \"a.b\": must be 1 to 64 letters, digits, '-' or '_' (one NATS subject token)",
            "cluster.down_after = \"3s\": must not be shorter than twice heartbeat (3s < 4s)",
        ]
    );
    assert_eq!(
        problems("[cluster]\nnats = \"nats://127.0.0.1:4222\"\n"),
        [
            "cluster.nats = \"nats://127.0.0.1:4222\": invalid type: string \"nats://127.0.0.1:4222\", expected a sequence"
        ]
    );
    assert_eq!(
        problems("[cluster]\nlease = \"15s\"\n")[0],
        "cluster.lease = \"15s\": unknown field `lease`, expected one of `name`, `nats`, `credentials`, `heartbeat`, `down_after`, `lease_ttl`, `replicas`"
    );
}
#[test]
fn the_config_file_names_key_and_value() {
    for (text, want) in [
        (
            "[agents]\nping_interval = \"0s\"\n",
            "agents.ping_interval = \"0s\": must be at least 100ms and at most 1day",
        ),
        (
            "[agents]\nping_interval = \"99999999999999999999s\"\n",
            "agents.ping_interval = \"99999999999999999999s\": ",
        ),
        (
            "[agents]\nidle_timeout = \"10s\"\n",
            "agents.idle_timeout = \"10s\": must be longer than ping_interval (10s <= 30s)",
        ),
        (
            "[agents]\nserver = \"unit-mysql-0\"\n",
            "agents.server = \"unit-mysql-0\": \"unit-mysql-0\" is not a valid machine tag",
        ),
        (
            "[agents]\nlisten = \"0.0.0.0:17070\"\n",
            "agents.listen = \"0.0.0.0:17070\": 0.0.0.0 is not a loopback address",
        ),
        (
            "[agents]\nmax_frame = -1\n",
            "agents.max_frame = -1: invalid value: integer `-1`",
        ),
        (
            "[agents]\nmax_connections = 0\n",
            "agents.max_connections = 0: must be at least 1 and at most 10000000",
        ),
        (
            "[agents]\nactivity_interval = 1\n",
            "agents.activity_interval = 1: invalid type: integer `1`, expected a duration such as",
        ),
        (
            "[agents]\ntls_key = \"k.pem\"\n",
            "agents.tls_key = \"k.pem\": set with both agents.tls_cert and agents.tls_key",
        ),
        (
            "[agents]\nport = 17070\n",
            "agents.port = 17070: unknown field `port`",
        ),
    ] {
        let problems = DaemonConfig::from_toml(text).unwrap_err().lines();
        assert_eq!(problems.len(), 1, "{text}: {problems:?}");
        let got = &problems[0];
        assert!(got.starts_with(want), "{text}: {got}");
    }
}
