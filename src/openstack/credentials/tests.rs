use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

const SECRET: &str = "s3cr3t-p4ss";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let dir =
            std::env::temp_dir().join(format!("muster-os-cred-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name: &str| vars.get(name).cloned()
}

const CLOUDS: &str = "clouds:
  prod:
    auth:
      auth_url: https://keystone.example.com:5000
      username: muster
      project_name: ops
      user_domain_name: Users
    region_name: RegionOne
    interface: internal
  legacy:
    auth:
      auth_url: http://keystone.example.com:5000/v2.0
      username: muster
      password: s3cr3t-p4ss
      tenant_name: ops
";

#[test]
fn a_cloud_of_clouds_yaml_with_its_secret_from_secure_yaml() {
    let dir = Dir::new("places");
    let clouds = dir.file("clouds.yaml", CLOUDS);
    let secure = dir.file(
        "secure.yaml",
        &format!("clouds:\n  prod:\n    auth:\n      password: {SECRET}\n"),
    );
    let vars = env(&[
        ("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap()),
        ("OS_CLIENT_SECURE_FILE", secure.to_str().unwrap()),
    ]);
    let config = OpenStackConfig::with_cloud("RegionOne", "prod");
    let credential = resolve(&config, &vars).unwrap();
    assert_eq!(credential.auth_url, "https://keystone.example.com:5000/v3");
    assert_eq!(credential.version, IdentityVersion::V3);
    assert_eq!(credential.password.expose(), SECRET);
    assert_eq!(credential.username.as_deref(), Some("muster"));
    assert_eq!(credential.user_domain_name.as_deref(), Some("Users"));
    assert_eq!(credential.user_domain_id, None);
    assert_eq!(credential.project_domain_id.as_deref(), Some("default"));
    assert_eq!(credential.interface.as_deref(), Some("internal"));
    assert!(
        credential.source.contains("cloud \"prod\""),
        "{}",
        credential.source
    );
    assert!(!format!("{credential:?}").contains(SECRET));

    let legacy = resolve(&OpenStackConfig::with_cloud("RegionOne", "legacy"), &vars).unwrap();
    assert_eq!(legacy.version, IdentityVersion::V2);
    assert_eq!(legacy.project_name.as_deref(), Some("ops"));
    assert_eq!(legacy.project_domain_id, None);
}

#[test]
fn a_credential_file_holds_the_cloud() {
    let dir = Dir::new("file");
    let file = dir.file("os.yaml", CLOUDS);
    let mut config = OpenStackConfig::with_cloud("RegionOne", "legacy");
    config.credential_file = Some(file.clone());
    let credential = resolve(&config, &env(&[])).unwrap();
    assert_eq!(credential.password.expose(), SECRET);

    // With auth_url, the file holds one cloud, and the config's URL wins.
    let one = dir.file(
        "one.yaml",
        &format!("clouds:\n  x:\n    auth: {{username: u, password: {SECRET}, project_id: p}}\n"),
    );
    let mut config = OpenStackConfig::with_auth_url("RegionOne", "http://127.0.0.1:5000/v2.0");
    config.credential_file = Some(one);
    let credential = resolve(&config, &env(&[])).unwrap();
    assert_eq!(credential.auth_url, "http://127.0.0.1:5000/v2.0");
    assert_eq!(credential.version, IdentityVersion::V2);
    config.credential_file = Some(file);
    let error = resolve(&config, &env(&[])).unwrap_err();
    assert_eq!(error.key, "credential_file");
    assert!(error.reason.contains("holds several clouds"), "{error}");
}

#[test]
fn the_os_environment_as_an_openrc_file_sets_it() {
    let vars = env(&[
        ("OS_USERNAME", "muster"),
        ("OS_PASSWORD", SECRET),
        ("OS_PROJECT_ID", "0123"),
        ("OS_USER_DOMAIN_ID", "d1"),
        ("OS_AUTH_URL", "http://ignored:5000/v3"),
    ]);
    let config = OpenStackConfig::with_auth_url("RegionOne", "https://keystone:5000/v3/");
    let credential = resolve(&config, &vars).unwrap();
    assert_eq!(credential.auth_url, "https://keystone:5000/v3");
    assert_eq!(credential.project_id.as_deref(), Some("0123"));
    assert_eq!(credential.user_domain_id.as_deref(), Some("d1"));
    assert_eq!(credential.source, "the OS_* environment");
}

#[test]
fn what_is_missing_is_named_never_the_secret() {
    let dir = Dir::new("missing");
    type Case<'a> = (OpenStackConfig, Vec<(&'a str, &'a str)>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            OpenStackConfig::with_auth_url("R", "https://k/v3"),
            vec![("OS_USERNAME", "u"), ("OS_PROJECT_ID", "p")],
            "auth_url",
            "OS_PASSWORD is missing",
        ),
        (
            OpenStackConfig::with_auth_url("R", "https://k/v3"),
            vec![("OS_PASSWORD", SECRET), ("OS_PROJECT_ID", "p")],
            "auth_url",
            "OS_USERNAME or OS_USER_ID is missing",
        ),
        (
            OpenStackConfig::with_auth_url("R", "https://k/v3"),
            vec![("OS_PASSWORD", SECRET), ("OS_USERNAME", "u")],
            "auth_url",
            "OS_PROJECT_NAME or OS_PROJECT_ID is missing",
        ),
        (
            OpenStackConfig::with_auth_url("R", "https://k/v3"),
            vec![
                ("OS_PASSWORD", SECRET),
                ("OS_USERNAME", "u"),
                ("OS_PROJECT_ID", "p"),
                ("OS_IDENTITY_API_VERSION", "2"),
            ],
            "auth_url",
            "OS_IDENTITY_API_VERSION: asks for version 2.0, but auth_url's path says 3",
        ),
        (
            OpenStackConfig::with_cloud("R", "nowhere"),
            vec![
                ("HOME", "/nonexistent"),
                ("OS_CLIENT_CONFIG_FILE", "/nonexistent/c.yaml"),
            ],
            "cloud",
            "no clouds.yaml found",
        ),
    ];
    for (config, vars, key, expected) in cases {
        let error = resolve(&config, &env(&vars)).unwrap_err();
        assert_eq!(error.key, key, "{error}");
        assert!(error.to_string().contains(expected), "{error}");
        assert!(!error.to_string().contains(SECRET), "{error}");
    }
    let clouds = dir.file("clouds.yaml", CLOUDS);
    let vars = env(&[
        ("OS_CLIENT_CONFIG_FILE", clouds.to_str().unwrap()),
        ("HOME", "/nonexistent"),
    ]);
    let error = resolve(&OpenStackConfig::with_cloud("R", "test"), &vars).unwrap_err();
    assert!(error.to_string().contains("holds no such cloud"), "{error}");
    assert!(
        error.to_string().contains("\"legacy\", \"prod\""),
        "{error}"
    );
    let error = resolve(&OpenStackConfig::with_cloud("R", "prod"), &vars).unwrap_err();
    assert!(
        error.to_string().contains("auth.password is missing"),
        "{error}"
    );
    let app = dir.file(
        "app.yaml",
        "clouds:\n  a:\n    auth_type: v3applicationcredential\n    auth: {auth_url: 'http://k/v3'}\n",
    );
    let mut config = OpenStackConfig::with_cloud("R", "a");
    config.credential_file = Some(app);
    let error = resolve(&config, &env(&[])).unwrap_err();
    assert_eq!(error.key, "credential_file");
    assert!(
        error
            .to_string()
            .contains("auth_type \"v3applicationcredential\" is not supported"),
        "{error}"
    );
}

#[test]
fn the_version_comes_from_the_path_or_is_appended() {
    let cases = [
        (
            "https://k:5000",
            None,
            "https://k:5000/v3",
            IdentityVersion::V3,
        ),
        (
            "https://k:5000/",
            Some("2.0"),
            "https://k:5000/v2.0",
            IdentityVersion::V2,
        ),
        (
            "https://k/identity/v3",
            Some("3"),
            "https://k/identity/v3",
            IdentityVersion::V3,
        ),
        (
            "http://k/identity/v2.0/",
            None,
            "http://k/identity/v2.0",
            IdentityVersion::V2,
        ),
    ];
    for (url, asked, expected, version) in cases {
        assert_eq!(
            versioned_url(url, asked).unwrap(),
            (expected.to_owned(), version)
        );
    }
    assert!(versioned_url("https://k", Some("4")).is_err());
    assert!(versioned_url("https://k/v3", Some("2")).is_err());
}
