//! Image and video jobs: a bounded queue, a fixed number of worker threads
//! running [`camshow_media::swap_job::run_swap`], and each job's status
//! published on a watch channel (read by `GET /v1/jobs/{id}` and its
//! Server-Sent Events).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use camshow_core::context::EngineContext;
use camshow_core::settings::Settings;
use camshow_media::swap_job::{MediaKind, SwapRequest, SwapResult, run_swap};
use serde::Serialize;
use tokio::sync::watch;

use crate::error::{ApiError, ApiResult};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
pub struct JobError {
    /// Machine-readable code (as the API's errors).
    pub code: &'static str,
    /// One line for people.
    pub message: String,
}

/// Frames (video) done so far.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Progress {
    /// Frames written.
    pub done: u64,
    /// Frames expected, when known.
    pub total: Option<u64>,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// Its state.
    pub state: JobState,
    /// Image or video.
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
}

impl Job {
    /// Its status now.
    pub fn view(&self) -> JobView {
        self.status.borrow().clone()
    }

    fn update(&self, f: impl FnOnce(&mut JobView)) {
        self.status.send_modify(f);
    }
}

/// Seconds since 1970.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Every job, and the queue to the workers.
pub struct Jobs {
    all: Mutex<Vec<Arc<Job>>>,
    queue: SyncSender<Arc<Job>>,
    shutdown: Arc<AtomicBool>,
}

impl Jobs {
    /// A queue of `capacity` jobs served by `workers` threads over `ctx`.
    pub fn start(ctx: &Arc<EngineContext>, workers: usize, capacity: usize) -> Arc<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Arc<Job>>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        let shutdown = Arc::new(AtomicBool::new(false));
        for i in 0..workers.max(1) {
            let (rx, ctx, stop) = (rx.clone(), ctx.clone(), shutdown.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("camshow-job-{i}"))
                .spawn(move || worker(&rx, &ctx, &stop));
            if let Err(e) = spawned {
                tracing::error!("cannot start a job worker: {e}");
            }
        }
        Arc::new(Self {
            all: Mutex::new(Vec::new()),
            queue: tx,
            shutdown,
        })
    }

    /// Queues `job`; refused with 503 when the queue is full.
    pub fn submit(&self, job: Arc<Job>) -> ApiResult<()> {
        match self.queue.try_send(job.clone()) {
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
            self.lock().retain(|j| j.id != id);
            remove_dir(&job.dir);
            return Ok(state);
        }
        job.cancel.store(true, Ordering::Relaxed);
        if state == JobState::Queued {
            // The worker skips it; say so now.
            job.update(|v| {
                v.state = JobState::Cancelled;
                v.finished = Some(now());
            });
            remove_dir(&job.dir);
            return Ok(JobState::Cancelled);
        }
        Ok(state)
    }

    /// Jobs waiting or running.
    pub fn active(&self) -> usize {
        self.lock()
            .iter()
            .filter(|j| !j.view().state.is_final())
            .count()
    }
}

impl Drop for Jobs {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::Relaxed);
    }
}

/// Stops the workers (they finish the job at hand).
pub fn shutdown(jobs: &Jobs) {
    jobs.shutdown.store(true, Ordering::Relaxed);
    for j in jobs.lock().iter() {
        j.cancel.store(true, Ordering::Relaxed);
    }
}

fn remove_dir(dir: &std::path::Path) {
    if let Err(e) = std::fs::remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("cannot remove {}: {e}", dir.display());
    }
}

fn worker(rx: &Mutex<Receiver<Arc<Job>>>, ctx: &Arc<EngineContext>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let next = rx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(Duration::from_millis(200));
        match next {
            Ok(job) => run(&job, ctx),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

fn run(job: &Job, ctx: &Arc<EngineContext>) {
    if job.cancel.load(Ordering::Relaxed) {
        return;
    }
    job.update(|v| v.state = JobState::Running);
    let started = Instant::now();
    let progress = |done: u64, total: Option<u64>| {
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
            job.update(|v| {
                v.state = JobState::Done;
                v.finished = Some(now());
                v.swapped = Some(swapped);
                v.unswapped_ranges = ranges;
                v.eta_seconds = Some(0.0);
                v.result = Some(format!("/v1/jobs/{}/result", job.id));
            });
        }
        Err(e) if e.is_cancelled() => {
            remove_dir(&job.dir);
            job.update(|v| {
                v.state = JobState::Cancelled;
                v.finished = Some(now());
            });
        }
        Err(e) => {
            let api = crate::routes::scrub(ApiError::from(e), &job.dir);
            // Inputs are not kept for a failed job.
            remove_dir(&job.dir);
            job.update(|v| {
                v.state = JobState::Failed;
                v.finished = Some(now());
                v.error = Some(JobError {
                    code: api.code,
                    message: api.message,
                });
            });
        }
    }
}
