//! A TLS front for the test's Temporal dev server, as Temporal Cloud or a
//! self-hosted ingress would put one: nginx terminating TLS and forwarding
//! gRPC, with a throwaway CA, a server certificate for `localhost`, a client
//! certificate, and two listeners:
//!
//! - `api_key_port`: TLS, and the `authorization: Bearer <key>` header must
//!   carry the API key, else the answer is gRPC `UNAUTHENTICATED`;
//! - `mtls_port`: TLS that requires a client certificate signed by the CA.
//!
//! A second CA, which signed nothing the server shows, stands in for "a CA
//! this client trusts that is not the server's".
//!
//! And the broken fronts a user meets (`fronts`, by name): plain HTTP/2
//! listeners that answer 401, 403, 404, 502 (an upstream that is down),
//! 503, an HTML page, another gRPC service; TLS listeners with an expired
//! certificate and with a CA's own certificate as the server's.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use orderflow::stack::{Service, find_program, free_port, running_as_root};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

pub struct TlsFront {
    pub api_key_port: u16,
    pub mtls_port: u16,
    pub api_key: String,
    /// The CA that signed the server's and the client's certificates.
    pub ca: PathBuf,
    /// A CA that signed nothing here.
    pub other_ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// A CA certificate (for `localhost`) that the `ca-as-server` front
    /// shows as its own: trusting it gets a client that far.
    pub ca_as_server: PathBuf,
    /// Broken fronts by name: `401`, `403`, `404`, `502`, `503`, `html`,
    /// `other-grpc` (plain), `expired`, `ca-as-server` (TLS).
    pub fronts: std::collections::BTreeMap<&'static str, u16>,
    _service: Service,
    _dir: tempfile::TempDir,
}

