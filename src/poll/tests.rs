use super::*;
use crate::config::Validate;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn seen(status: InstanceStatus, machine: MachineStatus, addresses: usize) -> Observation {
    Observation {
        instance_status: status,
        machine_status: machine,
        address_count: addresses,
    }
}

fn settled() -> Observation {
    seen(InstanceStatus::Running, MachineStatus::Started, 1)
}

/// A machine in the long phase, polled at `now`.
fn long_phase(now: Instant) -> PollState {
    let mut state = PollState::new(&PollConfig::default(), now);
    assert_eq!(state.observe(&settled(), now), Rule::Settled);
    state
}

#[test]
fn a_new_machine_lands_in_the_short_phase() {
    let now = Instant::now();
    let state = PollState::new(&PollConfig::default(), now);
    assert_eq!(state.phase(), Phase::Short);
    assert_eq!(state.interval(), secs(3));
    assert_eq!(state.next_poll(), now + secs(3));
    assert!(!state.is_due(now + secs(2)));
    assert!(state.is_due(now + secs(3)));
}

#[test]
fn bumping_doubles_up_to_the_cap() {
    let now = Instant::now();
    let mut state = PollState::new(&PollConfig::default(), now);
    let mut intervals = vec![state.interval().as_secs()];
    let mut at = now;
    for _ in 0..6 {
        at += state.interval();
        state.bump(at);
        assert_eq!(state.next_poll(), at + state.interval());
        intervals.push(state.interval().as_secs());
    }
    assert_eq!(intervals, [3, 6, 12, 24, 48, 60, 60]);
}

#[test]
fn reset_goes_back_to_the_short_poll() {
    let now = Instant::now();
    let mut state = PollState::new(&PollConfig::default(), now);
    state.bump(now);
    state.bump(now);
    assert_eq!(state.interval(), secs(12));
    state.reset(now + secs(100));
    assert_eq!(state.interval(), secs(3));
    assert_eq!(state.next_poll(), now + secs(103));
}

#[test]
fn a_bumped_machine_is_not_due_before_its_time() {
    let now = Instant::now();
    let mut state = PollState::new(&PollConfig::default(), now);
    state.bump(now + secs(3));
    assert!(!state.is_due(now + secs(8)));
    assert!(state.is_due(now + secs(9)));
}

#[test]
fn rule_1_pending_or_allocating_bumps_and_keeps_the_phase() {
    let now = Instant::now();
    for status in [InstanceStatus::Pending, InstanceStatus::Allocating] {
        let mut state = PollState::new(&PollConfig::default(), now);
        // Even with an address and a started agent.
        let rule = state.observe(&seen(status, MachineStatus::Started, 1), now);
        assert_eq!(rule, Rule::StillStarting);
        assert_eq!(state.phase(), Phase::Short);
        assert_eq!(state.interval(), secs(6));

        let mut state = long_phase(now);
        let rule = state.observe(&seen(status, MachineStatus::Pending, 0), now);
        assert_eq!(rule, Rule::StillStarting);
        assert_eq!(state.phase(), Phase::Long);
        assert_eq!(state.next_poll(), now + secs(900));
    }
}

#[test]
fn rule_2_long_phase_unknown_or_addressless_goes_back_to_short() {
    let now = Instant::now();
    for observation in [
        seen(InstanceStatus::Unknown, MachineStatus::Started, 2),
        seen(InstanceStatus::Running, MachineStatus::Started, 0),
    ] {
        let mut state = long_phase(now);
        state.bump(now);
        let later = now + secs(900);
        assert_eq!(state.observe(&observation, later), Rule::BackToShort);
        assert_eq!(state.phase(), Phase::Short);
        assert_eq!(state.interval(), secs(3));
        assert_eq!(state.next_poll(), later + secs(3));
    }
    // In the short phase the same observation is an ordinary bump.
    let mut state = PollState::new(&PollConfig::default(), now);
    let rule = state.observe(
        &seen(InstanceStatus::Unknown, MachineStatus::Started, 0),
        now,
    );
    assert_eq!(rule, Rule::Bumped);
}

