//! `camshow serve`: the engine over HTTP. Uploads go through the same
//! library calls as the CLI ([`camshow_media::swap_job::run_swap`], the
//! safety gate inside it); the server holds no engine logic of its own.
//!
//! Safe by default: it binds to loopback; on any other address every
//! request needs `Authorization: Bearer TOKEN` (the token is generated on
//! first start and kept in the data folder with mode 0600). Uploads are
//! stored under generated names, sniffed by content and limited in size.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServerHandle, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpServer, web};
use camshow_core::context::EngineContext;
use camshow_core::models::ModelStore;
use utoipa_actix_web::AppExt;

pub mod error;
mod gpu;
pub mod jobs;
mod live;
pub mod metrics;
mod openapi;
mod page;
mod routes;
pub mod upload;

use error::ApiError;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0: any free port).
    pub bind: SocketAddr,
    /// Where uploads, sources and results live.
    pub data_dir: PathBuf,
    /// The settings file (the CLI's, so both see the same settings).
    pub config_file: PathBuf,
    /// The models.
    pub store: ModelStore,
    /// The settings the server started with (its runtime, models folder
    /// and FFmpeg serve every request; the rest comes from the file).
    pub engine: camshow_core::settings::Settings,
    /// Most bytes one request may upload.
    pub max_upload_bytes: u64,
    /// Jobs and synchronous swaps run at once.
    pub workers: usize,
    /// Jobs that may wait in the queue.
    pub queue: usize,
    /// The bearer token every request needs (none on loopback).
    pub token: Option<String>,
    /// How long finished jobs are kept, and the disk they may hold.
    pub retention: jobs::Retention,
    /// A client that sends nothing for this long (headers or upload) is
    /// dropped; request headers must have arrived within it.
    pub idle_timeout: Duration,
    /// The longest an upload may take.
    pub upload_timeout: Duration,
    /// Uploads received at once; more are refused (503) before they are read.
    pub max_uploads: usize,
    /// Live WebSocket sessions at once; more are refused (503).
    pub max_live: usize,
    /// The most pixels of an uploaded picture or video frame (413 past it).
    pub max_pixels: u64,
    /// The longest uploaded video (413 past it).
    pub max_video: Duration,
    /// Jobs one client (address) may have queued or running (429 past it).
    pub max_jobs_per_client: usize,
    /// Origins whose pages may call the API from a browser (CORS); none by default.
    pub cors_origins: Vec<String>,
}

impl ServerConfig {
    /// Defaults for `bind`, `data_dir` and the settings file at `config_file`.
    pub fn new(
        bind: SocketAddr,
        data_dir: PathBuf,
        config_file: PathBuf,
        store: ModelStore,
    ) -> Self {
        Self {
            bind,
            data_dir,
            config_file,
            store,
            engine: camshow_core::settings::Settings::default(),
            max_upload_bytes: 512 * 1_000_000,
            workers: 1,
            queue: 64,
            token: None,
            retention: jobs::Retention::default(),
            idle_timeout: Duration::from_secs(15),
            upload_timeout: Duration::from_mins(10),
            max_uploads: 16,
            max_live: 4,
            max_pixels: 50_000_000,
            max_video: Duration::from_hours(1),
            max_jobs_per_client: 8,
            cors_origins: Vec::new(),
        }
    }
}

/// The token for a server on `bind`: none on loopback; else the one kept in
/// `data_dir/token`, made (and stored with mode 0600) on first use. The
/// boolean says whether it was just made (print it once).
///
/// # Errors
/// The token file cannot be read or written.
pub fn token_for(bind: SocketAddr, data_dir: &Path) -> std::io::Result<Option<(String, bool)>> {
    if bind.ip().is_loopback() {
        return Ok(None);
    }
    let file = data_dir.join("token");
    if let Ok(t) = std::fs::read_to_string(&file) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            return Ok(Some((t, false)));
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let token = random_hex(32)?;
    let mut tmp = tempfile::NamedTempFile::new_in(data_dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    std::io::Write::write_all(&mut tmp, token.as_bytes())?;
    tmp.persist(&file).map_err(|e| e.error)?;
    Ok(Some((token, true)))
}

/// `n` random bytes from the system's generator, as hex.
pub(crate) fn random_hex(n: usize) -> std::io::Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().fold(String::with_capacity(2 * n), |mut s, b| {
        let _ = std::fmt::Write::write_fmt(&mut s, format_args!("{b:02x}"));
        s
    }))
}

