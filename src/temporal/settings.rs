//! How to reach Temporal: flags, then the environment and a `temporal.toml`
//! profile (as the Temporal CLI reads them), then defaults. The API key is a
//! `SecretString`: never printed, redacted in `Debug`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use temporalio_common::envconfig::{
    ClientConfigProfile, ClientConfigTLS, DataSource, LoadClientConfigProfileOptions,
    load_client_config_profile,
};

use super::codec::Keyring;
use super::trouble::Target;
use crate::config::env;
use crate::exit::{Exit, Fail};

/// How to reach Temporal: the SDK's environment configuration and
/// `temporal.toml` profile (as the Temporal CLI reads them), with flags on top.
#[derive(Clone)]
pub struct TemporalConfig {
    pub address: String,
    pub namespace: String,
    pub task_queue: String,
    pub connect_timeout: Duration,
    pub ui_url: Option<String>,
    api_key: Option<SecretString>,
    /// The payload encryption keys (`--encryption-key-file`): with them,
    /// every payload sent to Temporal is encrypted.
    pub encryption: Option<Arc<Keyring>>,
    /// May hold an inline private key: never in `Debug`.
    tls: Option<ClientConfigTLS>,
    headers: HashMap<String, SecretString>,
}

impl fmt::Debug for TemporalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporalConfig")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("task_queue", &self.task_queue)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("tls", &self.tls.as_ref().map(|t| t.disabled != Some(true)))
            .field("encryption", &self.encryption)
            .finish_non_exhaustive()
    }
}

pub const DEFAULT_ADDRESS: &str = "localhost:7233";
pub const DEFAULT_TASK_QUEUE: &str = "orderflow";

/// What the command line says about Temporal, as plain values: built from
/// the parsed flags in one place (`cli::GlobalArgs::temporal`). The
/// environment and a `temporal.toml` profile fill in what it leaves out.
#[derive(Debug, Clone, Default)]
pub struct TemporalSettings {
    pub address: Option<String>,
    pub namespace: Option<String>,
    /// `None`: not chosen (the default, `orderflow`; a local stack that
    /// reuses a server picks a queue of its own).
    pub task_queue: Option<String>,
    pub api_key: Option<SecretString>,
    pub tls: bool,
    pub tls_cert_path: Option<PathBuf>,
    pub tls_key_path: Option<PathBuf>,
    pub tls_ca_path: Option<PathBuf>,
    pub tls_server_name: Option<String>,
    pub profile: Option<String>,
    pub config_file: Option<PathBuf>,
    pub connect_timeout: Duration,
    pub ui_url: Option<String>,
    /// `--encryption-key-file` / `ORDERFLOW_ENCRYPTION_KEY_FILE`.
    pub encryption_key_file: Option<PathBuf>,
}

impl TemporalSettings {
    /// Whether anything names a Temporal server to use, rather than the
    /// default (a local stack then starts its own when none answers).
    pub fn names_a_server(&self) -> bool {
        self.address.is_some()
            || self.profile.is_some()
            || self.config_file.is_some()
            || [
                "TEMPORAL_ADDRESS",
                "TEMPORAL_HOST_PORT",
                "TEMPORAL_PROFILE",
                "TEMPORAL_CONFIG_FILE",
            ]
            .iter()
            .any(|v| env(v).is_some())
    }
}

