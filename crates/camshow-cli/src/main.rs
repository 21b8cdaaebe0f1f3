//! `camshow`: the Camshow Deepfaker command-line tool.

mod bench_cmd;
mod config_cmd;
mod detect_cmd;
mod doctor;
mod faces_cmd;
mod join_cmd;
mod live_cmd;
mod models_cmd;
mod preview;
mod progress;
mod serve_cmd;
mod settings_args;
mod swap_cmd;
mod ui_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const USAGE_TERMS: &str = "Use Camshow Deepfaker only with the consent of every person whose face you use, \
label what you publish as AI-generated, and never to deceive, harass or impersonate. \
Every output carries machine-readable AI provenance; nudity is refused.";

/// Real-time face swap engine. See the README for the usage terms.
#[derive(Debug, Parser)]
#[command(name = "camshow", version = VERSION.as_str(), about, after_help = USAGE_TERMS)]
struct Cli {
    /// Log more (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    /// Settings file [default: camshow.toml in the platform config folder; CAMSHOW_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Report ONNX Runtime, execution providers, models, FFmpeg, cameras and folders
    Doctor(doctor::DoctorArgs),
    /// Put the face from a source image on the faces of a target image
    Swap(Box<swap_cmd::SwapArgs>),
    /// Find the people in an image or video and write a face map for `swap --map`
    Faces(faces_cmd::FacesArgs),
    /// Swap faces live: a camera (or a file played as one) in; a preview window, a virtual camera and/or an MJPEG stream out
    Live(Box<live_cmd::LiveArgs>),
    /// List cameras with their ids and names
    Cameras(live_cmd::CamerasArgs),
    /// Show and change the settings file (`camshow.toml`)
    Config(config_cmd::ConfigArgs),
    /// Find faces in an image and print (or draw) them
    Detect(detect_cmd::DetectArgs),
    /// List, fetch, verify and import model files
    Models(models_cmd::ModelsArgs),
    /// Measure latencies on this machine
    Bench(bench_cmd::BenchArgs),
    /// Join the segments of a video made by `swap --segment` (no re-encoding; audio from the target)
    Join(join_cmd::JoinArgs),
    /// HTTP API over the engine: sources, image swaps, video jobs with progress events
    Serve(serve_cmd::ServeArgs),
    /// Open the desktop app (swap, preview, live, face mapper, models)
    Ui(ui_cmd::UiArgs),
}

pub(crate) static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(version_string);

fn version_string() -> String {
    let features = camshow_core::enabled_features();
    format!(
        "{} (execution-provider features: {})",
        env!("CARGO_PKG_VERSION"),
        if features.is_empty() {
            "none".into()
        } else {
            features.join(", ")
        }
    )
}

fn init_logging(verbose: u8) {
    // The product's own logs from -v; ONNX Runtime's internal ones only at -vvv.
    let default = match verbose {
        0 => "warn,ort=error",
        1 => "info,ort=error",
        2 => "debug,ort=error",
        _ => "trace,ort=info",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(
            std::env::var_os("NO_COLOR").is_none()
                && std::io::IsTerminal::is_terminal(&std::io::stderr()),
        )
        .try_init();
}

/// Deep-Live-Cam is run as `run.py -s face.jpg -t target.mp4 -o out.mp4`: the
/// same arguments without a command get the command they meant.
fn deep_live_cam_habit(args: impl Iterator<Item = std::ffi::OsString>) -> Option<String> {
    let args: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    let first = args.first()?;
    let swap_like = first.starts_with('-')
        && !matches!(
            first.as_str(),
            "-h" | "--help" | "-V" | "--version" | "-v" | "--verbose" | "--config"
        )
        && args.iter().any(|a| matches!(a.as_str(), "-s" | "--source"))
        && args
            .iter()
            .any(|a| matches!(a.as_str(), "-t" | "--target" | "-o" | "--output"));
    swap_like.then(|| {
        format!(
            "camshow needs a command first: did you mean `camshow swap {}`? (see `camshow --help`)",
            args.join(" ")
        )
    })
}

/// The error and its causes on one line, each cause once: a cause whose
/// text its parent already shows (decoders repeat theirs) is not repeated.
fn one_line(err: &anyhow::Error) -> String {
    camshow_core::one_line(err.as_ref())
}

/// Whether the error is a cancellation (Ctrl-C): exit code 130, as shells use.
fn cancelled(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<camshow_media::Error>()
            .is_some_and(camshow_media::Error::is_cancelled)
            || matches!(
                e.downcast_ref::<camshow_core::Error>(),
                Some(camshow_core::Error::Cancelled)
            )
    })
}

fn main() -> ExitCode {
    if let Some(hint) = deep_live_cam_habit(std::env::args_os().skip(1)) {
        #[allow(clippy::print_stderr)]
        {
            eprintln!("error: {hint}");
        }
        return ExitCode::from(2);
    }
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let _ = settings_args::CONFIG.set(cli.config.clone());
    let result = match cli.command {
        Command::Doctor(a) => doctor::run(&a),
        Command::Serve(a) => serve_cmd::run(&a),
        Command::Config(a) => config_cmd::run(&a),
        Command::Detect(a) => detect_cmd::run(&a),
        Command::Swap(a) => swap_cmd::run(&a),
        Command::Join(a) => join_cmd::run(&a),
        Command::Faces(a) => faces_cmd::run(&a),
        Command::Live(a) => live_cmd::run(&a),
        Command::Cameras(a) => live_cmd::cameras(&a),
        Command::Models(a) => models_cmd::run(&a),
        Command::Bench(a) => bench_cmd::run(&a),
        Command::Ui(a) => ui_cmd::run(&a, cli.config.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("error: {}", one_line(&err));
            }
            if cancelled(&err) {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug)]
    struct Inner;
    impl std::fmt::Display for Inner {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("decoding failed: not enough bytes\n")
        }
    }
    impl std::error::Error for Inner {}

    /// Shows its cause in its own text, as the image decoders do.
    #[derive(Debug)]
    struct Repeats(Inner);
    impl std::fmt::Display for Repeats {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "Format error: {}", self.0)
        }
    }
    impl std::error::Error for Repeats {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn errors_print_on_one_line_with_each_cause_once() {
        let e = anyhow::Error::new(Repeats(Inner)).context("cannot decode image a.jpg");
        assert_eq!(
            one_line(&e),
            "cannot decode image a.jpg: Format error: decoding failed: not enough bytes"
        );
        let e = anyhow::anyhow!("plain");
        assert_eq!(one_line(&e), "plain");
    }
}
