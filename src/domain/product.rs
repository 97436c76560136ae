//! The catalog: products with a price and the stock orders draw on.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Money, ProductId, RuleError};

/// A product's display name: 1–200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(value: &str) -> Result<Self, RuleError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(RuleError::new("must not be empty"));
        }
        if trimmed.chars().count() > Self::MAX_CHARS {
            return Err(RuleError::new(format!(
                "must be at most {} characters",
                Self::MAX_CHARS
            )));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(RuleError::new("must not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProductName {
    type Error = RuleError;
    fn try_from(value: String) -> Result<Self, RuleError> {
        Self::parse(&value)
    }
}

impl From<ProductName> for String {
    fn from(name: ProductName) -> Self {
        name.0
    }
}

impl fmt::Display for ProductName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Units on hand: never negative, and within the database's `INTEGER`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct Stock(i32);

impl Stock {
    pub fn parse(value: i64) -> Result<Self, RuleError> {
        if value < 0 {
            return Err(RuleError::new("must not be negative"));
        }
        i32::try_from(value)
            .map(Self)
            .map_err(|_| RuleError::new(format!("must be at most {}", i32::MAX)))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

impl TryFrom<i64> for Stock {
    type Error = RuleError;
    fn try_from(value: i64) -> Result<Self, RuleError> {
        Self::parse(value)
    }
}

impl From<Stock> for i64 {
    fn from(stock: Stock) -> Self {
        i64::from(stock.0)
    }
}

impl fmt::Display for Stock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// One catalog entry, as imported and as listed (`product list -o json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Product {
    #[serde(rename = "productID")]
    pub id: ProductId,
    pub name: ProductName,
    #[serde(rename = "unitPrice")]
    pub unit_price: Money,
    pub stock: Stock,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(ProductName::parse("  Laptop ").unwrap().as_str(), "Laptop");
        assert!(ProductName::parse("   ").is_err());
        assert!(ProductName::parse(&"x".repeat(201)).is_err());
        assert!(ProductName::parse("a\u{7}b").is_err());
    }

    #[test]
    fn stock_is_non_negative_int4() {
        assert_eq!(Stock::parse(0).unwrap().get(), 0);
        assert_eq!(
            Stock::parse(-1).unwrap_err().to_string(),
            "must not be negative"
        );
        assert!(Stock::parse(i64::from(i32::MAX) + 1).is_err());
    }

    #[test]
    fn product_json_shape() {
        let p = Product {
            id: ProductId::parse("PROD-001").unwrap(),
            name: ProductName::parse("Laptop").unwrap(),
            unit_price: Money::parse("12.5").unwrap(),
            stock: Stock::parse(7).unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"{"productID":"PROD-001","name":"Laptop","unitPrice":"12.50","stock":7}"#
        );
    }
}
