//! Multipart forms: files streamed to disk under generated names (the
//! client's file name and type are never trusted nor used as paths), text
//! fields kept, and the size limit enforced while reading.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use actix_multipart::Multipart;
use futures_util::StreamExt;

use crate::error::{ApiError, ApiResult};

/// A file the client sent.
#[derive(Debug)]
pub struct Upload {
    /// The form field's name.
    pub field: String,
    /// Where it is stored (a generated name in the request's folder).
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
}

/// A parsed form.
#[derive(Debug, Default)]
pub struct Form {
    /// Files, in the order sent.
    pub files: Vec<Upload>,
    /// Text fields, in the order sent.
    pub texts: Vec<(String, String)>,
}

impl Form {
    /// The files sent as `field`.
    pub fn files(&self, field: &str) -> Vec<&Upload> {
        self.files.iter().filter(|f| f.field == field).collect()
    }

    /// The text field `field`, if sent.
    pub fn text(&self, field: &str) -> Option<&str> {
        self.texts
            .iter()
            .find(|(k, _)| k == field)
            .map(|(_, v)| v.as_str())
    }
}

/// Most text a text field may hold.
const TEXT_LIMIT: usize = 64 * 1024;
/// Most fields a form may have.
const FIELD_LIMIT: usize = 64;

/// How long a client may take.
#[derive(Debug, Clone, Copy)]
pub struct Patience {
    /// Longest silence.
    pub idle: Duration,
    /// When the whole upload must have arrived.
    pub deadline: Instant,
}

/// The next item of a stream, or 408 when the client is silent for too long
/// or the upload goes past its deadline (a slow drip cannot hold a worker).
async fn next_within<S: futures_util::Stream + Unpin>(
    s: &mut S,
    p: Patience,
) -> ApiResult<Option<S::Item>> {
    let left = p.deadline.saturating_duration_since(Instant::now());
    tokio::time::timeout(left.min(p.idle), s.next())
        .await
        .map_err(|_| {
            ApiError::new(
                actix_web::http::StatusCode::REQUEST_TIMEOUT,
                "timeout",
                if Instant::now() >= p.deadline {
                    "the upload took too long".to_string()
                } else {
                    format!(
                        "the upload stalled: nothing arrived for {} s",
                        p.idle.as_secs_f32()
                    )
                },
            )
        })
}

/// Reads `payload` into `dir`: files under generated names, at most
/// `max_bytes` in all, within `patience`.
pub async fn read_form(
    mut payload: Multipart,
    dir: &Path,
    max_bytes: u64,
    patience: Patience,
) -> ApiResult<Form> {
    let mut form = Form::default();
    let mut total = 0u64;
    let mut fields = 0usize;
    while let Some(field) = next_within(&mut payload, patience).await? {
        let mut field =
            field.map_err(|e| ApiError::field("body", format!("bad multipart body: {e}")))?;
        fields += 1;
        if fields > FIELD_LIMIT {
            return Err(ApiError::field(
                "body",
                format!("more than {FIELD_LIMIT} form fields"),
            ));
        }
        let name = field.name().unwrap_or_default().to_string();
        let is_file = field
            .content_disposition()
            .is_some_and(|cd| cd.get_filename().is_some());
        if is_file {
            let path = dir.join(format!("upload-{}", form.files.len()));
            let mut file = std::fs::File::create(&path)
                .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
            let mut size = 0u64;
            while let Some(chunk) = next_within(&mut field, patience).await? {
                let chunk = chunk
                    .map_err(|e| ApiError::field(&name, format!("upload interrupted: {e}")))?;
                size += chunk.len() as u64;
                total += chunk.len() as u64;
                if total > max_bytes {
                    return Err(too_large(max_bytes));
                }
                file.write_all(&chunk)
                    .map_err(|e| ApiError::internal(format!("cannot store an upload: {e}")))?;
            }
            if size == 0 {
                return Err(ApiError::field(&name, "the file is empty"));
            }
            form.files.push(Upload {
                field: name,
                path,
                size,
            });
        } else {
            let mut text = Vec::new();
            while let Some(chunk) = next_within(&mut field, patience).await? {
                let chunk =
                    chunk.map_err(|e| ApiError::field(&name, format!("field interrupted: {e}")))?;
                text.extend_from_slice(&chunk);
                total += chunk.len() as u64;
                if text.len() > TEXT_LIMIT || total > max_bytes {
                    return Err(ApiError::field(&name, "the field is too long"));
                }
            }
            let text = String::from_utf8(text)
                .map_err(|_| ApiError::field(&name, "the field is not UTF-8 text"))?;
            form.texts.push((name, text));
        }
    }
    Ok(form)
}

fn too_large(max: u64) -> ApiError {
    ApiError::new(
        actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("the upload is over the limit of {} MB", max / 1_000_000),
    )
}
