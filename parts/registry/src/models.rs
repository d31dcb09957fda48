//! `[[models]]`: the models the daemon polls, each on its cloud and
//! region, and the cloud accounts they share (docs/spec.md §10).
//!
//! Models whose entries reach their cloud alike (one cloud and region,
//! one endpoint or Keystone, one source of credentials) share a cloud
//! account, and so one provider gateway: their polls share its batches
//! and its rate limit.

mod ec2;
mod openstack;

#[cfg(feature = "openstack")]
pub(crate) use openstack::entry_key as openstack_entry_key;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use muster::config::{Checker, InvalidConfig, Validate};
use muster::names::ModelUuid;
use serde::{Deserialize, Serialize};

/// The clouds a model may be on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cloud {
    /// The embedded simulated cloud, set up by `[backend.sim]`.
    Sim,
    /// Amazon EC2, in a musterd built with the `ec2` feature.
    Ec2,
    /// An OpenStack cloud (Keystone, Nova, Neutron), in a musterd built
    /// with the `openstack` feature.
    OpenStack,
}

impl Cloud {
    /// The name a config file gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Sim => "sim",
            Cloud::Ec2 => "ec2",
            Cloud::OpenStack => "openstack",
        }
    }

    /// Whether this musterd speaks it, and if not, what a refusal of a
    /// model on it says.
    fn unbuilt(self) -> Option<String> {
        let (built, name, build) = match self {
            Cloud::Sim => return None,
            Cloud::Ec2 => (EC2_BUILT, "EC2", EC2_BUILD),
            Cloud::OpenStack => (OPENSTACK_BUILT, "OpenStack", OPENSTACK_BUILD),
        };
        (!built).then(|| {
            format!(
                "this musterd was built without {name}; build one that speaks it with `{build}`"
            )
        })
    }
}

/// Whether this musterd speaks EC2.
pub const EC2_BUILT: bool = cfg!(feature = "ec2");

/// How to build a musterd that speaks EC2, as the refusal of a config
/// naming it says.
pub const EC2_BUILD: &str = "cargo build --release -p musterd --features ec2";

/// Whether this musterd speaks OpenStack.
pub const OPENSTACK_BUILT: bool = cfg!(feature = "openstack");

/// How to build a musterd that speaks OpenStack, as the refusal of a
/// config naming it says.
pub const OPENSTACK_BUILD: &str = "cargo build --release -p musterd --features openstack";

/// The longest model name, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// One `[[models]]` entry. Every field reads on its own, so that a file
/// with many problems reports each of them; what must be given is checked
/// with the ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ModelConfig {
    /// The model's UUID; must be given, and each once in the file.
    pub uuid: Option<ModelUuid>,
    /// A label for people.
    pub name: Option<String>,
    /// Its cloud; must be given.
    pub cloud: Option<Cloud>,
    /// Its region; must be given. On EC2 and the simulated cloud:
    /// lowercase letters, digits and hyphens, e.g. `us-east-1`; on
    /// OpenStack, as the service catalog names it, e.g. `RegionOne`.
    pub region: String,
    /// Another endpoint than the region's own (EC2 only): a private
    /// endpoint, or a test double.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A file holding the credential, relative to the config file's
    /// folder. On EC2, the access key in the AWS shared-credentials format
    /// (without it, the standard AWS chain: environment, profile); on
    /// OpenStack, a file in clouds.yaml's format (without it, clouds.yaml's
    /// standard places for `os_cloud`, or the `OS_*` environment for
    /// `auth_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_file: Option<PathBuf>,
    /// Keystone's URL (OpenStack only), the user, password and project
    /// then read from `credential_file` or the `OS_*` environment; not
    /// with `os_cloud`, whose entry in clouds.yaml names its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_url: Option<String>,
    /// A cloud of clouds.yaml (OpenStack only); not with `auth_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_cloud: Option<String>,
    /// The catalog's endpoint interface (OpenStack only): `public`,
    /// `internal` or `admin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<String>,
    /// The compute service's name in the catalog (OpenStack only), for a
    /// catalog holding several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_service_name: Option<String>,
    /// The network service's name in the catalog (OpenStack only), for a
    /// catalog holding several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_service_name: Option<String>,
    /// How many servers a page of Nova's list asks for (OpenStack only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u32>,
    /// How long a connection to an endpoint may take (OpenStack only).
    #[serde(skip_serializing_if = "Option::is_none", with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    /// How long one request may take in all (OpenStack only).
    #[serde(skip_serializing_if = "Option::is_none", with = "humantime_serde")]
    pub operation_timeout: Option<Duration>,
}