/// Shared by every handler.
pub(crate) struct State {
    pub cfg: ServerConfig,
    pub ctx: Arc<EngineContext>,
    pub jobs: Arc<jobs::Jobs>,
    pub sources: Mutex<Vec<routes::SourceRecord>>,
    /// Synchronous engine work at once (the rest wait).
    pub slots: tokio::sync::Semaphore,
    /// What `/v1/metrics` reports.
    pub metrics: Arc<metrics::Metrics>,
    /// Uploads being received now.
    pub uploads: std::sync::atomic::AtomicUsize,
    /// The OpenAPI document (made from the handlers at start).
    pub openapi: serde_json::Value,
}

/// A running server.
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    handle: ServerHandle,
    jobs: Arc<jobs::Jobs>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

/// Stops a running server from another thread (a Ctrl-C handler).
#[derive(Clone)]
pub struct Stopper {
    handle: ServerHandle,
    jobs: Arc<jobs::Jobs>,
}

impl Stopper {
    /// Running jobs are cancelled and the server stops accepting requests.
    pub fn stop(&self) {
        jobs::shutdown(&self.jobs);
        // The command is sent when `stop` is called; awaiting it waits for the end.
        drop(self.handle.stop(true));
    }
}

impl Running {
    /// A handle that stops this server.
    pub fn stopper(&self) -> Stopper {
        Stopper {
            handle: self.handle.clone(),
            jobs: self.jobs.clone(),
        }
    }

    /// Stops it: no new connections, running jobs cancelled (recorded as
    /// interrupted), then waits for both.
    pub fn stop(mut self) {
        jobs::shutdown_and_wait(&self.jobs);
        actix_web::rt::System::new().block_on(self.handle.stop(true));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Waits until the server ends (Ctrl-C).
    ///
    /// # Errors
    /// The server failed.
    pub fn wait(mut self) -> std::io::Result<()> {
        let result = match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the server thread panicked"))),
            None => Ok(()),
        };
        jobs::shutdown_and_wait(&self.jobs);
        result
    }
}

/// Starts the server on its own thread and returns once it listens.
///
/// # Errors
/// The models' runtime cannot start, the data folder cannot be made, or the
/// address cannot be bound.
pub fn start(cfg: ServerConfig, ctx: Arc<EngineContext>) -> std::io::Result<Running> {
    std::fs::create_dir_all(cfg.data_dir.join("jobs"))?;
    std::fs::create_dir_all(cfg.data_dir.join("sources"))?;
    // Request folders left by a crash.
    let tmp = cfg.data_dir.join("tmp");
    if tmp.is_dir() {
        std::fs::remove_dir_all(&tmp)?;
    }
    std::fs::create_dir_all(&tmp)?;
    let metrics = Arc::new(metrics::Metrics::default());
    let jobs = jobs::Jobs::start(
        &ctx,
        &metrics,
        &cfg.data_dir.join("jobs"),
        &cfg.data_dir.join("jobs.sqlite"),
        cfg.workers,
        cfg.queue,
        cfg.retention,
    )?;
    let sources = routes::restore_sources(&cfg.data_dir.join("sources"));
    let state = web::Data::new(State {
        slots: tokio::sync::Semaphore::new(cfg.workers.max(1)),
        cfg,
        ctx,
        jobs: jobs.clone(),
        sources: Mutex::new(sources),
        metrics,
        uploads: std::sync::atomic::AtomicUsize::new(0),
        openapi: openapi::build(),
    });
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let thread = std::thread::Builder::new()
        .name("camshow-http".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let (bind, idle) = (state.cfg.bind, state.cfg.idle_timeout);
                let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
                let data = state.clone();
                let server = HttpServer::new(move || {
                    let (app, _) = App::new()
                        .into_utoipa_app()
                        .configure(routes::configure)
                        .split_for_parts();
                    app.app_data(data.clone())
                        .app_data(web::JsonConfig::default().limit(256 * 1024).error_handler(
                            |e, _| ApiError::field("body", format!("bad JSON: {e}")).into(),
                        ))
                        .app_data(web::QueryConfig::default().error_handler(|e, _| {
                            ApiError::field("query", format!("bad query: {e}")).into()
                        }))
                        .app_data(web::PathConfig::default().error_handler(|e, _| {
                            ApiError::not_found(format!("no such item: {e}")).into()
                        }))
                        .wrap(from_fn(authorise))
                })
                .workers(workers)
                .client_request_timeout(idle)
                .client_disconnect_timeout(Duration::from_secs(2))
                .keep_alive(Duration::from_secs(30))
                // Event streams end when the server stops; do not wait long for them.
                .shutdown_timeout(3)
                .disable_signals();
                let server = match server.bind(bind) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return Ok(());
                    }
                };
                // Sources and scans expire like results.
                let sweeper = state.clone();
                actix_web::rt::spawn(async move {
                    let mut tick = tokio::time::interval(sweeper.cfg.retention.every);
                    loop {
                        tick.tick().await;
                        let s = sweeper.clone();
                        let _ = web::block(move || routes::sweep(&s)).await;
                    }
                });
                let addr = server.addrs().first().copied().unwrap_or(bind);
                let running = server.run();
                let _ = tx.send(Ok((addr, running.handle())));
                running.await
            })
        })?;
    let (addr, handle) = rx
        .recv()
        .map_err(|_| std::io::Error::other("the server thread ended before listening"))??;
    Ok(Running {
        addr,
        handle,
        jobs,
        thread: Some(thread),
    })
}

