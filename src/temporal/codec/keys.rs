//! The encryption key file (SPEC §7, "Encryption"): one key per line,
//! `KEY_ID:BASE64_OF_32_BYTES`. The first line's key encrypts; every listed
//! key decrypts, which is how keys rotate. Key material never leaves this
//! module: `Debug` and every message name key IDs only.

use std::fmt;
use std::path::Path;

use aes_gcm::{Aes256Gcm, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};

use crate::exit::Fail;

/// One key: its ID and the cipher it keys.
pub(super) struct Key {
    pub id: String,
    pub cipher: Aes256Gcm,
}

/// The keys of a key file, the encrypting one first.
pub struct Keyring {
    pub(super) keys: Vec<Key>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

const FORMAT: &str = "each line is KEY_ID:BASE64_OF_32_BYTES \
                      (make a key with `openssl rand -base64 32`)";

impl Keyring {
    /// Reads a key file; refuses one that group or others may read, and
    /// every malformed line (exit 2), naming the file and the line.
    pub fn load(path: &Path) -> Result<Self, Fail> {
        let shown = path.display();
        let metadata = std::fs::metadata(path).map_err(|e| {
            Fail::usage(format!(
                "cannot read the encryption key file {shown}: {e}; \
                 check --encryption-key-file / ORDERFLOW_ENCRYPTION_KEY_FILE"
            ))
        })?;
        crate::config::refuse_open_permissions(&metadata, path, "the encryption key file")?;
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Fail::usage(format!("cannot read the encryption key file {shown}: {e}"))
        })?);
        Self::parse(&text, &shown.to_string())
    }

    /// Parses a key file's text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> Result<Self, Fail> {
        let mut keys: Vec<Key> = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = SecretString::from(line.trim().to_owned());
            let line = line.expose_secret();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{origin}: line {}", index + 1);
            let Some((id, encoded)) = line.split_once(':') else {
                return Err(Fail::usage(format!(
                    "{at}: no ':' after the key ID; {FORMAT}"
                )));
            };
            let id = id.trim();
            if id.is_empty()
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            {
                return Err(Fail::usage(format!(
                    "{at}: the key ID must be 1 or more of A-Z a-z 0-9 - _ .; {FORMAT}"
                )));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(Fail::usage(format!(
                    "{at}: key ID {id} is listed twice; each key needs its own ID"
                )));
            }
            let bytes = Zeroizing::new(STANDARD.decode(encoded.trim()).map_err(|_| {
                Fail::usage(format!("{at}: key {id} is not valid base64; {FORMAT}"))
            })?);
            if bytes.len() != 32 {
                return Err(Fail::usage(format!(
                    "{at}: key {id} is {} bytes; AES-256 needs exactly 32; {FORMAT}",
                    bytes.len()
                )));
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| Fail::usage(format!("{at}: key {id} is not a valid AES-256 key")))?;
            keys.push(Key {
                id: id.to_owned(),
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(Fail::usage(format!("{origin}: holds no key; {FORMAT}")));
        }
        Ok(Self { keys })
    }

    /// Writes a new key file with one random key under `id`, readable by its
    /// owner only: a throwaway key for `orderflow dev --encrypt` and tests.
    pub fn generate(path: &Path, id: &str) -> std::io::Result<()> {
        use aes_gcm::aead::OsRng;
        let key = Zeroizing::new(Aes256Gcm::generate_key(OsRng).to_vec());
        let line = Zeroizing::new(format!("{id}:{}\n", STANDARD.encode(key.as_slice())));
        write_private(path, line.as_bytes())
    }

    /// The key that encrypts.
    pub fn encrypting_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key ID, the encrypting one first.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    pub(super) fn find(&self, id: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }
}

/// Creates `path` (or truncates it) with mode 0600 before writing.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "key-a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "key-b:H+/fz7+vn49/b19PPy8fDw/v38+/r5+Pf29fT08vHw8=";

    fn message(text: &str) -> String {
        Keyring::parse(text, "keys.txt").unwrap_err().message
    }

    #[test]
    fn the_first_key_encrypts_and_every_key_is_listed() {
        let ring = Keyring::parse(&format!("# rotated\n{B}\n\n{A}\n"), "keys.txt").unwrap();
        assert_eq!(ring.encrypting_id(), "key-b");
        assert_eq!(ring.ids().collect::<Vec<_>>(), ["key-b", "key-a"]);
    }

    #[test]
    fn a_key_of_the_wrong_length_is_refused_by_line() {
        let m = message(&format!("{A}\nshort:AAECAwQ=\n"));
        assert!(
            m.starts_with("keys.txt: line 2: key short is 5 bytes"),
            "{m}"
        );
        assert!(!m.contains("AAECAwQ"), "no key material: {m}");
    }

    #[test]
    fn a_duplicate_id_is_refused() {
        let m = message(&format!("{A}\n{}\n", B.replace("key-b", "key-a")));
        assert!(m.contains("line 2: key ID key-a is listed twice"), "{m}");
    }

    #[test]
    fn malformed_lines_and_empty_files_are_refused_without_key_material() {
        assert!(message("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").contains("no ':'"));
        let m = message("k:not base64!!");
        assert!(
            m.contains("not valid base64") && !m.contains("not base64!!"),
            "{m}"
        );
        assert!(message("bad id:AAAA").contains("key ID must be"));
        assert!(message("# nothing\n").contains("holds no key"));
        for err in ["k:x", "k:AAECAwQ="] {
            assert_eq!(
                Keyring::parse(err, "f").unwrap_err().exit,
                crate::exit::Exit::Usage
            );
        }
    }

    #[test]
    fn debug_shows_ids_only() {
        let ring = Keyring::parse(A, "keys.txt").unwrap();
        let shown = format!("{ring:?}");
        assert!(
            shown.contains("key-a") && !shown.contains("AAECAw"),
            "{shown}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_generated_file_is_private_and_a_shared_one_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        Keyring::generate(&path, "dev").unwrap();
        let ring = Keyring::load(&path).unwrap();
        assert_eq!(ring.encrypting_id(), "dev");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let m = Keyring::load(&path).unwrap_err().message;
        assert!(
            m.contains("is open to group or others (mode 640)") && m.contains("chmod 600"),
            "{m}"
        );
    }
}
