//! The OpenAPI 3.1 document at `/v1/openapi.json`, made from the handlers'
//! annotations as they are registered, and a page at `/v1/docs` that shows
//! it. The settings schema is the one `Settings::json_schema()` gives (the
//! same one `/v1/capabilities` walks); every operation also answers the
//! common errors (`4XX`, `5XX`: the `Error` body).

use actix_web::{HttpResponse, get};
use serde_json::{Map, Value, json};
use utoipa_actix_web::AppExt;

use crate::routes::Data;

/// `POST /v1/sources`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct SourceForm {
    /// A photo of the face (repeat the field for several photos of one person).
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    photo: Vec<u8>,
    /// Settings changes for this request, as JSON: `{"engine.detector": "centerface"}`.
    settings: Option<String>,
}

/// `POST /v1/swap`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct SwapForm {
    /// Photos of the source face (or give `source_id`).
    #[schema(value_type = Option<String>, content_media_type = "application/octet-stream")]
    source: Option<Vec<u8>>,
    /// A source id from `POST /v1/sources`.
    source_id: Option<String>,
    /// The picture to swap faces in.
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    target: Vec<u8>,
    /// Settings changes for this request, as JSON.
    settings: Option<String>,
    /// `png` or `jpg`.
    format: Option<String>,
}

/// `POST /v1/jobs`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct JobForm {
    /// Photos of the source face (or give `source_id`, or `scan_id` and `people`).
    #[schema(value_type = Option<String>, content_media_type = "application/octet-stream")]
    source: Option<Vec<u8>>,
    /// A source id from `POST /v1/sources`.
    source_id: Option<String>,
    /// The picture or video.
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    target: Vec<u8>,
    /// Settings changes for this job, as JSON.
    settings: Option<String>,
    /// `png`, `jpg` (pictures); `mp4`, `mov`, `mkv`, `webm` (videos).
    format: Option<String>,
    /// A scan of this target, for a face-mapped job.
    scan_id: Option<String>,
    /// With `scan_id`: each person's source id, or null to leave them, as JSON: `{"0": "ID", "1": null}`.
    people: Option<String>,
}

/// `POST /v1/faces/scan`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct ScanForm {
    /// The picture or video to scan.
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    target: Vec<u8>,
    /// How far apart two faces may be and still be one person.
    cluster_distance: Option<f32>,
    /// Settings changes for this scan, as JSON.
    settings: Option<String>,
}

/// The settings file.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct SettingsDoc {
    /// The settings (the `Settings` schema).
    #[schema(value_type = Object)]
    settings: Value,
}

/// One Server-Sent Event of a job.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct JobEvent {
    /// `status` (a change) or `end` (the last one).
    #[schema(value_type = Option<String>)]
    event: Option<String>,
    /// The job (`JobView`) as JSON text.
    data: String,
}

/// A page of jobs.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct JobPage {
    jobs: Vec<crate::jobs::JobView>,
    total: u64,
    offset: u64,
    limit: u64,
}

/// The document, made once at start.
pub(crate) fn build() -> Value {
    let (_, api) = actix_web::App::new()
        .into_utoipa_app()
        .configure(crate::routes::configure)
        .split_for_parts();
    let mut doc = serde_json::to_value(&api).unwrap_or_else(|_| json!({}));
    doc["openapi"] = json!("3.1.0");
    doc["info"] = json!({
        "title": "Camshow Deepfaker server",
        "version": env!("CARGO_PKG_VERSION"),
        "description": "Face swapping for pictures, videos and live streams. Everything it makes carries IPTC DigitalSourceType compositeWithTrainedAlgorithmicMedia; every upload and live frame passes the content-safety gate. On loopback no token is needed; on any other address send `Authorization: Bearer TOKEN` (or `?token=`).",
        "license": {"name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0"},
    });
    let components = doc["components"].as_object_mut().map(std::mem::take);
    let mut components = components.unwrap_or_default();
    let schemas = components
        .entry("schemas")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut schemas = schemas;
    let mut errors = vec![(
        <crate::error::ErrorDoc as utoipa::ToSchema>::name().into_owned(),
        <crate::error::ErrorDoc as utoipa::PartialSchema>::schema(),
    )];
    <crate::error::ErrorDoc as utoipa::ToSchema>::schemas(&mut errors);
    for (name, s) in errors {
        schemas.insert(name, serde_json::to_value(s).unwrap_or_default());
    }
    // The settings: the schema the settings file is checked with, its
    // definitions moved beside it (a `$ref` names the document's root).
    let mut settings = camshow_core::settings::Settings::json_schema();
    if let Some(defs) = settings.as_object_mut().and_then(|o| o.remove("$defs")) {
        for (name, mut def) in defs.as_object().cloned().unwrap_or_default() {
            rewrite_refs(&mut def);
            schemas.insert(name, def);
        }
    }
    rewrite_refs(&mut settings);
    if let Some(o) = settings.as_object_mut() {
        o.remove("$schema");
    }
    schemas.insert("Settings".into(), settings);
    if let Some(p) = schemas
        .get_mut("SettingsDoc")
        .and_then(|d| d.pointer_mut("/properties/settings"))
    {
        *p = json!({"$ref": "#/components/schemas/Settings"});
    }
    components.insert("schemas".into(), Value::Object(schemas));
    components.insert(
        "securitySchemes".into(),
        json!({"bearer": {"type": "http", "scheme": "bearer", "description": "Needed off loopback only"}}),
    );
    doc["components"] = Value::Object(components);
    doc["security"] = json!([{}, {"bearer": []}]);
    // Every operation may also answer the common errors.
    let error = json!({
        "description": "An error: 4xx for the request's mistakes, 5xx for the server's",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            for op in item.as_object_mut().into_iter().flat_map(Map::values_mut) {
                if let Some(r) = op.get_mut("responses").and_then(Value::as_object_mut) {
                    r.entry("4XX").or_insert_with(|| error.clone());
                    r.entry("5XX").or_insert_with(|| error.clone());
                }
            }
        }
    }
    doc
}

/// `#/$defs/X` → `#/components/schemas/X`, everywhere in `v`.
fn rewrite_refs(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                if k == "$ref"
                    && let Some(name) = x.as_str().and_then(|r| r.strip_prefix("#/$defs/"))
                {
                    *x = json!(format!("#/components/schemas/{name}"));
                } else {
                    rewrite_refs(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(rewrite_refs),
        _ => {}
    }
}

/// The methods the document has for `path` (upper case), matching
/// templates (`{id}` is any one segment).
pub(crate) fn methods_for(doc: &Value, path: &str) -> Vec<String> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (template, item) in doc["paths"].as_object().into_iter().flatten() {
        let t: Vec<&str> = template.split('/').collect();
        let fits = t.len() == segments.len()
            && t.iter()
                .zip(&segments)
                .all(|(a, b)| (a.starts_with('{') && a.ends_with('}') && !b.is_empty()) || a == b);
        if fits {
            out.extend(
                item.as_object()
                    .into_iter()
                    .flat_map(|o| o.keys())
                    .map(|m| m.to_ascii_uppercase()),
            );
        }
    }
    out
}

/// The OpenAPI 3.1 document of this server.
#[utoipa::path(tag = "server", responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
#[get("/openapi.json")]
pub(crate) async fn document(state: Data) -> HttpResponse {
    HttpResponse::Ok().json(&state.openapi)
}

/// A page that shows the OpenAPI document.
#[utoipa::path(tag = "server", responses((status = 200, description = "HTML", body = String, content_type = "text/html")))]
#[get("/docs")]
pub(crate) async fn docs() -> HttpResponse {
    crate::page::docs()
}
