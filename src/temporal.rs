//! The Temporal client connection. SDK client types stay behind this module
//! and `workflow/`, so the rest of the code does not churn with the SDK.

use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, GrpcCompression, Url, tonic,
};

use temporalio_common::data_converters::{
    DataConverter, DefaultFailureConverter, PayloadConverter,
};

use crate::codec::Codec;
use crate::config::{Credentials, TemporalConfig};

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
    /// No server answered: waiting may help. Not for invalid settings.
    pub outage: bool,
}

/// A server answered and refused the credentials, or its certificate was
/// refused (exit 8): the likely cause in one line, and what to check.
#[derive(Debug, thiserror::Error)]
#[error("Temporal at {address} refused the connection: {cause}\nhint: {check}")]
pub struct CredentialError {
    pub address: String,
    pub cause: String,
    pub check: String,
}

/// What to check for each credential: the flag and the variable.
const CHECK_CA: &str = "check --tls-ca-path / TEMPORAL_TLS_SERVER_CA_CERT_PATH (the CA that signed the server's certificate)";
const CHECK_NAME: &str = "check --tls-server-name / TEMPORAL_TLS_SERVER_NAME (the name the certificate is for) and --address";
const CHECK_CERT: &str = "set --tls-cert-path and --tls-key-path (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH); the server's CA must have signed the certificate";
const CHECK_KEY: &str =
    "check --api-key / TEMPORAL_API_KEY: the key may be wrong, revoked or for another account";
const SET_KEY: &str = "set an API key with --api-key / TEMPORAL_API_KEY, or a client certificate with --tls-cert-path / --tls-key-path";
const CHECK_ACCESS: &str = "check that the API key or certificate has access to this namespace (--namespace / TEMPORAL_NAMESPACE)";

