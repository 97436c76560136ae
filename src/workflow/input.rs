//! The workflow's input as Temporal hands it over, decoded by the workflow
//! itself (SPEC §7, "Nothing from outside is trusted").
//!
//! Anyone who can reach the namespace can start an `OrderWorkflow` — the
//! Temporal CLI, the Web UI, another program — with any payload. Had the
//! input been typed as an [`Order`], a payload that is not one would fail
//! the SDK's decoding, and so the workflow task, forever. Instead the input
//! arrives as it is and the workflow checks it like an order file: every
//! rule of SPEC §2, and that the order's ID is the workflow's ID. An input
//! that fails ends the order at once, `FAILED` with `INVALID_ORDER`.

use std::collections::HashMap;

use temporalio_common::data_converters::{
    PayloadConversionError, SerializationContext, TemporalDeserializable, TemporalSerializable,
};
use temporalio_common::protos::temporal::api::common::v1::Payload;

use crate::domain::Order;

/// The payload metadata key naming its encoding, and the encodings read here
/// (Temporal's standard names).
const ENCODING: &str = "encoding";
const JSON: &str = "json/plain";
const NULL: &str = "binary/null";

/// An `OrderWorkflow`'s input: the order's JSON as orderflow writes it, or
/// whatever another client sent.
#[derive(Debug, Clone, Default)]
pub struct WorkflowInput {
    payloads: Vec<Payload>,
}

impl From<&Order> for WorkflowInput {
    fn from(order: &Order) -> Self {
        let data = serde_json::to_vec(order).expect("an order always serializes");
        Self {
            payloads: vec![Payload {
                metadata: HashMap::from([(ENCODING.to_owned(), JSON.as_bytes().to_vec())]),
                data,
                ..Payload::default()
            }],
        }
    }
}

impl From<Vec<Payload>> for WorkflowInput {
    fn from(payloads: Vec<Payload>) -> Self {
        Self { payloads }
    }
}

impl WorkflowInput {
    /// The key the input is still sealed under, when the worker could not
    /// decrypt it (`temporal::codec::WorkerCodec` hands it on as it is).
    pub fn sealed_key(&self) -> Option<String> {
        self.payloads.iter().find_map(super::sealed::sealed_key)
    }

    /// Whether the input arrived unencrypted (the worker's codec decrypted
    /// none of it).
    pub fn arrived_clear(&self) -> bool {
        !self.payloads.iter().any(super::sealed::was_decrypted)
    }

    /// The order this input holds, checked against every rule of SPEC §2
    /// and against the workflow's ID; or why not, as `field: rule`.
    pub fn order(&self, workflow_id: &str) -> Result<Order, String> {
        let payload = match self.payloads.as_slice() {
            [one] => one,
            [] => {
                return Err(
                    "the workflow was started without an input; it takes one order (JSON)".into(),
                );
            }
            more => {
                return Err(format!(
                    "the workflow was started with {} inputs; it takes one order (JSON)",
                    more.len()
                ));
            }
        };
        let encoding = payload
            .metadata
            .get(ENCODING)
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .unwrap_or_default();
        match encoding.as_str() {
            JSON => {}
            NULL => return Err("the input is null; it must be one order (JSON)".into()),
            other => {
                return Err(format!(
                    "the input is encoded {}, not as JSON; it must be one order (JSON)",
                    crate::domain::quote(if other.is_empty() { "(none)" } else { other })
                ));
            }
        }
        let text = std::str::from_utf8(&payload.data)
            .map_err(|_| "the input is not UTF-8 text; it must be one order (JSON)".to_owned())?;
        crate::input::parse_workflow_order(text, workflow_id)
    }
}

impl TemporalSerializable for WorkflowInput {
    fn to_payload(&self, _: &SerializationContext<'_>) -> Result<Payload, PayloadConversionError> {
        self.payloads
            .first()
            .cloned()
            .ok_or(PayloadConversionError::WrongEncoding)
    }

    fn to_payloads(
        &self,
        _: &SerializationContext<'_>,
    ) -> Result<Vec<Payload>, PayloadConversionError> {
        Ok(self.payloads.clone())
    }
}

/// Never fails: what the payloads hold is the workflow's to judge.
impl TemporalDeserializable for WorkflowInput {
    fn from_payload(
        _: &SerializationContext<'_>,
        payload: Payload,
    ) -> Result<Self, PayloadConversionError> {
        Ok(Self {
            payloads: vec![payload],
        })
    }

