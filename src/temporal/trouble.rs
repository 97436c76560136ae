//! What went wrong between orderflow and Temporal, read from the error's
//! structure: the SDK's connect error, the gRPC status code and details,
//! the response's headers, the TLS library's error kinds, the OS error
//! kind, and for an answer that is not gRPC, the HTTP status itself
//! ([`super::probe`]). Never from an error's printed text.
//!
//! Each failure becomes one [`TemporalError`]: a line that says what
//! happened, and a hint that fits it.

use std::error::Error as StdError;
use std::fmt;

use prost::Message as _;
use temporalio_client::errors::ClientConnectError;
use temporalio_client::tonic::{self, Code};
use temporalio_common::protos::google::rpc::Status as RpcStatus;

use crate::exit::Exit;

/// What kind of failure it was: decides the headline, the exit code, and
/// whether waiting may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    /// Nothing answered: nothing listens, the connection dropped, or no
    /// answer came in time.
    NoAnswer,
    /// The host name does not resolve.
    UnknownHost,
    /// TLS failed: the server's certificate was refused, or one side does
    /// not speak TLS.
    Tls,
    /// The server (or a proxy in front) refused the credentials.
    Refused,
    /// Something answered that is not a Temporal frontend.
    NotTemporal,
    /// A proxy answered that its upstream is down or busy (HTTP 429, 502,
    /// 503, 504; or gRPC's UNAVAILABLE for an answer that was not gRPC).
    UpstreamDown,
    /// The namespace does not exist.
    NoNamespace,
    /// The settings themselves cannot be used (exit 2).
    Settings,
    /// Temporal answered the call with an error of its own.
    Answered,
}

/// A failure to reach or use Temporal (exit 8; 2 for unusable settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemporalError {
    pub address: String,
    pub namespace: String,
    /// What orderflow was doing ("looking up order X"); `None` while connecting.
    pub doing: Option<String>,
    pub cause: Cause,
    /// What happened, in a line.
    pub said: String,
    /// What to check or do; `None` where the line says it all.
    pub hint: Option<String>,
}

impl std::error::Error for TemporalError {}

impl fmt::Display for TemporalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.headline())?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl TemporalError {
    /// What happened, in one line (the hint apart).
    pub fn headline(&self) -> String {
        let (address, said) = (&self.address, &self.said);
        let during = self
            .doing
            .as_ref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        match self.cause {
            Cause::NoAnswer | Cause::UnknownHost if self.doing.is_some() => {
                format!("Temporal at {address} did not answer{during}: {said}")
            }
            Cause::NoAnswer | Cause::UnknownHost => format!(
                "cannot reach Temporal at {address} (namespace {}): {said}",
                self.namespace
            ),
            Cause::Tls => {
                format!("cannot connect securely to Temporal at {address}{during}: {said}")
            }
            Cause::Refused => {
                format!("Temporal at {address} refused the connection{during}: {said}")
            }
            Cause::NotTemporal | Cause::UpstreamDown => {
                format!("what answers at {address} is not a Temporal frontend{during}: {said}")
            }
            Cause::NoNamespace => format!(
                "Temporal at {address} has no namespace {}{during}",
                self.namespace
            ),
            Cause::Settings => format!("cannot use the Temporal settings: {said}"),
            Cause::Answered => format!("Temporal at {address} refused{during}: {said}"),
        }
    }

    pub fn exit(&self) -> Exit {
        match self.cause {
            Cause::Settings => Exit::Usage,
            _ => Exit::Unavailable,
        }
    }

    /// Whether a setting or a credential on this side is wrong (the
    /// settings, refused credentials, TLS): waiting will not help. A
    /// worker waits out anything else while it starts, as a server or a
    /// front that is still coming up looks like many of those.
    pub fn settled(&self) -> bool {
        matches!(self.cause, Cause::Settings | Cause::Refused | Cause::Tls)
    }

    /// Whether waiting may help: no server answered, or a proxy's upstream
    /// is down. Not for refused credentials or a wrong address.
    pub fn passes(&self) -> bool {
        matches!(
            self.cause,
            Cause::NoAnswer | Cause::UnknownHost | Cause::UpstreamDown
        )
    }
}

