//! clouds.yaml, as OpenStack's own tools read it: the standard places, a
//! cloud by name, and secure.yaml's secrets merged over it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_yaml_ng::Value;

/// The largest file read; a real clouds.yaml is a few kilobytes.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The places clouds.yaml is looked for, first found first, as
/// openstacksdk looks: `OS_CLIENT_CONFIG_FILE`, then `./clouds.yaml`,
/// `$XDG_CONFIG_HOME/openstack/` (else `~/.config/openstack/`), and
/// `/etc/openstack/`. secure.yaml is looked for alike, with
/// `OS_CLIENT_SECURE_FILE`.
pub fn standard_places(
    file: &str,
    variable: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(path) = env(variable).filter(|p| !p.trim().is_empty()) {
        places.push(PathBuf::from(path));
    }
    places.push(PathBuf::from(file));
    if let Some(config) = env("XDG_CONFIG_HOME").filter(|p| !p.trim().is_empty()) {
        places.push(Path::new(&config).join("openstack").join(file));
    } else if let Some(home) = env("HOME").filter(|p| !p.trim().is_empty()) {
        places.push(Path::new(&home).join(".config/openstack").join(file));
    }
    places.push(Path::new("/etc/openstack").join(file));
    places
}

/// The first of `places` that exists.
pub fn first_existing(places: &[PathBuf]) -> Option<PathBuf> {
    places.iter().find(|p| p.is_file()).cloned()
}

/// A cloud's settings: its `auth` keys and the keys beside them, every
/// scalar as text. Values are never shown in errors.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CloudEntry {
    /// The keys of `auth:` (`auth_url`, `username`, `password`, ...).
    pub auth: BTreeMap<String, String>,
    /// The other keys (`region_name`, `interface`, `identity_api_version`,
    /// `auth_type`, ...).
    pub settings: BTreeMap<String, String>,
}

impl std::fmt::Debug for CloudEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudEntry")
            .field("auth_keys", &self.auth.keys().collect::<Vec<_>>())
            .field("settings", &self.settings)
            .finish()
    }
}

/// Every cloud of a clouds.yaml (or secure.yaml) file, by name.
pub fn read_clouds(path: &Path) -> Result<BTreeMap<String, CloudEntry>, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than {} KiB; is this a clouds.yaml?",
            MAX_FILE_BYTES / 1024
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    parse_clouds(&text)
}

/// Every cloud of the text of a clouds.yaml file. Errors say where, never
/// a value: YAML's own messages quote the text, so they are not passed on.
pub fn parse_clouds(text: &str) -> Result<BTreeMap<String, CloudEntry>, String> {
    let document: Value = serde_yaml_ng::from_str(text).map_err(|e| match e.location() {
        Some(at) => format!(
            "not valid YAML (line {}, column {})",
            at.line(),
            at.column()
        ),
        None => "not valid YAML".to_owned(),
    })?;
    let clouds = match &document {
        Value::Mapping(top) => top.get("clouds"),
        Value::Null => None,
        _ => return Err("expected a mapping with a `clouds` key".to_owned()),
    };
    let Some(clouds) = clouds else {
        return Err("has no `clouds` key".to_owned());
    };
    let Value::Mapping(clouds) = clouds else {
        return Err("`clouds` must be a mapping of cloud names".to_owned());
    };
    let mut entries = BTreeMap::new();
    for (name, cloud) in clouds {
        let name = scalar(name).ok_or("a cloud's name must be text")?;
        let Value::Mapping(cloud) = cloud else {
            return Err(format!("clouds.{name} must be a mapping"));
        };
        let mut entry = CloudEntry::default();
        for (key, value) in cloud {
            let key = scalar(key).ok_or_else(|| format!("clouds.{name}: a key must be text"))?;
            if key == "auth" {
                let Value::Mapping(auth) = value else {
                    return Err(format!("clouds.{name}.auth must be a mapping"));
                };
                for (key, value) in auth {
                    let key = scalar(key)
                        .ok_or_else(|| format!("clouds.{name}.auth: a key must be text"))?;
                    let text = scalar(value).ok_or_else(|| {
                        format!("clouds.{name}.auth.{key} must be text or a number")
                    })?;
                    entry.auth.insert(key, text);
                }
            } else if let Some(text) = scalar(value) {
                entry.settings.insert(key, text);
            }
        }
        entries.insert(name, entry);
    }
    Ok(entries)
}

