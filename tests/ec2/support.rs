//! What every EC2 test needs: a credential file and a configuration for a
//! local endpoint.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
use muster::ec2::{Ec2Config, Ec2Environ};

/// The secret the tests use; no message or `Debug` form may show it.
pub const SECRET: &str = "muster-test-secret-b1c2d3";

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("muster-ec2-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A configuration for `endpoint` in us-east-1, its key in a credential
/// file under `dir`.
pub fn config(dir: &TempDir, endpoint: &str) -> Ec2Config {
    let file = dir.0.join("credentials");
    std::fs::write(
        &file,
        format!(
            "[default]\naws_access_key_id = AKIDMUSTERTEST\naws_secret_access_key = {SECRET}\n"
        ),
    )
    .expect("writing the credential file");
    Ec2Config {
        endpoint: Some(endpoint.to_owned()),
        credential_file: Some(file),
        ..Ec2Config::new("us-east-1")
    }
}

/// The environ for `endpoint`, with its temporary directory.
pub async fn environ(endpoint: &str) -> (Ec2Environ, TempDir) {
    let dir = TempDir::new();
    let environ = Ec2Environ::new(&config(&dir, endpoint))
        .await
        .expect("a valid configuration");
    (environ, dir)
}

impl crate::moto::Moto {
    /// A plain SDK client on moto, to set up instances.
    pub fn client(&self) -> aws_sdk_ec2::Client {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let config = aws_sdk_ec2::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url(self.url())
            .http_client(http)
            .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
            .build();
        aws_sdk_ec2::Client::from_conf(config)
    }
}
