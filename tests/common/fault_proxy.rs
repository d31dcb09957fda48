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
                std::thread::spawn(move || serve(stream, upstream, &shared));
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
        self.state.lock().unwrap().canned = canned;
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
fn serve(client: TcpStream, upstream: SocketAddr, state: &Mutex<State>) {
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
        state.canned.clone()
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
            let Some(answer) = forward(upstream, &head, &body) else {
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
/// that the client does not keep the connection the proxy closes.
fn forward(upstream: SocketAddr, head: &str, body: &[u8]) -> Option<Vec<u8>> {
    let mut server = TcpStream::connect(upstream).ok()?;
    server
        .set_read_timeout(Some(Duration::from_secs(60)))
        .ok()?;
    server.write_all(head.as_bytes()).ok()?;
    server.write_all(body).ok()?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer).ok()?;
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&answer[..end]).into_owned();
    let mut rewritten = String::new();
    for line in head.split("\r\n") {
        let is_connection = line
            .split_once(':')
            .is_some_and(|(name, _)| name.eq_ignore_ascii_case("connection"));
        if !is_connection {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    let mut whole = rewritten.into_bytes();
    whole.extend_from_slice(&answer[end + 4..]);
    Some(whole)
}