// What to check, per cause: the flag and its variable.
const START: &str = "is the server running? Start one with `temporal server start-dev` or \
                     `orderflow dev`, or point --address / TEMPORAL_ADDRESS at yours";
const CHECK_ADDRESS: &str = "is the address right? Check --address / TEMPORAL_ADDRESS";
const CHECK_CA: &str = "check --tls-ca-path / TEMPORAL_TLS_SERVER_CA_CERT_PATH (the CA that signed the server's certificate)";
const CHECK_NAME: &str = "check --tls-server-name / TEMPORAL_TLS_SERVER_NAME (the name the certificate is for) and --address";
const RENEW: &str = "the server's operator must renew its certificate; if it is current, check this machine's clock";
const CA_AS_SERVER: &str = "the server must show a certificate its CA issued for it, not the CA's own; \
                            give that CA with --tls-ca-path / TEMPORAL_TLS_SERVER_CA_CERT_PATH";
const NOT_TLS: &str = "the server speaks plain gRPC: drop --tls, the TLS paths and --api-key \
                       (or TEMPORAL_TLS*), or point --address at its TLS port";
const ONLY_TLS: &str = "if the server speaks only TLS, give --tls (or --tls-ca-path, or --api-key); \
                        if it is an HTTP/1 server (the Web UI, port 8233), point --address at the \
                        gRPC frontend (port 7233 by default)";
const LIMITED: &str = "a proxy in front of Temporal is limiting requests: wait and try again, \
                       or ask its operator about the limit";
const CHECK_CERT: &str = "set --tls-cert-path and --tls-key-path (TEMPORAL_TLS_CLIENT_CERT_PATH, TEMPORAL_TLS_CLIENT_KEY_PATH); the server's CA must have signed the certificate";
const CHECK_KEY: &str =
    "check --api-key / TEMPORAL_API_KEY: the key may be wrong, revoked or for another account";
const SET_KEY: &str = "set an API key with --api-key / TEMPORAL_API_KEY, or a client certificate with --tls-cert-path / --tls-key-path";
const CHECK_ACCESS: &str = "check that the API key or certificate has access to this namespace (--namespace / TEMPORAL_NAMESPACE)";
const UPSTREAM: &str = "a proxy or load balancer answered for Temporal: its upstream (the Temporal \
                        frontend) may be down, or --address / TEMPORAL_ADDRESS names the wrong service";
const WRONG_SERVICE: &str = "--address / TEMPORAL_ADDRESS names something other than a Temporal \
                             frontend (gRPC, port 7233 by default), or a proxy routes it elsewhere";

/// Where a connection goes and with which credentials: what a failure is
/// told against.
#[derive(Debug, Clone, Default)]
pub struct Target {
    pub address: String,
    pub namespace: String,
    /// TLS is on (explicitly, or because of an API key).
    pub tls: bool,
    pub api_key: bool,
    pub client_cert: bool,
    pub server_name: Option<String>,
}

/// An HTTP answer that is not gRPC: its status, and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnswer {
    pub status: u16,
    pub reason: Option<&'static str>,
    pub server: Option<String>,
}

impl HttpAnswer {
    fn describe(&self) -> String {
        let mut said = format!("HTTP {}", self.status);
        if let Some(reason) = self.reason {
            said.push(' ');
            said.push_str(reason);
        }
        if let Some(server) = &self.server {
            said.push_str(&format!(" from {}", crate::domain::clip(server)));
        }
        said
    }
}

impl Target {
    fn error(
        &self,
        doing: Option<String>,
        cause: Cause,
        said: String,
        hint: Option<&str>,
    ) -> TemporalError {
        TemporalError {
            address: self.address.clone(),
            namespace: self.namespace.clone(),
            doing,
            cause,
            said: said.lines().next().unwrap_or("").to_owned(),
            hint: hint.map(str::to_owned),
        }
    }

