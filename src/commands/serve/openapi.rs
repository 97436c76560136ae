//! The API's OpenAPI 3.1 document, generated from the handlers' types
//! and annotations (utoipa): served at /api/openapi.json, printed by
//! `serve --openapi`, and the reference in DOCS.md.

use utoipa::OpenApi;

use super::{api, events, problem};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "orderflow",
        description = "Orders on Temporal and PostgreSQL: submit, follow and cancel them. The JSON is `orderflow … -o json`'s; errors are the CLI's JSON errors with an HTTP status. With `serve --api-token-file`, /api asks for `Authorization: Bearer <token>` (401 without). Any route may also answer 405 (no such method), 421 (a Host this server does not answer for, when it asks no token) and 403 (a change sent by a page of another origin)."
    ),
    paths(
        api::create,
        api::list,
        api::status,
        api::cancel_order,
        events::stream,
        events::many,
        api::products,
    ),
    modifiers(&Bearer),
    security((), ("bearer" = [])),
    components(schemas(problem::ErrorBody, crate::input::InputError)),
    tags(
        (name = "orders", description = "Submit, look up, list, follow and cancel orders"),
        (name = "products", description = "The catalog"),
    )
)]
struct Document;

/// The bearer tokens of `serve --api-token-file` (without it, none is asked).
struct Bearer;

impl utoipa::Modify for Bearer {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "One of the tokens of `serve --api-token-file`; asked on /api only when it is given",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as JSON text, made once.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let mut doc = Document::openapi();
        doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
        doc.to_pretty_json().expect("the document serializes")
    })
}

pub async fn serve() -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        document(),
    )
}
