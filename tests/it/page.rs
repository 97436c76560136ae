//! The order page in a real browser: Debian's chromium driven over
//! WebDriver by chromedriver (`make deps` installs both). An order placed
//! through the form reaches COMPLETED live, another is cancelled from its
//! button, a field shows its problem; screenshots at desktop and phone
//! width are saved under target/page-screenshots/.

use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::support::served::Served;
use crate::support::stack::{Harness, eventually, fast_retry};

/// chromedriver on a free port, stopped when dropped.
struct Driver {
    child: std::process::Child,
    url: String,
}

impl Driver {
    async fn start() -> Self {
        let port = crate::support::closed_port();
        let child = std::process::Command::new(which("chromedriver"))
            .arg(format!("--port={port}"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting chromedriver (make deps installs chromium-driver)");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        eventually("chromedriver answers", Duration::from_secs(30), || {
            let status = status.clone();
            async move {
                reqwest::get(&status)
                    .await
                    .ok()
                    .filter(|r| r.status() == 200)
            }
        })
        .await;
        Self { child, url }
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": which("chromium"),
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,1000"],
            }),
        );
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A program on PATH, or where Debian puts it.
fn which(program: &str) -> String {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/lib/chromium"])
    {
        let path = std::path::Path::new(dir).join(program);
        if path.is_file() {
            return path.display().to_string();
        }
    }
    panic!(
        "{program} is not installed: run `make deps` (apt-get install chromium chromium-driver)"
    );
}

/// Runs `script` in the page until it returns something other than null.
async fn until(browser: &Client, what: &str, script: &str) -> Value {
    eventually(what, Duration::from_secs(60), || async {
        let value = browser.execute(script, vec![]).await.ok()?;
        (!value.is_null() && value != Value::Bool(false)).then_some(value)
    })
    .await
}

