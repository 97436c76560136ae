//! `orderflow doctor`: checks a setup end to end — the configuration in
//! effect, Temporal, the namespace, the search attributes, a worker polling
//! the task queue, PostgreSQL, the migrations and the catalog — and says how
//! to fix each check that fails. Exit 0 when all pass, 8 when Temporal or
//! PostgreSQL is unreachable, 1 when another check fails.

use comfy_table::{Cell, Color};
use serde::Serialize;

use super::Context;
use crate::exit::Exit;
use crate::temporal::TemporalError;
use crate::temporal::admin::create_command;
use crate::temporal::client::OrderClient;
use crate::workflow::search::NAMES;

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    ok: bool,
    /// Not run, because a check it depends on failed (that one says why).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skipped: bool,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: true,
            skipped: false,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            name,
            ok: false,
            skipped: false,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    /// Not run: `because` (the cause, said once by the check that failed).
    fn skipped(name: &'static str, because: impl Into<String>) -> Self {
        Self {
            name,
            ok: false,
            skipped: true,
            detail: because.into(),
            fix: None,
        }
    }

    fn failed(&self) -> bool {
        !self.ok && !self.skipped
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
            checks.push(Check::pass(
                "configuration",
                format!(
                    "Temporal {} (namespace {}, task queue {}, TLS {}, API key {}, payloads {}); database {}",
                    t.address,
                    t.namespace,
                    t.task_queue,
                    if t.uses_tls() { "on" } else { "off" },
                    if t.has_api_key() { "set" } else { "not set" },
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
                Err(e) => {
                    unreachable = true;
                    checks.push(trouble("temporal", &e));
                    None
                }
            },
            Err(e) => {
                unreachable = true;
                checks.push(trouble("temporal", &e));
                None
            }
        },
        Err(_) => None,
    };
    let mut namespace_ok = false;
    if let (Some(client), Ok(config)) = (&client, &temporal) {
        let namespace = &config.namespace;
        let exists = client.namespace_exists().await;
        checks.push(match &exists {
            Ok(true) => Check::pass("namespace", format!("{namespace} exists")),
            Ok(false) => Check::fail(
                "namespace",
                format!("{namespace} does not exist"),
                format!("create it: temporal operator namespace create --namespace {namespace}"),
            ),
            Err(e) => trouble("namespace", e),
        });
        namespace_ok = matches!(exists, Ok(true));
        if !namespace_ok {
            let because = format!("namespace {namespace} is not usable");
            checks.push(Check::skipped("search attributes", because.clone()));
            checks.push(Check::skipped("worker", because.clone()));
            checks.push(Check::skipped("encryption", because));
        }
    }
    if let (Some(client), Ok(config)) = (&client, &temporal)
        && namespace_ok
    {
        let namespace = &config.namespace;
        checks.push(match client.missing_search_attributes().await {
            Ok(missing) if missing.is_empty() => Check::pass(
                "search attributes",
                "OrderStatus, CustomerId, FailureCode, OrderTotal",
            ),
            Ok(missing) => Check::fail(
                "search attributes",
                format!("missing: {}", missing.join(", ")),
                format!(
                    "start `orderflow worker` (it registers them where the server allows), or: {}",
                    create_command(namespace, &missing)
                ),
            ),
            Err(e) => Check::fail(
                "search attributes",
                format!("cannot list them: {}", e.headline()),
                create_command(namespace, &NAMES),
            ),
        });
        let queue = &config.task_queue;
        checks.push(match client.pollers(queue).await {
            Ok(pollers) if !pollers.is_empty() => {
                let seen: Vec<String> = pollers
                    .iter()
                    .map(|p| match p.last_poll {
                        Some(at) => {
                            format!("{} (last poll {})", p.identity, at.format("%H:%M:%S UTC"))
                        }
                        None => p.identity.clone(),
                    })
                    .collect();
                Check::pass("worker", format!("polling {queue}: {}", seen.join(", ")))
            }
            Ok(_) => Check::fail(
                "worker",
                format!("no worker polls task queue {queue} in namespace {namespace}"),
                format!("start one: orderflow worker --task-queue {queue}"),
            ),
            Err(e) => trouble("worker", &e),
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
                let migrated = crate::db::migrations::status(&pool).await;
                let schema = matches!(&migrated, Ok(m) if m.iter().all(|m| m.state != crate::db::migrations::State::Pending));
                checks.push(match migrated {
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
                if schema {
                    let products: Result<i64, _> =
                        sqlx::query_scalar("SELECT count(*) FROM products")
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
                    if let Some(client) = &client
                        && namespace_ok
                    {
                        checks.push(encryption(client, &pool).await);
                    }
                } else {
                    let because = "the database's schema is not migrated";
                    checks.push(Check::skipped("catalog", because));
                }
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

    let failed = checks.iter().filter(|c| c.failed()).count();
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
        } else if c.skipped {
            Cell::new("skipped").fg(Color::DarkGrey)
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
    let failed = checks.iter().filter(|c| c.failed()).count();
    if failed > 0 {
        p.note(format!("{failed} of {} checks failed", checks.len()));
    }
    Ok(())
}

/// Whether this client can read the orders the worker writes: the newest
/// order's input, decoded.
async fn encryption(client: &OrderClient, pool: &sqlx::PgPool) -> Check {
    let newest: Result<Option<String>, _> =
        sqlx::query_scalar("SELECT order_id FROM orders ORDER BY created_at DESC LIMIT 1")
            .fetch_optional(pool)
            .await;
    let id = match newest {
        Ok(Some(id)) => id,
        Ok(None) => return Check::pass("encryption", "no order yet to read"),
        Err(e) => return Check::fail("encryption", e.to_string(), "orderflow db migrate"),
    };
    let Ok(workflow) = crate::domain::WorkflowId::parse(&id) else {
        return Check::pass(
            "encryption",
            format!(
                "newest order {} is not a workflow ID",
                crate::domain::quote(&id)
            ),
        );
    };
    let mine = if client.encrypted() {
        "this client encrypts"
    } else {
        "this client has no key file"
    };
    match client.unreadable_key(&workflow).await {
        Ok(Some(key)) => {
            return Check::fail(
                "encryption",
                format!(
                    "the newest order, {id}, is encrypted with key {key}, and {mine}: \
                     it cannot read orders, and orders it submits are refused"
                ),
                "set ORDERFLOW_ENCRYPTION_KEY_FILE (or --encryption-key-file) to the worker's \
                 key file",
            );
        }
        Ok(None) => {}
        // Past retention, or in another namespace: nothing to read.
        Err(crate::temporal::client::OrderCallError::NotFound(_)) => {
            return Check::pass(
                "encryption",
                format!("the newest order, {id}, is no longer in Temporal; nothing to decode"),
            );
        }
        Err(e) => return Check::fail("encryption", format!("{e:#}"), "check the order's history"),
    }
    match client.recorded_order(&workflow).await {
        Ok(_) if client.encrypted() => Check::pass(
            "encryption",
            format!("the newest order, {id}, decodes with this client's keys"),
        ),
        Ok(_) => Check::pass(
            "encryption",
            format!("the newest order, {id}, is in clear, as this client sends them"),
        ),
        Err(e) => Check::fail(
            "encryption",
            format!("the newest order, {id}, does not decode: {e:#}"),
            "add the key it names to the key file (ORDERFLOW_ENCRYPTION_KEY_FILE)",
        ),
    }
}

/// A failed check from what went wrong with Temporal: its line, and its hint.
fn trouble(name: &'static str, e: &TemporalError) -> Check {
    let fix = e
        .hint
        .as_deref()
        .unwrap_or("check --address and the credentials");
    Check::fail(name, e.headline(), fix)
}
