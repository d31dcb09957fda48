//! The session with one OpenStack cloud: the HTTP client, the token kept
//! until shortly before it expires, signing in again once on a 401, and
//! every failure made a [`PollError`] naming the region and the endpoint.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::config::OpenStackConfig;
use super::credentials::{Credential, Secret};
use super::errors::{context, message_of, refusal};
use super::identity::{self, Token};
use crate::config::ConfigError;
use crate::error::PollError;

/// The largest answer read: a page of 1,000 servers is a few megabytes.
const MAX_ANSWER_BYTES: usize = 64 << 20;

/// The endpoints a token reaches, as this session uses them.
#[derive(Debug, Clone)]
pub(super) struct Endpoints {
    pub compute: String,
    pub network: Option<String>,
}

struct Kept {
    token: Secret,
    endpoints: Endpoints,
    until: Instant,
}

/// What one request answered.
pub(super) struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

pub(super) struct Session {
    client: reqwest::Client,
    pub credential: Credential,
    pub region: String,
    interface: String,
    compute_name: Option<String>,
    network_name: Option<String>,
    operation_timeout: Duration,
    connect_timeout: Duration,
    kept: Mutex<Option<Kept>>,
}

impl Session {
    pub(super) fn new(
        config: &OpenStackConfig,
        credential: Credential,
    ) -> Result<Session, ConfigError> {
        let tls = tls_config()
            .map_err(|e| ConfigError::new("auth_url", None, format!("cannot set up TLS: {e}")))?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .connect_timeout(config.connect_timeout)
            .timeout(config.operation_timeout)
            .no_proxy()
            .build()
            .map_err(|e| {
                ConfigError::new("auth_url", None, format!("cannot make an HTTP client: {e}"))
            })?;
        let interface = config
            .interface
            .clone()
            .or_else(|| credential.interface.clone())
            .unwrap_or_else(|| "public".to_owned());
        Ok(Session {
            client,
            credential,
            region: config.region.clone(),
            interface,
            compute_name: config.compute_service_name.clone(),
            network_name: config.network_service_name.clone(),
            operation_timeout: config.operation_timeout,
            connect_timeout: config.connect_timeout,
            kept: Mutex::new(None),
        })
    }

    /// The endpoints of the token in force, signing in first when there is
    /// none or it is about to expire.
    pub(super) async fn endpoints(&self, doing: &str) -> Result<Endpoints, PollError> {
        let mut kept = self.kept.lock().await;
        Ok(self.keep_token(&mut kept, doing).await?.endpoints.clone())
    }

