//! Payload encryption (SPEC §7, "Encryption"): an AES-256-GCM payload codec
//! in the style of the Temporal samples. Each payload is serialized whole
//! (its metadata too, so its original encoding is hidden), sealed with a
//! random 96-bit nonce under the key file's first key, and sent as
//! `nonce ‖ ciphertext` with metadata `encoding: binary/encrypted` and
//! `encryption-key-id: <id>`. Decoding uses the key the metadata names, and
//! passes an unencrypted payload through unchanged, so a namespace can
//! switch over while older orders finish.

pub(crate) mod keys;
pub mod server;

use std::sync::Arc;

use aes_gcm::aead::{Aead, AeadCore, OsRng};
use aes_gcm::{Aes256Gcm, Nonce};
use futures::FutureExt as _;
use futures::future::BoxFuture;
use prost::Message as _;
use temporalio_common::data_converters::{
    PayloadCodec, PayloadConversionError, SerializationContextData,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

pub use crate::workflow::sealed::{DECRYPTED, ENCODING, ENCRYPTED, KEY_ID, sealed_key};
use crate::workflow::sealed::{sealed_with, shown};
pub use keys::Keyring;

/// AES-GCM's nonce: 96 bits.
const NONCE_LEN: usize = 12;

/// Why a payload could not be decrypted or encrypted. Names key IDs only.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    #[error(
        "a payload is encrypted with key {0}, which the encryption key file does not hold; \
         add the line for key {0} to --encryption-key-file (any position after the first)"
    )]
    MissingKey(String),
    #[error(
        "a payload is encrypted with key {0}, and no encryption key file is configured; \
         pass --encryption-key-file or set ORDERFLOW_ENCRYPTION_KEY_FILE"
    )]
    NoKeys(String),
    #[error("an encrypted payload names no key ({KEY_ID} metadata missing)")]
    NoKeyId,
    #[error(
        "a payload encrypted with key {0} does not decrypt: the key under that ID is not \
         the one it was encrypted with, or the payload was altered"
    )]
    Undecryptable(String),
    #[error("encrypting a payload with key {0} failed")]
    Encrypt(String),
}

impl Keyring {
    /// Seals one payload under the first key.
    pub fn encrypt(&self, payload: &Payload) -> Result<Payload, CodecError> {
        let key = &self.keys[0];
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let sealed = key
            .cipher
            .encrypt(&nonce, payload.encode_to_vec().as_slice())
            .map_err(|_| CodecError::Encrypt(key.id.clone()))?;
        let mut data = Vec::with_capacity(NONCE_LEN + sealed.len());
        data.extend_from_slice(&nonce);
        data.extend_from_slice(&sealed);
        Ok(Payload {
            metadata: [
                (ENCODING.to_owned(), ENCRYPTED.as_bytes().to_vec()),
                (KEY_ID.to_owned(), key.id.as_bytes().to_vec()),
            ]
            .into(),
            data,
            ..Default::default()
        })
    }

    /// Opens one payload with the key its metadata names; an unencrypted
    /// payload comes back as it is.
    pub fn decrypt(&self, payload: Payload) -> Result<Payload, CodecError> {
        let Some(id) = sealed_with(&payload) else {
            return Ok(payload);
        };
        if id.is_empty() {
            return Err(CodecError::NoKeyId);
        }
        let key = self
            .find(&id)
            .ok_or_else(|| CodecError::MissingKey(shown(&id)))?;
        if payload.data.len() < NONCE_LEN {
            return Err(CodecError::Undecryptable(shown(&id)));
        }
        let (nonce, sealed) = payload.data.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map_err(|_| CodecError::Undecryptable(shown(&id)))?;
        Payload::decode(plain.as_slice()).map_err(|_| CodecError::Undecryptable(shown(&id)))
    }

    pub fn encrypt_all(&self, payloads: &[Payload]) -> Result<Vec<Payload>, CodecError> {
        payloads.iter().map(|p| self.encrypt(p)).collect()
    }

    pub fn decrypt_all(&self, payloads: Vec<Payload>) -> Result<Vec<Payload>, CodecError> {
        payloads.into_iter().map(|p| self.decrypt(p)).collect()
    }
}

