//! The EC2 provider through the provider contract (docs/spec.md §12.1),
//! against moto behind a fault proxy that counts its requests and answers
//! EC2's own error codes when the suite injects a fault.

use std::net::SocketAddr;
use std::sync::Arc;

use muster::ec2::Ec2Environ;
use muster::provider::conformance::{Conformance, Fault, Rule, run};
use muster::provider::{Environ, InstanceId};

use crate::fault_proxy::{Canned, FaultProxy};
use crate::moto::Moto;
use crate::support::{SECRET, TempDir, environ};
use crate::with_moto::run_instances;

struct Ec2Fixture {
    client: aws_sdk_ec2::Client,
    proxy: FaultProxy,
    environ: Ec2Environ,
    _dir: TempDir,
}

fn ec2_error(status: u16, code: &str) -> Canned {
    Canned::new(
        status,
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
             <Code>{code}</Code><Message>injected {code}</Message></Error></Errors>\
             <RequestID>5d2a3b4c-0000-0000-0000-000000000000</RequestID></Response>"
        ),
    )
    .header("Content-Type", "text/xml;charset=UTF-8")
}

impl Conformance for Ec2Fixture {
    fn environ(&self) -> Arc<dyn Environ> {
        Arc::new(self.environ.clone())
    }

    async fn create_instances(&self, count: usize) -> Result<Vec<InstanceId>, String> {
        let count = i32::try_from(count).map_err(|e| e.to_string())?;
        let made = run_instances(&self.client, count).await;
        Ok(made.into_iter().map(InstanceId::from).collect())
    }

    async fn delete_instance(&self, id: &InstanceId) -> Result<(), String> {
        self.client
            .terminate_instances()
            .instance_ids(id.as_str())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    }

    fn unknown_id(&self) -> InstanceId {
        InstanceId::from("i-0123456789abcdef0")
    }

    async fn inject(&self, fault: Fault) -> Result<bool, String> {
        let canned = match fault {
            Fault::Throttle { .. } => ec2_error(400, "RequestLimitExceeded"),
            Fault::RefuseCredential => ec2_error(401, "AuthFailure"),
            Fault::ServerError => ec2_error(500, "InternalError"),
            _ => return Ok(false),
        };
        self.proxy.answer_with(Some(canned));
        Ok(true)
    }

    async fn clear(&self, _: Fault) -> Result<(), String> {
        self.proxy.answer_with(None);
        Ok(())
    }

    async fn requests(&self) -> Option<u64> {
        Some(self.proxy.requests())
    }

    /// EC2's throttling answers say no wait.
    fn throttling_says_when(&self) -> bool {
        false
    }

    fn secret(&self) -> Option<String> {
        Some(SECRET.to_owned())
    }

    fn error_names(&self) -> Vec<String> {
        vec!["us-east-1".to_owned(), self.proxy.url()]
    }
}

#[cfg_attr(missing_moto, ignore = "needs moto_server")]
#[tokio::test]
async fn ec2_keeps_the_provider_contract() {
    let moto = Moto::start();
    let upstream: SocketAddr = moto
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("moto's loopback address");
    let proxy = FaultProxy::start(upstream);
    let client = moto.client();
    let (environ, dir) = environ(&proxy.url()).await;
    let fixture = Ec2Fixture {
        client,
        proxy,
        environ,
        _dir: dir,
    };
    let report = run(&fixture).await;
    report.assert_conforms(&[Rule::IncompleteAnswersAlign]);
}
