//! `[[models]]`: the models the daemon polls, each on its cloud and
//! region, and the cloud accounts they share (docs/spec.md §10).
//!
//! Models on one cloud, in one region, through one endpoint, with one
//! source of credentials share a cloud account, and so one provider
//! gateway: their polls share its batches and its rate limit.

use std::collections::BTreeMap;
use std::path::PathBuf;

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
}

impl Cloud {
    /// The name a config file gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Sim => "sim",
            Cloud::Ec2 => "ec2",
        }
    }
}

/// Whether this musterd speaks EC2.
pub const EC2_BUILT: bool = cfg!(feature = "ec2");

/// How to build a musterd that speaks EC2, as the refusal of a config
/// naming it says.
pub const EC2_BUILD: &str = "cargo build --release -p musterd --features ec2";

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
    /// Its region: lowercase letters, digits and hyphens, e.g.
    /// `us-east-1`; must be given.
    pub region: String,
    /// Another endpoint than the region's own (EC2 only): a private
    /// endpoint, or a test double.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// A file holding the access key (EC2 only), in the AWS
    /// shared-credentials format; relative to the config file's folder.
    /// Without it, the standard AWS chain (environment, profile).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential_file: Option<PathBuf>,
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
    /// blank; the endpoint and the credential file only for EC2, and then
    /// as the EC2 provider takes them; EC2 only in a musterd built for it.
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
        match self.cloud {
            None => at.problem("cloud", None, "must be given: \"sim\" or \"ec2\""),
            Some(Cloud::Ec2) if !EC2_BUILT => at.problem(
                "cloud",
                Some(quoted("ec2")),
                format!("this musterd was built without EC2; build one that speaks it with `{EC2_BUILD}`"),
            ),
            Some(Cloud::Sim) => {
                for (field, given) in [
                    ("endpoint", self.endpoint.is_some()),
                    ("credential_file", self.credential_file.is_some()),
                ] {
                    if given {
                        at.problem(field, None, "only a model on cloud = \"ec2\" takes it");
                    }
                }
            }
            Some(Cloud::Ec2) => {}
        }
        if let Some(reason) = region_problem(&self.region) {
            at.problem("region", Some(quoted(&self.region)), reason);
        } else if self.cloud == Some(Cloud::Ec2) && EC2_BUILT {
            ec2::check(self, at);
        }
    }
}

/// Reads the credential file each model on EC2 names, so that one that
/// cannot be read is a problem of the config file, found before anything
/// starts; the secret read is dropped at once.
pub fn check_files(models: &[ModelConfig]) -> Result<(), InvalidConfig> {
    let mut at = Checker::new();
    for (n, model) in models.iter().enumerate() {
        if let (Some(Cloud::Ec2), Some(file)) = (model.cloud, &model.credential_file)
            && let Err(reason) = ec2::read_credentials(file)
        {
            at.problem(
                &format!("models[{n}].credential_file"),
                Some(quoted(&file.display().to_string())),
                reason,
            );
        }
    }
    at.finish()
}

#[cfg(feature = "ec2")]
mod ec2 {
    use std::path::Path;

    use muster::config::Checker;
    use muster::ec2::Ec2Config;
    use muster::ec2::credentials::read_credential_file;

    use super::ModelConfig;

    /// Whether the file holds an access key, and why not.
    pub(super) fn read_credentials(file: &Path) -> Result<(), String> {
        read_credential_file(file).map(drop).map_err(|e| e.reason)
    }

    /// The endpoint and the credential file's name as the EC2 provider
    /// takes them.
    pub(super) fn check(model: &ModelConfig, at: &mut Checker) {
        if let Err(problem) = model.ec2().validate() {
            let value = match problem.key.as_str() {
                "endpoint" => model.endpoint.as_deref().map(|e| format!("{e:?}")),
                "credential_file" => model
                    .credential_file
                    .as_ref()
                    .map(|p| format!("{:?}", p.display().to_string())),
                _ => None,
            };
            at.problem(&problem.key, value, problem.reason);
        }
    }

    impl ModelConfig {
        /// How the EC2 provider reaches this model's cloud.
        pub fn ec2(&self) -> Ec2Config {
            Ec2Config {
                endpoint: self.endpoint.clone(),
                credential_file: self.credential_file.clone(),
                ..Ec2Config::new(self.region.clone())
            }
        }
    }
}

#[cfg(not(feature = "ec2"))]
mod ec2 {
    use std::path::Path;

    use muster::config::Checker;

    use super::ModelConfig;

    /// Never called: a model on EC2 is refused whole without the feature.
    pub(super) fn read_credentials(_file: &Path) -> Result<(), String> {
        Ok(())
    }

    /// Never called: a model on EC2 is refused whole without the feature.
    pub(super) fn check(_model: &ModelConfig, _at: &mut Checker) {}
}

/// The cloud account of a model: models with the same key share a
/// gateway.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AccountKey {
    /// The cloud.
    pub cloud: Cloud,
    /// The region.
    pub region: String,
    /// The endpoint, when not the region's own.
    pub endpoint: Option<String>,
    /// Where the credentials come from: a file, or the standard chain.
    pub credential_file: Option<PathBuf>,
}

impl ModelConfig {
    /// The account this model polls through; `None` until its cloud is
    /// given.
    pub fn account_key(&self) -> Option<AccountKey> {
        Some(AccountKey {
            cloud: self.cloud?,
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            credential_file: self.credential_file.clone(),
        })
    }
}

/// The accounts of `models`, each named for the tree as `CLOUD-REGION`,
/// with `-2`, `-3`, … after the first of a cloud and region reached
/// otherwise; in the order the models first name them. The second part
/// gives each model's account by its index in the first; `None` for a
/// model whose cloud is not given.
pub fn accounts(models: &[ModelConfig]) -> (Vec<(String, AccountKey)>, Vec<Option<usize>>) {
    let mut accounts: Vec<(String, AccountKey)> = Vec::new();
    let mut of_model = Vec::with_capacity(models.len());
    let mut seen: BTreeMap<(Cloud, String), usize> = BTreeMap::new();
    for model in models {
        let Some(key) = model.account_key() else {
            of_model.push(None);
            continue;
        };
        let at = match accounts.iter().position(|(_, k)| *k == key) {
            Some(at) => at,
            None => {
                let count = seen.entry((key.cloud, key.region.clone())).or_default();
                *count += 1;
                let name = match *count {
                    1 => format!("{}-{}", key.cloud.as_str(), key.region),
                    n => format!("{}-{}-{n}", key.cloud.as_str(), key.region),
                };
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
