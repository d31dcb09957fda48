//! Where an OpenStack credential comes from, the way OpenStack's users
//! already keep it:
//!
//! - `cloud = NAME`: the cloud `NAME` of clouds.yaml, read from
//!   `credential_file` when the configuration names one, else from the
//!   standard places ([`clouds::standard_places`]), with secure.yaml's
//!   entry for it merged over it;
//! - `auth_url = URL`: Keystone at `URL`, the user, password, project and
//!   domains from `credential_file` (a clouds.yaml holding one cloud), or
//!   else from the `OS_*` environment variables that an openrc file sets
//!   (`OS_USERNAME`, `OS_PASSWORD`, `OS_PROJECT_NAME`, ...).
//!
//! The password lives in a [`Secret`], which no `Debug` form shows and no
//! error names; errors name the file, the cloud, the key or the variable.

use std::fmt;

use super::clouds::{self, CloudEntry};
use super::config::OpenStackConfig;
use crate::config::ConfigError;

/// A password: shown by no `Debug` form, printed nowhere.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The text, for the one request that sends it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("** redacted **")
    }
}

/// Which Keystone API a credential speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentityVersion {
    /// Keystone v2.0: a user and a tenant.
    V2,
    /// Keystone v3: a user and a project, each in a domain.
    V3,
}

impl IdentityVersion {
    /// The version as OpenStack writes it: `2.0` or `3`.
    pub fn number(self) -> &'static str {
        match self {
            IdentityVersion::V2 => "2.0",
            IdentityVersion::V3 => "3",
        }
    }
}

/// A password credential for Keystone, scoped to a project.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Credential {
    /// Keystone's URL, its version path included (`…/v3`, `…/v2.0`).
    pub auth_url: String,
    /// The API that `auth_url` speaks.
    pub version: IdentityVersion,
    /// The user's name (with its domain under v3), or none with `user_id`.
    pub username: Option<String>,
    /// The user's id.
    pub user_id: Option<String>,
    /// The password.
    pub password: Secret,
    /// The project's (tenant's) name.
    pub project_name: Option<String>,
    /// The project's (tenant's) id.
    pub project_id: Option<String>,
    /// The user's domain, by name (v3).
    pub user_domain_name: Option<String>,
    /// The user's domain, by id (v3).
    pub user_domain_id: Option<String>,
    /// The project's domain, by name (v3).
    pub project_domain_name: Option<String>,
    /// The project's domain, by id (v3).
    pub project_domain_id: Option<String>,
    /// The endpoint interface the credential asks for, if it says.
    pub interface: Option<String>,
    /// Where it was read, for messages: `cloud "prod" of /etc/openstack/clouds.yaml`.
    pub source: String,
}

