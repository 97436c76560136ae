//! Every way reaching Temporal fails, through the real binary: each says
//! its own cause in one line and the hint that fits, exits 8 (2 for a
//! local mistake), and never dumps a gRPC status or asks whether a server
//! runs when one answered. The fronts are real nginx listeners
//! (`support::tls`) before the test's dev server.

use std::process::Output;

use crate::support::tls::front;
use crate::support::{closed_port, orderflow, temporal_address};

fn status_at(address: &str, args: &[&str]) -> Output {
    orderflow()
        .args(["--address", address])
        .args(args)
        .args(["order", "status", "ORD-NOBODY"])
        .output()
        .unwrap()
}

fn at(port: u16, args: &[&str]) -> Output {
    status_at(&format!("127.0.0.1:{port}"), args)
}

/// `code`, one `error:` line that says `cause`, and a hint that says
/// `hint` (any hint, or none, for `""`).
#[track_caller]
fn assert_told(out: &Output, code: i32, cause: &str, hint: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains(cause),
        "expected {cause:?}:\n{stderr}"
    );
    if !hint.is_empty() {
        assert!(
            lines[1..]
                .iter()
                .any(|l| l.starts_with("hint: ") && l.contains(hint)),
            "expected a hint with {hint:?}:\n{stderr}"
        );
    }
    for noise in [
        "MetadataMap",
        "Status {",
        "metadata",
        "source: ",
        "compression flag",
    ] {
        assert!(!stderr.contains(noise), "no {noise:?}:\n{stderr}");
    }
    stderr
}

/// As [`assert_told`], where something answered: not "is the server running".
#[track_caller]
fn assert_answered(out: &Output, cause: &str, hint: &str) {
    let stderr = assert_told(out, 8, cause, hint);
    assert!(!stderr.contains("is the server running"), "{stderr}");
}

#[test]
fn nothing_listening_and_a_name_that_does_not_resolve() {
    let out = at(closed_port(), &[]);
    assert_told(&out, 8, "Connection refused", "is the server running");
    let out = status_at("orders.invalid:7233", &[]);
    assert_told(
        &out,
        8,
        "the name orders.invalid does not resolve",
        "--address",
    );
}

#[test]
fn a_proxy_that_refuses_the_credentials_names_them() {
    let f = front();
    assert_answered(
        &at(f.fronts["401"], &[]),
        "credentials required (HTTP 401 Unauthorized from nginx",
        "--api-key",
    );
    assert_answered(
        &at(f.fronts["403"], &[]),
        "permission denied (HTTP 403 Forbidden from nginx",
        "--namespace",
    );
}

#[test]
fn a_proxy_whose_upstream_is_down_says_so() {
    let f = front();
    for (name, said) in [
        ("502", "HTTP 502 Bad Gateway from nginx"),
        ("503", "HTTP 503 Service Unavailable from nginx"),
    ] {
        assert_answered(
            &at(f.fronts[name], &[]),
            said,
            "its upstream (the Temporal frontend) may be down",
        );
    }
}

#[test]
fn something_that_is_not_temporal_says_what_answered() {
    let f = front();
    assert_answered(
        &at(f.fronts["404"], &[]),
        "is not a Temporal frontend: HTTP 404 Not Found from nginx",
        "--address",
    );
    assert_answered(
        &at(f.fronts["html"], &[]),
        "is not a Temporal frontend: HTTP 200 OK from nginx",
        "--address",
    );
    assert_answered(
        &at(f.fronts["other-grpc"], &[]),
        "a gRPC service that does not implement Temporal's (UNIMPLEMENTED: unknown service)",
        "--address",
    );
}

#[test]
fn tls_failures_name_the_certificate_problem() {
    let f = front();
    let ca = f.ca.display().to_string();
    let tls = ["--tls-ca-path", &ca, "--tls-server-name", "localhost"];
    assert_answered(
        &at(f.fronts["expired"], &tls),
        "the server's certificate has expired",
        "renew",
    );
    let own = f.ca_as_server.display().to_string();
    assert_answered(
        &at(
            f.fronts["ca-as-server"],
            &["--tls-ca-path", &own, "--tls-server-name", "localhost"],
        ),
        "the server shows a CA certificate as its own",
        "--tls-ca-path",
    );
    // TLS to a plain listener, and plain to a TLS one.
    assert_answered(
        &at(f.fronts["html"], &tls),
        "the server does not speak TLS",
        "drop --tls",
    );
    assert_answered(
        &at(f.api_key_port, &[]),
        "does not speak plain HTTP/2",
        "--tls",
    );
}

#[test]
fn a_missing_namespace_is_named_with_the_flag() {
    let out = status_at(&temporal_address(), &["--namespace", "no-such-namespace"]);
    assert_answered(&out, "has no namespace no-such-namespace", "--namespace");
}

#[test]
fn an_unreadable_ca_file_is_a_local_mistake() {
    let out = at(
        front().api_key_port,
        &["--tls-ca-path", "/nonexistent/ca.pem"],
    );
    let stderr = assert_told(&out, 2, "cannot read /nonexistent/ca.pem", "");
    assert!(stderr.contains("--tls-ca-path"), "{stderr}");
}

#[test]
fn doctor_shows_the_same_causes() {
    let f = front();
    let out = orderflow()
        .args([
            "--address",
            &format!("127.0.0.1:{}", f.fronts["502"]),
            "doctor",
        ])
        .env(
            "DATABASE_URL",
            format!("postgres://nobody@127.0.0.1:{}/none", closed_port()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("HTTP 502 Bad Gateway from nginx"),
        "{stdout}"
    );
    assert!(
        stdout.contains("its upstream (the Temporal frontend) may be down"),
        "{stdout}"
    );
    let temporal: String = stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("temporal"))
        .take(2)
        .collect();
    assert!(
        temporal.contains("FAIL") && !temporal.contains("is the server running"),
        "{stdout}"
    );
}
