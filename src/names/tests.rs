use super::*;

fn round_trip<T>(text: &str)
where
    T: FromStr<Err = NameError> + fmt::Display + Serialize + for<'de> Deserialize<'de>,
    T: PartialEq + fmt::Debug,
{
    let parsed: T = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
    assert_eq!(parsed.to_string(), text);
    let json = serde_json::to_string(&parsed).unwrap();
    assert_eq!(json, format!("{text:?}"));
    assert_eq!(serde_json::from_str::<T>(&json).unwrap(), parsed);
}

fn rejects<T: FromStr<Err = NameError> + fmt::Debug>(text: &str, kind: &str) {
    let err = text.parse::<T>().expect_err(text);
    assert_eq!(err.to_string(), format!("{text:?} is not a valid {kind}"));
}

#[test]
fn machine_tags() {
    for text in [
        "machine-0",
        "machine-42",
        "machine-3-lxd-1",
        "machine-1-kvm-0-lxd-12",
    ] {
        round_trip::<MachineTag>(text);
        round_trip::<AgentTag>(text);
    }
    for text in [
        "",
        "machine",
        "machine-",
        "machine-01",
        "machine--1",
        "machine-a",
        "machine-3-lxd",
        "machine-3-lxd-",
        "machine-3-LXD-1",
        "machine-3-1lxd-1",
        "machine-3-lxd-01",
        "Machine-0",
        "unit-0",
        "machine-0 ",
        " machine-0",
        "machine-0/lxd/1",
    ] {
        rejects::<MachineTag>(text, "machine tag");
    }
    let tag: MachineTag = "machine-3-lxd-1".parse().unwrap();
    assert_eq!(tag.id(), "3/lxd/1");
    assert!(tag.is_container());
    assert!(!"machine-3".parse::<MachineTag>().unwrap().is_container());
}

#[test]
fn unit_tags() {
    for text in [
        "unit-wordpress-0",
        "unit-mysql-12",
        "unit-my-app2-3",
        "unit-a1-b-0",
    ] {
        round_trip::<UnitTag>(text);
        round_trip::<AgentTag>(text);
    }
    for text in [
        "unit-foo",
        "unit-",
        "unit-0",
        "unit-foo-",
        "unit-foo-01",
        "unit-Foo-0",
        "unit-1foo-0",
        "unit-foo-1-2",
        "unit-foo--0",
        "unit-foo-bar",
        "wordpress-0",
        "unit-foo_bar-0",
        "unit-foo-0-",
    ] {
        rejects::<UnitTag>(text, "unit tag");
    }
    let tag: UnitTag = "unit-my-app-7".parse().unwrap();
    assert_eq!(tag.application(), "my-app");
    assert_eq!(tag.id(), "my-app/7");
}

#[test]
fn the_issue_example_message() {
    let err = "unit-foo".parse::<UnitTag>().unwrap_err();
    assert_eq!(err.to_string(), r#""unit-foo" is not a valid unit tag"#);
}

#[test]
fn application_tags() {
    for text in [
        "application-mysql",
        "application-my-sql",
        "application-a2",
        "application-x-y2z",
    ] {
        round_trip::<ApplicationTag>(text);
        round_trip::<AgentTag>(text);
    }
    for text in [
        "application-",
        "application-0",
        "application-mysql-0",
        "application-MySQL",
        "application--a",
        "application-a-",
        "mysql",
        "application-2a",
    ] {
        rejects::<ApplicationTag>(text, "application tag");
    }
    assert_eq!(
        "application-mysql"
            .parse::<ApplicationTag>()
            .unwrap()
            .name(),
        "mysql"
    );
}

#[test]
fn agent_tags_name_the_kind_that_failed() {
    rejects::<AgentTag>("user-admin", "agent tag");
    rejects::<AgentTag>("", "agent tag");
    rejects::<AgentTag>("unit-foo", "unit tag");
    rejects::<AgentTag>("machine-x", "machine tag");
    rejects::<AgentTag>("application-0", "application tag");
}

#[test]
fn agent_tags_sort_by_text() {
    let mut tags: Vec<AgentTag> = ["unit-a-0", "machine-1", "application-b", "machine-0"]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    tags.sort();
    let texts: Vec<_> = tags.iter().map(AgentTag::as_str).collect();
    assert_eq!(
        texts,
        ["application-b", "machine-0", "machine-1", "unit-a-0"]
    );
}

#[test]
fn model_uuids() {
    round_trip::<ModelUuid>("deadbeef-0bad-400d-8000-4b1d0d06f00d");
    for text in [
        "",
        "model-uuid",
        "deadbeef0bad400d80004b1d0d06f00d",
        "{deadbeef-0bad-400d-8000-4b1d0d06f00d}",
        "deadbeef-0bad-400d-8000-4b1d0d06f00g",
        "urn:uuid:deadbeef-0bad-400d-8000-4b1d0d06f00d",
    ] {
        rejects::<ModelUuid>(text, "model UUID");
    }
    assert_ne!(ModelUuid::from_u128(1), ModelUuid::from_u128(2));
    let generated = ModelUuid::from_u128(7);
    assert_eq!(
        generated.to_string().parse::<ModelUuid>().unwrap(),
        generated
    );
}

#[test]
fn deserialising_bad_text_says_what_was_wrong() {
    let err = serde_json::from_str::<MachineTag>(r#""machine-x""#).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#""machine-x" is not a valid machine tag"#),
        "{err}"
    );
}

#[test]
fn clones_share_the_text() {
    let tag: UnitTag = "unit-wordpress-0".parse().unwrap();
    let clone = tag.clone();
    assert!(std::ptr::eq(tag.as_str(), clone.as_str()));
}
