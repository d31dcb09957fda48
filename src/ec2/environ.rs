//! The EC2 [`Environ`]: `DescribeInstances` and `DescribeNetworkInterfaces`
//! for a batch of ids, on the official AWS SDK.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aws_sdk_ec2::config::endpoint::{DefaultResolver, Params, ResolveEndpoint};
use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::config::retry::RetryConfig;
use aws_sdk_ec2::config::timeout::TimeoutConfig;
use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_ec2::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ec2::types::{self as sdk, Filter};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use futures::future::{BoxFuture, FutureExt};

use super::config::Ec2Config;
use super::convert::{self, Ec2Instance, Ec2Interface, Ec2PrivateIp};
use super::credentials::read_credential_file;
use super::errors::Target;
use crate::config::ConfigError;
use crate::error::PollError;
use crate::provider::{Environ, Instance, InstanceId, MAX_IDS_PER_CALL, NetworkInterface};

/// The most pages one call follows: an endpoint that keeps handing out
/// page tokens for a batch of at most [`MAX_IDS_PER_CALL`] ids is broken.
const MAX_PAGES: usize = 100;

/// Where the credentials come from, as [`Ec2Environ`]'s `Debug` shows it.
#[derive(Clone)]
enum CredentialSource {
    File(std::path::PathBuf),
    Chain,
}

impl fmt::Debug for CredentialSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialSource::File(path) => write!(f, "credential_file {}", path.display()),
            CredentialSource::Chain => f.write_str("the standard AWS chain"),
        }
    }
}

/// Amazon EC2 as muster's cloud provider: instances and their network
/// interfaces, many ids per call.
///
/// - Instances come from one `DescribeInstances` per batch, filtered by
///   `instance-id` so that an unknown id leaves a gap (a partial answer)
///   instead of failing the whole batch; a terminated instance counts as
///   unknown. When none is known the call fails with
///   [`PollError::NoInstances`].
/// - Interfaces come from one `DescribeNetworkInterfaces` filtered by
///   `attachment.instance-id`, ordered by device index.
/// - `RequestLimitExceeded` and HTTP 503 fail with [`PollError::Throttled`],
///   and a refused credential with [`PollError::Unauthorised`]; the SDK's
///   own retries are off, as the provider gateway owns the backoff and the
///   poll schedule retries everything else.
///
/// Its `Debug` form names the region, the endpoint and where the
/// credentials come from, never the key.
#[derive(Clone)]
pub struct Ec2Environ {
    client: aws_sdk_ec2::Client,
    target: Arc<Target>,
    credentials: CredentialSource,
}

impl fmt::Debug for Ec2Environ {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ec2Environ")
            .field("region", &self.target.region)
            .field("endpoint", &self.target.endpoint)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl Ec2Environ {
    /// The provider `config` describes. It validates the configuration and
    /// reads the credential file, if one is named, but makes no call to
    /// EC2: a refused credential shows on the first poll. Without a
    /// credential file the standard AWS chain is read when first needed.
    pub async fn new(config: &Ec2Config) -> Result<Ec2Environ, ConfigError> {
        config.validate()?;
        let key = config
            .credential_file
            .as_deref()
            .map(read_credential_file)
            .transpose()?;
        // The endpoint is settled here so that errors can name it.
        let endpoint = match &config.endpoint {
            Some(endpoint) => endpoint.clone(),
            None => region_endpoint(&config.region).await?,
        };
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.connect_timeout)
            .operation_timeout(config.operation_timeout)
            .build();
        let mut loader = aws_config::defaults(BehaviorVersion::v2026_01_12())
            .region(Region::new(config.region.clone()))
            .endpoint_url(endpoint.clone())
            .http_client(http)
            .timeout_config(timeouts)
            .retry_config(RetryConfig::disabled());
        if let Some(key) = key {
            loader = loader.credentials_provider(Credentials::new(
                key.access_key_id,
                key.secret_access_key,
                key.session_token,
                None,
                "muster-credential-file",
            ));
        }
        let client = aws_sdk_ec2::Client::new(&loader.load().await);
        Ok(Ec2Environ {
            client,
            target: Arc::new(Target {
                region: config.region.clone(),
                endpoint,
                connect_timeout: config.connect_timeout,
                operation_timeout: config.operation_timeout,
            }),
            credentials: match &config.credential_file {
                Some(path) => CredentialSource::File(path.clone()),
                None => CredentialSource::Chain,
            },
        })
    }

    /// The region the calls go to.
    pub fn region(&self) -> &str {
        &self.target.region
    }

    /// The endpoint the calls go to: the configured one, or the region's.
    pub fn endpoint(&self) -> &str {
        &self.target.endpoint
    }
}

/// The region's standard EC2 endpoint, as the SDK resolves it.
async fn region_endpoint(region: &str) -> Result<String, ConfigError> {
    let invalid =
        |why: String| ConfigError::new("region", None, format!("no EC2 endpoint for it: {why}"));
    let params = Params::builder()
        .region(region)
        .build()
        .map_err(|e| invalid(e.to_string()))?;
    let endpoint = DefaultResolver::new()
        .resolve_endpoint(&params)
        .await
        .map_err(|e| invalid(e.to_string()))?;
    Ok(endpoint.url().to_owned())
}

/// The ids once each, in first-seen order, as the filters take them.
fn unique_ids(ids: &[InstanceId]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter()
        .filter(|id| seen.insert(id.as_str()))
        .map(|id| id.as_str().to_owned())
        .collect()
}

