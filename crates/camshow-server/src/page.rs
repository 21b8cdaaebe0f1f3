//! The browser page at `/`: HTML, CSS and JavaScript compiled into the
//! binary (no build step; nothing is loaded from other sites, and the
//! content security policy says so).

use actix_web::HttpResponse;

const INDEX: &str = include_str!("../page/index.html");
const SCRIPT: &str = include_str!("../page/app.js");
const STYLE: &str = include_str!("../page/style.css");

/// The page's own files need no token (they hold no data); every API call
/// they make does.
pub(crate) fn is_page(path: &str) -> bool {
    matches!(
        path,
        "/" | "/app.js" | "/style.css" | "/docs.js" | "/v1/docs" | "/v1/openapi.json"
    )
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

pub(crate) async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX)
}

pub(crate) async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub(crate) async fn style() -> HttpResponse {
    asset("text/css; charset=utf-8", STYLE)
}

const DOCS: &str = include_str!("../page/docs.html");
const DOCS_SCRIPT: &str = include_str!("../page/docs.js");

/// `/v1/docs`: the API's document, browsable.
pub(crate) fn docs() -> HttpResponse {
    asset("text/html; charset=utf-8", DOCS)
}

pub(crate) async fn docs_script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", DOCS_SCRIPT)
}
