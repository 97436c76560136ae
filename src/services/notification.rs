//! Notifications: each (order, kind) is recorded in `notifications` and
//! delivered once — to a webhook when `ORDERFLOW_NOTIFY_WEBHOOK` is set, with
//! an `Idempotency-Key` header so the receiver can drop a repeat, and to the
//! log otherwise.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::ServiceError;
use crate::db::pool::Connections;
use crate::domain::{Currency, CustomerEmail, Money, OrderId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NotificationKind {
    Confirmation,
    Cancellation,
    Failure,
}

impl NotificationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmation => "CONFIRMATION",
            Self::Cancellation => "CANCELLATION",
            Self::Failure => "FAILURE",
        }
    }
}

/// One message to a customer; also the webhook's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub order_id: OrderId,
    pub kind: NotificationKind,
    pub recipient: Option<CustomerEmail>,
    pub total_amount: Money,
    pub currency: Currency,
    pub message: String,
}

impl Notification {
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}/{}",
            self.order_id,
            self.kind.as_str().to_ascii_lowercase()
        )
    }
}

#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one message; an error means it may be tried again.
    async fn deliver(&self, notification: &Notification) -> anyhow::Result<()>;

    /// True when delivery stays in this process and cannot fail (the log).
    /// Such a notice is marked sent in one statement and then delivered;
    /// one that leaves the process is delivered under the row's lock.
    fn is_local(&self) -> bool {
        false
    }
}

/// Delivery into the worker's log (no webhook configured).
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn deliver(&self, n: &Notification) -> anyhow::Result<()> {
        tracing::info!(
            order_id = %n.order_id,
            kind = n.kind.as_str(),
            recipient = n.recipient.as_ref().map(|r| r.as_str()).unwrap_or("-"),
            "notification: {}",
            n.message
        );
        Ok(())
    }

    fn is_local(&self) -> bool {
        true
    }
}

/// POSTs each notification as JSON to a URL.
pub struct WebhookNotifier {
    url: reqwest::Url,
    http: reqwest::Client,
}

impl WebhookNotifier {
    pub fn new(url: reqwest::Url, timeout: Duration) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(Self { url, http })
    }
}

#[async_trait]
impl Notifier for WebhookNotifier {
    async fn deliver(&self, n: &Notification) -> anyhow::Result<()> {
        let response = self
            .http
            .post(self.url.clone())
            .header("Idempotency-Key", n.idempotency_key())
            .json(n)
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("webhook {}: {e}", self.url))?;
        let status = response.status();
        anyhow::ensure!(
            status.is_success(),
            "webhook {} answered {status}",
            self.url
        );
        Ok(())
    }
}

const COMPLETE_ORDER: &str =
    "UPDATE orders SET status = 'COMPLETED', step = 'send_notification' WHERE order_id = $1";

pub struct Notifications {
    db: Connections,
    notifier: Box<dyn Notifier>,
}

impl Notifications {
    pub fn new(db: Connections, notifier: Box<dyn Notifier>) -> Self {
        Self { db, notifier }
    }

    /// Sends the notification unless it was already sent. Returns whether
    /// it was sent now (false: sent before). A failed delivery is recorded
    /// (attempts, last error, `FAILED`) and returned as transient. With
    /// `completes_order` (the confirmation), a sent notice also marks the
    /// order `COMPLETED`, in the same transaction.
    pub async fn send(
        &self,
        n: &Notification,
        completes_order: bool,
    ) -> Result<bool, ServiceError> {
        if self.notifier.is_local() {
            return self.send_local(n, completes_order).await;
        }
        let mut conn = self.db.acquire().await?;
        let mut tx = conn.begin().await?;
        // Record it, or lock the existing record (DO UPDATE takes the row
        // lock), so two concurrent executions cannot both deliver.
        let status: String = sqlx::query_scalar(
            "INSERT INTO notifications (order_id, kind, recipient) VALUES ($1, $2, $3)
             ON CONFLICT (order_id, kind) DO UPDATE SET recipient = notifications.recipient
             RETURNING status",
        )
        .bind(n.order_id.as_str())
        .bind(n.kind.as_str())
        .bind(n.recipient.as_ref().map(|r| r.as_str()))
        .fetch_one(&mut *tx)
        .await?;
        if status == "SENT" {
            if completes_order {
                sqlx::query(COMPLETE_ORDER)
                    .bind(n.order_id.as_str())
                    .execute(&mut *tx)
                    .await?;
            }
            // Ended here rather than by dropping it: a connection whose
            // transaction is left to roll back is closed (`Lease`).
            tx.commit().await?;
            return Ok(false);
        }
        let delivered = self.notifier.deliver(n).await;
        sqlx::query(
            "WITH noted AS (
                 UPDATE notifications
                    SET attempts = attempts + 1,
                        status = CASE WHEN $3 THEN 'SENT' ELSE 'FAILED' END,
                        sent_at = CASE WHEN $3 THEN now() END,
                        last_error = $4
                  WHERE order_id = $1 AND kind = $2
                 RETURNING 1)
             UPDATE orders SET status = 'COMPLETED', step = 'send_notification'
              WHERE order_id = $1 AND $3 AND $5",
        )
        .bind(n.order_id.as_str())
        .bind(n.kind.as_str())
        .bind(delivered.is_ok())
        .bind(delivered.as_ref().err().map(|e| format!("{e:#}")))
        .bind(completes_order)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        delivered.map(|()| true).map_err(ServiceError::Transient)
    }

    /// A local notice: one statement records it sent (unless it was) and,
    /// for the confirmation, completes the order; the notice is delivered
    /// only by the call that recorded it. The statement decides alone, so
    /// no transaction is held open, and a concurrent call waits on the
    /// row and then finds it sent. A crash between the two loses a log
    /// line, never sends one twice.
    async fn send_local(
        &self,
        n: &Notification,
        completes_order: bool,
    ) -> Result<bool, ServiceError> {
        let recorded: i64 = sqlx::query_scalar(
            "WITH sent AS (
                 INSERT INTO notifications (order_id, kind, recipient, status, attempts, sent_at)
                 VALUES ($1, $2, $3, 'SENT', 1, now())
                 ON CONFLICT (order_id, kind) DO UPDATE
                    SET status = 'SENT', attempts = notifications.attempts + 1,
                        sent_at = now(), last_error = NULL
                  WHERE notifications.status <> 'SENT'
                 RETURNING 1),
             completed AS (
                 UPDATE orders SET status = 'COMPLETED', step = 'send_notification'
                  WHERE order_id = $1 AND $4
                 RETURNING 1)
             SELECT count(*) FROM sent",
        )
        .bind(n.order_id.as_str())
        .bind(n.kind.as_str())
        .bind(n.recipient.as_ref().map(|r| r.as_str()))
        .bind(completes_order)
        .fetch_one(&mut self.db.acquire().await?)
        .await?;
        if recorded == 0 {
            return Ok(false);
        }
        self.notifier
            .deliver(n)
            .await
            .map_err(ServiceError::Transient)?;
        Ok(true)
    }
}
