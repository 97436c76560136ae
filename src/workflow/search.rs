//! Search attributes on orders (SPEC §7): `OrderStatus`, `CustomerId` and
//! `FailureCode` (Keyword) and `OrderTotal` (Double), upserted at each status
//! change, so `temporal workflow list --query 'OrderStatus="FAILED"'` and the
//! Web UI filter orders. A namespace must have them before a workflow may
//! set them: the worker registers the missing ones where the server lets it
//! (a dev or self-hosted server) and tells its workflows whether they exist.

use temporalio_common::search_attributes::SearchAttributeKey;

pub const ORDER_STATUS: SearchAttributeKey<String> = SearchAttributeKey::keyword("OrderStatus");
pub const CUSTOMER_ID: SearchAttributeKey<String> = SearchAttributeKey::keyword("CustomerId");
pub const FAILURE_CODE: SearchAttributeKey<String> = SearchAttributeKey::keyword("FailureCode");
pub const ORDER_TOTAL: SearchAttributeKey<f64> = SearchAttributeKey::float("OrderTotal");

/// Every attribute orderflow sets, by name: Keyword unless listed in [`DOUBLES`].
pub const NAMES: [&str; 4] = ["OrderStatus", "CustomerId", "FailureCode", "OrderTotal"];
/// The attributes of type Double.
pub const DOUBLES: [&str; 1] = ["OrderTotal"];
