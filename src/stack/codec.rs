//! Encryption for a local stack (`dev --encrypt`, `demo --encrypt`): the
//! configured key file, or a generated throwaway one (mode 0600), and a
//! codec server on 127.0.0.1 in this process, so the Web UI shows orders
//! decrypted.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;

use crate::temporal::codec::Keyring;
use crate::temporal::codec::server::{self, CodecServer};

/// The name of the generated key file in a stack's data directory.
const KEY_FILE: &str = "encryption-keys.txt";

pub struct LocalCodec {
    pub key_file: PathBuf,
    pub keys: Arc<Keyring>,
    /// `http://127.0.0.1:PORT`, where [`serve`](Self::serve) answers.
    pub endpoint: String,
    listener: Option<tokio::net::TcpListener>,
    /// Holds a generated key file of a stack that keeps nothing.
    _throwaway: Option<tempfile::TempDir>,
}

/// The key file `dev --fresh` deletes along with the orders it encrypted.
pub fn key_file_in(data_dir: &Path) -> PathBuf {
    data_dir.join(KEY_FILE)
}

impl LocalCodec {
    /// The keys: `configured` (a key file the user gave), else the one
    /// kept in `data_dir` (generated on first use, so kept orders stay
    /// readable), else a generated throwaway one. Binds the codec server's
    /// port, so its endpoint can be given to a Web UI before it serves.
    pub async fn prepare(
        configured: Option<&Path>,
        data_dir: Option<&Path>,
    ) -> anyhow::Result<Self> {
        let (key_file, throwaway) = match (configured, data_dir) {
            (Some(path), _) => (path.to_owned(), None),
            (None, Some(dir)) => (key_file_in(dir), None),
            (None, None) => {
                let dir = tempfile::Builder::new()
                    .prefix("orderflow-keys-")
                    .tempdir()
                    .context("creating a directory for the throwaway key file")?;
                (dir.path().join(KEY_FILE), Some(dir))
            }
        };
        if configured.is_none() && !key_file.exists() {
            Keyring::generate(&key_file, "dev-1")
                .with_context(|| format!("writing the key file {}", key_file.display()))?;
        }
        let keys = Arc::new(Keyring::load(&key_file)?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("opening a port for the codec server")?;
        Ok(Self {
            endpoint: format!("http://{}", listener.local_addr()?),
            key_file,
            keys,
            listener: Some(listener),
            _throwaway: throwaway,
        })
    }

    /// Serves the codec protocol in the background for the Web UI at
    /// `ui_url` (its origin as given, and as localhost and 127.0.0.1).
    pub fn serve(&mut self, ui_url: Option<&str>) {
        let Some(listener) = self.listener.take() else {
            return;
        };
        let Ok(listen) = listener.local_addr() else {
            return;
        };
        let server = CodecServer {
            keys: self.keys.clone(),
            guard: crate::web::guard::Guard {
                allow_origins: ui_url.map(loopback_origins).unwrap_or_default(),
                listen: Some(listen),
                ..Default::default()
            },
        };
        tokio::spawn(async move {
            if let Err(e) = server::serve(listener, server).await {
                tracing::warn!("the codec server stopped: {e}");
            }
        });
    }
}

/// `url`'s origin, and the same with its host as localhost and 127.0.0.1.
fn loopback_origins(url: &str) -> Vec<String> {
    let Ok(parsed) = url::Url::parse(url) else {
        return vec![url.trim_end_matches('/').to_owned()];
    };
    let mut origins = vec![parsed.origin().ascii_serialization()];
    for host in ["localhost", "127.0.0.1"] {
        let mut other = parsed.clone();
        let origin = other.set_host(Some(host)).map(|()| other.origin());
        if let Ok(origin) = origin.map(|o| o.ascii_serialization())
            && !origins.contains(&origin)
        {
            origins.push(origin);
        }
    }
    origins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ui_is_allowed_under_either_loopback_name() {
        assert_eq!(
            loopback_origins("http://localhost:8233/"),
            ["http://localhost:8233", "http://127.0.0.1:8233"]
        );
        assert_eq!(
            loopback_origins("http://127.0.0.1:9000"),
            ["http://127.0.0.1:9000", "http://localhost:9000"]
        );
    }
}
