//! The `[cluster]` section of the config file: the NATS servers the API
//! servers of one controller share presence through, and how often they
//! say they are alive.

use std::path::PathBuf;
use std::time::Duration;

use muster::config::{Checker, Counts, DAY, Durations, Validate};
use serde::{Deserialize, Serialize};

/// The default NATS server.
pub const DEFAULT_NATS: &str = "nats://127.0.0.1:4222";

/// The most NATS URLs a config may list.
pub const MAX_URLS: usize = 64;

/// The longest cluster name, in bytes.
pub const MAX_NAME: usize = 64;

/// Where the controller's API servers meet, and how they watch each other.
/// A node is the API server named by `[agents] server`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterConfig {
    /// The controller's name on NATS: every subject starts
    /// `muster.NAME.`, so several controllers can share one NATS.
    pub name: String,
    /// The NATS servers, tried in turn: `nats://HOST:PORT` (or `tls://`).
    pub nats: Vec<String>,
    /// A NATS credentials file (`.creds`, a user JWT and its NKey seed) or
    /// a file holding a token. Its content is never logged nor shown.
    pub credentials: Option<PathBuf>,
    /// How often a node says it is alive, with the number of its last
    /// change.
    #[serde(with = "humantime_serde")]
    pub heartbeat: Duration,
    /// A peer heard nothing from for this long is down: its agents turn
    /// missing.
    #[serde(with = "humantime_serde")]
    pub down_after: Duration,
    /// How long a node's hold on a model lasts unless renewed.
    #[serde(with = "humantime_serde")]
    pub lease_ttl: Duration,
    /// How many NATS servers keep a copy of the leases and the registry;
    /// left out, one per server of `nats`, up to three.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            name: "controller".into(),
            nats: vec![DEFAULT_NATS.into()],
            credentials: None,
            heartbeat: Duration::from_secs(1),
            down_after: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(15),
            replicas: None,
        }
    }
}

/// What `heartbeat` may be.
const HEARTBEATS: Durations =
    Durations::between(Duration::from_millis(10), Duration::from_secs(3600));

/// What `down_after` and `lease_ttl` may be.
const TIMEOUTS: Durations = Durations::between(Duration::from_millis(100), DAY);

/// How many NATS URLs there may be.
const URLS: Counts = Counts::new(1, MAX_URLS as u64);

/// How many copies JetStream may keep of a bucket.
const REPLICAS: Counts = Counts::new(1, 5);

impl Validate for ClusterConfig {
    /// A name that is one NATS subject token; one to [`MAX_URLS`] NATS URLs
    /// that parse and hold no user or password; the durations in range,
    /// `down_after` at least two heartbeats; `replicas` from 1 to 5; the credentials file named,
    /// when set (what it holds is read at start, see
    /// [`auth`](super::auth)).
    fn check(&self, at: &mut Checker) {
        let token = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if self.name.is_empty() || self.name.len() > MAX_NAME || !self.name.chars().all(token) {
            at.problem(
                "name",
                Some(format!("{:?}", shown(&self.name))),
                format!(
                    "must be 1 to {MAX_NAME} letters, digits, '-' or '_' (one NATS subject token)"
                ),
            );
        }
        if at.count("nats", self.nats.len(), URLS) {
            for (n, url) in self.nats.iter().enumerate() {
                if let Err(reason) = check_url(url) {
                    at.problem("nats", None, format!("entry {}: {reason}", n + 1));
                }
            }
        }
        if let Some(path) = &self.credentials
            && path.as_os_str().is_empty()
        {
            at.problem(
                "credentials",
                Some("\"\"".into()),
                "must not be empty (leave it out for no credentials)",
            );
        }
        let heartbeat = at.duration("heartbeat", self.heartbeat, HEARTBEATS);
        let down = at.duration("down_after", self.down_after, TIMEOUTS);
        if heartbeat && down {
            at.not_shorter(
                "down_after",
                self.down_after,
                "twice heartbeat",
                self.heartbeat.saturating_mul(2),
            );
        }
        at.duration("lease_ttl", self.lease_ttl, TIMEOUTS);
        if let Some(replicas) = self.replicas {
            at.count("replicas", replicas, REPLICAS);
        }
    }
}

impl ClusterConfig {
    /// How many NATS servers keep a copy of each bucket: `replicas`, or one
    /// per server listed, up to three.
    pub fn replicas(&self) -> usize {
        self.replicas
            .unwrap_or_else(|| self.nats.len().min(3))
            .clamp(1, 5)
    }
}

/// Why a NATS URL is refused: it does not parse as one, or it carries a
/// user or password, which would then be logged with it. Never quotes a
/// URL that holds a secret.
pub fn check_url(url: &str) -> Result<async_nats::ServerAddr, String> {
    let parsed: Result<async_nats::ServerAddr, _> = url.trim().parse();
    match parsed {
        Ok(addr) if addr.has_user_pass() || addr.username().is_some() => Err(
            "holds a user or password; put them in a credentials file (cluster.credentials)".into(),
        ),
        Ok(addr) if addr.host().is_empty() => Err(format!("{:?} names no host", shown(url))),
        Ok(addr) => Ok(addr),
        // A URL that does not parse may still hold a secret: show only
        // what comes before an '@'.
        Err(e) if url.contains('@') => Err(format!("not a NATS URL: {e}")),
        Err(e) => Err(format!("{:?} is not a NATS URL: {e}", shown(url))),
    }
}

