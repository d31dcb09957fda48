//! The `[agents]` section of the config file: where the agents' door
//! listens, who may come in, and how long a connection may stay quiet.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use muster::config::{Checker, Counts, Durations, Validate, duration_value};
use muster::names::MachineTag;
use serde::{Deserialize, Serialize};

use muster::token::validate_token;

/// The default listen address of the agents' door.
pub const DEFAULT_AGENTS_LISTEN: &str = "127.0.0.1:17070";

/// The longest shared agent secret, in bytes: it travels in every login
/// frame, which must fit in the smallest `max_frame`.
pub const MAX_TOKEN: usize = muster::token::MAX_TOKEN;

/// The smallest `max_frame`: a login with the longest user data and token,
/// every byte of them escaped in JSON, still fits.
pub const MIN_FRAME: usize = 16 * 1024;

/// The largest `max_frame`: each connection may buffer one frame this big.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// The most connections the door can count.
pub const MAX_CONNECTIONS: usize = 10_000_000;

/// The longest any of the door's durations may be: long enough for any
/// deployment, short enough that a deadline never overflows the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// How the door checks who an agent is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum AgentAuth {
    /// The shared `token`, when one is set; any agent otherwise.
    #[default]
    Token,
    /// Each agent's own password, as the host's password store holds it
    /// (docs/spec.md §14).
    Password,
}

/// Where agents connect and what the door allows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentsConfig {
    /// The listen address; loopback by default. Port 0 picks a free one.
    pub listen: SocketAddr,
    /// The tag of the API server this door is: every connection is
    /// recorded under it.
    pub server: MachineTag,
    /// How each login is checked: `token` (the default) or `password`.
    pub auth: AgentAuth,
    /// The shared agent secret each login must carry, when set, with
    /// `auth = "token"`.
    pub token: Option<String>,
    /// With `auth = "password"`, failed logins (4401) from one address
    /// (an IPv6 one's /64) within `login_failure_window` past which its
    /// logins are refused with 4429 for `login_lockout`.
    pub max_login_failures: u32,
    /// The window failed logins are counted in.
    #[serde(with = "humantime_serde")]
    pub login_failure_window: Duration,
    /// How long an address past `max_login_failures` is refused.
    #[serde(with = "humantime_serde")]
    pub login_lockout: Duration,
    /// How often the server pings each connection.
    #[serde(with = "humantime_serde")]
    pub ping_interval: Duration,
    /// A connection that sends nothing (not even a pong) for this long is
    /// closed with code 4408.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// How long a new connection has to finish its TLS handshake, upgrade
    /// and login.
    #[serde(with = "humantime_serde")]
    pub login_timeout: Duration,
    /// At most one activity event per connection per this interval; zero
    /// reports every frame.
    #[serde(with = "humantime_serde")]
    pub activity_interval: Duration,
    /// Open sockets at most, those still logging in included; past it a
    /// new one is answered HTTP 503.
    pub max_connections: usize,
    /// The largest frame or message an agent may send, in bytes; a larger
    /// one closes the connection with code 1009.
    pub max_frame: usize,
    /// The PEM file of the certificate chain, for `wss://`; set with
    /// `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// The PEM file of the certificate's private key; set with `tls_cert`.
    pub tls_key: Option<PathBuf>,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            listen: DEFAULT_AGENTS_LISTEN
                .parse()
                .expect("a valid socket address"),
            server: "machine-0".parse().expect("a valid machine tag"),
            auth: AgentAuth::Token,
            token: None,
            max_login_failures: 10,
            login_failure_window: Duration::from_secs(60),
            login_lockout: Duration::from_secs(300),
            ping_interval: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(90),
            login_timeout: Duration::from_secs(10),
            activity_interval: Duration::from_secs(1),
            max_connections: 100_000,
            max_frame: 64 * 1024,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl AgentsConfig {
    /// Whether the door speaks TLS.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Whether each login is checked against the agent's own password.
    pub fn passwords(&self) -> bool {
        self.auth == AgentAuth::Password
    }
}

/// What `max_login_failures` may be.
const FAILURES: Counts = Counts::new(1, 1_000_000);

/// What `login_failure_window` and `login_lockout` may be.
const LOCKOUTS: Durations = Durations::between(Duration::from_secs(1), MAX_DURATION);

