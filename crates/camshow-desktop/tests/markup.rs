//! The components' markup for given states, rendered without a window.

use camshow_core::settings::Settings;
use camshow_desktop::prefs::{Prefs, Theme};
use camshow_desktop::state::{Action, AppState, Health, Job, ModelRow, Screen};
use camshow_desktop::ui::{Body, Ui};
use dioxus::prelude::*;

#[derive(Props, Clone, PartialEq)]
struct RootProps {
    state: AppState,
}

#[allow(non_snake_case, clippy::needless_pass_by_value)]
fn Root(props: RootProps) -> Element {
    let mut state = use_signal(|| props.state.clone());
    let dispatch = use_callback(move |a: Action| {
        state.write().apply(a);
    });
    use_context_provider(|| Ui { state, dispatch });
    rsx! { Body {} }
}

fn render(state: AppState) -> String {
    let mut dom = VirtualDom::new_with_props(Root, RootProps { state });
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn accepted() -> AppState {
    AppState::new(
        Settings::default(),
        Prefs {
            terms_accepted: true,
            ..Prefs::default()
        },
    )
}

#[test]
fn first_start_shows_the_usage_terms_until_accepted() {
    let html = render(AppState::new(Settings::default(), Prefs::default()));
    assert!(html.contains(r#"id="terms""#), "{html}");
    assert!(html.contains("consented"));
    assert!(html.contains(r#"id="accept-terms""#));
    let html = render(accepted());
    assert!(!html.contains(r#"id="terms""#));
}

#[test]
fn the_swap_screen_has_every_option_of_the_settings_with_its_value() {
    let mut s = accepted();
    s.settings.engine.detector = camshow_core::detect::DetectorKind::BlazeFace;
    let html = render(s);
    // Choices from the settings' schema, the current one selected.
    assert!(html.contains(r#"id="opt-engine-detector""#), "{html}");
    assert!(html.contains(r#"<option value="blazeface" selected=true>blazeface</option>"#));
    assert!(html.contains(r#"<option value="centerface">centerface</option>"#));
    // Processor options addressed by their place in the chain.
    for id in [
        "opt-processors-0-opacity",
        "opt-processors-0-sharpness",
        "opt-processors-0-colour_match",
        "opt-processors-0-mouth_mask",
        "opt-video-quality",
        "opt-video-encoder",
        "opt-video-keep_audio",
        "opt-engine-selector",
        "opt-engine-similarity",
    ] {
        assert!(html.contains(&format!(r#"id="{id}""#)), "{id} missing");
    }
    // Live options are on the live screen, runtime ones nowhere here.
    assert!(!html.contains("opt-live-mirror"));
    assert!(!html.contains("opt-runtime"));
    assert!(html.contains(r#"id="source-input""#) && html.contains(r#"id="target-input""#));
    assert!(html.contains("To start: choose a source face"));
}

#[test]
fn a_running_job_shows_progress_speed_time_left_and_cancel() {
    let mut s = accepted();
    s.job = Job::Running {
        done: 50,
        total: Some(200),
        fps: 25.0,
        eta: Some(6.0),
        cancelling: false,
    };
    let html = render(s);
    assert!(
        html.contains("50 / 200 frames · 25.0 fps · 0:06 left"),
        "{html}"
    );
    assert!(html.contains(r#"id="cancel""#));
    assert!(html.contains(r#"value="25""#), "progress at 25 %");
}

#[test]
fn the_live_screen_lists_cameras_and_its_options() {
    let mut s = accepted();
    s.screen = Screen::Live;
    s.health.cameras = vec![("/dev/v4l/by-id/usb-Cam".into(), "USB Cam".into())];
    s.live.running = true;
    s.live.out_fps = 29.5;
    s.live.latency_ms = 42.0;
    let html = render(s);
    assert!(html.contains("USB Cam (/dev/v4l/by-id/usb-Cam)"), "{html}");
    assert!(html.contains(r#"id="opt-live-mirror""#));
    assert!(html.contains(r#"id="opt-live-mjpeg""#));
    assert!(
        html.contains(r#"data-pull="live""#),
        "the stream is pulled, not pushed"
    );
    assert!(html.contains("29.5 fps · 42 ms latency"));
    assert!(html.contains(">Stop<"));
}

#[test]
fn the_models_panel_lists_models_licences_and_downloads() {
    let mut s = accepted();
    s.screen = Screen::Models;
    s.prefs.theme = Theme::Dark;
    s.health = Health {
        runtime: "ONNX Runtime 1.23.2".into(),
        providers: vec![("cpu".into(), true), ("cuda".into(), false)],
        gate: "ready".into(),
        models: vec![
            ModelRow {
                id: "nudenet".into(),
                status: "installed".into(),
                ok: true,
                licence: "AGPL-3.0".into(),
                fetching: None,
            },
            ModelRow {
                id: "gfpgan_1.4".into(),
                status: "missing".into(),
                ok: false,
                licence: "Apache-2.0".into(),
                fetching: None,
            },
            ModelRow {
                id: "scrfd".into(),
                status: "missing".into(),
                ok: false,
                licence: "MIT".into(),
                fetching: Some(0.4),
            },
        ],
        loaded: true,
        ..Health::default()
    };
    let html = render(s);
    assert!(html.contains(r#"class="theme-dark""#), "{html}");
    assert!(html.contains("cuda: not usable here"));
    assert!(html.contains(r#"id="fetch-gfpgan_1.4""#));
    assert!(
        !html.contains(r#"id="fetch-nudenet""#),
        "installed: no download"
    );
    assert!(html.contains(r#"value="40""#), "download progress");
    assert!(html.contains("AGPL-3.0"));
}

#[test]
fn the_title_says_the_screen_and_what_runs() {
    let mut s = accepted();
    assert_eq!(camshow_desktop::ui::title(&s), "Camshow Deepfaker — Swap");
    s.apply(Action::ChooseSources(vec!["/a.png".into()]));
    s.apply(Action::SourceReady(Vec::new()));
    s.apply(Action::ChooseTarget("/b.png".into()));
    s.apply(Action::TargetReady(camshow_desktop::state::TargetInfo {
        path: "/b.png".into(),
        kind: camshow_media::swap_job::MediaKind::Image,
        width: 10,
        height: 10,
        duration: None,
        fps: None,
    }));
    assert_eq!(
        camshow_desktop::ui::title(&s),
        "Camshow Deepfaker — Swap — ready"
    );
    s.apply(Action::Start);
    s.apply(Action::Progress {
        done: 3,
        total: Some(4),
        fps: 1.0,
        eta: None,
    });
    s.apply(Action::Show(Screen::Live));
    assert_eq!(
        camshow_desktop::ui::title(&s),
        "Camshow Deepfaker — Live — 75 %"
    );
}

#[test]
fn errors_are_shown_in_the_window() {
    let mut s = accepted();
    s.apply(Action::Error(
        "the content-safety gate refused the target".into(),
    ));
    let html = render(s);
    assert!(html.contains(r#"class="notice error""#));
    assert!(html.contains("content-safety gate refused"));
}
