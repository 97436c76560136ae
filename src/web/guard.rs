//! Who may call a server: requests addressed to it (its `Host`), bearer
//! tokens compared in constant time, and the browser origins CORS lets in.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use axum::http::{HeaderMap, HeaderValue, header};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::exit::Fail;

/// The checks a server makes before it answers.
#[derive(Default)]
pub struct Guard {
    /// Accepted as `Authorization: Bearer <token>`; none: no token asked.
    pub tokens: Vec<SecretString>,
    /// Host names requests may be addressed to, besides the loopback
    /// names and the listening address (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// The address it listens on.
    pub listen: Option<SocketAddr>,
    /// Origins a browser may call from (`*`: any); none: no CORS.
    pub allow_origins: Vec<String>,
}

impl Guard {
    /// Whether the request's `Host` names this server: `localhost`, a
    /// loopback address, the address it listens on, or an allowed host.
    /// A web page that points a name of its own at 127.0.0.1 (DNS
    /// rebinding) is not.
    pub fn addressed_to_us(&self, headers: &HeaderMap) -> bool {
        let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
            return false;
        };
        let Ok(authority) = host.parse::<axum::http::uri::Authority>() else {
            return false;
        };
        let name = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        if name.eq_ignore_ascii_case("localhost")
            || self
                .allow_hosts
                .iter()
                .any(|h| h.eq_ignore_ascii_case(name))
        {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => {
                ip.is_loopback()
                    || self
                        .listen
                        .is_some_and(|l| !l.ip().is_unspecified() && ip == l.ip())
            }
            Err(_) => false,
        }
    }

    /// Whether a token is asked for.
    pub fn needs_token(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The bearer token a request carries, if any (the scheme in any case).
    pub fn bearer(headers: &HeaderMap) -> Option<&str> {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
    }

    /// Whether the request carries an accepted token (or none is asked).
    /// Digests are compared, in constant time, with every token: the time
    /// taken says nothing about any of them.
    pub fn authorized(&self, headers: &HeaderMap) -> bool {
        if self.tokens.is_empty() {
            return true;
        }
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let given = Self::bearer(headers).unwrap_or("");
        let given = Sha256::digest(given.as_bytes());
        self.tokens.iter().fold(false, |found, token| {
            let digest = Sha256::digest(token.expose_secret().as_bytes());
            found | bool::from(digest.ct_eq(&given))
        })
    }

    /// Whether the request's `Origin` may call (CORS).
    pub fn origin_allowed(&self, origin: &HeaderValue) -> bool {
        self.allow_origins
            .iter()
            .any(|o| o == "*" || origin.as_bytes() == o.trim_end_matches('/').as_bytes())
    }

    /// The CORS headers for a request from an allowed origin.
    pub fn cors(&self, request: &HeaderMap, response: &mut HeaderMap, cors: &Cors) {
        let Some(origin) = request.get(header::ORIGIN) else {
            return;
        };
        if !self.origin_allowed(origin) {
            return;
        }
        // Without credentials, any origin is said as `*`; with them, the
        // caller's own (browsers refuse `*` with credentials).
        let any = !cors.credentials && self.allow_origins.iter().any(|o| o == "*");
        let allowed = if any {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        };
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        response.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static(cors.methods),
        );
        response.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static(cors.headers),
        );
        if !cors.expose.is_empty() {
            response.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(cors.expose),
            );
        }
        if cors.credentials {
            response.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        response.append(header::VARY, HeaderValue::from_static("Origin"));
    }
}

/// What CORS lets a browser do, for a server.
pub struct Cors {
    pub methods: &'static str,
    pub headers: &'static str,
    /// Response headers a page may read (besides the simple ones).
    pub expose: &'static str,
    /// Whether the browser may send its cookies (the Web UI's codec calls).
    pub credentials: bool,
}

/// The tokens of a token file, one a line (blank lines and `#` comments
/// skipped), for `flag`. A missing, empty or unreadable file is refused,
/// and one that group or others may read: a token is a secret, like a key.
pub fn read_tokens(path: &Path, flag: &str) -> Result<Vec<SecretString>, Fail> {
    let cannot =
        |e: std::io::Error| Fail::usage(format!("cannot read {flag} {}: {e}", path.display()));
    let metadata = std::fs::metadata(path).map_err(cannot)?;
    crate::config::refuse_open_permissions(&metadata, path, "the token file")?;
    let text = std::fs::read_to_string(path).map_err(cannot)?;
    let tokens: Vec<SecretString> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| SecretString::from(l.to_owned()))
        .collect();
    if tokens.is_empty() {
        return Err(Fail::usage(format!(
            "{flag} {} holds no token; put one token a line",
            path.display()
        )));
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &str, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn any_of_the_tokens_is_accepted_and_nothing_else() {
        let guard = Guard {
            tokens: vec!["first".into(), "second".into()],
            ..Guard::default()
        };
        assert!(guard.authorized(&with("authorization", "Bearer second")));
        assert!(guard.authorized(&with("authorization", "Bearer first")));
        assert!(guard.authorized(&with("authorization", "bearer first")));
        assert!(!guard.authorized(&with("authorization", "Bearer secon")));
        assert!(!guard.authorized(&with("authorization", "second")));
        assert!(!guard.authorized(&HeaderMap::new()));
        assert!(Guard::default().authorized(&HeaderMap::new()));
    }

    #[test]
    fn only_requests_addressed_to_this_server() {
        let guard = Guard {
            listen: Some("10.1.2.3:8080".parse().unwrap()),
            allow_hosts: vec!["orders.internal".into()],
            ..Guard::default()
        };
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "10.1.2.3:8080",
            "orders.internal",
        ] {
            assert!(guard.addressed_to_us(&with("host", host)), "{host}");
        }
        for host in ["evil.example:8080", "10.1.2.4", ""] {
            assert!(!guard.addressed_to_us(&with("host", host)), "{host}");
        }
    }
}
