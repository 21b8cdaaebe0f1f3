//! The window's components. They read the [`AppState`] signal and send
//! [`Action`]s; they hold no engine logic (the options form is made from
//! `Settings::options()`, the same list `camshow config` and the server use).
//! They render without a window, so tests check their markup.

use std::path::PathBuf;

use camshow_core::settings::{NewValue, OptionInfo, Settings};
use camshow_media::swap_job::MediaKind;
use dioxus::html::HasFileData;
use dioxus::prelude::*;
use serde_json::Value;

use crate::prefs::Theme;
use crate::state::{Action, AppState, Job, Screen};
use crate::worker::keys;

/// What every component reaches: the state and the way to change it.
#[derive(Clone, Copy)]
pub struct Ui {
    /// The state.
    pub state: Signal<AppState>,
    /// Applies an action (and runs what it asks of the engine).
    pub dispatch: Callback<Action>,
}

impl Ui {
    /// The `Ui` of the window.
    pub fn get() -> Self {
        use_context::<Ui>()
    }

    /// Sends `action`.
    pub fn send(&self, action: Action) {
        self.dispatch.call(action);
    }
}

/// The address of a stored picture (`version` makes the `<img>` reload).
pub fn frame_url(key: &str, version: u64) -> String {
    format!("/frames/{key}?v={version}")
}

/// The window's title: the screen and what runs (`Camshow Deepfaker —
/// Swap — 42 %`), so the taskbar shows a job's progress.
pub fn title(s: &AppState) -> String {
    let status = match &s.job {
        Job::Running { done, total, .. } => match total.filter(|t| *t > 0) {
            Some(t) => format!("{} %", done * 100 / t),
            None => "working".into(),
        },
        Job::Done(_) => "done".into(),
        Job::Failed(_) => "failed".into(),
        Job::Cancelled => "cancelled".into(),
        Job::Idle if s.live.running => "live".into(),
        Job::Idle if s.start_blocker().is_none() => "ready".into(),
        Job::Idle => String::new(),
    };
    let mut t = format!("Camshow Deepfaker — {}", s.screen.label());
    if !status.is_empty() {
        t.push_str(" — ");
        t.push_str(&status);
    }
    if s.live.running && !matches!(s.job, Job::Idle) {
        t.push_str(" — live");
    }
    t
}

/// The usage terms shown at first start.
pub const TERMS: &str = "Use only faces of people who have consented. Never deceive, defraud, \
harass or impersonate anyone, and never make intimate imagery of anyone. Label everything you \
publish as AI-generated: every file this app writes says so in its metadata; do not strip it. \
Respect the models' licences (insightface's inswapper and buffalo_l weights are for \
non-commercial research only). Every input passes a content-safety check that cannot be \
turned off.";

/// Converts a key press to a shortcut name (`Ctrl+Enter`, `Escape`).
pub fn shortcut_name(key: &Key, ctrl: bool) -> Option<String> {
    let base = match key {
        Key::Enter => "Enter".to_string(),
        Key::Escape => return Some("Escape".into()),
        Key::Character(c) => c.to_uppercase(),
        _ => return None,
    };
    ctrl.then(|| format!("Ctrl+{base}"))
}

/// The whole window body.
#[component]
pub fn Body() -> Element {
    let ui = Ui::get();
    // Each component re-renders only when what it shows changes (a job's
    // progress does not redraw the options).
    let head = use_memo(move || {
        let s = ui.state.read();
        (
            s.prefs.theme,
            s.screen,
            s.prefs.terms_accepted,
            s.notice.clone(),
        )
    });
    let (theme, screen, terms, notice) = head();
    let theme = theme.name();
    rsx! {
        div {
            id: "app",
            class: "theme-{theme}",
            tabindex: "0",
            // Keys reach the shortcuts from the start, before any click.
            onmounted: move |e: MountedEvent| async move {
                let _ = e.set_focus(true).await;
            },
            onkeydown: move |e: KeyboardEvent| {
                if let Some(name) = shortcut_name(&e.key(), e.modifiers().ctrl()) {
                    e.prevent_default();
                    ui.send(Action::Key(name));
                }
            },
            header {
                h1 { "Camshow Deepfaker" }
                nav {
                    for sc in Screen::ALL {
                        button {
                            class: if sc == screen { "tab active" } else { "tab" },
                            id: "tab-{sc.label().split(' ').next().unwrap_or_default().to_lowercase()}",
                            onclick: move |_| ui.send(Action::Show(sc)),
                            "{sc.label()}"
                        }
                    }
                }
            }
            if let Some(n) = notice {
                div {
                    id: "notice",
                    class: if n.error { "notice error" } else { "notice info" },
                    role: "alert",
                    span { "{n.text}" }
                    button { onclick: move |_| ui.send(Action::Dismiss), "×" }
                }
            }
            main {
                match screen {
                    Screen::Swap => rsx! { SwapScreen {} },
                    Screen::Live => rsx! { LiveScreen {} },
                    Screen::Mapper => rsx! { MapperScreen {} },
                    Screen::Models => rsx! { ModelsScreen {} },
                }
            }
            if !terms {
                div { id: "terms", class: "modal",
                    div { class: "modal-box",
                        h2 { "Usage terms" }
                        p { "{TERMS}" }
                        button {
                            id: "accept-terms",
                            class: "primary",
                            onclick: move |_| ui.send(Action::AcceptTerms),
                            "I agree"
                        }
                    }
                }
            }
        }
    }
}

