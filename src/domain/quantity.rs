//! Order-line quantities.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::RuleError;

/// How many units of a product one order line asks for: 1 to 10 000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct Quantity(u32);

impl Quantity {
    pub const MAX: u32 = 10_000;

    pub fn parse(value: i64) -> Result<Self, RuleError> {
        if value < 1 {
            return Err(RuleError::new("must be at least 1"));
        }
        if value > i64::from(Self::MAX) {
            return Err(RuleError::new(format!("must be at most {}", Self::MAX)));
        }
        Ok(Self(value as u32))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for Quantity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds() {
        assert_eq!(Quantity::parse(1).unwrap().get(), 1);
        assert_eq!(Quantity::parse(10_000).unwrap().get(), 10_000);
        assert_eq!(
            Quantity::parse(0).unwrap_err().to_string(),
            "must be at least 1"
        );
        assert_eq!(
            Quantity::parse(-3).unwrap_err().to_string(),
            "must be at least 1"
        );
        assert_eq!(
            Quantity::parse(10_001).unwrap_err().to_string(),
            "must be at most 10000"
        );
    }
}
