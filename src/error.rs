//! The errors of the instance poller's collaborators.
//!
//! The provider, the model facade and the credential API all fail with one
//! [`PollError`], so that the poller can act on the kind of failure (back off,
//! stop tracking a machine, invalidate the credential) whichever side raised it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::names::MachineTag;

/// A failure of the provider, the model facade or the credential API.
///
/// It is `Clone` so that one failed batched provider call can be handed to
/// every poller whose ids were in the batch.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum PollError {
    /// The entity is gone: a machine that was removed from the model.
    #[error("{0} not found")]
    NotFound(String),
    /// The machine has no instance yet.
    #[error("machine {} not provisioned", .0.id())]
    NotProvisioned(MachineTag),
    /// The provider does not offer this operation, e.g. network interfaces.
    #[error("{0} not supported")]
    NotSupported(String),
    /// The provider knew only some of the instances asked for.
    #[error("only some instances were found ({missing} of {asked} missing)")]
    PartialInstances {
        /// How many ids the provider did not know.
        missing: usize,
        /// How many ids were asked for.
        asked: usize,
    },
    /// The provider knew none of the instances asked for.
    #[error("no instances found")]
    NoInstances,
    /// The cloud refused the model's credential.
    #[error("cloud denied access: {0}")]
    Unauthorised(String),
    /// The cloud is rate-limiting the caller.
    #[error("{}", throttled_message(*.retry_after))]
    Throttled {
        /// How long the cloud asked the caller to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// A call that did not answer in time and was abandoned.
    #[error("{call} timed out: no answer after {}", humantime::format_duration(*.after))]
    Timeout {
        /// What was called, e.g. `provider call`.
        call: String,
        /// How long it was given.
        after: Duration,
    },
    /// Any other failure, with what was being done when it happened.
    #[error("{context}: {source}")]
    Other {
        /// What was being done, e.g. `fetching instances`.
        context: String,
        /// The underlying failure.
        source: Arc<dyn std::error::Error + Send + Sync>,
    },
}

fn throttled_message(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(wait) => format!(
            "request throttled by the provider, retry after {}",
            humantime::format_duration(wait)
        ),
        None => "request throttled by the provider".to_owned(),
    }
}

impl PollError {
    /// An [`PollError::Other`] failure with its context and cause.
    pub fn other(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        PollError::Other {
            context: context.into(),
            source: Arc::from(source.into()),
        }
    }

    /// The kind of failure, for matching and counting.
    pub fn kind(&self) -> ErrorKind {
        match self {
            PollError::NotFound(_) => ErrorKind::NotFound,
            PollError::NotProvisioned(_) => ErrorKind::NotProvisioned,
            PollError::NotSupported(_) => ErrorKind::NotSupported,
            PollError::PartialInstances { .. } => ErrorKind::PartialInstances,
            PollError::NoInstances => ErrorKind::NoInstances,
            PollError::Unauthorised(_) => ErrorKind::Unauthorised,
            PollError::Throttled { .. } => ErrorKind::Throttled,
            PollError::Timeout { .. } => ErrorKind::Timeout,
            PollError::Other { .. } => ErrorKind::Other,
        }
    }

    /// Whether the cloud refused the credential, which must then be
    /// invalidated.
    pub fn is_unauthorised(&self) -> bool {
        matches!(self, PollError::Unauthorised(_))
    }

    /// How long the cloud asked the caller to wait, for a throttled request.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PollError::Throttled { retry_after } => *retry_after,
            _ => None,
        }
    }
}

/// The kind of a [`PollError`], without its details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorKind {
    /// See [`PollError::NotFound`].
    NotFound,
    /// See [`PollError::NotProvisioned`].
    NotProvisioned,
    /// See [`PollError::NotSupported`].
    NotSupported,
    /// See [`PollError::PartialInstances`].
    PartialInstances,
    /// See [`PollError::NoInstances`].
    NoInstances,
    /// See [`PollError::Unauthorised`].
    Unauthorised,
    /// See [`PollError::Throttled`].
    Throttled,
    /// See [`PollError::Timeout`].
    Timeout,
    /// See [`PollError::Other`].
    Other,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::NotFound,
        ErrorKind::NotProvisioned,
        ErrorKind::NotSupported,
        ErrorKind::PartialInstances,
        ErrorKind::NoInstances,
        ErrorKind::Unauthorised,
        ErrorKind::Throttled,
        ErrorKind::Timeout,
        ErrorKind::Other,
    ];

    /// The kind's one name, in kebab case (`partial-instances`): what logs,
    /// reports and metric labels show.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not-found",
            ErrorKind::NotProvisioned => "not-provisioned",
            ErrorKind::NotSupported => "not-supported",
            ErrorKind::PartialInstances => "partial-instances",
            ErrorKind::NoInstances => "no-instances",
            ErrorKind::Unauthorised => "unauthorised",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not one of the values of an enumeration such as a status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {kind}")]
pub struct UnknownValue {
    /// The text as it was given.
    pub text: String,
    /// What was expected, e.g. `instance status`.
    pub kind: &'static str,
}

/// A listen address of a part (the door, the HTTP surface) could not be
/// bound.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {listen}: {source}")]
pub struct BindError {
    /// The address.
    pub listen: std::net::SocketAddr,
    /// Why (for instance, the address is in use).
    #[source]
    pub source: std::io::Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let tag: MachineTag = "machine-3-lxd-1".parse().unwrap();
        assert_eq!(
            PollError::NotProvisioned(tag).to_string(),
            "machine 3/lxd/1 not provisioned"
        );
        assert_eq!(PollError::NoInstances.to_string(), "no instances found");
        assert_eq!(
            PollError::Unauthorised("token revoked".into()).to_string(),
            "cloud denied access: token revoked"
        );
        assert_eq!(
            PollError::Throttled {
                retry_after: Some(Duration::from_secs(5))
            }
            .to_string(),
            "request throttled by the provider, retry after 5s"
        );
        let timeout = PollError::Timeout {
            call: "provider call".into(),
            after: Duration::from_secs(30),
        };
        assert_eq!(
            timeout.to_string(),
            "provider call timed out: no answer after 30s"
        );
        assert_eq!(timeout.kind(), ErrorKind::Timeout);
        let other = PollError::other("fetching instances", "connection reset");
        assert_eq!(other.to_string(), "fetching instances: connection reset");
        assert_eq!(other.kind(), ErrorKind::Other);
        assert!(std::error::Error::source(&other).is_some());
    }

    #[test]
    fn each_kind_has_one_distinct_kebab_case_name() {
        let names: std::collections::BTreeSet<&str> =
            ErrorKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::PartialInstances.as_str(), "partial-instances");
        assert_eq!(ErrorKind::NotFound.to_string(), "not-found");
        for name in names {
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '-'),
                "{name}"
            );
        }
    }
}