impl TemporalConfig {
    /// A plaintext connection to `address` (a local dev server), namespace
    /// `default`: what tests and the local stack use.
    pub fn plain(address: impl Into<String>, task_queue: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            namespace: "default".into(),
            task_queue: task_queue.into(),
            connect_timeout: Duration::from_secs(5),
            ui_url: None,
            api_key: None,
            encryption: None,
            tls: None,
            headers: HashMap::new(),
        }
    }

    /// The same, with payloads encrypted under `keys`.
    pub fn encrypted(mut self, keys: Option<Arc<Keyring>>) -> Self {
        self.encryption = keys;
        self
    }

    pub fn resolve(args: &TemporalSettings) -> Result<Self, Fail> {
        let options = LoadClientConfigProfileOptions::builder()
            .maybe_config_source(
                args.config_file
                    .as_ref()
                    .map(|p| DataSource::Path(p.display().to_string())),
            )
            .maybe_config_file_profile(args.profile.clone())
            .build();
        let profile = load_client_config_profile(options, None).map_err(|e| {
            Fail::usage(format!(
                "cannot load the Temporal client configuration (profile/env): {e}"
            ))
        })?;
        let ClientConfigProfile {
            address,
            namespace,
            api_key,
            mut tls,
            grpc_meta,
            ..
        } = profile;

        let path = |p: &PathBuf| Some(DataSource::Path(p.display().to_string()));
        if args.tls
            || args.tls_cert_path.is_some()
            || args.tls_key_path.is_some()
            || args.tls_ca_path.is_some()
            || args.tls_server_name.is_some()
        {
            let t = tls.get_or_insert_with(ClientConfigTLS::default);
            t.disabled = Some(false);
            if let Some(p) = &args.tls_cert_path {
                t.client_cert = path(p);
            }
            if let Some(p) = &args.tls_key_path {
                t.client_key = path(p);
            }
            if let Some(p) = &args.tls_ca_path {
                t.server_ca_cert = path(p);
            }
            if let Some(name) = &args.tls_server_name {
                t.server_name = Some(name.clone());
            }
        }

        let address = args
            .address
            .clone()
            .or(address)
            .or_else(|| env("TEMPORAL_HOST_PORT"))
            .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned());
        check_address(&address)?;
        Ok(Self {
            address,
            namespace: args
                .namespace
                .clone()
                .or(namespace)
                .unwrap_or_else(|| "default".into()),
            task_queue: args
                .task_queue
                .clone()
                .unwrap_or_else(|| DEFAULT_TASK_QUEUE.to_owned()),
            connect_timeout: args.connect_timeout,
            ui_url: args.ui_url.clone(),
            api_key: args.api_key.clone().or(api_key.map(SecretString::from)),
            encryption: match &args.encryption_key_file {
                Some(path) => Some(Arc::new(Keyring::load(path)?)),
                None => None,
            },
            tls,
            headers: grpc_meta
                .into_iter()
                .map(|(k, v)| (k, SecretString::from(v)))
                .collect(),
        })
    }

    /// The profile the SDK turns into connection options; built only at
    /// connect time, since it holds the secrets in the clear.
    pub(super) fn to_profile(&self) -> ClientConfigProfile {
        ClientConfigProfile::builder()
            .address(self.address.clone())
            .namespace(self.namespace.clone())
            .maybe_api_key(self.api_key.as_ref().map(|k| k.expose_secret().to_owned()))
            .maybe_tls(self.tls.clone())
            .grpc_meta(
                self.headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.expose_secret().to_owned()))
                    .collect(),
            )
            .build()
    }

    /// The Web UI's base URL: `--ui-url`, Temporal Cloud's UI for a cloud
    /// address, else the dev server's convention (the frontend's host, port 8233).
    pub fn ui_base(&self) -> String {
        if let Some(url) = &self.ui_url {
            return url.trim_end_matches('/').to_owned();
        }
        let host = self
            .address
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(host, _)| host)
            .trim_start_matches("http://")
            .trim_start_matches("https://");
        if host.ends_with(".tmprl.cloud") {
            "https://cloud.temporal.io".to_owned()
        } else {
            format!("http://{host}:8233")
        }
    }

    /// The Web UI page of one order's workflow.
    pub fn ui_link(&self, order_id: &str) -> String {
        format!(
            "{}/namespaces/{}/workflows/{order_id}",
            self.ui_base(),
            self.namespace
        )
    }

    /// Where connections go and with which credentials, to tell a failure against.
    pub(super) fn target(&self) -> Target {
        Target {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
            tls: self.tls_enabled().is_some() || (self.tls.is_none() && self.api_key.is_some()),
            api_key: self.api_key.is_some(),
            client_cert: self.tls_enabled().is_some_and(|t| t.client_cert.is_some()),
            server_name: self.tls.as_ref().and_then(|t| t.server_name.clone()),
        }
    }

    /// Whether connections use TLS (explicitly, or for an API key).
    pub fn uses_tls(&self) -> bool {
        self.target().tls
    }

    /// Whether an API key is set.
    pub fn has_api_key(&self) -> bool {
        self.api_key.is_some()
    }

    /// The first TLS file that cannot be read, said with its flag: a local
    /// mistake (exit 2), not the server's.
    pub(super) fn unreadable_tls_file(&self) -> Option<String> {
        let tls = self.tls_enabled()?;
        [
            (
                &tls.server_ca_cert,
                "--tls-ca-path / TEMPORAL_TLS_SERVER_CA_CERT_PATH",
            ),
            (
                &tls.client_cert,
                "--tls-cert-path / TEMPORAL_TLS_CLIENT_CERT_PATH",
            ),
            (
                &tls.client_key,
                "--tls-key-path / TEMPORAL_TLS_CLIENT_KEY_PATH",
            ),
        ]
        .into_iter()
        .find_map(|(source, flag)| match source {
            Some(DataSource::Path(path)) => std::fs::File::open(path)
                .err()
                .map(|e| format!("cannot read {path} ({flag}): {e}")),
            _ => None,
        })
    }

    /// The TLS settings, unless TLS is off.
    pub(super) fn tls_enabled(&self) -> Option<&ClientConfigTLS> {
        self.tls.as_ref().filter(|t| t.disabled != Some(true))
    }

    /// The gRPC headers (`grpc_meta` of a profile), for a probe that must
    /// send what the client sends.
    pub(super) fn headers(&self) -> impl Iterator<Item = (&str, &SecretString)> {
        self.headers.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// The API key, for a probe that must send what the client sends.
    pub(super) fn api_key(&self) -> Option<&SecretString> {
        self.api_key.as_ref()
    }
}

