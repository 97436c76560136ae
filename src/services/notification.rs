//! Notifications: each (order, kind) is recorded in `notifications` and
//! delivered once — to a webhook when `ORDERFLOW_NOTIFY_WEBHOOK` is set, with
//! an `Idempotency-Key` header so the receiver can drop a repeat and, with
//! `ORDERFLOW_NOTIFY_WEBHOOK_SECRET`, an `Orderflow-Signature` header so it
//! can tell the notice is ours; to the log otherwise.

use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret as _, SecretString};
use sqlx::Row;

use super::ServiceError;
use crate::db::pool::Connections;
use crate::domain::{Delivery, OrderId};

pub use crate::domain::{Notification, NotificationKind};

/// Why a delivery did not succeed: it did not reach the receiver, or it
/// may have and no answer said so.
#[derive(Debug, thiserror::Error)]
pub enum Undelivered {
    /// It did not reach the receiver, or the receiver refused it (no
    /// connection was made; the answer was not a success).
    #[error("{}", crate::errors::text(.0.as_ref()))]
    Refused(anyhow::Error),
    /// The request went out and no answer came (a time limit, a connection
    /// cut): the receiver may have it.
    #[error("{}; it may have reached the receiver", crate::errors::text(.0.as_ref()))]
    Unknown(anyhow::Error),
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one message; an error means it may be tried again.
    async fn deliver(&self, notification: &Notification) -> Result<(), Undelivered>;

    /// True when delivery stays in this process and cannot fail (the log).
    /// Such a notice is marked sent in one statement and then delivered;
    /// one that leaves the process goes through the outbox
    /// ([`Notifications::send`]).
    fn is_local(&self) -> bool {
        false
    }

    /// How long a delivery may hold its notice: longer than any delivery
    /// takes, after which another execution may claim it.
    fn lease(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// Delivery into the worker's log (no webhook configured).
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn deliver(&self, n: &Notification) -> Result<(), Undelivered> {
        // The recipient is the order's customer: the order names them, and
        // their address stays out of logs (with encryption on, it is
        // nowhere in clear).
        tracing::info!(
            order_id = %n.order_id,
            kind = n.kind.as_str(),
            "notification: {}",
            n.message
        );
        Ok(())
    }

    fn is_local(&self) -> bool {
        true
    }
}

/// POSTs each notification as JSON to a URL, signed when a secret is set.
pub struct WebhookNotifier {
    url: reqwest::Url,
    http: reqwest::Client,
    timeout: Duration,
    secret: Option<SecretString>,
}

/// The header that carries a notice's signature.
pub const SIGNATURE_HEADER: &str = "Orderflow-Signature";

/// Stripe's scheme: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
/// The timestamp is signed with the body, so a receiver that checks it is
/// recent turns away a replayed notice.
pub fn signature(secret: &SecretString, at_unix: i64, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{at_unix}.").as_bytes());
    mac.update(body);
    format!(
        "t={at_unix},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

impl WebhookNotifier {
    /// What a failed request means: refused when no connection was made
    /// (nothing was sent), else unknown: the receiver may have the notice.
    fn failed(&self, error: reqwest::Error) -> Undelivered {
        let origin = self.origin();
        let error = error.without_url();
        if error.is_connect() || error.is_builder() {
            return Undelivered::Refused(anyhow::anyhow!(
                "webhook {origin}: {}",
                crate::errors::text(&error)
            ));
        }
        Undelivered::Unknown(if error.is_timeout() {
            anyhow::anyhow!(
                "webhook {origin}: no answer within {}",
                humantime::format_duration(self.timeout)
            )
        } else {
            anyhow::anyhow!("webhook {origin}: {}", crate::errors::text(&error))
        })
    }

    /// The URL as messages show it: scheme, host and port, without a path
    /// or query that may carry a token.
    fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    pub fn new(
        url: reqwest::Url,
        timeout: Duration,
        secret: Option<SecretString>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self {
            url,
            http,
            timeout,
            secret,
        })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn deliver(&self, n: &Notification) -> Result<(), Undelivered> {
        // The exact bytes sent are the bytes signed.
        let body = serde_json::to_vec(n).map_err(|e| Undelivered::Refused(e.into()))?;
        let mut request = self
            .http
            .post(self.url.clone())
            .header("Idempotency-Key", n.idempotency_key())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            request = request.header(
                SIGNATURE_HEADER,
                signature(secret, chrono::Utc::now().timestamp(), &body),
            );
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| self.failed(e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let answered = anyhow::anyhow!("webhook {} answered {status}", self.origin());
        // A gateway in front saying its upstream did not answer in time,
        // or answered wrongly: the receiver may have the notice.
        if matches!(status.as_u16(), 502 | 504) {
            return Err(Undelivered::Unknown(answered));
        }
        Err(Undelivered::Refused(answered))
    }

    fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(5)
    }
}

/// The outbox's second half: a delivery's result and, for a delivered
/// confirmation (`$3` delivered, `$5` completes the order), the order's
/// completion; says whether the order is completed. `$6`: the delivery's
/// outcome is unknown (it may have arrived), which the row keeps through
/// later attempts (`maybe_delivered`).
static DELIVERED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH noted AS (
             UPDATE notifications
                SET attempts = attempts + 1, claimed_until = NULL,
                    status = CASE WHEN $3 OR status = 'SENT' THEN 'SENT'
                                  WHEN $6 OR maybe_delivered THEN 'UNKNOWN'
                                  ELSE 'FAILED' END,
                    maybe_delivered = maybe_delivered OR $6,
                    sent_at = CASE WHEN $3 THEN now() ELSE sent_at END,
                    last_error = CASE WHEN $3 THEN NULL ELSE $4 END
              WHERE order_id = $1 AND kind = $2
             RETURNING 1),
         completed AS ({} AND $3 AND $5 RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM completed)
             OR (SELECT status FROM orders WHERE order_id = $1) = 'COMPLETED' AS completed",
        super::transitions::COMPLETED
    )
});

