use std::sync::Arc;

use prometheus_client::registry::Registry;

use super::{BUCKETS_NS, Meter, Metrics};

/// The registry in the text format, as a scrape reads it.
fn scrape(registry: &Registry) -> String {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
    text
}

#[test]
fn the_handling_time_histogram_ends_with_an_inf_bucket() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let meter = Arc::new(Meter::new(4));
    Meter::bind(&meter, "g/m", &metrics, "g/m");
    assert!(meter.admit());
    // Slower than the last finite bound: counted in `+Inf` alone.
    meter.handled(2_000_000_000);
    let text = scrape(&registry);
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("muster_mailbox_handling_seconds_bucket"))
        .collect();
    assert_eq!(buckets.len(), BUCKETS_NS.len() + 1, "{text}");
    assert_eq!(
        buckets.last().copied(),
        Some("muster_mailbox_handling_seconds_bucket{le=\"+Inf\",child=\"g/m\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("muster_mailbox_handling_seconds_bucket{le=\"1.048576\",child=\"g/m\"} 0"),
        "{text}"
    );
    assert!(
        text.contains("muster_mailbox_handling_seconds_count{child=\"g/m\"} 1"),
        "{text}"
    );
}

#[test]
fn gone_members_stay_in_their_group_totals() {
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    for i in 0..3 {
        let meter = Arc::new(Meter::new(4));
        Meter::bind(&meter, &format!("g/m{i}"), &metrics, "g/*");
        assert!(meter.admit());
        meter.handled(3_000);
        if i == 2 {
            assert!(meter.admit());
            let text = scrape(&registry);
            assert!(
                text.contains("muster_mailbox_sent_total{child=\"g/*\"} 4"),
                "{text}"
            );
            assert!(
                text.contains("muster_mailbox_depth{child=\"g/*\"} 1"),
                "{text}"
            );
            assert!(
                text.contains(
                    "muster_mailbox_handling_seconds_bucket{le=\"0.000004\",child=\"g/*\"} 3"
                ),
                "{text}"
            );
        }
    }
    let text = scrape(&registry);
    assert!(
        text.contains("muster_mailbox_sent_total{child=\"g/*\"} 4"),
        "{text}"
    );
    assert!(
        text.contains("muster_mailbox_handled_total{child=\"g/*\"} 3"),
        "{text}"
    );
    assert!(
        text.contains("muster_mailbox_depth{child=\"g/*\"} 0"),
        "{text}"
    );
}
