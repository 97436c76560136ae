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

        let ca = write(d, "ca.pem", &ca_cert.pem());
        let other_ca = write(d, "other-ca.pem", &other_cert.pem());
        write(d, "server.pem", &server_cert.pem());
        write(d, "server.key", &server_key.serialize_pem());
        let client_cert = write(d, "client.pem", &client_cert.pem());
        let client_key = write(d, "client.key", &client_key.serialize_pem());

        let api_key = format!("test-key-{}", uuid::Uuid::now_v7().simple());
        let (api_key_port, mtls_port) = (free_port().unwrap(), free_port().unwrap());
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
}}
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
        for port in [api_key_port, mtls_port] {
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
            _service: service,
            _dir: dir,
        }
    }
}
