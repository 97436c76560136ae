//! Exact money: a positive decimal with at most two places, never a float.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Quantity, RuleError};

/// A positive amount of money with at most 2 decimal places, within what the
/// database column `NUMERIC(12,2)` holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

impl Money {
    /// The largest amount accepted: what `NUMERIC(12,2)` can store.
    pub const MAX: Decimal = Decimal::from_parts(0xD4A5_0FFF, 0xE8, 0, false, 2);

    /// Parses the text of a JSON number or string: `12`, `12.5`, `"12.50"`,
    /// `1.2e1`. (Order files refuse exponent notation before this:
    /// `input::orders`; a workflow's input keeps accepting it, as it did.)
    pub fn parse(text: &str) -> Result<Self, RuleError> {
        let bad = || {
            RuleError::new(format!(
                "{} is not a decimal amount like 12.50",
                super::quote(text)
            ))
        };
        if text.is_empty()
            || !text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
            || text.starts_with('+')
            || !text
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_digit() || b == b'-')
        {
            return Err(bad());
        }
        let value = if text.contains(['e', 'E']) {
            Decimal::from_scientific(text).map_err(|_| bad())?
        } else {
            Decimal::from_str_exact(text).map_err(|_| bad())?
        };
        Self::try_from(value)
    }

    /// The amount as a float, for display and search only (never for money).
    pub fn as_f64(self) -> f64 {
        rust_decimal::prelude::ToPrimitive::to_f64(&self.0).unwrap_or(0.0)
    }

    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// `self × quantity`, exactly; errors when the product leaves the range.
    pub fn times(self, quantity: Quantity) -> Result<Self, RuleError> {
        self.0
            .checked_mul(Decimal::from(quantity.get()))
            .ok_or_else(too_large)
            .and_then(Self::try_from)
    }

    /// `self + other`, exactly; errors when the sum leaves the range.
    pub fn plus(self, other: Self) -> Result<Self, RuleError> {
        self.0
            .checked_add(other.0)
            .ok_or_else(too_large)
            .and_then(Self::try_from)
    }
}

fn too_large() -> RuleError {
    RuleError::new(format!("must be at most {}", Money::MAX))
}

impl TryFrom<Decimal> for Money {
    type Error = RuleError;

    fn try_from(value: Decimal) -> Result<Self, RuleError> {
        let value = value.normalize();
        if value.scale() > 2 {
            return Err(RuleError::new(format!(
                "{value} has more than 2 decimal places; amounts are exact to the cent"
            )));
        }
        if value <= Decimal::ZERO {
            return Err(RuleError::new("must be greater than 0"));
        }
        if value > Self::MAX {
            return Err(too_large());
        }
        let mut cents = value;
        cents.rescale(2);
        Ok(Self(cents))
    }
}

impl FromStr for Money {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Self, RuleError> {
        Self::parse(s)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always two places: "12.50", never "12.5".
        write!(f, "{}", self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// An ISO 4217-style currency code: three upper-case letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub const USD: Self = Self(*b"USD");

    pub fn parse(text: &str) -> Result<Self, RuleError> {
        match text.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(RuleError::new(format!(
                "{} is not a currency code; use three upper-case letters like \"USD\"",
                super::quote(text)
            ))),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII upper-case letters get in.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self::USD
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// In the API's document: a string with two decimals, as it is written.
impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(r"^-?[0-9]+\.[0-9]{2}$"))
            .examples(["1299.99"])
            .into()
    }
}

impl utoipa::ToSchema for Money {}

/// In the API's document: three upper-case letters.
impl utoipa::PartialSchema for Currency {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[A-Z]{3}$"))
            .examples(["USD"])
            .into()
    }
}

impl utoipa::ToSchema for Currency {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn m(s: &str) -> Money {
        Money::parse(s).unwrap()
    }

    #[test]
    fn parses_numbers_and_strings_exactly() {
        assert_eq!(m("1299.99").to_string(), "1299.99");
        assert_eq!(m("12.5").to_string(), "12.50");
        assert_eq!(m("12").to_string(), "12.00");
        assert_eq!(m("1.500").to_string(), "1.50");
        assert_eq!(m("1.2e1").to_string(), "12.00");
        assert_eq!(m("9999999999.99").to_string(), "9999999999.99");
    }

    #[test]
    fn rejects_what_is_not_a_positive_cent_amount() {
        for (text, says) in [
            ("0.105", "more than 2 decimal places"),
            ("0", "greater than 0"),
            ("-1.00", "greater than 0"),
            ("10000000000.00", "at most"),
            ("abc", "not a decimal amount"),
            ("", "not a decimal amount"),
            ("+1", "not a decimal amount"),
            ("1_000", "not a decimal amount"),
            (".5", "not a decimal amount"),
            ("99999999999999999999999999999999", "not a decimal amount"),
        ] {
            let err = Money::parse(text).unwrap_err().to_string();
            assert!(err.contains(says), "{text:?}: {err}");
        }
    }

    #[test]
    fn tenth_plus_fifth_is_exactly_three_tenths() {
        assert_eq!(m("0.10").plus(m("0.20")).unwrap(), m("0.3"));
    }

    #[test]
    fn times_quantity_is_exact_and_bounded() {
        let q = Quantity::parse(3).unwrap();
        assert_eq!(m("0.10").times(q).unwrap(), m("0.30"));
        assert!(m("9999999999.99").times(q).is_err());
    }

    #[test]
    fn serializes_as_two_decimal_string() {
        assert_eq!(serde_json::to_string(&m("12.5")).unwrap(), "\"12.50\"");
        let back: Money = serde_json::from_str("\"12.50\"").unwrap();
        assert_eq!(back, m("12.5"));
    }

    #[test]
    fn currency_is_three_capitals() {
        assert_eq!(Currency::parse("EUR").unwrap().as_str(), "EUR");
        for bad in ["usd", "US", "USDT", "U1D", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn any_cent_amount_round_trips(cents in 1i64..=999_999_999_999) {
            let text = format!("{}.{:02}", cents / 100, cents % 100);
            let money = Money::parse(&text).unwrap();
            prop_assert_eq!(money.to_string(), text.clone());
            prop_assert_eq!(Money::parse(&money.to_string()).unwrap(), money);
        }

        #[test]
        fn sums_match_integer_cent_arithmetic(a in 1i64..=1_000_000_000, b in 1i64..=1_000_000_000) {
            let ma = Money::try_from(Decimal::new(a, 2)).unwrap();
            let mb = Money::try_from(Decimal::new(b, 2)).unwrap();
            prop_assert_eq!(ma.plus(mb).unwrap().as_decimal(), Decimal::new(a + b, 2));
        }
    }
}
