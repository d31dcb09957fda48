use super::*;

fn node() -> MachineTag {
    "machine-1".parse().unwrap()
}

fn conn(id: u64) -> Conn {
    Conn {
        id,
        model: ModelUuid::from_u128(0xdeadbeef_0bad_400d_8000_4b1d0d06f00d),
        agent: format!("unit-wordpress-{id}").parse().unwrap(),
        controller_agent: id.is_multiple_of(7),
        user_data: if id.is_multiple_of(3) {
            String::new()
        } else {
            format!("agent {id} \"quoted\"")
        },
    }
}

const INCARNATION: Incarnation = Incarnation(0x0123_4567_89ab_cdef);

#[test]
fn subjects_name_the_cluster_and_the_node() {
    let subjects = Subjects::new("prod");
    assert_eq!(
        subjects.feed(&node()),
        "muster.prod.presence.feed.machine-1"
    );
    assert_eq!(subjects.feeds(), "muster.prod.presence.feed.*");
    assert_eq!(
        subjects.snapshot(&node()),
        "muster.prod.presence.snapshot.machine-1"
    );
    assert_eq!(
        subjects.feed_node("muster.prod.presence.feed.machine-1"),
        Some(node())
    );
    for other in [
        "muster.other.presence.feed.machine-1",
        "muster.prod.presence.feed.unit-x-1",
        "muster.prod.presence.snapshot.machine-1",
        "muster.prod.presence.feed.",
    ] {
        assert_eq!(subjects.feed_node(other), None, "{other}");
    }
}

#[test]
fn the_wire_format_is_as_documented() {
    let events = events_messages(
        &node(),
        INCARNATION,
        &[
            Event {
                seq: 7,
                op: Op::Connect(conn(1)),
            },
            Event {
                seq: 8,
                op: Op::Disconnect(41),
            },
        ],
        1 << 20,
    )
    .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        std::str::from_utf8(&events[0]).unwrap(),
        r#"{"type":"events","node":"machine-1","incarnation":"0123456789abcdef","events":[{"seq":7,"connect":{"id":1,"model":"deadbeef-0bad-400d-8000-4b1d0d06f00d","agent":"unit-wordpress-1","user_data":"agent 1 \"quoted\""}},{"seq":8,"disconnect":41}]}"#
    );
    let decoded: Feed = serde_json::from_slice(&events[0]).unwrap();
    assert_eq!(decoded.node(), &node());
    assert_eq!(
        std::str::from_utf8(&heartbeat(&node(), INCARNATION, 8)).unwrap(),
        r#"{"type":"heartbeat","node":"machine-1","incarnation":"0123456789abcdef","seq":8}"#
    );
    assert_eq!(
        std::str::from_utf8(&snapshot_request(&node())).unwrap(),
        r#"{"node":"machine-1"}"#
    );
    let parts = snapshot_parts(&node(), INCARNATION, 8, &[conn(7)], 1 << 20).unwrap();
    assert_eq!(
        std::str::from_utf8(&parts[0]).unwrap(),
        r#"{"node":"machine-1","incarnation":"0123456789abcdef","seq":8,"part":0,"parts":1,"connections":[{"id":7,"model":"deadbeef-0bad-400d-8000-4b1d0d06f00d","agent":"unit-wordpress-7","controller_agent":true,"user_data":"agent 7 \"quoted\""}]}"#
    );
}