fn paths_of(files: &[dioxus::html::FileData]) -> Vec<PathBuf> {
    files.iter().map(dioxus::html::FileData::path).collect()
}

/// A drop zone with a file chooser: `on_files` gets the paths.
#[component]
fn Picker(
    id: String,
    label: String,
    accept: String,
    multiple: bool,
    on_files: Callback<Vec<PathBuf>>,
    children: Element,
) -> Element {
    let mut over = use_signal(|| false);
    rsx! {
        div {
            class: if over() { "drop over" } else { "drop" },
            ondragover: move |e| {
                e.prevent_default();
                over.set(true);
            },
            ondragleave: move |_| over.set(false),
            ondrop: move |e: DragEvent| {
                e.prevent_default();
                over.set(false);
                let paths = paths_of(&e.files());
                if !paths.is_empty() {
                    on_files.call(paths);
                }
            },
            label { class: "button", r#for: "{id}", "{label}" }
            input {
                id: "{id}",
                r#type: "file",
                accept: "{accept}",
                multiple,
                hidden: true,
                onchange: move |e: FormEvent| {
                    let paths = paths_of(&e.files());
                    if !paths.is_empty() {
                        on_files.call(paths);
                    }
                },
            }
            {children}
        }
    }
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn clock(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    format!("{}:{:02}", s / 60, s % 60)
}

/// Source, target, options, preview, Start.
#[component]
fn SwapScreen() -> Element {
    let ui = Ui::get();
    let view = use_memo(move || {
        let s = ui.state.read();
        (
            s.sources.clone(),
            s.source_faces.clone(),
            s.source_busy,
            s.target.clone(),
            s.output_path(),
            s.settings.engine.selector == camshow_core::select::SelectMode::Reference,
            s.reference.clone(),
        )
    });
    let (sources, faces, source_busy, target, output, selector_reference, reference) = view();
    rsx! {
        div { class: "columns",
            section { class: "inputs",
                h2 { "Source face" }
                Picker {
                    id: "source-input",
                    label: "Choose photos…",
                    accept: "image/*",
                    multiple: true,
                    on_files: move |p| ui.send(Action::ChooseSources(p)),
                    if sources.is_empty() {
                        p { class: "hint", "Drop photos of one person here" }
                    } else {
                        p { id: "source-names", {sources.iter().map(|p| file_name(p)).collect::<Vec<_>>().join(", ")} }
                    }
                    if source_busy {
                        p { class: "hint", "Checking…" }
                    }
                    div { class: "thumbs",
                        for (i, f) in faces.into_iter().enumerate() {
                            img {
                                class: if f.used { "thumb used" } else { "thumb pickable" },
                                id: "source-face-{i}",
                                src: frame_url(&f.key, 0),
                                title: if f.used { "the face used".to_string() } else { format!("use this face (score {:.2})", f.score) },
                                onclick: move |_| ui.send(Action::PickSourceFace(i)),
                            }
                        }
                    }
                }
                h2 { "Target" }
                Picker {
                    id: "target-input",
                    label: "Choose image or video…",
                    accept: "image/*,video/*",
                    multiple: false,
                    on_files: move |p: Vec<PathBuf>| {
                        if let Some(first) = p.into_iter().next() {
                            ui.send(Action::ChooseTarget(first));
                        }
                    },
                    if let Some(t) = &target {
                        p { id: "target-info",
                            "{file_name(&t.path)} — {t.width}×{t.height}"
                            if let Some(d) = t.duration {
                                ", {clock(d)}"
                            }
                            if let Some(f) = t.fps {
                                ", {f:.2} fps"
                            }
                        }
                    } else {
                        p { class: "hint", "Drop an image or a video here" }
                    }
                }
                if selector_reference {
                    h2 { "Person to replace" }
                    Picker {
                        id: "reference-input",
                        label: "Choose reference face…",
                        accept: "image/*",
                        multiple: false,
                        on_files: move |p: Vec<PathBuf>| {
                            if let Some(first) = p.into_iter().next() {
                                ui.send(Action::ChooseReference(first));
                            }
                        },
                        if let Some(r) = &reference {
                            p { "{file_name(r)}" }
                        }
                    }
                }
                h2 { "Output" }
                input {
                    id: "output",
                    r#type: "text",
                    value: output.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                    placeholder: "next to the target",
                    onchange: move |e: FormEvent| {
                        let v = e.value();
                        if !v.trim().is_empty() {
                            ui.send(Action::ChooseOutput(PathBuf::from(v.trim())));
                        }
                    },
                }
                JobPanel {}
                OptionsPanel {}
            }
            section { class: "preview-col",
                PreviewPanel {}
            }
        }
    }
}

/// Start, progress with fps and ETA, Cancel, and the result.
#[component]
fn JobPanel() -> Element {
    let ui = Ui::get();
    let view = use_memo(move || {
        let s = ui.state.read();
        (s.job.clone(), s.start_blocker())
    });
    let (job, blocker) = view();
    let running = matches!(job, Job::Running { .. });
    rsx! {
        div { class: "job",
            button {
                id: "start",
                class: "primary",
                disabled: blocker.is_some(),
                title: blocker.clone().unwrap_or_default(),
                onclick: move |_| ui.send(Action::Start),
                "Start"
            }
            if running {
                button { id: "cancel", onclick: move |_| ui.send(Action::Cancel), "Cancel" }
            }
            match &job {
                Job::Running { done, total, fps, eta, cancelling } => {
                    let pct = total.filter(|t| *t > 0).map_or(0.0, |t| *done as f64 * 100.0 / t as f64);
                    rsx! {
                        progress { id: "progress", max: "100", value: "{pct:.0}" }
                        span { id: "progress-text",
                            if *cancelling {
                                "Cancelling…"
                            } else if let Some(t) = total {
                                "{done} / {t} frames · {fps:.1} fps"
                                if let Some(eta) = eta {
                                    " · {clock(*eta)} left"
                                }
                            } else {
                                "Working…"
                            }
                        }
                    }
                }
                Job::Done(d) => rsx! {
                    p { id: "job-done", "Done: {d.summary}" }
                    p { class: "path", "{d.output.display()}" }
                },
                Job::Cancelled => rsx! { p { id: "job-cancelled", "Cancelled — nothing written." } },
                Job::Failed(why) => rsx! { p { id: "job-failed", class: "error", "{why}" } },
                Job::Idle => rsx! {
                    if let Some(b) = &blocker {
                        p { class: "hint", "To start: {b}" }
                    }
                },
            }
        }
    }
}

/// Before/after of the current settings; for a video, a scrub bar and Play.
#[component]
fn PreviewPanel() -> Element {
    let ui = Ui::get();
    let view = use_memo(move || {
        let s = ui.state.read();
        (
            s.preview.clone(),
            s.target.clone(),
            matches!(s.job, Job::Done(_)),
            !s.sources.is_empty(),
        )
    });
    let (preview, target, done, has_source) = view();
    let Some(target) = target else {
        return rsx! { div { class: "preview empty", "The preview appears here." } };
    };
    let after_key = if preview.playing {
        keys::PLAY
    } else if done {
        keys::RESULT
    } else {
        keys::PREVIEW
    };
    let v = preview.version;
    let split = preview.split;
    let duration = target.duration.unwrap_or(0.0);
    rsx! {
        div { class: "preview",
            div { class: "compare", id: "compare",
                img { id: "before", src: frame_url(keys::BEFORE, v) }
                if has_source {
                    img {
                        id: "after",
                        src: frame_url(after_key, v),
                        style: "clip-path: inset(0 0 0 {split}%);",
                    }
                }
            }
            input {
                id: "split",
                r#type: "range",
                min: "0",
                max: "100",
                value: "{split}",
                oninput: move |e: FormEvent| {
                    if let Ok(x) = e.value().parse::<u8>() {
                        ui.send(Action::SetSplit(x));
                    }
                },
            }
            p { class: "hint",
                "Left of the line: the original. Right: "
                if done { "the output." } else { "the current settings." }
                if preview.busy { " Updating…" }
                if preview.millis > 0.0 { " ({preview.millis:.0} ms)" }
            }
            if let Some(e) = &preview.error {
                p { id: "preview-error", class: "error", "{e}" }
            }
            if target.kind == MediaKind::Video {
                div { class: "scrub",
                    button {
                        id: "play",
                        onclick: move |_| {
                            ui.send(if preview.playing {
                                Action::PlayPreview(false)
                            } else if done {
                                Action::PlayResult
                            } else {
                                Action::PlayPreview(true)
                            });
                        },
                        if preview.playing { "Stop" } else if done { "Play result" } else { "Play processed" }
                    }
                    input {
                        id: "scrub",
                        r#type: "range",
                        min: "0",
                        max: "{duration}",
                        step: "0.04",
                        value: "{preview.time}",
                        onchange: move |e: FormEvent| {
                            if let Ok(t) = e.value().parse::<f64>() {
                                ui.send(Action::Scrub(t));
                            }
                        },
                    }
                    span { "{clock(preview.time)} / {clock(duration)}" }
                }
            }
        }
    }
}

/// Options shown on the swap screen, from the settings' own list.
pub fn swap_options(settings: &Settings) -> Vec<(String, OptionInfo)> {
    const HIDDEN: [&str; 6] = [
        "version",
        "models_dir",
        "ffmpeg.path",
        "video.workers",
        "processors[].mouth_mask_debug",
        "processors[].type",
    ];
    let mut out = Vec::new();
    for info in all_options().iter().cloned() {
        if HIDDEN.contains(&info.key.as_str())
            || info.key.starts_with("runtime.")
            || info.key.starts_with("live.")
        {
            continue;
        }
        match &info.processor {
            Some(proc_id) => {
                // Shown for each processor of that kind in the chain.
                for (i, p) in settings.processor_ids().iter().enumerate() {
                    if p == proc_id {
                        let key = info
                            .key
                            .replacen("processors[]", &format!("processors[{i}]"), 1);
                        out.push((key, info.clone()));
                    }
                }
            }
            None => out.push((info.key.clone(), info)),
        }
    }
    out
}

/// Every option of the settings (made from the schema once).
fn all_options() -> &'static [OptionInfo] {
    static OPTIONS: std::sync::LazyLock<Vec<OptionInfo>> =
        std::sync::LazyLock::new(Settings::options);
    &OPTIONS
}

/// The value of `key` (`a.b`, `processors[0].c`) in the settings' JSON tree.
pub fn value_in(tree: &Value, key: &str) -> Value {
    let mut v = tree;
    for part in key.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        v = v.get(name).unwrap_or(&Value::Null);
        if let Some(i) = index {
            v = v.get(i).unwrap_or(&Value::Null);
        }
    }
    v.clone()
}

