//! The first key a JSON object gives more than once: `serde_json` keeps
//! the last value of a repeated key silently, and a login must not mean
//! one thing to muster and another to whatever wrote it.

use std::fmt;

use serde::Deserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};

/// The first key of the JSON object `text` that is repeated; `None` when
/// each is given once, or when `text` is not a JSON object (which the
/// caller has refused already).
pub(crate) fn repeated_key(text: &str) -> Option<String> {
    struct Keys;

    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut seen: Vec<String> = Vec::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if seen.contains(&key) {
                    return Ok(Some(key));
                }
                seen.push(key);
            }
            Ok(None)
        }
    }

    let mut reader = serde_json::Deserializer::from_str(text);
    reader.deserialize_map(Keys).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_repeated_key_is_found_at_the_top_level_only() {
        assert_eq!(repeated_key(r#"{"a":1,"b":2}"#), None);
        assert_eq!(repeated_key(r#"{"a":1,"b":2,"a":3}"#), Some("a".into()));
        assert_eq!(
            repeated_key(r#"{"a":{"x":1,"x":2},"b":1,"b":1}"#),
            Some("b".into())
        );
        assert_eq!(repeated_key(r#"{"a":{"x":1,"x":2}}"#), None);
        assert_eq!(repeated_key("[1,1]"), None);
        assert_eq!(repeated_key(r#"{"\u0061":1,"a":2}"#), Some("a".into()));
    }
}
