//! The login frame an agent sends first, read field by field so that a bad
//! one is refused with a reason naming the field.

use muster::names::{AgentTag, ModelUuid};
use serde_json::{Map, Value};

/// The most user data a login may carry, in bytes.
pub const MAX_USER_DATA: usize = 1024;

/// The longest agent tag a login may give, in bytes: Juju's tags are far
/// shorter, and every peer's snapshot carries each tag.
pub const MAX_AGENT_TAG: usize = 255;

/// Close code of a login that does not read.
pub const BAD_LOGIN: u16 = 4400;
/// Close code of a missing or wrong token or password, and of a
/// connection whose password was rotated or removed.
pub const BAD_TOKEN: u16 = 4401;
/// Close code of a login that did not come in time, or of a connection
/// silent for too long.
pub const TIMED_OUT: u16 = 4408;
/// Close code of a login while presence is not being recorded.
pub const NOT_RECORDING: u16 = 4503;

/// The longest reason a close frame can carry, in bytes.
const MAX_REASON: usize = 123;

/// A login that was accepted. Its `Debug` leaves the password out.
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// The agent's model.
    pub model: ModelUuid,
    /// The agent.
    pub agent: AgentTag,
    /// Whatever the agent says of itself (its version, say).
    pub user_data: String,
    /// Whether the agent is a controller's own.
    pub controller_agent: bool,
    /// The agent's own password, as given; checked by the door when
    /// `auth = "password"` (`passwords`).
    pub password: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("model", &self.model)
            .field("agent", &self.agent)
            .field("user_data", &self.user_data)
            .field("controller_agent", &self.controller_agent)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

/// Why a login was refused: the close code and its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The WebSocket close code.
    pub code: u16,
    /// What was wrong, naming the field; at most 123 bytes, as a close
    /// frame requires.
    pub reason: String,
}

impl Refusal {
    /// A refusal with `reason` cut to what a close frame can carry.
    pub fn new(code: u16, reason: impl Into<String>) -> Self {
        let mut reason = reason.into();
        if reason.len() > MAX_REASON {
            let mut end = MAX_REASON - '…'.len_utf8();
            while !reason.is_char_boundary(end) {
                end -= 1;
            }
            reason.truncate(end);
            reason.push('…');
        }
        Refusal { code, reason }
    }

    fn field(field: &str, reason: impl std::fmt::Display) -> Self {
        Refusal::new(BAD_LOGIN, format!("{field}: {reason}"))
    }
}

const FIELDS: [&str; 6] = [
    "model",
    "agent",
    "user_data",
    "controller_agent",
    "token",
    "password",
];

/// Reads a login frame's text and checks its token against `token` (when
/// one is configured).
pub fn read(text: &str, token: Option<&str>) -> Result<Login, Refusal> {
    let object: Map<String, Value> = match serde_json::from_str(text) {
        Ok(Value::Object(object)) => object,
        Ok(_) => return Err(Refusal::new(BAD_LOGIN, "login: not a JSON object")),
        Err(e) => return Err(Refusal::new(BAD_LOGIN, format!("login: not JSON: {e}"))),
    };
    if let Some(twice) = crate::repeated::repeated_key(text) {
        let name = if FIELDS.contains(&twice.as_str()) {
            twice
        } else {
            quoted(&twice)
        };
        return Err(Refusal::field(&name, "given more than once"));
    }
    if let Some(unknown) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(Refusal::field(
            &quoted(unknown),
            "unknown field; expected model, agent, user_data, controller_agent, token, password",
        ));
    }
    let string = |field: &str| match object.get(field) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text.as_str())),
        Some(_) => Err(Refusal::field(field, "not a string")),
    };
    let model = string("model")?.ok_or_else(|| Refusal::field("model", "missing"))?;
    let model: ModelUuid = model
        .parse()
        .map_err(|_| Refusal::field("model", format!("{} is not a model UUID", quoted(model))))?;
    let agent = string("agent")?.ok_or_else(|| Refusal::field("agent", "missing"))?;
    if agent.len() > MAX_AGENT_TAG {
        let long = format!("longer than {MAX_AGENT_TAG} bytes ({} bytes)", agent.len());
        return Err(Refusal::field("agent", long));
    }
    let agent: AgentTag = agent
        .parse()
        .map_err(|_| Refusal::field("agent", format!("{} is not an agent tag", quoted(agent))))?;
    let user_data = string("user_data")?.unwrap_or_default();
    if user_data.len() > MAX_USER_DATA {
        return Err(Refusal::field(
            "user_data",
            format!(
                "longer than {MAX_USER_DATA} bytes ({} bytes)",
                user_data.len()
            ),
        ));
    }
    let controller_agent = match object.get("controller_agent") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(Refusal::field("controller_agent", "not true or false")),
    };
    let password = string("password")?.map(str::to_owned);
    let given = string("token")?;
    if let Some(expected) = token {
        match given {
            None => return Err(Refusal::new(BAD_TOKEN, "token: missing")),
            Some(given) if !muster::token::matches(given, expected) => {
                return Err(Refusal::new(BAD_TOKEN, "token: wrong"));
            }
            Some(_) => {}
        }
    }
    Ok(Login {
        model,
        agent,
        user_data: user_data.to_owned(),
        controller_agent,
        password,
    })
}

