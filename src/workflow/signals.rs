//! What reaches a running order from outside it: the `cancel` signal.
//!
//! Any client of the namespace can signal an order (`temporal workflow
//! signal`, the Web UI, another program), so the signal's payload is taken
//! as raw payloads and read here, leniently. A payload the SDK could not
//! decode into a typed argument would fail the workflow task, and every
//! retry of it, forever: one malformed signal would wedge the order. Read
//! here, a payload that is not a cancel request is rejected and recorded in
//! the order's state, and the order goes on.

use serde::{Deserialize, Serialize};
use temporalio_common::data_converters::RawValue;
use temporalio_common::protos::temporal::api::common::v1::Payload;

use crate::domain::CancelReason;

/// The `cancel` signal's payload, as orderflow sends it: `{"reason": "…"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    pub reason: String,
}

impl CancelRequest {
    /// The signal's argument: this request as one `json/plain` payload.
    pub fn to_raw(&self) -> RawValue {
        let data = serde_json::to_vec(self).expect("a struct of strings serialises");
        RawValue::new(vec![Payload {
            metadata: [(ENCODING.to_owned(), JSON.as_bytes().to_vec())].into(),
            data,
            ..Default::default()
        }])
    }
}

const ENCODING: &str = "encoding";
const JSON: &str = "json/plain";
const NULL: &str = "binary/null";

/// What a `cancel` signal asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CancelSignal {
    /// Cancel the order, with this reason when one was given.
    Cancel(Option<CancelReason>),
    /// Not a cancel request: why, to record. The order goes on.
    Rejected(String),
}

/// Reads a `cancel` signal's payloads. Accepted: no payload, `null`, an
/// object without `reason` or with a `null` one (a cancel without a reason),
/// and `{"reason": "text"}` (other fields are ignored). The reason is made
/// fit ([`CancelReason::lenient`]): cut to its limit, control characters
/// replaced. Anything else is rejected with the problem in words.
pub fn read_cancel(payloads: &[Payload]) -> CancelSignal {
    let rejected = |problem: &str| {
        CancelSignal::Rejected(format!(
            "{problem}; a cancel signal carries {{\"reason\": \"…\"}}"
        ))
    };
    let Some(payload) = payloads.first() else {
        return CancelSignal::Cancel(None);
    };
    if payloads.len() > 1 {
        return rejected(&format!("it carried {} arguments, not one", payloads.len()));
    }
    let encoding = payload
        .metadata
        .get(ENCODING)
        .map(|e| String::from_utf8_lossy(e).into_owned())
        .unwrap_or_default();
    if let Some(key) = super::sealed::sealed_key(payload) {
        return rejected(&format!(
            "its payload is encrypted with key {key}, which this worker cannot decrypt \
             (its key file lacks that key, or the payload was altered)"
        ));
    }
    match encoding.as_str() {
        NULL => return CancelSignal::Cancel(None),
        JSON => {}
        other => {
            return rejected(&format!(
                "its payload is encoded {}, not as JSON",
                crate::domain::quote(other)
            ));
        }
    }
    let value: serde_json::Value = match serde_json::from_slice(&payload.data) {
        Ok(value) => value,
        Err(_) => return rejected("its payload is not valid JSON"),
    };
    match value {
        serde_json::Value::Null => CancelSignal::Cancel(None),
        serde_json::Value::Object(fields) => match fields.get("reason") {
            None | Some(serde_json::Value::Null) => CancelSignal::Cancel(None),
            Some(serde_json::Value::String(text)) => {
                CancelSignal::Cancel(CancelReason::lenient(text))
            }
            Some(other) => rejected(&format!("its reason is {}, not text", kind(other))),
        },
        other => rejected(&format!("its payload is {}, not an object", kind(&other))),
    }
}

fn kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(text: &str) -> Vec<Payload> {
        vec![Payload {
            metadata: [(ENCODING.to_owned(), JSON.as_bytes().to_vec())].into(),
            data: text.as_bytes().to_vec(),
            ..Default::default()
        }]
    }

    fn reason(text: &str) -> CancelSignal {
        CancelSignal::Cancel(Some(CancelReason::parse(text).unwrap()))
    }

    #[test]
    fn what_orderflow_sends_is_read_back() {
        let sent = CancelRequest {
            reason: "customer asked".into(),
        }
        .to_raw();
        assert_eq!(read_cancel(&sent.payloads), reason("customer asked"));
    }

    #[test]
    fn a_cancel_without_a_reason_is_a_cancel() {
        let null = vec![Payload {
            metadata: [(ENCODING.to_owned(), NULL.as_bytes().to_vec())].into(),
            ..Default::default()
        }];
        for payloads in [
            vec![],
            null,
            json("null"),
            json("{}"),
            json(r#"{"reason": null}"#),
        ] {
            assert_eq!(read_cancel(&payloads), CancelSignal::Cancel(None));
        }
        assert_eq!(
            read_cancel(&json(r#"{"reason": " \n "}"#)),
            CancelSignal::Cancel(None)
        );
        assert_eq!(
            read_cancel(&json(r#"{"reason": "late", "by": 7}"#)),
            reason("late")
        );
    }

    #[test]
    fn anything_else_is_rejected_with_the_problem() {
        let cases = [
            (
                json(r#"{"reason": 12345}"#),
                "its reason is a number, not text",
            ),
            (
                json(r#""changed my mind""#),
                "its payload is a string, not an object",
            ),
            (json("[1, 2]"), "its payload is an array, not an object"),
            (json("{\"reason\""), "its payload is not valid JSON"),
        ];
        for (payloads, problem) in cases {
            match read_cancel(&payloads) {
                CancelSignal::Rejected(why) => assert!(why.starts_with(problem), "{why}"),
                other => panic!("{problem}: {other:?}"),
            }
        }
        let binary = vec![Payload {
            metadata: [(ENCODING.to_owned(), b"binary/plain".to_vec())].into(),
            data: vec![0, 1, 2],
            ..Default::default()
        }];
        assert!(matches!(read_cancel(&binary), CancelSignal::Rejected(_)));
        let sealed = vec![Payload {
            metadata: [
                (ENCODING.to_owned(), b"binary/encrypted".to_vec()),
                ("encryption-key-id".to_owned(), b"made-up".to_vec()),
            ]
            .into(),
            data: vec![7; 40],
            ..Default::default()
        }];
        match read_cancel(&sealed) {
            CancelSignal::Rejected(why) => assert!(why.contains("key made-up"), "{why}"),
            other => panic!("{other:?}"),
        }
        let two = [json("{}"), json("{}")].concat();
        assert!(matches!(read_cancel(&two), CancelSignal::Rejected(_)));
    }

    #[test]
    fn a_huge_reason_is_cut() {
        let text = format!(r#"{{"reason": "{}"}}"#, "z".repeat(1_500_000));
        let CancelSignal::Cancel(Some(kept)) = read_cancel(&json(&text)) else {
            panic!("a long reason still cancels");
        };
        assert_eq!(
            kept.as_str().chars().count(),
            crate::domain::MAX_REASON_CHARS
        );
    }
}
