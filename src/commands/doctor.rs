//! `orderflow doctor`: checks a setup end to end — the configuration in
//! effect, Temporal, the namespace, the search attributes, a worker polling
//! the task queue, PostgreSQL, the migrations and the catalog — and says how
//! to fix each check that fails. Exit 0 when all pass, 8 when Temporal or
//! PostgreSQL is unreachable, 1 when another check fails.

use comfy_table::{Cell, Color};
use serde::Serialize;

use super::Context;
use crate::exit::Exit;
use crate::workflow::client::OrderClient;
use crate::workflow::search;

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: true,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            ok: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

#[derive(Debug, Serialize)]
struct Report<'a> {
    checks: &'a [Check],
}

pub async fn run(cx: &Context) -> anyhow::Result<Exit> {
    let mut checks = Vec::new();
    let mut unreachable = false;
    let temporal = cx.temporal();
    let database = cx.database();

    // The configuration in effect, without secrets.
    match (&temporal, &database) {
        (Ok(t), Ok(d)) => {
            let c = t.credentials();
            checks.push(Check::pass(
                "configuration",
                format!(
                    "Temporal {} (namespace {}, task queue {}, TLS {}, API key {}, payloads {}); database {}",
                    t.address,
                    t.namespace,
                    t.task_queue,
                    if c.tls { "on" } else { "off" },
                    if c.api_key { "set" } else { "not set" },
                    match &t.encryption {
                        Some(keys) => format!(
                            "encrypted with key {} of {}",
                            keys.encrypting_id(),
                            keys.ids().count()
                        ),
                        None => "in clear".to_owned(),
                    },
                    d.redacted()
                ),
            ));
        }
        (Err(e), _) | (_, Err(e)) => checks.push(Check::fail(
            "configuration",
            format!("{e:#}"),
            "fix the flags or environment it names (orderflow help explains each)",
        )),
    }

    // Temporal, its namespace, the search attributes, a worker.
    let client = match &temporal {
        Ok(config) => match OrderClient::connect(config).await {
            Ok(client) => match client.server_version().await {
                Ok(version) => {
                    let version = if version.is_empty() {
                        "version not given".into()
                    } else {
                        version
                    };
                    checks.push(Check::pass(
                        "temporal",
                        format!("{} answers (server {version})", config.address),
                    ));
                    Some(client)
                }
                Err(status) => {
                    unreachable = true;
                    checks.push(Check::fail(
                        "temporal",
                        status.message().to_owned(),
                        "check --address and the credentials",
                    ));
                    None
                }
            },
            Err(e) => {
                unreachable = true;
                let message = format!("{e:#}");
                let (detail, fix) = message
                    .split_once("\nhint: ")
                    .unwrap_or((&message, "check --address / TEMPORAL_ADDRESS"));
                checks.push(Check::fail("temporal", detail, fix));
                None
            }
        },
        Err(_) => None,
    };
    if let (Some(client), Ok(config)) = (&client, &temporal) {
        let namespace = &config.namespace;
        checks.push(match client.namespace_exists().await {
            Ok(true) => Check::pass("namespace", format!("{namespace} exists")),
            Ok(false) => Check::fail(
                "namespace",
                format!("{namespace} does not exist"),
                format!("create it: temporal operator namespace create --namespace {namespace}"),
            ),
            Err(s) => Check::fail(
                "namespace",
                s.message().to_owned(),
                "check the credentials' access",
            ),
        });
        checks.push(match search::missing(client, namespace).await {
            Ok(missing) if missing.is_empty() => Check::pass(
                "search attributes",
                "OrderStatus, CustomerId, FailureCode, OrderTotal",
            ),
            Ok(missing) => Check::fail(
                "search attributes",
                format!("missing: {}", missing.join(", ")),
                format!(
                    "start `orderflow worker` (it registers them where the server allows), or: {}",
                    search::create_command(namespace, &missing)
                ),
            ),
            Err(s) => Check::fail(
                "search attributes",
                format!("cannot list them: {}", s.message()),
                search::create_command(namespace, &search::ALL.map(|(n, _)| n)),
            ),
        });
        let queue = &config.task_queue;
        checks.push(match client.pollers(queue).await {
            Ok(pollers) if !pollers.is_empty() => {
                let seen: Vec<String> = pollers
                    .iter()
                    .map(|(who, at)| match at {
                        Some(at) => format!("{who} (last poll {})", at.format("%H:%M:%S UTC")),
                        None => who.clone(),
                    })
                    .collect();
                Check::pass("worker", format!("polling {queue}: {}", seen.join(", ")))
            }
            Ok(_) => Check::fail(
                "worker",
                format!("no worker polls task queue {queue} in namespace {namespace}"),
                format!("start one: orderflow worker --task-queue {queue}"),
            ),
            Err(s) => Check::fail(
                "worker",
                s.message().to_owned(),
                "check the credentials' access",
            ),
        });
    }

    // PostgreSQL, the migrations, the catalog.
    if let Ok(database) = &database {
        match crate::db::connect(database, 2).await {
            Ok(pool) => {
                let version: Result<String, _> =
                    sqlx::query_scalar("SELECT current_setting('server_version')")
                        .fetch_one(&pool)
                        .await;
                checks.push(match version {
                    Ok(v) => Check::pass(
                        "postgresql",
                        format!("{} answers (PostgreSQL {v})", database.redacted()),
                    ),
                    Err(e) => Check::fail(
                        "postgresql",
                        e.to_string(),
                        "check the database URL and its user's rights",
                    ),
                });
                checks.push(match crate::db::migrations::status(&pool).await {
                    Ok(migrations) => {
                        let pending: Vec<String> = migrations
                            .iter()
                            .filter(|m| m.state == crate::db::migrations::State::Pending)
                            .map(|m| m.version.to_string())
                            .collect();
                        if pending.is_empty() {
                            Check::pass("migrations", format!("all {} applied", migrations.len()))
                        } else {
                            Check::fail(
                                "migrations",
                                format!("{} pending: {}", pending.len(), pending.join(", ")),
                                "orderflow db migrate",
                            )
                        }
                    }
                    Err(e) => Check::fail("migrations", e.to_string(), "orderflow db migrate"),
                });
                let products: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM products")
                    .fetch_one(&pool)
                    .await;
                checks.push(match products {
                    Ok(n) if n > 0 => Check::pass("catalog", format!("{n} product(s)")),
                    Ok(_) => Check::fail(
                        "catalog",
                        "no products: every order would fail UNKNOWN_PRODUCT",
                        "orderflow product import --file examples/catalog.json",
                    ),
                    Err(e) => Check::fail("catalog", e.to_string(), "orderflow db migrate"),
                });
                pool.close().await;
            }
            Err(e) => {
                unreachable = true;
                let message = e.to_string();
                let (detail, fix) = message
                    .split_once("\nhint: ")
                    .unwrap_or((&message, "check --database-url"));
                checks.push(Check::fail("postgresql", detail, fix));
            }
        }
    }

    let failed = checks.iter().filter(|c| !c.ok).count();
    print(cx, &checks)?;
    Ok(match (unreachable, failed) {
        (true, _) => Exit::Unavailable,
        (false, 0) => Exit::Success,
        (false, _) => Exit::Failure,
    })
}

fn print(cx: &Context, checks: &[Check]) -> std::io::Result<()> {
    let p = &cx.printer;
    if p.is_json() {
        return p.json(&Report { checks });
    }
    let mut table = p.table();
    table.set_header(["CHECK", "RESULT", "DETAIL"]);
    for c in checks {
        let mark = if c.ok {
            Cell::new("ok").fg(Color::Green)
        } else {
            Cell::new("FAIL").fg(Color::Red)
        };
        let detail = match &c.fix {
            Some(fix) => format!("{}\nfix: {fix}", c.detail),
            None => c.detail.clone(),
        };
        table.add_row(vec![Cell::new(c.name), mark, Cell::new(detail)]);
    }
    p.line(table)?;
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        p.note(format!("{failed} of {} checks failed", checks.len()));
    }
    Ok(())
}
