//! How `musterd run` ends, in-process, with a credential store that breaks
//! on demand: the tree giving up (at start or later) ends the run with its
//! error, and a signal ends it cleanly, whenever it comes.

mod support;

use std::time::Duration;

use futures::StreamExt;
use muster_actors::TreeError;
use musterd::DaemonError;
use slog::{Logger, o};
use support::breaking::{Out, backends, config};
use tokio::sync::{mpsc, watch};

/// Real sockets and a real tree: a bound on the run, not a sleep.
const WITHIN: Duration = Duration::from_secs(20);

fn logger() -> Logger {
    Logger::root(slog::Discard, o!())
}

fn assert_tree_gave_up(result: Result<Result<(), DaemonError>, tokio::time::error::Elapsed>) {
    match result {
        Ok(Err(DaemonError::Tree(TreeError::Failed(why)))) => {
            assert!(why.contains("restart intensity exceeded"), "{why}");
        }
        Ok(other) => panic!("the run ended with {other:?}"),
        Err(_) => panic!("the run did not end within {WITHIN:?} of the tree giving up"),
    }
}

#[actix_web::test]
async fn a_tree_that_gives_up_at_start_ends_the_run_with_its_error() {
    let (_break, broken) = watch::channel(true);
    let result = tokio::time::timeout(
        WITHIN,
        musterd::run_with(
            config(),
            backends(broken),
            logger(),
            Out::default(),
            futures::stream::pending(),
        ),
    )
    .await;
    assert_tree_gave_up(result);
    let error = DaemonError::Tree(TreeError::Failed(String::new()));
    assert_eq!(error.exit_code(), musterd::EXIT_FAILURE);
}

#[actix_web::test]
async fn a_tree_that_gives_up_later_ends_the_run_with_its_error() {
    let (break_it, broken) = watch::channel(false);
    let out = Out::default();
    let run = musterd::run_with(
        config(),
        backends(broken),
        logger(),
        out.clone(),
        futures::stream::pending(),
    );
    let breaker = {
        let out = out.clone();
        async move {
            // Serving: the addresses are printed once presence records.
            while !out.text().contains("agents: ") {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            break_it.send_replace(true);
            std::future::pending::<()>().await
        }
    };
    let result = tokio::time::timeout(WITHIN, async {
        tokio::select! {
            result = run => result,
            () = breaker => unreachable!(),
        }
    })
    .await;
    assert!(
        out.text().starts_with("dashboard: http://"),
        "{}",
        out.text()
    );
    assert_tree_gave_up(result);
}

#[actix_web::test]
async fn a_signal_during_start_or_while_serving_stops_the_run_cleanly() {
    // One signal already waiting when the run starts, one once it serves.
    for early in [true, false] {
        let (_break, broken) = watch::channel(false);
        let (signal, signals) = mpsc::unbounded_channel::<&'static str>();
        if early {
            signal.send("SIGHUP").unwrap();
        }
        let out = Out::default();
        let run = musterd::run_with(
            config(),
            backends(broken),
            logger(),
            out.clone(),
            tokio_stream(signals),
        );
        let sender = {
            let out = out.clone();
            async move {
                while !out.text().contains("agents: ") {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                signal.send("SIGTERM").unwrap();
                std::future::pending::<()>().await
            }
        };
        let result = tokio::time::timeout(WITHIN, async {
            tokio::select! {
                result = run => result,
                () = sender, if !early => unreachable!(),
            }
        })
        .await;
        assert!(
            matches!(result, Ok(Ok(()))),
            "early {early}: {result:?}; {}",
            out.text()
        );
    }
}

/// The signals of a channel, as `run` takes them.
fn tokio_stream(
    signals: mpsc::UnboundedReceiver<&'static str>,
) -> impl futures::Stream<Item = &'static str> + Unpin {
    futures::stream::unfold(signals, |mut signals| async move {
        signals.recv().await.map(|s| (s, signals))
    })
    .boxed_local()
}