/// Text cut short for a message.
fn shown(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(config: &ClusterConfig) -> Vec<String> {
        let mut at = Checker::new();
        at.section("cluster", config);
        at.finish().map_or_else(|e| e.lines(), |()| Vec::new())
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(problems(&ClusterConfig::default()), Vec::<String>::new());
    }

    #[test]
    fn replicas_are_one_to_five_and_default_to_the_servers_up_to_three() {
        let with = |replicas, servers: usize| ClusterConfig {
            replicas,
            nats: (0..servers)
                .map(|n| format!("nats://10.0.0.{n}:4222"))
                .collect(),
            ..ClusterConfig::default()
        };
        for (servers, want) in [(1, 1), (2, 2), (3, 3), (5, 3)] {
            assert_eq!(with(None, servers).replicas(), want, "{servers} servers");
        }
        assert_eq!(with(Some(5), 1).replicas(), 5);
        assert!(problems(&with(Some(5), 1)).is_empty());
        for bad in [0, 6, usize::MAX] {
            let problems = problems(&with(Some(bad), 3));
            assert_eq!(
                problems,
                [format!(
                    "cluster.replicas = {bad}: must be at least 1 and at most 5"
                )],
            );
        }
    }

    #[test]
    fn durations_out_of_range_name_their_key() {
        let ms = Duration::from_millis;
        for (config, want) in [
            (
                ClusterConfig {
                    heartbeat: Duration::ZERO,
                    ..ClusterConfig::default()
                },
                "cluster.heartbeat = \"0s\": must be at least 10ms and at most 1h",
            ),
            (
                ClusterConfig {
                    heartbeat: Duration::MAX,
                    ..ClusterConfig::default()
                },
                "cluster.heartbeat = \"",
            ),
            (
                ClusterConfig {
                    heartbeat: ms(400),
                    down_after: ms(500),
                    ..ClusterConfig::default()
                },
                "cluster.down_after = \"500ms\": must not be shorter than twice heartbeat (500ms < 800ms)",
            ),
            (
                ClusterConfig {
                    lease_ttl: ms(1),
                    ..ClusterConfig::default()
                },
                "cluster.lease_ttl = \"1ms\": must be at least 100ms and at most 1day",
            ),
            (
                ClusterConfig {
                    down_after: Duration::from_secs(2 * 86_400),
                    ..ClusterConfig::default()
                },
                "cluster.down_after = \"2days\": must be at least 100ms and at most 1day",
            ),
        ] {
            let got = problems(&config);
            assert_eq!(got.len(), 1, "{got:?}");
            assert!(got[0].starts_with(want), "{got:?} wants {want}");
        }
    }

    #[test]
    fn urls_must_parse_and_hold_no_secret() {
        let with = |nats: &[&str]| ClusterConfig {
            nats: nats.iter().map(|s| s.to_string()).collect(),
            ..ClusterConfig::default()
        };
        assert_eq!(
            problems(&with(&[])),
            ["cluster.nats = 0: must be at least 1 and at most 64"]
        );
        let many: Vec<&str> = std::iter::repeat_n(DEFAULT_NATS, MAX_URLS + 1).collect();
        assert_eq!(
            problems(&with(&many)),
            ["cluster.nats = 65: must be at least 1 and at most 64"]
        );
        let got = problems(&with(&[
            "nats://127.0.0.1:4222",
            "http://127.0.0.1:4222",
            "nats://alice:s3cret@127.0.0.1:4222",
            "nats://s3cret@127.0.0.1:4222",
            "nats://:s3cret@[::1",
            "tls://nats.example:4443",
            "127.0.0.1:4223",
        ]));
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(
            got[0].starts_with(
                "cluster.nats: entry 2: \"http://127.0.0.1:4222\" is not a NATS URL: invalid scheme"
            ),
            "{got:?}"
        );
        for line in &got[1..] {
            assert!(!line.contains("s3cret"), "a secret is shown: {line}");
        }
        assert!(
            got[1].contains("entry 3: holds a user or password"),
            "{got:?}"
        );
        assert!(
            got[2].contains("entry 4: holds a user or password"),
            "{got:?}"
        );
        assert!(got[3].contains("entry 5: not a NATS URL"), "{got:?}");
    }

    #[test]
    fn the_name_is_one_subject_token() {
        for bad in ["", " ", "a.b", "a*", ">", "a b", &"x".repeat(65), "naïve"] {
            let config = ClusterConfig {
                name: bad.into(),
                ..ClusterConfig::default()
            };
            let got = problems(&config);
            assert_eq!(got.len(), 1, "{bad:?}: {got:?}");
            assert!(got[0].starts_with("cluster.name = "), "{got:?}");
        }
        for good in ["controller", "prod-eu_1", &"x".repeat(64)] {
            let config = ClusterConfig {
                name: good.into(),
                ..ClusterConfig::default()
            };
            assert_eq!(problems(&config), Vec::<String>::new(), "{good}");
        }
    }

    #[test]
    fn an_empty_credentials_path_is_refused() {
        let config = ClusterConfig {
            credentials: Some(PathBuf::new()),
            ..ClusterConfig::default()
        };
        assert_eq!(
            problems(&config),
            ["cluster.credentials = \"\": must not be empty (leave it out for no credentials)"]
        );
    }
}
