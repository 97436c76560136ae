//! Order files (SPEC §2): one order object or an array of them, checked
//! completely before anything is submitted.

use std::collections::HashMap;
use std::path::PathBuf;

use serde_json::value::RawValue;

use super::{Fields, InputError, InvalidInput, JsonMoney, Source, item_label};
use crate::domain::{
    Currency, CustomerEmail, CustomerId, Order, OrderId, OrderLine, OrderRuleError, PaymentMethod,
    ProductId, Quantity,
};

/// The fields of an order, as serde would list them in "expected one of".
const ORDER_FIELDS: &[&str] = &[
    "id",
    "customerID",
    "customerEmail",
    "paymentMethod",
    "totalAmount",
    "currency",
    "items",
];
const LINE_FIELDS: &[&str] = &["productID", "quantity", "unitPrice"];

/// One order as written in a file: amounts as numbers or strings, optional
/// fields with the SPEC's defaults.
#[derive(Debug, Clone)]
struct OrderInput {
    id: Option<OrderId>,
    customer_id: CustomerId,
    customer_email: Option<CustomerEmail>,
    payment_method: Option<PaymentMethod>,
    total_amount: JsonMoney,
    currency: Option<Currency>,
    items: Vec<OrderLine>,
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
    /// Reads one order, field by field: every problem in it, or the order.
    fn read(source: &Source, raw: &RawValue, label: &str) -> Result<Self, Vec<InputError>> {
        let mut f = source.fields(raw, label, "").map_err(|e| vec![e])?;
        let id = f.optional("id");
        let customer_id = f.required("customerID");
        let customer_email = f.optional("customerEmail");
        let payment_method = f.optional("paymentMethod");
        let total_amount = f.required("totalAmount");
        let currency = f.optional("currency");
        let items = read_lines(source, &mut f);
        let problems = f.finish(ORDER_FIELDS);
        match (
            id,
            customer_id,
            customer_email,
            payment_method,
            total_amount,
            currency,
            items,
        ) {
            (
                Some(id),
                Some(customer_id),
                Some(customer_email),
                Some(payment_method),
                Some(total_amount),
                Some(currency),
                Some(items),
            ) if problems.is_empty() => Ok(Self {
                id,
                customer_id,
                customer_email,
                payment_method,
                total_amount,
                currency,
                items,
            }),
            _ => Err(problems),
        }
    }

    /// The order, under `id`; its rules checked as a whole.
    fn into_order(self, id: OrderId) -> Result<Order, OrderRuleError> {
        Order::new(
            id,
            self.customer_id,
            self.customer_email,
            self.payment_method.unwrap_or_default(),
            self.total_amount.0,
            self.currency.unwrap_or_default(),
            self.items,
        )
    }
}

/// An order's `items`, each line read field by field; `None` when any is
/// invalid (the problems are recorded in `order`).
fn read_lines(source: &Source, order: &mut Fields<'_>) -> Option<Vec<OrderLine>> {
    let raw = order.raw("items");
    let Some(raw) = raw else {
        order.problem(None, "missing field `items`");
        return None;
    };
    let elements: Vec<&RawValue> = order.parse(raw, "items")?;
    let label = order.label().to_owned();
    let mut lines = Some(Vec::with_capacity(elements.len()));
    for (i, element) in elements.into_iter().enumerate() {
        let path = format!("items[{i}]");
        let line = match source.fields(element, &label, &path) {
            Ok(mut f) => {
                let product_id: Option<ProductId> = f.required("productID");
                let quantity: Option<Quantity> = f.required("quantity");
                let unit_price: Option<JsonMoney> = f.required("unitPrice");
                let problems = f.finish(LINE_FIELDS);
                let ok = problems.is_empty();
                problems.into_iter().for_each(|p| order.push(p));
                match (product_id, quantity, unit_price) {
                    (Some(product_id), Some(quantity), Some(unit_price)) if ok => Some(OrderLine {
                        product_id,
                        quantity,
                        unit_price: unit_price.0,
                    }),
                    _ => None,
                }
            }
            Err(e) => {
                order.push(e);
                None
            }
        };
        match (line, lines.as_mut()) {
            (Some(line), Some(lines)) => lines.push(line),
            _ => lines = None,
        }
    }
    lines
}

