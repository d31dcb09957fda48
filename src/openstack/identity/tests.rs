use super::*;
use crate::openstack::credentials::Credential;

fn credential(version: IdentityVersion) -> Credential {
    Credential {
        auth_url: match version {
            IdentityVersion::V3 => "https://keystone:5000/v3".into(),
            IdentityVersion::V2 => "https://keystone:5000/v2.0".into(),
        },
        version,
        username: Some("muster".into()),
        user_id: None,
        password: Secret::new("pw"),
        project_name: Some("ops".into()),
        project_id: None,
        user_domain_name: Some("Users".into()),
        user_domain_id: None,
        project_domain_name: None,
        project_domain_id: Some("default".into()),
        interface: None,
        source: "test".into(),
    }
}

#[test]
fn v3_signs_in_with_user_project_and_domains() {
    let credential = credential(IdentityVersion::V3);
    assert_eq!(
        token_url(&credential),
        "https://keystone:5000/v3/auth/tokens"
    );
    assert_eq!(
        request_body(&credential),
        json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "muster", "domain": {"name": "Users"}, "password": "pw"}}},
            "scope": {"project": {"name": "ops", "domain": {"id": "default"}}}
        }})
    );
    let by_id = Credential {
        user_id: Some("u-1".into()),
        project_id: Some("p-1".into()),
        ..credential
    };
    let body = request_body(&by_id);
    assert_eq!(
        body["auth"]["identity"]["password"]["user"],
        json!({"id": "u-1", "password": "pw"})
    );
    assert_eq!(body["auth"]["scope"]["project"], json!({"id": "p-1"}));
}

#[test]
fn v2_signs_in_with_user_and_tenant() {
    let credential = credential(IdentityVersion::V2);
    assert_eq!(token_url(&credential), "https://keystone:5000/v2.0/tokens");
    assert_eq!(
        request_body(&credential),
        json!({"auth": {"passwordCredentials": {"username": "muster", "password": "pw"}, "tenantName": "ops"}})
    );
}

const V3_ANSWER: &str = r#"{"token": {"methods": ["password"], "expires_at": "2026-12-07T21:49:08.000000Z",
  "issued_at": "2026-12-07T20:49:08.000000Z", "catalog": [
  {"type": "compute", "name": "nova", "endpoints": [
    {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": "https://nova/v2.1"},
    {"interface": "internal", "region_id": "RegionOne", "url": "http://nova.internal/v2.1"}]},
  {"type": "identity", "name": "keystone", "endpoints": []}]}}"#;

#[test]
fn a_v3_answer_gives_the_token_its_times_and_the_catalog() {
    let token = parse_answer(
        IdentityVersion::V3,
        Some("gAAAA-token"),
        V3_ANSWER.as_bytes(),
    )
    .unwrap();
    assert_eq!(token.id.expose(), "gAAAA-token");
    assert!(!format!("{token:?}").contains("gAAAA"));
    assert_eq!(
        token.keep_for(SystemTime::now()),
        Duration::from_secs(3600 - 300)
    );
    assert_eq!(
        token
            .catalog
            .endpoint("compute", None, "RegionOne", "internal"),
        Ok(Some("http://nova.internal/v2.1".into()))
    );
    let error = parse_answer(IdentityVersion::V3, None, V3_ANSWER.as_bytes()).unwrap_err();
    assert!(error.contains("X-Subject-Token"), "{error}");
    let error = parse_answer(IdentityVersion::V3, Some("t"), b"<html>").unwrap_err();
    assert!(error.contains("not a Keystone v3 token"), "{error}");
}

#[test]
fn a_v2_answer_gives_every_interface_of_each_endpoint() {
    let answer = r#"{"access": {"token": {"id": "tok", "expires": "2026-12-08T20:41:41.999-05:00",
      "tenant": {"id": "t"}}, "serviceCatalog": [{"type": "compute", "name": "nova", "endpoints": [
      {"region": "ORD", "publicURL": "http://pub/v2/t", "internalURL": "http://int/v2/t"}]}]}}"#;
    let token = parse_answer(IdentityVersion::V2, None, answer.as_bytes()).unwrap();
    assert_eq!(token.id.expose(), "tok");
    let catalog = &token.catalog;
    assert_eq!(
        catalog.endpoint("compute", None, "ORD", "public"),
        Ok(Some("http://pub/v2/t".into()))
    );
    assert_eq!(
        catalog.endpoint("compute", None, "ORD", "internal"),
        Ok(Some("http://int/v2/t".into()))
    );
    assert!(catalog.endpoint("compute", None, "ORD", "admin").is_err());
    // 2026-12-08T20:41:41.999-05:00 is 2026-12-09T01:41:41.999Z.
    let expires = token.expires_at.unwrap();
    let an_hour_before = expires - Duration::from_secs(3600);
    assert_eq!(
        token.keep_for(an_hour_before),
        Duration::from_secs(3600 - 300)
    );
}

#[test]
fn a_token_is_kept_until_shortly_before_it_expires() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let token = |issued: Option<u64>, life: Option<u64>| Token {
        id: Secret::new("t"),
        issued_at: issued.map(|s| now - Duration::from_secs(s)),
        expires_at: life.map(|s| now + Duration::from_secs(s)),
        catalog: Catalog::default(),
    };
    // Ten minutes of life: a tenth kept back.
    assert_eq!(
        token(None, Some(600)).keep_for(now),
        Duration::from_secs(540)
    );
    // A day: five minutes kept back, and 12 hours at most.
    assert_eq!(
        token(None, Some(86_400)).keep_for(now),
        Duration::from_secs(12 * 3600)
    );
    // Issued an hour ago (by Keystone's clock), valid for one more: its
    // whole life counts, not what is left by ours.
    assert_eq!(
        token(Some(3600), Some(3600)).keep_for(now),
        Duration::from_secs(7200 - 300)
    );
    assert_eq!(token(None, None).keep_for(now), Duration::ZERO);
    let expired = Token {
        expires_at: Some(now - Duration::from_secs(1)),
        ..token(None, None)
    };
    assert_eq!(expired.keep_for(now), Duration::ZERO);
}

#[test]
fn times_read_as_keystone_writes_them() {
    let epoch = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    assert_eq!(parse_time("1970-01-01T00:01:00Z"), Some(epoch(60)));
    assert_eq!(parse_time("1970-01-01T00:01:00.000000Z"), Some(epoch(60)));
    assert_eq!(parse_time("1970-01-01T01:01:00+01:00"), Some(epoch(60)));
    assert_eq!(parse_time("1970-01-01T00:01:00"), Some(epoch(60)));
    for bad in [
        "",
        "tomorrow",
        "1969-12-31T23:59:59Z",
        "2026-13-01T00:00:00Z",
    ] {
        assert_eq!(parse_time(bad), None, "{bad}");
    }
}
