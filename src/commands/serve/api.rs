//! The order API's handlers: the CLI's commands over HTTP, answering with
//! the JSON `-o json` prints and the errors it reports.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::app::App;
use super::problem::{ApiError, ErrorBody, REQUEST};
use super::request::{idempotency_key, order_id, read_body, require_json};
use crate::commands::order::{
    CancelDoc, Cancellation, OrderRow, Pace, Page, Selection, StatusDoc, Submission, cancel,
    conflict, page, refused, submit_all,
};
use crate::domain::{CancelReason, CustomerId, Order, OrderId, OrderStatus, Product, WorkflowId};
use crate::exit::{Exit, Fail};
use crate::input::{InputError, InvalidInput, Source, parse_orders};
use crate::workflow::state::OrderView;

/// How long a cancellation waits for the order to end before it answers
/// `202` (`requested`): it takes effect without the caller.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// Submit orders: one order (an object) or several (an array), as an order
/// file holds them. Every problem of every order is reported at once and
/// nothing is started unless all are valid.
#[utoipa::path(
    post,
    path = "/api/orders",
    tag = "orders",
    request_body(content = Vec<Order>, description = "One order, or an array of orders, as an order file holds them (SPEC §2); `id` is optional", content_type = "application/json"),
    params(
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried POST of orders without `id` land on the same orders: their IDs are derived from it")
    ),
    responses(
        (status = 202, description = "Started (at least one new order): a record per order, an array for an array; `Location` names a single order", body = Submitted),
        (status = 200, description = "Every order already existed with the same content: nothing new started", body = Submitted),
        (status = 400, description = "The body is not JSON (or not UTF-8)", body = ErrorBody),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 403, description = "Sent by a page of another origin (see --allow-origin)", body = ErrorBody),
        (status = 409, description = "An ID exists with different content (`orders`: every order's record)", body = ErrorBody),
        (status = 413, description = "The body is larger than --max-body", body = ErrorBody),
        (status = 415, description = "The body is not application/json", body = ErrorBody),
        (status = 422, description = "Invalid orders: every problem, in `problems`", body = ErrorBody),
        (status = 503, description = "Temporal is unreachable", body = ErrorBody),
        (status = 504, description = "Not answered within --request-timeout; what it started goes on", body = ErrorBody),
    )
)]
pub async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_json(&headers)?;
    let key = idempotency_key(&headers)?;
    let bytes = read_body(body, app.max_body).await?;
    let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
        ApiError::http(
            StatusCode::BAD_REQUEST,
            Exit::Usage.error_code(),
            format!(
                "the body is not UTF-8 text (bad byte at offset {}); send UTF-8 JSON",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    let array = text.trim_start().starts_with('[');
    let mut parsed =
        parse_orders(&[Source::new(REQUEST, text.as_str())], None).map_err(|invalid| {
            let syntax = serde_json::from_str::<serde::de::IgnoredAny>(&text).is_err();
            let mut error = ApiError::from(anyhow::Error::from(invalid));
            if syntax {
                error.status = StatusCode::BAD_REQUEST;
            }
            error
        })?;
    let mut keyed = false;
    if let Some(key) = &key {
        let scope = key_scope(&headers);
        for (index, o) in parsed.iter_mut().enumerate() {
            if o.generated_id {
                o.order = o.order.clone().with_id(derived_id(&scope, key, index));
                keyed = true;
            }
        }
    }
    let orders = parsed.into_iter().map(|o| o.order);
    let submissions = submit_all(
        &app.client,
        &app.config,
        orders,
        Pace::default(),
        || {},
        std::future::pending(),
    )
    .await?;
    if let Some(fail) = conflict(&submissions) {
        let fail = match &key {
            Some(key) if keyed => Fail::new(
                Exit::Conflict,
                format!(
                    "Idempotency-Key {key:?} was used before for orders with other content; \
                     send a new key with a new order"
                ),
            ),
            _ => fail,
        };
        let mut error = ApiError::from(anyhow::Error::from(fail));
        error.body.error.orders = Some(submissions);
        return Err(error);
    }
    let status = if submissions.iter().all(|s| s.existing) {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    let location = match (array, submissions.as_slice()) {
        (false, [one]) => HeaderValue::from_str(&format!("/api/orders/{}", one.order_id)).ok(),
        _ => None,
    };
    let body = match (array, submissions.len()) {
        (false, 1) => Submitted::One(submissions.into_iter().next().expect("one")),
        _ => Submitted::Many(submissions),
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(location) = location {
        response.headers_mut().insert(header::LOCATION, location);
    }
    Ok(response)
}

/// The answer to `POST /api/orders`: a record for one order, an array
/// for an array.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Submitted {
    One(Submission),
    Many(Vec<Submission>),
}

/// An order's state: what `order status -o json` prints.
#[utoipa::path(
    get,
    path = "/api/orders/{id}",
    tag = "orders",
    params(("id" = String, Path, description = "The order's ID (its workflow ID)")),
    responses(
        (status = 200, description = "The order", body = StatusDoc),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 422, description = "Not an order ID", body = ErrorBody),
        (status = 503, description = "Temporal is unreachable", body = ErrorBody),
        (status = 504, description = "Not answered within --request-timeout", body = ErrorBody),
    )
)]
pub async fn status(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = order_id(id)?;
    let (view, source) = app.client.fetch(&id).await.map_err(anyhow::Error::from)?;
    Ok(Json(StatusDoc {
        view: &view,
        ui_url: app.config.ui_link(id.as_str()),
        source,
    })
    .into_response())
}