#[test]
fn rule_3_an_address_and_a_started_agent_move_to_long() {
    let now = Instant::now();
    let mut state = PollState::new(&PollConfig::default(), now);
    assert_eq!(state.observe(&settled(), now), Rule::Settled);
    assert_eq!(state.phase(), Phase::Long);
    assert_eq!(state.interval(), secs(900));
    assert_eq!(state.next_poll(), now + secs(900));
    // A settled machine stays settled.
    assert_eq!(state.observe(&settled(), now + secs(900)), Rule::Settled);
    assert_eq!(state.next_poll(), now + secs(1800));
}

#[test]
fn rule_4_otherwise_the_short_phase_bumps() {
    let now = Instant::now();
    for observation in [
        seen(InstanceStatus::Running, MachineStatus::Pending, 1),
        seen(InstanceStatus::Running, MachineStatus::Started, 0),
        seen(InstanceStatus::Stopped, MachineStatus::Down, 0),
        seen(InstanceStatus::ProvisioningError, MachineStatus::Error, 0),
    ] {
        let mut state = PollState::new(&PollConfig::default(), now);
        assert_eq!(state.observe(&observation, now), Rule::Bumped);
        assert_eq!(state.phase(), Phase::Short);
        assert_eq!(state.interval(), secs(6));
    }
    // In the long phase, an unsettled but addressed machine stays there.
    let mut state = long_phase(now);
    let down = seen(InstanceStatus::Running, MachineStatus::Down, 1);
    assert_eq!(state.observe(&down, now + secs(900)), Rule::Unchanged);
    assert_eq!(state.phase(), Phase::Long);
    assert_eq!(state.next_poll(), now + secs(1800));
}

#[test]
fn a_watcher_event_moves_a_long_phase_machine_to_short_reset() {
    let now = Instant::now();
    let mut state = long_phase(now);
    state.bump(now);
    state.bump(now);
    state.watcher_event(now + secs(10));
    assert_eq!(state.phase(), Phase::Short);
    assert_eq!(state.interval(), secs(3));
    assert_eq!(state.next_poll(), now + secs(13));
}

#[test]
fn becoming_running_resets_the_interval() {
    let now = Instant::now();
    let mut state = PollState::new(&PollConfig::default(), now);
    state.bump(now);
    state.bump(now);
    state.instance_status_changed(InstanceStatus::Allocating, now);
    assert_eq!(state.interval(), secs(12));
    state.instance_status_changed(InstanceStatus::Running, now);
    assert_eq!(state.interval(), secs(3));
    // Then the rules run: running without an address bumps from 3 s.
    let rule = state.observe(
        &seen(InstanceStatus::Running, MachineStatus::Pending, 0),
        now,
    );
    assert_eq!(rule, Rule::Bumped);
    assert_eq!(state.interval(), secs(6));
}

#[test]
fn a_missing_instance_bumps_only_in_the_short_phase() {
    let now = Instant::now();
    let mut state = PollState::new(&PollConfig::default(), now);
    state.instance_missing(now);
    assert_eq!(state.interval(), secs(6));
    let mut state = long_phase(now);
    state.instance_missing(now + secs(900));
    assert_eq!(state.phase(), Phase::Long);
    assert_eq!(state.short_interval(), secs(3));
    assert_eq!(state.next_poll(), now + secs(1800));
}

