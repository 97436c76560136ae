//! Payments: a simulated gateway behind a trait (SPEC §5) and a ledger in
//! PostgreSQL keyed by an idempotency key per order, so that a retried or
//! re-executed capture never charges twice and a refund happens once.

use std::sync::LazyLock;

use async_trait::async_trait;
use sqlx::Row;

use super::ServiceError;
use crate::db::pool::Connections;
use crate::domain::{Currency, FailureCode, Money, Order, OrderId, PaymentMethod};

/// What the gateway is asked to charge.
#[derive(Debug, Clone)]
pub struct CaptureRequest {
    /// The same key for every attempt at this order's capture: a real
    /// gateway returns the first result instead of charging again.
    pub idempotency_key: String,
    pub amount: Money,
    pub currency: Currency,
    pub method: PaymentMethod,
    /// 1 for the first try of this step, 2 for the first retry, …
    pub attempt: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The card was refused: final.
    #[error("{0}")]
    Declined(String),
    /// The gateway could not answer: may pass.
    #[error("{0}")]
    Unavailable(String),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    /// Charges; returns the gateway's reference for the charge.
    async fn capture(&self, request: &CaptureRequest) -> Result<String, GatewayError>;
    /// Refunds a charge in full; idempotent per `idempotency_key`.
    async fn refund(
        &self,
        gateway_ref: &str,
        idempotency_key: &str,
    ) -> Result<String, GatewayError>;
}

/// The Stripe-like test tokens of SPEC §5. References derive from the
/// idempotency key, as a real gateway's would repeat the first answer.
#[derive(Debug, Default, Clone, Copy)]
pub struct SimulatedGateway;

#[async_trait]
impl PaymentGateway for SimulatedGateway {
    async fn capture(&self, request: &CaptureRequest) -> Result<String, GatewayError> {
        match request.method {
            PaymentMethod::Card => {}
            PaymentMethod::CardDeclined => {
                return Err(GatewayError::Declined("card was declined".into()));
            }
            PaymentMethod::CardInsufficientFunds => {
                return Err(GatewayError::Declined(
                    "card was declined: insufficient funds".into(),
                ));
            }
            PaymentMethod::CardFlaky if request.attempt < 3 => {
                return Err(GatewayError::Unavailable(format!(
                    "gateway timed out (flaky card, attempt {})",
                    request.attempt
                )));
            }
            PaymentMethod::CardFlaky => {}
            PaymentMethod::CardUnavailable => {
                return Err(GatewayError::Unavailable(
                    "payment gateway unavailable".into(),
                ));
            }
        }
        Ok(format!("sim_ch_{}", request.idempotency_key))
    }

    async fn refund(
        &self,
        gateway_ref: &str,
        _idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        Ok(format!("sim_re_{gateway_ref}"))
    }
}

/// The outcome of a capture call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captured {
    pub gateway_ref: String,
    /// True when this order was already captured (a retry or replay).
    pub already: bool,
}

pub struct Payments {
    db: Connections,
    gateway: Box<dyn PaymentGateway>,
}

fn capture_key(order_id: &OrderId) -> String {
    format!("{order_id}/capture")
}

impl Payments {
    pub fn new(db: Connections, gateway: Box<dyn PaymentGateway>) -> Self {
        Self { db, gateway }
    }

