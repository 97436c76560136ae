//! An order as submitted: validated as a whole (SPEC §2) before any
//! workflow starts, then carried unchanged as the workflow's input.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::{Currency, CustomerId, Money, OrderId, PaymentMethod, ProductId, Quantity, RuleError};

/// Where notifications go: a plausible e-mail address (it is only ever
/// recorded and sent to a webhook, never to a mail server).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
#[serde(transparent)]
pub struct CustomerEmail(String);

impl CustomerEmail {
    pub fn parse(value: &str) -> Result<Self, RuleError> {
        let bad = || {
            RuleError::new(format!(
                "{} is not an e-mail address like ann@example.com",
                super::quote(value)
            ))
        };
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        match value.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && domain.contains('.') && !domain.contains('@') =>
            {
                Ok(Self(value.to_owned()))
            }
            _ => Err(bad()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomerEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CustomerEmail {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OrderLine {
    #[serde(rename = "productID")]
    pub product_id: ProductId,
    pub quantity: Quantity,
    #[serde(rename = "unitPrice")]
    pub unit_price: Money,
}

impl OrderLine {
    pub fn total(&self) -> Result<Money, RuleError> {
        self.unit_price.times(self.quantity)
    }
}

/// A whole, valid order: it can only be built by [`Order::new`], which
/// checks every rule, and its JSON is read back through the same check
/// (`try_from`), so no invalid order exists in memory — whether it came from
/// a file, a workflow's input, a history or a query. Its JSON is the SPEC's
/// order shape with amounts as strings; it is the workflow input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", try_from = "OrderWire")]
pub struct Order {
    /// Optional on input: generated when absent.
    #[schema(required = false)]
    id: OrderId,
    #[serde(rename = "customerID")]
    customer_id: CustomerId,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_email: Option<CustomerEmail>,
    payment_method: PaymentMethod,
    total_amount: Money,
    currency: Currency,
    items: Vec<OrderLine>,
}

/// [`Order`]'s JSON, before the rules that span fields are checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderWire {
    id: OrderId,
    #[serde(rename = "customerID")]
    customer_id: CustomerId,
    #[serde(default)]
    customer_email: Option<CustomerEmail>,
    #[serde(default)]
    payment_method: PaymentMethod,
    total_amount: Money,
    #[serde(default)]
    currency: Currency,
    items: Vec<OrderLine>,
}

impl TryFrom<OrderWire> for Order {
    type Error = OrderRuleError;

    fn try_from(w: OrderWire) -> Result<Self, OrderRuleError> {
        Order::new(
            w.id,
            w.customer_id,
            w.customer_email,
            w.payment_method,
            w.total_amount,
            w.currency,
            w.items,
        )
    }
}

/// Why an order as a whole is invalid: the field and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {rule}")]
pub struct OrderRuleError {
    pub field: String,
    pub rule: RuleError,
}

impl Order {
    pub const MAX_ITEMS: usize = 100;

    /// Checks the rules that span fields: 1–100 items, no product twice,
    /// and `totalAmount` equal to Σ quantity × unitPrice, to the cent.
    pub fn new(
        id: OrderId,
        customer_id: CustomerId,
        customer_email: Option<CustomerEmail>,
        payment_method: PaymentMethod,
        total_amount: Money,
        currency: Currency,
        items: Vec<OrderLine>,
    ) -> Result<Self, OrderRuleError> {
        let err = |field: String, rule: String| OrderRuleError {
            field,
            rule: RuleError::new(rule),
        };
        if items.is_empty() {
            return Err(err("items".into(), "must hold at least one item".into()));
        }
        if items.len() > Self::MAX_ITEMS {
            return Err(err(
                "items".into(),
                format!(
                    "must hold at most {} items (got {})",
                    Self::MAX_ITEMS,
                    items.len()
                ),
            ));
        }
        let mut seen = HashSet::new();
        let mut sum: Option<Money> = None;
        for (i, line) in items.iter().enumerate() {
            if !seen.insert(&line.product_id) {
                return Err(err(
                    format!("items[{i}].productID"),
                    format!(
                        "{} appears twice; put each product on one line with its total quantity",
                        line.product_id
                    ),
                ));
            }
            let line_total = line.total().map_err(|rule| OrderRuleError {
                field: format!("items[{i}]"),
                rule,
            })?;
            sum = Some(match sum {
                None => line_total,
                Some(s) => s.plus(line_total).map_err(|rule| OrderRuleError {
                    field: "items".into(),
                    rule,
                })?,
            });
        }
        let sum = sum.expect("at least one item");
        if sum != total_amount {
            return Err(err(
                "totalAmount".into(),
                format!("is {total_amount} but the items add up to {sum} (Σ quantity × unitPrice)"),
            ));
        }
        Ok(Self {
            id,
            customer_id,
            customer_email,
            payment_method,
            total_amount,
            currency,
            items,
        })
    }

    /// The same order under another ID (`order create --id`).
    pub fn with_id(self, id: OrderId) -> Self {
        Self { id, ..self }
    }

    /// The order's ID, which is also its workflow ID.
    pub fn id(&self) -> &OrderId {
        &self.id
    }

    pub fn customer_id(&self) -> &CustomerId {
        &self.customer_id
    }

    pub fn customer_email(&self) -> Option<&CustomerEmail> {
        self.customer_email.as_ref()
    }

    pub fn payment_method(&self) -> PaymentMethod {
        self.payment_method
    }

    /// Σ quantity × unitPrice, to the cent.
    pub fn total_amount(&self) -> Money {
        self.total_amount
    }

    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// One to a hundred lines, no product twice.
    pub fn items(&self) -> &[OrderLine] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(id: &str, qty: i64, price: &str) -> OrderLine {
        OrderLine {
            product_id: ProductId::parse(id).unwrap(),
            quantity: Quantity::parse(qty).unwrap(),
            unit_price: Money::parse(price).unwrap(),
        }
    }

    fn order(total: &str, items: Vec<OrderLine>) -> Result<Order, OrderRuleError> {
        Order::new(
            OrderId::parse("ORD-1").unwrap(),
            CustomerId::parse("C-1").unwrap(),
            None,
            PaymentMethod::Card,
            Money::parse(total).unwrap(),
            Currency::USD,
            items,
        )
    }

    #[test]
    fn total_must_match_to_the_cent() {
        assert!(order("0.3", vec![line("A", 1, "0.10"), line("B", 1, "0.20")]).is_ok());
        assert!(order("3.00", vec![line("A", 3, "1.00")]).is_ok());
        let e = order("0.31", vec![line("A", 1, "0.10"), line("B", 1, "0.20")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "totalAmount: is 0.31 but the items add up to 0.30 (Σ quantity × unitPrice)"
        );
    }

    #[test]
    fn items_are_one_to_a_hundred_distinct_products() {
        assert_eq!(
            order("1", vec![]).unwrap_err().to_string(),
            "items: must hold at least one item"
        );
        let dup = order("2", vec![line("A", 1, "1"), line("A", 1, "1")]).unwrap_err();
        assert_eq!(dup.field, "items[1].productID");
        let many: Vec<_> = (0..101).map(|i| line(&format!("P{i}"), 1, "1")).collect();
        assert!(
            order("101", many)
                .unwrap_err()
                .to_string()
                .contains("at most 100")
        );
    }

    #[test]
    fn emails() {
        assert!(CustomerEmail::parse("ann@example.com").is_ok());
        for bad in [
            "ann",
            "ann@",
            "@example.com",
            "a b@example.com",
            "ann@localhost",
        ] {
            assert!(CustomerEmail::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_shape_is_the_spec_shape_with_string_amounts() {
        let o = order("1299.99", vec![line("PROD-001", 1, "1299.99")]).unwrap();
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "id": "ORD-1", "customerID": "C-1", "paymentMethod": "card",
                "totalAmount": "1299.99", "currency": "USD",
                "items": [{"productID": "PROD-001", "quantity": 1, "unitPrice": "1299.99"}]
            })
        );
        assert_eq!(serde_json::from_value::<Order>(json).unwrap(), o);
    }

    #[test]
    fn json_is_checked_like_any_other_order() {
        let mut json =
            serde_json::to_value(order("1299.99", vec![line("PROD-001", 1, "1299.99")]).unwrap())
                .unwrap();
        json["totalAmount"] = "0.01".into();
        let err = serde_json::from_value::<Order>(json.clone()).unwrap_err();
        assert!(err.to_string().contains("totalAmount: is 0.01"), "{err}");
        json["totalAmount"] = "10.00".into();
        json["items"] = serde_json::json!([]);
        let err = serde_json::from_value::<Order>(json).unwrap_err();
        assert!(
            err.to_string()
                .contains("items: must hold at least one item"),
            "{err}"
        );
    }
}
