//! What every EC2 test needs: a credential file and a configuration for a
//! local endpoint.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Whether a missing external tool must fail the test rather than skip it.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}
