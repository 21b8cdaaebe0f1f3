//! The `/v1` handlers: parse, call the library, answer. Engine work runs
//! on the blocking pool, at most `workers` at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, delete, get, patch, post, put, web};
use camshow_core::analysis::Needs;
use camshow_core::pipeline::SwapEngine;
use camshow_core::settings::{Layered, NewValue, Settings};
use camshow_media::provenance::Operation;
use camshow_media::swap_job::{MediaKind, SwapRequest, media_kind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::State;
use crate::error::{ApiError, ApiResult};
use crate::jobs::{Job, JobState};
use crate::upload::{Form, read_form};

/// Every endpoint. The `/v1` ones are registered from their handlers'
/// OpenAPI annotations (method, path, parameters, bodies and answers are
/// declared once, on the handler), so the document at `/v1/openapi.json`
/// describes exactly what is served.
pub(crate) fn configure(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(
        utoipa_actix_web::scope("/v1")
            .service(health)
            .service(metrics)
            .service(capabilities)
            .service(get_settings)
            .service(put_settings)
            .service(patch_settings)
            .service(post_sources)
            .service(get_source)
            .service(delete_source)
            .service(get_thumbnail)
            .service(post_swap)
            .service(post_scan)
            .service(get_scan)
            .service(get_person)
            .service(post_job)
            .service(list_jobs)
            .service(get_job)
            .service(delete_job)
            .service(job_events)
            .service(job_result)
            .service(crate::live::client_live)
            .service(crate::live::camera_live)
            .service(crate::openapi::document)
            .service(crate::openapi::docs),
    )
    .route("/", web::get().to(crate::page::index))
    .route("/app.js", web::get().to(crate::page::script))
    .route("/style.css", web::get().to(crate::page::style))
    .route("/docs.js", web::get().to(crate::page::docs_script))
    .default_service(web::to(not_found));
}

pub(crate) type Data = web::Data<State>;

/// No endpoint here: 405 (with `Allow`) when the path has endpoints for
/// other methods, else 404.
async fn not_found(req: HttpRequest, state: Data) -> ApiResult<HttpResponse> {
    let allowed = crate::openapi::methods_for(&state.openapi, req.path());
    if allowed.is_empty() {
        return Err(ApiError::not_found(format!(
            "no such endpoint: {} {}",
            req.method(),
            req.path()
        )));
    }
    let mut e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{} takes {}", req.path(), allowed.join(", ")),
    );
    e.allow = Some(allowed.join(", "));
    Err(e)
}

/// Runs engine work on the blocking pool, at most `workers` at once.
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Data,
    f: impl FnOnce() -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let _permit = state
        .slots
        .acquire()
        .await
        .map_err(|_| ApiError::internal("the server is stopping"))?;
    web::block(f)
        .await
        .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
}

/// The error without the server's own folder in it (uploads are named by
/// their field: `source-0.png`, `target.jpg`).
pub(crate) fn scrub(mut e: ApiError, dir: &Path) -> ApiError {
    e.message = e.message.replace(&format!("{}/", dir.display()), "");
    e
}

/// A random id (hex).
fn new_id() -> ApiResult<String> {
    crate::random_hex(12).map_err(|e| ApiError::internal(e.to_string()))
}

/// Ids are ours: anything else is not found (and never a path).
fn checked_id(id: &str) -> ApiResult<&str> {
    if id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(id)
    } else {
        Err(ApiError::not_found(format!("no such id {id:?}")))
    }
}

/// The settings the CLI would use now (defaults < file < environment), with
/// the server's own runtime, models folder and FFmpeg (from its start: a
/// request never loads another runtime or names a program or folder).
pub(crate) fn settings_now(state: &State) -> ApiResult<Settings> {
    let mut s = Layered::load(Some(&state.cfg.config_file))?.settings;
    s.runtime = state.cfg.engine.runtime.clone();
    s.models_dir.clone_from(&state.cfg.engine.models_dir);
    s.ffmpeg = state.cfg.engine.ffmpeg.clone();
    Ok(s)
}

/// Who may change a key over HTTP: a request changes what its run does
/// (`engine`, `processors`, `video`); the settings file also takes `runtime`
/// and `live`; programs and folders on the server (`ffmpeg.path`,
/// `models_dir`) only the machine's owner sets, with `camshow config set`.
fn check_key(key: &str, in_file: bool, field: &str) -> ApiResult<()> {
    let top = key.split(['.', '[']).next().unwrap_or(key);
    let ok = match top {
        "engine" | "processors" | "video" => true,
        "runtime" | "live" => in_file,
        _ => false,
    };
    if ok {
        Ok(())
    } else if in_file || matches!(top, "ffmpeg" | "models_dir" | "version") {
        Err(ApiError::field(
            field,
            format!(
                "{key} cannot be changed over HTTP (it names a program or folder on the server): use `camshow config set` on the server"
            ),
        ))
    } else {
        Err(ApiError::field(
            field,
            format!(
                "{key} is a setting of the server, not of one request: change it with PATCH /v1/settings"
            ),
        ))
    }
}

