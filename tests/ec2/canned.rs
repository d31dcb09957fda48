//! EC2's failures as the poller sees them, from a local server that answers
//! every request with one canned EC2 error, and from endpoints that refuse
//! or never answer.

use std::net::TcpListener;
use std::time::Duration;

use muster::ec2::errors::UNAUTHORISED_CODES;
use muster::ec2::{Ec2Config, Ec2Environ};
use muster::error::{ErrorKind, PollError};
use muster::provider::{Environ, InstanceId};

use crate::canned_server::Canned;
use crate::support::{SECRET, TempDir, config, environ};

fn one_id() -> Vec<InstanceId> {
    vec![InstanceId::from("i-0123456789abcdef0")]
}

/// Both calls fail with `kind` against `server`, each after one request:
/// the SDK does not retry on its own.
async fn assert_both_calls_fail(server: &Canned, kind: ErrorKind) -> Vec<PollError> {
    let (environ, _dir) = environ(&server.url()).await;
    let instances = environ.instances(&one_id()).await.unwrap_err();
    assert_eq!(instances.kind(), kind, "{instances}");
    assert_eq!(server.requests(), 1, "one request, no retry: {instances}");
    let interfaces = environ.network_interfaces(&one_id()).await.unwrap_err();
    assert_eq!(interfaces.kind(), kind, "{interfaces}");
    assert_eq!(server.requests(), 2, "one request, no retry: {interfaces}");
    for error in [&instances, &interfaces] {
        assert!(!format!("{error} {error:?}").contains(SECRET));
    }
    vec![instances, interfaces]
}

#[tokio::test]
async fn a_refused_credential_is_unauthorised() {
    for code in UNAUTHORISED_CODES {
        let server = Canned::ec2_error(if *code == "AuthFailure" { 401 } else { 403 }, code);
        let errors = assert_both_calls_fail(&server, ErrorKind::Unauthorised).await;
        assert_eq!(
            errors[0].to_string(),
            format!("cloud denied access: {code}: canned {code}")
        );
    }
}

#[tokio::test]
async fn request_limits_and_unavailability_are_throttling_without_a_wait() {
    let servers = [
        Canned::ec2_error(400, "RequestLimitExceeded"),
        Canned::ec2_error(503, "Unavailable"),
        Canned::start(Some(503), "<html>Service Unavailable</html>".to_owned()),
    ];
    for server in &servers {
        for error in assert_both_calls_fail(server, ErrorKind::Throttled).await {
            assert_eq!(error.retry_after(), None);
        }
    }
}

#[tokio::test]
async fn other_failures_name_the_region_and_the_endpoint() {
    let server = Canned::ec2_error(500, "InternalError");
    let url = server.url();
    let errors = assert_both_calls_fail(&server, ErrorKind::Other).await;
    assert_eq!(
        errors[0].to_string(),
        format!(
            "fetching instances from EC2 region us-east-1 at {url}: \
             InternalError: canned InternalError (HTTP 500)"
        )
    );
    assert!(
        errors[1].to_string().starts_with(&format!(
            "fetching network interfaces from EC2 region us-east-1 at {url}: "
        )),
        "{}",
        errors[1]
    );

    let garbage = Canned::start(Some(200), "x".repeat(4 << 20));
    let (environ, _dir) = environ(&garbage.url()).await;
    let error = environ.instances(&one_id()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    assert!(
        error
            .to_string()
            .contains("region us-east-1 at http://127.0.0.1:"),
        "{error}"
    );
}

#[tokio::test]
async fn a_closed_port_names_the_region_and_the_endpoint() {
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let url = format!("http://{closed}");
    let (environ, _dir) = environ(&url).await;
    let error = environ.instances(&one_id()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    let message = error.to_string();
    assert!(
        message.starts_with(&format!(
            "fetching instances from EC2 region us-east-1 at {url}: cannot connect"
        )),
        "{message}"
    );
}

/// An endpoint that holds the connection and never answers: the operation
/// timeout ends the call. The clock is real here, as a paused one could
/// run out the connect timeout while the loopback connection is being made,
/// so the timeouts are short.
#[tokio::test]
async fn a_silent_endpoint_times_out_naming_region_and_endpoint() {
    let server = Canned::start(None, String::new());
    let url = server.url();
    let dir = TempDir::new();
    let config = Ec2Config {
        connect_timeout: Duration::from_millis(500),
        operation_timeout: Duration::from_millis(500),
        ..config(&dir, &url)
    };
    let environ = Ec2Environ::new(&config).await.unwrap();
    let error = environ.instances(&one_id()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(
        error.to_string(),
        format!(
            "fetching instances from EC2 region us-east-1 at {url}: \
             no answer within the operation timeout of 500ms"
        )
    );
}

/// An endpoint whose accept queue is full: the connection is never made
/// and the connect timeout ends the call, in virtual time.
#[tokio::test(start_paused = true)]
async fn an_endpoint_that_never_accepts_times_out_connecting() {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // Fills the accept queue until a connection attempt goes unanswered.
    let mut queued = Vec::new();
    let full = (0..64).any(|_| {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => {
                queued.push(stream);
                false
            }
            Err(_) => true,
        }
    });
    if !full {
        eprintln!("skipped: this kernel accepted every connection to a full queue");
        return;
    }
    let url = format!("http://{addr}");
    let dir = TempDir::new();
    let environ = Ec2Environ::new(&config(&dir, &url)).await.unwrap();
    let error = environ.network_interfaces(&one_id()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(
        error.to_string(),
        format!(
            "fetching network interfaces from EC2 region us-east-1 at {url}: \
             no connection within the connect timeout of 5s"
        )
    );
    drop(listener);
}

#[tokio::test]
async fn the_debug_form_shows_no_secret() {
    let dir = TempDir::new();
    let config = config(&dir, "http://127.0.0.1:9");
    let environ = Ec2Environ::new(&config).await.unwrap();
    let shown = format!("{environ:?}");
    assert!(!shown.contains(SECRET), "{shown}");
    assert!(
        shown.contains("us-east-1") && shown.contains("http://127.0.0.1:9"),
        "{shown}"
    );
    assert!(shown.contains("credential_file"), "{shown}");
    assert_eq!(environ.region(), "us-east-1");

    let chain = Ec2Environ::new(&Ec2Config::new("eu-west-1")).await.unwrap();
    assert_eq!(chain.endpoint(), "https://ec2.eu-west-1.amazonaws.com");
    assert!(format!("{chain:?}").contains("standard AWS chain"));
}

#[tokio::test]
async fn a_bad_configuration_or_credential_file_is_refused_before_any_call() {
    let dir = TempDir::new();
    let mut bad = config(&dir, "http://127.0.0.1:9");
    bad.region = " ".into();
    assert_eq!(Ec2Environ::new(&bad).await.unwrap_err().key, "region");

    let mut missing = config(&dir, "http://127.0.0.1:9");
    missing.credential_file = Some(dir.0.join("absent"));
    let error = Ec2Environ::new(&missing).await.unwrap_err();
    assert_eq!(error.key, "credential_file");
    assert!(error.reason.contains("absent"), "{error}");

    let file = dir.0.join("secret-only");
    std::fs::write(
        &file,
        format!("[default]\naws_secret_access_key = {SECRET}\n"),
    )
    .unwrap();
    let mut incomplete = config(&dir, "http://127.0.0.1:9");
    incomplete.credential_file = Some(file);
    let error = Ec2Environ::new(&incomplete).await.unwrap_err();
    assert!(error.reason.contains("has no aws_access_key_id"), "{error}");
    assert!(!error.to_string().contains(SECRET));
}