/// `text` in quotes, shortened to keep the reason within a close frame.
fn quoted(text: &str) -> String {
    const SHOWN: usize = 40;
    match text.char_indices().nth(SHOWN) {
        Some((end, _)) => format!("{:?}…", &text[..end]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &str = "deadbeef-0bad-400d-8000-4b1d0d06f00d";

    fn refusal(text: &str, token: Option<&str>) -> (u16, String) {
        let r = read(text, token).unwrap_err();
        assert!(r.reason.len() <= MAX_REASON, "{}", r.reason);
        (r.code, r.reason)
    }

    #[test]
    fn a_full_login_reads() {
        let login = read(
            &format!(
                r#"{{"model":"{MODEL}","agent":"unit-mysql-0","user_data":"4.0.1","controller_agent":true,"token":"t"}}"#
            ),
            Some("t"),
        )
        .unwrap();
        assert_eq!(login.agent.as_str(), "unit-mysql-0");
        assert_eq!(login.model.to_string(), MODEL);
        assert_eq!(login.user_data, "4.0.1");
        assert!(login.controller_agent);
        // The optional fields take their defaults; a token given where none
        // is wanted is ignored.
        let login = read(
            &format!(r#"{{"model":"{MODEL}","agent":"machine-3","token":"x"}}"#),
            None,
        )
        .unwrap();
        assert_eq!(login.user_data, "");
        assert!(!login.controller_agent);
        assert_eq!(login.password, None);
        // The password is read as given, and never shown in a debug print.
        let login = read(
            &format!(r#"{{"model":"{MODEL}","agent":"machine-3","password":"pw-Secret_1"}}"#),
            None,
        )
        .unwrap();
        assert_eq!(login.password.as_deref(), Some("pw-Secret_1"));
        assert!(!format!("{login:?}").contains("pw-Secret_1"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let ok = |rest: &str| format!(r#"{{"model":"{MODEL}","agent":"machine-1"{rest}}}"#);
        for (text, want) in [
            ("".to_owned(), "login: not JSON"),
            ("nope".to_owned(), "login: not JSON"),
            ("[1,2]".to_owned(), "login: not a JSON object"),
            ("\"x\"".to_owned(), "login: not a JSON object"),
            ("{".to_owned(), "login: not JSON"),
            ("[".repeat(100_000), "login: not JSON"),
            (r#"{"agent":"machine-1"}"#.to_owned(), "model: missing"),
            (format!(r#"{{"model":"{MODEL}"}}"#), "agent: missing"),
            (
                r#"{"model":7,"agent":"machine-1"}"#.to_owned(),
                "model: not a string",
            ),
            (
                r#"{"model":"nope","agent":"machine-1"}"#.to_owned(),
                "model: \"nope\" is not a model UUID",
            ),
            (
                format!(r#"{{"model":"{MODEL}","agent":"machine-x"}}"#),
                "agent: \"machine-x\" is not an agent tag",
            ),
            (
                format!(r#"{{"model":"{MODEL}","agent":""}}"#),
                "agent: \"\" is not an agent tag",
            ),
            (
                format!(r#"{{"model":"{MODEL}","agent":null}}"#),
                "agent: not a string",
            ),
            (ok(r#","colour":"blue""#), "\"colour\": unknown field"),
            (ok(r#","user_data":3"#), "user_data: not a string"),
            (
                ok(&format!(r#","user_data":"{}""#, "é".repeat(513))),
                "user_data: longer than 1024 bytes (1026 bytes)",
            ),
            (
                ok(r#","controller_agent":"yes""#),
                "controller_agent: not true or false",
            ),
            (ok(r#","token":false"#), "token: not a string"),
            (ok(r#","password":7"#), "password: not a string"),
        ] {
            let (code, reason) = refusal(&text, None);
            assert_eq!(code, BAD_LOGIN, "{text:.80}");
            assert!(reason.starts_with(want), "{text:.80}: {reason}");
        }
        // User data of exactly the limit is fine.
        let limit = ok(&format!(r#","user_data":"{}""#, "x".repeat(MAX_USER_DATA)));
        assert!(read(&limit, None).is_ok());
    }

    #[test]
    fn a_field_given_twice_is_refused_naming_it() {
        let agent = format!(r#"{{"model":"{MODEL}","agent":"machine-1","agent":"machine-2"}}"#);
        assert_eq!(
            refusal(&agent, None),
            (BAD_LOGIN, "agent: given more than once".to_owned())
        );
        // A token given twice is refused whichever of them is right.
        let token = format!(r#"{{"model":"{MODEL}","agent":"machine-1","token":"x","token":"t"}}"#);
        assert_eq!(
            refusal(&token, Some("t")),
            (BAD_LOGIN, "token: given more than once".to_owned())
        );
        let unknown = format!(r#"{{"model":"{MODEL}","agent":"machine-1","c":1,"c":2}}"#);
        assert_eq!(
            refusal(&unknown, None),
            (BAD_LOGIN, "\"c\": given more than once".to_owned())
        );
    }

    #[test]
    fn an_agent_tag_longer_than_255_bytes_is_refused_naming_agent() {
        let login = |agent: &str| format!(r#"{{"model":"{MODEL}","agent":"{agent}"}}"#);
        let longest = format!("unit-{}-0", "a".repeat(MAX_AGENT_TAG - 7));
        assert_eq!(longest.len(), MAX_AGENT_TAG);
        assert_eq!(
            read(&login(&longest), None).unwrap().agent.as_str(),
            longest
        );
        for (agent, bytes) in [
            (format!("unit-{}-0", "a".repeat(MAX_AGENT_TAG - 6)), 256),
            (format!("unit-{}-0", "a".repeat(5000)), 5007),
            (format!("unit-{}-0", "a".repeat(2 << 20)), (2 << 20) + 7),
        ] {
            assert_eq!(
                refusal(&login(&agent), None),
                (
                    BAD_LOGIN,
                    format!("agent: longer than 255 bytes ({bytes} bytes)")
                )
            );
        }
    }

    #[test]
    fn long_values_are_cut_to_fit_a_close_frame() {
        let model = "é".repeat(5000);
        let (code, reason) = refusal(
            &format!(r#"{{"model":"{model}","agent":"machine-1"}}"#),
            None,
        );
        assert_eq!(code, BAD_LOGIN);
        assert!(reason.starts_with("model: \"ééé"), "{reason}");
        let key = "k".repeat(10_000);
        let (_, reason) = refusal(&format!(r#"{{"{key}":1}}"#), None);
        assert!(reason.starts_with("\"kkk"), "{reason}");
        let cut = Refusal::new(BAD_LOGIN, "é".repeat(200));
        assert!(cut.reason.len() <= MAX_REASON);
        assert!(cut.reason.ends_with('…'));
    }

    #[test]
    fn the_token_is_checked_when_configured() {
        let login = |token: &str| format!(r#"{{"model":"{MODEL}","agent":"machine-1"{token}}}"#);
        assert_eq!(
            refusal(&login(""), Some("s3cret")),
            (BAD_TOKEN, "token: missing".to_owned())
        );
        for wrong in ["", "s3cre", "s3cret!", "S3CRET"] {
            assert_eq!(
                refusal(&login(&format!(r#","token":"{wrong}""#)), Some("s3cret")),
                (BAD_TOKEN, "token: wrong".to_owned())
            );
        }
        assert!(read(&login(r#","token":"s3cret""#), Some("s3cret")).is_ok());
    }
}
