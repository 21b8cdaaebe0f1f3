//! The engine's typed error.

use std::path::PathBuf;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error and its causes on one line, each cause once (errors that repeat
/// their source's text in their own are not said twice), whitespace folded:
/// how every front end shows an error to a person.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cause = Some(err);
    while let Some(e) = cause {
        let text = e.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let text = text.trim_start_matches(": ").trim();
        if !text.is_empty() && !out.contains(text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(text);
        }
        cause = e.source();
    }
    out
}

/// Everything that can go wrong inside the engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ONNX Runtime shared library could not be found anywhere.
    #[error(
        "ONNX Runtime library not found (looked in: {searched}); run the README's setup command or set ORT_DYLIB_PATH"
    )]
    RuntimeNotFound {
        /// The places that were searched, for the message.
        searched: String,
    },
    /// The ONNX Runtime library exists but could not be loaded.
    #[error("failed to load the ONNX Runtime library {}: {reason}", path.display())]
    RuntimeLoad {
        /// The library path.
        path: PathBuf,
        /// Why it failed.
        reason: String,
    },
    /// An ONNX Runtime call failed.
    #[error("ONNX Runtime error in {context}")]
    Ort {
        /// What was being done.
        context: String,
        /// The runtime's error.
        #[source]
        source: ort::Error,
    },
    /// An execution provider the user asked for did not attach.
    #[error(
        "execution provider {provider} was requested but could not be used for model {model}: {reason}"
    )]
    ProviderUnavailable {
        /// The provider's name.
        provider: String,
        /// The model being loaded.
        model: String,
        /// The runtime's explanation.
        reason: String,
    },
    /// An execution provider name that we do not know.
    #[error(
        "unknown execution provider {0:?} (known: cpu, cuda, tensorrt, coreml, directml, openvino, rocm)"
    )]
    UnknownProvider(String),
    /// A model file is not installed.
    #[error("model {name} is not installed in {}; install it with `camshow models fetch {name}`{hint}", dir.display())]
    ModelMissing {
        /// Manifest id.
        name: String,
        /// The models directory.
        dir: PathBuf,
        /// Extra advice.
        hint: String,
    },
    /// A model file is present but does not match the manifest.
    #[error("model file {} is corrupt: {reason}; run `camshow models fetch {name}` to replace it", path.display())]
    ModelCorrupt {
        /// Manifest id.
        name: String,
        /// The file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
    /// No model of that name in the manifest.
    #[error("unknown model {0:?}; `camshow models list` shows the known ones")]
    UnknownModel(String),
    /// A model does not have the inputs/outputs the engine expects.
    #[error("model {model} does not have the expected signature: {reason}")]
    ModelSignature {
        /// The model.
        model: String,
        /// What is wrong.
        reason: String,
    },
    /// A model runs but gives unusable output on this device (FP16 kernels
    /// that overflow on some cards give NaN).
    #[error("model {model} gives unusable output here: {reason}")]
    ModelOutput {
        /// The model.
        model: String,
        /// What is wrong, and what to do.
        reason: String,
    },
    /// Malformed ONNX/protobuf data.
    #[error("invalid ONNX model data: {0}")]
    OnnxFormat(String),
    /// A download failed.
    #[error("download of {name} failed: {reason}")]
    Download {
        /// What was being downloaded.
        name: String,
        /// Why.
        reason: String,
    },
    /// Data failed verification against the manifest.
    #[error("{what} failed verification: {reason}")]
    Verification {
        /// What was checked.
        what: String,
        /// Why it failed.
        reason: String,
    },
    /// The content-safety gate refused the input.
    #[error(
        "refused by the content-safety gate: {what} shows {labels} (score {score:.2} ≥ {threshold:.2}); Camshow Deepfaker does not process nudity"
    )]
    Unsafe {
        /// Which input.
        what: String,
        /// The classes found.
        labels: String,
        /// The highest score.
        score: f32,
        /// The threshold.
        threshold: f32,
    },
    /// No face where one is needed.
    #[error("no face found in the {what}")]
    NoFace {
        /// Which input ("source image", "target", "reference image").
        what: String,
    },
    /// Bad caller input (frame size, arguments).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Settings that break a rule; each problem names its field.
    #[error("invalid settings: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Settings(Vec<Problem>),
    /// A settings key that does not exist.
    #[error("unknown setting `{key}`{hint}")]
    UnknownSetting {
        /// The key as given.
        key: String,
        /// A did-you-mean, or the known keys.
        hint: String,
    },
    /// A settings file that cannot be read as settings.
    #[error("settings file {}{}: {message}", path.display(), at(*line, *column))]
    SettingsFile {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when not known).
        line: usize,
        /// 1-based column (0 when not known).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The caller cancelled the work.
    #[error("cancelled")]
    Cancelled,
    /// A failure inside the engine (a bug or a broken model), not the caller's input.
    #[error("internal error: {0}")]
    Internal(String),
    /// A file-system error.
    #[error("{context} {}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An external tool (pip, npm, tar) failed.
    #[error("{tool} failed: {reason}")]
    Tool {
        /// The tool.
        tool: String,
        /// Its output or status.
        reason: String,
    },
}

/// One problem found by [`crate::settings::Settings::validate`]: the
/// field's path and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// Key path, e.g. `processors[1].blend`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects [`Problem`]s while settings are checked.
#[derive(Debug, Default)]
pub struct Checker(Vec<Problem>);

impl Checker {
    /// Adds a problem at `path`.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    /// Adds a problem unless `v` is a finite number in `lo..=hi`.
    pub fn range(&mut self, path: impl Into<String>, v: f64, lo: f64, hi: f64) {
        if !(v.is_finite() && (lo..=hi).contains(&v)) {
            self.push(path, format!("{v} is not in {lo}–{hi}"));
        }
    }

    /// The problems found.
    pub fn into_problems(self) -> Vec<Problem> {
        self.0
    }
}

/// An error's message without the variant's prefix.
pub(crate) fn message_of(e: &Error) -> String {
    match e {
        Error::InvalidInput(m) => m.clone(),
        other => other.to_string(),
    }
}

fn at(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" line {line}, column {column}")
    }
}

impl Error {
    /// Whether the caller can fix this by changing the input, settings or
    /// installed models (HTTP 4xx), as opposed to an internal failure (5xx).
    pub fn is_user_error(&self) -> bool {
        !matches!(
            self,
            Self::Ort { .. }
                | Self::Internal(_)
                | Self::Io { .. }
                | Self::RuntimeLoad { .. }
                | Self::Tool { .. }
                | Self::Cancelled
        )
    }

    /// Wraps an `ort` error with a short context.
    pub(crate) fn ort(context: impl Into<String>) -> impl FnOnce(ort::Error) -> Self {
        let context = context.into();
        move |source| Self::Ort { context, source }
    }

    /// Wraps an I/O error with a path.
    pub(crate) fn io(
        context: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            context,
            path,
            source,
        }
    }
}

impl From<ort::Error<ort::session::builder::SessionBuilder>> for Error {
    fn from(source: ort::Error<ort::session::builder::SessionBuilder>) -> Self {
        Self::Ort {
            context: "configuring a session".into(),
            source: source.into(),
        }
    }
}
