//! Order files (SPEC §2): one order object or an array of them, checked
//! completely before anything is submitted.

use std::collections::HashMap;

use serde::Deserialize;

use super::{InputError, JsonMoney, Source, item_label};
use crate::domain::{
    Currency, CustomerEmail, CustomerId, Order, OrderId, OrderLine, OrderRuleError, PaymentMethod,
    ProductId, Quantity,
};

/// One order as written in a file: amounts as numbers or strings, optional
/// fields with the SPEC's defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct OrderInput {
    id: Option<OrderId>,
    #[serde(rename = "customerID")]
    customer_id: CustomerId,
    customer_email: Option<CustomerEmail>,
    payment_method: Option<PaymentMethod>,
    total_amount: JsonMoney,
    currency: Option<Currency>,
    items: Vec<LineInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LineInput {
    #[serde(rename = "productID")]
    product_id: ProductId,
    quantity: Quantity,
    unit_price: JsonMoney,
}

/// Orders from several files, in order, with their source for messages.
#[derive(Debug)]
pub struct ParsedOrder {
    pub order: Order,
    /// `orders.json: order 2 (ORD-7)`.
    pub origin: String,
    /// Whether the ID was generated (the file had none).
    pub generated_id: bool,
}

impl OrderInput {
    /// The order, under `id`; its rules checked as a whole.
    fn into_order(self, id: OrderId) -> Result<Order, OrderRuleError> {
        Order::new(
            id,
            self.customer_id,
            self.customer_email,
            self.payment_method.unwrap_or_default(),
            self.total_amount.0,
            self.currency.unwrap_or_default(),
            self.items
                .into_iter()
                .map(|l| OrderLine {
                    product_id: l.product_id,
                    quantity: l.quantity,
                    unit_price: l.unit_price.0,
                })
                .collect(),
        )
    }
}

/// Parses every order in `sources`. `id` replaces the ID of the one order
/// (an error when there are several). Any invalid order, or an ID used
/// twice, fails the whole input.
pub fn parse_orders(
    sources: &[Source],
    id: Option<&OrderId>,
) -> Result<Vec<ParsedOrder>, InputError> {
    let mut parsed = Vec::new();
    for source in sources {
        for (index, raw) in source.items()?.into_iter().enumerate() {
            let label = item_label("order", index, raw, "id");
            let input: OrderInput = source.parse_item(raw, &label)?;
            let generated_id = input.id.is_none();
            let id = input.id.clone().unwrap_or_else(OrderId::generate);
            let order = input
                .into_order(id)
                .map_err(|e| source.item_error(&label, Some(&e.field), e.rule.to_string()))?;
            parsed.push(ParsedOrder {
                order,
                origin: format!("{}: {label}", source.name),
                generated_id,
            });
        }
    }
    if let Some(id) = id {
        match parsed.as_mut_slice() {
            [one] => {
                one.order = one.order.clone().with_id(id.clone());
                one.generated_id = false;
            }
            _ => {
                return Err(InputError {
                    source_name: "--id".into(),
                    item: None,
                    field: None,
                    message: format!(
                        "names one order, but the input holds {}; put IDs in the files instead",
                        parsed.len()
                    ),
                });
            }
        }
    }
    let mut seen: HashMap<&OrderId, &str> = HashMap::new();
    for p in &parsed {
        if let Some(first) = seen.insert(p.order.id(), &p.origin) {
            return Err(InputError {
                source_name: p.origin.clone(),
                item: None,
                field: Some("id".into()),
                message: format!(
                    "{} is also the ID of {first}; each order needs its own ID",
                    p.order.id()
                ),
            });
        }
    }
    Ok(parsed)
}