    /// Settings that cannot be used (exit 2).
    pub fn settings(&self, said: String) -> TemporalError {
        self.error(None, Cause::Settings, said, None)
    }

    /// An error the server answered with that is none of the above.
    pub fn answered(&self, doing: Option<String>, status: &tonic::Status) -> TemporalError {
        self.error(doing, Cause::Answered, code_said(status), None)
    }

    /// No answer within the connect timeout.
    pub fn timed_out(&self, after: std::time::Duration) -> TemporalError {
        let said = format!("no answer within {}", humantime::format_duration(after));
        self.error(None, Cause::NoAnswer, said, Some(START))
    }

    /// Why connecting failed. `http`: how to learn the HTTP status of an
    /// answer that was not gRPC.
    pub async fn connect_failed(
        &self,
        error: &ClientConnectError,
        http: impl AsyncFnOnce() -> Option<HttpAnswer>,
    ) -> TemporalError {
        match error {
            ClientConnectError::InvalidUri(_)
            | ClientConnectError::InvalidHeaders(_)
            | ClientConnectError::InvalidConfig(_) => self.settings(error.to_string()),
            ClientConnectError::DnsResolutionError { host, .. } => self.error(
                None,
                Cause::UnknownHost,
                format!("the name {host} does not resolve"),
                Some(CHECK_ADDRESS),
            ),
            ClientConnectError::SystemInfoCallError(status) => {
                match self.call_failed(None, status, http).await {
                    Some(e) => e,
                    // It answered GetSystemInfo, with an error a frontend
                    // would not give.
                    None => self.error(
                        None,
                        Cause::NotTemporal,
                        format!("it answered {}", code_said(status)),
                        Some(WRONG_SERVICE),
                    ),
                }
            }
            other => self.transport(None, other).unwrap_or_else(|| {
                self.error(
                    None,
                    Cause::NoAnswer,
                    crate::domain::clip(&innermost(other)),
                    Some(START),
                )
            }),
        }
    }

    /// Why a call failed, when Temporal (or what stands for it) is why;
    /// `None` when the server answered and the answer is the caller's to
    /// tell (an order not found, an invalid query).
    pub async fn call_failed(
        &self,
        doing: Option<String>,
        status: &tonic::Status,
        http: impl AsyncFnOnce() -> Option<HttpAnswer>,
    ) -> Option<TemporalError> {
        if let Some(e) = self.transport(doing.clone(), status) {
            return Some(e);
        }
        let content_type = status
            .metadata()
            .get("content-type")
            .and_then(|v| v.to_str().ok());
        // No answer at all, the call cancelled as the connection went:
        // plain HTTP/2 to a TLS port ends so when the server's refusal
        // comes before the request is out (else HTTP/2 reads it as a
        // frame, which `transport` tells). Ask the port itself.
        if !self.tls
            && status.code() == Code::Cancelled
            && content_type.is_none()
            && speaks_tls(&self.address).await
        {
            return Some(self.plain_to_tls(doing));
        }
        let grpc = content_type.is_none_or(|t| t.starts_with("application/grpc"));
        if !grpc {
            let server = status
                .metadata()
                .get("server")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let answer = match http().await {
                Some(answer) => answer,
                None => {
                    let said = format!(
                        "an answer that is not gRPC (content-type {}{})",
                        crate::domain::clip(content_type.unwrap_or("")),
                        server
                            .map(|s| format!(", server {}", crate::domain::clip(&s)))
                            .unwrap_or_default()
                    );
                    // No second answer to read: gRPC's own reading of the
                    // HTTP status (UNAVAILABLE for 429, 502, 503, 504).
                    return Some(match status.code() {
                        Code::Unavailable => {
                            self.error(doing, Cause::UpstreamDown, said, Some(UPSTREAM))
                        }
                        _ => self.error(doing, Cause::NotTemporal, said, Some(WRONG_SERVICE)),
                    });
                }
            };
            return Some(self.http_answer(doing, &answer));
        }
        let said = code_said(status);
        let e = match status.code() {
            Code::Unauthenticated if self.api_key => self.error(
                doing,
                Cause::Refused,
                format!("API key rejected ({said})"),
                Some(CHECK_KEY),
            ),
            Code::Unauthenticated => self.error(
                doing,
                Cause::Refused,
                format!("credentials required, and no API key was given ({said})"),
                Some(SET_KEY),
            ),
            Code::PermissionDenied => self.error(
                doing,
                Cause::Refused,
                format!("permission denied on namespace {} ({said})", self.namespace),
                Some(CHECK_ACCESS),
            ),
            Code::NotFound if namespace_not_found(status) => {
                let hint = format!(
                    "check --namespace / TEMPORAL_NAMESPACE; create it with \
                     `temporal operator namespace create --namespace {}`",
                    self.namespace
                );
                self.error(doing, Cause::NoNamespace, String::new(), Some(&hint))
            }
            Code::Unimplemented => self.error(
                doing,
                Cause::NotTemporal,
                format!("a gRPC service that does not implement Temporal's ({said})"),
                Some(WRONG_SERVICE),
            ),
            Code::Unavailable | Code::DeadlineExceeded => {
                let hint = doing.is_none().then_some(START);
                self.error(
                    doing,
                    Cause::NoAnswer,
                    crate::domain::clip(&innermost(status)),
                    hint,
                )
            }
            _ => return None,
        };
        Some(e)
    }

