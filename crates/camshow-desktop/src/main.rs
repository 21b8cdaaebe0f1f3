//! `camshow-desktop` (also started by `camshow ui`): the desktop app.

use std::path::PathBuf;
use std::process::ExitCode;

use camshow_core::settings::{Layered, config_file};
use camshow_desktop::app::{Launch, launch};
use camshow_desktop::prefs::Prefs;
use camshow_desktop::state::{Action, Screen};
use clap::Parser;

/// The Camshow Deepfaker window: pick a face, pick a target, swap — images,
/// videos and the live camera, with a preview of every option.
#[derive(Debug, Parser)]
#[command(name = "camshow-desktop", version)]
struct Args {
    /// Settings file [default: camshow.toml in the platform config folder; CAMSHOW_CONFIG]
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Source photo(s) to start with (one person)
    #[arg(short, long, value_name = "PHOTO")]
    source: Vec<PathBuf>,
    /// Target image or video to start with
    #[arg(short, long, value_name = "FILE")]
    target: Option<PathBuf>,
    /// Output file [default: next to the target]
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Use FILE for model ID instead of the installed copy; repeatable
    #[arg(long, value_name = "ID=FILE")]
    model_file: Vec<String>,
    /// The screen to open: swap, live, mapper or models
    #[arg(long, default_value = "swap", value_parser = ["swap", "live", "mapper", "models"])]
    screen: String,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,ort=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let settings_file = config_file(args.config.as_deref());
    let mut initial = Vec::new();
    // A broken settings file is shown in the window, which then runs on the defaults.
    let settings = match Layered::load(args.config.as_deref()) {
        Ok(l) => l.settings,
        Err(e) => {
            initial.push(Action::Error(format!(
                "{} (running on the default settings)",
                camshow_core::one_line(&e)
            )));
            camshow_core::settings::Settings::default()
        }
    };
    let prefs_file = Prefs::file_for(&settings_file);
    let (prefs, problem) = Prefs::load(&prefs_file);
    if let Some(p) = problem {
        initial.push(Action::Error(p));
    }
    if !args.source.is_empty() {
        initial.push(Action::ChooseSources(args.source));
    }
    if let Some(t) = args.target {
        initial.push(Action::ChooseTarget(t));
    }
    if let Some(o) = args.output {
        initial.push(Action::ChooseOutput(o));
    }
    let screen = match args.screen.as_str() {
        "live" => Screen::Live,
        "mapper" => Screen::Mapper,
        "models" => Screen::Models,
        _ => Screen::Swap,
    };
    initial.push(Action::Show(screen));
    launch(Launch {
        settings,
        model_files: args.model_file,
        settings_file,
        prefs_file,
        prefs,
        initial,
    });
    ExitCode::SUCCESS
}