/// A local notice recorded sent (unless it was) and, for the confirmation
/// (`$4`), the paid order completed, in one statement. It locks the order's
/// row as the completion will (`FOR NO KEY UPDATE`), not shared: two
/// statements that both held it shared would each wait for the other to
/// let go before completing the order, a deadlock.
static SENT_LOCALLY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH current AS (SELECT status FROM orders WHERE order_id = $1 FOR NO KEY UPDATE),
              sent AS (
                  INSERT INTO notifications (order_id, kind, recipient, status, attempts, sent_at)
                  SELECT $1, $2, $3, 'SENT', 1, now()
                   WHERE NOT $4 OR (SELECT status FROM current) IN ('PAID', 'COMPLETED')
                  ON CONFLICT (order_id, kind) DO UPDATE
                     SET status = 'SENT', attempts = notifications.attempts + 1,
                         sent_at = now(), last_error = NULL
                   WHERE notifications.status <> 'SENT'
                  RETURNING 1),
              completed AS ({} AND $4 RETURNING 1)
         SELECT (SELECT status FROM current) AS order_status,
                (SELECT count(*) FROM sent) AS sent,
                EXISTS (SELECT 1 FROM completed) OR (SELECT status FROM current) = 'COMPLETED'
                    AS completed",
        super::transitions::COMPLETED
    )
});

pub struct Notifications {
    db: Connections,
    notifier: Box<dyn Notifier>,
}

impl Notifications {
    pub fn new(db: Connections, notifier: Box<dyn Notifier>) -> Self {
        Self { db, notifier }
    }

    /// Sends the notification unless it was already sent. Returns whether
    /// it was sent now (false: sent before). With `completes_order` (the
    /// confirmation), a sent notice also marks the paid order `COMPLETED`;
    /// an order that ended otherwise gets no confirmation.
    ///
    /// A notice leaving the process is an outbox: recorded and claimed in
    /// one statement, delivered with no transaction open and no connection
    /// held, then recorded `SENT` (or `FAILED`, with the error, returned as
    /// transient). A hung endpoint costs its timeout, never a database
    /// connection. While one execution delivers, another finds the notice
    /// claimed and tries again later; the `Idempotency-Key` header lets a
    /// receiver drop a repeat after a crash between delivery and record.
    pub async fn send(
        &self,
        n: &Notification,
        completes_order: bool,
    ) -> Result<bool, ServiceError> {
        if self.notifier.is_local() {
            return self.send_local(n, completes_order).await;
        }
        if !self.claim(n, completes_order).await? {
            return Ok(false);
        }
        let delivered = self.notifier.deliver(n).await;
        let completed: bool = sqlx::query_scalar(&DELIVERED)
            .bind(n.order_id.as_str())
            .bind(n.kind.as_str())
            .bind(delivered.is_ok())
            .bind(delivered.as_ref().err().map(|e| e.to_string()))
            .bind(completes_order)
            .bind(matches!(delivered, Err(Undelivered::Unknown(_))))
            .fetch_one(&mut self.db.acquire().await?)
            .await?;
        delivered.map_err(|e| ServiceError::Transient(e.into()))?;
        if completes_order && !completed {
            // Ended otherwise meanwhile (only a concurrent execution can).
            return Err(super::payment::ended(&n.order_id, "ended"));
        }
        Ok(true)
    }

