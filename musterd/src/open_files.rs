//! The open-files limit against the door's `max_connections`: every agent
//! socket is a file descriptor, and a door that took the last one would
//! leave none for the HTTP surface, whose `/healthz` must answer however
//! many agents there are. So the door takes at most the limit less a
//! reserve for the rest of the process, and says so at start when the
//! config asked for more.

use slog::{Logger, warn};

use crate::config::DaemonConfig;

/// The descriptors kept for all but the door's sockets: the HTTP surface
/// and its clients, the registry's files, NATS, the runtime's own.
pub const RESERVED: u64 = 64;

/// The soft limit on open files of this process, from
/// `/proc/self/limits`; `None` where that cannot be read (not Linux) or
/// says `unlimited`.
pub fn limit() -> Option<u64> {
    parse(&std::fs::read_to_string("/proc/self/limits").ok()?)
}

/// The soft limit of the `Max open files` line of a `/proc/PID/limits`.
fn parse(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The most agents the door may hold under an open-files limit of
/// `limit`: the limit less the reserve and the sockets the door may be
/// refusing at once, and at least one.
pub fn door_budget(limit: u64) -> usize {
    let refusing = muster_door::REFUSING as u64;
    usize::try_from(limit.saturating_sub(RESERVED + refusing).max(1)).unwrap_or(usize::MAX)
}

/// `config`, its `agents.max_connections` lowered to what the open-files
/// limit leaves the door, with a warning when it had to be.
pub fn fit(config: &DaemonConfig, limit: Option<u64>, logger: &Logger) -> DaemonConfig {
    let mut config = config.clone();
    let Some(limit) = limit else {
        return config;
    };
    let budget = door_budget(limit);
    if config.agents.max_connections > budget {
        warn!(logger, "agents.max_connections exceeds what the open-files limit leaves the door; \
            raise the limit (ulimit -n, LimitNOFILE) to serve that many agents";
            "max_connections" => config.agents.max_connections,
            "open_files_limit" => limit,
            "door_takes_at_most" => budget);
        config.agents.max_connections = budget;
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units     \n\
        Max cpu time              unlimited            unlimited            seconds   \n\
        Max open files            1024                 1048576              files     \n\
        Max locked memory         8388608              8388608              bytes     \n";

    #[test]
    fn the_soft_limit_is_read_and_the_door_keeps_within_it() {
        assert_eq!(parse(LIMITS), Some(1024));
        assert_eq!(parse(&LIMITS.replace("1024 ", "unlimited ")), None);
        assert_eq!(parse("nothing here"), None);
        assert_eq!(door_budget(1024), 1024 - 64 - 256);
        assert_eq!(door_budget(100), 1);
        // This process's own limit reads, on Linux.
        if cfg!(target_os = "linux") {
            assert!(limit().is_some_and(|n| n > 0));
        }
        let logger = Logger::root(slog::Discard, slog::o!());
        let config = DaemonConfig::default();
        assert_eq!(config.agents.max_connections, 100_000);
        let fitted = fit(&config, Some(1024), &logger);
        assert_eq!(fitted.agents.max_connections, 704);
        let roomy = fit(&config, Some(1 << 20), &logger);
        assert_eq!(roomy.agents.max_connections, 100_000);
        assert_eq!(fit(&config, None, &logger), config);
    }
}
