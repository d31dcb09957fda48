//! `musterd`: the muster daemon. The command line and the process-wide
//! pieces (the `log` bridge, the panic hook, signal handlers, exit codes)
//! live here; the rest is the `musterd` library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use futures::{Stream, StreamExt};
use muster::names::ModelUuid;
use musterd::config::DaemonConfig;
use musterd::demo::{self, DemoOptions};
use musterd::logging::{LogBridge, LogFormat, LogLevel, logger, panic_hook};
use musterd::swarm::{self, SwarmOptions};
use musterd::{self as daemon, DaemonError};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Agent presence and cloud instance polling, as a supervised actor tree.
#[derive(Parser)]
#[command(name = "musterd", version, about)]
struct Cli {
    /// How log records are written (to standard error).
    #[arg(long, value_enum, default_value_t = LogFormat::Term, global = true)]
    log_format: LogFormat,
    /// The least severe level written [default: info; critical for the
    /// demo, whose summary and dashboard show what happens, injected
    /// faults included].
    #[arg(long, value_enum, global = true)]
    log_level: Option<LogLevel>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the whole tree on the embedded simulated cloud with a scenario
    /// that shows everything working, and serves the dashboard.
    Demo(DemoArgs),
    /// Runs the tree with a config file until SIGINT, SIGTERM or SIGHUP.
    Run {
        /// The config file (TOML).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Checks a config file and prints every error, naming the key.
    CheckConfig {
        /// The config file (TOML).
        file: PathBuf,
    },
    /// Opens agent connections to a door and keeps them alive, printing a
    /// line a second: connected, logins per second, login latency,
    /// failures by close code.
    Swarm(SwarmArgs),
}

#[derive(clap::Args)]
struct SwarmArgs {
    /// The door: ws://HOST:PORT/agent, or wss://.
    #[arg(long)]
    url: String,
    /// How many agents connect (with --passwords, one per line of the file).
    #[arg(long, required_unless_present = "passwords")]
    agents: Option<usize>,
    /// How many models the agents are spread over.
    #[arg(long, default_value_t = 1)]
    models: usize,
    /// Each agent pings this often.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    ping: Duration,
    /// The fraction of the agents closed and reopened each minute.
    #[arg(long, default_value_t = 0.05)]
    churn: f64,
    /// Stops after this long (e.g. `1m`), instead of at a signal.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// The shared agent secret, when the door wants one.
    #[arg(long, value_parser = token)]
    token: Option<String>,
    /// PEM file of the authority that signed the door's certificate, or
    /// the door's own self-signed certificate (wss://).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Picks the swarm's model UUIDs: swarms against different nodes with
    /// different seeds log agents of different models in.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Logins in flight at most.
    #[arg(long, default_value_t = 1000)]
    concurrency: usize,
    /// Drops every connection at once after this long (no close frame), and
    /// says how long until all are back.
    #[arg(long, value_parser = humantime::parse_duration)]
    storm_after: Option<Duration>,
    /// A model the agents are spread over, in place of the swarm's own
    /// (repeat it for more): the daemon's [[models]], for --provision.
    #[arg(long = "model")]
    model_uuids: Vec<ModelUuid>,
    /// Makes each agent's own password through the HTTP surface at this
    /// URL (http://HOST:PORT) before connecting, with --token as the
    /// bearer of the writes.
    #[arg(long, conflicts_with = "passwords")]
    provision: Option<String>,
    /// Logs the agents of this file in, one `model,agent,password` line
    /// each.
    #[arg(long)]
    passwords: Option<PathBuf>,
}

#[derive(clap::Args)]
struct DemoArgs {
    /// Runs the simulated world this many times faster than real time
    /// (from 0.01 to 1000).
    #[arg(long, default_value_t = 1.0, value_parser = demo::parse_speed, allow_hyphen_values = true)]
    speed: f64,
    /// How many machines are provisioned over the first minute (from 3 to
    /// 100000).
    #[arg(long, default_value_t = 300, value_parser = demo::parse_machines, allow_hyphen_values = true)]
    machines: usize,
    /// How many agents connect (from 3 to 1000000).
    #[arg(long, default_value_t = 1000, value_parser = demo::parse_agents, allow_hyphen_values = true)]
    agents: usize,
    /// Seed of the simulated cloud's faults and of the scenario.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The dashboard's port on the loopback address; 0 picks a free one.
    #[arg(long, default_value_t = 9180, conflicts_with = "listen")]
    port: u16,
    /// The dashboard's full listen address, instead of loopback.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// The agents' door's port on the loopback address; 0 picks a free one.
    #[arg(long, default_value_t = 17070, conflicts_with = "agents_listen")]
    agents_port: u16,
    /// The agents' door's full listen address, instead of loopback.
    #[arg(long)]
    agents_listen: Option<std::net::SocketAddr>,
    /// Guards everything but /healthz with this bearer token (printable
    /// ASCII, no space at either end).
    #[arg(long, value_parser = token)]
    token: Option<String>,
    /// Stops after this long (e.g. `30s`), instead of at a signal.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
}

/// A `--token` as the config file's tokens are checked.
fn token(text: &str) -> Result<String, String> {
    muster::token::validate_token(text).map(|()| text.to_owned())
}

/// The signals that stop the daemon: SIGINT, SIGTERM, and SIGHUP, which
/// is treated as SIGTERM (the config is not reloaded).
struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    /// Installs the handlers now, not when first polled, so that a signal
    /// that arrives while the tree starts is not lost.
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Each signal as it comes, named.
    fn stream(self) -> impl Stream<Item = &'static str> + Unpin {
        futures::stream::unfold(self, |mut s| async move {
            let name = tokio::select! {
                _ = s.interrupt.recv() => "SIGINT",
                _ = s.terminate.recv() => "SIGTERM",
                _ = s.hangup.recv() => "SIGHUP",
            };
            Some((name, s))
        })
        .boxed_local()
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::CheckConfig { file } = &cli.command {
        return match daemon::read_config(file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(e.exit_code() as u8)
            }
        };
    }
    // Bad input stops here, before a logger or a runtime exists.
    let config = match &cli.command {
        Command::Run { config } => match daemon::read_config(config) {
            Ok(config) => Some(config),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(e.exit_code() as u8);
            }
        },
        _ => None,
    };
    let level = cli.log_level.unwrap_or(match cli.command {
        Command::Demo(_) | Command::Swarm(_) => LogLevel::Critical,
        _ => LogLevel::Info,
    });
    let (log, guard) = logger(cli.log_format, level, std::io::stderr());
    // The daemon is the host: it may route every `log` record of the
    // process (actix's included) into its logger, and a panic too, so that
    // none is written through the middle of a log line.
    if log::set_boxed_logger(Box::new(LogBridge::new(log.clone(), level))).is_ok() {
        log::set_max_level(level.log_filter());
    }
    std::panic::set_hook(panic_hook(log.clone()));
    let tree_log = log.clone();
    let result = actix::System::new().block_on(async move {
        let log = tree_log;
        let mut signals = Signals::install().map_err(DaemonError::Signals)?.stream();
        match cli.command {
            Command::Run { .. } => {
                let config: DaemonConfig = config.unwrap_or_default();
                daemon::run(config, log.clone(), std::io::stdout(), signals).await
            }
            Command::Demo(args) => {
                let options = DemoOptions {
                    speed: args.speed,
                    machines: args.machines,
                    agents: args.agents,
                    seed: args.seed,
                    listen: args
                        .listen
                        .unwrap_or_else(|| ([127, 0, 0, 1], args.port).into()),
                    agents_listen: args
                        .agents_listen
                        .unwrap_or_else(|| ([127, 0, 0, 1], args.agents_port).into()),
                    token: args.token,
                    duration: args.duration,
                };
                demo::run(options, log.clone(), std::io::stdout(), signals).await
            }
            Command::Swarm(args) => {
                let options = SwarmOptions {
                    url: args.url,
                    // With --passwords, the file says how many.
                    agents: args.agents.unwrap_or(1),
                    models: args.models,
                    ping: args.ping,
                    churn: args.churn,
                    duration: args.duration,
                    token: args.token,
                    ca: args.ca,
                    concurrency: args.concurrency,
                    storm_after: args.storm_after,
                    model_uuids: args.model_uuids,
                    provision: args.provision,
                    passwords: args.passwords,
                    seed: args.seed,
                };
                let stop = async move { signals.next().await.unwrap_or("no signal") };
                swarm::run(options, std::io::stdout(), stop)
                    .await
                    .map(|_| ())
            }
            Command::CheckConfig { .. } => Ok(()),
        }
    });
    drop(log);
    // Flushes what the async drain holds before the last words.
    drop(guard);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("musterd: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