impl CredentialError {
    /// Reads a failed call's error chain: a TLS verification failure, or the
    /// server's `UNAUTHENTICATED` / `PERMISSION_DENIED`, or a refused client
    /// certificate. `None`: not a credential problem.
    pub fn classify(
        error: &(dyn std::error::Error + 'static),
        address: &str,
        namespace: &str,
        used: Credentials<'_>,
    ) -> Option<Self> {
        let mut status = None;
        let mut text = String::new();
        let mut cause = Some(error);
        while let Some(e) = cause {
            status = status.or_else(|| {
                e.downcast_ref::<tonic::Status>()
                    .map(|s| (s.code(), s.message().to_owned()))
            });
            text.push_str(&format!("{e}\n"));
            cause = e.source();
        }
        // The SDK reports a failed first call as text that embeds the
        // status's Debug form: read the code and message back from it.
        let (code, message) = status
            .or_else(|| status_in(&text))
            .unwrap_or((tonic::Code::Ok, String::new()));
        let said = match message.lines().next().unwrap_or("").trim() {
            "" => format!("{code:?}"),
            m => format!("{code:?}: {}", crate::domain::clip(m)),
        };
        let says = |signs: &[&str]| signs.iter().any(|s| text.contains(s));
        let (cause, check) = if says(&["UnknownIssuer", "unknown issuer", "BadSignature"]) {
            let cause = "certificate not trusted: the server's certificate is not signed by a CA this client trusts";
            (cause.to_owned(), CHECK_CA)
        } else if says(&["NotValidForName", "not valid for name"]) {
            let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
            let name = used.server_name.unwrap_or(host);
            (
                format!("the server's certificate is not valid for {name}"),
                CHECK_NAME,
            )
        } else if says(&[
            "CertificateRequired",
            "certificate required",
            "No required SSL certificate",
        ]) || (code == tonic::Code::Internal && says(&["400 Bad Request"]))
        {
            let cause = match used.client_cert {
                true => "client certificate rejected",
                false => "client certificate required: the server asks for one and none was sent",
            };
            (format!("{cause} (it answered 400 Bad Request)"), CHECK_CERT)
        } else if code == tonic::Code::Unauthenticated && used.api_key {
            (format!("API key rejected ({said})"), CHECK_KEY)
        } else if code == tonic::Code::Unauthenticated {
            (
                format!("credentials required, and no API key was given ({said})"),
                SET_KEY,
            )
        } else if code == tonic::Code::PermissionDenied {
            (
                format!("permission denied on namespace {namespace} ({said})"),
                CHECK_ACCESS,
            )
        } else {
            return None;
        };
        Some(Self {
            address: address.to_owned(),
            cause,
            check: check.to_owned(),
        })
    }
}

/// The code and message of a `Status { code: …, message: "…", … }` in text.
fn status_in(text: &str) -> Option<(tonic::Code, String)> {
    let rest = &text[text.find("Status { code: ")? + "Status { code: ".len()..];
    let name = rest.split(|c: char| !c.is_ascii_alphanumeric()).next()?;
    let code = match name {
        "Unauthenticated" => tonic::Code::Unauthenticated,
        "PermissionDenied" => tonic::Code::PermissionDenied,
        "Internal" => tonic::Code::Internal,
        "Unavailable" => tonic::Code::Unavailable,
        "Unknown" => tonic::Code::Unknown,
        _ => return None,
    };
    let message = rest
        .split_once("message: \"")
        .and_then(|(_, m)| m.split_once("\", ").map(|(m, _)| m))
        .unwrap_or("")
        .replace("\\\"", "\"");
    Some((code, message))
}

/// Connects a namespace-bound client, giving up after the connect timeout.
/// Fails with [`ConnectError`] when no server answered, or
/// [`CredentialError`] when one refused the credentials.
pub async fn connect(config: &TemporalConfig) -> anyhow::Result<Client> {
    let fail = |reason: String| ConnectError {
        address: config.address.clone(),
        namespace: config.namespace.clone(),
        reason,
        outage: true,
    };
    let used = config.credentials();
    tracing::info!(
        "connecting to Temporal at {} (namespace {}, TLS {}, API key {}{}, connect timeout {})",
        config.address,
        config.namespace,
        if used.tls { "on" } else { "off" },
        if used.api_key { "set" } else { "not set" },
        if used.client_cert {
            ", client certificate set"
        } else {
            ""
        },
        humantime::format_duration(config.connect_timeout)
    );
    let mut options =
        ConnectionOptions::try_from(config.to_profile()).map_err(|e| ConnectError {
            outage: false,
            ..fail(format!("invalid connection settings: {e}"))
        })?;
    options.connect_timeout = Some(config.connect_timeout);
    // Temporal's own convention, so that several workers on one host are
    // told apart (in `doctor`, the Web UI, and the bench's readiness check).
    options.identity = format!("{}@{}", std::process::id(), hostname());
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
        .map_err(|e| -> anyhow::Error {
            match CredentialError::classify(&e, &config.address, &config.namespace, used) {
                Some(refused) => refused.into(),
                None => fail(root_cause(&e)).into(),
            }
        })?;
    let options = ClientOptions::new(config.namespace.clone())
        .data_converter(data_converter(config))
        .build();
    Ok(Client::new(connection, options).map_err(|e| fail(e.to_string()))?)
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

/// A command's error, told as a refused credential when that is what it
/// was: the first call after connecting is often where a server refuses.
pub fn explain(error: anyhow::Error, config: &TemporalConfig) -> anyhow::Error {
    let about_the_database = error.chain().any(|c| c.is::<sqlx::Error>());
    if about_the_database || error.chain().any(|c| c.is::<CredentialError>()) {
        return error;
    }
    match CredentialError::classify(
        error.as_ref(),
        &config.address,
        &config.namespace,
        config.credentials(),
    ) {
        Some(refused) => refused.into(),
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
    fn a_status_is_read_back_from_the_sdks_text() {
        let text = "`get_system_info` call error after connection: Status { code: Unauthenticated, \
                    message: \"Request unauthorized\", metadata: MetadataMap { headers: {} }, source: None }";
        assert_eq!(
            status_in(text),
            Some((
                tonic::Code::Unauthenticated,
                "Request unauthorized".to_owned()
            ))
        );
        assert_eq!(status_in("connection refused"), None);
    }

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