/// The keyring as the Temporal SDK's payload codec: the client and the
/// worker both apply it to every payload they send and receive. Without
/// keys it passes payloads through, and refuses an encrypted one with an
/// error that says a key file is needed (rather than the SDK's "wrong
/// encoding").
#[derive(Debug, Clone)]
pub struct Codec(pub Option<Arc<Keyring>>);

fn sdk_error(e: CodecError) -> PayloadConversionError {
    PayloadConversionError::EncodingError(Box::new(e))
}

impl PayloadCodec for Codec {
    fn encode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let result = match &self.0 {
            Some(keys) => keys.encrypt_all(&payloads).map_err(sdk_error),
            None => Ok(payloads),
        };
        async move { result }.boxed()
    }

    fn decode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let result = match &self.0 {
            Some(keys) => keys.decrypt_all(payloads),
            None => match payloads.iter().find_map(sealed_with) {
                Some(id) => Err(CodecError::NoKeys(shown(&id))),
                None => Ok(payloads),
            },
        };
        let result = result.map_err(sdk_error);
        async move { result }.boxed()
    }
}

/// The codec a worker decodes its workflow tasks with: [`Codec`], except
/// that a payload it cannot decrypt is handed on as it is (still sealed),
/// rather than failing the whole workflow task. The SDK decodes a task's
/// payloads all at once, before any workflow code runs, so one payload
/// nobody can decrypt — a signal sent with `encoding: binary/encrypted` and
/// a made-up key, by anyone with access to the namespace — would otherwise
/// fail every retry of the task, and the order would never end. The
/// workflow decides what a sealed payload means where it arrives
/// (`workflow/`): a signal's is rejected; an input or a step's result it
/// cannot read fails the task, as before, until a worker with the key runs it.
#[derive(Debug, Clone)]
pub struct WorkerCodec(pub Option<Arc<Keyring>>);

/// The data converter a worker with `keys` runs with (and a replay of its
/// histories must: the workflow reads the mark [`WorkerCodec`] leaves).
pub fn worker_converter(
    keys: Option<Arc<Keyring>>,
) -> temporalio_common::data_converters::DataConverter {
    use temporalio_common::data_converters::{
        DataConverter, DefaultFailureConverter, PayloadConverter,
    };
    DataConverter::new(
        PayloadConverter::default(),
        DefaultFailureConverter::default(),
        WorkerCodec(keys),
    )
}

impl PayloadCodec for WorkerCodec {
    fn encode(
        &self,
        context: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        Codec(self.0.clone()).encode(context, payloads)
    }