/// A JSON object of `key: value` changes, as in `config set`.
fn changes(v: &Value, field: &str, in_file: bool) -> ApiResult<Vec<(String, NewValue)>> {
    let obj = v.as_object().ok_or_else(|| {
        ApiError::field(
            field,
            "expected an object of settings keys and values, e.g. {\"video.quality\": 20}",
        )
    })?;
    obj.iter()
        .map(|(k, v)| {
            check_key(k, in_file, field)?;
            Ok((k.clone(), NewValue::Json(v.clone())))
        })
        .collect()
}

/// The current settings with the request's `settings` field applied.
fn request_settings(state: &State, form: &Form) -> ApiResult<Settings> {
    match form.text("settings") {
        None => settings_now(state),
        Some(text) => {
            let v: Value = serde_json::from_str(text)
                .map_err(|e| ApiError::field("settings", format!("bad JSON: {e}")))?;
            patched_settings(state, &v, "settings")
        }
    }
}

/// The current settings with the changes `v` (an object of keys and
/// values, as a request's `settings` field) applied; errors name `field`.
pub(crate) fn patched_settings(state: &State, v: &Value, field: &str) -> ApiResult<Settings> {
    let base = settings_now(state)?;
    let mut err: ApiError = match base.patched(&changes(v, field, false)?) {
        Ok(s) => return Ok(s),
        Err(e) => e.into(),
    };
    err.field = Some(field.into());
    Err(err)
}

/// The `camshow doctor` report: ONNX Runtime, providers, models, FFmpeg, the gate.
#[utoipa::path(tag = "server", responses((status = 200, description = "The report; `ok` is false when something the engine needs is missing", body = Object)))]
#[get("/health")]
async fn health(state: Data) -> ApiResult<HttpResponse> {
    let s = state.clone();
    let report = blocking(&state, move || {
        Ok(camshow_media::doctor::Report::collect(
            Ok(s.ctx.runtime()),
            s.ctx.store(),
        ))
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "ok": report.ok(), "report": report })))
}

/// Counters and histograms in the Prometheus text format (version 0.0.4).
#[utoipa::path(tag = "server", responses((status = 200, description = "Prometheus text", body = String, content_type = "text/plain")))]
#[get("/metrics")]
async fn metrics(state: Data) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&state.jobs))
}

/// Counts a refusal by the gate, and passes the error on without the
/// server's folders in it.
pub(crate) fn counted(state: &State, e: ApiError) -> ApiError {
    let e = scrub(e, &state.cfg.data_dir);
    if e.code == "unsafe_content" {
        state
            .metrics
            .refused_unsafe
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    e
}

/// Every option with its type, default, range and choices, from the settings schema.
#[utoipa::path(tag = "settings", responses((status = 200, description = "The options, and the settings' JSON schema", body = Object)))]
#[get("/capabilities")]
async fn capabilities() -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "settings_version": camshow_core::settings::VERSION,
        "options": Settings::options(),
        "schema": Settings::json_schema(),
        "image_formats": ["png", "jpg"],
        "video_formats": ["mp4", "mov", "mkv", "webm"],
    }))
}

/// The settings file's settings (as `camshow config show` reads them).
fn file_settings(state: &State) -> ApiResult<Settings> {
    Ok(Layered::load(Some(&state.cfg.config_file))?.settings)
}

/// The settings file (the one the CLI reads).
#[utoipa::path(tag = "settings", responses((status = 200, description = "`{settings}`", body = crate::openapi::SettingsDoc)))]
#[get("/settings")]
async fn get_settings(state: Data) -> ApiResult<HttpResponse> {
    settings_reply(&state)
}

fn settings_reply(state: &State) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(json!({ "settings": file_settings(state)? })))
}

/// Replaces the settings file (checked first; `ffmpeg` and `models_dir` cannot change).
#[utoipa::path(tag = "settings", request_body(content = ref("#/components/schemas/Settings"), description = "Whole settings, as `GET` gives `settings`"), responses((status = 200, description = "The settings now", body = crate::openapi::SettingsDoc)))]
#[put("/settings")]
async fn put_settings(state: Data, body: web::Json<Value>) -> ApiResult<HttpResponse> {
    let settings = Settings::from_json(&body).map_err(|e| {
        let mut e = ApiError::from(e);
        e.field = Some("settings".into());
        e
    })?;
    let now = file_settings(&state)?;
    if settings.ffmpeg != now.ffmpeg || settings.models_dir != now.models_dir {
        return Err(ApiError::field(
            "settings",
            "ffmpeg.path and models_dir cannot be changed over HTTP (they name a program or folder on the server): use `camshow config set` on the server",
        ));
    }
    camshow_core::settings::save_file(&state.cfg.config_file, &settings)?;
    settings_reply(&state)
}

/// Changes keys of the settings file, all or nothing (`{"video.quality": 20}`).
#[utoipa::path(tag = "settings", request_body(content = Object, description = "`key: value` pairs as `camshow config set` takes them"), responses((status = 200, description = "The settings now", body = crate::openapi::SettingsDoc)))]
#[patch("/settings")]
async fn patch_settings(state: Data, body: web::Json<Value>) -> ApiResult<HttpResponse> {
    let changes = changes(&body, "body", true)?;
    camshow_core::settings::patch_file(&state.cfg.config_file, &changes)?;
    settings_reply(&state)
}