    /// An HTTP answer that is not gRPC: what it means.
    fn http_answer(&self, doing: Option<String>, answer: &HttpAnswer) -> TemporalError {
        let said = answer.describe();
        match answer.status {
            401 if self.api_key => self.error(
                doing,
                Cause::Refused,
                format!("API key rejected ({said})"),
                Some(CHECK_KEY),
            ),
            401 => self.error(
                doing,
                Cause::Refused,
                format!("credentials required ({said})"),
                Some(SET_KEY),
            ),
            403 => self.error(
                doing,
                Cause::Refused,
                format!("permission denied ({said})"),
                Some(CHECK_ACCESS),
            ),
            // nginx, for one, answers 400 when a required client
            // certificate is missing or not signed by its CA.
            400 if self.tls => {
                let cause = match self.client_cert {
                    true => "client certificate rejected",
                    false => {
                        "client certificate required: the server asks for one and none was sent"
                    }
                };
                self.error(
                    doing,
                    Cause::Refused,
                    format!("{cause} ({said})"),
                    Some(CHECK_CERT),
                )
            }
            502..=504 => self.error(doing, Cause::UpstreamDown, said, Some(UPSTREAM)),
            429 => self.error(doing, Cause::UpstreamDown, said, Some(LIMITED)),
            _ => self.error(doing, Cause::NotTemporal, said, Some(WRONG_SERVICE)),
        }
    }