/// Every request needs the token when one is set (header, or `?token=` for
/// browsers' EventSource and WebSocket, which cannot set headers).
async fn authorise(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<State>>() else {
        return Err(ApiError::internal("the server has no state").into());
    };
    let expected = state.cfg.token.clone();
    // A page of an allow-listed origin (`--cors-origin`) may call the API.
    let cors = req
        .headers()
        .get(actix_web::http::header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| {
            state
                .cfg
                .cors_origins
                .iter()
                .any(|a| a.eq_ignore_ascii_case(o))
        })
        .map(str::to_string);
    if let Some(origin) = &cors
        && req.method() == actix_web::http::Method::OPTIONS
        && req
            .headers()
            .contains_key(actix_web::http::header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        // The browser's preflight: answered here, without the token.
        let r = actix_web::HttpResponse::NoContent()
            .insert_header(("Access-Control-Allow-Origin", origin.as_str()))
            .insert_header((
                "Access-Control-Allow-Methods",
                "GET, POST, PUT, PATCH, DELETE",
            ))
            .insert_header((
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type, Range",
            ))
            .insert_header(("Access-Control-Max-Age", "600"))
            .insert_header(("Vary", "Origin"))
            .finish();
        return Ok(req.into_response(r).map_into_right_body());
    }
    if expected.is_none() && !from_this_machine(&req, cors.is_some()) {
        // A loopback server without a token: only this machine's own pages
        // and programs (another site's page, or a DNS-rebound name, is refused).
        return Err(ApiError::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "forbidden",
            "a server on loopback answers only requests to localhost from this machine's own pages; bind another address to use the token",
        )
        .into());
    }
    if let Some(expected) = expected.filter(|_| !page::is_page(req.path())) {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        let query = req
            .query_string()
            .split('&')
            .find_map(|kv| kv.strip_prefix("token=").map(str::to_string));
        let given = header.or(query).unwrap_or_default();
        if !same(given.as_bytes(), expected.as_bytes()) {
            return Err(ApiError::new(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this server needs `Authorization: Bearer TOKEN` (the token was printed when it first started; it is in the data folder's `token` file)",
            )
            .into());
        }
    }
    let mut res = next.call(req).await?;
    if let Some(origin) = cors
        && let Ok(v) = actix_web::http::header::HeaderValue::from_str(&origin)
    {
        let h = res.headers_mut();
        h.insert(actix_web::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        h.insert(
            actix_web::http::header::VARY,
            actix_web::http::header::HeaderValue::from_static("Origin"),
        );
    }
    Ok(res.map_into_left_body())
}

/// Whether the request names this machine as its host and, from a browser,
/// comes from a page of this machine.
fn from_this_machine(req: &ServiceRequest, allowed_origin: bool) -> bool {
    let local = |host: &str| {
        let name = host
            .rsplit_once(':')
            .filter(|(h, port)| {
                !h.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':')
            })
            .map_or(host, |(h, _)| h);
        matches!(name, "localhost" | "127.0.0.1" | "[::1]")
    };
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    let host_ok = header(actix_web::http::header::HOST).is_some_and(|h| local(&h));
    let origin_ok = allowed_origin
        || header(actix_web::http::header::ORIGIN).is_none_or(|o| {
            o.strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"))
                .is_some_and(local)
        });
    host_ok && origin_ok
}

/// Compares in time that does not depend on where the texts differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