/// The query of `GET /api/orders`.
#[derive(Debug, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders with this status (any case).
    #[param(value_type = Option<String>)]
    status: Option<OrderStatus>,
    /// Only this customer's orders.
    #[param(value_type = Option<String>)]
    customer: Option<CustomerId>,
    /// At most this many (1–10000, default 50).
    limit: Option<u32>,
    /// The last order ID of the previous page: the orders after it.
    #[param(value_type = Option<String>)]
    after: Option<OrderId>,
}

/// The most orders one page lists (as `order list --limit`).
const MAX_LIMIT: u32 = 10_000;

impl ListQuery {
    /// Reads the query string, with every problem in it at once.
    fn parse(query: Option<&str>) -> Result<Self, ApiError> {
        let mut parsed = Self::default();
        let mut problems = Vec::new();
        let mut problem = |field: &str, message: String| {
            problems.push(InputError {
                source_name: REQUEST.to_owned(),
                item: None,
                field: Some(field.to_owned()),
                message,
            });
        };
        for (name, value) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            let value = value.as_ref();
            match name.as_ref() {
                "status" => match value.to_ascii_uppercase().parse() {
                    Ok(s) => parsed.status = Some(s),
                    Err(e) => problem("status", e.to_string()),
                },
                "customer" => match CustomerId::parse(value) {
                    Ok(c) => parsed.customer = Some(c),
                    Err(e) => problem("customer", e.to_string()),
                },
                "after" => match OrderId::parse(value) {
                    Ok(a) => parsed.after = Some(a),
                    Err(e) => problem("after", e.to_string()),
                },
                "limit" => match value.parse::<u32>() {
                    Ok(n @ 1..=MAX_LIMIT) => parsed.limit = Some(n),
                    _ => problem(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIMIT}"),
                    ),
                },
                other => {
                    let other: String = other.chars().take(40).collect();
                    problem(
                        &other,
                        "is not a parameter of this list; use status, customer, limit or after"
                            .to_owned(),
                    )
                }
            }
        }
        match InvalidInput::from_problems(problems) {
            None => Ok(parsed),
            Some(invalid) => Err(ApiError::from(anyhow::Error::from(invalid))),
        }
    }
}