/// The front, started once per test binary in front of the shared dev server.
pub fn front() -> &'static TlsFront {
    static FRONT: OnceLock<TlsFront> = OnceLock::new();
    FRONT.get_or_init(|| {
        let backend = super::temporal_address();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(TlsFront::start(&backend))
        })
        .join()
        .expect("starting the TLS front")
    })
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn ca(name: &str) -> (CertificateParams, KeyPair) {
    let mut params = CertificateParams::new(Vec::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    (params, KeyPair::generate().unwrap())
}

impl TlsFront {
    async fn start(backend: &str) -> Self {
        let nginx = find_program("nginx", &[PathBuf::from("/usr/sbin")])
            .expect("nginx is not installed: run `make deps` (apt-get install nginx-light)");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();

        let (ca_params, ca_key) = ca("orderflow test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let (other_params, other_key) = ca("some other CA");
        let other_cert = other_params.self_signed(&other_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server_cert = CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .signed_by(&server_key, &issuer)
            .unwrap();
        let mut client_params = CertificateParams::new(Vec::new()).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "orderflow test client");
        let client_key = KeyPair::generate().unwrap();
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

        let mut expired = CertificateParams::new(vec!["localhost".into()]).unwrap();
        expired.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expired.not_after = rcgen::date_time_ymd(2020, 2, 1);
        let expired_key = KeyPair::generate().unwrap();
        let expired = expired.signed_by(&expired_key, &issuer).unwrap();
        write(d, "expired.pem", &expired.pem());
        write(d, "expired.key", &expired_key.serialize_pem());
        let (mut ca_server, ca_server_key) = ca("localhost");
        ca_server.subject_alt_names =
            vec![rcgen::SanType::DnsName("localhost".try_into().unwrap())];
        let ca_server = ca_server.self_signed(&ca_server_key).unwrap();
        let ca_as_server = write(d, "ca-as-server.pem", &ca_server.pem());
        write(d, "ca-as-server.key", &ca_server_key.serialize_pem());

        let ca = write(d, "ca.pem", &ca_cert.pem());
        let other_ca = write(d, "other-ca.pem", &other_cert.pem());
        write(d, "server.pem", &server_cert.pem());
        write(d, "server.key", &server_key.serialize_pem());
        let client_cert = write(d, "client.pem", &client_cert.pem());
        let client_key = write(d, "client.key", &client_key.serialize_pem());

        let api_key = format!("test-key-{}", uuid::Uuid::now_v7().simple());
        let (api_key_port, mtls_port) = (free_port().unwrap(), free_port().unwrap());
        let names = [
            "401",
            "403",
            "404",
            "502",
            "503",
            "html",
            "other-grpc",
            "expired",
            "ca-as-server",
        ];
        let fronts: std::collections::BTreeMap<&'static str, u16> = names
            .into_iter()
            .map(|n| (n, free_port().unwrap()))
            .collect();
        let down = free_port().unwrap();
        let plain = |name: &str, body: &str| {
            format!(
                "    server {{\n        listen 127.0.0.1:{} http2;\n        location / {{ {body} }}\n    }}\n",
                fronts[name]
            )
        };
        let tls = |name: &str| {
            format!(
                "    server {{\n        listen 127.0.0.1:{port} ssl http2;\n        \
                 ssl_certificate {temp}/{name}.pem;\n        ssl_certificate_key {temp}/{name}.key;\n        \
                 location / {{ grpc_pass grpc://{backend}; }}\n    }}\n",
                port = fronts[name],
                temp = d.display(),
            )
        };
        let broken = [
            plain("401", "return 401;"),
            plain("403", "return 403;"),
            plain("404", "return 404;"),
            plain("502", &format!("grpc_pass grpc://127.0.0.1:{down};")),
            plain("503", "return 503;"),
            plain(
                "html",
                "default_type text/html; return 200 \"<html><body>Welcome</body></html>\";",
            ),
            plain(
                "other-grpc",
                "default_type application/grpc; add_header grpc-status 12 always; \
                 add_header grpc-message \"unknown service\" always; return 200;",
            ),
            tls("expired"),
            tls("ca-as-server"),
        ]
        .concat();
        let user = if running_as_root() { "user root;" } else { "" };
        let temp = d.display();
        let conf = format!(
            r#"{user}
daemon off;
worker_processes 1;
pid {temp}/nginx.pid;
error_log {temp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    ssl_certificate {temp}/server.pem;
    ssl_certificate_key {temp}/server.key;
    grpc_read_timeout 1h;
    grpc_send_timeout 1h;

    server {{
        listen 127.0.0.1:{api_key_port} ssl http2;
        location / {{
            default_type application/grpc;
            if ($http_authorization != "Bearer {api_key}") {{
                add_header grpc-status 16 always;
                add_header grpc-message "Request unauthorized" always;
                return 200;
            }}
            grpc_pass grpc://{backend};
        }}
    }}

    server {{
        listen 127.0.0.1:{mtls_port} ssl http2;
        ssl_client_certificate {temp}/ca.pem;
        ssl_verify_client on;
        location / {{
            grpc_pass grpc://{backend};
        }}
    }}

{broken}}}
"#
        );
        let conf = write(d, "nginx.conf", &conf);
        let args = vec![
            "-p".to_owned(),
            d.display().to_string(),
            "-c".to_owned(),
            conf.display().to_string(),
        ];
        let mut service = Service::spawn(
            "nginx",
            std::process::Command::new(&nginx).args(&args),
            None,
            "QUIT",
            d.join("nginx.log"),
            None,
        )
        .unwrap();
        for port in [api_key_port, mtls_port]
            .into_iter()
            .chain(fronts.values().copied())
        {
            service
                .wait_ready("nginx", Duration::from_secs(20), || async move {
                    tokio::net::TcpStream::connect(("127.0.0.1", port))
                        .await
                        .is_ok()
                })
                .await
                .unwrap();
        }
        Self {
            api_key_port,
            mtls_port,
            api_key,
            ca,
            other_ca,
            client_cert,
            client_key,
            ca_as_server,
            fronts,
            _service: service,
            _dir: dir,
        }
    }
}
