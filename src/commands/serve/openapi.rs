//! The API's OpenAPI 3.1 document, generated from the handlers' types
//! and annotations (utoipa): served at /api/openapi.json, printed by
//! `serve --openapi`, and the reference in DOCS.md.

use axum::Json;
use utoipa::OpenApi;

use super::{api, events, problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow",
        description = "Orders on Temporal and PostgreSQL: submit, follow and cancel them. The JSON is `orderflow … -o json`'s; errors are the CLI's JSON errors with an HTTP status. With `serve --api-token-file`, /api asks for `Authorization: Bearer <token>`."
    ),
    paths(
        api::create,
        api::list,
        api::status,
        api::cancel_order,
        events::stream,
        api::products,
    ),
    components(schemas(problem::ErrorBody, crate::input::InputError)),
    tags(
        (name = "orders", description = "Submit, look up, list, follow and cancel orders"),
        (name = "products", description = "The catalog"),
    )
)]
struct Document;

/// The document as JSON text.
pub fn document() -> String {
    let mut doc = Document::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc.to_pretty_json().expect("the document serializes")
}

pub async fn serve() -> Json<serde_json::Value> {
    Json(serde_json::from_str(&document()).expect("the document is JSON"))
}
