//! Domain types: everything past the input edge holds only valid values.
//!
//! Each type's `parse` is the one place its rule lives; the error says the
//! rule in words a user can act on ("must be at least 1"), and the caller adds
//! where the value came from (file, order, field).

mod id;
mod lifecycle;
mod money;
mod order;
mod product;
mod quantity;
mod reason;
mod vocabulary;

pub use id::{CustomerId, MAX_ID_LEN, OrderId, ProductId, WorkflowId};
pub use lifecycle::{Ending, Notification, NotificationKind};
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

/// [`quote`] without the quotes, for values that are names (an ID): its
/// control characters escaped ([`escape`]), so that a name from outside
/// cannot move the cursor, recolour the terminal or forge a line.
pub fn clip(value: &str) -> String {
    let count = value.chars().count();
    if count <= QUOTE_MAX_CHARS {
        return escape(value).into_owned();
    }
    let head: String = value.chars().take(QUOTE_MAX_CHARS).collect();
    format!("{}… ({count} characters)", escape(&head))
}

/// Text from outside (an ID, a reason, a server's message) made safe to
/// print on a terminal: control characters (escape sequences, newlines,
/// carriage returns) and the bidirectional overrides that reorder what is
/// shown are written as `\u{…}` escapes. Everything else is kept.
pub fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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

    #[test]
    fn text_from_outside_cannot_drive_the_terminal() {
        assert_eq!(escape("ORD-1"), "ORD-1");
        assert_eq!(escape("né €"), "né €");
        assert_eq!(escape("a\u{1b}[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(escape("line\nforged"), "line\\u{a}forged");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("a\u{200f}b"), "a\\u{200f}b");
        assert_eq!(clip("x\ry"), "x\\u{d}y");
    }
}
