//! The database settings: a flag, then the environment, then the seed's
//! `POSTGRES_*` variables. The URL may hold a password: it is held as a
//! `SecretString`, never printed, redacted in `Debug`. (Temporal's
//! settings are `temporal::settings`.)

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::exit::Fail;

/// Reads an environment variable; empty counts as unset.
pub(crate) fn env(name: &str) -> Option<String> {
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

#[cfg(unix)]
/// Refuses a secret's file (`what`: "the token file") that group or
/// others may read or write: it must be its owner's only.
pub(crate) fn refuse_open_permissions(
    metadata: &std::fs::Metadata,
    path: &std::path::Path,
    what: &str,
) -> Result<(), Fail> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Fail::usage(format!(
            "{what} {} is open to group or others (mode {mode:03o}): a secret's file must be \
             its owner's only; run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
pub(crate) fn refuse_open_permissions(
    _: &std::fs::Metadata,
    _: &std::path::Path,
    _: &str,
) -> Result<(), Fail> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

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