fn text_of(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// The processor chain (which run, in which order) and every option.
#[component]
fn OptionsPanel() -> Element {
    let ui = Ui::get();
    let settings = use_memo(move || ui.state.read().settings.clone());
    let settings = settings();
    let tree = serde_json::to_value(&settings).unwrap_or(Value::Null);
    let chain: Vec<String> = settings
        .processor_ids()
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let enhancer_on = chain.iter().any(|p| p == "face_enhancer");
    let options = swap_options(&settings);
    let n = chain.len();
    rsx! {
        details { class: "options", open: true,
            summary { "Options" }
            div { class: "chain",
                span { "Processors, in order: " }
                for (i, p) in chain.iter().cloned().enumerate() {
                    span { class: "proc",
                        "{i + 1}. {p}"
                        if i > 0 {
                            button {
                                class: "small",
                                title: "run earlier",
                                onclick: {
                                    let settings = settings.clone();
                                    move |_| ui.send(chain_change(&settings, ChainEdit::Up(i)))
                                },
                                "↑"
                            }
                        }
                        if i + 1 < n {
                            button {
                                class: "small",
                                title: "run later",
                                onclick: {
                                    let settings = settings.clone();
                                    move |_| ui.send(chain_change(&settings, ChainEdit::Up(i + 1)))
                                },
                                "↓"
                            }
                        }
                    }
                }
                label {
                    input {
                        id: "enhancer-on",
                        r#type: "checkbox",
                        checked: enhancer_on,
                        onchange: {
                            let settings = settings.clone();
                            move |e: FormEvent| ui.send(chain_change(&settings, ChainEdit::Enhancer(e.checked())))
                        },
                    }
                    " face enhancer"
                }
            }
            for (key, info) in options {
                OptionRow { name: key.clone(), info, value: value_in(&tree, &key) }
            }
        }
    }
}

/// A change of the processor chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainEdit {
    /// Move entry `i` one place earlier.
    Up(usize),
    /// Add (at the end) or remove the face enhancer.
    Enhancer(bool),
}

