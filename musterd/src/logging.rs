//! The daemon's logger: human-readable lines for a terminal, or JSON lines
//! for a collector, behind an async drain; a [`log`] adapter so that
//! actix's own records go into the same logger; and a panic hook that
//! writes a panic as one record of it.
//!
//! Nothing here installs anything process-wide: the binary decides to
//! install [`LogBridge`] with `log::set_boxed_logger` and [`panic_hook`]
//! with `std::panic::set_hook`.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::io::Write;
use std::panic::{Location, PanicHookInfo};

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
    // A record that cannot be written once the drain has stopped (a panic
    // reported after the guard is dropped) is lost, not a second panic.
    let drain = drain.filter_level(level.slog()).ignore_res();
    (Logger::root(drain, o!()), guard)
}

/// A panic hook for the host that owns `logger`: each panic becomes one
/// error record, `panicked`, with its `message`, where it happened (`at`),
/// its `thread`, and its `backtrace` when `RUST_BACKTRACE` asks for one,
/// instead of the default hook's lines written to standard error in the
/// middle of the log's. A supervised child's panic is caught and restarted
/// by its supervisor, which logs that too.
pub fn panic_hook(logger: Logger) -> Box<dyn Fn(&PanicHookInfo<'_>) + Send + Sync + 'static> {
    Box::new(move |info| {
        let thread = std::thread::current();
        log_panic(
            &logger,
            &panic_message(info.payload()),
            info.location(),
            thread.name().unwrap_or("unnamed"),
            &Backtrace::capture(),
        );
    })
}

/// The text a panic was given, or a word on its payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic with a payload that is not a string".to_owned()
    }
}

fn log_panic(
    logger: &Logger,
    message: &str,
    location: Option<&Location<'_>>,
    thread: &str,
    backtrace: &Backtrace,
) {
    let at = location.map_or_else(String::new, |l| {
        format!("{}:{}:{}", l.file(), l.line(), l.column())
    });
    if backtrace.status() == BacktraceStatus::Captured {
        slog::error!(logger, "panicked";
            "message" => message, "at" => at, "thread" => thread,
            "backtrace" => %backtrace);
    } else {
        slog::error!(logger, "panicked"; "message" => message, "at" => at, "thread" => thread);
    }
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
    fn a_panic_is_one_json_record() {
        let out = Shared::default();
        let (logger, guard) = logger(LogFormat::Json, LogLevel::Info, out.clone());
        let location = Location::caller();
        log_panic(
            &logger,
            "index out of bounds: the len is 3\nbut the index is \"7\"",
            Some(location),
            "actix-rt|system:0|arbiter:0",
            &Backtrace::force_capture(),
        );
        log_panic(&logger, "no place", None, "main", &Backtrace::disabled());
        drop(logger);
        drop(guard);
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "panicked");
        assert_eq!(lines[0]["level"], "ERRO");
        assert_eq!(
            lines[0]["message"],
            "index out of bounds: the len is 3\nbut the index is \"7\""
        );
        assert_eq!(
            lines[0]["at"],
            format!(
                "{}:{}:{}",
                location.file(),
                location.line(),
                location.column()
            )
        );
        assert_eq!(lines[0]["thread"], "actix-rt|system:0|arbiter:0");
        assert!(
            lines[0]["backtrace"]
                .as_str()
                .is_some_and(|b| !b.is_empty())
        );
        assert_eq!(lines[1]["at"], "");
        assert!(lines[1].get("backtrace").is_none(), "{text}");
    }

    #[test]
    fn a_record_after_the_drain_stopped_is_lost_quietly() {
        let out = Shared::default();
        let (logger, guard) = logger(LogFormat::Json, LogLevel::Info, out.clone());
        drop(guard);
        slog::error!(logger, "too late");
        log_panic(&logger, "too late", None, "main", &Backtrace::disabled());
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