    /// A failure below gRPC, from the error's causes: the TLS library's
    /// error kinds, HTTP/2's, the OS's. `None` when none of them is why.
    fn transport(
        &self,
        doing: Option<String>,
        error: &(dyn StdError + 'static),
    ) -> Option<TemporalError> {
        let causes = causes(error);
        if let Some(tls) = causes
            .iter()
            .find_map(|e| e.downcast_ref::<rustls::Error>())
        {
            return Some(self.tls_failed(doing, tls));
        }
        let frames = causes.iter().find_map(|e| e.downcast_ref::<h2::Error>());
        if !self.tls
            && let Some(h2) = frames
            && h2.is_go_away()
            && matches!(
                h2.reason(),
                Some(h2::Reason::FRAME_SIZE_ERROR | h2::Reason::PROTOCOL_ERROR)
            )
        {
            return Some(self.plain_to_tls(doing));
        }
        let io = causes
            .iter()
            .find_map(|e| e.downcast_ref::<std::io::Error>());
        if let Some(io) = io {
            use std::io::ErrorKind::*;
            if matches!(
                io.kind(),
                ConnectionRefused
                    | ConnectionReset
                    | ConnectionAborted
                    | TimedOut
                    | NotConnected
                    | BrokenPipe
                    | UnexpectedEof
                    | HostUnreachable
                    | NetworkUnreachable
                    | AddrNotAvailable
            ) {
                let hint = doing.is_none().then_some(START);
                return Some(self.error(
                    doing,
                    Cause::NoAnswer,
                    crate::domain::clip(&io.to_string()),
                    hint,
                ));
            }
        }
        None
    }

    /// Plain HTTP/2 sent to a server that speaks only TLS.
    fn plain_to_tls(&self, doing: Option<String>) -> TemporalError {
        let said = "what answered does not speak plain HTTP/2 (gRPC)".to_owned();
        self.error(doing, Cause::Tls, said, Some(ONLY_TLS))
    }

    fn tls_failed(&self, doing: Option<String>, tls: &rustls::Error) -> TemporalError {
        use rustls::CertificateError as C;
        use rustls::{AlertDescription as A, Error as E};
        let host = self
            .address
            .rsplit_once(':')
            .map_or(self.address.as_str(), |(h, _)| h);
        let name = self.server_name.as_deref().unwrap_or(host);
        let (said, hint) = match tls {
            E::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => (
                "certificate not trusted: the server's certificate is not signed by a CA this client trusts".to_owned(),
                CHECK_CA,
            ),
            E::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => (
                format!("the server's certificate is not valid for {name}"),
                CHECK_NAME,
            ),
            E::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
                ("the server's certificate has expired".to_owned(), RENEW)
            }
            E::InvalidCertificate(C::NotValidYet | C::NotValidYetContext { .. }) => {
                ("the server's certificate is not valid yet".to_owned(), RENEW)
            }
            E::InvalidCertificate(C::Other(other))
                if matches!(
                    other.0.downcast_ref::<webpki::Error>(),
                    Some(webpki::Error::CaUsedAsEndEntity)
                ) =>
            {
                (
                    "the server shows a CA certificate as its own".to_owned(),
                    CA_AS_SERVER,
                )
            }
            E::InvalidCertificate(_) => (format!("the server's certificate was refused: {}", crate::domain::clip(&tls.to_string())), CHECK_CA),
            E::AlertReceived(A::CertificateRequired | A::HandshakeFailure) if !self.client_cert => (
                "client certificate required: the server asks for one and none was sent".to_owned(),
                CHECK_CERT,
            ),
            E::AlertReceived(
                A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::CertificateRequired
                | A::AccessDenied | A::HandshakeFailure,
            ) => ("client certificate rejected".to_owned(), CHECK_CERT),
            E::InvalidMessage(_) => ("the server does not speak TLS".to_owned(), NOT_TLS),
            _ => (format!("the TLS handshake failed: {}", crate::domain::clip(&tls.to_string())), CHECK_CA),
        };
        let cause = if matches!(tls, E::AlertReceived(_)) {
            Cause::Refused
        } else {
            Cause::Tls
        };
        self.error(doing, cause, said, Some(hint))
    }
}

