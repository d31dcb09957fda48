//! The `[[models]]` of a config file (docs/spec.md §10.1): each entry read,
//! checked by its cloud's keys, and grouped into cloud accounts.

use muster::config::Validate;

use std::path::PathBuf;

use muster::names::ModelUuid;
use muster_registry::models::*;

use musterd::config::DaemonConfig;

const A: &str = "4f1c6a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";
const B: &str = "7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d";

/// The keys only a model on OpenStack takes.
const OPENSTACK_KEYS: [&str; 8] = [
    "auth_url",
    "os_cloud",
    "interface",
    "compute_service_name",
    "network_service_name",
    "page_size",
    "connect_timeout",
    "operation_timeout",
];

fn problems(text: &str) -> Vec<String> {
    DaemonConfig::from_toml(text).unwrap_err().lines()
}

fn sim_model(uuid: &str, region: &str) -> String {
    format!("[[models]]\nuuid = \"{uuid}\"\ncloud = \"sim\"\nregion = \"{region}\"\n")
}

#[test]
fn models_read_in_the_order_written() {
    let text = format!(
        "{}name = \"prod\"\n{}",
        sim_model(A, "local"),
        sim_model(B, "other")
    );
    let config = DaemonConfig::from_toml(&text).unwrap();
    assert_eq!(config.models.len(), 2);
    assert_eq!(config.models[0].uuid, Some(A.parse().unwrap()));
    assert_eq!(config.models[0].name.as_deref(), Some("prod"));
    assert_eq!(config.models[1].cloud, Some(Cloud::Sim));
    assert_eq!(config.models[1].region, "other");
}

#[test]
fn each_problem_of_an_entry_is_named_by_its_index() {
    let text = format!(
        "{}[[models]]\nuuid = \"nope\"\ncloud = \"gce\"\ncolour = \"blue\"\nregion = \"US East\"\n\
         [[models]]\nname = \"  \"\n",
        sim_model(A, "local")
    );
    let got = problems(&text);
    assert_eq!(
        got,
        [
            "models[1].uuid = \"nope\": \"nope\" is not a valid model UUID",
            "models[1].cloud = \"gce\": unknown variant `gce`, expected one of `sim`, `ec2`, \
             `openstack`",
            "models[1].colour = \"blue\": unknown field `colour`, expected one of `uuid`, `name`, \
             `cloud`, `region`, `endpoint`, `credential_file`, `auth_url`, `os_cloud`, `interface`, \
             `compute_service_name`, `network_service_name`, `page_size`, `connect_timeout`, \
             `operation_timeout`",
            "models[1].region = \"US East\": must be a region name of at most 64 lowercase \
             letters, digits and hyphens, such as \"us-east-1\"",
            "models[2].uuid: must be given: the model's UUID",
            "models[2].name = \"  \": must not be blank (leave it out for none)",
            "models[2].cloud: must be given: \"sim\", \"ec2\" or \"openstack\"",
            "models[2].region = \"\": must name a region, such as \"us-east-1\"",
        ],
    );
}

#[test]
fn a_uuid_given_twice_is_refused_naming_both_entries() {
    let text = format!(
        "{}{}{}",
        sim_model(A, "local"),
        sim_model(B, "local"),
        sim_model(A, "other")
    );
    assert_eq!(
        problems(&text),
        [format!(
            "models[2].uuid = \"{A}\": the same UUID as models[0]: each model once"
        )]
    );
}

#[test]
fn a_simulated_model_takes_no_endpoint_nor_credential_file() {
    let text = format!(
        "{}endpoint = \"http://127.0.0.1:5000\"\ncredential_file = \"aws.ini\"\n",
        sim_model(A, "local")
    );
    assert_eq!(
        problems(&text),
        [
            "models[0].endpoint: only a model on cloud = \"ec2\" takes it",
            "models[0].credential_file: only a model on cloud = \"ec2\" or \"openstack\" takes it",
        ]
    );
}

