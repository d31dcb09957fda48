use super::summary::restarts;
use super::*;
use crate::DaemonConfig;

#[test]
fn restarts_add_up_rows_nested_reports_and_folded_groups() {
    let report = serde_json::json!({
        "children": [
            {"restarts": {"failure": 1, "bounce": 2, "done": 5, "dependency": 0}},
            {"restarts": {"failure": 0, "bounce": 0, "done": 0, "dependency": 1},
             "report": {
                 "children": [{"restarts": {"failure": 3, "bounce": 0, "done": 0, "dependency": 0}}],
                 "dynamic": {"restarts": {"failure": 40, "bounce": 0, "done": 9, "dependency": 2}},
             }},
        ],
    });
    // Normal exits of permanent children are not counted.
    assert_eq!(restarts(&report), 1 + 2 + 1 + 3 + 40 + 2);
}

#[test]
fn speed_divides_every_duration_of_the_world() {
    let options = DemoOptions {
        speed: 20.0,
        ..DemoOptions::default()
    };
    let config = options.config();
    muster::config::Validate::validate(&config).unwrap();
    let ms = Duration::from_millis;
    assert_eq!(config.machines.poll.short_poll, ms(150));
    assert_eq!(config.machines.poll.short_poll_cap, ms(3000));
    assert_eq!(config.machines.poll.long_poll, ms(45_000));
    assert_eq!(config.supervision.error_delay, ms(150));
    assert_eq!(config.machines.restart.error_delay, ms(150));
    assert_eq!(config.presence.restart.max_delay, ms(6000));
    assert_eq!(config.gateway.window, ms(5));
    assert_eq!(config.gateway.calls_per_second, 100.0);
    assert_eq!(config.backend.sim.pending_for, ms(100));
    assert_eq!(config.backend.sim.allocating_for, ms(400));
    assert_eq!(config.backend.sim.faults.retry_after, Some(ms(100)));
    assert_eq!(config.backend.sim.faults.max_calls_per_second, Some(80));
    assert_eq!(config.http.listen, options.listen);
    assert_eq!(config.agents.listen, options.agents_listen);
    // At 1x the tree runs with its defaults, bar the jitter seed.
    let real = DemoOptions::default().config();
    assert_eq!(real.machines.poll, DaemonConfig::default().machines.poll);
    assert_eq!(real.gateway, DaemonConfig::default().gateway);
}

#[test]
fn options_out_of_range_name_the_flag() {
    for (options, flag) in [
        (
            DemoOptions {
                speed: f64::NAN,
                ..DemoOptions::default()
            },
            "--speed",
        ),
        (
            DemoOptions {
                machines: 2,
                ..DemoOptions::default()
            },
            "--machines",
        ),
        (
            DemoOptions {
                agents: 0,
                ..DemoOptions::default()
            },
            "--agents",
        ),
        (
            DemoOptions {
                agents_listen: ([0, 0, 0, 0], 17070).into(),
                ..DemoOptions::default()
            },
            "--agents-listen",
        ),
        (
            DemoOptions {
                speed: 1e20,
                ..DemoOptions::default()
            },
            "--speed",
        ),
        (
            DemoOptions {
                machines: 100_001,
                ..DemoOptions::default()
            },
            "--machines",
        ),
        (
            DemoOptions {
                agents: usize::MAX,
                ..DemoOptions::default()
            },
            "--agents",
        ),
        (
            DemoOptions {
                token: Some("s3cret ".into()),
                ..DemoOptions::default()
            },
            "--token",
        ),
    ] {
        let error = options.validate().unwrap_err();
        assert!(error.to_string().starts_with(flag), "{error}");
        assert_eq!(error.exit_code(), crate::EXIT_BAD_INPUT);
    }
}

#[test]
fn the_flags_read_numbers_in_range_only() {
    assert_eq!(parse_speed("2.5"), Ok(2.5));
    assert_eq!(parse_speed(" 1000 "), Ok(1000.0));
    assert_eq!(
        parse_speed("1e300"),
        Err("must be from 0.01 to 1000, got 1e300".into())
    );
    assert_eq!(
        parse_speed("NaN"),
        Err("must be from 0.01 to 1000, got NaN".into())
    );
    assert!(parse_speed("").unwrap_err().starts_with("not a number"));
    assert_eq!(parse_machines("100000"), Ok(100_000));
    assert_eq!(
        parse_machines("2"),
        Err("must be from 3 to 100000, got 2".into())
    );
    assert_eq!(parse_agents("3"), Ok(3));
    assert!(
        parse_agents("-1")
            .unwrap_err()
            .starts_with("not a whole number")
    );
}

#[test]
fn the_tree_takes_the_config_of_every_speed_in_range() {
    for speed in [*SPEEDS.start(), 0.5, 1.0, 7.0, *SPEEDS.end()] {
        let options = DemoOptions {
            speed,
            ..DemoOptions::default()
        };
        assert!(options.validate().is_ok());
        let config = options.config();
        if let Err(problems) = muster::config::Validate::validate(&config) {
            panic!("{speed}: {problems}");
        }
        if let Err(problems) = muster::config::Validate::validate(&config.muster()) {
            panic!("{speed}: {problems}");
        }
    }
}

#[test]
fn the_world_has_three_controller_agents_then_the_rest() {
    let world = World::new(
        &DemoOptions {
            machines: 10,
            agents: 40,
            ..DemoOptions::default()
        },
        ConnectionIds::default(),
    );
    assert_eq!(world.agents.len(), 40);
    assert!(world.agents[..3].iter().all(|a| a.controller));
    assert!(world.agents[3..].iter().all(|a| !a.controller));
    let models: std::collections::BTreeSet<_> = world.agents.iter().map(|a| a.model).collect();
    assert_eq!(models.len(), 4);
    // Every agent is named once.
    let names: std::collections::BTreeSet<_> =
        world.agents.iter().map(|a| a.agent.clone()).collect();
    assert_eq!(names.len(), 40);
}
