//! `orderflow product import | list` against a real database.

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::json;

use crate::support::{migrated_database, orderflow, stdout_json, write_temp};

const CATALOG: &str = r#"[
  {"productID": "PROD-001", "name": "Laptop", "unitPrice": 1299.99, "stock": 10},
  {"productID": "PROD-002", "name": "Pen", "unitPrice": "12.5", "stock": 0},
  {"productID": "PROD-003", "name": "Ink", "unitPrice": 0.1, "stock": 250}
]"#;

#[tokio::test]
async fn import_then_list_round_trips_names_prices_and_stock() {
    let db = migrated_database().await;
    let (_dir, file) = write_temp("catalog.json", CATALOG);
    orderflow()
        .args(["product", "import", "--database-url", &db.url, "--file"])
        .arg(&file)
        .assert()
        .success()
        .stdout(contains("3 new, 0 updated"));

    let out = orderflow()
        .args(["product", "list", "-o", "json", "--database-url", &db.url])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        stdout_json(&out),
        json!([
            {"productID": "PROD-001", "name": "Laptop", "unitPrice": "1299.99", "stock": 10},
            {"productID": "PROD-002", "name": "Pen", "unitPrice": "12.50", "stock": 0},
            {"productID": "PROD-003", "name": "Ink", "unitPrice": "0.10", "stock": 250},
        ])
    );

    orderflow()
        .args(["product", "list", "--database-url", &db.url])
        .assert()
        .success()
        .stdout(
            contains("PROD-002")
                .and(contains("12.50"))
                .and(contains("\u{1b}[").not()),
        );
}

#[tokio::test]
async fn import_upserts_from_stdin() {
    let db = migrated_database().await;
    let (_dir, file) = write_temp("catalog.json", CATALOG);
    orderflow()
        .args(["product", "import", "--database-url", &db.url, "--file"])
        .arg(&file)
        .assert()
        .success();
    let out = orderflow()
        .args(["product", "import", "--file", "-", "-o", "json", "--database-url", &db.url])
        .write_stdin(r#"{"productID": "PROD-002", "name": "Fountain pen", "unitPrice": "15.00", "stock": 7}"#)
        .output()
        .unwrap();
    assert_eq!(
        stdout_json(&out),
        json!({"file": "<stdin>", "products": 1, "inserted": 0, "updated": 1})
    );
    let list = orderflow()
        .args(["product", "list", "-o", "json", "--database-url", &db.url])
        .output()
        .unwrap();
    assert_eq!(
        stdout_json(&list)[1],
        json!({"productID": "PROD-002", "name": "Fountain pen", "unitPrice": "15.00", "stock": 7})
    );
}

#[tokio::test]
async fn malformed_files_exit_2_naming_file_and_field_and_write_nothing() {
    let db = migrated_database().await;
    for (contents, says) in [
        (
            r#"[{"productID": "P-1", "name": "a", "unitPrice": 1, "stock": 1},"#,
            "bad.json: malformed JSON at line 1",
        ),
        (
            r#"[{"productID": "P-1", "name": "a", "unitPrice": 1, "stock": 1}, {"productID": "P-2", "name": "b", "unitPrice": 1.005, "stock": 1}]"#,
            "bad.json: product 2 (P-2): unitPrice: 1.005 has more than 2 decimal places",
        ),
        (
            r#"[{"productID": "P-1", "name": "a", "unitPrice": 1, "stock": -4}]"#,
            "bad.json: product 1 (P-1): stock: must not be negative",
        ),
        (
            r#"[{"productID": "P-1", "name": "a", "price": 1, "stock": 1}]"#,
            "bad.json: product 1 (P-1): price: unknown field `price`",
        ),
        (
            r#"[{"productID": "P-1", "name": "a", "unitPrice": 0, "stock": 1}]"#,
            "unitPrice: must be greater than 0",
        ),
        (
            r#"[{"productID": "P-1", "name": "a", "unitPrice": 1, "stock": 1.5}]"#,
            "stock: must be a whole number, not 1.5",
        ),
    ] {
        let (_dir, file) = write_temp("bad.json", contents);
        orderflow()
            .current_dir(file.parent().unwrap())
            .args([
                "product",
                "import",
                "--file",
                "bad.json",
                "--database-url",
                &db.url,
            ])
            .assert()
            .code(2)
            .stderr(contains(says));
    }
    let list = orderflow()
        .args(["product", "list", "-o", "json", "--database-url", &db.url])
        .output()
        .unwrap();
    assert_eq!(stdout_json(&list), json!([]));
}

#[test]
fn a_missing_file_exits_2_before_touching_the_database() {
    orderflow()
        .args(["product", "import", "--file", "/nonexistent/catalog.json"])
        .assert()
        .code(2)
        .stderr(contains("/nonexistent/catalog.json: cannot read"));
}
