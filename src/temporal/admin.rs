//! The admin calls: the server's version, the namespace, the search
//! attributes, the workers polling a queue. For `doctor` and the worker;
//! each answers in orderflow's types, a failure as a [`TemporalError`].

use std::collections::HashMap;

use temporalio_client::tonic::{self, IntoRequest as _};
use temporalio_common::protos::temporal::api::enums::v1::{
    IndexedValueType, TaskQueueKind, TaskQueueType,
};
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};
use temporalio_common::protos::temporal::api::taskqueue::v1::TaskQueue;
use temporalio_common::protos::temporal::api::workflowservice::v1::{
    DescribeNamespaceRequest, DescribeTaskQueueRequest, GetSystemInfoRequest,
};

use super::client::OrderClient;
use super::trouble::TemporalError;
use crate::workflow::search::{DOUBLES, NAMES};

/// A worker polling a task queue: its identity and when it last polled.
#[derive(Debug, Clone)]
pub struct Poller {
    pub identity: String,
    pub last_poll: Option<chrono::DateTime<chrono::Utc>>,
}

impl OrderClient {
    /// A failed admin call, told: Temporal's trouble, or what it answered.
    async fn admin_failed(&self, doing: &str, status: tonic::Status) -> TemporalError {
        match self.explain(Some(doing.to_owned()), &status).await {
            Some(trouble) => trouble,
            None => self.answered(doing, &status),
        }
    }

    /// The server's version (`GetSystemInfo`): proves it answers.
    pub async fn server_version(&self) -> Result<String, TemporalError> {
        let info = self
            .client
            .connection()
            .workflow_service()
            .get_system_info(GetSystemInfoRequest::default().into_request())
            .await;
        match info {
            Ok(info) => Ok(info.into_inner().server_version),
            Err(status) => Err(self.admin_failed("asking its version", status).await),
        }
    }

    /// Whether the namespace exists (`DescribeNamespace`).
    pub async fn namespace_exists(&self) -> Result<bool, TemporalError> {
        let request = DescribeNamespaceRequest {
            namespace: self.namespace().to_owned(),
            ..Default::default()
        };
        match self
            .client
            .connection()
            .workflow_service()
            .describe_namespace(request.into_request())
            .await
        {
            Ok(_) => Ok(true),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(false),
            Err(status) => Err(self.admin_failed("describing the namespace", status).await),
        }
    }

    /// How long the namespace keeps a closed workflow (`None`: it does not
    /// say); a workflow closed longer ago is gone, as it should be.
    pub async fn retention(&self) -> Result<Option<std::time::Duration>, TemporalError> {
        let request = DescribeNamespaceRequest {
            namespace: self.namespace().to_owned(),
            ..Default::default()
        };
        match self
            .client
            .connection()
            .workflow_service()
            .describe_namespace(request.into_request())
            .await
        {
            Ok(described) => Ok(described
                .into_inner()
                .config
                .and_then(|c| c.workflow_execution_retention_ttl)
                .and_then(|ttl| std::time::Duration::try_from(ttl).ok())),
            Err(status) => Err(self.admin_failed("describing the namespace", status).await),
        }
    }

    /// The workers polling `task_queue` for workflow tasks.
    pub async fn pollers(&self, task_queue: &str) -> Result<Vec<Poller>, TemporalError> {
        let request = DescribeTaskQueueRequest {
            namespace: self.namespace().to_owned(),
            task_queue: Some(TaskQueue {
                name: task_queue.to_owned(),
                kind: TaskQueueKind::Normal as i32,
                ..Default::default()
            }),
            task_queue_type: TaskQueueType::Workflow as i32,
            ..Default::default()
        };
        let described = match self
            .client
            .connection()
            .workflow_service()
            .describe_task_queue(request.into_request())
            .await
        {
            Ok(described) => described.into_inner(),
            Err(status) => {
                let doing = format!("describing task queue {task_queue}");
                return Err(self.admin_failed(&doing, status).await);
            }
        };
        Ok(described
            .pollers
            .into_iter()
            .map(|p| Poller {
                last_poll: p
                    .last_access_time
                    .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)),
                identity: p.identity,
            })
            .collect())
    }

    /// The search attributes the namespace lacks.
    pub async fn missing_search_attributes(&self) -> Result<Vec<&'static str>, TemporalError> {
        let request = ListSearchAttributesRequest {
            namespace: self.namespace().to_owned(),
        };
        let listed = self
            .client
            .connection()
            .operator_service()
            .list_search_attributes(request.into_request())
            .await;
        let listed = match listed {
            Ok(listed) => listed.into_inner(),
            Err(status) => {
                return Err(self
                    .admin_failed("listing its search attributes", status)
                    .await);
            }
        };
        Ok(NAMES
            .into_iter()
            .filter(|name| !listed.custom_attributes.contains_key(*name))
            .collect())
    }

    /// Makes sure the namespace has orderflow's search attributes. `false`
    /// when they are missing and the server would not add them (Temporal
    /// Cloud takes them from its own tools): the exact command to create
    /// them is logged, and orders run on without them.
    pub async fn ensure_search_attributes(&self) -> bool {
        let namespace = self.namespace();
        let missing = match self.missing_search_attributes().await {
            Ok(missing) if missing.is_empty() => return true,
            Ok(missing) => missing,
            Err(e) => {
                tracing::warn!(
                    "cannot list the namespace's search attributes ({}); orders run without \
                     them. Create them with: {}",
                    e.said,
                    create_command(namespace, &NAMES)
                );
                return false;
            }
        };
        let request = AddSearchAttributesRequest {
            search_attributes: missing
                .iter()
                .map(|name| {
                    let kind = match DOUBLES.contains(name) {
                        true => IndexedValueType::Double,
                        false => IndexedValueType::Keyword,
                    };
                    (name.to_string(), kind as i32)
                })
                .collect::<HashMap<_, _>>(),
            namespace: namespace.to_owned(),
        };
        let added = self
            .client
            .connection()
            .operator_service()
            .add_search_attributes(request.into_request())
            .await;
        match added {
            Ok(_) => {
                tracing::info!(added = %missing.join(", "), "registered the orders' search attributes");
                true
            }
            // Another worker added them first.
            Err(status) if status.code() == tonic::Code::AlreadyExists => true,
            Err(status) => {
                let e = self.admin_failed("adding search attributes", status).await;
                tracing::warn!(
                    "the server would not add the search attributes {missing:?} ({}); orders \
                     run without them. Create them with: {}",
                    e.said,
                    create_command(namespace, &missing)
                );
                false
            }
        }
    }
}

/// The Temporal CLI command that creates the attributes `missing` names.
pub fn create_command(namespace: &str, missing: &[&str]) -> String {
    let mut command = format!("temporal operator search-attribute create --namespace {namespace}");
    for name in NAMES.iter().filter(|n| missing.contains(n)) {
        let kind = match DOUBLES.contains(name) {
            true => "Double",
            false => "Keyword",
        };
        command.push_str(&format!(" --name {name} --type {kind}"));
    }
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_creates_what_is_missing() {
        assert_eq!(
            create_command("orders.a1b2c", &["OrderStatus", "OrderTotal"]),
            "temporal operator search-attribute create --namespace orders.a1b2c \
             --name OrderStatus --type Keyword --name OrderTotal --type Double"
        );
    }
}