/// An error and its causes, each once, with what an `io::Error` wraps
/// (which its `source()` skips: a TLS error travels inside one).
fn causes<'a>(error: &'a (dyn StdError + 'static)) -> Vec<&'a (dyn StdError + 'static)> {
    let mut all = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        all.push(e);
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            all.push(inner as &(dyn StdError + 'static));
            next = inner.source().or_else(|| e.source());
            continue;
        }
        // h2 keeps the I/O error under it without naming it as a source.
        if let Some(io) = e.downcast_ref::<h2::Error>().and_then(|h2| h2.get_io()) {
            all.push(io as &(dyn StdError + 'static));
            if let Some(inner) = io.get_ref() {
                all.push(inner as &(dyn StdError + 'static));
            }
        }
        next = e.source();
    }
    all
}

/// The innermost cause's words ("Connection refused (os error 111)"),
/// or the status's message when it has no cause.
fn innermost(error: &(dyn StdError + 'static)) -> String {
    let all = causes(error);
    let last = all.last().expect("the error itself");
    match error.downcast_ref::<tonic::Status>() {
        Some(status) if all.len() == 1 => status.message().to_owned(),
        _ => last.to_string(),
    }
}

/// `UNAUTHENTICATED: Request unauthorized`: a status's code and first line.
fn code_said(status: &tonic::Status) -> String {
    let code = format!("{:?}", status.code()).to_uppercase();
    let code = match status.code() {
        Code::PermissionDenied => "PERMISSION_DENIED".to_owned(),
        Code::InvalidArgument => "INVALID_ARGUMENT".to_owned(),
        Code::NotFound => "NOT_FOUND".to_owned(),
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED".to_owned(),
        Code::AlreadyExists => "ALREADY_EXISTS".to_owned(),
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED".to_owned(),
        Code::FailedPrecondition => "FAILED_PRECONDITION".to_owned(),
        Code::OutOfRange => "OUT_OF_RANGE".to_owned(),
        Code::DataLoss => "DATA_LOSS".to_owned(),
        _ => code,
    };
    match status.message().lines().next().unwrap_or("").trim() {
        "" => code,
        m => format!("{code}: {}", crate::domain::clip(m)),
    }
}

/// Whether a `NOT_FOUND` is about the namespace: Temporal says so in the
/// status's details (`NamespaceNotFoundFailure`), not only in its words.
fn namespace_not_found(status: &tonic::Status) -> bool {
    RpcStatus::decode(status.details()).is_ok_and(|s| {
        s.details.iter().any(|d| {
            d.type_url
                .ends_with("temporal.api.errordetails.v1.NamespaceNotFoundFailure")
        })
    })
}

/// Whether what listens at `address` speaks TLS: it answers a TLS
/// ClientHello with a TLS record (a handshake, or an alert such as "no
/// cipher in common"); a plain HTTP/2 or HTTP/1 server answers with a
/// frame, a page or nothing.
async fn speaks_tls(address: &str) -> bool {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0x2f, // a handshake record, 47 bytes
        0x01, 0x00, 0x00, 0x2b, // ClientHello, 43 bytes
        0x03, 0x03, // TLS 1.2
    ];
    hello.extend_from_slice(&[0x2a; 32]); // random
    hello.extend_from_slice(&[
        0x00, // no session
        0x00, 0x04, 0xc0, 0x2f, 0xc0, 0x30, // two ECDHE-RSA-AES-GCM suites
        0x01, 0x00, // no compression
    ]);
    let look = async {
        let mut stream = tokio::net::TcpStream::connect(address).await.ok()?;
        stream.write_all(&hello).await.ok()?;
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).await.ok()?;
        Some(matches!(first[0], 0x15 | 0x16))
    };
    tokio::time::timeout(std::time::Duration::from_secs(2), look)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    /// A server on a free port that answers anything with `reply`.
    async fn answering(reply: &'static [u8]) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut hello = [0u8; 16];
            let _ = stream.read(&mut hello).await;
            let _ = stream.write_all(reply).await;
        });
        address
    }

    #[tokio::test]
    async fn a_port_speaks_tls_when_it_answers_a_hello_with_a_record() {
        let alert = answering(b"\x15\x03\x03\x00\x02\x02\x28").await;
        assert!(speaks_tls(&alert).await);
        let page = answering(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        assert!(!speaks_tls(&page).await);
        let frame = answering(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00").await;
        assert!(!speaks_tls(&frame).await);
    }

    use super::*;

    fn target() -> Target {
        Target {
            address: "temporal.example:7233".into(),
            namespace: "orders".into(),
            ..Target::default()
        }
    }

    async fn none() -> Option<HttpAnswer> {
        None
    }

    #[tokio::test]
    async fn a_grpc_refusal_names_the_credential_to_check() {
        let status = tonic::Status::unauthenticated("Request unauthorized");
        let e = target().call_failed(None, &status, none).await.unwrap();
        assert_eq!(e.cause, Cause::Refused);
        assert!(
            e.to_string()
                .contains("UNAUTHENTICATED: Request unauthorized"),
            "{e}"
        );
        assert!(e.to_string().contains("--api-key"), "{e}");
        let e = Target {
            api_key: true,
            ..target()
        }
        .call_failed(None, &status, none)
        .await
        .unwrap();
        assert!(e.said.starts_with("API key rejected"), "{e}");
        let denied = tonic::Status::permission_denied("no");
        let e = target().call_failed(None, &denied, none).await.unwrap();
        assert!(e.said.contains("namespace orders"), "{e}");
    }

    #[tokio::test]
    async fn a_namespace_is_missing_only_when_the_details_say_so() {
        use temporalio_common::protos::google::rpc::Status as Rpc;
        let mut rpc = Rpc {
            code: 5,
            message: "Namespace orders is not found.".into(),
            details: vec![Default::default()],
        };
        rpc.details[0].type_url =
            "type.googleapis.com/temporal.api.errordetails.v1.NamespaceNotFoundFailure".into();
        let details = rpc.encode_to_vec();
        let missing = tonic::Status::with_details(
            Code::NotFound,
            "Namespace orders is not found.",
            details.into(),
        );
        let e = target().call_failed(None, &missing, none).await.unwrap();
        assert_eq!(e.cause, Cause::NoNamespace);
        assert_eq!(
            e.to_string().lines().next().unwrap(),
            "Temporal at temporal.example:7233 has no namespace orders"
        );
        // An order that is not there is the caller's to tell.
        let order = tonic::Status::not_found("workflow not found for ID: ORD-1");
        assert!(target().call_failed(None, &order, none).await.is_none());
    }

    #[tokio::test]
    async fn an_answer_that_is_not_grpc_is_told_by_its_http_status() {
        let mut status = tonic::Status::internal("anything at all");
        status
            .metadata_mut()
            .insert("content-type", "text/html".parse().unwrap());
        status
            .metadata_mut()
            .insert("server", "nginx/1.22.1".parse().unwrap());
        let answer = |code: u16, reason: &'static str| {
            async move || {
                Some(HttpAnswer {
                    status: code,
                    reason: Some(reason),
                    server: Some("nginx/1.22.1".into()),
                })
            }
        };
        let e = target()
            .call_failed(None, &status, answer(502, "Bad Gateway"))
            .await
            .unwrap();
        assert_eq!(e.cause, Cause::UpstreamDown);
        assert_eq!(e.said, "HTTP 502 Bad Gateway from nginx/1.22.1");
        assert!(e.passes());
        let e = target()
            .call_failed(None, &status, answer(401, "Unauthorized"))
            .await
            .unwrap();
        assert_eq!(e.cause, Cause::Refused);
        let e = target()
            .call_failed(None, &status, answer(404, "Not Found"))
            .await
            .unwrap();
        assert_eq!(e.cause, Cause::NotTemporal);
        assert!(!e.passes());
        // No probe answer: still not a dump, and not "is the server running".
        let e = target().call_failed(None, &status, none).await.unwrap();
        assert_eq!(
            e.said,
            "an answer that is not gRPC (content-type text/html, server nginx/1.22.1)"
        );
        let text = e.to_string();
        assert!(
            !text.contains("is the server running") && !text.contains("MetadataMap"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn without_a_second_answer_grpcs_reading_of_the_status_decides() {
        let mut status = tonic::Status::unavailable("anything");
        status
            .metadata_mut()
            .insert("content-type", "text/html".parse().unwrap());
        let e = target().call_failed(None, &status, none).await.unwrap();
        assert_eq!(e.cause, Cause::UpstreamDown, "{e}");
        assert!(e.passes() && !e.settled());
        let limited = async || {
            Some(HttpAnswer {
                status: 429,
                reason: Some("Too Many Requests"),
                server: None,
            })
        };
        let e = target().call_failed(None, &status, limited).await.unwrap();
        assert_eq!(e.said, "HTTP 429 Too Many Requests");
        assert!(e.passes());
    }

    #[test]
    fn settings_errors_exit_2_and_the_rest_8() {
        assert_eq!(target().settings("bad".into()).exit(), Exit::Usage);
        assert_eq!(
            target().timed_out(std::time::Duration::from_secs(5)).exit(),
            Exit::Unavailable
        );
    }
}