/// The `processors` option after `edit` (each processor keeps its options).
pub fn chain_change(settings: &Settings, edit: ChainEdit) -> Action {
    let mut chain = match serde_json::to_value(&settings.processors) {
        Ok(Value::Array(a)) => a,
        _ => Vec::new(),
    };
    match edit {
        ChainEdit::Up(i) if i > 0 && i < chain.len() => chain.swap(i - 1, i),
        ChainEdit::Enhancer(true) => {
            if !settings.processor_ids().contains(&"face_enhancer") {
                chain.push(serde_json::json!({ "type": "face_enhancer" }));
            }
        }
        ChainEdit::Enhancer(false) => {
            chain.retain(|p| p.get("type").and_then(Value::as_str) != Some("face_enhancer"));
        }
        ChainEdit::Up(_) => {}
    }
    Action::SetOption {
        key: "processors".into(),
        value: NewValue::Json(Value::Array(chain)),
    }
}

/// One option: a checkbox, a choice, a slider or a text field, by its type.
#[component]
pub fn OptionRow(name: String, info: OptionInfo, value: Value) -> Element {
    let ui = Ui::get();
    let key = name;
    let id = format!(
        "opt-{}",
        key.replace(['.', '[', ']'], "-").replace("--", "-")
    );
    let label = key.rsplit('.').next().unwrap_or(&key).replace('_', " ");
    let k = key.clone();
    let send = use_callback(move |v: NewValue| {
        ui.send(Action::SetOption {
            key: k.clone(),
            value: v,
        });
    });
    let control = if info.kind == "boolean" {
        rsx! {
            input {
                id: "{id}",
                r#type: "checkbox",
                checked: value.as_bool().unwrap_or(false),
                onchange: move |e: FormEvent| send.call(NewValue::Json(Value::Bool(e.checked()))),
            }
        }
    } else if !info.choices.is_empty() && info.kind != "array" {
        let current = text_of(&value);
        rsx! {
            select {
                id: "{id}",
                onchange: move |e: FormEvent| {
                    let v = e.value();
                    send.call(if v.is_empty() { NewValue::Json(Value::Null) } else { NewValue::Text(v) });
                },
                if info.nullable {
                    option { value: "", selected: current.is_empty(), "(unset)" }
                }
                for c in info.choices.iter().map(text_of) {
                    option { value: "{c}", selected: c == current, "{c}" }
                }
            }
        }
    } else if let (Some(min), Some(max), true) = (
        info.minimum,
        info.maximum,
        info.kind == "number" || info.kind == "integer",
    ) {
        let step = if info.kind == "integer" {
            1.0
        } else {
            ((max - min) / 100.0).max(0.001)
        };
        let shown = value.as_f64();
        rsx! {
            span { class: "control",
                if info.nullable {
                    input {
                        r#type: "checkbox",
                        id: "{id}-on",
                        checked: shown.is_some(),
                        onchange: move |e: FormEvent| {
                            let v = if e.checked() { info.default.clone() } else { Value::Null };
                            let v = if v.is_null() && e.checked() { Value::from(min) } else { v };
                            send.call(NewValue::Json(v));
                        },
                    }
                }
                input {
                    id: "{id}",
                    r#type: "range",
                    min: "{min}",
                    max: "{max}",
                    step: "{step}",
                    disabled: shown.is_none(),
                    value: "{shown.unwrap_or(min)}",
                    onchange: move |e: FormEvent| send.call(NewValue::Text(e.value())),
                }
            }
            span { class: "value", {shown.map_or_else(|| "off".into(), |x| format!("{x:.2}"))} }
        }
    } else {
        rsx! {
            input {
                id: "{id}",
                r#type: "text",
                value: text_of(&value),
                placeholder: if info.nullable { "(unset)" } else { "" },
                onchange: move |e: FormEvent| {
                    let v = e.value();
                    send.call(if v.trim().is_empty() && info.nullable { NewValue::Json(Value::Null) } else { NewValue::Text(v) });
                },
            }
        }
    };
    rsx! {
        div { class: "option", title: "{info.description}",
            label { r#for: "{id}", "{label}" }
            {control}
        }
    }
}

/// The camera swapped as it runs.
#[component]
fn LiveScreen() -> Element {
    let ui = Ui::get();
    let view = use_memo(move || {
        let s = ui.state.read();
        (
            s.live.clone(),
            s.settings.clone(),
            s.health.cameras.clone(),
            !s.sources.is_empty(),
        )
    });
    let (live, settings, cameras, has_source) = view();
    let tree = serde_json::to_value(&settings).unwrap_or(Value::Null);
    let current = settings.live.camera.clone().unwrap_or_default();
    let live_opts: Vec<(String, OptionInfo)> = all_options()
        .iter()
        .filter(|o| {
            [
                "live.resolution",
                "live.fps",
                "live.mirror",
                "live.mjpeg",
                "live.virtual_camera",
            ]
            .contains(&o.key.as_str())
        })
        .map(|o| (o.key.clone(), o.clone()))
        .collect();
    rsx! {
        div { class: "columns",
            section { class: "inputs",
                h2 { "Camera" }
                select {
                    id: "camera",
                    onchange: move |e: FormEvent| {
                        let v = e.value();
                        ui.send(Action::SetOption {
                            key: "live.camera".into(),
                            value: if v.is_empty() { NewValue::Json(Value::Null) } else { NewValue::Text(v) },
                        });
                    },
                    option { value: "", selected: current.is_empty(), "first camera found" }
                    for (id, name) in cameras {
                        option { value: "{id}", selected: id == current, "{name} ({id})" }
                    }
                    option { value: "test", selected: current == "test", "test pattern" }
                    if current.starts_with("file:") {
                        option { value: "{current}", selected: true, "{current}" }
                    }
                }
                Picker {
                    id: "camera-file",
                    label: "Play a video file as the camera…",
                    accept: "video/*",
                    multiple: false,
                    on_files: move |p: Vec<PathBuf>| {
                        if let Some(f) = p.into_iter().next() {
                            ui.send(Action::SetOption {
                                key: "live.camera".into(),
                                value: NewValue::Text(format!("file:{}", f.display())),
                            });
                        }
                    },
                }
                for (key, info) in live_opts {
                    OptionRow { name: key.clone(), info, value: value_in(&tree, &key) }
                }
                if !has_source {
                    p { class: "hint", "Choose a source face on the Swap screen (it can be changed while live)." }
                }
                Picker {
                    id: "live-source-input",
                    label: "Change the source face…",
                    accept: "image/*",
                    multiple: true,
                    on_files: move |p| ui.send(Action::ChooseSources(p)),
                }
                button {
                    id: "live-toggle",
                    class: "primary",
                    onclick: move |_| ui.send(Action::ToggleLive),
                    if live.running { "Stop" } else { "Start live" }
                }
                p { id: "live-stats",
                    "{live.out_fps:.1} fps · {live.latency_ms:.0} ms latency · {live.frames} frames"
                }
                if let Some(url) = &live.mjpeg_url {
                    p { "MJPEG: {url}" }
                }
                if let Some(e) = &live.error {
                    p { class: "error", "{e}" }
                }
            }
            section { class: "preview-col",
                if live.running {
                    img { id: "live", class: "live", src: "/frames/live?n=0", "data-pull": "live" }
                } else {
                    div { class: "preview empty", "The swapped camera appears here." }
                }
            }
        }
    }
}

/// One source per person found in the target.
#[component]
fn MapperScreen() -> Element {
    let ui = Ui::get();
    let view = use_memo(move || {
        let s = ui.state.read();
        (s.mapper.clone(), s.target.clone())
    });
    let (mapper, target) = view();
    rsx! {
        section {
            h2 { "Face mapper" }
            p {
                if let Some(t) = &target {
                    "Target: {file_name(&t.path)}"
                } else {
                    "Choose a target on the Swap screen first."
                }
            }
            button {
                id: "scan",
                disabled: target.is_none() || mapper.scanning,
                onclick: move |_| ui.send(Action::Scan),
                if mapper.scanning { "Scanning…" } else { "Find the people" }
            }
            div { class: "people",
                for p in mapper.persons.clone() {
                    div { class: "person", id: "person-{p.index}",
                        img { class: "thumb", src: frame_url(&p.thumb, 0) }
                        p { "Person {p.index + 1} · seen {p.faces}×" }
                        Picker {
                            id: "person-source-{p.index}",
                            label: "Put a face here…",
                            accept: "image/*",
                            multiple: false,
                            on_files: move |f: Vec<PathBuf>| ui.send(Action::AssignPerson { person: p.index, source: f.into_iter().next() }),
                            if let Some(src) = &p.source {
                                p { "{file_name(src)} " }
                                button {
                                    class: "small",
                                    onclick: move |_| ui.send(Action::AssignPerson { person: p.index, source: None }),
                                    "leave untouched"
                                }
                            } else {
                                p { class: "hint", "untouched" }
                            }
                        }
                    }
                }
            }
            if !mapper.persons.is_empty() {
                button {
                    id: "start-mapped",
                    class: "primary",
                    onclick: move |_| ui.send(Action::StartMapped),
                    "Swap with this map"
                }
                JobPanelStatus {}
            }
        }
    }
}

/// The job's progress line (for screens other than Swap).
#[component]
fn JobPanelStatus() -> Element {
    let ui = Ui::get();
    let job = use_memo(move || ui.state.read().job.clone());
    rsx! {
        match job() {
            Job::Running { done, total, fps, .. } => rsx! { p { "{done} / {total.unwrap_or(0)} frames · {fps:.1} fps" } },
            Job::Done(d) => rsx! { p { id: "mapped-done", "Done: {d.summary} → {d.output.display()}" } },
            Job::Failed(why) => rsx! { p { class: "error", "{why}" } },
            _ => rsx! {},
        }
    }
}

/// ONNX Runtime, providers, models (with licences and downloads), theme.
#[component]
fn ModelsScreen() -> Element {
    let ui = Ui::get();
    let view = use_memo(move || {
        let s = ui.state.read();
        (s.health.clone(), s.prefs.theme)
    });
    let (h, theme) = view();
    rsx! {
        section {
            h2 { "Models & health" }
            if !h.loaded {
                p { "Checking this machine…" }
            }
            p { id: "runtime", "{h.runtime}" }
            p { id: "gate", "Content-safety gate: {h.gate}" }
            ul { class: "providers",
                for (name, ok) in h.providers.clone() {
                    li { class: if ok { "ok" } else { "no" }, "{name}: " if ok { "usable" } else { "not usable here" } }
                }
            }
            table { id: "models",
                tr { th { "Model" } th { "State" } th { "Licence" } th {} }
                for m in h.models.clone() {
                    tr {
                        td { "{m.id}" }
                        td { class: if m.ok { "ok" } else { "no" }, "{m.status}" }
                        td { "{m.licence}" }
                        td {
                            if let Some(f) = m.fetching {
                                progress { max: "100", value: "{f * 100.0:.0}" }
                            } else if !m.ok {
                                button {
                                    id: "fetch-{m.id}",
                                    onclick: move |_| ui.send(Action::Fetch(m.id.clone())),
                                    "Download"
                                }
                            }
                        }
                    }
                }
            }
            for hint in h.hints.clone() {
                p { class: "hint", "{hint}" }
            }
            button { onclick: move |_| ui.send(Action::CheckHealth), id: "refresh", "Check again" }
            h2 { "Appearance" }
            select {
                id: "theme",
                onchange: move |e: FormEvent| {
                    if let Some(t) = Theme::parse(&e.value()) {
                        ui.send(Action::SetTheme(t));
                    }
                },
                for t in Theme::ALL {
                    option { value: t.name(), selected: t == theme, "{t.name()}" }
                }
            }
            h2 { "Shortcuts" }
            p { "Ctrl+O source · Ctrl+T target · Ctrl+Enter start · Escape cancel · Ctrl+L live on/off · Ctrl+M mirror · Ctrl+F find people (face mapper) · Ctrl+1…4 screens" }
        }
    }
}
