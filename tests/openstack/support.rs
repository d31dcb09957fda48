//! What every OpenStack test needs: mimic behind a fault proxy, and an
//! environ signing in through the proxy with a credential file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use muster::openstack::{OpenStackConfig, OpenStackEnviron};

use crate::fault_proxy::FaultProxy;
use crate::mimic::{Account, COMPUTE, Mimic, REGION};

/// The password the tests use; no message or `Debug` form may show it.
pub const SECRET: &str = "muster-os-secret-7f3e1a";

/// A temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("muster-os-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("creating a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// mimic, a proxy in front of it, and a user's account on it.
pub struct Cloud {
    pub mimic: Mimic,
    pub proxy: FaultProxy,
    pub account: Account,
    pub user: String,
    pub tenant: String,
    pub dir: TempDir,
}

impl Cloud {
    /// mimic behind a proxy, with `user` of `tenant` signed in.
    pub fn start(user: &str, tenant: &str) -> Cloud {
        let mimic = Mimic::start();
        let proxy = FaultProxy::start_rewriting(mimic.addr());
        let account = mimic.account(user, tenant);
        Cloud {
            mimic,
            proxy,
            account,
            user: user.to_owned(),
            tenant: tenant.to_owned(),
            dir: TempDir::new(),
        }
    }

    /// A config for the environ: mimic's Keystone v2.0 through the proxy,
    /// the credential in a clouds.yaml-format file.
    pub fn config(&self) -> OpenStackConfig {
        self.config_for(&self.user, &self.tenant)
    }

    pub fn config_for(&self, user: &str, tenant: &str) -> OpenStackConfig {
        let file = self.dir.0.join(format!("{user}-{tenant}.yaml"));
        std::fs::write(
            &file,
            format!(
                "clouds:\n  mimic:\n    auth:\n      auth_url: {}/identity/v2.0\n      \
                 username: {user}\n      password: {SECRET}\n      tenant_name: {tenant}\n    \
                 identity_api_version: 2\n",
                self.proxy.url()
            ),
        )
        .expect("writing the credential file");
        let mut config = OpenStackConfig::with_cloud(REGION, "mimic");
        config.credential_file = Some(file);
        config.compute_service_name = Some(COMPUTE.to_owned());
        config
    }

    pub fn environ(&self) -> OpenStackEnviron {
        OpenStackEnviron::new(&self.config()).expect("a valid configuration")
    }

    /// Makes `count` servers named `name-N` with `metadata`.
    pub fn servers(&self, name: &str, count: usize, metadata: serde_json::Value) -> Vec<String> {
        (0..count)
            .map(|n| {
                self.mimic
                    .create_server(&self.account, &format!("{name}-{n}"), metadata.clone())
            })
            .collect()
    }
}
