//! The Temporal remote codec protocol, for the Web UI
//! (`--ui-codec-endpoint`) and `temporal --codec-endpoint`: `POST …/encode`
//! and `POST …/decode`, each taking and answering
//! `{"payloads": [{"metadata": {"encoding": "<base64>"}, "data": "<base64>"}]}`.
//! CORS lets the allowed origins (the UI's) call it from a browser, and an
//! optional bearer token keeps others out. Requests must name this server
//! in their `Host` header (a loopback name, the address it listens on, or
//! an allowed host): a web page that points a name of its own at
//! 127.0.0.1 (DNS rebinding) is refused.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use temporalio_common::protos::temporal::api::common::v1::Payload;

use super::Keyring;

/// What the server answers with.
pub struct CodecServer {
    pub keys: Arc<Keyring>,
    /// Origins a browser may call from (`*`: any).
    pub allow_origins: Vec<String>,
    /// Required as `Authorization: Bearer <token>` when set.
    pub token: Option<SecretString>,
    /// Host names requests may be addressed to, besides the loopback names
    /// and the listening address (`--allow-host`).
    pub allow_hosts: Vec<String>,
    /// The address it listens on.
    pub listen: std::net::SocketAddr,
}

/// One payload as the protocol carries it: bytes as base64.
#[derive(Debug, Serialize, Deserialize)]
pub struct WirePayload {
    #[serde(default)]
    pub metadata: HashMap<String, String>,
    #[serde(default)]
    pub data: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WirePayloads {
    pub payloads: Vec<WirePayload>,
}

impl WirePayload {
    pub fn from_payload(p: &Payload) -> Self {
        Self {
            metadata: p
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), STANDARD.encode(v)))
                .collect(),
            data: STANDARD.encode(&p.data),
        }
    }

    pub fn to_payload(&self) -> Result<Payload, String> {
        let decode = |what: &str, v: &str| {
            STANDARD
                .decode(v)
                .map_err(|e| format!("{what} is not base64: {e}"))
        };
        let mut metadata = HashMap::new();
        for (k, v) in &self.metadata {
            metadata.insert(k.clone(), decode(&format!("metadata {k:?}"), v)?);
        }
        Ok(Payload {
            metadata,
            data: decode("data", &self.data)?,
            ..Default::default()
        })
    }
}

/// Serves until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, server: CodecServer) -> std::io::Result<()> {
    let app = Router::new().fallback(handle).with_state(Arc::new(server));
    axum::serve(listener, app).await
}

async fn handle(
    State(server): State<Arc<CodecServer>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut response = answer(&server, &method, &uri, &headers, &body);
    server.cors(&headers, response.headers_mut());
    response
}

fn answer(
    server: &CodecServer,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    if !server.addressed_to_us(headers) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "this codec server does not answer for that Host; see --allow-host\n",
        )
            .into_response();
    }
    if method == Method::OPTIONS {
        return StatusCode::OK.into_response();
    }
    let path = uri.path().trim_end_matches('/');
    let encode = match path.rsplit('/').next() {
        Some("encode") => true,
        Some("decode") => false,
        _ => return (StatusCode::NOT_FOUND, "POST /encode or /decode\n").into_response(),
    };
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, "POST only\n").into_response();
    }
    if !server.authorized(headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required\n",
        )
            .into_response();
    }
    let request: WirePayloads = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                format!("expected {{\"payloads\": [...]}}: {e}\n"),
            )
                .into_response();
        }
    };
    let payloads = match request
        .payloads
        .iter()
        .map(WirePayload::to_payload)
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(p) => p,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let coded = match encode {
        true => server.keys.encrypt_all(&payloads),
        false => server.keys.decrypt_all(payloads),
    };
    match coded {
        Ok(payloads) => axum::Json(WirePayloads {
            payloads: payloads.iter().map(WirePayload::from_payload).collect(),
        })
        .into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    }
}

impl CodecServer {
    /// Whether the request's `Host` names this server: `localhost`, a
    /// loopback address, the address it listens on, or an allowed host.
    fn addressed_to_us(&self, headers: &HeaderMap) -> bool {
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
        match name.parse::<std::net::IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.listen.ip(),
            Err(_) => false,
        }
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compare digests, so the time taken says nothing about the token.
        Sha256::digest(given.as_bytes()) == Sha256::digest(token.expose_secret().as_bytes())
    }

    fn cors(&self, request: &HeaderMap, response: &mut HeaderMap) {
        let Some(origin) = request.get(header::ORIGIN) else {
            return;
        };
        let allowed = self
            .allow_origins
            .iter()
            .any(|o| o == "*" || origin.as_bytes() == o.trim_end_matches('/').as_bytes());
        if !allowed {
            return;
        }
        response.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        response.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("POST, OPTIONS"),
        );
        response.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, X-Namespace, Authorization"),
        );
        response.insert(
            header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
        response.insert(header::VARY, HeaderValue::from_static("Origin"));
    }
}
