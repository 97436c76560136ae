//! `orderflow order status ID --timeline`: the order's life as one table,
//! from its history (steps, attempts, waits, signals) and the database
//! (what it did to money, stock and notices).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::commands::Context;
use crate::db::orders::Effects;
use crate::domain::{WorkflowId, escape};
use crate::exit::Exit;
use crate::output::cell;
use crate::temporal::client::OrderClient;
use crate::workflow::state::OrderView;
use crate::workflow::timeline::{Phase, Timeline};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TimelineDoc<'a> {
    #[serde(rename = "orderID")]
    order_id: &'a str,
    status: &'a str,
    #[serde(flatten)]
    timeline: &'a Timeline,
    /// `null` when no database is configured.
    effects: Option<&'a Effects>,
}

pub async fn run(
    cx: &Context,
    client: &OrderClient,
    id: &WorkflowId,
    view: &OrderView,
) -> anyhow::Result<Exit> {
    let timeline = client.timeline(id).await?;
    // The database is optional here: without one, or when it does not
    // answer, the history alone (said so).
    let (effects, missing) = match cx.database() {
        Ok(_) => {
            let read = async {
                let pool = cx.pool().await?;
                Ok::<_, anyhow::Error>(crate::db::orders::effects(&pool, id.as_str()).await?)
            };
            match tokio::time::timeout(std::time::Duration::from_secs(3), read).await {
                Ok(Ok(effects)) => (Some(effects), None),
                Ok(Err(e)) => (
                    None,
                    Some(format!(
                        "the database failed: {}",
                        crate::errors::text(e.as_ref())
                    )),
                ),
                Err(_) => (
                    None,
                    Some("the database did not answer within 3 s".to_owned()),
                ),
            }
        }
        Err(_) => (
            None,
            Some(
                "no database is configured; set DATABASE_URL (or --database-url) to see them"
                    .to_owned(),
            ),
        ),
    };
    let p = &cx.printer;
    if p.is_json() {
        p.json(&TimelineDoc {
            order_id: id.as_str(),
            status: view.status.as_str(),
            timeline: &timeline,
            effects: effects.as_ref(),
        })?;
        return Ok(Exit::Success);
    }
    let start = timeline.started_at;
    let at = |t: Option<DateTime<Utc>>| match (start, t) {
        (Some(s), Some(t)) => format!("+{}", took(ms_between(s, t))),
        _ => "?".to_owned(),
    };
    let span = match (timeline.started_at, timeline.ended_at) {
        (Some(s), Some(e)) => format!("{} from start to end", took(ms_between(s, e))),
        (Some(s), None) => format!("running for {}", took(ms_between(s, Utc::now()))),
        _ => String::new(),
    };
    let started = start.map_or_else(String::new, |s| {
        format!(" (started {})", s.format("%Y-%m-%d %H:%M:%S UTC"))
    });
    p.line(format!(
        "{} · {} · {span}{started}",
        escape(id.as_str()),
        view.status
    ))?;

    let mut table = p.table();
    table.set_header(["STEP", "AT", "TOOK", "ATTEMPTS", "WAITED", "RESULT"]);
    // Steps and signals, in the order they happened.
    let mut rows: Vec<(Option<DateTime<Utc>>, [String; 6])> = Vec::new();
    for s in &timeline.steps {
        let mut waited = Vec::new();
        if s.retry_wait_ms > 0 {
            waited.push(format!("retry {}", took(s.retry_wait_ms)));
        }
        if s.database_wait_ms > 0 {
            waited.push(format!("database {}", took(s.database_wait_ms)));
        }
        let mut result = s.outcome.to_owned();
        if let Some(error) = &s.last_error
            && s.outcome != "done"
        {
            result = format!("{result}: {error}");
        }
        if s.phase == Phase::Compensation {
            result = format!("{result} (compensation)");
        }
        let duration = match (s.start, s.end) {
            (Some(a), Some(b)) => took(ms_between(a, b)),
            _ => String::new(),
        };
        rows.push((
            s.start,
            [
                s.activity.clone(),
                at(s.start),
                duration,
                s.attempts.to_string(),
                waited.join(", "),
                result,
            ],
        ));
    }
    for signal in &timeline.signals {
        rows.push((
            signal.at,
            [
                format!("{} (signal)", signal.name),
                at(signal.at),
                String::new(),
                String::new(),
                String::new(),
                "received".to_owned(),
            ],
        ));
    }
    rows.sort_by_key(|(t, _)| *t);
    for (_, row) in rows {
        table.add_row(row.map(cell));
    }
    p.line(&*table)?;

    let retry: u64 = timeline.steps.iter().map(|s| s.retry_wait_ms).sum();
    let database: u64 = timeline.steps.iter().map(|s| s.database_wait_ms).sum();
    p.line(format!(
        "Waits: {} for a worker to pick up its {} workflow task(s) (longest {}); {} of retry back-off; {} for the database.",
        took(timeline.queue_wait_ms),
        timeline.workflow_tasks,
        took(timeline.longest_queue_wait_ms),
        took(retry),
        took(database),
    ))?;
    match &effects {
        None => p.line(format!(
            "Money, stock and notices: not shown; {}.",
            missing.as_deref().unwrap_or("unknown")
        ))?,
        Some(e) if !e.recorded => {
            p.line("Money, stock and notices: none; the order has no row in the database.")?
        }
        Some(e) => {
            let money: Vec<String> = e
                .payments
                .iter()
                .map(|pay| match pay.refunded_at {
                    Some(refunded) => format!(
                        "captured {} {}, refunded at {}",
                        pay.amount,
                        pay.currency,
                        at(Some(refunded))
                    ),
                    None => format!(
                        "{} {} {} at {}",
                        pay.status.to_lowercase(),
                        pay.amount,
                        pay.currency,
                        at(Some(pay.updated_at))
                    ),
                })
                .collect();
            let stock: Vec<String> = e
                .reservations
                .iter()
                .map(|r| {
                    let mut text = format!(
                        "{} ×{} reserved at {}",
                        escape(&r.product_id),
                        r.quantity,
                        at(Some(r.created_at))
                    );
                    if let Some(released) = r.released_at {
                        text.push_str(&format!(", released at {}", at(Some(released))));
                    }
                    text
                })
                .collect();
            let notices: Vec<String> = e
                .notifications
                .iter()
                .map(|n| {
                    let when = n
                        .sent_at
                        .map_or_else(String::new, |t| format!(" at {}", at(Some(t))));
                    format!("{} {}{when}", n.kind, n.status)
                })
                .collect();
            let or_none = |v: Vec<String>| match v.is_empty() {
                true => "none".to_owned(),
                false => v.join("; "),
            };
            p.line(format!("Money: {}", or_none(money)))?;
            p.line(format!("Stock: {}", or_none(stock)))?;
            p.line(format!("Notices: {}", or_none(notices)))?;
        }
    }
    Ok(Exit::Success)
}

fn ms_between(from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    (to - from).num_milliseconds().max(0) as u64
}

/// `0ms`, `28ms`, `1.09s`, `1m05s`.
fn took(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms}ms"),
        1000..60_000 => format!("{:.2}s", ms as f64 / 1000.0),
        _ => super::progress::elapsed(std::time::Duration::from_millis(ms)),
    }
}

#[cfg(test)]
mod tests {
    use super::took;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(took(0), "0ms");
        assert_eq!(took(28), "28ms");
        assert_eq!(took(1094), "1.09s");
        assert_eq!(took(65_000), "1m05s");
    }
}
