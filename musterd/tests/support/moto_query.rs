//! Instances made, stopped and ended in moto through EC2's query protocol
//! itself, so that musterd's tests need no SDK of their own: moto checks
//! no signature, but routes a request to a service by the one its
//! `Authorization` header's credential scope names.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// The body of moto's answer to `Action=…` with `params`.
fn query(url: &str, action: &str, params: &[(String, String)]) -> String {
    let address = url.trim_start_matches("http://");
    let mut form = format!("Action={action}&Version=2016-11-15");
    for (key, value) in params {
        form.push_str(&format!("&{key}={value}"));
    }
    let mut stream = TcpStream::connect(address).expect("moto listens");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/ec2/aws4_request, \
         SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{form}",
        form.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{action}: {head}\n{body}");
    body.to_owned()
}

/// Every text between `<tag>` and `</tag>`, in order.
pub fn texts(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(&open)
        .skip(1)
        .filter_map(|rest| rest.split_once(&close).map(|(text, _)| text.to_owned()))
        .collect()
}

/// Runs `count` instances, answering their ids.
pub fn run_instances(url: &str, count: usize) -> Vec<String> {
    let images = query(url, "DescribeImages", &[]);
    let image = texts(&images, "imageId")
        .into_iter()
        .next()
        .expect("moto has an image");
    let ran = query(
        url,
        "RunInstances",
        &[
            ("ImageId".into(), image),
            ("InstanceType".into(), "t2.micro".into()),
            ("MinCount".into(), count.to_string()),
            ("MaxCount".into(), count.to_string()),
        ],
    );
    let ids = texts(&ran, "instanceId");
    assert_eq!(ids.len(), count, "{ran}");
    ids
}

/// The private IPv4 address moto gives the instance.
pub fn private_ip(url: &str, id: &str) -> String {
    let described = query(
        url,
        "DescribeInstances",
        &[("InstanceId.1".into(), id.to_owned())],
    );
    texts(&described, "privateIpAddress")
        .into_iter()
        .next()
        .expect("a private address")
}

/// Stops the instance.
pub fn stop(url: &str, id: &str) {
    query(
        url,
        "StopInstances",
        &[("InstanceId.1".into(), id.to_owned())],
    );
}

/// Terminates the instance.
pub fn terminate(url: &str, id: &str) {
    query(
        url,
        "TerminateInstances",
        &[("InstanceId.1".into(), id.to_owned())],
    );
}
