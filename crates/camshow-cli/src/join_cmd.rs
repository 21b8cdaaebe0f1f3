//! `camshow join`: the parts of a video made by `swap --segment`, put together.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use clap::Args;

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// The parts (`swap --segment i/n` outputs), in any order; each part exactly once
    #[arg(required = true, value_name = "SEGMENT")]
    segments: Vec<PathBuf>,
    /// The video the parts were made from (its audio and colour tags are used)
    #[arg(short, long, value_name = "VIDEO")]
    target: PathBuf,
    /// The joined video (.mp4/.mov/.mkv/.webm, as the parts)
    #[arg(short, long, value_name = "PATH")]
    output: PathBuf,
    /// Leave the target's audio out
    #[arg(long)]
    no_keep_audio: bool,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

#[allow(clippy::print_stdout)]
pub fn run(args: &JoinArgs) -> Result<ExitCode> {
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let c = cancel.clone();
        let _ = ctrlc::set_handler(move || c.store(true, Ordering::Relaxed));
    }
    let report = camshow_media::segment::join(
        &args.segments,
        &args.target,
        &args.output,
        !args.no_keep_audio,
        &cancel,
    )?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "joined {} segment(s): {} frames{}",
            report.segments,
            report.frames,
            if report.audio {
                ", with the target's audio"
            } else {
                ""
            }
        );
        println!("output: {}", report.output.display());
    }
    Ok(ExitCode::SUCCESS)
}