/// A region name: what AWS spells one with, as it becomes part of a host
/// name.
fn region_problem(region: &str) -> Option<String> {
    if region.trim().is_empty() {
        return Some("must name a region, such as \"us-east-1\"".to_owned());
    }
    let spelled = region.len() <= 64
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !region.starts_with('-')
        && !region.ends_with('-');
    (!spelled).then(|| {
        "must be a region name of at most 64 lowercase letters, digits and hyphens, \
         such as \"us-east-1\""
            .to_owned()
    })
}

/// A value as a config file writes it, for a problem's message.
fn quoted(text: &str) -> String {
    format!("{text:?}")
}

impl ModelConfig {
    /// Model `uuid` on `cloud`, in `region`, with no name, the region's own
    /// endpoint and the cloud's usual credentials.
    pub fn new(uuid: ModelUuid, cloud: Cloud, region: impl Into<String>) -> Self {
        ModelConfig {
            uuid: Some(uuid),
            cloud: Some(cloud),
            region: region.into(),
            ..ModelConfig::default()
        }
    }
}

impl Validate for ModelConfig {
    /// The UUID, the cloud and the region given; the name, when given, not
    /// blank; each key of one cloud only on a model of that cloud, and
    /// then as that cloud's provider takes it; EC2 and OpenStack only in a
    /// musterd built for them.
    fn check(&self, at: &mut Checker) {
        if self.uuid.is_none() {
            at.problem("uuid", None, "must be given: the model's UUID");
        }
        if let Some(name) = &self.name {
            if name.trim().is_empty() {
                at.problem(
                    "name",
                    Some(quoted(name)),
                    "must not be blank (leave it out for none)",
                );
            } else if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
                at.problem(
                    "name",
                    Some(quoted(name)),
                    format!("must be at most {MAX_NAME_CHARS} characters, none of them a control character"),
                );
            }
        }
        let Some(cloud) = self.cloud else {
            at.problem(
                "cloud",
                None,
                "must be given: \"sim\", \"ec2\" or \"openstack\"",
            );
            if let Some(reason) = region_problem(&self.region) {
                at.problem("region", Some(quoted(&self.region)), reason);
            }
            return;
        };
        let unbuilt = cloud.unbuilt();
        if let Some(reason) = &unbuilt {
            at.problem("cloud", Some(quoted(cloud.as_str())), reason.clone());
        }
        self.check_keys_of(cloud, at);
        match cloud {
            // OpenStack's regions are its catalog's names, free text.
            Cloud::OpenStack if unbuilt.is_none() => openstack::check(self, at),
            Cloud::OpenStack => {
                if self.region.trim().is_empty() {
                    at.problem(
                        "region",
                        Some(quoted(&self.region)),
                        "must name a region, such as \"RegionOne\"",
                    );
                }
            }
            Cloud::Sim | Cloud::Ec2 => {
                if let Some(reason) = region_problem(&self.region) {
                    at.problem("region", Some(quoted(&self.region)), reason);
                } else if cloud == Cloud::Ec2 && unbuilt.is_none() {
                    ec2::check(self, at);
                }
            }
        }
    }
}

impl ModelConfig {
    /// Refuses each key given that `cloud` does not take.
    fn check_keys_of(&self, cloud: Cloud, at: &mut Checker) {
        use Cloud::{Ec2, OpenStack};
        let keys: [(&str, bool, &[Cloud]); 10] = [
            ("endpoint", self.endpoint.is_some(), &[Ec2]),
            (
                "credential_file",
                self.credential_file.is_some(),
                &[Ec2, OpenStack],
            ),
            ("auth_url", self.auth_url.is_some(), &[OpenStack]),
            ("os_cloud", self.os_cloud.is_some(), &[OpenStack]),
            ("interface", self.interface.is_some(), &[OpenStack]),
            (
                "compute_service_name",
                self.compute_service_name.is_some(),
                &[OpenStack],
            ),
            (
                "network_service_name",
                self.network_service_name.is_some(),
                &[OpenStack],
            ),
            ("page_size", self.page_size.is_some(), &[OpenStack]),
            (
                "connect_timeout",
                self.connect_timeout.is_some(),
                &[OpenStack],
            ),
            (
                "operation_timeout",
                self.operation_timeout.is_some(),
                &[OpenStack],
            ),
        ];
        for (field, given, takers) in keys {
            if given && !takers.contains(&cloud) {
                let names: Vec<String> = takers.iter().map(|c| quoted(c.as_str())).collect();
                at.problem(
                    field,
                    None,
                    format!("only a model on cloud = {} takes it", names.join(" or ")),
                );
            }
        }
    }
}