/// Orders from the database, newest first, a page at a time (`order list
/// -o json`). When more follow, a `Link` header names the next page.
#[utoipa::path(
    get,
    path = "/api/orders",
    tag = "orders",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders; `Link: <…>; rel=\"next\"` when more follow", body = Vec<OrderRow>,
            headers(("Link" = String, description = "The next page, when there is one"))),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 404, description = "`after` names no order", body = ErrorBody),
        (status = 422, description = "A parameter breaks its rule (every one, in `problems`)", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable", body = ErrorBody),
        (status = 504, description = "Not answered within --request-timeout", body = ErrorBody),
    )
)]
pub async fn list(State(app): State<App>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let query = ListQuery::parse(query.as_deref())?;
    let limit = query.limit.unwrap_or(50);
    let statuses: Vec<OrderStatus> = query.status.into_iter().collect();
    let selection = Selection {
        statuses: &statuses,
        customer: query.customer.as_ref(),
        after: query.after.as_ref(),
        limit,
    };
    let Page { rows, more } = page(&app.pool, &selection).await?;
    let next = match (more, rows.last()) {
        (true, Some(last)) => {
            let mut url = format!("/api/orders?limit={limit}&after={}", last.order_id);
            if let Some(s) = query.status {
                url.push_str(&format!("&status={s}"));
            }
            if let Some(c) = &query.customer {
                url.push_str(&format!("&customer={c}"));
            }
            HeaderValue::from_str(&format!("<{url}>; rel=\"next\"")).ok()
        }
        _ => None,
    };
    let rows: Vec<OrderRow> = rows
        .into_iter()
        .map(|summary| OrderRow {
            ui_url: app.config.ui_link(&summary.order_id),
            summary,
        })
        .collect();
    let mut response = Json(rows).into_response();
    if let Some(next) = next {
        response.headers_mut().insert(header::LINK, next);
    }
    Ok(response)
}

/// The body of a cancellation: `{}` or `{"reason": "…"}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelRequest {
    /// Why (default "cancelled through the API").
    reason: Option<String>,
}

/// Cancel an order, as `order cancel` does: it ends `CANCELLED` after
/// compensation, at any step before `COMPLETED`.
#[utoipa::path(
    post,
    path = "/api/orders/{id}/cancel",
    tag = "orders",
    params(("id" = String, Path, description = "The order's ID")),
    request_body(content = CancelRequest, description = "`{}` or `{\"reason\": \"…\"}`; an empty body is `{}`. The Content-Type must be application/json (a page elsewhere cannot send that without asking first)", content_type = "application/json"),
    responses(
        (status = 200, description = "Cancelled (`outcome`: `cancelled`, or `already cancelled`)", body = CancelDoc),
        (status = 202, description = "Sent; the order had not ended within 10 s (`outcome`: `requested`): it ends without you", body = CancelDoc),
        (status = 400, description = "The body is not `{\"reason\": \"…\"}`", body = ErrorBody),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 403, description = "Sent by a page of another origin (see --allow-origin)", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Refused: the order had already ended COMPLETED or FAILED (its `status`)", body = ErrorBody),
        (status = 413, description = "The body is larger than --max-body", body = ErrorBody),
        (status = 415, description = "The body is not said to be application/json", body = ErrorBody),
        (status = 422, description = "An invalid ID or reason", body = ErrorBody),
        (status = 503, description = "Temporal is unreachable", body = ErrorBody),
        (status = 504, description = "Not answered within --request-timeout; the cancellation may have been sent", body = ErrorBody),
    )
)]
pub async fn cancel_order(
    State(app): State<App>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = order_id(id)?;
    require_json(&headers)?;
    let bytes = read_body(body, app.max_body).await?;
    let request: CancelRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        CancelRequest::default()
    } else {
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::http(
                StatusCode::BAD_REQUEST,
                Exit::Usage.error_code(),
                format!("expected {{\"reason\": \"…\"}}: {e}"),
            )
        })?
    };
    let reason = CancelReason::parse(
        request
            .reason
            .as_deref()
            .unwrap_or("cancelled through the API"),
    )
    .map_err(|e| ApiError::field("reason", e.to_string()))?;
    let id = WorkflowId::from(id);
    let sent = std::sync::atomic::AtomicU8::new(0);
    match cancel(
        &app.client,
        &id,
        reason.as_str(),
        true,
        Some(CANCEL_WAIT),
        &sent,
    )
    .await?
    {
        Cancellation::Cancelled(view) => {
            Ok(Json(doc(&id, "cancelled", Some(&view))).into_response())
        }
        Cancellation::Already(view) => {
            Ok(Json(doc(&id, "already cancelled", Some(&view))).into_response())
        }
        Cancellation::Requested | Cancellation::Pending => {
            Ok((StatusCode::ACCEPTED, Json(doc(&id, "requested", None))).into_response())
        }
        Cancellation::Refused(view) => Err(ApiError::from(anyhow::Error::from(Fail::new(
            Exit::Conflict,
            refused(&id, view.status),
        )))
        .with_status(view.status)),
    }
}