/// Sources unused for `--keep-results` and face scans older than that are
/// removed (the face photos and thumbnails they hold are not kept longer
/// than results), but never while a job is queued or running: a job may be
/// using them.
pub(crate) fn sweep(state: &State) {
    if state.jobs.any_active() {
        return;
    }
    let keep = state.cfg.retention.keep;
    let old = |dir: &Path| {
        std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > keep)
    };
    let expired: Vec<SourceRecord> = state
        .sources
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .filter(|s| old(&s.dir))
        .cloned()
        .collect();
    for s in expired {
        tracing::info!("removing source {} (retention)", s.id);
        state
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k| k.id != s.id);
        let _ = std::fs::remove_dir_all(&s.dir);
    }
    let scans = state.cfg.data_dir.join("scans");
    for e in std::fs::read_dir(&scans).into_iter().flatten().flatten() {
        let d = e.path();
        if old(&d) {
            tracing::info!("removing scan {} (retention)", d.display());
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}

/// An uploaded source identity.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct SourceRecord {
    id: String,
    photos: usize,
    faces: Vec<FaceInfo>,
    #[serde(skip)]
    dir: PathBuf,
    #[serde(skip)]
    pub(crate) paths: Vec<PathBuf>,
}

/// What a source's folder keeps about it (`source.json`).
#[derive(Serialize, Deserialize)]
struct StoredSource {
    record: SourceRecord,
    /// The photos' file names in the folder.
    photos: Vec<String>,
}

const SOURCE_RECORD: &str = "source.json";

/// The sources recorded under `dir` (after a restart).
pub(crate) fn restore_sources(dir: &Path) -> Vec<SourceRecord> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let d = e.path();
        let stored = std::fs::read(d.join(SOURCE_RECORD))
            .ok()
            .and_then(|b| serde_json::from_slice::<StoredSource>(&b).ok());
        if let Some(s) = stored {
            out.push(SourceRecord {
                paths: s.photos.iter().map(|n| d.join(n)).collect(),
                dir: d,
                ..s.record
            });
        } else {
            tracing::warn!("{} has no source record: removed", d.display());
            let _ = std::fs::remove_dir_all(&d);
        }
    }
    out
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub(crate) struct FaceInfo {
    photo: usize,
    bbox: [f32; 4],
    score: f32,
    thumbnail: String,
}

/// An upload being received; the count drops when it ends.
pub(crate) struct UploadSlot<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A slot for one more upload, or 503 when `max_uploads` are being received.
fn upload_slot(state: &State) -> ApiResult<UploadSlot<'_>> {
    let n = state
        .uploads
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let slot = UploadSlot(&state.uploads);
    if n >= state.cfg.max_uploads {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "{} uploads are being received; try again shortly",
                state.cfg.max_uploads
            ),
        ));
    }
    Ok(slot)
}

/// How long this request's upload may take.
fn patience(state: &State) -> crate::upload::Patience {
    crate::upload::Patience {
        idle: state.cfg.idle_timeout,
        deadline: std::time::Instant::now() + state.cfg.upload_timeout,
    }
}

/// Reads the request's form into `dir`, within the server's limits.
async fn receive(state: &State, payload: Multipart, dir: &Path) -> ApiResult<Form> {
    read_form(payload, dir, state.cfg.max_upload_bytes, patience(state)).await
}

/// A request folder under `data/tmp`, removed unless kept.
fn request_dir(state: &State) -> ApiResult<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix("req-")
        .tempdir_in(state.cfg.data_dir.join("tmp"))
        .map_err(|e| ApiError::internal(format!("cannot make a request folder: {e}")))
}

/// Refuses a picture or video past the server's limits (413).
fn too_large(field: &str, message: String) -> ApiError {
    ApiError {
        field: Some(field.into()),
        ..ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }
}

fn check_pixels(state: &State, w: u32, h: u32, field: &str) -> ApiResult<()> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > state.cfg.max_pixels {
        return Err(too_large(
            field,
            format!(
                "a {w}×{h} picture has {pixels} pixels; this server takes at most {} (--max-megapixels)",
                state.cfg.max_pixels
            ),
        ));
    }
    Ok(())
}

/// Gives `upload` an extension from its content (images only) at
/// `dir/name`, after checking its size against the server's limits (pixels;
/// a video's duration).
fn place(
    state: &State,
    upload: &Path,
    dir: &Path,
    name: &str,
    field: &str,
) -> ApiResult<(PathBuf, MediaKind)> {
    let kind = media_kind(upload).map_err(|e| ApiError::field(field, e.to_string()))?;
    let ext = if kind == MediaKind::Image {
        // The format from the content and the size from the header, before
        // anything is decoded.
        let reader = image::ImageReader::open(upload)
            .and_then(image::ImageReader::with_guessed_format)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let ext = reader
            .format()
            .and_then(|f| f.extensions_str().first().copied())
            .unwrap_or("img");
        if let Ok((w, h)) = reader.into_dimensions() {
            check_pixels(state, w, h, field)?;
        }
        ext
    } else {
        // Anything that is not a picture must be a video FFmpeg reads.
        let info = camshow_media::video::probe(upload).map_err(|_| {
            ApiError::field(
                field,
                "the file is neither a picture this server reads nor a video FFmpeg can open",
            )
        })?;
        check_pixels(state, info.width, info.height, field)?;
        let limit = state.cfg.max_video.as_secs_f64();
        if info.duration.is_nan() || info.duration > limit {
            return Err(too_large(
                field,
                format!(
                    "the video lasts {:.0} s; this server takes at most {limit:.0} s (--max-video-minutes)",
                    info.duration
                ),
            ));
        }
        "video"
    };
    let to = dir.join(format!("{name}.{ext}"));
    std::fs::rename(upload, &to).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((to, kind))
}

