//! `camshow serve`: the HTTP API over the same settings and models.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use camshow_server::ServerConfig;
use clap::Args;

use crate::settings_args::{EngineArgs, with_model_files};

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
    /// Use FILE for model ID instead of the installed copy; repeatable
    #[arg(long, value_name = "ID=FILE")]
    model_file: Vec<String>,
    #[command(flatten)]
    engine: EngineArgs,
}

#[allow(clippy::print_stdout)]
pub fn run(args: &ServeArgs) -> Result<ExitCode> {
    let mut l = crate::settings_args::load()?;
    args.engine.overlay(&mut l);
    let config_file = l.file.clone();
    let settings = crate::settings_args::finish(l)?;
    let store = with_model_files(crate::settings_args::store(&settings), &args.model_file)?;
    let ctx = crate::settings_args::context(&settings, store.clone())?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(camshow_core::paths::server_dir);
    let token = camshow_server::token_for(args.bind, &data_dir)
        .with_context(|| format!("the token in {}", data_dir.display()))?;
    let mut cfg = ServerConfig::new(args.bind, data_dir, config_file, store);
    cfg.workers = usize::from(args.workers);
    cfg.max_upload_bytes = args.max_upload_mb * 1_000_000;
    cfg.token = token.as_ref().map(|(t, _)| t.clone());
    let running = camshow_server::start(cfg, ctx)
        .with_context(|| format!("cannot serve on {}", args.bind))?;
    println!("camshow serve: listening on http://{}", running.addr);
    match &token {
        Some((t, true)) => println!(
            "the token (shown once; kept in the data folder's `token` file): {t}\nsend it as `Authorization: Bearer TOKEN`"
        ),
        Some((_, false)) => println!("requests need the token in the data folder's `token` file"),
        None => {}
    }
    let stop = running.stopper();
    let _ = ctrlc::set_handler(move || stop.stop());
    running.wait()?;
    Ok(ExitCode::SUCCESS)
}
