//! The simulated cloud's settings: how instances boot, and which faults the
//! provider and the API server inject.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Checker, Counts, Durations, Validate, YEAR};

/// What each of the simulation's delays may be.
const DELAYS: Durations = Durations::up_to(YEAR);

/// What the cloud's own rate limit may be, in calls per second.
const CALL_LIMITS: Counts = Counts::new(1, 1_000_000);

/// How the simulated cloud behaves.
///
/// In a configuration file the durations are human strings (`"2s"`,
/// `"500ms"`) and any field left out takes its default. Reading one checks
/// nothing but the spelling: [`Validate`] checks the ranges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimConfig {
    /// The seed of the fault injector: one seed, one run.
    pub seed: u64,
    /// How long a new instance stays pending.
    #[serde(with = "humantime_serde")]
    pub pending_for: Duration,
    /// How long it then stays allocating, before it runs.
    #[serde(with = "humantime_serde")]
    pub allocating_for: Duration,
    /// How long after it runs the provider reports its addresses.
    #[serde(with = "humantime_serde")]
    pub address_delay: Duration,
    /// How long after it runs the machine agent starts.
    #[serde(with = "humantime_serde")]
    pub agent_start_delay: Duration,
    /// Whether the provider answers network-interface calls; without it the
    /// poller falls back to the instances' plain addresses.
    pub networking: bool,
    /// The faults to inject.
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    /// A cloud whose instances are pending 2 s and allocating 8 s, then run;
    /// their addresses appear 2 s and their agents start 5 s after that. No
    /// faults.
    fn default() -> Self {
        SimConfig {
            seed: 0,
            pending_for: Duration::from_secs(2),
            allocating_for: Duration::from_secs(8),
            address_delay: Duration::from_secs(2),
            agent_start_delay: Duration::from_secs(5),
            networking: true,
            faults: FaultConfig::default(),
        }
    }
}

impl Validate for SimConfig {
    /// Every delay, zero included, up to a year; the faults' own ranges.
    fn check(&self, at: &mut Checker) {
        at.duration("pending_for", self.pending_for, DELAYS);
        at.duration("allocating_for", self.allocating_for, DELAYS);
        at.duration("address_delay", self.address_delay, DELAYS);
        at.duration("agent_start_delay", self.agent_start_delay, DELAYS);
        at.section("faults", &self.faults);
    }
}

/// The faults the simulated cloud injects, drawn from the seeded generator
/// in the order of the calls, so a run with one seed repeats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// The chance, from 0 to 1, that a provider call fails.
    pub error_rate: f64,
    /// The chance that a provider call is throttled.
    pub throttle_rate: f64,
    /// What a throttled call says to wait; `None` (`"none"` in a file) says
    /// nothing.
    #[serde(with = "retry_after")]
    pub retry_after: Option<Duration>,
    /// The chance that the provider leaves one instance out of an answer.
    pub partial_rate: f64,
    /// The chance that an API server call about a machine fails.
    pub model_error_rate: f64,
    /// How long every provider call takes.
    #[serde(with = "humantime_serde")]
    pub latency: Duration,
    /// The most provider calls the cloud takes in one second, as clouds
    /// rate-limit their APIs; the calls past it are throttled until the
    /// second is over. `None` sets no limit.
    pub max_calls_per_second: Option<u32>,
}

impl Default for FaultConfig {
    /// No faults, no latency; a throttled call says to retry after 5 s.
    fn default() -> Self {
        FaultConfig {
            error_rate: 0.0,
            throttle_rate: 0.0,
            retry_after: Some(Duration::from_secs(5)),
            partial_rate: 0.0,
            model_error_rate: 0.0,
            latency: Duration::ZERO,
            max_calls_per_second: None,
        }
    }
}

impl Validate for FaultConfig {
    /// Every rate from 0 to 1, every delay up to a year, and a call limit
    /// that lets at least one call through.
    fn check(&self, at: &mut Checker) {
        at.rate("error_rate", self.error_rate);
        at.rate("throttle_rate", self.throttle_rate);
        if let Some(wait) = self.retry_after {
            at.duration("retry_after", wait, DELAYS);
        }
        at.rate("partial_rate", self.partial_rate);
        at.rate("model_error_rate", self.model_error_rate);
        at.duration("latency", self.latency, DELAYS);
        if let Some(limit) = self.max_calls_per_second
            && !CALL_LIMITS.contains(limit.into())
        {
            at.problem(
                "max_calls_per_second",
                Some(limit.to_string()),
                format!("{CALL_LIMITS} (leave it out for no limit)"),
            );
        }
    }
}

