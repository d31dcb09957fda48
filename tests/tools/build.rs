//! The build script of the crates whose tests start outside programs
//! (nats-server, moto, mimic, Keystone, Chromium, promtool, Python's
//! websockets and prometheus_client): it looks for each and sets
//! `cfg(missing_NAME)` for those it does not find, so that a test marked
//! `#[cfg_attr(missing_NAME, ignore = "needs …")]` shows as ignored, never
//! as passed. Under `CI=true` it sets none: there a missing program fails
//! the test that needs it.
//!
//! It looks only for what the package's tests need, by its name and the
//! features built (`ec2`, `openstack`): a host that compiles muster
//! without them runs no program here.

use std::path::Path;
use std::process::{Command, Stdio};

/// Whether `program` with `args` runs and exits 0.
fn runs(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Whether Python has `module`.
fn python_has(module: &str) -> bool {
    runs("python3", &["-c", &format!("import {module}")])
}

/// A program the tests may need: the name its `cfg` carries, and how to
/// find it.
type Tool = (&'static str, fn() -> bool);

/// The programs the package's tests may need.
fn needed() -> Vec<Tool> {
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_default();
    let feature = |name: &str| std::env::var_os(format!("CARGO_FEATURE_{name}")).is_some();
    let mut tools: Vec<Tool> = Vec::new();
    if package == "musterd" {
        tools.push(("nats_server", || {
            runs("nats-server", &["--version"]) || runs("/usr/sbin/nats-server", &["--version"])
        }));
        tools.push(("chromium", || {
            Path::new("/usr/bin/chromium").exists()
                || Path::new("/usr/bin/chromium-browser").exists()
        }));
        tools.push(("promtool", || runs("promtool", &["--version"])));
        tools.push(("python_websockets", || python_has("websockets.sync.client")));
        tools.push(("prometheus_client", || {
            python_has("prometheus_client.parser, prometheus_client.openmetrics.parser")
        }));
    }
    if feature("EC2") {
        tools.push(("moto", || runs("moto_server", &["--help"])));
    }
    if feature("OPENSTACK") {
        tools.push(("mimic", || {
            Path::new("/opt/muster/mimic/bin/twistd").exists()
        }));
        tools.push(("keystone", || {
            let bin = Path::new("/opt/muster/keystone/bin");
            bin.join("keystone-manage").exists() && bin.join("uwsgi").exists()
        }));
    }
    tools
}

fn main() {
    let names = [
        "nats_server",
        "chromium",
        "promtool",
        "python_websockets",
        "prometheus_client",
        "moto",
        "mimic",
        "keystone",
    ];
    for name in names {
        println!("cargo::rustc-check-cfg=cfg(missing_{name})");
    }
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=PATH");
    if std::env::var("CI").as_deref() == Ok("true") {
        return;
    }
    // A program installed later is found at the next build.
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        if Path::new(dir).is_dir() {
            println!("cargo::rerun-if-changed={dir}");
        }
    }
    if Path::new("/opt/muster").is_dir() {
        println!("cargo::rerun-if-changed=/opt/muster");
    }
    if let Ok(out) = Command::new("python3")
        .args(["-c", "import site; print(site.getsitepackages()[0])"])
        .output()
        && let Ok(dir) = String::from_utf8(out.stdout)
        && Path::new(dir.trim()).is_dir()
    {
        println!("cargo::rerun-if-changed={}", dir.trim());
    }
    for (name, found) in needed() {
        if !found() {
            println!("cargo::rustc-cfg=missing_{name}");
        }
    }
}
