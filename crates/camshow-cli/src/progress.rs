//! A terminal progress bar for downloads.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use camshow_core::models::Progress;
use indicatif::{ProgressBar, ProgressStyle};

/// Draws one bar per transfer on stderr (hidden when stderr is not a terminal);
/// Ctrl-C stops the transfer, keeping what arrived for the next fetch.
#[derive(Default)]
pub struct Bar {
    bar: Option<ProgressBar>,
    cancel: Arc<AtomicBool>,
}

impl Bar {
    /// A bar whose transfers stop at Ctrl-C.
    pub fn stopped_by_ctrl_c() -> Self {
        let bar = Self::default();
        let c = bar.cancel.clone();
        // A second handler cannot be installed in the same process; ignore that case.
        let _ = ctrlc::set_handler(move || c.store(true, Ordering::Relaxed));
        bar
    }
}

impl Progress for Bar {
    fn start(&mut self, name: &str, done: u64, total: Option<u64>) {
        let bar = match total {
            Some(t) => ProgressBar::new(t),
            None => ProgressBar::new_spinner(),
        };
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:24} {bar:30} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(name.to_string());
        bar.set_position(done);
        self.bar = Some(bar);
    }

    fn advance(&mut self, done: u64) {
        if let Some(b) = &self.bar {
            b.set_position(done);
        }
    }

    fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }

    #[allow(clippy::print_stderr)]
    fn message(&mut self, text: &str) {
        match &self.bar {
            Some(b) => b.println(text),
            None => eprintln!("{text}"),
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}
