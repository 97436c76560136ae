//! The order API's handlers: the CLI's commands over HTTP, answering with
//! the JSON `-o json` prints and the errors it reports.

use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::App;
use super::problem::{ApiError, ErrorBody};
use crate::commands::order::{
    CancelDoc, Cancellation, OrderRow, Page, Selection, StatusDoc, Submission, cancel, page,
    refused, submit,
};
use crate::domain::{CancelReason, CustomerId, Order, OrderId, OrderStatus, Product, WorkflowId};
use crate::exit::{Exit, Fail};
use crate::input::{InputError, InvalidInput, Source, parse_orders};
use crate::workflow::state::OrderView;

/// Orders of one request started at once.
const CONCURRENCY: usize = 32;

/// How long a cancellation waits for the order to end before it answers
/// `202` (`requested`): it takes effect without the caller.
const CANCEL_WAIT: Duration = Duration::from_secs(10);

/// The longest `Idempotency-Key` accepted (Stripe's limit).
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The name input problems of a request carry as their file.
const REQUEST: &str = "request";

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
        (status = 409, description = "An ID exists with different content", body = ErrorBody),
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
    if let Some(key) = &key {
        for (index, o) in parsed.iter_mut().enumerate() {
            if o.generated_id {
                o.order = o.order.clone().with_id(derived_id(key, index));
            }
        }
    }
    let submissions: Vec<Submission> = futures::stream::iter(parsed)
        .map(|o| {
            let app = app.clone();
            async move { submit(&app.client, &app.config, &o.order).await }
        })
        .buffered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<anyhow::Result<_>>()?;
    let conflicts: Vec<&str> = submissions
        .iter()
        .filter(|s| s.conflict.is_some())
        .map(|s| s.order_id.as_str())
        .collect();
    if !conflicts.is_empty() {
        return Err(ApiError::from(anyhow::Error::from(Fail::new(
            Exit::Conflict,
            format!(
                "{} already exist(s) with different content; nothing was started for {}. Use new \
                 IDs, or omit \"id\" to have one generated",
                conflicts.join(", "),
                if conflicts.len() == 1 { "it" } else { "them" }
            ),
        ))));
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
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
        (status = 422, description = "Not a workflow ID", body = ErrorBody),
        (status = 503, description = "Temporal is unreachable", body = ErrorBody),
    )
)]
pub async fn status(State(app): State<App>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = workflow_id(&id)?;
    let (view, source) = app.client.fetch(&id).await.map_err(anyhow::Error::from)?;
    Ok(Json(StatusDoc {
        view: &view,
        ui_url: app.config.ui_link(id.as_str()),
        source,
    })
    .into_response())
}

/// The query of `GET /api/orders`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only orders with this status (any case).
    status: Option<String>,
    /// Only this customer's orders.
    customer: Option<String>,
    /// At most this many (1–10000, default 50).
    limit: Option<u32>,
    /// The last order ID of the previous page: the orders after it.
    after: Option<String>,
}

