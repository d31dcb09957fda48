//! The brute-force limit (docs/spec.md §14.6): with `auth = "password"`,
//! failed logins are counted per source address, and an address past
//! `max_login_failures` within `login_failure_window` has its logins
//! refused with 4429 for `login_lockout`. With the shared token it counts
//! nothing: a fleet given a wrong token fails whole, and must get in as
//! soon as the token is put right.
//!
//! An IPv6 address counts as its /64, which one host commonly holds
//! whole. The addresses followed are bounded: past [`MAX_TRACKED`], those
//! whose window is over and that are not locked out are forgotten, and
//! while none can be, a new address is not followed (its failures still
//! close with 4401, and still show in the metrics).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use muster::clock::later;
use muster::sync::lock;
use tokio::time::Instant;

use super::config::AgentsConfig;

/// Close code of a login from an address past the failure limit.
pub const TOO_MANY_FAILURES: u16 = 4429;

/// The most addresses followed at once.
pub const MAX_TRACKED: usize = 100_000;

/// One address's failures.
#[derive(Debug, Clone, Copy)]
struct Failures {
    /// When its window began: its first failure since the last window
    /// ended.
    since: Instant,
    count: u32,
    locked_until: Option<Instant>,
}

/// The failed logins of each source address. See the module's
/// documentation.
#[derive(Debug)]
pub(super) struct Limiter {
    /// Whether failures are counted at all (`auth = "password"`).
    counting: bool,
    max: u32,
    window: Duration,
    lockout: Duration,
    addresses: Mutex<HashMap<IpAddr, Failures>>,
}

/// The address failures are counted under: an IPv6 one's /64.
fn counted_as(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(prefix.into())
            }
        },
    }
}

impl Limiter {
    pub fn new(config: &AgentsConfig) -> Self {
        Limiter {
            counting: config.passwords(),
            max: config.max_login_failures.max(1),
            window: config.login_failure_window,
            lockout: config.login_lockout,
            addresses: Mutex::default(),
        }
    }

    /// Whether logins from `address` are refused now.
    pub fn locked(&self, address: IpAddr, now: Instant) -> bool {
        self.counting
            && lock(&self.addresses)
                .get(&counted_as(address))
                .and_then(|f| f.locked_until)
                .is_some_and(|until| now < until)
    }

    /// Counts a failed login from `address`; answers whether the address
    /// is locked out from now on.
    pub fn failed(&self, address: IpAddr, now: Instant) -> bool {
        if !self.counting {
            return false;
        }
        let address = counted_as(address);
        let mut addresses = lock(&self.addresses);
        if !addresses.contains_key(&address) && addresses.len() >= MAX_TRACKED {
            let window = self.window;
            addresses.retain(|_, f| !Self::over(f, now, window));
            if addresses.len() >= MAX_TRACKED {
                return false;
            }
        }
        let failures = addresses.entry(address).or_insert(Failures {
            since: now,
            count: 0,
            locked_until: None,
        });
        if Self::over(failures, now, self.window) {
            *failures = Failures {
                since: now,
                count: 0,
                locked_until: None,
            };
        }
        failures.count = failures.count.saturating_add(1);
        if failures.count >= self.max && failures.locked_until.is_none() {
            failures.locked_until = Some(later(now, self.lockout));
        }
        failures.locked_until.is_some_and(|until| now < until)
    }

    /// Whether an address's failures no longer count: its window is over
    /// and it is not locked out, or its lockout is over (which ends with a
    /// fresh count).
    fn over(failures: &Failures, now: Instant, window: Duration) -> bool {
        match failures.locked_until {
            Some(until) => now >= until,
            None => now >= later(failures.since, window),
        }
    }

    /// Addresses followed now.
    #[cfg(test)]
    fn followed(&self) -> usize {
        lock(&self.addresses).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: u32, window: u64, lockout: u64) -> Limiter {
        Limiter::new(&AgentsConfig {
            auth: crate::AgentAuth::Password,
            max_login_failures: max,
            login_failure_window: Duration::from_secs(window),
            login_lockout: Duration::from_secs(lockout),
            ..AgentsConfig::default()
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_engages_past_the_threshold_and_releases_after_the_lockout() {
        let limiter = limiter(3, 60, 300);
        let (attacker, other) = (ip("192.0.2.7"), ip("192.0.2.8"));
        let now = Instant::now();
        assert!(!limiter.failed(attacker, now));
        assert!(!limiter.failed(attacker, now));
        assert!(!limiter.locked(attacker, now));
        assert!(limiter.failed(attacker, now), "the third failure locks");
        assert!(limiter.locked(attacker, now));
        // Another address is not held up by it.
        assert!(!limiter.locked(other, now));

        tokio::time::advance(Duration::from_secs(299)).await;
        assert!(limiter.locked(attacker, Instant::now()));
        tokio::time::advance(Duration::from_secs(1)).await;
        let now = Instant::now();
        assert!(!limiter.locked(attacker, now), "released after the lockout");
        // A fresh count: it takes three failures again.
        assert!(!limiter.failed(attacker, now));
        assert!(!limiter.failed(attacker, now));
        assert!(limiter.failed(attacker, now));
    }

    #[tokio::test(start_paused = true)]
    async fn a_door_on_the_shared_token_counts_nothing() {
        let limiter = Limiter::new(&AgentsConfig {
            max_login_failures: 1,
            ..AgentsConfig::default()
        });
        let attacker = ip("192.0.2.7");
        for _ in 0..100 {
            assert!(!limiter.failed(attacker, Instant::now()));
        }
        assert!(!limiter.locked(attacker, Instant::now()));
        assert_eq!(limiter.followed(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_spread_wider_than_the_window_never_lock() {
        let limiter = limiter(3, 60, 300);
        let attacker = ip("192.0.2.7");
        for _ in 0..10 {
            assert!(!limiter.failed(attacker, Instant::now()));
            assert!(!limiter.failed(attacker, Instant::now()));
            tokio::time::advance(Duration::from_secs(61)).await;
        }
        assert!(!limiter.locked(attacker, Instant::now()));
    }

    #[tokio::test(start_paused = true)]
    async fn an_ipv6_host_counts_as_its_64() {
        let limiter = limiter(2, 60, 300);
        let now = Instant::now();
        assert!(!limiter.failed(ip("2001:db8:1:2::1"), now));
        assert!(limiter.failed(ip("2001:db8:1:2:ffff::9"), now));
        assert!(limiter.locked(ip("2001:db8:1:2::77"), now));
        assert!(!limiter.locked(ip("2001:db8:1:3::1"), now));
        // An IPv4 address mapped in IPv6 is that IPv4 address.
        assert!(!limiter.failed(ip("::ffff:192.0.2.1"), now));
        assert!(limiter.failed(ip("192.0.2.1"), now));
    }

    #[tokio::test(start_paused = true)]
    async fn the_addresses_followed_are_bounded() {
        let limiter = limiter(5, 60, 300);
        let now = Instant::now();
        for n in 0..MAX_TRACKED as u32 {
            limiter.failed(IpAddr::V4(n.into()), now);
        }
        assert_eq!(limiter.followed(), MAX_TRACKED);
        // Full, and every window still open: a new address is not followed.
        assert!(!limiter.failed(ip("203.0.113.1"), now));
        assert_eq!(limiter.followed(), MAX_TRACKED);
        // Once their windows are over, the old ones make room.
        tokio::time::advance(Duration::from_secs(61)).await;
        limiter.failed(ip("203.0.113.1"), Instant::now());
        assert_eq!(limiter.followed(), 1);
    }
}