/// The answer to a cancellation, as `order cancel -o json` prints it.
fn doc<'a>(id: &'a WorkflowId, outcome: &'a str, view: Option<&'a OrderView>) -> CancelDoc<'a> {
    CancelDoc {
        order_id: id.as_str(),
        outcome,
        status: view.map(|v| v.status),
        order: view,
    }
}

/// The catalog (`product list -o json`).
#[utoipa::path(
    get,
    path = "/api/products",
    tag = "products",
    responses(
        (status = 200, description = "Every product, with its price and stock", body = Vec<Product>),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable", body = ErrorBody),
        (status = 504, description = "Not answered within --request-timeout", body = ErrorBody),
    )
)]
pub async fn products(State(app): State<App>) -> Result<Response, ApiError> {
    let catalog = crate::db::products::list(&app.pool).await?;
    Ok(Json(catalog).into_response())
}

/// Whose keys these are: each bearer token's keys are its own (Stripe
/// scopes them to the account); without tokens, one scope.
fn key_scope(headers: &HeaderMap) -> String {
    let token = crate::web::guard::Guard::bearer(headers).unwrap_or_default();
    hex::encode(&Sha256::digest(token.as_bytes())[..8])
}

/// The ID of the `index`th order without one of a request with
/// idempotency key `key` in `scope`: the same key gives the same IDs, so
/// a retried request finds the orders its first try started.
fn derived_id(scope: &str, key: &str, index: usize) -> OrderId {
    OrderId::derive(&format!("{scope}\n{key}\n{index}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_gives_the_same_ids_each_time() {
        assert_eq!(derived_id("s", "k-1", 0), derived_id("s", "k-1", 0));
        assert_ne!(derived_id("s", "k-1", 0), derived_id("s", "k-1", 1));
        assert_ne!(derived_id("s", "k-1", 0), derived_id("s", "k-2", 0));
        assert_ne!(
            derived_id("s", "k-1", 0),
            derived_id("t", "k-1", 0),
            "per token"
        );
        assert!(derived_id("s", "k-1", 0).as_str().starts_with("ORD-"));
    }

    #[test]
    fn list_queries_say_every_problem() {
        let q = ListQuery::parse(Some("status=failed&limit=20&customer=C-1&after=ORD-9")).unwrap();
        assert_eq!(q.status, Some(OrderStatus::Failed));
        assert_eq!(q.limit, Some(20));
        let Err(e) = ListQuery::parse(Some("status=LOST&limit=abc&color=red")) else {
            panic!("accepted")
        };
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(e.body.error.problems.unwrap().len(), 3);
        assert!(ListQuery::parse(Some("limit=0")).is_err());
        assert!(ListQuery::parse(None).is_ok());
    }
}
