//! Live swapping over WebSocket.
//!
//! `GET /v1/live?source=ID[&fps=30][&mirror=true][&quality=80]`: the client
//! sends frames as binary messages (JPEG, PNG or WebP bytes, or raw RGBA
//! behind a 12-byte `RGBA` header) and JSON control messages; the server
//! answers every processed frame with a JSON `frame` message (which frame
//! it was, receive-to-send latency, faces swapped, whether the safety gate
//! held it) followed by the frame as a JPEG carrying the provenance packet.
//!
//! `GET /v1/live/camera?source=ID&camera=test|DEVICE-ID`: the same, for a
//! camera on the server (its id from the server's camera list, or the
//! built-in test camera); the client only sends control messages.
//!
//! Both run the library's live session ([`camshow_media::live::run_live`]):
//! newest-frame policy at the input (a frame the engine has not taken is
//! replaced by the newer one) and at the output (a frame the client has not
//! taken is replaced), and the same safety gate thread as the CLI. Control
//! messages: `{"type":"source","id":…}`, `{"type":"settings","settings":
//! {key: value, …}}` (the keys of a request's `settings` field),
//! `{"type":"mirror","on":bool}`, `{"type":"stop"}`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Session};
use camshow_core::analysis::Needs;
use camshow_core::pipeline::SwapEngine;
use camshow_media::live::remote::Feed;
use camshow_media::live::sinks::{ChannelSink, FrameMeta, LiveJpeg, Sink};
use camshow_media::live::source::{CaptureOptions, FrameSource, open_source};
use camshow_media::live::{LiveControl, LiveOptions, LiveStats, run_live};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::State;
use crate::error::{ApiError, ApiResult};
use crate::routes::{self, Data};

/// The largest message a client may send (a raw 3840×2160 RGBA frame and its header).
const MAX_MESSAGE: usize = 3840 * 2160 * 4 + 64;

/// A client that sends nothing (no frame, no control, no pong) for this
/// long is disconnected.
const CLIENT_IDLE: Duration = Duration::from_secs(30);

/// The query of both live endpoints (declared once: parsing and the
/// OpenAPI document both come from here).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LiveQuery {
    /// A source id from POST /v1/sources.
    #[param(required = true)]
    source: Option<String>,
    /// The rate the client sends at, or the camera's rate (30).
    fps: Option<f64>,
    /// Mirror frames.
    mirror: Option<bool>,
    /// JPEG quality of the answers, 30–95 (80).
    quality: Option<u8>,
    /// `/v1/live/camera` only: `test`, or a camera id from `camshow cameras` (test).
    camera: Option<String>,
}

/// One live session's slot; the count drops when the session ends.
struct LiveSlot(Arc<AtomicU64>);

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn live_slot(state: &State) -> ApiResult<LiveSlot> {
    let n = state.metrics.live_sessions.fetch_add(1, Ordering::Relaxed);
    let slot = LiveSlot(Arc::clone(&state.metrics.live_sessions));
    if n >= state.cfg.max_live as u64 {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!(
                "{} live sessions are running; try again when one ends",
                state.cfg.max_live
            ),
        ));
    }
    Ok(slot)
}

/// Live swapping of the frames the client sends (a WebSocket: see the README's Server section).
#[utoipa::path(tag = "live", params(LiveQuery), responses((status = 101, description = "Switching to the WebSocket protocol")))]
#[get("/live")]
pub(crate) async fn client_live(
    req: HttpRequest,
    body: web::Payload,
    state: Data,
    q: web::Query<LiveQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    if q.camera.is_some() {
        return Err(ApiError::field(
            "camera",
            "a camera on the server streams from /v1/live/camera",
        ));
    }
    let photos = source_photos(&state, &q)?;
    let (feed, source) = Feed::new(q.fps.unwrap_or(30.0));
    start(req, body, state, q, photos, Box::new(source), Some(feed)).await
}