/// Photos of one face: checked by the safety gate, analysed; the faces found.
#[utoipa::path(tag = "sources", request_body(content = crate::openapi::SourceForm, content_type = "multipart/form-data"), responses((status = 201, description = "The source", body = SourceRecord)))]
#[post("/sources")]
async fn post_sources(state: Data, payload: Multipart) -> ApiResult<HttpResponse> {
    let slot = upload_slot(&state)?;
    let tmp = request_dir(&state)?;
    let form = receive(&state, payload, tmp.path()).await?;
    // Received: the slot is for uploads in flight, not for work waiting its turn.
    drop(slot);
    let uploads: Vec<PathBuf> = form.files.iter().map(|f| f.path.clone()).collect();
    if uploads.is_empty() {
        return Err(ApiError::field(
            "photo",
            "send one or more photos of one face as files",
        ));
    }
    let mut photos = Vec::new();
    for (i, u) in uploads.iter().enumerate() {
        let (p, kind) = place(&state, u, tmp.path(), &format!("photo-{i}"), "photo")?;
        if kind != MediaKind::Image {
            return Err(ApiError::field(
                "photo",
                "a source must be a photo, not a video",
            ));
        }
        photos.push(p);
    }
    let settings = request_settings(&state, &form)?;
    let id = new_id()?;
    let s = state.clone();
    let dir = tmp.path().to_path_buf();
    let started = std::time::Instant::now();
    let ph = photos.clone();
    let faces = blocking(&state, move || {
        let ctx = s.ctx.for_settings(&settings)?;
        let engine = SwapEngine::load_with(&ctx, &settings, Needs::default())?;
        let (_, faces) = camshow_media::faces::analyse_sources(&engine, &ph)?;
        let mut out = Vec::new();
        for (k, f) in faces.iter().enumerate() {
            camshow_media::image_io::write_image(
                &dir.join(format!("face-{k}.jpg")),
                &f.thumbnail,
                (
                    Operation::FaceThumbnail,
                    "a face found in an uploaded source photo",
                ),
            )?;
            out.push((f.photo, f.face.bbox, f.face.score));
        }
        Ok(out)
    })
    .await
    .map_err(|e| counted(&state, scrub(e, tmp.path())))?;
    state
        .metrics
        .source_seconds
        .observe(started.elapsed().as_secs_f64());
    // Accepted: the folder is kept under the source's id.
    let dir = state.cfg.data_dir.join("sources").join(&id);
    let kept = tmp.keep();
    std::fs::rename(&kept, &dir).map_err(|e| ApiError::internal(e.to_string()))?;
    let record = SourceRecord {
        faces: faces
            .into_iter()
            .enumerate()
            .map(|(k, (photo, bbox, score))| FaceInfo {
                photo,
                bbox,
                score,
                thumbnail: format!("/v1/sources/{id}/faces/{k}"),
            })
            .collect(),
        photos: photos.len(),
        paths: photos
            .iter()
            .filter_map(|p| p.file_name().map(|n| dir.join(n)))
            .collect(),
        dir,
        id,
    };
    let stored = StoredSource {
        record: record.clone(),
        photos: record
            .paths
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect(),
    };
    let bytes =
        serde_json::to_vec_pretty(&stored).map_err(|e| ApiError::internal(e.to_string()))?;
    camshow_core::atomic::write(&record.dir.join(SOURCE_RECORD), &bytes)?;
    state
        .sources
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(record.clone());
    Ok(HttpResponse::Created().json(record))
}

pub(crate) fn source(state: &State, id: &str) -> ApiResult<SourceRecord> {
    let id = checked_id(id)?;
    let s = state
        .sources
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no source {id}")))?;
    Ok(s)
}

/// The photos of source `id`, for a swap, job or live session: it is used
/// now, so it expires `--keep-results` after this use.
pub(crate) fn source_photos(state: &State, id: &str) -> ApiResult<Vec<PathBuf>> {
    let s = source(state, id)?;
    if let Ok(d) = std::fs::File::open(&s.dir) {
        let _ = d.set_modified(std::time::SystemTime::now());
    }
    Ok(s.paths)
}

/// A source.
#[utoipa::path(tag = "sources", params(("id" = String, Path, description = "The source's id")), responses((status = 200, description = "The source", body = SourceRecord)))]
#[get("/sources/{id}")]
async fn get_source(state: Data, id: web::Path<String>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(source(&state, &id)?))
}