/// What `ping_interval`, `idle_timeout` and `login_timeout` may be.
const TIMEOUTS: Durations = Durations::between(Duration::from_millis(100), MAX_DURATION);

/// What `max_connections` may be.
const CONNECTIONS: Counts = Counts::new(1, MAX_CONNECTIONS as u64);

/// What `max_frame` may be.
const FRAMES: Counts = Counts::new(MIN_FRAME as u64, MAX_FRAME as u64);

impl Validate for AgentsConfig {
    /// A door off loopback guarded by a token or TLS; the token not blank
    /// and at most [`MAX_TOKEN`] bytes; every duration within its range,
    /// the idle timeout longer than the ping interval; the TLS files set
    /// together.
    fn check(&self, at: &mut Checker) {
        if !self.listen.ip().is_loopback()
            && self.token.is_none()
            && !self.passwords()
            && !self.tls()
        {
            let reason = format!(
                "{} is not a loopback address: set {}, {} = \"password\", or {} and {}, so \
                 that what agents send does not cross the network unguarded",
                self.listen.ip(),
                at.key("token"),
                at.key("auth"),
                at.key("tls_cert"),
                at.key("tls_key"),
            );
            at.problem(
                "listen",
                Some(format!("{:?}", self.listen.to_string())),
                reason,
            );
        }
        if let Some(token) = &self.token {
            // The token itself stays out of the message.
            if let Err(reason) = validate_token(token) {
                at.problem("token", None, reason);
            } else if self.passwords() {
                let reason = format!(
                    "not used with {} = \"password\", where each agent logs in with its own \
                     password: leave it out",
                    at.key("auth")
                );
                at.problem("token", None, reason);
            }
        }
        at.count("max_login_failures", self.max_login_failures, FAILURES);
        at.duration("login_failure_window", self.login_failure_window, LOCKOUTS);
        at.duration("login_lockout", self.login_lockout, LOCKOUTS);
        let ping = at.duration("ping_interval", self.ping_interval, TIMEOUTS);
        let idle = at.duration("idle_timeout", self.idle_timeout, TIMEOUTS);
        if ping && idle && self.idle_timeout <= self.ping_interval {
            at.problem(
                "idle_timeout",
                Some(duration_value(self.idle_timeout)),
                format!(
                    "must be longer than ping_interval ({} <= {}), or an agent that only \
                     answers pings is closed",
                    humantime::format_duration(self.idle_timeout),
                    humantime::format_duration(self.ping_interval)
                ),
            );
        }
        at.duration("login_timeout", self.login_timeout, TIMEOUTS);
        let activity = Durations::up_to(MAX_DURATION);
        if !activity.contains(self.activity_interval) {
            at.problem(
                "activity_interval",
                Some(duration_value(self.activity_interval)),
                format!("{activity} (0 reports every frame)"),
            );
        }
        at.count("max_connections", self.max_connections, CONNECTIONS);
        at.count("max_frame", self.max_frame, FRAMES);
        let both = format!(
            "set with both {} and {}, or neither",
            at.key("tls_cert"),
            at.key("tls_key")
        );
        for (key, path, other) in [
            ("tls_cert", &self.tls_cert, &self.tls_key),
            ("tls_key", &self.tls_key, &self.tls_cert),
        ] {
            let shown = || {
                path.as_ref()
                    .map(|p| format!("{:?}", p.display().to_string()))
            };
            match (path, other) {
                (Some(path), _) if path.as_os_str().is_empty() => {
                    at.problem(key, shown(), "must not be empty (leave it out for no TLS)")
                }
                (Some(_), None) => at.problem(key, shown(), both.clone()),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of the problems of `config` as the `[agents]` section.
    fn keys(config: &AgentsConfig) -> Vec<String> {
        let mut at = Checker::new();
        at.section("agents", config);
        at.finish().map_or_else(
            |e| e.keys().into_iter().map(str::to_owned).collect(),
            |()| Vec::new(),
        )
    }

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(AgentsConfig::default().validate(), Ok(()));
    }

    #[test]
    fn a_network_door_wants_a_token_or_tls() {
        let open = AgentsConfig {
            listen: "0.0.0.0:17070".parse().unwrap(),
            ..AgentsConfig::default()
        };
        assert_eq!(keys(&open), ["agents.listen"]);
        let guarded = AgentsConfig {
            token: Some("s3cret".into()),
            ..open.clone()
        };
        assert!(keys(&guarded).is_empty());
        let tls = AgentsConfig {
            tls_cert: Some("cert.pem".into()),
            tls_key: Some("key.pem".into()),
            ..open.clone()
        };
        assert!(keys(&tls).is_empty());
        let passwords = AgentsConfig {
            auth: AgentAuth::Password,
            ..open.clone()
        };
        assert!(keys(&passwords).is_empty());
        let v6 = AgentsConfig {
            listen: "[::1]:0".parse().unwrap(),
            ..AgentsConfig::default()
        };
        assert!(keys(&v6).is_empty());
    }

    #[test]
    fn every_range_names_its_key() {
        let d = AgentsConfig::default();
        let s = Duration::from_secs;
        for (config, key) in [
            (
                AgentsConfig {
                    token: Some(" \t".into()),
                    ..d.clone()
                },
                "agents.token",
            ),
            (
                AgentsConfig {
                    token: Some("x".repeat(MAX_TOKEN + 1)),
                    ..d.clone()
                },
                "agents.token",
            ),
            (
                AgentsConfig {
                    ping_interval: Duration::ZERO,
                    ..d.clone()
                },
                "agents.ping_interval",
            ),
            (
                AgentsConfig {
                    ping_interval: Duration::MAX,
                    ..d.clone()
                },
                "agents.ping_interval",
            ),
            (
                AgentsConfig {
                    idle_timeout: s(30),
                    ..d.clone()
                },
                "agents.idle_timeout",
            ),
            (
                AgentsConfig {
                    idle_timeout: s(u64::MAX),
                    ..d.clone()
                },
                "agents.idle_timeout",
            ),
            (
                AgentsConfig {
                    login_timeout: Duration::from_nanos(1),
                    ..d.clone()
                },
                "agents.login_timeout",
            ),
            (
                AgentsConfig {
                    activity_interval: s(MAX_DURATION.as_secs() + 1),
                    ..d.clone()
                },
                "agents.activity_interval",
            ),
            (
                AgentsConfig {
                    max_connections: 0,
                    ..d.clone()
                },
                "agents.max_connections",
            ),
            (
                AgentsConfig {
                    max_connections: usize::MAX,
                    ..d.clone()
                },
                "agents.max_connections",
            ),
            (
                AgentsConfig {
                    max_frame: 1024,
                    ..d.clone()
                },
                "agents.max_frame",
            ),
            (
                AgentsConfig {
                    max_frame: usize::MAX,
                    ..d.clone()
                },
                "agents.max_frame",
            ),
            (
                AgentsConfig {
                    tls_cert: Some("cert.pem".into()),
                    ..d.clone()
                },
                "agents.tls_cert",
            ),
            (
                AgentsConfig {
                    tls_key: Some("key.pem".into()),
                    ..d.clone()
                },
                "agents.tls_key",
            ),
            (
                AgentsConfig {
                    tls_cert: Some("".into()),
                    tls_key: Some("key.pem".into()),
                    ..d.clone()
                },
                "agents.tls_cert",
            ),
        ] {
            assert_eq!(keys(&config), [key], "{config:?}");
        }
        for (config, key) in [
            (
                AgentsConfig {
                    auth: AgentAuth::Password,
                    token: Some("s3cret".into()),
                    ..d.clone()
                },
                "agents.token",
            ),
            (
                AgentsConfig {
                    max_login_failures: 0,
                    ..d.clone()
                },
                "agents.max_login_failures",
            ),
            (
                AgentsConfig {
                    max_login_failures: u32::MAX,
                    ..d.clone()
                },
                "agents.max_login_failures",
            ),
            (
                AgentsConfig {
                    login_failure_window: Duration::ZERO,
                    ..d.clone()
                },
                "agents.login_failure_window",
            ),
            (
                AgentsConfig {
                    login_lockout: Duration::MAX,
                    ..d.clone()
                },
                "agents.login_lockout",
            ),
        ] {
            assert_eq!(keys(&config), [key], "{config:?}");
        }
        // Zero coalesces nothing, which is a choice an operator may make.
        let every = AgentsConfig {
            activity_interval: Duration::ZERO,
            ..d
        };
        assert!(keys(&every).is_empty());
    }
}
