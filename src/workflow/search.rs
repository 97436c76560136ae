//! Search attributes on orders (SPEC §7): `OrderStatus`, `CustomerId` and
//! `FailureCode` (Keyword) and `OrderTotal` (Double), upserted at each status
//! change, so `temporal workflow list --query 'OrderStatus="FAILED"'` and the
//! Web UI filter orders. A namespace must have them before a workflow may
//! set them: the worker registers the missing ones where the server lets it
//! (a dev or self-hosted server) and tells its workflows whether they exist.

use std::collections::HashMap;

use temporalio_client::tonic::{self, IntoRequest as _};
use temporalio_common::protos::temporal::api::enums::v1::IndexedValueType;
use temporalio_common::protos::temporal::api::operatorservice::v1::{
    AddSearchAttributesRequest, ListSearchAttributesRequest,
};
use temporalio_common::search_attributes::SearchAttributeKey;

use super::client::OrderClient;

pub const ORDER_STATUS: SearchAttributeKey<String> = SearchAttributeKey::keyword("OrderStatus");
pub const CUSTOMER_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("CustomerId");
pub const FAILURE_CODE: SearchAttributeKey<String> = SearchAttributeKey::keyword("FailureCode");
pub const ORDER_TOTAL: SearchAttributeKey<f64> = SearchAttributeKey::float("OrderTotal");

/// Every attribute orderflow sets, with its type.
pub const ALL: [(&str, IndexedValueType); 4] = [
    ("OrderStatus", IndexedValueType::Keyword),
    ("CustomerId", IndexedValueType::Keyword),
    ("FailureCode", IndexedValueType::Keyword),
    ("OrderTotal", IndexedValueType::Double),
];

/// The Temporal CLI command that creates the attributes `missing` names.
pub fn create_command(namespace: &str, missing: &[&str]) -> String {
    let mut command = format!("temporal operator search-attribute create --namespace {namespace}");
    for (name, kind) in ALL.iter().filter(|(n, _)| missing.contains(n)) {
        let kind = match kind {
            IndexedValueType::Double => "Double",
            _ => "Keyword",
        };
        command.push_str(&format!(" --name {name} --type {kind}"));
    }
    command
}

/// The attributes the namespace lacks (`Err`: the server would not say).
pub async fn missing(
    client: &OrderClient,
    namespace: &str,
) -> Result<Vec<&'static str>, tonic::Status> {
    let request = ListSearchAttributesRequest {
        namespace: namespace.to_owned(),
    };
    let listed = client
        .sdk()
        .connection()
        .operator_service()
        .list_search_attributes(request.into_request())
        .await?
        .into_inner();
    Ok(ALL
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !listed.custom_attributes.contains_key(*name))
        .collect())
}

/// Makes sure the namespace has orderflow's search attributes. `false`
/// when they are missing and the server would not add them (Temporal Cloud
/// takes them from its own tools): the exact command to create them is
/// logged, and orders run on without them.
pub async fn ensure(client: &OrderClient, namespace: &str) -> bool {
    let missing = match missing(client, namespace).await {
        Ok(missing) if missing.is_empty() => return true,
        Ok(missing) => missing,
        Err(status) => {
            tracing::warn!(
                "cannot list the namespace's search attributes ({}); orders run without them. \
                 Create them with: {}",
                status.message(),
                create_command(namespace, &ALL.map(|(n, _)| n))
            );
            return false;
        }
    };
    let request = AddSearchAttributesRequest {
        search_attributes: ALL
            .iter()
            .filter(|(name, _)| missing.contains(name))
            .map(|(name, kind)| (name.to_string(), *kind as i32))
            .collect::<HashMap<_, _>>(),
        namespace: namespace.to_owned(),
    };
    let added = client
        .sdk()
        .connection()
        .operator_service()
        .add_search_attributes(request.into_request())
        .await;
    match added {
        Ok(_) => {
            tracing::info!(added = ?missing, "registered the orders' search attributes");
            true
        }
        // Another worker added them first.
        Err(status) if status.code() == tonic::Code::AlreadyExists => true,
        Err(status) => {
            tracing::warn!(
                "the server would not add the search attributes {missing:?} ({}); orders run \
                 without them. Create them with: {}",
                status.message(),
                create_command(namespace, &missing)
            );
            false
        }
    }
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
