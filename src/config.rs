//! Settings from flags, then the environment, then defaults. Secrets (the
//! database password, a Temporal API key) are held as `SecretString`: never
//! printed, redacted in `Debug`.

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
use url::Url;

use crate::codec::Keyring;
use crate::exit::Fail;

/// Reads an environment variable; empty counts as unset.
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Where the PostgreSQL database is. The URL may hold a password, so it is a
/// secret; [`DatabaseConfig::redacted`] is what messages show.
#[derive(Clone)]
pub struct DatabaseConfig {
    url: SecretString,
    pub connect_timeout: Duration,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &self.redacted())
            .finish_non_exhaustive()
    }
}

impl DatabaseConfig {
    /// `--database-url`, else `DATABASE_URL`, else the seed's `POSTGRES_*`
    /// variables; an error that says how to configure one when none is set.
    pub fn resolve(flag: Option<&str>, connect_timeout: Duration) -> Result<Self, Fail> {
        Self::resolve_with(flag, connect_timeout, env)
    }

    /// Like [`resolve`](Self::resolve), but `None` when nothing configures a
    /// database (`orderflow dev` then starts one).
    pub fn resolve_optional(
        flag: Option<&str>,
        connect_timeout: Duration,
    ) -> Result<Option<Self>, Fail> {
        Self::resolve_optional_with(flag, connect_timeout, env)
    }

    fn resolve_with(
        flag: Option<&str>,
        connect_timeout: Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, Fail> {
        Self::resolve_optional_with(flag, connect_timeout, env)?.ok_or_else(|| {
            Fail::usage(
                "no database configured: pass --database-url or set DATABASE_URL \
                 (postgres://user:password@host:5432/db), or set POSTGRES_HOST, \
                 POSTGRES_PORT, POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB",
            )
        })
    }

    fn resolve_optional_with(
        flag: Option<&str>,
        connect_timeout: Duration,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, Fail> {
        let url = match flag.map(str::to_owned).or_else(|| env("DATABASE_URL")) {
            Some(url) => url,
            None => match Self::from_seed_variables(&env)? {
                Some(url) => url,
                None => return Ok(None),
            },
        };
        let parsed = Url::parse(&url).map_err(|e| {
            Fail::usage(format!("the database URL is not a valid URL ({e}); expected postgres://user:password@host:5432/db"))
        })?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(Fail::usage(format!(
                "the database URL has scheme {:?}; expected postgres://user:password@host:5432/db",
                parsed.scheme()
            )));
        }
        Ok(Some(Self {
            url: url.into(),
            connect_timeout,
        }))
    }

    /// The seed's variables: POSTGRES_HOST/PORT/USER/PASSWORD/DB; `None`
    /// when none of them is set.
    fn from_seed_variables(env: &impl Fn(&str) -> Option<String>) -> Result<Option<String>, Fail> {
        let names = [
            "POSTGRES_HOST",
            "POSTGRES_PORT",
            "POSTGRES_USER",
            "POSTGRES_PASSWORD",
            "POSTGRES_DB",
        ];
        if names.iter().all(|n| env(n).is_none()) {
            return Ok(None);
        }
        let host = env("POSTGRES_HOST").unwrap_or_else(|| "localhost".into());
        let port: u16 = match env("POSTGRES_PORT") {
            Some(p) => p
                .parse()
                .map_err(|_| Fail::usage(format!("POSTGRES_PORT={p:?} is not a port number")))?,
            None => 5432,
        };
        let mut url = Url::parse("postgres://localhost/").expect("static URL parses");
        url.set_host(Some(&host))
            .map_err(|e| Fail::usage(format!("POSTGRES_HOST={host:?} is not a host name ({e})")))?;
        let _ = url.set_port(Some(port));
        let _ = url.set_username(&env("POSTGRES_USER").unwrap_or_else(|| "postgres".into()));
        if let Some(password) = env("POSTGRES_PASSWORD") {
            let _ = url.set_password(Some(&password));
        }
        url.set_path(&env("POSTGRES_DB").unwrap_or_else(|| "orderflow".into()));
        Ok(Some(url.into()))
    }

    pub fn url(&self) -> &str {
        self.url.expose_secret()
    }

    /// `host:port/db` as user — what messages may show; never the password.
    pub fn redacted(&self) -> String {
        match Url::parse(self.url.expose_secret()) {
            Ok(u) => format!(
                "{}@{}:{}{}",
                if u.username().is_empty() {
                    "(default user)"
                } else {
                    u.username()
                },
                u.host_str().unwrap_or("localhost"),
                u.port().unwrap_or(5432),
                u.path()
            ),
            Err(_) => "(unparsable database URL)".into(),
        }
    }
}

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

/// Which credentials a connection uses, to name the likely cause of a refusal.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a> {
    /// TLS is on (explicitly, or because of an API key).
    pub tls: bool,
    pub api_key: bool,
    pub client_cert: bool,
    pub server_name: Option<&'a str>,
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

