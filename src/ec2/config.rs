//! How a model reaches EC2: region, endpoint, credentials and timeouts, as a
//! configuration file gives them, and their validation.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, shown};

/// How a model reaches Amazon EC2.
///
/// In TOML:
///
/// ```toml
/// region = "eu-west-1"
/// # Optional: another EC2-compatible endpoint, e.g. a test double.
/// endpoint = "http://127.0.0.1:5000"
/// # Optional: read the key from this file instead of the standard AWS chain.
/// credential_file = "/etc/muster/aws-credentials"
/// connect_timeout = "5s"
/// operation_timeout = "20s"
/// ```
///
/// Without `credential_file` the credentials come from the standard AWS
/// chain: the `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` environment, then
/// the shared profile files (`AWS_PROFILE`, `~/.aws/credentials`), then web
/// identity, container and instance-metadata credentials (profiles that use
/// SSO or `credential_process` are not supported: those parts of the SDK are
/// not compiled in). The secret is never
/// part of this configuration; see [`crate::ec2::credentials`] for the file's
/// format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ec2Config {
    /// The AWS region, e.g. `us-east-1`.
    pub region: String,
    /// An endpoint URL (`http` or `https`) to use instead of the region's
    /// own, e.g. a VPC endpoint or a test double.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A file holding the access key id and the secret access key, in the
    /// AWS shared-credentials format; without it, the standard AWS chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_file: Option<PathBuf>,
    /// How long to wait for a connection to the endpoint.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one EC2 call may take in all, connection included. Keep it
    /// below the gateway's `call_timeout`, so that a dead endpoint reports
    /// itself rather than the gateway's cut-off.
    #[serde(default = "default_operation_timeout", with = "humantime_serde")]
    pub operation_timeout: Duration,
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_operation_timeout() -> Duration {
    Duration::from_secs(20)
}

/// The longest timeout accepted: a call held longer than this would only
/// delay the poll schedule that retries it anyway.
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl Ec2Config {
    /// The configuration for `region`, with the region's own endpoint, the
    /// standard credential chain and the default timeouts.
    pub fn new(region: impl Into<String>) -> Self {
        Ec2Config {
            region: region.into(),
            endpoint: None,
            credential_file: None,
            connect_timeout: default_connect_timeout(),
            operation_timeout: default_operation_timeout(),
        }
    }

    /// Checks every setting without touching the network or the credential
    /// file; the error names the first field that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        validate_region(&self.region)?;
        if let Some(endpoint) = &self.endpoint {
            validate_endpoint(endpoint)?;
        }
        if let Some(path) = &self.credential_file
            && path.as_os_str().to_string_lossy().trim().is_empty()
        {
            return Err(ConfigError::new(
                "credential_file",
                None,
                "must name a file, not be empty",
            ));
        }
        for (field, value) in [
            ("connect_timeout", self.connect_timeout),
            ("operation_timeout", self.operation_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(field, None, "must be a positive duration"));
            }
            if value > MAX_TIMEOUT {
                return Err(ConfigError::new(
                    field,
                    None,
                    format!(
                        "must be at most {}, not {}",
                        humantime::format_duration(MAX_TIMEOUT),
                        humantime::format_duration(value)
                    ),
                ));
            }
        }
        if self.connect_timeout > self.operation_timeout {
            return Err(ConfigError::new(
                "connect_timeout",
                None,
                "must not exceed operation_timeout",
            ));
        }
        Ok(())
    }
}

/// A region name as AWS spells them: lowercase letters, digits and hyphens,
/// as it becomes part of the endpoint's host name.
fn validate_region(region: &str) -> Result<(), ConfigError> {
    let reason = if region.trim().is_empty() {
        "must name an AWS region such as \"us-east-1\", not be empty".to_owned()
    } else if region.len() > 64
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || region.starts_with('-')
        || region.ends_with('-')
    {
        format!(
            "must be an AWS region name such as \"us-east-1\" (lowercase letters, digits \
             and hyphens), not {}",
            shown(region)
        )
    } else {
        return Ok(());
    };
    Err(ConfigError::new("region", None, reason))
}

