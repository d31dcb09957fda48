//! The agents' login frame: the first text an agent sends, before anything
//! checked who it is.

use muster::names::{AgentTag, ModelUuid};
use muster_door::login::{self, BAD_LOGIN, BAD_TOKEN, Refusal};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::json::{Field, field, text, value};
use crate::settings;

const TOKEN: &str = "s3cret";
const MODEL: &str = "deadbeef-0bad-400d-8000-4b1d0d06f00d";
const AGENT: &str = "unit-wordpress-0";

/// The fields of a login and a good value of each.
fn good(name: &str) -> Value {
    match name {
        "model" => json!(MODEL),
        "agent" => json!(AGENT),
        "user_data" => json!("agent 3.6.1"),
        "controller_agent" => json!(true),
        "token" => json!(TOKEN),
        "password" => json!("Zm9yIGFuIGFnZW50IG9mIGl0cyBvd24"),
        other => unreachable!("no field {other}"),
    }
}

const NAMES: [&str; 6] = [
    "model",
    "agent",
    "user_data",
    "controller_agent",
    "token",
    "password",
];

/// A refusal as a close frame carries it: a code the protocol documents
/// and a reason of at most 123 bytes that says something.
fn well_formed(refusal: &Refusal) {
    assert!(
        [BAD_LOGIN, BAD_TOKEN].contains(&refusal.code),
        "{refusal:?}"
    );
    assert!(!refusal.reason.trim().is_empty(), "{refusal:?}");
    assert!(refusal.reason.len() <= 123, "{refusal:?}");
}

proptest! {
    #![proptest_config(settings())]

    /// Any text at all is read or refused as a close frame can say it.
    #[test]
    fn any_text_is_read_or_refused_with_a_reason(text in text()) {
        if let Err(refusal) = login::read(&text, Some(TOKEN)) {
            well_formed(&refusal);
        }
    }

    /// Any JSON value: only an object can be a login.
    #[test]
    fn any_value_is_read_or_refused_with_a_reason(value in value()) {
        let text = value.to_string();
        match login::read(&text, Some(TOKEN)) {
            Ok(_) => prop_assert!(value.is_object()),
            Err(refusal) => well_formed(&refusal),
        }
    }

    /// A login with each field left out, good, or anything at all, and
    /// some unknown fields: a good one is taken as given; a bad one is
    /// refused naming a field that was not good.
    #[test]
    fn a_bad_field_is_refused_by_its_name(
        fields in prop::collection::vec(field(), NAMES.len()),
        unknown in prop::collection::btree_map("[a-z_]{1,12}", value(), 0..2),
    ) {
        let mut object = Map::new();
        let mut not_good = Vec::new();
        for (name, field) in NAMES.iter().zip(&fields) {
            match field {
                Field::Absent => {
                    if matches!(*name, "model" | "agent" | "token") {
                        not_good.push(*name);
                    }
                }
                Field::Good => {
                    object.insert((*name).to_owned(), good(name));
                }
                Field::Any(value) => {
                    object.insert((*name).to_owned(), value.clone());
                    if *value != good(name) {
                        not_good.push(*name);
                    }
                }
            }
        }
        let unknown: Vec<String> = unknown
            .into_iter()
            .filter(|(name, _)| !NAMES.contains(&name.as_str()))
            .map(|(name, value)| {
                object.insert(name.clone(), value);
                name
            })
            .collect();
        let text = Value::Object(object.clone()).to_string();
        match login::read(&text, Some(TOKEN)) {
            Ok(login) => {
                prop_assert!(unknown.is_empty(), "{unknown:?} taken");
                // Every field it took is the one given.
                let given = |name: &str| object[name].as_str().unwrap().to_owned();
                prop_assert_eq!(Ok(login.model), given("model").parse::<ModelUuid>());
                prop_assert_eq!(Ok(login.agent), given("agent").parse::<AgentTag>());
                prop_assert_eq!(object["token"].as_str(), Some(TOKEN));
                let user_data = object.get("user_data").and_then(Value::as_str).unwrap_or("");
                prop_assert_eq!(login.user_data.as_str(), user_data);
                let controller = object.get("controller_agent").and_then(Value::as_bool);
                prop_assert_eq!(login.controller_agent, controller.unwrap_or(false));
                let password = object.get("password").and_then(Value::as_str);
                prop_assert_eq!(login.password.as_deref(), password);
            }
            Err(refusal) => {
                well_formed(&refusal);
                prop_assert!(
                    !not_good.is_empty() || !unknown.is_empty(),
                    "a good login refused: {refusal:?}"
                );
                let named = not_good
                    .iter()
                    .map(|name| (*name).to_owned())
                    .chain(unknown.iter().map(|name| format!("{name:?}")))
                    .any(|name| refusal.reason.starts_with(&format!("{name}:")));
                prop_assert!(named, "{refusal:?} names none of {not_good:?} {unknown:?}");
                // Only the token decides a 4401.
                if refusal.code == BAD_TOKEN {
                    prop_assert!(refusal.reason.starts_with("token:"), "{refusal:?}");
                }
            }
        }
    }
}
