use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

fn refused(body: &str) -> BodyError {
    parse_registration(body.as_bytes()).expect_err(body)
}

fn field_of(body: &str) -> Option<String> {
    refused(body).field
}

#[test]
fn a_full_body_reads_and_an_empty_one_takes_the_defaults() {
    let registration = parse_registration(
        br#"{"instance_id": "i-0abc", "life": "dying", "agent_status": "started", "manual": true}"#,
    )
    .unwrap();
    assert_eq!(
        registration,
        Registration {
            instance_id: Some(InstanceId::from("i-0abc")),
            life: Life::Dying,
            agent_status: MachineStatus::Started,
            manual: true,
        }
    );
    assert_eq!(parse_registration(b"{}").unwrap(), Registration::default());
    assert_eq!(
        parse_registration(br#" {"instance_id": null} "#).unwrap(),
        Registration::default()
    );
    for status in MachineStatus::ALL {
        let body = format!(r#"{{"agent_status": "{status}"}}"#);
        assert_eq!(
            parse_registration(body.as_bytes()).unwrap().agent_status,
            *status
        );
    }
}

#[test]
fn a_body_that_is_not_a_json_object_is_refused_without_a_field() {
    for body in ["", "   ", "not json", "{", r#"{"life": "alive",}"#, "\u{0}"] {
        let error = refused(body);
        assert_eq!(error.field, None, "{body:?}");
        assert!(error.error.starts_with("the body is not JSON: "), "{error}");
    }
    for body in ["[]", "3", "null", r#""alive""#, "true"] {
        let error = refused(body);
        assert_eq!(error.field, None, "{body:?}");
        assert!(
            error.error.starts_with("the body must be a JSON object: "),
            "{error}"
        );
    }
    let error = parse_registration(b"{\"life\": \"\xff\"}").unwrap_err();
    assert_eq!(error.field, None);
}

#[test]
fn unknown_and_repeated_fields_are_refused_by_name() {
    let error = refused(r#"{"life": "alive", "colour": "blue"}"#);
    assert_eq!(error.field.as_deref(), Some("colour"));
    assert_eq!(
        error.error,
        "unknown field; a registration has the fields instance_id, life, agent_status, manual"
    );
    assert_eq!(field_of(r#"{"Life": "alive"}"#).as_deref(), Some("Life"));
    assert_eq!(field_of(r#"{"": 1}"#).as_deref(), Some(""));

    let error = refused(r#"{"life": "alive", "life": "dead"}"#);
    assert_eq!(error.field.as_deref(), Some("life"));
    assert_eq!(error.error, "given more than once");
}

#[test]
fn each_bad_value_names_its_field_and_what_was_wrong() {
    let cases = [
        (
            r#"{"life": "gone"}"#,
            "life",
            r#""gone" is not a valid life; one of alive, dying, dead"#,
        ),
        (
            r#"{"life": "Alive"}"#,
            "life",
            r#""Alive" is not a valid life; one of alive, dying, dead"#,
        ),
        (
            r#"{"life": ""}"#,
            "life",
            r#""" is not a valid life; one of alive, dying, dead"#,
        ),
        (
            r#"{"life": 1}"#,
            "life",
            "must be a string, one of alive, dying, dead, got a number",
        ),
        (
            r#"{"life": null}"#,
            "life",
            "must be a string, one of alive, dying, dead, got null",
        ),
        (
            r#"{"agent_status": "running"}"#,
            "agent_status",
            r#""running" is not a valid machine status; one of pending, started, stopped, error, down"#,
        ),
        (
            r#"{"agent_status": ["started"]}"#,
            "agent_status",
            "must be a string, one of pending, started, stopped, error, down, got an array",
        ),
        (
            r#"{"manual": "true"}"#,
            "manual",
            "must be true or false, got a string",
        ),
        (
            r#"{"manual": 0}"#,
            "manual",
            "must be true or false, got a number",
        ),
        (
            r#"{"manual": null}"#,
            "manual",
            "must be true or false, got null",
        ),
        (
            r#"{"instance_id": 42}"#,
            "instance_id",
            "must be a string, or null until the machine is provisioned, got a number",
        ),
        (
            r#"{"instance_id": {"id": "i-1"}}"#,
            "instance_id",
            "must be a string, or null until the machine is provisioned, got an object",
        ),
        (r#"{"instance_id": ""}"#, "instance_id", "must not be empty"),
        (
            r#"{"instance_id": " \t "}"#,
            "instance_id",
            "must not be empty",
        ),
        (
            r#"{"instance_id": " i-1"}"#,
            "instance_id",
            "must not start or end with white space",
        ),
        (
            r#"{"instance_id": "i-1\n"}"#,
            "instance_id",
            "must not start or end with white space",
        ),
        (
            r#"{"instance_id": "i-\u0007-1"}"#,
            "instance_id",
            "must not hold control characters",
        ),
    ];
    for (body, field, error) in cases {
        assert_eq!(
            refused(body),
            BodyError {
                error: error.to_owned(),
                field: Some(field.to_owned()),
            },
            "{body}"
        );
    }
}

#[test]
fn an_instance_id_has_at_most_255_characters() {
    let longest = "é".repeat(MAX_INSTANCE_ID_CHARS);
    let body = format!(r#"{{"instance_id": "{longest}"}}"#);
    let registration = parse_registration(body.as_bytes()).unwrap();
    assert_eq!(registration.instance_id.unwrap().as_str(), longest);

    let body = format!(r#"{{"instance_id": "{longest}x"}}"#);
    let error = parse_registration(body.as_bytes()).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("instance_id"));
    assert_eq!(error.error, "must be at most 255 characters, got 256");
}

#[test]
fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let padding = " ".repeat(MAX_BODY_BYTES - 2);
    let at_limit = format!("{{{padding}}}");
    assert_eq!(at_limit.len(), MAX_BODY_BYTES);
    assert_eq!(
        parse_registration(at_limit.as_bytes()).unwrap(),
        Registration::default()
    );

    let megabyte = format!(r#"{{"instance_id": "{}"}}"#, "i".repeat(1 << 20));
    let error = parse_registration(megabyte.as_bytes()).unwrap_err();
    assert_eq!(error.field, None);
    assert_eq!(
        error.error,
        format!(
            "the body is {} bytes, more than the 65536 allowed",
            megabyte.len()
        )
    );
}

#[test]
fn deep_nesting_and_long_values_are_refused_briefly() {
    let deep = format!("{{\"life\": {}{}}}", "[".repeat(30_000), "]".repeat(30_000));
    let error = parse_registration(deep.as_bytes()).unwrap_err();
    assert_eq!(error.field, None, "{error}");

    let long = format!(r#"{{"life": "{}"}}"#, "x".repeat(10_000));
    let error = parse_registration(long.as_bytes()).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("life"));
    assert!(error.error.len() < 200, "{}", error.error);
}

#[test]
fn any_bytes_are_read_or_refused_never_a_panic() {
    let valid =
        br#"{"instance_id": "i-1", "life": "dying", "agent_status": "down", "manual": false}"#;
    let mut rng = StdRng::seed_from_u64(12);
    for _ in 0..5_000 {
        let mut body = valid.to_vec();
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..body.len());
            match rng.random_range(0..3) {
                0 => body[at] = rng.random(),
                1 => {
                    body.remove(at);
                }
                _ => body.insert(at, rng.random()),
            }
        }
        if let Err(error) = parse_registration(&body) {
            assert!(!error.error.is_empty());
        }
    }
}

#[test]
fn machine_ids_are_numbers_as_juju_writes_them() {
    for (id, tag) in [
        ("0", "machine-0"),
        ("3", "machine-3"),
        ("1234", "machine-1234"),
    ] {
        assert_eq!(parse_machine_id(id).unwrap().as_str(), tag);
    }
    for id in [
        "",
        " ",
        "03",
        "-1",
        "1e3",
        "NaN",
        "inf",
        "3 ",
        " 3",
        "a",
        "machine-3",
        "3-lxd-1",
        "3/lxd",
        "3/lxd/",
        "/3",
        "3.0",
        "٣",
    ] {
        let error = parse_machine_id(id).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("id"), "{id:?}");
        assert_eq!(
            error.error,
            format!("{id:?} is not a machine id (a number without leading zeros, e.g. \"3\")")
        );
    }
    let error = parse_machine_id("3/lxd/1").unwrap_err();
    assert_eq!(error.field.as_deref(), Some("id"));
    assert_eq!(
        error.error,
        "\"3/lxd/1\" is a container: containers have no instance of their own and are not \
         polled, so they are not registered"
    );
    let error = parse_machine_id(&"9".repeat(33)).unwrap_err();
    assert_eq!(error.error, "a machine id has at most 32 characters");
    assert!(parse_machine_id(&"9".repeat(32)).is_ok());
}

#[test]
fn model_uuids_are_hyphenated_uuids() {
    let uuid = "deadbeef-0bad-400d-8000-4b1d0d06f00d";
    assert_eq!(parse_model_uuid(uuid).unwrap().to_string(), uuid);
    for text in ["", "deadbeef", "{deadbeef-0bad-400d-8000-4b1d0d06f00d}"] {
        let error = parse_model_uuid(text).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("uuid"));
        assert_eq!(error.error, format!("{text:?} is not a model UUID"));
    }
}

#[test]
fn errors_serialise_as_error_and_field() {
    let error = refused(r#"{"life": 1}"#);
    assert_eq!(
        serde_json::to_value(&error).unwrap(),
        serde_json::json!({
            "error": "must be a string, one of alive, dying, dead, got a number",
            "field": "life",
        })
    );
    assert_eq!(
        error.to_string(),
        "life: must be a string, one of alive, dying, dead, got a number"
    );
    let error = refused("[]");
    assert_eq!(
        serde_json::to_value(&error).unwrap()["field"],
        serde_json::Value::Null
    );
}