/// An absolute `http` or `https` URL with a host, an optional port and path,
/// and no user information (a secret has no place in the configuration).
fn validate_endpoint(endpoint: &str) -> Result<(), ConfigError> {
    let fail = |why: &str| {
        Err(ConfigError::new(
            "endpoint",
            None,
            format!("{} is not a valid endpoint URL: {why}", shown(endpoint)),
        ))
    };
    if endpoint.len() > 2048 {
        return fail("longer than 2048 bytes");
    }
    if endpoint
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return fail("it contains whitespace or control characters");
    }
    let Some((scheme, rest)) = endpoint.split_once("://") else {
        return fail("expected e.g. \"https://ec2.example.com\"");
    };
    if scheme != "http" && scheme != "https" {
        return fail("the scheme must be http or https");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return fail("user information does not belong in the URL");
    }
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal holds colons of its own, inside brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (authority, None),
    };
    if host.is_empty() || host == "[]" {
        return fail("it has no host");
    }
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        host.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    if !host_ok {
        return fail("the host is not a valid name or address");
    }
    if let Some(port) = port
        && !(port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok_and(|p| p > 0))
    {
        return fail("the port must be a number from 1 to 65535");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Ec2Config {
        Ec2Config::new("us-east-1")
    }

    #[test]
    fn reads_every_setting_and_defaults_the_optional_ones() {
        let config: Ec2Config = from_json(
            r#"{"region": "eu-west-1", "endpoint": "http://127.0.0.1:5000",
                "credential_file": "/etc/muster/aws", "connect_timeout": "2s",
                "operation_timeout": "1m"}"#,
        );
        assert_eq!(config.region, "eu-west-1");
        assert_eq!(config.endpoint.as_deref(), Some("http://127.0.0.1:5000"));
        assert_eq!(config.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.operation_timeout, Duration::from_secs(60));
        config.validate().unwrap();

        let defaults: Ec2Config = from_json(r#"{"region": "us-east-1"}"#);
        assert_eq!(defaults, valid());
        let unknown = serde_json::from_str::<Ec2Config>(r#"{"region": "x", "secret": "s"}"#);
        assert!(unknown.unwrap_err().to_string().contains("unknown field"));
    }

    fn from_json(json: &str) -> Ec2Config {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn each_bad_setting_is_named() {
        type Spoil = fn(&mut Ec2Config);
        let cases: &[(&str, Spoil)] = &[
            ("region", |c| c.region = String::new()),
            ("region", |c| c.region = "   ".into()),
            ("region", |c| c.region = " us-east-1".into()),
            ("region", |c| c.region = "US-EAST-1".into()),
            ("region", |c| c.region = "us-east-1\n".into()),
            ("region", |c| c.region = "-".into()),
            ("region", |c| c.region = "a".repeat(1 << 20)),
            ("endpoint", |c| c.endpoint = Some(String::new())),
            ("endpoint", |c| c.endpoint = Some("  ".into())),
            ("endpoint", |c| c.endpoint = Some("127.0.0.1:5000".into())),
            ("endpoint", |c| c.endpoint = Some("ftp://host".into())),
            ("endpoint", |c| c.endpoint = Some("http://".into())),
            ("endpoint", |c| c.endpoint = Some("http://:80".into())),
            ("endpoint", |c| c.endpoint = Some("http://host:0".into())),
            ("endpoint", |c| {
                c.endpoint = Some("http://host:65536".into())
            }),
            ("endpoint", |c| c.endpoint = Some("http://host:-1".into())),
            ("endpoint", |c| c.endpoint = Some("http://ho st".into())),
            ("endpoint", |c| {
                c.endpoint = Some("http://key:secret@host".into())
            }),
            ("endpoint", |c| c.endpoint = Some("http://[::1".into())),
            ("endpoint", |c| {
                c.endpoint = Some(format!("http://{}", "a".repeat(1 << 20)))
            }),
            ("credential_file", |c| c.credential_file = Some("".into())),
            ("credential_file", |c| c.credential_file = Some(" ".into())),
            ("connect_timeout", |c| c.connect_timeout = Duration::ZERO),
            ("operation_timeout", |c| {
                c.operation_timeout = Duration::ZERO
            }),
            ("operation_timeout", |c| c.operation_timeout = Duration::MAX),
            ("connect_timeout", |c| {
                c.connect_timeout = Duration::from_secs(30);
                c.operation_timeout = Duration::from_secs(10);
            }),
        ];
        for (field, spoil) in cases {
            let mut config = valid();
            spoil(&mut config);
            let error = config.validate().unwrap_err();
            assert_eq!(error.key, *field, "{config:?}: {error}");
            assert!(error.to_string().len() < 400, "{error}");
        }
    }

    #[test]
    fn good_endpoints_pass() {
        for endpoint in [
            "http://127.0.0.1:5000",
            "https://ec2.eu-west-1.amazonaws.com",
            "https://vpce-1a2b.ec2.us-east-1.vpce.amazonaws.com/",
            "http://[::1]:8080/path",
            "http://localhost",
        ] {
            let config = Ec2Config {
                endpoint: Some(endpoint.into()),
                ..valid()
            };
            config
                .validate()
                .unwrap_or_else(|e| panic!("{endpoint}: {e}"));
        }
        for region in ["us-east-1", "eu-west-2", "cn-north-1", "us-gov-west-1"] {
            Ec2Config::new(region).validate().unwrap();
        }
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        let error = Ec2Config::new("x".repeat(1 << 20)).validate().unwrap_err();
        let message = error.to_string();
        assert!(message.contains("(1048576 bytes)"), "{message}");
        assert!(message.len() < 300, "{message}");
    }
}
