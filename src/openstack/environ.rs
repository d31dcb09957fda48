//! The OpenStack [`Environ`]: Nova's server list for a batch of ids, and
//! Neutron's ports (else Nova's addresses) for their interfaces.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::future::{BoxFuture, FutureExt};

use super::config::OpenStackConfig;
use super::credentials::{self, Credential};
use super::http::{Answer, Session};
use super::ports::{self, FloatingIpPage, PortPage};
use super::servers::{self, OneServer, Server, ServerPage};
use crate::config::{InvalidConfig, Validate};
use crate::error::PollError;
use crate::provider::{Environ, Instance, InstanceId, NetworkInterface};

/// The most pages one call follows: a cloud that keeps handing out next
/// links is broken, and the call fails rather than loop without end.
const MAX_PAGES: usize = 1000;

/// The most ids one Neutron request filters on, so that its URL stays
/// short (a UUID and `device_id=` are 47 bytes).
const IDS_PER_PORT_REQUEST: usize = 100;

/// OpenStack as muster's cloud provider: instances and their network
/// interfaces, many ids per call.
///
/// - `instances` of one id is `GET /servers/{id}` (404 is a gap); of more,
///   `GET /servers/detail?limit=page_size`, following `marker` pages until
///   every id asked is found or the list ends, so a batch costs as many
///   requests as pages were read (one, for a project of at most
///   `page_size` servers). A server the list does not hold, or holds
///   `DELETED`/`SOFT_DELETED`, is a gap; when none is known the call fails
///   [`PollError::NoInstances`].
/// - `network_interfaces` with Neutron in the catalog is
///   `GET /v2.0/ports?device_id=…` (every id in one request) and
///   `GET /v2.0/floatingips?port_id=…` for their public addresses; without
///   Neutron (or a network endpoint that does not serve ports), the
///   servers' addresses as Nova gives them, read as `instances` reads them.
/// - 413/429 are [`PollError::Throttled`] with the `Retry-After` asked; a
///   401 signs in again once, and a second 401, a 403 or a refused sign-in
///   are [`PollError::Unauthorised`]; 5xx, timeouts and anything else fail
///   naming the region and the endpoint.
///
/// TLS is rustls with the platform's trusted roots; HTTP proxies from the
/// environment are not used. Its `Debug` form names the region, Keystone's
/// URL and where the credential was read, never the password or the token.
#[derive(Clone)]
pub struct OpenStackEnviron {
    session: Arc<Session>,
    page_size: u32,
    /// Whether the network endpoint was found not to serve Neutron's ports.
    no_ports: Arc<AtomicBool>,
}

impl fmt::Debug for OpenStackEnviron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenStackEnviron")
            .field("region", &self.session.region)
            .field("auth_url", &self.session.credential.auth_url)
            .field("credential", &self.session.credential.source)
            .finish()
    }
}

impl OpenStackEnviron {
    /// The provider `config` describes, its credential read as
    /// [`credentials`] says (clouds.yaml, the credential file, or the
    /// process's `OS_*` environment). It makes no call to the cloud: a
    /// refused credential shows on the first poll.
    pub fn new(config: &OpenStackConfig) -> Result<OpenStackEnviron, InvalidConfig> {
        config.validate()?;
        let credential = credentials::resolve(config, &|name| std::env::var(name).ok())?;
        OpenStackEnviron::with_credential(config, credential)
    }