/// Removes a source and its photos.
#[utoipa::path(tag = "sources", params(("id" = String, Path, description = "The source's id")), responses((status = 204, description = "Removed")))]
#[delete("/sources/{id}")]
async fn delete_source(state: Data, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let record = source(&state, &id)?;
    state
        .sources
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|s| s.id != record.id);
    std::fs::remove_dir_all(&record.dir).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(HttpResponse::NoContent().finish())
}

/// A thumbnail of a face found in a source (JPEG, labelled as a thumbnail of AI-processed media).
#[utoipa::path(tag = "sources", params(("id" = String, Path, description = "The source's id"), ("n" = u32, Path, description = "The face's number")), responses((status = 200, description = "JPEG", body = String, content_type = "image/jpeg")))]
#[get("/sources/{id}/faces/{n}")]
async fn get_thumbnail(
    state: Data,
    path: web::Path<(String, usize)>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (id, n) = path.into_inner();
    let s = source(&state, &id)?;
    if n >= s.faces.len() {
        return Err(ApiError::not_found(format!("source {id} has no face {n}")));
    }
    let file = actix_files::NamedFile::open(s.dir.join(format!("face-{n}.jpg")))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(file.into_response(&req))
}

/// The sources of a swap: uploaded `source` photos (kept in `dir`) or a `source_id`.
fn swap_sources(state: &State, form: &Form, dir: &Path) -> ApiResult<Vec<PathBuf>> {
    let uploads = form.files("source");
    match (form.text("source_id"), uploads.is_empty()) {
        (Some(_), false) => Err(ApiError::field(
            "source_id",
            "give either source photos or a source_id, not both",
        )),
        (Some(id), true) => source_photos(state, id),
        (None, true) => Err(ApiError::field(
            "source",
            "a source is needed: photos of the face as `source` files, or a `source_id` from POST /v1/sources",
        )),
        (None, false) => uploads
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let (p, kind) = place(state, &u.path, dir, &format!("source-{i}"), "source")?;
                if kind == MediaKind::Image {
                    Ok(p)
                } else {
                    Err(ApiError::field(
                        "source",
                        "a source must be a photo, not a video",
                    ))
                }
            })
            .collect(),
    }
}

/// The target upload, placed in `dir`, and the output path for `format`.
fn swap_target(state: &State, form: &Form, dir: &Path) -> ApiResult<(PathBuf, MediaKind, PathBuf)> {
    let targets = form.files("target");
    let [target] = targets.as_slice() else {
        return Err(ApiError::field(
            "target",
            "send exactly one `target` file (an image or a video)",
        ));
    };
    let (target, kind) = place(state, &target.path, dir, "target", "target")?;
    let format = match (form.text("format"), kind) {
        (Some(f), _) => f.to_ascii_lowercase(),
        (None, MediaKind::Image) => {
            let ext = target.extension().and_then(|e| e.to_str()).unwrap_or("png");
            if matches!(ext, "jpg" | "jpeg") {
                ext.to_string()
            } else {
                "png".into()
            }
        }
        (None, MediaKind::Video) => "mp4".into(),
    };
    let allowed: &[&str] = match kind {
        MediaKind::Image => &["png", "jpg", "jpeg"],
        MediaKind::Video => &["mp4", "mov", "mkv", "webm"],
    };
    if !allowed.contains(&format.as_str()) {
        return Err(ApiError::field(
            "format",
            format!(
                "{format} is not an output format for this target (one of {})",
                allowed.join(", ")
            ),
        ));
    }
    let output = dir.join(format!("result.{format}"));
    Ok((target, kind, output))
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "png" => "image/png",
        "mp4" => "video/mp4",
        "mov" => "video/quicktime",
        "mkv" => "video/x-matroska",
        "webm" => "video/webm",
        _ => "application/octet-stream",
    }
}

/// Swaps a picture at once; the image comes back with its provenance.
#[utoipa::path(tag = "swap", request_body(content = crate::openapi::SwapForm, content_type = "multipart/form-data"), responses((status = 200, description = "The swapped picture (`X-Camshow-Faces-Swapped` says how many faces)", content((String = "image/png"), (String = "image/jpeg")))))]
#[post("/swap")]
async fn post_swap(state: Data, payload: Multipart) -> ApiResult<HttpResponse> {
    let slot = upload_slot(&state)?;
    let tmp = request_dir(&state)?;
    let form = receive(&state, payload, tmp.path()).await?;
    // Received: the slot is for uploads in flight, not for work waiting its turn.
    drop(slot);
    let sources = swap_sources(&state, &form, tmp.path())?;
    let (target, kind, output) = swap_target(&state, &form, tmp.path())?;
    if kind == MediaKind::Video {
        return Err(ApiError::field(
            "target",
            "this target is a video: submit it as a job (POST /v1/jobs)",
        ));
    }
    let settings = request_settings(&state, &form)?;
    let s = state.clone();
    let req = SwapRequest::new(sources, target, output.clone());
    let started = std::time::Instant::now();
    let outcome = blocking(&state, move || {
        Ok(camshow_media::swap_job::run_swap(
            &s.ctx,
            &settings,
            &req,
            &|_, _| {},
            &AtomicBool::new(false),
        )?)
    })
    .await
    .map_err(|e| counted(&state, scrub(e, tmp.path())))?;
    state
        .metrics
        .swap_seconds
        .observe(started.elapsed().as_secs_f64());
    let bytes = std::fs::read(&output).map_err(|e| ApiError::internal(e.to_string()))?;
    let swapped = match &outcome.result {
        camshow_media::swap_job::SwapResult::Image(r) => r.faces_swapped,
        camshow_media::swap_job::SwapResult::Video { .. } => 0,
    };
    Ok(HttpResponse::Ok()
        .content_type(content_type(&output))
        .insert_header(("X-Camshow-Faces-Swapped", swapped.to_string()))
        .insert_header(("X-Camshow-Swapper", outcome.swapper))
        .body(bytes))
}

