//! The vocabulary of an order's life: statuses, steps, failure codes and
//! payment methods (SPEC §3 and §5). The strings are part of the contract.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::RuleError;

/// Declares a closed set of names with their contract spelling, parsing,
/// display and serde, so each vocabulary is written once.
macro_rules! vocabulary {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        /// In the API's document: one of the names, as they are written.
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some(Self::ALL.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = RuleError;
            fn from_str(s: &str) -> Result<Self, RuleError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    let names: Vec<_> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    RuleError::new(format!(
                        concat!("{} is not a known ", $what, "; use one of: {}"),
                        super::quote(s),
                        names.join(", ")
                    ))
                })
            }
        }
    };
}

vocabulary!(
    /// Where an order stands. `COMPLETED`, `CANCELLED` and `FAILED` are terminal.
    OrderStatus, "status" {
        Pending => "PENDING",
        Created => "CREATED",
        InventoryReserved => "INVENTORY_RESERVED",
        Paid => "PAID",
        Completed => "COMPLETED",
        Cancelled => "CANCELLED",
        Failed => "FAILED",
    }
);

vocabulary!(
    /// The four steps of the order workflow, in order.
    Step, "step" {
        CreateOrder => "create_order",
        ReserveInventory => "reserve_inventory",
        ProcessPayment => "process_payment",
        SendNotification => "send_notification",
    }
);

vocabulary!(
    /// Why an order ended `FAILED` (`failure.code`).
    FailureCode, "failure code" {
        InvalidOrder => "INVALID_ORDER",
        UnknownProduct => "UNKNOWN_PRODUCT",
        PriceMismatch => "PRICE_MISMATCH",
        OutOfStock => "OUT_OF_STOCK",
        PaymentDeclined => "PAYMENT_DECLINED",
        PaymentUnavailable => "PAYMENT_UNAVAILABLE",
        Internal => "INTERNAL",
    }
);

impl FailureCode {
    /// What the customer is told of an order that ended with this code.
    /// Only this: a failure's message is for operators (it may carry a
    /// database's or a gateway's words), never for the customer.
    pub fn customer_message(self) -> &'static str {
        match self {
            Self::InvalidOrder => {
                "Your order could not be accepted: it was not complete or not valid. \
                 You have not been charged."
            }
            Self::UnknownProduct => {
                "Your order could not be completed: an item in it is not in our catalog. \
                 You have not been charged."
            }
            Self::PriceMismatch => {
                "Your order could not be completed: the price of an item in it has changed. \
                 You have not been charged."
            }
            Self::OutOfStock => {
                "Your order could not be completed: an item in it is out of stock. \
                 You have not been charged."
            }
            Self::PaymentDeclined => {
                "Your order could not be completed: your payment was declined. \
                 You have not been charged."
            }
            Self::PaymentUnavailable => {
                "Your order could not be completed: we could not reach the payment provider. \
                 You have not been charged."
            }
            Self::Internal => {
                "Your order could not be completed because of a problem on our side. \
                 Any payment taken for it is refunded."
            }
        }
    }
}

vocabulary!(
    /// What became of a notice to the customer, as recorded: `UNKNOWN`
    /// when it may have reached them (the request went out and no answer
    /// came), which every decision treats as delivered.
    Delivery, "delivery" {
        Sent => "SENT",
        Failed => "FAILED",
        Unknown => "UNKNOWN",
    }
);

vocabulary!(
    /// The simulated gateway's test tokens (SPEC §5).
    PaymentMethod, "payment method" {
        Card => "card",
        CardDeclined => "card_declined",
        CardInsufficientFunds => "card_insufficient_funds",
        CardFlaky => "card_flaky",
        CardUnavailable => "card_unavailable",
    }
);

// The variants come from a macro, so `#[derive(Default)]` cannot mark one.
#[allow(clippy::derivable_impls)]
impl Default for PaymentMethod {
    /// `card` when the order file names none (SPEC §2).
    fn default() -> Self {
        Self::Card
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for s in OrderStatus::ALL {
            assert_eq!(s.as_str().parse::<OrderStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(
            "INVENTORY_RESERVED".parse::<OrderStatus>().unwrap(),
            OrderStatus::InventoryReserved
        );
        assert_eq!(Step::ProcessPayment.to_string(), "process_payment");
    }

    #[test]
    fn terminal_statuses() {
        let terminal: Vec<_> = OrderStatus::ALL
            .iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                &OrderStatus::Completed,
                &OrderStatus::Cancelled,
                &OrderStatus::Failed
            ]
        );
    }

    #[test]
    fn customers_are_told_by_code_only() {
        for code in FailureCode::ALL {
            let text = code.customer_message();
            assert!(
                text.starts_with("Your order could not be"),
                "{code}: {text}"
            );
            assert!(
                text.ends_with("You have not been charged.") || text.ends_with("is refunded."),
                "{code}: {text}"
            );
        }
    }

    #[test]
    fn unknown_payment_token_names_the_choices() {
        let err = "paypal".parse::<PaymentMethod>().unwrap_err().to_string();
        assert_eq!(
            err,
            "\"paypal\" is not a known payment method; use one of: card, card_declined, \
             card_insufficient_funds, card_flaky, card_unavailable"
        );
    }
}