    /// The token in force, got anew when there is none or it is about to
    /// expire.
    async fn keep_token<'a>(
        &self,
        kept: &'a mut Option<Kept>,
        doing: &str,
    ) -> Result<&'a Kept, PollError> {
        if let Some(token) = kept.take_if(|k| Instant::now() < k.until) {
            return Ok(kept.insert(token));
        }
        let token = self.sign_in(doing).await?;
        let endpoints = self.endpoints_of(&token, doing)?;
        let until = Instant::now() + token.keep_for(SystemTime::now());
        Ok(kept.insert(Kept {
            token: token.id,
            endpoints,
            until,
        }))
    }

    fn endpoints_of(&self, token: &Token, doing: &str) -> Result<Endpoints, PollError> {
        let fail = |why: String| PollError::other(self.keystone_context(doing), why);
        let compute = token
            .catalog
            .endpoint(
                "compute",
                self.compute_name.as_deref(),
                &self.region,
                &self.interface,
            )
            .map_err(fail)?
            .ok_or_else(|| {
                fail(format!(
                    "the service catalog has no compute service (it has {:?})",
                    token.catalog.kinds()
                ))
            })?;
        let network = token
            .catalog
            .endpoint(
                "network",
                self.network_name.as_deref(),
                &self.region,
                &self.interface,
            )
            .map_err(fail)?;
        Ok(Endpoints { compute, network })
    }

    fn keystone_context(&self, doing: &str) -> String {
        format!(
            "{doing}: signing in to Keystone at {} for OpenStack region {}",
            self.credential.auth_url, self.region
        )
    }

    async fn sign_in(&self, doing: &str) -> Result<Token, PollError> {
        let url = identity::token_url(&self.credential);
        let body = identity::request_body(&self.credential);
        let sent = self
            .client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(body.to_string())
            .send()
            .await;
        drop(body);
        let context = self.keystone_context(doing);
        let response = sent.map_err(|e| self.transport_error(&context, &e))?;
        let status = response.status().as_u16();
        let retry_after = header(&response, "retry-after");
        let subject = header(&response, "x-subject-token");
        let bytes = read_body(response)
            .await
            .map_err(|e| self.transport_error(&context, &e))?;
        if status == 401 || status == 403 {
            return Err(PollError::Unauthorised(format!(
                "Keystone at {} refused the credential of {}: {}",
                self.credential.auth_url,
                self.credential.source,
                message_of(&bytes)
            )));
        }
        if let Some(error) = refusal(status, retry_after.as_deref(), &bytes, SystemTime::now()) {
            return Err(error);
        }
        if !(200..300).contains(&status) {
            return Err(PollError::other(
                context,
                format!("HTTP {status}: {}", message_of(&bytes)),
            ));
        }
        identity::parse_answer(self.credential.version, subject.as_deref(), &bytes)
            .map_err(|why| PollError::other(context, why))
    }

    /// GETs the URL `url(endpoints)` with the token, signing in again once
    /// if the cloud answers 401; the answer is any status the cloud gave
    /// but throttling, refusal and 5xx, which are errors.
    pub(super) async fn get(
        &self,
        doing: &str,
        url: impl Fn(&Endpoints) -> String,
    ) -> Result<Answer, PollError> {
        let mut signed_in_again = false;
        loop {
            let (token, endpoints) = {
                let mut kept = self.kept.lock().await;
                let kept = self.keep_token(&mut kept, doing).await?;
                (kept.token.clone(), kept.endpoints.clone())
            };
            let url = url(&endpoints);
            let context = context(doing, &self.region, &url);
            let response = self
                .client
                .get(&url)
                .header("X-Auth-Token", token.expose())
                .header("Accept", "application/json")
                .send()
                .await
                .map_err(|e| self.transport_error(&context, &e))?;
            let status = response.status().as_u16();
            let retry_after = header(&response, "retry-after");
            let body = read_body(response)
                .await
                .map_err(|e| self.transport_error(&context, &e))?;
            if status == 401 {
                if signed_in_again {
                    return Err(PollError::Unauthorised(format!(
                        "{url} refused a token just given by Keystone at {}: {}",
                        self.credential.auth_url,
                        message_of(&body)
                    )));
                }
                // The token was revoked or expired early: sign in once more.
                signed_in_again = true;
                self.forget(&token).await;
                continue;
            }
            if let Some(error) = refusal(status, retry_after.as_deref(), &body, SystemTime::now()) {
                return Err(error);
            }
            if status >= 500 {
                return Err(PollError::other(
                    context,
                    format!("HTTP {status}: {}", message_of(&body)),
                ));
            }
            return Ok(Answer { status, body });
        }
    }

    /// Drops the kept token if it is still `token`, so that the next
    /// request signs in.
    async fn forget(&self, token: &Secret) {
        let mut kept = self.kept.lock().await;
        if kept.as_ref().is_some_and(|k| &k.token == token) {
            *kept = None;
        }
    }

    fn transport_error(&self, context: &str, error: &reqwest::Error) -> PollError {
        let why = if error.is_timeout() {
            if error.is_connect() {
                format!(
                    "no connection within the connect timeout of {}",
                    humantime::format_duration(self.connect_timeout)
                )
            } else {
                format!(
                    "no answer within the operation timeout of {}",
                    humantime::format_duration(self.operation_timeout)
                )
            }
        } else if error.is_connect() {
            format!("cannot connect: {}", chain(error))
        } else {
            chain(error)
        };
        PollError::other(context.to_owned(), why)
    }
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The body, at most [`MAX_ANSWER_BYTES`].
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_ANSWER_BYTES {
            body.truncate(MAX_ANSWER_BYTES);
            break;
        }
    }
    Ok(body)
}

/// An error and its causes, on one line.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let shown = cause.to_string();
        if !text.contains(&shown) {
            text.push_str(": ");
            text.push_str(&shown);
        }
        source = cause.source();
    }
    text
}

/// rustls with ring (no OpenSSL, no aws-lc) and the platform's roots, made
/// for this client alone: nothing process-wide is installed.
fn tls_config() -> Result<rustls::ClientConfig, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