/// Live swapping of a camera on the server, streamed out over a WebSocket.
#[utoipa::path(tag = "live", params(LiveQuery), responses((status = 101, description = "Switching to the WebSocket protocol")))]
#[get("/live/camera")]
pub(crate) async fn camera_live(
    req: HttpRequest,
    body: web::Payload,
    state: Data,
    q: web::Query<LiveQuery>,
) -> ApiResult<HttpResponse> {
    let q = q.into_inner();
    // The source first: nothing is opened for a request that cannot run.
    let photos = source_photos(&state, &q)?;
    let camera = q.camera.clone().unwrap_or_else(|| "test".into());
    // Only the built-in test camera or a camera the server lists: never a
    // file or a path from the client.
    let known = camera == "test"
        || web::block(camshow_media::camera::list_cameras)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .iter()
            .any(|c| c.id == camera);
    if !known {
        return Err(ApiError::field(
            "camera",
            format!(
                "no camera {camera:?} on this server (`test`, or an id from `camshow cameras`)"
            ),
        ));
    }
    let capture = CaptureOptions {
        size: None,
        fps: q.fps,
    };
    let source = web::block(move || open_source(&camera, capture, true))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??;
    start(req, body, state, q, photos, source, None).await
}

/// The photos of the session's source.
fn source_photos(state: &State, q: &LiveQuery) -> ApiResult<Vec<std::path::PathBuf>> {
    let Some(id) = &q.source else {
        return Err(ApiError::field(
            "source",
            "a live session needs `source`: an id from POST /v1/sources",
        ));
    };
    routes::source_photos(state, id)
}

/// Prepares the engine and the source face (`photos`), then upgrades to a
/// WebSocket and runs the session until either side ends it. Frames come
/// from `source`: the client's (`feed` is its pushing end) or a camera's.
async fn start(
    req: HttpRequest,
    body: web::Payload,
    state: Data,
    q: LiveQuery,
    photos: Vec<std::path::PathBuf>,
    source: Box<dyn FrameSource>,
    feed: Option<Feed>,
) -> ApiResult<HttpResponse> {
    let slot = live_slot(&state)?;
    let settings = routes::settings_now(&state)?;
    let s = state.clone();
    let control = routes::blocking(&state, move || {
        let ctx = s.ctx.for_settings(&settings)?;
        let engine = Arc::new(SwapEngine::load_with(&ctx, &settings, Needs::default())?);
        let prepared = camshow_media::swap_job::prepare_source(&engine, &photos)?;
        let plan = camshow_core::session::SourcePlan::One {
            source: Arc::new(prepared),
            reference: None,
        };
        Ok(LiveControl::new(engine, plan)?)
    })
    .await
    .map_err(|e| routes::counted(&state, e))?;
    let (response, session, stream) =
        actix_ws::handle(&req, body).map_err(|e| ApiError::field("upgrade", e.to_string()))?;
    let stream = stream
        .max_frame_size(MAX_MESSAGE)
        .aggregate_continuations()
        .max_continuation_size(MAX_MESSAGE);
    let opts = LiveOptions {
        mirror: q.mirror.unwrap_or(false),
        ..LiveOptions::default()
    };
    let quality = q.quality.unwrap_or(80).clamp(30, 95);
    let (out_tx, out_rx) = tokio::sync::watch::channel(None::<Arc<Out>>);
    let ended: Arc<Mutex<Option<Result<LiveStats, String>>>> = Arc::default();
    if let Some(f) = &feed {
        f.attach(&control);
    }
    // The session and its encoder run on their own threads; the socket task
    // only moves bytes.
    let (c, e, f, m) = (
        Arc::clone(&control),
        Arc::clone(&ended),
        feed.clone(),
        Arc::clone(&state.metrics),
    );
    std::thread::Builder::new()
        .name("live-session".into())
        .spawn(move || {
            let _slot = slot;
            let (sink, mailbox) = ChannelSink::new(1);
            let encoder = std::thread::Builder::new()
                .name("live-encode".into())
                .spawn(move || encode_loop(&mailbox, f.as_ref(), &out_tx, quality, &m));
            let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
            let r = run_live(source, &mut sinks, &c, &opts).map_err(|e| e.to_string());
            *e.lock().unwrap_or_else(PoisonError::into_inner) = Some(r);
            // Closing the mailbox ends the encoder, which ends the socket's
            // output (and the socket then reports how the session ended).
            drop(sinks);
            if let Ok(t) = encoder {
                let _ = t.join();
            }
        })
        .map_err(|e| ApiError::internal(e.to_string()))?;
    actix_web::rt::spawn(socket(state, session, stream, control, feed, out_rx, ended));
    Ok(response)
}