#[test]
fn each_key_of_one_cloud_is_refused_on_another() {
    let openstack_keys = "auth_url = \"https://keystone.example.com:5000/v3\"\n\
         os_cloud = \"mycloud\"\ninterface = \"public\"\ncompute_service_name = \"nova\"\n\
         network_service_name = \"neutron\"\npage_size = 100\nconnect_timeout = \"1s\"\n\
         operation_timeout = \"2s\"\n";
    let on_openstack_only = |n: usize| -> Vec<String> {
        OPENSTACK_KEYS
            .iter()
            .map(|key| format!("models[{n}].{key}: only a model on cloud = \"openstack\" takes it"))
            .collect()
    };
    // On the simulated cloud and on EC2, whether this musterd speaks EC2
    // or not.
    let text = format!(
        "{}{openstack_keys}[[models]]\nuuid = \"{B}\"\ncloud = \"ec2\"\nregion = \"us-east-1\"\n\
         {openstack_keys}",
        sim_model(A, "local")
    );
    let got: Vec<String> = problems(&text)
        .into_iter()
        .filter(|p| !p.starts_with("models[1].cloud"))
        .collect();
    let mut want = on_openstack_only(0);
    want.extend(on_openstack_only(1));
    assert_eq!(got, want);
    // On OpenStack, an endpoint is EC2's.
    let text = format!(
        "[[models]]\nuuid = \"{A}\"\ncloud = \"openstack\"\nregion = \"RegionOne\"\n\
         os_cloud = \"mycloud\"\nendpoint = \"http://127.0.0.1:5000\"\n"
    );
    let got: Vec<String> = problems(&text)
        .into_iter()
        .filter(|p| !p.starts_with("models[0].cloud"))
        .collect();
    assert_eq!(
        got,
        ["models[0].endpoint: only a model on cloud = \"ec2\" takes it"]
    );
}

#[test]
fn a_password_written_in_an_entry_is_refused_without_its_value() {
    let text = format!(
        "{}password = \"hunter2-secret\"\nOS_Password = \"hunter2-secret\"\n\
         client_secret = \"hunter2-secret\"\n",
        sim_model(A, "local")
    );
    let got = problems(&text);
    assert_eq!(got.len(), 3, "{got:?}");
    for (problem, key) in got.iter().zip(["password", "OS_Password", "client_secret"]) {
        assert!(
            problem.starts_with(&format!("models[0].{key}: unknown field `{key}`")),
            "{problem}"
        );
        assert!(!problem.contains("hunter2"), "{problem}");
    }
}

#[cfg(not(feature = "ec2"))]
#[test]
fn ec2_without_the_feature_says_how_to_build_it() {
    let text = format!("[[models]]\nuuid = \"{A}\"\ncloud = \"ec2\"\nregion = \"us-east-1\"\n");
    assert_eq!(
        problems(&text),
        [
            "models[0].cloud = \"ec2\": this musterd was built without EC2; build one that \
          speaks it with `cargo build --release -p musterd --features ec2`"
        ]
    );
}

#[cfg(not(feature = "openstack"))]
#[test]
fn openstack_without_the_feature_says_how_to_build_it() {
    let text = format!(
        "[[models]]\nuuid = \"{A}\"\ncloud = \"openstack\"\nregion = \"RegionOne\"\n\
         os_cloud = \"mycloud\"\n"
    );
    assert_eq!(
        problems(&text),
        [
            "models[0].cloud = \"openstack\": this musterd was built without OpenStack; build \
             one that speaks it with `cargo build --release -p musterd --features openstack`"
        ]
    );
}

/// A model on OpenStack, its region and Keystone given, with `extra`.
#[cfg(feature = "openstack")]
fn openstack_model(extra: &str) -> String {
    format!("[[models]]\nuuid = \"{A}\"\ncloud = \"openstack\"\nregion = \"RegionOne\"\n{extra}")
}

