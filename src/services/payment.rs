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
    /// Cancels the payment under a capture's idempotency key, whose result
    /// was never recorded: refunds it if it was charged (the refund's
    /// reference), and makes sure it is not charged later (a real gateway
    /// cancels the payment intent).
    async fn void(&self, idempotency_key: &str) -> Result<Option<String>, GatewayError>;
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

    /// The simulation keeps no payments: there is nothing to cancel.
    async fn void(&self, _idempotency_key: &str) -> Result<Option<String>, GatewayError> {
        Ok(None)
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
    /// the order's total. The ledger records the capture (`PENDING`) under
    /// the order's lock before the gateway is asked, so that an ending that
    /// comes meanwhile knows to resolve it; an order that holds no stock,
    /// or has ended, is not charged.
    pub async fn capture(&self, order: &Order, attempt: u32) -> Result<Captured, ServiceError> {
        let key = capture_key(order.id());
        let Some(row) = sqlx::query(INTENT)
            .bind(order.id().as_str())
            .bind(&key)
            .bind(attempt as i32)
            .fetch_optional(&mut self.db.acquire().await?)
            .await?
        else {
            return Err(ServiceError::Transient(anyhow::anyhow!(
                "order {} is not recorded yet",
                order.id()
            )));
        };
        let order_status: String = row.try_get("order_status")?;
        let refused = |why: String| {
            ServiceError::business(FailureCode::Internal, format!("order {} {why}", order.id()))
        };
        match row.try_get::<Option<String>, _>("status")?.as_deref() {
            Some("CAPTURED") => {
                return Ok(Captured {
                    gateway_ref: row.try_get("gateway_ref")?,
                    already: true,
                });
            }
            Some("PENDING") if !is_ended(&order_status) => {}
            Some("DECLINED") => {
                let reason: Option<String> = row.try_get("decline_reason")?;
                return Err(ServiceError::business(
                    FailureCode::PaymentDeclined,
                    reason.unwrap_or_else(|| "card was declined".into()),
                ));
            }
            Some(other @ ("REFUNDED" | "VOIDED")) => {
                let other = other.to_ascii_lowercase();
                return Err(refused(format!(
                    "had its payment {other}; it is not charged again"
                )));
            }
            _ if is_ended(&order_status) => return Err(ended(order.id(), &order_status)),
            _ => {
                let reserved: Option<rust_decimal::Decimal> = row.try_get("reserved_total")?;
                return Err(refused(match reserved {
                    None => "holds no reserved stock; nothing is charged".into(),
                    Some(total) => format!(
                        "'s reserved items cost {total} at catalog prices, not its total {}; \
                         nothing is charged",
                        order.total_amount()
                    ),
                }));
            }
        }
        let request = CaptureRequest {
            idempotency_key: key.clone(),
            amount: order.total_amount(),
            currency: order.currency(),
            method: order.payment_method(),
            attempt,
        };
        let gateway_ref = match self.gateway.capture(&request).await {
            Ok(gateway_ref) => gateway_ref,
            Err(GatewayError::Declined(reason)) => {
                sqlx::query(
                    "UPDATE payments SET status = 'DECLINED', decline_reason = $2, attempt = $3
                      WHERE idempotency_key = $1 AND status = 'PENDING'",
                )
                .bind(&key)
                .bind(&reason)
                .bind(attempt as i32)
                .execute(&mut self.db.acquire().await?)
                .await?;
                return Err(ServiceError::business(FailureCode::PaymentDeclined, reason));
            }
            Err(GatewayError::Unavailable(reason)) => {
                return Err(ServiceError::Transient(anyhow::anyhow!(reason)));
            }
        };
        let row = sqlx::query(&CAPTURED)
            .bind(order.id().as_str())
            .bind(&key)
            .bind(&gateway_ref)
            .bind(attempt as i32)
            .fetch_one(&mut self.db.acquire().await?)
            .await?;
        if !row.try_get::<bool, _>("captured")? {
            // Voided by an ending while the gateway charged: give it back.
            self.gateway
                .refund(&gateway_ref, &format!("{}/refund", order.id()))
                .await
                .map_err(|e| ServiceError::Transient(anyhow::anyhow!("refund: {e}")))?;
            return Err(ended(order.id(), "ended"));
        }
        if !row.try_get::<bool, _>("paid")? {
            // Ended while the gateway charged: the ending refunds it.
            return Err(ended(order.id(), "ended"));
        }
        Ok(Captured {
            gateway_ref,
            already: false,
        })
    }

    /// Gives back what the order's payment holds: refunds a capture, or
    /// voids one whose result was never recorded (`PENDING`). Returns the
    /// amount refunded now (`None`: nothing was charged, or it was already
    /// given back).
    pub async fn refund(&self, order_id: &OrderId) -> Result<Option<Money>, ServiceError> {
        let Some(row) = sqlx::query(
            "SELECT payment_id, status, gateway_ref, amount, idempotency_key FROM payments
              WHERE order_id = $1 AND status IN ('CAPTURED', 'PENDING')",
        )
        .bind(order_id.as_str())
        .fetch_optional(&mut self.db.acquire().await?)
        .await?
        else {
            return Ok(None);
        };
        let payment_id: i64 = row.try_get("payment_id")?;
        let unavailable = |e: GatewayError| ServiceError::Transient(anyhow::anyhow!("refund: {e}"));
        let refunded = match row.try_get::<String, _>("status")?.as_str() {
            "CAPTURED" => {
                let gateway_ref: String = row.try_get("gateway_ref")?;
                self.gateway
                    .refund(&gateway_ref, &format!("{order_id}/refund"))
                    .await
                    .map_err(unavailable)?;
                true
            }
            _ => {
                let key: String = row.try_get("idempotency_key")?;
                self.gateway
                    .void(&key)
                    .await
                    .map_err(unavailable)?
                    .is_some()
            }
        };
        let changed = sqlx::query(
            "UPDATE payments
                SET status = CASE WHEN $2 THEN 'REFUNDED' ELSE 'VOIDED' END,
                    refunded_at = CASE WHEN $2 THEN now() END
              WHERE payment_id = $1 AND status IN ('CAPTURED', 'PENDING')",
        )
        .bind(payment_id)
        .bind(refunded)
        .execute(&mut self.db.acquire().await?)
        .await?
        .rows_affected();
        let amount = Money::try_from(row.try_get::<rust_decimal::Decimal, _>("amount")?)
            .map_err(|e| ServiceError::Transient(anyhow::anyhow!("stored amount: {e}")))?;
        Ok((changed == 1 && refunded).then_some(amount))
    }
}

