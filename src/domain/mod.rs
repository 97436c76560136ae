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
mod vocabulary;

pub use id::{CustomerId, OrderId, ProductId};
pub use money::{Currency, Money};
pub use order::{CustomerEmail, Order, OrderLine};
pub use product::{Product, ProductName, Stock};
pub use quantity::Quantity;
pub use vocabulary::{FailureCode, OrderStatus, PaymentMethod, Step};

/// A value broke one of the rules of SPEC §2; the message states the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub(crate) String);

impl RuleError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
