//! How the JSON endpoints write time: a moment as an RFC 3339 string in UTC
//! to the millisecond (`2025-03-01T12:00:00.250Z`), a duration as a human
//! string rounded to the millisecond (`16s 907ms`). The tree's own types
//! keep full precision; they are written this way here, at the edge.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{Status, Value as Connection};
use muster::provider::{Address, InstanceId, InstanceStatusInfo};
use muster_actors::machines::{MachineState, Tracking};
use serde::Serialize;
use serde_json::Value;

/// The last moment RFC 3339 can write: 9999-12-31T23:59:59.999Z.
const LAST: Duration = Duration::from_millis(253_402_300_799_999);

/// `time` as RFC 3339 in UTC to the millisecond; `None` for a moment
/// before 1970 or after 9999, which the format cannot write as UTC.
pub(super) fn timestamp(time: SystemTime) -> Option<String> {
    let since = time.duration_since(UNIX_EPOCH).ok()?;
    (since <= LAST).then(|| humantime::format_rfc3339_millis(time).to_string())
}

/// `duration` rounded to the nearest millisecond, as a human string.
pub(super) fn duration(duration: Duration) -> String {
    let millis = duration.as_nanos().saturating_add(500_000) / 1_000_000;
    let rounded = Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX));
    humantime::format_duration(rounded).to_string()
}

/// One connection in `/api/presence`.
#[derive(Debug, Serialize)]
pub(super) struct ConnectionJson {
    model: ModelUuid,
    server: MachineTag,
    agent: AgentTag,
    controller_agent: bool,
    connection_id: u64,
    status: Status,
    user_data: String,
    last_seen: Option<String>,
}

impl From<Connection> for ConnectionJson {
    fn from(c: Connection) -> Self {
        ConnectionJson {
            model: c.model,
            server: c.server,
            agent: c.agent,
            controller_agent: c.controller_agent,
            connection_id: c.connection_id,
            status: c.status,
            user_data: c.user_data,
            last_seen: timestamp(c.last_seen),
        }
    }
}

/// One machine in `/api/machines`.
#[derive(Debug, Serialize)]
pub(crate) struct MachineJson {
    /// The machine's model; `null` for the one model polled without
    /// `[[models]]`.
    model: Option<ModelUuid>,
    tag: MachineTag,
    tracking: Tracking,
    phase: Option<String>,
    interval: Option<String>,
    next_poll_in: Option<String>,
    instance_id: Option<InstanceId>,
    instance_status: Option<InstanceStatusInfo>,
    addresses: Vec<Address>,
    last_error: Option<String>,
    polls: u64,
}

impl From<MachineState> for MachineJson {
    fn from(m: MachineState) -> Self {
        MachineJson {
            model: m.model,
            tag: m.tag,
            tracking: m.tracking,
            phase: m.phase.map(|p| p.to_string()),
            interval: m.interval.map(duration),
            next_poll_in: m.next_poll_in.map(duration),
            instance_id: m.instance_id,
            instance_status: m.instance_status,
            addresses: m.addresses,
            last_error: m.last_error,
            polls: m.polls,
        }
    }
}

/// The keys of the tree's report that hold a duration as a human string:
/// the gateway's `throttled_for`.
const REPORT_DURATIONS: [&str; 1] = ["throttled_for"];

/// Rounds the durations anywhere in a serialized report to the
/// millisecond; the report's moments are RFC 3339 already.
pub(super) fn round_report_durations(report: &mut Value) {
    match report {
        Value::Object(fields) => {
            for (key, value) in fields.iter_mut() {
                if REPORT_DURATIONS.contains(&key.as_str())
                    && let Value::String(text) = value
                    && let Ok(d) = humantime::parse_duration(text)
                {
                    *text = duration(d);
                } else {
                    round_report_durations(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(round_report_durations),
        _ => {}
    }
}

/// A machine's phase as the metrics and the API name it: `short`, `long`,
/// or `manual` for a machine that is never polled.
pub(crate) fn phase_name(machine: &muster_actors::machines::MachineState) -> &'static str {
    match (machine.tracking, machine.phase) {
        (Tracking::Manual, _) | (_, None) => "manual",
        (Tracking::Polled, Some(muster::poll::Phase::Short)) => "short",
        (Tracking::Polled, Some(muster::poll::Phase::Long)) => "long",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_rfc_3339_to_the_millisecond() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(
            timestamp(at(1_740_830_400_250)).as_deref(),
            Some("2025-03-01T12:00:00.250Z")
        );
        assert_eq!(
            timestamp(UNIX_EPOCH + Duration::from_nanos(1_740_830_400_250_999_999)).as_deref(),
            Some("2025-03-01T12:00:00.250Z")
        );
        assert_eq!(
            timestamp(UNIX_EPOCH).as_deref(),
            Some("1970-01-01T00:00:00.000Z")
        );
        assert_eq!(
            timestamp(at(253_402_300_799_999)).as_deref(),
            Some("9999-12-31T23:59:59.999Z")
        );
        // Moments the format cannot write are null, not a panic.
        assert_eq!(timestamp(at(253_402_300_800_000)), None);
        assert_eq!(timestamp(UNIX_EPOCH - Duration::from_secs(1)), None);
        if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(u64::MAX / 4)) {
            assert_eq!(timestamp(far), None);
        }
    }

    #[test]
    fn durations_are_rounded_to_the_millisecond() {
        let ns = Duration::from_nanos;
        for (d, text) in [
            (ns(16_906_822_352), "16s 907ms"),
            (ns(16_906_499_999), "16s 906ms"),
            (ns(16_906_500_000), "16s 907ms"),
            (Duration::from_secs(90), "1m 30s"),
            (ns(499_999), "0s"),
            (ns(500_000), "1ms"),
            (Duration::ZERO, "0s"),
            (ns(999_999_999), "1s"),
        ] {
            assert_eq!(duration(d), text, "{d:?}");
        }
        // The longest duration does not overflow.
        assert!(!duration(Duration::MAX).is_empty());
    }

    #[test]
    fn report_durations_are_rounded_wherever_they_are() {
        let mut report = serde_json::json!({
            "children": [
                {"name": "gateway", "report": {"throttled_for": "1s 2ms 600us 1ns", "queued": 0}},
                {"name": "presence", "report": null, "started_at": "2025-03-01T12:00:00.250Z"},
                {"name": "other", "report": {"throttled_for": null}}
            ]
        });
        round_report_durations(&mut report);
        assert_eq!(report["children"][0]["report"]["throttled_for"], "1s 3ms");
        assert_eq!(
            report["children"][1]["started_at"],
            "2025-03-01T12:00:00.250Z"
        );
        assert!(report["children"][2]["report"]["throttled_for"].is_null());
    }
}
