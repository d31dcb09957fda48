//! Models on OpenStack through musterd: against mimic (Rackspace's
//! OpenStack double) run as a child process behind a loopback proxy, the
//! models read from a config file as `musterd run` reads it, their
//! machines registered over the registry's HTTP API (docs/spec.md §10.8).
//! Built with the `openstack` feature only. Real time, with a short
//! schedule: the tree waits on a real process, which tokio's paused clock
//! would outrun.

#[path = "../../tests/common/fault_proxy.rs"]
mod fault_proxy;
#[path = "../../tests/openstack/mimic.rs"]
#[allow(dead_code)]
mod mimic;
#[path = "../../tests/openstack/support.rs"]
#[allow(dead_code)]
mod openstack;
#[path = "../../tests/openstack/plain_http.rs"]
mod plain_http;
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mimic::{COMPUTE, REGION};
use musterd::Hosted;
use openstack::{Cloud, SECRET};
use serde_json::{Value, json};
use slog::{Logger, o};
use support::daemon::Musterd;
use support::shared::request;

const CAROL: &str = "4f1c6a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";
const ALICE: &str = "7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d";
const BOB: &str = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f";

/// The schedule in tenths: 100 ms doubling to 800 ms, then 5 s; a gateway
/// that batches within 20 ms.
const SECTIONS: &str = "[machines.poll]\nshort_poll = \"100ms\"\nshort_poll_cap = \"800ms\"\n\
     long_poll = \"5s\"\n\
     [gateway]\nwindow = \"20ms\"\ncalls_per_second = 100.0\nburst = 20\n\
     [http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"127.0.0.1:0\"\n\
     [store]\npath = \":memory:\"\n";

/// How a model's entry names its Keystone.
enum Keystone {
    /// `os_cloud`: the cloud of clouds.yaml in its credential file.
    Cloud,
    /// `auth_url`: Keystone's URL, the user from its credential file.
    Url,
}

/// A `[[models]]` entry of `user` of `tenant` on mimic, its credential
/// file (a clouds.yaml) named relative to the config file's folder.
fn entry(cloud: &Cloud, uuid: &str, user: &str, tenant: &str, keystone: Keystone) -> String {
    let file = cloud
        .config_for(user, tenant)
        .credential_file
        .expect("a credential file");
    let file = file.file_name().unwrap().to_str().unwrap();
    let keystone = match keystone {
        Keystone::Cloud => "os_cloud = \"mimic\"".to_owned(),
        Keystone::Url => format!("auth_url = \"{}/identity/v2.0\"", cloud.proxy.url()),
    };
    format!(
        "[[models]]\nuuid = \"{uuid}\"\nname = \"{user}\"\ncloud = \"openstack\"\n\
         region = \"{REGION}\"\n{keystone}\ncredential_file = \"{file}\"\n\
         compute_service_name = \"{COMPUTE}\"\n"
    )
}

/// `muster.toml` beside the credential files, holding `models`.
fn config_file(cloud: &Cloud, models: &str) -> PathBuf {
    let path = cloud.dir.0.join("muster.toml");
    std::fs::write(&path, format!("{SECTIONS}{models}")).unwrap();
    path
}

/// Machine `id` of `model` as the registry's list answers it.
fn machine(port: u16, model: &str, id: &str) -> Option<Value> {
    let (status, list) = request(port, "GET", &format!("/api/models/{model}/machines"), "");
    assert_eq!(status, 200, "{list}");
    list["machines"]
        .as_array()?
        .iter()
        .find(|m| m["tag"] == format!("machine-{id}").as_str())
        .cloned()
}