#[cfg(feature = "openstack")]
#[test]
fn openstack_settings_are_read_and_checked_as_the_provider_takes_them() {
    let full = openstack_model(
        "auth_url = \"https://keystone.example.com:5000/v3\"\n\
         credential_file = \"os.yaml\"\ninterface = \"internal\"\n\
         compute_service_name = \"nova\"\nnetwork_service_name = \"neutron\"\n\
         page_size = 200\nconnect_timeout = \"2s\"\noperation_timeout = \"1m\"\n",
    );
    let config = DaemonConfig::from_toml(&full).unwrap();
    let openstack = config.models[0].openstack();
    assert_eq!(openstack.region, "RegionOne");
    assert_eq!(
        openstack.auth_url.as_deref(),
        Some("https://keystone.example.com:5000/v3")
    );
    assert_eq!(openstack.cloud, None);
    assert_eq!(openstack.credential_file, Some(PathBuf::from("os.yaml")));
    assert_eq!(openstack.interface.as_deref(), Some("internal"));
    assert_eq!(openstack.compute_service_name.as_deref(), Some("nova"));
    assert_eq!(openstack.network_service_name.as_deref(), Some("neutron"));
    assert_eq!(openstack.page_size, 200);
    assert_eq!(openstack.connect_timeout, std::time::Duration::from_secs(2));
    assert_eq!(
        openstack.operation_timeout,
        std::time::Duration::from_secs(60)
    );
    // What is left out takes the provider's defaults.
    let least = DaemonConfig::from_toml(&openstack_model("os_cloud = \"mycloud\"\n")).unwrap();
    assert_eq!(
        least.models[0].openstack(),
        muster::openstack::OpenStackConfig::with_cloud("RegionOne", "mycloud")
    );

    // Each bad key is named by the entry's index, its value as written.
    let cases: &[(&str, &str)] = &[
        (
            "",
            "models[0].auth_url: set auth_url (Keystone's URL) or os_cloud (a cloud of clouds.yaml)",
        ),
        (
            "auth_url = \"https://k/v3\"\nos_cloud = \"c\"\n",
            "models[0].os_cloud = \"c\": give auth_url or os_cloud, not both",
        ),
        (
            "auth_url = \"ftp://keystone\"\n",
            "models[0].auth_url = \"ftp://keystone\": the scheme must be http or https",
        ),
        (
            "auth_url = \"https://user:hunter2@keystone/v3\"\n",
            "models[0].auth_url: user information does not belong in the URL",
        ),
        (
            "os_cloud = \" \"\n",
            "models[0].os_cloud = \" \": must be a name, not blank",
        ),
        (
            "os_cloud = \"c\"\ncredential_file = \" \"\n",
            "models[0].credential_file = \" \": must name a file, not be empty",
        ),
        (
            "os_cloud = \"c\"\ninterface = \"publicURL\"\n",
            "models[0].interface = \"publicURL\": must be \"public\", \"internal\" or \"admin\"",
        ),
        (
            "os_cloud = \"c\"\ncompute_service_name = \"\"\n",
            "models[0].compute_service_name = \"\": must be a name, not blank",
        ),
        (
            "os_cloud = \"c\"\nnetwork_service_name = \" neutron\"\n",
            "models[0].network_service_name = \" neutron\": must not start or end with a space",
        ),
        (
            "os_cloud = \"c\"\npage_size = 0\n",
            "models[0].page_size = 0: must be at least 1 and at most 10000",
        ),
        (
            "os_cloud = \"c\"\npage_size = 10001\n",
            "models[0].page_size = 10001: must be at least 1 and at most 10000",
        ),
        (
            "os_cloud = \"c\"\nconnect_timeout = \"0s\"\n",
            "models[0].connect_timeout = \"0s\": ",
        ),
        (
            "os_cloud = \"c\"\noperation_timeout = \"2h\"\n",
            "models[0].operation_timeout = \"2h\": ",
        ),
        (
            "os_cloud = \"c\"\nconnect_timeout = \"30s\"\noperation_timeout = \"10s\"\n",
            "models[0].connect_timeout = \"30s\": ",
        ),
    ];
    for (extra, want) in cases {
        let got = problems(&openstack_model(extra));
        assert_eq!(got.len(), 1, "{extra}: {got:?}");
        assert!(got[0].starts_with(want), "{extra}: {got:?}");
        assert!(!got[0].contains("hunter2"), "{got:?}");
    }
    // OpenStack's regions are its catalog's names: free text, but no
    // blank, no control character, no space at either end.
    for (region, want) in [
        ("", "must be a region name such as \"RegionOne\", not blank"),
        (" RegionOne", "must not start or end with a space"),
        ("Region\\u0000One", "must hold no control character"),
    ] {
        let text = format!(
            "[[models]]\nuuid = \"{A}\"\ncloud = \"openstack\"\nregion = \"{region}\"\n\
             os_cloud = \"c\"\n"
        );
        let got = problems(&text);
        assert_eq!(got.len(), 1, "{got:?}");
        assert!(got[0].starts_with("models[0].region = "), "{got:?}");
        assert!(got[0].ends_with(want), "{got:?}");
    }
    for region in ["RegionOne", "ORD", "Region One", "région-1"] {
        let text = format!(
            "[[models]]\nuuid = \"{A}\"\ncloud = \"openstack\"\nregion = \"{region}\"\n\
             os_cloud = \"c\"\n"
        );
        DaemonConfig::from_toml(&text).unwrap_or_else(|e| panic!("{region}: {e}"));
    }
}

