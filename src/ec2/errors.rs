//! EC2's failures as the poller acts on them: throttling, a refused
//! credential, or anything else with the region and endpoint named.

use std::time::Duration;

use aws_sdk_ec2::config::http::HttpResponse;
use aws_sdk_ec2::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::PollError;

/// The error codes with which EC2 refuses the caller's credential.
pub const UNAUTHORISED_CODES: &[&str] = &[
    "AuthFailure",
    "UnauthorizedOperation",
    "InvalidClientTokenId",
    "ExpiredToken",
    "SignatureDoesNotMatch",
];

/// The error codes with which EC2 asks the caller to slow down.
pub const THROTTLED_CODES: &[&str] = &["RequestLimitExceeded"];

/// The failure an EC2 error answer stands for when the poller must act on
/// it: [`PollError::Throttled`] for a throttling code or HTTP 503 (with no
/// retry-after, so the gateway's own backoff applies),
/// [`PollError::Unauthorised`] for a refused credential; `None` otherwise.
pub fn refusal(code: Option<&str>, message: Option<&str>, status: u16) -> Option<PollError> {
    let code = code.unwrap_or_default();
    if THROTTLED_CODES.contains(&code) || status == 503 {
        return Some(PollError::Throttled { retry_after: None });
    }
    if UNAUTHORISED_CODES.contains(&code) {
        let reason = match message.filter(|m| !m.trim().is_empty()) {
            Some(message) => format!("{code}: {message}"),
            None => code.to_owned(),
        };
        return Some(PollError::Unauthorised(reason));
    }
    None
}

/// Where the calls go, for error messages, and the limits they run under.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub region: String,
    pub endpoint: String,
    pub connect_timeout: Duration,
    pub operation_timeout: Duration,
}

impl Target {
    /// What was being done, and where: `fetching instances from EC2 region
    /// us-east-1 at https://ec2.us-east-1.amazonaws.com`.
    pub fn context(&self, doing: &str) -> String {
        format!(
            "{doing} from EC2 region {} at {}",
            self.region, self.endpoint
        )
    }

    /// The [`PollError`] for a failed SDK call made while `doing`.
    pub fn error<E>(&self, doing: &str, error: SdkError<E, HttpResponse>) -> PollError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let status = error.raw_response().map(|r| r.status().as_u16());
        if let Some(status) = status
            && let Some(refused) = refusal(error.code(), error.message(), status)
        {
            return refused;
        }
        let detail = match &error {
            SdkError::TimeoutError(_) => format!(
                "no answer within the operation timeout of {}",
                humantime::format_duration(self.operation_timeout)
            ),
            SdkError::DispatchFailure(failure) if failure.is_timeout() => format!(
                "no connection within the connect timeout of {}",
                humantime::format_duration(self.connect_timeout)
            ),
            SdkError::DispatchFailure(failure) if failure.is_io() => {
                format!("cannot connect: {}", DisplayErrorContext(&error))
            }
            SdkError::ServiceError(_) => format!(
                "{}: {} (HTTP {})",
                error.code().unwrap_or("unknown error"),
                error.message().unwrap_or("no message"),
                status.unwrap_or_default()
            ),
            SdkError::ResponseError(_) => format!(
                "unreadable answer (HTTP {}): {}",
                status.unwrap_or_default(),
                DisplayErrorContext(&error)
            ),
            _ => DisplayErrorContext(&error).to_string(),
        };
        PollError::other(self.context(doing), detail)
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_ec2::error::ConnectorError;
    use aws_sdk_ec2::operation::describe_instances::DescribeInstancesError;

    use super::*;
    use crate::error::ErrorKind;

    fn target() -> Target {
        Target {
            region: "eu-west-1".into(),
            endpoint: "http://127.0.0.1:9".into(),
            connect_timeout: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(20),
        }
    }

    #[test]
    fn codes_and_statuses_map_to_kinds() {
        for code in UNAUTHORISED_CODES {
            let error = refusal(Some(code), Some("denied"), 401).unwrap();
            assert_eq!(error.kind(), ErrorKind::Unauthorised);
            assert_eq!(
                error.to_string(),
                format!("cloud denied access: {code}: denied")
            );
        }
        let throttled = refusal(Some("RequestLimitExceeded"), Some("slow down"), 400).unwrap();
        assert_eq!(throttled.kind(), ErrorKind::Throttled);
        assert_eq!(throttled.retry_after(), None);
        for code in [None, Some("Unavailable"), Some("InternalError")] {
            let error = refusal(code, None, 503).unwrap();
            assert_eq!(error.kind(), ErrorKind::Throttled);
        }
        assert_eq!(
            refusal(Some("AuthFailure"), Some(" "), 401)
                .unwrap()
                .to_string(),
            "cloud denied access: AuthFailure"
        );
        for (code, status) in [
            (Some("InternalError"), 500),
            (Some("InvalidParameterValue"), 400),
            (Some("authfailure"), 401),
            (None, 400),
        ] {
            assert!(refusal(code, None, status).is_none(), "{code:?} {status}");
        }
    }

    #[test]
    fn failures_without_an_answer_name_region_and_endpoint() {
        // Answers from a server (codes, statuses) are covered end to end in
        // tests/ec2; these are the failures that have none.
        let target = target();
        let timeout: SdkError<DescribeInstancesError, HttpResponse> =
            SdkError::timeout_error("operation timed out");
        let message = target.error("fetching instances", timeout).to_string();
        assert_eq!(
            message,
            "fetching instances from EC2 region eu-west-1 at http://127.0.0.1:9: \
             no answer within the operation timeout of 20s"
        );

        let connect: SdkError<DescribeInstancesError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::timeout("connect timed out".into()));
        let message = target
            .error("fetching network interfaces", connect)
            .to_string();
        assert_eq!(
            message,
            "fetching network interfaces from EC2 region eu-west-1 at http://127.0.0.1:9: \
             no connection within the connect timeout of 5s"
        );

        let refused: SdkError<DescribeInstancesError, HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let message = target.error("fetching instances", refused).to_string();
        assert!(
            message.starts_with(
                "fetching instances from EC2 region eu-west-1 at http://127.0.0.1:9: cannot connect"
            ),
            "{message}"
        );
        assert!(message.contains("connection refused"), "{message}");
    }
}
