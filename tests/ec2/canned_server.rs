//! A loopback server answering every request with one canned answer (an
//! EC2 error, say), or holding each connection without answering; on its
//! own thread until dropped. Shared by the EC2 provider's tests and
//! musterd's.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A loopback server answering each request with `status` and `body`, on
/// its own thread until dropped. `None` as the status holds each connection
/// open without answering.
pub struct Canned {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Canned {
    pub fn start(status: Option<u16>, body: String) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                if read_request(&stream).is_none() {
                    continue;
                }
                count.fetch_add(1, Ordering::SeqCst);
                match status {
                    Some(status) => answer(stream, status, &body),
                    None => held.push(stream),
                }
            }
        });
        Canned {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// An EC2 error answer, as the query protocol gives it.
    pub fn ec2_error(status: u16, code: &str) -> Canned {
        Canned::start(
            Some(status),
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error>\
                 <Code>{code}</Code><Message>canned {code}</Message></Error></Errors>\
                 <RequestID>5d2a3b4c-0000-0000-0000-000000000000</RequestID></Response>"
            ),
        )
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request's head and body; `None` when the client went away.
fn read_request(stream: &TcpStream) -> Option<()> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(())
}

fn answer(mut stream: TcpStream, status: u16, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Canned\r\nContent-Type: text/xml;charset=UTF-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
