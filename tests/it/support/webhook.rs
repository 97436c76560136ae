//! A webhook receiver for tests: wiremock's server, answering every POST
//! with a status the test chooses, and keeping what it received.

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: Vec<(String, String)>,
    pub body: serde_json::Value,
    /// The body's bytes as they came.
    pub raw: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub struct Webhook {
    pub url: url::Url,
    server: MockServer,
}

impl Webhook {
    /// Starts answering every POST with `status`.
    pub async fn start(status: u16) -> Self {
        let server = MockServer::start().await;
        let url = url::Url::parse(&format!("{}/notify", server.uri())).unwrap();
        answer(&server, status).await;
        Self { url, server }
    }

    /// Answers with `status` from now on (and forgets what it received).
    pub async fn set_status(&self, status: u16) {
        self.server.reset().await;
        answer(&self.server, status).await;
    }

    pub async fn received(&self) -> Vec<Received> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|r| Received {
                headers: r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
                    .collect(),
                body: serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
                raw: r.body,
            })
            .collect()
    }
}

async fn answer(server: &MockServer, status: u16) {
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(status))
        .mount(server)
        .await;
}
