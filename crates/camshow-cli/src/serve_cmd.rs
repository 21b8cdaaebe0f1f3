//! `camshow serve`: the HTTP API over the same settings and models.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use camshow_server::ServerConfig;
use clap::Args;

use crate::settings_args::{EngineArgs, ModelFiles};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; any address but loopback needs the bearer token
    /// (made on first start, printed once, kept in the data folder)
    #[arg(long, default_value = "127.0.0.1:8686", value_name = "ADDR:PORT")]
    bind: SocketAddr,
    /// Where uploads, sources and results are kept [default: the platform data folder]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Jobs and swaps processed at once
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    workers: u16,
    /// Largest upload per request, in MB
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    max_upload_mb: u64,
    /// How long finished jobs and their results are kept: `90s`, `30m`, `24h`, `7d`
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_duration)]
    keep_results: Duration,
    /// Disk the finished jobs may hold, in GB; past it the oldest are removed first
    #[arg(long, default_value_t = 20.0, value_name = "GB")]
    quota_gb: f64,
    /// Uploads received at once; past it a request is refused (503) before it is read
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1000))]
    max_uploads: u16,
    /// Live WebSocket sessions at once (the browser page's webcam, /v1/live)
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    max_live: u16,
    /// Largest picture or video frame an upload may have, in megapixels
    #[arg(long, default_value_t = 50.0, value_name = "MP")]
    max_megapixels: f64,
    /// Longest video an upload may be, in minutes
    #[arg(long, default_value_t = 60.0, value_name = "MINUTES")]
    max_video_minutes: f64,
    /// Jobs one client (address) may have queued or running at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=1000))]
    max_jobs_per_client: u16,
    /// An origin (`https://app.example.com`) whose pages may call the API
    /// from a browser (CORS); repeatable. None by default
    #[arg(long, value_name = "ORIGIN")]
    cors_origin: Vec<String>,
    #[command(flatten)]
    models: ModelFiles,
    #[command(flatten)]
    engine: EngineArgs,
}

#[allow(clippy::print_stdout)]
pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    let mut l = crate::settings_args::load()?;
    args.engine.overlay(&mut l);
    let config_file = l.file.clone();
    let settings = crate::settings_args::finish(l)?;
    let store = args.models.store(&settings)?;
    let ctx = crate::settings_args::context(&settings, store.clone())?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(camshow_core::paths::server_dir);
    let token = camshow_server::token_for(args.bind, &data_dir)
        .with_context(|| format!("the token in {}", data_dir.display()))?;
    let mut cfg = ServerConfig::new(args.bind, data_dir, config_file, store);
    cfg.engine = settings.clone();
    cfg.workers = usize::from(args.workers);
    cfg.max_upload_bytes = args.max_upload_mb * 1_000_000;
    cfg.max_live = usize::from(args.max_live);
    cfg.max_uploads = usize::from(args.max_uploads);
    cfg.max_jobs_per_client = usize::from(args.max_jobs_per_client);
    if !(args.max_megapixels.is_finite() && args.max_megapixels > 0.0) {
        anyhow::bail!("--max-megapixels must be more than 0");
    }
    cfg.max_pixels = (args.max_megapixels * 1e6) as u64;
    if !(args.max_video_minutes.is_finite() && args.max_video_minutes > 0.0) {
        anyhow::bail!("--max-video-minutes must be more than 0");
    }
    cfg.max_video = Duration::from_secs_f64(args.max_video_minutes * 60.0);
    for o in &args.cors_origin {
        let ok = (o.starts_with("http://") || o.starts_with("https://"))
            && !o.ends_with('/')
            && !o.contains('*');
        if !ok {
            anyhow::bail!(
                "--cors-origin {o:?}: give an origin like https://app.example.com (scheme and host, no path, no wildcard)"
            );
        }
    }
    cfg.cors_origins.clone_from(&args.cors_origin);
    cfg.token = token.as_ref().map(|(t, _)| t.clone());
    if !(args.quota_gb.is_finite() && args.quota_gb > 0.0) {
        anyhow::bail!("--quota-gb must be more than 0");
    }
    cfg.retention.keep = args.keep_results;
    cfg.retention.quota = (args.quota_gb * 1e9) as u64;
    let running = camshow_server::start(cfg, ctx)
        .with_context(|| format!("cannot serve on {}", args.bind))?;
    let mut said = format!(
        "camshow serve: listening on http://{addr}\nthe browser page: http://{addr}/  the API's document: /v1/docs\n",
        addr = running.addr
    );
    match &token {
        Some((t, true)) => {
            said.push_str("the token (shown once; kept in the data folder's `token` file): ");
            said.push_str(t);
            said.push_str("\nsend it as `Authorization: Bearer TOKEN`\n");
        }
        Some((_, false)) => {
            said.push_str("requests need the token in the data folder's `token` file\n");
        }
        None => {}
    }
    // A server whose standard output was closed (a pipe read once) goes on serving.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(said.as_bytes()).and_then(|()| out.flush());
    drop(out);
    let stop = running.stopper();
    let _ = ctrlc::set_handler(move || stop.stop());
    running.wait()?;
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `30m`, `24h`, `7d` (a number and a unit).
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 30m, 24h or 7d"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit is s, m, h or d")),
    };
    n.checked_mul(secs)
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is not a positive duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_users_write_them() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_mins(30)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_hours(24)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_hours(168)));
        for bad in ["", "h", "5", "5w", "0s", "-1h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
