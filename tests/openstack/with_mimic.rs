//! The OpenStack environ against mimic: statuses, addresses, gaps, paging
//! and what a batch costs, a refused credential, and the failures a proxy
//! in front of mimic injects.

use muster::error::{ErrorKind, PollError};
use muster::provider::{
    Address, AddressScope, Environ, InstanceId, InstanceStatus, InstanceStatusInfo, check_instances,
};
use serde_json::json;

use crate::fault_proxy::Canned;
use crate::mimic::REGION;
use crate::plain_http::request;
use crate::support::{Cloud, SECRET};

fn ids(ids: &[String]) -> Vec<InstanceId> {
    ids.iter().map(|id| InstanceId::from(id.as_str())).collect()
}

/// The requests through the proxy since `from` whose first line holds
/// `part`.
fn requests_of(cloud: &Cloud, from: usize, part: &str) -> Vec<String> {
    cloud.proxy.request_lines()[from..]
        .iter()
        .filter(|line| line.contains(part))
        .cloned()
        .collect()
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn statuses_and_addresses_come_back_as_mimic_has_them() {
    let cloud = Cloud::start("alice", "tenant-a");
    let made = cloud.servers("web", 6, json!({}));
    cloud.mimic.set_status(
        &cloud.account,
        &[
            (&made[1], "SHUTOFF"),
            (&made[2], "SUSPENDED"),
            (&made[3], "PAUSED"),
            (&made[4], "RESCUE"),
            (&made[5], "ERROR"),
        ],
    );
    let environ = cloud.environ();
    let found = environ.instances(&ids(&made)).await.unwrap();
    let statuses: Vec<InstanceStatusInfo> = found
        .iter()
        .map(|i| i.as_ref().unwrap().status.clone())
        .collect();
    use InstanceStatus::*;
    assert_eq!(
        statuses,
        [
            InstanceStatusInfo::new(Running, ""),
            InstanceStatusInfo::new(Stopped, ""),
            InstanceStatusInfo::new(Stopped, "SUSPENDED"),
            InstanceStatusInfo::new(Stopped, "PAUSED"),
            InstanceStatusInfo::new(Unknown, "RESCUE"),
            InstanceStatusInfo::new(ProvisioningError, "ERROR"),
        ]
    );

    // The addresses as mimic holds them: its private network's first,
    // then its public IPv4 and IPv6 addresses.
    let (_, text) = request(
        cloud.mimic.addr(),
        "GET",
        &format!("{}/servers/{}", cloud.account.compute, made[0]),
        &[("X-Auth-Token", &cloud.account.token)],
        None,
    )
    .unwrap();
    let server: serde_json::Value = serde_json::from_str(&text).unwrap();
    let addr = |network: &str, at: usize| {
        server["server"]["addresses"][network][at]["addr"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let expected = vec![
        Address::new(addr("private", 0), AddressScope::CloudLocal),
        Address::new(addr("public", 0), AddressScope::Public),
        Address::new(addr("public", 1), AddressScope::Public),
    ];
    let first = found[0].as_ref().unwrap();
    assert_eq!(first.id.as_str(), made[0]);
    assert_eq!(first.addresses, expected);

    // mimic's network service serves no ports: the interfaces are Nova's.
    let lists = environ.network_interfaces(&ids(&made[..2])).await.unwrap();
    assert_eq!(lists.len(), 2);
    let interfaces = &lists[0];
    assert_eq!(interfaces.len(), 2, "{interfaces:?}");
    assert_eq!(interfaces[0].device_index, 0);
    assert_eq!(interfaces[0].addresses, expected[..1]);
    assert_eq!(interfaces[1].addresses, expected[1..]);
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn a_building_server_is_allocating_and_a_failed_build_an_error() {
    let cloud = Cloud::start("bob", "tenant-b");
    let building = cloud.servers("slow", 1, json!({"server_building": "3600"}));
    let failed = cloud.servers("doomed", 1, json!({"server_error": "1"}));
    let asked = ids(&[building[0].clone(), failed[0].clone()]);
    let found = cloud.environ().instances(&asked).await.unwrap();
    assert_eq!(
        found[0].as_ref().unwrap().status,
        InstanceStatusInfo::new(InstanceStatus::Allocating, "")
    );
    assert_eq!(
        found[1].as_ref().unwrap().status,
        InstanceStatusInfo::new(InstanceStatus::ProvisioningError, "ERROR")
    );
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn a_deleted_server_becomes_a_gap() {
    let cloud = Cloud::start("carol", "tenant-c");
    let made = cloud.servers("short-lived", 3, json!({}));
    cloud.mimic.delete_server(&cloud.account, &made[1]);
    let environ = cloud.environ();
    let unknown = "00000000-0000-0000-0000-000000000000".to_owned();
    let asked = ids(&[made[0].clone(), made[1].clone(), unknown, made[2].clone()]);
    let found = environ.instances(&asked).await.unwrap();
    let known: Vec<bool> = found.iter().map(Option::is_some).collect();
    assert_eq!(known, [true, false, false, true]);
    assert!(matches!(
        check_instances(&found),
        Err(PollError::PartialInstances {
            missing: 2,
            asked: 4
        })
    ));
    // One deleted id alone is asked by id, and is not found either.
    let error = environ.instances(&ids(&made[1..2])).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NoInstances);
    let lists = environ.network_interfaces(&asked).await.unwrap();
    assert!(lists[1].is_empty() && lists[2].is_empty());
    assert!(!lists[0].is_empty() && !lists[3].is_empty());
}

/// docs/performance.md's figure: a batch costs the list pages it reads.
#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn two_hundred_and_fifty_machines_cost_paged_list_calls_not_one_each() {
    let cloud = Cloud::start("dave", "tenant-d");
    let made = cloud.servers("node", 250, json!({}));
    let environ = cloud.environ();
    // Signed in once, before counting.
    environ.instances(&ids(&made[..1])).await.unwrap();
    let start = cloud.proxy.request_lines().len();

    // The gateway asks at most 100 ids a call: three batches, each one
    // page of the project's 250 servers (page_size 1000).
    for batch in made.chunks(100) {
        let found = environ.instances(&ids(batch)).await.unwrap();
        assert!(found.iter().all(Option::is_some));
    }
    let lists = requests_of(&cloud, start, "/servers/detail?limit=1000");
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert_eq!(cloud.proxy.request_lines().len() - start, 3);

    // Interfaces: the ports endpoint is tried once (mimic answers 404),
    // then each batch is one page of Nova's servers again.
    let start = cloud.proxy.request_lines().len();
    for batch in made.chunks(100) {
        let lists = environ.network_interfaces(&ids(batch)).await.unwrap();
        assert!(lists.iter().all(|l| !l.is_empty()));
    }
    assert_eq!(requests_of(&cloud, start, "/v2.0/ports").len(), 1);
    assert_eq!(requests_of(&cloud, start, "/servers/detail").len(), 3);
    assert_eq!(cloud.proxy.request_lines().len() - start, 4);

    // With pages of 100, a call reads pages until it has seen every id:
    // the last 50 made are on the third page.
    let mut config = cloud.config();
    config.page_size = 100;
    let paged = muster::openstack::OpenStackEnviron::new(&config).unwrap();
    paged.instances(&ids(&made[..1])).await.unwrap();
    let start = cloud.proxy.request_lines().len();
    paged.instances(&ids(&made[..100])).await.unwrap();
    assert_eq!(requests_of(&cloud, start, "/servers/detail").len(), 1);
    let start = cloud.proxy.request_lines().len();
    let found = paged.instances(&ids(&made[200..])).await.unwrap();
    assert!(found.iter().all(Option::is_some));
    let pages = requests_of(&cloud, start, "/servers/detail");
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(
        pages[1].contains(&format!("marker={}", made[99])),
        "{pages:?}"
    );
    assert!(
        pages[2].contains(&format!("marker={}", made[199])),
        "{pages:?}"
    );
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn a_refused_credential_is_unauthorised_and_a_401_signs_in_again_once() {
    let cloud = Cloud::start("erin", "tenant-e");
    let made = cloud.servers("vm", 1, json!({}));
    let asked = ids(&made);

    // Keystone refuses the user: unauthorised, saying whose credential.
    let refusal = cloud.mimic.refuse_users("erin", "account locked");
    let environ = cloud.environ();
    let error = environ.instances(&asked).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorised);
    let message = error.to_string();
    assert!(
        message.contains("refused the credential of cloud \"mimic\""),
        "{message}"
    );
    assert!(message.contains("account locked"), "{message}");
    assert!(!format!("{message} {error:?} {environ:?}").contains(SECRET));
    cloud.mimic.accept_users_again(&refusal);
    environ.instances(&asked).await.unwrap();

    // Nova refuses the token once: the environ signs in again, once.
    let start = cloud.proxy.request_lines().len();
    cloud.proxy.answer_next(
        1,
        Canned::new(
            401,
            r#"{"unauthorized": {"message": "token expired", "code": 401}}"#,
        ),
    );
    environ.instances(&asked).await.unwrap();
    let lines: Vec<String> = cloud.proxy.request_lines()[start..].to_vec();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("GET ") && lines[1].starts_with("POST /identity/v2.0/tokens"));
    assert!(lines[2].starts_with("GET "), "{lines:?}");

    // Refused again after signing in again: unauthorised, not a loop.
    let start = cloud.proxy.request_lines().len();
    cloud.proxy.answer_with(Some(Canned::new(401, "{}")));
    let error = environ.instances(&asked).await.unwrap_err();
    cloud.proxy.answer_with(None);
    assert_eq!(error.kind(), ErrorKind::Unauthorised, "{error}");
    assert_eq!(cloud.proxy.request_lines().len() - start, 2);
    let error = environ.network_interfaces(&asked).await;
    assert!(error.is_ok(), "{error:?}");

    // 403 is unauthorised at once.
    cloud.proxy.answer_next(
        1,
        Canned::new(
            403,
            r#"{"forbidden": {"message": "Policy doesn't allow it"}}"#,
        ),
    );
    let error = environ.instances(&asked).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "cloud denied access: HTTP 403: Policy doesn't allow it"
    );
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn throttling_and_server_errors_say_what_and_where() {
    let cloud = Cloud::start("frank", "tenant-f");
    let made = cloud.servers("vm", 2, json!({}));
    let environ = cloud.environ();
    let asked = ids(&made);
    environ.instances(&asked).await.unwrap();

    for (status, retry_after, wait) in [
        (429, Some("7"), Some(7)),
        (429, None, None),
        (413, Some("30"), Some(30)),
    ] {
        let mut canned = Canned::new(status, r#"{"overLimit": {"message": "slow down"}}"#);
        if let Some(value) = retry_after {
            canned = canned.header("Retry-After", value);
        }
        cloud.proxy.answer_next(1, canned);
        let error = environ.instances(&asked).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Throttled, "{status}: {error}");
        assert_eq!(
            error.retry_after(),
            wait.map(std::time::Duration::from_secs)
        );
    }

    cloud
        .proxy
        .answer_next(1, Canned::new(503, "<html>Service Unavailable</html>"));
    let error = environ.instances(&asked).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(
        error.to_string(),
        format!(
            "fetching instances from OpenStack region {REGION} at {}{}/servers/detail?limit=1000: \
             HTTP 503: <html>Service Unavailable</html>",
            cloud.proxy.url(),
            cloud.account.compute
        )
    );
    cloud.proxy.answer_next(
        1,
        Canned::new(500, r#"{"computeFault": {"message": "boom"}}"#),
    );
    let error = environ.network_interfaces(&asked).await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("fetching network interfaces from OpenStack region ORD at ")
            && error.to_string().ends_with(": HTTP 500: boom"),
        "{error}"
    );
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn a_closed_or_silent_keystone_names_itself_and_the_region() {
    let cloud = Cloud::start("gina", "tenant-g");
    let asked = vec![InstanceId::from("00000000-0000-0000-0000-000000000001")];
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut config = cloud.config();
    config.cloud = None;
    config.auth_url = Some(format!("http://{closed}/v2.0"));
    let environ = muster::openstack::OpenStackEnviron::new(&config).unwrap();
    let error = environ.instances(&asked).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    assert!(
        error.to_string().starts_with(&format!(
            "fetching instances: signing in to Keystone at http://{closed}/v2.0 for OpenStack \
             region {REGION}: cannot connect"
        )),
        "{error}"
    );

    // A Keystone that takes the connection and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let (stream, _) = silent.accept().unwrap();
        std::thread::sleep(std::time::Duration::from_secs(3));
        drop(stream);
    });
    config.auth_url = Some(format!("http://{addr}/v2.0"));
    config.connect_timeout = std::time::Duration::from_millis(500);
    config.operation_timeout = std::time::Duration::from_millis(500);
    let environ = muster::openstack::OpenStackEnviron::new(&config).unwrap();
    let error = environ.network_interfaces(&asked).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "fetching network interfaces: signing in to Keystone at http://{addr}/v2.0 for \
             OpenStack region {REGION}: no answer within the operation timeout of 500ms"
        )
    );
    held.join().unwrap();
}