#[test]
fn what_does_not_read_is_refused_naming_why() {
    for (text, want) in [
        ("", "EOF"),
        ("{}", "missing field `type`"),
        (r#"{"type":"gossip"}"#, "unknown variant `gossip`"),
        (
            r#"{"type":"heartbeat","node":"unit-x-0","incarnation":"0123456789abcdef","seq":1}"#,
            "not a valid machine tag",
        ),
        (
            r#"{"type":"heartbeat","node":"machine-0","incarnation":"12","seq":1}"#,
            "not 16 hexadecimal digits",
        ),
        (
            r#"{"type":"heartbeat","node":"machine-0","incarnation":"0123456789abcdef","seq":-1}"#,
            "invalid value",
        ),
        (
            r#"{"type":"events","node":"machine-0","incarnation":"0123456789abcdef","events":[{"seq":1,"vanish":3}]}"#,
            "no variant of enum Op",
        ),
    ] {
        let error = serde_json::from_str::<Feed>(text).unwrap_err().to_string();
        assert!(error.contains(want), "{text}: {error}");
    }
}

#[test]
fn a_snapshot_of_100000_connections_fits_in_parts_and_comes_back_whole() {
    let connections: Vec<Conn> = (0..100_000).map(conn).collect();
    let limit = 1 << 20;
    let mut parts = snapshot_parts(&node(), INCARNATION, 99, &connections, limit).unwrap();
    assert!(parts.len() > 5, "{} parts", parts.len());
    assert!(parts.iter().all(|p| p.len() <= limit - HEAD_ROOM + 256));
    // Parts may come in any order, and one twice.
    parts.reverse();
    parts.push(parts[0].clone());
    let mut assembly = Assembly::default();
    let mut whole = None;
    for bytes in &parts {
        let part: Part = serde_json::from_slice(bytes).unwrap();
        if let Some(done) = assembly.add(part).unwrap() {
            whole = Some(done);
        }
    }
    let whole = whole.expect("every part came");
    assert_eq!(
        (whole.node, whole.incarnation, whole.seq),
        (node(), INCARNATION, 99)
    );
    assert_eq!(whole.connections, connections);
}

#[test]
fn no_connections_is_one_empty_part() {
    let parts = snapshot_parts(&node(), INCARNATION, 0, &[], 1 << 20).unwrap();
    assert_eq!(parts.len(), 1);
    let part: Part = serde_json::from_slice(&parts[0]).unwrap();
    assert_eq!((part.part, part.parts, part.connections.len()), (0, 1, 0));
    let whole = Assembly::default().add(part).unwrap().unwrap();
    assert!(whole.connections.is_empty());
}

#[test]
fn a_value_larger_than_a_message_is_refused() {
    let mut big = conn(1);
    big.user_data = "x".repeat(4096);
    let error = snapshot_parts(&node(), INCARNATION, 0, &[big], 4096).unwrap_err();
    assert_eq!(error.limit, 4096);
    // The smallest payload a server may announce still carries a login's
    // worth of user data.
    let mut login = conn(1);
    login.user_data = "\u{1}".repeat(1024);
    assert!(snapshot_parts(&node(), INCARNATION, 0, &[login], 8192).is_ok());
}

#[test]
fn packing_never_splits_a_value_and_never_exceeds_the_budget() {
    let items: Vec<Vec<u8>> = (1..200).map(|n| vec![b'1'; n % 37 + 1]).collect();
    let limit = HEAD_ROOM + 100;
    let runs = pack(items.clone(), limit).unwrap();
    for run in &runs {
        assert!(!run.is_empty());
        let size: usize = run.iter().map(Vec::len).sum::<usize>() + run.len() - 1;
        assert!(size <= 100, "{size}");
    }
    assert_eq!(runs.concat(), items);
}

#[test]
fn parts_that_do_not_belong_together_are_refused() {
    let part = |seq: u64, part: u32, parts: u32| Part {
        node: node(),
        incarnation: INCARNATION,
        seq,
        part,
        parts,
        connections: vec![conn(u64::from(part))],
    };
    let mut assembly = Assembly::default();
    assert_eq!(assembly.add(part(5, 0, 3)), Ok(None));
    assert_eq!(
        assembly.add(part(6, 1, 3)),
        Err(BadPart::Mismatch { part: 1, parts: 3 })
    );
    assert_eq!(
        assembly.add(part(5, 1, 4)),
        Err(BadPart::Mismatch { part: 1, parts: 4 })
    );
    assert_eq!(
        assembly.add(part(5, 3, 3)),
        Err(BadPart::OutOfRange { part: 3, parts: 3 })
    );
    assert_eq!(
        Assembly::default().add(part(5, 0, 0)),
        Err(BadPart::OutOfRange { part: 0, parts: 0 })
    );
    assert_eq!(assembly.received(), 1);
    assert_eq!(assembly.add(part(5, 2, 3)), Ok(None));
    let whole = assembly.add(part(5, 1, 3)).unwrap().unwrap();
    let ids: Vec<u64> = whole.connections.iter().map(|c| c.id).collect();
    assert_eq!(ids, [0, 1, 2]);
}
