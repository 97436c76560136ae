//! Identifiers: 1–64 of `A-Z a-z 0-9 _ . -` (SPEC §2).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::RuleError;

/// Longest identifier accepted.
pub const MAX_ID_LEN: usize = 64;

fn check_id(value: &str) -> Result<(), RuleError> {
    if value.is_empty() {
        return Err(RuleError::new("must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(RuleError::new(format!(
            "must be at most {MAX_ID_LEN} characters (got {})",
            value.chars().count()
        )));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
    {
        return Err(RuleError::new(format!(
            "{bad:?} is not allowed; use only ASCII letters (A-Z, a-z), digits, '_', '.' and '-'"
        )));
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: &str) -> Result<Self, RuleError> {
                check_id(value).map(|()| Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = RuleError;
            fn from_str(s: &str) -> Result<Self, RuleError> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

id_type!(
    /// An order's ID, which is also its workflow ID.
    OrderId
);
id_type!(
    /// A customer's ID.
    CustomerId
);
id_type!(
    /// A catalog product's ID.
    ProductId
);

impl AsRef<str> for OrderId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The ID of a workflow that exists, as `order status`, `watch` and
/// `cancel` take it and an order's state names it: any ID Temporal accepts
/// (1–1000 bytes, no control characters), so an operator can inspect and
/// end an order someone else started with an ID outside the [`OrderId`]
/// rule. What orderflow creates follows that stricter rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct WorkflowId(String);

impl WorkflowId {
    /// Temporal's default limit on a workflow ID's length.
    pub const MAX_LEN: usize = 1000;

    pub fn parse(value: &str) -> Result<Self, RuleError> {
        if value.is_empty() {
            return Err(RuleError::new("must not be empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(RuleError::new(format!(
                "must be at most {} bytes (got {})",
                Self::MAX_LEN,
                value.len()
            )));
        }
        if value.chars().any(char::is_control) {
            return Err(RuleError::new("must not hold control characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The ID of a workflow Temporal runs, which it has checked already;
    /// anything outside the rule is made to fit (control characters as
    /// `?`, cut to [`Self::MAX_LEN`]), never refused.
    pub fn lossy(value: &str) -> Self {
        let mut id: String = value
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        while id.len() > Self::MAX_LEN {
            id.pop();
        }
        if id.is_empty() {
            id.push('?');
        }
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for WorkflowId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<OrderId> for WorkflowId {
    fn from(id: OrderId) -> Self {
        Self(id.0)
    }
}

impl fmt::Display for WorkflowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for WorkflowId {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, RuleError> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for WorkflowId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl OrderId {
    /// A fresh order ID for orders submitted without one: time-ordered (UUIDv7)
    /// so that generated IDs sort by submission.
    pub fn generate() -> Self {
        Self(format!("ORD-{}", uuid::Uuid::now_v7().simple()))
    }

    /// The same ID for the same `seed`, every time: for orders that come
    /// without one but must not be submitted twice (a file run again, a
    /// retried `Idempotency-Key`). `ORD-` and 32 hex digits of its SHA-256.
    pub fn derive(seed: &str) -> Self {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(seed.as_bytes());
        Self(format!("ORD-{}", &hex::encode(digest)[..32]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        for ok in ["ORD-1001", "a", "x.y_z-0", &"A".repeat(64)] {
            assert_eq!(OrderId::parse(ok).unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_empty_long_and_foreign_characters() {
        assert_eq!(
            ProductId::parse("").unwrap_err().to_string(),
            "must not be empty"
        );
        assert!(
            ProductId::parse(&"A".repeat(65))
                .unwrap_err()
                .to_string()
                .contains("at most 64")
        );
        for bad in ["ORD 1", "ORD/1", "Заказ", "a\n", "a;b"] {
            let err = CustomerId::parse(bad).unwrap_err().to_string();
            assert!(err.contains("is not allowed"), "{bad}: {err}");
        }
    }

    #[test]
    fn workflow_ids_are_what_temporal_accepts() {
        let long = "W".repeat(200);
        assert_eq!(WorkflowId::parse(&long).unwrap().as_str(), long);
        assert!(WorkflowId::parse("has space/and:colon").is_ok());
        assert!(WorkflowId::parse("").is_err());
        assert!(WorkflowId::parse("a\nb").is_err());
        assert!(WorkflowId::parse(&"x".repeat(1001)).is_err());
        let order: WorkflowId = OrderId::parse("ORD-1").unwrap().into();
        assert_eq!(order.as_str(), "ORD-1");
    }

    #[test]
    fn generated_ids_are_valid_and_distinct() {
        let a = OrderId::generate();
        let b = OrderId::generate();
        assert_ne!(a, b);
        assert!(OrderId::parse(a.as_str()).is_ok());
    }
}
