//! A model on Amazon EC2: its keys checked, and its credential file read,
//! as the EC2 provider takes them. Without the `ec2` feature a model on
//! EC2 is refused whole, and nothing here is called.

#[cfg(feature = "ec2")]
mod built {
    use std::path::Path;

    use muster::config::Checker;
    use muster::ec2::Ec2Config;
    use muster::ec2::credentials::read_credential_file;

    use crate::models::ModelConfig;

    /// Whether the file holds an access key, and why not.
    pub(in crate::models) fn read_credentials(file: &Path) -> Result<(), String> {
        read_credential_file(file).map(drop).map_err(|e| e.reason)
    }

    /// The endpoint and the credential file's name as the EC2 provider
    /// takes them.
    pub(in crate::models) fn check(model: &ModelConfig, at: &mut Checker) {
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
mod built {
    use std::path::Path;

    use muster::config::Checker;

    use crate::models::ModelConfig;

    /// Never called: a model on EC2 is refused whole without the feature.
    pub(in crate::models) fn read_credentials(_file: &Path) -> Result<(), String> {
        Ok(())
    }

    /// Never called: a model on EC2 is refused whole without the feature.
    pub(in crate::models) fn check(_model: &ModelConfig, _at: &mut Checker) {}
}

pub(super) use built::{check, read_credentials};
