//! OpenStack's failures as the poller acts on them: throttling with the
//! wait asked for, a refused credential, or anything else with the region
//! and the endpoint named.

use std::time::{Duration, SystemTime};

use crate::error::PollError;

/// The longest text of an error body passed on in a message.
const SHOWN_BODY: usize = 200;

/// The failure an HTTP error answer stands for when the poller must act on
/// it: 429, or 413 with `Retry-After` (Nova's over-limit answer), is
/// [`PollError::Throttled`] with the wait asked for; 403 is
/// [`PollError::Unauthorised`] (401 is the session's to handle: it signs in
/// again once first). `None` for any other status.
pub fn refusal(
    status: u16,
    retry_after: Option<&str>,
    body: &[u8],
    now: SystemTime,
) -> Option<PollError> {
    let wait = retry_after.and_then(|value| parse_retry_after(value, now));
    match status {
        429 => Some(PollError::Throttled { retry_after: wait }),
        413 if retry_after.is_some() => Some(PollError::Throttled { retry_after: wait }),
        403 => Some(PollError::Unauthorised(format!(
            "HTTP 403: {}",
            message_of(body)
        ))),
        _ => None,
    }
}

/// A `Retry-After` value: delay seconds, or an HTTP date (a date past is
/// no wait). `None` for anything else.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What an OpenStack error body says: the `message` of its one object
/// (`{"itemNotFound": {"message": …}}`, Keystone's `{"error": …}`,
/// `{"NeutronError": …}`), else the text itself on one line; cut when
/// long.
pub fn message_of(body: &[u8]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => map
            .values()
            .find_map(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
            .or_else(|| {
                map.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned()),
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    let line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.is_empty() {
        return "(no message)".to_owned();
    }
    if line.chars().count() <= SHOWN_BODY {
        line
    } else {
        let head: String = line.chars().take(SHOWN_BODY).collect();
        format!("{head}... ({} bytes)", body.len())
    }
}

/// What was being done, and where: `fetching instances from OpenStack
/// region RegionOne at http://nova:8774/v2.1/servers/detail`.
pub fn context(doing: &str, region: &str, url: &str) -> String {
    format!("{doing} from OpenStack region {region} at {url}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn throttling_says_how_long_to_wait() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let cases = [
            (429, Some("7"), Some(Duration::from_secs(7))),
            (429, None, None),
            (429, Some("soon"), None),
            (429, Some(later.as_str()), Some(Duration::from_secs(30))),
            (413, Some("120"), Some(Duration::from_secs(120))),
            (
                429,
                Some("Thu, 01 Jan 1970 00:00:00 GMT"),
                Some(Duration::ZERO),
            ),
            (
                429,
                Some("18446744073709551615"),
                Some(Duration::from_secs(u64::MAX)),
            ),
        ];
        for (status, header, wait) in cases {
            let error = refusal(status, header, b"", now).unwrap();
            assert_eq!(error.kind(), ErrorKind::Throttled);
            assert_eq!(error.retry_after(), wait, "{status} {header:?}");
        }
        assert!(
            refusal(413, None, b"", now).is_none(),
            "413 alone is too large"
        );
        assert!(refusal(500, Some("5"), b"", now).is_none());
        assert!(refusal(401, None, b"", now).is_none());
    }

    #[test]
    fn forbidden_is_unauthorised_with_the_clouds_message() {
        let body = br#"{"forbidden": {"message": "Policy doesn't allow os_compute_api:servers:detail", "code": 403}}"#;
        let error = refusal(403, None, body, SystemTime::now()).unwrap();
        assert_eq!(
            error.to_string(),
            "cloud denied access: HTTP 403: Policy doesn't allow os_compute_api:servers:detail"
        );
    }

    #[test]
    fn messages_come_from_any_openstack_error_body() {
        let cases: [(&[u8], &str); 6] = [
            (br#"{"itemNotFound": {"message": "Instance x could not be found.", "code": 404}}"#, "Instance x could not be found."),
            (br#"{"error": {"message": "The request you have made requires authentication.", "code": 401, "title": "Unauthorized"}}"#, "The request you have made requires authentication."),
            (br#"{"NeutronError": {"type": "HTTPNotFound", "message": "not here", "detail": ""}}"#, "not here"),
            (b"<html>\n<body>503 Service\n Unavailable</body></html>", "<html> <body>503 Service Unavailable</body></html>"),
            (b"", "(no message)"),
            (br#"{"message": "flat"}"#, "flat"),
        ];
        for (body, expected) in cases {
            assert_eq!(message_of(body), expected);
        }
        let long = message_of(&vec![b'x'; 1 << 20]);
        assert!(
            long.ends_with("... (1048576 bytes)") && long.len() < 260,
            "{long}"
        );
    }
}