/// A Temporal address is `HOST:PORT` (an `http://` or `https://` in front
/// allowed): a missing, empty or non-numeric port is a usage error at once
/// (exit 2), not a connection that fails later.
fn check_address(address: &str) -> Result<(), Fail> {
    let rest = address
        .strip_prefix("http://")
        .or_else(|| address.strip_prefix("https://"))
        .unwrap_or(address);
    let problem = match rest.rsplit_once(':') {
        _ if rest.trim().is_empty() => Some("it is empty"),
        None => Some("it has no port"),
        Some(("", _)) => Some("it has no host"),
        Some((host, _))
            if host.contains(':') && !(host.starts_with('[') && host.ends_with(']')) =>
        {
            Some("an IPv6 host goes in brackets, e.g. [::1]:7233")
        }
        Some((_, "")) => Some("its port is empty"),
        Some((_, port)) => match port.parse::<u16>() {
            Ok(0) | Err(_) => Some("its port is not a number from 1 to 65535"),
            Ok(_) => None,
        },
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(Fail::new(
            Exit::Usage,
            format!(
                "Temporal address {} is not HOST:PORT: {problem} (e.g. localhost:7233; set by \
                 --address, TEMPORAL_ADDRESS, TEMPORAL_HOST_PORT or the profile)",
                crate::domain::quote(&crate::domain::clip(address))
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_host_and_port() {
        for ok in [
            "localhost:7233",
            "10.0.0.1:7233",
            "[::1]:7233",
            "https://ns.tmprl.cloud:7233",
        ] {
            assert!(check_address(ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("127.0.0.1", "no port"),
            ("localhost:", "port is empty"),
            ("localhost:http", "not a number"),
            ("localhost:70000", "not a number"),
            ("", "empty"),
            (":7233", "no host"),
            ("::1:7233", "brackets"),
        ] {
            let e = check_address(bad).unwrap_err();
            assert_eq!(e.exit, Exit::Usage);
            assert!(e.message.contains(why), "{bad}: {}", e.message);
        }
    }
}
