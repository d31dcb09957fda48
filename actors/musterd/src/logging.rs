//! The daemon's logger: human-readable lines for a terminal, or JSON lines
//! for a collector, behind an async drain; and a [`log`] adapter so that
//! actix's own records go into the same logger.
//!
//! Nothing here installs anything process-wide: the binary decides to
//! install [`LogBridge`] with `log::set_boxed_logger`.

use std::io::Write;

use clap::ValueEnum;
use slog::{Drain, Level, Logger, o};

/// How log records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per record.
    #[default]
    Term,
    /// One JSON object per line.
    Json,
}

/// The least severe level written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// What the daemon is doing.
    #[default]
    Info,
    /// Something went wrong and was handled.
    Warning,
    /// Something failed.
    Error,
    /// The daemon cannot go on.
    Critical,
}

impl LogLevel {
    /// The slog level.
    pub fn slog(self) -> Level {
        match self {
            LogLevel::Trace => Level::Trace,
            LogLevel::Debug => Level::Debug,
            LogLevel::Info => Level::Info,
            LogLevel::Warning => Level::Warning,
            LogLevel::Error => Level::Error,
            LogLevel::Critical => Level::Critical,
        }
    }

    /// The `log` crate's level filter that lets through the same records.
    pub fn log_filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Trace => log::LevelFilter::Trace,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Info => log::LevelFilter::Info,
            LogLevel::Warning => log::LevelFilter::Warn,
            LogLevel::Error | LogLevel::Critical => log::LevelFilter::Error,
        }
    }
}

/// A logger writing to `out` in `format` at `level` and above, and the
/// guard that flushes the async drain when dropped: keep it until the end
/// of `main`.
pub fn logger<W>(format: LogFormat, level: LogLevel, out: W) -> (Logger, slog_async::AsyncGuard)
where
    W: Write + Send + 'static,
{
    let (drain, guard) = match format {
        LogFormat::Term => {
            let decorator = slog_term::PlainDecorator::new(out);
            let drain = slog_term::FullFormat::new(decorator).build().fuse();
            slog_async::Async::new(drain)
                .chan_size(4096)
                .build_with_guard()
        }
        LogFormat::Json => {
            let drain = slog_json::Json::new(out)
                .add_default_keys()
                .set_newlines(true)
                .build()
                .fuse();
            slog_async::Async::new(drain)
                .chan_size(4096)
                .build_with_guard()
        }
    };
    let drain = drain.filter_level(level.slog()).fuse();
    (Logger::root(drain, o!()), guard)
}

/// Forwards records of the [`log`] crate (actix and actix-web log through
/// it) to a slog [`Logger`], with their target as a key.
pub struct LogBridge {
    logger: Logger,
    filter: log::LevelFilter,
}

impl LogBridge {
    /// Forwards records at `level` and above to `logger`.
    pub fn new(logger: Logger, level: LogLevel) -> Self {
        LogBridge {
            logger,
            filter: level.log_filter(),
        }
    }
}

impl log::Log for LogBridge {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= self.filter
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let log = &self.logger;
        let target = record.target();
        let args = record.args();
        match record.level() {
            log::Level::Error => slog::error!(log, "{}", args; "target" => target),
            log::Level::Warn => slog::warn!(log, "{}", args; "target" => target),
            log::Level::Info => slog::info!(log, "{}", args; "target" => target),
            log::Level::Debug => slog::debug!(log, "{}", args; "target" => target),
            log::Level::Trace => slog::trace!(log, "{}", args; "target" => target),
        }
    }

    fn flush(&self) {}
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use log::Log;

    use super::*;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_with_log_records_bridged_and_filtered() {
        let out = Shared::default();
        let (logger, guard) = logger(LogFormat::Json, LogLevel::Info, out.clone());
        let bridge = LogBridge::new(logger.clone(), LogLevel::Info);
        slog::info!(logger, "tree started"; "children" => 3);
        bridge.log(
            &log::Record::builder()
                .level(log::Level::Warn)
                .target("actix_server")
                .args(format_args!("worker stopped"))
                .build(),
        );
        bridge.log(
            &log::Record::builder()
                .level(log::Level::Debug)
                .args(format_args!("too chatty"))
                .build(),
        );
        slog::debug!(logger, "also too chatty");
        drop(logger);
        drop(bridge);
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "tree started");
        assert_eq!(lines[0]["children"], 3);
        assert_eq!(lines[1]["msg"], "worker stopped");
        assert_eq!(lines[1]["target"], "actix_server");
        assert_eq!(lines[1]["level"], "WARN");
    }

    #[test]
    fn terminal_lines_are_plain_text() {
        let out = Shared::default();
        let (logger, guard) = logger(LogFormat::Term, LogLevel::Debug, out.clone());
        slog::debug!(logger, "poll due"; "machine" => "machine-3");
        drop(logger);
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("DEBG poll due"), "{text}");
        assert!(text.contains("machine: machine-3"), "{text}");
    }
}
