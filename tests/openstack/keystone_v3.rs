//! Keystone v3 for real: a user and a project in a domain of their own, the
//! token kept until shortly before it expires, a wrong password refused;
//! Nova is mimic's, reached through the catalog Keystone answers.

use std::time::Duration;

use muster::error::ErrorKind;
use muster::openstack::{OpenStackConfig, OpenStackEnviron};
use muster::provider::{Environ, InstanceId, InstanceStatus};
use serde_json::json;

use crate::fault_proxy::FaultProxy;
use crate::keystone::{Keystone, REGION};
use crate::support::{Cloud, SECRET};

fn config(cloud: &Cloud, keystone: &FaultProxy, name: &str, password: &str) -> OpenStackConfig {
    let file = cloud.dir.0.join(format!("{name}.yaml"));
    std::fs::write(
        &file,
        format!(
            "clouds:\n  keystone:\n    auth:\n      auth_url: {}\n      username: muster\n      \
             password: {password}\n      project_name: infra\n      user_domain_name: Ops\n      \
             project_domain_name: Ops\n    identity_api_version: 3\n",
            keystone.url()
        ),
    )
    .unwrap();
    let mut config = OpenStackConfig::with_cloud(REGION, "keystone");
    config.credential_file = Some(file);
    config
}

#[cfg_attr(missing_keystone, ignore = "needs Keystone")]
#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn keystone_v3_signs_in_a_domain_s_user_and_keeps_the_token_until_shortly_before_it_expires()
{
    let cloud = Cloud::start("v3", "tenant-v3");
    // Tokens live 8 s: kept 7.2 s (a tenth of their life before expiry).
    let keystone = Keystone::start(Duration::from_secs(8));
    keystone.add_user("Ops", "infra", "muster", SECRET);
    keystone.add_service(
        "compute",
        "nova",
        &format!("{}{}", cloud.proxy.url(), cloud.account.compute),
    );
    let front = FaultProxy::start(keystone.addr());
    let sign_ins = || {
        front
            .request_lines()
            .iter()
            .filter(|l| l.starts_with("POST /v3/auth/tokens"))
            .count()
    };
    let made = cloud.servers("v3", 2, json!({}));
    let asked: Vec<InstanceId> = made
        .iter()
        .map(|id| InstanceId::from(id.as_str()))
        .collect();
    let environ = OpenStackEnviron::new(&config(&cloud, &front, "right", SECRET)).unwrap();

    let found = environ.instances(&asked).await.unwrap();
    assert!(
        found
            .iter()
            .all(|i| i.as_ref().unwrap().status.status == InstanceStatus::Running)
    );
    environ.network_interfaces(&asked).await.unwrap();
    environ.instances(&asked).await.unwrap();
    assert_eq!(sign_ins(), 1, "one token for every call while it lasts");

    tokio::time::sleep(Duration::from_millis(7500)).await;
    environ.instances(&asked).await.unwrap();
    assert_eq!(sign_ins(), 2, "signed in again before the token expired");

    let wrong =
        OpenStackEnviron::new(&config(&cloud, &front, "wrong", "not-the-password")).unwrap();
    let error = wrong.instances(&asked).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unauthorised, "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&format!(
            "Keystone at {}/v3 refused the credential",
            front.url()
        )),
        "{message}"
    );
    assert!(!message.contains(SECRET) && !message.contains("not-the-password"));
}
