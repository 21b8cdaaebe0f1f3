//! Image and video jobs: a bounded queue, a fixed number of worker threads
//! running [`camshow_media::swap_job::run_swap`], and each job's status
//! published on a watch channel (read by `GET /v1/jobs/{id}` and its
//! Server-Sent Events).
//!
//! Jobs survive restarts: each job's record is a row of an SQLite database
//! in the data folder (`jobs.sqlite`, write-ahead log, synced at every
//! commit), written at every change of state; its files live in a folder
//! named by its id beside it. At start the records are read back: finished
//! jobs are listed with their results;
//! a job that was queued or running when the server stopped is marked
//! failed (`interrupted`: submit it again) and its files are removed.
//! Finished jobs are forgotten after `keep` and, past the disk quota,
//! oldest first (the newest is always kept).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use camshow_core::context::EngineContext;
use camshow_core::settings::Settings;
use camshow_media::swap_job::{MediaKind, SwapRequest, SwapResult, run_swap};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker.
    Queued,
    /// Being processed.
    Running,
    /// Finished; the result can be downloaded.
    Done,
    /// Ended with an error.
    Failed,
    /// Stopped by the client; its files are gone.
    Cancelled,
}

impl JobState {
    /// Whether the job has ended.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Done | Self::Failed | Self::Cancelled)
    }
}

/// An error a job ended with.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobError {
    /// Machine-readable code (as the API's errors).
    pub code: String,
    /// One line for people.
    pub message: String,
}

/// Frames (video) done so far.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    /// Frames written.
    pub done: u64,
    /// Frames expected, when known.
    pub total: Option<u64>,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// Its state.
    pub state: JobState,
    /// Image or video.
    #[schema(value_type = String)]
    pub kind: MediaKind,
    /// When it was created (seconds since 1970).
    pub created: f64,
    /// When it ended.
    pub finished: Option<f64>,
    /// Frames done.
    pub progress: Progress,
    /// Frames per second so far.
    pub fps: Option<f64>,
    /// Seconds left, estimated.
    pub eta_seconds: Option<f64>,
    /// Faces swapped (image) or frames with a swapped face (video), when done.
    pub swapped: Option<u64>,
    /// Frame ranges left unswapped by the safety rule (video).
    pub unswapped_ranges: Vec<[u64; 2]>,
    /// Why it failed.
    pub error: Option<JobError>,
    /// Where to download the result, when done.
    pub result: Option<String>,
}

/// One job.
pub struct Job {
    /// Its id.
    pub id: String,
    /// Its folder (uploads and result).
    pub dir: PathBuf,
    /// What to run.
    pub request: SwapRequest,
    /// With these settings.
    pub settings: Settings,
    /// Set to stop it.
    pub cancel: AtomicBool,
    /// Its status.
    pub status: watch::Sender<JobView>,
    /// Who sent it (for the per-client limit; not kept across restarts).
    client: std::sync::Mutex<Option<std::net::IpAddr>>,
    /// Where its record is kept (set when it is submitted or restored).
    db: std::sync::OnceLock<Arc<Db>>,
}

/// What a job's folder keeps about it.
#[derive(Serialize, Deserialize)]
struct Record {
    view: JobView,
    request: SwapRequest,
    settings: Settings,
}

/// The job records: a row per job (its id, when it was made, and the record
/// as JSON).
pub(crate) struct Db(Mutex<rusqlite::Connection>);

impl Db {
    fn open(path: &Path) -> std::io::Result<Self> {
        let io = |e: rusqlite::Error| {
            std::io::Error::other(format!("the job database {}: {e}", path.display()))
        };
        let c = rusqlite::Connection::open(path).map_err(io)?;
        c.pragma_update(None, "journal_mode", "WAL").map_err(io)?;
        c.pragma_update(None, "synchronous", "FULL").map_err(io)?;
        c.busy_timeout(Duration::from_secs(5)).map_err(io)?;
        c.execute_batch(
            "CREATE TABLE IF NOT EXISTS jobs (
                id TEXT PRIMARY KEY NOT NULL,
                created REAL NOT NULL,
                record TEXT NOT NULL
            )",
        )
        .map_err(io)?;
        Ok(Self(Mutex::new(c)))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn put(&self, id: &str, created: f64, record: &str) -> rusqlite::Result<()> {
        self.conn()
            .execute(
                "INSERT INTO jobs (id, created, record) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET record = excluded.record",
                rusqlite::params![id, created, record],
            )
            .map(drop)
    }