/// Reads the credential each model on EC2 or OpenStack names, so that one
/// that cannot be read is a problem of the config file, found before
/// anything starts; the secret read is dropped at once. An EC2 model's
/// credential file must hold an access key; an OpenStack model's
/// credential (its file, clouds.yaml or the `OS_*` environment) must name
/// a user, a password and a project.
pub fn check_files(models: &[ModelConfig]) -> Result<(), InvalidConfig> {
    let mut at = Checker::new();
    for (n, model) in models.iter().enumerate() {
        match (model.cloud, &model.credential_file) {
            (Some(Cloud::Ec2), Some(file)) if EC2_BUILT => {
                if let Err(reason) = ec2::read_credentials(file) {
                    at.problem(
                        &format!("models[{n}].credential_file"),
                        Some(quoted(&file.display().to_string())),
                        reason,
                    );
                }
            }
            (Some(Cloud::OpenStack), _) if OPENSTACK_BUILT => {
                if let Err(problem) = openstack::read_credential(model) {
                    at.problem(
                        &format!("models[{n}].{}", problem.key),
                        problem.value,
                        problem.reason,
                    );
                }
            }
            _ => {}
        }
    }
    at.finish()
}

/// The cloud account of a model: models with the same key share a
/// gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AccountKey {
    /// The cloud.
    pub cloud: Cloud,
    /// How the account is reached: the model's entry without what names
    /// the model (its UUID and its label), so its region, endpoint or
    /// Keystone, credential source and the provider's settings.
    pub settings: ModelConfig,
}

impl ModelConfig {
    /// The account this model polls through; `None` until its cloud is
    /// given.
    pub fn account_key(&self) -> Option<AccountKey> {
        Some(AccountKey {
            cloud: self.cloud?,
            settings: ModelConfig {
                uuid: None,
                name: None,
                ..self.clone()
            },
        })
    }
}

/// A region as part of a child's name: kept when it is made of letters,
/// digits, `-`, `_` and `.`, as regions are; any other character (an
/// OpenStack region is free text) becomes `-`.
fn name_part(region: &str) -> String {
    region
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// The accounts of `models`, each named for the tree as `CLOUD-REGION`,
/// with `-2`, `-3`, … after the first of that name, a name already taken
/// skipped; in the order the models first name them. The second part
/// gives each model's account by its index in the first; `None` for a
/// model whose cloud is not given.
pub fn accounts(models: &[ModelConfig]) -> (Vec<(String, AccountKey)>, Vec<Option<usize>>) {
    let mut accounts: Vec<(String, AccountKey)> = Vec::new();
    let mut of_model = Vec::with_capacity(models.len());
    for model in models {
        let Some(key) = model.account_key() else {
            of_model.push(None);
            continue;
        };
        let at = match accounts.iter().position(|(_, k)| *k == key) {
            Some(at) => at,
            None => {
                let base = format!("{}-{}", key.cloud.as_str(), name_part(&key.settings.region));
                let taken = |name: &str| accounts.iter().any(|(taken, _)| taken == name);
                let mut name = base.clone();
                let mut n = 1;
                while taken(&name) {
                    n += 1;
                    name = format!("{base}-{n}");
                }
                accounts.push((name, key));
                accounts.len() - 1
            }
        };
        of_model.push(Some(at));
    }
    (accounts, of_model)
}

/// Checks the models as a list: each UUID once.
pub fn check_list(models: &[ModelConfig], at: &mut Checker) {
    let mut first: BTreeMap<ModelUuid, usize> = BTreeMap::new();
    for (n, model) in models.iter().enumerate() {
        at.section(&format!("models[{n}]"), model);
        if let Some(uuid) = model.uuid {
            if let Some(earlier) = first.get(&uuid) {
                at.problem(
                    &format!("models[{n}].uuid"),
                    Some(quoted(&uuid.to_string())),
                    format!("the same UUID as models[{earlier}]: each model once"),
                );
            } else {
                first.insert(uuid, n);
            }
        }
    }
}
