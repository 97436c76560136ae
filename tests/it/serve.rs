//! `orderflow serve` through the real binary and a real HTTP client: every
//! endpoint and status, idempotency, the events stream, tokens, limits and
//! a graceful stop; every answer checked against the served OpenAPI document.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use orderflow::domain::OrderId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::invariants::{Expectation, assert_kept};
use crate::support::served::{Contract, Served, read_events};
use crate::support::stack::{Harness, eventually};

const JSON: &str = "application/json";

fn order(id: Option<&str>, method: &str, quantity: u32) -> Value {
    let mut o = json!({
        "customerID": "CUST-API",
        "customerEmail": "ann@example.com",
        "paymentMethod": method,
        "totalAmount": format!("{}.00", 5 * quantity),
        "items": [{"productID": "P-API", "quantity": quantity, "unitPrice": "5.00"}],
    });
    if let Some(id) = id {
        o["id"] = json!(id);
    }
    o
}

/// A response's status and JSON body (null when empty), checked against the document.
async fn answer(
    contract: &Contract,
    method: &str,
    template: &str,
    response: reqwest::Response,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    let body: Value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {template}: not JSON ({e}): {text}"))
    };
    contract.check(method, template, status.as_u16(), &body);
    (status, headers, body)
}

#[tokio::test]
async fn the_api_answers_as_the_cli_does() {
    let mut h = Harness::new().await;
    h.settings.retry = crate::support::stack::fast_retry(30);
    h.add_product("P-API", "5.00", 100).await;
    let served = Served::start(&h, &[]).await;
    let contract = Contract::fetch(&served).await;
    let http = reqwest::Client::new();
    let post = |body: &Value| {
        http.post(served.url("/api/orders"))
            .header("content-type", JSON)
            .body(body.to_string())
            .send()
    };
    let mut ids: Vec<OrderId> = Vec::new();

    h.with_worker(async {
        // The catalog.
        let (status, _, products) = answer(
            &contract,
            "get",
            "/api/products",
            http.get(served.url("/api/products")).send().await.unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(products[0]["productID"], "P-API");
        assert_eq!(products[0]["unitPrice"], "5.00");

        // A new order: 202, its Location, and the CLI's submission record.
        let (status, headers, created) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&order(Some("ORD-API-1"), "card", 1)).await.unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{created}");
        assert_eq!(headers["location"], "/api/orders/ORD-API-1");
        assert_eq!(created["type"], "created");
        assert_eq!(created["existing"], false);
        ids.push(OrderId::parse("ORD-API-1").unwrap());

        // Its events, followed to the end: every status it went through, in order.
        let stream = http
            .get(served.url("/api/orders/ORD-API-1/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(stream.status(), 200);
        assert!(
            stream.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let events = read_events(stream, |_| false).await;
        let mut statuses: Vec<&str> = events
            .iter()
            .map(|e| e.data["status"].as_str().unwrap())
            .collect();
        // A look in the middle of a step adds a record of the same status.
        statuses.dedup();
        assert_eq!(
            statuses,
            [
                "PENDING",
                "CREATED",
                "INVENTORY_RESERVED",
                "PAID",
                "COMPLETED"
            ],
            "{events:#?}"
        );
        for e in &events {
            assert_eq!(e.event.as_deref(), Some("change"));
            contract.check("get", "/api/orders/{id}/events", 200, &e.data);
        }
        // Resumed after the second: the rest, nothing twice.
        let resumed = http
            .get(served.url("/api/orders/ORD-API-1/events"))
            .header("last-event-id", events[1].id.clone().unwrap())
            .send()
            .await
            .unwrap();
        let rest: Vec<String> = read_events(resumed, |_| false)
            .await
            .iter()
            .map(|e| e.data["status"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(rest, ["INVENTORY_RESERVED", "PAID", "COMPLETED"]);
        // Resumed after the end: nothing more will come.
        let ended = http
            .get(served.url("/api/orders/ORD-API-1/events"))
            .header("last-event-id", events.last().unwrap().id.clone().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(ended.status(), 204);

        // Dropped mid-order and resumed: every status once, in order.
        let (status, _, _) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&order(Some("ORD-API-FLAKY"), "card_flaky", 1))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202);
        ids.push(OrderId::parse("ORD-API-FLAKY").unwrap());
        let first = http
            .get(served.url("/api/orders/ORD-API-FLAKY/events"))
            .send()
            .await
            .unwrap();
        let mut seen = 0;
        let before = read_events(first, |_| {
            seen += 1;
            seen == 2
        })
        .await;
        let resumed = http
            .get(served.url("/api/orders/ORD-API-FLAKY/events"))
            .header("last-event-id", before.last().unwrap().id.clone().unwrap())
            .send()
            .await
            .unwrap();
        let after = read_events(resumed, |_| false).await;
        let all: Vec<&crate::support::served::Sse> = before.iter().chain(&after).collect();
        let marks: Vec<&str> = all.iter().map(|e| e.id.as_deref().unwrap()).collect();
        let mut unique = marks.clone();
        unique.dedup();
        assert_eq!(unique, marks, "an event twice: {marks:?}");
        let mut statuses: Vec<&str> = all
            .iter()
            .map(|e| e.data["status"].as_str().unwrap())
            .collect();
        statuses.dedup();
        assert_eq!(
            statuses,
            [
                "PENDING",
                "CREATED",
                "INVENTORY_RESERVED",
                "PAID",
                "COMPLETED"
            ],
            "{marks:?}"
        );
        // Many orders on one connection, each to its end.
        let many = http
            .get(served.url("/api/events?order=ORD-API-1&order=ORD-API-FLAKY"))
            .send()
            .await
            .unwrap();
        assert_eq!(many.status(), 200);
        let events = read_events(many, |_| false).await;
        for id in ["ORD-API-1", "ORD-API-FLAKY"] {
            let last = events.iter().rfind(|e| e.data["orderId"] == id).unwrap();
            assert_eq!(last.data["status"], "COMPLETED");
            assert!(last.id.as_deref().unwrap().starts_with(&format!("{id}@")));
        }
        // Come back with every order's ending: nothing more will come.
        let last = |id: &str| {
            events
                .iter()
                .rfind(|e| e.data["orderId"] == id)
                .unwrap()
                .id
                .clone()
                .unwrap()
        };
        let ended = http
            .get(served.url("/api/events"))
            .query(&[
                ("order", last("ORD-API-1")),
                ("order", last("ORD-API-FLAKY")),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(ended.status(), 204);
        let missing = http
            .get(served.url("/api/events?order=ORD-API-1&order=ORD-NOPE"))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 404);

        // The same order again: 200 with the order as it is.
        let (status, headers, again) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&order(Some("ORD-API-1"), "card", 1)).await.unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{again}");
        assert_eq!(again["existing"], true);
        assert_eq!(again["status"], "COMPLETED");
        assert_eq!(headers["location"], "/api/orders/ORD-API-1");
        // The same ID with other content: 409, nothing started.
        let (status, _, conflict) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&order(Some("ORD-API-1"), "card", 2)).await.unwrap(),
        )
        .await;
        assert_eq!(status, 409);
        assert_eq!(conflict["error"]["code"], "CONFLICT");

        // Its state: what `order status -o json` prints.
        let (status, _, state) = answer(
            &contract,
            "get",
            "/api/orders/{id}",
            http.get(served.url("/api/orders/ORD-API-1"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        let cli = h
            .cli()
            .args(["order", "status", "ORD-API-1", "-o", "json"])
            .output()
            .unwrap();
        let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
        assert_eq!(state, cli, "the API and the CLI print one JSON");
        let (status, _, missing) = answer(
            &contract,
            "get",
            "/api/orders/{id}",
            http.get(served.url("/api/orders/ORD-NOPE"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404);
        assert_eq!(missing["error"]["code"], "NOT_FOUND");

        // Every problem of every order at once; nothing started.
        let bad = json!([
            order(Some("ORD-API-BAD-1"), "card", 0),
            order(Some("ORD-API-BAD-2"), "bitcoin", 1)
        ]);
        let (status, _, invalid) =
            answer(&contract, "post", "/api/orders", post(&bad).await.unwrap()).await;
        assert_eq!(status, 422, "{invalid}");
        let problems = invalid["error"]["problems"].as_array().unwrap();
        let fields: Vec<&str> = problems
            .iter()
            .filter_map(|p| p["field"].as_str())
            .collect();
        assert!(fields.contains(&"items[0].quantity"), "{invalid}");
        assert!(fields.contains(&"paymentMethod"), "{invalid}");
        assert!(
            problems
                .iter()
                .any(|p| p["item"].as_str().unwrap().contains("ORD-API-BAD-2"))
        );
        let started = http
            .get(served.url("/api/orders/ORD-API-BAD-2"))
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 404, "nothing was started");

        // However many problems, the answer is bounded.
        let many_bad: Vec<Value> = (0..150)
            .map(|i| order(Some(&format!("ORD-API-B{i}")), "card", 0))
            .collect();
        let (status, _, capped) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&json!(many_bad)).await.unwrap(),
        )
        .await;
        assert_eq!(status, 422);
        assert_eq!(capped["error"]["problems"].as_array().unwrap().len(), 100);
        assert!(
            capped["error"]["problemCount"].as_u64().unwrap() >= 150,
            "{capped}"
        );

        // Not JSON, not said to be JSON, no such route, no such method.
        let (status, _, broken) = answer(
            &contract,
            "post",
            "/api/orders",
            http.post(served.url("/api/orders"))
                .header("content-type", JSON)
                .body("{\"id\": ")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 400);
        assert_eq!(broken["error"]["code"], "INVALID_INPUT");
        let (status, _, _) = answer(
            &contract,
            "post",
            "/api/orders",
            http.post(served.url("/api/orders"))
                .header("content-type", "text/plain")
                .body(order(None, "card", 1).to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 415);
        let unknown = http.get(served.url("/api/nothing")).send().await.unwrap();
        assert_eq!(unknown.status(), 404);
        assert_eq!(
            unknown.json::<Value>().await.unwrap()["error"]["code"],
            "NOT_FOUND"
        );
        let wrong = http.delete(served.url("/api/orders")).send().await.unwrap();
        assert_eq!(wrong.status(), 405);
        assert_eq!(
            wrong.json::<Value>().await.unwrap()["error"]["code"],
            "METHOD_NOT_ALLOWED"
        );

        // No `id`, the same Idempotency-Key twice: one order.
        let keyed = || {
            http.post(served.url("/api/orders"))
                .header("content-type", JSON)
                .header("idempotency-key", "retry-me-7f3a")
                .body(order(None, "card", 1).to_string())
                .send()
        };
        let (status, _, first) =
            answer(&contract, "post", "/api/orders", keyed().await.unwrap()).await;
        assert_eq!(status, 202);
        let (status, _, second) =
            answer(&contract, "post", "/api/orders", keyed().await.unwrap()).await;
        assert_eq!(status, 200, "{second}");
        assert_eq!(first["orderId"], second["orderId"]);
        ids.push(OrderId::parse(first["orderId"].as_str().unwrap()).unwrap());
        // Without a key, each POST is a new order.
        let (_, _, one) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&order(None, "card", 1)).await.unwrap(),
        )
        .await;
        let (_, _, other) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&order(None, "card", 1)).await.unwrap(),
        )
        .await;
        assert_ne!(one["orderId"], other["orderId"]);
        ids.push(OrderId::parse(one["orderId"].as_str().unwrap()).unwrap());
        ids.push(OrderId::parse(other["orderId"].as_str().unwrap()).unwrap());

        // An array: a record per order, in order, and no Location.
        let (status, headers, many) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&json!([
                order(None, "card", 1),
                order(Some("ORD-API-ARRAY"), "card", 1)
            ]))
            .await
            .unwrap(),
        )
        .await;
        assert_eq!(status, 202, "{many}");
        assert!(headers.get("location").is_none());
        assert_eq!(many.as_array().unwrap().len(), 2);
        assert_eq!(many[1]["orderId"], "ORD-API-ARRAY");
        for m in many.as_array().unwrap() {
            ids.push(OrderId::parse(m["orderId"].as_str().unwrap()).unwrap());
        }

        // The same order sent eight times at once: one order, one charge.
        let racing = order(Some("ORD-API-RACE"), "card", 2);
        let answers = futures::future::join_all((0..8).map(|_| post(&racing))).await;
        let statuses: Vec<u16> = answers
            .iter()
            .map(|r| r.as_ref().unwrap().status().as_u16())
            .collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 202).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            7,
            "{statuses:?}"
        );
        ids.push(OrderId::parse("ORD-API-RACE").unwrap());
        let race = ids.last().unwrap().clone();
        h.client.outcome(&race).await.unwrap();
        assert_eq!(h.payments(&race).await.len(), 1, "one charge");

        // Cancel: a running order (its gateway never answers) → 200 CANCELLED.
        let (status, _, _) = answer(
            &contract,
            "post",
            "/api/orders",
            post(&order(Some("ORD-API-STUCK"), "card_unavailable", 1))
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 202);
        ids.push(OrderId::parse("ORD-API-STUCK").unwrap());
        // A mark of an ending while the order runs is no mark of its: all of it again.
        let bogus = http
            .get(served.url("/api/orders/ORD-API-STUCK/events"))
            .header("last-event-id", "COMPLETED/send_notification/done/1")
            .send()
            .await
            .unwrap();
        assert_eq!(bogus.status(), 200);
        let first = read_events(bogus, |_| true).await;
        assert_eq!(first[0].data["status"], "PENDING");
        let (status, _, cancelled) = answer(
            &contract,
            "post",
            "/api/orders/{id}/cancel",
            http.post(served.url("/api/orders/ORD-API-STUCK/cancel"))
                .header("content-type", JSON)
                .body(json!({"reason": "changed my mind"}).to_string())
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{cancelled}");
        assert_eq!(cancelled["outcome"], "cancelled");
        assert_eq!(cancelled["status"], "CANCELLED");
        assert_eq!(
            cancelled["order"]["cancellation"]["reason"],
            "changed my mind"
        );
        // A cancel not said to be JSON (a form elsewhere could send that): 415.
        let (status, _, _) = answer(
            &contract,
            "post",
            "/api/orders/{id}/cancel",
            http.post(served.url("/api/orders/ORD-API-STUCK/cancel"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 415);
        // Again: already cancelled, still 200.
        let (status, _, again) = answer(
            &contract,
            "post",
            "/api/orders/{id}/cancel",
            http.post(served.url("/api/orders/ORD-API-STUCK/cancel"))
                .header("content-type", JSON)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(again["outcome"], "already cancelled");
        // A completed order: 409, with the status it had; an unknown one: 404.
        let (status, _, refused) = answer(
            &contract,
            "post",
            "/api/orders/{id}/cancel",
            http.post(served.url("/api/orders/ORD-API-1/cancel"))
                .header("content-type", JSON)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 409);
        assert_eq!(refused["error"]["status"], "COMPLETED");
        let (status, _, _) = answer(
            &contract,
            "post",
            "/api/orders/{id}/cancel",
            http.post(served.url("/api/orders/ORD-NOPE/cancel"))
                .header("content-type", JSON)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404);

        for id in &ids {
            h.client.outcome(id).await.unwrap();
        }
        // The list: keyset pages, the next named by `Link`.
        let (status, headers, page) = answer(
            &contract,
            "get",
            "/api/orders",
            http.get(served.url("/api/orders?limit=2&customer=CUST-API"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(page.as_array().unwrap().len(), 2);
        let link = headers["link"].to_str().unwrap().to_owned();
        let next = link
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_owned();
        assert!(link.ends_with("rel=\"next\""), "{link}");
        let (_, _, rest) = answer(
            &contract,
            "get",
            "/api/orders",
            http.get(served.url(&next)).send().await.unwrap(),
        )
        .await;
        assert_ne!(rest[0]["orderId"], page[0]["orderId"]);
        let cli = h
            .cli()
            .args([
                "order",
                "list",
                "--limit",
                "2",
                "--customer",
                "CUST-API",
                "-o",
                "json",
            ])
            .output()
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&cli.stdout).unwrap(),
            page,
            "the API and the CLI print one JSON"
        );
        let (status, _, bad) = answer(
            &contract,
            "get",
            "/api/orders",
            http.get(served.url("/api/orders?status=LOST&limit=0"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422);
        assert_eq!(
            bad["error"]["problems"].as_array().unwrap().len(),
            2,
            "{bad}"
        );
        let (status, _, _) = answer(
            &contract,
            "get",
            "/api/orders",
            http.get(served.url("/api/orders?limit=abc"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 422);
        let (status, _, _) = answer(
            &contract,
            "get",
            "/api/orders",
            http.get(served.url("/api/orders?after=ORD-NEVER"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 404);
        let (status, _, cancelled) = answer(
            &contract,
            "get",
            "/api/orders",
            http.get(served.url("/api/orders?status=cancelled"))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200);
        assert_eq!(cancelled[0]["orderId"], "ORD-API-STUCK");
    })
    .await;

    let stock_before = [("P-API", 100)];
    assert_kept(
        &h.pool,
        &h.client,
        &Expectation {
            orders: &ids,
            stock_before: &stock_before,
        },
    )
    .await;
    assert!(!served.log().contains("Bearer"), "{}", served.log());
}

#[tokio::test]
async fn tokens_hosts_limits_and_metrics() {
    let h = Harness::new().await;
    h.add_product("P-API", "5.00", 10).await;
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "# the shop\nfirst-token-1\nsecond-token-2\n").unwrap();
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let metrics_port = crate::support::closed_port();
    let served = Served::start(
        &h,
        &[
            "--api-token-file",
            tokens.to_str().unwrap(),
            "--max-body",
            "2KiB",
            "--header-timeout",
            "1s",
            "--metrics-address",
            &format!("127.0.0.1:{metrics_port}"),
        ],
    )
    .await;
    let contract = Contract::fetch(&served).await;
    let http = reqwest::Client::new();
    let products = served.url("/api/products");

    // No token, a wrong one, the right ones.
    let none = http.get(&products).send().await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(none.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        none.json::<Value>().await.unwrap()["error"]["code"],
        "UNAUTHORIZED"
    );
    let wrong = http
        .get(&products)
        .bearer_auth("first-token-2")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    for token in ["first-token-1", "second-token-2"] {
        let right = http.get(&products).bearer_auth(token).send().await.unwrap();
        assert_eq!(right.status(), 200, "{token}");
    }
    let events = http
        .get(served.url("/api/orders/ORD-X/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.status(),
        401,
        "the events stream asks for a token too"
    );
    let cancel = http
        .post(served.url("/api/orders/ORD-X/cancel"))
        .header("content-type", JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(cancel.status(), 401);
    // The page, health and the document ask for none.
    for open in ["/", "/healthz", "/readyz", "/api/openapi.json"] {
        let r = http.get(served.url(open)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{open}");
    }
    let page = http.get(served.url("/")).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    // No CORS without --allow-origin.
    let cors = http
        .get(&products)
        .bearer_auth("first-token-1")
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert!(cors.headers().get("access-control-allow-origin").is_none());

    // The body limit.
    let big = "x".repeat(4096);
    let (status, _, too_big) = answer(
        &contract,
        "post",
        "/api/orders",
        http.post(served.url("/api/orders"))
            .bearer_auth("first-token-1")
            .header("content-type", JSON)
            .body(big)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert_eq!(too_big["error"]["code"], "PAYLOAD_TOO_LARGE");

    // A chunked body says no length: it is cut at the limit all the same.
    let port = served.port;
    let chunked = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.write_all(
            b"POST /api/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer first-token-1\r\n\
              Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let chunk = format!("400\r\n{}\r\n", " ".repeat(1024));
        for _ in 0..4 {
            // The server may answer (and close) before the last chunks.
            if tcp.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
        let _ = tcp.write_all(b"0\r\n\r\n");
        let mut answer = String::new();
        let _ = tcp.read_to_string(&mut answer);
        answer
    });
    let answer = chunked.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // A client that never finishes its headers is let go.
    let port = served.port;
    let slow = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut rest = Vec::new();
        // The server closes: read returns (0 bytes, or a 408), never the timeout.
        tcp.read_to_end(&mut rest).map(|_| rest)
    });
    let closed = slow.await.unwrap();
    assert!(closed.is_ok(), "the slow client was held: {closed:?}");

    // Requests by route and status.
    let text = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("orderflow_http_requests_total")
                && l.contains("route=\"/api/products\"")
                && l.contains("status=\"401\"")),
        "{text}"
    );
    assert!(
        text.contains("orderflow_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        !served.log().contains("first-token-1"),
        "a token in the log:\n{}",
        served.log()
    );

    // Any origin may call only a server that asks for tokens.
    let any = h
        .cli()
        .args(["serve", "--listen", "127.0.0.1:0", "--allow-origin", "*"])
        .output()
        .unwrap();
    assert_eq!(any.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&any.stderr).contains("--api-token-file"));

    // Beyond loopback: only with a token, or --no-auth said out loud.
    let open = h
        .cli()
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(open.status.code(), Some(2));
    let said = String::from_utf8_lossy(&open.stderr);
    assert!(
        said.contains("--api-token-file") && said.contains("--no-auth"),
        "{said}"
    );
}

#[tokio::test]
async fn a_loopback_server_answers_only_requests_addressed_to_it() {
    let h = Harness::new().await;
    let served = Served::start(&h, &["--allow-origin", "https://shop.example"]).await;
    let http = reqwest::Client::new();
    let rebound = http
        .get(served.url("/api/products"))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 421);
    // CORS for the allowed origin, preflight included.
    let preflight = http
        .request(reqwest::Method::OPTIONS, served.url("/api/orders"))
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let other = http
        .get(served.url("/api/products"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    // A page elsewhere cannot change orders (CSRF): its Origin says so.
    let forged = http
        .post(served.url("/api/orders/ORD-X/cancel"))
        .header("origin", "https://evil.example")
        .header("content-type", JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        forged.json::<Value>().await.unwrap()["error"]["code"],
        "CROSS_ORIGIN"
    );
    let forged = http
        .post(served.url("/api/orders/ORD-X/cancel"))
        .header("sec-fetch-site", "cross-site")
        .header("content-type", JSON)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // Its own page, and the allowed origin, may.
    for origin in [served.base.clone(), "https://shop.example".to_owned()] {
        let own = http
            .post(served.url("/api/orders/ORD-X/cancel"))
            .header("origin", origin.as_str())
            .header("content-type", JSON)
            .send()
            .await
            .unwrap();
        assert_eq!(own.status(), 404, "{origin}");
    }
    // The allowed origin may read where a new order is, and the next page.
    let exposed = http
        .get(served.url("/api/products"))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        exposed.headers()["access-control-expose-headers"],
        "Location, Link"
    );
    assert!(
        exposed
            .headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
}

#[tokio::test]
async fn sigterm_finishes_the_requests_in_flight_then_exits_0() {
    let h = Harness::new().await;
    h.add_product("P-API", "5.00", 10).await;
    let mut served = Served::start(&h, &[]).await;
    let http = reqwest::Client::new();
    // No worker: the order stays PENDING, and a cancellation waits (10 s)
    // for an outcome that does not come.
    let created = http
        .post(served.url("/api/orders"))
        .header("content-type", JSON)
        .body(order(Some("ORD-API-TERM"), "card", 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 202);
    let cancel = tokio::spawn(
        http.post(served.url("/api/orders/ORD-API-TERM/cancel"))
            .header("content-type", JSON)
            .send(),
    );
    let id = OrderId::parse("ORD-API-TERM").unwrap();
    eventually(
        "the cancellation is in flight",
        Duration::from_secs(20),
        || async {
            if cancel.is_finished() {
                return Some(());
            }
            let history = h.client.history_json(&id).await.ok()?;
            let history = String::from_utf8_lossy(&history);
            history.contains("WorkflowExecutionSignaled").then_some(())
        },
    )
    .await;
    if cancel.is_finished() {
        let answer = cancel.await.unwrap().unwrap();
        let status = answer.status();
        panic!(
            "answered at once: {status} {}",
            answer.text().await.unwrap()
        );
    }
    served.terminate();
    // Stopped accepting …
    eventually("serve stops accepting", Duration::from_secs(10), || async {
        std::net::TcpStream::connect(("127.0.0.1", served.port))
            .is_err()
            .then_some(())
    })
    .await;
    // … and the request in flight is answered.
    let answered = cancel.await.unwrap().unwrap();
    assert_eq!(answered.status(), 202);
    assert_eq!(
        answered.json::<Value>().await.unwrap()["outcome"],
        "requested"
    );
    let status = eventually("serve exits", Duration::from_secs(40), || {
        let status = served.child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(0), "{}", served.log());
}
