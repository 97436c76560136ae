//! When what answered the gRPC client was not gRPC (an auth proxy's 401,
//! an ingress's 502, a web page), gRPC's error keeps the headers but not
//! the HTTP status. One plain HTTP request, sent as the client sent its
//! first call (same address, TLS settings and API key), reads it.

use secrecy::ExposeSecret as _;
use temporalio_common::envconfig::DataSource;

use super::settings::TemporalConfig;
use super::trouble::HttpAnswer;

/// The path of the first call the client makes.
const SYSTEM_INFO: &str = "/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo";

/// The HTTP status and `server` header of what answers at the configured
/// address; `None` when no answer came, or it was gRPC after all.
pub(super) async fn http_answer(config: &TemporalConfig) -> Option<HttpAnswer> {
    let request = request(config).await;
    let response = match request {
        Ok(request) => request.send().await,
        Err(e) => {
            tracing::debug!("no HTTP probe: {e}");
            return None;
        }
    };
    let response = response
        .inspect_err(|e| tracing::debug!("HTTP probe: {e}"))
        .ok()?;
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    if header("content-type").is_some_and(|t| t.starts_with("application/grpc")) {
        return None;
    }
    Some(HttpAnswer {
        status: response.status().as_u16(),
        reason: response.status().canonical_reason(),
        server: header("server"),
    })
}

async fn request(config: &TemporalConfig) -> anyhow::Result<reqwest::RequestBuilder> {
    let address = config
        .address
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    let mut client = reqwest::Client::builder()
        .timeout(config.connect_timeout)
        .redirect(reqwest::redirect::Policy::none());
    let mut authority = address.to_owned();
    let scheme = match config.tls_enabled() {
        Some(tls) => {
            // Trust what the client trusts: that CA alone, when one is given.
            if let Some(ca) = &tls.server_ca_cert {
                client = client
                    .tls_built_in_root_certs(false)
                    .add_root_certificate(reqwest::Certificate::from_pem(&read(ca)?)?);
            }
            if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
                let mut pem = read(cert)?;
                pem.push(b'\n');
                pem.extend(read(key)?);
                client = client.identity(reqwest::Identity::from_pem(&pem)?);
            }
            if let Some(name) = &tls.server_name {
                // Ask for the certificate's name, at the configured address.
                let port = address.rsplit_once(':').map_or("443", |(_, p)| p);
                let at = tokio::net::lookup_host(address)
                    .await?
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("{address} does not resolve"))?;
                client = client.resolve(name, at);
                authority = format!("{name}:{port}");
            }
            "https"
        }
        None if config.api_key().is_some() => "https",
        None => {
            client = client.http2_prior_knowledge();
            "http"
        }
    };
    let mut request = client
        .build()?
        .post(format!("{scheme}://{authority}{SYSTEM_INFO}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        // An empty GetSystemInfoRequest, framed: not compressed, length 0.
        .body(vec![0u8; 5]);
    for (name, value) in config.headers() {
        request = request.header(name, value.expose_secret());
    }
    if let Some(key) = config.api_key() {
        request = request.bearer_auth(key.expose_secret());
    }
    Ok(request)
}

fn read(source: &DataSource) -> std::io::Result<Vec<u8>> {
    match source {
        DataSource::Path(path) => std::fs::read(path),
        DataSource::Data(bytes) => Ok(bytes.clone()),
        _ => Err(std::io::Error::other(
            "a data source this version does not know",
        )),
    }
}