/// Orders from the database, newest first, a page at a time (`order list
/// -o json`). When more follow, a `Link` header names the next page.
#[utoipa::path(
    get,
    path = "/api/orders",
    tag = "orders",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of orders; `Link: <…>; rel=\"next\"` when more follow", body = Vec<OrderRow>),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 404, description = "`after` names no order", body = ErrorBody),
        (status = 422, description = "A parameter breaks its rule", body = ErrorBody),
        (status = 503, description = "PostgreSQL is unreachable", body = ErrorBody),
    )
)]
pub async fn list(
    State(app): State<App>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let mut problems = Vec::new();
    let mut check = |field: &str, result: Result<(), String>| {
        if let Err(message) = result {
            problems.push(InputError {
                source_name: REQUEST.to_owned(),
                item: None,
                field: Some(field.to_owned()),
                message,
            });
        }
    };
    let mut status = None;
    if let Some(s) = &query.status {
        check(
            "status",
            match s.to_ascii_uppercase().parse::<OrderStatus>() {
                Ok(parsed) => {
                    status = Some(parsed);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            },
        );
    }
    let mut customer = None;
    if let Some(c) = &query.customer {
        check(
            "customer",
            CustomerId::parse(c)
                .map(|c| customer = Some(c))
                .map_err(|e| e.to_string()),
        );
    }
    let mut after = None;
    if let Some(a) = &query.after {
        check(
            "after",
            OrderId::parse(a)
                .map(|a| after = Some(a))
                .map_err(|e| e.to_string()),
        );
    }
    let limit = query.limit.unwrap_or(50);
    check(
        "limit",
        match limit {
            1..=10_000 => Ok(()),
            _ => Err("must be from 1 to 10000".to_owned()),
        },
    );
    if let Some(invalid) = InvalidInput::from_problems(problems) {
        return Err(ApiError::from(anyhow::Error::from(invalid)));
    }
    let selection = Selection {
        status,
        customer: customer.as_ref(),
        after: after.as_ref(),
        limit,
    };
    let Page { rows, more } = page(&app.pool, &selection).await?;
    let next = match (more, rows.last()) {
        (true, Some(last)) => {
            let mut url = format!("/api/orders?limit={limit}&after={}", last.order_id);
            if let Some(s) = status {
                url.push_str(&format!("&status={s}"));
            }
            if let Some(c) = &customer {
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

/// The body of a cancellation (optional).
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
    request_body(content = Option<CancelRequest>, content_type = "application/json"),
    responses(
        (status = 200, description = "Cancelled (`outcome`: `cancelled`, or `already cancelled`)", body = CancelDoc),
        (status = 202, description = "Sent; the order had not ended within 10 s (`outcome`: `requested`): it ends without you", body = CancelDoc),
        (status = 401, description = "A bearer token is required (serve --api-token-file)", body = ErrorBody),
        (status = 404, description = "No such order", body = ErrorBody),
        (status = 409, description = "Refused: the order had already ended COMPLETED or FAILED (its `status`)", body = ErrorBody),
        (status = 422, description = "An invalid reason", body = ErrorBody),
        (status = 503, description = "Temporal is unreachable", body = ErrorBody),
    )
)]
pub async fn cancel_order(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = workflow_id(&id)?;
    let bytes = read_body(body, app.max_body).await?;
    let request: CancelRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        CancelRequest::default()
    } else {
        require_json(&headers)?;
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
    .map_err(|e| {
        ApiError::from(anyhow::Error::from(InvalidInput::from(InputError {
            source_name: REQUEST.to_owned(),
            item: None,
            field: Some("reason".to_owned()),
            message: e.to_string(),
        })))
    })?;
    match cancel(&app.client, &id, reason.as_str(), true, Some(CANCEL_WAIT)).await? {
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
    )
)]
pub async fn products(State(app): State<App>) -> Result<Response, ApiError> {
    let catalog = crate::db::products::list(&app.pool).await?;
    Ok(Json(catalog).into_response())
}

/// A workflow ID from a path, or 422.
fn workflow_id(text: &str) -> Result<WorkflowId, ApiError> {
    WorkflowId::parse(text).map_err(|e| {
        ApiError::from(anyhow::Error::from(InvalidInput::from(InputError {
            source_name: REQUEST.to_owned(),
            item: None,
            field: Some("id".to_owned()),
            message: e.to_string(),
        })))
    })
}

/// 415 unless the request says its body is JSON.
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if json {
        return Ok(());
    }
    Err(ApiError::http(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
        "send the orders as JSON, with `Content-Type: application/json`",
    ))
}

/// The body, up to `limit` bytes, or 413.
async fn read_body(body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::http(
                StatusCode::PAYLOAD_TOO_LARGE,
                "PAYLOAD_TOO_LARGE",
                format!(
                    "the body is larger than {limit} bytes (--max-body); split the orders over several requests"
                ),
            )
        } else {
            ApiError::http(
                StatusCode::BAD_REQUEST,
                Exit::Usage.error_code(),
                format!("reading the body: {e}"),
            )
        }
    })
}

/// The `Idempotency-Key` header, if sent: 1–255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key)
            if !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY
                && key.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Ok(Some(key.to_owned()))
        }
        _ => Err(ApiError::from(anyhow::Error::from(InvalidInput::from(
            InputError {
                source_name: REQUEST.to_owned(),
                item: None,
                field: Some("Idempotency-Key".to_owned()),
                message: format!(
                    "must be 1–{MAX_IDEMPOTENCY_KEY} visible ASCII characters, e.g. a UUID"
                ),
            },
        )))),
    }
}

/// The ID of the `index`th order without one of a request with
/// idempotency key `key`: the same key gives the same IDs, so a retried
/// request finds the orders its first try started.
fn derived_id(key: &str, index: usize) -> OrderId {
    let digest = Sha256::digest(format!("{key}\n{index}").as_bytes());
    OrderId::parse(&format!("ORD-{}", &hex::encode(digest)[..32])).expect("a valid order ID")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idempotency_key_gives_the_same_ids_each_time() {
        assert_eq!(derived_id("k-1", 0), derived_id("k-1", 0));
        assert_ne!(derived_id("k-1", 0), derived_id("k-1", 1));
        assert_ne!(derived_id("k-1", 0), derived_id("k-2", 0));
        assert!(derived_id("k-1", 0).as_str().starts_with("ORD-"));
    }

    #[test]
    fn idempotency_keys_are_bounded() {
        let mut h = HeaderMap::new();
        assert!(idempotency_key(&h).unwrap().is_none());
        h.insert("idempotency-key", HeaderValue::from_static("abc-123"));
        assert_eq!(idempotency_key(&h).unwrap().as_deref(), Some("abc-123"));
        h.insert(
            "idempotency-key",
            HeaderValue::from_str(&"x".repeat(256)).unwrap(),
        );
        assert!(idempotency_key(&h).is_err());
        h.insert("idempotency-key", HeaderValue::from_static("has space"));
        assert!(idempotency_key(&h).is_err());
    }

    #[test]
    fn only_json_bodies() {
        let mut h = HeaderMap::new();
        assert!(require_json(&h).is_err());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(require_json(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(require_json(&h).is_err());
    }
}
