//! The worker's metrics (SPEC §7, "Operations"): the Temporal SDK's own
//! (`temporal_…`: task latencies, slots, polls) and orderflow's, in one
//! Prometheus registry. The registry is the SDK's exporter, listening on a
//! loopback port of its own; the worker's `/metrics` serves what it says.
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `orderflow_orders_total` | `outcome` (completed, failed, cancelled), `code` | orders ended |
//! | `orderflow_step_duration_seconds` | `step` | one attempt of a step (histogram) |
//! | `orderflow_step_attempts_total` | `step`, `result` (ok, business, transient, unavailable) | attempts |
//! | `orderflow_captured_cents_total` | `currency` | money captured, in cents |
//! | `orderflow_refunded_cents_total` | `currency` | money refunded, in cents |
//! | `orderflow_notifications_total` | `kind`, `result` (sent, failed) | notice deliveries |

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use temporalio_common::telemetry::metrics::{
    CoreMeter, Counter, HistogramDuration, MetricAttributes, MetricKeyValue, MetricParameters,
    NewAttributes, NoOpCoreMeter,
};
use temporalio_common::telemetry::{PrometheusExporterOptions, start_prometheus_metric_exporter};

use crate::domain::{Currency, FailureCode, Money, OrderStatus, Step};

/// orderflow's instruments, on the registry the SDK's metrics share.
pub struct Metrics {
    meter: Arc<dyn CoreMeter>,
    /// Where the registry is served (loopback); `None` when metrics are off.
    pub registry_addr: Option<SocketAddr>,
    orders: Counter,
    step_duration: HistogramDuration,
    attempts: Counter,
    captured: Counter,
    refunded: Counter,
    notifications: Counter,
}

impl Metrics {
    /// Starts the registry (the SDK's Prometheus exporter on a loopback port).
    pub fn start() -> anyhow::Result<Self> {
        let options = PrometheusExporterOptions::builder()
            .socket_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
            .counters_total_suffix(true)
            .use_seconds_for_durations(true)
            .build();
        let started = start_prometheus_metric_exporter(options)?;
        Ok(Self::on(started.meter, Some(started.bound_addr)))
    }

    /// Instruments that record nothing (metrics off).
    pub fn off() -> Self {
        Self::on(Arc::new(NoOpCoreMeter), None)
    }

    fn on(meter: Arc<dyn CoreMeter>, registry_addr: Option<SocketAddr>) -> Self {
        let p = |name: &'static str, description: &'static str| {
            MetricParameters::builder()
                .name(name)
                .description(description)
                .build()
        };
        Self {
            orders: meter.counter(p(
                "orderflow_orders",
                "Orders ended, by outcome and failure code",
            )),
            step_duration: meter.histogram_duration(p(
                "orderflow_step_duration_seconds",
                "How long one attempt of a step took",
            )),
            attempts: meter.counter(p(
                "orderflow_step_attempts",
                "Attempts of each step, by result",
            )),
            captured: meter.counter(p("orderflow_captured_cents", "Money captured, in cents")),
            refunded: meter.counter(p("orderflow_refunded_cents", "Money refunded, in cents")),
            notifications: meter.counter(p(
                "orderflow_notifications",
                "Notice deliveries, by kind and result",
            )),
            meter,
            registry_addr,
        }
    }

    /// The meter the SDK's worker records its own metrics on.
    pub fn core_meter(&self) -> Option<Arc<dyn CoreMeter>> {
        self.registry_addr.map(|_| self.meter.clone())
    }

    fn labels(&self, pairs: &[(&str, &str)]) -> MetricAttributes {
        self.meter.new_attributes(NewAttributes::from(
            pairs
                .iter()
                .map(|(k, v)| MetricKeyValue::new(*k, v.to_string())),
        ))
    }

    pub fn order_ended(&self, status: OrderStatus, code: Option<FailureCode>) {
        let outcome = status.as_str().to_ascii_lowercase();
        let code = code.map_or("", FailureCode::as_str);
        self.orders
            .add(1, &self.labels(&[("outcome", &outcome), ("code", code)]));
    }

    /// One attempt of `step`: `result` is ok, business, transient or unavailable.
    pub fn attempt(&self, step: Step, result: &str, took: Duration) {
        let labels = self.labels(&[("step", step.as_str()), ("result", result)]);
        self.attempts.add(1, &labels);
        self.step_duration
            .record(took, &self.labels(&[("step", step.as_str())]));
    }

    fn cents(money: Money) -> u64 {
        (money.as_decimal() * rust_decimal::Decimal::ONE_HUNDRED)
            .try_into()
            .unwrap_or(0)
    }

    pub fn captured(&self, amount: Money, currency: Currency) {
        let labels = self.labels(&[("currency", currency.as_str())]);
        self.captured.add(Self::cents(amount), &labels);
    }

    pub fn refunded(&self, amount: Money, currency: Currency) {
        let labels = self.labels(&[("currency", currency.as_str())]);
        self.refunded.add(Self::cents(amount), &labels);
    }

    pub fn notification(&self, kind: &str, sent: bool) {
        let result = if sent { "sent" } else { "failed" };
        self.notifications
            .add(1, &self.labels(&[("kind", kind), ("result", result)]));
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("registry_addr", &self.registry_addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_counted_in_cents() {
        assert_eq!(Metrics::cents(Money::parse("1299.99").unwrap()), 129_999);
        assert_eq!(Metrics::cents(Money::parse("0.10").unwrap()), 10);
    }
}
