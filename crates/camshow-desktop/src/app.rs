//! The desktop window: launches Dioxus, wires the state to the engine
//! thread, serves pictures to the webview and remembers the window.

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use camshow_core::settings::Settings;
use dioxus::desktop::tao::event::{Event, WindowEvent};
use dioxus::desktop::wry::http::Response;
use dioxus::desktop::{
    Config, LogicalPosition, LogicalSize, WindowBuilder, use_asset_handler, use_window,
    use_wry_event_handler,
};
use dioxus::prelude::*;

use crate::frames::FrameStore;
use crate::prefs::{Geometry, Prefs};
use crate::state::{Action, AppState, Command, Pick};
use crate::ui::{Body, Ui};
use crate::worker::Worker;

/// What the window starts with.
#[derive(Clone)]
pub struct Launch {
    /// The settings (defaults < file < `CAMSHOW_*`).
    pub settings: Settings,
    /// `ID=FILE`: files used instead of installed models.
    pub model_files: Vec<String>,
    /// The settings file (changes are saved there).
    pub settings_file: PathBuf,
    /// The preferences file.
    pub prefs_file: PathBuf,
    /// The preferences.
    pub prefs: Prefs,
    /// Actions to run at start (files given on the command line, messages).
    pub initial: Vec<Action>,
}

/// The stylesheet (light, dark and system themes).
const STYLE: &str = include_str!("style.css");

/// Binds every `<img data-pull>` to pull its next frame when the last one
/// has been drawn (so a slow webview asks for fewer frames).
const PULL: &str = r"
setInterval(function () {
  document.querySelectorAll('img[data-pull]').forEach(function (img) {
    if (img.dataset.bound) return;
    img.dataset.bound = '1';
    var n = 0;
    var next = function () { if (document.body.contains(img)) img.src = '/frames/' + img.dataset.pull + '?n=' + (++n); };
    img.onload = next;
    img.onerror = function () { setTimeout(next, 200); };
  });
}, 200);
";

/// Opens the window; returns when it is closed.
pub fn launch(l: Launch) {
    let mut window = WindowBuilder::new()
        .with_title("Camshow Deepfaker")
        .with_min_inner_size(LogicalSize::new(900.0, 600.0));
    window = match l.prefs.window {
        Some(g) => window
            .with_inner_size(LogicalSize::new(f64::from(g.width), f64::from(g.height)))
            .with_position(LogicalPosition::new(f64::from(g.x), f64::from(g.y))),
        None => window.with_inner_size(LogicalSize::new(1280.0, 800.0)),
    };
    let cfg = Config::new()
        .with_window(window)
        .with_menu(None)
        .with_disable_context_menu(true)
        // The page is the app: nothing navigates it away. (Dioxus's page
        // already cancels drops outside the zones, but WebKitGTK opens a
        // file whose drop comes before the page answered the drag.)
        .with_navigation_handler(|url| {
            tracing::debug!("navigation to {url} refused");
            false
        })
        // WebKit's own storage in our cache, not `~/.local/share/camshow-desktop`.
        .with_data_directory(camshow_core::paths::cache_dir().join("webview"))
        .with_custom_head(format!("<style>{STYLE}</style><script>{PULL}</script>"));
    LaunchBuilder::desktop()
        .with_cfg(cfg)
        .with_context(l)
        .launch(Root);
}

#[component]
fn Root() -> Element {
    let launch = use_context::<Launch>();
    let frames = use_hook(|| Arc::new(FrameStore::default()));
    let mut state = use_signal(|| AppState::new(launch.settings.clone(), launch.prefs.clone()));
    let (worker, inbox) = use_hook(|| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Action>();
        let worker = Worker::spawn(
            launch.settings.clone(),
            launch.model_files.clone(),
            launch.settings_file.clone(),
            launch.prefs_file.clone(),
            Arc::clone(&frames),
            Arc::new(move |a| {
                let _ = tx.send(a);
            }),
        );
        (worker, Rc::new(RefCell::new(Some(rx))))
    });
    let w = worker.clone();
    let dispatch = use_callback(move |a: Action| {
        let cmds = state.write().apply(a);
        for c in cmds {
            match c {
                Command::PickFile(which) => {
                    let id = match which {
                        Pick::Sources => "source-input",
                        Pick::Target => "target-input",
                    };
                    dioxus::document::eval(&format!("document.getElementById('{id}')?.click()"));
                }
                c => w.send(c),
            }
        }
    });
    use_context_provider(|| Ui { state, dispatch });
    // The title says where the window is and what runs (also in the taskbar).
    let title_window = use_window();
    use_effect(move || title_window.set_title(&crate::ui::title(&state.read())));
    // The engine's answers, and the files given on the command line.
    use_future(move || {
        let inbox = Rc::clone(&inbox);
        let initial = launch.initial.clone();
        async move {
            for a in initial {
                dispatch.call(a);
            }
            let Some(mut rx) = inbox.borrow_mut().take() else {
                return;
            };
            while let Some(a) = rx.recv().await {
                dispatch.call(a);
            }
        }
    });
    let store = Arc::clone(&frames);
    use_asset_handler("frames", move |req, responder| {
        let key = req
            .uri()
            .path()
            .trim_start_matches('/')
            .trim_start_matches("frames/")
            .to_string();
        let store = Arc::clone(&store);
        // Streams wait (off the UI thread) for a frame newer than the last shown.
        let answer = move || {
            let picture = if key == crate::worker::keys::LIVE {
                store.next_after_served(&key, Duration::from_secs(1))
            } else {
                store.get(&key)
            };
            let response = match picture {
                Some(p) => Response::builder()
                    .header("Content-Type", p.mime)
                    .header("Cache-Control", "no-store")
                    .body(p.bytes.to_vec()),
                None => Response::builder().status(404).body(Vec::new()),
            };
            match response {
                Ok(r) => responder.respond(r),
                Err(e) => tracing::warn!("frame response: {e}"),
            }
        };
        if std::thread::Builder::new()
            .name("camshow-frames".into())
            .spawn(answer)
            .is_err()
        {
            tracing::warn!("cannot answer a frame request");
        }
    });
    // Remember the window's size and position.
    let window = use_window();
    use_wry_event_handler(move |event, _| {
        let Event::WindowEvent {
            event: WindowEvent::Moved(_) | WindowEvent::Resized(_),
            ..
        } = event
        else {
            return;
        };
        let scale = window.scale_factor();
        let size = window.inner_size().to_logical::<f64>(scale);
        if let Ok(pos) = window.outer_position() {
            let pos = pos.to_logical::<f64>(scale);
            dispatch.call(Action::WindowMoved(Geometry {
                x: pos.x as i32,
                y: pos.y as i32,
                width: size.width as u32,
                height: size.height as u32,
            }));
        }
    });
    rsx! { Body {} }
}