        Ok(Self {
            address: args
                .address
                .clone()
                .or(address)
                .or_else(|| env("TEMPORAL_HOST_PORT"))
                .unwrap_or_else(|| DEFAULT_ADDRESS.to_owned()),
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
    pub fn to_profile(&self) -> ClientConfigProfile {
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

    /// Which credentials are in use, to name the likely cause of a refusal.
    pub fn credentials(&self) -> Credentials<'_> {
        Credentials {
            tls: match &self.tls {
                Some(t) => t.disabled != Some(true),
                None => self.api_key.is_some(),
            },
            api_key: self.api_key.is_some(),
            client_cert: self
                .tls
                .as_ref()
                .is_some_and(|t| t.client_cert.is_some() && t.disabled != Some(true)),
            server_name: self.tls.as_ref().and_then(|t| t.server_name.as_deref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn flag_beats_environment() {
        let cfg = DatabaseConfig::resolve_with(
            Some("postgres://a@h1/db1"),
            T,
            vars(&[("DATABASE_URL", "postgres://b@h2/db2")]),
        )
        .unwrap();
        assert_eq!(cfg.url(), "postgres://a@h1/db1");
    }

    #[test]
    fn seed_variables_build_a_url_with_an_encoded_password() {
        let cfg = DatabaseConfig::resolve_with(
            None,
            T,
            vars(&[
                ("POSTGRES_HOST", "db.internal"),
                ("POSTGRES_PORT", "6543"),
                ("POSTGRES_USER", "orders"),
                ("POSTGRES_PASSWORD", "p@ss/word"),
                ("POSTGRES_DB", "shop"),
            ]),
        )
        .unwrap();
        assert_eq!(
            cfg.url(),
            "postgres://orders:p%40ss%2Fword@db.internal:6543/shop"
        );
        assert_eq!(cfg.redacted(), "orders@db.internal:6543/shop");
    }

    #[test]
    fn secrets_stay_out_of_debug_and_messages() {
        let cfg =
            DatabaseConfig::resolve_with(Some("postgres://u:hunter2@h/db"), T, vars(&[])).unwrap();
        assert!(!format!("{cfg:?}").contains("hunter2"));
        assert!(!cfg.redacted().contains("hunter2"));
    }

    #[test]
    fn missing_or_bad_configuration_is_a_usage_error() {
        let err = DatabaseConfig::resolve_with(None, T, vars(&[])).unwrap_err();
        assert_eq!(err.exit, crate::exit::Exit::Usage);
        assert!(err.message.contains("DATABASE_URL"));
        let err = DatabaseConfig::resolve_with(Some("mysql://x/y"), T, vars(&[])).unwrap_err();
        assert!(err.message.contains("mysql"));
        let err =
            DatabaseConfig::resolve_with(None, T, vars(&[("POSTGRES_PORT", "five")])).unwrap_err();
        assert!(err.message.contains("POSTGRES_PORT"));
    }
}
