//! The orchestration-only baseline for `orderflow bench`: the same shape as
//! a completing `OrderWorkflow` — a settings read and four steps, each a
//! local activity carrying the order — with activities that do nothing.
//! What it costs is what Temporal itself costs; the ratio of the real
//! workflow to it is the price of the real work.

use std::sync::Arc;
use std::time::Duration;

use temporalio_common::RetryPolicy;
use temporalio_sdk::activities::{ActivityContext, ActivityError, activities};
use temporalio_sdk::workflows::{workflow, workflow_methods};
use temporalio_sdk::{LocalActivityOptions, WorkflowContext, WorkflowContextView, WorkflowResult};

use crate::domain::{Order, OrderStatus};

pub struct BaselineActivities;

#[activities]
impl BaselineActivities {
    #[activity(name = "baseline_step")]
    pub async fn step(
        self: Arc<Self>,
        _ctx: ActivityContext,
        order: Order,
    ) -> Result<Order, ActivityError> {
        Ok(order)
    }
}

#[workflow]
pub struct BaselineWorkflow {
    order: Order,
}

#[workflow_methods]
impl BaselineWorkflow {
    #[init]
    pub fn new(_ctx: &WorkflowContextView, order: Order) -> Self {
        Self { order }
    }

    #[run]
    pub async fn run(ctx: &mut WorkflowContext<Self>) -> WorkflowResult<OrderStatus> {
        let options = || {
            LocalActivityOptions::builder()
                .start_to_close_timeout(Duration::from_secs(30))
                .retry_policy(RetryPolicy::builder().maximum_attempts(1).build())
                .build()
        };
        let mut order = ctx.state(|s| s.order.clone());
        // settings and the four steps: five local activities, as an order
        // that completes runs them.
        for _ in 0..5 {
            order = ctx
                .execute_local_activity(BaselineActivities::step, order, options())
                .await?;
        }
        Ok(OrderStatus::Completed)
    }
}