/// `retry_after` in a file: a human duration, or `"none"` for a throttled
/// call that says nothing.
mod retry_after {
    use std::fmt;
    use std::time::Duration;

    use serde::de::{self, Visitor};
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(wait) => humantime_serde::serialize(wait, serializer),
            None => serializer.serialize_str("none"),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        struct Wait;

        impl Visitor<'_> for Wait {
            type Value = Option<Duration>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration or \"none\"")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
                if text == "none" {
                    return Ok(None);
                }
                humantime::parse_duration(text)
                    .map(Some)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(text), &self))
            }
        }

        deserializer.deserialize_str(Wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_human_durations_and_defaults_the_rest() {
        let config: SimConfig = serde_json::from_str(
            r#"{"seed": 7, "pending_for": "1s", "agent_start_delay": "1m",
                "faults": {"error_rate": 0.1, "latency": "50ms", "retry_after": "none"}}"#,
        )
        .unwrap();
        assert_eq!(config.seed, 7);
        assert_eq!(config.pending_for, Duration::from_secs(1));
        assert_eq!(config.allocating_for, SimConfig::default().allocating_for);
        assert_eq!(config.agent_start_delay, Duration::from_secs(60));
        assert_eq!(config.faults.error_rate, 0.1);
        assert_eq!(config.faults.latency, Duration::from_millis(50));
        assert_eq!(config.faults.retry_after, None);
        assert!(config.networking);
        let json = serde_json::to_value(&config).unwrap();
        assert_eq!(json["agent_start_delay"], "1m");
        assert_eq!(json["faults"]["latency"], "50ms");
        assert_eq!(json["faults"]["retry_after"], "none");
        assert_eq!(serde_json::from_value::<SimConfig>(json).unwrap(), config);
        let defaults = serde_json::to_value(SimConfig::default()).unwrap();
        assert_eq!(
            serde_json::from_value::<SimConfig>(defaults).unwrap(),
            SimConfig::default()
        );
    }

    #[test]
    fn text_that_is_not_a_duration_does_not_read() {
        for (json, text) in [
            (r#"{"pending_for": "10"}"#, r#""10""#),
            (r#"{"address_delay": "-3s"}"#, r#""-3s""#),
            (r#"{"faults": {"latency": "fast"}}"#, r#""fast""#),
            (r#"{"faults": {"retry_after": "5"}}"#, r#""5""#),
        ] {
            let err = serde_json::from_str::<SimConfig>(json)
                .unwrap_err()
                .to_string();
            assert!(err.contains(text), "{err}");
            assert!(err.contains("expected a duration"), "{err}");
        }
        let err = serde_json::from_str::<SimConfig>(r#"{"boot": "1s"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `boot`"), "{err}");
    }

    #[test]
    fn every_value_out_of_range_is_named_with_its_key() {
        let config = SimConfig {
            pending_for: Duration::MAX,
            faults: FaultConfig {
                error_rate: 1.5,
                throttle_rate: f64::NAN,
                partial_rate: -0.1,
                retry_after: Some(Duration::from_secs(u64::MAX)),
                max_calls_per_second: Some(0),
                ..FaultConfig::default()
            },
            ..SimConfig::default()
        };
        let error = config.validate().unwrap_err();
        assert_eq!(
            error.keys(),
            [
                "pending_for",
                "faults.error_rate",
                "faults.throttle_rate",
                "faults.retry_after",
                "faults.partial_rate",
                "faults.max_calls_per_second",
            ],
            "{error}"
        );
        let lines = error.lines();
        assert_eq!(
            lines[1],
            "faults.error_rate = 1.5: must be a rate from 0 to 1"
        );
        assert_eq!(
            lines[5],
            "faults.max_calls_per_second = 0: must be at least 1 and at most 1000000 \
             (leave it out for no limit)"
        );
        assert_eq!(SimConfig::default().validate(), Ok(()));
    }

    #[test]
    fn zero_delays_are_allowed() {
        let config: SimConfig =
            serde_json::from_str(r#"{"pending_for": "0s", "faults": {"latency": "0s"}}"#).unwrap();
        assert_eq!(config.pending_for, Duration::ZERO);
        assert_eq!(config.validate(), Ok(()));
    }
}
