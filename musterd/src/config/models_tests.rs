use muster::config::Validate;

use std::path::PathBuf;

use muster::names::ModelUuid;
use muster_registry::models::*;

use super::DaemonConfig;

const A: &str = "4f1c6a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";
const B: &str = "7a8b9c0d-1e2f-4a3b-9c4d-5e6f7a8b9c0d";

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
            "models[1].cloud = \"gce\": unknown variant `gce`, expected `sim` or `ec2`",
            "models[1].colour = \"blue\": unknown field `colour`, expected one of `uuid`, `name`, \
             `cloud`, `region`, `endpoint`, `credential_file`",
            "models[1].region = \"US East\": must be a region name of at most 64 lowercase \
             letters, digits and hyphens, such as \"us-east-1\"",
            "models[2].uuid: must be given: the model's UUID",
            "models[2].name = \"  \": must not be blank (leave it out for none)",
            "models[2].cloud: must be given: \"sim\" or \"ec2\"",
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
            "models[0].credential_file: only a model on cloud = \"ec2\" takes it",
        ]
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
        ] {
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