/// Fills the form with one line of P-PAGE and submits it.
async fn place(browser: &Client, method: &str, quantity: &str) {
    let customer = browser.find(Locator::Css("#customer")).await.unwrap();
    customer.clear().await.unwrap();
    customer.send_keys("CUST-PAGE").await.unwrap();
    let email = browser.find(Locator::Css("#email")).await.unwrap();
    email.clear().await.unwrap();
    email.send_keys("page@example.com").await.unwrap();
    browser
        .find(Locator::Css("#payment"))
        .await
        .unwrap()
        .select_by_value(method)
        .await
        .unwrap();
    let row = browser
        .find(Locator::Css("#items .item-row"))
        .await
        .unwrap();
    row.find(Locator::Css(".item-product"))
        .await
        .unwrap()
        .select_by_value("P-PAGE")
        .await
        .unwrap();
    let q = row.find(Locator::Css(".item-quantity")).await.unwrap();
    q.clear().await.unwrap();
    q.send_keys(quantity).await.unwrap();
    browser
        .find(Locator::Css("#submit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The ID of the order the page shows first once there are more than `before`.
async fn newest(browser: &Client, before: u64) -> String {
    until(
        browser,
        "the new order is listed",
        &format!(
            "const all = document.querySelectorAll('[data-order-id]');
             return all.length > {before} ? all[0].getAttribute('data-order-id') : null;"
        ),
    )
    .await
    .as_str()
    .unwrap()
    .to_owned()
}

async fn listed(browser: &Client) -> u64 {
    browser
        .execute(
            "return document.querySelectorAll('[data-order-id]').length;",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

async fn status_shown(browser: &Client, id: &str, status: &str) {
    until(
        browser,
        &format!("{id} shows {status}"),
        &format!(
            "const o = document.querySelector('[data-order-id=\"{id}\"]');
             return o && o.getAttribute('data-status') === '{status}'
                 && o.querySelector('.order-status').textContent.trim() === '{status}';"
        ),
    )
    .await;
}

#[tokio::test]
async fn the_page_places_follows_and_cancels_orders() {
    let mut h = Harness::new().await;
    // Room to press cancel while the gateway never answers.
    h.settings.retry = fast_retry(120);
    h.add_product("P-PAGE", "12.50", 100).await;
    let served = Served::start(&h, &[]).await;
    let driver = Driver::start().await;
    let browser = driver.browser().await;
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/page-screenshots");
    std::fs::create_dir_all(&shots).unwrap();

    h.with_worker(async {
        browser.goto(&served.base).await.unwrap();
        until(
            &browser,
            "the catalog fills the product list",
            "return document.querySelector('#items .item-product option[value=\"P-PAGE\"]') !== null;",
        )
        .await;
        // Every control has a name a screen reader says, and the keyboard reaches it.
        let unnamed = browser
            .execute(
                "return [...document.querySelectorAll('input, select, button, textarea')]
                   .filter(e => !e.closest('template') && !e.closest('dialog'))
                   .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')
                                && !e.getAttribute('aria-labelledby') && !(e.textContent || '').trim())
                   .map(e => e.id || e.className);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unnamed, json!([]), "controls without a name");
        let unreachable = browser
            .execute(
                "return [...document.querySelectorAll('#order-form input, #order-form select, #order-form button')]
                   .filter(e => e.tabIndex < 0).map(e => e.id || e.className);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(unreachable, json!([]), "form controls the keyboard cannot reach");

        // A field's problem, shown at the field; nothing placed.
        let before = listed(&browser).await;
        place(&browser, "card", "0").await;
        let problem = until(
            &browser,
            "the quantity's problem shows at it",
            "const q = document.querySelector('#items .item-quantity');
             if (q.getAttribute('aria-invalid') !== 'true') return null;
             const ids = (q.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
             const text = ids.map(i => (document.getElementById(i) || {}).textContent || '').join(' ');
             return text.trim() || null;",
        )
        .await;
        assert!(problem.as_str().unwrap().contains("at least 1"), "{problem}");
        assert_eq!(listed(&browser).await, before, "an invalid order was listed");

        // An order placed through the form reaches COMPLETED, live.
        place(&browser, "card", "2").await;
        let completed = newest(&browser, before).await;
        status_shown(&browser, &completed, "COMPLETED").await;
        let recorded: Value = reqwest::get(served.url(&format!("/api/orders/{completed}")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(recorded["status"], "COMPLETED");
        assert_eq!(recorded["totalAmount"], "25.00");
        assert_eq!(recorded["customerID"], "CUST-PAGE");

        // Another, cancelled from its button while its payment retries.
        let before = listed(&browser).await;
        place(&browser, "card_unavailable", "1").await;
        let stuck = newest(&browser, before).await;
        let button = format!("[data-order-id=\"{stuck}\"] .order-cancel");
        until(
            &browser,
            "its cancel button is offered",
            &format!("const b = document.querySelector('{button}'); return b && !b.disabled;"),
        )
        .await;
        browser.find(Locator::Css(&button)).await.unwrap().click().await.unwrap();
        // A confirmation, if the page asks for one.
        let _ = browser.accept_alert().await;
        status_shown(&browser, &stuck, "CANCELLED").await;
        until(
            &browser,
            "no cancel button once it ended",
            &format!("const b = document.querySelector('{button}'); return !b || b.disabled || b.hidden;"),
        )
        .await;

        // Desktop and phone widths; nothing wider than a phone.
        browser.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
        std::fs::write(shots.join("desktop.png"), browser.screenshot().await.unwrap()).unwrap();
        browser.set_window_size(390, 844).await.unwrap();
        let overflow = until(
            &browser,
            "the page is laid out at a phone's width",
            "return window.innerWidth <= 400 ? document.documentElement.scrollWidth - window.innerWidth : null;",
        )
        .await;
        assert!(overflow.as_i64().unwrap() <= 0, "wider than the phone by {overflow}px");
        browser.execute("window.scrollTo(0, 0);", vec![]).await.unwrap();
        std::fs::write(shots.join("phone.png"), browser.screenshot().await.unwrap()).unwrap();
    })
    .await;
    let broken = served.log();
    assert!(!broken.contains("ERROR"), "{broken}");

    // A server that asks for a token: the page asks for it once, then works.
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "page-token-1\n").unwrap();
    std::fs::set_permissions(&tokens, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let guarded = Served::start(&h, &["--api-token-file", tokens.to_str().unwrap()]).await;
    browser.set_window_size(1280, 1000).await.unwrap();
    browser.goto(&guarded.base).await.unwrap();
    until(
        &browser,
        "the page asks for the token",
        "return document.querySelector('#token-dialog').open;",
    )
    .await;
    browser
        .find(Locator::Css("#token"))
        .await
        .unwrap()
        .send_keys("page-token-1")
        .await
        .unwrap();
    browser
        .find(Locator::Css("#token-save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until(
        &browser,
        "with the token, the catalog loads",
        "return !document.querySelector('#token-dialog').open
            && document.querySelector('#items .item-product option[value=\"P-PAGE\"]') !== null;",
    )
    .await;
    browser.close().await.unwrap();
}