    /// Charges the order once: what the catalog says its reserved items
    /// cost (Σ quantity × the price each was reserved at), which must be
    /// the order's total. An order that holds no stock, or has already
    /// ended, is not charged; one that ends while the gateway answers is
    /// refunded at once.
    pub async fn capture(&self, order: &Order, attempt: u32) -> Result<Captured, ServiceError> {
        let key = capture_key(order.id());
        // The ledger, whether the order is still open, and what its
        // reservations cost, in one look.
        let Some(row) = sqlx::query(
            "SELECT o.status AS order_status, p.status, p.gateway_ref,
                    (SELECT sum(r.quantity * r.unit_price) FROM inventory_reservations r
                      WHERE r.order_id = o.order_id AND r.status = 'RESERVED') AS reserved_total
               FROM orders o LEFT JOIN payments p ON p.idempotency_key = $2
              WHERE o.order_id = $1",
        )
        .bind(order.id().as_str())
        .bind(&key)
        .fetch_optional(&mut self.db.acquire().await?)
        .await?
        else {
            return Err(ServiceError::Transient(anyhow::anyhow!(
                "order {} is not recorded yet",
                order.id()
            )));
        };
        match row.try_get::<Option<String>, _>("status")?.as_deref() {
            Some("REFUNDED") => {
                return Err(ServiceError::business(
                    FailureCode::Internal,
                    format!(
                        "order {}'s payment was already refunded; it is not charged again",
                        order.id()
                    ),
                ));
            }
            Some("CAPTURED") => {
                return Ok(Captured {
                    gateway_ref: row.try_get("gateway_ref")?,
                    already: true,
                });
            }
            _ => {}
        }
        let order_status: String = row.try_get("order_status")?;
        if is_ended(&order_status) {
            return Err(ended(order.id(), &order_status));
        }
        let amount = match row.try_get::<Option<rust_decimal::Decimal>, _>("reserved_total")? {
            None => {
                return Err(ServiceError::business(
                    FailureCode::Internal,
                    format!(
                        "order {} holds no reserved stock; nothing is charged",
                        order.id()
                    ),
                ));
            }
            Some(total) if total == order.total_amount().as_decimal() => order.total_amount(),
            Some(total) => {
                return Err(ServiceError::business(
                    FailureCode::Internal,
                    format!(
                        "order {}'s reserved items cost {total} at catalog prices, not its total \
                         {}; nothing is charged",
                        order.id(),
                        order.total_amount()
                    ),
                ));
            }
        };
        let request = CaptureRequest {
            idempotency_key: key.clone(),
            amount,
            currency: order.currency(),
            method: order.payment_method(),
            attempt,
        };
        match self.gateway.capture(&request).await {
            Ok(gateway_ref) => {
                // The capture, and the order's new status unless it ended
                // meanwhile: one statement.
                let paid: bool = sqlx::query_scalar(&CAPTURE)
                    .bind(order.id().as_str())
                    .bind(&key)
                    .bind(amount.as_decimal())
                    .bind(order.currency().as_str())
                    .bind(order.payment_method().as_str())
                    .bind(&gateway_ref)
                    .bind(attempt as i32)
                    .fetch_one(&mut self.db.acquire().await?)
                    .await?;
                if !paid {
                    // Ended while the gateway charged: give the money back
                    // now, as the ending could not see this capture.
                    self.refund(order.id()).await?;
                    return Err(ended(order.id(), "ended"));
                }
                Ok(Captured {
                    gateway_ref,
                    already: false,
                })
            }
            Err(GatewayError::Declined(reason)) => {
                sqlx::query(
                    "INSERT INTO payments (order_id, idempotency_key, amount, currency, payment_method,
                                           status, decline_reason, attempt)
                     VALUES ($1, $2, $3, $4, $5, 'DECLINED', $6, $7)
                     ON CONFLICT (idempotency_key) DO NOTHING",
                )
                .bind(order.id().as_str())
                .bind(format!("{}/decline/{attempt}", order.id()))
                .bind(order.total_amount().as_decimal())
                .bind(order.currency().as_str())
                .bind(order.payment_method().as_str())
                .bind(&reason)
                .bind(attempt as i32)
                .execute(&mut self.db.acquire().await?)
                .await?;
                Err(ServiceError::business(FailureCode::PaymentDeclined, reason))
            }
            Err(GatewayError::Unavailable(reason)) => {
                Err(ServiceError::Transient(anyhow::anyhow!(reason)))
            }
        }
    }

    /// Refunds the order's capture, if it has one that is not yet refunded.
    /// Returns the amount refunded now (`None`: nothing to refund).
    pub async fn refund(&self, order_id: &OrderId) -> Result<Option<Money>, ServiceError> {
        let Some(row) = sqlx::query(
            "SELECT payment_id, gateway_ref, amount FROM payments WHERE order_id = $1 AND status = 'CAPTURED'",
        )
        .bind(order_id.as_str())
        .fetch_optional(&mut self.db.acquire().await?)
        .await?
        else {
            return Ok(None);
        };
        let payment_id: i64 = row.try_get("payment_id")?;
        let gateway_ref: String = row.try_get("gateway_ref")?;
        self.gateway
            .refund(&gateway_ref, &format!("{order_id}/refund"))
            .await
            .map_err(|e| ServiceError::Transient(anyhow::anyhow!("refund: {e}")))?;
        let refunded = sqlx::query(
            "UPDATE payments SET status = 'REFUNDED', refunded_at = now()
              WHERE payment_id = $1 AND status = 'CAPTURED'",
        )
        .bind(payment_id)
        .execute(&mut self.db.acquire().await?)
        .await?
        .rows_affected();
        let amount = Money::try_from(row.try_get::<rust_decimal::Decimal, _>("amount")?)
            .map_err(|e| ServiceError::Transient(anyhow::anyhow!("stored amount: {e}")))?;
        Ok((refunded == 1).then_some(amount))
    }
}