#[test]
fn the_config_defaults_are_juju_s() {
    let config = PollConfig::default();
    assert_eq!(config.short_poll, secs(3));
    assert_eq!(config.short_poll_backoff, 2.0);
    assert_eq!(config.short_poll_cap, secs(60));
    assert_eq!(config.long_poll, secs(900));
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn validation_names_the_field() {
    let base = PollConfig::default();
    let cases: [(PollConfig, &str, &str); 8] = [
        (
            PollConfig {
                short_poll: Duration::ZERO,
                ..base
            },
            "short_poll",
            "positive",
        ),
        (
            PollConfig {
                short_poll_cap: Duration::ZERO,
                ..base
            },
            "short_poll_cap",
            "positive",
        ),
        (
            PollConfig {
                long_poll: Duration::ZERO,
                ..base
            },
            "long_poll",
            "positive",
        ),
        (
            PollConfig {
                short_poll_backoff: 0.5,
                ..base
            },
            "short_poll_backoff",
            "must be a number from 1 to 100",
        ),
        (
            PollConfig {
                short_poll_backoff: f64::NAN,
                ..base
            },
            "short_poll_backoff",
            "= nan",
        ),
        (
            PollConfig {
                short_poll_backoff: f64::INFINITY,
                ..base
            },
            "short_poll_backoff",
            "= inf",
        ),
        (
            PollConfig {
                short_poll: secs(120),
                ..base
            },
            "short_poll",
            "short_poll_cap (2m > 1m)",
        ),
        (
            PollConfig {
                short_poll_cap: secs(3600),
                ..base
            },
            "short_poll_cap",
            "long_poll (1h > 15m)",
        ),
    ];
    for (config, field, words) in cases {
        let err = config.validate().unwrap_err();
        assert_eq!(err.keys(), [field], "{err}");
        let message = err.to_string();
        assert!(message.starts_with(&format!("{field} = ")), "{message}");
        assert!(message.contains(words), "{message}");
    }
    // Equal values are allowed.
    let tight = PollConfig {
        short_poll: secs(60),
        short_poll_backoff: 1.0,
        short_poll_cap: secs(60),
        long_poll: secs(60),
    };
    assert_eq!(tight.validate(), Ok(()));
}

#[test]
fn config_reads_and_writes_human_durations() {
    let config: PollConfig = serde_json::from_str(
        r#"{"short_poll": "1s", "short_poll_backoff": 1.5, "short_poll_cap": "30s", "long_poll": "5m"}"#,
    )
    .unwrap();
    assert_eq!(
        config,
        PollConfig {
            short_poll: secs(1),
            short_poll_backoff: 1.5,
            short_poll_cap: secs(30),
            long_poll: secs(300),
        }
    );
    let json = serde_json::to_value(config).unwrap();
    assert_eq!(json["short_poll"], "1s");
    assert_eq!(json["long_poll"], "5m");
    assert_eq!(serde_json::from_value::<PollConfig>(json).unwrap(), config);
    let partial: PollConfig = serde_json::from_str(r#"{"long_poll": "20m"}"#).unwrap();
    assert_eq!(partial.long_poll, secs(1200));
    assert_eq!(partial.short_poll, secs(3));
}

#[test]
fn config_refuses_bad_durations_naming_the_text() {
    for (json, text) in [
        (r#"{"short_poll": "10"}"#, r#""10""#),
        (r#"{"long_poll": "-3s"}"#, r#""-3s""#),
        (r#"{"short_poll_cap": "soon"}"#, r#""soon""#),
        (r#"{"short_poll": 3}"#, "integer `3`"),
    ] {
        let err = serde_json::from_str::<PollConfig>(json)
            .unwrap_err()
            .to_string();
        assert!(err.contains(text), "{err}");
        assert!(err.contains("expected a duration"), "{err}");
    }
    let err = serde_json::from_str::<PollConfig>(r#"{"shortpoll": "3s"}"#).unwrap_err();
    assert!(
        err.to_string().contains("unknown field `shortpoll`"),
        "{err}"
    );
    // Reading checks the spelling only; the ranges are the check's.
    let zero: PollConfig = serde_json::from_str(r#"{"short_poll": "0s"}"#).unwrap();
    assert_eq!(
        zero.validate().unwrap_err().lines(),
        ["short_poll = \"0s\": must be a positive duration of at most 1year"]
    );
    let huge = PollConfig {
        short_poll_backoff: 1e308,
        long_poll: Duration::MAX,
        ..PollConfig::default()
    };
    assert_eq!(
        huge.validate().unwrap_err().keys(),
        ["short_poll_backoff", "long_poll"]
    );
}

#[test]
fn unvalidated_extremes_do_not_panic() {
    let now = Instant::now();
    let config = PollConfig {
        short_poll: Duration::MAX,
        short_poll_backoff: f64::INFINITY,
        short_poll_cap: Duration::MAX,
        long_poll: Duration::MAX,
    };
    let mut state = PollState::new(&config, now);
    state.bump(now);
    state.observe(&settled(), now);
    state.bump(now);
    assert!(state.next_poll() > now);
    let config = PollConfig {
        short_poll: secs(3),
        short_poll_backoff: f64::NAN,
        short_poll_cap: Duration::ZERO,
        long_poll: Duration::ZERO,
    };
    let mut state = PollState::new(&config, now);
    state.bump(now);
    state.reset(now);
    assert!(state.next_poll() >= now);
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    fn any_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::MAX),
            (0u64..100_000).prop_map(Duration::from_millis),
            any::<u64>().prop_map(Duration::from_nanos),
            any::<(u64, u32)>().prop_map(|(s, n)| Duration::new(s, n % 1_000_000_000)),
        ]
    }

    fn any_factor() -> impl Strategy<Value = f64> {
        prop_oneof![
            any::<f64>(),
            0.0..10.0f64,
            Just(f64::NAN),
            Just(f64::INFINITY)
        ]
    }

    fn any_status() -> impl Strategy<Value = InstanceStatus> {
        prop::sample::select(InstanceStatus::ALL)
    }

    fn any_machine_status() -> impl Strategy<Value = MachineStatus> {
        prop::sample::select(MachineStatus::ALL)
    }

    #[derive(Debug, Clone)]
    enum Op {
        Bump,
        Reset,
        Watcher,
        Missing,
        /// One poll: the status, whether it changed, the agent status and
        /// the address count.
        Poll(InstanceStatus, bool, MachineStatus, usize),
    }

    fn any_op() -> impl Strategy<Value = Op> {
        prop_oneof![
            Just(Op::Bump),
            Just(Op::Reset),
            Just(Op::Watcher),
            Just(Op::Missing),
            (any_status(), any::<bool>(), any_machine_status(), 0usize..3)
                .prop_map(|(s, c, m, n)| Op::Poll(s, c, m, n)),
        ]
    }

    fn apply(state: &mut PollState, op: &Op, now: Instant) {
        match op {
            Op::Bump => state.bump(now),
            Op::Reset => state.reset(now),
            Op::Watcher => state.watcher_event(now),
            Op::Missing => state.instance_missing(now),
            Op::Poll(status, changed, machine, addresses) => {
                if *changed {
                    state.instance_status_changed(*status, now);
                }
                state.observe(&seen(*status, *machine, *addresses), now);
            }
        }
    }

    proptest! {
        #[test]
        fn any_config_and_any_sequence_never_panic(
            short_poll in any_duration(),
            short_poll_backoff in any_factor(),
            short_poll_cap in any_duration(),
            long_poll in any_duration(),
            ops in prop::collection::vec((any_op(), 0u64..2_000_000), 0..40),
        ) {
            let config = PollConfig { short_poll, short_poll_backoff, short_poll_cap, long_poll };
            let _ = config.validate();
            let mut now = Instant::now();
            let mut state = PollState::new(&config, now);
            for (op, step_ms) in &ops {
                now += Duration::from_millis(*step_ms);
                apply(&mut state, op, now);
                prop_assert!(state.next_poll() >= now);
            }
        }

        #[test]
        fn a_valid_config_keeps_the_interval_within_its_bounds(
            short_ms in 1u64..10_000,
            factor in 1.0..5.0f64,
            cap_extra_ms in 0u64..100_000,
            long_extra_ms in 0u64..1_000_000,
            ops in prop::collection::vec((any_op(), 0u64..2_000_000), 0..40),
        ) {
            let config = PollConfig {
                short_poll: Duration::from_millis(short_ms),
                short_poll_backoff: factor,
                short_poll_cap: Duration::from_millis(short_ms + cap_extra_ms),
                long_poll: Duration::from_millis(short_ms + cap_extra_ms + long_extra_ms),
            };
            prop_assert_eq!(config.validate(), Ok(()));
            let mut now = Instant::now();
            let mut state = PollState::new(&config, now);
            for (op, step_ms) in &ops {
                now += Duration::from_millis(*step_ms);
                apply(&mut state, op, now);
                prop_assert!(state.short_interval() >= config.short_poll);
                prop_assert!(state.short_interval() <= config.short_poll_cap);
                prop_assert_eq!(state.next_poll(), now + state.interval());
            }
        }

        #[test]
        fn any_text_in_a_duration_field_is_refused_or_read_never_panics(
            text in ".{0,12}",
            field in prop::sample::select(vec!["short_poll", "short_poll_cap", "long_poll"]),
        ) {
            let json = serde_json::json!({ field: text }).to_string();
            match serde_json::from_str::<PollConfig>(&json) {
                Ok(config) => {
                    if let Err(err) = config.validate() {
                        prop_assert!(err.keys().iter().all(|key| key.starts_with("short_poll")
                            || key.starts_with("long_poll")), "{}", err);
                    }
                }
                Err(err) => prop_assert!(err.to_string().contains("expected a duration"), "{}", err),
            }
        }
    }
}