/// An encoded output frame.
struct Out {
    meta: String,
    jpeg: actix_web::web::Bytes,
}

/// Newest output frame → JPEG with provenance → the socket task (through a
/// watch channel: a frame the socket has not sent yet is replaced).
fn encode_loop(
    mailbox: &camshow_media::latest::Latest<(camshow_core::Frame, FrameMeta)>,
    feed: Option<&Feed>,
    out: &tokio::sync::watch::Sender<Option<Arc<Out>>>,
    quality: u8,
    metrics: &crate::metrics::Metrics,
) {
    let encoder = LiveJpeg::new(quality);
    for (frame, meta) in mailbox.iter() {
        let (input, since) = match feed.and_then(|f| f.origin(meta.seq)) {
            Some((input, at)) => (Some(input), at),
            None => (None, meta.captured_at),
        };
        let encoding = Instant::now();
        let jpeg = match encoder.encode(&frame, meta.faces_swapped > 0) {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!("live: {e}");
                continue;
            }
        };
        let encode = encoding.elapsed();
        let latency = since.elapsed().as_secs_f64();
        metrics.live_frames.fetch_add(1, Ordering::Relaxed);
        metrics.live_latency_seconds.observe(latency);
        let st = meta.stages;
        for (h, d) in
            metrics
                .live_stage_seconds
                .iter()
                .zip([st.detect, st.gate_wait, st.swap, encode])
        {
            h.observe(d.as_secs_f64());
        }
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let meta = json!({
            "type": "frame",
            "seq": meta.seq,
            "input": input,
            "latency_ms": latency * 1000.0,
            "faces_swapped": meta.faces_swapped,
            "safety_hold": meta.safety_hold,
            "width": frame.width(),
            "height": frame.height(),
            "dropped": feed.map(Feed::dropped),
            "stages_ms": {
                "detect": ms(st.detect),
                "gate_wait": ms(st.gate_wait),
                "swap": ms(st.swap),
                "encode": ms(encode),
            },
        });
        let sent = out.send(Some(Arc::new(Out {
            meta: meta.to_string(),
            jpeg: jpeg.into(),
        })));
        if sent.is_err() {
            // The socket is gone.
            return;
        }
    }
}

/// Moves frames and control messages between the client and the session.
async fn socket(
    state: Data,
    mut session: Session,
    mut stream: actix_ws::AggregatedMessageStream,
    control: Arc<LiveControl>,
    feed: Option<Feed>,
    mut out: tokio::sync::watch::Receiver<Option<Arc<Out>>>,
    ended: Arc<Mutex<Option<Result<LiveStats, String>>>>,
) {
    let mut patch = serde_json::Map::new();
    let mut last_heard = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    let mut close: Option<CloseReason> = None;
    loop {
        tokio::select! {
            msg = stream.recv() => {
                let Some(Ok(msg)) = msg else {
                    break;
                };
                last_heard = Instant::now();
                match msg {
                    AggregatedMessage::Binary(bytes) => match &feed {
                        Some(f) => {
                            f.push(bytes.to_vec());
                        }
                        None => {
                            let _ = send_json(&mut session, &json!({"type": "error", "code": "invalid_input", "message": "this session streams a camera on the server: it takes control messages only"})).await;
                        }
                    },
                    AggregatedMessage::Text(text) => {
                        let reply = control_message(&state, &control, &mut patch, &text).await;
                        let stop = reply.get("type").and_then(Value::as_str) == Some("stopping");
                        if send_json(&mut session, &reply).await.is_err() {
                            break;
                        }
                        if stop {
                            control.stop();
                        }
                    }
                    AggregatedMessage::Ping(b) => {
                        if session.pong(&b).await.is_err() {
                            break;
                        }
                    }
                    AggregatedMessage::Pong(_) => {}
                    AggregatedMessage::Close(_) => break,
                }
            }
            changed = out.changed() => {
                if changed.is_err() {
                    // The session ended: say how, then close.
                    let end = ended.lock().unwrap_or_else(PoisonError::into_inner).take();
                    let msg = match end {
                        Some(Ok(stats)) => json!({"type": "end", "stats": stats}),
                        Some(Err(e)) => {
                            close = Some(CloseReason { code: CloseCode::Error, description: Some("the live session failed".into()) });
                            json!({"type": "error", "code": "live_failed", "message": e})
                        }
                        None => json!({"type": "end"}),
                    };
                    let _ = send_json(&mut session, &msg).await;
                    break;
                }
                let frame = out.borrow_and_update().clone();
                if let Some(frame) = frame
                    && (session.text(frame.meta.clone()).await.is_err()
                        || session.binary(frame.jpeg.clone()).await.is_err())
                {
                    break;
                }
                report_rejection(&mut session, feed.as_ref()).await;
            }
            _ = tick.tick() => {
                if last_heard.elapsed() > CLIENT_IDLE {
                    close = Some(CloseReason { code: CloseCode::Policy, description: Some("nothing heard from the client".into()) });
                    break;
                }
                report_rejection(&mut session, feed.as_ref()).await;
                if session.ping(b"").await.is_err() {
                    break;
                }
            }
        }
    }
    control.stop();
    if let Some(f) = &feed {
        f.close();
    }
    let _ = session.close(close).await;
}