    fn decode(
        &self,
        _: &SerializationContextData,
        payloads: Vec<Payload>,
    ) -> BoxFuture<'static, Result<Vec<Payload>, PayloadConversionError>> {
        let decoded = payloads
            .into_iter()
            .map(|p| match &self.0 {
                Some(keys) if sealed_with(&p).is_some() => match keys.decrypt(p.clone()) {
                    Ok(mut opened) => {
                        opened
                            .metadata
                            .insert(DECRYPTED.to_owned(), b"true".to_vec());
                        opened
                    }
                    Err(_) => p,
                },
                // Only this codec says what it decrypted.
                _ => {
                    let mut p = p;
                    p.metadata.remove(DECRYPTED);
                    p
                }
            })
            .collect();
        async move { Ok(decoded) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "key-a:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "key-b:H+/fz7+vn49/b19PPy8fDw/v38+/r5+Pf29fT08vHw8=";

    fn ring(text: &str) -> Keyring {
        Keyring::parse(text, "test").unwrap()
    }

    fn json(text: &str) -> Payload {
        Payload {
            metadata: [(ENCODING.to_owned(), b"json/plain".to_vec())].into(),
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn a_payload_round_trips_and_hides_its_data_and_encoding() {
        let ring = ring(A);
        let original = json(r#"{"customerID":"CUST-SECRET"}"#);
        let sealed = ring.encrypt(&original).unwrap();
        assert_eq!(sealed.metadata[ENCODING], ENCRYPTED.as_bytes());
        assert_eq!(sealed.metadata[KEY_ID], b"key-a");
        let bytes = format!("{sealed:?}");
        assert!(!bytes.contains("CUST-SECRET") && !bytes.contains("json/plain"));
        assert_eq!(ring.decrypt(sealed).unwrap(), original);
    }

    #[test]
    fn each_payload_gets_its_own_nonce() {
        let ring = ring(A);
        let p = json("1");
        let (x, y) = (ring.encrypt(&p).unwrap(), ring.encrypt(&p).unwrap());
        assert_ne!(x.data[..NONCE_LEN], y.data[..NONCE_LEN]);
        assert_ne!(x.data, y.data);
    }

    #[test]
    fn rotation_decrypts_with_the_key_the_payload_names() {
        let old = ring(A).encrypt(&json("\"old\"")).unwrap();
        let rotated = ring(&format!("{B}\n{A}"));
        assert_eq!(rotated.decrypt(old).unwrap(), json("\"old\""));
        let new = rotated.encrypt(&json("\"new\"")).unwrap();
        assert_eq!(new.metadata[KEY_ID], b"key-b");
        // Without key B, the new payload names the key it lacks.
        assert_eq!(
            ring(A).decrypt(new),
            Err(CodecError::MissingKey("key-b".into()))
        );
    }

    #[tokio::test]
    async fn without_keys_the_codec_passes_through_and_names_the_key_it_would_need() {
        let context = SerializationContextData::Workflow(
            temporalio_common::data_converters::WorkflowSerializationContext::new(),
        );
        let none = Codec(None);
        let plain = vec![json("1")];
        assert_eq!(none.encode(&context, plain.clone()).await.unwrap(), plain);
        assert_eq!(none.decode(&context, plain.clone()).await.unwrap(), plain);
        let sealed = vec![json("2"), ring(A).encrypt(&json("1")).unwrap()];
        let error = none.decode(&context, sealed).await.unwrap_err().to_string();
        assert!(
            error.contains("encrypted with key key-a, and no encryption key file"),
            "{error}"
        );
    }

    #[test]
    fn an_unencrypted_payload_passes_through() {
        assert_eq!(ring(A).decrypt(json("42")).unwrap(), json("42"));
    }

    #[test]
    fn a_wrong_key_or_an_altered_payload_is_an_error_naming_the_key() {
        let sealed = ring(A).encrypt(&json("1")).unwrap();
        let impostor = ring(&B.replace("key-b", "key-a"));
        assert_eq!(
            impostor.decrypt(sealed.clone()),
            Err(CodecError::Undecryptable("key-a".into()))
        );
        let mut altered = sealed;
        *altered.data.last_mut().unwrap() ^= 1;
        assert!(ring(A).decrypt(altered).is_err());
        let mut short = json("");
        short.metadata.insert(ENCODING.into(), ENCRYPTED.into());
        assert_eq!(ring(A).decrypt(short.clone()), Err(CodecError::NoKeyId));
        short.metadata.insert(KEY_ID.into(), b"key-a".to_vec());
        assert!(ring(A).decrypt(short).is_err());
    }

    #[test]
    fn a_workers_codec_hands_on_what_it_cannot_decrypt() {
        use futures::executor::block_on;
        let keys = Arc::new(ring(A));
        let context = SerializationContextData::None;
        let sealed = keys
            .encrypt(&Payload {
                data: b"{}".to_vec(),
                ..Default::default()
            })
            .unwrap();
        let mut forged = sealed.clone();
        forged
            .metadata
            .insert(KEY_ID.to_owned(), b"made-up".to_vec());
        let worker = WorkerCodec(Some(keys.clone()));
        let decoded =
            block_on(worker.decode(&context, vec![sealed.clone(), forged.clone()])).unwrap();
        assert_eq!(decoded[0].data, b"{}");
        assert_eq!(decoded[1], forged, "handed on as it came");
        assert_eq!(sealed_key(&decoded[1]).as_deref(), Some("made-up"));
        // The commands' codec still refuses it, saying why.
        assert!(block_on(Codec(Some(keys)).decode(&context, vec![forged])).is_err());
        // A forged key ID is shown cut and escaped.
        let mut long = sealed;
        long.metadata
            .insert(KEY_ID.to_owned(), "\u{1b}".repeat(500).into_bytes());
        let shown = sealed_key(&long).unwrap();
        assert!(
            shown.len() < 1200 && !shown.contains('\u{1b}'),
            "{}",
            shown.len()
        );
    }
}
