//! Media errors.

use std::path::PathBuf;

/// Result with the media [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors from reading and writing media.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read, written or renamed.
    #[error("{context} {}", path.display())]
    Io {
        /// What was being done.
        context: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// An image could not be decoded.
    #[error("cannot decode image {}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        #[source]
        source: image::ImageError,
    },
    /// An image could not be encoded.
    #[error("cannot encode image {}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// The encoder's error.
        #[source]
        source: image::ImageError,
    },
    /// The output format is not one we write.
    #[error("unsupported output format for {}: use .png, .jpg or .jpeg", path.display())]
    UnsupportedFormat {
        /// The file.
        path: PathBuf,
    },
    /// The output video format is not one we write.
    #[error("unsupported output video format for {}: use .mp4, .mov, .mkv or .webm", path.display())]
    UnsupportedVideoFormat {
        /// The file.
        path: PathBuf,
    },
    /// The caller cancelled the work; nothing was written.
    #[error("cancelled; no output was written")]
    Cancelled,
    /// A failure inside the product (a bug or a broken tool), not the caller's input.
    #[error("internal error: {0}")]
    Internal(String),
    /// A face map's person whose source could not be prepared.
    #[error("source of person {person}")]
    Person {
        /// The person's id in the map.
        person: usize,
        /// Why.
        #[source]
        source: Box<Error>,
    },
    /// Bad input.
    #[error("invalid input: {0}")]
    Invalid(String),
    /// A live source or output failed (camera, window, stream, virtual camera).
    #[error("{0}")]
    Live(String),
    /// An engine error.
    #[error(transparent)]
    Core(#[from] camshow_core::Error),
    /// An external tool failed.
    #[error("{tool} failed: {reason}")]
    Tool {
        /// The tool.
        tool: String,
        /// What happened.
        reason: String,
    },
}

impl Error {
    /// Whether this is a cancellation (of this crate or of the engine).
    pub fn is_cancelled(&self) -> bool {
        match self {
            Self::Person { source, .. } => source.is_cancelled(),
            other => matches!(
                other,
                Self::Cancelled | Self::Core(camshow_core::Error::Cancelled)
            ),
        }
    }

    /// Whether the caller can fix this by changing the input or settings
    /// (HTTP 4xx), as opposed to an internal failure (5xx).
    pub fn is_user_error(&self) -> bool {
        match self {
            Self::Core(e) => e.is_user_error(),
            Self::Decode { .. }
            | Self::UnsupportedFormat { .. }
            | Self::UnsupportedVideoFormat { .. }
            | Self::Invalid(_) => true,
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::AlreadyExists
            ),
            Self::Encode { .. }
            | Self::Live(_)
            | Self::Tool { .. }
            | Self::Cancelled
            | Self::Internal(_) => false,
            Self::Person { source, .. } => source.is_user_error(),
        }
    }

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