    fn delete(&self, id: &str) {
        if let Err(e) = self.conn().execute("DELETE FROM jobs WHERE id = ?1", [id]) {
            tracing::error!("cannot forget job {id}: {e}");
        }
    }

    /// Every record, oldest first.
    fn all(&self) -> Vec<(String, String)> {
        let c = self.conn();
        let rows = c
            .prepare("SELECT id, record FROM jobs ORDER BY created")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            });
        rows.unwrap_or_else(|e| {
            tracing::error!("cannot read the job records: {e}");
            Vec::new()
        })
    }
}

impl Job {
    /// A queued job.
    pub fn new(
        id: String,
        dir: PathBuf,
        kind: MediaKind,
        request: SwapRequest,
        settings: Settings,
    ) -> Self {
        let view = JobView {
            id: id.clone(),
            state: JobState::Queued,
            kind,
            created: now(),
            finished: None,
            progress: Progress::default(),
            fps: None,
            eta_seconds: None,
            swapped: None,
            unswapped_ranges: Vec::new(),
            error: None,
            result: None,
        };
        Self {
            id,
            dir,
            request,
            settings,
            cancel: AtomicBool::new(false),
            status: watch::channel(view).0,
            client: std::sync::Mutex::new(None),
            db: std::sync::OnceLock::new(),
        }
    }

    /// Records who sent it.
    pub fn set_client(&self, client: Option<std::net::IpAddr>) {
        *self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = client;
    }

    fn client(&self) -> Option<std::net::IpAddr> {
        *self
            .client
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Its status now.
    pub fn view(&self) -> JobView {
        self.status.borrow().clone()
    }

    fn update(&self, f: impl FnOnce(&mut JobView)) {
        self.status.send_modify(f);
    }

    /// A change of state: written to the job's record, then published (so
    /// a client that sees it finds the record complete).
    fn change(&self, f: impl FnOnce(&mut JobView)) {
        let mut view = self.view();
        f(&mut view);
        self.save_view(&view);
        self.status.send_replace(view);
    }

    fn save(&self) {
        self.save_view(&self.view());
    }

    fn save_view(&self, view: &JobView) {
        let record = Record {
            view: view.clone(),
            request: self.request.clone(),
            settings: self.settings.clone(),
        };
        let Some(db) = self.db.get() else {
            return;
        };
        let written = serde_json::to_string(&record)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                db.put(&self.id, view.created, &text)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::error!("cannot record job {}: {e}", self.id);
        }
    }

    /// Moves it from `Queued` to `to` if it is still queued (one of the
    /// worker and a cancelling client wins); recorded when it did.
    fn leave_queue(&self, to: JobState) -> bool {
        let won = self.status.send_if_modified(|v| {
            if v.state == JobState::Queued {
                v.state = to;
                if to.is_final() {
                    v.finished = Some(now());
                }
                true
            } else {
                false
            }
        });
        if won {
            if to.is_final() {
                clear_files(&self.dir);
            }
            self.save();
        }
        won
    }

    /// Ends it without a result: `state`, and `error` when there is one;
    /// its files are removed, its record kept.
    fn end_without_result(&self, state: JobState, error: Option<JobError>) {
        clear_files(&self.dir);
        self.change(|v| {
            v.state = state;
            v.finished = Some(now());
            v.eta_seconds = None;
            v.error = error;
        });
    }

    /// Reads a job back from its record (after a restart); its files are
    /// in `dir`.
    fn restore(db: &Arc<Db>, dir: &Path, record: &str) -> Option<Self> {
        let r: Record = serde_json::from_str(record)
            .map_err(|e| tracing::warn!("job record of {}: {e}", dir.display()))
            .ok()?;
        let job = Self {
            id: r.view.id.clone(),
            dir: dir.to_path_buf(),
            request: r.request,
            settings: r.settings,
            cancel: AtomicBool::new(false),
            status: watch::channel(r.view).0,
            client: std::sync::Mutex::new(None),
            db: std::sync::OnceLock::new(),
        };
        let _ = job.db.set(Arc::clone(db));
        let state = job.view().state;
        if !state.is_final() {
            job.end_without_result(JobState::Failed, Some(interrupted()));
        } else if state == JobState::Done && !job.request.output.is_file() {
            job.end_without_result(
                JobState::Failed,
                Some(JobError {
                    code: "result_missing".into(),
                    message: "the result was removed from the server's folder".into(),
                }),
            );
        }
        Some(job)
    }