/// A folder removed when dropped, unless claimed (its field set to `None`).
struct Unclaimed(Option<PathBuf>);

impl Drop for Unclaimed {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// 429 when `client` has `max_jobs_per_client` jobs queued or running.
fn check_client_jobs(state: &State, client: Option<std::net::IpAddr>) -> ApiResult<()> {
    let Some(ip) = client else { return Ok(()) };
    let active = state.jobs.active_for(ip);
    if active >= state.cfg.max_jobs_per_client {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_jobs",
            format!(
                "{active} of your jobs are queued or running (at most {} per client); wait for one to end",
                state.cfg.max_jobs_per_client
            ),
        ));
    }
    Ok(())
}

/// A picture or video job (optionally face-mapped); follow it with its events.
#[utoipa::path(tag = "jobs", request_body(content = crate::openapi::JobForm, content_type = "multipart/form-data"), responses((status = 202, description = "Accepted", body = crate::jobs::JobView)))]
#[post("/jobs")]
async fn post_job(state: Data, payload: Multipart, req: HttpRequest) -> ApiResult<HttpResponse> {
    let client = req.peer_addr().map(|a| a.ip());
    check_client_jobs(&state, client)?;
    let slot = upload_slot(&state)?;
    let id = new_id()?;
    let dir = state.cfg.data_dir.join("jobs").join(&id);
    std::fs::create_dir_all(&dir).map_err(|e| ApiError::internal(e.to_string()))?;
    // Removed unless the job is accepted: on an error, and when the client
    // goes away mid-upload (the handler is then dropped at an await).
    let mut folder = Unclaimed(Some(dir.clone()));
    let made = async {
        let form = receive(&state, payload, &dir).await?;
        let map = mapped(&state, &form, &dir)?;
        let sources = if map.is_some() {
            if !form.files("source").is_empty() || form.text("source_id").is_some() {
                return Err(ApiError::field(
                    "scan_id",
                    "a face-mapped job takes its sources from `people`, not `source`",
                ));
            }
            Vec::new()
        } else {
            swap_sources(&state, &form, &dir)?
        };
        let (target, kind, output) = swap_target(&state, &form, &dir)?;
        let settings = request_settings(&state, &form)?;
        Ok::<_, ApiError>((sources, target, kind, output, settings, map))
    }
    .await;
    drop(slot);
    let (sources, target, kind, output, settings, map) = made?;
    let job = Arc::new(Job::new(
        id.clone(),
        dir.clone(),
        kind,
        SwapRequest {
            map,
            ..SwapRequest::new(sources, target, output)
        },
        settings,
    ));
    job.set_client(client);
    let view = job.view();
    check_client_jobs(&state, client).and_then(|()| state.jobs.submit(job))?;
    folder.0 = None;
    Ok(HttpResponse::Accepted()
        .insert_header(("Location", format!("/v1/jobs/{id}")))
        .json(view))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct Page {
    /// Jobs to skip.
    #[serde(default)]
    #[param(minimum = 0, maximum = 1_000_000)]
    offset: u32,
    /// Jobs to list.
    #[serde(default = "default_limit")]
    #[param(minimum = 1, maximum = 100)]
    limit: u32,
}

/// The largest `offset` of `GET /v1/jobs`.
const MAX_OFFSET: u32 = 1_000_000;

fn default_limit() -> u32 {
    20
}

/// Jobs, newest first.
#[utoipa::path(tag = "jobs", params(Page), responses((status = 200, description = "`{jobs, total, offset, limit}`", body = crate::openapi::JobPage)))]
#[get("/jobs")]
async fn list_jobs(state: Data, page: web::Query<Page>) -> ApiResult<HttpResponse> {
    if page.limit == 0 || page.limit > 100 {
        return Err(ApiError::field("limit", "limit is 1–100"));
    }
    if page.offset > MAX_OFFSET {
        return Err(ApiError::field(
            "offset",
            format!("offset is 0–{MAX_OFFSET}"),
        ));
    }
    let (jobs, total) = state.jobs.page(page.offset as usize, page.limit as usize);
    Ok(HttpResponse::Ok().json(json!({
        "jobs": jobs, "total": total, "offset": page.offset, "limit": page.limit
    })))
}

/// A job: state, progress, fps, ETA, error.
#[utoipa::path(tag = "jobs", params(("id" = String, Path, description = "The job's id")), responses((status = 200, description = "The job", body = crate::jobs::JobView)))]
#[get("/jobs/{id}")]
async fn get_job(state: Data, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let job = state.jobs.get(checked_id(&id)?)?;
    Ok(HttpResponse::Ok().json(job.view()))
}

/// Cancels a job (its files are removed), or forgets a finished one.
#[utoipa::path(tag = "jobs", params(("id" = String, Path, description = "The job's id")), responses((status = 202, description = "Running: it stops at its next frame", body = Object), (status = 204, description = "Cancelled or forgotten")))]
#[delete("/jobs/{id}")]
async fn delete_job(state: Data, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let after = state.jobs.cancel_or_remove(checked_id(&id)?)?;
    Ok(if after.is_final() {
        HttpResponse::NoContent().finish()
    } else {
        // Running: it stops at the next frame and its files are removed then.
        HttpResponse::Accepted().json(json!({ "id": id.as_str(), "state": "cancelling" }))
    })
}

/// Server-Sent Events: the job's status at once, then at every change, until it ends.
/// Server-Sent Events: `status` at once and at every change, `end` at the end (data: the job).
#[utoipa::path(tag = "jobs", params(("id" = String, Path, description = "The job's id")), responses((status = 200, description = "An event stream", body = crate::openapi::JobEvent, content_type = "text/event-stream")))]
#[get("/jobs/{id}/events")]
async fn job_events(state: Data, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let job = state.jobs.get(checked_id(&id)?)?;
    let rx = job.status.subscribe();
    let stream =
        futures_util::stream::unfold((rx, false, true), |(mut rx, ended, first)| async move {
            if ended {
                return None;
            }
            if !first && rx.changed().await.is_err() {
                return None;
            }
            let view = rx.borrow_and_update().clone();
            let ended = view.state.is_final();
            let event = if ended { "end" } else { "status" };
            let data = serde_json::to_string(&view).unwrap_or_default();
            let chunk = web::Bytes::from(format!("event: {event}\ndata: {data}\n\n"));
            Some((Ok::<_, actix_web::Error>(chunk), (rx, ended, false)))
        });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-cache"))
        .streaming(stream))
}