/// The credential `config` names; `env` reads an environment variable
/// (`|name| std::env::var(name).ok()` in production).
pub fn resolve(
    config: &OpenStackConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credential, ConfigError> {
    if let Some(name) = &config.cloud {
        let (path, key) = match &config.credential_file {
            Some(path) => (path.clone(), "credential_file"),
            None => {
                let places = clouds::standard_places("clouds.yaml", "OS_CLIENT_CONFIG_FILE", env);
                let path = clouds::first_existing(&places).ok_or_else(|| {
                    let list: Vec<String> =
                        places.iter().map(|p| p.display().to_string()).collect();
                    ConfigError::new(
                        "cloud",
                        Some(format!("{name:?}")),
                        format!("no clouds.yaml found (looked at {})", list.join(", ")),
                    )
                })?;
                (path, "cloud")
            }
        };
        let fail = |why: String| ConfigError::new(key, None, format!("{}: {why}", path.display()));
        let mut all = clouds::read_clouds(&path).map_err(fail)?;
        let Some(mut entry) = all.remove(name) else {
            let names: Vec<&String> = all.keys().collect();
            return Err(ConfigError::new(
                "cloud",
                Some(format!("{name:?}")),
                format!(
                    "{} holds no such cloud (it holds {names:?})",
                    path.display()
                ),
            ));
        };
        if config.credential_file.is_none() {
            merge_secure(&mut entry, name, env)?;
        }
        let source = format!("cloud {name:?} of {}", path.display());
        return from_entry(&entry, config, &source).map_err(|why| ConfigError::new(key, None, why));
    }
    if let Some(path) = &config.credential_file {
        let fail = |why: String| {
            ConfigError::new(
                "credential_file",
                None,
                format!("{}: {why}", path.display()),
            )
        };
        let all = clouds::read_clouds(path).map_err(fail)?;
        let mut entries = all.into_iter();
        let (name, entry) = match (entries.next(), entries.next()) {
            (Some(only), None) => only,
            (None, _) => return Err(fail("holds no cloud".to_owned())),
            (Some(_), Some(_)) => {
                return Err(fail(
                    "holds several clouds; name one with `cloud` instead of `auth_url`".to_owned(),
                ));
            }
        };
        let source = format!("cloud {name:?} of {}", path.display());
        return from_entry(&entry, config, &source)
            .map_err(|why| ConfigError::new("credential_file", None, why));
    }
    from_environment(config, env).map_err(|why| ConfigError::new("auth_url", None, why))
}

/// secure.yaml's entry for the cloud, merged over it, when there is one.
fn merge_secure(
    entry: &mut CloudEntry,
    name: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let places = clouds::standard_places("secure.yaml", "OS_CLIENT_SECURE_FILE", env);
    let Some(path) = clouds::first_existing(&places) else {
        return Ok(());
    };
    let mut all = clouds::read_clouds(&path)
        .map_err(|why| ConfigError::new("cloud", None, format!("{}: {why}", path.display())))?;
    if let Some(secure) = all.remove(name) {
        clouds::merge(entry, secure);
    }
    Ok(())
}

/// The credential of a clouds.yaml entry; the config's `auth_url` wins
/// over the entry's.
fn from_entry(
    entry: &CloudEntry,
    config: &OpenStackConfig,
    source: &str,
) -> Result<Credential, String> {
    if let Some(kind) = entry.settings.get("auth_type")
        && !["password", "v2password", "v3password"].contains(&kind.as_str())
    {
        return Err(format!(
            "{source}: auth_type {kind:?} is not supported; muster signs in with a password \
             (auth_type password, v2password or v3password)"
        ));
    }
    let auth = |key: &str| {
        entry
            .auth
            .get(key)
            .cloned()
            .filter(|v| !v.trim().is_empty())
    };
    let Some(auth_url) = config.auth_url.clone().or_else(|| auth("auth_url")) else {
        return Err(format!("{source}: auth.auth_url is missing"));
    };
    let domain_name = auth("domain_name");
    let domain_id = auth("domain_id");
    let raw = Raw {
        auth_url,
        version: entry.settings.get("identity_api_version").cloned(),
        username: auth("username"),
        user_id: auth("user_id"),
        password: entry.auth.get("password").cloned(),
        project_name: auth("project_name").or_else(|| auth("tenant_name")),
        project_id: auth("project_id").or_else(|| auth("tenant_id")),
        user_domain_name: auth("user_domain_name").or_else(|| domain_name.clone()),
        user_domain_id: auth("user_domain_id").or_else(|| domain_id.clone()),
        project_domain_name: auth("project_domain_name").or(domain_name),
        project_domain_id: auth("project_domain_id").or(domain_id),
        interface: entry.settings.get("interface").cloned(),
    };
    raw.finish(source, Names::YAML)
}

/// The credential of the `OS_*` environment; the config's `auth_url` wins.
fn from_environment(
    config: &OpenStackConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credential, String> {
    let var = |name: &str| env(name).filter(|v| !v.trim().is_empty());
    let auth_url = config
        .auth_url
        .clone()
        .or_else(|| var("OS_AUTH_URL"))
        .ok_or("set auth_url or cloud")?;
    let raw = Raw {
        auth_url,
        version: var("OS_IDENTITY_API_VERSION"),
        username: var("OS_USERNAME"),
        user_id: var("OS_USER_ID"),
        password: env("OS_PASSWORD"),
        project_name: var("OS_PROJECT_NAME").or_else(|| var("OS_TENANT_NAME")),
        project_id: var("OS_PROJECT_ID").or_else(|| var("OS_TENANT_ID")),
        user_domain_name: var("OS_USER_DOMAIN_NAME").or_else(|| var("OS_DOMAIN_NAME")),
        user_domain_id: var("OS_USER_DOMAIN_ID").or_else(|| var("OS_DOMAIN_ID")),
        project_domain_name: var("OS_PROJECT_DOMAIN_NAME").or_else(|| var("OS_DOMAIN_NAME")),
        project_domain_id: var("OS_PROJECT_DOMAIN_ID").or_else(|| var("OS_DOMAIN_ID")),
        interface: var("OS_INTERFACE"),
    };
    raw.finish("the OS_* environment", Names::ENVIRONMENT)
}

/// The names a source gives its keys, for its messages.
struct Names {
    password: &'static str,
    user: &'static str,
    project: &'static str,
    version: &'static str,
}

impl Names {
    const YAML: Names = Names {
        password: "auth.password",
        user: "auth.username or auth.user_id",
        project: "auth.project_name or auth.project_id",
        version: "identity_api_version",
    };
    const ENVIRONMENT: Names = Names {
        password: "OS_PASSWORD",
        user: "OS_USERNAME or OS_USER_ID",
        project: "OS_PROJECT_NAME or OS_PROJECT_ID",
        version: "OS_IDENTITY_API_VERSION",
    };
}

/// A credential as read, before it is checked.
struct Raw {
    auth_url: String,
    version: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
    password: Option<String>,
    project_name: Option<String>,
    project_id: Option<String>,
    user_domain_name: Option<String>,
    user_domain_id: Option<String>,
    project_domain_name: Option<String>,
    project_domain_id: Option<String>,
    interface: Option<String>,
}

impl Raw {
    fn finish(self, source: &str, names: Names) -> Result<Credential, String> {
        super::config::check_url(&self.auth_url)
            .map_err(|why| format!("{source}: auth_url {why}"))?;
        let password = match self.password {
            Some(password) if !password.is_empty() => Secret::new(password),
            _ => return Err(format!("{source}: {} is missing", names.password)),
        };
        if self.username.is_none() && self.user_id.is_none() {
            return Err(format!("{source}: {} is missing", names.user));
        }
        if self.project_name.is_none() && self.project_id.is_none() {
            return Err(format!(
                "{source}: {} is missing (a token without a project has no service catalog)",
                names.project
            ));
        }
        let (auth_url, version) = versioned_url(&self.auth_url, self.version.as_deref())
            .map_err(|why| format!("{source}: {}: {why}", names.version))?;
        let default_domain = |name: &Option<String>, id: &Option<String>| {
            (version == IdentityVersion::V3 && name.is_none() && id.is_none())
                .then(|| "default".to_owned())
        };
        let user_domain_id = self
            .user_domain_id
            .clone()
            .or_else(|| default_domain(&self.user_domain_name, &self.user_domain_id));
        let project_domain_id = self
            .project_domain_id
            .clone()
            .or_else(|| default_domain(&self.project_domain_name, &self.project_domain_id));
        Ok(Credential {
            auth_url,
            version,
            username: self.username,
            user_id: self.user_id,
            password,
            project_name: self.project_name,
            project_id: self.project_id,
            user_domain_name: self.user_domain_name,
            user_domain_id,
            project_domain_name: self.project_domain_name,
            project_domain_id,
            interface: self.interface,
            source: source.to_owned(),
        })
    }
}

/// Keystone's URL with its version path, and the version: the path's
/// (`/v3`, `/v2.0`) when it has one, else the one asked for (3 by default)
/// appended. A path and an asked version that disagree are refused.
pub fn versioned_url(url: &str, asked: Option<&str>) -> Result<(String, IdentityVersion), String> {
    let asked = match asked.map(str::trim) {
        None | Some("") => None,
        Some("3" | "3.0" | "v3") => Some(IdentityVersion::V3),
        Some("2" | "2.0" | "v2.0") => Some(IdentityVersion::V2),
        Some(other) => {
            return Err(format!(
                "{:?} is not an identity API version muster speaks (3 or 2.0)",
                other.chars().take(16).collect::<String>()
            ));
        }
    };
    let base = url.trim_end_matches('/');
    let in_path = if base.ends_with("/v3") {
        Some(IdentityVersion::V3)
    } else if base.ends_with("/v2.0") {
        Some(IdentityVersion::V2)
    } else {
        None
    };
    match (in_path, asked) {
        (Some(path), Some(asked)) if path != asked => Err(format!(
            "asks for version {}, but auth_url's path says {}",
            asked.number(),
            path.number()
        )),
        (Some(path), _) => Ok((base.to_owned(), path)),
        (None, asked) => match asked.unwrap_or(IdentityVersion::V3) {
            IdentityVersion::V3 => Ok((format!("{base}/v3"), IdentityVersion::V3)),
            IdentityVersion::V2 => Ok((format!("{base}/v2.0"), IdentityVersion::V2)),
        },
    }
}

#[cfg(test)]
mod tests;
