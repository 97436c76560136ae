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
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use temporalio_common::protos::temporal::api::common::v1::Payload;

use super::Keyring;
use crate::web::guard::{Cors, Guard};

/// What the server answers with.
pub struct CodecServer {
    pub keys: Arc<Keyring>,
    /// Its `Host`s, tokens and CORS origins.
    pub guard: Guard,
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
    server.guard.cors(
        &headers,
        response.headers_mut(),
        &Cors {
            methods: "POST, OPTIONS",
            headers: "Content-Type, X-Namespace, Authorization",
            expose: "",
            credentials: true,
        },
    );
    response
}

fn answer(
    server: &CodecServer,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    // A probe names the pod's address, and learns only that the keys loaded.
    if method == Method::GET && matches!(uri.path(), "/healthz" | "/readyz") {
        return (StatusCode::OK, "ok\n").into_response();
    }
    if !server.guard.addressed_to_us(headers) {
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
    if !server.guard.authorized(headers) {
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
