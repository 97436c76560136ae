//! Domain types: everything past the input edge holds only valid values.
//!
//! Each type's `parse` is the one place its rule lives; the error says the
//! rule in words a user can act on ("must be at least 1"), and the caller adds
//! where the value came from (file, order, field).

mod id;
mod money;
mod order;
mod product;
mod quantity;
mod reason;
mod vocabulary;

pub use id::{CustomerId, MAX_ID_LEN, OrderId, ProductId, WorkflowId};
pub use money::{Currency, Money};
pub use order::{CustomerEmail, Order, OrderLine, OrderRuleError};
pub use product::{Product, ProductName, Stock};
pub use quantity::Quantity;
pub use reason::{CancelReason, MAX_REASON_CHARS};
pub use vocabulary::{Delivery, FailureCode, OrderStatus, PaymentMethod, Step};

/// How many characters of a value an error message quotes.
pub const QUOTE_MAX_CHARS: usize = 100;

/// A value as an error message shows it, in quotes: its first
/// [`QUOTE_MAX_CHARS`] characters, then how long it was, so that a 5 MB
/// field is not echoed back.
pub fn quote(value: &str) -> String {
    let count = value.chars().count();
    if count <= QUOTE_MAX_CHARS {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(QUOTE_MAX_CHARS).collect();
    format!("{head:?}… ({count} characters)")
}

/// [`quote`] without the quotes, for values that are names (an ID).
pub fn clip(value: &str) -> String {
    let count = value.chars().count();
    if count <= QUOTE_MAX_CHARS {
        return value.to_owned();
    }
    let head: String = value.chars().take(QUOTE_MAX_CHARS).collect();
    format!("{head}… ({count} characters)")
}

/// A value broke one of the rules of SPEC §2; the message states the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub(crate) String);

impl RuleError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_quoted_in_part() {
        assert_eq!(quote("ann"), "\"ann\"");
        let long = "x".repeat(5_000_000);
        let quoted = quote(&long);
        assert!(quoted.len() < 130, "{}", quoted.len());
        assert!(quoted.ends_with("… (5000000 characters)"), "{quoted}");
        assert_eq!(
            clip(&"W".repeat(101)),
            format!("{}… (101 characters)", "W".repeat(100))
        );
    }
}
