//! Keystone: the password sign-in of v3 (user, project, domains) and v2.0
//! (user, tenant), the token and the catalog it answers, and how long the
//! token is kept.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{Value, json};

use super::catalog::{Catalog, Endpoint, Service};
use super::credentials::{Credential, IdentityVersion, Secret};

/// A token and the catalog it came with.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token, sent as `X-Auth-Token`; as secret as the password.
    pub id: Secret,
    /// When Keystone says it expires.
    pub expires_at: Option<SystemTime>,
    /// When Keystone says it was issued.
    pub issued_at: Option<SystemTime>,
    /// The services it reaches.
    pub catalog: Catalog,
}

/// The longest a token is kept before signing in again, whatever its
/// expiry says, and the margin kept before its expiry.
const MAX_KEEP: Duration = Duration::from_secs(12 * 3600);
const MARGIN: Duration = Duration::from_secs(300);

impl Token {
    /// How long from now the token may be used: until shortly before it
    /// expires (a tenth of its life, at most five minutes), measured from
    /// when Keystone issued it so that a clock apart from Keystone's does
    /// not matter when both times are given; at most 12 hours. A token
    /// whose expiry is unknown or past is used for this call only.
    pub fn keep_for(&self, now: SystemTime) -> Duration {
        let Some(expires) = self.expires_at else {
            return Duration::ZERO;
        };
        let from = self.issued_at.unwrap_or(now);
        let Ok(life) = expires.duration_since(from) else {
            return Duration::ZERO;
        };
        let margin = (life / 10).min(MARGIN);
        life.saturating_sub(margin).min(MAX_KEEP)
    }
}

/// The URL a token is asked of.
pub fn token_url(credential: &Credential) -> String {
    match credential.version {
        IdentityVersion::V3 => format!("{}/auth/tokens", credential.auth_url),
        IdentityVersion::V2 => format!("{}/tokens", credential.auth_url),
    }
}

/// The body of the sign-in request. It holds the password: it is sent and
/// dropped, never logged.
pub fn request_body(credential: &Credential) -> Value {
    match credential.version {
        IdentityVersion::V3 => v3_body(credential),
        IdentityVersion::V2 => v2_body(credential),
    }
}

fn v2_body(credential: &Credential) -> Value {
    let mut auth = json!({
        "passwordCredentials": {
            "username": credential.username.clone().or_else(|| credential.user_id.clone()),
            "password": credential.password.expose(),
        }
    });
    if let Some(id) = &credential.project_id {
        auth["tenantId"] = json!(id);
    } else if let Some(name) = &credential.project_name {
        auth["tenantName"] = json!(name);
    }
    json!({ "auth": auth })
}

fn domain(name: &Option<String>, id: &Option<String>) -> Value {
    match (id, name) {
        (Some(id), _) => json!({ "id": id }),
        (None, Some(name)) => json!({ "name": name }),
        (None, None) => json!({ "id": "default" }),
    }
}

fn v3_body(credential: &Credential) -> Value {
    let user = match (&credential.user_id, &credential.username) {
        (Some(id), _) => json!({ "id": id, "password": credential.password.expose() }),
        (None, name) => json!({
            "name": name,
            "domain": domain(&credential.user_domain_name, &credential.user_domain_id),
            "password": credential.password.expose(),
        }),
    };
    let project = match (&credential.project_id, &credential.project_name) {
        (Some(id), _) => json!({ "id": id }),
        (None, name) => json!({
            "name": name,
            "domain": domain(&credential.project_domain_name, &credential.project_domain_id),
        }),
    };
    json!({
        "auth": {
            "identity": { "methods": ["password"], "password": { "user": user } },
            "scope": { "project": project },
        }
    })
}

/// The token of a successful sign-in: v3's from the `X-Subject-Token`
/// header and the body's `token`, v2.0's from the body's `access`.
pub fn parse_answer(
    version: IdentityVersion,
    subject_token: Option<&str>,
    body: &[u8],
) -> Result<Token, String> {
    match version {
        IdentityVersion::V3 => parse_v3(subject_token, body),
        IdentityVersion::V2 => parse_v2(body),
    }
}

#[derive(Deserialize)]
struct V3Answer {
    token: V3Token,
}

