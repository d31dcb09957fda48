//! A model on OpenStack: its keys checked as the OpenStack provider's
//! `OpenStackConfig` takes them, and
//! its credential read when the config file is read. Without the
//! `openstack` feature a model on OpenStack is refused whole, and nothing
//! here is called.

/// The key of a `[[models]]` entry that holds what `OpenStackConfig`
/// calls `key`: the entry's `cloud` names the provider, so clouds.yaml's
/// cloud is `os_cloud`, as openstacksdk's `OS_CLOUD` names it.
#[cfg(feature = "openstack")]
pub(crate) fn entry_key(key: &str) -> &str {
    if key == "cloud" { "os_cloud" } else { key }
}

#[cfg(feature = "openstack")]
mod built {
    use muster::config::{Checker, ConfigError, Validate};
    use muster::openstack::{OpenStackConfig, credentials};

    use super::entry_key;
    use crate::models::ModelConfig;

    /// Every OpenStack key as the provider takes it, each problem by the
    /// entry's key.
    pub(in crate::models) fn check(model: &ModelConfig, at: &mut Checker) {
        if let Err(problems) = model.openstack().validate() {
            for problem in problems.problems {
                at.problem(
                    entry_key(&problem.key),
                    problem.value,
                    entry_reason(&problem.reason),
                );
            }
        }
    }

    /// The provider's reason in the words of an entry, where `os_cloud`
    /// stands for its `cloud`.
    fn entry_reason(reason: &str) -> String {
        reason
            .replace("or cloud (a cloud", "or os_cloud (a cloud")
            .replace("auth_url or cloud,", "auth_url or os_cloud,")
    }

    /// Reads the credential the model names (its credential file,
    /// clouds.yaml or the `OS_*` environment) and drops it at once; what is
    /// missing is a problem of the key that says where it was looked for,
    /// never showing the password.
    pub(in crate::models) fn read_credential(model: &ModelConfig) -> Result<(), ConfigError> {
        credentials::resolve(&model.openstack(), &|name| std::env::var(name).ok())
            .map(drop)
            .map_err(|mut problem| {
                problem.key = entry_key(&problem.key).to_owned();
                problem.reason = entry_reason(&problem.reason);
                problem
            })
    }

    impl ModelConfig {
        /// How the OpenStack provider reaches this model's cloud: what the
        /// entry leaves out takes the provider's default.
        pub fn openstack(&self) -> OpenStackConfig {
            let mut config = OpenStackConfig::with_cloud(self.region.clone(), "");
            config.cloud = self.os_cloud.clone();
            config.auth_url = self.auth_url.clone();
            config.credential_file = self.credential_file.clone();
            config.interface = self.interface.clone();
            config.compute_service_name = self.compute_service_name.clone();
            config.network_service_name = self.network_service_name.clone();
            if let Some(page_size) = self.page_size {
                config.page_size = page_size;
            }
            if let Some(timeout) = self.connect_timeout {
                config.connect_timeout = timeout;
            }
            if let Some(timeout) = self.operation_timeout {
                config.operation_timeout = timeout;
            }
            config
        }
    }
}

#[cfg(not(feature = "openstack"))]
mod built {
    use muster::config::{Checker, ConfigError};

    use crate::models::ModelConfig;

    /// Never called: a model on OpenStack is refused whole without the
    /// feature.
    pub(in crate::models) fn check(_model: &ModelConfig, _at: &mut Checker) {}

    /// Never called: a model on OpenStack is refused whole without the
    /// feature.
    pub(in crate::models) fn read_credential(_model: &ModelConfig) -> Result<(), ConfigError> {
        Ok(())
    }
}

pub(super) use built::{check, read_credential};