    fn from_payloads(
        _: &SerializationContext<'_>,
        payloads: Vec<Payload>,
    ) -> Result<Self, PayloadConversionError> {
        Ok(Self { payloads })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> WorkflowInput {
        WorkflowInput::from(vec![Payload {
            metadata: HashMap::from([(ENCODING.to_owned(), JSON.as_bytes().to_vec())]),
            data: text.as_bytes().to_vec(),
            ..Payload::default()
        }])
    }

    const LAPTOPS: &str = r#"{"id":"W-1","customerID":"C-1","totalAmount":"2599.98",
        "items":[{"productID":"LAPTOP","quantity":2,"unitPrice":"1299.99"}]}"#;

    #[test]
    fn an_order_round_trips_and_numbers_are_accepted_too() {
        let order = json(LAPTOPS).order("W-1").unwrap();
        assert_eq!(WorkflowInput::from(&order).order("W-1").unwrap(), order);
        let numbers = r#"{"id":"W-1","customerID":"C-1","totalAmount":2599.98,
            "items":[{"productID":"LAPTOP","quantity":2,"unitPrice":1299.99}]}"#;
        assert_eq!(json(numbers).order("W-1").unwrap(), order);
    }

    #[test]
    fn the_id_is_the_workflow_id() {
        let err = json(LAPTOPS).order("W-DECOY").unwrap_err();
        assert_eq!(
            err,
            "id: is W-1 but the workflow ID is W-DECOY; an order's ID is its workflow ID"
        );
        let without_id = r#"{"customerID":"C-1","totalAmount":1,
            "items":[{"productID":"A","quantity":1,"unitPrice":1}]}"#;
        assert_eq!(json(without_id).order("W-9").unwrap().id().as_str(), "W-9");
        let err = json(without_id).order(&"W".repeat(200)).unwrap_err();
        assert!(
            err.starts_with("id: the workflow ID must be at most 64"),
            "{err}"
        );
    }

    #[test]
    fn every_rule_is_checked_and_named() {
        for (text, expected) in [
            (
                r#"{"id":"W-1","customerID":"C-1","totalAmount":"0.01","items":[{"productID":"LAPTOP","quantity":2,"unitPrice":"1299.99"}]}"#,
                "totalAmount: is 0.01 but the items add up to 2599.98",
            ),
            (
                r#"{"id":"W-1","customerID":"C-1","totalAmount":"10.00","items":[]}"#,
                "items: must hold at least one item",
            ),
            (
                r#"{"id":"W-1","customerID":"C-1","totalAmount":1,"items":[{"productID":"A","quantity":-2,"unitPrice":1}]}"#,
                "items[0].quantity: must be at least 1",
            ),
            (
                r#"{"id":"W-1","customerID":"C-1","totalAmount":1,"items":[{"productID":"A","quantity":1,"unitPrice":"0.333"}]}"#,
                "items[0].unitPrice: 0.333 has more than 2 decimal places",
            ),
            (
                r#"{"id":"W-1","customerID":"C-1","paymentMethod":"bitcoin","totalAmount":1,"items":[{"productID":"A","quantity":1,"unitPrice":1}]}"#,
                "paymentMethod:",
            ),
            (
                r#"{"id":"W-1","customerID":"C-1","totalAmount":2,"items":[{"productID":"A","quantity":1,"unitPrice":1},{"productID":"A","quantity":1,"unitPrice":1}]}"#,
                "items[1].productID: A appears twice",
            ),
            ("[1, 2]", "must be one order object, not an array"),
            ("not json", "malformed JSON"),
        ] {
            let err = json(text).order("W-1").unwrap_err();
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }
    }

    #[test]
    fn a_payload_that_is_not_json_is_refused_with_its_encoding() {
        let null = WorkflowInput::from(vec![Payload {
            metadata: HashMap::from([(ENCODING.to_owned(), NULL.as_bytes().to_vec())]),
            ..Payload::default()
        }]);
        assert!(null.order("W").unwrap_err().contains("is null"));
        let binary = WorkflowInput::from(vec![Payload {
            metadata: HashMap::from([(ENCODING.to_owned(), b"binary/plain".to_vec())]),
            data: vec![0, 159, 146, 150],
            ..Payload::default()
        }]);
        assert!(
            binary
                .order("W")
                .unwrap_err()
                .contains("encoded \"binary/plain\"")
        );
        assert!(
            WorkflowInput::default()
                .order("W")
                .unwrap_err()
                .contains("without an input")
        );
    }
}
