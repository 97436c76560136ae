//! The connection to Temporal: options from the settings, the codec, and
//! a failure told as a [`TemporalError`].

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, GrpcCompression, Url,
};
use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadConverter,
};

use super::codec::Codec;
use super::settings::TemporalConfig;
use super::trouble::TemporalError;

/// Connects a namespace-bound client, giving up after the connect timeout.
/// Fails with a [`TemporalError`] that says why.
pub async fn connect(config: &TemporalConfig) -> Result<Client, TemporalError> {
    let target = config.target();
    tracing::info!(
        "connecting to Temporal at {} (namespace {}, TLS {}, API key {}{}, connect timeout {})",
        config.address,
        config.namespace,
        if target.tls { "on" } else { "off" },
        if target.api_key { "set" } else { "not set" },
        if target.client_cert {
            ", client certificate set"
        } else {
            ""
        },
        humantime::format_duration(config.connect_timeout)
    );
    if let Some(unreadable) = config.unreadable_tls_file() {
        return Err(target.settings(unreadable));
    }
    let mut options = ConnectionOptions::try_from(config.to_profile())
        .map_err(|e| target.settings(format!("invalid connection settings: {e}")))?;
    options.connect_timeout = Some(config.connect_timeout);
    // Temporal's own convention, so that several workers on one host are
    // told apart (in `doctor`, the Web UI, and the bench's readiness check).
    options.identity = format!("{}@{}", std::process::id(), hostname());
    // gzip saves bytes on a network and only costs CPU on both ends of a
    // loopback connection (a local dev server).
    if is_loopback(&options.target) {
        options.grpc_compression = GrpcCompression::None;
    }
    let connection =
        match tokio::time::timeout(config.connect_timeout, Connection::connect(options)).await {
            Err(_) => return Err(target.timed_out(config.connect_timeout)),
            Ok(Err(e)) => {
                return Err(target
                    .connect_failed(&e, async || super::probe::http_answer(config).await)
                    .await);
            }
            Ok(Ok(connection)) => connection,
        };
    let options = ClientOptions::new(config.namespace.clone())
        .data_converter(data_converter(config))
        .build();
    Client::new(connection, options).map_err(|e| target.settings(e.to_string()))
}

/// The SDK's default data converter with orderflow's codec: with keys, the
/// client and the worker built on it encrypt every payload they send and
/// decrypt every payload they receive; without, they pass payloads through
/// and say that an encrypted one needs the key file.
fn data_converter(config: &TemporalConfig) -> DataConverter {
    if let Some(keys) = &config.encryption {
        tracing::info!(
            "payloads are encrypted with key {} (keys {})",
            keys.encrypting_id(),
            keys.ids().collect::<Vec<_>>().join(", ")
        );
    }
    DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::default(),
        Codec(config.encryption.clone()),
    )
}

/// A command's error, told as a [`TemporalError`] when a failed call to
/// Temporal is in its causes and Temporal (not the call) is why: the
/// worker's own calls, for one, do not go through the order client.
pub async fn explain(error: anyhow::Error, config: &TemporalConfig) -> anyhow::Error {
    if error
        .chain()
        .any(|c| c.is::<TemporalError>() || c.is::<sqlx::Error>())
    {
        return error;
    }
    let Some(status) = error
        .chain()
        .find_map(|c| c.downcast_ref::<temporalio_client::tonic::Status>())
    else {
        return error;
    };
    match config
        .target()
        .call_failed(None, status, async || {
            super::probe::http_answer(config).await
        })
        .await
    {
        Some(e) => e.into(),
        None => error,
    }
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