/// Reads and parses every order in the files at `paths` (`-` is stdin):
/// every problem in every file, or every order. See [`parse_orders`].
pub fn read_orders(
    paths: &[PathBuf],
    id: Option<&OrderId>,
) -> Result<Vec<ParsedOrder>, InvalidInput> {
    let mut unreadable = Vec::new();
    let sources: Vec<Source> = paths
        .iter()
        .filter_map(|path| Source::read(path).map_err(|e| unreadable.push(e)).ok())
        .collect();
    match parse_orders(&sources, id) {
        Ok(parsed) => match InvalidInput::from_problems(unreadable) {
            None => Ok(parsed),
            Some(invalid) => Err(invalid),
        },
        Err(invalid) => {
            unreadable.extend_from_slice(invalid.problems());
            Err(InvalidInput::from_problems(unreadable).expect("at least one problem"))
        }
    }
}

/// Parses every order in `sources`. `id` replaces the ID of the one order
/// (an error when there are several). Any invalid order, or an ID used
/// twice, fails the whole input, with every problem found in it.
pub fn parse_orders(
    sources: &[Source],
    id: Option<&OrderId>,
) -> Result<Vec<ParsedOrder>, InvalidInput> {
    let mut parsed = Vec::new();
    let mut problems = Vec::new();
    let mut count = 0;
    // Every ID written in the input, valid order or not, and where first.
    let mut seen: HashMap<String, String> = HashMap::new();
    // How often each content without an ID came so far, per source.
    let mut occurrences: HashMap<String, usize> = HashMap::new();
    for source in sources {
        let items = match source.items() {
            Ok(items) => items,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        for (index, raw) in items.into_iter().enumerate() {
            count += 1;
            let label = item_label("order", index, raw, "id");
            let origin = format!("{}: {label}", source.name);
            if let Some(written) = written_id(raw)
                && let Some(first) = seen.insert(written.clone(), origin.clone())
            {
                problems.push(source.item_error(
                    &label,
                    Some("id"),
                    format!(
                        "{} is also the ID of {first}; each order needs its own ID",
                        crate::domain::escape(&written)
                    ),
                ));
            }
            let exponents = exponent_amounts(source, raw, &label);
            let input = match OrderInput::read(source, raw, &label) {
                Ok(input) if exponents.is_empty() => input,
                Ok(_) => {
                    problems.extend(exponents);
                    continue;
                }
                Err(found) => {
                    problems.extend(found);
                    problems.extend(exponents);
                    continue;
                }
            };
            let generated_id = input.id.is_none();
            let id = input.id.clone().unwrap_or_else(|| OrderId::derive(""));
            match input.into_order(id) {
                Ok(mut order) => {
                    if generated_id {
                        order = order
                            .clone()
                            .with_id(missing_id(source, &order, &mut occurrences));
                    }
                    parsed.push(ParsedOrder {
                        order,
                        origin,
                        generated_id,
                    });
                }
                Err(e) => {
                    problems.push(source.item_error(&label, Some(&e.field), e.rule.to_string()))
                }
            }
        }
    }
    if let Some(id) = id {
        match parsed.as_mut_slice() {
            [one] if count == 1 => {
                one.order = one.order.clone().with_id(id.clone());
                one.generated_id = false;
            }
            _ if count <= 1 => {}
            _ => problems.push(InputError {
                source_name: "--id".into(),
                item: None,
                field: None,
                message: format!(
                    "names one order, but the input holds {count}; put IDs in the files instead"
                ),
            }),
        }
    }
    match InvalidInput::from_problems(problems) {
        None => Ok(parsed),
        Some(invalid) => Err(invalid),
    }
}

/// The `id` an order was written with, valid or not.
fn written_id(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(raw.get())
        .ok()?
        .get("id")?
        .as_str()
        .map(str::to_owned)
}

/// The ID of an order written without one. From a file (or stdin), it is
/// derived from the file's path and the order's content (and how many
/// orders with that content came before it in the file): running the same
/// file again names the same orders, which then already exist instead of
/// being submitted twice. Other input (an API request) gets a fresh ID.
fn missing_id(source: &Source, order: &Order, seen: &mut HashMap<String, usize>) -> OrderId {
    let Some(identity) = &source.identity else {
        return OrderId::generate();
    };
    let content = canonical(&serde_json::to_value(order).expect("an order serializes"));
    let seed = format!("{identity}\n{content}");
    let occurrence = seen.entry(seed.clone()).or_default();
    *occurrence += 1;
    OrderId::derive(&format!("{seed}\n{occurrence}"))
}

/// `value` as JSON with every object's keys sorted: the same text for the
/// same order whatever order its fields serialize in.
fn canonical(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        serde_json::Value::from(k.as_str()),
                        canonical(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        serde_json::Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

/// The amounts of an order file written in exponent notation (`1e3`):
/// refused in files and requests, where a person wrote them. (The
/// workflow's own check of its input accepts them, as it did when orders
/// already running were started: it must decide as it decided then.)
fn exponent_amounts(source: &Source, raw: &RawValue, label: &str) -> Vec<InputError> {
    use std::collections::HashMap;
    type Object<'a> = HashMap<String, &'a RawValue>;
    let Ok(order) = serde_json::from_str::<Object<'_>>(raw.get()) else {
        return Vec::new();
    };
    let mut amounts: Vec<(String, &RawValue)> = Vec::new();
    if let Some(total) = order.get("totalAmount") {
        amounts.push(("totalAmount".to_owned(), total));
    }
    if let Some(items) = order.get("items")
        && let Ok(items) = serde_json::from_str::<Vec<Object<'_>>>(items.get())
    {
        for (i, item) in items.iter().enumerate() {
            if let Some(price) = item.get("unitPrice") {
                amounts.push((format!("items[{i}].unitPrice"), price));
            }
        }
    }
    amounts
        .into_iter()
        .filter(|(_, value)| super::in_exponent_notation(value))
        .map(|(field, value)| {
            source.item_error(label, Some(&field), super::exponent_message(value))
        })
        .collect()
}

/// One order sent as a workflow's input by any Temporal client, checked
/// as an order file's is (amounts as numbers or strings, the same
/// defaults), and its ID against the workflow's: an order's ID is its
/// workflow ID, and the workflow's ID stands in for an absent one. The
/// error is the first broken rule, `field: rule`.
pub fn parse_workflow_order(text: &str, workflow_id: &str) -> Result<Order, String> {
    let source = Source::new("input", text);
    let rule = |e: &InputError| match &e.field {
        Some(field) => format!("{field}: {}", e.message),
        None => e.message.clone(),
    };
    if source.text.trim_start().starts_with('[') {
        return Err("must be one order object, not an array".into());
    }
    let items = source.items().map_err(|e| rule(&e))?;
    let [raw] = items.as_slice() else {
        return Err("must be one order object".into());
    };
    let input = OrderInput::read(&source, raw, "order").map_err(|problems| rule(&problems[0]))?;
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
    fn an_order_without_an_id_from_a_file_gets_the_same_id_each_time() {
        let text = r#"[{"customerID": "C-1", "totalAmount": 5, "items": [{"productID": "P-1", "quantity": 1, "unitPrice": 5}]},
                       {"customerID": "C-1", "totalAmount": 5, "items": [{"productID": "P-1", "quantity": 1, "unitPrice": 5}]},
                       {"customerID": "C-2", "totalAmount": 5, "items": [{"productID": "P-1", "quantity": 1, "unitPrice": 5}]}]"#;
        let from = |identity: &str| {
            let mut source = Source::new("orders.json", text);
            source.identity = Some(identity.to_owned());
            parse_orders(&[source], None)
                .unwrap()
                .into_iter()
                .map(|o| o.order.id().clone())
                .collect::<Vec<_>>()
        };
        let ids = from("/data/orders.json");
        assert_eq!(ids, from("/data/orders.json"), "the same each run");
        assert_ne!(ids[0], ids[1], "the same content twice: two orders");
        assert_ne!(ids[0], ids[2]);
        assert_ne!(ids, from("/data/other.json"), "per file");
        assert!(
            ids.iter()
                .all(|id| id.as_str().len() == 36 && id.as_str().starts_with("ORD-"))
        );
    }

    #[test]
    fn a_repeated_id_is_found_even_when_its_first_order_is_invalid() {
        let text = r#"[{"id": "ORD-1", "customerID": "", "items": []},
                       {"id": "ORD-1", "customerID": "C-1", "totalAmount": 5, "items": [{"productID": "P-1", "quantity": 1, "unitPrice": 5}]}]"#;
        let problems = parse(text).unwrap_err();
        assert!(
            problems.contains("ORD-1 is also the ID of orders.json: order 1 (ORD-1)"),
            "{problems}"
        );
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
                "items[0].quantity: must be a whole number, not 1e+30",
            ),
            (
                base(r#"[{"productID":"A","quantity":1.5,"unitPrice":1}]"#, ""),
                "items[0].quantity: must be a whole number, not 1.5",
            ),
            (
                base(one, "").replace(
                    r#""totalAmount":1,"items":[{"productID""#,
                    r#""totalAmount":"1e3","items":[{"productID""#,
                ),
                "totalAmount: \"1e3\" is in exponent notation",
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
                "order 2 (ORD-7): paymentMethod: \"paypal\" is not one of: card, card_declined",
            ),
            (
                base(one, r#","colour":"red""#),
                "order 2 (ORD-7): colour: unknown field `colour`",
            ),
            (
                base(one, r#","customerId":"C""#).replace(r#""customerID":"C","#, ""),
                "order 2 (ORD-7): customerId: field names are case-sensitive: did you mean `customerID`?",
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
    fn every_problem_in_every_order_is_reported() {
        let text = r#"[
          {"id":"A","customerID":"C 1","totalAmount":1,"currency":"usd",
           "items":[{"productID":"P","quantity":0,"unitPrice":1}]},
          {"id":"B","customerID":"C","totalAmount":"x",
           "items":[{"productID":"P","quantity":1,"unitPrice":1,"colour":1}]},
          {"id":"C","customerID":"C","totalAmount":1,"items":[{"productID":"P","quantity":1,"unitPrice":1}]}
        ]"#;
        let err = error(text);
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines[0], "5 problems in orders.json:", "{err}");
        for (line, expected) in lines[1..].iter().zip([
            "orders.json: order 1 (A): customerID: ' ' is not allowed",
            "orders.json: order 1 (A): currency: \"usd\" is not a currency code",
            "orders.json: order 1 (A): items[0].quantity: must be at least 1",
            "orders.json: order 2 (B): totalAmount: ",
            "orders.json: order 2 (B): items[0].colour: unknown field `colour`, expected one of `productID`, `quantity`, `unitPrice`",
        ]) {
            assert!(line.starts_with(&format!("  {expected}")), "{line}\n  expected: {expected}");
        }
        assert_eq!(lines.len(), 6, "{err}");
    }

    #[test]
    fn problems_in_several_files_and_repeated_ids_are_all_reported() {
        let one = r#"{"id":"X","customerID":"C","totalAmount":1,"items":[{"productID":"A","quantity":1,"unitPrice":1}]}"#;
        let sources = [
            Source::new("a.json", one),
            Source::new("b.json", "[{"),
            Source::new("c.json", one),
        ];
        let err = parse_orders(&sources, None).unwrap_err().to_string();
        assert!(err.starts_with("2 problems in 2 files:\n"), "{err}");
        assert!(err.contains("b.json: malformed JSON"), "{err}");
        assert!(
            err.contains("c.json: order 1 (X): id: X is also the ID of a.json: order 1 (X)"),
            "{err}"
        );
    }

    #[test]
    fn a_workflow_input_reports_its_first_problem() {
        assert_eq!(
            parse_workflow_order(
                r#"{"customerID":"C","totalAmount":1,"items":[{"productID":"A","quantity":0,"unitPrice":1}],"x":1}"#,
                "W"
            ),
            Err("items[0].quantity: must be at least 1".to_owned())
        );
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