/// The capture and the order's new status unless it ended meanwhile: one
/// statement.
static CAPTURE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH captured AS (
             INSERT INTO payments (order_id, idempotency_key, amount, currency, payment_method,
                                   status, gateway_ref, attempt)
             VALUES ($1, $2, $3, $4, $5, 'CAPTURED', $6, $7)
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING 1),
         paid AS ({} RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM paid)",
        super::transitions::PAID
    )
});

/// FAILED, CANCELLED or COMPLETED: nothing more is done for the order.
pub(crate) fn is_ended(status: &str) -> bool {
    matches!(status, "FAILED" | "CANCELLED" | "COMPLETED")
}

/// A step asked of an order that has already ended (only a stale execution
/// can: the workflow ends an order once).
pub(crate) fn ended(order_id: &OrderId, status: &str) -> ServiceError {
    ServiceError::business(
        FailureCode::Internal,
        format!("order {order_id} has already ended ({status}); nothing more is done for it"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: PaymentMethod, attempt: u32) -> CaptureRequest {
        CaptureRequest {
            idempotency_key: "ORD-1/capture".into(),
            amount: Money::parse("10").unwrap(),
            currency: Currency::USD,
            method,
            attempt,
        }
    }

    #[tokio::test]
    async fn tokens_behave_as_the_spec_says() {
        let g = SimulatedGateway;
        assert_eq!(
            g.capture(&request(PaymentMethod::Card, 1)).await.unwrap(),
            "sim_ch_ORD-1/capture"
        );
        assert!(matches!(
            g.capture(&request(PaymentMethod::CardDeclined, 1)).await,
            Err(GatewayError::Declined(_))
        ));
        assert!(matches!(
            g.capture(&request(PaymentMethod::CardInsufficientFunds, 1))
                .await,
            Err(GatewayError::Declined(_))
        ));
        for attempt in [1, 2] {
            assert!(matches!(
                g.capture(&request(PaymentMethod::CardFlaky, attempt)).await,
                Err(GatewayError::Unavailable(_))
            ));
        }
        assert!(
            g.capture(&request(PaymentMethod::CardFlaky, 3))
                .await
                .is_ok()
        );
        for attempt in 1..=10 {
            assert!(matches!(
                g.capture(&request(PaymentMethod::CardUnavailable, attempt))
                    .await,
                Err(GatewayError::Unavailable(_))
            ));
        }
    }
}
