//! The simulated cloud's settings: how instances boot, and which faults the
//! provider and the API server inject.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, parse_duration};

/// How the simulated cloud behaves.
///
/// In a configuration file the durations are human strings (`"2s"`,
/// `"500ms"`) and any field left out takes its default; reading one validates
/// it, so a bad value is refused with the field's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawSimConfig")]
pub struct SimConfig {
    /// The seed of the fault injector: one seed, one run.
    pub seed: u64,
    /// How long a new instance stays pending.
    #[serde(serialize_with = "humantime_serde::serialize")]
    pub pending_for: Duration,
    /// How long it then stays allocating, before it runs.
    #[serde(serialize_with = "humantime_serde::serialize")]
    pub allocating_for: Duration,
    /// How long after it runs the provider reports its addresses.
    #[serde(serialize_with = "humantime_serde::serialize")]
    pub address_delay: Duration,
    /// How long after it runs the machine agent starts.
    #[serde(serialize_with = "humantime_serde::serialize")]
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

impl SimConfig {
    /// Checks the fault settings; every duration, zero included, is valid.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.faults.validate()
    }
}

/// The faults the simulated cloud injects, drawn from the seeded generator
/// in the order of the calls, so a run with one seed repeats.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawFaultConfig")]
pub struct FaultConfig {
    /// The chance, from 0 to 1, that a provider call fails.
    pub error_rate: f64,
    /// The chance that a provider call is throttled.
    pub throttle_rate: f64,
    /// What a throttled call says to wait; `None` (`"none"` in a file) says
    /// nothing.
    #[serde(serialize_with = "serialize_retry_after")]
    pub retry_after: Option<Duration>,
    /// The chance that the provider leaves one instance out of an answer.
    pub partial_rate: f64,
    /// The chance that an API server call about a machine fails.
    pub model_error_rate: f64,
    /// How long every provider call takes.
    #[serde(serialize_with = "humantime_serde::serialize")]
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

impl FaultConfig {
    /// Checks that every rate is a number from 0 to 1 and that a call limit
    /// lets at least one call through.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_calls_per_second == Some(0) {
            return Err(ConfigError::new(
                "faults.max_calls_per_second",
                "must be at least 1 (leave it out for no limit)",
            ));
        }
        for (field, rate) in [
            ("faults.error_rate", self.error_rate),
            ("faults.throttle_rate", self.throttle_rate),
            ("faults.partial_rate", self.partial_rate),
            ("faults.model_error_rate", self.model_error_rate),
        ] {
            // Written so that NaN fails too.
            if !(0.0..=1.0).contains(&rate) {
                return Err(ConfigError::new(
                    field,
                    format!("must be a rate from 0 to 1, got {rate}"),
                ));
            }
        }
        Ok(())
    }
}

/// Writes `None` as `"none"`, the text that reads back as `None`.
fn serialize_retry_after<S: serde::Serializer>(
    value: &Option<Duration>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match value {
        Some(wait) => humantime_serde::serialize(wait, serializer),
        None => serializer.serialize_str("none"),
    }
}

/// [`SimConfig`] as a configuration file spells it, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSimConfig {
    seed: Option<u64>,
    pending_for: Option<String>,
    allocating_for: Option<String>,
    address_delay: Option<String>,
    agent_start_delay: Option<String>,
    networking: Option<bool>,
    faults: Option<FaultConfig>,
}

fn duration_or(
    field: &'static str,
    text: Option<String>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    text.map_or(Ok(default), |text| parse_duration(field, &text))
}

impl TryFrom<RawSimConfig> for SimConfig {
    type Error = ConfigError;

    fn try_from(raw: RawSimConfig) -> Result<Self, ConfigError> {
        let d = SimConfig::default();
        let config = SimConfig {
            seed: raw.seed.unwrap_or(d.seed),
            pending_for: duration_or("pending_for", raw.pending_for, d.pending_for)?,
            allocating_for: duration_or("allocating_for", raw.allocating_for, d.allocating_for)?,
            address_delay: duration_or("address_delay", raw.address_delay, d.address_delay)?,
            agent_start_delay: duration_or(
                "agent_start_delay",
                raw.agent_start_delay,
                d.agent_start_delay,
            )?,
            networking: raw.networking.unwrap_or(d.networking),
            faults: raw.faults.unwrap_or(d.faults),
        };
        config.validate()?;
        Ok(config)
    }
}

/// [`FaultConfig`] as a configuration file spells it, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFaultConfig {
    error_rate: Option<f64>,
    throttle_rate: Option<f64>,
    /// `"none"` says a throttled call gives no retry-after.
    retry_after: Option<String>,
    partial_rate: Option<f64>,
    model_error_rate: Option<f64>,
    latency: Option<String>,
    max_calls_per_second: Option<u32>,
}

impl TryFrom<RawFaultConfig> for FaultConfig {
    type Error = ConfigError;

    fn try_from(raw: RawFaultConfig) -> Result<Self, ConfigError> {
        let d = FaultConfig::default();
        let retry_after = match raw.retry_after.as_deref().map(str::trim) {
            None => d.retry_after,
            Some("none") => None,
            Some(text) => Some(parse_duration("faults.retry_after", text)?),
        };
        let config = FaultConfig {
            error_rate: raw.error_rate.unwrap_or(d.error_rate),
            throttle_rate: raw.throttle_rate.unwrap_or(d.throttle_rate),
            retry_after,
            partial_rate: raw.partial_rate.unwrap_or(d.partial_rate),
            model_error_rate: raw.model_error_rate.unwrap_or(d.model_error_rate),
            latency: duration_or("faults.latency", raw.latency, d.latency)?,
            max_calls_per_second: raw.max_calls_per_second.or(d.max_calls_per_second),
        };
        config.validate()?;
        Ok(config)
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
    fn refuses_bad_values_naming_field_and_text() {
        for (json, field, text) in [
            (r#"{"pending_for": "10"}"#, "pending_for", r#""10""#),
            (r#"{"address_delay": "-3s"}"#, "address_delay", r#""-3s""#),
            (
                r#"{"faults": {"latency": "fast"}}"#,
                "faults.latency",
                r#""fast""#,
            ),
            (
                r#"{"faults": {"retry_after": "5"}}"#,
                "faults.retry_after",
                r#""5""#,
            ),
            (
                r#"{"faults": {"error_rate": 1.5}}"#,
                "faults.error_rate",
                "got 1.5",
            ),
            (
                r#"{"faults": {"partial_rate": -0.1}}"#,
                "faults.partial_rate",
                "got -0.1",
            ),
        ] {
            let err = serde_json::from_str::<SimConfig>(json)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(&format!("{field}: ")), "{err}");
            assert!(err.contains(text), "{err}");
        }
        let err = serde_json::from_str::<SimConfig>(r#"{"boot": "1s"}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field `boot`"), "{err}");
    }

    #[test]
    fn zero_delays_are_allowed() {
        let config: SimConfig =
            serde_json::from_str(r#"{"pending_for": "0s", "faults": {"latency": "0s"}}"#).unwrap();
        assert_eq!(config.pending_for, Duration::ZERO);
        let nan = FaultConfig {
            throttle_rate: f64::NAN,
            ..FaultConfig::default()
        };
        assert_eq!(nan.validate().unwrap_err().field, "faults.throttle_rate");
    }
}
