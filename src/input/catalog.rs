//! Catalog files for `product import`: an array of products, each valid,
//! none twice.

use std::collections::HashMap;

use super::{InvalidInput, JsonMoney, Source, item_label};
use crate::domain::{Product, ProductId, ProductName, Stock};

/// The fields of a catalog entry, as serde would list them.
const PRODUCT_FIELDS: &[&str] = &["productID", "name", "unitPrice", "stock"];

/// Parses a catalog file: every entry valid and no product twice, or every
/// problem found in it.
pub fn parse_catalog(source: &Source) -> Result<Vec<Product>, InvalidInput> {
    let mut seen: HashMap<ProductId, usize> = HashMap::new();
    let mut products = Vec::new();
    let mut problems = Vec::new();
    for (index, raw) in source.items()?.into_iter().enumerate() {
        let label = item_label("product", index, raw, "productID");
        let mut f = match source.fields(raw, &label, "") {
            Ok(f) => f,
            Err(e) => {
                problems.push(e);
                continue;
            }
        };
        let id: Option<ProductId> = f.required("productID");
        let name: Option<ProductName> = f.required("name");
        let unit_price: Option<JsonMoney> = match f.raw("unitPrice") {
            Some(raw) if super::in_exponent_notation(raw) => {
                f.problem(Some("unitPrice"), super::exponent_message(raw));
                None
            }
            _ => f.required("unitPrice"),
        };
        let stock: Option<Stock> = f.required("stock");
        if let Some(id) = &id
            && let Some(first) = seen.insert(id.clone(), index)
        {
            f.problem(
                Some("productID"),
                format!(
                    "{id} appears twice (also product {}); list each product once",
                    first + 1
                ),
            );
        }
        let found = f.finish(PRODUCT_FIELDS);
        match (id, name, unit_price, stock) {
            (Some(id), Some(name), Some(unit_price), Some(stock)) if found.is_empty() => products
                .push(Product {
                    id,
                    name,
                    unit_price: unit_price.0,
                    stock,
                }),
            _ => problems.extend(found),
        }
    }
    match InvalidInput::from_problems(problems) {
        None => Ok(products),
        Some(invalid) => Err(invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Product>, String> {
        parse_catalog(&Source::new("catalog.json", text)).map_err(|e| e.to_string())
    }

    #[test]
    fn reads_prices_exactly() {
        let catalog =
            parse(r#"[{"productID":"P-1","name":"Pen","unitPrice":12.5,"stock":3},{"productID":"P-2","name":"Ink","unitPrice":"0.10","stock":0}]"#)
                .unwrap();
        assert_eq!(catalog[0].unit_price.to_string(), "12.50");
        assert_eq!(catalog[1].unit_price.to_string(), "0.10");
        assert_eq!(catalog[1].stock.get(), 0);
    }

    #[test]
    fn rejects_bad_entries_naming_the_field() {
        assert_eq!(
            parse(r#"[{"productID":"P-1","name":"Pen","unitPrice":1,"stock":-1}]"#).unwrap_err(),
            "catalog.json: product 1 (P-1): stock: must not be negative"
        );
        assert_eq!(
            parse(r#"[{"productID":"P 1","name":"Pen","unitPrice":1,"stock":1}]"#).unwrap_err(),
            "catalog.json: product 1 (P 1): productID: ' ' is not allowed; use only ASCII letters (A-Z, a-z), digits, '_', '.' and '-'"
        );
        assert!(
            parse(r#"[{"productID":"P-1","name":"Pen","stock":1}]"#)
                .unwrap_err()
                .contains("missing field `unitPrice`")
        );
        let many = parse(
            r#"[{"productID":"P 1","name":"Pen","unitPrice":1,"stock":-1},{"productID":"P-2","name":"Ink","stock":1,"colour":"red"}]"#,
        )
        .unwrap_err();
        assert!(
            many.starts_with("4 problems in catalog.json:\n")
                && many.contains("product 1 (P 1): productID: ' ' is not allowed")
                && many.contains("product 1 (P 1): stock: must not be negative")
                && many.contains("product 2 (P-2): missing field `unitPrice`")
                && many.contains("product 2 (P-2): colour: unknown field `colour`"),
            "{many}"
        );
        let dup = parse(
            r#"[{"productID":"P-1","name":"a","unitPrice":1,"stock":1},{"productID":"P-1","name":"b","unitPrice":1,"stock":1}]"#,
        )
        .unwrap_err();
        assert_eq!(
            dup,
            "catalog.json: product 2 (P-1): productID: P-1 appears twice (also product 1); list each product once"
        );
    }

    #[test]
    fn a_price_in_exponent_notation_is_refused() {
        let e =
            parse(r#"[{"productID":"P-1","name":"Pen","unitPrice":"1e3","stock":1}]"#).unwrap_err();
        assert!(
            e.contains("unitPrice: \"1e3\" is in exponent notation"),
            "{e}"
        );
        assert!(
            parse(r#"[{"productID":"P-1","name":"Pen","unitPrice":"12.50","stock":1}]"#).is_ok()
        );
    }
}