    /// Bytes its folder holds.
    fn size(&self) -> u64 {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .filter_map(std::result::Result::ok)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum()
    }
}

fn interrupted() -> JobError {
    JobError {
        code: "interrupted".into(),
        message: "the server stopped while this job ran; submit it again".into(),
    }
}

/// Removes every file of a job's folder (its record is in the database).
fn clear_files(dir: &Path) {
    for e in std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(std::result::Result::ok)
    {
        let p = e.path();
        let removed = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        if let Err(e) = removed {
            tracing::warn!("cannot remove {}: {e}", p.display());
        }
    }
}

/// Seconds since 1970.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// How long finished jobs are kept, and how much disk they may hold.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Finished jobs (and their results) are forgotten this long after they end.
    pub keep: Duration,
    /// Bytes finished jobs may hold; past it the oldest go first (the newest stays).
    pub quota: u64,
    /// How often the rule is applied.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            keep: Duration::from_hours(24),
            quota: 20_000_000_000,
            every: Duration::from_mins(1),
        }
    }
}

/// Every job, and the queue to the workers.
pub struct Jobs {
    all: Mutex<Vec<Arc<Job>>>,
    db: Arc<Db>,
    queue: SyncSender<Arc<Job>>,
    shutdown: Arc<AtomicBool>,
    workers: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

/// What the workers share.
struct WorkerCtx {
    ctx: Arc<EngineContext>,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
}

impl Jobs {
    /// A queue of `capacity` jobs served by `workers` threads over `ctx`,
    /// with the jobs recorded in `db` (their files in `dir`) read back and
    /// `retention` applied.
    ///
    /// # Errors
    /// The database cannot be opened.
    pub fn start(
        ctx: &Arc<EngineContext>,
        metrics: &Arc<Metrics>,
        dir: &Path,
        db: &Path,
        workers: usize,
        capacity: usize,
        retention: Retention,
    ) -> std::io::Result<Arc<Self>> {
        let db = Arc::new(Db::open(db)?);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Job>>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        let shutdown = Arc::new(AtomicBool::new(false));
        let jobs = Arc::new(Self {
            all: Mutex::new(restore_all(dir, &db)),
            db,
            queue: tx,
            shutdown: shutdown.clone(),
            workers: Mutex::new(Vec::new()),
        });
        for i in 0..workers.max(1) {
            let rx = rx.clone();
            let w = WorkerCtx {
                ctx: ctx.clone(),
                metrics: metrics.clone(),
                stop: shutdown.clone(),
            };
            let spawned = std::thread::Builder::new()
                .name(format!("camshow-job-{i}"))
                .spawn(move || worker(&rx, &w));
            match spawned {
                Ok(h) => jobs
                    .workers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(h),
                Err(e) => tracing::error!("cannot start a job worker: {e}"),
            }
        }
        let weak = Arc::downgrade(&jobs);
        let spawned = std::thread::Builder::new()
            .name("camshow-job-retention".into())
            .spawn(move || {
                while let Some(jobs) = weak.upgrade() {
                    if jobs.shutdown.load(Ordering::Relaxed) {
                        return;
                    }
                    jobs.apply(retention);
                    drop(jobs);
                    std::thread::sleep(retention.every);
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the retention thread: {e}");
        }
        Ok(jobs)
    }

    /// Forgets finished jobs past `r.keep`, then the oldest finished ones
    /// while they hold more than `r.quota` (never the newest).
    pub fn apply(&self, r: Retention) {
        let now = now();
        let mut finished: Vec<(f64, Arc<Job>)> = self
            .lock()
            .iter()
            .filter_map(|j| {
                let v = j.view();
                v.state
                    .is_final()
                    .then(|| (v.finished.unwrap_or(v.created), j.clone()))
            })
            .collect();
        finished.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut drop_ids = Vec::new();
        let mut kept = Vec::new();
        for (at, j) in finished {
            if now - at > r.keep.as_secs_f64() {
                drop_ids.push(j);
            } else {
                kept.push(j);
            }
        }
        let mut total: u64 = kept.iter().map(|j| j.size()).sum();
        let mut kept = kept.into_iter();
        while total > r.quota && kept.len() > 1 {
            if let Some(j) = kept.next() {
                total = total.saturating_sub(j.size());
                drop_ids.push(j);
            }
        }
        for j in drop_ids {
            tracing::info!("forgetting job {} (retention)", j.id);
            // Files first: once the job is not listed, nothing of it is left.
            remove_dir(&j.dir);
            self.db.delete(&j.id);
            self.lock().retain(|k| k.id != j.id);
        }
    }

    /// Queues `job`; refused with 503 when the queue is full.
    pub fn submit(&self, job: Arc<Job>) -> ApiResult<()> {
        let _ = job.db.set(Arc::clone(&self.db));
        job.save();
        let sent = self.queue.try_send(job.clone());
        if sent.is_err() {
            self.db.delete(&job.id);
        }
        match sent {
            Ok(()) => {
                self.lock().push(job);
                Ok(())
            }
            Err(TrySendError::Full(_)) => Err(ApiError::new(
                actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "the job queue is full; try again later",
            )),
            Err(TrySendError::Disconnected(_)) => {
                Err(ApiError::internal("the job workers stopped"))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Job>>> {
        self.all.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The job `id`.
    pub fn get(&self, id: &str) -> ApiResult<Arc<Job>> {
        self.lock()
            .iter()
            .find(|j| j.id == id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no job {id}")))
    }

    /// Jobs newest first: `limit` of them from `offset`, and how many there are.
    pub fn page(&self, offset: usize, limit: usize) -> (Vec<JobView>, usize) {
        let all = self.lock();
        let views = all
            .iter()
            .rev()
            .skip(offset)
            .take(limit)
            .map(|j| j.view())
            .collect();
        (views, all.len())
    }

    /// Cancels a job that has not ended, or forgets one that has (its files
    /// removed). Returns the job's state afterwards.
    pub fn cancel_or_remove(&self, id: &str) -> ApiResult<JobState> {
        let job = self.get(id)?;
        let state = job.view().state;
        if state.is_final() {
            remove_dir(&job.dir);
            self.db.delete(id);
            self.lock().retain(|j| j.id != id);
            return Ok(state);
        }
        job.cancel.store(true, Ordering::Relaxed);
        // Still waiting: cancelled now, and the worker will skip it.
        if job.leave_queue(JobState::Cancelled) {
            return Ok(JobState::Cancelled);
        }
        // Running: it stops at the next frame.
        Ok(JobState::Running)
    }

    /// How many jobs are in each state.
    pub fn count_by_state(&self) -> Vec<(JobState, usize)> {
        let mut out: Vec<(JobState, usize)> = Vec::new();
        for j in self.lock().iter() {
            let s = j.view().state;
            match out.iter_mut().find(|(k, _)| *k == s) {
                Some((_, n)) => *n += 1,
                None => out.push((s, 1)),
            }
        }
        out
    }

    /// Whether any job is queued or running.
    pub fn any_active(&self) -> bool {
        self.lock().iter().any(|j| !j.view().state.is_final())
    }

    /// Jobs from `client` that are queued or running.
    pub fn active_for(&self, client: std::net::IpAddr) -> usize {
        self.lock()
            .iter()
            .filter(|j| j.client() == Some(client) && !j.view().state.is_final())
            .count()
    }

    /// Each running job's frames per second.
    pub fn running_fps(&self) -> Vec<(String, f64)> {
        self.lock()
            .iter()
            .map(|j| j.view())
            .filter(|v| v.state == JobState::Running)
            .map(|v| (v.id, v.fps.unwrap_or(0.0)))
            .collect()
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }
}

/// Stops the workers: running jobs are cancelled (recorded as interrupted).
pub fn shutdown(jobs: &Jobs) {
    jobs.shutdown.store(true, Ordering::Relaxed);
    for j in jobs.lock().iter() {
        j.cancel.store(true, Ordering::Relaxed);
    }
}

/// [`shutdown`], then waits for the workers to have recorded their jobs.
pub fn shutdown_and_wait(jobs: &Jobs) {
    shutdown(jobs);
    let handles: Vec<_> = jobs
        .workers
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect();
    for h in handles {
        let _ = h.join();
    }
}

/// The jobs recorded in `db`, oldest first, their files in `dir`; folders
/// without a record (a crash in the middle of an upload) are removed.
fn restore_all(dir: &Path, db: &Arc<Db>) -> Vec<Arc<Job>> {
    let folders: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(std::result::Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    let mut jobs: Vec<Arc<Job>> = Vec::new();
    for (id, record) in db.all() {
        let safe = id.len() == 24 && id.bytes().all(|b| b.is_ascii_hexdigit());
        let job = safe
            .then(|| Job::restore(db, &dir.join(&id), &record))
            .flatten();
        if let Some(j) = job {
            jobs.push(Arc::new(j));
        } else {
            tracing::warn!("job record {id:?} cannot be read: forgotten");
            db.delete(&id);
        }
    }
    for p in folders {
        let known = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| jobs.iter().any(|j| j.id == n));
        if !known {
            tracing::warn!("{} has no job record: removed", p.display());
            remove_dir(&p);
        }
    }
    jobs
}

fn remove_dir(dir: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove {}: {e}", dir.display());
    }
}

fn worker(rx: &Mutex<Receiver<Arc<Job>>>, w: &WorkerCtx) {
    while !w.stop.load(Ordering::Relaxed) {
        let next = rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(Duration::from_millis(200));
        match next {
            Ok(job) => run(&job, w),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn run(job: &Job, w: &WorkerCtx) {
    let (ctx, stopping) = (&w.ctx, &w.stop);
    // A job cancelled while it waited is not started.
    if !job.leave_queue(JobState::Running) {
        return;
    }
    let started = Instant::now();
    let written = std::sync::atomic::AtomicU64::new(0);
    let progress = |done: u64, total: Option<u64>| {
        let before = written.swap(done, Ordering::Relaxed);
        w.metrics
            .frames
            .fetch_add(done.saturating_sub(before), Ordering::Relaxed);
        let secs = started.elapsed().as_secs_f64();
        job.update(|v| {
            v.progress = Progress { done, total };
            v.fps = (secs > 0.0 && done > 0).then(|| done as f64 / secs);
            v.eta_seconds = match (v.fps, total) {
                (Some(fps), Some(t)) if fps > 0.0 => Some(t.saturating_sub(done) as f64 / fps),
                _ => None,
            };
        });
    };
    let outcome = run_swap(ctx, &job.settings, &job.request, &progress, &job.cancel);
    w.metrics
        .job_seconds
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(out) => {
            let (swapped, ranges) = match out.result {
                SwapResult::Image(r) => (r.faces_swapped as u64, Vec::new()),
                SwapResult::Video { report, .. } => (
                    report.frames_swapped,
                    report
                        .unswapped_ranges
                        .iter()
                        .map(|&(a, b)| [a, b])
                        .collect(),
                ),
            };
            job.change(|v| {
                v.state = JobState::Done;
                v.finished = Some(now());
                v.swapped = Some(swapped);
                v.unswapped_ranges = ranges;
                v.eta_seconds = Some(0.0);
                v.result = Some(format!("/v1/jobs/{}/result", job.id));
            });
        }
        // Stopped with the server: it did not finish, and says so after the restart.
        Err(e) if e.is_cancelled() && stopping.load(Ordering::Relaxed) => {
            job.end_without_result(JobState::Failed, Some(interrupted()));
        }
        Err(e) if e.is_cancelled() => job.end_without_result(JobState::Cancelled, None),
        Err(e) => {
            let mut api = crate::routes::scrub(ApiError::from(e), &job.dir);
            if let Some(data) = job.dir.parent().and_then(Path::parent) {
                api = crate::routes::scrub(api, data);
            }
            if api.code == "unsafe_content" {
                w.metrics.refused_unsafe.fetch_add(1, Ordering::Relaxed);
            }
            // Inputs are not kept for a failed job.
            job.end_without_result(
                JobState::Failed,
                Some(JobError {
                    code: api.code.into(),
                    message: api.message,
                }),
            );
        }
    }
}
