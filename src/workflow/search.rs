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

/// Why a `--query` cannot be used as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --query: {0}")]
pub struct QueryError(pub String);

/// A visibility query limited to orders: `WorkflowType = 'OrderWorkflow'
/// AND (query)`. The query's parentheses must pair up outside its quoted
/// values, so nothing in it can close ours and reach other workflows (`x')
/// OR (WorkflowType = 'Other'` is refused); its quotes must close; and it
/// may hold no comment (`/*`, `--`, `#`), inside which a parser would skip
/// what this check counts.
pub fn orders_only(query: &str) -> Result<String, QueryError> {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            // A backslash escapes the next character in a value, not in a
            // backquoted name.
            (Some('\'' | '"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"' | '`') => quote = Some(c),
            (None, '#') => return Err(QueryError("'#' starts a comment; none is allowed".into())),
            (None, '-') if chars.peek() == Some(&'-') => {
                return Err(QueryError("'--' starts a comment; none is allowed".into()));
            }
            (None, '/') if chars.peek() == Some(&'*') => {
                return Err(QueryError("'/*' starts a comment; none is allowed".into()));
            }
            (None, '(') => depth += 1,
            (None, ')') => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    QueryError("a ')' closes a parenthesis it did not open".into())
                })?;
            }
            (None, c) if c.is_control() && !c.is_whitespace() => {
                return Err(QueryError(format!("{c:?} is not allowed")));
            }
            (None, _) => {}
        }
    }
    if let Some(q) = quote {
        return Err(QueryError(format!("a value opened with {q} is not closed")));
    }
    if depth > 0 {
        return Err(QueryError(match depth {
            1 => "1 parenthesis is not closed".to_owned(),
            n => format!("{n} parentheses are not closed"),
        }));
    }
    if query.trim().is_empty() {
        return Err(QueryError("it is empty".into()));
    }
    Ok(format!("WorkflowType = 'OrderWorkflow' AND ({query})"))
}

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
    fn a_query_stays_among_orders() {
        assert_eq!(
            orders_only(r#"OrderStatus = "FAILED""#).unwrap(),
            r#"WorkflowType = 'OrderWorkflow' AND (OrderStatus = "FAILED")"#
        );
        // Parentheses and quotes inside values are values.
        assert!(orders_only("CustomerId = 'a) OR (b' AND (OrderTotal > 5)").is_ok());
        assert!(orders_only(r#"CustomerId = 'it\'s (fine'"#).is_ok());
        for escape in [
            "CustomerId = 'x') OR (WorkflowType = 'Other'",
            "OrderStatus = 'FAILED') OR WorkflowType != ('x",
            ")",
        ] {
            let e = orders_only(escape).unwrap_err();
            assert!(e.0.contains("did not open"), "{escape}: {e}");
        }
        assert!(
            orders_only("CustomerId = 'x")
                .unwrap_err()
                .0
                .contains("not closed")
        );
        assert_eq!(
            orders_only("((OrderTotal > 5)").unwrap_err().to_string(),
            "invalid --query: 1 parenthesis is not closed"
        );
        assert!(orders_only("  ").is_err());
        // A comment would hide from this check what the server then reads.
        for hidden in [
            "OrderStatus='x' /* ' */ ) OR WorkflowType='Other' OR ( OrderStatus='y' /* ' */",
            "OrderStatus='x' -- ')",
            "OrderStatus='x' # ')",
        ] {
            let e = orders_only(hidden).unwrap_err();
            assert!(e.0.contains("comment"), "{hidden}: {e}");
        }
        assert!(orders_only("CustomerId = '--x' AND OrderTotal > -5").is_ok());
        // No escape inside a backquoted name: its backslash is a character.
        assert!(orders_only("`a\\` = 'b') OR (x = 'y'").is_err());
        assert!(orders_only("OrderStatus = 'x'\u{1b}[2J").is_err());
    }

    #[test]
    fn the_command_creates_what_is_missing() {
        assert_eq!(
            create_command("orders.a1b2c", &["OrderStatus", "OrderTotal"]),
            "temporal operator search-attribute create --namespace orders.a1b2c \
             --name OrderStatus --type Keyword --name OrderTotal --type Double"
        );
    }
}
