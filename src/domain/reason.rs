//! Why an order is cancelled: one line of text, bounded, as it is recorded
//! with the order and told to the customer.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::RuleError;

/// Longest reason kept, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A cancellation's reason: at most [`MAX_REASON_CHARS`] characters, no
/// control characters, never empty.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CancelReason(String);

impl CancelReason {
    /// The reason an operator gives (`order cancel --reason`): refused when
    /// it is empty, too long or holds control characters, so what is
    /// recorded is what was typed.
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(RuleError::new("must not be empty"));
        }
        let count = trimmed.chars().count();
        if count > MAX_REASON_CHARS {
            return Err(RuleError::new(format!(
                "must be at most {MAX_REASON_CHARS} characters (got {count})"
            )));
        }
        if let Some(bad) = trimmed.chars().find(|c| c.is_control()) {
            return Err(RuleError::new(format!(
                "{bad:?} is not allowed: a reason is one line of text"
            )));
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// A reason from a signal any Temporal client can send: kept, made fit
    /// rather than refused (the cancellation it comes with still counts).
    /// Control characters become spaces and the text is cut to
    /// [`MAX_REASON_CHARS`]; `None` when nothing is left.
    pub fn lenient(text: &str) -> Option<Self> {
        let cleaned: String = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let trimmed = cleaned.trim();
        if trimmed.is_empty() {
            return None;
        }
        let count = trimmed.chars().count();
        if count <= MAX_REASON_CHARS {
            return Some(Self(trimmed.to_owned()));
        }
        let head: String = trimmed.chars().take(MAX_REASON_CHARS - 1).collect();
        Some(Self(format!("{}…", head.trim_end())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for CancelReason {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, RuleError> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operators_reason_is_one_bounded_line() {
        assert_eq!(
            CancelReason::parse("  customer asked ").unwrap().as_str(),
            "customer asked"
        );
        assert!(CancelReason::parse("").is_err());
        assert!(CancelReason::parse("   ").is_err());
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        assert_eq!(
            CancelReason::parse(&long).unwrap_err().to_string(),
            "must be at most 500 characters (got 501)"
        );
        assert!(CancelReason::parse(&"é".repeat(MAX_REASON_CHARS)).is_ok());
        let escape = CancelReason::parse("ok\u{1b}[2Jgone").unwrap_err();
        assert!(escape.to_string().contains("'\\u{1b}'"), "{escape}");
        assert!(CancelReason::parse("two\nlines").is_err());
    }

    #[test]
    fn a_signals_reason_is_made_fit_not_refused() {
        assert_eq!(
            CancelReason::lenient("a\u{1b}[31mred\nline")
                .unwrap()
                .as_str(),
            "a [31mred line"
        );
        assert_eq!(CancelReason::lenient(" \n\t "), None);
        let huge = "y".repeat(1_500_000);
        let cut = CancelReason::lenient(&huge).unwrap();
        assert_eq!(cut.as_str().chars().count(), MAX_REASON_CHARS);
        assert!(cut.as_str().ends_with('…'));
    }
}
