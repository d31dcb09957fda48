//! The lists the dashboard pages through, served in-process against a real
//! tree on the simulated cloud: `/api/machines`, `/api/models` and a
//! model's agents in `/api/presence`, one page at a time in natural order.

mod support;

use std::sync::Arc;

use actix_web::http::StatusCode;
use muster::clock::ManualClock;
use muster::names::ModelUuid;
use muster_http::history::History;

use support::inprocess::{
    agent, bad, connect_three, get, server, service, start_time, strings, tree,
};

#[actix_web::test]
async fn machines_come_a_page_at_a_time_in_natural_order() {
    let clock = Arc::new(ManualClock::new(start_time()));
    // machine-0 to machine-24 polled, machine-25 manual.
    let (muster, _sim, registry) = tree(25, clock).await;
    let app = service(&muster, registry, History::new()).await;

    let (status, page) = get(&app, "/api/machines?limit=10").await;
    assert_eq!(status, StatusCode::OK);
    let tags: Vec<String> = (0..10).map(|n| format!("machine-{n}")).collect();
    assert_eq!(strings(&page["machines"], "tag"), tags);
    assert_eq!(
        (page["total"].as_u64(), page["matched"].as_u64()),
        (Some(26), Some(26))
    );
    assert_eq!(
        (page["offset"].as_u64(), page["limit"].as_u64()),
        (Some(0), Some(10))
    );
    assert_eq!(page["phases"]["short"], 25);
    assert_eq!(page["phases"]["long"], 0);
    assert_eq!(page["phases"]["manual"], 1);

    let (_, page) = get(&app, "/api/machines?offset=10&limit=10").await;
    let tags: Vec<String> = (10..20).map(|n| format!("machine-{n}")).collect();
    assert_eq!(strings(&page["machines"], "tag"), tags);

    // The filter is part of the tag, any case, spaces trimmed.
    let (_, page) = get(&app, "/api/machines?filter=%20MACHINE-2%20").await;
    assert_eq!(
        strings(&page["machines"], "tag"),
        [
            "machine-2",
            "machine-20",
            "machine-21",
            "machine-22",
            "machine-23",
            "machine-24",
            "machine-25"
        ]
    );
    assert_eq!(page["matched"], 7);
    assert_eq!(page["total"], 26);
    assert!(page["limit"].is_null());

    let (_, page) = get(&app, "/api/machines?phase=manual").await;
    assert_eq!(strings(&page["machines"], "tag"), ["machine-25"]);
    assert_eq!(
        page["phases"]["short"], 25,
        "the counts are of every machine"
    );
    let (_, page) = get(&app, "/api/machines?phase=short&filter=machine-2&offset=5").await;
    assert_eq!(strings(&page["machines"], "tag"), ["machine-24"]);
    let (_, page) = get(&app, "/api/machines?offset=1000").await;
    assert_eq!(page["machines"].as_array().unwrap().len(), 0);
    assert_eq!(page["matched"], 26);

    // Without parameters, every machine, as before.
    let (_, page) = get(&app, "/api/machines").await;
    assert_eq!(page["machines"].as_array().unwrap().len(), 26);

    for (query, parameter, message) in [
        (
            "limit=-1",
            "limit",
            "parameter `limit`: \"-1\" is not a non-negative integer",
        ),
        (
            "limit=",
            "limit",
            "parameter `limit`: \"\" is not a non-negative integer",
        ),
        (
            "offset=NaN",
            "offset",
            "parameter `offset`: \"NaN\" is not a non-negative integer",
        ),
        (
            "offset=1e308",
            "offset",
            "parameter `offset`: \"1e308\" is not a non-negative integer",
        ),
        (
            "phase=medium",
            "phase",
            "parameter `phase`: \"medium\" is not one of short, long, manual",
        ),
        (
            "phase=",
            "phase",
            "parameter `phase`: \"\" is not one of short, long, manual",
        ),
    ] {
        bad(&app, &format!("/api/machines?{query}"), parameter, message).await;
    }
    let long = "m".repeat(300);
    bad(
        &app,
        &format!("/api/machines?filter={long}"),
        "filter",
        "parameter `filter`: at most 256 bytes, got 300",
    )
    .await;
    muster.shutdown();
}

#[actix_web::test]
async fn models_and_agents_come_a_page_at_a_time() {
    let clock = Arc::new(ManualClock::new(start_time()));
    let (muster, _sim, registry) = tree(0, clock).await;
    let (small, large) = (ModelUuid::from_u128(1), ModelUuid::from_u128(2));
    connect_three(&muster, small).await;
    for n in 1..=12u64 {
        muster
            .presence()
            .connect(
                &server(0),
                &large,
                &agent(&format!("unit-wordpress-{n}")),
                100 + n,
                false,
                "",
            )
            .await
            .unwrap();
    }
    let app = service(&muster, registry, History::new()).await;

    let (status, page) = get(&app, "/api/models?limit=1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(strings(&page["models"], "model"), [small.to_string()]);
    assert_eq!(
        (page["total"].as_u64(), page["matched"].as_u64()),
        (Some(2), Some(2))
    );
    // The totals are of every model, not of the page.
    assert_eq!(page["totals"]["alive"], 14);
    assert_eq!(page["totals"]["missing"], 1);
    assert_eq!(page["totals"]["agents"], 15);
    assert_eq!(page["totals"]["connections"], 15);
    let (_, page) = get(
        &app,
        &format!("/api/models?filter={}", &large.to_string()[30..]),
    )
    .await;
    assert_eq!(strings(&page["models"], "model"), [large.to_string()]);
    bad(
        &app,
        "/api/models?offset=x",
        "offset",
        "parameter `offset`: \"x\" is not a non-negative integer",
    )
    .await;

    let (_, page) = get(&app, &format!("/api/presence?model={large}&limit=5")).await;
    let agents = strings(&page["agents"], "agent");
    let expected: Vec<String> = (1..=5).map(|n| format!("unit-wordpress-{n}")).collect();
    assert_eq!(agents, expected, "natural order");
    assert_eq!(page["total"], 12);
    assert_eq!(page["count"], 12, "the count is of the model's connections");
    // The connections of the agents answered, and no others.
    let mut connected = strings(&page["connections"], "agent");
    connected.sort();
    let mut expected = expected.clone();
    expected.sort();
    assert_eq!(connected, expected);

    let (_, page) = get(
        &app,
        &format!("/api/presence?model={large}&filter=wordpress-1"),
    )
    .await;
    assert_eq!(
        strings(&page["agents"], "agent"),
        [
            "unit-wordpress-1",
            "unit-wordpress-10",
            "unit-wordpress-11",
            "unit-wordpress-12"
        ]
    );
    assert_eq!(page["matched"], 4);
    assert_eq!(page["connections"].as_array().unwrap().len(), 4);
    let (_, page) = get(&app, &format!("/api/presence?model={large}")).await;
    assert_eq!(page["agents"].as_array().unwrap().len(), 12);
    assert_eq!(page["connections"].as_array().unwrap().len(), 12);
    bad(
        &app,
        &format!("/api/presence?model={large}&limit=ten"),
        "limit",
        "parameter `limit`: \"ten\" is not a non-negative integer",
    )
    .await;
    muster.shutdown();
}