fn filter(name: &str, values: &[String]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.to_vec()))
        .build()
}

impl Ec2Environ {
    async fn describe_instances(
        client: aws_sdk_ec2::Client,
        target: Arc<Target>,
        ids: Vec<InstanceId>,
    ) -> Result<Vec<Option<Instance>>, PollError> {
        const DOING: &str = "fetching instances";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut found: HashMap<String, Instance> = HashMap::with_capacity(ids.len());
        for chunk in unique_ids(&ids).chunks(MAX_IDS_PER_CALL) {
            let pages = |token| {
                client
                    .describe_instances()
                    .filters(filter("instance-id", chunk))
                    .set_next_token(token)
                    .send()
            };
            each_page(
                &target,
                DOING,
                pages,
                |page| page.next_token(),
                |page| {
                    for instance in page.reservations().iter().flat_map(|r| r.instances()) {
                        if let Some(instance) = convert::instance(&plain_instance(instance)) {
                            found.insert(instance.id.as_str().to_owned(), instance);
                        }
                    }
                },
            )
            .await?;
        }
        let answer: Vec<Option<Instance>> = ids
            .iter()
            .map(|id| found.get(id.as_str()).cloned())
            .collect();
        if answer.iter().all(Option::is_none) {
            return Err(PollError::NoInstances);
        }
        Ok(answer)
    }

    async fn describe_interfaces(
        client: aws_sdk_ec2::Client,
        target: Arc<Target>,
        ids: Vec<InstanceId>,
    ) -> Result<Vec<Vec<NetworkInterface>>, PollError> {
        const DOING: &str = "fetching network interfaces";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut raw: Vec<Ec2Interface> = Vec::new();
        for chunk in unique_ids(&ids).chunks(MAX_IDS_PER_CALL) {
            let pages = |token| {
                client
                    .describe_network_interfaces()
                    .filters(filter("attachment.instance-id", chunk))
                    .set_next_token(token)
                    .send()
            };
            each_page(
                &target,
                DOING,
                pages,
                |page| page.next_token(),
                |page| {
                    raw.extend(page.network_interfaces().iter().map(plain_interface));
                },
            )
            .await?;
        }
        Ok(convert::interfaces_by_instance(&ids, &raw))
    }
}

/// Every page of one call, each handed to `take` in turn: `call` asks for
/// the page after `token` (the first without one), `next` reads the token
/// of the page after it. EC2 answering more than `MAX_PAGES` pages is an
/// error rather than a loop without end.
async fn each_page<P, E, F>(
    target: &Target,
    doing: &str,
    mut call: impl FnMut(Option<String>) -> F,
    next: impl Fn(&P) -> Option<&str>,
    mut take: impl FnMut(&P),
) -> Result<(), PollError>
where
    F: Future<Output = Result<P, SdkError<E, HttpResponse>>>,
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let mut token = None;
    for _ in 0..MAX_PAGES {
        let page = call(token).await.map_err(|e| target.error(doing, e))?;
        take(&page);
        token = next(&page).filter(|t| !t.is_empty()).map(str::to_owned);
        if token.is_none() {
            return Ok(());
        }
    }
    Err(too_many_pages(target, doing))
}

fn too_many_pages(target: &Target, doing: &str) -> PollError {
    PollError::other(
        target.context(doing),
        format!("the endpoint was still paging after {MAX_PAGES} pages"),
    )
}

fn plain_instance(instance: &sdk::Instance) -> Ec2Instance {
    let state = instance.state().and_then(|s| s.name());
    Ec2Instance {
        id: instance.instance_id().unwrap_or_default().to_owned(),
        state: state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
        state_reason: instance
            .state_reason()
            .and_then(|r| r.message())
            .map(str::to_owned),
        private_ip: instance.private_ip_address().map(str::to_owned),
        public_ip: instance.public_ip_address().map(str::to_owned),
        ipv6: instance.ipv6_address().map(str::to_owned),
    }
}

fn plain_interface(interface: &sdk::NetworkInterface) -> Ec2Interface {
    let attachment = interface.attachment();
    Ec2Interface {
        instance_id: attachment.and_then(|a| a.instance_id()).map(str::to_owned),
        device_index: attachment.and_then(|a| a.device_index()),
        id: interface.network_interface_id().map(str::to_owned),
        mac_address: interface.mac_address().map(str::to_owned),
        subnet_id: interface.subnet_id().map(str::to_owned),
        private_ips: interface
            .private_ip_addresses()
            .iter()
            .map(|ip| Ec2PrivateIp {
                address: ip.private_ip_address().unwrap_or_default().to_owned(),
                primary: ip.primary().unwrap_or(false),
                public_ip: ip
                    .association()
                    .and_then(|a| a.public_ip())
                    .map(str::to_owned),
            })
            .collect(),
        public_ip: interface
            .association()
            .and_then(|a| a.public_ip())
            .map(str::to_owned),
        ipv6: interface
            .ipv6_addresses()
            .iter()
            .filter_map(|ip| ip.ipv6_address())
            .map(str::to_owned)
            .collect(),
    }
}

impl Environ for Ec2Environ {
    fn instances(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Option<Instance>>, PollError>> {
        Self::describe_instances(self.client.clone(), self.target.clone(), ids.to_vec()).boxed()
    }

    fn network_interfaces(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Vec<NetworkInterface>>, PollError>> {
        Self::describe_interfaces(self.client.clone(), self.target.clone(), ids.to_vec()).boxed()
    }
}
