//! The OpenStack provider through the provider contract (docs/spec.md
//! §12.1), on mimic behind the fault proxy, which counts the requests and
//! answers OpenStack's failures when the suite injects them.

use std::sync::Arc;

use muster::openstack::OpenStackEnviron;
use muster::provider::conformance::{Conformance, Fault, Rule, run};
use muster::provider::{Environ, InstanceId};
use serde_json::json;

use crate::fault_proxy::Canned;
use crate::mimic::REGION;
use crate::support::{Cloud, SECRET};

struct OpenStackFixture {
    cloud: Cloud,
    environ: OpenStackEnviron,
}

impl Conformance for OpenStackFixture {
    fn environ(&self) -> Arc<dyn Environ> {
        Arc::new(self.environ.clone())
    }

    async fn create_instances(&self, count: usize) -> Result<Vec<InstanceId>, String> {
        let made = self.cloud.servers("conformance", count, json!({}));
        Ok(made.into_iter().map(InstanceId::from).collect())
    }

    async fn delete_instance(&self, id: &InstanceId) -> Result<(), String> {
        self.cloud
            .mimic
            .delete_server(&self.cloud.account, id.as_str());
        Ok(())
    }

    fn unknown_id(&self) -> InstanceId {
        InstanceId::from("00000000-0000-0000-0000-000000000000")
    }

    async fn inject(&self, fault: Fault) -> Result<bool, String> {
        let canned = match fault {
            Fault::Throttle { retry_after } => {
                Canned::new(429, r#"{"overLimit": {"message": "Rate limit exceeded"}}"#)
                    .header("Retry-After", &retry_after.as_secs().to_string())
            }
            Fault::RefuseCredential => Canned::new(
                401,
                r#"{"unauthorized": {"message": "The request you have made requires authentication.", "code": 401}}"#,
            ),
            Fault::ServerError => Canned::new(500, r#"{"computeFault": {"message": "injected"}}"#),
            _ => return Ok(false),
        };
        self.cloud.proxy.answer_with(Some(canned));
        Ok(true)
    }

    async fn clear(&self, _: Fault) -> Result<(), String> {
        self.cloud.proxy.answer_with(None);
        Ok(())
    }

    async fn requests(&self) -> Option<u64> {
        Some(self.cloud.proxy.requests())
    }

    fn secret(&self) -> Option<String> {
        Some(SECRET.to_owned())
    }

    fn error_names(&self) -> Vec<String> {
        vec![format!("region {REGION}"), self.cloud.proxy.url()]
    }
}

#[cfg_attr(missing_mimic, ignore = "needs mimic")]
#[tokio::test]
async fn openstack_keeps_the_provider_contract() {
    let cloud = Cloud::start("conformance", "tenant-conformance");
    let environ = cloud.environ();
    let fixture = OpenStackFixture { cloud, environ };
    let report = run(&fixture).await;
    report.assert_conforms(&[Rule::IncompleteAnswersAlign]);
}