async fn send_json(session: &mut Session, v: &Value) -> Result<(), actix_ws::Closed> {
    session.text(v.to_string()).await
}

/// Tells the client why its newest refused frame was refused (once).
async fn report_rejection(session: &mut Session, feed: Option<&Feed>) {
    if let Some(why) = feed.and_then(Feed::take_rejection) {
        let _ = send_json(
            session,
            &json!({"type": "error", "code": "invalid_input", "field": "frame", "message": why}),
        )
        .await;
    }
}

/// Applies one control message; the reply says what happened.
async fn control_message(
    state: &Data,
    control: &Arc<LiveControl>,
    patch: &mut serde_json::Map<String, Value>,
    text: &str,
) -> Value {
    let refused = |e: ApiError| json!({"type": "error", "code": e.code, "field": e.field, "message": e.message});
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return refused(ApiError::field(
            "message",
            "a control message is a JSON object with a \"type\"",
        ));
    };
    match msg.get("type").and_then(Value::as_str) {
        Some("source") => {
            let photos = match msg
                .get("id")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::field("id", "give the source's id"))
                .and_then(|id| routes::source_photos(state, id))
            {
                Ok(p) => p,
                Err(e) => return refused(e),
            };
            let c = Arc::clone(control);
            let r = routes::blocking(state, move || {
                let prepared = camshow_media::swap_job::prepare_source(&c.engine(), &photos)?;
                c.set_source(prepared);
                Ok(())
            })
            .await;
            match r {
                Ok(()) => json!({"type": "ok", "what": "source"}),
                Err(e) => refused(routes::counted(state, e)),
            }
        }
        Some("settings") => {
            let Some(changes) = msg.get("settings").and_then(Value::as_object) else {
                return refused(ApiError::field(
                    "settings",
                    "give an object of settings keys and values",
                ));
            };
            let mut next = patch.clone();
            next.extend(changes.clone());
            let settings =
                match routes::patched_settings(state, &Value::Object(next.clone()), "settings") {
                    Ok(s) => s,
                    Err(e) => return refused(e),
                };
            let c = Arc::clone(control);
            let r = routes::blocking(state, move || Ok(c.set_settings(&settings)?)).await;
            match r {
                Ok(()) => {
                    *patch = next;
                    json!({"type": "ok", "what": "settings"})
                }
                Err(e) => refused(e),
            }
        }
        Some("mirror") => match msg.get("on").and_then(Value::as_bool) {
            Some(on) => {
                control.set_mirror(on);
                json!({"type": "ok", "what": "mirror"})
            }
            None => refused(ApiError::field("on", "give \"on\": true or false")),
        },
        Some("stop") => json!({"type": "stopping"}),
        _ => refused(ApiError::field(
            "type",
            "a control message's type is one of source, settings, mirror, stop",
        )),
    }
}