    /// The provider `config` describes, with a credential read already.
    pub fn with_credential(
        config: &OpenStackConfig,
        credential: Credential,
    ) -> Result<OpenStackEnviron, InvalidConfig> {
        config.validate()?;
        Ok(OpenStackEnviron {
            session: Arc::new(Session::new(config, credential)?),
            page_size: config.page_size,
            no_ports: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The region the calls go to.
    pub fn region(&self) -> &str {
        &self.session.region
    }

    /// Keystone's URL, its version path included.
    pub fn auth_url(&self) -> &str {
        &self.session.credential.auth_url
    }

    /// The servers with these ids that Nova holds, by id.
    async fn servers(
        &self,
        doing: &str,
        ids: &[InstanceId],
    ) -> Result<HashMap<String, Server>, PollError> {
        let wanted: HashSet<&str> = ids.iter().map(InstanceId::as_str).collect();
        let mut found = HashMap::with_capacity(wanted.len());
        if let [only] = ids {
            let id = only.as_str();
            let answer = self
                .session
                .get(doing, |e| format!("{}/servers/{}", e.compute, encode(id)))
                .await?;
            if answer.status == 404 {
                return Ok(found);
            }
            let one: OneServer = self.parse(doing, "/servers/ID", &answer)?;
            found.insert(one.server.id.clone(), one.server);
            return Ok(found);
        }
        let mut marker: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let limit = self.page_size;
            let after = marker.clone();
            let answer = self
                .session
                .get(doing, move |e| match &after {
                    Some(m) => format!(
                        "{}/servers/detail?limit={limit}&marker={}",
                        e.compute,
                        encode(m)
                    ),
                    None => format!("{}/servers/detail?limit={limit}", e.compute),
                })
                .await?;
            let page: ServerPage = self.parse(doing, "/servers/detail", &answer)?;
            let next = page.next_marker().map(str::to_owned);
            if next.is_some() && next == marker {
                return Err(PollError::other(
                    super::errors::context(doing, &self.session.region, "/servers/detail"),
                    "the cloud answered the same page again",
                ));
            }
            marker = next;
            for server in page.servers {
                if wanted.contains(server.id.as_str()) {
                    found.insert(server.id.clone(), server);
                }
            }
            if marker.is_none() || found.len() == wanted.len() {
                return Ok(found);
            }
        }
        Err(self.too_many_pages(doing, "/servers/detail"))
    }

    fn parse<T: serde::de::DeserializeOwned>(
        &self,
        doing: &str,
        path: &str,
        answer: &Answer,
    ) -> Result<T, PollError> {
        let where_ = super::errors::context(doing, &self.session.region, path);
        if !(200..300).contains(&answer.status) {
            return Err(PollError::other(
                where_,
                format!(
                    "HTTP {}: {}",
                    answer.status,
                    super::errors::message_of(&answer.body)
                ),
            ));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| PollError::other(where_, format!("an answer that does not read: {e}")))
    }

    fn too_many_pages(&self, doing: &str, path: &str) -> PollError {
        PollError::other(
            super::errors::context(doing, &self.session.region, path),
            format!("the cloud was still paging after {MAX_PAGES} pages"),
        )
    }

    async fn fetch_instances(
        self,
        ids: Vec<InstanceId>,
    ) -> Result<Vec<Option<Instance>>, PollError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let found = self.servers("fetching instances", &unique(&ids)).await?;
        let answer: Vec<Option<Instance>> = ids
            .iter()
            .map(|id| found.get(id.as_str()).and_then(servers::instance))
            .collect();
        if answer.iter().all(Option::is_none) {
            return Err(PollError::NoInstances);
        }
        Ok(answer)
    }

    async fn fetch_interfaces(
        self,
        ids: Vec<InstanceId>,
    ) -> Result<Vec<Vec<NetworkInterface>>, PollError> {
        const DOING: &str = "fetching network interfaces";
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let unique = unique(&ids);
        let endpoints = self.session.endpoints(DOING).await?;
        if endpoints.network.is_some() && !self.no_ports.load(Ordering::Relaxed) {
            if let Some(lists) = self.neutron_interfaces(DOING, &ids, &unique).await? {
                return Ok(lists);
            }
            self.no_ports.store(true, Ordering::Relaxed);
        }
        let found = self.servers(DOING, &unique).await?;
        Ok(ids
            .iter()
            .map(|id| match found.get(id.as_str()) {
                Some(server) if !servers::is_gone(server) => servers::interfaces(server),
                _ => Vec::new(),
            })
            .collect())
    }

    /// The interfaces from Neutron's ports, or `None` when the network
    /// endpoint answers 404 for its ports: it does not serve Neutron's API.
    async fn neutron_interfaces(
        &self,
        doing: &str,
        ids: &[InstanceId],
        unique: &[InstanceId],
    ) -> Result<Option<Vec<Vec<NetworkInterface>>>, PollError> {
        let mut all_ports = Vec::new();
        for chunk in unique.chunks(IDS_PER_PORT_REQUEST) {
            let filter: Vec<String> = chunk
                .iter()
                .map(|id| format!("device_id={}", encode(id.as_str())))
                .collect();
            let Some(ports) = self
                .neutron_list::<PortPage, _>(doing, "ports", &filter.join("&"), |page| {
                    let last = page.ports.last().map(|p| p.id.clone());
                    let next =
                        ports::next_marker(&page.ports_links, last.as_deref()).map(str::to_owned);
                    (page.ports, next)
                })
                .await?
            else {
                return Ok(None);
            };
            all_ports.extend(ports);
        }
        let mut floating = Vec::new();
        let port_ids: Vec<&str> = all_ports.iter().map(|p| p.id.as_str()).collect();
        for chunk in port_ids.chunks(IDS_PER_PORT_REQUEST) {
            let filter: Vec<String> = chunk
                .iter()
                .map(|id| format!("port_id={}", encode(id)))
                .collect();
            let ips = self
                .neutron_list::<FloatingIpPage, _>(
                    doing,
                    "floatingips",
                    &filter.join("&"),
                    |page| {
                        let last = page.floatingips.last().map(|ip| ip.id.clone());
                        let next = ports::next_marker(&page.floatingips_links, last.as_deref())
                            .map(str::to_owned);
                        (page.floatingips, next)
                    },
                )
                .await?
                .unwrap_or_default();
            floating.extend(ips);
        }
        Ok(Some(ports::interfaces_by_server(
            ids, &all_ports, &floating,
        )))
    }

    /// Every item of a Neutron listing, page by page; `None` when the
    /// endpoint answers 404.
    async fn neutron_list<P, T>(
        &self,
        doing: &str,
        resource: &str,
        filter: &str,
        split: impl Fn(P) -> (Vec<T>, Option<String>),
    ) -> Result<Option<Vec<T>>, PollError>
    where
        P: serde::de::DeserializeOwned,
    {
        let mut items = Vec::new();
        let mut marker: Option<String> = None;
        let limit = self.page_size;
        for _ in 0..MAX_PAGES {
            let after = marker.clone().filter(|m| !m.is_empty());
            let answer = self
                .session
                .get(doing, |e| {
                    let network = e.network.as_deref().unwrap_or_default();
                    let base = if network.ends_with("/v2.0") {
                        network.to_owned()
                    } else {
                        format!("{network}/v2.0")
                    };
                    let mut url = format!("{base}/{resource}?{filter}&limit={limit}");
                    if let Some(m) = &after {
                        url.push_str(&format!("&marker={}", encode(m)));
                    }
                    url
                })
                .await?;
            if answer.status == 404 {
                return Ok(None);
            }
            let page: P = self.parse(doing, &format!("/v2.0/{resource}"), &answer)?;
            let (page_items, next) = split(page);
            if next.is_some() && next.as_deref() == marker.as_deref() {
                return Err(PollError::other(
                    super::errors::context(
                        doing,
                        &self.session.region,
                        &format!("/v2.0/{resource}"),
                    ),
                    "the cloud answered the same page again",
                ));
            }
            let empty = page_items.is_empty();
            items.extend(page_items);
            match next {
                Some(next) if !next.is_empty() && !empty => marker = Some(next),
                _ => return Ok(Some(items)),
            }
        }
        Err(self.too_many_pages(doing, &format!("/v2.0/{resource}")))
    }
}

/// The ids once each, in first-seen order.
fn unique(ids: &[InstanceId]) -> Vec<InstanceId> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter()
        .filter(|id| seen.insert(id.as_str()))
        .cloned()
        .collect()
}

/// `text` percent-encoded for a URL's path or query: everything but
/// unreserved characters.
fn encode(text: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(text, RESERVED).to_string()
}

impl Environ for OpenStackEnviron {
    fn instances(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Option<Instance>>, PollError>> {
        self.clone().fetch_instances(ids.to_vec()).boxed()
    }

    fn network_interfaces(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Vec<NetworkInterface>>, PollError>> {
        self.clone().fetch_interfaces(ids.to_vec()).boxed()
    }
}