#[cfg(feature = "openstack")]
#[test]
fn an_openstack_credential_is_read_with_the_file_and_what_is_missing_named() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "clouds.yaml",
        "clouds:\n  mycloud:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      \
         username: u\n      password: hunter2-secret\n      project_name: p\n",
    );
    write(
        "nopassword.yaml",
        "clouds:\n  mycloud:\n    auth:\n      auth_url: http://127.0.0.1:5000/v3\n      \
         username: u\n      project_name: p\n",
    );
    let read = |extra: &str| {
        write("muster.toml", &openstack_model(extra));
        musterd::read_config(&dir.path().join("muster.toml"))
    };
    // Relative to the config file's folder, read at once.
    let config = read("os_cloud = \"mycloud\"\ncredential_file = \"clouds.yaml\"\n").unwrap();
    assert_eq!(
        config.models[0].credential_file,
        Some(dir.path().join("clouds.yaml"))
    );
    for (extra, key, said) in [
        (
            "os_cloud = \"mycloud\"\ncredential_file = \"absent.yaml\"\n",
            "models[0].credential_file",
            "absent.yaml",
        ),
        (
            "os_cloud = \"other\"\ncredential_file = \"clouds.yaml\"\n",
            "models[0].os_cloud = \"other\"",
            "holds no such cloud",
        ),
        (
            "os_cloud = \"mycloud\"\ncredential_file = \"nopassword.yaml\"\n",
            "models[0].credential_file",
            "password",
        ),
    ] {
        let error = read(extra).unwrap_err().to_string();
        assert!(
            error.contains(&format!("{key}: ")) || error.contains(&format!("{key} = ")),
            "{error}"
        );
        assert!(error.contains(said), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}

#[cfg(feature = "ec2")]
#[test]
fn ec2_settings_are_checked_as_the_provider_takes_them() {
    let text = format!(
        "[[models]]\nuuid = \"{A}\"\ncloud = \"ec2\"\nregion = \"us-east-1\"\n\
         endpoint = \"ftp://example.com\"\n"
    );
    let got = problems(&text);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("models[0].endpoint = \"ftp://example.com\": "),
        "{got:?}"
    );
    let good = format!(
        "[[models]]\nuuid = \"{A}\"\ncloud = \"ec2\"\nregion = \"us-east-1\"\n\
         endpoint = \"http://127.0.0.1:5000\"\n"
    );
    DaemonConfig::from_toml(&good).unwrap();
}

#[test]
fn models_of_one_cloud_region_endpoint_and_credential_share_an_account() {
    let model = |cloud, region: &str, endpoint: Option<&str>, file: Option<&str>| {
        let mut model = ModelConfig::new(ModelUuid::from_u128(1), cloud, region);
        model.endpoint = endpoint.map(str::to_owned);
        model.credential_file = file.map(PathBuf::from);
        model
    };
    let models = [
        model(Cloud::Sim, "local", None, None),
        model(Cloud::Ec2, "us-east-1", None, None),
        model(Cloud::Sim, "local", None, None),
        model(Cloud::Ec2, "us-east-1", None, Some("team-b.ini")),
        model(Cloud::Ec2, "us-east-1", Some("http://127.0.0.1:5000"), None),
        model(Cloud::Ec2, "eu-west-1", None, None),
        model(Cloud::Ec2, "us-east-1", None, None),
    ];
    let (accounts, of_model) = accounts(&models);
    let names: Vec<&str> = accounts.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "sim-local",
            "ec2-us-east-1",
            "ec2-us-east-1-2",
            "ec2-us-east-1-3",
            "ec2-eu-west-1"
        ]
    );
    assert_eq!(
        of_model,
        [
            Some(0),
            Some(1),
            Some(0),
            Some(2),
            Some(3),
            Some(4),
            Some(1)
        ]
    );
}

#[test]
fn models_of_one_openstack_region_keystone_and_credential_share_an_account() {
    let model = |n: u128, region: &str, change: fn(&mut ModelConfig)| {
        let mut model = ModelConfig::new(ModelUuid::from_u128(n), Cloud::OpenStack, region);
        model.os_cloud = Some("prod".into());
        model.name = Some(format!("model {n}"));
        change(&mut model);
        model
    };
    let models = [
        model(1, "RegionOne", |_| {}),
        model(2, "RegionOne", |_| {}),
        model(3, "RegionOne", |m| {
            m.credential_file = Some("team-b.yaml".into())
        }),
        model(4, "RegionOne", |m| m.os_cloud = Some("staging".into())),
        model(5, "RegionOne", |m| {
            m.os_cloud = None;
            m.auth_url = Some("https://keystone.example.com:5000/v3".into());
        }),
        model(6, "RegionOne", |m| m.page_size = Some(100)),
        model(7, "Region Two/East", |_| {}),
        model(8, "RegionOne", |m| {
            m.credential_file = Some("team-b.yaml".into())
        }),
    ];
    let (accounts, of_model) = accounts(&models);
    let names: Vec<&str> = accounts.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "openstack-RegionOne",
            "openstack-RegionOne-2",
            "openstack-RegionOne-3",
            "openstack-RegionOne-4",
            "openstack-RegionOne-5",
            "openstack-Region-Two-East",
        ]
    );
    assert_eq!(
        of_model,
        [
            Some(0),
            Some(0),
            Some(1),
            Some(2),
            Some(3),
            Some(4),
            Some(5),
            Some(1)
        ]
    );
    // The account's settings are the entry's without what names the model.
    assert_eq!(accounts[0].1.settings.uuid, None);
    assert_eq!(accounts[0].1.settings.name, None);
    assert_eq!(accounts[0].1.settings.os_cloud.as_deref(), Some("prod"));
}

