//! The live preview: a native, resizable window (minifb; X11 on Linux,
//! Cocoa on macOS) that shows the swapped stream and its frame rate in the
//! title. Closing it, or pressing Esc or Q, ends the session.

use std::time::Instant;

use camshow_core::Frame;
use camshow_media::live::sinks::{FrameMeta, Sink};
use minifb::{Key, ScaleMode, Window, WindowOptions};

pub struct PreviewWindow {
    window: Option<Window>,
    buf: Vec<u32>,
    title: String,
    shown: u64,
    since: Instant,
    closed: bool,
}

impl PreviewWindow {
    pub fn new(title: &str) -> Self {
        Self {
            window: None,
            buf: Vec::new(),
            title: title.into(),
            shown: 0,
            since: Instant::now(),
            closed: false,
        }
    }

    fn open(&mut self, w: u32, h: u32) -> camshow_media::Result<()> {
        let opts = WindowOptions {
            resize: true,
            scale_mode: ScaleMode::AspectRatioStretch,
            ..WindowOptions::default()
        };
        let window = Window::new(&self.title, w as usize, h as usize, opts).map_err(|e| {
            camshow_media::Error::Live(format!("cannot open the preview window ({e}); is there a display (DISPLAY / WAYLAND_DISPLAY)?"))
        })?;
        self.window = Some(window);
        Ok(())
    }
}

impl Sink for PreviewWindow {
    fn describe(&self) -> String {
        "preview window".into()
    }

    fn send(&mut self, frame: &Frame, _meta: &FrameMeta) -> camshow_media::Result<()> {
        if self.window.is_none() {
            self.open(frame.width(), frame.height())?;
        }
        self.buf.clear();
        self.buf.extend(
            frame
                .data()
                .chunks_exact(3)
                .map(|p| (u32::from(p[0]) << 16) | (u32::from(p[1]) << 8) | u32::from(p[2])),
        );
        let Some(window) = self.window.as_mut() else {
            return Ok(());
        };
        window
            .update_with_buffer(&self.buf, frame.width() as usize, frame.height() as usize)
            .map_err(|e| camshow_media::Error::Live(format!("preview window: {e}")))?;
        if !window.is_open() || window.is_key_down(Key::Escape) || window.is_key_down(Key::Q) {
            self.closed = true;
        }
        self.shown += 1;
        let el = self.since.elapsed().as_secs_f64();
        if el >= 1.0 {
            window.set_title(&format!(
                "{}: {:.1} fps",
                self.title,
                self.shown as f64 / el
            ));
            self.shown = 0;
            self.since = Instant::now();
        }
        Ok(())
    }

    fn closed(&self) -> bool {
        self.closed
    }
}