/// The result of a finished job (byte ranges supported with `Range`).
#[utoipa::path(tag = "jobs", params(("id" = String, Path, description = "The job's id")), responses((status = 200, description = "The picture or video", content((String = "image/png"), (String = "image/jpeg"), (String = "video/mp4"), (String = "video/quicktime"), (String = "video/x-matroska"), (String = "video/webm"))), (status = 206, description = "A byte range of it", body = String, content_type = "application/octet-stream")))]
#[get("/jobs/{id}/result")]
async fn job_result(
    state: Data,
    id: web::Path<String>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let job = state.jobs.get(checked_id(&id)?)?;
    let view = job.view();
    if view.state != JobState::Done {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_ready",
            format!("job {} is {:?}: no result", job.id, view.state).to_lowercase(),
        ));
    }
    let path = &job.request.output;
    let file = actix_files::NamedFile::open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ApiError::new(
                StatusCode::GONE,
                "gone",
                format!("the result of job {} was removed", job.id),
            ),
            _ => ApiError::internal(format!("cannot read the result: {e}")),
        })?
        .set_content_type(content_type(path).parse().unwrap_or(mime_octet()))
        .set_content_disposition(actix_web::http::header::ContentDisposition {
            disposition: actix_web::http::header::DispositionType::Attachment,
            parameters: vec![actix_web::http::header::DispositionParam::Filename(
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            )],
        });
    Ok(file.into_response(&req))
}

fn mime_octet() -> actix_web::mime::Mime {
    actix_web::mime::APPLICATION_OCTET_STREAM
}

/// A scan's answer: the people found, with thumbnail addresses.
fn scan_view(id: &str, map: &camshow_core::mapping::FaceMap) -> Value {
    json!({
        "id": id,
        "max_distance": map.max_distance,
        "people": map.people.iter().enumerate().map(|(n, p)| json!({
            "person": p.id,
            "frames_seen": p.frames_seen,
            "first_box": p.first_box,
            "thumbnail": format!("/v1/scans/{id}/people/{n}"),
        })).collect::<Vec<_>>(),
    })
}

/// The map a scan wrote.
fn scan_map(state: &State, id: &str) -> ApiResult<(PathBuf, camshow_core::mapping::FaceMap)> {
    let dir = state.cfg.data_dir.join("scans").join(checked_id(id)?);
    let file = dir.join("map.json");
    if !file.is_file() {
        return Err(ApiError::not_found(format!("no scan {id}")));
    }
    Ok((dir, camshow_core::mapping::FaceMap::load(&file)?))
}