/// One order sent as a workflow's input by any Temporal client, checked
/// as an order file's is (amounts as numbers or strings, the same
/// defaults), and its ID against the workflow's: an order's ID is its
/// workflow ID, and the workflow's ID stands in for an absent one. The
/// error is the broken rule, `field: rule`.
pub fn parse_workflow_order(text: &str, workflow_id: &str) -> Result<Order, String> {
    let source = Source::new("input", text);
    let rule = |e: InputError| match e.field {
        Some(field) => format!("{field}: {}", e.message),
        None => e.message,
    };
    if source.text.trim_start().starts_with('[') {
        return Err("must be one order object, not an array".into());
    }
    let items = source.items().map_err(rule)?;
    let [raw] = items.as_slice() else {
        return Err("must be one order object".into());
    };
    let input: OrderInput = source.parse_item(raw, "order").map_err(rule)?;
    let id = match &input.id {
        Some(id) if id.as_str() == workflow_id => id.clone(),
        Some(id) => {
            return Err(format!(
                "id: is {id} but the workflow ID is {}; an order's ID is its workflow ID",
                crate::domain::clip(workflow_id)
            ));
        }
        None => OrderId::parse(workflow_id).map_err(|e| format!("id: the workflow ID {e}"))?,
    };
    input.into_order(id).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = r#"{
      "id": "ORD-1001",
      "customerID": "CUST-001",
      "customerEmail": "ann@example.com",
      "paymentMethod": "card",
      "totalAmount": 1299.99,
      "currency": "USD",
      "items": [{ "productID": "PROD-001", "quantity": 1, "unitPrice": 1299.99 }]
    }"#;

    fn parse(text: &str) -> Result<Vec<ParsedOrder>, String> {
        parse_orders(&[Source::new("orders.json", text)], None).map_err(|e| e.to_string())
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err()
    }

    #[test]
    fn the_seed_example_is_valid() {
        let orders = parse(SEED).unwrap();
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].order.id().as_str(), "ORD-1001");
        assert_eq!(orders[0].order.total_amount().to_string(), "1299.99");
    }

    #[test]
    fn defaults_and_generated_ids() {
        let orders = parse(r#"[{"customerID":"C","totalAmount":"0.3","items":[
            {"productID":"A","quantity":1,"unitPrice":0.10},{"productID":"B","quantity":1,"unitPrice":"0.20"}]}]"#)
        .unwrap();
        let o = &orders[0];
        assert!(o.generated_id && o.order.id().as_str().starts_with("ORD-"));
        assert_eq!(o.order.payment_method(), PaymentMethod::Card);
        assert_eq!(o.order.currency().as_str(), "USD");
    }

    #[test]
    fn every_rule_names_file_order_and_field() {
        let base = |items: &str, extra: &str| {
            format!(
                r#"[{{"id":"OK","customerID":"C","totalAmount":1,"items":[{{"productID":"A","quantity":1,"unitPrice":1}}]}},
                       {{"id":"ORD-7","customerID":"C","totalAmount":1,"items":{items}{extra}}}]"#
            )
        };
        let one = r#"[{"productID":"A","quantity":1,"unitPrice":1}]"#;
        for (text, expected) in [
            (
                base(r#"[{"productID":"A","quantity":0,"unitPrice":1}]"#, ""),
                "orders.json: order 2 (ORD-7): items[0].quantity: must be at least 1",
            ),
            (
                base(r#"[{"productID":"A","quantity":-1,"unitPrice":1}]"#, ""),
                "items[0].quantity: must be at least 1",
            ),
            (
                base(r#"[{"productID":"A","quantity":10001,"unitPrice":1}]"#, ""),
                "items[0].quantity: must be at most 10000",
            ),
            (
                base(r#"[{"productID":"A","quantity":1e30,"unitPrice":1}]"#, ""),
                "items[0].quantity: invalid type",
            ),
            (
                base(r#"[{"productID":"A","quantity":1,"unitPrice":0.105}]"#, ""),
                "items[0].unitPrice: 0.105 has more than 2 decimal places",
            ),
            (
                base("[]", ""),
                "order 2 (ORD-7): items: must hold at least one item",
            ),
            (
                base(
                    r#"[{"productID":"A","quantity":1,"unitPrice":1},{"productID":"A","quantity":1,"unitPrice":1}]"#,
                    "",
                ),
                "items[1].productID: A appears twice",
            ),
            (
                base(r#"[{"productID":"A B","quantity":1,"unitPrice":1}]"#, ""),
                "items[0].productID: ' ' is not allowed",
            ),
            (
                base(one, r#","paymentMethod":"paypal""#),
                "order 2 (ORD-7): paymentMethod: unknown variant `paypal`",
            ),
            (
                base(one, r#","colour":"red""#),
                "order 2 (ORD-7): colour: unknown field `colour`",
            ),
            (
                base(one, r#","currency":"usd""#),
                "currency: \"usd\" is not a currency code",
            ),
            (
                base(r#"[{"productID":"A","quantity":2,"unitPrice":1}]"#, ""),
                "order 2 (ORD-7): totalAmount: is 1.00 but the items add up to 2.00",
            ),
        ] {
            let err = error(&text);
            assert!(err.contains(expected), "{err}\n  expected: {expected}");
        }
        assert!(
            error(r#"{"id":"bad id","customerID":"C","totalAmount":1,"items":[]}"#)
                .contains("order 1 (bad id): id: ' ' is not allowed")
        );
        assert!(error("[{").starts_with("orders.json: malformed JSON"));
    }

    #[test]
    fn ids_are_unique_and_id_overrides_one_order() {
        let two = r#"[{"id":"X","customerID":"C","totalAmount":1,"items":[{"productID":"A","quantity":1,"unitPrice":1}]},
                      {"id":"X","customerID":"C","totalAmount":1,"items":[{"productID":"A","quantity":1,"unitPrice":1}]}]"#;
        assert!(error(two).contains("X is also the ID of orders.json: order 1 (X)"));
        let source = Source::new("seed.json", SEED);
        let id = OrderId::parse("ORD-42").unwrap();
        assert_eq!(
            parse_orders(&[source], Some(&id)).unwrap()[0].order.id(),
            &id
        );
        let source = Source::new("two.json", two);
        assert!(
            parse_orders(&[source], Some(&id))
                .unwrap_err()
                .to_string()
                .contains("--id: names one order")
        );
    }
}