#[derive(Deserialize)]
struct V3Token {
    expires_at: Option<String>,
    issued_at: Option<String>,
    #[serde(default)]
    catalog: Vec<V3Service>,
}

#[derive(Deserialize)]
struct V3Service {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    endpoints: Vec<V3Endpoint>,
}

#[derive(Deserialize)]
struct V3Endpoint {
    interface: String,
    #[serde(default)]
    region_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    url: String,
}

fn parse_v3(subject_token: Option<&str>, body: &[u8]) -> Result<Token, String> {
    let id = subject_token
        .filter(|t| !t.trim().is_empty())
        .ok_or("the answer has no X-Subject-Token header")?;
    let answer: V3Answer = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a Keystone v3 token: {e}"))?;
    let services = answer
        .token
        .catalog
        .into_iter()
        .map(|service| Service {
            kind: service.kind,
            name: service.name,
            endpoints: service
                .endpoints
                .into_iter()
                .map(|e| Endpoint {
                    region: e.region_id.or(e.region).unwrap_or_default(),
                    interface: e.interface,
                    url: e.url,
                })
                .collect(),
        })
        .collect();
    Ok(Token {
        id: Secret::new(id),
        expires_at: answer.token.expires_at.as_deref().and_then(parse_time),
        issued_at: answer.token.issued_at.as_deref().and_then(parse_time),
        catalog: Catalog { services },
    })
}

#[derive(Deserialize)]
struct V2Answer {
    access: V2Access,
}

#[derive(Deserialize)]
struct V2Access {
    token: V2Token,
    #[serde(default, rename = "serviceCatalog")]
    catalog: Vec<V2Service>,
}

#[derive(Deserialize)]
struct V2Token {
    id: String,
    expires: Option<String>,
    #[serde(default)]
    issued_at: Option<String>,
}

#[derive(Deserialize)]
struct V2Service {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    endpoints: Vec<V2Endpoint>,
}

#[derive(Deserialize)]
struct V2Endpoint {
    #[serde(default)]
    region: String,
    #[serde(default, rename = "publicURL")]
    public: Option<String>,
    #[serde(default, rename = "internalURL")]
    internal: Option<String>,
    #[serde(default, rename = "adminURL")]
    admin: Option<String>,
}

fn parse_v2(body: &[u8]) -> Result<Token, String> {
    let answer: V2Answer = serde_json::from_slice(body)
        .map_err(|e| format!("the answer is not a Keystone v2.0 token: {e}"))?;
    let services = answer
        .access
        .catalog
        .into_iter()
        .map(|service| Service {
            kind: service.kind,
            name: service.name,
            endpoints: service
                .endpoints
                .into_iter()
                .flat_map(|e| {
                    [
                        ("public", e.public),
                        ("internal", e.internal),
                        ("admin", e.admin),
                    ]
                    .into_iter()
                    .filter_map(move |(interface, url)| {
                        Some(Endpoint {
                            region: e.region.clone(),
                            interface: interface.to_owned(),
                            url: url?,
                        })
                    })
                })
                .collect(),
        })
        .collect();
    if answer.access.token.id.trim().is_empty() {
        return Err("the answer's token is empty".to_owned());
    }
    Ok(Token {
        id: Secret::new(answer.access.token.id),
        expires_at: answer.access.token.expires.as_deref().and_then(parse_time),
        issued_at: answer
            .access
            .token
            .issued_at
            .as_deref()
            .and_then(parse_time),
        catalog: Catalog { services },
    })
}

/// An RFC 3339 time as Keystone writes them (`2026-12-07T21:49:08.000000Z`,
/// or with an offset); Keystone v2.0 sometimes leaves the zone out, which
/// is UTC.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    use time::format_description::well_known::Rfc3339;
    let text = text.trim();
    let parsed = time::OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| time::OffsetDateTime::parse(&format!("{text}Z"), &Rfc3339))
        .ok()?;
    let nanos = parsed.unix_timestamp_nanos();
    let since = Duration::from_nanos(u64::try_from(nanos).ok()?);
    SystemTime::UNIX_EPOCH.checked_add(since)
}

#[cfg(test)]
mod tests;