    /// The outbox's first half, in one statement that holds no lock once it
    /// returns: records the notice unless it exists, and claims it for this
    /// delivery (`SENDING`, with a lease) unless it was sent or another
    /// execution is delivering it. A confirmation is only recorded for a
    /// paid order. `false`: it was sent before.
    async fn claim(&self, n: &Notification, completes_order: bool) -> Result<bool, ServiceError> {
        let row = sqlx::query(
            "WITH current AS (SELECT status FROM orders WHERE order_id = $1 FOR SHARE),
                  claimed AS (
                      INSERT INTO notifications (order_id, kind, recipient, status, claimed_until)
                      SELECT $1, $2, $3, 'SENDING', now() + make_interval(secs => $5)
                       WHERE NOT $4 OR (SELECT status FROM current) IN ('PAID', 'COMPLETED')
                      ON CONFLICT (order_id, kind) DO UPDATE
                         SET status = 'SENDING', claimed_until = EXCLUDED.claimed_until
                       WHERE notifications.status IN ('PENDING', 'FAILED', 'UNKNOWN')
                          OR (notifications.status = 'SENDING' AND notifications.claimed_until < now())
                      RETURNING 1)
             SELECT (SELECT status FROM current) AS order_status,
                    (SELECT count(*) FROM claimed) AS claimed,
                    (SELECT status FROM notifications WHERE order_id = $1 AND kind = $2) AS status,
                    (SELECT to_char(claimed_until, 'HH24:MI:SS') FROM notifications
                      WHERE order_id = $1 AND kind = $2) AS claimed_until",
        )
        .bind(n.order_id.as_str())
        .bind(n.kind.as_str())
        .bind(n.recipient.as_ref().map(|r| r.as_str()))
        .bind(completes_order)
        .bind(self.notifier.lease().as_secs_f64())
        .fetch_one(&mut self.db.acquire().await?)
        .await?;
        if row.try_get::<i64, _>("claimed")? == 1 {
            return Ok(true);
        }
        let order_status: Option<String> = row.try_get("order_status")?;
        let status: Option<String> = row.try_get("status")?;
        match (order_status.as_deref(), status.as_deref()) {
            (None, _) => Err(ServiceError::Transient(anyhow::anyhow!(
                "order {} is not recorded",
                n.order_id
            ))),
            (Some(order @ ("FAILED" | "CANCELLED")), _) if completes_order => {
                Err(super::payment::ended(&n.order_id, order))
            }
            (_, Some("SENT")) => Ok(false),
            // Claimed by another execution: wait for its lease, not as an
            // attempt (it may be one whose result was lost).
            _ => {
                let until: Option<String> = row.try_get("claimed_until")?;
                Err(ServiceError::Unavailable(anyhow::anyhow!(
                    "the {} notice of order {} is being delivered by another execution \
                     (claimed until {} UTC)",
                    n.kind.as_str().to_ascii_lowercase(),
                    n.order_id,
                    until.as_deref().unwrap_or("now")
                )))
            }
        }
    }

    /// A local notice: one statement records it sent (unless it was) and,
    /// for the confirmation, completes the paid order; the notice is
    /// delivered only by the call that recorded it. The statement decides
    /// alone, so no transaction is held open, and a concurrent call waits
    /// on the row and then finds it sent. A crash between the two loses a
    /// log line, never sends one twice.
    async fn send_local(
        &self,
        n: &Notification,
        completes_order: bool,
    ) -> Result<bool, ServiceError> {
        let row = sqlx::query(&SENT_LOCALLY)
            .bind(n.order_id.as_str())
            .bind(n.kind.as_str())
            .bind(n.recipient.as_ref().map(|r| r.as_str()))
            .bind(completes_order)
            .fetch_one(&mut self.db.acquire().await?)
            .await?;
        let order_status: Option<String> = row.try_get("order_status")?;
        match order_status.as_deref() {
            None => {
                return Err(ServiceError::Transient(anyhow::anyhow!(
                    "order {} is not recorded",
                    n.order_id
                )));
            }
            Some(status) if completes_order && !row.try_get::<bool, _>("completed")? => {
                return Err(super::payment::ended(&n.order_id, status));
            }
            Some(_) => {}
        }
        if row.try_get::<i64, _>("sent")? == 0 {
            return Ok(false);
        }
        self.notifier
            .deliver(n)
            .await
            .map_err(|e| ServiceError::Transient(e.into()))?;
        Ok(true)
    }

    /// What became of the order's confirmation, as recorded (`None`: none
    /// was recorded).
    pub async fn confirmation(&self, order_id: &OrderId) -> Result<Option<Delivery>, ServiceError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT notice_delivery($1, 'CONFIRMATION')")
                .bind(order_id.as_str())
                .fetch_one(&mut self.db.acquire().await?)
                .await?;
        status
            .map(|s| s.parse())
            .transpose()
            .map_err(|e: crate::domain::RuleError| ServiceError::Transient(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_stripes_scheme() {
        // HMAC-SHA256("whsec", "1700000000.{}"), computed independently
        // (Python's hmac module).
        let sig = signature(&SecretString::from("whsec"), 1_700_000_000, b"{}");
        assert_eq!(
            sig,
            "t=1700000000,v1=\
             7d44587dddbaf4c7f70fef20f48cd594834ffea1641e3ac227b84408298738af"
        );
    }
}
