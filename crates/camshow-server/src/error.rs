//! Errors as the API answers them: `{ "error": { "code", "message", "field"? } }`,
//! 4xx for the caller's mistakes and 5xx only for ours.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`invalid_input`, `unsafe_content`, …).
    pub code: &'static str,
    /// One line for people.
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
    /// The methods a path takes (the `Allow` header of a 405).
    pub allow: Option<String>,
}

/// The body of every error, as the OpenAPI document describes it.
#[derive(utoipa::ToSchema)]
#[schema(as = Error)]
#[allow(dead_code)]
pub(crate) struct ErrorDoc {
    error: ErrorInnerDoc,
}

#[derive(utoipa::ToSchema)]
#[schema(as = ErrorDetail)]
#[allow(dead_code)]
pub(crate) struct ErrorInnerDoc {
    /// A stable machine-readable code: `invalid_input`, `unsafe_content`, `no_face`, `not_found`, …
    code: String,
    /// One line for people.
    message: String,
    /// The request field at fault.
    field: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            allow: None,
        }
    }

    /// 400, about `field`.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: Some(field.to_string()),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_input", message)
        }
    }

    /// 404.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    /// 500: our fault.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status);
        if let Some(allow) = &self.allow {
            r.insert_header((actix_web::http::header::ALLOW, allow.as_str()));
        }
        r.json(Body {
            error: Inner {
                code: self.code,
                message: &self.message,
                field: self.field.as_deref(),
            },
        })
    }
}

impl From<camshow_core::Error> for ApiError {
    fn from(e: camshow_core::Error) -> Self {
        camshow_media::Error::Core(e).into()
    }
}

/// The status and code for a library error: 4xx only for what the request
/// got wrong; anything else is ours.
fn classify(e: &camshow_media::Error) -> (StatusCode, &'static str) {
    use camshow_core::Error as C;
    use camshow_media::Error as M;
    match e {
        M::Core(C::Unsafe { .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "unsafe_content"),
        M::Core(C::NoFace { .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "no_face"),
        M::Core(C::Settings(_) | C::UnknownSetting { .. }) => {
            (StatusCode::BAD_REQUEST, "invalid_settings")
        }
        M::Core(C::ModelMissing { .. }) => (StatusCode::SERVICE_UNAVAILABLE, "model_missing"),
        M::Core(C::InvalidInput(_))
        | M::Decode { .. }
        | M::UnsupportedFormat { .. }
        | M::UnsupportedVideoFormat { .. }
        | M::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid_input"),
        M::Person { source, .. } => classify(source),
        e if e.is_cancelled() => (StatusCode::CONFLICT, "cancelled"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    }
}

impl From<camshow_media::Error> for ApiError {
    fn from(e: camshow_media::Error) -> Self {
        let message = e.to_string();
        let (status, code) = classify(&e);
        if status.is_server_error() {
            tracing::error!("{message}");
        }
        Self::new(status, code, message)
    }
}

/// The result type of handlers.
pub type ApiResult<T> = std::result::Result<T, ApiError>;