#[test]
fn an_account_name_already_taken_is_skipped() {
    let model = |n, cloud, region: &str, file: Option<&str>| {
        let mut model = ModelConfig::new(ModelUuid::from_u128(n), cloud, region);
        model.credential_file = file.map(PathBuf::from);
        model
    };
    // A region named like the second account of another.
    let models = [
        model(1, Cloud::Ec2, "us-east-1-2", None),
        model(2, Cloud::Ec2, "us-east-1", None),
        model(3, Cloud::Ec2, "us-east-1", Some("b.ini")),
        model(4, Cloud::OpenStack, "a b", None),
        model(5, Cloud::OpenStack, "a/b", None),
        model(6, Cloud::OpenStack, "a-b", None),
    ];
    let (accounts, _) = accounts(&models);
    let names: Vec<&str> = accounts.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "ec2-us-east-1-2",
            "ec2-us-east-1",
            "ec2-us-east-1-3",
            "openstack-a-b",
            "openstack-a-b-2",
            "openstack-a-b-3",
        ]
    );
}

#[test]
fn any_value_in_any_field_is_refused_by_its_key_or_read() {
    for value in [
        "0",
        "-1",
        "nan",
        "inf",
        "-inf",
        "5e-324",
        "1e308",
        "\"\"",
        "\" \"",
        "\"18446744073709551615s\"",
        "true",
        "[]",
        "{}",
    ] {
        for field in [
            "uuid",
            "name",
            "cloud",
            "region",
            "endpoint",
            "credential_file",
        ]
        .into_iter()
        .chain(OPENSTACK_KEYS)
        {
            let text = format!("[[models]]\n{field} = {value}\n");
            match DaemonConfig::from_toml(&text) {
                Ok(config) => config.validate().unwrap(),
                Err(problems) => assert!(
                    problems
                        .problems
                        .iter()
                        .all(|p| p.key.starts_with("models[0]")),
                    "{text}: {problems}"
                ),
            }
        }
    }
    // An entry that is no table, or a list that is no list.
    assert!(problems("models = [1, 2]\n")[0].starts_with("models = [1, 2]: invalid type"));
    assert!(problems("models = 3\n")[0].starts_with("models = 3: invalid type"));
}

#[test]
fn the_example_models_read_as_entries() {
    let text = include_str!("../muster.example.toml");
    // Each commented-out [[models]] table, uncommented.
    let mut entries = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        if line != "# [[models]]" {
            continue;
        }
        let mut entry = String::from("[[models]]\n");
        while let Some(line) = lines.next_if(|l| l.starts_with("# ")) {
            entry.push_str(&line[2..]);
            entry.push('\n');
        }
        entries.push(entry);
    }
    assert_eq!(entries.len(), 2, "{entries:?}");
    let mut clouds = Vec::new();
    for entry in &entries {
        let table: toml::Table = toml::from_str(entry).unwrap_or_else(|e| panic!("{e}: {entry}"));
        let model: ModelConfig = table["models"][0]
            .clone()
            .try_into()
            .unwrap_or_else(|e| panic!("{e}: {entry}"));
        let cloud = model.cloud.unwrap();
        clouds.push(cloud);
        let built = match cloud {
            Cloud::Sim => true,
            Cloud::Ec2 => EC2_BUILT,
            Cloud::OpenStack => OPENSTACK_BUILT,
        };
        if built {
            model.validate().unwrap_or_else(|e| panic!("{e}: {entry}"));
        }
    }
    assert_eq!(clouds, [Cloud::Ec2, Cloud::OpenStack]);
    // The OpenStack example's commented-out keys read too.
    let openstack = entries[1].replace("\n  # ", "\n  ");
    let table: toml::Table = toml::from_str(&openstack).unwrap();
    let model: ModelConfig = table["models"][0].clone().try_into().unwrap();
    assert!(model.auth_url.is_some() && model.compute_service_name.is_some());
}
