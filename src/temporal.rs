//! The Temporal client connection. SDK client types stay behind this module
//! and `workflow/`, so the rest of the code does not churn with the SDK.

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, GrpcCompression, Url,
};

use crate::config::TemporalConfig;

/// Temporal could not be reached or refused the connection (exit 8).
#[derive(Debug, thiserror::Error)]
#[error(
    "cannot reach Temporal at {address} (namespace {namespace}): {reason}\n\
     hint: is the server running? Start one with `temporal server start-dev` or \
     `orderflow dev`, or point --address / TEMPORAL_ADDRESS at yours"
)]
pub struct ConnectError {
    pub address: String,
    pub namespace: String,
    pub reason: String,
}

/// Connects a namespace-bound client, giving up after the connect timeout.
pub async fn connect(config: &TemporalConfig) -> Result<Client, ConnectError> {
    let fail = |reason: String| ConnectError {
        address: config.address.clone(),
        namespace: config.namespace.clone(),
        reason,
    };
    let mut options = ConnectionOptions::try_from(config.to_profile())
        .map_err(|e| fail(format!("invalid connection settings: {e}")))?;
    options.connect_timeout = Some(config.connect_timeout);
    options.identity = format!("orderflow@{}", hostname());
    // gzip saves bytes on a network and only costs CPU on both ends of a
    // loopback connection (a local dev server).
    if is_loopback(&options.target) {
        options.grpc_compression = GrpcCompression::None;
    }
    let connection = tokio::time::timeout(config.connect_timeout, Connection::connect(options))
        .await
        .map_err(|_| {
            fail(format!(
                "no answer within {}",
                humantime::format_duration(config.connect_timeout)
            ))
        })?
        .map_err(|e| fail(root_cause(&e)))?;
    Client::new(
        connection,
        ClientOptions::new(config.namespace.clone()).build(),
    )
    .map_err(|e| fail(e.to_string()))
}

/// Whether `target` names this machine.
fn is_loopback(target: &Url) -> bool {
    match target.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The innermost message of an error chain: for a refused connection,
/// "Connection refused (os error 111)" rather than three layers of wrappers.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_this_machine_is_loopback() {
        let loopback = |s: &str| is_loopback(&Url::parse(s).unwrap());
        assert!(loopback("http://localhost:7233"));
        assert!(loopback("http://LOCALHOST:7233"));
        assert!(loopback("http://127.0.0.1:7233"));
        assert!(loopback("http://[::1]:7233"));
        assert!(!loopback("http://temporal:7233"));
        assert!(!loopback("https://ns.acct.tmprl.cloud:7233"));
        assert!(!loopback("http://10.0.0.5:7233"));
    }
}