/// `POST /v1/faces/scan`: the people in an uploaded picture or video (one
/// frame a second), for a face-mapped job.
/// The people in a picture or video (one frame a second), for a face-mapped job.
#[utoipa::path(tag = "faces", request_body(content = crate::openapi::ScanForm, content_type = "multipart/form-data"), responses((status = 201, description = "The scan", body = Object)))]
#[post("/faces/scan")]
async fn post_scan(state: Data, payload: Multipart) -> ApiResult<HttpResponse> {
    let slot = upload_slot(&state)?;
    let tmp = request_dir(&state)?;
    let form = receive(&state, payload, tmp.path()).await?;
    // Received: the slot is for uploads in flight, not for work waiting its turn.
    drop(slot);
    let targets = form.files("target");
    let [target] = targets.as_slice() else {
        return Err(ApiError::field(
            "target",
            "send exactly one `target` file (an image or a video)",
        ));
    };
    let (target, _) = place(&state, &target.path, tmp.path(), "target", "target")?;
    let upload = target.clone();
    let settings = request_settings(&state, &form)?;
    let cluster = match form.text("cluster_distance") {
        None => camshow_core::mapping::DEFAULT_CLUSTER_DISTANCE,
        Some(t) => t
            .trim()
            .parse::<f32>()
            .ok()
            .filter(|d| (0.0..=2.0).contains(d))
            .ok_or_else(|| ApiError::field("cluster_distance", "a cosine distance 0–2"))?,
    };
    let id = new_id()?;
    let s = state.clone();
    let out = tmp.path().join("map.json");
    let outcome = blocking(&state, move || {
        let ctx = s.ctx.for_settings(&settings)?;
        Ok(camshow_media::faces::scan(
            &ctx,
            settings.engine.detector,
            &target,
            &out,
            cluster,
            &AtomicBool::new(false),
        )?)
    })
    .await
    .map_err(|e| counted(&state, scrub(e, tmp.path())))?;
    // Kept under the scan's id, without the upload.
    let dir = state.cfg.data_dir.join("scans").join(&id);
    std::fs::create_dir_all(state.cfg.data_dir.join("scans"))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    std::fs::remove_file(&upload).map_err(|e| ApiError::internal(e.to_string()))?;
    let kept = tmp.keep();
    std::fs::rename(&kept, &dir).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut view = scan_view(&id, &outcome.map);
    view["faces"] = json!(outcome.faces);
    view["frames"] = json!(outcome.frames);
    Ok(HttpResponse::Created().json(view))
}

/// A face scan.
#[utoipa::path(tag = "faces", params(("id" = String, Path, description = "The scan's id")), responses((status = 200, description = "The scan", body = Object)))]
#[get("/scans/{id}")]
async fn get_scan(state: Data, id: web::Path<String>) -> ApiResult<HttpResponse> {
    let (_, map) = scan_map(&state, &id)?;
    Ok(HttpResponse::Ok().json(scan_view(&id, &map)))
}

/// A thumbnail of a person found by a scan (PNG, labelled as a thumbnail of AI-processed media).
#[utoipa::path(tag = "faces", params(("id" = String, Path, description = "The scan's id"), ("n" = u32, Path, description = "The person's number")), responses((status = 200, description = "PNG", body = String, content_type = "image/png")))]
#[get("/scans/{id}/people/{n}")]
async fn get_person(
    state: Data,
    path: web::Path<(String, usize)>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let (id, n) = path.into_inner();
    let (dir, map) = scan_map(&state, &id)?;
    let person = map
        .people
        .get(n)
        .ok_or_else(|| ApiError::not_found(format!("scan {id} has no person {n}")))?;
    let name = person
        .thumbnail
        .file_name()
        .ok_or_else(|| ApiError::internal("a person without a thumbnail"))?;
    let file = actix_files::NamedFile::open(dir.join(name))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(file.into_response(&req))
}

/// A face map for a job: the scan `scan_id` with `people` (JSON
/// `{"0": "SOURCE_ID", "1": null}`) choosing a source for each person;
/// written into the job's folder.
fn mapped(state: &State, form: &Form, dir: &Path) -> ApiResult<Option<PathBuf>> {
    let Some(scan_id) = form.text("scan_id") else {
        if form.text("people").is_some() {
            return Err(ApiError::field(
                "scan_id",
                "`people` needs the `scan_id` of a face scan",
            ));
        }
        return Ok(None);
    };
    let (_, mut map) = scan_map(state, scan_id).map_err(|mut e| {
        e.field = Some("scan_id".into());
        e
    })?;
    let people: serde_json::Map<String, Value> = form
        .text("people")
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| ApiError::field("people", format!("bad JSON: {e}")))?
        .ok_or_else(|| {
            ApiError::field(
                "people",
                "say who gets which source: {\"0\": \"SOURCE_ID\"}",
            )
        })?;
    for (k, v) in &people {
        let n: usize = k
            .parse()
            .ok()
            .filter(|n| *n < map.people.len())
            .ok_or_else(|| ApiError::field("people", format!("the scan has no person {k:?}")))?;
        map.people[n].source = match v {
            Value::Null => None,
            Value::String(id) => Some(
                source_photos(state, id)
                    .map_err(|mut e| {
                        e.field = Some("people".into());
                        e
                    })?
                    .first()
                    .cloned()
                    .ok_or_else(|| ApiError::internal("a source without photos"))?,
            ),
            _ => {
                return Err(ApiError::field(
                    "people",
                    "each person gets a source id or null",
                ));
            }
        };
    }
    let file = dir.join("map.json");
    let bytes = serde_json::to_vec_pretty(&map).map_err(|e| ApiError::internal(e.to_string()))?;
    camshow_core::atomic::write(&file, &bytes)?;
    Ok(Some(file))
}
