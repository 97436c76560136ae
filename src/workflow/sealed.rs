//! A payload sealed by orderflow's codec (`temporal::codec`), as the
//! workflow meets one: the worker's codec hands on what it cannot decrypt,
//! and the workflow rejects it by name instead of failing every task. The
//! metadata names are defined here, where a replay needs them.

use temporalio_common::protos::temporal::api::common::v1::Payload;

pub const ENCODING: &str = "encoding";
pub const ENCRYPTED: &str = "binary/encrypted";
pub const KEY_ID: &str = "encryption-key-id";
/// Set by the worker's codec on a payload it decrypted (and removed from
/// any that arrived with it): what tells the workflow that its input came
/// encrypted.
pub const DECRYPTED: &str = "orderflow-decrypted";

/// Whether the worker's codec decrypted `payload`.
pub fn was_decrypted(payload: &Payload) -> bool {
    payload.metadata.contains_key(DECRYPTED)
}

/// Whether `payload` is sealed by this codec, and under which key ID.
pub fn sealed_with(payload: &Payload) -> Option<String> {
    if payload.metadata.get(ENCODING).map(Vec::as_slice) != Some(ENCRYPTED.as_bytes()) {
        return None;
    }
    Some(
        payload
            .metadata
            .get(KEY_ID)
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .unwrap_or_default(),
    )
}

/// A key ID from payload metadata as messages show it. Anyone who can
/// write to the namespace writes metadata: it is escaped (it cannot drive
/// a terminal) and cut to 100 characters (a forged megabyte stays out of
/// an order's state).
pub fn shown(id: &str) -> String {
    crate::domain::clip(id)
}

/// The key ID a payload is sealed under, when it is one this codec sealed
/// (or claims to be: the metadata is anyone's to write), escaped for
/// messages.
pub fn sealed_key(payload: &Payload) -> Option<String> {
    sealed_with(payload).map(|id| shown(&id))
}