/// The capture's intent, recorded under the order's lock with a look at the
/// ledger, whether the order is still open and what its reservations cost:
/// a `PENDING` payment of the reserved total, when the order is open and
/// that total is the order's (`$1` order, `$2` idempotency key, `$3` attempt).
const INTENT: &str = concat!(
    "WITH o AS (
         SELECT x.order_id, x.status, x.currency, x.payment_method, x.total_amount,
                (SELECT sum(r.quantity * r.unit_price) FROM inventory_reservations r
                  WHERE r.order_id = x.order_id AND r.status = 'RESERVED') AS reserved_total
           FROM orders x WHERE x.order_id = $1 FOR UPDATE),
     pending AS (
         INSERT INTO payments (order_id, idempotency_key, amount, currency, payment_method,
                               status, attempt)
         SELECT o.order_id, $2, o.reserved_total, o.currency, o.payment_method, 'PENDING', $3
           FROM o
          WHERE o.status NOT IN ",
    crate::terminal_statuses_sql!(),
    "
            AND o.reserved_total = o.total_amount
         ON CONFLICT (idempotency_key) DO NOTHING
         RETURNING status)
     SELECT o.status AS order_status, o.reserved_total,
            COALESCE((SELECT status FROM pending), p.status) AS status,
            p.gateway_ref, p.decline_reason
       FROM o LEFT JOIN payments p ON p.idempotency_key = $2"
);

/// The gateway's answer recorded, and the order's new status unless it
/// ended meanwhile, in one statement (`$1` order, `$2` key, `$3` the
/// gateway's reference, `$4` attempt). `captured`: the intent was still
/// pending (not voided by an ending); `paid`: the order was still open.
static CAPTURED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH captured AS (
             UPDATE payments SET status = 'CAPTURED', gateway_ref = $3, attempt = $4
              WHERE idempotency_key = $2 AND status = 'PENDING'
             RETURNING 1),
         paid AS ({} AND EXISTS (SELECT 1 FROM captured) RETURNING 1)
         SELECT EXISTS (SELECT 1 FROM captured) AS captured, EXISTS (SELECT 1 FROM paid) AS paid",
        super::transitions::PAID
    )
});

/// FAILED, CANCELLED or COMPLETED: nothing more is done for the order.
pub(crate) fn is_ended(status: &str) -> bool {
    crate::domain::OrderStatus::is_terminal_text(status)
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
