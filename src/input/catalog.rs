//! Catalog files for `product import`: an array of products, each valid,
//! none twice.

use std::collections::HashMap;

use serde::Deserialize;

use super::{InputError, JsonMoney, Source, item_label};
use crate::domain::{Product, ProductId, ProductName, Stock};

/// One catalog entry as written in an import file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductInput {
    #[serde(rename = "productID")]
    id: ProductId,
    name: ProductName,
    #[serde(rename = "unitPrice")]
    unit_price: JsonMoney,
    stock: Stock,
}

/// Parses a catalog file: every entry valid and no product twice, or an error.
pub fn parse_catalog(source: &Source) -> Result<Vec<Product>, InputError> {
    let mut seen: HashMap<ProductId, usize> = HashMap::new();
    let mut products = Vec::new();
    for (index, raw) in source.items()?.into_iter().enumerate() {
        let label = item_label("product", index, raw, "productID");
        let p: ProductInput = source.parse_item(raw, &label)?;
        if let Some(first) = seen.insert(p.id.clone(), index) {
            return Err(source.item_error(
                &label,
                Some("productID"),
                format!(
                    "{} appears twice (also product {}); list each product once",
                    p.id,
                    first + 1
                ),
            ));
        }
        products.push(Product {
            id: p.id,
            name: p.name,
            unit_price: p.unit_price.0,
            stock: p.stock,
        });
    }
    Ok(products)
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
            "catalog.json: product 1 (P 1): productID: ' ' is not allowed; use only letters, digits, '_', '.' and '-'"
        );
        assert!(
            parse(r#"[{"productID":"P-1","name":"Pen","stock":1}]"#)
                .unwrap_err()
                .contains("missing field `unitPrice`")
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
}
