use super::*;

/// A section with one of each kind of setting, nesting another.
struct Outer {
    delay: Duration,
    count: usize,
    inner: Inner,
}

struct Inner {
    factor: f64,
    rate: f64,
    short: Duration,
    long: Duration,
}

const DELAYS: Durations = Durations::positive(DAY);
const SIZES: Counts = Counts::new(1, 16);
const FACTORS: Numbers = Numbers::new(1.0, 100.0);

impl Validate for Outer {
    fn check(&self, at: &mut Checker) {
        at.duration("delay", self.delay, DELAYS);
        at.count("count", self.count, SIZES);
        at.section("inner", &self.inner);
    }
}

impl Validate for Inner {
    fn check(&self, at: &mut Checker) {
        at.number("factor", self.factor, FACTORS);
        at.rate("rate", self.rate);
        at.not_longer("short", self.short, "long", self.long);
    }
}

fn good() -> Outer {
    Outer {
        delay: Duration::from_secs(3),
        count: 4,
        inner: Inner {
            factor: 2.0,
            rate: 0.5,
            short: Duration::from_secs(1),
            long: Duration::from_secs(2),
        },
    }
}

#[test]
fn a_good_config_has_no_problem() {
    assert_eq!(good().validate(), Ok(()));
}

#[test]
fn nesting_prefixes_the_key_and_every_problem_is_reported_once() {
    let bad = Outer {
        delay: Duration::ZERO,
        count: 17,
        inner: Inner {
            factor: f64::NAN,
            rate: 1.5,
            short: Duration::from_secs(120),
            long: Duration::from_secs(60),
        },
    };
    let error = bad.validate().unwrap_err();
    assert_eq!(
        error.lines(),
        [
            "delay = \"0s\": must be a positive duration of at most 1day",
            "count = 17: must be at least 1 and at most 16",
            "inner.factor = nan: must be a number from 1 to 100",
            "inner.rate = 1.5: must be a rate from 0 to 1",
            "inner.short = \"2m\": must not be longer than long (2m > 1m)",
        ]
    );
    assert_eq!(error.more, 0);
    // The section's own keys are relative: a parent adds its prefix.
    struct Top(Outer);
    impl Validate for Top {
        fn check(&self, at: &mut Checker) {
            at.section("a", &self.0);
            at.section("b", &self.0.inner);
        }
    }
    let error = Top(bad).validate().unwrap_err();
    assert_eq!(
        error.keys(),
        [
            "a.delay",
            "a.count",
            "a.inner.factor",
            "a.inner.rate",
            "a.inner.short",
            "b.factor",
            "b.rate",
            "b.short",
        ]
    );
}

#[test]
fn past_the_limit_problems_are_counted_not_listed() {
    let mut at = Checker::new();
    for n in 0..MAX_PROBLEMS + 7 {
        at.count(&format!("k{n}"), 0u32, SIZES);
    }
    let error = at.finish().unwrap_err();
    assert_eq!(error.problems.len(), MAX_PROBLEMS);
    assert_eq!(error.more, 7);
    assert_eq!(error.lines().last().unwrap(), "... and 7 more");
    assert!(error.to_string().ends_with("; ... and 7 more"));
}

#[test]
fn ranges_hold_their_bounds_and_refuse_what_is_not_a_number() {
    assert!(DELAYS.contains(Duration::from_nanos(1)));
    assert!(DELAYS.contains(DAY));
    assert!(!DELAYS.contains(Duration::ZERO));
    assert!(!DELAYS.contains(DAY + Duration::from_nanos(1)));
    assert!(!DELAYS.contains(Duration::MAX));
    for bad in [
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
        0.5,
        5e-324,
        1e308,
    ] {
        assert!(!FACTORS.contains(bad), "{bad}");
    }
    assert!(FACTORS.contains(1.0) && FACTORS.contains(100.0));
    assert_eq!(FACTORS.clamp(f64::NAN), 1.0);
    assert_eq!(FACTORS.clamp(f64::INFINITY), 100.0);
    assert_eq!(FACTORS.clamp(5e-324), 1.0);
    let mut at = Checker::new();
    assert!(!at.count("big", usize::MAX, SIZES));
    assert!(!at.count("negative", -1i64, Counts::new(0, 10)));
    assert!(at.count("zero", 0u8, Counts::new(0, 10)));
    assert_eq!(at.finish().unwrap_err().keys(), ["big", "negative"]);
}

#[test]
fn every_range_says_what_it_accepts() {
    assert_eq!(Durations::up_to(YEAR).to_string(), "must be at most 1year");
    assert_eq!(
        Durations::positive(DAY).to_string(),
        "must be a positive duration of at most 1day"
    );
    assert_eq!(
        Durations::between(Duration::from_millis(100), DAY).to_string(),
        "must be at least 100ms and at most 1day"
    );
    assert_eq!(Counts::new(0, 5).to_string(), "must be at most 5");
    assert_eq!(
        Numbers::new(1e-3, 1e6).to_string(),
        "must be a number from 0.001 to 1000000"
    );
    // The bounds as written read back as durations.
    assert_eq!(humantime::parse_duration("1year").unwrap(), YEAR);
    assert_eq!(humantime::parse_duration("1day").unwrap(), DAY);
}

#[test]
fn values_are_written_as_a_file_writes_them() {
    assert_eq!(duration_value(Duration::from_secs(90)), "\"1m 30s\"");
    assert_eq!(float_value(2.0), "2.0");
    assert_eq!(float_value(5e-324), "5e-324");
    assert_eq!(float_value(1e308), "1e308");
    assert_eq!(float_value(f64::NAN), "nan");
    assert_eq!(float_value(f64::NEG_INFINITY), "-inf");
}

#[test]
fn a_problem_of_the_whole_input_has_no_key() {
    let problem = ConfigError::new("", None, "not a TOML file");
    assert_eq!(problem.to_string(), "not a TOML file");
    let problem = ConfigError::new("machines.poll", None, "expected a table");
    assert_eq!(problem.to_string(), "machines.poll: expected a table");
}
