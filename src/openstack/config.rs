//! How a model reaches an OpenStack cloud: region, identity endpoint or
//! named cloud, credential file, service selection, paging and timeouts, as
//! a configuration file gives them, and their checks.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Checker, Counts, Durations, Validate, shown};

/// How a model reaches an OpenStack cloud.
///
/// In TOML (as a table of its own, or inside a model's entry):
///
/// ```toml
/// region = "RegionOne"
/// # Either a cloud of clouds.yaml ...
/// cloud = "mycloud"
/// # ... or Keystone's URL, the rest from OS_* variables or the file below.
/// # auth_url = "https://keystone.example.com:5000/v3"
/// # Optional: a file in clouds.yaml's format holding the credential.
/// credential_file = "/etc/muster/openstack.yaml"
/// interface = "public"
/// page_size = 1000
/// connect_timeout = "5s"
/// operation_timeout = "20s"
/// ```
///
/// See [`crate::openstack::credentials`] for where each kind of credential
/// is read from. The password is never part of this configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OpenStackConfig {
    /// The region whose endpoints are used, as the service catalog names
    /// it, e.g. `RegionOne`.
    pub region: String,
    /// Keystone's URL (`http` or `https`), with or without its version
    /// (`/v3`, `/v2.0`); the rest of the credential comes from
    /// `credential_file` or the `OS_*` environment. Not with `cloud`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// The name of a cloud in clouds.yaml: read from `credential_file` when
    /// given, else from the standard places. Not with `auth_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud: Option<String>,
    /// A file in clouds.yaml's format holding the credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_file: Option<PathBuf>,
    /// The endpoint interface to use: `public`, `internal` or `admin`;
    /// without it, the credential's (clouds.yaml's `interface`,
    /// `OS_INTERFACE`), else `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The name of the compute service in the catalog, for a catalog with
    /// more than one service of type `compute`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_service_name: Option<String>,
    /// The name of the network service in the catalog, for a catalog with
    /// more than one service of type `network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_service_name: Option<String>,
    /// How many servers one page of a server list asks for (`limit`).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// How long to wait for a connection to an endpoint.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// How long one request may take in all, connection included. Keep it
    /// below the gateway's `call_timeout`.
    #[serde(default = "default_operation_timeout", with = "humantime_serde")]
    pub operation_timeout: Duration,
}

