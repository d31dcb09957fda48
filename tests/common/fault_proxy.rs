// Shared by the EC2 and OpenStack tests, each using a part of it.
#![allow(dead_code)]

//! A loopback HTTP proxy in front of a cloud double (moto, mimic): it
//! passes each request on and its answer back, counting them, or answers
//! every request with a canned failure while one is set. On its own threads
//! until dropped. The provider conformance suite injects its faults here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// An answer the proxy gives instead of the cloud's.
#[derive(Debug, Clone)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Canned {
    pub fn new(status: u16, body: impl Into<String>) -> Canned {
        Canned {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

#[derive(Default)]
struct State {
    canned: Option<Canned>,
    /// How many more requests get `canned`; `None` for all of them.
    remaining: Option<usize>,
    /// Each request's first line, `GET /path HTTP/1.1`, in order.
    requests: Vec<String>,
}

pub struct FaultProxy {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on a free loopback port passing requests on to `upstream`.
    pub fn start(upstream: SocketAddr) -> FaultProxy {
        FaultProxy::launch(upstream, false)
    }

    /// A proxy that also writes its own address over the upstream's in the
    /// answers' bodies, as a reverse proxy does for a server that names
    /// itself in its answers (mimic's service catalog does).
    pub fn start_rewriting(upstream: SocketAddr) -> FaultProxy {
        FaultProxy::launch(upstream, true)
    }

    fn launch(upstream: SocketAddr, rewriting: bool) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopping) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                let rewrite = rewriting.then(|| (upstream.to_string(), addr.to_string()));
                std::thread::spawn(move || serve(stream, upstream, rewrite, &shared));
            }
        });
        FaultProxy {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Answers every request with `canned` from now on; `None` passes them
    /// on again.
    pub fn answer_with(&self, canned: Option<Canned>) {
        let mut state = self.state.lock().unwrap();
        state.canned = canned;
        state.remaining = None;
    }

    /// Answers the next `count` requests with `canned`, then passes them on
    /// again.
    pub fn answer_next(&self, count: usize, canned: Canned) {
        let mut state = self.state.lock().unwrap();
        state.canned = Some(canned);
        state.remaining = Some(count);
    }

    /// How many requests the proxy has had.
    pub fn requests(&self) -> u64 {
        self.state.lock().unwrap().requests.len() as u64
    }

    /// The first line of each request so far.
    pub fn request_lines(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request on one connection, answered with `Connection: close`.
fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    rewrite: Option<(String, String)>,
    state: &Mutex<State>,
) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(&client);
    let Some((head, body)) = read_request(&mut reader) else {
        return;
    };
    let canned = {
        let mut state = state.lock().unwrap();
        state
            .requests
            .push(head.lines().next().unwrap_or_default().to_owned());
        let canned = state.canned.clone();
        match state.remaining {
            Some(1) => {
                state.canned = None;
                state.remaining = None;
            }
            Some(n) => state.remaining = Some(n.saturating_sub(1)),
            None => {}
        }
        canned
    };
    let mut client = &client;
    match canned {
        Some(canned) => {
            let mut answer = format!("HTTP/1.1 {} Canned\r\n", canned.status);
            for (name, value) in &canned.headers {
                answer.push_str(&format!("{name}: {value}\r\n"));
            }
            answer.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                canned.body.len(),
                canned.body
            ));
            let _ = client.write_all(answer.as_bytes());
        }
        None => {
            let Some(answer) = forward(upstream, &head, &body, rewrite.as_ref()) else {
                let _ = client.write_all(
                    b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
                return;
            };
            let _ = client.write_all(&answer);
        }
    }
    let _ = client.flush();
}

/// A request's head (with `Connection: close` in place of the client's own)
/// and its body, read by `Content-Length`.
fn read_request(reader: &mut impl BufRead) -> Option<(String, Vec<u8>)> {
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().ok()?;
            }
            if name.eq_ignore_ascii_case("connection") {
                continue;
            }
        }
        head.push_str(trimmed);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((head, body))
}

/// The upstream's whole answer, its `Connection` header made `close` so
/// that the client does not keep the connection the proxy closes. When
/// rewriting, the request goes as HTTP/1.0 (so that the answer's body is
/// not chunked) and the body's `from` becomes `to`, its length made anew.
fn forward(
    upstream: SocketAddr,
    head: &str,
    body: &[u8],
    rewrite: Option<&(String, String)>,
) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).ok()?;
    server
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    let head = match rewrite {
        Some(_) => head.replacen(" HTTP/1.1\r\n", " HTTP/1.0\r\n", 1),
        None => head.to_owned(),
    };
    server.write_all(head.as_bytes()).ok()?;
    server.write_all(body).ok()?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).ok()?;
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut body = answer[end + 4..].to_vec();
    if let Some((from, to)) = rewrite {
        body = String::from_utf8_lossy(&body)
            .replace(from, to)
            .into_bytes();
    }
    let mut rewritten = String::new();
    for line in head.split("\r\n") {
        let dropped = line.split_once(':').is_some_and(|(name, _)| {
            name.eq_ignore_ascii_case("connection")
                || (rewrite.is_some() && name.eq_ignore_ascii_case("content-length"))
        });
        if !dropped {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    if rewrite.is_some() {
        rewritten.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut whole = rewritten.into_bytes();
    whole.extend_from_slice(&body);
    Some(whole)
}
