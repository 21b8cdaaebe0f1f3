//! `GET /v1/metrics`: the Prometheus text format (version 0.0.4).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::jobs::{JobState, Jobs};

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0,
];

/// A latency histogram (seconds).
#[derive(Debug, Default)]
pub struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, seconds: f64) {
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            if seconds <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        self.samples(out, name, "");
    }

    /// The sample lines, each with `labels` (`stage="detect",` or empty).
    fn samples(&self, out: &mut String, name: &str, labels: &str) {
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}le=\"+Inf\"}} {count}");
        let braces = |l: &str| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", l.trim_end_matches(','))
            }
        };
        let _ = writeln!(
            out,
            "{name}_sum{} {}",
            braces(labels),
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{} {count}", braces(labels));
    }
}

/// What the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Synchronous swaps (`POST /v1/swap`), their latency.
    pub swap_seconds: Histogram,
    /// Source uploads (`POST /v1/sources`), their latency.
    pub source_seconds: Histogram,
    /// Jobs, from start to end.
    pub job_seconds: Histogram,
    /// Video frames written by jobs.
    pub frames: AtomicU64,
    /// Requests refused by the content-safety gate.
    pub refused_unsafe: AtomicU64,
    /// Live WebSocket sessions running now.
    pub live_sessions: std::sync::Arc<AtomicU64>,
    /// Frames sent by live sessions.
    pub live_frames: AtomicU64,
    /// Live frames from arrival (or capture) to hand-off to the socket.
    pub live_latency_seconds: Histogram,
    /// Live frames' time in each stage: detect, gate_wait, swap, encode.
    pub live_stage_seconds: [Histogram; 4],
}

/// The stages of [`Metrics::live_stage_seconds`], in order.
pub const LIVE_STAGES: [&str; 4] = ["detect", "gate_wait", "swap", "encode"];

impl Metrics {
    /// The text of `/v1/metrics`.
    pub fn render(&self, jobs: &Jobs) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP camshow_jobs Jobs by state.\n# TYPE camshow_jobs gauge"
        );
        let counts = jobs.count_by_state();
        for state in [
            JobState::Queued,
            JobState::Running,
            JobState::Done,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            let n = counts.iter().find(|(s, _)| *s == state).map_or(0, |c| c.1);
            let label = serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default();
            let _ = writeln!(out, "camshow_jobs{{state=\"{label}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP camshow_queue_depth Jobs waiting for a worker.\n# TYPE camshow_queue_depth gauge\ncamshow_queue_depth {}",
            counts
                .iter()
                .find(|(s, _)| *s == JobState::Queued)
                .map_or(0, |c| c.1)
        );
        let _ = writeln!(
            out,
            "# HELP camshow_frames_processed_total Video frames written by jobs.\n# TYPE camshow_frames_processed_total counter\ncamshow_frames_processed_total {}",
            self.frames.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP camshow_job_fps Frames per second of each running job.\n# TYPE camshow_job_fps gauge"
        );
        for (id, fps) in jobs.running_fps() {
            let _ = writeln!(out, "camshow_job_fps{{job=\"{id}\"}} {fps}");
        }
        let _ = writeln!(
            out,
            "# HELP camshow_refused_unsafe_total Uploads and jobs refused by the content-safety gate.\n# TYPE camshow_refused_unsafe_total counter\ncamshow_refused_unsafe_total {}",
            self.refused_unsafe.load(Ordering::Relaxed)
        );
        self.swap_seconds.write(
            &mut out,
            "camshow_swap_seconds",
            "Latency of synchronous image swaps.",
        );
        self.source_seconds.write(
            &mut out,
            "camshow_source_seconds",
            "Latency of source uploads (gate and analysis).",
        );
        self.job_seconds
            .write(&mut out, "camshow_job_seconds", "Run time of jobs.");
        let _ = writeln!(
            out,
            "# HELP camshow_live_sessions Live WebSocket sessions running.\n# TYPE camshow_live_sessions gauge\ncamshow_live_sessions {}",
            self.live_sessions.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP camshow_live_frames_total Frames sent by live sessions.\n# TYPE camshow_live_frames_total counter\ncamshow_live_frames_total {}",
            self.live_frames.load(Ordering::Relaxed)
        );
        self.live_latency_seconds.write(
            &mut out,
            "camshow_live_latency_seconds",
            "Live frames from arrival to hand-off to the socket.",
        );
        let name = "camshow_live_stage_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Live frames' time in each stage of processing.\n# TYPE {name} histogram"
        );
        for (stage, h) in LIVE_STAGES.iter().zip(&self.live_stage_seconds) {
            h.samples(&mut out, name, &format!("stage=\"{stage}\","));
        }
        crate::gpu::write(&mut out);
        out
    }
}
