//! Checking what a client sends to register a machine (docs/spec.md §9.2):
//! the machine id in the path and the JSON body. Every refusal names what
//! was wrong and the field it was in, so an HTTP layer can answer
//! `{"error", "field"}` as it is.

use std::fmt;

use muster::model::{Life, MachineStatus};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::InstanceId;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::record::Registration;

/// The largest registration body taken, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest instance id taken, in characters.
pub const MAX_INSTANCE_ID_CHARS: usize = 255;

/// The longest machine id taken, in characters: more digits than any
/// machine number needs.
pub const MAX_MACHINE_ID_CHARS: usize = 32;

/// The fields of a registration body, in the order the errors list them.
pub const FIELDS: [&str; 4] = ["instance_id", "life", "agent_status", "manual"];

/// A registration refused: what was wrong, and in which field; no field
/// when the body as a whole is wrong (too large, not a JSON object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[non_exhaustive]
pub struct BodyError {
    /// What was wrong.
    pub error: String,
    /// The field it was in: a field of the body, or `id` or `uuid` for the
    /// path.
    pub field: Option<String>,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{field}: {}", self.error),
            None => f.write_str(&self.error),
        }
    }
}

impl BodyError {
    /// The body as a whole is wrong: too large, unreadable, not a JSON
    /// object.
    pub fn body(error: impl Into<String>) -> Self {
        BodyError {
            error: error.into(),
            field: None,
        }
    }

    /// `field` of the body (or `id`, `uuid` of the path) is wrong.
    pub fn field(field: &str, error: impl Into<String>) -> Self {
        BodyError {
            error: error.into(),
            field: Some(field.to_owned()),
        }
    }
}

/// The machine with id `id`, as Juju writes it (`3`): a number without
/// leading zeros. A container's id (`3/lxd/1`) is refused: containers have
/// no instance of their own at the provider, so nothing polls them and
/// nothing registers them (docs/spec.md §9.2.2).
pub fn parse_machine_id(id: &str) -> Result<MachineTag, BodyError> {
    let invalid = || {
        BodyError::field(
            "id",
            format!(
                "{:?} is not a machine id (a number without leading zeros, e.g. \"3\")",
                shorten(id)
            ),
        )
    };
    if id.chars().count() > MAX_MACHINE_ID_CHARS {
        return Err(BodyError::field(
            "id",
            format!("a machine id has at most {MAX_MACHINE_ID_CHARS} characters"),
        ));
    }
    if id.contains('/') {
        let as_tag = format!("machine-{}", id.replace('/', "-"));
        return match as_tag.parse::<MachineTag>() {
            Ok(tag) if tag.is_container() => Err(BodyError::field(
                "id",
                format!(
                    "{id:?} is a container: containers have no instance of their own \
                     and are not polled, so they are not registered"
                ),
            )),
            _ => Err(invalid()),
        };
    }
    if id.contains('-') {
        return Err(invalid());
    }
    match format!("machine-{id}").parse::<MachineTag>() {
        Ok(tag) if !tag.is_container() => Ok(tag),
        _ => Err(invalid()),
    }
}

/// The model with this UUID, in its hyphenated form.
pub fn parse_model_uuid(uuid: &str) -> Result<ModelUuid, BodyError> {
    uuid.parse()
        .map_err(|_| BodyError::field("uuid", format!("{:?} is not a model UUID", shorten(uuid))))
}

/// Reads a registration body (docs/spec.md §9.2.1): a JSON object with any
/// of `instance_id` (a string, or null until provisioned), `life`
/// (`alive`, `dying`, `dead`; default `alive`), `agent_status` (`pending`,
/// `started`, `stopped`, `error`, `down`; default `pending`) and `manual`
/// (default `false`). Unknown and repeated fields are refused, as are
/// values of the wrong type and bodies over [`MAX_BODY_BYTES`].
pub fn parse_registration(body: &[u8]) -> Result<Registration, BodyError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(BodyError::body(format!(
            "the body is {} bytes, more than the {MAX_BODY_BYTES} allowed",
            body.len()
        )));
    }
    let Fields(fields) = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            BodyError::body(format!("the body must be a JSON object: {e}"))
        }
        _ => BodyError::body(format!("the body is not JSON: {e}")),
    })?;
    let mut registration = Registration::default();
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in fields {
        if seen.contains(&name) {
            return Err(BodyError::field(&name, "given more than once"));
        }
        match name.as_str() {
            "instance_id" => registration.instance_id = instance_id(value)?,
            "life" => registration.life = named::<Life>("life", value, Life::ALL)?,
            "agent_status" => {
                registration.agent_status =
                    named::<MachineStatus>("agent_status", value, MachineStatus::ALL)?;
            }
            "manual" => {
                registration.manual = match value {
                    Value::Bool(manual) => manual,
                    other => {
                        return Err(BodyError::field(
                            "manual",
                            format!("must be true or false, got {}", kind(&other)),
                        ));
                    }
                };
            }
            _ => {
                return Err(BodyError {
                    error: format!(
                        "unknown field; a registration has the fields {}",
                        FIELDS.join(", ")
                    ),
                    field: Some(name),
                });
            }
        }
        seen.push(name);
    }
    Ok(registration)
}

fn instance_id(value: Value) -> Result<Option<InstanceId>, BodyError> {
    let field = |error: String| BodyError::field("instance_id", error);
    let id = match value {
        Value::Null => return Ok(None),
        Value::String(id) => id,
        other => {
            return Err(field(format!(
                "must be a string, or null until the machine is provisioned, got {}",
                kind(&other)
            )));
        }
    };
    if id.trim().is_empty() {
        return Err(field("must not be empty".to_owned()));
    }
    if id.trim() != id {
        return Err(field("must not start or end with white space".to_owned()));
    }
    if id.chars().count() > MAX_INSTANCE_ID_CHARS {
        return Err(field(format!(
            "must be at most {MAX_INSTANCE_ID_CHARS} characters, got {}",
            id.chars().count()
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(field("must not hold control characters".to_owned()));
    }
    Ok(Some(InstanceId::from(id)))
}

/// A value of one of the status enums, by its Juju name.
fn named<T>(field: &str, value: Value, all: &[T]) -> Result<T, BodyError>
where
    T: std::str::FromStr + fmt::Display,
    T::Err: fmt::Display,
{
    let names = || {
        all.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    match value {
        Value::String(text) => text.parse().map_err(|e| {
            let shown = shorten(&text);
            let error = if shown.len() < text.len() {
                format!("{shown:?}... is not one of {}", names())
            } else {
                format!("{e}; one of {}", names())
            };
            BodyError::field(field, error)
        }),
        other => Err(BodyError::field(
            field,
            format!("must be a string, one of {}, got {}", names(), kind(&other)),
        )),
    }
}

/// What kind of JSON value this is, for error messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most the first 64 characters of `text`, so that an error quoting a
/// client's value stays short whatever was sent.
fn shorten(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// A JSON object's members in the order given, repeated keys kept, so that
/// a repeated field can be refused rather than silently taking its last
/// value.
struct Fields(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldsVisitor;

        impl<'de> Visitor<'de> for FieldsVisitor {
            type Value = Fields;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
                let mut fields = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    fields.push(entry);
                }
                Ok(Fields(fields))
            }
        }

        deserializer.deserialize_map(FieldsVisitor)
    }
}

#[cfg(test)]
mod tests;