/// Waits (real time, at most 30 s) until `check` holds of machine `id` of
/// `model`, and answers it.
fn until(port: u16, model: &str, id: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = machine(port, model, id);
        if let Some(seen) = &seen
            && check(seen)
        {
            return seen.clone();
        }
        assert!(
            Instant::now() < deadline,
            "machine {id} of {model} never got there: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Registers machine `id` of `model` on server `server` over HTTP.
fn register(port: u16, model: &str, id: &str, server: &str, agent: &str) {
    let body = json!({"instance_id": server, "agent_status": agent}).to_string();
    let path = format!("/api/models/{model}/machines/{id}");
    let (status, answer) = request(port, "PUT", &path, &body);
    assert_eq!(status, 201, "{answer}");
}

/// The addresses mimic holds for `server`, as `value`s: its private
/// network's, then its public ones.
fn mimic_addresses(cloud: &Cloud, server: &str) -> Vec<String> {
    let (_, text) = plain_http::request(
        cloud.mimic.addr(),
        "GET",
        &format!("{}/servers/{server}", cloud.account.compute),
        &[("X-Auth-Token", &cloud.account.token)],
        None,
    )
    .expect("mimic answers");
    let server: Value = serde_json::from_str(&text).unwrap();
    ["private", "public"]
        .iter()
        .flat_map(|network| {
            server["server"]["addresses"][network]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|address| address["addr"].as_str().unwrap().to_owned())
        .collect()
}

fn values(addresses: &Value) -> Vec<String> {
    addresses
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["value"].as_str().unwrap().to_owned())
        .collect()
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[test]
fn servers_registered_over_http_reach_running_with_mimic_s_addresses() {
    let cloud = Cloud::start("carol", "tenant-run");
    let servers = cloud.servers("web", 2, json!({}));
    cloud
        .mimic
        .set_status(&cloud.account, &[(&servers[1], "SHUTOFF")]);
    let config = config_file(
        &cloud,
        &entry(&cloud, CAROL, "carol", "tenant-run", Keystone::Cloud),
    );
    let mut musterd = Musterd::start(&["run", "--config", config.to_str().unwrap()]);
    let port: u16 = musterd
        .http_addr()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    register(port, CAROL, "0", &servers[0], "started");
    register(port, CAROL, "1", &servers[1], "down");
    // An id mimic never made: answered unknown, the rest of its batch
    // answered.
    register(
        port,
        CAROL,
        "2",
        "00000000-0000-4000-8000-000000000000",
        "down",
    );

    let running = until(port, CAROL, "0", |m| m["phase"] == "long");
    assert_eq!(running["instance_status"]["status"], "running", "{running}");
    assert_eq!(running["instance_id"], servers[0].as_str());
    let held = mimic_addresses(&cloud, &servers[0]);
    assert_eq!(held.len(), 3, "one private address, two public ones");
    assert_eq!(values(&running["addresses"]), held, "{running}");
    let scopes: Vec<&Value> = running["addresses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["scope"])
        .collect();
    assert_eq!(scopes[0], "local-cloud", "{running}");
    assert!(scopes[1..].iter().all(|s| *s == "public"), "{running}");
    until(port, CAROL, "1", |m| {
        m["instance_status"]["status"] == "stopped"
    });
    until(port, CAROL, "2", |m| {
        m["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("the provider does not know instance"))
    });

    // The model polls through one gateway, named for its cloud and region.
    let report = musterd.get("/api/report").to_string();
    assert!(report.contains("openstack-ORD"), "{report}");
    assert_eq!(musterd.terminate(), Some(0));
    // No line it wrote, and not its report, shows the password.
    let written: Vec<String> = musterd
        .stdout
        .try_iter()
        .chain(musterd.stderr.try_iter())
        .collect();
    assert!(!written.is_empty());
    for text in written.iter().chain([&report]) {
        assert!(!text.contains(SECRET), "{text}");
    }
}

/// Registers machine `id` of `model` of an in-process daemon on server
/// `server`, its agent started, over HTTP, off the daemon's thread.
async fn hosted_register(hosted: &Hosted, model: &str, id: &str, server: &str) {
    let port = hosted.listen.port();
    let (model, id, server) = (model.to_owned(), id.to_owned(), server.to_owned());
    tokio::task::spawn_blocking(move || register(port, &model, &id, &server, "started"))
        .await
        .unwrap();
}

/// Machine `id` of `model` of an in-process daemon.
async fn hosted_machine(hosted: &Hosted, model: &str, id: &str) -> Value {
    let port = hosted.listen.port();
    let (model, id) = (model.to_owned(), id.to_owned());
    tokio::task::spawn_blocking(move || machine(port, &model, &id))
        .await
        .unwrap()
        .unwrap_or(Value::Null)
}

/// Waits (real time, at most `limit`) until `check` holds of machine `id`
/// of `model` of an in-process daemon; answers it, or what was last seen.
async fn hosted_until(
    hosted: &Hosted,
    model: &str,
    id: &str,
    limit: Duration,
    check: impl Fn(&Value) -> bool,
) -> Result<Value, Value> {
    let deadline = Instant::now() + limit;
    loop {
        let seen = hosted_machine(hosted, model, id).await;
        if check(&seen) {
            return Ok(seen);
        }
        if Instant::now() >= deadline {
            return Err(seen);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The daemon's config as `musterd run` reads it, hosted in-process.
async fn host(config: &std::path::Path) -> (Hosted, Logger) {
    let config = musterd::read_config(config).unwrap_or_else(|e| panic!("{e}"));
    let logger = Logger::root(slog::Discard, o!());
    let hosted = Hosted::start(&config, &logger)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (hosted, logger)
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[actix_web::test]
async fn a_building_server_keeps_its_machine_in_the_short_poll_until_it_is_active() {
    let cloud = Cloud::start("builder", "tenant-build");
    let building = cloud.servers("building", 1, json!({"server_building": "3600"}));
    let active = cloud.servers("active", 1, json!({}));
    let config = config_file(
        &cloud,
        &entry(&cloud, CAROL, "builder", "tenant-build", Keystone::Url),
    );
    let (hosted, logger) = host(&config).await;
    hosted_register(&hosted, CAROL, "0", &building[0]).await;
    hosted_register(&hosted, CAROL, "1", &active[0]).await;

    // The ACTIVE server's machine settles in the long phase; the building
    // one is allocating, polled on in the short phase, its interval
    // growing.
    let limit = Duration::from_secs(20);
    hosted_until(&hosted, CAROL, "1", limit, |m| m["phase"] == "long")
        .await
        .unwrap_or_else(|seen| panic!("the active machine did not settle: {seen}"));
    let build = hosted_until(&hosted, CAROL, "0", limit, |m| {
        m["polls"].as_u64().unwrap_or(0) >= 4
    })
    .await
    .unwrap_or_else(|seen| panic!("the building machine was not polled on: {seen}"));
    assert_eq!(build["phase"], "short", "{build}");
    assert_eq!(build["instance_status"]["status"], "allocating", "{build}");
    let interval = humantime::parse_duration(build["interval"].as_str().unwrap()).unwrap();
    assert!(interval > Duration::from_millis(100), "{build}");

    // ACTIVE at last: it runs, with its addresses, and settles.
    cloud
        .mimic
        .set_status(&cloud.account, &[(&building[0], "ACTIVE")]);
    let settled = hosted_until(&hosted, CAROL, "0", limit, |m| m["phase"] == "long")
        .await
        .unwrap_or_else(|seen| panic!("the machine made ACTIVE did not settle: {seen}"));
    assert_eq!(settled["instance_status"]["status"], "running");
    assert_eq!(
        values(&settled["addresses"]),
        mimic_addresses(&cloud, &building[0])
    );
    hosted.stop(&logger).await.unwrap();
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[actix_web::test]
async fn a_refused_credential_pauses_that_model_only() {
    let cloud = Cloud::start("bob", "tenant-shared");
    // Two users of one project, each the credential of a model of its own.
    let alice_account = cloud.mimic.account("alice", "tenant-shared");
    let alice_server = cloud
        .mimic
        .create_server(&alice_account, "alice-0", json!({}));
    let bob_server = cloud.servers("bob", 1, json!({}));
    let refusal = cloud.mimic.refuse_users("alice", "password expired");
    let models = format!(
        "{}{}",
        entry(&cloud, ALICE, "alice", "tenant-shared", Keystone::Url),
        entry(&cloud, BOB, "bob", "tenant-shared", Keystone::Cloud)
    );
    let config = config_file(&cloud, &models);
    let (hosted, logger) = host(&config).await;
    let registry = hosted.registry.clone().expect("a registry");
    hosted_register(&hosted, ALICE, "0", &alice_server).await;
    hosted_register(&hosted, BOB, "0", &bob_server[0]).await;
    // Two users, two accounts, two gateways.
    let gateways: Vec<String> = hosted
        .muster
        .gateways()
        .await
        .unwrap()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(gateways, ["openstack-ORD", "openstack-ORD-2"]);

    // Bob's model settles; Alice's is paused, its credential invalidated
    // once with Keystone's word, its machine not polled meanwhile.
    let limit = Duration::from_secs(20);
    hosted_until(&hosted, BOB, "0", limit, |m| m["phase"] == "long")
        .await
        .unwrap_or_else(|seen| panic!("bob's model did not settle: {seen}"));
    let alice = ALICE.parse().unwrap();
    let deadline = Instant::now() + limit;
    while registry.credential(alice).await.unwrap().valid {
        assert!(Instant::now() < deadline, "alice's credential stays valid");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let credential = registry.credential(alice).await.unwrap();
    assert!(
        credential.reason.contains("password expired"),
        "{credential:?}"
    );
    assert!(!credential.reason.contains(SECRET), "{credential:?}");
    assert!(
        registry
            .credential(BOB.parse().unwrap())
            .await
            .unwrap()
            .valid
    );
    let report = hosted
        .muster
        .model(&alice)
        .unwrap()
        .gateway()
        .await
        .unwrap();
    assert!(report.credential_paused, "{report:?}");
    assert_eq!(report.credential_invalidations, 1, "{report:?}");
    let bob_report = hosted
        .muster
        .model(&BOB.parse().unwrap())
        .unwrap()
        .gateway()
        .await
        .unwrap();
    assert!(!bob_report.credential_paused, "{bob_report:?}");
    let paused = hosted_machine(&hosted, ALICE, "0").await;
    assert_eq!(paused["polls"], 0, "{paused}");
    assert!(paused["instance_status"]["status"].is_null(), "{paused}");

    // Keystone takes Alice again and her credential is said valid: her
    // model polls and settles too, invalidated once in all.
    cloud.mimic.accept_users_again(&refusal);
    registry
        .set_credential_valid(alice, true, String::new())
        .await
        .unwrap();
    let resumed = hosted_until(&hosted, ALICE, "0", limit, |m| m["phase"] == "long")
        .await
        .unwrap_or_else(|seen| panic!("alice's model did not resume: {seen}"));
    assert_eq!(resumed["instance_status"]["status"], "running");
    let report = hosted
        .muster
        .model(&alice)
        .unwrap()
        .gateway()
        .await
        .unwrap();
    assert_eq!(report.credential_invalidations, 1, "{report:?}");
    hosted.stop(&logger).await.unwrap();
}