fn default_page_size() -> u32 {
    1000
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_operation_timeout() -> Duration {
    Duration::from_secs(20)
}

/// The page sizes taken: Nova caps a page at its `max_limit` (1,000 by
/// default) whatever is asked, so more gains nothing.
pub const PAGE_SIZES: Counts = Counts::new(1, 10_000);

/// The timeouts taken.
pub const TIMEOUTS: Durations = Durations::positive(Duration::from_secs(3600));

/// The interfaces a catalog endpoint can have.
pub const INTERFACES: [&str; 3] = ["public", "internal", "admin"];

impl OpenStackConfig {
    /// The configuration for `region` with Keystone at `auth_url`, the
    /// credential from the `OS_*` environment, and every default.
    pub fn with_auth_url(region: impl Into<String>, auth_url: impl Into<String>) -> Self {
        OpenStackConfig {
            auth_url: Some(auth_url.into()),
            ..OpenStackConfig::blank(region.into())
        }
    }

    /// The configuration for `region` of the cloud `cloud` of clouds.yaml,
    /// with every default.
    pub fn with_cloud(region: impl Into<String>, cloud: impl Into<String>) -> Self {
        OpenStackConfig {
            cloud: Some(cloud.into()),
            ..OpenStackConfig::blank(region.into())
        }
    }

    fn blank(region: String) -> Self {
        OpenStackConfig {
            region,
            auth_url: None,
            cloud: None,
            credential_file: None,
            interface: None,
            compute_service_name: None,
            network_service_name: None,
            page_size: default_page_size(),
            connect_timeout: default_connect_timeout(),
            operation_timeout: default_operation_timeout(),
        }
    }
}

impl Validate for OpenStackConfig {
    /// Every setting, each problem by its key; nothing is read from the
    /// network or the credential file.
    fn check(&self, at: &mut Checker) {
        check_name(at, "region", &self.region, true);
        match (&self.auth_url, &self.cloud) {
            (None, None) => at.problem(
                "auth_url",
                None,
                "set auth_url (Keystone's URL) or cloud (a cloud of clouds.yaml)",
            ),
            (Some(_), Some(_)) => at.problem(
                "cloud",
                self.cloud.as_deref().map(shown),
                "give auth_url or cloud, not both",
            ),
            _ => {}
        }
        if let Some(url) = &self.auth_url
            && let Err(why) = check_url(url)
        {
            // A URL with user information may hold a password: not shown.
            let value = (!url.contains('@')).then(|| shown(url));
            at.problem("auth_url", value, why);
        }
        if let Some(cloud) = &self.cloud {
            check_name(at, "cloud", cloud, false);
        }
        if let Some(path) = &self.credential_file
            && path.as_os_str().to_string_lossy().trim().is_empty()
        {
            at.problem(
                "credential_file",
                Some(shown(&path.to_string_lossy())),
                "must name a file, not be empty",
            );
        }
        if let Some(interface) = &self.interface
            && !INTERFACES.contains(&interface.as_str())
        {
            at.problem(
                "interface",
                Some(shown(interface)),
                "must be \"public\", \"internal\" or \"admin\"",
            );
        }
        for (field, name) in [
            ("compute_service_name", &self.compute_service_name),
            ("network_service_name", &self.network_service_name),
        ] {
            if let Some(name) = name {
                check_name(at, field, name, false);
            }
        }
        at.count("page_size", self.page_size, PAGE_SIZES);
        at.duration("connect_timeout", self.connect_timeout, TIMEOUTS);
        at.duration("operation_timeout", self.operation_timeout, TIMEOUTS);
        at.not_longer(
            "connect_timeout",
            self.connect_timeout,
            "operation_timeout",
            self.operation_timeout,
        );
    }
}

/// A name as OpenStack takes them: free text, but not blank, at most 255
/// characters, no control character and no space at either end.
fn check_name(at: &mut Checker, field: &str, name: &str, region: bool) {
    let what = if region {
        "a region name such as \"RegionOne\""
    } else {
        "a name"
    };
    let reason = if name.trim().is_empty() {
        format!("must be {what}, not blank")
    } else if name.chars().count() > 255 {
        "must be at most 255 characters".to_owned()
    } else if name.chars().any(char::is_control) {
        "must hold no control character".to_owned()
    } else if name.trim() != name {
        "must not start or end with a space".to_owned()
    } else {
        return;
    };
    at.problem(field, Some(shown(name)), reason);
}

/// An absolute `http` or `https` URL with a host and no user information.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if url.len() > 2048 {
        return Err("must be a URL of at most 2048 bytes".to_owned());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("must be a URL, with no whitespace or control characters".to_owned());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err("must be a URL such as \"https://keystone.example.com:5000/v3\"".to_owned());
    };
    if scheme != "http" && scheme != "https" {
        return Err("the scheme must be http or https".to_owned());
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err("user information does not belong in the URL".to_owned());
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => {
            if !(port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u16>().is_ok_and(|p| p > 0))
            {
                return Err("the port must be a number from 1 to 65535".to_owned());
            }
            host
        }
        _ => authority,
    };
    if host.is_empty() || host == "[]" {
        return Err("the URL has no host".to_owned());
    }
    if url.contains(['?', '#']) {
        return Err("the URL takes no query nor fragment".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> OpenStackConfig {
        OpenStackConfig::with_cloud("RegionOne", "mycloud")
    }

    #[test]
    fn reads_every_setting_and_defaults_the_optional_ones() {
        let config: OpenStackConfig = serde_json::from_str(
            r#"{"region": "RegionOne", "auth_url": "https://keystone:5000/v3",
                "credential_file": "/etc/muster/os.yaml", "interface": "internal",
                "compute_service_name": "nova", "network_service_name": "neutron",
                "page_size": 200, "connect_timeout": "2s", "operation_timeout": "1m"}"#,
        )
        .unwrap();
        assert_eq!(config.auth_url.as_deref(), Some("https://keystone:5000/v3"));
        assert_eq!(config.interface.as_deref(), Some("internal"));
        assert_eq!(config.page_size, 200);
        assert_eq!(config.operation_timeout, Duration::from_secs(60));
        config.validate().unwrap();

        let defaults: OpenStackConfig =
            serde_json::from_str(r#"{"region": "RegionOne", "cloud": "mycloud"}"#).unwrap();
        assert_eq!(defaults, valid());
        assert_eq!(defaults.page_size, 1000);
        for unknown in [
            r#"{"region": "r", "cloud": "c", "password": "s"}"#,
            r#"{"region": "r", "cloud": "c", "region_name": "s"}"#,
        ] {
            let error = serde_json::from_str::<OpenStackConfig>(unknown).unwrap_err();
            assert!(error.to_string().contains("unknown field"), "{error}");
        }
    }

    #[test]
    fn each_bad_setting_is_named() {
        type Spoil = fn(&mut OpenStackConfig);
        let cases: &[(&str, Spoil)] = &[
            ("region", |c| c.region = String::new()),
            ("region", |c| c.region = "  ".into()),
            ("region", |c| c.region = " RegionOne".into()),
            ("region", |c| c.region = "Region\nOne".into()),
            ("region", |c| c.region = "r".repeat(1 << 20)),
            ("auth_url", |c| c.cloud = None),
            ("cloud", |c| c.auth_url = Some("https://keystone/v3".into())),
            ("cloud", |c| c.cloud = Some(String::new())),
            ("cloud", |c| c.cloud = Some("\u{0}".into())),
            ("credential_file", |c| c.credential_file = Some("".into())),
            ("credential_file", |c| c.credential_file = Some("  ".into())),
            ("interface", |c| c.interface = Some("publicURL".into())),
            ("interface", |c| c.interface = Some(String::new())),
            ("compute_service_name", |c| {
                c.compute_service_name = Some(" ".into())
            }),
            ("network_service_name", |c| {
                c.network_service_name = Some("x".repeat(256))
            }),
            ("page_size", |c| c.page_size = 0),
            ("page_size", |c| c.page_size = u32::MAX),
            ("connect_timeout", |c| c.connect_timeout = Duration::ZERO),
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
            assert_eq!(error.keys(), [*field], "{config:?}: {error}");
            assert!(error.to_string().len() < 400, "{error}");
        }
    }

    #[test]
    fn auth_urls_are_checked() {
        for bad in [
            "",
            " ",
            "keystone:5000",
            "ftp://keystone",
            "http://",
            "http://:5000",
            "http://host:0",
            "http://host:65536",
            "http://host:-1",
            "http://user:secret@host/v3",
            "http://host/v3?x=1",
            "http://ho st/v3",
        ] {
            let config = OpenStackConfig::with_auth_url("RegionOne", bad);
            let error = config.validate().unwrap_err();
            assert_eq!(error.keys(), ["auth_url"], "{bad}: {error}");
            assert!(!error.to_string().contains("secret@"), "{error}");
        }
        for good in [
            "https://keystone.example.com:5000/v3",
            "http://127.0.0.1:8900/identity/v2.0",
            "http://[::1]:5000",
            "https://cloud.example.com/identity",
        ] {
            OpenStackConfig::with_auth_url("RegionOne", good)
                .validate()
                .unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }
}