/// Merges `secure` (secure.yaml's entry) over `entry`.
pub fn merge(entry: &mut CloudEntry, secure: CloudEntry) {
    entry.auth.extend(secure.auth);
    entry.settings.extend(secure.settings);
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_clouds_with_their_auth_and_settings() {
        let clouds = parse_clouds(
            "clouds:\n  prod:\n    auth:\n      auth_url: https://keystone:5000/v3\n      \
             username: muster\n      password: 'p4ss: word'\n      project_id: 42\n    \
             region_name: RegionOne\n    identity_api_version: 3\n    \
             regions: [a, b]\n  lab:\n    auth: {auth_url: 'http://lab/v2.0'}\n",
        )
        .unwrap();
        assert_eq!(clouds.keys().collect::<Vec<_>>(), ["lab", "prod"]);
        let prod = &clouds["prod"];
        assert_eq!(prod.auth["password"], "p4ss: word");
        assert_eq!(prod.auth["project_id"], "42");
        assert_eq!(prod.settings["identity_api_version"], "3");
        assert!(!prod.settings.contains_key("regions"));
        assert!(!format!("{prod:?}").contains("p4ss"));
    }

    #[test]
    fn errors_name_the_place_and_never_a_value() {
        for (text, expected) in [
            ("", "has no `clouds` key"),
            ("- a\n- b\n", "expected a mapping"),
            ("clouds: 3\n", "`clouds` must be a mapping"),
            ("clouds:\n  x: 3\n", "clouds.x must be a mapping"),
            (
                "clouds:\n  x:\n    auth: [p4ssw0rd]\n",
                "clouds.x.auth must be",
            ),
            (
                "clouds:\n  x:\n    auth:\n      password: [p4ssw0rd]\n",
                "clouds.x.auth.password must be text",
            ),
            ("clouds:\n  x: {auth: p4ssw0rd: :\n", "not valid YAML (line"),
            ("clouds: &a\n  x: *a\n  y: [p4ssw0rd", "not valid YAML"),
            (
                "clouds:\n  x: {auth: {password: p4ssw0rd}}\n  x: {auth: {password: p4ssw0rd}}\n",
                "not valid YAML",
            ),
            (
                "clouds:\n  x:\n    auth: {password: a, password: p4ssw0rd}\n",
                "not valid YAML",
            ),
        ] {
            let error = parse_clouds(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
            assert!(!error.contains("p4ssw0rd"), "{error}");
        }
    }

    #[test]
    fn files_too_large_not_text_or_absent_are_refused() {
        let dir = std::env::temp_dir().join(format!("muster-clouds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let huge = dir.join("huge.yaml");
        std::fs::write(&huge, vec![b'#'; 4 << 20]).unwrap();
        assert!(
            read_clouds(&huge)
                .unwrap_err()
                .contains("larger than 1024 KiB")
        );
        let binary = dir.join("binary.yaml");
        std::fs::write(&binary, [0xff, 0xfe, 0x00]).unwrap();
        assert_eq!(read_clouds(&binary).unwrap_err(), "not UTF-8 text");
        assert!(
            read_clouds(&dir.join("absent"))
                .unwrap_err()
                .starts_with("cannot open")
        );
        assert!(read_clouds(&dir).unwrap_err().starts_with("cannot read"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn secure_yaml_is_merged_over_the_cloud() {
        let mut entry =
            parse_clouds("clouds:\n  c:\n    auth: {username: u}\n").unwrap()["c"].clone();
        let secure = parse_clouds("clouds:\n  c:\n    auth: {password: s}\n").unwrap()["c"].clone();
        merge(&mut entry, secure);
        assert_eq!(entry.auth["username"], "u");
        assert_eq!(entry.auth["password"], "s");
    }

    #[test]
    fn standard_places_follow_openstacksdk() {
        let env = |name: &str| match name {
            "OS_CLIENT_CONFIG_FILE" => Some("/srv/clouds.yaml".to_owned()),
            "HOME" => Some("/home/op".to_owned()),
            _ => None,
        };
        let places = standard_places("clouds.yaml", "OS_CLIENT_CONFIG_FILE", &env);
        let places: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
        assert_eq!(
            places,
            [
                "/srv/clouds.yaml",
                "clouds.yaml",
                "/home/op/.config/openstack/clouds.yaml",
                "/etc/openstack/clouds.yaml"
            ]
        );
    }
}
